/*  chatstore.c -- the front door's LMDB store (see chatstore.h).
 *
 *  Layout (format 1), one LMDB environment with named databases:
 *
 *    meta    "format" -> u32 version; "seal_fp" -> the key's fingerprint
 *    convs   P -> {conv u64, next u64}     P = len(channel) channel
 *                                              len(user) user
 *    turns   P + turn no (u64 big-endian) -> sealed {role, ts, text}
 *    jobs    job id (16 bytes) -> sealed job record
 *    outbox  U + seq (u64 big-endian) -> sealed {type, body}
 *                                           U = len(user) user
 *    outseq  U -> last seq given out (u64)
 *
 *  Keys sort by (conversation or user, number), so a conversation's turns
 *  and an outbox are contiguous ranges read and trimmed with one cursor;
 *  numbers only grow, so trimming deletes from the front of a range.
 *  Pending jobs are few (one per question waiting for its answer), so
 *  listing a user's jobs walks them all; job ids are time-ordered, so the
 *  walk is oldest first.
 *
 *  Every sealed value's associated data is a one-byte tag of its database
 *  followed by its key: a value moved to another key or database does not
 *  open.  Values are sealed in a buffer the store keeps and grows.
 */
#include "actors/chatstore.h"
#include "common/seal.h"
#include "common/sylog.h"
#include "schemas/syerr.h"
#include "schemas/syid.h"

#include <errno.h>
#include <lmdb.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CS_DEFAULT_MAP   (64ULL * 1024 * 1024)
#define CS_DEFAULT_OUTBOX 100
#define CS_MAXDBS        8
#define CS_KEY_MAX       (2 + CHATSTORE_CHANNEL_MAX + CHATSTORE_USER_MAX + 8)
#define CS_META_FP       "seal_fp"

/* Tags of the associated data, one per sealed database. */
#define CS_TAG_TURN   't'
#define CS_TAG_JOB    'j'
#define CS_TAG_OUTBOX 'o'

struct _chatstore_t {
    MDB_env  *env;
    MDB_dbi   db_meta, db_convs, db_turns, db_jobs, db_outbox, db_outseq;
    seal_t   *seal;
    uint32_t  history_turns;
    uint32_t  outbox_max;
    uint8_t  *buf;              /* sealing / opening scratch */
    size_t    cap;
    char      dir[1024];
};

/* A conversation's record. */
typedef struct {
    uint64_t conv;
    uint64_t next;              /* number of the next turn */
} cs_conv_t;

/* ------------------------------------------------------------ helpers */

static int cs_rc(int mrc)
{
    switch (mrc) {
    case 0:              return 0;
    case MDB_NOTFOUND:   return SY_ENOTFOUND;
    case MDB_MAP_FULL:   return SY_EQUEUE_FULL;
    case ENOMEM:         return SY_ENOMEM;
    default:             return SY_ESTORE;
    }
}

static void cs_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t) v;
        v >>= 8;
    }
}

static uint64_t cs_get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* Appends a length-prefixed string (1 byte of length) to key. */
static size_t cs_key_str(uint8_t *key, size_t at, const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max)
        n = max;
    key[at] = (uint8_t) n;
    memcpy(key + at + 1, s, n);
    return at + 1 + n;
}

static bool cs_name_ok(const char *s, size_t max)
{
    return s && s[0] && strlen(s) <= max;
}

/* P: the conversation prefix of (channel, user); 0 if either is bad. */
static size_t cs_conv_key(uint8_t *key, const char *channel, const char *user)
{
    if (!cs_name_ok(channel, CHATSTORE_CHANNEL_MAX)
        || !cs_name_ok(user, CHATSTORE_USER_MAX))
        return 0;
    return cs_key_str(key, cs_key_str(key, 0, channel, CHATSTORE_CHANNEL_MAX),
                      user, CHATSTORE_USER_MAX);
}

/* U: the outbox prefix of user; 0 if bad. */
static size_t cs_user_key(uint8_t *key, const char *user)
{
    if (!cs_name_ok(user, CHATSTORE_USER_MAX))
        return 0;
    return cs_key_str(key, 0, user, CHATSTORE_USER_MAX);
}

static bool cs_has_prefix(const MDB_val *k, const uint8_t *pfx, size_t n)
{
    return k->mv_size >= n && memcmp(k->mv_data, pfx, n) == 0;
}

/* Makes room for n bytes in the scratch buffer. */
static int cs_reserve(chatstore_t *s, size_t n)
{
    if (n <= s->cap)
        return 0;
    uint8_t *b = realloc(s->buf, n);
    if (!b)
        return SY_ENOMEM;
    s->buf = b;
    s->cap = n;
    return 0;
}

/* The associated data of a sealed value: tag, then the key. */
static size_t cs_ad(uint8_t *ad, char tag, const MDB_val *k)
{
    ad[0] = (uint8_t) tag;
    memcpy(ad + 1, k->mv_data, k->mv_size);
    return 1 + k->mv_size;
}

/* Seals plain into s->buf and puts it at k. */
static int cs_put_sealed(chatstore_t *s, MDB_txn *t, MDB_dbi db, char tag,
                         MDB_val *k, const uint8_t *plain, size_t len)
{
    uint8_t ad[1 + CS_KEY_MAX];
    size_t adlen = cs_ad(ad, tag, k);
    int rc = cs_reserve(s, len + SEAL_OVERHEAD);
    size_t slen = 0;
    if (rc == 0)
        rc = seal_encrypt(s->seal, ad, adlen, plain, len, s->buf, s->cap,
                          &slen);
    if (rc)
        return rc;
    MDB_val v = { slen, s->buf };
    return cs_rc(mdb_put(t, db, k, &v, 0));
}

/* Opens the sealed value v of key k into a malloc'd buffer (*out, with
   one NUL byte more).  SY_ECRYPTO for a value that does not open. */
