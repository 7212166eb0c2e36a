/*  durable.c -- group commit, receipts after commit, grouped acks and the
 *  per-service settings of the durable queues (see durable.h).
 *
 *  Ideas:
 *
 *  - The batch of one loop turn is a store_txn_t opened by the first put.
 *    Beside it, a fixed array remembers for each put who is owed which
 *    receipt; nothing of it leaves this module before the commit returned.
 *    The arrays are allocated once, so a turn allocates nothing here
 *    except what LMDB does.
 *
 *  - Acks wait in a second fixed array and go to the store in one
 *    transaction per flush (store_ack_each: each id with its own holder).
 *
 *  - Every other store call flushes first: the batch is the one write
 *    transaction LMDB allows, and flushing early costs only an fsync.
 *
 *  - Encryption at rest: every body is sealed (common/seal.h, the message
 *    id as associated data) into one reusable buffer before store_put,
 *    and opened right after store_take, so the store and everything below
 *    it only ever see sealed bodies.  The key's fingerprint is kept in the
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

#include "common/seal.h"
#include "common/sylog.h"
#include "schemas/syerr.h"

#define DURABLE_META_FP "seal_fp"
#define DURABLE_REASON_SEAL "cannot be opened: the sealed body fails authentication " \
                            "(wrong key file or damaged record)"

typedef struct {
    uint8_t rid[1 + DURABLE_RID_MAX];
    uint8_t id[ENVELOPE_ID_LEN];
    uint8_t first_id[ENVELOPE_ID_LEN];
    char    service[ENVELOPE_NAME_MAX + 1];
    int     rc;
} durable_owed_t;

struct durable_t {
    store_t     *store;
    const config_t *cfg;
    store_txn_t *txn;              /* the open batch, or NULL */
    durable_owed_t *owed;          /* receipts of the batch */
    size_t       nowed;
    uint8_t    (*ack_ids)[STORE_ID_LEN];
    char       (*ack_holders)[STORE_NAME_MAX + 1];
    const char **ack_ptrs;
    int         *ack_rcs;
    size_t       nacks;
    durable_receipt_fn *receipt_fn;
    void        *receipt_arg;
    uint64_t     dedup_window_ms;  /* 0: keys are not checked */
    uint64_t     backoff_ms, backoff_max_ms;
    seal_t      *seal;             /* the key that seals stored bodies */
    uint8_t     *sealbuf;          /* scratch for one sealed body */
    size_t       sealcap;
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

uint64_t durable_lease_ms(const durable_t *d, const char *service)
{
    int64_t ms = durable_setting(d->cfg, service, "lease");
    return ms > 0 ? (uint64_t) ms : 1;
}

static uint64_t durable_ttl_ms(const durable_t *d, const char *service)
{
    int64_t ms = durable_setting(d->cfg, service, "ttl");
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
    d->ack_ids = calloc(DURABLE_BATCH, sizeof *d->ack_ids);
    d->ack_holders = calloc(DURABLE_BATCH, sizeof *d->ack_holders);
    d->ack_ptrs = calloc(DURABLE_BATCH, sizeof *d->ack_ptrs);
    d->ack_rcs = calloc(DURABLE_BATCH, sizeof *d->ack_rcs);
    if (!d->owed || !d->ack_ids || !d->ack_holders || !d->ack_ptrs || !d->ack_rcs)
        return SY_ENOMEM;
    for (size_t i = 0; i < DURABLE_BATCH; i++)
        d->ack_ptrs[i] = d->ack_holders[i];
    return 0;
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

void durable_destroy(durable_t **pp)
{
    if (!pp || !*pp)
        return;
    durable_t *d = *pp;
    if (d->store)
        durable_flush(d);
    store_destroy(&d->store);
    free(d->owed);
    free(d->ack_ids);
    free(d->ack_holders);
    free(d->ack_ptrs);
    free(d->ack_rcs);
    if (d->sealbuf)
        sodium_memzero(d->sealbuf, d->sealcap);
    free(d->sealbuf);
    seal_destroy(&d->seal);
    free(d);
    *pp = NULL;
}

/* ------------------------------------------------------------ puts */

static void durable_owe(durable_t *d, const uint8_t *rid, const envelope_t *env,
                        const uint8_t *first_id, int rc)
{
    durable_owed_t *o = &d->owed[d->nowed++];
    memcpy(o->rid, rid, 1 + (size_t) rid[0]);
    memcpy(o->id, env->id, ENVELOPE_ID_LEN);
    memcpy(o->first_id, first_id, ENVELOPE_ID_LEN);
    snprintf(o->service, sizeof o->service, "%s", env->to);
    o->rc = rc;
}

int durable_put(durable_t *d, const uint8_t *rid, const envelope_t *env,
                const uint8_t *hdr, size_t hlen, const void *body,
                size_t blen, uint64_t now_ms)
{
    if (d->nowed >= DURABLE_BATCH)
        durable_flush(d);
    uint8_t first[ENVELOPE_ID_LEN] = { 0 };
    const uint8_t *sealed = NULL;
    size_t slen = 0;
    int rc = 0;
    if (!d->txn)
        rc = store_txn_begin(d->store, now_ms, &d->txn);
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
        rc = store_put(d->txn, &p, first);
    }
    if (rc && rc != SY_EDUPLICATE && rc != SY_EQUEUE_FULL)
        rc = SY_EINTERNAL;
    durable_owe(d, rid, env, first, rc);
    return rc;
}

