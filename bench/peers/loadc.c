/*
 * bench/peers/loadc.c: the load client for what wrk cannot do. Loopback only, bounded
 * in time, one thread.
 *
 *   loadc cycle PORT PATH SECONDS CONC
 *       new connection per request: connect, "GET PATH", wait for the server to close
 *       (the hijack-and-close path), CONC connections in flight (epoll); prints
 *       "requests N errors E seconds S rps R"
 *   loadc idle PORT PATH N SECONDS
 *       open N keep-alive connections, one request and its response on each, then
 *       hold them; prints "ready N" (N < requested: a failure, on stderr) and holds
 *       them until killed or SECONDS pass (the whole run is bounded by SECONDS)
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/resource.h>

#include "../../examples/httpc.h"

static int port;
static char req[256];
static size_t req_len;

typedef struct slot {
    int fd;
    int sent;
} slot_t;

static int start(int ep, slot_t *s)
{
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    s->sent = 0;
    if (s->fd < 0)
        return -1;
    int one = 1;
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s->fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
        close(s->fd);
        return -1;
    }
    struct epoll_event ev = {EPOLLOUT | EPOLLIN | EPOLLRDHUP, {.ptr = s}};
    return epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
}

static int cycle(double seconds, int conc)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    slot_t *slots = calloc((size_t)conc, sizeof *slots);
    unsigned long done = 0, errors = 0;
    for (int i = 0; i < conc; i++)
        if (start(ep, &slots[i]) < 0)
            errors++;
    int64_t t0 = hc_now(), end = t0 + (int64_t)(seconds * 1e9);
    struct epoll_event evs[256];
    int64_t now = t0;
    while ((now = hc_now()) < end) {
        int n = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            slot_t *s = evs[i].data.ptr;
            if (!s->sent && (evs[i].events & EPOLLOUT)) {
                if (hc_send_all(s->fd, req, req_len) < 0)
                    goto fail;
                s->sent = 1;
                struct epoll_event ev = {EPOLLIN | EPOLLRDHUP, {.ptr = s}};
                epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
                continue;
            }
            if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                char buf[512];
                ssize_t k = recv(s->fd, buf, sizeof buf, 0);
                if (k > 0 || (k < 0 && errno == EAGAIN))
                    continue; /* a response? drain until the close */
                if (k == 0 || (k < 0 && errno == ECONNRESET)) {
                    if (!s->sent)
                        goto fail;
                    done++;
                    close(s->fd);
                    if (start(ep, s) < 0)
                        errors++;
                    continue;
                }
            fail:
                errors++;
                close(s->fd);
                if (start(ep, s) < 0)
                    errors++;
            }
        }
    }
    double el = (double)(now - t0) / 1e9;
    printf("requests %lu errors %lu seconds %.2f rps %.0f\n", done, errors, el, done / el);
    return 0;
}

static int idle(int n, double seconds)
{
    int64_t end = hc_now() + (int64_t)(seconds * 1e9);
    int *fds = calloc((size_t)n, sizeof *fds);
    char buf[2048];
    int ok = 0;
    for (int i = 0; i < n && hc_now() < end; i++) {
        fds[i] = hc_connect(port);
        if (fds[i] < 0) {
            fprintf(stderr, "loadc: connect %d: %s\n", i, strerror(errno));
            break;
        }
        if (hc_send_all(fds[i], req, req_len) < 0 || hc_read_response(fds[i], buf, sizeof buf, 5000) != 200) {
            fprintf(stderr, "loadc: request on connection %d failed\n", i);
            close(fds[i]);
            break;
        }
        ok++;
    }
    printf("ready %d\n", ok);
    fflush(stdout);
    /* Hold until killed or the time is up. */
    while (hc_now() < end) {
        int64_t left = (end - hc_now()) / 1000000;
        poll(NULL, 0, (int)(left > 1000 ? 1000 : left + 1));
    }
    for (int i = 0; i < ok; i++)
        close(fds[i]);
    return ok == n ? 0 : 1;
}

int main(int argc, char **argv)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (argc == 6 && !strcmp(argv[1], "cycle")) {
        port = atoi(argv[2]);
        req_len = (size_t)snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: bench\r\n\r\n", argv[3]);
        return cycle(strtod(argv[4], NULL), atoi(argv[5]));
    }
    if (argc == 6 && !strcmp(argv[1], "idle")) {
        port = atoi(argv[2]);
        req_len = (size_t)snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: bench\r\n\r\n", argv[3]);
        return idle(atoi(argv[4]), strtod(argv[5], NULL));
    }
    fprintf(stderr, "usage: loadc cycle PORT PATH SECONDS CONC | loadc idle PORT PATH N SECONDS\n");
    return 2;
}
