/*  inference.c -- sy-inference, the laptop's LLM worker (service inference).
 *
 *  Takes durable infer.request jobs, asks the LLM backend (Ollama, or an
 *  OpenAI-compatible server) for the answer, streams the pieces to the
 *  job's reply_to as chat.token and ends every job with exactly one of:
 *  a durable chat.reply then sy.ack (answer, MODEL_NOT_FOUND, BAD_INPUT,
 *  BACKEND), or sy.nack for a retry.  docs/CHAT.md, "The inference
 *  worker", is the contract; actors/llm.c holds the protocols.
 *
 *  Ideas:
 *    - Nothing blocks the loop: HTTP runs in the actor's zloop through
 *      actors/httpc.c (curl multi), so heartbeats, lease extensions and
 *      other jobs go on while a model thinks.
 *    - The service is offered only while the backend answers its health
 *      check: a laptop whose Ollama is down takes no jobs, and they wait
 *      in the broker.  After inference/health_failures failures in a row
 *      the worker hands back what it holds and says hello without the
 *      service (actor_set_services); the first good check brings it back.
 *    - A job is acked only after the broker's receipt for its chat.reply
 *      (DUPLICATE counts: the reply was stored before), so a crash at any
 *      point loses no answer; the reply's key reply:<job> makes a second
 *      attempt's reply a DUPLICATE instead of a second answer.
 *    - Each job holds one credit (inference/concurrency in all) and keeps
 *      its lease alive with actor_keepalive() however long it runs.
 *    - Tokens are a preview: batched at most every inference/token_flush,
 *      sent non-durably, lost without harm.  A failed attempt voids them
 *      with chat.token {reset: true} and says so with chat.notice retry.
 *    - Connection loss: a reply not sent or not receipted is sent again
 *      after the next welcome (same key); an ack refused for a lost
 *      session is tried again on each tick until the broker's new delivery
 *      of the job takes the old one's place.
 *
 *  Secrets: the bearer token (inference/api_key_file, mode 0600) lives
 *  only in the header line handed to httpc, wiped at exit, never logged.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>
#include <sodium.h>

#include "actors/actor.h"
#include "actors/httpc.h"
#include "actors/llm.h"
#include "common/cliargs.h"
#include "common/config.h"
#include "common/secretfile.h"
#include "common/sylog.h"
#include "schemas/mpread.h"
#include "schemas/syerr.h"

#define INF_EXIT_USAGE  2
#define INF_EXIT_CONFIG 4

#define INF_SERVICE      "inference"
#define INF_TOKEN_MAX    (64 * 1024)        /* chat.token text limit */
#define INF_REPLY_MAX    (1024 * 1024)      /* chat.reply text limit */
#define INF_ERRBODY_MAX  1024
#define INF_ACK_TRIES    60                 /* ticks an ack is retried */
#define INF_KEY_MAX      4096
#define INF_STREAM_FACTOR 8                 /* stream bytes per answer byte
                                               kept, at most */

typedef struct {
    llm_backend_t backend;
    const char   *url;              /* base, no trailing '/' needed */
    const char   *model;
    uint32_t      concurrency;
    uint32_t      health_interval;
    uint32_t      health_failures;
    uint32_t      connect_timeout;
    uint32_t      first_token_timeout;
    uint32_t      idle_timeout;
    uint32_t      token_flush;
    uint32_t      busy_retry;
    uint32_t      lease_every;
    size_t        answer_max;       /* bytes of an answer kept */
} inf_cfg_t;

typedef enum {
    JOB_RUNNING,        /* the backend is answering */
    JOB_REPLYING,       /* chat.reply sent (or to send): waits for receipt */
    JOB_ACKING          /* receipt in; the ack waits for a live session */
} job_state_t;

typedef struct _inf_t inf_t;

typedef struct {
    inf_t        *inf;
    void         *handle;           /* in inf->jobs */
    job_state_t   state;
    uint8_t       id[16];           /* the delivery */
    uint8_t       job[16];          /* the job (body) */
    char          job_hex[33];
    char          reply_to[ENVELOPE_NAME_MAX + 2];
    uint32_t      attempt;
    char          model[LLM_MODEL_MAX + 1];     /* asked for */
    char          answered_by[LLM_MODEL_MAX + 1];
    httpc_req_t  *req;
    long          status;
    char         *text;             /* the answer so far */
    size_t        len, cap;
    size_t        sent;             /* bytes of text sent as tokens */
    size_t        received;         /* bytes of lines read, all kinds */
    uint64_t      seq;              /* next chat.token seq */
    int           flush_timer;      /* zloop timer id, -1: none */
    llm_stats_t   stats;
    bool          done;             /* the backend said done */
    bool          cut;              /* stopped at answer_max */
    char          fail[LLM_ERR_MAX + 64];       /* why the attempt failed */
    char          errbody[INF_ERRBODY_MAX];     /* a non-200 body */
    size_t        errbody_len;
    uint8_t      *reply;            /* chat.reply body, kept for resends */
    size_t        reply_len;
    bool          reply_sent;
    uint8_t       reply_id[16];     /* its message id (receipt corr) */
    int           ack_tries;
} job_t;

