/*  harness.c -- runs the real switchyard binaries for integration tests.
 *
 *  Ideas:
 *    - Everything a test starts is recorded in its harness_t, and the
 *      teardown kills and reaps it all, so an assertion that longjmps out
 *      of a test never leaves a process behind.  PR_SET_PDEATHSIG covers
 *      the one case the teardown cannot: the test binary itself killed.
 *    - A test proves it passed by calling harness_pass(), which stops the
 *      children politely (SIGTERM) and checks how they ended: a binary that
 *      hangs on SIGTERM, exits non-zero, or leaves a sanitizer report in
 *      its log fails the test that ran it.  Without harness_pass() the
 *      teardown knows the test failed and prints the logs.
 *    - Every wait is a loop bounded in time, scaled by harness_slow() under
 *      ASan; nothing asserts speed.
 *  See harness.h.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <czmq.h>

#include "hclient.h"
#include "hmp.h"
#include "common/certs.h"
#include "schemas/syerr.h"

struct _harness_t {
    char    dir[HARNESS_PATH_MAX / 2];
    char    cfg[HARNESS_PATH_MAX];
    char    endpoint[HARNESS_PATH_MAX];
    int     port;
    char    keys[HARNESS_MAX_SETTINGS][64];
    char    values[HARNESS_MAX_SETTINGS][256];
    int     nsettings;
    hproc_t procs[HARNESS_MAX_PROCS];
    int     nprocs;
    bool    passed;
    int     probes;             /* counter for unique probe client names */
    hclient_t *clients[HARNESS_MAX_CLIENTS];
    bool    curve;              /* harness_curve_enable() was called */
};

/* ------------------------------------------------------------ time */

int64_t harness_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void harness_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int harness_slow(void)
{
    const char *v = getenv("SY_VARIANT");
    return (v && strcmp(v, "asan") == 0) ? 3 : 1;
}

/* A hung test must end the binary with a message, not hang the suite.
   The children die with us (PDEATHSIG). */
static void harness_on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "\n[harness] per-test time limit reached: aborting this test binary\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(124);
}

static void harness_arm_alarm(int dflt)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = harness_on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    const char *s = getenv("SY_IT_TEST_TIMEOUT");
    int secs = s ? atoi(s) : 0;
    if (secs <= 0) secs = dflt;
    alarm((unsigned)secs);
}

void harness_set_timeout(harness_t *self, int secs)
{
    (void)self;
    harness_arm_alarm(secs);
}

/* ------------------------------------------------------------ setup */

static int harness_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t al = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0
        && getsockname(fd, (struct sockaddr *)&a, &al) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Writes the settings under `prefix` (ending in '/', or "" for the top)
   at indentation depth: each next path component once, in order of first
   appearance, as a section (recursing) or as `name = "value"`. */
static void harness_write_level(const harness_t *self, FILE *f, const char *prefix,
                                int depth)
{
    size_t pl = strlen(prefix);
    bool done[HARNESS_MAX_SETTINGS] = { false };
    for (int i = 0; i < self->nsettings; i++) {
        if (done[i] || strncmp(self->keys[i], prefix, pl) != 0) continue;
        const char *rest = self->keys[i] + pl;
        const char *slash = strchr(rest, '/');
        size_t cl = slash ? (size_t)(slash - rest) : strlen(rest);
        for (int j = i; j < self->nsettings; j++) {
            const char *rj = self->keys[j] + pl;
            if (strncmp(self->keys[j], prefix, pl) == 0 && strncmp(rj, rest, cl) == 0
                && (rj[cl] == '/' || rj[cl] == 0))
                done[j] = true;
        }
        if (!slash) {
            fprintf(f, "%*s%s = \"%s\"\n", depth * 4, "", rest, self->values[i]);
            continue;
        }
        fprintf(f, "%*s%.*s\n", depth * 4, "", (int)cl, rest);
        char sub[128];
        snprintf(sub, sizeof sub, "%s%.*s/", prefix, (int)cl, rest);
        harness_write_level(self, f, sub, depth + 1);
    }
}

