/*  test_syctl_chat.c -- the real `syctl chat` and `syctl route`.
 *
 *  A real sy-broker; the front door is a raw test client (hclient.h)
 *  offering `frontdoor`, which answers the chat.message syctl sends with
 *  chat.token pieces, notices and a chat.reply, as sy-frontdoor would:
 *    - --once prints the answer alone on stdout and exits 0; notices go
 *      to stderr as "* text", each outbox seq once; no chat.sync first;
 *    - an error reply exits 1 with "error CODE: text" on stderr;
 *    - no front door: "the front door is not available", exit 1;
 *    - no answer within --timeout: exit 1;
 *    - the text comes from stdin when not given;
 *    - interactive mode says chat.sync {after: 0} when it connects,
 *      sends each line as a message and exits 0 at EOF;
 *    - syctl route classifies a Korean phrase, follows a rule added in
 *      the configuration, and prints JSON with --json.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"
#include "hclient.h"
#include "hmp.h"
#include "schemas/syerr.h"

#define WAIT_MS 10000

static int setup(void **state)
{
    return harness_setup(state, "syctl-chat");
}

/* syctl running in the background, stdout and stderr in files. */
typedef struct {
    hproc_t *proc;
    char     out[HARNESS_PATH_MAX + 16];
    char     err[HARNESS_PATH_MAX + 16];
} bg_t;

/* Starts syctl --config CFG with the NULL-terminated args, stdin from
   `in` (a file path; NULL: /dev/null). */
static void bg_start(harness_t *h, bg_t *b, const char *label,
                     const char *in, ...)
{
    char bin[HARNESS_PATH_MAX];
    harness_bin(h, "syctl", bin, sizeof bin);
    snprintf(b->out, sizeof b->out, "%s/%s.out", harness_dir(h), label);
    snprintf(b->err, sizeof b->err, "%s/%s.err", harness_dir(h), label);
    char *argv[32] = {
        "/bin/sh", "-c",
        "o=$1; e=$2; i=$3; shift 3; exec \"$@\" >\"$o\" 2>\"$e\" <\"$i\"",
        "sh", b->out, b->err, (char *) (in ? in : "/dev/null"), bin,
        "--config", (char *) harness_config(h)
    };
    int n = 10;
    va_list ap;
    va_start(ap, in);
    char *a;
    while (n < 30 && (a = va_arg(ap, char *)) != NULL)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    b->proc = harness_spawn(h, label, argv);
    assert_non_null(b->proc);
}

/* Waits for the exit; returns the exit code (-1 if it did not exit). */
static int bg_wait(harness_t *h, bg_t *b, int timeout_ms)
{
    if (!harness_wait_exit(h, b->proc, timeout_ms * harness_slow()))
        return -1;
    int st = b->proc->status;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The whole file, NUL-terminated (caller frees); "" if absent. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *s = calloc(1, 1 << 16);
    assert_non_null(s);
    if (f) {
        size_t n = fread(s, 1, (1 << 16) - 1, f);
        s[n] = 0;
        fclose(f);
    }
    return s;
}

static hclient_t *frontdoor(harness_t *h)
{
    const char *svc[] = { "frontdoor", NULL };
    return harness_client(h, "fd", svc, 50);
}

/* Receives the next chat.* message syctl sends to the front door. */
static void expect_from_syctl(hclient_t *fd, const char *type, hmsg_t *m)
{
    int rc = hclient_recv(fd, m, WAIT_MS * harness_slow());
    if (rc)
        fail_msg("the front door got nothing from syctl (%s)", syerr_name(rc));
    if (strcmp(m->hdr.type, type) != 0) {
        hmsg_print("got: ", m);
        fail_msg("want %s", type);
    }
}

/* Sends a chat.* message to "@to" with the body built by the caller. */
static void send_to(hclient_t *fd, const char *to, const char *type,
                    hmp_buf_t *b)
{
    char at[80];
    snprintf(at, sizeof at, "@%s", to);
    hsend_t s = { .type = type, .to = at };
    assert_int_equal(hclient_send(fd, &s, (const uint8_t *) b->sb.data,
                                  b->sb.size, NULL), 0);
    hmp_buf_clear(b);
}

