/*  test_telegram.c -- the Telegram bridge (sy-telegram) on the real broker
 *  against a fake Bot API (tests/fakes/telegram_fake.py).
 *
 *  The real sy-broker and sy-telegram run as processes.  The front door
 *  is played by a raw test client (tests/it/htg.h) that acks every
 *  durable delivery at once and records each chat.message, and sends the
 *  answers (chat.reply durable, chat.token not) to the service telegram
 *  with user, addr and ref as docs/CHAT.md says.  Chats are approved with
 *  the real pairing flow: a message, the code the bridge sends back,
 *  telegram.approve (from a test client; the pairing test uses the real
 *  `syctl telegram approve` and `syctl telegram ls`).
 *
 *  Covered (issue 6): SIGKILLs of the bridge while updates stream in lose
 *  none and forward none twice; an update the API serves again is
 *  forwarded once; 429 retry_after honoured (the fake's clock says no
 *  getUpdates came meanwhile) and 5xx, 409 and dropped connections
 *  retried, on polling and on sending; a 10,000-character answer split
 *  into three messages of at most 4096 characters; a streamed answer as
 *  one message edited at most once per edit_interval; pairing of an
 *  unknown chat; an answer that waited in the broker while the bridge
 *  was down; the fields and attachments of what is forwarded.
 *
 *  While bin/sy-telegram is not built every test skips, saying so.
 *  Figures (kills, deliveries, gaps in the fake's clock) are printed.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/it/harness.h"
#include "tests/it/hclient.h"
#include "tests/it/hmp.h"
#include "tests/it/htg.h"

#define WAIT_MS 5000

enum {
    CHAT_KILL = 1001, CHAT_REPLAY = 2002, CHAT_RETRY = 3003,
    CHAT_LONG = 4004, CHAT_STREAM = 4005, CHAT_NEW = 5005, CHAT_DENY = 5006,
    CHAT_STOP = 6006, CHAT_FIELDS = 7007,
};

typedef struct {
    harness_t  *h;
    htg_fake_t *fake;
    htg_fd_t   *fd;
} env_t;

static int slow_ms(int ms)
{
    return ms * harness_slow();
}

static int setup(void **state)
{
    env_t *e = calloc(1, sizeof *e);
    if (!e)
        return -1;
    void *hs = NULL;
    if (harness_setup(&hs, "telegram") != 0) {
        free(e);
        return -1;
    }
    e->h = hs;
    harness_set(e->h, "store/sync", "none");
    harness_set(e->h, "store/retry_backoff", "100ms");
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env_t *e = *state;
    if (!e)
        return 0;
    htg_fd_free(&e->fd);
    htg_fake_free(&e->fake);
    harness_destroy(&e->h);
    free(e);
    *state = NULL;
    return 0;
}

/* The broker, the fake Bot API, the fake front door; the bridge if
   asked.  Skips the test while sy-telegram is not built. */
static hproc_t *start_all(env_t *e, bool bridge)
{
    if (!htg_bridge_built(e->h)) {
        printf("SKIP: bin/sy-telegram is not built yet (actors/telegram.c); "
               "the Telegram bridge tests need it\n");
        fflush(stdout);
        harness_pass(e->h);
        skip();
    }
    harness_broker_start(e->h);
    e->fake = htg_fake_start(e->h, NULL);
    htg_configure(e->h, e->fake);
    e->fd = htg_fd_new(e->h);
    return bridge ? htg_bridge_start(e->h, true) : NULL;
}

/* Queues a text and waits for it at the front door; its update_id. */
static uint64_t say_and_wait(env_t *e, int64_t chat, const char *text)
{
    uint64_t id = htg_fake_text(e->fake, chat, chat, text);
    char ref[32];
    if (!htg_fd_wait(e->fd, htg_ref(id, ref), 10000))
        fail_msg("bridge: update %s (%s) from an allowed chat was not "
                 "forwarded to the front door within %d ms", ref, text,
                 slow_ms(10000));
    return id;
}

/* Polls a stat of the fake until it is at least want; its last value. */
static long wait_stat(env_t *e, const char *path, long want, int timeout_ms)
{
    int64_t end = harness_now_ms() + slow_ms(timeout_ms);
    long v;
    while ((v = htg_fake_stat(e->fake, path)) < want
           && harness_now_ms() < end)
        htg_fd_pump(e->fd, 30);
    return v;
}

/* Code points of a UTF-8 string (all of ours are in the BMP: one UTF-16
   unit each). */
static size_t chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char) *s & 0xC0) != 0x80;
    return n;
}

/* ------------------------------------------------------------ (a) kills */

#define KILL_UPDATES 200
#define KILL_BURST   10

