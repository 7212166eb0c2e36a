/*  test_httpc.c -- HTTP from a zloop (actors/httpc.c) against the Ollama
 *  fake (tests/fakes/ollama_fake.py), started once for the whole group
 *  on a free port and reset before each test.
 *
 *  Each test makes its own zloop and httpc_t, starts requests, and runs
 *  the loop until every expected on_done came (or a bound in time is
 *  reached, which then fails the test's asserts).  Control requests to
 *  the fake (/_fake/mode, /_fake/stats) are plain blocking curl calls: the
 *  test may block, the code under test may not.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <czmq.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "actors/httpc.h"
#include "schemas/syerr.h"
#include "tests/unit/tutil.h"

#define FAKE_SCRIPT "tests/fakes/ollama_fake.py"
#define MAX_LINES   64
#define LINE_CAP    512
#define NREQ        3

/* ------------------------------------------------------------ the fake */

typedef struct {
    char  dir[128];
    pid_t pid;
    int   port;
} fake_t;

static fake_t g_fake;   /* the group's fake server (test-only state) */

static int fake_start(fake_t *f)
{
    if (access(FAKE_SCRIPT, R_OK) != 0) {
        fprintf(stderr, "test_httpc: %s not found (run from the repo root)\n",
                FAKE_SCRIPT);
        return -1;
    }
    if (tutil_tmpdir(f->dir, sizeof f->dir, "httpc") != 0)
        return -1;
    char portfile[192], out[192], log[192];
    snprintf(portfile, sizeof portfile, "%s/port", f->dir);
    snprintf(out, sizeof out, "%s/fake.out", f->dir);
    snprintf(log, sizeof log, "%s/requests.log", f->dir);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execlp("python3", "python3", FAKE_SCRIPT, "--port-file", portfile,
               "--log", log, "--models", "llama3.2,qwen2.5:7b", (char *) NULL);
        _exit(127);
    }
    f->pid = pid;
    for (int i = 0; i < 1000; i++) {      /* up to 10 s */
        FILE *pf = fopen(portfile, "r");
        if (pf) {
            int port = 0;
            int n = fscanf(pf, "%d", &port);
            fclose(pf);
            if (n == 1 && port > 0) {
                f->port = port;
                return 0;
            }
        }
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            f->pid = 0;
            tutil_print_log(out);
            return -1;
        }
        usleep(10000);
    }
    return -1;
}

static void fake_stop(fake_t *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        int status = 0;
        for (int i = 0; i < 300 && waitpid(f->pid, &status, WNOHANG) == 0; i++)
            usleep(10000);
        if (waitpid(f->pid, &status, WNOHANG) == 0) {
            kill(f->pid, SIGKILL);
            waitpid(f->pid, &status, 0);
        }
        f->pid = 0;
    }
    if (f->dir[0])
        tutil_rmtree(f->dir);
}

static size_t sink_cb(char *p, size_t size, size_t n, void *ud)
{
    char *buf = ud;
    size_t have = strlen(buf), add = size * n;
    if (have + add < 4096) {
        memcpy(buf + have, p, add);
        buf[have + add] = '\0';
    }
    return size * n;
}

/* A blocking request to the fake; the body into out (4096 bytes). */
static long fake_call(const char *path, const char *json, char *out)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", g_fake.port, path);
    out[0] = '\0';
    CURL *e = curl_easy_init();
    if (!e)
        return -1;
    curl_easy_setopt(e, CURLOPT_URL, url);
    if (json)
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
    long code = -1;
    if (curl_easy_perform(e) == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(e);
    return code;
}

static void fake_mode(const char *json)
{
    char out[4096];
    assert_int_equal(fake_call("/_fake/mode", json, out), 200);
}

static int group_setup(void **state)
{
    (void) state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return fake_start(&g_fake);
}

static int group_teardown(void **state)
{
    (void) state;
    fake_stop(&g_fake);
    curl_global_cleanup();
    return 0;
}

static int test_setup(void **state)
{
    (void) state;
    char out[4096];
    return fake_call("/_fake/reset", "{}", out) == 200 ? 0 : -1;
}