static void harness_write_config(harness_t *self)
{
    FILE *f = fopen(self->cfg, "w");
    if (!f) { fail_msg("cannot write %s: %s", self->cfg, strerror(errno)); return; }
    fprintf(f, "#   switchyard config written by tests/it/harness.c\n");
    harness_write_level(self, f, "", 0);
    fclose(f);
}

void harness_set(harness_t *self, const char *path, const char *value)
{
    int i;
    for (i = 0; i < self->nsettings; i++)
        if (strcmp(self->keys[i], path) == 0) break;
    if (i == self->nsettings) {
        assert_true(self->nsettings < HARNESS_MAX_SETTINGS);
        self->nsettings++;
    }
    snprintf(self->keys[i], sizeof self->keys[i], "%s", path);
    snprintf(self->values[i], sizeof self->values[i], "%s", value);
    harness_write_config(self);
}

static const char *harness_get(const harness_t *self, const char *path)
{
    for (int i = 0; i < self->nsettings; i++)
        if (strcmp(self->keys[i], path) == 0) return self->values[i];
    return NULL;
}

/* Durations in the config are written by us as "<n>ms". */
static int harness_get_ms(const harness_t *self, const char *path, int dflt)
{
    const char *v = harness_get(self, path);
    return v ? atoi(v) : dflt;
}

int harness_liveness_ms(const harness_t *self)
{
    return harness_get_ms(self, "broker/liveness", 2500);
}

int harness_heartbeat_ms(const harness_t *self)
{
    return harness_get_ms(self, "broker/heartbeat", 250);
}

harness_t *harness_new(const char *test)
{
    harness_arm_alarm(75);
    harness_t *self = calloc(1, sizeof *self);
    if (!self) return NULL;
    snprintf(self->dir, sizeof self->dir, "/tmp/sy-it-%s-XXXXXX", test);
    if (!mkdtemp(self->dir)) {
        fprintf(stderr, "harness: mkdtemp %s: %s\n", self->dir, strerror(errno));
        free(self);
        return NULL;
    }
    snprintf(self->cfg, sizeof self->cfg, "%s/switchyard.cfg", self->dir);
    self->port = harness_free_port();
    if (self->port <= 0) {
        fprintf(stderr, "harness: no free port\n");
        free(self);
        return NULL;
    }
    snprintf(self->endpoint, sizeof self->endpoint, "tcp://127.0.0.1:%d", self->port);
    harness_set(self, "broker/endpoint", self->endpoint);
    harness_set(self, "broker/heartbeat", "250ms");
    harness_set(self, "broker/liveness", "2500ms");
    harness_set(self, "actor/endpoint", self->endpoint);
    harness_set(self, "actor/reconnect_min", "100ms");
    harness_set(self, "actor/reconnect_max", "1000ms");
    harness_set(self, "log/level", "debug");
    char store[HARNESS_PATH_MAX];
    snprintf(store, sizeof store, "%s/store", self->dir);
    harness_set(self, "store/dir", store);
    /* Nothing a test runs may read or write the repository's var/. */
    char path[HARNESS_PATH_MAX];
    harness_set(self, "security/curve", "false");
    snprintf(path, sizeof path, "%s/certs", self->dir);
    harness_set(self, "security/certs_dir", path);
    snprintf(path, sizeof path, "%s/keys/broker.secret", self->dir);
    harness_set(self, "security/broker_cert", path);
    snprintf(path, sizeof path, "%s/keys", self->dir);
    harness_set(self, "security/store_key_dir", path);
    return self;
}

void harness_use_ipc(harness_t *self)
{
    snprintf(self->endpoint, sizeof self->endpoint, "ipc://%s/broker.ipc", self->dir);
    self->port = 0;
    harness_set(self, "broker/endpoint", self->endpoint);
    harness_set(self, "actor/endpoint", self->endpoint);
}

const char *harness_dir(const harness_t *self) { return self->dir; }
const char *harness_config(const harness_t *self) { return self->cfg; }
const char *harness_endpoint(const harness_t *self) { return self->endpoint; }

void harness_bin(const harness_t *self, const char *name, char *out, size_t cap)
{
    (void)self;
    const char *d = getenv("SY_BIN_DIR");
    snprintf(out, cap, "%s/%s", d && *d ? d : "bin", name);
}

