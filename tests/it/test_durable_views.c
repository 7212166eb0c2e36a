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
#include "hjson.h"
#include "hmp.h"
#include "schemas/syerr.h"

static int setup(void **state)
{
    *state = harness_new("durable-views");
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    harness_destroy((harness_t **)state);
    return 0;
}

static void base_config(harness_t *h)
{
    harness_set(h, "ratelimit/rate", "1000000");
    harness_set(h, "ratelimit/burst", "10000000");
    harness_set(h, "broker/liveness", "30s");   /* idle clients while syctl runs */
    harness_set(h, "service/views/lease", "20s");
}

static double jnum(const hjson_t *obj, const char *path)
{
    const hjson_t *v = hjson_path(obj, path);
    return v && v->kind == HJ_NUM ? v->num : -1;
}

static const char *jstr(const hjson_t *obj, const char *path)
{
    const hjson_t *v = hjson_path(obj, path);
    return v && v->kind == HJ_STR ? v->str : "";
}

/* The entry of the `queue ls --json` array for service (NULL if none). */
static const hjson_t *ls_entry(const hjson_t *arr, const char *service)
{
    for (size_t i = 0; arr && arr->kind == HJ_ARR && i < arr->count; i++) {
        const hjson_t *it = hjson_item(arr, i);
        if (strcmp(jstr(it, "service"), service) == 0) return it;
    }
    return NULL;
}

/* Runs `syctl queue ls --json` and checks the counts of service. */
static void check_ls(harness_t *h, const char *service, int hi, int no, int lo,
                     int inflight, int dead, const char *when)
{
    int ec;
    hjson_t *j = hdur_syctl_json(h, &ec, "queue", "ls", NULL);
    if (!j || ec != 0) fail_msg("%s: syctl queue ls --json: exit %d", when, ec);
    const hjson_t *e = ls_entry(j, service);
    if (!e) fail_msg("%s: queue ls --json has no entry for %s", when, service);
    double r0 = jnum(e, "ready.0"), r1 = jnum(e, "ready.1"), r2 = jnum(e, "ready.2");
    double fl = jnum(e, "inflight"), dd = jnum(e, "dead");
    if (r0 != hi || r1 != no || r2 != lo || fl != inflight || dd != dead)
        fail_msg("%s: queue ls for %s: ready %.0f/%.0f/%.0f inflight %.0f dead %.0f; want "
                 "%d/%d/%d %d %d", when, service, r0, r1, r2, fl, dd, hi, no, lo, inflight,
                 dead);
    hjson_destroy(&j);
}

/* peek --json as a list of id strings (into ids, at most cap). */
static int peek_ids(harness_t *h, const char *service, const char *n, char ids[][33],
                    int cap)
{
    int ec;
    hjson_t *j = hdur_syctl_json(h, &ec, "queue", "peek", service, n, NULL);
    if (!j || ec != 0 || j->kind != HJ_ARR)
        fail_msg("syctl queue peek %s %s --json: exit %d, not an array", service, n, ec);
    int k = 0;
    for (size_t i = 0; i < j->count && k < cap; i++) {
        const hjson_t *it = hjson_item(j, i);
        snprintf(ids[k], 33, "%s", jstr(it, "id"));
        if (strcmp(jstr(it, "type"), "echo.request") != 0)
            fail_msg("peek item %zu: type \"%s\"", i, jstr(it, "type"));
        k++;
    }
    hjson_destroy(&j);
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
    hjson_t *j = hdur_syctl_json(h, &ec, "queue", "inflight", "views", NULL);
    if (!j || ec != 0 || j->kind != HJ_ARR || j->count != 2)
        fail_msg("syctl queue inflight views --json: exit %d, want an array of 2", ec);
    for (size_t i = 0; i < 2; i++) {
        const hjson_t *it = hjson_item(j, i);
        const char *id = jstr(it, "id");
        if (strcmp(id, p1[0]) != 0 && strcmp(id, p1[1]) != 0)
            fail_msg("inflight item %zu: id %s is not one delivered", i, id);
        assert_string_equal(jstr(it, "holder"), "views-worker");
        assert_true(jnum(it, "attempt") == 1);
        double left = jnum(it, "lease_left_ms");
        if (left <= 0 || left > 20000)
            fail_msg("inflight item %zu: lease_left_ms %.0f, want within (0, 20000]", i, left);
    }
    hjson_destroy(&j);

    /* status --json shows the depths too. */
    j = hdur_syctl_json(h, &ec, "status", NULL);
    if (!j || ec != 0) fail_msg("syctl status --json: exit %d", ec);
    const hjson_t *q = hjson_find(j, "queues");
    const hjson_t *e = q ? ls_entry(q, "views") : NULL;
    if (!e || jnum(e, "inflight") != 2 || jnum(e, "ready.1") != 2)
        fail_msg("syctl status --json does not show queue views with 2 in flight, 2 normal");
    hjson_destroy(&j);

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
        hjson_t *j = hjson_parse(line, NULL, 0);
        if (!j) fail_msg("receipt line %d is not JSON: %s", lines, line);
        const hjson_t *ok = hjson_member(j, "ok");
        const hjson_t *id = hjson_member(j, "id");
        const hjson_t *seq = hjson_member(j, "seq");
        uint8_t bid[16];
        if (!ok || ok->kind != HJ_BOOL || !ok->b || !id || id->kind != HJ_STR
            || envelope_id_parse(id->str, bid) != 0 || !seq || seq->kind != HJ_NUM)
            fail_msg("receipt line %d: %s", lines, line);
        hid_item_t *it = hids_add(ids, bid, &added);
        if (!added) fail_msg("receipt line %d repeats id %s", lines, id->str);
        it->seq = (uint64_t)seq->num;
        it->prio = 2;
        hjson_destroy(&j);
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
        cmocka_unit_test_setup_teardown(test_queue_ls_peek_inflight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_syctl_send_durable_count, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
