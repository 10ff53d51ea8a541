// CBOR for the ABI's data model (docs/abi.md §4): a canonical encoder and a
// bounded, strict decoder that reports malformed input as an error instead
// of trapping.

import { Value, Kind, ListValue, DictValue, NULL, TRUE, FALSE, IntValue, FloatValue, StrValue, BytesValue } from "./value";

/** The decoder's limits (docs/abi.md §4). */
export const MAX_NESTED_LEVELS: i32 = 64;
export const MAX_ELEMENTS: u64 = 1 << 24;

// ---------------------------------------------------------------------------
// Encoder

/**
 * A growable byte buffer that writes values in the canonical encoding:
 * shortest integer and length heads, the shortest of float16/32/64 that is
 * exact (every NaN as f97e00), and map keys shorter-first then bytewise.
 */
export class Encoder {
  private buf: ArrayBuffer;
  len: i32 = 0;

  constructor(capacity: i32 = 256) {
    this.buf = new ArrayBuffer(capacity > 0 ? capacity : 16);
  }

  /** The address of the first byte (valid until the next write). */
  get dataStart(): usize { return changetype<usize>(this.buf); }

  get capacity(): i32 { return this.buf.byteLength; }

  /** Empties the buffer; keeps its storage unless it is larger than keep bytes. */
  reset(keep: i32 = 1 << 20): void {
    this.len = 0;
    if (this.buf.byteLength > keep) this.buf = new ArrayBuffer(256);
  }

  /** A copy of the bytes written. */
  toBytes(): Uint8Array {
    const out = new Uint8Array(this.len);
    memory.copy(out.dataStart, changetype<usize>(this.buf), this.len);
    return out;
  }

  private grow(n: i32): usize {
    const need = this.len + n;
    const cap = this.buf.byteLength;
    if (need > cap) {
      let c = cap << 1;
      if (c < need) c = need;
      const nb = new ArrayBuffer(c);
      memory.copy(changetype<usize>(nb), changetype<usize>(this.buf), this.len);
      this.buf = nb;
    }
    const p = changetype<usize>(this.buf) + <usize>this.len;
    this.len = need;
    return p;
  }

  byte(b: u8): void {
    store<u8>(this.grow(1), b);
  }

  raw(ptr: usize, n: i32): void {
    if (n <= 0) return;
    const p = this.grow(n);
    memory.copy(p, ptr, n);
  }

  /** Appends bytes verbatim (already-encoded CBOR, for example). */
  rawBytes(b: Uint8Array): void { this.raw(b.dataStart, b.length); }

  /** A head: major type 0-7 and its argument, in the shortest form. */
  head(major: u8, arg: u64): void {
    const m = major << 5;
    if (arg < 24) {
      this.byte(m | <u8>arg);
    } else if (arg <= 0xff) {
      const p = this.grow(2);
      store<u8>(p, m | 24);
      store<u8>(p, <u8>arg, 1);
    } else if (arg <= 0xffff) {
      const p = this.grow(3);
      store<u8>(p, m | 25);
      store<u16>(p, bswap<u16>(<u16>arg), 1);
    } else if (arg <= 0xffffffff) {
      const p = this.grow(5);
      store<u8>(p, m | 26);
      store<u32>(p, bswap<u32>(<u32>arg), 1);
    } else {
      const p = this.grow(9);
      store<u8>(p, m | 27);
      store<u64>(p, bswap<u64>(arg), 1);
    }
  }

  nil(): void { this.byte(0xf6); }
  bool(b: bool): void { this.byte(b ? 0xf5 : 0xf4); }

  int(i: i64): void {
    if (i >= 0) this.head(0, <u64>i);
    else this.head(1, ~<u64>i); // -1 - i
  }

  float(f: f64): void {
    if (isNaN(f)) {
      const p = this.grow(3);
      store<u8>(p, 0xf9);
      store<u8>(p, 0x7e, 1);
      store<u8>(p, 0x00, 2);
      return;
    }
    const s = <f32>f;
    if (<f64>s == f) {
      const h = halfExact(s);
      if (h >= 0) {
        const p = this.grow(3);
        store<u8>(p, 0xf9);
        store<u16>(p, bswap<u16>(<u16>h), 1);
      } else {
        const p = this.grow(5);
        store<u8>(p, 0xfa);
        store<u32>(p, bswap<u32>(reinterpret<u32>(s)), 1);
      }
      return;
    }
    const p = this.grow(9);
    store<u8>(p, 0xfb);
    store<u64>(p, bswap<u64>(reinterpret<u64>(f)), 1);
  }

