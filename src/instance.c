/*
 * instance.c: one supervised payload, from create to remove. Each instance
 * owns its watchers (pidfd, failure pipe, notify pipe, a forked child's
 * status pipe) and its two timers
 * (boot hangup, stop escalation), and finds itself from them by
 * container_of: there is no per-instance thread and no polling. The state
 * moves only through instance_set_state; the payload state only forward,
 * through instance_set_payload.
 *
 * What happens to an instance is announced to its observers (events,
 * history, metrics, programs, systemd, the shutdown wait), registered by
 * wardd.c with instance_observe, in that order; this file names none of
 * them.
 *
 * layer: engine (calls spawn, output, cgroup, notify, exit and base
 * modules; never up into what observes it)
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
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

struct instance_list instances = TAILQ_HEAD_INITIALIZER(instances);
struct instance_running_list instances_running =
    LIST_HEAD_INITIALIZER(instances_running);
unsigned instances_running_count;
struct instance_stats instance_stats;

static struct table instances_by_id;
static struct table instances_by_name;

#define INSTANCE_OBSERVERS_MAX	16
static instance_observer_fn instance_observers[INSTANCE_OBSERVERS_MAX];
static unsigned instance_nobservers;
int (*instance_pre_start)(struct instance *, struct ward_err *);

static void	instance_pidfd_cb(struct ev_loop *, ev_io *, int);
static void	instance_failure_cb(struct ev_loop *, ev_io *, int);
static void	instance_hangup_cb(struct ev_loop *, ev_timer *, int);
static void	instance_stop_cb(struct ev_loop *, ev_timer *, int);
static void	instance_watchdog_cb(struct ev_loop *, ev_timer *, int);
static void	instance_sd_assignment(struct instance *, const char *, size_t);

static const char *const instance_state_names[] = {
	[INSTANCE_NOT_STARTED] = "not_started",
	[INSTANCE_RUNNING] = "running",
	[INSTANCE_DEAD] = "dead",
	[INSTANCE_FAILED] = "failed",
};

/* Tell fn of everything that happens to any instance (wardd.c, at start). */
void
instance_observe(instance_observer_fn fn)
{
	if (instance_nobservers == INSTANCE_OBSERVERS_MAX)
		fatalx("too many instance observers");
	instance_observers[instance_nobservers++] = fn;
}

/* Every observer, in the order they registered. They must not free i. */
void
instance_announce(struct instance *i, enum instance_event ev)
{
	unsigned k;

	for (k = 0; k < instance_nobservers; k++)
		instance_observers[k](i, ev);
}

const char *
instance_state_name(enum instance_state s)
{
	return instance_state_names[s];
}

static unsigned instance_count;		/* all not yet removed */

void
instance_init(void)
{
	table_init(&instances_by_id);
	table_init(&instances_by_name);
	notify_init(instance_notify_line, instance_sd_assignment);
}

/*
 * May c create one more instance? 0 if so, else -1 with e set: whether
 * wardd can run payloads as c at all, wardd's own cap, and non-admins' cap
 * per uid (counted in budget.c; instance_new takes it).
 */
int
instance_may_create(const struct peer *peer, struct ward_err *e)
{
	if (!peer->admin && !opts.is_root)
		return ward_err_set(e, WARD_E_PERMISSION, "wardd is not running "
		    "as root and cannot run instances as uid %u",
		    (unsigned)peer->uid);
	if (instance_count >= INSTANCE_MAX)
		return ward_err_set(e, WARD_E_TOO_LARGE, "wardd holds %u "
		    "instances, its limit; remove some first", instance_count);
	return budget_check(peer->uid, BUDGET_INSTANCES, 1, e);
}

/*
 * The passed fds cfg.fds holds for i's first run are counted in its
 * owner's fd budget from instance_new until they are closed: by the spawn
 * (the child has its copies) or by removal.
 */
static void
instance_close_fds(struct instance *i)
{
	spec_close_fds(&i->spec);
	budget_give(i->owner_uid, BUDGET_FDS, i->fds_held);
	i->fds_held = 0;
}

struct instance *
instance_find_id(uint64_t id)
{
	struct table_node *n = table_find(&instances_by_id, &id, sizeof id);

	return n == NULL ? NULL : container_of(n, struct instance, by_id);
}

