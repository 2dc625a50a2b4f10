/*
 * spawn.c: starting a child clean: an empty signal mask, default
 * dispositions for every signal, its own session, /dev/null on stdin,
 * wardd's stdout/stderr for an admin's payload (another user's gets its
 * captured output, or /dev/null), the failure and notify pipes as fds 3
 * and 4, and nothing else (every fd wardd opens or inherited is CLOEXEC);
 * with the environment spawn-env.c makes; as another user when it must;
 * in its own cgroup, with the group, umask, rlimits, nice, oom_score_adj
 * and CPU affinity it was given (the execution environment). One child
 * function does all of it, in a vfork child (faster than posix_spawn:
 * glibc's cannot reset signals 32 and 33, see spawn_exec) or, for a
 * child that will run as another uid than wardd's, in a forked one that
 * wardd does not wait for (spawn_uses_fork). Both are made with clone3
 * where it can be (clone3.c: the pidfd and the cgroup come with the
 * clone, handlers are already default), else with vfork and fork. A
 * vfork child reports a failed step in wardd's memory, a forked one on a
 * close-on-exec status pipe: EOF means it exec'd. What can be done once
 * is (spawn_once): the dispositions to reset, /dev/null, the fd slots
 * that spare a vfork child a copy of wardd's whole fd table.
 *
 * layer: engine
 */
#include "config.h"

#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"

int
spawn_pidfd_open(pid_t pid)
{
	return syscall(SYS_pidfd_open, pid, 0);
}

#ifndef PIDFD_SIGNAL_PROCESS_GROUP
#define PIDFD_SIGNAL_PROCESS_GROUP	(1UL << 2)	/* linux/pidfd.h, 6.9 */
#endif

/*
 * Signal the process behind pidfd or, with group, its whole process group
 * (pidfd_send_signal's PIDFD_SIGNAL_PROCESS_GROUP, Linux 6.9). On an older
 * kernel, which answers EINVAL once and is then remembered, the group is
 * signalled with kill(-pid): safe only because the caller holds the leader
 * unreaped, so its pid (the group's id) cannot have been reused.
 */
int
spawn_pidfd_signal(int pidfd, pid_t pid, int sig, int group)
{
	static int no_group_flag;

	if (!group)
		return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
	if (!no_group_flag) {
		if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL,
		    PIDFD_SIGNAL_PROCESS_GROUP) == 0)
			return 0;
		if (errno != EINVAL)
			return -1;
		no_group_flag = 1;
	}
	return kill(-pid, sig);
}

#define SPAWN_CLOSE_RANGE_UNSHARE	(1U << 1)	/* linux/close_range.h */

/* /dev/null, read and write ends, opened once (spawn_once). */
static int spawn_null[2] = { -1, -1 };

/* The dispositions a child resets: ignored first, then caught
 * (spawn_signals_scan). */
static int spawn_sigs[NSIG];
static int spawn_nsigs_ign, spawn_nsigs;

/*
 * The fds a child gets, each as (where it is now, where it goes). Sources
 * are first moved above every target, so that no dup2 onto a target can
 * clobber a source still to be copied.
 */
/* cfg.fds holds at most 3 (stdio) + REQUEST_MAX_FDS ('fds'); capture
 * pipes only take the place of stdout/stderr; plus fds 3 and 4. */
#define SPAWN_PLAN_MAX	(3 + REQUEST_MAX_FDS + 2)

struct spawn_plan {
	struct spec_fd	 map[SPAWN_PLAN_MAX];
	int			 n;
	int			 status_w;	/* the status pipe: above every target */
	int			 status_at;	/* where the child moves it: top + 1 */
	/* What the child closes: every fd but its targets and status_at. */
	unsigned		 close_lo[SPAWN_PLAN_MAX + 1];
	unsigned		 close_hi[SPAWN_PLAN_MAX + 1];
	int			 nclose;
	int			 has_std[3];	/* 0-2 are in map */
	int			 null_output;	/* 1 and 2 not in map: /dev/null */
	int			 top;		/* the highest target */
	int			 nslots;	/* sources moved to spawn_slot */
	int			 unshare_below;	/* 0, or the fds the child keeps */
	int			 temp[SPAWN_PLAN_MAX];	/* ours to close */
	int			 ntemp;
	/* Prepared in the parent: the child formats nothing. */
	int			 cgroup_dir;	/* -1, or the cgroup the child joins */
	int			 cgroup_joined;	/* clone3 put it there already */
	const int		*sigs;		/* dispositions the child resets */
	int			 nsigs;
	char			 oom[16];	/* oom_score_adj as text; "" if none */
	size_t			 oomlen;
};