/* ------------------------------------------------------------ processes */

/* In the child, between fork and exec: only async-signal-safe calls. */
static void harness_child(pid_t parent, const char *out, const char *err,
                          char *const argv[])
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    int in = open("/dev/null", O_RDONLY);
    int o = open(out, O_WRONLY | O_CREAT | O_APPEND, 0600);
    int e = err ? open(err, O_WRONLY | O_CREAT | O_APPEND, 0600) : o;
    if (in < 0 || o < 0 || e < 0) _exit(126);
    dup2(in, 0);
    dup2(o, 1);
    dup2(e, 2);
    for (int fd = 3; fd < 1024; fd++) close(fd);
    execv(argv[0], argv);
    static const char msg[] = "[harness] exec failed\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(127);
}

static pid_t harness_fork(const char *out, const char *err, char *const argv[])
{
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) harness_child(parent, out, err, argv);
    return pid;
}

hproc_t *harness_spawn(harness_t *self, const char *label, char *const argv[])
{
    if (self->nprocs >= HARNESS_MAX_PROCS) {
        fail_msg("harness: too many processes");
        return NULL;
    }
    if (access(argv[0], X_OK) != 0) {
        fail_msg("harness: %s is not an executable (%s); build it first "
                 "or set SY_BIN_DIR", argv[0], strerror(errno));
        return NULL;
    }
    hproc_t *p = &self->procs[self->nprocs++];
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label);
    char log[HARNESS_PATH_MAX];
    snprintf(log, sizeof log, "%s/%.64s.log", self->dir, label);
    memcpy(p->log, log, sizeof p->log);
    FILE *f = fopen(p->log, "a");
    if (f) {
        fprintf(f, "=== [harness] start:");
        for (int i = 0; argv[i]; i++) fprintf(f, " %s", argv[i]);
        fprintf(f, "\n");
        fclose(f);
    }
    p->pid = harness_fork(p->log, NULL, argv);
    if (p->pid < 0) {
        fail_msg("harness: fork: %s", strerror(errno));
        return NULL;
    }
    return p;
}