struct _inf_t {
    actor_t    *actor;
    httpc_t    *http;
    inf_cfg_t   cfg;
    const char *headers[3];         /* NULL-terminated */
    char       *auth;               /* "Authorization: Bearer ...", owned */
    zlistx_t   *jobs;               /* job_t */
    httpc_req_t *health_req;
    int         health_timer;
    uint32_t    fails;              /* failed health checks in a row */
    bool        offering;
    bool        ever_checked;
    bool        stopping;
};

/* ---------------------------------------------------------------- bodies */

static void inf_pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

static void inf_pack_key(msgpack_packer *pk, const char *k)
{
    inf_pack_str(pk, k);
}

static void inf_pack_job(msgpack_packer *pk, const job_t *j)
{
    inf_pack_key(pk, "job");
    msgpack_pack_bin_with_body(pk, j->job, 16);
}

/* Sends body (sb, destroyed here) as `type` to the job's reply_to,
   non-durably.  Failures only cost a preview: logged at debug. */
static void inf_send_light(job_t *j, const char *type, msgpack_sbuffer *sb)
{
    int rc = sb->data ? actor_send(j->inf->actor, j->reply_to, type,
                                   (const uint8_t *) sb->data, sb->size,
                                   NULL, NULL)
                      : SY_ENOMEM;
    if (rc)
        sylog_debug("inference: job %s: %s to %s not sent: %s", j->job_hex,
                    type, j->reply_to, syerr_name(rc));
    msgpack_sbuffer_destroy(sb);
}

static void inf_send_token(job_t *j, const char *text, size_t n, bool reset)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4 + reset);
    inf_pack_job(&pk, j);
    inf_pack_key(&pk, "seq");
    msgpack_pack_uint64(&pk, j->seq++);
    inf_pack_key(&pk, "text");
    msgpack_pack_str_with_body(&pk, text, n);
    inf_pack_key(&pk, "attempt");
    msgpack_pack_uint32(&pk, j->attempt);
    if (reset) {
        inf_pack_key(&pk, "reset");
        msgpack_pack_true(&pk);
    }
    inf_send_light(j, "chat.token", &sb);
}

static void inf_send_notice(job_t *j, const char *kind, const char *text)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    inf_pack_key(&pk, "kind");
    inf_pack_str(&pk, kind);
    inf_pack_key(&pk, "text");
    msgpack_pack_str_with_body(&pk, text, strnlen(text, 4096));
    inf_pack_job(&pk, j);
    inf_send_light(j, "chat.notice", &sb);
}

/* Builds the chat.reply body into j->reply: the answer (error NULL) or
   an error with its sentence.  Returns 0 or SY_ENOMEM. */
static int inf_build_reply(job_t *j, const char *error, const char *text,
                           size_t text_len)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    const char *model = j->answered_by[0] ? j->answered_by : j->model;
    bool with_model = !error && model[0];
    bool with_stats = !error;
    msgpack_pack_map(&pk, 2 + (error != NULL) + with_model + with_stats);
    inf_pack_job(&pk, j);
    inf_pack_key(&pk, "text");
    msgpack_pack_str_with_body(&pk, text, text_len);
    if (error) {
        inf_pack_key(&pk, "error");
        inf_pack_str(&pk, error);
    }
    if (with_model) {
        inf_pack_key(&pk, "model");
        inf_pack_str(&pk, model);
    }
    if (with_stats) {
        inf_pack_key(&pk, "stats");
        llm_stats_pack(&pk, &j->stats);
    }
    if (!sb.data) {
        msgpack_sbuffer_destroy(&sb);
        return SY_ENOMEM;
    }
    free(j->reply);
    j->reply_len = sb.size;
    j->reply = (uint8_t *) msgpack_sbuffer_release(&sb);
    return 0;
}

/* ---------------------------------------------------------------- jobs */

static void inf_flush_stop(job_t *j)
{
    if (j->flush_timer >= 0) {
        zloop_timer_end(actor_loop(j->inf->actor), j->flush_timer);
        j->flush_timer = -1;
    }
}

/* Frees the job and takes it out of the list.  Cancels its request. */
static void job_destroy(job_t **jp)
{
    job_t *j = *jp;
    if (!j)
        return;
    inf_flush_stop(j);
    if (j->req)
        httpc_cancel(j->inf->http, &j->req);
    if (j->handle)
        zlistx_delete(j->inf->jobs, j->handle);
    free(j->text);
    free(j->reply);
    free(j);
    *jp = NULL;
}

/* Sends the text not yet sent as chat.token pieces of at most
   INF_TOKEN_MAX bytes, cut on UTF-8 character boundaries. */
static void inf_flush(job_t *j)
{
    inf_flush_stop(j);
    while (j->sent < j->len) {
        size_t n = j->len - j->sent;
        if (n > INF_TOKEN_MAX) {
            n = INF_TOKEN_MAX;
            while (n > 1 && ((uint8_t) j->text[j->sent + n] & 0xc0) == 0x80)
                n--;
        }
        inf_send_token(j, j->text + j->sent, n, false);
        j->sent += n;
    }
}

static int inf_flush_cb(zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    job_t *j = arg;
    j->flush_timer = -1;    /* one-shot: ended by zloop */
    inf_flush(j);
    return 0;
}

