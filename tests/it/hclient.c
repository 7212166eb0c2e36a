/*  hclient.c -- a test client that speaks the switchyard protocol itself.
 *
 *  A CZMQ DEALER (speed does not matter here, clarity does).  Headers are
 *  packed key by key so a test controls exactly what goes on the wire;
 *  received headers go through the strict envelope_decode(), so a broker
 *  that sends what it would itself refuse is caught.  Waiting is done in
 *  slices no longer than the heartbeat, sending sy.ping in between, so a
 *  long wait never gets the client expired.  See hclient.h.
 */
#include "hclient.h"

#include <czmq.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "hmp.h"
#include "schemas/syerr.h"
#include "schemas/syid.h"

struct _hclient_t {
    zsock_t *sock;
    char     name[ENVELOPE_NAME_MAX + 1];
    syid_t   ids;
    uint64_t hb, liveness, max_msg;
    int64_t  last_send_ms;
    hmsg_t   kept[HCLIENT_KEEP];   /* put back by hclient_keep(), oldest first */
    int      nkept;
};

hclient_t *hclient_new(const char *endpoint, const char *name)
{
    return hclient_new_curve(endpoint, name, NULL, NULL);
}

/* Makes the socket a CURVE client with the key pair of secret_path and
   the broker's public key.  Returns 0 or -1 (printed). */
static int hclient_curve_apply(zsock_t *sock, const char *secret_path,
                               const char *server_key)
{
    zcert_t *cert = zcert_load(secret_path);
    if (!cert) {
        fprintf(stderr, "hclient: cannot load certificate %s\n", secret_path);
        return -1;
    }
    zcert_apply(cert, sock);
    zcert_destroy(&cert);
    zsock_set_curve_serverkey(sock, server_key);
    return 0;
}

hclient_t *hclient_new_curve(const char *endpoint, const char *name,
                             const char *secret_path, const char *server_key)
{
    hclient_t *self = calloc(1, sizeof *self);
    if (!self) return NULL;
    self->sock = zsock_new(ZMQ_DEALER);
    if (!self->sock) { free(self); return NULL; }
    zsock_set_linger(self->sock, 0);
    zsock_set_sndhwm(self->sock, 10000);
    zsock_set_rcvhwm(self->sock, 10000);
    zsock_set_sndtimeo(self->sock, 2000);
    if (secret_path && hclient_curve_apply(self->sock, secret_path, server_key) != 0) {
        zsock_destroy(&self->sock);
        free(self);
        return NULL;
    }
    if (zsock_connect(self->sock, "%s", endpoint) != 0) {
        fprintf(stderr, "hclient: cannot connect to %s\n", endpoint);
        zsock_destroy(&self->sock);
        free(self);
        return NULL;
    }
    snprintf(self->name, sizeof self->name, "%s", name ? name : "it-client");
    syid_init(&self->ids);
    self->last_send_ms = harness_now_ms();
    return self;
}

void hclient_destroy(hclient_t **self_p)
{
    if (!self_p || !*self_p) return;
    hclient_t *self = *self_p;
    for (int i = 0; i < self->nkept; i++)
        hmsg_clear(&self->kept[i]);
    zsock_destroy(&self->sock);
    free(self);
    *self_p = NULL;
}

const char *hclient_name(const hclient_t *self) { return self->name; }
uint64_t hclient_hb(const hclient_t *self) { return self->hb; }
uint64_t hclient_max_msg(const hclient_t *self) { return self->max_msg; }

void hclient_new_id(hclient_t *self, uint8_t out[16])
{
    syid_next(&self->ids, out);
}

void hmsg_clear(hmsg_t *m)
{
    if (!m) return;
    free(m->body);
    memset(m, 0, sizeof *m);
}

