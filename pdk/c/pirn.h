/*
 * pirn.h — the C plug-in development kit for pirn knots (ABI version 1).
 *
 * A single-header library: include it anywhere, and in exactly one .c file
 * define PIRN_IMPLEMENTATION before including it:
 *
 *     #define PIRN_IMPLEMENTATION
 *     #include "pirn.h"
 *
 *     static int upper(pirn_call *c) {
 *         const char *s; size_t n;
 *         PIRN_TRY(pirn_get_text(c, "s", &s, &n));
 *         char *out = pirn_alloc(c, n);        // freed after the invocation
 *         for (size_t i = 0; i < n; i++)
 *             out[i] = (s[i] >= 'a' && s[i] <= 'z') ? s[i] - 32 : s[i];
 *         return pirn_ok_text(c, out, n);
 *     }
 *
 *     static const pirn_knot knots[] = {
 *         {.name = "upper", .doc = "Upper-cases s.", .fn = upper, .output = "str",
 *          .inputs = PIRN_INPUTS(PIRN_IN("s", "str", "the text"))},
 *     };
 *     PIRN_MODULE("text", knots);
 *
 * Build it as a WASI reactor (see README.md):
 *
 *     clang --target=wasm32-wasi -mexec-model=reactor -mbulk-memory -O2 \
 *         text.c -o text.wasm -nodefaultlibs -lc -Wl,--strip-debug
 *
 * What the PDK does for you: the exports of docs/abi.md §1.1, the
 * manifest (§3) from the knot table, decoding the request (§2.1), checking
 * that every required input is bound and no undeclared one is (unless the
 * knot has `rest`), typed getters that turn a bad input into an
 * "InputError" err response, and encoding the response (§2.2) in canonical
 * CBOR (§4). An ok value is checked before it is handed to the host: a
 * value that is not canonical CBOR in the data model becomes an
 * "OutputError" err instead of an ABI violation.
 *
 * Memory: everything the PDK allocates for an invocation, and everything a
 * knot gets from pirn_alloc, is freed when the invocation ends. Running out
 * of memory traps (the host then reports MemoryLimit); pirn_alloc never
 * returns NULL.
 *
 * Errors: functions that can fail return 0 (PIRN_OK) or a negative PIRN_E_*
 * code; pirn_strerror names it. Readers and writers keep their first error
 * ("sticky"): after it every call is a no-op returning it, so a sequence of
 * calls can be checked once at the end.
 *
 * Natively (not __wasm__) the header compiles without the wasm imports and
 * exports, so knots and the PDK can be unit-tested with the host's
 * compiler: pirn_handle runs one request through a module's knots. Define
 * PIRN_NATIVE to get that under wasm too (tests run as a WASI command).
 *
 * This file is C99; it needs only the C library (malloc, string.h; and
 * vsnprintf for pirn_errf and pirn_logf, linked only if used).
 */
#ifndef PIRN_H
#define PIRN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__wasm__) && !defined(PIRN_NATIVE)
#define PIRN__WASM 1 /* a knot module: the pirn imports and the exports */
#endif

#define PIRN_ABI_VERSION 1
#define PIRN_MAX_DEPTH 64               /* levels of nested arrays and maps */
#define PIRN_MAX_ELEMENTS (1ul << 24)   /* elements of one array or map */
#define PIRN_INDEFINITE SIZE_MAX        /* count of an indefinite-length array or map */

#if defined(__GNUC__) || defined(__clang__)
#define PIRN__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define PIRN__PRINTF(f, a)
#endif

/* ---- Status codes ------------------------------------------------------ */

enum {
    PIRN_OK = 0,
    PIRN_E_TRUNCATED = -1,    /* unexpected end of data */
    PIRN_E_MALFORMED = -2,    /* not well-formed CBOR */
    PIRN_E_TYPE = -3,         /* the item is not of the wanted type */
    PIRN_E_OVERFLOW = -4,     /* integer outside the int64 range */
    PIRN_E_DEPTH = -5,        /* nested deeper than PIRN_MAX_DEPTH */
    PIRN_E_UNSUPPORTED = -6,  /* tag, undefined or other simple value */
    PIRN_E_UTF8 = -7,         /* text is not valid UTF-8 */
    PIRN_E_KEY = -8,          /* map key is not text */
    PIRN_E_DUPKEY = -9,       /* duplicate map key */
    PIRN_E_LIMIT = -10,       /* more than PIRN_MAX_ELEMENTS elements */
    PIRN_E_TRAILING = -11,    /* bytes after the value */
    PIRN_E_NONCANONICAL = -12,/* well-formed but not canonical (docs/abi.md §4) */
    PIRN_E_INDEFINITE = -13,  /* indefinite-length string where a definite one is needed */
    PIRN_E_MISSING = -14,     /* the input is not bound */
    PIRN_E_VALUE = -15,       /* a value the function cannot accept */
    PIRN_E_OUTCOME = -16      /* the invocation's outcome was already set */
};

/* pirn_strerror describes a status code. */
const char *pirn_strerror(int err);

/* ---- Value types ------------------------------------------------------- */

typedef enum pirn_type {
    PIRN_T_NONE = 0,  /* end of data, a break, or an item outside the data model */
    PIRN_T_INT,
    PIRN_T_FLOAT,
    PIRN_T_BOOL,
    PIRN_T_NULL,
    PIRN_T_TEXT,
    PIRN_T_BYTES,
    PIRN_T_ARRAY,
    PIRN_T_MAP
} pirn_type;

/* pirn_type_name returns the ABI name of a type: "int", "str", "list", ... */
const char *pirn_type_name(pirn_type t);

/* ---- CBOR reader ------------------------------------------------------- */

/* A cursor over an encoded buffer. Every read is bounds-checked and
 * advances past the item on success; on failure the cursor stays put and
 * the error sticks (r->err). */
typedef struct pirn_reader {
    const uint8_t *buf;
    size_t len, pos;
    int err;
} pirn_reader;

void pirn_dec_init(pirn_reader *r, const void *buf, size_t len);
/* pirn_dec_peek returns the type of the next item without consuming it. */
pirn_type pirn_dec_peek(const pirn_reader *r);
int pirn_dec_null(pirn_reader *r);
int pirn_dec_bool(pirn_reader *r, bool *out);
int pirn_dec_int(pirn_reader *r, int64_t *out);
/* pirn_dec_float reads a float of any width, or an int converted to double. */
int pirn_dec_float(pirn_reader *r, double *out);
/* Text and bytes point into the buffer (text is checked UTF-8, and is not
 * NUL-terminated). Indefinite-length strings give PIRN_E_INDEFINITE
 * (the host never sends them: requests are canonical). */
int pirn_dec_text(pirn_reader *r, const char **s, size_t *n);
int pirn_dec_bytes(pirn_reader *r, const uint8_t **p, size_t *n);
/* Container headers: *n is the element (array) or pair (map) count, or
 * PIRN_INDEFINITE. Iterate with pirn_dec_next, which handles both:
 *
 *     size_t n;
 *     pirn_dec_array(&r, &n);
 *     while (pirn_dec_next(&r, &n)) pirn_dec_float(&r, &x);   // or key, value for a map
 *     if (r.err) ...
 */
int pirn_dec_array(pirn_reader *r, size_t *n);
int pirn_dec_map(pirn_reader *r, size_t *n);
bool pirn_dec_next(pirn_reader *r, size_t *remaining);
/* pirn_dec_skip skips one well-formed item (nesting at most PIRN_MAX_DEPTH). */
int pirn_dec_skip(pirn_reader *r);
/* pirn_dec_end returns PIRN_OK if the whole buffer was consumed. */
int pirn_dec_end(pirn_reader *r);

/* ---- CBOR writer ------------------------------------------------------- */

/* A growable output buffer. Zero-initialise it (PIRN_WRITER_INIT) and free
 * it with pirn_enc_free. Integers, lengths and floats are written in their
 * shortest canonical form; text must be valid UTF-8. */
typedef struct pirn_writer {
    uint8_t *buf;
    size_t len, cap;
    int err;
} pirn_writer;

#define PIRN_WRITER_INIT {NULL, 0, 0, 0}

void pirn_enc_free(pirn_writer *w);
void pirn_enc_reset(pirn_writer *w);   /* empty it and clear its error */
int pirn_enc_null(pirn_writer *w);
int pirn_enc_bool(pirn_writer *w, bool b);
int pirn_enc_int(pirn_writer *w, int64_t i);
/* pirn_enc_float writes the shortest of float16/32/64 that holds f exactly;
 * every NaN as f97e00. */
int pirn_enc_float(pirn_writer *w, double f);
int pirn_enc_text(pirn_writer *w, const char *s, size_t n);
int pirn_enc_str(pirn_writer *w, const char *s); /* NUL-terminated text */
int pirn_enc_bytes(pirn_writer *w, const void *p, size_t n);
/* Headers for containers of known size; map keys must then be written in
 * canonical order (shorter first, then bytewise) — or use begin/end. */
int pirn_enc_array(pirn_writer *w, size_t n);
int pirn_enc_map(pirn_writer *w, size_t n);
/* Containers of unknown size: mark = pirn_enc_begin(w), write the elements
 * (for a map: key, value, key, value, ... in any order), then end. The end
 * functions count the elements and insert the header; pirn_enc_end_map
 * also sorts the entries into canonical order and refuses duplicate or
 * non-text keys. They nest. */
size_t pirn_enc_begin(pirn_writer *w);
int pirn_enc_end_array(pirn_writer *w, size_t mark);
int pirn_enc_end_map(pirn_writer *w, size_t mark);
/* pirn_enc_text_space / _bytes_space write the header of a string of n
 * bytes and return where to put them (NULL if the writer has an error). */
char *pirn_enc_text_space(pirn_writer *w, size_t n);
uint8_t *pirn_enc_bytes_space(pirn_writer *w, size_t n);
/* pirn_enc_raw copies one well-formed encoded item verbatim. */
int pirn_enc_raw(pirn_writer *w, const void *p, size_t n);
/* pirn_enc_value copies the next item of r in canonical form: shortest
 * heads and floats, definite lengths, sorted map keys. It refuses what is
 * outside the data model (docs/abi.md §4). */
int pirn_enc_value(pirn_writer *w, pirn_reader *r);

/* pirn_canonicalize appends the canonical form of the single item in[0..n)
 * to out; on error out is left as it was (apart from its capacity). */
int pirn_canonicalize(const void *in, size_t n, pirn_writer *out);
/* pirn_check_canonical returns PIRN_OK if in[0..n) is exactly one item in
 * the data model, in canonical form. */
int pirn_check_canonical(const void *in, size_t n);
/* pirn_utf8_valid: well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
bool pirn_utf8_valid(const void *p, size_t n);

/* ---- Declaring knots --------------------------------------------------- */

typedef struct pirn_call pirn_call;
typedef int (*pirn_knot_fn)(pirn_call *c);

