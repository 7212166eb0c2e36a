/*  tgstore.c -- sy-telegram's LMDB store (see tgstore.h).
 *
 *  Layout (format 1), one LMDB environment with named databases:
 *
 *    meta   "format" -> u32 version;  "offset" -> u64 big-endian
 *    chats  chat id as text -> record {ver u8, state u8, user, code,
 *                              since u64, expires u64, reminded u64}
 *                              (strings: one byte of length, then bytes)
 *    codes  code -> chat id as text
 *
 *  Chats are few (the operator's own and a handful of others), so
 *  listing walks them all.  A code is deleted from `codes` in the same
 *  transaction that decides its chat or gives it a new code, so the two
 *  databases never disagree.
 */
#include "actors/tgstore.h"
#include "schemas/syerr.h"

#include <ctype.h>
#include <errno.h>
#include <lmdb.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TS_DEFAULT_MAP (16ULL * 1024 * 1024)
#define TS_REC_VER     1
#define TS_REC_MAX     (1 + 1 + 1 + TGSTORE_USER_MAX + 1 + TGSTORE_CODE_LEN + 24)

/* No 0/O, 1/I/L, 2/Z, 5/S, 8/B: a code read aloud or off a phone is
   typed right. */
static const char ts_alphabet[] = "ACDEFGHJKMNPQRTUVWXY34679";

struct _tgstore_t {
    MDB_env *env;
    MDB_dbi  db_meta, db_chats, db_codes;
    char     dir[1024];
};

/* ------------------------------------------------------------ helpers */

static int ts_rc(int mrc)
{
    switch (mrc) {
    case 0:            return 0;
    case MDB_NOTFOUND: return SY_ENOTFOUND;
    case MDB_MAP_FULL: return SY_EQUEUE_FULL;
    case ENOMEM:       return SY_ENOMEM;
    default:           return SY_ESTORE;
    }
}

static int ts_begin(tgstore_t *s, bool write, MDB_txn **t)
{
    return ts_rc(mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, t));
}

static int ts_end(MDB_txn *t, int rc)
{
    if (rc) {
        mdb_txn_abort(t);
        return rc;
    }
    return ts_rc(mdb_txn_commit(t));
}

static void ts_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t) v;
        v >>= 8;
    }
}

static uint64_t ts_get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static bool ts_chat_ok(const char *chat)
{
    return chat && chat[0] && strlen(chat) <= TGSTORE_CHAT_MAX;
}

static size_t ts_put_str(uint8_t *p, size_t at, const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    p[at] = (uint8_t) n;
    memcpy(p + at + 1, s, n);
    return at + 1 + n;
}

static size_t ts_encode(const tgstore_chat_t *c, uint8_t *p)
{
    size_t at = 0;
    p[at++] = TS_REC_VER;
    p[at++] = (uint8_t) c->state;
    at = ts_put_str(p, at, c->user, TGSTORE_USER_MAX);
    at = ts_put_str(p, at, c->code, TGSTORE_CODE_LEN);
    ts_be64(p + at, c->since_ms);
    ts_be64(p + at + 8, c->expires_ms);
    ts_be64(p + at + 16, c->reminded_ms);
    return at + 24;
}

/* Reads a string of at most cap - 1 bytes; false if it does not fit. */
static bool ts_get_str(const uint8_t *p, size_t n, size_t *at, char *out,
                       size_t cap)
{
    if (*at >= n)
        return false;
    size_t len = p[*at];
    if (len >= cap || n - *at - 1 < len)
        return false;
    memcpy(out, p + *at + 1, len);
    out[len] = 0;
    *at += 1 + len;
    return true;
}

