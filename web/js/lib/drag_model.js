// Pure logic of the GID.DragPoints widget: the drag JSON, coordinate mapping and arrow editing.
//
// No DOM access: web/js/gid_drag_points.js draws and forwards pointer events; this module does the
// maths, and web/js/tests/drag_model.test.mjs tests it under `node --test`.
//
// Drag JSON, version 1 (read by gid_models/dynamics/drags.py, which applies the same rules):
//   {"version": 1, "drags": [{"x": 0.5, "y": 0.4, "dx": 0.05, "dy": 0.0,
//                             "start": 0, "hold": 15, "kind": "drag"}]}
// x, y: the point in 0..1 of the picture's width and height; dx, dy: the arrow in units of the
// picture's width (dx) and height (dy); start, hold: optional frames (>= 0; hold defaults to the
// node's hold_frames); kind: "drag" (pull, hold, release) or "poke" (an impulse at start).
//
// Three coordinate systems:
//   canvas      CSS pixels of the widget's canvas; the picture is drawn "contained" in it (fitRect).
//   normalized  0..1 of the picture (what the JSON stores, so a workflow works at any resolution).
//   pixels      of a W x H picture, pixel centres at integers: (x W - 0.5, y H - 0.5), (dx W, dy H).

export const DRAGS_VERSION = 1;
export const DRAG_KINDS = ["drag", "poke"];
export const EMPTY_DRAGS_JSON = '{"version": 1, "drags": []}';
export const EXAMPLE_JSON = '{"version": 1, "drags": [{"x": 0.5, "y": 0.4, "dx": 0.05, "dy": 0.0, "kind": "drag"}]}';

const DECIMALS = 1e5; // stored precision: 1e-5 of the picture, far below a pixel
const MIN_GESTURE_PX = 3; // a press that moves less than this (canvas px) is a click, not an arrow

/** Round to the stored precision (5 decimals). */
export function roundStored(value) {
    return Math.round(value * DECIMALS) / DECIMALS;
}

export function clamp01(value) {
    return Math.min(1, Math.max(0, value));
}

/** Where a picture of imageWidth x imageHeight is drawn, centred and whole, in a box: {x, y, width, height}. */
export function fitRect(imageWidth, imageHeight, boxWidth, boxHeight) {
    if (!(imageWidth > 0 && imageHeight > 0 && boxWidth > 0 && boxHeight > 0)) {
        return { x: 0, y: 0, width: Math.max(boxWidth, 0), height: Math.max(boxHeight, 0) };
    }
    const scale = Math.min(boxWidth / imageWidth, boxHeight / imageHeight);
    const width = imageWidth * scale;
    const height = imageHeight * scale;
    return { x: (boxWidth - width) / 2, y: (boxHeight - height) / 2, width, height };
}

/** Canvas point -> normalized picture point (not clamped: outside the picture gives < 0 or > 1). */
export function canvasToNormalized(rect, cx, cy) {
    return { x: (cx - rect.x) / rect.width, y: (cy - rect.y) / rect.height };
}

/** Normalized picture point -> canvas point. */
export function normalizedToCanvas(rect, x, y) {
    return { x: rect.x + x * rect.width, y: rect.y + y * rect.height };
}

/** Canvas position of an entry's point and arrow tip: {point: {x, y}, tip: {x, y}}. */
export function arrowOnCanvas(rect, entry) {
    return {
        point: normalizedToCanvas(rect, entry.x, entry.y),
        tip: normalizedToCanvas(rect, entry.x + entry.dx, entry.y + entry.dy),
    };
}

export function insidePicture(point) {
    return point.x >= 0 && point.x <= 1 && point.y >= 0 && point.y <= 1;
}

/** An entry in pixels of a width x height picture, exactly as drags.py maps it. */
export function normalizedToPixels(entry, width, height) {
    return { x: entry.x * width - 0.5, y: entry.y * height - 0.5, dx: entry.dx * width, dy: entry.dy * height };
}

/** The inverse of normalizedToPixels. */
export function pixelsToNormalized(point, width, height) {
    return { x: (point.x + 0.5) / width, y: (point.y + 0.5) / height, dx: point.dx / width, dy: point.dy / height };
}

function isFiniteNumber(value) {
    return typeof value === "number" && Number.isFinite(value);
}

