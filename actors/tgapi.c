/*  tgapi.c -- the Telegram Bot API's wire, without any I/O (see tgapi.h).
 *
 *  Reading: a response is JSON; it is converted to msgpack by the strict,
 *  depth-limited common/json.c and then walked with the bounded reader
 *  schemas/mpread.h, looking fields up by name (mpread_map_find), so a
 *  field's position, unknown fields and hostile nesting cost nothing.  A
 *  field of the wrong type is treated as absent.
 *
 *  Writing: bodies are small JSON objects built with a growing buffer;
 *  strings are escaped for JSON (quotes, backslashes, control characters)
 *  after the text has been escaped for HTML.
 *
 *  Counting: Telegram measures a message in UTF-16 code units: a code
 *  point above U+FFFF (most emoji) counts two, everything else one
 *  (Korean syllables included).  Splitting works on the raw text; the
 *  caller escapes each piece afterwards.
 */
#include "actors/tgapi.h"
#include "common/json.h"
#include "schemas/mpread.h"
#include "schemas/syerr.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ UTF-8 */

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if the bytes at p
   (n available) are not one. */
static size_t tg_u8_seq(const unsigned char *p, size_t n, uint32_t *cp)
{
    unsigned char c = p[0];
    size_t k;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        k = 2; v = c & 0x1f; min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        k = 3; v = c & 0x0f; min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        k = 4; v = c & 0x07; min = 0x10000;
    } else
        return 0;
    if (n < k)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (p[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return k;
}

/* Bytes and UTF-16 units of the code point (or bad byte) at text[i]. */
static size_t tg_step(const char *text, size_t len, size_t i, size_t *units)
{
    uint32_t cp = 0;
    size_t k = tg_u8_seq((const unsigned char *) text + i, len - i, &cp);
    if (k == 0) {
        *units = 1;
        return 1;
    }
    *units = cp > 0xffff ? 2 : 1;
    return k;
}

size_t tgapi_utf16_len(const char *text, size_t len)
{
    size_t units = 0, i = 0;
    while (text && i < len) {
        size_t u;
        i += tg_step(text, len, i, &u);
        units += u;
    }
    return units;
}

size_t tgapi_prefix_units(const char *text, size_t len, size_t limit)
{
    size_t units = 0, i = 0;
    while (text && i < len) {
        size_t u;
        size_t k = tg_step(text, len, i, &u);
        if (units + u > limit)
            break;
        units += u;
        i += k;
    }
    return i;
}

/* The longest prefix of s, at most n bytes, that does not end inside a
   UTF-8 sequence; s holds more than n bytes. */
static size_t tg_u8_cut(const char *s, size_t n)
{
    while (n > 0 && ((unsigned char) s[n] & 0xc0) == 0x80)
        n--;
    return n;
}

/* ------------------------------------------------------------ splitting */

/* The last position p in [from, to) where the bytes at p start with the
   needle (nlen bytes), the needle ending at or before `to`; or SIZE_MAX. */
static size_t tg_last(const char *t, size_t to, const char *needle,
                      size_t nlen)
{
    if (to < nlen)
        return SIZE_MAX;
    for (size_t p = to - nlen + 1; p-- > 0;)
        if (memcmp(t + p, needle, nlen) == 0)
            return p;
    return SIZE_MAX;
}

/* The end of the last sentence ending before hard: ". " "! " "? " (or
   with a newline / tab after), or a full-width 。！？ — the cut falls
   after the mark and its space.  0 if none. */
static size_t tg_sentence_cut(const char *t, size_t hard)
{
    static const char *const wide[] = { "\xe3\x80\x82", "\xef\xbc\x81",
                                        "\xef\xbc\x9f" };
    size_t best = 0;
    for (size_t p = hard; p-- > 1;) {
        char c = t[p - 1], s = t[p];
        if ((c == '.' || c == '!' || c == '?')
            && (s == ' ' || s == '\t')) {
            best = p + 1;
            break;
        }
    }
    for (size_t w = 0; w < 3; w++) {
        size_t p = tg_last(t, hard, wide[w], 3);
        if (p != SIZE_MAX && p + 3 > best)
            best = p + 3;
    }
    return best;
}

size_t tgapi_split_next(const char *text, size_t len, size_t limit)
{
    if (!text || len == 0)
        return 0;
    if (limit < 2)
        limit = 2;
    size_t hard = tgapi_prefix_units(text, len, limit);
    if (hard >= len)
        return len;
    if (hard == 0) {                /* cannot happen with limit >= 2 */
        size_t u;
        return tg_step(text, len, 0, &u);
    }
    size_t p = tg_last(text, hard, "\n\n", 2);
    if (p != SIZE_MAX)
        return p + 2;
    p = tg_last(text, hard, "\n", 1);
    if (p != SIZE_MAX)
        return p + 1;
    size_t s = tg_sentence_cut(text, hard);
    if (s > 0)
        return s;
    p = tg_last(text, hard, " ", 1);
    if (p != SIZE_MAX)
        return p + 1;
    return hard;
}

/* ------------------------------------------------------------ HTML */

long tgapi_html_escape(const char *text, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    if (!out || cap == 0)
        return SY_ENOSPACE;
    for (size_t i = 0; i < len;) {
        char buf[8];
        const char *rep = buf;
        size_t rlen;
        uint32_t cp;
        size_t k = tg_u8_seq((const unsigned char *) text + i, len - i, &cp);
        if (k == 0) {
            rep = "\xef\xbf\xbd";
            rlen = 3;
            k = 1;
        } else if (text[i] == '&') {
            rep = "&amp;";
            rlen = 5;
        } else if (text[i] == '<') {
            rep = "&lt;";
            rlen = 4;
        } else if (text[i] == '>') {
            rep = "&gt;";
            rlen = 4;
        } else {
            memcpy(buf, text + i, k);
            rlen = k;
        }
        if (cap - o <= rlen) {
            out[0] = 0;
            return SY_ENOSPACE;
        }
        memcpy(out + o, rep, rlen);
        o += rlen;
        i += k;
    }
    out[o] = 0;
    return (long) o;
}

/* ------------------------------------------------------------ JSON out */

typedef struct {
    char  *p;
    size_t n, cap;
    bool   bad;
} tg_buf_t;

static void tg_put(tg_buf_t *b, const char *s, size_t n)
{
    if (b->bad)
        return;
    if (b->cap - b->n <= n) {
        size_t cap = (b->cap ? b->cap : 256);
        while (cap - b->n <= n)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->bad = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void tg_puts(tg_buf_t *b, const char *s)
{
    tg_put(b, s, strlen(s));
}

/* A JSON string of s[0..n) (valid UTF-8 assumed; a bad byte becomes
   U+FFFD). */
static void tg_put_jstr(tg_buf_t *b, const char *s, size_t n)
{
    tg_put(b, "\"", 1);
    size_t run = 0;                 /* start of bytes copied as they are */
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char) s[i];
        uint32_t cp;
        size_t k = tg_u8_seq((const unsigned char *) s + i, n - i, &cp);
        const char *rep = NULL;
        char esc[8];
        if (k == 0) {
            rep = "\xef\xbf\xbd";
            k = 1;
        } else if (c == '"') {
            rep = "\\\"";
        } else if (c == '\\') {
            rep = "\\\\";
        } else if (c == '\n') {
            rep = "\\n";
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            rep = esc;
        }
        if (rep) {
            tg_put(b, s + run, i - run);
            tg_puts(b, rep);
            run = i + k;
        }
        i += k;
    }
    tg_put(b, s + run, n - run);
    tg_put(b, "\"", 1);
}

static bool tg_is_int(const char *s)
{
    size_t i = s[0] == '-' ? 1 : 0, n = strlen(s);
    if (n <= i || n - i > 18)
        return false;
    for (; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static void tg_put_chat(tg_buf_t *b, const char *chat)
{
    tg_puts(b, "{\"chat_id\":");
    if (tg_is_int(chat))
        tg_puts(b, chat);
    else
        tg_put_jstr(b, chat, strlen(chat));
}

static char *tg_done(tg_buf_t *b)
{
    if (b->bad) {
        free(b->p);
        return NULL;
    }
    return b->p;
}

char *tgapi_body_get_updates(uint64_t offset, uint32_t timeout_s)
{
    char s[160];
    snprintf(s, sizeof s, "{\"offset\":%" PRIu64 ",\"timeout\":%" PRIu32
             ",\"allowed_updates\":[\"message\"]}", offset, timeout_s);
    return strdup(s);
}

/* ,"text":"<escaped>","parse_mode":"HTML"} */
static void tg_put_text(tg_buf_t *b, const char *text, size_t len)
{
    size_t cap = len * 6 + 1;
    char *esc = malloc(cap);
    if (!esc) {
        b->bad = true;
        return;
    }
    long n = tgapi_html_escape(text, len, esc, cap);
    if (n < 0) {
        b->bad = true;
        free(esc);
        return;
    }
    tg_puts(b, ",\"text\":");
    tg_put_jstr(b, esc, (size_t) n);
    tg_puts(b, ",\"parse_mode\":\"HTML\"}");
    free(esc);
}

char *tgapi_body_send(const char *chat, const char *text, size_t len)
{
    if (!chat || (!text && len))
        return NULL;
    tg_buf_t b = { 0 };
    tg_put_chat(&b, chat);
    tg_put_text(&b, text ? text : "", len);
    return tg_done(&b);
}

char *tgapi_body_edit(const char *chat, int64_t message_id, const char *text,
                      size_t len)
{
    if (!chat || (!text && len))
        return NULL;
    tg_buf_t b = { 0 };
    char id[40];
    tg_put_chat(&b, chat);
    snprintf(id, sizeof id, ",\"message_id\":%" PRId64, message_id);
    tg_puts(&b, id);
    tg_put_text(&b, text ? text : "", len);
    return tg_done(&b);
}

/* ------------------------------------------------------------ JSON in */

/* A map's header and the reader at its pairs. */
typedef struct {
    mpread_t r;
    mpval_t  m;
} tg_map_t;

/* The converted response and its top-level map. */
static int tg_load(const char *body, size_t len, uint8_t **mp,
                   tg_map_t *top, char *err, size_t errlen)
{
    size_t mlen = 0;
    json_err_t jerr;
    *mp = NULL;
    if (!body)
        return syerr_fmt(err, errlen, SY_EINVAL, "no body");
    int rc = json_to_msgpack(body, len, NULL, mp, &mlen, &jerr);
    if (rc == SY_ENOMEM)
        return rc;
    if (rc)
        return syerr_fmt(err, errlen, SY_EINVAL, "not JSON: %s", jerr.msg);
    mpread_init(&top->r, *mp, mlen);
    if (mpread_next(&top->r, &top->m) || top->m.kind != MP_MAP) {
        free(*mp);
        *mp = NULL;
        return syerr_fmt(err, errlen, SY_EINVAL, "not a JSON object");
    }
    return 0;
}

/* The value at key of map; false if absent or undecodable.  For a
   container, sub (may be NULL) gets the reader at its items. */
static bool tg_get(const tg_map_t *map, const char *key, mpval_t *v,
                   mpread_t *sub)
{
    mpread_t at;
    if (mpread_map_find(&map->r, &map->m, key, v, &at) != 0)
        return false;
    if (sub)
        *sub = at;
    return true;
}

static bool tg_get_map(const tg_map_t *map, const char *key, tg_map_t *out)
{
    return tg_get(map, key, &out->m, &out->r) && out->m.kind == MP_MAP;
}

static bool tg_get_i64(const tg_map_t *map, const char *key, int64_t *out)
{
    mpval_t v;
    if (!tg_get(map, key, &v, NULL))
        return false;
    if (v.kind == MP_UINT && v.u <= (uint64_t) INT64_MAX) {
        *out = (int64_t) v.u;
        return true;
    }
    if (v.kind == MP_INT) {
        *out = v.i;
        return true;
    }
    return false;
}

static bool tg_get_u64(const tg_map_t *map, const char *key, uint64_t *out)
{
    mpval_t v;
    return tg_get(map, key, &v, NULL) && mpval_as_uint(&v, out);
}

static bool tg_get_bool(const tg_map_t *map, const char *key, bool *out)
{
    mpval_t v;
    if (!tg_get(map, key, &v, NULL) || v.kind != MP_BOOL)
        return false;
    *out = v.b;
    return true;
}

/* The string at key, or NULL (len set). */
static const char *tg_get_str(const tg_map_t *map, const char *key,
                              size_t *len)
{
    mpval_t v;
    if (!tg_get(map, key, &v, NULL) || v.kind != MP_STR)
        return NULL;
    *len = v.len;
    return (const char *) v.ptr;
}

/* Copies a string field into out (cap bytes), cut at a UTF-8 boundary;
   control characters become '_'.  "" when absent. */
static void tg_copy_text(const tg_map_t *map, const char *key, char *out,
                         size_t cap)
{
    size_t n = 0;
    const char *s = tg_get_str(map, key, &n);
    out[0] = 0;
    if (!s)
        return;
    if (n > cap - 1)
        n = tg_u8_cut(s, cap - 1);
    memcpy(out, s, n);
    out[n] = 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char) out[i] < 0x20 || out[i] == 0x7f)
            out[i] = '_';
}

/* Copies a token-like string (file ids, MIME types): only printable
   ASCII without spaces, quotes or backslashes; false (out "") when the
   field is absent, empty, too long or holds anything else. */
static bool tg_copy_token(const tg_map_t *map, const char *key, char *out,
                          size_t cap)
{
    size_t n = 0;
    const char *s = tg_get_str(map, key, &n);
    out[0] = 0;
    if (!s || n == 0 || n > cap - 1)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\')
            return false;
    }
    memcpy(out, s, n);
    out[n] = 0;
    return true;
}

