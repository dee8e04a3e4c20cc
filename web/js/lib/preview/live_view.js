// The live poke preview as a DOM component, independent of ComfyUI (the test page uses it as is).
//
// It owns a canvas, a renderer (WebGL2, else 2D canvas), a ModalSimulator stepping at the node's
// fps on a fixed clock, and an InteractionRecorder. Pointer drags on the canvas hold a drag at the
// pressed point (Shift + drag: a poke fired on release); releasing lets the picture oscillate
// and decay. Frames are counted from the first press of a take, so a recorded take replays
// frame-exactly through the Python simulation.

import { createGLRenderer } from "./gl_renderer.js";
import { createCanvasRenderer } from "./canvas_renderer.js";
import { ModalSimulator } from "./modal_sim.js";
import { InteractionRecorder, parseDragsJSON } from "./recording.js";

export const MAX_CANVAS_SIDE = 640;
const REST_TOLERANCE = 0.05; // source pixels: once no point can move more, the take has ended
const MAX_STEPS_PER_TICK = 8; // after a stall, catch up at most this many frames
const CANVAS_STYLE = "width:100%;height:100%;object-fit:contain;display:block;touch-action:none;cursor:grab;";

/**
 * Point (x, y) in 0..1 of the picture under a pointer at (clientX, clientY), for a canvas shown
 * with object-fit: contain inside `rect` (its element box): the picture is centred and scaled to fit.
 */
export function pointerToPicture(clientX, clientY, rect, canvasWidth, canvasHeight) {
    const scale = Math.min(rect.width / canvasWidth, rect.height / canvasHeight);
    const left = rect.left + (rect.width - canvasWidth * scale) / 2;
    const top = rect.top + (rect.height - canvasHeight * scale) / 2;
    return [(clientX - left) / (canvasWidth * scale), (clientY - top) / (canvasHeight * scale)];
}

/** Canvas size (width, height) for a picture: its own size, long side capped at maxSide. */
export function canvasSize(pictureWidth, pictureHeight, maxSide = MAX_CANVAS_SIDE) {
    const scale = Math.min(1, maxSide / Math.max(pictureWidth, pictureHeight));
    return [Math.max(1, Math.round(pictureWidth * scale)), Math.max(1, Math.round(pictureHeight * scale))];
}

export class LivePreview {
    /**
     * container: element the canvas goes into. getParams(): the node's current simulation
     * settings {damping, stiffness_scale, mass_scale, fps, hold_frames}. onStatus(text): status line.
     * preferWebGL: try WebGL2 first; allowSoftwareWebGL: use it even when it runs on the CPU
     * (SwiftShader), which is slower than the canvas path (tests set it to check the shader).
     */
    constructor(container, { getParams = () => ({}), onStatus = () => {}, preferWebGL = true, allowSoftwareWebGL = false } = {}) {
        this.container = container;
        this.getParams = getParams;
        this.onStatus = onStatus;
        this.preferWebGL = preferWebGL;
        this.allowSoftwareWebGL = allowSoftwareWebGL;
        this.canvas = null;
        this.renderer = null;
        this.simulator = null;
        this.recorder = new InteractionRecorder();
        this.lastTake = "";
        this.pointer = null; // {id, x, y, kind} while the pointer is down
        this.hold = null; // id of the live drag being held
        this.replay = null; // {lastFrame} while playing the widget's drags
        this.clockSeconds = 0;
        this.lastTick = null;
        this.animating = false;
        this.framesDrawn = 0; // frames drawn by stepFrames (the animation loop's frame rate, for tests)
    }

    /** Show `picture` (a loaded CanvasImageSource with width/height) moving with `basis`. */
    setContent(basis, picture) {
        this.dispose();
        const [width, height] = canvasSize(picture.naturalWidth || picture.width, picture.naturalHeight || picture.height);
        this.canvas = Object.assign(document.createElement("canvas"), { width, height });
        this.canvas.style.cssText = CANVAS_STYLE;
        this.container.appendChild(this.canvas);
        this.renderer = (this.preferWebGL && createGLRenderer(this.canvas, basis, picture, { allowSoftware: this.allowSoftwareWebGL })) || null;
        if (!this.renderer) {
            this.canvas.remove(); // a canvas that asked for webgl2 cannot give a 2D context
            this.canvas = Object.assign(document.createElement("canvas"), { width, height });
            this.canvas.style.cssText = CANVAS_STYLE;
            this.container.appendChild(this.canvas);
            this.renderer = createCanvasRenderer(this.canvas, basis, picture);
        }
        this.basis = basis;
        this.simulator = new ModalSimulator(basis, this.getParams());
        this.attachPointer();
        this.renderer.render(this.simulator.qRe, this.simulator.qIm);
        this.onStatus(`${this.renderer.kind}, ${basis.numModes} modes: drag the picture (Shift: poke)`);
    }

