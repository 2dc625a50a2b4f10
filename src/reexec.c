/*
 * reexec.c: wardd replaces its own image, keeping its pid, its children
 * and every fd that matters (ward.reexec, wardctl reexec, SIGUSR2). The
 * binary is the one wardd was started as (so an upgraded wardd on disk
 * takes over), or --exe / the request's exe.
 *
 * The steps, each with a way back:
 *   1. check: the new binary is run as `wardd --state-version` (a child,
 *      watched by pidfd, never waited for); unless it exits 0 saying it
 *      reads this wardd's STATE_VERSION, the re-exec is refused with an
 *      error and nothing changes;
 *   2. the requester is answered {ok: true}; the state is written (every
 *      owner's *_save, state.c) into a memfd, and the fds it names lose
 *      close-on-exec;
 *   3. execve with the same arguments plus --state-fd=N. Should it fail
 *      after all, the fds get close-on-exec back and wardd runs on.
 * The new image reads the state back (reexec_restore, from wardd.c)
 * before its loop runs: the listener and every conn first (subscriptions
 * and follows name them by fd), the instances, the programs that run
 * them, the subscriptions. What no owner took back is closed.
 *
 * layer: commands (orchestrates every layer's save and restore; called by
 * cmd-ward.c, loop.c and wardd.c)
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ward.h"

#define REEXEC_CHECK_S		5.0	/* the new binary must answer by then */
#define REEXEC_STATE_MAX	(1024ULL * 1024 * 1024)	/* read back, at most */

extern char **environ;

/* A requester waiting for the check; detached if its conn goes first. */
struct reexec_waiter {
	struct conn_attachment	 att;	/* first member */
	struct conn		*c;
	uint32_t		 msgid;
};

/* The one re-exec under way, if any: its check, and who waits for it. */
static struct {
	int			 busy;
	char			*exe;
	pid_t			 pid;		/* the check's child */
	int			 pidfd;
	int			 out;		/* its stdout */
	ev_io			 pidfd_w;
	ev_timer		 timeout_t;
	ev_timer		 exec_t;	/* step 3, after this loop turn */
	char			 said[64];
	size_t			 nsaid;
	struct reexec_waiter	*waiter;
} reexec = { .pidfd = -1, .out = -1 };

uint64_t	 reexec_count;
double		 reexec_last_ms;	/* the last one's pause: state written to
					   state read back (ward.stats) */
static uint64_t	 reexec_t0_ns;		/* when the one under way began */
static char	**reexec_argv;	/* wardd's arguments, without --state-fd */

static void	reexec_check_cb(struct ev_loop *, ev_io *, int);
static void	reexec_timeout_cb(struct ev_loop *, ev_timer *, int);
static void	reexec_exec_cb(struct ev_loop *, ev_timer *, int);

/* CLOCK_MONOTONIC: the same clock on both sides of the exec. */
static uint64_t
reexec_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Start-up: the arguments and binary a re-exec uses. */
void
reexec_init(int argc, char **argv)
{
	int k, n = 0;

	reexec_argv = xcalloc(argc + 2, sizeof *reexec_argv);
	for (k = 0; k < argc; k++) {
		if (strncmp(argv[k], "--state-fd", 10) == 0)
			continue;
		reexec_argv[n++] = xstrdup(argv[k]);
	}
	ev_init(&reexec.pidfd_w, reexec_check_cb);
	ev_init(&reexec.timeout_t, reexec_timeout_cb);
	ev_init(&reexec.exec_t, reexec_exec_cb);
}

static void
reexec_waiter_detach_cb(struct conn *c, struct conn_attachment *a)
{
	free(a);
	reexec.waiter = NULL;
}

