/*  test_inference.c -- sy-inference against the fake Ollama, on the real
 *  broker.
 *
 *  A raw test client plays the front door (it offers the service
 *  "frontdoor") and sends infer.request durably to "inference" with
 *  reply_to frontdoor, as sy-router does; a second client asks the broker
 *  about queues and workers.  The backend is tests/fakes/ollama_fake.py,
 *  switched between behaviours at run time.  Checked (docs/CHAT.md, "The
 *  inference worker"):
 *    - an answer streams as chat.token pieces and ends with one durable
 *      chat.reply {text, model, stats}; the job is acked (queue empty);
 *    - an unhealthy backend withdraws the service (no worker), a job then
 *      waits in the queue; healthy again, the worker comes back and
 *      answers it; a job streaming when the backend fails is handed
 *      back and answered once after;
 *    - an error line mid-stream, or a dropped connection: a reset token
 *      and a retry notice, then the whole answer, exactly one chat.reply;
 *    - 500, 503, or a backend that goes silent after the headers (the
 *      first-token timeout): the job is tried again and answered;
 *    - an unknown model: chat.reply MODEL_NOT_FOUND naming it, acked;
 *    - messages the model cannot take: chat.reply BAD_INPUT, acked;
 *    - the OpenAI backend answers the same way, with its usage;
 *    - the bearer token file is refused unless mode 0600, and its token
 *      appears in no output or log;
 *    - SIGTERM while generating: exits 0, the job back in the queue.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "schemas/syerr.h"
#include "tests/it/harness.h"
#include "tests/it/hchat.h"
#include "tests/it/hclient.h"
#include "tests/it/hdur.h"
#include "tests/it/hmp.h"

#define WAIT_MS 8000

/* One test's world. */
typedef struct {
    harness_t    *h;
    hchat_fake_t *fake;
    hproc_t      *worker;
    hclient_t    *fd;           /* plays the front door */
    hclient_t    *admin;        /* asks the broker */
} world_t;

/* What came back for one job. */
typedef struct {
    char     tokens[4096];      /* pieces of the last attempt, joined */
    int      ntokens;
    int      resets;
    int      retries;           /* chat.notice kind retry */
    int      replies;
    char     text[4096];        /* the chat.reply's */
    char     error[40];
    char     model[130];
    uint64_t eval_count, prompt_eval_count;
    bool     has_eval_count, has_prompt_eval_count;
} outcome_t;

static int setup(void **state)
{
    return harness_setup(state, "inference");
}

static void config(harness_t *h)
{
    hdur_fast_config(h);
    harness_set(h, "store/sync", "none");
    harness_set(h, "store/retry_backoff_max", "200ms");
    harness_set(h, "store/max_attempts", "10");
    harness_set(h, "inference/health_interval", "100ms");
    harness_set(h, "inference/health_failures", "2");
    harness_set(h, "inference/connect_timeout", "500ms");
    harness_set(h, "inference/first_token_timeout", "1s");
    harness_set(h, "inference/idle_timeout", "1s");
    harness_set(h, "inference/token_flush", "20ms");
    harness_set(h, "inference/busy_retry", "300ms");
    harness_set(h, "inference/lease_every", "300ms");
}

/* Number of live actors offering `service`, from sy.query place; -1 on
   failure. */
static int workers(world_t *w, const char *service)
{
    hquery_t q = { .what = "place", .service = service };
    hmsg_t m;
    if (hclient_query(w->admin, &q, &m, 2000 * harness_slow()))
        return -1;
    uint64_t n = 0;
    bool ok = strcmp(m.hdr.type, "sy.answer") == 0
              && hmp_get_uint(m.body, m.body_len, "data.workers", &n);
    if (!ok)
        hmsg_print("place answered with ", &m);
    hmsg_clear(&m);
    return ok ? (int) n : -1;
}

static bool wait_workers(world_t *w, int want, int timeout_ms)
{
    int64_t end = harness_now_ms() + (int64_t) timeout_ms * harness_slow();
    do {
        if (workers(w, "inference") == want)
            return true;
        harness_sleep_ms(50);
    } while (harness_now_ms() < end);
    return false;
}

