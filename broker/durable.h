/*  durable.h -- the broker's side of the durable queues, without sockets.
 *
 *  Between the loop (broker.c) and the store (store.c) sits this module:
 *
 *  - One batch per loop turn.  Everything durable a turn does goes into
 *    one store batch (one LMDB write transaction, one fsync): the durable
 *    sends read in it (durable_put), the acks, nacks and lease extensions
 *    (durable_ack / durable_nack / durable_extend), the releases of
 *    actors that left, and the takes that lease ready messages to actors
 *    with credit (durable_deliver).  durable_flush() commits it.
 *
 *  - Nothing leaves before the commit.  Only after the commit returned
 *    does durable_flush() hand out, in this order: every receipt owed
 *    (put outcomes in arrival order, and the failures of nacks and lease
 *    extensions), then every delivery taken in the batch, through the
 *    deliver callback.  A commit that fails turns every acceptance of its
 *    batch into that failure (no receipt ever says ok for a message that
 *    is not on disk) and its deliveries come back uncommitted: they are
 *    not sent (the store never leased them; they are still READY).
 *    Why a delivery waits for the commit: sent before its take
 *    committed, it could be acked and the batch still lost, leaving a
 *    message the actor finished but the store never leased.
 *
 *  - Crash semantics, in plain statements: a crash before the commit of
 *    a turn loses that turn's batch and only that: its puts had no
 *    receipt; its takes were never sent; its acks did not happen (those
 *    messages are in flight in the store and come back at restart, to
 *    be delivered again: at-least-once); its nacks and lease extensions
 *    did not happen (the lease was still running; restart returns the
 *    message).  A crash after the commit and before the receipts or the
 *    deliveries went out: the puts are stored (the sender re-sends
 *    without a receipt; with an idempotency key it gets DUPLICATE), the
 *    taken messages are in flight for an actor that never got them and
 *    come back at restart with attempt + 1.  Nothing that had a receipt
 *    is lost at any point.
 *
 *  - One writer.  LMDB has one write transaction at a time and the batch
 *    is one; the calls that need the store outside the batch (views,
 *    operator commands, durable_take) flush first.  A flush in the middle
 *    of a loop turn (an operator's query came, the batch is full) only
 *    makes that turn's commit earlier.
 *
 *  - Per-service settings, read from the configuration on each use:
 *    service/NAME/lease, service/NAME/ttl, service/NAME/max_attempts
 *    (falling back to store/...), and the nack backoff store/retry_backoff
 *    doubled per attempt up to store/retry_backoff_max.
 *
 *  - Encryption at rest: bodies are sealed (common/seal.h, XChaCha20-
 *    Poly1305 bound to the message id) before they reach the store and
 *    opened as they are taken, once each; headers stay readable (the store and
 *    the operator's views need them).  The key file is
 *    security/store_key_dir/store.key (store/dir when that setting is
 *    empty), made at the first start of a store that holds no message;
 *    its fingerprint is kept in the store's meta.  durable_new() refuses
 *    (SY_ECRYPTO, message naming the files) a store with messages whose
 *    key file is missing, and a key file that is not the store's key.  A
 *    record that does not open at delivery is dead-lettered with the
 *    reason "cannot be opened: ..." and never handed to an actor.
 *
 *  What is durable when is the store's promise (store.h): a receipt with
 *  ok:true goes out only after the commit holding its message returned.
 *
 *  Ownership: durable_new() returns a durable_t the caller frees with
 *  durable_destroy(); the configuration is borrowed and must outlive it.
 *  Strings and ids passed in are copied.
 */
#ifndef DURABLE_H
#define DURABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/store.h"
#include "common/config.h"
#include "common/seal.h"
#include "schemas/envelope.h"

#define DURABLE_BATCH   1024     /* puts (and acks) per commit at most */
#define DURABLE_RID_MAX 255

typedef struct durable_t durable_t;

/* What a batch owes someone, handed out after the commit.  The pointers
   are valid during the callback only.  The callback must not call back
   into this module. */
typedef enum {
    DURABLE_RECEIPT_PUT = 1,     /* the outcome of a durable send; always */
    DURABLE_RECEIPT_NACK,        /* a nack that failed (rc != 0 only) */
    DURABLE_RECEIPT_LEASE,       /* a lease extension that failed (rc != 0) */
    DURABLE_RECEIPT_END          /* the receipts of one commit were all
                                    given (only kind is set): a caller that
                                    gathers receipts sends them now */
} durable_receipt_kind_t;