static void harness_note(const hproc_t *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends a line to p's log, so the log tells when the harness acted. */
static void harness_note(const hproc_t *p, const char *fmt, ...)
{
    FILE *f = fopen(p->log, "a");
    if (!f) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(f, "=== [harness] ");
    vfprintf(f, fmt, ap);
    fprintf(f, "\n");
    va_end(ap);
    fclose(f);
}

static void harness_describe_status(int st, char *out, size_t cap)
{
    if (WIFEXITED(st)) snprintf(out, cap, "exit %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st)) snprintf(out, cap, "killed by signal %d (%s)",
                                       WTERMSIG(st), strsignal(WTERMSIG(st)));
    else snprintf(out, cap, "status 0x%x", st);
}

static bool harness_reap(hproc_t *p, bool block)
{
    if (p->reaped) return true;
    int st;
    pid_t r;
    do r = waitpid(p->pid, &st, block ? 0 : WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == p->pid || (r < 0 && errno == ECHILD)) {
        p->reaped = true;
        p->status = r == p->pid ? st : 0;
        char how[80];
        harness_describe_status(p->status, how, sizeof how);
        harness_note(p, "pid %d ended: %s", (int)p->pid, how);
        return true;
    }
    return false;
}

bool harness_alive(harness_t *self, hproc_t *p)
{
    (void)self;
    return p && !harness_reap(p, false);
}

void harness_signal(harness_t *self, hproc_t *p, int sig)
{
    (void)self;
    if (!p || harness_reap(p, false)) return;
    harness_note(p, "sending signal %d (%s) to pid %d", sig, strsignal(sig), (int)p->pid);
    kill(p->pid, sig);
}

bool harness_wait_exit(harness_t *self, hproc_t *p, int timeout_ms)
{
    (void)self;
    int64_t deadline = harness_now_ms() + timeout_ms;
    for (;;) {
        if (harness_reap(p, false)) return true;
        if (harness_now_ms() >= deadline) return false;
        harness_sleep_ms(10);
    }
}

void harness_kill(harness_t *self, hproc_t *p)
{
    if (!p || p->reaped) return;
    harness_signal(self, p, SIGKILL);
    harness_reap(p, true);
}

/* ------------------------------------------------------------ broker */

static bool harness_tcp_accepts(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static bool harness_ipc_accepts(const char *endpoint)
{
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "%s", endpoint + strlen("ipc://"));
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) return false;
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

hproc_t *harness_broker_start(harness_t *self)
{
    char bin[HARNESS_PATH_MAX];
    harness_bin(self, "sy-broker", bin, sizeof bin);
    char *argv[] = { bin, "--config", self->cfg, "--endpoint", self->endpoint, NULL };
    hproc_t *p = harness_spawn(self, "broker", argv);
    if (!p) return NULL;
    int64_t deadline = harness_now_ms() + 10000 * harness_slow();
    while (harness_now_ms() < deadline) {
        if (!harness_alive(self, p)) {
            char how[80];
            harness_describe_status(p->status, how, sizeof how);
            fail_msg("sy-broker exited during start-up (%s); see %s", how, p->log);
        }
        if (self->port ? harness_tcp_accepts(self->port)
                       : harness_ipc_accepts(self->endpoint))
            return p;
        harness_sleep_ms(20);
    }
    fail_msg("sy-broker does not accept connections on %s after %d ms",
             self->endpoint, 10000 * harness_slow());
    return NULL;
}

hproc_t *harness_echo_start(harness_t *self, const char *name,
                            const char *service, int credit, bool wait)
{
    return harness_echo_start_ex(self, name, service, credit, wait, NULL);
}

hproc_t *harness_echo_start_ex(harness_t *self, const char *name,
                               const char *service, int credit, bool wait,
                               const char *const *extra)
{
    char bin[HARNESS_PATH_MAX], cr[16];
    harness_bin(self, "sy-echo", bin, sizeof bin);
    snprintf(cr, sizeof cr, "%d", credit);
    char *argv[40] = { bin, "--config", self->cfg, "--endpoint", self->endpoint,
                       "--name", (char *)name, "--service", (char *)service,
                       "--credit", cr };
    int n = 11;
    for (int i = 0; extra && extra[i] && n < 39; i++) argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    hproc_t *p = harness_spawn(self, name, argv);
    if (p && wait && !harness_wait_actor(self, name, true, 10000 * harness_slow()))
        fail_msg("sy-echo %s (service %s) is not listed by the broker's status "
                 "after %d ms (alive: %s)", name, service, 10000 * harness_slow(),
                 harness_alive(self, p) ? "yes" : "no");
    return p;
}

/* ------------------------------------------------------------ CURVE */

bool harness_curve(const harness_t *self) { return self->curve; }

void harness_identity_path(const harness_t *self, const char *name,
                           const char *ext, char *out, size_t cap)
{
    snprintf(out, cap, "%s/ids/%s%s", self->dir, name, ext);
}

void harness_identity(harness_t *self, const char *name, const char *role,
                      bool enroll)
{
    char dir[HARNESS_PATH_MAX], pub[HARNESS_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/ids", self->dir);
    harness_identity_path(self, name, ".cert", pub, sizeof pub);
    hrun_t r;
    int rc = harness_syctl(self, &r, 10000, "keys", "new", name, "--role", role,
                           "--dir", dir, NULL);
    if (rc != 0) {
        fprintf(stderr, "syctl keys new %s: exit %d\n%s%s", name, rc, r.out, r.err);
        hrun_clear(&r);
        fail_msg("syctl keys new %s --role %s failed (exit %d)", name, role, rc);
    }
    hrun_clear(&r);
    if (enroll) harness_enroll(self, name);
}

void harness_enroll(harness_t *self, const char *name)
{
    char pub[HARNESS_PATH_MAX], err[300];
    harness_identity_path(self, name, ".cert", pub, sizeof pub);
    /* the operator names the role at enroll: the one the identity was made
       with (harness_identity), read back from its certificate */
    zcert_t *cert = NULL;
    if (certs_load(pub, &cert, err, sizeof err) != 0)
        fail_msg("cannot read %s: %s", pub, err);
    char role[32];
    snprintf(role, sizeof role, "%s", certs_role_name(certs_role(cert)));
    certs_destroy(&cert);
    hrun_t r;
    int rc = harness_syctl(self, &r, 10000, "keys", "enroll", pub, "--role", role,
                           NULL);
    if (rc != 0) {
        fprintf(stderr, "syctl keys enroll %s: exit %d\n%s%s", pub, rc, r.out, r.err);
        hrun_clear(&r);
        fail_msg("syctl keys enroll %s failed (exit %d)", pub, rc);
    }
    hrun_clear(&r);
}

void harness_curve_enable(harness_t *self)
{
    harness_set(self, "security/curve", "true");
    self->curve = true;
    harness_identity(self, HARNESS_PROBE_ID, "operator", true);
}

bool harness_broker_key(const harness_t *self, char *out, size_t cap)
{
    char path[HARNESS_PATH_MAX];
    snprintf(path, sizeof path, "%s/keys/broker.cert", self->dir);
    zcert_t *cert = zcert_load(path);
    if (!cert) return false;
    snprintf(out, cap, "%s", zcert_public_txt(cert));
    zcert_destroy(&cert);
    return true;
}

hclient_t *harness_hclient_new(harness_t *self, const char *name)
{
    if (!self->curve) return hclient_new(self->endpoint, name);
    char secret[HARNESS_PATH_MAX], key[64];
    harness_identity_path(self, name, ".secret", secret, sizeof secret);
    if (!harness_broker_key(self, key, sizeof key)) {
        fprintf(stderr, "harness: no broker public key in %s/keys/broker.cert "
                "(broker not started?)\n", self->dir);
        return NULL;
    }
    return hclient_new_curve(self->endpoint, name, secret, key);
}

/* True if the status answer lists an actor called name. */
static bool harness_status_has(const hmsg_t *m, const char *name)
{
    int n = hmp_count(m->body, m->body_len, "data.actors");
    for (int i = 0; i < n; i++) {
        char path[64], got[ENVELOPE_NAME_MAX + 1];
        snprintf(path, sizeof path, "data.actors.%d.name", i);
        if (hmp_get_str(m->body, m->body_len, path, got, sizeof got)
            && strcmp(got, name) == 0)
            return true;
    }
    return false;
}

static void harness_bye(hclient_t *c)
{
    hsend_t s = { .type = "sy.bye" };
    hmp_buf_t b;
    hmp_buf_init(&b);
    msgpack_pack_map(&b.pk, 1);
    hmp_str(&b, "reason");
    hmp_str(&b, "probe done");
    hclient_send(c, &s, (const uint8_t *)b.sb.data, b.sb.size, NULL);
    hmp_buf_clear(&b);
}

bool harness_wait_actor(harness_t *self, const char *name, bool present,
                        int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    char cname[64];
    if (self->curve)                    /* the name is the certificate's */
        snprintf(cname, sizeof cname, "%s", HARNESS_PROBE_ID);
    else
        snprintf(cname, sizeof cname, "it-probe-%d-%d", (int)getpid(), ++self->probes);
    hclient_t *c = NULL;
    bool ok = false;
    while (!ok && harness_now_ms() < deadline) {
        if (!c) {
            c = harness_hclient_new(self, cname);
            if (!c || hclient_hello(c, NULL, 1, 1000 * harness_slow()) != 0) {
                hclient_destroy(&c);
                harness_sleep_ms(100);
                continue;
            }
        }
        hmsg_t m;
        int rc = hclient_status(c, &m, 2000 * harness_slow());
        if (rc == 0) {
            ok = harness_status_has(&m, name) == present;
            hmsg_clear(&m);
        } else {
            hclient_destroy(&c);        /* broker restarted? hello again */
        }
        if (!ok) harness_sleep_ms(100);
    }
    if (c) harness_bye(c);
    hclient_destroy(&c);
    return ok;
}

/* ------------------------------------------------------------ clients */

hclient_t *harness_client_raw(harness_t *self, const char *name)
{
    int i;
    for (i = 0; i < HARNESS_MAX_CLIENTS && self->clients[i]; i++)
        ;
    if (i == HARNESS_MAX_CLIENTS) {
        fail_msg("harness: too many clients");
        return NULL;
    }
    self->clients[i] = harness_hclient_new(self, name);
    if (!self->clients[i]) fail_msg("harness: cannot make client %s", name);
    return self->clients[i];
}

hclient_t *harness_client(harness_t *self, const char *name,
                          const char *const *services, int credit)
{
    hclient_t *c = harness_client_raw(self, name);
    int rc = hclient_hello(c, services, (uint32_t)credit, 5000 * harness_slow());
    if (rc != 0)
        fail_msg("client %s: no sy.welcome for sy.hello within %d ms (%s)",
                 name, 5000 * harness_slow(), syerr_name(rc));
    return c;
}

void harness_client_close(harness_t *self, hclient_t *c)
{
    for (int i = 0; i < HARNESS_MAX_CLIENTS; i++)
        if (self->clients[i] == c) hclient_destroy(&self->clients[i]);
}

/* ------------------------------------------------------------ commands */

static char *harness_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0) n = 0;
    char *s = malloc((size_t)n + 1);
    if (!s) { fclose(f); return NULL; }
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = 0;
    fclose(f);
    return s;
}

