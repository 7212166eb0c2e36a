/*  test_config.c -- the configuration loader: defaults, every kind, ranges,
 *  unknown settings and syntax errors with their line, cross-field rules,
 *  per-service overrides, the shipped etc/switchyard.cfg, and that
 *  docs/CONFIG.md holds exactly what config_print_table prints.
 *  Runs from the repository root (tests/run.sh does).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/config.h"
#include "common/sylog.h"
#include "schemas/syerr.h"

/* Writes text to a fresh temporary file, loads it; returns config_load's
   code.  *out gets the config on success (caller destroys), err the
   message; path (cap 64) the file's name, already removed. */
static int test_load_text(const char *text, config_t **out, char *err, size_t errlen,
                          char *path)
{
    strcpy(path, "/tmp/sy-test-config.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t) len);
    close(fd);
    config_t *cfg = NULL;
    int rc = config_load(path, &cfg, err, errlen);
    unlink(path);
    if (out)
        *out = cfg;
    else
        config_destroy(&cfg);
    if (rc == 0)
        assert_non_null(cfg);
    else
        assert_null(cfg);
    return rc;
}

/* Loads text expecting SY_ECONFIG with "<file>:<line>: <tail>" where tail
   must appear in the message (line 0: no line expected). */
static void test_expect_error(const char *text, int line, const char *tail)
{
    char err[512], path[64], want[128];
    int rc = test_load_text(text, NULL, err, sizeof err, path);
    if (rc != SY_ECONFIG)
        fail_msg("loaded with rc %d (%s), expected an error: %s", rc, err, tail);
    if (line > 0)
        snprintf(want, sizeof want, "%s:%d: ", path, line);
    else
        snprintf(want, sizeof want, "%s: ", path);
    if (strncmp(err, want, strlen(want)) != 0 || strstr(err, tail) == NULL)
        fail_msg("error [%s] is not [%s...%s]", err, want, tail);
}

/* Loads text expecting success; returns the config. */
static config_t *test_expect_ok(const char *text)
{
    char err[512], path[64];
    config_t *cfg = NULL;
    int rc = test_load_text(text, &cfg, err, sizeof err, path);
    if (rc != 0)
        fail_msg("load failed (%d): %s", rc, err);
    return cfg;
}

static void test_defaults(void **state)
{
    (void) state;
    config_t *cfg = NULL;
    char err[256] = "x";
    assert_int_equal(config_load(NULL, &cfg, err, sizeof err), 0);
    assert_string_equal(err, "");
    assert_string_equal(config_source(cfg), "(defaults)");
    assert_string_equal(config_str(cfg, "log/level"), "info");
    assert_string_equal(config_str(cfg, "log/file"), "");
    assert_string_equal(config_str(cfg, "broker/endpoint"), "tcp://127.0.0.1:5570");
    assert_int_equal(config_int(cfg, "broker/heartbeat"), 1000);
    assert_int_equal(config_int(cfg, "broker/liveness"), 5000);
    assert_int_equal(config_int(cfg, "broker/max_msg"), 1 << 20);
    assert_int_equal(config_int(cfg, "broker/queue_max"), 10000);
    assert_string_equal(config_str(cfg, "broker/name"), "broker");
    assert_string_equal(config_str(cfg, "store/dir"), "var/store");
    assert_int_equal(config_int(cfg, "store/map_size"), 1LL << 30);
    assert_string_equal(config_str(cfg, "store/sync"), "full");
    assert_int_equal(config_int(cfg, "store/sync"), 0);
    assert_int_equal(config_int(cfg, "store/lease"), 30000);
    assert_int_equal(config_int(cfg, "store/max_attempts"), 5);
    assert_int_equal(config_int(cfg, "store/dedup_window"), 48LL * 3600 * 1000);
    assert_int_equal(config_int(cfg, "store/retry_backoff"), 1000);
    assert_int_equal(config_int(cfg, "store/retry_backoff_max"), 300000);
    assert_int_equal(config_int(cfg, "store/ttl"), 0);
    assert_int_equal(config_int(cfg, "service/anything/lease"), 30000);
    assert_int_equal(config_int(cfg, "service/anything/ttl"), 0);
    assert_int_equal(config_int(cfg, "service/anything/max_attempts"), 5);
    assert_string_equal(config_str(cfg, "actor/endpoint"), "tcp://127.0.0.1:5570");
    assert_int_equal(config_int(cfg, "actor/reconnect_min"), 100);
    assert_int_equal(config_int(cfg, "actor/reconnect_max"), 5000);
    assert_int_equal(config_int(cfg, "actor/hello_timeout"), 2000);
    assert_string_equal(config_str(cfg, "echo/name"), "echo-1");
    assert_string_equal(config_str(cfg, "echo/service"), "echo");
    assert_int_equal(config_int(cfg, "echo/credit"), 10);
    assert_int_equal(config_int(cfg, "syctl/timeout"), 5000);
    config_destroy(&cfg);
    assert_null(cfg);
    config_destroy(&cfg);       /* twice is harmless */
}

static void test_durations(void **state)
{
    (void) state;
    static const struct { const char *s; int64_t ms; } good[] = {
        { "250ms", 250 }, { "5s", 5000 }, { "10m", 600000 }, { "24h", 86400000 },
        { "2d", 172800000 }, { "1500", 1500 }, { "0", 0 }, { "0s", 0 },
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t ms = -1;
        assert_int_equal(config_parse_duration(good[i].s, &ms), 0);
        assert_int_equal(ms, good[i].ms);
    }
    static const char *const bad[] = {
        "", "fast", "5x", "-1s", "1.5s", " 5s", "5 s", "s", "5S", "5sec", "99999999999999999999d",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = -1;
        if (config_parse_duration(bad[i], &ms) != SY_EINVAL)
            fail_msg("\"%s\" parsed as a duration", bad[i]);
    }
    /* through a file, with the 4-space sections */
    config_t *cfg = test_expect_ok("broker\n    heartbeat = 2s\n    liveness = 1m\n"
                                   "store\n    dedup_window = 2d\n    lease = 1500\n"
                                   "actor\n    reconnect_min = 250ms\n    hello_timeout = 30s\n");
    assert_int_equal(config_int(cfg, "broker/heartbeat"), 2000);
    assert_int_equal(config_int(cfg, "broker/liveness"), 60000);
    assert_int_equal(config_int(cfg, "store/dedup_window"), 172800000);
    assert_int_equal(config_int(cfg, "store/lease"), 1500);
    assert_int_equal(config_int(cfg, "actor/reconnect_min"), 250);
    config_destroy(&cfg);
    test_expect_error("broker\n    heartbeat = 1s\n    liveness = 1h\n", 3,
                      "broker/liveness: 1h is above the maximum 10m");
    test_expect_error("# comment\n\nbroker\n    heartbeat = fast\n", 4,
                      "broker/heartbeat: \"fast\" is not a duration (use e.g. 500ms, 2s, 1m)");
}

static void test_sizes(void **state)
{
    (void) state;
    static const struct { const char *s; int64_t bytes; } good[] = {
        { "512", 512 }, { "64K", 65536 }, { "64k", 65536 }, { "16M", 16 << 20 },
        { "1G", 1LL << 30 }, { "1T", 1LL << 40 }, { "64KB", 65536 }, { "64KiB", 65536 },
        { "100B", 100 }, { "0", 0 },
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t b = -1;
        assert_int_equal(config_parse_size(good[i].s, &b), 0);
        assert_int_equal(b, good[i].bytes);
    }
    static const char *const bad[] = { "", "big", "1Q", "K", "1.5M", "-1K", "1 K", "1KK", "1iB" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t b = -1;
        if (config_parse_size(bad[i], &b) != SY_EINVAL)
            fail_msg("\"%s\" parsed as a size", bad[i]);
    }
    config_t *cfg = test_expect_ok("broker\n    max_msg = 64K\nstore\n    map_size = 2G\n");
    assert_int_equal(config_int(cfg, "broker/max_msg"), 65536);
    assert_int_equal(config_int(cfg, "store/map_size"), 2LL << 30);
    config_destroy(&cfg);
    test_expect_error("broker\n    max_msg = lots\n", 2,
                      "broker/max_msg: \"lots\" is not a size (use e.g. 512, 64K, 16M, 1G)");
}

static void test_bools_ints_strings(void **state)
{
    (void) state;
    static const char *const yes[] = { "true", "TRUE", "yes", "on", "1" };
    static const char *const no[] = { "false", "No", "off", "0" };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        bool b = false;
        assert_int_equal(config_parse_bool(yes[i], &b), 0);
        assert_true(b);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        bool b = true;
        assert_int_equal(config_parse_bool(no[i], &b), 0);
        assert_false(b);
    }
    bool b;
    assert_int_equal(config_parse_bool("maybe", &b), SY_EINVAL);
    assert_int_equal(config_parse_bool("", &b), SY_EINVAL);

    config_t *cfg = test_expect_ok("broker\n    queue_max = 42\nstore\n    dir = \"my # dir\"\n"
                                   "echo\n    name = 'echo-7'\n    credit = 3   # trailing comment\n"
                                   "log\n    file = \"\"\n");
    assert_int_equal(config_int(cfg, "broker/queue_max"), 42);
    assert_string_equal(config_str(cfg, "store/dir"), "my # dir");
    assert_string_equal(config_str(cfg, "echo/name"), "echo-7");
    assert_int_equal(config_int(cfg, "echo/credit"), 3);
    assert_string_equal(config_str(cfg, "log/file"), "");
    config_destroy(&cfg);
    test_expect_error("echo\n    credit = ten\n", 2, "echo/credit: \"ten\" is not an integer");
    test_expect_error("echo\n    credit = 1.5\n", 2, "echo/credit: \"1.5\" is not an integer");
    /* "= # comment" is read by ZPL as the value "# comment": refused */
    test_expect_error("log\n    file = # stderr\n", 2, "log/file: no value before the comment");
}

