/*  allowlist.c -- the broker's list of enrolled certificates (see
 *  allowlist.h).
 *
 *  Ideas:
 *  - The directory is the truth; memory holds a snapshot: a sorted array of
 *    entries plus two hash indexes into it (by Z85 key, by name).  A load
 *    builds a whole new snapshot and swaps it in only when complete, so a
 *    half-read directory is never in force.
 *  - Change detection is stat() calls: the directory and the revoked file
 *    (a file added, removed or renamed in), and each certificate file seen
 *    at the last load, by mtime and size (one edited in place: the
 *    directory does not change then).  One stat per certificate per
 *    refresh is cheap for the tens of devices a broker has.  Git's "racily
 *    clean" rule applies: a change in the same timestamp tick as the last
 *    load cannot be seen by comparing mtimes, so while the newest mtime is
 *    younger than ALLOWLIST_RACY_MS every refresh reloads.
 *  - Revocation is sticky: the revoked file remembers keys, not file
 *    names, so copying an old certificate back does not re-admit it.
 *  - Names removed by any reload (our own revoke, or another process's)
 *    are collected in `pending` until refresh/reload hands them out, so the
 *    broker learns about every device it must drop exactly once.
 *  - Files are written to a dot-file and renamed: readers see old or new,
 *    and the directory's mtime moves.
 */
#include "broker/allowlist.h"
#include "common/sylog.h"
#include "schemas/syerr.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ALLOWLIST_RACY_MS 2000
#define ALLOWLIST_MAX_FILES 100000

/* A certificate file as the last load saw it (stat before reading). */
typedef struct {
    char           *name;         /* file name in the directory, owned */
    struct timespec mtime;
    off_t           size;
    bool            seen;         /* stat succeeded */
} allowlist_file_t;

typedef struct {
    allowlist_entry_t *entries;   /* sorted by name */
    size_t count;
    zhash_t *by_key;              /* z85 -> entry (not owned) */
    zhash_t *by_name;             /* name -> entry (not owned) */
    zhash_t *revoked;             /* z85 -> name (owned strings) */
    allowlist_file_t *files;      /* every .cert file of the directory */
    size_t nfiles;
} allowlist_snap_t;

struct _allowlist_t {
    char *path;
    bool is_dir;
    allowlist_snap_t snap;
    struct timespec dir_mtime, rev_mtime;
    bool rev_exists;
    bool racy;                    /* reload at the next refresh regardless */
    zlist_t *pending;             /* names removed, not yet handed out */
};

/* Writes a message into the caller's err buffer (see syerr_fmt). */
#define allowlist_err(err, errlen, ...) ((void) syerr_fmt((err), (errlen), 0, __VA_ARGS__))

/* ------------------------------------------------------------ snapshots */

static void allowlist_snap_free(allowlist_snap_t *s)
{
    zhash_destroy(&s->by_key);
    zhash_destroy(&s->by_name);
    zhash_destroy(&s->revoked);
    free(s->entries);
    for (size_t i = 0; i < s->nfiles; i++)
        free(s->files[i].name);
    free(s->files);
    memset(s, 0, sizeof *s);
}

static int allowlist_snap_init(allowlist_snap_t *s)
{
    memset(s, 0, sizeof *s);
    s->by_key = zhash_new();
    s->by_name = zhash_new();
    s->revoked = zhash_new();
    if (!s->by_key || !s->by_name || !s->revoked) {
        allowlist_snap_free(s);
        return SY_ENOMEM;
    }
    zhash_autofree(s->revoked);
    return 0;
}

/* Reads DIR/revoked: one "KEY NAME" per line, '#' comments. */
static int allowlist_read_revoked(const char *file, zhash_t *revoked)
{
    FILE *f = fopen(file, "r");
    if (f == NULL)
        return errno == ENOENT ? 0 : SY_EIO;
    char line[256];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char key[64] = "", name[80] = "";
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (sscanf(line, "%63s %79s", key, name) < 1 || strlen(key) != 40) {
            sylog_warn("allowlist: %s:%d: not \"KEY NAME\", ignored", file, lineno);
            continue;
        }
        zhash_update(revoked, key, name[0] ? name : "?");
    }
    fclose(f);
    return 0;
}

