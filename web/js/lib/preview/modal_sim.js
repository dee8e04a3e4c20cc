// Modal simulation in the browser: a line-by-line port of gid_models/dynamics/modal.py (its
// module docstring is the specification; the numbered steps below refer to it). Pure module.
//
// Each complex modal coordinate q_j obeys q'' + 2 zeta w q' + w^2 q = g(t) / m with
// w = omega_j sqrt(stiffness_scale), m = m_j mass_scale. Drags and pokes are calibrated on the
// unscaled system (step 3); a held drag bends the picture into its static response, a release lets
// it go from rest at that shape, a poke is a velocity jump (step 4); between frames the state
// moves with the exact free propagator (step 5). The same Simulator runs scheduled drags (the
// node's widget, the shared test vectors) and live ones (the pointer), so both share one code path.

import { modeShapeAt } from "./warp.js";
import { dragToPixels } from "./recording.js";

export const IMMOVABLE_RELATIVE = 1e-12;
export const EULER_STEP_BOUND = 0.1;
export const MAX_EULER_SUBSTEPS = 10000;

/** Integer event frame of a start or hold given as a number: floor(x + 0.5) (step 1). */
export function eventFrame(value) {
    return Math.floor(value + 0.5);
}

/** Smoothstep r(x) = x^2 (3 - 2x): how far a held drag has bent the picture (step 4b). */
export function smoothstep(x) {
    return x * x * (3 - 2 * x);
}

/** Exact free propagator [p11, p12, p21, p22] of q'' + 2 zeta w q' + w^2 q = 0 over h seconds (step 5). */
export function stepMatrix(omega, zeta, h) {
    const decay = Math.exp(-zeta * omega * h);
    let c;
    let s;
    if (zeta < 1) {
        const damped = omega * Math.sqrt(1 - zeta * zeta);
        c = decay * Math.cos(damped * h);
        s = (decay * Math.sin(damped * h)) / damped;
    } else if (zeta === 1) {
        c = decay;
        s = decay * h;
    } else {
        const growth = omega * Math.sqrt(zeta * zeta - 1);
        c = decay * Math.cosh(growth * h);
        s = (decay * Math.sinh(growth * h)) / growth;
    }
    return [c + zeta * omega * s, s, -omega * omega * s, c - zeta * omega * s];
}

/** Semi-implicit Euler sub-steps per frame so that h_sub * omega_max <= EULER_STEP_BOUND (step 5). */
export function eulerSubsteps(omegas, h) {
    const worst = omegas.length ? Math.max(...omegas) * h : 0;
    const substeps = Math.max(1, Math.ceil(worst / EULER_STEP_BOUND - 1e-9));
    if (substeps > MAX_EULER_SUBSTEPS) throw new Error(`the Euler integrator would need ${substeps} sub-steps per frame`);
    return substeps;
}

/** The paper's stepping as semi-implicit Euler: E^substeps over one frame of h seconds (step 5). */
export function eulerStepMatrix(omega, zeta, h, substeps) {
    const hs = h / substeps;
    const friction = 1 - 2 * zeta * omega * hs;
    const e = [1 - hs * hs * omega * omega, hs * friction, -hs * omega * omega, friction];
    let result = [1, 0, 0, 1];
    let power = e;
    for (let n = substeps; n > 0; n >>= 1) {
        const [a, b, c, d] = power;
        if (n & 1) {
            const [r11, r12, r21, r22] = result;
            result = [r11 * a + r12 * c, r11 * b + r12 * d, r21 * a + r22 * c, r21 * b + r22 * d];
        }
        power = [a * a + b * c, a * b + b * d, c * a + d * c, c * b + d * d];
    }
    return result;
}

/** Default settle time (s): released modes decay to 1% of their envelope within it (modal.py step 6). */
export const SETTLE_SECONDS = 2.0;

/**
 * Free dynamics after a release (modal.py step 6): [omega', zeta] per mode, every mode decaying at
 * least at ln(100) / settleSeconds; settleSeconds 0 keeps omega and damping.
 */