/* New text arrived: sends it now (token_flush 0) or arms the batch timer
   (so pieces go out at most every token_flush). */
static void inf_flush_soon(job_t *j)
{
    if (j->sent >= j->len || j->flush_timer >= 0)
        return;
    if (j->inf->cfg.token_flush == 0) {
        inf_flush(j);
        return;
    }
    j->flush_timer = zloop_timer(actor_loop(j->inf->actor),
                                 j->inf->cfg.token_flush, 1, inf_flush_cb, j);
    if (j->flush_timer < 0)
        inf_flush(j);
}

/* Appends a piece to the answer, up to answer_max (cut on a character
   boundary).  Returns false when the answer is full (j->cut). */
static bool inf_append(job_t *j, const char *s, size_t n)
{
    size_t room = j->inf->cfg.answer_max - j->len;
    if (n > room) {
        n = room;
        while (n > 0 && ((uint8_t) s[n] & 0xc0) == 0x80)
            n--;
        j->cut = true;
    }
    if (j->len + n + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 256;
        while (cap < j->len + n + 1)
            cap *= 2;
        char *t = realloc(j->text, cap);
        if (!t) {
            j->cut = true;
            return false;
        }
        j->text = t;
        j->cap = cap;
    }
    memcpy(j->text + j->len, s, n);
    j->len += n;
    return !j->cut;
}

/* Acks the job's delivery; on a lost session keeps it to try again. */
static void inf_ack(job_t *j)
{
    int rc = actor_ack(j->inf->actor, j->id);
    if (rc == SY_ECLOSED && ++j->ack_tries < INF_ACK_TRIES) {
        j->state = JOB_ACKING;
        return;
    }
    if (rc)
        sylog_info("inference: job %s: ack not sent: %s", j->job_hex,
                   syerr_name(rc));
    else
        sylog_debug("inference: job %s acked", j->job_hex);
    job_destroy(&j);
}

/* Sends (again) the kept chat.reply durably with key reply:<job>. */
static void inf_send_reply(job_t *j)
{
    char key[48];
    snprintf(key, sizeof key, "reply:%s", j->job_hex);
    actor_send_opts_t o = { .durable = true, .key = key };
    int rc = actor_send(j->inf->actor, j->reply_to, "chat.reply", j->reply,
                        j->reply_len, &o, j->reply_id);
    j->reply_sent = rc == 0;
    if (rc == 0 || rc == SY_ECLOSED || rc == SY_EQUEUE_FULL) {
        if (rc)
            sylog_info("inference: job %s: reply waits (%s)", j->job_hex,
                       syerr_name(rc));
        return;
    }
    /* refused as it is (too large for the broker, bad body): a short
       error answer instead, so the job still ends */
    sylog_warn("inference: job %s: reply refused (%s); answering BACKEND",
               j->job_hex, syerr_name(rc));
    char text[160];
    snprintf(text, sizeof text, "The answer could not be delivered (%s).",
             syerr_name(rc));
    int rc2 = inf_build_reply(j, "BACKEND", text, strlen(text));
    if (rc2 == 0) {
        rc2 = actor_send(j->inf->actor, j->reply_to, "chat.reply", j->reply,
                         j->reply_len, &o, j->reply_id);
        j->reply_sent = rc2 == 0;
    }
    if (rc2 == 0 || rc2 == SY_ECLOSED || rc2 == SY_EQUEUE_FULL)
        return;     /* sent, or resent on the next tick / welcome */
    /* nothing can be delivered to reply_to: retrying every tick would
       hold the job for ever, so it goes to the dead letters */
    sylog_error("inference: job %s: no reply can reach %s (%s): "
                "dead-lettered", j->job_hex, j->reply_to, syerr_name(rc2));
    rc2 = actor_nack(j->inf->actor, j->id, "reply cannot be delivered",
                     false, 0);
    if (rc2)
        sylog_info("inference: job %s: nack not sent: %s", j->job_hex,
                   syerr_name(rc2));
    job_destroy(&j);
}

/* Ends the job with a chat.reply (error NULL: the answer); the ack
   follows the receipt. */
static void inf_finish(job_t *j, const char *error, const char *text,
                       size_t len)
{
    inf_flush_stop(j);
    if (j->req)
        httpc_cancel(j->inf->http, &j->req);
    if (inf_build_reply(j, error, text, len)) {
        sylog_error("inference: job %s: out of memory for the reply: "
                    "handed back", j->job_hex);
        actor_nack(j->inf->actor, j->id, "out of memory", true, 0);
        job_destroy(&j);
        return;
    }
    j->state = JOB_REPLYING;
    inf_send_reply(j);
}

/* Ends the attempt: voids the pieces shown, tells the user, and hands
   the job back (the broker's backoff and attempt limit apply). */
