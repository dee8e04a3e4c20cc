// Browser check of the live poke preview (run by tests/test_browser_preview.py in headless Chromium).
//
// Loads a basis and picture written by nodes/interactive.py (through a /view route like ComfyUI's),
// then for each renderer (WebGL2, 2D canvas): a synthetic drag must change the pixels, and after
// the release they must oscillate and return towards the rest image. Writes "PASS {...}" or
// "FAIL {...}" into #result; with ?bench=N also times N frames of simulation + CPU warp.

import { parseBasis } from "../../web/js/lib/preview/basis_format.js";
import { LivePreview } from "../../web/js/lib/preview/live_view.js";

const PARAMS = { damping: 0.1, stiffness_scale: 1, mass_scale: 1, fps: 30, hold_frames: 15, frames: 60, integrator: "exact" };
const DRAG = { x: 0.5, y: 0.45, dx: 0.04, dy: 0.03 };
const HOLD_FRAMES = 10;
const SETTLE_FRAMES = 300;

function meanAbsDiff(a, b) {
    let total = 0;
    for (let i = 0; i < a.length; i += 4) total += Math.abs(a[i] - b[i]) + Math.abs(a[i + 1] - b[i + 1]) + Math.abs(a[i + 2] - b[i + 2]);
    return total / ((a.length / 4) * 3);
}

async function load() {
    const query = new URLSearchParams(location.search);
    const view = (name) => `/view?${new URLSearchParams({ filename: name, subfolder: query.get("subfolder") || "", type: "temp" })}`;
    const response = await fetch(view(query.get("basis")));
    if (!response.ok) throw new Error(`basis fetch failed: ${response.status}`);
    const basis = parseBasis(await response.arrayBuffer());
    const picture = new Image();
    picture.src = view(query.get("picture"));
    await picture.decode();
    return { basis, picture, bench: Number(query.get("bench") || 0) };
}

/** Drag, hold, release and settle with one renderer; returns the measurements. */
function exercise(basis, picture, preferWebGL) {
    const container = document.createElement("div");
    document.body.appendChild(container);
    const preview = new LivePreview(container, { getParams: () => PARAMS, preferWebGL, allowSoftwareWebGL: true });
    preview.setContent(basis, picture);
    const rest = preview.readPixels();
    preview.press(DRAG.x, DRAG.y);
    preview.moveTo(DRAG.x + DRAG.dx, DRAG.y + DRAG.dy);
    preview.stepFrames(HOLD_FRAMES);
    const held = preview.readPixels();
    preview.release();
    const swing = [];
    for (let n = 0; n < 30; n++) {
        preview.stepFrames(1);
        swing.push(meanAbsDiff(rest, preview.readPixels()));
    }
    preview.stepFrames(SETTLE_FRAMES);
    const settled = preview.readPixels();
    const dragTake = JSON.parse(preview.recordedTake());
    preview.press(0.3, 0.6, "poke"); // from rest: a new take
    preview.moveTo(0.33, 0.58);
    preview.release();
    preview.stepFrames(4);
    const poked = meanAbsDiff(rest, preview.readPixels());
    const result = {
        renderer: preview.renderer.kind,
        size: [preview.canvas.width, preview.canvas.height],
        held_diff: meanAbsDiff(rest, held),
        swing_min: Math.min(...swing),
        swing_max: Math.max(...swing),
        settled_diff: meanAbsDiff(rest, settled),
        take: dragTake,
        poke_diff: poked,
        poke_take: JSON.parse(preview.recordedTake()),
        held,
    };
    preview.dispose();
    container.remove();
    return result;
}

/**
 * Milliseconds per frame over `frames` frames of simulation step + warp: for the canvas path
 * including putImageData; for WebGL2 including a full readPixels, which waits for the GPU (in
 * headless Chromium that GPU is SwiftShader on the CPU).
 */
function benchFrames(basis, picture, frames, preferWebGL) {
    const container = document.createElement("div");
    document.body.appendChild(container);
    const preview = new LivePreview(container, { getParams: () => PARAMS, preferWebGL, allowSoftwareWebGL: true });
    preview.setContent(basis, picture);
    preview.press(DRAG.x, DRAG.y);
    preview.moveTo(DRAG.x + DRAG.dx, DRAG.y + DRAG.dy);
    preview.stepFrames(5);
    preview.release();
    const start = performance.now();
    for (let n = 0; n < frames; n++) {
        preview.stepFrames(1);
        if (preferWebGL) preview.readPixels();
    }
    const perFrame = (performance.now() - start) / frames;
    const kind = preview.renderer.kind;
    preview.dispose();
    return { [kind]: perFrame };
}

function check(result, failures) {
    const name = result.renderer;
    if (!(result.held_diff > 1)) failures.push(`${name}: a held drag changed the picture by only ${result.held_diff}`);
    if (!(result.swing_max > 0.5)) failures.push(`${name}: the picture did not move after release`);
    if (!(result.swing_min < result.swing_max * 0.8)) failures.push(`${name}: no oscillation after release`);
    if (!(result.settled_diff < 0.25 * result.held_diff)) failures.push(`${name}: did not return towards rest (${result.settled_diff} vs held ${result.held_diff})`);
    const poke = result.poke_take.drags;
    if (!(result.poke_diff > 0.5) || poke.length !== 1 || poke[0].kind !== "poke" || poke[0].start !== 0) {
        failures.push(`${name}: a poke did not move the picture or was not recorded as a new take (${JSON.stringify(poke)})`);
    }
    const drag = result.take.drags[0];
    if (result.take.drags.length !== 1 || drag.start !== 0 || drag.hold !== HOLD_FRAMES || Math.abs(drag.dx - DRAG.dx) > 1e-9) {
        failures.push(`${name}: recorded take ${JSON.stringify(result.take)} is not the drag made`);
    }
}

async function main() {
    const output = document.getElementById("result");
    try {
        const { basis, picture, bench } = await load();
        const failures = [];
        const results = [exercise(basis, picture, true), exercise(basis, picture, false)];
        results.forEach((r) => check(r, failures));
        const report = { modes: basis.numModes, grid: [basis.width, basis.height], renderers: {} };
        for (const { held, ...numbers } of results) report.renderers[numbers.renderer] = numbers;
        const probe = new LivePreview(document.createElement("div"), { getParams: () => PARAMS });
        probe.setContent(basis, picture);
        report.default_renderer = probe.renderer.kind; // software WebGL2 falls back to the canvas path
        probe.dispose();
        if (results[0].renderer === "webgl2") {
            report.webgl2_vs_canvas_held_diff = meanAbsDiff(results[0].held, results[1].held);
            if (!(report.webgl2_vs_canvas_held_diff < 2)) failures.push("the WebGL2 and canvas warps disagree");
        } else {
            report.note = "WebGL2 unavailable: only the canvas path was checked";
        }
        if (bench > 0) report.ms_per_frame = { ...benchFrames(basis, picture, bench, false), ...benchFrames(basis, picture, bench, true) };
        report.failures = failures;
        output.textContent = `${failures.length ? "FAIL" : "PASS"} ${JSON.stringify(report)}`;
    } catch (error) {
        output.textContent = `FAIL ${JSON.stringify({ error: String(error && error.stack ? error.stack : error) })}`;
    }
    fetch("/result", { method: "POST", body: output.textContent }).catch(() => {});
}

main();
