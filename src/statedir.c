/*
 * statedir.c: wardd's files under STATE_DIR, and the rule for every path
 * wardd touches.
 *
 * The rule, for the whole code base: no path-based chown, chmod or open by
 * wardd touches a directory that a user other than root (or wardd's own
 * uid) can write to. wardd never resolves a path through such a directory
 * and never changes the owner or mode of anything by path there. It works
 * from directory fds with the *at() calls and O_NOFOLLOW /
 * AT_SYMLINK_NOFOLLOW, changes owners and modes with fchown/fchmod on an
 * open fd, creates what it must create in a directory it hands to a user
 * (the sd_notify socket) while that directory is still its own 0700, and
 * only then hands the directory over, through its fd. Paths that come from
 * outside (admins' log files, output.c) are walked from / by statedir_walk,
 * which follows nothing another user could have placed; where another user
 * can write, wardd acts there with the payload user's own credentials
 * (statedir_as_user) or not at all. The hook
 *	grep -rnE '(^|[^a-z_])(chown|chmod|lchown)[[:space:]]*\(' src
 * finds nothing.
 *
 * STATE_DIR is opened once at start; everything below it is reached from
 * these fds, opened here and then owned by the module named:
 *	ids		the id counter: ids never repeat, across restarts too
 *	state		wardd's state, kept for a wardd killed outright
 *			(snapshot.c, through statedir_dirfd)
 *	instances/ID/	a runtime dir per run, always made new (never EEXIST)
 *	dumps/NAME-ID/	core and ramdump files, the instance owner's, 0700,
 *			kept within --dumps-max-count and --dumps-max-bytes
 *			(dumps.c)
 *	logs/		program.c's AUTO log files
 *	history		the exit records of instance.history (history-file.c)
 *	failure, notify	the sockets every payload's fd 3 and NOTIFY_SOCKET
 *			reach (channel.c), bound at start, root's
 *	trash/		trees on their way out: renamed here at once, then
 *			removed a bounded slice per loop turn (trash.c), so
 *			200,000 files a payload left never stall the loop
 *
 * layer: base
 */
#include "config.h"

#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"

/* Ids are reserved this many at a time: one fsync per block, not per create. */
#define STATEDIR_ID_BLOCK	1024
#define STATEDIR_ID_MAX		ID_MAX


static int statedir_fd = -1;		/* STATE_DIR itself */
static int statedir_instances = -1;
static int statedir_dumps = -1;	/* opened here, then dumps.c's */
static int statedir_trash = -1;	/* opened here, then trash.c's */

static uint64_t statedir_id;		/* the next id to hand out */
static uint64_t statedir_id_limit;	/* persisted: every id given is below */

static gid_t *statedir_groups;		/* wardd's own, while switched */
static int statedir_ngroups;
static int statedir_switched;		/* statedir_as_user is in force */

/*
 * A directory no one but root or wardd's own uid can change: owned by one
 * of them and writable by no other user or group.
 */
static int
statedir_trusted_owner(uid_t uid)
{
	return uid == 0 || uid == opts.uid;
}

static int
statedir_trusted(const struct stat *st)
{
	if (!statedir_trusted_owner(st->st_uid) || (st->st_mode & S_IWOTH))
		return 0;
	return !(st->st_mode & S_IWGRP) || st->st_gid == 0 ||
	    st->st_gid == getegid();
}

/*
 * Whether another user could have put entry (lstat'ed) in dir: not in a
 * trusted dir, and not in a sticky one (/tmp) that a trusted uid owns when
 * the entry is a trusted uid's too (only its owner may rename it there).
 */
static int
statedir_entry_stable(const struct stat *dir, const struct stat *entry)
{
	if (statedir_trusted(dir))
		return 1;
	return (dir->st_mode & S_ISVTX) && statedir_trusted_owner(dir->st_uid) &&
	    statedir_trusted_owner(entry->st_uid);
}

/*
 * Open the directory at the absolute path dir for *at() calls (O_PATH),
 * walking it from / a component at a time and following a symlink only
 * where no other user could have placed it. Returns 1 with *fd set when
 * everything on the way is stable and the directory reached is trusted (so
 * wardd may create and rename in it as root); 0 when another user could
 * have changed something on the way or can write to the directory (*fd is
 * -1: act there as that user, or not at all); -1 with errno on an error.
 */
