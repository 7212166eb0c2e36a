/*  frontdoor.c -- sy-frontdoor, the chat front door (docs/CHAT.md).
 *
 *  Every chat.message comes here first.  The front door decides who the
 *  user is (a direct client is its own name, channel zmq, answered at
 *  "@name"; a bridge named in frontdoor/bridges speaks for its channel's
 *  users and is answered durably at its service), checks the message
 *  (length, attachments, the user's rate), answers commands itself, and
 *  turns every other message into a job: the user's turn goes into the
 *  conversation, the job into the store, and chat.request (with the
 *  history before this turn) durably to the router.  Everything that comes
 *  back about a job -- chat.routed, chat.token, chat.notice, chat.reply --
 *  is matched to the job's user and relayed there; the answer ends the
 *  job, once: a second copy finds no pending job and is dropped.
 *
 *  The ideas:
 *
 *  - State lives in the store (actors/chatstore.h), written before it is
 *    acted on, one transaction per change.  A durable delivery is acked
 *    only once what it caused is durable somewhere else too: a bridge's
 *    chat.message after the router's receipt for the chat.request; a
 *    worker's chat.reply, for a direct client, after the answer is in the
 *    outbox (the same transaction that ends the job), for a bridge after
 *    the bridge's service has the answer (the broker's receipt).  In the
 *    bridge case the job ends only after that receipt, and the answer
 *    goes out with the key reply:<job hex>, so a crash in between sends
 *    it again and the broker's dedup answers DUPLICATE: one answer.
 *  - Handlers that wait for a receipt keep the delivery (ACTOR_KEEP) and
 *    leave a "wait" keyed by the sent message's id; the sy.receipt
 *    handler settles it.  Waits belong to one connection: when it is lost
 *    the runtime voids the held deliveries (the broker gives them out
 *    again), so the waits are dropped too.
 *  - Commands that need the broker (/status, /queue, /cancel) send
 *    sy.query and leave a "command" that collects the answers (sy.answer,
 *    or an error receipt, both with corr = the query's id) and replies
 *    when all have come or after syctl/timeout.
 *  - A direct client's replies and notices go through its outbox first
 *    (numbered, durable), then are sent without durability: a client that
 *    is away gets them with chat.sync.  Streamed tokens are never kept.
 *  - Bodies going to a user are built as msgpack map pairs; the address
 *    fields (user, addr, ref) and, for a direct client, seq are added as
 *    the message leaves, so relayed bodies are copied pair by pair
 *    without being re-encoded.
 *
 *  Settings: frontdoor/... and actor/...; --config, --cert, --name and
 *  --endpoint as every actor.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "actors/actor.h"
#include "actors/chatstore.h"
#include "common/cliargs.h"
#include "common/config.h"
#include "common/sylog.h"
#include "schemas/envelope.h"
#include "schemas/mpread.h"
#include "schemas/syerr.h"
#include "schemas/syid.h"

#define FD_EXIT_USAGE  2
#define FD_EXIT_CONFIG 4
#define FD_DEFERRED    2            /* deliver(): the ack waits for a receipt */
#define FD_NACK_DELAY_MS 5000       /* a refused send is tried again after */
#define FD_RATE_MAX_USERS 10000     /* buckets kept before full ones go */
#define FD_QUEUE_MAX   20           /* jobs listed by /queue */
#define FD_CHANNEL_ZMQ "zmq"

/* ------------------------------------------------------------ types */

/* Where a user's messages go. */
typedef struct {
    char channel[CHATSTORE_CHANNEL_MAX + 1];
    char user[CHATSTORE_USER_MAX + 1];
    char addr[CHATSTORE_ADDR_MAX + 1];
    char ref[CHATSTORE_ADDR_MAX + 1];
    char route[CHATSTORE_ROUTE_MAX + 1];    /* service, or "@name" */
} fd_dest_t;

/* A token bucket of one user. */
typedef struct {
    double  tokens;
    int64_t last_ms;
} fd_bucket_t;

typedef enum { FD_WAIT_REQUEST, FD_WAIT_DELIVERY } fd_wait_kind_t;

/* A durable send whose receipt decides what happens next. */
typedef struct {
    fd_wait_kind_t kind;
    uint8_t   sent[16];         /* the sent message's id (receipt corr) */
    bool      has_ack;
    uint8_t   ack[16];          /* incoming durable delivery to settle */
    bool      has_job;
    uint8_t   job[16];          /* REQUEST: job to withdraw on failure;
                                   DELIVERY: job to end on success */
    bool      cancel;           /* DELIVERY: the job was cancelled */
    char     *answer;           /* DELIVERY: assistant turn, or NULL */
    size_t    answer_len;
    fd_dest_t dest;             /* REQUEST: whom to tell on failure */
    uint8_t  *req;              /* REQUEST: the body, to send again */
    size_t    req_len;
    bool      resend;           /* REQUEST: the connection was lost before
                                   the receipt: send again after welcome */
} fd_wait_t;

typedef enum { FD_CMD_STATUS, FD_CMD_QUEUE, FD_CMD_CANCEL } fd_cmd_kind_t;

/* What one sy.query answered. */
typedef struct {
    bool     done;
    bool     ok;
    char     err[160];
    uint64_t workers, ready, place;
    bool     has_place;
    char     state[16];
    bool     cancelled;
} fd_ans_t;

/* A command waiting for the broker's answers. */
typedef struct {
    fd_cmd_kind_t    kind;
    fd_dest_t        dest;
    bool             has_ack;
    uint8_t          ack[16];
    chatstore_job_t *jobs;      /* QUEUE: the user's jobs; CANCEL: one */
    size_t           njobs;
    uint8_t        (*qids)[16]; /* query ids, one per job (STATUS: one) */
    bool            *asked;     /* a query went out for slot i */
    fd_ans_t        *ans;
    size_t           nslots;
    size_t           pending;   /* answers still to come */
    int              timer;     /* zloop timer id, -1 none */
    void            *handle;    /* in fd->cmds */
    struct fd_s     *fd;
} fd_cmd_t;

typedef struct fd_s {
    actor_t     *actor;
    chatstore_t *store;
    syid_t       ids;
    size_t       max_text;
    size_t       history_bytes;
    double       rate_per_ms;
    double       burst;
    char       **bridges;
    size_t       nbridges;
    int          query_timeout_ms;
    zhashx_t    *buckets;       /* "channel/user" -> fd_bucket_t */
    zlistx_t    *waits;         /* fd_wait_t */
    zlistx_t    *cmds;          /* fd_cmd_t */
} fd_t;

/* Map pairs being built (the map header is written as the body leaves). */
typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer  pk;
    uint32_t        n;
    int             bad;
} fd_pairs_t;

/* ------------------------------------------------------------ bodies */

static void fd_pairs_init(fd_pairs_t *p)
{
    msgpack_sbuffer_init(&p->sb);
    msgpack_packer_init(&p->pk, &p->sb, msgpack_sbuffer_write);
    p->n = 0;
    p->bad = 0;
}

static void fd_pairs_clear(fd_pairs_t *p)
{
    msgpack_sbuffer_destroy(&p->sb);
    p->n = 0;
}

static void fd_pack_str(msgpack_packer *pk, int *bad, const char *s, size_t n)
{
    *bad |= msgpack_pack_str_with_body(pk, s, n);
}

static void fd_pair_str(fd_pairs_t *p, const char *k, const char *v, size_t n)
{
    fd_pack_str(&p->pk, &p->bad, k, strlen(k));
    fd_pack_str(&p->pk, &p->bad, v, n);
    p->n++;
}

static void fd_pair_cstr(fd_pairs_t *p, const char *k, const char *v)
{
    fd_pair_str(p, k, v, strlen(v));
}

static void fd_pair_uint(fd_pairs_t *p, const char *k, uint64_t v)
{
    fd_pack_str(&p->pk, &p->bad, k, strlen(k));
    p->bad |= msgpack_pack_uint64(&p->pk, v);
    p->n++;
}

static void fd_pair_bool(fd_pairs_t *p, const char *k, bool v)
{
    fd_pack_str(&p->pk, &p->bad, k, strlen(k));
    p->bad |= v ? msgpack_pack_true(&p->pk) : msgpack_pack_false(&p->pk);
    p->n++;
}

static void fd_pair_id(fd_pairs_t *p, const char *k, const uint8_t id[16])
{
    fd_pack_str(&p->pk, &p->bad, k, strlen(k));
    p->bad |= msgpack_pack_bin_with_body(&p->pk, id, 16);
    p->n++;
}

/* Copies the pairs of the map body[0..len) except those named in skip
   (NULL-terminated) into p.  Returns 0 or a decoding error. */
static int fd_pairs_copy(fd_pairs_t *p, const uint8_t *body, size_t len,
                         const char *const *skip)
{
    mpread_t r;
    mpval_t map, k, v;
    mpread_init(&r, body, len);
    int rc = mpread_next(&r, &map);
    if (rc == 0 && map.kind != MP_MAP)
        rc = SY_ENOT_MAP;
    for (uint32_t i = 0; rc == 0 && i < map.len; i++) {
        const uint8_t *start = r.p;
        rc = mpread_next(&r, &k);
        if (rc == 0)
            rc = mpread_next(&r, &v);
        if (rc == 0)
            rc = mpread_skip(&r, &v, 1);
        if (rc)
            break;
        bool drop = false;
        for (size_t s = 0; skip && skip[s]; s++)
            drop |= mpval_str_eq(&k, skip[s]);
        if (drop)
            continue;
        p->bad |= msgpack_sbuffer_write(&p->sb, (const char *) start,
                                        (size_t) (r.p - start));
        p->n++;
    }
    return rc;
}