static bool queue_empty(const hdur_counts_t *k, void *arg)
{
    (void) arg;
    return hdur_ready(k) == 0 && k->inflight == 0 && k->delayed == 0
           && k->dead == 0;
}

static void expect_queue_empty(world_t *w)
{
    hdur_counts_t k;
    if (!hdur_wait_counts(w->admin, "inference", queue_empty, NULL,
                          WAIT_MS * harness_slow(), &k))
        fail_msg("inference queue not empty: ready %llu delayed %llu "
                 "inflight %llu dead %llu",
                 (unsigned long long) hdur_ready(&k),
                 (unsigned long long) k.delayed,
                 (unsigned long long) k.inflight,
                 (unsigned long long) k.dead);
}

/* Starts broker, fake (mode may be NULL), worker (extra args may be
   NULL), the two clients; waits until the worker offers inference. */
static void world_start(world_t *w, harness_t *h, const char *mode,
                        const char *const *extra, bool wait_offer)
{
    memset(w, 0, sizeof *w);
    w->h = h;
    config(h);
    harness_broker_start(h);
    w->fake = hchat_fake_start(h, "fake", 0, mode);
    static const char *const fd_svc[] = { "frontdoor", NULL };
    w->fd = harness_client(h, "frontdoor", fd_svc, 1000);
    w->admin = harness_client(h, "it-admin", NULL, 1);
    w->worker = hchat_start_inference(h, w->fake, extra);
    assert_non_null(w->worker);
    assert_true(harness_wait_actor(h, "inference-1", true,
                                   WAIT_MS * harness_slow()));
    if (wait_offer && !wait_workers(w, 1, WAIT_MS))
        fail_msg("sy-inference never offered inference");
}

static void world_end(world_t *w)
{
    hchat_fake_free(&w->fake);
}

/* Sends infer.request {job, messages: [user: question], model?}
   durably to inference with reply_to frontdoor; checks the receipt. */
static void send_job(world_t *w, const uint8_t job[16], const char *question,
                     const char *model, const char *role)
{
    hmp_buf_t b;
    hmp_buf_init(&b);
    msgpack_pack_map(&b.pk, 2 + (model != NULL));
    hmp_str(&b, "job");
    msgpack_pack_bin(&b.pk, 16);
    msgpack_pack_bin_body(&b.pk, job, 16);
    hmp_str(&b, "messages");
    msgpack_pack_array(&b.pk, 2);
    msgpack_pack_map(&b.pk, 2);
    hmp_str(&b, "role");
    hmp_str(&b, "system");
    hmp_str(&b, "content");
    hmp_str(&b, "Be brief.");
    msgpack_pack_map(&b.pk, 2);
    hmp_str(&b, "role");
    hmp_str(&b, role ? role : "user");
    hmp_str(&b, "content");
    hmp_str(&b, question);
    if (model) {
        hmp_str(&b, "model");
        hmp_str(&b, model);
    }
    char hex[33], key[40];
    snprintf(key, sizeof key, "job:%s", hdur_hex(job, hex));
    hsend_t s = { .type = "infer.request", .to = "inference",
                  .reply_to = "frontdoor", .durable = true, .key = key,
                  .prio = 2, .has_prio = true };
    uint8_t id[16];
    assert_int_equal(hclient_send(w->admin, &s, (const uint8_t *) b.sb.data,
                                  b.sb.size, id), 0);
    hmp_buf_clear(&b);
    hmsg_t m;
    assert_int_equal(hclient_recv_corr(w->admin, id, &m,
                                       5000 * harness_slow()), 0);
    hdur_receipt_t r;
    assert_true(hdur_receipt_parse(&m, &r));
    if (!r.ok)
        fail_msg("infer.request refused: %s %s", r.code, r.msg);
    hmsg_clear(&m);
}

static void new_job(world_t *w, uint8_t job[16])
{
    hclient_new_id(w->admin, job);
}

static bool body_job_is(const hmsg_t *m, const uint8_t job[16])
{
    mpval_t v;
    return hmp_get(m->body, m->body_len, "job", &v) == 0
           && v.kind == MP_BIN && v.len == 16
           && memcmp(v.ptr, job, 16) == 0;
}

