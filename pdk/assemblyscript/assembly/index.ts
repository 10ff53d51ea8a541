// pirn-pdk-as: write pirn knots in AssemblyScript. See ../README.md.
//
// A knot module's entry file registers its knots at top level and
// re-exports the ABI's entry points:
//
//   import { register, input, ok, err, skip, Request, Response, Value } from "pirn-pdk-as/assembly";
//   export { pirn_abi_version, pirn_manifest, pirn_invoke } from "pirn-pdk-as/assembly";
//
//   register("double", "Returns 2x.", [input("x", "int")], "int",
//     (req: Request): Response => ok(Value.int(2 * req.int("x"))));

export { Value, Kind, kindName, BoolValue, IntValue, FloatValue, StrValue, BytesValue, ListValue, DictValue, NULL, TRUE, FALSE } from "./value";
export { Encoder, Decoder, Decoded, encode, decode, decodeAt, utf8, compareKeys, halfExact, halfToFloat, validUTF8, MAX_NESTED_LEVELS, MAX_ELEMENTS } from "./cbor";
export { Type, TypeKind, ParsedType, parseType, Coerced, coerce, matches } from "./types";
export { Response, Outcome, ok, err, skip } from "./response";
export { Request, DecodedRequest, decodeRequest } from "./request";
export { Knot, Input, Handler, input, optional, register, rest, setModuleName, registered, findKnot, manifest, manifestValue, invoke, validKnotName, validInputName, ABI_VERSION, pirn_abi_version, pirn_manifest, pirn_invoke } from "./knot";
export { log, logDebug, logInfo, logWarn, logError, Level, __pirn_abort, __pirn_trace, __pirn_seed } from "./host";
