/*  queues.c -- the operator's views of the durable queues (see queues.h).
 *
 *  Ideas:
 *
 *  - An answer's arrays are packed into a scratch sbuffer first, counting
 *    the entries, then appended behind an array header of that count:
 *    msgpack wants the count before the items, and the store's listing
 *    calls only tell it at the end.
 *
 *  - The store's listing callbacks run inside a read transaction, and
 *    LMDB allows one per thread: anything that needs a second look (the
 *    type of a dead letter, in its header) is collected first and looked
 *    up after the listing returned.
 *
 *  - Every answer is bounded (peek 100, lists 1000 entries), whatever the
 *    queue holds.
 *
 *  - place and cancel are answered for any peer, so the store does the
 *    work that must not cost a scan (store_place's two-way walk) and the
 *    question of who owns a message is the caller's: queues_cancel shows
 *    the stored header to the broker's callback before it removes
 *    anything, and asks nobody about a message the queue does not hold.
 */
#include "broker/queues.h"
#include "common/seal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schemas/envelope.h"
#include "schemas/syerr.h"

/* ------------------------------------------------------------ packing */

static int queues_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    return msgpack_pack_str(pk, n) | msgpack_pack_str_body(pk, s, n);
}

static int queues_id(msgpack_packer *pk, const uint8_t *id)
{
    return msgpack_pack_bin(pk, STORE_ID_LEN) | msgpack_pack_bin_body(pk, id, STORE_ID_LEN);
}

static uint64_t queues_since(uint64_t now, uint64_t then)
{
    return then && now > then ? now - then : 0;
}

/* Items packed apart, then appended behind their array header. */
typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer  pk;
    size_t          count;
    size_t          max;
    uint64_t        now;
    const char     *service;
    int             rc;
} queues_items_t;

static void queues_items_init(queues_items_t *it, size_t max, uint64_t now)
{
    memset(it, 0, sizeof *it);
    msgpack_sbuffer_init(&it->sb);
    msgpack_packer_init(&it->pk, &it->sb, msgpack_sbuffer_write);
    it->max = max;
    it->now = now;
}

/* Appends the items as an array to pk and frees them. */
static int queues_items_end(queues_items_t *it, msgpack_packer *pk)
{
    int rc = it->rc | msgpack_pack_array(pk, it->count);
    if (it->sb.size)
        rc |= pk->callback(pk->data, it->sb.data, it->sb.size) ? 1 : 0;
    msgpack_sbuffer_destroy(&it->sb);
    return rc;
}

/* ------------------------------------------------------------ queues */

static int queues_service_one(const char *service, const store_counts_t *c, void *arg)
{
    queues_items_t *it = arg;
    msgpack_packer *pk = &it->pk;
    int rc = msgpack_pack_map(pk, 6);
    rc |= queues_str(pk, "service") | queues_str(pk, service);
    rc |= queues_str(pk, "ready") | msgpack_pack_array(pk, STORE_PRIOS);
    for (int p = 0; p < STORE_PRIOS; p++)
        rc |= msgpack_pack_uint64(pk, c->ready[p]);
    rc |= queues_str(pk, "delayed") | msgpack_pack_uint64(pk, c->delayed);
    rc |= queues_str(pk, "inflight") | msgpack_pack_uint64(pk, c->inflight);
    rc |= queues_str(pk, "dead") | msgpack_pack_uint64(pk, c->dead);
    rc |= queues_str(pk, "oldest_ms") | msgpack_pack_uint64(pk, queues_since(it->now, c->oldest_ms));
    it->rc |= rc;
    it->count++;
    return 0;
}

int queues_pack_list(store_t *store, msgpack_packer *pk, uint64_t now_ms)
{
    queues_items_t it;
    queues_items_init(&it, 0, now_ms);
    int src = store_services(store, queues_service_one, &it);
    int rc = queues_items_end(&it, pk);
    if (src)
        return src == SY_EINVAL ? SY_EIO : src;
    return rc ? SY_ENOMEM : 0;
}

/* ------------------------------------------------------------ peek */

/* One peeked message: its header and the sizes and times store_peek
   reported (it reads no body). */
