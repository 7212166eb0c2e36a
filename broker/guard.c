/*  guard.c -- identity, authorisation and rate limits for the broker (see
 *  guard.h).
 *
 *  Ideas:
 *  - Everything that can be decided once is decided in guard_new: the
 *    acl's answer for every (role, message type) pair becomes a table
 *    indexed by the type's place in schemas/msgtypes.c's table, and
 *    which types are rate limited becomes a second table.  The per-message
 *    checks are then array reads plus the one hash lookup each of the
 *    rate limiter and the allow-list do.
 *  - The broker's secret key lives only as long as it takes to apply it to
 *    the socket; certs_destroy wipes it.
 *  - The ZAP handler runs in the broker's own loop (zap.h), so the
 *    allow-list is only ever touched by the broker's thread.
 */
#include "broker/guard.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/acl.h"
#include "broker/allowlist.h"
#include "broker/ratelimit.h"
#include "broker/zap.h"
#include "common/sylog.h"
#include "schemas/syerr.h"

#define GUARD_QUERY 2           /* table value: ask the acl (sy.query) */
#define GUARD_PATH_MAX 4096

struct _guard_t {
    bool          curve;
    certs_role_t  default_role;
    acl_t        *acl;
    ratelimit_t  *rate;
    bool          limited_role[CERTS_ROLE_COUNT];
    const msgtype_t *types;     /* msgtypes_all() */
    size_t        ntypes;
    uint8_t      *may_send;     /* [role * ntypes + type]: 0 no, 1 yes, GUARD_QUERY */
    bool         *limited_type; /* [type] */
    allowlist_t  *allow;
    zap_t        *zap;
    zcert_t      *cert;         /* the broker's, until guard_prepare */
    char          pubkey[41];
    guard_revoked_fn *on_revoked;
    void         *arg;
};

/* Types that settle what the broker handed out: never rate limited. */
static const char *const guard_unlimited[] = {
    "sy.ack", "sy.nack", "sy.lease", "sy.credit", "sy.bye"
};

/* Writes a message into the caller's err buffer (see syerr_fmt). */
#define guard_err(err, errlen, ...) ((void) syerr_fmt((err), (errlen), 0, __VA_ARGS__))

/* ------------------------------------------------------------ tables */

static int guard_tables(guard_t *self)
{
    self->types = msgtypes_all(&self->ntypes);
    self->may_send = calloc(CERTS_ROLE_COUNT * self->ntypes, 1);
    self->limited_type = calloc(self->ntypes, sizeof *self->limited_type);
    if (!self->may_send || !self->limited_type)
        return SY_ENOMEM;
    for (size_t t = 0; t < self->ntypes; t++) {
        const char *type = self->types[t].type;
        bool query = strcmp(type, "sy.query") == 0;
        for (int r = 0; r < CERTS_ROLE_COUNT; r++)
            self->may_send[(size_t) r * self->ntypes + t] =
                query ? GUARD_QUERY
                      : acl_check_send(self->acl, (certs_role_t) r, type, NULL) == 0;
        self->limited_type[t] = true;
        for (size_t i = 0; i < sizeof guard_unlimited / sizeof guard_unlimited[0]; i++)
            if (strcmp(type, guard_unlimited[i]) == 0)
                self->limited_type[t] = false;
    }
    return 0;
}

/* The type's index in the table, or -1 for a type not from it. */
static ptrdiff_t guard_type_index(const guard_t *self, const msgtype_t *mt)
{
    if (!mt || mt < self->types || mt >= self->types + self->ntypes)
        return -1;
    return mt - self->types;
}

/* Reads ratelimit/roles: a comma list of role names. */
static int guard_limited_roles(guard_t *self, const char *list, char *err, size_t errlen)
{
    char buf[128];
    if (strlen(list) >= sizeof buf)
        return syerr_fmt(err, errlen, SY_ECONFIG, "ratelimit/roles: \"%s\" is too long", list);
    snprintf(buf, sizeof buf, "%s", list);
    char *save = NULL;
    for (char *r = strtok_r(buf, ", ", &save); r; r = strtok_r(NULL, ", ", &save)) {
        certs_role_t role = certs_role_parse(r);
        if (role == CERTS_ROLE_NONE)
            return syerr_fmt(err, errlen, SY_ECONFIG,
                             "ratelimit/roles: \"%s\" is not a role (client, actor, "
                             "worker, operator)", r);
        self->limited_role[role] = true;
    }
    return 0;
}

/* ------------------------------------------------------------ the broker's key */

