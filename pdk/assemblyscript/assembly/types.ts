// The type grammar of docs/abi.md §5 and its lax coercion rules.

import { Value, Kind, ListValue, DictValue, NULL, TRUE, FALSE, IntValue, FloatValue, StrValue, BytesValue, BoolValue } from "./value";

export enum TypeKind {
  Any = 0,
  Null = 1,
  Bool = 2,
  Int = 3,
  Float = 4,
  Str = 5,
  Bytes = 6,
  List = 7,
  Dict = 8,
  Optional = 9,
}

const TYPE_NAMES: string[] = ["any", "null", "bool", "int", "float", "str", "bytes", "list", "dict", "optional"];

/** A parsed type expression such as `list[float]`. */
export class Type {
  constructor(public kind: TypeKind, public elem: Type | null = null) {}

  /** The canonical spelling, e.g. "list[int]". */
  toString(): string {
    const name = TYPE_NAMES[this.kind];
    const e = this.elem;
    return e === null ? name : name + "[" + e.toString() + "]";
  }

  get elemOrAny(): Type {
    const e = this.elem;
    return e === null ? ANY : e;
  }
}

export const ANY: Type = new Type(TypeKind.Any);

/** What parseType returns. */
export class ParsedType {
  constructor(public type: Type, public error: string | null) {}
}

class TypeParser {
  pos: i32 = 0;
  error: string | null = null;
  constructor(public s: string) {}

  skipSpace(): void {
    while (this.pos < this.s.length) {
      const c = this.s.charCodeAt(this.pos);
      if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) break;
      this.pos++;
    }
  }

  peek(): i32 { return this.pos < this.s.length ? this.s.charCodeAt(this.pos) : -1; }

  fail(msg: string): Type {
    if (this.error === null) this.error = msg;
    return ANY;
  }

  parse(): Type {
    this.skipSpace();
    const start = this.pos;
    while (this.pos < this.s.length) {
      const c = this.s.charCodeAt(this.pos);
      if (c == 0x5b || c == 0x5d || c == 0x2c) break; // [ ] ,
      this.pos++;
    }
    const name = this.s.substring(start, this.pos).trim();
    this.skipSpace();
    if (name == "optional" || name == "Optional") {
      if (this.peek() != 0x5b) return this.fail("optional needs an element type: optional[T]");
      const e = this.elem();
      return new Type(TypeKind.Optional, e);
    }
    let k: TypeKind;
    if (name == "any" || name == "Any") k = TypeKind.Any;
    else if (name == "null" || name == "None") k = TypeKind.Null;
    else if (name == "bool") k = TypeKind.Bool;
    else if (name == "int") k = TypeKind.Int;
    else if (name == "float") k = TypeKind.Float;
    else if (name == "str" || name == "string") k = TypeKind.Str;
    else if (name == "bytes") k = TypeKind.Bytes;
    else if (name == "list" || name == "tuple" || name == "set") k = TypeKind.List;
    else if (name == "dict" || name == "map") k = TypeKind.Dict;
    else if (name.length == 0) return this.fail("missing type name");
    else return this.fail("unknown type \"" + name + "\" (want one of any, null, bool, int, float, str, bytes, list[T], dict[T], optional[T])");
    if (this.peek() == 0x5b) {
      if (k != TypeKind.List && k != TypeKind.Dict) return this.fail(name + " takes no element type");
      const e = this.elem();
      return new Type(k, e);
    }
    return new Type(k);
  }

  // "[T]", or "[str, T]" for dict-like spellings.
  elem(): Type {
    this.pos++; // [
    let e = this.parse();
    if (this.error !== null) return ANY;
    this.skipSpace();
    if (this.peek() == 0x2c) {
      if (e.kind != TypeKind.Str) return this.fail("dict keys must be str");
      this.pos++;
      e = this.parse();
      if (this.error !== null) return ANY;
      this.skipSpace();
    }
    if (this.peek() != 0x5d) return this.fail("missing ]");
    this.pos++;
    this.skipSpace();
    return e;
  }
}

/** Parses a type expression of the grammar in docs/abi.md §5. */
export function parseType(s: string): ParsedType {
  const p = new TypeParser(s);
  const t = p.parse();
  if (p.error === null && p.pos < s.length) p.fail("unexpected \"" + s.substring(p.pos) + "\"");
  if (p.error !== null) return new ParsedType(ANY, "type \"" + s + "\": " + p.error!);
  return new ParsedType(t, null);
}

/** What coerce returns: a value, or an error and a NULL value. */
export class Coerced {
  constructor(public value: Value, public error: string | null) {}
  get ok(): bool { return this.error === null; }
}

/**
 * Converts v to type t by the ABI's lax rules (docs/abi.md §5), as the host
 * does: an int accepts integral floats, decimal text and booleans; a float
 * accepts ints and numeric text; and so on. The error reads as the host's:
 * `at [2]: want float, got str "x" (not a number)`.
 */