static int queues_peek_one(msgpack_packer *pk, const store_msg_t *m, uint64_t now)
{
    envelope_t env;
    if (envelope_decode(&env, m->header, m->header_len, NULL, 0) != 0)
        envelope_init(&env);
    int rc = msgpack_pack_map(pk, 8);
    rc |= queues_str(pk, "id") | queues_id(pk, m->id);
    rc |= queues_str(pk, "prio") | msgpack_pack_uint8(pk, m->prio);
    rc |= queues_str(pk, "attempt") | msgpack_pack_uint32(pk, m->attempt);
    rc |= queues_str(pk, "age_ms") | msgpack_pack_uint64(pk, queues_since(now, m->enqueued_ms));
    /* bodies are stored sealed (durable.h): show the size that was sent */
    size_t size = m->body_len >= SEAL_OVERHEAD ? m->body_len - SEAL_OVERHEAD : m->body_len;
    rc |= queues_str(pk, "size") | msgpack_pack_uint64(pk, size);
    rc |= queues_str(pk, "type") | queues_str(pk, env.type);
    rc |= queues_str(pk, "from") | queues_str(pk, env.present & ENV_HAS_FROM ? env.from : "");
    rc |= queues_str(pk, "key") | queues_str(pk, env.present & ENV_HAS_KEY ? env.key : "");
    return rc;
}

static int queues_peek(store_t *store, const queues_query_t *q, uint64_t now,
                       msgpack_packer *pk)
{
    size_t max = q->has_n ? (q->n > QUEUES_PEEK_MAX ? QUEUES_PEEK_MAX : (size_t) q->n)
                          : QUEUES_PEEK_DEFAULT;
    store_msg_t msgs[QUEUES_PEEK_MAX];
    size_t n = 0;
    int rc = store_peek(store, q->service, max, msgs, &n);
    if (rc)
        return rc;
    int prc = msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        prc |= queues_peek_one(pk, &msgs[i], now);
        store_msg_clear(&msgs[i]);
    }
    return prc ? SY_ENOMEM : 0;
}

/* ------------------------------------------------------------ inflight */

static int queues_inflight_one(const store_info_t *info, void *arg)
{
    queues_items_t *it = arg;
    if (it->count >= it->max)
        return 1;
    msgpack_packer *pk = &it->pk;
    uint64_t left = info->lease_deadline > it->now ? info->lease_deadline - it->now : 0;
    int rc = msgpack_pack_map(pk, 5);
    rc |= queues_str(pk, "id") | queues_id(pk, info->id);
    rc |= queues_str(pk, "service") | queues_str(pk, info->service);
    rc |= queues_str(pk, "holder") | queues_str(pk, info->holder);
    rc |= queues_str(pk, "attempt") | msgpack_pack_uint32(pk, info->attempt);
    rc |= queues_str(pk, "lease_left_ms") | msgpack_pack_uint64(pk, left);
    it->rc |= rc;
    it->count++;
    return 0;
}

static int queues_inflight(store_t *store, const queues_query_t *q, uint64_t now,
                           msgpack_packer *pk)
{
    queues_items_t it;
    queues_items_init(&it, QUEUES_LIST_MAX, now);
    int src = store_inflight_list(store, q->service, queues_inflight_one, &it);
    int rc = queues_items_end(&it, pk);
    return src ? src : rc ? SY_ENOMEM : 0;
}

/* ------------------------------------------------------------ dlq */

/* A dead letter as listed, before its type is looked up. */
typedef struct {
    uint8_t  id[STORE_ID_LEN];
    char     service[STORE_NAME_MAX + 1];
    char     reason[STORE_REASON_MAX + 1];
    uint32_t attempt;
    uint64_t enqueued_ms;
} queues_dead_t;

typedef struct {
    queues_dead_t *v;
    size_t n, max;
} queues_deads_t;

static int queues_dead_one(const store_info_t *info, void *arg)
{
    queues_deads_t *d = arg;
    if (d->n >= d->max)
        return 1;
    queues_dead_t *e = &d->v[d->n++];
    memcpy(e->id, info->id, STORE_ID_LEN);
    snprintf(e->service, sizeof e->service, "%s", info->service);
    snprintf(e->reason, sizeof e->reason, "%s", info->reason);
    e->attempt = info->attempt;
    e->enqueued_ms = info->enqueued_ms;
    return 0;
}

