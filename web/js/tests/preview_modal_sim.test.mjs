// The browser's modal simulation reproduces the Python reference (tests/fixtures/modal_vectors.json,
// written by tests/make_modal_fixture.py from gid_models/dynamics/modal.py) within 1e-3.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { makeBasis } from "../lib/preview/basis_format.js";
import { ModalSimulator, simulateDrags, stepMatrix } from "../lib/preview/modal_sim.js";
import { parseDragsJSON } from "../lib/preview/recording.js";
import { displacementField } from "../lib/preview/warp.js";

const fixture = JSON.parse(readFileSync(new URL("../../../tests/fixtures/modal_vectors.json", import.meta.url)));
const basis = makeBasis(fixture.basis);
const TOLERANCE = 1e-3;

function maxError(actual, expected) {
    let worst = 0;
    for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
    return worst;
}

for (const testCase of fixture.cases) {
    test(`modal coordinates match Python: ${testCase.name}`, () => {
        const drags = parseDragsJSON(testCase.drags_json, testCase.params.hold_frames ?? 15);
        const { qRe, qIm } = simulateDrags(basis, drags, testCase.num_frames, testCase.params);
        assert.equal(qRe.length, testCase.q_re.length);
        const error = Math.max(maxError(qRe, testCase.q_re), maxError(qIm, testCase.q_im));
        assert.ok(error < TOLERANCE, `max |q_js - q_py| = ${error}`);
        // The case must actually move: a zero reference would make the comparison vacuous.
        assert.ok(Math.max(...testCase.q_re.map(Math.abs), ...testCase.q_im.map(Math.abs)) > 0.1);
    });

    test(`displacements match Python: ${testCase.name}`, () => {
        const drags = parseDragsJSON(testCase.drags_json, testCase.params.hold_frames ?? 15);
        const { qRe, qIm } = simulateDrags(basis, drags, testCase.num_frames, testCase.params);
        const J = basis.numModes;
        for (const sample of testCase.displacements) {
            const at = sample.frame * J;
            const field = displacementField(basis, qRe.subarray(at, at + J), qIm.subarray(at, at + J));
            const p = (sample.y * basis.width + sample.x) * 2;
            assert.ok(Math.abs(field[p] - sample.dx) < TOLERANCE, `frame ${sample.frame} (${sample.x}, ${sample.y}) dx ${field[p]} vs ${sample.dx}`);
            assert.ok(Math.abs(field[p + 1] - sample.dy) < TOLERANCE, `frame ${sample.frame} (${sample.x}, ${sample.y}) dy ${field[p + 1]} vs ${sample.dy}`);
        }
    });
}

test("the exact propagator composes: two half steps equal one full step", () => {
    for (const zeta of [0, 0.05, 1, 1.7]) {
        const [a, b, c, d] = stepMatrix(3.1, zeta, 0.02);
        const full = stepMatrix(3.1, zeta, 0.04);
        const twice = [a * a + b * c, a * b + b * d, c * a + d * c, c * b + d * d];
        assert.ok(maxError(twice, full) < 1e-12, `zeta ${zeta}`);
    }
});

test("a free oscillator never gains energy (zeta >= 0)", () => {
    const w = 5;
    for (const zeta of [0, 0.03, 1, 2]) {
        const [p11, p12, p21, p22] = stepMatrix(w, zeta, 1 / 30);
        let q = 1;
        let v = 0;
        let energy = (v * v + w * w * q * q) / 2;
        for (let n = 0; n < 300; n++) {
            [q, v] = [p11 * q + p12 * v, p21 * q + p22 * v];
            const next = (v * v + w * w * q * q) / 2;
            assert.ok(next <= energy * (1 + 1e-12), `zeta ${zeta} step ${n}`);
            energy = next;
        }
    }
});

test("a live drag released at frame r equals the scheduled drag held r - start frames, from the release on", () => {
    const params = { damping: 0.05, fps: 30 };
    const live = new ModalSimulator(basis, params);
    for (let n = 0; n < 3; n++) live.step();
    const id = live.startHold(0.4, 0.6);
    live.updateHold(id, 0.01, 0.02);
    for (let n = 0; n < 4; n++) live.step();
    live.updateHold(id, 0.03, -0.02); // the vector at release is the one that counts
    for (let n = 0; n < 6; n++) live.step();
    live.release(id);
    const J = basis.numModes;
    const liveRe = [];
    for (let n = 0; n < 20; n++) {
        live.step();
        liveRe.push(...live.qRe);
    }
    const drags = [{ x: 0.4, y: 0.6, dx: 0.03, dy: -0.02, start: 3, hold: 10, kind: "drag" }];
    const { qRe } = simulateDrags(basis, drags, 33, params);
    assert.ok(maxError(liveRe, qRe.subarray(13 * J, 33 * J)) < 1e-12);
    assert.ok(Math.max(...liveRe.map(Math.abs)) > 0.01);
});

test("a simulator comes to rest after a poke decays", () => {
    const sim = new ModalSimulator(basis, { damping: 0.2, fps: 30 });
    assert.ok(sim.poke(0.5, 0.5, 0.05, 0));
    assert.equal(sim.isAtRest(0.01), false);
    for (let n = 0; n < 2000; n++) sim.step();
    assert.ok(sim.isAtRest(0.01));
});