/* Takes one message for the front door into o; true when it was the
   reply. */
static bool take(world_t *w, const hmsg_t *m, const uint8_t job[16],
                 outcome_t *o)
{
    const char *t = m->hdr.type;
    if (strcmp(t, "chat.token") == 0 && body_job_is(m, job)) {
        bool reset = false;
        hmp_get_bool(m->body, m->body_len, "reset", &reset);
        if (reset) {
            o->resets++;
            o->tokens[0] = 0;
            return false;
        }
        char piece[1024] = "";
        hmp_get_str(m->body, m->body_len, "text", piece, sizeof piece);
        strncat(o->tokens, piece, sizeof o->tokens - strlen(o->tokens) - 1);
        o->ntokens++;
        return false;
    }
    if (strcmp(t, "chat.notice") == 0 && body_job_is(m, job)) {
        char kind[32] = "";
        hmp_get_str(m->body, m->body_len, "kind", kind, sizeof kind);
        if (strcmp(kind, "retry") == 0)
            o->retries++;
        return false;
    }
    if (strcmp(t, "chat.reply") != 0 || !body_job_is(m, job)) {
        hmsg_print("front door got: ", m);
        return false;
    }
    if (!m->hdr.durable)
        fail_msg("chat.reply not durable");
    o->replies++;
    hmp_get_str(m->body, m->body_len, "text", o->text, sizeof o->text);
    hmp_get_str(m->body, m->body_len, "error", o->error, sizeof o->error);
    hmp_get_str(m->body, m->body_len, "model", o->model, sizeof o->model);
    o->has_eval_count = hmp_get_uint(m->body, m->body_len,
                                     "stats.eval_count", &o->eval_count);
    o->has_prompt_eval_count = hmp_get_uint(m->body, m->body_len,
                                            "stats.prompt_eval_count",
                                            &o->prompt_eval_count);
    assert_int_equal(hclient_ack(w->fd, m->hdr.id), 0);
    return true;
}

/* Collects what comes to the front door for job until its chat.reply,
   then listens quiet_ms more for a second reply. */
static void collect(world_t *w, const uint8_t job[16], int timeout_ms,
                    int quiet_ms, outcome_t *o)
{
    memset(o, 0, sizeof *o);
    int64_t end = harness_now_ms() + (int64_t) timeout_ms * harness_slow();
    while (o->replies == 0) {
        int64_t left = end - harness_now_ms();
        if (left <= 0)
            fail_msg("no chat.reply within %d ms (%d tokens, %d resets, %d "
                     "retries)", timeout_ms, o->ntokens, o->resets,
                     o->retries);
        hmsg_t m;
        if (hclient_recv(w->fd, &m, (int) left) == 0) {
            take(w, &m, job, o);
            hmsg_clear(&m);
        }
    }
    end = harness_now_ms() + quiet_ms;
    for (;;) {
        int64_t left = end - harness_now_ms();
        if (left <= 0)
            break;
        hmsg_t m;
        if (hclient_recv(w->fd, &m, (int) left) == 0) {
            take(w, &m, job, o);
            hmsg_clear(&m);
        }
    }
}

static void expect_answer(const outcome_t *o, const char *question)
{
    char want[512];
    snprintf(want, sizeof want, "Answer: %s", question);
    assert_int_equal(o->replies, 1);
    assert_string_equal(o->error, "");
    assert_string_equal(o->text, want);
    assert_string_equal(o->tokens, want);
    assert_true(o->ntokens >= 1);
}

/* ---------------------------------------------------------------- hostile */

/* A backend that answers /api/tags and then streams /api/chat the way
   argv[2] says, for ever (until the client hangs up): "after_done" sends
   a token and done:true, then newlines; "flood" sends a token, then
   lines that add nothing.  Writes its port to argv[1]. */