int
statedir_walk(const char *dir, int *fd)
{
	struct stat cst, st;
	char *rest, *p, *comp, link[PATH_MAX], *nrest;
	int cur, next, links = 0, rc = -1;
	ssize_t n;

	*fd = -1;
	if (dir[0] != '/') {
		errno = EINVAL;
		return -1;
	}
	if ((rest = strdup(dir)) == NULL)
		return -1;
	if ((cur = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    fstat(cur, &cst) == -1)
		goto out;
	for (p = rest; ; ) {
		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		comp = p;
		while (*p != '\0' && *p != '/')
			p++;
		if (*p == '/')
			*p++ = '\0';
		if (strcmp(comp, ".") == 0)
			continue;
		/* ".." is the real parent of where we are: nobody can redirect it. */
		next = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (next == -1 || fstat(next, &st) == -1) {
			if (next != -1)
				close(next);
			goto out;
		}
		if (strcmp(comp, "..") != 0 && !statedir_entry_stable(&cst, &st)) {
			close(next);
			rc = 0;
			goto out;
		}
		if (S_ISLNK(st.st_mode)) {
			if (++links > 40) {
				close(next);
				errno = ELOOP;
				goto out;
			}
			n = readlinkat(next, "", link, sizeof link - 1);
			close(next);
			if (n <= 0) {
				if (n == 0)
					errno = ENOENT;
				goto out;
			}
			link[n] = '\0';
			/* The link's target, then what was left after it. */
			if ((nrest = str_printf("%s/%s", link, p)) == NULL)
				goto out;
			free(rest);
			rest = p = nrest;
			if (link[0] == '/') {
				close(cur);
				if ((cur = open("/", O_PATH | O_DIRECTORY |
				    O_CLOEXEC)) == -1 || fstat(cur, &cst) == -1)
					goto out;
			}
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			close(next);
			errno = ENOTDIR;
			goto out;
		}
		close(cur);
		cur = next;
		cst = st;
	}
	if (!statedir_trusted(&cst)) {
		rc = 0;
		goto out;
	}
	*fd = cur;
	cur = -1;
	rc = 1;
out:
	if (cur != -1) {
		int e = errno;

		close(cur);
		errno = e;
	}
	free(rest);
	return rc;
}

/*
 * Act with a user's credentials for file-system access (fsuid, fsgid and
 * groups) until statedir_as_self: for what wardd does on a payload's
 * behalf (log files where others can write, output.c; the checks of
 * argv[0] and cwd, spec.c). setfsuid/setfsgid change only permission
 * checks, and leaving fsuid 0 drops the file capabilities with it;
 * setgroups is process-wide, which is safe because wardd has no threads
 * and takes its own back before anything else runs. A wardd that is not
 * root runs everything as itself: nothing to switch. -1 with errno if a
 * switch did not take (wardd is then itself again).
 */
int
statedir_as_user(uid_t uid, gid_t gid, const gid_t *groups, int ngroups)
{
	int n;

	if (geteuid() != 0)
		return 0;
	free(statedir_groups);
	statedir_groups = NULL;
	if ((n = getgroups(0, NULL)) == -1 ||
	    (statedir_groups = malloc((n + 1) * sizeof *statedir_groups)) ==
	    NULL || (statedir_ngroups = getgroups(n, statedir_groups)) == -1)
		return -1;
	statedir_switched = 1;
	if (setgroups(ngroups, groups) == -1)
		goto fail;
	setfsgid(gid);
	setfsuid(uid);
	/* Each answers the previous value; -1 (invalid) reads the current one. */
	if ((gid_t)setfsgid(-1) != gid || (uid_t)setfsuid(-1) != uid) {
		errno = EPERM;
		goto fail;
	}
	return 0;
fail:
	statedir_as_self();
	return -1;
}

/* Back to wardd's own credentials; errno is kept for the caller's message. */
void
statedir_as_self(void)
{
	int e = errno;

	if (!statedir_switched)
		return;
	setfsuid(geteuid());	/* first: it gives back the file capabilities */
	setfsgid(getegid());
	if (setgroups(statedir_ngroups, statedir_groups) == -1 ||
	    (uid_t)setfsuid(-1) != geteuid())
		fatal("cannot take back wardd's own credentials");
	statedir_switched = 0;
	free(statedir_groups);
	statedir_groups = NULL;
	errno = e;
}

/* ---- start-up */

/*
 * A subdirectory of STATE_DIR, made if missing and opened without
 * following links; it must be wardd's own. Start-up only: fatal.
 */
static int
statedir_subdir(const char *name, mode_t mode)
{
	struct stat st;
	int fd;

	if (mkdirat(statedir_fd, name, mode) == -1 && errno != EEXIST)
		fatal("cannot create %s/%s", opts.state_dir, name);
	fd = openat(statedir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd == -1)
		fatal("cannot open %s/%s", opts.state_dir, name);
	if (fstat(fd, &st) == -1 || st.st_uid != geteuid())
		fatalx("%s/%s is not owned by wardd's uid %u: remove it",
		    opts.state_dir, name, (unsigned)geteuid());
	if ((st.st_mode & 07777) != mode && fchmod(fd, mode) == -1)
		fatal("cannot set the mode of %s/%s", opts.state_dir, name);
	return fd;
}

/* The highest id named in a directory of STATE_DIR (0: none). */
static uint64_t
statedir_scan_ids(int dirfd)
{
	struct dirent *de;
	uint64_t max = 0, v, run;
	DIR *d;

	if ((d = opendir_at(dirfd, ".")) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if ((v = name_id(de->d_name)) > max)
			max = v;
		/* A dump dir's NAME-ID-RUN ends in its run, not its id. */
		if ((v = dumps_name_id(de->d_name, &run)) > max)
			max = v;
	}
	closedir(d);
	return max;
}

/* The counter file's value; 0 if it is missing or not a number alone. */
static uint64_t
statedir_id_read(const char *name)
{
	char buf[32];
	ssize_t n;
	int fd;

	if ((fd = openat(statedir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
	    O_NONBLOCK)) == -1)
		return 0;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 1 || buf[n - 1] != '\n')
		return 0;
	buf[n - 1] = '\0';
	return id_parse(buf);
}

