/*  hdur.h -- helpers shared by the durable-queue integration tests
 *  (test_durable_*.c): durable sends and their receipts, durable
 *  deliveries, the broker's queue views, the syctl JSON views.
 *
 *  Everything here speaks the protocol of docs/PROTOCOL.md section 10
 *  through hclient: a durable send is an echo.request with "durable":
 *  true in its header; its receipt is sy.receipt {ok, id} with corr = the
 *  send's id; a delivery carries durable = true and attempt = N, and is
 *  answered with sy.ack / sy.nack / sy.lease.
 *
 *  Ownership: nothing returned needs freeing unless said so.
 */
#ifndef HDUR_H
#define HDUR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness.h"
#include "hclient.h"
#include "hmp.h"

/* What one durable send carries.  prio < 0: left out; ttl 0: none;
   key NULL: none; pad: bytes of padding in the body (0: none). */
typedef struct {
    const char *to;
    int         prio;
    uint64_t    ttl;
    const char *key;
    uint64_t    seq;
    const char *data;           /* NULL: "job" */
    size_t      pad;
} hdur_msg_t;

/* Sends m durably (does not wait).  sent_id gets the header id. */
int hdur_send(hclient_t *c, const hdur_msg_t *m, uint8_t sent_id[16]);

/* A parsed receipt. */
typedef struct {
    bool    ok;
    bool    has_id;
    uint8_t id[16];
    char    code[40];
    char    detail[40];
    char    msg[200];
} hdur_receipt_t;

/* True if m is a sy.receipt; fills r. */
bool hdur_receipt_parse(const hmsg_t *m, hdur_receipt_t *r);

/* Sends m durably and waits for its receipt.  Returns 0 if a receipt
   came (r says what it said), or SY_ETIMEOUT. */
int hdur_put(hclient_t *c, const hdur_msg_t *m, hdur_receipt_t *r,
             int timeout_ms);

/* Sends the n messages pipelined, then collects their receipts (by
   corr) into r[0..n-1].  Returns 0, or SY_ETIMEOUT if some did not come
   within timeout_ms in all (those have code "TIMEOUT"). */
/* hdur_put that fails the test unless the receipt came, ok, with an id;
   the id into id. */
void hdur_put_ok(hclient_t *c, const hdur_msg_t *m, uint8_t id[16]);

/* Config for the durable tests: no rate limit in the way, retries after
   100 ms. */
void hdur_fast_config(harness_t *h);

/* Sends the n messages, then waits for their n receipts into r.  What
   else arrives meanwhile (a reply, a delivery) is kept for the caller's
   next hclient_recv() (hclient_keep), not dropped.  Returns 0 or
   SY_ETIMEOUT. */
int hdur_put_many(hclient_t *c, const hdur_msg_t *m, size_t n,
                  hdur_receipt_t *r, int timeout_ms);

/* The seq and data of an echo.request / echo.reply body. */
bool hdur_body_seq(const hmsg_t *m, uint64_t *seq);

/* True when m is a durable delivery (durable flag and attempt set). */
bool hdur_is_delivery(const hmsg_t *m);

/* One service's line of the "queues" view. */
typedef struct {
    bool     found;
    uint64_t ready[3];
    uint64_t delayed, inflight, dead, oldest_ms;
} hdur_counts_t;

/* Asks the broker for the "queues" view (through c, which must not be a
   worker receiving deliveries) and fills out for service.  Returns 0 or
   a negative code (the answer was no sy.answer, or did not parse). */
int hdur_counts(hclient_t *c, const char *service, hdur_counts_t *out,
                int timeout_ms);

/* Polls hdur_counts() until pred(counts, arg) holds or timeout_ms passes.
   Returns true if it held; *last gets the last counts seen. */
bool hdur_wait_counts(hclient_t *c, const char *service,
                      bool (*pred)(const hdur_counts_t *, void *), void *arg,
                      int timeout_ms, hdur_counts_t *last);

/* ready[0]+ready[1]+ready[2]. */
uint64_t hdur_ready(const hdur_counts_t *k);

/* Runs syctl with the arguments (NULL-terminated) plus --json and converts
   the first JSON value of its stdout (hmp_from_json_in).  Returns it as
   msgpack (caller frees; *len its size) or NULL; *exit_code gets syctl's
   exit code; the output is printed on failure to parse. */
uint8_t *hdur_syctl_json(harness_t *h, int *exit_code, size_t *len, ...)
    __attribute__((sentinel));

/* Hex of an id into out[33]. */
const char *hdur_hex(const uint8_t id[16], char out[33]);

/* 64-bit FNV-1a of a whole file; false if it cannot be read. */
bool hdur_file_hash(const char *path, uint64_t *hash, uint64_t *size);

/* Counts the lines of path, optionally only those that contain needle. */
int hdur_count_lines(const char *path, const char *needle);

#endif
