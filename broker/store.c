/*  store.c -- the durable queue store on LMDB (see store.h for the
 *  guarantees).
 *
 *  Ideas:
 *
 *  - One value per message in `msgs` (id -> the record: state, prio,
 *    attempt, deadlines, service, reason, then the header and the body),
 *    written once at put and deleted at ack or purge.  Record and bytes in
 *    one value: a put writes one value, an ack deletes one, a take reads
 *    one.  The rare state changes that rewrite a record (nack, expiry,
 *    dead letter, retry) copy the bytes along.
 *
 *  - Each waiting or dead state has an index whose key order is the order
 *    we need, so that every question is a cursor seek, never a scan of
 *    the queue:
 *        ready     service \0 prio id -> attempt, ttl   delivery order
 *        delayed   service \0 not_before id    nacked with a delay
 *        dead      service \0 id               dead letters
 *        ttl       ttl_deadline id             waiting messages with a ttl
 *        dedup     service \0 key -> first id, expiry
 *        dedupexp  expiry service \0 key       pruning in expiry order
 *    Numbers inside keys are big-endian so that memcmp order is numeric
 *    order.  Names never hold a NUL, so "a\0" sorts before "ab\0" and a
 *    service's entries are one contiguous range.  A ready entry carries
 *    the message's attempt count and ttl, so that a take learns all it
 *    needs to lease a message from the index it scans anyway.
 *
 *  - In flight: one entry in `inflight` (id -> lease deadline, time taken,
 *    attempt, prio, service, holder) is the whole lease.  A take deletes
 *    the ready entry and writes this one, nothing else: the record in
 *    `msgs` is not rewritten and keeps the state and attempt it had when
 *    waiting; the `inflight` entry is the truth while it exists.  An ack
 *    deletes the entry and the record.  When a message comes back (nack,
 *    lease expiry, release, restart) its record is rewritten from the
 *    entry.  The in-flight set is small (bounded by the actors' credit),
 *    so the questions asked of it rarely -- which leases ran out, what did
 *    this actor hold -- scan it instead of keeping two more indexes on
 *    every take and ack; lease expiry keeps a lower bound of the earliest
 *    deadline in memory and scans only once it passed.
 *
 *  - A state change is always: drop the message from the index of its old
 *    state, change the record, add it to the index of its new state.  The
 *    per-service counters in `stats` move in the same two steps, in the
 *    same transaction, so the counts are always exact and cost no scan.
 *
 *  - Group commit: a batch is one LMDB write transaction.  Near the end of
 *    the map each put runs in a nested transaction, so a put that fails
 *    (map full) is undone alone and the earlier puts of the batch stay.
 *    Before the map is really full, puts are refused while less than a
 *    reserve is free, so that the calls which free room can still write.
 *
 *  - The on-disk layout is versioned by a record in `meta`; a store with
 *    another version is refused with a message, never reinterpreted.
 *    Format 1 (before the in-flight entry and the merged record) had
 *    `data`, `leases` and `holders`.
 */
#include "broker/store.h"

#include "common/sylog.h"
#include "schemas/syerr.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE_MAXDBS        16
#define STORE_CHUNK         10000   /* messages per txn in bulk calls */
#define STORE_PRUNE_MIN     32      /* dedup records pruned per commit */
#define STORE_RESERVE_MIN_PAGES 64
#define STORE_KEYBUF        (STORE_NAME_MAX + 1 + STORE_KEY_MAX + 32)
#define STORE_STATC         8       /* services whose counters a write
                                       transaction caches */
#define STORE_TAKE_CHUNK    256     /* ids read per seek of a take */

/* The fixed part of a `msgs` value; the service and reason bytes, then
   the header and the body follow it.  Native layout: an LMDB file is not
   portable across architectures anyway. */
typedef struct {
    uint64_t enq_ms;
    uint64_t ttl_deadline;
    uint64_t not_before;
    uint64_t changed_ms;
    uint32_t attempt;
    uint32_t header_len;
    uint8_t  state;
    uint8_t  prio;
    uint8_t  service_len;
    uint8_t  pad;
    uint16_t reason_len;
    uint16_t pad2;
} store_rec_fixed_t;

/* The fixed part of an `inflight` value; service and holder follow. */
typedef struct {
    uint64_t lease_deadline;
    uint64_t changed_ms;           /* when it was taken */
    uint32_t attempt;              /* counting this delivery */
    uint8_t  prio;
    uint8_t  service_len;
    uint8_t  holder_len;
    uint8_t  pad;
} store_lease_t;

/* The value of a `ready` entry. */
typedef struct {
    uint64_t ttl_deadline;
    uint32_t attempt;
    uint32_t pad;
} store_readyv_t;

/* A message as the code sees it: its record, and while in flight the
   lease (f.state INFLIGHT, f.attempt and f.changed_ms from the lease). */
typedef struct {
    store_rec_fixed_t f;
    uint64_t lease_deadline;
    char service[STORE_NAME_MAX + 1];
    char holder[STORE_NAME_MAX + 1];
    char reason[STORE_REASON_MAX + 1];
} store_rec_t;

/* Counters of one service as stored in `stats`. */
typedef struct {
    uint64_t ready[STORE_PRIOS];
    uint64_t delayed;
    uint64_t inflight;
    uint64_t dead;
} store_stat_t;

/* One service's counters as the open write transaction sees them: the
   counters of a transaction are read once and written once, at its end,
   instead of at every state change (three times per message). */
typedef struct {
    char         service[STORE_NAME_MAX + 1];
    store_stat_t st;
} store_statc_t;

struct store_t {
    MDB_env  *env;
    MDB_dbi   db_meta, db_stats, db_msgs, db_ready, db_delayed,
              db_inflight, db_dead, db_ttl, db_dedup, db_dedupexp;
    uint32_t  max_attempts;
    store_attempts_fn *attempts_fn;
    void     *attempts_arg;
    uint64_t  dedup_window_ms;
    int       reserve_pct;         /* < 0: no reserve */
    size_t    psize;
    bool      txn_open;
    store_rec_t info_rec;          /* backs store_get_info()'s strings */
    MDB_txn  *statc_txn;           /* the write transaction the cache is
                                      of, or NULL */
    store_statc_t statc[STORE_STATC];
    size_t    nstatc;
    /* No lease in the committed store ends before lease_low (a lower
       bound: lowered at every lease written, raised only by a scan of a
       transaction that committed).  hint_scanned: the open write
       transaction scanned the leases and found hint_next the earliest
       one left; it becomes lease_low if that transaction commits. */
    uint64_t  lease_low;
    uint64_t  hint_next;
    bool      hint_scanned;
};

struct store_txn_t {
    store_t  *store;
    MDB_txn  *txn;
    uint64_t  now;
    size_t    count;
    uint64_t  budget;              /* bytes puts may still use */
    bool      freelist_counted;
    int       spoiled;             /* != 0: a put failed half-way; the
                                      batch can only be dropped */
};

/* ------------------------------------------------------------ helpers */

static void store_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) { p[i] = (uint8_t) v; v >>= 8; }
}

static uint64_t store_get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* The millisecond time carried in the first 6 bytes of an id. */
static uint64_t store_id_ms(const uint8_t *id)
{
    uint64_t v = 0;
    for (int i = 0; i < 6; i++)
        v = (v << 8) | id[i];
    return v;
}

/* Maps an LMDB return code to ours. */
static int store_rc(int mrc)
{
    switch (mrc) {
    case MDB_SUCCESS:  return 0;
    case MDB_NOTFOUND: return SY_ENOTFOUND;
    case MDB_MAP_FULL:
    case MDB_TXN_FULL: return SY_EQUEUE_FULL;
    case ENOMEM:       return SY_ENOMEM;
    default:           return SY_EIO;
    }
}

static bool store_name_ok(const char *s)
{
    if (!s)
        return false;
    size_t n = strlen(s);
    return n >= 1 && n <= STORE_NAME_MAX;
}

/* key = name \0 tail.  Returns the key length. */
static size_t store_key_named(uint8_t *buf, const char *name,
                              const void *tail, size_t tail_len)
{
    size_t n = strlen(name);
    memcpy(buf, name, n);
    buf[n] = 0;
    if (tail_len)
        memcpy(buf + n + 1, tail, tail_len);
    return n + 1 + tail_len;
}

/* key = be64(t) id */
static void store_key_time(uint8_t buf[8 + STORE_ID_LEN], uint64_t t,
                           const uint8_t *id)
{
    store_be64(buf, t);
    memcpy(buf + 8, id, STORE_ID_LEN);
}

/* Does key k begin with name \0 ? */
static bool store_key_in(const MDB_val *k, const char *name)
{
    size_t n = strlen(name);
    return k->mv_size > n && memcmp(k->mv_data, name, n) == 0
        && ((const uint8_t *) k->mv_data)[n] == 0;
}

static void store_copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, src, n);
    dst[n] = 0;
}

static void store_copy_mem(char *dst, const void *src, size_t n)
{
    if (n)
        memcpy(dst, src, n);
    dst[n] = 0;
}

/* ------------------------------------------------------------ records */

/* Decodes a `msgs` value into r (holder "", no lease); *bytes (if not
   NULL) gets where the header starts inside v, *blen (if not NULL) how
   many bytes header and body take. */
static int store_rec_decode(const MDB_val *v, store_rec_t *r,
                            const uint8_t **bytes, size_t *blen)
{
    if (v->mv_size < sizeof(r->f))
        return SY_ESTORE;
    memcpy(&r->f, v->mv_data, sizeof(r->f));
    size_t meta = sizeof(r->f) + r->f.service_len + r->f.reason_len;
    if (v->mv_size < meta || v->mv_size - meta < r->f.header_len
        || r->f.service_len > STORE_NAME_MAX
        || r->f.reason_len > STORE_REASON_MAX || r->f.prio >= STORE_PRIOS)
        return SY_ESTORE;
    const char *p = (const char *) v->mv_data + sizeof(r->f);
    store_copy_mem(r->service, p, r->f.service_len);
    store_copy_mem(r->reason, p + r->f.service_len, r->f.reason_len);
    r->holder[0] = 0;
    r->lease_deadline = 0;
    if (bytes)
        *bytes = (const uint8_t *) v->mv_data + meta;
    if (blen)
        *blen = v->mv_size - meta;
    return 0;
}

/* Reads the record of id as it is in `msgs` (for a message in flight:
   as it was when it was taken; see store_rec_live). */
static int store_rec_get(store_t *s, MDB_txn *t, const uint8_t *id,
                         store_rec_t *r)
{
    MDB_val k = { STORE_ID_LEN, (void *) id }, v;
    int rc = mdb_get(t, s->db_msgs, &k, &v);
    if (rc)
        return store_rc(rc);
    return store_rec_decode(&v, r, NULL, NULL);
}

/* Decodes an `inflight` value into r (state, attempt, taken time,
   deadline, holder; service and prio too). */
static int store_lease_decode(const MDB_val *v, store_rec_t *r)
{
    store_lease_t l;
    if (v->mv_size < sizeof(l))
        return SY_ESTORE;
    memcpy(&l, v->mv_data, sizeof(l));
    if (v->mv_size != sizeof(l) + l.service_len + l.holder_len
        || l.service_len > STORE_NAME_MAX || l.holder_len > STORE_NAME_MAX
        || l.prio >= STORE_PRIOS)
        return SY_ESTORE;
    const char *p = (const char *) v->mv_data + sizeof(l);
    store_copy_mem(r->service, p, l.service_len);
    store_copy_mem(r->holder, p + l.service_len, l.holder_len);
    r->f.state = STORE_INFLIGHT;
    r->f.prio = l.prio;
    r->f.attempt = l.attempt;
    r->f.changed_ms = l.changed_ms;
    r->lease_deadline = l.lease_deadline;
    return 0;
}

/* Reads the lease of id into r (as store_lease_decode).  SY_ENOTFOUND:
   not in flight. */
static int store_lease_get(store_t *s, MDB_txn *t, const uint8_t *id,
                           store_rec_t *r)
{
    MDB_val k = { STORE_ID_LEN, (void *) id }, v;
    int rc = mdb_get(t, s->db_inflight, &k, &v);
    return rc ? store_rc(rc) : store_lease_decode(&v, r);
}

/* The record of id as it stands: the lease laid over the record while
   it is in flight. */
static int store_rec_live(store_t *s, MDB_txn *t, const uint8_t *id,
                          store_rec_t *r)
{
    int rc = store_rec_get(s, t, id, r);
    if (rc)
        return rc;
    rc = store_lease_get(s, t, id, r);
    return rc == SY_ENOTFOUND ? 0 : rc;
}

/* Rewrites the record of id from r, keeping its header and body (copied
   aside first: the write may move them).  Never for INFLIGHT: the lease
   entry holds that state. */
