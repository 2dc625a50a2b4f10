/*
 * exit.c: how a run ended and what it cost: the exit record (kept with its
 * instance and shared with history), its msgpack form, the metrics map,
 * and the failure pipe (the child's fd 3) whose text names the death
 * reason. The classification itself is reason.c's pure rules.
 *
 * layer: engine (below instance.c, history.c, event.c and metrics.c, which
 * all pack or keep exit records; calls codec, reason, base and cgroup.c's
 * memory.events, for who killed it)
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"

/* The cost of a run: a map (a record) of the fields of struct metrics. */
void
metrics_pack(const struct metrics *m, msgpack_packer *pk)
{
	codec_pack_record(pk, 10 + 2);
	codec_pack_kv_uint(pk, "cpu_user_ms", m->cpu_user_ms);
	codec_pack_kv_uint(pk, "cpu_system_ms", m->cpu_system_ms);
	codec_pack_kv_uint(pk, "cpu_guest_ms", m->cpu_guest_ms);
	codec_pack_key(pk, "cpu_percent");
	msgpack_pack_double(pk, m->cpu_percent);
	codec_pack_kv_uint(pk, "rss_kb", m->rss_kb);
	codec_pack_kv_uint(pk, "rss_max_kb", m->rss_max_kb);
	codec_pack_kv_uint(pk, "pss_kb", m->pss_kb);
	codec_pack_kv_uint(pk, "rss_mapping_kb", m->mapping_rss_kb);
	codec_pack_kv_uint(pk, "rss_mapping_max_kb", m->mapping_rss_max_kb);
	codec_pack_kv_uint(pk, "samples", m->samples);
	/* cgroup.c's, for the whole tree: nil without a cgroup or the file. */
	codec_pack_key(pk, "cgroup_memory_kb");
	if (m->has_cgroup_memory)
		msgpack_pack_uint64(pk, m->cgroup_memory_kb);
	else
		msgpack_pack_nil(pk);
	codec_pack_key(pk, "cgroup_cpu_usage_ms");
	if (m->has_cgroup_cpu)
		msgpack_pack_uint64(pk, m->cgroup_cpu_usage_ms);
	else
		msgpack_pack_nil(pk);
}

/*
 * What fd 3 said, a datagram at a time (channel.c; dropped: bytes of it
 * beyond what channel.c could hold): the first FAILURE_MAX bytes are
 * kept, the rest counted, so a chatty payload costs memory once.
 */
void
exit_failure_add(struct instance *i, const char *p, size_t n, size_t dropped)
{
	size_t take = 0;

	if (i->failure_len < FAILURE_MAX && n > 0) {
		if (i->failure == NULL &&
		    (i->failure = malloc(FAILURE_MAX)) == NULL)
			return;
		take = n < FAILURE_MAX - i->failure_len ? n :
		    FAILURE_MAX - i->failure_len;
		memcpy(i->failure + i->failure_len, p, take);
		i->failure_len += take;
	}
	i->failure_discarded += n - take + dropped;
}

/*
 * The failure pipe an older wardd made (read back from its state): read
 * what is readable into exit_failure_add. Returns at EAGAIN or EOF; never
 * waits.
 */
void
exit_failure_drain(struct instance *i)
{
	char chunk[4096];
	ssize_t n;

	while (i->failure_fd != -1) {
		n = read(i->failure_fd, chunk, sizeof chunk);
		if (n > 0) {
			exit_failure_add(i, chunk, n, 0);
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == 0 || errno != EAGAIN) {
			/* EOF: every writer closed it. */
			ev_io_stop(ward_loop, &i->failure_w);
			fd_close_watched(i->failure_fd);
			i->failure_fd = -1;
		}
		return;
	}
}

/*
 * hooks.c's post_death, nil without one: {result, exit_code, exit_signal}.
 * It ends after the death, so a record packed at the death (the died
 * event, the history file's line) says "running".
 */
static void
exit_post_death_pack(const struct exit_record *r, msgpack_packer *pk)
{
	codec_pack_key(pk, "post_death");
	if (r->post_death[0] == '\0') {
		msgpack_pack_nil(pk);
		return;
	}
	/* A plain map (keys by codec_pack_str): one value in a row too. */
	msgpack_pack_map(pk, 3);
	codec_pack_str(pk, "result");
	codec_pack_str(pk, r->post_death);
	codec_pack_str(pk, "exit_code");
	if (strcmp(r->post_death, "exited") == 0)
		msgpack_pack_int(pk, r->post_death_code);
	else
		msgpack_pack_nil(pk);
	codec_pack_str(pk, "exit_signal");
	if (r->post_death_signal != 0)
		msgpack_pack_int(pk, r->post_death_signal);
	else
		msgpack_pack_nil(pk);
}