/* The whole body: the pairs plus the address fields of dest (user; addr
   and ref when known), into *out (malloc'd).  Returns 0 or SY_ENOMEM. */
static int fd_body(const fd_pairs_t *p, const fd_dest_t *d, uint8_t **out,
                   size_t *len)
{
    fd_pairs_t b;
    fd_pairs_init(&b);
    uint32_t extra = 1 + (d->addr[0] != 0) + (d->ref[0] != 0);
    b.bad |= msgpack_pack_map(&b.pk, p->n + extra);
    if (p->sb.size)
        b.bad |= msgpack_sbuffer_write(&b.sb, p->sb.data, p->sb.size);
    fd_pair_cstr(&b, "user", d->user);
    if (d->addr[0])
        fd_pair_cstr(&b, "addr", d->addr);
    if (d->ref[0])
        fd_pair_cstr(&b, "ref", d->ref);
    if (b.bad || p->bad || !b.sb.data) {
        fd_pairs_clear(&b);
        return SY_ENOMEM;
    }
    *len = b.sb.size;
    *out = (uint8_t *) msgpack_sbuffer_release(&b.sb);
    return 0;
}

/* The pairs alone as a map, into *out (malloc'd).  Returns 0 or
   SY_ENOMEM. */
static int fd_pairs_map(const fd_pairs_t *p, uint8_t **out, size_t *len)
{
    fd_pairs_t b;
    fd_pairs_init(&b);
    b.bad |= msgpack_pack_map(&b.pk, p->n);
    b.bad |= msgpack_sbuffer_write(&b.sb, p->sb.data, p->sb.size);
    if (b.bad || p->bad || !b.sb.data) {
        fd_pairs_clear(&b);
        return SY_ENOMEM;
    }
    *len = b.sb.size;
    *out = (uint8_t *) msgpack_sbuffer_release(&b.sb);
    return 0;
}

/* body (a map) with "seq": seq added, into *out (malloc'd). */
static int fd_with_seq(const uint8_t *body, size_t len, uint64_t seq,
                       uint8_t **out, size_t *out_len)
{
    mpread_t r;
    mpval_t map;
    mpread_init(&r, body, len);
    int rc = mpread_next(&r, &map);
    if (rc == 0 && map.kind != MP_MAP)
        rc = SY_ENOT_MAP;
    if (rc)
        return rc;
    fd_pairs_t b;
    fd_pairs_init(&b);
    b.bad |= msgpack_pack_map(&b.pk, map.len + 1);
    b.bad |= msgpack_sbuffer_write(&b.sb, (const char *) r.p, mpread_left(&r));
    fd_pair_uint(&b, "seq", seq);
    if (b.bad || !b.sb.data) {
        fd_pairs_clear(&b);
        return SY_ENOMEM;
    }
    *out_len = b.sb.size;
    *out = (uint8_t *) msgpack_sbuffer_release(&b.sb);
    return 0;
}

/* Fields read from a body.  Strings point into the body (not
   NUL-terminated: use the lengths). */
typedef struct {
    mpval_t text, channel, user, addr, ref, kind, error, klass, service,
            state;
    bool    has_text, has_channel, has_user, has_addr, has_ref, has_kind,
            has_error, has_klass, has_service;
    bool    has_job, has_queued;
    uint8_t job[16], queued_id[16];
    bool    online;
    bool    has_place;
    uint64_t place, after;
    const uint8_t *attach;      /* the attachments value's bytes */
    size_t  attach_len;
} fd_fields_t;

static bool fd_str_field(const mpval_t *k, const mpval_t *v, const char *name,
                         mpval_t *out, bool *has)
{
    if (!mpval_str_eq(k, name) || v->kind != MP_STR)
        return false;
    *out = *v;
    *has = true;
    return true;
}

static bool fd_id_field(const mpval_t *k, const mpval_t *v, const char *name,
                        uint8_t out[16], bool *has)
{
    if (!mpval_str_eq(k, name) || v->kind != MP_BIN || v->len != 16)
        return false;
    memcpy(out, v->ptr, 16);
    *has = true;
    return true;
}

/* Reads the fields the front door uses from a (validated) body. */
static int fd_fields_read(const uint8_t *body, size_t len, fd_fields_t *f)
{
    mpread_t r;
    mpval_t map, k, v;
    memset(f, 0, sizeof *f);
    mpread_init(&r, body, len);
    int rc = mpread_next(&r, &map);
    if (rc == 0 && map.kind != MP_MAP)
        rc = SY_ENOT_MAP;
    for (uint32_t i = 0; rc == 0 && i < map.len; i++) {
        rc = mpread_next(&r, &k);
        const uint8_t *vstart = r.p;
        if (rc == 0)
            rc = mpread_next(&r, &v);
        if (rc == 0)
            rc = mpread_skip(&r, &v, 1);
        if (rc)
            break;
        if (fd_str_field(&k, &v, "text", &f->text, &f->has_text)
            || fd_str_field(&k, &v, "channel", &f->channel, &f->has_channel)
            || fd_str_field(&k, &v, "user", &f->user, &f->has_user)
            || fd_str_field(&k, &v, "addr", &f->addr, &f->has_addr)
            || fd_str_field(&k, &v, "ref", &f->ref, &f->has_ref)
            || fd_str_field(&k, &v, "kind", &f->kind, &f->has_kind)
            || fd_str_field(&k, &v, "error", &f->error, &f->has_error)
            || fd_str_field(&k, &v, "class", &f->klass, &f->has_klass)
            || fd_str_field(&k, &v, "service", &f->service, &f->has_service)
            || fd_id_field(&k, &v, "job", f->job, &f->has_job)
            || fd_id_field(&k, &v, "queued_id", f->queued_id, &f->has_queued))
            continue;
        if (mpval_str_eq(&k, "online") && v.kind == MP_BOOL)
            f->online = v.b;
        else if (mpval_str_eq(&k, "place"))
            f->has_place = mpval_as_uint(&v, &f->place);
        else if (mpval_str_eq(&k, "after"))
            mpval_as_uint(&v, &f->after);
        else if (mpval_str_eq(&k, "attachments")) {
            f->attach = vstart;
            f->attach_len = (size_t) (r.p - vstart);
        }
    }
    return rc;
}

/* Copies a string value into a C buffer (cut to cap - 1). */
static void fd_strcpy(char *out, size_t cap, const mpval_t *v, bool has)
{
    size_t n = has ? v->len : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(out, v->ptr, n);
    out[n] = 0;
}

/* True if the attachments value is an array of maps, each with a string
   kind. */
static bool fd_attachments_ok(const uint8_t *p, size_t len)
{
    mpread_t r;
    mpval_t arr, item;
    mpread_init(&r, p, len);
    if (mpread_next(&r, &arr) || arr.kind != MP_ARRAY)
        return false;
    for (uint32_t i = 0; i < arr.len; i++) {
        mpval_t kind;
        if (mpread_next(&r, &item) || item.kind != MP_MAP)
            return false;
        if (mpread_map_find(&r, &item, "kind", &kind, NULL) != 0
            || kind.kind != MP_STR || kind.len == 0)
            return false;
        if (mpread_skip(&r, &item, 1))
            return false;
    }
    return true;
}

/* ------------------------------------------------------------ settings */

static void fd_bridges_free(fd_t *fd)
{
    for (size_t i = 0; i < fd->nbridges; i++)
        free(fd->bridges[i]);
    free(fd->bridges);
    fd->bridges = NULL;
    fd->nbridges = 0;
}

/* Splits the comma list of bridge names. */
static int fd_bridges_parse(fd_t *fd, const char *list)
{
    size_t cap = 1;
    for (const char *c = list; *c; c++)
        cap += *c == ',';
    fd->bridges = calloc(cap, sizeof *fd->bridges);
    if (!fd->bridges)
        return SY_ENOMEM;
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ",");
        size_t m = n;
        while (m && p[m - 1] == ' ')
            m--;
        if (m && fd->nbridges < cap) {
            fd->bridges[fd->nbridges] = strndup(p, m);
            if (!fd->bridges[fd->nbridges])
                return SY_ENOMEM;
            fd->nbridges++;
        }
        p += n;
    }
    return 0;
}

static bool fd_is_bridge(const fd_t *fd, const char *name)
{
    for (size_t i = 0; i < fd->nbridges; i++)
        if (!strcmp(fd->bridges[i], name))
            return true;
    return false;
}

/* ------------------------------------------------------------ rate */

static int64_t fd_now_ms(void)
{
    return zclock_mono();
}

/* Drops buckets that have filled up again (a full bucket is the same as
   none), so the table stays bounded. */
static void fd_rate_prune(fd_t *fd, int64_t now)
{
    zlistx_t *keys = zhashx_keys(fd->buckets);
    if (!keys)
        return;
    for (const char *k = zlistx_first(keys); k; k = zlistx_next(keys)) {
        fd_bucket_t *b = zhashx_lookup(fd->buckets, k);
        if (b && b->tokens + (double) (now - b->last_ms) * fd->rate_per_ms
                     >= fd->burst)
            zhashx_delete(fd->buckets, k);
    }
    zlistx_destroy(&keys);
}

