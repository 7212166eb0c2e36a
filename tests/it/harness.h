/*  harness.h -- runs the real switchyard binaries for integration tests.
 *
 *  One harness_t per test (made in the cmocka setup, destroyed in the
 *  teardown, so it is destroyed on assertion failure too).  It owns:
 *    - a private temporary directory, /tmp/sy-it-<test>-XXXXXX;
 *    - the configuration file written there (ZPL), built from defaults
 *      that suit tests (fast heartbeat, short reconnect) plus the test's
 *      own settings;
 *    - the broker endpoint: a free 127.0.0.1 TCP port (bind port 0, read
 *      it back, close) picked once, so a restarted broker reuses it;
 *    - every process it spawned (fork/exec, stdout+stderr to
 *      <dir>/<label>.log).  Children get PR_SET_PDEATHSIG = SIGKILL, so
 *      even a test binary killed by a timeout leaves no orphan.
 *
 *  Failures: a test calls harness_pass() as its last statement.  A
 *  harness destroyed without it (assertion failed, longjmp) prints the
 *  tail of every log and keeps the directory; a passing one removes it.
 *  harness_pass() also fails the test if a child's log holds a sanitizer
 *  report: a broker that crashes under ASan fails every test.
 *
 *  Time: every wait is bounded; harness_new() arms alarm() with the
 *  per-test limit (SY_IT_TEST_TIMEOUT seconds, default 75) so a hung test
 *  ends the binary with a message instead of hanging the suite.
 *
 *  Ownership: harness_t and the hproc_t it returns belong to the harness;
 *  hproc_t pointers stay valid until harness_destroy().
 */
#ifndef HARNESS_H
#define HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HARNESS_MAX_PROCS    24
#define HARNESS_MAX_SETTINGS 32
#define HARNESS_PATH_MAX     256
#define HARNESS_MAX_CLIENTS  16

typedef struct {
    char   label[64];           /* e.g. "broker", "echo-1", "broker#2" */
    char   log[HARNESS_PATH_MAX];
    pid_t  pid;                 /* 0 once reaped */
    bool   reaped;
    int    status;              /* wait status once reaped */
} hproc_t;

typedef struct _harness_t harness_t;

/* Result of harness_run(): a command run to completion. */
typedef struct {
    int    exit_code;           /* exit status, or 128+signal, or -1 timeout */
    bool   timed_out;
    int64_t elapsed_ms;
    char  *out;                 /* stdout, NUL-terminated, owned: hrun_clear */
    char  *err;                 /* stderr, NUL-terminated, owned */
} hrun_t;

/* Makes the temp dir and picks the endpoint.  `test` names the dir.
   Returns NULL on failure (printed). */
harness_t *harness_new(const char *test);

/* Kills (SIGKILL) and reaps everything still running; prints the logs'
   tails unless harness_pass() was called; removes the dir if it was.
   Safe on NULL; NULLs *self_p. */
void harness_destroy(harness_t **self_p);

/* A cmocka setup's body: *state = harness_new(test); 0, or -1 if that
   failed.  harness_teardown is a cmocka teardown (harness_destroy). */
int harness_setup(void **state, const char *test);
int harness_teardown(void **state);

/* Marks the test as passed after checking that no log holds a sanitizer
   report (fails the test with the report's lines if one does). */
void harness_pass(harness_t *self);

/* The private directory, the config file path, the endpoint. */
const char *harness_dir(const harness_t *self);
const char *harness_config(const harness_t *self);
const char *harness_endpoint(const harness_t *self);

/* Sets (or overrides) a setting, e.g. ("broker/max_msg", "64K"), and
   rewrites the config file.  Defaults written by harness_new():
   broker/heartbeat 250ms, broker/liveness 2500ms, actor/reconnect_min
   100ms, actor/reconnect_max 1000ms, log/level debug, both endpoints,
   store/dir <dir>/store (never the repository's var/), security/curve
   false (tests speak plaintext on 127.0.0.1; a test of CURVE turns it
   on with harness_curve_enable()) and every security/ path inside <dir>. */
void harness_set(harness_t *self, const char *path, const char *value);

/* Switches the endpoint to ipc://<dir>/broker.ipc (before starting the
   broker); the readiness check then connects to that Unix socket. */
void harness_use_ipc(harness_t *self);

/* The liveness and heartbeat written to the config, in ms. */
int harness_liveness_ms(const harness_t *self);
int harness_heartbeat_ms(const harness_t *self);

/* The binary path for name ("sy-broker") in $SY_BIN_DIR (default bin/). */
void harness_bin(const harness_t *self, const char *name, char *out, size_t cap);

/* Spawns argv (argv[0] a path) with stdout+stderr to <dir>/<label>.log.
   Returns the process or NULL (fails the test). */
hproc_t *harness_spawn(harness_t *self, const char *label, char *const argv[]);

/* Starts sy-broker --config <cfg> --endpoint <ep> and waits (bounded)
   until it accepts TCP connections.  Fails the test if it does not. */
hproc_t *harness_broker_start(harness_t *self);

