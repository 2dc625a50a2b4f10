/*
 * libward-calls.c: the typed calls of ward.h, one per method of the
 * protocol (proto/ward-proto.h): each packs its params, makes the call
 * through ward_call (libward.c) and decodes the result (libward-decode.c).
 * An instance's spec, with the fds it passes, is packed here too.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ward.h"
#include "ward-proto.h"
#include "libward-int.h"

/* ---- typed calls */

void
ward_pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);

	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

/* {id: N} or {name: S}, plus extra pairs the caller packs after. */
void
ward_pack_ident(msgpack_packer *pk, const char *ident, size_t extra)
{
	const char *p;

	for (p = ident; *p >= '0' && *p <= '9'; p++)
		;
	msgpack_pack_map(pk, 1 + extra);
	if (*ident != '\0' && *p == '\0') {
		ward_pack_str(pk, "id");
		msgpack_pack_uint64(pk, strtoull(ident, NULL, 10));
	} else {
		ward_pack_str(pk, "name");
		ward_pack_str(pk, ident);
	}
}

/* Call with params p; the reply is freed unless the caller keeps it. */
static int
ward_call_params(struct ward *w, const char *method, struct ward_params *p,
    struct ward_reply *r)
{
	int rc;

	rc = ward_call(w, method, p ? p->sbuf.data : NULL, p ? p->sbuf.size : 0, r);
	if (p != NULL)
		ward_params_free(p);
	return rc;
}

/* A call whose result is only {ok: true}. */
static int
ward_call_simple(struct ward *w, const char *method, struct ward_params *p)
{
	struct ward_reply r;
	int rc = ward_call_params(w, method, p, &r);

	ward_reply_free(&r);
	return rc;
}

/*
 * The handshake: libward says which protocol it speaks; a wardd that does
 * not speak it answers unsupported_protocol. A wardd older than the key
 * (it refuses unknown keys with invalid_argument) speaks protocol 1, the
 * only one so far: asked again without it.
 */
WARD_EXPORT int
ward_hello(struct ward *w, struct ward_hello *h)
{
	struct ward_params p;
	struct ward_reply r;
	const msgpack_object *a;
	uint32_t k;
	int rc;

	memset(h, 0, sizeof *h);
	ward_params_init(&p);
	msgpack_pack_map(&p.pk, 1);
	ward_pack_str(&p.pk, "protocol");
	msgpack_pack_uint32(&p.pk, WARD_PROTOCOL_VERSION);
	rc = ward_call_params(w, WARD_M_HELLO, &p, &r);
	if (rc == -1 && strcmp(ward_error(w)->code, WARD_E_INVALID_ARGUMENT) == 0 &&
	    WARD_PROTOCOL_VERSION == 1) {
		ward_reply_free(&r);
		rc = ward_call(w, WARD_M_HELLO, NULL, 0, &r);
	}
	if (rc == -1) {
		ward_reply_free(&r);
		return -1;
	}
	ward_copy_str(h->server, sizeof h->server, ward_map_get(&r.result, "server"));
	ward_copy_str(h->version, sizeof h->version, ward_map_get(&r.result, "version"));
	h->protocol = ward_get_u64(&r.result, "protocol");
	if ((a = ward_map_get(&r.result, "protocols")) != NULL &&
	    a->type == MSGPACK_OBJECT_ARRAY) {
		for (k = 0; k < a->via.array.size && h->nprotocols <
		    sizeof h->protocols / sizeof h->protocols[0]; k++) {
			if (a->via.array.ptr[k].type == MSGPACK_OBJECT_POSITIVE_INTEGER)
				h->protocols[h->nprotocols++] =
				    a->via.array.ptr[k].via.u64;
		}
	} else
		h->protocols[h->nprotocols++] = h->protocol;
	h->pid = ward_get_i64(&r.result, "pid");
	h->uid = ward_get_u64(&r.result, "uid");
	h->admin = ward_get_bool(&r.result, "admin");
	ward_reply_free(&r);
	return 0;
}

WARD_EXPORT int
ward_stats(struct ward *w, struct ward_stats *s)
{
	struct ward_reply r;

	memset(s, 0, sizeof *s);
	if (ward_call(w, WARD_M_STATS, NULL, 0, &r) == -1) {
		ward_reply_free(&r);
		return -1;
	}
#define F(k) s->k = ward_get_u64(&r.result, #k)
	F(instances); F(running); F(clients); F(subscribers); F(created);
	F(started); F(died); F(spawn_failed); F(removed); F(metrics_ticks);
	F(rss_kb);
#undef F
	ward_reply_free(&r);
	return 0;
}