static int cs_open_sealed(chatstore_t *s, char tag, const MDB_val *k,
                          const MDB_val *v, uint8_t **out, size_t *len)
{
    uint8_t ad[1 + CS_KEY_MAX];
    *out = NULL;
    if (k->mv_size > CS_KEY_MAX || v->mv_size < SEAL_OVERHEAD)
        return SY_ECRYPTO;
    size_t adlen = cs_ad(ad, tag, k);
    size_t cap = v->mv_size - SEAL_OVERHEAD + 1;
    uint8_t *p = malloc(cap);
    if (!p)
        return SY_ENOMEM;
    int rc = seal_decrypt(s->seal, ad, adlen, v->mv_data, v->mv_size, p, cap,
                          len);
    if (rc) {
        free(p);
        return rc;
    }
    p[*len] = 0;
    *out = p;
    return 0;
}

/* Commits t (or aborts it when rc is an error).  Returns rc or the
   commit's error. */
static int cs_end(MDB_txn *t, int rc)
{
    if (rc) {
        mdb_txn_abort(t);
        return rc;
    }
    return cs_rc(mdb_txn_commit(t));
}

static int cs_begin(chatstore_t *s, bool write, MDB_txn **t)
{
    return cs_rc(mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, t));
}

/* ------------------------------------------------------------ records */

/* A little writer and reader for the plain form of job records. */
typedef struct {
    uint8_t *p;
    size_t   n, cap;
    bool     over;
} cs_w_t;

static void cs_w_bytes(cs_w_t *w, const void *d, size_t n)
{
    if (w->over || w->cap - w->n < n) {
        w->over = true;
        return;
    }
    memcpy(w->p + w->n, d, n);
    w->n += n;
}

static void cs_w_u64(cs_w_t *w, uint64_t v)
{
    uint8_t b[8];
    cs_be64(b, v);
    cs_w_bytes(w, b, 8);
}

static void cs_w_str(cs_w_t *w, const char *s)
{
    size_t n = strnlen(s, 255);
    uint8_t len = (uint8_t) n;
    cs_w_bytes(w, &len, 1);
    cs_w_bytes(w, s, n);
}

typedef struct {
    const uint8_t *p, *end;
    bool           bad;
} cs_r_t;

static void cs_r_bytes(cs_r_t *r, void *d, size_t n)
{
    if (r->bad || (size_t) (r->end - r->p) < n) {
        r->bad = true;
        memset(d, 0, n);
        return;
    }
    memcpy(d, r->p, n);
    r->p += n;
}

static uint64_t cs_r_u64(cs_r_t *r)
{
    uint8_t b[8];
    cs_r_bytes(r, b, 8);
    return r->bad ? 0 : cs_get_be64(b);
}

static void cs_r_str(cs_r_t *r, char *out, size_t cap)
{
    uint8_t n = 0;
    cs_r_bytes(r, &n, 1);
    if (r->bad || (size_t) n >= cap || (size_t) (r->end - r->p) < n) {
        r->bad = true;
        out[0] = 0;
        return;
    }
    memcpy(out, r->p, n);
    out[n] = 0;
    r->p += n;
}

#define CS_JOB_PLAIN_MAX 1024

static size_t cs_job_encode(const chatstore_job_t *j, uint8_t *buf, size_t cap)
{
    cs_w_t w = { buf, 0, cap, false };
    uint8_t ver = 1, q = j->has_queued;
    cs_w_bytes(&w, &ver, 1);
    cs_w_str(&w, j->channel);
    cs_w_str(&w, j->user);
    cs_w_str(&w, j->addr);
    cs_w_str(&w, j->ref);
    cs_w_str(&w, j->route);
    cs_w_u64(&w, j->created);
    cs_w_u64(&w, j->conv);
    cs_w_str(&w, j->klass);
    cs_w_str(&w, j->service);
    cs_w_bytes(&w, &q, 1);
    cs_w_bytes(&w, j->queued_id, 16);
    cs_w_str(&w, j->preview);
    return w.over ? 0 : w.n;
}

static int cs_job_decode(const uint8_t *p, size_t n, const uint8_t id[16],
                         chatstore_job_t *j)
{
    cs_r_t r = { p, p + n, false };
    uint8_t ver = 0, q = 0;
    memset(j, 0, sizeof *j);
    memcpy(j->id, id, 16);
    cs_r_bytes(&r, &ver, 1);
    if (ver != 1)
        return SY_ESTORE;
    cs_r_str(&r, j->channel, sizeof j->channel);
    cs_r_str(&r, j->user, sizeof j->user);
    cs_r_str(&r, j->addr, sizeof j->addr);
    cs_r_str(&r, j->ref, sizeof j->ref);
    cs_r_str(&r, j->route, sizeof j->route);
    j->created = cs_r_u64(&r);
    j->conv = cs_r_u64(&r);
    cs_r_str(&r, j->klass, sizeof j->klass);
    cs_r_str(&r, j->service, sizeof j->service);
    cs_r_bytes(&r, &q, 1);
    cs_r_bytes(&r, j->queued_id, 16);
    cs_r_str(&r, j->preview, sizeof j->preview);
    j->has_queued = q != 0;
    return r.bad || r.p != r.end ? SY_ESTORE : 0;
}

static bool cs_job_ok(const chatstore_job_t *j)
{
    return cs_name_ok(j->channel, CHATSTORE_CHANNEL_MAX)
        && cs_name_ok(j->user, CHATSTORE_USER_MAX)
        && cs_name_ok(j->route, CHATSTORE_ROUTE_MAX)
        && memchr(j->addr, 0, sizeof j->addr) && memchr(j->ref, 0, sizeof j->ref)
        && memchr(j->klass, 0, sizeof j->klass)
        && memchr(j->service, 0, sizeof j->service)
        && memchr(j->preview, 0, sizeof j->preview);
}

