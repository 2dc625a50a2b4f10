/*
 * cgroup-freeze.c: the cgroup2 freezer of an instance's cgroup, for
 * suspend.c: cgroup.freeze written, cgroup.events' "frozen" read. A
 * cgroup is named here by its directory's name under cgroup.c's base
 * (ward-PID-START-ID), which is what a suspended instance keeps across a
 * re-exec or a crash: after a crash it is an earlier wardd's cgroup, still
 * frozen, and it must be thawed by that name. A name read back from a
 * state is checked against that pattern before it is used, so it can
 * never lead elsewhere.
 *
 * layer: engine (calls cgroup.c and base modules)
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "ward.h"

/* The name of the instance's cgroup directory while it has one, else -1. */
int
cgroup_name(const struct instance *i, char *buf, size_t len)
{
	char path[PATH_MAX];
	const char *p;

	if (cgroup_path(i, path, sizeof path) == NULL ||
	    (p = strrchr(path, '/')) == NULL ||
	    (size_t)snprintf(buf, len, "%s", p + 1) >= len)
		return -1;
	return 0;
}

/* "<base>/NAME/file" for a name as cgroup_name gives them; -1 (ENOENT) if
 * there are no cgroups or the name is not one. */
int
cgroup_named(const char *name, const char *file, char *buf, size_t len)
{
	const char *base = cgroup_base_dir();
	unsigned long long start, id;
	int pid, n = -1;

	if (base == NULL || sscanf(name, "ward-%d-%llu-%llu%n", &pid, &start,
	    &id, &n) != 3 || n < 0 || name[n] != '\0' ||
	    (size_t)snprintf(buf, len, "%s/%s/%s", base, name, file) >= len) {
		errno = ENOENT;
		return -1;
	}
	return 0;
}

/* cgroup.freeze of the cgroup named name: 1 freezes, 0 thaws. */
int
cgroup_freeze(const char *name, int on)
{
	char path[PATH_MAX];

	if (cgroup_named(name, "cgroup.freeze", path, sizeof path) == -1)
		return -1;
	return write_small_file(path, on ? "1" : "0");
}

/* Whether its cgroup.events says "frozen 1": 1, 0, or -1 (unreadable). */
int
cgroup_frozen(const char *name)
{
	char path[PATH_MAX], buf[256], *p;

	if (cgroup_named(name, "cgroup.events", path, sizeof path) == -1 ||
	    read_small_file(path, buf, sizeof buf) == -1)
		return -1;
	for (p = buf; p != NULL; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, "frozen ", 7) == 0)
			return p[7] == '1';
	}
	return -1;
}
