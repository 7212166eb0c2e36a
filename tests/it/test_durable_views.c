/*  test_durable_views.c -- the operator's views of the durable queues
 *  through syctl, all with --json (issue 4), and syctl as a producer.
 *
 *  - queue ls: per service ready per priority, in flight, dead;
 *  - queue peek SERVICE N: the first N in delivery order (priority, then
 *    FIFO), without consuming: twice the same answer, counts unchanged,
 *    and the worker that connects afterwards gets exactly those first;
 *  - queue inflight SERVICE: which actor holds what, attempt, lease left;
 *  - status --json shows queue depths;
 *  - send --durable --count N --json: one JSON receipt line per message,
 *    every id distinct, all of them then delivered; send --durable prints
 *    "id <hex>".
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "hclient.h"
#include "hdur.h"
#include "hids.h"
#include "hmp.h"
#include "common/json.h"
#include "schemas/syerr.h"

static int setup(void **state)
{
    return harness_setup(state, "durable-views");
}

static void base_config(harness_t *h)
{
    harness_set(h, "ratelimit/rate", "1000000");
    harness_set(h, "ratelimit/burst", "10000000");
    harness_set(h, "broker/liveness", "30s");   /* idle clients while syctl runs */
    harness_set(h, "service/views/lease", "20s");
}

static double jnum(hmp_view_t v, const char *path)
{
    double d;
    return hmp_get_num(v.buf, v.len, path, &d) ? d : -1;
}

/* The string at path into out[64] ("" if none). */
static const char *jstr(hmp_view_t v, const char *path, char out[64])
{
    if (!hmp_get_str(v.buf, v.len, path, out, 64)) out[0] = 0;
    return out;
}

/* The entry for service of the array at v (buf NULL if none). */
static hmp_view_t ls_entry(hmp_view_t v, const char *service)
{
    int i = hmp_index_of(v.buf, v.len, "", "service", service);
    char path[16];
    snprintf(path, sizeof path, "%d", i);
    return i >= 0 ? hmp_sub(v.buf, v.len, path) : (hmp_view_t){ NULL, 0 };
}

/* Runs `syctl queue ls --json` and checks the counts of service. */
static void check_ls(harness_t *h, const char *service, int hi, int no, int lo,
                     int inflight, int dead, const char *when)
{
    int ec;
    size_t len = 0;
    uint8_t *j = hdur_syctl_json(h, &ec, &len, "queue", "ls", NULL);
    if (!j || ec != 0) fail_msg("%s: syctl queue ls --json: exit %d", when, ec);
    hmp_view_t e = ls_entry((hmp_view_t){ j, len }, service);
    if (!e.buf) fail_msg("%s: queue ls --json has no entry for %s", when, service);
    double r0 = jnum(e, "ready.0"), r1 = jnum(e, "ready.1"), r2 = jnum(e, "ready.2");
    double fl = jnum(e, "inflight"), dd = jnum(e, "dead");
    if (r0 != hi || r1 != no || r2 != lo || fl != inflight || dd != dead)
        fail_msg("%s: queue ls for %s: ready %.0f/%.0f/%.0f inflight %.0f dead %.0f; want "
                 "%d/%d/%d %d %d", when, service, r0, r1, r2, fl, dd, hi, no, lo, inflight,
                 dead);
    free(j);
}

/* peek --json as a list of id strings (into ids, at most cap). */
static int peek_ids(harness_t *h, const char *service, const char *n, char ids[][33],
                    int cap)
{
    int ec;
    size_t len = 0;
    uint8_t *j = hdur_syctl_json(h, &ec, &len, "queue", "peek", service, n, NULL);
    mpval_t top;
    if (!j || ec != 0 || hmp_get(j, len, "", &top) || top.kind != MP_ARRAY)
        fail_msg("syctl queue peek %s %s --json: exit %d, not an array", service, n, ec);
    int k = 0;
    for (uint32_t i = 0; i < top.len && k < cap; i++) {
        char path[16], got[64];
        snprintf(path, sizeof path, "%u", i);
        hmp_view_t it = hmp_sub(j, len, path);
        snprintf(ids[k], 33, "%s", jstr(it, "id", got));
        if (strcmp(jstr(it, "type", got), "echo.request") != 0)
            fail_msg("peek item %u: type \"%s\"", i, got);
        k++;
    }
    free(j);
    return k;
}