static void inf_retry(job_t *j, const char *why, uint64_t delay_ms,
                      const char *user_text)
{
    inf_flush_stop(j);
    if (j->req)
        httpc_cancel(j->inf->http, &j->req);
    sylog_warn("inference: job %s attempt %u failed: %s; handed back%s",
               j->job_hex, j->attempt, why, delay_ms ? " with a delay" : "");
    inf_send_token(j, "", 0, true);
    inf_send_notice(j, "retry", user_text);
    char reason[300];
    snprintf(reason, sizeof reason, "%s", why);
    int rc = actor_nack(j->inf->actor, j->id, reason, true, delay_ms);
    if (rc)
        sylog_info("inference: job %s: nack not sent: %s", j->job_hex,
                   syerr_name(rc));
    job_destroy(&j);
}

/* ---------------------------------------------------------------- http */

static void inf_on_status(httpc_req_t *req, long status, void *arg)
{
    (void) req;
    job_t *j = arg;
    j->status = status;
}

/* One line of the answer (or of an error body). */
static int inf_on_line(httpc_req_t *req, const char *line, size_t len,
                       void *arg)
{
    (void) req;
    job_t *j = arg;
    if (j->status != 200) {     /* keep the start of an error body */
        size_t room = sizeof j->errbody - 1 - j->errbody_len;
        size_t n = len < room ? len : room;
        memcpy(j->errbody + j->errbody_len, line, n);
        j->errbody_len += n;
        j->errbody[j->errbody_len] = 0;
        return 0;
    }
    if (j->done)
        return 1;   /* whatever follows the end is not the answer */
    /* a stream of lines that add nothing (blank, comments, empty
       pieces) would keep the idle timeout quiet for ever */
    j->received += len + 1;
    if (j->received > INF_STREAM_FACTOR * j->inf->cfg.answer_max) {
        snprintf(j->fail, sizeof j->fail, "the backend sent %zu bytes "
                 "without ending the answer", j->received);
        return 1;
    }
    llm_event_t ev;
    if (llm_parse_line(j->inf->cfg.backend, line, len, &ev)) {
        snprintf(j->fail, sizeof j->fail, "out of memory reading the answer");
        return 1;
    }
    int stop = 0;
    if (ev.kind == LLM_EV_ERROR) {
        snprintf(j->fail, sizeof j->fail, "%s", ev.err);
        stop = 1;
    } else if (ev.kind == LLM_EV_TOKEN || ev.kind == LLM_EV_DONE) {
        if (ev.model[0])
            snprintf(j->answered_by, sizeof j->answered_by, "%s", ev.model);
        llm_stats_merge(&j->stats, &ev.stats);
        if (ev.text_len && !inf_append(j, ev.text, ev.text_len))
            stop = 1;   /* full: the answer ends here */
        if (ev.kind == LLM_EV_DONE) {
            j->done = true;
            stop = 1;   /* the answer is whole: a stream that goes on
                           after done must not hold the job */
        }
        inf_flush_soon(j);
    }
    llm_event_clear(&ev);
    return stop;
}

/* The end of a chat request: the answer, or what to do with the job. */
static void inf_on_done(httpc_req_t *req, const httpc_result_t *res,
                        void *arg)
{
    (void) req;
    job_t *j = arg;
    j->req = NULL;      /* ended: httpc frees it */
    const inf_cfg_t *cfg = &j->inf->cfg;
    if (j->done || j->cut) {
        if (j->cut)
            sylog_warn("inference: job %s: answer cut at %zu bytes",
                       j->job_hex, j->len);
        inf_flush(j);
        sylog_info("inference: job %s answered (%zu bytes, attempt %u)",
                   j->job_hex, j->len, j->attempt);
        inf_finish(j, NULL, j->text ? j->text : "", j->len);
        return;
    }
    char why[LLM_ERR_MAX + 128], backend[256];
    llm_error_text(j->errbody, j->errbody_len, backend, sizeof backend);
    if (res->rc == 0 && j->status == 404) {
        char text[768];
        snprintf(text, sizeof text, "The model \"%s\" is not installed on "
                 "the backend (%s): ask for another model or install it "
                 "(ollama pull %s).", j->model, backend, j->model);
        sylog_warn("inference: job %s: model %s not found", j->job_hex,
                   j->model);
        inf_finish(j, "MODEL_NOT_FOUND", text, strlen(text));
        return;
    }
    if (res->rc == 0 && (j->status == 503 || j->status == 429)) {
        snprintf(why, sizeof why, "backend busy (HTTP %ld: %s)", j->status,
                 backend);
        inf_retry(j, why, cfg->busy_retry,
                  "The model is busy; your question will be tried again "
                  "shortly.");
        return;
    }
    if (res->rc == 0 && j->status >= 400 && j->status < 500
        && j->status != 408) {
        char text[INF_ERRBODY_MAX + 64];
        snprintf(text, sizeof text, "The backend refused the question "
                 "(HTTP %ld): %s", j->status, backend);
        sylog_warn("inference: job %s: %s", j->job_hex, text);
        inf_finish(j, "BACKEND", text, strlen(text));
        return;
    }
    if (j->fail[0])
        snprintf(why, sizeof why, "%s", j->fail);
    else if (res->rc)
        snprintf(why, sizeof why, "%s", res->err);
    else if (j->status != 200)
        snprintf(why, sizeof why, "HTTP %ld: %s", j->status, backend);
    else
        snprintf(why, sizeof why, "the answer ended before done");
    inf_retry(j, why, 0, "The model's answer broke off; your question "
              "will be tried again.");
}

