/*
 * suspend.c: a suspended instance. Its whole tree stops, and its clocks
 * with it, so that a suspension is never taken for a hung payload.
 *
 * - The tree: with a cgroup (cgroup.c) it is frozen through cgroup.freeze,
 *   which reaches the daemons that left the process group too; the
 *   request's answer waits (never the loop) until cgroup.events says
 *   "frozen 1", at most SUSPEND_FREEZE_MS: past that the freeze is called
 *   off (thawed, clocks running again) and the answer is a timeout, so an
 *   instance is never left half frozen with nobody told. Without a cgroup,
 *   SIGSTOP to the process group, as before, answered at once.
 * - The clocks: every per-instance timer that watches the payload (the
 *   boot hangup deadline, the watchdog) is stopped with the time it had
 *   left and started again with that time on resume. A WATCHDOG=1 that
 *   arrives while suspended (sent just before the freeze) rearms the
 *   paused time instead of a running timer. The stop timer is not one of
 *   them: a stop thaws first.
 * - Across a re-exec or a crash (instance-state.c): the cgroup's name and
 *   each timer's time left are kept, so the instance comes back suspended
 *   and a resume thaws the cgroup it froze, an earlier wardd's included.
 *
 * Who waits for the answer is cmd-suspend.c's, told through the function
 * given to suspend_init; this file calls only cgroup.c and the sys table,
 * so instance.c may call it (a stop thaws, a death ends a wait).
 *
 * layer: engine (below instance.c, which calls it; calls cgroup.c and
 * cgroup-freeze.c)
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "ward.h"

#define container_of(p, type, member) \
	((type *)((char *)(p) - offsetof(type, member)))

static suspend_done_fn suspend_done;

static void	suspend_freeze_cb(struct ev_loop *, ev_timer *, int);

/* The timers a suspension pauses, in the order of instance_suspend.left. */
static ev_timer *
suspend_timer(struct instance *i, int k)
{
	return k == 0 ? &i->hangup_t : &i->watchdog_t;
}

/* The longest each may be set to (0: it is not used): what a state read
 * back is held to. */
static double
suspend_timer_max(const struct instance *i, int k)
{
	if (k == 0 && !i->spec.detect_hangup)
		return 0.;
	return (k == 0 ? i->spec.hangup_timeout_ms : i->spec.watchdog_ms) /
	    1000.0;
}

/* cmd-suspend.c's: told how each wait for a freeze ended. */
void
suspend_init(suspend_done_fn done)
{
	suspend_done = done;
}

/* SIGSTOP or SIGCONT to the group, else the leader (instance_signal's rule). */
static int
suspend_signal(struct instance *i, int sig)
{
	if (sys->signal(i->pidfd, i->pid, sig, 1) == 0)
		return 0;
	return sys->signal(i->pidfd, i->pid, sig, 0);
}

static void
suspend_pause_timers(struct instance *i)
{
	ev_timer *t;
	int k;

	for (k = 0; k < SUSPEND_TIMERS; k++) {
		t = suspend_timer(i, k);
		i->suspend.left[k] = -1.;
		if (ev_is_active(t) || ev_is_pending(t)) {
			i->suspend.left[k] = ev_timer_remaining(ward_loop, t);
			if (i->suspend.left[k] < 0.)
				i->suspend.left[k] = 0.;	/* due: fires on resume */
			ev_timer_stop(ward_loop, t);
		}
	}
}

static void
suspend_resume_timers(struct instance *i)
{
	ev_timer *t;
	int k;

	for (k = 0; k < SUSPEND_TIMERS; k++) {
		t = suspend_timer(i, k);
		if (i->suspend.left[k] >= 0. && !ev_is_active(t)) {
			ev_timer_set(t, i->suspend.left[k], t->repeat);
			ev_timer_start(ward_loop, t);
		}
		i->suspend.left[k] = -1.;
	}
}

/* The wait for "frozen 1" ends; done: tell cmd-suspend.c how (e). */
static void
suspend_wait_end(struct instance *i, const struct ward_err *e, int rolled_back)
{
	if (!i->suspend.freezing)
		return;
	i->suspend.freezing = 0;
	ev_timer_stop(ward_loop, &i->suspend.freeze_t);
	cgroup_unwatch(i);
	if (suspend_done != NULL)
		suspend_done(i, e, rolled_back);
}

/* The tree runs again and so do its clocks. Nothing is said to anyone. */
static void
suspend_run_again(struct instance *i)
{
	if (i->suspend.cgroup[0] != '\0') {
		if (cgroup_freeze(i->suspend.cgroup, 0) == -1)
			log_warn("instance %llu %s: cannot thaw cgroup %s",
			    (unsigned long long)i->id, i->spec.name,
			    i->suspend.cgroup);
	} else if (i->state == INSTANCE_RUNNING)
		suspend_signal(i, SIGCONT);
	i->suspend.cgroup[0] = '\0';
	suspend_resume_timers(i);
	i->suspended = 0;
}

