/*  test_badinput.c -- hostile and broken input to the real sy-broker.
 *
 *  Every bad message must be answered with a clear error (a sy.receipt
 *  with ok false, the wire code and, where PROTOCOL.md fixes it, the
 *  detail code), never silence and never a crash: after each one the
 *  broker still routes a good request, and at the end it is still alive
 *  (and exits cleanly on SIGTERM, checked by harness_pass()).
 *
 *  Covered: NO_SERVICE (corr = the request's id); BAD_ENVELOPE for
 *  garbage, truncated msgpack, a header that is an array, wrong field
 *  types and ranges, unknown/duplicate keys, bad version, missing id, an
 *  unknown type, a missing `to`, one frame, three frames; DENIED /
 *  NOT_REGISTERED before sy.hello; TOO_LARGE over broker/max_msg (64K
 *  here); a frame over 4 x max_msg, which libzmq drops with the
 *  connection.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "hclient.h"
#include "hmp.h"
#include "schemas/syerr.h"

typedef struct {
    harness_t *h;
    hproc_t   *broker;
    hclient_t *c;
    uint64_t   seq;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (!f) return -1;
    f->h = harness_new("badinput");
    *state = f;
    return f->h ? 0 : -1;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    harness_destroy(&f->h);
    free(f);
    return 0;
}

/* Broker (max_msg 64K) + sy-echo + a client past hello. */
static void start(fixture_t *f)
{
    harness_set(f->h, "broker/max_msg", "64K");
    f->broker = harness_broker_start(f->h);
    harness_echo_start(f->h, "echo-1", "echo", 4, true);
    f->c = harness_client(f->h, "alice", NULL, 1);
}

/* The broker still routes: one echo round trip must work. */
static void good_request(fixture_t *f, const char *after)
{
    uint64_t seq = ++f->seq;
    hmsg_t m;
    int rc = hclient_request_echo(f->c, "echo", seq, "still ok", &m, 5000 * harness_slow());
    if (rc) fail_msg("after %s: a good request got no answer (%s); broker alive: %s",
                     after, syerr_name(rc), harness_alive(f->h, f->broker) ? "yes" : "NO");
    uint64_t got = 0;
    hmp_get_uint(m.body, m.body_len, "seq", &got);
    if (strcmp(m.hdr.type, "echo.reply") != 0 || got != seq) {
        hmsg_print("got: ", &m);
        hmsg_clear(&m);
        fail_msg("after %s: a good request was not answered with its echo.reply", after);
    }
    hmsg_clear(&m);
}

/* Waits for the receipt answering a bad message.  id: the id we put in
   it (NULL if none could be read); then corr, if present, must be it. */
static void expect_receipt(fixture_t *f, hclient_t *c, const char *what,
                           const uint8_t *id, const char *code,
                           const char *detail)
{
    hmsg_t m;
    int rc = hclient_recv(c, &m, 5000 * harness_slow());
    if (rc) fail_msg("%s: no answer at all within %d ms (%s): expected %s/%s",
                     what, 5000 * harness_slow(), syerr_name(rc), code,
                     detail ? detail : "*");
    char got_code[40], got_detail[40];
    if (!hmsg_receipt(&m, got_code, sizeof got_code, got_detail, sizeof got_detail)) {
        hmsg_print("got: ", &m);
        hmsg_clear(&m);
        fail_msg("%s: expected sy.receipt %s", what, code);
    }
    bool ok = true;
    bool has_ok = hmp_get_bool(m.body, m.body_len, "ok", &ok);
    char text[600];
    hmp_to_text(m.body, m.body_len, text, sizeof text);
    print_message("  %-28s -> %s\n", what, text);
    bool corr_ok = !(m.hdr.present & ENV_HAS_CORR)
                || (id && memcmp(m.hdr.corr, id, 16) == 0);
    bool corr_needed = id && (strcmp(code, "BAD_ENVELOPE") != 0);
    bool corr_there = (m.hdr.present & ENV_HAS_CORR) != 0;
    hmsg_clear(&m);
    if (!has_ok || ok) fail_msg("%s: receipt must have ok:false: %s", what, text);
    if (strcmp(got_code, code) != 0)
        fail_msg("%s: code %s, expected %s: %s", what, got_code, code, text);
    if (detail && strcmp(got_detail, detail) != 0)
        fail_msg("%s: detail %s, expected %s: %s", what, got_detail, detail, text);
    if (!corr_ok) fail_msg("%s: receipt's corr is not the id of the bad message", what);
    if (corr_needed && !corr_there)
        fail_msg("%s: receipt without corr (must be the request's id)", what);
    (void)f;
}

/* --------------------------------------------------------- header makers */