/* Answer the requester (if it is still there) and forget it. */
static void
reexec_answer(const struct ward_err *e)
{
	struct reexec_waiter *w = reexec.waiter;
	struct request req = { 0 };

	if (w == NULL)
		return;
	req.c = w->c;
	req.msgid = w->msgid;
	if (e != NULL)
		cmd_fail(&req, e);
	else
		cmd_ok(&req);
	conn_flush(w->c);
	conn_detach(w->c, &w->att);
	free(w);
	reexec.waiter = NULL;
}

/* The check is over (or never began): clean up; e: why it failed. */
static void
reexec_end(const struct ward_err *e)
{
	ev_io_stop(ward_loop, &reexec.pidfd_w);
	ev_timer_stop(ward_loop, &reexec.timeout_t);
	if (reexec.pidfd != -1) {
		if (reexec.pid > 0) {
			sys->signal(reexec.pidfd, reexec.pid, SIGKILL, 0);
			sys->reap(reexec.pidfd, &(siginfo_t){ 0 });
		}
		close(reexec.pidfd);
	}
	if (reexec.out != -1)
		close(reexec.out);
	reexec.pidfd = reexec.out = -1;
	reexec.pid = 0;
	if (e != NULL) {
		log_warnx("re-exec refused: %s", e->msg);
		reexec_answer(e);
		free(reexec.exe);
		reexec.exe = NULL;
		reexec.busy = 0;
	}
}

/*
 * Step 1: run `EXE --state-version`, its stdout to a pipe; a clean child
 * (empty mask, default signals, /dev/null for the rest).
 */
static int
reexec_check_start(struct ward_err *e)
{
	static char opt[] = "--state-version", path[] = "PATH=" SPEC_CLEAN_PATH;
	char *argv[] = { reexec.exe, opt, NULL };
	char *envp[] = { path, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	int p[2], rc;

	if (pipe2(p, O_CLOEXEC) == -1)
		return ward_err_errno(e, WARD_E_INTERNAL, "pipe");
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK |
	    POSIX_SPAWN_SETSIGDEF);
	rc = posix_spawn(&reexec.pid, reexec.exe, &fa, &at, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(p[1]);
	reexec.out = p[0];
	if (rc != 0) {
		reexec.pid = 0;
		errno = rc;
		return ward_err_errno(e, WARD_E_INVALID_ARGUMENT, "cannot run %s",
		    reexec.exe);
	}
	if (fd_set_flags(reexec.out, 1, 1) == -1 ||
	    (reexec.pidfd = sys->pidfd_open(reexec.pid)) == -1) {
		sys->kill_unreaped(reexec.pid);
		reexec.pid = 0;
		return ward_err_errno(e, WARD_E_INTERNAL, "cannot watch %s",
		    reexec.exe);
	}
	ev_io_set(&reexec.pidfd_w, reexec.pidfd, EV_READ);
	ev_io_start(ward_loop, &reexec.pidfd_w);
	ev_timer_set(&reexec.timeout_t, REEXEC_CHECK_S, 0.);
	ev_timer_start(ward_loop, &reexec.timeout_t);
	return 0;
}

/*
 * Begin a re-exec into exe (NULL: the binary wardd was started as). c and
 * msgid: the requester to answer (c NULL: SIGUSR2). 0, or -1 with e set.
 */
int
reexec_begin(const char *exe, struct conn *c, uint32_t msgid,
    struct ward_err *e)
{
	struct reexec_waiter *w = NULL;

	if (reexec.busy)
		return ward_err_set(e, WARD_E_INVALID_STATE, "a re-exec is "
		    "under way already");
	if (shutdown_pending())
		return ward_err_set(e, WARD_E_INVALID_STATE, "wardd is "
		    "shutting down");
	if (exe == NULL)
		exe = opts.exe;
	if (exe == NULL || exe[0] != '/')
		return ward_err_set(e, WARD_E_INVALID_ARGUMENT, "the binary to "
		    "re-exec must be an absolute path");
	if (c != NULL && (w = calloc(1, sizeof *w)) == NULL)
		return ward_err_oom(e);
	if ((reexec.exe = strdup(exe)) == NULL) {
		free(w);
		return ward_err_oom(e);
	}
	reexec.busy = 1;
	reexec.nsaid = 0;
	if (w != NULL) {
		w->c = c;
		w->msgid = msgid;
		conn_attach(c, &w->att, reexec_waiter_detach_cb);
		reexec.waiter = w;
	}
	log_notice("re-exec into %s requested: checking it", exe);
	if (reexec_check_start(e) == -1) {
		/* Refused at once: the caller answers, not reexec_end. */
		if (reexec.waiter != NULL) {
			conn_detach(c, &w->att);
			free(w);
			reexec.waiter = NULL;
		}
		reexec_end(NULL);
		free(reexec.exe);
		reexec.exe = NULL;
		reexec.busy = 0;
		return -1;
	}
	return 0;
}

static void
reexec_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct ward_err e = WARD_ERR_INIT;

	ward_err_set(&e, WARD_E_INVALID_ARGUMENT, "%s --state-version did "
	    "not answer within %.0f s", reexec.exe, REEXEC_CHECK_S);
	reexec_end(&e);
}