  /** Text, as UTF-8 (an unpaired surrogate becomes U+FFFD). */
  str(s: string): void {
    const n = String.UTF8.byteLength(s, false);
    this.head(3, <u64>n);
    const p = this.grow(n);
    String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, p, false, String.UTF8.ErrorMode.REPLACE);
  }

  bytes(b: Uint8Array): void {
    this.head(2, <u64>b.length);
    this.raw(b.dataStart, b.length);
  }

  /** Any value, canonically. */
  value(v: Value): void {
    switch (v.kind) {
      case Kind.Null: this.nil(); break;
      case Kind.Bool: this.bool(v.asBool()); break;
      case Kind.Int: this.int(changetype<IntValue>(v).i); break;
      case Kind.Float: this.float(changetype<FloatValue>(v).f); break;
      case Kind.Str: this.str(changetype<StrValue>(v).s); break;
      case Kind.Bytes: this.bytes(changetype<BytesValue>(v).b); break;
      case Kind.List: {
        const l = changetype<ListValue>(v);
        const fs = l.packedFloats;
        if (fs !== null) {
          this.head(4, <u64>fs.length);
          for (let i = 0; i < fs.length; i++) this.float(unchecked(fs[i]));
          break;
        }
        const items = l.items;
        this.head(4, <u64>items.length);
        for (let i = 0; i < items.length; i++) this.value(items[i]);
        break;
      }
      case Kind.Dict: this.dict(changetype<DictValue>(v)); break;
    }
  }

  private dict(d: DictValue): void {
    const n = d.keys.length;
    this.head(5, <u64>n);
    if (n == 0) return;
    // Encode the keys once, then order them canonically.
    const keys = new Array<Uint8Array>(n);
    const order = new Array<i32>(n);
    let sorted = true;
    for (let i = 0; i < n; i++) {
      keys[i] = utf8(d.keys[i]);
      order[i] = i;
      if (i > 0 && compareKeys(keys[i - 1], keys[i]) > 0) sorted = false;
    }
    if (!sorted) sortKeys(keys, order);
    for (let j = 0; j < n; j++) {
      const i = order[j];
      const k = keys[i];
      this.head(3, <u64>k.length);
      this.raw(k.dataStart, k.length);
      this.value(d.vals[i]);
    }
  }
}

/** The canonical encoding of v. */
export function encode(v: Value): Uint8Array {
  const e = new Encoder();
  e.value(v);
  return e.toBytes();
}

/** The UTF-8 encoding of s (an unpaired surrogate becomes U+FFFD). */
export function utf8(s: string): Uint8Array {
  const n = String.UTF8.byteLength(s, false);
  const out = new Uint8Array(n);
  String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, out.dataStart, false, String.UTF8.ErrorMode.REPLACE);
  return out;
}

/** Canonical key order: shorter first, then bytewise. */
export function compareKeys(a: Uint8Array, b: Uint8Array): i32 {
  if (a.length != b.length) return a.length < b.length ? -1 : 1;
  return memory.compare(a.dataStart, b.dataStart, a.length);
}

// Insertion sort for small maps, a merge sort beyond.
function sortKeys(keys: Uint8Array[], order: i32[]): void {
  const n = order.length;
  if (n <= 16) {
    for (let i = 1; i < n; i++) {
      const x = order[i];
      let j = i - 1;
      while (j >= 0 && compareKeys(keys[order[j]], keys[x]) > 0) {
        order[j + 1] = order[j];
        j--;
      }
      order[j + 1] = x;
    }
    return;
  }
  const tmp = new Array<i32>(n);
  for (let width = 1; width < n; width <<= 1) {
    for (let lo = 0; lo < n; lo += width << 1) {
      const mid = min(lo + width, n), hi = min(lo + (width << 1), n);
      let i = lo, j = mid, k = lo;
      while (i < mid && j < hi) {
        if (compareKeys(keys[order[i]], keys[order[j]]) <= 0) tmp[k++] = order[i++];
        else tmp[k++] = order[j++];
      }
      while (i < mid) tmp[k++] = order[i++];
      while (j < hi) tmp[k++] = order[j++];
    }
    for (let i = 0; i < n; i++) order[i] = tmp[i];
  }
}