/*
 * The exit record's fields. With whole, a complete map (history, events);
 * without, EXIT_RECORD_PAIRS key/value pairs to append to a status map.
 */
void
exit_record_pack(const struct exit_record *r, msgpack_packer *pk, int whole)
{
	if (whole) {
		msgpack_pack_map(pk, EXIT_RECORD_PAIRS + 7);
		codec_pack_kv_uint(pk, "id", r->id);
		codec_pack_kv_str(pk, "name", r->name);
		codec_pack_kv_uint(pk, "owner_uid", r->owner_uid);
		codec_pack_kv_int(pk, "started_at_ms", r->started_at_ms);
		codec_pack_kv_uint(pk, "uptime_ms", r->uptime_ms);
		codec_pack_key(pk, "metrics");
		metrics_pack(&r->metrics, pk);
		codec_pack_kv_str(pk, "state", r->death_reason[0] != '\0' &&
		    strcmp(r->death_reason, "SPAWN_FAILED") == 0 ? "failed" : "dead");
	}
	codec_pack_kv_str(pk, "death_reason", r->death_reason);
	codec_pack_key(pk, "exit_code");
	if (r->exited)
		msgpack_pack_int(pk, r->exit_code);
	else
		msgpack_pack_nil(pk);
	codec_pack_key(pk, "exit_signal");
	if (r->exit_signal != 0)
		msgpack_pack_int(pk, r->exit_signal);
	else
		msgpack_pack_nil(pk);
	codec_pack_kv_str(pk, "signal_name",
	    r->exit_signal ? signal_name(r->exit_signal) : NULL);
	codec_pack_kv_bool(pk, "core_dumped", r->core_dumped);
	codec_pack_kv_str(pk, "failure_reason", r->failure_reason);
	codec_pack_kv_str(pk, "failure_info", r->failure_info);
	codec_pack_kv_uint(pk, "failure_discarded", r->failure_discarded);
	codec_pack_kv_str(pk, "dump_dir", r->dump_dir);
	codec_pack_kv_int(pk, "died_at_ms", r->died_at_ms);
	/* No wait status: it died while no wardd ran, or out of wardd's
	 * reach (SUPERVISOR_LOST); exit_code and exit_signal are nil. */
	codec_pack_kv_bool(pk, "exit_status_lost", r->exit_status_lost);
	/* Issue 13: which run of its instance (nil: a record of a wardd
	 * before runs were counted), and who ended it (exit_killed_by). */
	codec_pack_key(pk, "run");
	if (r->run != 0)
		msgpack_pack_uint64(pk, r->run);
	else
		msgpack_pack_nil(pk);
	codec_pack_kv_str(pk, "killed_by", killed_by_name(r->killed_by));
	codec_pack_key(pk, "killed_by_uid");
	if (r->killed_by == KILLED_BY_KILL)
		msgpack_pack_uint32(pk, r->killed_by_uid);
	else
		msgpack_pack_nil(pk);
	exit_post_death_pack(r, pk);
}

/*
 * The inverse of exit_record_pack(r, pk, 1), for records wardd reads back
 * (history-file.c; instance-state.c after a re-exec): hostile input. A value of the wrong type or
 * out of range is left at its default (0, NULL, nil); strings are bounded
 * and made valid UTF-8; unknown keys (state, signal_name: derived) are
 * skipped. Only a map without a valid id and owner_uid is no record.
 */
static int
exit_uint(const msgpack_object *v, uint64_t max, uint64_t *out)
{
	if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 > max)
		return 0;
	*out = v->via.u64;
	return 1;
}

static int
exit_int(const msgpack_object *v, int64_t min, int64_t max, int64_t *out)
{
	if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	    v->via.u64 <= (uint64_t)max)
		*out = (int64_t)v->via.u64;
	else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && v->via.i64 >= min)
		*out = v->via.i64;
	else
		return 0;
	return 1;
}

/*
 * *out becomes a clean copy of v (NULL: nil, not a string, or over max
 * once clean: bad bytes grow, and what was read must read back the same).
 */
static void
exit_str(const msgpack_object *v, size_t max, char **out)
{
	free(*out);
	*out = NULL;
	if (v->type != MSGPACK_OBJECT_STR || v->via.str.size > max ||
	    (*out = utf8_clean(v->via.str.ptr, v->via.str.size)) == NULL)
		return;
	if (strlen(*out) > max) {
		free(*out);
		*out = NULL;
	}
}

static const struct {
	const char	*key;
	size_t		 off;
} exit_metrics_keys[] = {
	{ "cpu_user_ms", offsetof(struct metrics, cpu_user_ms) },
	{ "cpu_system_ms", offsetof(struct metrics, cpu_system_ms) },
	{ "cpu_guest_ms", offsetof(struct metrics, cpu_guest_ms) },
	{ "rss_kb", offsetof(struct metrics, rss_kb) },
	{ "rss_max_kb", offsetof(struct metrics, rss_max_kb) },
	{ "pss_kb", offsetof(struct metrics, pss_kb) },
	{ "rss_mapping_kb", offsetof(struct metrics, mapping_rss_kb) },
	{ "rss_mapping_max_kb", offsetof(struct metrics, mapping_rss_max_kb) },
};

