//go:build ignore

// The line above hides this file from the go tool, which refuses C files
// in a directory with Go files (c_test.go) unless they use cgo.

/*
 * text: a knot module in C, built with the C PDK (pdk/c/pirn.h).
 *
 *   upper(s: str) -> str                  s with ASCII letters in upper case
 *   count(s: str, ch: str) -> int         non-overlapping occurrences of ch in s
 *   checksum(data: bytes) -> int          CRC-32 (IEEE) of data
 *   repeat(s: str, n: int) -> str         s n times; ValueError if n < 0
 *   nonblank(s: str) -> str               s trimmed; skips if nothing is left
 *   words(s: str) -> list[str]            s split on whitespace
 *   stats(xs: list[float]) -> dict[float] count, mean, min and max of xs
 *   join(sep?: str, ...: str) -> str      every further input, in name order
 *
 * Build (make wasm does this): see the Makefile.
 */
#define PIRN_IMPLEMENTATION
#include "pirn.h"

#include <string.h>

static bool is_space(char ch) {
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

static int upper(pirn_call *c) {
    const char *s;
    size_t n;
    PIRN_TRY(pirn_get_text(c, "s", &s, &n));
    /* Write the result straight into the response. */
    pirn_writer *w = pirn_ok_begin(c);
    char *out = pirn_enc_text_space(w, n);
    if (out) {
        for (size_t i = 0; i < n; i++)
            out[i] = (s[i] >= 'a' && s[i] <= 'z') ? (char)(s[i] - 'a' + 'A') : s[i];
    }
    return pirn_ok_end(c);
}

static int count(pirn_call *c) {
    const char *s, *ch;
    size_t n, m;
    PIRN_TRY(pirn_get_text(c, "s", &s, &n));
    PIRN_TRY(pirn_get_text(c, "ch", &ch, &m));
    if (m == 0)
        return pirn_err(c, "ValueError", "ch is empty");
    int64_t k = 0;
    for (size_t i = 0; i + m <= n;) {
        const char *p = memchr(s + i, ch[0], n - m + 1 - i); /* a candidate */
        if (!p)
            break;
        i = (size_t)(p - s);
        if (memcmp(p, ch, m) == 0) {
            k++;
            i += m;
        } else {
            i++;
        }
    }
    return pirn_ok_int(c, k);
}

static uint32_t crc_table[256];

static int checksum(pirn_call *c) {
    const uint8_t *data;
    size_t n;
    PIRN_TRY(pirn_get_bytes(c, "data", &data, &n));
    if (crc_table[1] == 0) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t r = i;
            for (int k = 0; k < 8; k++)
                r = (r >> 1) ^ (0xedb88320u & (0u - (r & 1)));
            crc_table[i] = r;
        }
    }
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < n; i++)
        crc = (crc >> 8) ^ crc_table[(crc ^ data[i]) & 0xff];
    return pirn_ok_int(c, (int64_t)(crc ^ 0xffffffffu));
}

#define MAX_REPEAT ((int64_t)16 << 20)

static int repeat(pirn_call *c) {
    const char *s;
    size_t len;
    int64_t n;
    PIRN_TRY(pirn_get_text(c, "s", &s, &len));
    PIRN_TRY(pirn_get_int(c, "n", &n));
    if (n < 0)
        return pirn_errf(c, "ValueError", "n = %lld, want n >= 0", (long long)n);
    if (len > 0 && n > MAX_REPEAT / (int64_t)len)
        return pirn_errf(c, "ValueError", "the result would exceed %lld bytes", (long long)MAX_REPEAT);
    if (len == 0)
        return pirn_ok_text(c, "", 0);
    pirn_writer *w = pirn_ok_begin(c);
    char *out = pirn_enc_text_space(w, len * (size_t)n);
    for (int64_t i = 0; out && i < n; i++)
        memcpy(out + (size_t)i * len, s, len);
    return pirn_ok_end(c);
}

static int nonblank(pirn_call *c) {
    const char *s;
    size_t n;
    PIRN_TRY(pirn_get_text(c, "s", &s, &n));
    while (n > 0 && is_space(s[0]))
        s++, n--;
    while (n > 0 && is_space(s[n - 1]))
        n--;
    if (n == 0)
        return pirn_skip(c, "s is blank");
    return pirn_ok_text(c, s, n);
}

static int words(pirn_call *c) {
    const char *s;
    size_t n;
    PIRN_TRY(pirn_get_text(c, "s", &s, &n));
    pirn_writer *w = pirn_ok_begin(c);
    size_t list = pirn_enc_begin(w); /* the count is not known yet */
    for (size_t i = 0; i < n;) {
        while (i < n && is_space(s[i]))
            i++;
        size_t start = i;
        while (i < n && !is_space(s[i]))
            i++;
        if (i > start)
            pirn_enc_text(w, s + start, i - start);
    }
    pirn_enc_end_array(w, list);
    return pirn_ok_end(c);
}