/* Names of the services the store knows, collected (no store call may
   run inside store_services' callback). */
typedef struct {
    char (*names)[STORE_NAME_MAX + 1];
    size_t n, cap;
    bool dead_only;
} queues_names_t;

static int queues_name_one(const char *service, const store_counts_t *c, void *arg)
{
    queues_names_t *nm = arg;
    if (nm->dead_only && c->dead == 0)
        return 0;
    if (nm->n == nm->cap) {
        size_t cap = nm->cap ? 2 * nm->cap : 16;
        void *p = realloc(nm->names, cap * sizeof *nm->names);
        if (!p)
            return 1;
        nm->names = p;
        nm->cap = cap;
    }
    snprintf(nm->names[nm->n++], STORE_NAME_MAX + 1, "%s", service);
    return 0;
}

/* The services to work on: q->service, or every one with dead letters. */
static int queues_dead_services(store_t *store, const queues_query_t *q,
                                queues_names_t *nm)
{
    memset(nm, 0, sizeof *nm);
    nm->dead_only = true;
    if (q->service) {
        store_counts_t c = { 0 };
        c.dead = 1;
        return queues_name_one(q->service, &c, nm) ? SY_ENOMEM : 0;
    }
    return store_services(store, queues_name_one, nm);
}

static int queues_dlq_pack(msgpack_packer *pk, store_t *store, const queues_dead_t *e,
                           uint64_t now)
{
    store_msg_t m;
    envelope_t env;
    envelope_init(&env);
    if (store_get(store, e->id, &m) == 0) {
        if (envelope_decode(&env, m.header, m.header_len, NULL, 0) != 0)
            envelope_init(&env);
        store_msg_clear(&m);
    }
    int rc = msgpack_pack_map(pk, 6);
    rc |= queues_str(pk, "id") | queues_id(pk, e->id);
    rc |= queues_str(pk, "service") | queues_str(pk, e->service);
    rc |= queues_str(pk, "reason") | queues_str(pk, e->reason);
    rc |= queues_str(pk, "attempt") | msgpack_pack_uint32(pk, e->attempt);
    rc |= queues_str(pk, "age_ms") | msgpack_pack_uint64(pk, queues_since(now, e->enqueued_ms));
    rc |= queues_str(pk, "type") | queues_str(pk, env.type);
    return rc;
}

static int queues_dlq(store_t *store, const queues_query_t *q, uint64_t now,
                      msgpack_packer *pk)
{
    size_t max = q->has_n && q->n ? (q->n > QUEUES_LIST_MAX ? QUEUES_LIST_MAX : (size_t) q->n)
                                  : QUEUES_LIST_MAX;
    queues_names_t nm;
    int rc = queues_dead_services(store, q, &nm);
    queues_deads_t d = { calloc(max, sizeof(queues_dead_t)), 0, max };
    if (!d.v && rc == 0)
        rc = SY_ENOMEM;
    for (size_t i = 0; rc == 0 && i < nm.n && d.n < max; i++)
        rc = store_dlq_list(store, nm.names[i], max - d.n, queues_dead_one, &d);
    int prc = 0;
    if (rc == 0) {
        prc = msgpack_pack_array(pk, d.n);
        for (size_t i = 0; i < d.n; i++)
            prc |= queues_dlq_pack(pk, store, &d.v[i], now);
    }
    free(d.v);
    free(nm.names);
    return rc ? rc : prc ? SY_ENOMEM : 0;
}

static int queues_count_map(msgpack_packer *pk, const char *key, size_t n)
{
    int rc = msgpack_pack_map(pk, 1) | queues_str(pk, key) | msgpack_pack_uint64(pk, n);
    return rc ? SY_ENOMEM : 0;
}

