/*  test_chatstore.c -- unit tests of actors/chatstore.c, the front door's
 *  store: conversations trimmed to their last turns, /new, users kept
 *  apart, pending jobs, outbox numbering across reopen, refusal of damaged
 *  or foreign stores and of a missing key, and sealing (no text in the
 *  clear in data.mdb).  Each test works in its own temporary directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "actors/chatstore.h"
#include "schemas/syerr.h"
#include "tutil.h"

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char         dir[64];
    chatstore_t *cs;
    uint32_t     turns;
    uint32_t     outbox;
} fx_t;

static int fx_open_rc(fx_t *fx, char *err, size_t errlen)
{
    chatstore_opts_t o = { .dir = fx->dir, .map_size = 8 * 1024 * 1024,
                           .history_turns = fx->turns,
                           .outbox_max = fx->outbox };
    return chatstore_open(&o, &fx->cs, err, errlen);
}

static void fx_open(fx_t *fx)
{
    char err[512];
    int rc = fx_open_rc(fx, err, sizeof err);
    if (rc)
        print_error("chatstore_open: %s\n", err);
    assert_int_equal(rc, 0);
}

static void fx_reopen(fx_t *fx)
{
    chatstore_destroy(&fx->cs);
    assert_null(fx->cs);
    fx_open(fx);
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    if (!fx || tutil_tmpdir(fx->dir, sizeof fx->dir, "chatstore") != 0)
        return -1;
    fx->turns = 4;
    fx->outbox = 5;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    chatstore_destroy(&fx->cs);
    tutil_rmtree(fx->dir);
    free(fx);
    return 0;
}

static void append(fx_t *fx, const char *ch, const char *user,
                   chatstore_role_t role, const char *text, uint64_t ts)
{
    assert_int_equal(chatstore_turn_append(fx->cs, ch, user, role, text,
                                           strlen(text), ts), 0);
}

/* Checks the history of (ch, user) is exactly the texts given. */
static void expect_history(fx_t *fx, const char *ch, const char *user,
                           size_t max_bytes, size_t n, const char *const *texts)
{
    chatstore_turns_t h;
    assert_int_equal(chatstore_history(fx->cs, ch, user, max_bytes, &h), 0);
    if (h.n != n) {
        for (size_t i = 0; i < h.n; i++)
            print_error("  turn %zu: %s\n", i, h.v[i].text);
        fail_msg("%s/%s: %zu turns, want %zu", ch, user, h.n, n);
    }
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(h.v[i].text, texts[i]);
        assert_int_equal(h.v[i].len, strlen(texts[i]));
    }
    chatstore_turns_clear(&h);
    assert_int_equal(h.n, 0);
}

static void test_history_trimmed_to_turns_and_bytes(void **state)
{
    fx_t *fx = *state;
    fx_open(fx);
    expect_history(fx, "zmq", "alice", 1000, 0, NULL);
    static const char *const t[] = { "q1", "a1-long", "q2", "a2", "q3", "a3" };
    for (int i = 0; i < 6; i++)
        append(fx, "zmq", "alice", i % 2 ? CHATSTORE_ASSISTANT : CHATSTORE_USER,
               t[i], 100 + (uint64_t) i);
    /* 4 turns kept: the last four, oldest first */
    expect_history(fx, "zmq", "alice", 1000, 4, t + 2);
    chatstore_turns_t h;
    assert_int_equal(chatstore_history(fx->cs, "zmq", "alice", 1000, &h), 0);
    assert_int_equal(h.v[0].role, CHATSTORE_USER);
    assert_int_equal(h.v[0].ts, 102);
    assert_int_equal(h.v[3].role, CHATSTORE_ASSISTANT);
    assert_int_equal(h.v[3].ts, 105);
    chatstore_turns_clear(&h);
    /* a byte budget keeps the newest that fit: q3 a3 = 4 bytes, q2 a2 q3
       a3 = 8 */
    expect_history(fx, "zmq", "alice", 5, 2, t + 4);
    expect_history(fx, "zmq", "alice", 8, 4, t + 2);
    expect_history(fx, "zmq", "alice", 1, 0, NULL);
    /* survives a reopen */
    fx_reopen(fx);
    expect_history(fx, "zmq", "alice", 1000, 4, t + 2);
}

