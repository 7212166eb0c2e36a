/*  schemadoc.c -- sy-schema: prints the generated parts of docs/PROTOCOL.md.
 *
 *      sy-schema --markdown   the message-type section, from the table in
 *                             schemas/msgtypes.c
 *      sy-schema --hexdump    one real echo.request (header + body) as a
 *                             hex dump, and the header annotated byte by
 *                             byte
 *
 *  tools/gen-docs.sh pastes both outputs between the GENERATED markers of
 *  docs/PROTOCOL.md, and tests/unit/test_protocol_doc.c fails when the
 *  document no longer matches.  The example message uses a fixed id and
 *  time so that the output does not change between runs.
 */
#include "schemas/envelope.h"
#include "schemas/mpread.h"
#include "schemas/msgtypes.h"
#include "schemas/syerr.h"

#include <msgpack.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define SCHEMADOC_TS 1763754000123ULL   /* 2025-11-21T19:40:00.123Z */

typedef struct {
    uint8_t header[ENVELOPE_MAX_ENCODED];
    size_t  hlen;
    uint8_t body[64];
    size_t  blen;
} schemadoc_msg_t;

typedef struct {
    uint8_t *buf;
    size_t   cap, len;
} schemadoc_sink_t;

static int schemadoc_sink_write(void *data, const char *p, size_t n)
{
    schemadoc_sink_t *s = data;
    if (n > s->cap - s->len)
        return -1;
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return 0;
}

/* The example: what a client sends to the echo service. */
static int schemadoc_example(schemadoc_msg_t *m)
{
    envelope_t env;
    envelope_init(&env);
    uint64_t ms = SCHEMADOC_TS;
    for (int i = 5; i >= 0; i--, ms >>= 8)
        env.id[i] = (uint8_t)(ms & 0xff);
    static const uint8_t tail[10] = { 0x3f, 0x1c, 0x9a, 0x52, 0x07, 0xe4, 0xb1, 0x6d, 0x28, 0x01 };
    memcpy(env.id + 6, tail, sizeof tail);
    int rc = envelope_set_type(&env, "echo.request");
    if (!rc) rc = envelope_set_to(&env, "echo");
    if (rc)
        return rc;
    env.ts = SCHEMADOC_TS;
    env.ttl = 30000;
    env.present |= ENV_HAS_TS | ENV_HAS_TTL;
    int n = envelope_encode(&env, m->header, sizeof m->header);
    if (n < 0)
        return n;
    m->hlen = (size_t)n;

    schemadoc_sink_t sink = { m->body, sizeof m->body, 0 };
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sink, schemadoc_sink_write);
    rc = msgpack_pack_map(&pk, 2);
    if (!rc) rc = msgpack_pack_str_with_body(&pk, "seq", 3);
    if (!rc) rc = msgpack_pack_uint64(&pk, 1);
    if (!rc) rc = msgpack_pack_str_with_body(&pk, "data", 4);
    if (!rc) rc = msgpack_pack_str_with_body(&pk, "hi", 2);
    if (rc)
        return SY_ENOSPACE;
    m->blen = sink.len;
    const msgtype_t *t = msgtypes_find("echo.request", 12);
    return msgtypes_validate(t, m->body, m->blen, NULL, 0);
}

/* hexdump -C style: offset, 16 bytes in hex, ASCII. */
static void schemadoc_hex(const uint8_t *p, size_t n)
{
    for (size_t off = 0; off < n; off += 16) {
        printf("%08zx ", off);
        for (size_t i = 0; i < 16; i++) {
            if (i == 8)
                putchar(' ');
            if (off + i < n)
                printf(" %02x", p[off + i]);
            else
                printf("   ");
        }
        printf("  |");
        for (size_t i = 0; i < 16 && off + i < n; i++) {
            uint8_t c = p[off + i];
            putchar(c >= 0x20 && c < 0x7f ? c : '.');
        }
        printf("|\n");
    }
}

/* The msgpack format name of a type byte. */
static const char *schemadoc_format(uint8_t b)
{
    if (b <= 0x7f) return "positive fixint";
    if (b <= 0x8f) return "fixmap";
    if (b <= 0x9f) return "fixarray";
    if (b <= 0xbf) return "fixstr";
    if (b >= 0xe0) return "negative fixint";
    static const char *const tagged[32] = {
        "nil", "(never used)", "false", "true", "bin 8", "bin 16", "bin 32",
        "ext 8", "ext 16", "ext 32", "float 32", "float 64", "uint 8",
        "uint 16", "uint 32", "uint 64", "int 8", "int 16", "int 32", "int 64",
        "fixext 1", "fixext 2", "fixext 4", "fixext 8", "fixext 16", "str 8",
        "str 16", "str 32", "array 16", "array 32", "map 16", "map 32"
    };
    return tagged[b - 0xc0];
}

/* Prints n bytes from p, 8 to a line, the first line followed by what. */
static void schemadoc_bytes(size_t off, const uint8_t *p, size_t n, const char *what)
{
    for (size_t i = 0; i < n || i == 0; i += 8) {
        char hex[32] = "";
        size_t k = 0;
        for (size_t j = i; j < n && j < i + 8; j++)
            k += (size_t)snprintf(hex + k, sizeof hex - k, j > i ? " %02x" : "%02x", p[j]);
        if (i == 0)
            printf("%4zu  %-24s  %s\n", off + i, hex, what);
        else
            printf("%4zu  %s\n", off + i, hex);
        if (n == 0)
            break;
    }
}

