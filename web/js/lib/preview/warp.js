// Warping maths of the live preview: displacement field from modes, and the picture warp.
//
// Displacement (paper notes, section 9): F(p) = Re( sum_j phi_j(p) q_j ), in source-volume
// pixels. With phi = a + i b and q = c + i d, Re(phi q) = a c - b d per component.
//
// The renderer of the full pipeline forward-splats the picture along F. The preview instead warps
// backwards with the displacement taken at the destination, out(p) = picture(p - F(p)). That is
// exact for a uniform shift and a close approximation while F varies little over |F| pixels,
// which holds for the small, smooth motions of the preview; large drags on sharp mode
// boundaries show mild stretching where the splatting renderer would show disocclusions.
//
// Sampling convention everywhere: a grid of n texels covers 0..1, texel i has its centre at
// (i + 0.5) / n; lookups outside clamp to the edge. Pure module: no DOM.

/** Bilinear weights and indices along one axis for coordinate u in 0..1 on n texels. */
function axisTaps(u, n) {
    let t = u * n - 0.5;
    if (t < 0) t = 0;
    if (t > n - 1) t = n - 1;
    const i0 = Math.floor(t);
    const i1 = Math.min(i0 + 1, n - 1);
    return [i0, i1, t - i0];
}

/**
 * Mode shape j at the point (x, y) in 0..1 of width/height, bilinear on the basis grid.
 * Returns [Re x, Im x, Re y, Im y] in source pixels.
 */
export function modeShapeAt(basis, j, x, y) {
    const { width: w, height: h, shapes } = basis;
    const [x0, x1, fx] = axisTaps(x, w);
    const [y0, y1, fy] = axisTaps(y, h);
    const base = j * w * h;
    const out = [0, 0, 0, 0];
    const taps = [
        [y0, x0, (1 - fx) * (1 - fy)],
        [y0, x1, fx * (1 - fy)],
        [y1, x0, (1 - fx) * fy],
        [y1, x1, fx * fy],
    ];
    for (const [yy, xx, weight] of taps) {
        const k = (base + yy * w + xx) * 4;
        for (let c = 0; c < 4; c++) out[c] += weight * shapes[k + c];
    }
    return out;
}

/**
 * Displacement field on the basis grid for modal coordinates q = qRe + i qIm.
 * Returns (or fills) a Float32Array of h*w*2: (dx, dy) per texel in source pixels.
 */
export function displacementField(basis, qRe, qIm, out = null) {
    const { width: w, height: h, numModes, shapes } = basis;
    const count = w * h;
    const field = out || new Float32Array(count * 2);
    field.fill(0);
    for (let j = 0; j < numModes; j++) {
        const c = qRe[j];
        const d = qIm[j];
        if (c === 0 && d === 0) continue;
        let k = j * count * 4;
        for (let p = 0; p < count; p++, k += 4) {
            field[2 * p] += shapes[k] * c - shapes[k + 1] * d;
            field[2 * p + 1] += shapes[k + 2] * c - shapes[k + 3] * d;
        }
    }
    return field;
}

/** Displacement (source pixels) at (x, y) in 0..1, bilinear on a field of w x h texels. */
export function sampleField(field, w, h, x, y) {
    const [x0, x1, fx] = axisTaps(x, w);
    const [y0, y1, fy] = axisTaps(y, h);
    const a = (y0 * w + x0) * 2;
    const b = (y0 * w + x1) * 2;
    const c = (y1 * w + x0) * 2;
    const d = (y1 * w + x1) * 2;
    const top = [field[a] + (field[b] - field[a]) * fx, field[a + 1] + (field[b + 1] - field[a + 1]) * fx];
    const bottom = [field[c] + (field[d] - field[c]) * fx, field[c + 1] + (field[d + 1] - field[c + 1]) * fx];
    return [top[0] + (bottom[0] - top[0]) * fy, top[1] + (bottom[1] - top[1]) * fy];
}

/**
 * Backward warp of an RGBA picture: out(p) = picture(p - F(p)), both bilinear, edges clamped.
 *
 * picture: Uint8ClampedArray (W*H*4); field: Float32Array from displacementField on a fw x fh
 * grid, in pixels of a sourceWidth x sourceHeight grid (rescaled here to picture pixels).
 * out: Uint8ClampedArray (W*H*4), written in place and returned.
 */
export function warpPicture(picture, W, H, field, fw, fh, sourceWidth, sourceHeight, out) {
    const scaleX = W / sourceWidth;
    const scaleY = H / sourceHeight;
    const colTaps = new Array(W);
    for (let x = 0; x < W; x++) colTaps[x] = axisTaps((x + 0.5) / W, fw);
    for (let y = 0; y < H; y++) {
        const [fy0, fy1, ffy] = axisTaps((y + 0.5) / H, fh);
        const row0 = fy0 * fw;
        const row1 = fy1 * fw;
        for (let x = 0; x < W; x++) {
            const [fx0, fx1, ffx] = colTaps[x];
            const a = (row0 + fx0) * 2;
            const b = (row0 + fx1) * 2;
            const c = (row1 + fx0) * 2;
            const d = (row1 + fx1) * 2;
            const w00 = (1 - ffx) * (1 - ffy);
            const w01 = ffx * (1 - ffy);
            const w10 = (1 - ffx) * ffy;
            const w11 = ffx * ffy;
            const dx = (field[a] * w00 + field[b] * w01 + field[c] * w10 + field[d] * w11) * scaleX;
            const dy = (field[a + 1] * w00 + field[b + 1] * w01 + field[c + 1] * w10 + field[d + 1] * w11) * scaleY;
            let sx = x - dx;
            let sy = y - dy;
            sx = sx < 0 ? 0 : sx > W - 1 ? W - 1 : sx;
            sy = sy < 0 ? 0 : sy > H - 1 ? H - 1 : sy;
            const ix = Math.floor(sx);
            const iy = Math.floor(sy);
            const jx = ix < W - 1 ? ix + 1 : ix;
            const jy = iy < H - 1 ? iy + 1 : iy;
            const tx = sx - ix;
            const ty = sy - iy;
            const p00 = (iy * W + ix) * 4;
            const p01 = (iy * W + jx) * 4;
            const p10 = (jy * W + ix) * 4;
            const p11 = (jy * W + jx) * 4;
            const o = (y * W + x) * 4;
            for (let ch = 0; ch < 4; ch++) {
                const top = picture[p00 + ch] + (picture[p01 + ch] - picture[p00 + ch]) * tx;
                const bottom = picture[p10 + ch] + (picture[p11 + ch] - picture[p10 + ch]) * tx;
                out[o + ch] = top + (bottom - top) * ty;
            }
        }
    }
    return out;
}

/** Largest |F| (source pixels) over a displacement field: tells the UI whether motion has died out. */
export function maxDisplacement(field) {
    let best = 0;
    for (let p = 0; p < field.length; p += 2) {
        const m = Math.hypot(field[p], field[p + 1]);
        if (m > best) best = m;
    }
    return best;
}