static int store_rec_write(store_t *s, MDB_txn *t, const uint8_t *id,
                           store_rec_t *r)
{
    MDB_val k = { STORE_ID_LEN, (void *) id }, v;
    int rc = mdb_get(t, s->db_msgs, &k, &v);
    if (rc)
        return rc == MDB_NOTFOUND ? SY_ESTORE : store_rc(rc);
    store_rec_t old;
    const uint8_t *bytes;
    size_t blen;
    rc = store_rec_decode(&v, &old, &bytes, &blen);
    if (rc)
        return rc;
    uint8_t *copy = malloc(blen ? blen : 1);
    if (!copy)
        return SY_ENOMEM;
    if (blen)
        memcpy(copy, bytes, blen);
    r->f.header_len = old.f.header_len;
    r->f.service_len = (uint8_t) strlen(r->service);
    r->f.reason_len = (uint16_t) strlen(r->reason);
    r->f.pad = 0;
    r->f.pad2 = 0;
    size_t off = sizeof(r->f);
    v.mv_size = off + r->f.service_len + r->f.reason_len + blen;
    v.mv_data = NULL;
    rc = mdb_put(t, s->db_msgs, &k, &v, MDB_RESERVE);
    if (rc == 0) {
        uint8_t *p = v.mv_data;
        memcpy(p, &r->f, off);
        memcpy(p + off, r->service, r->f.service_len);
        off += r->f.service_len;
        memcpy(p + off, r->reason, r->f.reason_len);
        off += r->f.reason_len;
        if (blen)
            memcpy(p + off, copy, blen);
    }
    free(copy);
    return store_rc(rc);
}

/* ------------------------------------------------------------ counters */

static int store_stat_get(store_t *s, MDB_txn *t, const char *service,
                          store_stat_t *st)
{
    MDB_val k = { strlen(service), (void *) service }, v;
    memset(st, 0, sizeof(*st));
    int rc = mdb_get(t, s->db_stats, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return store_rc(rc);
    if (v.mv_size != sizeof(*st))
        return SY_ESTORE;
    memcpy(st, v.mv_data, sizeof(*st));
    return 0;
}

/* The counter of a state (and prio) inside st. */
static uint64_t *store_stat_slot(store_stat_t *st, uint8_t state,
                                 uint8_t prio)
{
    switch (state) {
    case STORE_READY:    return &st->ready[prio];
    case STORE_DELAYED:  return &st->delayed;
    case STORE_INFLIGHT: return &st->inflight;
    default:             return &st->dead;
    }
}

static int store_stat_write(store_t *s, MDB_txn *t, const char *service,
                            const store_stat_t *st)
{
    MDB_val k = { strlen(service), (void *) service };
    MDB_val v = { sizeof(*st), (void *) st };
    return store_rc(mdb_put(t, s->db_stats, &k, &v, 0));
}

/* Writes the cached counters into their transaction and empties the
   cache.  Called before the transaction commits and before a nested
   transaction (which reads the counters from the database) begins. */
static int store_statc_flush(store_t *s)
{
    int rc = 0;
    for (size_t i = 0; i < s->nstatc && rc == 0; i++)
        rc = store_stat_write(s, s->statc_txn, s->statc[i].service,
                              &s->statc[i].st);
    s->nstatc = 0;
    return rc;
}

/* The cached counters of service in the write transaction t (read on
   first use), or NULL when t is not the cached transaction. */
static store_stat_t *store_statc_get(store_t *s, MDB_txn *t,
                                     const char *service, int *rc)
{
    *rc = 0;
    if (t != s->statc_txn)
        return NULL;
    for (size_t i = 0; i < s->nstatc; i++)
        if (strcmp(s->statc[i].service, service) == 0)
            return &s->statc[i].st;
    if (s->nstatc == STORE_STATC && (*rc = store_statc_flush(s)) != 0)
        return NULL;
    store_statc_t *c = &s->statc[s->nstatc];
    *rc = store_stat_get(s, t, service, &c->st);
    if (*rc)
        return NULL;
    store_copy_str(c->service, sizeof(c->service), service);
    s->nstatc++;
    return &c->st;
}

static int store_stat_add(store_t *s, MDB_txn *t, const store_rec_t *r,
                          int delta)
{
    store_stat_t local;
    int rc;
    store_stat_t *st = store_statc_get(s, t, r->service, &rc);
    if (rc)
        return rc;
    if (!st) {
        st = &local;
        rc = store_stat_get(s, t, r->service, st);
        if (rc)
            return rc;
    }
    uint64_t *slot = store_stat_slot(st, r->f.state, r->f.prio);
    if (delta < 0 && *slot == 0)
        return SY_ESTORE;          /* counters out of step: corrupt */
    *slot += (uint64_t) (int64_t) delta;
    return st == &local ? store_stat_write(s, t, r->service, st) : 0;
}

/* ------------------------------------------------------------ indexes */

/* Builds the key of r in the index of its waiting or dead state; returns
   its dbi. */
static MDB_dbi store_state_key(store_t *s, const store_rec_t *r,
                               const uint8_t *id, uint8_t *buf, size_t *len)
{
    uint8_t tail[8 + STORE_ID_LEN];
    switch (r->f.state) {
    case STORE_READY:
        tail[0] = r->f.prio;
        memcpy(tail + 1, id, STORE_ID_LEN);
        *len = store_key_named(buf, r->service, tail, 1 + STORE_ID_LEN);
        return s->db_ready;
    case STORE_DELAYED:
        store_key_time(tail, r->f.not_before, id);
        *len = store_key_named(buf, r->service, tail, sizeof(tail));
        return s->db_delayed;
    default:
        *len = store_key_named(buf, r->service, id, STORE_ID_LEN);
        return s->db_dead;
    }
}

static bool store_state_waiting(uint8_t state)
{
    return state == STORE_READY || state == STORE_DELAYED;
}

/* Writes the lease entry of r (INFLIGHT) and lowers the bound on the
   earliest lease. */
static int store_lease_put(store_t *s, MDB_txn *t, const store_rec_t *r,
                           const uint8_t *id)
{
    uint8_t buf[sizeof(store_lease_t) + 2 * STORE_NAME_MAX];
    store_lease_t l = {
        .lease_deadline = r->lease_deadline, .changed_ms = r->f.changed_ms,
        .attempt = r->f.attempt, .prio = r->f.prio,
        .service_len = (uint8_t) strlen(r->service),
        .holder_len = (uint8_t) strlen(r->holder), .pad = 0 };
    memcpy(buf, &l, sizeof(l));
    memcpy(buf + sizeof(l), r->service, l.service_len);
    memcpy(buf + sizeof(l) + l.service_len, r->holder, l.holder_len);
    MDB_val k = { STORE_ID_LEN, (void *) id };
    MDB_val v = { sizeof(l) + l.service_len + l.holder_len, buf };
    if (r->lease_deadline < s->lease_low)
        s->lease_low = r->lease_deadline;
    if (s->hint_scanned && r->lease_deadline < s->hint_next)
        s->hint_next = r->lease_deadline;
    return store_rc(mdb_put(t, s->db_inflight, &k, &v, 0));
}

/* Adds (add = true) or removes the index entries of r's current state,
   and moves the counters with them. */
static int store_index(store_t *s, MDB_txn *t, const store_rec_t *r,
                       const uint8_t *id, bool add)
{
    int rc;
    if (r->f.state == STORE_INFLIGHT) {
        MDB_val k = { STORE_ID_LEN, (void *) id };
        rc = add ? store_lease_put(s, t, r, id)
                 : store_rc(mdb_del(t, s->db_inflight, &k, NULL));
        if (rc)
            return rc == SY_ENOTFOUND ? SY_ESTORE : rc;
        return store_stat_add(s, t, r, add ? 1 : -1);
    }
    uint8_t buf[STORE_KEYBUF];
    size_t len;
    MDB_dbi dbi = store_state_key(s, r, id, buf, &len);
    MDB_val k = { len, buf }, v = { 0, NULL };
    store_readyv_t rv;
    if (r->f.state == STORE_READY) {
        memset(&rv, 0, sizeof(rv));
        rv.ttl_deadline = r->f.ttl_deadline;
        rv.attempt = r->f.attempt;
        v.mv_size = sizeof(rv);
        v.mv_data = &rv;
    }
    rc = add ? mdb_put(t, dbi, &k, &v, 0) : mdb_del(t, dbi, &k, NULL);
    if (rc)
        return rc == MDB_NOTFOUND ? SY_ESTORE : store_rc(rc);
    if (store_state_waiting(r->f.state) && r->f.ttl_deadline) {
        store_key_time(buf, r->f.ttl_deadline, id);
        k.mv_size = 8 + STORE_ID_LEN;
        v.mv_size = 0;
        v.mv_data = NULL;
        rc = add ? mdb_put(t, s->db_ttl, &k, &v, 0)
                 : mdb_del(t, s->db_ttl, &k, NULL);
        if (rc)
            return rc == MDB_NOTFOUND ? SY_ESTORE : store_rc(rc);
    }
    return store_stat_add(s, t, r, add ? 1 : -1);
}

/* A message already out of the index of its old state enters the state
   of next (see store_move). */
static int store_settle(store_t *s, MDB_txn *t, const uint8_t *id,
                        store_rec_t *next, uint64_t now)
{
    if (next->f.state != STORE_INFLIGHT) {
        next->holder[0] = 0;
        next->lease_deadline = 0;
    }
    if (next->f.state != STORE_DEAD)
        next->reason[0] = 0;
    if (next->f.state != STORE_DELAYED)
        next->f.not_before = 0;
    next->f.changed_ms = now;
    int rc = store_index(s, t, next, id, true);
    if (rc || next->f.state == STORE_INFLIGHT)
        return rc;
    return store_rec_write(s, t, id, next);
}

/* Moves a message from its current state to `state`; the caller has set
   the fields the new state needs (lease, holder, not_before, reason) in
   `next`, which starts as a copy of r.  The record is rewritten unless
   the message goes in flight (the lease entry says so). */
static int store_move(store_t *s, MDB_txn *t, const uint8_t *id,
                      const store_rec_t *r, store_rec_t *next, uint64_t now)
{
    int rc = store_index(s, t, r, id, false);
    return rc ? rc : store_settle(s, t, id, next, now);
}

static int store_to_dead(store_t *s, MDB_txn *t, const uint8_t *id,
                         const store_rec_t *r, const char *reason,
                         uint64_t now)
{
    store_rec_t next = *r;
    next.f.state = STORE_DEAD;
    store_copy_str(next.reason, sizeof(next.reason), reason);
    return store_move(s, t, id, r, &next, now);
}

/* The attempts allowed to messages of service. */
static uint32_t store_max_attempts(const store_t *s, const char *service)
{
    uint32_t max = s->attempts_fn ? s->attempts_fn(service, s->attempts_arg)
                                  : 0;
    return max ? max : s->max_attempts;
}

/* An in-flight message comes back (lease ran out, holder died, nack with
   requeue, restart): dead letter if its ttl passed or its attempts are
   used up, else waiting again (DELAYED when delay_ms > 0). */
static int store_return(store_t *s, MDB_txn *t, const uint8_t *id,
                        const store_rec_t *r, uint64_t delay_ms,
                        uint64_t now)
{
    if (r->f.ttl_deadline && r->f.ttl_deadline <= now)
        return store_to_dead(s, t, id, r, STORE_REASON_EXPIRED, now);
    if (r->f.attempt >= store_max_attempts(s, r->service))
        return store_to_dead(s, t, id, r, STORE_REASON_MAX_ATTEMPTS, now);
    store_rec_t next = *r;
    next.f.state = delay_ms ? STORE_DELAYED : STORE_READY;
    next.f.not_before = delay_ms ? now + delay_ms : 0;
    return store_move(s, t, id, r, &next, now);
}

/* Deletes a message and everything it has in the indexes. */
static int store_delete(store_t *s, MDB_txn *t, const uint8_t *id,
                        const store_rec_t *r)
{
    int rc = store_index(s, t, r, id, false);
    if (rc)
        return rc;
    MDB_val k = { STORE_ID_LEN, (void *) id };
    rc = mdb_del(t, s->db_msgs, &k, NULL);
    return rc == MDB_NOTFOUND ? SY_ESTORE : store_rc(rc);
}

/* ------------------------------------------------------------ transactions */

static int store_wbegin(store_t *s, MDB_txn **t)
{
    if (s->txn_open)
        return SY_EINVAL;
    int rc = mdb_txn_begin(s->env, NULL, 0, t);
    if (rc) {
        sylog_error("store: cannot begin a write transaction: %s",
                    mdb_strerror(rc));
        return store_rc(rc);
    }
    s->statc_txn = *t;
    s->nstatc = 0;
    s->hint_scanned = false;
    return 0;
}

static int store_rbegin(store_t *s, MDB_txn **t)
{
    if (s->txn_open)
        return SY_EINVAL;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, t);
    if (rc) {
        sylog_error("store: cannot begin a read transaction: %s",
                    mdb_strerror(rc));
        return store_rc(rc);
    }
    return 0;
}