/* Update ids of ids[0..n) the fake served in more than one getUpdates
   answer: served again because a kill came before the offset moved. */
static size_t served_again(env_t *e, const uint64_t *ids, size_t n)
{
    size_t len = 0;
    uint8_t *mp = htg_fake_get(e->fake, "/_fake/requests?method=getUpdates",
                               &len);
    assert_non_null(mp);
    int *times = calloc(n, sizeof *times);
    assert_non_null(times);
    int nreq = hmp_count(mp, len, "requests");
    for (int i = 0; i < nreq; i++) {
        char p[64];
        snprintf(p, sizeof p, "requests.%d.updates", i);
        int nu = hmp_count(mp, len, p);
        for (int j = 0; j < nu; j++) {
            uint64_t u = 0;
            snprintf(p, sizeof p, "requests.%d.updates.%d", i, j);
            if (hmp_get_uint(mp, len, p, &u) && u >= ids[0]
                && u - ids[0] < n)
                times[u - ids[0]]++;
        }
    }
    size_t again = 0;
    for (size_t i = 0; i < n; i++)
        again += times[i] > 1;
    free(times);
    free(mp);
    return again;
}

/* Lines of the bridge's logs (telegram*.log) saying an update was
   refused by the broker as a DUPLICATE ("forwarded (already)"): for the
   report only. */
static int bridge_log_count(env_t *e, const char *needle)
{
    int n = 0;
    for (int i = 1; i < 100; i++) {
        char path[HARNESS_PATH_MAX];
        if (i == 1)
            snprintf(path, sizeof path, "%s/telegram.log", harness_dir(e->h));
        else
            snprintf(path, sizeof path, "%s/telegram-%d.log",
                     harness_dir(e->h), i);
        FILE *fp = fopen(path, "r");
        if (!fp)
            break;
        char line[1024];
        while (fgets(line, sizeof line, fp))
            n += strstr(line, needle) != NULL;
        fclose(fp);
    }
    return n;
}

static void kill_and_restart(env_t *e, hproc_t **br, unsigned *seed)
{
    harness_kill(e->h, *br);
    htg_fd_pump(e->fd, (int) (rand_r(seed) % 300));
    *br = htg_bridge_start(e->h, false);
}

static void test_kill_while_streaming(void **state)
{
    env_t *e = *state;
    /* receipts after a real fsync, as shipped: a wider window between
       forwarding an update and moving the offset for the kills to hit */
    harness_set(e->h, "store/sync", "full");
    hproc_t *br = start_all(e, true);
    htg_approve_chat(e->fd, e->fake, CHAT_KILL);

    const char *s = getenv("SY_TG_SEED");
    unsigned seed = s ? (unsigned) strtoul(s, NULL, 10)
                      : (unsigned) time(NULL) ^ (unsigned) getpid();
    unsigned seed0 = seed;
    int nkills = 3 + (int) (rand_r(&seed) % 3);
    int nbursts = KILL_UPDATES / KILL_BURST;
    bool kill_after[KILL_UPDATES / KILL_BURST] = { false };
    for (int k = 0; k < nkills;) {     /* distinct random bursts, not the last */
        int b = 1 + (int) (rand_r(&seed) % (unsigned) (nbursts - 2));
        if (!kill_after[b]) {
            kill_after[b] = true;
            k++;
        }
    }

    /* In bursts, so that the bridge has a backlog; a kill comes a few
       random milliseconds after a burst, while the bridge is forwarding
       it: between forwarding an update and moving its offset. */
    uint64_t ids[KILL_UPDATES];
    for (int b = 0; b < nbursts; b++) {
        for (int i = b * KILL_BURST; i < (b + 1) * KILL_BURST; i++) {
            char text[32];
            snprintf(text, sizeof text, "update number %d", i);
            ids[i] = htg_fake_text(e->fake, CHAT_KILL, CHAT_KILL, text);
        }
        if (kill_after[b]) {
            harness_sleep_ms((int) (rand_r(&seed) % 8));
            kill_and_restart(e, &br, &seed);
        }
        htg_fd_pump(e->fd, 100);
    }

    /* After the last restart: every update, then a while for late
       duplicates. */
    int64_t end = harness_now_ms() + slow_ms(20000);
    size_t missing = KILL_UPDATES;
    while (missing && harness_now_ms() < end) {
        htg_fd_pump(e->fd, 100);
        missing = 0;
        for (int i = 0; i < KILL_UPDATES; i++) {
            char ref[32];
            missing += htg_fd_count(e->fd, htg_ref(ids[i], ref)) == 0;
        }
    }
    htg_fd_pump(e->fd, 1500);

    size_t total = 0, distinct = 0, twice = 0, redelivered = 0;
    int first_dup = -1;
    missing = 0;
    for (int i = 0; i < KILL_UPDATES; i++) {
        char ref[32];
        int c = htg_fd_count(e->fd, htg_ref(ids[i], ref));
        total += (size_t) c;
        distinct += c > 0;
        missing += c == 0;
        if (c > 1) {
            twice++;
            if (first_dup < 0)
                first_dup = i;
        }
    }
    for (size_t i = 0; i < e->fd->n; i++)
        redelivered += e->fd->recs[i].attempt > 1;
    printf("kills: %d (seed %u, SY_TG_SEED to repeat); updates %d; "
           "chat.message deliveries %zu; distinct update_ids %zu; lost %zu; "
           "forwarded twice %zu (broker redeliveries %zu); fake: "
           "getUpdates %ld, updates served again after a kill %zu, "
           "confirmed offset %ld (last update %llu); bridge logs: sent again "
           "and refused as DUPLICATE %d\n",
           nkills, seed0, KILL_UPDATES, total, distinct, missing, twice,
           redelivered, htg_fake_stat(e->fake, "requests.getUpdates"),
           served_again(e, ids, KILL_UPDATES),
           htg_fake_stat(e->fake, "confirmed_offset"),
           (unsigned long long) ids[KILL_UPDATES - 1],
           bridge_log_count(e, "forwarded (already)"));
    fflush(stdout);
    if (missing)
        fail_msg("bridge: %zu of %d updates were never forwarded after %d "
                 "SIGKILLs (lost must be 0)", missing, KILL_UPDATES, nkills);
    if (twice) {
        char ref[32];
        fail_msg("bridge: %zu updates reached the front door more than once "
                 "(first: %s, %d times); each must be forwarded once "
                 "(key tg:<update_id>)", twice,
                 htg_ref(ids[first_dup], ref),
                 htg_fd_count(e->fd, ref));
    }
    assert_int_equal(total, KILL_UPDATES);
    harness_pass(e->h);
}