/** Why entry number index (0-based) is not a valid drag, in the words drags.py uses; null when valid. */
export function validateDrag(entry, index) {
    const name = `drag ${index + 1}`;
    if (entry === null || typeof entry !== "object" || Array.isArray(entry)) {
        return `${name} is ${JSON.stringify(entry)}, not an object like ${EXAMPLE_JSON}`;
    }
    for (const key of ["x", "y", "dx", "dy"]) {
        if (!(key in entry)) return `${name} has no '${key}'; every drag needs x, y, dx and dy.`;
    }
    for (const key of ["x", "y", "dx", "dy", "start", "hold"]) {
        if (key in entry && !isFiniteNumber(entry[key])) {
            return `${name} has ${key}=${JSON.stringify(entry[key])}; it must be a finite number.`;
        }
    }
    const kind = entry.kind ?? "drag";
    if (!DRAG_KINDS.includes(kind)) return `${name} has kind ${JSON.stringify(kind)}; use 'drag' or 'poke'.`;
    if (!insidePicture(entry)) {
        return `${name} is at (${entry.x}, ${entry.y}), outside the picture; x and y are fractions of its width and height in 0..1.`;
    }
    if (entry.dx === 0 && entry.dy === 0) return `${name} at (${entry.x}, ${entry.y}) has zero length; give it a direction or remove it.`;
    if ((entry.start ?? 0) < 0 || (entry.hold ?? 0) < 0) {
        return `${name} has start=${entry.start}, hold=${entry.hold}; frames must be >= 0.`;
    }
    return null;
}

/**
 * Parse a drags JSON string: {drags, error}. drags are plain entries (as stored); error is the first
 * problem found (then drags is []). An empty or blank string means no drags.
 */
export function parseDrags(text) {
    if (typeof text !== "string" || text.trim() === "") return { drags: [], error: null };
    let data;
    try {
        data = JSON.parse(text);
    } catch (error) {
        return { drags: [], error: `the drags text is not valid JSON (${error.message}); expected for example ${EXAMPLE_JSON}` };
    }
    if (data === null || typeof data !== "object" || Array.isArray(data) || !Array.isArray(data.drags)) {
        return { drags: [], error: `the drags JSON must be an object with a 'drags' list, like ${EXAMPLE_JSON}` };
    }
    if ((data.version ?? DRAGS_VERSION) !== DRAGS_VERSION) {
        return { drags: [], error: `the drags JSON has version ${JSON.stringify(data.version)}; this widget reads version 1.` };
    }
    for (let i = 0; i < data.drags.length; i++) {
        const error = validateDrag(data.drags[i], i);
        if (error) return { drags: [], error };
    }
    return { drags: data.drags.map((entry) => ({ ...entry })), error: null };
}

/** Entries -> the drags JSON string (fixed key order, 5 decimals; start/hold only when set). */
export function serializeDrags(drags) {
    const entries = drags.map((entry) => {
        const out = { x: roundStored(entry.x), y: roundStored(entry.y), dx: roundStored(entry.dx), dy: roundStored(entry.dy) };
        if (entry.start !== undefined && entry.start !== null) out.start = entry.start;
        if (entry.hold !== undefined && entry.hold !== null) out.hold = entry.hold;
        out.kind = entry.kind ?? "drag";
        return out;
    });
    return JSON.stringify({ version: DRAGS_VERSION, drags: entries });
}

function distanceToSegment(p, a, b) {
    const ex = b.x - a.x;
    const ey = b.y - a.y;
    const length2 = ex * ex + ey * ey;
    const t = length2 > 0 ? Math.min(1, Math.max(0, ((p.x - a.x) * ex + (p.y - a.y) * ey) / length2)) : 0;
    return Math.hypot(p.x - (a.x + t * ex), p.y - (a.y + t * ey));
}

/**
 * The arrow part under canvas point (cx, cy): {index, part} with part "tip", "point" or "shaft",
 * or null. Tips win over points, points over shafts; among equals the latest (top-most) arrow wins.
 */
export function hitTest(drags, rect, cx, cy, tolerance = 8) {
    const p = { x: cx, y: cy };
    for (const part of ["tip", "point", "shaft"]) {
        for (let i = drags.length - 1; i >= 0; i--) {
            const { point, tip } = arrowOnCanvas(rect, drags[i]);
            const distance = part === "tip" ? Math.hypot(p.x - tip.x, p.y - tip.y)
                : part === "point" ? Math.hypot(p.x - point.x, p.y - point.y)
                : distanceToSegment(p, point, tip);
            if (distance <= tolerance) return { index: i, part };
        }
    }
    return null;
}

/** A copy of drags with entry index replaced by changes applied to it. */
function withEntry(drags, index, changes) {
    return drags.map((entry, i) => (i === index ? { ...entry, ...changes } : entry));
}

/** Append a zero-length arrow at a normalized point (clamped into the picture): {drags, index}. */
export function addDrag(drags, point, kind = "drag") {
    const entry = { x: clamp01(point.x), y: clamp01(point.y), dx: 0, dy: 0, kind };
    return { drags: [...drags, entry], index: drags.length };
}

/** Point the arrow of entry index at a normalized tip position (the tip may leave the picture). */
export function moveTip(drags, index, tip) {
    const entry = drags[index];
    return withEntry(drags, index, { dx: tip.x - entry.x, dy: tip.y - entry.y });
}

