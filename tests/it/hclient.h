/*  hclient.h -- a test client that speaks the switchyard protocol itself.
 *
 *  It does not use the actor runtime: the point of the integration tests
 *  is to check the broker against docs/PROTOCOL.md, so this client builds
 *  headers field by field with msgpack-c's packer (and can build wrong
 *  ones: raw frames of any count and content), and reads the broker's
 *  headers with the strict envelope_decode(): a header the broker sends
 *  that our codec would refuse is reported as a failure.
 *
 *  Heartbeat: after sy.welcome, hclient_recv() sends sy.ping whenever the
 *  client has sent nothing for hb ms, so a client waiting for seconds is
 *  not expired by the broker.  sy.pong is swallowed.
 *
 *  Ownership: hclient_new() returns a client destroyed by
 *  hclient_destroy(); an hmsg_t owns its body until hmsg_clear().
 */
#ifndef HCLIENT_H
#define HCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schemas/envelope.h"

typedef struct _hclient_t hclient_t;

/* A received message. */
typedef struct {
    envelope_t hdr;
    uint8_t   *body;            /* frame 2 (copy), NULL if absent */
    size_t     body_len;
    int        nframes;
    int64_t    at_ms;           /* harness_now_ms() when received */
} hmsg_t;

/* What to put in a header we send.  NULL / 0 fields are left out. */
typedef struct {
    const char    *type;        /* required */
    const char    *to;
    const char    *from;        /* a fake `from`: the broker must replace it */
    const char    *reply_to;
    const uint8_t *corr;        /* 16 bytes */
    uint64_t       ttl;         /* 0: absent */
    int            prio;        /* -1 or 0: absent unless has_prio */
    bool           has_prio;
    bool           durable;     /* true: "durable": true in the header */
    const char    *key;         /* idempotency key */
} hsend_t;

/* One raw frame. */
typedef struct {
    const void *data;
    size_t      len;
} hframe_t;

/* Connects a DEALER to endpoint; `name` is used by hclient_hello(). */
hclient_t *hclient_new(const char *endpoint, const char *name);

/* As hclient_new(), as a CURVE client when secret_path is not NULL: the
   key pair of that NAME.secret file (CZMQ certificate format, as `syctl
   keys new` writes it) and server_key, the broker's public key (Z85).
   With CURVE the broker takes the name from the certificate, so `name`
   should be the certificate's.  NULL if the certificate does not load. */
hclient_t *hclient_new_curve(const char *endpoint, const char *name,
                             const char *secret_path, const char *server_key);
void hclient_destroy(hclient_t **self_p);

const char *hclient_name(const hclient_t *self);

/* Sends sy.hello {name, services, credit} (services NULL-terminated, may
   be NULL for none) and waits for sy.welcome with corr = the hello's id.
   Returns 0, SY_ETIMEOUT, or SY_EDENIED if a receipt came instead. */
int hclient_hello(hclient_t *self, const char *const *services,
                  uint32_t credit, int timeout_ms);

/* hb, liveness, max_msg from the welcome (0 before). */
uint64_t hclient_hb(const hclient_t *self);
uint64_t hclient_max_msg(const hclient_t *self);

/* Encodes a header from s (v = 1, a fresh id) and sends it with body.
   body NULL: an empty map.  id_out (may be NULL) gets the id.
   Returns 0 or a negative code. */
int hclient_send(hclient_t *self, const hsend_t *s, const uint8_t *body,
                 size_t len, uint8_t id_out[16]);

/* Sends n raw frames as one message. */
int hclient_send_frames(hclient_t *self, const hframe_t *frames, int n);

/* A fresh id from this client's generator. */
void hclient_new_id(hclient_t *self, uint8_t out[16]);

/* Receives one message (sy.pong swallowed; pings sent as needed).
   Returns 0, SY_ETIMEOUT, or SY_EBAD_ENVELOPE if the broker's header did
   not decode (printed; *m then holds what could be kept). */
int hclient_recv(hclient_t *self, hmsg_t *m, int timeout_ms);

/* Puts m back (taken over; *m is zeroed): the next hclient_recv() calls
   return the kept messages first, oldest first.  For helpers that wait
   for one kind of answer and must not eat the others.  Returns 0 or
   SY_ENOSPACE (more than HCLIENT_KEEP kept; m is left to the caller). */
#define HCLIENT_KEEP 64
int hclient_keep(hclient_t *self, hmsg_t *m);

/* Receives until a message of `type` arrives; others are dropped and
   counted in *skipped (may be NULL).  Returns as hclient_recv(). */
int hclient_recv_type(hclient_t *self, const char *type, hmsg_t *m,
                      int timeout_ms, int *skipped);

/* Receives until a message whose corr equals corr arrives. */
int hclient_recv_corr(hclient_t *self, const uint8_t corr[16], hmsg_t *m,
                      int timeout_ms);

/* Sends to `to` and waits for the message answering it (corr = its id). */
int hclient_request(hclient_t *self, const char *to, const char *type,
                    const uint8_t *body, size_t len, hmsg_t *m,
                    int timeout_ms);

/* Sends echo.request {seq, data, delay_ms (left out if < 0)} with the
   header fields of s (s->type is ignored); id_out (may be NULL) gets the
   id.  Returns as hclient_send(). */
int hclient_send_echo(hclient_t *self, const hsend_t *s, uint64_t seq,
                      const char *data, int64_t delay_ms, uint8_t id_out[16]);

/* hclient_request() of echo.request {seq, data} to `to`. */
int hclient_request_echo(hclient_t *self, const char *to, uint64_t seq,
                         const char *data, hmsg_t *m, int timeout_ms);

/* Sends sy.query {what:"status"} and waits for the sy.answer. */
int hclient_status(hclient_t *self, hmsg_t *m, int timeout_ms);

/* Sends sy.sub {topic}. */
int hclient_sub(hclient_t *self, const char *topic);

/* Round trip sy.ping -> sy.pong: proves the broker has processed all
   this client sent before.  Returns 0 or SY_ETIMEOUT. */
int hclient_sync(hclient_t *self, int timeout_ms);

/* Durable deliveries (docs/PROTOCOL.md section 10).  Each sends one
   message to the broker and waits for nothing. */
int hclient_ack(hclient_t *self, const uint8_t id[16]);
/* reason may be NULL; delay_ms < 0: left out. */
int hclient_nack(hclient_t *self, const uint8_t id[16], const char *reason,
                 bool requeue, int64_t delay_ms);
int hclient_lease(hclient_t *self, const uint8_t id[16], uint64_t ms);

/* What a sy.query asks.  NULL / false fields are left out. */
typedef struct {
    const char    *what;        /* required */
    const char    *service;
    bool           has_n;
    uint64_t       n;
    const uint8_t *id;          /* 16 bytes */
    bool           all;
} hquery_t;

/* Sends sy.query q and waits for the message answering it (a sy.answer,
   or a receipt with an error).  Returns as hclient_recv(). */
int hclient_query(hclient_t *self, const hquery_t *q, hmsg_t *m,
                  int timeout_ms);

void hmsg_clear(hmsg_t *m);

/* For a sy.receipt: its code and detail strings ("" if absent).
   Returns true if m is a receipt. */
bool hmsg_receipt(const hmsg_t *m, char *code, size_t ccap,
                  char *detail, size_t dcap);

/* Prints a message on one line (type, from, to, corr, body as text). */
void hmsg_print(const char *prefix, const hmsg_t *m);

#endif