int harness_run(harness_t *self, char *const argv[], int timeout_ms,
                hrun_t *out)
{
    memset(out, 0, sizeof *out);
    char o[HARNESS_PATH_MAX], e[HARNESS_PATH_MAX];
    static const char *names[] = { "run.out", "run.err" };
    snprintf(o, sizeof o, "%s/%s", self->dir, names[0]);
    snprintf(e, sizeof e, "%s/%s", self->dir, names[1]);
    unlink(o);
    unlink(e);
    int64_t start = harness_now_ms();
    pid_t pid = harness_fork(o, e, argv);
    if (pid < 0) return -1;
    hproc_t p = { .pid = pid };
    snprintf(p.log, sizeof p.log, "%s", e);
    if (!harness_wait_exit(self, &p, timeout_ms)) {
        out->timed_out = true;
        kill(pid, SIGKILL);
        harness_reap(&p, true);
    }
    out->elapsed_ms = harness_now_ms() - start;
    if (out->timed_out) out->exit_code = -1;
    else if (WIFEXITED(p.status)) out->exit_code = WEXITSTATUS(p.status);
    else if (WIFSIGNALED(p.status)) out->exit_code = 128 + WTERMSIG(p.status);
    out->out = harness_slurp(o);
    out->err = harness_slurp(e);
    /* Keep a transcript of every command in the test's directory. */
    char tr[HARNESS_PATH_MAX];
    snprintf(tr, sizeof tr, "%s/commands.log", self->dir);
    FILE *f = fopen(tr, "a");
    if (f) {
        fprintf(f, "$");
        for (int i = 0; argv[i]; i++) fprintf(f, " '%s'", argv[i]);
        fprintf(f, "\n-> exit %d%s after %lld ms\n--- stdout:\n%s\n--- stderr:\n%s\n",
                out->exit_code, out->timed_out ? " (timed out)" : "",
                (long long)out->elapsed_ms, out->out ? out->out : "",
                out->err ? out->err : "");
        fclose(f);
    }
    return 0;
}

