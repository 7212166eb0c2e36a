/*  hmp.h -- msgpack helpers for the integration tests.
 *
 *  Reading: values are looked up by a dotted path through maps and arrays
 *  ("data.actors.0.name"), on top of the bounded reader schemas/mpread.h,
 *  so a hostile or broken body from a binary under test cannot make the
 *  test allocate or read out of bounds.
 *
 *  Writing: an hmp_buf_t wraps msgpack-c's sbuffer and packer; bodies are
 *  built with msgpack_pack_* on hmp_buf_t.pk.
 *
 *  Ownership: hmp_buf_t owns its data until hmp_buf_clear().
 */
#ifndef HMP_H
#define HMP_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schemas/mpread.h"

typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer  pk;
} hmp_buf_t;

void hmp_buf_init(hmp_buf_t *b);
void hmp_buf_clear(hmp_buf_t *b);

/* Packs a NUL-terminated string. */
void hmp_str(hmp_buf_t *b, const char *s);

/* echo.request {seq, data, delay_ms (left out if < 0)} into b (init'ed). */
void hmp_echo_request(hmp_buf_t *b, uint64_t seq, const char *data,
                      int64_t delay_ms);

/* Finds the value at path in buf.  For containers *out is the header.
   Returns 0 or a negative code (SY_ENOTFOUND, decoding errors). */
int hmp_get(const uint8_t *buf, size_t len, const char *path, mpval_t *out);

/* Typed look-ups: true if present with that type. */
bool hmp_get_str(const uint8_t *buf, size_t len, const char *path,
                 char *out, size_t cap);
bool hmp_get_uint(const uint8_t *buf, size_t len, const char *path,
                  uint64_t *out);
bool hmp_get_bool(const uint8_t *buf, size_t len, const char *path,
                  bool *out);

/* Number of items of the array (or pairs of the map) at path, or -1. */
int hmp_count(const uint8_t *buf, size_t len, const char *path);

/* Writes a JSON-like rendering of buf into out (cut to cap) for messages
   printed on failure. */
void hmp_to_text(const uint8_t *buf, size_t len, char *out, size_t cap);

#endif