static const uint8_t JOB[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
                                 14, 15, 16 };

static void token(hclient_t *fd, const char *to, uint64_t seq,
                  const char *text)
{
    hmp_buf_t b;
    hmp_buf_init(&b);
    msgpack_pack_map(&b.pk, 3);
    hmp_str(&b, "job");
    msgpack_pack_bin(&b.pk, 16);
    msgpack_pack_bin_body(&b.pk, JOB, 16);
    hmp_str(&b, "seq");
    msgpack_pack_uint64(&b.pk, seq);
    hmp_str(&b, "text");
    hmp_str(&b, text);
    send_to(fd, to, "chat.token", &b);
}

static void notice(hclient_t *fd, const char *to, uint64_t seq,
                   const char *text)
{
    hmp_buf_t b;
    hmp_buf_init(&b);
    msgpack_pack_map(&b.pk, 3);
    hmp_str(&b, "kind");
    hmp_str(&b, "queued");
    hmp_str(&b, "text");
    hmp_str(&b, text);
    hmp_str(&b, "seq");
    msgpack_pack_uint64(&b.pk, seq);
    send_to(fd, to, "chat.notice", &b);
}

/* chat.reply {job, text, error?, seq}. */
static void reply(hclient_t *fd, const char *to, uint64_t seq,
                  const char *text, const char *error)
{
    hmp_buf_t b;
    hmp_buf_init(&b);
    msgpack_pack_map(&b.pk, 3 + (error != NULL));
    hmp_str(&b, "job");
    msgpack_pack_bin(&b.pk, 16);
    msgpack_pack_bin_body(&b.pk, JOB, 16);
    hmp_str(&b, "text");
    hmp_str(&b, text);
    hmp_str(&b, "seq");
    msgpack_pack_uint64(&b.pk, seq);
    if (error) {
        hmp_str(&b, "error");
        hmp_str(&b, error);
    }
    send_to(fd, to, "chat.reply", &b);
}

/* ------------------------------------------------------------ --once */

static void test_once_prints_answer(void **state)
{
    harness_t *h = *state;
    harness_broker_start(h);
    hclient_t *fd = frontdoor(h);
    bg_t b;
    bg_start(h, &b, "ask", NULL, "chat", "--once", "what", "is", "up", NULL);

    hmsg_t m;
    expect_from_syctl(fd, "chat.message", &m);    /* no chat.sync first */
    char text[128], who[80];
    assert_true(hmp_get_str(m.body, m.body_len, "text", text, sizeof text));
    assert_string_equal(text, "what is up");
    snprintf(who, sizeof who, "%s", m.hdr.from);
    hmsg_clear(&m);

    token(fd, who, 0, "Hel");
    notice(fd, who, 7, "the laptop is offline; your job is queued, place 1");
    notice(fd, who, 7, "the laptop is offline; your job is queued, place 1");
    token(fd, who, 1, "lo ");
    notice(fd, who, 6, "an old notice, shown before");
    token(fd, who, 2, "world");
    reply(fd, who, 8, "Hello world", NULL);

    int rc = bg_wait(h, &b, WAIT_MS);
    char *out = slurp(b.out), *err = slurp(b.err);
    if (rc != 0 || strcmp(out, "Hello world\n") != 0)
        fail_msg("exit %d; stdout [%s]; stderr [%s]", rc, out, err);
    const char *q = "* the laptop is offline; your job is queued, place 1\n";
    char *first = strstr(err, q);
    if (!first || strstr(first + 1, q) || strstr(err, "old notice"))
        fail_msg("each notice once on stderr, old seqs dropped: [%s]", err);
    free(out);
    free(err);
    harness_pass(h);
}

