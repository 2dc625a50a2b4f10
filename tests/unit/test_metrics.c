/*
 * test_metrics.c: the pure parsers of metrics.c, on /proc texts recorded
 * from real processes (crosvm on x86-64 and arm64, and ordinary ones).
 */
#include "config.h"

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"
#include "unit.h"

struct wardd_opts opts;

/* ---- /proc/PID/stat: fields 14 (utime), 15 (stime), 43 (guest_time) */

/* A crosvm VMM process, 52 fields (Linux 6.x). */
static const char stat_crosvm[] =
    "4242 (crosvm) S 4200 4242 4200 0 -1 4194560 51234 0 12 0 1520 348 0 0 "
    "20 0 9 0 1234567 2147483648 262144 18446744073709551615 94000000000000 "
    "94000000100000 140730000000000 0 0 0 0 4096 17664 0 0 0 17 3 0 0 7 9123 "
    "0 94000000200000 94000000210000 94000100000000 140730000001000 "
    "140730000001100 140730000001100 140730000002000 0\n";

/* A command name may hold spaces and ')': only the last ')' ends it. */
static const char stat_parens[] =
    "77 ((my) proc)) R 1 77 77 34816 77 4194304 100 0 0 0 31 7 0 0 20 0 1 0 "
    "80608 3133440 385 18446744073709551615 93920686477312 93920686497193 "
    "140735394965840 0 0 0 0 0 0 0 0 0 17 1 0 0 0 5 0 93920686513200 "
    "93920686514816 93920910622720 140735394970240 140735394970260 "
    "140735394970260 140735394971627 0\n";

/* Worse: a name that looks like the fields that follow it. */
static const char stat_lookalike[] =
    "78 () 1 2 3 4 5 6 7) S 1 78 78 0 -1 4194304 100 0 0 0 44 55 0 0 20 0 1 0 "
    "80608 3133440 385 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 "
    "0 66 0 0 0 0 0 0 0 0 0\n";

/* Linux 2.6.23 and older stop before guest_time. */
static const char stat_old[] =
    "1 (init) S 0 1 1 0 -1 8388864 1000 2000 30 40 250 125 300 400 15 0 1 0 "
    "5 2043904 150 4294967295 134512640 134544120 3219128720 3219127212 "
    "3086137102 0 0 1475401980 671819267 3222387013 0 0 0 0 0 0\n";

START_TEST(stat_fields)
{
	struct proc_stat st;

	memset(&st, 0xa5, sizeof st);
	ck_assert_int_eq(metrics_parse_stat(stat_crosvm, &st), 0);
	ck_assert_uint_eq(st.utime_ticks, 1520);
	ck_assert_uint_eq(st.stime_ticks, 348);
	ck_assert_uint_eq(st.guest_ticks, 9123);
	ck_assert(st.has_rss);
	ck_assert_uint_eq(st.rss_pages, 262144);	/* field 24 */
	ck_assert_int_eq(st.state, 'S');		/* field 3 */

	ck_assert_int_eq(metrics_parse_stat(stat_parens, &st), 0);
	ck_assert_uint_eq(st.utime_ticks, 31);
	ck_assert_uint_eq(st.stime_ticks, 7);
	ck_assert_uint_eq(st.guest_ticks, 5);

	ck_assert_int_eq(metrics_parse_stat(stat_lookalike, &st), 0);
	ck_assert_uint_eq(st.utime_ticks, 44);
	ck_assert_uint_eq(st.stime_ticks, 55);
	ck_assert_uint_eq(st.guest_ticks, 66);
	ck_assert_uint_eq(st.rss_pages, 385);
}
END_TEST

