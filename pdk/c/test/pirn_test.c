/*
 * Native unit tests of pirn.h. Run with `make test` in pdk/c, or:
 *
 *     cc -std=c11 -I.. pirn_test.c -o pirn_test && ./pirn_test ../../..
 *
 * The argument is the repository root: the tests read the canonical
 * encoding vectors (cas/testdata/canonical.json) and the ABI golden vectors
 * (the .cbor files in abi/testdata).
 */
#define PIRN_IMPLEMENTATION
#include "../pirn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures, checks;
static const char *root = "../..";

#define CHECK(cond)                                                                \
    do {                                                                           \
        checks++;                                                                  \
        if (!(cond)) {                                                             \
            failures++;                                                            \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
        }                                                                          \
    } while (0)

#define CHECK_EQ_INT(got, want)                                                          \
    do {                                                                                 \
        long long g_ = (long long)(got), w_ = (long long)(want);                         \
        checks++;                                                                        \
        if (g_ != w_) {                                                                  \
            failures++;                                                                  \
            fprintf(stderr, "%s:%d: %s = %lld, want %lld\n", __FILE__, __LINE__, #got, g_, w_); \
        }                                                                                \
    } while (0)

#define CHECK_STR(got, want) check_str(__FILE__, __LINE__, #got, (got), (want))
#define CHECK_BYTES(what, got, gotn, want, wantn) \
    check_bytes(__FILE__, __LINE__, (what), (got), (gotn), (want), (wantn))

static void check_str(const char *file, int line, const char *expr, const char *got, const char *want) {
    checks++;
    if (!got || strcmp(got, want) != 0) {
        failures++;
        fprintf(stderr, "%s:%d: %s = \"%s\", want \"%s\"\n", file, line, expr, got ? got : "(null)", want);
    }
}

static const char *hex(const uint8_t *p, size_t n) {
    static char buf[4][8192];
    static int which;
    char *s = buf[which++ % 4];
    size_t i;
    for (i = 0; i < n && 2 * i + 2 < sizeof buf[0]; i++)
        sprintf(s + 2 * i, "%02x", p[i]);
    s[2 * i] = 0;
    return s;
}

static void check_bytes(const char *file, int line, const char *what, const uint8_t *got, size_t gotn,
                        const uint8_t *want, size_t wantn) {
    checks++;
    if (gotn != wantn || (wantn && memcmp(got, want, wantn) != 0)) {
        failures++;
        fprintf(stderr, "%s:%d: %s:\n  got  %s\n  want %s\n", file, line, what, hex(got, gotn), hex(want, wantn));
    }
}

/* unhex decodes a hex string into a malloc'd buffer. */
static uint8_t *unhex(const char *h, size_t *n) {
    size_t len = strlen(h) / 2;
    uint8_t *b = (uint8_t *)malloc(len ? len : 1);
    for (size_t i = 0; i < 2 * len; i++) {
        char c = h[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (v < 0) {
            fprintf(stderr, "bad hex %s\n", h);
            exit(2);
        }
        b[i / 2] = (uint8_t)(i % 2 ? b[i / 2] << 4 | v : v);
    }
    *n = len;
    return b;
}

static uint8_t *read_file(const char *rel, size_t *n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s (pass the repository root as the argument)\n", path);
        exit(2);
    }
    size_t cap = 4096, len = 0;
    uint8_t *b = (uint8_t *)malloc(cap);
    size_t got;
    while ((got = fread(b + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap)
            b = (uint8_t *)realloc(b, cap *= 2);
    }
    fclose(f);
    *n = len;
    return b;
}

/* ---- A minimal JSON walker for canonical.json ---------------------------- */

typedef struct json {
    const char *s;
    size_t i, n;
    int err;
} json;

static void jws(json *j) {
    while (j->i < j->n && strchr(" \t\r\n", j->s[j->i]))
        j->i++;
}

static bool jlit(json *j, char c) {
    jws(j);
    if (j->i < j->n && j->s[j->i] == c) {
        j->i++;
        return true;
    }
    return false;
}

/* jstr reads a string into out (escapes other than \" \\ \/ and \uXXXX as '?'). */
static bool jstr(json *j, char *out, size_t cap) {
    size_t o = 0;
    if (!jlit(j, '"'))
        return j->err = 1, false;
    while (j->i < j->n && j->s[j->i] != '"') {
        char c = j->s[j->i++];
        if (c == '\\' && j->i < j->n) {
            c = j->s[j->i++];
            if (c == 'u') {
                j->i += 4;
                c = '?';
            } else if (c == 'n') {
                c = '\n';
            } else if (c != '"' && c != '\\' && c != '/') {
                c = '?';
            }
        }
        if (o + 1 < cap)
            out[o++] = c;
    }
    out[o] = 0;
    if (j->i >= j->n)
        return j->err = 1, false;
    j->i++;
    return true;
}

static void jskip(json *j) {
    char tmp[8];
    jws(j);
    if (j->i >= j->n) {
        j->err = 1;
        return;
    }
    char c = j->s[j->i];
    if (c == '"') {
        jstr(j, tmp, sizeof tmp);
    } else if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->i++;
        if (jlit(j, close))
            return;
        do {
            if (c == '{') {
                jstr(j, tmp, sizeof tmp);
                if (!jlit(j, ':'))
                    j->err = 1;
            }
            jskip(j);
        } while (!j->err && jlit(j, ','));
        if (!jlit(j, close))
            j->err = 1;
    } else {
        while (j->i < j->n && !strchr(",]} \t\r\n", j->s[j->i]))
            j->i++;
    }
}

typedef struct vector {
    char name[256], input[4096], canonical[4096], error[256];
} vector;

/* each_vector calls fn for every object of the top-level array `key`. */
static int each_vector(const char *text, size_t n, const char *key, void (*fn)(const vector *)) {
    json j = {text, 0, n, 0};
    int count = 0;
    char k[64];
    if (!jlit(&j, '{'))
        return -1;
    do {
        if (!jstr(&j, k, sizeof k) || !jlit(&j, ':'))
            return -1;
        if (strcmp(k, key) != 0) {
            jskip(&j);
            continue;
        }
        if (!jlit(&j, '['))
            return -1;
        if (jlit(&j, ']'))
            continue;
        do {
            vector v;
            memset(&v, 0, sizeof v);
            if (!jlit(&j, '{'))
                return -1;
            do {
                char f[64];
                if (!jstr(&j, f, sizeof f) || !jlit(&j, ':'))
                    return -1;
                jws(&j);
                char *dst = !strcmp(f, "name") ? v.name
                            : !strcmp(f, "input") ? v.input
                            : !strcmp(f, "canonical") ? v.canonical
                            : !strcmp(f, "error") ? v.error : NULL;
                if (dst && j.i < j.n && j.s[j.i] == '"')
                    jstr(&j, dst, sizeof v.input);
                else
                    jskip(&j);
            } while (!j.err && jlit(&j, ','));
            if (!jlit(&j, '}'))
                return -1;
            fn(&v);
            count++;
        } while (!j.err && jlit(&j, ','));
        if (!jlit(&j, ']'))
            return -1;
    } while (!j.err && jlit(&j, ','));
    return j.err ? -1 : count;
}

/* ---- canonical.json ------------------------------------------------------ */

static void canonical_vector(const vector *v) {
    size_t in_n, want_n;
    uint8_t *in = unhex(v->input, &in_n), *want = unhex(v->canonical, &want_n);
    pirn_writer w = PIRN_WRITER_INIT;
    int e = pirn_canonicalize(in, in_n, &w);
    if (e != PIRN_OK) {
        failures++;
        fprintf(stderr, "canonical %s: %s: %s\n", v->name, v->input, pirn_strerror(e));
    }
    CHECK_BYTES(v->name, w.buf, w.len, want, want_n);
    /* The canonical form is canonical, and a fixed point. */
    CHECK_EQ_INT(pirn_check_canonical(want, want_n), PIRN_OK);
    pirn_enc_reset(&w);
    CHECK_EQ_INT(pirn_canonicalize(want, want_n, &w), PIRN_OK);
    CHECK_BYTES(v->name, w.buf, w.len, want, want_n);
    /* The check agrees with the re-encoding. */
    bool same = in_n == want_n && memcmp(in, want, in_n) == 0;
    CHECK_EQ_INT(pirn_check_canonical(in, in_n) == PIRN_OK, same);
    /* Every strict prefix is an error (every item is self-delimiting). */
    for (size_t k = 0; k < in_n; k++) {
        pirn_enc_reset(&w);
        CHECK(pirn_canonicalize(in, k, &w) != PIRN_OK && w.len == 0);
    }
    /* The reader skips it exactly. */
    pirn_reader r;
    pirn_dec_init(&r, in, in_n);
    CHECK_EQ_INT(pirn_dec_skip(&r), PIRN_OK);
    CHECK_EQ_INT(pirn_dec_end(&r), PIRN_OK);
    pirn_enc_free(&w);
    free(in);
    free(want);
}

static void rejected_vector(const vector *v) {
    static const struct {
        const char *substr;
        int err;
    } want[] = {
        {"cannot unmarshal", PIRN_E_KEY}, {"tag", PIRN_E_UNSUPPORTED}, {"simple value", PIRN_E_UNSUPPORTED},
        {"duplicate", PIRN_E_DUPKEY},     {"UTF-8", PIRN_E_UTF8},      {"overflow", PIRN_E_OVERFLOW},
        {"extraneous", PIRN_E_TRAILING},  {"EOF", PIRN_E_TRUNCATED},
    };
    size_t in_n;
    uint8_t *in = unhex(v->input, &in_n);
    pirn_writer w = PIRN_WRITER_INIT;
    int e = pirn_canonicalize(in, in_n, &w);
    CHECK(e != PIRN_OK && w.len == 0);
    CHECK(pirn_check_canonical(in, in_n) != PIRN_OK);
    int expect = 0;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (strstr(v->error, want[i].substr))
            expect = want[i].err;
    if (expect && e != expect) {
        failures++;
        fprintf(stderr, "rejected %s (%s): error %s, want %s\n", v->name, v->input, pirn_strerror(e),
                pirn_strerror(expect));
    }
    checks++;
    pirn_enc_free(&w);
    free(in);
}

static void test_canonical_json(void) {
    size_t n;
    char *text = (char *)read_file("cas/testdata/canonical.json", &n);
    int nc = each_vector(text, n, "canonical", canonical_vector);
    int nr = each_vector(text, n, "rejected", rejected_vector);
    CHECK(nc >= 20);
    CHECK(nr >= 5);
    printf("canonical.json: %d canonical and %d rejected vectors\n", nc, nr);
    free(text);
}

/* ---- floats, ints, UTF-8 ------------------------------------------------- */

static void enc_check(const char *what, pirn_writer *w, const char *want_hex) {
    size_t n;
    uint8_t *want = unhex(want_hex, &n);
    CHECK_EQ_INT(w->err, PIRN_OK);
    CHECK_BYTES(what, w->buf, w->len, want, n);
    CHECK_EQ_INT(pirn_check_canonical(w->buf, w->len), PIRN_OK);
    free(want);
    pirn_enc_reset(w);
}

static double bits64(uint64_t b) {
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static void test_scalars(void) {
    pirn_writer w = PIRN_WRITER_INIT;
    static const struct {
        double d;
        const char *hex;
    } floats[] = {
        {0.0, "f90000"},
        {1.0, "f93c00"},
        {1.5, "f93e00"},
        {-4.0, "f9c400"},
        {5.0, "f94500"},
        {65504.0, "f97bff"},          /* largest float16 */
        {65536.0, "fa47800000"},
        {100000.0, "fa47c35000"},
        {5.960464477539063e-8, "f90001"}, /* smallest float16 subnormal */
        {6.103515625e-05, "f90400"},  /* smallest float16 normal */
        {3.0517578125e-05, "f90200"}, /* a float16 subnormal */
        {1.401298464324817e-45, "fa00000001"}, /* smallest float32 subnormal */
        {1.1754943508222875e-38, "fa00800000"},
        {3.4028234663852886e38, "fa7f7fffff"},
        {0.1, "fb3fb999999999999a"},
        {1e300, "fb7e37e43c8800759c"},
        {0.5, "f93800"},
        {2.5, "f94100"},
    };
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
        pirn_enc_float(&w, floats[i].d);
        enc_check(floats[i].hex, &w, floats[i].hex);
        /* and back */
        size_t n;
        uint8_t *b = unhex(floats[i].hex, &n);
        pirn_reader r;
        double d = -1;
        pirn_dec_init(&r, b, n);
        CHECK_EQ_INT(pirn_dec_float(&r, &d), PIRN_OK);
        CHECK(d == floats[i].d);
        free(b);
    }
    pirn_enc_float(&w, bits64(0x8000000000000000ull)); /* -0.0 */
    enc_check("-0", &w, "f98000");
    pirn_enc_float(&w, bits64(0x7ff0000000000000ull));
    enc_check("+inf", &w, "f97c00");
    pirn_enc_float(&w, bits64(0xfff0000000000000ull));
    enc_check("-inf", &w, "f9fc00");
    pirn_enc_float(&w, bits64(0x7ff8000000000001ull));
    enc_check("nan", &w, "f97e00");
    pirn_enc_float(&w, bits64(0xfff8000000000000ull));
    enc_check("-nan", &w, "f97e00");
    pirn_enc_float(&w, bits64(1)); /* float64 subnormal */
    enc_check("denormal", &w, "fb0000000000000001");
    /* 2^-25 is below float16 but a float32 normal */
    pirn_enc_float(&w, 2.98023223876953125e-08);
    enc_check("2^-25", &w, "fa33000000");
    /* 1 + 2^-10 is float16; 1 + 2^-11 is not */
    pirn_enc_float(&w, 1.0009765625);
    enc_check("1+2^-10", &w, "f93c01");
    pirn_enc_float(&w, 1.00048828125);
    enc_check("1+2^-11", &w, "fa3f801000");

    static const struct {
        int64_t i;
        const char *hex;
    } ints[] = {
        {0, "00"}, {23, "17"}, {24, "1818"}, {255, "18ff"}, {256, "190100"}, {65535, "19ffff"},
        {65536, "1a00010000"}, {4294967295ll, "1affffffff"}, {4294967296ll, "1b0000000100000000"},
        {INT64_MAX, "1b7fffffffffffffff"}, {-1, "20"}, {-24, "37"}, {-25, "3818"}, {-256, "38ff"},
        {-257, "390100"}, {INT64_MIN, "3b7fffffffffffffff"},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        pirn_enc_int(&w, ints[i].i);
        enc_check(ints[i].hex, &w, ints[i].hex);
        size_t n;
        uint8_t *b = unhex(ints[i].hex, &n);
        pirn_reader r;
        int64_t v = 0;
        pirn_dec_init(&r, b, n);
        CHECK_EQ_INT(pirn_dec_int(&r, &v), PIRN_OK);
        CHECK_EQ_INT(v, ints[i].i);
        free(b);
    }
    /* Non-shortest heads are read but are not canonical. */
    {
        static const uint8_t five[] = {0x18, 0x05}, big[] = {0x1b, 0xff, 0, 0, 0, 0, 0, 0, 0};
        pirn_reader r;
        int64_t v;
        pirn_dec_init(&r, five, sizeof five);
        CHECK_EQ_INT(pirn_dec_int(&r, &v), PIRN_OK);
        CHECK_EQ_INT(v, 5);
        CHECK_EQ_INT(pirn_check_canonical(five, sizeof five), PIRN_E_NONCANONICAL);
        pirn_dec_init(&r, big, sizeof big);
        CHECK_EQ_INT(pirn_dec_int(&r, &v), PIRN_E_OVERFLOW);
        CHECK_EQ_INT(r.pos, 0);
    }
    /* Strings */
    pirn_enc_str(&w, "hi");
    enc_check("hi", &w, "626869");
    pirn_enc_text(&w, "aaaaaaaaaaaaaaaaaaaaaaaa", 24);
    enc_check("24 chars", &w, "7818616161616161616161616161616161616161616161616161");
    pirn_enc_bytes(&w, "hi", 2);
    enc_check("bytes", &w, "426869");
    pirn_enc_null(&w);
    pirn_enc_bool(&w, true);
    pirn_enc_bool(&w, false);
    CHECK_BYTES("null true false", w.buf, w.len, (const uint8_t *)"\xf6\xf5\xf4", 3);
    pirn_enc_reset(&w);
    char *t = pirn_enc_text_space(&w, 3);
    memcpy(t, "abc", 3);
    enc_check("text space", &w, "63616263");

    /* UTF-8 */
    static const struct {
        const char *s;
        bool ok;
    } utf8[] = {
        {"", true}, {"abc", true}, {"\xc3\xa9", true}, {"\xe2\x82\xac", true}, {"\xf0\x9f\x98\x80", true},
        {"\xef\xbf\xbf", true}, {"\xf4\x8f\xbf\xbf", true},
        {"\xc0\x80", false},         /* overlong NUL */
        {"\xe0\x80\xaf", false},     /* overlong */
        {"\xed\xa0\x80", false},     /* surrogate */
        {"\xf4\x90\x80\x80", false}, /* > U+10FFFF */
        {"\xc3", false},             /* truncated */
        {"\xe2\x82", false},
        {"\x80", false},
        {"a\xffz", false},
        {"\xc3\x28", false},
    };
    for (size_t i = 0; i < sizeof utf8 / sizeof utf8[0]; i++) {
        CHECK_EQ_INT(pirn_utf8_valid(utf8[i].s, strlen(utf8[i].s)), utf8[i].ok);
        pirn_enc_reset(&w);
        CHECK_EQ_INT(pirn_enc_str(&w, utf8[i].s), utf8[i].ok ? PIRN_OK : PIRN_E_UTF8);
    }
    /* The writer's error sticks. */
    pirn_enc_reset(&w);
    CHECK_EQ_INT(pirn_enc_text(&w, "\xff", 1), PIRN_E_UTF8);
    CHECK_EQ_INT(pirn_enc_int(&w, 1), PIRN_E_UTF8);
    CHECK_EQ_INT(w.len, 0);
    pirn_enc_free(&w);
}

/* ---- containers ---------------------------------------------------------- */

static void test_containers(void) {
    pirn_writer w = PIRN_WRITER_INIT;
    /* Sorting maps, nested, with unknown counts. */
    size_t m = pirn_enc_begin(&w);
    pirn_enc_str(&w, "zz");
    pirn_enc_int(&w, 1);
    pirn_enc_str(&w, "b");
    size_t inner = pirn_enc_begin(&w);
    pirn_enc_str(&w, "y");
    pirn_enc_int(&w, 2);
    pirn_enc_str(&w, "x");
    pirn_enc_int(&w, 1);
    pirn_enc_end_map(&w, inner);
    pirn_enc_str(&w, "a");
    size_t arr = pirn_enc_begin(&w);
    for (int i = 0; i < 30; i++)
        pirn_enc_int(&w, i);
    pirn_enc_end_array(&w, arr);
    pirn_enc_end_map(&w, m);
    enc_check("sorted map", &w,
              "a3"
              "6161" "981e000102030405060708090a0b0c0d0e0f101112131415161718181819181a181b181c181d"
              "6162" "a2617801617902"
              "627a7a" "01");
    /* Empty containers. */
    m = pirn_enc_begin(&w);
    pirn_enc_end_map(&w, m);
    m = pirn_enc_begin(&w);
    pirn_enc_end_array(&w, m);
    CHECK_BYTES("empty", w.buf, w.len, (const uint8_t *)"\xa0\x80", 2);
    pirn_enc_reset(&w);
    /* Duplicate keys, non-text keys, a key without a value. */
    m = pirn_enc_begin(&w);
    pirn_enc_str(&w, "x");
    pirn_enc_int(&w, 1);
    pirn_enc_str(&w, "x");
    pirn_enc_int(&w, 2);
    CHECK_EQ_INT(pirn_enc_end_map(&w, m), PIRN_E_DUPKEY);
    pirn_enc_reset(&w);
    m = pirn_enc_begin(&w);
    pirn_enc_int(&w, 1);
    pirn_enc_int(&w, 2);
    CHECK_EQ_INT(pirn_enc_end_map(&w, m), PIRN_E_KEY);
    pirn_enc_reset(&w);
    m = pirn_enc_begin(&w);
    pirn_enc_str(&w, "x");
    CHECK_EQ_INT(pirn_enc_end_map(&w, m), PIRN_E_VALUE);
    pirn_enc_reset(&w);
    /* An unsorted fixed-size map is written as asked, and is not canonical. */
    pirn_enc_map(&w, 2);
    pirn_enc_str(&w, "b");
    pirn_enc_int(&w, 1);
    pirn_enc_str(&w, "a");
    pirn_enc_int(&w, 2);
    CHECK_EQ_INT(pirn_check_canonical(w.buf, w.len), PIRN_E_NONCANONICAL);
    pirn_enc_reset(&w);
    /* raw items are checked for well-formedness */
    CHECK_EQ_INT(pirn_enc_raw(&w, "\x82\x01", 2), PIRN_E_TRUNCATED);
    pirn_enc_reset(&w);
    CHECK_EQ_INT(pirn_enc_raw(&w, "\x01\x01", 2), PIRN_E_TRAILING);
    pirn_enc_reset(&w);
    CHECK_EQ_INT(pirn_enc_raw(&w, "\x82\x01\x02", 3), PIRN_OK);
    enc_check("raw", &w, "820102");

    /* Reading containers, definite and indefinite. */
    static const uint8_t indef[] = {0x9f, 0x01, 0xf9, 0x3e, 0x00, 0x9f, 0xff, 0xff};
    pirn_reader r;
    size_t n;
    pirn_dec_init(&r, indef, sizeof indef);
    CHECK_EQ_INT(pirn_dec_peek(&r), PIRN_T_ARRAY);
    CHECK_EQ_INT(pirn_dec_array(&r, &n), PIRN_OK);
    CHECK(n == PIRN_INDEFINITE);
    int count = 0;
    while (pirn_dec_next(&r, &n)) {
        count++;
        pirn_dec_skip(&r);
    }
    CHECK_EQ_INT(count, 3);
    CHECK_EQ_INT(pirn_dec_end(&r), PIRN_OK);
    /* indefinite strings are canonicalised, and refused by dec_text */
    static const uint8_t chunks[] = {0x7f, 0x62, 'h', 'e', 0x63, 'l', 'l', 'o', 0xff};
    CHECK_EQ_INT(pirn_canonicalize(chunks, sizeof chunks, &w), PIRN_OK);
    enc_check("chunks", &w, "6568656c6c6f");
    const char *s;
    size_t sn;
    pirn_dec_init(&r, chunks, sizeof chunks);
    CHECK_EQ_INT(pirn_dec_text(&r, &s, &sn), PIRN_E_INDEFINITE);
    /* the reader's error sticks */
    CHECK_EQ_INT(pirn_dec_null(&r), PIRN_E_INDEFINITE);
    CHECK(!pirn_dec_next(&r, &n));
    static const uint8_t badchunk[] = {0x7f, 0x42, 'h', 'e', 0xff};
    CHECK_EQ_INT(pirn_canonicalize(badchunk, sizeof badchunk, &w), PIRN_E_MALFORMED);
    /* indefinite map with keys out of order */
    static const uint8_t imap[] = {0xbf, 0x61, 'b', 0x01, 0x61, 'a', 0x02, 0xff};
    CHECK_EQ_INT(pirn_canonicalize(imap, sizeof imap, &w), PIRN_OK);
    enc_check("indefinite map", &w, "a2616102616201");

    /* Nesting: 64 levels are fine, 65 are not. */
    uint8_t deep[200];
    memset(deep, 0x81, sizeof deep);
    deep[64] = 0x00;
    CHECK_EQ_INT(pirn_canonicalize(deep, 65, &w), PIRN_OK);
    pirn_enc_reset(&w);
    deep[64] = 0x81;
    deep[65] = 0x00;
    CHECK_EQ_INT(pirn_canonicalize(deep, 66, &w), PIRN_E_DEPTH);
    pirn_dec_init(&r, deep, sizeof deep);
    CHECK(pirn_dec_skip(&r) != PIRN_OK);
    memset(deep, 0x81, sizeof deep);
    CHECK(pirn_canonicalize(deep, sizeof deep, &w) != PIRN_OK);
    /* Counts beyond the data or the limit. */
    static const uint8_t huge_array[] = {0x9b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x00};
    static const uint8_t big_array[] = {0x9a, 0x00, 0xff, 0xff, 0xff, 0x00};
    static const uint8_t huge_bytes[] = {0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00};
    static const uint8_t huge_map[] = {0xbb, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    CHECK_EQ_INT(pirn_canonicalize(huge_array, sizeof huge_array, &w), PIRN_E_LIMIT);
    CHECK_EQ_INT(pirn_canonicalize(big_array, sizeof big_array, &w), PIRN_E_TRUNCATED);
    CHECK_EQ_INT(pirn_canonicalize(huge_bytes, sizeof huge_bytes, &w), PIRN_E_TRUNCATED);
    CHECK_EQ_INT(pirn_canonicalize(huge_map, sizeof huge_map, &w), PIRN_E_LIMIT);
    pirn_dec_init(&r, huge_bytes, sizeof huge_bytes);
    const uint8_t *p;
    CHECK_EQ_INT(pirn_dec_bytes(&r, &p, &sn), PIRN_E_TRUNCATED);
    pirn_dec_init(&r, big_array, sizeof big_array);
    CHECK_EQ_INT(pirn_dec_array(&r, &n), PIRN_E_TRUNCATED);
    /* Malformed heads, breaks, tags, simple values. */
    static const char *bad[] = {"1c", "3e", "5d", "ff", "c0", "f0", "f7", "f818", "f8ff", "f820", "fc", "9fff00",
                                "a1", "a16161", "a10102", "bf61610102ff", "80ff"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t bn;
        uint8_t *b = unhex(bad[i], &bn);
        int e = pirn_canonicalize(b, bn, &w);
        if (e == PIRN_OK)
            fprintf(stderr, "canonicalize(%s) accepted\n", bad[i]);
        CHECK(e != PIRN_OK);
        CHECK(pirn_check_canonical(b, bn) != PIRN_OK);
        free(b);
    }
    /* pirn_enc_value copies values canonically */
    static const uint8_t noncanon[] = {0x82, 0x18, 0x05, 0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0};
    pirn_dec_init(&r, noncanon, sizeof noncanon);
    pirn_enc_array(&w, 1);
    CHECK_EQ_INT(pirn_enc_value(&w, &r), PIRN_OK);
    enc_check("enc_value", &w, "818205f93e00");
    pirn_enc_free(&w);
}

/* ---- responses and requests through a module ------------------------------ */

typedef struct response {
    int outcome; /* 1 ok, 2 err, 3 skip */
    char type[128], message[512], reason[256], trace[128];
    uint8_t value[512];
    size_t value_len;
    uint8_t detail[128];
    size_t detail_len;
} response;

static void copy_text(pirn_reader *r, char *dst, size_t cap) {
    const char *s = "";
    size_t n = 0;
    pirn_dec_text(r, &s, &n);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = 0;
}

static void copy_item(pirn_reader *r, uint8_t *dst, size_t cap, size_t *len) {
    size_t start = r->pos;
    pirn_dec_skip(r);
    size_t n = r->pos - start;
    *len = n < cap ? n : 0;
    if (n < cap)
        memcpy(dst, r->buf + start, n);
}

/* parse_response decodes and checks a response: a canonical map with
 * exactly one arm. */
static response parse_response(const pirn_writer *w) {
    response resp;
    memset(&resp, 0, sizeof resp);
    CHECK_EQ_INT(w->err, PIRN_OK);
    int e = pirn_check_canonical(w->buf, w->len);
    if (e) {
        failures++;
        fprintf(stderr, "response %s is not canonical: %s\n", hex(w->buf, w->len), pirn_strerror(e));
        return resp;
    }
    pirn_reader r;
    size_t n, m;
    const char *k;
    size_t kn;
    pirn_dec_init(&r, w->buf, w->len);
    pirn_dec_map(&r, &n);
    CHECK_EQ_INT(n, 1);
    pirn_dec_text(&r, &k, &kn);
    if (kn == 2 && !memcmp(k, "ok", 2)) {
        resp.outcome = 1;
        copy_item(&r, resp.value, sizeof resp.value, &resp.value_len);
    } else {
        bool err = kn == 3 && !memcmp(k, "err", 3);
        CHECK(err || (kn == 4 && !memcmp(k, "skip", 4)));
        resp.outcome = err ? 2 : 3;
        pirn_dec_map(&r, &m);
        while (pirn_dec_next(&r, &m)) {
            pirn_dec_text(&r, &k, &kn);
#define KEY(s) (kn == strlen(s) && !memcmp(k, s, kn))
            if (KEY("type") && err)
                copy_text(&r, resp.type, sizeof resp.type);
            else if (KEY("message") && err)
                copy_text(&r, resp.message, sizeof resp.message);
            else if (KEY("trace") && err)
                copy_text(&r, resp.trace, sizeof resp.trace);
            else if (KEY("reason") && !err)
                copy_text(&r, resp.reason, sizeof resp.reason);
            else if (KEY("detail"))
                copy_item(&r, resp.detail, sizeof resp.detail, &resp.detail_len);
            else {
                failures++;
                fprintf(stderr, "unexpected key %.*s in %s\n", (int)kn, k, hex(w->buf, w->len));
                pirn_dec_skip(&r);
            }
#undef KEY
        }
        CHECK(err ? resp.type[0] != 0 : resp.reason[0] != 0);
    }
    CHECK_EQ_INT(pirn_dec_end(&r), PIRN_OK);
    return resp;
}

/* request builds {"knot": k, "config": {...}, "inputs": {...}} from
 * "name=hex" strings; names starting with '@' go into config. */
static void request(pirn_writer *w, const char *knot, const char **args) {
    pirn_enc_reset(w);
    pirn_enc_map(w, 3);
    pirn_enc_str(w, "knot");
    pirn_enc_str(w, knot);
    for (int config = 1; config >= 0; config--) {
        pirn_enc_str(w, config ? "config" : "inputs");
        size_t m = pirn_enc_begin(w);
        for (const char **a = args; a && *a; a++) {
            if ((**a == '@') != config)
                continue;
            const char *eq = strchr(*a, '=');
            const char *name = *a + config;
            pirn_enc_text(w, name, (size_t)(eq - name));
            size_t vn;
            uint8_t *v = unhex(eq + 1, &vn);
            pirn_enc_raw(w, v, vn);
            free(v);
        }
        pirn_enc_end_map(w, m);
    }
    CHECK_EQ_INT(w->err, PIRN_OK);
}

static response invoke(const pirn_module *m, const char *knot, const char **args) {
    pirn_writer req = PIRN_WRITER_INIT, resp = PIRN_WRITER_INIT;
    request(&req, knot, args);
    pirn_handle(m, req.buf, req.len, &resp);
    response r = parse_response(&resp);
    pirn_enc_free(&req);
    pirn_enc_free(&resp);
    return r;
}

#define ARGS(...) ((const char *[]){__VA_ARGS__, NULL})

/* The arith knots of abi/message_test.go's manifest. */
static int k_double(pirn_call *c) {
    int64_t x;
    PIRN_TRY(pirn_get_int(c, "x", &x));
    return pirn_ok_int(c, 2 * x);
}

static int k_add(pirn_call *c) {
    int64_t a, b;
    PIRN_TRY(pirn_get_int(c, "a", &a));
    PIRN_TRY(pirn_get_int(c, "b", &b));
    return pirn_ok_int(c, a + b);
}

static int k_sum(pirn_call *c) {
    int64_t s = 0, v;
    for (size_t i = 0; i < pirn_arg_count(c); i++) {
        PIRN_TRY(pirn_arg_int(c, pirn_arg_at(c, i), &v));
        s += v;
    }
    return pirn_ok_int(c, s);
}

static const pirn_knot arith_knots[] = {
    {.name = "double", .doc = "Returns 2x.", .fn = k_double, .output = "int",
     .inputs = PIRN_INPUTS(PIRN_IN("x", "int", NULL))},
    {.name = "add", .doc = "Returns a+b.", .fn = k_add, .output = "int",
     .inputs = PIRN_INPUTS(PIRN_IN("a", "int", NULL), PIRN_IN("b", "int", NULL))},
    {.name = "sum", .doc = "Sums every input.", .fn = k_sum, .output = "int", .rest = "int"},
};
static const pirn_module arith = {"arith", arith_knots, sizeof arith_knots / sizeof arith_knots[0]};

/* Compound literals (PIRN_INPUTS) are static only at file scope. */
static const pirn_knot manifest_knots[] = {
    {.name = "k", .fn = k_add, .output = "list[float]",
     .inputs = PIRN_INPUTS(PIRN_OPT("sep", "str", "separator"), PIRN_IN("xs", "list[float]", NULL))},
};

static void test_manifest(void) {
    pirn_writer w = PIRN_WRITER_INIT;
    CHECK_EQ_INT(pirn_manifest_encode(&arith, &w), PIRN_OK);
    CHECK_EQ_INT(pirn_check_canonical(w.buf, w.len), PIRN_OK);
    size_t n;
    uint8_t *golden = read_file("abi/testdata/manifest.cbor", &n);
    CHECK_BYTES("manifest.cbor", w.buf, w.len, golden, n);
    free(golden);
    /* Inputs with docs and optional flags; a module without a name. */
    static const pirn_module mod = {NULL, manifest_knots, 1};
    pirn_enc_reset(&w);
    CHECK_EQ_INT(pirn_manifest_encode(&mod, &w), PIRN_OK);
    /* {"abi": 1, "knots": [{"name": "k", "inputs": [{"doc": "separator", "name": "sep",
     *  "type": "str", "optional": true}, {"name": "xs", "type": "list[float]"}],
     *  "output": "list[float]"}]} */
    enc_check("manifest with optional input", &w,
              "a26361626901656b6e6f747381a3646e616d65616b66696e7075747382a463646f6369736570617261746f72"
              "646e616d6563736570647479706563737472686f7074696f6e616cf5a2646e616d6562787364747970656b6c"
              "6973745b666c6f61745d666f75747075746b6c6973745b666c6f61745d");
    pirn_enc_free(&w);
}

static void test_golden_requests(void) {
    size_t n;
    uint8_t *req = read_file("abi/testdata/request-add.cbor", &n);
    pirn_writer resp = PIRN_WRITER_INIT;
    pirn_handle(&arith, req, n, &resp);
    size_t gn;
    uint8_t *golden = read_file("abi/testdata/response-ok.cbor", &gn);
    CHECK_BYTES("add(request-add.cbor)", resp.buf, resp.len, golden, gn);
    free(golden);
    /* Every truncation of the request is a PDKError, not a crash. */
    for (size_t k = 0; k < n; k++) {
        pirn_handle(&arith, req, k, &resp);
        response r = parse_response(&resp);
        CHECK_EQ_INT(r.outcome, 2);
        CHECK_STR(r.type, "PDKError");
    }
    free(req);
    pirn_enc_free(&resp);
}

/* request-mixed.cbor: describe(items=[1, -2, 2.5, "x", h'0001', null, true],
 * x={"zz": 1, "a": "é"}; config label="hello", scale=0.5). */
static int describe_ran;

static int k_describe_checked(pirn_call *c);

/* describe checks its inputs only for the pristine request; the byte flips
 * below just run it. */
static int k_describe(pirn_call *c) {
    describe_ran++;
    if (describe_ran == 1)
        return k_describe_checked(c);
    int64_t i;
    pirn_get_int(c, "items", &i);
    return pirn_ok_null(c);
}

static int k_describe_checked(pirn_call *c) {
    CHECK_STR(pirn_knot_name(c), "describe");
    CHECK_EQ_INT(pirn_arg_count(c), 4);
    CHECK_STR(pirn_arg_at(c, 0)->name, "x");     /* inputs, in canonical order */
    CHECK_STR(pirn_arg_at(c, 1)->name, "items");
    CHECK_STR(pirn_arg_at(c, 2)->name, "label"); /* then config */
    CHECK_STR(pirn_arg_at(c, 3)->name, "scale");
    CHECK(pirn_arg_at(c, 4) == NULL);
    CHECK(!pirn_find(c, "items")->config && pirn_find(c, "label")->config);
    CHECK(pirn_has(c, "scale") && !pirn_has(c, "nope") && !pirn_has(c, "item"));
    const char *label;
    double scale;
    CHECK_EQ_INT(pirn_get_str(c, "label", &label), PIRN_OK);
    CHECK_STR(label, "hello");
    CHECK_EQ_INT(pirn_get_float(c, "scale", &scale), PIRN_OK);
    CHECK(scale == 0.5);

    pirn_reader r;
    size_t n;
    int64_t i;
    double f;
    const char *s;
    const uint8_t *b;
    bool t;
    CHECK_EQ_INT(pirn_get_value(c, "items", &r), PIRN_OK);
    CHECK_EQ_INT(pirn_dec_array(&r, &n), PIRN_OK);
    CHECK_EQ_INT(n, 7);
    CHECK_EQ_INT(pirn_dec_peek(&r), PIRN_T_INT);
    pirn_dec_int(&r, &i);
    CHECK_EQ_INT(i, 1);
    pirn_dec_int(&r, &i);
    CHECK_EQ_INT(i, -2);
    CHECK_EQ_INT(pirn_dec_peek(&r), PIRN_T_FLOAT);
    pirn_dec_float(&r, &f);
    CHECK(f == 2.5);
    pirn_dec_text(&r, &s, &n);
    CHECK(n == 1 && s[0] == 'x');
    pirn_dec_bytes(&r, &b, &n);
    CHECK(n == 2 && b[0] == 0 && b[1] == 1);
    CHECK_EQ_INT(pirn_dec_peek(&r), PIRN_T_NULL);
    pirn_dec_null(&r);
    pirn_dec_bool(&r, &t);
    CHECK(t);
    CHECK_EQ_INT(pirn_dec_end(&r), PIRN_OK);

    CHECK_EQ_INT(pirn_get_value(c, "x", &r), PIRN_OK);
    CHECK_EQ_INT(pirn_dec_map(&r, &n), PIRN_OK);
    CHECK_EQ_INT(n, 2);
    pirn_dec_text(&r, &s, &n);
    CHECK(n == 1 && s[0] == 'a');
    pirn_dec_text(&r, &s, &n);
    CHECK(n == 2 && !memcmp(s, "\xc3\xa9", 2));
    pirn_dec_text(&r, &s, &n);
    CHECK(n == 2 && !memcmp(s, "zz", 2));
    pirn_dec_int(&r, &i);
    CHECK_EQ_INT(i, 1);
    CHECK_EQ_INT(pirn_dec_end(&r), PIRN_OK);

    /* A typed getter's failure sets the outcome; the first outcome wins. */
    CHECK_EQ_INT(pirn_get_int(c, "label", &i), PIRN_E_TYPE);
    CHECK_EQ_INT(pirn_ok_null(c), PIRN_E_OUTCOME);
    CHECK_EQ_INT(pirn_err(c, "Other", "ignored"), PIRN_E_OUTCOME);
    return PIRN_OK;
}

static const pirn_knot describe_knots[] = {
    {.name = "describe", .fn = k_describe, .output = "any",
     .inputs = PIRN_INPUTS(PIRN_IN("items", "list", NULL), PIRN_IN("x", "dict", NULL),
                           PIRN_IN("label", "str", NULL), PIRN_IN("scale", "float", NULL))},
};

static void test_request_mixed(void) {
    static const pirn_module mod = {NULL, describe_knots, 1};
    size_t n;
    uint8_t *req = read_file("abi/testdata/request-mixed.cbor", &n);
    pirn_writer resp = PIRN_WRITER_INIT;
    pirn_handle(&mod, req, n, &resp);
    CHECK_EQ_INT(describe_ran, 1);
    response r = parse_response(&resp);
    CHECK_EQ_INT(r.outcome, 2);
    CHECK_STR(r.type, "InputError");
    CHECK_STR(r.message, "knot \"describe\": input \"label\": want int, got str");
    /* truncations and byte flips never crash and always give a response */
    for (size_t k = 0; k < n; k++) {
        pirn_handle(&mod, req, k, &resp);
        r = parse_response(&resp);
        CHECK(r.outcome == 2 && !strcmp(r.type, "PDKError"));
    }
    for (size_t k = 0; k < n; k++) {
        for (int v = 0; v < 256; v += 7) {
            uint8_t old = req[k];
            req[k] = (uint8_t)v;
            pirn_handle(&mod, req, n, &resp);
            parse_response(&resp);
            req[k] = old;
        }
    }
    free(req);
    pirn_enc_free(&resp);
}

/* Knots producing the golden responses. */
static int k_ok(pirn_call *c) { return pirn_ok_int(c, 15); }
static int k_ok_null(pirn_call *c) { return pirn_ok_null(c); }

static int k_ok_map(pirn_call *c) {
    pirn_writer *w = pirn_ok_begin(c);
    size_t m = pirn_enc_begin(w); /* written out of order: end_map sorts */
    pirn_enc_str(w, "sum");
    pirn_enc_int(w, 3);
    pirn_enc_str(w, "items");
    pirn_enc_array(w, 2);
    pirn_enc_int(w, 1);
    pirn_enc_int(w, 2);
    pirn_enc_end_map(w, m);
    return pirn_ok_end(c);
}

static int k_err(pirn_call *c) {
    pirn_err(c, "ValueError", "boom");
    pirn_writer *d = pirn_detail(c);
    pirn_enc_map(d, 1);
    pirn_enc_str(d, "code");
    pirn_enc_int(d, 7);
    return pirn_trace(c, "main.go:3");
}

static int k_skip(pirn_call *c) { return pirn_skip(c, "nothing to do"); }

static void test_golden_responses(void) {
    static const pirn_knot ks[] = {
        {.name = "ok", .fn = k_ok, .output = "int"},
        {.name = "ok_map", .fn = k_ok_map, .output = "dict"},
        {.name = "ok_null", .fn = k_ok_null, .output = "null"},
        {.name = "err", .fn = k_err, .output = "any"},
        {.name = "skip", .fn = k_skip, .output = "any"},
    };
    static const pirn_module mod = {NULL, ks, 5};
    static const char *cases[][2] = {
        {"ok", "response-ok.cbor"},   {"ok_map", "response-ok-map.cbor"}, {"ok_null", "response-ok-null.cbor"},
        {"err", "response-err.cbor"}, {"skip", "response-skip.cbor"},
    };
    pirn_writer req = PIRN_WRITER_INIT, resp = PIRN_WRITER_INIT;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "abi/testdata/%s", cases[i][1]);
        size_t n;
        uint8_t *golden = read_file(path, &n);
        request(&req, cases[i][0], NULL);
        pirn_handle(&mod, req.buf, req.len, &resp);
        CHECK_BYTES(cases[i][1], resp.buf, resp.len, golden, n);
        free(golden);
    }
    pirn_enc_free(&req);
    pirn_enc_free(&resp);
}

