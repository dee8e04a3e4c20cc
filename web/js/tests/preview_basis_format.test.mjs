// The basis file written by gid_models/dynamics/basis_export.py parses to the values Python reads.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { halfToFloat, makeBasis, parseBasis, parseSafetensors } from "../lib/preview/basis_format.js";

const fixtureDir = new URL("../../../tests/fixtures/", import.meta.url);
const expected = JSON.parse(readFileSync(new URL("modal_vectors.json", fixtureDir))).basis_file;

function fileBuffer(name) {
    const bytes = readFileSync(new URL(name, fixtureDir));
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
}

test("half floats decode exactly", () => {
    assert.equal(halfToFloat(0x3c00), 1);
    assert.equal(halfToFloat(0xc000), -2);
    assert.equal(halfToFloat(0x3555), 0.333251953125);
    assert.equal(halfToFloat(0x0001), 2 ** -24); // smallest subnormal
    assert.equal(halfToFloat(0x7bff), 65504);
    assert.equal(halfToFloat(0xfc00), -Infinity);
    assert.ok(Number.isNaN(halfToFloat(0x7e00)));
});

test("the exported basis file parses to Python's values", () => {
    const basis = parseBasis(fileBuffer(expected.file));
    for (const key of ["numModes", "width", "height", "sourceWidth", "sourceHeight"]) {
        assert.equal(basis[key], expected[key], key);
    }
    assert.deepEqual(basis.modeIndices, expected.modeIndices);
    assert.deepEqual(basis.params, expected.params);
    assert.deepEqual(Array.from(basis.shapes), expected.shapes); // float16 -> float32 is exact
    assert.deepEqual(Array.from(basis.omegas), expected.omegas);
    assert.deepEqual(Array.from(basis.masses), expected.masses);
    assert.ok(expected.shapes.some((v) => v !== 0));
});

test("a file that is not a preview basis is refused with the reason", () => {
    assert.throws(() => parseBasis(new ArrayBuffer(4)), /too short/);
    const header = new TextEncoder().encode(JSON.stringify({ __metadata__: { format: "other" } }));
    const bytes = new Uint8Array(8 + header.length);
    new DataView(bytes.buffer).setUint32(0, header.length, true);
    bytes.set(header, 8);
    assert.deepEqual(parseSafetensors(bytes.buffer).tensors, {});
    assert.throws(() => parseBasis(bytes.buffer), /not a GID preview basis/);
});

test("makeBasis checks the shape array's length", () => {
    assert.throws(
        () => makeBasis({ shapes: new Float32Array(10), omegas: [1], masses: [1], numModes: 1, width: 2, height: 2 }),
        /expected 1\*2\*2\*4/,
    );
});