/* ------------------------------------------------------------ the client */

typedef struct tctx tctx_t;

typedef struct treq {
    tctx_t      *c;
    httpc_req_t *req;
    bool         status_seen;
    long         status_cb;
    bool         data_before_status;
    char         lines[MAX_LINES][LINE_CAP];
    size_t       nlines;
    char         chunks[8192];          /* chunk mode, concatenated */
    size_t       chunks_len;
    int          cancel_at;             /* line index to cancel at, -1 */
    int          stop_at;               /* line index to return 1 at, -1 */
    void       (*hook)(struct treq *t); /* called in on_data at line 0 */
    bool         done;
    int          rc;
    long         status;
    char         err[256];
    char         body[8192];
    size_t       body_len;
} treq_t;

struct tctx {
    zloop_t *loop;
    httpc_t *h;
    int      want;                      /* on_done calls to wait for */
    int      ndone;
    int64_t  deadline;
    int      ticks;                     /* of the side timer */
    int      ticks_streaming;           /* ... while a stream ran */
    bool     until_data;                /* stop the loop at first line */
    treq_t   r[NREQ];
};

static void on_status(httpc_req_t *req, long status, void *arg)
{
    (void) req;
    treq_t *t = arg;
    t->status_seen = true;
    t->status_cb = status;
}

static int on_data(httpc_req_t *req, const char *data, size_t len, void *arg)
{
    (void) req;
    treq_t *t = arg;
    if (!t->status_seen)
        t->data_before_status = true;
    if (t->nlines < MAX_LINES) {
        size_t n = len < LINE_CAP - 1 ? len : LINE_CAP - 1;
        memcpy(t->lines[t->nlines], data, n);
        t->lines[t->nlines][n] = '\0';
    }
    int at = (int) t->nlines++;
    if (at == 0 && t->hook)
        t->hook(t);
    if (at == t->cancel_at) {
        httpc_cancel(t->c->h, &t->req);
        assert_null(t->req);
    }
    return at == t->stop_at ? 1 : 0;
}

static int on_chunk(httpc_req_t *req, const char *data, size_t len, void *arg)
{
    (void) req;
    treq_t *t = arg;
    if (t->chunks_len + len < sizeof t->chunks) {
        memcpy(t->chunks + t->chunks_len, data, len);
        t->chunks_len += len;
        t->chunks[t->chunks_len] = '\0';
    }
    return 0;
}

static void on_done(httpc_req_t *req, const httpc_result_t *res, void *arg)
{
    (void) req;
    treq_t *t = arg;
    assert_false(t->done);             /* exactly once */
    t->done = true;
    t->req = NULL;
    t->rc = res->rc;
    t->status = res->status;
    snprintf(t->err, sizeof t->err, "%s", res->err);
    assert_non_null(res->body);
    t->body_len = res->body_len;
    size_t n = res->body_len < sizeof t->body - 1 ? res->body_len
                                                  : sizeof t->body - 1;
    memcpy(t->body, res->body, n);
    t->body[n] = '\0';
    t->c->ndone++;
}

static int watch_cb(zloop_t *loop, int id, void *arg)
{
    (void) loop;
    (void) id;
    tctx_t *c = arg;
    if (c->ndone >= c->want || zclock_mono() > c->deadline)
        return -1;
    if (c->until_data && (c->r[0].nlines > 0 || c->r[0].status_seen))
        return -1;
    return 0;
}

static int side_tick_cb(zloop_t *loop, int id, void *arg)
{
    (void) loop;
    (void) id;
    tctx_t *c = arg;
    c->ticks++;
    if (c->r[0].status_seen && !c->r[0].done)
        c->ticks_streaming++;
    return 0;
}

static tctx_t *ctx_new(void)
{
    tctx_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->loop = zloop_new();
    assert_non_null(c->loop);
    assert_int_equal(httpc_new(c->loop, &c->h), 0);
    assert_non_null(c->h);
    for (int i = 0; i < NREQ; i++) {
        c->r[i].c = c;
        c->r[i].cancel_at = -1;
        c->r[i].stop_at = -1;
    }
    return c;
}