/* The check's child exited: did it say it reads our state? */
static void
reexec_check_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ward_err e = WARD_ERR_INIT;
	siginfo_t si;
	ssize_t n;
	unsigned long v;
	char *end;

	memset(&si, 0, sizeof si);
	if (sys->reap(reexec.pidfd, &si) == -1 || si.si_pid == 0) {
		if (si.si_pid == 0 && errno != ECHILD)
			return;		/* not yet */
	}
	reexec.pid = 0;		/* reaped */
	n = read(reexec.out, reexec.said, sizeof reexec.said - 1);
	reexec.nsaid = n > 0 ? (size_t)n : 0;
	reexec.said[reexec.nsaid] = '\0';
	v = strtoul(reexec.said, &end, 10);
	if (si.si_code != CLD_EXITED || si.si_status != 0 ||
	    end == reexec.said || (*end != '\n' && *end != '\0')) {
		ward_err_set(&e, WARD_E_INVALID_ARGUMENT, "%s is not a wardd "
		    "that can take over (it %s %d to --state-version)",
		    reexec.exe, si.si_code == CLD_EXITED ? "exited" :
		    "was killed by signal", si.si_status);
		reexec_end(&e);
		return;
	}
	if (v < STATE_VERSION) {
		ward_err_set(&e, WARD_E_INVALID_ARGUMENT, "%s reads wardd "
		    "states up to version %lu; this wardd writes version %d",
		    reexec.exe, v, STATE_VERSION);
		reexec_end(&e);
		return;
	}
	/* A shutdown began while the check ran (it closed the listener):
	 * it wins; a new image would forget it. */
	if (shutdown_pending()) {
		ward_err_set(&e, WARD_E_INVALID_STATE, "wardd began shutting "
		    "down during the re-exec's check");
		reexec_end(&e);
		return;
	}
	reexec_end(NULL);
	reexec_answer(NULL);
	/* After this loop turn: the answer may still be flushed by then. */
	ev_timer_set(&reexec.exec_t, 0., 0.);
	ev_timer_start(ward_loop, &reexec.exec_t);
}

/*
 * The state, packed: version first, then each owner's part. with_conns:
 * the listener, the conns and their subscriptions, and the fds to hand
 * over (a re-exec); without, what snapshot.c keeps in STATE_DIR/state and
 * fdstore.c in the fd store, whose fds come back by name if at all. The
 * caller resets state.c's fd list after. In three parts, so snapshot.c
 * can write the instances a slice per loop turn: the head (up to the
 * instances' array of n), each instance (instance_state_save), the tail.
 */
