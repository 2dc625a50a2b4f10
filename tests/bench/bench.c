/*
 * bench.c: what wardd costs, measured through libward against a private
 * wardd and set against baselines taken in the same run. Not a test: it
 * prints figures and exits 0 (1 on any error).
 *
 *   spawn    N instance.run of `sleep 1000`, one request at a time, versus
 *            N posix_spawn of /bin/sleep 1000 by this process
 *   latency  M ward.hello round trips on one connection, versus M round
 *            trips of a message of the request's size through a socketpair
 *            to a forked child that echoes it; idle and with N running
 *   memory   wardd's VmRSS idle and with N running; its threads and fds
 *   stop     instance.stop to all N, until every died event arrived
 *
 * usage: bench [--wardd PATH] [-n N] [-m M]
 * See tests/bench/README.md for how to build and run it.
 */
#define _GNU_SOURCE

#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>

#include "ward.h"
#include "ward-proto.h"

#define SLEEP_PATH	"/bin/sleep"
#define WARMUP		200		/* round trips not counted */
#define READY_MS	10000		/* wardd must answer hello by then */
#define EXIT_MS		30000		/* wardd must exit by then */
#define EVENT_MS	20000		/* longest wait for one died event */

extern char **environ;

/* Everything the error path has to undo or free. */
static struct {
	char		 dir[64];	/* the mkdtemp dir, "" until made */
	char		 log[PATH_MAX];
	pid_t		 wardd;		/* 0: not running */
	int		 wardd_pidfd;
	pid_t		 echo;		/* the socketpair echo child */
	int		 echo_fd;
	pid_t		*raw;		/* posix_spawn baseline children */
	size_t		 nraw;
	struct ward	*w, *sub;
	uint64_t	*ids, *sorted;
	char		*seen;
	uint64_t	*samples;
	int		 dying;
} B = { .wardd_pidfd = -1, .echo_fd = -1 };

static void	cleanup(void);

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (!B.dying) {
		B.dying = 1;
		cleanup();
	}
	exit(1);
}

static void __attribute__((noreturn))
die_ward(const char *what, struct ward *w)
{
	const struct ward_error *e = ward_error(w);

	die("%s: %s: %s", what, e->code, e->message);
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *
xcalloc(size_t n, size_t size)
{
	void *p;

	if ((p = calloc(n, size)) == NULL)
		die("out of memory");
	return p;
}

/* ---- child processes */

static int
pidfd_open_(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

/*
 * Reap pid within timeout_ms when a pidfd is at hand (else wait for as long
 * as it takes). 0 and *status, or -1 if it is still running.
 */
static int
reap_within(pid_t pid, int pidfd, int timeout_ms, int *status)
{
	struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
	int rc;

	if (pidfd != -1) {
		do
			rc = poll(&pfd, 1, timeout_ms);
		while (rc == -1 && errno == EINTR);
		if (rc == 0)
			return -1;
	}
	while (waitpid(pid, status, 0) == -1) {
		if (errno != EINTR)
			return 0;	/* ECHILD: someone reaped it; it is gone */
	}
	return 0;
}

static void
kill_raw_children(void)
{
	size_t i;
	int status;

	for (i = 0; i < B.nraw; i++)
		kill(B.raw[i], SIGKILL);
	for (i = 0; i < B.nraw; i++)
		while (waitpid(B.raw[i], &status, 0) == -1 && errno == EINTR)
			;
	B.nraw = 0;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) == -1)
		fprintf(stderr, "bench: cannot remove %s: %s\n", path,
		    strerror(errno));
	return 0;
}

/* The tail of wardd's log, to stderr. */
static void
show_log(const char *why)
{
	char buf[4096];
	ssize_t n;
	off_t size;
	int fd;

	if (B.log[0] == '\0' || (fd = open(B.log, O_RDONLY | O_CLOEXEC)) == -1)
		return;
	if ((size = lseek(fd, 0, SEEK_END)) > 0) {
		fprintf(stderr, "bench: %s (last %d bytes):\n", why,
		    (int)(size < (off_t)sizeof buf ? size : (off_t)sizeof buf));
		lseek(fd, size > (off_t)sizeof buf ? size - (off_t)sizeof buf : 0,
		    SEEK_SET);
		while ((n = read(fd, buf, sizeof buf)) > 0)
			fwrite(buf, 1, n, stderr);
	}
	close(fd);
}

