/*  benchwire.c -- building, sending and receiving the benchmark's messages.
 *
 *  Bodies are packed with msgpack-c's packer writing into a fixed buffer
 *  (benchwire_fixbuf_t) instead of an sbuffer, so a request costs no
 *  malloc on either side of the comparison.  Received frames stay zmq_msg_t
 *  so that the echo worker returns the body frame it got (zero copy), as a
 *  real forwarding actor would.
 */
#include "bench/benchwire.h"

#include <errno.h>
#include <msgpack.h>
#include <string.h>

#include "schemas/mpread.h"
#include "schemas/syerr.h"

/* A msgpack-c write target of fixed capacity. */
typedef struct {
    uint8_t *buf;
    size_t   cap;
    size_t   len;
    bool     overflow;
} benchwire_fixbuf_t;

static int benchwire_fixbuf_write(void *data, const char *p, size_t n)
{
    benchwire_fixbuf_t *fb = data;
    if (n > fb->cap - fb->len) {
        fb->overflow = true;
        return -1;
    }
    memcpy(fb->buf + fb->len, p, n);
    fb->len += n;
    return 0;
}

static void benchwire_fixbuf_init(benchwire_fixbuf_t *fb, msgpack_packer *pk,
                                  uint8_t *buf, size_t cap)
{
    fb->buf = buf;
    fb->cap = cap;
    fb->len = 0;
    fb->overflow = false;
    msgpack_packer_init(pk, fb, benchwire_fixbuf_write);
}

static void benchwire_pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static int benchwire_fixbuf_result(const benchwire_fixbuf_t *fb)
{
    return fb->overflow ? SY_ENOSPACE : (int)fb->len;
}

int benchwire_header(envelope_t *env, syid_t *gen, const char *type,
                     const char *to, const uint8_t *corr)
{
    envelope_init(env);
    syid_next(gen, env->id);
    int rc = envelope_set_type(env, type);
    if (rc == 0 && to)
        rc = envelope_set_to(env, to);
    if (rc == 0 && corr) {
        memcpy(env->corr, corr, ENVELOPE_ID_LEN);
        env->present |= ENV_HAS_CORR;
    }
    return rc;
}

int benchwire_hello_body(uint8_t *buf, size_t cap, const char *name,
                         const char *service, uint32_t credit)
{
    return benchwire_hello_body_ex(buf, cap, name, service, credit, false);
}

int benchwire_hello_body_ex(uint8_t *buf, size_t cap, const char *name,
                            const char *service, uint32_t credit,
                            bool batch_receipts)
{
    benchwire_fixbuf_t fb;
    msgpack_packer pk;
    benchwire_fixbuf_init(&fb, &pk, buf, cap);
    msgpack_pack_map(&pk, batch_receipts ? 4 : 3);
    if (batch_receipts) {
        benchwire_pack_str(&pk, "batch_receipts");
        msgpack_pack_true(&pk);
    }
    benchwire_pack_str(&pk, "name");
    benchwire_pack_str(&pk, name);
    benchwire_pack_str(&pk, "services");
    msgpack_pack_array(&pk, service ? 1 : 0);
    if (service)
        benchwire_pack_str(&pk, service);
    benchwire_pack_str(&pk, "credit");
    msgpack_pack_uint32(&pk, credit);
    return benchwire_fixbuf_result(&fb);
}

int benchwire_credit_body(uint8_t *buf, size_t cap, uint32_t n)
{
    benchwire_fixbuf_t fb;
    msgpack_packer pk;
    benchwire_fixbuf_init(&fb, &pk, buf, cap);
    msgpack_pack_map(&pk, 1);
    benchwire_pack_str(&pk, "n");
    msgpack_pack_uint32(&pk, n);
    return benchwire_fixbuf_result(&fb);
}

int benchwire_ack_body(uint8_t *buf, size_t cap, const uint8_t id[16])
{
    benchwire_fixbuf_t fb;
    msgpack_packer pk;
    benchwire_fixbuf_init(&fb, &pk, buf, cap);
    msgpack_pack_map(&pk, 1);
    benchwire_pack_str(&pk, "id");
    msgpack_pack_bin(&pk, 16);
    msgpack_pack_bin_body(&pk, id, 16);
    return benchwire_fixbuf_result(&fb);
}

