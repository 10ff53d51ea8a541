//! The knots! macro: manifest generation, input binding, outcomes, logging.

#![allow(clippy::too_many_arguments)]

use std::collections::{BTreeMap, HashMap};

use pirn_pdk::prelude::*;
use pirn_pdk::{take_logs, Request};

pirn_pdk::knots! {
    /// Returns x · factor.
    ///
    /// (A second doc paragraph joins the line.)
    fn scale(
        /// the value
        x: f64,
        /// defaults to 2
        factor: Option<f64>,
    ) -> f64 {
        x * factor.unwrap_or(2.0)
    }

    /// Every kind of input.
    fn kinds(
        i: i64, f: f64, b: bool, s: String, raw: Vec<u8>, bytes: Bytes,
        ints: Vec<i64>, anys: Vec<Value>, d: BTreeMap<String, f64>, h: HashMap<String, String>,
        o: Option<String>, any: Value, small: u8_list::Small,
    ) -> BTreeMap<String, Value> {
        let mut m = BTreeMap::new();
        m.insert("i".to_string(), Value::Int(i));
        m.insert("f".to_string(), Value::Float(f));
        m.insert("b".to_string(), Value::Bool(b));
        m.insert("s".to_string(), Value::Text(s));
        m.insert("raw".to_string(), Value::Bytes(raw));
        m.insert("bytes".to_string(), Value::Bytes(bytes.0));
        m.insert("n".to_string(), Value::Int((ints.len() + anys.len() + d.len() + h.len()) as i64));
        m.insert("o".to_string(), o.map(Value::Text).unwrap_or(Value::Null));
        m.insert("any".to_string(), any);
        m.insert("small".to_string(), Value::Int(small as i64));
        m
    }

    /// Fails, skips or succeeds on request.
    fn outcome(what: String) -> Result<Vec<String>> {
        match what.as_str() {
            "err" => Err(Error::new("ValueError", "bad").with_detail(7i64).into()),
            "skip" => Err(skip("not today")),
            "text" => Err("plain text".into()),
            "log" => {
                pirn_pdk::info!("hello {}", 1);
                pirn_pdk::warn!("careful");
                Ok(vec![])
            }
            _ => Ok(vec![what]),
        }
    }

    /// Counts its further inputs.
    fn count(first: i64, ..others: BTreeMap<String, Option<i64>>) -> i64 {
        first + others.len() as i64
    }

    fn nothing() -> () {}

    /// A knot whose input shares its name.
    fn n(n: i64) -> i64 {
        n + 1
    }

    /// Converts an `any` input itself: `?` turns a ConvertError into an
    /// InputError.
    fn sum_any(v: Value) -> Result<f64> {
        let xs = <Vec<f64> as pirn_pdk::FromValue>::from_value(v)?;
        Ok(xs.iter().sum())
    }
}

mod u8_list {
    /// i16 is an `int` too.
    pub type Small = i16;
}

fn req(knot: &str, inputs: Vec<(&str, Value)>, config: Vec<(&str, Value)>) -> Request {
    let m = |v: Vec<(&str, Value)>| v.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    Request { knot: knot.to_string(), inputs: m(inputs), config: m(config) }
}

fn err(kind: &str, msg: &str) -> Response {
    Response::Err(Error::new(kind, msg))
}