void
reexec_pack_head(msgpack_packer *pk, int with_conns, size_t n)
{
	state_set_snapshot(!with_conns);	/* no rings in a snapshot */
	msgpack_pack_map(pk, with_conns ? 15 : 8);
	codec_pack_kv_uint(pk, "ward_state", STATE_VERSION);
	codec_pack_kv_int(pk, "pid", getpid());
	/* Pids and start times mean something in this boot only. */
	codec_pack_kv_str(pk, "boot_id", instance_adopt_boot_id());
	codec_pack_key(pk, "stats");
	msgpack_pack_map(pk, 5);
	codec_pack_kv_uint(pk, "created", instance_stats.created);
	codec_pack_kv_uint(pk, "started", instance_stats.started);
	codec_pack_kv_uint(pk, "died", instance_stats.died);
	codec_pack_kv_uint(pk, "spawn_failed", instance_stats.spawn_failed);
	codec_pack_kv_uint(pk, "removed", instance_stats.removed);
	codec_pack_key(pk, "instances");
	msgpack_pack_array(pk, n);
}

void
reexec_pack_tail(msgpack_packer *pk, int with_conns)
{
	struct program *p;
	size_t n = 0, nf, k;
	const int *fds;

	codec_pack_key(pk, "programs");
	TAILQ_FOREACH(p, &programs, entry)
		n++;
	msgpack_pack_array(pk, n);
	TAILQ_FOREACH(p, &programs, entry)
		program_state_save(pk, p);
	/* Shared by every child's fd 3: kept in a snapshot's fd store too. */
	codec_pack_key(pk, "channel");
	channel_save(pk);
	/* Deaths by reason: a crash keeps them too (STATE_DIR/state). */
	codec_pack_key(pk, "openmetrics");
	openmetrics_save(pk);
	if (!with_conns)
		return;
	codec_pack_kv_uint(pk, "reexecs", reexec_count + 1);
	codec_pack_kv_uint(pk, "t0_ns", reexec_t0_ns);
	codec_pack_key(pk, "server");
	server_save(pk);
	codec_pack_key(pk, "events");
	event_save(pk);
	codec_pack_key(pk, "fdstore");
	fdstore_pack(pk);
	codec_pack_key(pk, "http");		/* --metrics-listen's listener */
	http_save(pk);
	/* Last: every fd the parts above listed. */
	fds = state_saved_fds(&nf);
	codec_pack_key(pk, "fds");
	msgpack_pack_array(pk, nf);
	for (k = 0; k < nf; k++)
		msgpack_pack_int(pk, fds[k]);
}

int
reexec_pack(msgpack_sbuffer *sb, int with_conns)
{
	msgpack_packer pk;
	struct instance *i;
	size_t n = 0;

	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	TAILQ_FOREACH(i, &instances, entry)
		n++;
	reexec_pack_head(&pk, with_conns, n);
	TAILQ_FOREACH(i, &instances, entry)
		instance_state_save(&pk, i);
	reexec_pack_tail(&pk, with_conns);
	return 0;
}

/*
 * Set or clear close-on-exec on every fd the state lists: one call each
 * (close-on-exec is the only fd flag there is).
 */
static void
reexec_cloexec(const int *fds, size_t n, int on)
{
	size_t k;

	for (k = 0; k < n; k++)
		fcntl(fds[k], F_SETFD, on ? FD_CLOEXEC : 0);
}

