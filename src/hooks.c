/*
 * hooks.c: an instance's side processes (issue 13, item 4). pre_start
 * runs to its end before the payload's spawn, within its time limit;
 * post_death runs after each death with how the payload died in its
 * environment, and its result goes into that death's exit record;
 * sidecars start beside the payload, in its cgroup, and are stopped
 * (SIGTERM, SIGKILL after the stop timeout) once it died. A sidecar that
 * dies while the payload runs is logged, not restarted: a sidecar that
 * needs restarts is a program of its own.
 *
 * Each is spawned as the payload is: spawn.c's spawn_child on a copy of
 * the instance that holds the hook's argv (same user, groups, cwd,
 * environment, limits and clean start; /dev/null as fds 0, 3 and 4, no
 * passed fds; wardd's stdout and stderr for an admin's, else /dev/null,
 * as an uncaptured payload's). Each is watched by its pidfd on the one
 * loop and reaped with waitid(P_PIDFD): nothing here waits, and nothing
 * reaps another's child. Its pidfd (and a forked child's status pipe,
 * read once it died) are listed by hooks_fds, carried across a re-exec
 * (hooks_state_save), and counted while held: by capacity.c, and in the
 * owner's fd budget (budget.c), which a spawn must fit in: a user's
 * sidecars cost wardd fds as its instances do.
 *
 * instance.c does not name this file: it calls instance_pre_start (set by
 * hooks_init) before a spawn, and announces starts, deaths and removals
 * to hooks_instance_cb as to any observer. A start does not wait for
 * pre_start: instance.start and instance.run answer at once and the
 * instance shows as "starting" (hooks_starting) until the payload runs
 * (STARTED) or the start failed (SPAWN_FAILED, naming pre_start).
 *
 * layer: engine (above instance.c, which reaches it only through
 * instance_pre_start and its observers; called by instance-state.c and
 * cmd-instance.c)
 */
#include "config.h"

#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"

#define container_of(p, type, member) \
	((type *)((char *)(p) - offsetof(type, member)))

enum hook_kind {
	HOOK_PRE_START,		/* before the spawn; its exit decides it */
	HOOK_POST_DEATH,	/* after a death; its result goes in the record */
	HOOK_SIDECAR		/* beside the payload; stopped after it */
};

static const char *const hook_names[] = {
	[HOOK_PRE_START] = "pre_start",
	[HOOK_POST_DEATH] = "post_death",
	[HOOK_SIDECAR] = "sidecar",
};

/* One side process: running while pid != 0. */
struct hook_proc {
	struct hooks		*h;
	enum hook_kind		 kind;
	unsigned		 index;		/* a sidecar's, in spec order */
	pid_t			 pid;
	uid_t			 owner;		/* whose fd budget its fds count in */
	int			 pidfd;
	int			 status_fd;	/* a forked child's status pipe */
	ev_io			 w;		/* pidfd readable: it exited */
	ev_timer		 t;		/* pre_start, post_death: time limit */
	int			 timed_out;
	int			 pending;	/* a sidecar to start once its
						   last run's is reaped */
	struct exit_record	*record;	/* post_death: the death it follows */
};

/* An instance's side processes (i->hooks): made at its first need. */
struct hooks {
	struct instance		*i;		/* NULL: orphaned (hooks_orphans) */
	struct hook_proc	 pre;
	struct hook_proc	 post;
	struct hook_proc	 side[HOOKS_MAX_SIDECARS];
	int			 pre_ok;	/* pre_start succeeded: spawn now */
	char			 pre_error[WARD_ERR_MAX]; /* "": it did not fail */
	int			 stopping;	/* the payload died: sidecars go */
	int			 cancelled;	/* instance.stop during pre_start */
	ev_timer		 stop_t;	/* sidecars' SIGKILL */
	LIST_ENTRY(hooks)	 orphan_entry;
};

/*
 * Side processes of removed instances, SIGKILLed, kept until reaped so no
 * zombie is left. Not carried across a re-exec (a zombie then stays until
 * wardd exits): removal during a hook and a re-exec before its last
 * instant is not worth a state of its own.
 */
static LIST_HEAD(, hooks) hooks_orphans = LIST_HEAD_INITIALIZER(hooks_orphans);

