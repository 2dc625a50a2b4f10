/*
 * spec-execenv.c: the execution environment an instance.create may ask
 * for: group, umask, rlimits, nice, oom_score_adj. Checked here, against
 * what the peer may have (spec_execenv_check_peer); spawn.c applies them
 * in the child with raw system calls. Reads its keys from spec.c's
 * argument array, from "group" on, in EXECENV_ARG_* order.
 *
 * layer: engine (below spec.c and spawn.c; calls codec and base only)
 */
#include "config.h"

#include <sys/resource.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ward.h"

static const struct {
	const char	*name;
	int		 resource;
} spec_execenv_rlimits_table[] = {
	{ "as", RLIMIT_AS }, { "core", RLIMIT_CORE }, { "cpu", RLIMIT_CPU },
	{ "data", RLIMIT_DATA }, { "fsize", RLIMIT_FSIZE },
	{ "locks", RLIMIT_LOCKS }, { "memlock", RLIMIT_MEMLOCK },
	{ "msgqueue", RLIMIT_MSGQUEUE }, { "nice", RLIMIT_NICE },
	{ "nofile", RLIMIT_NOFILE }, { "nproc", RLIMIT_NPROC },
	{ "rss", RLIMIT_RSS }, { "rtprio", RLIMIT_RTPRIO },
	{ "rttime", RLIMIT_RTTIME }, { "sigpending", RLIMIT_SIGPENDING },
	{ "stack", RLIMIT_STACK }
};
#define SPEC_EXECENV_NRLIMITS	(sizeof spec_execenv_rlimits_table / sizeof spec_execenv_rlimits_table[0])
#define SPEC_EXECENV_RLIMIT_NAMES "as, core, cpu, data, fsize, locks, memlock, " \
	"msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack"

/* The rlimits key naming a RLIMIT_* resource (for messages). */
const char *
spec_execenv_rlimit_name(int resource)
{
	size_t k;

	for (k = 0; k < SPEC_EXECENV_NRLIMITS; k++) {
		if (spec_execenv_rlimits_table[k].resource == resource)
			return spec_execenv_rlimits_table[k].name;
	}
	return "?";
}

/* Decimal digits only, no sign, no overflow: -1 otherwise. */
static int
spec_execenv_decimal(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t k;

	if (n == 0 || n > 20)
		return -1;
	for (k = 0; k < n; k++) {
		if (s[k] < '0' || s[k] > '9' ||
		    v > (UINT64_MAX - (uint64_t)(s[k] - '0')) / 10)
			return -1;
		v = v * 10 + (s[k] - '0');
	}
	*out = v;
	return 0;
}

/* One limit: decimal text or "infinity". */
static int
spec_execenv_rlimit_value(const char *s, size_t n, rlim_t *out)
{
	uint64_t v;

	if (n == 8 && memcmp(s, "infinity", 8) == 0) {
		*out = RLIM_INFINITY;
		return 0;
	}
	if (spec_execenv_decimal(s, n, &v) == -1)
		return -1;
	*out = v;
	return 0;
}

/*
 * rlimits: {name: value} with value a number, "infinity", or "SOFT:HARD"
 * of those; a single value is both soft and hard, as systemd's Limit*=.
 */
static int
spec_execenv_rlimits(struct instance_spec *cfg, const msgpack_object *o,
    struct ward_err *e)
{
	uint32_t k, n = o->via.map.size;
	size_t j;

	if (n > SPEC_EXECENV_NRLIMITS)
		return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
		    "'rlimits' has more entries than there "
		    "are limits (%s)", SPEC_EXECENV_RLIMIT_NAMES);
	if (n == 0)
		return 0;
	if ((cfg->rlimits = calloc(n, sizeof *cfg->rlimits)) == NULL)
		return ward_err_oom(e);
	for (k = 0; k < n; k++) {
		const msgpack_object *key = &o->via.map.ptr[k].key;
		const msgpack_object *val = &o->via.map.ptr[k].val;
		struct spec_rlimit *r = &cfg->rlimits[cfg->nrlimits];
		const char *name = NULL, *s, *colon;
		size_t len;

		for (j = 0; codec_is_str(key) && j < SPEC_EXECENV_NRLIMITS; j++) {
			if (codec_streq(key, spec_execenv_rlimits_table[j].name)) {
				name = spec_execenv_rlimits_table[j].name;
				r->resource = spec_execenv_rlimits_table[j].resource;
			}
		}
		if (name == NULL)
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "'rlimits' keys are limit names: %s",
			    SPEC_EXECENV_RLIMIT_NAMES);
		if (cfg->rlimit_mask & (1U << r->resource))
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "'rlimits.%s' is given twice", name);
		if (val->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
			r->lim.rlim_cur = r->lim.rlim_max = val->via.u64;
		} else if (codec_is_str(val)) {
			s = val->via.str.ptr;
			len = val->via.str.size;
			if ((colon = memchr(s, ':', len)) == NULL) {
				if (spec_execenv_rlimit_value(s, len, &r->lim.rlim_cur) == -1)
					goto bad;
				r->lim.rlim_max = r->lim.rlim_cur;
			} else if (spec_execenv_rlimit_value(s, colon - s,
			    &r->lim.rlim_cur) == -1 || spec_execenv_rlimit_value(colon + 1,
			    len - (colon + 1 - s), &r->lim.rlim_max) == -1)
				goto bad;
		} else
			goto bad;
		if (r->lim.rlim_cur > r->lim.rlim_max)
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "'rlimits.%s': the soft limit is "
			    "above the hard limit", name);
		cfg->rlimit_mask |= 1U << r->resource;
		cfg->nrlimits++;
		continue;