static void test_queue_ls_peek_inflight(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    base_config(h);
    harness_broker_start(h);
    hclient_t *prod = harness_client(h, "views-producer", NULL, 1);
    /* prio per seq: delivery order is seq 1, 3 (high), 2, 5 (normal),
       0, 4 (low). */
    static const int prio[6] = { 2, 0, 1, 0, 2, 1 };
    static const int order[6] = { 1, 3, 2, 5, 0, 4 };
    hdur_msg_t ms[6];
    hdur_receipt_t rs[6];
    for (int i = 0; i < 6; i++)
        ms[i] = (hdur_msg_t){ .to = "views", .prio = prio[i], .seq = (uint64_t)i };
    assert_int_equal(hdur_put_many(prod, ms, 6, rs, 5000 * slow), 0);
    char hex[6][33];
    for (int i = 0; i < 6; i++) {
        if (!rs[i].ok) fail_msg("send %d refused: %s", i, rs[i].code);
        hdur_hex(rs[i].id, hex[i]);
    }
    check_ls(h, "views", 2, 2, 2, 0, 0, "after 6 sends");

    char p1[8][33], p2[8][33];
    int n1 = peek_ids(h, "views", "4", p1, 8);
    int n2 = peek_ids(h, "views", "4", p2, 8);
    assert_int_equal(n1, 4);
    assert_int_equal(n2, 4);
    for (int i = 0; i < 4; i++) {
        if (strcmp(p1[i], p2[i]) != 0)
            fail_msg("peek twice differs at %d: %s vs %s", i, p1[i], p2[i]);
        if (strcmp(p1[i], hex[order[i]]) != 0)
            fail_msg("peek item %d is %s, want %s (seq %d: priority, then FIFO)", i, p1[i],
                     hex[order[i]], order[i]);
    }
    char all[10][33];
    assert_int_equal(peek_ids(h, "views", "10", all, 10), 6);
    check_ls(h, "views", 2, 2, 2, 0, 0, "after peeking");

    /* A worker with credit 2 takes the first two in peek order. */
    static const char *const svc[] = { "views", NULL };
    hclient_t *w = harness_client(h, "views-worker", svc, 2);
    hmsg_t m[2];
    for (int i = 0; i < 2; i++) {
        int rc = hclient_recv_type(w, "echo.request", &m[i], 5000 * slow, NULL);
        if (rc) fail_msg("delivery %d: %s", i, syerr_name(rc));
        char got[33];
        hdur_hex(m[i].hdr.id, got);
        if (strcmp(got, p1[i]) != 0)
            fail_msg("delivery %d is %s, peek said %s", i, got, p1[i]);
    }
    assert_int_equal(hclient_sync(w, 5000 * slow), 0);
    check_ls(h, "views", 0, 2, 2, 2, 0, "with 2 in flight");

    int ec;
    size_t len = 0;
    uint8_t *j = hdur_syctl_json(h, &ec, &len, "queue", "inflight", "views", NULL);
    mpval_t top;
    if (!j || ec != 0 || hmp_get(j, len, "", &top) || top.kind != MP_ARRAY || top.len != 2)
        fail_msg("syctl queue inflight views --json: exit %d, want an array of 2", ec);
    for (int i = 0; i < 2; i++) {
        char path[16], id[64], holder[64];
        snprintf(path, sizeof path, "%d", i);
        hmp_view_t it = hmp_sub(j, len, path);
        jstr(it, "id", id);
        if (strcmp(id, p1[0]) != 0 && strcmp(id, p1[1]) != 0)
            fail_msg("inflight item %d: id %s is not one delivered", i, id);
        assert_string_equal(jstr(it, "holder", holder), "views-worker");
        assert_true(jnum(it, "attempt") == 1);
        double left = jnum(it, "lease_left_ms");
        if (left <= 0 || left > 20000)
            fail_msg("inflight item %d: lease_left_ms %.0f, want within (0, 20000]", i, left);
    }
    free(j);

    /* status --json shows the depths too. */
    j = hdur_syctl_json(h, &ec, &len, "status", NULL);
    if (!j || ec != 0) fail_msg("syctl status --json: exit %d", ec);
    hmp_view_t e = ls_entry(hmp_find(j, len, "queues"), "views");
    if (!e.buf || jnum(e, "inflight") != 2 || jnum(e, "ready.1") != 2)
        fail_msg("syctl status --json does not show queue views with 2 in flight, 2 normal");
    free(j);

    for (int i = 0; i < 2; i++) {
        assert_int_equal(hclient_ack(w, m[i].hdr.id), 0);
        hmsg_clear(&m[i]);
    }
    harness_pass(h);
}

