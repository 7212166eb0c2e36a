/*  benchchat.c -- sy-bench-chat, one-at-a-time round trips of a question.
 *
 *  Two modes with the same client code (the actor runtime, as syctl chat
 *  uses it), so their ratio is what the chat actors add:
 *    chat  chat.message to frontdoor, timed until the chat.reply whose ref
 *          is this message's id comes back (frontdoor -> router ->
 *          inference -> backend -> frontdoor -> us);
 *    echo  echo.request to echo, timed until its echo.reply: the direct
 *          request/reply through the broker.
 *  Prints one line: "MODE n=N p50_us=X p90_us=X p99_us=X max_us=X".
 *
 *  Usage: sy-bench-chat MODE ENDPOINT COUNT WARMUP [NAME]
 */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/actor.h"
#include "common/sylog.h"
#include "schemas/mpread.h"
#include "schemas/syerr.h"

typedef struct {
    char ref[33];       /* hex id of the message in flight */
    bool done;
    bool error;
} benchchat_t;

static int64_t benchchat_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void benchchat_hex(const uint8_t id[16], char out[33])
{
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", id[i]);
}

/* chat.reply: done when its ref is ours. */
static int benchchat_on_reply(actor_t *a, const actor_msg_t *msg, void *arg)
{
    benchchat_t *b = arg;
    mpread_t r;
    mpval_t map, k, v;
    mpread_init(&r, msg->body, msg->body_len);
    if (mpread_next(&r, &map) != 0 || map.kind != MP_MAP)
        return 0;
    bool ours = false, err = false;
    for (uint32_t i = 0; i < map.len; i++) {
        if (mpread_next(&r, &k) != 0 || mpread_next(&r, &v) != 0)
            return 0;
        if (mpval_str_eq(&k, "ref") && v.kind == MP_STR && v.len == 32
            && memcmp(v.ptr, b->ref, 32) == 0)
            ours = true;
        else if (mpval_str_eq(&k, "error"))
            err = true;
        if (mpread_skip(&r, &v, 1) != 0)
            return 0;
    }
    if (ours) {
        b->done = true;
        b->error = err;
        actor_stop(a);
    }
    return 0;
}

static int benchchat_on_echo(actor_t *a, const actor_msg_t *msg, void *arg)
{
    (void) msg;
    ((benchchat_t *) arg)->done = true;
    actor_stop(a);
    return 0;
}

static int benchchat_cmp(const void *x, const void *y)
{
    int64_t a = *(const int64_t *) x, b = *(const int64_t *) y;
    return (a > b) - (a < b);
}

/* One round trip; returns its ns, or -1. */
static int64_t benchchat_once(actor_t *a, benchchat_t *b, bool chat, long i)
{
    char text[64];
    snprintf(text, sizeof text, "analyze benchmark question %ld", i);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, chat ? "text" : "data", 4);
    msgpack_pack_str_with_body(&pk, text, strlen(text));
    uint8_t id[16];
    b->done = b->error = false;
    int64_t t0 = benchchat_now_ns();
    int rc = actor_send(a, chat ? "frontdoor" : "echo",
                        chat ? "chat.message" : "echo.request",
                        (const uint8_t *) sb.data, sb.size, NULL, id);
    msgpack_sbuffer_destroy(&sb);
    if (rc != 0)
        return -1;
    benchchat_hex(id, b->ref);
    actor_run_for(a, 10000);
    if (!b->done || b->error)
        return -1;
    return benchchat_now_ns() - t0;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: sy-bench-chat chat|echo ENDPOINT COUNT WARMUP [NAME]\n");
        return 2;
    }
    bool chat = strcmp(argv[1], "chat") == 0;
    long count = atol(argv[3]), warm = atol(argv[4]);
    sylog_open("sy-bench-chat", SYLOG_WARN, NULL);
    actor_opts_t o = { .name = argc > 5 ? argv[5] : "bench-user",
                       .endpoint = argv[2], .credit = 1 };
    actor_t *a = actor_new(&o);
    benchchat_t b = { .done = false };
    if (!a || actor_wait_connected(a, 5000) != 0) {
        fprintf(stderr, "sy-bench-chat: cannot connect to %s\n", argv[2]);
        return 1;
    }
    actor_on(a, "chat.reply", benchchat_on_reply, &b);
    actor_on(a, "echo.reply", benchchat_on_echo, &b);
    int64_t *ns = calloc((size_t) (count > 0 ? count : 1), sizeof *ns);
    long n = 0, failed = 0;
    for (long i = 0; i < warm + count && ns; i++) {
        int64_t t = benchchat_once(a, &b, chat, i);
        if (t < 0)
            failed++;
        else if (i >= warm)
            ns[n++] = t;
    }
    if (n > 0) {
        qsort(ns, (size_t) n, sizeof *ns, benchchat_cmp);
        printf("%s n=%ld failed=%ld p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f\n",
               argv[1], n, failed, ns[n / 2] / 1e3, ns[n * 9 / 10] / 1e3,
               ns[n * 99 / 100] / 1e3, ns[n - 1] / 1e3);
    }
    free(ns);
    actor_destroy(&a);
    zsys_shutdown();
    return n > 0 && failed == 0 ? 0 : 1;
}