/* Starts the chat request for j with the JSON body. */
static int inf_start(job_t *j, const char *body, size_t len)
{
    inf_t *inf = j->inf;
    char url[2048];
    int n = snprintf(url, sizeof url, "%s%s", inf->cfg.url,
                     llm_chat_path(inf->cfg.backend));
    if (n < 0 || (size_t) n >= sizeof url)
        return SY_EINVAL;
    httpc_opts_t o = {
        .method = "POST",
        .url = url,
        .headers = inf->headers,
        .body = body,
        .body_len = len,
        .connect_timeout_ms = inf->cfg.connect_timeout,
        .first_byte_timeout_ms = inf->cfg.first_token_timeout,
        .idle_timeout_ms = inf->cfg.idle_timeout,
        .lines = true,
    };
    httpc_cb_t cb = { inf_on_status, inf_on_line, inf_on_done, j };
    return httpc_start(inf->http, &o, &cb, &j->req);
}

/* ---------------------------------------------------------------- deliveries */

static job_t *job_new(inf_t *inf, const actor_msg_t *msg)
{
    job_t *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->inf = inf;
    j->flush_timer = -1;
    memcpy(j->id, msg->hdr.id, 16);
    j->attempt = msg->hdr.attempt;
    if ((msg->hdr.present & ENV_HAS_REPLY_TO) && msg->hdr.reply_to[0])
        snprintf(j->reply_to, sizeof j->reply_to, "%s", msg->hdr.reply_to);
    else
        snprintf(j->reply_to, sizeof j->reply_to, "@%s", msg->hdr.from);
    envelope_id_hex(msg->hdr.id, j->job_hex);     /* until the body's job */
    j->handle = zlistx_add_end(inf->jobs, j);
    if (!j->handle) {
        free(j);
        return NULL;
    }
    return j;
}

/* infer.request: starts the job (ACTOR_KEEP), or answers it at once. */
static int inf_on_request(actor_t *actor, const actor_msg_t *msg, void *arg)
{
    inf_t *inf = arg;
    if (!actor_msg_is_durable(msg)) {
        sylog_warn("inference: a non-durable infer.request from %s ignored "
                   "(jobs are durable)", msg->hdr.from);
        return 0;
    }
    if (!inf->offering || inf->stopping) {
        actor_nack(actor, msg->hdr.id, "worker withdrawing", true, 0);
        return 0;
    }
    job_t *j = job_new(inf, msg);
    if (!j)
        return SY_ENOMEM;
    llm_job_t req;
    char err[256];
    int rc = llm_job_read(msg->body, msg->body_len, &req, err, sizeof err);
    memcpy(j->job, req.job, 16);
    envelope_id_hex(j->job, j->job_hex);
    snprintf(j->model, sizeof j->model, "%s",
             req.model[0] ? req.model : inf->cfg.model);
    char *body = NULL;
    size_t body_len = 0;
    if (rc == 0)
        rc = llm_build_request(inf->cfg.backend, j->model, req.messages,
                               req.messages_len, &body, &body_len, err,
                               sizeof err);
    if (rc == SY_ENOMEM) {
        job_destroy(&j);
        return SY_ENOMEM;
    }
    if (rc) {
        char text[320];
        snprintf(text, sizeof text, "The question cannot be sent to the "
                 "model: %s.", err);
        sylog_warn("inference: job %s from %s refused: %s", j->job_hex,
                   msg->hdr.from, err);
        inf_finish(j, "BAD_INPUT", text, strlen(text));
        return ACTOR_KEEP;
    }
    rc = inf_start(j, body, body_len);
    free(body);
    if (rc) {
        sylog_error("inference: job %s: request not started: %s",
                    j->job_hex, syerr_name(rc));
        job_destroy(&j);
        return rc;
    }
    uint32_t every = inf->cfg.lease_every;
    rc = actor_keepalive(actor, msg->hdr.id, every, 3 * every);
    if (rc)
        sylog_warn("inference: job %s: keepalive refused: %s", j->job_hex,
                   syerr_name(rc));
    sylog_info("inference: job %s (attempt %u) for %s started with %s",
               j->job_hex, j->attempt, j->reply_to, j->model);
    return ACTOR_KEEP;
}

static job_t *inf_job_by_reply(inf_t *inf, const uint8_t corr[16])
{
    for (job_t *j = zlistx_first(inf->jobs); j; j = zlistx_next(inf->jobs))
        if (j->state == JOB_REPLYING && j->reply_sent
            && memcmp(j->reply_id, corr, 16) == 0)
            return j;
    return NULL;
}

/* sy.receipt: the one for a job's chat.reply lets the job be acked. */
static int inf_on_receipt(actor_t *actor, const actor_msg_t *msg, void *arg)
{
    (void) actor;
    inf_t *inf = arg;
    actor_receipt_t r;
    if (actor_receipt_parse(msg, &r) || !r.has_corr)
        return 0;
    job_t *j = inf_job_by_reply(inf, r.corr);
    if (!j) {
        if (!r.ok)
            sylog_debug("inference: receipt %s (%s) for a message not "
                        "waited for", r.code_name, r.msg);
        return 0;
    }
    if (r.ok || r.code == SY_EDUPLICATE) {
        inf_ack(j);
        return 0;
    }
    sylog_warn("inference: job %s: reply not stored (%s %s): handed back",
               j->job_hex, r.code_name, r.msg);
    actor_nack(inf->actor, j->id, "reply not stored", true,
               inf->cfg.busy_retry);
    job_destroy(&j);
    return 0;
}

