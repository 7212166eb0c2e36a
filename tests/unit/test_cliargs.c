/*  test_cliargs.c -- the actor binaries' shared command-line parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/cliargs.h"

typedef struct {
    const char *config, *name;
} targs_t;

static const cliargs_flag_t flags[] = {
    { "--config", offsetof(targs_t, config) },
    { "--name",   offsetof(targs_t, name) },
};

static int parse(int argc, char **argv, targs_t *a)
{
    *a = (targs_t) { 0 };
    return cliargs_parse("t", argc, argv, flags, 2, a);
}

static void test_both_forms(void **state)
{
    (void) state;
    targs_t a;
    char *argv[] = { "t", "--config", "x.cfg", "--name=alice", NULL };
    assert_int_equal(parse(4, argv, &a), 0);
    assert_string_equal(a.config, "x.cfg");
    assert_string_equal(a.name, "alice");
    char *none[] = { "t", NULL };
    assert_int_equal(parse(1, none, &a), 0);
    assert_null(a.config);
    assert_null(a.name);
}

static void test_refusals(void **state)
{
    (void) state;
    targs_t a;
    char *prefix[] = { "t", "--names", "x", NULL };     /* a prefix is not a flag */
    assert_int_equal(parse(3, prefix, &a), -1);
    char *missing[] = { "t", "--name", NULL };
    assert_int_equal(parse(2, missing, &a), -1);
    char *empty[] = { "t", "--name=", NULL };
    assert_int_equal(parse(2, empty, &a), -1);
    char *stray[] = { "t", "alice", NULL };
    assert_int_equal(parse(2, stray, &a), -1);
    char *help[] = { "t", "--config", "c", "-h", NULL };
    assert_int_equal(parse(4, help, &a), CLIARGS_HELP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_both_forms),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