int hclient_send_frames(hclient_t *self, const hframe_t *frames, int n)
{
    for (int i = 0; i < n; i++) {
        int flags = (i + 1 < n) ? ZMQ_SNDMORE : 0;
        void *s = zsock_resolve(self->sock);
        if (zmq_send(s, frames[i].data, frames[i].len, flags) < 0) {
            fprintf(stderr, "hclient: send failed: %s\n", zmq_strerror(zmq_errno()));
            return SY_EIO;
        }
    }
    self->last_send_ms = harness_now_ms();
    return 0;
}

static void hclient_pack_bin(hmp_buf_t *b, const char *key, const uint8_t *p, size_t n)
{
    hmp_str(b, key);
    msgpack_pack_bin(&b->pk, n);
    msgpack_pack_bin_body(&b->pk, p, n);
}

int hclient_send(hclient_t *self, const hsend_t *s, const uint8_t *body,
                 size_t len, uint8_t id_out[16])
{
    uint8_t id[16];
    hclient_new_id(self, id);
    if (id_out) memcpy(id_out, id, 16);
    int n = 3 + !!s->to + !!s->from + !!s->reply_to + !!s->corr + !!s->ttl
          + !!s->has_prio + !!s->durable + !!s->key;
    hmp_buf_t h;
    hmp_buf_init(&h);
    msgpack_pack_map(&h.pk, (size_t)n);
    hmp_str(&h, "v");
    msgpack_pack_uint32(&h.pk, ENVELOPE_VERSION);
    hclient_pack_bin(&h, "id", id, 16);
    hmp_str(&h, "type");
    hmp_str(&h, s->type);
    if (s->from) { hmp_str(&h, "from"); hmp_str(&h, s->from); }
    if (s->to) { hmp_str(&h, "to"); hmp_str(&h, s->to); }
    if (s->reply_to) { hmp_str(&h, "reply_to"); hmp_str(&h, s->reply_to); }
    if (s->corr) hclient_pack_bin(&h, "corr", s->corr, 16);
    if (s->ttl) { hmp_str(&h, "ttl"); msgpack_pack_uint64(&h.pk, s->ttl); }
    if (s->has_prio) { hmp_str(&h, "prio"); msgpack_pack_uint32(&h.pk, (uint32_t)s->prio); }
    if (s->durable) { hmp_str(&h, "durable"); msgpack_pack_true(&h.pk); }
    if (s->key) { hmp_str(&h, "key"); hmp_str(&h, s->key); }
    static const uint8_t empty_map = 0x80;
    hframe_t f[2] = {
        { h.sb.data, h.sb.size },
        { body ? (const void *)body : (const void *)&empty_map, body ? len : 1 },
    };
    int rc = hclient_send_frames(self, f, 2);
    hmp_buf_clear(&h);
    return rc;
}

/* Sends a sy.* message with a body built by the caller. */
static int hclient_send_sy(hclient_t *self, const char *type, hmp_buf_t *body,
                           uint8_t id_out[16])
{
    hsend_t s = { .type = type };
    return hclient_send(self, &s, (const uint8_t *)body->sb.data, body->sb.size, id_out);
}

static int hclient_ping(hclient_t *self)
{
    hmp_buf_t b;
    hmp_buf_init(&b);
    msgpack_pack_map(&b.pk, 0);
    int rc = hclient_send_sy(self, "sy.ping", &b, NULL);
    hmp_buf_clear(&b);
    return rc;
}