/* One named, typed input: {"name", "type", "doc", optional}. */
typedef struct pirn_input {
    const char *name;
    const char *type; /* a type of docs/abi.md §5: "int", "list[float]", ... */
    const char *doc;  /* optional (NULL) */
    bool optional;    /* may be left unbound */
} pirn_input;

/* A knot: its manifest entry and its function. */
typedef struct pirn_knot {
    const char *name;          /* 1-256 of A-Z a-z 0-9 _ . : - */
    const char *doc;           /* one line; optional */
    const pirn_input *inputs;  /* PIRN_INPUTS(...), or NULL for none */
    const char *output;        /* the output type */
    pirn_knot_fn fn;
    const char *rest;          /* type of any further named inputs; NULL for none */
} pirn_knot;

/* PIRN_INPUTS(PIRN_IN("a", "int", "left operand"), PIRN_OPT("b", "int", NULL))
 * is a static, {0}-terminated array of inputs: PIRN_IN declares a required
 * input, PIRN_OPT an optional one (name, type, doc or NULL). */
#define PIRN_INPUTS(...) ((const pirn_input[]){__VA_ARGS__, {NULL, NULL, NULL, false}})
#define PIRN_IN(NAME, TYPE, DOC) {(NAME), (TYPE), (DOC), false}
#define PIRN_OPT(NAME, TYPE, DOC) {(NAME), (TYPE), (DOC), true}

typedef struct pirn_module {
    const char *name;          /* informational; optional */
    const pirn_knot *knots;
    size_t n_knots;            /* entries; a {0} entry also ends the table */
} pirn_module;

/* PIRN_MODULE("name", table) defines the module `pirn_this_module` from a
 * knot table (an array, not a pointer) and, under wasm, the exports
 * pirn_abi_version, pirn_manifest and pirn_invoke. Use it once per module,
 * at file scope. */
#define PIRN_MODULE(NAME, TABLE)                                              \
    const pirn_module pirn_this_module = {(NAME), (TABLE),                    \
                                          sizeof(TABLE) / sizeof((TABLE)[0])}; \
    PIRN__EXPORTS                                                             \
    extern const pirn_module pirn_this_module

extern const pirn_module pirn_this_module;

/* pirn_manifest_encode writes the module's manifest (docs/abi.md §3). */
int pirn_manifest_encode(const pirn_module *m, pirn_writer *w);
/* pirn_handle runs one invocation: it decodes the request req[0..n), calls
 * the knot and replaces the contents of resp with the encoded response
 * (always a valid response: a malformed request gives an err of type
 * "PDKError"). It is what pirn_invoke does; natively it lets tests drive
 * knots. */
void pirn_handle(const pirn_module *m, const void *req, size_t n, pirn_writer *resp);

/* ---- Inside a knot: inputs -------------------------------------------- */

/* One bound value. name is NUL-terminated; value is its CBOR encoding. */
typedef struct pirn_arg {
    const char *name;
    size_t name_len;
    const uint8_t *value;
    size_t value_len;
    bool config; /* bound by the pipeline's config rather than a parent */
} pirn_arg;

/* PIRN_TRY(expr): return expr's status from the knot if it is not PIRN_OK. */
#define PIRN_TRY(expr)                      \
    do {                                    \
        int pirn__rc = (expr);              \
        if (pirn__rc != PIRN_OK)            \
            return pirn__rc;                \
    } while (0)

const char *pirn_knot_name(const pirn_call *c);
const pirn_knot *pirn_knot_spec(const pirn_call *c);
/* Every bound value: the inputs, then the config, each in canonical name order. */
size_t pirn_arg_count(const pirn_call *c);
const pirn_arg *pirn_arg_at(const pirn_call *c, size_t i);
/* pirn_find returns the value bound to name, or NULL. */
const pirn_arg *pirn_find(const pirn_call *c, const char *name);
bool pirn_has(const pirn_call *c, const char *name);
/* pirn_declared reports whether the knot's manifest entry declares name
 * (with `rest`, the others are the further inputs). */
bool pirn_declared(const pirn_call *c, const char *name);

/* Typed getters. On failure (missing, wrong type, malformed) they set the
 * invocation's outcome to an err of type "InputError" naming the knot and
 * the input, e.g. `knot "repeat": input "n": want int, got str`, and
 * return the error code, which the knot can return (PIRN_TRY does).
 * Ints: int only. Floats: float or int. Strings point into the request;
 * pirn_get_str copies into a NUL-terminated string (refusing text with a
 * NUL byte). Lists are allocated with pirn_alloc. pirn_get_value gives a
 * reader over the raw value, for anything else. */
int pirn_get_int(pirn_call *c, const char *name, int64_t *out);
int pirn_get_float(pirn_call *c, const char *name, double *out);
int pirn_get_bool(pirn_call *c, const char *name, bool *out);
int pirn_get_text(pirn_call *c, const char *name, const char **s, size_t *n);
int pirn_get_str(pirn_call *c, const char *name, const char **s);
int pirn_get_bytes(pirn_call *c, const char *name, const uint8_t **p, size_t *n);
int pirn_get_int_list(pirn_call *c, const char *name, int64_t **xs, size_t *n);
int pirn_get_float_list(pirn_call *c, const char *name, double **xs, size_t *n);
int pirn_get_value(pirn_call *c, const char *name, pirn_reader *r);
/* The same, on an arg from pirn_arg_at (for knots with `rest`). */
int pirn_arg_int(pirn_call *c, const pirn_arg *a, int64_t *out);
int pirn_arg_float(pirn_call *c, const pirn_arg *a, double *out);
int pirn_arg_bool(pirn_call *c, const pirn_arg *a, bool *out);
int pirn_arg_text(pirn_call *c, const pirn_arg *a, const char **s, size_t *n);
int pirn_arg_str(pirn_call *c, const pirn_arg *a, const char **s);
int pirn_arg_bytes(pirn_call *c, const pirn_arg *a, const uint8_t **p, size_t *n);
/* pirn_input_error sets an "InputError" about input name with message msg
 * (for checks of your own); it returns PIRN_E_VALUE. */
int pirn_input_error(pirn_call *c, const char *name, const char *msg);

/* pirn_alloc returns n bytes (aligned for any type) that live until the
 * invocation ends. It never returns NULL. */
void *pirn_alloc(pirn_call *c, size_t n);

/* ---- Inside a knot: the outcome ---------------------------------------- */

/* A knot sets exactly one outcome. The first one set wins; later calls
 * return PIRN_E_OUTCOME and change nothing (so an InputError from a getter
 * stands even if the knot goes on). These return PIRN_OK when they set the
 * outcome; return that from the knot. A knot that returns without setting
 * one errs: with type "Error" and pirn_strerror(rc) if it returned an
 * error code rc, else with type "PDKError". */
int pirn_ok_null(pirn_call *c);
int pirn_ok_bool(pirn_call *c, bool b);
int pirn_ok_int(pirn_call *c, int64_t i);
int pirn_ok_float(pirn_call *c, double f);
int pirn_ok_text(pirn_call *c, const char *s, size_t n);
int pirn_ok_str(pirn_call *c, const char *s);
int pirn_ok_bytes(pirn_call *c, const void *p, size_t n);
/* Any other value: write exactly one value to the writer pirn_ok_begin
 * returns, then call pirn_ok_end (returning from the knot also ends it). */
pirn_writer *pirn_ok_begin(pirn_call *c);
int pirn_ok_end(pirn_call *c);
/* err: type is a short class name ("ValueError"); message is free text. */
int pirn_err(pirn_call *c, const char *type, const char *message);
int pirn_errf(pirn_call *c, const char *type, const char *fmt, ...) PIRN__PRINTF(3, 4);
/* skip: the knot opts out; reason is non-empty. */
int pirn_skip(pirn_call *c, const char *reason);
/* After pirn_err or pirn_skip: a writer for one optional detail value. */
pirn_writer *pirn_detail(pirn_call *c);
/* After pirn_err: the guest's stack trace, if it has one. */
int pirn_trace(pirn_call *c, const char *trace);

/* ---- Logging ----------------------------------------------------------- */

enum { PIRN_LOG_DEBUG = 0, PIRN_LOG_INFO = 1, PIRN_LOG_WARN = 2, PIRN_LOG_ERROR = 3 };

/* A log line, recorded by the host tagged with the run and knot. */
void pirn_log(int level, const char *msg);
void pirn_log_text(int level, const char *msg, size_t n);
void pirn_logf(int level, const char *fmt, ...) PIRN__PRINTF(2, 3);

#ifndef PIRN__WASM
/* Natively, log lines go to this function if set (tests set it). */
extern void (*pirn_native_log)(int level, const char *msg, size_t n);
#endif

/* ---- The wasm exports -------------------------------------------------- */

#ifdef PIRN__WASM
int32_t pirn__export_manifest(const pirn_module *m);
int32_t pirn__export_invoke(const pirn_module *m, int32_t n);
#define PIRN__EXPORTS                                                          \
    __attribute__((export_name("pirn_abi_version"))) int32_t pirn_abi_version(void) { \
        return PIRN_ABI_VERSION;                                               \
    }                                                                          \
    __attribute__((export_name("pirn_manifest"))) int32_t pirn_manifest(void) { \
        return pirn__export_manifest(&pirn_this_module);                       \
    }                                                                          \
    __attribute__((export_name("pirn_invoke"))) int32_t pirn_invoke(int32_t n) { \
        return pirn__export_invoke(&pirn_this_module, n);                      \
    }
#else
#define PIRN__EXPORTS
#endif

#ifdef __cplusplus
}
#endif
#endif /* PIRN_H */

/* ======================================================================== */
/*                              Implementation                              */
/* ======================================================================== */

#ifdef PIRN_IMPLEMENTATION
#ifndef PIRN__IMPLEMENTED
#define PIRN__IMPLEMENTED

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef PIRN__WASM
__attribute__((import_module("pirn"), import_name("input"))) void pirn__host_input(void *ptr);
__attribute__((import_module("pirn"), import_name("output"))) void pirn__host_output(const void *ptr, uint32_t len);
__attribute__((import_module("pirn"), import_name("log"))) void pirn__host_log(int32_t level, const void *ptr, uint32_t len);
#else
void (*pirn_native_log)(int level, const char *msg, size_t n) = NULL;
#endif

/* Out of memory is fatal. Under wasm the module first grows its memory to
 * the host's limit, so that the host reports the trap that follows as
 * MemoryLimit rather than as a bare Trap (an allocation that does not fit
 * can fail well below the limit). */
static void pirn__oom(void) {
#ifdef PIRN__WASM
    for (size_t pages = 1u << 15; pages > 0; pages /= 2)
        while (__builtin_wasm_memory_grow(0, pages) != (size_t)-1) {
        }
    __builtin_trap();
#else
    abort();
#endif
}

