/*  queues.h -- the operator's views of the durable queues: the bodies of
 *  the sy.answer to sy.query {what: queues | peek | inflight | dlq |
 *  dlq.retry | dlq.purge}, built from the store with msgpack-c's packer.
 *  docs/DURABLE.md shows every answer; in short:
 *
 *    queues    [{service, ready:[high,normal,low], delayed, inflight, dead,
 *                oldest_ms}]                    oldest_ms: age of the oldest
 *                                               ready message, 0 if none
 *    peek      [{id, prio, attempt, age_ms, size, type, from, key}]
 *    inflight  [{id, holder, attempt, lease_left_ms}]
 *    dlq       [{id, service, reason, attempt, age_ms, type}]
 *    dlq.retry {retried:n}
 *    dlq.purge {purged:n}
 *
 *  and, for any peer (not operator views: the broker adds what only it
 *  knows and decides who may ask, see broker.c and acl.h):
 *
 *    place     {service, workers, ready, state?, place?}
 *    cancel    {cancelled, state}
 *
 *  No sockets: the module is tested with a store in a temporary directory.
 *  Times are wall-clock ms since the epoch (the store's clock).
 *
 *  Ownership: the caller owns the sbuffer; nothing returned is to be
 *  freed.
 */
#ifndef QUEUES_H
#define QUEUES_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "broker/store.h"
#include "schemas/envelope.h"

#define QUEUES_PEEK_DEFAULT 10
#define QUEUES_PEEK_MAX     100
#define QUEUES_LIST_MAX     1000    /* entries of inflight / dlq answers */

/* The fields of a sy.query body the views use. */
typedef struct {
    const char *service;        /* NULL: absent */
    bool        has_n;
    uint64_t    n;
    bool        has_id;
    uint8_t     id[STORE_ID_LEN];
    bool        all;
} queues_query_t;

/* Packs the array of every service's counts (the "queues" data, also in
   the status answer).  Returns 0, SY_ENOMEM or SY_EIO. */
int queues_pack_list(store_t *store, msgpack_packer *pk, uint64_t now_ms);

/* Appends the whole answer body {what, data} for query `what` to out.
   Returns 0; SY_EFIELD_RANGE for an unknown `what`, SY_EMISSING for a
   missing service / id (err says which, for a BAD_BODY receipt);
   SY_ENOMEM or SY_EIO when the store fails.  *changed (if not NULL) is set
   when messages became deliverable again (dlq.retry). */
int queues_answer(store_t *store, const char *what, const queues_query_t *q,
                  uint64_t now_ms, msgpack_sbuffer *out, bool *changed,
                  char *err, size_t errlen);

/* True if what is one of the operator queries above (not place or
   cancel: the broker answers those itself with queues_place() and
   queues_cancel()). */
bool queues_knows(const char *what);

/* The most a place walk counts: a message further back is reported at
   this place (see store_place() for the cost). */
#define QUEUES_PLACE_MAX 1000000

/* Appends the answer body {what:"place", data:{service, workers, ready,
   state?, place?}} to out: workers as given (the broker counts the live
   actors offering service), ready the service's READY messages (every
   priority; delayed ones not counted), and with id (not NULL) the
   message's state -- "ready", "delayed", "inflight", "dead", or "gone"
   when the store does not hold it under this service -- and, when ready,
   place, its 1-based place in delivery order (QUEUES_PLACE_MAX at most).
   store may be NULL (a broker without a durable store): every queue is
   empty then.  Returns 0, SY_ENOMEM or SY_EIO (err says why; nothing is
   appended). */
int queues_place(store_t *store, const char *service, const uint8_t *id,
                 uint64_t workers, msgpack_sbuffer *out, char *err,
                 size_t errlen);

/* Decides whether the requester may cancel the stored message whose
   header is stored (decoded): 0, or SY_EDENIED with a line in why. */
typedef int (queues_may_cancel_fn)(const envelope_t *stored, void *arg,
                                   char *why, size_t whylen);

/* Cancels the message id of service (both required) if it still waits:
   a message the store holds under service is first shown to may (which
   says whether this requester owns it), then removed if READY or DELAYED
   (store_cancel: committed before this returns; its idempotency record
   stays).  Appends {what:"cancel", data:{cancelled, state}} to out: state
   is what the message was -- "ready" / "delayed" with cancelled true,
   "inflight" / "dead" / "gone" (not stored under service) with cancelled
   false.  Returns 0; SY_EDENIED when may refused (err holds its line;
   nothing removed, nothing appended); SY_EMISSING for a missing service
   or id; SY_ENOMEM / SY_EIO when the store fails. */
int queues_cancel(store_t *store, const char *service, const uint8_t *id,
                  queues_may_cancel_fn *may, void *arg, msgpack_sbuffer *out,
                  char *err, size_t errlen);

#endif