/* Reads one message already waiting on the socket into m. */
static int hclient_read(hclient_t *self, hmsg_t *m)
{
    zmsg_t *msg = zmsg_recv(self->sock);
    if (!msg) return SY_EIO;
    memset(m, 0, sizeof *m);
    m->at_ms = harness_now_ms();
    m->nframes = (int)zmsg_size(msg);
    zframe_t *hf = zmsg_first(msg);
    zframe_t *bf = zmsg_next(msg);
    if (bf) {
        m->body_len = zframe_size(bf);
        m->body = malloc(m->body_len ? m->body_len : 1);
        if (m->body) memcpy(m->body, zframe_data(bf), m->body_len);
    }
    char err[200];
    int rc = envelope_decode(&m->hdr, zframe_data(hf), zframe_size(hf), err, sizeof err);
    if (rc) {
        fprintf(stderr, "hclient %s: the broker sent a header that does not decode "
                "(%s: %s), %d frames\n", self->name, syerr_name(rc), err, m->nframes);
        zmsg_destroy(&msg);
        return SY_EBAD_ENVELOPE;
    }
    if (m->nframes != 2)
        fprintf(stderr, "hclient %s: message of %d frames (type %s)\n",
                self->name, m->nframes, m->hdr.type);
    zmsg_destroy(&msg);
    return 0;
}

int hclient_keep(hclient_t *self, hmsg_t *m)
{
    if (self->nkept >= HCLIENT_KEEP)
        return SY_ENOSPACE;
    self->kept[self->nkept++] = *m;
    memset(m, 0, sizeof *m);
    return 0;
}

int hclient_recv(hclient_t *self, hmsg_t *m, int timeout_ms)
{
    if (self->nkept > 0) {
        *m = self->kept[0];
        memmove(&self->kept[0], &self->kept[1], (size_t)(--self->nkept) * sizeof *m);
        return 0;
    }
    int64_t deadline = harness_now_ms() + timeout_ms;
    zpoller_t *poller = zpoller_new(self->sock, NULL);
    int rc = SY_ETIMEOUT;
    for (;;) {
        int64_t now = harness_now_ms();
        if (self->hb && now - self->last_send_ms >= (int64_t)self->hb)
            hclient_ping(self);
        if (now >= deadline) break;
        int64_t slice = deadline - now;
        if (self->hb && slice > (int64_t)self->hb / 2) slice = (int64_t)self->hb / 2;
        if (slice < 1) slice = 1;
        if (!zpoller_wait(poller, (int)slice)) {
            if (zpoller_terminated(poller)) break;
            continue;
        }
        rc = hclient_read(self, m);
        if (rc == 0 && strcmp(m->hdr.type, "sy.pong") == 0) {
            hmsg_clear(m);
            rc = SY_ETIMEOUT;
            continue;
        }
        break;
    }
    zpoller_destroy(&poller);
    return rc;
}

int hclient_recv_type(hclient_t *self, const char *type, hmsg_t *m,
                      int timeout_ms, int *skipped)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - harness_now_ms();
        if (left <= 0) return SY_ETIMEOUT;
        int rc = hclient_recv(self, m, (int)left);
        if (rc) return rc;
        if (strcmp(m->hdr.type, type) == 0) return 0;
        if (skipped) (*skipped)++;
        hmsg_print("  (skipped) ", m);
        hmsg_clear(m);
    }
}

int hclient_recv_corr(hclient_t *self, const uint8_t corr[16], hmsg_t *m,
                      int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - harness_now_ms();
        if (left <= 0) return SY_ETIMEOUT;
        int rc = hclient_recv(self, m, (int)left);
        if (rc) return rc;
        if ((m->hdr.present & ENV_HAS_CORR) && memcmp(m->hdr.corr, corr, 16) == 0)
            return 0;
        hmsg_print("  (skipped) ", m);
        hmsg_clear(m);
    }
}

