/* gc/fd.c: reference-counted descriptors with deadlines (gchttp/fd.h), gh_now(), and the
 * bufio adapters over them (gchttp/bufio.h). */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "gchttp/bufio.h"
#include "gchttp/fd.h"

gh_time_t gh_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (gh_time_t)ts.tv_sec * GH_SEC + ts.tv_nsec;
}

/**
 * One OS descriptor, shared by the threads that use it.
 * Alloc:     gh_obj_new(&fd_type); no pointer fields, so the collector scans none of it.
 * Rooted by: its users (a conn, a test); every operation also holds it on its stack.
 * OS state:  `refs` counts the "open" reference (dropped by gh_fd_close) plus one per
 *            operation in flight; whoever drops the last one close()s `fd`. The
 *            finalizer only close()s a descriptor nobody closed (a leak, counted).
 * Threads:   any; all fields are accessed with __atomic builtins.
 */
struct gh_fd_s {
    int fd;             /*< the OS descriptor; -1 once really closed */
    uint16_t refs;      /*< open reference + operations in flight (a handful at most) */
    uint8_t closing;    /*< 1 once gh_fd_close ran: no new operation may start */
    uint8_t is_socket;  /*< decided once at gh_fd_new (SO_TYPE) */
    gh_time_t rdl, wdl; /*< absolute deadlines, 0 = none */
    /* 24 bytes: with the object header and the typed-allocation word, one 48-byte
     * block per descriptor. */
};

static unsigned long n_leaked;

/*
 * Backstop for a descriptor whose owner forgot gh_fd_close(). The object is unreachable,
 * so no operation can be in flight: close() is safe. Nothing else happens here: no
 * allocation, no locks, no user code (obj.h's finalizer rules).
 */
static void fd_finalize(void *obj)
{
    struct gh_fd_s *f = obj;
    int fd = __atomic_exchange_n(&f->fd, -1, __ATOMIC_ACQ_REL);
    if (fd >= 0) {
        (void)close(fd);
        __atomic_add_fetch(&n_leaked, 1, __ATOMIC_RELAXED);
    }
}

static gh_type_t fd_type = {
    .name = "gh_fd", .size = sizeof(struct gh_fd_s), .finalize = fd_finalize};

/* An accepted socket, already non-blocking (accept4 with SOCK_NONBLOCK): two system
 * calls fewer than gh_fd_new on the accept path. */
gh_fd_t *gh__fd_new_socket(int fd)
{
    gh_fd_t *f = gh_obj_new(&fd_type);
    if (!f)
        return NULL;
    f->is_socket = 1;
    f->refs = 1;
    __atomic_store_n(&f->fd, fd, __ATOMIC_RELEASE);
    return f;
}