struct instance *
instance_find_name(const char *name)
{
	struct table_node *n;

	n = table_find(&instances_by_name, name, strlen(name));
	return n == NULL ? NULL : container_of(n, struct instance, by_name);
}

/*
 * The one place the state changes. Keeps the running list (what metrics
 * samples) and the shutdown wait in step with it.
 */
static void
instance_set_state(struct instance *i, enum instance_state s)
{
	enum instance_state old = i->state;

	if (old == s)
		return;
	i->state = s;
	log_debug("instance %" PRIu64 " %s: %s -> %s", i->id, i->spec.name,
	    instance_state_names[old], instance_state_names[s]);
	if (s == INSTANCE_RUNNING) {
		LIST_INSERT_HEAD(&instances_running, i, running_entry);
		instances_running_count++;
		instance_announce(i, INSTANCE_EV_STARTED);
	} else if (old == INSTANCE_RUNNING) {
		LIST_REMOVE(i, running_entry);
		instances_running_count--;
		instance_announce(i, INSTANCE_EV_STOPPED);
	}
}

/*
 * Take ownership of cfg (emptied on success) and index the new instance.
 * The owner is the requesting peer, which instance_may_create has let in;
 * an admin may ask for another user. Fails (NULL, e set: internal) only
 * when out of memory or when the id counter cannot be persisted
 * (statedir_id_next).
 */
struct instance *
instance_new(struct instance_spec *cfg, const struct peer *peer,
    struct ward_err *e)
{
	struct instance *i;
	uint64_t id;

	if (peer->admin && !opts.is_root && peer->uid != opts.uid) {
		/* Cannot happen: admins are root or wardd's uid. */
		fatalx("admin peer %u on non-root wardd", (unsigned)peer->uid);
	}
	if ((i = calloc(1, sizeof *i)) == NULL) {
		ward_err_oom(e);
		return NULL;
	}
	/* Ids never repeat, across restarts too (statedir.c persists them). */
	if (statedir_id_next(&id, e) == -1)
		goto fail;
	if (cfg->name == NULL &&
	    (cfg->name = str_printf("%" PRIu64, id)) == NULL) {
		ward_err_oom(e);
		goto fail;
	}
	/* The cap was checked (instance_may_create); this only counts. */
	if (budget_charge(peer->uid, BUDGET_INSTANCES, 1) == -1) {
		ward_err_oom(e);
		goto fail;
	}
	i->spec = *cfg;
	/* Its passed fds, already checked against the budget with the
	 * request (cmd.c): held for it from now on. */
	i->fds_held = cfg->nfds;
	(void)budget_charge(peer->uid, BUDGET_FDS, i->fds_held);
	instance_count++;
	memset(cfg, 0, sizeof *cfg);
	i->id = id;
	i->owner_uid = peer->uid;
	i->owner_gid = peer->gid;
	i->requester_pid = peer->pid;
	/* Non-admins' instances run as them, with their groups. */
	if (!peer->admin && opts.is_root) {
		i->run_as_owner = 1;
		if (peer->ngroups > 0 &&
		    (i->groups = calloc(peer->ngroups, sizeof *i->groups)) != NULL) {
			memcpy(i->groups, peer->groups, peer->ngroups * sizeof *i->groups);
			i->ngroups = peer->ngroups;
		}
	}
	i->created_at_ms = now_wall_ms();
	i->pidfd = i->failure_fd = i->notify_fd = i->sd_fd = i->spawn_fd = -1;
	i->state = INSTANCE_NOT_STARTED;
	i->payload = PAYLOAD_STARTING;
	i->stop_signal = SIGTERM;
	i->stop_timeout_ms = STOP_TIMEOUT_MS;
	ev_init(&i->pidfd_w, instance_pidfd_cb);
	ev_init(&i->failure_w, instance_failure_cb);
	ev_init(&i->notify_w, notify_pipe_cb);	/* notify.c reads fd 4 */
	ev_init(&i->spawn_w, spawn_status_cb);	/* spawn.c reads it */
	ev_init(&i->hangup_t, instance_hangup_cb);
	ev_init(&i->stop_t, instance_stop_cb);
	ev_init(&i->watchdog_t, instance_watchdog_cb);
	table_insert(&instances_by_id, &i->by_id, &i->id, sizeof i->id);
	table_insert(&instances_by_name, &i->by_name, i->spec.name,
	    strlen(i->spec.name));
	TAILQ_INSERT_TAIL(&instances, i, entry);
	instance_stats.created++;
	instance_announce(i, INSTANCE_EV_CREATED);
	return i;

fail:
	free(i);	/* cfg (and a name made for it) stays the caller's */
	return NULL;
}

