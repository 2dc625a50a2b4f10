/*
 * spec-limits.c: the resource limit keys of instance.create (memory_max,
 * memory_high, cpu_max, cpu_weight, pids_max, io_weight, cpus): checked
 * into a struct spec_limits, refused up front when the cgroup controller
 * a key needs is missing (a limit that would silently not hold is worse
 * than none), written into the instance's cgroup before its child is made
 * there, shown in instance.status and carried across a re-exec. cpus is
 * also the child's CPU affinity (spawn.c sets it before exec), so it needs
 * no controller: cpuset.cpus is written only where the cpuset controller
 * is there.
 *
 * cgroup.c tells this module at start-up where instance cgroups go (or
 * why there are none) and calls spec_limits_write after making an
 * instance's directory: this module calls neither cgroup.c nor spec.c,
 * so the three form no cycle.
 *
 * layer: engine (called by spec.c, spec-state.c, cgroup.c, cmd-instance.c)
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"

enum spec_limit_kind {
	LIMIT_SIZE,	/* bytes, a K/M/G suffix, or "max" */
	LIMIT_COUNT,	/* a number, or "max" */
	LIMIT_WEIGHT,	/* 1 to 10000 */
	LIMIT_CPU_MAX,	/* "QUOTA PERIOD", "max [PERIOD]" or "N%" */
	LIMIT_CPUS	/* "0-1,3" */
};

/* The keys in SPEC_LIMIT_* order (spec_args's too: SPEC_LIMITS_ARGS). */
static const struct {
	const char		*key;
	const char		*controller;	/* what the cgroup must offer */
	const char		*file;		/* what is written there */
	enum spec_limit_kind	 kind;
} spec_limit_keys[SPEC_LIMIT_COUNT] = {
	{ "memory_max", "memory", "memory.max", LIMIT_SIZE },
	{ "memory_high", "memory", "memory.high", LIMIT_SIZE },
	{ "cpu_max", "cpu", "cpu.max", LIMIT_CPU_MAX },
	{ "cpu_weight", "cpu", "cpu.weight", LIMIT_WEIGHT },
	{ "pids_max", "pids", "pids.max", LIMIT_COUNT },
	{ "io_weight", "io", "io.weight", LIMIT_WEIGHT },
	/* Affinity first: the cpuset controller is optional. */
	{ "cpus", "cpuset", "cpuset.cpus", LIMIT_CPUS },
};

#define LIMIT_WEIGHT_MAX	10000
#define LIMIT_WEIGHT_DEFAULT	100	/* the kernel's: the most a non-admin gets */
#define LIMIT_PIDS_MAX		4194304	/* PID_MAX_LIMIT */
#define LIMIT_SIZE_MIN		4096	/* one page: less could not even exec */
#define LIMIT_PERIOD_DEFAULT	100000	/* cpu.max's default period, µs */
#define LIMIT_PERIOD_MIN	1000
#define LIMIT_PERIOD_MAX	1000000
#define LIMIT_QUOTA_MIN		1000
#define LIMIT_QUOTA_MAX		(LIMIT_PERIOD_MAX * (uint64_t)SPEC_LIMITS_NCPUS)
#define LIMIT_TEXT_MAX		4096	/* a cpus list as text, at most */

/* Where instance cgroups go (cgroup.c's base), or why there are none. */
static char *limits_base;
static char *limits_why;

/*
 * From cgroup_init: base is the directory that holds instance cgroups
 * (NULL: none), why says why not. Tests point base at a directory of
 * their own.
 */
void
spec_limits_cgroup(const char *base, const char *why)
{
	free(limits_base);
	free(limits_why);
	limits_base = base != NULL ? xstrdup(base) : NULL;
	limits_why = why != NULL ? xstrdup(why) : NULL;
}

/* ---- the values */