static int
spawn_plan_add(struct spawn_plan *p, int fd, int target, int top)
{
	if (fd <= top) {
		if ((fd = fcntl(fd, F_DUPFD_CLOEXEC, top + 1)) == -1)
			return -1;
		p->temp[p->ntemp++] = fd;
	}
	p->map[p->n].fd = fd;
	p->map[p->n].target = target;
	p->n++;
	if (target <= 2)
		p->has_std[target] = 1;
	return 0;
}

static void
spawn_plan_free(struct spawn_plan *p)
{
	while (p->ntemp > 0)
		close(p->temp[--p->ntemp]);
}

/*
 * The fd ranges the child closes, so that from then on /proc/self/fd in
 * the child names the payload's fds only (R4 of the review): every gap
 * between its targets (0-4 are always there), and all above top + 1,
 * where the status pipe goes.
 */
static void
spawn_plan_gaps(struct spawn_plan *p, int top)
{
	int sorted[SPAWN_PLAN_MAX], n = 0, k, j, t;
	unsigned lo = WARD_FAILURE_FD;

	for (k = 0; k < p->n; k++) {
		t = p->map[k].target;
		for (j = n; j > 0 && sorted[j - 1] > t; j--)
			sorted[j] = sorted[j - 1];
		sorted[j] = t;
		n++;
	}
	p->nclose = 0;
	for (k = 0; k < n; k++) {
		if ((unsigned)sorted[k] < lo)
			continue;
		if ((unsigned)sorted[k] > lo) {
			p->close_lo[p->nclose] = lo;
			p->close_hi[p->nclose++] = sorted[k] - 1;
		}
		lo = sorted[k] + 1;
	}
	/* lo is now top + 1: the status pipe's place, if there is one. */
	p->status_at = top + 1;
	p->close_lo[p->nclose] = p->status_w != -1 ? top + 2 : top + 1;
	p->close_hi[p->nclose++] = ~0U;
}

static int
spawn_plan_make(const struct instance *i, const struct spawn_fds *fds,
    int status_w, struct spawn_plan *p)
{
	int top = WARD_NOTIFY_FD;
	size_t k;

	memset(p, 0, sizeof *p);
	/* The execution environment's parts the child needs ready-made. */
	p->cgroup_dir = fds->cgroup_dir;
	p->sigs = spawn_sigs;
	p->nsigs = spawn_nsigs;
	/* wardd's own stdout and stderr are not another user's to write. */
	p->null_output = i->run_as_owner;
	if (i->spec.has_oom_score_adj)
		p->oomlen = snprintf(p->oom, sizeof p->oom, "%d\n",
		    i->spec.oom_score_adj);
	else if (i->run_as_owner && opts.oom_score_adj < 0)
		/* wardd's own shield from the OOM killer is not a user's. */
		p->oomlen = snprintf(p->oom, sizeof p->oom, "0\n");
	for (k = 0; k < i->spec.nfds; k++) {
		if (i->spec.fds[k].target > top)
			top = i->spec.fds[k].target;
	}
	/* No channel (hooks.c's side processes): /dev/null as fds 3 and 4. */
	if (spawn_plan_add(p, fds->failure_w != -1 ? fds->failure_w :
	    spawn_null[1], WARD_FAILURE_FD, top) == -1 ||
	    spawn_plan_add(p, fds->notify_w != -1 ? fds->notify_w :
	    spawn_null[1], WARD_NOTIFY_FD, top) == -1)
		return -1;
	for (k = 0; k < i->spec.nfds; k++) {
		if (spawn_plan_add(p, i->spec.fds[k].fd, i->spec.fds[k].target,
		    top) == -1)
			return -1;
	}
	/*
	 * The status pipe (a forked child's only: a vfork child reports in
	 * memory), above every target too (not in map: no target).
	 */
	p->status_w = status_w;
	if (status_w != -1 && status_w <= top) {
		if ((p->status_w = fcntl(status_w, F_DUPFD_CLOEXEC, top + 1)) == -1)
			return -1;
		p->temp[p->ntemp++] = p->status_w;
	}
	spawn_plan_gaps(p, top);
	p->top = top;
	return 0;
}