gh_fd_t *gh_fd_new(int fd)
{
    if (fd < 0) {
        errno = EBADF;
        return NULL;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return NULL;
    gh_fd_t *f = gh_obj_new(&fd_type);
    if (!f) {
        errno = ENOMEM;
        return NULL;
    }
    /* Until fd is stored the backstop must find nothing to close: the object starts
     * zeroed, and 0 is a valid descriptor. On failure fd stays the caller's. */
    f->fd = -1;
    if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return NULL;
    int type;
    socklen_t len = sizeof type;
    f->is_socket = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
    f->refs = 1;
    __atomic_store_n(&f->fd, fd, __ATOMIC_RELEASE);
    return f;
}

int gh_fd_acquire(gh_fd_t *f)
{
    uint16_t r = __atomic_load_n(&f->refs, __ATOMIC_ACQUIRE);
    do {
        /* refs == 0 means the descriptor is already gone; never resurrect it. */
        if (r == 0 || r == UINT16_MAX || __atomic_load_n(&f->closing, __ATOMIC_ACQUIRE))
            return GH_EBADF;
    } while (
        !__atomic_compare_exchange_n(&f->refs, &r, (uint16_t)(r + 1), 1, __ATOMIC_ACQ_REL,
                                 __ATOMIC_ACQUIRE));
    return 0;
}

void gh_fd_release(gh_fd_t *f)
{
    if (__atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        int fd = __atomic_exchange_n(&f->fd, -1, __ATOMIC_ACQ_REL);
        if (fd >= 0)
            (void)close(fd);
    }
}

int gh_fd_close(gh_fd_t *f)
{
    if (__atomic_exchange_n(&f->closing, 1, __ATOMIC_ACQ_REL))
        return GH_EBADF;
    /* The open reference is still held, so fd is valid here. shutdown() wakes threads
     * blocked in poll/recv on it (they see POLLHUP, then `closing`); close() alone would
     * not, and would free the number for reuse under them. With no operation in flight
     * (ours is the only reference) there is nobody to wake: the common case, one system
     * call saved. A thread that acquires after this look still sees `closing` within one
     * poll slice (fd_wait). */
    if (f->is_socket && __atomic_load_n(&f->refs, __ATOMIC_ACQUIRE) > 1)
        (void)shutdown(__atomic_load_n(&f->fd, __ATOMIC_ACQUIRE), SHUT_RDWR);
    gh_fd_release(f);
    return 0;
}

int gh_fd_shutdown_write(gh_fd_t *f)
{
    int rc = gh_fd_acquire(f);
    if (rc < 0)
        return rc;
    rc = shutdown(__atomic_load_n(&f->fd, __ATOMIC_ACQUIRE), SHUT_WR) < 0 ? -errno : 0;
    gh_fd_release(f);
    return rc;
}

int gh_fd_is_closed(const gh_fd_t *f)
{
    return __atomic_load_n(&f->closing, __ATOMIC_ACQUIRE);
}

int gh_fd_fileno(const gh_fd_t *f)
{
    if (__atomic_load_n(&f->closing, __ATOMIC_ACQUIRE))
        return -1;
    return __atomic_load_n(&f->fd, __ATOMIC_ACQUIRE);
}

void gh_fd_set_read_deadline(gh_fd_t *f, gh_time_t at)
{
    __atomic_store_n(&f->rdl, at, __ATOMIC_RELAXED);
}

void gh_fd_set_write_deadline(gh_fd_t *f, gh_time_t at)
{
    __atomic_store_n(&f->wdl, at, __ATOMIC_RELAXED);
}

gh_time_t gh_fd_read_deadline(const gh_fd_t *f)
{
    return __atomic_load_n(&f->rdl, __ATOMIC_RELAXED);
}

gh_time_t gh_fd_write_deadline(const gh_fd_t *f)
{
    return __atomic_load_n(&f->wdl, __ATOMIC_RELAXED);
}

unsigned long gh_fd_leaked(void)
{
    return __atomic_load_n(&n_leaked, __ATOMIC_RELAXED);
}

/* See gc/internal.h. lib/server.c stores it (always the same function) when it makes a
 * server; atomic because a later server may store it while another one runs. */
void (*gh__block_hook)(void);

/*
 * Wait until fd is ready for `events`, the deadline passes or the descriptor is closed.
 * poll() runs in slices of at most GH_FD_POLL_SLICE_MS so that `closing` and a changed
 * deadline are seen even on descriptors shutdown() cannot wake (pipes, files). EINTR is
 * routine: bdwgc's stop-the-world signals interrupt poll on every collection.
 * Caller holds an operation reference. Returns 0 (try the syscall again) or a code.
 */
static int fd_wait(gh_fd_t *f, short events, const gh_time_t *deadline)
{
    /* About to block: the server hands its poller's role away first if this thread
     * holds it (lib/loop.c), rather than after its monitor's next tick. */
    void (*hook)(void) = __atomic_load_n(&gh__block_hook, __ATOMIC_ACQUIRE);
    if (hook)
        hook();
    for (;;) {
        if (__atomic_load_n(&f->closing, __ATOMIC_ACQUIRE))
            return GH_EBADF;
        int slice = GH_FD_POLL_SLICE_MS;
        gh_time_t dl = __atomic_load_n(deadline, __ATOMIC_RELAXED);
        if (dl) {
            gh_time_t left = dl - gh_now();
            if (left <= 0)
                return GH_ETIMEDOUT;
            gh_time_t ms = (left + GH_MSEC - 1) / GH_MSEC;
            if (ms < slice)
                slice = (int)ms;
        }
        struct pollfd pfd = {.fd = f->fd, .events = events, .revents = 0};
        int n = poll(&pfd, 1, slice);
        if (n > 0)
            return 0; /* ready, or HUP/ERR: the syscall will report which */
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

/* A read that returned 0 or failed after gh_fd_close is the effect of our own
 * shutdown(), not the peer's: report the close. */
static ssize_t fd_read(gh_fd_t *f, void *buf, size_t n, int wait)
{
    ssize_t rc = gh_fd_acquire(f);
    if (rc < 0)
        return rc;
    for (;;) {
        ssize_t r = read(f->fd, buf, n);
        if (r > 0) {
            rc = r;
            break;
        }
        if (__atomic_load_n(&f->closing, __ATOMIC_ACQUIRE)) {
            rc = GH_EBADF;
            break;
        }
        if (r == 0) {
            rc = 0;
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            rc = -errno;
            break;
        }
        if (!wait) {
            rc = GH_EAGAIN;
            break;
        }
        int w = fd_wait(f, POLLIN, &f->rdl);
        if (w < 0) {
            rc = w;
            break;
        }
    }
    gh_fd_release(f);
    return rc;
}

ssize_t gh_fd_read(gh_fd_t *f, void *buf, size_t n)
{
    return fd_read(f, buf, n, 1);
}

ssize_t gh_fd_read_nowait(gh_fd_t *f, void *buf, size_t n)
{
    return fd_read(f, buf, n, 0);
}

/* One vectored write attempt. Sockets go through sendmsg(MSG_NOSIGNAL) so that a
 * vanished peer is EPIPE rather than a process-killing SIGPIPE. */
static ssize_t fd_writev_once(gh_fd_t *f, struct iovec *iov, int iovcnt)
{
    if (f->is_socket) {
        struct msghdr m;
        memset(&m, 0, sizeof m);
        m.msg_iov = iov;
        m.msg_iovlen = (size_t)iovcnt;
        return sendmsg(f->fd, &m, MSG_NOSIGNAL);
    }
    if (iovcnt == 1)
        return write(f->fd, iov[0].iov_base, iov[0].iov_len);
    return writev(f->fd, iov, iovcnt);
}

/* Write every byte of iov[0..iovcnt), looping over short writes and EAGAIN. */
static ssize_t fd_write_all(gh_fd_t *f, struct iovec *iov, int iovcnt)
{
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    ssize_t rc = gh_fd_acquire(f);
    if (rc < 0)
        return rc;
    size_t done = 0;
    while (done < total) {
        if (__atomic_load_n(&f->closing, __ATOMIC_ACQUIRE)) {
            rc = GH_EBADF;
            goto out;
        }
        while (iovcnt > 0 && iov[0].iov_len == 0) {
            iov++;
            iovcnt--;
        }
        ssize_t w = fd_writev_once(f, iov, iovcnt);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                rc = __atomic_load_n(&f->closing, __ATOMIC_ACQUIRE) ? GH_EBADF : -errno;
                goto out;
            }
            int r = fd_wait(f, POLLOUT, &f->wdl);
            if (r < 0) {
                rc = r;
                goto out;
            }
            continue;
        }
        done += (size_t)w;
        for (size_t left = (size_t)w; left > 0 && iovcnt > 0;) {
            size_t k = left < iov[0].iov_len ? left : iov[0].iov_len;
            iov[0].iov_base = (char *)iov[0].iov_base + k;
            iov[0].iov_len -= k;
            left -= k;
            if (iov[0].iov_len == 0) {
                iov++;
                iovcnt--;
            }
        }
    }
    rc = (ssize_t)total;
out:
    gh_fd_release(f);
    return rc;
}

ssize_t gh_fd_write(gh_fd_t *f, const void *buf, size_t n)
{
    struct iovec iov[1] = {{(void *)buf, n}};
    return fd_write_all(f, iov, 1);
}

/* sendfile(2) from in_fd at *off to the socket, n bytes, with the write deadline:
 * short transfers loop, EAGAIN waits in fd_wait like a write, EINTR retries. The
 * kernel copies page-cache pages to the socket without a trip through user space.
 * Returns n, GH_EOF when the file ended first (it shrank: *off tells how far it got),
 * or a negative code. */
ssize_t gh__fd_sendfile(gh_fd_t *f, int in_fd, int64_t *off, size_t n)
{
    ssize_t rc = gh_fd_acquire(f);
    if (rc < 0)
        return rc;
    /* sendfile has no MSG_NOSIGNAL: a peer that went away would raise SIGPIPE, whose
     * default action kills the process. Block it on this thread for the call and
     * take the one it raised off the thread's pending set afterwards. */
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    size_t done = 0;
    while (done < n) {
        if (__atomic_load_n(&f->closing, __ATOMIC_ACQUIRE)) {
            rc = GH_EBADF;
            goto out;
        }
        size_t chunk = n - done;
        if (chunk > ((size_t)1 << 30))
            chunk = (size_t)1 << 30;
        off_t o = (off_t)*off;
        ssize_t w = sendfile(f->fd, in_fd, &o, chunk);
        if (w > 0) {
            done += (size_t)w;
            *off = (int64_t)o;
            continue;
        }
        if (w == 0) {
            rc = GH_EOF;
            goto out;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            rc = __atomic_load_n(&f->closing, __ATOMIC_ACQUIRE) ? GH_EBADF : -errno;
            goto out;
        }
        int r = fd_wait(f, POLLOUT, &f->wdl);
        if (r < 0) {
            rc = r;
            goto out;
        }
    }
    rc = (ssize_t)n;
out:
    if (rc == GH_EPIPE) {
        static const struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    if (!sigismember(&old, SIGPIPE))
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    gh_fd_release(f);
    return rc;
}

ssize_t gh_fd_write2(gh_fd_t *f, const void *b1, size_t n1, const void *b2, size_t n2)
{
    struct iovec iov[2] = {{(void *)b1, n1}, {(void *)b2, n2}};
    return fd_write_all(f, iov, 2);
}

ssize_t gh_fd_read_fn(void *fd, void *buf, size_t n)
{
    return gh_fd_read(fd, buf, n);
}

ssize_t gh_fd_write_fn(void *fd, const void *buf, size_t n)
{
    return gh_fd_write(fd, buf, n);
}
