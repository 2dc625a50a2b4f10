/*
 * payload.c: the test payload. It runs its arguments as steps, in order, so
 * one binary plays every kind of child the tests need:
 *
 *   report FILE      write what it was given: signal mask, non-default
 *                    dispositions, open fds, ids, session, WARD_* env (and
 *                    NOTIFY_*, LISTEN_*, TEST_*, PATH, HOME, USER, LOGNAME,
 *                    LANG, TERM);
 *                    then umask, rlimit_NAME (SOFT:HARD), nice,
 *                    oom_score_adj and cgroup (its cgroup2 path)
 *   fail TEXT        write TEXT to the failure pipe (fd 3)
 *   failbytes N      write N bytes of 'x' to fd 3
 *   notify LINE      write LINE and a newline to the notify pipe (fd 4)
 *   notifyraw TEXT   write TEXT to fd 4 as is
 *   exit N           exit with code N
 *   signal SIG       kill itself with signal number SIG (core dumps off)
 *   hang             wait for signals forever
 *   ignore-term      ignore SIGTERM from here on
 *   alloc MB         allocate and touch MB megabytes
 *   cpu MS           burn MS milliseconds of CPU
 *   grandchild FILE  fork a grandchild that keeps fds 3 and 4 open, writes its
 *                    pid to FILE and hangs
 *   daemon FILE      double-fork a daemon that writes its pid to FILE and hangs
 *   file NAME TEXT   write TEXT to $WARD_RUNTIME_DIR/NAME (crash artifacts)
 *   wait-file PATH   block until PATH exists (inotify; the test creates it)
 *   echo TEXT        write TEXT and a newline to stdout
 *   lines N          write "1\n" to "N\n" to stdout, one write each
 *                    (N = 0: forever), blocking when the pipe is full
 *   sdnotify TEXT    send TEXT as one datagram to $NOTIFY_SOCKET, "\0" in it
 *                    a NUL byte and "\n" a newline ("" sends an empty one)
 *   sdnotifypad N TEXT  the same, TEXT padded with 'x' to N bytes
 *   sdnotifyfds N TEXT  the same, with N fds (of /dev/null) passed along
 *                    (SCM_RIGHTS), as systemd-notify's BARRIER=1 does
 *   mmap N           map N pages of a memfd named "wardtest-maps" as N
 *                    separate mappings (every other one read-only, so none
 *                    merge); touch page 0 and every 64th after it
 *   cat FD           copy stdin to FD until end of file
 *
 * With no "exit" step it exits 0 after the last step.
 */
#define _GNU_SOURCE
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void
die(const char *what)
{
	fprintf(stderr, "payload: %s: %s\n", what, strerror(errno));
	exit(99);
}

static void
write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			die("write");
		}
		p += w;
		n -= w;
	}
}

/* A limit as the rlimits key spells it: a number or "infinity". */
static void
report_limit(FILE *f, rlim_t v)
{
	if (v == RLIM_INFINITY)
		fputs("infinity", f);
	else
		fprintf(f, "%llu", (unsigned long long)v);
}

/*
 * The execution environment, as "key: value" lines after the others:
 * umask, every rlimit as rlimit_NAME: SOFT:HARD, nice, oom_score_adj and
 * the cgroup2 path (the "0::" line of /proc/self/cgroup).
 */
