/*
 * flood: knots that log without end in the cheapest ways, for the
 * hostile-module suite (docs/security.md). Limits on log bytes alone do not
 * stop them: each record costs the host its metadata whatever its size.
 *
 *   empty() -> int        pirn.log of zero bytes, forever
 *   byte() -> int         pirn.log of one byte, forever
 *   newlines() -> int     "\n" to stdout, forever: an empty line each
 *   one() -> int          1: a healthy knot beside the others
 *
 * Build (make wasm does this): see the Makefile's C_HOSTILE rule.
 */
#define PIRN_IMPLEMENTATION
#include "pirn.h"

#include <unistd.h>

static int empty(pirn_call *c) {
    for (;;)
        pirn_log_text(PIRN_LOG_INFO, "", 0);
    return pirn_ok_int(c, 0);
}

static int byte(pirn_call *c) {
    for (;;)
        pirn_log_text(PIRN_LOG_INFO, "x", 1);
    return pirn_ok_int(c, 0);
}

static int newlines(pirn_call *c) {
    for (;;)
        if (write(1, "\n", 1) < 0)
            break;
    return pirn_err(c, "WriteFailed", "stdout refused a write");
}

static int one(pirn_call *c) { return pirn_ok_int(c, 1); }

static const pirn_knot knots[] = {
    {.name = "empty", .doc = "Logs zero bytes, forever.", .fn = empty, .output = "int"},
    {.name = "byte", .doc = "Logs one byte, forever.", .fn = byte, .output = "int"},
    {.name = "newlines", .doc = "Writes empty lines to stdout, forever.", .fn = newlines, .output = "int"},
    {.name = "one", .doc = "Returns 1.", .fn = one, .output = "int"},
};

PIRN_MODULE("flood", knots);
