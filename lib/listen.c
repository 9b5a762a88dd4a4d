/*
 * lib/listen.c: listening sockets: address parsing, name resolution, socket creation,
 * descriptors handed over by the caller or by systemd, and printing socket addresses.
 *
 * The server (lib/server.c) only registers what this file opens: every descriptor
 * returned here is a non-blocking, close-on-exec SOCK_STREAM socket in the listening
 * state.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"

#define GH__BACKLOG 4096

void gh__format_addr(const struct sockaddr_storage *ss, socklen_t len, char *out, size_t n)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        snprintf(out, n, "%s:%d", ip, ntohs(a->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)ss;
        /* An IPv4 client of a dual-stack socket arrives as ::ffff:a.b.c.d; print it
         * as the IPv4 address it is, as Go does. */
        if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
            inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], ip, sizeof ip);
            snprintf(out, n, "%s:%d", ip, ntohs(a->sin6_port));
        } else {
            inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
            snprintf(out, n, "[%s]:%d", ip, ntohs(a->sin6_port));
        }
    } else if (ss->ss_family == AF_UNIX) {
        /* A client of a Unix socket is usually unnamed: Go reports "@" then. A named
         * one gets its path, an abstract one "@name". */
        const struct sockaddr_un *a = (const void *)ss;
        size_t plen = len > offsetof(struct sockaddr_un, sun_path)
                          ? (size_t)len - offsetof(struct sockaddr_un, sun_path)
                          : 0;
        if (plen > sizeof a->sun_path)
            plen = sizeof a->sun_path;
        if (plen == 0 || (plen == 1 && a->sun_path[0] == 0))
            snprintf(out, n, "@");
        else if (a->sun_path[0] == 0)
            snprintf(out, n, "@%.*s", (int)strnlen(a->sun_path + 1, plen - 1), a->sun_path + 1);
        else
            snprintf(out, n, "%.*s", (int)strnlen(a->sun_path, plen), a->sun_path);
    } else {
        snprintf(out, n, "unknown");
    }
}

int gh__listen_port(int fd)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return -errno;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return 0; /* a Unix socket has no port */
}

/* socket + options + bind + listen; the descriptor, or a negative code. */
static int open_bound(const struct sockaddr *sa, socklen_t salen, int v6only)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (sa->sa_family != AF_UNIX)
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (sa->sa_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
    if (bind(fd, sa, salen) < 0 || listen(fd, GH__BACKLOG) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

/* A Unix domain socket at path ("@name": Linux's abstract namespace). A file already at
 * path is not removed (EADDRINUSE), as Go does: it may belong to a live server. */
static int open_unix(const char *path, const char **why)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof sun.sun_path) {
        *why = "unix socket path empty or longer than 107 bytes";
        return GH_EADDRESS;
    }
    memcpy(sun.sun_path, path, len);
    if (path[0] == '@')
        sun.sun_path[0] = 0;
    socklen_t sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] != '@'));
    int fd = open_bound((struct sockaddr *)&sun, sl, 0);
    if (fd < 0)
        *why = fd == GH_EADDRINUSE ? "unix socket path exists (remove the stale socket first)"
                                   : "cannot bind the unix socket";
    return fd;
}

int gh__listen_open(const char *host, int port, int *out, const char **why)
{
    static const char *dummy;
    if (!why)
        why = &dummy;
    *why = NULL;
    if (port < 0 || port > 65535) {
        *why = "port out of range 0..65535";
        return GH_EADDRESS;
    }
    if (host && strcmp(host, "*") == 0) {
        /* Go rejects it too ("lookup *: no such host"); say what to write instead. */
        *why = "'*' is not a host: use \":port\" for every address";
        return GH_EADDRESS;
    }
    if (!host || !*host) {
        /* Every address, both families, as Go's ":port": one IPv6 socket that also
         * takes IPv4 (IPV6_V6ONLY off), or IPv4 alone where the host has no IPv6. */
        struct sockaddr_in6 a6;
        memset(&a6, 0, sizeof a6);
        a6.sin6_family = AF_INET6;
        a6.sin6_addr = in6addr_any;
        a6.sin6_port = htons((uint16_t)port);
        int fd = open_bound((struct sockaddr *)&a6, sizeof a6, 0);
        if (fd >= 0 || (fd != -EAFNOSUPPORT && fd != -EADDRNOTAVAIL)) {
            if (fd < 0)
                *why = "cannot bind [::] (dual stack)";
            *out = fd;
            return fd < 0 ? fd : 0;
        }
        struct sockaddr_in a4;
        memset(&a4, 0, sizeof a4);
        a4.sin_family = AF_INET;
        a4.sin_addr.s_addr = htonl(INADDR_ANY);
        a4.sin_port = htons((uint16_t)port);
        fd = open_bound((struct sockaddr *)&a4, sizeof a4, 0);
        if (fd < 0)
            *why = "cannot bind 0.0.0.0";
        *out = fd;
        return fd < 0 ? fd : 0;
    }
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char pbuf[8];
    snprintf(pbuf, sizeof pbuf, "%d", port);
    int g = getaddrinfo(host, pbuf, &hints, &ai);
    if (g != 0 || !ai) {
        *why = g == EAI_SYSTEM ? "name resolution failed" : gai_strerror(g);
        return g == EAI_MEMORY ? GH_ENOMEM : GH_ENOHOST;
    }
    /* A name with several addresses listens on one, IPv4 first, as Go's Listen does
     * ("localhost" is 127.0.0.1, not ::1 as well). */
    struct addrinfo *pick = ai;
    for (struct addrinfo *p = ai; p; p = p->ai_next)
        if (p->ai_family == AF_INET) {
            pick = p;
            break;
        }
    int fd = open_bound(pick->ai_addr, pick->ai_addrlen, 1);
    freeaddrinfo(ai);
    if (fd < 0)
        *why = fd == GH_EADDRINUSE ? "address already in use" : "cannot bind the address";
    *out = fd;
    return fd < 0 ? fd : 0;
}