WARD_EXPORT int
ward_shutdown(struct ward *w, int kill_instances)
{
	struct ward_params p;

	ward_params_init(&p);
	msgpack_pack_map(&p.pk, 1);
	ward_pack_str(&p.pk, "kill_instances");
	if (kill_instances)
		msgpack_pack_true(&p.pk);
	else
		msgpack_pack_false(&p.pk);
	return ward_call_simple(w, WARD_M_SHUTDOWN, &p);
}

WARD_EXPORT void
ward_spec_init(struct ward_spec *s)
{
	memset(s, 0, sizeof *s);
	s->stdin_fd = s->stdout_fd = s->stderr_fd = -1;
}

extern char **environ;

WARD_EXPORT size_t
ward_caller_env(const char *const *env, const char **out)
{
	static const char *const names[WARD_CALLER_ENV_MAX] = {
		"HOME", "USER", "LOGNAME", "LANG", "TERM"
	};
	const char *const *e;
	size_t k, n = 0, kl;
	char **v;

	for (k = 0; k < WARD_CALLER_ENV_MAX; k++) {
		kl = strlen(names[k]);
		for (e = env; e != NULL && *e != NULL; e++) {
			if (strncmp(*e, names[k], kl) == 0 && (*e)[kl] == '=')
				break;
		}
		if (e != NULL && *e != NULL)
			continue;	/* the caller set it */
		for (v = environ; *v != NULL; v++) {
			if (strncmp(*v, names[k], kl) == 0 && (*v)[kl] == '=') {
				out[n++] = *v;
				break;
			}
		}
	}
	return n;
}

static void
ward_pack_env_entry(msgpack_packer *pk, const char *e)
{
	const char *eq = strchr(e, '=');
	size_t kl = eq ? (size_t)(eq - e) : strlen(e);

	msgpack_pack_str(pk, kl);
	msgpack_pack_str_body(pk, e, kl);
	ward_pack_str(pk, eq ? eq + 1 : "");
}

static void
ward_pack_argv(msgpack_packer *pk, const char *key, const char *const *argv)
{
	size_t k;

	if (key != NULL)
		ward_pack_str(pk, key);
	for (k = 0; argv[k] != NULL; k++)
		;
	msgpack_pack_array(pk, k);
	for (k = 0; argv[k] != NULL; k++)
		ward_pack_str(pk, argv[k]);
}

/* The hook keys of s (pre_start, post_death, sidecars, the timeouts). */
static size_t
ward_spec_hook_keys(const struct ward_spec *s)
{
	return !!s->pre_start + !!s->pre_start_timeout_ms + !!s->post_death +
	    !!s->post_death_timeout_ms + !!s->nsidecars;
}

static void
ward_pack_spec_hooks(msgpack_packer *pk, const struct ward_spec *s)
{
	size_t k;

	if (s->pre_start != NULL)
		ward_pack_argv(pk, "pre_start", s->pre_start);
	if (s->post_death != NULL)
		ward_pack_argv(pk, "post_death", s->post_death);
	if (s->pre_start_timeout_ms) {
		ward_pack_str(pk, "pre_start_timeout_ms");
		msgpack_pack_uint32(pk, s->pre_start_timeout_ms);
	}
	if (s->post_death_timeout_ms) {
		ward_pack_str(pk, "post_death_timeout_ms");
		msgpack_pack_uint32(pk, s->post_death_timeout_ms);
	}
	if (s->nsidecars) {
		ward_pack_str(pk, "sidecars");
		msgpack_pack_array(pk, s->nsidecars);
		for (k = 0; k < s->nsidecars; k++)
			ward_pack_argv(pk, NULL, s->sidecars[k]);
	}
}

/*
 * Pack a spec; the fds to pass go into fds[] and the params refer to them
 * by their index there. The caller's HOME and the like join env
 * (ward_caller_env).
 */