/* Watch fd for reading with w, if there is one. */
static void
instance_watch(ev_io *w, int fd)
{
	if (fd == -1)
		return;
	ev_io_set(w, fd, EV_READ);
	ev_io_start(ward_loop, w);
}

/*
 * An instance read back from wardd's state by instance-state.c after a
 * re-exec: index and count it as instance_new does (its ids, name and
 * budget charges), and watch the fds it came with; the caller starts its
 * timers. Nothing is announced but INSTANCE_EV_RESTORED, once the caller
 * has it whole.
 */
void
instance_adopt(struct instance *i)
{
	ev_init(&i->pidfd_w, instance_pidfd_cb);
	ev_init(&i->failure_w, instance_failure_cb);
	ev_init(&i->notify_w, notify_pipe_cb);
	ev_init(&i->spawn_w, spawn_status_cb);
	ev_init(&i->hangup_t, instance_hangup_cb);
	ev_init(&i->stop_t, instance_stop_cb);
	ev_init(&i->watchdog_t, instance_watchdog_cb);
	instance_watch(&i->pidfd_w, i->pidfd);
	instance_watch(&i->failure_w, i->failure_fd);
	instance_watch(&i->notify_w, i->notify_fd);
	instance_watch(&i->spawn_w, i->spawn_fd);
	if (i->state == INSTANCE_RUNNING) {
		channel_adopt(i);	/* channel.c: its fd 3 and NOTIFY_SOCKET */
		capacity_started(i);
	}
	(void)budget_charge(i->owner_uid, BUDGET_INSTANCES, 1);
	(void)budget_charge(i->owner_uid, BUDGET_FDS, i->fds_held);
	instance_count++;
	table_insert(&instances_by_id, &i->by_id, &i->id, sizeof i->id);
	table_insert(&instances_by_name, &i->by_name, i->spec.name,
	    strlen(i->spec.name));
	TAILQ_INSERT_TAIL(&instances, i, entry);
	if (i->state == INSTANCE_RUNNING) {
		LIST_INSERT_HEAD(&instances_running, i, running_entry);
		instances_running_count++;
	}
}

static void
instance_close_fd(int *fd)
{
	if (*fd != -1) {
		fd_close_watched(*fd);	/* it may be in the fd store too */
		*fd = -1;
	}
}

/* Stop every watcher and timer and close what the running child left. */
static void
instance_release(struct instance *i)
{
	ev_io_stop(ward_loop, &i->pidfd_w);
	ev_io_stop(ward_loop, &i->failure_w);
	ev_io_stop(ward_loop, &i->notify_w);
	ev_io_stop(ward_loop, &i->spawn_w);
	ev_timer_stop(ward_loop, &i->hangup_t);
	ev_timer_stop(ward_loop, &i->stop_t);
	ev_timer_stop(ward_loop, &i->watchdog_t);
	suspend_release(i);	/* suspend.c: a wait for a freeze answered */
	channel_release(i);
	capacity_stopped(i);
	instance_close_fd(&i->pidfd);
	instance_close_fd(&i->failure_fd);
	instance_close_fd(&i->notify_fd);
	instance_close_fd(&i->spawn_fd);
	free(i->failure);
	i->failure = NULL;
	free(i->notify_line);
	i->notify_line = NULL;
}