int gh__listen_open_addr(const char *addr, int *out, const char **why)
{
    static const char *dummy;
    if (!why)
        why = &dummy;
    *why = NULL;
    if (!addr) {
        *why = "no address";
        return GH_EADDRESS;
    }
    if (strncmp(addr, "unix:", 5) == 0) {
        int fd = open_unix(addr + 5, why);
        *out = fd;
        return fd < 0 ? fd : 0;
    }
    char host[256];
    const char *colon;
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (!end || end[1] != ':' || (size_t)(end - addr - 1) >= sizeof host) {
            *why = "want [v6]:port";
            return GH_EADDRESS;
        }
        memcpy(host, addr + 1, (size_t)(end - addr - 1));
        host[end - addr - 1] = 0;
        colon = end + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon || (size_t)(colon - addr) >= sizeof host) {
            *why = "want host:port, [v6]:port, :port or unix:/path";
            return GH_EADDRESS;
        }
        if (memchr(addr, ':', (size_t)(colon - addr))) {
            *why = "an IPv6 address needs brackets: [v6]:port";
            return GH_EADDRESS;
        }
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = 0;
    }
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || colon[1] == '-' || colon[1] == '+' || errno) {
        *why = "the port is not a number";
        return GH_EADDRESS;
    }
    return gh__listen_open(host, (int)port, out, why);
}

int gh__listen_adopt(int fd, const char **why)
{
    static const char *dummy;
    if (!why)
        why = &dummy;
    int type = 0, acc = 0;
    socklen_t len = sizeof type;
    if (fd < 0 || fcntl(fd, F_GETFD) < 0) {
        *why = "not an open descriptor";
        return GH_EBADF;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM) {
        *why = "not a stream socket";
        return GH_EINVAL;
    }
    len = sizeof acc;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) < 0 || !acc) {
        *why = "the socket is not listening";
        return GH_EINVAL;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0))
        return -errno;
    int fdf = fcntl(fd, F_GETFD);
    if (fdf >= 0 && !(fdf & FD_CLOEXEC))
        (void)fcntl(fd, F_SETFD, fdf | FD_CLOEXEC);
    return 0;
}

int gh__listen_systemd(int *fds, int max, const char **why)
{
    static const char *dummy;
    if (!why)
        why = &dummy;
    *why = NULL;
    /* sd_listen_fds(3): the descriptors start at 3 and are ours only when LISTEN_PID
     * names this process (a child must not take its parent's). */
    const char *spid = getenv("LISTEN_PID"), *sn = getenv("LISTEN_FDS");
    if (!spid || !sn) {
        *why = "LISTEN_PID/LISTEN_FDS not set (not started by socket activation)";
        return GH_ENOENT;
    }
    char *end;
    errno = 0;
    long pid = strtol(spid, &end, 10);
    if (*end || errno || pid != (long)getpid()) {
        *why = "LISTEN_PID is not this process";
        return GH_ENOENT;
    }
    long n = strtol(sn, &end, 10);
    if (*end || errno || n < 0 || n > 4096) {
        *why = "LISTEN_FDS is not a count";
        return GH_EINVAL;
    }
    if (n > max) {
        *why = "more sockets than listeners a server keeps";
        return GH_EBUSY;
    }
    for (int i = 0; i < (int)n; i++) {
        int rc = gh__listen_adopt(3 + i, why);
        if (rc < 0)
            return rc;
        fds[i] = 3 + i;
    }
    /* Children must not see them as theirs (sd_listen_fds with unset_environment). */
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return (int)n;
}

void gh__listen_close(int fd, int unlink_path)
{
    if (unlink_path) {
        /* Remove the socket file the server created, as Go's UnixListener.Close does;
         * never one it was handed (listen_fd, systemd). */
        struct sockaddr_un sun;
        memset(&sun, 0, sizeof sun);
        socklen_t sl = sizeof sun;
        if (getsockname(fd, (struct sockaddr *)&sun, &sl) == 0 && sun.sun_family == AF_UNIX &&
            sl > offsetof(struct sockaddr_un, sun_path) + 1 && sun.sun_path[0] != 0) {
            sun.sun_path[sizeof sun.sun_path - 1] = 0;
            (void)unlink(sun.sun_path);
        }
    }
    (void)close(fd);
}
