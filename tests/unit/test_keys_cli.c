/*  test_keys_cli.c -- `syctl keys` and the parts of it that need no
 *  broker: the pure helpers (revoked-file lines, the default key
 *  directory, the keys ls table, certificate path resolution, the
 *  security settings an actor takes from the configuration), then the
 *  real syctl binary ($SY_BIN_DIR/syctl, default bin/) run on a temporary
 *  directory: new, enroll, ls, revoke, broker, with their exit codes, file
 *  modes, the rule that a secret key is never printed, and the rule that
 *  the operator names the role at enroll (--role; a certificate made with
 *  another role is refused).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <czmq.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "actors/actor.h"
#include "common/certs.h"
#include "common/config.h"
#include "schemas/syerr.h"
#include "tools/syctl_fmt.h"

#define KEY_A "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"

/* ------------------------------------------------------------ helpers */

static void pk_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

static char *capture_keys(const msgpack_sbuffer *sb, int *rc)
{
    char *out = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&out, &n);
    assert_non_null(f);
    *rc = syctl_fmt_keys(f, (const uint8_t *) sb->data, sb->size);
    fclose(f);
    return out;
}

/* ------------------------------------------------------------ pure */

static void test_revoked_line(void **state)
{
    (void) state;
    char key[41], name[65];
    assert_int_equal(syctl_fmt_revoked_line(KEY_A " phone\n", key, name), 0);
    assert_string_equal(key, KEY_A);
    assert_string_equal(name, "phone");
    assert_int_equal(syctl_fmt_revoked_line("  " KEY_A "\n", key, name), 0);
    assert_string_equal(name, "?");
    assert_int_equal(syctl_fmt_revoked_line("# keys revoked\n", key, name), 1);
    assert_int_equal(syctl_fmt_revoked_line("\n", key, name), 1);
    assert_int_equal(syctl_fmt_revoked_line("", key, name), 1);
    assert_int_equal(syctl_fmt_revoked_line("short phone\n", key, name),
                     SY_EINVAL);
    assert_int_equal(syctl_fmt_revoked_line(KEY_A "x phone\n", key, name),
                     SY_EINVAL);
    char longname[200];
    snprintf(longname, sizeof longname, "%s %065d\n", KEY_A, 7);
    assert_int_equal(syctl_fmt_revoked_line(longname, key, name), SY_EINVAL);
}

static void test_keys_dir(void **state)
{
    (void) state;
    char out[64];
    assert_int_equal(syctl_fmt_keys_dir("/d", "/x/y/me.secret", out, sizeof out), 0);
    assert_string_equal(out, "/d");
    assert_int_equal(syctl_fmt_keys_dir(NULL, "/x/y/me.secret", out, sizeof out), 0);
    assert_string_equal(out, "/x/y");
    assert_int_equal(syctl_fmt_keys_dir(NULL, "var/k/me", out, sizeof out), 0);
    assert_string_equal(out, "var/k");
    assert_int_equal(syctl_fmt_keys_dir(NULL, "me.secret", out, sizeof out), 0);
    assert_string_equal(out, ".");
    assert_int_equal(syctl_fmt_keys_dir(NULL, "/me.secret", out, sizeof out), 0);
    assert_string_equal(out, "/");
    assert_int_equal(syctl_fmt_keys_dir(NULL, "", out, sizeof out), 0);
    assert_string_equal(out, "var/keys");
    assert_int_equal(syctl_fmt_keys_dir("", NULL, out, sizeof out), 0);
    assert_string_equal(out, "var/keys");
    assert_int_equal(syctl_fmt_keys_dir("/a/very/long/directory", NULL, out, 8),
                     SY_EINVAL);
}