/* Record how a run ended (the exit record) and finish it: DEAD or FAILED. */
static void
instance_finish(struct instance *i, struct exit_record *r, enum instance_state s)
{
	char line[512];

	r->id = i->id;
	r->owner_uid = i->owner_uid;
	r->name = strdup(i->spec.name);
	r->started_at_ms = i->started_at_ms;
	r->died_at_ms = now_wall_ms();
	if (s == INSTANCE_DEAD)
		r->uptime_ms = (ev_now(ward_loop) - i->started_mono) * 1000;
	r->metrics = i->metrics;
	r->run = i->runs;
	r->refs = 1;		/* the instance's; history takes its own */
	i->exit = r;
	i->pid = 0;
	instance_set_state(i, s);

	/* One structured line per death, for people and log scrapers (in the
	 * journal, systemd_journal_death's entry is that line). */
	if (r->exit_signal != 0)
		snprintf(line, sizeof line, "exit_signal=%s", signal_name(r->exit_signal));
	else if (r->exited)
		snprintf(line, sizeof line, "exit_code=%d", r->exit_code);
	else
		snprintf(line, sizeof line, "exit=none");
	if (!log_to_journal())
		log_info("instance died: id=%" PRIu64 " name=%s reason=%s %s core_dumped=%d "
	    "uptime_ms=%" PRIu64 " cpu_user_ms=%" PRIu64 " cpu_system_ms=%" PRIu64
	    " rss_max_kb=%" PRIu64 " owner_uid=%u%s%s", i->id, i->spec.name,
	    r->death_reason, line, r->core_dumped, r->uptime_ms,
	    r->metrics.cpu_user_ms, r->metrics.cpu_system_ms,
	    r->metrics.rss_max_kb, (unsigned)r->owner_uid,
	    r->dump_dir ? " dump_dir=" : "", r->dump_dir ? r->dump_dir : "");
	instance_stats.died++;
	instance_announce(i, INSTANCE_EV_DIED);	/* never frees i */
}

/*
 * Forget what the last run left (its exit record stays in history) so a
 * dead or failed instance can run again with the same config and id.
 */
static void
instance_reset_run(struct instance *i)
{
	exit_record_unref(i->exit);
	i->exit = NULL;
	i->payload = PAYLOAD_STARTING;
	free(i->status_text);
	i->status_text = NULL;
	i->killed_by = KILLED_BY_NONE;
	i->stop_requested = 0;
	i->suspended = 0;
	i->sd_dropped = 0;
	free(i->failure_note);
	i->failure_note = NULL;
	i->failure_len = i->failure_discarded = 0;
	i->notify_len = 0;
	i->notify_skipping = 0;
	i->notify_dropped = 0;
	i->spawn_got = 0;
	memset(&i->metrics, 0, sizeof i->metrics);
	free(i->runtime_dir);
	i->runtime_dir = NULL;
}

/*
 * Whether instance_start may run: not while running, and a restart of an
 * instance whose client passed it fds is refused (those were spent):
 * invalid_state.
 */
int
instance_can_start(const struct instance *i, struct ward_err *e)
{
	if (i->state == INSTANCE_RUNNING)
		return ward_err_set(e, WARD_E_INVALID_STATE, "instance '%s' is "
		    "already running", i->spec.name);
	if (i->state != INSTANCE_NOT_STARTED && i->spec.passed_fds)
		return ward_err_set(e, WARD_E_INVALID_STATE, "instance '%s' was "
		    "given file descriptors for its first run only; create a new "
		    "instance to run it again", i->spec.name);
	return capacity_check(i, e);
}

/*
 * Spawn an instance that is not running: not yet started, or (a restart)
 * dead or failed. On a spawn failure the instance becomes FAILED (with an
 * exit record saying why) and -1 is returned with e set (spawn_failed;
 * invalid_state if it may not start at all). A child forked
 * to run as another user (spawn_uses_fork) is not waited for: what fails
 * in it is read from its status pipe, and its death is then a failed
 * spawn with the same exit record (instance_pidfd_cb).
 */
