/*  router.c -- sy-router, the chat path's classifier (docs/CHAT.md).
 *
 *  Takes each chat.request from the front door (durable, service
 *  "router"), classifies it with the configured rules (actors/rules.h)
 *  and sends it on:
 *    HEAVY: infer.request {job, messages, model?} durably to "inference"
 *      (priority high when a person waits, key job:<hex>, reply_to
 *      frontdoor); then asks the broker for the job's place and tells the
 *      front door chat.routed {job, class, why, service, queued_id,
 *      online, place}.
 *    LIGHT / SCHEDULED: asks the broker whether "light" / "cron" has a
 *      live actor; if so forwards the request there (durable, reply_to
 *      frontdoor) and sends chat.routed; if not answers chat.reply
 *      {error NOT_AVAILABLE} to the front door.
 *  The request is acked only when everything it caused is stored in the
 *  broker (each durable send's receipt came back): a crash anywhere
 *  before that redelivers the request, and the idempotency keys
 *  (job:<hex>, routed:<hex>, reply:<hex>) make the second run send
 *  nothing twice -- a DUPLICATE receipt counts as accepted and carries
 *  the first message's id, which is the queued id the front door needs.
 *
 *  Ideas:
 *  - Nothing blocks the loop.  Each request is a small state machine (a
 *    router_job_t): every step sends one message and records the id
 *    whose receipt or answer moves it on (sy.receipt and sy.answer
 *    handlers look the job up by corr).  The handler keeps the delivery
 *    (ACTOR_KEEP) and the last step acks it; a failed step nacks it with
 *    requeue after a short delay.
 *  - One periodic tick enforces the deadlines: a receipt that never
 *    comes fails the step (nack, requeue); a query nobody answers is
 *    "availability unknown" (heavy: online true, no place).
 *  - The broker's place query (sy.query {what: place}) may be missing (an
 *    older broker answers with an error receipt): the router then asks
 *    sy.query {what: status} and counts the service's live actors, and
 *    only without that either treats availability as unknown.  A light or
 *    scheduled request whose service's availability is unknown is
 *    answered NOT_AVAILABLE rather than left waiting in a queue nobody
 *    may ever serve.
 *  - After a reconnect the deliveries still held belong to the dead
 *    session: their jobs are dropped (nack, which the runtime turns into
 *    nothing) and the broker delivers the requests again.
 *
 *  Settings: router/name, router/credit, router/heavy, router/light,
 *  router/scheduled, router/heavy_attachments, router/default,
 *  router/system_prompt, router/model and actor/...; --name, --endpoint,
 *  --cert and --credit override.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "actors/actor.h"
#include "actors/rules.h"
#include "common/cliargs.h"
#include "common/config.h"
#include "common/sylog.h"
#include "schemas/mpread.h"
#include "schemas/syerr.h"

#define ROUTER_EXIT_USAGE  2
#define ROUTER_EXIT_CONFIG 4

#define ROUTER_TICK_MS        100
#define ROUTER_RECEIPT_MS     10000   /* a durable send's receipt */
#define ROUTER_QUERY_MS       2000    /* a place / status answer */
#define ROUTER_RETRY_MS       1000    /* nack delay of a failed step */
#define ROUTER_ANSWERS        "frontdoor"

typedef enum {
    ROUTER_QUEUE,       /* infer.request sent: its receipt */
    ROUTER_PLACE,       /* sy.query place: its answer */
    ROUTER_STATUS,      /* sy.query status (place unknown): its answer */
    ROUTER_FORWARD,     /* chat.request forwarded: its receipt */
    ROUTER_ROUTED,      /* chat.routed sent: its receipt */
    ROUTER_REPLY,       /* chat.reply NOT_AVAILABLE sent: its receipt */
} router_stage_t;

static const char *const router_stage_names[] = {
    "infer.request", "place query", "status query", "forward",
    "chat.routed", "chat.reply"
};

typedef struct {
    actor_t        *actor;
    rules_t        *rules;
    const char     *system_prompt;  /* "" : none */
    const char     *model;          /* "" : none */
    zlistx_t       *jobs;           /* router_job_t */
} router_t;

/* Byte span of one value inside a body (p NULL: absent). */
typedef struct {
    const uint8_t *p;
    size_t         n;
} router_span_t;

