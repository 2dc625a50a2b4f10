/*
 * harness.c: the set-up every harness shares. wardd.c (main, options) is
 * not linked, so the options wardd would have are defined here: a root
 * wardd whose STATE_DIR and config dir are a private temporary directory
 * (the sandbox, in $TMPDIR or else /dev/shm or /tmp; removed at exit),
 * without cgroups, logging nothing unless WARD_FUZZ_LOG_LEVEL (3-7) asks. Also the oracles more than one harness
 * uses: reply streams that must be valid msgpack-RPC, fds that must not
 * leak, directories that must be left empty.
 *
 * The sandbox's seam (build.sh links every harness with --wrap= for each
 * function below, so calls from wardd's modules land in its __wrap_):
 * - spawn_child fails as a refused exec would: instance_start runs all
 *   of its real preparation (runtime dir in the sandbox, fd 3 and 4
 *   sockets, pipes, environment) and its real failure path, and nothing
 *   runs;
 * - spawn_pidfd_signal aborts: nothing is running, so nothing may be
 *   signalled (a pid that is not a child's could be anyone's);
 * - output_spawn_prepare refuses log files (paths a fuzzed request
 *   chose, which a root wardd would create anywhere) and is itself
 *   otherwise;
 * - shutdown_begin (ward.shutdown) does nothing: there is no listener to
 *   close and the next input must find wardd serving;
 * - sd_journal_send (the macro's sd_journal_send_with_location, and the
 *   function) and sd_notify do nothing: every failed spawn is a
 *   death that systemd_journal_death reports, and the system's journal
 *   is no place for thousands of them a second.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sanitizer/common_interface_defs.h>

#include "harness.h"

struct wardd_opts opts;		/* wardd.c's, which is not linked */

static char *harness_dir;

/*
 * Each wrapper is declared with its real function's own type, so that a
 * change of that function's signature fails the build here instead of
 * corrupting the stack at run time.
 */
__typeof__(spawn_child)		__wrap_spawn_child;
__typeof__(spawn_pidfd_signal)	__wrap_spawn_pidfd_signal;
__typeof__(output_spawn_prepare) __wrap_output_spawn_prepare;
__typeof__(output_spawn_prepare) __real_output_spawn_prepare;
__typeof__(shutdown_begin)	__wrap_shutdown_begin;
int	 __wrap_sd_journal_send(const char *, ...);
int	 __wrap_sd_journal_send_with_location(const char *, const char *,
	    const char *, const char *, ...);
int	 __wrap_sd_notify(int, const char *);

pid_t
__wrap_spawn_child(const struct instance *i, struct spawn_fds *fds,
    char **envp, int *status_r, struct ward_err *e)
{
	*status_r = -1;
	fds->pidfd_out = -1;
	ward_err_set(e, WARD_E_SPAWN_FAILED, "cannot run %s: refused by the "
	    "fuzzing sandbox", i->spec.exec_path ? i->spec.exec_path :
	    i->spec.argv[0]);
	errno = EPERM;
	return -1;
}

int
__wrap_spawn_pidfd_signal(int pidfd, pid_t pid, int sig, int group)
{
	harness_fail(__FILE__, __LINE__, "nothing is signalled", "signal %d "
	    "to pid %d (pidfd %d, group %d) with nothing running", sig,
	    (int)pid, pidfd, group);
}

int
__wrap_output_spawn_prepare(struct instance *i, struct ward_err *e)
{
	int k;

	for (k = 0; i->spec.output != NULL && k < OUTPUT_NSTREAMS; k++) {
		if (i->spec.output->logfile[k] != NULL)
			return ward_err_set(e, WARD_E_SPAWN_FAILED, "cannot open "
			    "log file %s: refused by the fuzzing sandbox",
			    i->spec.output->logfile[k]);
	}
	return __real_output_spawn_prepare(i, e);
}

void
__wrap_shutdown_begin(int kill_instances)
{
}

int
__wrap_sd_journal_send(const char *format, ...)
{
	return 0;
}

int
__wrap_sd_journal_send_with_location(const char *file, const char *line,
    const char *func, const char *format, ...)
{
	return 0;
}

int
__wrap_sd_notify(int unset_environment, const char *state)
{
	return 0;
}

static int
harness_rm_cb(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	return remove(path) == -1 && errno != ENOENT ? -1 : 0;
}