/* The kernel's struct sigaction: glibc's refuses signals 32 and 33. */
struct spawn_ksigaction {
	void		(*handler)(int);
	unsigned long	 flags;
	void		(*restorer)(void);
	uint64_t	 mask;
};

static const char *const spawn_steps[] = {
	"", "setsid", "open /dev/null", "dup2", "chdir", "setgroups", "setgid",
	"setuid", "execve",
	/* The execution environment's steps (SPAWN_STEP_*). */
	"joining its cgroup", "rlimits", "setpriority (nice)", "oom_score_adj",
	"closing wardd's fds", "its requester's limits and scheduling",
	"sched_setaffinity (cpus)"
};
enum {
	SPAWN_STEP_CGROUP = 9,
	SPAWN_STEP_RLIMIT,	/* spawn_fail_arg: the RLIMIT_* */
	SPAWN_STEP_NICE,
	SPAWN_STEP_OOM,
	SPAWN_STEP_CLOSE,	/* close_range: needs Linux 5.9 */
	SPAWN_STEP_USER_LIMITS,
	SPAWN_STEP_AFFINITY,	/* spec-limits.c's cpus */
	SPAWN_STEP_COUNT
};

/*
 * The child's own: where its status pipe is now (-1: a vfork child, which
 * has none), and the detail of the step that failed. Only the child writes
 * them (a vfork child writes them in wardd's memory, but wardd never reads
 * them).
 */
static int spawn_status_fd = -1;
static int spawn_fail_arg;
/*
 * A vfork child's report, written in wardd's memory (the child shares it)
 * before it exits: wardd, suspended until then, reads it once it resumes.
 * step 0 means the child exec'd. No pipe to make, watch or read.
 */
static volatile struct spawn_report spawn_vfork_report;

/* Tell wardd which step failed and why, then go: exit 127, as a shell does. */
static void __attribute__((noreturn))
spawn_fail(int step)
{
	struct spawn_report r = { step, errno, spawn_fail_arg };

	if (spawn_status_fd == -1) {
		spawn_vfork_report.err = r.err;
		spawn_vfork_report.arg = r.arg;
		spawn_vfork_report.step = r.step;
		_exit(127);
	}
	/*
	 * One write of 12 bytes to a pipe: whole or not at all. Should it
	 * fail, wardd sees an exit without a report: a plain death, exit 127.
	 */
	if (write(spawn_status_fd, &r, sizeof r) != (ssize_t)sizeof r)
		_exit(127);
	_exit(127);
}

#define SPAWN_FAIL(step) spawn_fail(step)

/*
 * The resource part of the execution environment, in the vfork child (raw
 * calls only). Run before the id switch for admins' instances, which may be
 * granted more than a user could take, and after it for other users', so
 * the kernel allows them only what they could do themselves.
 */
static void
spawn_exec_limits(const struct instance *i)
{
	size_t k;

	for (k = 0; k < i->spec.nrlimits; k++) {
		if (syscall(SYS_prlimit64, 0, i->spec.rlimits[k].resource,
		    &i->spec.rlimits[k].lim, NULL) == -1) {
			spawn_fail_arg = i->spec.rlimits[k].resource;
			SPAWN_FAIL(SPAWN_STEP_RLIMIT);
		}
	}
	if (i->spec.has_nice &&
	    syscall(SYS_setpriority, PRIO_PROCESS, 0, i->spec.nice) == -1)
		SPAWN_FAIL(SPAWN_STEP_NICE);
	if (i->spec.limits != NULL &&
	    (i->spec.limits->mask & (1U << SPEC_LIMIT_CPUS)) &&
	    syscall(SYS_sched_setaffinity, 0, sizeof i->spec.limits->cpus,
	    i->spec.limits->cpus) == -1)
		SPAWN_FAIL(SPAWN_STEP_AFFINITY);
}

/*
 * A non-admin's payload gets its requester's rlimits (soft and hard), a
 * nice of at least 0, SCHED_OTHER (or the requester's batch or idle, with
 * reset-on-fork off) and the default I/O priority (or the requester's
 * best-effort or idle one) instead of wardd's (userlimits.c read them).
 * In the child, as root, before the id switch: raw calls only; -1 with
 * errno. The policy goes first: it keeps the nice value it finds.
 */
