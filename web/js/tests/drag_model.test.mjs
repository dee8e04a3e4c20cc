// GID.DragPoints pure logic: coordinate mapping, drag JSON, validation, hit-testing and gestures.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
    DragEditor,
    EMPTY_DRAGS_JSON,
    canvasToNormalized,
    fitRect,
    hitTest,
    moveTip,
    normalizedToCanvas,
    normalizedToPixels,
    parseDrags,
    pixelsToNormalized,
    serializeDrags,
    setTiming,
    validateDrag,
} from "../lib/drag_model.js";

const close = (actual, expected, tolerance = 1e-9) =>
    assert.ok(Math.abs(actual - expected) <= tolerance, `${actual} != ${expected}`);

test("a picture is contained and centred in the canvas", () => {
    assert.deepEqual(fitRect(512, 288, 400, 400), { x: 0, y: 87.5, width: 400, height: 225 });
    assert.deepEqual(fitRect(100, 200, 300, 100), { x: 125, y: 0, width: 50, height: 100 });
    assert.deepEqual(fitRect(0, 0, 300, 100), { x: 0, y: 0, width: 300, height: 100 });
});

test("canvas and normalized coordinates are inverse maps", () => {
    const rect = fitRect(512, 288, 400, 400);
    const n = canvasToNormalized(rect, 100, 150);
    close(n.x, 0.25);
    close(n.y, (150 - 87.5) / 225);
    const back = normalizedToCanvas(rect, n.x, n.y);
    close(back.x, 100);
    close(back.y, 150);
    assert.deepEqual(canvasToNormalized(rect, 0, 87.5), { x: 0, y: 0 });
    assert.ok(canvasToNormalized(rect, 10, 20).y < 0); // the letterbox is outside the picture
});

test("pixels follow drags.py: centres at integers, vectors scaled by width and height", () => {
    const entry = { x: 0.40625, y: 0.375, dx: 0.1, dy: 0.05 };
    assert.deepEqual(normalizedToPixels(entry, 16, 12), { x: 6, y: 4, dx: 1.6, dy: 0.6000000000000001 });
    const back = pixelsToNormalized(normalizedToPixels(entry, 512, 288), 512, 288);
    for (const key of ["x", "y", "dx", "dy"]) close(back[key], entry[key]);
    assert.equal(normalizedToPixels({ x: 0, y: 1, dx: 0, dy: 0 }, 512, 288).x, -0.5);
});

test("the drag JSON round-trips with fixed key order and 5 decimals", () => {
    const drags = [
        { x: 0.123456789, y: 0.5, dx: 0.05, dy: -0.0000012, kind: "drag" },
        { x: 1, y: 0, dx: 0, dy: 0.2, start: 30, hold: 10, kind: "poke" },
    ];
    const text = serializeDrags(drags);
    assert.equal(
        text,
        '{"version":1,"drags":[{"x":0.12346,"y":0.5,"dx":0.05,"dy":0,"kind":"drag"},' +
            '{"x":1,"y":0,"dx":0,"dy":0.2,"start":30,"hold":10,"kind":"poke"}]}',
    );
    const parsed = parseDrags(text);
    assert.equal(parsed.error, null);
    assert.equal(parsed.drags.length, 2);
    assert.equal(parsed.drags[1].hold, 10);
    assert.deepEqual(parseDrags(EMPTY_DRAGS_JSON), { drags: [], error: null });
    assert.deepEqual(parseDrags("  "), { drags: [], error: null });
    assert.equal(serializeDrags([]), '{"version":1,"drags":[]}');
});

test("bad drag JSON is refused with the same reasons as the Python node", () => {
    const cases = [
        ['{"version": 1, "drags": [', "not valid JSON"],
        ["[]", "must be an object"],
        ['{"version": 2, "drags": []}', "version"],
        ['{"drags": [{"x": 1.2, "y": 0.4, "dx": 0.1, "dy": 0}]}', "outside the picture"],
        ['{"drags": [{"x": 0.5, "y": -0.1, "dx": 0.1, "dy": 0}]}', "outside the picture"],
        ['{"drags": [{"x": 0.5, "y": 0.4, "dx": 0, "dy": 0}]}', "zero length"],
        ['{"drags": [{"x": 0.5, "y": 0.4, "dx": 0.1}]}', "no 'dy'"],
        ['{"drags": [{"x": 0.5, "y": 0.4, "dx": "a", "dy": 0}]}', "finite number"],
        ['{"drags": [{"x": 0.5, "y": 0.4, "dx": 0.1, "dy": 0, "kind": "shove"}]}', "kind"],
        ['{"drags": [{"x": 0.5, "y": 0.4, "dx": 0.1, "dy": 0, "hold": -1}]}', ">= 0"],
        ['{"drags": [3]}', "not an object"],
    ];
    for (const [text, reason] of cases) {
        const { drags, error } = parseDrags(text);
        assert.deepEqual(drags, [], text);
        assert.ok(error && error.includes(reason), `${text}: ${error}`);
    }
    assert.match(validateDrag({ x: 0.5, y: 0.5, dx: 0.1, dy: 0 }, 1) ?? "ok", /^ok$/);
    assert.match(validateDrag({ x: 0.5, y: 0.5, dx: 0, dy: 0 }, 1), /^drag 2 /);
});

