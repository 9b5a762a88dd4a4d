/* tests/test-fd.c: reference-counted descriptors, deadlines, close semantics (gc/fd.c). */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "test-common.h"

static int sv[2] = {-1, -1};

static void open_pair(void)
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

static void close_pair(void)
{
    /* sv[0] belongs to the gh_fd_t under test once wrapped; only the peer is ours. */
    if (sv[1] >= 0)
        close(sv[1]);
    sv[0] = sv[1] = -1;
}

static int fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

/* ---- a reader thread; results recorded here, asserted on the test thread ----------- */

static struct {
    gh_fd_t *f; /* static: a root, so the fd object stays alive */
    pid_t tid;  /* the reader's kernel thread id, for /proc */
    ssize_t rc; /* what gh_fd_read returned */
    char byte;  /* the byte read, if any */
    gh_time_t returned_at;
} rd;

static void *reader_main(void *arg)
{
    (void)arg;
    __atomic_store_n(&rd.tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
    ssize_t rc = gh_fd_read(rd.f, &rd.byte, 1);
    rd.returned_at = gh_now();
    rd.rc = rc;
    return NULL;
}

/* Wait (bounded) until the reader thread is inside poll(): /proc/<tid>/syscall names the
 * system call a blocked thread is in. This is observation, not a sleep. */
static int wait_reader_in_poll(void)
{
    char path[64], buf[128];
    gh_time_t until = gh_now() + 10 * GH_SEC;
    pid_t tid;
    while (!(tid = __atomic_load_n(&rd.tid, __ATOMIC_ACQUIRE)) && gh_now() < until)
        sched_yield();
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    while (gh_now() < until) {
        FILE *fp = fopen(path, "r");
        if (!fp)
            return 0;
        size_t n = fread(buf, 1, sizeof buf - 1, fp);
        fclose(fp);
        buf[n] = '\0';
        long nr = strtol(buf, NULL, 10);
#ifdef SYS_poll
        if (nr == SYS_poll)
            return 1;
#endif
#ifdef SYS_ppoll
        if (nr == SYS_ppoll)
            return 1;
#endif
        sched_yield();
    }
    return 0;
}

static pthread_t start_reader(gh_fd_t *f)
{
    pthread_t t;
    memset(&rd, 0, sizeof rd);
    rd.f = f;
    ck_assert_int_eq(gh_thread_start(&t, reader_main, NULL), 0);
    ck_assert_int_eq(wait_reader_in_poll(), 1);
    return t;
}

/* ---- basics ------------------------------------------------------------------------- */

START_TEST(test_fd_read_and_write_round_trip)
{
    open_pair();
    gh_fd_t *f = gh_fd_new(sv[0]);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(gh_fd_fileno(f), sv[0]);
    ck_assert_int_eq(fcntl(sv[0], F_GETFL) & O_NONBLOCK, O_NONBLOCK);
    ck_assert_int_eq(gh_fd_write(f, "hello", 5), 5);
    char buf[16] = {0};
    ck_assert_int_eq(read(sv[1], buf, sizeof buf), 5);
    ck_assert_str_eq(buf, "hello");
    ck_assert_int_eq(write(sv[1], "world", 5), 5);
    memset(buf, 0, sizeof buf);
    ck_assert_int_eq(gh_fd_read(f, buf, sizeof buf), 5);
    ck_assert_str_eq(buf, "world");
    ck_assert_int_eq(gh_fd_close(f), 0);
}
END_TEST

START_TEST(test_fd_bufio_adapters_forward)
{
    open_pair();
    gh_fd_t *f = gh_fd_new(sv[0]);
    ck_assert_int_eq(gh_fd_write_fn(f, "ab", 2), 2);
    char buf[4] = {0};
    ck_assert_int_eq(read(sv[1], buf, 2), 2);
    ck_assert_int_eq(write(sv[1], "cd", 2), 2);
    ck_assert_int_eq(gh_fd_read_fn(f, buf, 2), 2);
    ck_assert_str_eq(buf, "cd");
    gh_fd_close(f);
}
END_TEST

START_TEST(test_fd_read_nowait_returns_eagain)
{
    open_pair();
    gh_fd_t *f = gh_fd_new(sv[0]);
    char c;
    ck_assert_int_eq(gh_fd_read_nowait(f, &c, 1), GH_EAGAIN);
    gh_fd_close(f);
}
END_TEST

START_TEST(test_fd_read_returns_zero_at_end_of_stream)
{
    open_pair();
    gh_fd_t *f = gh_fd_new(sv[0]);
    shutdown(sv[1], SHUT_WR);
    char c;
    ck_assert_int_eq(gh_fd_read(f, &c, 1), 0);
    gh_fd_close(f);
}
END_TEST

START_TEST(test_fd_new_rejects_a_bad_descriptor)
{
    errno = 0;
    ck_assert_ptr_null(gh_fd_new(-1));
    ck_assert_int_eq(errno, EBADF);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    close(p[0]);
    close(p[1]);
    ck_assert_ptr_null(gh_fd_new(p[0]));
    ck_assert_int_eq(errno, EBADF);
}
END_TEST

START_TEST(test_fd_close_is_idempotent_and_fails_later_calls)
{
    open_pair();
    gh_fd_t *f = gh_fd_new(sv[0]);
    int old = sv[0];
    ck_assert_int_eq(gh_fd_close(f), 0);
    ck_assert_int_eq(gh_fd_close(f), GH_EBADF);
    ck_assert_int_eq(gh_fd_is_closed(f), 1);
    ck_assert_int_eq(gh_fd_fileno(f), -1);
    char c;
    ck_assert_int_eq(gh_fd_read(f, &c, 1), GH_EBADF);
    ck_assert_int_eq(gh_fd_write(f, "x", 1), GH_EBADF);
    ck_assert_int_eq(gh_fd_acquire(f), GH_EBADF);
    ck_assert_int_eq(gh_fd_shutdown_write(f), GH_EBADF);
    /* Nothing held it: the number is closed right away. */
    ck_assert_int_eq(fd_is_open(old), 0);
}
END_TEST

/* ---- close while in use ------------------------------------------------------------- */

START_TEST(test_fd_close_wakes_a_blocked_reader_with_ebadf)
{
    open_pair();
    gh_fd_t *f = gh_fd_new(sv[0]);
    int old = sv[0];
    pthread_t t = start_reader(f);
    gh_time_t t0 = gh_now();
    ck_assert_int_eq(gh_fd_close(f), 0);
    ck_assert_int_eq(gh_thread_join(t, NULL), 0);
    ck_assert_int_eq(rd.rc, GH_EBADF);
    /* Woken by shutdown(), not by the end of a poll slice. */
    ck_assert_int_lt(rd.returned_at - t0, GH_FD_POLL_SLICE_MS * GH_MSEC * 4 / 5);
    ck_assert_int_eq(fd_is_open(old), 0);
}
END_TEST

/* The reader is parked inside gh_fd_read by a signal handler that blocks on a pipe (read
 * and write are async-signal-safe), so the test knows it holds its operation reference
 * for as long as the gate stays shut. */
static int gate[2] = {-1, -1}, parked[2] = {-1, -1};

static void park_handler(int sig)
{
    char c = 1;
    (void)sig;
    (void)!write(parked[1], &c, 1);
    while (read(gate[0], &c, 1) < 0 && errno == EINTR)
        ;
}

START_TEST(test_fd_number_not_reused_while_a_blocked_read_holds_it)
{
    ck_assert_int_eq(pipe(gate), 0);
    ck_assert_int_eq(pipe(parked), 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = park_handler;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);

    open_pair();
    gh_fd_t *f = gh_fd_new(sv[0]);
    int old = sv[0];
    pthread_t t = start_reader(f);
    ck_assert_int_eq(pthread_kill(t, SIGUSR1), 0);
    char c;
    ck_assert_int_eq(read(parked[0], &c, 1), 1);

    /* The reader is inside gh_fd_read, holding a reference. */
    ck_assert_int_eq(gh_fd_close(f), 0);
    ck_assert_int_eq(fd_is_open(old), 1);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_ne(p[0], old);
    ck_assert_int_ne(p[1], old);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(s, 0);
    ck_assert_int_ne(s, old);

    /* Release the reader: it sees the close, drops the last reference, and only then is
     * the number closed. */
    ck_assert_int_eq(write(gate[1], &c, 1), 1);
    ck_assert_int_eq(gh_thread_join(t, NULL), 0);
    ck_assert_int_eq(rd.rc, GH_EBADF);
    errno = 0;
    ck_assert_int_eq(fcntl(old, F_GETFD), -1);
    ck_assert_int_eq(errno, EBADF);
    close(p[0]);
    close(p[1]);
    close(s);
}
END_TEST

START_TEST(test_fd_acquire_keeps_the_number_past_close)
{
    open_pair();
    gh_fd_t *f = gh_fd_new(sv[0]);
    int old = sv[0];
    ck_assert_int_eq(gh_fd_acquire(f), 0);
    ck_assert_int_eq(gh_fd_close(f), 0);
    ck_assert_int_eq(fd_is_open(old), 1);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_ne(p[0], old);
    ck_assert_int_ne(p[1], old);
    gh_fd_release(f);
    ck_assert_int_eq(fd_is_open(old), 0);
    close(p[0]);
    close(p[1]);
}
END_TEST

/* Every collection signals the blocked reader (SIGPWR on Linux), interrupting poll. */
START_TEST(test_fd_read_retries_after_collector_signals)
{
    open_pair();
    gh_fd_t *f = gh_fd_new(sv[0]);
    pthread_t t = start_reader(f);
    gh_gc_collect(20);
    ck_assert_int_eq(write(sv[1], "z", 1), 1);
    ck_assert_int_eq(gh_thread_join(t, NULL), 0);
    ck_assert_int_eq(rd.rc, 1);
    ck_assert_int_eq(rd.byte, 'z');
    gh_fd_close(f);
}
END_TEST

/* ---- deadlines ---------------------------------------------------------------------- */

START_TEST(test_fd_read_deadline_gives_etimedout)
{
    open_pair();
    gh_fd_t *f = gh_fd_new(sv[0]);
    gh_time_t t0 = gh_now();
    gh_fd_set_read_deadline(f, t0 + 50 * GH_MSEC);
    ck_assert_int_eq(gh_fd_read_deadline(f), t0 + 50 * GH_MSEC);
    char c;
    ck_assert_int_eq(gh_fd_read(f, &c, 1), GH_ETIMEDOUT);
    ck_assert_int_ge(gh_now() - t0, 50 * GH_MSEC);
    /* A passed deadline fails at once; data already there is still delivered. */
    ck_assert_int_eq(gh_fd_read(f, &c, 1), GH_ETIMEDOUT);
    ck_assert_int_eq(write(sv[1], "y", 1), 1);
    ck_assert_int_eq(gh_fd_read(f, &c, 1), 1);
    gh_fd_close(f);
}
END_TEST

START_TEST(test_fd_deadline_set_while_waiting_applies)
{
    open_pair();
    gh_fd_t *f = gh_fd_new(sv[0]);
    pthread_t t = start_reader(f);
    gh_fd_set_read_deadline(f, gh_now());
    ck_assert_int_eq(gh_thread_join(t, NULL), 0);
    ck_assert_int_eq(rd.rc, GH_ETIMEDOUT);
    gh_fd_close(f);
}
END_TEST

START_TEST(test_fd_write_deadline_gives_etimedout_when_the_peer_stops_reading)
{
    open_pair();
    gh_fd_t *f = gh_fd_new(sv[0]);
    size_t n = 8 << 20; /* far more than a socket buffer */
    char *big = gh_bytes_new(n);
    memset(big, 'w', n);
    gh_fd_set_write_deadline(f, gh_now() + 50 * GH_MSEC);
    ck_assert_int_eq(gh_fd_write(f, big, n), GH_ETIMEDOUT);
    ck_assert_int_eq(gh_fd_write2(f, big, n / 2, big, n / 2), GH_ETIMEDOUT);
    gh_fd_close(f);
}
END_TEST

/* ---- writes ------------------------------------------------------------------------- */

/* Drains the peer and checks the byte pattern; results are asserted on the test thread. */
static struct {
    int fd;
    size_t got, bad;
} drain;

static void *drain_main(void *arg)
{
    (void)arg;
    char buf[65536];
    for (;;) {
        ssize_t r = read(drain.fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r; i++)
            drain.bad += (unsigned char)buf[i] != (unsigned char)((drain.got + i) % 251);
        drain.got += (size_t)r;
    }
    return NULL;
}

START_TEST(test_fd_write2_writes_both_buffers_across_short_writes)
{
    open_pair();
    gh_fd_t *f = gh_fd_new(sv[0]);
    size_t n1 = (1 << 20) + 3, n2 = (2 << 20) + 5;
    unsigned char *a = gh_bytes_new(n1), *b = gh_bytes_new(n2);
    for (size_t i = 0; i < n1; i++)
        a[i] = (unsigned char)(i % 251);
    for (size_t i = 0; i < n2; i++)
        b[i] = (unsigned char)((n1 + i) % 251);
    memset(&drain, 0, sizeof drain);
    drain.fd = sv[1];
    pthread_t t;
    ck_assert_int_eq(gh_thread_start(&t, drain_main, NULL), 0);
    ck_assert_int_eq(gh_fd_write2(f, a, n1, b, n2), (ssize_t)(n1 + n2));
    ck_assert_int_eq(gh_fd_shutdown_write(f), 0);
    ck_assert_int_eq(gh_thread_join(t, NULL), 0);
    ck_assert_uint_eq(drain.got, n1 + n2);
    ck_assert_uint_eq(drain.bad, 0);
    gh_fd_close(f);
}
END_TEST

START_TEST(test_fd_write_works_on_a_pipe)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    gh_fd_t *f = gh_fd_new(p[1]);
    ck_assert_int_eq(gh_fd_write2(f, "ab", 2, "cd", 2), 4);
    char buf[8] = {0};
    ck_assert_int_eq(read(p[0], buf, sizeof buf), 4);
    ck_assert_str_eq(buf, "abcd");
    gh_fd_close(f);
    close(p[0]);
}
END_TEST