/* One chat.request being routed. */
typedef struct {
    router_t       *router;
    void           *handle;         /* in router->jobs */
    uint8_t         delivery[16];   /* the chat.request's id */
    bool            durable;        /* ack / nack it at the end */
    bool            credit;         /* else: release a credit at the end */
    uint8_t         job[16];
    char            job_hex[33];
    bool            waiting;
    rules_result_t  rule;
    const char     *service;        /* inference, light or cron */
    uint8_t        *body;           /* the request's body (forwarding) */
    size_t          body_len;
    router_span_t   text, history;  /* into body */
    router_stage_t  stage;
    uint8_t         wait_id[16];    /* corr that moves the job on */
    int64_t         deadline;       /* zclock_mono() ms */
    bool            has_queued;
    uint8_t         queued_id[16];
    bool            known;          /* availability known */
    uint64_t        workers;
    bool            has_place;
    uint64_t        place;
} router_job_t;

static void router_job_free(router_job_t **job_p)
{
    if (!job_p || !*job_p)
        return;
    free((*job_p)->body);
    free(*job_p);
    *job_p = NULL;
}

/* Takes the job out of the list and frees it. */
static void router_job_drop(router_job_t *job)
{
    zlistx_delete(job->router->jobs, job->handle);
    router_job_free(&job);
}

/* ------------------------------------------------------------ packing */

static void router_pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void router_pack_id(msgpack_packer *pk, const uint8_t id[16])
{
    msgpack_pack_bin(pk, 16);
    msgpack_pack_bin_body(pk, id, 16);
}

/* ------------------------------------------------------------ reading */

/* Reads the (validated) chat.request body's fields into job. */
static int router_request_read(router_job_t *job, router_span_t *att)
{
    mpread_t r;
    mpval_t map, k, v;
    bool has_job = false;
    att->p = NULL;
    att->n = 0;
    mpread_init(&r, job->body, job->body_len);
    int rc = mpread_next(&r, &map);
    if (rc == 0 && map.kind != MP_MAP)
        rc = SY_ENOT_MAP;
    for (uint32_t i = 0; rc == 0 && i < map.len; i++) {
        rc = mpread_next(&r, &k);
        const uint8_t *start = r.p;
        if (rc == 0)
            rc = mpread_next(&r, &v);
        if (rc == 0)
            rc = mpread_skip(&r, &v, 1);
        if (rc)
            break;
        router_span_t span = { start, (size_t) (r.p - start) };
        if (mpval_str_eq(&k, "job") && v.kind == MP_BIN && v.len == 16) {
            memcpy(job->job, v.ptr, 16);
            has_job = true;
        } else if (mpval_str_eq(&k, "text") && v.kind == MP_STR) {
            job->text.p = v.ptr;
            job->text.n = v.len;
        } else if (mpval_str_eq(&k, "history") && v.kind == MP_ARRAY)
            job->history = span;
        else if (mpval_str_eq(&k, "attachments") && v.kind == MP_ARRAY)
            *att = span;
        else if (mpval_str_eq(&k, "waiting") && v.kind == MP_BOOL)
            job->waiting = v.b;
    }
    if (rc == 0 && (!has_job || !job->text.p))
        rc = SY_EMISSING;
    return rc;
}

/* One history turn: role and text (kind MP_NIL when unusable). */
static int router_turn_read(mpread_t *r, mpval_t *role, mpval_t *text)
{
    mpval_t item, k, v;
    memset(role, 0, sizeof *role);
    memset(text, 0, sizeof *text);
    role->kind = MP_NIL;
    text->kind = MP_NIL;
    int rc = mpread_next(r, &item);
    if (rc || item.kind != MP_MAP)
        return rc ? rc : mpread_skip(r, &item, 1);
    for (uint32_t i = 0; i < item.len; i++) {
        if ((rc = mpread_next(r, &k)) != 0 || (rc = mpread_next(r, &v)) != 0
            || (rc = mpread_skip(r, &v, 2)) != 0)
            return rc;
        if (mpval_str_eq(&k, "role") && v.kind == MP_STR)
            *role = v;
        else if (mpval_str_eq(&k, "text") && v.kind == MP_STR)
            *text = v;
    }
    /* only the people of a conversation: a "system" turn is not taken
       from history */
    if (!(mpval_str_eq(role, "user") || mpval_str_eq(role, "assistant"))
        || text->kind != MP_STR)
        role->kind = MP_NIL;
    return 0;
}

