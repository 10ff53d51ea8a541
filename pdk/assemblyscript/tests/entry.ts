// The test module: knots for the request vectors, and exports that drive
// the codec from tests/pdk.test.mjs through the same pirn.* imports.

import {
  register, input, optional, rest, ok, err, skip, Request, Response, Value, DictValue, Knot,
  decodeAt, Encoder, manifestValue, parseType, coerce, logInfo,
} from "../assembly";
import { hostInput, hostOutput } from "../assembly/host";
export { pirn_abi_version, pirn_manifest, pirn_invoke } from "../assembly";

// request-add.cbor
register("add", "Returns a+b.", [input("a", "int"), input("b", "int")], "int",
  (req: Request): Response => ok(Value.int(req.int("a") + req.int("b"))));

// request-mixed.cbor: what was decoded, in diagnostic notation.
register("describe", "Describes its inputs.",
  [input("items", "list"), input("x", "dict"), input("label", "str"), input("scale", "float")], "str",
  (req: Request): Response => ok(Value.str(
    "items=" + req.value("items").toString() + " x=" + req.value("x").toString() +
    " label=" + req.value("label").toString() + " scale=" + req.value("scale").toString())));

// Every input back, as a dict.
register("echo", "Returns its inputs as a dict.", [], "dict",
  (req: Request): Response => ok(rest(req))).withRest("any");

// Typed getters after the PDK's coercion to declared types.
register("typed", "Typed getters.",
  [input("n", "int"), input("f", "float"), input("s", "str"), optional("flag", "bool"), optional("xs", "list[float]")], "dict",
  (req: Request): Response => {
    const d = new DictValue()
      .setInt("n", req.int("n"))
      .setFloat("f", req.float("f"))
      .setStr("s", req.str("s"))
      .setBool("flag", req.boolOr("flag", false));
    if (req.has("xs")) {
      const xs = req.floats("xs");
      let t = 0.0;
      for (let i = 0; i < xs.length; i++) t += xs[i];
      d.setFloat("sum", t);
    }
    return ok(d);
  });

// A getter that does not fit the value: the PDK answers with its InputError.
register("lax", "Reads x as an int whatever it is declared.", [input("x", "any")], "int",
  (req: Request): Response => {
    const x = req.int("x");
    return ok(Value.int(x + 1));
  });

register("fail", "Errs.", [], "null",
  (req: Request): Response => err("ValueError", "boom").withDetail(new DictValue().setInt("code", 7)));

register("skipper", "Skips.", [], "null",
  (req: Request): Response => skip("nothing to do"));

register("crash", "Aborts.", [], "null",
  (req: Request): Response => {
    const xs: i32[] = [];
    return ok(Value.int(xs[3])); // out of range: abort, then trap
  });

register("noisy", "Logs.", [input("x", "int")], "int",
  (req: Request): Response => {
    logInfo("noisy got x=" + req.int("x").toString());
    return ok(Value.int(req.int("x")));
  });

register("range", "Returns [0.5, 1.5, ...] (n floats).", [input("n", "int")], "list[float]",
  (req: Request): Response => {
    const n = <i32>req.int("n");
    const xs = new Array<f64>(n);
    for (let i = 0; i < n; i++) xs[i] = <f64>i + 0.5;
    return ok(Value.floats(xs));
  });

// ---------------------------------------------------------------------------
// Codec exports. Each reads its input with pirn.input and answers with
// exactly one pirn.output; 0 means success, 1 that the output is an error
// message.

let buf = new ArrayBuffer(0);

function read(n: i32): usize {
  if (buf.byteLength < n) buf = new ArrayBuffer(n);
  const p = changetype<usize>(buf);
  if (n > 0) hostInput(p);
  return p;
}

function emit(e: Encoder): void {
  hostOutput(e.dataStart, <usize>e.len);
}

function emitText(s: string): void {
  const b = String.UTF8.encode(s);
  hostOutput(changetype<usize>(b), <usize>b.byteLength);
}

/** Decodes n bytes and writes them back canonically, or the error. */
export function test_canonical(n: i32): i32 {
  const d = decodeAt(read(n), n);
  if (!d.ok) {
    emitText(d.error!);
    return 1;
  }
  const e = new Encoder();
  e.value(d.value);
  emit(e);
  return 0;
}

/** Input [type, value]: the value coerced to type, canonically, or the error. */
export function test_coerce(n: i32): i32 {
  const d = decodeAt(read(n), n);
  if (!d.ok) {
    emitText(d.error!);
    return 1;
  }
  const pair = d.value.asList();
  const t = parseType(pair.at(0).asStr());
  if (t.error !== null) {
    emitText(t.error!);
    return 1;
  }
  const c = coerce(t.type, pair.at(1));
  if (!c.ok) {
    emitText(c.error!);
    return 1;
  }
  const e = new Encoder();
  e.value(c.value);
  emit(e);
  return 0;
}

/** Input: a type expression as CBOR text; output its canonical spelling or the error. */
export function test_type(n: i32): i32 {
  const d = decodeAt(read(n), n);
  const t = parseType(d.value.asStr());
  if (t.error !== null) {
    emitText(t.error!);
    return 1;
  }
  emitText(t.type.toString());
  return 0;
}

/** The responses of abi/testdata/response-*.cbor, by index. */
export function test_response(which: i32): i32 {
  let r: Response;
  switch (which) {
    case 0: r = ok(Value.int(15)); break; // response-ok.cbor
    case 1: r = ok(new DictValue().setInt("sum", 3).set("items", Value.ints([1, 2]))); break; // response-ok-map.cbor
    case 2: r = ok(Value.nil()); break; // response-ok-null.cbor
    case 3: // response-err.cbor
      r = err("ValueError", "boom").withDetail(new DictValue().setInt("code", 7)).withTrace("main.go:3");
      break;
    default: r = skip("nothing to do"); // response-skip.cbor
  }
  const e = new Encoder();
  r.encode(e);
  emit(e);
  return 0;
}

function unused(req: Request): Response {
  return err("Unused", "");
}

/** The manifest of abi/testdata/manifest.cbor, built from unregistered knots. */
export function test_manifest(): i32 {
  const ks: Knot[] = [
    new Knot("double", "Returns 2x.", [input("x", "int")], "int", unused),
    new Knot("add", "Returns a+b.", [input("a", "int"), input("b", "int")], "int", unused),
    new Knot("sum", "Sums every input.", [], "int", unused).withRest("int"),
  ];
  const e = new Encoder();
  e.value(manifestValue("arith", ks));
  emit(e);
  return 0;
}
