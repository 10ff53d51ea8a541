//! The ABI's data model and its CBOR encoding (docs/abi.md §4).
//!
//! [`encode`] always writes the canonical encoding: definite lengths,
//! shortest integer and length heads, the shortest of float16, float32 and
//! float64 that holds a float exactly (every NaN as `f97e00`), and map keys
//! sorted shorter first, then bytewise.
//!
//! [`decode`] reads any well-formed CBOR inside the data model, canonical or
//! not (non-shortest heads, indefinite lengths), and refuses everything
//! else with a [`DecodeError`]: tags, `undefined` and other simple values,
//! integers outside int64, non-text or duplicate map keys, invalid UTF-8,
//! truncated input, trailing bytes, more than [`MAX_DEPTH`] levels of
//! nesting or more than [`MAX_ELEMENTS`] elements in one array or map. It
//! never panics and never allocates more than the input can justify.

use std::collections::BTreeMap;
use std::fmt;

/// The deepest nesting of arrays and maps [`decode`] accepts.
pub const MAX_DEPTH: usize = 64;

/// The most elements (or key/value pairs) [`decode`] accepts in one array or
/// map.
pub const MAX_ELEMENTS: u64 = 1 << 24;

/// A value in the ABI's data model.
///
/// Maps have text keys; a `BTreeMap` keeps them unique, and [`encode`]
/// writes them in canonical order (which is not `BTreeMap`'s order: shorter
/// keys come first). `Float` and `Int` are distinct: `5` and `5.0` are
/// different values.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer in the int64 range.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// UTF-8 text.
    Text(String),
    /// A byte string.
    Bytes(Vec<u8>),
    /// An array.
    Array(Vec<Value>),
    /// A map with text keys.
    Map(BTreeMap<String, Value>),
}

impl Value {
    /// A short description for error messages: `int 5`, `str "x"`,
    /// `list (3)`...
    pub fn describe(&self) -> String {
        match self {
            Value::Null => "null".to_string(),
            Value::Bool(b) => format!("bool {}", b),
            Value::Int(i) => format!("int {}", i),
            Value::Float(f) => format!("float {}", f),
            Value::Text(s) => {
                let mut t: String = s.chars().take(40).collect();
                if t.len() < s.len() {
                    t.push('…');
                }
                format!("str {:?}", t)
            }
            Value::Bytes(b) => format!("bytes ({})", b.len()),
            Value::Array(a) => format!("list ({})", a.len()),
            Value::Map(m) => format!("dict ({})", m.len()),
        }
    }

    /// The value's encoding (canonical).
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Returns the map entry `key`, if `self` is a map that has one.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(m) => m.get(key),
            _ => None,
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Text(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Text(s)
    }
}

impl From<Vec<Value>> for Value {
    fn from(a: Vec<Value>) -> Value {
        Value::Array(a)
    }
}

impl From<BTreeMap<String, Value>> for Value {
    fn from(m: BTreeMap<String, Value>) -> Value {
        Value::Map(m)
    }
}

// ---------------------------------------------------------------------------
// Encoding

const MAJOR_UINT: u8 = 0;
const MAJOR_NINT: u8 = 1;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const MAJOR_TAG: u8 = 6;
const MAJOR_SIMPLE: u8 = 7;

/// Returns the canonical encoding of `v`.
pub fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(&mut out, v);
    out
}

/// Appends the canonical encoding of `v` to `out`.
pub fn encode_into(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(0xf6),
        Value::Bool(false) => out.push(0xf4),
        Value::Bool(true) => out.push(0xf5),
        Value::Int(i) => write_int(out, *i),
        Value::Float(f) => write_float(out, *f),
        Value::Text(s) => write_text(out, s),
        Value::Bytes(b) => {
            write_head(out, MAJOR_BYTES, b.len() as u64);
            out.extend_from_slice(b);
        }
        Value::Array(a) => {
            write_head(out, MAJOR_ARRAY, a.len() as u64);
            for e in a {
                encode_into(out, e);
            }
        }
        Value::Map(m) => {
            write_head(out, MAJOR_MAP, m.len() as u64);
            for (k, e) in sorted_entries(m) {
                write_text(out, k);
                encode_into(out, e);
            }
        }
    }
}

/// Returns the entries of `m` in canonical key order: shorter keys first,
/// then bytewise (a `BTreeMap` is already bytewise, and the sort is stable).
pub(crate) fn sorted_entries(m: &BTreeMap<String, Value>) -> Vec<(&String, &Value)> {
    let mut es: Vec<(&String, &Value)> = m.iter().collect();
    es.sort_by_key(|(k, _)| k.len());
    es
}