static int cs_job_write(chatstore_t *s, MDB_txn *t, const chatstore_job_t *j)
{
    uint8_t plain[CS_JOB_PLAIN_MAX];
    size_t n = cs_job_encode(j, plain, sizeof plain);
    if (n == 0)
        return SY_EINVAL;
    MDB_val k = { 16, (void *) j->id };
    int rc = cs_put_sealed(s, t, s->db_jobs, CS_TAG_JOB, &k, plain, n);
    sodium_memzero(plain, sizeof plain);
    return rc;
}

static int cs_job_read(chatstore_t *s, MDB_txn *t, const uint8_t id[16],
                       chatstore_job_t *j)
{
    MDB_val k = { 16, (void *) id }, v;
    int rc = cs_rc(mdb_get(t, s->db_jobs, &k, &v));
    uint8_t *plain = NULL;
    size_t n = 0;
    if (rc == 0)
        rc = cs_open_sealed(s, CS_TAG_JOB, &k, &v, &plain, &n);
    if (rc == 0)
        rc = cs_job_decode(plain, n, id, j);
    if (plain) {
        sodium_memzero(plain, n);
        free(plain);
    }
    return rc;
}

/* The conversation record of P (zeros for a conversation never seen). */
static int cs_conv_get(chatstore_t *s, MDB_txn *t, const uint8_t *pfx,
                       size_t plen, cs_conv_t *c)
{
    MDB_val k = { plen, (void *) pfx }, v;
    memset(c, 0, sizeof *c);
    int rc = cs_rc(mdb_get(t, s->db_convs, &k, &v));
    if (rc == SY_ENOTFOUND)
        return 0;
    if (rc)
        return rc;
    if (v.mv_size != 16)
        return SY_ESTORE;
    c->conv = cs_get_be64(v.mv_data);
    c->next = cs_get_be64((const uint8_t *) v.mv_data + 8);
    return 0;
}

static int cs_conv_put(chatstore_t *s, MDB_txn *t, const uint8_t *pfx,
                       size_t plen, const cs_conv_t *c)
{
    uint8_t b[16];
    cs_be64(b, c->conv);
    cs_be64(b + 8, c->next);
    MDB_val k = { plen, (void *) pfx }, v = { 16, b };
    return cs_rc(mdb_put(t, s->db_convs, &k, &v, 0));
}

/* Deletes the entries of db under pfx whose 8-byte number (after pfx) is
   below `below` (UINT64_MAX: all). */
static int cs_trim(MDB_txn *t, MDB_dbi db, const uint8_t *pfx, size_t plen,
                   uint64_t below)
{
    MDB_cursor *c;
    int rc = cs_rc(mdb_cursor_open(t, db, &c));
    if (rc)
        return rc;
    while (rc == 0) {
        MDB_val k = { plen, (void *) pfx }, v;
        int mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        if (mrc == MDB_NOTFOUND || (mrc == 0 && !cs_has_prefix(&k, pfx, plen)))
            break;
        rc = cs_rc(mrc);
        if (rc)
            break;
        if (k.mv_size != plen + 8) {
            rc = SY_ESTORE;
            break;
        }
        if (below != UINT64_MAX
            && cs_get_be64((const uint8_t *) k.mv_data + plen) >= below)
            break;
        rc = cs_rc(mdb_cursor_del(c, 0));
    }
    mdb_cursor_close(c);
    return rc;
}

/* Deletes the oldest entries of db under pfx until at most keep are
   left (numbers may have gaps: a withdrawn or cancelled question). */