/* The sandbox is the harness's own, under a tmp dir: nftw is fine here. */
static void
harness_cleanup(void)
{
	if (harness_dir != NULL)
		nftw(harness_dir, harness_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

void
harness_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: invariant broken: %s: ", file, line, cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	harness_cleanup();	/* abort runs no atexit */
	abort();
}

const char *
harness_sandbox(void)
{
	return harness_dir;
}

/* wardd's start-up, minus the socket, the signals and the config. */
void
harness_init(void)
{
	const char *tmp = getenv("TMPDIR"), *lvl = getenv("WARD_FUZZ_LOG_LEVEL");
	struct sigaction sa = { .sa_handler = SIG_IGN };
	char sym[256];

	if (harness_dir != NULL)
		return;
	/*
	 * libFuzzer prints NEW_FUNC lines through the sanitizers' symbolizer,
	 * a child (llvm-symbolizer) on two pipes started at first use: start
	 * it now, so its fds are in every harness's baseline, not a "leak".
	 */
	__sanitizer_symbolize_pc(__builtin_return_address(0), "%F", sym,
	    sizeof sym);
	/* Nothing may reach a real systemd or journal from here. */
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("JOURNAL_STREAM");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	sigaction(SIGPIPE, &sa, NULL);
	log_init(lvl != NULL ? log_level_parse(lvl) : LOG_LVL_ERR - 1);
	log_set_target(LOG_TARGET_STDERR);
	/* tmpfs if there is one: mkdir on ext4 costs more than an input. */
	if (tmp == NULL || tmp[0] != '/')
		tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	if ((harness_dir = str_printf("%s/wardfuzz.XXXXXX", tmp)) == NULL ||
	    mkdtemp(harness_dir) == NULL)
		fatal("cannot create the fuzzing sandbox");
	atexit(harness_cleanup);
	opts.state_dir = xstrdup(harness_dir);
	opts.socket_path = str_printf("%s/ward.sock", harness_dir);
	opts.config_dir = str_printf("%s/ward.d", harness_dir);
	if (opts.socket_path == NULL || opts.config_dir == NULL ||
	    mkdir(opts.config_dir, 0755) == -1)
		fatal("cannot populate the fuzzing sandbox %s", harness_dir);
	opts.uid = 0;			/* a root wardd: peers of uid 0 are admins */
	opts.is_root = 1;
	opts.metrics_interval_ms = 1000;
	opts.log_level = LOG_LVL_ERR;
	opts.no_cgroups = 1;
	budget_defaults();		/* wardd's limits */
	getrlimit(RLIMIT_NOFILE, &opts.nofile);
	if ((ward_loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV)) == NULL)
		fatalx("cannot create the epoll event loop");
	budget_init();
	statedir_init();	/* STATE_DIR's fds: instances/, dumps/, trash/ */
	instance_init();
	channel_init();
	/* STATE_DIR/failure and STATE_DIR/notify, as wardd binds them at
	 * start: fd 3 and NOTIFY_SOCKET of what instance_start prepares. */
	channel_open();
	capacity_init();
	loop_observe();
	program_init();
	metrics_init();
	cgroup_init(1);
}

/* Open fds of this process: compared before and after an input. */
int
harness_count_fds(void)
{
	struct dirent *de;
	DIR *d;
	int n = 0;

	if ((d = opendir("/proc/self/fd")) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n - 1;		/* the DIR's own fd */
}

/* As many fds open as before; if not, say which are open and abort. */
void
harness_check_fds(int before)
{
	char path[64], target[256];
	struct dirent *de;
	ssize_t n;
	DIR *d;
	int turns;

	/* budget.c's fd reserve is wardd's own, held while it serves
	 * non-admins: not a leak; the count is taken without it. Nor are the
	 * directories trash.c holds open while it removes a tree a slice per
	 * loop turn: let it finish first (bounded: a tree is a few entries). */
	budget_reserve_release();
	for (turns = 0; trash_pending() > 0 && turns < 100000; turns++)
		ev_run(ward_loop, EVRUN_NOWAIT);
	if (harness_count_fds() == before)
		return;
	fprintf(stderr, "fds open now (%d before):\n", before);
	if ((d = opendir("/proc/self/fd")) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof path, "/proc/self/fd/%s", de->d_name);
			n = readlink(path, target, sizeof target - 1);
			target[n > 0 ? n : 0] = '\0';
			fprintf(stderr, "  %s -> %s\n", de->d_name, target);
		}
		closedir(d);
	}
	harness_fail(__FILE__, __LINE__, "no fd leaked", "%d fds open, %d "
	    "before", harness_count_fds(), before);
}

/*
 * Send p[0..n) on s (to *to, or its peer if NULL) without waiting, with fd
 * passed along (SCM_RIGHTS) unless it is -1. sendmsg's answer.
 */