void durable_ack(durable_t *d, const uint8_t id[ENVELOPE_ID_LEN], const char *holder)
{
    if (d->nacks >= DURABLE_BATCH)
        durable_flush(d);
    memcpy(d->ack_ids[d->nacks], id, STORE_ID_LEN);
    snprintf(d->ack_holders[d->nacks], STORE_NAME_MAX + 1, "%s", holder);
    d->nacks++;
}

bool durable_pending(const durable_t *d)
{
    return d->txn || d->nacks;
}

/* Commits the batch and hands out its receipts. */
static int durable_commit(durable_t *d)
{
    int crc = d->txn ? store_txn_commit(&d->txn) : 0;
    if (crc) {
        sylog_error("store: commit of %zu message(s) failed: %s", d->nowed,
                    syerr_name(crc));
        crc = crc == SY_EQUEUE_FULL ? SY_EQUEUE_FULL : SY_EINTERNAL;
    }
    for (size_t i = 0; i < d->nowed; i++) {
        durable_owed_t *o = &d->owed[i];
        /* nothing of a failed batch is stored: a DUPLICATE may name a
           first message of this very batch, so it fails too */
        if (crc && (o->rc == 0 || o->rc == SY_EDUPLICATE))
            o->rc = crc;
        durable_receipt_t r = { o->rid, o->id, o->first_id, o->service, o->rc };
        d->receipt_fn(&r, d->receipt_arg);
    }
    d->nowed = 0;
    return crc;
}

static void durable_apply_acks(durable_t *d)
{
    if (!d->nacks)
        return;
    int rc = store_ack_each(d->store, (const uint8_t (*)[STORE_ID_LEN]) d->ack_ids,
                            d->ack_ptrs, d->nacks, d->ack_rcs);
    if (rc)
        sylog_error("store: %zu ack(s) not applied: %s (redelivered later)",
                    d->nacks, syerr_name(rc));
    else
        for (size_t i = 0; i < d->nacks; i++)
            if (d->ack_rcs[i]) {
                char hex[33];
                envelope_id_hex(d->ack_ids[i], hex);
                sylog_info("late ack of %s by %s: not in flight for it (%s)",
                           hex, d->ack_holders[i], syerr_name(d->ack_rcs[i]));
            }
    d->nacks = 0;
}

int durable_flush(durable_t *d)
{
    int rc = durable_commit(d);
    durable_apply_acks(d);
    return rc;
}

/* ------------------------------------------------------------ delivery */

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
        int orc = durable_open_body(d->seal, &out[i]);
        if (orc == 0) {
            if (kept != i) {
                out[kept] = out[i];
                memset(&out[i], 0, sizeof out[i]);
            }
            kept++;
            continue;
        }
        char hex[33];
        envelope_id_hex(out[i].id, hex);
        bool bad = orc == SY_ECRYPTO || orc == SY_EVERSION;
        sylog_error("durable %s of %s: %s%s", hex, service,
                    bad ? DURABLE_REASON_SEAL : syerr_text(orc),
                    bad ? "; dead-lettered" : "; requeued");
        int nrc = store_nack(d->store, out[i].id, holder,
                             bad ? DURABLE_REASON_SEAL : NULL, !bad,
                             bad ? 0 : durable_backoff_ms(d, out[i].attempt), now_ms);
        if (nrc)
            sylog_error("durable %s: cannot give it back: %s", hex, syerr_name(nrc));
        store_msg_clear(&out[i]);
    }
    *n = kept;
    return 0;
}

int durable_nack(durable_t *d, const uint8_t id[ENVELOPE_ID_LEN],
                 const char *holder, const char *reason, bool requeue,
                 bool has_delay, uint64_t delay_ms, uint64_t now_ms)
{
    durable_flush(d);
    if (requeue && !has_delay) {
        store_info_t info;
        uint32_t attempt = store_get_info(d->store, id, &info) == 0 ? info.attempt : 1;
        delay_ms = durable_backoff_ms(d, attempt);
    }
    return store_nack(d->store, id, holder, reason, requeue, delay_ms, now_ms);
}

int durable_extend(durable_t *d, const uint8_t id[ENVELOPE_ID_LEN],
                   const char *holder, uint64_t ms, uint64_t now_ms)
{
    durable_flush(d);
    return store_extend(d->store, id, holder, ms, now_ms);
}

int durable_release(durable_t *d, const char *holder, size_t *n)
{
    durable_flush(d);
    return store_release_holder(d->store, holder, n);
}

int durable_expire(durable_t *d, uint64_t now_ms, size_t max, size_t *n)
{
    durable_flush(d);
    size_t a = 0, b = 0;
    int rc = store_expire_leases(d->store, now_ms, max, &a);
    int rc2 = store_expire_ttl(d->store, now_ms, max, &b);
    if (a)
        sylog_info("store: %zu lease(s) ran out; deliverable again", a);
    if (b)
        sylog_info("store: %zu message(s) expired to the dead-letter queue", b);
    *n = a + b;
    return rc ? rc : rc2;
}

store_t *durable_store(durable_t *d)
{
    durable_flush(d);
    return d->store;
}