/** The float16 bits of s if it is exactly representable as one, else -1. */
export function halfExact(s: f32): i32 {
  const bits = reinterpret<u32>(s);
  const sign = <i32>((bits >>> 31) << 15);
  const e = <i32>((bits >>> 23) & 0xff);
  const m = bits & 0x7fffff;
  if (e == 0xff) return m == 0 ? sign | 0x7c00 : 0x7e00; // ±Inf; NaN
  if (e == 0) return m == 0 ? sign : -1; // ±0; float32 subnormals are below float16's range
  const x = e - 127;
  if (x > 15) return -1;
  if (x >= -14) {
    if ((m & 0x1fff) != 0) return -1;
    return sign | ((x + 15) << 10) | <i32>(m >>> 13);
  }
  if (x >= -24) {
    const full = m | 0x800000;
    const shift = <u32>(-1 - x);
    if ((full & ((1 << shift) - 1)) != 0) return -1;
    return sign | <i32>(full >>> shift);
  }
  return -1;
}

/** The value of float16 bits h. */
export function halfToFloat(h: u32): f64 {
  const sign: u64 = <u64>(h >>> 15) << 63;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e == 0) {
    const v = <f64>m * 5.9604644775390625e-8; // m · 2^-24, exact
    return sign != 0 ? -v : v;
  }
  if (e == 31) {
    if (m != 0) return NaN;
    return sign != 0 ? -Infinity : Infinity;
  }
  return reinterpret<f64>(sign | (<u64>(e - 15 + 1023) << 52) | (<u64>m << 42));
}

// ---------------------------------------------------------------------------
// Decoder

/** What {@link decode} returns: a value, or an error and a NULL value. */
export class Decoded {
  constructor(public value: Value, public error: string | null) {}
  get ok(): bool { return this.error === null; }
}

/**
 * Decodes one CBOR data item that must fill data exactly. Malformed input
 * (truncation, trailing bytes, tags, undefined and other simple values,
 * integers outside int64, non-text or duplicate map keys, invalid UTF-8,
 * nesting deeper than 64 levels, more than 2^24 elements) is an error, never
 * a trap. Definite and indefinite lengths and every float width are read.
 */
export function decode(data: Uint8Array): Decoded {
  return decodeAt(data.dataStart, data.length);
}

/** decode, for len bytes at ptr. */
export function decodeAt(ptr: usize, len: i32): Decoded {
  const d = new Decoder(ptr, len);
  const v = d.item(1);
  if (v !== null && d.error === null && d.pos < d.end) d.fail((<i32>(d.end - d.pos)).toString() + " trailing bytes");
  if (d.error !== null) return new Decoded(NULL, d.error);
  return new Decoded(v!, null);
}

/** A cursor over CBOR bytes; errors set error and return null. */
export class Decoder {
  pos: usize;
  end: usize;
  start: usize;
  error: string | null = null;

  constructor(ptr: usize, len: i32) {
    this.start = ptr;
    this.pos = ptr;
    this.end = ptr + <usize>(len < 0 ? 0 : len);
  }

  get offset(): i32 { return <i32>(this.pos - this.start); }
  get remaining(): u64 { return <u64>(this.end - this.pos); }

  fail(msg: string): Value | null {
    if (this.error === null) this.error = msg + " (at byte " + this.offset.toString() + ")";
    return null;
  }

  private truncated(): Value | null { return this.fail("unexpected end of data"); }

  // The head's argument; ai must be < 28.
  private arg(ai: u32): u64 {
    if (ai < 24) return <u64>ai;
    const w = <usize>1 << (ai - 24);
    if (this.remaining < <u64>w) {
      this.truncated();
      return 0;
    }
    let v: u64 = 0;
    const p = this.pos;
    if (w == 1) v = <u64>load<u8>(p);
    else if (w == 2) v = <u64>bswap<u16>(load<u16>(p));
    else if (w == 4) v = <u64>bswap<u32>(load<u32>(p));
    else v = bswap<u64>(load<u64>(p));
    this.pos += w;
    return v;
  }

  // A byte or text string whose head byte has been read.
  private text(major: u32, ai: u32): Value | null {
    if (ai == 31) return this.chunked(major);
    const n = this.arg(ai);
    if (this.error !== null) return null;
    if (n > this.remaining) return this.truncated();
    const p = this.pos;
    this.pos += <usize>n;
    if (major == 2) {
      const b = new Uint8Array(<i32>n);
      memory.copy(b.dataStart, p, <usize>n);
      return new BytesValue(b);
    }
    if (!validUTF8(p, <usize>n)) {
      this.pos = p;
      return this.fail("invalid UTF-8 in text string");
    }
    return new StrValue(String.UTF8.decodeUnsafe(p, <usize>n, false));
  }