/* Starts sy-echo --config --endpoint --name --service --credit and, if
   wait, waits until the broker lists it in a status query. */
hproc_t *harness_echo_start(harness_t *self, const char *name,
                            const char *service, int credit, bool wait);

/* As harness_echo_start() with extra arguments (NULL-terminated, may be
   NULL), e.g. { "--log-deliveries", path, "--die-after", "1", NULL }. */
hproc_t *harness_echo_start_ex(harness_t *self, const char *name,
                               const char *service, int credit, bool wait,
                               const char *const *extra);

/* Sends sig to p (if still running). */
void harness_signal(harness_t *self, hproc_t *p, int sig);

/* Waits up to timeout_ms for p to exit; reaps it.  Returns true if it
   exited (p->status is then set). */
bool harness_wait_exit(harness_t *self, hproc_t *p, int timeout_ms);

/* SIGKILL + reap. */
void harness_kill(harness_t *self, hproc_t *p);

/* True if p has not exited (reaps it if it has). */
bool harness_alive(harness_t *self, hproc_t *p);

/* Polls the broker with status queries until actor `name` is listed
   (present = true) or not listed (present = false), at most timeout_ms.
   Returns true on success. */
bool harness_wait_actor(harness_t *self, const char *name, bool present,
                        int timeout_ms);

/* A test client (see hclient.h) connected to the broker and past its
   sy.hello -> sy.welcome (services NULL-terminated, may be NULL).  Owned
   by the harness, destroyed at teardown; fails the test if no welcome
   comes within a bound. */
struct _hclient_t *harness_client(harness_t *self, const char *name,
                                  const char *const *services, int credit);

/* A client that has not said hello (for tests of what comes before it). */
struct _hclient_t *harness_client_raw(harness_t *self, const char *name);

/* Destroys a client made by harness_client*() before the teardown. */
void harness_client_close(harness_t *self, struct _hclient_t *c);

/* ---- CURVE (issue 3, docs/SECURITY.md) ----
   Identities are made with the real `syctl keys new NAME --role ROLE
   --dir <dir>/ids` and admitted with the real `syctl keys enroll`; the
   allow-list (security/certs_dir), the broker's key pair
   (security/broker_cert, <dir>/keys/broker.secret) and the store key all
   live inside the test dir. */

/* The harness's own operator identity, used by its status probes. */
#define HARNESS_PROBE_ID "it-probe"

/* Turns CURVE on: security/curve = true (security/refresh stays at its
   default, so revocation is tested as shipped), and makes + enrolls the
   probe identity.  From then on harness_wait_actor()
   and harness_client*() speak CURVE: a client named NAME uses
   <dir>/ids/NAME.secret (make it first with harness_identity()) and pins
   the broker's key from <dir>/keys/broker.cert (the broker makes it at
   its first start).  Call before starting the broker. */
void harness_curve_enable(harness_t *self);
bool harness_curve(const harness_t *self);

/* syctl keys new NAME --role ROLE --dir <dir>/ids, then (if enroll)
   harness_enroll().  Fails the test if syctl fails. */
void harness_identity(harness_t *self, const char *name, const char *role,
                      bool enroll);

/* syctl keys enroll <dir>/ids/NAME.cert; fails the test if syctl fails. */
void harness_enroll(harness_t *self, const char *name);

/* <dir>/ids/NAME<ext> (ext ".secret" or ".cert") into out. */
void harness_identity_path(const harness_t *self, const char *name,
                           const char *ext, char *out, size_t cap);

/* The broker's public key (Z85, 40 characters) from its .cert; false if
   the broker has not made it yet. */
bool harness_broker_key(const harness_t *self, char *out, size_t cap);

/* A new hclient to the broker, CURVE with NAME's identity when CURVE is
   on.  Owned by the caller (hclient_destroy).  NULL on failure. */
struct _hclient_t *harness_hclient_new(harness_t *self, const char *name);

/* Runs argv to completion (killed after timeout_ms), capturing stdout and
   stderr.  Returns 0, or -1 if it could not be started. */
int harness_run(harness_t *self, char *const argv[], int timeout_ms,
                hrun_t *out);
void hrun_clear(hrun_t *r);

/* Runs bin/syctl --config <cfg> followed by the NULL-terminated
   arguments, as harness_run() with the timeout scaled by harness_slow().
   Returns syctl's exit code (-1: timed out or not started); *out holds
   its output (hrun_clear() it). */
int harness_syctl(harness_t *self, hrun_t *out, int timeout_ms, ...)
    __attribute__((sentinel));

/* Re-arms the per-test time limit to secs seconds from now (for tests
   that are long by design; still bounded). */
void harness_set_timeout(harness_t *self, int secs);

/* Prints the last `lines` lines of every log (and says where they are). */
void harness_dump_logs(const harness_t *self, int lines);

/* Monotonic clock in ms. */
int64_t harness_now_ms(void);

/* Sleeps ms milliseconds. */
void harness_sleep_ms(int ms);

/* Scale factor for time bounds: 3 under ASan (SY_VARIANT=asan), else 1.
   Bounds are multiplied, never assertions on speed. */
int harness_slow(void);

#endif
