/*  fuzz_body.c -- libFuzzer target for msgtypes_validate() and
 *  mpread_check().
 *
 *  The first byte picks a message type from msgtypes_all() (and a depth
 *  for mpread_check); the rest is the body.  Properties:
 *    - validation returns 0 or a known code with a terminated message;
 *    - a body with a structural fault is reported with exactly the fault
 *      mpread_check() finds at the body depth limit;
 *    - a valid body passes mpread_check();
 *    - a valid body is valid by an oracle that shares no code with the
 *      validator (only the table): msgpack-c reads it as a map whose keys
 *      are declared fields, none twice, every required one present, each
 *      value of its kind's msgpack type and within its count or range;
 *    - what mpread_check() accepts, msgpack-c's unpacker reads whole,
 *      within libFuzzer's malloc limit (the reason mpread exists).
 */
#include "schemas/mpread.h"
#include "schemas/msgtypes.h"
#include "schemas/syerr.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:@-"

static bool fuzz_in(uint64_t n, uint64_t lo, uint64_t hi)
{
    return n >= lo && n <= hi;
}

static bool fuzz_name_ok(const msgpack_object *o, uint64_t lo, uint64_t hi)
{
    if (o->type != MSGPACK_OBJECT_STR || !fuzz_in(o->via.str.size, lo, hi))
        return false;
    for (uint32_t i = 0; i < o->via.str.size; i++)
        if (o->via.str.ptr[i] == '\0' || !strchr(FUZZ_NAME_CHARS, o->via.str.ptr[i]))
            return false;
    return true;
}

/* Does value o fit field f, judged from msgpack-c's reading? */
static bool fuzz_value_ok(const msgfield_t *f, const msgpack_object *o)
{
    const msgpack_object_array *a = &o->via.array;
    switch (f->kind) {
    case MF_STR:
        return o->type == MSGPACK_OBJECT_STR && fuzz_in(o->via.str.size, f->min, f->max);
    case MF_NAME:
        return fuzz_name_ok(o, f->min, f->max);
    case MF_UINT:
        return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && fuzz_in(o->via.u64, f->min, f->max);
    case MF_INT:
        return (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) ||
               o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER;
    case MF_BOOL:
        return o->type == MSGPACK_OBJECT_BOOLEAN;
    case MF_FLOAT:
        return o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64 ||
               o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
               o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER;
    case MF_BIN:
        return o->type == MSGPACK_OBJECT_BIN && fuzz_in(o->via.bin.size, f->min, f->max);
    case MF_ID:
        return o->type == MSGPACK_OBJECT_BIN && o->via.bin.size == 16;
    case MF_STRS:
    case MF_NAMES:
        if (o->type != MSGPACK_OBJECT_ARRAY || !fuzz_in(a->size, f->min, f->max))
            return false;
        for (uint32_t i = 0; i < a->size; i++)
            if (f->kind == MF_NAMES ? !fuzz_name_ok(&a->ptr[i], 1, 64)
                                    : a->ptr[i].type != MSGPACK_OBJECT_STR ||
                                      a->ptr[i].via.str.size > f->item_max)
                return false;
        return true;
    case MF_IDS:
        if (o->type != MSGPACK_OBJECT_ARRAY || !fuzz_in(a->size, f->min, f->max))
            return false;
        for (uint32_t i = 0; i < a->size; i++)
            if (a->ptr[i].type != MSGPACK_OBJECT_BIN || a->ptr[i].via.bin.size != 16)
                return false;
        return true;
    case MF_MAP:
        return o->type == MSGPACK_OBJECT_MAP;
    case MF_ARRAY:
        return o->type == MSGPACK_OBJECT_ARRAY;
    case MF_ANY:
        return true;
    }
    return false;
}

/* The independent view of a body msgtypes_validate() accepted. */
static void fuzz_oracle(const msgtype_t *t, const msgpack_object *body)
{
    if (body->type != MSGPACK_OBJECT_MAP)
        abort();
    uint64_t seen = 0;
    for (uint32_t i = 0; i < body->via.map.size; i++) {
        const msgpack_object_kv *kv = &body->via.map.ptr[i];
        char name[65];
        if (kv->key.type != MSGPACK_OBJECT_STR || kv->key.via.str.size >= sizeof name ||
            memchr(kv->key.via.str.ptr, '\0', kv->key.via.str.size))
            abort();
        memcpy(name, kv->key.via.str.ptr, kv->key.via.str.size);
        name[kv->key.via.str.size] = '\0';
        const msgfield_t *f = msgtypes_field(t, name);
        if (!f || !fuzz_value_ok(f, &kv->val))
            abort();
        uint64_t bit = 1ULL << (size_t)(f - t->fields);
        if (seen & bit)
            abort();
        seen |= bit;
    }
    for (size_t i = 0; i < t->nfields; i++)
        if (t->fields[i].required && !(seen & (1ULL << i)))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t count = 0;
    const msgtype_t *all = msgtypes_all(&count);
    const msgtype_t *t = &all[data[0] % count];
    const uint8_t *body = data + 1;
    size_t len = size - 1;

    char err[200];
    memset(err, 'x', sizeof err);
    int rc = msgtypes_validate(t, body, len, err, sizeof err);
    if (memchr(err, '\0', sizeof err) == NULL)
        abort();
    if (rc != 0 && (!strcmp(syerr_name(rc), "UNKNOWN") || err[0] == '\0'))
        abort();
    int s = mpread_check(body, len, MSGTYPES_MAX_DEPTH);
    if (s != 0 && rc != s)
        abort();
    if (rc == 0 && s != 0)
        abort();

    /* any depth the first byte asks for, within the reader's limit */
    int depth = (data[0] >> 3) % (MPREAD_MAX_DEPTH + 2);
    int s2 = mpread_check(body, len, depth);
    if (s2 != 0 && s2 != SY_ETRUNCATED && s2 != SY_ETRAILING && s2 != SY_ECOUNT &&
        s2 != SY_EDEPTH && s2 != SY_EFIELD_TYPE)
        abort();

    if (s == 0) {
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t off = 0;
        msgpack_unpack_return ur = msgpack_unpack_next(&u, (const char *)body, len, &off);
        if (ur != MSGPACK_UNPACK_SUCCESS || off != len)
            abort();
        if (rc == 0)
            fuzz_oracle(t, &u.data);
        msgpack_unpacked_destroy(&u);
    }
    return 0;
}
