/*  durable.c -- one store batch per loop turn, receipts and deliveries
 *  after its commit, and the per-service settings of the durable queues
 *  (see durable.h).
 *
 *  Ideas:
 *
 *  - The batch of one loop turn is a store_txn_t opened by whatever
 *    durable work comes first (a put, an ack, a take ...).  Beside it, two
 *    fixed arrays remember what the batch owes: receipts (who is owed
 *    which answer) and deliveries (which actor gets which taken message).
 *    Nothing of either leaves this module before the commit returned.
 *    The arrays are allocated once; a turn allocates one block per
 *    delivery (the plaintext body, handed to the socket without a copy)
 *    and nothing else here except what LMDB does.
 *
 *  - Takes read each message straight out of the store's map and open
 *    (decrypt) its body in the same pass into the delivery's block: one
 *    pass over the body at take, none to copy it around.  Most takes do
 *    not even open it: the plaintext of a recent put is kept, bounded,
 *    until its take (fresh.h), and handed over as the delivery's block.
 *
 *  - Calls that need the store outside the batch flush first: the batch
 *    is the one write transaction LMDB allows, and flushing early costs
 *    only an fsync.
 *
 *  - Encryption at rest: every body is sealed (common/seal.h, the message
 *    id as associated data) into one reusable buffer before store_put,
 *    and opened as it is taken, so the store and everything below it
 *    only ever see sealed bodies.  The key's fingerprint is kept in the
 *    store's meta ("seal_fp") and compared at open: a missing or wrong key
 *    file stops the broker with a message, it never yields garbage and a
 *    new key is never made for a store that holds messages.  A record that
 *    does not open at delivery goes to the dead-letter queue with the
 *    reason, instead of to the actor.
 */
#include "broker/durable.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/fresh.h"
#include "common/seal.h"
#include "common/sylog.h"
#include "schemas/syerr.h"
#include "schemas/syid.h"

#define DURABLE_META_FP "seal_fp"
#define DURABLE_REASON_SEAL "cannot be opened: the sealed body fails authentication " \
                            "(wrong key file or damaged record)"

typedef struct {
    uint8_t rid[1 + DURABLE_RID_MAX];
    uint8_t id[ENVELOPE_ID_LEN];
    uint8_t first_id[ENVELOPE_ID_LEN];
    uint8_t msg_id[ENVELOPE_ID_LEN];
    char    service[ENVELOPE_NAME_MAX + 1];
    char    holder[STORE_NAME_MAX + 1];
    durable_receipt_kind_t kind;
    int     rc;
} durable_owed_t;

/* The settings of one service, remembered: the config does not change
   while the broker runs, and a lookup formats a path and searches the
   table, for every put and take otherwise. */
typedef struct {
    char    service[STORE_NAME_MAX + 1];
    int64_t lease_ms, ttl_ms;
} durable_setc_t;

#define DURABLE_SETC 16            /* services remembered, replaced in turn */

/* A message taken in the batch, to be sent after the commit. */
typedef struct {
    char     service[STORE_NAME_MAX + 1];
    char     holder[STORE_NAME_MAX + 1];
    uint8_t  id[STORE_ID_LEN];
    uint32_t attempt;
    uint8_t *block;                /* body, then header; NULL: dropped */
    size_t   body_len, header_len;
    bool     fresh;                /* the block was kept since the put */
} durable_pending_t;

struct durable_t {
    store_t     *store;
    const config_t *cfg;
    store_txn_t *txn;              /* the open batch, or NULL */
    durable_owed_t *owed;          /* receipts of the batch */
    size_t       nowed;
    durable_pending_t *pend;       /* deliveries of the batch */
    size_t       npend;
    bool         handing;          /* in the delivery callbacks */
    durable_receipt_fn *receipt_fn;
    void        *receipt_arg;
    durable_deliver_fn *deliver_fn;
    void        *deliver_arg;
    uint64_t     dedup_window_ms;  /* 0: keys are not checked */
    uint64_t     backoff_ms, backoff_max_ms;
    seal_t      *seal;             /* the key that seals stored bodies */
    uint8_t     *sealbuf;          /* scratch for one sealed body */
    size_t       sealcap;
    durable_setc_t *setc;          /* DURABLE_SETC entries (a pointer:
                                      filled by calls on a const d) */
    size_t       nsetc, nextc;
    fresh_t     *fresh;            /* plaintext of recent puts, until taken */
};

