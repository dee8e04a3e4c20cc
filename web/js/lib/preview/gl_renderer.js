// WebGL2 renderer of the live preview: the picture and the J mode shapes live on the GPU; each
// frame uploads only the J complex modal coordinates q_j and the fragment shader computes
// F(p) = Re(sum_j phi_j(p) q_j) per pixel (bilinear on the basis grid) and samples the picture
// at p - F(p) (the backward-warp approximation explained in warp.js).
//
// Textures use image orientation: texel row 0 is the top of the picture, and the vertex shader
// maps the top of the canvas to v = 0, so no flips are needed anywhere.

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
precision highp sampler2DArray;
uniform sampler2D uPicture;
uniform sampler2DArray uModes;
uniform vec2 uQ[${MAX_GL_MODES}];
uniform int uNumModes;
uniform vec2 uSourceSize;
in vec2 vUv;
out vec4 outColor;

vec2 displacementAt(ivec2 texel) {
    vec2 d = vec2(0.0);
    for (int j = 0; j < ${MAX_GL_MODES}; j++) {
        if (j >= uNumModes) break;
        vec4 m = texelFetch(uModes, ivec3(texel, j), 0);
        d += vec2(m.x * uQ[j].x - m.y * uQ[j].y, m.z * uQ[j].x - m.w * uQ[j].y);
    }
    return d;
}

void main() {
    ivec2 size = textureSize(uModes, 0).xy;
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

    const modeTexture = gl.createTexture();
    gl.activeTexture(gl.TEXTURE1);
    gl.bindTexture(gl.TEXTURE_2D_ARRAY, modeTexture);
    gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
    gl.texImage3D(gl.TEXTURE_2D_ARRAY, 0, gl.RGBA32F, basis.width, basis.height, basis.numModes, 0, gl.RGBA, gl.FLOAT, basis.shapes);
    gl.texParameteri(gl.TEXTURE_2D_ARRAY, gl.TEXTURE_MIN_FILTER, gl.NEAREST);
    gl.texParameteri(gl.TEXTURE_2D_ARRAY, gl.TEXTURE_MAG_FILTER, gl.NEAREST);

    gl.uniform1i(gl.getUniformLocation(program, "uPicture"), 0);
    gl.uniform1i(gl.getUniformLocation(program, "uModes"), 1);
    gl.uniform1i(gl.getUniformLocation(program, "uNumModes"), basis.numModes);
    gl.uniform2f(gl.getUniformLocation(program, "uSourceSize"), basis.sourceWidth, basis.sourceHeight);
    const qLocation = gl.getUniformLocation(program, "uQ");
    const q = new Float32Array(MAX_GL_MODES * 2);
    const vertexArray = gl.createVertexArray();

    return {
        kind: "webgl2",
        render(qRe, qIm) {
            for (let j = 0; j < basis.numModes; j++) {
                q[2 * j] = qRe[j];
                q[2 * j + 1] = qIm[j];
            }
            gl.viewport(0, 0, canvas.width, canvas.height);
            gl.useProgram(program);
            gl.uniform2fv(qLocation, q);
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
            gl.deleteTexture(modeTexture);
            gl.deleteProgram(program);
            gl.deleteVertexArray(vertexArray);
        },
    };
}
