/*
 * test_cgroup.c: how cgroup.c finds the cgroup2 mount and wardd's own
 * cgroup, on /proc/self/mountinfo and /proc/self/cgroup texts recorded
 * from pure v2 hosts, hybrid ones (v1 controllers beside cgroup2 at
 * /sys/fs/cgroup/unified), v1-only ones and containers.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ward.h"
#include "unit.h"

struct wardd_opts opts;

/* ---- /proc/self/mountinfo */

/* Debian 12: cgroup2 alone at /sys/fs/cgroup. */
static const char mi_v2[] =
    "22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
    "23 28 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
    "24 28 0:5 / /dev rw,nosuid,relatime shared:2 - devtmpfs udev rw,size=8132876k,nr_inodes=2033219,mode=755,inode64\n"
    "26 28 0:24 / /run rw,nosuid,nodev,noexec,relatime shared:5 - tmpfs tmpfs rw,size=1631392k,mode=755,inode64\n"
    "28 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro\n"
    "29 22 0:6 / /sys/kernel/security rw,nosuid,nodev,noexec,relatime shared:8 - securityfs securityfs rw\n"
    "32 22 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"
    "33 22 0:28 / /sys/fs/pstore rw,nosuid,nodev,noexec,relatime shared:10 - pstore pstore rw\n"
    "34 22 0:29 / /sys/fs/bpf rw,nosuid,nodev,noexec,relatime shared:11 - bpf bpf rw,mode=700\n";

/* The build machines: v1 controllers first, cgroup2 last, at unified. */
static const char mi_hybrid[] =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices\n"
    "37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n"
    "38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

/* Ubuntu 20.04 (systemd's hybrid): unified first, optional fields, ro tmpfs. */
static const char mi_hybrid_systemd[] =
    "34 25 0:29 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755,inode64\n"
    "35 34 0:30 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate\n"
    "36 34 0:31 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd\n"
    "39 34 0:34 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory\n";

/* A mount point with a space, a tab and a backslash; a v1 one named cgroup2. */
static const char mi_escaped[] =
    "50 28 0:40 / /mnt/cgroup2 rw,relatime shared:30 - cgroup cgroup rw,name=cgroup2\n"
    "51 28 0:27 / /srv/my\\040cgroup\\011tree\\134x rw,relatime shared:9 - cgroup2 cgroup2 rw\n";

/*
 * docker with the host's cgroup namespace: the container sees only its own
 * subtree, bind-mounted at /sys/fs/cgroup, and mountinfo shows which.
 */
static const char mi_container[] =
    "683 682 0:63 / / rw,relatime master:290 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/X:/var/lib/docker/overlay2/l/Y\n"
    "684 683 0:66 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
    "687 683 0:67 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro\n"
    "688 687 0:27 /system.slice/docker-4f3c.scope /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime master:9 - cgroup2 cgroup rw,nsdelegate,memory_recursiveprot\n";

/* CentOS 7: v1 only, and a line cut before its fields. */
static const char mi_v1[] =
    "24 18 0:20 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755\n"
    "25 24 0:21 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd\n"
    "27 24 0:23 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,memory\n"
    "99 24 0:99 / - cgroup2 cgroup2 rw\n";

/* Parse text; NULL if no cgroup2 mount, else "MOUNTPOINT|ROOT" (freed by the caller). */
static char *
mount_of(const char *text)
{
	char unset[] = "unset", *mnt = unset, *root = unset, *res;

	if (cgroup_parse_mountinfo(text, &mnt, &root) == -1) {
		ck_assert_ptr_eq(mnt, unset);	/* untouched */
		ck_assert_ptr_eq(root, unset);
		return NULL;
	}
	res = str_printf("%s|%s", mnt, root);
	free(mnt);
	free(root);
	return res;
}

/* A string result, compared to want (NULL or not) and freed. */
#define ck_got(expr, want) do {					\
	char *got_ = (expr);						\
	ck_assert_pstr_eq(got_, want);					\
	free(got_);							\
} while (0)
#define ck_mount(text, want)	ck_got(mount_of(text), want)

