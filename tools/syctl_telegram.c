/*  syctl_telegram.c -- `syctl telegram approve | deny | ls` (see
 *  syctl_telegram.h).
 *
 *  One request, one answer: the request goes to the bridge's service (not
 *  durable: if the bridge is down the operator should hear so now, not
 *  have a decision applied later), and the loop runs until the answer
 *  with our id as corr, a receipt refusing the request (NO_SERVICE: no
 *  bridge is connected), or the timeout.
 */
#include "tools/syctl_telegram.h"
#include "common/json.h"
#include "schemas/mpread.h"
#include "schemas/syerr.h"

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ST_OK        0
#define ST_REFUSED   1
#define ST_USAGE     2
#define ST_NOANSWER  3

typedef struct {
    uint8_t id[16];             /* the request */
    bool    json;
    bool    done;
    int     exit_code;
} st_wait_t;

static void st_usage(void)
{
    fprintf(stderr, "syctl: usage: syctl telegram approve CODE | telegram "
                    "deny CODE | telegram ls  [--bridge NAME] [--json]\n");
}

/* Prints text with control characters other than newline and tab as
   '?', so a chat's user name cannot drive the terminal. */
static void st_print(FILE *f, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        fputc((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f ? '?' : c, f);
    }
    fputc('\n', f);
}

static int st_on_answer(actor_t *actor, const actor_msg_t *msg, void *arg)
{
    st_wait_t *w = arg;
    if (w->done || !(msg->hdr.present & ENV_HAS_CORR) || memcmp(msg->hdr.corr, w->id, 16))
        return 0;
    mpread_t r;
    mpval_t m, k, v, text = { 0 };
    bool ok = false, has_text = false;
    mpread_init(&r, msg->body, msg->body_len);
    if (mpread_next(&r, &m) == 0 && m.kind == MP_MAP)
        for (uint32_t i = 0; i < m.len; i++) {
            if (mpread_next(&r, &k) || mpread_next(&r, &v))
                break;
            if (mpval_str_eq(&k, "ok") && v.kind == MP_BOOL)
                ok = v.b;
            else if (mpval_str_eq(&k, "text") && v.kind == MP_STR) {
                text = v;
                has_text = true;
            }
            if (mpread_skip(&r, &v, 1))
                break;
        }
    if (w->json) {
        char *line = NULL;
        if (json_from_msgpack(msg->body, msg->body_len, &line) == 0)
            printf("%s\n", line);
        free(line);
    } else if (has_text)
        st_print(ok ? stdout : stderr, text.ptr, text.len);
    w->exit_code = ok ? ST_OK : ST_REFUSED;
    w->done = true;
    actor_stop(actor);
    return 0;
}

static int st_on_receipt(actor_t *actor, const actor_msg_t *msg, void *arg)
{
    st_wait_t *w = arg;
    actor_receipt_t r;
    if (w->done || actor_receipt_parse(msg, &r) || !r.has_corr
        || memcmp(r.corr, w->id, 16) || r.ok)
        return 0;
    if (r.code == SY_ENO_SERVICE) {
        fprintf(stderr, "syctl: the telegram bridge is not running\n");
        w->exit_code = ST_NOANSWER;
    } else {
        fprintf(stderr, "syctl: %s: %s\n", r.code_name, r.msg);
        w->exit_code = ST_REFUSED;
    }
    w->done = true;
    actor_stop(actor);
    return 0;
}

static int st_ignore(actor_t *actor, const actor_msg_t *msg, void *arg)
{
    (void) actor;
    (void) msg;
    (void) arg;
    return 0;
}

/* Builds the request's body: {code, deny?} or {}. */
static void st_body(msgpack_sbuffer *sb, const char *code, bool deny)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, code ? (deny ? 2 : 1) : 0);
    if (!code)
        return;
    msgpack_pack_str(&pk, 4);
    msgpack_pack_str_body(&pk, "code", 4);
    msgpack_pack_str(&pk, strlen(code));
    msgpack_pack_str_body(&pk, code, strlen(code));
    if (deny) {
        msgpack_pack_str(&pk, 4);
        msgpack_pack_str_body(&pk, "deny", 4);
        msgpack_pack_true(&pk);
    }
}

int syctl_telegram_run(actor_t *actor, int argc, char **argv, bool json,
                       int timeout_ms)
{
    const char *bridge = "telegram", *words[3] = { 0 };
    int nwords = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--bridge") == 0 && i + 1 < argc)
            bridge = argv[++i];
        else if (strncmp(argv[i], "--bridge=", 9) == 0)
            bridge = argv[i] + 9;
        else if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (argv[i][0] == '-' || nwords == 2) {
            st_usage();
            return ST_USAGE;
        } else
            words[nwords++] = argv[i];
    }
    bool ls = nwords == 1 && strcmp(words[0], "ls") == 0;
    bool approve = nwords == 2 && strcmp(words[0], "approve") == 0;
    bool deny = nwords == 2 && strcmp(words[0], "deny") == 0;
    if (!actor || (!ls && !approve && !deny) || !bridge[0]) {
        st_usage();
        return ST_USAGE;
    }
    size_t clen = (approve || deny) ? strlen(words[1]) : 0;
    if ((approve || deny) && (clen < 4 || clen > 16)) {
        fprintf(stderr, "syctl: a pairing code (or chat id) is 4 to 16 "
                        "characters\n");
        return ST_USAGE;
    }
    st_wait_t w = { .json = json, .exit_code = ST_NOANSWER };
    actor_on(actor, "telegram.answer", st_on_answer, &w);
    actor_on(actor, "sy.receipt", st_on_receipt, &w);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    st_body(&sb, ls ? NULL : words[1], deny);
    int rc = actor_send(actor, bridge, ls ? "telegram.list" : "telegram.approve",
                        (const uint8_t *) sb.data, sb.size, NULL, w.id);
    msgpack_sbuffer_destroy(&sb);
    if (rc) {
        fprintf(stderr, "syctl: not sent: %s\n", syerr_text(rc));
        return rc == SY_EINVAL ? ST_USAGE : ST_NOANSWER;
    }
    actor_run_for(actor, timeout_ms > 0 ? timeout_ms : 5000);
    if (!w.done)
        fprintf(stderr, "syctl: no answer in %d ms: the telegram bridge is "
                        "not running\n", timeout_ms);
    /* w lives on this stack: nothing may reach it after we return */
    actor_on(actor, "telegram.answer", st_ignore, NULL);
    actor_on(actor, "sy.receipt", st_ignore, NULL);
    return w.exit_code;
}
