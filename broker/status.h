/*  status.h -- the body of the broker's answer to sy.query {what:"status"}.
 *
 *  Builds, with msgpack-c's packer, the sy.answer body
 *      {what:"status", data:{broker:{version, uptime_ms, endpoint},
 *        actors:[{name, services, credit, credit_left, age_ms, up_ms}],
 *        services:[{name, actors, waiting}], queues:[...]}}
 *  where queues (present when info->queues is set) is the array of the
 *  durable queues packed by that callback (broker/queues.h).
 *  from the registry, as docs/PROTOCOL.md lays it out.  age_ms is the time
 *  since the actor was last heard from, up_ms the time since its hello.
 *
 *  Ownership: the caller owns the sbuffer (msgpack_sbuffer_init before,
 *  msgpack_sbuffer_destroy after, whatever the result).
 */
#ifndef STATUS_H
#define STATUS_H

#include <msgpack.h>
#include <stdint.h>

#include "broker/registry.h"

/* Packs one more value (the durable queues' array) into pk; returns 0 or
   non-zero on failure. */
typedef int (status_pack_fn)(msgpack_packer *pk, void *arg);

typedef struct {
    const char *version;
    const char *endpoint;
    uint64_t    uptime_ms;
    status_pack_fn *queues;     /* NULL: no "queues" key in data */
    void       *queues_arg;
} status_info_t;

/* Appends the answer body to out.  now is on the clock the registry's
   times are on.  Returns 0 or SY_ENOMEM. */
int status_build(registry_t *reg, const status_info_t *info, uint64_t now,
                 msgpack_sbuffer *out);

#endif