static int ts_decode(const MDB_val *k, const MDB_val *v, tgstore_chat_t *c)
{
    const uint8_t *p = v->mv_data;
    size_t n = v->mv_size, at = 2;
    memset(c, 0, sizeof *c);
    if (k->mv_size == 0 || k->mv_size > TGSTORE_CHAT_MAX || n < 2
        || p[0] != TS_REC_VER || p[1] > TGSTORE_DENIED)
        return SY_ESTORE;
    memcpy(c->chat, k->mv_data, k->mv_size);
    c->state = (tgstore_state_t) p[1];
    if (!ts_get_str(p, n, &at, c->user, sizeof c->user)
        || !ts_get_str(p, n, &at, c->code, sizeof c->code) || n - at != 24)
        return SY_ESTORE;
    c->since_ms = ts_get_be64(p + at);
    c->expires_ms = ts_get_be64(p + at + 8);
    c->reminded_ms = ts_get_be64(p + at + 16);
    return 0;
}

static int ts_get(tgstore_t *s, MDB_txn *t, const char *chat,
                  tgstore_chat_t *out)
{
    MDB_val k = { strlen(chat), (void *) chat }, v;
    int rc = ts_rc(mdb_get(t, s->db_chats, &k, &v));
    return rc ? rc : ts_decode(&k, &v, out);
}

static int ts_put(tgstore_t *s, MDB_txn *t, const tgstore_chat_t *c)
{
    uint8_t buf[TS_REC_MAX];
    MDB_val k = { strlen(c->chat), (void *) c->chat };
    MDB_val v = { ts_encode(c, buf), buf };
    return ts_rc(mdb_put(t, s->db_chats, &k, &v, 0));
}

static int ts_code_del(tgstore_t *s, MDB_txn *t, const char *code)
{
    if (!code[0])
        return 0;
    MDB_val k = { strlen(code), (void *) code };
    int rc = ts_rc(mdb_del(t, s->db_codes, &k, NULL));
    return rc == SY_ENOTFOUND ? 0 : rc;
}

/* A fresh code not in use, into code (TGSTORE_CODE_LEN + 1 bytes). */
static int ts_new_code(tgstore_t *s, MDB_txn *t, char *code)
{
    for (int tries = 0; tries < 100; tries++) {
        for (int i = 0; i < TGSTORE_CODE_LEN; i++)
            code[i] = ts_alphabet[randombytes_uniform(sizeof ts_alphabet - 1)];
        code[TGSTORE_CODE_LEN] = 0;
        MDB_val k = { TGSTORE_CODE_LEN, code }, v;
        int mrc = mdb_get(t, s->db_codes, &k, &v);
        if (mrc == MDB_NOTFOUND)
            return 0;
        if (mrc)
            return ts_rc(mrc);
    }
    return SY_EQUEUE_FULL;          /* 244 million codes: not reached */
}

/* ------------------------------------------------------------ records */

int tgstore_offset(tgstore_t *self, uint64_t *offset)
{
    if (!self || !offset)
        return SY_EINVAL;
    MDB_txn *t;
    int rc = ts_begin(self, false, &t);
    if (rc)
        return rc;
    MDB_val k = { 6, "offset" }, v;
    int mrc = mdb_get(t, self->db_meta, &k, &v);
    *offset = 0;
    if (mrc == 0 && v.mv_size == 8)
        *offset = ts_get_be64(v.mv_data);
    else if (mrc != MDB_NOTFOUND)
        rc = SY_ESTORE;
    mdb_txn_abort(t);
    return rc;
}

int tgstore_offset_set(tgstore_t *self, uint64_t offset)
{
    uint64_t now = 0;
    int rc = tgstore_offset(self, &now);
    if (rc || offset <= now)
        return rc;
    MDB_txn *t;
    rc = ts_begin(self, true, &t);
    if (rc)
        return rc;
    uint8_t b[8];
    ts_be64(b, offset);
    MDB_val k = { 6, "offset" }, v = { 8, b };
    return ts_end(t, ts_rc(mdb_put(t, self->db_meta, &k, &v, 0)));
}

int tgstore_chat_get(tgstore_t *self, const char *chat, tgstore_chat_t *out)
{
    if (!self || !ts_chat_ok(chat) || !out)
        return SY_EINVAL;
    MDB_txn *t;
    int rc = ts_begin(self, false, &t);
    if (rc)
        return rc;
    rc = ts_get(self, t, chat, out);
    mdb_txn_abort(t);
    return rc;
}