static void test_syctl_send_durable_count(void **state)
{
    harness_t *h = *state;
    int slow = harness_slow();
    base_config(h);
    harness_broker_start(h);

    hrun_t r;
    int ec = harness_syctl(h, &r, 10000, "send", "batch", "echo.request", "{\"data\":\"one\"}",
                           "--durable", "--no-wait", NULL);
    uint8_t one[16];
    const char *p = strstr(r.out, "id ");
    char hexone[33] = "";
    if (p) snprintf(hexone, sizeof hexone, "%.32s", p + 3);
    if (ec != 0 || envelope_id_parse(hexone, one) != 0)
        fail_msg("syctl send --durable: want exit 0 and \"id <hex>\", got exit %d\n%s%s", ec,
                 r.out, r.err);
    hrun_clear(&r);

    /* 200 pipelined, low priority, one JSON line per receipt. */
    char bin[HARNESS_PATH_MAX];
    harness_bin(h, "syctl", bin, sizeof bin);
    char *argv[] = { bin, "--config", (char *)harness_config(h), "--json", "send", "batch",
                     "echo.request", "{\"data\":\"many\"}", "--durable", "--count", "200",
                     "--prio", "low", NULL };
    assert_int_equal(harness_run(h, argv, 20000 * slow, &r), 0);
    if (r.exit_code != 0) fail_msg("syctl send --durable --count 200: exit %d\n%s", r.exit_code, r.err);
    hids_t *ids = hids_new();
    assert_non_null(ids);
    bool added;
    hids_add(ids, one, &added);
    int lines = 0;
    char *save = NULL;
    for (char *line = strtok_r(r.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        uint8_t *j = NULL;
        size_t len = 0;
        if (json_to_msgpack(line, strlen(line), NULL, &j, &len, NULL) != 0)
            fail_msg("receipt line %d is not JSON: %s", lines, line);
        bool ok = false;
        char id[64];
        double seq;
        uint8_t bid[16];
        if (!hmp_get_bool(j, len, "ok", &ok) || !ok || !hmp_get_str(j, len, "id", id, sizeof id)
            || envelope_id_parse(id, bid) != 0 || !hmp_get_num(j, len, "seq", &seq))
            fail_msg("receipt line %d: %s", lines, line);
        hid_item_t *it = hids_add(ids, bid, &added);
        if (!added) fail_msg("receipt line %d repeats id %s", lines, id);
        it->seq = (uint64_t)seq;
        it->prio = 2;
        free(j);
        lines++;
    }
    hrun_clear(&r);
    assert_int_equal(lines, 200);
    check_ls(h, "batch", 0, 1, 200, 0, 0, "after syctl sends");

    /* All delivered: the normal one first, then the low ones by seq. */
    static const char *const svc[] = { "batch", NULL };
    hclient_t *w = harness_client(h, "batch-worker", svc, 16);
    int got = 0;
    int64_t last_seq = -1;
    while (got < 201) {
        hmsg_t m;
        int rc = hclient_recv_type(w, "echo.request", &m, 5000 * slow, NULL);
        if (rc) fail_msg("after %d deliveries: %s", got, syerr_name(rc));
        hid_item_t *it = hids_find(ids, m.hdr.id);
        if (!it || it->delivered++) fail_msg("delivery %d: unknown or repeated id", got);
        if (got == 0 && memcmp(m.hdr.id, one, 16) != 0)
            fail_msg("the normal-priority message was not delivered first");
        uint64_t seq = 0;
        if (got > 0) {
            hdur_body_seq(&m, &seq);
            if ((int64_t)seq <= last_seq) fail_msg("low-priority seq %" PRIu64 " after %lld",
                                                   seq, (long long)last_seq);
            last_seq = (int64_t)seq;
        }
        assert_int_equal(hclient_ack(w, m.hdr.id), 0);
        hmsg_clear(&m);
        got++;
    }
    assert_int_equal(hclient_sync(w, 5000 * slow), 0);
    check_ls(h, "batch", 0, 0, 0, 0, 0, "after the drain");
    hids_destroy(&ids);
    harness_pass(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_queue_ls_peek_inflight, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_syctl_send_durable_count, setup, harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