/* A decimal number without sign or spaces, within max; -1 if not. */
static int
spec_limits_number(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	size_t k;

	if (len == 0 || len > 20)
		return -1;
	for (k = 0; k < len; k++) {
		if (s[k] < '0' || s[k] > '9' ||
		    v > (max - (uint64_t)(s[k] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[k] - '0');
	}
	*out = v;
	return 0;
}

/* A CPU number of a list: below SPEC_LIMITS_NCPUS. */
static int
spec_limits_cpu(const char *s, size_t len, unsigned *cpu)
{
	uint64_t v;

	if (spec_limits_number(s, len, SPEC_LIMITS_NCPUS - 1, &v) == -1)
		return -1;
	*cpu = (unsigned)v;
	return 0;
}

#define LIMIT_BITS	(8 * sizeof(unsigned long))

static void
spec_limits_cpu_set(unsigned long *set, unsigned cpu)
{
	set[cpu / LIMIT_BITS] |= 1UL << (cpu % LIMIT_BITS);
}

int
spec_limits_cpu_isset(const unsigned long *set, unsigned cpu)
{
	return cpu < SPEC_LIMITS_NCPUS &&
	    (set[cpu / LIMIT_BITS] >> (cpu % LIMIT_BITS)) & 1;
}

/*
 * A CPU list as the kernel writes it ("0-1,3", the format of cpuset.cpus
 * and /sys/devices/system/cpu/online; a trailing newline is allowed) into
 * set. -1 if it is not one, or is empty.
 */
int
spec_limits_parse_cpus(const char *s, unsigned long *set)
{
	const char *item, *dash, *end;
	unsigned lo, hi, c;
	size_t len = strlen(s);

	memset(set, 0, SPEC_LIMITS_NCPUS / 8);
	if (len > 0 && s[len - 1] == '\n')
		len--;
	if (len == 0 || s[len - 1] == ',')
		return -1;
	for (item = s; item < s + len; item = end + 1) {
		if ((end = memchr(item, ',', s + len - item)) == NULL)
			end = s + len;
		dash = memchr(item, '-', end - item);
		if (spec_limits_cpu(item, (dash ? dash : end) - item, &lo) == -1 ||
		    (dash != NULL && spec_limits_cpu(dash + 1, end - dash - 1,
		    &hi) == -1))
			return -1;
		if (dash == NULL)
			hi = lo;
		if (hi < lo)
			return -1;
		for (c = lo; c <= hi; c++)
			spec_limits_cpu_set(set, c);
		if (end == s + len)
			break;
	}
	return 0;
}

/* set as the shortest list ("0-1,3") into buf. */
void
spec_limits_format_cpus(const unsigned long *set, char *buf, size_t len)
{
	unsigned c, end;
	size_t at = 0;
	int n;

	buf[0] = '\0';
	for (c = 0; c < SPEC_LIMITS_NCPUS; c = end + 1) {
		if (!spec_limits_cpu_isset(set, c)) {
			end = c;
			continue;
		}
		for (end = c; end + 1 < SPEC_LIMITS_NCPUS &&
		    spec_limits_cpu_isset(set, end + 1); end++)
			;
		n = end == c ? snprintf(buf + at, len - at, "%s%u",
		    at ? "," : "", c) : snprintf(buf + at, len - at, "%s%u-%u",
		    at ? "," : "", c, end);
		if (n < 0 || (size_t)n >= len - at)
			return;		/* cut: the buffers here are large enough */
		at += n;
	}
}

/*
 * A string value as a NUL-terminated copy in buf; -1 if too long, or if it
 * holds a NUL: "512M\0junk" is not the "512M" the parsers would read.
 */
static int
spec_limits_text(const msgpack_object *o, char *buf, size_t len)
{
	if (o->via.str.size >= len ||
	    memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL)
		return -1;
	memcpy(buf, o->via.str.ptr, o->via.str.size);
	buf[o->via.str.size] = '\0';
	return 0;
}

/* "512M", "1G", "4096" or "max" into bytes (LIMIT_MAX for "max"). */
static int
spec_limits_size(const char *s, uint64_t *out)
{
	size_t len = strlen(s);
	unsigned shift = 0;

	if (strcmp(s, "max") == 0) {
		*out = SPEC_LIMIT_UNLIMITED;
		return 0;
	}
	if (len > 0 && strchr("KkMmGg", s[len - 1]) != NULL) {
		shift = strchr("Kk", s[len - 1]) ? 10 :
		    strchr("Mm", s[len - 1]) ? 20 : 30;
		len--;
	}
	/* Below UINT64_MAX, which stands for "max". */
	if (spec_limits_number(s, len, (SPEC_LIMIT_UNLIMITED - 1) >> shift,
	    out) == -1)
		return -1;
	*out <<= shift;
	return 0;
}

/* cpu_max's forms into quota (SPEC_LIMIT_UNLIMITED: "max") and period. */
static int
spec_limits_cpu_max(const char *s, uint64_t *quota, uint64_t *period)
{
	const char *sp = strchr(s, ' ');
	size_t len = strlen(s);
	uint64_t pct;

	*period = LIMIT_PERIOD_DEFAULT;
	if (len > 1 && s[len - 1] == '%') {
		if (spec_limits_number(s, len - 1, LIMIT_QUOTA_MAX /
		    (LIMIT_PERIOD_DEFAULT / 100), &pct) == -1 || pct == 0)
			return -1;
		*quota = pct * (LIMIT_PERIOD_DEFAULT / 100);
		return 0;
	}
	if (sp != NULL && spec_limits_number(sp + 1, strlen(sp + 1),
	    LIMIT_PERIOD_MAX, period) == -1)
		return -1;
	if (sp == NULL)
		sp = s + len;
	if ((size_t)(sp - s) == 3 && strncmp(s, "max", 3) == 0)
		*quota = SPEC_LIMIT_UNLIMITED;
	else if (spec_limits_number(s, sp - s, LIMIT_QUOTA_MAX, quota) == -1 ||
	    *quota < LIMIT_QUOTA_MIN)
		return -1;
	return *period >= LIMIT_PERIOD_MIN ? 0 : -1;
}

/* What each kind accepts, for the messages. */
static const char *const spec_limit_forms[] = {
	[LIMIT_SIZE] = "bytes: a number, or a string with a K, M or G suffix "
	    "(powers of 1024) such as \"512M\" (at least 4096), or \"max\"",
	[LIMIT_COUNT] = "a number from 1 to 4194304, or \"max\"",
	[LIMIT_WEIGHT] = "a number from 1 to 10000",
	[LIMIT_CPU_MAX] = "\"QUOTA PERIOD\" in microseconds as cgroup's cpu.max "
	    "takes it (quota at least 1000 or \"max\", period 1000 to 1000000), "
	    "or a percentage of one CPU such as \"50%\"",
	[LIMIT_CPUS] = "a list of CPUs such as \"0-1,3\"",
};

/*
 * One key's value o (a number or a string) into l. online: the CPUs that
 * exist, checked against cpus (NULL: not checked, as on a restore).
 */
static int
spec_limits_value(struct spec_limits *l, int k, const msgpack_object *o,
    const unsigned long *online, struct ward_err *e)
{
	char text[LIMIT_TEXT_MAX], have[LIMIT_TEXT_MAX];
	enum spec_limit_kind kind = spec_limit_keys[k].kind;
	uint64_t v = 0;
	unsigned c;
	int bad;

	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && kind != LIMIT_CPU_MAX)
		snprintf(text, sizeof text, "%" PRIu64, o->via.u64);
	else if (!codec_is_str(o) || spec_limits_text(o, text, sizeof text) == -1)
		goto bad;
	switch (kind) {
	case LIMIT_SIZE:
		bad = spec_limits_size(text, &v) == -1 || v < LIMIT_SIZE_MIN;
		/* In pages, as the kernel keeps it: what status shows holds. */
		if (!bad && v != SPEC_LIMIT_UNLIMITED)
			v -= v % (uint64_t)sysconf(_SC_PAGESIZE);
		bad |= v == 0;
		break;
	case LIMIT_COUNT:
		bad = strcmp(text, "max") == 0 ? (v = SPEC_LIMIT_UNLIMITED, 0) :
		    spec_limits_number(text, strlen(text), LIMIT_PIDS_MAX,
		    &v) == -1 || v == 0;
		break;
	case LIMIT_WEIGHT:
		bad = spec_limits_number(text, strlen(text), LIMIT_WEIGHT_MAX,
		    &v) == -1 || v == 0;
		break;
	case LIMIT_CPU_MAX:
		bad = spec_limits_cpu_max(text, &v, &l->cpu_period) == -1;
		break;
	default:
		bad = spec_limits_parse_cpus(text, l->cpus) == -1;
		for (c = 0; !bad && online != NULL && c < SPEC_LIMITS_NCPUS; c++) {
			if (spec_limits_cpu_isset(l->cpus, c) &&
			    !spec_limits_cpu_isset(online, c)) {
				spec_limits_format_cpus(online, have, sizeof have);
				return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
				    "'cpus' names CPU %u, which this machine "
				    "does not have (its CPUs: %s)", c, have);
			}
		}
		break;
	}
	if (bad)
		goto bad;
	l->value[k] = v;
	l->mask |= 1U << k;
	return 0;
bad:
	return ward_err_set(e, WARD_E_INVALID_ARGUMENT, "'%s' is %s",
	    spec_limit_keys[k].key, spec_limit_forms[kind]);
}

