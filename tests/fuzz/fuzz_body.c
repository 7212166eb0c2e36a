/*  fuzz_body.c -- libFuzzer target for msgtypes_validate() and
 *  mpread_check().
 *
 *  The first byte picks a message type from msgtypes_all() (and a depth
 *  for mpread_check); the rest is the body.  Properties:
 *    - validation returns 0 or a known code with a terminated message;
 *    - a body with a structural fault is reported with exactly the fault
 *      mpread_check() finds at the body depth limit;
 *    - a valid body passes mpread_check();
 *    - what mpread_check() accepts, msgpack-c's unpacker reads whole,
 *      within libFuzzer's malloc limit (the reason mpread exists).
 */
#include "schemas/mpread.h"
#include "schemas/msgtypes.h"
#include "schemas/syerr.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
        msgpack_unpacked_destroy(&u);
    }
    return 0;
}
