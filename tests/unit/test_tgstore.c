/*  test_tgstore.c -- unit tests of actors/tgstore.c, sy-telegram's store:
 *  the offset persisted across reopen and never moving back, pairing
 *  codes (alphabet, uniqueness, kept while valid, renewed after expiry),
 *  approve and deny (by code in any case, by chat id afterwards), expired
 *  codes refused, listing, and refusal of damaged or foreign stores.
 *  Each test works in its own temporary directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "actors/tgstore.h"
#include "schemas/syerr.h"
#include "tutil.h"

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HOUR (3600ULL * 1000)
#define T0   1700000000000ULL

typedef struct {
    char       dir[64];
    tgstore_t *ts;
} fx_t;

static int fx_open_rc(fx_t *fx, char *err, size_t errlen)
{
    tgstore_opts_t o = { .dir = fx->dir, .map_size = 4 * 1024 * 1024 };
    return tgstore_open(&o, &fx->ts, err, errlen);
}

static void fx_open(fx_t *fx)
{
    char err[512];
    int rc = fx_open_rc(fx, err, sizeof err);
    if (rc)
        print_error("tgstore_open: %s\n", err);
    assert_int_equal(rc, 0);
}

static void fx_reopen(fx_t *fx)
{
    tgstore_destroy(&fx->ts);
    assert_null(fx->ts);
    fx_open(fx);
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    if (!fx || tutil_tmpdir(fx->dir, sizeof fx->dir, "tgstore") != 0)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    tgstore_destroy(&fx->ts);
    tutil_rmtree(fx->dir);
    free(fx);
    return 0;
}

static void test_offset(void **state)
{
    fx_t *fx = *state;
    fx_open(fx);
    uint64_t off = 99;
    assert_int_equal(tgstore_offset(fx->ts, &off), 0);
    assert_int_equal(off, 0);
    assert_int_equal(tgstore_offset_set(fx->ts, 101), 0);
    assert_int_equal(tgstore_offset_set(fx->ts, 50), 0);   /* never back */
    assert_int_equal(tgstore_offset(fx->ts, &off), 0);
    assert_int_equal(off, 101);
    fx_reopen(fx);
    assert_int_equal(tgstore_offset(fx->ts, &off), 0);
    assert_int_equal(off, 101);
    assert_int_equal(tgstore_offset_set(fx->ts, 102), 0);
    fx_reopen(fx);
    assert_int_equal(tgstore_offset(fx->ts, &off), 0);
    assert_int_equal(off, 102);
}

static bool code_ok(const char *code)
{
    if (strlen(code) != TGSTORE_CODE_LEN)
        return false;
    for (const char *p = code; *p; p++)
        if (!strchr("ACDEFGHJKMNPQRTUVWXY34679", *p))
            return false;
    return true;
}

static void test_pairing(void **state)
{
    fx_t *fx = *state;
    fx_open(fx);
    tgstore_chat_t c, c2;
    bool fresh = false;
    assert_int_equal(tgstore_chat_get(fx->ts, "42", &c), SY_ENOTFOUND);
    assert_int_equal(tgstore_pair(fx->ts, "42", "tg:42", T0, HOUR, &c,
                                  &fresh), 0);
    assert_true(fresh);
    assert_int_equal(c.state, TGSTORE_PENDING);
    assert_true(code_ok(c.code));
    assert_string_equal(c.chat, "42");
    assert_string_equal(c.user, "tg:42");
    assert_int_equal(c.since_ms, T0);
    assert_int_equal(c.expires_ms, T0 + HOUR);

    /* a second message while the code is valid: the same code */
    assert_int_equal(tgstore_pair(fx->ts, "42", "tg:42", T0 + 1000, HOUR, &c2,
                                  &fresh), 0);
    assert_false(fresh);
    assert_string_equal(c2.code, c.code);
    fx_reopen(fx);
    assert_int_equal(tgstore_chat_get(fx->ts, "42", &c2), 0);
    assert_string_equal(c2.code, c.code);
    assert_int_equal(c2.state, TGSTORE_PENDING);

    /* reminders are recorded */
    assert_int_equal(tgstore_reminded(fx->ts, "42", T0 + 5000), 0);
    assert_int_equal(tgstore_chat_get(fx->ts, "42", &c2), 0);
    assert_int_equal(c2.reminded_ms, T0 + 5000);
    assert_int_equal(tgstore_reminded(fx->ts, "7", T0), SY_ENOTFOUND);

    /* many chats: codes all different */
    char seen[200][TGSTORE_CODE_LEN + 1];
    for (int i = 0; i < 200; i++) {
        char chat[16];
        snprintf(chat, sizeof chat, "%d", 1000 + i);
        assert_int_equal(tgstore_pair(fx->ts, chat, "u", T0, HOUR, &c2,
                                      &fresh), 0);
        assert_true(fresh && code_ok(c2.code));
        strcpy(seen[i], c2.code);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(seen[j], c2.code);
    }
    assert_int_equal(tgstore_pair(fx->ts, "", "u", T0, HOUR, &c2, &fresh),
                     SY_EINVAL);
    assert_int_equal(tgstore_pair(fx->ts, "123456789012345678901234567890123",
                                  "u", T0, HOUR, &c2, &fresh), SY_EINVAL);
}