static int
spawn_apply_user_limits(const struct user_limits *ul)
{
	struct sched_param sp = { 0 };
	int r;

	for (r = 0; r < RLIM_NLIMITS; r++) {
		if (syscall(SYS_prlimit64, 0, r, &ul->rlim[r], NULL) == -1)
			return -1;
	}
	if (syscall(SYS_sched_setscheduler, 0, ul->policy, &sp) == -1 ||
	    syscall(SYS_setpriority, PRIO_PROCESS, 0, ul->nice) == -1 ||
	    syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0,
	    ul->ioprio) == -1)
		return -1;
	return 0;
}

/*
 * The child, of vfork or of fork (or of clone3: either of the two, its
 * handlers already default and already in its cgroup), with no handler of
 * wardd's able to run in it. Only raw system calls: a vfork child runs on
 * the parent's memory. Before any id switch it closes every fd but the
 * payload's and the status pipe, so that once its user may signal it, it
 * holds no fd of wardd's (and a uid-switching child is a forked one: no
 * memory shared).
 */
static void __attribute__((noreturn))
spawn_exec(const struct instance *i, const struct spawn_plan *p, char **envp,
    int setids, uid_t uid, gid_t gid)
{
	struct spawn_ksigaction ksa = { SIG_DFL, 0, NULL, 0 };
	uint64_t none = 0;
	int fd, k;

	spawn_status_fd = p->status_w;
	spawn_fail_arg = 0;

	/*
	 * A child that shares wardd's fd table (spawn_slots_take) takes its
	 * own first, with only the fds below unshare_below in it: nothing may
	 * touch the table before.
	 */
	if (p->unshare_below > 0 && syscall(SYS_close_range, p->unshare_below,
	    ~0U, SPAWN_CLOSE_RANGE_UNSHARE) == -1)
		SPAWN_FAIL(SPAWN_STEP_CLOSE);

	/*
	 * Back to default every disposition that is not (spawn_signals_scan),
	 * glibc's internal signals 32 and 33 included: posix_spawn's
	 * POSIX_SPAWN_SETSIGDEF leaves those two SIG_IGN in the child, which
	 * is why wardd does not use it.
	 */
	for (k = 0; k < p->nsigs; k++)
		syscall(SYS_rt_sigaction, p->sigs[k], &ksa, NULL, sizeof ksa.mask);
	/* Into the instance's cgroup first, so all it starts is in there. */
	if (p->cgroup_dir != -1 && !p->cgroup_joined) {
		if ((fd = openat(p->cgroup_dir, "cgroup.procs",
		    O_WRONLY | O_CLOEXEC)) == -1 || write(fd, "0\n", 2) != 2)
			SPAWN_FAIL(SPAWN_STEP_CGROUP);
		close(fd);
	}
	if (setsid() == -1)
		SPAWN_FAIL(1);
	/* wardd's /dev/null, opened once (spawn_devnull). */
	for (k = 0; k < 3; k++) {
		if (p->has_std[k] || (k > 0 && !p->null_output))
			continue;
		if (dup2(spawn_null[k > 0], k) == -1)
			SPAWN_FAIL(3);
	}
	/* Sources all sit above every target (spawn_plan_add). */
	for (k = 0; k < p->n; k++) {
		if (dup2(p->map[k].fd, p->map[k].target) == -1)
			SPAWN_FAIL(3);
	}
	/*
	 * The status pipe just above the targets, then every other fd closed:
	 * /proc/self/fd/N in argv[0] or cwd can no longer reach an fd of
	 * wardd's (another instance's passed fds among them).
	 */
	if (spawn_status_fd != -1 && spawn_status_fd != p->status_at) {
		if (syscall(SYS_dup3, spawn_status_fd, p->status_at,
		    O_CLOEXEC) == -1)
			SPAWN_FAIL(3);
		spawn_status_fd = p->status_at;
	}
	for (k = 0; k < p->nclose; k++) {
		if (syscall(SYS_close_range, p->close_lo[k], p->close_hi[k],
		    0) == -1)
			SPAWN_FAIL(SPAWN_STEP_CLOSE);
	}
	/*
	 * The execution environment. oom_score_adj before any id switch: a
	 * setuid makes /proc/self root's, and root's write also sets the floor
	 * below which the payload cannot go by itself.
	 */
	if (p->oomlen > 0) {
		if ((fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC)) == -1 ||
		    write(fd, p->oom, p->oomlen) != (ssize_t)p->oomlen)
			SPAWN_FAIL(SPAWN_STEP_OOM);
		close(fd);
	}
	if (i->spec.has_umask)
		syscall(SYS_umask, i->spec.umask);
	if (i->spec.user_limits != NULL &&
	    spawn_apply_user_limits(i->spec.user_limits) == -1)
		SPAWN_FAIL(SPAWN_STEP_USER_LIMITS);
	if (!i->run_as_owner)
		spawn_exec_limits(i);
	/* A group without an id switch (an admin's own instance). */
	if (!setids && i->spec.has_group && syscall(SYS_setgid, gid) == -1)
		SPAWN_FAIL(6);
	if (setids) {
		/* Raw calls: no glibc set*id broadcast from a vfork child. */
		if (syscall(SYS_setgroups, i->spec.has_user ? 0 : i->ngroups,
		    i->spec.has_user ? NULL : i->groups) == -1)
			SPAWN_FAIL(5);
		if (syscall(SYS_setgid, gid) == -1)
			SPAWN_FAIL(6);
		if (syscall(SYS_setuid, uid) == -1)
			SPAWN_FAIL(7);
		/*
		 * With fs.suid_dumpable = 1, setuid left it dumpable: from
		 * here to execve (which decides anew), its user may not
		 * trace it.
		 */
		syscall(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0);
	}
	/* After the id switch: a directory the user may not enter stays shut. */
	if (i->spec.cwd != NULL && chdir(i->spec.cwd) == -1)
		SPAWN_FAIL(4);
	if (i->run_as_owner)
		spawn_exec_limits(i);
	/* wardd's raised open files limit is not the child's: unless rlimits
	 * say, or it has its requester's already. */
	if (opts.nofile.rlim_cur != 0 && i->spec.user_limits == NULL &&
	    !(i->spec.rlimit_mask & (1U << RLIMIT_NOFILE)))
		syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &opts.nofile, NULL);
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof none);
	execve(i->spec.exec_path, i->spec.argv, envp);
	SPAWN_FAIL(8);
}