int
instance_start(struct instance *i, struct ward_err *e)
{
	struct spawn_fds fds = { .failure_w = -1, .notify_w = -1,
	    .cgroup_dir = -1, .pidfd_out = -1 };
	struct exit_record *r;
	char **envp = NULL;
	int rtfd = -1, status_fd;
	uid_t uid;
	gid_t gid;
	pid_t pid;

	if (instance_can_start(i, e) == -1)
		return -1;
	/* hooks.c: pre_start first; it calls again once that is done. */
	if (instance_pre_start != NULL &&
	    (status_fd = instance_pre_start(i, e)) != 0) {
		if (status_fd > 0)
			return 0;
		instance_reset_run(i);
		goto fail;
	}
	instance_reset_run(i);
	i->runs++;	/* a failed spawn is a run too: each record its own */
	i->runtime_dir = str_printf("%s/instances/%" PRIu64, opts.state_dir, i->id);
	if (i->runtime_dir == NULL)
		goto fail_errno;
	/*
	 * Always a new directory, wardd's own 0700 until it is the payload
	 * user's, through its fd (statedir.c's rule).
	 */
	if ((rtfd = statedir_runtime_create(i->id, e)) == -1) {
		free(i->runtime_dir);
		i->runtime_dir = NULL;
		goto fail;
	}
	if (i->spec.notify_systemd && channel_notify_path() == NULL) {
		ward_err_set(e, WARD_E_INTERNAL, "no NOTIFY_SOCKET: wardd could "
		    "not bind %s/notify (see its log)", opts.state_dir);
		goto fail;
	}
	if (spawn_ids(i, &uid, &gid) && fchown(rtfd, uid, gid) == -1) {
		ward_err_errno(e, NULL, "cannot hand runtime dir %s to uid %u",
		    i->runtime_dir, (unsigned)uid);
		goto fail;
	}
	instance_close_fd(&rtfd);
	/* channel.c: the child's fds 3 and 4 (wardd's ends non-blocking). */
	if (channel_spawn(i, &fds.failure_w, &fds.notify_w, e) == -1)
		goto fail;
	if ((envp = spawn_environ(i)) == NULL)
		goto fail_errno;
	/* output.c: stdout/stderr pipes (into cfg.fds) when it captures. */
	if (output_spawn_prepare(i, e) == -1)
		goto fail;
	/* cgroup.c: the cgroup the child joins (-1: no cgroups). */
	if (cgroup_prepare(i, &fds.cgroup_dir, e) == -1)
		goto fail;
	pid = sys->spawn(i, &fds, envp, &status_fd, e);
	if (fds.cgroup_dir != -1)
		close(fds.cgroup_dir);	/* never watched, never stored */
	free(envp);	/* strings belong to cfg, environ and a static pool */
	envp = NULL;
	instance_close_fd(&fds.failure_w);
	instance_close_fd(&fds.notify_w);
	instance_close_fds(i);	/* the child has its copies now */
	if (pid == -1)
		goto fail;
	/* spawn.c's clone3 made the pidfd already; else one is opened. */
	if ((i->pidfd = fds.pidfd_out != -1 ? fds.pidfd_out :
	    sys->pidfd_open(pid)) == -1) {
		ward_err_errno(e, NULL, "pidfd_open");
		sys->kill_unreaped(pid);
		instance_close_fd(&status_fd);
		goto fail;
	}
	i->pid = pid;
	channel_adopt(i);	/* channel.c: NOTIFY_SOCKET knows its pid */
	i->started_at_ms = now_wall_ms();
	i->started_mono = ev_now(ward_loop);
	i->spawn_fd = status_fd;
	instance_watch(&i->pidfd_w, i->pidfd);
	instance_watch(&i->notify_w, i->notify_fd);
	instance_watch(&i->spawn_w, i->spawn_fd);
	output_spawn_done(i, 1);	/* output.c: watch the read ends */
	capacity_started(i);
	if (i->spec.detect_hangup) {
		ev_timer_set(&i->hangup_t, i->spec.hangup_timeout_ms / 1000.0, 0.);
		ev_timer_start(ward_loop, &i->hangup_t);
	}
	if (i->spec.watchdog_ms > 0) {
		i->watchdog_t.repeat = i->spec.watchdog_ms / 1000.0;
		ev_timer_again(ward_loop, &i->watchdog_t);
	}
	instance_stats.started++;
	instance_set_state(i, INSTANCE_RUNNING);
	return 0;

fail_errno:
	ward_err_errno(e, NULL, "cannot start '%s'", i->spec.name);
fail:
	/* Out of fds is resource_exhausted (the caller may retry later);
	 * the rest spawn_failed, whichever step's message it has. */
	if (e->code == NULL || strcmp(e->code, WARD_E_RESOURCE_EXHAUSTED) != 0)
		e->code = WARD_E_SPAWN_FAILED;
	free(envp);
	channel_release(i);
	instance_close_fds(i);
	output_spawn_done(i, 0);	/* output.c: close pending read ends */
	instance_close_fd(&fds.failure_w);
	instance_close_fd(&fds.notify_w);
	instance_close_fd(&i->notify_fd);
	instance_close_fd(&rtfd);
	if (i->runtime_dir != NULL)
		statedir_runtime_remove(i->id);
	cgroup_instance_gone(i);	/* cgroup.c: what the failed spawn made */
	instance_stats.spawn_failed++;
	if ((r = calloc(1, sizeof *r)) != NULL) {
		strcpy(r->death_reason, "SPAWN_FAILED");
		r->failure_reason = strdup(e->msg);
		i->started_mono = ev_now(ward_loop);
		instance_finish(i, r, INSTANCE_FAILED);
	} else
		instance_set_state(i, INSTANCE_FAILED);
	return -1;
}

