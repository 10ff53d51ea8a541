//! The ABI's messages (docs/abi.md §2-3): requests, responses and the
//! manifest.

use std::collections::BTreeMap;
use std::fmt;

use crate::cbor::{self, DecodeError, Value};
use crate::convert::{ConvertError, IntoValue};

/// The ABI version this PDK speaks.
pub const ABI_VERSION: i32 = 1;

/// A request, as `pirn_invoke` receives it:
/// `{"knot": text, "config": {name: value}, "inputs": {name: value}}`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Request {
    /// The knot to run.
    pub knot: String,
    /// The values of the knot's parents, by input name.
    pub inputs: BTreeMap<String, Value>,
    /// The constants the pipeline binds to inputs.
    pub config: BTreeMap<String, Value>,
}

impl Request {
    /// Decodes a request. Like the host's decoder it refuses a message that
    /// is not a map, an unknown or duplicate key, a missing or empty
    /// `knot`, `inputs` or `config` that is not a map, and a name bound in
    /// both; `inputs` and `config` may be absent (empty).
    pub fn decode(b: &[u8]) -> Result<Request, DecodeError> {
        let bad = |m: &str| DecodeError { offset: 0, message: format!("request: {}", m) };
        // The values sit two levels down: each may nest cbor::MAX_DEPTH levels.
        let m = match cbor::decode_nested(b, 2)? {
            Value::Map(m) => m,
            v => return Err(bad(&format!("want a map, got {}", v.describe()))),
        };
        let mut r = Request::default();
        for (k, v) in m {
            match (k.as_str(), v) {
                ("knot", Value::Text(s)) => r.knot = s,
                ("inputs", Value::Map(m)) => r.inputs = m,
                ("config", Value::Map(m)) => r.config = m,
                ("knot", v) | ("inputs", v) | ("config", v) => {
                    return Err(bad(&format!("{:?} is {}", k, v.describe())));
                }
                _ => return Err(bad(&format!("unknown key {:?}", k))),
            }
        }
        if r.knot.is_empty() {
            return Err(bad("missing \"knot\""));
        }
        if let Some(k) = r.inputs.keys().find(|k| r.config.contains_key(*k)) {
            return Err(bad(&format!("{:?} is both an input and config", k)));
        }
        Ok(r)
    }

    /// Encodes the request canonically (what the host sends).
    pub fn encode(&self) -> Vec<u8> {
        let mut m = BTreeMap::new();
        m.insert("knot".to_string(), Value::Text(self.knot.clone()));
        m.insert("inputs".to_string(), Value::Map(self.inputs.clone()));
        m.insert("config".to_string(), Value::Map(self.config.clone()));
        cbor::encode(&Value::Map(m))
    }
}

/// An err outcome: `{"type", "message", "detail"?, "trace"?}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Error {
    /// The class of failure (the ABI's `type`), e.g. `ValueError`. An empty
    /// kind is sent as `Error`.
    pub kind: String,
    /// A human-readable message.
    pub message: String,
    /// Any value, for machines.
    pub detail: Option<Value>,
    /// A stack trace, if there is one.
    pub trace: Option<String>,
}

impl Error {
    /// An error of class `kind` (e.g. `"ValueError"`).
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Error {
        Error { kind: kind.into(), message: message.into(), detail: None, trace: None }
    }

    /// Attaches a detail value.
    pub fn with_detail(mut self, detail: impl IntoValue) -> Error {
        self.detail = Some(detail.into_value());
        self
    }

    /// Attaches a trace.
    pub fn with_trace(mut self, trace: impl Into<String>) -> Error {
        self.trace = Some(trace.into());
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for Error {}

/// A skip outcome: the knot opts out, `{"reason", "detail"?}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Skip {
    /// Why; an empty reason is sent as `skipped`.
    pub reason: String,
    /// Any value, for machines.
    pub detail: Option<Value>,
}

impl Skip {
    /// A skip with a reason.
    pub fn new(reason: impl Into<String>) -> Skip {
        Skip { reason: reason.into(), detail: None }
    }

    /// Attaches a detail value.
    pub fn with_detail(mut self, detail: impl IntoValue) -> Skip {
        self.detail = Some(detail.into_value());
        self
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "skip: {}", self.reason)
    }
}

