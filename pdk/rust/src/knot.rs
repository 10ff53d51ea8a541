//! Knot declarations and dispatch: what [`knots!`](crate::knots) builds.

use std::collections::BTreeMap;

use crate::abi::{Error, InputSpec, KnotSpec, Manifest, Request, Response, Stop};
use crate::cbor::Value;
use crate::convert::{AbiType, FromValue, IntoValue, RestInputs};

/// A module: its knots, as [`knots!`](crate::knots) declares them in the
/// static `PIRN_MODULE`. Its methods are what the wasm exports call, and
/// let knots be tested natively.
pub struct Module {
    /// The informational module name of the manifest.
    pub name: Option<&'static str>,
    /// The knots, in declaration order.
    pub knots: &'static [KnotDef],
}

/// One declared knot.
pub struct KnotDef {
    /// The knot's name.
    pub name: &'static str,
    /// Its doc comment, one string per line.
    pub doc: &'static [&'static str],
    /// Its declared inputs.
    pub inputs: &'static [InputDef],
    /// The type of its further inputs, if it has a `..rest` parameter.
    pub rest: Option<fn() -> String>,
    /// Its output type.
    pub output: fn() -> String,
    /// Binds the inputs and runs the knot.
    pub call: fn(&mut Args) -> Result<Value, Stop>,
}

/// One declared input.
pub struct InputDef {
    /// The input's name.
    pub name: &'static str,
    /// Its doc comment, one string per line.
    pub doc: &'static [&'static str],
    /// Its type.
    pub ty: fn() -> String,
    /// Whether it may be left unbound.
    pub optional: bool,
}

/// Joins doc-comment lines into the manifest's one line.
fn doc_line(lines: &[&str]) -> String {
    let mut s = String::new();
    for l in lines {
        let l = l.trim();
        if l.is_empty() {
            continue;
        }
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(l);
    }
    s
}

impl Module {
    /// The module's manifest.
    pub fn manifest(&self) -> Manifest {
        Manifest {
            name: self.name.map(str::to_string),
            knots: self
                .knots
                .iter()
                .map(|k| KnotSpec {
                    name: k.name.to_string(),
                    doc: doc_line(k.doc),
                    inputs: k
                        .inputs
                        .iter()
                        .map(|i| InputSpec {
                            name: i.name.to_string(),
                            ty: (i.ty)(),
                            doc: doc_line(i.doc),
                            optional: i.optional,
                        })
                        .collect(),
                    rest: k.rest.map(|r| r()),
                    output: (k.output)(),
                })
                .collect(),
        }
    }

    /// Runs one invocation: decodes a request, runs the knot and returns
    /// the encoded response. This is what `pirn_invoke` does.
    pub fn invoke(&self, request: &[u8]) -> Vec<u8> {
        let r = match Request::decode(request) {
            Ok(req) => self.respond(req),
            Err(e) => Response::Err(Error::new("PDKError", e.to_string())),
        };
        r.encode()
    }

    /// Runs a decoded request.
    pub fn respond(&self, req: Request) -> Response {
        let k = match self.knots.iter().find(|k| k.name == req.knot) {
            Some(k) => k,
            None => {
                return Response::Err(Error::new("UnknownKnot", format!("module has no knot {:?}", req.knot)));
            }
        };
        crate::host::set_current(k.name);
        let mut args = Args { knot: k.name, inputs: req.inputs, config: req.config };
        let r = (k.call)(&mut args).into();
        crate::host::set_current("");
        r
    }

    /// Calls a knot with inputs given as (name, value) pairs: a convenience
    /// for tests.
    pub fn call<I, K, V>(&self, knot: &str, inputs: I) -> Response
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: IntoValue,
    {
        let inputs = inputs.into_iter().map(|(k, v)| (k.into(), v.into_value())).collect();
        self.respond(Request { knot: knot.to_string(), inputs, config: BTreeMap::new() })
    }
}

/// The arguments of one invocation, consumed by the knot's binding code.
pub struct Args {
    knot: &'static str,
    inputs: BTreeMap<String, Value>,
    config: BTreeMap<String, Value>,
}

impl Args {
    fn remove(&mut self, name: &str) -> Option<Value> {
        self.inputs.remove(name).or_else(|| self.config.remove(name))
    }

    /// Takes the input `name`, converting it to `T`. A missing required
    /// input is an `InputError`, and so is a value that does not fit,
    /// naming the input (docs/abi.md §2.3).
    pub fn take<T: FromValue>(&mut self, name: &str) -> Result<T, Stop> {
        match self.remove(name) {
            None => T::missing().ok_or_else(|| {
                Stop::Err(Error::new("InputError", format!("knot {:?}: missing input {:?}", self.knot, name)))
            }),
            Some(v) => T::from_value(v).map_err(|e| {
                Stop::Err(Error::new("InputError", format!("knot {:?}: input {:?}: {}", self.knot, name, e)))
            }),
        }
    }

    /// Takes every remaining input, for a `..rest` parameter.
    pub fn rest<R: RestInputs>(&mut self) -> Result<R, Stop> {
        let mut all: Vec<(String, Value)> = std::mem::take(&mut self.inputs).into_iter().collect();
        all.extend(std::mem::take(&mut self.config));
        all.sort_by(|a, b| crate::cbor::key_order(&a.0, &b.0));
        let mut out = Vec::with_capacity(all.len());
        for (name, v) in all {
            match R::Elem::from_value(v) {
                Ok(e) => out.push((name, e)),
                Err(e) => {
                    return Err(Stop::Err(Error::new(
                        "InputError",
                        format!("knot {:?}: input {:?}: {}", self.knot, name, e),
                    )))
                }
            }
        }
        Ok(R::from_inputs(out))
    }

    /// Refuses inputs not in `declared` (for a knot without `..rest`).
    pub fn check_declared(&self, declared: &[&str]) -> Result<(), Stop> {
        match self.inputs.keys().chain(self.config.keys()).find(|k| !declared.contains(&k.as_str())) {
            None => Ok(()),
            Some(name) => {
                Err(Stop::Err(Error::new("InputError", format!("knot {:?}: unknown input {:?}", self.knot, name))))
            }
        }
    }
}

/// What a knot function may return: a value (`T`), or a
/// `Result<T, E>` whose error converts into [`Stop`] (an err or a skip).
pub trait KnotReturn {
    /// The output type for the manifest.
    fn output_type() -> String;
    /// The outcome.
    fn into_result(self) -> Result<Value, Stop>;
}

impl<T: IntoValue> KnotReturn for T {
    fn output_type() -> String {
        T::abi_type()
    }
    fn into_result(self) -> Result<Value, Stop> {
        Ok(self.into_value())
    }
}

impl<T: IntoValue, E: Into<Stop>> KnotReturn for Result<T, E> {
    fn output_type() -> String {
        <T as AbiType>::abi_type()
    }
    fn into_result(self) -> Result<Value, Stop> {
        match self {
            Ok(v) => Ok(v.into_value()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The manifest `rest` type of a `..rest` parameter of type `R`.
pub fn rest_type<R: RestInputs>() -> String {
    <R::Elem as AbiType>::abi_type()
}