/*
 * The ids the payload runs as, and whether wardd switches to them (1) or
 * the payload runs as wardd itself (0). 'group' replaces the gid.
 */
int
spawn_ids(const struct instance *i, uid_t *uid, gid_t *gid)
{
	*uid = i->spec.has_user ? i->spec.user_uid : i->owner_uid;
	*gid = i->spec.has_group ? i->spec.group_gid :
	    i->spec.has_user ? i->spec.user_gid : i->owner_gid;
	return i->run_as_owner || (i->spec.has_user && opts.is_root);
}

/*
 * Whether the child runs as another uid than wardd's. Such a child must not
 * be a vfork child: from its setuid on, its user may SIGSTOP it (or, with
 * fs.suid_dumpable set, ptrace it), and a vfork parent waits for it.
 */
int
spawn_uses_fork(const struct instance *i)
{
	uid_t uid;
	gid_t gid;

	return spawn_ids(i, &uid, &gid) && uid != opts.uid;
}

/*
 * The message for a report the child wrote on its status pipe: the same
 * text whether wardd read it at once (vfork) or later (fork). The report
 * is the child's, and a child its user may trace could have written
 * anything: every field is checked before it is used.
 */
void
spawn_report_message(const struct instance *i, const struct spawn_report *r,
    struct ward_err *e)
{
	uid_t uid;
	gid_t gid;
	int setids = spawn_ids(i, &uid, &gid);
	const char *step;
	char stepbuf[64];

