/*
 * fake_sys.c: see fake_sys.h. Linked into the state-machine unit tests
 * (test_instance, test_program); wardd.c is not linked, so its globals
 * (opts) are defined here.
 */
#include "config.h"

#include <sys/eventfd.h>

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "fake_sys.h"

struct wardd_opts opts;
struct fake_sys fake;

static char fake_dir[] = "/tmp/ward-unit-XXXXXX";

static pid_t
fake_spawn(const struct instance *i, struct spawn_fds *fds, char **envp,
    int *status_fd, struct ward_err *e)
{
	*status_fd = -1;
	fds->pidfd_out = -1;	/* fake_pidfd_open makes its stand-in */
	if (fake.spawn_fails > 0) {
		fake.spawn_fails--;
		return ward_err_set(e, WARD_E_SPAWN_FAILED, "cannot run %s: "
		    "refused by the fake", i->spec.argv[0]);
	}
	return fake.next_pid++;
}

/* A pollable fd that is never readable by itself: the pidfd's stand-in. */
static int
fake_pidfd_open(pid_t pid)
{
	return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

static int
fake_signal(int pidfd, pid_t pid, int sig, int group)
{
	if (fake.nsignals < FAKE_SYS_MAX_SIGNALS)
		fake.signals[fake.nsignals++] = sig;
	return 0;
}

static int
fake_reap(int pidfd, siginfo_t *si)
{
	if (!fake.exit_pending) {
		si->si_pid = 0;		/* not yet: a spurious wakeup */
		return 0;
	}
	*si = fake.exit_si;
	fake.exit_pending = 0;
	return 0;
}

static void
fake_kill_unreaped(pid_t pid)
{
}

/* /proc/PID/FILE of a small idle process: 7 ticks user, 3 system. */
static ssize_t
fake_proc_read(pid_t pid, const char *file, char *buf, size_t len)
{
	const char *text;
	int n;

	fake.proc_reads++;
	if (strcmp(file, "stat") == 0) {
		if (pid >= FAKE_SYS_FIRST_PID &&
		    pid < FAKE_SYS_FIRST_PID + FAKE_SYS_MAX_PIDS)
			fake.stat_reads[pid - FAKE_SYS_FIRST_PID]++;
		text = "1 (payload) S 1 1 1 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 "
		    "1 1000 50 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
	} else if (strcmp(file, "statm") == 0)
		text = "1000 50 40 1 0 30 0\n";
	else if (strcmp(file, "smaps_rollup") == 0)
		text = "Rss: 200 kB\nPss: 150 kB\n";
	else {
		errno = ENOENT;
		return -1;
	}
	n = snprintf(buf, len, "%s", text);
	return n < (int)len ? n : (ssize_t)len - 1;
}

/* The cgroup's files: memory.events as the test set it, nothing else. */
static ssize_t
fake_cgroup_read(const struct instance *i, const char *file, char *buf,
    size_t len)
{
	int n;

	if (fake.memory_events == NULL || strcmp(file, "memory.events") != 0) {
		errno = ENOENT;
		return -1;
	}
	n = snprintf(buf, len, "%s", fake.memory_events);
	return n < (int)len ? n : (ssize_t)len - 1;
}

static const struct sys_ops fake_ops = {
	.spawn = fake_spawn,
	.pidfd_open = fake_pidfd_open,
	.signal = fake_signal,
	.reap = fake_reap,
	.kill_unreaped = fake_kill_unreaped,
	.proc_read = fake_proc_read,
	.cgroup_read = fake_cgroup_read,
};

static void
fake_observer(struct instance *i, enum instance_event ev)
{
	if (fake.nevents < FAKE_SYS_MAX_EVENTS) {
		fake.event_ids[fake.nevents] = i->id;
		fake.events[fake.nevents++] = ev;
	}
}

void
fake_sys_setup(void)
{
	memset(&fake, 0, sizeof fake);
	fake.next_pid = FAKE_SYS_FIRST_PID;
	ck_assert_ptr_nonnull(mkdtemp(fake_dir));
	opts.state_dir = fake_dir;
	opts.uid = geteuid();
	opts.is_root = geteuid() == 0;
	budget_defaults();
	getrlimit(RLIMIT_NOFILE, &opts.nofile);
	log_init(LOG_LVL_WARNING);
	ward_loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
	ck_assert_ptr_nonnull(ward_loop);
	sys = &fake_ops;
	budget_init();
	statedir_init();
	cgroup_init(1);
	instance_init();
	instance_observe(fake_observer);
}

static int
fake_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

void
fake_sys_teardown(void)
{
	instance_free_all();
	nftw(fake_dir, fake_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* An instance of "payload", made as an admin's instance.create makes it. */
struct instance *
fake_sys_instance(const char *name, int detect_hangup)
{
	struct instance_spec cfg;
	struct instance *i;
	struct ward_err err = WARD_ERR_INIT;

	memset(&cfg, 0, sizeof cfg);
	cfg.name = name ? strdup(name) : NULL;
	ck_assert_ptr_nonnull(cfg.argv = calloc(2, sizeof *cfg.argv));
	ck_assert_ptr_nonnull(cfg.argv[0] = strdup("payload"));
	cfg.detect_hangup = detect_hangup;
	cfg.hangup_timeout_ms = HANGUP_TIMEOUT_MS;
	i = instance_new(&cfg, peer_self(), &err);
	ck_assert_msg(i != NULL, "instance_new: %s", err.msg);
	return i;
}

/* i's child exits with code, or is killed by signal (code then unused). */
void
fake_sys_exit(struct instance *i, int code, int signal)
{
	ck_assert_int_eq(i->state, INSTANCE_RUNNING);
	memset(&fake.exit_si, 0, sizeof fake.exit_si);
	fake.exit_si.si_pid = i->pid;
	fake.exit_si.si_code = signal ? CLD_KILLED : CLD_EXITED;
	fake.exit_si.si_status = signal ? signal : code;
	fake.exit_pending = 1;
	ev_invoke(ward_loop, &i->pidfd_w, EV_READ);
}

/* A timer's time has come: its callback runs now, as the loop would (a
 * repeating timer is already set for its next time, a one-shot stopped). */
void
fake_sys_fire(ev_timer *t)
{
	ck_assert_msg(ev_is_active(t), "the timer is not running");
	if (t->repeat > 0.)
		ev_timer_again(ward_loop, t);
	else
		ev_timer_stop(ward_loop, t);
	ev_invoke(ward_loop, t, EV_TIMER);
}

/* Whether instance id announced ev. */
int
fake_sys_saw(enum instance_event ev, uint64_t id)
{
	int k;

	for (k = 0; k < fake.nevents; k++) {
		if (fake.events[k] == ev && fake.event_ids[k] == id)
			return 1;
	}
	return 0;
}

int
fake_sys_last_signal(void)
{
	return fake.nsignals > 0 ? fake.signals[fake.nsignals - 1] : 0;
}