/* Field i holds 1000 + i: any off-by-one shows. */
START_TEST(stat_field_positions)
{
	char line[1024];
	struct proc_stat st;
	size_t n;
	int i;

	n = (size_t)snprintf(line, sizeof line, "1001 (x y) R");
	for (i = 4; i <= 52; i++)
		n += (size_t)snprintf(line + n, sizeof line - n, " %d",
		    1000 + i);
	snprintf(line + n, sizeof line - n, "\n");
	ck_assert_int_eq(metrics_parse_stat(line, &st), 0);
	ck_assert_uint_eq(st.utime_ticks, 1014);
	ck_assert_uint_eq(st.stime_ticks, 1015);
	ck_assert_uint_eq(st.guest_ticks, 1043);

	/* Without the newline, and with exactly 43 fields. */
	line[n] = '\0';
	ck_assert_int_eq(metrics_parse_stat(line, &st), 0);
	ck_assert_uint_eq(st.guest_ticks, 1043);
	n = (size_t)snprintf(line, sizeof line, "1001 (x) R");
	for (i = 4; i <= 43; i++)
		n += (size_t)snprintf(line + n, sizeof line - n, " %d",
		    1000 + i);
	ck_assert_int_eq(metrics_parse_stat(line, &st), 0);
	ck_assert_uint_eq(st.utime_ticks, 1014);
	ck_assert_uint_eq(st.stime_ticks, 1015);
	ck_assert_uint_eq(st.guest_ticks, 1043);
}
END_TEST

START_TEST(stat_old_kernel)
{
	struct proc_stat st;

	memset(&st, 0xa5, sizeof st);
	ck_assert_int_eq(metrics_parse_stat(stat_old, &st), 0);
	ck_assert_uint_eq(st.utime_ticks, 250);
	ck_assert_uint_eq(st.stime_ticks, 125);
	ck_assert_uint_eq(st.guest_ticks, 0);
}
END_TEST

START_TEST(stat_malformed)
{
	struct proc_stat st;

	ck_assert_int_eq(metrics_parse_stat("", &st), -1);
	ck_assert_int_eq(metrics_parse_stat("\n", &st), -1);
	ck_assert_int_eq(metrics_parse_stat("4242 crosvm S 1 2 3 4 5 6 7 8 9 10 "
	    "11 12 13 14 15 16", &st), -1);
	/* Cut before stime: the CPU times are not all there. */
	ck_assert_int_eq(metrics_parse_stat("4242 (crosvm) S 1 2 3 4 5 6 7 8 9 "
	    "10 11\n", &st), -1);
	ck_assert_int_eq(metrics_parse_stat("4242 (crosvm)", &st), -1);
	ck_assert_int_eq(metrics_parse_stat("4242 (crosvm) ", &st), -1);
	/* Through stime is enough. */
	ck_assert_int_eq(metrics_parse_stat("4242 (crosvm) S 1 2 3 4 5 6 7 8 9 "
	    "10 11 12\n", &st), 0);
	ck_assert_uint_eq(st.utime_ticks, 11);
	ck_assert_uint_eq(st.stime_ticks, 12);
	ck_assert_uint_eq(st.guest_ticks, 0);
}
END_TEST

/* Read a small /proc file of this process. */
static void
read_self(const char *path, char *buf, size_t size)
{
	ssize_t n, total = 0;
	int fd;

	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	while ((size_t)total < size - 1 &&
	    (n = read(fd, buf + total, size - 1 - total)) > 0)
		total += n;
	close(fd);
	ck_assert_int_gt(total, 0);
	buf[total] = '\0';
}

START_TEST(stat_this_process)
{
	struct proc_stat st;
	uint64_t pages = 0;
	char buf[4096];

	read_self("/proc/self/stat", buf, sizeof buf);
	ck_assert_int_eq(metrics_parse_stat(buf, &st), 0);
	ck_assert_uint_eq(st.guest_ticks, 0);	/* not a VMM */
	ck_assert(st.has_rss);
	ck_assert_uint_gt(st.rss_pages, 0);
	/* The same pages statm's second field says (give or take the
	 * faults between the two reads). */
	read_self("/proc/self/statm", buf, sizeof buf);
	ck_assert_int_eq(sscanf(buf, "%*u %" SCNu64, &pages), 1);
	ck_assert_uint_le(pages > st.rss_pages ? pages - st.rss_pages :
	    st.rss_pages - pages, 512);
}
END_TEST


/* ---- /proc/PID/smaps_rollup */