static void pk_bin(hmp_buf_t *b, const uint8_t *p, size_t n)
{
    msgpack_pack_bin(&b->pk, n);
    msgpack_pack_bin_body(&b->pk, p, n);
}

/* The valid header fields, in order; a case replaces or adds one. */
enum { H_OK, H_TYPE_INT, H_ID15, H_PRIO7, H_TTL_STR, H_UNKNOWN_KEY,
       H_DUP_KEY, H_V2, H_NO_ID, H_UNKNOWN_TYPE, H_NO_TO, H_FROM_INT };

static void pack_header(hmp_buf_t *b, int variant, const uint8_t id[16])
{
    int n = 4;                                  /* v, id, type, to */
    if (variant == H_PRIO7 || variant == H_TTL_STR || variant == H_UNKNOWN_KEY
        || variant == H_DUP_KEY || variant == H_FROM_INT) n++;
    if (variant == H_NO_ID || variant == H_NO_TO) n--;
    msgpack_pack_map(&b->pk, (size_t)n);
    hmp_str(b, "v");
    msgpack_pack_uint32(&b->pk, variant == H_V2 ? 2 : 1);
    if (variant != H_NO_ID) {
        hmp_str(b, "id");
        pk_bin(b, id, variant == H_ID15 ? 15 : 16);
    }
    hmp_str(b, "type");
    if (variant == H_TYPE_INT) msgpack_pack_uint32(&b->pk, 7);
    else hmp_str(b, variant == H_UNKNOWN_TYPE ? "no.such.type" : "echo.request");
    if (variant != H_NO_TO) { hmp_str(b, "to"); hmp_str(b, "echo"); }
    if (variant == H_PRIO7) { hmp_str(b, "prio"); msgpack_pack_uint32(&b->pk, 7); }
    if (variant == H_TTL_STR) { hmp_str(b, "ttl"); hmp_str(b, "1000"); }
    if (variant == H_UNKNOWN_KEY) { hmp_str(b, "zz"); msgpack_pack_uint32(&b->pk, 1); }
    if (variant == H_DUP_KEY) { hmp_str(b, "to"); hmp_str(b, "echo"); }
    if (variant == H_FROM_INT) { hmp_str(b, "from"); msgpack_pack_int32(&b->pk, -1); }
}

/* Sends header bytes + a valid echo.request body. */
static void send_with_body(hclient_t *c, const void *hdr, size_t hlen)
{
    hmp_buf_t body;
    hmp_buf_init(&body);
    hmp_echo_request(&body, 999, "bad", -1);
    hframe_t fr[2] = { { hdr, hlen }, { body.sb.data, body.sb.size } };
    assert_int_equal(hclient_send_frames(c, fr, 2), 0);
    hmp_buf_clear(&body);
}

/* ------------------------------------------------------------------ tests */

static void test_no_service(void **state)
{
    fixture_t *f = *state;
    start(f);
    hsend_t s = { .to = "nosuch" };
    uint8_t id[16];
    assert_int_equal(hclient_send_echo(f->c, &s, 1, "x", -1, id), 0);
    expect_receipt(f, f->c, "to an unknown service", id, "NO_SERVICE", NULL);
    good_request(f, "NO_SERVICE");
    harness_pass(f->h);
}