/* ------------------------------------------------------------ (b) replay */

static void test_replayed_update_forwarded_once(void **state)
{
    env_t *e = *state;
    start_all(e, true);
    htg_approve_chat(e->fd, e->fake, CHAT_REPLAY);
    uint64_t u = say_and_wait(e, CHAT_REPLAY, "only once, please");
    char ref[32];
    htg_ref(u, ref);
    /* The bridge confirms it with its next poll; then the API serves it
       again (as Telegram may). */
    long off = wait_stat(e, "confirmed_offset", (long) u + 1, WAIT_MS);
    if (off < (long) u + 1)
        fail_msg("bridge: getUpdates never confirmed update %llu (offset "
                 "%ld)", (unsigned long long) u, off);
    long served = htg_fake_stat(e->fake, "replays_served");
    htg_fake_replay(e->fake, u);
    if (wait_stat(e, "replays_served", served + 1, WAIT_MS) < served + 1)
        fail_msg("bridge: did not poll again within %d ms", slow_ms(WAIT_MS));
    /* The poll after the one that served it: the bridge has handled it. */
    long polls = htg_fake_stat(e->fake, "requests.getUpdates");
    wait_stat(e, "requests.getUpdates", polls + 1, WAIT_MS);
    htg_fd_pump(e->fd, 700);
    int n = htg_fd_count(e->fd, ref);
    if (n != 1)
        fail_msg("bridge: update %s served twice by the API reached the front "
                 "door %d times (want 1)", ref, n);
    /* ... and it goes on. */
    say_and_wait(e, CHAT_REPLAY, "and the next one");
    assert_int_equal(htg_fd_count(e->fd, ref), 1);
    harness_pass(e->h);
}

/* ------------------------------------------------------------ (c) retries */

/* In the fake's log of method: the last request answered with status,
   and the first request that arrived after it (the log is in order of
   answers, and a long poll is answered long after it came: order by
   arrival).  Returns the time from that answer to the next arrival, in
   seconds (-1: none), and the retry_after that was asked. */