/* Undo whatever is still standing; for the error path and the end. */
static void
cleanup(void)
{
	int status;

	if (B.echo_fd != -1)
		close(B.echo_fd);
	B.echo_fd = -1;
	if (B.echo > 0) {
		kill(B.echo, SIGKILL);
		while (waitpid(B.echo, &status, 0) == -1 && errno == EINTR)
			;
		B.echo = 0;
	}
	kill_raw_children();
	ward_close(B.sub);
	ward_close(B.w);
	B.sub = B.w = NULL;
	if (B.wardd > 0) {
		/* SIGTERM stops its instances, then it exits. */
		kill(B.wardd, SIGTERM);
		if (reap_within(B.wardd, B.wardd_pidfd, EXIT_MS, &status) == -1) {
			kill(B.wardd, SIGKILL);
			reap_within(B.wardd, -1, -1, &status);
		}
		B.wardd = 0;
	}
	if (B.wardd_pidfd != -1)
		close(B.wardd_pidfd);
	B.wardd_pidfd = -1;
	if (B.dying)
		show_log("wardd's log");
	if (B.dir[0] != '\0')
		nftw(B.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	B.dir[0] = '\0';
	free(B.raw);
	free(B.ids);
	free(B.sorted);
	free(B.seen);
	free(B.samples);
	B.raw = NULL;
	B.ids = B.sorted = B.samples = NULL;
	B.seen = NULL;
}

/* ---- wardd */

static struct ward *
connect_hello(const char *sock, struct ward_hello *h, struct ward_error *err)
{
	struct ward *w;

	if ((w = ward_connect(sock, err)) == NULL)
		return NULL;
	if (ward_hello(w, h) == -1) {
		*err = *ward_error(w);
		ward_close(w);
		return NULL;
	}
	return w;
}

/* Start wardd in B.dir; return once it answers ward.hello on B.w. */
static void
start_wardd(const char *path, struct ward_hello *h)
{
	char sock[PATH_MAX], state[PATH_MAX], conf[PATH_MAX];
	struct ward_error err;
	struct timespec pause = { 0, 1000000 };
	uint64_t deadline;
	pid_t pid, parent = getpid();
	int fd, status;

	snprintf(B.dir, sizeof B.dir, "/tmp/ward-bench.XXXXXX");
	if (mkdtemp(B.dir) == NULL) {
		B.dir[0] = '\0';
		die("mkdtemp: %s", strerror(errno));
	}
	snprintf(sock, sizeof sock, "%s/ward.sock", B.dir);
	snprintf(state, sizeof state, "%s/state", B.dir);
	snprintf(conf, sizeof conf, "%s/conf", B.dir);
	snprintf(B.log, sizeof B.log, "%s/wardd.log", B.dir);
	/* An empty config dir: /etc/ward/ward.d must not change the figures. */
	if (mkdir(conf, 0755) == -1)
		die("mkdir %s: %s", conf, strerror(errno));
	if ((fd = open(B.log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644)) == -1)
		die("%s: %s", B.log, strerror(errno));
	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) == -1)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (null == -1 || dup2(null, 0) == -1 || dup2(fd, 1) == -1 ||
		    dup2(fd, 2) == -1)
			_exit(127);
		/* If we die, wardd gets SIGTERM: it stops its instances. */
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1 ||
		    getppid() != parent)
			_exit(127);
		/* Not socket-activated, not under a service manager. */
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_PID");
		unsetenv("LISTEN_FDNAMES");
		unsetenv("NOTIFY_SOCKET");
		/* Not root: wardd works out its defaults before it reads
		 * --socket and --state-dir, and stops without this. */
		if (setenv("XDG_RUNTIME_DIR", B.dir, 0) == -1)
			_exit(127);
		execl(path, "wardd", "--socket", sock, "--state-dir", state,
		    "--config-dir", conf, "--log-level", "warning",
		    "--log-target", "stderr", (char *)NULL);
		dprintf(2, "bench: cannot run %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	close(fd);
	B.wardd = pid;
	if ((B.wardd_pidfd = pidfd_open_(pid)) == -1)
		fprintf(stderr, "bench: pidfd_open: %s (waits are unbounded)\n",
		    strerror(errno));

	deadline = now_ns() + (uint64_t)READY_MS * 1000000u;
	while ((B.w = connect_hello(sock, h, &err)) == NULL) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			B.wardd = 0;
			die("%s exited before it was ready (status 0x%x)", path,
			    status);
		}
		if (now_ns() > deadline)
			die("wardd not ready after %d ms: %s: %s", READY_MS,
			    err.code, err.message);
		nanosleep(&pause, NULL);
		if (pause.tv_nsec < 64000000)
			pause.tv_nsec *= 2;	/* 1, 2, 4 ... 128 ms */
	}
	if (h->pid != pid)
		die("the socket is answered by pid %d, not our wardd %d",
		    (int)h->pid, (int)pid);
	if (!h->admin)
		die("wardd does not take us for an admin (uid %d)", (int)h->uid);
}