static void test_keys_table(void **state)
{
    (void) state;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_map(&pk, 4);
    pk_str(&pk, "name");    pk_str(&pk, "laptop-of-somebody");
    pk_str(&pk, "role");    pk_str(&pk, "operator");
    pk_str(&pk, "key");     pk_str(&pk, KEY_A);
    pk_str(&pk, "revoked"); msgpack_pack_false(&pk);
    msgpack_pack_map(&pk, 4);
    pk_str(&pk, "name");    pk_str(&pk, "phone");
    pk_str(&pk, "role");    msgpack_pack_nil(&pk);
    pk_str(&pk, "key");     pk_str(&pk, "abc");
    pk_str(&pk, "revoked"); msgpack_pack_true(&pk);
    int rc;
    char *out = capture_keys(&sb, &rc);
    assert_int_equal(rc, 0);
    /* title, two rows; the key cut to its prefix; yes/no */
    assert_non_null(strstr(out, "NAME"));
    assert_non_null(strstr(out, "REVOKED"));
    assert_non_null(strstr(out, "rq:rM>}U?@Ln..."));
    assert_null(strstr(out, KEY_A));
    const char *phone = strstr(out, "phone");
    assert_non_null(phone);
    assert_non_null(strstr(phone, " - "));
    assert_non_null(strstr(phone, "abc"));
    assert_non_null(strstr(phone, "yes"));
    const char *laptop = strstr(out, "laptop-of-somebody");
    assert_non_null(laptop);
    assert_true(strstr(laptop, "no") < phone);
    /* columns line up: "ROLE" starts where "operator" does */
    const char *nl = strchr(out, '\n');
    assert_int_equal(strstr(out, "ROLE") - out, strstr(laptop, "operator") - (nl + 1));
    free(out);
    msgpack_sbuffer_destroy(&sb);

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 0);
    out = capture_keys(&sb, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "no certificates enrolled\n");
    free(out);
    msgpack_sbuffer_destroy(&sb);
}

static void test_cert_paths(void **state)
{
    (void) state;
    char sec[64], pub[64];
    assert_int_equal(actor_cert_paths("k/me.secret", sec, pub, sizeof sec), 0);
    assert_string_equal(sec, "k/me.secret");
    assert_string_equal(pub, "k/me.cert");
    assert_int_equal(actor_cert_paths("k/me.cert", sec, pub, sizeof sec), 0);
    assert_string_equal(sec, "k/me.secret");
    assert_string_equal(pub, "k/me.cert");
    assert_int_equal(actor_cert_paths("k/me", sec, NULL, sizeof sec), 0);
    assert_string_equal(sec, "k/me.secret");
    assert_int_equal(actor_cert_paths("me.x", NULL, pub, sizeof pub), 0);
    assert_string_equal(pub, "me.x.cert");
    assert_int_equal(actor_cert_paths("", sec, pub, sizeof sec), SY_EINVAL);
    assert_int_equal(actor_cert_paths(NULL, sec, pub, sizeof sec), SY_EINVAL);
    assert_int_equal(actor_cert_paths("k/.secret", sec, pub, sizeof sec),
                     SY_EINVAL);
    assert_int_equal(actor_cert_paths("a/rather/long/path/me", sec, pub, 12),
                     SY_EINVAL);
}

/* Writes text to a temporary file; returns its path in out. */
static void write_cfg(char *out, size_t cap, const char *text)
{
    snprintf(out, cap, "/tmp/sy-keys-cfg-XXXXXX");
    int fd = mkstemp(out);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
    close(fd);
}