/* cgroup.c: its cgroup.events changed. Frozen yet? */
static void
suspend_events_cb(struct instance *i)
{
	if (cgroup_frozen(i->suspend.cgroup) != 1)
		return;
	log_debug("instance %llu %s: frozen", (unsigned long long)i->id,
	    i->spec.name);
	suspend_wait_end(i, NULL, 0);
}

/* The bound passed: call the freeze off rather than leave it half done. */
static void
suspend_freeze_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct instance *i = container_of(t, struct instance, suspend.freeze_t);
	struct ward_err e = WARD_ERR_INIT;

	if (cgroup_frozen(i->suspend.cgroup) == 1) {
		suspend_wait_end(i, NULL, 0);
		return;
	}
	log_notice("instance %llu %s: its tree did not freeze within %d ms; "
	    "thawed", (unsigned long long)i->id, i->spec.name,
	    SUSPEND_FREEZE_MS);
	ward_err_set(&e, WARD_E_TIMEOUT, "the processes of instance '%s' did "
	    "not all freeze within %d ms (one may be in uninterruptible "
	    "sleep); it was thawed and runs on", i->spec.name,
	    SUSPEND_FREEZE_MS);
	suspend_run_again(i);
	suspend_wait_end(i, &e, 1);
}

/*
 * Suspend a running instance: clocks paused, tree frozen (or stopped). 0:
 * done; 1: the freeze is under way and the done function hears when it
 * has settled; -1 with e set (invalid_state, or internal when nothing
 * could be stopped: then nothing changed).
 */
int
suspend_start(struct instance *i, struct ward_err *e)
{
	char name[sizeof i->suspend.cgroup], path[PATH_MAX];

	if (i->state != INSTANCE_RUNNING)
		return ward_err_set(e, WARD_E_INVALID_STATE, "instance '%s' is "
		    "not running; only a running instance can be suspended",
		    i->spec.name);
	if (i->suspended)
		return ward_err_set(e, WARD_E_INVALID_STATE, "instance '%s' is "
		    "suspended already", i->spec.name);
	if (i->stop_requested || i->killed_by != KILLED_BY_NONE)
		return ward_err_set(e, WARD_E_INVALID_STATE, "instance '%s' is "
		    "being stopped; it cannot be suspended", i->spec.name);
	if (cgroup_name(i, name, sizeof name) == 0 &&
	    cgroup_freeze(name, 1) == 0) {
		snprintf(i->suspend.cgroup, sizeof i->suspend.cgroup, "%s", name);
	} else if (suspend_signal(i, SIGSTOP) == -1)
		return ward_err_errno(e, WARD_E_INTERNAL, "cannot stop "
		    "instance '%s'", i->spec.name);
	else
		i->suspend.cgroup[0] = '\0';
	i->suspended = 1;
	suspend_pause_timers(i);
	if (i->suspend.cgroup[0] == '\0' || cgroup_frozen(name) == 1)
		return 0;
	/* Without inotify it is not waited for: frozen says how far it got. */
	if (cgroup_named(name, "cgroup.events", path, sizeof path) == -1 ||
	    cgroup_watch(i, path, suspend_events_cb) == -1)
		return 0;
	i->suspend.freezing = 1;
	ev_init(&i->suspend.freeze_t, suspend_freeze_cb);
	ev_timer_set(&i->suspend.freeze_t, SUSPEND_FREEZE_MS / 1000.0, 0.);
	ev_timer_start(ward_loop, &i->suspend.freeze_t);
	/* It may have settled before the watch was there. */
	if (cgroup_frozen(name) == 1) {
		i->suspend.freezing = 0;	/* nobody waits yet: no done */
		ev_timer_stop(ward_loop, &i->suspend.freeze_t);
		cgroup_unwatch(i);
		return 0;
	}
	log_debug("instance %llu %s: freezing; the answer waits for frozen 1",
	    (unsigned long long)i->id, i->spec.name);
	return 1;
}

/*
 * Resume a suspended instance: thawed (or continued), its clocks running
 * with the time they had left. -1 with e set (invalid_state) when it is
 * not suspended. A freeze still under way is called off: its waiters hear
 * invalid_state.
 */