static void test_new_conversation_drops_history(void **state)
{
    fx_t *fx = *state;
    fx_open(fx);
    uint64_t conv = 99;
    assert_int_equal(chatstore_conv_number(fx->cs, "zmq", "alice", &conv), 0);
    assert_int_equal(conv, 0);
    append(fx, "zmq", "alice", CHATSTORE_USER, "old question", 1);
    append(fx, "zmq", "alice", CHATSTORE_ASSISTANT, "old answer", 2);
    assert_int_equal(chatstore_conv_new(fx->cs, "zmq", "alice", &conv), 0);
    assert_int_equal(conv, 1);
    expect_history(fx, "zmq", "alice", 1000, 0, NULL);
    append(fx, "zmq", "alice", CHATSTORE_USER, "new question", 3);
    static const char *const want[] = { "new question" };
    expect_history(fx, "zmq", "alice", 1000, 1, want);
    fx_reopen(fx);
    assert_int_equal(chatstore_conv_number(fx->cs, "zmq", "alice", &conv), 0);
    assert_int_equal(conv, 1);
    expect_history(fx, "zmq", "alice", 1000, 1, want);
}

static void test_users_and_channels_apart(void **state)
{
    fx_t *fx = *state;
    fx_open(fx);
    append(fx, "zmq", "alice", CHATSTORE_USER, "alice zmq", 1);
    append(fx, "zmq", "bob", CHATSTORE_USER, "bob zmq", 2);
    append(fx, "telegram", "alice", CHATSTORE_USER, "alice tg", 3);
    /* a prefix of another name is another user */
    append(fx, "zmq", "ali", CHATSTORE_USER, "ali zmq", 4);
    static const char *const a[] = { "alice zmq" }, *const b[] = { "bob zmq" },
                      *const at[] = { "alice tg" }, *const al[] = { "ali zmq" };
    expect_history(fx, "zmq", "alice", 1000, 1, a);
    expect_history(fx, "zmq", "bob", 1000, 1, b);
    expect_history(fx, "telegram", "alice", 1000, 1, at);
    expect_history(fx, "zmq", "ali", 1000, 1, al);
    assert_int_equal(chatstore_conv_new(fx->cs, "zmq", "bob", NULL), 0);
    expect_history(fx, "zmq", "alice", 1000, 1, a);
    expect_history(fx, "zmq", "bob", 1000, 0, NULL);
    /* bad names are refused */
    assert_int_equal(chatstore_turn_append(fx->cs, "", "x", CHATSTORE_USER,
                                           "t", 1, 1), SY_EINVAL);
    assert_int_equal(chatstore_turn_append(fx->cs, "zmq", NULL, CHATSTORE_USER,
                                           "t", 1, 1), SY_EINVAL);
}

static void mkjob(chatstore_job_t *j, uint8_t n, const char *ch,
                  const char *user, const char *route, uint64_t created)
{
    memset(j, 0, sizeof *j);
    memset(j->id, 0, 16);
    j->id[5] = n;               /* time-ordered like syids */
    snprintf(j->channel, sizeof j->channel, "%s", ch);
    snprintf(j->user, sizeof j->user, "%s", user);
    snprintf(j->route, sizeof j->route, "%s", route);
    snprintf(j->addr, sizeof j->addr, "addr-%u", n);
    j->created = created;
}