/* ---- dispatch errors, outputs, logging ----------------------------------- */

static int k_nothing(pirn_call *c) {
    (void)c;
    return PIRN_OK;
}
static int k_code(pirn_call *c) {
    (void)c;
    return PIRN_E_VALUE;
}
static int k_unsorted(pirn_call *c) {
    pirn_writer *w = pirn_ok_begin(c);
    pirn_enc_map(w, 2);
    pirn_enc_str(w, "b");
    pirn_enc_int(w, 1);
    pirn_enc_str(w, "a");
    pirn_enc_int(w, 2);
    return pirn_ok_end(c);
}
static int k_two(pirn_call *c) {
    pirn_writer *w = pirn_ok_begin(c);
    pirn_enc_int(w, 1);
    pirn_enc_int(w, 2);
    return PIRN_OK; /* returning ends the value */
}
static int k_badutf8(pirn_call *c) { return pirn_ok_text(c, "\xff", 1); }
static int k_badmsg(pirn_call *c) { return pirn_errf(c, "E", "bad byte \xff here %d", 42); }
static int k_skip_detail(pirn_call *c) {
    pirn_skip(c, "");
    pirn_enc_str(pirn_detail(c), "why");
    return PIRN_OK;
}
static int k_bad_detail(pirn_call *c) {
    pirn_err(c, "E", "m");
    pirn_enc_map(pirn_detail(c), 3);
    return PIRN_OK;
}
static int k_lists(pirn_call *c) {
    double *xs;
    size_t n;
    PIRN_TRY(pirn_get_float_list(c, "xs", &xs, &n));
    int64_t *is;
    size_t ni;
    PIRN_TRY(pirn_get_int_list(c, "is", &is, &ni));
    pirn_writer *w = pirn_ok_begin(c);
    pirn_enc_array(w, n + ni);
    for (size_t i = 0; i < n; i++)
        pirn_enc_float(w, xs[i]);
    for (size_t i = 0; i < ni; i++)
        pirn_enc_int(w, is[i]);
    return pirn_ok_end(c);
}
static int k_str(pirn_call *c) {
    const char *s, *sep = "-";
    if (pirn_has(c, "sep"))
        PIRN_TRY(pirn_get_str(c, "sep", &sep));
    PIRN_TRY(pirn_get_str(c, "s", &s));
    pirn_logf(PIRN_LOG_WARN, "s=%s sep=%s", s, sep);
    size_t n = strlen(s) + strlen(sep) + 1;
    char *out = (char *)pirn_alloc(c, n);
    snprintf(out, n, "%s%s", s, sep);
    /* many small allocations, all freed at the end */
    for (int i = 0; i < 100; i++)
        memset(pirn_alloc(c, (size_t)i), 0, (size_t)i);
    return pirn_ok_str(c, out);
}