  // An indefinite-length byte or text string: definite chunks of the same
  // major type until a break.
  private chunked(major: u32): Value | null {
    const parts = new Array<Uint8Array>();
    let total = 0;
    while (true) {
      if (this.pos >= this.end) return this.truncated();
      const b = <u32>load<u8>(this.pos);
      if (b == 0xff) {
        this.pos++;
        break;
      }
      if ((b >>> 5) != major || (b & 31) == 31 || (b & 31) >= 28) return this.fail("bad chunk in indefinite-length string");
      this.pos++;
      const n = this.arg(b & 31);
      if (this.error !== null) return null;
      if (n > this.remaining) return this.truncated();
      if (major == 3 && !validUTF8(this.pos, <usize>n)) return this.fail("invalid UTF-8 in text string");
      const c = new Uint8Array(<i32>n);
      memory.copy(c.dataStart, this.pos, <usize>n);
      this.pos += <usize>n;
      parts.push(c);
      total += <i32>n;
    }
    const out = new Uint8Array(total);
    let o = 0;
    for (let i = 0; i < parts.length; i++) {
      memory.copy(out.dataStart + o, parts[i].dataStart, parts[i].length);
      o += parts[i].length;
    }
    if (major == 2) return new BytesValue(out);
    return new StrValue(String.UTF8.decodeUnsafe(out.dataStart, total, false));
  }

  /** One data item at nesting level `level` (the top is 1). */
  item(level: i32): Value | null {
    if (this.pos >= this.end) return this.truncated();
    const ib = <u32>load<u8>(this.pos);
    const major = ib >>> 5, ai = ib & 31;
    if (ai >= 28 && ai <= 30) return this.fail("malformed head byte 0x" + hexByte(ib));
    if (ai == 31 && (major == 0 || major == 1 || major == 6)) return this.fail("malformed head byte 0x" + hexByte(ib));
    this.pos++;
    switch (major) {
      case 0: {
        const n = this.arg(ai);
        if (this.error !== null) return null;
        if (n > <u64>i64.MAX_VALUE) return this.fail("integer " + n.toString() + " overflows int64");
        return new IntValue(<i64>n);
      }
      case 1: {
        const n = this.arg(ai);
        if (this.error !== null) return null;
        if (n > <u64>i64.MAX_VALUE) return this.fail("integer -1-" + n.toString() + " overflows int64");
        return new IntValue(-1 - <i64>n);
      }
      case 2:
      case 3:
        return this.text(major, ai);
      case 4:
      case 5: {
        if (level > MAX_NESTED_LEVELS) return this.fail("nested deeper than " + MAX_NESTED_LEVELS.toString() + " levels");
        const indefinite = ai == 31;
        let n: u64 = 0;
        if (!indefinite) {
          n = this.arg(ai);
          if (this.error !== null) return null;
          if (n > MAX_ELEMENTS) return this.fail((major == 4 ? "array" : "map") + " of " + n.toString() + " elements exceeds the limit of " + MAX_ELEMENTS.toString());
          // Every element takes at least one byte: refuse impossible lengths before allocating.
          if (n * (major == 4 ? 1 : 2) > this.remaining) return this.truncated();
        }
        return major == 4 ? this.array(level, indefinite, <i32>n) : this.map(level, indefinite, <i32>n);
      }
      case 6:
        return this.fail("tags are not allowed (tag head 0x" + hexByte(ib) + ")");
      case 7: {
        switch (ai) {
          case 20: return FALSE;
          case 21: return TRUE;
          case 22: return NULL;
          case 23: return this.fail("undefined is not allowed");
          case 25: {
            const h = this.arg(ai);
            if (this.error !== null) return null;
            return new FloatValue(halfToFloat(<u32>h));
          }
          case 26: {
            const b = this.arg(ai);
            if (this.error !== null) return null;
            return new FloatValue(<f64>reinterpret<f32>(<u32>b));
          }
          case 27: {
            const b = this.arg(ai);
            if (this.error !== null) return null;
            return new FloatValue(reinterpret<f64>(b));
          }
          case 31:
            this.pos--;
            return this.fail("unexpected break");
        }
        return this.fail("simple value " + (ai == 24 ? "(one-byte)" : ai.toString()) + " is not allowed");
      }
    }
    return this.fail("unreachable");
  }