static const char rollup[] =
    "556b6b06c000-7ffd6bd85000 ---p 00000000 00:00 0                          [rollup]\n"
    "Rss:             1070132 kB\n"
    "Pss:             1053508 kB\n"
    "Pss_Dirty:       1013292 kB\n"
    "Pss_Anon:          11636 kB\n"
    "Pss_File:          40216 kB\n"
    "Pss_Shmem:       1001656 kB\n"
    "Shared_Clean:      17888 kB\n"
    "Shared_Dirty:          0 kB\n"
    "Private_Clean:     38948 kB\n"
    "Private_Dirty:   1013296 kB\n"
    "Referenced:      1070132 kB\n"
    "Anonymous:         11636 kB\n"
    "KSM:                   0 kB\n"
    "LazyFree:              0 kB\n"
    "AnonHugePages:         0 kB\n"
    "ShmemPmdMapped:        0 kB\n"
    "FilePmdMapped:         0 kB\n"
    "Shared_Hugetlb:        0 kB\n"
    "Private_Hugetlb:       0 kB\n"
    "Swap:                  0 kB\n"
    "SwapPss:               0 kB\n"
    "Locked:                0 kB\n";

START_TEST(rollup_pss)
{
	uint64_t pss = 0;
	char buf[4096];

	ck_assert_int_eq(metrics_parse_rollup(rollup, &pss), 0);
	ck_assert_uint_eq(pss, 1053508);

	/* Pss_* before Pss (older layouts) must not be taken for it. */
	ck_assert_int_eq(metrics_parse_rollup(
	    "00400000-7fff00000000 ---p 00000000 00:00 0 [rollup]\n"
	    "Rss:                 1616 kB\n"
	    "Pss_Anon:             116 kB\n"
	    "Pss_Dirty:            117 kB\n"
	    "SwapPss:                3 kB\n"
	    "Pss:                  452 kB\n", &pss), 0);
	ck_assert_uint_eq(pss, 452);

	/* The last line without its newline. */
	ck_assert_int_eq(metrics_parse_rollup("Rss: 9 kB\nPss: 8 kB", &pss), 0);
	ck_assert_uint_eq(pss, 8);

	/* This process's own. */
	read_self("/proc/self/smaps_rollup", buf, sizeof buf);
	ck_assert_int_eq(metrics_parse_rollup(buf, &pss), 0);
	ck_assert_uint_gt(pss, 0);
}
END_TEST

START_TEST(rollup_missing)
{
	uint64_t pss = 7;

	ck_assert_int_eq(metrics_parse_rollup("", &pss), -1);
	ck_assert_int_eq(metrics_parse_rollup("Rss: 9 kB\nPss_Anon: 3 kB\n"
	    "SwapPss: 1 kB\n", &pss), -1);
	/* "Pss:" only counts at the start of a line. */
	ck_assert_int_eq(metrics_parse_rollup("Rss: 9 kB Pss: 3 kB\n", &pss),
	    -1);
	ck_assert_uint_eq(pss, 7);
}
END_TEST

/* ---- /proc/PID/smaps: Rss of the mappings whose name holds a string */

/* One mapping's fields as Linux 6.x prints them; Pss differs from Rss. */
#define FIELDS(size, rss, pss)						\
	"Size:             " #size " kB\n"				\
	"KernelPageSize:        4 kB\n"					\
	"MMUPageSize:           4 kB\n"					\
	"Rss:              " #rss " kB\n"				\
	"Pss:              " #pss " kB\n"				\
	"Pss_Dirty:        " #pss " kB\n"				\
	"Shared_Clean:          0 kB\n"					\
	"Shared_Dirty:          0 kB\n"					\
	"Private_Clean:         0 kB\n"					\
	"Private_Dirty:    " #rss " kB\n"				\
	"Referenced:       " #rss " kB\n"				\
	"Anonymous:             0 kB\n"					\
	"KSM:                   0 kB\n"					\
	"LazyFree:              0 kB\n"					\
	"AnonHugePages:         0 kB\n"					\
	"ShmemPmdMapped:        0 kB\n"					\
	"FilePmdMapped:         0 kB\n"					\
	"Shared_Hugetlb:        0 kB\n"					\
	"Private_Hugetlb:       0 kB\n"					\
	"Swap:                 77 kB\n"					\
	"SwapPss:              77 kB\n"					\
	"Locked:                0 kB\n"					\
	"THPeligible:           0\n"					\
	"ProtectionKey:         0\n"

