/*  store.h -- the durable queue store of the broker, on LMDB.
 *
 *  One LMDB environment (a directory holding data.mdb and lock.mdb) keeps
 *  every durable message of every service, its state, the dead letters and
 *  the idempotency (dedup) records.  The store is the only index: nothing
 *  of the queues is mirrored in RAM (one number is: a lower bound of the
 *  earliest lease deadline, which only saves lease expiry a read), so a
 *  broker with a million queued messages stays small; LMDB pages in what
 *  a call touches.
 *
 *  A message is in exactly one of four states:
 *
 *      READY     waiting, ordered by (service, prio, id).  Ids are the
 *                16-byte time-ordered envelope ids (schemas/syid.h), so
 *                inside one priority the order is first-in first-out.
 *      DELAYED   waiting, but not before a time (a nack with a delay);
 *                store_take() moves it back to READY once that time came.
 *      INFLIGHT  leased to one holder (an actor name) until a deadline.
 *      DEAD      in the dead-letter queue of its service, with a reason.
 *
 *  What is durable when
 *  --------------------
 *  Every call that changes the store runs in one LMDB write transaction
 *  and returns only after it committed (the bulk calls, purge and retry
 *  of a whole queue, in transactions of at most 10,000 messages each).  With sync = STORE_SYNC_FULL (the
 *  default) a commit returns after fsync: what it wrote survives a crash
 *  of the process (kill -9) and of the machine.  With STORE_SYNC_NONE the
 *  commit is in the OS page cache only: it survives kill -9 of the process
 *  but not a machine crash (which may then also corrupt the file; use it
 *  for tests and benchmarks only).
 *
 *  The batch: one write transaction for a turn of the broker's loop.
 *  store_txn_begin() opens it; puts (store_put), takes (store_txn_take),
 *  acks, nacks, lease extensions, releases and expiry (store_txn_*) all
 *  go into it; store_txn_commit() commits it with one fsync.  Until that
 *  commit returned 0 nothing of the batch is on disk, and a crash (or a
 *  failed commit) loses the whole batch and only the whole batch:
 *
 *    - a put of the batch is durable, and its receipt may go out, only
 *      after the commit returned 0;
 *    - a take of the batch leases messages only once the commit returned
 *      0, and the lease -- deadline, holder and the attempt count this
 *      delivery uses -- is on disk from then on: a message taken in a
 *      batch must not be sent before that.  Were
 *      it sent first, the actor could ack it, the batch could die, and
 *      the ack would find a message that the store never leased (it is
 *      READY, and would be delivered again -- not lost, but the store and
 *      the actor would disagree about who holds it).  Sent after the
 *      commit, every delivery an actor sees is a lease the store has.
 *      A batch that does not commit leaves its taken messages as they
 *      were (READY, attempt unchanged): they are not sent, and are
 *      taken again later;
 *    - an ack, nack, extension or release of the batch takes effect
 *      with the commit; lost with a crash before it, the message stays
 *      in flight and comes back when its lease ends or at the next
 *      store_open() (at-least-once: it is delivered again);
 *    - a message put and taken in the same batch is stored and leased by
 *      the same commit: its receipt and its delivery both go out after
 *      it, in either order.
 *
 *  The answers the store_txn_* calls give (SY_ENOTFOUND: not in flight
 *  for that holder) describe the batch as it stands, i.e. the committed
 *  store plus what the batch did before; a caller that tells someone
 *  about them waits for the commit too.
 *
 *  A put that does not fit or fails leaves the earlier puts of its batch
 *  alone: near the end of the map every put runs in its own nested LMDB
 *  transaction, which is undone alone when it fails (QUEUE_FULL); while
 *  the map has room to spare puts go straight into the batch's transaction
 *  (a nested one costs LMDB a large allocation).  Should a put -- or any
 *  other write of the batch -- fail half-way anyway (an I/O error), the
 *  batch is spoiled: later calls and the commit return that error and
 *  nothing of the batch is stored.  Likewise a commit that finds no pages
 *  for LMDB's own bookkeeping returns SY_EQUEUE_FULL for the whole batch;
 *  the reserve below makes that rare.
 *
 *  The calls outside a batch (store_take, store_ack, store_nack, ...)
 *  each run in their own transaction and return after it committed; a
 *  lease is a record too.  A crash between a take and its ack makes the
 *  message deliverable again at the next store_open() (at-least-once).
 *  An ack that did not commit before a crash is lost and the message is
 *  delivered again.
 *
 *  store_open() returns every INFLIGHT message to READY (the holders are
 *  gone with the old broker), keeping its attempt count -- or to the
 *  dead-letter queue if that count is used up ("max attempts": a message
 *  that keeps killing the broker stops there) -- and reads only the
 *  in-flight set to do so, never the whole queue (measured: 1,000,000
 *  queued messages, reopen in 3 ms).  The count is exact across any
 *  number of crashes: every take that committed counted one attempt on
 *  disk (in the message's in-flight record), whether or not its delivery
 *  went out before the crash; a take that did not commit counted none
 *  and sent nothing.
 *
 *  Layout (format 2, STORE_FORMAT_VERSION): a message is one value
 *  (record, header, body) plus one entry in the index of its state; in
 *  flight, the index entry is an in-flight record (deadline, holder,
 *  attempt) and the message's own value is not rewritten.  A store of
 *  another format version is refused by store_open() with a message
 *  (format 1, the layout before, is not converted), never reinterpreted.
 *
 *  Dedup
 *  -----
 *  An idempotency key is scoped by service.  Its record (key -> first id,
 *  end of window) is written in the put's transaction, so the window
 *  survives restarts; each commit deletes a bounded number of records
 *  whose window closed.
 *
 *  Bodies
 *  ------
 *  The store never reads a header or a body: both are opaque bytes stored
 *  as given and returned as stored.  Encryption at rest (issue 3) belongs
 *  to the caller: seal the body before store_put(), open it after
 *  store_take().  The id, service, priority and deadlines the store needs
 *  are passed beside the bytes.
 *
 *  Damage
 *  ------
 *  LMDB keeps no page checksums.  store_open() refuses (SY_ESTORE, with
 *  the reason in err) what LMDB or the store can tell is wrong: a file
 *  that is not LMDB or whose meta pages are damaged, another LMDB
 *  version, an LMDB file that is not a switchyard store, a newer format
 *  version, pages of the wrong type or out of range.  Arbitrary garbage
 *  inside the trees can still crash the process on access; keep backups
 *  (mdb_copy) if the data matters.
 *
 *  Errors and full stores
 *  ----------------------
 *  Functions return 0 or a negative SY_E* code (schemas/syerr.h).  When the
 *  map (opts.map_size) is full a put answers SY_EQUEUE_FULL and the store
 *  stays usable: take/ack free room.  The store keeps a reserve of the map
 *  that puts may not use (see STORE_RESERVE_PCT), so that the calls which free
 *  room (ack, nack to the dead-letter queue, purge) still find pages to
 *  write their changes in.
 *
 *  Threads: a store_t belongs to one thread (the broker's loop).  While a
 *  store_txn_t is open, every call on the store that is not a store_txn_*
 *  call or store_put returns SY_EINVAL (LMDB has one writer; a second
 *  write transaction would deadlock).
 *
 *  Costs: per message, a put writes two LMDB entries (the message and
 *  its ready entry), a take deletes one and writes one (ready entry out,
 *  in-flight record in), an ack deletes two (in-flight record and
 *  message).  The per-service counters are read once and written once
 *  per write transaction, however many messages it moves; a take reads
 *  the ready entries (which carry the attempt count and ttl) with one
 *  seek per 256 and hands each message to the caller straight from the
 *  map (store_take_fn), so the caller copies or opens the body once.
 *  Lease expiry and store_release_holder() read the in-flight records
 *  (there are as many as the actors' credit allows): expiry only once
 *  the remembered bound on the earliest deadline has passed, a release
 *  once per call; store_inflight_list() sorts them in memory.
 *
 *  Ownership: store_open() gives the caller a store_t to free with
 *  store_destroy().  store_txn_begin() gives a store_txn_t that
 *  store_txn_commit() or store_txn_abort() frees.  store_take() and
 *  store_peek() fill caller-provided store_msg_t slots whose bytes the
 *  caller owns and frees with store_msg_clear().  Callbacks receive
 *  store_info_t whose pointers are valid only during the callback.
 */