export function settledDynamics(omega, damping, settleSeconds) {
    if (!settleSeconds) return [omega, damping];
    const rate = Math.log(100) / settleSeconds;
    const released = Math.max(omega, rate);
    return [released, Math.max(damping, rate / released)];
}

/** Simulation settings from the node's widgets (missing ones take the node's defaults). */
export function simulationSettings(params = {}) {
    const settings = {
        damping: Number(params.damping ?? 0.05),
        stiffnessScale: Number(params.stiffness_scale ?? 1),
        massScale: Number(params.mass_scale ?? 1),
        fps: Number(params.fps ?? 30),
        holdFrames: Number(params.hold_frames ?? 15),
        integrator: params.integrator ?? "exact",
        settleSeconds: Number(params.settle_seconds ?? SETTLE_SECONDS),
    };
    if (!["exact", "euler"].includes(settings.integrator)) throw new Error(`unknown integrator ${settings.integrator}`);
    if (!(settings.fps > 0) || !(settings.damping >= 0) || !(settings.stiffnessScale > 0) || !(settings.massScale > 0)
        || !(settings.settleSeconds >= 0)) {
        throw new Error(`invalid simulation settings ${JSON.stringify(params)}`);
    }
    return settings;
}

/** The oscillators of a basis under given settings: scaled omegas/masses, propagators, calibration. */
export class ModalSystem {
    constructor(basis, params = {}) {
        this.basis = basis;
        this.settings = simulationSettings(params);
        const { damping, stiffnessScale, massScale, fps, integrator, settleSeconds } = this.settings;
        const J = basis.numModes;
        this.omegas = Float64Array.from(basis.omegas, (w) => w * Math.sqrt(stiffnessScale));
        this.masses = Float64Array.from(basis.masses, (m) => m * massScale);
        const released = Array.from(this.omegas, (w) => settledDynamics(w, damping, settleSeconds));
        if (integrator === "euler") {
            const substeps = eulerSubsteps(released.map(([w]) => w), 1 / fps);
            this.propagators = released.map(([w, zeta]) => eulerStepMatrix(w, zeta, 1 / fps, substeps));
        } else {
            this.propagators = released.map(([w, zeta]) => stepMatrix(w, zeta, 1 / fps));
        }
        this.staticWeights = Float64Array.from({ length: J }, (_, j) => 1 / (basis.masses[j] * basis.omegas[j] ** 2));
        this.pokeWeights = Float64Array.from({ length: J }, (_, j) => 1 / (basis.masses[j] * basis.omegas[j]));
        this.staticFloor = this.calibrationFloor(this.staticWeights);
        this.pokeFloor = this.calibrationFloor(this.pokeWeights);
    }

    /** Largest sum_j w_j |phi_j(p)|^2 over the grid times IMMOVABLE_RELATIVE (step 3). */
    calibrationFloor(weights) {
        const { shapes, width, height, numModes } = this.basis;
        const count = width * height;
        let best = 0;
        for (let p = 0; p < count; p++) {
            let total = 0;
            for (let j = 0; j < numModes; j++) {
                const k = (j * count + p) * 4;
                total += weights[j] * (shapes[k] ** 2 + shapes[k + 1] ** 2 + shapes[k + 2] ** 2 + shapes[k + 3] ** 2);
            }
            best = Math.max(best, total);
        }
        return best * IMMOVABLE_RELATIVE;
    }

