//! Conversions between Rust types and [`Value`]s, and the ABI type each
//! Rust type declares in the manifest (docs/abi.md §5).
//!
//! | Rust | ABI type |
//! |---|---|
//! | `i64`, `i32`, `i16`, `i8`, `u64`, `u32`, `u16`, `usize`, `isize` | `int` |
//! | `f64`, `f32` | `float` |
//! | `bool` | `bool` |
//! | `String` (`&str` as an output) | `str` |
//! | `Vec<u8>`, [`Bytes`] | `bytes` |
//! | `Vec<T>` (any other `T`) | `list[T]` (`list` for `Vec<Value>`) |
//! | `BTreeMap<String, T>`, `HashMap<String, T>` | `dict[T]` (`dict` for `T = Value`) |
//! | `Option<T>` | `optional[T]`; as an input also *optional*: it may be left unbound |
//! | `()` | `null` |
//! | [`Value`] | `any` |
//!
//! `Vec<u8>` is always a byte string, never a list of numbers; `u8` on its
//! own is not a supported type, so there is no ambiguity (use `Vec<i64>` for
//! a list of small integers).
//!
//! Conversions from values are strict, except that a float accepts an int:
//! the host has already coerced each input to its declared type with the
//! ABI's lax rules (`"7"` into an `int`, `1` into a `bool`, ...) unless the
//! pipeline node sets `validate_io: false`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::cbor::Value;

/// A Rust type's ABI type, as the manifest spells it.
pub trait AbiType {
    /// The type expression, e.g. `list[float]`.
    fn abi_type() -> String;
}

/// A type a knot can take as an input.
pub trait FromValue: AbiType + Sized {
    /// Whether an input of this type may be left unbound (true for
    /// `Option<T>`).
    const OPTIONAL: bool = false;

    /// Converts a value, or says why it does not fit.
    fn from_value(v: Value) -> Result<Self, ConvertError>;

    /// The value of an unbound input: `None` means it is required.
    fn missing() -> Option<Self> {
        None
    }
}

/// A type a knot can return.
pub trait IntoValue: AbiType {
    /// Converts `self` into a value.
    fn into_value(self) -> Value;
}

/// A value that does not fit a Rust type. As a knot's outcome (through `?`,
/// or when the PDK binds an input) it is an err of type `InputError`
/// (docs/abi.md §2.3: `TypeError` is the host's own).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvertError {
    /// Where in the value the problem is, e.g. `[2]` or `.name[0]`; empty at
    /// the top level.
    pub path: String,
    /// The ABI type wanted there.
    pub want: String,
    /// A description of what was found, e.g. `str "x"`.
    pub got: String,
    /// Why, when the kinds match but the value does not fit (out of range).
    pub why: Option<String>,
}

impl ConvertError {
    /// A mismatch between the type `T` and the value `v`.
    pub fn new<T: AbiType>(v: &Value) -> ConvertError {
        ConvertError { path: String::new(), want: T::abi_type(), got: v.describe(), why: None }
    }

    /// Adds `why` to the error.
    pub fn because(mut self, why: &str) -> ConvertError {
        self.why = Some(why.to_string());
        self
    }