/* Packs the usable history turns as {role, content} (pk NULL: counts
   them).  Returns the count. */
static uint32_t router_history_pack(const router_span_t *h, msgpack_packer *pk)
{
    if (!h->p)
        return 0;
    mpread_t r;
    mpval_t arr, role = { 0 }, text = { 0 };
    uint32_t n = 0;
    mpread_init(&r, h->p, h->n);
    if (mpread_next(&r, &arr) || arr.kind != MP_ARRAY)
        return 0;
    for (uint32_t i = 0; i < arr.len; i++) {
        if (router_turn_read(&r, &role, &text))
            break;
        if (role.kind == MP_NIL)
            continue;
        n++;
        if (!pk)
            continue;
        msgpack_pack_map(pk, 2);
        router_pack_str(pk, "role");
        msgpack_pack_str(pk, role.len);
        msgpack_pack_str_body(pk, role.ptr, role.len);
        router_pack_str(pk, "content");
        msgpack_pack_str(pk, text.len);
        msgpack_pack_str_body(pk, text.ptr, text.len);
    }
    return n;
}

/* infer.request {job, messages, model?} into sb. */
static void router_infer_body(const router_job_t *job, msgpack_sbuffer *sb)
{
    const router_t *rt = job->router;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    bool sys = rt->system_prompt[0] != 0, model = rt->model[0] != 0;
    msgpack_pack_map(&pk, 2 + model);
    router_pack_str(&pk, "job");
    router_pack_id(&pk, job->job);
    router_pack_str(&pk, "messages");
    msgpack_pack_array(&pk, sys + router_history_pack(&job->history, NULL) + 1);
    if (sys) {
        msgpack_pack_map(&pk, 2);
        router_pack_str(&pk, "role");
        router_pack_str(&pk, "system");
        router_pack_str(&pk, "content");
        router_pack_str(&pk, rt->system_prompt);
    }
    router_history_pack(&job->history, &pk);
    msgpack_pack_map(&pk, 2);
    router_pack_str(&pk, "role");
    router_pack_str(&pk, "user");
    router_pack_str(&pk, "content");
    msgpack_pack_str(&pk, job->text.n);
    msgpack_pack_str_body(&pk, job->text.p, job->text.n);
    if (model) {
        router_pack_str(&pk, "model");
        router_pack_str(&pk, rt->model);
    }
}

/* ------------------------------------------------------------ ending */

/* The job is done: ack the request. */
static void router_finish(router_job_t *job)
{
    router_t *rt = job->router;
    if (job->durable) {
        int rc = actor_ack(rt->actor, job->delivery);
        if (rc)
            sylog_warn("router: job %s: ack not sent (%s): the request "
                       "comes again and is routed again without "
                       "duplicates", job->job_hex, syerr_name(rc));
    } else if (job->credit)
        actor_release(rt->actor, 1);
    router_job_drop(job);
}

/* A step failed: hand the request back for a later try. */
static void router_fail(router_job_t *job, int code, const char *what)
{
    router_t *rt = job->router;
    char reason[200];
    snprintf(reason, sizeof reason, "sy-router: %s: %s", what,
             syerr_name(code));
    sylog_warn("router: job %s: %s failed (%s); the request is tried again",
               job->job_hex, what, syerr_name(code));
    if (job->durable) {
        int rc = actor_nack(rt->actor, job->delivery, reason, true,
                            ROUTER_RETRY_MS);
        if (rc)
            sylog_debug("router: job %s: nack not sent: %s", job->job_hex,
                        syerr_name(rc));
    } else if (job->credit)
        actor_release(rt->actor, 1);
    router_job_drop(job);
}

/* ------------------------------------------------------------ steps */

/* Sends one durable message for job; its receipt moves the job on.
   Returns 0 or the send's error (the job is then failed by the caller). */
static int router_send(router_job_t *job, router_stage_t stage,
                       const char *to, const char *type,
                       const msgpack_sbuffer *sb, uint8_t prio,
                       const char *key_prefix, const char *reply_to)
{
    char key[64];
    snprintf(key, sizeof key, "%s:%s", key_prefix, job->job_hex);
    actor_send_opts_t o = { .durable = true, .prio = prio, .key = key,
                            .reply_to = reply_to };
    int rc = actor_send(job->router->actor, to, type,
                        (const uint8_t *) sb->data, sb->size, &o,
                        job->wait_id);
    job->stage = stage;
    job->deadline = zclock_mono() + ROUTER_RECEIPT_MS;
    return rc;
}