int tgapi_resp_parse(const char *body, size_t len, tgapi_resp_t *out,
                     char *err, size_t errlen)
{
    uint8_t *mp = NULL;
    tg_map_t top;
    if (err && errlen)
        err[0] = 0;
    if (!out)
        return SY_EINVAL;
    memset(out, 0, sizeof *out);
    int rc = tg_load(body, len, &mp, &top, err, errlen);
    if (rc)
        return rc;
    if (!tg_get_bool(&top, "ok", &out->ok)) {
        free(mp);
        return syerr_fmt(err, errlen, SY_EINVAL, "no boolean \"ok\"");
    }
    int64_t code = 0;
    if (tg_get_i64(&top, "error_code", &code) && code > 0 && code < 1000)
        out->error_code = (long) code;
    tg_copy_text(&top, "description", out->description,
                 sizeof out->description);
    tg_map_t params, result;
    uint64_t after = 0;
    if (tg_get_map(&top, "parameters", &params)
        && tg_get_u64(&params, "retry_after", &after))
        out->retry_after = after > 86400 ? 86400 : (uint32_t) after;
    if (tg_get_map(&top, "result", &result)
        && tg_get_i64(&result, "message_id", &out->message_id))
        out->has_message_id = true;
    free(mp);
    return 0;
}

