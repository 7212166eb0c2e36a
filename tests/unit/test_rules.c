/*  test_rules.c -- unit tests of actors/rules.c, the router's
 *  classification: every shipped default phrase (Korean and English),
 *  attachments by kind and MIME prefix, the order of the rules when
 *  several match, ASCII case folding (and none for other bytes), a rule
 *  added in a configuration file, list trimming, and bad lists and bad
 *  attachments refused with a clear error.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/rules.h"
#include "common/config.h"
#include "schemas/syerr.h"

/* The shipped defaults (no file). */
static rules_t *rules_defaults(void)
{
    config_t *cfg = NULL;
    char err[256];
    assert_int_equal(config_load(NULL, &cfg, err, sizeof err), 0);
    rules_t *r = NULL;
    assert_int_equal(rules_new(cfg, &r, err, sizeof err), 0);
    assert_non_null(r);
    config_destroy(&cfg);
    return r;
}

/* Classifies text with attachments (msgpack, may be NULL). */
static rules_result_t classify(const rules_t *r, const char *text,
                               const msgpack_sbuffer *att)
{
    rules_result_t res;
    assert_int_equal(rules_classify(r, text, strlen(text),
                                    att ? (const uint8_t *) att->data : NULL,
                                    att ? att->size : 0, &res), 0);
    return res;
}

static void expect_class(const rules_t *r, const char *text,
                         rules_class_t cls, const char *why)
{
    rules_result_t res = classify(r, text, NULL);
    if (res.cls != cls || (why && strcmp(res.why, why) != 0))
        fail_msg("\"%s\": got %s / %s, want %s / %s", text,
                 rules_class_name(res.cls), res.why, rules_class_name(cls),
                 why ? why : "(any)");
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/* [{kind: kind, mime: mime}] (either may be NULL: left out). */
static void att_one(msgpack_sbuffer *sb, const char *kind, const char *mime)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, (kind != NULL) + (mime != NULL));
    if (kind) {
        pack_str(&pk, "kind");
        pack_str(&pk, kind);
    }
    if (mime) {
        pack_str(&pk, "mime");
        pack_str(&pk, mime);
    }
}

static void test_default_heavy(void **state)
{
    (void) state;
    rules_t *r = rules_defaults();
    expect_class(r, "이 보고서 분석해줘", RULES_HEAVY,
                 "phrase \"분석해줘\" (router/heavy)");
    expect_class(r, "다음 분기 전략 수립 부탁해", RULES_HEAVY,
                 "phrase \"전략 수립\" (router/heavy)");
    expect_class(r, "브랜드 아이덴티티를 정리해줘", RULES_HEAVY,
                 "phrase \"브랜드 아이덴티티\" (router/heavy)");
    expect_class(r, "please analyze this", RULES_HEAVY,
                 "phrase \"analyze\" (router/heavy)");
    rules_destroy(&r);
    assert_null(r);
    rules_destroy(&r);
}

static void test_default_light_and_scheduled(void **state)
{
    (void) state;
    rules_t *r = rules_defaults();
    expect_class(r, "내일 회의 일정 등록", RULES_LIGHT,
                 "phrase \"일정 등록\" (router/light)");
    expect_class(r, "서버 로그 확인 좀", RULES_LIGHT,
                 "phrase \"로그 확인\" (router/light)");
    expect_class(r, "상태 체크", RULES_LIGHT,
                 "phrase \"상태 체크\" (router/light)");
    expect_class(r, "매일 아침 뉴스 요약", RULES_SCHEDULED,
                 "phrase \"매일\" (router/scheduled)");
    expect_class(r, "매주 월요일 보고", RULES_SCHEDULED,
                 "phrase \"매주\" (router/scheduled)");
    expect_class(r, "한 시간마다 알려줘", RULES_SCHEDULED,
                 "phrase \"마다\" (router/scheduled)");
    expect_class(r, "remind me every day at 9", RULES_SCHEDULED,
                 "phrase \"every day at\" (router/scheduled)");
    rules_destroy(&r);
}