#ifndef STORE_H
#define STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_ID_LEN        16
#define STORE_PRIOS         3            /* 0 high .. 2 low */
#define STORE_NAME_MAX      64           /* service and holder names */
#define STORE_KEY_MAX       128          /* idempotency key */
#define STORE_REASON_MAX    200          /* dead-letter reason, bytes */
#define STORE_FORMAT_VERSION 2           /* on-disk layout of this code */
#define STORE_DEFAULT_MAP_SIZE (1024ULL * 1024 * 1024)
#define STORE_DEFAULT_MAX_ATTEMPTS 5
#define STORE_DEFAULT_DEDUP_WINDOW_MS (24ULL * 3600 * 1000)
/* Puts are refused (QUEUE_FULL) once less than this share of the map (and
   at least 64 pages) is free, so that acks and purges have pages to write
   into.  The check is an estimate; LMDB's own MDB_MAP_FULL, caught per
   put, is the hard limit. */
#define STORE_RESERVE_PCT   10

/* Dead-letter reasons the store writes itself. */
#define STORE_REASON_EXPIRED      "EXPIRED"
#define STORE_REASON_MAX_ATTEMPTS "max attempts"

typedef enum { STORE_SYNC_FULL = 0, STORE_SYNC_NONE = 1 } store_sync_t;

