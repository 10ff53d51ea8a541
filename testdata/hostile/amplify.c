/*
 * amplify: knots whose outputs are small as CBOR and enormous as the Go
 * values a host might decode them into, for the hostile-module suite
 * (docs/security.md): an empty list is one byte of CBOR and a boxed slice
 * header (40 bytes and more) of Go.
 *
 *   empties(n: int) -> list      a canonical list of n empty lists
 *   loose(n: int) -> list        the same list with each element's head
 *                                in a longer form than canonical, which the
 *                                host must re-encode
 *   sum(xs: list[int]) -> int    a knot whose input the host must check
 *   one() -> int                 1: a healthy knot beside the others
 *
 * Build (make wasm does this): see the Makefile's C_HOSTILE rule.
 */
#define PIRN_IMPLEMENTATION
#include "pirn.h"

static int empties(pirn_call *c) {
    int64_t n;
    if (pirn_get_int(c, "n", &n) != PIRN_OK)
        return PIRN_OK;
    pirn_writer *w = pirn_ok_begin(c);
    pirn_enc_array(w, (size_t)n);
    for (int64_t i = 0; i < n; i++)
        pirn_enc_array(w, 0);
    return pirn_ok_end(c);
}

static int loose(pirn_call *c) {
    int64_t n;
    if (pirn_get_int(c, "n", &n) != PIRN_OK)
        return PIRN_OK;
    pirn_writer *w = pirn_ok_begin(c);
    pirn_enc_array(w, (size_t)n);
    for (int64_t i = 0; i < n; i++)
        pirn_enc_raw(w, "\x98\x00", 2); /* an empty list, its length in a byte of its own */
    return pirn_ok_end(c);
}

static int sum(pirn_call *c) {
    int64_t *xs;
    size_t n;
    if (pirn_get_int_list(c, "xs", &xs, &n) != PIRN_OK)
        return PIRN_OK;
    int64_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += xs[i];
    return pirn_ok_int(c, s);
}

static int one(pirn_call *c) { return pirn_ok_int(c, 1); }

static const pirn_knot knots[] = {
    {.name = "empties", .doc = "Returns a list of n empty lists.", .fn = empties, .output = "list",
     .inputs = PIRN_INPUTS(PIRN_IN("n", "int", "how many"))},
    {.name = "loose", .doc = "Returns a list of n empty lists, not in canonical form.", .fn = loose, .output = "list",
     .inputs = PIRN_INPUTS(PIRN_IN("n", "int", "how many"))},
    {.name = "sum", .doc = "Returns the sum of xs.", .fn = sum, .output = "int",
     .inputs = PIRN_INPUTS(PIRN_IN("xs", "list[int]", "the terms"))},
    {.name = "one", .doc = "Returns 1.", .fn = one, .output = "int"},
};

PIRN_MODULE("amplify", knots);