test("hit-testing prefers tips, then points, then shafts, top-most first", () => {
    const rect = { x: 0, y: 0, width: 100, height: 100 };
    const drags = [
        { x: 0.2, y: 0.2, dx: 0.4, dy: 0, kind: "drag" },
        { x: 0.6, y: 0.2, dx: 0, dy: 0.4, kind: "poke" }, // its point sits on arrow 0's tip
    ];
    assert.deepEqual(hitTest(drags, rect, 60, 20), { index: 0, part: "tip" });
    assert.deepEqual(hitTest(drags, rect, 21, 21), { index: 0, part: "point" });
    assert.deepEqual(hitTest(drags, rect, 40, 23), { index: 0, part: "shaft" });
    assert.deepEqual(hitTest(drags, rect, 60, 59), { index: 1, part: "tip" });
    assert.equal(hitTest(drags, rect, 90, 90), null);
});

test("pressing and pulling on the picture creates an arrow; a click does not", () => {
    const rect = fitRect(200, 100, 200, 200); // picture at y 50..150
    const editor = new DragEditor();
    editor.down(rect, 50, 100);
    assert.equal(editor.move(rect, 70, 90), true);
    assert.equal(editor.up(rect, 80, 90), true);
    assert.equal(editor.drags.length, 1);
    const [entry] = editor.drags;
    close(entry.x, 0.25);
    close(entry.y, 0.5);
    close(entry.dx, 0.15);
    close(entry.dy, -0.1);
    assert.equal(entry.kind, "drag");
    assert.equal(editor.selected, 0);

    editor.down(rect, 150, 120, "poke");
    assert.equal(editor.up(rect, 151, 121), false); // shorter than 3 px: a click
    assert.equal(editor.drags.length, 1);
    editor.down(rect, 100, 20); // the letterbox: deselects, creates nothing
    assert.equal(editor.selected, null);
    assert.equal(editor.up(rect, 120, 30), false);
    assert.equal(editor.drags.length, 1);
});

test("arrows are re-aimed by their tip, moved by their point, and removed", () => {
    const rect = { x: 0, y: 0, width: 100, height: 100 };
    const editor = new DragEditor([{ x: 0.2, y: 0.2, dx: 0.2, dy: 0, kind: "drag" }]);
    editor.down(rect, 40, 20); // the tip
    editor.move(rect, 40, 40);
    assert.equal(editor.up(rect, 40, 40), true);
    close(editor.drags[0].dx, 0.2);
    close(editor.drags[0].dy, 0.2);
    editor.down(rect, 21, 20); // the point, grabbed 1 px right of it
    assert.equal(editor.up(rect, 61, 70), true);
    close(editor.drags[0].x, 0.6);
    close(editor.drags[0].y, 0.7);
    close(editor.drags[0].dx, 0.2); // the arrow keeps its vector
    editor.down(rect, 60, 70);
    editor.move(rect, 500, -300); // dragged off the picture: the point stays on its edge
    editor.up(rect, 500, -300);
    assert.deepEqual([editor.drags[0].x, editor.drags[0].y], [1, 0]);
    editor.down(rect, 120, 20); // re-aiming the tip onto the point drops the arrow (zero length)
    assert.equal(editor.up(rect, 100, 0), true);
    assert.equal(editor.drags.length, 0);
});

test("kind and timing edits of the selected arrow", () => {
    const editor = new DragEditor([{ x: 0.5, y: 0.5, dx: 0.1, dy: 0, kind: "drag" }]);
    assert.equal(editor.setSelectedKind("poke"), false); // nothing selected
    editor.selected = 0;
    assert.equal(editor.setSelectedKind("poke"), true);
    assert.equal(editor.setSelectedTiming({ start: 12, hold: 5 }), true);
    assert.deepEqual(editor.drags[0], { x: 0.5, y: 0.5, dx: 0.1, dy: 0, kind: "poke", start: 12, hold: 5 });
    assert.equal(editor.setSelectedTiming({ hold: null }), true); // back to the node's hold_frames
    assert.equal("hold" in editor.drags[0], false);
    assert.throws(() => setTiming(editor.drags, 0, { start: -1 }), /frames >= 0/);
    assert.equal(editor.removeSelected(), true);
    assert.equal(editor.drags.length, 0);
    assert.equal(editor.clear(), false);
    assert.equal(parseDrags(serializeDrags(moveTip([{ x: 0, y: 0, dx: 1, dy: 1 }], 0, { x: 0.5, y: 0 }))).drags[0].dx, 0.5);
});
