// Package cas is pirn's content addressing: one canonical encoding of values,
// the digests written over it, and the Store that holds values by digest.
//
// # The canonical encoding
//
// Every value pirn hashes or stores is encoded as deterministic CBOR (RFC 8949
// §4.2.1, "core deterministic encoding"): definite lengths only, integers and
// lengths in their shortest form, floating-point numbers in the shortest of
// float16/32/64 that represents them exactly, and map entries sorted by the
// bytewise order of their encoded keys. The data model is the intersection of
// CBOR and what every knot language can represent:
//
//   - null, booleans;
//   - integers in the int64 range (5 and 5.0 are different values);
//   - IEEE 754 floats (every NaN is the one quiet NaN 0xf97e00; -0.0 and 0.0
//     are different values);
//   - text (valid UTF-8) and bytes (a text "hi" and the bytes "hi" differ);
//   - arrays (order matters) and maps with text keys (order never matters).
//
// Tags, undefined and other simple values are refused. The rules are
// normative in docs/abi.md and checked by the vectors in testdata/.
//
// # Digests
//
// A [Digest] is the SHA-256 of a value's canonical encoding, written
// "sha256:<64 lowercase hex>".
//
// # Stores
//
// A [Store] holds canonical encodings by digest ([Memory], [Disk]). Lineage
// references values only by digest, so values may be deleted from a store
// without losing the lineage graph.
package cas
