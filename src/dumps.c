/*
 * dumps.c: STATE_DIR/dumps/NAME-ID-RUN, the core and ramdump files a
 * payload left in one run (instance.c moves them there at its death, the
 * seed's handle_ramdump; one dir per run, so a restart never meets the last
 * run's, issue 13). Each dump dir is made new, 0700 and the instance
 * owner's (through its fd), so only they and admins read it; all of them
 * together are kept within --dumps-max-count and --dumps-max-bytes, the
 * oldest (lowest id, then run) of the owner holding the most dropped
 * first, through trash.c. Owns the dumps/ fd and the list of dumps kept.
 *
 * layer: base
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"

#define DUMPS_FILES	1024	/* files counted per dump dir at start */

static int dumps_fd = -1;		/* STATE_DIR/dumps */

static void	dumps_trim(void);

/* "NAME-ID-RUN", the caller's; NULL without memory. */
static char *
dumps_dir_name(const char *name, uint64_t id, uint64_t run)
{
	return str_printf("%s-%" PRIu64 "-%" PRIu64, name, id, run);
}

/* Dumps kept, oldest (lowest id, then run) first. */
struct dump {
	uint64_t		 id;
	uint64_t		 run;		/* 0: a NAME-ID dir of an older wardd */
	uid_t			 owner;		/* the instance's: its budget share */
	uint64_t		 bytes;
	char			*name;		/* NAME-ID-RUN */
	TAILQ_ENTRY(dump) entry;
};
static TAILQ_HEAD(, dump) dumps_kept =
    TAILQ_HEAD_INITIALIZER(dumps_kept);
static uint64_t dumps_count;
static uint64_t dumps_bytes;

/* Bytes a dump dir holds on disk (its files only: dumps are flat). */
static uint64_t
dumps_size(const char *name)
{
	struct dirent *de;
	struct stat st;
	uint64_t bytes = 0;
	unsigned n = 0;
	DIR *d;

	if ((d = opendir_at(dumps_fd, name)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL && n++ < DUMPS_FILES) {
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode))
			bytes += (uint64_t)st.st_blocks * 512;
	}
	closedir(d);
	return bytes;
}

static int
dumps_cmp(const void *a, const void *b)
{
	const struct dump *x = *(struct dump *const *)a;
	const struct dump *y = *(struct dump *const *)b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->run < y->run ? -1 : x->run > y->run;
}

/*
 * The id (and *run) a dump dir's name holds: "NAME-ID-RUN", or an older
 * wardd's "NAME-ID" (run 0). Names may end in "-digits" themselves, so an
 * old "a-5-7" reads as id 5, run 7: that only orders it among the oldest.
 * 0 when it names no id.
 */
uint64_t
dumps_name_id(const char *name, uint64_t *run)
{
	const char *dash = strrchr(name, '-');
	char head[SPEC_MAX_NAME + 32];
	uint64_t id;

	*run = 0;
	if (dash == NULL || (size_t)(dash - name) >= sizeof head)
		return name_id(name);
	memcpy(head, name, dash - name);
	head[dash - name] = '\0';
	if (strchr(head, '-') == NULL || (id = name_id(head)) == 0)
		return name_id(name);
	*run = id_parse(dash + 1);
	return *run != 0 ? id : name_id(name);
}

/*
 * Take dumps/ (its fd: statedir.c opened it); count the dumps a previous
 * wardd kept, oldest first, and trim them to the budget. Start-up only.
 */
