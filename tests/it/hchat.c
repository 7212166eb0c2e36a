/*  hchat.c -- integration-test support for the chat path (see hchat.h).
 *
 *  The fake is driven over HTTP with libcurl's easy interface: a test is
 *  allowed to block, the actors under test are not.
 */
#include "tests/it/hchat.h"

#include <curl/curl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

/* ---------------------------------------------------------------- files */

char *hchat_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return strdup("");
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

bool hchat_wait_file(const char *path, const char *needle, int timeout_ms)
{
    int64_t end = harness_now_ms() + (int64_t) timeout_ms * harness_slow();
    do {
        char *s = hchat_read_file(path);
        bool found = strstr(s, needle) != NULL;
        free(s);
        if (found)
            return true;
        harness_sleep_ms(50);
    } while (harness_now_ms() < end);
    return false;
}

int hchat_count(const char *hay, const char *needle)
{
    int n = 0;
    size_t nl = strlen(needle);
    if (nl == 0)
        return 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + nl, needle))
        n++;
    return n;
}

/* ---------------------------------------------------------------- fake */

typedef struct {
    char  *buf;
    size_t len;
} hchat_body_t;

static size_t hchat_collect(char *data, size_t size, size_t n, void *arg)
{
    hchat_body_t *b = arg;
    size_t add = size * n;
    char *nb = realloc(b->buf, b->len + add + 1);
    if (!nb)
        return 0;
    memcpy(nb + b->len, data, add);
    b->buf = nb;
    b->len += add;
    b->buf[b->len] = '\0';
    return add;
}

/* One request to the fake; returns the HTTP status (0: no answer) and
   the body in *body (caller frees; may be NULL). */
static long hchat_http(const hchat_fake_t *f, const char *path,
                       const char *post, char **body)
{
    char url[160];
    snprintf(url, sizeof url, "%s%s", f->url, path);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    hchat_body_t b = { NULL, 0 };
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, hchat_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (post) {
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
    }
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    if (body)
        *body = b.buf ? b.buf : strdup("");
    else
        free(b.buf);
    return status;
}

hchat_fake_t *hchat_fake_start(harness_t *h, const char *label, int port,
                               const char *mode_json)
{
    hchat_fake_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    char portfile[HARNESS_PATH_MAX], portarg[16];
    snprintf(portfile, sizeof portfile, "%s/%s.port", harness_dir(h), label);
    snprintf(f->log, sizeof f->log, "%s/%s.requests", harness_dir(h), label);
    snprintf(portarg, sizeof portarg, "%d", port);
    unlink(portfile);
    char *argv[] = { "/usr/bin/env", "python3", "tests/fakes/ollama_fake.py",
                     "--port-file", portfile, "--port", portarg,
                     "--log", f->log, mode_json ? "--mode" : NULL,
                     (char *) mode_json, NULL };
    f->proc = harness_spawn(h, label, argv);
    assert_non_null(f->proc);
    int64_t end = harness_now_ms() + 10000LL * harness_slow();
    while (harness_now_ms() < end && f->port == 0) {
        char *s = hchat_read_file(portfile);
        f->port = atoi(s);
        free(s);
        if (f->port == 0)
            harness_sleep_ms(50);
    }
    if (f->port == 0)
        fail_msg("the fake LLM backend did not come up (see %s.log)", label);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d", f->port);
    return f;
}

void hchat_fake_stop(harness_t *h, hchat_fake_t *f)
{
    if (!f || !f->proc)
        return;
    harness_signal(h, f->proc, SIGTERM);
    if (!harness_wait_exit(h, f->proc, 5000))
        harness_kill(h, f->proc);
    f->proc = NULL;
}

void hchat_fake_free(hchat_fake_t **f_p)
{
    if (f_p) {
        free(*f_p);
        *f_p = NULL;
    }
}

void hchat_fake_mode(hchat_fake_t *f, const char *json)
{
    long st = hchat_http(f, "/_fake/mode", json, NULL);
    if (st != 200)
        fail_msg("the fake refused mode %s (HTTP %ld)", json, st);
}