static void ctx_free(tctx_t *c)
{
    httpc_destroy(&c->h);
    assert_null(c->h);
    zloop_destroy(&c->loop);
    free(c);
}

/* Runs the loop until `want` requests are done, at most max_ms. */
static void ctx_run(tctx_t *c, int want, int max_ms)
{
    c->want = want;
    c->deadline = zclock_mono() + max_ms;
    int id = zloop_timer(c->loop, 5, 0, watch_cb, c);
    assert_true(id >= 0);
    zloop_start(c->loop);
    zloop_timer_end(c->loop, id);      /* the loop ended: removed at once */
}

static void url_of(char *url, size_t cap, const char *path)
{
    snprintf(url, cap, "http://127.0.0.1:%d%s", g_fake.port, path);
}

static const char CHAT[] =
    "{\"model\":\"llama3.2\",\"messages\":[{\"role\":\"system\",\"content\":"
    "\"be brief\"},{\"role\":\"user\",\"content\":\"hello big world\"}]}";

/* Starts a POST of body to path in lines mode, for request i. */
static void start_chat(tctx_t *c, int i, const char *path, const char *body,
                       httpc_opts_t *extra)
{
    char url[128];
    url_of(url, sizeof url, path);
    static const char *const hdrs[] = { "Content-Type: application/json",
                                        "Authorization: Bearer s3cret",
                                        NULL };
    httpc_opts_t o = extra ? *extra : (httpc_opts_t) { 0 };
    o.url = url;
    o.headers = hdrs;
    o.body = body;
    o.body_len = strlen(body);
    o.lines = true;
    httpc_cb_t cb = { on_status, on_data, on_done, &c->r[i] };
    assert_int_equal(httpc_start(c->h, &o, &cb, &c->r[i].req), 0);
    assert_non_null(c->r[i].req);
}