export function coerce(t: Type, v: Value): Coerced {
  if (matches(t, v)) return new Coerced(v, null);
  const c = new Coercer();
  const out = c.run(t, v);
  if (out === null) {
    const msg = c.path.length > 0 ? "at " + c.path + ": " + c.error : c.error;
    return new Coerced(NULL, msg);
  }
  return new Coerced(out, null);
}

// The path of a failure is built while unwinding, so that a success
// allocates nothing for it.
class Coercer {
  error: string = "";
  path: string = "";

  fail(t: Type, v: Value, why: string): Value | null {
    let msg = "want " + t.toString() + ", got " + v.describe();
    if (why.length > 0) msg += " (" + why + ")";
    this.error = msg;
    return null;
  }

  run(t: Type, v: Value): Value | null {
    switch (t.kind) {
      case TypeKind.Any:
        return v;
      case TypeKind.Null:
        return v.kind == Kind.Null ? v : this.fail(t, v, "");
      case TypeKind.Optional:
        return v.kind == Kind.Null ? v : this.run(t.elemOrAny, v);
      case TypeKind.Bool: {
        if (v.kind == Kind.Bool) return v;
        if (v.kind == Kind.Int) {
          const i = v.asInt();
          if (i == 0) return FALSE;
          if (i == 1) return TRUE;
        } else if (v.kind == Kind.Float) {
          const f = v.asFloat();
          if (f == 0) return FALSE;
          if (f == 1) return TRUE;
        } else if (v.kind == Kind.Str) {
          const s = v.asStr().trim().toLowerCase();
          if (s == "1" || s == "true" || s == "t" || s == "yes" || s == "y" || s == "on") return TRUE;
          if (s == "0" || s == "false" || s == "f" || s == "no" || s == "n" || s == "off") return FALSE;
        }
        return this.fail(t, v, "");
      }
      case TypeKind.Int: {
        if (v.kind == Kind.Int) return v;
        if (v.kind == Kind.Bool) return new IntValue(v.asBool() ? 1 : 0);
        if (v.kind == Kind.Float) {
          const f = v.asFloat();
          if (f != Math.trunc(f) || !isFinite(f)) return this.fail(t, v, "has a fractional part or is not finite");
          if (f < -9223372036854775808.0 || f >= 9223372036854775808.0) return this.fail(t, v, "out of int64 range");
          return new IntValue(<i64>f);
        }
        if (v.kind == Kind.Str) {
          const r = parseDecimalInt(v.asStr().trim());
          if (r === null) return this.fail(t, v, "not a decimal integer");
          return r;
        }
        return this.fail(t, v, "");
      }
      case TypeKind.Float: {
        if (v.kind == Kind.Float) return v;
        if (v.kind == Kind.Int) return new FloatValue(<f64>v.asInt());
        if (v.kind == Kind.Str) {
          const r = parseNumber(v.asStr().trim());
          if (r === null) return this.fail(t, v, "not a number");
          return r;
        }
        return this.fail(t, v, "");
      }
      case TypeKind.Str:
        return v.kind == Kind.Str ? v : this.fail(t, v, "");
      case TypeKind.Bytes: {
        if (v.kind == Kind.Bytes) return v;
        if (v.kind == Kind.Str) {
          const s = v.asStr();
          if (s.startsWith("base64:")) {
            const b = base64Decode(s.substring(7));
            if (b === null) return this.fail(t, v, "bad base64");
            return new BytesValue(b);
          }
          const u = String.UTF8.encode(s, false, String.UTF8.ErrorMode.REPLACE);
          return new BytesValue(Uint8Array.wrap(u));
        }
        return this.fail(t, v, "");
      }
      case TypeKind.List: {
        if (v.kind != Kind.List) return this.fail(t, v, "");
        const e = t.elemOrAny;
        if (e.kind == TypeKind.Any) return v;
        const xs = v.asList().items;
        let out: Value[] | null = null;
        for (let i = 0; i < xs.length; i++) {
          const x = unchecked(xs[i]);
          const c = this.run(e, x);
          if (c === null) {
            this.path = "[" + i.toString() + "]" + this.path;
            return null;
          }
          if (c !== x && out === null) out = xs.slice(0);
          if (out !== null) unchecked(out[i] = c);
        }
        return out === null ? v : new ListValue(out);
      }
      case TypeKind.Dict: {
        if (v.kind != Kind.Dict) return this.fail(t, v, "");
        const e = t.elemOrAny;
        if (e.kind == TypeKind.Any) return v;
        const d = v.asDict();
        let out: DictValue | null = null;
        for (let i = 0; i < d.keys.length; i++) {
          const x = unchecked(d.vals[i]);
          const c = this.run(e, x);
          if (c === null) {
            this.path = "." + unchecked(d.keys[i]) + this.path;
            return null;
          }
          if (c !== x && out === null) {
            out = new DictValue();
            out.keys = d.keys.slice(0);
            out.vals = d.vals.slice(0);
          }
          if (out !== null) unchecked(out.vals[i] = c);
        }
        return out === null ? v : out;
      }
    }
    return this.fail(t, v, "unknown kind");
  }
}