	if (r->step == 8) {
		ward_err_set(e, WARD_E_SPAWN_FAILED,
		    "cannot start '%s': %s: %s",
		    i->spec.name, i->spec.exec_path, strerror(r->err));
		return;
	}
	if (r->step <= 0 || r->step >= SPAWN_STEP_COUNT) {
		snprintf(stepbuf, sizeof stepbuf, "step %d", (int)r->step);
		step = stepbuf;
	} else if (r->step == SPAWN_STEP_RLIMIT) {
		snprintf(stepbuf, sizeof stepbuf, "rlimits.%s",
		    spec_execenv_rlimit_name(r->arg));
		step = stepbuf;
	} else
		step = spawn_steps[r->step];
	ward_err_set(e, WARD_E_SPAWN_FAILED,
	    "cannot start '%s'%s: %s: %s", i->spec.name,
	    setids ? " as another user" : "", step, strerror(r->err));
}

/* What the clone3 child needs: spawn_exec's arguments. */
struct spawn_child_args {
	const struct instance	*i;
	const struct spawn_plan	*p;
	char			**envp;
	int			 setids;
	uid_t			 uid;
	gid_t			 gid;
};

static int
spawn_child_main(void *arg)
{
	struct spawn_child_args *a = arg;

	spawn_exec(a->i, a->p, a->envp, a->setids, a->uid, a->gid);
}

/*
 * Which dispositions a child must reset, read once (64 system calls) at
 * the first spawn: loop_init has settled wardd's by then (SIGPIPE ignored,
 * libev's handlers) and nothing changes them later. A child of clone3 has
 * default handlers already (CLONE_CLEAR_SIGHAND leaves ignored signals
 * ignored): it resets the ignored ones only; others reset both.
 */

static void
spawn_signals_scan(void)
{
	struct spawn_ksigaction cur;
	int caught[NSIG], ncaught = 0, sig, k;

	for (sig = 1; sig < NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP ||
		    syscall(SYS_rt_sigaction, sig, NULL, &cur,
		    sizeof cur.mask) == -1 || cur.handler == SIG_DFL)
			continue;
		if (cur.handler == SIG_IGN)
			spawn_sigs[spawn_nsigs_ign++] = sig;
		else
			caught[ncaught++] = sig;
	}
	spawn_nsigs = spawn_nsigs_ign;
	for (k = 0; k < ncaught; k++)
		spawn_sigs[spawn_nsigs++] = caught[k];
}

#define SPAWN_SLOTS		4	/* fds 3 and 4, captured stdout, stderr */
#define SPAWN_SLOTS_WORTH	64	/* fds above the slots, at the least */
static int spawn_slot[SPAWN_SLOTS];	/* /dev/null while no spawn runs */
static int spawn_nslots;

static void	spawn_slots_give(struct spawn_plan *, int);

/*
 * Done once, at the first spawn: the signal lists, /dev/null for the
 * children's stdin and (non-admins') stdout and stderr, the slots. -1
 * with errno.
 */