typedef enum {
    STORE_READY = 1, STORE_DELAYED = 2, STORE_INFLIGHT = 3, STORE_DEAD = 4
} store_state_t;

/* Optional per-service limit on deliveries: returns the max attempts for
   service, or 0 for the store's default (opts.max_attempts). */
typedef uint32_t (store_attempts_fn)(const char *service, void *arg);

typedef struct {
    const char  *dir;              /* directory of the environment; made if
                                      missing (mode 0700) */
    uint64_t     map_size;         /* bytes; 0 = STORE_DEFAULT_MAP_SIZE */
    store_sync_t sync;             /* STORE_SYNC_FULL unless told */
    uint32_t     max_attempts;     /* deliveries before the dead-letter
                                      queue; 0 = STORE_DEFAULT_MAX_ATTEMPTS */
    uint64_t     dedup_window_ms;  /* used when a put passes 0;
                                      0 = STORE_DEFAULT_DEDUP_WINDOW_MS */
    int          reserve_pct;      /* share of the map kept free for the
                                      calls that free room; 0 =
                                      STORE_RESERVE_PCT; STORE_RESERVE_NONE
                                      turns the reserve off (tests only:
                                      a full map may then refuse acks) */
    store_attempts_fn *attempts_fn;/* NULL: max_attempts for every service */
    void        *attempts_arg;     /* passed to attempts_fn */
} store_opts_t;

#define STORE_RESERVE_NONE (-1)

typedef struct store_t store_t;
typedef struct store_txn_t store_txn_t;

/* One message to store.  All pointers are borrowed for the call. */
typedef struct {
    const char    *service;        /* 1..64 bytes, no NUL inside */
    uint8_t        prio;           /* 0..2 */
    const uint8_t *id;             /* STORE_ID_LEN bytes */
    const uint8_t *header;         /* encoded envelope header */
    size_t         header_len;
    const uint8_t *body;           /* opaque (maybe sealed) body */
    size_t         body_len;
    uint64_t       ttl_deadline;   /* ms since the epoch; 0 = no ttl */
    const char    *key;            /* idempotency key or NULL */
    uint64_t       dedup_window_ms;/* 0 = the store's default */
} store_put_t;

/* A message handed out by store_take(), store_get() or store_peek().
   data holds the header then the body; header and body point into it
   (store_peek copies the header only: body is NULL, body_len still the
   stored size).  The caller owns data: store_msg_clear() frees it. */
typedef struct {
    uint8_t   id[STORE_ID_LEN];
    uint8_t   prio;
    uint32_t  attempt;             /* deliveries including this one (take) */
    uint64_t  ttl_deadline;        /* 0 = none */
    uint64_t  lease_deadline;      /* take only */
    uint8_t  *data;
    uint8_t  *header;
    size_t    header_len;
    uint8_t  *body;
    size_t    body_len;
    uint64_t  enqueued_ms;         /* when it was first stored */
} store_msg_t;