static void test_once_error_reply(void **state)
{
    harness_t *h = *state;
    harness_broker_start(h);
    hclient_t *fd = frontdoor(h);
    bg_t b;
    bg_start(h, &b, "ask", NULL, "chat", "--once", "서버 로그 확인", NULL);
    hmsg_t m;
    expect_from_syctl(fd, "chat.message", &m);
    char who[80];
    snprintf(who, sizeof who, "%s", m.hdr.from);
    hmsg_clear(&m);
    reply(fd, who, 1, "Light tasks are not available yet.", "NOT_AVAILABLE");
    int rc = bg_wait(h, &b, WAIT_MS);
    char *out = slurp(b.out), *err = slurp(b.err);
    if (rc != 1 || out[0]
        || !strstr(err, "error NOT_AVAILABLE: Light tasks are not available"))
        fail_msg("exit %d; stdout [%s]; stderr [%s]", rc, out, err);
    free(out);
    free(err);
    harness_pass(h);
}

static void test_once_no_frontdoor(void **state)
{
    harness_t *h = *state;
    harness_broker_start(h);
    bg_t b;
    bg_start(h, &b, "ask", NULL, "chat", "--once", "hello", NULL);
    int rc = bg_wait(h, &b, WAIT_MS);
    char *out = slurp(b.out), *err = slurp(b.err);
    if (rc != 1 || !strstr(err, "the front door is not available"))
        fail_msg("exit %d; stdout [%s]; stderr [%s]", rc, out, err);
    free(out);
    free(err);
    harness_pass(h);
}

/* The front door takes the message and never answers. */
static void test_once_timeout(void **state)
{
    harness_t *h = *state;
    harness_broker_start(h);
    hclient_t *fd = frontdoor(h);
    bg_t b;
    bg_start(h, &b, "ask", NULL, "chat", "--once", "--timeout", "1s",
             "anyone?", NULL);
    hmsg_t m;
    expect_from_syctl(fd, "chat.message", &m);
    hmsg_clear(&m);
    int rc = bg_wait(h, &b, WAIT_MS);
    char *err = slurp(b.err);
    if (rc != 1 || !strstr(err, "no answer"))
        fail_msg("exit %d; stderr [%s]", rc, err);
    free(err);
    harness_pass(h);
}

/* The text from stdin.  A /command's answer is its reply whatever the
   error (/cancel answers with the job's CANCELLED); a refusal exits 1. */
static void test_once_stdin_command(void **state)
{
    harness_t *h = *state;
    harness_broker_start(h);
    hclient_t *fd = frontdoor(h);
    char in[HARNESS_PATH_MAX + 16];
    snprintf(in, sizeof in, "%s/question.txt", harness_dir(h));
    FILE *f = fopen(in, "w");
    assert_non_null(f);
    fputs("/cancel\n\n", f);
    fclose(f);
    for (int round = 0; round < 2; round++) {
        bg_t b;
        bg_start(h, &b, round ? "ask2" : "ask", in, "chat", "--once", NULL);
        hmsg_t m;
        expect_from_syctl(fd, "chat.message", &m);
        char text[64], who[80];
        assert_true(hmp_get_str(m.body, m.body_len, "text", text,
                                sizeof text));
        assert_string_equal(text, "/cancel");
        snprintf(who, sizeof who, "%s", m.hdr.from);
        hmsg_clear(&m);
        if (round == 0)
            reply(fd, who, 1, "Cancelled: \"x\".", "CANCELLED");
        else
            reply(fd, who, 2, "Too many messages.", "RATE_LIMITED");
        int rc = bg_wait(h, &b, WAIT_MS);
        char *out = slurp(b.out), *err = slurp(b.err);
        if (round == 0 && (rc != 0 || strcmp(out, "Cancelled: \"x\".\n") != 0))
            fail_msg("exit %d; stdout [%s]; stderr [%s]", rc, out, err);
        if (round == 1 && (rc != 1 || out[0]
                           || !strstr(err, "error RATE_LIMITED: Too many")))
            fail_msg("exit %d; stdout [%s]; stderr [%s]", rc, out, err);
        free(out);
        free(err);
    }
    harness_pass(h);
}

/* ------------------------------------------------------------ interactive */

