// Knot registration, the manifest (docs/abi.md §3) and the ABI's exports.

import { Value, Kind, DictValue, ListValue } from "./value";
import { Type, parseType, coerce, matches } from "./types";
import { Encoder } from "./cbor";
import { Request, decodeRequest } from "./request";
import { Response, err } from "./response";
import { hostInput, hostOutput, log, Level } from "./host";

/** The ABI version this PDK speaks. */
export const ABI_VERSION: i32 = 1;

/** A knot's code: reads the request, returns ok(...), err(...) or skip(...). */
export type Handler = (req: Request) => Response;

/** One declared input of a knot. */
export class Input {
  parsed: Type;
  constructor(public name: string, public type: string, public doc: string = "", public optional: bool = false) {
    if (!validInputName(name)) abort("pirn: input \"" + name + "\": invalid name (want an identifier)");
    const t = parseType(type);
    if (t.error !== null) abort("pirn: input \"" + name + "\": " + t.error!);
    this.parsed = t.type;
  }
}

/** A required input of the given type (docs/abi.md §5), with an optional doc line. */
export function input(name: string, type: string, doc: string = ""): Input {
  return new Input(name, type, doc, false);
}

/** An input that a pipeline may leave unbound (read it with has() or the …Or getters). */
export function optional(name: string, type: string, doc: string = ""): Input {
  return new Input(name, type, doc, true);
}

/** A knot: its manifest entry and its handler. */
export class Knot {
  rest: string = "";
  restType: Type | null = null;
  outputType: Type;

  constructor(public name: string, public doc: string, public inputs: Input[], public output: string, public handler: Handler) {
    if (!validKnotName(name)) abort("pirn: knot \"" + name + "\": invalid name (want 1-256 of A-Z a-z 0-9 _ . : -)");
    const t = parseType(output);
    if (t.error !== null) abort("pirn: knot \"" + name + "\": output: " + t.error!);
    this.outputType = t.type;
    for (let i = 0; i < inputs.length; i++) {
      for (let j = 0; j < i; j++) {
        if (inputs[j].name == inputs[i].name) abort("pirn: knot \"" + name + "\": input \"" + inputs[i].name + "\" declared twice");
      }
    }
  }

  /** Declares that the knot takes any further named inputs of this type (an aggregator); read them with rest(). */
  withRest(type: string): Knot {
    const t = parseType(type);
    if (t.error !== null) abort("pirn: knot \"" + this.name + "\": rest: " + t.error!);
    this.rest = type;
    this.restType = t.type;
    return this;
  }

  declares(name: string): bool {
    for (let i = 0; i < this.inputs.length; i++) if (unchecked(this.inputs[i]).name == name) return true;
    return false;
  }

  /** The knot's manifest entry. */
  spec(): DictValue {
    const d = new DictValue().setStr("name", this.name);
    if (this.doc.length > 0) d.setStr("doc", this.doc);
    const ins = Value.list();
    for (let i = 0; i < this.inputs.length; i++) {
      const it = this.inputs[i];
      const e = new DictValue().setStr("name", it.name).setStr("type", it.type);
      if (it.doc.length > 0) e.setStr("doc", it.doc);
      if (it.optional) e.setBool("optional", true);
      ins.push(e);
    }
    d.set("inputs", ins);
    if (this.rest.length > 0) d.setStr("rest", this.rest);
    d.setStr("output", this.output);
    return d;
  }

  /**
   * Runs the knot on a decoded request: checks and coerces the declared
   * inputs (missing, not convertible to its type, or undeclared without
   * rest → InputError; TypeError is the host's, docs/abi.md §2.3), calls
   * the handler, and turns a failed
   * getter into its err.
   */
  run(req: Request): Response {
    for (let i = 0; i < this.inputs.length; i++) {
      const it = this.inputs[i];
      if (!bindOne(req, it.name, it.parsed, req.inputNames, req.inputValues) &&
          !bindOne(req, it.name, it.parsed, req.configNames, req.configValues)) {
        if (req.failed) return req.failure!;
        if (!it.optional) return err("InputError", "knot \"" + this.name + "\": missing input \"" + it.name + "\"");
      }
      if (req.failed) return req.failure!;
    }
    const rt = this.restType;
    for (let pass = 0; pass < 2; pass++) {
      const names = pass == 0 ? req.inputNames : req.configNames;
      const values = pass == 0 ? req.inputValues : req.configValues;
      for (let i = 0; i < names.length; i++) {
        const n = unchecked(names[i]);
        if (this.declares(n)) continue;
        if (rt === null) return err("InputError", "knot \"" + this.name + "\": unknown input \"" + n + "\"");
        bindOne(req, n, rt, names, values);
        if (req.failed) return req.failure!;
      }
    }
    const r = this.handler(req);
    if (req.failed) return req.failure!;
    return r;
  }
}

