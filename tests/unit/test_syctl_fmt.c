/*  test_syctl_fmt.c -- syctl's parsing and printing without a broker
 *  (tools/syctl_fmt.c), and the receipt reader of the runtime
 *  (actor_receipt_parse), which syctl's receipt lines are built from.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/actor.h"
#include "schemas/envelope.h"
#include "schemas/syerr.h"
#include "tools/syctl_fmt.h"

/* ------------------------------------------------------------ helpers */

static void pk_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* Runs a printer into memory and returns its output (caller frees). */
typedef int (printer_fn)(FILE *f, const uint8_t *data, size_t len);

static char *capture(printer_fn *fn, const msgpack_sbuffer *sb, int *rc)
{
    char *out = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&out, &n);
    assert_non_null(f);
    *rc = fn(f, (const uint8_t *) sb->data, sb->size);
    fclose(f);
    return out;
}

/* A receipt message with the given body fields (NULL: left out). */
static void receipt_msg(msgpack_sbuffer *sb, actor_msg_t *m, bool ok,
                        const uint8_t *id, const char *code, const char *msg)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1 + (id != NULL) + (code != NULL) + (msg != NULL));
    pk_str(&pk, "ok");
    if (ok)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
    if (id) {
        pk_str(&pk, "id");
        msgpack_pack_bin_with_body(&pk, id, 16);
    }
    if (code) {
        pk_str(&pk, "code");
        pk_str(&pk, code);
    }
    if (msg) {
        pk_str(&pk, "msg");
        pk_str(&pk, msg);
    }
    memset(m, 0, sizeof *m);
    envelope_init(&m->hdr);
    envelope_set_type(&m->hdr, "sy.receipt");
    m->body = (const uint8_t *) sb->data;
    m->body_len = sb->size;
}

/* ------------------------------------------------------------ parsing */

