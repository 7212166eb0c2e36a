/*  topics.c -- prefix subscriptions.
 *
 *  A flat array of subscribers, each with its own small array of prefixes.
 *  Matching walks every subscriber and stops at its first matching prefix,
 *  which gives "once per subscriber" without any bookkeeping.  Events are
 *  rare next to routed messages and subscribers are few (operators tailing,
 *  the sync actor), so a walk beats a trie here in code and in time.
 */
#include "broker/topics.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "schemas/syerr.h"

typedef struct {
    size_t len;
    char   text[TOPICS_PREFIX_MAX];
} topics_prefix_t;

typedef struct {
    void *who;
    topics_prefix_t *prefixes;
    size_t n, cap;
} topics_sub_t;

struct _topics_t {
    topics_sub_t *subs;
    size_t n, cap;
};

topics_t *topics_new(void)
{
    return calloc(1, sizeof(topics_t));
}

void topics_destroy(topics_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    topics_t *self = *self_p;
    for (size_t i = 0; i < self->n; i++)
        free(self->subs[i].prefixes);
    free(self->subs);
    free(self);
    *self_p = NULL;
}

/* memcmp() is undefined on NULL even for 0 bytes: callers may pass "" as
   (NULL, 0). */
static bool topics_same(const topics_prefix_t *p, const char *s, size_t len)
{
    return p->len == len && (len == 0 || memcmp(p->text, s, len) == 0);
}

static topics_sub_t *topics_find(topics_t *self, void *who)
{
    for (size_t i = 0; i < self->n; i++)
        if (self->subs[i].who == who)
            return &self->subs[i];
    return NULL;
}

static topics_sub_t *topics_add_sub(topics_t *self, void *who)
{
    if (self->n == self->cap) {
        size_t ncap = self->cap ? self->cap * 2 : 8;
        topics_sub_t *ns = realloc(self->subs, ncap * sizeof *ns);
        if (!ns)
            return NULL;
        self->subs = ns;
        self->cap = ncap;
    }
    topics_sub_t *s = &self->subs[self->n++];
    *s = (topics_sub_t){ .who = who };
    return s;
}

static void topics_remove_sub(topics_t *self, topics_sub_t *s)
{
    free(s->prefixes);
    *s = self->subs[--self->n];
}

int topics_sub(topics_t *self, void *who, const char *prefix, size_t len)
{
    if (len > TOPICS_PREFIX_MAX)
        return SY_EFIELD_RANGE;
    topics_sub_t *s = topics_find(self, who);
    if (s)
        for (size_t i = 0; i < s->n; i++)
            if (topics_same(&s->prefixes[i], prefix, len))
                return 0;
    if (!s && !(s = topics_add_sub(self, who)))
        return SY_ENOMEM;
    if (s->n >= TOPICS_PER_SUB)
        return SY_EFIELD_RANGE;
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 4;
        topics_prefix_t *np = realloc(s->prefixes, ncap * sizeof *np);
        if (!np) {
            if (s->n == 0)
                topics_remove_sub(self, s);
            return SY_ENOMEM;
        }
        s->prefixes = np;
        s->cap = ncap;
    }
    s->prefixes[s->n].len = len;
    if (len)
        memcpy(s->prefixes[s->n].text, prefix, len);
    s->n++;
    return 0;
}

int topics_unsub(topics_t *self, void *who, const char *prefix, size_t len)
{
    topics_sub_t *s = topics_find(self, who);
    if (!s)
        return SY_ENOTFOUND;
    for (size_t i = 0; i < s->n; i++)
        if (topics_same(&s->prefixes[i], prefix, len)) {
            s->prefixes[i] = s->prefixes[--s->n];
            if (s->n == 0)
                topics_remove_sub(self, s);
            return 0;
        }
    return SY_ENOTFOUND;
}

void topics_drop(topics_t *self, void *who)
{
    topics_sub_t *s = topics_find(self, who);
    if (s)
        topics_remove_sub(self, s);
}

size_t topics_match(topics_t *self, const char *topic, size_t len,
                    topics_match_fn *fn, void *arg)
{
    size_t hits = 0;
    for (size_t i = 0; i < self->n; i++) {
        const topics_sub_t *s = &self->subs[i];
        for (size_t j = 0; j < s->n; j++) {
            const topics_prefix_t *p = &s->prefixes[j];
            if (p->len == 0 || (p->len <= len && memcmp(p->text, topic, p->len) == 0)) {
                fn(s->who, arg);
                hits++;
                break;
            }
        }
    }
    return hits;
}

size_t topics_count(const topics_t *self)
{
    return self->n;
}