/* crosvm on x86-64: 1 GiB of guest RAM in a memfd, mapped in two parts. */
static const char smaps_x86[] =
    "5581d0a00000-5581d0e3c000 r--p 00000000 fe:01 1315330                    /usr/bin/crosvm\n"
    FIELDS(4336, 4100, 4000)
    "VmFlags: rd mr mw me dw sd \n"
    "5581d1e00000-5581d1e21000 rw-p 00000000 00:00 0                          [heap]\n"
    FIELDS(132, 132, 131)
    "VmFlags: rd wr mr mw me ac sd \n"
    "7f2c00000000-7f2c40000000 rw-s 00000000 00:01 2048                       /memfd:crosvm_guest (deleted)\n"
    FIELDS(1048576, 1001472, 1001000)
    "VmFlags: rd wr sh mr mw me ms sd \n"
    "7f2c40000000-7f2c40200000 rw-s 40000000 00:01 2048                       /memfd:crosvm_guest (deleted)\n"
    FIELDS(2048, 2048, 2000)
    "VmFlags: rd wr sh mr mw me ms sd \n"
    "7f2c80000000-7f2c80021000 rw-p 00000000 00:00 0 \n"
    FIELDS(132, 16, 15)
    "VmFlags: rd wr mr mw me nr sd \n"
    "7f2d00000000-7f2d00100000 rw-s 00000000 00:01 3072                       /memfd:crosvm_gpu (deleted)\n"
    FIELDS(1024, 512, 500)
    "VmFlags: rd wr sh mr mw me ms sd \n"
    "7ffd5e7a1000-7ffd5e7c2000 rw-p 00000000 00:00 0                          [stack]\n"
    FIELDS(132, 24, 23)
    "VmFlags: rd wr mr mw me gd ac \n"
    "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n"
    FIELDS(4, 0, 0)
    "VmFlags: ex \n";

/*
 * crosvm on arm64: mmap addresses start with hex letters. The guest memory
 * follows a mapping that does not match, and precedes one that does not.
 */
static const char smaps_arm64[] =
    "aaaad6d70000-aaaad7190000 r-xp 00000000 b3:02 262402                     /usr/bin/crosvm\n"
    FIELDS(4224, 3900, 3800)
    "VmFlags: rd ex mr mw me \n"
    "ffff60000000-ffffa0000000 rw-s 00000000 00:01 9                          /memfd:crosvm_guest (deleted)\n"
    FIELDS(1048576, 524288, 524000)
    "VmFlags: rd wr sh mr mw me ms \n"
    "ffffa8e10000-ffffa8e31000 rw-p 00000000 00:00 0 \n"
    FIELDS(132, 40, 39)
    "VmFlags: rd wr mr mw me ac \n"
    "ffffd2a50000-ffffd2a71000 rw-p 00000000 00:00 0                          [stack]\n"
    FIELDS(132, 20, 19)
    "VmFlags: rd wr mr mw me gd ac";	/* no final newline */

START_TEST(smaps_guest_memory)
{
	ck_assert_uint_eq(metrics_parse_smaps_mapping(smaps_x86,
	    "crosvm_guest"), 1001472 + 2048);
	ck_assert_uint_eq(metrics_parse_smaps_mapping(smaps_x86,
	    "/memfd:crosvm_guest"), 1001472 + 2048);
	ck_assert_uint_eq(metrics_parse_smaps_mapping(smaps_x86,
	    "/memfd:crosvm_guest (deleted)"), 1001472 + 2048);
	ck_assert_uint_eq(metrics_parse_smaps_mapping(smaps_x86,
	    "crosvm_gpu"), 512);
	/* A substring: the binary and both kinds of memfd. */
	ck_assert_uint_eq(metrics_parse_smaps_mapping(smaps_x86, "crosvm"),
	    4100 + 1001472 + 2048 + 512);
	ck_assert_uint_eq(metrics_parse_smaps_mapping(smaps_x86, "[heap]"),
	    132);
	ck_assert_uint_eq(metrics_parse_smaps_mapping(smaps_x86, "[stack]"),
	    24);
	ck_assert_uint_eq(metrics_parse_smaps_mapping(smaps_x86, "qemu"), 0);

	ck_assert_uint_eq(metrics_parse_smaps_mapping(smaps_arm64,
	    "crosvm_guest"), 524288);
	ck_assert_uint_eq(metrics_parse_smaps_mapping(smaps_arm64,
	    "[stack]"), 20);
	ck_assert_uint_eq(metrics_parse_smaps_mapping(smaps_arm64,
	    "/usr/bin/crosvm"), 3900);
}
END_TEST

