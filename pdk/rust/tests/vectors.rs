//! The repository's golden vectors: cas/testdata/canonical.json (canonical
//! encoding) and abi/testdata/*.cbor (requests, responses, manifest).

use std::collections::BTreeMap;
use std::path::PathBuf;

use pirn_pdk::cbor::{decode, encode};
use pirn_pdk::{Error, Request, Response, Skip, Value};

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel)
}

fn read(rel: &str) -> Vec<u8> {
    let p = repo(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {}", p.display(), e))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|c| format!("{:02x}", c)).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

// --- a minimal JSON reader, enough for canonical.json -----------------------

#[derive(Debug)]
enum Json {
    Str(String),
    Arr(Vec<Json>),
    Obj(BTreeMap<String, Json>),
    Other,
}

impl Json {
    fn get(&self, k: &str) -> &Json {
        match self {
            Json::Obj(m) => m.get(k).unwrap_or_else(|| panic!("no key {}", k)),
            _ => panic!("not an object"),
        }
    }
    fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            j => panic!("not a string: {:?}", j),
        }
    }
    fn arr(&self) -> &[Json] {
        match self {
            Json::Arr(a) => a,
            j => panic!("not an array: {:?}", j),
        }
    }
}

fn parse_json(s: &str) -> Json {
    let b = s.as_bytes();
    let mut i = 0;
    let v = json_value(b, &mut i);
    ws(b, &mut i);
    assert_eq!(i, b.len(), "trailing JSON");
    v
}

fn ws(b: &[u8], i: &mut usize) {
    while *i < b.len() && b[*i].is_ascii_whitespace() {
        *i += 1;
    }
}

fn json_value(b: &[u8], i: &mut usize) -> Json {
    ws(b, i);
    match b[*i] {
        b'"' => Json::Str(json_string(b, i)),
        b'[' => {
            *i += 1;
            let mut a = Vec::new();
            loop {
                ws(b, i);
                if b[*i] == b']' {
                    *i += 1;
                    return Json::Arr(a);
                }
                a.push(json_value(b, i));
                ws(b, i);
                if b[*i] == b',' {
                    *i += 1;
                }
            }
        }
        b'{' => {
            *i += 1;
            let mut m = BTreeMap::new();
            loop {
                ws(b, i);
                if b[*i] == b'}' {
                    *i += 1;
                    return Json::Obj(m);
                }
                let k = json_string(b, i);
                ws(b, i);
                assert_eq!(b[*i], b':');
                *i += 1;
                m.insert(k, json_value(b, i));
                ws(b, i);
                if b[*i] == b',' {
                    *i += 1;
                }
            }
        }
        _ => {
            while *i < b.len() && !matches!(b[*i], b',' | b']' | b'}') {
                *i += 1;
            }
            Json::Other
        }
    }
}

fn json_string(b: &[u8], i: &mut usize) -> String {
    assert_eq!(b[*i], b'"');
    *i += 1;
    let mut out = Vec::new();
    while b[*i] != b'"' {
        if b[*i] == b'\\' {
            *i += 1;
            match b[*i] {
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'u' => {
                    let c = u32::from_str_radix(std::str::from_utf8(&b[*i + 1..*i + 5]).unwrap(), 16).unwrap();
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(char::from_u32(c).unwrap().encode_utf8(&mut buf).as_bytes());
                    *i += 4;
                }
                c => out.push(c),
            }
        } else {
            out.push(b[*i]);
        }
        *i += 1;
    }
    *i += 1;
    String::from_utf8(out).unwrap()
}

// --- cas/testdata/canonical.json -------------------------------------------

