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

/* Moves from container header *v (items at r) to its child named seg. */
static int hmp_step(mpread_t *r, mpval_t *v, const char *seg, int depth)
{
    if (v->kind == MP_MAP) {
        for (uint32_t i = 0; i < v->len; i++) {
            mpval_t k;
            int rc = mpread_next(r, &k);
            if (rc) return rc;
            if (mpval_str_eq(&k, seg))
                return mpread_next(r, v);
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
        return mpread_next(r, v);
    }
    return SY_ENOTFOUND;
}

int hmp_get(const uint8_t *buf, size_t len, const char *path, mpval_t *out)
{
    if (!buf) return SY_ENOTFOUND;
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
        rc = hmp_step(&r, &v, seg, depth);
        if (rc) return rc;
        depth++;
    }
    *out = v;
    return 0;
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
