// GID.DragPoints: draw drag arrows on the picture of a GIDModalSimulation node.
//
// Thin DOM layer: a canvas shows the picture that feeds the node and the arrows stored in the
// node's `drags` STRING widget. All maths (coordinate mapping, the JSON, validation, hit-testing,
// gestures) lives in ./lib/drag_model.js. The `drags` widget stays the single source of truth: its
// JSON string is what the workflow saves and what the prompt sends, and API users can set it or
// link a STRING into it. This widget itself is not serialized.
//
// Picture: before a run, the image of a LoadImage node linked to `picture` (directly or through
// nodes' picture/image inputs); after a run, the preview the node saved in ComfyUI's temp folder
// (UI output `gid_drag_picture`, loaded through /view).

import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";
import { DRAG_KINDS, DragEditor, arrowOnCanvas, fitRect, parseDrags, serializeDrags } from "./lib/drag_model.js";

const NODE_CLASS = "GIDModalSimulation";
const PICTURE_UI_KEY = "gid_drag_picture";
const PICTURE_INPUTS = ["picture", "image", "images", "pixels"];
const TOOLBAR_HEIGHT = 28;
const STATUS_HEIGHT = 30; // two lines of 11 px text: a long message wraps instead of being cut off
const MIN_PICTURE_HEIGHT = 80; // the picture letterboxes into whatever height the node gives it
const MAX_PICTURE_HEIGHT = 480;
const REFRESH_MS = 300;
const COLORS = { drag: "#ffb020", poke: "#3ac0ff", selected: "#ffffff" };

function findWidget(node, name) {
    return node.widgets?.find((w) => w.name === name);
}

function viewUrl(entry) {
    const query = new URLSearchParams({ filename: entry.filename, subfolder: entry.subfolder ?? "", type: entry.type ?? "temp" });
    return api.apiURL(`/view?${query}`);
}

/** /view entry of a LoadImage-style widget value such as "sub/name.png [input]". */
function loadImageEntry(value) {
    if (typeof value !== "string" || value === "") return null;
    const match = value.match(/^(.*?)(?: \[(input|output|temp)\])?$/);
    const path = match[1];
    const slash = path.lastIndexOf("/");
    return { filename: path.slice(slash + 1), subfolder: slash >= 0 ? path.slice(0, slash) : "", type: match[2] ?? "input" };
}

/** URL of the picture upstream of node's picture input, or null (follows picture/image inputs). */
function upstreamPictureUrl(node, depth = 0) {
    if (depth > 4 || !node.inputs) return null;
    for (const name of PICTURE_INPUTS) {
        const slot = node.inputs.findIndex((input) => input.name === name);
        if (slot < 0) continue;
        const source = node.getInputNode?.(slot);
        if (!source) continue;
        const shown = source.imgs?.[0]?.src;
        if (shown) return shown;
        const imageWidget = findWidget(source, "image");
        if (source.comfyClass === "LoadImage" && imageWidget) {
            const entry = loadImageEntry(imageWidget.value);
            if (entry) return viewUrl(entry);
        }
        const further = upstreamPictureUrl(source, depth + 1);
        if (further) return further;
    }
    return null;
}

function dragsLinked(node) {
    const slot = node.inputs?.findIndex((input) => input.widget?.name === "drags" || input.name === "drags") ?? -1;
    if (slot < 0) return false;
    // isInputConnected: newer frontends deprecate reading input.link
    return node.isInputConnected ? node.isInputConnected(slot) : node.inputs[slot].link != null;
}

function control(tag, properties, style) {
    const element = Object.assign(document.createElement(tag), properties);
    element.style.cssText = `font-size:11px;${style ?? ""}`;
    return element;
}

/** Toolbar, status and the smallest picture, in CSS pixels. */
function minHeight() {
    return TOOLBAR_HEIGHT + STATUS_HEIGHT + MIN_PICTURE_HEIGHT;
}