/* Takes one token of the user's bucket.  True if allowed. */
static bool fd_rate_take(fd_t *fd, const fd_dest_t *d)
{
    char key[CHATSTORE_CHANNEL_MAX + CHATSTORE_USER_MAX + 2];
    snprintf(key, sizeof key, "%s/%s", d->channel, d->user);
    int64_t now = fd_now_ms();
    fd_bucket_t *b = zhashx_lookup(fd->buckets, key);
    if (!b) {
        if (zhashx_size(fd->buckets) >= FD_RATE_MAX_USERS)
            fd_rate_prune(fd, now);
        b = calloc(1, sizeof *b);
        if (!b)
            return true;        /* no memory: let it through */
        b->tokens = fd->burst;
        b->last_ms = now;
        zhashx_insert(fd->buckets, key, b);
    }
    if (now > b->last_ms) {
        b->tokens += (double) (now - b->last_ms) * fd->rate_per_ms;
        if (b->tokens > fd->burst)
            b->tokens = fd->burst;
        b->last_ms = now;
    }
    if (b->tokens < 1.0)
        return false;
    b->tokens -= 1.0;
    return true;
}

static void fd_bucket_free(void **item)
{
    free(*item);
    *item = NULL;
}

/* ------------------------------------------------------------ waits */

static void fd_wait_free(void **item)
{
    fd_wait_t *w = *item;
    if (!w)
        return;
    free(w->answer);
    free(w->req);
    free(w);
    *item = NULL;
}

static fd_wait_t *fd_wait_add(fd_t *fd, fd_wait_kind_t kind,
                              const uint8_t sent[16], const uint8_t *ack)
{
    fd_wait_t *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->kind = kind;
    memcpy(w->sent, sent, 16);
    if (ack) {
        w->has_ack = true;
        memcpy(w->ack, ack, 16);
    }
    zlistx_add_end(fd->waits, w);
    return w;
}

/* Settles the incoming delivery id: ack (ok) or nack to be tried again. */
static void fd_settle(fd_t *fd, const uint8_t id[16], bool ok,
                      const char *why)
{
    int rc = ok ? actor_ack(fd->actor, id)
                : actor_nack(fd->actor, id, why, true, FD_NACK_DELAY_MS);
    if (rc)
        sylog_debug("frontdoor: %s not sent: %s", ok ? "ack" : "nack",
                    syerr_name(rc));
}

/* ------------------------------------------------------------ delivery */

/* What to send a user. */
typedef struct {
    const fd_dest_t  *dest;
    const char       *type;         /* chat.reply, chat.notice, chat.token */
    const fd_pairs_t *pairs;        /* the body, without address fields */
    const uint8_t    *end_job;      /* job this ends, or NULL */
    bool              cancel;       /* ...cancelled: its question goes too */
    const char       *answer;       /* its assistant turn, or NULL */
    size_t            answer_len;
    const uint8_t    *ack;          /* incoming durable delivery, or NULL */
} fd_out_t;

/* To a direct client: into the outbox (ending the job in the same
   transaction), then sent with its seq.  A client that is away gets it
   with chat.sync. */
static int fd_deliver_direct(fd_t *fd, const fd_out_t *o, const uint8_t *body,
                             size_t len)
{
    chatstore_out_t out = { o->dest->user, o->type, body, len };
    uint64_t seq = 0;
    int rc = !o->end_job ? chatstore_outbox_append(fd->store, &out, &seq)
           : o->cancel ? chatstore_job_cancel(fd->store, o->end_job, &out, &seq)
           : chatstore_job_end(fd->store, o->end_job, o->answer, o->answer_len,
                               &out, &seq);
    if (rc == SY_ENOTFOUND && o->end_job)
        return 0;               /* answered already: the user has it */
    if (rc) {
        sylog_error("frontdoor: outbox of %s not written: %s", o->dest->user,
                    syerr_name(rc));
        return rc;
    }
    uint8_t *full = NULL;
    size_t flen = 0;
    rc = fd_with_seq(body, len, seq, &full, &flen);
    if (rc == 0)
        rc = actor_send(fd->actor, o->dest->route, o->type, full, flen, NULL,
                        NULL);
    if (rc)
        sylog_debug("frontdoor: %s seq %llu to %s not sent now (%s): kept "
                    "in the outbox", o->type, (unsigned long long) seq,
                    o->dest->route, syerr_name(rc));
    free(full);
    return 0;
}

/* To a bridge: a durable message to its service; the job ends and the
   incoming delivery is acked when the receipt says it is stored. */
static int fd_deliver_bridge(fd_t *fd, const fd_out_t *o, const uint8_t *body,
                             size_t len)
{
    char key[48] = "";
    if (o->end_job) {
        char hex[33];
        envelope_id_hex(o->end_job, hex);
        snprintf(key, sizeof key, "reply:%s", hex);
    }
    actor_send_opts_t so = { .prio = ENVELOPE_PRIO_NORMAL, .durable = true,
                             .key = key[0] ? key : NULL };
    uint8_t sent[16];
    int rc = actor_send(fd->actor, o->dest->route, o->type, body, len, &so,
                        sent);
    if (rc) {
        sylog_warn("frontdoor: %s to %s not sent: %s", o->type,
                   o->dest->route, syerr_name(rc));
        return rc;
    }
    if (!o->end_job && !o->ack)
        return 0;
    fd_wait_t *w = fd_wait_add(fd, FD_WAIT_DELIVERY, sent, o->ack);
    if (!w)
        return SY_ENOMEM;
    if (o->end_job) {
        w->has_job = true;
        w->cancel = o->cancel;
        memcpy(w->job, o->end_job, 16);
        if (o->answer) {
            w->answer = malloc(o->answer_len + 1);
            if (!w->answer)
                return SY_ENOMEM;
            memcpy(w->answer, o->answer, o->answer_len);
            w->answer[o->answer_len] = 0;
            w->answer_len = o->answer_len;
        }
    }
    return o->ack ? FD_DEFERRED : 0;
}

/* Delivers a reply or notice to a user.  Returns 0 (done: the incoming
   delivery may be settled now), FD_DEFERRED (it is settled when the
   receipt comes) or an error. */
static int fd_deliver(fd_t *fd, const fd_out_t *o)
{
    uint8_t *body = NULL;
    size_t len = 0;
    int rc = fd_body(o->pairs, o->dest, &body, &len);
    if (rc == 0)
        rc = o->dest->route[0] == '@' ? fd_deliver_direct(fd, o, body, len)
                                      : fd_deliver_bridge(fd, o, body, len);
    free(body);
    return rc;
}

/* A chat.reply with text (and error when not NULL).  job, when not
   NULL, is a job this reply cancels: it ends with the delivery. */
static int fd_reply_text(fd_t *fd, const fd_dest_t *d, const uint8_t *ack,
                         const uint8_t *job, const char *error,
                         const char *text)
{
    fd_pairs_t p;
    fd_pairs_init(&p);
    if (job)
        fd_pair_id(&p, "job", job);
    fd_pair_cstr(&p, "text", text);
    if (error)
        fd_pair_cstr(&p, "error", error);
    fd_out_t o = { .dest = d, .type = "chat.reply", .pairs = &p,
                   .end_job = job, .cancel = job != NULL, .ack = ack };
    int rc = fd_deliver(fd, &o);
    fd_pairs_clear(&p);
    return rc;
}

static int fd_notice(fd_t *fd, const fd_dest_t *d, const uint8_t *ack,
                     const char *kind, const uint8_t *job, bool has_place,
                     uint64_t place, const char *text)
{
    fd_pairs_t p;
    fd_pairs_init(&p);
    fd_pair_cstr(&p, "kind", kind);
    fd_pair_cstr(&p, "text", text);
    if (job)
        fd_pair_id(&p, "job", job);
    if (has_place)
        fd_pair_uint(&p, "place", place);
    fd_out_t o = { .dest = d, .type = "chat.notice", .pairs = &p, .ack = ack };
    int rc = fd_deliver(fd, &o);
    fd_pairs_clear(&p);
    return rc;
}

/* A handler's return for the incoming msg after work that returned rc:
   deliveries that are not durable are always done (0). */
static int fd_handler_rc(const uint8_t *ack, int rc)
{
    if (!ack)
        return 0;
    if (rc == FD_DEFERRED)
        return ACTOR_KEEP;
    return rc;
}

static const uint8_t *fd_ack_of(const actor_msg_t *msg)
{
    return actor_msg_is_durable(msg) ? msg->hdr.id : NULL;
}

static void fd_dest_of_job(fd_dest_t *d, const chatstore_job_t *j)
{
    memset(d, 0, sizeof *d);
    snprintf(d->channel, sizeof d->channel, "%s", j->channel);
    snprintf(d->user, sizeof d->user, "%s", j->user);
    snprintf(d->addr, sizeof d->addr, "%s", j->addr);
    snprintf(d->ref, sizeof d->ref, "%s", j->ref);
    snprintf(d->route, sizeof d->route, "%s", j->route);
}

/* ------------------------------------------------------------ commands */

static void fd_cmd_free(fd_cmd_t **cmd_p)
{
    fd_cmd_t *c = *cmd_p;
    if (!c)
        return;
    free(c->jobs);
    free(c->qids);
    free(c->asked);
    free(c->ans);
    free(c);
    *cmd_p = NULL;
}

static fd_cmd_t *fd_cmd_new(fd_t *fd, fd_cmd_kind_t kind, const fd_dest_t *d,
                            const uint8_t *ack, size_t nslots)
{
    fd_cmd_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->kind = kind;
    c->dest = *d;
    c->fd = fd;
    c->timer = -1;
    c->nslots = nslots ? nslots : 1;
    c->qids = calloc(c->nslots, sizeof *c->qids);
    c->asked = calloc(c->nslots, sizeof *c->asked);
    c->ans = calloc(c->nslots, sizeof *c->ans);
    if (!c->qids || !c->asked || !c->ans) {
        fd_cmd_free(&c);
        return NULL;
    }
    if (ack) {
        c->has_ack = true;
        memcpy(c->ack, ack, 16);
    }
    return c;
}