int harness_syctl(harness_t *self, hrun_t *out, int timeout_ms, ...)
{
    char bin[HARNESS_PATH_MAX];
    harness_bin(self, "syctl", bin, sizeof bin);
    char *argv[40] = { bin, "--config", self->cfg };
    int n = 3;
    va_list ap;
    va_start(ap, timeout_ms);
    for (char *a; (a = va_arg(ap, char *)) != NULL && n < 39; )
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    if (harness_run(self, argv, timeout_ms * harness_slow(), out) != 0) return -1;
    return out->exit_code;
}

void hrun_clear(hrun_t *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------ logs */

static void harness_tail(const char *path, int lines)
{
    char *s = harness_slurp(path);
    if (!s) return;
    size_t n = strlen(s);
    int seen = 0;
    size_t i = n;
    while (i > 0) {
        if (s[i - 1] == '\n' && i != n && ++seen >= lines) break;
        i--;
    }
    fprintf(stderr, "----- %s (last %d lines) -----\n%s%s", path, lines, s + i,
            (n && s[n - 1] != '\n') ? "\n" : "");
    free(s);
}

void harness_dump_logs(const harness_t *self, int lines)
{
    fprintf(stderr, "[harness] logs and config kept in %s\n", self->dir);
    for (int i = 0; i < self->nprocs; i++) {
        bool dup = false;               /* a restarted label shares its log */
        for (int j = 0; j < i; j++)
            if (strcmp(self->procs[j].log, self->procs[i].log) == 0) dup = true;
        if (!dup) harness_tail(self->procs[i].log, lines);
    }
    char tr[HARNESS_PATH_MAX];
    snprintf(tr, sizeof tr, "%s/commands.log", self->dir);
    if (access(tr, R_OK) == 0) harness_tail(tr, lines);
}

/* The first sanitizer report line in path, copied into out; false if none. */
static bool harness_sanitizer_report(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        if (strstr(line, "AddressSanitizer") || strstr(line, "LeakSanitizer")
            || strstr(line, "runtime error:") || strstr(line, "UndefinedBehaviorSanitizer")) {
            snprintf(out, cap, "%s", line);
            found = true;
        }
    }
    fclose(f);
    return found;
}