/* What the listing calls show of one message.  The strings are
   NUL-terminated copies valid during the callback only. */
typedef struct {
    uint8_t        id[STORE_ID_LEN];
    const char    *service;
    store_state_t  state;
    uint8_t        prio;
    uint32_t       attempt;
    uint64_t       enqueued_ms;    /* when it was first stored */
    uint64_t       ttl_deadline;   /* 0 = none */
    uint64_t       not_before;     /* DELAYED */
    uint64_t       lease_deadline; /* INFLIGHT */
    uint64_t       changed_ms;     /* when it entered this state */
    const char    *holder;         /* INFLIGHT: the actor; else "" */
    const char    *reason;         /* DEAD: why; else "" */
} store_info_t;

/* A listing callback: return 0 to go on, non-zero to stop. */
typedef int (store_info_fn)(const store_info_t *info, void *arg);

/* Counts of one service, kept in the store and updated in the same
   transactions as the messages (reading them costs no scan). */
typedef struct {
    uint64_t ready[STORE_PRIOS];
    uint64_t delayed;
    uint64_t inflight;
    uint64_t dead;
    uint64_t oldest_ms;            /* time of the oldest READY message's
                                      id, 0 if none */
} store_counts_t;

/* ------------------------------------------------------------ lifecycle */

/* Opens (or creates, if opts->dir holds no store yet) the store.  Refuses
   with SY_ESTORE and a readable message in err a directory whose data is
   not an LMDB file, is corrupt as far as LMDB can tell, was written by a
   newer format version, or cannot be read; it never recreates over
   existing data.  Then returns every in-flight message to READY.
   Returns 0, SY_EINVAL, SY_ENOMEM, SY_EIO or SY_ESTORE. */
int store_open(const store_opts_t *opts, store_t **out, char *err,
               size_t errlen);

/* Closes the store and frees it; *pp becomes NULL.  An open batch is
   aborted.  NULL-safe. */
void store_destroy(store_t **pp);

/* ---------------------------------------------------------- group commit */

/* Starts a batch at time now_ms (used for dedup windows and pruning of
   its puts; the other batch calls take their own now_ms).
   Returns 0, SY_EINVAL (a batch is already open) or SY_EIO. */
int store_txn_begin(store_t *store, uint64_t now_ms, store_txn_t **out);

/* Adds one message to the batch.  Returns
     0               stored; durable once store_txn_commit() returns 0;
     SY_EDUPLICATE   p->key (within its service) was seen inside the
                     dedup window, or p->id is already stored: first_id
                     (if not NULL) receives the first message's id and
                     nothing is stored;
     SY_EQUEUE_FULL  the store has no room; nothing of this put is kept,
                     the earlier puts of the batch are untouched;
     SY_EINVAL       bad argument (name, prio, sizes);
     SY_EINTERNAL    an LMDB failure; nothing of this put is kept. */
int store_put(store_txn_t *txn, const store_put_t *p,
              uint8_t first_id[STORE_ID_LEN]);

/* Commits the batch (one fsync) and frees it; *pp becomes NULL.  Returns
   0 -- every put that returned 0 is durable -- or SY_EQUEUE_FULL /
   SY_EIO: nothing of the batch was stored (no put may be acknowledged).
   Also prunes a bounded number of expired dedup records. */
int store_txn_commit(store_txn_t **pp);

/* Drops the batch: none of its puts is stored.  NULL-safe. */
void store_txn_abort(store_txn_t **pp);

/* Number of puts that returned 0 in this batch so far. */
size_t store_txn_count(const store_txn_t *txn);

/* Called by a take for each message it leased: m's header and body
   point into the store's map and are valid during the call only
   (m->data is NULL).  Return 0 when the message is accepted (it counts
   towards the take's max); anything else leaves it leased in the batch
   and the caller must give it back (store_txn_nack).  Once done with m,
   fn may call the store_txn_* functions on the same batch (e.g. that
   nack) but not store_txn_take. */
typedef int (store_take_fn)(const store_msg_t *m, void *arg);