/* test-main does not ignore SIGPIPE: if MSG_NOSIGNAL were missing, the child would die. */
START_TEST(test_fd_write_to_a_closed_peer_is_epipe_not_sigpipe)
{
    open_pair();
    gh_fd_t *f = gh_fd_new(sv[0]);
    close(sv[1]);
    sv[1] = -1;
    ck_assert_int_eq(gh_fd_write(f, "x", 1), GH_EPIPE);
    ck_assert_int_eq(gh_fd_write2(f, "x", 1, "y", 1), GH_EPIPE);
    gh_fd_close(f);
}
END_TEST

START_TEST(test_fd_write_to_a_reset_tcp_peer_fails_without_sigpipe)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    ck_assert_int_eq(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(l, 1), 0);
    ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sa, &len), 0);
    int c = th_connect(ntohs(sa.sin_port));
    ck_assert_int_ge(c, 0);
    int a = accept(l, NULL, NULL);
    ck_assert_int_ge(a, 0);
    gh_fd_t *f = gh_fd_new(c);
    ck_assert_int_eq(gh_fd_write(f, "unread", 6), 6);
    /* Closing with unread data makes the kernel answer with RST. */
    close(a);
    ssize_t rc = 0;
    for (int i = 0; i < 1000 && rc >= 0; i++)
        rc = gh_fd_write(f, "more", 4);
    ck_assert_msg(rc == GH_EPIPE || rc == GH_ECONNRESET, "rc = %zd (%s)", rc, gh_err_name((int)rc));
    gh_fd_close(f);
    close(l);
}
END_TEST