static void test_bad_headers(void **state)
{
    fixture_t *f = *state;
    start(f);
    good_request(f, "start");
    static const struct {
        const char *what;
        int variant;
        const char *detail;     /* NULL: any detail */
    } cases[] = {
        { "type as int",            H_TYPE_INT,     "FIELD_TYPE" },
        { "id of 15 bytes",         H_ID15,         "FIELD_RANGE" },
        { "prio 7",                 H_PRIO7,        "FIELD_RANGE" },
        { "ttl as string",          H_TTL_STR,      "FIELD_TYPE" },
        { "unknown header key",     H_UNKNOWN_KEY,  "UNKNOWN_FIELD" },
        { "duplicate header key",   H_DUP_KEY,      "DUP_FIELD" },
        { "version 2",              H_V2,           "VERSION" },
        { "no id",                  H_NO_ID,        "MISSING" },
        { "type not in the table",  H_UNKNOWN_TYPE, "UNKNOWN_TYPE" },
        { "no `to`",                H_NO_TO,        "MISSING" },
        { "from as int",            H_FROM_INT,     "FIELD_TYPE" },
    };
    uint8_t id[16];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hclient_new_id(f->c, id);
        hmp_buf_t h;
        hmp_buf_init(&h);
        pack_header(&h, cases[i].variant, id);
        send_with_body(f->c, h.sb.data, h.sb.size);
        hmp_buf_clear(&h);
        expect_receipt(f, f->c, cases[i].what, id, "BAD_ENVELOPE", cases[i].detail);
        good_request(f, cases[i].what);
    }

    /* Not msgpack at all. */
    static const uint8_t garbage[] = { 0xc1, 0xff, 0x00, 'g', 'a', 'r', 'b', 'a', 'g', 'e' };
    send_with_body(f->c, garbage, sizeof garbage);
    expect_receipt(f, f->c, "garbage bytes", NULL, "BAD_ENVELOPE", NULL);
    good_request(f, "garbage bytes");

    /* An empty header frame. */
    send_with_body(f->c, "", 0);
    expect_receipt(f, f->c, "empty header frame", NULL, "BAD_ENVELOPE", NULL);
    good_request(f, "empty header frame");

    /* A valid header cut short. */
    hclient_new_id(f->c, id);
    hmp_buf_t h;
    hmp_buf_init(&h);
    pack_header(&h, H_OK, id);
    assert_true(h.sb.size > 8);
    send_with_body(f->c, h.sb.data, h.sb.size - 5);
    expect_receipt(f, f->c, "truncated msgpack", id, "BAD_ENVELOPE", "TRUNCATED");
    good_request(f, "truncated msgpack");
    /* ... and the same header followed by junk. */
    char *tail = malloc(h.sb.size + 3);
    assert_non_null(tail);
    memcpy(tail, h.sb.data, h.sb.size);
    memcpy(tail + h.sb.size, "\x01\x02\x03", 3);
    send_with_body(f->c, tail, h.sb.size + 3);
    free(tail);
    hmp_buf_clear(&h);
    expect_receipt(f, f->c, "trailing bytes", id, "BAD_ENVELOPE", "TRAILING");
    good_request(f, "trailing bytes");

    /* A header that is a msgpack array of sensible values. */
    hmp_buf_init(&h);
    msgpack_pack_array(&h.pk, 3);
    msgpack_pack_uint32(&h.pk, 1);
    pk_bin(&h, id, 16);
    hmp_str(&h, "echo.request");
    send_with_body(f->c, h.sb.data, h.sb.size);
    hmp_buf_clear(&h);
    expect_receipt(f, f->c, "header is an array", NULL, "BAD_ENVELOPE", "NOT_MAP");
    good_request(f, "header is an array");

    /* A map claiming 2^32-1 pairs in 5 bytes: must not allocate. */
    static const uint8_t huge_map[] = { 0xdf, 0xff, 0xff, 0xff, 0xff };
    send_with_body(f->c, huge_map, sizeof huge_map);
    expect_receipt(f, f->c, "map claiming 4G pairs", NULL, "BAD_ENVELOPE", NULL);
    good_request(f, "map claiming 4G pairs");

    assert_true(harness_alive(f->h, f->broker));
    harness_pass(f->h);
}

static void test_frame_counts(void **state)
{
    fixture_t *f = *state;
    start(f);
    uint8_t id[16];
    hmp_buf_t h, body;
    hmp_buf_init(&body);
    hmp_echo_request(&body, 5, "frames", -1);

    hclient_new_id(f->c, id);
    hmp_buf_init(&h);
    pack_header(&h, H_OK, id);
    hframe_t one[1] = { { h.sb.data, h.sb.size } };
    assert_int_equal(hclient_send_frames(f->c, one, 1), 0);
    hmp_buf_clear(&h);
    expect_receipt(f, f->c, "one frame", id, "BAD_ENVELOPE", "FRAMES");
    good_request(f, "one frame");

    hclient_new_id(f->c, id);
    hmp_buf_init(&h);
    pack_header(&h, H_OK, id);
    hframe_t three[3] = { { h.sb.data, h.sb.size }, { body.sb.data, body.sb.size },
                          { body.sb.data, body.sb.size } };
    assert_int_equal(hclient_send_frames(f->c, three, 3), 0);
    hmp_buf_clear(&h);
    expect_receipt(f, f->c, "three frames", id, "BAD_ENVELOPE", "FRAMES");
    good_request(f, "three frames");

    /* One frame of garbage: the count is checked whatever the content. */
    hframe_t junk[1] = { { "\x00\x01\x02", 3 } };
    assert_int_equal(hclient_send_frames(f->c, junk, 1), 0);
    expect_receipt(f, f->c, "one garbage frame", NULL, "BAD_ENVELOPE", NULL);
    good_request(f, "one garbage frame");

    hmp_buf_clear(&body);
    assert_true(harness_alive(f->h, f->broker));
    harness_pass(f->h);
}