bool tgapi_not_modified(const tgapi_resp_t *r)
{
    return r && strstr(r->description, "message is not modified") != NULL;
}

/* ------------------------------------------------------------ updates */

/* The largest size of a photo array (by pixels, then bytes). */
static void tg_read_photo(mpread_t *r, const mpval_t *arr, tgapi_update_t *u)
{
    tgapi_attach_t best = { 0 };
    uint64_t best_px = 0;
    bool found = false;
    for (uint32_t i = 0; i < arr->len; i++) {
        tg_map_t ps;
        if (mpread_next(r, &ps.m))
            return;
        ps.r = *r;
        if (ps.m.kind == MP_MAP) {
            tgapi_attach_t a = { .kind = "photo" };
            uint64_t w = 0, h = 0;
            tg_get_u64(&ps, "width", &w);
            tg_get_u64(&ps, "height", &h);
            uint64_t px = (w > UINT32_MAX ? UINT32_MAX : w)
                        * (h > UINT32_MAX ? UINT32_MAX : h);
            a.has_size = tg_get_u64(&ps, "file_size", &a.size);
            if (tg_copy_token(&ps, "file_id", a.file_id, sizeof a.file_id)
                && (!found || px > best_px
                    || (px == best_px && a.size > best.size))) {
                best = a;
                best_px = px;
                found = true;
            }
        }
        if (mpread_skip(r, &ps.m, 1))
            return;
    }
    if (found && u->nattach < TGAPI_MAX_ATTACH) {
        snprintf(best.mime, sizeof best.mime, "image/jpeg");
        u->attach[u->nattach++] = best;
    }
}

