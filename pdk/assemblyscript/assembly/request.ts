// The request (docs/abi.md §2.1) as a knot sees it, with lax typed getters.

import { Value, Kind, ListValue, DictValue, NULL } from "./value";
import { Type, TypeKind, coerce, parseType } from "./types";
import { Response, err } from "./response";
import { Decoder } from "./cbor";

/**
 * A decoded request: the knot's name and its named values (inputs and
 * config together: a name is in at most one).
 *
 * The getters convert by the ABI's lax rules (an int getter accepts 5.0 and
 * " 5 ", a float getter accepts 5). AssemblyScript has no exceptions, so a
 * getter that fails (missing input, value of the wrong type) records an err
 * response and returns a zero value; `failed` is then true, and the PDK
 * answers with that err whatever the handler returns. Check `failed` before
 * using a value where a zero would trap (an integer division, an index).
 * Inputs declared in the manifest are checked and coerced to their declared
 * types before the handler runs, so the getter matching a declared type
 * never fails on them.
 */
export class Request {
  knot: string = "";
  /** Names of inputs (values of parents), in canonical order. */
  inputNames: string[] = [];
  inputValues: Value[] = [];
  /** Names of config values (constants), in canonical order. */
  configNames: string[] = [];
  configValues: Value[] = [];
  /** The first getter failure, if any. */
  failure: Response | null = null;

  /** Reports whether name is bound (as an input or config). */
  has(name: string): bool {
    return this.lookup(name) !== null;
  }

  /** The value bound to name, or null. */
  lookup(name: string): Value | null {
    for (let i = 0; i < this.inputNames.length; i++) if (unchecked(this.inputNames[i]) == name) return unchecked(this.inputValues[i]);
    for (let i = 0; i < this.configNames.length; i++) if (unchecked(this.configNames[i]) == name) return unchecked(this.configValues[i]);
    return null;
  }

  /** Every bound name, inputs then config. */
  names(): string[] {
    return this.inputNames.concat(this.configNames);
  }

  /** True once a getter has failed. */
  get failed(): bool { return this.failure !== null; }

  /** Records an err (the first one wins) and returns the request's failure. */
  fail(type: string, message: string): Response {
    if (this.failure === null) this.failure = err(type, message);
    return this.failure!;
  }

  /** The value bound to name; a missing name records an InputError. */
  value(name: string): Value {
    const v = this.lookup(name);
    if (v === null) {
      this.fail("InputError", "knot \"" + this.knot + "\": missing input \"" + name + "\"");
      return NULL;
    }
    return v;
  }

  /** The value bound to name converted to type (e.g. "list[int]"); failures record an err. */
  as(name: string, type: string): Value {
    const v = this.lookup(name);
    if (v === null) {
      this.fail("InputError", "knot \"" + this.knot + "\": missing input \"" + name + "\"");
      return NULL;
    }
    const t = parseType(type);
    if (t.error !== null) abort("Request.as: " + t.error!);
    return this.conv(name, t.type, v);
  }

  private conv(name: string, t: Type, v: Value): Value {
    const c = coerce(t, v);
    if (c.error !== null) {
      this.fail("InputError", "knot \"" + this.knot + "\": input \"" + name + "\": " + c.error!);
      return NULL;
    }
    return c.value;
  }

  private typed(name: string, t: Type): Value {
    const v = this.lookup(name);
    if (v === null) {
      this.fail("InputError", "knot \"" + this.knot + "\": missing input \"" + name + "\"");
      return NULL;
    }
    return this.conv(name, t, v);
  }

  int(name: string): i64 {
    const v = this.typed(name, T_INT);
    return v.kind == Kind.Int ? v.asInt() : 0;
  }
  float(name: string): f64 {
    const v = this.typed(name, T_FLOAT);
    return v.kind == Kind.Float ? v.asFloat() : 0;
  }
  str(name: string): string {
    const v = this.typed(name, T_STR);
    return v.kind == Kind.Str ? v.asStr() : "";
  }
  bool(name: string): bool {
    const v = this.typed(name, T_BOOL);
    return v.kind == Kind.Bool ? v.asBool() : false;
  }
  bytes(name: string): Uint8Array {
    const v = this.typed(name, T_BYTES);
    return v.kind == Kind.Bytes ? v.asBytes() : new Uint8Array(0);
  }
  /** A list's elements, unconverted. */
  list(name: string): Value[] {
    const v = this.typed(name, T_LIST);
    return v.kind == Kind.List ? v.asList().items : [];
  }
  dict(name: string): DictValue {
    const v = this.typed(name, T_DICT);
    return v.kind == Kind.Dict ? v.asDict() : new DictValue();
  }
  ints(name: string): i64[] {
    const v = this.typed(name, T_INTS);
    if (v.kind != Kind.List) return [];
    const xs = v.asList().items;
    const out = new Array<i64>(xs.length);
    for (let i = 0; i < xs.length; i++) unchecked(out[i] = unchecked(xs[i]).asInt());
    return out;
  }
  floats(name: string): f64[] {
    const v = this.typed(name, T_FLOATS);
    if (v.kind != Kind.List) return [];
    return v.asList().toFloats();
  }
  strs(name: string): string[] {
    const v = this.typed(name, T_STRS);
    if (v.kind != Kind.List) return [];
    const xs = v.asList().items;
    const out = new Array<string>(xs.length);
    for (let i = 0; i < xs.length; i++) unchecked(out[i] = unchecked(xs[i]).asStr());
    return out;
  }