START_TEST(mountinfo_hosts)
{
	ck_mount(mi_v2, "/sys/fs/cgroup|/");
	ck_mount(mi_hybrid, "/sys/fs/cgroup/unified|/");
	ck_mount(mi_hybrid_systemd, "/sys/fs/cgroup/unified|/");
	/* Without the last newline. */
	ck_mount("41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw",
	    "/sys/fs/cgroup/unified|/");
}
END_TEST

START_TEST(mountinfo_escaped)
{
	ck_mount(mi_escaped, "/srv/my cgroup\ttree\\x|/");
	ck_mount("1 2 0:3 /a\\040b /c rw - cgroup2 cgroup2 rw\n", "/c|/a b");
	/* Not an escape: left as it is. */
	ck_mount("1 2 0:3 / /c\\9x\\04 rw - cgroup2 cgroup2 rw\n", "/c\\9x\\04|/");
}
END_TEST

START_TEST(mountinfo_container)
{
	ck_mount(mi_container, "/sys/fs/cgroup|/system.slice/docker-4f3c.scope");
}
END_TEST

START_TEST(mountinfo_none)
{
	ck_mount(mi_v1, NULL);
	ck_mount("", NULL);
	ck_mount("\n\n", NULL);
	/* The type is cgroup2 only after the separator. */
	ck_mount("1 2 0:3 / /x - cgroup2fs cgroup2 rw\n", NULL);
}
END_TEST

/* ---- /proc/self/cgroup */

/* Debian 12, from a service. */
static const char cg_v2[] = "0::/system.slice/x.service\n";

/* Ubuntu 20.04: v1 hierarchies, then the cgroup2 line. */
static const char cg_hybrid[] =
    "12:cpuset:/\n"
    "11:memory:/system.slice/x.service\n"
    "10:devices:/system.slice/x.service\n"
    "9:pids:/system.slice/x.service\n"
    "5:cpu,cpuacct:/system.slice/x.service\n"
    "1:name=systemd:/system.slice/x.service\n"
    "0::/system.slice/x.service\n";

/* The build machines: the cgroup2 line first names the root. */
static const char cg_build[] =
    "9:name=systemd:/\n"
    "8:pids:/\n"
    "4:memory:/process_api/6a7ecf40dbe966755c8785eb578d9438\n"
    "1:cpu:/\n"
    "0::/\n";

/* CentOS 7: v1 only. */
static const char cg_v1[] =
    "11:cpuset:/\n"
    "10:memory:/system.slice/x.service\n"
    "1:name=systemd:/system.slice/x.service\n";

#define ck_own(text, want)	ck_got(cgroup_parse_own(text), want)

START_TEST(own_cgroup)
{
	ck_own(cg_v2, "/system.slice/x.service");
	ck_own(cg_hybrid, "/system.slice/x.service");
	ck_own(cg_build, "/");
	ck_own("0::/a b/c", "/a b/c");			/* no newline */
	ck_own("0::/x (deleted)\n", "/x (deleted)");	/* cgroup_init refuses it */
	ck_own("4:memory:/m\n0::/u\n", "/u");
}
END_TEST

START_TEST(own_missing)
{
	ck_own(cg_v1, NULL);
	ck_own("", NULL);
	/* Lines that only look like it. */
	ck_own("10::/x\n", NULL);
	ck_own("1:name=systemd:/\n 0::/x\n", NULL);
}
END_TEST

/* ---- the two together: where instance cgroups go */

#define ck_base(mnt, root, own, want) \
	ck_got(cgroup_parse_base(mnt, root, own), want)

