// Fold-free warp for the live preview: the port of gid_models/dynamics/fold_limit.py (modal.py
// step 7). Scales a displacement field down by a smooth per-texel factor so that the warp
// x -> x + F(x) never folds (det J >= minArea) nor stretches more than maxStretch.
// Pure module: no DOM. Both preview renderers (gl_renderer.js, canvas_renderer.js) apply it.

export const WARP_LIMIT = { minArea: 0.25, maxStretch: 2.0, radius: 3 };
const SCALE_STEPS = 32;
const PASSES = 4;
const SLACK = 1e-6;

/** [det, largest singular value] of I + s G for G = [[ux, uy], [vx, vy]]. */
export function jacobianStats(ux, uy, vx, vy, s = 1) {
    const a = 1 + s * ux;
    const b = s * uy;
    const c = s * vx;
    const d = 1 + s * vy;
    const det = a * d - b * c;
    const frobenius = a * a + b * b + c * c + d * d;
    const root = Math.sqrt(Math.max(frobenius * frobenius - 4 * det * det, 0));
    return [det, Math.sqrt(0.5 * (frobenius + root))];
}

/**
 * Gradient of a field (Float32Array h*w*2, (dx, dy) per texel) in displacement pixels per
 * displacement pixel: texels are texelX x texelY of those pixels wide/high. Central differences
 * inside, one-sided at the border (as torch.gradient). Returns Float32Array h*w*4 (ux, uy, vx, vy).
 */
export function fieldGradient(field, w, h, texelX = 1, texelY = 1) {
    const out = new Float32Array(w * h * 4);
    for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
            const xl = x > 0 ? x - 1 : x;
            const xr = x < w - 1 ? x + 1 : x;
            const yu = y > 0 ? y - 1 : y;
            const yd = y < h - 1 ? y + 1 : y;
            const sx = (xr - xl) * texelX;
            const sy = (yd - yu) * texelY;
            const o = (y * w + x) * 4;
            for (let c = 0; c < 2; c++) {
                out[o + 2 * c] = sx ? (field[(y * w + xr) * 2 + c] - field[(y * w + xl) * 2 + c]) / sx : 0;
                out[o + 2 * c + 1] = sy ? (field[(yd * w + x) * 2 + c] - field[(yu * w + x) * 2 + c]) / sy : 0;
            }
        }
    }
    return out;
}

function within(g, o, s, limit) {
    const [det, stretch] = jacobianStats(g[o], g[o + 1], g[o + 2], g[o + 3], s);
    return det >= limit.minArea - SLACK && stretch <= limit.maxStretch + SLACK;
}

/** Largest grid factor s in [0, 1] per texel keeping I + s' G within the limit for all s' <= s. */
function allowedScale(g, count, limit) {
    const allowed = new Float32Array(count);
    for (let p = 0; p < count; p++) {
        let s = 1;
        for (let step = 1; step <= SCALE_STEPS; step++) {
            if (!within(g, p * 4, step / SCALE_STEPS, limit)) {
                s = (step - 1) / SCALE_STEPS;
                break;
            }
        }
        allowed[p] = s;
    }
    return allowed;
}

/** Erode then box-blur a w x h map over a (2 r + 1)^2 window, border replicated. */
function smoothMinimum(map, w, h, r) {
    if (r === 0) return map;
    const pass = (source, reduce) => {
        const rows = new Float32Array(w * h);
        const out = new Float32Array(w * h);
        for (let y = 0; y < h; y++) {
            for (let x = 0; x < w; x++) {
                let acc = reduce === "min" ? Infinity : 0;
                for (let k = -r; k <= r; k++) {
                    const v = source[y * w + Math.min(Math.max(x + k, 0), w - 1)];
                    acc = reduce === "min" ? Math.min(acc, v) : acc + v;
                }
                rows[y * w + x] = reduce === "min" ? acc : acc / (2 * r + 1);
            }
        }
        for (let y = 0; y < h; y++) {
            for (let x = 0; x < w; x++) {
                let acc = reduce === "min" ? Infinity : 0;
                for (let k = -r; k <= r; k++) {
                    const v = rows[Math.min(Math.max(y + k, 0), h - 1) * w + x];
                    acc = reduce === "min" ? Math.min(acc, v) : acc + v;
                }
                out[y * w + x] = reduce === "min" ? acc : acc / (2 * r + 1);
            }
        }
        return out;
    };
    return pass(pass(map, "min"), "mean");
}

/**
 * Limit a displacement field in place (fold_limit.limit_warp on one frame) and return it.
 * field: Float32Array h*w*2 in displacement pixels; texelX/texelY: size of one texel in those
 * pixels (sourceWidth / w on the preview's reduced grid); radius is in displacement pixels.
 */
export function limitWarp(field, w, h, texelX = 1, texelY = 1, limit = WARP_LIMIT) {
    const count = w * h;
    const radius = Math.round(limit.radius / Math.max(texelX, texelY));
    for (let pass = 0; pass <= PASSES; pass++) {
        const g = fieldGradient(field, w, h, texelX, texelY);
        let bad = false;
        for (let p = 0; p < count && !bad; p++) bad = !within(g, p * 4, 1, limit);
        if (!bad) return field;
        let scale = allowedScale(g, count, limit);
        if (pass === PASSES) {
            const uniform = scale.reduce((a, b) => Math.min(a, b), 1);
            for (let i = 0; i < field.length; i++) field[i] *= uniform;
            return field;
        }
        scale = smoothMinimum(scale, w, h, radius);
        for (let p = 0; p < count; p++) {
            field[2 * p] *= scale[p];
            field[2 * p + 1] *= scale[p];
        }
    }
    return field;
}
