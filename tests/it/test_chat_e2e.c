/*  test_chat_e2e.c -- the chat path end to end, on the real binaries.
 *
 *  sy-broker, sy-frontdoor, sy-router and sy-inference run as processes;
 *  the laptop's Ollama is tests/fakes/ollama_fake.py; the user is the real
 *  `syctl chat --once`.  The first test is the product's own scenario: a
 *  heavy question asked while the laptop is off survives a SIGKILL of the
 *  broker and is answered, exactly once, when the laptop comes back.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/it/harness.h"
#include "tests/it/hchat.h"

#define ASK_MS 30000

/* Settings every test here shares: the front door's store in the test
   dir, quick health checks, short retry backoff. */
static void chat_config(harness_t *h)
{
    char dir[HARNESS_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/frontdoor", harness_dir(h));
    harness_set(h, "frontdoor/store", dir);
    harness_set(h, "inference/health_interval", "100ms");
    harness_set(h, "inference/health_failures", "1");
    harness_set(h, "store/retry_backoff", "100ms");
    harness_set(h, "store/sync", "none");
    harness_set(h, "chat/timeout", "60s");
}

static int setup(void **state)
{
    if (harness_setup(state, "chat-e2e") != 0)
        return -1;
    chat_config(*state);
    return 0;
}

/* The answer the fake gives to text, as syctl prints it. */
static void expected_answer(const char *text, char *out, size_t cap)
{
    snprintf(out, cap, "Answer: %s\n", text);
}

static void test_offline_laptop_survives_broker_kill(void **state)
{
    harness_t *h = *state;
    hproc_t *broker = harness_broker_start(h);
    hchat_start_vm_side(h, NULL, NULL);

    /* The laptop is off: no worker, no backend.  The user asks. */
    const char *q = "이 시장 보고서를 분석해줘 quarterly";
    hchat_ask_t ask;
    hchat_ask_start(h, &ask, "ask-heavy", "alice", q);
    assert_true(hchat_wait_file(ask.err, "queued", 15000));

    /* The broker dies and comes back; the job was on disk. */
    harness_kill(h, broker);
    harness_broker_start(h);
    assert_true(harness_wait_actor(h, "frontdoor", true, 15000));
    assert_true(harness_wait_actor(h, "router", true, 15000));

    /* The laptop comes back. */
    hchat_fake_t *fake = hchat_fake_start(h, "ollama", 0, NULL);
    hchat_start_inference(h, fake, NULL);

    int rc = hchat_ask_wait(h, &ask, ASK_MS);
    char *out = hchat_read_file(ask.out);
    char *err = hchat_read_file(ask.err);
    char want[256];
    expected_answer(q, want, sizeof want);
    if (rc != 0 || strcmp(out, want) != 0)
        fail_msg("syctl chat exited %d; stdout [%s] want [%s]; stderr [%s]",
                 rc, out, want, err);
    /* The job ran once on the laptop and the user saw one answer. */
    assert_int_equal(hchat_fake_stat(fake, "chat_requests"), 1);
    assert_int_equal(hchat_count(out, "Answer:"), 1);
    free(out);
    free(err);
    hchat_fake_free(&fake);
    harness_pass(h);
}

static void test_light_and_scheduled_are_not_available(void **state)
{
    harness_t *h = *state;
    harness_broker_start(h);
    hchat_start_vm_side(h, NULL, NULL);

    char *out = NULL, *err = NULL;
    int rc = hchat_ask(h, "alice", "서버 로그 확인 부탁해", ASK_MS, &out, &err);
    assert_int_equal(rc, 1);
    if (!strstr(err, "NOT_AVAILABLE") || !strstr(err, "Light"))
        fail_msg("light phrase: stdout [%s] stderr [%s]", out, err);
    free(out);
    free(err);

    rc = hchat_ask(h, "alice", "매일 아침 날씨 알려줘", ASK_MS, &out, &err);
    assert_int_equal(rc, 1);
    if (!strstr(err, "NOT_AVAILABLE") || !strstr(err, "Scheduled"))
        fail_msg("scheduled phrase: stdout [%s] stderr [%s]", out, err);
    free(out);
    free(err);
    harness_pass(h);
}

static void test_backend_dies_mid_stream(void **state)
{
    harness_t *h = *state;
    harness_broker_start(h);
    hchat_start_vm_side(h, NULL, NULL);
    /* The first generation breaks after two pieces; the next is whole. */
    hchat_fake_t *fake = hchat_fake_start(h, "ollama", 0,
        "{\"fail\":\"drop\",\"fail_after_tokens\":2,\"fail_count\":1,"
        "\"token_delay_ms\":20}");
    hchat_start_inference(h, fake, NULL);
    assert_true(harness_wait_actor(h, "inference-1", true, 10000));

    const char *q = "please analyze these numbers one two three four";
    char *out = NULL, *err = NULL;
    int rc = hchat_ask(h, "alice", q, ASK_MS, &out, &err);
    char want[256];
    expected_answer(q, want, sizeof want);
    if (rc != 0 || strcmp(out, want) != 0)
        fail_msg("exit %d; stdout [%s] want [%s]; stderr [%s]", rc, out, want, err);
    /* The half answer was never final: two generations, one answer. */
    assert_int_equal(hchat_fake_stat(fake, "chat_requests"), 2);
    free(out);
    free(err);
    hchat_fake_free(&fake);
    harness_pass(h);
}

/* The n-th (1-based) request line of the fake's log, or NULL. */
static char *nth_request(const hchat_fake_t *fake, int n)
{
    char *all = hchat_read_file(fake->log);
    char *line = all;
    for (int i = 1; line && *line && i < n; i++) {
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    char *copy = NULL;
    if (line && *line) {
        size_t len = strcspn(line, "\n");
        copy = strndup(line, len);
    }
    free(all);
    return copy;
}

static void ask_ok(harness_t *h, const char *user, const char *text)
{
    char *out = NULL, *err = NULL;
    int rc = hchat_ask(h, user, text, ASK_MS, &out, &err);
    char want[256];
    expected_answer(text, want, sizeof want);
    if (rc != 0 || strcmp(out, want) != 0)
        fail_msg("%s asked [%s]: exit %d; stdout [%s]; stderr [%s]", user, text,
                 rc, out, err);
    free(out);
    free(err);
}

static void test_users_apart_and_history_trimmed(void **state)
{
    harness_t *h = *state;
    harness_set(h, "frontdoor/history_turns", "2");
    harness_broker_start(h);
    hchat_start_vm_side(h, NULL, NULL);
    hchat_fake_t *fake = hchat_fake_start(h, "ollama", 0, NULL);
    hchat_start_inference(h, fake, NULL);
    assert_true(harness_wait_actor(h, "inference-1", true, 10000));

    ask_ok(h, "alice", "analyze alphaone");
    ask_ok(h, "bob", "analyze bravoone");
    ask_ok(h, "alice", "analyze alphatwo");
    ask_ok(h, "alice", "analyze alphathree");
    ask_ok(h, "alice", "analyze alphafour");

    /* Requests 1..5 in the order asked. */
    char *bob1 = nth_request(fake, 2);
    char *alice2 = nth_request(fake, 3);
    char *alice4 = nth_request(fake, 5);
    assert_non_null(bob1);
    assert_non_null(alice2);
    assert_non_null(alice4);
    /* alice's second question carries her first turn, never bob's. */
    assert_non_null(strstr(alice2, "alphaone"));
    assert_null(strstr(alice2, "bravoone"));
    assert_null(strstr(bob1, "alphaone"));
    /* Trimmed to the two most recent turns: the third question is there,
       the first is gone. */
    assert_non_null(strstr(alice4, "alphathree"));
    assert_null(strstr(alice4, "alphaone"));
    assert_null(strstr(alice4, "bravoone"));
    free(bob1);
    free(alice2);
    free(alice4);
    hchat_fake_free(&fake);
    harness_pass(h);
}

static void test_cancel_removes_queued_job(void **state)
{
    harness_t *h = *state;
    harness_broker_start(h);
    hchat_start_vm_side(h, NULL, NULL);

    /* Laptop off: the job waits.  The user closes the client. */
    hchat_ask_t ask;
    hchat_ask_start(h, &ask, "ask-doomed", "alice", "analyze cancelme");
    assert_true(hchat_wait_file(ask.err, "queued", 15000));
    harness_kill(h, ask.proc);

    char *out = NULL, *err = NULL;
    int rc = hchat_ask(h, "alice", "/cancel", ASK_MS, &out, &err);
    if (rc != 0 || !strstr(out, "ancel"))
        fail_msg("/cancel: exit %d; stdout [%s]; stderr [%s]", rc, out, err);
    free(out);
    free(err);

    /* The laptop comes back: only the next question runs. */
    hchat_fake_t *fake = hchat_fake_start(h, "ollama", 0, NULL);
    hchat_start_inference(h, fake, NULL);
    ask_ok(h, "alice", "analyze survivor");
    assert_int_equal(hchat_fake_stat(fake, "chat_requests"), 1);
    char *log = hchat_read_file(fake->log);
    assert_null(strstr(log, "cancelme"));
    free(log);
    hchat_fake_free(&fake);
    harness_pass(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_offline_laptop_survives_broker_kill,
                                        setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_light_and_scheduled_are_not_available,
                                        setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_backend_dies_mid_stream,
                                        setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_users_apart_and_history_trimmed,
                                        setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_removes_queued_job,
                                        setup, harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
