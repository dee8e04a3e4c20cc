// Interaction recording: the live preview's drags -> the `drags` JSON of GIDModalSimulation.
//
// Widget format (version 1), shared with nodes/dynamics.py:
//   {"version": 1, "drags": [{"x", "y", "dx", "dy", "start", "hold", "kind"}, ...]}
// x, y in 0..1 of width/height; dx in units of width, dy of height; start and hold in frames at
// the node's fps; kind "drag" (held for `hold` frames, then released) or "poke" (an impulse at
// `start`). Frames are counted by the live simulation, which steps at the node's fps, so a
// recorded take replays frame-exactly. Pure module: no DOM.

export const DRAGS_VERSION = 1;
export const DRAG_KINDS = ["drag", "poke"];

const DECIMALS = 1e5;

function round(value) {
    return Math.round(value * DECIMALS) / DECIMALS;
}

/** One take: the drags from the first press after the picture came to rest until it rests again. */
export class InteractionRecorder {
    constructor() {
        this.drags = [];
        this.active = null;
    }

    /** Forget everything (a new take starts at frame 0 of the caller's clock). */
    clear() {
        this.drags = [];
        this.active = null;
    }

    /** A press at (x, y) in 0..1 on `frame`; kind "drag" or "poke". */
    press(frame, x, y, kind = "drag") {
        if (!DRAG_KINDS.includes(kind)) throw new Error(`unknown drag kind ${kind}`);
        this.active = { x, y, dx: 0, dy: 0, start: frame, hold: 0, kind };
    }

    /** The pointer moved: the drag vector (units of width, height) is now (dx, dy). */
    move(dx, dy) {
        if (!this.active) return;
        this.active.dx = dx;
        this.active.dy = dy;
    }

    /**
     * The pointer was released on `frame`. A drag was held from its press until now; a poke fires
     * now. Zero-length gestures are dropped. Returns the finished drag or null.
     */
    release(frame) {
        const drag = this.active;
        this.active = null;
        if (!drag || (drag.dx === 0 && drag.dy === 0)) return null;
        if (drag.kind === "drag") {
            drag.hold = Math.max(1, frame - drag.start);
        } else {
            drag.start = frame;
            drag.hold = 0;
        }
        this.drags.push(drag);
        return drag;
    }

    get isEmpty() {
        return this.drags.length === 0;
    }

    /** Frame after which the last recorded drag has been released (0 for an empty take). */
    get lastReleaseFrame() {
        return this.drags.reduce((end, d) => Math.max(end, d.start + d.hold), 0);
    }

    /** The take as the widget's JSON string. */
    toJSON() {
        return dragsToJSON(this.drags);
    }
}

/** Serialise drags to the widget format (coordinates rounded to 1e-5). */
export function dragsToJSON(drags) {
    const clean = drags.map((d) => ({
        x: round(d.x),
        y: round(d.y),
        dx: round(d.dx),
        dy: round(d.dy),
        start: Math.round(d.start),
        hold: Math.round(d.hold),
        kind: d.kind,
    }));
    return JSON.stringify({ version: DRAGS_VERSION, drags: clean });
}

/**
 * A widget-format drag in pixels of a width x height grid, as gid_models/dynamics/drags.py
 * converts it: pixel centres at integers, so x = 0.5 is the middle of the picture.
 */
export function dragToPixels(drag, width, height) {
    return { x: drag.x * width - 0.5, y: drag.y * height - 0.5, dx: drag.dx * width, dy: drag.dy * height };
}

/**
 * Parse and check a widget value; an empty string means no drags. A drag without "hold" is held
 * for defaultHold frames (the node's hold_frames). Throws with the reason.
 */
export function parseDragsJSON(text, defaultHold = 15) {
    if (!text || !text.trim()) return [];
    const value = JSON.parse(text);
    if ((value.version ?? DRAGS_VERSION) !== DRAGS_VERSION || !Array.isArray(value.drags)) {
        throw new Error(`drags JSON must be {"version": ${DRAGS_VERSION}, "drags": [...]}`);
    }
    return value.drags.map((entry, i) => {
        const d = { start: 0, hold: defaultHold, ...entry };
        for (const key of ["x", "y", "dx", "dy", "start", "hold"]) {
            if (typeof d[key] !== "number" || !Number.isFinite(d[key])) throw new Error(`drag ${i + 1}: '${key}' must be a number`);
        }
        const kind = d.kind ?? "drag";
        if (!DRAG_KINDS.includes(kind)) throw new Error(`drag ${i + 1}: kind must be "drag" or "poke", got ${kind}`);
        return { x: d.x, y: d.y, dx: d.dx, dy: d.dy, start: d.start, hold: kind === "poke" ? 0 : d.hold, kind };
    });
}