static int queues_dlq_retry(store_t *store, const queues_query_t *q, uint64_t now,
                            msgpack_packer *pk, bool *changed, char *err, size_t errlen)
{
    size_t n = 0;
    int rc;
    if (q->has_id) {
        rc = store_dlq_retry(store, q->id, now);
        if (rc == 0)
            n = 1;
        else if (rc == SY_ENOTFOUND)
            rc = 0;
    }
    else if (q->service && q->all)
        rc = store_dlq_retry_all(store, q->service, now, &n);
    else {
        snprintf(err, errlen, "dlq.retry needs id, or service and all:true");
        return SY_EMISSING;
    }
    if (rc)
        return rc;
    if (n && changed)
        *changed = true;
    return queues_count_map(pk, "retried", n);
}

static int queues_dlq_purge(store_t *store, const queues_query_t *q, msgpack_packer *pk)
{
    size_t n = 0;
    int rc = 0;
    if (q->has_id) {
        rc = store_dlq_purge_id(store, q->id);
        if (rc == 0)
            n = 1;
        else if (rc == SY_ENOTFOUND)
            rc = 0;
        return rc ? rc : queues_count_map(pk, "purged", n);
    }
    queues_names_t nm;
    rc = queues_dead_services(store, q, &nm);
    for (size_t i = 0; rc == 0 && i < nm.n; i++) {
        size_t one = 0;
        rc = store_purge(store, nm.names[i], false, &one);
        n += one;
    }
    free(nm.names);
    return rc ? rc : queues_count_map(pk, "purged", n);
}

/* ------------------------------------------------------------ place */

static const char *queues_state_name(store_state_t st)
{
    switch (st) {
    case STORE_READY:    return "ready";
    case STORE_DELAYED:  return "delayed";
    case STORE_INFLIGHT: return "inflight";
    case STORE_DEAD:     return "dead";
    default:             return "gone";
    }
}

/* Starts an answer body {what, data: <caller packs it>}. */
static int queues_answer_start(msgpack_packer *pk, const char *what)
{
    return msgpack_pack_map(pk, 2) | queues_str(pk, "what") | queues_str(pk, what)
         | queues_str(pk, "data");
}

int queues_place(store_t *store, const char *service, const uint8_t *id,
                 uint64_t workers, msgpack_sbuffer *out, char *err,
                 size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    if (!service) {
        snprintf(err, errlen, "service: required for place");
        return SY_EMISSING;
    }
    store_place_t pl;
    memset(&pl, 0, sizeof pl);
    int rc = store ? store_place(store, service, id, QUEUES_PLACE_MAX, &pl) : 0;
    if (rc) {
        snprintf(err, errlen, "the store failed: %s", syerr_name(rc));
        return rc == SY_ENOMEM ? rc : SY_EIO;
    }
    bool placed = id && pl.state == STORE_READY;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    size_t mark = out->size;
    rc = queues_answer_start(&pk, "place");
    rc |= msgpack_pack_map(&pk, 3 + (id != NULL) + placed);
    rc |= queues_str(&pk, "service") | queues_str(&pk, service);
    rc |= queues_str(&pk, "workers") | msgpack_pack_uint64(&pk, workers);
    rc |= queues_str(&pk, "ready") | msgpack_pack_uint64(&pk, pl.ready);
    if (id)
        rc |= queues_str(&pk, "state") | queues_str(&pk, queues_state_name(pl.state));
    if (placed)
        rc |= queues_str(&pk, "place") | msgpack_pack_uint64(&pk, pl.place);
    if (rc) {
        out->size = mark;
        snprintf(err, errlen, "out of memory");
        return SY_ENOMEM;
    }
    return 0;
}

/* ------------------------------------------------------------ cancel */

/* The header of the message id as stored, decoded into env (an empty
   header if it does not decode: then nobody owns it by name). */
static int queues_stored_header(store_t *store, const uint8_t *id, envelope_t *env)
{
    store_msg_t m;
    int rc = store_get(store, id, &m);
    if (rc)
        return rc;
    if (envelope_decode(env, m.header, m.header_len, NULL, 0) != 0)
        envelope_init(env);
    store_msg_clear(&m);
    return 0;
}