static void test_opts_security(void **state)
{
    (void) state;
    char path[64], err[300];
    config_t *cfg = NULL;
    actor_opts_t o = { .cert = "stale" };

    /* curve off: plaintext whatever --cert says */
    write_cfg(path, sizeof path, "security\n    curve = false\n    cert = /k/me.secret\n");
    assert_int_equal(config_load(path, &cfg, err, sizeof err), 0);
    assert_int_equal(actor_opts_security(&o, cfg, "/other.secret", err,
                                         sizeof err), 0);
    assert_null(o.cert);
    assert_null(o.broker_key);
    config_destroy(&cfg);
    unlink(path);

    /* curve on: the setting, or the override */
    write_cfg(path, sizeof path,
              "security\n    curve = true\n    cert = /k/me.secret\n"
              "    broker_key = \"" KEY_A "\"\n");
    assert_int_equal(config_load(path, &cfg, err, sizeof err), 0);
    assert_int_equal(actor_opts_security(&o, cfg, NULL, err, sizeof err), 0);
    assert_string_equal(o.cert, "/k/me.secret");
    assert_string_equal(o.broker_key, KEY_A);
    assert_non_null(o.broker_cert);
    assert_int_equal(actor_opts_security(&o, cfg, "/o.secret", err, sizeof err), 0);
    assert_string_equal(o.cert, "/o.secret");
    config_destroy(&cfg);
    unlink(path);

    /* curve on without a certificate: a configuration error */
    write_cfg(path, sizeof path, "security\n    curve = true\n");
    assert_int_equal(config_load(path, &cfg, err, sizeof err), 0);
    err[0] = 0;
    assert_int_equal(actor_opts_security(&o, cfg, NULL, err, sizeof err),
                     SY_ECONFIG);
    assert_non_null(strstr(err, "security/cert"));
    config_destroy(&cfg);
    unlink(path);
}

/* ------------------------------------------------------------ syctl */

typedef struct {
    char dir[64];
    char cfg[128];
    char syctl[4096];
} fx_t;

static int fx_setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    snprintf(fx->dir, sizeof fx->dir, "/tmp/sy-keys-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    const char *bin = getenv("SY_BIN_DIR");
    char rel[400];
    snprintf(rel, sizeof rel, "%s/syctl", bin ? bin : "bin");
    if (!realpath(rel, fx->syctl))      /* the commands run in fx->dir */
        return -1;
    snprintf(fx->cfg, sizeof fx->cfg, "%s/sy.cfg", fx->dir);
    FILE *f = fopen(fx->cfg, "w");
    if (!f)
        return -1;
    fprintf(f, "security\n    curve = true\n    certs_dir = %s/certs\n"
               "    broker_cert = %s/keys/broker.secret\n"
               "    cert = %s/keys/me.secret\n", fx->dir, fx->dir, fx->dir);
    fclose(f);
    *state = fx;
    return 0;
}

static int fx_teardown(void **state)
{
    fx_t *fx = *state;
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    int rc = system(cmd);
    free(fx);
    return rc == 0 ? 0 : -1;
}

/* Runs syctl --config CFG ARGS; stdout and stderr into *out (caller
   frees).  Returns the exit code. */