long hchat_fake_stat(hchat_fake_t *f, const char *name)
{
    char *body = NULL;
    long st = hchat_http(f, "/_fake/stats", NULL, &body);
    long v = -1;
    char key[64];
    snprintf(key, sizeof key, "\"%s\":", name);
    const char *p = st == 200 ? strstr(body, key) : NULL;
    if (p) {
        p += strlen(key);
        while (*p == ' ')
            p++;
        v = strtol(p, NULL, 10);
    }
    free(body);
    return v;
}

/* ---------------------------------------------------------------- actors */

hproc_t *hchat_start(harness_t *h, const char *program, const char *label,
                     const char *const *extra)
{
    char bin[HARNESS_PATH_MAX];
    harness_bin(h, program, bin, sizeof bin);
    char *argv[32];
    int n = 0;
    argv[n++] = bin;
    argv[n++] = "--config";
    argv[n++] = (char *) harness_config(h);
    argv[n++] = "--endpoint";
    argv[n++] = (char *) harness_endpoint(h);
    for (size_t i = 0; extra && extra[i] && n < 30; i++)
        argv[n++] = (char *) extra[i];
    argv[n] = NULL;
    return harness_spawn(h, label, argv);
}

void hchat_start_vm_side(harness_t *h, hproc_t **frontdoor, hproc_t **router)
{
    hproc_t *fd = hchat_start(h, "sy-frontdoor", "frontdoor", NULL);
    hproc_t *rt = hchat_start(h, "sy-router", "router", NULL);
    assert_true(harness_wait_actor(h, "frontdoor", true, 10000));
    assert_true(harness_wait_actor(h, "router", true, 10000));
    if (frontdoor)
        *frontdoor = fd;
    if (router)
        *router = rt;
}

hproc_t *hchat_start_inference(harness_t *h, const hchat_fake_t *f,
                               const char *const *extra)
{
    const char *args[24] = { "--url", f->url, "--name", "inference-1" };
    size_t n = 4;
    for (size_t i = 0; extra && extra[i] && n < 23; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    return hchat_start(h, "sy-inference", "inference-1", args);
}

/* ---------------------------------------------------------------- asking */

void hchat_ask_start(harness_t *h, hchat_ask_t *a, const char *label,
                     const char *user, const char *text)
{
    char syctl[HARNESS_PATH_MAX];
    harness_bin(h, "syctl", syctl, sizeof syctl);
    snprintf(a->out, sizeof a->out, "%s/%s.out", harness_dir(h), label);
    snprintf(a->err, sizeof a->err, "%s/%s.err", harness_dir(h), label);
    /* sh passes the text as one argument, whatever it holds. */
    char *argv[] = { "/bin/sh", "-c",
                     "exec \"$0\" --config \"$1\" chat --once --name \"$2\" "
                     "\"$3\" >\"$4\" 2>\"$5\"",
                     syctl, (char *) harness_config(h), (char *) user,
                     (char *) text, a->out, a->err, NULL };
    a->proc = harness_spawn(h, label, argv);
    assert_non_null(a->proc);
}

int hchat_ask_wait(harness_t *h, hchat_ask_t *a, int timeout_ms)
{
    if (!harness_wait_exit(h, a->proc, timeout_ms * harness_slow()))
        return -1;
    int st = a->proc->status;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int hchat_ask(harness_t *h, const char *user, const char *text,
              int timeout_ms, char **out, char **err)
{
    /* Asks run one after another: the clock tells them apart. */
    char label[32];
    snprintf(label, sizeof label, "ask-%lld", (long long) harness_now_ms());
    hchat_ask_t a;
    hchat_ask_start(h, &a, label, user, text);
    int rc = hchat_ask_wait(h, &a, timeout_ms);
    if (out)
        *out = hchat_read_file(a.out);
    if (err)
        *err = hchat_read_file(a.err);
    return rc;
}