static void router_send_or_fail(router_job_t *job, router_stage_t stage,
                                const char *to, const char *type,
                                const msgpack_sbuffer *sb, uint8_t prio,
                                const char *key_prefix, const char *reply_to)
{
    int rc = router_send(job, stage, to, type, sb, prio, key_prefix,
                         reply_to);
    if (rc)
        router_fail(job, rc, router_stage_names[stage]);
}

/* HEAVY, first step: the job into the inference queue. */
static void router_send_infer(router_job_t *job)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    router_infer_body(job, &sb);
    router_send_or_fail(job, ROUTER_QUEUE, "inference", "infer.request", &sb,
                        job->waiting ? ENVELOPE_PRIO_HIGH
                                     : ENVELOPE_PRIO_NORMAL,
                        "job", ROUTER_ANSWERS);
    msgpack_sbuffer_destroy(&sb);
}

static void router_after_query(router_job_t *job);

/* Asks the broker about job->service: place (with the queued id when
   there is one), or status.  A send error is "unknown" at once. */
static void router_ask(router_job_t *job, router_stage_t stage)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    bool place = stage == ROUTER_PLACE;
    bool id = place && job->has_queued;
    msgpack_pack_map(&pk, place ? 2 + id : 1);
    router_pack_str(&pk, "what");
    router_pack_str(&pk, place ? "place" : "status");
    if (place) {
        router_pack_str(&pk, "service");
        router_pack_str(&pk, job->service);
    }
    if (id) {
        router_pack_str(&pk, "id");
        router_pack_id(&pk, job->queued_id);
    }
    job->stage = stage;
    job->deadline = zclock_mono() + ROUTER_QUERY_MS;
    int rc = actor_send_broker(job->router->actor, "sy.query",
                               (const uint8_t *) sb.data, sb.size,
                               job->wait_id);
    msgpack_sbuffer_destroy(&sb);
    if (rc) {
        sylog_warn("router: job %s: %s not sent (%s): availability of %s "
                   "unknown", job->job_hex, router_stage_names[stage],
                   syerr_name(rc), job->service);
        job->known = false;
        router_after_query(job);
    }
}

/* chat.routed {job, class, why, service, queued_id?, online, place?}. */
static void router_send_routed(router_job_t *job)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    bool online = job->known ? job->workers > 0 : true;
    msgpack_pack_map(&pk, 5 + job->has_queued + job->has_place);
    router_pack_str(&pk, "job");
    router_pack_id(&pk, job->job);
    router_pack_str(&pk, "class");
    router_pack_str(&pk, rules_class_name(job->rule.cls));
    router_pack_str(&pk, "why");
    router_pack_str(&pk, job->rule.why);
    router_pack_str(&pk, "service");
    router_pack_str(&pk, job->service);
    if (job->has_queued) {
        router_pack_str(&pk, "queued_id");
        router_pack_id(&pk, job->queued_id);
    }
    router_pack_str(&pk, "online");
    if (online)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
    if (job->has_place) {
        router_pack_str(&pk, "place");
        msgpack_pack_uint64(&pk, job->place);
    }
    sylog_info("router: job %s: %s, %s -> %s (%s%s)", job->job_hex,
               rules_class_name(job->rule.cls), job->rule.why, job->service,
               job->known ? (online ? "online" : "offline") : "availability unknown",
               job->has_place ? ", placed" : "");
    router_send_or_fail(job, ROUTER_ROUTED, ROUTER_ANSWERS, "chat.routed",
                        &sb, ENVELOPE_PRIO_NORMAL, "routed", NULL);
    msgpack_sbuffer_destroy(&sb);
}

/* chat.reply {job, error NOT_AVAILABLE, text}. */
static void router_send_unavailable(router_job_t *job)
{
    const char *text = job->rule.cls == RULES_SCHEDULED
                     ? "Scheduled tasks are not available yet."
                     : "Light tasks are not available yet.";
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    router_pack_str(&pk, "job");
    router_pack_id(&pk, job->job);
    router_pack_str(&pk, "error");
    router_pack_str(&pk, "NOT_AVAILABLE");
    router_pack_str(&pk, "text");
    router_pack_str(&pk, text);
    sylog_info("router: job %s: %s, %s: no live %s actor%s, answered "
               "NOT_AVAILABLE", job->job_hex, rules_class_name(job->rule.cls),
               job->rule.why, job->service,
               job->known ? "" : " known");
    router_send_or_fail(job, ROUTER_REPLY, ROUTER_ANSWERS, "chat.reply", &sb,
                        ENVELOPE_PRIO_NORMAL, "reply", NULL);
    msgpack_sbuffer_destroy(&sb);
}