typedef struct {
    const uint8_t *rid;          /* the sender's routing id: rid[0] = length */
    const uint8_t *id;           /* PUT: the message's id (= the stored
                                    id); NACK/LEASE: the request's id */
    const uint8_t *first_id;     /* DUPLICATE: the first message's id */
    const char    *service;      /* PUT: the service */
    int            rc;           /* PUT: 0 stored, SY_EDUPLICATE,
                                    SY_EQUEUE_FULL, SY_EINTERNAL;
                                    NACK/LEASE: SY_ENOTFOUND (not in
                                    flight for holder) or SY_EINTERNAL */
    durable_receipt_kind_t kind;
    const uint8_t *msg_id;       /* NACK/LEASE: the delivery's id */
    const char    *holder;       /* NACK/LEASE: who asked */
} durable_receipt_t;

typedef void (durable_receipt_fn)(const durable_receipt_t *r, void *arg);

/* A delivery taken in a batch, handed out after its commit (committed)
   or after the commit failed (!committed: the store did not lease it;
   do not send it, give its credit back).  body (plaintext, body_len
   bytes) is one malloc() block that also holds the header: the callback
   may take it over by setting body to NULL, and frees it later with
   free(body) (e.g. as the free function of a zero-copy frame); otherwise
   it is freed after the callback.  The other pointers are valid during
   the callback only.  The callback may call durable_ack/nack/extend
   (they go into a new batch, committed by the same flush) but not
   durable_deliver. */
typedef struct {
    const char    *service;
    const char    *holder;       /* the actor its lease is for */
    const uint8_t *id;
    uint32_t       attempt;
    const uint8_t *header;       /* the stored header, as stored */
    size_t         header_len;
    uint8_t       *body;
    size_t         body_len;
    bool           committed;
    bool           fresh;        /* header and body were kept in memory
                                    since the put (fresh.h), not read
                                    back from the store */
} durable_delivery_t;

typedef void (durable_deliver_fn)(durable_delivery_t *dl, void *arg);

/* Opens the store named by the configuration (store/dir, store/map_size,
   store/sync, store/max_attempts, store/dedup_window).  A store that is
   corrupt, of a newer format or unreadable is refused with SY_ESTORE and
   a message naming its path in err; it is never recreated.  Returns 0,
   SY_EINVAL, SY_ENOMEM or SY_ESTORE. */
int durable_new(const config_t *cfg, durable_receipt_fn *receipt_fn,
                void *receipt_arg, durable_t **out, char *err, size_t errlen);

/* Commits what is pending (receipts go out), closes the store, frees
   everything; *pp becomes NULL.  NULL-safe. */
void durable_destroy(durable_t **pp);

/* Sets the callback that gets the deliveries of durable_deliver() after
   each commit.  Without one they are dropped unsent: their leases run
   out and they are delivered again (tests only). */
void durable_set_deliver(durable_t *d, durable_deliver_fn *fn, void *arg);

/* Adds a durable message to the batch: env is its stamped header, hdr
   its encoding, body the body's bytes; rid the sender's routing id.  A
   receipt for it is owed from now on (given at the next flush, also for
   refusals).  now_ms is wall-clock time.  Returns the put's result (0,
   SY_EDUPLICATE, SY_EQUEUE_FULL, SY_EINTERNAL) for logging, and so that
   the caller knows the message is visible to takes of this batch. */
int durable_put(durable_t *d, const uint8_t *rid, const envelope_t *env,
                const uint8_t *hdr, size_t hlen, const void *body,
                size_t blen, uint64_t now_ms);

/* An ack by holder, into the batch.  A late ack (not in flight for
   holder) is only logged. */
void durable_ack(durable_t *d, const uint8_t id[ENVELOPE_ID_LEN],
                 const char *holder);

/* True when a batch is open or something waits for durable_flush(). */
bool durable_pending(const durable_t *d);

/* Commits the batch, then gives the receipts, then the deliveries (see
   above); commits again what the delivery callbacks added (bounded).
   Returns 0 or the first commit's error (already turned into receipts). */
int durable_flush(durable_t *d);