/// How a knot ends without a value: an err or a skip. It is the error type
/// of [`Result`](crate::Result); `?` converts [`Error`] and [`Skip`] (and
/// text, as an `Error` of kind `Error`) into it.
#[derive(Clone, Debug, PartialEq)]
pub enum Stop {
    /// An err outcome.
    Err(Error),
    /// A skip outcome.
    Skip(Skip),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Stop {
        Stop::Err(e)
    }
}

impl From<Skip> for Stop {
    fn from(s: Skip) -> Stop {
        Stop::Skip(s)
    }
}

impl From<String> for Stop {
    fn from(message: String) -> Stop {
        Stop::Err(Error::new("Error", message))
    }
}

impl From<&str> for Stop {
    fn from(message: &str) -> Stop {
        Stop::Err(Error::new("Error", message))
    }
}

/// A value that does not convert is an err of type `InputError`.
impl From<ConvertError> for Stop {
    fn from(e: ConvertError) -> Stop {
        Stop::Err(Error::new("InputError", e.to_string()))
    }
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::Err(e) => e.fmt(f),
            Stop::Skip(s) => s.fmt(f),
        }
    }
}

/// Returns an err outcome of class `kind`: `return Err(fail("ValueError", "..."))`.
pub fn fail(kind: impl Into<String>, message: impl Into<String>) -> Stop {
    Stop::Err(Error::new(kind, message))
}

/// Returns a skip outcome: `return Err(skip("nothing to do"))`.
pub fn skip(reason: impl Into<String>) -> Stop {
    Stop::Skip(Skip::new(reason))
}

/// A response, as `pirn_invoke` hands it back.
#[derive(Clone, Debug, PartialEq)]
pub enum Response {
    /// `{"ok": value}`.
    Ok(Value),
    /// `{"err": {...}}`.
    Err(Error),
    /// `{"skip": {...}}`.
    Skip(Skip),
}

impl From<Stop> for Response {
    fn from(s: Stop) -> Response {
        match s {
            Stop::Err(e) => Response::Err(e),
            Stop::Skip(s) => Response::Skip(s),
        }
    }
}

impl From<Result<Value, Stop>> for Response {
    fn from(r: Result<Value, Stop>) -> Response {
        match r {
            Ok(v) => Response::Ok(v),
            Err(s) => s.into(),
        }
    }
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

impl Response {
    /// The response as a value (an empty err kind becomes `Error`, an
    /// empty skip reason `skipped`: the host refuses both empty).
    pub fn to_value(&self) -> Value {
        match self {
            Response::Ok(v) => map(vec![("ok", v.clone())]),
            Response::Err(e) => {
                let kind = if e.kind.is_empty() { "Error" } else { e.kind.as_str() };
                let mut m = vec![("type", Value::from(kind)), ("message", Value::from(e.message.as_str()))];
                if let Some(d) = &e.detail {
                    m.push(("detail", d.clone()));
                }
                if let Some(t) = &e.trace {
                    m.push(("trace", Value::from(t.as_str())));
                }
                map(vec![("err", map(m))])
            }
            Response::Skip(s) => {
                let reason = if s.reason.is_empty() { "skipped" } else { s.reason.as_str() };
                let mut m = vec![("reason", Value::from(reason))];
                if let Some(d) = &s.detail {
                    m.push(("detail", d.clone()));
                }
                map(vec![("skip", map(m))])
            }
        }
    }