/* LIGHT / SCHEDULED with a live actor: the request as it came. */
static void router_send_forward(router_job_t *job)
{
    msgpack_sbuffer sb = { .size = job->body_len, .data = (char *) job->body,
                           .alloc = job->body_len };
    router_send_or_fail(job, ROUTER_FORWARD, job->service, "chat.request",
                        &sb, ENVELOPE_PRIO_NORMAL, "job", ROUTER_ANSWERS);
}

/* The broker answered (or could not say) how the service stands. */
static void router_after_query(router_job_t *job)
{
    if (job->rule.cls == RULES_HEAVY)
        router_send_routed(job);
    else if (job->known && job->workers > 0)
        router_send_forward(job);
    else
        router_send_unavailable(job);
}

/* Starts (or starts again) a job from its first step. */
static void router_start(router_job_t *job)
{
    job->has_queued = job->known = job->has_place = false;
    if (job->rule.cls == RULES_HEAVY)
        router_send_infer(job);
    else
        router_ask(job, ROUTER_PLACE);
}

/* ------------------------------------------------------------ answers */

static router_job_t *router_job_by_corr(router_t *rt, const actor_msg_t *m)
{
    if (!(m->hdr.present & ENV_HAS_CORR))
        return NULL;
    for (router_job_t *j = zlistx_first(rt->jobs); j; j = zlistx_next(rt->jobs))
        if (memcmp(j->wait_id, m->hdr.corr, 16) == 0)
            return j;
    return NULL;
}

/* A receipt of a durable send: ok, or DUPLICATE (sent before) with the
   first message's id. */
static void router_on_stored(router_job_t *job, const actor_receipt_t *r)
{
    bool accepted = r->ok || r->code == SY_EDUPLICATE;
    if (!accepted) {
        router_fail(job, r->code ? r->code : SY_EINTERNAL,
                    router_stage_names[job->stage]);
        return;
    }
    if (r->code == SY_EDUPLICATE)
        sylog_info("router: job %s: %s was stored before (DUPLICATE): not "
                   "sent twice", job->job_hex, router_stage_names[job->stage]);
    switch (job->stage) {
    case ROUTER_QUEUE:
    case ROUTER_FORWARD:
        job->has_queued = r->has_id;
        if (r->has_id)
            memcpy(job->queued_id, r->id, 16);
        if (job->stage == ROUTER_QUEUE)
            router_ask(job, ROUTER_PLACE);
        else
            router_send_routed(job);
        return;
    case ROUTER_ROUTED:
    case ROUTER_REPLY:
        router_finish(job);
        return;
    default:
        return;
    }
}

static int router_on_receipt(actor_t *actor, const actor_msg_t *m, void *arg)
{
    (void) actor;
    router_t *rt = arg;
    router_job_t *job = router_job_by_corr(rt, m);
    actor_receipt_t r;
    if (!job || actor_receipt_parse(m, &r) != 0)
        return 0;
    if (job->stage != ROUTER_PLACE && job->stage != ROUTER_STATUS) {
        router_on_stored(job, &r);
        return 0;
    }
    if (r.ok)
        return 0;               /* an answer follows */
    if (job->stage == ROUTER_PLACE) {
        sylog_info("router: job %s: the broker does not answer the place "
                   "query (%s: %s): asking for its status instead",
                   job->job_hex, r.code_name, r.msg);
        router_ask(job, ROUTER_STATUS);
        return 0;
    }
    sylog_warn("router: job %s: the broker does not answer the status "
               "query either (%s): availability of %s unknown",
               job->job_hex, r.code_name, job->service);
    job->known = false;
    router_after_query(job);
    return 0;
}

/* The data map of a sy.answer: its header in *data, pairs at *at. */
static int router_answer_data(const actor_msg_t *m, mpval_t *data,
                              mpread_t *at)
{
    mpread_t r;
    mpval_t map;
    mpread_init(&r, m->body, m->body_len);
    if (mpread_next(&r, &map) || map.kind != MP_MAP)
        return SY_EBAD_BODY;
    int rc = mpread_map_find(&r, &map, "data", data, at);
    if (rc == 0 && data->kind != MP_MAP && data->kind != MP_ARRAY)
        rc = SY_EFIELD_TYPE;
    return rc;
}

