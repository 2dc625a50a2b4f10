/*
 * test_limits.c: spec-limits.c's keys: the values accepted and refused,
 * the CPU lists, the controller check against a fake cgroup directory
 * (cgroup.controllers and cgroup.subtree_control in a temp dir: memory
 * offered, missing, or no cgroups at all), what is written into an
 * instance's cgroup files, and the map shown and saved, read back.
 */
#include "config.h"

#include <sys/stat.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"
#include "unit.h"

struct wardd_opts opts;

static msgpack_object
str_obj(const char *s)
{
	msgpack_object o;

	o.type = MSGPACK_OBJECT_STR;
	o.via.str.ptr = s;
	o.via.str.size = strlen(s);
	return o;
}

static msgpack_object
uint_obj(uint64_t v)
{
	msgpack_object o;

	o.type = MSGPACK_OBJECT_POSITIVE_INTEGER;
	o.via.u64 = v;
	return o;
}

/* Parse one key k = o as an admin; the spec's limits, or NULL with e. */
static struct spec_limits *
parse_one(int k, msgpack_object o, int admin, struct instance_spec *cfg,
    struct ward_err *e)
{
	const msgpack_object *a[SPEC_LIMIT_COUNT] = { NULL };

	memset(cfg, 0, sizeof *cfg);
	e->code = NULL;
	e->msg[0] = '\0';
	a[k] = &o;
	if (spec_limits_parse(cfg, a, admin, e) == -1) {
		free(cfg->limits);
		cfg->limits = NULL;
		return NULL;
	}
	return cfg->limits;
}

static char tmp[64];		/* /tmp/ward-test-limits-XXXXXX */

static void
put(const char *dir, const char *file, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, file);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fputs(text, f);
	fclose(f);
}

/* dir/file, in a buffer of its own for each call's line. */
static const char *
get_path(const char *dir, const char *file)
{
	static char path[PATH_MAX];

	snprintf(path, sizeof path, "%s/%s", dir, file);
	return path;
}

static const char *
get(const char *dir, const char *file)
{
	static char buf[256];
	char path[PATH_MAX];

	if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >=
	    sizeof path || read_small_file(path, buf, sizeof buf) == -1)
		return NULL;
	return buf;
}

