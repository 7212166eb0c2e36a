/*  tutil.c -- shared support for the unit tests (see tutil.h).
 *
 *  Written once here what several test files needed alike: a temporary
 *  directory and its removal, the real sy-broker spawned and stopped as a
 *  child, and raw libzmq DEALER messages in the wire codec.  Raw libzmq
 *  (not zsock) so that a forked child can use its own context.  No
 *  assertions: each test keeps its own checks on what these return.
 */
#include "tutil.h"
#include "schemas/mpread.h"

#include <arpa/inet.h>
#include <czmq.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------ files */

int tutil_tmpdir(char *dir, size_t cap, const char *tag)
{
    int n = snprintf(dir, cap, "/tmp/sy-%s-XXXXXX", tag);
    if (n < 0 || (size_t) n >= cap)
        return -1;
    return mkdtemp(dir) ? 0 : -1;
}

static int tutil_rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void) st; (void) flag; (void) f;
    return remove(p);
}

void tutil_rmtree(const char *dir)
{
    nftw(dir, tutil_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int tutil_write_file(const char *path, const char *fmt, ...)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int n = vfprintf(f, fmt, ap);
    va_end(ap);
    return fclose(f) == 0 && n >= 0 ? 0 : -1;
}

void tutil_print_log(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        fprintf(stderr, "    | %s", line);
    if (f)
        fclose(f);
}

/* ------------------------------------------------------------ broker */

int tutil_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *) &a, sizeof a) == 0
        && getsockname(fd, (struct sockaddr *) &a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

pid_t tutil_broker_start(const char *cfg, const char *log)
{
    const char *bin = getenv("SY_BIN_DIR");
    char path[256];
    snprintf(path, sizeof path, "%s/sy-broker", bin && *bin ? bin : "bin");
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* the child: never outlive a test that crashed */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(126);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
    }
    execl(path, path, "--config", cfg, (char *) NULL);
    _exit(127);
}

bool tutil_broker_stop(pid_t pid)
{
    int status = 0;
    if (pid > 0) {
        kill(pid, SIGTERM);
        for (int i = 0; i < 300 && waitpid(pid, &status, WNOHANG) == 0; i++)
            usleep(10000);
        if (waitpid(pid, &status, WNOHANG) == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
        }
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* ------------------------------------------------------------ messages */

void *tutil_dealer(void *ctx, const char *ep)
{
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    if (!s)
        return NULL;
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect(s, ep) != 0) {
        zmq_close(s);
        return NULL;
    }
    return s;
}

void tutil_pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

int tutil_send(void *s, const char *type, const char *to, const char *from,
               bool durable, const void *body, size_t blen,
               uint8_t id[ENVELOPE_ID_LEN])
{
    envelope_t env;
    envelope_init(&env);
    randombytes_buf(env.id, ENVELOPE_ID_LEN);
    if (envelope_set_type(&env, type) != 0 || (to && envelope_set_to(&env, to) != 0)
        || (from && envelope_set_from(&env, from) != 0))
        return -1;
    if (durable) {
        env.durable = true;
        env.present |= ENV_HAS_DURABLE;
    }
    uint8_t hbuf[ENVELOPE_MAX_ENCODED];
    int hlen = envelope_encode(&env, hbuf, sizeof hbuf);
    if (hlen <= 0 || zmq_send(s, hbuf, (size_t) hlen, ZMQ_SNDMORE) < 0)
        return -1;
    if (zmq_send(s, body ? body : "\x80", body ? blen : 1, 0) < 0)
        return -1;
    if (id)
        memcpy(id, env.id, ENVELOPE_ID_LEN);
    return 0;
}

int tutil_hello(void *s, const char *name, const char *service, uint32_t credit)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, service ? 3 : 2);
    tutil_pack_str(&pk, "name");
    tutil_pack_str(&pk, name);
    tutil_pack_str(&pk, "credit");
    msgpack_pack_uint32(&pk, credit);
    if (service) {
        tutil_pack_str(&pk, "services");
        msgpack_pack_array(&pk, 1);
        tutil_pack_str(&pk, service);
    }
    int rc = tutil_send(s, "sy.hello", NULL, NULL, false, sb.data, sb.size, NULL);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

int tutil_recv(void *s, int timeout_ms, tutil_msg_t *m)
{
    zmq_pollitem_t it = { s, 0, ZMQ_POLLIN, 0 };
    if (zmq_poll(&it, 1, timeout_ms) <= 0)
        return 0;
    uint8_t hbuf[ENVELOPE_MAX_ENCODED];
    int hl = zmq_recv(s, hbuf, sizeof hbuf, 0);
    if (hl < 0)
        return 0;
    if ((size_t) hl > sizeof hbuf
        || envelope_decode(&m->env, hbuf, (size_t) hl, NULL, 0) != 0)
        return -1;
    int more = 0;
    size_t ml = sizeof more;
    zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml);
    if (!more)
        return -1;
    int bl = zmq_recv(s, m->body, sizeof m->body, 0);
    if (bl < 0 || (size_t) bl > sizeof m->body)
        return -1;
    m->blen = (size_t) bl;
    return 1;
}

int tutil_expect(void *s, const char *type, int timeout_ms, tutil_msg_t *m)
{
    int64_t end = zclock_mono() + timeout_ms;
    for (;;) {
        int64_t left = end - zclock_mono();
        if (left <= 0)
            return 0;
        int rc = tutil_recv(s, (int) left, m);
        if (rc <= 0)
            return rc;
        if (strcmp(m->env.type, type) == 0)
            return 1;
    }
}

bool tutil_field(const tutil_msg_t *m, bool in_data, const char *key, char *out,
                 size_t cap)
{
    mpread_t r, at;
    mpval_t map, v;
    out[0] = '\0';
    mpread_init(&r, m->body, m->blen);
    if (mpread_next(&r, &map) != 0 || map.kind != MP_MAP)
        return false;
    if (in_data) {
        if (mpread_map_find(&r, &map, "data", &map, &at) != 0 || map.kind != MP_MAP)
            return false;
        r = at;
    }
    if (mpread_map_find(&r, &map, key, &v, NULL) != 0 || v.kind != MP_STR || v.len >= cap)
        return false;
    memcpy(out, v.ptr, v.len);
    out[v.len] = '\0';
    return true;
}
