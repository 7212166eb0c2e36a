/*  fuzz_envelope.c -- libFuzzer target for envelope_decode().
 *
 *  Properties checked on every input:
 *    - decode never reads outside the input, never allocates, and returns
 *      0 or a known detail code with a NUL-terminated message;
 *    - a frame with a structural fault (as mpread_check() sees it) is
 *      reported with exactly that fault, whatever else is wrong with it;
 *    - what decodes is valid by an oracle that shares no code with the
 *      decoder: msgpack-c reads the input whole as a map with one pair per
 *      decoded field, and every string field holds only the characters and
 *      lengths docs/PROTOCOL.md allows (so a decoder that let invalid
 *      input through would be caught even if the encoder shared its bug);
 *    - what decodes re-encodes, and the encoding decodes to the same
 *      struct and re-encodes to the same bytes (encode is canonical);
 *      envelope_encode_trusted() gives those same bytes.
 */
#include "schemas/envelope.h"
#include "schemas/mpread.h"
#include "schemas/syerr.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_LOWER "abcdefghijklmnopqrstuvwxyz"
#define FUZZ_DIGIT "0123456789"
#define FUZZ_NAME  FUZZ_LOWER "ABCDEFGHIJKLMNOPQRSTUVWXYZ" FUZZ_DIGIT "._:@-"

/* s holds 1..max bytes, all from allowed (NULL: printable ASCII). */
static void fuzz_check_str(const char *s, size_t max, const char *allowed)
{
    size_t n = strlen(s);
    if (n < 1 || n > max)
        abort();
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (allowed ? !strchr(allowed, c) : (c < 0x21 || c > 0x7e))
            abort();
    }
}

/* The independent view of an accepted header. */
static void fuzz_oracle(const envelope_t *a, const uint8_t *data, size_t size)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    if (msgpack_unpack_next(&u, (const char *)data, size, &off) != MSGPACK_UNPACK_SUCCESS ||
        off != size || u.data.type != MSGPACK_OBJECT_MAP)
        abort();
    uint32_t fields = 3;
    for (uint32_t bits = a->present; bits; bits &= bits - 1)
        fields++;
    if (u.data.via.map.size != fields)
        abort();
    for (uint32_t i = 0; i < fields; i++)
        if (u.data.via.map.ptr[i].key.type != MSGPACK_OBJECT_STR)
            abort();
    msgpack_unpacked_destroy(&u);

    if (a->v != ENVELOPE_VERSION)
        abort();
    if (a->type[0] < 'a' || a->type[0] > 'z')
        abort();
    fuzz_check_str(a->type, ENVELOPE_NAME_MAX, FUZZ_LOWER FUZZ_DIGIT "._-");
    if (a->present & ENV_HAS_FROM)
        fuzz_check_str(a->from, ENVELOPE_NAME_MAX, FUZZ_NAME);
    if (a->present & ENV_HAS_TO)
        fuzz_check_str(a->to, ENVELOPE_NAME_MAX, FUZZ_NAME);
    if (a->present & ENV_HAS_REPLY_TO)
        fuzz_check_str(a->reply_to, ENVELOPE_NAME_MAX, FUZZ_NAME);
    if (a->present & ENV_HAS_KEY)
        fuzz_check_str(a->key, ENVELOPE_KEY_MAX, NULL);
    if (((a->present & ENV_HAS_TTL) && (a->ttl < 1 || a->ttl > ENVELOPE_TTL_MAX)) ||
        ((a->present & ENV_HAS_TS) && a->ts >= (1ULL << 48)) ||
        a->prio > ENVELOPE_PRIO_LOW || a->attempt > ENVELOPE_ATTEMPT_MAX)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    envelope_t a, b;
    char err[200];
    memset(err, 'x', sizeof err);
    int rc = envelope_decode(&a, data, size, err, sizeof err);
    if (memchr(err, '\0', sizeof err) == NULL)
        abort();
    if (rc != 0) {
        if (!strcmp(syerr_name(rc), "UNKNOWN") || err[0] == '\0')
            abort();
        if (size <= ENVELOPE_MAX_ENCODED) {
            int s = mpread_check(data, size, 8);
            if (s != 0 && s != rc)
                abort();
        }
        return 0;
    }
    fuzz_oracle(&a, data, size);
    uint8_t buf[ENVELOPE_MAX_ENCODED], buf2[ENVELOPE_MAX_ENCODED];
    int n = envelope_encode(&a, buf, sizeof buf);
    if (n <= 0 || (size_t)n > size)
        abort();
    if (envelope_decode(&b, buf, (size_t)n, err, sizeof err) != 0)
        abort();
    if (memcmp(&a, &b, sizeof a) != 0)
        abort();
    int n2 = envelope_encode(&b, buf2, sizeof buf2);
    if (n2 != n || memcmp(buf, buf2, (size_t)n) != 0)
        abort();
    n2 = envelope_encode_trusted(&a, buf2, sizeof buf2);
    if (n2 != n || memcmp(buf, buf2, (size_t)n) != 0)
        abort();
    return 0;
}