static void test_jobs_pending_listed_routed_ended(void **state)
{
    fx_t *fx = *state;
    fx_open(fx);
    chatstore_job_t j1, j2, j3, got;
    mkjob(&j1, 1, "zmq", "alice", "@alice", 10);
    mkjob(&j2, 2, "zmq", "bob", "@bob", 11);
    mkjob(&j3, 3, "zmq", "alice", "@alice", 12);
    chatstore_preview(&j1, "first question", 14);
    assert_int_equal(chatstore_ask(fx->cs, &j1, "first question", 14), 0);
    assert_int_equal(chatstore_ask(fx->cs, &j2, "bob asks", 8), 0);
    assert_int_equal(chatstore_ask(fx->cs, &j3, "second question", 15), 0);
    assert_int_equal(chatstore_ask(fx->cs, &j3, "again", 5), SY_EDUPLICATE);
    static const char *const both[] = { "first question", "second question" };
    expect_history(fx, "zmq", "alice", 1000, 2, both);

    fx_reopen(fx);
    chatstore_job_t *list;
    size_t n;
    assert_int_equal(chatstore_jobs(fx->cs, "zmq", "alice", &list, &n), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(list[0].id, j1.id, 16);       /* oldest first */
    assert_memory_equal(list[1].id, j3.id, 16);
    assert_string_equal(list[0].preview, "first question");
    assert_string_equal(list[0].addr, "addr-1");
    assert_string_equal(list[0].route, "@alice");
    free(list);
    assert_int_equal(chatstore_jobs(fx->cs, NULL, NULL, &list, &n), 0);
    assert_int_equal(n, 3);
    free(list);

    uint8_t qid[16];
    memset(qid, 0xab, 16);
    assert_int_equal(chatstore_job_route(fx->cs, j1.id, "HEAVY", "inference",
                                         qid), 0);
    assert_int_equal(chatstore_job_get(fx->cs, j1.id, &got), 0);
    assert_string_equal(got.klass, "HEAVY");
    assert_string_equal(got.service, "inference");
    assert_true(got.has_queued);
    assert_memory_equal(got.queued_id, qid, 16);

    /* the answer: job ends, assistant turn and outbox entry together */
    chatstore_out_t out = { "alice", "chat.reply", (const uint8_t *) "\x80", 1 };
    uint64_t seq = 0;
    assert_int_equal(chatstore_job_end(fx->cs, j1.id, "answer one", 10, &out,
                                       &seq), 0);
    assert_int_equal(seq, 1);
    assert_int_equal(chatstore_job_end(fx->cs, j1.id, "answer one", 10, &out,
                                       &seq), SY_ENOTFOUND);
    assert_int_equal(chatstore_job_get(fx->cs, j1.id, &got), SY_ENOTFOUND);
    uint64_t last = 0;
    assert_int_equal(chatstore_outbox_last(fx->cs, "alice", &last), 0);
    assert_int_equal(last, 1);
    static const char *const three[] = { "first question", "second question",
                                         "answer one" };
    expect_history(fx, "zmq", "alice", 1000, 3, three);

    /* withdrawing a question that could not be sent takes its turn back */
    assert_int_equal(chatstore_withdraw(fx->cs, j2.id), 0);
    expect_history(fx, "zmq", "bob", 1000, 0, NULL);
    assert_int_equal(chatstore_withdraw(fx->cs, j2.id), SY_ENOTFOUND);

    /* a cancelled question leaves the history, wherever it is */
    chatstore_job_t j4, j5;
    mkjob(&j4, 4, "zmq", "alice", "@alice", 20);
    mkjob(&j5, 5, "zmq", "alice", "@alice", 21);
    assert_int_equal(chatstore_ask(fx->cs, &j4, "doomed", 6), 0);
    assert_int_equal(chatstore_ask(fx->cs, &j5, "kept", 4), 0);
    out.type = "chat.reply";
    assert_int_equal(chatstore_job_cancel(fx->cs, j4.id, &out, &seq), 0);
    assert_int_equal(seq, 2);
    assert_int_equal(chatstore_job_cancel(fx->cs, j4.id, NULL, NULL),
                     SY_ENOTFOUND);
    static const char *const after[] = { "second question", "answer one",
                                         "kept" };
    expect_history(fx, "zmq", "alice", 1000, 3, after);
    assert_int_equal(chatstore_withdraw(fx->cs, j5.id), 0);
    expect_history(fx, "zmq", "alice", 1000, 2, after);

    /* an answer arriving after /new does not land in the new conversation */
    assert_int_equal(chatstore_conv_new(fx->cs, "zmq", "alice", NULL), 0);
    assert_int_equal(chatstore_job_end(fx->cs, j3.id, "late", 4, NULL, NULL), 0);
    expect_history(fx, "zmq", "alice", 1000, 0, NULL);
    assert_int_equal(chatstore_jobs(fx->cs, NULL, NULL, &list, &n), 0);
    assert_int_equal(n, 0);
    assert_null(list);
}

typedef struct {
    uint64_t seqs[16];
    char     bodies[16][32];
    size_t   n;
} seen_t;

static int on_out(uint64_t seq, const char *type, const uint8_t *body,
                  size_t len, void *arg)
{
    seen_t *s = arg;
    assert_string_equal(type, "chat.notice");
    assert_true(s->n < 16 && len < 32);
    s->seqs[s->n] = seq;
    memcpy(s->bodies[s->n], body, len);
    s->bodies[s->n][len] = 0;
    s->n++;
    return 0;
}

static void put_out(fx_t *fx, const char *user, const char *body, uint64_t want)
{
    chatstore_out_t o = { user, "chat.notice", (const uint8_t *) body,
                          strlen(body) };
    uint64_t seq = 0;
    assert_int_equal(chatstore_outbox_append(fx->cs, &o, &seq), 0);
    assert_int_equal(seq, want);
}

static void test_outbox_seq_across_reopen_and_trim(void **state)
{
    fx_t *fx = *state;
    fx_open(fx);
    put_out(fx, "alice", "m1", 1);
    put_out(fx, "alice", "m2", 2);
    put_out(fx, "bob", "b1", 1);
    put_out(fx, "alice", "m3", 3);
    fx_reopen(fx);
    put_out(fx, "alice", "m4", 4);
    seen_t s = { 0 };
    assert_int_equal(chatstore_outbox_after(fx->cs, "alice", 1, on_out, &s), 0);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.seqs[0], 2);
    assert_string_equal(s.bodies[0], "m2");
    assert_int_equal(s.seqs[2], 4);
    assert_string_equal(s.bodies[2], "m4");
    /* kept: the last 5 */
    for (uint64_t i = 5; i <= 8; i++)
        put_out(fx, "alice", "mx", i);
    memset(&s, 0, sizeof s);
    assert_int_equal(chatstore_outbox_after(fx->cs, "alice", 0, on_out, &s), 0);
    assert_int_equal(s.n, 5);
    assert_int_equal(s.seqs[0], 4);
    assert_int_equal(s.seqs[4], 8);
    memset(&s, 0, sizeof s);
    assert_int_equal(chatstore_outbox_after(fx->cs, "alice", 8, on_out, &s), 0);
    assert_int_equal(s.n, 0);
    memset(&s, 0, sizeof s);
    assert_int_equal(chatstore_outbox_after(fx->cs, "bob", 0, on_out, &s), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.bodies[0], "b1");
    memset(&s, 0, sizeof s);
    assert_int_equal(chatstore_outbox_after(fx->cs, "carol", 0, on_out, &s), 0);
    assert_int_equal(s.n, 0);
}