static void	hooks_proc_cb(struct ev_loop *, ev_io *, int);
static void	hooks_timeout_cb(struct ev_loop *, ev_timer *, int);
static void	hooks_stop_cb(struct ev_loop *, ev_timer *, int);
static int	hooks_gate(struct instance *, struct ward_err *);
static void	hooks_sidecar_start(struct instance *, struct hook_proc *);
static void	hooks_proc_hold(struct hook_proc *, int);

void
hooks_init(void)
{
	instance_pre_start = hooks_gate;
}

static void
hooks_proc_init(struct hooks *h, struct hook_proc *p, enum hook_kind kind,
    unsigned index)
{
	p->h = h;
	p->kind = kind;
	p->index = index;
	p->pidfd = p->status_fd = -1;
	ev_init(&p->w, hooks_proc_cb);
	ev_init(&p->t, hooks_timeout_cb);
}

/* i's hooks, made if need be; NULL when out of memory. */
static struct hooks *
hooks_get(struct instance *i)
{
	struct hooks *h;
	unsigned k;

	if (i->hooks != NULL)
		return i->hooks;
	if ((h = calloc(1, sizeof *h)) == NULL)
		return NULL;
	h->i = i;
	hooks_proc_init(h, &h->pre, HOOK_PRE_START, 0);
	hooks_proc_init(h, &h->post, HOOK_POST_DEATH, 0);
	for (k = 0; k < HOOKS_MAX_SIDECARS; k++)
		hooks_proc_init(h, &h->side[k], HOOK_SIDECAR, k);
	ev_init(&h->stop_t, hooks_stop_cb);
	i->hooks = h;
	return h;
}

/* The argv p runs, from its instance's spec. */
static char **
hooks_argv(const struct hook_proc *p, const struct spec_hooks *sh)
{
	switch (p->kind) {
	case HOOK_PRE_START:
		return sh->pre_start;
	case HOOK_POST_DEATH:
		return sh->post_death;
	default:
		return p->index < sh->nsidecars ? sh->sidecars[p->index] : NULL;
	}
}

/*
 * The instance as spawn.c sees it, running argv instead: its user,
 * groups, cwd, environment and limits, none of its passed fds.
 */
static void
hooks_shadow(const struct instance *i, char **argv, struct instance *s)
{
	static char none[] = "";

	*s = *i;
	s->spec.argv = argv;
	s->spec.exec_path = argv[0];
	s->spec.fds = NULL;
	s->spec.nfds = 0;
	if (s->runtime_dir == NULL)	/* pre_start: not made yet */
		s->runtime_dir = none;
}

/* The payload's environment and extra (NULL-terminated); free() frees it. */
static char **
hooks_environ(const struct instance *s, char **extra, char ***base)
{
	char **env, **all;
	size_t n = 0, m = 0;

	if ((*base = env = spawn_environ(s)) == NULL)
		return NULL;
	while (env[n] != NULL)
		n++;
	while (extra != NULL && extra[m] != NULL)
		m++;
	if ((all = calloc(n + m + 1, sizeof *all)) == NULL)
		return NULL;
	memcpy(all, env, n * sizeof *all);
	if (m > 0)
		memcpy(all + n, extra, m * sizeof *all);
	return all;
}

/*
 * Start p (its argv from the spec) with extra environment and in cgroup
 * (-1: wardd's own). 0, or -1 with e set: a message naming the hook.
 */