static int cs_trim_count(MDB_txn *t, MDB_dbi db, const uint8_t *pfx,
                         size_t plen, size_t keep)
{
    MDB_cursor *c;
    int rc = cs_rc(mdb_cursor_open(t, db, &c));
    if (rc)
        return rc;
    size_t n = 0;
    MDB_val k = { plen, (void *) pfx }, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (mrc == 0 && cs_has_prefix(&k, pfx, plen)) {
        n++;
        mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    if (mrc && mrc != MDB_NOTFOUND)
        rc = cs_rc(mrc);
    for (; rc == 0 && n > keep; n--) {
        k.mv_size = plen;
        k.mv_data = (void *) pfx;
        rc = cs_rc(mdb_cursor_get(c, &k, &v, MDB_SET_RANGE));
        if (rc == 0 && !cs_has_prefix(&k, pfx, plen))
            rc = SY_ESTORE;
        if (rc == 0)
            rc = cs_rc(mdb_cursor_del(c, 0));
    }
    mdb_cursor_close(c);
    return rc;
}

/* ------------------------------------------------------------ turns */

static int cs_turn_put(chatstore_t *s, MDB_txn *t, const uint8_t *pfx,
                       size_t plen, chatstore_role_t role, const char *text,
                       size_t len, uint64_t ts)
{
    if (len > CHATSTORE_TEXT_MAX || (!text && len))
        return SY_EINVAL;
    cs_conv_t c;
    int rc = cs_conv_get(s, t, pfx, plen, &c);
    if (rc)
        return rc;
    uint64_t no = c.next++;
    if (s->history_turns > 0) {
        uint8_t key[CS_KEY_MAX];
        memcpy(key, pfx, plen);
        cs_be64(key + plen, no);
        uint8_t *plain = malloc(9 + len);
        if (!plain)
            return SY_ENOMEM;
        plain[0] = (uint8_t) role;
        cs_be64(plain + 1, ts);
        if (len)
            memcpy(plain + 9, text, len);
        MDB_val k = { plen + 8, key };
        rc = cs_put_sealed(s, t, s->db_turns, CS_TAG_TURN, &k, plain, 9 + len);
        sodium_memzero(plain, 9 + len);
        free(plain);
    }
    if (rc == 0)
        rc = cs_trim_count(t, s->db_turns, pfx, plen, s->history_turns);
    return rc ? rc : cs_conv_put(s, t, pfx, plen, &c);
}

int chatstore_turn_append(chatstore_t *self, const char *channel,
                          const char *user, chatstore_role_t role,
                          const char *text, size_t len, uint64_t ts)
{
    uint8_t pfx[CS_KEY_MAX];
    size_t plen = cs_conv_key(pfx, channel, user);
    if (!self || !plen || (role != CHATSTORE_USER && role != CHATSTORE_ASSISTANT))
        return SY_EINVAL;
    MDB_txn *t;
    int rc = cs_begin(self, true, &t);
    if (rc)
        return rc;
    return cs_end(t, cs_turn_put(self, t, pfx, plen, role, text, len, ts));
}

void chatstore_turns_clear(chatstore_turns_t *turns)
{
    if (!turns)
        return;
    for (size_t i = 0; i < turns->n; i++) {
        sodium_memzero(turns->v[i].text, turns->v[i].len);
        free(turns->v[i].text);
    }
    free(turns->v);
    turns->v = NULL;
    turns->n = 0;
}

/* Opens one turn into *turn (text owned). */
static int cs_turn_open(chatstore_t *s, const MDB_val *k, const MDB_val *v,
                        chatstore_turn_t *turn)
{
    uint8_t *plain = NULL;
    size_t n = 0;
    int rc = cs_open_sealed(s, CS_TAG_TURN, k, v, &plain, &n);
    if (rc)
        return rc;
    if (n < 9 || plain[0] > CHATSTORE_ASSISTANT) {
        free(plain);
        return SY_ESTORE;
    }
    turn->role = (chatstore_role_t) plain[0];
    turn->ts = cs_get_be64(plain + 1);
    turn->len = n - 9;
    memmove(plain, plain + 9, n - 9 + 1);   /* with its NUL */
    turn->text = (char *) plain;
    return 0;
}

/* Reads every turn under pfx into *out. */
static int cs_turns_read(chatstore_t *s, MDB_txn *t, const uint8_t *pfx,
                         size_t plen, chatstore_turns_t *out)
{
    MDB_cursor *c;
    size_t cap = 0;
    int rc = cs_rc(mdb_cursor_open(t, s->db_turns, &c));
    if (rc)
        return rc;
    MDB_val k = { plen, (void *) pfx }, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && mrc == 0 && cs_has_prefix(&k, pfx, plen)) {
        if (out->n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            chatstore_turn_t *nv = realloc(out->v, ncap * sizeof *nv);
            if (!nv) {
                rc = SY_ENOMEM;
                break;
            }
            out->v = nv;
            cap = ncap;
        }
        rc = cs_turn_open(s, &k, &v, &out->v[out->n]);
        if (rc == 0)
            out->n++;
        mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    if (rc == 0 && mrc && mrc != MDB_NOTFOUND)
        rc = cs_rc(mrc);
    mdb_cursor_close(c);
    return rc;
}

int chatstore_history(chatstore_t *self, const char *channel,
                      const char *user, size_t max_bytes,
                      chatstore_turns_t *out)
{
    uint8_t pfx[CS_KEY_MAX];
    size_t plen = cs_conv_key(pfx, channel, user);
    if (!out)
        return SY_EINVAL;
    out->v = NULL;
    out->n = 0;
    if (!self || !plen)
        return SY_EINVAL;
    MDB_txn *t;
    int rc = cs_begin(self, false, &t);
    if (rc)
        return rc;
    rc = cs_turns_read(self, t, pfx, plen, out);
    mdb_txn_abort(t);
    if (rc) {
        chatstore_turns_clear(out);
        return rc;
    }
    /* the newest turns that fit, without gaps */
    size_t keep = 0, bytes = 0;
    while (keep < out->n) {
        size_t len = out->v[out->n - 1 - keep].len;
        if (len > max_bytes - bytes)
            break;
        bytes += len;
        keep++;
    }
    size_t drop = out->n - keep;
    for (size_t i = 0; i < drop; i++) {
        sodium_memzero(out->v[i].text, out->v[i].len);
        free(out->v[i].text);
    }
    if (keep && drop)
        memmove(out->v, out->v + drop, keep * sizeof *out->v);
    out->n = keep;
    if (keep == 0) {
        free(out->v);
        out->v = NULL;
    }
    return 0;
}

int chatstore_conv_new(chatstore_t *self, const char *channel,
                       const char *user, uint64_t *conv)
{
    uint8_t pfx[CS_KEY_MAX];
    size_t plen = cs_conv_key(pfx, channel, user);
    if (!self || !plen)
        return SY_EINVAL;
    MDB_txn *t;
    int rc = cs_begin(self, true, &t);
    if (rc)
        return rc;
    cs_conv_t c;
    rc = cs_conv_get(self, t, pfx, plen, &c);
    if (rc == 0)
        rc = cs_trim(t, self->db_turns, pfx, plen, UINT64_MAX);
    c.conv++;
    if (rc == 0)
        rc = cs_conv_put(self, t, pfx, plen, &c);
    rc = cs_end(t, rc);
    if (rc == 0 && conv)
        *conv = c.conv;
    return rc;
}

int chatstore_conv_number(chatstore_t *self, const char *channel,
                          const char *user, uint64_t *conv)
{
    uint8_t pfx[CS_KEY_MAX];
    size_t plen = cs_conv_key(pfx, channel, user);
    if (!self || !plen || !conv)
        return SY_EINVAL;
    MDB_txn *t;
    int rc = cs_begin(self, false, &t);
    if (rc)
        return rc;
    cs_conv_t c;
    rc = cs_conv_get(self, t, pfx, plen, &c);
    mdb_txn_abort(t);
    if (rc == 0)
        *conv = c.conv;
    return rc;
}

/* ------------------------------------------------------------ jobs */

void chatstore_preview(chatstore_job_t *job, const char *text, size_t len)
{
    size_t n = len < CHATSTORE_PREVIEW_MAX ? len : CHATSTORE_PREVIEW_MAX;
    /* never end inside a UTF-8 sequence: back off continuation bytes */
    if (n < len)
        while (n > 0 && ((unsigned char) text[n] & 0xC0) == 0x80)
            n--;
    if (n)
        memcpy(job->preview, text, n);
    job->preview[n] = 0;
}

int chatstore_ask(chatstore_t *self, chatstore_job_t *job, const char *text,
                  size_t len)
{
    uint8_t pfx[CS_KEY_MAX];
    size_t plen = job ? cs_conv_key(pfx, job->channel, job->user) : 0;
    if (!self || !plen || !cs_job_ok(job))
        return SY_EINVAL;
    MDB_txn *t;
    int rc = cs_begin(self, true, &t);
    if (rc)
        return rc;
    MDB_val k = { 16, job->id }, v;
    if (mdb_get(t, self->db_jobs, &k, &v) == 0)
        rc = SY_EDUPLICATE;
    cs_conv_t c;
    if (rc == 0)
        rc = cs_conv_get(self, t, pfx, plen, &c);
    if (rc == 0) {
        job->conv = c.conv;
        rc = cs_turn_put(self, t, pfx, plen, CHATSTORE_USER, text, len,
                         job->created);
    }
    if (rc == 0)
        rc = cs_job_write(self, t, job);
    return cs_end(t, rc);
}

/* Deletes the job's question (the user's turn with ts = its creation)
   from its conversation, wherever it is, if the conversation is still
   the job's. */
static int cs_unask(chatstore_t *s, MDB_txn *t, const chatstore_job_t *j)
{
    uint8_t pfx[CS_KEY_MAX];
    size_t plen = cs_conv_key(pfx, j->channel, j->user);
    cs_conv_t c;
    int rc = plen ? cs_conv_get(s, t, pfx, plen, &c) : SY_ESTORE;
    if (rc || c.conv != j->conv)
        return rc;
    MDB_cursor *cur;
    rc = cs_rc(mdb_cursor_open(t, s->db_turns, &cur));
    if (rc)
        return rc;
    MDB_val k = { plen, pfx }, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && mrc == 0 && cs_has_prefix(&k, pfx, plen)) {
        chatstore_turn_t turn;
        if (cs_turn_open(s, &k, &v, &turn) == 0) {
            bool mine = turn.role == CHATSTORE_USER && turn.ts == j->created;
            sodium_memzero(turn.text, turn.len);
            free(turn.text);
            if (mine) {
                rc = cs_rc(mdb_cursor_del(cur, 0));
                break;
            }
        }
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc;
}

static int cs_job_end(chatstore_t *self, const uint8_t id[16],
                      const char *answer, size_t answer_len, bool drop,
                      const chatstore_out_t *out, uint64_t *seq);

/* A withdrawn question ends its job as a cancel does, with nothing for
   the outbox. */
int chatstore_withdraw(chatstore_t *self, const uint8_t id[16])
{
    return cs_job_end(self, id, NULL, 0, true, NULL, NULL);
}

int chatstore_job_get(chatstore_t *self, const uint8_t id[16],
                      chatstore_job_t *job)
{
    if (!self || !id || !job)
        return SY_EINVAL;
    MDB_txn *t;
    int rc = cs_begin(self, false, &t);
    if (rc)
        return rc;
    rc = cs_job_read(self, t, id, job);
    mdb_txn_abort(t);
    return rc;
}

int chatstore_job_put(chatstore_t *self, const chatstore_job_t *job)
{
    if (!self || !job || !cs_job_ok(job))
        return SY_EINVAL;
    MDB_txn *t;
    int rc = cs_begin(self, true, &t);
    if (rc)
        return rc;
    return cs_end(t, cs_job_write(self, t, job));
}

int chatstore_job_route(chatstore_t *self, const uint8_t id[16],
                        const char *klass, const char *service,
                        const uint8_t *queued_id)
{
    if (!self || !id || !klass || !service
        || strlen(klass) >= sizeof ((chatstore_job_t *) 0)->klass
        || strlen(service) > CHATSTORE_CHANNEL_MAX)
        return SY_EINVAL;
    MDB_txn *t;
    int rc = cs_begin(self, true, &t);
    if (rc)
        return rc;
    chatstore_job_t j;
    rc = cs_job_read(self, t, id, &j);
    if (rc == 0) {
        snprintf(j.klass, sizeof j.klass, "%s", klass);
        snprintf(j.service, sizeof j.service, "%s", service);
        j.has_queued = queued_id != NULL;
        if (queued_id)
            memcpy(j.queued_id, queued_id, 16);
        rc = cs_job_write(self, t, &j);
    }
    return cs_end(t, rc);
}

static int cs_outbox_put(chatstore_t *s, MDB_txn *t,
                         const chatstore_out_t *out, uint64_t *seq);

/* Ends job id: deletes it, appends answer (if not NULL) to its
   conversation, or with drop drops its question from it; appends out. */
static int cs_job_end(chatstore_t *self, const uint8_t id[16],
                      const char *answer, size_t answer_len, bool drop,
                      const chatstore_out_t *out, uint64_t *seq)
{
    if (!self || !id || (out && !seq))
        return SY_EINVAL;
    MDB_txn *t;
    int rc = cs_begin(self, true, &t);
    if (rc)
        return rc;
    chatstore_job_t j;
    rc = cs_job_read(self, t, id, &j);
    MDB_val k = { 16, (void *) id };
    if (rc == 0)
        rc = cs_rc(mdb_del(t, self->db_jobs, &k, NULL));
    if (rc == 0 && answer) {
        uint8_t pfx[CS_KEY_MAX];
        size_t plen = cs_conv_key(pfx, j.channel, j.user);
        cs_conv_t c;
        rc = plen ? cs_conv_get(self, t, pfx, plen, &c) : SY_ESTORE;
        if (rc == 0 && c.conv == j.conv)
            rc = cs_turn_put(self, t, pfx, plen, CHATSTORE_ASSISTANT, answer,
                             answer_len, syid_now_ms());
    }
    if (rc == 0 && drop)
        rc = cs_unask(self, t, &j);
    if (rc == 0 && out)
        rc = cs_outbox_put(self, t, out, seq);
    return cs_end(t, rc);
}

int chatstore_job_end(chatstore_t *self, const uint8_t id[16],
                      const char *answer, size_t answer_len,
                      const chatstore_out_t *out, uint64_t *seq)
{
    return cs_job_end(self, id, answer, answer_len, false, out, seq);
}

int chatstore_job_cancel(chatstore_t *self, const uint8_t id[16],
                         const chatstore_out_t *out, uint64_t *seq)
{
    return cs_job_end(self, id, NULL, 0, true, out, seq);
}

int chatstore_jobs(chatstore_t *self, const char *channel, const char *user,
                   chatstore_job_t **jobs, size_t *n)
{
    if (!jobs || !n)
        return SY_EINVAL;
    *jobs = NULL;
    *n = 0;
    if (!self || (!channel) != (!user))
        return SY_EINVAL;
    MDB_txn *t;
    MDB_cursor *c;
    int rc = cs_begin(self, false, &t);
    if (rc)
        return rc;
    rc = cs_rc(mdb_cursor_open(t, self->db_jobs, &c));
    if (rc) {
        mdb_txn_abort(t);
        return rc;
    }
    size_t cap = 0;
    MDB_val k, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    while (rc == 0 && mrc == 0) {
        chatstore_job_t j;
        if (k.mv_size != 16)
            rc = SY_ESTORE;
        else
            rc = cs_job_read(self, t, k.mv_data, &j);
        bool mine = rc == 0 && (!channel || (!strcmp(j.channel, channel)
                                             && !strcmp(j.user, user)));
        if (mine && *n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            chatstore_job_t *nv = realloc(*jobs, ncap * sizeof *nv);
            if (!nv)
                rc = SY_ENOMEM;
            else {
                *jobs = nv;
                cap = ncap;
            }
        }
        if (mine && rc == 0)
            (*jobs)[(*n)++] = j;
        mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    if (rc == 0 && mrc && mrc != MDB_NOTFOUND)
        rc = cs_rc(mrc);
    mdb_cursor_close(c);
    mdb_txn_abort(t);
    if (rc) {
        free(*jobs);
        *jobs = NULL;
        *n = 0;
    }
    return rc;
}

/* ------------------------------------------------------------ outbox */

static int cs_outseq_get(chatstore_t *s, MDB_txn *t, const uint8_t *ukey,
                         size_t ulen, uint64_t *seq)
{
    MDB_val k = { ulen, (void *) ukey }, v;
    *seq = 0;
    int rc = cs_rc(mdb_get(t, s->db_outseq, &k, &v));
    if (rc == SY_ENOTFOUND)
        return 0;
    if (rc == 0 && v.mv_size != 8)
        rc = SY_ESTORE;
    if (rc == 0)
        *seq = cs_get_be64(v.mv_data);
    return rc;
}

static int cs_outbox_put(chatstore_t *s, MDB_txn *t,
                         const chatstore_out_t *out, uint64_t *seq)
{
    uint8_t key[CS_KEY_MAX];
    size_t ulen = out ? cs_user_key(key, out->user) : 0;
    size_t tlen = out && out->type ? strlen(out->type) : 0;
    if (!ulen || tlen == 0 || tlen > CHATSTORE_TYPE_MAX
        || out->len > CHATSTORE_BODY_MAX || (!out->body && out->len))
        return SY_EINVAL;
    uint64_t last;
    int rc = cs_outseq_get(s, t, key, ulen, &last);
    if (rc)
        return rc;
    uint8_t *plain = malloc(1 + tlen + out->len);
    if (!plain)
        return SY_ENOMEM;
    plain[0] = (uint8_t) tlen;
    memcpy(plain + 1, out->type, tlen);
    if (out->len)
        memcpy(plain + 1 + tlen, out->body, out->len);
    uint8_t seqb[8];
    cs_be64(seqb, ++last);
    MDB_val sk = { ulen, key }, sv = { 8, seqb };
    rc = cs_rc(mdb_put(t, s->db_outseq, &sk, &sv, 0));
    memcpy(key + ulen, seqb, 8);
    MDB_val k = { ulen + 8, key };
    if (rc == 0)
        rc = cs_put_sealed(s, t, s->db_outbox, CS_TAG_OUTBOX, &k, plain,
                           1 + tlen + out->len);
    sodium_memzero(plain, 1 + tlen + out->len);
    free(plain);
    if (rc == 0 && last > s->outbox_max)
        rc = cs_trim(t, s->db_outbox, key, ulen, last - s->outbox_max + 1);
    if (rc == 0)
        *seq = last;
    return rc;
}

int chatstore_outbox_append(chatstore_t *self, const chatstore_out_t *out,
                            uint64_t *seq)
{
    if (!self || !out || !seq)
        return SY_EINVAL;
    MDB_txn *t;
    int rc = cs_begin(self, true, &t);
    if (rc)
        return rc;
    return cs_end(t, cs_outbox_put(self, t, out, seq));
}

/* Opens one outbox entry and hands it to fn. */
static int cs_outbox_one(chatstore_t *s, const MDB_val *k, const MDB_val *v,
                         size_t ulen, chatstore_out_fn *fn, void *arg)
{
    uint8_t *plain = NULL;
    size_t n = 0;
    int rc = cs_open_sealed(s, CS_TAG_OUTBOX, k, v, &plain, &n);
    if (rc)
        return rc;
    char type[CHATSTORE_TYPE_MAX + 1];
    size_t tlen = n ? plain[0] : 0;
    if (n == 0 || tlen == 0 || tlen > CHATSTORE_TYPE_MAX || n < 1 + tlen)
        rc = SY_ESTORE;
    else {
        memcpy(type, plain + 1, tlen);
        type[tlen] = 0;
        uint64_t seq = cs_get_be64((const uint8_t *) k->mv_data + ulen);
        rc = fn(seq, type, plain + 1 + tlen, n - 1 - tlen, arg);
    }
    sodium_memzero(plain, n);
    free(plain);
    return rc;
}

int chatstore_outbox_after(chatstore_t *self, const char *user,
                           uint64_t after, chatstore_out_fn *fn, void *arg)
{
    uint8_t key[CS_KEY_MAX];
    size_t ulen = cs_user_key(key, user);
    if (!self || !ulen || !fn)
        return SY_EINVAL;
    MDB_txn *t;
    MDB_cursor *c;
    int rc = cs_begin(self, false, &t);
    if (rc)
        return rc;
    rc = cs_rc(mdb_cursor_open(t, self->db_outbox, &c));
    if (rc) {
        mdb_txn_abort(t);
        return rc;
    }
    cs_be64(key + ulen, after == UINT64_MAX ? after : after + 1);
    MDB_val k = { ulen + 8, key }, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && mrc == 0 && cs_has_prefix(&k, key, ulen)
           && after != UINT64_MAX) {
        if (k.mv_size != ulen + 8)
            rc = SY_ESTORE;
        else
            rc = cs_outbox_one(self, &k, &v, ulen, fn, arg);
        mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    if (rc == 0 && mrc && mrc != MDB_NOTFOUND)
        rc = cs_rc(mrc);
    mdb_cursor_close(c);
    mdb_txn_abort(t);
    return rc;
}

int chatstore_outbox_last(chatstore_t *self, const char *user, uint64_t *seq)
{
    uint8_t key[CS_KEY_MAX];
    size_t ulen = cs_user_key(key, user);
    if (!self || !ulen || !seq)
        return SY_EINVAL;
    MDB_txn *t;
    int rc = cs_begin(self, false, &t);
    if (rc)
        return rc;
    rc = cs_outseq_get(self, t, key, ulen, seq);
    mdb_txn_abort(t);
    return rc;
}

/* ------------------------------------------------------------ open */

static const char *cs_open_why(int mrc)
{
    switch (mrc) {
    case MDB_INVALID:          return "data.mdb is not an LMDB file "
                                      "(corrupt or foreign)";
    case MDB_VERSION_MISMATCH: return "data.mdb was written by an "
                                      "incompatible LMDB version";
    case MDB_CORRUPTED:        return "data.mdb is corrupt";
    case MDB_PANIC:            return "LMDB panicked reading data.mdb";
    default:                   return mdb_strerror(mrc);
    }
}

static bool cs_file_has_data(const char *dir)
{
    char path[1200];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    return stat(path, &st) == 0 && st.st_size > 0;
}

static int cs_prepare_dir(const char *dir, char *err, size_t errlen)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return syerr_fmt(err, errlen, SY_ESTORE, "front door store %s: cannot "
                         "create the directory: %s", dir, strerror(errno));
    if (access(dir, R_OK | W_OK | X_OK) != 0)
        return syerr_fmt(err, errlen, SY_ESTORE, "front door store %s: cannot "
                         "read and write the directory: %s", dir,
                         strerror(errno));
    return 0;
}

static int cs_env_open(chatstore_t *s, uint64_t map, char *err, size_t errlen)
{
    map = (map ? map : CS_DEFAULT_MAP);
    map = (map + 4095) & ~(uint64_t) 4095;
    int mrc = mdb_env_create(&s->env);
    if (mrc == 0)
        mrc = mdb_env_set_mapsize(s->env, (size_t) map);
    if (mrc == 0)
        mrc = mdb_env_set_maxdbs(s->env, CS_MAXDBS);
    if (mrc == 0)
        mrc = mdb_env_open(s->env, s->dir, 0, 0600);
    if (mrc)
        return syerr_fmt(err, errlen, mrc == ENOMEM ? SY_ENOMEM : SY_ESTORE,
                         "front door store %s: cannot open: %s", s->dir,
                         cs_open_why(mrc));
    int dead = 0;
    mdb_reader_check(s->env, &dead);
    return 0;
}

/* Reads and checks the format record of an existing store. */
static int cs_check_format(chatstore_t *s, MDB_txn *t, char *err,
                           size_t errlen)
{
    MDB_val k = { 6, "format" }, v;
    int mrc = mdb_get(t, s->db_meta, &k, &v);
    if (mrc || v.mv_size != sizeof(uint32_t))
        return syerr_fmt(err, errlen, SY_ESTORE, "front door store %s: no "
                         "format record (%s): not a front door store, or "
                         "damaged; refusing to open it", s->dir,
                         mrc ? mdb_strerror(mrc) : "bad size");
    uint32_t ver;
    memcpy(&ver, v.mv_data, sizeof ver);
    if (ver == CHATSTORE_FORMAT_VERSION)
        return 0;
    return syerr_fmt(err, errlen, SY_ESTORE, "front door store %s: format "
                     "version %u, this program reads %u; refusing to open "
                     "it (move it away to start on an empty store)", s->dir,
                     ver, CHATSTORE_FORMAT_VERSION);
}

static int cs_open_dbs(chatstore_t *s, MDB_txn *t, bool create)
{
    struct { const char *name; MDB_dbi *dbi; } dbs[] = {
        { "convs", &s->db_convs },   { "turns", &s->db_turns },
        { "jobs", &s->db_jobs },     { "outbox", &s->db_outbox },
        { "outseq", &s->db_outseq },
    };
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++) {
        int mrc = mdb_dbi_open(t, dbs[i].name, create ? MDB_CREATE : 0,
                               dbs[i].dbi);
        if (mrc)
            return mrc;
    }
    return 0;
}