/* place data {service, workers, ready, state?, place?}. */
static void router_read_place(router_job_t *job, const mpval_t *data,
                              const mpread_t *at)
{
    mpval_t v;
    if (data->kind != MP_MAP
        || mpread_map_find(at, data, "workers", &v, NULL) != 0
        || !mpval_as_uint(&v, &job->workers))
        return;
    job->known = true;
    if (!job->has_queued)
        return;
    if (mpread_map_find(at, data, "state", &v, NULL) == 0
        && mpval_str_eq(&v, "inflight")) {
        job->has_place = true;
        job->place = 0;
    } else if (mpread_map_find(at, data, "place", &v, NULL) == 0
               && mpval_as_uint(&v, &job->place))
        job->has_place = true;
}

/* status data {services: [{name, actors, waiting}, ...], ...}: the live
   actors of job->service (0 when it is not listed). */
static void router_read_status(router_job_t *job, const mpval_t *data,
                               const mpread_t *at)
{
    mpval_t list, item, v;
    mpread_t r;
    if (data->kind != MP_MAP
        || mpread_map_find(at, data, "services", &list, &r) != 0
        || list.kind != MP_ARRAY)
        return;
    job->known = true;
    job->workers = 0;
    for (uint32_t i = 0; i < list.len; i++) {
        mpread_t here = r;
        if (mpread_next(&r, &item) || mpread_skip(&r, &item, 2))
            return;
        if (item.kind != MP_MAP)
            continue;
        mpread_next(&here, &item);
        if (mpread_map_find(&here, &item, "name", &v, NULL) != 0
            || !mpval_str_eq(&v, job->service))
            continue;
        if (mpread_map_find(&here, &item, "actors", &v, NULL) == 0)
            mpval_as_uint(&v, &job->workers);
        return;
    }
}

static int router_on_answer(actor_t *actor, const actor_msg_t *m, void *arg)
{
    (void) actor;
    router_t *rt = arg;
    router_job_t *job = router_job_by_corr(rt, m);
    if (!job || (job->stage != ROUTER_PLACE && job->stage != ROUTER_STATUS))
        return 0;
    mpval_t data;
    mpread_t at;
    job->known = false;
    if (router_answer_data(m, &data, &at) == 0) {
        if (job->stage == ROUTER_PLACE)
            router_read_place(job, &data, &at);
        else
            router_read_status(job, &data, &at);
    }
    if (!job->known)
        sylog_warn("router: job %s: the %s answer says nothing usable: "
                   "availability of %s unknown", job->job_hex,
                   router_stage_names[job->stage], job->service);
    router_after_query(job);
    return 0;
}

/* ------------------------------------------------------------ requests */

static const char *router_service_of(rules_class_t cls)
{
    return cls == RULES_HEAVY ? "inference"
         : cls == RULES_LIGHT ? "light" : "cron";
}

/* Refuses a request that cannot be routed, ever: dead-lettered. */
static int router_refuse(router_t *rt, const actor_msg_t *msg, int code,
                         const char *why)
{
    sylog_warn("router: chat.request from %s refused: %s (%s)",
               msg->hdr.from, why, syerr_name(code));
    if (actor_msg_is_durable(msg)) {
        char reason[160];
        snprintf(reason, sizeof reason, "sy-router: %s", why);
        actor_nack(rt->actor, msg->hdr.id, reason, false, 0);
    }
    return 0;
}

static int router_on_request(actor_t *actor, const actor_msg_t *msg, void *arg)
{
    router_t *rt = arg;
    (void) actor;
    router_job_t *job = calloc(1, sizeof *job);
    if (job)
        job->body = malloc(msg->body_len ? msg->body_len : 1);
    if (!job || !job->body) {
        router_job_free(&job);
        return SY_ENOMEM;           /* nacked, requeued by the runtime */
    }
    job->router = rt;
    memcpy(job->body, msg->body, msg->body_len);
    job->body_len = msg->body_len;
    router_span_t att;
    int rc = router_request_read(job, &att);
    if (rc == 0)
        rc = rules_classify(rt->rules, (const char *) job->text.p,
                            job->text.n, att.p, att.n, &job->rule);
    if (rc) {
        router_job_free(&job);
        return router_refuse(rt, msg, rc, "unreadable body");
    }
    memcpy(job->delivery, msg->hdr.id, 16);
    job->durable = actor_msg_is_durable(msg);
    job->credit = actor_msg_uses_credit(msg);
    envelope_id_hex(job->job, job->job_hex);
    job->service = router_service_of(job->rule.cls);
    job->handle = zlistx_add_end(rt->jobs, job);
    if (!job->handle) {
        router_job_free(&job);
        return SY_ENOMEM;
    }
    router_start(job);
    return ACTOR_KEEP;
}