    /// Encodes the response canonically.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            // {"ok": value} without copying the value.
            Response::Ok(v) => {
                let mut out = vec![0xa1, 0x62, b'o', b'k'];
                cbor::encode_into(&mut out, v);
                out
            }
            r => cbor::encode(&r.to_value()),
        }
    }

    /// Decodes a response as strictly as the host does (§2.2): exactly one
    /// arm, no unknown keys, an err with a non-empty `type`, a skip with a
    /// non-empty `reason`. Guests do not need this; it is for tests.
    pub fn decode(b: &[u8]) -> Result<Response, DecodeError> {
        let bad = |m: String| DecodeError { offset: 0, message: format!("response: {}", m) };
        let m = match cbor::decode(b)? {
            Value::Map(m) => m,
            v => return Err(bad(format!("cannot unmarshal {} into a response", v.describe()))),
        };
        if let Some(k) = m.keys().find(|k| !matches!(k.as_str(), "ok" | "err" | "skip")) {
            return Err(bad(format!("unknown field {:?}", k)));
        }
        if m.len() != 1 {
            return Err(bad(format!("want exactly one of \"ok\", \"err\", \"skip\"; got {}", m.len())));
        }
        let (k, v) = m.into_iter().next().unwrap();
        let text = |f: &mut BTreeMap<String, Value>, key: &str| -> Result<Option<String>, DecodeError> {
            match f.remove(key) {
                None => Ok(None),
                Some(Value::Text(s)) => Ok(Some(s)),
                Some(v) => Err(bad(format!("{}.{} is {}", k, key, v.describe()))),
            }
        };
        match (k.as_str(), v) {
            ("ok", v) => Ok(Response::Ok(v)),
            ("err", Value::Map(mut f)) => {
                let kind = text(&mut f, "type")?.unwrap_or_default();
                let message = text(&mut f, "message")?.unwrap_or_default();
                let trace = text(&mut f, "trace")?;
                let detail = f.remove("detail");
                if let Some(k) = f.keys().next() {
                    return Err(bad(format!("unknown field {:?} in err", k)));
                }
                if kind.is_empty() {
                    return Err(bad("err without a \"type\"".to_string()));
                }
                Ok(Response::Err(Error { kind, message, detail, trace }))
            }
            ("skip", Value::Map(mut f)) => {
                let reason = text(&mut f, "reason")?.unwrap_or_default();
                let detail = f.remove("detail");
                if let Some(k) = f.keys().next() {
                    return Err(bad(format!("unknown field {:?} in skip", k)));
                }
                if reason.is_empty() {
                    return Err(bad("skip without a \"reason\"".to_string()));
                }
                Ok(Response::Skip(Skip { reason, detail }))
            }
            (k, v) => Err(bad(format!("{} is {}", k, v.describe()))),
        }
    }
}

/// The manifest `pirn_manifest` hands the host (§3).
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    /// Informational module name.
    pub name: Option<String>,
    /// The knots, in declaration order.
    pub knots: Vec<KnotSpec>,
}

/// One knot of a [`Manifest`].
#[derive(Clone, Debug, PartialEq)]
pub struct KnotSpec {
    /// The knot's name.
    pub name: String,
    /// One line of documentation (omitted when empty).
    pub doc: String,
    /// The declared inputs, in declaration order.
    pub inputs: Vec<InputSpec>,
    /// The type of any further inputs, if the knot takes them.
    pub rest: Option<String>,
    /// The output type.
    pub output: String,
}

/// One input of a [`KnotSpec`].
#[derive(Clone, Debug, PartialEq)]
pub struct InputSpec {
    /// The input's name (an identifier).
    pub name: String,
    /// Its type.
    pub ty: String,
    /// One line of documentation (omitted when empty).
    pub doc: String,
    /// Whether it may be left unbound.
    pub optional: bool,
}

impl Manifest {
    /// The manifest as a value.
    pub fn to_value(&self) -> Value {
        let knots = self.knots.iter().map(KnotSpec::to_value).collect();
        let mut m = vec![("abi", Value::Int(ABI_VERSION as i64)), ("knots", Value::Array(knots))];
        if let Some(n) = &self.name {
            m.push(("name", Value::from(n.as_str())));
        }
        map(m)
    }

    /// Encodes the manifest canonically.
    pub fn encode(&self) -> Vec<u8> {
        cbor::encode(&self.to_value())
    }
}

impl KnotSpec {
    /// The knot's entry as a value.
    pub fn to_value(&self) -> Value {
        let inputs = self.inputs.iter().map(InputSpec::to_value).collect();
        let mut m = vec![
            ("name", Value::from(self.name.as_str())),
            ("inputs", Value::Array(inputs)),
            ("output", Value::from(self.output.as_str())),
        ];
        if !self.doc.is_empty() {
            m.push(("doc", Value::from(self.doc.as_str())));
        }
        if let Some(r) = &self.rest {
            m.push(("rest", Value::from(r.as_str())));
        }
        map(m)
    }
}

impl InputSpec {
    /// The input's entry as a value.
    pub fn to_value(&self) -> Value {
        let mut m = vec![("name", Value::from(self.name.as_str())), ("type", Value::from(self.ty.as_str()))];
        if !self.doc.is_empty() {
            m.push(("doc", Value::from(self.doc.as_str())));
        }
        if self.optional {
            m.push(("optional", Value::Bool(true)));
        }
        map(m)
    }
}
