/*
 * fuzz_limits.c: the resource limit keys of instance.create (memory_max,
 * memory_high, cpu_max, cpu_weight, pids_max, io_weight, cpus), as a
 * client or a .conf file gives them and as a state reads them back. The
 * input is a flags byte (bit 0: an admin's request; bit 1: one raw value,
 * not a map; bits 2-4: its key, SPEC_LIMIT_* modulo 7; bit 5: the value
 * as bin, not str; bit 6: no cgroup), then either that value's bytes or a
 * msgpack map of the keys. The map goes through codec_args and
 * spec_limits_parse as instance.create's params do, and through
 * spec_limits_restore as a saved state's limits do; a raw cpus value also
 * through spec_limits_parse_cpus. Invariants:
 * - a refusal is invalid_argument, permission_denied or unsupported (a
 *   key but cpus without a cgroup), with a message;
 * - what is taken holds: memory sizes "max" or at least 4096 and whole
 *   pages, pids_max 1 to 4194304 or "max", weights 1 to 10000 (100 at
 *   most for a non-admin), cpu_max's quota "max" or 1000 to 1024 CPUs'
 *   worth and its period 1000 to 1000000 µs, cpus a non-empty list of
 *   online CPUs; only the keys given are set;
 * - a value holding a NUL byte is refused (it is not the text it reads as);
 * - what is taken packs (spec_limits_pack) and restores as itself;
 * - a CPU list parses back from its formatted text as the same set.
 * A private cgroup base (a directory whose cgroup.subtree_control lists
 * every controller) answers the controller checks; nothing is written.
 */
#include "config.h"

#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define FUZZ_LIMITS_WORDS	(SPEC_LIMITS_NCPUS / (8 * sizeof(unsigned long)))

static const struct arg_spec fuzz_limits_args[] = {
	SPEC_LIMITS_ARGS,
	{ NULL, ARG_ANY }
};
static char *fuzz_limits_base;
static unsigned long fuzz_limits_online[FUZZ_LIMITS_WORDS];
static uint64_t fuzz_limits_page;

/* Whether o is a string (or bin) with a NUL byte in it. */
static int
fuzz_limits_has_nul(const msgpack_object *o)
{
	return codec_is_str(o) && memchr(o->via.str.ptr, '\0',
	    o->via.str.size) != NULL;
}

/* l keeps every promise spec-limits.c makes of what it takes. */
static void
fuzz_limits_holds(const struct spec_limits *l, uint32_t given, int admin,
    int online)
{
	uint64_t v;
	unsigned c, n = 0;
	int k;

	harness_assert((l->mask & ~given) == 0 && (given == 0 ||
	    l->mask == given), "mask %#x, keys given %#x", l->mask, given);
	for (k = 0; k < SPEC_LIMIT_COUNT; k++) {
		if (!(l->mask & (1U << k)))
			continue;
		v = l->value[k];
		switch (k) {
		case SPEC_LIMIT_MEMORY_MAX:
		case SPEC_LIMIT_MEMORY_HIGH:
			harness_assert(v == SPEC_LIMIT_UNLIMITED || (v >= 4096 &&
			    v % fuzz_limits_page == 0), "size %llu",
			    (unsigned long long)v);
			break;
		case SPEC_LIMIT_PIDS_MAX:
			harness_assert(v == SPEC_LIMIT_UNLIMITED || (v >= 1 &&
			    v <= 4194304), "pids_max %llu", (unsigned long long)v);
			break;
		case SPEC_LIMIT_CPU_WEIGHT:
		case SPEC_LIMIT_IO_WEIGHT:
			harness_assert(v >= 1 && v <= (admin ? 10000 : 100),
			    "weight %llu (admin %d)", (unsigned long long)v, admin);
			break;
		case SPEC_LIMIT_CPU_MAX:
			harness_assert((v == SPEC_LIMIT_UNLIMITED || (v >= 1000 &&
			    v <= 1000000ULL * SPEC_LIMITS_NCPUS)) &&
			    l->cpu_period >= 1000 && l->cpu_period <= 1000000,
			    "cpu_max %llu %llu", (unsigned long long)v,
			    (unsigned long long)l->cpu_period);
			break;
		case SPEC_LIMIT_CPUS:
			for (c = 0; c < SPEC_LIMITS_NCPUS; c++) {
				if (!spec_limits_cpu_isset(l->cpus, c))
					continue;
				n++;
				harness_assert(!online || spec_limits_cpu_isset(
				    fuzz_limits_online, c), "cpus has CPU %u, "
				    "not online", c);
			}
			harness_assert(n > 0, "an empty cpus list taken");
			break;
		}
	}
}