  // Optional inputs: the default when unbound or null.
  intOr(name: string, def: i64): i64 { return this.unset(name) ? def : this.int(name); }
  floatOr(name: string, def: f64): f64 { return this.unset(name) ? def : this.float(name); }
  strOr(name: string, def: string): string { return this.unset(name) ? def : this.str(name); }
  boolOr(name: string, def: bool): bool { return this.unset(name) ? def : this.bool(name); }

  private unset(name: string): bool {
    const v = this.lookup(name);
    return v === null || v.kind == Kind.Null;
  }
}

const T_INT = new Type(TypeKind.Int);
const T_FLOAT = new Type(TypeKind.Float);
const T_STR = new Type(TypeKind.Str);
const T_BOOL = new Type(TypeKind.Bool);
const T_BYTES = new Type(TypeKind.Bytes);
const T_LIST = new Type(TypeKind.List);
const T_DICT = new Type(TypeKind.Dict);
const T_INTS = new Type(TypeKind.List, T_INT);
const T_FLOATS = new Type(TypeKind.List, T_FLOAT);
const T_STRS = new Type(TypeKind.List, T_STR);

/** What decodeRequest returns: a request, or an error. */
export class DecodedRequest {
  constructor(public request: Request, public error: string | null) {}
}

/**
 * Decodes a request envelope {"knot", "config", "inputs"} (keys in any
 * order, each exactly once; names unique across inputs and config).
 */
export function decodeRequest(ptr: usize, len: i32): DecodedRequest {
  const req = new Request();
  const d = new Decoder(ptr, len);
  const top = d.item(1);
  let e: string | null = d.error;
  if (e === null && d.pos < d.end) e = (<i32>(d.end - d.pos)).toString() + " trailing bytes";
  if (e !== null) return new DecodedRequest(req, e);
  const m = top!;
  if (m.kind != Kind.Dict) return new DecodedRequest(req, "request is not a map");
  const env = m.asDict();
  let seen = 0;
  for (let i = 0; i < env.keys.length; i++) {
    const k = env.keys[i], v = env.vals[i];
    if (k == "knot") {
      if (v.kind != Kind.Str) return new DecodedRequest(req, "\"knot\" is not text");
      req.knot = v.asStr();
      seen |= 1;
    } else if (k == "inputs" || k == "config") {
      if (v.kind != Kind.Dict) return new DecodedRequest(req, "\"" + k + "\" is not a map");
      const args = v.asDict();
      if (k == "inputs") {
        req.inputNames = args.keys;
        req.inputValues = args.vals;
        seen |= 2;
      } else {
        req.configNames = args.keys;
        req.configValues = args.vals;
        seen |= 4;
      }
    } else {
      return new DecodedRequest(req, "unknown key \"" + k + "\"");
    }
  }
  if ((seen & 1) == 0 || req.knot.length == 0) return new DecodedRequest(req, "missing \"knot\"");
  const ni = req.inputNames.length, nc = req.configNames.length;
  if (ni > 0 && nc > 0) {
    if (ni * nc <= 256) {
      for (let i = 0; i < ni; i++) {
        const n = req.inputNames[i];
        for (let j = 0; j < nc; j++) {
          if (req.configNames[j] == n) return new DecodedRequest(req, "\"" + n + "\" is both an input and config");
        }
      }
    } else {
      const seen = new Set<string>();
      for (let j = 0; j < nc; j++) seen.add(req.configNames[j]);
      for (let i = 0; i < ni; i++) {
        if (seen.has(req.inputNames[i])) return new DecodedRequest(req, "\"" + req.inputNames[i] + "\" is both an input and config");
      }
    }
  }
  return new DecodedRequest(req, null);
}
