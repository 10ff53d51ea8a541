// A test harness for knot modules under Node, with no dependencies: load a
// .wasm, supply the pirn.* imports, and invoke knots with JS values.
//
//   import { load, float } from "pirn-pdk-as/testing.mjs";
//   const m = load("double.wasm");
//   m.invoke("double", { x: 21 });          // → { ok: 42 }
//   m.invoke("scale", { x: float(2) });     // 2.0 sent as a float, not an int
//   m.manifest();                           // → { abi: 1, knots: [...] }
//   m.logs;                                 // → [[level, "line"], ...]
//
// Values: null, booleans, numbers (integers are sent as CBOR ints, others
// as floats), BigInt (ints), strings, Uint8Array (bytes), arrays, plain
// objects (text-keyed maps), and float(x). Decoded ints are Numbers when
// they are safe integers, else BigInts; floats are Numbers.
import { readFileSync } from "node:fs";

export class Float {
  constructor(f) { this.f = f; }
}

/** Marks x to be encoded as a float even if it is integral. */
export const float = (x) => new Float(x);

function head(out, major, n) {
  n = BigInt(n);
  const m = major << 5;
  if (n < 24n) out.push(m | Number(n));
  else if (n < 0x100n) out.push(m | 24, Number(n));
  else if (n < 0x10000n) out.push(m | 25, Number(n >> 8n), Number(n & 0xffn));
  else if (n < 0x100000000n) out.push(m | 26, ...[24n, 16n, 8n, 0n].map((s) => Number((n >> s) & 0xffn)));
  else out.push(m | 27, ...[56n, 48n, 40n, 32n, 24n, 16n, 8n, 0n].map((s) => Number((n >> s) & 0xffn)));
}

function put(out, v) {
  if (v === null || v === undefined) out.push(0xf6);
  else if (v === true) out.push(0xf5);
  else if (v === false) out.push(0xf4);
  else if (typeof v === "bigint") v >= 0n ? head(out, 0, v) : head(out, 1, -1n - v);
  else if (typeof v === "number" && Number.isSafeInteger(v) && !Object.is(v, -0)) v >= 0 ? head(out, 0, v) : head(out, 1, -1 - v);
  else if (typeof v === "number" || v instanceof Float) {
    const b = Buffer.alloc(9);
    b[0] = 0xfb;
    b.writeDoubleBE(typeof v === "number" ? v : v.f, 1);
    out.push(...b);
  } else if (typeof v === "string") {
    const u = Buffer.from(v, "utf8");
    head(out, 3, u.length);
    out.push(...u);
  } else if (v instanceof Uint8Array) {
    head(out, 2, v.length);
    out.push(...v);
  } else if (Array.isArray(v)) {
    head(out, 4, v.length);
    for (const x of v) put(out, x);
  } else {
    // Keys in canonical order (shorter first, then bytewise), as the host sends them.
    const keys = Object.keys(v).sort((a, b) => Buffer.byteLength(a) - Buffer.byteLength(b) || Buffer.compare(Buffer.from(a), Buffer.from(b)));
    head(out, 5, keys.length);
    for (const k of keys) {
      put(out, k);
      put(out, v[k]);
    }
  }
}

/** The CBOR encoding of a JS value. */
export function encode(v) {
  const out = [];
  put(out, v);
  return Uint8Array.from(out);
}

/** Decodes one CBOR item (the data model of docs/abi.md §4). */
export function decode(bytes) {
  const b = Buffer.from(bytes);
  let p = 0;
  const arg = (ai) => {
    if (ai < 24) return BigInt(ai);
    if (ai > 27) throw new Error("indefinite lengths and reserved heads are not supported");
    if (p + (1 << (ai - 24)) > b.length) throw new Error("unexpected end of data");
    const w = 1 << (ai - 24);
    let n = 0n;
    for (let i = 0; i < w; i++) n = (n << 8n) | BigInt(b[p++]);
    return n;
  };
  const num = (n) => (n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n);
  const item = () => {
    if (p >= b.length) throw new Error("unexpected end of data");
    const ib = b[p++];
    const major = ib >> 5, ai = ib & 31;
    switch (major) {
      case 0: return num(arg(ai));
      case 1: return num(-1n - arg(ai));
      case 2: case 3: {
        const n = Number(arg(ai));
        if (p + n > b.length) throw new Error("unexpected end of data");
        const s = b.subarray(p, p + n);
        p += n;
        return major === 2 ? new Uint8Array(s) : s.toString("utf8");
      }
      case 4: return Array.from({ length: Number(arg(ai)) }, item);
      case 5: {
        const o = {};
        for (let i = Number(arg(ai)); i > 0; i--) {
          const k = item();
          o[k] = item();
        }
        return o;
      }
      case 7:
        if (ai === 20) return false;
        if (ai === 21) return true;
        if (ai === 22) return null;
        if (ai === 25) {
          const h = b.readUInt16BE(p);
          p += 2;
          const e = (h >> 10) & 31, m = h & 1023, s = h >> 15 ? -1 : 1;
          if (e === 0) return s * m * 2 ** -24;
          if (e === 31) return m ? NaN : s * Infinity;
          return s * (1 + m / 1024) * 2 ** (e - 15);
        }
        if (ai === 26) { p += 4; return b.readFloatBE(p - 4); }
        if (ai === 27) { p += 8; return b.readDoubleBE(p - 8); }
    }
    throw new Error(`unsupported CBOR head 0x${ib.toString(16)}`);
  };
  const v = item();
  if (p !== b.length) throw new Error(`${b.length - p} trailing bytes`);
  return v;
}

/**
 * Instantiates a knot module as the host would (running _initialize) and
 * returns helpers. Every call checks that the module called pirn.output
 * exactly once and returned 0.
 */
export function load(wasmPath) {
  let mem, pending = new Uint8Array(0), outputs = [];
  const logs = [];
  const inst = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(wasmPath)), {
    pirn: {
      input(ptr) { new Uint8Array(mem.buffer, ptr, pending.length).set(pending); },
      output(ptr, len) { outputs.push(new Uint8Array(mem.buffer.slice(ptr, ptr + len))); },
      log(level, ptr, len) { logs.push([level, Buffer.from(mem.buffer, ptr, len).toString("utf8")]); },
    },
  });
  mem = inst.exports.memory;
  if (inst.exports._initialize) inst.exports._initialize();
  const once = (what, rc) => {
    if (rc !== 0 || outputs.length !== 1) throw new Error(`${what}: returned ${rc} after ${outputs.length} outputs; want 0 after 1`);
    return outputs[0];
  };
  return {
    exports: inst.exports,
    logs,
    /** The raw response bytes to a raw request. */
    invokeRaw(request) {
      pending = request;
      outputs = [];
      return once("pirn_invoke", inst.exports.pirn_invoke(request.length));
    },
    /** Invokes knot with inputs (and config), returning the decoded response: {ok}, {err} or {skip}. */
    invoke(knot, inputs = {}, config = {}) {
      return decode(this.invokeRaw(encode({ knot, config, inputs })));
    },
    manifest() {
      outputs = [];
      return decode(once("pirn_manifest", inst.exports.pirn_manifest()));
    },
    /** The module's linear memory size in bytes. */
    memorySize() { return mem.buffer.byteLength; },
  };
}
