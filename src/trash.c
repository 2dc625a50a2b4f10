/*
 * trash.c: trees on their way out of STATE_DIR. A tree is renamed into
 * STATE_DIR/trash at once (its name is free again immediately) and then
 * removed there a bounded slice per loop turn (TRASH_SLICE entries or
 * TRASH_SLICE_S seconds), so the 200,000 files a payload leaves in its
 * runtime dir never stall the loop. Links are never followed: inside a
 * tree things are only unlinked, through directory fds (statedir.c's rule).
 * Owns the trash/ fd and the list of trees being removed; statedir.c
 * (runtime dirs) and dumps.c (retention) hand trees over with trash_move.
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

#define TRASH_DEPTH	16	/* open dirs per tree; deeper ones are
				   moved to trash/ as trees of their own */
#define TRASH_SLICE	512	/* removals per loop turn ... */
#define TRASH_SLICE_S	0.004	/* ... or this long, whichever first */
#define TRASH_RETRIES	8	/* refilled while being emptied: give up */

static int trash_fd = -1;		/* STATE_DIR/trash */

static void	trash_cb(struct ev_loop *, ev_timer *, int);

/* One tree in trash/, being emptied depth first. */
struct trash_tree {
	char			*name;		/* its name in trash/ */
	int			 depth;
	DIR			*dirs[TRASH_DEPTH];
	char			*names[TRASH_DEPTH]; /* dirs[k]'s name in its parent */
	unsigned		 retries;
	uint64_t		 failed;	/* entries that would not go */
	TAILQ_ENTRY(trash_tree) entry;
};
static TAILQ_HEAD(, trash_tree) trash_list =
    TAILQ_HEAD_INITIALIZER(trash_list);
static ev_timer trash_t;
static uint64_t trash_seq;	/* makes trash names unique */

/*
 * Move parent/name into trash/ as "SEQ~label" (one rename: the name is
 * free at once) and remove it there in slices across loop turns. Links are
 * never followed: whatever name is, it is renamed, and inside it things are
 * only unlinked. The label is wardd's (an id, NAME-ID, "deep"), never a
 * payload's name, since the start-up scan reads ids from it. -1 with errno
 * if it cannot be moved (it stays where it is).
 */
int
trash_move(int parentfd, const char *name, const char *label)
{
	struct trash_tree *rm;
	char *tname;

	for (;;) {
		if ((tname = str_printf("%" PRIu64 "~%s", ++trash_seq,
		    label)) == NULL)
			return -1;
		if (renameat2(parentfd, name, trash_fd, tname,
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
	TAILQ_INSERT_TAIL(&trash_list, rm, entry);
	if (!ev_is_active(&trash_t))
		ev_timer_start(ward_loop, &trash_t);
	return 0;
}

/* Remove parentfd/name, a tree or anything else, in the background. */
int
trash_remove(int parentfd, const char *name)
{
	return trash_move(parentfd, name, "tree");
}

static void
trash_tree_free(struct trash_tree *rm)
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
trash_tree_push(struct trash_tree *rm, int parentfd, const char *name)
{
	DIR *d;

	if ((d = opendir_at(parentfd, name)) == NULL)
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
trash_tree_step(struct trash_tree *rm)
{
	struct dirent *de;
	char *name;
	int fd, parentfd;

	if (rm->depth == 0) {
		/* Start, or start again: the top may be a file, or a tree. */
		if (unlinkat(trash_fd, rm->name, 0) == 0 || errno == ENOENT)
			return 0;
		if (trash_tree_push(rm, trash_fd, rm->name) == -1) {
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
			if (rm->depth < TRASH_DEPTH) {
				if (trash_tree_push(rm, fd, de->d_name) == 0)
					return 1;
			} else if (trash_move(fd, de->d_name,
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
	    trash_fd;
	if (unlinkat(parentfd, name, AT_REMOVEDIR) == -1 && errno != ENOENT) {
		/* Something still writes into it (a payload's leftover child):
		 * go round again, a few times. */
		if (errno == ENOTEMPTY && rm->failed == 0 &&
		    rm->retries++ < TRASH_RETRIES &&
		    trash_tree_push(rm, parentfd, name) == 0) {
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
trash_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct trash_tree *rm;
	ev_tstamp start = ev_time();
	unsigned n;

	for (n = 0; n < TRASH_SLICE; n++) {
		if ((rm = TAILQ_FIRST(&trash_list)) == NULL)
			return;
		if (trash_tree_step(rm) == 0) {
			TAILQ_REMOVE(&trash_list, rm, entry);
			trash_tree_free(rm);
		}
		if ((n & 31) == 31 && ev_time() - start > TRASH_SLICE_S)
			break;
	}
	if (!TAILQ_EMPTY(&trash_list)) {
		ev_timer_set(t, 0., 0.);
		ev_timer_start(loop, t);
	}
}

/* Trees still being removed (ward.stats, tests). */
unsigned
trash_pending(void)
{
	struct trash_tree *rm;
	unsigned n = 0;

	TAILQ_FOREACH(rm, &trash_list, entry)
		n++;
	return n;
}

/*
 * Take trash/ (its fd: statedir.c opened it) and remove, in the background,
 * whatever a previous wardd left there. Start-up only.
 */
void
trash_init(int fd)
{
	struct trash_tree *rm;
	struct dirent *de;
	DIR *d;

	trash_fd = fd;
	ev_timer_init(&trash_t, trash_cb, 0., 0.);
	if ((d = opendir_at(trash_fd, ".")) == NULL)
		fatal("cannot read %s/trash", opts.state_dir);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		rm = xcalloc(1, sizeof *rm);
		rm->name = xstrdup(de->d_name);
		TAILQ_INSERT_TAIL(&trash_list, rm, entry);
	}
	closedir(d);
	if (!TAILQ_EMPTY(&trash_list))
		ev_timer_start(ward_loop, &trash_t);
}

/* At exit: what is still in trash/ is removed at the next start. */
void
trash_shutdown(void)
{
	struct trash_tree *rm;

	ev_timer_stop(ward_loop, &trash_t);
	while ((rm = TAILQ_FIRST(&trash_list)) != NULL) {
		TAILQ_REMOVE(&trash_list, rm, entry);
		trash_tree_free(rm);
	}
	if (trash_fd != -1)
		close(trash_fd);
	trash_fd = -1;
}

/* trash/ itself and the directories of the trees being emptied. */
void
trash_fds(fd_visit_fn fn, void *arg)
{
	struct trash_tree *rm;
	int k;

	if (trash_fd != -1)
		fn(trash_fd, "trash", arg);
	TAILQ_FOREACH(rm, &trash_list, entry) {
		for (k = 0; k < rm->depth; k++) {
			if (rm->dirs[k] != NULL)
				fn(dirfd(rm->dirs[k]), "trash: a tree being emptied",
				    arg);
		}
	}
}