/* Replies not receipted are sent again, acks refused for a lost session
   tried again. */
static void inf_resume(inf_t *inf, bool resend_all)
{
    job_t *j = zlistx_first(inf->jobs);
    while (j) {
        job_t *next = zlistx_next(inf->jobs);
        if (j->state == JOB_REPLYING && (resend_all || !j->reply_sent))
            inf_send_reply(j);
        else if (j->state == JOB_ACKING)
            inf_ack(j);
        j = next;
    }
}

static void inf_on_state(actor_t *actor, bool up, void *arg)
{
    (void) actor;
    inf_t *inf = arg;
    if (up)
        inf_resume(inf, true);
}

/* Hands back every job held (the backend is gone, or we stop). */
static void inf_hand_back(inf_t *inf, const char *why, const char *user_text)
{
    job_t *j;
    while ((j = zlistx_first(inf->jobs))) {
        if (j->state == JOB_RUNNING)
            inf_retry(j, why, 0, user_text);
        else {
            actor_nack(inf->actor, j->id, why, true, 0);
            job_destroy(&j);
        }
    }
}

/* ---------------------------------------------------------------- health */

static void inf_offer(inf_t *inf, bool on)
{
    const char *svc[] = { INF_SERVICE };
    int rc = actor_set_services(inf->actor, on ? svc : NULL, on ? 1 : 0);
    if (rc) {
        sylog_error("inference: cannot %s the service: %s",
                    on ? "offer" : "withdraw", syerr_name(rc));
        return;
    }
    inf->offering = on;
}

static void inf_health_result(inf_t *inf, bool ok, const char *why)
{
    bool first = !inf->ever_checked;
    inf->ever_checked = true;
    if (ok) {
        inf->fails = 0;
        if (!inf->offering && !inf->stopping) {
            sylog_info("inference: the backend answers: offering %s",
                       INF_SERVICE);
            inf_offer(inf, true);
        }
        return;
    }
    inf->fails++;
    if (inf->offering && inf->fails >= inf->cfg.health_failures) {
        sylog_warn("inference: the backend failed %u health checks (%s): "
                   "withdrawing %s", inf->fails, why, INF_SERVICE);
        inf_hand_back(inf, "the backend stopped answering",
                      "The laptop's model stopped answering; your question "
                      "waits and will be tried again.");
        inf_offer(inf, false);
    } else if (first || inf->fails == inf->cfg.health_failures)
        sylog_warn("inference: the backend does not answer (%s); not "
                   "offering %s", why, INF_SERVICE);
    else
        sylog_debug("inference: health check failed: %s", why);
}

static void inf_health_done(httpc_req_t *req, const httpc_result_t *res,
                            void *arg)
{
    (void) req;
    inf_t *inf = arg;
    inf->health_req = NULL;
    char why[300];
    bool ok = false;
    if (res->rc)
        snprintf(why, sizeof why, "%s", res->err);
    else if (res->status != 200)
        snprintf(why, sizeof why, "HTTP %ld", res->status);
    else
        ok = llm_health_check(inf->cfg.backend, res->body, res->body_len,
                              why, sizeof why) == 0;
    inf_health_result(inf, ok, why);
}

static void inf_health_start(inf_t *inf)
{
    if (inf->health_req || inf->stopping)
        return;     /* the last one still runs: it ends by its timeout */
    char url[2048];
    int n = snprintf(url, sizeof url, "%s%s", inf->cfg.url,
                     llm_health_path(inf->cfg.backend));
    if (n < 0 || (size_t) n >= sizeof url)
        return;
    httpc_opts_t o = {
        .method = "GET",
        .url = url,
        .headers = inf->headers,
        .connect_timeout_ms = inf->cfg.connect_timeout,
        .total_timeout_ms = inf->cfg.connect_timeout
                            + inf->cfg.health_interval,
        .max_body = 4 * 1024 * 1024,
    };
    httpc_cb_t cb = { NULL, NULL, inf_health_done, inf };
    int rc = httpc_start(inf->http, &o, &cb, &inf->health_req);
    if (rc) {
        inf->health_req = NULL;
        inf_health_result(inf, false, syerr_name(rc));
    }
}

static int inf_tick(zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    inf_t *inf = arg;
    inf_health_start(inf);
    inf_resume(inf, false);
    return 0;
}

static int inf_first_tick(zloop_t *loop, int timer_id, void *arg)
{
    inf_tick(loop, timer_id, arg);
    return 0;
}

/* ---------------------------------------------------------------- setup */

/* Reads the bearer token from path (common/secretfile: an owner-only
   regular file) into *header ("Authorization: Bearer ...", malloc'd).
   Returns 0 or SY_ECONFIG / SY_ENOMEM with a line in err; the token is
   never put in err or the log. */