static const char hostile_py[] =
"import sys, time, json\n"
"from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer\n"
"MODE = sys.argv[2]\n"
"TOK = json.dumps({'model': 'llama3.2', 'message': {'role': 'assistant',"
" 'content': 'Hi'}, 'done': False}).encode() + b'\\n'\n"
"NOP = json.dumps({'model': 'llama3.2', 'message': {'role': 'assistant',"
" 'content': ''}, 'done': False}).encode() + b'\\n'\n"
"DONE = json.dumps({'model': 'llama3.2', 'done': True,"
" 'eval_count': 1}).encode() + b'\\n'\n"
"class H(BaseHTTPRequestHandler):\n"
"    def log_message(self, *a): pass\n"
"    def do_GET(self):\n"
"        b = b'{\"models\": [{\"name\": \"llama3.2:latest\"}]}'\n"
"        self.send_response(200)\n"
"        self.send_header('Content-Length', str(len(b)))\n"
"        self.end_headers()\n"
"        self.wfile.write(b)\n"
"    def do_POST(self):\n"
"        self.rfile.read(int(self.headers.get('Content-Length', '0')))\n"
"        self.send_response(200)\n"
"        self.send_header('Content-Type', 'application/x-ndjson')\n"
"        self.end_headers()\n"
"        try:\n"
"            self.wfile.write(TOK + (DONE if MODE == 'after_done' else b''))\n"
"            self.wfile.flush()\n"
"            for _ in range(100000):\n"
"                if MODE == 'after_done':\n"
"                    self.wfile.write(b'\\n'); time.sleep(0.02)\n"
"                else:\n"
"                    self.wfile.write(NOP * 64); time.sleep(0.001)\n"
"                self.wfile.flush()\n"
"        except OSError:\n"
"            pass\n"
"H.protocol_version = 'HTTP/1.0'\n"
"s = ThreadingHTTPServer(('127.0.0.1', 0), H)\n"
"open(sys.argv[1] + '.tmp', 'w').write(str(s.server_address[1]))\n"
"import os; os.rename(sys.argv[1] + '.tmp', sys.argv[1])\n"
"s.serve_forever()\n";

/* Starts the hostile backend in `mode`; writes its URL to url. */
static void hostile_start(harness_t *h, const char *mode, char *url,
                          size_t cap)
{
    char py[HARNESS_PATH_MAX], portf[HARNESS_PATH_MAX];
    snprintf(py, sizeof py, "%s/hostile.py", harness_dir(h));
    snprintf(portf, sizeof portf, "%s/hostile.port", harness_dir(h));
    FILE *f = fopen(py, "w");
    assert_non_null(f);
    fputs(hostile_py, f);
    fclose(f);
    char *argv[] = { "/usr/bin/env", "python3", py, portf, (char *) mode,
                     NULL };
    assert_non_null(harness_spawn(h, "hostile", argv));
    int port = 0;
    for (int i = 0; i < 200 && port == 0; i++) {
        f = fopen(portf, "r");
        if (f) {
            if (fscanf(f, "%d", &port) != 1)
                port = 0;
            fclose(f);
        }
        if (port == 0)
            harness_sleep_ms(50);
    }
    assert_true(port > 0);
    snprintf(url, cap, "http://127.0.0.1:%d", port);
}

/* A backend that says done and keeps the stream open: the answer ends
   at done, not when the backend hangs up. */
static void test_stream_after_done_ends_job(void **state)
{
    harness_t *h = *state;
    char url[64];
    hostile_start(h, "after_done", url, sizeof url);
    const char *const extra[] = { "--url", url, NULL };
    world_t w;
    world_start(&w, h, NULL, extra, true);
    uint8_t job[16];
    new_job(&w, job);
    send_job(&w, job, "hello", NULL, NULL);
    outcome_t o;
    collect(&w, job, WAIT_MS, 200, &o);
    assert_int_equal(o.replies, 1);
    assert_string_equal(o.error, "");
    assert_string_equal(o.text, "Hi");
    expect_queue_empty(&w);
    world_end(&w);
    harness_pass(h);
}

/* A stream of lines that add nothing never trips the idle timeout; the
   worker gives the attempt up after a bounded number of bytes. */
