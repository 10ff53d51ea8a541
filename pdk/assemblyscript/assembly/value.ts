// Values of the ABI's data model (docs/abi.md §4): null, bool, int (i64),
// float (f64), text, bytes, list, and dict (a text-keyed map).

/** The kind of a {@link Value}. */
export enum Kind {
  Null = 0,
  Bool = 1,
  Int = 2,
  Float = 3,
  Str = 4,
  Bytes = 5,
  List = 6,
  Dict = 7,
}

/** The name of a kind, as the type grammar spells it. */
export function kindName(k: Kind): string {
  switch (k) {
    case Kind.Null: return "null";
    case Kind.Bool: return "bool";
    case Kind.Int: return "int";
    case Kind.Float: return "float";
    case Kind.Str: return "str";
    case Kind.Bytes: return "bytes";
    case Kind.List: return "list";
    case Kind.Dict: return "dict";
  }
  return "?";
}

/**
 * A value. Make one with the static constructors (`Value.int(5)`,
 * `Value.list([...])`, `Value.dict().set("k", v)`); read one with `kind`
 * and the `as…` accessors, which abort (trap) on the wrong kind, so check
 * `kind` (or use the lax getters of Request) first.
 */
export class Value {
  readonly kind: Kind;

  constructor(kind: Kind) {
    this.kind = kind;
  }

  // Constructors.
  static nil(): Value { return NULL; }
  static bool(b: bool): Value { return b ? TRUE : FALSE; }
  static int(i: i64): Value { return new IntValue(i); }
  static float(f: f64): Value { return new FloatValue(f); }
  static str(s: string): Value { return new StrValue(s); }
  static bytes(b: Uint8Array): Value { return new BytesValue(b); }
  static list(items: Value[] = []): ListValue { return new ListValue(items); }
  static dict(): DictValue { return new DictValue(); }
  static ints(xs: i64[]): ListValue {
    const items = new Array<Value>(xs.length);
    for (let i = 0; i < xs.length; i++) unchecked(items[i] = new IntValue(unchecked(xs[i])));
    return new ListValue(items);
  }
  static floats(xs: f64[]): ListValue {
    const fs = new StaticArray<f64>(xs.length);
    memory.copy(changetype<usize>(fs), xs.dataStart, <usize>xs.length << 3);
    return ListValue.packed(fs);
  }
  static strs(xs: string[]): ListValue {
    const items = new Array<Value>(xs.length);
    for (let i = 0; i < xs.length; i++) unchecked(items[i] = new StrValue(unchecked(xs[i])));
    return new ListValue(items);
  }

  // Predicates.
  get isNull(): bool { return this.kind == Kind.Null; }
  /** Int or float. */
  get isNumber(): bool { return this.kind == Kind.Int || this.kind == Kind.Float; }

  // Accessors: each aborts on a value of another kind.
  asBool(): bool {
    if (this.kind != Kind.Bool) wrongKind(this, "bool");
    return changetype<BoolValue>(this).b;
  }
  asInt(): i64 {
    if (this.kind != Kind.Int) wrongKind(this, "int");
    return changetype<IntValue>(this).i;
  }
  /** A float, or an int converted to float. */
  asFloat(): f64 {
    if (this.kind == Kind.Int) return <f64>changetype<IntValue>(this).i;
    if (this.kind != Kind.Float) wrongKind(this, "float");
    return changetype<FloatValue>(this).f;
  }
  asStr(): string {
    if (this.kind != Kind.Str) wrongKind(this, "str");
    return changetype<StrValue>(this).s;
  }
  asBytes(): Uint8Array {
    if (this.kind != Kind.Bytes) wrongKind(this, "bytes");
    return changetype<BytesValue>(this).b;
  }
  asList(): ListValue {
    if (this.kind != Kind.List) wrongKind(this, "list");
    return changetype<ListValue>(this);
  }
  asDict(): DictValue {
    if (this.kind != Kind.Dict) wrongKind(this, "dict");
    return changetype<DictValue>(this);
  }

