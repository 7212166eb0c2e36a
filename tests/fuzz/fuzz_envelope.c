/*  fuzz_envelope.c -- libFuzzer target for envelope_decode().
 *
 *  Properties checked on every input:
 *    - decode never reads outside the input, never allocates, and returns
 *      0 or a known detail code with a NUL-terminated message;
 *    - a frame with a structural fault (as mpread_check() sees it) is
 *      reported with exactly that fault, whatever else is wrong with it;
 *    - what decodes re-encodes, and the encoding decodes to the same
 *      struct and re-encodes to the same bytes (encode is canonical).
 */
#include "schemas/envelope.h"
#include "schemas/mpread.h"
#include "schemas/syerr.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
    return 0;
}
