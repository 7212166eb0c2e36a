/*  test_seal.c -- unit tests of common/seal.c, encryption at rest.
 *
 *  Each test works in its own temporary directory: key file creation and
 *  its checks (mode, size, missing), round trips, and that a wrong key, a
 *  flipped bit, a swapped body (other associated data) or an unknown
 *  format are refused with their own codes and never return bytes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/seal.h"
#include "schemas/syerr.h"
#include "tutil.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char dir[64];
    char keydir[96];
    char keypath[128];
} fx_t;

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    assert_int_equal(tutil_tmpdir(fx->dir, sizeof fx->dir, "seal"), 0);
    snprintf(fx->keydir, sizeof fx->keydir, "%s/keys", fx->dir);
    snprintf(fx->keypath, sizeof fx->keypath, "%s/keys/" SEAL_KEY_FILE, fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    tutil_rmtree(fx->dir);
    free(fx);
    return 0;
}

static seal_t *open_ok(fx_t *fx, bool create)
{
    seal_t *s = NULL;
    char err[256] = "";
    int rc = seal_open(fx->keydir, create, &s, err, sizeof err);
    if (rc != 0)
        fail_msg("seal_open: %d %s", rc, err);
    assert_non_null(s);
    return s;
}

static void test_create_mode_and_size(void **state)
{
    fx_t *fx = *state;
    seal_t *s = open_ok(fx, true);
    struct stat st;
    assert_int_equal(stat(fx->keypath, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_size, SEAL_KEY_BYTES);
    assert_int_equal(stat(fx->keydir, &st), 0);
    assert_int_equal(st.st_mode & 0077, 0);
    assert_string_equal(seal_path(s), fx->keypath);
    seal_destroy(&s);
    assert_null(s);
    seal_destroy(&s);                           /* NULL-safe */
}