static void
report_execenv(FILE *f)
{
	static const struct { const char *name; int res; } lims[] = {
		{ "as", RLIMIT_AS }, { "core", RLIMIT_CORE }, { "cpu", RLIMIT_CPU },
		{ "data", RLIMIT_DATA }, { "fsize", RLIMIT_FSIZE },
		{ "locks", RLIMIT_LOCKS }, { "memlock", RLIMIT_MEMLOCK },
		{ "msgqueue", RLIMIT_MSGQUEUE }, { "nice", RLIMIT_NICE },
		{ "nofile", RLIMIT_NOFILE }, { "nproc", RLIMIT_NPROC },
		{ "rss", RLIMIT_RSS }, { "rtprio", RLIMIT_RTPRIO },
		{ "rttime", RLIMIT_RTTIME }, { "sigpending", RLIMIT_SIGPENDING },
		{ "stack", RLIMIT_STACK }
	};
	struct rlimit rl;
	char line[4096];
	mode_t mask;
	FILE *in;
	size_t k;
	int prio;

	mask = umask(0);
	umask(mask);
	fprintf(f, "umask: %04o\n", (unsigned)mask);
	for (k = 0; k < sizeof lims / sizeof lims[0]; k++) {
		if (getrlimit(lims[k].res, &rl) == -1)
			continue;
		fprintf(f, "rlimit_%s: ", lims[k].name);
		report_limit(f, rl.rlim_cur);
		fputc(':', f);
		report_limit(f, rl.rlim_max);
		fputc('\n', f);
	}
	errno = 0;
	prio = getpriority(PRIO_PROCESS, 0);
	if (errno == 0)
		fprintf(f, "nice: %d\n", prio);
	if ((in = fopen("/proc/self/oom_score_adj", "r")) != NULL) {
		if (fgets(line, sizeof line, in) != NULL)
			fprintf(f, "oom_score_adj: %s", line);
		fclose(in);
	}
	fputs("cgroup: ", f);
	if ((in = fopen("/proc/self/cgroup", "r")) != NULL) {
		while (fgets(line, sizeof line, in) != NULL) {
			if (strncmp(line, "0::", 3) == 0) {
				line[strcspn(line, "\n")] = '\0';
				fputs(line + 3, f);
			}
		}
		fclose(in);
	}
	fputc('\n', f);
}

static void
report(const char *path)
{
	struct sigaction sa;
	struct dirent *de;
	gid_t groups[256];
	char line[512];
	FILE *f, *st;
	DIR *d;
	int sig, n, i;

	if ((f = fopen(path, "w")) == NULL)
		die(path);
	/* SigBlk is the mask, as the kernel sees it. */
	if ((st = fopen("/proc/self/status", "r")) != NULL) {
		while (fgets(line, sizeof line, st) != NULL) {
			if (strncmp(line, "SigBlk:", 7) == 0 ||
			    strncmp(line, "SigIgn:", 7) == 0)
				fputs(line, f);
		}
		fclose(st);
	}
	fputs("nondefault:", f);
	for (sig = 1; sig < NSIG; sig++) {
		if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler != SIG_DFL)
			fprintf(f, " %d", sig);
	}
	fputs("\nfds:", f);
	if ((d = opendir("/proc/self/fd")) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.' || atoi(de->d_name) == dirfd(d) ||
			    atoi(de->d_name) == fileno(f))
				continue;
			fprintf(f, " %s", de->d_name);
		}
		closedir(d);
	}
	fprintf(f, "\nuid: %d\ngid: %d\ngroups:", (int)getuid(), (int)getgid());
	n = getgroups(256, groups);
	for (i = 0; i < n; i++)
		fprintf(f, " %d", (int)groups[i]);
	fprintf(f, "\npid: %d\nsid: %d\npgid: %d\ncwd: %s\n", (int)getpid(),
	    (int)getsid(0), (int)getpgid(0), getcwd(line, sizeof line));
	/* And what clients pass from their caller's environment. */
	for (char **e = environ; *e != NULL; e++) {
		if (strncmp(*e, "WARD_", 5) == 0 || strncmp(*e, "NOTIFY_", 7) == 0 ||
		    strncmp(*e, "LISTEN_", 7) == 0 || strncmp(*e, "TEST_", 5) == 0 ||
		    strncmp(*e, "HOME=", 5) == 0 || strncmp(*e, "USER=", 5) == 0 ||
		    strncmp(*e, "LOGNAME=", 8) == 0 || strncmp(*e, "LANG=", 5) == 0 ||
		    strncmp(*e, "TERM=", 5) == 0 || strncmp(*e, "PATH=", 5) == 0)
			fprintf(f, "env: %s\n", *e);
	}
	report_execenv(f);
	if (fclose(f) == EOF)
		die("fclose");
}

static void
burn(long ms)
{
	struct timespec start, now;
	volatile unsigned long x = 0;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &start);
	do {
		for (int i = 0; i < 100000; i++)
			x += i;
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
	} while ((now.tv_sec - start.tv_sec) * 1000 +
	    (now.tv_nsec - start.tv_nsec) / 1000000 < ms);
}

static void
wait_file(const char *path)
{
	char dir[4096], buf[4096];
	int fd;

	snprintf(dir, sizeof dir, "%s", path);
	if ((fd = inotify_init1(IN_CLOEXEC)) == -1)
		die("inotify_init1");
	if (inotify_add_watch(fd, dirname(dir), IN_CREATE | IN_MOVED_TO) == -1)
		die("inotify_add_watch");
	while (access(path, F_OK) != 0) {
		if (read(fd, buf, sizeof buf) == -1 && errno != EINTR)
			die("read inotify");
	}
	close(fd);
}