/* The token of an Ollama stream line ("" when the line has none). */
static void token_of(const char *line, char *out, size_t cap)
{
    out[0] = '\0';
    const char *p = strstr(line, "\"content\":\"");
    if (!p)
        return;
    p += strlen("\"content\":\"");
    const char *e = strchr(p, '"');
    if (!e)
        return;
    size_t n = (size_t) (e - p) < cap - 1 ? (size_t) (e - p) : cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

/* ------------------------------------------------------------ tests */

static void test_collect_tags(void **state)
{
    (void) state;
    tctx_t *c = ctx_new();
    char url[128];
    url_of(url, sizeof url, "/api/tags");
    httpc_opts_t o = { .url = url };
    httpc_cb_t cb = { on_status, NULL, on_done, &c->r[0] };
    assert_int_equal(httpc_start(c->h, &o, &cb, &c->r[0].req), 0);
    assert_int_equal(httpc_running(c->h), 1);
    assert_false(c->r[0].done);        /* never calls back from start */
    ctx_run(c, 1, 10000);
    treq_t *t = &c->r[0];
    assert_true(t->done);
    assert_int_equal(t->rc, 0);
    assert_int_equal(t->status, 200);
    assert_true(t->status_seen);
    assert_int_equal(t->status_cb, 200);
    assert_string_equal(t->err, "");
    assert_int_equal(t->body_len, strlen(t->body));
    assert_non_null(strstr(t->body, "\"name\":\"llama3.2:latest\""));
    assert_non_null(strstr(t->body, "\"name\":\"qwen2.5:7b\""));
    assert_int_equal(httpc_running(c->h), 0);

    /* the same as chunks to on_data: the same bytes, no body in on_done */
    httpc_cb_t cb2 = { NULL, on_chunk, on_done, &c->r[1] };
    assert_int_equal(httpc_start(c->h, &o, &cb2, NULL), 0);
    ctx_run(c, 2, 10000);
    assert_true(c->r[1].done);
    assert_int_equal(c->r[1].rc, 0);
    assert_int_equal(c->r[1].body_len, 0);
    assert_string_equal(c->r[1].chunks, t->body);
    ctx_free(c);
}

static void test_stream_lines(void **state)
{
    (void) state;
    tctx_t *c = ctx_new();
    start_chat(c, 0, "/api/chat", CHAT, NULL);
    ctx_run(c, 1, 10000);
    treq_t *t = &c->r[0];
    assert_true(t->done);
    assert_int_equal(t->rc, 0);
    assert_int_equal(t->status, 200);
    assert_false(t->data_before_status);
    static const char *want[] = { "Answer: ", "hello ", "big ", "world" };
    assert_int_equal(t->nlines, 5);
    for (size_t i = 0; i < 4; i++) {
        char tok[64];
        token_of(t->lines[i], tok, sizeof tok);
        assert_string_equal(tok, want[i]);
        assert_non_null(strstr(t->lines[i], "\"done\":false"));
        assert_null(strchr(t->lines[i], '\n'));
    }
    assert_non_null(strstr(t->lines[4], "\"done\":true"));
    assert_non_null(strstr(t->lines[4], "\"eval_count\":4"));
    assert_non_null(strstr(t->lines[4], "\"done_reason\":\"stop\""));

    /* the fake got our body and headers as sent */
    char out[4096];
    assert_int_equal(fake_call("/_fake/stats", NULL, out), 200);
    assert_non_null(strstr(out, "\"content\":\"hello big world\""));
    assert_non_null(strstr(out, "\"chat_requests\":1"));
    ctx_free(c);
}

static void test_sse_lines(void **state)
{
    (void) state;
    tctx_t *c = ctx_new();
    start_chat(c, 0, "/v1/chat/completions",
               "{\"model\":\"qwen2.5:7b\",\"stream\":true,\"stream_options\":"
               "{\"include_usage\":true},\"messages\":[{\"role\":\"user\","
               "\"content\":\"hi\"}]}", NULL);
    ctx_run(c, 1, 10000);
    treq_t *t = &c->r[0];
    assert_int_equal(t->rc, 0);
    assert_int_equal(t->status, 200);
    /* events are "data: {...}" followed by an empty line */
    assert_true(t->nlines >= 10);
    assert_int_equal(t->nlines % 2, 0);
    for (size_t i = 0; i < t->nlines; i += 2) {
        assert_memory_equal(t->lines[i], "data: ", 6);
        assert_string_equal(t->lines[i + 1], "");
    }
    assert_string_equal(t->lines[t->nlines - 2], "data: [DONE]");
    assert_non_null(strstr(t->lines[t->nlines - 4], "\"completion_tokens\":2"));
    ctx_free(c);
}

static void test_not_found_and_busy(void **state)
{
    (void) state;
    tctx_t *c = ctx_new();
    char url[128];
    url_of(url, sizeof url, "/api/chat");
    const char *body = "{\"model\":\"nope\",\"messages\":[]}";
    httpc_opts_t o = { .url = url, .body = body, .body_len = strlen(body) };
    httpc_cb_t cb = { NULL, NULL, on_done, &c->r[0] };
    assert_int_equal(httpc_start(c->h, &o, &cb, NULL), 0);
    ctx_run(c, 1, 10000);
    assert_int_equal(c->r[0].rc, 0);    /* an answer, whatever its status */
    assert_int_equal(c->r[0].status, 404);
    assert_string_equal(c->r[0].body,
                        "{\"error\":\"model \\\"nope\\\" not found, try pulling it first\"}");

    fake_mode("{\"fail\":\"busy503\",\"fail_count\":1}");
    body = CHAT;
    o.body = body;
    o.body_len = strlen(body);
    cb.arg = &c->r[1];
    assert_int_equal(httpc_start(c->h, &o, &cb, NULL), 0);
    ctx_run(c, 2, 10000);
    assert_int_equal(c->r[1].rc, 0);
    assert_int_equal(c->r[1].status, 503);
    assert_non_null(strstr(c->r[1].body, "server busy"));
    ctx_free(c);
}

static void test_error_line(void **state)
{
    (void) state;
    fake_mode("{\"fail\":\"error_line\",\"fail_after_tokens\":2}");
    tctx_t *c = ctx_new();
    start_chat(c, 0, "/api/chat", CHAT, NULL);
    ctx_run(c, 1, 10000);
    treq_t *t = &c->r[0];
    assert_int_equal(t->rc, 0);         /* the stream itself ended well */
    assert_int_equal(t->status, 200);
    assert_int_equal(t->nlines, 3);
    assert_null(strstr(t->lines[1], "\"error\""));
    assert_non_null(strstr(t->lines[2], "{\"error\":"));
    ctx_free(c);
}

static void test_drop(void **state)
{
    (void) state;
    fake_mode("{\"fail\":\"drop\",\"fail_after_tokens\":1}");
    tctx_t *c = ctx_new();
    start_chat(c, 0, "/api/chat", CHAT, NULL);
    ctx_run(c, 1, 10000);
    treq_t *t = &c->r[0];
    assert_true(t->done);
    assert_int_equal(t->rc, SY_EIO);
    assert_true(t->nlines <= 1);       /* an RST may overtake the data */
    assert_non_null(strstr(t->err, "127.0.0.1"));
    assert_null(strstr(t->err, "/api"));
    assert_null(strstr(t->err, "s3cret"));
    ctx_free(c);
}

static void test_first_byte_timeout(void **state)
{
    (void) state;
    fake_mode("{\"first_token_delay_ms\":5000}");
    tctx_t *c = ctx_new();
    httpc_opts_t o = { .first_byte_timeout_ms = 300, .idle_timeout_ms = 100 };
    start_chat(c, 0, "/api/chat", CHAT, &o);
    ctx_run(c, 1, 4000);
    treq_t *t = &c->r[0];
    assert_true(t->done);
    assert_int_equal(t->rc, SY_ETIMEOUT);
    assert_string_equal(t->err, "first byte timeout (300 ms)");
    assert_int_equal(t->nlines, 0);

    /* headers alone are not a first byte of the body */
    fake_mode("{\"first_token_delay_ms\":0,\"fail\":\"hang\"}");
    start_chat(c, 1, "/api/chat", CHAT, &o);
    ctx_run(c, 2, 4000);
    assert_int_equal(c->r[1].rc, SY_ETIMEOUT);
    assert_true(c->r[1].status_seen);
    assert_int_equal(c->r[1].status, 200);
    assert_string_equal(c->r[1].err, "first byte timeout (300 ms)");
    ctx_free(c);
}

static void test_idle_timeout(void **state)
{
    (void) state;
    fake_mode("{\"token_delay_ms\":3000}");
    tctx_t *c = ctx_new();
    httpc_opts_t o = { .idle_timeout_ms = 300 };
    start_chat(c, 0, "/api/chat", CHAT, &o);
    ctx_run(c, 1, 4000);
    treq_t *t = &c->r[0];
    assert_true(t->done);
    assert_int_equal(t->rc, SY_ETIMEOUT);
    assert_string_equal(t->err, "idle timeout (300 ms)");
    assert_int_equal(t->nlines, 1);
    ctx_free(c);
}

static void test_total_timeout(void **state)
{
    (void) state;
    fake_mode("{\"token_delay_ms\":200}");
    tctx_t *c = ctx_new();
    httpc_opts_t o = { .idle_timeout_ms = 5000, .total_timeout_ms = 300 };
    start_chat(c, 0, "/api/chat", CHAT, &o);
    ctx_run(c, 1, 4000);
    assert_int_equal(c->r[0].rc, SY_ETIMEOUT);
    assert_string_equal(c->r[0].err, "total timeout (300 ms)");
    ctx_free(c);
}

static void test_connect_refused(void **state)
{
    (void) state;
    int port = tutil_free_port();
    assert_true(port > 0);
    tctx_t *c = ctx_new();
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/bot123:SECRET/getMe?token=x",
             port);
    httpc_opts_t o = { .url = url };
    httpc_cb_t cb = { on_status, NULL, on_done, &c->r[0] };
    assert_int_equal(httpc_start(c->h, &o, &cb, NULL), 0);
    ctx_run(c, 1, 10000);
    treq_t *t = &c->r[0];
    assert_true(t->done);
    assert_int_equal(t->rc, SY_EIO);
    assert_int_equal(t->status, 0);
    assert_false(t->status_seen);
    assert_non_null(strstr(t->err, "connect 127.0.0.1: "));
    assert_null(strstr(t->err, "SECRET"));
    assert_null(strstr(t->err, "token"));
    ctx_free(c);
}

