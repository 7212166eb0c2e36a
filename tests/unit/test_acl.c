/*  test_acl.c -- unit tests of broker/acl.c, authorisation per role.
 *
 *  The default rules (a client cannot offer inference nor purge, an actor
 *  cannot administer, an operator can do all), pattern matching and
 *  validation, and rules read from a configuration file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker/acl.h"
#include "schemas/syerr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static acl_t *acl_from(const char *text)
{
    char path[] = "/tmp/sy-acl-XXXXXX";
    config_t *cfg = NULL;
    char err[512] = "";
    if (text) {
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
        close(fd);
    }
    int rc = config_load(text ? path : NULL, &cfg, err, sizeof err);
    if (text)
        unlink(path);
    if (rc)
        fail_msg("config: %s", err);
    acl_t *acl = NULL;
    rc = acl_new(cfg, &acl, err, sizeof err);
    config_destroy(&cfg);
    if (rc)
        fail_msg("acl_new: %s", err);
    return acl;
}

static void test_patterns(void **state)
{
    (void) state;
    assert_true(acl_list_match("chat.*,echo.*", "chat.request"));
    assert_true(acl_list_match("chat.*,echo.*", "echo.reply"));
    assert_true(acl_list_match("chat.*", "chat."));
    assert_false(acl_list_match("chat.*", "chat"));
    assert_false(acl_list_match("chat.*,echo.*", "inference.job"));
    assert_true(acl_list_match("*", "anything"));
    assert_true(acl_list_match("inference,echo", "echo"));
    assert_false(acl_list_match("inference,echo", "echo2"));
    assert_false(acl_list_match("inference,echo", "infer"));
    assert_false(acl_list_match("", "echo"));
    assert_false(acl_list_match("echo", ""));

    assert_true(acl_valid_list(""));
    assert_true(acl_valid_list("a,b.*,sy.query:status,*"));
    assert_false(acl_valid_list("a,,b"));
    assert_false(acl_valid_list("a,"));
    assert_false(acl_valid_list(",a"));
    assert_false(acl_valid_list("a*b"));
    assert_false(acl_valid_list("a, b"));
    assert_false(acl_valid_list("**"));
    assert_false(acl_valid_list(NULL));
}

static void test_defaults(void **state)
{
    (void) state;
    acl_t *acl = acl_from(NULL);
    const certs_role_t C = CERTS_ROLE_CLIENT, A = CERTS_ROLE_ACTOR,
                       W = CERTS_ROLE_WORKER, O = CERTS_ROLE_OPERATOR;
    /* offering */
    assert_false(acl_may_offer(acl, C, "inference"));
    assert_false(acl_may_offer(acl, C, "echo"));
    assert_true(acl_may_offer(acl, W, "inference"));
    assert_true(acl_may_offer(acl, W, "echo"));
    assert_false(acl_may_offer(acl, W, "frontdoor"));
    assert_true(acl_may_offer(acl, A, "frontdoor"));
    assert_true(acl_may_offer(acl, A, "debate"));
    assert_false(acl_may_offer(acl, A, "inference"));
    assert_true(acl_may_offer(acl, O, "inference"));
    assert_false(acl_may_offer(acl, CERTS_ROLE_NONE, "echo"));
    assert_false(acl_may_offer(acl, O, ""));

    /* sending: client */
    assert_int_equal(acl_check_send(acl, C, "chat.request", NULL), 0);
    assert_int_equal(acl_check_send(acl, C, "echo.request", NULL), 0);
    assert_int_equal(acl_check_send(acl, C, "sy.hello", NULL), 0);
    assert_int_equal(acl_check_send(acl, C, "sy.ping", NULL), 0);
    assert_int_equal(acl_check_send(acl, C, "sy.bye", NULL), 0);
    assert_int_equal(acl_check_send(acl, C, "sy.query", "status"), 0);
    assert_int_equal(acl_check_send(acl, C, "sy.query", "purge"), SY_EDENIED);
    assert_int_equal(acl_check_send(acl, C, "sy.query", NULL), SY_EDENIED);
    assert_int_equal(acl_check_send(acl, C, "inference.request", NULL), SY_EDENIED);
    assert_int_equal(acl_check_send(acl, C, "sy.ack", NULL), SY_EDENIED);
    assert_int_equal(acl_check_send(acl, C, "sy.event", NULL), SY_EDENIED);

    /* actor and worker: anything but administration */
    assert_int_equal(acl_check_send(acl, A, "inference.request", NULL), 0);
    assert_int_equal(acl_check_send(acl, A, "sy.ack", NULL), 0);
    assert_int_equal(acl_check_send(acl, A, "sy.query", "status"), 0);
    assert_int_equal(acl_check_send(acl, A, "sy.query", "purge"), SY_EDENIED);
    assert_int_equal(acl_check_send(acl, W, "sy.query", "dlq.retry"), SY_EDENIED);
    assert_int_equal(acl_check_send(acl, W, "inference.reply", NULL), 0);

    /* operator: everything */
    assert_int_equal(acl_check_send(acl, O, "sy.query", "purge"), 0);
    assert_int_equal(acl_check_send(acl, O, "sy.query", "status"), 0);
    assert_int_equal(acl_check_send(acl, O, "chat.request", NULL), 0);

    assert_false(acl_is_admin_query(acl, "status"));
    assert_true(acl_is_admin_query(acl, "purge"));
    assert_true(acl_is_admin_query(acl, "statusx"));
    assert_true(acl_is_admin_query(acl, ""));
    assert_int_equal(acl_check_send(acl, CERTS_ROLE_NONE, "sy.hello", NULL), SY_EDENIED);
    acl_destroy(&acl);
    assert_null(acl);
    acl_destroy(&acl);
}