/*
 * Persist limit: no id at or above it has been handed out. Written whole to
 * ids.tmp, fsynced, renamed over ids, and the directory fsynced, so a crash
 * leaves the old value or the new one, never less.
 */
static int
statedir_id_write(uint64_t limit)
{
	char buf[32];
	ssize_t w;
	int fd, n;

	n = snprintf(buf, sizeof buf, "%" PRIu64 "\n", limit);
	fd = openat(statedir_fd, "ids.tmp", O_WRONLY | O_CREAT | O_TRUNC |
	    O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1)
		return -1;
	if ((w = write(fd, buf, n)) != n || fsync(fd) == -1) {
		if (w >= 0 && w != n)
			errno = ENOSPC;
		n = errno;
		close(fd);
		errno = n;
		return -1;
	}
	close(fd);
	if (renameat(statedir_fd, "ids.tmp", statedir_fd, "ids") == -1)
		return -1;
	return fsync(statedir_fd);
}

/*
 * The first id: above the counter and above every id STATE_DIR still
 * names (a missing or corrupt counter must not lower it), then a block
 * reserved at once.
 */
static void
statedir_id_init(void)
{
	uint64_t floor = 1, v;

	if ((v = statedir_id_read("ids")) == 0 && faccessat(statedir_fd, "ids",
	    F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		log_warnx("%s/ids is not a number: ids continue from what %s "
		    "holds", opts.state_dir, opts.state_dir);
	if (v > floor)
		floor = v;
	/* A rename that did not happen: the new value may be in ids.tmp. */
	if ((v = statedir_id_read("ids.tmp")) > floor)
		floor = v;
	if ((v = statedir_scan_ids(statedir_instances) + 1) > floor)
		floor = v;
	if ((v = statedir_scan_ids(statedir_dumps) + 1) > floor)
		floor = v;
	if ((v = statedir_scan_ids(statedir_trash) + 1) > floor)
		floor = v;
	statedir_id = floor;
	statedir_id_limit = floor + STATEDIR_ID_BLOCK;
	if (statedir_id_write(statedir_id_limit) == -1)
		fatal("cannot write %s/ids", opts.state_dir);
}

/*
 * The next instance id. Ids are reserved in blocks: the counter file says
 * where the current block ends, so a restart starts after it and an fsync
 * happens once per STATEDIR_ID_BLOCK creates. -1 (e set) if the next
 * block cannot be persisted: an id must never be given twice.
 */
int
statedir_id_next(uint64_t *id, struct ward_err *e)
{
	if (statedir_id >= statedir_id_limit) {
		if (statedir_id + STATEDIR_ID_BLOCK >= STATEDIR_ID_MAX)
			return ward_err_set(e, WARD_E_INTERNAL,
			    "wardd has handed out every id");
		if (statedir_id_write(statedir_id + STATEDIR_ID_BLOCK) == -1)
			return ward_err_errno(e, WARD_E_INTERNAL,
			    "cannot persist the id counter %s/ids",
			    opts.state_dir);
		statedir_id_limit = statedir_id + STATEDIR_ID_BLOCK;
	}
	*id = statedir_id++;
	return 0;
}

/*
 * Make and open STATE_DIR and its parts. STATE_DIR's own path is the
 * admin's choice; it must be wardd's, and reached through directories no
 * other user can change. Start-up only: every failure is fatal.
 */
void
statedir_init(void)
{
	struct stat st;
	int n, pfd;

	if (mkdir_p(opts.state_dir, 0755) == -1)
		fatal("cannot create %s", opts.state_dir);
	if ((n = statedir_walk(opts.state_dir, &pfd)) == -1)
		fatal("cannot open %s", opts.state_dir);
	if (n == 0)
		fatalx("state dir %s can be changed by a user other than root "
		    "(it, or a directory on its way, is writable by others): "
		    "choose another --state-dir", opts.state_dir);
	statedir_fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	close(pfd);
	if (statedir_fd == -1 || fstat(statedir_fd, &st) == -1)
		fatal("cannot open %s", opts.state_dir);
	if (st.st_uid != geteuid())
		fatalx("state dir %s is owned by uid %u, not by wardd's uid %u",
		    opts.state_dir, (unsigned)st.st_uid, (unsigned)geteuid());
	/* Others pass through instances/ to their runtime dir, and through
	 * dumps/ to their own dumps without listing anyone else's. */
	statedir_instances = statedir_subdir("instances", 0755);
	statedir_dumps = statedir_subdir("dumps", 0711);
	statedir_trash = statedir_subdir("trash", 0700);
	close(statedir_subdir("logs", 0750));

	statedir_id_init();
	trash_init(statedir_trash);	/* trash.c and dumps.c own these fds now */
	dumps_init(statedir_dumps);
}

/* ---- runtime dirs */

static void
statedir_id_name(uint64_t id, char *buf, size_t len)
{
	snprintf(buf, len, "%" PRIu64, id);
}

/*
 * A new runtime dir for instance id, root's (wardd's) and 0700: what wardd
 * puts in it is made before the payload's user gets it (fchown on the
 * returned fd). Never an existing one: ids do not repeat, so a directory
 * of that name is a leftover, moved to trash/ (not followed, not reused).
 * Returns an fd of the directory, or -1 with e set.
 */
/*
 * Whether mkdirat's 0700 needs an fchmod after: only if wardd's umask
 * takes owner bits, or instances/ carries a default ACL (which replaces
 * the umask and may take them too). Asked once: neither changes while
 * wardd runs (server.c's umask is put back at once).
 */
static int
statedir_runtime_needs_chmod(void)
{
	static int needs = -1;
	mode_t m;

	if (needs == -1) {
		m = umask(0);
		umask(m);
		needs = (m & 0700) != 0 || fgetxattr(statedir_instances,
		    "system.posix_acl_default", NULL, 0) >= 0 ||
		    (errno != ENODATA && errno != ENOTSUP);
	}
	return needs;
}

int
statedir_runtime_create(uint64_t id, struct ward_err *e)
{
	char name[24];
	int fd;

	statedir_id_name(id, name, sizeof name);
	if (mkdirat(statedir_instances, name, 0700) == -1) {
		if (errno != EEXIST || trash_move(statedir_instances,
		    name, name) == -1 || mkdirat(statedir_instances, name, 0700) == -1)
			return ward_err_errno(e, WARD_E_INTERNAL,
			    "cannot create runtime dir "
			    "%s/instances/%s (a leftover of that name could not "
			    "be moved away)", opts.state_dir, name);
		log_warnx("runtime dir %s/instances/%s already existed: moved "
		    "to trash/ and made anew", opts.state_dir, name);
	}
	fd = openat(statedir_instances, name, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1 || (statedir_runtime_needs_chmod() &&
	    fchmod(fd, 0700) == -1)) {
		ward_err_errno(e, WARD_E_INTERNAL,
		    "cannot open runtime dir %s/instances/%s", opts.state_dir,
		    name);
		if (fd != -1)
			close(fd);
		statedir_runtime_remove(id);
		return -1;
	}
	return fd;
}

/* Open instance id's runtime dir (not followed), or -1 with errno. */
int
statedir_runtime_open(uint64_t id)
{
	char name[24];

	statedir_id_name(id, name, sizeof name);
	return openat(statedir_instances, name, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC);
}

/* Remove instance id's runtime dir, whatever the payload left in it. */
void
statedir_runtime_remove(uint64_t id)
{
	char name[24];

	statedir_id_name(id, name, sizeof name);
	if (trash_move(statedir_instances, name, name) == -1 &&
	    errno != ENOENT)
		log_warn("cannot remove runtime dir %s/instances/%s",
		    opts.state_dir, name);
}

/* At exit: close STATE_DIR's fds (trash.c and dumps.c close theirs). */
void
statedir_shutdown(void)
{
	trash_shutdown();
	dumps_shutdown();
	if (statedir_instances != -1)
		close(statedir_instances);
	if (statedir_fd != -1)
		close(statedir_fd);
	statedir_fd = statedir_instances = -1;
}

/*
 * STATE_DIR's own fd, for the *at() calls of the modules that own files in
 * it (history-file.c, snapshot.c); -1 after statedir_shutdown.
 */
int
statedir_dirfd(void)
{
	return statedir_fd;
}

/* The fds statedir.c holds (fd enumeration; trash.c and dumps.c list theirs). */
void
statedir_fds(fd_visit_fn fn, void *arg)
{
	if (statedir_fd != -1)
		fn(statedir_fd, "statedir", arg);
	if (statedir_instances != -1)
		fn(statedir_instances, "statedir: instances/", arg);
}
