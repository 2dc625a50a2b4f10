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
 * these fds, and this file is the only one that names its parts:
 *	ids		the id counter: ids never repeat, across restarts too
 *	instances/ID/	a runtime dir per run, always made new (never EEXIST)
 *	dumps/NAME-ID/	core and ramdump files, the instance owner's, 0700,
 *			kept within --dumps-max-count and --dumps-max-bytes
 *	logs/		program.c's AUTO log files
 *	trash/		trees on their way out: renamed here at once, then
 *			removed a bounded slice per loop turn (statedir_remove),
 *			so 200,000 files a payload left never stall the loop
 */
#include "config.h"

#include <sys/fsuid.h>
#include <sys/stat.h>

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
#define STATEDIR_ID_MAX		(UINT64_C(1) << 53)	/* any JSON client's */

#define STATEDIR_RM_DEPTH	16	/* open dirs per tree; deeper ones are
					   moved to trash/ as trees of their own */
#define STATEDIR_RM_SLICE	512	/* removals per loop turn ... */
#define STATEDIR_RM_SLICE_S	0.004	/* ... or this long, whichever first */
#define STATEDIR_RM_RETRIES	8	/* refilled while being emptied: give up */
#define STATEDIR_DUMP_FILES	1024	/* files counted per dump dir at start */

static int statedir_fd = -1;		/* STATE_DIR itself */
static int statedir_instances = -1;
static int statedir_dumps = -1;
static int statedir_trash = -1;

static uint64_t statedir_id;		/* the next id to hand out */
static uint64_t statedir_id_limit;	/* persisted: every id given is below */

static gid_t *statedir_groups;		/* wardd's own, while switched */
static int statedir_ngroups;
static int statedir_switched;		/* statedir_as_user is in force */

/* ---- removing trees, a slice per loop turn */

/* One tree in trash/, being emptied depth first. */
struct statedir_rm {
	char			*name;		/* its name in trash/ */
	int			 depth;
	DIR			*dirs[STATEDIR_RM_DEPTH];
	char			*names[STATEDIR_RM_DEPTH]; /* dirs[k]'s name in its parent */
	unsigned		 retries;
	uint64_t		 failed;	/* entries that would not go */
	TAILQ_ENTRY(statedir_rm) entry;
};
static TAILQ_HEAD(, statedir_rm) statedir_rms =
    TAILQ_HEAD_INITIALIZER(statedir_rms);
static ev_timer statedir_rm_t;
static uint64_t statedir_rm_seq;	/* makes trash names unique */

/* ---- dumps kept, oldest (lowest id) first */

struct statedir_dump {
	uint64_t		 id;
	uint64_t		 bytes;
	char			*name;		/* NAME-ID */
	TAILQ_ENTRY(statedir_dump) entry;
};
static TAILQ_HEAD(, statedir_dump) statedir_dumps_kept =
    TAILQ_HEAD_INITIALIZER(statedir_dumps_kept);
static uint64_t statedir_dumps_count;
static uint64_t statedir_dumps_bytes;

static void	statedir_rm_cb(struct ev_loop *, ev_timer *, int);

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
 * argv[0] and cwd, config.c). setfsuid/setfsgid change only permission
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

/* A decimal id alone, below STATEDIR_ID_MAX; 0 if s is anything else. */
static uint64_t
statedir_parse_id(const char *s)
{
	char *end;
	uint64_t v;

	if (*s < '0' || *s > '9')
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end != '\0' || errno != 0 || v >= STATEDIR_ID_MAX)
		return 0;
	return v;
}

/* The id a name wardd gave holds: "ID", "NAME-ID", "SEQ~ID", "SEQ~NAME-ID". */
static uint64_t
statedir_name_id(const char *name)
{
	const char *p = strrchr(name, '~'), *dash;

	p = p != NULL ? p + 1 : name;
	if ((dash = strrchr(p, '-')) != NULL)
		p = dash + 1;
	return statedir_parse_id(p);
}

/* Read the directory name under dirfd, not followed; NULL with errno. */
static DIR *
statedir_opendir(int dirfd, const char *name)
{
	DIR *d;
	int fd;

	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC | O_NONBLOCK);
	if (fd == -1)
		return NULL;
	if ((d = fdopendir(fd)) == NULL)
		close(fd);
	return d;
}

