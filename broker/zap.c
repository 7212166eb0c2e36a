/*  zap.c -- the broker's ZAP handler (see zap.h).
 *
 *  Ideas:
 *  - One REP socket in the broker's own zloop: handshakes are rare and the
 *    answer is one hash lookup, so no thread of its own is needed, and the
 *    allow-list is touched by one thread only.
 *  - The reply's metadata frame carries the role and the public key as
 *    connection properties; with them every later message can be checked
 *    against the current list (zap_peer) without a table of connections.
 *  - Malformed requests (libzmq never sends them, but the socket is in the
 *    process's context) get a 500 rather than no answer: a REP socket must
 *    answer to stay usable.
 */
#include "broker/zap.h"
#include "common/sylog.h"
#include "schemas/syerr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _zap_t {
    zloop_t *loop;
    zsock_t *sock;
    int timer_id;                 /* -1: none */
    allowlist_t *allow;
    zap_revoked_fn *on_revoked;
    void *arg;
    uint64_t accepted, refused;
};

/* Appends one ZMTP property (1-byte name length, name, 4-byte big-endian
   value length, value) to buf.  Returns the new length. */
static size_t zap_put_prop(uint8_t *buf, size_t at, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    buf[at++] = (uint8_t) nl;
    memcpy(buf + at, name, nl);
    at += nl;
    buf[at++] = (uint8_t) (vl >> 24);
    buf[at++] = (uint8_t) (vl >> 16);
    buf[at++] = (uint8_t) (vl >> 8);
    buf[at++] = (uint8_t) vl;
    memcpy(buf + at, value, vl);
    return at + vl;
}

/* Sends the six-frame ZAP reply. */
static void zap_reply(zap_t *self, zframe_t *request_id, const char *status,
                      const char *text, const allowlist_entry_t *e)
{
    zmsg_t *reply = zmsg_new();
    zmsg_addstr(reply, "1.0");
    if (request_id)
        zmsg_append(reply, &request_id);
    else
        zmsg_addstr(reply, "");
    zmsg_addstr(reply, status);
    zmsg_addstr(reply, text);
    if (e) {
        uint8_t meta[128];
        size_t n = zap_put_prop(meta, 0, ZAP_PROP_ROLE, certs_role_name(e->role));
        n = zap_put_prop(meta, n, ZAP_PROP_KEY, e->key);
        zmsg_addstr(reply, e->name);
        zmsg_addmem(reply, meta, n);
    } else {
        zmsg_addstr(reply, "");
        zmsg_addmem(reply, NULL, 0);
    }
    if (zmsg_send(&reply, self->sock) != 0)
        zmsg_destroy(&reply);
}

/* Frame i of msg as a NUL-terminated string in out (cut to fit). */
static void zap_frame_str(zframe_t *f, char *out, size_t cap)
{
    size_t n = f ? zframe_size(f) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(out, zframe_data(f), n);
    out[n] = '\0';
}

/* Picks up changes of the allow-list now (as the timer would) and
   reports removed names; returns whether it reloaded. */
static bool zap_refresh(zap_t *self)
{
    zlist_t *removed = NULL;
    bool changed = false;
    int rc = allowlist_refresh(self->allow, &changed, &removed);
    if (rc < 0)
        sylog_warn("zap: cannot re-read the allow-list: %s (keeping the last one)",
                   syerr_text(rc));
    for (const char *name = removed ? zlist_first(removed) : NULL; name;
         name = zlist_next(removed))
        if (self->on_revoked)
            self->on_revoked(name, self->arg);
    zlist_destroy(&removed);
    return changed;
}

/* An unknown key may have been enrolled since the last refresh: look
   again after re-reading the list if it changed (two stat calls when it
   did not), so an enrollment works at once, not at the next tick. */
static const allowlist_entry_t *zap_lookup_fresh(zap_t *self, const uint8_t *key)
{
    return zap_refresh(self) ? allowlist_lookup_bin(self->allow, key) : NULL;
}

/* Answers one request: [version, request_id, domain, address, identity,
   mechanism, credentials...]. */
