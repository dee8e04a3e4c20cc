// Browser check of the ComfyUI layer (web/js/gid_live_preview.js), run by
// tests/test_browser_preview.py in real time (requestAnimationFrame barely runs under headless
// Chromium's virtual time), reporting through POST /result. ComfyUI's app/api modules are stand-ins (tests/browser/comfy_stub/)
// serving the calls the extension makes; the node is a plain object with the LiteGraph members the
// extension uses. Real pointer events drag the picture; "Record" must write the take into the
// node's drags widget (and call its callback), "Play" must animate the widget's drags.

import { app } from "/scripts/app.js";

const DRAG = { x: 0.5, y: 0.45, dx: 0.04, dy: 0.03 };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function fakeNode() {
    const widget = (name, value) => ({ name, value, calls: [], callback(v) { this.calls.push(v); } });
    return {
        comfyClass: "GIDModalSimulation",
        widgets: [
            widget("drags", ""), widget("damping", 0.8), widget("stiffness_scale", 1), widget("mass_scale", 1),
            widget("frames", 120), widget("fps", 30), widget("hold_frames", 15), widget("integrator", "exact"),
        ],
        size: [512, 400],
        domWidgets: [],
        addDOMWidget(name, type, element, options) {
            document.getElementById("node").appendChild(element);
            const domWidget = { name, type, element, options };
            this.domWidgets.push(domWidget);
            return domWidget;
        },
        computeSize() {
            return [512, 100 + this.domWidgets.reduce((h, w) => h + (w.options.getMinHeight?.() ?? 0), 0)];
        },
        setSize(size) {
            this.size = size;
        },
        setDirtyCanvas() {},
    };
}

function pixels(canvas) {
    const scratch = Object.assign(document.createElement("canvas"), { width: canvas.width, height: canvas.height });
    const context = scratch.getContext("2d");
    context.drawImage(canvas, 0, 0);
    return context.getImageData(0, 0, canvas.width, canvas.height).data;
}

function meanAbsDiff(a, b) {
    let total = 0;
    for (let i = 0; i < a.length; i += 4) total += Math.abs(a[i] - b[i]) + Math.abs(a[i + 1] - b[i + 1]) + Math.abs(a[i + 2] - b[i + 2]);
    return total / ((a.length / 4) * 3);
}

function pointer(canvas, type, x, y) {
    const rect = canvas.getBoundingClientRect();
    const scale = Math.min(rect.width / canvas.width, rect.height / canvas.height);
    const left = rect.left + (rect.width - canvas.width * scale) / 2;
    const top = rect.top + (rect.height - canvas.height * scale) / 2;
    canvas.dispatchEvent(new PointerEvent(type, {
        clientX: left + x * canvas.width * scale, clientY: top + y * canvas.height * scale,
        pointerId: 1, pointerType: "mouse", isPrimary: true, bubbles: true, cancelable: true, buttons: type === "pointerup" ? 0 : 1,
    }));
}

async function main() {
    const output = document.getElementById("result");
    const failures = [];
    const report = {};
    try {
        await import("/extensions/ComfyUI-GID/js/gid_live_preview.js");
        const extension = app.extensions.find((e) => e.name === "GID.LivePreview");
        if (!extension) throw new Error("the extension did not register as GID.LivePreview");
        const node = fakeNode();
        extension.nodeCreated(node);
        if (node.domWidgets.length !== 1 || node.domWidgets[0].options.serialize !== false) failures.push("expected one non-serialised DOM widget");
        const query = new URLSearchParams(location.search);
        node.onExecuted({ gid_live_preview: [{ basis: query.get("basis"), picture: query.get("picture"), subfolder: query.get("subfolder"), type: "temp" }] });
        let canvas = null;
        for (let i = 0; i < 100 && !canvas; i++) {
            await sleep(50);
            canvas = node.domWidgets[0].element.querySelector("canvas");
        }
        if (!canvas) throw new Error(`no canvas after onExecuted; status: ${node.domWidgets[0].element.textContent}`);
        report.canvas = [canvas.width, canvas.height];
        report.node_height = node.size[1];
        const rest = pixels(canvas);

        pointer(canvas, "pointerdown", DRAG.x, DRAG.y);
        pointer(canvas, "pointermove", DRAG.x + DRAG.dx / 2, DRAG.y + DRAG.dy / 2);
        await sleep(150);
        pointer(canvas, "pointermove", DRAG.x + DRAG.dx, DRAG.y + DRAG.dy);
        await sleep(250);
        report.held_diff = meanAbsDiff(rest, pixels(canvas));
        pointer(canvas, "pointerup", DRAG.x + DRAG.dx, DRAG.y + DRAG.dy);
        const drawnBefore = node.livePreviewFramesDrawn?.() ?? 0;
        const start = performance.now();
        await sleep(1000); // still swinging: the loop should draw every simulated frame (30 fps)
        report.drawn_fps = ((node.livePreviewFramesDrawn?.() ?? 0) - drawnBefore) / ((performance.now() - start) / 1000);
        await sleep(4000);
        report.settled_diff = meanAbsDiff(rest, pixels(canvas));
        if (!(report.held_diff > 1)) failures.push("dragging with the pointer did not move the picture");
        if (!(report.settled_diff < 0.25 * report.held_diff)) failures.push("the picture did not return towards rest");

        const [record, play] = node.domWidgets[0].element.querySelectorAll("button");
        record.click();
        const drags = node.widgets[0];
        report.recorded = drags.value;
        const take = JSON.parse(drags.value || "{}");
        const drag = take.drags?.[0];
        if (take.version !== 1 || take.drags.length !== 1) failures.push("Record did not write one drag");
        else if (Math.abs(drag.x - DRAG.x) > 0.01 || Math.abs(drag.dx - DRAG.dx) > 0.01 || Math.abs(drag.dy - DRAG.dy) > 0.01 || drag.start !== 0 || !(drag.hold >= 1 && drag.hold <= 15) || drag.kind !== "drag") {
            failures.push(`recorded drag ${JSON.stringify(drag)} is not the gesture made`);
        }
        if (drags.calls.length !== 1 || drags.calls[0] !== drags.value) failures.push("Record did not call the drags widget's callback");

        play.click();
        await sleep(600);
        report.play_diff = meanAbsDiff(rest, pixels(canvas));
        if (!(report.play_diff > 1)) failures.push("Play did not animate the recorded drags");
        report.status = node.domWidgets[0].element.querySelector("span").textContent;
    } catch (error) {
        failures.push(String(error && error.stack ? error.stack : error));
    }
    report.failures = failures;
    output.textContent = `${failures.length ? "FAIL" : "PASS"} ${JSON.stringify(report)}`;
    fetch("/result", { method: "POST", body: output.textContent });
}

main();
