/*
 * cgroup.c: one cgroup2 directory per instance, so that a stop reaches
 * every process an instance started (daemons that left its session and
 * process group included) and so that the whole tree's cost can be read.
 *
 * Layout: <cgroup2 mount><wardd's own cgroup>/ward-<wardd pid>-<instance id>.
 * One flat level under wardd's own cgroup, which is what systemd's
 * Delegate=yes hands a service. wardd's pid is in every name so that a
 * restarted wardd never adopts the cgroups (and processes) of instances an
 * earlier one left running (ward.shutdown with kill_instances false).
 *
 * The child is made in its cgroup (clone3's CLONE_INTO_CGROUP, given the
 * directory opened here before the spawn) or, where clone3 cannot be used,
 * joins it itself by writing "0" to its cgroup.procs (spawn.c). A stop sends SIGTERM
 * to the process group as before; what survives it (the stop timer fired,
 * or the main process died while a stop was asked for) is killed with
 * cgroup.kill. An emptied directory is removed: at once when the run leaves
 * nothing behind, else when inotify says its cgroup.events changed (a
 * "drain"), never by polling.
 *
 * Where cgroup2 cannot be used (no cgroup2 mount, no write access, no
 * cgroup.kill, or --no-cgroups) this says why once and every function here
 * does nothing: stops then reach the process group only, as before.
 *
 * layer: engine
 */
#include "config.h"

#include <sys/inotify.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libmount.h>

#include "ward.h"

#ifndef container_of
#define container_of(p, type, member) \
	((type *)((char *)(p) - offsetof(type, member)))
#endif

#define CGROUP_SHUTDOWN_WAIT_MS	2000	/* for killed trees at exit */

/*
 * A cgroup directory waiting to be empty so that it can be removed. Owned
 * here, not by the instance: it outlives instance.remove (then inst is
 * NULL) until the directory is gone.
 */
struct cgroup_drain {
	struct instance		*inst;		/* NULL once the instance is removed */
	uint64_t		 id;		/* the instance's: names the directory */
	int			 wd;		/* inotify watch on its cgroup.events */
	int			 killed;	/* cgroup.kill was written: it will empty */
	struct table_node	 by_wd;
	LIST_ENTRY(cgroup_drain) entry;
};
LIST_HEAD(cgroup_drain_list, cgroup_drain);

static char *cgroup_base;	/* where instance cgroups go; NULL: not used */
/* /proc/self/mountinfo and cgroup, read whole at start-up. */
#define CGROUP_PROC_MAX	(16 * 1024 * 1024)

static pid_t cgroup_pid;	/* wardd's pid and start time (clock ticks */
static unsigned long long cgroup_start;	/* after boot): in every name */
static int cgroup_ifd = -1;	/* inotify: cgroup.events of the drains */
static ev_io cgroup_ifd_w;
static struct table cgroup_by_wd;
static struct cgroup_drain_list cgroup_drains =
    LIST_HEAD_INITIALIZER(cgroup_drains);

/*
 * A running instance whose cgroup.events suspend.c waits on (a freeze to
 * settle). Never beside a drain of the same directory (the two would share
 * an inotify watch): a drain starts only after the run, when none is left.
 */
struct cgroup_watch {
	struct instance		*inst;
	int			 wd;
	void			(*cb)(struct instance *);
	struct table_node	 by_wd;
};
static struct table cgroup_watch_by_wd;

static void	cgroup_inotify_cb(struct ev_loop *, ev_io *, int);

/*
 * "<base>/ward-<pid>-<start>-<id>" and, with file, "/file": -1 if it does
 * not fit. The start time tells apart wardds that had the same pid (pid 1
 * in a container, restarted), so one never meets the other's leftovers.
 */