static void test_endless_empty_stream_fails_attempt(void **state)
{
    harness_t *h = *state;
    harness_set(h, "broker/max_msg", "64K");    /* answer_max ~ 56K */
    char url[64];
    hostile_start(h, "flood", url, sizeof url);
    const char *const extra[] = { "--url", url, NULL };
    world_t w;
    world_start(&w, h, NULL, extra, true);
    uint8_t job[16];
    new_job(&w, job);
    send_job(&w, job, "hello", NULL, NULL);
    outcome_t o;
    memset(&o, 0, sizeof o);
    int64_t end = harness_now_ms() + (int64_t) WAIT_MS * harness_slow();
    while (o.retries == 0 && harness_now_ms() < end) {
        hmsg_t m;
        if (hclient_recv(w.fd, &m, 200) == 0) {
            take(&w, &m, job, &o);
            hmsg_clear(&m);
        }
    }
    if (o.retries == 0)
        fail_msg("an endless stream held the job (%d tokens)", o.ntokens);
    assert_true(o.resets >= 1);
    world_end(&w);
    harness_pass(h);
}

/* ---------------------------------------------------------------- tests */

static void test_answer_streams_and_acks(void **state)
{
    harness_t *h = *state;
    world_t w;
    world_start(&w, h, "{\"token_delay_ms\":30}", NULL, true);
    uint8_t job[16];
    new_job(&w, job);
    send_job(&w, job, "hello big wide world", NULL, NULL);
    outcome_t o;
    collect(&w, job, WAIT_MS, 200, &o);
    expect_answer(&o, "hello big wide world");
    assert_int_equal(o.resets, 0);
    assert_int_equal(o.retries, 0);
    /* pieces were streamed before the reply, not one lump */
    assert_true(o.ntokens >= 2);
    assert_string_equal(o.model, "llama3.2");
    assert_true(o.has_eval_count);
    assert_int_equal(o.eval_count, 5);
    assert_true(o.has_prompt_eval_count);
    expect_queue_empty(&w);
    assert_int_equal(hchat_fake_stat(w.fake, "chat_requests"), 1);
    world_end(&w);
    harness_pass(h);
}

static void test_unhealthy_withdraws_then_returns(void **state)
{
    harness_t *h = *state;
    world_t w;
    world_start(&w, h, NULL, NULL, true);
    hchat_fake_mode(w.fake, "{\"fail\":\"unhealthy\"}");
    if (!wait_workers(&w, 0, WAIT_MS))
        fail_msg("the worker still offers inference with the backend down");
    /* still connected, only without the service */
    assert_true(harness_wait_actor(h, "inference-1", true, 2000));
    uint8_t job[16];
    new_job(&w, job);
    send_job(&w, job, "are you there", NULL, NULL);
    /* the job waits: nothing comes, it stays queued */
    hmsg_t m;
    if (hclient_recv_type(w.fd, "chat.reply", &m, 500, NULL) == 0)
        fail_msg("a reply came from a withdrawn worker");
    hdur_counts_t k;
    assert_int_equal(hdur_counts(w.admin, "inference", &k, 2000), 0);
    assert_int_equal(hdur_ready(&k) + k.delayed, 1);
    assert_int_equal(k.inflight, 0);
    long before = hchat_fake_stat(w.fake, "chat_requests");
    assert_int_equal(before, 0);
    /* the backend is back: the worker offers again and answers */
    hchat_fake_mode(w.fake, "{\"fail\":\"none\"}");
    outcome_t o;
    collect(&w, job, WAIT_MS, 200, &o);
    expect_answer(&o, "are you there");
    assert_int_equal(workers(&w, "inference"), 1);
    expect_queue_empty(&w);
    world_end(&w);
    harness_pass(h);
}

/* The backend fails its health checks while a job streams: the job is
   handed back (reset, retry notice), the service withdrawn; back, the
   job is answered once. */