  /** Structural equality (floats compare by bits after NaN folding, as the canonical encoding does). */
  equals(other: Value): bool {
    if (this.kind != other.kind) return false;
    switch (this.kind) {
      case Kind.Null: return true;
      case Kind.Bool: return this.asBool() == other.asBool();
      case Kind.Int: return this.asInt() == other.asInt();
      case Kind.Float: {
        const a = this.asFloat(), b = other.asFloat();
        if (isNaN(a)) return isNaN(b);
        return reinterpret<u64>(a) == reinterpret<u64>(b);
      }
      case Kind.Str: return this.asStr() == other.asStr();
      case Kind.Bytes: {
        const a = this.asBytes(), b = other.asBytes();
        if (a.length != b.length) return false;
        return memory.compare(a.dataStart, b.dataStart, a.length) == 0;
      }
      case Kind.List: {
        const a = this.asList().items, b = other.asList().items;
        if (a.length != b.length) return false;
        for (let i = 0; i < a.length; i++) if (!a[i].equals(b[i])) return false;
        return true;
      }
      case Kind.Dict: {
        const a = this.asDict(), b = other.asDict();
        if (a.size != b.size) return false;
        for (let i = 0; i < a.keys.length; i++) {
          const w = b.get(a.keys[i]);
          if (w === null || !a.vals[i].equals(w)) return false;
        }
        return true;
      }
    }
    return false;
  }

  /** CBOR diagnostic notation: `[1, 2.5, "x", h'00ff', {"a": null}]`. */
  toString(): string {
    switch (this.kind) {
      case Kind.Null: return "null";
      case Kind.Bool: return this.asBool() ? "true" : "false";
      case Kind.Int: return this.asInt().toString();
      case Kind.Float: return diagFloat(this.asFloat());
      case Kind.Str: return quote(this.asStr());
      case Kind.Bytes: {
        const b = this.asBytes();
        let s = "h'";
        for (let i = 0; i < b.length; i++) s += hex2(b[i]);
        return s + "'";
      }
      case Kind.List: {
        const xs = this.asList().items;
        let s = "[";
        for (let i = 0; i < xs.length; i++) {
          if (i > 0) s += ", ";
          s += xs[i].toString();
        }
        return s + "]";
      }
      case Kind.Dict: {
        const d = this.asDict();
        let s = "{";
        for (let i = 0; i < d.keys.length; i++) {
          if (i > 0) s += ", ";
          s += quote(d.keys[i]) + ": " + d.vals[i].toString();
        }
        return s + "}";
      }
    }
    return "?";
  }

  /** A short description for error messages, as the host writes them: `str "x"`, `list (3)`. */
  describe(): string {
    switch (this.kind) {
      case Kind.Null: return "null";
      case Kind.Bool: return "bool " + (this.asBool() ? "true" : "false");
      case Kind.Int: return "int " + this.asInt().toString();
      case Kind.Float: return "float " + floatString(this.asFloat());
      case Kind.Str: {
        let s = this.asStr();
        if (s.length > 40) s = s.substring(0, 40) + "…";
        return "str " + quote(s);
      }
      case Kind.Bytes: return "bytes (" + this.asBytes().length.toString() + ")";
      case Kind.List: return "list (" + this.asList().length.toString() + ")";
      case Kind.Dict: return "dict (" + this.asDict().size.toString() + ")";
    }
    return "?";
  }
}

function wrongKind(v: Value, want: string): void {
  abort("Value: want " + want + ", got " + v.describe());
}

export class BoolValue extends Value {
  constructor(public b: bool) { super(Kind.Bool); }
}

export class IntValue extends Value {
  constructor(public i: i64) { super(Kind.Int); }
}

export class FloatValue extends Value {
  constructor(public f: f64) { super(Kind.Float); }
}

export class StrValue extends Value {
  constructor(public s: string) { super(Kind.Str); }
}

export class BytesValue extends Value {
  constructor(public b: Uint8Array) { super(Kind.Bytes); }
}

/**
 * A list. A list of floats only is kept packed (one f64 array, no Value per
 * element) until something asks for its items as Values: the decoder packs
 * such lists, and Value.floats makes one.
 */
export class ListValue extends Value {
  private _items: Value[] | null;
  private _floats: StaticArray<f64> | null = null;

  constructor(items: Value[]) {
    super(Kind.List);
    this._items = items;
  }

  /** A packed list of floats (xs is kept, not copied). */
  static packed(xs: StaticArray<f64>): ListValue {
    const l = new ListValue([]);
    l._items = null;
    l._floats = xs;
    return l;
  }

  /** The elements as Values (a packed list is unpacked once, here). */
  get items(): Value[] {
    let it = this._items;
    if (it === null) {
      const fs = this._floats!;
      it = new Array<Value>(fs.length);
      for (let i = 0; i < fs.length; i++) unchecked(it[i] = new FloatValue(unchecked(fs[i])));
      this._items = it;
      this._floats = null;
    }
    return it;
  }

  set items(xs: Value[]) {
    this._items = xs;
    this._floats = null;
  }

  /** The packed floats, or null if the list is not packed. */
  get packedFloats(): StaticArray<f64> | null { return this._floats; }

  get length(): i32 {
    const fs = this._floats;
    return fs !== null ? fs.length : this._items!.length;
  }