int benchwire_ack_ids_body(uint8_t *buf, size_t cap, const uint8_t (*ids)[16],
                           size_t n)
{
    benchwire_fixbuf_t fb;
    msgpack_packer pk;
    benchwire_fixbuf_init(&fb, &pk, buf, cap);
    msgpack_pack_map(&pk, 1);
    benchwire_pack_str(&pk, "ids");
    msgpack_pack_array(&pk, n);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_bin(&pk, 16);
        msgpack_pack_bin_body(&pk, ids[i], 16);
    }
    return benchwire_fixbuf_result(&fb);
}

int benchwire_query_body(uint8_t *buf, size_t cap, const char *what)
{
    benchwire_fixbuf_t fb;
    msgpack_packer pk;
    benchwire_fixbuf_init(&fb, &pk, buf, cap);
    msgpack_pack_map(&pk, 1);
    benchwire_pack_str(&pk, "what");
    benchwire_pack_str(&pk, what);
    return benchwire_fixbuf_result(&fb);
}

/* Size of a msgpack bin header for n bytes of data. */
static size_t benchwire_bin_head(size_t n)
{
    return n <= 0xff ? 2 : n <= 0xffff ? 3 : 5;
}

int benchwire_request_body(uint8_t *buf, size_t cap, uint64_t seq,
                           size_t size)
{
    if (size < 32 || size > BENCHWIRE_BODY_MAX)
        return SY_EINVAL;
    if (size > cap)
        return SY_ENOSPACE;
    benchwire_fixbuf_t fb;
    msgpack_packer pk;
    benchwire_fixbuf_init(&fb, &pk, buf, cap);
    msgpack_pack_map(&pk, 2);
    benchwire_pack_str(&pk, "seq");
    msgpack_pack_fix_uint64(&pk, seq);   /* fixed width: every body the same size */
    benchwire_pack_str(&pk, "pad");
    size_t used = fb.len;
    /* Pick the pad length whose bin header makes the total exactly size. */
    size_t pad = size - used - 2;
    if (benchwire_bin_head(pad) != 2)
        pad = size - used - 3;
    if (benchwire_bin_head(pad) == 5)
        pad = size - used - 5;
    msgpack_pack_bin(&pk, pad);
    if (fb.overflow || pad > fb.cap - fb.len)
        return SY_ENOSPACE;
    /* A recognisable pattern, so a broken forwarder that mangles bodies
       would show in a hex dump. */
    for (size_t i = 0; i < pad; i++)
        fb.buf[fb.len + i] = (uint8_t)('a' + i % 26);
    fb.len += pad;
    return fb.len == size ? (int)size : SY_EINVAL;
}

static int benchwire_send_header(void *sock, const envelope_t *env)
{
    uint8_t hbuf[ENVELOPE_MAX_ENCODED];
    int hlen = envelope_encode(env, hbuf, sizeof hbuf);
    if (hlen < 0)
        return hlen;
    if (zmq_send(sock, hbuf, (size_t)hlen, ZMQ_SNDMORE) < 0)
        return SY_EIO;
    return 0;
}

int benchwire_send(void *sock, const envelope_t *env,
                   const uint8_t *body, size_t body_len)
{
    int rc = benchwire_send_header(sock, env);
    if (rc < 0)
        return rc;
    return zmq_send(sock, body, body_len, 0) < 0 ? SY_EIO : 0;
}

int benchwire_send_frame(void *sock, const envelope_t *env, zmq_msg_t *body)
{
    int rc = benchwire_send_header(sock, env);
    if (rc < 0)
        return rc;
    return zmq_msg_send(body, sock, 0) < 0 ? SY_EIO : 0;
}

void benchwire_msg_init(benchwire_msg_t *m)
{
    zmq_msg_init(&m->hdr_frame);
    zmq_msg_init(&m->body_frame);
    envelope_init(&m->hdr);
}

void benchwire_msg_close(benchwire_msg_t *m)
{
    zmq_msg_close(&m->hdr_frame);
    zmq_msg_close(&m->body_frame);
}