static void test_approve_deny(void **state)
{
    fx_t *fx = *state;
    fx_open(fx);
    tgstore_chat_t a, b, out;
    bool fresh;
    assert_int_equal(tgstore_pair(fx->ts, "1", "tg:1", T0, HOUR, &a, &fresh), 0);
    assert_int_equal(tgstore_pair(fx->ts, "-100", "tg:2", T0, HOUR, &b,
                                  &fresh), 0);
    /* any case; the code is void afterwards */
    char lower[TGSTORE_CODE_LEN + 1];
    for (int i = 0; i <= TGSTORE_CODE_LEN; i++)
        lower[i] = (char) (a.code[i] >= 'A' && a.code[i] <= 'Z'
                           ? a.code[i] + 32 : a.code[i]);
    assert_int_equal(tgstore_decide(fx->ts, lower, true, T0 + 10, &out), 0);
    assert_string_equal(out.chat, "1");
    assert_int_equal(out.state, TGSTORE_ALLOWED);
    assert_string_equal(out.code, "");
    assert_int_equal(tgstore_decide(fx->ts, a.code, true, T0 + 20, &out),
                     SY_ENOTFOUND);
    assert_int_equal(tgstore_decide(fx->ts, b.code, false, T0 + 30, &out), 0);
    assert_int_equal(out.state, TGSTORE_DENIED);
    assert_int_equal(tgstore_decide(fx->ts, "ZZZZZZ", true, T0, &out),
                     SY_ENOTFOUND);

    /* decisions persist; a decided chat keeps its state when it writes */
    fx_reopen(fx);
    assert_int_equal(tgstore_chat_get(fx->ts, "1", &out), 0);
    assert_int_equal(out.state, TGSTORE_ALLOWED);
    assert_int_equal(tgstore_chat_get(fx->ts, "-100", &out), 0);
    assert_int_equal(out.state, TGSTORE_DENIED);
    assert_int_equal(tgstore_pair(fx->ts, "-100", "tg:2", T0 + 40, HOUR, &out,
                                  &fresh), 0);
    assert_false(fresh);
    assert_int_equal(out.state, TGSTORE_DENIED);

    /* by chat id: revoke the allowed one, allow the denied one */
    assert_int_equal(tgstore_decide(fx->ts, "1", false, T0 + 50, &out), 0);
    assert_int_equal(out.state, TGSTORE_DENIED);
    assert_int_equal(tgstore_decide(fx->ts, "-100", true, T0 + 60, &out), 0);
    assert_int_equal(out.state, TGSTORE_ALLOWED);
    /* a pending chat is decided by its code only */
    tgstore_chat_t p;
    assert_int_equal(tgstore_pair(fx->ts, "5", "tg:5", T0, HOUR, &p, &fresh),
                     0);
    assert_int_equal(tgstore_decide(fx->ts, "5", true, T0, &out),
                     SY_ENOTFOUND);

    tgstore_chat_t *list = NULL;
    size_t n = 0;
    assert_int_equal(tgstore_list(fx->ts, &list, &n), 0);
    assert_int_equal(n, 3);
    int pending = 0, allowed = 0, denied = 0;
    for (size_t i = 0; i < n; i++) {
        pending += list[i].state == TGSTORE_PENDING;
        allowed += list[i].state == TGSTORE_ALLOWED;
        denied += list[i].state == TGSTORE_DENIED;
        if (list[i].state == TGSTORE_PENDING)
            assert_string_equal(list[i].code, p.code);
    }
    assert_int_equal(pending, 1);
    assert_int_equal(allowed, 1);
    assert_int_equal(denied, 1);
    free(list);
    assert_string_equal(tgstore_state_name(TGSTORE_PENDING), "pending");
}

static void test_expiry(void **state)
{
    fx_t *fx = *state;
    fx_open(fx);
    tgstore_chat_t c, c2, out;
    bool fresh;
    assert_int_equal(tgstore_pair(fx->ts, "9", "tg:9", T0, HOUR, &c, &fresh),
                     0);
    /* too late: refused, and the chat stays pending */
    assert_int_equal(tgstore_decide(fx->ts, c.code, true, T0 + HOUR, &out),
                     SY_EEXPIRED);
    assert_int_equal(tgstore_chat_get(fx->ts, "9", &out), 0);
    assert_int_equal(out.state, TGSTORE_PENDING);
    /* its next message brings a new code; the old one is gone */
    assert_int_equal(tgstore_pair(fx->ts, "9", "tg:9", T0 + 2 * HOUR, HOUR,
                                  &c2, &fresh), 0);
    assert_true(fresh);
    assert_string_not_equal(c2.code, c.code);
    assert_int_equal(c2.since_ms, T0);          /* first seen, kept */
    assert_int_equal(c2.expires_ms, T0 + 3 * HOUR);
    assert_int_equal(tgstore_decide(fx->ts, c.code, true, T0 + 2 * HOUR,
                                    &out), SY_ENOTFOUND);
    assert_int_equal(tgstore_decide(fx->ts, c2.code, true, T0 + 2 * HOUR,
                                    &out), 0);
    assert_int_equal(out.state, TGSTORE_ALLOWED);
}