static void test_enums(void **state)
{
    (void) state;
    config_t *cfg = test_expect_ok("log\n    level = debug\nstore\n    sync = none\n");
    assert_string_equal(config_str(cfg, "log/level"), "debug");
    assert_int_equal(config_int(cfg, "log/level"), 0);
    assert_string_equal(config_str(cfg, "store/sync"), "none");
    assert_int_equal(config_int(cfg, "store/sync"), 1);
    sylog_level_t level = SYLOG_ERROR;
    assert_int_equal(sylog_level_parse(config_str(cfg, "log/level"), &level), 0);
    assert_int_equal(level, SYLOG_DEBUG);
    config_destroy(&cfg);
    test_expect_error("log\n    level = loud\n", 2,
                      "log/level: \"loud\" is not one of debug, info, warn, error");
    test_expect_error("store\n    sync = Full\n", 2, "store/sync: \"Full\" is not one of full, none");
}

static void test_endpoints(void **state)
{
    (void) state;
    config_t *cfg = test_expect_ok("broker\n    endpoint = tcp://127.0.0.1:5570,ipc:///tmp/sy.ipc,tcp://*:6000\n"
                                   "actor\n    endpoint = ipc:///tmp/sy.ipc\n");
    assert_string_equal(config_str(cfg, "broker/endpoint"),
                        "tcp://127.0.0.1:5570,ipc:///tmp/sy.ipc,tcp://*:6000");
    assert_string_equal(config_str(cfg, "actor/endpoint"), "ipc:///tmp/sy.ipc");
    config_destroy(&cfg);
    test_expect_error("broker\n    endpoint = udp://1.2.3.4:5\n", 2,
                      "broker/endpoint: \"udp://1.2.3.4:5\" is not an endpoint");
    test_expect_error("broker\n    endpoint = tcp://127.0.0.1\n", 2, "is not an endpoint");
    test_expect_error("broker\n    endpoint = tcp://a:1,\n", 2, "\"\" is not an endpoint");
    test_expect_error("broker\n    endpoint = tcp://a:1, tcp://b:2\n", 2,
                      "spaces are not allowed in an endpoint list");
    test_expect_error("actor\n    endpoint = tcp://a:1,tcp://b:2\n", 2,
                      "actor/endpoint: \"tcp://a:1,tcp://b:2\": takes one endpoint, not a list");
}