static void *pirn__malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p)
        pirn__oom();
    return p;
}

const char *pirn_strerror(int err) {
    switch (err) {
    case PIRN_OK: return "ok";
    case PIRN_E_TRUNCATED: return "unexpected end of data";
    case PIRN_E_MALFORMED: return "malformed CBOR";
    case PIRN_E_TYPE: return "wrong type";
    case PIRN_E_OVERFLOW: return "integer outside the int64 range";
    case PIRN_E_DEPTH: return "nested deeper than 64 levels";
    case PIRN_E_UNSUPPORTED: return "item outside the data model (a tag, undefined or another simple value)";
    case PIRN_E_UTF8: return "text is not valid UTF-8";
    case PIRN_E_KEY: return "map key is not text";
    case PIRN_E_DUPKEY: return "duplicate map key";
    case PIRN_E_LIMIT: return "more than 2^24 elements in an array or map";
    case PIRN_E_TRAILING: return "trailing bytes after the value";
    case PIRN_E_NONCANONICAL: return "not in canonical form";
    case PIRN_E_INDEFINITE: return "indefinite-length string";
    case PIRN_E_MISSING: return "not bound";
    case PIRN_E_VALUE: return "invalid value";
    case PIRN_E_OUTCOME: return "the outcome was already set";
    }
    return "unknown error";
}

const char *pirn_type_name(pirn_type t) {
    switch (t) {
    case PIRN_T_INT: return "int";
    case PIRN_T_FLOAT: return "float";
    case PIRN_T_BOOL: return "bool";
    case PIRN_T_NULL: return "null";
    case PIRN_T_TEXT: return "str";
    case PIRN_T_BYTES: return "bytes";
    case PIRN_T_ARRAY: return "list";
    case PIRN_T_MAP: return "dict";
    case PIRN_T_NONE: break;
    }
    return "nothing";
}

/* ---- UTF-8 ------------------------------------------------------------- */