static void test_parse_prio(void **state)
{
    (void) state;
    static const struct { const char *s; int want; } cases[] = {
        { "high", ENVELOPE_PRIO_HIGH }, { "normal", ENVELOPE_PRIO_NORMAL },
        { "low", ENVELOPE_PRIO_LOW }, { "0", 0 }, { "2", 2 },
        { "HIGH", -1 }, { "3", -1 }, { "", -1 }, { "hi", -1 },
        { "lowest", -1 }, { "-1", -1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t p = 99;
        int rc = syctl_fmt_parse_prio(cases[i].s, &p);
        if (cases[i].want < 0) {
            if (rc != SY_EINVAL)
                fail_msg("prio '%s' accepted", cases[i].s);
            assert_int_equal(p, 99);
        } else {
            if (rc != 0)
                fail_msg("prio '%s' refused", cases[i].s);
            assert_int_equal(p, cases[i].want);
        }
    }
    assert_int_equal(syctl_fmt_parse_prio(NULL, NULL), SY_EINVAL);
}

static void test_parse_ttl(void **state)
{
    (void) state;
    static const struct { const char *s; uint64_t want; } good[] = {
        { "90", 90000 }, { "1", 1000 }, { "0.5", 500 }, { "250ms", 250 },
        { "10m", 600000 }, { "2h", 7200000 }, { "1d", 86400000 },
        { "30d", 30ULL * 86400000 }, { "1ms", 1 }, { "1.5h", 5400000 },
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t ms = 0;
        if (syctl_fmt_parse_ttl(good[i].s, &ms) != 0)
            fail_msg("ttl '%s' refused", good[i].s);
        if (ms != good[i].want)
            fail_msg("ttl '%s' = %llu ms, want %llu", good[i].s,
                     (unsigned long long) ms, (unsigned long long) good[i].want);
    }
    static const char *const bad[] = {
        "", "0", "-5", "31d", "2592000001ms", "5x", "s", "1 s", " 1", "nan",
        "inf", "1e400", "0.0001", "+3",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t ms = 7;
        if (syctl_fmt_parse_ttl(bad[i], &ms) == 0)
            fail_msg("ttl '%s' accepted as %llu ms", bad[i],
                     (unsigned long long) ms);
        assert_int_equal(ms, 7);
    }
}

static void test_parse_duration(void **state)
{
    (void) state;
    int ms = 0;
    assert_int_equal(syctl_fmt_parse_duration("500", &ms), 0);
    assert_int_equal(ms, 500);     /* a bare --timeout is ms, not s */
    assert_int_equal(syctl_fmt_parse_duration("5s", &ms), 0);
    assert_int_equal(ms, 5000);
    assert_int_equal(syctl_fmt_parse_duration("1m", &ms), 0);
    assert_int_equal(ms, 60000);
    assert_int_equal(syctl_fmt_parse_duration("25h", &ms), SY_EINVAL);
    assert_int_equal(syctl_fmt_parse_duration("1d", &ms), SY_EINVAL);
    assert_int_equal(syctl_fmt_parse_duration("0", &ms), SY_EINVAL);
    assert_int_equal(syctl_fmt_parse_duration("fast", &ms), SY_EINVAL);
}

static void test_age(void **state)
{
    (void) state;
    static const struct { uint64_t ms; const char *want; } cases[] = {
        { 0, "0ms" }, { 850, "850ms" }, { 999, "999ms" }, { 1000, "1s" },
        { 3999, "3s" }, { 59999, "59s" }, { 60000, "1m" }, { 300000, "5m" },
        { 3599999, "59m" }, { 3600000, "1h" }, { 7200000, "2h" },
        { 100ULL * 3600000, "100h" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[32];
        syctl_fmt_age(cases[i].ms, out, sizeof out);
        assert_string_equal(out, cases[i].want);
    }
}

/* ------------------------------------------------------------ receipts */

static const uint8_t id1[16] = { 0x01, 0x9a, 0xa7, 0xee, 0x3e, 0xfb, 0x3f,
                                 0x1c, 0x9a, 0x52, 0x07, 0xe4, 0xb1, 0x6d,
                                 0x28, 0x01 };
#define ID1_HEX "019aa7ee3efb3f1c9a5207e4b16d2801"

static void test_receipt_parse(void **state)
{
    (void) state;
    msgpack_sbuffer sb;
    actor_msg_t m;
    actor_receipt_t r;

    receipt_msg(&sb, &m, true, id1, NULL, NULL);
    memcpy(m.hdr.corr, id1, 16);
    m.hdr.present |= ENV_HAS_CORR;
    assert_int_equal(actor_receipt_parse(&m, &r), 0);
    assert_true(r.ok);
    assert_true(r.has_id);
    assert_true(r.has_corr);
    assert_memory_equal(r.id, id1, 16);
    assert_int_equal(r.code, 0);
    msgpack_sbuffer_destroy(&sb);

    receipt_msg(&sb, &m, false, id1, "DUPLICATE", "seen");
    assert_int_equal(actor_receipt_parse(&m, &r), 0);
    assert_false(r.ok);
    assert_false(r.has_corr);
    assert_int_equal(r.code, SY_EDUPLICATE);
    assert_string_equal(r.code_name, "DUPLICATE");
    assert_string_equal(r.msg, "seen");
    msgpack_sbuffer_destroy(&sb);

    /* a code this client does not know is still a failure */
    receipt_msg(&sb, &m, false, NULL, "NEW_CODE_FROM_FUTURE", NULL);
    assert_int_equal(actor_receipt_parse(&m, &r), 0);
    assert_int_equal(r.code, SY_EINTERNAL);
    assert_false(r.has_id);
    msgpack_sbuffer_destroy(&sb);

    /* not a receipt; a body without ok */
    receipt_msg(&sb, &m, true, NULL, NULL, NULL);
    envelope_set_type(&m.hdr, "sy.answer");
    assert_int_equal(actor_receipt_parse(&m, &r), SY_EINVAL);
    msgpack_sbuffer_destroy(&sb);
    static const uint8_t no_ok[] = { 0x81, 0xa4, 'c', 'o', 'd', 'e', 0xa1, 'X' };
    envelope_set_type(&m.hdr, "sy.receipt");
    m.body = no_ok;
    m.body_len = sizeof no_ok;
    assert_int_equal(actor_receipt_parse(&m, &r), SY_EBAD_BODY);
}

static void test_receipt_lines(void **state)
{
    (void) state;
    actor_receipt_t ok = { .ok = true, .has_id = true };
    memcpy(ok.id, id1, 16);
    actor_receipt_t dup = { .ok = false, .has_id = true, .code = SY_EDUPLICATE,
                            .code_name = "DUPLICATE" };
    memcpy(dup.id, id1, 16);
    actor_receipt_t full = { .ok = false, .code = SY_EQUEUE_FULL,
                             .code_name = "QUEUE_FULL",
                             .msg = "store \"full\"\n" };
    actor_receipt_t bare = { .ok = false, .code = SY_EQUEUE_FULL,
                             .code_name = "QUEUE_FULL" };
    char line[300];

    syctl_fmt_receipt_text(&ok, -1, line, sizeof line);
    assert_string_equal(line, "id " ID1_HEX);
    syctl_fmt_receipt_text(&ok, 42, line, sizeof line);
    assert_string_equal(line, "seq 42 id " ID1_HEX);
    syctl_fmt_receipt_text(&dup, -1, line, sizeof line);
    assert_string_equal(line, "DUPLICATE " ID1_HEX);
    syctl_fmt_receipt_text(&full, 0, line, sizeof line);
    assert_string_equal(line, "seq 0 QUEUE_FULL: store \"full\"\n");
    syctl_fmt_receipt_text(&bare, -1, line, sizeof line);
    char want[200];
    snprintf(want, sizeof want, "QUEUE_FULL: %s", syerr_text(SY_EQUEUE_FULL));
    assert_string_equal(line, want);

    assert_int_equal(syctl_fmt_receipt_exit(&ok), SYCTL_OK);
    assert_int_equal(syctl_fmt_receipt_exit(&dup), SYCTL_EDUPLICATE);
    assert_int_equal(syctl_fmt_receipt_exit(&full), SYCTL_EREMOTE);

    syctl_fmt_receipt_json(&ok, -1, line, sizeof line);
    assert_string_equal(line, "{\"ok\":true,\"id\":\"" ID1_HEX "\"}");
    syctl_fmt_receipt_json(&dup, 7, line, sizeof line);
    assert_string_equal(line, "{\"seq\":7,\"ok\":false,\"code\":\"DUPLICATE\","
                              "\"id\":\"" ID1_HEX "\"}");
    syctl_fmt_receipt_json(&full, -1, line, sizeof line);
    assert_string_equal(line, "{\"ok\":false,\"code\":\"QUEUE_FULL\","
                              "\"msg\":\"store \\\"full\\\"\\u000a\"}");

    /* a small buffer truncates, never overflows, and stays terminated */
    char tiny[12];
    memset(tiny, 'x', sizeof tiny);
    syctl_fmt_receipt_json(&full, 123456, tiny, sizeof tiny);
    assert_true(memchr(tiny, 0, sizeof tiny) != NULL);
    syctl_fmt_receipt_text(&full, 123456, tiny, sizeof tiny);
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
}

/* ------------------------------------------------------------ tables */

static void pack_queue(msgpack_packer *pk, const char *service,
                       const uint64_t ready[3], uint64_t dead,
                       uint64_t oldest)
{
    msgpack_pack_map(pk, 6);
    pk_str(pk, "service");
    pk_str(pk, service);
    pk_str(pk, "ready");
    msgpack_pack_array(pk, 3);
    for (int i = 0; i < 3; i++)
        msgpack_pack_uint64(pk, ready[i]);
    pk_str(pk, "delayed");
    msgpack_pack_uint64(pk, 4);
    pk_str(pk, "inflight");
    msgpack_pack_uint64(pk, 5);
    pk_str(pk, "dead");
    msgpack_pack_uint64(pk, dead);
    pk_str(pk, "oldest_ms");
    msgpack_pack_uint64(pk, oldest);
}

/* The line of out whose first word is word, or NULL. */
static const char *line_of(const char *out, const char *word)
{
    for (const char *l = out; l && *l; ) {
        if (strncmp(l, word, strlen(word)) == 0 && l[strlen(word)] == ' ')
            return l;
        l = strchr(l, '\n');
        if (l)
            l++;
    }
    return NULL;
}

static void test_queues_table(void **state)
{
    (void) state;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    const uint64_t r1[3] = { 1, 22, 333 }, r2[3] = { 0, 7, 0 };
    pack_queue(&pk, "inference", r1, 9, 7200000);
    pack_queue(&pk, "a-much-longer-service-name", r2, 0, 3000);
    int rc;
    char *out = capture(syctl_fmt_queues, &sb, &rc);
    assert_int_equal(rc, 0);
    const char *hdr = line_of(out, "SERVICE");
    const char *l1 = line_of(out, "inference");
    const char *l2 = line_of(out, "a-much-longer-service-name");
    if (!hdr || !l1 || !l2)
        fail_msg("rows missing:\n%s", out);
    /* columns line up: HIGH starts where the first row's high count does */
    size_t col = (size_t) (strstr(hdr, "HIGH") - hdr);
    assert_true(col > strlen("a-much-longer-service-name"));
    assert_int_equal(l1[col], '1');
    assert_int_equal(l2[col], '0');
    char want[256];
    /* the last cell is the age of the oldest */
    const char *eol = strchr(l1, '\n');
    snprintf(want, sizeof want, "%.*s", (int) (eol - l1), l1);
    assert_non_null(strstr(want, " 22 "));
    assert_non_null(strstr(want, " 333 "));
    assert_true(strlen(want) > 3 && strcmp(want + strlen(want) - 3, " 2h") == 0);
    free(out);
    msgpack_sbuffer_destroy(&sb);

    /* empty list: one sentence */
    msgpack_sbuffer_init(&sb);
    msgpack_pack_array(&pk, 0);
    out = capture(syctl_fmt_queues, &sb, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "no durable queues\n");
    free(out);
    msgpack_sbuffer_destroy(&sb);

    /* not an array; truncated */
    msgpack_sbuffer_init(&sb);
    msgpack_pack_map(&pk, 0);
    out = capture(syctl_fmt_queues, &sb, &rc);
    assert_int_equal(rc, SY_EFIELD_TYPE);
    free(out);
    msgpack_sbuffer_destroy(&sb);
    static const uint8_t cut[] = { 0x91, 0x82, 0xa7, 's', 'e', 'r' };
    msgpack_sbuffer_init(&sb);
    msgpack_sbuffer_write(&sb, (const char *) cut, sizeof cut);
    out = capture(syctl_fmt_queues, &sb, &rc);
    assert_true(rc < 0);
    free(out);
    msgpack_sbuffer_destroy(&sb);
}

static int print_peek(FILE *f, const uint8_t *d, size_t n)
{
    return syctl_fmt_peek(f, d, n, "echo");
}

static int print_inflight(FILE *f, const uint8_t *d, size_t n)
{
    return syctl_fmt_inflight(f, d, n, "echo");
}

static void test_peek_inflight_dlq(void **state)
{
    (void) state;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    int rc;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 5);       /* "from" and "key" left out */
    pk_str(&pk, "id");
    msgpack_pack_bin_with_body(&pk, id1, 16);
    pk_str(&pk, "prio");
    msgpack_pack_uint64(&pk, 0);
    pk_str(&pk, "attempt");
    msgpack_pack_uint64(&pk, 2);
    pk_str(&pk, "age_ms");
    msgpack_pack_uint64(&pk, 300000);
    pk_str(&pk, "type");
    pk_str(&pk, "chat.request");
    char *out = capture(print_peek, &sb, &rc);
    assert_int_equal(rc, 0);
    const char *row = line_of(out, ID1_HEX);
    if (!row)
        fail_msg("no row for the id:\n%s", out);
    assert_non_null(strstr(row, "high"));
    assert_non_null(strstr(row, " 5m "));
    assert_non_null(strstr(row, "chat.request"));
    assert_non_null(strstr(row, " - "));     /* absent fields */
    free(out);
    msgpack_sbuffer_destroy(&sb);

    msgpack_sbuffer_init(&sb);
    msgpack_pack_array(&pk, 0);
    out = capture(print_peek, &sb, &rc);
    assert_string_equal(out, "queue echo: nothing waiting\n");
    free(out);
    out = capture(print_inflight, &sb, &rc);
    assert_string_equal(out, "queue echo: nothing in flight\n");
    free(out);
    out = capture(syctl_fmt_dlq, &sb, &rc);
    assert_string_equal(out, "no dead letters\n");
    free(out);
    msgpack_sbuffer_destroy(&sb);

    msgpack_sbuffer_init(&sb);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 4);
    pk_str(&pk, "id");
    msgpack_pack_bin_with_body(&pk, id1, 16);
    pk_str(&pk, "holder");
    pk_str(&pk, "inference-laptop");
    pk_str(&pk, "attempt");
    msgpack_pack_uint64(&pk, 1);
    pk_str(&pk, "lease_left_ms");
    msgpack_pack_uint64(&pk, 12500);
    out = capture(print_inflight, &sb, &rc);
    assert_int_equal(rc, 0);
    row = line_of(out, ID1_HEX);
    assert_non_null(row);
    assert_non_null(strstr(row, "inference-laptop"));
    assert_non_null(strstr(row, "12s"));
    assert_non_null(strstr(out, "LEASE LEFT"));
    free(out);
    msgpack_sbuffer_destroy(&sb);
}

