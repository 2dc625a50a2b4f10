/*
 * limits.c: what the machine itself can do, for bench_suite.py to set each
 * wardd figure against (issue 12). Not a test: each mode does one thing
 * the bare way, with no supervisor in between, and prints its numbers as
 * "key value" lines. It also holds the two small programs both sides run
 * (the output writer and the exiter), so that wardd and its limit run the
 * same payload and only the supervisor differs.
 *
 *   limits spawn N K          three limits on the same N children:
 *                             posix_spawn + pidfd_open of N `sleep 1000`;
 *                             pidfd wake-up: K exiters, each telling when
 *                             it exits, waited for with epoll while the N
 *                             are in the same set; SIGKILL the N and reap
 *                             each as its pidfd turns readable
 *   limits echo M REQ REPLY [S]   round trips of REQ bytes to a forked echo
 *                             child answering REPLY bytes (M, or S seconds)
 *   limits rtt SOCK HEX REPLY M [S]  the same client against a unix socket
 *                             (HEX: the request's bytes): wardd's side
 *   limits cat FORM BYTES FILE   `limits write FORM BYTES | cat > FILE`
 *   limits sampler S          /proc/PID/stat of the pids on stdin (wardd's read)
 *                             once a second for S seconds: the CPU it took
 *   limits write FORM BYTES   FORM blocks: 64 KiB writes; lines: one
 *                             write(2) per 80-byte line
 *   limits exiter FIFO OUT    waits for a byte on FIFO, stores its
 *                             CLOCK_MONOTONIC ns in OUT (mapped), exits
 *
 * Exits 1 with a message on any error.
 */
#define _GNU_SOURCE

#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SLEEP_PATH	"/bin/sleep"
#define WARMUP		200	/* round trips not counted (at most M) */
#define BLOCK		65536	/* the block writer's write size */
#define LINE		80	/* the line writer's line, newline included */

extern char **environ;

static char *self;	/* argv[0]: the writer and exiter are us */

/* posix_spawn's argv is char *const[]: words kept writable for it. */
static char w_sleep[] = "sleep", w_1000[] = "1000", w_cat[] = "cat",
    w_write[] = "write", w_exiter[] = "exiter";

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "limits: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static size_t
count(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s)
		die("not a count: %s", s);
	return (size_t)v;
}

static void *
xcalloc(size_t n, size_t size)
{
	void *p;

	if ((p = calloc(n ? n : 1, size)) == NULL)
		die("out of memory");
	return p;
}

static int
pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int
pidfd_kill(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

static void
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t k;

	while (len > 0) {
		if ((k = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			die("write: %s", strerror(errno));
		}
		p += k;
		len -= (size_t)k;
	}
}

/* 0 at EOF before len bytes, else 1. */
static int
read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	ssize_t k;

	while (len > 0) {
		if ((k = read(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			die("read: %s", strerror(errno));
		}
		if (k == 0)
			return 0;
		p += k;
		len -= (size_t)k;
	}
	return 1;
}

/* ---- children: sleepers held by pidfd */

/*
 * Out of the epoll set, then closed: epoll drops an fd only when the last
 * reference to its file goes, which a close did not always end here (a
 * reaped and closed pidfd came back from epoll_wait, and waitid said
 * EBADF).
 */
static void
unwatch(int ep, int fd)
{
	if (epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL) == -1)
		die("epoll_ctl DEL: %s", strerror(errno));
	close(fd);
}

struct kids {
	pid_t	*pid;
	int	*pidfd;
	size_t	 n;
};

static void
kids_spawn(struct kids *k, size_t n)
{
	char *const argv[] = { w_sleep, w_1000, NULL };
	int e;

	k->pid = xcalloc(n, sizeof *k->pid);
	k->pidfd = xcalloc(n, sizeof *k->pidfd);
	for (k->n = 0; k->n < n; k->n++) {
		if ((e = posix_spawn(&k->pid[k->n], SLEEP_PATH, NULL, NULL, argv,
		    environ)) != 0)
			die("posix_spawn %s: %s (after %zu)", SLEEP_PATH,
			    strerror(e), k->n);
		if ((k->pidfd[k->n] = pidfd_open_(k->pid[k->n])) == -1)
			die("pidfd_open: %s (after %zu)", strerror(errno), k->n);
	}
}

/*
 * SIGKILL every child through its pidfd, then reap each as its pidfd
 * turns readable in one epoll set: what a supervisor's loop does. The
 * time it took, in seconds.
 */
static double
kids_killreap(struct kids *k)
{
	struct epoll_event ev, out[256];
	uint64_t t;
	siginfo_t si;
	size_t i, left;
	int ep, n, j;

	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1: %s", strerror(errno));
	for (i = 0; i < k->n; i++) {
		ev.events = EPOLLIN;
		ev.data.u64 = i;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, k->pidfd[i], &ev) == -1)
			die("epoll_ctl: %s", strerror(errno));
	}
	t = now_ns();
	for (i = 0; i < k->n; i++)
		if (pidfd_kill(k->pidfd[i], SIGKILL) == -1)
			die("pidfd_send_signal: %s", strerror(errno));
	for (left = k->n; left > 0; left -= (size_t)n) {
		if ((n = epoll_wait(ep, out, 256, -1)) == -1) {
			if (errno != EINTR)
				die("epoll_wait: %s", strerror(errno));
			n = 0;
		}
		for (j = 0; j < n; j++) {
			i = out[j].data.u64;
			if (waitid(P_PIDFD, (id_t)k->pidfd[i], &si, WEXITED) == -1)
				die("waitid: %s", strerror(errno));
			unwatch(ep, k->pidfd[i]);
		}
	}
	t = now_ns() - t;
	close(ep);
	free(k->pid);
	free(k->pidfd);
	k->n = 0;
	return t / 1e9;
}