static int stats(pirn_call *c) {
    double *xs;
    size_t n;
    PIRN_TRY(pirn_get_float_list(c, "xs", &xs, &n));
    if (n == 0)
        return pirn_err(c, "ValueError", "xs is empty");
    double sum = 0, lo = xs[0], hi = xs[0];
    for (size_t i = 0; i < n; i++) {
        sum += xs[i];
        lo = xs[i] < lo ? xs[i] : lo;
        hi = xs[i] > hi ? xs[i] : hi;
    }
    pirn_logf(PIRN_LOG_DEBUG, "stats over %zu values", n);
    pirn_writer *w = pirn_ok_begin(c);
    size_t m = pirn_enc_begin(w); /* keys in any order: end_map sorts them */
    pirn_enc_str(w, "count");
    pirn_enc_float(w, (double)n);
    pirn_enc_str(w, "mean");
    pirn_enc_float(w, sum / (double)n);
    pirn_enc_str(w, "min");
    pirn_enc_float(w, lo);
    pirn_enc_str(w, "max");
    pirn_enc_float(w, hi);
    pirn_enc_end_map(w, m);
    return pirn_ok_end(c);
}

static int join(pirn_call *c) {
    const char *sep = " ";
    size_t sep_len = 1;
    if (pirn_has(c, "sep"))
        PIRN_TRY(pirn_get_text(c, "sep", &sep, &sep_len));
    /* Every input but sep, in canonical name order (inputs, then config). */
    size_t total = 0, parts = 0;
    for (size_t i = 0; i < pirn_arg_count(c); i++) {
        const pirn_arg *a = pirn_arg_at(c, i);
        const char *s;
        size_t n;
        if (pirn_declared(c, a->name))
            continue;
        PIRN_TRY(pirn_arg_text(c, a, &s, &n));
        total += n + (parts++ ? sep_len : 0);
    }
    pirn_writer *w = pirn_ok_begin(c);
    char *out = pirn_enc_text_space(w, total);
    for (size_t i = 0, at = 0, k = 0; out && i < pirn_arg_count(c); i++) {
        const pirn_arg *a = pirn_arg_at(c, i);
        const char *s;
        size_t n;
        if (pirn_declared(c, a->name))
            continue;
        pirn_arg_text(c, a, &s, &n);
        if (k++) {
            memcpy(out + at, sep, sep_len);
            at += sep_len;
        }
        memcpy(out + at, s, n);
        at += n;
    }
    return pirn_ok_end(c);
}

static const pirn_knot knots[] = {
    {.name = "upper", .doc = "Returns s with ASCII letters in upper case.", .fn = upper, .output = "str",
     .inputs = PIRN_INPUTS(PIRN_IN("s", "str", "the text"))},
    {.name = "count", .doc = "Counts the non-overlapping occurrences of ch in s.", .fn = count, .output = "int",
     .inputs = PIRN_INPUTS(PIRN_IN("s", "str", "the text"), PIRN_IN("ch", "str", "what to count (non-empty)"))},
    {.name = "checksum", .doc = "Returns the CRC-32 (IEEE) of data.", .fn = checksum, .output = "int",
     .inputs = PIRN_INPUTS(PIRN_IN("data", "bytes", "the data (text counts as its UTF-8)"))},
    {.name = "repeat", .doc = "Returns s repeated n times.", .fn = repeat, .output = "str",
     .inputs = PIRN_INPUTS(PIRN_IN("s", "str", "the text"), PIRN_IN("n", "int", "how many times (>= 0)"))},
    {.name = "nonblank", .doc = "Returns s without surrounding whitespace; skips if nothing is left.",
     .fn = nonblank, .output = "str", .inputs = PIRN_INPUTS(PIRN_IN("s", "str", "the text"))},
    {.name = "words", .doc = "Splits s on whitespace.", .fn = words, .output = "list[str]",
     .inputs = PIRN_INPUTS(PIRN_IN("s", "str", "the text"))},
    {.name = "stats", .doc = "Returns the count, mean, min and max of xs.", .fn = stats, .output = "dict[float]",
     .inputs = PIRN_INPUTS(PIRN_IN("xs", "list[float]", "the numbers (at least one)"))},
    {.name = "join", .doc = "Joins every further input, in name order, with sep.", .fn = join, .output = "str",
     .inputs = PIRN_INPUTS(PIRN_OPT("sep", "str", "the separator (default a space)")), .rest = "str"},
};

PIRN_MODULE("text", knots);
