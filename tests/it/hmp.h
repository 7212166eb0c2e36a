/*  hmp.h -- msgpack helpers for the integration tests.
 *
 *  Reading: values are looked up by a dotted path through maps and arrays
 *  ("data.actors.0.name"), on top of the bounded reader schemas/mpread.h,
 *  so a hostile or broken body from a binary under test cannot make the
 *  test allocate or read out of bounds.
 *
 *  JSON: syctl prints JSON; hmp_from_json_in() turns it into msgpack with
 *  common/json.h (the strict parser syctl itself uses for input), so the
 *  same look-ups check syctl's output too.
 *
 *  Writing: an hmp_buf_t wraps msgpack-c's sbuffer and packer; bodies are
 *  built with msgpack_pack_* on hmp_buf_t.pk.
 *
 *  Ownership: hmp_buf_t owns its data until hmp_buf_clear();
 *  hmp_from_json_in() returns a buffer the caller frees with free(); an
 *  hmp_view_t points into the buffer it was found in.
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

/* True if buf holds an echo.reply's seq, data and by with these values,
   each the first member of its name anywhere in buf (syctl may print the
   body inside a wrapper). */
bool hmp_echo_reply_has(const uint8_t *buf, size_t len, uint64_t seq,
                        const char *data, const char *by);

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

/* The ids (16-byte binaries) of the array at top-level key `key`, at most
   cap of them, into out; their count in *n.  True if present and every
   item is an id. */
bool hmp_get_ids(const uint8_t *buf, size_t len, const char *key,
                 uint8_t (*out)[16], size_t cap, size_t *n);

/* A number of any encoding (uint, int, float) as a double. */
bool hmp_get_num(const uint8_t *buf, size_t len, const char *path,
                 double *out);

/* One value's encoding inside a larger buffer, itself a buffer the
   look-ups above accept.  buf NULL: not found (look-ups then fail). */
typedef struct {
    const uint8_t *buf;
    size_t         len;
} hmp_view_t;

/* The value at path. */
hmp_view_t hmp_sub(const uint8_t *buf, size_t len, const char *path);

/* The value of the first map member named key anywhere in buf (depth
   first, in order). */
hmp_view_t hmp_find(const uint8_t *buf, size_t len, const char *key);

/* Index of the first item of the array at path whose member `field` is
   the string value, or -1. */
int hmp_index_of(const uint8_t *buf, size_t len, const char *path,
                 const char *field, const char *value);

/* Finds the first JSON object or array in a tool's output: tries each line
   that starts with '{' or '[' through to the end of the text, then each
   line alone (JSON lines), and converts it with json_to_msgpack().
   Returns the msgpack (caller frees) and *out_len, or NULL if none
   parses. */
uint8_t *hmp_from_json_in(const char *text, size_t *out_len);

/* Number of items of the array (or pairs of the map) at path, or -1. */
int hmp_count(const uint8_t *buf, size_t len, const char *path);

/* Writes a JSON-like rendering of buf into out (cut to cap) for messages
   printed on failure. */
void hmp_to_text(const uint8_t *buf, size_t len, char *out, size_t cap);

#endif