/// Compares two text keys in canonical order.
pub fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

/// Appends a head (major type and argument) in its shortest form.
pub(crate) fn write_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= 0xff {
        out.push(m | 24);
        out.push(n as u8);
    } else if n <= 0xffff {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= 0xffff_ffff {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

pub(crate) fn write_int(out: &mut Vec<u8>, i: i64) {
    if i >= 0 {
        write_head(out, MAJOR_UINT, i as u64);
    } else {
        // -1 - i, computed without overflow: !i == -1 - i in two's complement.
        write_head(out, MAJOR_NINT, !(i as u64));
    }
}

pub(crate) fn write_text(out: &mut Vec<u8>, s: &str) {
    write_head(out, MAJOR_TEXT, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

pub(crate) fn write_float(out: &mut Vec<u8>, f: f64) {
    if f.is_nan() {
        out.extend_from_slice(&[0xf9, 0x7e, 0x00]);
        return;
    }
    let g = f as f32;
    if (g as f64) != f {
        out.push(0xfb);
        out.extend_from_slice(&f.to_bits().to_be_bytes());
        return;
    }
    match f32_to_f16_exact(g) {
        Some(h) => {
            out.push(0xf9);
            out.extend_from_slice(&h.to_be_bytes());
        }
        None => {
            out.push(0xfa);
            out.extend_from_slice(&g.to_bits().to_be_bytes());
        }
    }
}

/// Returns the float16 bits of `f` if float16 represents it exactly (`f`
/// is not NaN).
pub(crate) fn f32_to_f16_exact(f: f32) -> Option<u16> {
    let bits = f.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let mant = bits & 0x7f_ffff;
    if exp == 0xff {
        // Infinity (NaN never reaches here).
        return if mant == 0 { Some(sign | 0x7c00) } else { None };
    }
    if exp == 0 {
        // Zero; float32 subnormals are far below float16's range.
        return if mant == 0 { Some(sign) } else { None };
    }
    let e = exp - 127;
    if (-14..=15).contains(&e) {
        // A float16 normal: the low 13 mantissa bits must be zero.
        if mant & 0x1fff != 0 {
            return None;
        }
        return Some(sign | (((e + 15) as u16) << 10) | (mant >> 13) as u16);
    }
    if (-24..=-15).contains(&e) {
        // A float16 subnormal m·2^-24, m < 1024.
        let sig = mant | 0x80_0000; // 1.mant · 2^23
        let shift = (-(e + 1)) as u32; // 14..=23
        if sig & ((1u32 << shift) - 1) != 0 {
            return None;
        }
        return Some(sign | (sig >> shift) as u16);
    }
    None
}

/// Converts float16 bits to an f64 (exactly).
pub(crate) fn f16_to_f64(h: u16) -> f64 {
    let sign = ((h as u32) & 0x8000) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let mant = (h & 0x3ff) as u32;
    let f = match (exp, mant) {
        (0, 0) => f32::from_bits(sign),
        (0, m) => {
            // m · 2^-24, exact in f32.
            let v = m as f32 * f32::from_bits((127 - 24) << 23);
            if sign != 0 {
                -v
            } else {
                v
            }
        }
        (31, 0) => f32::from_bits(sign | 0x7f80_0000),
        (31, _) => f32::NAN,
        (e, m) => f32::from_bits(sign | ((e + 127 - 15) << 23) | (m << 13)),
    };
    f as f64
}

// ---------------------------------------------------------------------------
// Decoding

/// Why [`decode`] refused its input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// The offset in the input where the problem was found.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cbor: {} (at byte {})", self.message, self.offset)
    }
}

impl std::error::Error for DecodeError {}

/// Decodes exactly one value from `b`: trailing bytes are an error.
pub fn decode(b: &[u8]) -> Result<Value, DecodeError> {
    decode_nested(b, 0)
}

/// Decodes a value found `depth` levels deep in an envelope (a request's
/// values are two levels down), so that the value itself may still nest
/// [`MAX_DEPTH`] levels.
pub(crate) fn decode_nested(b: &[u8], depth: usize) -> Result<Value, DecodeError> {
    let mut d = Decoder { b, pos: 0, max_depth: MAX_DEPTH + depth };
    let v = d.value(0)?;
    if d.pos != b.len() {
        return Err(d.err(format!("{} extraneous bytes after the value", b.len() - d.pos)));
    }
    Ok(v)
}

/// Decodes one value from the start of `b`, returning it and the number of
/// bytes it used.
pub fn decode_prefix(b: &[u8]) -> Result<(Value, usize), DecodeError> {
    let mut d = Decoder { b, pos: 0, max_depth: MAX_DEPTH };
    let v = d.value(0)?;
    Ok((v, d.pos))
}

struct Decoder<'a> {
    b: &'a [u8],
    pos: usize,
    max_depth: usize,
}

/// The argument of a head: a number, or "indefinite length".
enum Arg {
    Num(u64),
    Indefinite,
}

impl<'a> Decoder<'a> {
    fn err(&self, message: String) -> DecodeError {
        DecodeError { offset: self.pos, message }
    }

    fn eof(&self) -> DecodeError {
        self.err("unexpected EOF".to_string())
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        match self.b.get(self.pos) {
            Some(&c) => {
                self.pos += 1;
                Ok(c)
            }
            None => Err(self.eof()),
        }
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], DecodeError> {
        let rest = self.b.len() - self.pos;
        if n > rest as u64 {
            return Err(self.eof());
        }
        let s = &self.b[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn uint(&mut self, n: usize) -> Result<u64, DecodeError> {
        let s = self.take(n as u64)?;
        Ok(s.iter().fold(0u64, |acc, &c| (acc << 8) | c as u64))
    }

    /// Reads the argument that follows initial byte `ib`.
    fn arg(&mut self, ib: u8) -> Result<Arg, DecodeError> {
        match ib & 31 {
            ai @ 0..=23 => Ok(Arg::Num(ai as u64)),
            24 => self.uint(1).map(Arg::Num),
            25 => self.uint(2).map(Arg::Num),
            26 => self.uint(4).map(Arg::Num),
            27 => self.uint(8).map(Arg::Num),
            31 => Ok(Arg::Indefinite),
            ai => {
                self.pos -= 1;
                Err(self.err(format!("reserved additional information {} in initial byte 0x{:02x}", ai, ib)))
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        let start = self.pos;
        let ib = self.byte()?;
        let major = ib >> 5;
        if major == MAJOR_SIMPLE {
            return self.simple(ib, start);
        }
        let arg = self.arg(ib)?;
        match major {
            MAJOR_UINT | MAJOR_NINT => {
                let n = match arg {
                    Arg::Num(n) => n,
                    Arg::Indefinite => return Err(self.at(start, "indefinite-length integer")),
                };
                if n > i64::MAX as u64 {
                    return Err(self.at(start, "integer overflows int64"));
                }
                Ok(Value::Int(if major == MAJOR_UINT { n as i64 } else { -1 - n as i64 }))
            }
            MAJOR_BYTES => Ok(Value::Bytes(self.string(major, arg)?)),
            MAJOR_TEXT => {
                let b = self.string(major, arg)?;
                match String::from_utf8(b) {
                    Ok(s) => Ok(Value::Text(s)),
                    Err(_) => Err(self.at(start, "text is not valid UTF-8")),
                }
            }
            MAJOR_ARRAY => {
                if depth >= self.max_depth {
                    return Err(self.at(start, &format!("more than {} levels of nesting", MAX_DEPTH)));
                }
                let mut a = Vec::new();
                match arg {
                    Arg::Num(n) => {
                        self.check_count(n, start)?;
                        a.reserve(n.min((self.b.len() - self.pos) as u64) as usize);
                        for _ in 0..n {
                            a.push(self.value(depth + 1)?);
                        }
                    }
                    Arg::Indefinite => {
                        while !self.at_break()? {
                            self.check_count(a.len() as u64 + 1, start)?;
                            a.push(self.value(depth + 1)?);
                        }
                    }
                }
                Ok(Value::Array(a))
            }
            MAJOR_MAP => {
                if depth >= self.max_depth {
                    return Err(self.at(start, &format!("more than {} levels of nesting", MAX_DEPTH)));
                }
                let mut m = BTreeMap::new();
                match arg {
                    Arg::Num(n) => {
                        self.check_count(n, start)?;
                        for _ in 0..n {
                            self.entry(&mut m, depth)?;
                        }
                    }
                    Arg::Indefinite => {
                        while !self.at_break()? {
                            self.check_count(m.len() as u64 + 1, start)?;
                            self.entry(&mut m, depth)?;
                        }
                    }
                }
                Ok(Value::Map(m))
            }
            MAJOR_TAG => Err(self.at(start, "tags are not in the data model")),
            _ => unreachable!(),
        }
    }

    fn at(&self, offset: usize, message: &str) -> DecodeError {
        DecodeError { offset, message: message.to_string() }
    }

    fn check_count(&self, n: u64, start: usize) -> Result<(), DecodeError> {
        if n > MAX_ELEMENTS {
            return Err(self.at(start, &format!("more than {} elements", MAX_ELEMENTS)));
        }
        Ok(())
    }

    /// Consumes a break byte (0xff) if one is next.
    fn at_break(&mut self) -> Result<bool, DecodeError> {
        match self.b.get(self.pos) {
            Some(0xff) => {
                self.pos += 1;
                Ok(true)
            }
            Some(_) => Ok(false),
            None => Err(self.eof()),
        }
    }

    fn entry(&mut self, m: &mut BTreeMap<String, Value>, depth: usize) -> Result<(), DecodeError> {
        let kpos = self.pos;
        match self.b.get(self.pos) {
            Some(&c) if c >> 5 == MAJOR_TEXT => {}
            Some(_) => return Err(self.at(kpos, "cannot unmarshal a map key that is not text")),
            None => return Err(self.eof()),
        }
        let k = match self.value(depth + 1)? {
            Value::Text(k) => k,
            _ => unreachable!(),
        };
        let v = self.value(depth + 1)?;
        if m.contains_key(&k) {
            return Err(self.at(kpos, &format!("duplicate map key {:?}", k)));
        }
        m.insert(k, v);
        Ok(())
    }

    /// Reads the content of a byte or text string (definite, or indefinite
    /// as a sequence of definite chunks of the same major type).
    fn string(&mut self, major: u8, arg: Arg) -> Result<Vec<u8>, DecodeError> {
        match arg {
            Arg::Num(n) => Ok(self.take(n)?.to_vec()),
            Arg::Indefinite => {
                let mut out = Vec::new();
                while !self.at_break()? {
                    let cpos = self.pos;
                    let ib = self.byte()?;
                    if ib >> 5 != major || ib & 31 == 31 {
                        return Err(self.at(cpos, "bad chunk in an indefinite-length string"));
                    }
                    let n = match self.arg(ib)? {
                        Arg::Num(n) => n,
                        Arg::Indefinite => unreachable!(),
                    };
                    let chunk = self.take(n)?;
                    if major == MAJOR_TEXT && std::str::from_utf8(chunk).is_err() {
                        return Err(self.at(cpos, "text chunk is not valid UTF-8"));
                    }
                    out.extend_from_slice(chunk);
                }
                Ok(out)
            }
        }
    }

    fn simple(&mut self, ib: u8, start: usize) -> Result<Value, DecodeError> {
        match ib & 31 {
            20 => Ok(Value::Bool(false)),
            21 => Ok(Value::Bool(true)),
            22 => Ok(Value::Null),
            23 => Err(self.at(start, "simple value undefined is not in the data model")),
            24 => {
                let n = self.byte()?;
                Err(self.at(start, &format!("simple value {} is not in the data model", n)))
            }
            25 => Ok(Value::Float(f16_to_f64(self.uint(2)? as u16))),
            26 => Ok(Value::Float(f32::from_bits(self.uint(4)? as u32) as f64)),
            27 => Ok(Value::Float(f64::from_bits(self.uint(8)?))),
            31 => Err(self.at(start, "unexpected break")),
            n @ 28..=30 => Err(self.at(start, &format!("reserved additional information {} in initial byte 0x{:02x}", n, ib))),
            n => Err(self.at(start, &format!("simple value {} is not in the data model", n))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_exhaustive_round_trip() {
        // Every non-NaN float16 converts to f64 and back to the same bits.
        for h in 0..=u16::MAX {
            let f = f16_to_f64(h);
            if f.is_nan() {
                assert!(h & 0x7c00 == 0x7c00 && h & 0x3ff != 0);
                continue;
            }
            assert_eq!(f32_to_f16_exact(f as f32), Some(h), "h = {:#06x}, f = {}", h, f);
        }
    }

    #[test]
    fn f16_inexact() {
        for f in [0.1f32, 65520.0, 1.0 + f32::EPSILON, 1e-8, 3.0e-8, f32::MIN_POSITIVE, 1e38] {
            assert_eq!(f32_to_f16_exact(f), None, "{}", f);
        }
        assert_eq!(f32_to_f16_exact(65504.0), Some(0x7bff));
        assert_eq!(f32_to_f16_exact(5.960_464_5e-8), Some(0x0001));
        assert_eq!(f32_to_f16_exact(-2.0), Some(0xc000));
    }
}