class DragPointsView {
    constructor(node) {
        this.node = node;
        this.editor = new DragEditor();
        this.shownText = null;
        this.error = null;
        this.picture = null;
        this.pictureUrl = null;
        this.executedUrl = null;
        this.newKind = "drag";

        // min-height: under the Vue node renderer nothing else sizes the widget (the canvas grows from a zero basis).
        this.root = control("div", {}, `display:flex;flex-direction:column;gap:3px;width:100%;height:100%;min-height:${minHeight()}px;`);
        this.canvas = control(
            "canvas",
            { tabIndex: 0, title: "Press and pull to add an arrow; drag a tip to re-aim it, a point to move it; Delete removes the selected arrow" },
            "flex:1 1 0px;min-height:0;width:100%;cursor:crosshair;outline:none;touch-action:none;",
        );
        const bar = control("div", {}, `display:flex;gap:4px;align-items:center;height:${TOOLBAR_HEIGHT - 4}px;overflow:hidden;`);
        this.kind = control("select", { title: "Kind of the selected arrow, or of new arrows" });
        for (const kind of DRAG_KINDS) {
            this.kind.append(Object.assign(document.createElement("option"), { value: kind, textContent: kind }));
        }
        const frames = (placeholder, title) => control("input", { type: "number", min: 0, step: 1, placeholder, title }, "width:52px;");
        this.start = frames("start", "Start frame of the selected arrow (empty = 0)");
        this.hold = frames("hold", "Hold frames of the selected drag (empty = the node's hold_frames)");
        const remove = control("button", { textContent: "Delete", title: "Remove the selected arrow" }, "padding:0 6px;");
        const clear = control("button", { textContent: "Clear", title: "Remove all arrows" }, "padding:0 6px;");
        // Its own row under the toolbar, wrapping: at the node's default width the toolbar leaves it too little room.
        this.status = control("div", { title: "" }, `opacity:0.85;line-height:14px;height:${STATUS_HEIGHT - 2}px;overflow:hidden;overflow-wrap:anywhere;`);
        this.status.dataset.gidStatus = "";
        bar.append(this.kind, this.start, this.hold, remove, clear);
        this.root.append(this.canvas, bar, this.status);

        this.kind.addEventListener("change", () => {
            if (this.editor.selected === null) this.newKind = this.kind.value;
            else this.commit(this.editor.setSelectedKind(this.kind.value));
        });
        for (const [input, key] of [[this.start, "start"], [this.hold, "hold"]]) {
            input.addEventListener("change", () => {
                const value = input.value === "" ? null : Number(input.value);
                try {
                    this.commit(this.editor.setSelectedTiming({ [key]: value }));
                } catch (error) {
                    this.status.textContent = error.message;
                }
            });
        }
        remove.addEventListener("click", () => this.commit(this.editor.removeSelected()));
        clear.addEventListener("click", () => this.commit(this.editor.clear()));
        this.bindPointer();
        this.resizeObserver = new ResizeObserver(() => this.draw());
        this.resizeObserver.observe(this.canvas);
        // The Vue node renderer never calls a DOM widget's onDraw: look for a new picture or drags
        // text on a timer too (refresh is a few comparisons when nothing changed).
        this.timer = setInterval(() => this.root.isConnected && this.refresh(), REFRESH_MS);
    }

    /** Picture rect in canvas CSS pixels. */
    rect() {
        const width = this.canvas.clientWidth;
        const height = this.canvas.clientHeight;
        return fitRect(this.picture?.naturalWidth || 16, this.picture?.naturalHeight || 9, width, height);
    }

    editable() {
        return this.error === null && !dragsLinked(this.node);
    }