static void
stop_wardd(void)
{
	int status;

	if (ward_shutdown(B.w, 1) == -1)
		die_ward("ward_shutdown", B.w);
	ward_close(B.w);
	ward_close(B.sub);
	B.w = B.sub = NULL;
	if (reap_within(B.wardd, B.wardd_pidfd, EXIT_MS, &status) == -1)
		die("wardd did not exit within %d ms of ward.shutdown", EXIT_MS);
	B.wardd = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		die("wardd ended with status 0x%x", status);
}

/* ---- /proc */

static long
vmrss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		die("%s: %s", path, strerror(errno));
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kb = strtol(line + 6, NULL, 10);
			break;
		}
	fclose(f);
	if (kb < 0)
		die("no VmRSS in %s", path);
	return kb;
}

static long
count_entries(pid_t pid, const char *what)
{
	char path[64];
	struct dirent *d;
	long n = 0;
	DIR *dir;

	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, what);
	if ((dir = opendir(path)) == NULL)
		die("%s: %s", path, strerror(errno));
	while ((d = readdir(dir)) != NULL)
		if (d->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

struct mem {
	long	 vmrss_kb, threads, fds;
	uint64_t stats_rss_kb, running;
};

static void
sample_mem(struct mem *m)
{
	struct ward_stats st;

	if (ward_stats(B.w, &st) == -1)
		die_ward("ward_stats", B.w);
	m->stats_rss_kb = st.rss_kb;
	m->running = st.running;
	m->vmrss_kb = vmrss_kb(B.wardd);
	m->threads = count_entries(B.wardd, "task");
	m->fds = count_entries(B.wardd, "fd");
}

/* ---- latency */

struct rtt {
	double	 median_us, p99_us;
};

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Median and nearest-rank p99 of B.samples[0..m), which it sorts. */
static struct rtt
summarize(size_t m)
{
	struct rtt r;
	size_t k;

	qsort(B.samples, m, sizeof *B.samples, cmp_u64);
	r.median_us = (m % 2 ? (double)B.samples[m / 2] :
	    ((double)B.samples[m / 2 - 1] + (double)B.samples[m / 2]) / 2) / 1e3;
	k = (99 * m + 99) / 100;	/* ceil(0.99 m) */
	r.p99_us = (double)B.samples[k > 0 ? k - 1 : 0] / 1e3;
	return r;
}

static struct rtt
hello_rtt(size_t m)
{
	struct ward_hello h;
	uint64_t t;
	size_t i;

	for (i = 0; i < WARMUP; i++)
		if (ward_hello(B.w, &h) == -1)
			die_ward("ward_hello", B.w);
	for (i = 0; i < m; i++) {
		t = now_ns();
		if (ward_hello(B.w, &h) == -1)
			die_ward("ward_hello", B.w);
		B.samples[i] = now_ns() - t;
	}
	return summarize(m);
}

static void
echo_child(int fd)
{
	char buf[4096];
	ssize_t n, off, k;

	for (;;) {
		if ((n = read(fd, buf, sizeof buf)) == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(n == 0 ? 0 : 1);
		for (off = 0; off < n; off += k)
			if ((k = send(fd, buf + off, n - off, MSG_NOSIGNAL)) == -1) {
				if (errno != EINTR)
					_exit(1);
				k = 0;
			}
	}
}

static void
echo_once(const char *msg, size_t len, char *back)
{
	ssize_t k;
	size_t off;

	for (off = 0; off < len; off += k)
		if ((k = send(B.echo_fd, msg + off, len - off, MSG_NOSIGNAL)) == -1) {
			if (errno != EINTR)
				die("echo send: %s", strerror(errno));
			k = 0;
		}
	for (off = 0; off < len; off += k)
		if ((k = read(B.echo_fd, back + off, len - off)) <= 0) {
			if (k == -1 && errno == EINTR) {
				k = 0;
				continue;
			}
			die("echo read: %s", k == 0 ? "EOF" : strerror(errno));
		}
}

/* The baseline: msg through a socketpair to a forked echo child and back. */
static struct rtt
echo_rtt(const char *msg, size_t len, size_t m)
{
	char back[256];
	int sv[2], status;
	uint64_t t;
	size_t i;

	if (len > sizeof back)
		die("echo message too long");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		die("socketpair: %s", strerror(errno));
	fflush(stdout);
	fflush(stderr);
	if ((B.echo = fork()) == -1) {
		B.echo = 0;
		close(sv[0]);
		close(sv[1]);
		die("fork: %s", strerror(errno));
	}
	if (B.echo == 0) {
		close(sv[0]);
		echo_child(sv[1]);
	}
	close(sv[1]);
	B.echo_fd = sv[0];
	for (i = 0; i < WARMUP; i++)
		echo_once(msg, len, back);
	for (i = 0; i < m; i++) {
		t = now_ns();
		echo_once(msg, len, back);
		B.samples[i] = now_ns() - t;
	}
	if (memcmp(back, msg, len) != 0)
		die("the echo came back different");
	close(B.echo_fd);
	B.echo_fd = -1;
	while (waitpid(B.echo, &status, 0) == -1 && errno == EINTR)
		;
	B.echo = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		die("the echo child ended with status 0x%x", status);
	return summarize(m);
}

/* ---- spawn */

static double
spawn_raw(size_t n)
{
	char *const argv[] = { "sleep", "1000", NULL };
	uint64_t t;
	pid_t pid;
	int e;

	B.raw = xcalloc(n, sizeof *B.raw);
	t = now_ns();
	while (B.nraw < n) {
		if ((e = posix_spawn(&pid, SLEEP_PATH, NULL, NULL, argv,
		    environ)) != 0)
			die("posix_spawn %s: %s", SLEEP_PATH, strerror(e));
		B.raw[B.nraw++] = pid;
	}
	t = now_ns() - t;
	kill_raw_children();
	free(B.raw);
	B.raw = NULL;
	return t / 1e9;
}

static double
spawn_ward(size_t n)
{
	const char *const argv[] = { "sleep", "1000", NULL };
	struct ward_spec spec;
	uint64_t t;
	size_t i;

	ward_spec_init(&spec);
	spec.argv = argv;
	B.ids = xcalloc(n, sizeof *B.ids);
	t = now_ns();
	for (i = 0; i < n; i++)
		if (ward_instance_run(B.w, &spec, &B.ids[i]) == -1)
			die_ward("ward_instance_run", B.w);
	t = now_ns() - t;
	return t / 1e9;
}

/* ---- stop */

/* Count a died event for one of ours; 1 if it was news. */
static int
note_event(const struct ward_event *ev, size_t n)
{
	uint64_t *p;
	size_t k;

	if (strcmp(ev->type, "overflow") == 0)
		die("the subscriber overflowed: %s", ev->message ? ev->message : "");
	if (strcmp(ev->type, "died") != 0)
		return 0;
	if ((p = bsearch(&ev->id, B.sorted, n, sizeof *B.sorted,
	    cmp_u64)) == NULL)
		return 0;
	k = (size_t)(p - B.sorted);
	if (B.seen[k])
		return 0;
	B.seen[k] = 1;
	return 1;
}

/*
 * instance.stop (timeout 5000 ms) to all n, one request at a time, reading
 * the died events that have already arrived as it goes so that the
 * subscriber never falls behind; then wait for the rest.
 */
static void
stop_all(size_t n, double *acked_s, double *died_s)
{
	const char *const types[] = { "died", NULL };
	struct ward_event ev;
	struct ward_error err;
	char ident[32];
	size_t i, died = 0;
	uint64_t t;
	int rc;

	if ((B.sub = ward_connect(ward_socket_path(B.w), &err)) == NULL)
		die("ward_connect: %s: %s", err.code, err.message);
	if (ward_events_subscribe(B.sub, NULL, 0, types) == -1)
		die_ward("ward_events_subscribe", B.sub);
	B.sorted = xcalloc(n, sizeof *B.sorted);
	B.seen = xcalloc(n, 1);
	memcpy(B.sorted, B.ids, n * sizeof *B.sorted);
	qsort(B.sorted, n, sizeof *B.sorted, cmp_u64);
	for (i = 1; i < n; i++)
		if (B.sorted[i] == B.sorted[i - 1])
			die("instance.run gave id %" PRIu64 " twice", B.sorted[i]);

	t = now_ns();
	for (i = 0; i < n; i++) {
		snprintf(ident, sizeof ident, "%" PRIu64, B.ids[i]);
		if (ward_instance_stop(B.w, ident, 5000) == -1)
			die_ward("ward_instance_stop", B.w);
		while ((rc = ward_event_next(B.sub, &ev, 0)) == 1) {
			died += note_event(&ev, n);
			ward_event_free(&ev);
		}
		if (rc == -1)
			die_ward("ward_event_next", B.sub);
	}
	*acked_s = (now_ns() - t) / 1e9;
	while (died < n) {
		if ((rc = ward_event_next(B.sub, &ev, EVENT_MS)) == -1)
			die_ward("ward_event_next", B.sub);
		if (rc == 0)
			die("no died event for %d ms; %zu of %zu arrived", EVENT_MS,
			    died, n);
		died += note_event(&ev, n);
		ward_event_free(&ev);
	}
	*died_s = (now_ns() - t) / 1e9;
}

/* ---- the report */

struct row {
	char	 what[48], value[24], base[24], ratio[16];
};

static struct row rows[32];
static size_t nrows;

static struct row *
add_row(void)
{
	struct row *r;

	if (nrows == sizeof rows / sizeof rows[0])
		die("too many rows");
	r = &rows[nrows++];
	strcpy(r->base, "-");
	strcpy(r->ratio, "-");
	return r;
}

/* A row whose figure (with prec decimals) is set against a baseline. */
static void __attribute__((format(printf, 4, 5)))
add_ratio(int prec, double v, double base, const char *fmt, ...)
{
	struct row *r = add_row();
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->what, sizeof r->what, fmt, ap);
	va_end(ap);
	snprintf(r->value, sizeof r->value, "%.*f", prec, v);
	snprintf(r->base, sizeof r->base, "%.*f", prec, base);
	if (base > 0)
		snprintf(r->ratio, sizeof r->ratio, "%.2fx", v / base);
}

/* A row with a figure only. */
static void __attribute__((format(printf, 3, 4)))
add_value(int prec, double v, const char *fmt, ...)
{
	struct row *r = add_row();
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->what, sizeof r->what, fmt, ap);
	va_end(ap);
	snprintf(r->value, sizeof r->value, "%.*f", prec, v);
}

