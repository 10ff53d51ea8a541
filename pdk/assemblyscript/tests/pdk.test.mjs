// Tests of the AssemblyScript PDK: tests/entry.ts compiled to
// tests/build/entry.wasm (npm test builds it), driven through the same
// pirn.* imports the host provides.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, "..", "..", "..");
const wasm = readFileSync(join(here, "build", "entry.wasm"));
const compiled = new WebAssembly.Module(wasm);

const hex = (b) => Buffer.from(b).toString("hex");
const unhex = (s) => Uint8Array.from(Buffer.from(s, "hex"));
const golden = (name) => new Uint8Array(readFileSync(join(repo, "abi", "testdata", name)));

// A module instance with host imports that record what the guest does.
function instance() {
  const st = { pending: new Uint8Array(0), outputs: [], logs: [], inputs: 0 };
  let mem;
  const imports = {
    pirn: {
      input(ptr) {
        st.inputs++;
        new Uint8Array(mem.buffer, ptr, st.pending.length).set(st.pending);
      },
      output(ptr, len) {
        st.outputs.push(new Uint8Array(mem.buffer.slice(ptr, ptr + len)));
      },
      log(level, ptr, len) {
        st.logs.push([level, Buffer.from(mem.buffer, ptr, len).toString("utf8")]);
      },
    },
  };
  const inst = new WebAssembly.Instance(compiled, imports);
  mem = inst.exports.memory;
  inst.exports._initialize();
  // call runs an export with input bytes; it must output exactly once.
  st.call = (name, input = new Uint8Array(0)) => {
    st.pending = input;
    st.outputs = [];
    const rc = inst.exports[name](input.length);
    assert.equal(st.outputs.length, 1, `${name}: pirn.output called ${st.outputs.length} times`);
    return { rc, out: st.outputs[0] };
  };
  st.exports = inst.exports;
  st.memory = () => mem.buffer.byteLength;
  return st;
}

const g = instance();

// ---------------------------------------------------------------------------
// A small CBOR writer for building test inputs (not canonical on purpose:
// floats are always float64, so the guest must shorten them).
function head(major, n) {
  n = BigInt(n);
  const m = major << 5;
  if (n < 24n) return [m | Number(n)];
  if (n < 0x100n) return [m | 24, Number(n)];
  if (n < 0x10000n) return [m | 25, Number(n >> 8n), Number(n & 0xffn)];
  if (n < 0x100000000n) return [m | 26, ...[24n, 16n, 8n, 0n].map((s) => Number((n >> s) & 0xffn))];
  return [m | 27, ...[56n, 48n, 40n, 32n, 24n, 16n, 8n, 0n].map((s) => Number((n >> s) & 0xffn))];
}
function cbor(v) {
  if (v === null) return [0xf6];
  if (v === true) return [0xf5];
  if (v === false) return [0xf4];
  if (typeof v === "bigint") return v >= 0n ? head(0, v) : head(1, -1n - v);
  if (typeof v === "number") {
    if (Number.isInteger(v) && !Object.is(v, -0)) return v >= 0 ? head(0, v) : head(1, -1 - v);
    const b = Buffer.alloc(9);
    b[0] = 0xfb;
    b.writeDoubleBE(v, 1);
    return [...b];
  }
  if (typeof v === "string") {
    const u = Buffer.from(v, "utf8");
    return [...head(3, u.length), ...u];
  }
  if (v instanceof Uint8Array) return [...head(2, v.length), ...v];
  if (v instanceof Float) {
    const b = Buffer.alloc(9);
    b[0] = 0xfb;
    b.writeDoubleBE(v.f, 1);
    return [...b];
  }
  if (Array.isArray(v)) return [...head(4, v.length), ...v.flatMap(cbor)];
  const ks = Object.keys(v);
  return [...head(5, ks.length), ...ks.flatMap((k) => [...cbor(k), ...cbor(v[k])])];
}
class Float {
  constructor(f) { this.f = f; }
}
const enc = (v) => Uint8Array.from(cbor(v));
const text = (b) => Buffer.from(b).toString("utf8");