/* Commits t (begun by store_wbegin) when rc is 0, else aborts it;
   returns the outcome.  The cached counters are written first; a lease
   scan of t raises the bound on the earliest lease only once t is
   committed (dropped, t may have deleted leases that are back). */
static int store_wend(store_t *s, MDB_txn *t, int rc)
{
    if (rc == 0 && t == s->statc_txn)
        rc = store_statc_flush(s);
    bool scanned = s->hint_scanned;
    s->hint_scanned = false;
    if (t == s->statc_txn) {
        s->statc_txn = NULL;
        s->nstatc = 0;
    }
    if (rc) {
        mdb_txn_abort(t);
        return rc;
    }
    int mrc = mdb_txn_commit(t);
    if (mrc) {
        sylog_error("store: commit failed: %s", mdb_strerror(mrc));
        return store_rc(mrc);
    }
    if (scanned)
        s->lease_low = s->hint_next;
    return 0;
}

/* ------------------------------------------------------------ draining */

/* The front of one index range: the entries of dbi that begin with
   service \0 (every entry when service is NULL); after that prefix, when
   timed, a be64 time (entries later than `until` are left alone), and
   id_off bytes after the prefix the message id. */
typedef struct {
    MDB_dbi     dbi;
    const char *service;
    size_t      id_off;
    bool        timed;
    uint64_t    until;
} store_range_t;

/* What a drain does to the message of one entry.  It must take the entry
   out of the range (the drain seeks the front again). */
typedef int (store_drain_fn)(store_t *s, MDB_txn *t, const uint8_t *id,
                             void *arg);

/* Applies fn to at most max messages at the front of g, inside t; *n
   gets how many.  The one loop of every "move what is at the front"
   walk: recovery, ttl expiry, promotion of delayed messages, bulk retry
   and purge. */
static int store_drain(store_t *s, MDB_txn *t, const store_range_t *g,
                       size_t max, store_drain_fn *fn, void *arg, size_t *n)
{
    *n = 0;
    uint8_t kb[STORE_KEYBUF];
    size_t plen = g->service ? store_key_named(kb, g->service, NULL, 0) : 0;
    MDB_cursor *c;
    int rc = store_rc(mdb_cursor_open(t, g->dbi, &c));
    if (rc)
        return rc;
    while (*n < max) {
        MDB_val k = { plen, kb }, v;
        int mrc = mdb_cursor_get(c, &k, &v, plen ? MDB_SET_RANGE : MDB_FIRST);
        if (mrc == MDB_NOTFOUND
            || (mrc == 0 && g->service && !store_key_in(&k, g->service)))
            break;
        if (mrc || k.mv_size != plen + g->id_off + STORE_ID_LEN) {
            rc = mrc ? store_rc(mrc) : SY_ESTORE;
            break;
        }
        const uint8_t *kp = (const uint8_t *) k.mv_data + plen;
        if (g->timed && store_get_be64(kp) > g->until)
            break;
        uint8_t id[STORE_ID_LEN];
        memcpy(id, kp + g->id_off, STORE_ID_LEN);  /* fn's writes move k */
        rc = fn(s, t, id, arg);
        if (rc)
            break;
        (*n)++;
    }
    mdb_cursor_close(c);
    return rc;
}

/* store_drain until g is empty, in write transactions of their own of
   STORE_CHUNK messages each; *n grows by how many. */
static int store_drain_all(store_t *s, const store_range_t *g,
                           store_drain_fn *fn, void *arg, size_t *n)
{
    for (;;) {
        MDB_txn *t;
        size_t got = 0;
        int rc = store_wbegin(s, &t);
        if (rc)
            return rc;
        rc = store_wend(s, t, store_drain(s, t, g, STORE_CHUNK, fn, arg,
                                          &got));
        if (rc)
            return rc;
        *n += got;
        if (got < STORE_CHUNK)
            return 0;
    }
}

/* ------------------------------------------------------------ open */

/* The databases of the layout, `meta` first: its format record is read
   before the others are looked for. */
static int store_open_dbs(store_t *s, MDB_txn *t, bool create)
{
    struct { const char *name; MDB_dbi *dbi; } dbs[] = {
        { "stats", &s->db_stats },     { "msgs", &s->db_msgs },
        { "ready", &s->db_ready },     { "delayed", &s->db_delayed },
        { "inflight", &s->db_inflight }, { "dead", &s->db_dead },
        { "ttl", &s->db_ttl },         { "dedup", &s->db_dedup },
        { "dedupexp", &s->db_dedupexp },
    };
    for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
        int rc = mdb_dbi_open(t, dbs[i].name, create ? MDB_CREATE : 0,
                              dbs[i].dbi);
        if (rc)
            return rc;
    }
    return 0;
}

/* Reads and checks the format record of an existing store. */
static int store_check_format(store_t *s, MDB_txn *t, char *err,
                              size_t errlen, const char *dir)
{
    MDB_val k = { 6, "format" }, v;
    int rc = mdb_get(t, s->db_meta, &k, &v);
    if (rc || v.mv_size != sizeof(uint32_t))
        return syerr_fmt(err, errlen, SY_ESTORE, "store %s: no format "
                         "record (%s)", dir,
                         rc ? mdb_strerror(rc) : "bad size");
    uint32_t ver;
    memcpy(&ver, v.mv_data, sizeof(ver));
    if (ver == STORE_FORMAT_VERSION)
        return 0;
    if (ver > STORE_FORMAT_VERSION || ver == 0)
        return syerr_fmt(err, errlen, SY_ESTORE, "store %s: format version "
                         "%u (this program reads %u) is newer than this "
                         "program reads; refusing to open it", dir, ver,
                         STORE_FORMAT_VERSION);
    return syerr_fmt(err, errlen, SY_ESTORE, "store %s: format version %u "
                     "(this program reads %u) was written by an older "
                     "switchyard and is not converted; drain it with that "
                     "version (or move it away) and start on an empty "
                     "store", dir, ver, STORE_FORMAT_VERSION);
}

/* Opens the named databases; on a new store creates them and writes the
   format record.  A store lacking them is not ours (or is damaged). */
static int store_open_layout(store_t *s, bool fresh, const char *dir,
                             char *err, size_t errlen)
{
    MDB_txn *t;
    int rc = mdb_txn_begin(s->env, NULL, 0, &t);
    if (rc)
        return syerr_fmt(err, errlen, SY_ESTORE, "store %s: cannot begin: %s",
                         dir, mdb_strerror(rc));
    if (!fresh) {
        /* An LMDB file holding nothing at all (a first start that died
           before its first commit) is as good as none. */
        MDB_dbi main_dbi;
        MDB_stat st;
        if (mdb_dbi_open(t, NULL, 0, &main_dbi) == 0
            && mdb_stat(t, main_dbi, &st) == 0 && st.ms_entries == 0)
            fresh = true;
    }
    rc = mdb_dbi_open(t, "meta", fresh ? MDB_CREATE : 0, &s->db_meta);
    if (rc == 0 && !fresh) {
        int src = store_check_format(s, t, err, errlen, dir);
        if (src) {
            mdb_txn_abort(t);
            return src;
        }
    }
    if (rc == 0)
        rc = store_open_dbs(s, t, fresh);
    if (rc) {
        mdb_txn_abort(t);
        return syerr_fmt(err, errlen, SY_ESTORE, "store %s: not a switchyard "
                         "store or damaged (%s)", dir, mdb_strerror(rc));
    }
    if (fresh) {
        uint32_t ver = STORE_FORMAT_VERSION;
        MDB_val k = { 6, "format" }, v = { sizeof(ver), &ver };
        rc = mdb_put(t, s->db_meta, &k, &v, 0);
        if (rc) {
            mdb_txn_abort(t);
            return syerr_fmt(err, errlen, SY_ESTORE, "store %s: cannot "
                             "write: %s", dir, mdb_strerror(rc));
        }
    }
    rc = mdb_txn_commit(t);
    if (rc)
        return syerr_fmt(err, errlen, SY_ESTORE, "store %s: cannot commit: "
                         "%s", dir, mdb_strerror(rc));
    return 0;
}

/* Reads the lease and the record of an in-flight message. */
static int store_get_lease_rec(store_t *s, MDB_txn *t, const uint8_t *id,
                               store_rec_t *r)
{
    int rc = store_rec_get(s, t, id, r);
    if (rc)
        return rc == SY_ENOTFOUND ? SY_ESTORE : rc;
    return store_lease_get(s, t, id, r);
}

/* store_drain_fn of the recovery: one in-flight message comes back,
   judged at the moment it was taken. */
static int store_recover_one(store_t *s, MDB_txn *t, const uint8_t *id,
                             void *arg)
{
    (void) arg;
    store_rec_t r;
    int rc = store_get_lease_rec(s, t, id, &r);
    return rc ? rc : store_return(s, t, id, &r, 0, r.f.changed_ms);
}

/* Everything in flight when the last broker stopped comes back. */
static int store_recover_leases(store_t *s, size_t *n)
{
    store_range_t g = { .dbi = s->db_inflight };
    *n = 0;
    return store_drain_all(s, &g, store_recover_one, NULL, n);
}

static bool store_file_has_data(const char *dir)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    return stat(path, &st) == 0 && st.st_size > 0;
}

static int store_prepare_dir(const char *dir, char *err, size_t errlen)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return syerr_fmt(err, errlen, SY_ESTORE, "store %s: cannot create "
                         "directory: %s", dir, strerror(errno));
    if (access(dir, R_OK | W_OK | X_OK) != 0)
        return syerr_fmt(err, errlen, SY_ESTORE, "store %s: cannot read and "
                         "write the directory: %s", dir, strerror(errno));
    char path[4096];
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    if (access(path, F_OK) == 0 && access(path, R_OK | W_OK) != 0)
        return syerr_fmt(err, errlen, SY_ESTORE, "store %s: cannot read and "
                         "write data.mdb: %s", dir, strerror(errno));
    return 0;
}

static const char *store_open_why(int rc)
{
    switch (rc) {
    case MDB_INVALID:          return "data.mdb is not an LMDB file "
                                      "(corrupt or foreign)";
    case MDB_VERSION_MISMATCH: return "data.mdb was written by an "
                                      "incompatible LMDB version";
    case MDB_CORRUPTED:        return "data.mdb is corrupt";
    case MDB_PANIC:            return "LMDB panicked reading data.mdb";
    default:                   return mdb_strerror(rc);
    }
}

static int store_env_open(store_t *s, const store_opts_t *o, char *err,
                          size_t errlen)
{
    uint64_t map = o->map_size ? o->map_size : STORE_DEFAULT_MAP_SIZE;
    map = (map + 4095) & ~(uint64_t) 4095;
    int rc = mdb_env_create(&s->env);
    if (rc == 0)
        rc = mdb_env_set_mapsize(s->env, (size_t) map);
    if (rc == 0)
        rc = mdb_env_set_maxdbs(s->env, STORE_MAXDBS);
    unsigned flags = o->sync == STORE_SYNC_NONE ? MDB_NOSYNC : 0;
    if (rc == 0)
        rc = mdb_env_open(s->env, o->dir, flags, 0600);
    if (rc) {
        return syerr_fmt(err, errlen, rc == ENOMEM ? SY_ENOMEM : SY_ESTORE,
                         "store %s: cannot open: %s", o->dir,
                         store_open_why(rc));
    }
    int dead = 0;
    mdb_reader_check(s->env, &dead);
    MDB_stat st;
    mdb_env_stat(s->env, &st);
    s->psize = st.ms_psize;
    return 0;
}

int store_open(const store_opts_t *opts, store_t **out, char *err,
               size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    if (!opts || !opts->dir || !opts->dir[0] || !out) {
        return syerr_fmt(err, errlen, SY_EINVAL, "store: no directory given");
    }
    *out = NULL;
    int rc = store_prepare_dir(opts->dir, err, errlen);
    if (rc)
        return rc;
    bool fresh = !store_file_has_data(opts->dir);
    store_t *s = calloc(1, sizeof(*s));
    if (!s)
        return SY_ENOMEM;
    s->max_attempts = opts->max_attempts ? opts->max_attempts
                                         : STORE_DEFAULT_MAX_ATTEMPTS;
    s->attempts_fn = opts->attempts_fn;
    s->attempts_arg = opts->attempts_arg;
    s->dedup_window_ms = opts->dedup_window_ms
                       ? opts->dedup_window_ms : STORE_DEFAULT_DEDUP_WINDOW_MS;
    s->reserve_pct = opts->reserve_pct ? opts->reserve_pct
                                       : STORE_RESERVE_PCT;
    if (s->reserve_pct > 90)
        s->reserve_pct = 90;
    rc = store_env_open(s, opts, err, errlen);
    if (rc == 0)
        rc = store_open_layout(s, fresh, opts->dir, err, errlen);
    size_t back = 0;
    if (rc == 0) {
        rc = store_recover_leases(s, &back);
        if (rc)
            syerr_fmt(err, errlen, rc, "store %s: cannot return in-flight "
                      "messages: %s", opts->dir, syerr_name(rc));
    }
    if (rc) {
        store_destroy(&s);
        return rc == SY_ENOMEM ? rc : SY_ESTORE;
    }
    if (back)
        sylog_info("store: %zu in-flight message(s) made ready again", back);
    *out = s;
    return 0;
}