static void test_default_class(void **state)
{
    (void) state;
    rules_t *r = rules_defaults();
    expect_class(r, "hello there", RULES_HEAVY,
                 "no rule matched (router/default)");
    expect_class(r, "", RULES_HEAVY, "no rule matched (router/default)");
    expect_class(r, "안녕하세요", RULES_HEAVY,
                 "no rule matched (router/default)");
    /* the empty text, given as NULL */
    rules_result_t res;
    assert_int_equal(rules_classify(r, NULL, 0, NULL, 0, &res), 0);
    assert_int_equal(res.cls, RULES_HEAVY);
    rules_destroy(&r);
}

static void test_attachments(void **state)
{
    (void) state;
    rules_t *r = rules_defaults();
    msgpack_sbuffer sb;
    att_one(&sb, "photo", NULL);
    rules_result_t res = classify(r, "what is this", &sb);
    assert_int_equal(res.cls, RULES_HEAVY);
    assert_string_equal(res.why, "attachment photo (router/heavy_attachments)");
    msgpack_sbuffer_destroy(&sb);

    att_one(&sb, "document", "image/png");          /* mime prefix: image/ and a star */
    res = classify(r, "상태 체크", &sb);             /* beats light */
    assert_int_equal(res.cls, RULES_HEAVY);
    assert_string_equal(res.why,
                        "attachment image/png (router/heavy_attachments)");
    msgpack_sbuffer_destroy(&sb);

    att_one(&sb, "PHOTO", NULL);                     /* kinds fold too */
    assert_int_equal(classify(r, "x", &sb).cls, RULES_HEAVY);
    msgpack_sbuffer_destroy(&sb);

    att_one(&sb, "document", "application/pdf");     /* no match */
    res = classify(r, "상태 체크", &sb);
    assert_int_equal(res.cls, RULES_LIGHT);
    msgpack_sbuffer_destroy(&sb);

    att_one(&sb, "photos", NULL);                    /* exact, not prefix */
    assert_string_equal(classify(r, "로그 확인", &sb).why,
                        "phrase \"로그 확인\" (router/light)");
    msgpack_sbuffer_destroy(&sb);
    rules_destroy(&r);
}

/* Items that are not maps, and values that are not strings, are
   ignored; a body that is not one array is refused. */
static void test_bad_attachments(void **state)
{
    (void) state;
    rules_t *r = rules_defaults();
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint8(&pk, 7);
    msgpack_pack_map(&pk, 1);
    pack_str(&pk, "kind");
    msgpack_pack_array(&pk, 1);
    pack_str(&pk, "photo");
    msgpack_pack_map(&pk, 1);
    pack_str(&pk, "kind");
    pack_str(&pk, "bad\x01\"kind*");
    rules_result_t res = classify(r, "상태 체크", &sb);
    assert_int_equal(res.cls, RULES_LIGHT);
    msgpack_sbuffer_destroy(&sb);

    static const uint8_t not_array[] = { 0x81, 0xa1, 'k', 0x01 };
    static const uint8_t truncated[] = { 0x92, 0x81 };
    static const uint8_t trailing[] = { 0x90, 0x90 };
    assert_int_equal(rules_classify(r, "a", 1, not_array, sizeof not_array,
                                    &res), SY_EBAD_BODY);
    assert_int_equal(rules_classify(r, "a", 1, truncated, sizeof truncated,
                                    &res), SY_EBAD_BODY);
    assert_int_equal(rules_classify(r, "매일", strlen("매일"), trailing,
                                    sizeof trailing, &res), SY_EBAD_BODY);
    assert_int_equal(rules_classify(NULL, "a", 1, NULL, 0, &res), SY_EINVAL);
    assert_int_equal(rules_classify(r, NULL, 3, NULL, 0, &res), SY_EINVAL);
    assert_int_equal(rules_classify(r, "a", 1, NULL, 0, NULL), SY_EINVAL);

    /* an attachment that matches shows only printable bytes */
    rules_t *star = NULL;
    char err[256];
    assert_int_equal(rules_new_from("", "", "", "*", RULES_LIGHT, &star, err,
                                    sizeof err), 0);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 1);
    pack_str(&pk, "kind");
    pack_str(&pk, "a\nb\"c\xed\x95\x9c");
    res = classify(star, "x", &sb);
    assert_int_equal(res.cls, RULES_HEAVY);
    assert_null(strchr(res.why, '\n'));
    assert_string_equal(res.why,
                        "attachment a?b?c??? (router/heavy_attachments)");
    msgpack_sbuffer_destroy(&sb);
    rules_destroy(&star);
    rules_destroy(&r);
}