/* Reads the whole file at path; true if needle occurs in it. */
static bool file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t) n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t) n, f), (size_t) n);
    fclose(f);
    bool has = memmem(buf, (size_t) n, needle, strlen(needle)) != NULL;
    free(buf);
    return has;
}

#define MARK_TURN  "SECRET-turn-text-4c1e"
#define MARK_JOB   "SECRET-job-text-77aa"
#define MARK_OUT   "SECRET-outbox-text-19f0"

static void test_texts_sealed_at_rest(void **state)
{
    fx_t *fx = *state;
    fx_open(fx);
    append(fx, "zmq", "alice", CHATSTORE_USER, MARK_TURN, 1);
    chatstore_job_t j;
    mkjob(&j, 7, "zmq", "alice", "@alice", 2);
    chatstore_preview(&j, MARK_JOB, strlen(MARK_JOB));
    assert_int_equal(chatstore_ask(fx->cs, &j, MARK_JOB, strlen(MARK_JOB)), 0);
    put_out(fx, "alice", MARK_OUT, 1);
    chatstore_destroy(&fx->cs);
    char path[128];
    snprintf(path, sizeof path, "%s/data.mdb", fx->dir);
    assert_false(file_has(path, MARK_TURN));
    assert_false(file_has(path, MARK_JOB));
    assert_false(file_has(path, MARK_OUT));
    assert_true(file_has(path, "alice"));       /* keys are not sealed: the
                                                   file was really read */
    /* the key file is there, 0600 */
    struct stat st;
    snprintf(path, sizeof path, "%s/store.key", fx->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* and the texts come back */
    fx_open(fx);
    static const char *const want[] = { MARK_TURN, MARK_JOB };
    expect_history(fx, "zmq", "alice", 1000, 2, want);
}

static void test_missing_or_other_key_refused(void **state)
{
    fx_t *fx = *state;
    fx_open(fx);
    append(fx, "zmq", "alice", CHATSTORE_USER, "hello", 1);
    chatstore_destroy(&fx->cs);
    char key[128], moved[128], err[512];
    snprintf(key, sizeof key, "%s/store.key", fx->dir);
    snprintf(moved, sizeof moved, "%s/store.key.moved", fx->dir);
    assert_int_equal(rename(key, moved), 0);
    int rc = fx_open_rc(fx, err, sizeof err);
    assert_int_equal(rc, SY_ECRYPTO);
    assert_non_null(strstr(err, "missing"));
    assert_null(fx->cs);
    assert_int_equal(access(key, F_OK), -1);        /* no new key made */
    /* another key: refused by its fingerprint */
    assert_int_equal(tutil_write_file(key, "%s", "0123456789abcdef0123456789abcdef"), 0);
    assert_int_equal(chmod(key, 0600), 0);
    rc = fx_open_rc(fx, err, sizeof err);
    assert_int_equal(rc, SY_ECRYPTO);
    assert_non_null(strstr(err, "fingerprint"));
    assert_int_equal(rename(moved, key), 0);
    fx_open(fx);
    static const char *const want[] = { "hello" };
    expect_history(fx, "zmq", "alice", 1000, 1, want);
}

static void test_corrupt_file_refused_not_recreated(void **state)
{
    fx_t *fx = *state;
    char path[128], err[512];
    snprintf(path, sizeof path, "%s/data.mdb", fx->dir);
    char junk[8192];
    memset(junk, 0x5a, sizeof junk);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(junk, 1, sizeof junk, f), sizeof junk);
    fclose(f);
    int rc = fx_open_rc(fx, err, sizeof err);
    assert_int_equal(rc, SY_ESTORE);
    assert_null(fx->cs);
    assert_non_null(strstr(err, fx->dir));
    assert_non_null(strstr(err, "not an LMDB file"));
    /* left as it was */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, (off_t) sizeof junk);
    assert_true(file_has(path, "ZZZZZZZZ"));
}