int hclient_hello(hclient_t *self, const char *const *services,
                  uint32_t credit, int timeout_ms)
{
    size_t ns = 0;
    while (services && services[ns]) ns++;
    hmp_buf_t b;
    hmp_buf_init(&b);
    msgpack_pack_map(&b.pk, 3);
    hmp_str(&b, "name");
    hmp_str(&b, self->name);
    hmp_str(&b, "services");
    msgpack_pack_array(&b.pk, ns);
    for (size_t i = 0; i < ns; i++) hmp_str(&b, services[i]);
    hmp_str(&b, "credit");
    msgpack_pack_uint32(&b.pk, credit);
    uint8_t id[16];
    int rc = hclient_send_sy(self, "sy.hello", &b, id);
    hmp_buf_clear(&b);
    if (rc) return rc;
    hmsg_t m;
    rc = hclient_recv_corr(self, id, &m, timeout_ms);
    if (rc) return rc;
    if (strcmp(m.hdr.type, "sy.welcome") != 0) {
        hmsg_print("hello answered with ", &m);
        hmsg_clear(&m);
        return SY_EDENIED;
    }
    hmp_get_uint(m.body, m.body_len, "hb", &self->hb);
    hmp_get_uint(m.body, m.body_len, "liveness", &self->liveness);
    hmp_get_uint(m.body, m.body_len, "max_msg", &self->max_msg);
    hmsg_clear(&m);
    return 0;
}

int hclient_request(hclient_t *self, const char *to, const char *type,
                    const uint8_t *body, size_t len, hmsg_t *m,
                    int timeout_ms)
{
    hsend_t s = { .type = type, .to = to };
    uint8_t id[16];
    int rc = hclient_send(self, &s, body, len, id);
    if (rc) return rc;
    return hclient_recv_corr(self, id, m, timeout_ms);
}

int hclient_send_echo(hclient_t *self, const hsend_t *s, uint64_t seq,
                      const char *data, int64_t delay_ms, uint8_t id_out[16])
{
    hmp_buf_t b;
    hmp_buf_init(&b);
    hmp_echo_request(&b, seq, data, delay_ms);
    hsend_t hdr = *s;
    hdr.type = "echo.request";
    int rc = hclient_send(self, &hdr, (const uint8_t *)b.sb.data, b.sb.size, id_out);
    hmp_buf_clear(&b);
    return rc;
}

int hclient_request_echo(hclient_t *self, const char *to, uint64_t seq,
                         const char *data, hmsg_t *m, int timeout_ms)
{
    hsend_t s = { .to = to };
    uint8_t id[16];
    int rc = hclient_send_echo(self, &s, seq, data, -1, id);
    if (rc) return rc;
    return hclient_recv_corr(self, id, m, timeout_ms);
}

int hclient_status(hclient_t *self, hmsg_t *m, int timeout_ms)
{
    hmp_buf_t b;
    hmp_buf_init(&b);
    msgpack_pack_map(&b.pk, 1);
    hmp_str(&b, "what");
    hmp_str(&b, "status");
    uint8_t id[16];
    int rc = hclient_send_sy(self, "sy.query", &b, id);
    hmp_buf_clear(&b);
    if (rc) return rc;
    return hclient_recv_corr(self, id, m, timeout_ms);
}

int hclient_sub(hclient_t *self, const char *topic)
{
    hmp_buf_t b;
    hmp_buf_init(&b);
    msgpack_pack_map(&b.pk, 1);
    hmp_str(&b, "topic");
    hmp_str(&b, topic);
    int rc = hclient_send_sy(self, "sy.sub", &b, NULL);
    hmp_buf_clear(&b);
    return rc;
}

int hclient_sync(hclient_t *self, int timeout_ms)
{
    int rc = hclient_ping(self);
    if (rc) return rc;
    /* hclient_recv swallows pongs, so read raw here. */
    int64_t deadline = harness_now_ms() + timeout_ms;
    zpoller_t *poller = zpoller_new(self->sock, NULL);
    rc = SY_ETIMEOUT;
    while (harness_now_ms() < deadline) {
        if (!zpoller_wait(poller, 100)) continue;
        hmsg_t m;
        if (hclient_read(self, &m) != 0) continue;
        bool pong = strcmp(m.hdr.type, "sy.pong") == 0;
        if (!pong) hmsg_print("  (skipped while syncing) ", &m);
        hmsg_clear(&m);
        if (pong) { rc = 0; break; }
    }
    zpoller_destroy(&poller);
    return rc;
}

