/*  hmp.c -- msgpack helpers for the integration tests.
 *
 *  Look-ups walk the buffer with the bounded reader (schemas/mpread.h):
 *  for each path segment, a map is scanned pair by pair and an array
 *  item by item, skipping what does not match.  Nothing is allocated.
 *  See hmp.h.
 */
#include "hmp.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schemas/syerr.h"
#include "common/json.h"

void hmp_buf_init(hmp_buf_t *b)
{
    msgpack_sbuffer_init(&b->sb);
    msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
}

void hmp_buf_clear(hmp_buf_t *b)
{
    msgpack_sbuffer_destroy(&b->sb);
    memset(b, 0, sizeof *b);
}

void hmp_str(hmp_buf_t *b, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(&b->pk, n);
    msgpack_pack_str_body(&b->pk, s, n);
}

void hmp_echo_request(hmp_buf_t *b, uint64_t seq, const char *data,
                      int64_t delay_ms)
{
    msgpack_pack_map(&b->pk, delay_ms >= 0 ? 3 : 2);
    hmp_str(b, "seq");
    msgpack_pack_uint64(&b->pk, seq);
    hmp_str(b, "data");
    hmp_str(b, data);
    if (delay_ms >= 0) {
        hmp_str(b, "delay_ms");
        msgpack_pack_uint64(&b->pk, (uint64_t)delay_ms);
    }
}

/* Reads and discards one whole value at r. */
static int hmp_skip_value(mpread_t *r, int depth)
{
    mpval_t v;
    int rc = mpread_next(r, &v);
    if (rc) return rc;
    return mpread_skip(r, &v, depth);
}

/* Moves from container header *v (items at r) to its child named seg;
   *start is where the child's encoding begins. */
static int hmp_step(mpread_t *r, mpval_t *v, const char *seg, int depth,
                    const uint8_t **start)
{
    if (v->kind == MP_MAP) {
        for (uint32_t i = 0; i < v->len; i++) {
            mpval_t k;
            int rc = mpread_next(r, &k);
            if (rc) return rc;
            if (mpval_str_eq(&k, seg)) {
                *start = r->p;
                return mpread_next(r, v);
            }
            rc = mpread_skip(r, &k, depth + 1);
            if (rc) return rc;
            rc = hmp_skip_value(r, depth + 1);
            if (rc) return rc;
        }
        return SY_ENOTFOUND;
    }
    if (v->kind == MP_ARRAY) {
        char *end;
        unsigned long idx = strtoul(seg, &end, 10);
        if (*end || !*seg || idx >= v->len) return SY_ENOTFOUND;
        for (unsigned long i = 0; i < idx; i++) {
            int rc = hmp_skip_value(r, depth + 1);
            if (rc) return rc;
        }
        *start = r->p;
        return mpread_next(r, v);
    }
    return SY_ENOTFOUND;
}

/* hmp_get(), and where the value's encoding starts in buf. */
static int hmp_locate(const uint8_t *buf, size_t len, const char *path,
                      mpval_t *out, const uint8_t **start)
{
    if (!buf) return SY_ENOTFOUND;
    *start = buf;
    mpread_t r;
    mpread_init(&r, buf, len);
    mpval_t v;
    int rc = mpread_next(&r, &v);
    if (rc) return rc;
    char seg[128];
    int depth = 0;
    while (*path) {
        size_t n = strcspn(path, ".");
        if (n >= sizeof seg) return SY_EINVAL;
        memcpy(seg, path, n);
        seg[n] = 0;
        path += n;
        if (*path == '.') path++;
        rc = hmp_step(&r, &v, seg, depth, start);
        if (rc) return rc;
        depth++;
    }
    *out = v;
    return 0;
}

int hmp_get(const uint8_t *buf, size_t len, const char *path, mpval_t *out)
{
    const uint8_t *start;
    return hmp_locate(buf, len, path, out, &start);
}

bool hmp_get_str(const uint8_t *buf, size_t len, const char *path,
                 char *out, size_t cap)
{
    mpval_t v;
    if (hmp_get(buf, len, path, &v) || v.kind != MP_STR || cap == 0) return false;
    size_t n = v.len < cap - 1 ? v.len : cap - 1;
    memcpy(out, v.ptr, n);
    out[n] = 0;
    return true;
}

bool hmp_get_uint(const uint8_t *buf, size_t len, const char *path,
                  uint64_t *out)
{
    mpval_t v;
    if (hmp_get(buf, len, path, &v)) return false;
    return mpval_as_uint(&v, out);
}

bool hmp_get_bool(const uint8_t *buf, size_t len, const char *path,
                  bool *out)
{
    mpval_t v;
    if (hmp_get(buf, len, path, &v) || v.kind != MP_BOOL) return false;
    *out = v.b;
    return true;
}