static int
spawn_once(void)
{
	static int done;

	if (done)
		return 0;
	spawn_signals_scan();
	if (spawn_null[0] == -1 &&
	    (spawn_null[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	if (spawn_null[1] == -1 &&
	    (spawn_null[1] = open("/dev/null", O_WRONLY | O_CLOEXEC)) == -1)
		return -1;
	/* Low numbers: wardd holds few fds at its first spawn. */
	while (clone3_usable() && spawn_nslots < SPAWN_SLOTS &&
	    (spawn_slot[spawn_nslots] = fcntl(spawn_null[0], F_DUPFD_CLOEXEC,
	    0)) != -1)
		spawn_nslots++;
	done = 1;
	return 0;
}

/* The fds spawn.c holds (fd enumeration): /dev/null and the slots. */
void
spawn_fds(fd_visit_fn fn, void *arg)
{
	int k;

	for (k = 0; k < 2; k++) {
		if (spawn_null[k] != -1)
			fn(spawn_null[k], "spawn: /dev/null", arg);
	}
	for (k = 0; k < spawn_nslots; k++)
		fn(spawn_slot[k], "spawn: slot", arg);
}

/*
 * A vfork child's copy of wardd's fd table costs in proportion to the fds
 * wardd holds (thousands, with as many instances): each copied, then each
 * closed by the child, for the few it keeps. Instead, when the child's
 * sources fit in spawn_slot (below every other fd of theirs), wardd moves
 * them there (dup3, undone by spawn_slots_give after the clone) and the
 * child, cloned sharing wardd's table (CLONE_FILES: wardd is suspended
 * meanwhile), takes a private one of only the fds below the slots' top
 * (close_range's CLOSE_RANGE_UNSHARE copies no more). Not worth it while
 * the sources are low themselves.
 */
static void
spawn_slots_take(struct spawn_plan *p)
{
	int k, high = 0, keep = p->top + 1;

	if (!clone3_usable() || p->n > spawn_nslots || p->n == 0 ||
	    spawn_slot[0] <= p->top)
		return;
	for (k = 0; k < p->n; k++) {
		if (p->map[k].fd > high)
			high = p->map[k].fd;
	}
	if (high < spawn_slot[spawn_nslots - 1] + SPAWN_SLOTS_WORTH)
		return;
	for (k = 0; k < p->n; k++) {
		if (syscall(SYS_dup3, p->map[k].fd, spawn_slot[k],
		    O_CLOEXEC) == -1) {
			spawn_slots_give(p, k);
			return;
		}
	}
	for (k = 0; k < p->n; k++) {
		p->map[k].fd = spawn_slot[k];
		if (spawn_slot[k] >= keep)
			keep = spawn_slot[k] + 1;
	}
	for (k = 0; k < 2; k++) {
		if (spawn_null[k] >= keep)
			keep = spawn_null[k] + 1;
	}
	p->nslots = p->n;
	p->unshare_below = keep;
}

/* The slots back on /dev/null: the sources' only holders are wardd's own. */
static void
spawn_slots_give(struct spawn_plan *p, int n)
{
	int k;

	for (k = 0; k < n; k++)
		syscall(SYS_dup3, spawn_null[0], spawn_slot[k], O_CLOEXEC);
	p->nslots = 0;
}

/*
 * The clone3 way (clone3.c): made in its cgroup, with its pidfd, default
 * handlers (the child resets the ignored signals only) and, for a vfork
 * child, wardd's memory (and, with slots, fd table) shared. 0 and *pid
 * (and *pidfd), or -1: the old way then does the spawn, and meets and
 * reports whatever made clone3 fail (the cgroup refusing the child).
 */
static int
spawn_clone3(struct spawn_child_args *a, struct spawn_plan *p, int forked,
    pid_t *pid, int *pidfd)
{
	uint64_t flags;
	int r;

	if (!clone3_usable())
		return -1;
	flags = CLONE3_PIDFD | CLONE3_CLEAR_SIGHAND |
	    (forked ? 0 : CLONE3_VM | CLONE3_VFORK) |
	    (p->unshare_below > 0 ? CLONE3_FILES : 0) |
	    (p->cgroup_dir != -1 ? CLONE3_INTO_CGROUP : 0);
	p->cgroup_joined = 1;
	p->nsigs = spawn_nsigs_ign;
	r = clone3_run(flags, p->cgroup_dir, pidfd, spawn_child_main, a, pid);
	p->cgroup_joined = 0;
	p->nsigs = spawn_nsigs;
	if (r == -1)
		*pidfd = -1;
	return r;
}

/*
 * Start the child and exec: with clone3 if the kernel has it, else with
 * vfork or fork, with wardd's signals blocked across it so that no handler
 * of wardd's runs in the child (which resets them all before it unblocks).
 * A vfork child (one that stays wardd's uid: nobody else may stop it)
 * suspends wardd until it execs or fails, which takes only system calls
 * (uid, gid and groups are numbers: no name lookups), as quick as
 * posix_spawn; its report is then in spawn_vfork_report. A forked child is
 * not waited for: *status_r is its status pipe's (non-blocking) read end,
 * for the caller to watch. *pidfd is the child's pidfd, or -1 (not clone3).
 */
static pid_t
spawn_clone(const struct instance *i, struct spawn_plan *p, char **envp,
    int status[2], int *status_r, int *pidfd, struct ward_err *e)
{
	/* Set once, in memory: vfork must not clobber them. */
	struct spawn_child_args a = { .i = i, .p = p, .envp = envp };
	volatile int forked = spawn_uses_fork(i);
	struct spawn_report r;
	sigset_t all, old;
	pid_t pid;

	a.setids = spawn_ids(i, &a.uid, &a.gid);
	*pidfd = -1;
	spawn_vfork_report.step = 0;
	if (spawn_clone3(&a, p, forked, &pid, pidfd) == -1) {
		sigfillset(&all);
		sigprocmask(SIG_SETMASK, &all, &old);
		pid = forked ? fork() : vfork();
		if (pid == 0)
			spawn_exec(i, p, envp, a.setids, a.uid, a.gid);
		sigprocmask(SIG_SETMASK, &old, NULL);
	}
	if (pid == -1) {
		return ward_err_errno(e, WARD_E_SPAWN_FAILED,
		    "cannot start '%s': %s", i->spec.name,
		    forked ? "fork" : "vfork");
	}
	if (forked) {
		/* Ours closed, the child's is its only write end: EOF once it
		 * execs. */
		close(status[1]);
		status[1] = -1;
		*status_r = status[0];
		status[0] = -1;
		return pid;
	}
	if (spawn_vfork_report.step == 0)
		return pid;	/* it exec'd */
	r.step = spawn_vfork_report.step;
	r.err = spawn_vfork_report.err;
	r.arg = spawn_vfork_report.arg;
	waitpid(pid, NULL, 0);	/* it has _exit'ed: ours to reap */
	if (*pidfd != -1) {
		close(*pidfd);
		*pidfd = -1;
	}
	spawn_report_message(i, &r, e);
	return -1;
}

/*
 * Start the child; -1 with e set (spawn_failed) for the client. *status_r is
 * -1, or (a forked child) the read end of its status pipe, which the caller
 * watches: EOF once the child exec'd, a struct spawn_report if it failed.
 * fds->pidfd_out is the child's pidfd if the spawn made one, else -1.
 */
pid_t
spawn_child(const struct instance *i, struct spawn_fds *fds, char **envp,
    int *status_r, struct ward_err *e)
{
	struct spawn_plan plan;
	int status[2] = { -1, -1 };
	pid_t pid = -1;

	*status_r = -1;
	fds->pidfd_out = -1;
	memset(&plan, 0, sizeof plan);
	/*
	 * A forked child's status pipe, its read end non-blocking: the loop
	 * never waits on it (a pipe's read end has no other status flag).
	 */
	if (spawn_once() == -1 || (spawn_uses_fork(i) &&
	    (pipe2(status, O_CLOEXEC) == -1 ||
	    fcntl(status[0], F_SETFL, O_NONBLOCK) == -1)) ||
	    spawn_plan_make(i, fds, status[1], &plan) == -1)
		ward_err_errno(e, WARD_E_SPAWN_FAILED,
		    "cannot start '%s'", i->spec.name);
	else {
		if (!spawn_uses_fork(i))
			spawn_slots_take(&plan);
		pid = spawn_clone(i, &plan, envp, status, status_r,
		    &fds->pidfd_out, e);
		spawn_slots_give(&plan, plan.nslots);
	}
	spawn_plan_free(&plan);
	if (status[0] != -1)
		close(status[0]);
	if (status[1] != -1)
		close(status[1]);
	return pid;
}

#define container_of(p, type, member) \
	((type *)((char *)(p) - offsetof(type, member)))

/*
 * Read what a forked child said on its status pipe: a struct spawn_report
 * if a step failed, then EOF; only EOF once it exec'd (the pipe is
 * close-on-exec). The first sizeof spawn_report bytes are kept; anything
 * more (only a child its user traces could write it) is read and dropped,
 * at most a pipe's worth per call, so that the loop never waits here.
 */
void
spawn_status_drain(struct instance *i)
{
	char scratch[4096];
	size_t budget = 65536;
	ssize_t n;

	while (i->spawn_fd != -1 && budget > 0) {
		if (i->spawn_got < sizeof i->spawn_report) {
			n = read(i->spawn_fd, (char *)&i->spawn_report +
			    i->spawn_got, sizeof i->spawn_report - i->spawn_got);
			if (n > 0)
				i->spawn_got += n;
		} else if ((n = read(i->spawn_fd, scratch, sizeof scratch)) > 0)
			budget -= (size_t)n < budget ? (size_t)n : budget;
		if (n == -1 && errno == EINTR)
			continue;
		if (n == 0 || (n == -1 && errno != EAGAIN)) {
			ev_io_stop(ward_loop, &i->spawn_w);
			fd_close_watched(i->spawn_fd);
			i->spawn_fd = -1;
		}
		if (n <= 0)
			return;
	}
}

/* i->spawn_w's callback (instance.c watches the pipe). */
void
spawn_status_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	spawn_status_drain(container_of(w, struct instance, spawn_w));
}
