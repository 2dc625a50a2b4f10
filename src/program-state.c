/*
 * program-state.c: declared programs across a re-exec. Each keeps the
 * config it was declared with (not what the config dir says now: only
 * ward.update applies that), its state, its restart history and timers
 * with their time left, and its instance by id (restored before it). A
 * program in BACKOFF restarts when it would have; one RUNNING stays
 * RUNNING on the same instance.
 *
 * layer: programs (program.c's own part; calls instance.c's lookup and
 * state.c)
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ward.h"

static void
program_state_save_conf(msgpack_packer *pk, const struct conf_program *cp)
{
	const struct program_policy *pp;
	int k;

	if (cp == NULL) {
		msgpack_pack_nil(pk);
		return;
	}
	pp = &cp->policy;
	msgpack_pack_map(pk, 22);
	codec_pack_kv_str(pk, "name", cp->name);
	codec_pack_kv_str(pk, "file", cp->file);
	codec_pack_kv_int(pk, "line", cp->line);
	state_pack_kv_bin(pk, "spec", cp->spec, cp->speclen);
	codec_pack_kv_bool(pk, "autostart", pp->autostart);
	codec_pack_kv_uint(pk, "restart", pp->restart);
	state_pack_kv_strv(pk, "restart_on", pp->restart_on);
	codec_pack_kv_uint(pk, "backoff_initial_ms", pp->backoff_initial_ms);
	codec_pack_kv_uint(pk, "backoff_max_ms", pp->backoff_max_ms);
	codec_pack_kv_uint(pk, "backoff_reset_ms", pp->backoff_reset_ms);
	codec_pack_kv_uint(pk, "max_restarts", pp->max_restarts);
	codec_pack_kv_uint(pk, "restart_window_ms", pp->restart_window_ms);
	codec_pack_kv_uint(pk, "startsecs_ms", pp->startsecs_ms);
	codec_pack_kv_bool(pk, "readiness_notify", pp->readiness_notify);
	state_pack_kv_strv(pk, "after", pp->after);
	state_pack_kv_strv(pk, "requires", pp->requires);
	codec_pack_key(pk, "success_codes");
	msgpack_pack_array(pk, 8);
	for (k = 0; k < 8; k++)
		msgpack_pack_uint32(pk, pp->success_codes[k]);
	codec_pack_kv_int(pk, "stop_signal", pp->stop_signal);
	codec_pack_kv_uint(pk, "stop_timeout_ms", pp->stop_timeout_ms);
	/* Room for later keys without a version bump. */
	codec_pack_kv_uint(pk, "version", 1);
	codec_pack_kv_bool(pk, "declared", 1);
	codec_pack_kv_uint(pk, "speclen", cp->speclen);
}

static struct conf_program *
program_state_restore_conf(const msgpack_object *m)
{
	struct program_policy *pp;
	struct conf_program *cp;
	const msgpack_object *a;
	const char *spec;
	size_t n, k;

	if (m == NULL || m->type != MSGPACK_OBJECT_MAP ||
	    (cp = calloc(1, sizeof *cp)) == NULL)
		return NULL;
	pp = &cp->policy;
	cp->name = state_str(m, "name");
	cp->file = state_str(m, "file");
	cp->line = state_i64(m, "line", 0);
	spec = state_bin(m, "spec", &n);
	if (cp->name == NULL || cp->file == NULL || spec == NULL ||
	    (cp->spec = malloc(n)) == NULL) {
		conf_program_free(cp);
		return NULL;
	}
	memcpy(cp->spec, spec, n);
	cp->speclen = n;
	pp->autostart = state_bool(m, "autostart");
	pp->restart = state_u64(m, "restart", RESTART_ON_FAILURE);
	if (pp->restart > RESTART_ALWAYS)
		pp->restart = RESTART_ON_FAILURE;
	pp->restart_on = state_strv(m, "restart_on");
	pp->backoff_initial_ms = state_u64(m, "backoff_initial_ms", 1000);
	pp->backoff_max_ms = state_u64(m, "backoff_max_ms", 60000);
	pp->backoff_reset_ms = state_u64(m, "backoff_reset_ms", 0);
	/* startretries has no cap (as in supervisord): only the field's. */
	pp->max_restarts = state_u64(m, "max_restarts", 0) > UINT32_MAX ?
	    UINT32_MAX : state_u64(m, "max_restarts", 0);
	pp->restart_window_ms = state_u64(m, "restart_window_ms", 0);
	pp->startsecs_ms = state_u64(m, "startsecs_ms", 0);
	pp->readiness_notify = state_bool(m, "readiness_notify");
	pp->after = state_strv(m, "after");
	pp->requires = state_strv(m, "requires");
	a = state_array(m, "success_codes", &n);
	for (k = 0; k < n && k < 8; k++)
		pp->success_codes[k] = a[k].via.u64;
	pp->stop_signal = state_i64(m, "stop_signal", SIGTERM);
	pp->stop_timeout_ms = state_u64(m, "stop_timeout_ms", STOP_TIMEOUT_MS);
	return cp;
}