  at(i: i32): Value {
    const fs = this._floats;
    if (fs !== null) return new FloatValue(fs[i]);
    return this._items![i];
  }

  push(v: Value): ListValue {
    this.items.push(v);
    return this;
  }

  /** Reports whether every element is a float or an int. */
  allNumbers(): bool {
    if (this._floats !== null) return true;
    const it = this._items!;
    for (let i = 0; i < it.length; i++) if (!unchecked(it[i]).isNumber) return false;
    return true;
  }

  /** The elements as f64 (ints converted); they must all be numbers. */
  toFloats(): f64[] {
    const fs = this._floats;
    if (fs !== null) {
      const out = new Array<f64>(fs.length);
      memory.copy(out.dataStart, changetype<usize>(fs), <usize>fs.length << 3);
      return out;
    }
    const it = this._items!;
    const out = new Array<f64>(it.length);
    for (let i = 0; i < it.length; i++) unchecked(out[i] = unchecked(it[i]).asFloat());
    return out;
  }

  /** Element i as f64 (an int converted), without making a Value. */
  floatAt(i: i32): f64 {
    const fs = this._floats;
    if (fs !== null) return fs[i];
    return this._items![i].asFloat();
  }
}

/**
 * A text-keyed map. Keys keep their insertion order here; the encoder
 * writes them in canonical order. `set` replaces an existing key.
 */
export class DictValue extends Value {
  keys: string[] = [];
  vals: Value[] = [];
  private index: Map<string, i32> | null = null;

  constructor() { super(Kind.Dict); }

  get size(): i32 { return this.keys.length; }

  /** The position of key in keys/vals, or -1. */
  indexOf(key: string): i32 {
    const n = this.keys.length;
    if (n <= 8) {
      for (let i = 0; i < n; i++) if (unchecked(this.keys[i]) == key) return i;
      return -1;
    }
    let idx = this.index;
    if (idx === null) {
      idx = new Map<string, i32>();
      for (let i = 0; i < n; i++) idx.set(unchecked(this.keys[i]), i);
      this.index = idx;
    }
    return idx.has(key) ? idx.get(key) : -1;
  }

  has(key: string): bool { return this.indexOf(key) >= 0; }

  get(key: string): Value | null {
    const i = this.indexOf(key);
    return i < 0 ? null : unchecked(this.vals[i]);
  }

  set(key: string, v: Value): DictValue {
    const i = this.indexOf(key);
    if (i >= 0) {
      unchecked(this.vals[i] = v);
      return this;
    }
    this.keys.push(key);
    this.vals.push(v);
    const idx = this.index;
    if (idx !== null) idx.set(key, this.keys.length - 1);
    return this;
  }

  // Typed setters, for building outputs.
  setInt(key: string, i: i64): DictValue { return this.set(key, Value.int(i)); }
  setFloat(key: string, f: f64): DictValue { return this.set(key, Value.float(f)); }
  setStr(key: string, s: string): DictValue { return this.set(key, Value.str(s)); }
  setBool(key: string, b: bool): DictValue { return this.set(key, Value.bool(b)); }
}

/** The shared null, true and false. */
export const NULL: Value = new Value(Kind.Null);
export const TRUE: Value = new BoolValue(true);
export const FALSE: Value = new BoolValue(false);

/** A float as Go's %v would print most values: 2.5, 5, NaN, +Inf. */
export function floatString(f: f64): string {
  if (isNaN(f)) return "NaN";
  if (f == Infinity) return "+Inf";
  if (f == -Infinity) return "-Inf";
  let s = f.toString();
  if (s.endsWith(".0")) s = s.substring(0, s.length - 2);
  if (f == 0 && 1 / f < 0) s = "-0";
  return s;
}

/** A float in diagnostic notation: 2.5, 5.0, -0.0, NaN, Infinity. */
function diagFloat(f: f64): string {
  if (isNaN(f)) return "NaN";
  if (f == Infinity) return "Infinity";
  if (f == -Infinity) return "-Infinity";
  if (f == 0 && 1 / f < 0) return "-0.0";
  return f.toString();
}

const HEX = "0123456789abcdef";

function hex2(b: u8): string {
  return HEX.charAt(b >> 4) + HEX.charAt(b & 15);
}

/** A double-quoted string with JSON-style escapes. */
export function quote(s: string): string {
  let out = "\"";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x22) out += "\\\"";
    else if (c == 0x5c) out += "\\\\";
    else if (c == 0x0a) out += "\\n";
    else if (c == 0x0d) out += "\\r";
    else if (c == 0x09) out += "\\t";
    else if (c < 0x20) out += "\\u00" + hex2(<u8>c);
    else out += String.fromCharCode(c);
  }
  return out + "\"";
}
