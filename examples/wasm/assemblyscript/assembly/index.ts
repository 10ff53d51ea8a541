// geo.wasm: geometry knots for pirn, written with the AssemblyScript PDK
// (pdk/assemblyscript). Build: make wasm (npm ci, then npm run build).
//
//   distance(a: list[float], b: list[float]) -> float    Euclidean; ValueError if the dimensions differ
//   norm(v: list[float]) -> float                        Euclidean length
//   centroid(points: list[list[float]]) -> list[float]   mean point; ValueError if empty or ragged
//   bbox(points: list[list[float]]) -> dict[list[float]] {"min": [...], "max": [...]}
//   round(x: float, digits?: int) -> float               half away from zero, digits in -15..15 (default 0)
//   clamp(x: float, lo: float, hi: float) -> float       ValueError if lo > hi
//   finite(x: float) -> float                            x, or a skip if x is NaN or infinite

import { register, input, optional, ok, err, skip, setModuleName, Request, Response, Value, ListValue, DictValue } from "pirn-pdk-as";
export { pirn_abi_version, pirn_manifest, pirn_invoke } from "pirn-pdk-as";

setModuleName("geo");

register("distance", "Returns the Euclidean distance between points a and b.",
  [input("a", "list[float]", "a point"), input("b", "list[float]", "a point of the same dimension")],
  "float",
  (req: Request): Response => {
    const a = req.floats("a"), b = req.floats("b");
    if (a.length != b.length) {
      return err("ValueError", "a has " + a.length.toString() + " coordinates, b has " + b.length.toString());
    }
    let s = 0.0;
    for (let i = 0; i < a.length; i++) {
      const d = a[i] - b[i];
      s += d * d;
    }
    return ok(Value.float(Math.sqrt(s)));
  });

register("norm", "Returns the Euclidean length of vector v.",
  [input("v", "list[float]", "a vector")],
  "float",
  (req: Request): Response => {
    const v = req.floats("v");
    let s = 0.0;
    for (let i = 0; i < v.length; i++) s += v[i] * v[i];
    return ok(Value.float(Math.sqrt(s)));
  });

// Points is a list of points of one dimension, or the err to answer with.
class Points {
  rows: ListValue[] = [];
  dim: i32 = 0;
  problem: Response | null = null;
}

function readPoints(req: Request, name: string): Points {
  const out = new Points();
  const items = req.list(name); // declared list[list[float]]: already checked and coerced
  if (items.length == 0) {
    out.problem = err("ValueError", name + " is empty");
    return out;
  }
  for (let i = 0; i < items.length; i++) {
    const p = items[i].asList();
    if (i == 0) out.dim = p.length;
    if (p.length != out.dim) {
      out.problem = err("ValueError", "point " + i.toString() + " has " + p.length.toString() +
        " coordinates, point 0 has " + out.dim.toString());
      return out;
    }
    out.rows.push(p);
  }
  return out;
}

register("centroid", "Returns the mean of points, which must share one dimension.",
  [input("points", "list[list[float]]", "one or more points")],
  "list[float]",
  (req: Request): Response => {
    const ps = readPoints(req, "points");
    if (ps.problem !== null) return ps.problem!;
    const c = new Array<f64>(ps.dim).fill(0);
    for (let i = 0; i < ps.rows.length; i++) {
      const p = ps.rows[i];
      for (let j = 0; j < ps.dim; j++) c[j] += p.floatAt(j);
    }
    for (let j = 0; j < ps.dim; j++) c[j] /= <f64>ps.rows.length;
    return ok(Value.floats(c));
  });

register("bbox", "Returns the bounding box of points as {\"min\": [...], \"max\": [...]}.",
  [input("points", "list[list[float]]", "one or more points")],
  "dict[list[float]]",
  (req: Request): Response => {
    const ps = readPoints(req, "points");
    if (ps.problem !== null) return ps.problem!;
    const lo = ps.rows[0].toFloats(), hi = ps.rows[0].toFloats();
    for (let i = 1; i < ps.rows.length; i++) {
      const p = ps.rows[i];
      for (let j = 0; j < ps.dim; j++) {
        lo[j] = Math.min(lo[j], p.floatAt(j));
        hi[j] = Math.max(hi[j], p.floatAt(j));
      }
    }
    return ok(new DictValue().set("min", Value.floats(lo)).set("max", Value.floats(hi)));
  });

register("round", "Rounds x half away from zero to digits decimal places (default 0; negative rounds to tens, hundreds, ...).",
  [input("x", "float"), optional("digits", "int", "decimal places, -15..15")],
  "float",
  (req: Request): Response => {
    const x = req.float("x");
    const digits = req.intOr("digits", 0);
    if (digits < -15 || digits > 15) return err("ValueError", "digits = " + digits.toString() + ", want -15..15");
    if (!isFinite(x)) return ok(Value.float(x));
    const p = Math.pow(10, <f64>abs(digits));
    let r: f64;
    if (digits >= 0) {
      const y = x * p;
      if (!isFinite(y)) return ok(Value.float(x)); // already more precise than a float can hold
      r = roundHalfAway(y) / p;
    } else {
      r = roundHalfAway(x / p) * p;
    }
    return ok(Value.float(r));
  });

function roundHalfAway(y: f64): f64 {
  const t = Math.trunc(y);
  if (Math.abs(y - t) >= 0.5) return t + (y < 0 ? -1.0 : 1.0);
  return t;
}

register("clamp", "Returns x limited to the interval [lo, hi].",
  [input("x", "float"), input("lo", "float", "lower bound"), input("hi", "float", "upper bound, at least lo")],
  "float",
  (req: Request): Response => {
    const x = req.float("x"), lo = req.float("lo"), hi = req.float("hi");
    if (!(lo <= hi)) return err("ValueError", "lo = " + lo.toString() + " is above hi = " + hi.toString());
    return ok(Value.float(x < lo ? lo : x > hi ? hi : x));
  });

register("finite", "Returns x if it is finite; skips if it is NaN or infinite.",
  [input("x", "float")],
  "float",
  (req: Request): Response => {
    const x = req.float("x");
    if (isNaN(x)) return skip("x is NaN");
    if (!isFinite(x)) return skip(x > 0 ? "x is +Inf" : "x is -Inf");
    return ok(Value.float(x));
  });