/* Opens the databases; on a new store creates them and the format
   record.  *has_data: any record besides meta. */
static int cs_open_layout(chatstore_t *s, bool fresh, bool *has_data,
                          char *err, size_t errlen)
{
    MDB_txn *t;
    int mrc = mdb_txn_begin(s->env, NULL, 0, &t);
    if (mrc)
        return syerr_fmt(err, errlen, SY_ESTORE, "front door store %s: "
                         "cannot begin: %s", s->dir, mdb_strerror(mrc));
    if (!fresh) {
        /* an LMDB file holding nothing (a first start that died before
           its first commit) is as good as none */
        MDB_dbi main_dbi;
        MDB_stat st;
        if (mdb_dbi_open(t, NULL, 0, &main_dbi) == 0
            && mdb_stat(t, main_dbi, &st) == 0 && st.ms_entries == 0)
            fresh = true;
    }
    mrc = mdb_dbi_open(t, "meta", fresh ? MDB_CREATE : 0, &s->db_meta);
    if (mrc == 0 && !fresh) {
        int rc = cs_check_format(s, t, err, errlen);
        if (rc) {
            mdb_txn_abort(t);
            return rc;
        }
    }
    if (mrc == 0)
        mrc = cs_open_dbs(s, t, fresh);
    if (mrc) {
        mdb_txn_abort(t);
        return syerr_fmt(err, errlen, SY_ESTORE, "front door store %s: not a "
                         "front door store, or damaged (%s); refusing to "
                         "open it", s->dir, mdb_strerror(mrc));
    }
    if (fresh) {
        uint32_t ver = CHATSTORE_FORMAT_VERSION;
        MDB_val k = { 6, "format" }, v = { sizeof ver, &ver };
        mrc = mdb_put(t, s->db_meta, &k, &v, 0);
    }
    *has_data = false;
    MDB_dbi data[] = { s->db_convs, s->db_turns, s->db_jobs, s->db_outbox,
                       s->db_outseq };
    for (size_t i = 0; mrc == 0 && i < sizeof data / sizeof data[0]; i++) {
        MDB_stat st;
        mrc = mdb_stat(t, data[i], &st);
        if (mrc == 0 && st.ms_entries)
            *has_data = true;
    }
    if (mrc) {
        mdb_txn_abort(t);
        return syerr_fmt(err, errlen, SY_ESTORE, "front door store %s: "
                         "cannot write: %s", s->dir, mdb_strerror(mrc));
    }
    mrc = mdb_txn_commit(t);
    if (mrc)
        return syerr_fmt(err, errlen, SY_ESTORE, "front door store %s: "
                         "cannot commit: %s", s->dir, mdb_strerror(mrc));
    return 0;
}

