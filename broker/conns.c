/*  conns.c -- per-descriptor connection generations of the broker's
 *  ROUTER (see conns.h).
 *
 *  Ideas:
 *
 *  - One slot per descriptor number, in an array indexed by the number
 *    and grown by doubling as higher numbers show up (the kernel hands
 *    out the lowest free number, so the array stays about as long as the
 *    most connections ever open at once).  Lookups are an index.
 *
 *  - A generation per slot, bumped at each ACCEPTED, never 0 (0 means
 *    "unknown" to the callers), makes (fd, generation) the name of one
 *    connection: an event about an old connection cannot be mistaken for
 *    the new one that got its number.
 *
 *  - The routing id of the peer that said hello is kept with the slot
 *    (one small allocation per hello, none per message), so a closed
 *    connection finds its peer with one hash lookup in the registry
 *    instead of a walk over every peer.
 */
#include "broker/conns.h"

#include <stdlib.h>
#include <string.h>

#include "schemas/syerr.h"

typedef struct {
    uint32_t gen;               /* of the latest accepted connection, 0: none yet */
    bool     open;              /* accepted, not yet disconnected */
    bool     doubt;             /* two routing ids said hello on gen: name nobody */
    uint8_t *rid;               /* hello's routing id on connection gen, or NULL */
} conns_slot_t;

struct _conns_t {
    conns_slot_t *slot;
    size_t        cap;
    size_t        nopen;
};

conns_t *conns_new(void)
{
    return calloc(1, sizeof(conns_t));
}

void conns_destroy(conns_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    conns_t *self = *self_p;
    for (size_t i = 0; i < self->cap; i++)
        free(self->slot[i].rid);
    free(self->slot);
    free(self);
    *self_p = NULL;
}

/* Makes slot fd exist.  Returns 0, SY_EINVAL or SY_ENOMEM. */
static int conns_grow(conns_t *self, int fd)
{
    if (fd < 0 || fd >= CONNS_FD_MAX)
        return SY_EINVAL;
    if ((size_t) fd < self->cap)
        return 0;
    size_t cap = self->cap ? self->cap : 64;
    while (cap <= (size_t) fd)
        cap *= 2;
    conns_slot_t *p = realloc(self->slot, cap * sizeof *p);
    if (!p)
        return SY_ENOMEM;
    memset(p + self->cap, 0, (cap - self->cap) * sizeof *p);
    self->slot = p;
    self->cap = cap;
    return 0;
}

static conns_slot_t *conns_slot(const conns_t *self, int fd)
{
    return fd >= 0 && (size_t) fd < self->cap ? &self->slot[fd] : NULL;
}

int conns_accepted(conns_t *self, int fd)
{
    int rc = conns_grow(self, fd);
    if (rc)
        return rc;
    conns_slot_t *s = &self->slot[fd];
    /* an ACCEPTED without the DISCONNECTED of the one before (an event
       lost): the old connection cannot be named any more */
    free(s->rid);
    s->rid = NULL;
    s->doubt = false;
    s->gen = s->gen + 1 ? s->gen + 1 : 1;
    if (!s->open)
        self->nopen++;
    s->open = true;
    return 0;
}

uint32_t conns_current(const conns_t *self, int fd)
{
    const conns_slot_t *s = conns_slot(self, fd);
    return s && s->open ? s->gen : 0;
}

int conns_bind(conns_t *self, int fd, uint32_t gen, const uint8_t *rid)
{
    conns_slot_t *s = conns_slot(self, fd);
    if (!s || !s->open || s->doubt || gen == 0 || s->gen != gen || !rid || rid[0] == 0)
        return SY_EINVAL;
    if (s->rid && (s->rid[0] != rid[0] || memcmp(s->rid + 1, rid + 1, rid[0]) != 0)) {
        /* one connection has one routing id: a second one means this
           hello came on a connection the table has not heard of yet
           (its events are late); trust neither */
        free(s->rid);
        s->rid = NULL;
        s->doubt = true;
        return SY_EINVAL;
    }
    uint8_t *copy = malloc(1 + (size_t) rid[0]);
    if (!copy)
        return SY_ENOMEM;
    memcpy(copy, rid, 1 + (size_t) rid[0]);
    free(s->rid);
    s->rid = copy;
    return 0;
}

bool conns_disconnected(conns_t *self, int fd, uint32_t *gen,
                        uint8_t rid[1 + CONNS_RID_MAX])
{
    conns_slot_t *s = conns_slot(self, fd);
    if (!s || !s->open)
        return false;
    s->open = false;
    self->nopen--;
    if (!s->rid)
        return false;
    *gen = s->gen;
    memcpy(rid, s->rid, 1 + (size_t) s->rid[0]);
    free(s->rid);
    s->rid = NULL;
    return true;
}

size_t conns_open(const conns_t *self)
{
    return self->nopen;
}