static int zap_on_request(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    zap_t *self = arg;
    zmsg_t *req = zmsg_recv(sock);
    if (req == NULL)
        return 0;                         /* interrupted */
    zframe_t *version = zmsg_pop(req);
    zframe_t *request_id = zmsg_pop(req);
    zframe_t *domain = zmsg_pop(req);
    zframe_t *address = zmsg_pop(req);
    zframe_t *identity = zmsg_pop(req);
    zframe_t *mechanism = zmsg_pop(req);
    zframe_t *key = zmsg_pop(req);
    char addr[64], mech[16];
    zap_frame_str(address, addr, sizeof addr);
    zap_frame_str(mechanism, mech, sizeof mech);

    if (version == NULL || !zframe_streq(version, "1.0") || mechanism == NULL) {
        self->refused++;
        sylog_warn("zap: malformed request refused");
        zap_reply(self, request_id, "500", "malformed ZAP request", NULL);
        request_id = NULL;
    } else if (strcmp(mech, "CURVE") != 0 || key == NULL || zframe_size(key) != 32) {
        self->refused++;
        sylog_warn("zap: refused a %s connection from %s: CURVE required", mech, addr);
        zap_reply(self, request_id, "400", "CURVE required", NULL);
        request_id = NULL;
    } else {
        const allowlist_entry_t *e = allowlist_lookup_bin(self->allow, zframe_data(key));
        if (e == NULL)
            e = zap_lookup_fresh(self, zframe_data(key));
        if (e) {
            self->accepted++;
            sylog_info("zap: %s (%s, key %.8s...) connected from %s", e->name,
                       certs_role_name(e->role), e->key, addr);
            zap_reply(self, request_id, "200", "OK", e);
        } else {
            char z85[41] = "";
            zmq_z85_encode(z85, zframe_data(key), 32);
            self->refused++;
            sylog_warn("zap: refused key %.8s... from %s: %s", z85, addr,
                       allowlist_is_revoked(self->allow, z85) ? "revoked" : "not enrolled");
            zap_reply(self, request_id, "400", "not enrolled", NULL);
        }
        request_id = NULL;
    }
    zframe_destroy(&version);
    zframe_destroy(&request_id);
    zframe_destroy(&domain);
    zframe_destroy(&address);
    zframe_destroy(&identity);
    zframe_destroy(&mechanism);
    zframe_destroy(&key);
    zmsg_destroy(&req);
    return 0;
}

/* Picks up changes of the allow-list and reports the names removed. */
static int zap_on_timer(zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    zap_refresh(arg);
    return 0;
}

int zap_new(zloop_t *loop, allowlist_t *allow, int refresh_ms,
            zap_revoked_fn *on_revoked, void *arg, zap_t **out,
            char *err, size_t errlen)
{
    if (loop == NULL || allow == NULL || out == NULL || refresh_ms < 0)
        return SY_EINVAL;
    *out = NULL;
    zap_t *self = calloc(1, sizeof *self);
    if (self == NULL)
        return syerr_fmt(err, errlen, SY_ENOMEM, "out of memory");
    self->loop = loop;
    self->allow = allow;
    self->on_revoked = on_revoked;
    self->arg = arg;
    self->timer_id = -1;
    self->sock = zsock_new(ZMQ_REP);
    if (self->sock == NULL || zsock_bind(self->sock, ZAP_ENDPOINT) != 0) {
        int rc = syerr_fmt(err, errlen, SY_EIO, "cannot bind %s: %s (is another ZAP "
                           "handler or zauth running?)", ZAP_ENDPOINT,
                           zmq_strerror(zmq_errno()));
        zap_destroy(&self);
        return rc;
    }
    if (zloop_reader(loop, self->sock, zap_on_request, self) != 0) {
        zap_destroy(&self);
        return syerr_fmt(err, errlen, SY_ENOMEM, "cannot register the ZAP socket in the loop");
    }
    if (refresh_ms > 0) {
        self->timer_id = zloop_timer(loop, (size_t) refresh_ms, 0, zap_on_timer, self);
        if (self->timer_id < 0) {
            zap_destroy(&self);
            return syerr_fmt(err, errlen, SY_ENOMEM, "cannot register the allow-list timer");
        }
    }
    *out = self;
    return 0;
}

void zap_destroy(zap_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    zap_t *self = *self_p;
    if (self->timer_id >= 0)
        zloop_timer_end(self->loop, self->timer_id);
    if (self->sock) {
        zloop_reader_end(self->loop, self->sock);
        /* Unbind first: closing alone frees the inproc name later, in
           libzmq's reaper thread, and a new handler made at once (a
           restart inside one process, as the tests do) could not bind. */
        zsock_unbind(self->sock, "%s", ZAP_ENDPOINT);
        zsock_destroy(&self->sock);
    }
    free(self);
    *self_p = NULL;
}

void zap_stats(zap_t *self, uint64_t *accepted, uint64_t *refused)
{
    if (accepted)
        *accepted = self ? self->accepted : 0;
    if (refused)
        *refused = self ? self->refused : 0;
}

const allowlist_entry_t *zap_peer(allowlist_t *allow, const zmq_msg_t *msg)
{
    const char *user = zmq_msg_gets(msg, "User-Id");
    const char *key = zmq_msg_gets(msg, ZAP_PROP_KEY);
    if (user == NULL || key == NULL)
        return NULL;
    const allowlist_entry_t *e = allowlist_lookup(allow, key);
    if (e == NULL || strcmp(e->name, user) != 0)
        return NULL;
    return e;
}
