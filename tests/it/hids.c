/*  hids.c -- a set of message ids for the durable-queue tests.
 *
 *  Items live in an array in insertion order; a separate table of
 *  indexes (open addressing, linear probing, at most half full) finds
 *  them by id.  See hids.h.
 */
#include "hids.h"

#include <stdlib.h>
#include <string.h>

struct _hids_t {
    hid_item_t *items;
    size_t      n, cap;
    uint32_t   *slots;          /* index + 1, 0 = empty */
    size_t      nslots;         /* a power of two */
};

static uint64_t hids_hash(const uint8_t id[16])
{
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < 16; i++) h = (h ^ id[i]) * 1099511628211ULL;
    return h;
}

hids_t *hids_new(void)
{
    hids_t *self = calloc(1, sizeof *self);
    if (!self) return NULL;
    self->nslots = 1024;
    self->slots = calloc(self->nslots, sizeof *self->slots);
    if (!self->slots) { free(self); return NULL; }
    return self;
}

void hids_destroy(hids_t **self_p)
{
    if (!self_p || !*self_p) return;
    free((*self_p)->items);
    free((*self_p)->slots);
    free(*self_p);
    *self_p = NULL;
}

static size_t hids_slot(const hids_t *self, const uint8_t id[16])
{
    size_t mask = self->nslots - 1;
    size_t i = (size_t)hids_hash(id) & mask;
    while (self->slots[i] && memcmp(self->items[self->slots[i] - 1].id, id, 16) != 0)
        i = (i + 1) & mask;
    return i;
}

static int hids_grow(hids_t *self)
{
    size_t ns = self->nslots * 2;
    uint32_t *slots = calloc(ns, sizeof *slots);
    if (!slots) return -1;
    free(self->slots);
    self->slots = slots;
    self->nslots = ns;
    for (size_t k = 0; k < self->n; k++)
        self->slots[hids_slot(self, self->items[k].id)] = (uint32_t)(k + 1);
    return 0;
}

hid_item_t *hids_find(const hids_t *self, const uint8_t id[16])
{
    size_t i = hids_slot(self, id);
    return self->slots[i] ? &self->items[self->slots[i] - 1] : NULL;
}

hid_item_t *hids_add(hids_t *self, const uint8_t id[16], bool *added)
{
    hid_item_t *it = hids_find(self, id);
    if (added) *added = it == NULL;
    if (it) return it;
    if ((self->n + 1) * 2 > self->nslots && hids_grow(self) != 0) return NULL;
    if (self->n == self->cap) {
        size_t nc = self->cap ? self->cap * 2 : 256;
        hid_item_t *items = realloc(self->items, nc * sizeof *items);
        if (!items) return NULL;
        self->items = items;
        self->cap = nc;
    }
    it = &self->items[self->n];
    memset(it, 0, sizeof *it);
    memcpy(it->id, id, 16);
    self->slots[hids_slot(self, id)] = (uint32_t)(self->n + 1);
    self->n++;
    return it;
}

size_t hids_size(const hids_t *self) { return self->n; }

hid_item_t *hids_at(const hids_t *self, size_t i)
{
    return i < self->n ? &self->items[i] : NULL;
}