void store_destroy(store_t **pp)
{
    if (!pp || !*pp)
        return;
    store_t *s = *pp;
    if (s->env)
        mdb_env_close(s->env);
    free(s);
    *pp = NULL;
}

/* ------------------------------------------------------------ room */

/* Pages held by LMDB's freelist (reusable), counted from its records as
   of the last commit.  LMDB lets only a read transaction look at the
   freelist, so this opens one beside the caller's write transaction. */
static uint64_t store_freelist_pages(store_t *s)
{
    MDB_txn *t;
    MDB_cursor *c;
    uint64_t pages = 0;
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &t))
        return 0;
    if (mdb_cursor_open(t, 0, &c)) {
        mdb_txn_abort(t);
        return 0;
    }
    MDB_val k, v;
    int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    while (rc == 0) {
        if (v.mv_size >= sizeof(size_t)) {
            size_t cnt;
            memcpy(&cnt, v.mv_data, sizeof(cnt));
            pages += cnt;
        }
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    mdb_txn_abort(t);
    return pages;
}

/* Bytes puts may use before the reserve: the untouched tail of the map
   (and, when count_free, the freelist) less the reserve. */
static uint64_t store_room(store_t *s, bool count_free)
{
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    uint64_t pages = info.me_mapsize / s->psize;
    uint64_t used = (uint64_t) info.me_last_pgno + 1;
    uint64_t freep = pages > used ? pages - used : 0;
    if (count_free)
        freep += store_freelist_pages(s);
    uint64_t reserve = 0;
    if (s->reserve_pct >= 0) {
        reserve = pages * (uint64_t) s->reserve_pct / 100;
        if (reserve < STORE_RESERVE_MIN_PAGES)
            reserve = STORE_RESERVE_MIN_PAGES;
    }
    return freep > reserve ? (freep - reserve) * s->psize : 0;
}

/* A generous guess of the bytes one put costs in the map: the value in
   overflow pages when large, else twice the bytes (half-full pages), plus
   the index entries. */
static uint64_t store_put_cost(const store_t *s, const store_put_t *p)
{
    uint64_t data = 4 + p->header_len + p->body_len;
    uint64_t cost = data > s->psize / 2
                  ? (data + 16 + s->psize - 1) / s->psize * s->psize
                  : 2 * data;
    return cost + 8 * (STORE_NAME_MAX + 64)
         + (p->key ? 4 * strlen(p->key) : 0);
}

/* ------------------------------------------------------------ batches */

int store_txn_begin(store_t *s, uint64_t now_ms, store_txn_t **out)
{
    if (!s || !out)
        return SY_EINVAL;
    *out = NULL;
    store_txn_t *x = calloc(1, sizeof(*x));
    if (!x)
        return SY_ENOMEM;
    int rc = store_wbegin(s, &x->txn);
    if (rc) {
        free(x);
        return rc;
    }
    x->store = s;
    x->now = now_ms;
    x->budget = store_room(s, false);
    s->txn_open = true;
    *out = x;
    return 0;
}

size_t store_txn_count(const store_txn_t *txn)
{
    return txn ? txn->count : 0;
}

static bool store_put_valid(const store_put_t *p)
{
    return p && store_name_ok(p->service) && p->prio < STORE_PRIOS && p->id
        && (p->header || !p->header_len) && (p->body || !p->body_len)
        && p->header_len <= UINT32_MAX
        && (!p->key || (p->key[0] && strlen(p->key) <= STORE_KEY_MAX));
}

/* Looks up the dedup record of key; a live one answers DUPLICATE, an
   expired one is removed. */
static int store_dedup_check(store_t *s, MDB_txn *t, const uint8_t *dk,
                             size_t dklen, uint64_t now, uint8_t *first_id)
{
    MDB_val k = { dklen, (void *) dk }, v;
    int rc = mdb_get(t, s->db_dedup, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return store_rc(rc);
    if (v.mv_size != STORE_ID_LEN + 8)
        return SY_ESTORE;
    uint64_t exp = store_get_be64((uint8_t *) v.mv_data + STORE_ID_LEN);
    if (exp > now) {
        if (first_id)
            memcpy(first_id, v.mv_data, STORE_ID_LEN);
        return SY_EDUPLICATE;
    }
    uint8_t ek[8 + STORE_KEYBUF];
    store_be64(ek, exp);
    memcpy(ek + 8, dk, dklen);
    MDB_val e = { 8 + dklen, ek };
    rc = mdb_del(t, s->db_dedupexp, &e, NULL);
    if (rc && rc != MDB_NOTFOUND)
        return store_rc(rc);
    return store_rc(mdb_del(t, s->db_dedup, &k, NULL));
}

static int store_dedup_add(store_t *s, MDB_txn *t, const uint8_t *dk,
                           size_t dklen, const uint8_t *id, uint64_t exp)
{
    uint8_t val[STORE_ID_LEN + 8];
    memcpy(val, id, STORE_ID_LEN);
    store_be64(val + STORE_ID_LEN, exp);
    MDB_val k = { dklen, (void *) dk }, v = { sizeof(val), val };
    int rc = mdb_put(t, s->db_dedup, &k, &v, 0);
    if (rc)
        return store_rc(rc);
    uint8_t ek[8 + STORE_KEYBUF];
    store_be64(ek, exp);
    memcpy(ek + 8, dk, dklen);
    MDB_val e = { 8 + dklen, ek }, z = { 0, NULL };
    return store_rc(mdb_put(t, s->db_dedupexp, &e, &z, 0));
}

/* The body of store_put, inside the nested transaction t. */
static int store_put_in(store_txn_t *x, MDB_txn *t, const store_put_t *p,
                        uint8_t *first_id)
{
    store_t *s = x->store;
    uint8_t dk[STORE_KEYBUF];
    size_t dklen = 0;
    int rc;
    if (p->key) {
        dklen = store_key_named(dk, p->service, p->key, strlen(p->key));
        rc = store_dedup_check(s, t, dk, dklen, x->now, first_id);
        if (rc)
            return rc;
    }
    store_rec_t r;
    memset(&r, 0, sizeof(r));
    r.f.enq_ms = x->now;
    r.f.changed_ms = x->now;
    r.f.ttl_deadline = p->ttl_deadline;
    r.f.state = STORE_READY;
    r.f.prio = p->prio;
    r.f.header_len = (uint32_t) p->header_len;
    store_copy_str(r.service, sizeof(r.service), p->service);
    r.f.service_len = (uint8_t) strlen(r.service);
    /* record, then header and body: one value, written in place */
    size_t off = sizeof(r.f);
    MDB_val k = { STORE_ID_LEN, (void *) p->id };
    MDB_val v = { off + r.f.service_len + p->header_len + p->body_len,
                  NULL };
    rc = mdb_put(t, s->db_msgs, &k, &v, MDB_RESERVE | MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) {
        if (first_id)
            memcpy(first_id, p->id, STORE_ID_LEN);
        return SY_EDUPLICATE;
    }
    if (rc)
        return store_rc(rc);
    uint8_t *d = v.mv_data;
    memcpy(d, &r.f, off);
    memcpy(d + off, r.service, r.f.service_len);
    off += r.f.service_len;
    if (p->header_len)
        memcpy(d + off, p->header, p->header_len);
    if (p->body_len)
        memcpy(d + off + p->header_len, p->body, p->body_len);
    rc = store_index(s, t, &r, p->id, true);
    if (rc == 0 && p->key) {
        uint64_t win = p->dedup_window_ms ? p->dedup_window_ms
                                          : s->dedup_window_ms;
        rc = store_dedup_add(s, t, dk, dklen, p->id, x->now + win);
    }
    return rc;
}

/* Runs one put in a nested transaction: whatever fails is undone alone. */
static int store_put_nested(store_txn_t *x, const store_put_t *p,
                            uint8_t *first_id)
{
    MDB_txn *t;
    /* the child reads and writes the counters in the database; a flush
       that fails has written into the batch: it is spoiled */
    int rc = store_statc_flush(x->store);
    if (rc) {
        x->spoiled = rc;
        sylog_error("store: counters not written, batch dropped: %s",
                    syerr_name(rc));
        return x->spoiled;
    }
    rc = mdb_txn_begin(x->store->env, x->txn, 0, &t);
    if (rc) {
        sylog_error("store: cannot begin a nested transaction: %s",
                    mdb_strerror(rc));
        return rc == ENOMEM ? SY_ENOMEM : SY_EINTERNAL;
    }
    rc = store_put_in(x, t, p, first_id);
    if (rc) {
        mdb_txn_abort(t);
        return rc;
    }
    rc = mdb_txn_commit(t);
    return rc ? store_rc(rc) : 0;
}

int store_put(store_txn_t *x, const store_put_t *p,
              uint8_t first_id[STORE_ID_LEN])
{
    if (!x || !store_put_valid(p))
        return SY_EINVAL;
    if (x->spoiled)
        return x->spoiled;
    uint64_t cost = store_put_cost(x->store, p);
    if (cost > x->budget && !x->freelist_counted) {
        /* Near the end of the map: count the reusable pages too. */
        x->freelist_counted = true;
        x->budget = store_room(x->store, true);
    }
    if (cost > x->budget)
        return SY_EQUEUE_FULL;
    /* A nested transaction costs LMDB a large allocation per put: use it
       only near the end of the map (or with no reserve), where a put may
       really not fit. */
    bool nested = x->freelist_counted || x->store->reserve_pct < 0;
    int rc = nested ? store_put_nested(x, p, first_id)
                    : store_put_in(x, x->txn, p, first_id);
    if (rc == 0) {
        x->count++;
        x->budget -= cost;
        return 0;
    }
    if (rc == SY_EDUPLICATE)
        return rc;                 /* found before anything was written */
    if (rc == SY_ENOTFOUND || rc == SY_ESTORE)
        rc = SY_EINTERNAL;
    if (!nested) {
        /* Part of the put may be in the batch: the batch is spoiled. */
        x->spoiled = rc;
        sylog_error("store: put failed, batch dropped: %s", syerr_name(rc));
    } else if (rc != SY_EQUEUE_FULL) {
        sylog_error("store: put failed: %s", syerr_name(rc));
    }
    return rc;
}

/* Removes up to max dedup records whose window closed by now. */
static int store_dedup_prune(store_t *s, MDB_txn *t, uint64_t now,
                             size_t max)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(t, s->db_dedupexp, &c);
    if (rc)
        return store_rc(rc);
    for (size_t i = 0; i < max; i++) {
        MDB_val k, v;
        rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            break;
        }
        if (rc)
            break;
        if (k.mv_size <= 8 || store_get_be64(k.mv_data) > now)
            break;
        MDB_val dk = { k.mv_size - 8, (uint8_t *) k.mv_data + 8 };
        rc = mdb_del(t, s->db_dedup, &dk, NULL);
        if (rc && rc != MDB_NOTFOUND)
            break;
        rc = mdb_cursor_del(c, 0);
        if (rc)
            break;
    }
    mdb_cursor_close(c);
    return store_rc(rc);
}

/* Prunes expired dedup records as part of the batch; near the end of the
   map in a nested transaction, so that running out of pages here costs
   only the pruning. */
static int store_txn_prune(store_txn_t *x)
{
    size_t max = STORE_PRUNE_MIN + 2 * x->count;
    if (!x->freelist_counted && x->store->reserve_pct >= 0)
        return store_dedup_prune(x->store, x->txn, x->now, max);
    MDB_txn *t;
    if (mdb_txn_begin(x->store->env, x->txn, 0, &t))
        return 0;
    if (store_dedup_prune(x->store, t, x->now, max) || mdb_txn_commit(t))
        mdb_txn_abort(t);
    return 0;
}

int store_txn_commit(store_txn_t **pp)
{
    if (!pp || !*pp)
        return SY_EINVAL;
    store_txn_t *x = *pp;
    *pp = NULL;
    x->store->txn_open = false;
    int rc = x->spoiled;
    if (rc == 0)
        rc = store_txn_prune(x);
    rc = store_wend(x->store, x->txn, rc);
    free(x);
    return rc == SY_EQUEUE_FULL || rc == 0 ? rc : SY_EIO;
}

void store_txn_abort(store_txn_t **pp)
{
    if (!pp || !*pp)
        return;
    store_txn_t *x = *pp;
    x->store->txn_open = false;
    store_wend(x->store, x->txn, SY_ECLOSED);
    free(x);
    *pp = NULL;
}