static int
hooks_spawn(struct hook_proc *p, char **extra, int cgroup, struct ward_err *e)
{
	struct instance *i = p->h->i, s;
	struct spawn_fds fds = { .failure_w = -1, .notify_w = -1,
	    .cgroup_dir = cgroup, .pidfd_out = -1 };
	struct ward_err se = WARD_ERR_INIT;
	char **argv = hooks_argv(p, i->spec.hooks), **envp, **base = NULL;
	int status_fd = -1, pidfd;
	pid_t pid = -1;

	if (argv == NULL)
		return ward_err_set(e, WARD_E_SPAWN_FAILED, "%s: no argv",
		    hook_names[p->kind]);
	/* Its pidfd and (a forked child's) status pipe. */
	if (budget_check(i->owner_uid, BUDGET_FDS, 2, &se) == -1)
		return ward_err_set(e, se.code, "%s: %s", hook_names[p->kind],
		    se.msg);
	hooks_shadow(i, argv, &s);
	if ((envp = hooks_environ(&s, extra, &base)) != NULL)
		pid = sys->spawn(&s, &fds, envp, &status_fd, &se);
	else
		ward_err_errno(&se, NULL, "environment");
	free(envp);
	free(base);
	if (pid == -1)
		return ward_err_set(e, WARD_E_SPAWN_FAILED, "%s %s: %s",
		    hook_names[p->kind], argv[0], se.msg);
	if ((pidfd = fds.pidfd_out) == -1 && (pidfd = sys->pidfd_open(pid)) == -1) {
		ward_err_errno(e, WARD_E_SPAWN_FAILED, "%s: pidfd_open",
		    hook_names[p->kind]);
		sys->kill_unreaped(pid);
		if (status_fd != -1)
			close(status_fd);
		return -1;
	}
	p->pid = pid;
	p->owner = i->owner_uid;
	p->pidfd = pidfd;
	p->status_fd = status_fd;
	p->timed_out = 0;
	hooks_proc_hold(p, 1 + (status_fd != -1));
	ev_io_set(&p->w, pidfd, EV_READ);
	ev_io_start(ward_loop, &p->w);
	log_debug("instance %" PRIu64 " %s: %s %s started, pid %d", i->id,
	    i->spec.name, hook_names[p->kind], argv[0], (int)pid);
	return 0;
}

/* n more (or, negative, fewer) fds held for p, counted where fds are. */
static void
hooks_proc_hold(struct hook_proc *p, int n)
{
	capacity_hold(n);
	if (n > 0)
		(void)budget_charge(p->owner, BUDGET_FDS, n);
	else if (n < 0)
		budget_give(p->owner, BUDGET_FDS, -n);
}

/* p is gone (reaped) or given up: its watchers and fds. */
static void
hooks_proc_close(struct hook_proc *p)
{
	int n = 0;

	ev_io_stop(ward_loop, &p->w);
	ev_timer_stop(ward_loop, &p->t);
	if (p->pidfd != -1) {
		fd_close_watched(p->pidfd);
		p->pidfd = -1;
		n++;
	}
	if (p->status_fd != -1) {
		fd_close_watched(p->status_fd);
		p->status_fd = -1;
		n++;
	}
	hooks_proc_hold(p, -n);
	p->pid = 0;
}

/* Signal p and its process group (it leads its own session). */
static void
hooks_proc_signal(struct hook_proc *p, int sig)
{
	if (p->pid != 0 && sys->signal(p->pidfd, p->pid, sig, 1) == -1)
		(void)sys->signal(p->pidfd, p->pid, sig, 0);
}

/*
 * How p ended, for people: "exited with code 3", "was killed by signal
 * SIGTERM", "did not finish within 100 ms", or the step its forked
 * child's status pipe says failed (read once: the child is dead, the
 * pipe holds all it will). 1 if it succeeded (exit 0), -1 if it never
 * ran (a step before its exec failed), else 0.
 */
static int
hooks_outcome(struct hook_proc *p, int rc, const siginfo_t *si, char *buf,
    size_t len)
{
	struct spawn_report r;
	struct ward_err e = WARD_ERR_INIT;
	struct instance s;
	uint32_t limit = 0;
	char **argv = NULL;
	int err = errno;	/* the reap's, before the read below */

	if (p->h->i != NULL && p->h->i->spec.hooks != NULL)
		limit = p->kind == HOOK_PRE_START ?
		    p->h->i->spec.hooks->pre_start_timeout_ms :
		    p->h->i->spec.hooks->post_death_timeout_ms;
	if (p->h->i != NULL && p->h->i->spec.hooks != NULL)
		argv = hooks_argv(p, p->h->i->spec.hooks);
	if (p->status_fd != -1 && argv != NULL &&
	    read(p->status_fd, &r, sizeof r) == (ssize_t)sizeof r) {
		hooks_shadow(p->h->i, argv, &s);
		spawn_report_message(&s, &r, &e);
		snprintf(buf, len, "could not be started: %s", e.msg);
		return -1;
	} else if (p->timed_out)
		snprintf(buf, len, "did not finish within %u ms: killed", limit);
	else if (rc == -1)
		snprintf(buf, len, "ended, how is unknown: waitid: %s",
		    strerror(err));
	else if (si->si_code == CLD_EXITED) {
		snprintf(buf, len, "exited with code %d", si->si_status);
		return si->si_status == 0;
	} else
		snprintf(buf, len, "was killed by signal %s",
		    signal_name(si->si_status));
	return 0;
}