  private atBreak(): bool {
    if (this.pos < this.end && load<u8>(this.pos) == 0xff) {
      this.pos++;
      return true;
    }
    return false;
  }

  // A float, if the next item is one (advancing past it); else NaN with
  // the position unchanged and isFloat false.
  private isFloat: bool = false;
  private nextFloat(): f64 {
    this.isFloat = false;
    const p = this.pos;
    if (p >= this.end) return NaN;
    const ib = load<u8>(p);
    const left = this.end - p;
    if (ib == 0xfb && left >= 9) {
      this.pos = p + 9;
      this.isFloat = true;
      return reinterpret<f64>(bswap<u64>(load<u64>(p, 1)));
    }
    if (ib == 0xfa && left >= 5) {
      this.pos = p + 5;
      this.isFloat = true;
      return <f64>reinterpret<f32>(bswap<u32>(load<u32>(p, 1)));
    }
    if (ib == 0xf9 && left >= 3) {
      this.pos = p + 3;
      this.isFloat = true;
      return halfToFloat(<u32>bswap<u16>(load<u16>(p, 1)));
    }
    return NaN;
  }

  private array(level: i32, indefinite: bool, n: i32): Value | null {
    // A definite list of floats only is decoded packed.
    let start = 0;
    let packed: StaticArray<f64> | null = null;
    if (!indefinite && n > 0) {
      const fs = new StaticArray<f64>(n);
      for (; start < n; start++) {
        const f = this.nextFloat();
        if (!this.isFloat) break;
        unchecked(fs[start] = f);
      }
      if (start == n) return ListValue.packed(fs);
      packed = fs;
    }
    const items = indefinite ? new Array<Value>() : new Array<Value>(n);
    if (packed !== null) {
      for (let i = 0; i < start; i++) unchecked(items[i] = new FloatValue(unchecked(packed[i])));
    }
    for (let i = start; indefinite || i < n; i++) {
      if (indefinite) {
        if (this.atBreak()) break;
        if (i >= <i32>MAX_ELEMENTS) return this.fail("array exceeds the limit of " + MAX_ELEMENTS.toString() + " elements");
      }
      const v = this.item(level + 1);
      if (v === null) return null;
      if (indefinite) items.push(v);
      else unchecked(items[i] = v);
    }
    return new ListValue(items);
  }

  private map(level: i32, indefinite: bool, n: i32): Value | null {
    const d = new DictValue();
    let seen: Set<string> | null = null;
    for (let i = 0; indefinite || i < n; i++) {
      if (indefinite) {
        if (this.atBreak()) break;
        if (i >= <i32>MAX_ELEMENTS) return this.fail("map exceeds the limit of " + MAX_ELEMENTS.toString() + " pairs");
      }
      if (this.pos >= this.end) return this.truncated();
      const kb = <u32>load<u8>(this.pos);
      if ((kb >>> 5) != 3) return this.fail("map key is not text");
      const kv = this.item(level + 1);
      if (kv === null) return null;
      const key = changetype<StrValue>(kv).s;
      // Duplicate keys: a linear scan for small maps, a set beyond.
      if (i < 16) {
        for (let j = 0; j < i; j++) if (unchecked(d.keys[j]) == key) return this.fail("duplicate map key " + key);
      } else {
        if (seen === null) {
          seen = new Set<string>();
          for (let j = 0; j < i; j++) seen.add(unchecked(d.keys[j]));
        }
        if (seen.has(key)) return this.fail("duplicate map key " + key);
        seen.add(key);
      }
      const v = this.item(level + 1);
      if (v === null) return null;
      d.keys.push(key);
      d.vals.push(v);
    }
    return d;
  }
}

function hexByte(b: u32): string {
  const h = "0123456789abcdef";
  return h.charAt((b >>> 4) & 15) + h.charAt(b & 15);
}

/** Reports whether the n bytes at p are well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF). */
export function validUTF8(p: usize, n: usize): bool {
  const end = p + n;
  while (p < end) {
    const c = <u32>load<u8>(p);
    if (c < 0x80) {
      p++;
      continue;
    }
    let need: usize, min: u32, cp: u32;
    if ((c & 0xe0) == 0xc0) {
      need = 1; min = 0x80; cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      need = 2; min = 0x800; cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      need = 3; min = 0x10000; cp = c & 0x07;
    } else {
      return false;
    }
    if (end - p <= need) return false;
    for (let i: usize = 1; i <= need; i++) {
      const cc = <u32>load<u8>(p + i);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    p += need + 1;
  }
  return true;
}