static int
ward_pack_spec(struct ward *w, const struct ward_spec *s, struct ward_params *p,
    int *fds, size_t *nfds)
{
	const char *caller[WARD_CALLER_ENV_MAX];
	size_t n = 1, k, ncaller, nlimits = 0;
	const char *const *e;

	*nfds = 0;
	for (e = s->limits; e != NULL && *e != NULL; e++, nlimits++) {
		if (strchr(*e, '=') == NULL)
			return ward_fail(w, "invalid_argument", "limits are "
			    "KEY=VALUE, such as memory_max=512M");
	}
	ncaller = ward_caller_env(s->env, caller);
	if (s->argv == NULL || s->argv[0] == NULL)
		return ward_fail(w, "invalid_argument", "argv is required");
	if (s->nfds + 3 > WARD_MAX_FDS)
		return ward_fail(w, "invalid_argument", "too many fds");
	n += !!s->name + (s->env != NULL || ncaller > 0) + !!s->cwd +
	    !!s->detect_hangup + !!s->clean_env +
	    !!s->hangup_timeout_ms + !!s->nexit_codes + !!s->profile +
	    !!s->rss_mapping + !!s->user + (s->stdin_fd >= 0) +
	    (s->stdout_fd >= 0) + (s->stderr_fd >= 0) + !!s->nfds +
	    !!s->notify + !!s->watchdog_ms + !!s->capture_output + nlimits +
	    !!s->control + ward_spec_hook_keys(s);
	ward_params_init(p);
	msgpack_pack_map(&p->pk, n);
	ward_pack_argv(&p->pk, "argv", s->argv);
	ward_pack_spec_hooks(&p->pk, s);
#define KV_STR(key, v) if (v) { ward_pack_str(&p->pk, key); ward_pack_str(&p->pk, v); }
	KV_STR("name", s->name);
	KV_STR("cwd", s->cwd);
	KV_STR("profile", s->profile);
	KV_STR("rss_mapping", s->rss_mapping);
	KV_STR("user", s->user);
	KV_STR("notify", s->notify);
#undef KV_STR
	if (s->watchdog_ms) {
		ward_pack_str(&p->pk, "watchdog_ms");
		msgpack_pack_uint32(&p->pk, s->watchdog_ms);
	}
	if (s->env != NULL || ncaller > 0) {
		for (k = 0, e = s->env; e != NULL && *e != NULL; e++)
			k++;
		ward_pack_str(&p->pk, "env");
		msgpack_pack_map(&p->pk, k + ncaller);
		for (e = s->env; e != NULL && *e != NULL; e++)
			ward_pack_env_entry(&p->pk, *e);
		for (k = 0; k < ncaller; k++)
			ward_pack_env_entry(&p->pk, caller[k]);
	}
	/* The limit keys: each a key of its own, its value as text. */
	for (e = s->limits; e != NULL && *e != NULL; e++)
		ward_pack_env_entry(&p->pk, *e);
	if (s->clean_env) {
		ward_pack_str(&p->pk, "clean_env");
		msgpack_pack_true(&p->pk);
	}
	if (s->control) {
		ward_pack_str(&p->pk, "control");
		msgpack_pack_true(&p->pk);
	}
	if (s->detect_hangup) {
		ward_pack_str(&p->pk, "detect_hangup");
		msgpack_pack_true(&p->pk);
	}
	if (s->capture_output) {
		ward_pack_str(&p->pk, "capture_output");
		msgpack_pack_true(&p->pk);
	}
	if (s->hangup_timeout_ms) {
		ward_pack_str(&p->pk, "hangup_timeout_ms");
		msgpack_pack_uint32(&p->pk, s->hangup_timeout_ms);
	}
	if (s->nexit_codes) {
		ward_pack_str(&p->pk, "exit_codes");
		msgpack_pack_map(&p->pk, s->nexit_codes);
		for (k = 0; k < s->nexit_codes; k++) {
			msgpack_pack_int(&p->pk, s->exit_codes[k].code);
			ward_pack_str(&p->pk, s->exit_codes[k].reason);
		}
	}
#define KV_FD(key, fd) if ((fd) >= 0) {					\
	ward_pack_str(&p->pk, key);					\
	msgpack_pack_uint64(&p->pk, *nfds);				\
	fds[(*nfds)++] = (fd);						\
}
	KV_FD("stdin", s->stdin_fd);
	KV_FD("stdout", s->stdout_fd);
	KV_FD("stderr", s->stderr_fd);