/* The highest id named in a directory of STATE_DIR (0: none). */
static uint64_t
statedir_scan_ids(int dirfd)
{
	struct dirent *de;
	uint64_t max = 0, v;
	DIR *d;

	if ((d = statedir_opendir(dirfd, ".")) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if ((v = statedir_name_id(de->d_name)) > max)
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
	return statedir_parse_id(buf);
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
 * happens once per STATEDIR_ID_BLOCK creates. -1 (err set) if the next
 * block cannot be persisted: an id must never be given twice.
 */
int
statedir_id_next(uint64_t *id, char *err, size_t errlen)
{
	if (statedir_id >= statedir_id_limit) {
		if (statedir_id + STATEDIR_ID_BLOCK >= STATEDIR_ID_MAX) {
			snprintf(err, errlen, "wardd has handed out every id");
			return -1;
		}
		if (statedir_id_write(statedir_id + STATEDIR_ID_BLOCK) == -1) {
			snprintf(err, errlen, "cannot persist the id counter "
			    "%s/ids: %s", opts.state_dir, strerror(errno));
			return -1;
		}
		statedir_id_limit = statedir_id + STATEDIR_ID_BLOCK;
	}
	*id = statedir_id++;
	return 0;
}

/* Bytes a dump dir holds on disk (its files only: dumps are flat). */
static uint64_t
statedir_dump_size(const char *name)
{
	struct dirent *de;
	struct stat st;
	uint64_t bytes = 0;
	unsigned n = 0;
	DIR *d;

	if ((d = statedir_opendir(statedir_dumps, name)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL && n++ < STATEDIR_DUMP_FILES) {
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode))
			bytes += (uint64_t)st.st_blocks * 512;
	}
	closedir(d);
	return bytes;
}

static int
statedir_dump_cmp(const void *a, const void *b)
{
	const struct statedir_dump *x = *(struct statedir_dump *const *)a;
	const struct statedir_dump *y = *(struct statedir_dump *const *)b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static void	statedir_dumps_trim(void);

/* The dumps a previous wardd kept: counted, oldest first, then trimmed. */
static void
statedir_dumps_init(void)
{
	struct statedir_dump **v = NULL, **nv, *dp;
	struct dirent *de;
	size_t n = 0, k;
	uint64_t id;
	DIR *d;

	if ((d = statedir_opendir(statedir_dumps, ".")) == NULL)
		fatal("cannot read %s/dumps", opts.state_dir);
	while ((de = readdir(d)) != NULL) {
		if ((id = statedir_name_id(de->d_name)) == 0 ||
		    de->d_name[0] == '.')
			continue;
		if ((nv = realloc(v, (n + 1) * sizeof *v)) == NULL)
			fatal("realloc");
		v = nv;
		dp = xcalloc(1, sizeof *dp);
		dp->id = id;
		dp->name = xstrdup(de->d_name);
		dp->bytes = statedir_dump_size(de->d_name);
		v[n++] = dp;
	}
	closedir(d);
	if (n > 0)
		qsort(v, n, sizeof *v, statedir_dump_cmp);
	for (k = 0; k < n; k++) {
		TAILQ_INSERT_TAIL(&statedir_dumps_kept, v[k], entry);
		statedir_dumps_count++;
		statedir_dumps_bytes += v[k]->bytes;
	}
	free(v);
	statedir_dumps_trim();
}

/* What a previous wardd left in trash/: removed in the background. */
static void
statedir_trash_init(void)
{
	struct statedir_rm *rm;
	struct dirent *de;
	DIR *d;

	if ((d = statedir_opendir(statedir_trash, ".")) == NULL)
		fatal("cannot read %s/trash", opts.state_dir);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		rm = xcalloc(1, sizeof *rm);
		rm->name = xstrdup(de->d_name);
		TAILQ_INSERT_TAIL(&statedir_rms, rm, entry);
	}
	closedir(d);
	if (!TAILQ_EMPTY(&statedir_rms))
		ev_timer_start(ward_loop, &statedir_rm_t);
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

	ev_timer_init(&statedir_rm_t, statedir_rm_cb, 0., 0.);
	statedir_id_init();
	statedir_trash_init();
	statedir_dumps_init();
}

/* ---- removing trees */

/*
 * Move parent/name into trash/ as "SEQ~label" (one rename: the name is
 * free at once) and remove it there in slices across loop turns. Links are
 * never followed: whatever name is, it is renamed, and inside it things are
 * only unlinked. The label is wardd's (an id, NAME-ID, "deep"), never a
 * payload's name, since the start-up scan reads ids from it. -1 with errno
 * if it cannot be moved (it stays where it is).
 */
static int
statedir_trash_move(int parentfd, const char *name, const char *label)
{
	struct statedir_rm *rm;
	char *tname;

	for (;;) {
		if ((tname = str_printf("%" PRIu64 "~%s", ++statedir_rm_seq,
		    label)) == NULL)
			return -1;
		if (renameat2(parentfd, name, statedir_trash, tname,
		    RENAME_NOREPLACE) == 0)
			break;
		free(tname);
		if (errno != EEXIST)
			return -1;
	}
	if ((rm = calloc(1, sizeof *rm)) == NULL) {
		/* Left in trash/: the next start removes it. */
		log_warnx("out of memory: %s/trash/%s stays until a restart",
		    opts.state_dir, tname);
		free(tname);
		return 0;
	}
	rm->name = tname;
	TAILQ_INSERT_TAIL(&statedir_rms, rm, entry);
	if (!ev_is_active(&statedir_rm_t))
		ev_timer_start(ward_loop, &statedir_rm_t);
	return 0;
}

/* Remove parentfd/name, a tree or anything else, in the background. */
int
statedir_remove(int parentfd, const char *name)
{
	return statedir_trash_move(parentfd, name, "tree");
}

static void
statedir_rm_free(struct statedir_rm *rm)
{
	while (rm->depth > 0) {
		rm->depth--;
		closedir(rm->dirs[rm->depth]);
		free(rm->names[rm->depth]);
	}
	free(rm->name);
	free(rm);
}

/* Open name (a directory, not followed) under parentfd onto rm's stack. */
static int
statedir_rm_push(struct statedir_rm *rm, int parentfd, const char *name)
{
	DIR *d;

	if ((d = statedir_opendir(parentfd, name)) == NULL)
		return -1;
	if ((rm->names[rm->depth] = strdup(name)) == NULL) {
		closedir(d);
		return -1;
	}
	rm->dirs[rm->depth++] = d;
	return 0;
}

/*
 * One step of rm: one entry unlinked, a directory entered or left. Returns
 * 1 while there is more to do, 0 when the tree is gone (or given up).
 */
static int
statedir_rm_step(struct statedir_rm *rm)
{
	struct dirent *de;
	char *name;
	int fd, parentfd;

	if (rm->depth == 0) {
		/* Start, or start again: the top may be a file, or a tree. */
		if (unlinkat(statedir_trash, rm->name, 0) == 0 || errno == ENOENT)
			return 0;
		if (statedir_rm_push(rm, statedir_trash, rm->name) == -1) {
			log_warn("cannot remove %s/trash/%s", opts.state_dir,
			    rm->name);
			return 0;
		}
		return 1;
	}
	fd = dirfd(rm->dirs[rm->depth - 1]);
	errno = 0;
	if ((de = readdir(rm->dirs[rm->depth - 1])) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			return 1;
		if (unlinkat(fd, de->d_name, 0) == 0 || errno == ENOENT)
			return 1;
		if (errno == EISDIR || errno == EPERM) {
			/* A directory: into it, or, too deep, a tree of its own. */
			if (rm->depth < STATEDIR_RM_DEPTH) {
				if (statedir_rm_push(rm, fd, de->d_name) == 0)
					return 1;
			} else if (statedir_trash_move(fd, de->d_name,
			    "deep") == 0)
				return 1;
		}
		rm->failed++;
		return 1;
	}
	/* The end of this directory: close it and remove it from its parent. */
	rm->depth--;
	name = rm->names[rm->depth];
	closedir(rm->dirs[rm->depth]);
	parentfd = rm->depth > 0 ? dirfd(rm->dirs[rm->depth - 1]) :
	    statedir_trash;
	if (unlinkat(parentfd, name, AT_REMOVEDIR) == -1 && errno != ENOENT) {
		/* Something still writes into it (a payload's leftover child):
		 * go round again, a few times. */
		if (errno == ENOTEMPTY && rm->failed == 0 &&
		    rm->retries++ < STATEDIR_RM_RETRIES &&
		    statedir_rm_push(rm, parentfd, name) == 0) {
			free(name);
			return 1;
		}
		rm->failed++;
	}
	free(name);
	if (rm->depth > 0)
		return 1;
	if (rm->failed > 0)
		log_warnx("%s/trash/%s: %" PRIu64 " entries could not be "
		    "removed; it stays until a restart", opts.state_dir,
		    rm->name, rm->failed);
	return 0;
}

/* One slice of removal per loop turn: bounded in count and in time. */
static void
statedir_rm_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct statedir_rm *rm;
	ev_tstamp start = ev_time();
	unsigned n;

	for (n = 0; n < STATEDIR_RM_SLICE; n++) {
		if ((rm = TAILQ_FIRST(&statedir_rms)) == NULL)
			return;
		if (statedir_rm_step(rm) == 0) {
			TAILQ_REMOVE(&statedir_rms, rm, entry);
			statedir_rm_free(rm);
		}
		if ((n & 31) == 31 && ev_time() - start > STATEDIR_RM_SLICE_S)
			break;
	}
	if (!TAILQ_EMPTY(&statedir_rms)) {
		ev_timer_set(t, 0., 0.);
		ev_timer_start(loop, t);
	}
}