#[test]
fn manifest() {
    let m = PIRN_MODULE.manifest();
    assert_eq!(m.name, None);
    let names: Vec<&str> = m.knots.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["scale", "kinds", "outcome", "count", "nothing", "n", "sum_any"]);

    let scale = &m.knots[0];
    assert_eq!(scale.doc, "Returns x · factor. (A second doc paragraph joins the line.)");
    assert_eq!(scale.output, "float");
    assert_eq!(scale.rest, None);
    let ins: Vec<(&str, &str, &str, bool)> =
        scale.inputs.iter().map(|i| (i.name.as_str(), i.ty.as_str(), i.doc.as_str(), i.optional)).collect();
    assert_eq!(ins, [("x", "float", "the value", false), ("factor", "optional[float]", "defaults to 2", true)]);

    let kinds: Vec<(&str, &str)> = m.knots[1].inputs.iter().map(|i| (i.name.as_str(), i.ty.as_str())).collect();
    assert_eq!(
        kinds,
        [
            ("i", "int"),
            ("f", "float"),
            ("b", "bool"),
            ("s", "str"),
            ("raw", "bytes"),
            ("bytes", "bytes"),
            ("ints", "list[int]"),
            ("anys", "list"),
            ("d", "dict[float]"),
            ("h", "dict[str]"),
            ("o", "optional[str]"),
            ("any", "any"),
            ("small", "int"),
        ]
    );
    assert_eq!(m.knots[1].output, "dict");
    assert_eq!(m.knots[2].output, "list[str]");
    assert_eq!(m.knots[3].rest.as_deref(), Some("optional[int]"));
    assert_eq!(m.knots[4].output, "null");
    assert_eq!(m.knots[4].doc, "");

    // The encoding: the doc and optional keys appear only when set.
    let v = m.to_value();
    let knots = match v.get("knots") {
        Some(Value::Array(a)) => a,
        _ => panic!(),
    };
    assert_eq!(knots[4].get("doc"), None);
    assert_eq!(knots[4].get("inputs"), Some(&Value::Array(vec![])));
    let x = match knots[0].get("inputs") {
        Some(Value::Array(a)) => &a[0],
        _ => panic!(),
    };
    assert_eq!(x.get("optional"), None);
    assert_eq!(v.get("abi"), Some(&Value::Int(1)));
    assert_eq!(v.get("name"), None);
}

#[test]
fn binding() {
    // Plain call, optional input unbound, bound in config, null.
    assert_eq!(PIRN_MODULE.call("scale", [("x", 3.0)]), Response::Ok(Value::Float(6.0)));
    assert_eq!(
        PIRN_MODULE.respond(req("scale", vec![("x", Value::Int(3))], vec![("factor", Value::Float(0.5))])),
        Response::Ok(Value::Float(1.5))
    );
    assert_eq!(
        PIRN_MODULE.respond(req("scale", vec![("x", Value::Int(3)), ("factor", Value::Null)], vec![])),
        Response::Ok(Value::Float(6.0))
    );
    // The function is still a function.
    assert_eq!(scale(1.0, Some(3.0)), 3.0);
    assert_eq!(n(1), 2);
    assert_eq!(PIRN_MODULE.call("n", [("n", 41i64)]), Response::Ok(Value::Int(42)));
}