bool hmp_get_ids(const uint8_t *buf, size_t len, const char *key,
                 uint8_t (*out)[16], size_t cap, size_t *n)
{
    mpread_t r, at;
    mpval_t map, arr, v;
    mpread_init(&r, buf, len);
    if (mpread_next(&r, &map) || map.kind != MP_MAP
        || mpread_map_find(&r, &map, key, &arr, &at) || arr.kind != MP_ARRAY
        || arr.len > cap)
        return false;
    for (uint32_t i = 0; i < arr.len; i++) {
        if (mpread_next(&at, &v) || v.kind != MP_BIN || v.len != 16) return false;
        memcpy(out[i], v.ptr, 16);
    }
    *n = arr.len;
    return true;
}

bool hmp_get_num(const uint8_t *buf, size_t len, const char *path,
                 double *out)
{
    mpval_t v;
    if (hmp_get(buf, len, path, &v)) return false;
    switch (v.kind) {
    case MP_UINT: *out = (double)v.u; return true;
    case MP_INT: *out = (double)v.i; return true;
    case MP_FLOAT: *out = v.f; return true;
    default: return false;
    }
}

/* The encoding of the value that starts at r (r moves past it). */
static hmp_view_t hmp_take(mpread_t *r, int depth)
{
    hmp_view_t none = { NULL, 0 };
    const uint8_t *start = r->p;
    if (hmp_skip_value(r, depth)) return none;
    return (hmp_view_t){ start, (size_t)(r->p - start) };
}

hmp_view_t hmp_sub(const uint8_t *buf, size_t len, const char *path)
{
    hmp_view_t none = { NULL, 0 };
    mpval_t v;
    const uint8_t *start;
    if (hmp_locate(buf, len, path, &v, &start)) return none;
    mpread_t r;
    mpread_init(&r, start, len - (size_t)(start - buf));
    return hmp_take(&r, 0);
}

/* Depth-first search of the value at r for a member named key. */
static int hmp_find_in(mpread_t *r, const char *key, int depth, hmp_view_t *out)
{
    mpval_t v;
    int rc = mpread_next(r, &v);
    if (rc) return rc;
    if (depth >= MPREAD_MAX_DEPTH) return SY_EDEPTH;
    if (v.kind == MP_MAP) {
        for (uint32_t i = 0; i < v.len; i++) {
            mpval_t k;
            if ((rc = mpread_next(r, &k)) || (rc = mpread_skip(r, &k, depth + 1)))
                return rc;
            if (mpval_str_eq(&k, key)) {
                *out = hmp_take(r, depth + 1);
                return out->buf ? 0 : SY_ETRUNCATED;
            }
            rc = hmp_find_in(r, key, depth + 1, out);
            if (rc != SY_ENOTFOUND) return rc;
        }
    } else if (v.kind == MP_ARRAY) {
        for (uint32_t i = 0; i < v.len; i++) {
            rc = hmp_find_in(r, key, depth + 1, out);
            if (rc != SY_ENOTFOUND) return rc;
        }
    }
    return SY_ENOTFOUND;
}

hmp_view_t hmp_find(const uint8_t *buf, size_t len, const char *key)
{
    hmp_view_t found = { NULL, 0 };
    if (!buf) return found;
    mpread_t r;
    mpread_init(&r, buf, len);
    if (hmp_find_in(&r, key, 0, &found)) found = (hmp_view_t){ NULL, 0 };
    return found;
}

bool hmp_echo_reply_has(const uint8_t *buf, size_t len, uint64_t seq,
                        const char *data, const char *by)
{
    hmp_view_t vs = hmp_find(buf, len, "seq");
    hmp_view_t vd = hmp_find(buf, len, "data");
    hmp_view_t vb = hmp_find(buf, len, "by");
    double got_seq;
    char got_data[256], got_by[256];
    return hmp_get_num(vs.buf, vs.len, "", &got_seq) && got_seq == (double)seq
        && hmp_get_str(vd.buf, vd.len, "", got_data, sizeof got_data)
        && strcmp(got_data, data) == 0
        && hmp_get_str(vb.buf, vb.len, "", got_by, sizeof got_by)
        && strcmp(got_by, by) == 0;
}

int hmp_index_of(const uint8_t *buf, size_t len, const char *path,
                 const char *field, const char *value)
{
    hmp_view_t arr = hmp_sub(buf, len, path);
    mpval_t v;
    if (hmp_get(arr.buf, arr.len, "", &v) || v.kind != MP_ARRAY) return -1;
    for (uint32_t i = 0; i < v.len; i++) {
        char p[32], got[256];
        snprintf(p, sizeof p, "%u.%s", i, field);
        if (hmp_get_str(arr.buf, arr.len, p, got, sizeof got) && strcmp(got, value) == 0)
            return (int)i;
    }
    return -1;
}