void harness_pass(harness_t *self)
{
    /* Stop everything politely first: leak reports come at exit. */
    for (int i = 0; i < self->nprocs; i++)
        harness_signal(self, &self->procs[i], SIGTERM);
    char problems[2048] = "";
    size_t pl = 0;
    for (int i = 0; i < self->nprocs; i++) {
        hproc_t *p = &self->procs[i];
        bool was_running = !p->reaped;
        if (was_running && !harness_wait_exit(self, p, 5000 * harness_slow())) {
            pl += (size_t)snprintf(problems + pl, sizeof problems - pl,
                                   "  %s (pid %d) did not exit within %d ms of SIGTERM\n",
                                   p->label, (int)p->pid, 5000 * harness_slow());
            harness_kill(self, p);
            if (pl >= sizeof problems) pl = sizeof problems - 1;
            continue;
        }
        char how[80], rep[1024];
        harness_describe_status(p->status, how, sizeof how);
        bool clean = WIFEXITED(p->status) ? WEXITSTATUS(p->status) == 0
                   : (WTERMSIG(p->status) == SIGTERM || WTERMSIG(p->status) == SIGKILL);
        if (was_running && !clean)
            pl += (size_t)snprintf(problems + pl, sizeof problems - pl,
                                   "  %s (pid %d) ended badly after SIGTERM: %s\n",
                                   p->label, (int)p->pid, how);
        if (pl >= sizeof problems) pl = sizeof problems - 1;
        if (harness_sanitizer_report(p->log, rep, sizeof rep))
            pl += (size_t)snprintf(problems + pl, sizeof problems - pl,
                                   "  %s: sanitizer report in %s: %s", p->label, p->log, rep);
        if (pl >= sizeof problems) pl = sizeof problems - 1;
    }
    if (pl) fail_msg("processes did not end cleanly:\n%s", problems);
    self->passed = true;
}

static int harness_rm(const char *path, const struct stat *sb, int flag,
                      struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    remove(path);
    return 0;
}

void harness_destroy(harness_t **self_p)
{
    if (!self_p || !*self_p) return;
    harness_t *self = *self_p;
    for (int i = 0; i < HARNESS_MAX_CLIENTS; i++)
        hclient_destroy(&self->clients[i]);
    for (int i = 0; i < self->nprocs; i++)
        harness_kill(self, &self->procs[i]);
    if (self->passed && !getenv("SY_IT_KEEP"))
        nftw(self->dir, harness_rm, 16, FTW_DEPTH | FTW_PHYS);
    else if (!self->passed)
        harness_dump_logs(self, 40);
    alarm(0);
    free(self);
    *self_p = NULL;
}

int harness_setup(void **state, const char *test)
{
    *state = harness_new(test);
    return *state ? 0 : -1;
}

int harness_teardown(void **state)
{
    harness_destroy((harness_t **) state);
    return 0;
}