/* Writes meta/format = ver straight into the store's LMDB. */
static void set_format(const char *dir, uint32_t ver, bool drop_meta)
{
    MDB_env *env;
    MDB_txn *t;
    MDB_dbi db;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &t), 0);
    assert_int_equal(mdb_dbi_open(t, "meta", 0, &db), 0);
    MDB_val k = { 6, "format" }, v = { sizeof ver, &ver };
    if (drop_meta)
        assert_int_equal(mdb_del(t, db, &k, NULL), 0);
    else
        assert_int_equal(mdb_put(t, db, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(t), 0);
    mdb_env_close(env);
}

static void test_newer_or_foreign_format_refused(void **state)
{
    fx_t *fx = *state;
    char err[512];
    fx_open(fx);
    append(fx, "zmq", "alice", CHATSTORE_USER, "kept", 1);
    chatstore_destroy(&fx->cs);
    set_format(fx->dir, CHATSTORE_FORMAT_VERSION + 1, false);
    assert_int_equal(fx_open_rc(fx, err, sizeof err), SY_ESTORE);
    assert_non_null(strstr(err, "format version 2"));
    set_format(fx->dir, 0, true);
    assert_int_equal(fx_open_rc(fx, err, sizeof err), SY_ESTORE);
    assert_non_null(strstr(err, "no format record"));
    set_format(fx->dir, CHATSTORE_FORMAT_VERSION, false);
    fx_open(fx);
    static const char *const want[] = { "kept" };
    expect_history(fx, "zmq", "alice", 1000, 1, want);
}

static void test_bad_arguments(void **state)
{
    fx_t *fx = *state;
    char err[256];
    chatstore_t *cs = NULL;
    assert_int_equal(chatstore_open(NULL, &cs, err, sizeof err), SY_EINVAL);
    chatstore_opts_t o = { .dir = "" };
    assert_int_equal(chatstore_open(&o, &cs, err, sizeof err), SY_EINVAL);
    fx_open(fx);
    chatstore_turns_t h;
    assert_int_equal(chatstore_history(fx->cs, "zmq", "", 10, &h), SY_EINVAL);
    assert_int_equal(h.n, 0);
    chatstore_out_t o2 = { "alice", "", (const uint8_t *) "x", 1 };
    uint64_t seq;
    assert_int_equal(chatstore_outbox_append(fx->cs, &o2, &seq), SY_EINVAL);
    chatstore_job_t j;
    mkjob(&j, 1, "zmq", "alice", "", 1);
    assert_int_equal(chatstore_ask(fx->cs, &j, "x", 1), SY_EINVAL);
    /* a preview is cut at a UTF-8 boundary */
    char text[200];
    memset(text, 'a', sizeof text);
    memcpy(text + CHATSTORE_PREVIEW_MAX - 1, "\xea\xb0\x80", 3);  /* 가 */
    chatstore_preview(&j, text, sizeof text);
    assert_int_equal(strlen(j.preview), CHATSTORE_PREVIEW_MAX - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_history_trimmed_to_turns_and_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_conversation_drops_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_users_and_channels_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobs_pending_listed_routed_ended, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_seq_across_reopen_and_trim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_texts_sealed_at_rest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_or_other_key_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_file_refused_not_recreated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_or_foreign_format_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