/* Trees still being removed (ward.stats, tests). */
unsigned
statedir_removing(void)
{
	struct statedir_rm *rm;
	unsigned n = 0;

	TAILQ_FOREACH(rm, &statedir_rms, entry)
		n++;
	return n;
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
 * Returns an fd of the directory, or -1 with err set.
 */
int
statedir_runtime_create(uint64_t id, char *err, size_t errlen)
{
	char name[24];
	int fd;

	statedir_id_name(id, name, sizeof name);
	if (mkdirat(statedir_instances, name, 0700) == -1) {
		if (errno != EEXIST || statedir_trash_move(statedir_instances,
		    name, name) == -1 || mkdirat(statedir_instances, name, 0700) == -1) {
			snprintf(err, errlen, "cannot create runtime dir "
			    "%s/instances/%s (a leftover of that name could not "
			    "be moved away): %s", opts.state_dir, name,
			    strerror(errno));
			return -1;
		}
		log_warnx("runtime dir %s/instances/%s already existed: moved "
		    "to trash/ and made anew", opts.state_dir, name);
	}
	fd = openat(statedir_instances, name, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1 || fchmod(fd, 0700) == -1) {
		snprintf(err, errlen, "cannot open runtime dir %s/instances/%s: "
		    "%s", opts.state_dir, name, strerror(errno));
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
	if (statedir_trash_move(statedir_instances, name, name) == -1 &&
	    errno != ENOENT)
		log_warn("cannot remove runtime dir %s/instances/%s",
		    opts.state_dir, name);
}

/* ---- dumps */

/*
 * A new dump dir dumps/NAME-ID for an instance owned by uid:gid: mode 0700
 * and theirs (set through its fd), so only they and admins can read it.
 * Returns its fd, or -1 with err set.
 */
int
statedir_dump_create(const char *name, uint64_t id, uid_t uid, gid_t gid,
    char *err, size_t errlen)
{
	char *dir;
	int fd;

	if ((dir = str_printf("%s-%" PRIu64, name, id)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (mkdirat(statedir_dumps, dir, 0700) == -1 ||
	    (fd = openat(statedir_dumps, dir, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "cannot create dump dir %s/dumps/%s: %s",
		    opts.state_dir, dir, strerror(errno));
		free(dir);
		return -1;
	}
	if (fchmod(fd, 0700) == -1 || fchown(fd, uid, gid) == -1) {
		snprintf(err, errlen, "cannot hand dump dir %s/dumps/%s to uid "
		    "%u: %s", opts.state_dir, dir, (unsigned)uid, strerror(errno));
		close(fd);
		statedir_trash_move(statedir_dumps, dir, dir);
		free(dir);
		return -1;
	}
	free(dir);
	return fd;
}

/* Drop a dump dir from the budget and from the disk. */
static void
statedir_dump_drop(struct statedir_dump *dp)
{
	TAILQ_REMOVE(&statedir_dumps_kept, dp, entry);
	statedir_dumps_count--;
	statedir_dumps_bytes -= dp->bytes;
	if (statedir_trash_move(statedir_dumps, dp->name, dp->name) == -1 &&
	    errno != ENOENT)
		log_warn("cannot remove dump dir %s/dumps/%s", opts.state_dir,
		    dp->name);
	free(dp->name);
	free(dp);
}

/*
 * Oldest first, drop dump dirs until the rest fit --dumps-max-count and
 * --dumps-max-bytes.
 */
static void
statedir_dumps_trim(void)
{
	struct statedir_dump *dp;

	while ((dp = TAILQ_FIRST(&statedir_dumps_kept)) != NULL &&
	    (statedir_dumps_count > opts.dumps_max_count ||
	    statedir_dumps_bytes > opts.dumps_max_bytes)) {
		log_info("dump dir %s/dumps/%s dropped: keeping at most "
		    "%" PRIu64 " dumps, %" PRIu64 " bytes", opts.state_dir,
		    dp->name, opts.dumps_max_count, opts.dumps_max_bytes);
		statedir_dump_drop(dp);
	}
}

/*
 * Count a dump dir that statedir_dump_create made and the caller filled
 * with nfiles files of bytes, and drop the oldest ones over the budget.
 * Returns 1 if it is kept, 0 if it was dropped: empty, or alone over the
 * budget (then the older ones stay: dropping them would not make it fit).
 */
int
statedir_dump_done(const char *name, uint64_t id, unsigned nfiles,
    uint64_t bytes)
{
	struct statedir_dump *dp = NULL;
	char *dir;

	if ((dir = str_printf("%s-%" PRIu64, name, id)) == NULL)
		goto drop;
	if (nfiles > 0 && (opts.dumps_max_count == 0 ||
	    bytes > opts.dumps_max_bytes))
		log_notice("dump dir %s/dumps/%s (%" PRIu64 " bytes) does not "
		    "fit --dumps-max-count %" PRIu64 " and --dumps-max-bytes "
		    "%" PRIu64 " alone: dropped", opts.state_dir, dir, bytes,
		    opts.dumps_max_count, opts.dumps_max_bytes);
	else if (nfiles > 0 && (dp = calloc(1, sizeof *dp)) == NULL)
		log_warnx("out of memory counting dump dir %s", dir);
	if (dp == NULL)
		goto drop;
	dp->id = id;
	dp->bytes = bytes;
	dp->name = dir;
	TAILQ_INSERT_TAIL(&statedir_dumps_kept, dp, entry);
	statedir_dumps_count++;
	statedir_dumps_bytes += bytes;
	statedir_dumps_trim();
	return 1;

drop:
	/* Not counted is not kept: the budget must hold. */
	if (dir == NULL || statedir_trash_move(statedir_dumps, dir, dir) == -1)
		log_warn("cannot remove a dump dir of %s", name);
	free(dir);
	return 0;
}

/* At exit: what is still in trash/ is removed at the next start. */
void
statedir_shutdown(void)
{
	struct statedir_rm *rm;
	struct statedir_dump *dp;

	ev_timer_stop(ward_loop, &statedir_rm_t);
	while ((rm = TAILQ_FIRST(&statedir_rms)) != NULL) {
		TAILQ_REMOVE(&statedir_rms, rm, entry);
		statedir_rm_free(rm);
	}
	while ((dp = TAILQ_FIRST(&statedir_dumps_kept)) != NULL) {
		TAILQ_REMOVE(&statedir_dumps_kept, dp, entry);
		free(dp->name);
		free(dp);
	}
	if (statedir_instances != -1)
		close(statedir_instances);
	if (statedir_dumps != -1)
		close(statedir_dumps);
	if (statedir_trash != -1)
		close(statedir_trash);
	if (statedir_fd != -1)
		close(statedir_fd);
	statedir_fd = statedir_instances = statedir_dumps = statedir_trash = -1;
}