bool pirn_utf8_valid(const void *p, size_t n) {
    const uint8_t *s = (const uint8_t *)p;
    size_t i = 0;
    while (i < n) {
        /* ASCII eight bytes at a time: under an interruptible host every
         * loop iteration costs. */
        if (n - i >= 8) {
            uint64_t word;
            memcpy(&word, s + i, 8);
            if ((word & 0x8080808080808080ull) == 0) {
                i += 8;
                continue;
            }
        }
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp, min;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i - 1 < need)
            return false;
        for (size_t k = 1; k <= need; k++) {
            uint8_t d = s[i + k];
            if ((d & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (d & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += need + 1;
    }
    return true;
}

/* ---- Heads and floats -------------------------------------------------- */

typedef struct pirn__head {
    uint8_t major, ai;
    uint64_t arg;
    size_t size;    /* bytes of the head */
    bool indef;     /* ai 31: indefinite length, or a break for major 7 */
    bool shortest;  /* the argument is in its shortest form */
} pirn__head;

/* pirn__head_at reads the head at buf[pos]. */
static int pirn__head_at(const uint8_t *buf, size_t len, size_t pos, pirn__head *h) {
    if (pos >= len)
        return PIRN_E_TRUNCATED;
    uint8_t b = buf[pos];
    h->major = b >> 5;
    h->ai = b & 31;
    h->indef = false;
    h->shortest = true;
    if (h->ai < 24) {
        h->arg = h->ai;
        h->size = 1;
    } else if (h->ai <= 27) {
        size_t w = (size_t)1 << (h->ai - 24);
        if (len - pos - 1 < w)
            return PIRN_E_TRUNCATED;
        uint64_t a = 0;
        for (size_t i = 0; i < w; i++)
            a = a << 8 | buf[pos + 1 + i];
        h->arg = a;
        h->size = 1 + w;
        if (h->major != 7) {
            h->shortest = (w == 1 && a >= 24) || (w == 2 && a > 0xff) ||
                          (w == 4 && a > 0xffff) || (w == 8 && a > 0xffffffffu);
        }
    } else if (h->ai == 31 && (h->major == 2 || h->major == 3 || h->major == 4 ||
                               h->major == 5 || h->major == 7)) {
        h->arg = 0;
        h->size = 1;
        h->indef = true;
        h->shortest = false;
    } else {
        return PIRN_E_MALFORMED;
    }
    return PIRN_OK;
}

static double pirn__from_bits64(uint64_t b) {
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static double pirn__from_half(uint16_t h) {
    uint64_t sign = (uint64_t)(h >> 15) << 63;
    unsigned e = (h >> 10) & 31;
    uint64_t m = h & 0x3ff;
    if (e == 31)
        return pirn__from_bits64(sign | (uint64_t)0x7ff << 52 | m << 42);
    if (e == 0) {
        double v = (double)m / 16777216.0; /* m * 2^-24, exact */
        return sign ? -v : v;
    }
    return pirn__from_bits64(sign | (uint64_t)(e - 15 + 1023) << 52 | m << 42);
}

static double pirn__from_single(uint32_t b) {
    float f;
    memcpy(&f, &b, sizeof f);
    return (double)f;
}

/* pirn__float_bits returns the width (2, 4 or 8 bytes) of the shortest
 * exact encoding of d, and its bits; every NaN is the float16 0x7e00. */
static int pirn__float_bits(double d, uint64_t *out) {
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    uint64_t sign = b >> 63;
    int exp = (int)((b >> 52) & 0x7ff);
    uint64_t mant = b & (((uint64_t)1 << 52) - 1);
    if (exp == 0x7ff) {
        *out = mant ? 0x7e00 : (sign << 15 | 0x7c00);
        return 2;
    }
    if (exp == 0) {
        if (mant == 0) {
            *out = sign << 15;
            return 2;
        }
        *out = b; /* a float64 subnormal is below every float32 */
        return 8;
    }
    int e = exp - 1023;
    uint64_t s = mant | (uint64_t)1 << 52;
    if (e >= -14 && e <= 15) {
        if ((mant & (((uint64_t)1 << 42) - 1)) == 0) {
            *out = sign << 15 | (uint64_t)(e + 15) << 10 | mant >> 42;
            return 2;
        }
    } else if (e >= -24 && e < -14) {
        int sh = 28 - e; /* a float16 subnormal: s * 2^(e-52) = k * 2^-24 */
        if ((s & (((uint64_t)1 << sh) - 1)) == 0) {
            *out = sign << 15 | s >> sh;
            return 2;
        }
    }
    if (e >= -126 && e <= 127) {
        if ((mant & (((uint64_t)1 << 29) - 1)) == 0) {
            *out = sign << 31 | (uint64_t)(e + 127) << 23 | mant >> 29;
            return 4;
        }
    } else if (e >= -149 && e < -126) {
        int sh = -(e + 97); /* a float32 subnormal: k * 2^-149 */
        if ((s & (((uint64_t)1 << sh) - 1)) == 0) {
            *out = sign << 31 | s >> sh;
            return 4;
        }
    }
    *out = b;
    return 8;
}

/* ---- Reader ------------------------------------------------------------ */

void pirn_dec_init(pirn_reader *r, const void *buf, size_t len) {
    r->buf = (const uint8_t *)buf;
    r->len = buf ? len : 0;
    r->pos = 0;
    r->err = PIRN_OK;
}

static int pirn__rfail(pirn_reader *r, int err) {
    if (r->err == PIRN_OK)
        r->err = err;
    return err;
}

static pirn_type pirn__type_of(const pirn__head *h) {
    switch (h->major) {
    case 0: case 1: return PIRN_T_INT;
    case 2: return PIRN_T_BYTES;
    case 3: return PIRN_T_TEXT;
    case 4: return PIRN_T_ARRAY;
    case 5: return PIRN_T_MAP;
    case 7:
        switch (h->ai) {
        case 20: case 21: return PIRN_T_BOOL;
        case 22: return PIRN_T_NULL;
        case 25: case 26: case 27: return PIRN_T_FLOAT;
        }
    }
    return PIRN_T_NONE;
}

pirn_type pirn_dec_peek(const pirn_reader *r) {
    pirn__head h;
    if (r->err || pirn__head_at(r->buf, r->len, r->pos, &h))
        return PIRN_T_NONE;
    return pirn__type_of(&h);
}

/* pirn__want reads the head of the next item and checks its type. */
static int pirn__want(pirn_reader *r, pirn_type t, pirn__head *h) {
    if (r->err)
        return r->err;
    int e = pirn__head_at(r->buf, r->len, r->pos, h);
    if (e)
        return pirn__rfail(r, e);
    if (pirn__type_of(h) != t) {
        if (h->major == 6 || (h->major == 7 && pirn__type_of(h) == PIRN_T_NONE && !h->indef))
            return pirn__rfail(r, PIRN_E_UNSUPPORTED);
        if (h->major == 7 && h->indef)
            return pirn__rfail(r, PIRN_E_MALFORMED);
        return pirn__rfail(r, PIRN_E_TYPE);
    }
    return PIRN_OK;
}

int pirn_dec_null(pirn_reader *r) {
    pirn__head h;
    int e = pirn__want(r, PIRN_T_NULL, &h);
    if (e)
        return e;
    r->pos += h.size;
    return PIRN_OK;
}

int pirn_dec_bool(pirn_reader *r, bool *out) {
    pirn__head h;
    *out = false;
    int e = pirn__want(r, PIRN_T_BOOL, &h);
    if (e)
        return e;
    *out = h.ai == 21;
    r->pos += h.size;
    return PIRN_OK;
}

int pirn_dec_int(pirn_reader *r, int64_t *out) {
    pirn__head h;
    *out = 0;
    int e = pirn__want(r, PIRN_T_INT, &h);
    if (e)
        return e;
    if (h.arg > (uint64_t)INT64_MAX)
        return pirn__rfail(r, PIRN_E_OVERFLOW);
    *out = h.major == 0 ? (int64_t)h.arg : -1 - (int64_t)h.arg;
    r->pos += h.size;
    return PIRN_OK;
}

static double pirn__float_of(const pirn__head *h) {
    if (h->ai == 25)
        return pirn__from_half((uint16_t)h->arg);
    if (h->ai == 26)
        return pirn__from_single((uint32_t)h->arg);
    return pirn__from_bits64(h->arg);
}

int pirn_dec_float(pirn_reader *r, double *out) {
    *out = 0;
    if (pirn_dec_peek(r) == PIRN_T_INT) {
        int64_t i;
        int e = pirn_dec_int(r, &i);
        if (e == PIRN_OK)
            *out = (double)i;
        return e;
    }
    pirn__head h;
    int e = pirn__want(r, PIRN_T_FLOAT, &h);
    if (e)
        return e;
    *out = pirn__float_of(&h);
    r->pos += h.size;
    return PIRN_OK;
}

static int pirn__dec_string(pirn_reader *r, pirn_type t, const uint8_t **p, size_t *n) {
    pirn__head h;
    *p = (const uint8_t *)"";
    *n = 0;
    int e = pirn__want(r, t, &h);
    if (e)
        return e;
    if (h.indef)
        return pirn__rfail(r, PIRN_E_INDEFINITE);
    if (h.arg > r->len - r->pos - h.size)
        return pirn__rfail(r, PIRN_E_TRUNCATED);
    const uint8_t *data = r->buf + r->pos + h.size;
    if (t == PIRN_T_TEXT && !pirn_utf8_valid(data, (size_t)h.arg))
        return pirn__rfail(r, PIRN_E_UTF8);
    *p = data;
    *n = (size_t)h.arg;
    r->pos += h.size + (size_t)h.arg;
    return PIRN_OK;
}

int pirn_dec_text(pirn_reader *r, const char **s, size_t *n) {
    const uint8_t *p;
    int e = pirn__dec_string(r, PIRN_T_TEXT, &p, n);
    *s = (const char *)p;
    return e;
}

int pirn_dec_bytes(pirn_reader *r, const uint8_t **p, size_t *n) {
    return pirn__dec_string(r, PIRN_T_BYTES, p, n);
}

static int pirn__dec_container(pirn_reader *r, pirn_type t, size_t *n) {
    pirn__head h;
    *n = 0;
    int e = pirn__want(r, t, &h);
    if (e)
        return e;
    if (h.indef) {
        *n = PIRN_INDEFINITE;
    } else {
        if (h.arg > PIRN_MAX_ELEMENTS)
            return pirn__rfail(r, PIRN_E_LIMIT);
        /* every element takes at least one byte */
        uint64_t min = h.arg * (t == PIRN_T_MAP ? 2 : 1);
        if (min > r->len - r->pos - h.size)
            return pirn__rfail(r, PIRN_E_TRUNCATED);
        *n = (size_t)h.arg;
    }
    r->pos += h.size;
    return PIRN_OK;
}

int pirn_dec_array(pirn_reader *r, size_t *n) { return pirn__dec_container(r, PIRN_T_ARRAY, n); }
int pirn_dec_map(pirn_reader *r, size_t *n) { return pirn__dec_container(r, PIRN_T_MAP, n); }

bool pirn_dec_next(pirn_reader *r, size_t *remaining) {
    if (r->err)
        return false;
    if (*remaining == PIRN_INDEFINITE) {
        if (r->pos >= r->len) {
            pirn__rfail(r, PIRN_E_TRUNCATED);
            return false;
        }
        if (r->buf[r->pos] == 0xff) {
            r->pos++;
            *remaining = 0;
            return false;
        }
        return true;
    }
    if (*remaining == 0)
        return false;
    (*remaining)--;
    return true;
}

int pirn_dec_end(pirn_reader *r) {
    if (r->err)
        return r->err;
    if (r->pos != r->len)
        return pirn__rfail(r, PIRN_E_TRAILING);
    return PIRN_OK;
}

/* ---- Writer ------------------------------------------------------------ */

void pirn_enc_free(pirn_writer *w) {
    free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
    w->err = PIRN_OK;
}

void pirn_enc_reset(pirn_writer *w) {
    w->len = 0;
    w->err = PIRN_OK;
}

static int pirn__wfail(pirn_writer *w, int err) {
    if (w->err == PIRN_OK)
        w->err = err;
    return err;
}

static void pirn__reserve(pirn_writer *w, size_t extra) {
    if (extra > SIZE_MAX - w->len)
        pirn__oom();
    size_t need = w->len + extra;
    if (need <= w->cap)
        return;
    size_t cap = w->cap ? w->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    void *p = realloc(w->buf, cap);
    if (!p)
        pirn__oom();
    w->buf = (uint8_t *)p;
    w->cap = cap;
}

static void pirn__put(pirn_writer *w, const void *p, size_t n) {
    if (n == 0)
        return;
    pirn__reserve(w, n);
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static size_t pirn__head_bytes(uint8_t *b, unsigned major, uint64_t arg) {
    uint8_t m = (uint8_t)(major << 5);
    if (arg < 24) {
        b[0] = m | (uint8_t)arg;
        return 1;
    }
    size_t w = arg <= 0xff ? 1 : arg <= 0xffff ? 2 : arg <= 0xffffffffu ? 4 : 8;
    b[0] = m | (uint8_t)(w == 1 ? 24 : w == 2 ? 25 : w == 4 ? 26 : 27);
    for (size_t i = 0; i < w; i++)
        b[1 + i] = (uint8_t)(arg >> (8 * (w - 1 - i)));
    return 1 + w;
}

static void pirn__put_head(pirn_writer *w, unsigned major, uint64_t arg) {
    uint8_t b[9];
    pirn__put(w, b, pirn__head_bytes(b, major, arg));
}

int pirn_enc_null(pirn_writer *w) {
    if (w->err)
        return w->err;
    pirn__put(w, "\xf6", 1);
    return PIRN_OK;
}

int pirn_enc_bool(pirn_writer *w, bool b) {
    if (w->err)
        return w->err;
    pirn__put(w, b ? "\xf5" : "\xf4", 1);
    return PIRN_OK;
}

int pirn_enc_int(pirn_writer *w, int64_t i) {
    if (w->err)
        return w->err;
    if (i < 0)
        pirn__put_head(w, 1, (uint64_t)(-1 - i));
    else
        pirn__put_head(w, 0, (uint64_t)i);
    return PIRN_OK;
}

int pirn_enc_float(pirn_writer *w, double f) {
    if (w->err)
        return w->err;
    uint64_t bits;
    int width = pirn__float_bits(f, &bits);
    uint8_t b[9];
    b[0] = width == 2 ? 0xf9 : width == 4 ? 0xfa : 0xfb;
    for (int i = 0; i < width; i++)
        b[1 + i] = (uint8_t)(bits >> (8 * (width - 1 - i)));
    pirn__put(w, b, 1 + (size_t)width);
    return PIRN_OK;
}

int pirn_enc_text(pirn_writer *w, const char *s, size_t n) {
    if (w->err)
        return w->err;
    if (!pirn_utf8_valid(s, n))
        return pirn__wfail(w, PIRN_E_UTF8);
    pirn__put_head(w, 3, n);
    pirn__put(w, s, n);
    return PIRN_OK;
}

int pirn_enc_str(pirn_writer *w, const char *s) {
    return pirn_enc_text(w, s ? s : "", s ? strlen(s) : 0);
}

int pirn_enc_bytes(pirn_writer *w, const void *p, size_t n) {
    if (w->err)
        return w->err;
    pirn__put_head(w, 2, n);
    pirn__put(w, p, n);
    return PIRN_OK;
}

static uint8_t *pirn__space(pirn_writer *w, unsigned major, size_t n) {
    if (w->err)
        return NULL;
    pirn__put_head(w, major, n);
    pirn__reserve(w, n);
    uint8_t *p = w->buf + w->len;
    w->len += n;
    return p;
}

char *pirn_enc_text_space(pirn_writer *w, size_t n) { return (char *)pirn__space(w, 3, n); }
uint8_t *pirn_enc_bytes_space(pirn_writer *w, size_t n) { return pirn__space(w, 2, n); }

int pirn_enc_array(pirn_writer *w, size_t n) {
    if (w->err)
        return w->err;
    pirn__put_head(w, 4, n);
    return PIRN_OK;
}

int pirn_enc_map(pirn_writer *w, size_t n) {
    if (w->err)
        return w->err;
    pirn__put_head(w, 5, n);
    return PIRN_OK;
}

size_t pirn_enc_begin(pirn_writer *w) { return w->len; }

#define PIRN__W_MODEL 1u  /* check the data model: int64, UTF-8, text keys, no tags */
#define PIRN__W_STRICT 2u /* require canonical form */

static int pirn__walk(pirn_reader *r, pirn_writer *w, int depth, unsigned flags);

/* pirn__insert_head inserts a container head at mark. */
static void pirn__insert_head(pirn_writer *w, size_t mark, unsigned major, uint64_t n) {
    uint8_t b[9];
    size_t hn = pirn__head_bytes(b, major, n);
    pirn__reserve(w, hn);
    memmove(w->buf + mark + hn, w->buf + mark, w->len - mark);
    memcpy(w->buf + mark, b, hn);
    w->len += hn;
}

int pirn_enc_end_array(pirn_writer *w, size_t mark) {
    if (w->err)
        return w->err;
    if (mark > w->len)
        return pirn__wfail(w, PIRN_E_VALUE);
    if (mark == w->len) {
        pirn__insert_head(w, mark, 4, 0);
        return PIRN_OK;
    }
    pirn_reader r;
    pirn_dec_init(&r, w->buf + mark, w->len - mark);
    uint64_t n = 0;
    while (r.pos < r.len) {
        int e = pirn__walk(&r, NULL, 1, 0);
        if (e)
            return pirn__wfail(w, e);
        n++;
    }
    pirn__insert_head(w, mark, 4, n);
    return PIRN_OK;
}

typedef struct pirn__entry {
    const uint8_t *key;
    size_t key_len;
    size_t off, len; /* the whole entry, relative to the map's start */
} pirn__entry;

static int pirn__key_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn) {
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c)
        return c;
    return an < bn ? -1 : an > bn;
}

static int pirn__entry_cmp(const void *x, const void *y) {
    const pirn__entry *a = (const pirn__entry *)x, *b = (const pirn__entry *)y;
    return pirn__key_cmp(a->key, a->key_len, b->key, b->key_len);
}

int pirn_enc_end_map(pirn_writer *w, size_t mark) {
    if (w->err)
        return w->err;
    if (mark > w->len)
        return pirn__wfail(w, PIRN_E_VALUE);
    if (mark == w->len) {
        pirn__insert_head(w, mark, 5, 0);
        return PIRN_OK;
    }
    const uint8_t *base = w->buf + mark;
    size_t size = w->len - mark;
    pirn_reader r;
    /* Count the items (and check they are well-formed). */
    size_t items = 0;
    pirn_dec_init(&r, base, size);
    while (r.pos < r.len) {
        int e = pirn__walk(&r, NULL, 1, 0);
        if (e)
            return pirn__wfail(w, e);
        items++;
    }
    if (items % 2)
        return pirn__wfail(w, PIRN_E_VALUE); /* a key without a value */
    size_t n = items / 2;
    if (n == 0) {
        pirn__insert_head(w, mark, 5, 0);
        return PIRN_OK;
    }
    pirn__entry *es = (pirn__entry *)pirn__malloc(n * sizeof *es);
    bool sorted = true;
    pirn_dec_init(&r, base, size);
    for (size_t i = 0; i < n; i++) {
        if ((base[r.pos] >> 5) != 3) {
            free(es);
            return pirn__wfail(w, PIRN_E_KEY);
        }
        es[i].off = r.pos;
        es[i].key = base + r.pos;
        pirn__walk(&r, NULL, 1, 0);
        es[i].key_len = r.pos - es[i].off;
        pirn__walk(&r, NULL, 1, 0);
        es[i].len = r.pos - es[i].off;
        if (i > 0 && pirn__entry_cmp(&es[i - 1], &es[i]) >= 0)
            sorted = false;
    }
    if (!sorted) {
        qsort(es, n, sizeof *es, pirn__entry_cmp);
        for (size_t i = 1; i < n; i++) {
            if (pirn__entry_cmp(&es[i - 1], &es[i]) == 0) {
                free(es);
                return pirn__wfail(w, PIRN_E_DUPKEY);
            }
        }
        uint8_t *tmp = (uint8_t *)pirn__malloc(size);
        size_t at = 0;
        for (size_t i = 0; i < n; i++) {
            memcpy(tmp + at, base + es[i].off, es[i].len);
            at += es[i].len;
        }
        memcpy(w->buf + mark, tmp, size);
        free(tmp);
    }
    free(es);
    pirn__insert_head(w, mark, 5, n);
    return PIRN_OK;
}

int pirn_enc_raw(pirn_writer *w, const void *p, size_t n) {
    if (w->err)
        return w->err;
    pirn_reader r;
    pirn_dec_init(&r, p, n);
    int e = pirn__walk(&r, NULL, 0, 0);
    if (e == PIRN_OK && r.pos != n)
        e = PIRN_E_TRAILING;
    if (e)
        return pirn__wfail(w, e);
    pirn__put(w, p, n);
    return PIRN_OK;
}

int pirn_enc_value(pirn_writer *w, pirn_reader *r) {
    if (w->err)
        return w->err;
    if (r->err)
        return pirn__wfail(w, r->err);
    size_t start = w->len, pos = r->pos;
    int e = pirn__walk(r, w, 0, PIRN__W_MODEL);
    if (e) {
        w->len = start;
        w->err = PIRN_OK; /* the walk may have set it; report through both below */
        r->pos = pos;
        pirn__rfail(r, e);
        return pirn__wfail(w, e);
    }
    return PIRN_OK;
}

int pirn_canonicalize(const void *in, size_t n, pirn_writer *out) {
    if (out->err)
        return out->err;
    size_t start = out->len;
    pirn_reader r;
    pirn_dec_init(&r, in, n);
    int e = pirn__walk(&r, out, 0, PIRN__W_MODEL);
    if (e == PIRN_OK && r.pos != n)
        e = PIRN_E_TRAILING;
    if (e) {
        out->len = start;
        out->err = PIRN_OK;
    }
    return e;
}

int pirn_check_canonical(const void *in, size_t n) {
    pirn_reader r;
    pirn_dec_init(&r, in, n);
    int e = pirn__walk(&r, NULL, 0, PIRN__W_MODEL | PIRN__W_STRICT);
    if (e == PIRN_OK && r.pos != n)
        e = PIRN_E_TRAILING;
    return e;
}

int pirn_dec_skip(pirn_reader *r) {
    if (r->err)
        return r->err;
    int e = pirn__walk(r, NULL, 0, 0);
    return e ? pirn__rfail(r, e) : PIRN_OK;
}

/* pirn__walk goes over one item at r->pos, advancing r->pos past it. It
 * refuses malformed items, tags, and nesting deeper than PIRN_MAX_DEPTH;
 * with PIRN__W_MODEL also what is outside the data model; with
 * PIRN__W_STRICT what is not canonical. With a writer it writes the item
 * in canonical form. On error r->pos is unspecified. */
static int pirn__walk(pirn_reader *r, pirn_writer *w, int depth, unsigned flags) {
    pirn__head h;
    int e = pirn__head_at(r->buf, r->len, r->pos, &h);
    if (e)
        return e;
    if (w)
        flags |= PIRN__W_MODEL;
    if ((flags & PIRN__W_STRICT) && !h.shortest)
        return PIRN_E_NONCANONICAL;
    switch (h.major) {
    case 0:
    case 1:
        if ((flags & PIRN__W_MODEL) && h.arg > (uint64_t)INT64_MAX)
            return PIRN_E_OVERFLOW;
        r->pos += h.size;
        if (w)
            pirn__put_head(w, h.major, h.arg);
        return PIRN_OK;
    case 2:
    case 3:
        if (h.indef) {
            /* chunks of the same major type, each definite, until a break */
            size_t p = r->pos + 1;
            uint64_t total = 0;
            for (;;) {
                if (p >= r->len)
                    return PIRN_E_TRUNCATED;
                if (r->buf[p] == 0xff)
                    break;
                pirn__head c;
                if ((e = pirn__head_at(r->buf, r->len, p, &c)))
                    return e;
                if (c.major != h.major || c.indef)
                    return PIRN_E_MALFORMED;
                if (c.arg > r->len - p - c.size)
                    return PIRN_E_TRUNCATED;
                if ((flags & PIRN__W_MODEL) && h.major == 3 &&
                    !pirn_utf8_valid(r->buf + p + c.size, (size_t)c.arg))
                    return PIRN_E_UTF8;
                total += c.arg;
                p += c.size + (size_t)c.arg;
            }
            if (w) {
                pirn__put_head(w, h.major, total);
                for (size_t q = r->pos + 1; q < p;) {
                    pirn__head c;
                    pirn__head_at(r->buf, r->len, q, &c);
                    pirn__put(w, r->buf + q + c.size, (size_t)c.arg);
                    q += c.size + (size_t)c.arg;
                }
            }
            r->pos = p + 1;
            return PIRN_OK;
        }
        if (h.arg > r->len - r->pos - h.size)
            return PIRN_E_TRUNCATED;
        if ((flags & PIRN__W_MODEL) && h.major == 3 &&
            !pirn_utf8_valid(r->buf + r->pos + h.size, (size_t)h.arg))
            return PIRN_E_UTF8;
        if (w) {
            pirn__put_head(w, h.major, h.arg);
            pirn__put(w, r->buf + r->pos + h.size, (size_t)h.arg);
        }
        r->pos += h.size + (size_t)h.arg;
        return PIRN_OK;
    case 4:
    case 5: {
        if (depth >= PIRN_MAX_DEPTH)
            return PIRN_E_DEPTH;
        bool map = h.major == 5;
        uint64_t n = h.arg;
        if (!h.indef) {
            if (n > PIRN_MAX_ELEMENTS)
                return PIRN_E_LIMIT;
            if (n * (map ? 2 : 1) > r->len - r->pos - h.size)
                return PIRN_E_TRUNCATED;
        }
        r->pos += h.size;
        size_t mark = w ? pirn_enc_begin(w) : 0;
        const uint8_t *prev = NULL;
        size_t prev_len = 0;
        for (uint64_t i = 0;; i++) {
            if (h.indef) {
                if (r->pos >= r->len)
                    return PIRN_E_TRUNCATED;
                if (r->buf[r->pos] == 0xff) {
                    r->pos++;
                    break;
                }
                if (i >= PIRN_MAX_ELEMENTS)
                    return PIRN_E_LIMIT;
            } else if (i == n) {
                break;
            }
            if (map) {
                if ((flags & PIRN__W_MODEL) && r->pos < r->len && (r->buf[r->pos] >> 5) != 3)
                    return PIRN_E_KEY;
                size_t k = r->pos;
                if ((e = pirn__walk(r, w, depth + 1, flags)))
                    return e;
                if (flags & PIRN__W_STRICT) {
                    const uint8_t *key = r->buf + k;
                    size_t key_len = r->pos - k;
                    if (prev) {
                        int c = pirn__key_cmp(prev, prev_len, key, key_len);
                        if (c == 0)
                            return PIRN_E_DUPKEY;
                        if (c > 0)
                            return PIRN_E_NONCANONICAL;
                    }
                    prev = key, prev_len = key_len;
                }
            }
            if ((e = pirn__walk(r, w, depth + 1, flags)))
                return e;
        }
        if (w)
            return map ? pirn_enc_end_map(w, mark) : pirn_enc_end_array(w, mark);
        return PIRN_OK;
    }
    case 6:
        return PIRN_E_UNSUPPORTED;
    default: /* 7 */
        if (h.indef)
            return PIRN_E_MALFORMED; /* a break outside an indefinite-length item */
        switch (h.ai) {
        case 20:
        case 21:
        case 22:
            r->pos += 1;
            if (w)
                pirn__put(w, r->buf + r->pos - 1, 1);
            return PIRN_OK;
        case 25:
        case 26:
        case 27: {
            double d = pirn__float_of(&h);
            if (flags & PIRN__W_STRICT) {
                uint64_t bits;
                size_t width = (size_t)pirn__float_bits(d, &bits);
                if (width + 1 != h.size || bits != h.arg)
                    return PIRN_E_NONCANONICAL;
            }
            r->pos += h.size;
            if (w)
                pirn_enc_float(w, d);
            return PIRN_OK;
        }
        case 24:
            if (h.arg < 32)
                return PIRN_E_MALFORMED;
            return PIRN_E_UNSUPPORTED;
        default:
            return PIRN_E_UNSUPPORTED; /* undefined, or another simple value */
        }
    }
}

/* ---- Strings for messages ---------------------------------------------- */

/* A small string builder over malloc, for messages. */
typedef struct pirn__sb {
    char *s;
    size_t len, cap;
} pirn__sb;

static void pirn__sb_add(pirn__sb *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = (char *)realloc(b->s, cap);
        if (!p)
            pirn__oom();
        b->s = p, b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void pirn__sb_str(pirn__sb *b, const char *s) { pirn__sb_add(b, s, strlen(s)); }

static void pirn__sb_uint(pirn__sb *b, uint64_t v) {
    char d[20];
    size_t n = 0;
    do {
        d[sizeof d - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    pirn__sb_add(b, d + sizeof d - n, n);
}

/* pirn__sb_quote appends "s" with quotes and backslashes escaped. */
static void pirn__sb_quote(pirn__sb *b, const char *s, size_t n) {
    pirn__sb_add(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\')
            pirn__sb_add(b, "\\", 1);
        pirn__sb_add(b, s + i, 1);
    }
    pirn__sb_add(b, "\"", 1);
}

/* pirn__put_text_lossy writes text, replacing invalid UTF-8 with U+FFFD:
 * for messages, which must not make the response malformed. */
static void pirn__put_text_lossy(pirn_writer *w, const char *s, size_t n) {
    if (pirn_utf8_valid(s, n)) {
        pirn__put_head(w, 3, n);
        pirn__put(w, s, n);
        return;
    }
    pirn__sb b = {NULL, 0, 0};
    for (size_t i = 0; i < n;) {
        size_t k = 1;
        while (k <= 4 && i + k <= n && !pirn_utf8_valid(s + i, k))
            k++;
        if (k <= 4 && i + k <= n) {
            pirn__sb_add(&b, s + i, k);
            i += k;
        } else {
            pirn__sb_add(&b, "\xef\xbf\xbd", 3);
            i++;
        }
    }
    pirn__put_head(w, 3, b.len);
    pirn__put(w, b.s, b.len);
    free(b.s);
}

/* ---- Manifest ---------------------------------------------------------- */

static bool pirn__set(const char *s) { return s && *s; }

static size_t pirn__knot_count(const pirn_module *m) {
    size_t n = 0;
    while (n < m->n_knots && m->knots[n].name)
        n++;
    return n;
}

int pirn_manifest_encode(const pirn_module *m, pirn_writer *w) {
    /* Keys in canonical order: shorter first, then bytewise. */
    pirn_enc_map(w, pirn__set(m->name) ? 3 : 2);
    pirn_enc_str(w, "abi");
    pirn_enc_int(w, PIRN_ABI_VERSION);
    if (pirn__set(m->name)) {
        pirn_enc_str(w, "name");
        pirn_enc_str(w, m->name);
    }
    pirn_enc_str(w, "knots");
    size_t nk = pirn__knot_count(m);
    pirn_enc_array(w, nk);
    for (size_t i = 0; i < nk; i++) {
        const pirn_knot *k = &m->knots[i];
        pirn_enc_map(w, 3 + pirn__set(k->doc) + pirn__set(k->rest));
        if (pirn__set(k->doc)) {
            pirn_enc_str(w, "doc");
            pirn_enc_str(w, k->doc);
        }
        pirn_enc_str(w, "name");
        pirn_enc_str(w, k->name);
        if (pirn__set(k->rest)) {
            pirn_enc_str(w, "rest");
            pirn_enc_str(w, k->rest);
        }
        pirn_enc_str(w, "inputs");
        size_t ni = 0;
        while (k->inputs && k->inputs[ni].name)
            ni++;
        pirn_enc_array(w, ni);
        for (size_t j = 0; j < ni; j++) {
            const pirn_input *in = &k->inputs[j];
            pirn_enc_map(w, 2 + pirn__set(in->doc) + in->optional);
            if (pirn__set(in->doc)) {
                pirn_enc_str(w, "doc");
                pirn_enc_str(w, in->doc);
            }
            pirn_enc_str(w, "name");
            pirn_enc_str(w, in->name);
            pirn_enc_str(w, "type");
            pirn_enc_str(w, in->type);
            if (in->optional) {
                pirn_enc_str(w, "optional");
                pirn_enc_bool(w, true);
            }
        }
        pirn_enc_str(w, "output");
        pirn_enc_str(w, k->output ? k->output : "any");
    }
    return w->err;
}

/* ---- The invocation ---------------------------------------------------- */

enum { PIRN__NONE, PIRN__OK, PIRN__ERR, PIRN__SKIP };

typedef struct pirn__block {
    struct pirn__block *next;
    /* the allocation follows, aligned for any type */
} pirn__block;

#define PIRN__BLOCK_HEADER ((sizeof(pirn__block) + 15) & ~(size_t)15)

struct pirn_call {
    const pirn_module *module;
    const pirn_knot *knot;
    char *knot_name;
    size_t knot_name_len;
    pirn_arg *args;        /* inputs, then config */
    size_t n_inputs, n_config;
    pirn_writer *out;      /* the response; an ok value is written in place */
    pirn_writer detail;
    pirn_writer sink;      /* for writes after the outcome was set */
    int outcome;
    bool ok_open, has_detail;
    const char *err_type, *err_message, *trace, *reason;
    pirn__block *arena;
};

void *pirn_alloc(pirn_call *c, size_t n) {
    if (n > SIZE_MAX - PIRN__BLOCK_HEADER)
        pirn__oom();
    pirn__block *b = (pirn__block *)pirn__malloc(PIRN__BLOCK_HEADER + n);
    b->next = c->arena;
    c->arena = b;
    return (char *)b + PIRN__BLOCK_HEADER;
}

static char *pirn__strdup(pirn_call *c, const char *s, size_t n) {
    char *p = (char *)pirn_alloc(c, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

const char *pirn_knot_name(const pirn_call *c) { return c->knot_name; }
const pirn_knot *pirn_knot_spec(const pirn_call *c) { return c->knot; }
size_t pirn_arg_count(const pirn_call *c) { return c->n_inputs + c->n_config; }

const pirn_arg *pirn_arg_at(const pirn_call *c, size_t i) {
    return i < c->n_inputs + c->n_config ? &c->args[i] : NULL;
}

static int pirn__name_cmp(const char *a, size_t an, const char *b, size_t bn) {
    if (an != bn)
        return an < bn ? -1 : 1;
    return memcmp(a, b, an);
}

static int pirn__arg_cmp(const void *x, const void *y) {
    const pirn_arg *a = (const pirn_arg *)x, *b = (const pirn_arg *)y;
    return pirn__name_cmp(a->name, a->name_len, b->name, b->name_len);
}

static const pirn_arg *pirn__search(const pirn_arg *args, size_t n, const char *name, size_t len) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = pirn__name_cmp(args[mid].name, args[mid].name_len, name, len);
        if (c == 0)
            return &args[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static const pirn_arg *pirn__find(const pirn_call *c, const char *name, size_t len) {
    const pirn_arg *a = pirn__search(c->args, c->n_inputs, name, len);
    return a ? a : pirn__search(c->args + c->n_inputs, c->n_config, name, len);
}

const pirn_arg *pirn_find(const pirn_call *c, const char *name) {
    return pirn__find(c, name, strlen(name));
}

bool pirn_has(const pirn_call *c, const char *name) { return pirn_find(c, name) != NULL; }

static bool pirn__declares(const pirn_knot *k, const char *name, size_t len) {
    for (const pirn_input *in = k->inputs; in && in->name; in++)
        if (strlen(in->name) == len && memcmp(in->name, name, len) == 0)
            return true;
    return false;
}

bool pirn_declared(const pirn_call *c, const char *name) {
    return c->knot && pirn__declares(c->knot, name, strlen(name));
}

/* ---- Outcomes ---------------------------------------------------------- */

static const uint8_t pirn__ok_prefix[4] = {0xa1, 0x62, 'o', 'k'}; /* {"ok": */

static int pirn__set_err(pirn_call *c, const char *type, const char *message, size_t message_len) {
    if (c->outcome != PIRN__NONE)
        return PIRN_E_OUTCOME;
    c->outcome = PIRN__ERR;
    c->ok_open = false;
    c->err_type = pirn__strdup(c, pirn__set(type) ? type : "Error", pirn__set(type) ? strlen(type) : 5);
    c->err_message = pirn__strdup(c, message ? message : "", message ? message_len : 0);
    return PIRN_OK;
}

int pirn_err(pirn_call *c, const char *type, const char *message) {
    return pirn__set_err(c, type, message, message ? strlen(message) : 0);
}

int pirn_errf(pirn_call *c, const char *type, const char *fmt, ...) {
    if (c->outcome != PIRN__NONE)
        return PIRN_E_OUTCOME;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return pirn__set_err(c, type, fmt, strlen(fmt));
    char *s = (char *)pirn_alloc(c, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return pirn__set_err(c, type, s, (size_t)n);
}

int pirn_skip(pirn_call *c, const char *reason) {
    if (c->outcome != PIRN__NONE)
        return PIRN_E_OUTCOME;
    c->outcome = PIRN__SKIP;
    c->ok_open = false;
    c->reason = pirn__strdup(c, pirn__set(reason) ? reason : "skipped",
                             pirn__set(reason) ? strlen(reason) : 7);
    return PIRN_OK;
}

pirn_writer *pirn_detail(pirn_call *c) {
    if (c->outcome != PIRN__ERR && c->outcome != PIRN__SKIP) {
        pirn_enc_reset(&c->sink);
        return &c->sink;
    }
    pirn_enc_reset(&c->detail);
    c->has_detail = true;
    return &c->detail;
}

int pirn_trace(pirn_call *c, const char *trace) {
    if (c->outcome != PIRN__ERR)
        return PIRN_E_OUTCOME;
    c->trace = pirn__strdup(c, trace ? trace : "", trace ? strlen(trace) : 0);
    return PIRN_OK;
}

pirn_writer *pirn_ok_begin(pirn_call *c) {
    if (c->outcome != PIRN__NONE) {
        pirn_enc_reset(&c->sink);
        return &c->sink;
    }
    pirn_enc_reset(c->out);
    pirn__put(c->out, pirn__ok_prefix, sizeof pirn__ok_prefix);
    c->ok_open = true;
    return c->out;
}

int pirn_ok_end(pirn_call *c) {
    if (!c->ok_open)
        return PIRN_E_OUTCOME;
    c->ok_open = false;
    c->outcome = PIRN__OK;
    return PIRN_OK;
}

int pirn_ok_null(pirn_call *c) {
    pirn_enc_null(pirn_ok_begin(c));
    return pirn_ok_end(c);
}
int pirn_ok_bool(pirn_call *c, bool b) {
    pirn_enc_bool(pirn_ok_begin(c), b);
    return pirn_ok_end(c);
}
int pirn_ok_int(pirn_call *c, int64_t i) {
    pirn_enc_int(pirn_ok_begin(c), i);
    return pirn_ok_end(c);
}
int pirn_ok_float(pirn_call *c, double f) {
    pirn_enc_float(pirn_ok_begin(c), f);
    return pirn_ok_end(c);
}
int pirn_ok_text(pirn_call *c, const char *s, size_t n) {
    pirn_enc_text(pirn_ok_begin(c), s, n);
    return pirn_ok_end(c);
}
int pirn_ok_str(pirn_call *c, const char *s) {
    pirn_enc_str(pirn_ok_begin(c), s);
    return pirn_ok_end(c);
}
int pirn_ok_bytes(pirn_call *c, const void *p, size_t n) {
    pirn_enc_bytes(pirn_ok_begin(c), p, n);
    return pirn_ok_end(c);
}

/* ---- Typed inputs ------------------------------------------------------ */

/* pirn__input_fail sets `knot "k": input "name": msg` (InputError). */
static int pirn__input_fail(pirn_call *c, const char *name, size_t name_len, const char *msg, int err) {
    if (c->outcome == PIRN__NONE) {
        pirn__sb b = {NULL, 0, 0};
        pirn__sb_str(&b, "knot ");
        pirn__sb_quote(&b, c->knot_name, strlen(c->knot_name));
        pirn__sb_str(&b, ": input ");
        pirn__sb_quote(&b, name, name_len);
        pirn__sb_str(&b, ": ");
        pirn__sb_str(&b, msg);
        pirn__set_err(c, "InputError", b.s, b.len);
        free(b.s);
    }
    return err;
}

int pirn_input_error(pirn_call *c, const char *name, const char *msg) {
    return pirn__input_fail(c, name, strlen(name), msg, PIRN_E_VALUE);
}

/* pirn__arg_fail reports a decoding error e on a, with its actual type. */
static int pirn__arg_fail(pirn_call *c, const pirn_arg *a, const char *want, int e) {
    if (e == PIRN_E_TYPE) {
        pirn_reader r;
        pirn_dec_init(&r, a->value, a->value_len);
        pirn__sb b = {NULL, 0, 0};
        pirn__sb_str(&b, "want ");
        pirn__sb_str(&b, want);
        pirn__sb_str(&b, ", got ");
        pirn__sb_str(&b, pirn_type_name(pirn_dec_peek(&r)));
        pirn__input_fail(c, a->name, a->name_len, b.s, e);
        free(b.s);
        return e;
    }
    return pirn__input_fail(c, a->name, a->name_len, pirn_strerror(e), e);
}

static const pirn_arg *pirn__get(pirn_call *c, const char *name) {
    const pirn_arg *a = pirn_find(c, name);
    if (!a)
        pirn__input_fail(c, name, strlen(name), "not bound", PIRN_E_MISSING);
    return a;
}

/* A getter by name: on a missing input, the arg function still runs (on
 * an empty value, after the outcome was set) to zero the outputs. */
static const pirn_arg pirn__missing = {"", 0, NULL, 0, false};
#define PIRN__GETTER(NAME, ARGFN, PARAMS, ARGS) \
    int NAME PARAMS {                           \
        const pirn_arg *a = pirn__get(c, name); \
        if (!a) {                               \
            a = &pirn__missing;                 \
            ARGFN ARGS;                         \
            return PIRN_E_MISSING;              \
        }                                       \
        return ARGFN ARGS;                      \
    }

int pirn_arg_int(pirn_call *c, const pirn_arg *a, int64_t *out) {
    pirn_reader r;
    pirn_dec_init(&r, a->value, a->value_len);
    pirn_dec_int(&r, out);
    return r.err || pirn_dec_end(&r) ? pirn__arg_fail(c, a, "int", r.err) : PIRN_OK;
}

int pirn_arg_float(pirn_call *c, const pirn_arg *a, double *out) {
    pirn_reader r;
    pirn_dec_init(&r, a->value, a->value_len);
    pirn_dec_float(&r, out);
    return r.err || pirn_dec_end(&r) ? pirn__arg_fail(c, a, "float", r.err) : PIRN_OK;
}

int pirn_arg_bool(pirn_call *c, const pirn_arg *a, bool *out) {
    pirn_reader r;
    pirn_dec_init(&r, a->value, a->value_len);
    pirn_dec_bool(&r, out);
    return r.err || pirn_dec_end(&r) ? pirn__arg_fail(c, a, "bool", r.err) : PIRN_OK;
}

int pirn_arg_text(pirn_call *c, const pirn_arg *a, const char **s, size_t *n) {
    pirn_reader r;
    pirn_dec_init(&r, a->value, a->value_len);
    pirn_dec_text(&r, s, n);
    return r.err || pirn_dec_end(&r) ? pirn__arg_fail(c, a, "str", r.err) : PIRN_OK;
}

int pirn_arg_str(pirn_call *c, const pirn_arg *a, const char **s) {
    const char *p;
    size_t n;
    *s = "";
    int e = pirn_arg_text(c, a, &p, &n);
    if (e)
        return e;
    if (memchr(p, 0, n))
        return pirn__input_fail(c, a->name, a->name_len,
                                "text contains a NUL byte (read it with pirn_get_text)", PIRN_E_VALUE);
    *s = pirn__strdup(c, p, n);
    return PIRN_OK;
}

int pirn_arg_bytes(pirn_call *c, const pirn_arg *a, const uint8_t **p, size_t *n) {
    pirn_reader r;
    pirn_dec_init(&r, a->value, a->value_len);
    pirn_dec_bytes(&r, p, n);
    return r.err || pirn_dec_end(&r) ? pirn__arg_fail(c, a, "bytes", r.err) : PIRN_OK;
}

PIRN__GETTER(pirn_get_int, pirn_arg_int, (pirn_call * c, const char *name, int64_t *out), (c, a, out))
PIRN__GETTER(pirn_get_float, pirn_arg_float, (pirn_call * c, const char *name, double *out), (c, a, out))
PIRN__GETTER(pirn_get_bool, pirn_arg_bool, (pirn_call * c, const char *name, bool *out), (c, a, out))
PIRN__GETTER(pirn_get_text, pirn_arg_text, (pirn_call * c, const char *name, const char **s, size_t *n), (c, a, s, n))
PIRN__GETTER(pirn_get_str, pirn_arg_str, (pirn_call * c, const char *name, const char **s), (c, a, s))
PIRN__GETTER(pirn_get_bytes, pirn_arg_bytes, (pirn_call * c, const char *name, const uint8_t **p, size_t *n), (c, a, p, n))

int pirn_get_value(pirn_call *c, const char *name, pirn_reader *r) {
    const pirn_arg *a = pirn__get(c, name);
    if (!a) {
        pirn_dec_init(r, NULL, 0);
        r->err = PIRN_E_MISSING;
        return PIRN_E_MISSING;
    }
    pirn_dec_init(r, a->value, a->value_len);
    return PIRN_OK;
}

/* pirn__get_list reads a list of ints (is_float false) or floats. */
static int pirn__get_list(pirn_call *c, const char *name, bool is_float, void **xs, size_t *count) {
    *xs = NULL;
    *count = 0;
    const pirn_arg *a = pirn__get(c, name);
    if (!a)
        return PIRN_E_MISSING;
    const char *want = is_float ? "list[float]" : "list[int]";
    pirn_reader r;
    pirn_dec_init(&r, a->value, a->value_len);
    size_t n;
    if (pirn_dec_array(&r, &n))
        return pirn__arg_fail(c, a, want, r.err);
    size_t cap = n == PIRN_INDEFINITE ? a->value_len : n;
    size_t size = is_float ? sizeof(double) : sizeof(int64_t);
    void *out = pirn_alloc(c, cap * size);
    size_t i = 0;
    while (pirn_dec_next(&r, &n)) {
        if (i == cap)
            return pirn__arg_fail(c, a, want, PIRN_E_MALFORMED);
        if (is_float) {
            if (pirn_dec_float(&r, (double *)out + i))
                break;
        } else if (pirn_dec_int(&r, (int64_t *)out + i)) {
            break;
        }
        i++;
    }
    if (r.err || pirn_dec_end(&r)) {
        if (r.err != PIRN_E_TYPE)
            return pirn__arg_fail(c, a, want, r.err);
        pirn__sb b = {NULL, 0, 0};
        pirn__sb_str(&b, "element ");
        pirn__sb_uint(&b, i);
        pirn__sb_str(&b, ": want ");
        pirn__sb_str(&b, is_float ? "float" : "int");
        pirn__sb_str(&b, ", got ");
        r.err = PIRN_OK;
        pirn__sb_str(&b, pirn_type_name(pirn_dec_peek(&r)));
        pirn__input_fail(c, a->name, a->name_len, b.s, PIRN_E_TYPE);
        free(b.s);
        return PIRN_E_TYPE;
    }
    *xs = out;
    *count = i;
    return PIRN_OK;
}

int pirn_get_int_list(pirn_call *c, const char *name, int64_t **xs, size_t *n) {
    void *p;
    int e = pirn__get_list(c, name, false, &p, n);
    *xs = (int64_t *)p;
    return e;
}

int pirn_get_float_list(pirn_call *c, const char *name, double **xs, size_t *n) {
    void *p;
    int e = pirn__get_list(c, name, true, &p, n);
    *xs = (double *)p;
    return e;
}

/* ---- Logging ----------------------------------------------------------- */

void pirn_log_text(int level, const char *msg, size_t n) {
#ifdef PIRN__WASM
    pirn__host_log(level, msg, (uint32_t)n);
#else
    if (pirn_native_log)
        pirn_native_log(level, msg, n);
#endif
}

void pirn_log(int level, const char *msg) { pirn_log_text(level, msg, strlen(msg)); }

void pirn_logf(int level, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        pirn_log_text(level, small, (size_t)n);
        return;
    }
    char *big = (char *)pirn__malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    pirn_log_text(level, big, (size_t)n);
    free(big);
}

/* ---- Request decoding and dispatch ------------------------------------- */

/* pirn__parse decodes the request into c; on failure *why says what is
 * wrong with it. */
static int pirn__parse(pirn_call *c, const uint8_t *req, size_t len, const char **why) {
    pirn_reader r;
    pirn_dec_init(&r, req, len);
    size_t n;
    *why = "want a map";
    if (pirn_dec_map(&r, &n) || n == PIRN_INDEFINITE)
        return r.err ? r.err : PIRN_E_NONCANONICAL;
    const char *knot = NULL;
    size_t knot_len = 0;
    size_t maps[2] = {0, 0}; /* positions of the inputs and config maps */
    bool seen[3] = {false, false, false};
    while (pirn_dec_next(&r, &n)) {
        const char *k;
        size_t kn;
        *why = "key";
        if (pirn_dec_text(&r, &k, &kn))
            return r.err;
        int which = kn == 4 && !memcmp(k, "knot", 4)     ? 0
                    : kn == 6 && !memcmp(k, "inputs", 6) ? 1
                    : kn == 6 && !memcmp(k, "config", 6) ? 2
                                                         : -1;
        if (which < 0) {
            *why = "unknown key";
            return PIRN_E_VALUE;
        }
        if (seen[which]) {
            *why = "duplicate key";
            return PIRN_E_DUPKEY;
        }
        seen[which] = true;
        if (which == 0) {
            *why = "knot";
            if (pirn_dec_text(&r, &knot, &knot_len))
                return r.err;
        } else {
            maps[which - 1] = r.pos;
            *why = which == 1 ? "inputs" : "config";
            if (pirn_dec_skip(&r))
                return r.err;
        }
    }
    *why = "request";
    if (pirn_dec_end(&r))
        return r.err;
    if (!seen[0] || knot_len == 0) {
        *why = "missing \"knot\"";
        return PIRN_E_MISSING;
    }
    /* Count the args, then read them. */
    size_t counts[2] = {0, 0}, names = knot_len + 1;
    for (int i = 0; i < 2; i++) {
        if (!seen[i + 1])
            continue;
        *why = i == 0 ? "inputs" : "config";
        pirn_dec_init(&r, req, len);
        r.pos = maps[i];
        if (pirn_dec_map(&r, &n) || n == PIRN_INDEFINITE)
            return r.err ? r.err : PIRN_E_NONCANONICAL;
        while (pirn_dec_next(&r, &n)) {
            const char *k;
            size_t kn;
            if (pirn_dec_text(&r, &k, &kn) || pirn_dec_skip(&r))
                return r.err;
            counts[i]++;
            names += kn + 1;
        }
    }
    size_t total = counts[0] + counts[1];
    c->args = (pirn_arg *)pirn_alloc(c, total * sizeof(pirn_arg) + names);
    char *name = (char *)(c->args + total);
    c->knot_name = name;
    memcpy(name, knot, knot_len);
    name[knot_len] = 0;
    c->knot_name_len = knot_len;
    name += knot_len + 1;
    size_t at = 0;
    for (int i = 0; i < 2; i++) {
        if (!seen[i + 1])
            continue;
        pirn_dec_init(&r, req, len);
        r.pos = maps[i];
        pirn_dec_map(&r, &n);
        size_t first = at;
        while (pirn_dec_next(&r, &n)) {
            const char *k;
            size_t kn, v;
            pirn_dec_text(&r, &k, &kn);
            v = r.pos;
            pirn_dec_skip(&r);
            memcpy(name, k, kn);
            name[kn] = 0;
            c->args[at].name = name;
            c->args[at].name_len = kn;
            c->args[at].value = req + v;
            c->args[at].value_len = r.pos - v;
            c->args[at].config = i == 1;
            name += kn + 1;
            at++;
        }
        /* canonical order, for binary search; refuse duplicates */
        pirn_arg *a = c->args + first;
        size_t m = at - first;
        bool sorted = true;
        for (size_t j = 1; j < m; j++)
            if (pirn__arg_cmp(&a[j - 1], &a[j]) >= 0)
                sorted = false;
        if (!sorted) {
            qsort(a, m, sizeof *a, pirn__arg_cmp);
            for (size_t j = 1; j < m; j++) {
                if (pirn__arg_cmp(&a[j - 1], &a[j]) == 0) {
                    *why = "duplicate name";
                    return PIRN_E_DUPKEY;
                }
            }
        }
    }
    c->n_inputs = counts[0];
    c->n_config = counts[1];
    for (size_t i = 0; i < c->n_inputs; i++) {
        if (pirn__search(c->args + c->n_inputs, c->n_config, c->args[i].name, c->args[i].name_len)) {
            *why = "a name is both an input and config";
            return PIRN_E_DUPKEY;
        }
    }
    return PIRN_OK;
}

static void pirn__fail_msg(pirn_call *c, const char *type, pirn__sb *b) {
    pirn__set_err(c, type, b->s ? b->s : "", b->len);
    free(b->s);
}

/* pirn__bind checks that every required input is bound and, for a knot
 * without rest, that nothing else is. */
static bool pirn__bind(pirn_call *c) {
    const pirn_knot *k = c->knot;
    for (const pirn_input *in = k->inputs; in && in->name; in++) {
        if (!in->optional && !pirn_find(c, in->name)) {
            pirn__sb b = {NULL, 0, 0};
            pirn__sb_str(&b, "knot ");
            pirn__sb_quote(&b, c->knot_name, strlen(c->knot_name));
            pirn__sb_str(&b, ": missing input ");
            pirn__sb_quote(&b, in->name, strlen(in->name));
            pirn__fail_msg(c, "InputError", &b);
            return false;
        }
    }
    if (pirn__set(k->rest))
        return true;
    for (size_t i = 0; i < c->n_inputs + c->n_config; i++) {
        const pirn_arg *a = &c->args[i];
        if (!pirn__declares(k, a->name, a->name_len)) {
            pirn__sb b = {NULL, 0, 0};
            pirn__sb_str(&b, "knot ");
            pirn__sb_quote(&b, c->knot_name, strlen(c->knot_name));
            pirn__sb_str(&b, ": unknown input ");
            pirn__sb_quote(&b, a->name, a->name_len);
            pirn__fail_msg(c, "InputError", &b);
            return false;
        }
    }
    return true;
}

/* pirn__respond encodes the outcome into c->out. */
static void pirn__respond(pirn_call *c) {
    pirn_writer *w = c->out;
    if (c->outcome == PIRN__OK) {
        int e = w->err;
        if (e == PIRN_OK && (w->len < sizeof pirn__ok_prefix ||
                             memcmp(w->buf, pirn__ok_prefix, sizeof pirn__ok_prefix) != 0))
            e = PIRN_E_VALUE; /* the knot reset the response writer */
        if (e == PIRN_OK)
            e = pirn_check_canonical(w->buf + sizeof pirn__ok_prefix, w->len - sizeof pirn__ok_prefix);
        if (e == PIRN_OK)
            return;
        pirn__sb b = {NULL, 0, 0};
        pirn__sb_str(&b, "knot ");
        pirn__sb_quote(&b, c->knot_name, strlen(c->knot_name));
        pirn__sb_str(&b, ": output: ");
        pirn__sb_str(&b, pirn_strerror(e));
        if (e == PIRN_E_NONCANONICAL || e == PIRN_E_DUPKEY)
            pirn__sb_str(&b, " (write maps with pirn_enc_begin/pirn_enc_end_map to sort their keys)");
        if (e == PIRN_E_TRAILING || e == PIRN_E_TRUNCATED)
            pirn__sb_str(&b, " (write exactly one value; check container counts)");
        c->outcome = PIRN__NONE;
        pirn__fail_msg(c, "OutputError", &b);
    }
    bool detail = c->has_detail && c->detail.len > 0;
    if (detail) {
        int e = c->detail.err;
        if (e == PIRN_OK)
            e = pirn_check_canonical(c->detail.buf, c->detail.len);
        if (e != PIRN_OK) {
            /* keep the outcome, drop the bad detail, and say so */
            detail = false;
            pirn_log(PIRN_LOG_WARN, "pirn: dropped an invalid err/skip detail value");
        }
    }
    pirn_enc_reset(w);
    if (c->outcome == PIRN__SKIP) {
        /* {"skip": {"detail"?: d, "reason": r}} */
        pirn__put(w, "\xa1\x64" "skip", 6);
        pirn_enc_map(w, 1 + detail);
        if (detail) {
            pirn_enc_str(w, "detail");
            pirn__put(w, c->detail.buf, c->detail.len);
        }
        pirn_enc_str(w, "reason");
        pirn__put_text_lossy(w, c->reason, strlen(c->reason));
        return;
    }
    /* {"err": {"type": t, "trace"?: s, "detail"?: d, "message": m}} */
    pirn__put(w, "\xa1\x63" "err", 5);
    pirn_enc_map(w, 2 + (c->trace != NULL) + detail);
    pirn_enc_str(w, "type");
    pirn__put_text_lossy(w, c->err_type, strlen(c->err_type));
    if (c->trace) {
        pirn_enc_str(w, "trace");
        pirn__put_text_lossy(w, c->trace, strlen(c->trace));
    }
    if (detail) {
        pirn_enc_str(w, "detail");
        pirn__put(w, c->detail.buf, c->detail.len);
    }
    pirn_enc_str(w, "message");
    pirn__put_text_lossy(w, c->err_message, strlen(c->err_message));
}

void pirn_handle(const pirn_module *m, const void *req, size_t n, pirn_writer *resp) {
    pirn_call call;
    memset(&call, 0, sizeof call);
    pirn_call *c = &call;
    c->module = m;
    c->out = resp;
    c->knot_name = (char *)"";
    pirn_enc_reset(resp);
    const char *why = "";
    int e = pirn__parse(c, (const uint8_t *)req, n, &why);
    if (e) {
        pirn__sb b = {NULL, 0, 0};
        pirn__sb_str(&b, "malformed request: ");
        pirn__sb_str(&b, why);
        pirn__sb_str(&b, ": ");
        pirn__sb_str(&b, pirn_strerror(e));
        pirn__fail_msg(c, "PDKError", &b);
    } else {
        size_t nk = pirn__knot_count(m);
        for (size_t i = 0; i < nk && !c->knot; i++)
            if (pirn__name_cmp(m->knots[i].name, strlen(m->knots[i].name), c->knot_name, c->knot_name_len) == 0)
                c->knot = &m->knots[i];
        if (!c->knot) {
            pirn__sb b = {NULL, 0, 0};
            pirn__sb_str(&b, "module has no knot ");
            pirn__sb_quote(&b, c->knot_name, c->knot_name_len);
            pirn__fail_msg(c, "UnknownKnot", &b);
        } else if (pirn__bind(c)) {
            int rc = c->knot->fn ? c->knot->fn(c) : PIRN_OK;
            if (c->ok_open)
                pirn_ok_end(c);
            if (c->outcome == PIRN__NONE) {
                pirn__sb b = {NULL, 0, 0};
                pirn__sb_str(&b, "knot ");
                pirn__sb_quote(&b, c->knot_name, strlen(c->knot_name));
                if (rc != PIRN_OK) {
                    pirn__sb_str(&b, ": ");
                    pirn__sb_str(&b, pirn_strerror(rc));
                    pirn__fail_msg(c, "Error", &b);
                } else {
                    pirn__sb_str(&b, " returned without setting an outcome (pirn_ok_*, pirn_err or pirn_skip)");
                    pirn__fail_msg(c, "PDKError", &b);
                }
            }
        }
    }
    pirn__respond(c);
    pirn_enc_free(&c->detail);
    pirn_enc_free(&c->sink);
    while (c->arena) {
        pirn__block *next = c->arena->next;
        free(c->arena);
        c->arena = next;
    }
}

/* ---- The wasm exports -------------------------------------------------- */

#ifdef PIRN__WASM
/* Buffers reused across invocations, up to PIRN__KEEP bytes. */
#define PIRN__KEEP ((size_t)1 << 20)
static uint8_t *pirn__req;
static size_t pirn__req_cap;
static pirn_writer pirn__resp = PIRN_WRITER_INIT;

int32_t pirn__export_manifest(const pirn_module *m) {
    pirn_writer w = PIRN_WRITER_INIT;
    if (pirn_manifest_encode(m, &w) != PIRN_OK) {
        pirn_enc_free(&w);
        return 1;
    }
    pirn__host_output(w.buf, (uint32_t)w.len);
    pirn_enc_free(&w);
    return 0;
}

int32_t pirn__export_invoke(const pirn_module *m, int32_t n) {
    if (n < 0)
        return 1;
    size_t len = (size_t)n;
    if (len > pirn__req_cap) {
        free(pirn__req);
        pirn__req = (uint8_t *)pirn__malloc(len);
        pirn__req_cap = len;
    }
    pirn__host_input(pirn__req);
    pirn_handle(m, pirn__req, len, &pirn__resp);
    pirn__host_output(pirn__resp.buf, (uint32_t)pirn__resp.len);
    if (pirn__req_cap > PIRN__KEEP) {
        free(pirn__req);
        pirn__req = NULL;
        pirn__req_cap = 0;
    }
    if (pirn__resp.cap > PIRN__KEEP)
        pirn_enc_free(&pirn__resp);
    return 0;
}
#endif /* PIRN__WASM */

#endif /* PIRN__IMPLEMENTED */
#endif /* PIRN_IMPLEMENTATION */