/* mkdir -p with mode 0700 for the directories it makes. */
static int guard_mkdirs(const char *dir)
{
    char p[GUARD_PATH_MAX];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            return -1;
        *s = '/';
    }
    return mkdir(p, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

/* Makes DIR/NAME.secret and DIR/NAME.cert for path = DIR/NAME.secret. */
static int guard_make_cert(const char *path, char *err, size_t errlen)
{
    char d[GUARD_PATH_MAX], b[GUARD_PATH_MAX];
    snprintf(d, sizeof d, "%s", path);
    snprintf(b, sizeof b, "%s", path);
    const char *dir = dirname(d);
    char *name = basename(b);
    name[strlen(name) - strlen(CERTS_SECRET_EXT)] = '\0';
    if (guard_mkdirs(dir) != 0)
        return syerr_fmt(err, errlen, SY_EIO, "security/broker_cert: cannot create %s: %s", dir,
                         strerror(errno));
    /* the broker's own key is never enrolled; the least role is safest */
    char cerr[256] = "";
    int rc = certs_new(dir, name, "client", NULL, cerr, sizeof cerr);
    if (rc) {
        guard_err(err, errlen, "security/broker_cert: %s", cerr);
        return rc;
    }
    sylog_info("made the broker's certificate %s (public half %s/%s%s)", path, dir, name,
               CERTS_PUBLIC_EXT);
    return 0;
}

/* Loads (or makes) the broker's key pair and checks security/broker_key. */
static int guard_load_cert(guard_t *self, const config_t *cfg, char *err, size_t errlen)
{
    const char *path = config_str(cfg, "security/broker_cert");
    size_t n = strlen(path), el = strlen(CERTS_SECRET_EXT);
    if (n <= el || n >= GUARD_PATH_MAX || strcmp(path + n - el, CERTS_SECRET_EXT) != 0)
        return syerr_fmt(err, errlen, SY_ECONFIG,
                         "security/broker_cert: \"%s\" must name a NAME%s file", path,
                         CERTS_SECRET_EXT);
    if (access(path, F_OK) != 0 && errno == ENOENT) {
        int rc = guard_make_cert(path, err, errlen);
        if (rc)
            return rc;
    }
    char cerr[256] = "";
    int rc = certs_load(path, &self->cert, cerr, sizeof cerr);
    if (rc) {
        guard_err(err, errlen, "security/broker_cert: %s", cerr);
        return rc == SY_ENOTFOUND ? SY_EIO : rc;
    }
    if (!certs_has_secret(self->cert))
        return syerr_fmt(err, errlen, SY_ECONFIG,
                         "security/broker_cert: %s holds no secret key", path);
    snprintf(self->pubkey, sizeof self->pubkey, "%s", zcert_public_txt(self->cert));
    const char *pinned = config_str(cfg, "security/broker_key");
    if (pinned[0] && strcmp(pinned, self->pubkey) != 0)
        return syerr_fmt(err, errlen, SY_ECONFIG,
                         "security/broker_key (%.8s...) is not the public key of "
                         "security/broker_cert %s (%.8s...): peers pinning it would be refused",
                         pinned, path, self->pubkey);
    return 0;
}

/* ------------------------------------------------------------ life */

static void guard_on_revoked(const char *name, void *arg)
{
    guard_t *self = arg;
    sylog_info("certificate %s is no longer enrolled: cutting it off", name);
    if (self->on_revoked)
        self->on_revoked(name, self->arg);
}

static int guard_curve_start(guard_t *self, const config_t *cfg, zloop_t *loop,
                             char *err, size_t errlen)
{
    int rc = guard_load_cert(self, cfg, err, errlen);
    if (rc)
        return rc;
    char aerr[256] = "";
    rc = allowlist_new(config_str(cfg, "security/certs_dir"), &self->allow, aerr,
                       sizeof aerr);
    if (rc) {
        guard_err(err, errlen, "security/certs_dir: %s", aerr);
        return rc;
    }
    rc = zap_new(loop, self->allow, (int) config_int(cfg, "security/refresh"),
                 guard_on_revoked, self, &self->zap, aerr, sizeof aerr);
    if (rc)
        guard_err(err, errlen, "%s", aerr);
    else
        sylog_info("CURVE on: %zu enrolled certificate(s) in %s, broker key %.8s...",
                   allowlist_size(self->allow), config_str(cfg, "security/certs_dir"),
                   self->pubkey);
    return rc;
}

int guard_new(const config_t *cfg, zloop_t *loop, guard_revoked_fn *on_revoked,
              void *arg, guard_t **out, char *err, size_t errlen)
{
    if (!cfg || !loop || !out)
        return SY_EINVAL;
    *out = NULL;
    guard_t *self = calloc(1, sizeof *self);
    if (!self)
        return syerr_fmt(err, errlen, SY_ENOMEM, "out of memory");
    self->on_revoked = on_revoked;
    self->arg = arg;
    self->curve = config_bool(cfg, "security/curve");
    self->default_role = certs_role_parse(config_str(cfg, "security/default_role"));
    int rc = acl_new(cfg, &self->acl, err, errlen);
    if (rc == 0)
        rc = guard_limited_roles(self, config_str(cfg, "ratelimit/roles"), err, errlen);
    if (rc == 0) {
        rc = ratelimit_new((uint32_t) config_int(cfg, "ratelimit/rate"),
                           (uint32_t) config_int(cfg, "ratelimit/burst"),
                           (size_t) config_int(cfg, "ratelimit/max_ids"), &self->rate);
        if (rc)
            guard_err(err, errlen, "ratelimit: cannot set up: %s", syerr_text(rc));
    }
    if (rc == 0 && (rc = guard_tables(self)) != 0)
        guard_err(err, errlen, "out of memory");
    if (rc == 0 && self->default_role == CERTS_ROLE_NONE) {
        guard_err(err, errlen, "security/default_role: not a role");
        rc = SY_ECONFIG;
    }
    if (rc == 0 && self->curve)
        rc = guard_curve_start(self, cfg, loop, err, errlen);
    if (rc) {
        guard_destroy(&self);
        return rc;
    }
    if (!self->curve)
        sylog_warn("CURVE is off (security/curve = false): plaintext, and every peer "
                   "has the role %s", certs_role_name(self->default_role));
    *out = self;
    return 0;
}

void guard_destroy(guard_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    guard_t *self = *self_p;
    zap_destroy(&self->zap);
    allowlist_destroy(&self->allow);
    certs_destroy(&self->cert);
    ratelimit_destroy(&self->rate);
    acl_destroy(&self->acl);
    free(self->may_send);
    free(self->limited_type);
    free(self);
    *self_p = NULL;
}

bool guard_curve(const guard_t *self)
{
    return self->curve;
}

const char *guard_public_key(const guard_t *self)
{
    return self->pubkey;
}

/* ------------------------------------------------------------ endpoints */

/* An ipc:// socket file must lie in a directory only we can open. */
static int guard_check_ipc(const char *ep, char *err, size_t errlen)
{
    const char *path = ep + strlen("ipc://");
    if (path[0] == '@' || path[0] == '\0') {
        return syerr_fmt(err, errlen, SY_ECONFIG,
                         "broker/endpoint: %s: an abstract ipc socket has no "
                         "permissions; with security/curve use a path in a private directory", ep);
    }
    char d[GUARD_PATH_MAX];
    snprintf(d, sizeof d, "%s", path);
    const char *dir = dirname(d);
    struct stat st;
    if (stat(dir, &st) != 0)
        return syerr_fmt(err, errlen, SY_EIO, "broker/endpoint: %s: directory %s: %s", ep, dir,
                         strerror(errno));
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) {
        return syerr_fmt(err, errlen, SY_ECONFIG,
                         "broker/endpoint: %s: directory %s must belong to this "
                         "user with no group or other permissions (mode 0700; it is %04o)", ep,
                         dir, (unsigned) (st.st_mode & 07777));
    }
    return 0;
}