/* Sends sy.query {what, service, id?} for slot i of c. */
static int fd_cmd_query(fd_t *fd, fd_cmd_t *c, size_t i, const char *what,
                        const char *service, const uint8_t *id)
{
    fd_pairs_t p;
    fd_pairs_init(&p);
    p.bad |= msgpack_pack_map(&p.pk, id ? 3 : 2);
    fd_pair_cstr(&p, "what", what);
    fd_pair_cstr(&p, "service", service);
    if (id)
        fd_pair_id(&p, "id", id);
    int rc = p.bad ? SY_ENOMEM
                   : actor_send_broker(fd->actor, "sy.query",
                                       (const uint8_t *) p.sb.data, p.sb.size,
                                       c->qids[i]);
    fd_pairs_clear(&p);
    if (rc) {
        c->ans[i].done = true;
        snprintf(c->ans[i].err, sizeof c->ans[i].err, "not asked: %s",
                 syerr_name(rc));
        return rc;
    }
    c->asked[i] = true;
    c->pending++;
    return 0;
}

static const char *fd_state_text(const fd_ans_t *a, char *buf, size_t cap)
{
    if (!a->done || !a->ok) {
        snprintf(buf, cap, "place unknown (%s)", a->done ? a->err
                                                         : "no answer");
        return buf;
    }
    if (!strcmp(a->state, "ready") && a->has_place)
        snprintf(buf, cap, "place %llu", (unsigned long long) a->place);
    else if (!strcmp(a->state, "inflight"))
        snprintf(buf, cap, "being answered now");
    else if (!strcmp(a->state, "delayed"))
        snprintf(buf, cap, "waiting to be tried again");
    else if (!strcmp(a->state, "dead"))
        snprintf(buf, cap, "failed (in the dead-letter queue)");
    else if (!strcmp(a->state, "gone"))
        snprintf(buf, cap, "no longer queued");
    else
        snprintf(buf, cap, "%s", a->state[0] ? a->state : "state unknown");
    return buf;
}

