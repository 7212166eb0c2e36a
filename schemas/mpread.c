/*  mpread.c -- a bounded, allocation-free msgpack reader.
 *
 *  The reader is a pair of pointers (next byte, end).  mpread_next() reads
 *  one value's header and, for scalars, strings and binaries, its data;
 *  every length is compared with the bytes that remain before anything is
 *  touched, and a container's count is compared with them too (each item
 *  needs at least one byte), so no header can make a caller loop or
 *  allocate beyond what the buffer could hold.
 *
 *  Skipping is iterative with a small fixed stack of "items left" counters,
 *  one per nesting level, so hostile nesting costs neither C stack nor
 *  heap: the depth limit bounds the stack, the count check bounds the work.
 */
#include "schemas/mpread.h"
#include "schemas/syerr.h"

#include <string.h>

void mpread_init(mpread_t *r, const uint8_t *buf, size_t len)
{
    r->p = buf;
    r->end = buf ? buf + len : buf;
}

size_t mpread_left(const mpread_t *r)
{
    return (size_t)(r->end - r->p);
}

static uint64_t mpread_be(const uint8_t *p, int n)
{
    uint64_t x = 0;
    for (int i = 0; i < n; i++)
        x = (x << 8) | p[i];
    return x;
}

/* Takes n bytes of big-endian unsigned from the reader into *out. */
static int mpread_take(mpread_t *r, int n, uint64_t *out)
{
    if (mpread_left(r) < (size_t)n)
        return SY_ETRUNCATED;
    *out = mpread_be(r->p, n);
    r->p += n;
    return 0;
}

static void mpread_set_uint(mpval_t *v, uint64_t u)
{
    v->kind = MP_UINT;
    v->u = u;
    v->i = u <= (uint64_t)INT64_MAX ? (int64_t)u : INT64_MAX;
}

static void mpread_set_int(mpval_t *v, int64_t i)
{
    v->kind = MP_INT;
    v->i = i;
    v->u = i >= 0 ? (uint64_t)i : 0;
}

/* A str/bin/ext payload of len bytes starts here. */
static int mpread_data(mpread_t *r, mpval_t *v, mp_kind_t kind, uint64_t len)
{
    if (len > mpread_left(r))
        return SY_ETRUNCATED;
    v->kind = kind;
    v->ptr = r->p;
    v->len = (uint32_t)len;
    r->p += len;
    return 0;
}

/* A container header with n items (pairs for a map) follows. */
static int mpread_container(mpread_t *r, mpval_t *v, mp_kind_t kind, uint64_t n)
{
    uint64_t need = kind == MP_MAP ? 2 * n : n;
    if (need > mpread_left(r))
        return SY_ECOUNT;
    v->kind = kind;
    v->len = (uint32_t)n;
    return 0;
}

static int mpread_ext(mpread_t *r, mpval_t *v, uint64_t len)
{
    if (mpread_left(r) < 1)
        return SY_ETRUNCATED;
    v->ext_type = (int8_t)*r->p++;
    return mpread_data(r, v, MP_EXT, len);
}

static int mpread_float(mpread_t *r, mpval_t *v, int n)
{
    uint64_t bits;
    int rc = mpread_take(r, n, &bits);
    if (rc)
        return rc;
    v->kind = MP_FLOAT;
    if (n == 4) {
        uint32_t b32 = (uint32_t)bits;
        float f;
        memcpy(&f, &b32, sizeof f);
        v->f = f;
    } else {
        memcpy(&v->f, &bits, sizeof v->f);
    }
    return 0;
}

/* Signed integer of n bytes, sign-extended. */
static int mpread_signed(mpread_t *r, mpval_t *v, int n)
{
    uint64_t x;
    int rc = mpread_take(r, n, &x);
    if (rc)
        return rc;
    int64_t i;
    switch (n) {
    case 1:  i = (int8_t)(uint8_t)x; break;
    case 2:  i = (int16_t)(uint16_t)x; break;
    case 4:  i = (int32_t)(uint32_t)x; break;
    default: i = (int64_t)x; break;
    }
    mpread_set_int(v, i);
    return 0;
}

/* The rest of mpread_next() for type bytes 0xc0..0xdf. */
static int mpread_next_tagged(mpread_t *r, mpval_t *v, uint8_t b)
{
    uint64_t x;
    int rc;
    switch (b) {
    case 0xc0: v->kind = MP_NIL; return 0;
    case 0xc2: case 0xc3: v->kind = MP_BOOL; v->b = b == 0xc3; return 0;
    case 0xc4: case 0xc5: case 0xc6:
        if ((rc = mpread_take(r, 1 << (b - 0xc4), &x)))
            return rc;
        return mpread_data(r, v, MP_BIN, x);
    case 0xc7: case 0xc8: case 0xc9:
        if ((rc = mpread_take(r, 1 << (b - 0xc7), &x)))
            return rc;
        return mpread_ext(r, v, x);
    case 0xca: return mpread_float(r, v, 4);
    case 0xcb: return mpread_float(r, v, 8);
    case 0xcc: case 0xcd: case 0xce: case 0xcf:
        if ((rc = mpread_take(r, 1 << (b - 0xcc), &x)))
            return rc;
        mpread_set_uint(v, x);
        return 0;
    case 0xd0: case 0xd1: case 0xd2: case 0xd3:
        return mpread_signed(r, v, 1 << (b - 0xd0));
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
        return mpread_ext(r, v, 1u << (b - 0xd4));
    case 0xd9: case 0xda: case 0xdb:
        if ((rc = mpread_take(r, 1 << (b - 0xd9), &x)))
            return rc;
        return mpread_data(r, v, MP_STR, x);
    case 0xdc: case 0xdd:
        if ((rc = mpread_take(r, b == 0xdc ? 2 : 4, &x)))
            return rc;
        return mpread_container(r, v, MP_ARRAY, x);
    case 0xde: case 0xdf:
        if ((rc = mpread_take(r, b == 0xde ? 2 : 4, &x)))
            return rc;
        return mpread_container(r, v, MP_MAP, x);
    default:   /* 0xc1: never used */
        return SY_EFIELD_TYPE;
    }
}