#[test]
fn canonical_vectors() {
    let j = parse_json(std::str::from_utf8(&read("cas/testdata/canonical.json")).unwrap());
    let cases = j.get("canonical").arr();
    assert!(cases.len() >= 20, "only {} canonical vectors", cases.len());
    for c in cases {
        let name = c.get("name").str();
        let input = unhex(c.get("input").str());
        let want = c.get("canonical").str();
        let v = decode(&input).unwrap_or_else(|e| panic!("{}: decode {}: {}", name, hex(&input), e));
        assert_eq!(hex(&encode(&v)), want, "{}: canonical encoding of {}", name, hex(&input));
        // The canonical form decodes to the same value and re-encodes to itself.
        let again = decode(&unhex(want)).unwrap();
        assert_eq!(hex(&encode(&again)), want, "{}: canonical form is not a fixed point", name);
    }
    let rejected = j.get("rejected").arr();
    assert!(!rejected.is_empty());
    for c in rejected {
        let name = c.get("name").str();
        let input = unhex(c.get("input").str());
        let want = c.get("error").str();
        match decode(&input) {
            Ok(v) => panic!("{}: decode({}) = {:?}, want an error ({})", name, hex(&input), v, want),
            // The messages follow the Go library's wording.
            Err(e) => assert!(e.message.contains(want), "{}: error {:?}, want it to contain {:?}", name, e.message, want),
        }
    }
}

// --- abi/testdata: requests --------------------------------------------------

#[test]
fn request_add() {
    let b = read("abi/testdata/request-add.cbor");
    let r = Request::decode(&b).unwrap();
    assert_eq!(r.knot, "add");
    assert!(r.config.is_empty());
    assert_eq!(r.inputs.get("a"), Some(&Value::Int(5)));
    assert_eq!(r.inputs.get("b"), Some(&Value::Int(10)));
    assert_eq!(r.inputs.len(), 2);
    assert_eq!(hex(&r.encode()), hex(&b));
}

#[test]
fn request_mixed() {
    let b = read("abi/testdata/request-mixed.cbor");
    let r = Request::decode(&b).unwrap();
    assert_eq!(r.knot, "describe");
    let items = Value::Array(vec![
        Value::Int(1),
        Value::Int(-2),
        Value::Float(2.5),
        Value::from("x"),
        Value::Bytes(vec![0, 1]),
        Value::Null,
        Value::Bool(true),
    ]);
    let x = map(vec![("zz", Value::Int(1)), ("a", Value::from("é"))]);
    let want = Request {
        knot: "describe".to_string(),
        inputs: vec![("items".to_string(), items), ("x".to_string(), x)].into_iter().collect(),
        config: vec![("label".to_string(), Value::from("hello")), ("scale".to_string(), Value::Float(0.5))]
            .into_iter()
            .collect(),
    };
    assert_eq!(r, want);
    assert_eq!(hex(&want.encode()), hex(&b));
}

#[test]
fn request_values_nest_as_deep_as_values() {
    let nest = |n: usize| {
        let mut v = Value::Int(1);
        for _ in 0..n {
            v = Value::Array(vec![v]);
        }
        v
    };
    let mut r = Request { knot: "k".to_string(), ..Request::default() };
    r.inputs.insert("x".to_string(), nest(pirn_pdk::cbor::MAX_DEPTH));
    assert_eq!(Request::decode(&r.encode()).unwrap(), r);
    r.inputs.insert("x".to_string(), nest(pirn_pdk::cbor::MAX_DEPTH + 1));
    assert!(Request::decode(&r.encode()).is_err());
}

#[test]
fn request_rejects() {
    let cases: &[(&str, &[u8])] = &[
        ("empty", &[]),
        ("not a map", &[0x81, 0x01]),
        ("no knot", &[0xa0]),
        ("unknown key", b"\xa2\x64knot\x61k\x61x\x01"),
        ("knot not text", b"\xa1\x64knot\x01"),
        ("inputs not a map", b"\xa2\x64knot\x61k\x66inputs\x80"),
        ("both", b"\xa3\x64knot\x61k\x66config\xa1\x61a\x01\x66inputs\xa1\x61a\x02"),
        ("truncated", b"\xa3\x64knot\x61k\x66config"),
    ];
    for (name, b) in cases {
        assert!(Request::decode(b).is_err(), "{}: Request::decode({}) succeeded", name, hex(b));
    }
}

