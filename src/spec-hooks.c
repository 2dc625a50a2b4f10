/*
 * spec-hooks.c: the side processes of a spec (issue 13, item 4):
 * pre_start and post_death (an argv each, with a time limit) and sidecars
 * (a list of argvs): checked from instance.create's arguments into a
 * struct spec_hooks, freed, and written into wardd's state and read back.
 * hooks.c runs them. Each argv is bounded as the payload's is (count and
 * string length); argv[0] must be an absolute path: it is not looked up
 * in PATH nor probed at create (probing as the payload's user is spec.c's
 * private business), so a missing program shows as the hook's own
 * failure when it runs.
 *
 * layer: engine (below spec.c, spec-state.c and hooks.c; calls codec,
 * state and base only)
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ward.h"

void
spec_hooks_free(struct spec_hooks *h)
{
	size_t k;

	if (h == NULL)
		return;
	strv_free(h->pre_start);
	strv_free(h->post_death);
	for (k = 0; k < h->nsidecars; k++)
		strv_free(h->sidecars[k]);
	free(h->sidecars);
	free(h);
}

/* One argv of key (a non-empty array of UTF-8 strings, argv[0] absolute). */
static char **
spec_hooks_argv(const msgpack_object *o, const char *key, struct ward_err *e)
{
	uint32_t n, k;
	char **v;

	if (o->type != MSGPACK_OBJECT_ARRAY || (n = o->via.array.size) == 0) {
		ward_err_set(e, WARD_E_INVALID_ARGUMENT, "'%s' must be a "
		    "non-empty array of strings", key);
		return NULL;
	}
	if (n > SPEC_MAX_ARGV) {
		ward_err_set(e, WARD_E_TOO_LARGE, "'%s' has more than %d "
		    "elements", key, SPEC_MAX_ARGV);
		return NULL;
	}
	if ((v = calloc(n + 1, sizeof *v)) == NULL) {
		ward_err_oom(e);
		return NULL;
	}
	for (k = 0; k < n; k++) {
		const msgpack_object *s = &o->via.array.ptr[k];

		if (!codec_is_str(s) || s->via.str.size > SPEC_MAX_STRING ||
		    (v[k] = codec_strdup(s)) == NULL ||
		    !utf8_valid(v[k], strlen(v[k]))) {
			ward_err_set(e, WARD_E_INVALID_ARGUMENT, "'%s' must be an "
			    "array of UTF-8 strings of at most %d bytes, without "
			    "NUL", key, SPEC_MAX_STRING);
			goto fail;
		}
	}
	if (v[0][0] != '/') {
		ward_err_set(e, WARD_E_INVALID_ARGUMENT, "'%s'[0] must be an "
		    "absolute path (hooks are not looked up in PATH)", key);
		goto fail;
	}
	return v;
fail:
	strv_free(v);
	return NULL;
}

static int
spec_hooks_timeout(const msgpack_object *o, const char *key, uint32_t *out,
    struct ward_err *e)
{
	*out = HOOKS_TIMEOUT_DEFAULT_MS;
	if (o == NULL)
		return 0;
	if (o->via.u64 < 1 || o->via.u64 > HOOKS_TIMEOUT_MAX_MS)
		return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
		    "'%s' must be 1 to %u", key, HOOKS_TIMEOUT_MAX_MS);
	*out = o->via.u64;
	return 0;
}

/*
 * The hook keys, a[] in HOOKS_ARG_* order (spec_args's, from "pre_start"
 * on). cfg->hooks stays NULL when none is given. 0, or -1 with e set.
 */
int
spec_hooks_parse(struct instance_spec *cfg, const msgpack_object **a,
    struct ward_err *e)
{
	const msgpack_object *sc = a[HOOKS_ARG_SIDECARS];
	struct spec_hooks *h;
	uint32_t k;