/* ---- the finalizer backstop --------------------------------------------------------- */

#define N_FDS 20
static gh_probe_t *fd_probes[2 * N_FDS];
static int fd_nums[2 * N_FDS];

/* N_FDS wrapped descriptors are leaked open, N_FDS are closed properly before being
 * dropped; only the first kind may be counted. */
__attribute__((noinline)) static void leak_fds(void)
{
    for (int i = 0; i < 2 * N_FDS; i++) {
        int p[2];
        ck_assert_int_eq(pipe(p), 0);
        close(p[1]);
        gh_fd_t *f = gh_fd_new(p[0]);
        fd_probes[i] = gh_probe_new(f);
        fd_nums[i] = p[0];
        if (i >= N_FDS)
            gh_fd_close(f);
    }
}

static int count_fd_probes_reclaimed(void)
{
    int n = 0;
    for (int i = 0; i < 2 * N_FDS; i++)
        n += gh_probe_reclaimed(fd_probes[i]);
    return n;
}

START_TEST(test_fd_backstop_closes_a_leaked_descriptor_and_counts_it)
{
    unsigned long before = gh_fd_leaked();
    leak_fds();
    for (int a = 0; a < 4 && count_fd_probes_reclaimed() < 2 * N_FDS; a++) {
        if (a)
            th_churn(a);
        gh_gc_collect(2);
    }
    unsigned long leaked = gh_fd_leaked() - before;
    ck_assert_uint_ge(leaked, N_FDS - 1);
    ck_assert_uint_le(leaked, N_FDS);
    int closed = 0;
    for (int i = 0; i < N_FDS; i++)
        closed += !fd_is_open(fd_nums[i]);
    ck_assert_int_eq((unsigned long)closed, leaked);
    GH_ASSERT_NO_FINALIZATION_CYCLES();
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("fd");

    TCase *tc = tcase_create("basics");
    tcase_add_checked_fixture(tc, NULL, close_pair);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_fd_read_and_write_round_trip);
    tcase_add_test(tc, test_fd_bufio_adapters_forward);
    tcase_add_test(tc, test_fd_read_nowait_returns_eagain);
    tcase_add_test(tc, test_fd_read_returns_zero_at_end_of_stream);
    tcase_add_test(tc, test_fd_new_rejects_a_bad_descriptor);
    tcase_add_test(tc, test_fd_close_is_idempotent_and_fails_later_calls);
    suite_add_tcase(s, tc);

    tc = tcase_create("close");
    tcase_add_checked_fixture(tc, NULL, close_pair);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_fd_close_wakes_a_blocked_reader_with_ebadf);
    tcase_add_test(tc, test_fd_number_not_reused_while_a_blocked_read_holds_it);
    tcase_add_test(tc, test_fd_acquire_keeps_the_number_past_close);
    tcase_add_test(tc, test_fd_read_retries_after_collector_signals);
    suite_add_tcase(s, tc);

    tc = tcase_create("deadlines");
    tcase_add_checked_fixture(tc, NULL, close_pair);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_fd_read_deadline_gives_etimedout);
    tcase_add_test(tc, test_fd_deadline_set_while_waiting_applies);
    tcase_add_test(tc, test_fd_write_deadline_gives_etimedout_when_the_peer_stops_reading);
    suite_add_tcase(s, tc);

    tc = tcase_create("writes");
    tcase_add_checked_fixture(tc, NULL, close_pair);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_fd_write2_writes_both_buffers_across_short_writes);
    tcase_add_test(tc, test_fd_write_works_on_a_pipe);
    tcase_add_test(tc, test_fd_write_to_a_closed_peer_is_epipe_not_sigpipe);
    tcase_add_test(tc, test_fd_write_to_a_reset_tcp_peer_fails_without_sigpipe);
    suite_add_tcase(s, tc);

    tc = tcase_create("backstop");
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_fd_backstop_closes_a_leaked_descriptor_and_counts_it);
    suite_add_tcase(s, tc);
    return s;
}