int mpread_next(mpread_t *r, mpval_t *v)
{
    v->len = 0;
    v->ptr = NULL;
    if (r->p >= r->end)
        return SY_ETRUNCATED;
    const uint8_t *start = r->p;
    uint8_t b = *r->p++;
    int rc;
    if (b <= 0x7f) {
        mpread_set_uint(v, b);
        return 0;
    }
    if (b >= 0xe0) {
        mpread_set_int(v, (int8_t)b);
        return 0;
    }
    if (b <= 0x8f)
        rc = mpread_container(r, v, MP_MAP, b & 0x0f);
    else if (b <= 0x9f)
        rc = mpread_container(r, v, MP_ARRAY, b & 0x0f);
    else if (b <= 0xbf)
        rc = mpread_data(r, v, MP_STR, b & 0x1f);
    else
        rc = mpread_next_tagged(r, v, b);
    if (rc)
        r->p = start;   /* leave the reader where the bad value began */
    return rc;
}

static bool mpread_is_container(const mpval_t *v)
{
    return v->kind == MP_ARRAY || v->kind == MP_MAP;
}

static uint64_t mpread_items(const mpval_t *v)
{
    return v->kind == MP_MAP ? 2 * (uint64_t)v->len : v->len;
}

int mpread_skip_max(mpread_t *r, const mpval_t *v, int depth, int max_depth)
{
    if (!mpread_is_container(v))
        return 0;
    if (max_depth > MPREAD_MAX_DEPTH)
        max_depth = MPREAD_MAX_DEPTH;
    if (depth < 0)
        depth = 0;
    if (depth >= max_depth)
        return SY_EDEPTH;
    /* left[k]: items still to read in the container at depth + k */
    uint64_t left[MPREAD_MAX_DEPTH + 1];
    int top = 0;
    left[0] = mpread_items(v);
    while (top >= 0) {
        if (left[top] == 0) {
            top--;
            continue;
        }
        left[top]--;
        mpval_t x;
        int rc = mpread_next(r, &x);
        if (rc)
            return rc;
        if (mpread_is_container(&x)) {
            if (depth + top + 1 >= max_depth)
                return SY_EDEPTH;
            left[++top] = mpread_items(&x);
        }
    }
    return 0;
}

int mpread_skip(mpread_t *r, const mpval_t *v, int depth)
{
    return mpread_skip_max(r, v, depth, MPREAD_MAX_DEPTH);
}

int mpread_check(const uint8_t *buf, size_t len, int max_depth)
{
    mpread_t r;
    mpval_t v;
    mpread_init(&r, buf, len);
    int rc = mpread_next(&r, &v);
    if (rc == 0)
        rc = mpread_skip_max(&r, &v, 0, max_depth);
    if (rc == 0 && mpread_left(&r) > 0)
        rc = SY_ETRAILING;
    return rc;
}

bool mpval_str_eq(const mpval_t *v, const char *s)
{
    if (v->kind != MP_STR || !s)
        return false;
    size_t n = strlen(s);
    return n == v->len && (n == 0 || memcmp(v->ptr, s, n) == 0);
}

const char *mpval_kind_name(mp_kind_t kind)
{
    static const char *const names[] = {
        "nil", "bool", "uint", "int", "float", "str", "bin", "array", "map", "ext"
    };
    return (unsigned)kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}

void mpval_printable(const mpval_t *v, char *out, size_t cap)
{
    size_t n = v->len < cap - 1 ? v->len : cap - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = v->ptr[i];
        out[i] = (c >= 0x20 && c < 0x7f && c != '"') ? (char)c : '?';
    }
    out[n] = '\0';
}

bool mpval_as_uint(const mpval_t *v, uint64_t *out)
{
    if (v->kind == MP_UINT || (v->kind == MP_INT && v->i >= 0)) {
        *out = v->kind == MP_UINT ? v->u : (uint64_t)v->i;
        return true;
    }
    return false;
}

int mpread_map_find(const mpread_t *r, const mpval_t *map, const char *key,
                    mpval_t *out, mpread_t *at)
{
    if (map->kind != MP_MAP)
        return SY_ENOT_MAP;
    mpread_t c = *r;
    for (uint32_t i = 0; i < map->len; i++) {
        mpval_t k, val;
        int rc = mpread_next(&c, &k);
        if (rc == 0)
            rc = mpread_skip(&c, &k, 1);
        if (rc == 0)
            rc = mpread_next(&c, &val);
        if (rc)
            return rc;
        if (mpval_str_eq(&k, key)) {
            *out = val;
            if (at)
                *at = c;
            return 0;
        }
        if ((rc = mpread_skip(&c, &val, 1)))
            return rc;
    }
    return SY_ENOTFOUND;
}