	if (a[HOOKS_ARG_PRE_START] == NULL && a[HOOKS_ARG_POST_DEATH] == NULL &&
	    (sc == NULL || sc->via.array.size == 0)) {
		if (a[HOOKS_ARG_PRE_START_TIMEOUT] != NULL ||
		    a[HOOKS_ARG_POST_DEATH_TIMEOUT] != NULL)
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT, "a hook's "
			    "timeout needs its hook ('pre_start' or 'post_death')");
		return 0;
	}
	if ((h = calloc(1, sizeof *h)) == NULL)
		return ward_err_oom(e);
	cfg->hooks = h;
	if (spec_hooks_timeout(a[HOOKS_ARG_PRE_START_TIMEOUT],
	    "pre_start_timeout_ms", &h->pre_start_timeout_ms, e) == -1 ||
	    spec_hooks_timeout(a[HOOKS_ARG_POST_DEATH_TIMEOUT],
	    "post_death_timeout_ms", &h->post_death_timeout_ms, e) == -1)
		return -1;
	if (a[HOOKS_ARG_PRE_START] != NULL && (h->pre_start =
	    spec_hooks_argv(a[HOOKS_ARG_PRE_START], "pre_start", e)) == NULL)
		return -1;
	if (a[HOOKS_ARG_POST_DEATH] != NULL && (h->post_death =
	    spec_hooks_argv(a[HOOKS_ARG_POST_DEATH], "post_death", e)) == NULL)
		return -1;
	if (sc == NULL)
		return 0;
	if (sc->via.array.size > HOOKS_MAX_SIDECARS)
		return ward_err_set(e, WARD_E_TOO_LARGE, "'sidecars' has more "
		    "than %d entries", HOOKS_MAX_SIDECARS);
	if ((h->sidecars = calloc(sc->via.array.size,
	    sizeof *h->sidecars)) == NULL)
		return ward_err_oom(e);
	for (k = 0; k < sc->via.array.size; k++) {
		if ((h->sidecars[k] = spec_hooks_argv(&sc->via.array.ptr[k],
		    "sidecars", e)) == NULL)
			return -1;
		h->nsidecars++;
	}
	return 0;
}

/* The hooks as one map, or nil (spec-state.c's "hooks"). */
void
spec_hooks_save(msgpack_packer *pk, const struct spec_hooks *h)
{
	size_t k;

	if (h == NULL) {
		msgpack_pack_nil(pk);
		return;
	}
	msgpack_pack_map(pk, 5);
	state_pack_kv_strv(pk, "pre_start", h->pre_start);
	codec_pack_kv_uint(pk, "pre_start_timeout_ms", h->pre_start_timeout_ms);
	state_pack_kv_strv(pk, "post_death", h->post_death);
	codec_pack_kv_uint(pk, "post_death_timeout_ms", h->post_death_timeout_ms);
	codec_pack_key(pk, "sidecars");
	msgpack_pack_array(pk, h->nsidecars);
	for (k = 0; k < h->nsidecars; k++) {
		msgpack_pack_map(pk, 1);
		state_pack_kv_strv(pk, "argv", h->sidecars[k]);
	}
}

/* A restored argv is whole or none: hostile input gets no empty argv. */
static int
spec_hooks_read_argv(const msgpack_object *m, const char *k, char ***out)
{
	const msgpack_object *o = state_get(m, k);

	*out = NULL;
	if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
		return 0;
	if ((*out = state_strv(m, k)) != NULL && (*out)[0] != NULL &&
	    (*out)[0][0] == '/')
		return 0;
	strv_free(*out);
	*out = NULL;
	return -1;
}

/* Read back what spec_hooks_save wrote; -1 if it cannot be read whole. */
int
spec_hooks_restore(const msgpack_object *m, struct spec_hooks **out)
{
	const msgpack_object *a;
	struct spec_hooks *h;
	size_t n, k;

	*out = NULL;
	if (m == NULL || m->type != MSGPACK_OBJECT_MAP)
		return 0;
	if ((h = calloc(1, sizeof *h)) == NULL)
		return -1;
	h->pre_start_timeout_ms = state_u64(m, "pre_start_timeout_ms",
	    HOOKS_TIMEOUT_DEFAULT_MS);
	h->post_death_timeout_ms = state_u64(m, "post_death_timeout_ms",
	    HOOKS_TIMEOUT_DEFAULT_MS);
	if (h->pre_start_timeout_ms < 1 ||
	    h->pre_start_timeout_ms > HOOKS_TIMEOUT_MAX_MS)
		h->pre_start_timeout_ms = HOOKS_TIMEOUT_DEFAULT_MS;
	if (h->post_death_timeout_ms < 1 ||
	    h->post_death_timeout_ms > HOOKS_TIMEOUT_MAX_MS)
		h->post_death_timeout_ms = HOOKS_TIMEOUT_DEFAULT_MS;
	if (spec_hooks_read_argv(m, "pre_start", &h->pre_start) == -1 ||
	    spec_hooks_read_argv(m, "post_death", &h->post_death) == -1)
		goto fail;
	a = state_array(m, "sidecars", &n);
	if (n > HOOKS_MAX_SIDECARS)
		goto fail;
	if (n > 0 && (h->sidecars = calloc(n, sizeof *h->sidecars)) == NULL)
		goto fail;
	for (k = 0; k < n; k++) {
		if (spec_hooks_read_argv(&a[k], "argv", &h->sidecars[k]) == -1 ||
		    h->sidecars[k] == NULL)
			goto fail;
		h->nsidecars++;
	}
	*out = h;
	return 0;
fail:
	spec_hooks_free(h);
	return -1;
}