/* First match wins: scheduled, heavy, light, default. */
static void test_order(void **state)
{
    (void) state;
    rules_t *r = rules_defaults();
    expect_class(r, "매일 로그 분석해줘", RULES_SCHEDULED,
                 "phrase \"매일\" (router/scheduled)");
    expect_class(r, "로그 확인 후 분석해줘", RULES_HEAVY,
                 "phrase \"분석해줘\" (router/heavy)");
    expect_class(r, "every week: check logs", RULES_SCHEDULED, NULL);
    /* several phrases of one list: the list's order decides */
    rules_t *o = NULL;
    char err[256];
    assert_int_equal(rules_new_from("zeta,alpha", "", "", "", RULES_LIGHT, &o,
                                    err, sizeof err), 0);
    expect_class(o, "alpha then zeta", RULES_HEAVY,
                 "phrase \"zeta\" (router/heavy)");
    expect_class(o, "nothing", RULES_LIGHT, "no rule matched (router/default)");
    rules_destroy(&o);
    rules_destroy(&r);
}

static void test_case(void **state)
{
    (void) state;
    rules_t *r = rules_defaults();
    expect_class(r, "Please ANALYZE my notes", RULES_HEAVY,
                 "phrase \"analyze\" (router/heavy)");
    expect_class(r, "EVERY DAY AT noon", RULES_SCHEDULED, NULL);
    expect_class(r, "Check Logs", RULES_LIGHT, NULL);
    rules_destroy(&r);
    /* a configured phrase in capitals matches lower-case text; `why`
       shows it as configured */
    rules_t *c = NULL;
    char err[256];
    assert_int_equal(rules_new_from("Deep Dive", "", "", "", RULES_LIGHT, &c,
                                    err, sizeof err), 0);
    expect_class(c, "a deep dive please", RULES_HEAVY,
                 "phrase \"Deep Dive\" (router/heavy)");
    /* folding is ASCII only: bytes >= 0x80 compare exactly */
    rules_destroy(&c);
    assert_int_equal(rules_new_from("\xc3\xa9t\xc3\xa9", "", "", "", RULES_LIGHT,
                                    &c, err, sizeof err), 0);   /* "été" */
    expect_class(c, "\xc3\x89T\xc3\x89", RULES_LIGHT, NULL);  /* "ÉTÉ" */
    expect_class(c, "\xc3\xa9T\xc3\xa9", RULES_HEAVY, NULL);  /* "éTé" */
    rules_destroy(&c);
}

/* Text with NUL bytes and a phrase at the very end. */
static void test_bytes(void **state)
{
    (void) state;
    rules_t *r = rules_defaults();
    static const char text[] = "x\0y 로그 확인";
    rules_result_t res;
    assert_int_equal(rules_classify(r, text, sizeof text - 1, NULL, 0, &res), 0);
    assert_int_equal(res.cls, RULES_LIGHT);
    /* a phrase cut at the end of the text does not match */
    const char *cut = "로그 확";
    assert_int_equal(rules_classify(r, cut, strlen(cut), NULL, 0, &res), 0);
    assert_int_equal(res.cls, RULES_HEAVY);
    rules_destroy(&r);
}

