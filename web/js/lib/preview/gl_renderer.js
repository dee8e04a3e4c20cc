// WebGL2 renderer of the live preview: the picture lives on the GPU; each frame computes
// F = Re(sum_j phi_j q_j) on the small basis grid on the CPU, makes it fold-free with limitWarp
// (as the queued render does), uploads it as a float texture, and the fragment shader samples it
// bilinearly and reads the picture at p - F(p) (the backward-warp approximation explained in
// warp.js).
//
// Textures use image orientation: texel row 0 is the top of the picture, and the vertex shader
// maps the top of the canvas to v = 0, so no flips are needed anywhere.

import { displacementField } from "./warp.js";
import { limitWarp } from "./warp_limit.js";

export const MAX_GL_MODES = 16;

const VERTEX_SHADER = `#version 300 es
out vec2 vUv;
void main() {
    vec2 corner = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));
    vUv = vec2(corner.x, 1.0 - corner.y);
    gl_Position = vec4(corner * 2.0 - 1.0, 0.0, 1.0);
}`;

const FRAGMENT_SHADER = `#version 300 es
precision highp float;
uniform sampler2D uPicture;
uniform sampler2D uField;
uniform vec2 uSourceSize;
in vec2 vUv;
out vec4 outColor;

vec2 displacementAt(ivec2 texel) {
    return texelFetch(uField, texel, 0).xy;
}

void main() {
    ivec2 size = textureSize(uField, 0);
    vec2 t = clamp(vUv * vec2(size) - 0.5, vec2(0.0), vec2(size - 1));
    ivec2 i0 = ivec2(floor(t));
    ivec2 i1 = min(i0 + 1, size - 1);
    vec2 f = t - vec2(i0);
    vec2 top = mix(displacementAt(i0), displacementAt(ivec2(i1.x, i0.y)), f.x);
    vec2 bottom = mix(displacementAt(ivec2(i0.x, i1.y)), displacementAt(i1), f.x);
    vec2 displacement = mix(top, bottom, f.y);
    outColor = texture(uPicture, vUv - displacement / uSourceSize);
}`;

function compile(gl, type, source) {
    const shader = gl.createShader(type);
    gl.shaderSource(shader, source);
    gl.compileShader(shader);
    if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) {
        throw new Error(`live preview shader failed to compile: ${gl.getShaderInfoLog(shader)}`);
    }
    return shader;
}

/** True for a WebGL implementation that runs on the CPU (SwiftShader, llvmpipe): slower than the canvas path. */
export function isSoftwareRenderer(gl) {
    const info = gl.getExtension("WEBGL_debug_renderer_info");
    const name = info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER);
    return /swiftshader|llvmpipe|softpipe|software/i.test(String(name));
}

/**
 * Make a WebGL2 renderer on `canvas` (sized by the caller) for `basis` and `picture` (any
 * CanvasImageSource). Returns null when WebGL2 is unavailable, or runs in software and
 * allowSoftware is false, so the caller can fall back to the canvas path.
 * render(qRe, qIm) draws one frame; readPixels() returns RGBA rows top-first (for tests).
 */
export function createGLRenderer(canvas, basis, picture, { allowSoftware = false } = {}) {
    if (basis.numModes > MAX_GL_MODES) return null;
    const gl = canvas.getContext("webgl2", { preserveDrawingBuffer: true, antialias: false, premultipliedAlpha: false });
    if (!gl) return null;
    if (!allowSoftware && isSoftwareRenderer(gl)) {
        gl.getExtension("WEBGL_lose_context")?.loseContext();
        return null;
    }
    const program = gl.createProgram();
    gl.attachShader(program, compile(gl, gl.VERTEX_SHADER, VERTEX_SHADER));
    gl.attachShader(program, compile(gl, gl.FRAGMENT_SHADER, FRAGMENT_SHADER));
    gl.linkProgram(program);
    if (!gl.getProgramParameter(program, gl.LINK_STATUS)) {
        throw new Error(`live preview shader failed to link: ${gl.getProgramInfoLog(program)}`);
    }
    gl.useProgram(program);

    const pictureTexture = gl.createTexture();
    gl.activeTexture(gl.TEXTURE0);
    gl.bindTexture(gl.TEXTURE_2D, pictureTexture);
    gl.pixelStorei(gl.UNPACK_FLIP_Y_WEBGL, false);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA8, gl.RGBA, gl.UNSIGNED_BYTE, picture);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.LINEAR);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.LINEAR);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);

    const fieldTexture = gl.createTexture();
    gl.activeTexture(gl.TEXTURE1);
    gl.bindTexture(gl.TEXTURE_2D, fieldTexture);
    gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RG32F, basis.width, basis.height, 0, gl.RG, gl.FLOAT, null);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.NEAREST);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.NEAREST);

    gl.uniform1i(gl.getUniformLocation(program, "uPicture"), 0);
    gl.uniform1i(gl.getUniformLocation(program, "uField"), 1);
    gl.uniform2f(gl.getUniformLocation(program, "uSourceSize"), basis.sourceWidth, basis.sourceHeight);
    const field = new Float32Array(basis.width * basis.height * 2);
    const vertexArray = gl.createVertexArray();

    return {
        kind: "webgl2",
        render(qRe, qIm) {
            displacementField(basis, qRe, qIm, field);
            limitWarp(field, basis.width, basis.height, basis.sourceWidth / basis.width, basis.sourceHeight / basis.height);
            gl.activeTexture(gl.TEXTURE1);
            gl.bindTexture(gl.TEXTURE_2D, fieldTexture);
            gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
            gl.texSubImage2D(gl.TEXTURE_2D, 0, 0, 0, basis.width, basis.height, gl.RG, gl.FLOAT, field);
            gl.viewport(0, 0, canvas.width, canvas.height);
            gl.useProgram(program);
            gl.bindVertexArray(vertexArray);
            gl.drawArrays(gl.TRIANGLES, 0, 3);
        },
        readPixels() {
            const { width, height } = canvas;
            const raw = new Uint8Array(width * height * 4);
            gl.readPixels(0, 0, width, height, gl.RGBA, gl.UNSIGNED_BYTE, raw);
            const rows = new Uint8ClampedArray(raw.length); // GL rows are bottom-first
            for (let y = 0; y < height; y++) {
                rows.set(raw.subarray((height - 1 - y) * width * 4, (height - y) * width * 4), y * width * 4);
            }
            return rows;
        },
        dispose() {
            gl.deleteTexture(pictureTexture);
            gl.deleteTexture(fieldTexture);
            gl.deleteProgram(program);
            gl.deleteVertexArray(vertexArray);
        },
    };
}