/*
 * Signal the child, or with group its whole process group (the child leads
 * its own session and group). A group that no longer exists, as when the
 * leader is a zombie whose group emptied, still gets the leader signalled.
 */
int
instance_signal(struct instance *i, int sig, int group)
{
	if (i->state != INSTANCE_RUNNING) {
		errno = ESRCH;
		return -1;
	}
	if (group && sys->signal(i->pidfd, i->pid, sig, 1) == 0)
		return 0;
	return sys->signal(i->pidfd, i->pid, sig, 0);
}

/*
 * The stop signal (SIGTERM, or a program's stopsignal) to the group now,
 * SIGKILL when the stop timer fires.
 */
int
instance_stop(struct instance *i, unsigned timeout_ms)
{
	if (instance_signal(i, i->stop_signal, 1) == -1)
		return -1;
	i->stop_requested = 1;		/* a person (or shutdown) wants it down */
	suspend_thaw(i);	/* suspend.c: a frozen tree never sees SIGTERM */
	ev_timer_stop(ward_loop, &i->watchdog_t);
	/* A second stop with a shorter timeout hurries the SIGKILL along. */
	if (!ev_is_active(&i->stop_t) ||
	    ev_timer_remaining(ward_loop, &i->stop_t) > timeout_ms / 1000.0) {
		ev_timer_stop(ward_loop, &i->stop_t);
		ev_timer_set(&i->stop_t, timeout_ms / 1000.0, 0.);
		ev_timer_start(ward_loop, &i->stop_t);
	}
	return 0;
}

static void
instance_stop_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct instance *i = container_of(t, struct instance, stop_t);

	log_notice("instance %" PRIu64 " %s did not stop in time: SIGKILL",
	    i->id, i->spec.name);
	instance_signal(i, SIGKILL, 1);
	cgroup_kill(i);		/* cgroup.c: and all it started, wherever */
}

/* Stop (or kill) every running instance: shutdown. */
void
instance_stop_all(int sig)
{
	struct instance *i;

	LIST_FOREACH(i, &instances_running, running_entry) {
		if (sig == SIGTERM)
			instance_stop(i, i->stop_timeout_ms);
		else
			instance_signal(i, sig, 1);
	}
}

/* The one path for payload state: forward only, as the seed's. */
int
instance_set_payload(struct instance *i, enum payload_state s,
    struct ward_err *e)
{
	if (payload_transition(i->payload, s, e) == -1)
		return -1;
	i->payload = s;
	if (s >= PAYLOAD_STARTED)
		ev_timer_stop(ward_loop, &i->hangup_t);
	instance_announce(i, INSTANCE_EV_PAYLOAD);
	return 0;
}

/*
 * The boot deadline passed. As the seed: only if the payload never said it
 * started and the child still runs; then it is a hangup and it is killed.
 */
static void
instance_hangup_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct instance *i = container_of(t, struct instance, hangup_t);
	struct ward_err e = WARD_ERR_INIT;

	if (i->state != INSTANCE_RUNNING || i->payload >= PAYLOAD_STARTED)
		return;
	log_notice("instance %" PRIu64 " %s did not start within %u ms: killing",
	    i->id, i->spec.name, i->spec.hangup_timeout_ms);
	instance_set_payload(i, PAYLOAD_HANGUP, &e);
	i->killed_by = KILLED_BY_HANGUP;
	instance_signal(i, SIGKILL, 1);
	cgroup_kill(i);		/* cgroup.c: the whole tree */
}

/*
 * The instance watchdog (the seed's vcpu-stall watchdog, generalised):
 * watchdog_ms passed without a WATCHDOG=1. Kill the group; reason WATCHDOG.
 */
