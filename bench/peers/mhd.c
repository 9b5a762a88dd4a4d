/*
 * bench/peers/mhd.c: libmicrohttpd hello server for bench/peers/run, in its epoll +
 * thread-pool mode, answering every request with the same 13-byte response.
 *
 *   mhd [PORT] [POOL]      listens on 127.0.0.1:PORT (0 picks one), POOL threads
 *                          (default 2); prints "listening on port N"; runs until killed.
 */
#include <microhttpd.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct MHD_Response *resp;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **ptr)
{
    (void)cls; (void)url; (void)method; (void)version; (void)upload_data;
    static int first;
    /* The first call sees only the head: answering then would make libmicrohttpd add
     * "Connection: close" (the body is not read yet). Answer on the second call. */
    if (*ptr != &first) {
        *ptr = &first;
        return MHD_YES;
    }
    *upload_size = 0;
    return MHD_queue_response(c, MHD_HTTP_OK, resp);
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 0;
    unsigned pool = argc > 2 ? (unsigned)atoi(argv[2]) : 2;
    resp = MHD_create_response_from_buffer(13, (void *)"Hello world.\n", MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL,
        on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_THREAD_POOL_SIZE, pool, MHD_OPTION_CONNECTION_LIMIT, 30000u,
        MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "mhd: cannot start on port %d\n", port);
        return 1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("listening on port %d\n", di ? di->port : port);
    fflush(stdout);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    int sig;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    return 0;
}