ssize_t
harness_send(int s, const struct sockaddr_un *to, const void *p, size_t n,
    int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct cmsghdr *cm;
	struct msghdr mh;
	struct iovec iov;

	memset(&mh, 0, sizeof mh);
	iov.iov_base = (void *)p;
	iov.iov_len = n;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_name = (void *)to;
	mh.msg_namelen = to != NULL ? sizeof *to : 0;
	if (fd != -1) {
		memset(cbuf, 0, sizeof cbuf);
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof cbuf;
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	return sendmsg(s, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
}

int
harness_write_file(const char *path, const void *p, size_t n)
{
	int fd, rc = 0;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) == -1)
		return -1;
	if (n > 0 && write(fd, p, n) != (ssize_t)n)
		rc = -1;
	close(fd);
	return rc;
}

/* 1 if dir has no entries but . and .. (or is gone). */
int
harness_dir_empty(const char *dir)
{
	struct dirent *de;
	DIR *d;
	int empty = 1;

	if ((d = opendir(dir)) == NULL)
		return errno == ENOENT;
	while (empty && (de = readdir(d)) != NULL)
		empty = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
	closedir(d);
	return empty;
}

static void
harness_check_strings(const msgpack_object *o, int utf8)
{
	uint32_t k;

	switch (o->type) {
	case MSGPACK_OBJECT_STR:
		harness_assert(!utf8 || utf8_valid(o->via.str.ptr, o->via.str.size),
		    "a reply string is not valid UTF-8: '%.*s'",
		    (int)(o->via.str.size > 200 ? 200 : o->via.str.size),
		    o->via.str.ptr);
		break;
	case MSGPACK_OBJECT_ARRAY:
		for (k = 0; k < o->via.array.size; k++)
			harness_check_strings(&o->via.array.ptr[k], utf8);
		break;
	case MSGPACK_OBJECT_MAP:
		for (k = 0; k < o->via.map.size; k++) {
			harness_assert(o->via.map.ptr[k].key.type ==
			    MSGPACK_OBJECT_STR, "a reply map key is not a string");
			harness_check_strings(&o->via.map.ptr[k].key, utf8);
			harness_check_strings(&o->via.map.ptr[k].val, utf8);
		}
		break;
	default:
		break;
	}
}

/*
 * What wardd wrote to a client: whole msgpack-RPC messages back to back, a
 * response [1, msgid, error, result] with an error map {code, message} or
 * nil, or a notification [2, method, params]. With utf8, every string must
 * be valid UTF-8 (the protocol's promise, even when quoting bad input).
 * Returns how many responses there were.
 */
int
harness_reply_check(const char *buf, size_t len, int utf8)
{
	msgpack_unpacked msg;
	struct ward_err err = WARD_ERR_INIT;
	const msgpack_object *o, *e;
	size_t off = 0, n, used;
	int responses = 0;

	while (off < len) {
		harness_assert(codec_scan(buf + off, len - off, &n, &err) ==
		    SCAN_COMPLETE, "reply stream breaks at byte %zu of %zu", off,
		    len);
		msgpack_unpacked_init(&msg);
		used = 0;
		harness_assert(msgpack_unpack_next(&msg, buf + off, n, &used) ==
		    MSGPACK_UNPACK_SUCCESS && used == n,
		    "a reply msgpack-c cannot unpack");
		o = &msg.data;
		harness_assert(o->type == MSGPACK_OBJECT_ARRAY &&
		    o->via.array.size >= 3 &&
		    o->via.array.ptr[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER,
		    "a reply is not a msgpack-RPC message");
		if (o->via.array.ptr[0].via.u64 == WARD_MSG_RESPONSE) {
			harness_assert(o->via.array.size == 4 &&
			    o->via.array.ptr[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER,
			    "a response is not [1, msgid, error, result]");
			e = &o->via.array.ptr[2];
			harness_assert(e->type == MSGPACK_OBJECT_NIL ||
			    (e->type == MSGPACK_OBJECT_MAP && e->via.map.size == 2 &&
			    e->via.map.ptr[0].val.type == MSGPACK_OBJECT_STR &&
			    e->via.map.ptr[1].val.type == MSGPACK_OBJECT_STR),
			    "a response's error is not nil or {code, message}");
			harness_assert(e->type == MSGPACK_OBJECT_NIL ||
			    o->via.array.ptr[3].type == MSGPACK_OBJECT_NIL,
			    "a response has both an error and a result");
			responses++;
		} else
			harness_assert(o->via.array.ptr[0].via.u64 ==
			    WARD_MSG_NOTIFY && o->via.array.size == 3 &&
			    o->via.array.ptr[1].type == MSGPACK_OBJECT_STR,
			    "a reply is neither a response nor a notification");
		harness_check_strings(o, utf8);
		msgpack_unpacked_destroy(&msg);
		off += n;
	}
	return responses;
}
