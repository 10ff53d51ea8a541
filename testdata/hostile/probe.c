/*
 * probe: knots that reach for what a knot with no grants must not get, for
 * the hostile-module suite (docs/security.md). Each errs with what the
 * sandbox answered, or succeeds with what it saw if the capability leaked.
 *
 *   passwd() -> str       the first line of /etc/passwd
 *   home() -> str         the HOME environment variable
 *   now() -> int          the wall clock, in Unix seconds (the fake clock
 *                         answers 2022 without a grant)
 *   listroot() -> int     how many entries "/" has
 *   one() -> int          1: a healthy knot beside the others
 *
 * Build (make wasm does this): see the Makefile's C_HOSTILE rule.
 */
#define PIRN_IMPLEMENTATION
#include "pirn.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int passwd(pirn_call *c) {
    FILE *f = fopen("/etc/passwd", "r");
    if (!f)
        return pirn_err(c, "OpenFailed", strerror(errno));
    char line[256] = {0};
    if (!fgets(line, sizeof line, f))
        line[0] = 0;
    fclose(f);
    return pirn_ok_str(c, line);
}

static int home(pirn_call *c) {
    const char *v = getenv("HOME");
    if (!v)
        return pirn_err(c, "Unset", "HOME is not set");
    return pirn_ok_str(c, v);
}

static int now(pirn_call *c) {
    struct timespec ts;
    if (timespec_get(&ts, TIME_UTC) != TIME_UTC)
        return pirn_err(c, "ClockFailed", "timespec_get failed");
    return pirn_ok_int(c, (int64_t)ts.tv_sec);
}

static int listroot(pirn_call *c) {
    DIR *d = opendir("/");
    if (!d)
        return pirn_err(c, "OpenFailed", strerror(errno));
    int64_t n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return pirn_ok_int(c, n);
}

static int one(pirn_call *c) { return pirn_ok_int(c, 1); }

static const pirn_knot knots[] = {
    {.name = "passwd", .doc = "Returns the first line of /etc/passwd.", .fn = passwd, .output = "str"},
    {.name = "home", .doc = "Returns HOME.", .fn = home, .output = "str"},
    {.name = "now", .doc = "Returns the wall clock in Unix seconds.", .fn = now, .output = "int"},
    {.name = "listroot", .doc = "Counts the entries of /.", .fn = listroot, .output = "int"},
    {.name = "one", .doc = "Returns 1.", .fn = one, .output = "int"},
};

PIRN_MODULE("probe", knots);