/* The CPUs that are online, from sysfs (or 0 to N-1 by sysconf). */
static void
spec_limits_online(unsigned long *set)
{
	char buf[LIMIT_TEXT_MAX];
	long n, c;

	if (read_small_file("/sys/devices/system/cpu/online", buf,
	    sizeof buf) != -1 && spec_limits_parse_cpus(buf, set) == 0)
		return;
	memset(set, 0, SPEC_LIMITS_NCPUS / 8);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	for (c = 0; c < (n > 0 ? n : 1) && c < SPEC_LIMITS_NCPUS; c++)
		spec_limits_cpu_set(set, c);
}

/* ---- the cgroup */

/* dir/file: text written in one write (util.c's), as cgroupfs takes it. */
static int
spec_limits_write_file(const char *dir, const char *file, const char *text)
{
	char path[PATH_MAX];

	if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >= sizeof path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return write_small_file(path, text);
}

/*
 * Whether instance cgroups get controller: enabled in the base's
 * cgroup.subtree_control already, or offered by its cgroup.controllers and
 * enabled now (never in the root cgroup: a host-wide change). 0, or -1
 * with e saying which key needs what.
 */
static int
spec_limits_controller(int k, struct ward_err *e)
{
	const char *key = spec_limit_keys[k].key;
	const char *ctl = spec_limit_keys[k].controller;
	char text[32];

	if (limits_base == NULL)
		return ward_err_set(e, WARD_E_UNSUPPORTED, "%s needs the cgroup %s "
		    "controller, but wardd runs instances without cgroups (%s)",
		    key, ctl, limits_why != NULL ? limits_why : "none found");
	if (small_file_has(limits_base, "cgroup.subtree_control", ctl))
		return 0;
	if (!small_file_has(limits_base, "cgroup.controllers", ctl))
		return ward_err_set(e, WARD_E_UNSUPPORTED, "%s needs the cgroup %s "
		    "controller, which %s does not offer", key, ctl, limits_base);
	/* Enabling it in the root cgroup (no cgroup.type there) would change
	 * the whole host, on anyone's request: left to the admin. */
	if (!small_file_has(limits_base, "cgroup.type", "domain") &&
	    !small_file_has(limits_base, "cgroup.type", "threaded"))
		return ward_err_set(e, WARD_E_UNSUPPORTED, "%s needs the cgroup %s "
		    "controller, which %s offers but does not enable; wardd never "
		    "changes the root cgroup's cgroup.subtree_control (enable it "
		    "there, or run wardd in a cgroup of its own)", key, ctl,
		    limits_base);
	snprintf(text, sizeof text, "+%s", ctl);
	if (spec_limits_write_file(limits_base, "cgroup.subtree_control",
	    text) == -1)
		return ward_err_set(e, WARD_E_UNSUPPORTED, "%s needs the cgroup %s "
		    "controller, which %s offers but cannot enable for "
		    "instances: %s", key, ctl, limits_base, strerror(errno));
	log_info("cgroups: enabled the %s controller in %s for %s", ctl,
	    limits_base, key);
	return 0;
}