/** Move entry index's point (clamped into the picture), keeping its arrow. */
export function movePoint(drags, index, point) {
    return withEntry(drags, index, { x: clamp01(point.x), y: clamp01(point.y) });
}

export function removeDrag(drags, index) {
    return drags.filter((_, i) => i !== index);
}

export function setKind(drags, index, kind) {
    if (!DRAG_KINDS.includes(kind)) throw new Error(`unknown drag kind ${kind}; use 'drag' or 'poke'`);
    return withEntry(drags, index, { kind });
}

/** Set start / hold frames of entry index; null or undefined removes the key (node default). */
export function setTiming(drags, index, { start, hold }) {
    const entry = { ...drags[index] };
    for (const [key, value] of [["start", start], ["hold", hold]]) {
        if (value === null || value === undefined || value === "") delete entry[key];
        else if (isFiniteNumber(value) && value >= 0) entry[key] = value;
        else throw new Error(`${key} must be a number of frames >= 0, got ${value}`);
    }
    return drags.map((old, i) => (i === index ? entry : old));
}

/**
 * Pointer gestures on the canvas -> edits of the drag list. The DOM layer calls down/move/up with
 * canvas coordinates and the picture's rect, redraws when move returns true, and saves `drags`
 * when up (or removeSelected/clear/setSelected*) returns true: the list changed.
 *   press on an arrow tip: re-aim it; on its point or shaft: move it; elsewhere on the picture:
 *   start a new arrow there (of kind newKind) and aim it while the pointer moves. A new arrow
 *   shorter than MIN_GESTURE_PX canvas pixels is dropped on release (a click only selects).
 */
export class DragEditor {
    constructor(drags = []) {
        this.drags = drags;
        this.selected = null;
        this.gesture = null;
    }

    setDrags(drags) {
        this.drags = drags;
        if (this.selected !== null && this.selected >= drags.length) this.selected = null;
        this.gesture = null;
    }

    down(rect, cx, cy, newKind = "drag") {
        const before = serializeDrags(this.drags);
        const hit = hitTest(this.drags, rect, cx, cy);
        if (hit) {
            this.selected = hit.index;
            const entry = this.drags[hit.index];
            const at = canvasToNormalized(rect, cx, cy);
            const part = hit.part === "tip" ? "tip" : "point";
            this.gesture = { part, created: false, grab: { x: at.x - entry.x, y: at.y - entry.y }, from: { x: cx, y: cy }, before };
            return;
        }
        const at = canvasToNormalized(rect, cx, cy);
        if (!insidePicture(at)) {
            this.selected = null;
            this.gesture = null;
            return;
        }
        const { drags, index } = addDrag(this.drags, at, newKind);
        this.drags = drags;
        this.selected = index;
        this.gesture = { part: "tip", created: true, grab: { x: 0, y: 0 }, from: { x: cx, y: cy }, before };
    }

    move(rect, cx, cy) {
        if (!this.gesture || this.selected === null) return false;
        const at = canvasToNormalized(rect, cx, cy);
        if (this.gesture.part === "tip") this.drags = moveTip(this.drags, this.selected, at);
        else this.drags = movePoint(this.drags, this.selected, { x: at.x - this.gesture.grab.x, y: at.y - this.gesture.grab.y });
        return true;
    }

    up(rect, cx, cy) {
        const gesture = this.gesture;
        this.gesture = null;
        if (!gesture || this.selected === null) return false;
        const moved = Math.hypot(cx - gesture.from.x, cy - gesture.from.y);
        if (gesture.created && moved < MIN_GESTURE_PX) {
            this.drags = removeDrag(this.drags, this.selected); // a click: nothing to store
            this.selected = null;
        } else {
            this.gesture = gesture;
            this.move(rect, cx, cy);
            this.gesture = null;
            const entry = this.drags[this.selected];
            if (roundStored(entry.dx) === 0 && roundStored(entry.dy) === 0) {
                this.drags = removeDrag(this.drags, this.selected); // never store a zero-length drag
                this.selected = null;
            }
        }
        return serializeDrags(this.drags) !== gesture.before;
    }

    /** Change the selected arrow's kind; true when the list changed. */
    setSelectedKind(kind) {
        if (this.selected === null || this.drags[this.selected].kind === kind) return false;
        this.drags = setKind(this.drags, this.selected, kind);
        return true;
    }

    /** Change the selected arrow's start / hold frames (null = node default); true when changed. */
    setSelectedTiming(timing) {
        if (this.selected === null) return false;
        const before = serializeDrags(this.drags);
        this.drags = setTiming(this.drags, this.selected, { ...this.drags[this.selected], ...timing });
        return serializeDrags(this.drags) !== before;
    }

    removeSelected() {
        if (this.selected === null) return false;
        this.drags = removeDrag(this.drags, this.selected);
        this.selected = null;
        return true;
    }

    clear() {
        const changed = this.drags.length > 0;
        this.drags = [];
        this.selected = null;
        return changed;
    }
}