    attachPointer() {
        const canvas = this.canvas;
        const toUnit = (event) => pointerToPicture(event.clientX, event.clientY, canvas.getBoundingClientRect(), canvas.width, canvas.height);
        canvas.addEventListener("pointerdown", (event) => {
            event.preventDefault();
            event.stopPropagation(); // keep the graph canvas from dragging the node
            const [x, y] = toUnit(event);
            if (!this.simulator || this.pointer || x < 0 || x > 1 || y < 0 || y > 1) return; // letterbox
            if (this.press(x, y, event.shiftKey ? "poke" : "drag", event.pointerId)) canvas.setPointerCapture(event.pointerId);
        });
        canvas.addEventListener("pointermove", (event) => {
            if (!this.pointer || this.pointer.id !== event.pointerId) return;
            event.preventDefault();
            event.stopPropagation();
            const [x, y] = toUnit(event);
            this.moveTo(x, y);
        });
        const end = (event) => {
            if (!this.pointer || this.pointer.id !== event.pointerId) return;
            event.stopPropagation();
            this.release();
        };
        canvas.addEventListener("pointerup", end);
        canvas.addEventListener("pointercancel", end);
    }

    /** Start a gesture at (x, y) in 0..1 of the picture; false if it cannot start. */
    press(x, y, kind = "drag", pointerId = null) {
        if (!this.simulator || this.pointer) return false;
        if (this.replay || this.simulator.isAtRest(REST_TOLERANCE)) {
            // A new take: from rest, at frame 0, with the node's current settings.
            try {
                this.simulator.configure(this.getParams());
            } catch (error) {
                this.onStatus(`Cannot simulate with these settings: ${error.message}`);
                return false;
            }
            this.replay = null;
            this.simulator.reset();
            this.recorder.clear();
        }
        this.pointer = { id: pointerId, x, y, kind };
        this.recorder.press(this.simulator.frame, x, y, kind);
        this.hold = kind === "drag" ? this.simulator.startHold(x, y) : null;
        this.ensureAnimating();
        return true;
    }

    /** The pointer is now at (x, y): the drag vector is from the pressed point to here. */
    moveTo(x, y) {
        if (!this.pointer) return;
        const dx = x - this.pointer.x;
        const dy = y - this.pointer.y;
        this.recorder.move(dx, dy);
        if (this.hold !== null) this.simulator.updateHold(this.hold, dx, dy);
    }

    /** End the gesture: a drag is let go, a poke fires. */
    release() {
        if (!this.pointer) return;
        this.pointer = null;
        const drag = this.recorder.release(this.simulator.frame);
        if (this.hold !== null) {
            this.simulator.release(this.hold);
            this.hold = null;
        } else if (drag && !this.simulator.poke(drag.x, drag.y, drag.dx, drag.dy)) {
            this.onStatus("that point does not move along the poke's direction");
        }
        if (!this.recorder.isEmpty) this.lastTake = this.recorder.toJSON();
        this.ensureAnimating();
    }

    /** The drags JSON of the last take (empty string if nothing was dragged yet). */
    recordedTake() {
        return this.lastTake;
    }

    /** Frame at which the last recorded take lets go of its last drag (0 without a take). */
    takeFrames() {
        const drags = this.lastTake ? JSON.parse(this.lastTake).drags : [];
        return drags.reduce((end, d) => Math.max(end, d.start + d.hold), 0);
    }

    /** Play a drags JSON (the node's widget value) from rest exactly as the node will simulate it. */
    playDrags(text) {
        if (!this.simulator) return;
        const params = this.getParams();
        const drags = parseDragsJSON(text, params.hold_frames ?? 15);
        this.simulator.configure(params);
        this.simulator.reset();
        this.simulator.addDrags(drags); // throws for a drag the modes cannot move
        this.replay = { lastFrame: drags.reduce((end, d) => Math.max(end, d.start + d.hold), 0) };
        this.ensureAnimating();
    }

    /** Advance the simulation by whole frames at the node's fps and draw the last one. */
    stepFrames(count) {
        for (let i = 0; i < count; i++) this.simulator.step();
        this.renderer.render(this.simulator.qRe, this.simulator.qIm);
        this.framesDrawn += 1;
    }

    ensureAnimating() {
        if (this.animating || typeof requestAnimationFrame === "undefined") return;
        this.animating = true;
        this.lastTick = null;
        this.clockSeconds = 0;
        requestAnimationFrame((t) => this.tick(t));
    }

    tick(now) {
        if (!this.simulator || !this.animating) return;
        const dt = this.lastTick === null ? 0 : (now - this.lastTick) / 1000;
        this.lastTick = now;
        this.clockSeconds += dt;
        const frameSeconds = 1 / this.simulator.fps;
        let steps = Math.floor(this.clockSeconds / frameSeconds);
        this.clockSeconds -= steps * frameSeconds;
        steps = Math.min(steps, MAX_STEPS_PER_TICK);
        if (steps > 0) this.stepFrames(steps);
        const replayRunning = this.replay && this.simulator.frame <= this.replay.lastFrame;
        if (!this.pointer && !replayRunning && this.simulator.isAtRest(REST_TOLERANCE)) {
            this.animating = false;
            this.replay = null;
            this.renderer.render(this.simulator.qRe, this.simulator.qIm);
            return;
        }
        requestAnimationFrame((t) => this.tick(t));
    }

    /** RGBA pixels of the last drawn frame, rows top-first (for tests). */
    readPixels() {
        return this.renderer.readPixels();
    }

    dispose() {
        this.animating = false;
        if (this.renderer) this.renderer.dispose();
        if (this.canvas) this.canvas.remove();
        this.canvas = null;
        this.renderer = null;
        this.simulator = null;
    }
}