static void test_names(void **state)
{
    (void) state;
    config_t *cfg = test_expect_ok("broker\n    name = vm-broker.1\necho\n    service = echo\n");
    assert_string_equal(config_str(cfg, "broker/name"), "vm-broker.1");
    config_destroy(&cfg);
    test_expect_error("broker\n    name = \"my broker\"\n", 2,
                      "broker/name: \"my broker\" is not a name");
    test_expect_error("echo\n    service = \"\"\n", 2, "echo/service: no value");
}

static void test_out_of_range(void **state)
{
    (void) state;
    test_expect_error("broker\n    heartbeat = 10ms\n", 2,
                      "broker/heartbeat: 10ms is below the minimum 50ms");
    test_expect_error("broker\n    max_msg = 512M\n", 2,
                      "broker/max_msg: 512M is above the maximum 256M");
    test_expect_error("broker\n    queue_max = 0\n", 2,
                      "broker/queue_max: 0 is below the minimum 1");
    test_expect_error("broker\n    queue_max = -5\n", 2,
                      "broker/queue_max: -5 is below the minimum 1");
    test_expect_error("echo\n    credit = 10001\n", 2,
                      "echo/credit: 10001 is above the maximum 10000");
    /* the bounds themselves are allowed */
    config_t *cfg = test_expect_ok("broker\n    heartbeat = 50ms\n    liveness = 10m\n"
                                   "    queue_max = 10000000\n");
    assert_int_equal(config_int(cfg, "broker/heartbeat"), 50);
    assert_int_equal(config_int(cfg, "broker/queue_max"), 10000000);
    config_destroy(&cfg);
    /* overrides keep their fallback's range */
    test_expect_error("service\n    inference\n        lease = 2d\n", 3,
                      "service/inference/lease: 2d is above the maximum 1d");
}

