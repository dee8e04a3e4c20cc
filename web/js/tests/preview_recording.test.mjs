// Recording a live interaction into the drags JSON of GIDModalSimulation, and reading it back.
import { test } from "node:test";
import assert from "node:assert/strict";

import { InteractionRecorder, dragToPixels, dragsToJSON, parseDragsJSON } from "../lib/preview/recording.js";

test("a drag held from press to release is recorded with its frames and final vector", () => {
    const recorder = new InteractionRecorder();
    recorder.press(0, 0.5, 0.4);
    recorder.move(0.01, 0.0);
    recorder.move(0.05, -0.02);
    assert.deepEqual(recorder.release(15), { x: 0.5, y: 0.4, dx: 0.05, dy: -0.02, start: 0, hold: 15, kind: "drag" });
    recorder.press(40, 0.25, 0.75, "poke");
    recorder.move(0.0, 0.1);
    recorder.release(43); // a poke fires on release
    assert.equal(recorder.lastReleaseFrame, 43);
    assert.deepEqual(JSON.parse(recorder.toJSON()), {
        version: 1,
        drags: [
            { x: 0.5, y: 0.4, dx: 0.05, dy: -0.02, start: 0, hold: 15, kind: "drag" },
            { x: 0.25, y: 0.75, dx: 0, dy: 0.1, start: 43, hold: 0, kind: "poke" },
        ],
    });
});

test("a click without motion records nothing; a press and release on one frame holds one frame", () => {
    const recorder = new InteractionRecorder();
    recorder.press(3, 0.5, 0.5);
    assert.equal(recorder.release(9), null);
    assert.ok(recorder.isEmpty);
    recorder.press(5, 0.5, 0.5);
    recorder.move(0.1, 0);
    assert.equal(recorder.release(5).hold, 1);
});

test("the widget JSON round-trips and fills defaults as the Python parser does", () => {
    const text = dragsToJSON([{ x: 0.123456789, y: 0.5, dx: 0.05, dy: 0, start: 2, hold: 7, kind: "drag" }]);
    assert.deepEqual(parseDragsJSON(text), [{ x: 0.12346, y: 0.5, dx: 0.05, dy: 0, start: 2, hold: 7, kind: "drag" }]);
    const defaults = parseDragsJSON('{"drags": [{"x": 0.1, "y": 0.2, "dx": 0.3, "dy": 0}, {"x": 0, "y": 1, "dx": 0, "dy": 1, "kind": "poke"}]}', 12);
    assert.deepEqual(defaults.map((d) => [d.start, d.hold, d.kind]), [[0, 12, "drag"], [0, 0, "poke"]]);
    assert.deepEqual(parseDragsJSON(""), []);
    assert.throws(() => parseDragsJSON('{"version": 2, "drags": []}'), /version/);
    assert.throws(() => parseDragsJSON('{"drags": [{"x": 0.1, "y": 0.2, "dx": "a", "dy": 0}]}'), /'dx' must be a number/);
    assert.throws(() => parseDragsJSON('{"drags": [{"x": 0.1, "y": 0.2, "dx": 0.1, "dy": 0, "kind": "shove"}]}'), /kind/);
});

test("drags map to pixels with pixel centres at integers (as gid_models/dynamics/drags.py)", () => {
    assert.deepEqual(dragToPixels({ x: 0.5, y: 0, dx: 0.1, dy: -0.5 }, 12, 8), { x: 5.5, y: -0.5, dx: 1.2000000000000002, dy: -4 });
});