static double gap_after(env_t *e, const char *method, int status,
                        double *asked)
{
    char path[96];
    snprintf(path, sizeof path, "/_fake/requests?method=%s", method);
    size_t len = 0;
    uint8_t *mp = htg_fake_get(e->fake, path, &len);
    assert_non_null(mp);
    int n = hmp_count(mp, len, "requests");
    int at = -1;
    double t_at = 0, done = 0, ra = 0;
    for (int i = 0; i < n; i++) {
        char p[48];
        uint64_t st = 0;
        double t = 0;
        snprintf(p, sizeof p, "requests.%d.status", i);
        hmp_get_uint(mp, len, p, &st);
        snprintf(p, sizeof p, "requests.%d.t", i);
        hmp_get_num(mp, len, p, &t);
        if (st == (uint64_t) status && (at < 0 || t > t_at)) {
            at = i;
            t_at = t;
        }
    }
    double next = -1;
    if (at >= 0) {
        char p[48];
        snprintf(p, sizeof p, "requests.%d.t_done", at);
        hmp_get_num(mp, len, p, &done);
        snprintf(p, sizeof p, "requests.%d.retry_after", at);
        hmp_get_num(mp, len, p, &ra);
        for (int i = 0; i < n; i++) {
            double t = 0;
            snprintf(p, sizeof p, "requests.%d.t", i);
            if (hmp_get_num(mp, len, p, &t) && t > t_at
                && (next < 0 || t < next))
                next = t;
        }
    }
    *asked = ra;
    free(mp);
    return next < 0 ? -1 : next - done;
}

/* Switches fail on for `count` requests of method, waits until the fake
   has refused one, queues an update and waits for it. */
static void poll_survives(env_t *e, const char *fail, int count)
{
    long r0 = htg_fake_stat(e->fake, "refused.getUpdates");
    char mode[128];
    snprintf(mode, sizeof mode, "{\"fail\":\"%s\",\"method\":\"getUpdates\","
             "\"fail_count\":%d}", fail, count);
    htg_fake_mode(e->fake, mode);
    if (wait_stat(e, "refused.getUpdates", r0 + 1, WAIT_MS) < r0 + 1)
        fail_msg("bridge: no getUpdates came while fail %s was on", fail);
    char text[64];
    snprintf(text, sizeof text, "after a %s", fail);
    uint64_t id = htg_fake_text(e->fake, CHAT_RETRY, CHAT_RETRY, text);
    char ref[32];
    if (!htg_fd_wait(e->fd, htg_ref(id, ref), 10000))
        fail_msg("bridge: after getUpdates answered %s (%d times) update %s "
                 "was not forwarded within %d ms: no retry?", fail, count,
                 ref, slow_ms(10000));
    long r1 = htg_fake_stat(e->fake, "refused.getUpdates");
    printf("getUpdates %s x%d: refused %ld, update forwarded\n", fail, count,
           r1 - r0);
    if (r1 - r0 < count)
        fail_msg("fake: applied fail %s %ld times, not %d", fail, r1 - r0,
                 count);
}

static void test_retries_and_retry_after(void **state)
{
    env_t *e = *state;
    start_all(e, true);
    htg_approve_chat(e->fd, e->fake, CHAT_RETRY);

    /* 429 with retry_after 2 on getUpdates */
    long r0 = htg_fake_stat(e->fake, "refused.getUpdates");
    htg_fake_mode(e->fake, "{\"fail\":\"429\",\"method\":\"getUpdates\","
                  "\"fail_count\":1,\"retry_after\":2}");
    if (wait_stat(e, "refused.getUpdates", r0 + 1, WAIT_MS) < r0 + 1)
        fail_msg("bridge: no getUpdates came after the mode switch");
    say_and_wait(e, CHAT_RETRY, "after a 429");
    double asked = 0, gap = gap_after(e, "getUpdates", 429, &asked);
    printf("getUpdates 429 retry_after %.0f: next getUpdates %.3f s after "
           "the answer (fake's clock)\n", asked, gap);
    if (gap < 0)
        fail_msg("fake: no getUpdates after the 429 in its log");
    if (gap < asked - 0.05)
        fail_msg("bridge: getUpdates again %.3f s after a 429 with "
                 "retry_after %.0f (must wait it out)", gap, asked);

    poll_survives(e, "500", 2);
    poll_survives(e, "502", 1);
    poll_survives(e, "drop", 2);
    poll_survives(e, "409", 1);

    /* sending: 429 retry_after 1, then 500, then a dropped connection */
    uint64_t ask = say_and_wait(e, CHAT_RETRY, "answer me");
    char ref[32];
    htg_ref(ask, ref);
    struct { const char *mode, *text; } sends[] = {
        { "{\"fail\":\"429\",\"method\":\"sendMessage\",\"fail_count\":1,"
          "\"retry_after\":1}", "sent after a 429" },
        { "{\"fail\":\"500\",\"method\":\"sendMessage\",\"fail_count\":1}",
          "sent after a 500" },
        { "{\"fail\":\"drop\",\"method\":\"sendMessage\",\"fail_count\":1}",
          "sent after a drop" },
    };
    for (size_t i = 0; i < sizeof sends / sizeof sends[0]; i++) {
        uint64_t mark = htg_fake_sent_mark(e->fake);
        long s0 = htg_fake_stat(e->fake, "refused.sendMessage");
        htg_fake_mode(e->fake, sends[i].mode);
        htg_fd_reply(e->fd, CHAT_RETRY, ref, NULL, sends[i].text, true);
        if (!htg_fake_wait_sent(e->fake, CHAT_RETRY, mark, sends[i].text,
                                10000))
            fail_msg("bridge: \"%s\" never sent (mode %s)", sends[i].text,
                     sends[i].mode);
        long s1 = htg_fake_stat(e->fake, "refused.sendMessage");
        if (s1 <= s0)
            fail_msg("fake: the sendMessage fail was not applied (%s)",
                     sends[i].mode);
        htg_fd_pump(e->fd, 300);
        htg_sent_list_t l;
        htg_fake_sent(e->fake, CHAT_RETRY, mark, &l);
        size_t copies = 0;
        for (size_t j = 0; j < l.n; j++)
            copies += strcmp(l.v[j].plain, sends[i].text) == 0;
        htg_sent_clear(&l);
        if (copies != 1)
            fail_msg("bridge: \"%s\" sent %zu times", sends[i].text, copies);
        if (i == 0) {
            gap = gap_after(e, "sendMessage", 429, &asked);
            printf("sendMessage 429 retry_after %.0f: next sendMessage %.3f s "
                   "later\n", asked, gap);
            if (gap < asked - 0.05)
                fail_msg("bridge: sendMessage again %.3f s after a 429 with "
                         "retry_after %.0f", gap, asked);
        }
    }
    fflush(stdout);
    harness_pass(e->h);
}