/* Steps 2 and 3. Returns only if the exec failed. */
static void
reexec_exec_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	msgpack_sbuffer sb;
	struct conn *c;
	char **argv = NULL, arg[32];
	const int *fds;
	sigset_t block, old;
	size_t nf, n, off;
	ssize_t w;
	int mfd = -1;

	/* The same, between the answer and this turn. */
	if (shutdown_pending()) {
		log_warnx("re-exec into %s called off: wardd is shutting down",
		    reexec.exe);
		free(reexec.exe);
		reexec.exe = NULL;
		reexec.busy = 0;
		return;
	}
	reexec_t0_ns = reexec_mono_ns();
	cmd_suspend_reexec();	/* cmd-suspend.c: waiters are not in the state */
	/* control.c's connections are not carried: their calls end here. */
	control_shutdown("wardd re-executes: call again");
	/* Whatever can go out now goes; the rest is in the state. */
	TAILQ_FOREACH(c, &conns, entry)
		conn_flush(c);
	msgpack_sbuffer_init(&sb);
	state_fds_reset();
	reexec_pack(&sb, 1);
	fds = state_saved_fds(&nf);
	if ((mfd = memfd_create("wardd-state", 0)) == -1)
		goto fail;
	for (off = 0; off < sb.size; off += w) {
		if ((w = write(mfd, sb.data + off, sb.size - off)) <= 0)
			goto fail;
	}
	if (lseek(mfd, 0, SEEK_SET) == -1)
		goto fail;
	for (n = 0; reexec_argv[n] != NULL; n++)
		;
	if ((argv = calloc(n + 2, sizeof *argv)) == NULL)
		goto fail;
	memcpy(argv, reexec_argv, n * sizeof *argv);
	snprintf(arg, sizeof arg, "--state-fd=%d", mfd);
	argv[n] = arg;
	reexec_cloexec(fds, nf, 0);
	log_notice("re-exec into %s: %zu bytes of state, %zu fds, %u "
	    "instances running", reexec.exe, sb.size, nf,
	    instances_running_count);
	/* Signals that arrive during the exec wait for the new image's
	 * watchers (loop.c empties the mask only once they are set up). */
	sigfillset(&block);
	sigprocmask(SIG_BLOCK, &block, &old);
	execve(reexec.exe, argv, environ);
	sigprocmask(SIG_SETMASK, &old, NULL);
	reexec_cloexec(fds, nf, 1);
	log_warn("re-exec into %s failed; this wardd runs on", reexec.exe);
fail:
	if (errno != 0 && mfd == -1)
		log_warn("re-exec: cannot write the state");
	free(argv);
	if (mfd != -1)
		close(mfd);
	msgpack_sbuffer_destroy(&sb);
	state_fds_reset();
	free(reexec.exe);
	reexec.exe = NULL;
	reexec.busy = 0;
}

/*
 * `wardd --state-fd=N`: read the state back from fd (wardd.c, at start,
 * after every module's init and before the loop). 0, or -1 if there was
 * nothing to read (the caller then starts as new).
 */
int
reexec_restore(int fd)
{
	struct stat st;
	char *data;
	int rc;

	/* Mapped, not copied: its strings are read in place. */
	if (fstat(fd, &st) == -1 || st.st_size <= 0 ||
	    (uint64_t)st.st_size > REEXEC_STATE_MAX ||
	    (data = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE |
	    MAP_POPULATE, fd, 0)) == MAP_FAILED) {
		log_warn("re-exec: cannot read the state");
		close(fd);
		return -1;
	}
	close(fd);
	rc = reexec_restore_state(data, st.st_size, 1);
	munmap(data, st.st_size);
	return rc;
}

/*
 * A zone for a state of n bytes' objects: one chunk (msgpack-c's own
 * would be thousands of small ones), its pages faulted in with one call
 * rather than one fault each as unpacking first touches them (a page
 * fault is dear on a VM; a re-exec's pause is made of such costs).
 */
static msgpack_zone *
reexec_zone(size_t n)
{
	msgpack_zone *z;
	uintptr_t lo, hi;

	if ((z = msgpack_zone_new(n * 4 + 65536)) == NULL)
		return NULL;
#ifdef MADV_POPULATE_WRITE
	lo = ((uintptr_t)z->chunk_list.ptr + 4095) & ~(uintptr_t)4095;
	hi = ((uintptr_t)z->chunk_list.ptr + z->chunk_list.free) &
	    ~(uintptr_t)4095;
	if (hi > lo)
		(void)madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE);
#endif
	return z;
}

/*
 * The counters, the instances and the programs that run them, read back
 * (a re-exec, the fd store, or snapshot.c after a crash); how many
 * instances were.
 */