/* post_death ended: its result into the record of the death it followed. */
static void
hooks_post_done(struct hook_proc *p, int rc, const siginfo_t *si, int ran)
{
	struct exit_record *r = p->record;

	p->record = NULL;
	if (r == NULL)
		return;
	r->post_death_code = r->post_death_signal = 0;
	if (ran == -1 || rc == -1)
		strcpy(r->post_death, "failed");
	else if (p->timed_out) {
		strcpy(r->post_death, "timeout");
		r->post_death_signal = SIGKILL;
	} else if (si->si_code == CLD_EXITED) {
		strcpy(r->post_death, "exited");
		r->post_death_code = si->si_status;
	} else {
		strcpy(r->post_death, "signaled");
		r->post_death_signal = si->si_status;
	}
	exit_record_unref(r);
}

/* pre_start ended: start the instance again, which now spawns or fails. */
static void
hooks_pre_done(struct hooks *h, int ok, const char *why)
{
	struct ward_err e = WARD_ERR_INIT;
	struct instance *i = h->i;

	if (h->cancelled)
		snprintf(h->pre_error, sizeof h->pre_error, "pre_start: the "
		    "start was called off (instance.stop)");
	else if (ok)
		h->pre_ok = 1;
	else
		snprintf(h->pre_error, sizeof h->pre_error, "pre_start %s", why);
	if (instance_start(i, &e) == -1)
		log_warnx("instance %" PRIu64 " %s: %s", i->id, i->spec.name,
		    e.msg);
	h->pre_ok = 0;
	h->pre_error[0] = '\0';
}

static void
hooks_free_if_done(struct hooks *h)
{
	unsigned k;

	if (h->pre.pid != 0 || h->post.pid != 0)
		return;
	for (k = 0; k < HOOKS_MAX_SIDECARS; k++) {
		if (h->side[k].pid != 0)
			return;
	}
	LIST_REMOVE(h, orphan_entry);
	free(h);
}

/* A side process exited: reap it, then what its kind does next. */
static void
hooks_proc_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct hook_proc *p = container_of(w, struct hook_proc, w);
	struct hooks *h = p->h;
	siginfo_t si;
	char why[WARD_ERR_MAX - 32];
	int rc, ok, ran;

	memset(&si, 0, sizeof si);
	rc = sys->reap(p->pidfd, &si);
	if (rc == 0 && si.si_pid == 0)
		return;		/* not yet: spurious wakeup */
	ran = hooks_outcome(p, rc, &si, why, sizeof why);
	ok = ran == 1;
	hooks_proc_close(p);
	if (h->i == NULL) {	/* orphaned: its instance was removed */
		exit_record_unref(p->record);
		p->record = NULL;
		hooks_free_if_done(h);
		return;
	}
	if (p->kind != HOOK_PRE_START || !ok)
		log_info("instance %" PRIu64 " %s: %s %s", h->i->id,
		    h->i->spec.name, p->kind == HOOK_SIDECAR && !h->stopping ?
		    "sidecar (while the payload runs)" : hook_names[p->kind], why);
	if (p->kind == HOOK_PRE_START)
		hooks_pre_done(h, ok, why);
	else if (p->kind == HOOK_POST_DEATH)
		hooks_post_done(p, rc, &si, ran);
	else if (h->stopping) {
		unsigned k;

		for (k = 0; k < HOOKS_MAX_SIDECARS && h->side[k].pid == 0; k++)
			;
		if (k == HOOKS_MAX_SIDECARS)
			ev_timer_stop(ward_loop, &h->stop_t);
	} else if (p->pending && h->i->state == INSTANCE_RUNNING)
		hooks_sidecar_start(h->i, p);
}

/* pre_start or post_death ran out of time: kill it (and its group). */
static void
hooks_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct hook_proc *p = container_of(t, struct hook_proc, t);

	p->timed_out = 1;
	hooks_proc_signal(p, SIGKILL);
}

/* The stop timeout passed and sidecars still run: SIGKILL. */
static void
hooks_stop_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct hooks *h = container_of(t, struct hooks, stop_t);
	unsigned k;

	for (k = 0; k < HOOKS_MAX_SIDECARS; k++)
		hooks_proc_signal(&h->side[k], SIGKILL);
}