    /// Prefixes the path (used by containers for their elements).
    pub fn within(mut self, step: &str) -> ConvertError {
        self.path.insert_str(0, step);
        self
    }
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "at {}: ", self.path)?;
        }
        write!(f, "want {}, got {}", self.want, self.got)?;
        if let Some(why) = &self.why {
            write!(f, " ({})", why)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConvertError {}

/// The former name of [`ConvertError`].
#[deprecated(since = "0.1.0", note = "renamed ConvertError (its err type is InputError, not TypeError)")]
pub type TypeError = ConvertError;

// --- any ------------------------------------------------------------------

impl AbiType for Value {
    fn abi_type() -> String {
        "any".to_string()
    }
}

impl FromValue for Value {
    fn from_value(v: Value) -> Result<Self, ConvertError> {
        Ok(v)
    }
}

impl IntoValue for Value {
    fn into_value(self) -> Value {
        self
    }
}

// --- null -----------------------------------------------------------------

impl AbiType for () {
    fn abi_type() -> String {
        "null".to_string()
    }
}

impl FromValue for () {
    fn from_value(v: Value) -> Result<Self, ConvertError> {
        match v {
            Value::Null => Ok(()),
            v => Err(ConvertError::new::<()>(&v)),
        }
    }
}

impl IntoValue for () {
    fn into_value(self) -> Value {
        Value::Null
    }
}

// --- bool -----------------------------------------------------------------

impl AbiType for bool {
    fn abi_type() -> String {
        "bool".to_string()
    }
}

impl FromValue for bool {
    fn from_value(v: Value) -> Result<Self, ConvertError> {
        match v {
            Value::Bool(b) => Ok(b),
            v => Err(ConvertError::new::<bool>(&v)),
        }
    }
}

impl IntoValue for bool {
    fn into_value(self) -> Value {
        Value::Bool(self)
    }
}

// --- int ------------------------------------------------------------------

macro_rules! int_type {
    ($($t:ty),*) => {$(
        impl AbiType for $t {
            fn abi_type() -> String {
                "int".to_string()
            }
        }

        impl FromValue for $t {
            fn from_value(v: Value) -> Result<Self, ConvertError> {
                match v {
                    Value::Int(i) => <$t>::try_from(i).map_err(|_| {
                        ConvertError::new::<$t>(&v).because(concat!("out of range for ", stringify!($t)))
                    }),
                    v => Err(ConvertError::new::<$t>(&v)),
                }
            }
        }

        impl IntoValue for $t {
            fn into_value(self) -> Value {
                match i64::try_from(self) {
                    Ok(i) => Value::Int(i),
                    // Only u64 and usize values above i64::MAX: the data
                    // model has no such integers, so they become floats.
                    Err(_) => Value::Float(self as f64),
                }
            }
        }
    )*};
}

int_type!(i64, i32, i16, i8, u64, u32, u16, usize, isize);

// --- float ----------------------------------------------------------------

impl AbiType for f64 {
    fn abi_type() -> String {
        "float".to_string()
    }
}

impl FromValue for f64 {
    fn from_value(v: Value) -> Result<Self, ConvertError> {
        match v {
            Value::Float(f) => Ok(f),
            Value::Int(i) => Ok(i as f64),
            v => Err(ConvertError::new::<f64>(&v)),
        }
    }
}

impl IntoValue for f64 {
    fn into_value(self) -> Value {
        Value::Float(self)
    }
}

impl AbiType for f32 {
    fn abi_type() -> String {
        "float".to_string()
    }
}

impl FromValue for f32 {
    fn from_value(v: Value) -> Result<Self, ConvertError> {
        f64::from_value(v).map(|f| f as f32)
    }
}

impl IntoValue for f32 {
    fn into_value(self) -> Value {
        Value::Float(self as f64)
    }
}

// --- str ------------------------------------------------------------------

impl AbiType for String {
    fn abi_type() -> String {
        "str".to_string()
    }
}

impl FromValue for String {
    fn from_value(v: Value) -> Result<Self, ConvertError> {
        match v {
            Value::Text(s) => Ok(s),
            v => Err(ConvertError::new::<String>(&v)),
        }
    }
}

impl IntoValue for String {
    fn into_value(self) -> Value {
        Value::Text(self)
    }
}

impl AbiType for &str {
    fn abi_type() -> String {
        "str".to_string()
    }
}

impl IntoValue for &str {
    fn into_value(self) -> Value {
        Value::Text(self.to_string())
    }
}

// --- bytes ----------------------------------------------------------------

/// A byte string, for when `Vec<u8>` reads ambiguously. `Vec<u8>` itself is
/// a byte string too.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(pub Vec<u8>);

impl AbiType for Vec<u8> {
    fn abi_type() -> String {
        "bytes".to_string()
    }
}

impl FromValue for Vec<u8> {
    fn from_value(v: Value) -> Result<Self, ConvertError> {
        match v {
            Value::Bytes(b) => Ok(b),
            v => Err(ConvertError::new::<Vec<u8>>(&v)),
        }
    }
}

impl IntoValue for Vec<u8> {
    fn into_value(self) -> Value {
        Value::Bytes(self)
    }
}

impl AbiType for Bytes {
    fn abi_type() -> String {
        "bytes".to_string()
    }
}

impl FromValue for Bytes {
    fn from_value(v: Value) -> Result<Self, ConvertError> {
        Vec::<u8>::from_value(v).map(Bytes)
    }
}

impl IntoValue for Bytes {
    fn into_value(self) -> Value {
        Value::Bytes(self.0)
    }
}

impl AbiType for &[u8] {
    fn abi_type() -> String {
        "bytes".to_string()
    }
}

impl IntoValue for &[u8] {
    fn into_value(self) -> Value {
        Value::Bytes(self.to_vec())
    }
}

// --- list -----------------------------------------------------------------

fn generic(name: &str, elem: String) -> String {
    if elem == "any" {
        name.to_string()
    } else {
        format!("{}[{}]", name, elem)
    }
}

// u8 implements none of these traits, so these impls do not overlap the
// Vec<u8> ones above.
impl<T: AbiType> AbiType for Vec<T> {
    fn abi_type() -> String {
        generic("list", T::abi_type())
    }
}

impl<T: FromValue> FromValue for Vec<T> {
    fn from_value(v: Value) -> Result<Self, ConvertError> {
        match v {
            Value::Array(a) => {
                let mut out = Vec::with_capacity(a.len());
                for (i, e) in a.into_iter().enumerate() {
                    out.push(T::from_value(e).map_err(|err| err.within(&format!("[{}]", i)))?);
                }
                Ok(out)
            }
            v => Err(ConvertError::new::<Vec<T>>(&v)),
        }
    }
}

impl<T: IntoValue> IntoValue for Vec<T> {
    fn into_value(self) -> Value {
        Value::Array(self.into_iter().map(IntoValue::into_value).collect())
    }
}

// --- dict -----------------------------------------------------------------

impl<T: AbiType> AbiType for BTreeMap<String, T> {
    fn abi_type() -> String {
        generic("dict", T::abi_type())
    }
}

impl<T: FromValue> FromValue for BTreeMap<String, T> {
    fn from_value(v: Value) -> Result<Self, ConvertError> {
        match v {
            Value::Map(m) => {
                let mut out = BTreeMap::new();
                for (k, e) in m {
                    let e = T::from_value(e).map_err(|err| err.within(&format!(".{}", k)))?;
                    out.insert(k, e);
                }
                Ok(out)
            }
            v => Err(ConvertError::new::<Self>(&v)),
        }
    }
}

impl<T: IntoValue> IntoValue for BTreeMap<String, T> {
    fn into_value(self) -> Value {
        Value::Map(self.into_iter().map(|(k, v)| (k, v.into_value())).collect())
    }
}

impl<T: AbiType, S> AbiType for HashMap<String, T, S> {
    fn abi_type() -> String {
        generic("dict", T::abi_type())
    }
}

impl<T: FromValue, S: std::hash::BuildHasher + Default> FromValue for HashMap<String, T, S> {
    fn from_value(v: Value) -> Result<Self, ConvertError> {
        match v {
            Value::Map(m) => {
                let mut out = HashMap::with_capacity_and_hasher(m.len(), S::default());
                for (k, e) in m {
                    let e = T::from_value(e).map_err(|err| err.within(&format!(".{}", k)))?;
                    out.insert(k, e);
                }
                Ok(out)
            }
            v => Err(ConvertError::new::<Self>(&v)),
        }
    }
}

impl<T: IntoValue, S> IntoValue for HashMap<String, T, S> {
    fn into_value(self) -> Value {
        Value::Map(self.into_iter().map(|(k, v)| (k, v.into_value())).collect())
    }
}

// --- optional -------------------------------------------------------------

impl<T: AbiType> AbiType for Option<T> {
    fn abi_type() -> String {
        format!("optional[{}]", T::abi_type())
    }
}

impl<T: FromValue> FromValue for Option<T> {
    const OPTIONAL: bool = true;

    fn from_value(v: Value) -> Result<Self, ConvertError> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }

    fn missing() -> Option<Self> {
        Some(None)
    }
}