static int run(fx_t *fx, char **out, const char *args)
{
    char cmd[5000];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' --config '%s' %s 2>&1",
             fx->dir, fx->syctl, fx->cfg, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 65536, n = 0;
    char *buf = calloc(1, cap);
    assert_non_null(buf);
    size_t got;
    while (n + 1 < cap && (got = fread(buf + n, 1, cap - 1 - n, p)) > 0)
        n += got;
    int st = pclose(p);
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int run_quiet(fx_t *fx, const char *args)
{
    char *out = NULL;
    int rc = run(fx, &out, args);
    free(out);
    return rc;
}

static mode_t file_mode(const char *dir, const char *name)
{
    char p[200];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    assert_int_equal(stat(p, &st), 0);
    return st.st_mode & 07777;
}

/* The public and secret key texts of a secret certificate file. */
static void keys_of(const char *path, char pub[41], char sec[41])
{
    zcert_t *c = zcert_load(path);
    assert_non_null(c);
    snprintf(pub, 41, "%s", zcert_public_txt(c));
    snprintf(sec, 41, "%s", zcert_secret_txt(c));
    zcert_destroy(&c);
}

static void test_keys_new(void **state)
{
    fx_t *fx = *state;
    char *out = NULL;
    /* default directory: the one of security/cert, created */
    assert_int_equal(run(fx, &out, "keys new me --role operator"), 0);
    char keys[128], path[200], pub[41], sec[41];
    snprintf(keys, sizeof keys, "%s/keys", fx->dir);
    assert_int_equal(file_mode(keys, "me.secret"), 0600);
    assert_int_equal(file_mode(fx->dir, "keys") & 077, 0);
    snprintf(path, sizeof path, "%s/me.secret", keys);
    keys_of(path, pub, sec);
    assert_non_null(strstr(out, pub));
    assert_null(strstr(out, sec));          /* never printed */
    assert_non_null(strstr(out, "me.cert"));
    assert_non_null(strstr(out, "syctl keys enroll me.cert --role operator"));
    free(out);

    /* --dir; a key is never replaced */
    assert_int_equal(run_quiet(fx, "keys new phone --role client --dir dev"), 0);
    assert_int_equal(file_mode(fx->dir, "dev/phone.secret"), 0600);
    assert_int_equal(run(fx, &out, "keys new phone --role client --dir dev"),
                     SYCTL_EREMOTE);
    assert_non_null(strstr(out, "already exists"));
    free(out);

    /* usage errors, nothing written */
    assert_int_equal(run_quiet(fx, "keys new x --role boss --dir bad"), SYCTL_EUSAGE);
    assert_int_equal(run_quiet(fx, "keys new .x --role client --dir bad"), SYCTL_EUSAGE);
    assert_int_equal(run_quiet(fx, "keys new x --dir bad"), SYCTL_EUSAGE);
    assert_int_equal(run_quiet(fx, "keys frobnicate"), SYCTL_EUSAGE);
    struct stat st;
    snprintf(path, sizeof path, "%s/bad", fx->dir);
    assert_int_not_equal(stat(path, &st), 0);
}

static void test_keys_enroll_revoke_ls(void **state)
{
    fx_t *fx = *state;
    char *out = NULL;
    assert_int_equal(run_quiet(fx, "keys new phone --role client --dir dev"), 0);
    assert_int_equal(run_quiet(fx, "keys new laptop --role operator --dir dev"), 0);
    char path[200], pub[41], sec[41];
    snprintf(path, sizeof path, "%s/dev/phone.secret", fx->dir);
    keys_of(path, pub, sec);

    assert_int_equal(run(fx, &out, "keys ls"), 0);
    assert_non_null(strstr(out, "no certificates enrolled"));
    free(out);

    /* the operator names the role: without --role, or with a role that
       is not the one the device made its key with, nothing is enrolled */
    assert_int_equal(run(fx, &out, "keys enroll dev/phone.cert"), SYCTL_EUSAGE);
    assert_non_null(strstr(out, "--role"));
    free(out);
    assert_int_equal(run_quiet(fx, "keys enroll dev/phone.cert --role boss"),
                     SYCTL_EUSAGE);
    assert_int_equal(run(fx, &out, "keys enroll dev/phone.cert --role operator"),
                     SYCTL_EREMOTE);
    assert_non_null(strstr(out, "made with role client, not operator"));
    assert_non_null(strstr(out, "syctl keys new phone --role operator"));
    free(out);
    assert_int_equal(run_quiet(fx, "--role operator keys enroll dev/phone.cert"),
                     SYCTL_EREMOTE);                /* options anywhere */
    assert_int_equal(run(fx, &out, "keys ls"), 0);
    assert_non_null(strstr(out, "no certificates enrolled"));
    free(out);

    assert_int_equal(run(fx, &out, "keys enroll dev/phone.cert --role client"), 0);
    assert_non_null(strstr(out, "enrolled phone, role client"));
    free(out);
    assert_int_equal(run_quiet(fx, "keys enroll dev/laptop.cert --role client"),
                     SYCTL_EREMOTE);
    assert_int_equal(run_quiet(fx, "keys enroll dev/laptop.cert --role operator"), 0);
    assert_int_equal(run_quiet(fx, "keys enroll dev/phone.cert --role client"),
                     0);                            /* again: ok */
    assert_int_equal(run_quiet(fx, "keys enroll dev/nothing.cert --role client"),
                     SYCTL_EUSAGE);
    /* only the public half went into the allow-list */
    snprintf(path, sizeof path, "%s/certs/phone.cert", fx->dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char text[2048] = "";
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    assert_non_null(strstr(text, pub));
    assert_null(strstr(text, sec));

    /* a second key under an enrolled name is refused */
    assert_int_equal(run_quiet(fx, "keys new phone --role client --dir other"), 0);
    assert_int_equal(run_quiet(fx, "keys enroll other/phone.cert --role client"),
                     SYCTL_EREMOTE);

    assert_int_equal(run(fx, &out, "keys ls --json"), 0);
    char want[120];
    snprintf(want, sizeof want, "{\"name\":\"phone\",\"role\":\"client\","
                                "\"key\":\"%s\",\"revoked\":false}", pub);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "\"name\":\"laptop\",\"role\":\"operator\""));
    free(out);

    assert_int_equal(run(fx, &out, "keys revoke phone"), 0);
    assert_non_null(strstr(out, "revoked phone"));
    free(out);
    assert_int_equal(run_quiet(fx, "keys revoke phone"), SYCTL_EREMOTE);
    assert_int_equal(run_quiet(fx, "keys revoke nobody"), SYCTL_EREMOTE);
    assert_int_equal(run(fx, &out, "keys ls --json"), 0);
    snprintf(want, sizeof want, "{\"name\":\"phone\",\"role\":null,"
                                "\"key\":\"%s\",\"revoked\":true}", pub);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "\"revoked\":false"));     /* laptop */
    free(out);
    assert_int_equal(run(fx, &out, "keys ls"), 0);
    assert_non_null(strstr(out, "yes"));
    free(out);

    /* enrolling again lifts the revocation, with the right role only */
    assert_int_equal(run_quiet(fx, "keys enroll dev/phone.cert --role worker"),
                     SYCTL_EREMOTE);
    assert_int_equal(run(fx, &out, "keys ls --json"), 0);
    assert_non_null(strstr(out, "\"revoked\":true"));
    free(out);
    assert_int_equal(run_quiet(fx, "keys enroll dev/phone.cert --role client"), 0);
    assert_int_equal(run(fx, &out, "keys ls --json"), 0);
    assert_null(strstr(out, "\"revoked\":true"));
    free(out);
}