static void __attribute__((noreturn))
usage(int rc)
{
	fprintf(rc ? stderr : stdout,
	    "usage: bench [--wardd PATH] [-n N] [-m M]\n"
	    "  --wardd PATH  the wardd to start (default ./src/wardd)\n"
	    "  -n N          instances to spawn (default 1000)\n"
	    "  -m M          round trips per latency figure (default 20000)\n");
	exit(rc);
}

static size_t
parse_count(const char *s, size_t max)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || s[0] == '-' || v < 1 || v > max) {
		fprintf(stderr, "bench: %s: not a count from 1 to %zu\n", s, max);
		usage(2);
	}
	return (size_t)v;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "wardd", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *wardd = "./src/wardd";
	size_t n = 1000, m = 20000, i;
	struct rtt echo0, hello0, echo1, hello1;
	double raw_s, ward_s, acked_s, died_s;
	struct mem mem0, mem1;
	struct ward_hello h;
	struct utsname u;
	msgpack_sbuffer req;
	msgpack_packer pk;
	cpu_set_t cpus;
	long ncpu;
	int ch;

	while ((ch = getopt_long(argc, argv, "n:m:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'w':
			wardd = optarg;
			break;
		case 'n':
			n = parse_count(optarg, 100000);
			break;
		case 'm':
			m = parse_count(optarg, 10000000);
			break;
		case 'h':
			usage(0);
		default:
			usage(2);
		}
	}
	if (optind != argc)
		usage(2);

	if (uname(&u) == -1)
		die("uname: %s", strerror(errno));
	ncpu = sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? CPU_COUNT(&cpus) :
	    sysconf(_SC_NPROCESSORS_ONLN);
	printf("machine: %s %s %s, nproc %ld\n", u.sysname, u.release, u.machine,
	    ncpu);
	fflush(stdout);

	/* What the echo baseline sends: a ward.hello request as libward
	 * packs it, with a msgid of the size most of the run uses. */
	msgpack_sbuffer_init(&req);
	msgpack_packer_init(&pk, &req, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 4);
	msgpack_pack_int(&pk, WARD_MSG_REQUEST);
	msgpack_pack_uint32(&pk, 1000);
	msgpack_pack_str(&pk, strlen(WARD_M_HELLO));
	msgpack_pack_str_body(&pk, WARD_M_HELLO, strlen(WARD_M_HELLO));
	msgpack_pack_array(&pk, 0);

	B.samples = xcalloc(m, sizeof *B.samples);
	start_wardd(wardd, &h);
	printf("wardd %s (pid %d), N = %zu instances, M = %zu round trips, "
	    "echo message %zu bytes\n\n", h.version, (int)h.pid, n, m, req.size);
	fflush(stdout);

	/* Idle. */
	sample_mem(&mem0);
	echo0 = echo_rtt(req.data, req.size, m);
	hello0 = hello_rtt(m);

	/* Spawn: the baseline, then wardd. */
	raw_s = spawn_raw(n);
	ward_s = spawn_ward(n);

	/* With n running. */
	sample_mem(&mem1);
	if (mem1.running != n)
		die("ward.stats says %" PRIu64 " running, not %zu", mem1.running, n);
	echo1 = echo_rtt(req.data, req.size, m);
	hello1 = hello_rtt(m);
	msgpack_sbuffer_destroy(&req);

	stop_all(n, &acked_s, &died_s);
	stop_wardd();
	show_log("wardd logged");	/* only what is warning or worse */

	add_ratio(3, ward_s, raw_s, "spawn %zu (s)", n);
	add_ratio(0, ward_s / n * 1e6, raw_s / n * 1e6,
	    "spawn per instance (us)");
	add_ratio(1, hello0.median_us, echo0.median_us,
	    "hello round trip median (us)");
	add_ratio(1, hello0.p99_us, echo0.p99_us,
	    "hello round trip p99 (us)");
	add_ratio(1, hello1.median_us, echo1.median_us,
	    "  %zu running: median (us)", n);
	add_ratio(1, hello1.p99_us, echo1.p99_us,
	    "  %zu running: p99 (us)", n);
	add_value(0, mem0.vmrss_kb, "wardd VmRSS idle (KiB)");
	add_ratio(0, mem1.vmrss_kb, mem0.vmrss_kb,
	    "wardd VmRSS, %zu running (KiB)", n);
	add_value(2, (double)(mem1.vmrss_kb - mem0.vmrss_kb) / n,
	    "wardd VmRSS per instance (KiB)");
	add_ratio(0, mem1.stats_rss_kb, mem0.stats_rss_kb,
	    "ward.stats rss_kb, %zu running", n);
	add_ratio(0, mem1.threads, mem0.threads,
	    "wardd threads, %zu running", n);
	strcpy(rows[nrows - 1].ratio, mem0.threads == 1 && mem1.threads == 1 ?
	    "ok" : "NOT 1");
	add_ratio(0, mem1.fds, mem0.fds, "wardd fds, %zu running", n);
	strcpy(rows[nrows - 1].ratio, "-");
	add_value(2, (double)(mem1.fds - mem0.fds) / n,
	    "wardd fds per instance");
	add_value(3, acked_s, "stop %zu: all replies (s)", n);
	add_value(3, died_s, "stop %zu: all died events (s)", n);
	add_value(0, died_s / n * 1e6, "stop per instance (us)");

	printf("%-34s %-12s %-12s %s\n", "what", "value", "baseline", "ratio");
	for (i = 0; i < nrows; i++)
		printf("%-34s %-12s %-12s %s\n", rows[i].what, rows[i].value,
		    rows[i].base, rows[i].ratio);
	printf("\nbaselines: spawn = posix_spawn(%s) from this process; "
	    "round trip = the same\nbytes echoed through a socketpair by a "
	    "forked child; memory = wardd idle.\n", SLEEP_PATH);
	if (mem0.threads != 1 || mem1.threads != 1)
		printf("NOTE: wardd should have exactly 1 thread; it had %ld idle "
		    "and %ld with %zu running\n", mem0.threads, mem1.threads, n);

	cleanup();
	return 0;
}