static void test_cancel_in_on_data(void **state)
{
    (void) state;
    fake_mode("{\"token_delay_ms\":20}");
    tctx_t *c = ctx_new();
    c->r[0].cancel_at = 1;
    start_chat(c, 0, "/api/chat", CHAT, NULL);
    start_chat(c, 1, "/api/chat", CHAT, NULL);
    ctx_run(c, 1, 10000);               /* the second one ends */
    assert_true(c->r[1].done);
    assert_int_equal(c->r[1].rc, 0);
    assert_false(c->r[0].done);         /* no on_done after a cancel */
    assert_int_equal(c->r[0].nlines, 2);
    assert_null(c->r[0].req);
    assert_int_equal(httpc_running(c->h), 0);
    ctx_run(c, 99, 200);                /* nothing more comes */
    assert_false(c->r[0].done);
    assert_int_equal(c->r[0].nlines, 2);
    ctx_free(c);
}

static void test_stop_from_on_data(void **state)
{
    (void) state;
    tctx_t *c = ctx_new();
    c->r[0].stop_at = 0;
    start_chat(c, 0, "/api/chat", CHAT, NULL);
    ctx_run(c, 1, 10000);
    assert_true(c->r[0].done);
    assert_int_equal(c->r[0].rc, SY_ECLOSED);
    assert_int_equal(c->r[0].nlines, 1);
    ctx_free(c);
}