/* ---- round trips */

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Print the median, nearest-rank p99 and maximum of s[0..n) in us. */
static void
print_spread(const char *what, uint64_t *s, size_t n)
{
	if (n == 0)
		die("no samples");
	qsort(s, n, sizeof *s, cmp_u64);
	printf("%s_p50_us %.2f\n%s_p99_us %.2f\n%s_max_us %.2f\n%s_count %zu\n",
	    what, s[n / 2] / 1e3, what, s[(n * 99 + 99) / 100 - 1] / 1e3,
	    what, s[n - 1] / 1e3, what, n);
}

/*
 * req to fd, then reply_len bytes back, m times after the warm-up (or,
 * with secs > 0, for that many seconds): the one client both sides get.
 */
static void
rtt_loop(int fd, const char *req, size_t req_len, size_t reply_len, size_t m,
    double secs)
{
	uint64_t *s, t, end = 0;
	size_t i, cap = m;
	char *back;

	back = xcalloc(1, reply_len);
	if (secs > 0)
		cap = (size_t)(secs * 200000) + 1;
	s = xcalloc(cap, sizeof *s);
	for (i = 0; i < WARMUP && (i < m || secs > 0); i++) {
		write_all(fd, req, req_len);
		if (!read_all(fd, back, reply_len))
			die("EOF from the peer");
	}
	if (secs > 0)
		end = now_ns() + (uint64_t)(secs * 1e9);
	for (i = 0; i < cap; i++) {
		t = now_ns();
		write_all(fd, req, req_len);
		if (!read_all(fd, back, reply_len))
			die("EOF from the peer");
		s[i] = now_ns() - t;
		if (secs > 0 && now_ns() >= end) {
			i++;
			break;
		}
	}
	print_spread("rtt", s, i);
	free(s);
	free(back);
}

static void
echo_child(int fd, size_t req_len, size_t reply_len)
{
	char *buf = xcalloc(1, req_len > reply_len ? req_len : reply_len);

	memset(buf, 'x', reply_len);
	while (read_all(fd, buf, req_len))
		write_all(fd, buf, reply_len);
	_exit(0);
}

static void
mode_echo(size_t m, size_t req_len, size_t reply_len, double secs)
{
	char *req = xcalloc(1, req_len);
	int sv[2], status;
	pid_t pid;

	memset(req, 'r', req_len);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		die("socketpair: %s", strerror(errno));
	fflush(stdout);
	if ((pid = fork()) == -1)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		close(sv[0]);
		echo_child(sv[1], req_len, reply_len);
	}
	close(sv[1]);
	rtt_loop(sv[0], req, req_len, reply_len, m, secs);
	close(sv[0]);
	waitpid(pid, &status, 0);
	free(req);
}

static void
mode_rtt(const char *path, const char *hex, size_t reply_len, size_t m,
    double secs)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t i, len = strlen(hex) / 2;
	char *req = xcalloc(1, len);
	unsigned int b;
	int fd;

	for (i = 0; i < len; i++) {
		if (sscanf(hex + 2 * i, "%2x", &b) != 1)
			die("not hex: %s", hex);
		req[i] = (char)b;
	}
	if (strlen(path) >= sizeof sun.sun_path)
		die("socket path too long");
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		die("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1)
		die("connect %s: %s", path, strerror(errno));
	rtt_loop(fd, req, len, reply_len, m, secs);
	close(fd);
	free(req);
}

/* ---- pidfd wake-up */

