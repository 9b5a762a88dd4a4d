/*
 * examples/ex-common.h: what every example program shares: starting its server on
 * --listen, and a clean shutdown on SIGINT/SIGTERM.
 *
 * Signals arrive through a self-pipe. Blocking them and calling sigwait is not enough
 * under bdwgc: a thread stopped for a collection waits in sigsuspend with SIGINT and
 * SIGTERM unblocked (so that a stuck process can be killed), and the default action
 * would then end the process instead of a clean shutdown (seen as exit 143 in about 1
 * of 20 runs).
 */
#ifndef GH_EX_COMMON_H
#define GH_EX_COMMON_H

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <gchttp.h>

static int sig_pipe[2] = {-1, -1};

static inline void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    if (write(sig_pipe[1], &b, 1) < 0) {
        /* full: a signal is pending already */
    }
    errno = saved;
}

/* Install on_signal for each signal in sigs (0-terminated). */
static inline int signals_init(const int *sigs)
{
    if (pipe(sig_pipe) < 0)
        return -1;
    fcntl(sig_pipe[0], F_SETFD, FD_CLOEXEC);
    fcntl(sig_pipe[1], F_SETFD, FD_CLOEXEC);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (; *sigs; sigs++)
        if (sigaction(*sigs, &sa, NULL) < 0)
            return -1;
    return 0;
}

/* The next signal received (blocks). */
static inline int signal_next(void)
{
    for (;;) {
        unsigned char b;
        ssize_t k = read(sig_pipe[0], &b, 1);
        if (k == 1)
            return b;
        if (k < 0 && errno != EINTR)
            return SIGTERM;
    }
}

/* Catch SIGINT, SIGTERM and the signals in extra (0-terminated, may be NULL), then
 * start a server with cfg on listen ("HOST:PORT") and print "listening on port N" on
 * stdout. Returns the server, or NULL after printing why on stderr. */
static inline gh_server_t *ex_start(const char *prog, gh_server_config_t *cfg, const char *listen,
                                    const int *extra)
{
    int sigs[8] = {SIGINT, SIGTERM, 0};
    for (int i = 2; extra && *extra && i < 7; i++)
        sigs[i] = *extra++;
    if (signals_init(sigs) < 0) {
        fprintf(stderr, "%s: signals: %s\n", prog, strerror(errno));
        return NULL;
    }
    gh_gc_init();
    gh_server_t *srv = NULL;
    int rc = gh_server_new(&srv, cfg);
    if (rc == 0)
        rc = gh_server_listen_addr(srv, listen);
    if (rc == 0)
        rc = gh_server_start(srv);
    if (rc < 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, listen, gh_strerror(rc));
        return NULL;
    }
    printf("listening on port %d\n", gh_server_port(srv, 0));
    fflush(stdout);
    return srv;
}

#endif