static void test_two_at_once(void **state)
{
    (void) state;
    fake_mode("{\"token_delay_ms\":30}");
    tctx_t *c = ctx_new();
    start_chat(c, 0, "/api/chat", CHAT, NULL);
    start_chat(c, 1, "/api/chat",
               "{\"model\":\"qwen2.5:7b\",\"messages\":[{\"role\":\"user\","
               "\"content\":\"second one here\"}]}", NULL);
    assert_int_equal(httpc_running(c->h), 2);
    ctx_run(c, 2, 10000);
    for (int i = 0; i < 2; i++) {
        assert_true(c->r[i].done);
        assert_int_equal(c->r[i].rc, 0);
        assert_int_equal(c->r[i].nlines, 5);
    }
    char tok[64];
    token_of(c->r[0].lines[1], tok, sizeof tok);
    assert_string_equal(tok, "hello ");
    token_of(c->r[1].lines[1], tok, sizeof tok);
    assert_string_equal(tok, "second ");
    assert_non_null(strstr(c->r[1].lines[0], "\"model\":\"qwen2.5:7b\""));
    ctx_free(c);
}

static void test_loop_not_blocked(void **state)
{
    (void) state;
    fake_mode("{\"token_delay_ms\":100}");
    tctx_t *c = ctx_new();
    int id = zloop_timer(c->loop, 10, 0, side_tick_cb, c);
    assert_true(id >= 0);
    start_chat(c, 0, "/api/chat", CHAT, NULL);
    ctx_run(c, 1, 10000);
    zloop_timer_end(c->loop, id);
    assert_int_equal(c->r[0].rc, 0);
    assert_int_equal(c->r[0].nlines, 5);
    assert_true(c->ticks_streaming > 0);
    ctx_free(c);
}

static void test_destroy_running(void **state)
{
    (void) state;
    fake_mode("{\"token_delay_ms\":2000}");
    tctx_t *c = ctx_new();
    c->until_data = true;
    start_chat(c, 0, "/api/chat", CHAT, NULL);
    start_chat(c, 1, "/api/chat", CHAT, NULL);
    ctx_run(c, 99, 5000);
    assert_true(c->r[0].nlines > 0);
    assert_true(httpc_running(c->h) >= 2);
    int done = c->ndone;
    httpc_destroy(&c->h);               /* no callbacks, nothing leaks */
    assert_null(c->h);
    assert_int_equal(c->ndone, done);
    httpc_destroy(&c->h);               /* safe on NULL */
    ctx_free(c);
}