/* ------------------------------------------------------------ settings */

static int64_t durable_setting(const config_t *cfg, const char *service,
                               const char *what)
{
    char path[ENVELOPE_NAME_MAX + 32];
    snprintf(path, sizeof path, "service/%s/%s", service, what);
    return config_int(cfg, path);
}

static uint32_t durable_attempts(const char *service, void *arg)
{
    int64_t n = durable_setting(arg, service, "max_attempts");
    return n > 0 ? (uint32_t) n : 0;
}

/* Copies a name known to fit (checked by the envelope or the store). */
static void durable_copy_name(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

/* The remembered settings of service, looked up on first use. */
static const durable_setc_t *durable_settings(const durable_t *d,
                                              const char *service)
{
    durable_t *w = (durable_t *) d;    /* the cache only */
    size_t n = strlen(service);
    for (size_t i = 0; i < w->nsetc; i++)
        if (memcmp(w->setc[i].service, service, n + 1) == 0)
            return &w->setc[i];
    durable_setc_t *e = &w->setc[w->nextc];
    w->nextc = (w->nextc + 1) % DURABLE_SETC;
    if (w->nsetc < DURABLE_SETC)
        w->nsetc++;
    durable_copy_name(e->service, sizeof e->service, service);
    e->lease_ms = durable_setting(d->cfg, service, "lease");
    e->ttl_ms = durable_setting(d->cfg, service, "ttl");
    return e;
}

uint64_t durable_lease_ms(const durable_t *d, const char *service)
{
    int64_t ms = strlen(service) <= STORE_NAME_MAX
               ? durable_settings(d, service)->lease_ms
               : durable_setting(d->cfg, service, "lease");
    return ms > 0 ? (uint64_t) ms : 1;
}

static uint64_t durable_ttl_ms(const durable_t *d, const char *service)
{
    int64_t ms = strlen(service) <= STORE_NAME_MAX
               ? durable_settings(d, service)->ttl_ms
               : durable_setting(d->cfg, service, "ttl");
    return ms > 0 ? (uint64_t) ms : 0;
}

uint64_t durable_backoff_ms(const durable_t *d, uint32_t attempt)
{
    uint64_t ms = d->backoff_ms;
    for (uint32_t i = 1; i < attempt && ms < d->backoff_max_ms; i++)
        ms *= 2;
    return ms < d->backoff_max_ms ? ms : d->backoff_max_ms;
}

/* ------------------------------------------------------------ the key */

const char *durable_key_dir(const config_t *cfg)
{
    const char *dir = config_str(cfg, "security/store_key_dir");
    return dir[0] ? dir : config_str(cfg, "store/dir");
}

/* Checks the opened key against the fingerprint the store remembers, or
   records it when the store has none yet. */
static int durable_check_fp(durable_t *d, const char *store_dir, bool has_fp,
                            const uint8_t *fp, char *err, size_t errlen)
{
    uint8_t mine[SEAL_FINGERPRINT_BYTES];
    seal_fingerprint(d->seal, mine);
    if (has_fp) {
        if (sodium_memcmp(mine, fp, SEAL_FINGERPRINT_BYTES) == 0)
            return 0;
        snprintf(err, errlen, "store %s: the key file %s is not the key its "
                 "messages were sealed with (fingerprint differs); point "
                 "security/store_key_dir at the right key file", store_dir,
                 seal_path(d->seal));
        return SY_ECRYPTO;
    }
    int rc = store_meta_put(d->store, DURABLE_META_FP, mine, sizeof mine);
    if (rc)
        snprintf(err, errlen, "store %s: cannot record the key's fingerprint: %s",
                 store_dir, syerr_text(rc));
    return rc ? SY_ESTORE : 0;
}

/* Opens the key that seals bodies.  A key file is created only for a
   store that holds no message; for one that does, a missing key file is
   an error that says what is lost, and a different key is refused. */
static int durable_open_seal(durable_t *d, const config_t *cfg, char *err,
                             size_t errlen)
{
    const char *store_dir = config_str(cfg, "store/dir");
    const char *key_dir = durable_key_dir(cfg);
    uint8_t fp[SEAL_FINGERPRINT_BYTES];
    size_t fplen = 0;
    int rc = store_meta_get(d->store, DURABLE_META_FP, fp, sizeof fp, &fplen);
    bool has_fp = rc == 0 && fplen == sizeof fp;
    if (rc && rc != SY_ENOTFOUND) {
        snprintf(err, errlen, "store %s: cannot read its meta: %s", store_dir,
                 syerr_text(rc));
        return SY_ESTORE;
    }
    uint64_t count = 0;
    rc = store_message_count(d->store, &count);
    if (rc) {
        snprintf(err, errlen, "store %s: cannot count its messages: %s", store_dir,
                 syerr_text(rc));
        return SY_ESTORE;
    }
    char serr[400] = "";
    rc = seal_open(key_dir, count == 0, &d->seal, serr, sizeof serr);
    if (rc == SY_ENOTFOUND) {
        snprintf(err, errlen, "store %s holds %llu message(s) sealed with the key "
                 "file %s/%s, which is missing: they cannot be read without it. "
                 "Restore the key file (or point security/store_key_dir at it); "
                 "no new key is made over existing data", store_dir,
                 (unsigned long long) count, key_dir, SEAL_KEY_FILE);
        return SY_ECRYPTO;
    }
    if (rc) {
        snprintf(err, errlen, "store %s: %s", store_dir, serr[0] ? serr : syerr_text(rc));
        return rc;
    }
    if (has_fp && count == 0) {
        /* an empty store: whatever key it had protects nothing now */
        uint8_t mine[SEAL_FINGERPRINT_BYTES];
        seal_fingerprint(d->seal, mine);
        if (sodium_memcmp(mine, fp, sizeof fp) != 0) {
            sylog_warn("store %s is empty and its key changed: recording the key "
                       "of %s", store_dir, seal_path(d->seal));
            has_fp = false;
        }
    }
    rc = durable_check_fp(d, store_dir, has_fp, fp, err, errlen);
    if (rc == 0)
        sylog_info("store %s: bodies sealed with %s", store_dir, seal_path(d->seal));
    return rc;
}

/* Seals body into d->sealbuf, bound to the message id.  *out points at
   the record.  Returns 0, SY_ENOMEM or the seal's error. */
static int durable_seal_body(durable_t *d, const uint8_t *id, const void *body,
                             size_t blen, const uint8_t **out, size_t *outlen)
{
    size_t need = blen + SEAL_OVERHEAD;
    if (need > d->sealcap) {
        uint8_t *p = realloc(d->sealbuf, need);
        if (!p)
            return SY_ENOMEM;
        d->sealbuf = p;
        d->sealcap = need;
    }
    int rc = seal_encrypt(d->seal, id, ENVELOPE_ID_LEN, body, blen, d->sealbuf,
                          d->sealcap, outlen);
    *out = d->sealbuf;
    return rc;
}

int durable_open_body(seal_t *seal, store_msg_t *m)
{
    size_t cap = m->body_len > SEAL_OVERHEAD ? m->body_len - SEAL_OVERHEAD : 0;
    uint8_t *data = malloc(m->header_len + cap + 1);
    if (!data)
        return SY_ENOMEM;
    memcpy(data, m->header, m->header_len);
    size_t plen = 0;
    int rc = seal_decrypt(seal, m->id, STORE_ID_LEN, m->body, m->body_len,
                          data + m->header_len, cap, &plen);
    if (rc) {
        free(data);
        return rc;
    }
    free(m->data);
    m->data = data;
    m->header = data;
    m->body = data + m->header_len;
    m->body_len = plen;
    return 0;
}

/* ------------------------------------------------------------ lifecycle */

static int durable_alloc(durable_t *d)
{
    d->owed = calloc(DURABLE_BATCH, sizeof *d->owed);
    d->pend = calloc(DURABLE_BATCH, sizeof *d->pend);
    d->setc = calloc(DURABLE_SETC, sizeof *d->setc);
    if (!d->owed || !d->pend || !d->setc)
        return SY_ENOMEM;
    return fresh_new(&d->fresh);
}

int durable_new(const config_t *cfg, durable_receipt_fn *receipt_fn,
                void *receipt_arg, durable_t **out, char *err, size_t errlen)
{
    if (!cfg || !receipt_fn || !out) {
        snprintf(err, errlen, "durable: invalid arguments");
        return SY_EINVAL;
    }
    *out = NULL;
    durable_t *d = calloc(1, sizeof *d);
    if (!d || durable_alloc(d) != 0) {
        snprintf(err, errlen, "out of memory");
        durable_destroy(&d);
        return SY_ENOMEM;
    }
    d->cfg = cfg;
    d->receipt_fn = receipt_fn;
    d->receipt_arg = receipt_arg;
    d->dedup_window_ms = (uint64_t) config_int(cfg, "store/dedup_window");
    d->backoff_ms = (uint64_t) config_int(cfg, "store/retry_backoff");
    d->backoff_max_ms = (uint64_t) config_int(cfg, "store/retry_backoff_max");
    store_opts_t so = {
        .dir = config_str(cfg, "store/dir"),
        .map_size = (uint64_t) config_int(cfg, "store/map_size"),
        .sync = config_int(cfg, "store/sync") == 1 ? STORE_SYNC_NONE : STORE_SYNC_FULL,
        .max_attempts = (uint32_t) config_int(cfg, "store/max_attempts"),
        .dedup_window_ms = d->dedup_window_ms,
        .attempts_fn = durable_attempts,
        .attempts_arg = (void *) cfg,
    };
    char serr[400] = "";
    int rc = store_open(&so, &d->store, serr, sizeof serr);
    if (rc) {
        snprintf(err, errlen, "%s", serr[0] ? serr : syerr_text(rc));
        durable_destroy(&d);
        return rc;
    }
    rc = durable_open_seal(d, cfg, err, errlen);
    if (rc) {
        durable_destroy(&d);
        return rc;
    }
    *out = d;
    return 0;
}

void durable_set_deliver(durable_t *d, durable_deliver_fn *fn, void *arg)
{
    d->deliver_fn = fn;
    d->deliver_arg = arg;
}

void durable_destroy(durable_t **pp)
{
    if (!pp || !*pp)
        return;
    durable_t *d = *pp;
    if (d->store)
        durable_flush(d);
    store_txn_abort(&d->txn);
    store_destroy(&d->store);
    free(d->owed);
    if (d->pend)
        for (size_t i = 0; i < d->npend; i++)
            free(d->pend[i].block);
    free(d->pend);
    free(d->setc);
    fresh_destroy(&d->fresh);
    if (d->sealbuf)
        sodium_memzero(d->sealbuf, d->sealcap);
    free(d->sealbuf);
    seal_destroy(&d->seal);
    free(d);
    *pp = NULL;
}

/* ------------------------------------------------------------ the batch */

/* The open batch, opened at now_ms when there is none.  NULL when the
   store cannot begin one (logged). */
static store_txn_t *durable_batch(durable_t *d, uint64_t now_ms)
{
    if (d->txn)
        return d->txn;
    int rc = store_txn_begin(d->store, now_ms, &d->txn);
    if (rc) {
        sylog_error("store: cannot begin a batch: %s", syerr_name(rc));
        d->txn = NULL;
    }
    return d->txn;
}

/* Makes room for one more receipt: a full list commits the batch. */
static void durable_room(durable_t *d)
{
    if (d->nowed >= DURABLE_BATCH)
        durable_flush(d);
}

static durable_owed_t *durable_owe(durable_t *d, durable_receipt_kind_t kind,
                                   const uint8_t *rid, const uint8_t *id, int rc)
{
    if (d->nowed >= DURABLE_BATCH) {
        /* cannot happen: durable_room() ran before the work */
        sylog_error("durable: receipt list full; a receipt is not given");
        return NULL;
    }
    durable_owed_t *o = &d->owed[d->nowed++];
    o->kind = kind;
    memcpy(o->rid, rid, 1 + (size_t) rid[0]);
    memcpy(o->id, id, ENVELOPE_ID_LEN);
    o->rc = rc;
    return o;
}

/* ------------------------------------------------------------ puts */

int durable_put(durable_t *d, const uint8_t *rid, const envelope_t *env,
                const uint8_t *hdr, size_t hlen, const void *body,
                size_t blen, uint64_t now_ms)
{
    durable_room(d);
    uint8_t first[ENVELOPE_ID_LEN] = { 0 };
    const uint8_t *sealed = NULL;
    size_t slen = 0;
    store_txn_t *x = durable_batch(d, now_ms);
    int rc = x ? 0 : SY_EIO;
    if (rc == 0) {
        rc = durable_seal_body(d, env->id, body, blen, &sealed, &slen);
        if (rc)
            sylog_error("cannot seal a durable body: %s", syerr_name(rc));
    }
    if (rc == 0) {
        uint64_t ttl = env->present & ENV_HAS_TTL ? env->ttl : durable_ttl_ms(d, env->to);
        store_put_t p = {
            .service = env->to,
            .prio = env->prio < STORE_PRIOS ? env->prio : STORE_PRIOS - 1,
            .id = env->id,
            .header = hdr, .header_len = hlen,
            .body = sealed, .body_len = slen,
            .ttl_deadline = ttl ? now_ms + ttl : 0,
            .key = env->present & ENV_HAS_KEY && d->dedup_window_ms ? env->key : NULL,
            .dedup_window_ms = d->dedup_window_ms,
        };
        rc = store_put(x, &p, first);
    }
    if (rc == 0)               /* its take may then skip the opening */
        fresh_put(d->fresh, env->id, body, blen, hdr, hlen);
    if (rc && rc != SY_EDUPLICATE && rc != SY_EQUEUE_FULL)
        rc = SY_EINTERNAL;
    durable_owed_t *o = durable_owe(d, DURABLE_RECEIPT_PUT, rid, env->id, rc);
    if (o) {
        memcpy(o->first_id, first, ENVELOPE_ID_LEN);
        durable_copy_name(o->service, sizeof o->service, env->to);
    }
    return rc;
}

/* ------------------------------------------------------------ settling */

void durable_ack(durable_t *d, const uint8_t id[ENVELOPE_ID_LEN], const char *holder)
{
    store_txn_t *x = durable_batch(d, syid_now_ms());
    int rc = x ? store_txn_ack(x, id, holder) : SY_EIO;
    if (rc == 0)
        return;
    char hex[33];
    envelope_id_hex(id, hex);
    if (rc == SY_ENOTFOUND)
        sylog_info("late ack of %s by %s: not in flight for it", hex, holder);
    else
        sylog_error("store: ack of %s not applied: %s (redelivered later)", hex,
                    syerr_name(rc));
}

/* Owes the failure of a nack or lease extension (to rid, if any). */
static void durable_owe_settle(durable_t *d, durable_receipt_kind_t kind,
                               const uint8_t *rid, const uint8_t *req_id,
                               const uint8_t *id, const char *holder, int rc)
{
    if (!rid || !req_id)
        return;
    durable_owed_t *o = durable_owe(d, kind, rid, req_id, rc);
    if (o) {
        memcpy(o->msg_id, id, ENVELOPE_ID_LEN);
        snprintf(o->holder, sizeof o->holder, "%s", holder);
    }
}

int durable_nack(durable_t *d, const uint8_t *rid, const uint8_t *req_id,
                 const uint8_t id[ENVELOPE_ID_LEN], const char *holder,
                 const char *reason, bool requeue, bool has_delay,
                 uint64_t delay_ms, uint64_t now_ms)
{
    durable_room(d);
    store_txn_t *x = durable_batch(d, now_ms);
    int rc = x ? 0 : SY_EIO;
    if (rc == 0 && requeue && !has_delay) {
        uint32_t attempt = 1;
        if (store_txn_attempt(x, id, &attempt) != 0)
            attempt = 1;
        delay_ms = durable_backoff_ms(d, attempt);
    }
    if (rc == 0)
        rc = store_txn_nack(x, id, holder, reason, requeue, delay_ms, now_ms);
    durable_owe_settle(d, DURABLE_RECEIPT_NACK, rid, req_id, id, holder, rc);
    return rc;
}

int durable_extend(durable_t *d, const uint8_t *rid, const uint8_t *req_id,
                   const uint8_t id[ENVELOPE_ID_LEN], const char *holder,
                   uint64_t ms, uint64_t now_ms)
{
    durable_room(d);
    store_txn_t *x = durable_batch(d, now_ms);
    int rc = x ? store_txn_extend(x, id, holder, ms, now_ms) : SY_EIO;
    durable_owe_settle(d, DURABLE_RECEIPT_LEASE, rid, req_id, id, holder, rc);
    return rc;
}

int durable_undeliver(durable_t *d, const uint8_t id[ENVELOPE_ID_LEN],
                      const char *holder, uint64_t delay_ms, uint64_t now_ms)
{
    store_txn_t *x = durable_batch(d, now_ms);
    int rc = x ? store_txn_undeliver(x, id, holder, delay_ms, now_ms) : SY_EIO;
    char hex[33];
    envelope_id_hex(id, hex);
    if (rc == SY_ENOTFOUND)
        sylog_info("durable %s: not in flight for %s any more; nothing to give back",
                   hex, holder);
    else if (rc)
        sylog_error("store: cannot give back %s, never delivered to %s: %s "
                    "(it comes back when its lease runs out)", hex, holder,
                    syerr_name(rc));
    return rc;
}

int durable_release(durable_t *d, const char *holder, size_t *n)
{
    *n = 0;
    uint64_t now = syid_now_ms();
    store_txn_t *x = durable_batch(d, now);
    if (!x)
        return SY_EIO;
    /* its deliveries not sent yet: never send them (a new actor of the
       same name is not their holder), and do not count them */
    size_t unsent = 0;
    int rc = 0;
    for (size_t i = 0; i < d->npend && rc == 0; i++) {
        durable_pending_t *p = &d->pend[i];
        if (p->block && strcmp(p->holder, holder) == 0) {
            free(p->block);
            p->block = NULL;
            rc = store_txn_undeliver(x, p->id, holder, 0, now);
            if (rc == SY_ENOTFOUND)
                rc = 0;         /* already given back */
            else if (rc == 0)
                unsent++;
        }
    }
    if (rc == 0)
        rc = store_txn_release(x, holder, n);
    *n += unsent;
    return rc;
}

int durable_expire(durable_t *d, uint64_t now_ms, size_t max, size_t *n)
{
    size_t a = 0, b = 0;
    store_txn_t *x = durable_batch(d, now_ms);
    int rc = x ? store_txn_expire(x, now_ms, max, &a, &b) : SY_EIO;
    if (a)
        sylog_info("store: %zu lease(s) ran out; deliverable again", a);
    if (b)
        sylog_info("store: %zu message(s) expired to the dead-letter queue", b);
    *n = a + b;
    return rc;
}

/* ------------------------------------------------------------ delivery */

typedef struct {
    durable_t  *d;
    const char *service;
    const char *holder;
    uint64_t    now;
} durable_take_ctx_t;

/* A message whose body cannot be opened goes back: dead-lettered
   (damaged or foreign record) or requeued (out of memory), by a nack
   into the batch x, or in a transaction of its own when x is NULL. */
static void durable_refuse(durable_t *d, store_txn_t *x, const char *service,
                           const char *holder, const uint8_t *id,
                           uint32_t attempt, int why, uint64_t now)
{
    char hex[33];
    envelope_id_hex(id, hex);
    bool bad = why == SY_ECRYPTO || why == SY_EVERSION;
    sylog_error("durable %s of %s: %s%s", hex, service,
                bad ? DURABLE_REASON_SEAL : syerr_text(why),
                bad ? "; dead-lettered" : "; requeued");
    const char *reason = bad ? DURABLE_REASON_SEAL : NULL;
    uint64_t delay = bad ? 0 : durable_backoff_ms(d, attempt);
    int rc = x ? store_txn_nack(x, id, holder, reason, !bad, delay, now)
               : store_nack(d->store, id, holder, reason, !bad, delay, now);
    if (rc)
        sylog_error("durable %s: cannot give it back: %s", hex, syerr_name(rc));
}

/* Opens m's body straight out of the map into a delivery block (body,
   then the header).  Returns 0 or the error that refused it (handled). */
static int durable_open_taken(durable_t *d, const durable_take_ctx_t *c,
                              const store_msg_t *m, uint8_t **out, size_t *plen)
{
    size_t cap = m->body_len > SEAL_OVERHEAD ? m->body_len - SEAL_OVERHEAD : 0;
    uint8_t *block = malloc(cap + m->header_len + 1);
    int rc = block ? seal_decrypt(d->seal, m->id, STORE_ID_LEN, m->body, m->body_len,
                                  block, cap, plen)
                   : SY_ENOMEM;
    if (rc) {
        free(block);
        uint8_t id[STORE_ID_LEN];
        memcpy(id, m->id, STORE_ID_LEN);    /* m is not ours past a write */
        durable_refuse(d, d->txn, c->service, c->holder, id, m->attempt, rc, c->now);
        return rc;
    }
    memcpy(block + *plen, m->header, m->header_len);
    *out = block;
    return 0;
}

/* store_take_fn: the delivery's block is the plaintext kept since its
   put (fresh.h) when there is one, else the body opened out of the map. */
static int durable_on_taken(const store_msg_t *m, void *arg)
{
    durable_take_ctx_t *c = arg;
    durable_t *d = c->d;
    uint8_t *block = NULL;
    size_t plen = 0, hlen = m->header_len;
    bool kept = fresh_take(d->fresh, m->id, &block, &plen, &hlen) == 0;
    if (!kept) {
        hlen = m->header_len;
        int rc = durable_open_taken(d, c, m, &block, &plen);
        if (rc)
            return rc;
    }
    durable_pending_t *p = &d->pend[d->npend++];
    durable_copy_name(p->service, sizeof p->service, c->service);
    durable_copy_name(p->holder, sizeof p->holder, c->holder);
    memcpy(p->id, m->id, STORE_ID_LEN);
    p->attempt = m->attempt;
    p->block = block;
    p->body_len = plen;
    p->header_len = hlen;
    p->fresh = kept;
    return 0;
}

int durable_deliver(durable_t *d, const char *service, const char *holder,
                    size_t max, uint64_t now_ms, size_t *n)
{
    *n = 0;
    if (d->handing)
        return SY_EINVAL;
    if (max > DURABLE_BATCH)
        max = DURABLE_BATCH;
    if (d->npend + max > DURABLE_BATCH)
        durable_flush(d);
    store_txn_t *x = durable_batch(d, now_ms);
    if (!x)
        return SY_EIO;
    durable_take_ctx_t c = { d, service, holder, now_ms };
    return store_txn_take(x, service, holder, max, durable_lease_ms(d, service), now_ms,
                          durable_on_taken, &c, n);
}

int durable_take(durable_t *d, const char *service, const char *holder,
                 size_t max, uint64_t now_ms, store_msg_t *out, size_t *n)
{
    durable_flush(d);
    int rc = store_take(d->store, service, holder, max, durable_lease_ms(d, service),
                        now_ms, out, n);
    if (rc)
        return rc;
    size_t kept = 0;
    for (size_t i = 0; i < *n; i++) {
        uint8_t *block = NULL;          /* taken: no longer worth keeping */
        size_t blen, hlen;
        if (fresh_take(d->fresh, out[i].id, &block, &blen, &hlen) == 0)
            free(block);
        int orc = durable_open_body(d->seal, &out[i]);
        if (orc == 0) {
            if (kept != i) {
                out[kept] = out[i];
                memset(&out[i], 0, sizeof out[i]);
            }
            kept++;
            continue;
        }
        durable_refuse(d, NULL, service, holder, out[i].id, out[i].attempt, orc,
                       now_ms);
        store_msg_clear(&out[i]);
    }
    *n = kept;
    return 0;
}

/* ------------------------------------------------------------ flush */

/* The receipts of a batch whose commit returned crc. */
static void durable_give_receipts(durable_t *d, int crc)
{
    size_t owed = d->nowed;
    for (size_t i = 0; i < d->nowed; i++) {
        durable_owed_t *o = &d->owed[i];
        /* nothing of a failed batch is stored: a DUPLICATE may name a
           first message of this very batch, so it fails too; a nack or
           extension that looked fine did not happen */
        if (crc && (o->rc == 0 || o->rc == SY_EDUPLICATE))
            o->rc = crc;
        if (o->kind != DURABLE_RECEIPT_PUT && o->rc == 0)
            continue;
        if (o->kind != DURABLE_RECEIPT_PUT && o->rc != SY_ENOTFOUND)
            o->rc = SY_EINTERNAL;
        durable_receipt_t r = { o->rid, o->id, o->first_id, o->service, o->rc,
                                o->kind, o->msg_id, o->holder };
        d->receipt_fn(&r, d->receipt_arg);
    }
    d->nowed = 0;
    if (owed) {
        durable_receipt_t end = { .kind = DURABLE_RECEIPT_END };
        d->receipt_fn(&end, d->receipt_arg);
    }
}

/* The deliveries of a batch; the callbacks may start the next batch. */
static void durable_give_deliveries(durable_t *d, bool committed)
{
    size_t n = d->npend;
    d->handing = true;
    for (size_t i = 0; i < n; i++) {
        durable_pending_t *p = &d->pend[i];
        if (!p->block)
            continue;              /* its holder left in the batch */
        durable_delivery_t dl = {
            p->service, p->holder, p->id, p->attempt, p->block + p->body_len,
            p->header_len, p->block, p->body_len, committed && d->deliver_fn,
            p->fresh,
        };
        p->block = NULL;           /* dl has it: a release in the callback
                                      must not free it under dl */
        if (d->deliver_fn)
            d->deliver_fn(&dl, d->deliver_arg);
        free(dl.body);             /* NULL when the callback took it */
    }
    d->npend = 0;
    d->handing = false;
}

/* Commits the batch and hands out what it owes. */
static int durable_commit(durable_t *d)
{
    size_t nput = d->nowed, ndel = d->npend;
    int crc = d->txn ? store_txn_commit(&d->txn) : 0;
    if (crc)
        fresh_abort(d->fresh);     /* its puts are not in the store */
    else
        fresh_commit(d->fresh);
    if (crc) {
        sylog_error("store: commit of a batch (%zu receipt(s), %zu deliverie(s)) "
                    "failed: %s", nput, ndel, syerr_name(crc));
        crc = crc == SY_EQUEUE_FULL ? SY_EQUEUE_FULL : SY_EINTERNAL;
    }
    durable_give_receipts(d, crc);
    durable_give_deliveries(d, crc == 0);
    return crc;
}

bool durable_pending(const durable_t *d)
{
    return d->txn || d->nowed || d->npend;
}

int durable_flush(durable_t *d)
{
    if (d->handing)
        return 0;                  /* the flush under way commits it */
    int rc = durable_commit(d);
    /* what the delivery callbacks gave back (a send that failed) is a
       second, small batch; its callbacks can add nothing more */
    for (int i = 0; i < 2 && durable_pending(d); i++)
        durable_commit(d);
    return rc;
}

store_t *durable_store(durable_t *d)
{
    durable_flush(d);
    return d->store;
}