    /**
     * Calibrated response of a widget-format drag (x, y, dx, dy in picture units) (steps 2-3):
     * {re, im} per mode, the static response s_j for kind "drag", the velocity jump dv_j for
     * "poke"; null when the point cannot move along d (modal.py refuses such a drag).
     */
    response(drag) {
        const { basis } = this;
        const px = dragToPixels(drag, basis.sourceWidth, basis.sourceHeight);
        const J = basis.numModes;
        const poke = drag.kind === "poke";
        const weights = poke ? this.pokeWeights : this.staticWeights;
        const lengthSq = px.dx * px.dx + px.dy * px.dy;
        const gRe = new Float64Array(J);
        const gIm = new Float64Array(J);
        // Pixel centres at integers, clamped to [0, W-1]; the basis grid may be coarser than the source.
        const u = Math.min(Math.max(px.x, 0), basis.sourceWidth - 1);
        const v = Math.min(Math.max(px.y, 0), basis.sourceHeight - 1);
        let total = 0;
        for (let j = 0; j < J; j++) {
            const [ax, bx, ay, by] = modeShapeAt(basis, j, (u + 0.5) / basis.sourceWidth, (v + 0.5) / basis.sourceHeight);
            gRe[j] = ax * px.dx + ay * px.dy; // conj(phi) . d with d real
            gIm[j] = -(bx * px.dx + by * px.dy);
            total += weights[j] * (gRe[j] ** 2 + gIm[j] ** 2);
        }
        const floor = (poke ? this.pokeFloor : this.staticFloor) * lengthSq;
        if (!(total > floor)) return null;
        const scale = lengthSq / total;
        const re = new Float64Array(J);
        const im = new Float64Array(J);
        for (let j = 0; j < J; j++) {
            const divisor = poke ? this.masses[j] : this.masses[j] * this.omegas[j] ** 2;
            re[j] = (gRe[j] * scale) / divisor;
            im[j] = (gIm[j] * scale) / divisor;
        }
        return { re, im };
    }
}

/**
 * The frame loop of step 4 for scheduled and live drags. step() outputs q(t_n) into qRe/qIm for
 * frame n = this.frame, then advances the state to t_{n+1}.
 */
export class ModalSimulator {
    constructor(basis, params = {}) {
        this.basis = basis;
        const J = basis.numModes;
        this.stateQ = [new Float64Array(J), new Float64Array(J)]; // [re, im]
        this.stateV = [new Float64Array(J), new Float64Array(J)];
        this.qRe = new Float64Array(J);
        this.qIm = new Float64Array(J);
        this.configure(params);
        this.reset();
    }

    /** Adopt new settings (takes effect for the following steps). */
    configure(params) {
        this.system = new ModalSystem(this.basis, params);
        this.fps = this.system.settings.fps;
    }

    /** Back to rest at frame 0 with nothing scheduled. */
    reset() {
        for (const a of [...this.stateQ, ...this.stateV, this.qRe, this.qIm]) a.fill(0);
        this.frame = 0;
        this.holds = new Map(); // id -> {start, hold (frames, null while live), response}
        this.kicks = new Map(); // frame -> [{target: "q" | "v", response}]
        this.nextId = 1;
    }

    schedule(frame, target, response) {
        if (!this.kicks.has(frame)) this.kicks.set(frame, []);
        this.kicks.get(frame).push({ target, response });
    }

    /** Schedule widget-format drags (step 4a-b); throws for a drag that cannot move its point. */
    addDrags(drags) {
        drags.forEach((drag, index) => {
            const response = this.system.response(drag);
            if (!response) throw new Error(`${drag.kind} ${index + 1} pulls a point that the modes cannot move along its direction`);
            const start = eventFrame(drag.start);
            if (drag.kind === "poke") {
                this.schedule(start, "v", response);
                return;
            }
            const hold = eventFrame(drag.hold);
            this.holds.set(this.nextId++, { start, hold, response });
            this.schedule(start + hold, "q", response);
        });
    }

    /** A live drag pressed at (x, y) from the current frame; its vector follows updateHold. */
    startHold(x, y) {
        const id = this.nextId++;
        this.holds.set(id, { start: this.frame, hold: null, x, y, response: null });
        return id;
    }

    /** The live drag's vector is now (dx, dy) (picture units): the picture bends to it at once. */
    updateHold(id, dx, dy) {
        const hold = this.holds.get(id);
        if (hold) hold.response = this.system.response({ x: hold.x, y: hold.y, dx, dy, kind: "drag" });
    }