/* l packs and restores as itself. */
static void
fuzz_limits_roundtrip(const struct spec_limits *l)
{
	struct buf b = { 0 };
	msgpack_packer pk;
	msgpack_unpacked msg;
	struct spec_limits *back;
	size_t off = 0;
	int k;

	msgpack_packer_init(&pk, &b, codec_sbuffer_write);
	spec_limits_pack(&pk, l);
	msgpack_unpacked_init(&msg);
	harness_assert(msgpack_unpack_next(&msg, b.data, b.len, &off) ==
	    MSGPACK_UNPACK_SUCCESS && off == b.len, "pack does not unpack");
	harness_assert(spec_limits_restore(&msg.data, &back) == 0 &&
	    back != NULL, "packed limits refused on restore");
	harness_assert(back->mask == l->mask, "mask %#x restored as %#x",
	    l->mask, back->mask);
	for (k = 0; k < SPEC_LIMIT_COUNT; k++)
		harness_assert(!(l->mask & (1U << k)) || back->value[k] ==
		    l->value[k], "key %d: %llu restored as %llu", k,
		    (unsigned long long)l->value[k],
		    (unsigned long long)back->value[k]);
	harness_assert(!(l->mask & (1U << SPEC_LIMIT_CPU_MAX)) ||
	    back->cpu_period == l->cpu_period, "cpu_max's period restored as "
	    "%llu", (unsigned long long)back->cpu_period);
	harness_assert(!(l->mask & (1U << SPEC_LIMIT_CPUS)) ||
	    memcmp(back->cpus, l->cpus, sizeof l->cpus) == 0,
	    "cpus restored as another set");
	free(back);
	msgpack_unpacked_destroy(&msg);
	buf_free(&b);
}

/* A create's keys (a map, or one value for key k) through spec_limits_parse. */
static void
fuzz_limits_parse(const msgpack_object **a, int admin)
{
	struct instance_spec cfg;
	struct ward_err e = WARD_ERR_INIT;
	uint32_t given = 0, nul = 0;
	int k, rc;

	memset(&cfg, 0, sizeof cfg);
	for (k = 0; k < SPEC_LIMIT_COUNT; k++) {
		if (a[k] != NULL)
			given |= 1U << k;
		if (a[k] != NULL && fuzz_limits_has_nul(a[k]))
			nul |= 1U << k;
	}
	rc = spec_limits_parse(&cfg, a, admin, &e);
	if (rc == -1) {
		harness_assert(e.code != NULL && (strcmp(e.code,
		    WARD_E_INVALID_ARGUMENT) == 0 || strcmp(e.code,
		    WARD_E_PERMISSION) == 0 || strcmp(e.code,
		    WARD_E_UNSUPPORTED) == 0) && e.msg[0] != '\0',
		    "refused with %s: %s", e.code ? e.code : "(none)", e.msg);
		harness_assert(fuzz_limits_base != NULL || given !=
		    1U << SPEC_LIMIT_CPUS || strcmp(e.code,
		    WARD_E_UNSUPPORTED) != 0, "cpus alone unsupported: %s", e.msg);
	} else {
		harness_assert(rc == 0, "spec_limits_parse = %d", rc);
		harness_assert(nul == 0, "a value with a NUL byte taken (keys %#x)",
		    nul);
		harness_assert(fuzz_limits_base != NULL || given == 0 ||
		    given == 1U << SPEC_LIMIT_CPUS, "keys %#x taken without a "
		    "cgroup", given);
		harness_assert((given == 0) == (cfg.limits == NULL),
		    "keys %#x gave limits %p", given, (void *)cfg.limits);
		if (cfg.limits != NULL) {
			fuzz_limits_holds(cfg.limits, given, admin, 1);
			fuzz_limits_roundtrip(cfg.limits);
		}
	}
	free(cfg.limits);
}