static void test_too_large(void **state)
{
    (void) state;
    tctx_t *c = ctx_new();
    httpc_opts_t o = { .max_body = 40 };
    start_chat(c, 0, "/api/chat", CHAT, &o);
    ctx_run(c, 1, 10000);
    assert_int_equal(c->r[0].rc, SY_ETOO_LARGE);
    assert_string_equal(c->r[0].err, "line over 40 bytes");
    assert_int_equal(c->r[0].nlines, 0);

    /* with lines the limit is per line: the stream may be longer */
    httpc_opts_t o3 = { .max_body = 300 };
    start_chat(c, 2, "/api/chat", CHAT, &o3);
    ctx_run(c, 2, 10000);
    assert_int_equal(c->r[2].rc, 0);
    assert_int_equal(c->r[2].nlines, 5);

    char url[128];
    url_of(url, sizeof url, "/api/tags");
    httpc_opts_t o2 = { .url = url, .max_body = 50 };
    httpc_cb_t cb = { NULL, NULL, on_done, &c->r[1] };
    assert_int_equal(httpc_start(c->h, &o2, &cb, NULL), 0);
    ctx_run(c, 3, 10000);
    assert_int_equal(c->r[1].rc, SY_ETOO_LARGE);
    assert_string_equal(c->r[1].body, "");
    ctx_free(c);
}

static void test_bad_args(void **state)
{
    (void) state;
    tctx_t *c = ctx_new();
    httpc_cb_t cb = { NULL, NULL, on_done, &c->r[0] };
    httpc_req_t *r = (httpc_req_t *) 1;
    httpc_opts_t o = { 0 };
    assert_int_equal(httpc_start(c->h, &o, &cb, &r), SY_EINVAL);
    assert_null(r);
    const char *bad_urls[] = { "ftp://127.0.0.1/x", "127.0.0.1/api", "",
                               "http://", "file:///etc/passwd" };
    for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
        o.url = bad_urls[i];
        assert_int_equal(httpc_start(c->h, &o, &cb, NULL), SY_EINVAL);
    }
    char url[128];
    url_of(url, sizeof url, "/api/tags");
    o.url = url;
    httpc_cb_t nodone = { NULL, NULL, NULL, NULL };
    assert_int_equal(httpc_start(c->h, &o, &nodone, NULL), SY_EINVAL);
    assert_int_equal(httpc_start(NULL, &o, &cb, NULL), SY_EINVAL);
    assert_int_equal(httpc_start(c->h, NULL, &cb, NULL), SY_EINVAL);
    const char *const inject[] = { "X-A: 1\r\nX-B: 2", NULL };
    o.headers = inject;
    assert_int_equal(httpc_start(c->h, &o, &cb, NULL), SY_EINVAL);
    o.headers = NULL;
    o.method = "G T";
    assert_int_equal(httpc_start(c->h, &o, &cb, NULL), SY_EINVAL);
    o.method = NULL;
    o.body_len = 3;                     /* a length without a body */
    assert_int_equal(httpc_start(c->h, &o, &cb, NULL), SY_EINVAL);
    assert_int_equal(httpc_running(c->h), 0);
    assert_int_equal(httpc_running(NULL), 0);
    httpc_cancel(c->h, NULL);
    httpc_req_t *none = NULL;
    httpc_cancel(c->h, &none);
    assert_int_equal(httpc_new(c->loop, NULL), SY_EINVAL);
    httpc_t *h2 = (httpc_t *) 1;
    assert_int_equal(httpc_new(NULL, &h2), SY_EINVAL);
    assert_null(h2);
    httpc_destroy(NULL);
    assert_int_equal(c->ndone, 0);
    ctx_free(c);
}

static void test_last_line_without_newline(void **state)
{
    (void) state;
    tctx_t *c = ctx_new();
    char url[128];
    url_of(url, sizeof url, "/api/version");
    httpc_opts_t o = { .url = url, .lines = true };
    httpc_cb_t cb = { on_status, on_data, on_done, &c->r[0] };
    assert_int_equal(httpc_start(c->h, &o, &cb, NULL), 0);
    ctx_run(c, 1, 10000);
    assert_int_equal(c->r[0].rc, 0);
    assert_int_equal(c->r[0].nlines, 1);
    assert_string_equal(c->r[0].lines[0], "{\"version\":\"0.5.7\"}");
    assert_string_equal(c->r[0].body, "");
    ctx_free(c);
}