/* Opens the key file and checks it against the fingerprint the store
   remembers (or records it).  A key file is made only for a store that
   holds nothing. */
static int cs_open_seal(chatstore_t *s, bool has_data, char *err,
                        size_t errlen)
{
    char serr[400] = "";
    int rc = seal_open(s->dir, !has_data, &s->seal, serr, sizeof serr);
    if (rc == SY_ENOTFOUND)
        return syerr_fmt(err, errlen, SY_ECRYPTO, "front door store %s holds "
                         "conversations sealed with the key file %s/%s, which "
                         "is missing: they cannot be read without it. Restore "
                         "the key file; no new key is made over existing data",
                         s->dir, s->dir, SEAL_KEY_FILE);
    if (rc)
        return syerr_fmt(err, errlen, rc, "front door store %s: %s", s->dir,
                         serr[0] ? serr : syerr_text(rc));
    uint8_t mine[SEAL_FINGERPRINT_BYTES];
    seal_fingerprint(s->seal, mine);
    MDB_txn *t;
    rc = cs_begin(s, true, &t);
    if (rc)
        return syerr_fmt(err, errlen, rc, "front door store %s: cannot begin",
                         s->dir);
    MDB_val k = { sizeof CS_META_FP - 1, CS_META_FP }, v;
    int mrc = mdb_get(t, s->db_meta, &k, &v);
    if (mrc == 0 && has_data && (v.mv_size != sizeof mine
                                 || sodium_memcmp(v.mv_data, mine,
                                                  sizeof mine) != 0)) {
        mdb_txn_abort(t);
        return syerr_fmt(err, errlen, SY_ECRYPTO, "front door store %s: the "
                         "key file %s is not the key its conversations were "
                         "sealed with (fingerprint differs)", s->dir,
                         seal_path(s->seal));
    }
    v.mv_size = sizeof mine;
    v.mv_data = mine;
    rc = cs_end(t, cs_rc(mdb_put(t, s->db_meta, &k, &v, 0)));
    if (rc)
        return syerr_fmt(err, errlen, rc, "front door store %s: cannot record "
                         "the key's fingerprint: %s", s->dir, syerr_text(rc));
    return 0;
}