static void
hooks_limit(struct hook_proc *p, uint32_t ms)
{
	ev_timer_set(&p->t, ms / 1000.0, 0.);
	ev_timer_start(ward_loop, &p->t);
}

/*
 * instance_pre_start: before i's spawn. 0: go on (no pre_start, or it
 * succeeded); 1: it runs now (started here, or already: a second start is
 * the first one's); -1 with e set: it failed, or could not start.
 */
static int
hooks_gate(struct instance *i, struct ward_err *e)
{
	struct hooks *h;

	if (i->spec.hooks == NULL || i->spec.hooks->pre_start == NULL)
		return 0;
	if ((h = hooks_get(i)) == NULL)
		return ward_err_oom(e);
	if (h->pre_error[0] != '\0')
		return ward_err_set(e, WARD_E_SPAWN_FAILED, "%s", h->pre_error);
	if (h->pre_ok)
		return 0;
	if (h->pre.pid != 0)
		return 1;
	if (hooks_spawn(&h->pre, NULL, -1, e) == -1)
		return -1;
	hooks_limit(&h->pre, i->spec.hooks->pre_start_timeout_ms);
	return 1;
}

/*
 * instance.stop while i waits for its pre_start: kill it; the start fails
 * (and a program's policy takes it as a stop). -1 if nothing runs.
 */
int
hooks_cancel_start(struct instance *i)
{
	if (!hooks_starting(i))
		return -1;
	i->hooks->cancelled = 1;
	hooks_proc_signal(&i->hooks->pre, SIGKILL);
	return 0;
}

/* Whether i waits for its pre_start: instance.status says "starting". */
int
hooks_starting(const struct instance *i)
{
	return i->hooks != NULL && i->hooks->pre.pid != 0;
}

/*
 * Start sidecar p of running i, in i's cgroup if it has one (opened for
 * the spawn: clone3 and cgroup.procs take a directory fd).
 */
