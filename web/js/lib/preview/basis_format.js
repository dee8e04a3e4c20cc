// Parse the compact modal basis written by gid_models/dynamics/basis_export.py.
//
// The file is safetensors: an 8-byte little-endian header length, a JSON header naming each
// tensor's dtype, shape and byte range, then the raw little-endian data. Pure module: no DOM.

export const BASIS_FORMAT = "gid-preview-basis";
export const BASIS_VERSION = 1;

const DTYPE_BYTES = { F16: 2, F32: 4 };

/** Convert one IEEE 754 half-precision value (as a uint16) to a JS number. */
export function halfToFloat(bits) {
    const sign = bits & 0x8000 ? -1 : 1;
    const exponent = (bits >> 10) & 0x1f;
    const fraction = bits & 0x3ff;
    if (exponent === 0) return sign * fraction * 2 ** -24;
    if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
    return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/** Read a safetensors buffer into {tensors: {name: {dtype, shape, data: Float32Array}}, metadata}. */
export function parseSafetensors(buffer) {
    const bytes = new Uint8Array(buffer);
    if (bytes.length < 8) throw new Error("basis file is too short to be safetensors");
    const view = new DataView(buffer instanceof ArrayBuffer ? buffer : bytes.buffer, bytes.byteOffset);
    const headerLength = view.getUint32(0, true) + view.getUint32(4, true) * 2 ** 32;
    if (8 + headerLength > bytes.length) throw new Error("basis file header runs past the end of the file");
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
    const dataStart = 8 + headerLength;
    const tensors = {};
    for (const [name, info] of Object.entries(header)) {
        if (name === "__metadata__") continue;
        const size = DTYPE_BYTES[info.dtype];
        if (!size) throw new Error(`tensor ${name} has unsupported dtype ${info.dtype} (expected F16 or F32)`);
        const [begin, end] = info.data_offsets;
        const count = info.shape.reduce((a, b) => a * b, 1);
        if (end - begin !== count * size) throw new Error(`tensor ${name} byte range does not match its shape`);
        const raw = bytes.slice(dataStart + begin, dataStart + end); // copy: aligned for typed arrays
        let data;
        if (info.dtype === "F32") {
            data = new Float32Array(raw.buffer);
        } else {
            const halves = new Uint16Array(raw.buffer);
            data = new Float32Array(count);
            for (let i = 0; i < count; i++) data[i] = halfToFloat(halves[i]);
        }
        tensors[name] = { dtype: info.dtype, shape: info.shape, data };
    }
    return { tensors, metadata: header.__metadata__ || {} };
}

/**
 * Parse a preview basis file into the plain object the simulation and the renderers use:
 * {numModes, width, height (reduced grid), sourceWidth, sourceHeight (pixels the shape values are
 *  measured in), shapes: Float32Array (J*h*w*4, channels Re x, Im x, Re y, Im y, row 0 = top),
 *  omegas, masses: Float32Array (J), modeIndices, params}.
 */
export function parseBasis(buffer) {
    const { tensors, metadata } = parseSafetensors(buffer);
    if (metadata.format !== BASIS_FORMAT) {
        throw new Error(`not a GID preview basis (format=${metadata.format})`);
    }
    if (Number(metadata.version) > BASIS_VERSION) {
        throw new Error(`preview basis version ${metadata.version} is newer than this viewer (${BASIS_VERSION})`);
    }
    for (const name of ["shapes", "omegas", "masses"]) {
        if (!tensors[name]) throw new Error(`preview basis has no '${name}' tensor`);
    }
    const [numModes, height, width, channels] = tensors.shapes.shape;
    if (channels !== 4 || tensors.omegas.shape[0] !== numModes || tensors.masses.shape[0] !== numModes) {
        throw new Error("preview basis tensors have inconsistent shapes");
    }
    return makeBasis({
        shapes: tensors.shapes.data,
        omegas: tensors.omegas.data,
        masses: tensors.masses.data,
        numModes,
        width,
        height,
        sourceWidth: Number(metadata.source_width),
        sourceHeight: Number(metadata.source_height),
        modeIndices: JSON.parse(metadata.mode_indices || "[]"),
        params: JSON.parse(metadata.params || "{}"),
    });
}

/** Validate and normalise a basis object built in code (tests, fixtures) or parsed from a file. */
export function makeBasis({ shapes, omegas, masses, numModes, width, height, sourceWidth, sourceHeight, modeIndices = [], params = {} }) {
    if (shapes.length !== numModes * width * height * 4) {
        throw new Error(`shapes has ${shapes.length} values, expected ${numModes}*${height}*${width}*4`);
    }
    return {
        shapes: Float32Array.from(shapes),
        omegas: Float64Array.from(omegas),
        masses: Float64Array.from(masses),
        numModes,
        width,
        height,
        sourceWidth: sourceWidth || width,
        sourceHeight: sourceHeight || height,
        modeIndices,
        params,
    };
}