/* ------------------------------------------------------------ (d) long and streamed */

/* About 10,000 characters: words, HTML specials, Korean; no newlines. */
static char *long_text(size_t want_chars)
{
    static const char *const words[] = {
        "alpha ", "beta ", "gamma ", "<tag> ", "a&b ", "한국어 ", "delta ",
        "\"quoted\" ", "epsilon ", "x>y ", "zeta ", "문장입니다 ",
    };
    size_t cap = want_chars * 3 + 64, len = 0, n = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    for (size_t i = 0; n < want_chars; i++) {
        const char *w = words[i % (sizeof words / sizeof words[0])];
        for (const char *p = w; *p && n < want_chars;) {
            size_t cl = 1;      /* one whole UTF-8 character */
            while ((p[cl] & 0xC0) == 0x80)
                cl++;
            memcpy(s + len, p, cl);
            len += cl;
            p += cl;
            n++;
        }
    }
    s[len] = '\0';
    return s;
}

/* True if the parts joined equal text, allowing whitespace at each seam
   to be left out (Telegram trims each message's ends). */
static bool joined_equal(const htg_sent_list_t *l, const char *text)
{
    const char *t = text;
    for (size_t i = 0; i < l->n; i++) {
        const char *p = l->v[i].plain;
        size_t pl = strlen(p);
        while (pl && (p[pl - 1] == ' ' || p[pl - 1] == '\n'))
            pl--;
        while (pl && (*p == ' ' || *p == '\n')) {
            p++;
            pl--;
        }
        while (*t == ' ' || *t == '\n')
            t++;
        if (strncmp(t, p, pl) != 0) {
            print_error("part %zu differs at text offset %zu\n", i + 1,
                        (size_t) (t - text));
            return false;
        }
        t += pl;
    }
    while (*t == ' ' || *t == '\n')
        t++;
    return *t == '\0';
}