/* One datagram to $NOTIFY_SOCKET, from this process (the instance's own),
 * with nfds fds of /dev/null. */
static void
sd_send(const char *text, size_t pad, int nfds)
{
	union {		/* aligned for the one cmsghdr it holds */
		struct cmsghdr	 hdr;
		char		 space[CMSG_SPACE(sizeof(int) * 64)];
	} cbuf;
	struct msghdr mh = { 0 };
	struct iovec iov;
	int fds[64], k;

	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const char *path = getenv("NOTIFY_SOCKET");
	size_t n = 0, len = strlen(text);
	char *buf;
	int fd;

	if (path == NULL || strlen(path) >= sizeof sun.sun_path)
		die("NOTIFY_SOCKET");
	strcpy(sun.sun_path, path);
	if ((buf = malloc(len + pad + 1)) == NULL)
		die("malloc");
	for (const char *p = text; *p != '\0'; p++) {
		if (p[0] == '\\' && (p[1] == '0' || p[1] == 'n'))
			buf[n++] = *++p == '0' ? '\0' : '\n';
		else
			buf[n++] = *p;
	}
	while (n < pad)
		buf[n++] = 'x';
	if (nfds > 64)
		nfds = 64;
	for (k = 0; k < nfds; k++) {
		if ((fds[k] = open("/dev/null", O_RDONLY | O_CLOEXEC)) == -1)
			die("/dev/null");
	}
	iov.iov_base = buf;
	iov.iov_len = n;
	mh.msg_name = &sun;
	mh.msg_namelen = sizeof sun;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (nfds > 0) {		/* one SCM_RIGHTS message: the fds */
		memset(&cbuf, 0, sizeof cbuf);
		cbuf.hdr.cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		cbuf.hdr.cmsg_level = SOL_SOCKET;
		cbuf.hdr.cmsg_type = SCM_RIGHTS;
		memcpy(CMSG_DATA(&cbuf.hdr), fds, sizeof(int) * nfds);
		mh.msg_control = cbuf.space;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
	}
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1 ||
	    sendmsg(fd, &mh, 0) == -1)
		die("sendmsg NOTIFY_SOCKET");
	close(fd);
	for (k = 0; k < nfds; k++)
		close(fds[k]);
	free(buf);
}

/*
 * n pages of one memfd, each its own mapping: alternate pages read-only so
 * that no two neighbours merge (a VMM's guest memory split up, or a hostile
 * payload making /proc/PID/smaps huge). Touches page 0 and every 64th.
 */