static int log_level;
static char log_msg[256];
static void capture_log(int level, const char *msg, size_t n) {
    log_level = level;
    if (n >= sizeof log_msg)
        n = sizeof log_msg - 1;
    memcpy(log_msg, msg, n);
    log_msg[n] = 0;
}

static const pirn_knot dispatch_knots[] = {
    {.name = "nothing", .fn = k_nothing, .output = "any"},
    {.name = "code", .fn = k_code, .output = "any"},
    {.name = "unsorted", .fn = k_unsorted, .output = "any"},
    {.name = "two", .fn = k_two, .output = "any"},
    {.name = "badutf8", .fn = k_badutf8, .output = "any"},
    {.name = "badmsg", .fn = k_badmsg, .output = "any"},
    {.name = "skip_detail", .fn = k_skip_detail, .output = "any"},
    {.name = "bad_detail", .fn = k_bad_detail, .output = "any"},
    {.name = "lists", .fn = k_lists, .output = "list",
     .inputs = PIRN_INPUTS(PIRN_IN("xs", "list[float]", NULL), PIRN_IN("is", "list[int]", NULL))},
    {.name = "str", .fn = k_str, .output = "str",
     .inputs = PIRN_INPUTS(PIRN_IN("s", "str", NULL), PIRN_OPT("sep", "str", NULL))},
    {NULL, NULL, NULL, NULL, NULL, NULL}, /* a {0} entry ends the table */
    {.name = "hidden", .fn = k_nothing, .output = "any"},
};