static void test_long_reply_split(void **state)
{
    env_t *e = *state;
    start_all(e, true);
    htg_approve_chat(e->fd, e->fake, CHAT_LONG);
    uint64_t ask = say_and_wait(e, CHAT_LONG, "write me something long");
    char ref[32];
    htg_ref(ask, ref);
    char *text = long_text(10000);
    uint64_t mark = htg_fake_sent_mark(e->fake);
    uint8_t job[16];
    hclient_new_id(e->fd->c, job);
    htg_fd_reply(e->fd, CHAT_LONG, ref, job, text, true);

    /* until the parts hold the whole text (3 parts at 1 per second) */
    htg_sent_list_t l = { 0 };
    int64_t end = harness_now_ms() + slow_ms(15000);
    size_t got = 0;
    do {
        htg_fd_pump(e->fd, 200);
        htg_sent_clear(&l);
        htg_fake_sent(e->fake, CHAT_LONG, mark, &l);
        got = 0;
        for (size_t i = 0; i < l.n; i++)
            got += chars(l.v[i].plain);
    } while (got < 9990 && harness_now_ms() < end);
    htg_fd_pump(e->fd, 1200);   /* nothing more may follow */
    htg_sent_clear(&l);
    htg_fake_sent(e->fake, CHAT_LONG, mark, &l);
    printf("10000-character reply: %zu messages:", l.n);
    for (size_t i = 0; i < l.n; i++)
        printf(" %s %zu chars;", l.v[i].method, chars(l.v[i].plain));
    printf("\n");
    fflush(stdout);
    for (size_t i = 0; i < l.n; i++) {
        if (strcmp(l.v[i].method, "sendMessage") != 0)
            fail_msg("bridge: part %zu of a long reply came as %s", i + 1,
                     l.v[i].method);
        if (chars(l.v[i].plain) > 4096)
            fail_msg("bridge: part %zu has %zu characters (> 4096)", i + 1,
                     chars(l.v[i].plain));
    }
    if (l.n != 3)
        fail_msg("bridge: a 10,000-character reply came as %zu messages, "
                 "not 3", l.n);
    if (!joined_equal(&l, text))
        fail_msg("bridge: the 3 parts joined (HTML-unescaped) differ from "
                 "the reply");
    htg_sent_clear(&l);
    free(text);
    harness_pass(e->h);
}

static void test_streamed_answer_edits(void **state)
{
    env_t *e = *state;
    start_all(e, true);
    htg_approve_chat(e->fd, e->fake, CHAT_STREAM);
    uint64_t ask = say_and_wait(e, CHAT_STREAM, "tell me a story");
    char ref[32];
    htg_ref(ask, ref);
    uint8_t job[16];
    hclient_new_id(e->fd->c, job);
    uint64_t mark = htg_fake_sent_mark(e->fake);

    /* tokens every 50 ms for 3 s, then the final answer */
    char full[1024] = "";
    for (int i = 0; i < 60; i++) {
        char tok[16];
        snprintf(tok, sizeof tok, "w%d ", i);
        strcat(full, tok);
        htg_fd_token(e->fd, CHAT_STREAM, ref, job, (uint64_t) i, tok);
        htg_fd_pump(e->fd, 50);
    }
    full[strlen(full) - 1] = '\0';      /* no trailing space */
    htg_fd_reply(e->fd, CHAT_STREAM, ref, job, full, true);

    htg_sent_list_t l = { 0 };
    int64_t end = harness_now_ms() + slow_ms(10000);
    bool done = false;
    while (!done && harness_now_ms() < end) {
        htg_fd_pump(e->fd, 100);
        htg_sent_clear(&l);
        htg_fake_sent(e->fake, CHAT_STREAM, mark, &l);
        done = l.n && strcmp(l.v[l.n - 1].plain, full) == 0;
    }
    htg_fd_pump(e->fd, 1500);   /* nothing more may follow */
    htg_sent_clear(&l);
    htg_fake_sent(e->fake, CHAT_STREAM, mark, &l);
    printf("streamed answer: %zu requests accepted:", l.n);
    for (size_t i = 0; i < l.n; i++)
        printf(" %s +%.3fs (%zu chars);", l.v[i].method,
               i ? l.v[i].time - l.v[i - 1].time : 0.0, chars(l.v[i].plain));
    printf("\n");
    fflush(stdout);
    if (l.n < 2)
        fail_msg("bridge: a streamed answer made %zu messages (want one "
                 "sendMessage and edits)", l.n);
    if (strcmp(l.v[0].method, "sendMessage") != 0)
        fail_msg("bridge: a streamed answer began with %s", l.v[0].method);
    for (size_t i = 1; i < l.n; i++) {
        if (strcmp(l.v[i].method, "editMessageText") != 0
            || l.v[i].message_id != l.v[0].message_id)
            fail_msg("bridge: request %zu of a streamed answer is %s of "
                     "message %lld (want edits of message %lld)", i + 1,
                     l.v[i].method, (long long) l.v[i].message_id,
                     (long long) l.v[0].message_id);
        double gap = l.v[i].time - l.v[i - 1].time;
        if (gap < 0.9)
            fail_msg("bridge: edit %zu came %.3f s after the one before "
                     "(edit_interval 1s)", i, gap);
    }
    if (strcmp(l.v[l.n - 1].plain, full) != 0)
        fail_msg("bridge: the streamed message ends as [%s], not the final "
                 "answer [%s]", l.v[l.n - 1].plain, full);
    htg_sent_clear(&l);
    harness_pass(e->h);
}

/* ------------------------------------------------------------ (e) pairing */