/* metrics_pack's map back into m (zeroed: a missing key stays 0 or nil). */
static void
exit_metrics_unpack(const msgpack_object *o, struct metrics *m)
{
	const msgpack_object *k, *v;
	uint64_t u;
	uint32_t i;
	size_t j;

	if (o->type != MSGPACK_OBJECT_MAP)
		return;
	for (i = 0; i < o->via.map.size; i++) {
		k = &o->via.map.ptr[i].key;
		v = &o->via.map.ptr[i].val;
		for (j = 0; j < sizeof exit_metrics_keys /
		    sizeof exit_metrics_keys[0]; j++) {
			if (codec_streq(k, exit_metrics_keys[j].key))
				exit_uint(v, UINT64_MAX, (uint64_t *)(void *)
				    ((char *)m + exit_metrics_keys[j].off));
		}
		if (codec_streq(k, "samples") && exit_uint(v, UINT_MAX, &u))
			m->samples = u;
		else if (codec_streq(k, "cpu_percent") &&
		    (v->type == MSGPACK_OBJECT_FLOAT64 ||
		    v->type == MSGPACK_OBJECT_FLOAT32) && isfinite(v->via.f64))
			m->cpu_percent = v->via.f64;
		else if (codec_streq(k, "cgroup_memory_kb"))
			m->has_cgroup_memory = exit_uint(v, UINT64_MAX,
			    &m->cgroup_memory_kb);
		else if (codec_streq(k, "cgroup_cpu_usage_ms"))
			m->has_cgroup_cpu = exit_uint(v, UINT64_MAX,
			    &m->cgroup_cpu_usage_ms);
	}
}

/* exit_post_death_pack's map back; an unknown result is none. */
static void
exit_post_death_unpack(struct exit_record *r, const msgpack_object *o)
{
	static const char *const results[] = {
		"running", "exited", "signaled", "timeout", "failed", NULL
	};
	const msgpack_object *k, *v;
	uint64_t u;
	int64_t s;
	uint32_t i;
	int j;

	r->post_death[0] = '\0';
	for (i = 0; o->type == MSGPACK_OBJECT_MAP && i < o->via.map.size; i++) {
		k = &o->via.map.ptr[i].key;
		v = &o->via.map.ptr[i].val;
		for (j = 0; codec_streq(k, "result") && results[j] != NULL; j++) {
			if (codec_streq(v, results[j]))
				strcpy(r->post_death, results[j]);
		}
		if (codec_streq(k, "exit_code") && exit_int(v, INT_MIN, INT_MAX, &s))
			r->post_death_code = s;
		else if (codec_streq(k, "exit_signal") && exit_uint(v, SIGRTMAX, &u))
			r->post_death_signal = u;
	}
}

/* One key of an exit record's map into r; unknown keys are skipped. */
static void
exit_record_key(struct exit_record *r, const msgpack_object *k,
    const msgpack_object *v)
{
	uint64_t u;
	int64_t s;

	if (codec_streq(k, "name"))
		exit_str(v, SPEC_MAX_NAME, &r->name);
	else if (codec_streq(k, "started_at_ms"))
		exit_int(v, INT64_MIN, INT64_MAX, &r->started_at_ms);
	else if (codec_streq(k, "died_at_ms"))
		exit_int(v, INT64_MIN, INT64_MAX, &r->died_at_ms);
	else if (codec_streq(k, "uptime_ms"))
		exit_uint(v, UINT64_MAX, &r->uptime_ms);
	else if (codec_streq(k, "metrics"))
		exit_metrics_unpack(v, &r->metrics);
	else if (codec_streq(k, "death_reason")) {
		r->death_reason[0] = '\0';
		if (v->type == MSGPACK_OBJECT_STR &&
		    v->via.str.size <= REASON_MAX &&
		    reason_name_valid(v->via.str.ptr, v->via.str.size)) {
			memcpy(r->death_reason, v->via.str.ptr, v->via.str.size);
			r->death_reason[v->via.str.size] = '\0';
		}
	} else if (codec_streq(k, "exit_code")) {
		if ((r->exited = exit_int(v, INT_MIN, INT_MAX, &s)))
			r->exit_code = s;
	} else if (codec_streq(k, "exit_signal")) {
		r->exit_signal = exit_uint(v, SIGRTMAX, &u) ? (int)u : 0;
	} else if (codec_streq(k, "core_dumped"))
		r->core_dumped = v->type == MSGPACK_OBJECT_BOOLEAN &&
		    v->via.boolean;
	else if (codec_streq(k, "failure_reason"))
		exit_str(v, EXIT_TEXT_MAX, &r->failure_reason);
	else if (codec_streq(k, "failure_info"))
		exit_str(v, EXIT_TEXT_MAX, &r->failure_info);
	else if (codec_streq(k, "failure_discarded"))
		r->failure_discarded = exit_uint(v, SIZE_MAX, &u) ? u : 0;
	else if (codec_streq(k, "dump_dir"))
		exit_str(v, PATH_MAX, &r->dump_dir);
	else if (codec_streq(k, "exit_status_lost"))
		r->exit_status_lost = v->type == MSGPACK_OBJECT_BOOLEAN &&
		    v->via.boolean;
	else if (codec_streq(k, "run"))
		r->run = exit_uint(v, UINT64_MAX, &u) ? u : 0;
	else if (codec_streq(k, "killed_by")) {
		if (v->type != MSGPACK_OBJECT_STR || killed_by_parse(
		    v->via.str.ptr, v->via.str.size, &r->killed_by) == -1)
			r->killed_by = KILLED_BY_NONE;
	} else if (codec_streq(k, "killed_by_uid"))
		r->killed_by_uid = exit_uint(v, UINT32_MAX - 1, &u) ? u : 0;
	else if (codec_streq(k, "post_death"))
		exit_post_death_unpack(r, v);
}