/* ------------------------------------------------------------ time */

static int router_tick(zloop_t *loop, int id, void *arg)
{
    (void) loop;
    (void) id;
    router_t *rt = arg;
    int64_t now = zclock_mono();
    router_job_t *job = zlistx_first(rt->jobs);
    while (job) {
        router_job_t *next = zlistx_next(rt->jobs);
        if (now >= job->deadline) {
            if (job->stage == ROUTER_PLACE || job->stage == ROUTER_STATUS) {
                sylog_warn("router: job %s: no answer to the %s in %d ms: "
                           "availability of %s unknown", job->job_hex,
                           router_stage_names[job->stage], ROUTER_QUERY_MS,
                           job->service);
                job->known = false;
                router_after_query(job);
            } else
                router_fail(job, SY_ETIMEOUT, router_stage_names[job->stage]);
        }
        job = next;
    }
    return 0;
}

/* After a reconnect the jobs held belong to the dead session: the broker
   delivers their requests again, and they start over then. */
static void router_on_state(actor_t *actor, bool up, void *arg)
{
    (void) actor;
    router_t *rt = arg;
    if (!up)
        return;
    size_t n = zlistx_size(rt->jobs);
    router_job_t *job;
    while ((job = zlistx_first(rt->jobs)) != NULL) {
        if (job->durable)
            actor_nack(rt->actor, job->delivery, "sy-router: reconnected",
                       true, 0);
        router_job_drop(job);
    }
    if (n)
        sylog_info("router: reconnected: %zu requests in progress are "
                   "routed again when the broker delivers them again", n);
}

/* ------------------------------------------------------------ main */

static void router_usage(FILE *f)
{
    fprintf(f,
        "usage: sy-router [--config FILE] [--name NAME] [--credit N]\n"
        "                 [--endpoint ENDPOINT] [--cert PATH]\n"
        "\n"
        "The chat path's router (docs/CHAT.md): classifies each chat.request\n"
        "by the router/ rules of the configuration and sends it on: heavy\n"
        "jobs to the inference queue, light and scheduled ones to the light\n"
        "and cron services when they are live (else a NOT_AVAILABLE reply).\n"
        "\n"
        "  --config FILE        configuration (default: $SWITCHYARD_CONFIG,\n"
        "                       else ./etc/switchyard.cfg if present)\n"
        "  --name NAME          actor name (router/name, default router)\n"
        "  --credit N           requests in flight, 1..10000 (router/credit)\n"
        "  --endpoint ENDPOINT  broker endpoint (actor/endpoint)\n"
        "  --cert PATH          this actor's certificate, DIR/NAME.secret\n"
        "                       (security/cert; used when security/curve is\n"
        "                       on; the name is then the certificate's)\n"
        "  --help               this text\n"
        "\n"
        "Runs until SIGINT or SIGTERM.  Exit codes: 0 ok, 2 usage error,\n"
        "4 configuration error.\n");
}

typedef struct {
    const char *config, *name, *credit, *endpoint, *cert;
} router_args_t;

static int router_parse_args(int argc, char **argv, router_args_t *a)
{
    static const cliargs_flag_t flags[] = {
        { "--config",   offsetof(router_args_t, config) },
        { "--name",     offsetof(router_args_t, name) },
        { "--credit",   offsetof(router_args_t, credit) },
        { "--endpoint", offsetof(router_args_t, endpoint) },
        { "--cert",     offsetof(router_args_t, cert) },
    };
    int rc = cliargs_parse("sy-router", argc, argv, flags,
                           sizeof flags / sizeof flags[0], a);
    if (rc == CLIARGS_HELP) {
        router_usage(stdout);
        exit(0);
    }
    return rc;
}