static void
instance_watchdog_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct instance *i = container_of(t, struct instance, watchdog_t);

	ev_timer_stop(loop, t);
	if (i->state != INSTANCE_RUNNING || i->killed_by != KILLED_BY_NONE)
		return;
	log_notice("instance %" PRIu64 " %s sent no WATCHDOG=1 for %u ms: killing",
	    i->id, i->spec.name, i->spec.watchdog_ms);
	i->killed_by = KILLED_BY_WATCHDOG;
	instance_signal(i, SIGKILL, 1);
	cgroup_kill(i);		/* cgroup.c: the whole tree */
}

static void
instance_failure_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	exit_failure_drain(container_of(w, struct instance, failure_w));
}

/*
 * One line of the notify pipe, or one sd_notify assignment the two share:
 * READY=1, STATE=, STATUS=, WATCHDOG=1 (or =trigger).
 */
void
instance_notify_line(struct instance *i, const char *line, size_t len)
{
	enum payload_state s;
	const char *text;
	size_t tlen;
	struct ward_err e = WARD_ERR_INIT;

	switch (notify_parse(line, len, &s, &text, &tlen)) {
	case NOTIFY_READY:
	case NOTIFY_STATE:
		/* A repeated READY=1 is not news; nobody to tell it to. */
		if (s > i->payload)
			instance_set_payload(i, s, &e);
		break;
	case NOTIFY_STATUS: {
		char *clean;

		if ((clean = notify_status_text(text, tlen)) == NULL)
			break;
		free(i->status_text);
		i->status_text = clean;
		instance_announce(i, INSTANCE_EV_STATUS);
		break;
	}
	case NOTIFY_WATCHDOG:
		if (i->spec.watchdog_ms == 0)
			break;
		if (tlen == 7)		/* "trigger": act as if it expired */
			instance_watchdog_cb(ward_loop, &i->watchdog_t, 0);
		else if (!suspend_watchdog(i))	/* paused: suspend.c's */
			ev_timer_again(ward_loop, &i->watchdog_t);
		break;
	case NOTIFY_INVALID:
		i->notify_dropped++;
		break;
	default:
		break;
	}
}

/* One sd_notify assignment (notify.c): the notify pipe's lines plus a few. */
static void
instance_sd_assignment(struct instance *i, const char *p, size_t n)
{
	enum payload_state s;
	const char *text;
	size_t tlen;
	struct ward_err e = WARD_ERR_INIT;

	switch (notify_parse_sd(p, n, &s, &text, &tlen)) {
	case NOTIFY_STOPPING:
		if (i->payload < s)
			instance_set_payload(i, s, &e);
		break;
	case NOTIFY_FAILURE:
		free(i->failure_note);
		i->failure_note = notify_failure_note(text, tlen);
		break;
	case NOTIFY_IGNORED:
		/* MAINPID=, RELOADING=1, FDSTORE=1 ...: nothing ward acts on. */
		break;
	default:
		/* READY=1, STATUS=, WATCHDOG= mean what they mean on fd 4. */
		instance_notify_line(i, p, n);
		break;
	}
}

/*
 * The child is gone (the pidfd said so). Reap it, drain what its pipes hold
 * right now (never waiting for EOF: a grandchild may hold them open), and
 * classify the death. A forked child that reported a failed step never
 * became the payload: that is a failed spawn, recorded as instance_start
 * records one (SPAWN_FAILED, its message; no exit code of the payload's).
 */
static void
instance_pidfd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct instance *i = container_of(w, struct instance, pidfd_w);
	struct exit_record *r;
	siginfo_t si;
	int rc;

	/* The zombie still holds its final CPU times: metrics.c takes them. */
	instance_announce(i, INSTANCE_EV_EXITING);
	/* Allocate before reaping: once reaped, the status exists only here. */
	if ((r = calloc(1, sizeof *r)) == NULL) {
		log_warnx("out of memory recording the death of %" PRIu64, i->id);
		return;	/* level-triggered: retried on the next loop turn */
	}
	memset(&si, 0, sizeof si);
	rc = sys->reap(i->pidfd, &si);
	if (rc == 0 && si.si_pid == 0) {
		free(r);
		return;		/* not yet: spurious wakeup */
	}
	if (rc == -1) {
		log_warn("waitid on instance %" PRIu64, i->id);
	} else if (si.si_code == CLD_EXITED) {
		r->exited = 1;
		r->exit_code = si.si_status;
	} else {
		r->exit_signal = si.si_status;
		r->core_dumped = si.si_code == CLD_DUMPED;
	}
	instance_died(i, r, rc == -1);
}

