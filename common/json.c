/*  json.c -- JSON <-> msgpack for syctl (see json.h).
 *
 *  Ideas:
 *  - One growable byte buffer (json_buf_t) serves both directions.
 *  - The parser is recursive descent over the text with a depth counter.
 *    It writes msgpack itself rather than through msgpack-c, because a
 *    container's count is known only at its end: the container gets a
 *    5-byte (32-bit) header placeholder that is shrunk to the smallest
 *    msgpack header once the count is known (memmove of its contents;
 *    fine for operator-sized input).
 *  - The printer walks the msgpack with mpread_next(), which checks every
 *    count against the bytes left, so it never allocates from input
 *    counts.
 */
#include "common/json.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../schemas/mpread.h"
#include "../schemas/syerr.h"

typedef struct {
    uint8_t *data;
    size_t   len;
    size_t   cap;
    bool     oom;   /* an allocation failed: everything after is dropped */
} json_buf_t;

static bool json_buf_reserve(json_buf_t *b, size_t more)
{
    if (b->oom)
        return false;
    if (b->len + more <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + more)
        cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

static void json_buf_put(json_buf_t *b, const void *p, size_t n)
{
    if (n == 0 || !json_buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void json_buf_byte(json_buf_t *b, uint8_t c)
{
    json_buf_put(b, &c, 1);
}

static void json_buf_str(json_buf_t *b, const char *s)
{
    json_buf_put(b, s, strlen(s));
}

static void json_buf_be(json_buf_t *b, uint64_t v, int bytes)
{
    uint8_t tmp[8];
    for (int i = 0; i < bytes; i++)
        tmp[i] = (uint8_t) (v >> (8 * (bytes - 1 - i)));
    json_buf_put(b, tmp, (size_t) bytes);
}

/* ------------------------------------------------------------------ */
/* msgpack writing                                                     */

static void json_mp_uint(json_buf_t *b, uint64_t v)
{
    if (v < 128)
        json_buf_byte(b, (uint8_t) v);
    else if (v <= 0xff) {
        json_buf_byte(b, 0xcc);
        json_buf_be(b, v, 1);
    } else if (v <= 0xffff) {
        json_buf_byte(b, 0xcd);
        json_buf_be(b, v, 2);
    } else if (v <= 0xffffffffu) {
        json_buf_byte(b, 0xce);
        json_buf_be(b, v, 4);
    } else {
        json_buf_byte(b, 0xcf);
        json_buf_be(b, v, 8);
    }
}

static void json_mp_int(json_buf_t *b, int64_t v)
{
    if (v >= 0) {
        json_mp_uint(b, (uint64_t) v);
        return;
    }
    if (v >= -32)
        json_buf_byte(b, (uint8_t) (int8_t) v);
    else if (v >= INT8_MIN) {
        json_buf_byte(b, 0xd0);
        json_buf_be(b, (uint64_t) v, 1);
    } else if (v >= INT16_MIN) {
        json_buf_byte(b, 0xd1);
        json_buf_be(b, (uint64_t) v, 2);
    } else if (v >= INT32_MIN) {
        json_buf_byte(b, 0xd2);
        json_buf_be(b, (uint64_t) v, 4);
    } else {
        json_buf_byte(b, 0xd3);
        json_buf_be(b, (uint64_t) v, 8);
    }
}

static void json_mp_float(json_buf_t *b, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, 8);
    json_buf_byte(b, 0xcb);
    json_buf_be(b, bits, 8);
}

/* Header of a str (bin = false) or bin of n bytes. */
static void json_mp_strhdr(json_buf_t *b, size_t n, bool bin)
{
    if (!bin && n < 32)
        json_buf_byte(b, (uint8_t) (0xa0 | n));
    else if (n <= 0xff) {
        json_buf_byte(b, bin ? 0xc4 : 0xd9);
        json_buf_be(b, n, 1);
    } else if (n <= 0xffff) {
        json_buf_byte(b, bin ? 0xc5 : 0xda);
        json_buf_be(b, n, 2);
    } else {
        json_buf_byte(b, bin ? 0xc6 : 0xdb);
        json_buf_be(b, n, 4);
    }
}

/* Replaces the 5-byte placeholder at `at` by the smallest header for a
   map (is_map) or array of n items, moving the contents down. */
static void json_mp_fix_container(json_buf_t *b, size_t at, uint32_t n,
                                  bool is_map)
{
    if (b->oom)
        return;
    uint8_t hdr[5];
    size_t hlen;
    if (n < 16) {
        hdr[0] = (uint8_t) ((is_map ? 0x80 : 0x90) | n);
        hlen = 1;
    } else if (n <= 0xffff) {
        hdr[0] = is_map ? 0xde : 0xdc;
        hdr[1] = (uint8_t) (n >> 8);
        hdr[2] = (uint8_t) n;
        hlen = 3;
    } else {
        hdr[0] = is_map ? 0xdf : 0xdd;
        for (int i = 0; i < 4; i++)
            hdr[1 + i] = (uint8_t) (n >> (24 - 8 * i));
        hlen = 5;
    }
    size_t body = b->len - (at + 5);
    memcpy(b->data + at, hdr, hlen);
    if (hlen < 5) {
        memmove(b->data + at + hlen, b->data + at + 5, body);
        b->len -= 5 - hlen;
    }
}

/* ------------------------------------------------------------------ */
/* JSON parsing                                                        */

typedef struct {
    const char *s;
    size_t      len;
    size_t      pos;
    json_buf_t  out;
    json_buf_t  tmp;        /* decoded string bytes */
    const msgtype_t *type;  /* for hex fields; NULL: none */
    json_err_t *err;
    int         rc;         /* first error */
} json_parser_t;

static int json_fail(json_parser_t *p, size_t at, int rc, const char *what)
{
    if (p->rc == 0) {
        p->rc = rc;
        if (p->err) {
            p->err->offset = at;
            snprintf(p->err->msg, sizeof p->err->msg, "offset %zu: %s", at,
                     what);
        }
    }
    return p->rc;
}

static void json_skip_ws(json_parser_t *p)
{
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static bool json_literal(json_parser_t *p, const char *word)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return false;
    p->pos += n;
    return true;
}

static int json_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads 4 hex digits at p->pos. */
static int json_read_u4(json_parser_t *p, uint32_t *cp)
{
    if (p->len - p->pos < 4)
        return json_fail(p, p->pos, SY_EINVAL, "truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = json_hexval(p->s[p->pos + (size_t) i]);
        if (h < 0)
            return json_fail(p, p->pos + (size_t) i, SY_EINVAL,
                             "bad hex digit in \\u escape");
        v = v << 4 | (uint32_t) h;
    }
    p->pos += 4;
    *cp = v;
    return 0;
}

static void json_put_utf8(json_buf_t *b, uint32_t cp)
{
    uint8_t u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (uint8_t) cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (uint8_t) (0xc0 | cp >> 6);
        u[1] = (uint8_t) (0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (uint8_t) (0xe0 | cp >> 12);
        u[1] = (uint8_t) (0x80 | ((cp >> 6) & 0x3f));
        u[2] = (uint8_t) (0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (uint8_t) (0xf0 | cp >> 18);
        u[1] = (uint8_t) (0x80 | ((cp >> 12) & 0x3f));
        u[2] = (uint8_t) (0x80 | ((cp >> 6) & 0x3f));
        u[3] = (uint8_t) (0x80 | (cp & 0x3f));
        n = 4;
    }
    json_buf_put(b, u, n);
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if invalid: its
   length from the lead byte, its validity by the message table's rule
   (msgtypes_utf8_valid: no overlong forms, surrogates or values above
   U+10FFFF), so JSON and bodies agree on what a string is. */
static size_t json_utf8_len(const uint8_t *s, size_t n)
{
    size_t need = s[0] < 0x80 ? 1 : s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
    return need <= n && msgtypes_utf8_valid(s, need) ? need : 0;
}

/* Parses a string at p->pos (on the opening quote) into p->tmp. */
static int json_parse_string_raw(json_parser_t *p)
{
    p->tmp.len = 0;
    p->pos++;   /* the quote */
    for (;;) {
        if (p->pos >= p->len)
            return json_fail(p, p->pos, SY_EINVAL, "unterminated string");
        uint8_t c = (uint8_t) p->s[p->pos];
        if (c == '"') {
            p->pos++;
            return 0;
        }
        if (c < 0x20)
            return json_fail(p, p->pos, SY_EINVAL,
                             "control character in string (escape it)");
        if (c != '\\') {
            size_t n = json_utf8_len((const uint8_t *) p->s + p->pos,
                                     p->len - p->pos);
            if (n == 0)
                return json_fail(p, p->pos, SY_EBAD_UTF8,
                                 "invalid UTF-8 in string");
            json_buf_put(&p->tmp, p->s + p->pos, n);
            p->pos += n;
            continue;
        }
        size_t esc_at = p->pos;
        p->pos++;
        if (p->pos >= p->len)
            return json_fail(p, esc_at, SY_EINVAL, "unterminated escape");
        char e = p->s[p->pos++];
        switch (e) {
        case '"':  json_buf_byte(&p->tmp, '"'); break;
        case '\\': json_buf_byte(&p->tmp, '\\'); break;
        case '/':  json_buf_byte(&p->tmp, '/'); break;
        case 'b':  json_buf_byte(&p->tmp, '\b'); break;
        case 'f':  json_buf_byte(&p->tmp, '\f'); break;
        case 'n':  json_buf_byte(&p->tmp, '\n'); break;
        case 'r':  json_buf_byte(&p->tmp, '\r'); break;
        case 't':  json_buf_byte(&p->tmp, '\t'); break;
        case 'u': {
            uint32_t cp;
            if (json_read_u4(p, &cp))
                return p->rc;
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return json_fail(p, esc_at, SY_EINVAL,
                                 "lone low surrogate in \\u escape");
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (p->len - p->pos < 2 || p->s[p->pos] != '\\'
                    || p->s[p->pos + 1] != 'u')
                    return json_fail(p, esc_at, SY_EINVAL,
                                     "high surrogate not followed by \\u low surrogate");
                size_t lo_at = p->pos;
                p->pos += 2;
                uint32_t lo;
                if (json_read_u4(p, &lo))
                    return p->rc;
                if (lo < 0xdc00 || lo > 0xdfff)
                    return json_fail(p, lo_at, SY_EINVAL,
                                     "high surrogate not followed by a low surrogate");
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            json_put_utf8(&p->tmp, cp);
            break;
        }
        default:
            return json_fail(p, esc_at, SY_EINVAL, "unknown escape");
        }
    }
}

/* Emits p->tmp as bin decoded from hex; `at` is the string's offset. */
static int json_emit_hex(json_parser_t *p, size_t at)
{
    const char *h = (const char *) p->tmp.data;
    size_t n = p->tmp.len;
    if (n % 2)
        return json_fail(p, at, SY_EINVAL, "hex string of odd length");
    for (size_t i = 0; i < n; i++)
        if (json_hexval(h[i]) < 0)
            return json_fail(p, at, SY_EINVAL, "not a hex string");
    json_mp_strhdr(&p->out, n / 2, true);
    for (size_t i = 0; i < n; i += 2)
        json_buf_byte(&p->out, (uint8_t) (json_hexval(h[i]) << 4
                                          | json_hexval(h[i + 1])));
    return 0;
}

static int json_parse_string(json_parser_t *p, bool as_hex)
{
    size_t at = p->pos;
    if (json_parse_string_raw(p))
        return p->rc;
    if (as_hex)
        return json_emit_hex(p, at);
    json_mp_strhdr(&p->out, p->tmp.len, false);
    json_buf_put(&p->out, p->tmp.data, p->tmp.len);
    return 0;
}

static int json_parse_number(json_parser_t *p)
{
    size_t start = p->pos, i = p->pos;
    const char *s = p->s;
    bool neg = false, is_float = false;
    if (i < p->len && s[i] == '-') {
        neg = true;
        i++;
    }
    if (i >= p->len || s[i] < '0' || s[i] > '9')
        return json_fail(p, i, SY_EINVAL, "digit expected");
    if (s[i] == '0') {
        i++;
        if (i < p->len && s[i] >= '0' && s[i] <= '9')
            return json_fail(p, i, SY_EINVAL, "leading zero in number");
    } else
        while (i < p->len && s[i] >= '0' && s[i] <= '9')
            i++;
    if (i < p->len && s[i] == '.') {
        is_float = true;
        i++;
        if (i >= p->len || s[i] < '0' || s[i] > '9')
            return json_fail(p, i, SY_EINVAL, "digit expected after '.'");
        while (i < p->len && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        is_float = true;
        i++;
        if (i < p->len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= p->len || s[i] < '0' || s[i] > '9')
            return json_fail(p, i, SY_EINVAL, "digit expected in exponent");
        while (i < p->len && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    p->pos = i;
    char num[400];
    size_t n = i - start;
    if (n >= sizeof num)
        return json_fail(p, start, SY_EINVAL, "number too long");
    memcpy(num, s + start, n);
    num[n] = 0;
    if (!is_float) {
        /* Exact integer when it fits 64 bits, float otherwise. */
        uint64_t mag = 0;
        bool overflow = false;
        for (size_t k = neg ? 1 : 0; k < n; k++) {
            uint64_t d = (uint64_t) (num[k] - '0');
            if (mag > (UINT64_MAX - d) / 10) {
                overflow = true;
                break;
            }
            mag = mag * 10 + d;
        }
        if (!overflow && !neg) {
            json_mp_uint(&p->out, mag);
            return 0;
        }
        if (!overflow && mag <= (uint64_t) INT64_MAX + 1) {
            json_mp_int(&p->out, mag == (uint64_t) INT64_MAX + 1
                                  ? INT64_MIN : -(int64_t) mag);
            return 0;
        }
    }
    double d = strtod(num, NULL);
    if (!isfinite(d))
        return json_fail(p, start, SY_EINVAL, "number out of range");
    json_mp_float(&p->out, d);
    return 0;
}

static int json_parse_value(json_parser_t *p, int depth, bool as_hex);

static int json_parse_array(json_parser_t *p, int depth)
{
    size_t at = p->out.len;
    json_buf_put(&p->out, "\0\0\0\0\0", 5);
    uint32_t n = 0;
    p->pos++;
    json_skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ']') {
        p->pos++;
        json_mp_fix_container(&p->out, at, 0, false);
        return 0;
    }
    for (;;) {
        if (json_parse_value(p, depth + 1, false))
            return p->rc;
        n++;
        json_skip_ws(p);
        if (p->pos >= p->len)
            return json_fail(p, p->pos, SY_EINVAL, "unterminated array");
        char c = p->s[p->pos++];
        if (c == ']')
            break;
        if (c != ',')
            return json_fail(p, p->pos - 1, SY_EINVAL,
                             "expected ',' or ']' in array");
    }
    json_mp_fix_container(&p->out, at, n, false);
    return 0;
}

/* True if member `key` of the top-level object carries a hex string. */
static bool json_key_is_hex(json_parser_t *p, int depth)
{
    if (depth != 0 || !p->type)
        return false;
    char key[80];
    if (p->tmp.len >= sizeof key)
        return false;
    memcpy(key, p->tmp.data ? (const char *) p->tmp.data : "", p->tmp.len);
    key[p->tmp.len] = 0;
    const msgfield_t *f = msgtypes_field(p->type, key);
    return f && (f->kind == MF_ID || f->kind == MF_BIN);
}

static int json_parse_object(json_parser_t *p, int depth)
{
    size_t at = p->out.len;
    json_buf_put(&p->out, "\0\0\0\0\0", 5);
    uint32_t n = 0;
    p->pos++;
    json_skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == '}') {
        p->pos++;
        json_mp_fix_container(&p->out, at, 0, true);
        return 0;
    }
    for (;;) {
        json_skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != '"')
            return json_fail(p, p->pos, SY_EINVAL,
                             "expected a string as object key");
        if (json_parse_string(p, false))
            return p->rc;
        bool hex = json_key_is_hex(p, depth);
        json_skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != ':')
            return json_fail(p, p->pos, SY_EINVAL,
                             "expected ':' after object key");
        p->pos++;
        if (json_parse_value(p, depth + 1, hex))
            return p->rc;
        n++;
        json_skip_ws(p);
        if (p->pos >= p->len)
            return json_fail(p, p->pos, SY_EINVAL, "unterminated object");
        char c = p->s[p->pos++];
        if (c == '}')
            break;
        if (c != ',')
            return json_fail(p, p->pos - 1, SY_EINVAL,
                             "expected ',' or '}' in object");
    }
    json_mp_fix_container(&p->out, at, n, true);
    return 0;
}

/* depth: nesting of this value (0 = top level).  as_hex: a string here
   is hex for a bin field. */
static int json_parse_value(json_parser_t *p, int depth, bool as_hex)
{
    json_skip_ws(p);
    if (p->pos >= p->len)
        return json_fail(p, p->pos, SY_EINVAL, "value expected");
    char c = p->s[p->pos];
    if ((c == '{' || c == '[') && depth >= JSON_MAX_DEPTH)
        return json_fail(p, p->pos, SY_EDEPTH, "nested too deep");
    switch (c) {
    case '{': return json_parse_object(p, depth);
    case '[': return json_parse_array(p, depth);
    case '"': return json_parse_string(p, as_hex);
    case 't':
        if (json_literal(p, "true")) {
            json_buf_byte(&p->out, 0xc3);
            return 0;
        }
        break;
    case 'f':
        if (json_literal(p, "false")) {
            json_buf_byte(&p->out, 0xc2);
            return 0;
        }
        break;
    case 'n':
        if (json_literal(p, "null")) {
            json_buf_byte(&p->out, 0xc0);
            return 0;
        }
        break;
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return json_parse_number(p);
    }
    return json_fail(p, p->pos, SY_EINVAL, "unexpected character");
}

int json_to_msgpack(const char *text, size_t len, const msgtype_t *t,
                    uint8_t **out, size_t *out_len, json_err_t *err)
{
    json_parser_t p = { .s = text, .len = len, .type = t, .err = err };
    *out = NULL;
    *out_len = 0;
    if (err) {
        err->offset = 0;
        err->msg[0] = 0;
    }
    if (!text)
        return json_fail(&p, 0, SY_EINVAL, "no text");
    int rc = json_parse_value(&p, 0, false);
    if (rc == 0) {
        json_skip_ws(&p);
        if (p.pos != p.len)
            rc = json_fail(&p, p.pos, SY_EINVAL,
                           "unexpected text after the value");
    }
    if (rc == 0 && (p.out.oom || p.tmp.oom))
        rc = json_fail(&p, 0, SY_ENOMEM, "out of memory");
    free(p.tmp.data);
    if (rc) {
        free(p.out.data);
        return rc;
    }
    *out = p.out.data;
    *out_len = p.out.len;
    return 0;
}

/* ------------------------------------------------------------------ */
/* msgpack -> JSON                                                     */

static void json_put_hex(json_buf_t *b, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    if (!json_buf_reserve(b, 2 * n))
        return;
    for (size_t i = 0; i < n; i++) {
        b->data[b->len++] = (uint8_t) digits[p[i] >> 4];
        b->data[b->len++] = (uint8_t) digits[p[i] & 15];
    }
}

static void json_put_quoted(json_buf_t *b, const uint8_t *s, size_t n)
{
    json_buf_byte(b, '"');
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            json_buf_byte(b, '\\');
            json_buf_byte(b, c);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            switch (c) {
            case '\n': json_buf_str(b, "\\n"); break;
            case '\r': json_buf_str(b, "\\r"); break;
            case '\t': json_buf_str(b, "\\t"); break;
            case '\b': json_buf_str(b, "\\b"); break;
            case '\f': json_buf_str(b, "\\f"); break;
            default:
                snprintf(esc, sizeof esc, "\\u%04x", c);
                json_buf_str(b, esc);
            }
            i++;
        } else {
            size_t k = json_utf8_len(s + i, n - i);
            if (k == 0) {
                json_buf_str(b, "\\ufffd");
                i++;
            } else {
                json_buf_put(b, s + i, k);
                i += k;
            }
        }
    }
    json_buf_byte(b, '"');
}

static void json_put_double(json_buf_t *b, double d)
{
    char tmp[40];
    if (!isfinite(d)) {
        json_buf_str(b, "null");
        return;
    }
    /* Shortest of 15 or 17 significant digits that reads back exactly. */
    snprintf(tmp, sizeof tmp, "%.15g", d);
    if (strtod(tmp, NULL) != d)
        snprintf(tmp, sizeof tmp, "%.17g", d);
    json_buf_str(b, tmp);
    /* Keep it a float when read back as JSON. */
    if (!strpbrk(tmp, ".eE"))
        json_buf_str(b, ".0");
}

static int json_print_value(mpread_t *r, json_buf_t *b, int depth);

static int json_print_scalar_or_container(mpread_t *r, const mpval_t *v,
                                          json_buf_t *b, int depth)
{
    char num[32];
    switch (v->kind) {
    case MP_NIL:  json_buf_str(b, "null"); return 0;
    case MP_BOOL: json_buf_str(b, v->b ? "true" : "false"); return 0;
    case MP_UINT:
        snprintf(num, sizeof num, "%llu", (unsigned long long) v->u);
        json_buf_str(b, num);
        return 0;
    case MP_INT:
        snprintf(num, sizeof num, "%lld", (long long) v->i);
        json_buf_str(b, num);
        return 0;
    case MP_FLOAT: json_put_double(b, v->f); return 0;
    case MP_STR:   json_put_quoted(b, v->ptr, v->len); return 0;
    case MP_BIN:
        json_buf_byte(b, '"');
        json_put_hex(b, v->ptr, v->len);
        json_buf_byte(b, '"');
        return 0;
    case MP_EXT:
        snprintf(num, sizeof num, "{\"ext\":%d,\"hex\":\"", v->ext_type);
        json_buf_str(b, num);
        json_put_hex(b, v->ptr, v->len);
        json_buf_str(b, "\"}");
        return 0;
    case MP_ARRAY:
        if (depth >= MPREAD_MAX_DEPTH)
            return SY_EDEPTH;
        json_buf_byte(b, '[');
        for (uint32_t i = 0; i < v->len; i++) {
            if (i)
                json_buf_byte(b, ',');
            int rc = json_print_value(r, b, depth + 1);
            if (rc)
                return rc;
        }
        json_buf_byte(b, ']');
        return 0;
    case MP_MAP:
        if (depth >= MPREAD_MAX_DEPTH)
            return SY_EDEPTH;
        json_buf_byte(b, '{');
        for (uint32_t i = 0; i < v->len; i++) {
            if (i)
                json_buf_byte(b, ',');
            mpval_t k;
            int rc = mpread_next(r, &k);
            if (rc)
                return rc;
            if (k.kind == MP_STR)
                json_put_quoted(b, k.ptr, k.len);
            else {
                /* Non-string key: its JSON text, as a string. */
                json_buf_t kb = { 0 };
                rc = json_print_scalar_or_container(r, &k, &kb, depth + 1);
                if (rc == 0 && kb.oom)
                    rc = SY_ENOMEM;
                if (rc == 0)
                    json_put_quoted(b, kb.data, kb.len);
                free(kb.data);
                if (rc)
                    return rc;
            }
            json_buf_byte(b, ':');
            rc = json_print_value(r, b, depth + 1);
            if (rc)
                return rc;
        }
        json_buf_byte(b, '}');
        return 0;
    }
    return SY_EFIELD_TYPE;
}

static int json_print_value(mpread_t *r, json_buf_t *b, int depth)
{
    mpval_t v;
    int rc = mpread_next(r, &v);
    if (rc)
        return rc;
    return json_print_scalar_or_container(r, &v, b, depth);
}

int json_from_msgpack(const uint8_t *buf, size_t len, char **out)
{
    *out = NULL;
    if (!buf && len)
        return SY_EINVAL;
    mpread_t r;
    mpread_init(&r, buf, len);
    json_buf_t b = { 0 };
    int rc = json_print_value(&r, &b, 0);
    if (rc == 0 && mpread_left(&r) != 0)
        rc = SY_ETRAILING;
    json_buf_byte(&b, 0);
    if (rc == 0 && b.oom)
        rc = SY_ENOMEM;
    if (rc) {
        free(b.data);
        return rc;
    }
    *out = (char *) b.data;
    return 0;
}