static int print_retried(FILE *f, const uint8_t *d, size_t n)
{
    return syctl_fmt_count(f, d, n, "retried");
}

static void test_count(void **state)
{
    (void) state;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    int rc;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    pk_str(&pk, "retried");
    msgpack_pack_uint64(&pk, 17);
    char *out = capture(print_retried, &sb, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "retried 17\n");
    free(out);
    msgpack_sbuffer_destroy(&sb);

    msgpack_sbuffer_init(&sb);
    msgpack_pack_map(&pk, 1);
    pk_str(&pk, "purged");
    msgpack_pack_uint64(&pk, 1);
    out = capture(print_retried, &sb, &rc);
    assert_int_equal(rc, SY_ENOTFOUND);
    free(out);
    msgpack_sbuffer_destroy(&sb);
}

static void test_status_with_queues(void **state)
{
    (void) state;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    int rc;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    pk_str(&pk, "actors");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 5);
    pk_str(&pk, "name");
    pk_str(&pk, "echo-1");
    pk_str(&pk, "services");
    msgpack_pack_array(&pk, 2);
    pk_str(&pk, "echo");
    pk_str(&pk, "other");
    pk_str(&pk, "credit");
    msgpack_pack_uint64(&pk, 10);
    pk_str(&pk, "credit_left");
    msgpack_pack_uint64(&pk, 3);
    pk_str(&pk, "age_ms");
    msgpack_pack_uint64(&pk, 850);
    pk_str(&pk, "queues");
    msgpack_pack_array(&pk, 1);
    const uint64_t r[3] = { 0, 4, 0 };
    pack_queue(&pk, "inference", r, 0, 61000);
    char *out = capture(syctl_fmt_status, &sb, &rc);
    assert_int_equal(rc, 0);
    const char *row = line_of(out, "echo-1");
    if (!row || !strstr(out, "QUEUES (1)") || !line_of(out, "inference"))
        fail_msg("status output:\n%s", out);
    assert_non_null(strstr(row, "echo,other"));
    assert_non_null(strstr(row, "3/10"));
    /* the actor row ends with its age (tests/it/test_liveness.c reads it) */
    const char *eol = strchr(row, '\n');
    assert_true(eol - row > 6 && strncmp(eol - 6, " 850ms", 6) == 0);
    free(out);
    msgpack_sbuffer_destroy(&sb);
}

static void test_map_value(void **state)
{
    (void) state;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    pk_str(&pk, "what");
    pk_str(&pk, "queues");
    pk_str(&pk, "data");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_nil(&pk);
    const uint8_t *v = NULL;
    size_t n = 0;
    assert_int_equal(syctl_fmt_map_value((const uint8_t *) sb.data, sb.size,
                                         "data", &v, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(v[0], 0x92);
    assert_int_equal(syctl_fmt_map_value((const uint8_t *) sb.data, sb.size,
                                         "nope", &v, &n), SY_ENOTFOUND);
    assert_true(syctl_fmt_map_value((const uint8_t *) sb.data, sb.size - 1,
                                    "data", &v, &n) < 0);
    msgpack_sbuffer_destroy(&sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_prio),
        cmocka_unit_test(test_parse_ttl),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_age),
        cmocka_unit_test(test_receipt_parse),
        cmocka_unit_test(test_receipt_lines),
        cmocka_unit_test(test_queues_table),
        cmocka_unit_test(test_peek_inflight_dlq),
        cmocka_unit_test(test_count),
        cmocka_unit_test(test_status_with_queues),
        cmocka_unit_test(test_map_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
