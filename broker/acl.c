/*  acl.c -- authorisation rules per role (see acl.h).
 *
 *  Ideas:
 *  - The pattern lists are kept as the configured comma strings and
 *    matched in place: the lists are a handful of items, so a scan beats
 *    any structure, and nothing is allocated per check.
 *  - A sy.query is matched twice, as "sy.query" and as "sy.query:WHAT", so
 *    one syntax covers "all queries" and "this query only".
 *  - Administration is decided by a read-only list, not an admin list, so
 *    a query added later is refused to non-operators until someone
 *    declares it harmless.
 *  - Owner-checked queries (cancel) are a short list in the code, not a
 *    setting: they are neither harmless nor administration, and the
 *    decision needs the message, so the send check only lets them on to
 *    acl_may_cancel(), which the broker asks with the stored header.
 */
#include "broker/acl.h"
#include "schemas/syerr.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACL_QUERY "sy.query"

typedef struct {
    char *offer;
    char *send;
    bool admin;
} acl_role_t;

struct _acl_t {
    acl_role_t roles[CERTS_ROLE_COUNT];
    char *readonly;
};

static const char *const acl_always[] = { "sy.hello", "sy.ping", "sy.bye" };

static bool acl_pattern_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
           || c == '.' || c == '_' || c == ':' || c == '@' || c == '-';
}

bool acl_valid_list(const char *list)
{
    if (list == NULL)
        return false;
    if (*list == '\0')
        return true;
    size_t item = 0;                 /* length of the current item */
    bool star = false;
    for (const char *p = list;; p++) {
        if (*p == ',' || *p == '\0') {
            if (item == 0)
                return false;
            if (*p == '\0')
                return true;
            item = 0;
            star = false;
        } else if (star)
            return false;            /* something after '*' */
        else if (*p == '*') {
            star = true;
            item++;
        } else if (acl_pattern_char(*p))
            item++;
        else
            return false;
    }
}

/* Whether the pattern p[0..plen) matches name. */
static bool acl_item_match(const char *p, size_t plen, const char *name, size_t nlen)
{
    if (plen > 0 && p[plen - 1] == '*')
        return nlen >= plen - 1 && memcmp(p, name, plen - 1) == 0;
    return plen == nlen && memcmp(p, name, plen) == 0;
}

bool acl_list_match(const char *list, const char *name)
{
    if (list == NULL || name == NULL)
        return false;
    size_t nlen = strlen(name);
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t plen = end ? (size_t) (end - p) : strlen(p);
        if (plen > 0 && acl_item_match(p, plen, name, nlen))
            return true;
        if (end == NULL)
            break;
        p = end + 1;
    }
    return false;
}

static bool acl_role_ok(certs_role_t role)
{
    return role >= 0 && role < CERTS_ROLE_COUNT;
}

bool acl_may_offer(const acl_t *self, certs_role_t role, const char *service)
{
    if (self == NULL || !acl_role_ok(role) || service == NULL || *service == '\0')
        return false;
    return acl_list_match(self->roles[role].offer, service);
}

bool acl_is_owner_query(const char *what)
{
    return what && *what && acl_list_match(ACL_OWNER_QUERIES, what);
}

bool acl_is_admin_query(const acl_t *self, const char *what)
{
    return !(self && what && *what
             && (acl_list_match(self->readonly, what) || acl_is_owner_query(what)));
}

bool acl_role_admin(const acl_t *self, certs_role_t role)
{
    return self && acl_role_ok(role) && self->roles[role].admin;
}

int acl_may_cancel(const acl_t *self, certs_role_t role, const char *requester,
                   const char *stored_from, const char *stored_reply_to,
                   bool offers_reply_to, char *why, size_t whylen)
{
    if (acl_role_admin(self, role))
        return 0;
    if (requester && *requester && stored_from && strcmp(stored_from, requester) == 0)
        return 0;
    if (offers_reply_to && stored_reply_to && *stored_reply_to)
        return 0;
    if (why && whylen)
        snprintf(why, whylen, "%s may not cancel this message: only its sender, a peer "
                 "offering its reply_to service or an admin role may",
                 requester && *requester ? requester : "this peer");
    return SY_EDENIED;
}

int acl_check_send(const acl_t *self, certs_role_t role, const char *type,
                   const char *what)
{
    if (self == NULL || !acl_role_ok(role) || type == NULL)
        return SY_EDENIED;
    for (size_t i = 0; i < sizeof acl_always / sizeof acl_always[0]; i++)
        if (strcmp(type, acl_always[i]) == 0)
            return 0;
    const acl_role_t *r = &self->roles[role];
    bool allowed = acl_list_match(r->send, type);
    if (strcmp(type, ACL_QUERY) == 0) {
        char key[sizeof ACL_QUERY + 1 + 64];
        if (what == NULL || strlen(what) > 64)
            return SY_EDENIED;
        snprintf(key, sizeof key, "%s:%s", ACL_QUERY, what);
        allowed = allowed || acl_list_match(r->send, key);
        if (allowed && acl_is_admin_query(self, what) && !r->admin)
            allowed = false;
    }
    return allowed ? 0 : SY_EDENIED;
}

/* Copies the setting at path after checking it. */
static int acl_take(const config_t *cfg, const char *path, char **out,
                    char *err, size_t errlen)
{
    const char *v = config_str(cfg, path);
    if (!acl_valid_list(v)) {
        if (err && errlen)
            snprintf(err, errlen, "%s: \"%s\" is not a list of patterns (comma-separated "
                     "names, a '*' only at the end of one, no spaces)", path, v);
        return SY_ECONFIG;
    }
    *out = strdup(v);
    return *out ? 0 : SY_ENOMEM;
}

int acl_new(const config_t *cfg, acl_t **out, char *err, size_t errlen)
{
    if (cfg == NULL || out == NULL)
        return SY_EINVAL;
    *out = NULL;
    acl_t *self = calloc(1, sizeof *self);
    if (self == NULL)
        return SY_ENOMEM;
    int rc = acl_take(cfg, "acl/readonly_queries", &self->readonly, err, errlen);
    for (int i = 0; rc == 0 && i < CERTS_ROLE_COUNT; i++) {
        const char *role = certs_role_name((certs_role_t) i);
        char path[64];
        snprintf(path, sizeof path, "acl/%s/offer", role);
        rc = acl_take(cfg, path, &self->roles[i].offer, err, errlen);
        snprintf(path, sizeof path, "acl/%s/send", role);
        if (rc == 0)
            rc = acl_take(cfg, path, &self->roles[i].send, err, errlen);
        snprintf(path, sizeof path, "acl/%s/admin", role);
        self->roles[i].admin = config_bool(cfg, path);
    }
    if (rc != 0) {
        acl_destroy(&self);
        return rc;
    }
    *out = self;
    return 0;
}

void acl_destroy(acl_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    acl_t *self = *self_p;
    for (int i = 0; i < CERTS_ROLE_COUNT; i++) {
        free(self->roles[i].offer);
        free(self->roles[i].send);
    }
    free(self->readonly);
    free(self);
    *self_p = NULL;
}