static void test_unknown_chat_pairing(void **state)
{
    env_t *e = *state;
    start_all(e, true);
    uint64_t mark = htg_fake_sent_mark(e->fake);
    uint64_t u1 = htg_fake_text(e->fake, CHAT_NEW, CHAT_NEW, "let me in");
    uint64_t seq = htg_fake_wait_sent(e->fake, CHAT_NEW, mark, "approve",
                                      WAIT_MS);
    if (!seq)
        fail_msg("bridge: an unknown chat got no pairing code");
    htg_sent_list_t l;
    htg_fake_sent(e->fake, CHAT_NEW, seq - 1, &l);
    assert_true(l.n >= 1);
    char code[32];
    printf("pairing message: %s\n", l.v[0].plain);
    if (!strstr(l.v[0].plain, "syctl telegram approve ")
        || !htg_code_in(l.v[0].plain, code, sizeof code))
        fail_msg("bridge: the pairing message does not say \"syctl telegram "
                 "approve CODE\": %s", l.v[0].plain);
    htg_sent_clear(&l);
    htg_fd_pump(e->fd, 1000);
    if (e->fd->n)
        fail_msg("bridge: a message of an unknown chat reached the front "
                 "door (%s)", e->fd->recs[0].ref);

    /* a wrong code is refused; the right one lets the chat in (with the
       operator's own tool) */
    char text[256];
    if (htg_approve_code(e->fd, "ZZZZ0000", false, text, sizeof text))
        fail_msg("bridge: telegram.approve accepted a code it never gave");
    hrun_t run;
    int rc = harness_syctl(e->h, &run, WAIT_MS, "telegram", "approve",
                           "ZZZZ0000", NULL);
    if (rc != 1)
        fail_msg("syctl telegram approve of a wrong code: exit %d (want 1); "
                 "stdout [%s] stderr [%s]", rc, run.out, run.err);
    hrun_clear(&run);
    rc = harness_syctl(e->h, &run, WAIT_MS, "telegram", "approve", code,
                       NULL);
    if (rc != 0)
        fail_msg("syctl telegram approve %s: exit %d; stdout [%s] stderr "
                 "[%s]", code, rc, run.out, run.err);
    printf("syctl telegram approve: %s", run.out);
    hrun_clear(&run);
    say_and_wait(e, CHAT_NEW, "am I in now?");
    char ref[32];
    assert_int_equal(htg_fd_count(e->fd, htg_ref(u1, ref)), 0);

    /* a denied chat stays out */
    mark = htg_fake_sent_mark(e->fake);
    htg_fake_text(e->fake, CHAT_DENY, CHAT_DENY, "me too");
    seq = htg_fake_wait_sent(e->fake, CHAT_DENY, mark, "approve", WAIT_MS);
    assert_true(seq > 0);
    htg_fake_sent(e->fake, CHAT_DENY, seq - 1, &l);
    assert_true(l.n >= 1 && htg_code_in(l.v[0].plain, code, sizeof code));
    htg_sent_clear(&l);
    if (!htg_approve_code(e->fd, code, true, text, sizeof text))
        fail_msg("bridge: telegram.approve deny %s refused: %s", code, text);
    rc = harness_syctl(e->h, &run, WAIT_MS, "telegram", "ls", NULL);
    if (rc != 0 || !strstr(run.out, "5005") || !strstr(run.out, "5006"))
        fail_msg("syctl telegram ls: exit %d, the chats 5005 and 5006 not "
                 "listed: [%s] [%s]", rc, run.out, run.err);
    printf("syctl telegram ls:\n%s", run.out);
    hrun_clear(&run);
    size_t before = e->fd->n;
    uint64_t u3 = htg_fake_text(e->fake, CHAT_DENY, CHAT_DENY, "please?");
    htg_fd_pump(e->fd, 1500);
    if (e->fd->n != before)
        fail_msg("bridge: a denied chat's message reached the front door "
                 "(%s; update %llu)", e->fd->recs[before].ref,
                 (unsigned long long) u3);
    harness_pass(e->h);
}

/* ------------------------------------------------------------ (f) down */