static void tg_read_document(const tg_map_t *doc, tgapi_update_t *u)
{
    tgapi_attach_t a = { .kind = "document" };
    if (!tg_copy_token(doc, "file_id", a.file_id, sizeof a.file_id)
        || u->nattach >= TGAPI_MAX_ATTACH)
        return;
    tg_copy_token(doc, "mime_type", a.mime, sizeof a.mime);
    tg_copy_text(doc, "file_name", a.name, sizeof a.name);
    a.has_size = tg_get_u64(doc, "file_size", &a.size);
    u->attach[u->nattach++] = a;
}

/* The text (or caption) of a message into u->text. */
static int tg_read_text(const tg_map_t *msg, tgapi_update_t *u)
{
    size_t n = 0;
    const char *s = tg_get_str(msg, "text", &n);
    if (!s)
        s = tg_get_str(msg, "caption", &n);
    if (!s)
        return 0;
    if (n > TGAPI_TEXT_MAX) {
        n = tg_u8_cut(s, TGAPI_TEXT_MAX);
        u->text_cut = true;
    }
    u->text = malloc(n + 1);
    if (!u->text)
        return SY_ENOMEM;
    memcpy(u->text, s, n);
    u->text[n] = 0;
    for (size_t i = 0; i < n; i++)      /* a \u0000 would end C strings */
        if (u->text[i] == 0)
            u->text[i] = ' ';
    u->text_len = n;
    return 0;
}