/* What a header value means, for the annotation. */
static void schemadoc_meaning(const char *key, const mpval_t *v, char *out, size_t cap)
{
    if (!strcmp(key, "v")) {
        snprintf(out, cap, "protocol version %llu", (unsigned long long)v->u);
    } else if (!strcmp(key, "id") && v->kind == MP_BIN && v->len == 16) {
        uint64_t ms = 0;
        for (int i = 0; i < 6; i++)
            ms = ms << 8 | v->ptr[i];
        snprintf(out, cap, "id: 6 bytes ms %llu, then 10 random/counter bytes",
                 (unsigned long long)ms);
    } else if (!strcmp(key, "ts")) {
        time_t secs = (time_t)(v->u / 1000);
        struct tm tm;
        char when[32] = "?";
        if (gmtime_r(&secs, &tm))
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(out, cap, "ts = %llu ms since the epoch (%s.%03uZ)",
                 (unsigned long long)v->u, when, (unsigned)(v->u % 1000));
    } else if (!strcmp(key, "ttl")) {
        snprintf(out, cap, "ttl = %llu ms", (unsigned long long)v->u);
    } else if (v->kind == MP_STR) {
        snprintf(out, cap, "%s = \"%.*s\"", key, (int)v->len, (const char *)v->ptr);
    } else {
        snprintf(out, cap, "%s", key);
    }
}

static int schemadoc_annotate(const uint8_t *h, size_t n)
{
    mpread_t r;
    mpval_t m, k, v;
    char what[160], key[ENVELOPE_NAME_MAX + 1];
    mpread_init(&r, h, n);
    if (mpread_next(&r, &m) || m.kind != MP_MAP)
        return SY_EINVAL;
    snprintf(what, sizeof what, "%s: a map of %u pairs", schemadoc_format(h[0]), (unsigned)m.len);
    schemadoc_bytes(0, h, 1, what);
    for (uint32_t i = 0; i < m.len; i++) {
        const uint8_t *p = r.p;
        if (mpread_next(&r, &k) || k.kind != MP_STR || k.len > ENVELOPE_NAME_MAX)
            return SY_EINVAL;
        snprintf(key, sizeof key, "%.*s", (int)k.len, (const char *)k.ptr);
        snprintf(what, sizeof what, "%s, %u byte%s: key \"%s\"", schemadoc_format(*p),
                 (unsigned)k.len, k.len == 1 ? "" : "s", key);
        schemadoc_bytes((size_t)(p - h), p, (size_t)(r.p - p), what);
        p = r.p;
        if (mpread_next(&r, &v))
            return SY_EINVAL;
        size_t hdr = (size_t)(r.p - p) - ((v.kind == MP_STR || v.kind == MP_BIN) ? v.len : 0);
        char meaning[128];
        schemadoc_meaning(key, &v, meaning, sizeof meaning);
        if (v.kind == MP_STR || v.kind == MP_BIN) {
            snprintf(what, sizeof what, "%s, %u bytes follow", schemadoc_format(*p), (unsigned)v.len);
            schemadoc_bytes((size_t)(p - h), p, hdr, what);
            schemadoc_bytes((size_t)(p - h) + hdr, p + hdr, v.len, meaning);
        } else {
            snprintf(what, sizeof what, "%s: %s", schemadoc_format(*p), meaning);
            schemadoc_bytes((size_t)(p - h), p, (size_t)(r.p - p), what);
        }
    }
    return 0;
}

static int schemadoc_hexdump(void)
{
    schemadoc_msg_t m;
    int rc = schemadoc_example(&m);
    if (rc)
        return rc;
    printf("An `echo.request` from a client to the `echo` service, as the two\n"
           "frames leave the client's DEALER socket.  Frame 1, the header\n"
           "(%zu bytes):\n\n```\n", m.hlen);
    schemadoc_hex(m.header, m.hlen);
    printf("```\n\nFrame 2, the body `{\"seq\": 1, \"data\": \"hi\"}` (%zu bytes):\n\n```\n", m.blen);
    schemadoc_hex(m.body, m.blen);
    printf("```\n\nThe header, byte by byte (offsets in decimal):\n\n```\n"
           "off   bytes                     meaning\n");
    rc = schemadoc_annotate(m.header, m.hlen);
    printf("```\n\n");
    return rc;
}

static void schemadoc_usage(FILE *f)
{
    fprintf(f, "usage: sy-schema --markdown | --hexdump\n"
               "  --markdown  print the message-type section of docs/PROTOCOL.md\n"
               "  --hexdump   print an example message as hex, header annotated\n");
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--markdown"))
        return msgtypes_markdown(stdout) == 0 && fflush(stdout) == 0 ? 0 : 1;
    if (argc == 2 && !strcmp(argv[1], "--hexdump")) {
        int rc = schemadoc_hexdump();
        if (rc)
            fprintf(stderr, "sy-schema: %s\n", syerr_text(rc));
        return rc == 0 && fflush(stdout) == 0 ? 0 : 1;
    }
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        schemadoc_usage(stdout);
        return 0;
    }
    schemadoc_usage(stderr);
    return 2;
}