static void test_withdraw_hands_back_running_job(void **state)
{
    harness_t *h = *state;
    world_t w;
    world_start(&w, h, "{\"token_delay_ms\":300}", NULL, true);
    uint8_t job[16];
    new_job(&w, job);
    send_job(&w, job, "a slow and long answer to give", NULL, NULL);
    int64_t end = harness_now_ms() + WAIT_MS * harness_slow();
    while (hchat_fake_stat(w.fake, "active") < 1 && harness_now_ms() < end)
        harness_sleep_ms(20);
    assert_int_equal(hchat_fake_stat(w.fake, "active"), 1);
    hchat_fake_mode(w.fake, "{\"fail\":\"unhealthy\"}");
    if (!wait_workers(&w, 0, WAIT_MS))
        fail_msg("the worker still offers inference with the backend down");
    hchat_fake_mode(w.fake, "{\"fail\":\"none\",\"token_delay_ms\":0}");
    outcome_t o;
    collect(&w, job, WAIT_MS, 300, &o);
    expect_answer(&o, "a slow and long answer to give");
    assert_int_equal(o.resets, 1);
    assert_int_equal(o.retries, 1);
    expect_queue_empty(&w);
    world_end(&w);
    harness_pass(h);
}

/* A fail mode that hits one request mid-stream: one retry, then the
   whole answer, one reply. */
static void retry_once(harness_t *h, const char *mode)
{
    world_t w;
    world_start(&w, h, NULL, NULL, true);
    hchat_fake_mode(w.fake, mode);
    uint8_t job[16];
    new_job(&w, job);
    send_job(&w, job, "one two three four five", NULL, NULL);
    outcome_t o;
    collect(&w, job, WAIT_MS, 500, &o);
    expect_answer(&o, "one two three four five");
    assert_int_equal(o.resets, 1);
    assert_int_equal(o.retries, 1);
    assert_int_equal(hchat_fake_stat(w.fake, "chat_requests"), 2);
    expect_queue_empty(&w);
    world_end(&w);
    harness_pass(h);
}

static void test_error_line_retries(void **state)
{
    retry_once(*state, "{\"fail\":\"error_line\",\"fail_after_tokens\":2,"
                       "\"fail_count\":1}");
}

static void test_dropped_stream_retries(void **state)
{
    retry_once(*state, "{\"fail\":\"drop\",\"fail_after_tokens\":2,"
                       "\"fail_count\":1,\"token_delay_ms\":20}");
}

static void test_busy_is_retried_later(void **state)
{
    retry_once(*state, "{\"fail\":\"busy503\",\"fail_count\":1}");
}

static void test_http500_retries(void **state)
{
    retry_once(*state, "{\"fail\":\"http500\",\"fail_count\":1}");
}

/* headers, then silence: the first-token timeout ends the attempt */
static void test_silent_backend_times_out(void **state)
{
    retry_once(*state, "{\"fail\":\"hang\",\"fail_count\":1}");
}

static void test_unknown_model(void **state)
{
    harness_t *h = *state;
    world_t w;
    world_start(&w, h, NULL, NULL, true);
    uint8_t job[16];
    new_job(&w, job);
    send_job(&w, job, "hi", "no-such-model", NULL);
    outcome_t o;
    collect(&w, job, WAIT_MS, 300, &o);
    assert_int_equal(o.replies, 1);
    assert_string_equal(o.error, "MODEL_NOT_FOUND");
    if (!strstr(o.text, "no-such-model"))
        fail_msg("the reply does not name the model: %s", o.text);
    assert_int_equal(o.retries, 0);
    expect_queue_empty(&w);
    assert_int_equal(hchat_fake_stat(w.fake, "chat_requests"), 1);
    world_end(&w);
    harness_pass(h);
}

static void test_bad_messages(void **state)
{
    harness_t *h = *state;
    world_t w;
    world_start(&w, h, NULL, NULL, true);
    uint8_t job[16];
    new_job(&w, job);
    send_job(&w, job, "hi", NULL, "robot");
    outcome_t o;
    collect(&w, job, WAIT_MS, 300, &o);
    assert_int_equal(o.replies, 1);
    assert_string_equal(o.error, "BAD_INPUT");
    if (!strstr(o.text, "role"))
        fail_msg("the reply does not say what is wrong: %s", o.text);
    expect_queue_empty(&w);
    assert_int_equal(hchat_fake_stat(w.fake, "chat_requests"), 0);
    world_end(&w);
    harness_pass(h);
}