int guard_prepare(guard_t *self, zsock_t *router, const char *endpoints, char *err,
                  size_t errlen)
{
    if (!self->curve)
        return 0;
    char *list = strdup(endpoints), *save = NULL;
    if (!list)
        return SY_ENOMEM;
    int rc = 0;
    for (char *ep = strtok_r(list, ",", &save); ep && rc == 0;
         ep = strtok_r(NULL, ",", &save)) {
        while (*ep == ' ')
            ep++;
        if (strncmp(ep, "ipc://", 6) == 0)
            rc = guard_check_ipc(ep, err, errlen);
    }
    free(list);
    if (rc)
        return rc;
    zsock_set_zap_domain(router, "switchyard");
    zsock_set_curve_server(router, 1);
    zcert_apply(self->cert, router);
    certs_destroy(&self->cert);         /* the socket keeps its own copy */
    return 0;
}

/* ------------------------------------------------------------ checks */

int guard_identify(guard_t *self, const zmq_msg_t *frame, guard_peer_t *out)
{
    if (!self->curve) {
        out->name = NULL;
        out->role = self->default_role;
        return 0;
    }
    const allowlist_entry_t *e = zap_peer(self->allow, frame);
    if (!e)
        return SY_EDENIED;
    out->name = e->name;
    out->role = e->role;
    return 0;
}

int guard_may_send(const guard_t *self, certs_role_t role, const msgtype_t *mt,
                   const char *what)
{
    ptrdiff_t t = guard_type_index(self, mt);
    if (t < 0 || role < 0 || role >= CERTS_ROLE_COUNT)
        return SY_EDENIED;
    uint8_t v = self->may_send[(size_t) role * self->ntypes + (size_t) t];
    if (v == GUARD_QUERY)
        return acl_check_send(self->acl, role, mt->type, what ? what : "");
    return v ? 0 : SY_EDENIED;
}

bool guard_may_offer(const guard_t *self, certs_role_t role, const char *service)
{
    return acl_may_offer(self->acl, role, service);
}

int guard_rate(guard_t *self, certs_role_t role, const char *id, const msgtype_t *mt,
               int64_t now_ms)
{
    ptrdiff_t t = guard_type_index(self, mt);
    if (!id || role < 0 || role >= CERTS_ROLE_COUNT || !self->limited_role[role]
        || (t >= 0 && !self->limited_type[t]))
        return 0;
    return ratelimit_check(self->rate, id, now_ms) == SY_ERATE_LIMITED ? SY_ERATE_LIMITED
                                                                        : 0;
}

void guard_stats(guard_t *self, uint64_t *accepted, uint64_t *refused)
{
    zap_stats(self->zap, accepted, refused);
}

const acl_t *guard_acl(const guard_t *self)
{
    return self->acl;
}