int tgstore_pair(tgstore_t *self, const char *chat, const char *user,
                 uint64_t now_ms, uint64_t ttl_ms, tgstore_chat_t *out,
                 bool *fresh)
{
    if (!self || !ts_chat_ok(chat) || !user || !out || !fresh)
        return SY_EINVAL;
    *fresh = false;
    MDB_txn *t;
    int rc = ts_begin(self, true, &t);
    if (rc)
        return rc;
    rc = ts_get(self, t, chat, out);
    if (rc == 0 && (out->state != TGSTORE_PENDING || out->expires_ms > now_ms)) {
        mdb_txn_abort(t);           /* decided, or a code still valid */
        return 0;
    }
    if (rc == 0)
        rc = ts_code_del(self, t, out->code);
    else if (rc == SY_ENOTFOUND) {
        rc = 0;
        memset(out, 0, sizeof *out);
        snprintf(out->chat, sizeof out->chat, "%s", chat);
        snprintf(out->user, sizeof out->user, "%s", user);
        out->since_ms = now_ms;
    }
    if (rc == 0)
        rc = ts_new_code(self, t, out->code);
    if (rc == 0) {
        out->state = TGSTORE_PENDING;
        out->expires_ms = now_ms + ttl_ms;
        out->reminded_ms = now_ms;
        MDB_val k = { TGSTORE_CODE_LEN, out->code };
        MDB_val v = { strlen(chat), (void *) chat };
        rc = ts_rc(mdb_put(t, self->db_codes, &k, &v, 0));
    }
    if (rc == 0)
        rc = ts_put(self, t, out);
    rc = ts_end(t, rc);
    *fresh = rc == 0;
    return rc;
}

int tgstore_reminded(tgstore_t *self, const char *chat, uint64_t now_ms)
{
    if (!self || !ts_chat_ok(chat))
        return SY_EINVAL;
    MDB_txn *t;
    tgstore_chat_t c;
    int rc = ts_begin(self, true, &t);
    if (rc)
        return rc;
    rc = ts_get(self, t, chat, &c);
    if (rc == 0) {
        c.reminded_ms = now_ms;
        rc = ts_put(self, t, &c);
    }
    return ts_end(t, rc);
}

/* The chat named by what: a pending code (any case) or a chat id. */
static int ts_find(tgstore_t *s, MDB_txn *t, const char *what,
                   tgstore_chat_t *c, bool *by_code)
{
    char code[TGSTORE_CODE_LEN + 1];
    size_t n = strlen(what);
    *by_code = false;
    if (n == TGSTORE_CODE_LEN) {
        for (size_t i = 0; i < n; i++)
            code[i] = (char) toupper((unsigned char) what[i]);
        code[n] = 0;
        MDB_val k = { n, code }, v;
        int mrc = mdb_get(t, s->db_codes, &k, &v);
        if (mrc == 0 && v.mv_size > 0 && v.mv_size <= TGSTORE_CHAT_MAX) {
            char chat[TGSTORE_CHAT_MAX + 1];
            memcpy(chat, v.mv_data, v.mv_size);
            chat[v.mv_size] = 0;
            *by_code = true;
            return ts_get(s, t, chat, c);
        }
        if (mrc && mrc != MDB_NOTFOUND)
            return ts_rc(mrc);
    }
    if (!ts_chat_ok(what))
        return SY_ENOTFOUND;
    return ts_get(s, t, what, c);
}