/* Leases up to max ready messages of service to holder in the batch,
   their bodies opened; they reach the deliver callback after the commit.
   *n gets how many (the caller spends that much of holder's credit now,
   and gets it back for a delivery that comes back uncommitted).  A
   message whose body does not open is dead-lettered in the batch (out
   of memory: requeued) and not counted.  Flushes first when the batch
   holds DURABLE_BATCH deliveries already; max above DURABLE_BATCH is
   cut to it.  Returns 0, SY_EINVAL (called from a delivery callback) or
   the store's error (the batch is spoiled: nothing of it will commit). */
int durable_deliver(durable_t *d, const char *service, const char *holder,
                    size_t max, uint64_t now_ms, size_t *n);

/* The directory of the key file for cfg: security/store_key_dir, or
   store/dir when that is empty.  Owned by cfg. */
const char *durable_key_dir(const config_t *cfg);

/* Opens the sealed body of m (as a store call filled it) in place: m's
   bytes are replaced by the header and the plaintext body.  Returns 0,
   SY_ECRYPTO / SY_EVERSION (m unchanged), SY_ENOMEM. */
int durable_open_body(seal_t *seal, store_msg_t *m);

/* Leases up to max ready messages of service to holder at once, in a
   transaction of their own (a flush first), their bodies opened into
   out[] (the caller owns them: store_msg_clear()); for tools and tests.
   A message whose body does not open is dead-lettered (or, out of
   memory, requeued) and left out of out[].  Returns as store_take(). */
int durable_take(durable_t *d, const char *service, const char *holder,
                 size_t max, uint64_t now_ms, store_msg_t *out, size_t *n);

/* A nack by holder, into the batch: requeue with delay_ms when
   has_delay, else with the configured backoff for its attempt; or
   dead-letter with reason.  rid and req_id (the nack's own id) say whom
   to tell when it fails (DURABLE_RECEIPT_NACK after the commit); NULL
   rid: nobody.  Returns the batch's answer (0, SY_ENOTFOUND, ...) for
   logging. */
int durable_nack(durable_t *d, const uint8_t *rid, const uint8_t *req_id,
                 const uint8_t id[ENVELOPE_ID_LEN], const char *holder,
                 const char *reason, bool requeue, bool has_delay,
                 uint64_t delay_ms, uint64_t now_ms);

/* Extends a lease to ms from now, into the batch; failures are owed to
   rid as DURABLE_RECEIPT_LEASE.  Returns as store_txn_extend(). */
int durable_extend(durable_t *d, const uint8_t *rid, const uint8_t *req_id,
                   const uint8_t id[ENVELOPE_ID_LEN], const char *holder,
                   uint64_t ms, uint64_t now_ms);

/* A committed delivery that never reached holder (its send found the
   connection closed or the pipe full, or holder is gone): into the
   batch, the lease is undone and the message waits again (after
   delay_ms when > 0) with its attempt count as before the take -- an
   attempt counts a delivery that went out, not one that was tried.  May
   be called from the deliver callback.  Returns as
   store_txn_undeliver(). */
int durable_undeliver(durable_t *d, const uint8_t id[ENVELOPE_ID_LEN],
                      const char *holder, uint64_t delay_ms, uint64_t now_ms);

/* Everything holder has in flight becomes deliverable again, in the
   batch.  Deliveries to holder taken in this batch (or being handed out)
   are dropped -- never sent, and not handed to the callback -- and come
   back as by durable_undeliver(), without using an attempt; what it
   was really sent comes back with its attempt counted.  *n gets how many
   messages came back.  Returns as store_release_holder(). */
int durable_release(durable_t *d, const char *holder, size_t *n);

/* Timer work, into the batch, bounded by max messages each: leases
   that ran out come back, messages whose ttl passed are dead-lettered.
   *n gets how many changed state.  Returns 0 or SY_EIO. */
int durable_expire(durable_t *d, uint64_t now_ms, size_t max, size_t *n);

/* The store, for read-only views and operator commands; what was pending
   is flushed first. */
store_t *durable_store(durable_t *d);

/* The delay before the next attempt after a nack at attempt (1 = first
   delivery): retry_backoff * 2^(attempt-1), at most retry_backoff_max. */
uint64_t durable_backoff_ms(const durable_t *d, uint32_t attempt);

/* The lease of service's deliveries, ms. */
uint64_t durable_lease_ms(const durable_t *d, const char *service);

#endif