static void test_dispatch(void) {
    static const pirn_module mod = {"t", dispatch_knots, sizeof dispatch_knots / sizeof dispatch_knots[0]};
    response r;

    r = invoke(&arith, "add", ARGS("a=05", "b=0a"));
    CHECK(r.outcome == 1 && r.value_len == 1 && r.value[0] == 0x0f);
    r = invoke(&arith, "add", ARGS("a=05", "@b=0a")); /* b from config */
    CHECK(r.outcome == 1 && r.value[0] == 0x0f);
    r = invoke(&arith, "sum", ARGS("p=01", "q=02", "@r=1827"));
    CHECK(r.outcome == 1 && r.value_len == 2 && r.value[1] == 42);
    r = invoke(&arith, "sum", ARGS("p=01", "q=6178"));
    CHECK_STR(r.type, "InputError");
    CHECK_STR(r.message, "knot \"sum\": input \"q\": want int, got str");
    r = invoke(&arith, "nope", NULL);
    CHECK_STR(r.type, "UnknownKnot");
    CHECK_STR(r.message, "module has no knot \"nope\"");
    r = invoke(&arith, "add", ARGS("a=05"));
    CHECK_STR(r.type, "InputError");
    CHECK_STR(r.message, "knot \"add\": missing input \"b\"");
    r = invoke(&arith, "double", ARGS("x=05", "y=05"));
    CHECK_STR(r.message, "knot \"double\": unknown input \"y\"");
    r = invoke(&arith, "double", ARGS("x=6466697665"));
    CHECK_STR(r.message, "knot \"double\": input \"x\": want int, got str");
    r = invoke(&arith, "double", ARGS("x=1bffffffffffffffff"));
    CHECK_STR(r.message, "knot \"double\": input \"x\": integer outside the int64 range");
    r = invoke(&arith, "double", ARGS("x=f93c00"));
    CHECK_STR(r.message, "knot \"double\": input \"x\": want int, got float");
    r = invoke(&arith, "add", ARGS("a=05", "@a=05"));
    CHECK(r.outcome == 2 && !strcmp(r.type, "PDKError") && strstr(r.message, "both an input and config"));

    r = invoke(&mod, "nothing", NULL);
    CHECK_STR(r.type, "PDKError");
    CHECK_STR(r.message, "knot \"nothing\" returned without setting an outcome (pirn_ok_*, pirn_err or pirn_skip)");
    r = invoke(&mod, "code", NULL);
    CHECK_STR(r.type, "Error");
    CHECK_STR(r.message, "knot \"code\": invalid value");
    r = invoke(&mod, "hidden", NULL);
    CHECK_STR(r.type, "UnknownKnot");
    r = invoke(&mod, "unsorted", NULL);
    CHECK_STR(r.type, "OutputError");
    CHECK(strstr(r.message, "not in canonical form") != NULL);
    r = invoke(&mod, "two", NULL);
    CHECK_STR(r.type, "OutputError");
    CHECK_STR(r.message, "knot \"two\": output: trailing bytes after the value (write exactly one value; check container counts)");
    r = invoke(&mod, "badutf8", NULL);
    CHECK_STR(r.message, "knot \"badutf8\": output: text is not valid UTF-8");
    r = invoke(&mod, "badmsg", NULL);
    CHECK_STR(r.message, "bad byte \xef\xbf\xbd here 42");
    r = invoke(&mod, "skip_detail", NULL);
    CHECK(r.outcome == 3 && !strcmp(r.reason, "skipped"));
    CHECK_BYTES("skip detail", r.detail, r.detail_len, (const uint8_t *)"\x63why", 4);
    r = invoke(&mod, "bad_detail", NULL);
    CHECK(r.outcome == 2 && !strcmp(r.type, "E") && r.detail_len == 0);

    r = invoke(&mod, "lists", ARGS("xs=8201f94100", "is=83010203"));
    CHECK(r.outcome == 1);
    CHECK_BYTES("lists", r.value, r.value_len, (const uint8_t *)"\x85\xf9\x3c\x00\xf9\x41\x00\x01\x02\x03", 10);
    r = invoke(&mod, "lists", ARGS("xs=80", "is=80"));
    CHECK_BYTES("empty lists", r.value, r.value_len, (const uint8_t *)"\x80", 1);
    r = invoke(&mod, "lists", ARGS("xs=811bffffffffffffffff", "is=80"));
    CHECK_STR(r.message, "knot \"lists\": input \"xs\": integer outside the int64 range");
    r = invoke(&mod, "lists", ARGS("xs=82016178", "is=80"));
    CHECK_STR(r.message, "knot \"lists\": input \"xs\": element 1: want float, got str");
    r = invoke(&mod, "lists", ARGS("xs=80", "is=a0"));
    CHECK_STR(r.message, "knot \"lists\": input \"is\": want list[int], got dict");

    pirn_native_log = capture_log;
    r = invoke(&mod, "str", ARGS("s=626869"));
    CHECK(r.outcome == 1);
    CHECK_BYTES("str", r.value, r.value_len, (const uint8_t *)"\x63hi-", 4);
    CHECK_EQ_INT(log_level, PIRN_LOG_WARN);
    CHECK_STR(log_msg, "s=hi sep=-");
    r = invoke(&mod, "str", ARGS("s=626869", "@sep=612b"));
    CHECK_BYTES("str sep", r.value, r.value_len, (const uint8_t *)"\x63hi+", 4);
    r = invoke(&mod, "str", ARGS("s=63610062"));
    CHECK_STR(r.message, "knot \"str\": input \"s\": text contains a NUL byte (read it with pirn_get_text)");
    pirn_native_log = NULL;
}