/* store_take() inside the batch: leases up to max messages (accepted by
   fn) of service to holder.  The leases exist once the batch commits;
   see "What is durable when" above: do not send a message taken here
   before store_txn_commit() returned 0.  *n gets how many fn accepted.
   Returns 0, SY_EINVAL, or the error that spoiled the batch. */
int store_txn_take(store_txn_t *txn, const char *service, const char *holder,
                   size_t max, uint64_t lease_ms, uint64_t now_ms,
                   store_take_fn *fn, void *arg, size_t *n);

/* store_ack(), store_nack(), store_extend(), store_release_holder() and
   the expiry of leases and ttls (store_expire_leases() then
   store_expire_ttl(), max each) inside the batch: effective once it
   commits.  They return what their own-transaction versions return;
   an error other than SY_ENOTFOUND / SY_EINVAL spoils the batch. */
int store_txn_ack(store_txn_t *txn, const uint8_t id[STORE_ID_LEN],
                  const char *holder);
int store_txn_nack(store_txn_t *txn, const uint8_t id[STORE_ID_LEN],
                   const char *holder, const char *reason, bool requeue,
                   uint64_t delay_ms, uint64_t now_ms);
int store_txn_extend(store_txn_t *txn, const uint8_t id[STORE_ID_LEN],
                     const char *holder, uint64_t lease_ms, uint64_t now_ms);
int store_txn_release(store_txn_t *txn, const char *holder, size_t *n);
int store_txn_expire(store_txn_t *txn, uint64_t now_ms, size_t max,
                     size_t *leases, size_t *ttls);

/* Undoes the lease of an in-flight message of holder that never reached
   it (the send found the connection closed, or was never made): its
   attempt count goes back down by one -- the take counted a delivery
   that did not happen -- and it waits again, READY (or DELAYED for
   delay_ms when > 0) in its old place.  Its attempts are not judged (none
   was used); a ttl that passed sends it to the dead-letter queue
   (EXPIRED).  Returns 0, SY_ENOTFOUND (not in flight for holder),
   SY_EINVAL or the error that spoiled the batch. */
int store_txn_undeliver(store_txn_t *txn, const uint8_t id[STORE_ID_LEN],
                        const char *holder, uint64_t delay_ms,
                        uint64_t now_ms);

/* The attempt count of a message as the batch sees it (deliveries so
   far).  Returns 0, SY_ENOTFOUND, SY_EINVAL, SY_EIO. */
int store_txn_attempt(store_txn_t *txn, const uint8_t id[STORE_ID_LEN],
                      uint32_t *attempt);

/* ------------------------------------------------------------- delivery */

/* Leases up to max READY messages of service to holder, highest priority
   first and in id order inside a priority, for lease_ms from now_ms.
   First moves the service's DELAYED messages whose time came back to
   READY.  A candidate whose ttl passed goes to the dead-letter queue
   (EXPIRED) instead of being delivered.  Each taken message's attempt is
   incremented.  out[0..*n) are filled; the caller owns their bytes
   (store_msg_clear()).  Returns 0 (also when nothing was ready: *n = 0),
   SY_EINVAL, SY_ENOMEM or SY_EIO. */
int store_take(store_t *store, const char *service, const char *holder,
               size_t max, uint64_t lease_ms, uint64_t now_ms,
               store_msg_t *out, size_t *n);

/* Frees the bytes of m and zeroes it.  NULL-safe. */
void store_msg_clear(store_msg_t *m);

/* Removes an in-flight message for good.  holder NULL accepts any holder;
   otherwise an id leased to someone else is SY_ENOTFOUND (a late ack from
   an actor whose lease ran out).  Returns 0, SY_ENOTFOUND, SY_EIO. */
int store_ack(store_t *store, const uint8_t id[STORE_ID_LEN],
              const char *holder);

/* Acks n ids in one transaction; rc[i] (if rc != NULL) gets each result.
   Returns 0 when the transaction committed, else SY_EIO (nothing acked). */
int store_ack_many(store_t *store, const uint8_t (*ids)[STORE_ID_LEN],
                   size_t n, const char *holder, int *rc);

/* Acks n ids in one transaction, each against its own holder (holders[i],
   NULL = any): the acks of several actors under one fsync.  rc[i] (if rc
   != NULL) gets each result.  Returns 0 when the transaction committed,
   else SY_EIO (nothing acked). */