/* ------------------------------------------------------------ delivery */

void store_msg_clear(store_msg_t *m)
{
    if (!m)
        return;
    free(m->data);
    memset(m, 0, sizeof(*m));
}

/* Points the view m at the stored bytes of id (inside the map: valid
   until the transaction's next write), with the fields of r (the record
   as it stands).  m->data stays NULL. */
static int store_msg_view(store_t *s, MDB_txn *t, const uint8_t *id,
                          const store_rec_t *r, store_msg_t *m)
{
    MDB_val k = { STORE_ID_LEN, (void *) id }, v;
    int rc = mdb_get(t, s->db_msgs, &k, &v);
    if (rc)
        return rc == MDB_NOTFOUND ? SY_ESTORE : store_rc(rc);
    store_rec_fixed_t f;
    if (v.mv_size < sizeof(f))
        return SY_ESTORE;
    memcpy(&f, v.mv_data, sizeof(f));
    size_t meta = sizeof(f) + f.service_len + f.reason_len;
    if (v.mv_size < meta || v.mv_size - meta < f.header_len)
        return SY_ESTORE;
    memset(m, 0, sizeof(*m));
    memcpy(m->id, id, STORE_ID_LEN);
    m->prio = r->f.prio;
    m->attempt = r->f.attempt;
    m->ttl_deadline = r->f.ttl_deadline;
    m->lease_deadline = r->f.state == STORE_INFLIGHT ? r->lease_deadline : 0;
    m->header = (uint8_t *) v.mv_data + meta;
    m->header_len = f.header_len;
    m->body = m->header + f.header_len;
    m->body_len = v.mv_size - meta - f.header_len;
    m->enqueued_ms = f.enq_ms;     /* r of a take knows only the lease */
    return 0;
}

/* Copies the view into m, which then owns its bytes; with head_only the
   header alone (body NULL, body_len kept). */
static int store_msg_copy(const store_msg_t *view, store_msg_t *m, bool head_only)
{
    size_t len = view->header_len + (head_only ? 0 : view->body_len);
    *m = *view;
    m->data = malloc(len ? len : 1);
    if (!m->data) {
        memset(m, 0, sizeof(*m));
        return SY_ENOMEM;
    }
    if (view->header_len)
        memcpy(m->data, view->header, view->header_len);
    m->header = m->data;
    if (head_only) {
        m->body = NULL;
        return 0;
    }
    if (view->body_len)
        memcpy(m->data + view->header_len, view->body, view->body_len);
    m->body = m->data + view->header_len;
    return 0;
}

/* Copies the bytes of id into m (the header only with head_only). */
static int store_msg_fill(store_t *s, MDB_txn *t, const uint8_t *id,
                          const store_rec_t *r, store_msg_t *m, bool head_only)
{
    store_msg_t view;
    int rc = store_msg_view(s, t, id, r, &view);
    return rc ? rc : store_msg_copy(&view, m, head_only);
}

/* store_drain_fn: a DELAYED message whose time came is READY again
   (arg: the time, uint64_t). */
static int store_promote_one(store_t *s, MDB_txn *t, const uint8_t *id,
                             void *arg)
{
    store_rec_t r;
    int rc = store_rec_get(s, t, id, &r);
    if (rc)
        return rc;
    store_rec_t next = r;
    next.f.state = STORE_READY;
    return store_move(s, t, id, &r, &next, *(const uint64_t *) arg);
}

/* Moves the service's DELAYED messages whose time came back to READY
   (bounded: the rest follow on the next take). */
static int store_promote(store_t *s, MDB_txn *t, const char *service,
                         uint64_t now, size_t max)
{
    store_range_t g = { .dbi = s->db_delayed, .service = service,
                        .id_off = 8, .timed = true, .until = now };
    size_t n;
    return store_drain(s, t, &g, max, store_promote_one, &now, &n);
}

/* A ready message as the ready index tells it. */
typedef struct {
    uint8_t  id[STORE_ID_LEN];
    uint8_t  prio;
    uint32_t attempt;
    uint64_t ttl_deadline;
} store_cand_t;

/* Takes a READY message out of its waiting indexes once its ready entry
   is gone (the part of store_index(READY, false) left after it): its ttl
   entry and its count. */
static int store_unready(store_t *s, MDB_txn *t, const char *service,
                         const store_cand_t *o)
{
    if (o->ttl_deadline) {
        uint8_t tk[8 + STORE_ID_LEN];
        store_key_time(tk, o->ttl_deadline, o->id);
        MDB_val k = { sizeof(tk), tk };
        int mrc = mdb_del(t, s->db_ttl, &k, NULL);
        if (mrc)
            return mrc == MDB_NOTFOUND ? SY_ESTORE : store_rc(mrc);
    }
    store_rec_t r;
    r.f.state = STORE_READY;
    r.f.prio = o->prio;
    store_copy_str(r.service, sizeof(r.service), service);
    return store_stat_add(s, t, &r, -1);
}

/* Takes up to max READY entries of service out of the ready index, in
   delivery order, with one seek: each entry is read and deleted by the
   same cursor (no second search), then the message leaves its other
   waiting indexes (store_unready).  The messages are then in no state
   at all: the caller leases or dead-letters each one in the same
   transaction, or spoils it. */
static int store_ready_pop(store_t *s, MDB_txn *t, const char *service,
                           size_t max, store_cand_t *out, size_t *n)
{
    *n = 0;
    MDB_cursor *c;
    int rc = mdb_cursor_open(t, s->db_ready, &c);
    if (rc)
        return store_rc(rc);
    uint8_t kb[STORE_KEYBUF];
    size_t plen = store_key_named(kb, service, NULL, 0);
    MDB_val k = { plen, kb }, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (mrc == 0 && *n < max && store_key_in(&k, service)) {
        store_readyv_t rv;
        const uint8_t *kp = (const uint8_t *) k.mv_data + plen;
        if (k.mv_size != plen + 1 + STORE_ID_LEN || v.mv_size != sizeof(rv)
            || kp[0] >= STORE_PRIOS) {
            rc = SY_ESTORE;
            break;
        }
        store_cand_t *o = &out[*n];
        memcpy(&rv, v.mv_data, sizeof(rv));
        o->prio = kp[0];
        memcpy(o->id, kp + 1, STORE_ID_LEN);
        o->attempt = rv.attempt;
        o->ttl_deadline = rv.ttl_deadline;
        /* the cursor then stands on the next entry; MDB_NEXT reads it */
        mrc = mdb_cursor_del(c, 0);
        if (mrc)
            break;
        (*n)++;
        rc = store_unready(s, t, service, o);
        if (rc)
            break;
        mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (rc == 0 && mrc && mrc != MDB_NOTFOUND)
        rc = store_rc(mrc);
    return rc == SY_ENOTFOUND ? SY_ESTORE : rc;
}

/* Leases one message popped from the ready index (or dead-letters it if
   its ttl passed) and shows it to fn.  *taken says whether fn accepted
   it.  The lease is the in-flight entry written: the record stays as it
   is. */
static int store_take_one(store_t *s, MDB_txn *t, const char *service,
                          const store_cand_t *cand, const char *holder,
                          uint64_t lease_ms, uint64_t now, store_take_fn *fn,
                          void *arg, bool *taken)
{
    *taken = false;
    const uint8_t *id = cand->id;
    store_rec_t r;
    if (cand->ttl_deadline && cand->ttl_deadline <= now) {
        int rc = store_rec_get(s, t, id, &r);
        if (rc)
            return rc == SY_ENOTFOUND ? SY_ESTORE : rc;
        r.f.state = STORE_DEAD;
        store_copy_str(r.reason, sizeof(r.reason), STORE_REASON_EXPIRED);
        return store_settle(s, t, id, &r, now);
    }
    memset(&r.f, 0, sizeof(r.f));
    r.f.state = STORE_INFLIGHT;
    r.f.prio = cand->prio;
    r.f.attempt = cand->attempt + 1;
    r.f.ttl_deadline = cand->ttl_deadline;
    r.f.changed_ms = now;
    r.lease_deadline = now + lease_ms;
    store_copy_str(r.service, sizeof(r.service), service);
    store_copy_str(r.holder, sizeof(r.holder), holder);
    int rc = store_index(s, t, &r, id, true);
    store_msg_t view;
    if (rc == 0)
        rc = store_msg_view(s, t, id, &r, &view);
    if (rc == 0)
        *taken = fn(&view, arg) == 0;
    return rc;
}

/* The take of store_take() and store_txn_take(), inside t. */
static int store_take_in(store_t *s, MDB_txn *t, const char *service,
                         const char *holder, size_t max, uint64_t lease_ms,
                         uint64_t now, store_take_fn *fn, void *arg,
                         size_t *n)
{
    *n = 0;
    if (max == 0)
        return 0;
    int rc = store_promote(s, t, service, now, max + 64);
    store_cand_t cands[STORE_TAKE_CHUNK];
    /* Bounded: each id seen is leased, dead-lettered (ttl) or refused by
       fn, and leaves the ready index either way. */
    for (size_t seen = 0; rc == 0 && *n < max && seen < max + 1024; ) {
        size_t want = max - *n, got = 0;
        if (want > STORE_TAKE_CHUNK)
            want = STORE_TAKE_CHUNK;
        rc = store_ready_pop(s, t, service, want, cands, &got);
        /* a failure leaves popped messages in no state: the caller drops
           (or spoils) the transaction */
        for (size_t i = 0; rc == 0 && i < got; i++, seen++) {
            bool taken = false;
            rc = store_take_one(s, t, service, &cands[i], holder, lease_ms,
                                now, fn, arg, &taken);
            if (taken)
                (*n)++;
        }
        if (got < want)
            break;
    }
    return rc;
}

/* store_take()'s fn: copies each message into the caller's array. */
typedef struct {
    store_msg_t *out;
    size_t       n;
    int          rc;
} store_take_copy_t;

static int store_take_copy(const store_msg_t *m, void *arg)
{
    store_take_copy_t *c = arg;
    if (c->rc)
        return c->rc;
    c->rc = store_msg_copy(m, &c->out[c->n], false);
    if (c->rc == 0)
        c->n++;
    return c->rc;
}

int store_take(store_t *s, const char *service, const char *holder,
               size_t max, uint64_t lease_ms, uint64_t now_ms,
               store_msg_t *out, size_t *n)
{
    if (!s || !store_name_ok(service) || !store_name_ok(holder)
        || (max && !out) || !n)
        return SY_EINVAL;
    *n = 0;
    MDB_txn *t;
    int rc = store_wbegin(s, &t);
    if (rc)
        return rc;
    store_take_copy_t c = { out, 0, 0 };
    size_t got = 0;
    rc = store_take_in(s, t, service, holder, max, lease_ms, now_ms,
                       store_take_copy, &c, &got);
    if (rc == 0)
        rc = c.rc;                 /* out of memory: nothing is taken */
    rc = store_wend(s, t, rc);
    if (rc) {
        for (size_t i = 0; i < c.n; i++)
            store_msg_clear(&out[i]);
        return rc;
    }
    *n = c.n;
    return 0;
}

/* Reads id's lease and record and checks that it is in flight (for
   holder, when holder is not NULL). */
static int store_get_inflight(store_t *s, MDB_txn *t, const uint8_t *id,
                              const char *holder, store_rec_t *r)
{
    store_rec_t l;
    memset(&l.f, 0, sizeof(l.f));
    int rc = store_lease_get(s, t, id, &l);
    if (rc)
        return rc;
    if (holder && strcmp(holder, l.holder) != 0)
        return SY_ENOTFOUND;
    return store_get_lease_rec(s, t, id, r);
}

/* Acks one id: the lease entry (checked against holder) and the record
   go.  Only the lease is read; the record is deleted unread.  The lease
   is found once, by a cursor that then deletes it where it stands (a
   delete by key would search the tree again). */
static int store_ack_one(store_t *s, MDB_txn *t, const uint8_t *id,
                         const char *holder)
{
    store_rec_t r;
    memset(&r.f, 0, sizeof(r.f));
    MDB_cursor *c;
    int rc = store_rc(mdb_cursor_open(t, s->db_inflight, &c));
    if (rc)
        return rc;
    MDB_val k = { STORE_ID_LEN, (void *) id }, v;
    rc = store_rc(mdb_cursor_get(c, &k, &v, MDB_SET_KEY));
    if (rc == 0)
        rc = store_lease_decode(&v, &r);
    if (rc == 0 && holder && strcmp(holder, r.holder) != 0)
        rc = SY_ENOTFOUND;
    if (rc == 0)
        rc = store_rc(mdb_cursor_del(c, 0));
    mdb_cursor_close(c);
    if (rc)
        return rc;                 /* SY_ENOTFOUND: nothing was written */
    rc = store_stat_add(s, t, &r, -1);
    if (rc)
        return rc;
    k.mv_size = STORE_ID_LEN;
    k.mv_data = (void *) id;
    rc = mdb_del(t, s->db_msgs, &k, NULL);
    return rc == MDB_NOTFOUND ? SY_ESTORE : store_rc(rc);
}

/* Acks n ids in the write transaction t; holders[i] (or holder, when
   holders is NULL) names each one's holder.  A late ack (SY_ENOTFOUND) is
   a result, not a failure. */
static int store_ack_in(store_t *s, MDB_txn *t,
                        const uint8_t (*ids)[STORE_ID_LEN],
                        const char *const *holders, const char *holder,
                        size_t n, int *rcs)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *h = holders ? holders[i] : holder;
        int one = store_ack_one(s, t, ids[i], h);
        if (rcs)
            rcs[i] = one;
        if (one && one != SY_ENOTFOUND)
            rc = one;
    }
    return rc;
}