    /** Let a live drag go; like a drag held start..release (at least one frame) in the widget format. */
    release(id) {
        const hold = this.holds.get(id);
        if (!hold) return;
        this.holds.delete(id);
        if (hold.response) this.schedule(Math.max(this.frame, hold.start + 1), "q", hold.response);
    }

    /** A live poke fired at the current frame. */
    poke(x, y, dx, dy) {
        const response = this.system.response({ x, y, dx, dy, kind: "poke" });
        if (response) this.schedule(this.frame, "v", response);
        return response !== null;
    }

    step() {
        const n = this.frame;
        const J = this.basis.numModes;
        for (const { target, response } of this.kicks.get(n) || []) {
            const [re, im] = target === "q" ? this.stateQ : this.stateV;
            for (let j = 0; j < J; j++) {
                re[j] += response.re[j];
                im[j] += response.im[j];
            }
        }
        this.kicks.delete(n);
        this.qRe.set(this.stateQ[0]);
        this.qIm.set(this.stateQ[1]);
        for (const [id, { start, hold, response }] of this.holds) {
            if (hold !== null && n >= start + hold) {
                this.holds.delete(id);
                continue;
            }
            if (!response || n < start) continue;
            const weight = hold === null ? 1 : smoothstep((n - start) / hold);
            for (let j = 0; j < J; j++) {
                this.qRe[j] += weight * response.re[j];
                this.qIm[j] += weight * response.im[j];
            }
        }
        const [qr, qi] = this.stateQ;
        const [vr, vi] = this.stateV;
        for (let j = 0; j < J; j++) {
            const [p11, p12, p21, p22] = this.system.propagators[j];
            const a = qr[j];
            const b = qi[j];
            qr[j] = p11 * a + p12 * vr[j];
            qi[j] = p11 * b + p12 * vi[j];
            vr[j] = p21 * a + p22 * vr[j];
            vi[j] = p21 * b + p22 * vi[j];
        }
        this.frame = n + 1;
    }

    /**
     * True when nothing is held or scheduled and the picture cannot move by more than `tolerance`
     * source pixels anywhere: sum_j max_p |phi_j(p)| (|q_j| + |v_j| / w_j) < tolerance.
     */
    isAtRest(tolerance) {
        if (this.holds.size || this.kicks.size) return false;
        if (this.peaks === undefined) this.peaks = modePeaks(this.basis);
        let bound = 0;
        for (let j = 0; j < this.basis.numModes; j++) {
            const swing = Math.hypot(this.stateQ[0][j], this.stateQ[1][j]) + Math.hypot(this.stateV[0][j], this.stateV[1][j]) / this.system.omegas[j];
            bound += this.peaks[j] * swing;
        }
        return bound < tolerance;
    }
}

/** (J) largest |phi_j(p)| over the grid (complex 2-vector norm, source pixels). */
export function modePeaks(basis) {
    const { shapes, numModes, width, height } = basis;
    const count = width * height;
    const peaks = new Float64Array(numModes);
    for (let j = 0; j < numModes; j++) {
        let best = 0;
        for (let k = j * count * 4; k < (j + 1) * count * 4; k += 4) {
            best = Math.max(best, shapes[k] ** 2 + shapes[k + 1] ** 2 + shapes[k + 2] ** 2 + shapes[k + 3] ** 2);
        }
        peaks[j] = Math.sqrt(best);
    }
    return peaks;
}

/**
 * Modal coordinates of widget-format drags over numFrames frames, exactly as
 * simulate_modal_coordinates: {qRe, qIm} as Float64Array(numFrames * J), frame-major.
 */
export function simulateDrags(basis, drags, numFrames, params = {}) {
    const simulator = new ModalSimulator(basis, params);
    simulator.addDrags(drags);
    const J = basis.numModes;
    const qRe = new Float64Array(numFrames * J);
    const qIm = new Float64Array(numFrames * J);
    for (let n = 0; n < numFrames; n++) {
        simulator.step();
        qRe.set(simulator.qRe, n * J);
        qIm.set(simulator.qIm, n * J);
    }
    return { qRe, qIm };
}
