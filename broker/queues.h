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

/* True if what is one of the queries above. */
bool queues_knows(const char *what);

#endif
