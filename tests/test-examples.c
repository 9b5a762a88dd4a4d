/* tests/test-examples.c: the examples people run (examples/websocket-echo.c,
 * examples/longpoll.c), started as child processes and driven by real clients: the
 * Debian python3-websockets library (tests/ws/wsclient.py) and raw loopback sockets. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test-common.h"
#include "support/ws.h"

#define WAIT_MS 15000     /* bound of every wait for a child or a client */
#define PROMPT_MS 1000    /* "noticed at once": a disconnect is logged within this */
#define IDLE_CONNS 1000   /* WebSockets held idle for the retention figure */
#define MAX_RETAINED 2048 /* bytes per idle WebSocket the server may keep */

/* ---- child processes ----------------------------------------------------------------- */

/* A started program: its pid and pipes to its stdin, stdout and stderr. Plain memory;
 * no GC pointers. */
typedef struct child {
    pid_t pid;
    int in, out, err;
    char obuf[16384], ebuf[16384];
    size_t olen, elen;
    int oeof, eeof;
} child_t;

#define MAX_CHILDREN 8
static pid_t live_pids[MAX_CHILDREN];

/* A failing ck_assert ends the test process at once: kill whatever it started. (Each
 * child also has PR_SET_PDEATHSIG, in case this process is killed by the timeout.) */
static void kill_children(void)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (live_pids[i] > 0) {
            kill(live_pids[i], SIGKILL);
            waitpid(live_pids[i], NULL, 0);
            live_pids[i] = 0;
        }
}

static const char *py; /* python3 with websockets importable, set by test_suite */

static int child_start(child_t *c, char *const argv[])
{
    int pin[2], pout[2], perr[2];
    memset(c, 0, sizeof *c);
    if (pipe2(pin, O_CLOEXEC) < 0 || pipe2(pout, O_CLOEXEC) < 0 || pipe2(perr, O_CLOEXEC) < 0)
        return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        dup2(perr[1], 2);
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    c->pid = pid;
    c->in = pin[1];
    c->out = pout[0];
    c->err = perr[0];
    fcntl(c->out, F_SETFL, O_NONBLOCK);
    fcntl(c->err, F_SETFL, O_NONBLOCK);
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (live_pids[i] == 0) {
            live_pids[i] = pid;
            break;
        }
    return 0;
}

/* Read what the child wrote so far, waiting at most until deadline for something. */
static void child_pump(child_t *c, gh_time_t deadline)
{
    struct pollfd p[2] = {{c->oeof ? -1 : c->out, POLLIN, 0}, {c->eeof ? -1 : c->err, POLLIN, 0}};
    gh_time_t left = deadline - gh_now();
    int rc = poll(p, 2, left > 0 ? (int)(left / GH_MSEC) + 1 : 0);
    if (rc <= 0)
        return;
    if (p[0].revents && c->olen < sizeof c->obuf - 1) {
        ssize_t k = read(c->out, c->obuf + c->olen, sizeof c->obuf - 1 - c->olen);
        if (k > 0)
            c->olen += (size_t)k;
        else if (k == 0)
            c->oeof = 1;
        c->obuf[c->olen] = 0;
    }
    if (p[1].revents && c->elen < sizeof c->ebuf - 1) {
        ssize_t k = read(c->err, c->ebuf + c->elen, sizeof c->ebuf - 1 - c->elen);
        if (k > 0)
            c->elen += (size_t)k;
        else if (k == 0)
            c->eeof = 1;
        c->ebuf[c->elen] = 0;
    }
}

/* Wait until `needle` appears in the child's stdout (err = 0) or stderr (err = 1), at
 * or after offset `from`. Returns a pointer to it or NULL after ms. */