START_TEST(base_hosts)
{
	ck_base("/sys/fs/cgroup", "/", "/system.slice/x.service",
	    "/sys/fs/cgroup/system.slice/x.service");
	ck_base("/sys/fs/cgroup/unified", "/", "/system.slice/x.service",
	    "/sys/fs/cgroup/unified/system.slice/x.service");
	ck_base("/sys/fs/cgroup/unified", "/", "/", "/sys/fs/cgroup/unified");
	ck_base("/", "/", "/x", "/x");
	ck_base("/", "/", "/", "/");
}
END_TEST

/*
 * A bind mount of a subtree: wardd's cgroup is found by its part below the
 * mount's root; one outside that root is not in the mount at all.
 */
START_TEST(base_container)
{
	const char *r = "/system.slice/docker-4f3c.scope";

	ck_base("/sys/fs/cgroup", r, r, "/sys/fs/cgroup");
	ck_base("/sys/fs/cgroup", r, "/system.slice/docker-4f3c.scope/init",
	    "/sys/fs/cgroup/init");
	ck_base("/sys/fs/cgroup", r, "/system.slice/other.service", NULL);
	ck_base("/sys/fs/cgroup", r, "/system.slice/docker-4f3c.scope2", NULL);
	ck_base("/sys/fs/cgroup", r, "/", NULL);
	/* A mount from outside the reader's cgroup namespace. */
	ck_base("/sys/fs/cgroup", "/../..", "/", NULL);
}
END_TEST

/* The recorded files end to end, as cgroup_init puts them together. */
START_TEST(base_recorded)
{
	struct { const char *mi, *cg, *want; } t[] = {
		{ mi_v2, cg_v2, "/sys/fs/cgroup/system.slice/x.service" },
		{ mi_hybrid, cg_hybrid,
		    "/sys/fs/cgroup/unified/system.slice/x.service" },
		{ mi_hybrid, cg_build, "/sys/fs/cgroup/unified" },
		{ mi_container, "0::/system.slice/docker-4f3c.scope\n",
		    "/sys/fs/cgroup" },
	};
	char *mnt, *root, *own;
	size_t k;

	for (k = 0; k < sizeof t / sizeof t[0]; k++) {
		ck_assert_int_eq(cgroup_parse_mountinfo(t[k].mi, &mnt, &root), 0);
		ck_assert_ptr_nonnull(own = cgroup_parse_own(t[k].cg));
		ck_base(mnt, root, own, t[k].want);
		free(mnt);
		free(root);
		free(own);
	}
}
END_TEST

/* ---- memory.events' oom_kill, and cpu.stat's usage_usec (one parser) */

START_TEST(parse_memory_events)
{
	uint64_t n = 7;

	ck_assert_int_eq(cgroup_parse_key("low 0\nhigh 0\nmax 3\noom 2\n"
	    "oom_kill 2\noom_group_kill 0\n", "oom_kill", &n), 0);
	ck_assert_uint_eq(n, 2);
	/* oom_group_kill is not oom_kill; no oom_kill line is none. */
	n = 7;
	ck_assert_int_eq(cgroup_parse_key("oom_group_kill 5\n", "oom_kill", &n),
	    -1);
	ck_assert_int_eq(cgroup_parse_key("", "oom_kill", &n), -1);
	ck_assert_uint_eq(n, 7);
	ck_assert_int_eq(cgroup_parse_cpu_stat("usage_usec 1500\nuser_usec 1000\n",
	    &n), 0);
	ck_assert_uint_eq(n, 1500);
}
END_TEST

int
main(void)
{
	TCase *tc;
	Suite *s = unit_suite("cgroup", &tc);

	tcase_add_test(tc, mountinfo_hosts);
	tcase_add_test(tc, mountinfo_escaped);
	tcase_add_test(tc, mountinfo_container);
	tcase_add_test(tc, mountinfo_none);
	tcase_add_test(tc, own_cgroup);
	tcase_add_test(tc, own_missing);
	tcase_add_test(tc, base_hosts);
	tcase_add_test(tc, base_container);
	tcase_add_test(tc, base_recorded);
	tcase_add_test(tc, parse_memory_events);
	return UNIT_RUN(s);
}