void
program_state_save(msgpack_packer *pk, struct program *p)
{
	size_t k;

	msgpack_pack_map(pk, 14);
	codec_pack_key(pk, "conf");
	program_state_save_conf(pk, p->conf);
	codec_pack_key(pk, "next_conf");
	program_state_save_conf(pk, p->next_conf);
	codec_pack_kv_uint(pk, "state", p->state);
	codec_pack_kv_uint(pk, "inst", p->inst != NULL ? p->inst->id : 0);
	codec_pack_kv_uint(pk, "name_holder", p->name_holder);
	codec_pack_kv_uint(pk, "attempt", p->attempt);
	codec_pack_key(pk, "restarts");
	msgpack_pack_array(pk, p->nrestarts);
	for (k = 0; k < p->nrestarts; k++)
		msgpack_pack_double(pk, p->restarts[k]);
	codec_pack_kv_uint(pk, "restarts_head", p->restarts_head);
	codec_pack_kv_uint(pk, "restart_count", p->restart_count);
	codec_pack_kv_str(pk, "fatal_reason", p->fatal_reason);
	codec_pack_kv_bool(pk, "removing", p->removing);
	state_pack_kv_timer(pk, "backoff_t", &p->backoff_t);
	state_pack_kv_timer(pk, "startsecs_t", &p->startsecs_t);
	state_pack_kv_timer(pk, "apply_t", &p->apply_t);
}

/* Read one program back, after the instances; NULL if it cannot be. */
struct program *
program_state_restore(const msgpack_object *m)
{
	struct conf_program *cp;
	const msgpack_object *a;
	struct program *p;
	size_t n, k;
	uint64_t id;

	if ((cp = program_state_restore_conf(state_get(m, "conf"))) == NULL)
		return NULL;
	if (program_find(cp->name) != NULL || (p = calloc(1, sizeof *p)) == NULL) {
		conf_program_free(cp);
		return NULL;
	}
	p->conf = cp;
	p->next_conf = program_state_restore_conf(state_get(m, "next_conf"));
	p->state = state_u64(m, "state", PROGRAM_STOPPED);
	if (p->state > PROGRAM_FATAL)
		p->state = PROGRAM_STOPPED;
	/* An instance runs one program: a second naming it would keep a
	 * pointer that the instance's removal does not clear. */
	if ((id = state_u64(m, "inst", 0)) != 0 &&
	    (p->inst = instance_find_id(id)) != NULL) {
		if (p->inst->program == NULL)
			p->inst->program = p;
		else
			p->inst = NULL;
	}
	p->name_holder = state_u64(m, "name_holder", 0);
	p->attempt = state_u64(m, "attempt", 0);
	a = state_array(m, "restarts", &n);
	if (n > 0 && n == (size_t)cp->policy.max_restarts + 1 &&
	    (p->restarts = calloc(n, sizeof *p->restarts)) != NULL) {
		for (k = 0; k < n; k++)
			p->restarts[k] = a[k].type == MSGPACK_OBJECT_FLOAT64 ?
			    a[k].via.f64 : 0.;
		p->nrestarts = n;
		p->restarts_head = state_u64(m, "restarts_head", 0) % n;
	}
	p->restart_count = state_u64(m, "restart_count", 0);
	p->fatal_reason = state_str(m, "fatal_reason");
	p->removing = state_bool(m, "removing");
	program_adopt(p);
	state_timer(m, "backoff_t", &p->backoff_t);
	state_timer(m, "startsecs_t", &p->startsecs_t);
	state_timer(m, "apply_t", &p->apply_t);
	return p;
}
