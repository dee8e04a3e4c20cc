// Stand-in for ComfyUI's scripts/app.js in the browser check: the one call our extension makes.
export const app = {
    extensions: [],
    canvas: {},
    registerExtension(extension) {
        this.extensions.push(extension);
    },
};
