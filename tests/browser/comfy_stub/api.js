// Stand-in for ComfyUI's scripts/api.js in the browser check: routes are served from the root.
export const api = {
    apiURL(route) {
        return route;
    },
};