static void
mode_exiter(const char *fifo, const char *out)
{
	uint64_t *at;
	char c;
	int fd;

	if ((fd = open(out, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1)
		die("open %s: %s", out, strerror(errno));
	if (ftruncate(fd, sizeof *at) == -1)
		die("ftruncate: %s", strerror(errno));
	at = mmap(NULL, sizeof *at, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (at == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	if ((fd = open(fifo, O_RDONLY | O_CLOEXEC)) == -1)
		die("open %s: %s", fifo, strerror(errno));
	if (read(fd, &c, 1) != 1)
		die("no byte on %s", fifo);
	*at = now_ns();
	_exit(0);
}

/* The exiter's stored instant, read back after its exit. */
static uint64_t
exit_instant(const char *out)
{
	uint64_t at = 0;
	int fd;

	if ((fd = open(out, O_RDONLY | O_CLOEXEC)) == -1)
		die("open %s: %s", out, strerror(errno));
	if (read(fd, &at, sizeof at) != (ssize_t)sizeof at || at == 0)
		die("no exit instant in %s", out);
	close(fd);
	return at;
}

/*
 * The spawn limit (N sleepers), the pidfd wake-up limit (K exiters waited
 * for in one epoll set with the N), the kill+reap limit (the N): one mode,
 * so that the N are spawned once.
 */
static void
mode_spawn(size_t n, size_t k)
{
	char dir[] = "/tmp/ward-limits.XXXXXX", fifo[64], out[64];
	struct epoll_event ev, got;
	struct kids held;
	uint64_t *s, t, t0;
	siginfo_t si;
	size_t i;
	pid_t pid;
	int ep, pidfd, fd, e;

	if (mkdtemp(dir) == NULL)
		die("mkdtemp: %s", strerror(errno));
	snprintf(fifo, sizeof fifo, "%s/go", dir);
	snprintf(out, sizeof out, "%s/at", dir);
	if (mkfifo(fifo, 0600) == -1)
		die("mkfifo: %s", strerror(errno));
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1: %s", strerror(errno));
	t0 = now_ns();
	kids_spawn(&held, n);
	t0 = now_ns() - t0;
	printf("spawn_s %.6f\n", t0 / 1e9);
	for (i = 0; i < n; i++) {
		ev.events = EPOLLIN;
		ev.data.u64 = i;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, held.pidfd[i], &ev) == -1)
			die("epoll_ctl: %s", strerror(errno));
	}
	s = xcalloc(k, sizeof *s);
	for (i = 0; i < k; i++) {
		char *const argv[] = { self, w_exiter, fifo, out, NULL };

		unlink(out);
		if ((e = posix_spawn(&pid, self, NULL, NULL, argv, environ)) != 0)
			die("posix_spawn %s: %s", self, strerror(e));
		if ((pidfd = pidfd_open_(pid)) == -1)
			die("pidfd_open: %s", strerror(errno));
		ev.events = EPOLLIN;
		ev.data.u64 = n;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, pidfd, &ev) == -1)
			die("epoll_ctl: %s", strerror(errno));
		if ((fd = open(fifo, O_WRONLY | O_CLOEXEC)) == -1)
			die("open %s: %s", fifo, strerror(errno));
		write_all(fd, "g", 1);
		while (epoll_wait(ep, &got, 1, -1) != 1)
			if (errno != EINTR)
				die("epoll_wait: %s", strerror(errno));
		t = now_ns();
		if (got.data.u64 != n)
			die("a held child died");
		close(fd);
		if (waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED) == -1)
			die("waitid: %s", strerror(errno));
		unwatch(ep, pidfd);
		s[i] = t - exit_instant(out);
	}
	if (k > 0)
		print_spread("wake", s, k);
	close(ep);
	printf("killreap_s %.6f\n", kids_killreap(&held));
	unlink(fifo);
	unlink(out);
	rmdir(dir);
	free(s);
}

/* ---- output */

static void
mode_write(const char *form, size_t bytes)
{
	char buf[BLOCK];
	size_t len, step;

	if (strcmp(form, "blocks") == 0)
		step = BLOCK;
	else if (strcmp(form, "lines") == 0)
		step = LINE;
	else
		die("no such form: %s (blocks, lines)", form);
	memset(buf, 'x', sizeof buf);
	for (len = LINE - 1; len < sizeof buf; len += LINE)
		buf[len] = '\n';
	for (; bytes > 0; bytes -= len) {
		len = bytes < step ? bytes : step;
		write_all(1, buf, len);
	}
	exit(0);
}