function request(knot, inputs = {}, config = {}) {
  return enc({ knot, config, inputs });
}
// The canonical encoding of a response {"ok": v} with v given as hex.
const okHex = (vhex) => "a1626f6b" + vhex;

// ---------------------------------------------------------------------------

test("canonical vectors (cas/testdata/canonical.json)", () => {
  const vectors = JSON.parse(readFileSync(join(repo, "cas", "testdata", "canonical.json"), "utf8"));
  assert.ok(vectors.canonical.length > 20);
  for (const v of vectors.canonical) {
    const { rc, out } = g.call("test_canonical", unhex(v.input));
    assert.equal(rc, 0, `${v.name}: ${text(out)}`);
    assert.equal(hex(out), v.canonical, v.name);
  }
  // Our messages for the vectors the host rejects.
  const want = {
    "int map key": "map key is not text",
    "null map key": "map key is not text",
    tag: "tags are not allowed",
    undefined: "undefined is not allowed",
    "duplicate key": "duplicate map key",
    "invalid utf-8": "invalid UTF-8",
    "uint beyond int64": "overflows int64",
    "trailing bytes": "trailing bytes",
    truncated: "unexpected end of data",
    empty: "unexpected end of data",
    bignum: "tags are not allowed",
  };
  for (const v of vectors.rejected) {
    const { rc, out } = g.call("test_canonical", unhex(v.input));
    assert.equal(rc, 1, `${v.name} accepted: ${hex(out)}`);
    assert.ok(want[v.name], `no expectation for rejected vector ${v.name}`);
    assert.match(text(out), new RegExp(want[v.name]), v.name);
  }
});

test("canonical encoding: more floats, ints, keys, indefinite lengths", () => {
  const cases = [
    ["f93c00", "f93c00"], // 1.0
    ["fb40effc0000000000", "f97bff"], // 65504, the largest float16
    ["fb3e70000000000000", "f90001"], // 2^-24, the smallest float16 subnormal
    ["fb3f10000000000000", "f90400"], // 2^-14, the smallest normal float16
    ["fb3e60000000000000", "fa33000000"], // 2^-25: float32
    ["fb40f86a0000000000", "fa47c35000"], // 100000.0: float32
    ["fb3ff199999999999a", "fb3ff199999999999a"], // 1.1
    ["fbfff0000000000000", "f9fc00"], // -Inf
    ["fa7fc00001", "f97e00"], // float32 NaN with a payload
    ["f97c01", "f97e00"], // float16 NaN with a payload
    ["fb47efffffe0000000", "fa7f7fffff"], // the largest float32
    ["fb36a0000000000000", "fa00000001"], // 2^-149, the smallest float32 subnormal
    ["1a00010000", "1a00010000"],
    ["1b0000000100000000", "1b0000000100000000"],
    ["1900ff", "18ff"],
    ["3b7ffffffffffffffe", "3b7ffffffffffffffe"],
    ["5f42010243030405ff", "450102030405"],
    ["7f626869626869ff", "6468696869"],
    ["bf6161016162f6ff", "a26161016162f6"],
    ["a3616201616102626161f5", "a3616102616201626161f5"],
    // Keys order by their UTF-8 bytes: "é" (c3a9, 2 bytes) after "z", "ab".
    ["a362c3a901617a02626162f6", "a3617a02626162f662c3a901"],
    // Lists of floats are decoded packed; one that turns out mixed is not.
    ["83fb3ff8000000000000fa40000000fb3fb999999999999a", "83f93e00f94000fb3fb999999999999a"],
    ["84f93e00f9400002f6", "84f93e00f9400002f6"],
    ["82f93e00fb", "error"],
  ];
  for (const [input, want] of cases) {
    const { rc, out } = g.call("test_canonical", unhex(input));
    if (want === "error") {
      assert.equal(rc, 1, input);
      assert.match(text(out), /unexpected end of data/);
      continue;
    }
    assert.equal(rc, 0, `${input}: ${text(out)}`);
    assert.equal(hex(out), want, input);
  }
});