#[test]
fn input_errors() {
    assert_eq!(PIRN_MODULE.call("scale", Vec::<(&str, i64)>::new()), err("InputError", r#"knot "scale": missing input "x""#));
    assert_eq!(
        PIRN_MODULE.call("scale", [("x", 1i64), ("y", 2)]),
        err("InputError", r#"knot "scale": unknown input "y""#)
    );
    assert_eq!(
        PIRN_MODULE.call("scale", [("x", "one")]),
        err("InputError", r#"knot "scale": input "x": want float, got str "one""#)
    );
    assert_eq!(
        PIRN_MODULE.call("scale", [("x", Value::Int(1)), ("factor", Value::from("2"))]),
        err("InputError", r#"knot "scale": input "factor": want float, got str "2""#)
    );
    assert_eq!(
        PIRN_MODULE.call("count", [("first", Value::Int(1)), ("zz", Value::Float(1.5))]),
        err("InputError", r#"knot "count": input "zz": want int, got float 1.5"#)
    );
    assert_eq!(PIRN_MODULE.call("nope", [("x", 1i64)]), err("UnknownKnot", r#"module has no knot "nope""#));
    // Nested paths.
    let mut ok = BTreeMap::new();
    for (k, v) in [
        ("i", Value::Int(1)),
        ("f", Value::Int(2)),
        ("b", Value::Bool(true)),
        ("s", Value::from("s")),
        ("raw", Value::Bytes(vec![1])),
        ("bytes", Value::Bytes(vec![2])),
        ("ints", Value::Array(vec![Value::Int(1)])),
        ("anys", Value::Array(vec![Value::Null])),
        ("d", Value::Map(BTreeMap::new())),
        ("h", Value::Map(BTreeMap::new())),
        ("any", Value::Null),
        ("small", Value::Int(-3)),
    ] {
        ok.insert(k.to_string(), v);
    }
    let r = PIRN_MODULE.respond(Request { knot: "kinds".to_string(), inputs: ok.clone(), config: BTreeMap::new() });
    match r {
        Response::Ok(v) => {
            assert_eq!(v.get("f"), Some(&Value::Float(2.0)));
            assert_eq!(v.get("o"), Some(&Value::Null));
            assert_eq!(v.get("n"), Some(&Value::Int(2)));
            assert_eq!(v.get("small"), Some(&Value::Int(-3)));
        }
        r => panic!("{:?}", r),
    }
    let with = |k: &str, v: Value| {
        let mut m = ok.clone();
        m.insert(k.to_string(), v);
        PIRN_MODULE.respond(Request { knot: "kinds".to_string(), inputs: m, config: BTreeMap::new() })
    };
    assert_eq!(
        with("ints", Value::Array(vec![Value::Int(1), Value::Float(2.0)])),
        err("InputError", r#"knot "kinds": input "ints": at [1]: want int, got float 2"#)
    );
    let mut d = BTreeMap::new();
    d.insert("k".to_string(), Value::from("v"));
    assert_eq!(
        with("d", Value::Map(d)),
        err("InputError", r#"knot "kinds": input "d": at .k: want float, got str "v""#)
    );
    assert_eq!(
        with("raw", Value::Array(vec![Value::Int(1)])),
        err("InputError", r#"knot "kinds": input "raw": want bytes, got list (1)"#)
    );
    assert_eq!(
        with("small", Value::Int(70000)),
        err("InputError", r#"knot "kinds": input "small": want int, got int 70000 (out of range for i16)"#)
    );
    // A conversion inside the knot (`?` on a ConvertError) is an InputError
    // too, without the input's name; the PDK never answers TypeError, which
    // is the host's (docs/abi.md §2.3).
    assert_eq!(
        PIRN_MODULE.call("sum_any", [("v", Value::from(vec![Value::Int(1), Value::Float(2.5)]))]),
        Response::Ok(Value::Float(3.5))
    );
    assert_eq!(
        PIRN_MODULE.call("sum_any", [("v", Value::from(vec![Value::Int(1), Value::from("x")]))]),
        err("InputError", r#"at [1]: want float, got str "x""#)
    );
    let stop: Stop = pirn_pdk::ConvertError::new::<bool>(&Value::Null).into();
    assert_eq!(stop, Stop::Err(Error::new("InputError", "want bool, got null")));
}

#[test]
fn outcomes() {
    assert_eq!(
        PIRN_MODULE.call("outcome", [("what", "err")]),
        Response::Err(Error::new("ValueError", "bad").with_detail(Value::Int(7)))
    );
    assert_eq!(PIRN_MODULE.call("outcome", [("what", "skip")]), Response::Skip(Skip::new("not today")));
    assert_eq!(PIRN_MODULE.call("outcome", [("what", "text")]), err("Error", "plain text"));
    assert_eq!(
        PIRN_MODULE.call("outcome", [("what", "x")]),
        Response::Ok(Value::Array(vec![Value::from("x")]))
    );
    assert_eq!(PIRN_MODULE.call("nothing", Vec::<(&str, i64)>::new()), Response::Ok(Value::Null));
    assert_eq!(
        PIRN_MODULE.respond(req("count", vec![("first", Value::Int(10)), ("b", Value::Null)], vec![("a", Value::Int(1))])),
        Response::Ok(Value::Int(12))
    );
}

#[test]
fn invoke_bytes() {
    let r = req("scale", vec![("x", Value::Float(1.25))], vec![]).encode();
    assert_eq!(PIRN_MODULE.invoke(&r), Response::Ok(Value::Float(2.5)).encode());
    let bad = PIRN_MODULE.invoke(&[0x81, 0x01]);
    match Response::decode(&bad).unwrap() {
        Response::Err(e) => assert_eq!(e.kind, "PDKError"),
        r => panic!("{:?}", r),
    }
}

#[test]
fn logs() {
    take_logs();
    assert_eq!(PIRN_MODULE.call("outcome", [("what", "log")]), Response::Ok(Value::Array(vec![])));
    assert_eq!(
        take_logs(),
        vec![(pirn_pdk::Level::Info, "hello 1".to_string()), (pirn_pdk::Level::Warn, "careful".to_string())]
    );
}