static void test_unknown(void **state)
{
    (void) state;
    test_expect_error("broker\n    heartbeat = 1s\n\n    # comment\n    hearbeat = 2s\n", 5,
                      "broker/hearbeat: unknown setting (did you mean broker/heartbeat?)");
    test_expect_error("brokr\n    heartbeat = 1s\n", 2,
                      "brokr/heartbeat: unknown setting (did you mean broker/heartbeat?)");
    test_expect_error("log\n    levle = info\n", 2,
                      "log/levle: unknown setting (did you mean log/level?)");
    test_expect_error("service\n    inference\n        leese = 1m\n", 3,
                      "service/inference/leese: unknown setting (did you mean service/inference/lease?)");
    char err[512], path[64];
    assert_int_equal(test_load_text("store\n    dir = x\nfrobnicate = yes\n", NULL, err,
                                    sizeof err, path), SY_ECONFIG);
    assert_non_null(strstr(err, ":3: frobnicate: unknown setting"));
    assert_null(strstr(err, "did you mean"));
    /* a setting given as a section, a section given a value */
    test_expect_error("broker\n    heartbeat\n        x = 1\n", 2,
                      "broker/heartbeat: no value (expected a duration)");
    test_expect_error("broker\n    heartbeat = 1s\n        x = 1\n", 3,
                      "broker/heartbeat/x: unknown setting");
    test_expect_error("log\nbroker = fast\n", 2, "broker: is a section, not a setting");
    /* empty sections are fine */
    config_t *cfg = test_expect_ok("broker\nservice\n    inference\n");
    assert_int_equal(config_int(cfg, "service/inference/lease"), 30000);
    config_destroy(&cfg);
}

static void test_duplicate(void **state)
{
    (void) state;
    test_expect_error("broker\n    heartbeat = 1s\n    liveness = 3s\n    heartbeat = 2s\n", 4,
                      "broker/heartbeat: set twice (first at line 2)");
    test_expect_error("broker\n    heartbeat = 1s\nbroker\n    heartbeat = 1s\n", 4,
                      "broker/heartbeat: set twice (first at line 2)");
}

static void test_syntax(void **state)
{
    (void) state;
    test_expect_error("broker\n    heartbeat = 1s\n  liveness = 5s\n", 3,
                      "ZPL syntax: indented by 2 spaces");
    test_expect_error("broker\n\theartbeat = 1s\n", 2, "ZPL syntax: a tab");
    test_expect_error("broker\n    heartbeat 1s\n", 2,
                      "ZPL syntax: expected '=' after the name \"heartbeat\"");
    test_expect_error("broker\n    heartbeat: 1s\n", 2, "ZPL syntax: expected '='");
    test_expect_error("broker\n    name = \"open\n", 2, "ZPL syntax: name: missing closing \"");
    test_expect_error("broker\n    name = \"a\" b\n", 2, "ZPL syntax: unexpected \"b\"");
    test_expect_error("log\n        level = info\n", 2,
                      "ZPL syntax: level: indented 2 levels but the line above it opens no section");
    test_expect_error("    level = info\n", 1, "ZPL syntax: level: indented 1 level");
    test_expect_error("log\n    = info\n", 2, "ZPL syntax: a value with no name");
    test_expect_error("log\n    /level = info\n", 2, "ZPL syntax: a name cannot start or end with '/'");
    test_expect_error("log\n    !level = info\n", 2, "ZPL syntax: '!' cannot start a name");
    test_expect_error("log\n  # badly indented comment\n", 2, "(comments too)");
    /* things ZPL allows: CRLF, '=' without spaces, comment-only, empty, a
       path as one name */
    config_t *cfg = test_expect_ok("log\r\n    level=warn\r\n# done\r\n");
    assert_string_equal(config_str(cfg, "log/level"), "warn");
    config_destroy(&cfg);
    cfg = test_expect_ok("");
    config_destroy(&cfg);
    cfg = test_expect_ok("# nothing but a comment\n\n    \n");
    config_destroy(&cfg);
    cfg = test_expect_ok("broker/heartbeat = 3s\nbroker\n    liveness = 9s\n");
    assert_int_equal(config_int(cfg, "broker/heartbeat"), 3000);
    config_destroy(&cfg);
}