static void test_openai_backend(void **state)
{
    harness_t *h = *state;
    world_t w;
    const char *const extra[] = { "--backend", "openai", NULL };
    world_start(&w, h, NULL, extra, true);
    uint8_t job[16];
    new_job(&w, job);
    send_job(&w, job, "via the other api", NULL, NULL);
    outcome_t o;
    collect(&w, job, WAIT_MS, 200, &o);
    expect_answer(&o, "via the other api");
    assert_true(o.has_eval_count);
    assert_int_equal(o.eval_count, 5);
    assert_true(o.has_prompt_eval_count);
    expect_queue_empty(&w);
    world_end(&w);
    harness_pass(h);
}

static void write_key(const char *path, int mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("sk-test-SECRET-4242\n", f);
    fclose(f);
    assert_int_equal(chmod(path, (mode_t) mode), 0);
}

/* The bearer token file: refused unless mode 0600; never logged. */
static void test_api_key_file(void **state)
{
    harness_t *h = *state;
    char key[HARNESS_PATH_MAX];
    snprintf(key, sizeof key, "%s/api.key", harness_dir(h));
    write_key(key, 0644);
    harness_set(h, "inference/api_key_file", key);
    char bin[HARNESS_PATH_MAX];
    harness_bin(h, "sy-inference", bin, sizeof bin);
    char *argv[] = { bin, "--config", (char *) harness_config(h),
                     "--backend", "openai", NULL };
    hrun_t r;
    assert_int_equal(harness_run(h, argv, 5000 * harness_slow(), &r), 0);
    assert_int_equal(r.exit_code, 4);
    if (!strstr(r.err, "api.key") || !strstr(r.err, "0644"))
        fail_msg("refusal does not name the file and mode: %s", r.err);
    assert_null(strstr(r.err, "SECRET"));
    assert_null(strstr(r.out, "SECRET"));
    hrun_clear(&r);

    assert_int_equal(chmod(key, 0600), 0);
    world_t w;
    const char *const extra[] = { "--backend", "openai", NULL };
    world_start(&w, h, NULL, extra, true);
    uint8_t job[16];
    new_job(&w, job);
    send_job(&w, job, "with a key", NULL, NULL);
    outcome_t o;
    collect(&w, job, WAIT_MS, 100, &o);
    expect_answer(&o, "with a key");
    char *log = hchat_read_file(w.worker->log);
    assert_non_null(strstr(log, "bearer token set"));
    assert_null(strstr(log, "SECRET"));
    free(log);
    world_end(&w);
    harness_pass(h);
}

static void test_sigterm_hands_back(void **state)
{
    harness_t *h = *state;
    world_t w;
    world_start(&w, h, "{\"fail\":\"hang\"}", NULL, true);
    uint8_t job[16];
    new_job(&w, job);
    send_job(&w, job, "never answered", NULL, NULL);
    /* wait until the worker holds it (the fake has the request) */
    int64_t end = harness_now_ms() + WAIT_MS * harness_slow();
    while (hchat_fake_stat(w.fake, "active") < 1 && harness_now_ms() < end)
        harness_sleep_ms(50);
    assert_int_equal(hchat_fake_stat(w.fake, "active"), 1);
    harness_signal(h, w.worker, SIGTERM);
    assert_true(harness_wait_exit(h, w.worker, 5000 * harness_slow()));
    assert_true(WIFEXITED(w.worker->status));
    assert_int_equal(WEXITSTATUS(w.worker->status), 0);
    /* handed back at once: waiting in the queue, not in flight */
    hdur_counts_t k;
    assert_int_equal(hdur_counts(w.admin, "inference", &k, 2000), 0);
    assert_int_equal(hdur_ready(&k) + k.delayed, 1);
    assert_int_equal(k.inflight, 0);
    world_end(&w);
    harness_pass(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_answer_streams_and_acks, setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_unhealthy_withdraws_then_returns,
                                        setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_withdraw_hands_back_running_job,
                                        setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_error_line_retries, setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_dropped_stream_retries, setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_busy_is_retried_later, setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_http500_retries, setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_silent_backend_times_out, setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_model, setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_bad_messages, setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_openai_backend, setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_api_key_file, setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_stream_after_done_ends_job,
                                        setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_endless_empty_stream_fails_attempt,
                                        setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_hands_back, setup,
                                        harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