    bindPointer() {
        const position = (event) => {
            const box = this.canvas.getBoundingClientRect();
            // CSS pixels of the canvas even when the graph is zoomed (the element is scaled).
            return [
                (event.clientX - box.left) * (this.canvas.clientWidth / box.width),
                (event.clientY - box.top) * (this.canvas.clientHeight / box.height),
            ];
        };
        this.canvas.addEventListener("pointerdown", (event) => {
            if (event.button !== 0 || !this.editable()) return;
            event.preventDefault();
            event.stopPropagation();
            this.canvas.focus();
            this.canvas.setPointerCapture(event.pointerId);
            this.editor.down(this.rect(), ...position(event), this.newKind);
            this.draw();
        });
        this.canvas.addEventListener("pointermove", (event) => {
            if (this.editor.move(this.rect(), ...position(event))) this.draw();
        });
        const finish = (event) => {
            if (!this.editor.gesture) return;
            this.commit(this.editor.up(this.rect(), ...position(event)));
        };
        this.canvas.addEventListener("pointerup", finish);
        this.canvas.addEventListener("pointercancel", finish);
        this.canvas.addEventListener("keydown", (event) => {
            if (event.key !== "Delete" && event.key !== "Backspace") return;
            event.preventDefault();
            event.stopPropagation(); // the arrow, not the node
            if (this.editable()) this.commit(this.editor.removeSelected());
        });
    }

    /** Write the editor's arrows into the drags widget when they changed; always redraw. */
    commit(changed) {
        if (changed) {
            const widget = findWidget(this.node, "drags");
            const text = serializeDrags(this.editor.drags);
            if (widget) {
                widget.value = text;
                widget.callback?.(text, app.canvas, this.node);
            }
            this.shownText = text;
            this.node.setDirtyCanvas?.(true, true);
        }
        this.draw();
    }

    /** Re-read the drags widget if someone else (typing, the live preview's Record) changed it. */
    syncFromWidget() {
        const text = findWidget(this.node, "drags")?.value ?? "";
        if (text === this.shownText || this.editor.gesture) return false;
        this.shownText = text;
        const { drags, error } = parseDrags(text);
        this.error = error;
        this.editor.setDrags(drags);
        return true;
    }

    setPictureUrl(url) {
        if (!url || url === this.pictureUrl) return;
        this.pictureUrl = url;
        const image = new Image();
        image.onload = () => {
            if (this.pictureUrl !== url) return;
            this.picture = image;
            this.draw();
        };
        image.src = url;
    }

    /** Called on every graph redraw: cheap checks for a new picture or new drags text. */
    refresh() {
        this.setPictureUrl(upstreamPictureUrl(this.node) ?? this.executedUrl);
        if (this.syncFromWidget()) this.draw();
    }

    updateToolbar() {
        const entry = this.editor.selected === null ? null : this.editor.drags[this.editor.selected];
        this.kind.value = entry ? entry.kind ?? "drag" : this.newKind;
        this.start.disabled = this.hold.disabled = entry === null;
        this.start.value = entry?.start ?? "";
        this.hold.value = entry?.hold ?? "";
        if (dragsLinked(this.node)) this.status.textContent = "drags come from a link: edit them there";
        else if (this.error) this.status.textContent = `drags text: ${this.error}`;
        else if (!this.picture) this.status.textContent = "connect a LoadImage to picture to see it here";
        else if (entry) this.status.textContent = `arrow ${this.editor.selected + 1} of ${this.editor.drags.length}`;
        else {
            const count = this.editor.drags.length;
            this.status.textContent = `${count} arrow${count === 1 ? "" : "s"}: press and pull on the picture to add one`;
        }
        this.status.title = this.status.textContent;
    }

    draw() {
        this.updateToolbar();
        const ratio = window.devicePixelRatio || 1;
        const width = this.canvas.clientWidth;
        const height = this.canvas.clientHeight;
        if (width === 0 || height === 0) return;
        if (this.canvas.width !== Math.round(width * ratio) || this.canvas.height !== Math.round(height * ratio)) {
            this.canvas.width = Math.round(width * ratio);
            this.canvas.height = Math.round(height * ratio);
        }
        const ctx = this.canvas.getContext("2d");
        ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
        ctx.clearRect(0, 0, width, height);
        const rect = this.rect();
        if (this.picture) {
            ctx.drawImage(this.picture, rect.x, rect.y, rect.width, rect.height);
        } else {
            ctx.fillStyle = "#333";
            ctx.fillRect(rect.x, rect.y, rect.width, rect.height);
        }
        this.editor.drags.forEach((entry, index) => this.drawArrow(ctx, rect, entry, index));
    }