/* Whether the store holds id under service (its state into *state). */
static int queues_held_by(store_t *store, const char *service, const uint8_t *id,
                          store_state_t *state)
{
    store_info_t info;
    int rc = store_get_info(store, id, &info);
    if (rc == 0 && strcmp(info.service, service) != 0)
        rc = SY_ENOTFOUND;
    if (rc == 0)
        *state = info.state;
    return rc;
}

static int queues_cancel_answer(msgpack_sbuffer *out, bool cancelled, store_state_t was)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    size_t mark = out->size;
    int rc = queues_answer_start(&pk, "cancel") | msgpack_pack_map(&pk, 2);
    rc |= queues_str(&pk, "cancelled")
        | (cancelled ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
    rc |= queues_str(&pk, "state") | queues_str(&pk, queues_state_name(was));
    if (rc)
        out->size = mark;
    return rc ? SY_ENOMEM : 0;
}

int queues_cancel(store_t *store, const char *service, const uint8_t *id,
                  queues_may_cancel_fn *may, void *arg, msgpack_sbuffer *out,
                  char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    if (!service || !id) {
        snprintf(err, errlen, "%s: required for cancel", service ? "id" : "service");
        return SY_EMISSING;
    }
    if (!store || !may)
        return SY_EINVAL;
    store_state_t was = 0;
    int rc = queues_held_by(store, service, id, &was);
    if (rc == SY_ENOTFOUND)
        return queues_cancel_answer(out, false, 0);
    envelope_t env;
    if (rc == 0)
        rc = queues_stored_header(store, id, &env);
    if (rc == 0 && (rc = may(&env, arg, err, errlen)) != 0)
        return SY_EDENIED;
    if (rc == 0)
        rc = store_cancel(store, service, id, &was);
    if (rc == SY_ENOTFOUND)                 /* gone in between: not ours */
        return queues_cancel_answer(out, false, 0);
    if (rc) {
        snprintf(err, errlen, "the store failed: %s", syerr_name(rc));
        return rc == SY_ENOMEM ? rc : SY_EIO;
    }
    bool cancelled = was == STORE_READY || was == STORE_DELAYED;
    return queues_cancel_answer(out, cancelled, was);
}

/* ------------------------------------------------------------ answer */

static const char *const queues_whats[] = {
    "queues", "peek", "inflight", "dlq", "dlq.retry", "dlq.purge",
};

bool queues_knows(const char *what)
{
    for (size_t i = 0; i < sizeof queues_whats / sizeof queues_whats[0]; i++)
        if (!strcmp(what, queues_whats[i]))
            return true;
    return false;
}

int queues_answer(store_t *store, const char *what, const queues_query_t *q,
                  uint64_t now_ms, msgpack_sbuffer *out, bool *changed,
                  char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    if (!queues_knows(what)) {
        snprintf(err, errlen, "what: unknown query \"%s\"", what);
        return SY_EFIELD_RANGE;
    }
    if (!q->service && !strcmp(what, "peek")) {
        snprintf(err, errlen, "service: required for %s", what);
        return SY_EMISSING;
    }
    size_t mark = out->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    int rc = msgpack_pack_map(&pk, 2) | queues_str(&pk, "what") | queues_str(&pk, what)
           | queues_str(&pk, "data");
    if (rc)
        return SY_ENOMEM;
    if (!strcmp(what, "queues"))
        rc = queues_pack_list(store, &pk, now_ms);
    else if (!strcmp(what, "peek"))
        rc = queues_peek(store, q, now_ms, &pk);
    else if (!strcmp(what, "inflight"))
        rc = queues_inflight(store, q, now_ms, &pk);
    else if (!strcmp(what, "dlq"))
        rc = queues_dlq(store, q, now_ms, &pk);
    else if (!strcmp(what, "dlq.retry"))
        rc = queues_dlq_retry(store, q, now_ms, &pk, changed, err, errlen);
    else
        rc = queues_dlq_purge(store, q, &pk);
    if (rc) {
        out->size = mark;           /* no half answer */
        if (rc != SY_EMISSING && err[0] == '\0')
            snprintf(err, errlen, "the store failed: %s", syerr_name(rc));
    }
    return rc;
}