#undef KV_FD
	if (s->nfds) {
		ward_pack_str(&p->pk, "fds");
		msgpack_pack_array(&p->pk, s->nfds);
		for (k = 0; k < s->nfds; k++) {
			msgpack_pack_map(&p->pk, 2);
			ward_pack_str(&p->pk, "fd");
			msgpack_pack_uint64(&p->pk, *nfds);
			ward_pack_str(&p->pk, "target");
			msgpack_pack_int(&p->pk, s->fds[k].target);
			fds[(*nfds)++] = s->fds[k].fd;
		}
	}
	return 0;
}

static int
ward_create_or_run(struct ward *w, const char *method, const struct ward_spec *s,
    uint64_t *id)
{
	struct ward_params p;
	struct ward_reply r;
	int fds[WARD_MAX_FDS];
	size_t nfds;
	int rc;

	if (ward_pack_spec(w, s, &p, fds, &nfds) == -1)
		return -1;
	rc = ward_call_fds(w, method, p.sbuf.data, p.sbuf.size, fds, nfds, &r);
	ward_params_free(&p);
	if (rc == 0 && id != NULL)
		*id = ward_get_u64(&r.result, "id");
	ward_reply_free(&r);
	return rc;
}

WARD_EXPORT int
ward_instance_create(struct ward *w, const struct ward_spec *s, uint64_t *id)
{
	return ward_create_or_run(w, WARD_M_CREATE, s, id);
}

WARD_EXPORT int
ward_instance_run(struct ward *w, const struct ward_spec *s, uint64_t *id)
{
	return ward_create_or_run(w, WARD_M_RUN, s, id);
}

static int
ward_ident_call(struct ward *w, const char *method, const char *ident)
{
	struct ward_params p;

	ward_params_init(&p);
	ward_pack_ident(&p.pk, ident, 0);
	return ward_call_simple(w, method, &p);
}

WARD_EXPORT int
ward_instance_start(struct ward *w, const char *ident)
{
	return ward_ident_call(w, WARD_M_START, ident);
}

WARD_EXPORT int
ward_instance_suspend(struct ward *w, const char *ident)
{
	return ward_ident_call(w, WARD_M_SUSPEND, ident);
}

WARD_EXPORT int
ward_instance_resume(struct ward *w, const char *ident)
{
	return ward_ident_call(w, WARD_M_RESUME, ident);
}

WARD_EXPORT int
ward_instance_remove(struct ward *w, const char *ident)
{
	return ward_ident_call(w, WARD_M_REMOVE, ident);
}

WARD_EXPORT int
ward_instance_status(struct ward *w, const char *ident, struct ward_status *s)
{
	struct ward_params p;
	struct ward_reply r;

	memset(s, 0, sizeof *s);
	ward_params_init(&p);
	ward_pack_ident(&p.pk, ident, 0);
	if (ward_call_params(w, WARD_M_STATUS, &p, &r) == -1) {
		ward_reply_free(&r);
		return -1;
	}
	ward_status_decode(&r.result, s);
	ward_reply_free(&r);
	return 0;
}

/*
 * The compact form (instance.list {compact: true}) is a third of the bytes;
 * a wardd from before it answers invalid_argument naming the key, and is
 * then asked for the plain form, on this connection from then on.
 */
WARD_EXPORT int
ward_instance_list(struct ward *w, const char *state, struct ward_status **out,
    size_t *n)
{
	struct ward_params p;
	struct ward_reply r;
	int compact = !ward_plain_list(w, 0), rc;

	*out = NULL;
	*n = 0;
	ward_params_init(&p);
	msgpack_pack_map(&p.pk, (state != NULL) + compact);
	if (state != NULL) {
		ward_pack_str(&p.pk, "state");
		ward_pack_str(&p.pk, state);
	}
	if (compact) {
		ward_pack_str(&p.pk, "compact");
		msgpack_pack_true(&p.pk);
	}
	rc = ward_call_params(w, WARD_M_LIST, &p, &r);
	if (rc == -1 && compact &&
	    strcmp(ward_error(w)->code, WARD_E_INVALID_ARGUMENT) == 0 &&
	    strstr(ward_error(w)->message, "'compact'") != NULL) {
		ward_reply_free(&r);
		ward_plain_list(w, 1);
		return ward_instance_list(w, state, out, n);
	}
	if (rc == -1) {
		ward_reply_free(&r);
		return -1;
	}
	rc = ward_status_list_decode(&r.result, out, n);
	ward_reply_free(&r);
	if (rc == -1)
		return ward_fail(w, "internal", "out of memory");
	return 0;
}