int tgstore_decide(tgstore_t *self, const char *what, bool allow,
                   uint64_t now_ms, tgstore_chat_t *out)
{
    if (!self || !what || !out)
        return SY_EINVAL;
    MDB_txn *t;
    bool by_code = false;
    int rc = ts_begin(self, true, &t);
    if (rc)
        return rc;
    rc = ts_find(self, t, what, out, &by_code);
    if (rc == 0 && by_code && out->state == TGSTORE_PENDING
        && out->expires_ms <= now_ms)
        rc = SY_EEXPIRED;
    if (rc == 0 && !by_code && out->state == TGSTORE_PENDING)
        rc = SY_ENOTFOUND;          /* a pending chat is decided by its code */
    if (rc == 0)
        rc = ts_code_del(self, t, out->code);
    if (rc == 0) {
        out->state = allow ? TGSTORE_ALLOWED : TGSTORE_DENIED;
        out->code[0] = 0;
        out->since_ms = now_ms;
        out->expires_ms = 0;
        rc = ts_put(self, t, out);
    }
    return ts_end(t, rc);
}

int tgstore_list(tgstore_t *self, tgstore_chat_t **out, size_t *n)
{
    if (!self || !out || !n)
        return SY_EINVAL;
    *out = NULL;
    *n = 0;
    MDB_txn *t;
    MDB_cursor *cur = NULL;
    MDB_stat st;
    int rc = ts_begin(self, false, &t);
    if (rc)
        return rc;
    rc = ts_rc(mdb_stat(t, self->db_chats, &st));
    if (rc == 0 && st.ms_entries) {
        *out = calloc(st.ms_entries, sizeof **out);
        if (!*out)
            rc = SY_ENOMEM;
    }
    if (rc == 0 && st.ms_entries)
        rc = ts_rc(mdb_cursor_open(t, self->db_chats, &cur));
    MDB_val k, v;
    int mrc = rc == 0 && cur ? mdb_cursor_get(cur, &k, &v, MDB_FIRST)
                             : MDB_NOTFOUND;
    while (rc == 0 && mrc == 0 && *n < st.ms_entries) {
        rc = ts_decode(&k, &v, &(*out)[*n]);
        if (rc == 0)
            (*n)++;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc == 0 && mrc && mrc != MDB_NOTFOUND)
        rc = ts_rc(mrc);
    if (cur)
        mdb_cursor_close(cur);
    mdb_txn_abort(t);
    if (rc) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

const char *tgstore_state_name(tgstore_state_t state)
{
    switch (state) {
    case TGSTORE_PENDING: return "pending";
    case TGSTORE_ALLOWED: return "allowed";
    case TGSTORE_DENIED:  return "denied";
    }
    return "?";
}

/* ------------------------------------------------------------ open */

static const char *ts_open_why(int mrc)
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

static bool ts_file_has_data(const char *dir)
{
    char path[1200];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    return stat(path, &st) == 0 && st.st_size > 0;
}

static int ts_env_open(tgstore_t *s, uint64_t map, char *err, size_t errlen)
{
    if (mkdir(s->dir, 0700) != 0 && errno != EEXIST)
        return syerr_fmt(err, errlen, SY_ESTORE, "telegram store %s: cannot "
                         "create the directory: %s", s->dir, strerror(errno));
    map = ((map ? map : TS_DEFAULT_MAP) + 4095) & ~(uint64_t) 4095;
    int mrc = mdb_env_create(&s->env);
    if (mrc == 0)
        mrc = mdb_env_set_mapsize(s->env, (size_t) map);
    if (mrc == 0)
        mrc = mdb_env_set_maxdbs(s->env, 4);
    if (mrc == 0)
        mrc = mdb_env_open(s->env, s->dir, 0, 0600);
    if (mrc)
        return syerr_fmt(err, errlen, mrc == ENOMEM ? SY_ENOMEM : SY_ESTORE,
                         "telegram store %s: cannot open: %s", s->dir,
                         ts_open_why(mrc));
    int dead = 0;
    mdb_reader_check(s->env, &dead);
    return 0;
}

static int ts_check_format(tgstore_t *s, MDB_txn *t, char *err, size_t errlen)
{
    MDB_val k = { 6, "format" }, v;
    int mrc = mdb_get(t, s->db_meta, &k, &v);
    if (mrc || v.mv_size != sizeof(uint32_t))
        return syerr_fmt(err, errlen, SY_ESTORE, "telegram store %s: no format "
                         "record (%s): not a telegram store, or damaged; "
                         "refusing to open it", s->dir,
                         mrc ? mdb_strerror(mrc) : "bad size");
    uint32_t ver;
    memcpy(&ver, v.mv_data, sizeof ver);
    if (ver == TGSTORE_FORMAT_VERSION)
        return 0;
    return syerr_fmt(err, errlen, SY_ESTORE, "telegram store %s: format "
                     "version %u, this program reads %u; refusing to open it "
                     "(move it away to start on an empty store)", s->dir, ver,
                     TGSTORE_FORMAT_VERSION);
}

static int ts_layout(tgstore_t *s, bool fresh, char *err, size_t errlen)
{
    MDB_txn *t;
    int mrc = mdb_txn_begin(s->env, NULL, 0, &t);
    if (mrc)
        return syerr_fmt(err, errlen, SY_ESTORE, "telegram store %s: cannot "
                         "begin: %s", s->dir, mdb_strerror(mrc));
    if (!fresh) {
        /* an LMDB file holding nothing (a first start that died before
           its first commit) is as good as none */
        MDB_dbi main_dbi;
        MDB_stat st;
        if (mdb_dbi_open(t, NULL, 0, &main_dbi) == 0
            && mdb_stat(t, main_dbi, &st) == 0 && st.ms_entries == 0)
            fresh = true;
    }
    unsigned flags = fresh ? MDB_CREATE : 0;
    mrc = mdb_dbi_open(t, "meta", flags, &s->db_meta);
    if (mrc == 0 && !fresh) {
        int rc = ts_check_format(s, t, err, errlen);
        if (rc) {
            mdb_txn_abort(t);
            return rc;
        }
    }
    if (mrc == 0)
        mrc = mdb_dbi_open(t, "chats", flags, &s->db_chats);
    if (mrc == 0)
        mrc = mdb_dbi_open(t, "codes", flags, &s->db_codes);
    if (mrc) {
        mdb_txn_abort(t);
        return syerr_fmt(err, errlen, SY_ESTORE, "telegram store %s: not a "
                         "telegram store, or damaged (%s); refusing to open "
                         "it", s->dir, mdb_strerror(mrc));
    }
    if (fresh) {
        uint32_t ver = TGSTORE_FORMAT_VERSION;
        MDB_val k = { 6, "format" }, v = { sizeof ver, &ver };
        mrc = mdb_put(t, s->db_meta, &k, &v, 0);
    }
    if (mrc == 0)
        mrc = mdb_txn_commit(t);
    else
        mdb_txn_abort(t);
    if (mrc)
        return syerr_fmt(err, errlen, SY_ESTORE, "telegram store %s: cannot "
                         "write: %s", s->dir, mdb_strerror(mrc));
    return 0;
}

int tgstore_open(const tgstore_opts_t *opts, tgstore_t **out, char *err,
                 size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    if (!out)
        return SY_EINVAL;
    *out = NULL;
    if (!opts || !opts->dir || !opts->dir[0]
        || strlen(opts->dir) >= sizeof ((tgstore_t *) 0)->dir)
        return syerr_fmt(err, errlen, SY_EINVAL, "telegram store: no (or too "
                         "long a) directory given");
    if (sodium_init() < 0)
        return syerr_fmt(err, errlen, SY_EINTERNAL, "libsodium did not start");
    tgstore_t *s = calloc(1, sizeof *s);
    if (!s)
        return SY_ENOMEM;
    snprintf(s->dir, sizeof s->dir, "%s", opts->dir);
    bool fresh = !ts_file_has_data(s->dir);
    int rc = ts_env_open(s, opts->map_size, err, errlen);
    if (rc == 0)
        rc = ts_layout(s, fresh, err, errlen);
    if (rc) {
        tgstore_destroy(&s);
        return rc;
    }
    *out = s;
    return 0;
}

void tgstore_destroy(tgstore_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    tgstore_t *s = *self_p;
    if (s->env)
        mdb_env_close(s->env);
    free(s);
    *self_p = NULL;
}