static int inf_read_key(const char *path, char **header, char *err,
                        size_t errlen)
{
    static const char prefix[] = "Authorization: Bearer ";
    *header = NULL;
    char buf[INF_KEY_MAX + 1];
    size_t len = 0;
    int rc = secretfile_read(path, "inference/api_key_file", buf, sizeof buf,
                             &len, err, errlen);
    if (rc == 0) {
        *header = malloc(sizeof prefix + len);
        if (*header) {
            memcpy(*header, prefix, sizeof prefix - 1);
            memcpy(*header + sizeof prefix - 1, buf, len + 1);
        } else
            rc = syerr_fmt(err, errlen, SY_ENOMEM, "out of memory");
    }
    sodium_memzero(buf, sizeof buf);
    return rc;
}

static void inf_usage(FILE *f)
{
    fprintf(f,
        "usage: sy-inference [--config FILE] [--name NAME] [--endpoint EP]\n"
        "                    [--cert PATH] [--url URL] [--model MODEL]\n"
        "                    [--backend ollama|openai]\n"
        "\n"
        "The LLM worker (service inference): answers infer.request jobs\n"
        "with the backend at inference/url, streaming chat.token pieces and\n"
        "ending each job with a durable chat.reply.  Offers the service only\n"
        "while the backend answers its health check.  See docs/CHAT.md.\n"
        "\n"
        "  --config FILE        configuration (default: $SWITCHYARD_CONFIG,\n"
        "                       else ./etc/switchyard.cfg if present)\n"
        "  --name NAME          actor name (inference/name)\n"
        "  --endpoint EP        broker endpoint (actor/endpoint)\n"
        "  --cert PATH          this actor's certificate (security/cert)\n"
        "  --url URL            backend base URL (inference/url)\n"
        "  --model MODEL        model for jobs naming none (inference/model)\n"
        "  --backend B          ollama or openai (inference/backend)\n"
        "  --help               this text\n"
        "\n"
        "Runs until SIGINT or SIGTERM (jobs held are handed back).  Exit\n"
        "codes: 0 ok, 2 usage error, 4 configuration error.\n");
}

typedef struct {
    const char *config, *name, *endpoint, *cert, *url, *model, *backend;
} inf_args_t;

static int inf_parse_args(int argc, char **argv, inf_args_t *a)
{
    static const cliargs_flag_t flags[] = {
        { "--config",   offsetof(inf_args_t, config) },
        { "--name",     offsetof(inf_args_t, name) },
        { "--endpoint", offsetof(inf_args_t, endpoint) },
        { "--cert",     offsetof(inf_args_t, cert) },
        { "--url",      offsetof(inf_args_t, url) },
        { "--model",    offsetof(inf_args_t, model) },
        { "--backend",  offsetof(inf_args_t, backend) },
    };
    int rc = cliargs_parse("sy-inference", argc, argv, flags,
                           sizeof flags / sizeof flags[0], a);
    if (rc == CLIARGS_HELP) {
        inf_usage(stdout);
        exit(0);
    }
    return rc;
}

/* Fills inf->cfg from the configuration and the arguments.  Returns 0,
   or -1 with a message on stderr. */
static int inf_cfg_load(inf_cfg_t *c, const config_t *cfg,
                        const inf_args_t *a)
{
    c->backend = (llm_backend_t) config_int(cfg, "inference/backend");
    if (a->backend) {
        if (strcmp(a->backend, "ollama") == 0)
            c->backend = LLM_OLLAMA;
        else if (strcmp(a->backend, "openai") == 0)
            c->backend = LLM_OPENAI;
        else {
            fprintf(stderr, "sy-inference: --backend must be ollama or "
                    "openai\n");
            return -1;
        }
    }
    c->url = a->url ? a->url : config_str(cfg, "inference/url");
    if (strncmp(c->url, "http://", 7) != 0
        && strncmp(c->url, "https://", 8) != 0) {
        fprintf(stderr, "sy-inference: the backend URL must start with "
                "http:// or https://\n");
        return -1;
    }
    c->model = a->model ? a->model : config_str(cfg, "inference/model");
    if (!*c->model || strlen(c->model) > LLM_MODEL_MAX) {
        fprintf(stderr, "sy-inference: the model must be a name of 1..%d "
                "bytes\n", LLM_MODEL_MAX);
        return -1;
    }
    c->concurrency = (uint32_t) config_int(cfg, "inference/concurrency");
    c->health_interval = (uint32_t) config_int(cfg, "inference/health_interval");
    c->health_failures = (uint32_t) config_int(cfg, "inference/health_failures");
    c->connect_timeout = (uint32_t) config_int(cfg, "inference/connect_timeout");
    c->first_token_timeout =
        (uint32_t) config_int(cfg, "inference/first_token_timeout");
    c->idle_timeout = (uint32_t) config_int(cfg, "inference/idle_timeout");
    c->token_flush = (uint32_t) config_int(cfg, "inference/token_flush");
    c->busy_retry = (uint32_t) config_int(cfg, "inference/busy_retry");
    c->lease_every = (uint32_t) config_int(cfg, "inference/lease_every");
    /* the reply must fit in one broker message with its header */
    int64_t max_msg = config_int(cfg, "broker/max_msg");
    size_t room = max_msg > 16 * 1024 ? (size_t) max_msg - 8 * 1024
                                      : (size_t) max_msg / 2;
    c->answer_max = room < INF_REPLY_MAX ? room : INF_REPLY_MAX;
    return 0;
}