static void test_from_config(void **state)
{
    (void) state;
    acl_t *acl = acl_from(
        "acl\n"
        "    readonly_queries = \"status,stats.*\"\n"
        "    client\n"
        "        offer = \"phone.*\"\n"
        "        send = \"chat.request,sy.query\"\n"
        "    worker\n"
        "        admin = true\n");
    assert_true(acl_may_offer(acl, CERTS_ROLE_CLIENT, "phone.notify"));
    assert_false(acl_may_offer(acl, CERTS_ROLE_CLIENT, "echo"));
    assert_int_equal(acl_check_send(acl, CERTS_ROLE_CLIENT, "chat.request", NULL), 0);
    assert_int_equal(acl_check_send(acl, CERTS_ROLE_CLIENT, "chat.cancel", NULL), SY_EDENIED);
    assert_int_equal(acl_check_send(acl, CERTS_ROLE_CLIENT, "sy.query", "stats.queues"), 0);
    assert_int_equal(acl_check_send(acl, CERTS_ROLE_CLIENT, "sy.query", "purge"), SY_EDENIED);
    assert_int_equal(acl_check_send(acl, CERTS_ROLE_WORKER, "sy.query", "purge"), 0);
    acl_destroy(&acl);

    /* a malformed list is refused with the setting's name */
    char path[] = "/tmp/sy-acl-XXXXXX";
    int fd = mkstemp(path);
    const char *bad = "acl\n    actor\n        send = \"chat.*x\"\n";
    assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t) strlen(bad));
    close(fd);
    config_t *cfg = NULL;
    char err[512] = "";
    assert_int_equal(config_load(path, &cfg, err, sizeof err), 0);
    unlink(path);
    acl_t *a = NULL;
    assert_int_equal(acl_new(cfg, &a, err, sizeof err), SY_ECONFIG);
    assert_null(a);
    assert_non_null(strstr(err, "acl/actor/send"));
    config_destroy(&cfg);
}

/* place is read-only for every role; cancel is owner-checked: the send
   check lets it through without admin, acl_may_cancel() decides. */
static void test_place_and_cancel(void **state)
{
    (void) state;
    acl_t *acl = acl_from(NULL);
    const certs_role_t C = CERTS_ROLE_CLIENT, A = CERTS_ROLE_ACTOR,
                       W = CERTS_ROLE_WORKER, O = CERTS_ROLE_OPERATOR;
    for (int r = 0; r < CERTS_ROLE_COUNT; r++)
        assert_int_equal(acl_check_send(acl, (certs_role_t) r, "sy.query", "place"), 0);
    assert_false(acl_is_admin_query(acl, "place"));
    assert_false(acl_is_admin_query(acl, "cancel"));
    assert_true(acl_is_owner_query("cancel"));
    assert_false(acl_is_owner_query("place"));
    assert_false(acl_is_owner_query("cancelx"));
    assert_false(acl_is_owner_query(""));
    assert_false(acl_is_owner_query(NULL));
    /* the send lists still decide who may ask at all */
    assert_int_equal(acl_check_send(acl, C, "sy.query", "cancel"), SY_EDENIED);
    assert_int_equal(acl_check_send(acl, A, "sy.query", "cancel"), 0);
    assert_int_equal(acl_check_send(acl, W, "sy.query", "cancel"), 0);
    assert_int_equal(acl_check_send(acl, O, "sy.query", "cancel"), 0);

    assert_true(acl_role_admin(acl, O));
    assert_false(acl_role_admin(acl, A));
    assert_false(acl_role_admin(acl, CERTS_ROLE_NONE));
    assert_false(acl_role_admin(NULL, O));

    char why[200] = "";
    /* the sender */
    assert_int_equal(acl_may_cancel(acl, A, "router", "router", "frontdoor", false,
                                    why, sizeof why), 0);
    /* a peer offering the reply_to service */
    assert_int_equal(acl_may_cancel(acl, A, "frontdoor-1", "router", "frontdoor", true,
                                    why, sizeof why), 0);
    /* an admin role, whoever sent it */
    assert_int_equal(acl_may_cancel(acl, O, "ops", "router", NULL, false, why, sizeof why), 0);
    /* anyone else */
    assert_int_equal(acl_may_cancel(acl, A, "mallory", "router", "frontdoor", false,
                                    why, sizeof why), SY_EDENIED);
    assert_non_null(strstr(why, "mallory"));
    assert_int_equal(acl_may_cancel(acl, W, "mallory", NULL, NULL, true, why, sizeof why),
                     SY_EDENIED);
    assert_int_equal(acl_may_cancel(acl, C, "", "", NULL, false, NULL, 0), SY_EDENIED);
    assert_int_equal(acl_may_cancel(acl, CERTS_ROLE_NONE, "x", "y", NULL, false, why,
                                    sizeof why), SY_EDENIED);
    acl_destroy(&acl);

    /* without place in readonly_queries it is administration again;
       a client allowed sy.query:cancel may ask for a cancel */
    acl = acl_from("acl\n    readonly_queries = \"status\"\n"
                   "    client\n        send = \"sy.query:cancel,sy.query:place\"\n");
    assert_int_equal(acl_check_send(acl, A, "sy.query", "place"), SY_EDENIED);
    assert_int_equal(acl_check_send(acl, C, "sy.query", "place"), SY_EDENIED);
    assert_int_equal(acl_check_send(acl, C, "sy.query", "cancel"), 0);
    assert_int_equal(acl_check_send(acl, O, "sy.query", "place"), 0);
    acl_destroy(&acl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_patterns),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_from_config),
        cmocka_unit_test(test_place_and_cancel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