void
dumps_init(int fd)
{
	struct dump **v = NULL, **nv, *dp;
	struct dirent *de;
	struct stat st;
	size_t n = 0, k;
	uint64_t id, run;
	DIR *d;

	dumps_fd = fd;
	if ((d = opendir_at(dumps_fd, ".")) == NULL)
		fatal("cannot read %s/dumps", opts.state_dir);
	while ((de = readdir(d)) != NULL) {
		if ((id = dumps_name_id(de->d_name, &run)) == 0 ||
		    de->d_name[0] == '.')
			continue;
		if ((nv = realloc(v, (n + 1) * sizeof *v)) == NULL)
			fatal("realloc");
		v = nv;
		dp = xcalloc(1, sizeof *dp);
		dp->id = id;
		dp->run = run;
		if (fstatat(dumps_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			dp->owner = st.st_uid;	/* dumps_create gave it the owner */
		dp->name = xstrdup(de->d_name);
		dp->bytes = dumps_size(de->d_name);
		v[n++] = dp;
	}
	closedir(d);
	if (n > 0)
		qsort(v, n, sizeof *v, dumps_cmp);
	for (k = 0; k < n; k++) {
		TAILQ_INSERT_TAIL(&dumps_kept, v[k], entry);
		dumps_count++;
		dumps_bytes += v[k]->bytes;
	}
	free(v);
	dumps_trim();
}

/*
 * A new dump dir dumps/NAME-ID-RUN for an instance owned by uid:gid: mode
 * 0700 and theirs (set through its fd), so only they and admins can read
 * it. Returns its fd, or -1 with e set.
 */
int
dumps_create(const char *name, uint64_t id, uint64_t run, uid_t uid, gid_t gid,
    struct ward_err *e)
{
	char *dir;
	int fd;

	if ((dir = dumps_dir_name(name, id, run)) == NULL)
		return ward_err_oom(e);
	if (mkdirat(dumps_fd, dir, 0700) == -1 ||
	    (fd = openat(dumps_fd, dir, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) == -1) {
		ward_err_errno(e, WARD_E_INTERNAL, "cannot create dump dir "
		    "%s/dumps/%s", opts.state_dir, dir);
		free(dir);
		return -1;
	}
	if (fchmod(fd, 0700) == -1 || fchown(fd, uid, gid) == -1) {
		ward_err_errno(e, WARD_E_INTERNAL, "cannot hand dump dir "
		    "%s/dumps/%s to uid %u", opts.state_dir, dir, (unsigned)uid);
		close(fd);
		trash_move(dumps_fd, dir, dir);
		free(dir);
		return -1;
	}
	free(dir);
	return fd;
}

/* Drop a dump dir from the budget and from the disk. */
static void
dumps_drop(struct dump *dp)
{
	TAILQ_REMOVE(&dumps_kept, dp, entry);
	dumps_count--;
	dumps_bytes -= dp->bytes;
	if (trash_move(dumps_fd, dp->name, dp->name) == -1 &&
	    errno != ENOENT)
		log_warn("cannot remove dump dir %s/dumps/%s", opts.state_dir,
		    dp->name);
	free(dp->name);
	free(dp);
}

/* One owner's share of the dumps kept, for dumps_victim. */
struct dumps_share {
	uid_t		 owner;
	uint64_t	 weight;
};

static int
dumps_share_cmp(const void *a, const void *b)
{
	const struct dumps_share *x = a, *y = b;

	return x->owner < y->owner ? -1 : x->owner > y->owner;
}

/*
 * The dump to drop when over budget: the oldest of the owner that holds
 * the most (bytes when over --dumps-max-bytes, else dumps), so that one
 * user's many small cores push out its own, never another's (second
 * review, S2). O(n log n) in the dumps kept; the oldest of all when out
 * of memory.
 */
static struct dump *
dumps_victim(int by_bytes)
{
	struct dumps_share *v, best = { 0, 0 };
	struct dump *dp;
	size_t n = 0, k, j;
	uint64_t w;

	if ((v = calloc(dumps_count, sizeof *v)) == NULL)
		return TAILQ_FIRST(&dumps_kept);
	TAILQ_FOREACH(dp, &dumps_kept, entry) {
		v[n].owner = dp->owner;
		v[n++].weight = by_bytes ? dp->bytes : 1;
	}
	qsort(v, n, sizeof *v, dumps_share_cmp);
	for (k = 0; k < n; k = j) {
		for (w = 0, j = k; j < n && v[j].owner == v[k].owner; j++)
			w += v[j].weight;
		if (w > best.weight) {
			best.owner = v[k].owner;
			best.weight = w;
		}
	}
	free(v);
	TAILQ_FOREACH(dp, &dumps_kept, entry) {
		if (dp->owner == best.owner)
			return dp;
	}
	return TAILQ_FIRST(&dumps_kept);
}

/*
 * Drop dump dirs until the rest fit --dumps-max-count and
 * --dumps-max-bytes: each time the oldest of the owner holding the most.
 */
static void
dumps_trim(void)
{
	struct dump *dp;
	int by_bytes;

	while (dumps_count > opts.dumps_max_count ||
	    dumps_bytes > opts.dumps_max_bytes) {
		by_bytes = dumps_count <= opts.dumps_max_count;
		if ((dp = dumps_victim(by_bytes)) == NULL)
			break;
		log_info("dump dir %s/dumps/%s dropped: keeping at most "
		    "%" PRIu64 " dumps, %" PRIu64 " bytes; uid %u holds the "
		    "most", opts.state_dir, dp->name, opts.dumps_max_count,
		    opts.dumps_max_bytes, (unsigned)dp->owner);
		dumps_drop(dp);
	}
}

/*
 * Count a dump dir that dumps_create made and the caller filled
 * with nfiles files of bytes, and drop the oldest ones over the budget.
 * Returns 1 if it is kept, 0 if it was dropped: empty, or alone over the
 * budget (then the older ones stay: dropping them would not make it fit).
 */
int
dumps_done(const char *name, uint64_t id, uint64_t run, uid_t owner,
    unsigned nfiles, uint64_t bytes)
{
	struct dump *dp = NULL;
	char *dir;

	if ((dir = dumps_dir_name(name, id, run)) == NULL)
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
	dp->run = run;
	dp->owner = owner;
	dp->bytes = bytes;
	dp->name = dir;
	TAILQ_INSERT_TAIL(&dumps_kept, dp, entry);
	dumps_count++;
	dumps_bytes += bytes;
	dumps_trim();
	return 1;

drop:
	/* Not counted is not kept: the budget must hold. */
	if (dir == NULL || trash_move(dumps_fd, dir, dir) == -1)
		log_warn("cannot remove a dump dir of %s", name);
	free(dir);
	return 0;
}

/* At exit: forget the list; the dump dirs stay on disk. */
void
dumps_shutdown(void)
{
	struct dump *dp;

	while ((dp = TAILQ_FIRST(&dumps_kept)) != NULL) {
		TAILQ_REMOVE(&dumps_kept, dp, entry);
		free(dp->name);
		free(dp);
	}
	if (dumps_fd != -1)
		close(dumps_fd);
	dumps_fd = -1;
}

/*
 * The seed's handle_ramdump: non-empty core* and ramdump* files the payload
 * left in its runtime dir move to STATE_DIR/dumps/NAME-ID-RUN/, a new directory
 * that only the instance's owner (and admins) can read. The runtime dir is
 * the payload's: it is read through its fd (rfd, closed here), files are
 * moved with renameat (a link is moved as itself, never followed), and
 * what arrives is checked again, since the payload's leftovers may swap an
 * entry meanwhile: anything but a regular file with one link is dropped.
 * At most DUMPS_SCAN entries are looked at, so a directory of 200,000
 * files costs the loop a bounded moment. Returns the dump dir, or NULL.
 */
#define DUMPS_SCAN	16384

char *
dumps_collect(int rfd, const char *runtime_dir, const char *name, uint64_t id,
    uint64_t run, uid_t owner_uid, gid_t owner_gid)
{
	struct dirent *de;
	struct stat st;
	uint64_t bytes = 0;
	unsigned seen = 0, kept = 0;
	struct ward_err e = WARD_ERR_INIT;
	DIR *d;
	int dfd = -1;

	if ((d = fdopendir(rfd)) == NULL) {
		close(rfd);
		return NULL;
	}
	while ((de = readdir(d)) != NULL) {
		if (++seen > DUMPS_SCAN) {
			log_warnx("instance %" PRIu64 " %s: runtime dir holds "
			    "more than %d entries; dumps past them are not "
			    "collected", id, name, DUMPS_SCAN);
			break;
		}
		if (strncmp(de->d_name, "core", 4) != 0 &&
		    strncmp(de->d_name, "ramdump", 7) != 0)
			continue;
		if (fstatat(rfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
		    !S_ISREG(st.st_mode) || st.st_size == 0 || st.st_nlink != 1)
			continue;
		if (dfd == -1 && (dfd = dumps_create(name, id, run,
		    owner_uid, owner_gid, &e)) == -1) {
			log_warnx("instance %" PRIu64 ": %s", id, e.msg);
			break;
		}
		if (renameat(rfd, de->d_name, dfd, de->d_name) == -1) {
			log_warn("instance %" PRIu64 ": cannot move %s/%s to its "
			    "dump dir", id, runtime_dir, de->d_name);
			continue;
		}
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
		    !S_ISREG(st.st_mode) || st.st_nlink != 1) {
			log_notice("instance %" PRIu64 ": %s changed while it "
			    "was collected: dropped", id, de->d_name);
			if (unlinkat(dfd, de->d_name, 0) == -1 &&
			    trash_remove(dfd, de->d_name) == -1)
				log_warn("cannot drop %s", de->d_name);
			continue;
		}
		bytes += (uint64_t)st.st_blocks * 512;
		kept++;
	}
	closedir(d);
	if (dfd == -1)
		return NULL;
	close(dfd);
	/* Counted against the dumps' budget, or dropped (empty, or too big). */
	if (!dumps_done(name, id, run, owner_uid, kept, bytes))
		return NULL;
	return str_printf("%s/dumps/%s-%" PRIu64 "-%" PRIu64, opts.state_dir,
	    name, id, run);
}

void
dumps_fds(fd_visit_fn fn, void *arg)
{
	if (dumps_fd != -1)
		fn(dumps_fd, "dumps", arg);
}