static void test_cross_field(void **state)
{
    (void) state;
    test_expect_error("broker\n    heartbeat = 1s\n    liveness = 1500ms\n", 3,
                      "broker/liveness: 1500ms must be at least 2 x broker/heartbeat (1s)");
    /* liveness from its default (5s): the line is heartbeat's */
    test_expect_error("broker\n    heartbeat = 3s\n", 2,
                      "broker/liveness: 5s must be at least 2 x broker/heartbeat (3s)");
    test_expect_error("actor\n    reconnect_min = 10s\n    reconnect_max = 1s\n", 3,
                      "actor/reconnect_max: 1s must be at least actor/reconnect_min (10s)");
    test_expect_error("store\n    retry_backoff = 10m\n", 2,
                      "store/retry_backoff_max: 5m must be at least store/retry_backoff (10m)");
    config_t *cfg = test_expect_ok("broker\n    heartbeat = 2s\n    liveness = 4s\n");
    assert_int_equal(config_int(cfg, "broker/liveness"), 4000);
    config_destroy(&cfg);
}

static void test_per_service(void **state)
{
    (void) state;
    config_t *cfg = test_expect_ok("store\n    lease = 20s\n    ttl = 1h\n"
                                   "service\n    inference\n        lease = 10m\n"
                                   "    cron\n        max_attempts = 2\n        ttl = 0\n");
    assert_int_equal(config_int(cfg, "service/inference/lease"), 600000);
    assert_string_equal(config_str(cfg, "service/inference/lease"), "10m");
    /* absent: the store/ value, from the file */
    assert_int_equal(config_int(cfg, "service/inference/ttl"), 3600000);
    assert_int_equal(config_int(cfg, "service/cron/lease"), 20000);
    assert_int_equal(config_int(cfg, "service/never-named/lease"), 20000);
    /* absent: the store/ default */
    assert_int_equal(config_int(cfg, "service/inference/max_attempts"), 5);
    assert_int_equal(config_int(cfg, "service/cron/max_attempts"), 2);
    assert_int_equal(config_int(cfg, "service/cron/ttl"), 0);
    config_destroy(&cfg);
    test_expect_error("service\n    inference\n        max_attempts = 0\n", 3,
                      "service/inference/max_attempts: 0 is below the minimum 1");
    test_expect_error("service\n    inference = 1\n", 2, "service/inference: is a section");
    test_expect_error("service\n    inference\n        lease = 1m\n        lease = 2m\n", 4,
                      "service/inference/lease: set twice (first at line 3)");
}

static void test_shipped_file(void **state)
{
    (void) state;
    config_t *cfg = NULL;
    char err[512];
    int rc = config_load("etc/switchyard.cfg", &cfg, err, sizeof err);
    if (rc)
        fail_msg("etc/switchyard.cfg: %s", err);
    assert_string_equal(config_source(cfg), "etc/switchyard.cfg");
    /* it names the defaults, so values match a defaults-only load */
    config_t *def = NULL;
    assert_int_equal(config_load(NULL, &def, err, sizeof err), 0);
    static const char *const same[] = {
        "log/level", "broker/endpoint", "broker/heartbeat", "broker/liveness", "broker/max_msg",
        "broker/queue_max", "store/dir", "store/map_size", "store/sync", "store/lease",
        "store/ttl", "actor/endpoint", "echo/name", "echo/credit", "syctl/timeout",
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++)
        assert_string_equal(config_str(cfg, same[i]), config_str(def, same[i]));
    assert_int_equal(config_int(cfg, "service/inference/lease"), 600000);
    config_destroy(&def);
    config_destroy(&cfg);
}