/** Reports whether v matches t without conversion. */
export function matches(t: Type, v: Value): bool {
  switch (t.kind) {
    case TypeKind.Any: return true;
    case TypeKind.Null: return v.kind == Kind.Null;
    case TypeKind.Optional: return v.kind == Kind.Null || matches(t.elemOrAny, v);
    case TypeKind.Bool: return v.kind == Kind.Bool;
    case TypeKind.Int: return v.kind == Kind.Int;
    case TypeKind.Float: return v.kind == Kind.Float;
    case TypeKind.Str: return v.kind == Kind.Str;
    case TypeKind.Bytes: return v.kind == Kind.Bytes;
    case TypeKind.List: {
      if (v.kind != Kind.List) return false;
      const e = t.elemOrAny;
      if (e.kind == TypeKind.Any) return true;
      const l = v.asList();
      if (l.packedFloats !== null) return e.kind == TypeKind.Float || (e.kind == TypeKind.Optional && e.elemOrAny.kind == TypeKind.Float);
      const xs = l.items;
      for (let i = 0; i < xs.length; i++) if (!matches(e, unchecked(xs[i]))) return false;
      return true;
    }
    case TypeKind.Dict: {
      if (v.kind != Kind.Dict) return false;
      const e = t.elemOrAny;
      if (e.kind == TypeKind.Any) return true;
      const vs = v.asDict().vals;
      for (let i = 0; i < vs.length; i++) if (!matches(e, unchecked(vs[i]))) return false;
      return true;
    }
  }
  return false;
}

/** Parses an optionally signed decimal int64 (strconv.ParseInt base 10), or null. */
export function parseDecimalInt(s: string): Value | null {
  const n = s.length;
  if (n == 0) return null;
  let i = 0;
  let neg = false;
  const c0 = s.charCodeAt(0);
  if (c0 == 0x2b || c0 == 0x2d) {
    neg = c0 == 0x2d;
    i = 1;
    if (n == 1) return null;
  }
  let v: u64 = 0;
  const limit: u64 = neg ? <u64>1 << 63 : (<u64>1 << 63) - 1;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return null;
    const d = <u64>(c - 0x30);
    if (v > (limit - d) / 10) return null; // overflow
    v = v * 10 + d;
  }
  return new IntValue(neg ? -<i64>v : <i64>v);
}

/**
 * Parses decimal floating-point text (an optional sign, digits with an
 * optional point, an optional exponent), or inf, infinity and nan in any
 * case, or null.
 */
export function parseNumber(s: string): Value | null {
  const n = s.length;
  if (n == 0) return null;
  let i = 0;
  let neg = false;
  const c0 = s.charCodeAt(0);
  if (c0 == 0x2b || c0 == 0x2d) {
    neg = c0 == 0x2d;
    i = 1;
  }
  const word = s.substring(i).toLowerCase();
  if (word == "inf" || word == "infinity") return new FloatValue(neg ? -Infinity : Infinity);
  if (word == "nan") return new FloatValue(NaN);
  let digits = 0;
  while (i < n && isDigit(s.charCodeAt(i))) { i++; digits++; }
  if (i < n && s.charCodeAt(i) == 0x2e) {
    i++;
    while (i < n && isDigit(s.charCodeAt(i))) { i++; digits++; }
  }
  if (digits == 0) return null;
  if (i < n && (s.charCodeAt(i) | 0x20) == 0x65) { // e E
    i++;
    if (i < n && (s.charCodeAt(i) == 0x2b || s.charCodeAt(i) == 0x2d)) i++;
    let ed = 0;
    while (i < n && isDigit(s.charCodeAt(i))) { i++; ed++; }
    if (ed == 0) return null;
  }
  if (i != n) return null;
  return new FloatValue(parseFloat(s));
}

function isDigit(c: i32): bool { return c >= 0x30 && c <= 0x39; }

/** Decodes standard, padded base64, or null. */
export function base64Decode(s: string): Uint8Array | null {
  const n = s.length;
  if (n % 4 != 0) return null;
  let pad = 0;
  if (n > 0 && s.charCodeAt(n - 1) == 0x3d) pad++;
  if (n > 1 && s.charCodeAt(n - 2) == 0x3d) pad++;
  const out = new Uint8Array((n / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < n; i += 4) {
    let acc: u32 = 0;
    for (let j = 0; j < 4; j++) {
      const c = s.charCodeAt(i + j);
      let d: i32;
      if (c >= 0x41 && c <= 0x5a) d = c - 0x41;
      else if (c >= 0x61 && c <= 0x7a) d = c - 0x61 + 26;
      else if (c >= 0x30 && c <= 0x39) d = c - 0x30 + 52;
      else if (c == 0x2b) d = 62;
      else if (c == 0x2f) d = 63;
      else if (c == 0x3d && i + j >= n - pad) d = 0;
      else return null;
      acc = (acc << 6) | <u32>d;
    }
    if (o < out.length) out[o++] = <u8>(acc >>> 16);
    if (o < out.length) out[o++] = <u8>(acc >>> 8);
    if (o < out.length) out[o++] = <u8>acc;
  }
  return out;
}