static void test_round_trip(void **state)
{
    fx_t *fx = *state;
    seal_t *s = open_ok(fx, true);
    const char *msg = "meet me at the station at nine";
    const uint8_t id[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
    uint8_t rec[256], back[256];
    size_t rlen = 0, blen = 0;
    assert_int_equal(seal_encrypt(s, id, 16, (const uint8_t *) msg, strlen(msg),
                                  rec, sizeof rec, &rlen), 0);
    assert_int_equal(rlen, strlen(msg) + SEAL_OVERHEAD);
    assert_int_equal(rec[0], SEAL_FORMAT_V1);
    assert_null(memmem(rec, rlen, "station", 7));     /* no plaintext inside */
    assert_int_equal(seal_decrypt(s, id, 16, rec, rlen, back, sizeof back, &blen), 0);
    assert_int_equal(blen, strlen(msg));
    assert_memory_equal(back, msg, blen);

    /* the same plaintext twice gives different records (random nonce) */
    uint8_t rec2[256];
    size_t rlen2 = 0;
    assert_int_equal(seal_encrypt(s, id, 16, (const uint8_t *) msg, strlen(msg),
                                  rec2, sizeof rec2, &rlen2), 0);
    assert_int_equal(rlen2, rlen);
    assert_memory_not_equal(rec, rec2, rlen);

    /* an empty body seals and opens too */
    assert_int_equal(seal_encrypt(s, NULL, 0, NULL, 0, rec, sizeof rec, &rlen), 0);
    assert_int_equal(rlen, SEAL_OVERHEAD);
    assert_int_equal(seal_decrypt(s, NULL, 0, rec, rlen, back, sizeof back, &blen), 0);
    assert_int_equal(blen, 0);
    seal_destroy(&s);
}

/* A key read back by a second open is the same key. */
static void test_reopen_same_key(void **state)
{
    fx_t *fx = *state;
    seal_t *a = open_ok(fx, true);
    uint8_t rec[64], back[64], fa[SEAL_FINGERPRINT_BYTES], fb[SEAL_FINGERPRINT_BYTES];
    size_t rlen, blen;
    assert_int_equal(seal_encrypt(a, (const uint8_t *) "id", 2, (const uint8_t *) "hello", 5,
                                  rec, sizeof rec, &rlen), 0);
    seal_fingerprint(a, fa);
    seal_destroy(&a);
    seal_t *b = open_ok(fx, false);
    seal_fingerprint(b, fb);
    assert_memory_equal(fa, fb, sizeof fa);
    assert_int_equal(seal_decrypt(b, (const uint8_t *) "id", 2, rec, rlen, back, sizeof back, &blen), 0);
    assert_memory_equal(back, "hello", 5);
    seal_destroy(&b);
}

static void test_wrong_key_tamper_swap(void **state)
{
    fx_t *fx = *state;
    seal_t *s = open_ok(fx, true);
    uint8_t rec[64], back[64], fa[SEAL_FINGERPRINT_BYTES], fb[SEAL_FINGERPRINT_BYTES];
    size_t rlen, blen = 99;
    assert_int_equal(seal_encrypt(s, (const uint8_t *) "id-1", 4, (const uint8_t *) "secret text", 11,
                                  rec, sizeof rec, &rlen), 0);
    seal_fingerprint(s, fa);

    /* body swapped into another record: other associated data */
    assert_int_equal(seal_decrypt(s, (const uint8_t *) "id-2", 4, rec, rlen, back, sizeof back, &blen),
                     SY_ECRYPTO);
    assert_int_equal(blen, 0);
    /* every single flipped bit is detected */
    for (size_t i = 1; i < rlen; i++) {
        rec[i] ^= 0x10;
        assert_int_equal(seal_decrypt(s, (const uint8_t *) "id-1", 4, rec, rlen,
                                      back, sizeof back, &blen), SY_ECRYPTO);
        rec[i] ^= 0x10;
    }
    /* truncated */
    assert_int_equal(seal_decrypt(s, (const uint8_t *) "id-1", 4, rec, rlen - 1,
                                  back, sizeof back, &blen), SY_ECRYPTO);
    assert_int_equal(seal_decrypt(s, (const uint8_t *) "id-1", 4, rec, 3,
                                  back, sizeof back, &blen), SY_ECRYPTO);
    /* unknown format */
    rec[0] = 7;
    assert_int_equal(seal_decrypt(s, (const uint8_t *) "id-1", 4, rec, rlen,
                                  back, sizeof back, &blen), SY_EVERSION);
    rec[0] = SEAL_FORMAT_V1;
    /* output too small, input too large for the buffer */
    assert_int_equal(seal_decrypt(s, (const uint8_t *) "id-1", 4, rec, rlen, back, 5, &blen),
                     SY_ENOSPACE);
    assert_int_equal(seal_encrypt(s, NULL, 0, (const uint8_t *) "secret text", 11, rec, 11 + SEAL_OVERHEAD - 1,
                                  &rlen), SY_ENOSPACE);
    assert_int_equal(seal_encrypt(s, (const uint8_t *) "id-1", 4, (const uint8_t *) "secret text", 11,
                                  rec, sizeof rec, &rlen), 0);
    seal_destroy(&s);

    /* a different key: replace the key file */
    assert_int_equal(unlink(fx->keypath), 0);
    s = open_ok(fx, true);
    seal_fingerprint(s, fb);
    assert_memory_not_equal(fa, fb, sizeof fa);
    memset(back, 0xAA, sizeof back);
    assert_int_equal(seal_decrypt(s, (const uint8_t *) "id-1", 4, rec, rlen, back, sizeof back, &blen),
                     SY_ECRYPTO);
    assert_null(memmem(back, sizeof back, "secret", 6));
    seal_destroy(&s);
}

static void test_missing_key(void **state)
{
    fx_t *fx = *state;
    seal_t *s = (seal_t *) 1;
    char err[256] = "";
    assert_int_equal(seal_open(fx->keydir, false, &s, err, sizeof err), SY_ENOTFOUND);
    assert_null(s);
    assert_non_null(strstr(err, fx->keypath));
    assert_non_null(strstr(err, "missing"));
    assert_non_null(strstr(err, "already holds data"));
    assert_int_equal(access(fx->keypath, F_OK), -1);   /* not created */
}

static void test_bad_mode_size_type(void **state)
{
    fx_t *fx = *state;
    seal_t *s = open_ok(fx, true);
    seal_destroy(&s);
    char err[256] = "";

    assert_int_equal(chmod(fx->keypath, 0640), 0);
    assert_int_equal(seal_open(fx->keydir, true, &s, err, sizeof err), SY_ECONFIG);
    assert_null(s);
    assert_non_null(strstr(err, "0640"));
    assert_non_null(strstr(err, "wider than 0600"));
    assert_int_equal(chmod(fx->keypath, 0700), 0);
    assert_int_equal(seal_open(fx->keydir, true, &s, err, sizeof err), SY_ECONFIG);
    assert_int_equal(chmod(fx->keypath, 0400), 0);     /* narrower is fine */
    s = open_ok(fx, false);
    seal_destroy(&s);
    assert_int_equal(chmod(fx->keypath, 0600), 0);

    assert_int_equal(truncate(fx->keypath, 31), 0);
    assert_int_equal(seal_open(fx->keydir, true, &s, err, sizeof err), SY_ESTORE);
    assert_non_null(strstr(err, "31 bytes"));
    assert_int_equal(truncate(fx->keypath, 33), 0);
    assert_int_equal(seal_open(fx->keydir, true, &s, err, sizeof err), SY_ESTORE);
    assert_null(s);

    /* a symlink is refused, not followed */
    assert_int_equal(unlink(fx->keypath), 0);
    char target[160];
    snprintf(target, sizeof target, "%s/elsewhere", fx->dir);
    int fd = open(target, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "0123456789abcdef0123456789abcdef", 32), 32);
    close(fd);
    assert_int_equal(symlink(target, fx->keypath), 0);
    assert_int_equal(seal_open(fx->keydir, true, &s, err, sizeof err), SY_ECONFIG);
    assert_non_null(strstr(err, "symbolic link"));
    assert_null(s);

    /* a directory where the key file should be */
    assert_int_equal(unlink(fx->keypath), 0);
    assert_int_equal(mkdir(fx->keypath, 0700), 0);
    assert_int_not_equal(seal_open(fx->keydir, true, &s, err, sizeof err), 0);
    assert_null(s);
}

static void test_bad_args(void **state)
{
    fx_t *fx = *state;
    seal_t *s = NULL;
    assert_int_equal(seal_open(NULL, true, &s, NULL, 0), SY_EINVAL);
    s = open_ok(fx, true);
    uint8_t rec[64];
    size_t n;
    assert_int_equal(seal_encrypt(s, NULL, 3, (const uint8_t *) "x", 1, rec, sizeof rec, &n), SY_EINVAL);
    assert_int_equal(seal_encrypt(NULL, NULL, 0, (const uint8_t *) "x", 1, rec, sizeof rec, &n), SY_EINVAL);
    assert_int_equal(seal_decrypt(s, NULL, 0, NULL, 5, rec, sizeof rec, &n), SY_EINVAL);
    seal_destroy(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_mode_and_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_same_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_key_tamper_swap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_mode_size_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
