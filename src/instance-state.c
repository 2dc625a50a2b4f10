/*
 * instance-state.c: one instance written into wardd's state and read back
 * after a re-exec: same id, name, pid and state, the same fds (pidfd,
 * failure and notify pipes, NOTIFY_SOCKET, capture pipes, log files), what
 * its pipes had said so far, its timers with the time they had left, its
 * metrics maxima and its last exit record. The child is still wardd's
 * child (the pid did not change), so its death is reaped and classified as
 * if nothing had happened. instance.c indexes it and arms its watchers
 * (instance_adopt); this file only reads and writes. The same map is read
 * back from STATE_DIR/state after a crash (snapshot.c), with no fd handed
 * over; instance-adopt.c then finds the process again, or records its
 * death.
 *
 * layer: engine (instance.c's own part; calls spec-state.c,
 * output-state.c, exit.c, instance-adopt.c, hooks.c and state.c)
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ward.h"

static void
instance_state_save_metrics(msgpack_packer *pk, const struct metrics *m)
{
	msgpack_pack_map(pk, 16);
	codec_pack_kv_uint(pk, "cpu_user_ms", m->cpu_user_ms);
	codec_pack_kv_uint(pk, "cpu_system_ms", m->cpu_system_ms);
	codec_pack_kv_uint(pk, "cpu_guest_ms", m->cpu_guest_ms);
	codec_pack_kv_uint(pk, "rss_kb", m->rss_kb);
	codec_pack_kv_uint(pk, "rss_max_kb", m->rss_max_kb);
	codec_pack_kv_uint(pk, "pss_kb", m->pss_kb);
	codec_pack_kv_uint(pk, "mapping_rss_kb", m->mapping_rss_kb);
	codec_pack_kv_uint(pk, "mapping_rss_max_kb", m->mapping_rss_max_kb);
	state_pack_kv_double(pk, "cpu_percent", m->cpu_percent);
	codec_pack_kv_uint(pk, "last_cpu_ms", m->last_cpu_ms);
	state_pack_kv_double(pk, "last_at", m->last_at);
	codec_pack_kv_uint(pk, "samples", m->samples);
	codec_pack_kv_uint(pk, "cgroup_memory_kb", m->cgroup_memory_kb);
	codec_pack_kv_uint(pk, "cgroup_cpu_usage_ms", m->cgroup_cpu_usage_ms);
	codec_pack_kv_bool(pk, "has_cgroup_memory", m->has_cgroup_memory);
	codec_pack_kv_bool(pk, "has_cgroup_cpu", m->has_cgroup_cpu);
}

static void
instance_state_restore_metrics(const msgpack_object *o, struct metrics *m)
{
	m->cpu_user_ms = state_u64(o, "cpu_user_ms", 0);
	m->cpu_system_ms = state_u64(o, "cpu_system_ms", 0);
	m->cpu_guest_ms = state_u64(o, "cpu_guest_ms", 0);
	m->rss_kb = state_u64(o, "rss_kb", 0);
	m->rss_max_kb = state_u64(o, "rss_max_kb", 0);
	m->pss_kb = state_u64(o, "pss_kb", 0);
	m->mapping_rss_kb = state_u64(o, "mapping_rss_kb", 0);
	m->mapping_rss_max_kb = state_u64(o, "mapping_rss_max_kb", 0);
	m->cpu_percent = state_double(o, "cpu_percent", 0.);
	m->last_cpu_ms = state_u64(o, "last_cpu_ms", 0);
	m->last_at = state_double(o, "last_at", 0.);
	m->samples = state_u64(o, "samples", 0);
	m->cgroup_memory_kb = state_u64(o, "cgroup_memory_kb", 0);
	m->cgroup_cpu_usage_ms = state_u64(o, "cgroup_cpu_usage_ms", 0);
	m->has_cgroup_memory = state_bool(o, "has_cgroup_memory");
	m->has_cgroup_cpu = state_bool(o, "has_cgroup_cpu");
}

void
instance_state_save(msgpack_packer *pk, struct instance *i)
{
	int k;

	msgpack_pack_map(pk, 55);
	state_fd_context(i->id, i->runs);	/* its fds' tags */
	codec_pack_kv_uint(pk, "id", i->id);
	codec_pack_kv_uint(pk, "runs", i->runs);
	codec_pack_key(pk, "spec");
	spec_state_save(pk, &i->spec);
	codec_pack_kv_uint(pk, "state", i->state);
	codec_pack_kv_uint(pk, "payload", i->payload);
	codec_pack_kv_bool(pk, "suspended", i->suspended);
	codec_pack_kv_str(pk, "status_text", INSTANCE_STATUS_TEXT(i));
	codec_pack_kv_bool(pk, "stop_requested", i->stop_requested);
	codec_pack_kv_int(pk, "stop_signal", i->stop_signal);
	codec_pack_kv_uint(pk, "stop_timeout_ms", i->stop_timeout_ms);
	codec_pack_kv_uint(pk, "owner_uid", i->owner_uid);
	codec_pack_kv_uint(pk, "owner_gid", i->owner_gid);
	codec_pack_kv_uint(pk, "fds_held", i->fds_held);
	codec_pack_key(pk, "groups");
	msgpack_pack_array(pk, i->ngroups);
	for (k = 0; k < i->ngroups; k++)
		msgpack_pack_uint32(pk, i->groups[k]);
	codec_pack_kv_int(pk, "requester_pid", i->requester_pid);
	codec_pack_kv_bool(pk, "run_as_owner", i->run_as_owner);
	codec_pack_kv_int(pk, "created_at_ms", i->created_at_ms);
	codec_pack_kv_int(pk, "started_at_ms", i->started_at_ms);
	state_pack_kv_double(pk, "started_mono", i->started_mono);
	codec_pack_kv_int(pk, "pid", i->pid);
	/* What a wardd recovering after a crash checks (instance-adopt.c). */
	codec_pack_kv_uint(pk, "start_time", i->start_time);
	codec_pack_kv_bool(pk, "not_child", i->not_child);
	state_pack_kv_fd(pk, "pidfd", i->pidfd);
	state_pack_kv_fd(pk, "failure_fd", i->failure_fd);
	state_pack_kv_fd(pk, "notify_fd", i->notify_fd);
	/* fd 3's address in channel.c's shared socket (none: a pipe). */
	state_pack_kv_bin(pk, "chan_addr", i->chan_addr, i->chan_addr_len);
	state_pack_kv_fd(pk, "spawn_fd", i->spawn_fd);
	state_pack_kv_bin(pk, "spawn_report", &i->spawn_report,
	    i->spawn_got < sizeof i->spawn_report ? i->spawn_got :
	    sizeof i->spawn_report);
	state_pack_kv_timer(pk, "hangup_t", &i->hangup_t);
	state_pack_kv_timer(pk, "stop_t", &i->stop_t);
	state_pack_kv_timer(pk, "watchdog_t", &i->watchdog_t);
	state_pack_kv_fd(pk, "sd_fd", i->sd_fd);
	codec_pack_kv_uint(pk, "sd_dropped", i->sd_dropped);
	codec_pack_kv_str(pk, "failure_note", i->failure_note);
	codec_pack_kv_uint(pk, "killed_by", i->killed_by);
	state_pack_kv_bin(pk, "failure", i->failure, i->failure_len);
	codec_pack_kv_uint(pk, "failure_discarded", i->failure_discarded);
	state_pack_kv_bin(pk, "notify_line", i->notify_line, i->notify_len);
	codec_pack_kv_bool(pk, "notify_skipping", i->notify_skipping);
	codec_pack_kv_uint(pk, "notify_dropped", i->notify_dropped);
	codec_pack_kv_str(pk, "runtime_dir", i->runtime_dir);
	codec_pack_key(pk, "metrics");
	instance_state_save_metrics(pk, &i->metrics);
	codec_pack_key(pk, "exit");
	if (i->exit != NULL)
		exit_record_pack(i->exit, pk, 1);
	else
		msgpack_pack_nil(pk);
	codec_pack_key(pk, "output");
	output_state_save(pk, i);
	codec_pack_kv_bool(pk, "cgroup_made", i->cgroup.made);
	codec_pack_kv_bool(pk, "cgroup_killed", i->cgroup.killed);
	/* Keys a later wardd may want, cheap now: when wardd saved it. */
	codec_pack_kv_int(pk, "saved_at_ms", now_wall_ms());
	codec_pack_kv_uint(pk, "version", 1);
	codec_pack_kv_uint(pk, "spawn_got", i->spawn_got);
	/* exit_killed_by's: the last instance.kill, the OOM count's start. */
	codec_pack_kv_int(pk, "kill_signal", i->kill_signal);
	codec_pack_kv_uint(pk, "kill_uid", i->kill_uid);
	codec_pack_kv_uint(pk, "kill_run", i->kill_run);
	codec_pack_kv_uint(pk, "cgroup_oom_kills", i->cgroup.oom_kills);
	/* suspend.c: a frozen cgroup's name, the paused timers' time left. */
	codec_pack_key(pk, "suspend");
	suspend_state_save(pk, i);
	codec_pack_key(pk, "hooks");
	hooks_state_save(pk, i);	/* hooks.c: its side processes */
}