/*
 * The rest of a death, once r says how it ended (reap_failed: it cannot
 * say; a death_reason already set stays): drain, classify, clean up, and
 * announce. instance-adopt.c ends adopted instances through it too.
 */
void
instance_died(struct instance *i, struct exit_record *r, int reap_failed)
{
	char name[REASON_MAX + 1];
	int spawn_failed;

	spawn_status_drain(i);
	exit_failure_drain(i);	/* an older wardd's pipe, if any */
	channel_drain(i);	/* channel.c: fd 3, a last EXIT_STATUS= */
	notify_pipe_drain(i);
	output_child_died(i);	/* output.c: what stdout/stderr hold now */
	spawn_failed = i->spawn_got >= sizeof i->spawn_report;
	if (spawn_failed) {
		struct ward_err e = WARD_ERR_INIT;

		spawn_report_message(i, &i->spawn_report, &e);
		log_info("instance %" PRIu64 ": %s", i->id, e.msg);
		memset(r, 0, sizeof *r);
		strcpy(r->death_reason, "SPAWN_FAILED");
		r->failure_reason = strdup(e.msg);
		instance_stats.spawn_failed++;
	} else if (r->death_reason[0] == '\0') {
		reason_split_failure(i->failure ? i->failure : "",
		    i->failure_len, name, &r->failure_info, &r->failure_reason);
		r->failure_discarded = i->failure_discarded;
		/* sd_notify's ERRNO= or wardd's own note stand in when fd 3
		 * said nothing. */
		if (r->failure_info == NULL && r->failure_reason == NULL &&
		    i->failure_note != NULL)
			r->failure_info = strdup(i->failure_note);
		exit_killed_by(i, r);	/* before cgroup.c removes memory.events */
		snprintf(r->death_reason, sizeof r->death_reason, "%s",
		    reason_classify(name, r->killed_by, reap_failed, r->exited,
		    r->exit_code, i->spec.exit_codes, i->spec.nexit_codes));
	}
	instance_release(i);
	i->suspended = 0;
	cgroup_instance_gone(i);	/* cgroup.c: final CPU; leftovers; rmdir */
	if (!spawn_failed)
		r->dump_dir = exit_collect_dumps(i);
	/* Moved out of the way at once, removed a slice per loop turn. */
	if (i->runtime_dir != NULL)
		statedir_runtime_remove(i->id);
	instance_finish(i, r, spawn_failed ? INSTANCE_FAILED : INSTANCE_DEAD);
}

/* Forget an instance that is not running. i is freed. */
void
instance_remove(struct instance *i)
{
	if (i->state == INSTANCE_RUNNING)
		fatalx("removing running instance %" PRIu64, i->id);
	instance_stats.removed++;
	table_remove(&instances_by_id, &i->by_id);
	table_remove(&instances_by_name, &i->by_name);
	/* Unindexed: an observer may give its name to a new instance. */
	instance_announce(i, INSTANCE_EV_REMOVED);
	TAILQ_REMOVE(&instances, i, entry);
	instance_count--;
	instance_release(i);
	cgroup_instance_removed(i);	/* cgroup.c: rmdir, or its drain keeps it */
	exit_record_unref(i->exit);
	free(i->failure_note);
	free(i->status_text);
	free(i->runtime_dir);
	free(i->groups);
	output_free(i);		/* output.c: before the config it reads */
	instance_close_fds(i);
	spec_free(&i->spec);
	budget_give(i->owner_uid, BUDGET_INSTANCES, 1);	/* last: may free its node */
	free(i);
}

/* At exit: running children are left alone (they may outlive wardd). */
void
instance_free_all(void)
{
	struct instance *i;

	while ((i = TAILQ_FIRST(&instances)) != NULL) {
		if (i->state == INSTANCE_RUNNING)
			instance_set_state(i, INSTANCE_DEAD);
		instance_remove(i);
	}
	table_free(&instances_by_id);
	table_free(&instances_by_name);
}