/* A fake cgroup that offers controllers (none enabled yet). */
static void
fake_cgroup(const char *controllers)
{
	snprintf(tmp, sizeof tmp, "/tmp/ward-test-limits-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	put(tmp, "cgroup.controllers", controllers);
	put(tmp, "cgroup.subtree_control", "");
	put(tmp, "cgroup.type", "domain\n");	/* not the root cgroup */
	spec_limits_cgroup(tmp, NULL);
}

static void
fake_cgroup_remove(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
	ck_assert_int_eq(system(cmd), 0);
	spec_limits_cgroup(NULL, "a test said so");
}

START_TEST(sizes)
{
	static const struct { const char *in; uint64_t bytes; } good[] = {
		{ "4096", 4096 }, { "512M", 512ULL << 20 }, { "1G", 1ULL << 30 },
		{ "64K", 65536 }, { "2g", 2ULL << 30 },
		{ "max", SPEC_LIMIT_UNLIMITED },
		/* Rounded down to pages (4 KiB here), as the kernel does. */
		{ "10000", 8192 }, { "5000", 4096 },
	};
	static const char *const bad[] = {
		"", "12X", "-1", "1.5G", " 1G", "1G ", "4095", "0", "M", "maxx",
		"99999999999999999999", "17179869184G",
	};
	struct instance_spec cfg;
	struct ward_err e;
	struct spec_limits *l;
	size_t k;

	fake_cgroup("cpu memory pids io");
	for (k = 0; k < sizeof good / sizeof good[0]; k++) {
		if (good[k].bytes % sysconf(_SC_PAGESIZE) != 0 &&
		    good[k].bytes != SPEC_LIMIT_UNLIMITED)
			continue;	/* a machine with larger pages */
		l = parse_one(SPEC_LIMIT_MEMORY_MAX, str_obj(good[k].in), 1,
		    &cfg, &e);
		ck_assert_msg(l != NULL, "%s: %s", good[k].in, e.msg);
		ck_assert_uint_eq(l->value[SPEC_LIMIT_MEMORY_MAX], good[k].bytes);
		free(l);
	}
	l = parse_one(SPEC_LIMIT_MEMORY_HIGH, uint_obj(1 << 20), 1, &cfg, &e);
	ck_assert_ptr_nonnull(l);
	ck_assert_uint_eq(l->value[SPEC_LIMIT_MEMORY_HIGH], 1 << 20);
	free(l);
	for (k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		l = parse_one(SPEC_LIMIT_MEMORY_MAX, str_obj(bad[k]), 1, &cfg, &e);
		ck_assert_msg(l == NULL, "'%s' was taken", bad[k]);
		ck_assert_str_eq(e.code, WARD_E_INVALID_ARGUMENT);
		ck_assert_msg(strstr(e.msg, "'memory_max' is bytes") != NULL,
		    "%s", e.msg);
	}
	fake_cgroup_remove();
}
END_TEST

START_TEST(cpu_max_and_counts)
{
	static const struct { const char *in; uint64_t quota, period; } good[] = {
		{ "50%", 50000, 100000 }, { "200%", 200000, 100000 },
		{ "1%", 1000, 100000 }, { "25000 50000", 25000, 50000 },
		{ "max", SPEC_LIMIT_UNLIMITED, 100000 },
		{ "max 20000", SPEC_LIMIT_UNLIMITED, 20000 },
		{ "30000", 30000, 100000 },
	};
	static const char *const bad[] = {
		"0%", "%", "50 %", "999 100000", "1000 999", "1000 1000001",
		"1000 100000 3", "half", "50.5%", "",
	};
	struct instance_spec cfg;
	struct ward_err e;
	struct spec_limits *l;
	size_t k;

	fake_cgroup("cpu memory pids io");
	for (k = 0; k < sizeof good / sizeof good[0]; k++) {
		l = parse_one(SPEC_LIMIT_CPU_MAX, str_obj(good[k].in), 1, &cfg, &e);
		ck_assert_msg(l != NULL, "%s: %s", good[k].in, e.msg);
		ck_assert_uint_eq(l->value[SPEC_LIMIT_CPU_MAX], good[k].quota);
		ck_assert_uint_eq(l->cpu_period, good[k].period);
		free(l);
	}
	for (k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		ck_assert_msg(parse_one(SPEC_LIMIT_CPU_MAX, str_obj(bad[k]), 1,
		    &cfg, &e) == NULL, "'%s' was taken", bad[k]);
		ck_assert_str_eq(e.code, WARD_E_INVALID_ARGUMENT);
	}
	/* A number is no cpu_max: which unit would it be? */
	ck_assert_ptr_null(parse_one(SPEC_LIMIT_CPU_MAX, uint_obj(50000), 1,
	    &cfg, &e));
	/* Weights: 1 to 10000, a number or its digits. */
	l = parse_one(SPEC_LIMIT_CPU_WEIGHT, str_obj("10000"), 1, &cfg, &e);
	ck_assert_ptr_nonnull(l);
	free(l);
	ck_assert_ptr_null(parse_one(SPEC_LIMIT_CPU_WEIGHT, uint_obj(0), 1,
	    &cfg, &e));
	ck_assert_ptr_null(parse_one(SPEC_LIMIT_IO_WEIGHT, uint_obj(10001), 1,
	    &cfg, &e));
	ck_assert_str_eq(e.code, WARD_E_INVALID_ARGUMENT);
	/* Above the default is more than a share: admins only. */
	ck_assert_ptr_null(parse_one(SPEC_LIMIT_CPU_WEIGHT, uint_obj(101), 0,
	    &cfg, &e));
	ck_assert_str_eq(e.code, WARD_E_PERMISSION);
	l = parse_one(SPEC_LIMIT_IO_WEIGHT, uint_obj(50), 0, &cfg, &e);
	ck_assert_ptr_nonnull(l);
	free(l);
	/* pids_max: 1 to 4194304 or "max"; no suffixes. */
	l = parse_one(SPEC_LIMIT_PIDS_MAX, str_obj("max"), 1, &cfg, &e);
	ck_assert_ptr_nonnull(l);
	ck_assert_uint_eq(l->value[SPEC_LIMIT_PIDS_MAX], SPEC_LIMIT_UNLIMITED);
	free(l);
	ck_assert_ptr_null(parse_one(SPEC_LIMIT_PIDS_MAX, str_obj("1K"), 1,
	    &cfg, &e));
	ck_assert_ptr_null(parse_one(SPEC_LIMIT_PIDS_MAX, uint_obj(0), 1,
	    &cfg, &e));
	ck_assert_ptr_null(parse_one(SPEC_LIMIT_PIDS_MAX, uint_obj(4194305), 1,
	    &cfg, &e));
	fake_cgroup_remove();
}
END_TEST

START_TEST(cpu_lists)
{
	static const struct { const char *in, *out; } good[] = {
		{ "0", "0" }, { "0-1,3", "0-1,3" }, { "3,0-1", "0-1,3" },
		{ "5,4,6-7", "4-7" }, { "0-0", "0" }, { "1023", "1023" },
		{ "0,2,4\n", "0,2,4" },
	};
	static const char *const bad[] = {
		"", ",", "0,", "1-0", "a", "0 1", "-1", "1024", "0-1024", "0--1",
	};
	unsigned long set[SPEC_LIMITS_NCPUS / (8 * sizeof(unsigned long))];
	char buf[256];
	size_t k;

	for (k = 0; k < sizeof good / sizeof good[0]; k++) {
		ck_assert_msg(spec_limits_parse_cpus(good[k].in, set) == 0, "%s",
		    good[k].in);
		spec_limits_format_cpus(set, buf, sizeof buf);
		ck_assert_str_eq(buf, good[k].out);
	}
	for (k = 0; k < sizeof bad / sizeof bad[0]; k++)
		ck_assert_msg(spec_limits_parse_cpus(bad[k], set) == -1,
		    "'%s' was taken", bad[k]);
}
END_TEST

START_TEST(cpus_exist)
{
	struct instance_spec cfg;
	struct ward_err e;
	struct spec_limits *l;

	/* No cgroups: cpus is the affinity alone, and not refused. */
	spec_limits_cgroup(NULL, "--no-cgroups was given");
	l = parse_one(SPEC_LIMIT_CPUS, str_obj("0"), 0, &cfg, &e);
	ck_assert_msg(l != NULL, "%s", e.msg);
	ck_assert(spec_limits_cpu_isset(l->cpus, 0));
	ck_assert(!spec_limits_cpu_isset(l->cpus, 1));
	free(l);
	l = parse_one(SPEC_LIMIT_CPUS, uint_obj(0), 0, &cfg, &e);
	ck_assert_ptr_nonnull(l);
	free(l);
	/* No machine here has CPU 1023 online. */
	ck_assert_ptr_null(parse_one(SPEC_LIMIT_CPUS, str_obj("0,1023"), 0,
	    &cfg, &e));
	ck_assert_str_eq(e.code, WARD_E_INVALID_ARGUMENT);
	ck_assert_msg(strstr(e.msg, "CPU 1023") != NULL &&
	    strstr(e.msg, "its CPUs: 0") != NULL, "%s", e.msg);
	ck_assert_ptr_null(parse_one(SPEC_LIMIT_CPUS, str_obj("zero"), 0,
	    &cfg, &e));
	ck_assert_msg(strstr(e.msg, "'cpus' is a list of CPUs") != NULL, "%s",
	    e.msg);
}
END_TEST

START_TEST(controllers)
{
	struct instance_spec cfg;
	struct ward_err e;
	struct spec_limits *l;

	/* Offered, not enabled: enabled in subtree_control now. */
	fake_cgroup("cpuset cpu io memory hugetlb pids\n");
	l = parse_one(SPEC_LIMIT_MEMORY_MAX, str_obj("8M"), 0, &cfg, &e);
	ck_assert_msg(l != NULL, "%s", e.msg);
	ck_assert_str_eq(get(tmp, "cgroup.subtree_control"), "+memory");
	free(l);
	/* Enabled already: nothing written. */
	put(tmp, "cgroup.subtree_control", "memory pids\n");
	l = parse_one(SPEC_LIMIT_PIDS_MAX, uint_obj(10), 0, &cfg, &e);
	ck_assert_ptr_nonnull(l);
	ck_assert_str_eq(get(tmp, "cgroup.subtree_control"), "memory pids\n");
	free(l);
	fake_cgroup_remove();

	/* The root cgroup (no cgroup.type): offered, never enabled there. */
	fake_cgroup("cpu io memory pids\n");
	ck_assert_int_eq(unlink(get_path(tmp, "cgroup.type")), 0);
	ck_assert_ptr_null(parse_one(SPEC_LIMIT_CPU_WEIGHT, uint_obj(50), 0,
	    &cfg, &e));
	ck_assert_str_eq(e.code, WARD_E_UNSUPPORTED);
	ck_assert_msg(strstr(e.msg, "never changes the root cgroup") != NULL,
	    "%s", e.msg);
	ck_assert_msg(get(tmp, "cgroup.subtree_control") == NULL, "written: "
	    "%s", get(tmp, "cgroup.subtree_control"));	/* still empty */
	fake_cgroup_remove();

	/* Not offered: unsupported, naming the key, controller and place. */
	fake_cgroup("hugetlb\n");
	ck_assert_ptr_null(parse_one(SPEC_LIMIT_MEMORY_HIGH, str_obj("1G"), 0,
	    &cfg, &e));
	ck_assert_str_eq(e.code, WARD_E_UNSUPPORTED);
	ck_assert_msg(strstr(e.msg, "memory_high needs the cgroup memory "
	    "controller, which ") != NULL && strstr(e.msg, tmp) != NULL &&
	    strstr(e.msg, "does not offer") != NULL, "%s", e.msg);
	ck_assert_ptr_null(parse_one(SPEC_LIMIT_CPU_MAX, str_obj("50%"), 0,
	    &cfg, &e));
	ck_assert_msg(strstr(e.msg, "cpu_max needs the cgroup cpu controller")
	    != NULL, "%s", e.msg);
	ck_assert_ptr_null(parse_one(SPEC_LIMIT_IO_WEIGHT, uint_obj(50), 0,
	    &cfg, &e));
	ck_assert_msg(strstr(e.msg, "cgroup io controller") != NULL, "%s",
	    e.msg);
	/* A bad value is invalid_argument first, whatever the cgroup has. */
	ck_assert_ptr_null(parse_one(SPEC_LIMIT_PIDS_MAX, str_obj("lots"), 0,
	    &cfg, &e));
	ck_assert_str_eq(e.code, WARD_E_INVALID_ARGUMENT);
	/* cpus without cpuset: the affinity alone. */
	l = parse_one(SPEC_LIMIT_CPUS, str_obj("0"), 0, &cfg, &e);
	ck_assert_msg(l != NULL, "%s", e.msg);
	free(l);
	fake_cgroup_remove();

	/* No cgroups at all: unsupported, saying why. */
	spec_limits_cgroup(NULL, "--no-cgroups was given");
	ck_assert_ptr_null(parse_one(SPEC_LIMIT_PIDS_MAX, uint_obj(5), 0,
	    &cfg, &e));
	ck_assert_str_eq(e.code, WARD_E_UNSUPPORTED);
	ck_assert_msg(strstr(e.msg, "pids_max needs the cgroup pids controller, "
	    "but wardd runs instances without cgroups (--no-cgroups was "
	    "given)") != NULL, "%s", e.msg);
}
END_TEST

START_TEST(write_files)
{
	const msgpack_object *a[SPEC_LIMIT_COUNT] = { NULL };
	msgpack_object mm = str_obj("512M"), cm = str_obj("50%"),
	    iw = uint_obj(50), cpus = str_obj("0"), pm = uint_obj(32);
	struct instance_spec cfg = { 0 };
	struct ward_err e = WARD_ERR_INIT;
	char inst[PATH_MAX];

	fake_cgroup("cpu io memory pids");
	a[SPEC_LIMIT_MEMORY_MAX] = &mm;
	a[SPEC_LIMIT_CPU_MAX] = &cm;
	a[SPEC_LIMIT_IO_WEIGHT] = &iw;
	a[SPEC_LIMIT_CPUS] = &cpus;
	ck_assert_msg(spec_limits_parse(&cfg, a, 1, &e) == 0, "%s", e.msg);
	/* The instance's directory, as the kernel makes it: files there. */
	snprintf(inst, sizeof inst, "%s/ward-1-2-3", tmp);
	ck_assert_int_eq(mkdir(inst, 0755), 0);
	put(inst, "memory.max", "");
	put(inst, "cpu.max", "");
	put(inst, "io.weight", "");
	/* No cpuset.cpus: skipped, the affinity does it. */
	ck_assert_msg(spec_limits_write(cfg.limits, inst, &e) == 0, "%s", e.msg);
	ck_assert_str_eq(get(inst, "memory.max"), "536870912");
	ck_assert_str_eq(get(inst, "cpu.max"), "50000 100000");
	ck_assert_str_eq(get(inst, "io.weight"), "default 50");
	/* With cpuset.cpus there: written too. */
	put(inst, "cpuset.cpus", "");
	ck_assert_int_eq(spec_limits_write(cfg.limits, inst, &e), 0);
	ck_assert_str_eq(get(inst, "cpuset.cpus"), "0");
	/* A controller file gone: unsupported, naming it. */
	free(cfg.limits);
	cfg.limits = NULL;
	memset(a, 0, sizeof a);
	a[SPEC_LIMIT_PIDS_MAX] = &pm;
	ck_assert_int_eq(spec_limits_parse(&cfg, a, 1, &e), 0);
	ck_assert_int_eq(spec_limits_write(cfg.limits, inst, &e), -1);
	ck_assert_str_eq(e.code, WARD_E_UNSUPPORTED);
	ck_assert_msg(strstr(e.msg, "pids_max needs the cgroup pids controller")
	    != NULL, "%s", e.msg);
	/* No limits: nothing to write. */
	ck_assert_int_eq(spec_limits_write(NULL, inst, &e), 0);
	/* No cgroup at all (dir NULL): pids_max is refused, as at create. */
	spec_limits_cgroup(NULL, "--no-cgroups was given");
	ck_assert_int_eq(spec_limits_write(cfg.limits, NULL, &e), -1);
	ck_assert_str_eq(e.code, WARD_E_UNSUPPORTED);
	ck_assert_msg(strstr(e.msg, "without cgroups (--no-cgroups was given)")
	    != NULL, "%s", e.msg);
	spec_limits_cgroup(tmp, NULL);
	free(cfg.limits);
	fake_cgroup_remove();
}
END_TEST

START_TEST(pack_restore)
{
	const msgpack_object *a[SPEC_LIMIT_COUNT] = { NULL };
	msgpack_object v[SPEC_LIMIT_COUNT];
	struct instance_spec cfg = { 0 };
	struct ward_err e = WARD_ERR_INIT;
	struct spec_limits *back;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_unpacked u;
	int k;

	fake_cgroup("cpu io memory pids");
	v[SPEC_LIMIT_MEMORY_MAX] = str_obj("1G");
	v[SPEC_LIMIT_MEMORY_HIGH] = str_obj("max");
	v[SPEC_LIMIT_CPU_MAX] = str_obj("max 50000");
	v[SPEC_LIMIT_CPU_WEIGHT] = uint_obj(7);
	v[SPEC_LIMIT_PIDS_MAX] = str_obj("100");
	v[SPEC_LIMIT_IO_WEIGHT] = uint_obj(10000);
	v[SPEC_LIMIT_CPUS] = str_obj("0");
	for (k = 0; k < SPEC_LIMIT_COUNT; k++)
		a[k] = &v[k];
	ck_assert_msg(spec_limits_parse(&cfg, a, 1, &e) == 0, "%s", e.msg);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	spec_limits_pack(&pk, cfg.limits);
	msgpack_unpacked_init(&u);
	ck_assert_int_eq(msgpack_unpack_next(&u, sb.data, sb.size, NULL),
	    MSGPACK_UNPACK_SUCCESS);
	ck_assert_int_eq(u.data.type, MSGPACK_OBJECT_MAP);
	ck_assert_uint_eq(u.data.via.map.size, SPEC_LIMIT_COUNT);
	/* As shown: numbers, "max", cpu_max as cpu.max has it, the list. */
	ck_assert_uint_eq(u.data.via.map.ptr[0].val.via.u64, 1ULL << 30);
	ck_assert(codec_streq(&u.data.via.map.ptr[1].val, "max"));
	ck_assert(codec_streq(&u.data.via.map.ptr[2].val, "max 50000"));
	ck_assert(codec_streq(&u.data.via.map.ptr[6].val, "0"));
	ck_assert_int_eq(spec_limits_restore(&u.data, &back), 0);
	ck_assert_ptr_nonnull(back);
	ck_assert_int_eq(memcmp(back, cfg.limits, sizeof *back), 0);
	free(back);
	/* A corrupt value: the whole spec is refused. */
	u.data.via.map.ptr[0].val = str_obj("lots");
	ck_assert_int_eq(spec_limits_restore(&u.data, &back), -1);
	ck_assert_ptr_null(back);
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
	/* None given: every key nil (a record of fixed shape), none back. */
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	spec_limits_pack(&pk, NULL);
	msgpack_unpacked_init(&u);
	ck_assert_int_eq(msgpack_unpack_next(&u, sb.data, sb.size, NULL),
	    MSGPACK_UNPACK_SUCCESS);
	ck_assert_uint_eq(u.data.via.map.size, SPEC_LIMIT_COUNT);
	for (k = 0; k < SPEC_LIMIT_COUNT; k++)
		ck_assert_int_eq(u.data.via.map.ptr[k].val.type,
		    MSGPACK_OBJECT_NIL);
	ck_assert_int_eq(spec_limits_restore(&u.data, &back), 0);
	ck_assert_ptr_null(back);
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
	ck_assert_int_eq(spec_limits_restore(NULL, &back), 0);
	ck_assert_ptr_null(back);
	free(cfg.limits);
	fake_cgroup_remove();
}
END_TEST

/* A value with a NUL byte is refused, not read up to the NUL (fuzz_limits
 * found "1801439850948\0..." taken as a memory_max). */
START_TEST(nul_bytes)
{
	static const struct {
		int k;
		const char *key, *in;
		size_t len;
	} bad[] = {
		{ SPEC_LIMIT_MEMORY_MAX, "memory_max", "512M\0junk", 9 },
		{ SPEC_LIMIT_MEMORY_HIGH, "memory_high", "max\0", 4 },
		{ SPEC_LIMIT_CPU_MAX, "cpu_max", "50%\0", 4 },
		{ SPEC_LIMIT_CPU_WEIGHT, "cpu_weight", "10\0" "0", 4 },
		{ SPEC_LIMIT_PIDS_MAX, "pids_max", "\0", 1 },
		{ SPEC_LIMIT_IO_WEIGHT, "io_weight", "50\0", 3 },
		{ SPEC_LIMIT_CPUS, "cpus", "0\0-5", 4 },
	};
	struct instance_spec cfg;
	struct ward_err e;
	struct spec_limits *l;
	msgpack_object m;
	msgpack_object_kv kv;
	size_t k;

	fake_cgroup("cpu memory pids io");
	for (k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		kv.key = str_obj(bad[k].key);
		kv.val = str_obj(bad[k].in);
		kv.val.via.str.size = bad[k].len;
		l = parse_one(bad[k].k, kv.val, 1, &cfg, &e);
		ck_assert_msg(l == NULL, "%s was taken", bad[k].key);
		ck_assert_str_eq(e.code, WARD_E_INVALID_ARGUMENT);
		/* Nor read back from a state. */
		m.type = MSGPACK_OBJECT_MAP;
		m.via.map.size = 1;
		m.via.map.ptr = &kv;
		ck_assert_int_eq(spec_limits_restore(&m, &l), -1);
		ck_assert_ptr_null(l);
	}
	fake_cgroup_remove();
}
END_TEST

int
main(void)
{
	TCase *tc;
	Suite *s = unit_suite("limits", &tc);

	tcase_add_test(tc, sizes);
	tcase_add_test(tc, cpu_max_and_counts);
	tcase_add_test(tc, cpu_lists);
	tcase_add_test(tc, cpus_exist);
	tcase_add_test(tc, controllers);
	tcase_add_test(tc, write_files);
	tcase_add_test(tc, pack_restore);
	tcase_add_test(tc, nul_bytes);
	return UNIT_RUN(s);
}