// --- abi/testdata: responses -------------------------------------------------

#[test]
fn responses() {
    let cases = vec![
        ("response-ok.cbor", Response::Ok(Value::Int(15))),
        (
            "response-ok-map.cbor",
            Response::Ok(map(vec![("sum", Value::Int(3)), ("items", Value::Array(vec![Value::Int(1), Value::Int(2)]))])),
        ),
        ("response-ok-null.cbor", Response::Ok(Value::Null)),
        (
            "response-err.cbor",
            Response::Err(
                Error::new("ValueError", "boom").with_detail(map(vec![("code", Value::Int(7))])).with_trace("main.go:3"),
            ),
        ),
        ("response-skip.cbor", Response::Skip(Skip::new("nothing to do"))),
    ];
    for (name, r) in cases {
        let want = read(&format!("abi/testdata/{}", name));
        assert_eq!(hex(&r.encode()), hex(&want), "{}", name);
        assert_eq!(Response::decode(&want).unwrap(), r, "{}: decode", name);
    }
}

#[test]
fn bad_responses() {
    for name in [
        "bad-two-arms.cbor",
        "bad-no-arm.cbor",
        "bad-unknown-key.cbor",
        "bad-err-no-type.cbor",
        "bad-skip-no-reason.cbor",
        "bad-not-a-map.cbor",
    ] {
        let b = read(&format!("abi/testdata/{}", name));
        assert!(Response::decode(&b).is_err(), "{}: decoded", name);
    }
    let mut deep = vec![0x81u8; 200];
    deep.push(0x01);
    for raw in [&[][..], &[0xa1], b"\xa1\x62ok", b"\xa1\x62ok\x01\x01", &deep] {
        assert!(Response::decode(raw).is_err(), "Response::decode({}) succeeded", hex(raw));
    }
}

#[test]
fn empty_kind_and_reason_are_filled_in() {
    let e = Response::Err(Error::new("", "m")).encode();
    assert_eq!(Response::decode(&e).unwrap(), Response::Err(Error::new("Error", "m")));
    let s = Response::Skip(Skip::new("")).encode();
    assert_eq!(Response::decode(&s).unwrap(), Response::Skip(Skip::new("skipped")));
}

// --- abi/testdata: manifest ----------------------------------------------------

// The declarations of abi/message_test.go's arithManifest.
mod arith {
    use std::collections::BTreeMap;

    pirn_pdk::knots! {
        name = "arith";

        /// Returns 2x.
        fn double(x: i64) -> i64 {
            2 * x
        }

        /// Returns a+b.
        fn add(a: i64, b: i64) -> i64 {
            a + b
        }

        /// Sums every input.
        fn sum(..terms: BTreeMap<String, i64>) -> i64 {
            terms.values().sum()
        }
    }
}

#[test]
fn manifest() {
    let golden = read("abi/testdata/manifest.cbor");
    let v = arith::PIRN_MODULE.manifest().to_value();
    assert_eq!(hex(&encode(&v)), hex(&golden));
}

#[test]
fn arith_invocations() {
    // The request vector, run through the module.
    let resp = arith::PIRN_MODULE.invoke(&read("abi/testdata/request-add.cbor"));
    assert_eq!(hex(&resp), hex(&read("abi/testdata/response-ok.cbor")));
    let r = Request {
        knot: "sum".to_string(),
        inputs: vec![("p".to_string(), Value::Int(1)), ("q".to_string(), Value::Int(2))].into_iter().collect(),
        config: vec![("zz".to_string(), Value::Int(4))].into_iter().collect(),
    };
    assert_eq!(arith::PIRN_MODULE.respond(r), Response::Ok(Value::Int(7)));
}
