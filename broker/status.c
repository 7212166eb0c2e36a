/*  status.c -- packs the status answer (see status.h).
 *
 *  Every packer call returns non-zero only when the sbuffer cannot grow;
 *  the calls are or-ed together and checked once at the end, which keeps
 *  the layout readable as one block per map.
 */
#include "broker/status.h"

#include <string.h>

#include "schemas/syerr.h"

static int status_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    return msgpack_pack_str(pk, n) | msgpack_pack_str_body(pk, s, n);
}

static uint64_t status_since(uint64_t now, uint64_t then)
{
    return now > then ? now - then : 0;
}

static int status_actor(msgpack_packer *pk, const registry_peer_t *p, uint64_t now)
{
    int rc = msgpack_pack_map(pk, 6);
    rc |= status_str(pk, "name") | status_str(pk, p->name);
    rc |= status_str(pk, "services") | msgpack_pack_array(pk, p->nservices);
    for (size_t i = 0; i < p->nservices; i++)
        rc |= status_str(pk, registry_service_name(p->services[i]));
    rc |= status_str(pk, "credit") | msgpack_pack_uint32(pk, p->credit);
    rc |= status_str(pk, "credit_left") | msgpack_pack_uint32(pk, p->credit_left);
    rc |= status_str(pk, "age_ms") | msgpack_pack_uint64(pk, status_since(now, p->last_seen_ms));
    rc |= status_str(pk, "up_ms") | msgpack_pack_uint64(pk, status_since(now, p->joined_ms));
    return rc;
}

static int status_service(msgpack_packer *pk, const registry_service_t *s)
{
    int rc = msgpack_pack_map(pk, 3);
    rc |= status_str(pk, "name") | status_str(pk, registry_service_name(s));
    rc |= status_str(pk, "actors") | msgpack_pack_uint64(pk, registry_service_actors(s));
    rc |= status_str(pk, "waiting") | msgpack_pack_uint64(pk, registry_service_waiting(s));
    return rc;
}

int status_build(registry_t *reg, const status_info_t *info, uint64_t now,
                 msgpack_sbuffer *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);

    int rc = msgpack_pack_map(&pk, 2);
    rc |= status_str(&pk, "what") | status_str(&pk, "status");
    rc |= status_str(&pk, "data") | msgpack_pack_map(&pk, info->queues ? 4 : 3);

    rc |= status_str(&pk, "broker") | msgpack_pack_map(&pk, 3);
    rc |= status_str(&pk, "version") | status_str(&pk, info->version ? info->version : "");
    rc |= status_str(&pk, "uptime_ms") | msgpack_pack_uint64(&pk, info->uptime_ms);
    rc |= status_str(&pk, "endpoint") | status_str(&pk, info->endpoint ? info->endpoint : "");

    rc |= status_str(&pk, "actors") | msgpack_pack_array(&pk, registry_peer_count(reg));
    for (registry_peer_t *p = registry_peer_first(reg); p; p = registry_peer_next(p))
        rc |= status_actor(&pk, p, now);

    rc |= status_str(&pk, "services") | msgpack_pack_array(&pk, registry_service_count(reg));
    for (registry_service_t *s = registry_service_first(reg); s; s = registry_service_next(reg))
        rc |= status_service(&pk, s);

    if (info->queues)
        rc |= status_str(&pk, "queues") | info->queues(&pk, info->queues_arg);

    return rc ? SY_ENOMEM : 0;
}