test("decoder refuses malformed input without trapping", () => {
  const bad = {
    "": "unexpected end of data",
    "1c": "malformed head",
    "3f": "malformed head",
    "ff": "unexpected break",
    "f818": "simple value",
    "e0": "simple value",
    "9b00000000ffffffff01": "array of 4294967295 elements exceeds the limit of 16777216",
    "9a0010000001": "unexpected end of data",
    "ba0010000001": "unexpected end of data",
    "7affffffff": "unexpected end of data",
    "5f41004100": "unexpected end of data",
    "5f610000ff": "bad chunk",
    "bf0102ff": "map key is not text",
    "62eda080": "invalid UTF-8", // a surrogate
    "62c0af": "invalid UTF-8", // overlong
    "64f4908080": "invalid UTF-8", // above U+10FFFF
    "3bffffffffffffffff": "overflows int64",
    "a1617801617802": "trailing bytes",
    "9f01": "unexpected end of data",
    "c0": "tags are not allowed",
  };
  for (const [input, msg] of Object.entries(bad)) {
    const { rc, out } = g.call("test_canonical", unhex(input));
    assert.equal(rc, 1, `${input} accepted: ${hex(out)}`);
    assert.match(text(out), new RegExp(msg), input);
  }
  // Nesting: 64 levels are fine, 65 are not.
  const nest = (n) => new Uint8Array([...Array(n).fill(0x81), 0x01]);
  assert.equal(g.call("test_canonical", nest(64)).rc, 0);
  const deep = g.call("test_canonical", nest(65));
  assert.equal(deep.rc, 1);
  assert.match(text(deep.out), /nested deeper than 64 levels/);
  const deepMap = g.call("test_canonical", new Uint8Array([...Array(70).fill([0xa1, 0x61, 0x6b]).flat(), 0xf6]));
  assert.match(text(deepMap.out), /nested deeper/);
  // 2^24 + 1 elements declared.
  assert.match(text(g.call("test_canonical", unhex("9a01000001" + "00".repeat(64))).out), /exceeds the limit/);
});

test("decoder survives random mutations of valid input", () => {
  const vectors = JSON.parse(readFileSync(join(repo, "cas", "testdata", "canonical.json"), "utf8"));
  const seeds = vectors.canonical.map((v) => unhex(v.input)).concat([golden("request-mixed.cbor"), golden("manifest.cbor")]);
  let state = 12345;
  const rand = (n) => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state % n;
  };
  let accepted = 0;
  for (let i = 0; i < 3000; i++) {
    const b = Array.from(seeds[rand(seeds.length)]);
    for (let k = 0, m = 1 + rand(3); k < m; k++) {
      const op = rand(3);
      if (op === 0 && b.length) b[rand(b.length)] = rand(256);
      else if (op === 1 && b.length) b.splice(rand(b.length), 1);
      else b.splice(rand(b.length + 1), 0, rand(256));
    }
    const { rc, out } = g.call("test_canonical", Uint8Array.from(b));
    if (rc === 0) {
      accepted++;
      // The canonical form is a fixed point.
      const again = g.call("test_canonical", out);
      assert.equal(again.rc, 0);
      assert.equal(hex(again.out), hex(out));
    }
  }
  assert.ok(accepted > 100, `only ${accepted} mutations decoded`);
});

test("request vectors decode (abi/testdata/request-*.cbor)", () => {
  // add(5, 10) answers with exactly response-ok.cbor.
  let { rc, out } = g.call("pirn_invoke", golden("request-add.cbor"));
  assert.equal(rc, 0);
  assert.equal(hex(out), hex(golden("response-ok.cbor")));
  ({ rc, out } = g.call("pirn_invoke", golden("request-mixed.cbor")));
  assert.equal(rc, 0);
  const want = `items=[1, -2, 2.5, "x", h'0001', null, true] x={"a": "é", "zz": 1} label="hello" scale=0.5`;
  assert.equal(hex(out), okHex(hex(enc(want))));
});

test("a request's values re-encode byte for byte", () => {
  const req = golden("request-mixed.cbor");
  const r = g.call("pirn_invoke", Uint8Array.from([...req.slice(0, 1), 0x64, ...Buffer.from("knot"), 0x64, ...Buffer.from("echo"), ...req.slice(15)]));
  // {"x": {...}, "items": [...], "label": "hello", "scale": 0.5}: the raw values from the request.
  const x = "a2616162c3a9627a7a01";
  const items = "870121f941006178420001f6f5";
  assert.equal(hex(r.out), okHex("a4" + "6178" + x + "656974656d73" + items + "656c6162656c" + "6568656c6c6f" + "657363616c65" + "f93800"));
});

