/*
 * exit.c: how a run ended and what it cost: the exit record (kept with its
 * instance and shared with history), its msgpack form, the metrics map,
 * and the failure pipe (the child's fd 3) whose text names the death
 * reason. The classification itself is reason.c's pure rules.
 *
 * layer: engine (below instance.c, history.c, event.c and metrics.c, which
 * all pack or keep exit records; calls codec, reason and base only)
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"

/* The cost of a run: a map of the fields of struct metrics. */
void
metrics_pack(const struct metrics *m, msgpack_packer *pk)
{
	msgpack_pack_map(pk, 10 + 2);
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
 * Read what is readable from the failure pipe. The first FAILURE_MAX bytes
 * are kept; the rest is read and counted so a chatty payload cannot block.
 * Returns at EAGAIN or EOF; never waits.
 */
void
exit_failure_drain(struct instance *i)
{
	char scratch[4096];
	ssize_t n;

	while (i->failure_fd != -1) {
		if (i->failure_len < FAILURE_MAX) {
			if (i->failure == NULL &&
			    (i->failure = malloc(FAILURE_MAX)) == NULL)
				return;
			n = read(i->failure_fd, i->failure + i->failure_len,
			    FAILURE_MAX - i->failure_len);
			if (n > 0)
				i->failure_len += n;
		} else {
			n = read(i->failure_fd, scratch, sizeof scratch);
			if (n > 0)
				i->failure_discarded += n;
		}
		if (n == 0 || (n == -1 && errno != EINTR)) {
			if (n == 0 || errno != EAGAIN) {
				/* EOF: every writer closed it. */
				ev_io_stop(ward_loop, &i->failure_w);
				close(i->failure_fd);
				i->failure_fd = -1;
			}
			return;
		}
	}
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
 * The inverse of exit_record_pack(r, pk, 1), for records read back (a
 * re-exec's state): NULL if m is not such a map. refs is 1.
 */
struct exit_record *
exit_record_unpack(const msgpack_object *m)
{
	const msgpack_object *o;
	struct exit_record *r;

	if (m == NULL || m->type != MSGPACK_OBJECT_MAP ||
	    (r = calloc(1, sizeof *r)) == NULL)
		return NULL;
	r->refs = 1;
	r->id = state_u64(m, "id", 0);
	r->name = state_str(m, "name");
	r->owner_uid = state_u64(m, "owner_uid", 0);
	r->started_at_ms = state_i64(m, "started_at_ms", 0);
	r->uptime_ms = state_u64(m, "uptime_ms", 0);
	o = state_get(m, "metrics");
	r->metrics.cpu_user_ms = state_u64(o, "cpu_user_ms", 0);
	r->metrics.cpu_system_ms = state_u64(o, "cpu_system_ms", 0);
	r->metrics.cpu_guest_ms = state_u64(o, "cpu_guest_ms", 0);
	r->metrics.cpu_percent = state_double(o, "cpu_percent", 0.);
	r->metrics.rss_kb = state_u64(o, "rss_kb", 0);
	r->metrics.rss_max_kb = state_u64(o, "rss_max_kb", 0);
	r->metrics.pss_kb = state_u64(o, "pss_kb", 0);
	r->metrics.mapping_rss_kb = state_u64(o, "rss_mapping_kb", 0);
	r->metrics.mapping_rss_max_kb = state_u64(o, "rss_mapping_max_kb", 0);
	r->metrics.samples = state_u64(o, "samples", 0);
	if ((r->metrics.has_cgroup_memory = state_get(o, "cgroup_memory_kb") !=
	    NULL && state_get(o, "cgroup_memory_kb")->type !=
	    MSGPACK_OBJECT_NIL))
		r->metrics.cgroup_memory_kb = state_u64(o, "cgroup_memory_kb", 0);
	if ((r->metrics.has_cgroup_cpu = state_get(o, "cgroup_cpu_usage_ms") !=
	    NULL && state_get(o, "cgroup_cpu_usage_ms")->type !=
	    MSGPACK_OBJECT_NIL))
		r->metrics.cgroup_cpu_usage_ms = state_u64(o,
		    "cgroup_cpu_usage_ms", 0);
	state_str_into(m, "death_reason", r->death_reason,
	    sizeof r->death_reason);
	if ((o = state_get(m, "exit_code")) != NULL &&
	    (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)) {
		r->exited = 1;
		r->exit_code = (int)o->via.i64;
	}
	r->exit_signal = state_i64(m, "exit_signal", 0);
	r->core_dumped = state_bool(m, "core_dumped");
	r->failure_reason = state_str(m, "failure_reason");
	r->failure_info = state_str(m, "failure_info");
	r->failure_discarded = state_u64(m, "failure_discarded", 0);
	r->dump_dir = state_str(m, "dump_dir");
	r->died_at_ms = state_i64(m, "died_at_ms", 0);
	r->exit_status_lost = state_bool(m, "exit_status_lost");
	return r;
}