/* A bounded copy of map[k]'s bytes into a malloc'd buffer (NULL: none). */
static char *
instance_state_bytes(const msgpack_object *m, const char *k, size_t max,
    size_t *len)
{
	const char *p;
	char *b;
	size_t n;

	*len = 0;
	if ((p = state_bin(m, k, &n)) == NULL || n == 0 || n > max ||
	    (b = malloc(max)) == NULL)
		return NULL;
	memcpy(b, p, n);
	*len = n;
	return b;
}

/*
 * Read one instance back and adopt it. NULL if it cannot be (logged): its
 * fds taken so far are closed by reexec.c as untaken ones are.
 */
struct instance *
instance_state_restore(const msgpack_object *m)
{
	const msgpack_object *a, *o;
	struct instance *i;
	const char *p;
	size_t n, k;

	if ((i = calloc(1, sizeof *i)) == NULL)
		return NULL;
	i->id = state_u64(m, "id", 0);
	i->runs = state_u64(m, "runs", 0);
	if (i->id == 0 || i->id >= ID_MAX || instance_find_id(i->id) != NULL ||
	    spec_state_restore(state_get(m, "spec"), &i->spec) == -1 ||
	    instance_find_name(i->spec.name) != NULL) {
		log_warnx("state: instance %llu cannot be read back",
		    (unsigned long long)i->id);
		spec_free(&i->spec);
		free(i);
		return NULL;
	}
	i->state = state_u64(m, "state", INSTANCE_DEAD);
	if (i->state > INSTANCE_FAILED)
		i->state = INSTANCE_DEAD;
	i->payload = state_u64(m, "payload", PAYLOAD_STARTING);
	if (i->payload > PAYLOAD_HANGUP)
		i->payload = PAYLOAD_STARTING;
	i->suspended = state_bool(m, "suspended");
	i->status_text = state_str(m, "status_text");
	if (i->status_text != NULL && strlen(i->status_text) > STATUS_MAX) {
		free(i->status_text);	/* longer than wardd keeps: hostile */
		i->status_text = NULL;
	}
	i->stop_requested = state_bool(m, "stop_requested");
	i->stop_signal = state_i64(m, "stop_signal", SIGTERM);
	i->stop_timeout_ms = state_u64(m, "stop_timeout_ms", STOP_TIMEOUT_MS);
	i->owner_uid = state_u64(m, "owner_uid", 0);
	i->owner_gid = state_u64(m, "owner_gid", 0);
	i->fds_held = state_u64(m, "fds_held", 0);
	a = state_array(m, "groups", &n);
	if (n > 0 && n <= 65536 &&
	    (i->groups = calloc(n, sizeof *i->groups)) != NULL) {
		for (k = 0; k < n; k++)
			i->groups[k] = a[k].via.u64;
		i->ngroups = n;
	}
	i->requester_pid = state_i64(m, "requester_pid", 0);
	i->run_as_owner = state_bool(m, "run_as_owner");
	i->created_at_ms = state_i64(m, "created_at_ms", 0);
	i->started_at_ms = state_i64(m, "started_at_ms", 0);
	/* Read against this loop's clock (an uptime, a backoff's window):
	 * not after now, or a death's uptime is out of any integer's range. */
	i->started_mono = state_double(m, "started_mono", 0.);
	if (!(i->started_mono >= 0. && i->started_mono <= ev_now(ward_loop)))
		i->started_mono = ev_now(ward_loop);
	i->pid = state_i64(m, "pid", 0);
	i->start_time = state_u64(m, "start_time", 0);
	i->not_child = state_bool(m, "not_child");
	i->pidfd = state_fd(m, "pidfd");
	i->failure_fd = state_fd(m, "failure_fd");
	i->notify_fd = state_fd(m, "notify_fd");
	i->spawn_fd = state_fd(m, "spawn_fd");
	i->sd_fd = state_fd(m, "sd_fd");
	if ((p = state_bin(m, "chan_addr", &n)) != NULL &&
	    n <= sizeof i->chan_addr && i->state == INSTANCE_RUNNING) {
		memcpy(i->chan_addr, p, n);
		i->chan_addr_len = n;
	}
	/* A state of a wardd before start times: the pidfd holds the pid. */
	if (i->start_time == 0 && i->pidfd != -1)
		i->start_time = instance_adopt_start_time(i->pid);
	if ((p = state_bin(m, "spawn_report", &n)) != NULL &&
	    n <= sizeof i->spawn_report) {
		memcpy(&i->spawn_report, p, n);
		i->spawn_got = n;
	}
	i->sd_dropped = state_u64(m, "sd_dropped", 0);
	i->failure_note = state_str(m, "failure_note");
	i->killed_by = state_u64(m, "killed_by", KILLED_BY_NONE);
	if (i->killed_by > KILLED_BY_LAST)
		i->killed_by = KILLED_BY_NONE;
	/* Absent (an older wardd's state): no kill, an OOM count from 0. */
	i->kill_signal = state_i64(m, "kill_signal", 0);
	if (i->kill_signal < 0 || i->kill_signal > SIGRTMAX)
		i->kill_signal = 0;
	i->kill_uid = state_u64(m, "kill_uid", 0);
	i->kill_run = state_u64(m, "kill_run", 0);
	i->cgroup.oom_kills = state_u64(m, "cgroup_oom_kills", 0);
	i->failure = instance_state_bytes(m, "failure", FAILURE_MAX,
	    &i->failure_len);
	i->failure_discarded = state_u64(m, "failure_discarded", 0);
	i->notify_line = instance_state_bytes(m, "notify_line",
	    NOTIFY_LINE_MAX, &i->notify_len);
	i->notify_skipping = state_bool(m, "notify_skipping");
	i->notify_dropped = state_u64(m, "notify_dropped", 0);
	i->runtime_dir = state_str(m, "runtime_dir");
	instance_state_restore_metrics(state_get(m, "metrics"), &i->metrics);
	/* A running instance has none (instance_start dropped the last
	 * run's): its death's record would replace one never freed. */
	if (i->state != INSTANCE_RUNNING &&
	    (o = state_get(m, "exit")) != NULL && o->type == MSGPACK_OBJECT_MAP)
		i->exit = exit_record_unpack(o);
	i->cgroup.made = state_bool(m, "cgroup_made");
	i->cgroup.killed = state_bool(m, "cgroup_killed");
	/* A running instance without its pidfd cannot be watched: lost. */
	if (i->state == INSTANCE_RUNNING && i->pidfd == -1)
		log_warnx("state: instance %llu %s runs without a pidfd",
		    (unsigned long long)i->id, i->spec.name);
	instance_adopt(i);
	if (i->not_child)	/* no waitid: instance-adopt.c reads its death */
		instance_adopt_watch(i);
	state_timer(m, "hangup_t", &i->hangup_t);
	state_timer(m, "stop_t", &i->stop_t);
	i->watchdog_t.repeat = i->spec.watchdog_ms / 1000.0;
	state_timer(m, "watchdog_t", &i->watchdog_t);
	suspend_state_restore(state_get(m, "suspend"), i);
	if (output_state_restore(state_get(m, "output"), i) == -1)
		log_warnx("state: instance %llu %s: its output is lost",
		    (unsigned long long)i->id, i->spec.name);
	hooks_state_restore(state_get(m, "hooks"), i);
	instance_announce(i, INSTANCE_EV_RESTORED);	/* metrics samples it */
	return i;
}

/*
 * Every fd i holds, with what holds it below it (output.c's pipes and
 * files, metrics.c's smaps read): what a re-exec must carry over.
 */
void
instance_fds(const struct instance *i, fd_visit_fn fn, void *arg)
{
	size_t k;

	if (i->pidfd != -1)
		fn(i->pidfd, "instance: pidfd", arg);
	if (i->failure_fd != -1)
		fn(i->failure_fd, "instance: failure pipe (older wardd's)",
		    arg);
	if (i->notify_fd != -1)
		fn(i->notify_fd, "instance: notify stream (fd 4)", arg);
	if (i->spawn_fd != -1)
		fn(i->spawn_fd, "instance: spawn status pipe", arg);
	if (i->sd_fd != -1)
		fn(i->sd_fd, "instance: NOTIFY_SOCKET (older wardd's)", arg);
	for (k = 0; k < i->spec.nfds; k++) {
		if (i->spec.fds[k].fd != -1)
			fn(i->spec.fds[k].fd, "instance: passed fd", arg);
	}
	output_fds(i, fn, arg);
	hooks_fds(i, fn, arg);
}