/* ---- fuzzing with random buffers ----------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void test_fuzz(void) {
    /* Bytes biased towards interesting heads. */
    static const uint8_t pool[] = {0x00, 0x01, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x20, 0x38, 0x3b, 0x40, 0x41,
                                   0x5f, 0x60, 0x61, 0x62, 0x7f, 0x80, 0x81, 0x82, 0x9f, 0xa0, 0xa1, 0xa2,
                                   0xbf, 0xc0, 0xf4, 0xf5, 0xf6, 0xf7, 0xf9, 0xfa, 0xfb, 0xff, 'a',  'b',
                                   0xc3, 0xa9, 0x7e, 0x3c, 0x00, 0xff};
    pirn_writer w = PIRN_WRITER_INIT, w2 = PIRN_WRITER_INIT, resp = PIRN_WRITER_INIT;
    uint8_t buf[48];
    int accepted = 0;
    for (int iter = 0; iter < 200000; iter++) {
        size_t n = next_rand() % sizeof buf;
        for (size_t i = 0; i < n; i++) {
            uint64_t x = next_rand();
            buf[i] = (x & 1) ? pool[(x >> 8) % sizeof pool] : (uint8_t)(x >> 8);
        }
        pirn_enc_reset(&w);
        int e = pirn_canonicalize(buf, n, &w);
        if (e == PIRN_OK) {
            accepted++;
            /* The output is canonical and a fixed point. */
            CHECK_EQ_INT(pirn_check_canonical(w.buf, w.len), PIRN_OK);
            pirn_enc_reset(&w2);
            CHECK_EQ_INT(pirn_canonicalize(w.buf, w.len, &w2), PIRN_OK);
            CHECK_BYTES("fixed point", w2.buf, w2.len, w.buf, w.len);
            if (pirn_check_canonical(buf, n) == PIRN_OK)
                CHECK_BYTES("canonical input", w.buf, w.len, buf, n);
        } else {
            CHECK(w.len == 0);
            CHECK(pirn_check_canonical(buf, n) != PIRN_OK);
        }
        pirn_reader r;
        pirn_dec_init(&r, buf, n);
        pirn_dec_skip(&r);
        if (iter % 8 == 0) {
            pirn_handle(&arith, buf, n, &resp);
            CHECK_EQ_INT(pirn_check_canonical(resp.buf, resp.len), PIRN_OK);
        }
        if (failures > 20)
            break;
    }
    printf("fuzz: %d of 200000 random buffers were well-formed\n", accepted);
    CHECK(accepted > 1000);
    pirn_enc_free(&w);
    pirn_enc_free(&w2);
    pirn_enc_free(&resp);
}

int main(int argc, char **argv) {
    if (argc > 1)
        root = argv[1];
    test_canonical_json();
    test_scalars();
    test_containers();
    test_manifest();
    test_golden_requests();
    test_request_mixed();
    test_golden_responses();
    test_dispatch();
    test_fuzz();
    if (failures) {
        printf("FAIL: %d of %d checks failed\n", failures, checks);
        return 1;
    }
    printf("ok: %d checks passed\n", checks);
    return 0;
}
