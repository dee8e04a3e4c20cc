// Warping maths of the live preview: displacement field, sampling and the backward warp.
import { test } from "node:test";
import assert from "node:assert/strict";

import { makeBasis } from "../lib/preview/basis_format.js";
import { displacementField, maxDisplacement, modeShapeAt, sampleField, warpPicture } from "../lib/preview/warp.js";

/** A basis of J modes on a w x h grid whose channel c of mode j at texel p is value(j, p, c). */
function basisFrom(numModes, width, height, value, sourceWidth = width, sourceHeight = height) {
    const shapes = new Float32Array(numModes * width * height * 4);
    for (let j = 0; j < numModes; j++) {
        for (let p = 0; p < width * height; p++) {
            for (let c = 0; c < 4; c++) shapes[(j * width * height + p) * 4 + c] = value(j, p, c);
        }
    }
    return makeBasis({ shapes, omegas: Array(numModes).fill(1), masses: Array(numModes).fill(1), numModes, width, height, sourceWidth, sourceHeight });
}

function gradientPicture(width, height) {
    const pixels = new Uint8ClampedArray(width * height * 4);
    for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
            pixels.set([x * 8, y * 8, (x * y) % 256, 255], (y * width + x) * 4);
        }
    }
    return pixels;
}

test("the displacement field is Re(sum_j phi_j q_j)", () => {
    const basis = basisFrom(2, 3, 2, (j, p, c) => (j + 1) * (c + 1) + p);
    const field = displacementField(basis, [0.5, -1], [2, 0.25]);
    for (let p = 0; p < 6; p++) {
        let dx = 0;
        let dy = 0;
        for (let j = 0; j < 2; j++) {
            const phi = [1, 2, 3, 4].map((c) => (j + 1) * c + p);
            const q = [[0.5, 2], [-1, 0.25]][j];
            dx += phi[0] * q[0] - phi[1] * q[1];
            dy += phi[2] * q[0] - phi[3] * q[1];
        }
        assert.ok(Math.abs(field[2 * p] - dx) < 1e-4 && Math.abs(field[2 * p + 1] - dy) < 1e-4, `texel ${p}`);
    }
    assert.ok(maxDisplacement(field) > 0);
});

test("bilinear sampling hits texel centres exactly and interpolates between them", () => {
    const basis = basisFrom(1, 4, 3, (j, p, c) => (c === 0 ? p % 4 : c === 2 ? Math.floor(p / 4) : 0));
    assert.deepEqual(modeShapeAt(basis, 0, 2.5 / 4, 1.5 / 3), [2, 0, 1, 0]);
    const between = modeShapeAt(basis, 0, 2 / 4, 1 / 3); // half way between texels 1,2 and rows 0,1
    assert.ok(Math.abs(between[0] - 1.5) < 1e-12 && Math.abs(between[2] - 0.5) < 1e-12);
    assert.deepEqual(modeShapeAt(basis, 0, 0, 0), [0, 0, 0, 0]); // clamped to the edge texel
    const field = displacementField(basis, [1], [0]);
    assert.deepEqual(sampleField(field, 4, 3, 1.5 / 4, 2.5 / 3), [1, 2]);
});

test("zero motion leaves the picture unchanged", () => {
    const [W, H] = [16, 12];
    const picture = gradientPicture(W, H);
    const basis = basisFrom(1, 4, 3, () => 1);
    const field = displacementField(basis, [0], [0]);
    const out = warpPicture(picture, W, H, field, 4, 3, 4, 3, new Uint8ClampedArray(picture.length));
    assert.deepEqual(out, picture);
});

test("a uniform shift moves every pixel by the shift, scaled from source to picture pixels", () => {
    const [W, H] = [16, 12];
    const picture = gradientPicture(W, H);
    // One mode of uniform shape (Re x = 1, Re y = 0.5) in pixels of an 8 x 6 source grid, q = 1:
    // on a 16 x 12 picture that is a shift of (2, 1) pixels.
    const basis = basisFrom(1, 5, 4, (j, p, c) => [1, 0, 0.5, 0][c], 8, 6);
    const field = displacementField(basis, [1], [0]);
    const out = warpPicture(picture, W, H, field, 5, 4, 8, 6, new Uint8ClampedArray(picture.length));
    for (let y = 1; y < H; y++) {
        for (let x = 2; x < W; x++) {
            const o = (y * W + x) * 4;
            const s = ((y - 1) * W + (x - 2)) * 4;
            assert.deepEqual(Array.from(out.subarray(o, o + 4)), Array.from(picture.subarray(s, s + 4)), `pixel ${x},${y}`);
        }
    }
});