static int allowlist_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The .cert file names in dir, sorted.  *out is a malloc'd array of
   malloc'd strings. */
static int allowlist_list_dir(const char *dir, char ***out, size_t *count)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return SY_EIO;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < ALLOWLIST_MAX_FILES) {
        size_t len = strlen(de->d_name);
        size_t ext = strlen(CERTS_PUBLIC_EXT);
        if (de->d_name[0] == '.' || len <= ext
            || strcmp(de->d_name + len - ext, CERTS_PUBLIC_EXT) != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **grown = realloc(names, cap * sizeof *names);
            if (grown == NULL) { rc = SY_ENOMEM; break; }
            names = grown;
        }
        if ((names[n] = strdup(de->d_name)) == NULL) { rc = SY_ENOMEM; break; }
        n++;
    }
    closedir(d);
    if (rc != 0) {
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        free(names);
        return rc;
    }
    if (n > 1)
        qsort(names, n, sizeof *names, allowlist_cmp_str);
    *out = names;
    *count = n;
    return 0;
}

/* Adds the certificate at path (file name fname) to s and its indexes
   (the duplicate checks of the next one need them), unless it is bad,
   revoked or a duplicate; says why when it is skipped.  Returns 0 or
   SY_ENOMEM. */
static int allowlist_snap_add(allowlist_snap_t *s, const char *path, const char *fname,
                               bool check_stem)
{
    char err[512];
    zcert_t *cert = NULL;
    if (certs_load(path, &cert, err, sizeof err) != 0) {
        sylog_warn("allowlist: ignoring %s", err);
        return 0;
    }
    int rc = 0;
    const char *name = certs_name(cert);
    const char *key = zcert_public_txt(cert);
    size_t stem = strlen(fname) - strlen(CERTS_PUBLIC_EXT);
    if (certs_has_secret(cert))
        sylog_warn("allowlist: ignoring %s: it holds a secret key; enroll the "
                   "public .cert file only", path);
    else if (check_stem && (strlen(name) != stem || strncmp(fname, name, stem) != 0))
        sylog_warn("allowlist: ignoring %s: its certificate is named \"%s\"", path, name);
    else if (zhash_lookup(s->revoked, key))
        sylog_info("allowlist: %s holds the revoked key of %s; not enrolled", path, name);
    else if (zhash_lookup(s->by_name, name))
        sylog_warn("allowlist: ignoring %s: name %s enrolled twice", path, name);
    else if (zhash_lookup(s->by_key, key))
        sylog_warn("allowlist: ignoring %s: same key as %s", path,
                   ((allowlist_entry_t *) zhash_lookup(s->by_key, key))->name);
    else {
        /* the entry array was sized for every file: it never moves */
        allowlist_entry_t *e = &s->entries[s->count++];
        snprintf(e->name, sizeof e->name, "%s", name);
        snprintf(e->key, sizeof e->key, "%s", key);
        e->role = certs_role(cert);
        if (zhash_insert(s->by_key, e->key, e) != 0
            || zhash_insert(s->by_name, e->name, e) != 0)
            rc = SY_ENOMEM;
    }
    certs_destroy(&cert);
    return rc;
}

/* Fills the mtime and size of the file at path (seen false if it cannot
   be read). */
static void allowlist_file_stat(const char *path, allowlist_file_t *fs)
{
    struct stat st;
    fs->seen = stat(path, &st) == 0;
    fs->mtime = fs->seen ? st.st_mtim : (struct timespec) { 0, 0 };
    fs->size = fs->seen ? st.st_size : 0;
}