/*
 * The limit keys of a create request (args from memory_max on, in
 * SPEC_LIMIT_* order) into cfg->limits (NULL when none is given), each
 * checked, and each controller they need checked too. 0, or -1 with e
 * set: invalid_argument for a bad value, unsupported for a missing
 * controller, permission_denied for a non-admin's weight above the
 * default (more than its share of the machine).
 */
int
spec_limits_parse(struct instance_spec *cfg, const msgpack_object **a,
    int admin, struct ward_err *e)
{
	unsigned long online[SPEC_LIMITS_NCPUS / LIMIT_BITS];
	struct spec_limits *l;
	int k;

	for (k = 0; k < SPEC_LIMIT_COUNT && a[k] == NULL; k++)
		;
	if (k == SPEC_LIMIT_COUNT)
		return 0;
	if ((l = cfg->limits = calloc(1, sizeof *l)) == NULL)
		return ward_err_oom(e);
	if (a[SPEC_LIMIT_CPUS] != NULL)
		spec_limits_online(online);
	for (k = 0; k < SPEC_LIMIT_COUNT; k++) {
		if (a[k] == NULL)
			continue;
		if (spec_limits_value(l, k, a[k], online, e) == -1)
			return -1;
		if (spec_limit_keys[k].kind == LIMIT_WEIGHT && !admin &&
		    l->value[k] > LIMIT_WEIGHT_DEFAULT)
			return ward_err_set(e, WARD_E_PERMISSION, "'%s' above %d "
			    "(the default) is for root or wardd's own user: "
			    "others may only lower their share", spec_limit_keys[k].key,
			    LIMIT_WEIGHT_DEFAULT);
	}
	/* The affinity alone serves cpus where there is no cpuset controller. */
	for (k = 0; k < SPEC_LIMIT_CPUS; k++) {
		if ((l->mask & (1U << k)) && spec_limits_controller(k, e) == -1)
			return -1;
	}
	if ((l->mask & (1U << SPEC_LIMIT_CPUS)) && limits_base != NULL &&
	    spec_limits_controller(SPEC_LIMIT_CPUS, e) == -1)
		log_debug("%s; cpus is the affinity alone", e->msg);
	return 0;
}