/* Tries text[0..len) (leading blanks allowed) as one JSON object or
   array. */
static uint8_t *hmp_json_try(const char *text, size_t len, size_t *out_len)
{
    while (len && (*text == ' ' || *text == '\t')) { text++; len--; }
    if (!len || (*text != '{' && *text != '[')) return NULL;
    uint8_t *mp = NULL;
    if (json_to_msgpack(text, len, NULL, &mp, out_len, NULL)) return NULL;
    return mp;
}

uint8_t *hmp_from_json_in(const char *text, size_t *out_len)
{
    if (!text) return NULL;
    size_t total = strlen(text);
    uint8_t *mp = NULL;
    /* First: from a line that opens an object/array to the end. */
    for (const char *line = text; !mp && line; ) {
        mp = hmp_json_try(line, total - (size_t)(line - text), out_len);
        line = strchr(line, '\n');
        if (line) line++;
    }
    /* Then: each line alone. */
    for (const char *line = text; !mp && line; ) {
        const char *nl = strchr(line, '\n');
        mp = hmp_json_try(line, nl ? (size_t)(nl - line) : strlen(line), out_len);
        line = nl ? nl + 1 : NULL;
    }
    return mp;
}

int hmp_count(const uint8_t *buf, size_t len, const char *path)
{
    mpval_t v;
    if (hmp_get(buf, len, path, &v)) return -1;
    if (v.kind != MP_ARRAY && v.kind != MP_MAP) return -1;
    return (int)v.len;
}

/* ------------------------------------------------------------ rendering */

typedef struct {
    char  *out;
    size_t cap, n;
} hmp_text_t;

static void hmp_put(hmp_text_t *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void hmp_put(hmp_text_t *t, const char *fmt, ...)
{
    if (t->n + 1 >= t->cap) return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(t->out + t->n, t->cap - t->n, fmt, ap);
    va_end(ap);
    if (w > 0) t->n += (size_t)w;
    if (t->n >= t->cap) t->n = t->cap - 1;
}

static int hmp_render(mpread_t *r, hmp_text_t *t, int depth)
{
    mpval_t v;
    int rc = mpread_next(r, &v);
    if (rc) { hmp_put(t, "<%s>", syerr_name(rc)); return rc; }
    if (depth > 16) { hmp_put(t, "..."); return mpread_skip(r, &v, depth); }
    switch (v.kind) {
    case MP_NIL: hmp_put(t, "null"); break;
    case MP_BOOL: hmp_put(t, v.b ? "true" : "false"); break;
    case MP_UINT: hmp_put(t, "%" PRIu64, v.u); break;
    case MP_INT: hmp_put(t, "%" PRId64, v.i); break;
    case MP_FLOAT: hmp_put(t, "%g", v.f); break;
    case MP_STR: hmp_put(t, "\"%.*s\"", (int)(v.len > 200 ? 200 : v.len), (const char *)v.ptr); break;
    case MP_BIN:
        hmp_put(t, "bin%u:", v.len);
        for (uint32_t i = 0; i < v.len && i < 32; i++) hmp_put(t, "%02x", v.ptr[i]);
        break;
    case MP_EXT: hmp_put(t, "ext(%d,%u)", v.ext_type, v.len); break;
    case MP_ARRAY:
        hmp_put(t, "[");
        for (uint32_t i = 0; i < v.len; i++) {
            if (i) hmp_put(t, ",");
            if ((rc = hmp_render(r, t, depth + 1))) return rc;
        }
        hmp_put(t, "]");
        break;
    case MP_MAP:
        hmp_put(t, "{");
        for (uint32_t i = 0; i < v.len; i++) {
            if (i) hmp_put(t, ",");
            if ((rc = hmp_render(r, t, depth + 1))) return rc;
            hmp_put(t, ":");
            if ((rc = hmp_render(r, t, depth + 1))) return rc;
        }
        hmp_put(t, "}");
        break;
    }
    return 0;
}

void hmp_to_text(const uint8_t *buf, size_t len, char *out, size_t cap)
{
    if (!cap) return;
    out[0] = 0;
    if (!buf) { snprintf(out, cap, "(none)"); return; }
    hmp_text_t t = { out, cap, 0 };
    mpread_t r;
    mpread_init(&r, buf, len);
    hmp_render(&r, &t, 0);
    if (mpread_left(&r)) hmp_put(&t, " +%zu trailing bytes", mpread_left(&r));
}
