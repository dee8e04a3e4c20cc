// The preview's fold-free warp limit (port of gid_models/dynamics/fold_limit.py).
import assert from "node:assert/strict";
import test from "node:test";

import { fieldGradient, jacobianStats, limitWarp, WARP_LIMIT } from "../lib/preview/warp_limit.js";

function swirl(w, h, amplitude) {
    const field = new Float32Array(w * h * 2);
    for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
            const bump = (amplitude * Math.exp(-((x - w / 2) ** 2 + (y - h / 2) ** 2) / 18)) / 3;
            field[(y * w + x) * 2] = -(y - h / 2) * bump;
            field[(y * w + x) * 2 + 1] = (x - w / 2) * bump;
        }
    }
    return field;
}

function worst(field, w, h) {
    const g = fieldGradient(field, w, h);
    let minDet = Infinity;
    let maxStretch = 0;
    for (let p = 0; p < w * h; p++) {
        const [det, stretch] = jacobianStats(g[4 * p], g[4 * p + 1], g[4 * p + 2], g[4 * p + 3]);
        minDet = Math.min(minDet, det);
        maxStretch = Math.max(maxStretch, stretch);
    }
    return [minDet, maxStretch];
}

test("a swirl that folds is limited to a fold-free warp that still moves", () => {
    const field = swirl(32, 24, 12);
    assert.ok(worst(field, 32, 24)[0] < 0);
    limitWarp(field, 32, 24);
    const [minDet, maxStretch] = worst(field, 32, 24);
    assert.ok(minDet > 0.2, `det ${minDet}`);
    assert.ok(maxStretch <= WARP_LIMIT.maxStretch + 1e-4, `stretch ${maxStretch}`);
    assert.ok(Math.max(...field.map(Math.abs)) > 0.5);
});

test("a gentle field is left as it is", () => {
    const field = swirl(32, 24, 0.5);
    const before = Float32Array.from(field);
    limitWarp(field, 32, 24);
    assert.deepEqual(field, before);
});