static void test_reply_waits_while_bridge_down(void **state)
{
    env_t *e = *state;
    hproc_t *br = start_all(e, true);
    htg_approve_chat(e->fd, e->fake, CHAT_STOP);
    uint64_t ask = say_and_wait(e, CHAT_STOP, "answer me later");
    char ref[32];
    htg_ref(ask, ref);

    harness_signal(e->h, br, SIGTERM);
    if (!harness_wait_exit(e->h, br, slow_ms(WAIT_MS)))
        fail_msg("bridge: sy-telegram did not exit within %d ms of SIGTERM",
                 slow_ms(WAIT_MS));
    if (!(WIFEXITED(br->status) && WEXITSTATUS(br->status) == 0))
        fail_msg("bridge: sy-telegram ended badly on SIGTERM (status 0x%x)",
                 br->status);
    if (!harness_wait_actor(e->h, "telegram", false, slow_ms(WAIT_MS)))
        fail_msg("broker: still lists telegram after it exited");

    const char *answer = "the answer that waited in the broker";
    uint64_t mark = htg_fake_sent_mark(e->fake);
    uint8_t job[16];
    hclient_new_id(e->fd->c, job);
    htg_fd_reply(e->fd, CHAT_STOP, ref, job, answer, true);
    htg_fd_pump(e->fd, 500);
    assert_int_equal(htg_fake_sent_mark(e->fake), mark);

    htg_bridge_start(e->h, true);
    if (!htg_fake_wait_sent(e->fake, CHAT_STOP, mark, answer, 10000))
        fail_msg("bridge: a chat.reply sent while it was down was not sent "
                 "after it came back");
    htg_fd_pump(e->fd, 1000);
    htg_sent_list_t l;
    htg_fake_sent(e->fake, CHAT_STOP, mark, &l);
    size_t copies = 0;
    for (size_t i = 0; i < l.n; i++)
        copies += strstr(l.v[i].plain, answer) != NULL;
    htg_sent_clear(&l);
    if (copies != 1)
        fail_msg("bridge: the waiting answer was sent %zu times", copies);
    harness_pass(e->h);
}

/* ------------------------------------------------------------ fields */

static void expect_field(const htg_rec_t *r, const char *path,
                         const char *want)
{
    char v[128];
    if (!hmp_get_str(r->body, r->body_len, path, v, sizeof v))
        fail_msg("bridge: chat.message %s has no %s (want \"%s\")", r->ref,
                 path, want);
    if (strcmp(v, want) != 0)
        fail_msg("bridge: chat.message %s: %s is \"%s\", want \"%s\"",
                 r->ref, path, v, want);
}

static void test_forwarded_fields_and_attachments(void **state)
{
    env_t *e = *state;
    start_all(e, true);
    htg_approve_chat(e->fd, e->fake, CHAT_FIELDS);
    char ref[32], want[64];

    uint64_t u = say_and_wait(e, CHAT_FIELDS, "hello 세계 <b>&");
    const htg_rec_t *r = htg_fd_find(e->fd, htg_ref(u, ref));
    expect_field(r, "text", "hello 세계 <b>&");
    expect_field(r, "channel", "telegram");
    snprintf(want, sizeof want, "tg:%d", CHAT_FIELDS);
    expect_field(r, "user", want);
    snprintf(want, sizeof want, "%d", CHAT_FIELDS);
    expect_field(r, "addr", want);
    expect_field(r, "ref", ref);
    if (strcmp(r->key, ref) != 0)
        fail_msg("bridge: chat.message key is \"%s\", want \"%s\"", r->key,
                 ref);

    u = htg_fake_update(e->fake, "{\"chat_id\":7007,\"caption\":\"what is "
                        "this\",\"photo\":{\"file_id\":\"PHOTO-7007\","
                        "\"file_size\":54321}}");
    if (!htg_fd_wait(e->fd, htg_ref(u, ref), 10000))
        fail_msg("bridge: a photo was not forwarded");
    r = htg_fd_find(e->fd, ref);
    expect_field(r, "text", "what is this");
    expect_field(r, "attachments.0.kind", "photo");
    expect_field(r, "attachments.0.file_id", "PHOTO-7007");

    u = htg_fake_update(e->fake, "{\"chat_id\":7007,\"document\":{\"file_id\":"
                        "\"DOC-1\",\"mime_type\":\"application/pdf\","
                        "\"file_size\":2048,\"file_name\":\"report.pdf\"}}");
    if (!htg_fd_wait(e->fd, htg_ref(u, ref), 10000))
        fail_msg("bridge: a document was not forwarded");
    r = htg_fd_find(e->fd, ref);
    expect_field(r, "attachments.0.kind", "document");
    expect_field(r, "attachments.0.file_id", "DOC-1");
    expect_field(r, "attachments.0.mime", "application/pdf");
    expect_field(r, "attachments.0.name", "report.pdf");
    uint64_t size = 0;
    if (!hmp_get_uint(r->body, r->body_len, "attachments.0.size", &size)
        || size != 2048)
        fail_msg("bridge: document size %llu, want 2048",
                 (unsigned long long) size);
    harness_pass(e->h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kill_while_streaming, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_replayed_update_forwarded_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_retries_and_retry_after, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_long_reply_split, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_streamed_answer_edits, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unknown_chat_pairing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reply_waits_while_bridge_down,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_forwarded_fields_and_attachments,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
