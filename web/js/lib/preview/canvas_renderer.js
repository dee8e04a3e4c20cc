// CPU fallback renderer of the live preview (no WebGL2): the maths of warp.js drawn with a 2D
// canvas. Per frame: one displacement field on the basis grid (J multiply-adds per texel), made
// fold-free by limitWarp (as the queued render), then a bilinear backward warp of every canvas pixel.

import { displacementField, warpPicture } from "./warp.js";
import { limitWarp } from "./warp_limit.js";

/** RGBA pixels (Uint8ClampedArray, rows top-first) of `picture` drawn at width x height. */
export function picturePixels(picture, width, height) {
    const scratch = typeof OffscreenCanvas !== "undefined" ? new OffscreenCanvas(width, height) : Object.assign(document.createElement("canvas"), { width, height });
    const context = scratch.getContext("2d");
    context.drawImage(picture, 0, 0, width, height);
    return context.getImageData(0, 0, width, height).data;
}

/**
 * Make a 2D-canvas renderer on `canvas` (sized by the caller) for `basis` and `picture`.
 * render(qRe, qIm) draws one frame; readPixels() returns the last frame's RGBA rows top-first.
 */
export function createCanvasRenderer(canvas, basis, picture) {
    const context = canvas.getContext("2d");
    if (!context) return null;
    const { width, height } = canvas;
    const rest = picturePixels(picture, width, height);
    const frame = context.createImageData(width, height);
    const field = new Float32Array(basis.width * basis.height * 2);
    return {
        kind: "canvas",
        render(qRe, qIm) {
            displacementField(basis, qRe, qIm, field);
            limitWarp(field, basis.width, basis.height, basis.sourceWidth / basis.width, basis.sourceHeight / basis.height);
            warpPicture(rest, width, height, field, basis.width, basis.height, basis.sourceWidth, basis.sourceHeight, frame.data);
            context.putImageData(frame, 0, 0);
        },
        readPixels() {
            return new Uint8ClampedArray(frame.data);
        },
        dispose() {},
    };
}
