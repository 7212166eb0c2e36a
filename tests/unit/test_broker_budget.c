/*  test_broker_budget.c -- the broker's byte budget for waiting
 *  non-durable messages, end to end: sy-broker with broker/queue_bytes
 *  64K and one echo actor of credit 1 kept busy; requests of 20 KB wait
 *  until the next would take the service over 64K, which is refused with
 *  QUEUE_FULL (a count bound of 10000 would have let it wait); the ones
 *  that waited are still answered, and once they left the queue their
 *  bytes are free again (the same sizes wait again).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <msgpack.h>
#include <string.h>

#include "schemas/syerr.h"
#include "tests/it/harness.h"
#include "tests/it/hclient.h"

#define PAD 20000

static int setup(void **state)
{
    *state = harness_new("budget");
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    harness_destroy((harness_t **) state);
    return 0;
}

/* Sends echo.request {seq, delay_ms, pad: PAD bytes} to echo. */
static void send_padded(hclient_t *c, uint64_t seq, uint64_t delay_ms, uint8_t id[16])
{
    static uint8_t pad[PAD];
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str(&pk, 3);
    msgpack_pack_str_body(&pk, "seq", 3);
    msgpack_pack_uint64(&pk, seq);
    msgpack_pack_str(&pk, 8);
    msgpack_pack_str_body(&pk, "delay_ms", 8);
    msgpack_pack_uint64(&pk, delay_ms);
    msgpack_pack_str(&pk, 3);
    msgpack_pack_str_body(&pk, "pad", 3);
    msgpack_pack_bin(&pk, PAD);
    msgpack_pack_bin_body(&pk, pad, PAD);
    hsend_t s = { .type = "echo.request", .to = "echo" };
    assert_int_equal(hclient_send(c, &s, (const uint8_t *) sb.data, sb.size, id), 0);
    msgpack_sbuffer_destroy(&sb);
}

/* Waits for the answer to id: an echo.reply, or (want_code) a receipt
   with that code. */
static void expect(hclient_t *c, const uint8_t id[16], const char *want_code, const char *what)
{
    hmsg_t m;
    int rc = hclient_recv_corr(c, id, &m, 10000 * harness_slow());
    if (rc)
        fail_msg("%s: no answer: %s", what, syerr_name(rc));
    char code[40] = "", detail[40] = "";
    bool receipt = hmsg_receipt(&m, code, sizeof code, detail, sizeof detail);
    bool ok = want_code ? receipt && strcmp(code, want_code) == 0
                        : strcmp(m.hdr.type, "echo.reply") == 0;
    if (!ok) {
        hmsg_print("got: ", &m);
        hmsg_clear(&m);
        fail_msg("%s: expected %s", what, want_code ? want_code : "echo.reply");
    }
    hmsg_clear(&m);
}

static void test_queue_bytes(void **state)
{
    harness_t *h = *state;
    harness_set(h, "broker/queue_bytes", "64K");
    harness_broker_start(h);
    harness_echo_start(h, "echo-1", "echo", 1, true);
    hclient_t *c = harness_client(h, "alice", NULL, 1);

    for (int round = 0; round < 2; round++) {
        uint8_t busy[16], q[3][16], over[16];
        send_padded(c, 1, 1500, busy);              /* takes the one credit */
        harness_sleep_ms(200);
        for (int i = 0; i < 3; i++)                 /* 3 x ~20.5K wait */
            send_padded(c, (uint64_t) (10 + i), 0, q[i]);
        send_padded(c, 99, 0, over);                /* a 4th is over 64K */
        expect(c, over, "QUEUE_FULL", "4th 20K message with queue_bytes 64K");
        expect(c, busy, NULL, "the busy request");
        for (int i = 0; i < 3; i++)
            expect(c, q[i], NULL, "a request that waited");
    }
    harness_client_close(h, c);
    harness_pass(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_queue_bytes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