static void test_corrupt(void **state)
{
    fx_t *fx = *state;
    char err[512], path[128];
    /* garbage in data.mdb */
    snprintf(path, sizeof path, "%s/data.mdb", fx->dir);
    assert_int_equal(tutil_write_file(path, "%s", "this is not an LMDB file, "
                     "just some bytes that pretend to be one............"), 0);
    assert_int_equal(fx_open_rc(fx, err, sizeof err), SY_ESTORE);
    assert_null(fx->ts);
    assert_non_null(strstr(err, fx->dir));
    assert_non_null(strstr(err, "not an LMDB file"));
    /* never overwritten */
    FILE *f = fopen(path, "r");
    char buf[16] = "";
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_memory_equal(buf, "this is not", 11);
    unlink(path);
    snprintf(path, sizeof path, "%s/lock.mdb", fx->dir);
    unlink(path);

    /* an LMDB store of something else */
    MDB_env *env;
    MDB_txn *t;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
    assert_int_equal(mdb_env_open(env, fx->dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &t), 0);
    assert_int_equal(mdb_dbi_open(t, "other", MDB_CREATE, &dbi), 0);
    MDB_val k = { 3, "key" }, v = { 5, "value" };
    assert_int_equal(mdb_put(t, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(t), 0);
    mdb_env_close(env);
    assert_int_equal(fx_open_rc(fx, err, sizeof err), SY_ESTORE);
    assert_non_null(strstr(err, "not a telegram store"));

    /* another format version */
    tutil_rmtree(fx->dir);
    assert_int_equal(mkdir(fx->dir, 0700), 0);
    fx_open(fx);
    tgstore_destroy(&fx->ts);
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
    assert_int_equal(mdb_env_open(env, fx->dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &t), 0);
    assert_int_equal(mdb_dbi_open(t, "meta", 0, &dbi), 0);
    uint32_t ver = TGSTORE_FORMAT_VERSION + 1;
    MDB_val fk = { 6, "format" }, fv = { sizeof ver, &ver };
    assert_int_equal(mdb_put(t, dbi, &fk, &fv, 0), 0);
    assert_int_equal(mdb_txn_commit(t), 0);
    mdb_env_close(env);
    assert_int_equal(fx_open_rc(fx, err, sizeof err), SY_ESTORE);
    assert_non_null(strstr(err, "format version 2"));

    /* a damaged chat record is an error, not a crash */
    tutil_rmtree(fx->dir);
    assert_int_equal(mkdir(fx->dir, 0700), 0);
    fx_open(fx);
    tgstore_chat_t c;
    bool fresh;
    assert_int_equal(tgstore_pair(fx->ts, "77", "u", T0, HOUR, &c, &fresh), 0);
    tgstore_destroy(&fx->ts);
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
    assert_int_equal(mdb_env_open(env, fx->dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &t), 0);
    assert_int_equal(mdb_dbi_open(t, "chats", 0, &dbi), 0);
    MDB_val ck = { 2, "77" }, cv = { 3, "\x01\x00\xff" };
    assert_int_equal(mdb_put(t, dbi, &ck, &cv, 0), 0);
    assert_int_equal(mdb_txn_commit(t), 0);
    mdb_env_close(env);
    fx_open(fx);
    assert_int_equal(tgstore_chat_get(fx->ts, "77", &c), SY_ESTORE);
    tgstore_chat_t *list = NULL;
    size_t n = 0;
    assert_int_equal(tgstore_list(fx->ts, &list, &n), SY_ESTORE);
    assert_null(list);
}

static void test_bad_args(void **state)
{
    (void) state;
    tgstore_t *ts = NULL;
    char err[200];
    assert_int_equal(tgstore_open(NULL, &ts, err, sizeof err), SY_EINVAL);
    tgstore_opts_t o = { .dir = "" };
    assert_int_equal(tgstore_open(&o, &ts, err, sizeof err), SY_EINVAL);
    o.dir = "/proc/no/such/dir";
    assert_int_equal(tgstore_open(&o, &ts, err, sizeof err), SY_ESTORE);
    assert_non_null(strstr(err, "/proc/no/such/dir"));
    tgstore_destroy(&ts);
    tgstore_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_offset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pairing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_approve_deny, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
        cmocka_unit_test(test_bad_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