WARD_EXPORT int
ward_instance_kill(struct ward *w, const char *ident, int sig)
{
	struct ward_params p;

	ward_params_init(&p);
	ward_pack_ident(&p.pk, ident, 1);
	ward_pack_str(&p.pk, "signal");
	msgpack_pack_int(&p.pk, sig);
	return ward_call_simple(w, WARD_M_KILL, &p);
}

/*
 * A pidfd for the running main process of ident (owner or admin), which
 * came by SCM_RIGHTS with the answer; *pid (if not NULL) gets its pid.
 * Returns the fd (close on exec; the caller's to close) or -1.
 */
WARD_EXPORT int
ward_instance_pidfd(struct ward *w, const char *ident, pid_t *pid)
{
	struct ward_params p;
	struct ward_reply r;
	int fd;

	ward_drop_fds(w);	/* strays of raw calls: not this answer's */
	ward_params_init(&p);
	ward_pack_ident(&p.pk, ident, 0);
	if (ward_call_params(w, WARD_M_PIDFD, &p, &r) == -1) {
		ward_reply_free(&r);
		return -1;
	}
	if (pid != NULL)
		*pid = ward_get_i64(&r.result, "pid");
	ward_reply_free(&r);
	if ((fd = ward_take_fd(w)) == -1)
		return ward_fail(w, "protocol_error", "wardd's answer to %s "
		    "carried no fd", WARD_M_PIDFD);
	return fd;
}

WARD_EXPORT int
ward_instance_stop(struct ward *w, const char *ident, int timeout_ms)
{
	struct ward_params p;

	ward_params_init(&p);
	ward_pack_ident(&p.pk, ident, timeout_ms >= 0);
	if (timeout_ms >= 0) {
		ward_pack_str(&p.pk, "timeout_ms");
		msgpack_pack_int(&p.pk, timeout_ms);
	}
	return ward_call_simple(w, WARD_M_STOP, &p);
}

WARD_EXPORT int
ward_instance_payload(struct ward *w, const char *ident, const char *state)
{
	struct ward_params p;

	ward_params_init(&p);
	ward_pack_ident(&p.pk, ident, 1);
	ward_pack_str(&p.pk, "state");
	ward_pack_str(&p.pk, state);
	return ward_call_simple(w, WARD_M_PAYLOAD, &p);
}

WARD_EXPORT int
ward_instance_history(struct ward *w, const char *ident, size_t limit,
    struct ward_exit **out, size_t *n)
{
	struct ward_params p;
	struct ward_reply r;
	uint32_t i;

	*out = NULL;
	*n = 0;
	ward_params_init(&p);
	if (ident != NULL)
		ward_pack_ident(&p.pk, ident, limit > 0);
	else
		msgpack_pack_map(&p.pk, limit > 0);
	if (limit > 0) {
		ward_pack_str(&p.pk, "limit");
		msgpack_pack_uint64(&p.pk, limit);
	}
	if (ward_call_params(w, WARD_M_HISTORY, &p, &r) == -1) {
		ward_reply_free(&r);
		return -1;
	}
	if (r.result.type == MSGPACK_OBJECT_ARRAY && r.result.via.array.size > 0) {
		if ((*out = calloc(r.result.via.array.size, sizeof **out)) == NULL) {
			ward_reply_free(&r);
			return ward_fail(w, "internal", "out of memory");
		}
		for (i = 0; i < r.result.via.array.size; i++)
			ward_exit_decode(&r.result.via.array.ptr[i], &(*out)[i]);
		*n = r.result.via.array.size;
	}
	ward_reply_free(&r);
	return 0;
}

/* ---- declared programs, captured output */

static int
ward_changes_call(struct ward *w, const char *method, struct ward_changes *ch)
{
	struct ward_reply r;
	int rc;

	memset(ch, 0, sizeof *ch);
	if (ward_call(w, method, NULL, 0, &r) == -1) {
		ward_reply_free(&r);
		return -1;
	}
	rc = ward_changes_decode(&r.result, ch);
	ward_reply_free(&r);
	if (rc == -1)
		return ward_fail(w, "internal", "out of memory");
	return 0;
}

WARD_EXPORT int
ward_reread(struct ward *w, struct ward_changes *ch)
{
	return ward_changes_call(w, WARD_M_REREAD, ch);
}

