/*  test_allowlist.c -- unit tests of broker/allowlist.c.
 *
 *  Device certificates are made with certs_new in a temporary "devices"
 *  directory and enrolled into a temporary allow-list directory.  Checks:
 *  lookups by key, binary key and name; enroll/revoke; that a revoked key
 *  copied back stays refused until enrolled again; that a second list
 *  object (another process, like syctl) sees changes through refresh,
 *  with the removed names handed out once; that a certificate edited in
 *  place (directory unchanged) is seen by refresh; duplicates and bad files
 *  ignored; the single-file form; a group-writable directory refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker/allowlist.h"
#include "schemas/syerr.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char root[64];
    char dev[96];       /* where devices keep their certificates */
    char list[96];      /* the broker's allow-list directory */
} fx_t;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st; (void) flag; (void) ftw;
    return remove(p);
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    strcpy(fx->root, "/tmp/sy-allow-XXXXXX");
    assert_non_null(mkdtemp(fx->root));
    snprintf(fx->dev, sizeof fx->dev, "%s/dev", fx->root);
    snprintf(fx->list, sizeof fx->list, "%s/enrolled", fx->root);
    assert_int_equal(mkdir(fx->dev, 0700), 0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    nftw(fx->root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

/* Makes a device certificate; returns its public key (Z85) in key. */
static void mkdev(fx_t *fx, const char *name, const char *role, char key[41])
{
    char err[256];
    zcert_t *c = NULL;
    int rc = certs_new(fx->dev, name, role, &c, err, sizeof err);
    if (rc)
        fail_msg("certs_new %s: %s", name, err);
    snprintf(key, 41, "%s", zcert_public_txt(c));
    certs_destroy(&c);
}

static void devpath(fx_t *fx, const char *name, const char *ext, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s%s", fx->dev, name, ext);
}

static allowlist_t *open_list(fx_t *fx)
{
    char err[256];
    allowlist_t *al = NULL;
    int rc = allowlist_new(fx->list, &al, err, sizeof err);
    if (rc)
        fail_msg("allowlist_new: %s", err);
    return al;
}

static bool list_has(zlist_t *l, const char *name)
{
    for (const char *s = zlist_first(l); s; s = zlist_next(l))
        if (strcmp(s, name) == 0)
            return true;
    return false;
}

static void test_enroll_lookup(void **state)
{
    fx_t *fx = *state;
    char kphone[41], klap[41], path[256], err[256];
    mkdev(fx, "phone", "client", kphone);
    mkdev(fx, "laptop", "worker", klap);

    allowlist_t *al = open_list(fx);
    struct stat st;
    assert_int_equal(stat(fx->list, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 077, 0);
    assert_int_equal(allowlist_size(al), 0);
    assert_null(allowlist_lookup(al, kphone));

    devpath(fx, "phone", ".cert", path, sizeof path);
    assert_int_equal(allowlist_enroll(al, path, err, sizeof err), 0);
    devpath(fx, "laptop", ".secret", path, sizeof path);     /* the secret half works too */
    assert_int_equal(allowlist_enroll(al, path, err, sizeof err), 0);
    assert_int_equal(allowlist_enroll(al, path, err, sizeof err), 0);   /* again: no-op */
    assert_int_equal(allowlist_size(al), 2);

    /* the enrolled copy holds no secret */
    char enrolled[256];
    snprintf(enrolled, sizeof enrolled, "%s/laptop.cert", fx->list);
    zcert_t *c = NULL;
    assert_int_equal(certs_load(enrolled, &c, err, sizeof err), 0);
    assert_false(certs_has_secret(c));
    certs_destroy(&c);

    const allowlist_entry_t *e = allowlist_lookup(al, kphone);
    assert_non_null(e);
    assert_string_equal(e->name, "phone");
    assert_int_equal(e->role, CERTS_ROLE_CLIENT);
    uint8_t bin[32];
    assert_non_null(zmq_z85_decode(bin, klap));
    e = allowlist_lookup_bin(al, bin);
    assert_non_null(e);
    assert_string_equal(e->name, "laptop");
    assert_int_equal(e->role, CERTS_ROLE_WORKER);
    e = allowlist_lookup_name(al, "phone");
    assert_non_null(e);
    assert_string_equal(e->key, kphone);
    assert_string_equal(allowlist_at(al, 0)->name, "laptop");      /* name order */
    assert_string_equal(allowlist_at(al, 1)->name, "phone");
    assert_null(allowlist_at(al, 2));
    allowlist_destroy(&al);
    assert_null(al);

    /* a new object reads the same from disk */
    al = open_list(fx);
    assert_int_equal(allowlist_size(al), 2);
    assert_non_null(allowlist_lookup(al, kphone));
    allowlist_destroy(&al);
}

static void test_duplicates_refused(void **state)
{
    fx_t *fx = *state;
    char k1[41], k2[41], path[256], err[256];
    mkdev(fx, "phone", "client", k1);
    allowlist_t *al = open_list(fx);
    devpath(fx, "phone", ".cert", path, sizeof path);
    assert_int_equal(allowlist_enroll(al, path, err, sizeof err), 0);

    /* another key under the same name */
    char other[96];
    snprintf(other, sizeof other, "%s/other", fx->root);
    assert_int_equal(mkdir(other, 0700), 0);
    zcert_t *c = NULL;
    assert_int_equal(certs_new(other, "phone", "operator", &c, err, sizeof err), 0);
    snprintf(k2, sizeof k2, "%s", zcert_public_txt(c));
    certs_destroy(&c);
    snprintf(path, sizeof path, "%s/phone.cert", other);
    assert_int_equal(allowlist_enroll(al, path, err, sizeof err), SY_EDUPLICATE);
    assert_non_null(strstr(err, "revoke it first"));
    assert_null(allowlist_lookup(al, k2));
    assert_int_equal(allowlist_lookup_name(al, "phone")->role, CERTS_ROLE_CLIENT);
    allowlist_destroy(&al);
}

static void test_revoke_sticky(void **state)
{
    fx_t *fx = *state;
    char kphone[41], kpc[41], path[256], err[256], copy[256];
    mkdev(fx, "phone", "client", kphone);
    mkdev(fx, "pc", "operator", kpc);
    allowlist_t *al = open_list(fx);
    devpath(fx, "phone", ".cert", path, sizeof path);
    assert_int_equal(allowlist_enroll(al, path, err, sizeof err), 0);
    devpath(fx, "pc", ".cert", path, sizeof path);
    assert_int_equal(allowlist_enroll(al, path, err, sizeof err), 0);

    assert_int_equal(allowlist_revoke(al, "phone", err, sizeof err), 0);
    assert_null(allowlist_lookup(al, kphone));
    assert_null(allowlist_lookup_name(al, "phone"));
    assert_true(allowlist_is_revoked(al, kphone));
    assert_non_null(allowlist_lookup(al, kpc));
    snprintf(copy, sizeof copy, "%s/phone.cert", fx->list);
    assert_int_equal(access(copy, F_OK), -1);
    assert_int_equal(allowlist_revoke(al, "phone", err, sizeof err), SY_ENOTFOUND);
    assert_int_equal(allowlist_revoke(al, "nobody", err, sizeof err), SY_ENOTFOUND);

    /* the removed name is handed out once */
    zlist_t *removed = NULL;
    bool changed = false;
    assert_int_equal(allowlist_refresh(al, &changed, &removed), 0);
    assert_true(changed);
    assert_non_null(removed);
    assert_int_equal(zlist_size(removed), 1);
    assert_true(list_has(removed, "phone"));
    zlist_destroy(&removed);

    /* copying the old certificate back does not re-admit it */
    devpath(fx, "phone", ".cert", path, sizeof path);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "cp %s %s", path, copy);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(allowlist_reload(al, &removed), 0);
    assert_null(removed);
    assert_null(allowlist_lookup(al, kphone));
    allowlist_t *fresh = open_list(fx);
    assert_null(allowlist_lookup(fresh, kphone));
    assert_non_null(allowlist_lookup(fresh, kpc));
    allowlist_destroy(&fresh);

    /* enrolling it again does */
    assert_int_equal(allowlist_enroll(al, path, err, sizeof err), 0);
    assert_non_null(allowlist_lookup(al, kphone));
    assert_false(allowlist_is_revoked(al, kphone));
    allowlist_destroy(&al);
}

/* Another process (here: another object) revokes; refresh sees it. */
static void test_refresh_sees_other_writer(void **state)
{
    fx_t *fx = *state;
    char kphone[41], kpc[41], path[256], err[256];
    mkdev(fx, "phone", "client", kphone);
    mkdev(fx, "pc", "actor", kpc);
    allowlist_t *broker = open_list(fx);
    allowlist_t *syctl = open_list(fx);
    zlist_t *removed = NULL;
    bool changed = false;

    devpath(fx, "phone", ".cert", path, sizeof path);
    assert_int_equal(allowlist_enroll(syctl, path, err, sizeof err), 0);
    assert_null(allowlist_lookup(broker, kphone));
    assert_int_equal(allowlist_refresh(broker, &changed, &removed), 0);
    assert_true(changed);
    assert_null(removed);
    assert_non_null(allowlist_lookup(broker, kphone));

    devpath(fx, "pc", ".cert", path, sizeof path);
    assert_int_equal(allowlist_enroll(syctl, path, err, sizeof err), 0);
    assert_int_equal(allowlist_revoke(syctl, "phone", err, sizeof err), 0);
    /* both changes right after each other, within one timestamp tick
       possibly: the broker's copy must still see the second */
    assert_int_equal(allowlist_refresh(broker, &changed, &removed), 0);
    assert_true(changed);
    assert_non_null(removed);
    assert_true(list_has(removed, "phone"));
    zlist_destroy(&removed);
    assert_null(allowlist_lookup(broker, kphone));
    assert_non_null(allowlist_lookup(broker, kpc));

    /* once the files are older than the racy window nothing reloads */
    sleep(3);
    (void) allowlist_refresh(broker, NULL, &removed);
    zlist_destroy(&removed);
    assert_int_equal(allowlist_refresh(broker, &changed, &removed), 0);
    assert_false(changed);
    assert_null(removed);
    allowlist_destroy(&broker);
    allowlist_destroy(&syctl);
}

/* Copies the file src over dst in place (same inode: the directory's
   mtime does not move). */
static void overwrite_in_place(const char *src, const char *dst)
{
    char buf[4096];
    FILE *in = fopen(src, "rb");
    assert_non_null(in);
    size_t n = fread(buf, 1, sizeof buf, in);
    fclose(in);
    assert_true(n > 0 && n < sizeof buf);
    FILE *out = fopen(dst, "r+b");      /* r+: never a new file */
    assert_non_null(out);
    assert_int_equal(ftruncate(fileno(out), 0), 0);
    assert_int_equal(fwrite(buf, 1, n, out), n);
    assert_int_equal(fclose(out), 0);
}

/* A certificate edited in place (another key under the same name) is
   seen by refresh although the directory did not change. */
static void test_refresh_sees_edit_in_place(void **state)
{
    fx_t *fx = *state;
    char k1[41], k2[41], path[256], err[256], enrolled[256];
    mkdev(fx, "phone", "client", k1);
    allowlist_t *al = open_list(fx);
    devpath(fx, "phone", ".cert", path, sizeof path);
    assert_int_equal(allowlist_enroll(al, path, err, sizeof err), 0);
    assert_non_null(allowlist_lookup(al, k1));

    /* let the racy window pass, so only the file's own stamp can tell */
    sleep(3);
    zlist_t *removed = NULL;
    bool changed = true;
    assert_int_equal(allowlist_refresh(al, &changed, &removed), 0);
    zlist_destroy(&removed);
    assert_int_equal(allowlist_refresh(al, &changed, &removed), 0);
    assert_false(changed);
    assert_null(removed);

    snprintf(enrolled, sizeof enrolled, "%s/phone.cert", fx->list);
    struct stat before, after;
    assert_int_equal(stat(fx->list, &before), 0);
    /* a new key under the same name, made elsewhere */
    char other[96];
    snprintf(other, sizeof other, "%s/other", fx->root);
    assert_int_equal(mkdir(other, 0700), 0);
    zcert_t *c = NULL;
    assert_int_equal(certs_new(other, "phone", "client", &c, err, sizeof err), 0);
    snprintf(k2, sizeof k2, "%s", zcert_public_txt(c));
    certs_destroy(&c);
    assert_string_not_equal(k1, k2);
    snprintf(path, sizeof path, "%s/phone.cert", other);
    overwrite_in_place(path, enrolled);
    assert_int_equal(stat(fx->list, &after), 0);
    assert_int_equal(before.st_mtim.tv_sec, after.st_mtim.tv_sec);
    assert_int_equal(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);

    assert_int_equal(allowlist_refresh(al, &changed, &removed), 0);
    assert_true(changed);
    assert_non_null(removed);
    assert_true(list_has(removed, "phone"));   /* its old key went away */
    zlist_destroy(&removed);
    assert_null(allowlist_lookup(al, k1));
    assert_non_null(allowlist_lookup(al, k2));
    allowlist_destroy(&al);
}

static void test_bad_files_ignored(void **state)
{
    fx_t *fx = *state;
    char k[41], path[256], err[256], cmd[700];
    mkdev(fx, "phone", "client", k);
    allowlist_t *al = open_list(fx);
    /* junk, a secret file, a certificate under another file name */
    snprintf(path, sizeof path, "%s/junk.cert", fx->list);
    FILE *f = fopen(path, "w");
    fputs("not a cert\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "cp -p %s/phone.secret %s/phone.cert", fx->dev, fx->list);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(allowlist_reload(al, NULL), 0);
    assert_int_equal(allowlist_size(al), 0);
    snprintf(cmd, sizeof cmd, "rm %s/phone.cert; cp %s/phone.cert %s/tablet.cert",
             fx->list, fx->dev, fx->list);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(allowlist_reload(al, NULL), 0);
    assert_int_equal(allowlist_size(al), 0);
    assert_null(allowlist_lookup(al, k));
    /* a bad revoked line is skipped, the rest stands */
    snprintf(path, sizeof path, "%s/" ALLOWLIST_REVOKED_FILE, fx->list);
    f = fopen(path, "w");
    fputs("# comment\nshort phone\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "mv %s/tablet.cert %s/phone.cert", fx->list, fx->list);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(allowlist_reload(al, NULL), 0);
    assert_non_null(allowlist_lookup(al, k));
    (void) err;
    allowlist_destroy(&al);
}

static void test_single_file_and_modes(void **state)
{
    fx_t *fx = *state;
    char k[41], path[256], err[256];
    mkdev(fx, "phone", "client", k);
    devpath(fx, "phone", ".cert", path, sizeof path);
    allowlist_t *al = NULL;
    assert_int_equal(allowlist_new(path, &al, err, sizeof err), 0);
    assert_int_equal(allowlist_size(al), 1);
    assert_string_equal(allowlist_lookup(al, k)->name, "phone");
    assert_int_equal(allowlist_revoke(al, "phone", err, sizeof err), SY_EINVAL);
    assert_int_equal(allowlist_refresh(al, NULL, NULL), 0);
    allowlist_destroy(&al);

    assert_int_equal(mkdir(fx->list, 0770), 0);
    assert_int_equal(chmod(fx->list, 0770), 0);
    assert_int_equal(allowlist_new(fx->list, &al, err, sizeof err), SY_ECONFIG);
    assert_non_null(strstr(err, "writable by group"));
    assert_null(al);
    assert_int_equal(allowlist_new("", &al, err, sizeof err), SY_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_enroll_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke_sticky, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_sees_other_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_sees_edit_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_files_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_single_file_and_modes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