static const char *child_expect(child_t *c, int err, size_t from, const char *needle, int ms)
{
    gh_time_t deadline = gh_now() + (gh_time_t)ms * GH_MSEC;
    for (;;) {
        const char *buf = err ? c->ebuf : c->obuf;
        size_t len = err ? c->elen : c->olen;
        if (from <= len) {
            const char *hit = strstr(buf + from, needle);
            if (hit)
                return hit;
        }
        if (gh_now() >= deadline || (c->oeof && c->eeof))
            return NULL;
        child_pump(c, deadline);
    }
}

/* Wait for the child to exit (bounded); kill it if it does not. Returns its exit
 * status, 128 + signal, or -1 if it had to be killed. */
static int child_wait(child_t *c, int ms)
{
    int st, rc = -1;
    int pfd = (int)syscall(SYS_pidfd_open, c->pid, 0);
    gh_time_t deadline = gh_now() + (gh_time_t)ms * GH_MSEC;
    for (;;) {
        pid_t w = waitpid(c->pid, &st, WNOHANG);
        if (w == c->pid) {
            rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        gh_time_t left = deadline - gh_now();
        if (left <= 0) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &st, 0);
            break;
        }
        /* Keep draining the pipes so the child never blocks writing to them. */
        if (pfd >= 0) {
            struct pollfd p[3] = {{pfd, POLLIN, 0},
                                  {c->oeof ? -1 : c->out, POLLIN, 0},
                                  {c->eeof ? -1 : c->err, POLLIN, 0}};
            if (poll(p, 3, (int)(left / GH_MSEC) + 1) > 0 && (p[1].revents || p[2].revents))
                child_pump(c, gh_now());
        } else {
            child_pump(c, gh_now() + 10 * GH_MSEC);
        }
    }
    if (pfd >= 0)
        close(pfd);
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (live_pids[i] == c->pid)
            live_pids[i] = 0;
    close(c->in);
    close(c->out);
    close(c->err);
    return rc;
}

static int child_stop(child_t *c)
{
    kill(c->pid, SIGTERM);
    return child_wait(c, WAIT_MS);
}

static const char *example_path(const char *name)
{
    static char path[4096];
    const char *dir = getenv("EXAMPLES_DIR");
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "examples", name);
    return path;
}

/* Start an example on 127.0.0.1:0 and return the port it printed. */
static int example_start(child_t *c, const char *name, const char *opt1, const char *opt2)
{
    char *argv[8];
    int n = 0;
    argv[n++] = (char *)example_path(name);
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    if (opt1)
        argv[n++] = (char *)opt1;
    if (opt2)
        argv[n++] = (char *)opt2;
    argv[n] = NULL;
    ck_assert_int_eq(child_start(c, argv), 0);
    const char *line = child_expect(c, 0, 0, "listening on port ", WAIT_MS);
    ck_assert_msg(line != NULL, "%s printed no port (stderr: %s)", name, c->ebuf);
    child_expect(c, 0, 0, "\n", WAIT_MS);
    int port = atoi(line + strlen("listening on port "));
    ck_assert_int_gt(port, 0);
    return port;
}

/* Run tests/ws/wsclient.py PORT ARGS... to completion; returns its exit status and
 * leaves its output in *c. */
static int wsclient_run(child_t *c, int port, const char *scenario)
{
    char script[4096], sport[16];
    const char *src = getenv("top_srcdir");
    snprintf(script, sizeof script, "%s/tests/ws/wsclient.py", src && *src ? src : ".");
    snprintf(sport, sizeof sport, "%d", port);
    char *argv[] = {(char *)py, script, sport, (char *)scenario, NULL};
    ck_assert_int_eq(child_start(c, argv), 0);
    close(c->in); /* the scenarios read nothing */
    c->in = -1;
    return child_wait(c, WAIT_MS);
}

/* ---- HTTP and WebSocket over raw loopback sockets ------------------------------------- */

static char resp[65536];

static const char *http_get(int port, const char *target)
{
    int fd = th_connect(port);
    ck_assert_int_ge(fd, 0);
    char req[256];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", target);
    ck_assert_int_eq(th_sends(fd, req), 0);
    ck_assert_int_gt(th_read_response(fd, resp, sizeof resp - 1, WAIT_MS), 0);
    close(fd);
    return resp;
}

