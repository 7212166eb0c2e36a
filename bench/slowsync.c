/*  slowsync.c -- slowsync.so: a slow-flush disk for the durable benchmark,
 *  emulated by LD_PRELOAD.
 *
 *  Why: on the benchmark VM a durable flush costs ~0.3 ms, while a laptop
 *  SSD or a cloud disk takes 1-10 ms or more (DESIGN.md).  Where the
 *  flush is cheap, raw LMDB at a large batch is nearly free and every
 *  system is measured on its CPU alone; where it is dear, the number of
 *  flushes per message decides.  bench/run.sh measures both, side by side.
 *
 *  What: every call that makes data durable first does the real call,
 *  then sleeps SY_SLOWSYNC_US microseconds (read once; unset, 0 or bad:
 *  no delay, the shim is a plain pass-through).  The calls are the ones
 *  the measured programs really make (checked with strace -f -c):
 *    fsync, fdatasync      LMDB's data flush, beanstalkd's binlog flush;
 *    write, pwrite(64)     on a descriptor opened with O_DSYNC or O_SYNC
 *                          (fcntl F_GETFL): LMDB writes its meta page
 *                          through such a second descriptor, so each LMDB
 *                          commit is two flushes, as on a real disk;
 *    msync with MS_SYNC    LMDB with MDB_WRITEMAP (not used by the store,
 *                          wrapped so such a build cannot dodge the delay).
 *  Not wrapped: sync_file_range, writev and pwritev (none of the three
 *  programs makes them on a synchronous descriptor), sync/syncfs.
 *
 *  Why it is fair: the same delay is added to the same kind of call in
 *  sy-broker, sy-bench-lmdb and beanstalkd; a sleeping thread uses no CPU,
 *  like one waiting for a disk.  It models a disk whose flush has a fixed
 *  latency and no queueing: calls from several threads overlap.
 *
 *  The resolved functions and the delay are the shim's only state: a
 *  preloaded library has no main to own them.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

typedef int (*slowsync_fd_fn)(int);
typedef int (*slowsync_msync_fn)(void *, size_t, int);
typedef ssize_t (*slowsync_write_fn)(int, const void *, size_t);
typedef ssize_t (*slowsync_pwrite_fn)(int, const void *, size_t, off_t);

static struct {
    slowsync_fd_fn     fsync;
    slowsync_fd_fn     fdatasync;
    slowsync_msync_fn  msync;
    slowsync_write_fn  write;
    slowsync_pwrite_fn pwrite;
    slowsync_pwrite_fn pwrite64;
    long               delay_us;
} slowsync;

static pthread_once_t slowsync_once = PTHREAD_ONCE_INIT;

static void slowsync_init(void)
{
    slowsync.fsync = (slowsync_fd_fn)dlsym(RTLD_NEXT, "fsync");
    slowsync.fdatasync = (slowsync_fd_fn)dlsym(RTLD_NEXT, "fdatasync");
    slowsync.msync = (slowsync_msync_fn)dlsym(RTLD_NEXT, "msync");
    slowsync.write = (slowsync_write_fn)dlsym(RTLD_NEXT, "write");
    slowsync.pwrite = (slowsync_pwrite_fn)dlsym(RTLD_NEXT, "pwrite");
    slowsync.pwrite64 = (slowsync_pwrite_fn)dlsym(RTLD_NEXT, "pwrite64");
    if (!slowsync.pwrite64)
        slowsync.pwrite64 = slowsync.pwrite;
    const char *s = getenv("SY_SLOWSYNC_US");
    char *end = NULL;
    long us = s ? strtol(s, &end, 10) : 0;
    /* At most 10 s per flush: a typo must not hang a benchmark. */
    slowsync.delay_us = (s && end != s && *end == '\0' && us > 0
                         && us <= 10000000) ? us : 0;
}

static void slowsync_ready(void)
{
    pthread_once(&slowsync_once, slowsync_init);
}

/* The emulated flush latency; errno is kept for the caller. */
static void slowsync_delay(void)
{
    if (slowsync.delay_us <= 0)
        return;
    int saved = errno;
    struct timespec ts = { slowsync.delay_us / 1000000,
                           (slowsync.delay_us % 1000000) * 1000 };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    errno = saved;
}

/* True if writes to fd are synchronous (O_DSYNC is part of O_SYNC).
   Only asked when there is a delay to add: no extra syscall otherwise. */
static int slowsync_is_sync_fd(int fd)
{
    if (slowsync.delay_us <= 0)
        return 0;
    int saved = errno;
    int fl = fcntl(fd, F_GETFL);
    errno = saved;
    return fl >= 0 && (fl & O_DSYNC) == O_DSYNC;
}

int fsync(int fd)
{
    slowsync_ready();
    if (!slowsync.fsync) { errno = ENOSYS; return -1; }
    int rc = slowsync.fsync(fd);
    slowsync_delay();
    return rc;
}

int fdatasync(int fd)
{
    slowsync_ready();
    if (!slowsync.fdatasync) { errno = ENOSYS; return -1; }
    int rc = slowsync.fdatasync(fd);
    slowsync_delay();
    return rc;
}

int msync(void *addr, size_t len, int flags)
{
    slowsync_ready();
    if (!slowsync.msync) { errno = ENOSYS; return -1; }
    int rc = slowsync.msync(addr, len, flags);
    if (flags & MS_SYNC)
        slowsync_delay();
    return rc;
}

ssize_t write(int fd, const void *buf, size_t n)
{
    slowsync_ready();
    if (!slowsync.write) { errno = ENOSYS; return -1; }
    int sync = slowsync_is_sync_fd(fd);
    ssize_t rc = slowsync.write(fd, buf, n);
    if (sync)
        slowsync_delay();
    return rc;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    slowsync_ready();
    if (!slowsync.pwrite) { errno = ENOSYS; return -1; }
    int sync = slowsync_is_sync_fd(fd);
    ssize_t rc = slowsync.pwrite(fd, buf, n, off);
    if (sync)
        slowsync_delay();
    return rc;
}

/* The same function under its LFS name (one symbol on 64-bit glibc, but
   a program may be linked against either). */
ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
    slowsync_ready();
    if (!slowsync.pwrite64) { errno = ENOSYS; return -1; }
    int sync = slowsync_is_sync_fd(fd);
    ssize_t rc = slowsync.pwrite64(fd, buf, n, off);
    if (sync)
        slowsync_delay();
    return rc;
}