int store_ack_each(store_t *store, const uint8_t (*ids)[STORE_ID_LEN],
                   const char *const *holders, size_t n, int *rc);

/* Gives an in-flight message back.  requeue: it becomes deliverable again
   at now_ms + delay_ms (DELAYED, or READY at once when delay_ms is 0),
   unless its attempts are used up (dead letter, "max attempts") or its
   ttl passed (dead letter, EXPIRED).  !requeue: it goes to the dead-letter
   queue with reason (NULL = "nack").  Returns 0, SY_ENOTFOUND, SY_EIO. */
int store_nack(store_t *store, const uint8_t id[STORE_ID_LEN],
               const char *holder, const char *reason, bool requeue,
               uint64_t delay_ms, uint64_t now_ms);

/* Moves an in-flight message's lease deadline to now_ms + lease_ms.
   Returns 0, SY_ENOTFOUND, SY_EIO. */
int store_extend(store_t *store, const uint8_t id[STORE_ID_LEN],
                 const char *holder, uint64_t lease_ms, uint64_t now_ms);

/* Returns at most max in-flight messages whose lease deadline is <= now_ms
   to READY (attempt kept; the next take counts it), or to the dead-letter
   queue when their attempts are used up or their ttl passed.  *n (if not
   NULL) gets how many were handled.  Returns 0 or SY_EIO. */
int store_expire_leases(store_t *store, uint64_t now_ms, size_t max,
                        size_t *n);

/* Returns everything holder has in flight to READY at once (an actor that
   died), under the same rules as an expired lease.  Returns 0 or SY_EIO. */
int store_release_holder(store_t *store, const char *holder, size_t *n);

/* Moves at most max waiting (READY or DELAYED) messages whose ttl
   deadline is <= now_ms to the dead-letter queue with reason EXPIRED.
   In-flight messages are judged when they come back.  Returns 0 or
   SY_EIO. */
int store_expire_ttl(store_t *store, uint64_t now_ms, size_t max, size_t *n);

/* ---------------------------------------------------------- dead letters */

/* Calls fn for each dead letter of service in id order (at most max;
   0 = all).  Returns 0, SY_EINVAL, SY_EIO. */
int store_dlq_list(store_t *store, const char *service, size_t max,
                   store_info_fn *fn, void *arg);

/* Puts one dead letter back to READY with its attempt count reset to 0
   (and its ttl cleared: the operator asked for it).  Returns 0,
   SY_ENOTFOUND, SY_EIO. */
int store_dlq_retry(store_t *store, const uint8_t id[STORE_ID_LEN],
                    uint64_t now_ms);

/* Puts every dead letter of service back to READY (as store_dlq_retry),
   in transactions of bounded size.  *n (if not NULL) gets the count. */
int store_dlq_retry_all(store_t *store, const char *service,
                        uint64_t now_ms, size_t *n);

/* Deletes one dead letter.  Returns 0, SY_ENOTFOUND, SY_EIO. */
int store_dlq_purge_id(store_t *store, const uint8_t id[STORE_ID_LEN]);

/* Deletes every dead letter of service (or every READY and DELAYED
   message, when ready is true) in transactions of bounded size.  In-flight
   messages are never purged.  *n (if not NULL) gets the count. */
int store_purge(store_t *store, const char *service, bool ready, size_t *n);

/* ------------------------------------------------------------------ meta */

#define STORE_META_NAME_MAX 32
#define STORE_META_VALUE_MAX 256

/* Small named records kept beside the format version (e.g. the
   fingerprint of the key that seals the bodies).  Names are 1..32 bytes
   and never "format".  store_meta_get copies the value into out (cap
   bytes) and its length into *len: 0, SY_ENOTFOUND, SY_ENOSPACE,
   SY_EINVAL, SY_EIO.  store_meta_put writes (replaces) it in its own
   committed transaction: 0, SY_EINVAL, SY_EIO, SY_EQUEUE_FULL. */
int store_meta_get(store_t *store, const char *name, void *out, size_t cap,
                   size_t *len);
int store_meta_put(store_t *store, const char *name, const void *value,
                   size_t len);