static void
hooks_sidecar_start(struct instance *i, struct hook_proc *p)
{
	struct ward_err e = WARD_ERR_INIT;
	char path[PATH_MAX];
	int cg = -1;

	p->pending = 0;
	if (cgroup_path(i, path, sizeof path) != NULL &&
	    (cg = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1)
		log_warn("instance %" PRIu64 ": sidecar outside its cgroup %s",
		    i->id, path);
	if (hooks_spawn(p, NULL, cg, &e) == -1)
		log_warnx("instance %" PRIu64 " %s: %s", i->id, i->spec.name,
		    e.msg);
	if (cg != -1)
		close(cg);
}

/*
 * The payload runs: its sidecars start. One of the last run's that has
 * not yet stopped is killed, and its successor starts once it is reaped.
 */
static void
hooks_started(struct instance *i)
{
	struct hooks *h;
	size_t k;

	if (i->spec.hooks->nsidecars == 0)
		return;
	if ((h = hooks_get(i)) == NULL) {
		log_warnx("instance %" PRIu64 " %s: out of memory: no sidecars",
		    i->id, i->spec.name);
		return;
	}
	h->stopping = 0;
	ev_timer_stop(ward_loop, &h->stop_t);
	for (k = 0; k < i->spec.hooks->nsidecars; k++) {
		if (h->side[k].pid != 0) {
			hooks_proc_signal(&h->side[k], SIGKILL);
			h->side[k].pending = 1;
		} else
			hooks_sidecar_start(i, &h->side[k]);
	}
}

/*
 * The payload died (or its start failed): sidecars get SIGTERM, SIGKILL
 * after the stop timeout; post_death starts with how it died.
 */
static void
hooks_died(struct instance *i)
{
	struct ward_err e = WARD_ERR_INIT;
	struct exit_record *r = i->exit;
	char reason[64 + REASON_MAX], code[32], sig[32];
	char *extra[] = { reason, code, sig, NULL };
	struct hooks *h;
	unsigned k, n = 0;

	if ((h = hooks_get(i)) == NULL) {
		log_warnx("instance %" PRIu64 " %s: out of memory: hooks skipped",
		    i->id, i->spec.name);
		return;
	}
	h->stopping = 1;
	if (h->cancelled) {	/* before program.c hears of the death */
		h->cancelled = 0;
		i->stop_requested = 1;
	}
	for (k = 0; k < HOOKS_MAX_SIDECARS; k++) {
		h->side[k].pending = 0;
		if (h->side[k].pid != 0) {
			hooks_proc_signal(&h->side[k], SIGTERM);
			n++;
		}
	}
	if (n > 0 && !ev_is_active(&h->stop_t)) {
		ev_timer_set(&h->stop_t, i->stop_timeout_ms / 1000.0, 0.);
		ev_timer_start(ward_loop, &h->stop_t);
	}
	if (i->spec.hooks->post_death == NULL || r == NULL)
		return;
	if (h->post.pid != 0) {
		/* The last death's still runs: this one gets none. */
		strcpy(r->post_death, "failed");
		log_warnx("instance %" PRIu64 " %s: post_death of the last run "
		    "still runs: none for this one", i->id, i->spec.name);
		return;
	}
	snprintf(reason, sizeof reason, "WARD_DEATH_REASON=%s", r->death_reason);
	if (r->exited)
		snprintf(code, sizeof code, "WARD_EXIT_CODE=%d", r->exit_code);
	else
		snprintf(code, sizeof code, "WARD_EXIT_CODE=");
	if (r->exit_signal != 0)
		snprintf(sig, sizeof sig, "WARD_EXIT_SIGNAL=%d", r->exit_signal);
	else
		snprintf(sig, sizeof sig, "WARD_EXIT_SIGNAL=");
	if (hooks_spawn(&h->post, extra, -1, &e) == -1) {
		strcpy(r->post_death, "failed");
		log_warnx("instance %" PRIu64 " %s: %s", i->id, i->spec.name,
		    e.msg);
		return;
	}
	strcpy(r->post_death, "running");
	r->refs++;
	h->post.record = r;
	hooks_limit(&h->post, i->spec.hooks->post_death_timeout_ms);
}

/*
 * i is removed: what still runs is killed and kept (orphaned) until
 * reaped. Sidecars of a payload wardd leaves running at its exit
 * (instance_free_all: no death, no stop) are left running with it.
 */
static void
hooks_removed(struct instance *i)
{
	struct hooks *h = i->hooks;
	unsigned k;

	i->hooks = NULL;
	h->i = NULL;
	ev_timer_stop(ward_loop, &h->stop_t);
	hooks_proc_signal(&h->pre, SIGKILL);
	hooks_proc_signal(&h->post, SIGKILL);
	for (k = 0; k < HOOKS_MAX_SIDECARS; k++) {
		if (h->stopping)
			hooks_proc_signal(&h->side[k], SIGKILL);
		else if (h->side[k].pid != 0)
			hooks_proc_close(&h->side[k]);
	}
	LIST_INSERT_HEAD(&hooks_orphans, h, orphan_entry);
	hooks_free_if_done(h);
}

void
hooks_instance_cb(struct instance *i, enum instance_event ev)
{
	if (i->spec.hooks == NULL && i->hooks == NULL)
		return;
	switch (ev) {
	case INSTANCE_EV_STARTED:
		hooks_started(i);
		break;
	case INSTANCE_EV_DIED:
		hooks_died(i);
		break;
	case INSTANCE_EV_REMOVED:
		if (i->hooks != NULL)
			hooks_removed(i);
		break;
	default:
		break;
	}
}

static void
hooks_proc_fds(const struct hook_proc *p, fd_visit_fn fn, void *arg)
{
	static const char *const what[][2] = {
		[HOOK_PRE_START] = { "hooks: pre_start pidfd",
		    "hooks: pre_start status pipe" },
		[HOOK_POST_DEATH] = { "hooks: post_death pidfd",
		    "hooks: post_death status pipe" },
		[HOOK_SIDECAR] = { "hooks: sidecar pidfd",
		    "hooks: sidecar status pipe" },
	};

	if (p->pidfd != -1)
		fn(p->pidfd, what[p->kind][0], arg);
	if (p->status_fd != -1)
		fn(p->status_fd, what[p->kind][1], arg);
}

/* The fds i's side processes hold (instance_fds lists them with its own). */
void
hooks_fds(const struct instance *i, fd_visit_fn fn, void *arg)
{
	const struct hooks *h = i->hooks;
	unsigned k;

	if (h == NULL)
		return;
	hooks_proc_fds(&h->pre, fn, arg);
	hooks_proc_fds(&h->post, fn, arg);
	for (k = 0; k < HOOKS_MAX_SIDECARS; k++)
		hooks_proc_fds(&h->side[k], fn, arg);
}

/* Orphans' fds (ward.fds): held until their processes are reaped. */
void
hooks_orphan_fds(fd_visit_fn fn, void *arg)
{
	struct hooks *h;
	unsigned k;

	LIST_FOREACH(h, &hooks_orphans, orphan_entry) {
		hooks_proc_fds(&h->pre, fn, arg);
		hooks_proc_fds(&h->post, fn, arg);
		for (k = 0; k < HOOKS_MAX_SIDECARS; k++)
			hooks_proc_fds(&h->side[k], fn, arg);
	}
}

static void
hooks_proc_save(msgpack_packer *pk, struct hook_proc *p)
{
	msgpack_pack_map(pk, 5);
	codec_pack_kv_int(pk, "pid", p->pid);
	state_pack_kv_fd(pk, "pidfd", p->pidfd);
	state_pack_kv_fd(pk, "status_fd", p->status_fd);
	state_pack_kv_timer(pk, "t", &p->t);
	codec_pack_kv_bool(pk, "timed_out", p->timed_out);
}

/*
 * i's side processes in wardd's state (instance-state.c's "hooks"): the
 * same processes, still wardd's children after a re-exec. A post_death's
 * result goes to the instance's last record once read back (the record
 * it followed, unless the instance ran again meanwhile).
 */
void
hooks_state_save(msgpack_packer *pk, const struct instance *i)
{
	struct hooks *h = i->hooks;
	unsigned k;

	if (h == NULL) {
		msgpack_pack_nil(pk);
		return;
	}
	msgpack_pack_map(pk, 5);
	codec_pack_key(pk, "pre");
	hooks_proc_save(pk, &h->pre);
	codec_pack_key(pk, "post");
	hooks_proc_save(pk, &h->post);
	codec_pack_key(pk, "sidecars");
	msgpack_pack_array(pk, HOOKS_MAX_SIDECARS);
	for (k = 0; k < HOOKS_MAX_SIDECARS; k++)
		hooks_proc_save(pk, &h->side[k]);
	codec_pack_kv_bool(pk, "stopping", h->stopping);
	state_pack_kv_timer(pk, "stop_t", &h->stop_t);
}

static void
hooks_proc_restore(const msgpack_object *m, struct hook_proc *p)
{
	int64_t pid = state_i64(m, "pid", 0);
	int pidfd = state_fd(m, "pidfd"), sfd = state_fd(m, "status_fd");

	/* Without its pidfd (a crash's snapshot holds none) it cannot be
	 * watched: lost to wardd (a sidecar still dies with its cgroup). */
	if (pid <= 0 || pid > INT32_MAX || pidfd == -1) {
		if (pidfd != -1)
			close(pidfd);
		if (sfd != -1)
			close(sfd);
		if (pid > 0)
			log_warnx("state: %s pid %lld: not watched any more",
			    hook_names[p->kind], (long long)pid);
		return;
	}
	p->pid = pid;
	p->owner = p->h->i->owner_uid;
	p->pidfd = pidfd;
	p->status_fd = sfd;
	p->timed_out = state_bool(m, "timed_out");
	hooks_proc_hold(p, 1 + (sfd != -1));
	ev_io_set(&p->w, pidfd, EV_READ);
	ev_io_start(ward_loop, &p->w);
	state_timer(m, "t", &p->t);
}

/* Read back what hooks_state_save wrote (hostile input: bounded). */
void
hooks_state_restore(const msgpack_object *m, struct instance *i)
{
	const msgpack_object *a;
	struct hooks *h;
	size_t n, k;

	if (m == NULL || m->type != MSGPACK_OBJECT_MAP || i->spec.hooks == NULL)
		return;
	if ((h = hooks_get(i)) == NULL) {
		log_warnx("state: instance %" PRIu64 ": its hooks are lost", i->id);
		return;
	}
	h->stopping = state_bool(m, "stopping");
	hooks_proc_restore(state_get(m, "pre"), &h->pre);
	hooks_proc_restore(state_get(m, "post"), &h->post);
	if (h->post.pid != 0 && i->exit != NULL) {
		h->post.record = i->exit;
		i->exit->refs++;
	}
	a = state_array(m, "sidecars", &n);
	for (k = 0; a != NULL && k < n && k < HOOKS_MAX_SIDECARS; k++)
		hooks_proc_restore(&a[k], &h->side[k]);
	state_timer(m, "stop_t", &h->stop_t);
}
