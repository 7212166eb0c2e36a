/*  durable.h -- the broker's side of the durable queues, without sockets.
 *
 *  Between the loop (broker.c) and the store (store.c) sits this module:
 *
 *  - Group commit with receipts after the commit.  durable_put() adds a
 *    message to the batch of the current loop turn (the first put opens
 *    it) and remembers who is owed a receipt; durable_flush() commits the
 *    batch with one fsync and only then hands every receipt to the
 *    receipt callback, in arrival order.  A commit that fails turns every
 *    acceptance of its batch into that failure: no receipt ever says ok
 *    for a message that is not on disk.
 *
 *  - Grouped acks.  durable_ack() only notes the ack; durable_flush()
 *    applies all the acks noted since the last flush in one transaction
 *    (one fsync), each checked against its own holder.
 *
 *  - One writer.  LMDB has one write transaction at a time and the batch
 *    is one, so every other call here flushes first.  A caller therefore
 *    never sees SY_EINVAL from an open batch, and a flush in the middle of
 *    a loop turn (an actor left, a query came) only makes that turn's
 *    commit earlier.
 *
 *  - Per-service settings, read from the configuration on each use:
 *    service/NAME/lease, service/NAME/ttl, service/NAME/max_attempts
 *    (falling back to store/...), and the nack backoff store/retry_backoff
 *    doubled per attempt up to store/retry_backoff_max.
 *
 *  - Encryption at rest: bodies are sealed (common/seal.h, XChaCha20-
 *    Poly1305 bound to the message id) before they reach the store and
 *    opened after durable_take(); headers stay readable (the store and
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

/* The outcome of one durable send, handed out after the commit.  The
   pointers are valid during the callback only. */
typedef struct {
    const uint8_t *rid;          /* the sender's routing id: rid[0] = length */
    const uint8_t *id;           /* the message's id (= the stored id) */
    const uint8_t *first_id;     /* DUPLICATE: the first message's id */
    const char    *service;
    int            rc;           /* 0 stored, SY_EDUPLICATE, SY_EQUEUE_FULL,
                                    SY_EINTERNAL */
} durable_receipt_t;

typedef void (durable_receipt_fn)(const durable_receipt_t *r, void *arg);

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

/* Adds a durable message to the batch: env is its stamped header, hdr
   its encoding, body the body's bytes; rid the sender's routing id.  A
   receipt for it is owed from now on (given at the next flush, also for
   refusals).  now_ms is wall-clock time.  Returns the put's result (0,
   SY_EDUPLICATE, SY_EQUEUE_FULL, SY_EINTERNAL) for logging only. */
int durable_put(durable_t *d, const uint8_t *rid, const envelope_t *env,
                const uint8_t *hdr, size_t hlen, const void *body,
                size_t blen, uint64_t now_ms);

/* Notes an ack by holder, applied at the next flush. */
void durable_ack(durable_t *d, const uint8_t id[ENVELOPE_ID_LEN],
                 const char *holder);

/* True when puts or acks wait for durable_flush(). */
bool durable_pending(const durable_t *d);

/* Commits the batch, gives the receipts, applies the noted acks.
   Returns 0 or the commit's error (already turned into receipts). */
int durable_flush(durable_t *d);

/* The directory of the key file for cfg: security/store_key_dir, or
   store/dir when that is empty.  Owned by cfg. */
const char *durable_key_dir(const config_t *cfg);

/* Opens the sealed body of m (as a store call filled it) in place: m's
   bytes are replaced by the header and the plaintext body.  Returns 0,
   SY_ECRYPTO / SY_EVERSION (m unchanged), SY_ENOMEM. */
int durable_open_body(seal_t *seal, store_msg_t *m);

/* Leases up to max ready messages of service to holder, for the
   service's lease (see store_take()), their bodies opened.  A message
   whose body does not open is dead-lettered (or, out of memory,
   requeued) and left out of out[].  Returns as store_take(). */
int durable_take(durable_t *d, const char *service, const char *holder,
                 size_t max, uint64_t now_ms, store_msg_t *out, size_t *n);

/* Gives a delivery back: requeue with delay_ms when has_delay, else with
   the configured backoff for its attempt; or dead-letter with reason.
   Returns as store_nack(). */
int durable_nack(durable_t *d, const uint8_t id[ENVELOPE_ID_LEN],
                 const char *holder, const char *reason, bool requeue,
                 bool has_delay, uint64_t delay_ms, uint64_t now_ms);

/* Extends a lease to ms from now.  Returns as store_extend(). */
int durable_extend(durable_t *d, const uint8_t id[ENVELOPE_ID_LEN],
                   const char *holder, uint64_t ms, uint64_t now_ms);

/* Everything holder has in flight becomes deliverable again at once.
   *n gets how many.  Returns as store_release_holder(). */
int durable_release(durable_t *d, const char *holder, size_t *n);

/* Timer work, bounded by max messages each: leases that ran out come
   back, messages whose ttl passed are dead-lettered.  *n gets how many
   changed state.  Returns 0 or SY_EIO. */
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