static void test_missing_file(void **state)
{
    (void) state;
    config_t *cfg = NULL;
    char err[512];
    assert_int_equal(config_load("/nonexistent/switchyard.cfg", &cfg, err, sizeof err), SY_EIO);
    assert_null(cfg);
    assert_non_null(strstr(err, "/nonexistent/switchyard.cfg: cannot open"));
    /* a tiny error buffer is cut, not overrun */
    char small[8];
    memset(small, 'z', sizeof small);
    assert_int_equal(config_load("/nonexistent/switchyard.cfg", &cfg, small, sizeof small), SY_EIO);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_int_equal(config_load("/nonexistent/x", &cfg, NULL, 0), SY_EIO);
}

static void test_pick_path(void **state)
{
    (void) state;
    const char *saved = getenv("SWITCHYARD_CONFIG");
    char *keep = saved ? strdup(saved) : NULL;
    assert_string_equal(config_pick_path("/x/given.cfg"), "/x/given.cfg");
    setenv("SWITCHYARD_CONFIG", "/x/env.cfg", 1);
    assert_string_equal(config_pick_path(NULL), "/x/env.cfg");
    assert_string_equal(config_pick_path("/x/given.cfg"), "/x/given.cfg");
    unsetenv("SWITCHYARD_CONFIG");
    assert_string_equal(config_pick_path(NULL), "etc/switchyard.cfg");  /* repo root */
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir("/"), 0);
    assert_null(config_pick_path(NULL));
    assert_int_equal(chdir(cwd), 0);
    if (keep) {
        setenv("SWITCHYARD_CONFIG", keep, 1);
        free(keep);
    }
}

/* The generated section of docs/CONFIG.md is config_print_table's output. */
static void test_docs_in_sync(void **state)
{
    (void) state;
    char *table = NULL;
    size_t tlen = 0;
    FILE *mem = open_memstream(&table, &tlen);
    assert_non_null(mem);
    config_print_table(mem, true);
    fclose(mem);

    FILE *f = fopen("docs/CONFIG.md", "r");
    assert_non_null(f);
    char *doc = calloc(1, 1 << 17);
    assert_non_null(doc);
    size_t n = fread(doc, 1, (1 << 17) - 1, f);
    fclose(f);
    doc[n] = '\0';
    const char *begin_mark = "<!-- BEGIN GENERATED: config_print_table(markdown) -->\n";
    char *begin = strstr(doc, begin_mark);
    assert_non_null(begin);
    begin += strlen(begin_mark);
    char *end = strstr(begin, "<!-- END GENERATED -->");
    assert_non_null(end);
    *end = '\0';
    if (strcmp(begin, table) != 0)
        fail_msg("docs/CONFIG.md is out of date: regenerate its table from "
                 "config_print_table(markdown):\n%s", table);
    /* one row per setting, the plain form too */
    int md_rows = 0, txt_rows = 0;
    for (char *p = table; *p; p++)
        md_rows += *p == '\n';
    free(table);
    table = NULL;
    mem = open_memstream(&table, &tlen);
    config_print_table(mem, false);
    fclose(mem);
    for (char *p = table; *p; p++)
        txt_rows += *p == '\n';
    assert_true(strstr(table, "broker/heartbeat") != NULL);
    assert_int_equal(md_rows, txt_rows + 1);     /* markdown has a rule line */
    free(table);
    free(doc);
}

/* Asking for an undeclared setting, or the wrong kind, is a bug: abort. */
static void test_misuse_aborts(void **state)
{
    (void) state;
    static const char *const paths[] = { "broker/nope", "store/dir", "service/x/nope" };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            int devnull = open("/dev/null", O_WRONLY);
            dup2(devnull, 2);                    /* keep the test log clean */
            config_t *cfg = NULL;
            config_load(NULL, &cfg, NULL, 0);
            (void) config_int(cfg, paths[i]);    /* store/dir: a string */
            _exit(0);
        }
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT))
            fail_msg("config_int(%s) did not abort", paths[i]);
    }
}

int main(void)
{
    sylog_open("test_config", SYLOG_WARN, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_bools_ints_strings),
        cmocka_unit_test(test_enums),
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_unknown),
        cmocka_unit_test(test_duplicate),
        cmocka_unit_test(test_syntax),
        cmocka_unit_test(test_cross_field),
        cmocka_unit_test(test_per_service),
        cmocka_unit_test(test_shipped_file),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_pick_path),
        cmocka_unit_test(test_docs_in_sync),
        cmocka_unit_test(test_misuse_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