// Coerces the value bound to name in names/values to t in place; false if
// the name is not there. A value that does not convert records an InputError.
function bindOne(req: Request, name: string, t: Type, names: string[], values: Value[]): bool {
  for (let i = 0; i < names.length; i++) {
    if (unchecked(names[i]) != name) continue;
    const v = unchecked(values[i]);
    if (!matches(t, v)) {
      const c = coerce(t, v);
      if (c.error !== null) {
        req.fail("InputError", "knot \"" + req.knot + "\": input \"" + name + "\": " + c.error!);
      } else {
        unchecked(values[i] = c.value);
      }
    }
    return true;
  }
  return false;
}

/** The inputs a knot with rest received beyond its declared ones. */
export function rest(req: Request): DictValue {
  const k = findKnot(req.knot);
  const d = new DictValue();
  for (let pass = 0; pass < 2; pass++) {
    const names = pass == 0 ? req.inputNames : req.configNames;
    const values = pass == 0 ? req.inputValues : req.configValues;
    for (let i = 0; i < names.length; i++) {
      if (k !== null && k.declares(names[i])) continue;
      d.set(names[i], values[i]);
    }
  }
  return d;
}

const knots: Knot[] = [];
let moduleName: string = "";

/**
 * Declares a knot of this module. Call it from the entry file's top level;
 * a malformed declaration aborts when the module starts, which the host
 * reports when it loads the module.
 */
export function register(name: string, doc: string, inputs: Input[], output: string, handler: Handler): Knot {
  if (findKnot(name) !== null) abort("pirn: knot \"" + name + "\" registered twice");
  const k = new Knot(name, doc, inputs, output, handler);
  knots.push(k);
  return k;
}

/** Sets the module's informational name in the manifest. */
export function setModuleName(name: string): void {
  moduleName = name;
}

/** The registered knots. */
export function registered(): Knot[] {
  return knots;
}

export function findKnot(name: string): Knot | null {
  for (let i = 0; i < knots.length; i++) if (unchecked(knots[i]).name == name) return unchecked(knots[i]);
  return null;
}

/** The manifest of the given knots, as a value. */
export function manifestValue(name: string, ks: Knot[]): DictValue {
  const m = new DictValue().setInt("abi", ABI_VERSION);
  if (name.length > 0) m.setStr("name", name);
  const list = Value.list();
  for (let i = 0; i < ks.length; i++) list.push(ks[i].spec());
  m.set("knots", list);
  return m;
}

/** The canonical encoding of this module's manifest. */
export function manifest(): Uint8Array {
  const e = new Encoder();
  e.value(manifestValue(moduleName, knots));
  return e.toBytes();
}

/**
 * Runs one invocation on the bytes of a request and returns the response
 * (never traps on malformed input): what pirn_invoke does, exposed for
 * tests.
 */
export function invoke(ptr: usize, len: i32): Response {
  const dr = decodeRequest(ptr, len);
  if (dr.error !== null) return err("PDKError", "malformed request: " + dr.error!);
  const req = dr.request;
  const k = findKnot(req.knot);
  if (k === null) return err("UnknownKnot", "module has no knot \"" + req.knot + "\"");
  return k.run(req);
}

// ---------------------------------------------------------------------------
// The ABI's exports. AssemblyScript exports only what the entry file
// exports, so a knot module's entry file re-exports these three:
//
//   export { pirn_abi_version, pirn_manifest, pirn_invoke } from "pirn-pdk-as/assembly";

const out = new Encoder(1024);
let inBuf = new ArrayBuffer(0);

/** Keep reusable buffers up to this size between invocations. */
const KEEP: i32 = 1 << 20;

export function pirn_abi_version(): i32 {
  return ABI_VERSION;
}

export function pirn_manifest(): i32 {
  out.reset(KEEP);
  out.value(manifestValue(moduleName, knots));
  hostOutput(out.dataStart, <usize>out.len);
  out.reset(KEEP);
  __collect();
  return 0;
}

export function pirn_invoke(len: i32): i32 {
  let r: Response;
  if (len < 0) {
    r = err("PDKError", "negative request length " + len.toString());
  } else {
    if (inBuf.byteLength < len) inBuf = new ArrayBuffer(len);
    const p = changetype<usize>(inBuf);
    if (len > 0) hostInput(p);
    r = invoke(p, len);
  }
  out.reset(KEEP);
  r.encode(out);
  hostOutput(out.dataStart, <usize>out.len);
  // Drop what this invocation allocated. Under --runtime minimal nothing is
  // collected unless asked; here no reference on the stack is live any more.
  out.reset(KEEP);
  if (inBuf.byteLength > KEEP) inBuf = new ArrayBuffer(0);
  __collect();
  return 0;
}

/** Reports whether s is a valid knot name: 1-256 of A-Z a-z 0-9 _ . : - */
export function validKnotName(s: string): bool {
  if (s.length == 0 || s.length > 256) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!isAlnum(c) && c != 0x5f && c != 0x2e && c != 0x3a && c != 0x2d) return false;
  }
  return true;
}

/** Reports whether s is a valid input name: an identifier of at most 128 characters. */
export function validInputName(s: string): bool {
  if (s.length == 0 || s.length > 128) return false;
  const c0 = s.charCodeAt(0);
  if (c0 >= 0x30 && c0 <= 0x39) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!isAlnum(c) && c != 0x5f) return false;
  }
  return true;
}

function isAlnum(c: i32): bool {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39);
}