/* Loads a whole new snapshot from disk. */
static int allowlist_snap_load(allowlist_t *self, allowlist_snap_t *s)
{
    int rc = allowlist_snap_init(s);
    if (rc != 0)
        return rc;
    if (!self->is_dir) {
        const char *slash = strrchr(self->path, '/');
        s->entries = calloc(1, sizeof *s->entries);
        if (s->entries == NULL)
            return SY_ENOMEM;
        return allowlist_snap_add(s, self->path, slash ? slash + 1 : self->path, false);
    }
    char file[4096];
    snprintf(file, sizeof file, "%s/%s", self->path, ALLOWLIST_REVOKED_FILE);
    rc = allowlist_read_revoked(file, s->revoked);
    if (rc != 0)
        return rc;
    char **names = NULL;
    size_t n = 0;
    rc = allowlist_list_dir(self->path, &names, &n);
    if (rc != 0)
        return rc;
    s->entries = calloc(n ? n : 1, sizeof *s->entries);
    s->files = calloc(n ? n : 1, sizeof *s->files);
    if (s->entries == NULL || s->files == NULL)
        rc = SY_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (rc == 0) {
            snprintf(file, sizeof file, "%s/%s", self->path, names[i]);
            /* stat before reading: an edit after it shows at the next
               refresh */
            allowlist_file_t *fs = &s->files[s->nfiles++];
            allowlist_file_stat(file, fs);
            fs->name = names[i];
            names[i] = NULL;
            rc = allowlist_snap_add(s, file, fs->name, true);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

/* ------------------------------------------------------------ change detection */

static int64_t allowlist_ts_ms(const struct timespec *t)
{
    return (int64_t) t->tv_sec * 1000 + t->tv_nsec / 1000000;
}

/* Reads the mtimes that stand for "the list changed". */
static int allowlist_stamp(allowlist_t *self, struct timespec *dir_m,
                           struct timespec *rev_m, bool *rev_exists)
{
    struct stat st;
    if (stat(self->path, &st) != 0)
        return SY_EIO;
    *dir_m = st.st_mtim;
    memset(rev_m, 0, sizeof *rev_m);
    *rev_exists = false;
    if (self->is_dir) {
        char file[4096];
        snprintf(file, sizeof file, "%s/%s", self->path, ALLOWLIST_REVOKED_FILE);
        if (stat(file, &st) == 0) {
            *rev_m = st.st_mtim;
            *rev_exists = true;
        }
    }
    return 0;
}

static bool allowlist_ts_eq(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/* Adds to pending every name of old whose key is not enrolled under that
   name in new. */
static void allowlist_diff(allowlist_t *self, allowlist_snap_t *old,
                           allowlist_snap_t *new_snap)
{
    for (size_t i = 0; i < old->count; i++) {
        allowlist_entry_t *e = zhash_lookup(new_snap->by_name, old->entries[i].name);
        if (e == NULL || strcmp(e->key, old->entries[i].key) != 0) {
            zlist_append(self->pending, old->entries[i].name);
            sylog_info("allowlist: %s (key %.8s...) no longer enrolled",
                       old->entries[i].name, old->entries[i].key);
        }
    }
}

/* Loads from disk and swaps the snapshot in. */
static int allowlist_load(allowlist_t *self)
{
    struct timespec dir_m, rev_m;
    bool rev_exists;
    int rc = allowlist_stamp(self, &dir_m, &rev_m, &rev_exists);
    if (rc != 0)
        return rc;
    allowlist_snap_t s;
    rc = allowlist_snap_load(self, &s);
    if (rc != 0) {
        allowlist_snap_free(&s);
        return rc;
    }
    allowlist_diff(self, &self->snap, &s);
    allowlist_snap_free(&self->snap);
    self->snap = s;
    self->dir_mtime = dir_m;
    self->rev_mtime = rev_m;
    self->rev_exists = rev_exists;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t newest = allowlist_ts_ms(&dir_m);
    if (allowlist_ts_ms(&rev_m) > newest)
        newest = allowlist_ts_ms(&rev_m);
    for (size_t i = 0; i < s.nfiles; i++)
        if (allowlist_ts_ms(&s.files[i].mtime) > newest)
            newest = allowlist_ts_ms(&s.files[i].mtime);
    self->racy = allowlist_ts_ms(&now) - newest < ALLOWLIST_RACY_MS;
    return 0;
}

/* Hands the pending names to the caller. */
static void allowlist_hand_out(allowlist_t *self, zlist_t **removed)
{
    if (removed == NULL)
        return;
    *removed = NULL;
    if (zlist_size(self->pending) == 0)
        return;
    *removed = self->pending;
    self->pending = zlist_new();
    if (self->pending)
        zlist_autofree(self->pending);
}

int allowlist_reload(allowlist_t *self, zlist_t **removed)
{
    if (removed)
        *removed = NULL;
    int rc = allowlist_load(self);
    if (rc != 0)
        return rc;
    allowlist_hand_out(self, removed);
    return 0;
}

/* True if a certificate file of the last load was edited (mtime or size)
   or went away: one stat each. */
static bool allowlist_files_changed(allowlist_t *self)
{
    char file[4096];
    for (size_t i = 0; i < self->snap.nfiles; i++) {
        const allowlist_file_t *old = &self->snap.files[i];
        allowlist_file_t now;
        snprintf(file, sizeof file, "%s/%s", self->path, old->name);
        allowlist_file_stat(file, &now);
        if (now.seen != old->seen || now.size != old->size
            || !allowlist_ts_eq(&now.mtime, &old->mtime))
            return true;
    }
    return false;
}

int allowlist_refresh(allowlist_t *self, bool *changed, zlist_t **removed)
{
    if (removed)
        *removed = NULL;
    if (changed)
        *changed = false;
    struct timespec dir_m, rev_m;
    bool rev_exists;
    int rc = allowlist_stamp(self, &dir_m, &rev_m, &rev_exists);
    if (rc != 0)
        return rc;
    bool stale = self->racy || !allowlist_ts_eq(&dir_m, &self->dir_mtime)
                 || !allowlist_ts_eq(&rev_m, &self->rev_mtime)
                 || rev_exists != self->rev_exists
                 || allowlist_files_changed(self);
    if (stale) {
        rc = allowlist_reload(self, removed);
        if (rc == 0 && changed)
            *changed = true;
        return rc;
    }
    if (zlist_size(self->pending) > 0) {
        allowlist_hand_out(self, removed);
        if (changed)
            *changed = true;
    }
    return 0;
}

/* ------------------------------------------------------------ life cycle */

int allowlist_new(const char *path, allowlist_t **out, char *err, size_t errlen)
{
    if (path == NULL || out == NULL || path[0] == '\0')
        return syerr_fmt(err, errlen, SY_EINVAL, "allow-list: no path given (security/certs_dir)");
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0 && errno == ENOENT && mkdir(path, 0700) != 0)
        return syerr_fmt(err, errlen, SY_EIO, "%s: cannot create the allow-list directory: %s",
                         path, strerror(errno));
    if (stat(path, &st) != 0)
        return syerr_fmt(err, errlen, SY_EIO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode) && (st.st_mode & 022) != 0) {
        /* anyone who can write here could enroll themselves */
        return syerr_fmt(err, errlen, SY_ECONFIG,
                         "%s: the allow-list directory is writable by group "
                         "or others (mode %04o); run chmod go-w on it", path,
                         (unsigned) (st.st_mode & 07777));
    }
    allowlist_t *self = calloc(1, sizeof *self);
    if (self == NULL || (self->path = strdup(path)) == NULL
        || (self->pending = zlist_new()) == NULL) {
        allowlist_destroy(&self);
        return syerr_fmt(err, errlen, SY_ENOMEM, "out of memory");
    }
    zlist_autofree(self->pending);
    self->is_dir = S_ISDIR(st.st_mode);
    int rc = allowlist_load(self);
    if (rc != 0) {
        allowlist_err(err, errlen, "%s: cannot read the allow-list: %s", path, syerr_text(rc));
        allowlist_destroy(&self);
        return rc;
    }
    *out = self;
    return 0;
}

void allowlist_destroy(allowlist_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    allowlist_t *self = *self_p;
    allowlist_snap_free(&self->snap);
    zlist_destroy(&self->pending);
    free(self->path);
    free(self);
    *self_p = NULL;
}

/* ------------------------------------------------------------ lookups */

const allowlist_entry_t *allowlist_lookup(allowlist_t *self, const char *key_z85)
{
    if (self == NULL || key_z85 == NULL)
        return NULL;
    return zhash_lookup(self->snap.by_key, key_z85);
}

const allowlist_entry_t *allowlist_lookup_bin(allowlist_t *self, const uint8_t key[32])
{
    char z85[41];
    if (self == NULL || key == NULL || zmq_z85_encode(z85, key, 32) == NULL)
        return NULL;
    return allowlist_lookup(self, z85);
}

const allowlist_entry_t *allowlist_lookup_name(allowlist_t *self, const char *name)
{
    if (self == NULL || name == NULL)
        return NULL;
    return zhash_lookup(self->snap.by_name, name);
}

size_t allowlist_size(allowlist_t *self)
{
    return self ? self->snap.count : 0;
}

const allowlist_entry_t *allowlist_at(allowlist_t *self, size_t i)
{
    return self && i < self->snap.count ? &self->snap.entries[i] : NULL;
}

bool allowlist_is_revoked(allowlist_t *self, const char *key_z85)
{
    return self && key_z85 && zhash_lookup(self->snap.revoked, key_z85) != NULL;
}

/* ------------------------------------------------------------ changes */

/* Writes the revoked set to DIR/revoked through a temporary file. */
static int allowlist_write_revoked(allowlist_t *self, zhash_t *revoked)
{
    char tmp[4096], file[4096];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", self->path, ALLOWLIST_REVOKED_FILE);
    snprintf(file, sizeof file, "%s/%s", self->path, ALLOWLIST_REVOKED_FILE);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return SY_EIO;
    fprintf(f, "# keys revoked by syctl keys revoke: refused until enrolled again\n");
    zlist_t *keys = zhash_keys(revoked);
    if (keys)
        zlist_sort(keys, NULL);
    for (const char *k = keys ? zlist_first(keys) : NULL; k; k = zlist_next(keys))
        fprintf(f, "%s %s\n", k, (const char *) zhash_lookup(revoked, k));
    zlist_destroy(&keys);
    int rc = fflush(f) == 0 && fsync(fileno(f)) == 0 ? 0 : SY_EIO;
    if (fclose(f) != 0)
        rc = SY_EIO;
    if (rc == 0 && rename(tmp, file) != 0)
        rc = SY_EIO;
    if (rc != 0)
        unlink(tmp);
    return rc;
}

/* A copy of the current revoked set (keys and names). */
static zhash_t *allowlist_revoked_copy(allowlist_t *self)
{
    zhash_t *copy = zhash_dup(self->snap.revoked);
    if (copy)
        zhash_autofree(copy);
    return copy;
}

/* Writes the public half of cert as DIR/NAME.cert through a temporary. */
static int allowlist_write_cert(allowlist_t *self, zcert_t *cert)
{
    static const uint8_t no_secret[32];
    const char *name = certs_name(cert);
    zcert_t *pub = zcert_new_from(zcert_public_key(cert), no_secret);
    if (pub == NULL)
        return SY_ENOMEM;
    zcert_set_meta(pub, "name", "%s", name);
    zcert_set_meta(pub, "role", "%s", certs_role_name(certs_role(cert)));
    char tmp[4096], file[4096];
    snprintf(tmp, sizeof tmp, "%s/.%s%s.tmp", self->path, name, CERTS_PUBLIC_EXT);
    snprintf(file, sizeof file, "%s/%s%s", self->path, name, CERTS_PUBLIC_EXT);
    int rc = zcert_save_public(pub, tmp) == 0 ? 0 : SY_EIO;
    zcert_destroy(&pub);
    if (rc == 0 && rename(tmp, file) != 0)
        rc = SY_EIO;
    if (rc != 0)
        unlink(tmp);
    return rc;
}

int allowlist_enroll(allowlist_t *self, const char *cert_path, char *err, size_t errlen)
{
    if (self == NULL || cert_path == NULL)
        return SY_EINVAL;
    if (!self->is_dir) {
        return syerr_fmt(err, errlen, SY_EINVAL,
                         "%s: the allow-list is a single file; enroll needs a directory",
                         self->path);
    }
    zcert_t *cert = NULL;
    int rc = certs_load(cert_path, &cert, err, errlen);
    if (rc != 0)
        return rc;
    rc = allowlist_load(self);                 /* decide on the current state */
    const char *name = certs_name(cert);
    const char *key = zcert_public_txt(cert);
    const allowlist_entry_t *by_name = allowlist_lookup_name(self, name);
    const allowlist_entry_t *by_key = allowlist_lookup(self, key);
    if (rc != 0)
        allowlist_err(err, errlen, "%s: cannot read the allow-list", self->path);
    else if (by_name && strcmp(by_name->key, key) == 0 && by_name->role == certs_role(cert))
        rc = 0;                                 /* already enrolled as is */
    else if (by_name) {
        allowlist_err(err, errlen, "%s is already enrolled with another key or role; "
                      "revoke it first", name);
        rc = SY_EDUPLICATE;
    } else if (by_key) {
        allowlist_err(err, errlen, "this key is already enrolled as %s", by_key->name);
        rc = SY_EDUPLICATE;
    } else {
        zhash_t *revoked = allowlist_revoked_copy(self);
        if (revoked == NULL)
            rc = SY_ENOMEM;
        else if (zhash_lookup(revoked, key)) {
            zhash_delete(revoked, key);
            rc = allowlist_write_revoked(self, revoked);
        }
        zhash_destroy(&revoked);
        if (rc == 0)
            rc = allowlist_write_cert(self, cert);
        if (rc == 0)
            rc = allowlist_load(self);
        if (rc != 0)
            allowlist_err(err, errlen, "%s: cannot write to the allow-list: %s",
                          self->path, strerror(errno));
        else
            sylog_info("allowlist: enrolled %s as %s (key %.8s...)", name,
                       certs_role_name(certs_role(cert)), key);
    }
    certs_destroy(&cert);
    return rc;
}

int allowlist_revoke(allowlist_t *self, const char *name, char *err, size_t errlen)
{
    if (self == NULL || name == NULL)
        return SY_EINVAL;
    if (!self->is_dir) {
        return syerr_fmt(err, errlen, SY_EINVAL,
                         "%s: the allow-list is a single file; revoke needs a directory",
                         self->path);
    }
    int rc = allowlist_load(self);
    if (rc != 0) {
        allowlist_err(err, errlen, "%s: cannot read the allow-list", self->path);
        return rc;
    }
    const allowlist_entry_t *e = allowlist_lookup_name(self, name);
    if (e == NULL)
        return syerr_fmt(err, errlen, SY_ENOTFOUND, "%s is not enrolled", name);
    zhash_t *revoked = allowlist_revoked_copy(self);
    if (revoked == NULL)
        return SY_ENOMEM;
    zhash_update(revoked, e->key, (void *) e->name);
    /* the key goes on the revoked list before the file goes: a crash in
       between leaves it refused, never admitted */
    rc = allowlist_write_revoked(self, revoked);
    zhash_destroy(&revoked);
    char file[4096];
    snprintf(file, sizeof file, "%s/%s%s", self->path, name, CERTS_PUBLIC_EXT);
    if (rc == 0 && unlink(file) != 0 && errno != ENOENT)
        rc = SY_EIO;
    if (rc != 0) {
        allowlist_err(err, errlen, "%s: cannot write to the allow-list: %s",
                      self->path, strerror(errno));
        return rc;
    }
    sylog_info("allowlist: revoked %s", name);
    return allowlist_load(self);
}