impl<T: IntoValue> IntoValue for Option<T> {
    fn into_value(self) -> Value {
        match self {
            None => Value::Null,
            Some(v) => v.into_value(),
        }
    }
}

// --- rest -----------------------------------------------------------------

/// The type of a knot's `..rest` parameter, which collects every input the
/// knot does not declare: a map from input name to `Elem`. The manifest's
/// `rest` is `Elem`'s ABI type.
pub trait RestInputs: Sized {
    /// The type of each further input.
    type Elem: FromValue;
    /// Builds the collection from (name, value) pairs in canonical order.
    fn from_inputs(inputs: Vec<(String, Self::Elem)>) -> Self;
}

impl<T: FromValue> RestInputs for BTreeMap<String, T> {
    type Elem = T;
    fn from_inputs(inputs: Vec<(String, T)>) -> Self {
        inputs.into_iter().collect()
    }
}

impl<T: FromValue, S: std::hash::BuildHasher + Default> RestInputs for HashMap<String, T, S> {
    type Elem = T;
    fn from_inputs(inputs: Vec<(String, T)>) -> Self {
        inputs.into_iter().collect()
    }
}

impl<T: FromValue> RestInputs for Vec<(String, T)> {
    type Elem = T;
    fn from_inputs(inputs: Vec<(String, T)>) -> Self {
        inputs
    }
}