/* Key k's value as text: as its cgroup file takes it (file) or for show. */
static void
spec_limits_format(const struct spec_limits *l, int k, int file, char *buf,
    size_t len)
{
	uint64_t v = l->value[k];

	switch (spec_limit_keys[k].kind) {
	case LIMIT_CPU_MAX:
		if (v == SPEC_LIMIT_UNLIMITED)
			snprintf(buf, len, "max %" PRIu64, l->cpu_period);
		else
			snprintf(buf, len, "%" PRIu64 " %" PRIu64, v, l->cpu_period);
		break;
	case LIMIT_CPUS:
		spec_limits_format_cpus(l->cpus, buf, len);
		break;
	default:
		if (v == SPEC_LIMIT_UNLIMITED)
			snprintf(buf, len, "max");
		else
			snprintf(buf, len, "%s%" PRIu64, file && k ==
			    SPEC_LIMIT_IO_WEIGHT ? "default " : "", v);
		break;
	}
}

/*
 * Write the limits into an instance's cgroup directory dir (made, not yet
 * holding the child), so they hold from the child's first instruction. A
 * controller gone since the create is unsupported, and so is any key but
 * cpus without a cgroup (dir NULL); cpuset.cpus is written only where it
 * exists. 0, or -1 with e set: the spawn fails.
 */
