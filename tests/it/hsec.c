/*  hsec.c -- helpers shared by the security integration tests.
 *
 *  Ideas: every check goes through the real binaries' ordinary surface
 *  (syctl's exit codes and JSON, sy-echo's log), and every search for a
 *  secret is over raw bytes (memmem), never over text, so a NUL or a
 *  binary frame around the secret cannot hide it.  All waits are bounded.
 *  See hsec.h.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "hsec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmp.h"

int hsec_syctl(harness_t *h, hrun_t *r, const char *id, int timeout_ms, ...)
{
    char bin[HARNESS_PATH_MAX], cert[HARNESS_PATH_MAX];
    harness_bin(h, "syctl", bin, sizeof bin);
    char *argv[40] = { bin, "--config", (char *)harness_config(h) };
    int n = 3;
    if (id) {
        harness_identity_path(h, id, ".secret", cert, sizeof cert);
        argv[n++] = "--cert";
        argv[n++] = cert;
    }
    va_list ap;
    va_start(ap, timeout_ms);
    for (char *a; (a = va_arg(ap, char *)) != NULL && n < 39; )
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    if (harness_run(h, argv, timeout_ms * harness_slow(), r) != 0) {
        memset(r, 0, sizeof *r);
        return -1;
    }
    return r->exit_code;
}

/* True if the array at path holds the string s. */
static bool hsec_array_has(const uint8_t *buf, size_t len, const char *path,
                           const char *s)
{
    int n = hmp_count(buf, len, path);
    for (int i = 0; i < n; i++) {
        char p[96], got[256];
        snprintf(p, sizeof p, "%s.%d", path, i);
        if (hmp_get_str(buf, len, p, got, sizeof got) && strcmp(got, s) == 0) return true;
    }
    return false;
}

bool hsec_status_lists(harness_t *h, const char *id, const char *actor,
                       const char *service)
{
    hrun_t r;
    int rc = hsec_syctl(h, &r, id, 10000, "status", "--json", NULL);
    size_t len = 0;
    uint8_t *j = rc == 0 ? hmp_from_json_in(r.out, &len) : NULL;
    if (!j) {
        fprintf(stderr, "syctl --cert %s status --json: exit %d\nstdout:\n%s\nstderr:\n%s\n",
                id ? id : "(none)", rc, r.out ? r.out : "", r.err ? r.err : "");
        hrun_clear(&r);
        fail_msg("syctl --cert %s status --json did not answer (exit %d)",
                 id ? id : "(none)", rc);
    }
    hrun_clear(&r);
    int n = hmp_count(j, len, "actors");
    bool found = false;
    for (int i = 0; i < n && !found; i++) {
        char p[64], name[256];
        snprintf(p, sizeof p, "actors.%d.name", i);
        if (!hmp_get_str(j, len, p, name, sizeof name) || strcmp(name, actor) != 0) continue;
        snprintf(p, sizeof p, "actors.%d.services", i);
        found = !service || hsec_array_has(j, len, p, service);
    }
    free(j);
    return found;
}

bool hsec_wait_status(harness_t *h, const char *id, const char *actor,
                      bool present, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    for (;;) {
        if (hsec_status_lists(h, id, actor, NULL) == present) return true;
        if (harness_now_ms() >= deadline) return false;
        harness_sleep_ms(100);
    }
}

hproc_t *hsec_echo_start(harness_t *h, const char *name, const char *service,
                         bool wait, const char *const *extra)
{
    char cert[HARNESS_PATH_MAX];
    harness_identity_path(h, name, ".secret", cert, sizeof cert);
    const char *args[24] = { "--cert", cert };
    int n = 2;
    for (int i = 0; extra && extra[i] && n < 23; i++) args[n++] = extra[i];
    args[n] = NULL;
    return harness_echo_start_ex(h, name, service, 4, wait, args);
}

uint8_t *hsec_slurp(const char *path, size_t *len)
{
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap + 1);
    while (buf) {
        if (n == cap) {
            uint8_t *nb = realloc(buf, cap * 2 + 1);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        if (got == 0) break;
        n += got;
    }
    fclose(f);
    if (!buf) return NULL;
    buf[n] = 0;
    *len = n;
    return buf;
}

int hsec_file_count(const char *path, const char *needle, long *size)
{
    size_t len, nl = strlen(needle);
    uint8_t *buf = hsec_slurp(path, &len);
    if (size) *size = buf ? (long)len : -1;
    if (!buf) return 0;
    int count = 0;
    const uint8_t *p = buf, *end = buf + len;
    while (p < end) {
        const uint8_t *hit = memmem(p, (size_t)(end - p), needle, nl);
        if (!hit) break;
        count++;
        p = hit + 1;
    }
    free(buf);
    return count;
}

#define HSEC_NEEDLES_MAX 8

/* True if some line of text holds all n needles. */
static bool hsec_text_has_line(char *text, const char *const *needles, int n)
{
    for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl) *nl = 0;
        bool ok = true;
        for (int i = 0; i < n && ok; i++) ok = strstr(line, needles[i]) != NULL;
        if (nl) *nl = '\n';
        if (ok) return true;
    }
    return false;
}

bool hsec_wait_line(const char *path, int timeout_ms, ...)
{
    const char *needles[HSEC_NEEDLES_MAX];
    int n = 0;
    va_list ap;
    va_start(ap, timeout_ms);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL && n < HSEC_NEEDLES_MAX; )
        needles[n++] = a;
    va_end(ap);
    int64_t deadline = harness_now_ms() + timeout_ms;
    for (;;) {
        size_t len;
        char *text = (char *)hsec_slurp(path, &len);
        bool ok = text && hsec_text_has_line(text, needles, n);
        free(text);
        if (ok) return true;
        if (harness_now_ms() >= deadline) return false;
        harness_sleep_ms(50);
    }
}
