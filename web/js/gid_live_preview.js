// GID.LivePreview: drag a point of the picture on a GIDModalSimulation node and watch it spring back.
//
// Thin ComfyUI layer: after the node runs, its UI output `gid_live_preview` names a compact modal
// basis and the picture in ComfyUI's temp folder; both are fetched through /view and handed to
// LivePreview (web/js/lib/preview/live_view.js), which simulates and warps in the browser.
// "Record" writes the last take into the node's `drags` widget, so queueing renders exactly that
// interaction at full quality; "Play" previews the widget's drags as the node will simulate them.

import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";
import { parseBasis } from "./lib/preview/basis_format.js";
import { LivePreview } from "./lib/preview/live_view.js";

const NODE_CLASS = "GIDModalSimulation";
const UI_KEY = "gid_live_preview";
const BAR_HEIGHT = 36; // the buttons and two lines of status
const MIN_STAGE_HEIGHT = 72; // reserved before the first run, so that the node keeps its size when the preview arrives
const SETTINGS = ["damping", "stiffness_scale", "mass_scale", "frames", "fps", "hold_frames", "integrator"];

function findWidget(node, name) {
    return node.widgets?.find((w) => w.name === name);
}

/** The node's current simulation settings, read from its widgets (the basis file's as fallback). */
function nodeSettings(node, fallback) {
    const settings = { ...fallback };
    for (const name of SETTINGS) {
        const widget = findWidget(node, name);
        if (widget !== undefined && widget.value !== undefined) settings[name] = widget.value;
    }
    return settings;
}

function viewUrl(entry, filename) {
    const query = new URLSearchParams({ filename, subfolder: entry.subfolder ?? "", type: entry.type ?? "temp" });
    return api.apiURL(`/view?${query}`);
}

async function fetchPreview(entry) {
    const response = await fetch(viewUrl(entry, entry.basis));
    if (!response.ok) throw new Error(`could not load the modal basis (${response.status})`);
    const basis = parseBasis(await response.arrayBuffer());
    const picture = new Image();
    picture.src = viewUrl(entry, entry.picture);
    await picture.decode();
    return { basis, picture };
}

function button(label, title, onClick) {
    const element = Object.assign(document.createElement("button"), { textContent: label, title });
    element.style.cssText = "font-size:11px;padding:1px 8px;cursor:pointer;";
    element.addEventListener("click", onClick);
    return element;
}

function attachLivePreview(node) {
    const root = document.createElement("div");
    // min-height: under the Vue node renderer nothing else sizes the widget.
    root.style.cssText = `display:flex;flex-direction:column;gap:4px;width:100%;height:100%;min-height:${BAR_HEIGHT + MIN_STAGE_HEIGHT}px;`;
    // The preview canvas fills the stage (absolute), so the picture never sizes the node.
    const stage = document.createElement("div");
    stage.style.cssText = "flex:1 1 0px;min-height:0;position:relative;overflow:hidden;";
    const bar = document.createElement("div");
    bar.style.cssText = `display:flex;gap:6px;align-items:center;font-size:11px;opacity:0.9;height:${BAR_HEIGHT - 4}px;`;
    const status = Object.assign(document.createElement("span"), { textContent: "Live preview: queue the node to drag its picture here." });
    status.dataset.gidStatus = "";
    status.style.cssText = "line-height:14px;max-height:28px;overflow:hidden;overflow-wrap:anywhere;";
    const setStatus = (text) => {
        status.textContent = text;
        status.title = text; // in full, should two lines not hold it
    };
    let fileSettings = {};
    const preview = new LivePreview(stage, {
        getParams: () => nodeSettings(node, fileSettings),
        onStatus: setStatus,
    });

    const record = button("Record", "Store the last interaction in the drags widget; queue to render it", () => {
        const take = preview.recordedTake();
        if (!take) {
            setStatus("Nothing to record yet: drag the picture first.");
            return;
        }
        const drags = findWidget(node, "drags");
        if (!drags) return;
        drags.value = take;
        drags.callback?.(take, app.canvas, node);
        node.setDirtyCanvas?.(true, true);
        const needed = preview.takeFrames();
        const frames = findWidget(node, "frames")?.value ?? 0;
        setStatus(needed >= frames
            ? `Recorded, but it ends at frame ${needed} of ${frames}: raise frames.`
            : "Recorded into drags: queue the workflow to render it.");
    });
    const play = button("Play", "Preview the drags widget as the node will simulate it", () => {
        try {
            preview.playDrags(findWidget(node, "drags")?.value ?? "");
        } catch (error) {
            setStatus(`Cannot play the drags: ${error.message}`);
        }
    });
    bar.append(record, play, status);
    root.append(stage, bar);
    node.addDOMWidget("gid_live_preview", "gid-live-preview", root, {
        serialize: false, // not a node input: nothing of it goes into the prompt or the workflow's values
        hideOnZoom: false,
        // Constant, so that a run never resizes the node (it used to grow out of its group).
        getMinHeight: () => BAR_HEIGHT + MIN_STAGE_HEIGHT,
        getMaxHeight: () => {
            const aspect = preview.canvas ? preview.canvas.height / preview.canvas.width : 9 / 16;
            return BAR_HEIGHT + Math.max(MIN_STAGE_HEIGHT, Math.round(((node.size?.[0] ?? 300) - 20) * aspect));
        },
    });

    const onExecuted = node.onExecuted;
    node.onExecuted = function (output) {
        onExecuted?.apply(this, arguments);
        const entry = output?.[UI_KEY]?.[0];
        if (!entry) return;
        setStatus("Loading the live preview...");
        fetchPreview(entry)
            .then(({ basis, picture }) => {
                fileSettings = basis.params;
                preview.setContent(basis, picture);
                Object.assign(preview.canvas.style, { position: "absolute", inset: "0" });
                node.setDirtyCanvas?.(true, true);
            })
            .catch((error) => setStatus(`Live preview unavailable: ${error.message}`));
    };
    node.livePreviewFramesDrawn = () => preview.framesDrawn;
    const onRemoved = node.onRemoved;
    node.onRemoved = function () {
        preview.dispose();
        onRemoved?.apply(this, arguments);
    };
}

app.registerExtension({
    name: "GID.LivePreview",
    nodeCreated(node) {
        if (node.comfyClass === NODE_CLASS) attachLivePreview(node);
    },
});