static void
map_pages(long n)
{
	long pg = sysconf(_SC_PAGESIZE), k;
	char *p;
	int fd;

	if ((fd = memfd_create("wardtest-maps", MFD_CLOEXEC)) == -1)
		die("memfd_create");
	if (ftruncate(fd, n * pg) == -1)
		die("ftruncate");
	p = mmap(NULL, n * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		die("mmap");
	close(fd);
	for (k = 0; k < n; k += 64)
		p[k * pg] = 1;
	for (k = 1; k < n; k += 2) {
		if (mprotect(p + k * pg, pg, PROT_READ) == -1)
			die("mprotect");
	}
}

static void
hang(void)
{
	for (;;)
		pause();
}

int
main(int argc, char **argv)
{
	struct rlimit rl = { 0, 0 };
	int i;

	for (i = 1; i < argc; i++) {
		const char *s = argv[i], *a = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(s, "report") == 0 && a) {
			report(a);
			i++;
		} else if (strcmp(s, "fail") == 0 && a) {
			write_all(3, a, strlen(a));
			i++;
		} else if (strcmp(s, "failbytes") == 0 && a) {
			long n = atol(a);
			char chunk[4096];

			memset(chunk, 'x', sizeof chunk);
			while (n > 0) {
				size_t k = n > (long)sizeof chunk ? sizeof chunk : (size_t)n;

				write_all(3, chunk, k);
				n -= k;
			}
			i++;
		} else if (strcmp(s, "notify") == 0 && a) {
			write_all(4, a, strlen(a));
			write_all(4, "\n", 1);
			i++;
		} else if (strcmp(s, "notifyraw") == 0 && a) {
			write_all(4, a, strlen(a));
			i++;
		} else if (strcmp(s, "exit") == 0 && a) {
			exit(atoi(a));
		} else if (strcmp(s, "signal") == 0 && a) {
			setrlimit(RLIMIT_CORE, &rl);
			signal(atoi(a), SIG_DFL);
			raise(atoi(a));
			i++;
		} else if (strcmp(s, "core") == 0) {
			/* Dump core into the runtime dir, as a crashing VMM would. */
			struct rlimit c;
			const char *rt = getenv("WARD_RUNTIME_DIR");

			if (getrlimit(RLIMIT_CORE, &c) == 0) {
				c.rlim_cur = c.rlim_max;
				setrlimit(RLIMIT_CORE, &c);
			}
			if (rt != NULL && chdir(rt) == -1)
				exit(99);
			signal(SIGABRT, SIG_DFL);
			raise(SIGABRT);
			exit(98);
		} else if (strcmp(s, "hang") == 0) {
			hang();
		} else if (strcmp(s, "ignore-term") == 0) {
			signal(SIGTERM, SIG_IGN);
		} else if (strcmp(s, "alloc") == 0 && a) {
			size_t n = (size_t)atol(a) * 1024 * 1024;
			char *p = malloc(n);

			if (p == NULL)
				die("malloc");
			memset(p, 1, n);
			i++;
		} else if (strcmp(s, "cpu") == 0 && a) {
			burn(atol(a));
			i++;
		} else if (strcmp(s, "grandchild") == 0 && a) {
			pid_t p = fork();

			if (p == -1)
				die("fork");
			if (p == 0) {
				char buf[32];
				int fd;

				snprintf(buf, sizeof buf, "%d\n", (int)getpid());
				fd = open(a, O_WRONLY | O_CREAT | O_TRUNC, 0644);
				if (fd != -1) {
					write_all(fd, buf, strlen(buf));
					close(fd);
				}
				hang();
			}
			i++;
		} else if (strcmp(s, "daemon") == 0 && a) {
			pid_t p = fork();

			if (p == -1)
				die("fork");
			if (p == 0) {
				char buf[32];
				int fd;

				setsid();
				if (fork() != 0)
					_exit(0);
				snprintf(buf, sizeof buf, "%d\n", (int)getpid());
				fd = open(a, O_WRONLY | O_CREAT | O_TRUNC, 0644);
				if (fd != -1) {
					write_all(fd, buf, strlen(buf));
					close(fd);
				}
				hang();
			}
			i++;
		} else if (strcmp(s, "file") == 0 && a && i + 2 < argc) {
			const char *dir = getenv("WARD_RUNTIME_DIR");
			char path[4096];
			int fd;

			snprintf(path, sizeof path, "%s/%s", dir ? dir : ".", a);
			if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1)
				die(path);
			write_all(fd, argv[i + 2], strlen(argv[i + 2]));
			close(fd);
			i += 2;
		} else if (strcmp(s, "wait-file") == 0 && a) {
			wait_file(a);
			i++;
		} else if (strcmp(s, "echo") == 0 && a) {
			write_all(1, a, strlen(a));
			write_all(1, "\n", 1);
			i++;
		} else if (strcmp(s, "lines") == 0 && a) {
			unsigned long k, n = strtoul(a, NULL, 10);
			char line[32];

			for (k = 1; n == 0 || k <= n; k++) {
				snprintf(line, sizeof line, "%lu\n", k);
				write_all(1, line, strlen(line));
			}
			i++;
		} else if (strcmp(s, "cat") == 0 && a) {
			char buf[4096];
			ssize_t n;

			while ((n = read(0, buf, sizeof buf)) != 0) {
				if (n == -1 && errno == EINTR)
					continue;
				if (n == -1)
					die("read stdin");
				write_all(atoi(a), buf, n);
			}
			i++;
		} else if (strcmp(s, "sdnotify") == 0 && a) {
			sd_send(a, 0, 0);
			i++;
		} else if (strcmp(s, "sdnotifypad") == 0 && a && i + 2 < argc) {
			sd_send(argv[i + 2], (size_t)atol(a), 0);
			i += 2;
		} else if (strcmp(s, "sdnotifyfds") == 0 && a && i + 2 < argc) {
			sd_send(argv[i + 2], 0, atoi(a));
			i += 2;
		} else if (strcmp(s, "mmap") == 0 && a) {
			map_pages(atol(a));
			i++;
		} else {
			fprintf(stderr, "payload: bad step '%s'\n", s);
			return 98;
		}
	}
	return 0;
}