/* The value after "name " in a /stats body, or -1. */
static long stat_of(const char *body, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = body; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, name, n) && p[n] == ' ')
            return atol(p + n + 1);
    return -1;
}

/* Poll GET /stats (bounded) until `name` reaches `want`; returns the last body. */
static const char *stats_until(int port, const char *name, long want)
{
    gh_time_t deadline = gh_now() + (gh_time_t)WAIT_MS * GH_MSEC;
    for (;;) {
        const char *body = th_body(http_get(port, "/stats"));
        ck_assert_ptr_nonnull(body);
        if (stat_of(body, name) == want)
            return body;
        ck_assert_msg(gh_now() < deadline, "%s never reached %ld: %s", name, want, body);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL); /* polling a condition in a bounded loop */
    }
}

/* The RFC 6455 §1.3 sample handshake, followed by `extra` bytes in the same send(). */
static int ws_open(int port, const void *extra, size_t n)
{
    static const char hs[] = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\n"
                             "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "Sec-WebSocket-Version: 13\r\n\r\n";
    int fd = th_connect(port);
    ck_assert_int_ge(fd, 0);
    unsigned char buf[sizeof hs + 256];
    memcpy(buf, hs, sizeof hs - 1);
    ck_assert_uint_le(n, 256);
    if (n)
        memcpy(buf + sizeof hs - 1, extra, n);
    ck_assert_int_eq(th_send(fd, buf, sizeof hs - 1 + n), 0);
    /* The response head, byte by byte, so no frame byte is read past it. */
    size_t len = 0;
    while (len < 4 || memcmp(resp + len - 4, "\r\n\r\n", 4) != 0) {
        ck_assert_uint_lt(len, 4096);
        ck_assert_int_eq(th_read_exact(fd, resp + len, 1, WAIT_MS), 0);
        len++;
    }
    resp[len] = 0;
    ck_assert_int_eq(th_status(resp), 101);
    ck_assert(th_has_header(resp, "Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    ck_assert(th_has_header(resp, "Upgrade", "websocket"));
    return fd;
}

/* Expect a close frame with `code`, answer it, and expect the server to close TCP. */
static void ws_expect_close(int fd, int code)
{
    unsigned char b[256], out[32];
    size_t n;
    ck_assert_int_eq(th_ws_read_frame(fd, b, sizeof b, &n, WAIT_MS), 0x88);
    ck_assert_uint_ge(n, 2);
    ck_assert_int_eq(b[0] << 8 | b[1], code);
    ck_assert_int_eq(th_send(fd, out, th_ws_frame(out, 0x88, 1, b, 2)), 0);
    ck_assert_int_eq(th_wait_closed(fd, WAIT_MS), 1);
}

/* ---- websocket-echo ------------------------------------------------------------------- */

static child_t srv;
static int port;

static void ws_setup(void)
{
    port = example_start(&srv, "websocket-echo", "--stats", NULL);
}

static void ws_teardown(void)
{
    ck_assert_int_eq(child_stop(&srv), 0);
    kill_children();
}

static void python_scenario(const char *name)
{
    if (!py)
        return; /* th_client: the suite ends SKIP, or FAIL in CI */
    child_t c;
    int rc = wsclient_run(&c, port, name);
    ck_assert_msg(rc == 0, "wsclient %s: exit %d: %s", name, rc, c.ebuf);
    ck_assert_str_eq(c.obuf, "ok\n");
}

START_TEST(test_ws_echoes_text)
{
    python_scenario("text");
}
END_TEST

START_TEST(test_ws_echoes_binary)
{
    python_scenario("binary");
}
END_TEST

START_TEST(test_ws_echoes_1mib_messages)
{
    python_scenario("big");
}
END_TEST

START_TEST(test_ws_reassembles_fragmented_messages)
{
    python_scenario("fragmented");
}
END_TEST

START_TEST(test_ws_answers_ping_with_pong)
{
    python_scenario("ping");
}
END_TEST

START_TEST(test_ws_echoes_close_code)
{
    python_scenario("close");
}
END_TEST

START_TEST(test_ws_first_frame_in_upgrade_segment_is_echoed)
{
    unsigned char f[64], b[64];
    size_t n = th_ws_frame(f, 0x81, 1, "first", 5);
    int fd = ws_open(port, f, n);
    ck_assert_int_eq(th_ws_read_frame(fd, b, sizeof b, &n, WAIT_MS), 0x81);
    ck_assert_uint_eq(n, 5);
    ck_assert_int_eq(memcmp(b, "first", 5), 0);
    /* A normal close: the code comes back and the server closes TCP. */
    ck_assert_int_eq(th_send(fd, f, th_ws_frame(f, 0x88, 1, "\x03\xe8", 2)), 0);
    ck_assert_int_eq(th_ws_read_frame(fd, b, sizeof b, &n, WAIT_MS), 0x88);
    ck_assert_int_eq(b[0] << 8 | b[1], 1000);
    ck_assert_int_eq(th_wait_closed(fd, WAIT_MS), 1);
    close(fd);
}
END_TEST

START_TEST(test_ws_frames_split_byte_by_byte)
{
    /* A text message in three fragments (one empty) with a ping in between, sent one
     * byte per send(): every partial header and payload state. */
    static unsigned char msg[1024], buf[1024];
    size_t n = 0, got;
    n += th_ws_frame(msg + n, 0x01, 1, "part one, ", 10);
    n += th_ws_frame(msg + n, 0x89, 1, "mid", 3);
    n += th_ws_frame(msg + n, 0x00, 1, "", 0); /* an empty, non-final continuation */
    n += th_ws_frame(msg + n, 0x80, 1, "and two", 7);
    int fd = ws_open(port, NULL, 0);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(th_send(fd, msg + i, 1), 0);
    ck_assert_int_eq(th_ws_read_frame(fd, buf, sizeof buf, &got, WAIT_MS), 0x8a);
    ck_assert_uint_eq(got, 3);
    ck_assert_int_eq(memcmp(buf, "mid", 3), 0);
    ck_assert_int_eq(th_ws_read_frame(fd, buf, sizeof buf, &got, WAIT_MS), 0x81);
    ck_assert_uint_eq(got, 17);
    ck_assert_int_eq(memcmp(buf, "part one, and two", 17), 0);

    /* A 300-byte binary message (16-bit length) the same way. */
    static unsigned char big[300];
    memset(big, 0xa5, sizeof big);
    n = th_ws_frame(msg, 0x82, 1, big, sizeof big);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(th_send(fd, msg + i, 1), 0);
    ck_assert_int_eq(th_ws_read_frame(fd, buf, sizeof buf, &got, WAIT_MS), 0x82);
    ck_assert_uint_eq(got, sizeof big);
    ck_assert_int_eq(memcmp(buf, big, sizeof big), 0);
    close(fd);
}
END_TEST

START_TEST(test_ws_unmasked_frame_is_protocol_error)
{
    unsigned char f[64];
    int fd = ws_open(port, NULL, 0);
    ck_assert_int_eq(th_send(fd, f, th_ws_frame(f, 0x81, 0, "hi", 2)), 0);
    ws_expect_close(fd, 1002);
    close(fd);
}
END_TEST

START_TEST(test_ws_invalid_utf8_text_is_1007)
{
    unsigned char f[64];
    int fd = ws_open(port, NULL, 0);
    /* An overlong encoding of '/', then a lone surrogate. */
    ck_assert_int_eq(th_send(fd, f, th_ws_frame(f, 0x81, 1, "ok \xc0\xaf \xed\xa0\x80", 9)), 0);
    ws_expect_close(fd, 1007);
    close(fd);
}
END_TEST

START_TEST(test_ws_oversized_message_is_1009)
{
    unsigned char f[64];
    int fd = ws_open(port, NULL, 0);
    /* Only the header of a 17 MiB frame: the length alone is refused. */
    ck_assert_int_eq(th_send(fd, f, th_ws_frame(f, 0x82, 1, NULL, 17u << 20)), 0);
    ws_expect_close(fd, 1009);
    close(fd);
}
END_TEST

START_TEST(test_ws_rejects_non_upgrade_and_bad_version)
{
    ck_assert_int_eq(th_status(http_get(port, "/")), 426);
    int fd = th_connect(port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(th_sends(fd, "GET / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
                                  "Connection: Upgrade\r\nSec-WebSocket-Key: "
                                  "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n"),
                     0);
    ck_assert_int_gt(th_read_response(fd, resp, sizeof resp - 1, WAIT_MS), 0);
    ck_assert_int_eq(th_status(resp), 426);
    ck_assert(th_has_header(resp, "Sec-WebSocket-Version", "13"));
    close(fd);
}
END_TEST

START_TEST(test_ws_sigusr1_prints_stats)
{
    size_t from = srv.olen;
    ck_assert_int_eq(kill(srv.pid, SIGUSR1), 0);
    const char *line = child_expect(&srv, 0, from, "live_bytes ", WAIT_MS);
    ck_assert_ptr_nonnull(line);
    ck_assert_ptr_nonnull(strstr(srv.obuf + from, "websockets 0\n"));
    ck_assert_int_gt(atol(line + strlen("live_bytes ")), 0);
}
END_TEST

START_TEST(test_ws_idle_connections_retain_little)
{
    if (!py)
        return; /* th_client: the suite ends SKIP, or FAIL in CI */
    /* Warm up (worker pool, tables), then the baseline with no WebSocket open. */
    python_scenario("text");
    const char *body = stats_until(port, "websockets", 0);
    long live0 = stat_of(body, "live_bytes");
    ck_assert_int_gt(live0, 0);

    char script[4096], sport[16], sn[16];
    const char *src = getenv("top_srcdir");
    snprintf(script, sizeof script, "%s/tests/ws/wsclient.py", src && *src ? src : ".");
    snprintf(sport, sizeof sport, "%d", port);
    snprintf(sn, sizeof sn, "%d", IDLE_CONNS);
    char *argv[] = {(char *)py, script, sport, "idle", sn, NULL};
    child_t cl;
    ck_assert_int_eq(child_start(&cl, argv), 0);
    ck_assert_msg(child_expect(&cl, 0, 0, "open 1000\n", WAIT_MS) != NULL, "idle client: %s",
                  cl.ebuf);
    body = stats_until(port, "websockets", IDLE_CONNS);
    long live1 = stat_of(body, "live_bytes");
    long per = (live1 - live0) / IDLE_CONNS;
    fprintf(stderr, "websocket-echo: %d idle WebSockets retain %ld B each (%ld -> %ld)\n",
            IDLE_CONNS, per, live0, live1);
    ck_assert_int_lt(per, MAX_RETAINED);

    /* Let them go: every close is echoed and the server forgets them all. */
    ck_assert_int_eq(write(cl.in, "\n", 1), 1);
    ck_assert_ptr_nonnull(child_expect(&cl, 0, 0, "closed\n", WAIT_MS));
    ck_assert_int_eq(child_wait(&cl, WAIT_MS), 0);
    stats_until(port, "websockets", 0);
}
END_TEST

/* ---- longpoll ------------------------------------------------------------------------- */

static void lp_setup(void)
{
    port = example_start(&srv, "longpoll", NULL, NULL);
}

static void fs_setup(void)
{
    const char *src = getenv("top_srcdir");
    static char rootdir[4096];
    snprintf(rootdir, sizeof rootdir, "%s", src && *src ? src : ".");
    port = example_start(&srv, "fileserver", "--root", rootdir);
}

/* The example serves the source tree: README.md whole, then a range of it. */
START_TEST(test_fileserver_serves_a_file_and_a_range)
{
    const char *r = http_get(port, "/README.md");
    ck_assert_int_eq(th_status(r), 200);
    ck_assert_int_eq(th_has_header(r, "Content-Type", "text/markdown; charset=utf-8"), 1);
    ck_assert_int_eq(strncmp(th_body(r), "# gchttp\n", 9), 0);
    int fd = th_connect(port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(th_sends(fd, "GET /README.md HTTP/1.1\r\nHost: t\r\nRange: bytes=2-7\r\n"
                                  "Connection: close\r\n\r\n"), 0);
    ck_assert_int_gt(th_read_response(fd, resp, sizeof resp - 1, WAIT_MS), 0);
    close(fd);
    ck_assert_int_eq(th_status(resp), 206);
    ck_assert_str_eq(th_body(resp), "gchttp");
    r = http_get(port, "/../README.md");
    ck_assert_int_eq(th_status(r), 400);
}
END_TEST

static void api_setup(void)
{
    port = example_start(&srv, "api", NULL, NULL);
}

/* One request on a new connection (closed by the server after the answer). */
static const char *http_req(const char *method, const char *target, const char *form)
{
    int fd = th_connect(port);
    ck_assert_int_ge(fd, 0);
    char req[512];
    snprintf(req, sizeof req,
             "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
             "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n\r\n%s",
             method, target, strlen(form), form);
    ck_assert_int_eq(th_sends(fd, req), 0);
    ck_assert_int_gt(th_read_response(fd, resp, sizeof resp - 1, WAIT_MS), 0);
    close(fd);
    return resp;
}

/* The README's JSON API: create, list, show; 404, 405 with Allow, 422. */
START_TEST(test_api_serves_its_three_routes)
{
    const char *r = http_req("POST", "/items", "name=first+one");
    ck_assert_int_eq(th_status(r), 201);
    ck_assert_str_eq(th_body(r), "{\"id\":1,\"name\":\"first one\"}\n");
    r = http_req("POST", "/items", "name=second");
    ck_assert_int_eq(th_status(r), 201);
    r = http_req("GET", "/items", "");
    ck_assert_int_eq(th_status(r), 200);
    ck_assert_int_eq(th_has_header(r, "Content-Type", "application/json"), 1);
    ck_assert_str_eq(th_body(r),
                     "[{\"id\":1,\"name\":\"first one\"},{\"id\":2,\"name\":\"second\"}]\n");
    r = http_req("GET", "/items/2", "");
    ck_assert_int_eq(th_status(r), 200);
    ck_assert_str_eq(th_body(r), "{\"id\":2,\"name\":\"second\"}\n");
    r = http_req("GET", "/items/3", "");
    ck_assert_int_eq(th_status(r), 404);
    r = http_req("DELETE", "/items/1", "");
    ck_assert_int_eq(th_status(r), 405);
    ck_assert_int_eq(th_has_header(r, "Allow", "GET, HEAD"), 1);
    r = http_req("POST", "/items", "name=%3Cscript%3E");
    ck_assert_int_eq(th_status(r), 422);
    r = http_req("GET", "/nothing", "");
    ck_assert_int_eq(th_status(r), 404);
}
END_TEST

static void lp_cn_setup(void)
{
    port = example_start(&srv, "longpoll", "--close-notify", NULL);
}

static void lp_short_setup(void)
{
    port = example_start(&srv, "longpoll", "--timeout", "100");
}

START_TEST(test_longpoll_publish_wakes_waiter)
{
    int a = th_connect(port);
    ck_assert_int_ge(a, 0);
    ck_assert_int_eq(th_sends(a, "GET /wait HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
    stats_until(port, "waiting", 1);

    int b = th_connect(port);
    ck_assert_int_ge(b, 0);
    ck_assert_int_eq(th_sends(b, "POST /publish HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                                 "\r\nnews!"),
                     0);
    ck_assert_int_gt(th_read_response(b, resp, sizeof resp - 1, WAIT_MS), 0);
    ck_assert_int_eq(th_status(resp), 200);
    ck_assert_str_eq(th_body(resp), "delivered 1\n");
    close(b);

    ck_assert_int_gt(th_read_response(a, resp, sizeof resp - 1, WAIT_MS), 0);
    ck_assert_int_eq(th_status(resp), 200);
    ck_assert_str_eq(th_body(resp), "news!");
    close(a);
    const char *body = stats_until(port, "waiting", 0);
    ck_assert_int_eq(stat_of(body, "gone"), 0);
}
END_TEST

/* A waiting client goes away; the example must log it within PROMPT_MS. */
static void abort_is_noticed(const char *request)
{
    int a = th_connect(port);
    ck_assert_int_ge(a, 0);
    ck_assert_int_eq(th_sends(a, request), 0);
    stats_until(port, "waiting", 1);
    size_t from = srv.elen;
    gh_time_t t0 = gh_now();
    close(a);
    const char *line = child_expect(&srv, 1, from, "client gone after ", WAIT_MS);
    gh_time_t took = (gh_now() - t0) / GH_MSEC;
    ck_assert_msg(line != NULL, "no disconnect logged: %s", srv.ebuf);
    ck_assert_msg(took < PROMPT_MS, "disconnect noticed after %lld ms", (long long)took);
    fprintf(stderr, "longpoll: disconnect logged %lld ms after close()\n", (long long)took);
    ck_assert_ptr_nonnull(strstr(line, "ECONNRESET"));
    const char *body = stats_until(port, "gone", 1);
    ck_assert_int_eq(stat_of(body, "waiting"), 0);
}

START_TEST(test_longpoll_abort_is_noticed)
{
    abort_is_noticed("GET /wait HTTP/1.1\r\nHost: t\r\n\r\n");
}
END_TEST

START_TEST(test_longpoll_abort_with_unread_body_is_noticed)
{
    static char req[8192];
    int n = snprintf(req, sizeof req,
                     "POST /wait-with-body HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n");
    memset(req + n, 'b', sizeof req - 1 - (size_t)n); /* part of the body, never read */
    req[sizeof req - 1] = 0;
    abort_is_noticed(req);
}
END_TEST

START_TEST(test_longpoll_timeout_answers_204)
{
    int a = th_connect(port);
    ck_assert_int_ge(a, 0);
    ck_assert_int_eq(th_sends(a, "GET /wait HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
    ck_assert_int_gt(th_read_response(a, resp, sizeof resp - 1, WAIT_MS), 0);
    ck_assert_int_eq(th_status(resp), 204);
    close(a);
    ck_assert_int_eq(stat_of(th_body(http_get(port, "/stats")), "timeouts"), 1);
}
END_TEST

/* ---- chat ----------------------------------------------------------------------------- */

static void chat_setup(void)
{
    port = example_start(&srv, "chat", NULL, NULL);
}

START_TEST(test_chat_broadcasts_every_line_to_every_member)
{
    if (!py)
        return; /* th_client noted it: the program ends SKIP */
    char script[4096], sport[16];
    const char *src = getenv("top_srcdir");
    snprintf(script, sizeof script, "%s/tests/ws/wsclient.py", src && *src ? src : ".");
    snprintf(sport, sizeof sport, "%d", port);
    char *argv[] = {(char *)py, script, sport, "chat", "5", NULL};
    child_t c;
    ck_assert_int_eq(child_start(&c, argv), 0);
    int rc = child_wait(&c, WAIT_MS);
    ck_assert_msg(rc == 0, "wsclient chat: exit %d: %s", rc, c.ebuf);
    ck_assert_str_eq(c.obuf, "ok\n");
    const char *body = stats_until(port, "members", 0);
    ck_assert_ptr_nonnull(body);
}
END_TEST

/* ---- both ----------------------------------------------------------------------------- */

START_TEST(test_examples_print_help)
{
    const char *names[] = {"websocket-echo", "longpoll", "fileserver", "chat", "api"};
    for (int i = 0; i < 5; i++) {
        child_t c;
        char *argv[] = {(char *)example_path(names[i]), "--help", NULL};
        ck_assert_int_eq(child_start(&c, argv), 0);
        ck_assert_ptr_nonnull(child_expect(&c, 0, 0, "usage: ", WAIT_MS));
        ck_assert_int_eq(child_wait(&c, WAIT_MS), 0);
        ck_assert_ptr_nonnull(strstr(c.obuf, "--listen HOST:PORT"));
    }
}
END_TEST

static TCase *tcase(const char *name, void (*setup)(void), void (*teardown)(void))
{
    TCase *tc = tcase_create(name);
    if (setup)
        tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    return tc;
}

Suite *test_suite(void)
{
    /* 1,000 client sockets plus 1,000 server ones (the children inherit the limit). */
    th_raise_nofile();
    atexit(kill_children);
    /* The client tests need python3 with the websockets module (Debian
     * python3-websockets, installed by scripts/setup.sh for make check). */
    py = th_client("PYTHON3", "python3", "-c 'import websockets'");

    Suite *s = suite_create("examples");
    TCase *tc = tcase("websocket-echo", ws_setup, ws_teardown);
    tcase_add_test(tc, test_ws_echoes_text);
    tcase_add_test(tc, test_ws_echoes_binary);
    tcase_add_test(tc, test_ws_echoes_1mib_messages);
    tcase_add_test(tc, test_ws_reassembles_fragmented_messages);
    tcase_add_test(tc, test_ws_answers_ping_with_pong);
    tcase_add_test(tc, test_ws_echoes_close_code);
    tcase_add_test(tc, test_ws_first_frame_in_upgrade_segment_is_echoed);
    tcase_add_test(tc, test_ws_frames_split_byte_by_byte);
    tcase_add_test(tc, test_ws_unmasked_frame_is_protocol_error);
    tcase_add_test(tc, test_ws_invalid_utf8_text_is_1007);
    tcase_add_test(tc, test_ws_oversized_message_is_1009);
    tcase_add_test(tc, test_ws_rejects_non_upgrade_and_bad_version);
    tcase_add_test(tc, test_ws_sigusr1_prints_stats);
    suite_add_tcase(s, tc);

    tc = tcase("websocket-echo idle", ws_setup, ws_teardown);
    tcase_add_test(tc, test_ws_idle_connections_retain_little);
    suite_add_tcase(s, tc);

    tc = tcase("longpoll", lp_setup, ws_teardown);
    tcase_add_test(tc, test_longpoll_publish_wakes_waiter);
    tcase_add_test(tc, test_longpoll_abort_is_noticed);
    tcase_add_test(tc, test_longpoll_abort_with_unread_body_is_noticed);
    suite_add_tcase(s, tc);

    tc = tcase("fileserver", fs_setup, ws_teardown);
    tcase_add_test(tc, test_fileserver_serves_a_file_and_a_range);
    suite_add_tcase(s, tc);

    tc = tcase("longpoll close-notify", lp_cn_setup, ws_teardown);
    tcase_add_test(tc, test_longpoll_abort_is_noticed);
    tcase_add_test(tc, test_longpoll_abort_with_unread_body_is_noticed);
    suite_add_tcase(s, tc);

    tc = tcase("longpoll timeout", lp_short_setup, ws_teardown);
    tcase_add_test(tc, test_longpoll_timeout_answers_204);
    suite_add_tcase(s, tc);

    tc = tcase("chat", chat_setup, ws_teardown);
    tcase_add_test(tc, test_chat_broadcasts_every_line_to_every_member);
    suite_add_tcase(s, tc);

    tc = tcase("api", api_setup, ws_teardown);
    tcase_add_test(tc, test_api_serves_its_three_routes);
    suite_add_tcase(s, tc);

    tc = tcase("help", NULL, NULL);
    tcase_add_test(tc, test_examples_print_help);
    suite_add_tcase(s, tc);
    return s;
}