static void test_before_hello(void **state)
{
    fixture_t *f = *state;
    start(f);
    hclient_t *early = harness_client_raw(f->h, "early");
    hsend_t s = { .to = "echo" };
    uint8_t id[16];
    assert_int_equal(hclient_send_echo(early, &s, 1, "too early", -1, id), 0);
    expect_receipt(f, early, "request before sy.hello", id, "DENIED", "NOT_REGISTERED");

    /* It was not delivered: echo-1 must not have answered anyone. */
    hmsg_t m;
    if (hclient_recv(early, &m, 300) == 0) {
        hmsg_print("early got: ", &m);
        hmsg_clear(&m);
        fail_msg("a peer that never said hello got a message after DENIED");
    }
    good_request(f, "request before hello");

    /* After hello the same connection works. */
    assert_int_equal(hclient_hello(early, NULL, 1, 5000 * harness_slow()), 0);
    int rc = hclient_request_echo(early, "echo", 2, "now", &m, 5000 * harness_slow());
    if (rc) fail_msg("after hello, no answer: %s", syerr_name(rc));
    assert_string_equal(m.hdr.type, "echo.reply");
    hmsg_clear(&m);
    harness_pass(f->h);
}

/* echo.request with a pad of n bytes. */
static void pack_padded(hmp_buf_t *b, uint64_t seq, size_t n)
{
    uint8_t *pad = calloc(1, n ? n : 1);
    assert_non_null(pad);
    for (size_t i = 0; i < n; i++) pad[i] = (uint8_t)(i * 7);
    msgpack_pack_map(&b->pk, 2);
    hmp_str(b, "seq");
    msgpack_pack_uint64(&b->pk, seq);
    hmp_str(b, "pad");
    pk_bin(b, pad, n);
    free(pad);
}

static void test_too_large(void **state)
{
    fixture_t *f = *state;
    start(f);
    int slow = harness_slow();
    if (hclient_max_msg(f->c) != 64 * 1024)
        fail_msg("sy.welcome says max_msg %llu, the config says 64K (65536)",
                 (unsigned long long)hclient_max_msg(f->c));

    /* Below the limit: goes through, pad comes back intact. */
    hmp_buf_t b;
    hmp_buf_init(&b);
    pack_padded(&b, 1, 60000);
    hmsg_t m;
    int rc = hclient_request(f->c, "echo", "echo.request", (const uint8_t *)b.sb.data,
                             b.sb.size, &m, 5000 * slow);
    hmp_buf_clear(&b);
    if (rc) fail_msg("a 60000-byte request (under 64K) got no answer: %s", syerr_name(rc));
    mpval_t pad;
    if (strcmp(m.hdr.type, "echo.reply") != 0
        || hmp_get(m.body, m.body_len, "pad", &pad) != 0 || pad.kind != MP_BIN
        || pad.len != 60000 || pad.ptr[59999] != (uint8_t)(59999 * 7)) {
        hmsg_print("got: ", &m);
        hmsg_clear(&m);
        fail_msg("the 60000-byte request was not echoed intact");
    }
    hmsg_clear(&m);

    /* Over the limit (but under 4 x max_msg): TOO_LARGE, corr = id. */
    hmp_buf_init(&b);
    pack_padded(&b, 2, 100000);
    hsend_t s = { .type = "echo.request", .to = "echo" };
    uint8_t id[16];
    assert_int_equal(hclient_send(f->c, &s, (const uint8_t *)b.sb.data, b.sb.size, id), 0);
    hmp_buf_clear(&b);
    expect_receipt(f, f->c, "100000-byte body", id, "TOO_LARGE", NULL);
    good_request(f, "TOO_LARGE");

    /* A frame over 4 x max_msg: libzmq drops it and that connection; the
       broker stays up and keeps serving everyone else. */
    hclient_t *big = harness_client(f->h, "big", NULL, 1);
    hmp_buf_init(&b);
    pack_padded(&b, 3, 300000);
    assert_int_equal(hclient_send(big, &s, (const uint8_t *)b.sb.data, b.sb.size, id), 0);
    hmp_buf_clear(&b);
    /* The connection is gone; the DEALER reconnects by itself and its
       pings are then refused NOT_REGISTERED, as they should be.  Only an
       answer to the big message itself matters: if there is one, it must
       be a refusal. */
    /* Not scaled: alice idles meanwhile and must stay within liveness. */
    if (hclient_recv_corr(big, id, &m, 1000) == 0) {
        char code[40], detail[40];
        bool is_receipt = hmsg_receipt(&m, code, sizeof code, detail, sizeof detail);
        hmsg_print("oversize answer: ", &m);
        hmsg_clear(&m);
        if (!is_receipt || strcmp(code, "TOO_LARGE") != 0)
            fail_msg("a 300000-byte frame was answered, but not with TOO_LARGE");
    }
    assert_true(harness_alive(f->h, f->broker));
    good_request(f, "a frame over 4 x max_msg");
    harness_pass(f->h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_service, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frame_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_before_hello, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_large, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