static void fd_text_add(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fd_text_add(char *buf, size_t cap, const char *fmt, ...)
{
    size_t n = strlen(buf);
    if (n + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, cap - n, fmt, ap);
    va_end(ap);
}

static void fd_status_text(const fd_cmd_t *c, char *out, size_t cap)
{
    const fd_ans_t *a = &c->ans[0];
    if (!a->done || !a->ok) {
        snprintf(out, cap, "Status unavailable: the broker did not answer "
                 "(%s).", a->done ? a->err : "timed out");
        return;
    }
    snprintf(out, cap, "laptop online: %s (%llu worker%s), queued: %llu",
             a->workers ? "yes" : "no", (unsigned long long) a->workers,
             a->workers == 1 ? "" : "s", (unsigned long long) a->ready);
}

static void fd_queue_text(const fd_cmd_t *c, char *out, size_t cap)
{
    out[0] = 0;
    if (c->njobs == 0) {
        snprintf(out, cap, "You have no pending jobs.");
        return;
    }
    fd_text_add(out, cap, "Your pending jobs, oldest first:");
    for (size_t i = 0; i < c->njobs; i++) {
        const chatstore_job_t *j = &c->jobs[i];
        char st[200];
        if (!j->service[0])
            snprintf(st, sizeof st, "not routed yet");
        else if (!c->asked[i] && !c->ans[i].done)
            snprintf(st, sizeof st, "sent on");
        else
            fd_state_text(&c->ans[i], st, sizeof st);
        fd_text_add(out, cap, "\n%zu. \"%s\" -- %s%s%s, %s", i + 1,
                    j->preview, j->klass[0] ? j->klass : "",
                    j->service[0] ? " on " : "", j->service, st);
    }
}

/* The answer to /cancel: the job ends when the broker removed it. */
static int fd_cancel_finish(fd_t *fd, fd_cmd_t *c, const uint8_t *ack)
{
    const fd_ans_t *a = &c->ans[0];
    const chatstore_job_t *j = &c->jobs[0];
    char text[400];
    if (a->done && a->ok && a->cancelled) {
        snprintf(text, sizeof text, "Cancelled: \"%s\".", j->preview);
        return fd_reply_text(fd, &c->dest, ack, j->id, "CANCELLED", text);
    }
    if (a->done && a->ok && !strcmp(a->state, "inflight"))
        snprintf(text, sizeof text, "Your job \"%s\" is already running and "
                 "cannot be cancelled.", j->preview);
    else if (a->done && a->ok)
        snprintf(text, sizeof text, "Your job \"%s\" could not be cancelled "
                 "(it is %s).", j->preview, a->state[0] ? a->state : "gone");
    else
        snprintf(text, sizeof text, "Cancelling \"%s\" failed: %s.",
                 j->preview, a->done ? a->err : "the broker did not answer");
    return fd_reply_text(fd, &c->dest, ack, NULL, NULL, text);
}

/* Answers the command with what came, settles its delivery, frees it. */
static void fd_cmd_finish(fd_cmd_t *c)
{
    fd_t *fd = c->fd;
    if (c->timer >= 0)
        zloop_timer_end(actor_loop(fd->actor), c->timer);
    c->timer = -1;
    if (c->handle)
        zlistx_detach(fd->cmds, c->handle);
    const uint8_t *ack = c->has_ack ? c->ack : NULL;
    int rc;
    if (c->kind == FD_CMD_CANCEL)
        rc = fd_cancel_finish(fd, c, ack);
    else {
        char text[4096];
        if (c->kind == FD_CMD_STATUS)
            fd_status_text(c, text, sizeof text);
        else
            fd_queue_text(c, text, sizeof text);
        rc = fd_reply_text(fd, &c->dest, ack, NULL, NULL, text);
    }
    if (ack && rc != FD_DEFERRED)
        fd_settle(fd, ack, rc == 0, syerr_name(rc));
    fd_cmd_free(&c);
}

static int fd_cmd_timeout(zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    fd_cmd_t *c = arg;
    c->timer = -1;              /* a one-shot timer ends by itself */
    sylog_debug("frontdoor: a command's queries timed out (%zu unanswered)",
                c->pending);
    fd_cmd_finish(c);
    return 0;
}

/* Finishes c at once when nothing is pending, else waits (bounded). */
static void fd_cmd_run(fd_t *fd, fd_cmd_t *c)
{
    if (c->pending == 0) {
        fd_cmd_finish(c);
        return;
    }
    c->handle = zlistx_add_end(fd->cmds, c);
    c->timer = zloop_timer(actor_loop(fd->actor),
                           (size_t) fd->query_timeout_ms, 1, fd_cmd_timeout, c);
    if (!c->handle || c->timer < 0)
        fd_cmd_finish(c);
}

/* The command whose query id is corr, and the slot. */
static fd_cmd_t *fd_cmd_find(fd_t *fd, const uint8_t corr[16], size_t *slot)
{
    for (fd_cmd_t *c = zlistx_first(fd->cmds); c; c = zlistx_next(fd->cmds))
        for (size_t i = 0; i < c->nslots; i++)
            if (c->asked[i] && !c->ans[i].done && !memcmp(c->qids[i], corr, 16)) {
                *slot = i;
                return c;
            }
    return NULL;
}

/* Reads sy.answer {what, data: {workers, ready, state, place, cancelled}}. */
static void fd_answer_read(const actor_msg_t *msg, fd_ans_t *a)
{
    mpread_t r, at;
    mpval_t map, data, v;
    mpread_init(&r, msg->body, msg->body_len);
    a->done = true;
    if (mpread_next(&r, &map) || map.kind != MP_MAP
        || mpread_map_find(&r, &map, "data", &data, &at) || data.kind != MP_MAP) {
        snprintf(a->err, sizeof a->err, "an answer without data");
        return;
    }
    a->ok = true;
    if (mpread_map_find(&at, &data, "workers", &v, NULL) == 0)
        mpval_as_uint(&v, &a->workers);
    if (mpread_map_find(&at, &data, "ready", &v, NULL) == 0)
        mpval_as_uint(&v, &a->ready);
    if (mpread_map_find(&at, &data, "place", &v, NULL) == 0)
        a->has_place = mpval_as_uint(&v, &a->place);
    if (mpread_map_find(&at, &data, "cancelled", &v, NULL) == 0
        && v.kind == MP_BOOL)
        a->cancelled = v.b;
    if (mpread_map_find(&at, &data, "state", &v, NULL) == 0 && v.kind == MP_STR)
        fd_strcpy(a->state, sizeof a->state, &v, true);
}

static void fd_cmd_got(fd_cmd_t *c)
{
    if (c->pending)
        c->pending--;
    if (c->pending == 0)
        fd_cmd_finish(c);
}

static int fd_on_answer(actor_t *actor, const actor_msg_t *msg, void *arg)
{
    (void) actor;
    fd_t *fd = arg;
    size_t i;
    fd_cmd_t *c = (msg->hdr.present & ENV_HAS_CORR)
                ? fd_cmd_find(fd, msg->hdr.corr, &i) : NULL;
    if (!c)
        return 0;               /* late (timed out) or not ours */
    fd_answer_read(msg, &c->ans[i]);
    fd_cmd_got(c);
    return 0;
}

/* /status: is an inference worker live, how deep is its queue. */
static int fd_cmd_status(fd_t *fd, const fd_dest_t *d, const uint8_t *ack)
{
    fd_cmd_t *c = fd_cmd_new(fd, FD_CMD_STATUS, d, ack, 1);
    if (!c)
        return SY_ENOMEM;
    fd_cmd_query(fd, c, 0, "place", "inference", NULL);
    fd_cmd_run(fd, c);
    return FD_DEFERRED;
}

/* /queue: the user's pending jobs, each with its place. */
static int fd_cmd_queue(fd_t *fd, const fd_dest_t *d, const uint8_t *ack)
{
    chatstore_job_t *jobs = NULL;
    size_t n = 0;
    int rc = chatstore_jobs(fd->store, d->channel, d->user, &jobs, &n);
    if (rc)
        return rc;
    if (n > FD_QUEUE_MAX)
        n = FD_QUEUE_MAX;
    fd_cmd_t *c = fd_cmd_new(fd, FD_CMD_QUEUE, d, ack, n);
    if (!c) {
        free(jobs);
        return SY_ENOMEM;
    }
    c->jobs = jobs;
    c->njobs = n;
    for (size_t i = 0; i < n; i++)
        if (jobs[i].service[0] && jobs[i].has_queued)
            fd_cmd_query(fd, c, i, "place", jobs[i].service, jobs[i].queued_id);
    fd_cmd_run(fd, c);
    return FD_DEFERRED;
}

/* /cancel: the newest pending job that has a queued id. */
static int fd_cmd_cancel(fd_t *fd, const fd_dest_t *d, const uint8_t *ack)
{
    chatstore_job_t *jobs = NULL;
    size_t n = 0;
    int rc = chatstore_jobs(fd->store, d->channel, d->user, &jobs, &n);
    if (rc)
        return rc;
    size_t pick = n;
    for (size_t i = n; i-- > 0;)
        if (jobs[i].has_queued && jobs[i].service[0]) {
            pick = i;
            break;
        }
    if (pick == n) {
        free(jobs);
        return fd_reply_text(fd, d, ack, NULL, NULL, n
            ? "Nothing to cancel yet: your job has not been queued (try again "
              "in a moment)."
            : "Nothing to cancel: you have no pending jobs.");
    }
    fd_cmd_t *c = fd_cmd_new(fd, FD_CMD_CANCEL, d, ack, 1);
    if (!c) {
        free(jobs);
        return SY_ENOMEM;
    }
    memmove(jobs, jobs + pick, sizeof *jobs);
    c->jobs = jobs;
    c->njobs = 1;
    fd_cmd_query(fd, c, 0, "cancel", jobs[0].service, jobs[0].queued_id);
    fd_cmd_run(fd, c);
    return FD_DEFERRED;
}

static const char fd_help[] =
    "Commands:\n"
    "/status  is the laptop online, how many jobs are queued\n"
    "/queue   your pending jobs and their places\n"
    "/cancel  cancel your newest queued job\n"
    "/new     start a new conversation (forget this one)\n"
    "/help    this list\n"
    "Anything else is a question.";

/* True if text (len bytes) is the command word w, alone or before a
   space. */
static bool fd_is_cmd(const char *text, size_t len, const char *w)
{
    size_t n = strlen(w);
    return len >= n && !memcmp(text, w, n)
        && (len == n || text[n] == ' ' || text[n] == '\n' || text[n] == '\t');
}

/* Runs the command in text.  Returns as fd_deliver(). */
static int fd_command(fd_t *fd, const fd_dest_t *d, const uint8_t *ack,
                      const char *text, size_t len)
{
    if (fd_is_cmd(text, len, "/status"))
        return fd_cmd_status(fd, d, ack);
    if (fd_is_cmd(text, len, "/queue"))
        return fd_cmd_queue(fd, d, ack);
    if (fd_is_cmd(text, len, "/cancel"))
        return fd_cmd_cancel(fd, d, ack);
    if (fd_is_cmd(text, len, "/new")) {
        uint64_t conv = 0;
        int rc = chatstore_conv_new(fd->store, d->channel, d->user, &conv);
        if (rc)
            return rc;
        return fd_reply_text(fd, d, ack, NULL, NULL,
                             "Started a new conversation.");
    }
    return fd_reply_text(fd, d, ack, NULL, NULL, fd_help);
}

/* ------------------------------------------------------------ questions */

/* The history turns as a msgpack array of {role, text}. */
static void fd_pack_history(fd_pairs_t *p, const chatstore_turns_t *h)
{
    fd_pack_str(&p->pk, &p->bad, "history", 7);
    p->bad |= msgpack_pack_array(&p->pk, h->n);
    for (size_t i = 0; i < h->n; i++) {
        const char *role = h->v[i].role == CHATSTORE_USER ? "user"
                                                          : "assistant";
        p->bad |= msgpack_pack_map(&p->pk, 2);
        fd_pack_str(&p->pk, &p->bad, "role", 4);
        fd_pack_str(&p->pk, &p->bad, role, strlen(role));
        fd_pack_str(&p->pk, &p->bad, "text", 4);
        fd_pack_str(&p->pk, &p->bad, h->v[i].text, h->v[i].len);
    }
    p->n++;
}

/* The chat.request body for job (its question f, the turns h before
   it), into *out (malloc'd).  Returns 0 or SY_ENOMEM. */
static int fd_request_body(const chatstore_job_t *job, const fd_fields_t *f,
                           const chatstore_turns_t *h, uint8_t **out,
                           size_t *len)
{
    fd_pairs_t p;
    fd_pairs_init(&p);
    fd_pair_id(&p, "job", job->id);
    fd_pair_cstr(&p, "user", job->user);
    fd_pair_cstr(&p, "channel", job->channel);
    fd_pair_str(&p, "text", (const char *) f->text.ptr, f->text.len);
    if (h->n)
        fd_pack_history(&p, h);
    if (f->attach) {
        fd_pack_str(&p.pk, &p.bad, "attachments", 11);
        p.bad |= msgpack_sbuffer_write(&p.sb, (const char *) f->attach,
                                       f->attach_len);
        p.n++;
    }
    fd_pair_bool(&p, "waiting", true);
    int rc = fd_pairs_map(&p, out, len);
    fd_pairs_clear(&p);
    return rc;
}

/* Sends a chat.request body durably to the router with the job's key
   job:<hex>: sending it again (after a lost receipt) is answered
   DUPLICATE if the first one was stored.  *sent gets its id. */
static int fd_request_send(fd_t *fd, const uint8_t job[16],
                           const uint8_t *body, size_t len, uint8_t sent[16])
{
    char hex[33], key[48];
    envelope_id_hex(job, hex);
    snprintf(key, sizeof key, "job:%s", hex);
    actor_send_opts_t so = { .prio = ENVELOPE_PRIO_NORMAL, .durable = true,
                             .key = key, .reply_to = "frontdoor" };
    return actor_send(fd->actor, "router", "chat.request", body, len, &so,
                      sent);
}

/* Waits for the receipt of a chat.request sent as sent: keeps the body
   to send again if the connection is lost first.  Takes body. */
static fd_wait_t *fd_request_wait(fd_t *fd, const uint8_t sent[16],
                                  const uint8_t *ack, const uint8_t job[16],
                                  const fd_dest_t *d, uint8_t *body,
                                  size_t len)
{
    fd_wait_t *w = fd_wait_add(fd, FD_WAIT_REQUEST, sent, ack);
    if (!w) {
        free(body);
        return NULL;
    }
    w->has_job = true;
    memcpy(w->job, job, 16);
    w->dest = *d;
    w->req = body;
    w->req_len = len;
    return w;
}

/* The pending REQUEST wait of job, or NULL. */
static fd_wait_t *fd_request_wait_of(fd_t *fd, const uint8_t job[16])
{
    for (fd_wait_t *w = zlistx_first(fd->waits); w; w = zlistx_next(fd->waits))
        if (w->kind == FD_WAIT_REQUEST && !memcmp(w->job, job, 16))
            return w;
    return NULL;
}

/* Drops from h the job's question (the user's turn at created) and what
   follows it: the history sent is the turns before the question. */
static void fd_history_before(chatstore_turns_t *h, uint64_t created)
{
    for (size_t i = 0; i < h->n; i++) {
        if (h->v[i].role != CHATSTORE_USER || h->v[i].ts != created)
            continue;
        for (size_t k = i; k < h->n; k++)
            free(h->v[k].text);
        h->n = i;
        return;
    }
}

/* Builds and sends the job's chat.request; waits for its receipt.
   Returns 0, FD_DEFERRED (ack is settled by the receipt) or an error
   (nothing was sent). */
static int fd_request_go(fd_t *fd, const chatstore_job_t *job,
                         const fd_dest_t *d, const uint8_t *ack,
                         const fd_fields_t *f, const chatstore_turns_t *h)
{
    uint8_t *body = NULL, sent[16];
    size_t len = 0;
    int rc = fd_request_body(job, f, h, &body, &len);
    if (rc == 0)
        rc = fd_request_send(fd, job->id, body, len, sent);
    if (rc) {
        free(body);
        return rc;
    }
    if (!fd_request_wait(fd, sent, ack, job->id, d, body, len))
        return 0;       /* the job stands; a failure would go unnoticed */
    return ack ? FD_DEFERRED : 0;
}

/* A bridge's chat.message delivered again (its job id is the message's
   id, already pending): the settle waits for the chat.request's receipt.
   The request is sent again with its key unless a send is under way
   (the broker answers DUPLICATE when it has it already). */
static int fd_ask_again(fd_t *fd, const fd_dest_t *d, const uint8_t *ack,
                        const fd_fields_t *f)
{
    fd_wait_t *w = fd_request_wait_of(fd, ack);
    if (w && !w->resend) {
        w->has_ack = true;
        memcpy(w->ack, ack, 16);
        return FD_DEFERRED;
    }
    chatstore_job_t job;
    int rc = chatstore_job_get(fd->store, ack, &job);
    if (rc)
        return rc;
    chatstore_turns_t h;
    rc = chatstore_history(fd->store, d->channel, d->user,
                           fd->history_bytes + f->text.len, &h);
    if (rc)
        return rc;
    fd_history_before(&h, job.created);
    if (w)
        zlistx_delete(fd->waits, zlistx_find(fd->waits, w));
    sylog_info("frontdoor: %s/%s: question delivered again: its request is "
               "sent again", d->channel, d->user);
    rc = fd_request_go(fd, &job, d, ack, f, &h);
    chatstore_turns_clear(&h);
    return rc;
}

/* A question: the user's turn and the job into the store, then
   chat.request to the router.  A bridge's (durable) message gives the
   job its id, so a second delivery of it finds the job and asks nothing
   twice.  Returns 0 (nothing more to settle), FD_DEFERRED (the receipt
   settles the delivery) or an error. */
static int fd_ask(fd_t *fd, const fd_dest_t *d, const uint8_t *ack,
                  const fd_fields_t *f)
{
    chatstore_job_t job;
    memset(&job, 0, sizeof job);
    if (ack)
        memcpy(job.id, ack, 16);
    else
        syid_next(&fd->ids, job.id);
    snprintf(job.channel, sizeof job.channel, "%s", d->channel);
    snprintf(job.user, sizeof job.user, "%s", d->user);
    snprintf(job.addr, sizeof job.addr, "%s", d->addr);
    snprintf(job.ref, sizeof job.ref, "%s", d->ref);
    snprintf(job.route, sizeof job.route, "%s", d->route);
    job.created = syid_now_ms();
    chatstore_preview(&job, (const char *) f->text.ptr, f->text.len);

    chatstore_turns_t h;
    int rc = chatstore_history(fd->store, d->channel, d->user,
                               fd->history_bytes, &h);
    if (rc == 0)
        rc = chatstore_ask(fd->store, &job, (const char *) f->text.ptr,
                           f->text.len);
    if (rc == SY_EDUPLICATE && ack) {
        chatstore_turns_clear(&h);
        return fd_ask_again(fd, d, ack, f);
    }
    if (rc == 0) {
        rc = fd_request_go(fd, &job, d, ack, f, &h);
        if (rc < 0)
            chatstore_withdraw(fd->store, job.id);
    }
    chatstore_turns_clear(&h);
    if (rc < 0) {
        sylog_warn("frontdoor: question of %s/%s not passed on: %s",
                   d->channel, d->user, syerr_name(rc));
        if (ack)
            return rc;          /* nacked: the bridge's message comes again */
        return fd_reply_text(fd, d, NULL, NULL, "NOT_AVAILABLE",
                             "Your message could not be passed on right now; "
                             "please try again.");
    }
    return rc;
}

/* The router's receipt for a chat.request. */
static void fd_request_receipt(fd_t *fd, const fd_wait_t *w,
                               const actor_receipt_t *r)
{
    if (r->ok || r->code == SY_EDUPLICATE) {
        if (w->has_ack)
            fd_settle(fd, w->ack, true, NULL);
        return;
    }
    sylog_warn("frontdoor: the router's queue refused a question of %s/%s: "
               "%s %s", w->dest.channel, w->dest.user, r->code_name, r->msg);
    chatstore_withdraw(fd->store, w->job);
    if (w->has_ack) {
        fd_settle(fd, w->ack, false, r->code_name);
        return;
    }
    char text[700];
    snprintf(text, sizeof text, "Your message could not be queued (%s%s%s); "
             "please try again.", r->code_name, r->msg[0] ? ": " : "", r->msg);
    fd_reply_text(fd, &w->dest, NULL, NULL, "NOT_AVAILABLE", text);
}

/* The bridge's queue's receipt for a delivery. */
static void fd_delivery_receipt(fd_t *fd, const fd_wait_t *w,
                                const actor_receipt_t *r)
{
    bool ok = r->ok || r->code == SY_EDUPLICATE;
    if (ok && w->has_job) {
        int rc = w->cancel
               ? chatstore_job_cancel(fd->store, w->job, NULL, NULL)
               : chatstore_job_end(fd->store, w->job, w->answer,
                                   w->answer_len, NULL, NULL);
        if (rc && rc != SY_ENOTFOUND) {
            sylog_error("frontdoor: job not ended: %s", syerr_name(rc));
            ok = false;
        }
    }
    if (!ok)
        sylog_warn("frontdoor: a delivery to a bridge was refused: %s %s",
                   r->code_name, r->msg);
    if (w->has_ack)
        fd_settle(fd, w->ack, ok, r->code_name[0] ? r->code_name : "STORE");
}

static fd_cmd_t *fd_cmd_find(fd_t *fd, const uint8_t corr[16], size_t *slot);

static int fd_on_receipt(actor_t *actor, const actor_msg_t *msg, void *arg)
{
    fd_t *fd = arg;
    actor_receipt_t r;
    if (actor_receipt_parse(msg, &r) || !r.has_corr)
        return 0;
    for (fd_wait_t *w = zlistx_first(fd->waits); w; w = zlistx_next(fd->waits)) {
        if (memcmp(w->sent, r.corr, 16))
            continue;
        void *handle = zlistx_cursor(fd->waits);
        if (w->kind == FD_WAIT_REQUEST)
            fd_request_receipt(fd, w, &r);
        else
            fd_delivery_receipt(fd, w, &r);
        zlistx_delete(fd->waits, handle);
        return 0;
    }
    size_t i;
    fd_cmd_t *c = r.ok ? NULL : fd_cmd_find(fd, r.corr, &i);
    if (c) {
        c->ans[i].done = true;
        snprintf(c->ans[i].err, sizeof c->ans[i].err, "%s%s%.120s",
                 r.code_name, r.msg[0] ? ": " : "", r.msg);
        fd_cmd_got(c);
        return 0;
    }
    if (!r.ok)
        sylog_debug("frontdoor %s: receipt %s %s", actor_name(actor),
                    r.code_name, r.msg);
    return 0;
}

/* The first wait of kind, or NULL. */
static fd_wait_t *fd_wait_first(fd_t *fd, fd_wait_kind_t kind)
{
    for (fd_wait_t *w = zlistx_first(fd->waits); w; w = zlistx_next(fd->waits))
        if (w->kind == kind)
            return w;
    return NULL;
}

/* Sends again, with its key, every chat.request whose receipt was lost
   with the connection.  One that cannot go now waits for the next
   welcome. */
static void fd_requests_resend(fd_t *fd)
{
    size_t n = 0;
    for (fd_wait_t *w = zlistx_first(fd->waits); w; w = zlistx_next(fd->waits)) {
        if (!w->resend)
            continue;
        int rc = fd_request_send(fd, w->job, w->req, w->req_len, w->sent);
        if (rc)
            sylog_warn("frontdoor: %s/%s: request not sent again yet: %s",
                       w->dest.channel, w->dest.user, syerr_name(rc));
        else
            n++;
        w->resend = rc != 0;
    }
    if (n)
        sylog_info("frontdoor: %zu requests without receipt sent again", n);
}

/* Connection lost: the held deliveries are void (given out again), so
   are the waits for their receipts; a chat.request whose receipt did not
   come is sent again after the next welcome (a direct client's question
   has no other way to reach the router). */
static void fd_on_state(actor_t *actor, bool up, void *arg)
{
    (void) actor;
    fd_t *fd = arg;
    if (up) {
        fd_requests_resend(fd);
        return;
    }
    size_t lost = zlistx_size(fd->waits);
    for (fd_wait_t *w = zlistx_first(fd->waits); w; w = zlistx_next(fd->waits))
        if (w->kind == FD_WAIT_REQUEST) {
            w->has_ack = false;
            w->resend = true;
        }
    fd_wait_t *w;
    while ((w = fd_wait_first(fd, FD_WAIT_DELIVERY)) != NULL)
        zlistx_delete(fd->waits, zlistx_find(fd->waits, w));
    if (lost)
        sylog_info("frontdoor: connection lost with %zu receipts awaited",
                   lost);
}

/* ------------------------------------------------------------ handlers */

/* Who wrote msg, and where answers go.  Returns 0, or SY_EMISSING for a
   bridge that did not say channel and user. */
static int fd_dest_of_msg(fd_t *fd, const actor_msg_t *msg,
                          const fd_fields_t *f, fd_dest_t *d)
{
    memset(d, 0, sizeof *d);
    fd_strcpy(d->addr, sizeof d->addr, &f->addr, f->has_addr);
    fd_strcpy(d->ref, sizeof d->ref, &f->ref, f->has_ref);
    if (fd_is_bridge(fd, msg->hdr.from)) {
        if (!f->has_channel || !f->has_user)
            return SY_EMISSING;
        fd_strcpy(d->channel, sizeof d->channel, &f->channel, true);
        fd_strcpy(d->user, sizeof d->user, &f->user, true);
        snprintf(d->route, sizeof d->route, "%s", d->channel);
        return 0;
    }
    snprintf(d->channel, sizeof d->channel, FD_CHANNEL_ZMQ);
    snprintf(d->user, sizeof d->user, "%s", msg->hdr.from);
    snprintf(d->route, sizeof d->route, "@%s", msg->hdr.from);
    /* A direct client that gave no ref gets its message's id: what comes
       back then says which question it answers (docs/CHAT.md). */
    if (!d->ref[0])
        for (int i = 0; i < 16; i++)
            snprintf(d->ref + 2 * i, 3, "%02x", msg->hdr.id[i]);
    return 0;
}

/* Step 1 of docs/CHAT.md: length, attachments, rate.  Returns 1 when
   refused (the refusal is delivered, *rc is its result), 0 to go on. */
static int fd_check(fd_t *fd, const fd_dest_t *d, const uint8_t *ack,
                    const fd_fields_t *f, int *rc)
{
    char text[200];
    const char *error = NULL;
    if (f->text.len > fd->max_text) {
        error = "TOO_LONG";
        snprintf(text, sizeof text, "Your message is %u bytes; the limit is "
                 "%zu.", f->text.len, fd->max_text);
    } else if (f->attach && !fd_attachments_ok(f->attach, f->attach_len)) {
        error = "BAD_INPUT";
        snprintf(text, sizeof text, "attachments must be a list of maps, "
                 "each with a kind.");
    } else if (!fd_rate_take(fd, d)) {
        error = "RATE_LIMITED";
        snprintf(text, sizeof text, "Too many messages: wait a moment and "
                 "try again.");
    }
    if (!error)
        return 0;
    sylog_info("frontdoor: %s/%s refused: %s", d->channel, d->user, error);
    *rc = fd_reply_text(fd, d, ack, NULL, error, text);
    return 1;
}

static int fd_on_message(actor_t *actor, const actor_msg_t *msg, void *arg)
{
    fd_t *fd = arg;
    const uint8_t *ack = fd_ack_of(msg);
    fd_fields_t f;
    fd_dest_t d;
    int rc = fd_fields_read(msg->body, msg->body_len, &f);
    if (rc == 0 && fd_dest_of_msg(fd, msg, &f, &d) != 0) {
        sylog_warn("frontdoor: bridge %s sent a chat.message without "
                   "channel and user", msg->hdr.from);
        fd_pairs_t p;
        fd_pairs_init(&p);
        fd_pair_cstr(&p, "text", "a bridge must give channel and user");
        fd_pair_cstr(&p, "error", "BAD_INPUT");
        uint8_t *body = NULL;
        size_t len = 0;
        if (fd_pairs_map(&p, &body, &len) == 0)
            actor_reply(actor, msg, "chat.reply", body, len);
        free(body);
        fd_pairs_clear(&p);
        return 0;               /* acked: sending it again cannot help */
    }
    if (rc)
        return 0;
    if (fd_check(fd, &d, ack, &f, &rc))
        return fd_handler_rc(ack, rc);
    const char *text = (const char *) f.text.ptr;
    if (f.text.len && text[0] == '/')
        rc = fd_command(fd, &d, ack, text, f.text.len);
    else
        rc = fd_ask(fd, &d, ack, &f);
    return fd_handler_rc(ack, rc);
}

typedef struct {
    fd_t       *fd;
    const char *to;
} fd_sync_t;

static int fd_sync_one(uint64_t seq, const char *type, const uint8_t *body,
                       size_t len, void *arg)
{
    fd_sync_t *s = arg;
    uint8_t *full = NULL;
    size_t flen = 0;
    int rc = fd_with_seq(body, len, seq, &full, &flen);
    if (rc == 0)
        rc = actor_send(s->fd->actor, s->to, type, full, flen, NULL, NULL);
    free(full);
    if (rc)
        sylog_debug("frontdoor: sync to %s stopped at seq %llu: %s", s->to,
                    (unsigned long long) seq, syerr_name(rc));
    return rc;
}

static int fd_on_sync(actor_t *actor, const actor_msg_t *msg, void *arg)
{
    (void) actor;
    fd_t *fd = arg;
    fd_fields_t f;
    if (fd_fields_read(msg->body, msg->body_len, &f) != 0)
        return 0;
    char to[CHATSTORE_ROUTE_MAX + 1];
    snprintf(to, sizeof to, "@%s", msg->hdr.from);
    fd_sync_t s = { fd, to };
    int rc = chatstore_outbox_after(fd->store, msg->hdr.from, f.after,
                                    fd_sync_one, &s);
    if (rc < 0 && rc != SY_ECLOSED && rc != SY_EQUEUE_FULL)
        sylog_warn("frontdoor: chat.sync of %s: %s", msg->hdr.from,
                   syerr_name(rc));
    return 0;
}

/* The pending job a worker's message is about; SY_ENOTFOUND if none. */
static int fd_job_of(fd_t *fd, const fd_fields_t *f, chatstore_job_t *job)
{
    if (!f->has_job)
        return SY_ENOTFOUND;
    return chatstore_job_get(fd->store, f->job, job);
}

static int fd_on_routed(actor_t *actor, const actor_msg_t *msg, void *arg)
{
    (void) actor;
    fd_t *fd = arg;
    const uint8_t *ack = fd_ack_of(msg);
    fd_fields_t f;
    chatstore_job_t job;
    if (fd_fields_read(msg->body, msg->body_len, &f) || fd_job_of(fd, &f, &job))
        return 0;               /* not pending: nothing to tell */
    char klass[17], service[CHATSTORE_CHANNEL_MAX + 1];
    fd_strcpy(klass, sizeof klass, &f.klass, f.has_klass);
    fd_strcpy(service, sizeof service, &f.service, f.has_service);
    int rc = chatstore_job_route(fd->store, job.id, klass, service,
                                 f.has_queued ? f.queued_id : NULL);
    if (rc == SY_ENOTFOUND)
        return 0;
    if (rc || f.online)
        return fd_handler_rc(ack, rc);
    fd_dest_t d;
    fd_dest_of_job(&d, &job);
    char text[200];
    if (f.has_place && f.place > 0)
        snprintf(text, sizeof text, "The laptop is offline. Your job is queued "
                 "(place %llu) and will run when it is back.",
                 (unsigned long long) f.place);
    else
        snprintf(text, sizeof text, "The laptop is offline. Your job is queued "
                 "and will run when it is back.");
    rc = fd_notice(fd, &d, ack, "queued", job.id, f.has_place, f.place, text);
    return fd_handler_rc(ack, rc);
}

/* Fields the front door sets on what it relays: a worker's are dropped.
   A token keeps its seq (the piece's number); a reply or notice gets the
   outbox's. */
static const char *const fd_addr_keys[] = { "user", "addr", "ref", "seq", NULL };
static const char *const fd_token_keys[] = { "user", "addr", "ref", NULL };

static int fd_on_token(actor_t *actor, const actor_msg_t *msg, void *arg)
{
    fd_t *fd = arg;
    fd_fields_t f;
    chatstore_job_t job;
    if (fd_fields_read(msg->body, msg->body_len, &f) || fd_job_of(fd, &f, &job))
        return 0;               /* tokens of a job not pending: dropped */
    fd_dest_t d;
    fd_dest_of_job(&d, &job);
    fd_pairs_t p;
    fd_pairs_init(&p);
    uint8_t *body = NULL;
    size_t len = 0;
    int rc = fd_pairs_copy(&p, msg->body, msg->body_len, fd_token_keys);
    if (rc == 0)
        rc = fd_body(&p, &d, &body, &len);
    if (rc == 0)
        rc = actor_send(actor, d.route, "chat.token", body, len, NULL, NULL);
    if (rc)
        sylog_debug("frontdoor: token for %s not relayed: %s", d.route,
                    syerr_name(rc));
    free(body);
    fd_pairs_clear(&p);
    return 0;
}

/* Relays a worker's chat.reply or chat.notice to the job's user. */
static int fd_relay(fd_t *fd, const actor_msg_t *msg, bool reply)
{
    const uint8_t *ack = fd_ack_of(msg);
    fd_fields_t f;
    chatstore_job_t job;
    if (fd_fields_read(msg->body, msg->body_len, &f) || fd_job_of(fd, &f, &job)) {
        sylog_debug("frontdoor: %s for a job not pending: dropped",
                    msg->hdr.type);
        return 0;
    }
    fd_dest_t d;
    fd_dest_of_job(&d, &job);
    fd_pairs_t p;
    fd_pairs_init(&p);
    int rc = fd_pairs_copy(&p, msg->body, msg->body_len, fd_addr_keys);
    bool answer = reply && !f.has_error;
    fd_out_t o = { .dest = &d, .type = msg->hdr.type, .pairs = &p,
                   .end_job = reply ? job.id : NULL,
                   .answer = answer ? (const char *) f.text.ptr : NULL,
                   .answer_len = answer ? f.text.len : 0, .ack = ack };
    if (rc == 0)
        rc = fd_deliver(fd, &o);
    fd_pairs_clear(&p);
    return fd_handler_rc(ack, rc);
}

static int fd_on_reply(actor_t *actor, const actor_msg_t *msg, void *arg)
{
    (void) actor;
    return fd_relay(arg, msg, true);
}

static int fd_on_notice(actor_t *actor, const actor_msg_t *msg, void *arg)
{
    (void) actor;
    return fd_relay(arg, msg, false);
}

/* True if the presence.join event in msg is of an actor offering
   inference. */
static bool fd_event_inference_join(const actor_msg_t *msg)
{
    mpread_t r, at;
    mpval_t map, v, data, svcs;
    mpread_init(&r, msg->body, msg->body_len);
    if (mpread_next(&r, &map) || map.kind != MP_MAP
        || mpread_map_find(&r, &map, "topic", &v, NULL)
        || !mpval_str_eq(&v, "presence.join")
        || mpread_map_find(&r, &map, "data", &data, &at) || data.kind != MP_MAP
        || mpread_map_find(&at, &data, "services", &svcs, &at)
        || svcs.kind != MP_ARRAY)
        return false;
    for (uint32_t i = 0; i < svcs.len; i++) {
        if (mpread_next(&at, &v) || mpread_skip(&at, &v, 2))
            return false;
        if (mpval_str_eq(&v, "inference"))
            return true;
    }
    return false;
}

/* An inference worker joined: each user with a queued heavy job hears
   that the laptop is back (once per user). */
static int fd_on_event(actor_t *actor, const actor_msg_t *msg, void *arg)
{
    (void) actor;
    fd_t *fd = arg;
    if (!fd_event_inference_join(msg))
        return 0;
    chatstore_job_t *jobs = NULL;
    size_t n = 0;
    if (chatstore_jobs(fd->store, NULL, NULL, &jobs, &n))
        return 0;
    for (size_t i = 0; i < n; i++) {
        const chatstore_job_t *j = &jobs[i];
        if (strcmp(j->service, "inference") || !j->has_queued)
            continue;
        bool told = false;
        for (size_t k = 0; k < i && !told; k++)
            told = !strcmp(jobs[k].service, "inference") && jobs[k].has_queued
                && !strcmp(jobs[k].channel, j->channel)
                && !strcmp(jobs[k].user, j->user);
        if (told)
            continue;
        fd_dest_t d;
        fd_dest_of_job(&d, j);
        fd_notice(fd, &d, NULL, "online", j->id, false, 0,
                  "The laptop is back; your job is starting.");
    }
    free(jobs);
    return 0;
}

/* ------------------------------------------------------------ main */

static void fd_usage(FILE *f)
{
    fprintf(f,
        "usage: sy-frontdoor [--config FILE] [--name NAME] [--endpoint EP]\n"
        "                    [--cert PATH]\n"
        "\n"
        "The chat front door (docs/CHAT.md): takes chat.message from direct\n"
        "clients and bridges, answers /status /queue /cancel /new, sends\n"
        "every other message as a job to the router and relays what comes\n"
        "back to the user.  Conversations, pending jobs and outboxes live\n"
        "in frontdoor/store (sealed with its store.key).\n"
        "\n"
        "  --config FILE        configuration (default: $SWITCHYARD_CONFIG,\n"
        "                       else ./etc/switchyard.cfg if present)\n"
        "  --name NAME          actor name (frontdoor/name)\n"
        "  --endpoint ENDPOINT  broker endpoint (actor/endpoint)\n"
        "  --cert PATH          this actor's certificate (security/cert; used\n"
        "                       when security/curve is on)\n"
        "  --help               this text\n"
        "\n"
        "Runs until SIGINT or SIGTERM.  Exit codes: 0 ok, 2 usage error,\n"
        "4 configuration or store error.\n");
}

typedef struct {
    const char *config, *name, *endpoint, *cert;
} fd_args_t;

static int fd_parse_args(int argc, char **argv, fd_args_t *a)
{
    static const cliargs_flag_t flags[] = {
        { "--config",   offsetof(fd_args_t, config) },
        { "--name",     offsetof(fd_args_t, name) },
        { "--endpoint", offsetof(fd_args_t, endpoint) },
        { "--cert",     offsetof(fd_args_t, cert) },
    };
    int rc = cliargs_parse("sy-frontdoor", argc, argv, flags,
                           sizeof flags / sizeof flags[0], a);
    if (rc == CLIARGS_HELP) {
        fd_usage(stdout);
        exit(0);
    }
    return rc;
}

/* The settings fd reads, and its tables. */
static int fd_init(fd_t *fd, const config_t *cfg)
{
    syid_init(&fd->ids);
    fd->max_text = (size_t) config_int(cfg, "frontdoor/max_text");
    fd->history_bytes = (size_t) config_int(cfg, "frontdoor/history_bytes");
    fd->rate_per_ms = (double) config_int(cfg, "frontdoor/rate") / 60000.0;
    fd->burst = (double) config_int(cfg, "frontdoor/burst");
    fd->query_timeout_ms = (int) config_int(cfg, "syctl/timeout");
    fd->buckets = zhashx_new();
    fd->waits = zlistx_new();
    fd->cmds = zlistx_new();
    if (!fd->buckets || !fd->waits || !fd->cmds)
        return SY_ENOMEM;
    zhashx_set_destructor(fd->buckets, fd_bucket_free);
    zlistx_set_destructor(fd->waits, fd_wait_free);
    return fd_bridges_parse(fd, config_str(cfg, "frontdoor/bridges"));
}

static void fd_fini(fd_t *fd)
{
    actor_destroy(&fd->actor);
    if (fd->cmds) {
        for (fd_cmd_t *c = zlistx_first(fd->cmds); c; c = zlistx_next(fd->cmds))
            fd_cmd_free(&c);
        zlistx_destroy(&fd->cmds);
    }
    zlistx_destroy(&fd->waits);
    zhashx_destroy(&fd->buckets);
    fd_bridges_free(fd);
    chatstore_destroy(&fd->store);
}

static int fd_open_store(fd_t *fd, const config_t *cfg)
{
    chatstore_opts_t so = {
        .dir = config_str(cfg, "frontdoor/store"),
        .map_size = (uint64_t) config_int(cfg, "frontdoor/map_size"),
        .history_turns = (uint32_t) config_int(cfg, "frontdoor/history_turns"),
        .outbox_max = (uint32_t) config_int(cfg, "frontdoor/outbox"),
    };
    char err[600];
    int rc = chatstore_open(&so, &fd->store, err, sizeof err);
    if (rc) {
        fprintf(stderr, "sy-frontdoor: %s\n", err);
        sylog_error("%s", err);
    }
    return rc;
}

static void fd_handlers(fd_t *fd)
{
    actor_on(fd->actor, "chat.message", fd_on_message, fd);
    actor_on(fd->actor, "chat.sync", fd_on_sync, fd);
    actor_on(fd->actor, "chat.routed", fd_on_routed, fd);
    actor_on(fd->actor, "chat.token", fd_on_token, fd);
    actor_on(fd->actor, "chat.reply", fd_on_reply, fd);
    actor_on(fd->actor, "chat.notice", fd_on_notice, fd);
    actor_on(fd->actor, "sy.event", fd_on_event, fd);
    actor_on(fd->actor, "sy.answer", fd_on_answer, fd);
    actor_on(fd->actor, "sy.receipt", fd_on_receipt, fd);
    actor_on_state(fd->actor, fd_on_state, fd);
    actor_subscribe(fd->actor, "presence.");
}

int main(int argc, char **argv)
{
    fd_args_t args = { 0 };
    if (fd_parse_args(argc, argv, &args))
        return FD_EXIT_USAGE;
    config_t *cfg = NULL;
    char err[512];
    if (config_load(config_pick_path(args.config), &cfg, err, sizeof err)) {
        fprintf(stderr, "sy-frontdoor: %s\n", err);
        return FD_EXIT_CONFIG;
    }
    sylog_level_t level = SYLOG_INFO;
    sylog_level_parse(config_str(cfg, "log/level"), &level);
    if (sylog_open("sy-frontdoor", level, config_str(cfg, "log/file"))) {
        fprintf(stderr, "sy-frontdoor: cannot open log file %s\n",
                config_str(cfg, "log/file"));
        config_destroy(&cfg);
        return FD_EXIT_CONFIG;
    }
    actor_opts_t opts = { 0 };
    actor_opts_from_config(&opts, cfg);
    if (actor_opts_security(&opts, cfg, args.cert, err, sizeof err)) {
        fprintf(stderr, "sy-frontdoor: %s\n", err);
        config_destroy(&cfg);
        return FD_EXIT_CONFIG;
    }
    opts.name = args.name ? args.name
                          : opts.cert ? NULL : config_str(cfg, "frontdoor/name");
    static const char *services[] = { "frontdoor" };
    opts.services = services;
    opts.nservices = 1;
    opts.credit = (uint32_t) config_int(cfg, "frontdoor/credit");
    if (args.endpoint)
        opts.endpoint = args.endpoint;

    fd_t fd = { 0 };
    int rc = fd_init(&fd, cfg);
    if (rc == 0)
        rc = fd_open_store(&fd, cfg);
    if (rc == 0) {
        fd.actor = actor_new(&opts);
        if (!fd.actor) {
            fprintf(stderr, "sy-frontdoor: cannot start: invalid name, "
                    "endpoint or certificate (see the log)\n");
            rc = SY_ECONFIG;
        }
    }
    if (rc) {
        fd_fini(&fd);
        config_destroy(&cfg);
        sylog_close();
        return FD_EXIT_CONFIG;
    }
    fd_handlers(&fd);
    sylog_info("frontdoor %s at %s (credit %u, store %s%s)",
               actor_name(fd.actor), opts.endpoint, opts.credit,
               config_str(cfg, "frontdoor/store"), opts.cert ? ", CURVE" : "");
    actor_run(fd.actor);
    sylog_info("frontdoor %s stopping", actor_name(fd.actor));
    fd_fini(&fd);
    config_destroy(&cfg);
    zsys_shutdown();
    sylog_close();
    return 0;
}
