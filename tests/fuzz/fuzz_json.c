/*  fuzz_json.c -- libFuzzer target for the JSON <-> msgpack converter
 *  (common/json.c), the decoder syctl uses on what an operator types and
 *  sy-inference uses on every line an LLM backend streams.
 *
 *  Properties:
 *    - json_to_msgpack() returns 0 or a known code, never reads past the
 *      input, and on success gives exactly one well-formed msgpack value
 *      (mpread_check() at the depth the converter promises);
 *    - what it gives, json_from_msgpack() turns back into JSON;
 *    - converting that JSON again is a fixed point: a second round trip
 *      changes nothing (numbers and escapes settle after one).
 */
#include "common/json.h"
#include "schemas/mpread.h"
#include "schemas/syerr.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_roundtrip(const uint8_t *m, size_t mlen, uint8_t **out,
                           size_t *out_len)
{
    char *text = NULL;
    if (json_from_msgpack(m, mlen, &text) != 0)
        abort();
    json_err_t err;
    if (json_to_msgpack(text, strlen(text), NULL, out, out_len, &err) != 0)
        abort();        /* our own JSON must parse */
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The parser takes a length, not a C string: no terminator added. */
    uint8_t *m1 = NULL;
    size_t l1 = 0;
    json_err_t err;
    int rc = json_to_msgpack((const char *) data, size, NULL, &m1, &l1, &err);
    if (rc != 0) {
        if (m1 || !syerr_name(rc) || !memchr(err.msg, '\0', sizeof err.msg))
            abort();
        return 0;
    }
    if (mpread_check(m1, l1, MPREAD_MAX_DEPTH) != 0)
        abort();
    uint8_t *m2 = NULL, *m3 = NULL;
    size_t l2 = 0, l3 = 0;
    fuzz_roundtrip(m1, l1, &m2, &l2);
    fuzz_roundtrip(m2, l2, &m3, &l3);
    if (l2 != l3 || memcmp(m2, m3, l2) != 0)
        abort();
    free(m1);
    free(m2);
    free(m3);
    return 0;
}
