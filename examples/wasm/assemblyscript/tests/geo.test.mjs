// Unit tests of geo.wasm under Node, with the PDK's harness (no host).
// The Go test as_test.go runs the same module in the real host.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { load, float } from "pirn-pdk-as/testing.mjs";

const geo = load(fileURLToPath(new URL("../geo.wasm", import.meta.url)));

test("distance", () => {
  assert.deepEqual(geo.invoke("distance", { a: [0, 0], b: [3, 4] }), { ok: 5 });
  assert.deepEqual(geo.invoke("distance", { a: [1], b: [1, 2] }),
    { err: { type: "ValueError", message: "a has 1 coordinates, b has 2" } });
});

test("input errors", () => {
  // The harness has no host type check (like validate_io: false): the PDK's
  // own checks answer InputError, never the host's TypeError.
  assert.deepEqual(geo.invoke("distance", { a: "x", b: [1] }),
    { err: { type: "InputError", message: 'knot "distance": input "a": want list[float], got str "x"' } });
  assert.deepEqual(geo.invoke("round", { x: { not: "float" } }),
    { err: { type: "InputError", message: 'knot "round": input "x": want float, got dict (1)' } });
  assert.deepEqual(geo.invoke("distance", { a: [1] }),
    { err: { type: "InputError", message: 'knot "distance": missing input "b"' } });
});

test("centroid and bbox", () => {
  assert.deepEqual(geo.invoke("centroid", { points: [[0, 0], [2, 0], [2, 2], [0, 2]] }), { ok: [1, 1] });
  assert.deepEqual(geo.invoke("bbox", { points: [[1, 5], [-2, 3]] }), { ok: { min: [-2, 3], max: [1, 5] } });
  assert.equal(geo.invoke("centroid", { points: [] }).err.message, "points is empty");
});

test("round, clamp, finite", () => {
  assert.deepEqual(geo.invoke("round", { x: 2.5 }), { ok: 3 });
  assert.deepEqual(geo.invoke("round", { x: 3.14159, digits: 2 }), { ok: 3.14 });
  assert.deepEqual(geo.invoke("clamp", { x: float(7), lo: 0, hi: 2.5 }), { ok: 2.5 });
  assert.deepEqual(geo.invoke("finite", { x: NaN }), { skip: { reason: "x is NaN" } });
});
