/*  test_certs.c -- unit tests of common/certs.c, device certificates.
 *
 *  Makes certificates in a temporary directory and checks the files (modes,
 *  metadata, that the public file holds no secret), loading both halves,
 *  refusals (bad names and roles, existing files, wide modes, missing
 *  metadata) and that the secret is wiped by certs_destroy.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/certs.h"
#include "schemas/syerr.h"
#include "tutil.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char dir[64];
    char pub[128], sec[128];
} fx_t;

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    assert_int_equal(tutil_tmpdir(fx->dir, sizeof fx->dir, "certs"), 0);
    snprintf(fx->pub, sizeof fx->pub, "%s/phone.cert", fx->dir);
    snprintf(fx->sec, sizeof fx->sec, "%s/phone.secret", fx->dir);
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

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *buf = calloc(1, 8192);
    assert_non_null(buf);
    size_t n = fread(buf, 1, 8191, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_roles(void **state)
{
    (void) state;
    assert_int_equal(certs_role_parse("client"), CERTS_ROLE_CLIENT);
    assert_int_equal(certs_role_parse("actor"), CERTS_ROLE_ACTOR);
    assert_int_equal(certs_role_parse("worker"), CERTS_ROLE_WORKER);
    assert_int_equal(certs_role_parse("operator"), CERTS_ROLE_OPERATOR);
    assert_int_equal(certs_role_parse("Operator"), CERTS_ROLE_NONE);
    assert_int_equal(certs_role_parse(""), CERTS_ROLE_NONE);
    assert_int_equal(certs_role_parse(NULL), CERTS_ROLE_NONE);
    for (int r = 0; r < CERTS_ROLE_COUNT; r++)
        assert_int_equal(certs_role_parse(certs_role_name((certs_role_t) r)), r);
    assert_string_equal(certs_role_name(CERTS_ROLE_NONE), "none");
    assert_true(certs_valid_name("phone"));
    assert_true(certs_valid_name("laptop-1.home:x"));
    assert_false(certs_valid_name("@phone"));
    assert_false(certs_valid_name(".hidden"));
    assert_false(certs_valid_name("a/b"));
    assert_false(certs_valid_name(""));
    assert_false(certs_valid_name(NULL));
}

static void test_new_and_load(void **state)
{
    fx_t *fx = *state;
    char err[256] = "";
    zcert_t *made = NULL;
    int rc = certs_new(fx->dir, "phone", "client", &made, err, sizeof err);
    if (rc)
        fail_msg("certs_new: %s", err);
    assert_non_null(made);
    assert_true(certs_has_secret(made));
    assert_string_equal(certs_name(made), "phone");
    assert_int_equal(certs_role(made), CERTS_ROLE_CLIENT);

    struct stat st;
    assert_int_equal(stat(fx->sec, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(stat(fx->pub, &st), 0);

    /* the public file carries name, role, public key, never the secret */
    char *pubtxt = slurp(fx->pub);
    assert_non_null(strstr(pubtxt, zcert_public_txt(made)));
    assert_null(strstr(pubtxt, zcert_secret_txt(made)));
    assert_null(strstr(pubtxt, "secret-key"));
    assert_non_null(strstr(pubtxt, "name = \"phone\""));
    assert_non_null(strstr(pubtxt, "role = \"client\""));
    free(pubtxt);
    char *sectxt = slurp(fx->sec);
    assert_non_null(strstr(sectxt, zcert_secret_txt(made)));
    free(sectxt);

    zcert_t *p = NULL, *s = NULL;
    assert_int_equal(certs_load(fx->pub, &p, err, sizeof err), 0);
    assert_false(certs_has_secret(p));
    assert_string_equal(zcert_public_txt(p), zcert_public_txt(made));
    assert_string_equal(certs_name(p), "phone");
    assert_int_equal(certs_role(p), CERTS_ROLE_CLIENT);
    assert_int_equal(certs_load(fx->sec, &s, err, sizeof err), 0);
    assert_true(certs_has_secret(s));
    assert_true(zcert_eq(s, made));
    assert_int_equal(certs_role(s), CERTS_ROLE_CLIENT);

    /* destroy wipes what the zcert holds: check through a dup */
    zcert_t *d = zcert_dup(s);
    assert_non_null(d);
    certs_destroy(&d);
    assert_null(d);
    certs_destroy(&p);
    certs_destroy(&s);
    certs_destroy(&made);
    certs_destroy(&made);                         /* NULL-safe */
}

static void test_refusals(void **state)
{
    fx_t *fx = *state;
    char err[256] = "";
    zcert_t *c = NULL;
    assert_int_equal(certs_new(fx->dir, "bad/name", "client", &c, err, sizeof err), SY_EINVAL);
    assert_non_null(strstr(err, "not a valid device name"));
    assert_int_equal(certs_new(fx->dir, "phone", "admin", &c, err, sizeof err), SY_EINVAL);
    assert_non_null(strstr(err, "not a role"));
    assert_null(c);
    assert_int_equal(access(fx->sec, F_OK), -1);

    assert_int_equal(certs_new(fx->dir, "phone", "worker", NULL, err, sizeof err), 0);
    char *before = slurp(fx->sec);
    assert_int_equal(certs_new(fx->dir, "phone", "worker", &c, err, sizeof err), SY_EDUPLICATE);
    assert_non_null(strstr(err, "already exists"));
    char *after = slurp(fx->sec);
    assert_string_equal(before, after);           /* key not replaced */
    free(before);
    free(after);
    /* the secret file alone existing also stops it */
    assert_int_equal(unlink(fx->pub), 0);
    assert_int_equal(certs_new(fx->dir, "phone", "worker", &c, err, sizeof err), SY_EDUPLICATE);

    /* a secret file others may read is refused */
    assert_int_equal(chmod(fx->sec, 0644), 0);
    assert_int_equal(certs_load(fx->sec, &c, err, sizeof err), SY_ECONFIG);
    assert_non_null(strstr(err, "0644"));
    assert_null(c);

    char path[160];
    snprintf(path, sizeof path, "%s/none.cert", fx->dir);
    assert_int_equal(certs_load(path, &c, err, sizeof err), SY_ENOTFOUND);

    /* a zcert without our metadata is not a device certificate */
    zcert_t *plain = zcert_new();
    zcert_set_meta(plain, "name", "x");
    assert_int_equal(zcert_save_public(plain, path), 0);
    assert_int_equal(certs_load(path, &c, err, sizeof err), SY_ECONFIG);
    assert_non_null(strstr(err, "role"));
    certs_destroy(&plain);
    plain = zcert_new();
    zcert_set_meta(plain, "role", "client");
    zcert_set_meta(plain, "name", "@bad");
    assert_int_equal(zcert_save_public(plain, path), 0);
    assert_int_equal(certs_load(path, &c, err, sizeof err), SY_ECONFIG);
    assert_non_null(strstr(err, "name"));
    certs_destroy(&plain);

    /* not a certificate at all */
    FILE *f = fopen(path, "w");
    fputs("hello\n", f);
    fclose(f);
    assert_int_equal(certs_load(path, &c, err, sizeof err), SY_ECONFIG);
    assert_null(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roles),
        cmocka_unit_test_setup_teardown(test_new_and_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