/* Loads the configuration, the log and the rules.  Returns 0 or an exit
   code (after a message). */
static int router_setup(const router_args_t *a, config_t **cfg, rules_t **rules)
{
    char err[512];
    if (config_load(config_pick_path(a->config), cfg, err, sizeof err)) {
        fprintf(stderr, "sy-router: %s\n", err);
        return ROUTER_EXIT_CONFIG;
    }
    sylog_level_t level = SYLOG_INFO;
    sylog_level_parse(config_str(*cfg, "log/level"), &level);
    if (sylog_open("sy-router", level, config_str(*cfg, "log/file"))) {
        fprintf(stderr, "sy-router: cannot open log file %s\n",
                config_str(*cfg, "log/file"));
        return ROUTER_EXIT_CONFIG;
    }
    if (rules_new(*cfg, rules, err, sizeof err)) {
        fprintf(stderr, "sy-router: %s: %s\n", config_source(*cfg), err);
        return ROUTER_EXIT_CONFIG;
    }
    return 0;
}

/* The actor's options from the configuration and the arguments. */
static int router_opts(const router_args_t *a, const config_t *cfg,
                       actor_opts_t *opts, const char **service)
{
    char err[512];
    actor_opts_from_config(opts, cfg);
    if (actor_opts_security(opts, cfg, a->cert, err, sizeof err)) {
        fprintf(stderr, "sy-router: %s\n", err);
        return ROUTER_EXIT_CONFIG;
    }
    opts->name = a->name ? a->name
                         : opts->cert ? NULL : config_str(cfg, "router/name");
    opts->services = service;
    opts->nservices = 1;
    opts->credit = (uint32_t) config_int(cfg, "router/credit");
    if (a->credit) {
        char *end;
        long c = strtol(a->credit, &end, 10);
        if (!*a->credit || *end || c < 1 || c > 10000) {
            fprintf(stderr, "sy-router: --credit must be 1..10000\n");
            return ROUTER_EXIT_USAGE;
        }
        opts->credit = (uint32_t) c;
    }
    if (a->endpoint)
        opts->endpoint = a->endpoint;
    return 0;
}

int main(int argc, char **argv)
{
    router_args_t args = { 0 };
    if (router_parse_args(argc, argv, &args))
        return ROUTER_EXIT_USAGE;
    config_t *cfg = NULL;
    router_t rt = { 0 };
    int rc = router_setup(&args, &cfg, &rt.rules);
    static const char *service = "router";
    actor_opts_t opts = { 0 };
    if (rc == 0)
        rc = router_opts(&args, cfg, &opts, &service);
    if (rc) {
        rules_destroy(&rt.rules);
        config_destroy(&cfg);
        return rc;
    }
    rt.system_prompt = config_str(cfg, "router/system_prompt");
    rt.model = config_str(cfg, "router/model");
    rt.jobs = zlistx_new();
    rt.actor = rt.jobs ? actor_new(&opts) : NULL;
    if (!rt.actor) {
        fprintf(stderr, "sy-router: cannot start: invalid name, endpoint or "
                        "certificate (see the log)\n");
        zlistx_destroy(&rt.jobs);
        rules_destroy(&rt.rules);
        config_destroy(&cfg);
        return ROUTER_EXIT_CONFIG;
    }
    actor_on(rt.actor, "chat.request", router_on_request, &rt);
    actor_on(rt.actor, "sy.receipt", router_on_receipt, &rt);
    actor_on(rt.actor, "sy.answer", router_on_answer, &rt);
    actor_on_state(rt.actor, router_on_state, &rt);
    zloop_timer(actor_loop(rt.actor), ROUTER_TICK_MS, 0, router_tick, &rt);
    sylog_info("router %s at %s (credit %u%s)", actor_name(rt.actor),
               opts.endpoint, opts.credit, opts.cert ? ", CURVE" : "");
    actor_run(rt.actor);
    sylog_info("router %s stopping (%zu requests in progress: the broker "
               "delivers them again)", actor_name(rt.actor),
               zlistx_size(rt.jobs));

    actor_destroy(&rt.actor);
    router_job_t *job;
    while ((job = zlistx_first(rt.jobs)) != NULL)
        router_job_drop(job);
    zlistx_destroy(&rt.jobs);
    rules_destroy(&rt.rules);
    config_destroy(&cfg);
    zsys_shutdown();
    sylog_close();
    return 0;
}