static void test_keys_broker(void **state)
{
    fx_t *fx = *state;
    char *out = NULL;
    /* no broker certificate yet */
    assert_int_equal(run(fx, &out, "keys broker"), SYCTL_ECONFIG);
    assert_non_null(strstr(out, "first starts"));
    free(out);
    char keys[128], err[256], path[200], pub[41], sec[41];
    snprintf(keys, sizeof keys, "%s/keys", fx->dir);
    mkdir(keys, 0700);
    assert_int_equal(certs_new(keys, "broker", "client", NULL, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/broker.secret", keys);
    keys_of(path, pub, sec);
    assert_int_equal(run(fx, &out, "keys broker"), 0);
    char want[48];
    snprintf(want, sizeof want, "%s\n", pub);
    assert_string_equal(out, want);
    free(out);
}

/* With CURVE on, a command that connects needs a usable certificate:
   none configured, or one whose file is missing, is a configuration
   error before any connection. */
static void test_connect_needs_cert(void **state)
{
    fx_t *fx = *state;
    char *out = NULL;
    assert_int_equal(run(fx, &out, "--timeout 300ms status"), SYCTL_ECONFIG);
    assert_non_null(strstr(out, "me.secret"));
    free(out);
    assert_int_equal(run_quiet(fx, "--cert nowhere/x.secret --timeout 300ms status"),
                     SYCTL_ECONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_revoked_line),
        cmocka_unit_test(test_keys_dir),
        cmocka_unit_test(test_keys_table),
        cmocka_unit_test(test_cert_paths),
        cmocka_unit_test(test_opts_security),
        cmocka_unit_test_setup_teardown(test_keys_new, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_keys_enroll_revoke_ls, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_keys_broker, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_connect_needs_cert, fx_setup,
                                        fx_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    zsys_shutdown();
    return rc;
}
