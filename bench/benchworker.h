/*  benchworker.h -- the benchmark's echo worker, on its own thread.
 *
 *  The worker is one raw libzmq DEALER.  Against sy-broker it speaks
 *  docs/PROTOCOL.md: sy.hello {name, services:[bench], credit}, waits for
 *  sy.welcome, answers each request with a reply to the request's
 *  reply_to (default "@" + from) carrying corr = the request's id, gives
 *  its credit back in batches with sy.credit, and answers sy.ping.
 *  Against the trivial forwarder it sends the same hello once (so the
 *  forwarder learns its routing id; the forwarder echoes it back as the
 *  "welcome") and then echoes exactly as above.  The body frame of a
 *  request goes back unchanged and uncopied.
 *
 *  Ownership: benchworker_new() returns a running worker that the caller
 *  stops with benchworker_destroy(), which joins the thread and NULLs the
 *  pointer.
 */
#ifndef BENCHWORKER_H
#define BENCHWORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *endpoint;      /* tcp://127.0.0.1:port or ipc://path */
    bool        sy;            /* true: sy-broker protocol; false: forwarder */
    uint32_t    credit;        /* credit announced in sy.hello */
    uint32_t    credit_batch;  /* sy.credit every this many replies */
    uint32_t    max_secs;      /* the thread ends by itself after this */
} benchworker_opts_t;

typedef struct _benchworker_t benchworker_t;

/* Connects, says hello, waits (at most 20 s) for the welcome, then serves
   on a new thread.  Returns 0 with *out set, or a negative SY_E* code with
   a message in err. */
int benchworker_new(const benchworker_opts_t *opts, benchworker_t **out,
                    char *err, size_t errlen);

/* Stops and joins the thread, closes the socket. */
void benchworker_destroy(benchworker_t **self_p);

/* Replies sent so far, and protocol errors seen (receipts, bad headers). */
uint64_t benchworker_served(benchworker_t *self);
uint64_t benchworker_errors(benchworker_t *self);

#endif