static int tg_read_message(const tg_map_t *msg, tgapi_update_t *u)
{
    tg_map_t chat, from, doc;
    mpval_t photo;
    mpread_t at;
    if (!tg_get_map(msg, "chat", &chat) || !tg_get_i64(&chat, "id", &u->chat_id))
        return 0;
    u->is_message = true;
    tg_copy_text(&chat, "type", u->chat_type, sizeof u->chat_type);
    if (tg_get_map(msg, "from", &from) && tg_get_i64(&from, "id", &u->from_id)) {
        u->has_from = true;
        tg_get_bool(&from, "is_bot", &u->from_is_bot);
        tg_copy_text(&from, "username", u->username, sizeof u->username);
    }
    tg_get_i64(msg, "message_id", &u->message_id);
    if (tg_get(msg, "photo", &photo, &at) && photo.kind == MP_ARRAY)
        tg_read_photo(&at, &photo, u);
    if (tg_get_map(msg, "document", &doc))
        tg_read_document(&doc, u);
    return tg_read_text(msg, u);
}

/* One element of the result array; *keep false when it has no update_id. */
static int tg_read_update(const tg_map_t *el, tgapi_update_t *u, bool *keep)
{
    memset(u, 0, sizeof *u);
    *keep = tg_get_u64(el, "update_id", &u->update_id)
         && u->update_id <= (uint64_t) INT64_MAX;
    if (!*keep)
        return 0;
    tg_map_t msg;
    if (tg_get_map(el, "message", &msg))
        return tg_read_message(&msg, u);
    return 0;
}

void tgapi_updates_free(tgapi_updates_t *u)
{
    if (!u)
        return;
    for (size_t i = 0; i < u->n; i++)
        free(u->v[i].text);
    free(u->v);
    u->v = NULL;
    u->n = 0;
}

int tgapi_updates_parse(const char *body, size_t len, tgapi_updates_t *out,
                        char *err, size_t errlen)
{
    uint8_t *mp = NULL;
    tg_map_t top;
    bool ok = false;
    mpval_t res;
    mpread_t r;
    if (err && errlen)
        err[0] = 0;
    if (!out)
        return SY_EINVAL;
    out->v = NULL;
    out->n = 0;
    int rc = tg_load(body, len, &mp, &top, err, errlen);
    if (rc)
        return rc;
    if (!tg_get_bool(&top, "ok", &ok) || !ok)
        rc = syerr_fmt(err, errlen, SY_EINVAL, "not an ok response");
    else if (!tg_get(&top, "result", &res, &r) || res.kind != MP_ARRAY)
        rc = syerr_fmt(err, errlen, SY_EINVAL, "no result array");
    else if (res.len > TGAPI_MAX_UPDATES)
        rc = syerr_fmt(err, errlen, SY_EINVAL, "%u updates in one response",
                       res.len);
    if (rc == 0 && res.len) {
        out->v = calloc(res.len, sizeof *out->v);
        if (!out->v)
            rc = SY_ENOMEM;
    }
    for (uint32_t i = 0; rc == 0 && i < res.len; i++) {
        tg_map_t el;
        if (mpread_next(&r, &el.m)) {
            rc = syerr_fmt(err, errlen, SY_EINVAL, "result %u unreadable", i);
            break;
        }
        el.r = r;
        bool keep = false;
        if (el.m.kind == MP_MAP) {
            rc = tg_read_update(&el, &out->v[out->n], &keep);
            if (keep)
                out->n++;
            else
                free(out->v[out->n].text);
        }
        if (rc == 0 && mpread_skip(&r, &el.m, 1))
            rc = syerr_fmt(err, errlen, SY_EINVAL, "result %u unreadable", i);
    }
    free(mp);
    if (rc)
        tgapi_updates_free(out);
    return rc;
}
