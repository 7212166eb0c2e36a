/*  benchenvelope.c -- sy-bench-envelope: the envelope header codec alone.
 *
 *  A micro-benchmark for instruction counts, not for time: run it under
 *  `valgrind --tool=callgrind` once with N = 0 and once with N calls, and
 *  (Ir(N) - Ir(0)) / N is the cost of one call.  The header is the one a
 *  durable delivery carries through the broker (type, from, to, id, corr,
 *  ts, prio, durable, attempt).
 *
 *    sy-bench-envelope decode|trusted|encode|all [N]    (N default 1000000)
 *
 *  Each mode checks its result once, so a broken codec cannot look fast.
 */
#include "schemas/envelope.h"
#include "schemas/syerr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The durable header of a delivery. */
static int benchenvelope_header(envelope_t *env)
{
    envelope_init(env);
    for (int i = 0; i < ENVELOPE_ID_LEN; i++) {
        env->id[i] = (uint8_t)(0x30 + i);
        env->corr[i] = (uint8_t)(0xc0 + i);
    }
    int rc = envelope_set_type(env, "bench.work");
    if (!rc) rc = envelope_set_from(env, "bench-producer-1");
    if (!rc) rc = envelope_set_to(env, "bench.durable");
    env->ts = 1763754000123ULL;
    env->prio = ENVELOPE_PRIO_NORMAL;
    env->durable = true;
    env->attempt = 1;
    env->present |= ENV_HAS_CORR | ENV_HAS_TS | ENV_HAS_PRIO |
                    ENV_HAS_DURABLE | ENV_HAS_ATTEMPT;
    return rc;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "all";
    long n = argc > 2 ? strtol(argv[2], NULL, 10) : 1000000;
    bool all = !strcmp(mode, "all");
    envelope_t env, out;
    uint8_t buf[ENVELOPE_MAX_ENCODED];
    if (benchenvelope_header(&env) != 0)
        return 1;
    int len = envelope_encode(&env, buf, sizeof buf);
    if (len <= 0 || envelope_decode(&out, buf, (size_t)len, NULL, 0) != 0 ||
        memcmp(&out, &env, sizeof env) != 0) {
        fprintf(stderr, "sy-bench-envelope: the codec does not round-trip\n");
        return 1;
    }
    volatile int sink = 0;   /* keeps the calls from being optimised away */
    if (all || !strcmp(mode, "decode"))
        for (long i = 0; i < n; i++)
            sink += envelope_decode(&out, buf, (size_t)len, NULL, 0);
    if (all || !strcmp(mode, "trusted"))
        for (long i = 0; i < n; i++)
            sink += envelope_encode_trusted(&env, buf, sizeof buf);
    if (all || !strcmp(mode, "encode"))
        for (long i = 0; i < n; i++)
            sink += envelope_encode(&env, buf, sizeof buf);
    printf("%s: %ld calls, header %d bytes (sink %d)\n", mode, n, len, (int)sink);
    return 0;
}