test("response vectors encode byte for byte (abi/testdata/response-*.cbor)", () => {
  const names = ["response-ok.cbor", "response-ok-map.cbor", "response-ok-null.cbor", "response-err.cbor", "response-skip.cbor"];
  names.forEach((name, i) => {
    g.pending = new Uint8Array(0);
    g.outputs = [];
    assert.equal(g.exports.test_response(i), 0);
    assert.equal(g.outputs.length, 1);
    assert.equal(hex(g.outputs[0]), hex(golden(name)), name);
  });
});

test("manifest vector encodes byte for byte (abi/testdata/manifest.cbor)", () => {
  g.outputs = [];
  g.exports.test_manifest();
  assert.equal(hex(g.outputs[0]), hex(golden("manifest.cbor")));
});

test("pirn_manifest and pirn_abi_version", () => {
  assert.equal(g.exports.pirn_abi_version(), 1);
  g.outputs = [];
  assert.equal(g.exports.pirn_manifest(), 0);
  assert.equal(g.outputs.length, 1);
  const m = hex(g.outputs[0]);
  assert.ok(m.startsWith("a2" + "63616269" + "01" + "656b6e6f7473"), m); // {"abi": 1, "knots": [...
  for (const k of ["add", "describe", "echo", "typed", "lax", "fail", "skipper", "crash", "noisy", "range"]) {
    assert.ok(m.includes("646e616d65" + hex(enc(k))), `manifest lacks ${k}`);
  }
  assert.ok(m.includes(hex(enc("rest")) + hex(enc("any"))), "echo's rest");
  assert.ok(m.includes(hex(enc("optional")) + "f5"), "typed's optional inputs");
});

function errOf(out) {
  // {"err": {"type": T, "message": M, ...}}: pull out the texts crudely.
  const s = text(out);
  assert.ok(hex(out).startsWith("a163657272"), `not an err: ${hex(out)}`);
  return s;
}

test("outcomes: ok, err with detail, skip", () => {
  let r = g.call("pirn_invoke", request("fail"));
  // response-err.cbor without the trace.
  assert.equal(hex(r.out), "a163657272a3" + "64747970656a56616c75654572726f72" + "6664657461696ca164636f646507" + "676d65737361676564626f6f6d");
  r = g.call("pirn_invoke", request("skipper"));
  assert.equal(hex(r.out), hex(golden("response-skip.cbor")));
});

test("inputs: coercion to declared types, missing, unknown and mistyped", () => {
  // Declared types coerce lax values before the handler runs.
  let r = g.call("pirn_invoke", request("typed", { f: 2, n: " 7 ", s: "x" }, { flag: "yes", xs: [1, "2.5", new Float(0.5)] }));
  // {"f": 2.0, "n": 7, "s": "x", "sum": 4.0, "flag": true}
  assert.equal(hex(r.out), okHex("a5" + "6166f94000" + "616e07" + "61736178" + "6373756df94400" + "64666c6167f5"));
  r = g.call("pirn_invoke", request("typed", { n: 1, s: "x" }));
  let s = errOf(r.out);
  assert.match(s, /InputError/);
  assert.match(s, /knot "typed": missing input "f"/);
  r = g.call("pirn_invoke", request("typed", { n: 7.5, f: 1, s: "x" }));
  s = errOf(r.out);
  assert.match(s, /InputError/);
  assert.doesNotMatch(s, /TypeError/); // the host's, docs/abi.md §2.3
  assert.match(s, /knot "typed": input "n": want int, got float 7.5 \(has a fractional part or is not finite\)/);
  r = g.call("pirn_invoke", request("typed", { n: 1, f: 1, s: 5 }));
  assert.match(errOf(r.out), /input "s": want str, got int 5/);
  r = g.call("pirn_invoke", request("typed", { n: 1, f: 1, s: "x", xs: [1, "two"] }));
  assert.match(errOf(r.out), /input "xs": at \[1\]: want float, got str "two" \(not a number\)/);
  r = g.call("pirn_invoke", request("add", { a: 1, b: 2, c: 3 }));
  assert.match(errOf(r.out), /knot "add": unknown input "c"/);
  // A getter that does not fit: the handler's own result is replaced by the InputError.
  r = g.call("pirn_invoke", request("lax", { x: "abc" }));
  s = errOf(r.out);
  assert.match(s, /InputError/);
  assert.doesNotMatch(s, /TypeError/);
  assert.match(s, /knot "lax": input "x": want int, got str "abc" \(not a decimal integer\)/);
  r = g.call("pirn_invoke", request("lax", { x: new Float(41) }));
  assert.equal(hex(r.out), okHex("182a"));
});

