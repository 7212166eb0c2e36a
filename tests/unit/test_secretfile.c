/*  test_secretfile.c -- common/secretfile: which token files are taken.
 *
 *  Taken: an owner-only regular file holding a printable token (trailing
 *  newline cut).  Refused with SY_ECONFIG and a message naming the file:
 *  missing, a directory, a symlink, mode open to group or others, empty,
 *  longer than the buffer, a space or control character inside.  The
 *  token never appears in the message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/secretfile.h"
#include "schemas/syerr.h"
#include "tests/unit/tutil.h"

typedef struct {
    char dir[256];
    char path[300];
} fx_t;

static int setup(void **state)
{
    static fx_t fx;
    if (tutil_tmpdir(fx.dir, sizeof fx.dir, "secretfile"))
        return -1;
    snprintf(fx.path, sizeof fx.path, "%s/key", fx.dir);
    *state = &fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    tutil_rmtree(fx->dir);
    return 0;
}

static void put(const fx_t *fx, const char *text, mode_t mode)
{
    unlink(fx->path);
    assert_int_equal(tutil_write_file(fx->path, "%s", text), 0);
    assert_int_equal(chmod(fx->path, mode), 0);
}

static int read_it(const fx_t *fx, char *out, size_t cap, size_t *len,
                   char *err)
{
    err[0] = 0;
    return secretfile_read(fx->path, "x/key_file", out, cap, len, err, 256);
}

static void test_owner_only_token_is_read(void **state)
{
    fx_t *fx = *state;
    char out[64], err[256];
    size_t len = 99;
    put(fx, "sk-Abc_123:xyz\r\n", 0600);
    assert_int_equal(read_it(fx, out, sizeof out, &len, err), 0);
    assert_string_equal(out, "sk-Abc_123:xyz");
    assert_int_equal(len, 14);
    put(fx, "tok", 0400);
    assert_int_equal(read_it(fx, out, sizeof out, &len, err), 0);
    assert_string_equal(out, "tok");
}

static void expect_refused(const fx_t *fx, size_t cap, const char *word)
{
    char out[64], err[256];
    size_t len = 99;
    memset(out, 'Q', sizeof out);
    assert_int_equal(read_it(fx, out, cap, &len, err), SY_ECONFIG);
    assert_int_equal(len, 0);
    assert_int_equal(out[0], 0);
    if (!strstr(err, fx->path) || !strstr(err, word))
        fail_msg("message '%s' lacks the path or '%s'", err, word);
    assert_null(strstr(err, "SECRET"));
}

static void test_bad_files_are_refused(void **state)
{
    fx_t *fx = *state;
    expect_refused(fx, 64, "No such file");
    put(fx, "SECRET\n", 0644);
    expect_refused(fx, 64, "0644");
    put(fx, "SECRET\n", 0660);
    expect_refused(fx, 64, "chmod 600");
    put(fx, "\n \n", 0600);
    expect_refused(fx, 64, "empty");
    put(fx, "SEC RET\n", 0600);
    expect_refused(fx, 64, "space or control");
    put(fx, "SECRET\x01\n", 0600);
    expect_refused(fx, 64, "space or control");
    put(fx, "SECRETSECRETSECRET\n", 0600);
    expect_refused(fx, 8, "longer than 7");
    /* a symlink to a good file, and a directory */
    char real[320];
    snprintf(real, sizeof real, "%s/real", fx->dir);
    assert_int_equal(tutil_write_file(real, "SECRET"), 0);
    assert_int_equal(chmod(real, 0600), 0);
    unlink(fx->path);
    assert_int_equal(symlink(real, fx->path), 0);
    expect_refused(fx, 64, "key");
    unlink(fx->path);
    assert_int_equal(mkdir(fx->path, 0700), 0);
    expect_refused(fx, 64, "not a regular file");
    rmdir(fx->path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_owner_only_token_is_read,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_files_are_refused,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