/* A state's limits map through spec_limits_restore. */
static void
fuzz_limits_restore(const msgpack_object *m)
{
	struct spec_limits *l;

	if (spec_limits_restore(m, &l) == -1) {
		harness_assert(l == NULL, "a refused restore kept its limits");
		return;
	}
	if (l == NULL)
		return;
	fuzz_limits_holds(l, l->mask, 1, 0);
	fuzz_limits_roundtrip(l);
	free(l);
}

/* A CPU list's text: formatted back, it parses as the same set. */
static void
fuzz_limits_cpus(const char *text)
{
	unsigned long set[FUZZ_LIMITS_WORDS], again[FUZZ_LIMITS_WORDS];
	char buf[4096];
	unsigned c;
	int any = 0;

	if (spec_limits_parse_cpus(text, set) == -1)
		return;
	for (c = 0; c < SPEC_LIMITS_NCPUS; c++)
		any |= spec_limits_cpu_isset(set, c);
	harness_assert(any, "'%s' parsed as no CPU", text);
	spec_limits_format_cpus(set, buf, sizeof buf);
	harness_assert(spec_limits_parse_cpus(buf, again) == 0 &&
	    memcmp(set, again, sizeof set) == 0, "'%s' formatted as '%s', "
	    "which parses as another set", text, buf);
}

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char all[] = "cpuset cpu io memory pids\n";
	char path[4096], buf[4096];

	harness_init();
	fuzz_limits_page = (uint64_t)sysconf(_SC_PAGESIZE);
	/* The online CPUs as spec-limits.c reads them. */
	if (read_small_file("/sys/devices/system/cpu/online", buf,
	    sizeof buf) == -1 || spec_limits_parse_cpus(buf, fuzz_limits_online)
	    == -1)
		fuzz_limits_online[0] = 1;	/* sysconf's fallback: CPU 0 */
	fuzz_limits_base = str_printf("%s/cgroup", harness_sandbox());
	harness_assert(fuzz_limits_base != NULL &&
	    mkdir(fuzz_limits_base, 0755) == 0, "no cgroup base");
	snprintf(path, sizeof path, "%s/cgroup.subtree_control",
	    fuzz_limits_base);
	harness_assert(harness_write_file(path, all, sizeof all - 1) == 0,
	    "cannot write %s", path);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const msgpack_object *a[SPEC_LIMIT_COUNT + 1];
	struct ward_err e = WARD_ERR_INIT;
	msgpack_unpacked msg;
	msgpack_object o;
	char text[4200];
	size_t len, off = 0;
	int admin, k;

	if (size < 1 || size > 4096)
		return 0;
	admin = data[0] & 1;
	spec_limits_cgroup(data[0] & 0x40 ? NULL : fuzz_limits_base, "fuzzing");
	if (data[0] & 2) {
		/* One raw value for one key. */
		k = (data[0] >> 2 & 7) % SPEC_LIMIT_COUNT;
		memset(a, 0, sizeof a);
		memset(&o, 0, sizeof o);
		o.type = data[0] & 0x20 ? MSGPACK_OBJECT_BIN : MSGPACK_OBJECT_STR;
		o.via.str.ptr = (const char *)data + 1;
		o.via.str.size = size - 1;
		a[k] = &o;
		fuzz_limits_parse(a, admin);
		if (k == SPEC_LIMIT_CPUS) {
			len = strnlen((const char *)data + 1, size - 1);
			memcpy(text, data + 1, len);
			text[len] = '\0';
			fuzz_limits_cpus(text);
		}
		return 0;
	}
	if (codec_scan((const char *)data + 1, size - 1, &len, &e) !=
	    SCAN_COMPLETE)
		return 0;
	msgpack_unpacked_init(&msg);
	if (msgpack_unpack_next(&msg, (const char *)data + 1, len, &off) ==
	    MSGPACK_UNPACK_SUCCESS) {
		if (codec_args(&msg.data, fuzz_limits_args, a, &e) == 0)
			fuzz_limits_parse(a, admin);
		fuzz_limits_restore(&msg.data);
	}
	msgpack_unpacked_destroy(&msg);
	return 0;
}