int
suspend_end(struct instance *i, struct ward_err *e)
{
	struct ward_err why = WARD_ERR_INIT;

	if (i->state != INSTANCE_RUNNING || !i->suspended)
		return ward_err_set(e, WARD_E_INVALID_STATE, "instance '%s' is "
		    "%s; only a suspended instance can be resumed",
		    i->spec.name, i->state == INSTANCE_RUNNING ?
		    "running, not suspended" : "not running");
	ward_err_set(&why, WARD_E_INVALID_STATE, "instance '%s' was resumed "
	    "before its processes had all frozen", i->spec.name);
	suspend_wait_end(i, &why, 0);
	suspend_run_again(i);
	return 0;
}

/* instance_stop: a suspended instance is thawed so it hears the stop. */
void
suspend_thaw(struct instance *i)
{
	struct ward_err why = WARD_ERR_INIT;

	if (!i->suspended)
		return;
	ward_err_set(&why, WARD_E_INVALID_STATE, "instance '%s' is being "
	    "stopped", i->spec.name);
	suspend_wait_end(i, &why, 0);
	suspend_run_again(i);
}

/*
 * The run is over (instance_release) or wardd exits leaving it be. A wait
 * is answered; the timers are the caller's to stop. On a death (still
 * RUNNING here) what the run left in its frozen cgroup is thawed: it runs
 * on, or cgroup.c kills it, as it would unsuspended, and its cgroup can
 * empty. At wardd's exit (no longer RUNNING) the tree stays frozen, as the
 * state it left says.
 */
void
suspend_release(struct instance *i)
{
	struct ward_err why = WARD_ERR_INIT;
	int k;

	ward_err_set(&why, WARD_E_INVALID_STATE, "instance '%s' died before "
	    "its processes had all frozen", i->spec.name);
	suspend_wait_end(i, &why, 0);
	if (i->suspend.cgroup[0] != '\0' && i->state == INSTANCE_RUNNING)
		(void)cgroup_freeze(i->suspend.cgroup, 0);
	i->suspend.cgroup[0] = '\0';
	for (k = 0; k < SUSPEND_TIMERS; k++)
		i->suspend.left[k] = -1.;
	i->suspended = 0;
}

/*
 * A WATCHDOG=1 while suspended: the paused watchdog gets its whole
 * interval back. 1 if so (the caller leaves the stopped timer alone).
 */
int
suspend_watchdog(struct instance *i)
{
	if (!i->suspended)
		return 0;
	if (i->suspend.left[1] >= 0.)
		i->suspend.left[1] = i->watchdog_t.repeat;
	return 1;
}

/* Whether its cgroup says "frozen 1" now (0 with SIGSTOP). */
int
suspend_frozen(const struct instance *i)
{
	return i->suspended && i->suspend.cgroup[0] != '\0' &&
	    cgroup_frozen(i->suspend.cgroup) == 1;
}

/* Its part of the instance's state: {cgroup, left: [time left or nil]}. */
void
suspend_state_save(msgpack_packer *pk, const struct instance *i)
{
	int k;

	msgpack_pack_map(pk, 2);
	codec_pack_kv_str(pk, "cgroup", i->suspended ? i->suspend.cgroup : "");
	codec_pack_key(pk, "left");
	msgpack_pack_array(pk, SUSPEND_TIMERS);
	for (k = 0; k < SUSPEND_TIMERS; k++) {
		if (i->suspended && i->suspend.left[k] >= 0.)
			msgpack_pack_double(pk, i->suspend.left[k]);
		else
			msgpack_pack_nil(pk);
	}
}

/*
 * Read back (m may be NULL: an older wardd's state, whose suspension was a
 * SIGSTOP with no paused clock). i->suspended is read already. A time left
 * is held to its timer's own interval; the cgroup's name is checked by
 * cgroup.c whenever it is used.
 */
void
suspend_state_restore(const msgpack_object *m, struct instance *i)
{
	const msgpack_object *a;
	size_t n = 0;
	double v;
	int k;

	for (k = 0; k < SUSPEND_TIMERS; k++)
		i->suspend.left[k] = -1.;
	i->suspend.cgroup[0] = '\0';
	if (!i->suspended || i->state != INSTANCE_RUNNING) {
		i->suspended = 0;
		return;
	}
	if (m == NULL || m->type != MSGPACK_OBJECT_MAP)
		return;
	state_str_into(m, "cgroup", i->suspend.cgroup, sizeof i->suspend.cgroup);
	a = state_array(m, "left", &n);
	for (k = 0; k < SUSPEND_TIMERS && (size_t)k < n; k++) {
		if (a[k].type == MSGPACK_OBJECT_FLOAT64 ||
		    a[k].type == MSGPACK_OBJECT_FLOAT32) {
			v = a[k].via.f64;
			if (!(v >= 0.) || suspend_timer_max(i, k) <= 0.)
				continue;	/* NaN, or a timer it has not */
			i->suspend.left[k] = v < suspend_timer_max(i, k) ? v :
			    suspend_timer_max(i, k);
		}
	}
}