/* Number of messages the store holds in any state (dead letters too);
   one LMDB stat, no scan.  Returns 0, SY_EINVAL or SY_EIO. */
int store_message_count(store_t *store, uint64_t *n);

/* ----------------------------------------------------------------- views */

/* The counts of service (all zero for a service never seen).  Returns 0,
   SY_EINVAL or SY_EIO. */
int store_counts(store_t *store, const char *service, store_counts_t *out);

/* Calls fn(service, counts, arg) for every service that has or had
   messages, in name order; fn returns non-zero to stop.  Returns 0 or
   SY_EIO. */
typedef int (store_service_fn)(const char *service,
                               const store_counts_t *counts, void *arg);
int store_services(store_t *store, store_service_fn *fn, void *arg);

/* Copies up to max READY messages of service, in delivery order, into
   out without leasing them (attempt as stored, lease_deadline 0): the
   header only -- body NULL, body_len the stored body's size -- since a
   view of the queue needs no body.  The caller owns the bytes
   (store_msg_clear()).  Returns 0, SY_EINVAL,
   SY_ENOMEM, SY_EIO. */
int store_peek(store_t *store, const char *service, size_t max,
               store_msg_t *out, size_t *n);

/* Calls fn for each in-flight message (of service, or of all services
   when service is NULL), in lease deadline order (sorted in memory: the
   in-flight set is small).  Returns 0, SY_ENOMEM or SY_EIO. */
int store_inflight_list(store_t *store, const char *service,
                        store_info_fn *fn, void *arg);

/* Copies one message, whatever its state, into *out (as store_peek; the
   caller owns the bytes: store_msg_clear()).  Returns 0, SY_ENOTFOUND,
   SY_ENOMEM, SY_EIO. */
int store_get(store_t *store, const uint8_t id[STORE_ID_LEN],
              store_msg_t *out);

/* Where one message stands in its service's queue (store_place). */
typedef struct {
    uint64_t       ready;          /* READY messages of the service, every
                                      priority (DELAYED not counted) */
    store_state_t  state;          /* of the message; 0 when it is not in
                                      the store under this service */
    uint64_t       place;          /* READY: its 1-based place in delivery
                                      order (priority, then id), at most
                                      max_place; else 0 */
    bool           capped;         /* place is max_place because the walk
                                      stopped there (the real place is
                                      larger) */
} store_place_t;

/* The ready count of service and, when id is not NULL, the state of the
   message id in it and, when READY, its place: the READY messages of
   higher priority (from the counters, no scan) plus those of its own
   priority ahead of it plus one.  The latter are counted with two cursors
   walking the ready index away from the message in step, one towards
   the front of its priority and one towards the back, until either ends
   (the back's count gives the front's through the counter): the cost is
   about twice the smaller of the two distances, so the newest and the
   oldest messages cost a few reads whatever the queue holds.  A place
   above max_place (0: no bound) is reported as max_place with capped set,
   after at most about 2 x max_place reads.  One read transaction; a
   service never seen is empty (ready 0, state 0).  Returns 0, SY_EINVAL,
   SY_EIO or SY_ESTORE (index and counters disagree). */
int store_place(store_t *store, const char *service, const uint8_t *id,
                uint64_t max_place, store_place_t *out);

/* Removes the message id of service for good if it is waiting (READY or
   DELAYED), in a write transaction of its own that has committed when
   this returns (the idempotency record of its key stays, so a re-send
   within the window is still DUPLICATE).  *was (if not NULL) gets the
   state it had: READY / DELAYED (removed), INFLIGHT / DEAD (left as it
   is; return 0 all the same).  Returns 0, SY_ENOTFOUND (not stored under
   this service), SY_EINVAL (bad argument, or a batch is open), SY_EIO. */
int store_cancel(store_t *store, const char *service,
                 const uint8_t id[STORE_ID_LEN], store_state_t *was);

/* Fills *out with what the store knows of one message.  The strings in
   *out are valid until the next call on the store.  Returns 0,
   SY_ENOTFOUND, SY_EIO. */
int store_get_info(store_t *store, const uint8_t id[STORE_ID_LEN],
                   store_info_t *out);

#endif