unsigned
reexec_restore_instances(const msgpack_object *root)
{
	const msgpack_object *a;
	unsigned restored = 0;
	size_t n, j;

	a = state_get(root, "stats");
	instance_stats.created = state_u64(a, "created", 0);
	instance_stats.started = state_u64(a, "started", 0);
	instance_stats.died = state_u64(a, "died", 0);
	instance_stats.spawn_failed = state_u64(a, "spawn_failed", 0);
	instance_stats.removed = state_u64(a, "removed", 0);
	a = state_array(root, "instances", &n);
	for (j = 0; j < n; j++) {
		/* nil: room snapshot.c kept for one removed while it wrote */
		if (a[j].type != MSGPACK_OBJECT_NIL &&
		    instance_state_restore(&a[j]) != NULL)
			restored++;
	}
	a = state_array(root, "programs", &n);
	for (j = 0; j < n; j++) {
		if (program_state_restore(&a[j]) == NULL)
			log_warnx("state: a program could not be restored");
	}
	return restored;
}

/*
 * Read a state back: the listener and conns (if it has them), instances,
 * programs, subscriptions. by_list: its fds were kept at their numbers (a
 * re-exec); else the caller handed them over (fdstore.c), and what was
 * running is no longer wardd's child. Fds no owner takes back are closed.
 * 0, or -1 if the state is unreadable.
 */
int
reexec_restore_state(const char *data, size_t n, int by_list)
{
	struct ward_err e = WARD_ERR_INIT;
	msgpack_zone *zone = NULL;
	msgpack_object obj;
	const msgpack_object *root, *a;
	size_t off = 0, len;
	unsigned restored, closed;

	/* Scanned first: msgpack-c would allocate what a header claims (a
	 * cut or corrupt state's array of 2^32). One zone big enough for
	 * all the objects: few, large allocations. */
	if (codec_scan_within(data, n, &len, &e, REEXEC_STATE_MAX,
	    REEXEC_STATE_MAX) != SCAN_COMPLETE ||
	    (zone = reexec_zone(n)) == NULL ||
	    msgpack_unpack(data, n, &off, zone, &obj) != MSGPACK_UNPACK_SUCCESS ||
	    state_u64(&obj, "ward_state", 0) == 0 ||
	    state_u64(&obj, "ward_state", 0) > STATE_VERSION) {
		log_warnx("restore: the state is unreadable or of an unknown "
		    "version: starting afresh");
		if (zone != NULL)
			msgpack_zone_free(zone);
		state_fds_close_untaken();
		return -1;
	}
	root = &obj;
	if (by_list)
		state_fds_handed(root);
	reexec_count = state_u64(root, "reexecs", 0);
	if (state_get(root, "server") != NULL &&
	    server_restore(state_get(root, "server")) == -1)
		log_warnx("restore: no listening socket in the state");
	channel_restore(state_get(root, "channel"));
	restored = reexec_restore_instances(root);
	if (!by_list)
		instance_adopt_orphans();	/* their parent died: not ours */
	a = state_array(root, "events", &n);
	event_restore(a, n);
	if (by_list)
		fdstore_unpack(state_get(root, "fdstore"));
	http_restore(state_get(root, "http"));
	openmetrics_restore(state_get(root, "openmetrics"));
	closed = state_fds_close_untaken();
	if (by_list)
		reexec_last_ms = (reexec_mono_ns() - state_u64(root, "t0_ns",
		    reexec_mono_ns())) / 1e6;
	log_notice("restore: %u instance%s (%u running), %u connection%s%s%s",
	    restored, restored == 1 ? "" : "s", instances_running_count,
	    conn_count, conn_count == 1 ? "" : "s",
	    closed ? "; fds not taken back were closed" : "",
	    by_list ? "" : " (from the fd store)");
	if (by_list)
		log_notice("re-exec paused wardd for %.1f ms", reexec_last_ms);
	msgpack_zone_free(zone);
	return 0;
}