bad:
		return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
		    "'rlimits.%s' must be a number, "
		    "\"infinity\", or \"SOFT:HARD\" of those", name);
	}
	return 0;
}

/*
 * Fill the execution environment from a create request. Numbers only:
 * wardd never looks up a group name (clients resolve them). Non-admins may
 * set oom_score_adj only to 0 or more (a payload of theirs must not be
 * shielded from the OOM killer at others' expense); whether their group,
 * nice and rlimits are allowed is spec_execenv_check_peer's and the kernel's to
 * say (spawn.c applies nice and rlimits after their id switch).
 */
int
spec_execenv_parse(struct instance_spec *cfg, const msgpack_object **a,
    int admin, struct ward_err *e)
{
	const msgpack_object *o;
	uint64_t v;
	int64_t iv;

	if ((o = a[EXECENV_ARG_GROUP]) != NULL) {
		if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
			v = o->via.u64;
		else if (!codec_is_str(o) || spec_execenv_decimal(o->via.str.ptr,
		    o->via.str.size, &v) == -1)
			v = UINT64_MAX;
		if (v >= 0xffffffffUL) {
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "'group' must be a gid, 0 to %lu "
			    "(wardd does not look up names; clients resolve them)",
			    0xfffffffeUL);
		}
		if (!opts.is_root && v != (uint64_t)getegid())
			return ward_err_set(e, WARD_E_PERMISSION,
			    "wardd is not running as root and "
			    "cannot run instances with gid %llu",
			    (unsigned long long)v);
		cfg->has_group = 1;
		cfg->group_gid = v;
	}
	if ((o = a[EXECENV_ARG_UMASK]) != NULL) {
		v = UINT64_MAX;
		if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
			v = o->via.u64;
		else if (codec_is_str(o) && o->via.str.size >= 1 &&
		    o->via.str.size <= 4) {
			uint32_t k;

			for (v = 0, k = 0; k < o->via.str.size; k++) {
				if (o->via.str.ptr[k] < '0' || o->via.str.ptr[k] > '7') {
					v = UINT64_MAX;
					break;
				}
				v = v * 8 + (o->via.str.ptr[k] - '0');
			}
		}
		if (v > 0777)
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "'umask' must be octal text such as "
			    "\"027\", or a number from 0 to 511 (0777)");
		cfg->has_umask = 1;
		cfg->umask = v;
	}
	if (a[EXECENV_ARG_RLIMITS] != NULL &&
	    spec_execenv_rlimits(cfg, a[EXECENV_ARG_RLIMITS], e) == -1)
		return -1;
	if ((o = a[EXECENV_ARG_NICE]) != NULL) {
		iv = o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ?
		    (o->via.u64 > 19 ? 20 : (int64_t)o->via.u64) : o->via.i64;
		if (iv < -20 || iv > 19)
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "'nice' must be -20 to 19");
		cfg->has_nice = 1;
		cfg->nice = iv;
	}
	if ((o = a[EXECENV_ARG_OOM_SCORE_ADJ]) != NULL) {
		iv = o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ?
		    (o->via.u64 > 1000 ? 1001 : (int64_t)o->via.u64) : o->via.i64;
		if (iv < -1000 || iv > 1000)
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "'oom_score_adj' must be -1000 to 1000");
		if (iv < 0 && !admin)
			return ward_err_set(e, WARD_E_PERMISSION,
			    "only root or wardd's own user may "
			    "set a negative 'oom_score_adj' (0 to 1000 only raise "
			    "the chance of being killed)");
		cfg->has_oom_score_adj = 1;
		cfg->oom_score_adj = iv;
	}
	return 0;
}

/*
 * What only the peer decides: a non-admin's group must be one it is in
 * already (its gid or one of its SO_PEERGROUPS), so it gains no access.
 * Before the path checks, which borrow that group.
 */
int
spec_execenv_check_peer(const struct instance_spec *cfg, const struct peer *peer,
    struct ward_err *e)
{
	int k;

	if (!cfg->has_group || peer->admin || cfg->group_gid == peer->gid)
		return 0;
	for (k = 0; k < peer->ngroups; k++) {
		if (peer->groups[k] == cfg->group_gid)
			return 0;
	}
	return ward_err_set(e, WARD_E_PERMISSION,
	    "'group' %u is not one of your groups",
	    (unsigned)cfg->group_gid);
}
