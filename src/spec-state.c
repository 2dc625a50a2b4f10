/*
 * spec-state.c: an instance's spec (spec.c's struct instance_spec) written
 * into wardd's state and read back (state.c's toolkit), field by field: a
 * re-exec must run the same payload the same way, so nothing is re-parsed
 * or re-resolved (PATH, the requester's limits) from what may have changed
 * since. A spec that cannot be read back whole is refused: an instance
 * must not lose, say, the limits a non-admin's payload runs under.
 *
 * layer: engine (the spec's owners: spec.c, output-spec.c, userlimits.c,
 * spec-limits.c)
 */
#include "config.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "ward.h"

static void
spec_state_pack_rlimit(msgpack_packer *pk, int resource, const struct rlimit *l)
{
	msgpack_pack_array(pk, 3);
	msgpack_pack_int(pk, resource);
	msgpack_pack_uint64(pk, l->rlim_cur);
	msgpack_pack_uint64(pk, l->rlim_max);
}

static int
spec_state_read_rlimit(const msgpack_object *o, int *resource, struct rlimit *l)
{
	const msgpack_object *a;

	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 3)
		return -1;
	a = o->via.array.ptr;
	if (a[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    a[0].via.u64 >= RLIM_NLIMITS ||
	    a[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    a[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return -1;
	*resource = (int)a[0].via.u64;
	l->rlim_cur = a[1].via.u64;
	l->rlim_max = a[2].via.u64;
	return 0;
}

static void
spec_state_pack_output(msgpack_packer *pk, const struct output_config *oc)
{
	msgpack_pack_map(pk, 10);
	codec_pack_kv_str(pk, "stdout_logfile", oc->logfile[OUTPUT_STDOUT]);
	codec_pack_kv_str(pk, "stderr_logfile", oc->logfile[OUTPUT_STDERR]);
	codec_pack_kv_bool(pk, "journal", oc->journal);
	codec_pack_kv_bool(pk, "drop", oc->drop);
	codec_pack_kv_uint(pk, "ring_bytes", oc->ring_bytes);
	codec_pack_kv_uint(pk, "rate_lines", oc->rate_lines);
	codec_pack_kv_uint(pk, "backups", oc->backups);
	codec_pack_kv_uint(pk, "maxbytes", oc->maxbytes);
	codec_pack_kv_bool(pk, "captured", 1);
	codec_pack_kv_bool(pk, "redirect_stderr", oc->redirect_stderr);
}

/* A log file path as output-spec.c accepts it: output-file.c opens and
 * rotates it by its directory and the name after the last '/'. */
static int
spec_state_logfile_ok(const char *p)
{
	size_t n = p != NULL ? strlen(p) : 0;

	return p == NULL || (p[0] == '/' && p[n - 1] != '/' &&
	    n < PATH_MAX - 16);
}

/* The capture config; NULL if out of memory or a log file path is bad. */
static struct output_config *
spec_state_read_output(const msgpack_object *m)
{
	struct output_config *oc;
	int k;

	if ((oc = calloc(1, sizeof *oc)) == NULL)
		return NULL;
	oc->logfile[OUTPUT_STDOUT] = state_str(m, "stdout_logfile");
	oc->logfile[OUTPUT_STDERR] = state_str(m, "stderr_logfile");
	for (k = 0; k < OUTPUT_NSTREAMS; k++) {
		if (!spec_state_logfile_ok(oc->logfile[k])) {
			output_config_free(oc);
			return NULL;
		}
	}
	oc->journal = state_bool(m, "journal");
	oc->drop = state_bool(m, "drop");
	oc->ring_bytes = state_u64(m, "ring_bytes", OUTPUT_RING_DEFAULT);
	if (oc->ring_bytes > OUTPUT_RING_MAX)
		oc->ring_bytes = OUTPUT_RING_MAX;
	oc->rate_lines = state_u64(m, "rate_lines", OUTPUT_RATE_DEFAULT);
	oc->backups = state_u64(m, "backups", OUTPUT_BACKUPS_DEFAULT);
	oc->maxbytes = state_u64(m, "maxbytes", OUTPUT_MAXBYTES_DEFAULT);
	oc->redirect_stderr = state_bool(m, "redirect_stderr");
	return oc;
}

static void
spec_state_pack_user_limits(msgpack_packer *pk, const struct user_limits *ul)
{
	int r;

	msgpack_pack_map(pk, 4);
	codec_pack_key(pk, "rlimits");
	msgpack_pack_array(pk, RLIM_NLIMITS);
	for (r = 0; r < RLIM_NLIMITS; r++)
		spec_state_pack_rlimit(pk, r, &ul->rlim[r]);
	codec_pack_kv_int(pk, "nice", ul->nice);
	codec_pack_kv_int(pk, "policy", ul->policy);
	codec_pack_kv_int(pk, "ioprio", ul->ioprio);
}

static struct user_limits *
spec_state_read_user_limits(const msgpack_object *m)
{
	const msgpack_object *a;
	struct user_limits *ul;
	struct rlimit l;
	size_t n, j;
	int r;

	a = state_array(m, "rlimits", &n);
	if (n != RLIM_NLIMITS || (ul = calloc(1, sizeof *ul)) == NULL)
		return NULL;
	for (j = 0; j < n; j++) {
		if (spec_state_read_rlimit(&a[j], &r, &l) == -1) {
			free(ul);
			return NULL;
		}
		ul->rlim[r] = l;
	}
	ul->nice = state_i64(m, "nice", 0);
	ul->policy = state_i64(m, "policy", 0);
	ul->ioprio = state_i64(m, "ioprio", 0);
	return ul;
}

/* The spec as one map (fds: passed fds a first run has yet to get). */
void
spec_state_save(msgpack_packer *pk, const struct instance_spec *s)
{
	size_t k;

	msgpack_pack_map(pk, 33);
	codec_pack_kv_str(pk, "name", s->name);
	state_pack_kv_strv(pk, "argv", s->argv);
	codec_pack_kv_str(pk, "exec_path", s->exec_path);
	state_pack_kv_strv(pk, "env", s->env);
	codec_pack_kv_str(pk, "cwd", s->cwd);
	codec_pack_kv_bool(pk, "detect_hangup", s->detect_hangup);
	codec_pack_kv_uint(pk, "hangup_timeout_ms", s->hangup_timeout_ms);
	codec_pack_key(pk, "exit_codes");
	msgpack_pack_array(pk, s->nexit_codes);
	for (k = 0; k < s->nexit_codes; k++) {
		msgpack_pack_array(pk, 2);
		msgpack_pack_int(pk, s->exit_codes[k].code);
		codec_pack_str(pk, s->exit_codes[k].reason);
	}
	codec_pack_kv_str(pk, "profile", s->profile);
	codec_pack_kv_str(pk, "rss_mapping", s->rss_mapping);
	codec_pack_key(pk, "fds");
	msgpack_pack_array(pk, s->nfds);
	for (k = 0; k < s->nfds; k++) {
		msgpack_pack_map(pk, 2);
		state_pack_kv_fd(pk, "fd", s->fds[k].fd);
		codec_pack_kv_int(pk, "target", s->fds[k].target);
	}
	codec_pack_kv_bool(pk, "passed_fds", s->passed_fds);
	codec_pack_kv_bool(pk, "notify_systemd", s->notify_systemd);
	codec_pack_kv_uint(pk, "watchdog_ms", s->watchdog_ms);
	codec_pack_kv_bool(pk, "has_user", s->has_user);
	codec_pack_kv_uint(pk, "user_uid", s->user_uid);
	codec_pack_kv_uint(pk, "user_gid", s->user_gid);
	codec_pack_key(pk, "output");
	if (s->output != NULL)
		spec_state_pack_output(pk, s->output);
	else
		msgpack_pack_nil(pk);
	codec_pack_key(pk, "rlimits");
	msgpack_pack_array(pk, s->nrlimits);
	for (k = 0; k < s->nrlimits; k++)
		spec_state_pack_rlimit(pk, s->rlimits[k].resource,
		    &s->rlimits[k].lim);
	codec_pack_kv_uint(pk, "rlimit_mask", s->rlimit_mask);
	codec_pack_kv_bool(pk, "has_group", s->has_group);
	codec_pack_kv_uint(pk, "group_gid", s->group_gid);
	codec_pack_kv_bool(pk, "has_umask", s->has_umask);
	codec_pack_kv_uint(pk, "umask", s->umask);
	codec_pack_kv_bool(pk, "has_nice", s->has_nice);
	codec_pack_kv_int(pk, "nice", s->nice);
	codec_pack_kv_bool(pk, "has_oom_score_adj", s->has_oom_score_adj);
	codec_pack_kv_int(pk, "oom_score_adj", s->oom_score_adj);
	codec_pack_kv_bool(pk, "clean_env", s->clean_env);
	codec_pack_kv_bool(pk, "control", s->control);
	codec_pack_key(pk, "user_limits");
	if (s->user_limits != NULL)
		spec_state_pack_user_limits(pk, s->user_limits);
	else
		msgpack_pack_nil(pk);
	codec_pack_key(pk, "limits");
	spec_limits_pack(pk, s->limits);	/* spec-limits.c: as status shows them */
	codec_pack_key(pk, "hooks");
	spec_hooks_save(pk, s->hooks);	/* spec-hooks.c's */
}

/* Fill s from m; -1 (s freed) if it cannot be read back whole. */
int
spec_state_restore(const msgpack_object *m, struct instance_spec *s)
{
	const msgpack_object *a, *o;
	size_t n, k;

	memset(s, 0, sizeof *s);
	s->name = state_str(m, "name");
	s->argv = state_strv(m, "argv");
	s->exec_path = state_str(m, "exec_path");
	s->env = state_strv(m, "env");
	s->cwd = state_str(m, "cwd");
	if (s->name == NULL || s->argv == NULL || s->argv[0] == NULL ||
	    s->exec_path == NULL)
		goto fail;
	spec_share_exec_path(s);
	s->detect_hangup = state_bool(m, "detect_hangup");
	s->hangup_timeout_ms = state_u64(m, "hangup_timeout_ms", HANGUP_TIMEOUT_MS);
	a = state_array(m, "exit_codes", &n);
	if (n > EXIT_CODES_MAX)
		goto fail;
	if (n > 0 && (s->exit_codes = calloc(n, sizeof *s->exit_codes)) == NULL)
		goto fail;
	for (k = 0; k < n; k++) {
		o = &a[k];
		if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 2 ||
		    !codec_is_str(&o->via.array.ptr[1]) ||
		    o->via.array.ptr[1].via.str.size > REASON_MAX)
			goto fail;
		s->exit_codes[k].code = (int)o->via.array.ptr[0].via.i64;
		memcpy(s->exit_codes[k].reason, o->via.array.ptr[1].via.str.ptr,
		    o->via.array.ptr[1].via.str.size);
		s->nexit_codes++;
	}
	s->profile = state_str(m, "profile");
	s->rss_mapping = state_str(m, "rss_mapping");
	a = state_array(m, "fds", &n);
	if (n > REQUEST_MAX_FDS)
		goto fail;
	if (n > 0 && (s->fds = calloc(n, sizeof *s->fds)) == NULL)
		goto fail;
	for (k = 0; k < n; k++) {
		s->fds[k].fd = state_fd(&a[k], "fd");
		s->fds[k].target = state_i64(&a[k], "target", -1);
		s->nfds++;
	}
	s->passed_fds = state_bool(m, "passed_fds");
	s->notify_systemd = state_bool(m, "notify_systemd");
	s->watchdog_ms = state_u64(m, "watchdog_ms", 0);
	s->has_user = state_bool(m, "has_user");
	s->user_uid = state_u64(m, "user_uid", 0);
	s->user_gid = state_u64(m, "user_gid", 0);
	if ((o = state_get(m, "output")) != NULL && o->type == MSGPACK_OBJECT_MAP &&
	    (s->output = spec_state_read_output(o)) == NULL)
		goto fail;
	a = state_array(m, "rlimits", &n);
	if (n > RLIM_NLIMITS)
		goto fail;
	if (n > 0 && (s->rlimits = calloc(n, sizeof *s->rlimits)) == NULL)
		goto fail;
	for (k = 0; k < n; k++) {
		if (spec_state_read_rlimit(&a[k], &s->rlimits[k].resource,
		    &s->rlimits[k].lim) == -1)
			goto fail;
		s->nrlimits++;
	}
	s->rlimit_mask = state_u64(m, "rlimit_mask", 0);
	s->has_group = state_bool(m, "has_group");
	s->group_gid = state_u64(m, "group_gid", 0);
	s->has_umask = state_bool(m, "has_umask");
	s->umask = state_u64(m, "umask", 022);
	s->has_nice = state_bool(m, "has_nice");
	s->nice = state_i64(m, "nice", 0);
	s->has_oom_score_adj = state_bool(m, "has_oom_score_adj");
	s->oom_score_adj = state_i64(m, "oom_score_adj", 0);
	s->clean_env = state_bool(m, "clean_env");
	s->control = state_bool(m, "control");
	if ((o = state_get(m, "user_limits")) != NULL &&
	    o->type == MSGPACK_OBJECT_MAP &&
	    (s->user_limits = spec_state_read_user_limits(o)) == NULL)
		goto fail;
	if (spec_limits_restore(state_get(m, "limits"), &s->limits) == -1)
		goto fail;
	if (spec_hooks_restore(state_get(m, "hooks"), &s->hooks) == -1)
		goto fail;
	return 0;

fail:
	spec_free(s);
	return -1;
}
