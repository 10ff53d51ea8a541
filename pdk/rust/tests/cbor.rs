//! The codec: canonical encoding, round trips, and refusal of malformed or
//! out-of-model input.

use std::collections::BTreeMap;

use pirn_pdk::cbor::{decode, decode_prefix, encode, MAX_DEPTH};
use pirn_pdk::Value;

fn hex(b: &[u8]) -> String {
    b.iter().map(|c| format!("{:02x}", c)).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

#[test]
fn integers() {
    let cases: &[(i64, &str)] = &[
        (0, "00"),
        (23, "17"),
        (24, "1818"),
        (255, "18ff"),
        (256, "190100"),
        (65535, "19ffff"),
        (65536, "1a00010000"),
        (4294967295, "1affffffff"),
        (4294967296, "1b0000000100000000"),
        (i64::MAX, "1b7fffffffffffffff"),
        (-1, "20"),
        (-24, "37"),
        (-25, "3818"),
        (-256, "38ff"),
        (-257, "390100"),
        (i64::MIN, "3b7fffffffffffffff"),
    ];
    for &(i, h) in cases {
        assert_eq!(hex(&encode(&Value::Int(i))), h, "{}", i);
        assert_eq!(decode(&unhex(h)).unwrap(), Value::Int(i), "{}", h);
    }
    // Non-shortest heads decode; -2^63-1 and 2^63 do not fit.
    assert_eq!(decode(&unhex("1800")).unwrap(), Value::Int(0));
    assert_eq!(decode(&unhex("3b0000000000000000")).unwrap(), Value::Int(-1));
    assert!(decode(&unhex("1b8000000000000000")).is_err());
    assert!(decode(&unhex("3b8000000000000000")).is_err());
}

#[test]
fn floats() {
    let cases: &[(f64, &str)] = &[
        (0.0, "f90000"),
        (-0.0, "f98000"),
        (1.0, "f93c00"),
        (1.5, "f93e00"),
        (-2.0, "f9c000"),
        (65504.0, "f97bff"),
        (5.960464477539063e-8, "f90001"), // smallest float16 subnormal
        (6.097555160522461e-5, "f903ff"), // largest float16 subnormal
        (6.103515625e-05, "f90400"),      // smallest float16 normal
        (65536.0, "fa47800000"),
        (100000.0, "fa47c35000"),
        (3.4028234663852886e38, "fa7f7fffff"),
        (1.401298464324817e-45, "fa00000001"),
        (0.1, "fb3fb999999999999a"),
        (1.0e300, "fb7e37e43c8800759c"),
        (f64::INFINITY, "f97c00"),
        (f64::NEG_INFINITY, "f9fc00"),
        (f64::MIN_POSITIVE, "fb0010000000000000"),
    ];
    for &(f, h) in cases {
        assert_eq!(hex(&encode(&Value::Float(f))), h, "{:e}", f);
        match decode(&unhex(h)).unwrap() {
            Value::Float(g) => assert_eq!(g.to_bits(), f.to_bits(), "{}", h),
            v => panic!("{}: {:?}", h, v),
        }
    }
    for nan in [f64::NAN, -f64::NAN, f64::from_bits(0x7ff0_0000_0000_0001)] {
        assert_eq!(hex(&encode(&Value::Float(nan))), "f97e00");
    }
    for h in ["f97e01", "fa7fc00001", "fb7ff8000000000001"] {
        match decode(&unhex(h)).unwrap() {
            Value::Float(g) => assert!(g.is_nan(), "{}", h),
            v => panic!("{}: {:?}", h, v),
        }
    }
    // Ints and floats stay distinct.
    assert_ne!(encode(&Value::Int(5)), encode(&Value::Float(5.0)));
}

#[test]
fn strings_and_containers() {
    assert_eq!(hex(&encode(&Value::from("hi"))), "626869");
    assert_eq!(hex(&encode(&Value::Bytes(b"hi".to_vec()))), "426869");
    let long = "x".repeat(300);
    let e = encode(&Value::from(long.as_str()));
    assert_eq!(hex(&e[..3]), "79012c");
    assert_eq!(decode(&e).unwrap(), Value::from(long.as_str()));
    // Key order: shorter first, then bytewise (not BTreeMap's order).
    let m = map(vec![("b", Value::Int(1)), ("aa", Value::Int(2)), ("a", Value::Int(3)), ("B", Value::Int(4))]);
    assert_eq!(hex(&encode(&m)), "a461420461610361620162616102");
    // Indefinite lengths decode, and re-encode definite.
    assert_eq!(hex(&encode(&decode(&unhex("9f 01 9f ff ff")).unwrap())), "820180");
    assert_eq!(hex(&encode(&decode(&unhex("bf 61 61 01 ff")).unwrap())), "a1616101");
    assert_eq!(decode(&unhex("7f 62 6869 61 21 ff")).unwrap(), Value::from("hi!"));
    assert_eq!(decode(&unhex("5f 41 01 40 42 0203 ff")).unwrap(), Value::Bytes(vec![1, 2, 3]));
}

#[test]
fn round_trip() {
    let mut inner = BTreeMap::new();
    inner.insert("é".to_string(), Value::Array(vec![Value::Null, Value::Bool(false), Value::Bool(true)]));
    inner.insert(String::new(), Value::Bytes(vec![]));
    let v = Value::Array(vec![
        Value::Int(0),
        Value::Int(-1_000_000),
        Value::Float(2.5),
        Value::Float(-1.0e-300),
        Value::from(""),
        Value::from("日本"),
        Value::Bytes((0..=255).collect()),
        Value::Map(inner),
        Value::Array(vec![]),
        Value::Map(BTreeMap::new()),
    ]);
    let b = encode(&v);
    assert_eq!(decode(&b).unwrap(), v);
    assert_eq!(encode(&decode(&b).unwrap()), b);
    let (w, n) = decode_prefix(&[b.as_slice(), &[0xff, 0xff]].concat()).unwrap();
    assert_eq!((w, n), (v, b.len()));
}

#[test]
fn depth_limit() {
    let nest = |n: usize| {
        let mut b = vec![0x81u8; n];
        b.push(0x01);
        b
    };
    assert!(decode(&nest(MAX_DEPTH)).is_ok());
    let e = decode(&nest(MAX_DEPTH + 1)).unwrap_err();
    assert!(e.message.contains("nesting"), "{}", e);
    // Deep input never overflows the stack: the limit stops it first.
    assert!(decode(&vec![0x81u8; 100_000]).is_err());
    let mut maps = Vec::new();
    for _ in 0..=MAX_DEPTH {
        maps.extend_from_slice(&[0xa1, 0x61, b'k']);
    }
    maps.push(0xf6);
    assert!(decode(&maps).is_err());
}

#[test]
fn malformed() {
    let cases = [
        ("", "EOF"),
        ("18", "EOF"),
        ("62 61", "EOF"),
        ("83 01 02", "EOF"),
        ("9f 01", "EOF"),
        ("a1 61 61", "EOF"),
        ("5f 41", "EOF"),
        ("1c", "reserved"),
        ("5d", "reserved"),
        ("fc", "reserved"),
        ("ff", "break"),
        ("f7", "undefined"),
        ("f0", "simple value"),
        ("f8 20", "simple value"),
        ("c0 00", "tag"),
        ("a1 01 02", "not text"),
        ("a1 41 61 02", "not text"),
        ("a2 61 61 01 61 61 02", "duplicate"),
        ("bf 61 61 01 61 61 02 ff", "duplicate"),
        ("62 c3 28", "UTF-8"),
        ("7f 61 c3 61 a9 ff", "UTF-8"), // a character split across chunks
        ("5f 61 61 ff", "chunk"),
        ("5f 5f ff ff", "chunk"),
        ("05 05", "extraneous"),
        ("1f", "indefinite-length integer"),
        // Lengths far beyond the input fail without allocating them.
        ("5b ffffffffffffffff", "EOF"),
        ("7a ffffffff", "EOF"),
        ("9b 0000000001000000", "EOF"),
        ("9b ffffffffffffffff", "elements"),
        ("bb ffffffffffffffff", "elements"),
    ];
    for (h, want) in cases {
        match decode(&unhex(h)) {
            Ok(v) => panic!("decode({}) = {:?}, want an error containing {:?}", h, v, want),
            Err(e) => assert!(e.message.contains(want), "decode({}): {}, want {:?}", h, e, want),
        }
    }
}

#[test]
fn never_panics_on_truncations_and_flips() {
    // Every prefix and every single-byte corruption of a rich value either
    // decodes or errs; none panics.
    let v = decode(&unhex(
        "a3646b6e6f7468646573637269626566636f6e666967a2656c6162656c6568656c6c6f657363616c65f9380066696e70757473a26178a2616162c3a9627a7a01656974656d73870121f941006178420001f6f5",
    ))
    .unwrap();
    let b = encode(&v);
    for n in 0..b.len() {
        assert!(decode(&b[..n]).is_err());
    }
    for i in 0..b.len() {
        for x in [0x01u8, 0x20, 0x80, 0xff] {
            let mut c = b.clone();
            c[i] ^= x;
            let _ = decode(&c);
        }
    }
}