START_TEST(smaps_name_field_only)
{
	/* Only the name is searched, not the address, perms, dev or inode. */
	ck_assert_uint_eq(metrics_parse_smaps_mapping(smaps_x86, "00:01"), 0);
	ck_assert_uint_eq(metrics_parse_smaps_mapping(smaps_x86, "rw-s"), 0);
	ck_assert_uint_eq(metrics_parse_smaps_mapping(smaps_x86, "2048"), 0);
	ck_assert_uint_eq(metrics_parse_smaps_mapping(smaps_x86, "7f2c"), 0);
	ck_assert_uint_eq(metrics_parse_smaps_mapping(smaps_x86, "40000000"),
	    0);
	/* Nor the field lines: "Rss" is no mapping's name. */
	ck_assert_uint_eq(metrics_parse_smaps_mapping(smaps_x86, "Rss"), 0);
	ck_assert_uint_eq(metrics_parse_smaps_mapping(smaps_x86, "sh mr"), 0);
	ck_assert_uint_eq(metrics_parse_smaps_mapping(smaps_arm64, "b3:02"),
	    0);
	ck_assert_uint_eq(metrics_parse_smaps_mapping("", "crosvm_guest"), 0);
}
END_TEST

START_TEST(smaps_this_process)
{
	char *buf, exe[PATH_MAX], *base;
	size_t len = 0, cap = 1 << 16;
	ssize_t n;
	int fd;

	/* This binary's own mappings are named after it: some Rss is there. */
	n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	ck_assert_int_gt(n, 0);
	exe[n] = '\0';
	base = strrchr(exe, '/');
	base = base != NULL ? base + 1 : exe;
	buf = malloc(cap);
	ck_assert_ptr_nonnull(buf);
	fd = open("/proc/self/smaps", O_RDONLY);
	ck_assert_int_ge(fd, 0);
	for (;;) {
		if (cap - len < 4096) {
			cap *= 2;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
		if ((n = read(fd, buf + len, cap - 1 - len)) <= 0)
			break;
		len += n;
	}
	close(fd);
	buf[len] = '\0';
	ck_assert_uint_gt(metrics_parse_smaps_mapping(buf, base), 0);
	ck_assert_uint_gt(metrics_parse_smaps_mapping(buf, "[stack]"), 0);
	ck_assert_uint_eq(metrics_parse_smaps_mapping(buf,
	    "no-such-mapping-wardtest"), 0);
	free(buf);
}
END_TEST

/* cgroup.c: the whole tree's CPU time from a cgroup's cpu.stat. */
START_TEST(cgroup_cpu_stat)
{
	uint64_t usec = 0;

	ck_assert_int_eq(cgroup_parse_cpu_stat("usage_usec 1234567\n"
	    "user_usec 1000000\nsystem_usec 234567\n", &usec), 0);
	ck_assert_uint_eq(usec, 1234567);
	/* Only the whole key: not core_sched.force_idle_usec and the like. */
	ck_assert_int_eq(cgroup_parse_cpu_stat("nr_periods 0\n"
	    "xusage_usec 5\nusage_usec 7\n", &usec), 0);
	ck_assert_uint_eq(usec, 7);
	ck_assert_int_eq(cgroup_parse_cpu_stat("user_usec 1\n", &usec), -1);
	ck_assert_int_eq(cgroup_parse_cpu_stat("", &usec), -1);
}
END_TEST

int
main(void)
{
	TCase *tc;
	Suite *s = unit_suite("metrics", &tc);

	tcase_add_test(tc, cgroup_cpu_stat);

	tcase_add_test(tc, stat_fields);
	tcase_add_test(tc, stat_field_positions);
	tcase_add_test(tc, stat_old_kernel);
	tcase_add_test(tc, stat_malformed);
	tcase_add_test(tc, stat_this_process);
	tcase_add_test(tc, rollup_pss);
	tcase_add_test(tc, rollup_missing);
	tcase_add_test(tc, smaps_guest_memory);
	tcase_add_test(tc, smaps_name_field_only);
	tcase_add_test(tc, smaps_this_process);
	return UNIT_RUN(s);
}