static void
mode_cat(char *form, char *bytes, const char *file)
{
	char *const wargv[] = { self, w_write, form, bytes, NULL };
	char *const cargv[] = { w_cat, NULL };
	posix_spawn_file_actions_t wa, ca;
	pid_t w, c;
	uint64_t t;
	int p[2], e, status;

	t = now_ns();
	if (pipe2(p, O_CLOEXEC) == -1)
		die("pipe2: %s", strerror(errno));
	posix_spawn_file_actions_init(&wa);
	posix_spawn_file_actions_adddup2(&wa, p[1], 1);
	posix_spawn_file_actions_init(&ca);
	posix_spawn_file_actions_adddup2(&ca, p[0], 0);
	posix_spawn_file_actions_addopen(&ca, 1, file,
	    O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if ((e = posix_spawn(&w, self, &wa, NULL, wargv, environ)) != 0 ||
	    (e = posix_spawnp(&c, "cat", &ca, NULL, cargv, environ)) != 0)
		die("posix_spawn: %s", strerror(e));
	close(p[0]);
	close(p[1]);
	if (waitpid(w, &status, 0) == -1 || status != 0)
		die("the writer failed (0x%x)", status);
	if (waitpid(c, &status, 0) == -1 || status != 0)
		die("cat failed (0x%x)", status);
	t = now_ns() - t;
	printf("cat_s %.6f\ncat_mib_s %.1f\n", t / 1e9,
	    count(bytes) / 1048576.0 / (t / 1e9));
}

/* ---- the /proc sampler */

static void
sample_file(pid_t pid, const char *which)
{
	char path[64], buf[1024];
	int fd;

	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, which);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		die("open %s: %s", path, strerror(errno));
	if (read(fd, buf, sizeof buf) <= 0)
		die("read %s: %s", path, strerror(errno));
	close(fd);
}

/* What wardd's metrics tick reads of each running instance. */
static void
mode_sampler(size_t secs)
{
	struct timespec at;
	struct rusage r0, r1;
	size_t i, n = 0, cap = 1024;
	pid_t *pid = xcalloc(cap, sizeof *pid);
	int v, tick;
	double ms;

	while (scanf("%d", &v) == 1) {
		if (n == cap && (pid = realloc(pid, (cap *= 2) * sizeof *pid))
		    == NULL)
			die("out of memory");
		pid[n++] = v;
	}
	getrusage(RUSAGE_SELF, &r0);
	clock_gettime(CLOCK_MONOTONIC, &at);
	for (tick = 0; tick < (int)secs; tick++) {
		/* wardd's metrics: stat each pass, smaps_rollup (PSS) every
		 * tenth (metrics.c's METRICS_FULL_EVERY). */
		for (i = 0; i < n; i++) {
			sample_file(pid[i], "stat");
			if (tick % 10 == 0)
				sample_file(pid[i], "smaps_rollup");
		}
		at.tv_sec++;
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at,
		    NULL) == EINTR)
			;
	}
	getrusage(RUSAGE_SELF, &r1);
	ms = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) * 1e3 +
	    (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) / 1e3 +
	    (r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) * 1e3 +
	    (r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e3;
	printf("sampler_pids %zu\nsampler_cpu_ms %.1f\n", n, ms);
	free(pid);
}

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: limits spawn N K | "
	    "echo M REQ REPLY [SECS] | rtt SOCK HEX REPLY M [SECS] | "
	    "cat FORM BYTES FILE | sampler SECS < PIDS | "
	    "write FORM BYTES | exiter FIFO OUT\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *m;

	if (argc < 2)
		usage();
	self = argv[0];
	m = argv[1];
	if (strcmp(m, "spawn") == 0 && argc == 4)
		mode_spawn(count(argv[2]), count(argv[3]));
	else if (strcmp(m, "echo") == 0 && (argc == 5 || argc == 6))
		mode_echo(count(argv[2]), count(argv[3]), count(argv[4]),
		    argc == 6 ? atof(argv[5]) : 0);
	else if (strcmp(m, "rtt") == 0 && (argc == 6 || argc == 7))
		mode_rtt(argv[2], argv[3], count(argv[4]), count(argv[5]),
		    argc == 7 ? atof(argv[6]) : 0);
	else if (strcmp(m, "cat") == 0 && argc == 5)
		mode_cat(argv[2], argv[3], argv[4]);
	else if (strcmp(m, "sampler") == 0 && argc == 3)
		mode_sampler(count(argv[2]));
	else if (strcmp(m, "write") == 0 && argc == 4)
		mode_write(argv[2], count(argv[3]));
	else if (strcmp(m, "exiter") == 0 && argc == 4)
		mode_exiter(argv[2], argv[3]);
	else
		usage();
	return 0;
}