int store_ack_each(store_t *s, const uint8_t (*ids)[STORE_ID_LEN],
                   const char *const *holders, size_t n, int *rcs)
{
    if (!s || (n && (!ids || !holders)))
        return SY_EINVAL;
    MDB_txn *t;
    int rc = store_wbegin(s, &t);
    if (rc)
        return rc;
    return store_wend(s, t, store_ack_in(s, t, ids, holders, NULL, n, rcs));
}

int store_ack_many(store_t *s, const uint8_t (*ids)[STORE_ID_LEN],
                   size_t n, const char *holder, int *rcs)
{
    if (!s || (n && !ids))
        return SY_EINVAL;
    MDB_txn *t;
    int rc = store_wbegin(s, &t);
    if (rc)
        return rc;
    return store_wend(s, t, store_ack_in(s, t, ids, NULL, holder, n, rcs));
}

int store_ack(store_t *s, const uint8_t id[STORE_ID_LEN], const char *holder)
{
    if (!id)
        return SY_EINVAL;
    int one = 0;
    int rc = store_ack_many(s, (const uint8_t (*)[STORE_ID_LEN]) id, 1,
                            holder, &one);
    return rc ? rc : one;
}

/* The nack of store_nack() and store_txn_nack(), inside t.  SY_ENOTFOUND
   is found before anything is written. */
static int store_nack_in(store_t *s, MDB_txn *t, const uint8_t *id,
                         const char *holder, const char *reason,
                         bool requeue, uint64_t delay_ms, uint64_t now_ms)
{
    store_rec_t r;
    int rc = store_get_inflight(s, t, id, holder, &r);
    if (rc == 0 && requeue)
        rc = store_return(s, t, id, &r, delay_ms, now_ms);
    else if (rc == 0)
        rc = store_to_dead(s, t, id, &r, reason && reason[0] ? reason
                                                              : "nack",
                           now_ms);
    return rc;
}

int store_nack(store_t *s, const uint8_t id[STORE_ID_LEN], const char *holder,
               const char *reason, bool requeue, uint64_t delay_ms,
               uint64_t now_ms)
{
    if (!s || !id)
        return SY_EINVAL;
    MDB_txn *t;
    int rc = store_wbegin(s, &t);
    if (rc)
        return rc;
    rc = store_nack_in(s, t, id, holder, reason, requeue, delay_ms, now_ms);
    return store_wend(s, t, rc);
}

/* The lease extension of store_extend() and store_txn_extend(). */
static int store_extend_in(store_t *s, MDB_txn *t, const uint8_t *id,
                           const char *holder, uint64_t lease_ms,
                           uint64_t now_ms)
{
    store_rec_t r;
    int rc = store_get_inflight(s, t, id, holder, &r);
    if (rc == 0) {
        /* only the lease entry changes: same state, same counters */
        r.lease_deadline = now_ms + lease_ms;
        rc = store_lease_put(s, t, &r, id);
    }
    return rc;
}

int store_extend(store_t *s, const uint8_t id[STORE_ID_LEN],
                 const char *holder, uint64_t lease_ms, uint64_t now_ms)
{
    if (!s || !id)
        return SY_EINVAL;
    MDB_txn *t;
    int rc = store_wbegin(s, &t);
    if (rc)
        return rc;
    rc = store_extend_in(s, t, id, holder, lease_ms, now_ms);
    return store_wend(s, t, rc);
}

/* One pass over the in-flight records: copies into ids (at most cap) the
   ids of those held by holder or, when holder is NULL, of those whose
   deadline is <= now; *low gets the earliest deadline among the records
   not copied (UINT64_MAX if none). */
static int store_lease_scan(store_t *s, MDB_txn *t, const char *holder,
                            uint64_t now, uint8_t (*ids)[STORE_ID_LEN],
                            size_t cap, size_t *got, uint64_t *low)
{
    *got = 0;
    *low = UINT64_MAX;
    MDB_cursor *c;
    int rc = store_rc(mdb_cursor_open(t, s->db_inflight, &c));
    if (rc)
        return rc;
    size_t hl = holder ? strlen(holder) : 0;
    MDB_val k, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    while (mrc == 0) {
        store_lease_t l;
        if (k.mv_size != STORE_ID_LEN || v.mv_size < sizeof(l)) {
            rc = SY_ESTORE;
            break;
        }
        memcpy(&l, v.mv_data, sizeof(l));
        if (v.mv_size != sizeof(l) + l.service_len + l.holder_len) {
            rc = SY_ESTORE;
            break;
        }
        const uint8_t *h = (const uint8_t *) v.mv_data + sizeof(l)
                         + l.service_len;
        bool match = holder ? l.holder_len == hl && memcmp(h, holder, hl) == 0
                            : l.lease_deadline <= now;
        if (match && *got < cap)
            memcpy(ids[(*got)++], k.mv_data, STORE_ID_LEN);
        else if (l.lease_deadline < *low)
            *low = l.lease_deadline;
        mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    if (rc == 0 && mrc != MDB_NOTFOUND)
        rc = store_rc(mrc);
    mdb_cursor_close(c);
    return rc;
}

/* Returns the in-flight messages ids[0..n) (READY again, or dead
   letters), judged at now -- or, when now is 0, at the moment each was
   taken. */
static int store_return_ids(store_t *s, MDB_txn *t,
                            uint8_t (*ids)[STORE_ID_LEN], size_t n,
                            uint64_t now)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        store_rec_t r;
        rc = store_get_lease_rec(s, t, ids[i], &r);
        if (rc == 0)
            rc = store_return(s, t, ids[i], &r, 0,
                              now ? now : r.f.changed_ms);
    }
    return rc;
}

#define STORE_SCAN_CHUNK 256        /* ids gathered per pass of a scan */

/* Lease expiry inside t: at most max leases whose deadline passed.  The
   in-flight records are read only when the bound on the earliest lease
   says one may have run out; the last pass sets the bound anew. */
static int store_expire_leases_in(store_t *s, MDB_txn *t, uint64_t now_ms,
                                  size_t max, size_t *n)
{
    *n = 0;
    if (max == 0 || s->lease_low > now_ms)
        return 0;
    uint8_t ids[STORE_SCAN_CHUNK][STORE_ID_LEN];
    uint64_t low = UINT64_MAX;
    int rc = 0;
    while (rc == 0 && *n < max) {
        size_t want = max - *n, got = 0;
        if (want > STORE_SCAN_CHUNK)
            want = STORE_SCAN_CHUNK;
        rc = store_lease_scan(s, t, NULL, now_ms, ids, want, &got, &low);
        if (rc == 0)
            rc = store_return_ids(s, t, ids, got, now_ms);
        if (rc == 0)
            *n += got;
        if (got < want)
            break;
    }
    if (rc == 0) {
        /* a lease this transaction writes later lowers hint_next again */
        s->hint_scanned = true;
        s->hint_next = *n == max ? 0 : low;
    }
    return rc;
}

int store_expire_leases(store_t *s, uint64_t now_ms, size_t max, size_t *n)
{
    size_t done = 0;
    if (n)
        *n = 0;
    if (!s)
        return SY_EINVAL;
    MDB_txn *t;
    int rc = store_wbegin(s, &t);
    if (rc)
        return rc;
    rc = store_wend(s, t, store_expire_leases_in(s, t, now_ms, max, &done));
    if (rc == 0 && n)
        *n = done;
    return rc;
}

/* Everything holder has in flight back to READY, inside t: one pass over
   the in-flight records per STORE_SCAN_CHUNK messages returned.  Each
   keeps its place: "now" for the ttl check is the moment it was taken, as
   nothing tells us the time here. */
static int store_release_in(store_t *s, MDB_txn *t, const char *holder,
                            size_t *n)
{
    *n = 0;
    uint8_t ids[STORE_SCAN_CHUNK][STORE_ID_LEN];
    for (;;) {
        size_t got = 0;
        uint64_t low;
        int rc = store_lease_scan(s, t, holder, 0, ids, STORE_SCAN_CHUNK,
                                  &got, &low);
        if (rc == 0)
            rc = store_return_ids(s, t, ids, got, 0);
        if (rc)
            return rc;
        *n += got;
        if (got < STORE_SCAN_CHUNK)
            return 0;
    }
}

int store_release_holder(store_t *s, const char *holder, size_t *n)
{
    size_t done = 0;
    if (n)
        *n = 0;
    if (!s || !store_name_ok(holder))
        return SY_EINVAL;
    MDB_txn *t;
    int rc = store_wbegin(s, &t);
    if (rc)
        return rc;
    rc = store_wend(s, t, store_release_in(s, t, holder, &done));
    if (rc == 0 && n)
        *n = done;
    return rc;
}

/* store_drain_fn: a waiting message whose ttl passed goes to the
   dead-letter queue (arg: the time, uint64_t). */
static int store_expire_one(store_t *s, MDB_txn *t, const uint8_t *id,
                            void *arg)
{
    store_rec_t r;
    int rc = store_rec_get(s, t, id, &r);
    return rc ? rc : store_to_dead(s, t, id, &r, STORE_REASON_EXPIRED,
                                   *(const uint64_t *) arg);
}

/* ttl expiry of waiting messages inside t. */
static int store_expire_ttl_in(store_t *s, MDB_txn *t, uint64_t now_ms,
                               size_t max, size_t *n)
{
    store_range_t g = { .dbi = s->db_ttl, .id_off = 8, .timed = true,
                        .until = now_ms };
    return store_drain(s, t, &g, max, store_expire_one, &now_ms, n);
}

int store_expire_ttl(store_t *s, uint64_t now_ms, size_t max, size_t *n)
{
    size_t done = 0;
    if (n)
        *n = 0;
    if (!s)
        return SY_EINVAL;
    MDB_txn *t;
    int rc = store_wbegin(s, &t);
    if (rc)
        return rc;
    rc = store_wend(s, t, store_expire_ttl_in(s, t, now_ms, max, &done));
    if (rc == 0 && n)
        *n = done;
    return rc;
}

/* ------------------------------------------------------- the batch's work */

/* A failure after something of the batch may have been written spoils
   the batch: its commit can only fail.  SY_ENOTFOUND is a result (found
   before any write). */
static int store_txn_check(store_txn_t *x, int rc, const char *what)
{
    if (rc && rc != SY_ENOTFOUND && !x->spoiled) {
        x->spoiled = rc;
        sylog_error("store: %s failed, batch dropped: %s", what,
                    syerr_name(rc));
    }
    return rc;
}

int store_txn_take(store_txn_t *x, const char *service, const char *holder,
                   size_t max, uint64_t lease_ms, uint64_t now_ms,
                   store_take_fn *fn, void *arg, size_t *n)
{
    if (!x || !store_name_ok(service) || !store_name_ok(holder) || !fn
        || !n)
        return SY_EINVAL;
    *n = 0;
    if (x->spoiled)
        return x->spoiled;
    int rc = store_take_in(x->store, x->txn, service, holder, max, lease_ms,
                           now_ms, fn, arg, n);
    if (rc)
        *n = 0;
    return store_txn_check(x, rc, "take");
}

int store_txn_ack(store_txn_t *x, const uint8_t id[STORE_ID_LEN],
                  const char *holder)
{
    if (!x || !id)
        return SY_EINVAL;
    if (x->spoiled)
        return x->spoiled;
    int one = 0;
    int rc = store_ack_in(x->store, x->txn,
                          (const uint8_t (*)[STORE_ID_LEN]) id, NULL, holder,
                          1, &one);
    return rc ? store_txn_check(x, rc, "ack") : one;
}

int store_txn_nack(store_txn_t *x, const uint8_t id[STORE_ID_LEN],
                   const char *holder, const char *reason, bool requeue,
                   uint64_t delay_ms, uint64_t now_ms)
{
    if (!x || !id)
        return SY_EINVAL;
    if (x->spoiled)
        return x->spoiled;
    return store_txn_check(x, store_nack_in(x->store, x->txn, id, holder,
                                            reason, requeue, delay_ms,
                                            now_ms), "nack");
}