int hclient_ack(hclient_t *self, const uint8_t id[16])
{
    hmp_buf_t b;
    hmp_buf_init(&b);
    msgpack_pack_map(&b.pk, 1);
    hclient_pack_bin(&b, "id", id, 16);
    int rc = hclient_send_sy(self, "sy.ack", &b, NULL);
    hmp_buf_clear(&b);
    return rc;
}

int hclient_nack(hclient_t *self, const uint8_t id[16], const char *reason,
                 bool requeue, int64_t delay_ms)
{
    hmp_buf_t b;
    hmp_buf_init(&b);
    msgpack_pack_map(&b.pk, 2 + !!reason + (delay_ms >= 0));
    hclient_pack_bin(&b, "id", id, 16);
    if (reason) { hmp_str(&b, "reason"); hmp_str(&b, reason); }
    hmp_str(&b, "requeue");
    if (requeue) msgpack_pack_true(&b.pk); else msgpack_pack_false(&b.pk);
    if (delay_ms >= 0) { hmp_str(&b, "delay_ms"); msgpack_pack_uint64(&b.pk, (uint64_t)delay_ms); }
    int rc = hclient_send_sy(self, "sy.nack", &b, NULL);
    hmp_buf_clear(&b);
    return rc;
}

int hclient_lease(hclient_t *self, const uint8_t id[16], uint64_t ms)
{
    hmp_buf_t b;
    hmp_buf_init(&b);
    msgpack_pack_map(&b.pk, 2);
    hclient_pack_bin(&b, "id", id, 16);
    hmp_str(&b, "ms");
    msgpack_pack_uint64(&b.pk, ms);
    int rc = hclient_send_sy(self, "sy.lease", &b, NULL);
    hmp_buf_clear(&b);
    return rc;
}

int hclient_query(hclient_t *self, const hquery_t *q, hmsg_t *m, int timeout_ms)
{
    hmp_buf_t b;
    hmp_buf_init(&b);
    msgpack_pack_map(&b.pk, 1 + !!q->service + q->has_n + !!q->id + q->all);
    hmp_str(&b, "what");
    hmp_str(&b, q->what);
    if (q->service) { hmp_str(&b, "service"); hmp_str(&b, q->service); }
    if (q->has_n) { hmp_str(&b, "n"); msgpack_pack_uint64(&b.pk, q->n); }
    if (q->id) hclient_pack_bin(&b, "id", q->id, 16);
    if (q->all) { hmp_str(&b, "all"); msgpack_pack_true(&b.pk); }
    uint8_t id[16];
    int rc = hclient_send_sy(self, "sy.query", &b, id);
    hmp_buf_clear(&b);
    if (rc) return rc;
    return hclient_recv_corr(self, id, m, timeout_ms);
}

bool hmsg_receipt(const hmsg_t *m, char *code, size_t ccap,
                  char *detail, size_t dcap)
{
    if (ccap) code[0] = 0;
    if (dcap) detail[0] = 0;
    if (strcmp(m->hdr.type, "sy.receipt") != 0) return false;
    hmp_get_str(m->body, m->body_len, "code", code, ccap);
    hmp_get_str(m->body, m->body_len, "detail", detail, dcap);
    return true;
}

void hmsg_print(const char *prefix, const hmsg_t *m)
{
    char body[600];
    hmp_to_text(m->body, m->body_len, body, sizeof body);
    char corr[33] = "-";
    if (m->hdr.present & ENV_HAS_CORR) envelope_id_hex(m->hdr.corr, corr);
    fprintf(stderr, "%stype=%s from=%s to=%s corr=%s frames=%d body=%s\n",
            prefix ? prefix : "", m->hdr.type,
            (m->hdr.present & ENV_HAS_FROM) ? m->hdr.from : "-",
            (m->hdr.present & ENV_HAS_TO) ? m->hdr.to : "-",
            corr, m->nframes, body);
}