int
spec_limits_write(const struct spec_limits *l, const char *dir,
    struct ward_err *e)
{
	char text[LIMIT_TEXT_MAX + 16];
	int k;

	for (k = 0; l != NULL && k < SPEC_LIMIT_COUNT; k++) {
		if (!(l->mask & (1U << k)))
			continue;
		/* No cgroup (a re-exec with --no-cgroups): refused as at create. */
		if (dir == NULL && k != SPEC_LIMIT_CPUS)
			return spec_limits_controller(k, e);
		if (dir == NULL)
			continue;
		spec_limits_format(l, k, 1, text, sizeof text);
		if (spec_limits_write_file(dir, spec_limit_keys[k].file,
		    text) == 0)
			continue;
		if (errno == ENOENT && k == SPEC_LIMIT_CPUS)
			continue;	/* no cpuset: the affinity does it */
		if (errno == ENOENT)
			return ward_err_set(e, WARD_E_UNSUPPORTED, "%s needs "
			    "the cgroup %s controller, which %s does not have",
			    spec_limit_keys[k].key, spec_limit_keys[k].controller,
			    dir);
		return ward_err_errno(e, WARD_E_SPAWN_FAILED, "cannot set %s "
		    "(%s %s in %s)", spec_limit_keys[k].key,
		    spec_limit_keys[k].file, text, dir);
	}
	return 0;
}

/*
 * The limits as a record of every key, nil for those not given, each value
 * as a client would write it back (bytes and counts as numbers, "max",
 * cpu_max as "QUOTA PERIOD", cpus as a list): instance.status's limits
 * (a list's compact rows get a column per key), and the state's.
 */
void
spec_limits_pack(msgpack_packer *pk, const struct spec_limits *l)
{
	char text[LIMIT_TEXT_MAX];
	int k;

	codec_pack_record(pk, SPEC_LIMIT_COUNT);
	for (k = 0; k < SPEC_LIMIT_COUNT; k++) {
		codec_pack_key(pk, spec_limit_keys[k].key);
		if (l == NULL || !(l->mask & (1U << k)))
			msgpack_pack_nil(pk);
		else if (spec_limit_keys[k].kind != LIMIT_CPU_MAX &&
		    spec_limit_keys[k].kind != LIMIT_CPUS &&
		    l->value[k] != SPEC_LIMIT_UNLIMITED)
			msgpack_pack_uint64(pk, l->value[k]);
		else {
			spec_limits_format(l, k, 0, text, sizeof text);
			codec_pack_str(pk, text);
		}
	}
}

/*
 * A saved limits map (spec_limits_pack's) back into *out; nil, absent or
 * all nil: none. -1 if a value does not read back: the spec is refused whole.
 */
int
spec_limits_restore(const msgpack_object *m, struct spec_limits **out)
{
	struct ward_err e = WARD_ERR_INIT;
	const msgpack_object_kv *kv;
	uint32_t j;
	int k;

	*out = NULL;
	if (m == NULL || m->type != MSGPACK_OBJECT_MAP)
		return 0;
	if ((*out = calloc(1, sizeof **out)) == NULL)
		return -1;
	for (j = 0; j < m->via.map.size; j++) {
		kv = &m->via.map.ptr[j];
		for (k = 0; k < SPEC_LIMIT_COUNT &&
		    !codec_streq(&kv->key, spec_limit_keys[k].key); k++)
			;
		if (k == SPEC_LIMIT_COUNT || kv->val.type == MSGPACK_OBJECT_NIL)
			continue;	/* a newer wardd's, or not given */
		if (spec_limits_value(*out, k, &kv->val, NULL, &e) == -1) {
			log_warnx("state: limits: %s", e.msg);
			free(*out);
			*out = NULL;
			return -1;
		}
	}
	if ((*out)->mask == 0) {
		free(*out);	/* every key nil: none given */
		*out = NULL;
	}
	return 0;
}