static int
cgroup_dir(uint64_t id, const char *file, char *buf, size_t len)
{
	int n;

	n = snprintf(buf, len, "%s/ward-%d-%llu-%" PRIu64 "%s%s", cgroup_base,
	    (int)cgroup_pid, cgroup_start, id, file != NULL ? "/" : "",
	    file != NULL ? file : "");
	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/*
 * The first cgroup2 mount of a mountinfo text (/proc/self/mountinfo): its
 * mount point and the cgroup it shows as its root (not "/" for a bind
 * mount of a subtree), unescaped and caller-owned. -1 if there is none.
 * util-linux's libmount reads the format (its escapes, optional fields and
 * the " - " separator); a line it cannot parse is skipped, as the kernel's
 * own lines always parse and a cut one is no mount.
 */
static int
cgroup_mountinfo_skip_cb(struct libmnt_table *tb, const char *file, int line)
{
	(void)tb;
	(void)file;
	(void)line;
	return 1;	/* > 0: skip the line, go on */
}

int
cgroup_parse_mountinfo(const char *text, char **mnt, char **root)
{
	struct libmnt_table *tb;
	struct libmnt_iter *it;
	struct libmnt_fs *fs;
	char *copy = xstrdup(text);	/* fmemopen wants it writable */
	FILE *f;
	int found = 0;

	if ((f = fmemopen(copy, strlen(copy), "r")) == NULL) {
		free(copy);
		return -1;
	}
	tb = mnt_new_table();
	it = mnt_new_iter(MNT_ITER_FORWARD);
	if (tb != NULL && it != NULL &&
	    mnt_table_set_parser_errcb(tb, cgroup_mountinfo_skip_cb) == 0 &&
	    mnt_table_parse_stream(tb, f, "mountinfo") == 0) {
		while (!found && mnt_table_next_fs(tb, it, &fs) == 0) {
			const char *type = mnt_fs_get_fstype(fs);
			const char *r = mnt_fs_get_root(fs);
			const char *t = mnt_fs_get_target(fs);

			if (type == NULL || strcmp(type, "cgroup2") != 0 ||
			    r == NULL || t == NULL)
				continue;
			*root = xstrdup(r);
			*mnt = xstrdup(t);
			found = 1;
		}
	}
	mnt_free_iter(it);
	mnt_unref_table(tb);
	fclose(f);
	free(copy);
	return found ? 0 : -1;
}

/*
 * The cgroup2 path of a /proc/PID/cgroup text, from its "0::/path" line
 * (hybrid hosts list v1 hierarchies beside it), caller-owned; NULL if
 * there is no such line (a v1-only host).
 */
char *
cgroup_parse_own(const char *text)
{
	const char *p;
	char *own;

	for (p = text; p != NULL && *p != '\0'; p = strchr(p, '\n'),
	    p = p != NULL ? p + 1 : NULL) {
		if (strncmp(p, "0::/", 4) == 0) {
			p += 3;
			if ((own = str_printf("%.*s", (int)strcspn(p, "\n"),
			    p)) == NULL)
				fatal("malloc");
			return own;
		}
	}
	return NULL;
}

/*
 * The directory of cgroup own (a /proc/self/cgroup path) under the cgroup2
 * mount at mnt whose mountinfo root is root, caller-owned. Both paths are
 * relative to the reader's cgroup namespace. A root other than "/" is a
 * bind mount of a subtree, as a container without its own cgroup
 * namespace has at /sys/fs/cgroup: own is then found below mnt by its part
 * below root, and NULL means own is outside root, not visible in the mount.
 */
char *
cgroup_parse_base(const char *mnt, const char *root, const char *own)
{
	size_t rl = strcmp(root, "/") == 0 ? 0 : strlen(root);
	const char *rel = own + rl;
	char *base;

	if (strncmp(own, root, rl) != 0 || (*rel != '/' && *rel != '\0'))
		return NULL;
	if (strcmp(rel, "/") == 0)
		rel = "";
	if (strcmp(mnt, "/") == 0 && *rel != '\0')
		mnt = "";
	if ((base = str_printf("%s%s", mnt, rel)) == NULL)
		fatal("malloc");
	return base;
}

/*
 * systemd's Delegate=yes hands wardd its unit's cgroup, but a cgroup that
 * holds processes cannot pass controllers on to its children (cgroup2's "no
 * internal processes" rule). So when the delegated cgroup offers memory or
 * pids (accounting only: no limit is set) and they are not yet enabled,
 * wardd moves itself into <own>/supervisor, a leaf, and enables them for
 * its siblings, the instances. cpu is left alone: enabling it would give
 * wardd one share among thousands. The root cgroup is exempt from the rule
 * and host-wide policy, so it is never touched. Every failure here only
 * means instance cgroups lack memory.current: nothing else depends on it.
 */
static void
cgroup_delegate(const char *base)
{
	static const char *const wanted[] = { "memory", "pids" };
	char path[PATH_MAX], text[32];
	size_t k;
	int want = 0;

	for (k = 0; k < sizeof wanted / sizeof wanted[0]; k++) {
		if (small_file_has(base, "cgroup.controllers", wanted[k]) &&
		    !small_file_has(base, "cgroup.subtree_control", wanted[k]))
			want = 1;
	}
	if (!want)
		return;
	if ((size_t)snprintf(path, sizeof path, "%s/supervisor", base) >= sizeof path ||
	    (mkdir(path, 0755) == -1 && errno != EEXIST)) {
		log_info("cgroups: cannot create %s/supervisor (%s): instance "
		    "cgroups get no memory or pids accounting", base,
		    strerror(errno));
		return;
	}
	snprintf(path, sizeof path, "%s/supervisor/cgroup.procs", base);
	if (write_small_file(path, "0") == -1) {
		log_info("cgroups: cannot move wardd into %s (%s): instance "
		    "cgroups get no memory or pids accounting", path,
		    strerror(errno));
		return;
	}
	snprintf(path, sizeof path, "%s/cgroup.subtree_control", base);
	for (k = 0; k < sizeof wanted / sizeof wanted[0]; k++) {
		if (!small_file_has(base, "cgroup.controllers", wanted[k]))
			continue;
		snprintf(text, sizeof text, "+%s", wanted[k]);
		if (write_small_file(path, text) == -1)
			log_info("cgroups: cannot enable %s in %s: %s", wanted[k],
			    base, strerror(errno));
	}
	log_info("cgroups: wardd moved into %s/supervisor so that instance "
	    "cgroups can have controllers", base);
}

/*
 * Whether instance cgroups can be made under base: create and remove one
 * (id 0 is never an instance's), and check it has cgroup.kill (Linux 5.14)
 * and that cgroup.procs is ours to write. NULL, or why not.
 */
static const char *
cgroup_probe(char *why, size_t len)
{
	char path[PATH_MAX];
	const char *res = NULL;

	if (cgroup_dir(0, NULL, path, sizeof path) == -1 ||
	    (mkdir(path, 0755) == -1 && errno != EEXIST)) {
		snprintf(why, len, "cannot create cgroups in %s: %s", cgroup_base,
		    strerror(errno));
		return why;
	}
	cgroup_dir(0, "cgroup.kill", path, sizeof path);
	if (access(path, W_OK) == -1) {
		snprintf(why, len, "%s has no writable cgroup.kill (Linux 5.14 "
		    "or later is needed): %s", cgroup_base, strerror(errno));
		res = why;
	}
	cgroup_dir(0, "cgroup.procs", path, sizeof path);
	if (res == NULL && access(path, W_OK) == -1) {
		snprintf(why, len, "cannot move processes into cgroups in %s: %s",
		    cgroup_base, strerror(errno));
		res = why;
	}
	cgroup_dir(0, NULL, path, sizeof path);
	rmdir(path);
	return res;
}

/* Field 22 of /proc/PID/stat, the start time; 0 if there is no such pid. */
static unsigned long long
cgroup_proc_start(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long long start;
	int k;

	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	if (read_small_file(path, buf, sizeof buf) == -1 ||
	    (p = strrchr(buf, ')')) == NULL)
		return 0;
	/* After "comm)": state is field 3, so 19 more fields to field 22. */
	for (k = 0; k < 20 && p != NULL; k++)
		p = strchr(p + 1, ' ');
	if (p == NULL || sscanf(p, " %llu", &start) != 1)
		return 0;
	return start;
}

/*
 * Remove the empty directories that wardds no longer running left behind
 * (their instances outlived them, then exited). A directory of a running
 * wardd is never touched: it may be about to spawn into an empty one.
 * Populated ones fail with EBUSY and stay.
 */
static void
cgroup_sweep(void)
{
	char path[PATH_MAX];
	unsigned long long start, id;
	struct dirent *de;
	int pid, n, removed = 0;
	DIR *d;

	if ((d = opendir(cgroup_base)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (sscanf(de->d_name, "ward-%d-%llu-%llu%n", &pid, &start, &id,
		    &n) != 3 || de->d_name[n] != '\0')
			continue;
		/* The same process still runs: that wardd is alive (or is us). */
		if (cgroup_proc_start(pid) == start)
			continue;
		if ((size_t)snprintf(path, sizeof path, "%s/%s", cgroup_base,
		    de->d_name) < sizeof path && rmdir(path) == 0)
			removed++;
	}
	closedir(d);
	if (removed > 0)
		log_info("cgroups: removed %d empty cgroup%s of wardds gone",
		    removed, removed == 1 ? "" : "s");
}

/*
 * At start-up: find the cgroup2 mount and wardd's own cgroup and decide
 * whether instances get cgroups. Says once, at notice, why not.
 */
void
cgroup_init(int disabled)
{
	char *text, *mnt = NULL, *root = NULL, *own = NULL, why[PATH_MAX + 128];
	const char *no = NULL;
	int found;

	table_init(&cgroup_by_wd);
	table_init(&cgroup_watch_by_wd);
	cgroup_pid = getpid();
	cgroup_start = cgroup_proc_start(cgroup_pid);
	if (disabled)
		no = "--no-cgroups was given";
	else {
		text = read_whole_file("/proc/self/mountinfo", CGROUP_PROC_MAX);
		found = text != NULL &&
		    cgroup_parse_mountinfo(text, &mnt, &root) == 0;
		free(text);
		if ((text = read_whole_file("/proc/self/cgroup", CGROUP_PROC_MAX)) != NULL)
			own = cgroup_parse_own(text);
		free(text);
		if (!found)
			no = "no cgroup2 file system is mounted";
		else if (own == NULL)
			no = "/proc/self/cgroup has no cgroup2 (0::) line";
	}
	if (no == NULL) {
		if ((cgroup_base = cgroup_parse_base(mnt, root, own)) == NULL) {
			snprintf(why, sizeof why, "wardd's cgroup %s is outside "
			    "the cgroup2 mount at %s", own, mnt);
			no = why;
		} else if (strstr(own, " (deleted)") != NULL)
			no = "wardd's own cgroup was deleted";
		else {
			if (strcmp(cgroup_base, mnt) != 0)
				cgroup_delegate(cgroup_base);
			no = cgroup_probe(why, sizeof why);
		}
	}
	if (no == NULL && ((cgroup_ifd = inotify_init1(IN_NONBLOCK |
	    IN_CLOEXEC)) == -1))
		log_warn("cgroups: inotify_init1 (emptied cgroups are then "
		    "removed only at the instance's next death or removal)");
	spec_limits_cgroup(no == NULL ? cgroup_base : NULL, no);  /* spec-limits.c */
	if (no != NULL) {
		log_notice("not using cgroups: %s; instance.stop reaches each "
		    "instance's process group only", no);
		free(cgroup_base);
		cgroup_base = NULL;
	} else {
		if (cgroup_ifd != -1) {
			ev_io_init(&cgroup_ifd_w, cgroup_inotify_cb, cgroup_ifd,
			    EV_READ);
			ev_io_start(ward_loop, &cgroup_ifd_w);
		}
		log_info("cgroups: each instance runs in %s/ward-%d-%llu-ID",
		    cgroup_base, (int)cgroup_pid, cgroup_start);
		cgroup_sweep();
	}
	free(mnt);
	free(root);
	free(own);
}

/* The instance's cgroup directory while it exists, else NULL. */
const char *
cgroup_path(const struct instance *i, char *buf, size_t len)
{
	if (!i->cgroup.made || cgroup_dir(i->id, NULL, buf, len) == -1)
		return NULL;
	return buf;
}

/* Stop waiting for a directory: it is gone, reused or given up on. */
static void
cgroup_drain_end(struct cgroup_drain *d)
{
	table_remove(&cgroup_by_wd, &d->by_wd);
	LIST_REMOVE(d, entry);
	/* After an rmdir the kernel has dropped the watch already: EINVAL. */
	inotify_rm_watch(cgroup_ifd, d->wd);
	if (d->inst != NULL)
		d->inst->cgroup.drain = NULL;
	free(d);
}

/* Remove the directory if it is empty now; then the drain ends. d may be freed. */
static void
cgroup_drain_check(struct cgroup_drain *d)
{
	char path[PATH_MAX];

	if (cgroup_dir(d->id, NULL, path, sizeof path) == -1)
		return;
	if (rmdir(path) == -1 && errno != ENOENT) {
		if (errno == EBUSY)
			return;		/* still populated: the next change */
		log_warn("cannot remove cgroup %s", path);
		cgroup_drain_end(d);
		return;
	}
	log_debug("removed cgroup %s", path);
	if (d->inst != NULL)
		d->inst->cgroup.made = 0;
	cgroup_drain_end(d);
}

/*
 * Wait for the instance's cgroup to empty, then remove it. Without inotify
 * (or watches) it is left for the next death or removal to try again.
 */
static void
cgroup_drain_start(struct instance *i, int killed)
{
	struct cgroup_drain *d;
	char path[PATH_MAX];

	if (i->cgroup.drain != NULL) {
		i->cgroup.drain->killed |= killed;
		return;
	}
	if (cgroup_ifd == -1 || (d = calloc(1, sizeof *d)) == NULL)
		return;
	if (cgroup_dir(i->id, "cgroup.events", path, sizeof path) == -1 ||
	    (d->wd = inotify_add_watch(cgroup_ifd, path, IN_MODIFY)) == -1) {
		log_warn("cannot watch %s; it is removed at the instance's next "
		    "death or removal", path);
		free(d);
		return;
	}
	d->inst = i;
	d->id = i->id;
	d->killed = killed;
	if (table_insert(&cgroup_by_wd, &d->by_wd, &d->wd, sizeof d->wd) == -1) {
		inotify_rm_watch(cgroup_ifd, d->wd);
		free(d);
		return;
	}
	LIST_INSERT_HEAD(&cgroup_drains, d, entry);
	i->cgroup.drain = d;
	/* It may have emptied before the watch was there. */
	cgroup_drain_check(d);
}

static void
cgroup_inotify_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	struct cgroup_drain *d, *next;
	struct cgroup_watch *cw;
	struct table_node *n;
	ssize_t len;
	char *p;

	for (;;) {
		len = read(cgroup_ifd, buf, sizeof buf);
		if (len == -1 && errno == EINTR)
			continue;
		if (len <= 0)
			return;		/* EAGAIN: all read */
		for (p = buf; p < buf + len; p += sizeof *ev + ev->len) {
			ev = (const struct inotify_event *)p;
			if (ev->mask & IN_Q_OVERFLOW) {
				/* Events were lost: look at every drain. */
				for (d = LIST_FIRST(&cgroup_drains); d != NULL;
				    d = next) {
					next = LIST_NEXT(d, entry);
					cgroup_drain_check(d);
				}
				continue;
			}
			n = table_find(&cgroup_by_wd, &ev->wd, sizeof ev->wd);
			if (n != NULL)
				cgroup_drain_check(container_of(n,
				    struct cgroup_drain, by_wd));
			else if ((n = table_find(&cgroup_watch_by_wd, &ev->wd,
			    sizeof ev->wd)) != NULL) {
				cw = container_of(n, struct cgroup_watch, by_wd);
				cw->cb(cw->inst);	/* may unwatch (free) cw */
			}
		}
	}
}

/*
 * Before a spawn: make (or reuse) the instance's directory, write its
 * limits (spec-limits.c) and open it (O_PATH: for clone3's
 * CLONE_INTO_CGROUP, or an openat of its cgroup.procs by the child). *fd
 * is -1 when there are no cgroups; the caller closes it after the spawn.
 * -1 with e set if the directory cannot be made or a limit not set: the
 * spawn then fails rather than run an instance that a stop could not
 * reach, or one without the limits it asked for.
 */
int
cgroup_prepare(struct instance *i, int *fd, struct ward_err *e)
{
	char path[PATH_MAX];

	*fd = -1;
	/* The count a new run starts from: the directory (and its
	 * memory.events) outlives a run; a new one starts at 0. */
	i->cgroup.oom_kills = cgroup_oom_kills(i);
	if (cgroup_base == NULL)	/* spec-limits.c: cpus alone, then */
		return spec_limits_write(i->spec.limits, NULL, e);
	/* A new run: the directory is reused, whatever the last one left. */
	if (i->cgroup.drain != NULL)
		cgroup_drain_end(i->cgroup.drain);
	i->cgroup.killed = 0;
	if (cgroup_dir(i->id, NULL, path, sizeof path) == -1)
		goto fail;
	if (mkdir(path, 0755) == -1) {
		/*
		 * Not made by this wardd, though named as its own (only a
		 * wardd with the same pid and start time could have): adopt
		 * it only if it is empty, never its processes.
		 */
		if (errno != EEXIST || (!i->cgroup.made &&
		    (rmdir(path) == -1 || mkdir(path, 0755) == -1)))
			goto fail;
	}
	i->cgroup.made = 1;
	/* spec-limits.c: before the child is made in there. */
	if (spec_limits_write(i->spec.limits, path, e) == -1)
		return -1;
	if ((*fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1)
		goto fail;
	return 0;
fail:
	return ward_err_errno(e, WARD_E_INTERNAL, "cannot start '%s': cgroup %s",
	    i->spec.name, path);
}

/*
 * Kill every process in the instance's cgroup (SIGKILL, atomically against
 * forks). For wardd's own kills: the stop timer, hangup, watchdog.
 */
void
cgroup_kill(struct instance *i)
{
	char path[PATH_MAX];

	if (!i->cgroup.made || cgroup_dir(i->id, "cgroup.kill", path,
	    sizeof path) == -1)
		return;
	if (write_small_file(path, "1") == -1) {
		log_warn("cannot kill cgroup of instance %" PRIu64, i->id);
		return;
	}
	i->cgroup.killed = 1;
}

/*
 * The main process died and was reaped. Take the tree's final CPU bill,
 * then remove the directory if the run left nothing behind. If it did: when
 * a stop was asked for (or wardd killed it) the rest is killed now; either
 * way the directory goes once it is empty.
 */
void
cgroup_instance_gone(struct instance *i)
{
	char path[PATH_MAX];
	int kill_rest;

	if (!i->cgroup.made || cgroup_dir(i->id, NULL, path, sizeof path) == -1)
		return;
	cgroup_sample(i, &i->metrics, 1);
	if (rmdir(path) == 0 || errno == ENOENT) {
		log_debug("removed cgroup %s", path);
		i->cgroup.made = 0;
		return;
	}
	if (errno != EBUSY) {
		log_warn("cannot remove cgroup %s", path);
		return;
	}
	kill_rest = i->stop_requested || i->killed_by != KILLED_BY_NONE ||
	    i->cgroup.killed;
	if (kill_rest) {
		log_info("instance %" PRIu64 " %s: killing what is left in %s",
		    i->id, i->spec.name, path);
		cgroup_kill(i);
	} else
		log_info("instance %" PRIu64 " %s: processes it started outlive "
		    "it in %s (removed once they exit)", i->id, i->spec.name, path);
	cgroup_drain_start(i, i->cgroup.killed);
}

/*
 * instance.remove (or wardd's exit). A directory still draining is left to
 * its drain; otherwise one more try, and a populated one stays as it is:
 * removal does not kill.
 */
void
cgroup_instance_removed(struct instance *i)
{
	char path[PATH_MAX];

	if (i->cgroup.drain != NULL) {
		i->cgroup.drain->inst = NULL;	/* the drain owns it now */
		i->cgroup.drain = NULL;
		return;
	}
	if (!i->cgroup.made || cgroup_dir(i->id, NULL, path, sizeof path) == -1)
		return;
	if (rmdir(path) == -1 && errno != ENOENT)
		log_debug("cgroup %s left in place: %s", path, strerror(errno));
	i->cgroup.made = 0;
}

/* The N of a "KEY N" line of a cgroup file (cpu.stat, memory.events); -1 if absent. */
int
cgroup_parse_key(const char *buf, const char *key, uint64_t *n)
{
	size_t len = strlen(key);
	const char *p;

	for (p = buf; p != NULL && *p != '\0'; p = strchr(p, '\n'),
	    p = p != NULL ? p + 1 : NULL) {
		if (strncmp(p, key, len) == 0 && p[len] == ' ') {
			*n = strtoull(p + len + 1, NULL, 10);
			return 0;
		}
	}
	return -1;
}

/*
 * How many processes of the instance's cgroup the OOM killer has killed
 * (memory.events, through the sys seam so a unit test can fake it); 0
 * without a cgroup or a memory controller.
 */
uint64_t
cgroup_oom_kills(const struct instance *i)
{
	char buf[512];
	uint64_t n;

	if (sys->cgroup_read(i, "memory.events", buf, sizeof buf) == -1 ||
	    cgroup_parse_key(buf, "oom_kill", &n) == -1)
		return 0;
	return n;
}

/* "usage_usec N" of cpu.stat, in microseconds; -1 if absent. */
int
cgroup_parse_cpu_stat(const char *buf, uint64_t *usec)
{
	return cgroup_parse_key(buf, "usage_usec", usec);
}

/*
 * The whole tree's cost from its cgroup: memory.current (present only with
 * the memory controller) and cpu.stat's usage_usec (always in cgroup2).
 * final: the run is over; CPU only, as its total includes the dead.
 */
void
cgroup_sample(const struct instance *i, struct metrics *m, int final)
{
	char path[PATH_MAX], buf[1024];
	uint64_t v;

	if (!i->cgroup.made)
		return;
	if (!final && cgroup_dir(i->id, "memory.current", path, sizeof path) == 0 &&
	    read_small_file(path, buf, sizeof buf) != -1) {
		m->cgroup_memory_kb = strtoull(buf, NULL, 10) / 1024;
		m->has_cgroup_memory = 1;
	}
	if (cgroup_dir(i->id, "cpu.stat", path, sizeof path) == 0 &&
	    read_small_file(path, buf, sizeof buf) != -1 &&
	    cgroup_parse_cpu_stat(buf, &v) == 0) {
		m->cgroup_cpu_usage_ms = v / 1000;
		m->has_cgroup_cpu = 1;
	}
}

/* Where instance cgroups go; NULL without cgroups (cgroup-freeze.c). */
const char *
cgroup_base_dir(void)
{
	return cgroup_base;
}

/*
 * Call cb(i) at each change of the cgroup.events file at path (inotify, as
 * drains) until cgroup_unwatch, which the caller calls before the run
 * ends. -1 (errno) when it cannot be watched.
 */
int
cgroup_watch(struct instance *i, const char *path,
    void (*cb)(struct instance *))
{
	struct cgroup_watch *w;

	if (cgroup_ifd == -1 || i->cgroup.watch != NULL) {
		errno = EBUSY;
		return -1;
	}
	if ((w = calloc(1, sizeof *w)) == NULL)
		return -1;
	if ((w->wd = inotify_add_watch(cgroup_ifd, path, IN_MODIFY)) == -1 ||
	    table_insert(&cgroup_watch_by_wd, &w->by_wd, &w->wd,
	    sizeof w->wd) == -1) {
		if (w->wd != -1)
			inotify_rm_watch(cgroup_ifd, w->wd);
		free(w);
		return -1;
	}
	w->inst = i;
	w->cb = cb;
	i->cgroup.watch = w;
	return 0;
}

void
cgroup_unwatch(struct instance *i)
{
	struct cgroup_watch *w = i->cgroup.watch;

	if (w == NULL)
		return;
	table_remove(&cgroup_watch_by_wd, &w->by_wd);
	inotify_rm_watch(cgroup_ifd, w->wd);
	i->cgroup.watch = NULL;
	free(w);
}

/*
 * At exit, after the loop. Trees that were just killed (the last stops of
 * a shutdown) get a bounded moment to die so their directories go too;
 * then every drain is dropped and what is still there stays.
 */
void
cgroup_shutdown(void)
{
	struct cgroup_drain *d;
	struct pollfd pfd = { .fd = cgroup_ifd, .events = POLLIN };
	struct timespec t0, t;
	long left;
	int pending;

	if (cgroup_ifd == -1)
		return;
	ev_io_stop(ward_loop, &cgroup_ifd_w);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		pending = 0;
		LIST_FOREACH(d, &cgroup_drains, entry)
			pending |= d->killed;
		clock_gettime(CLOCK_MONOTONIC, &t);
		left = CGROUP_SHUTDOWN_WAIT_MS - ((t.tv_sec - t0.tv_sec) * 1000 +
		    (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (!pending || left <= 0 || poll(&pfd, 1, left) <= 0)
			break;
		cgroup_inotify_cb(ward_loop, &cgroup_ifd_w, EV_READ);
	}
	while ((d = LIST_FIRST(&cgroup_drains)) != NULL) {
		if (d->killed)
			log_notice("cgroup of instance %" PRIu64 " left in %s: "
			    "its processes did not die in time", d->id,
			    cgroup_base);
		cgroup_drain_end(d);
	}
	close(cgroup_ifd);
	cgroup_ifd = -1;
	table_free(&cgroup_by_wd);
	table_free(&cgroup_watch_by_wd);
	free(cgroup_base);
	cgroup_base = NULL;
}

/* The inotify fd that watches draining cgroups. */
void
cgroup_fds(fd_visit_fn fn, void *arg)
{
	if (cgroup_ifd != -1)
		fn(cgroup_ifd, "cgroup: inotify", arg);
}