static void test_interactive_lines_and_eof(void **state)
{
    harness_t *h = *state;
    harness_broker_start(h);
    hclient_t *fd = frontdoor(h);
    char in[HARNESS_PATH_MAX + 16];
    snprintf(in, sizeof in, "%s/lines.txt", harness_dir(h));
    FILE *f = fopen(in, "w");
    assert_non_null(f);
    fputs("first line\n\n/status\nlast without newline", f);
    fclose(f);
    bg_t b;
    bg_start(h, &b, "chat", in, "chat", NULL);
    hmsg_t m;
    expect_from_syctl(fd, "chat.sync", &m);
    uint64_t after = 99;
    assert_true(hmp_get_uint(m.body, m.body_len, "after", &after));
    assert_int_equal(after, 0);
    hmsg_clear(&m);
    const char *want[] = { "first line", "/status", "last without newline" };
    for (int i = 0; i < 3; i++) {
        char text[64];
        expect_from_syctl(fd, "chat.message", &m);
        assert_true(hmp_get_str(m.body, m.body_len, "text", text, sizeof text));
        assert_string_equal(text, want[i]);
        hmsg_clear(&m);
    }
    int rc = bg_wait(h, &b, WAIT_MS);
    if (rc != 0) {
        char *err = slurp(b.err);
        fail_msg("exit %d at EOF; stderr [%s]", rc, err);
    }
    harness_pass(h);
}

/* ------------------------------------------------------------ route */

static void test_route(void **state)
{
    harness_t *h = *state;
    hrun_t r;
    int rc = harness_syctl(h, &r, WAIT_MS, "route", "이 보고서 분석해줘", NULL);
    if (rc != 0 || strcmp(r.out, "HEAVY  phrase \"분석해줘\" (router/heavy)\n"))
        fail_msg("exit %d; stdout [%s]; stderr [%s]", rc, r.out, r.err);
    hrun_clear(&r);

    rc = harness_syctl(h, &r, WAIT_MS, "route", "매주", "로그", "확인", NULL);
    if (rc != 0 || strcmp(r.out, "SCHEDULED  phrase \"매주\" (router/scheduled)\n"))
        fail_msg("exit %d; stdout [%s]; stderr [%s]", rc, r.out, r.err);
    hrun_clear(&r);

    rc = harness_syctl(h, &r, WAIT_MS, "route", "look", "--attach", "photo",
                       "--json", NULL);
    size_t len = 0;
    uint8_t *j = hmp_from_json_in(r.out, &len);
    char cls[16] = "", svc[16] = "";
    if (rc != 0 || !j || !hmp_get_str(j, len, "class", cls, sizeof cls)
        || !hmp_get_str(j, len, "service", svc, sizeof svc)
        || strcmp(cls, "HEAVY") || strcmp(svc, "inference"))
        fail_msg("exit %d; stdout [%s]; stderr [%s]", rc, r.out, r.err);
    free(j);
    hrun_clear(&r);

    /* a rule added in the configuration file */
    harness_set(h, "router/light", "날씨");
    rc = harness_syctl(h, &r, WAIT_MS, "route", "오늘 날씨", NULL);
    if (rc != 0 || strcmp(r.out, "LIGHT  phrase \"날씨\" (router/light)\n"))
        fail_msg("exit %d; stdout [%s]; stderr [%s]", rc, r.out, r.err);
    hrun_clear(&r);

    /* a bad list: a configuration error naming the setting */
    harness_set(h, "router/heavy_attachments", "image/*x");
    rc = harness_syctl(h, &r, WAIT_MS, "route", "hi", NULL);
    if (rc != 4 || !strstr(r.err, "router/heavy_attachments"))
        fail_msg("exit %d; stderr [%s]", rc, r.err);
    hrun_clear(&r);

    rc = harness_syctl(h, &r, WAIT_MS, "route", NULL);
    assert_int_equal(rc, 2);
    hrun_clear(&r);
    harness_pass(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_once_prints_answer, setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_once_error_reply, setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_once_no_frontdoor, setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_once_timeout, setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_once_stdin_command, setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_interactive_lines_and_eof, setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_route, setup, harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