test("malformed requests err with PDKError; unknown knots with UnknownKnot", () => {
  const cases = {
    "": "unexpected end of data",
    "8101": "request is not a map",
    "a0": "missing \"knot\"",
    "a1646b6e6f7401": "\"knot\" is not text",
    "a2646b6e6f746361646465657874726101": "unknown key \"extra\"",
    "a3646b6e6f746361646466636f6e666967a161610166696e70757473a1616102": "\"a\" is both an input and config",
    "a2646b6e6f746361646466696e70757473a1616101ff": "trailing bytes",
  };
  for (const [input, msg] of Object.entries(cases)) {
    const r = g.call("pirn_invoke", unhex(input));
    const s = errOf(r.out);
    assert.match(s, /PDKError/, input);
    assert.ok(s.includes(msg), `${input}: ${s}`);
  }
  const r = g.call("pirn_invoke", request("nope"));
  assert.match(errOf(r.out), /UnknownKnot.*module has no knot "nope"/s);
  // A negative length is refused without reading.
  g.outputs = [];
  assert.equal(g.exports.pirn_invoke(-1), 0);
  assert.match(text(g.outputs[0]), /negative request length/);
});

test("types parse as the grammar says, and coerce by the lax rules", () => {
  const types = {
    "int": "int", "list[float]": "list[float]", " dict[str, int] ": "dict[int]", "map": "dict",
    "Optional[ list[ Any ] ]": "optional[list[any]]", "tuple": "list", "None": "null", "string": "str",
  };
  for (const [t, want] of Object.entries(types)) {
    const r = g.call("test_type", enc(t));
    assert.equal(r.rc, 0, `${t}: ${text(r.out)}`);
    assert.equal(text(r.out), want);
  }
  for (const [t, msg] of Object.entries({ "widget": "unknown type \"widget\"", "list[": "missing type name", "int[str]": "takes no element type", "optional": "optional needs", "dict[int, str]": "dict keys must be str", "list]": "unexpected" })) {
    const r = g.call("test_type", enc(t));
    assert.equal(r.rc, 1, t);
    assert.ok(text(r.out).includes(msg), `${t}: ${text(r.out)}`);
  }
  const coerce = [
    ["int", " 7 ", "07"], ["int", new Float(5), "05"], ["int", true, "01"], ["int", "-9223372036854775808", "3b7fffffffffffffff"],
    ["float", 3, "f94200"], ["float", "1e3", "f963d0"], ["float", "-inf", "f9fc00"],
    ["bool", "Yes", "f5"], ["bool", 0, "f4"], ["bool", " off ", "f4"],
    ["bytes", "hi", "426869"], ["bytes", "base64:aGk=", "426869"],
    ["optional[int]", null, "f6"], ["optional[int]", "3", "03"],
    ["list[int]", ["1", new Float(2)], "820102"], ["dict[float]", { a: 1 }, "a16161f93c00"],
    ["list[int]", [new Float(1), new Float(2)], "820102"], ["list[float]", [new Float(1), new Float(2.5)], "82f93c00f94100"],
    ["list[str]", [], "80"], ["list[optional[float]]", [new Float(0.5)], "81f93800"],
    ["any", { b: 1, a: 2 }, "a2616102616201"],
  ];
  for (const [t, v, want] of coerce) {
    const r = g.call("test_coerce", enc([t, v]));
    assert.equal(r.rc, 0, `${t} ${JSON.stringify(v)}: ${text(r.out)}`);
    assert.equal(hex(r.out), want, `${t} ${JSON.stringify(v)}`);
  }
  const refused = [
    ["int", new Float(7.5), "want int, got float 7.5 (has a fractional part or is not finite)"],
    ["int", "7.5", "want int, got str \"7.5\" (not a decimal integer)"],
    ["int", "9223372036854775808", "not a decimal integer"],
    ["str", 5, "want str, got int 5"],
    ["bool", 2, "want bool, got int 2"],
    ["null", 0, "want null, got int 0"],
    ["bytes", "base64:!!", "bad base64"],
    ["list[int]", [1, [2]], "at [1]: want int, got list (1)"],
    ["list[int]", [new Float(1), new Float(2.5)], "at [1]: want int, got float 2.5 (has a fractional part or is not finite)"],
    ["list[list[str]]", [["a"], [new Float(1.5)]], "at [1][0]: want str, got float 1.5"],
    ["dict[int]", { k: "x" }, "at .k: want int, got str \"x\""],
    ["float", "1.5x", "not a number"],
  ];
  for (const [t, v, msg] of refused) {
    const r = g.call("test_coerce", enc([t, v]));
    assert.equal(r.rc, 1, `${t} ${JSON.stringify(v)} accepted: ${hex(r.out)}`);
    assert.ok(text(r.out).includes(msg), `${t}: ${text(r.out)}`);
  }
});