/* A new record (refs 1: the caller's), or NULL (no record, or no memory). */
struct exit_record *
exit_record_unpack(const msgpack_object *o)
{
	struct exit_record *r;
	const msgpack_object *k, *v;
	int have_id = 0, have_uid = 0;
	uint64_t u;
	uint32_t i;

	if (o == NULL || o->type != MSGPACK_OBJECT_MAP ||
	    (r = calloc(1, sizeof *r)) == NULL)
		return NULL;
	r->refs = 1;
	for (i = 0; i < o->via.map.size; i++) {
		k = &o->via.map.ptr[i].key;
		v = &o->via.map.ptr[i].val;
		if (codec_streq(k, "id"))
			have_id = exit_uint(v, ID_MAX, &r->id) && r->id > 0;
		else if (codec_streq(k, "owner_uid")) {
			/* (uid_t)-1 is no uid. */
			if ((have_uid = exit_uint(v, UINT32_MAX - 1, &u)))
				r->owner_uid = u;
		} else
			exit_record_key(r, k, v);
	}
	if (!have_id || !have_uid) {
		exit_record_unref(r);
		return NULL;
	}
	return r;
}

/* Records are shared by their instance and history; the last one frees. */
void
exit_record_unref(struct exit_record *r)
{
	if (r == NULL || --r->refs > 0)
		return;
	free(r->name);
	free(r->failure_reason);
	free(r->failure_info);
	free(r->dump_dir);
	free(r);
}

/*
 * The seed's handle_ramdump for instance i, at its death: core* and
 * ramdump* files it left in its runtime dir go to a dump dir of its
 * owner's. Returns the dump dir, or NULL.
 */
char *
exit_collect_dumps(const struct instance *i)
{
	int rfd;

	if (i->runtime_dir == NULL || (rfd = statedir_runtime_open(i->id)) == -1)
		return NULL;
	return dumps_collect(rfd, i->runtime_dir, i->spec.name, i->id,
	    i->runs, i->owner_uid, i->owner_gid);	/* closes rfd */
}

/*
 * Who ended the run r records (issue 13), first match wins: wardd's own
 * kill (hangup, watchdog, dependency: i->killed_by, set before it
 * signalled); the OOM killer, when the cgroup's oom_kill count rose during
 * the run and it did not end with exit 0; a client's instance.kill, when
 * the run ended by the very signal it sent last in this run; instance.stop
 * (or shutdown), however it then ended; else a signal that wardd did not
 * send (another process, or the payload's own crash): external. A run
 * that exited by itself is NONE (nil). Called before cgroup_instance_gone,
 * while memory.events can still be read.
 */
void
exit_killed_by(const struct instance *i, struct exit_record *r)
{
	r->killed_by = i->killed_by;
	if (r->killed_by != KILLED_BY_NONE)
		return;
	if (!(r->exited && r->exit_code == 0) &&
	    cgroup_oom_kills(i) > i->cgroup.oom_kills)
		r->killed_by = KILLED_BY_OOM;
	else if (i->kill_signal != 0 && i->kill_run == i->runs &&
	    r->exit_signal == i->kill_signal) {
		r->killed_by = KILLED_BY_KILL;
		r->killed_by_uid = i->kill_uid;
	} else if (i->stop_requested)
		r->killed_by = KILLED_BY_STOP;
	else if (r->exit_signal != 0)
		r->killed_by = KILLED_BY_EXTERNAL;
}