/* Makes the actor and its HTTP client.  Returns 0, or an exit code. */
static int inf_open(inf_t *inf, const config_t *cfg, const inf_args_t *a)
{
    actor_opts_t opts = { 0 };
    char err[512];
    actor_opts_from_config(&opts, cfg);
    if (actor_opts_security(&opts, cfg, a->cert, err, sizeof err)) {
        fprintf(stderr, "sy-inference: %s\n", err);
        return INF_EXIT_CONFIG;
    }
    opts.name = a->name ? a->name
                        : opts.cert ? NULL : config_str(cfg, "inference/name");
    opts.services = NULL;       /* offered once the backend answers */
    opts.nservices = 0;
    opts.credit = inf->cfg.concurrency;
    if (a->endpoint)
        opts.endpoint = a->endpoint;
    inf->jobs = zlistx_new();
    inf->actor = actor_new(&opts);
    if (!inf->actor || !inf->jobs) {
        fprintf(stderr, "sy-inference: cannot start: invalid name, endpoint "
                "or certificate (see the log)\n");
        return INF_EXIT_CONFIG;
    }
    if (httpc_new(actor_loop(inf->actor), &inf->http)) {
        fprintf(stderr, "sy-inference: cannot start the HTTP client\n");
        return INF_EXIT_CONFIG;
    }
    actor_on(inf->actor, "infer.request", inf_on_request, inf);
    actor_on(inf->actor, "sy.receipt", inf_on_receipt, inf);
    actor_on_state(inf->actor, inf_on_state, inf);
    zloop_t *loop = actor_loop(inf->actor);
    inf->health_timer = zloop_timer(loop, inf->cfg.health_interval, 0,
                                    inf_tick, inf);
    if (inf->health_timer < 0 || zloop_timer(loop, 1, 1, inf_first_tick,
                                             inf) < 0) {
        fprintf(stderr, "sy-inference: cannot start its timers\n");
        return INF_EXIT_CONFIG;
    }
    return 0;
}

static void inf_close(inf_t *inf)
{
    if (inf->actor) {
        inf->stopping = true;
        size_t held = zlistx_size(inf->jobs);
        inf_hand_back(inf, "the worker is stopping",
                      "The laptop's worker is stopping; your question waits "
                      "and will be tried again.");
        sylog_info("inference: stopping (%zu jobs handed back)", held);
    }
    if (inf->health_req)
        httpc_cancel(inf->http, &inf->health_req);
    httpc_destroy(&inf->http);
    actor_destroy(&inf->actor);
    zlistx_destroy(&inf->jobs);
    if (inf->auth) {
        sodium_memzero(inf->auth, strlen(inf->auth));
        free(inf->auth);
        inf->auth = NULL;
    }
}

int main(int argc, char **argv)
{
    inf_args_t args = { 0 };
    if (inf_parse_args(argc, argv, &args))
        return INF_EXIT_USAGE;
    config_t *cfg = NULL;
    char err[512];
    if (config_load(config_pick_path(args.config), &cfg, err, sizeof err)) {
        fprintf(stderr, "sy-inference: %s\n", err);
        return INF_EXIT_CONFIG;
    }
    sylog_level_t level = SYLOG_INFO;
    sylog_level_parse(config_str(cfg, "log/level"), &level);
    if (sylog_open("sy-inference", level, config_str(cfg, "log/file"))) {
        fprintf(stderr, "sy-inference: cannot open log file %s\n",
                config_str(cfg, "log/file"));
        config_destroy(&cfg);
        return INF_EXIT_CONFIG;
    }
    inf_t inf = { 0 };
    int code = inf_cfg_load(&inf.cfg, cfg, &args) ? INF_EXIT_USAGE : 0;
    const char *key_file = config_str(cfg, "inference/api_key_file");
    if (code == 0 && *key_file
        && inf_read_key(key_file, &inf.auth, err, sizeof err)) {
        fprintf(stderr, "sy-inference: %s\n", err);
        code = INF_EXIT_CONFIG;
    }
    size_t nh = 0;
    inf.headers[nh++] = "Content-Type: application/json";
    if (inf.auth)
        inf.headers[nh++] = inf.auth;
    inf.headers[nh] = NULL;
    if (code == 0)
        code = inf_open(&inf, cfg, &args);
    if (code == 0) {
        char shown[256];
        sylog_redact(inf.cfg.url, shown, sizeof shown);
        sylog_info("inference %s: backend %s at %s, model %s, concurrency "
                   "%u%s; waiting for the backend before offering %s",
                   actor_name(inf.actor),
                   inf.cfg.backend == LLM_OPENAI ? "openai" : "ollama",
                   shown, inf.cfg.model, inf.cfg.concurrency,
                   inf.auth ? ", bearer token set" : "", INF_SERVICE);
        actor_run(inf.actor);
    }
    inf_close(&inf);
    config_destroy(&cfg);
    zsys_shutdown();
    sylog_close();
    return code;
}