/* Drains the rest of a message with too many frames. */
static void benchwire_drain(void *sock)
{
    int more = 1;
    size_t sz = sizeof more;
    for (int i = 0; i < 1000 && more; i++) {
        zmq_msg_t x;
        zmq_msg_init(&x);
        if (zmq_msg_recv(&x, sock, 0) < 0) {
            zmq_msg_close(&x);
            return;
        }
        zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz);
        zmq_msg_close(&x);
    }
}

int benchwire_recv(void *sock, benchwire_msg_t *m)
{
    if (zmq_msg_recv(&m->hdr_frame, sock, 0) < 0)
        return errno == EAGAIN ? SY_ETIMEOUT : SY_EIO;
    if (!zmq_msg_more(&m->hdr_frame))
        return SY_EFRAMES;
    /* The second frame is already here: libzmq delivers messages whole. */
    if (zmq_msg_recv(&m->body_frame, sock, 0) < 0)
        return SY_EIO;
    if (zmq_msg_more(&m->body_frame)) {
        benchwire_drain(sock);
        return SY_EFRAMES;
    }
    return envelope_decode(&m->hdr, zmq_msg_data(&m->hdr_frame),
                           zmq_msg_size(&m->hdr_frame), NULL, 0);
}

static int benchwire_body_find(const uint8_t *body, size_t len,
                               const char *key, mpval_t *out)
{
    mpread_t r;
    mpval_t map;
    mpread_init(&r, body, len);
    int rc = mpread_next(&r, &map);
    if (rc < 0)
        return rc;
    if (map.kind != MP_MAP)
        return SY_ENOT_MAP;
    return mpread_map_find(&r, &map, key, out, NULL);
}

int benchwire_body_uint(const uint8_t *body, size_t len, const char *key,
                        uint64_t *out)
{
    mpval_t v;
    int rc = benchwire_body_find(body, len, key, &v);
    if (rc < 0)
        return rc;
    return mpval_as_uint(&v, out) ? 0 : SY_EFIELD_TYPE;
}

int benchwire_body_ids(const uint8_t *body, size_t len, const char *key,
                        uint32_t *n)
{
    mpread_t r, at;
    mpval_t map, arr, v;
    mpread_init(&r, body, len);
    if (mpread_next(&r, &map) != 0 || map.kind != MP_MAP
        || mpread_map_find(&r, &map, key, &arr, &at) != 0 || arr.kind != MP_ARRAY)
        return SY_ENOTFOUND;
    for (uint32_t i = 0; i < arr.len; i++)
        if (mpread_next(&at, &v) != 0 || v.kind != MP_BIN || v.len != 16)
            return SY_EBAD_BODY;
    *n = arr.len;
    return 0;
}

int benchwire_body_bool(const uint8_t *body, size_t len, const char *key,
                        bool *out)
{
    mpval_t v;
    int rc = benchwire_body_find(body, len, key, &v);
    if (rc < 0)
        return rc;
    if (v.kind != MP_BOOL)
        return SY_EFIELD_TYPE;
    *out = v.b;
    return 0;
}

bool benchwire_body_has_uint(const uint8_t *body, size_t len, uint64_t value)
{
    mpread_t r;
    mpread_init(&r, body, len);
    /* mpread_next() consumes at least one byte per value, so len bounds
       the walk. */
    for (size_t i = 0; i < len && mpread_left(&r) > 0; i++) {
        mpval_t v;
        uint64_t u;
        if (mpread_next(&r, &v) < 0)
            return false;
        if (mpval_as_uint(&v, &u) && u == value)
            return true;
    }
    return false;
}

int benchwire_body_str(const uint8_t *body, size_t len, const char *key,
                       char *out, size_t cap)
{
    mpval_t v;
    int rc = benchwire_body_find(body, len, key, &v);
    if (rc < 0)
        return rc;
    if (v.kind != MP_STR)
        return SY_EFIELD_TYPE;
    if (cap == 0 || v.len >= cap)
        return SY_ENOSPACE;
    memcpy(out, v.ptr, v.len);
    out[v.len] = '\0';
    return 0;
}