test("logging and aborts", () => {
  const st = instance();
  st.logs = [];
  let r = st.call("pirn_invoke", request("noisy", { x: 9 }));
  assert.equal(hex(r.out), okHex("09"));
  assert.deepEqual(st.logs, [[1, "noisy got x=9"]]);
  st.logs = [];
  st.pending = request("crash");
  assert.throws(() => st.exports.pirn_invoke(st.pending.length), WebAssembly.RuntimeError);
  assert.equal(st.logs.length, 1);
  assert.equal(st.logs[0][0], 3);
  assert.match(st.logs[0][1], /^abort: Index out of range at /);
});

test("memory stays bounded over many invocations", () => {
  const st = instance();
  const xs = Array.from({ length: 5000 }, (_, i) => new Float(i + 0.25));
  const req = request("typed", { n: 1, f: 1, s: "x", xs });
  let first = 0;
  for (let i = 0; i < 2000; i++) {
    const r = st.call("pirn_invoke", req);
    assert.ok(hex(r.out).startsWith("a1626f6b"));
    if (i === 100) first = st.memory();
  }
  for (let i = 0; i < 200; i++) st.call("pirn_invoke", request("range", { n: 20000 }));
  assert.ok(st.memory() <= Math.max(first, 4 << 20), `memory grew from ${first} to ${st.memory()}`);
});

test("testing.mjs: the harness knot authors use", async () => {
  const { load, float, encode, decode } = await import("../testing.mjs");
  const m = load(join(here, "build", "entry.wasm"));
  assert.deepEqual(m.invoke("add", { a: 5, b: 10 }), { ok: 15 });
  assert.equal(hex(encode({ knot: "add", config: {}, inputs: { b: 10, a: 5 } })), hex(golden("request-add.cbor")));
  assert.deepEqual(m.invoke("typed", { n: 1, f: float(2), s: "x" }), { ok: { f: 2, n: 1, s: "x", flag: false } });
  assert.deepEqual(m.invoke("skipper"), { skip: { reason: "nothing to do" } });
  assert.deepEqual(m.invoke("fail"), { err: { type: "ValueError", message: "boom", detail: { code: 7 } } });
  assert.deepEqual(m.invoke("range", { n: 3 }), { ok: [0.5, 1.5, 2.5] });
  m.invoke("noisy", { x: 1 });
  assert.deepEqual(m.logs, [[1, "noisy got x=1"]]);
  assert.equal(m.manifest().knots[0].name, "add");
  assert.deepEqual(decode(golden("response-err.cbor")), { err: { type: "ValueError", message: "boom", detail: { code: 7 }, trace: "main.go:3" } });
  assert.deepEqual(decode(unhex("fb3ff8000000000000")), 1.5);
  assert.deepEqual(decode(unhex("1b7fffffffffffffff")), 9223372036854775807n);
});