WARD_EXPORT int
ward_update(struct ward *w, struct ward_changes *ch)
{
	return ward_changes_call(w, WARD_M_UPDATE, ch);
}

WARD_EXPORT int
ward_reload(struct ward *w, struct ward_changes *ch)
{
	return ward_changes_call(w, WARD_M_RELOAD, ch);
}

WARD_EXPORT int
ward_logrotate(struct ward *w, struct ward_logrotate_result *lr)
{
	struct ward_reply r;

	memset(lr, 0, sizeof *lr);
	if (ward_call(w, WARD_M_LOGROTATE, NULL, 0, &r) == -1) {
		ward_reply_free(&r);
		return -1;
	}
	lr->reopened = ward_get_u64(&r.result, "reopened");
	lr->failed = ward_get_u64(&r.result, "failed");
	ward_reply_free(&r);
	return 0;
}

WARD_EXPORT int
ward_instance_log(struct ward *w, const char *ident, const char *stream,
    size_t bytes, int follow, struct ward_log *log)
{
	const msgpack_object *data;
	struct ward_params p;
	struct ward_reply r;

	memset(log, 0, sizeof *log);
	ward_params_init(&p);
	ward_pack_ident(&p.pk, ident, (stream != NULL) + (bytes > 0) +
	    (follow >= 0));
	if (stream != NULL) {
		ward_pack_str(&p.pk, "stream");
		ward_pack_str(&p.pk, stream);
	}
	if (bytes > 0) {
		ward_pack_str(&p.pk, "bytes");
		msgpack_pack_uint64(&p.pk, bytes);
	}
	if (follow >= 0) {
		ward_pack_str(&p.pk, "follow");
		if (follow)
			msgpack_pack_true(&p.pk);
		else
			msgpack_pack_false(&p.pk);
	}
	if (ward_call_params(w, WARD_M_LOG, &p, &r) == -1) {
		ward_reply_free(&r);
		return -1;
	}
	data = ward_map_get(&r.result, "data");
	log->data = ward_dup_str(data);
	log->len = log->data != NULL ? data->via.str.size : 0;
	log->dropped = ward_get_u64(&r.result, "dropped");
	ward_copy_str(log->stream, sizeof log->stream,
	    ward_map_get(&r.result, "stream"));
	ward_reply_free(&r);
	if (log->data == NULL && (log->data = strdup("")) == NULL)
		return ward_fail(w, "internal", "out of memory");
	return 0;
}

/* ---- events */

WARD_EXPORT int
ward_events_subscribe(struct ward *w, const uint64_t *ids, size_t nids,
    const char *const *types)
{
	struct ward_params p;
	size_t k, nt = 0;

	if (types != NULL)
		while (types[nt] != NULL)
			nt++;
	ward_params_init(&p);
	msgpack_pack_map(&p.pk, (ids != NULL) + (types != NULL));
	if (ids != NULL) {
		ward_pack_str(&p.pk, "ids");
		msgpack_pack_array(&p.pk, nids);
		for (k = 0; k < nids; k++)
			msgpack_pack_uint64(&p.pk, ids[k]);
	}
	if (types != NULL) {
		ward_pack_str(&p.pk, "types");
		msgpack_pack_array(&p.pk, nt);
		for (k = 0; k < nt; k++)
			ward_pack_str(&p.pk, types[k]);
	}
	return ward_call_simple(w, WARD_M_SUBSCRIBE, &p);
}

WARD_EXPORT int
ward_events_unsubscribe(struct ward *w)
{
	return ward_call_simple(w, WARD_M_UNSUBSCRIBE, NULL);
}

/* ---- metrics */

WARD_EXPORT int
ward_metrics(struct ward *w, const char *format, char **text, size_t *len)
{
	struct ward_params p;
	struct ward_reply r;

	*text = NULL;
	ward_params_init(&p);
	msgpack_pack_map(&p.pk, format != NULL);
	if (format != NULL) {
		ward_pack_str(&p.pk, "format");
		ward_pack_str(&p.pk, format);
	}
	if (ward_call_params(w, WARD_M_METRICS, &p, &r) == -1) {
		ward_reply_free(&r);
		return -1;
	}
	*text = ward_dup_str(&r.result);
	ward_reply_free(&r);
	if (*text == NULL)
		return ward_fail(w, "internal", "ward.metrics: no text (or out "
		    "of memory)");
	if (len != NULL)
		*len = strlen(*text);
	return 0;
}