    drawArrow(ctx, rect, entry, index) {
        const { point, tip } = arrowOnCanvas(rect, entry);
        const kind = entry.kind ?? "drag";
        const color = index === this.editor.selected ? COLORS.selected : COLORS[kind];
        const angle = Math.atan2(tip.y - point.y, tip.x - point.x);
        ctx.save();
        ctx.strokeStyle = color;
        ctx.fillStyle = color;
        ctx.lineWidth = 2;
        ctx.shadowColor = "rgba(0,0,0,0.8)";
        ctx.shadowBlur = 3;
        ctx.setLineDash(kind === "poke" ? [5, 4] : []);
        ctx.beginPath();
        ctx.moveTo(point.x, point.y);
        ctx.lineTo(tip.x, tip.y);
        ctx.stroke();
        ctx.setLineDash([]);
        ctx.beginPath();
        ctx.moveTo(tip.x, tip.y);
        ctx.lineTo(tip.x - 9 * Math.cos(angle - 0.45), tip.y - 9 * Math.sin(angle - 0.45));
        ctx.lineTo(tip.x - 9 * Math.cos(angle + 0.45), tip.y - 9 * Math.sin(angle + 0.45));
        ctx.closePath();
        ctx.fill();
        ctx.beginPath();
        ctx.arc(point.x, point.y, 4, 0, 2 * Math.PI);
        if (kind === "poke") ctx.fill();
        else ctx.stroke();
        ctx.font = "11px sans-serif";
        ctx.fillText(String(index + 1), point.x + 6, point.y - 6);
        ctx.restore();
    }

    dispose() {
        clearInterval(this.timer);
        this.resizeObserver.disconnect();
    }
}

function attachDragPoints(node) {
    const view = new DragPointsView(node);
    const widget = node.addDOMWidget("gid_drag_points", "gid-drag-points", view.root, {
        serialize: false, // the drags STRING widget holds the value; nothing of this goes into the prompt
        hideOnZoom: false,
        // The node keeps its size: the picture letterboxes into the height the node gives (at
        // least MIN_PICTURE_HEIGHT, at most the picture at the node's width).
        getMinHeight: minHeight,
        getMaxHeight: () => {
            const width = Math.max(100, (node.size?.[0] ?? 300) - 20);
            const aspect = view.picture ? view.picture.naturalHeight / view.picture.naturalWidth : 9 / 16;
            return minHeight() - MIN_PICTURE_HEIGHT + Math.max(MIN_PICTURE_HEIGHT, Math.min(MAX_PICTURE_HEIGHT, Math.round(width * aspect)));
        },
        onDraw: () => view.refresh(),
    });
    widget.serialize = false; // keep it out of widgets_values so saved values keep their positions
    // The arrows above the live preview, whichever of the two extensions the frontend loaded first.
    const preview = node.widgets.findIndex((w) => w.name === "gid_live_preview");
    if (preview >= 0) node.widgets.push(...node.widgets.splice(preview, 1));
    view.refresh();

    const onExecuted = node.onExecuted;
    node.onExecuted = function (output) {
        onExecuted?.apply(this, arguments);
        const entry = output?.[PICTURE_UI_KEY]?.[0];
        if (!entry) return;
        view.executedUrl = viewUrl(entry);
        view.refresh();
    };
    const onConnectionsChange = node.onConnectionsChange;
    node.onConnectionsChange = function () {
        onConnectionsChange?.apply(this, arguments);
        view.refresh();
    };
    const onRemoved = node.onRemoved;
    node.onRemoved = function () {
        view.dispose();
        onRemoved?.apply(this, arguments);
    };
}

app.registerExtension({
    name: "GID.DragPoints",
    nodeCreated(node) {
        if (node.comfyClass === NODE_CLASS) attachDragPoints(node);
    },
});