/* Writes text to a temporary file and loads it. */
static config_t *load_text(const char *text)
{
    char path[64];
    strcpy(path, "/tmp/sy-test-rules.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
    close(fd);
    config_t *cfg = NULL;
    char err[256];
    int rc = config_load(path, &cfg, err, sizeof err);
    unlink(path);
    if (rc)
        fail_msg("config: %s", err);
    return cfg;
}

/* A rule added in the configuration file, no recompiling. */
static void test_config_file(void **state)
{
    (void) state;
    config_t *cfg = load_text(
        "router\n"
        "    heavy = \" 보고서 써줘 , ,write a report,\"\n"
        "    light = \"날씨\"\n"
        "    scheduled = \"\"\n"
        "    heavy_attachments = \"audio, application/*\"\n"
        "    default = light\n");
    rules_t *r = NULL;
    char err[256];
    assert_int_equal(rules_new(cfg, &r, err, sizeof err), 0);
    expect_class(r, "분기 보고서 써줘", RULES_HEAVY,
                 "phrase \"보고서 써줘\" (router/heavy)");
    expect_class(r, "Write A Report now", RULES_HEAVY, NULL);
    expect_class(r, "오늘 날씨", RULES_LIGHT, "phrase \"날씨\" (router/light)");
    expect_class(r, "매일 날씨", RULES_LIGHT, NULL);    /* no scheduled list */
    expect_class(r, "이거 분석해줘", RULES_LIGHT,
                 "no rule matched (router/default)");    /* default replaced */
    msgpack_sbuffer sb;
    att_one(&sb, "photo", NULL);                         /* no longer heavy */
    assert_int_equal(classify(r, "x", &sb).cls, RULES_LIGHT);
    msgpack_sbuffer_destroy(&sb);
    att_one(&sb, "document", "application/pdf");
    assert_string_equal(classify(r, "x", &sb).why,
                        "attachment application/pdf (router/heavy_attachments)");
    msgpack_sbuffer_destroy(&sb);
    rules_destroy(&r);
    config_destroy(&cfg);
}

static void expect_bad(const char *heavy, const char *light,
                       const char *sched, const char *att, const char *name)
{
    rules_t *r = NULL;
    char err[256];
    int rc = rules_new_from(heavy, light, sched, att, RULES_HEAVY, &r, err,
                            sizeof err);
    if (rc != SY_ECONFIG || r != NULL || strstr(err, name) != err)
        fail_msg("want SY_ECONFIG naming %s, got %d \"%s\"", name, rc, err);
    for (const char *p = err; *p; p++)
        assert_true((unsigned char) *p >= 0x20);
}

static void test_bad_config(void **state)
{
    (void) state;
    expect_bad("a,b\x01" "c", "", "", "", "router/heavy");
    expect_bad("", "bad \"quote\"", "", "", "router/light");
    expect_bad("", "", "\xff\xfe", "", "router/scheduled");
    expect_bad("", "", "", "image/*/x*", "router/heavy_attachments");
    expect_bad("", "", "", "photo, im age", "router/heavy_attachments");
    expect_bad("", "", "", "*photo", "router/heavy_attachments");
    char longp[200];
    memset(longp, 'x', sizeof longp - 1);
    longp[sizeof longp - 1] = 0;
    expect_bad(longp, "", "", "", "router/heavy");
    /* too many items */
    char *many = malloc(RULES_ITEMS_MAX * 4 + 8);
    assert_non_null(many);
    many[0] = 0;
    for (int i = 0; i <= RULES_ITEMS_MAX; i++)
        sprintf(many + strlen(many), "%s%c%c", i ? "," : "", 'a' + i % 26,
                'a' + i / 26);
    expect_bad("", many, "", "", "router/light");
    free(many);
    /* a wrong default */
    rules_t *r = NULL;
    char err[256];
    assert_int_equal(rules_new_from("", "", "", "", (rules_class_t) 7, &r, err,
                                    sizeof err), SY_ECONFIG);
    assert_non_null(strstr(err, "router/default"));
    assert_int_equal(rules_new_from("", "", "", "", RULES_HEAVY, NULL, err,
                                    sizeof err), SY_EINVAL);
    /* lists of only commas and spaces are empty, not errors */
    assert_int_equal(rules_new_from(" , ,", ",", "", " ", RULES_LIGHT, &r, err,
                                    sizeof err), 0);
    expect_class(r, "anything", RULES_LIGHT, NULL);
    rules_destroy(&r);
    assert_string_equal(rules_class_name((rules_class_t) 9), "?");
    assert_string_equal(rules_class_name(RULES_SCHEDULED), "SCHEDULED");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_heavy),
        cmocka_unit_test(test_default_light_and_scheduled),
        cmocka_unit_test(test_default_class),
        cmocka_unit_test(test_attachments),
        cmocka_unit_test(test_bad_attachments),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_case),
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_config_file),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