int store_txn_extend(store_txn_t *x, const uint8_t id[STORE_ID_LEN],
                     const char *holder, uint64_t lease_ms, uint64_t now_ms)
{
    if (!x || !id)
        return SY_EINVAL;
    if (x->spoiled)
        return x->spoiled;
    return store_txn_check(x, store_extend_in(x->store, x->txn, id, holder,
                                              lease_ms, now_ms), "extend");
}

/* The undoing of a lease that was never delivered, inside t. */
static int store_undeliver_in(store_t *s, MDB_txn *t, const uint8_t *id,
                              const char *holder, uint64_t delay_ms,
                              uint64_t now_ms)
{
    store_rec_t r;
    int rc = store_get_inflight(s, t, id, holder, &r);
    if (rc)
        return rc;
    store_rec_t next = r;
    if (next.f.attempt > 0)
        next.f.attempt--;
    if (r.f.ttl_deadline && r.f.ttl_deadline <= now_ms) {
        next.f.state = STORE_DEAD;
        store_copy_str(next.reason, sizeof(next.reason), STORE_REASON_EXPIRED);
    }
    else {
        next.f.state = delay_ms ? STORE_DELAYED : STORE_READY;
        next.f.not_before = delay_ms ? now_ms + delay_ms : 0;
    }
    return store_move(s, t, id, &r, &next, now_ms);
}

int store_txn_undeliver(store_txn_t *x, const uint8_t id[STORE_ID_LEN],
                        const char *holder, uint64_t delay_ms,
                        uint64_t now_ms)
{
    if (!x || !id || !store_name_ok(holder))
        return SY_EINVAL;
    if (x->spoiled)
        return x->spoiled;
    return store_txn_check(x, store_undeliver_in(x->store, x->txn, id, holder,
                                                 delay_ms, now_ms),
                           "undeliver");
}

int store_txn_attempt(store_txn_t *x, const uint8_t id[STORE_ID_LEN],
                      uint32_t *attempt)
{
    if (!x || !id || !attempt)
        return SY_EINVAL;
    if (x->spoiled)
        return x->spoiled;
    store_rec_t r;
    int rc = store_rec_live(x->store, x->txn, id, &r);
    if (rc == 0)
        *attempt = r.f.attempt;
    return rc;
}

int store_txn_release(store_txn_t *x, const char *holder, size_t *n)
{
    size_t done = 0;
    if (n)
        *n = 0;
    if (!x || !store_name_ok(holder))
        return SY_EINVAL;
    if (x->spoiled)
        return x->spoiled;
    int rc = store_txn_check(x, store_release_in(x->store, x->txn, holder,
                                                 &done), "release");
    if (rc == 0 && n)
        *n = done;
    return rc;
}

int store_txn_expire(store_txn_t *x, uint64_t now_ms, size_t max,
                     size_t *leases, size_t *ttls)
{
    size_t a = 0, b = 0;
    if (leases)
        *leases = 0;
    if (ttls)
        *ttls = 0;
    if (!x)
        return SY_EINVAL;
    if (x->spoiled)
        return x->spoiled;
    int rc = store_expire_leases_in(x->store, x->txn, now_ms, max, &a);
    if (rc == 0)
        rc = store_expire_ttl_in(x->store, x->txn, now_ms, max, &b);
    rc = store_txn_check(x, rc, "expiry");
    if (rc == 0) {
        if (leases)
            *leases = a;
        if (ttls)
            *ttls = b;
    }
    return rc;
}

/* ------------------------------------------------------------ dead letters */

static void store_info_from(const store_rec_t *r, const uint8_t *id,
                            store_info_t *info)
{
    memcpy(info->id, id, STORE_ID_LEN);
    info->service = r->service;
    info->state = (store_state_t) r->f.state;
    info->prio = r->f.prio;
    info->attempt = r->f.attempt;
    info->enqueued_ms = r->f.enq_ms;
    info->ttl_deadline = r->f.ttl_deadline;
    info->not_before = r->f.not_before;
    info->lease_deadline = r->lease_deadline;
    info->changed_ms = r->f.changed_ms;
    info->holder = r->holder;
    info->reason = r->reason;
}

/* Calls fn for the ids in the `id_off`-th bytes of keys of dbi that start
   with service \0 (or for every key when service is NULL), read-only. */