int chatstore_open(const chatstore_opts_t *opts, chatstore_t **out,
                   char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    if (!out)
        return SY_EINVAL;
    *out = NULL;
    if (!opts || !opts->dir || !opts->dir[0]
        || strlen(opts->dir) >= sizeof ((chatstore_t *) 0)->dir)
        return syerr_fmt(err, errlen, SY_EINVAL, "front door store: no (or "
                         "too long a) directory given");
    int rc = cs_prepare_dir(opts->dir, err, errlen);
    if (rc)
        return rc;
    chatstore_t *s = calloc(1, sizeof *s);
    if (!s)
        return SY_ENOMEM;
    snprintf(s->dir, sizeof s->dir, "%s", opts->dir);
    s->history_turns = opts->history_turns;
    s->outbox_max = opts->outbox_max ? opts->outbox_max : CS_DEFAULT_OUTBOX;
    bool fresh = !cs_file_has_data(s->dir), has_data = false;
    rc = cs_env_open(s, opts->map_size, err, errlen);
    if (rc == 0)
        rc = cs_open_layout(s, fresh, &has_data, err, errlen);
    if (rc == 0)
        rc = cs_open_seal(s, has_data, err, errlen);
    if (rc) {
        chatstore_destroy(&s);
        return rc;
    }
    *out = s;
    return 0;
}

void chatstore_destroy(chatstore_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    chatstore_t *s = *self_p;
    if (s->env)
        mdb_env_close(s->env);
    seal_destroy(&s->seal);
    if (s->buf) {
        sodium_memzero(s->buf, s->cap);
        free(s->buf);
    }
    free(s);
    *self_p = NULL;
}
