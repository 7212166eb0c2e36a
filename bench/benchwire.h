/*  benchwire.h -- the messages the benchmark sends, and the raw libzmq
 *  moves that carry them.
 *
 *  The benchmark compares sy-broker with a trivial ROUTER forwarder.  So
 *  that the ratio measures the broker and nothing else, the client and the
 *  echo worker are the same code against both: raw libzmq DEALER sockets,
 *  two-frame messages (header + body), headers built and read with the
 *  project's envelope codec, bodies packed with msgpack-c's packer into a
 *  fixed buffer (no allocation per message).
 *
 *  A benchwire_msg_t holds one received message: the two zmq_msg_t frames
 *  (so the worker can send the body straight back without a copy) and the
 *  decoded header.
 *
 *  Ownership: the caller owns every benchwire_msg_t and closes it with
 *  benchwire_msg_close(); buffers written by the encoders are the
 *  caller's.  No global state.
 */
#ifndef BENCHWIRE_H
#define BENCHWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "schemas/envelope.h"
#include "schemas/syid.h"

/* Application types of the benchmark; the broker only forwards them, but
   it checks that they are in the table of schemas/msgtypes.c. */
#define BENCHWIRE_REQ_TYPE   "echo.request"
#define BENCHWIRE_REP_TYPE   "echo.reply"
/* Service the worker offers, and the names of the two peers. */
#define BENCHWIRE_SERVICE    "bench"
#define BENCHWIRE_WORKER     "bench-worker"
#define BENCHWIRE_CLIENT     "bench-client"
/* Largest body the benchmark builds. */
#define BENCHWIRE_BODY_MAX   65536

typedef struct {
    zmq_msg_t  hdr_frame;
    zmq_msg_t  body_frame;
    envelope_t hdr;
} benchwire_msg_t;

/* Fills env with a fresh header: new id from gen, the given type, and
   `to` / `corr` when not NULL. */
int benchwire_header(envelope_t *env, syid_t *gen, const char *type,
                     const char *to, const uint8_t *corr);

/* Body of sy.hello: {name, services:[service] or [], credit}.  Returns the
   length written into buf, or SY_ENOSPACE. */
int benchwire_hello_body(uint8_t *buf, size_t cap, const char *name,
                         const char *service, uint32_t credit);

/* Body of sy.credit: {n}. */
int benchwire_credit_body(uint8_t *buf, size_t cap, uint32_t n);

/* Body of sy.ack: {id: bin 16}. */
int benchwire_ack_body(uint8_t *buf, size_t cap, const uint8_t id[16]);
/* sy.ack {ids: [n ids]} (n at most the broker's MSGTYPES_ACK_IDS_MAX). */
int benchwire_ack_ids_body(uint8_t *buf, size_t cap, const uint8_t (*ids)[16],
                           size_t n);

/* Body of sy.query: {what}. */
int benchwire_query_body(uint8_t *buf, size_t cap, const char *what);

/* Request body of exactly `size` bytes: {seq: uint64 (fixed width),
   pad: bin}.  size must be at least 32.  Returns size or SY_ENOSPACE /
   SY_EINVAL. */
int benchwire_request_body(uint8_t *buf, size_t cap, uint64_t seq,
                           size_t size);

/* Encodes env and sends it with body as two frames.  Returns 0 or
   SY_EIO (errno set by libzmq) / SY_EINVAL (header would not decode). */
int benchwire_send(void *sock, const envelope_t *env,
                   const uint8_t *body, size_t body_len);

/* Encodes env and sends it followed by the frame *body, which is moved
   (and left empty).  For the echo worker: no copy of the body. */
int benchwire_send_frame(void *sock, const envelope_t *env, zmq_msg_t *body);

/* Prepares m for benchwire_recv(). */
void benchwire_msg_init(benchwire_msg_t *m);
void benchwire_msg_close(benchwire_msg_t *m);

/* Receives one message (honours the socket's ZMQ_RCVTIMEO) and decodes its
   header.  Returns 0, SY_ETIMEOUT, SY_EIO, SY_EFRAMES (not two frames),
   or the envelope decoder's detail code. */
int benchwire_recv(void *sock, benchwire_msg_t *m);

/* Reads the uint field `key` of a msgpack map body (e.g. "seq", "n").
   Returns 0 or a negative code. */
int benchwire_body_uint(const uint8_t *body, size_t len, const char *key,
                        uint64_t *out);

/* Reads the bool field `key` of a msgpack map body. */
/* The number of ids (16-byte binaries) in the array field key of a map
   body: 0, SY_ENOTFOUND or SY_EBAD_BODY. */
int benchwire_body_ids(const uint8_t *body, size_t len, const char *key,
                       uint32_t *n);
/* sy.hello's body with batch_receipts: true when asked. */
int benchwire_hello_body_ex(uint8_t *buf, size_t cap, const char *name,
                            const char *service, uint32_t credit,
                            bool batch_receipts);
int benchwire_body_bool(const uint8_t *body, size_t len, const char *key,
                        bool *out);

/* True when an unsigned integer equal to value appears anywhere in the
   msgpack value body (every nested value is visited; bounded by len).
   For checking that a status answer shows a known queue depth without
   depending on where the broker puts it. */
bool benchwire_body_has_uint(const uint8_t *body, size_t len,
                             uint64_t value);

/* Reads the str field `key` of a msgpack map body into out (NUL-ended).
   Returns 0 or a negative code. */
int benchwire_body_str(const uint8_t *body, size_t len, const char *key,
                       char *out, size_t cap);

#endif