static int store_walk(store_t *s, MDB_dbi dbi, const char *service,
                      size_t id_off_after_prefix, size_t max,
                      store_info_fn *fn, void *arg)
{
    MDB_txn *t;
    int rc = store_rbegin(s, &t);
    if (rc)
        return rc;
    MDB_cursor *c;
    rc = mdb_cursor_open(t, dbi, &c);
    if (rc) {
        mdb_txn_abort(t);
        return store_rc(rc);
    }
    uint8_t kb[STORE_KEYBUF];
    size_t plen = service ? store_key_named(kb, service, NULL, 0) : 0;
    MDB_val k = { plen, kb }, v;
    int mrc = mdb_cursor_get(c, &k, &v, service ? MDB_SET_RANGE : MDB_FIRST);
    size_t seen = 0;
    rc = 0;
    while (mrc == 0 && (!max || seen < max)) {
        if (service && !store_key_in(&k, service))
            break;
        if (k.mv_size != plen + id_off_after_prefix + STORE_ID_LEN) {
            rc = SY_ESTORE;
            break;
        }
        store_rec_t r;
        const uint8_t *id = (const uint8_t *) k.mv_data + plen
                          + id_off_after_prefix;
        rc = store_rec_get(s, t, id, &r);
        if (rc)
            break;
        store_info_t info;
        store_info_from(&r, id, &info);
        seen++;
        if (fn(&info, arg))
            break;
        mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    if (rc == 0 && mrc && mrc != MDB_NOTFOUND)
        rc = store_rc(mrc);
    mdb_cursor_close(c);
    mdb_txn_abort(t);
    return rc;
}

int store_dlq_list(store_t *s, const char *service, size_t max,
                   store_info_fn *fn, void *arg)
{
    if (!s || !store_name_ok(service) || !fn)
        return SY_EINVAL;
    return store_walk(s, s->db_dead, service, 0, max, fn, arg);
}

/* A dead letter goes back to READY as if new: attempt 0, no ttl. */
static int store_revive(store_t *s, MDB_txn *t, const uint8_t *id,
                        const store_rec_t *r, uint64_t now)
{
    store_rec_t next = *r;
    next.f.state = STORE_READY;
    next.f.attempt = 0;
    /* Remove the ttl before the move so the READY index gets none. */
    next.f.ttl_deadline = 0;
    return store_move(s, t, id, r, &next, now);
}

int store_dlq_retry(store_t *s, const uint8_t id[STORE_ID_LEN],
                    uint64_t now_ms)
{
    if (!s || !id)
        return SY_EINVAL;
    MDB_txn *t;
    int rc = store_wbegin(s, &t);
    if (rc)
        return rc;
    store_rec_t r;
    rc = store_rec_get(s, t, id, &r);
    if (rc == 0 && r.f.state != STORE_DEAD)
        rc = SY_ENOTFOUND;
    if (rc == 0)
        rc = store_revive(s, t, id, &r, now_ms);
    return store_wend(s, t, rc);
}

/* store_drain_fn of store_dlq_retry_all (arg: the time, uint64_t). */
static int store_revive_one(store_t *s, MDB_txn *t, const uint8_t *id,
                            void *arg)
{
    store_rec_t r;
    int rc = store_rec_get(s, t, id, &r);
    return rc ? rc : store_revive(s, t, id, &r, *(const uint64_t *) arg);
}

/* store_drain_fn of store_purge. */
static int store_delete_one(store_t *s, MDB_txn *t, const uint8_t *id,
                            void *arg)
{
    (void) arg;
    store_rec_t r;
    int rc = store_rec_get(s, t, id, &r);
    return rc ? rc : store_delete(s, t, id, &r);
}

/* Deletes every message of service in dbi, whose keys hold the id
   id_off bytes after the service prefix; *n grows by the count. */
static int store_purge_range(store_t *s, MDB_dbi dbi, const char *service,
                             size_t id_off, size_t *n)
{
    store_range_t g = { .dbi = dbi, .service = service, .id_off = id_off };
    return store_drain_all(s, &g, store_delete_one, NULL, n);
}

int store_dlq_retry_all(store_t *s, const char *service, uint64_t now_ms,
                        size_t *n)
{
    size_t done = 0;
    if (n)
        *n = 0;
    if (!s || !store_name_ok(service))
        return SY_EINVAL;
    store_range_t g = { .dbi = s->db_dead, .service = service };
    int rc = store_drain_all(s, &g, store_revive_one, &now_ms, &done);
    if (n)
        *n = done;
    return rc;
}

int store_dlq_purge_id(store_t *s, const uint8_t id[STORE_ID_LEN])
{
    if (!s || !id)
        return SY_EINVAL;
    MDB_txn *t;
    int rc = store_wbegin(s, &t);
    if (rc)
        return rc;
    store_rec_t r;
    rc = store_rec_get(s, t, id, &r);
    if (rc == 0 && r.f.state != STORE_DEAD)
        rc = SY_ENOTFOUND;
    if (rc == 0)
        rc = store_delete(s, t, id, &r);
    return store_wend(s, t, rc);
}

int store_purge(store_t *s, const char *service, bool ready, size_t *n)
{
    size_t done = 0;
    if (n)
        *n = 0;
    if (!s || !store_name_ok(service))
        return SY_EINVAL;
    int rc;
    if (ready) {
        rc = store_purge_range(s, s->db_ready, service, 1, &done);
        if (rc == 0)
            rc = store_purge_range(s, s->db_delayed, service, 8, &done);
    } else {
        rc = store_purge_range(s, s->db_dead, service, 0, &done);
    }
    if (n)
        *n = done;
    return rc;
}

/* ------------------------------------------------------------ views */

/* Time of the oldest READY message of service (0 if none): the smallest
   id time over the first entry of each priority. */
static int store_oldest(store_t *s, MDB_txn *t, const char *service,
                        uint64_t *oldest)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(t, s->db_ready, &c);
    if (rc)
        return store_rc(rc);
    *oldest = 0;
    uint8_t kb[STORE_KEYBUF];
    for (uint8_t p = 0; p < STORE_PRIOS; p++) {
        size_t plen = store_key_named(kb, service, &p, 1);
        MDB_val k = { plen, kb }, v;
        rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        if (rc == MDB_NOTFOUND)
            break;
        if (rc)
            break;
        if (k.mv_size != plen + STORE_ID_LEN || memcmp(k.mv_data, kb, plen))
            continue;
        uint64_t ms = store_id_ms((uint8_t *) k.mv_data + plen);
        if (!*oldest || ms < *oldest)
            *oldest = ms;
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : store_rc(rc);
}

static void store_counts_from(const store_stat_t *st, store_counts_t *out)
{
    memset(out, 0, sizeof(*out));
    for (int p = 0; p < STORE_PRIOS; p++)
        out->ready[p] = st->ready[p];
    out->delayed = st->delayed;
    out->inflight = st->inflight;
    out->dead = st->dead;
}

int store_counts(store_t *s, const char *service, store_counts_t *out)
{
    if (!s || !store_name_ok(service) || !out)
        return SY_EINVAL;
    MDB_txn *t;
    int rc = store_rbegin(s, &t);
    if (rc)
        return rc;
    store_stat_t st;
    rc = store_stat_get(s, t, service, &st);
    if (rc == 0) {
        store_counts_from(&st, out);
        rc = store_oldest(s, t, service, &out->oldest_ms);
    }
    mdb_txn_abort(t);
    return rc;
}

int store_services(store_t *s, store_service_fn *fn, void *arg)
{
    if (!s || !fn)
        return SY_EINVAL;
    MDB_txn *t;
    int rc = store_rbegin(s, &t);
    if (rc)
        return rc;
    MDB_cursor *c;
    rc = mdb_cursor_open(t, s->db_stats, &c);
    if (rc) {
        mdb_txn_abort(t);
        return store_rc(rc);
    }
    MDB_val k, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    rc = 0;
    while (mrc == 0) {
        char name[STORE_NAME_MAX + 1];
        if (k.mv_size == 0 || k.mv_size > STORE_NAME_MAX
            || v.mv_size != sizeof(store_stat_t)) {
            rc = SY_ESTORE;
            break;
        }
        memcpy(name, k.mv_data, k.mv_size);
        name[k.mv_size] = 0;
        store_stat_t st;
        memcpy(&st, v.mv_data, sizeof(st));
        store_counts_t counts;
        store_counts_from(&st, &counts);
        rc = store_oldest(s, t, name, &counts.oldest_ms);
        if (rc || fn(name, &counts, arg))
            break;
        mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    if (rc == 0 && mrc && mrc != MDB_NOTFOUND)
        rc = store_rc(mrc);
    mdb_cursor_close(c);
    mdb_txn_abort(t);
    return rc;
}

int store_peek(store_t *s, const char *service, size_t max,
               store_msg_t *out, size_t *n)
{
    if (!s || !store_name_ok(service) || (max && !out) || !n)
        return SY_EINVAL;
    *n = 0;
    MDB_txn *t;
    int rc = store_rbegin(s, &t);
    if (rc)
        return rc;
    MDB_cursor *c;
    rc = mdb_cursor_open(t, s->db_ready, &c);
    if (rc) {
        mdb_txn_abort(t);
        return store_rc(rc);
    }
    uint8_t kb[STORE_KEYBUF];
    size_t plen = store_key_named(kb, service, NULL, 0);
    MDB_val k = { plen, kb }, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    size_t got = 0;
    rc = 0;
    while (mrc == 0 && got < max && store_key_in(&k, service)) {
        if (k.mv_size != plen + 1 + STORE_ID_LEN) {
            rc = SY_ESTORE;
            break;
        }
        const uint8_t *id = (const uint8_t *) k.mv_data + plen + 1;
        store_rec_t r;
        rc = store_rec_get(s, t, id, &r);
        if (rc == 0)
            rc = store_msg_fill(s, t, id, &r, &out[got], true);
        if (rc)
            break;
        got++;
        mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    if (rc == 0 && mrc && mrc != MDB_NOTFOUND)
        rc = store_rc(mrc);
    mdb_cursor_close(c);
    mdb_txn_abort(t);
    if (rc) {
        for (size_t i = 0; i < got; i++)
            store_msg_clear(&out[i]);
        return rc;
    }
    *n = got;
    return 0;
}

/* One in-flight message as store_inflight_list sorts them. */
typedef struct {
    uint64_t deadline;
    uint8_t  id[STORE_ID_LEN];
} store_due_t;

static int store_due_cmp(const void *a, const void *b)
{
    const store_due_t *x = a, *y = b;
    if (x->deadline != y->deadline)
        return x->deadline < y->deadline ? -1 : 1;
    return memcmp(x->id, y->id, STORE_ID_LEN);
}

/* Gathers the in-flight entries (of service, or all) in one read pass. */
static int store_due_list(store_t *s, MDB_txn *t, const char *service,
                          store_due_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    MDB_cursor *c;
    int rc = store_rc(mdb_cursor_open(t, s->db_inflight, &c));
    if (rc)
        return rc;
    size_t sl = service ? strlen(service) : 0, cap = 0;
    MDB_val k, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    while (mrc == 0) {
        store_lease_t l;
        if (k.mv_size != STORE_ID_LEN || v.mv_size < sizeof(l)) {
            rc = SY_ESTORE;
            break;
        }
        memcpy(&l, v.mv_data, sizeof(l));
        const uint8_t *sv = (const uint8_t *) v.mv_data + sizeof(l);
        bool mine = !service || (l.service_len == sl
                                 && v.mv_size >= sizeof(l) + sl
                                 && memcmp(sv, service, sl) == 0);
        if (mine && *n == cap) {
            size_t ncap = cap ? 2 * cap : 64;
            void *p = realloc(*out, ncap * sizeof(**out));
            if (!p) {
                rc = SY_ENOMEM;
                break;
            }
            *out = p;
            cap = ncap;
        }
        if (mine) {
            (*out)[*n].deadline = l.lease_deadline;
            memcpy((*out)[(*n)++].id, k.mv_data, STORE_ID_LEN);
        }
        mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    if (rc == 0 && mrc != MDB_NOTFOUND)
        rc = store_rc(mrc);
    mdb_cursor_close(c);
    if (rc) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

int store_inflight_list(store_t *s, const char *service, store_info_fn *fn,
                        void *arg)
{
    if (!s || !fn || (service && !store_name_ok(service)))
        return SY_EINVAL;
    MDB_txn *t;
    int rc = store_rbegin(s, &t);
    if (rc)
        return rc;
    store_due_t *due;
    size_t n;
    rc = store_due_list(s, t, service, &due, &n);
    if (rc == 0 && n > 1)
        qsort(due, n, sizeof(*due), store_due_cmp);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        store_rec_t r;
        rc = store_get_lease_rec(s, t, due[i].id, &r);
        if (rc)
            break;
        store_info_t info;
        store_info_from(&r, due[i].id, &info);
        if (fn(&info, arg))
            break;
    }
    free(due);
    mdb_txn_abort(t);
    return rc;
}

int store_get(store_t *s, const uint8_t id[STORE_ID_LEN], store_msg_t *out)
{
    if (!s || !id || !out)
        return SY_EINVAL;
    MDB_txn *t;
    int rc = store_rbegin(s, &t);
    if (rc)
        return rc;
    store_rec_t r;
    rc = store_rec_live(s, t, id, &r);
    if (rc == 0)
        rc = store_msg_fill(s, t, id, &r, out, false);
    mdb_txn_abort(t);
    return rc;
}

/* One cursor of store_place's walk: positioned on the message, moved
   by op (MDB_PREV or MDB_NEXT) while it stays inside prefix (service \0
   prio); `done` once it left it. */
typedef struct {
    MDB_cursor    *c;
    MDB_cursor_op  op;
    uint64_t       steps;
    bool           done;
} store_walker_t;

static int store_walker_open(store_t *s, MDB_txn *t, store_walker_t *w,
                             MDB_cursor_op op, const uint8_t *key, size_t klen)
{
    memset(w, 0, sizeof *w);
    w->op = op;
    int rc = mdb_cursor_open(t, s->db_ready, &w->c);
    if (rc)
        return store_rc(rc);
    MDB_val k = { klen, (void *) key }, v;
    rc = mdb_cursor_get(w->c, &k, &v, MDB_SET);
    return rc == MDB_NOTFOUND ? SY_ESTORE : store_rc(rc);
}

/* One step; counts it if the entry is still inside the prefix. */
static int store_walker_step(store_walker_t *w, const uint8_t *prefix,
                             size_t plen)
{
    MDB_val k, v;
    int rc = mdb_cursor_get(w->c, &k, &v, w->op);
    if (rc == MDB_NOTFOUND || (rc == 0 && (k.mv_size != plen + STORE_ID_LEN
                                           || memcmp(k.mv_data, prefix, plen)))) {
        w->done = true;
        return 0;
    }
    if (rc)
        return store_rc(rc);
    w->steps++;
    return 0;
}

/* The number of READY entries of service at prio ahead of key (whose
   prio has `count` entries), counted as store_place() describes.  More
   than cap ahead: *capped, and *ahead is not set. */
static int store_ahead(store_t *s, MDB_txn *t, const uint8_t *key,
                       size_t klen, uint64_t count, uint64_t cap,
                       uint64_t *ahead, bool *capped)
{
    size_t plen = klen - STORE_ID_LEN;          /* service \0 prio */
    store_walker_t back, fwd;
    int rc = store_walker_open(s, t, &back, MDB_PREV, key, klen);
    int frc = store_walker_open(s, t, &fwd, MDB_NEXT, key, klen);
    rc = rc ? rc : frc;
    *capped = false;
    while (rc == 0 && !back.done && !fwd.done) {
        rc = store_walker_step(&back, key, plen);
        if (rc || back.done)
            break;
        if (back.steps > cap) {
            *capped = true;
            break;
        }
        rc = store_walker_step(&fwd, key, plen);
    }
    if (rc == 0 && !*capped) {
        uint64_t n = 0;
        if (back.done)
            n = back.steps;
        else if (fwd.steps < count)
            n = count - 1 - fwd.steps;
        else
            rc = SY_ESTORE;         /* the counter is behind the index */
        if (rc == 0 && n > cap)
            *capped = true;
        else
            *ahead = n;
    }
    if (back.c)
        mdb_cursor_close(back.c);
    if (fwd.c)
        mdb_cursor_close(fwd.c);
    return rc;
}

/* The place of the READY message id (record r) of service: see
   store_place(). */
static int store_place_of(store_t *s, MDB_txn *t, const uint8_t *id,
                          const store_rec_t *r, const store_stat_t *st,
                          uint64_t max_place, store_place_t *out)
{
    uint64_t higher = 0;
    for (uint8_t p = 0; p < r->f.prio; p++)
        higher += st->ready[p];
    if (max_place && higher >= max_place) {
        out->place = max_place;
        out->capped = true;
        return 0;
    }
    uint8_t key[STORE_KEYBUF];
    size_t klen;
    store_state_key(s, r, id, key, &klen);
    uint64_t ahead = 0;
    bool capped = false;
    uint64_t cap = max_place ? max_place - higher - 1 : UINT64_MAX;
    int rc = store_ahead(s, t, key, klen, st->ready[r->f.prio], cap, &ahead,
                         &capped);
    if (rc)
        return rc;
    out->place = capped ? max_place : higher + ahead + 1;
    out->capped = capped;
    return 0;
}

int store_place(store_t *s, const char *service, const uint8_t *id,
                uint64_t max_place, store_place_t *out)
{
    if (!s || !store_name_ok(service) || !out)
        return SY_EINVAL;
    memset(out, 0, sizeof *out);
    MDB_txn *t;
    int rc = store_rbegin(s, &t);
    if (rc)
        return rc;
    store_stat_t st;
    rc = store_stat_get(s, t, service, &st);
    for (int p = 0; rc == 0 && p < STORE_PRIOS; p++)
        out->ready += st.ready[p];
    store_rec_t r;
    if (rc == 0 && id) {
        rc = store_rec_live(s, t, id, &r);
        if (rc == 0 && strcmp(r.service, service) != 0)
            rc = SY_ENOTFOUND;          /* another queue's: not ours */
        if (rc == 0)
            out->state = (store_state_t) r.f.state;
        if (rc == 0 && r.f.state == STORE_READY)
            rc = store_place_of(s, t, id, &r, &st, max_place, out);
        if (rc == SY_ENOTFOUND)
            rc = 0;
    }
    mdb_txn_abort(t);
    return rc;
}

int store_cancel(store_t *s, const char *service,
                 const uint8_t id[STORE_ID_LEN], store_state_t *was)
{
    if (!s || !store_name_ok(service) || !id)
        return SY_EINVAL;
    MDB_txn *t;
    int rc = store_wbegin(s, &t);
    if (rc)
        return rc;
    store_rec_t r;
    rc = store_rec_live(s, t, id, &r);
    if (rc == 0 && strcmp(r.service, service) != 0)
        rc = SY_ENOTFOUND;
    if (rc == 0 && was)
        *was = (store_state_t) r.f.state;
    if (rc == 0 && store_state_waiting(r.f.state))
        rc = store_delete(s, t, id, &r);
    return store_wend(s, t, rc);
}

int store_get_info(store_t *s, const uint8_t id[STORE_ID_LEN],
                   store_info_t *out)
{
    if (!s || !id || !out)
        return SY_EINVAL;
    MDB_txn *t;
    int rc = store_rbegin(s, &t);
    if (rc)
        return rc;
    rc = store_rec_live(s, t, id, &s->info_rec);
    mdb_txn_abort(t);
    if (rc == 0)
        store_info_from(&s->info_rec, id, out);
    return rc;
}

/* ------------------------------------------------------------ meta */

static bool store_meta_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    return n > 0 && n <= STORE_META_NAME_MAX && strcmp(name, "format") != 0;
}

int store_meta_get(store_t *s, const char *name, void *out, size_t cap,
                   size_t *len)
{
    if (!s || !store_meta_name_ok(name) || (!out && cap) || !len)
        return SY_EINVAL;
    MDB_txn *t;
    int rc = store_rbegin(s, &t);
    if (rc)
        return rc;
    MDB_val k = { strlen(name), (void *) name }, v;
    rc = store_rc(mdb_get(t, s->db_meta, &k, &v));
    if (rc == 0) {
        *len = v.mv_size;
        if (v.mv_size > cap)
            rc = SY_ENOSPACE;
        else if (v.mv_size)
            memcpy(out, v.mv_data, v.mv_size);
    }
    mdb_txn_abort(t);
    return rc;
}

int store_meta_put(store_t *s, const char *name, const void *value, size_t len)
{
    if (!s || !store_meta_name_ok(name) || (!value && len)
        || len > STORE_META_VALUE_MAX)
        return SY_EINVAL;
    MDB_txn *t;
    int rc = store_wbegin(s, &t);
    if (rc)
        return rc;
    MDB_val k = { strlen(name), (void *) name }, v = { len, (void *) value };
    return store_wend(s, t, store_rc(mdb_put(t, s->db_meta, &k, &v, 0)));
}

int store_message_count(store_t *s, uint64_t *n)
{
    if (!s || !n)
        return SY_EINVAL;
    MDB_txn *t;
    int rc = store_rbegin(s, &t);
    if (rc)
        return rc;
    MDB_stat st;
    rc = store_rc(mdb_stat(t, s->db_msgs, &st));
    if (rc == 0)
        *n = st.ms_entries;
    mdb_txn_abort(t);
    return rc;
}