/* From inside r[0]'s on_data: start r[1] (a GET) and cancel r[2]. */
static void start_and_cancel_hook(treq_t *t)
{
    tctx_t *c = t->c;
    static char url[128];
    url_of(url, sizeof url, "/api/tags");
    httpc_opts_t o = { .url = url };
    httpc_cb_t cb = { NULL, NULL, on_done, &c->r[1] };
    assert_int_equal(httpc_start(c->h, &o, &cb, &c->r[1].req), 0);
    assert_non_null(c->r[1].req);
    assert_false(c->r[1].done);
    httpc_cancel(c->h, &c->r[2].req);
    assert_null(c->r[2].req);
}

static void test_start_and_cancel_inside(void **state)
{
    (void) state;
    fake_mode("{\"token_delay_ms\":20}");
    tctx_t *c = ctx_new();
    httpc_opts_t slow = { .first_byte_timeout_ms = 5000 };
    start_chat(c, 2, "/api/chat", CHAT, &slow);
    c->r[0].hook = start_and_cancel_hook;
    start_chat(c, 0, "/api/chat", CHAT, NULL);
    ctx_run(c, 2, 10000);
    assert_true(c->r[0].done);
    assert_int_equal(c->r[0].rc, 0);
    assert_int_equal(c->r[0].nlines, 5);
    assert_true(c->r[1].done);
    assert_int_equal(c->r[1].rc, 0);
    assert_non_null(strstr(c->r[1].body, "llama3.2:latest"));
    assert_false(c->r[2].done);
    assert_int_equal(httpc_running(c->h), 0);
    ctx_free(c);
}

/* A safety net, not an API to use: destroy from inside on_data. */
static void destroy_hook(treq_t *t)
{
    httpc_destroy(&t->c->h);
    assert_null(t->c->h);
}

static void test_destroy_inside(void **state)
{
    (void) state;
    fake_mode("{\"token_delay_ms\":20}");
    tctx_t *c = ctx_new();
    c->r[0].hook = destroy_hook;
    start_chat(c, 0, "/api/chat", CHAT, NULL);
    start_chat(c, 1, "/api/chat", CHAT, NULL);
    ctx_run(c, 99, 400);
    assert_int_equal(c->r[0].nlines, 1);    /* nothing after the destroy */
    assert_int_equal(c->ndone, 0);
    ctx_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_collect_tags, test_setup),
        cmocka_unit_test_setup(test_stream_lines, test_setup),
        cmocka_unit_test_setup(test_sse_lines, test_setup),
        cmocka_unit_test_setup(test_not_found_and_busy, test_setup),
        cmocka_unit_test_setup(test_error_line, test_setup),
        cmocka_unit_test_setup(test_drop, test_setup),
        cmocka_unit_test_setup(test_first_byte_timeout, test_setup),
        cmocka_unit_test_setup(test_idle_timeout, test_setup),
        cmocka_unit_test_setup(test_total_timeout, test_setup),
        cmocka_unit_test_setup(test_connect_refused, test_setup),
        cmocka_unit_test_setup(test_cancel_in_on_data, test_setup),
        cmocka_unit_test_setup(test_stop_from_on_data, test_setup),
        cmocka_unit_test_setup(test_two_at_once, test_setup),
        cmocka_unit_test_setup(test_loop_not_blocked, test_setup),
        cmocka_unit_test_setup(test_destroy_running, test_setup),
        cmocka_unit_test_setup(test_too_large, test_setup),
        cmocka_unit_test_setup(test_bad_args, test_setup),
        cmocka_unit_test_setup(test_last_line_without_newline, test_setup),
        cmocka_unit_test_setup(test_start_and_cancel_inside, test_setup),
        cmocka_unit_test_setup(test_destroy_inside, test_setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
