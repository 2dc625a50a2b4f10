/*
 * output-file.c: captured output's log files (stdout_logfile,
 * stderr_logfile): opening them at a spawn, appending, size-based rotation
 * to FILE.1 ... FILE.backups, and reopening them all for logrotate
 * (output_reopen_all: ward.logrotate and SIGUSR1).
 *
 * Log files are at admins' paths, which may lie where a payload's user can
 * write: statedir.c's rule applies. The file's directory is opened (once
 * per open, kept for rotations) by statedir_walk. Where nobody but root
 * can change anything on the way, wardd creates, opens and rotates the file
 * there as itself, through that directory fd. Anywhere else it does all of
 * it with the credentials of the user the payload runs as (uid, gid and
 * groups, as spawn.c gives them), so it can do there only what the payload
 * could do itself; for a payload that runs as root or as wardd, it refuses.
 * The file itself is never followed and must have one link.
 *
 * layer: engine (calls statedir.c and spawn.c's ids for the payload's
 * user, log.c; reads the instance list, never calls instance.c)
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"
#include "output.h"

/*
 * A new output's files, from its config: none open yet; the same path for
 * both streams is one file, rotated once.
 */
void
output_file_init(struct output *o)
{
	const struct output_config *oc = o->inst->spec.output;
	int k;

	for (k = 0; k < OUTPUT_NSTREAMS; k++) {
		o->files[k].fd = o->files[k].dirfd = -1;
		o->files[k].path = oc->logfile[k];
		if (oc->logfile[k] != NULL)
			o->files[k].base = strrchr(oc->logfile[k], '/') + 1;
	}
	for (k = 0; k < OUTPUT_NSTREAMS; k++) {
		if (oc->logfile[k] == NULL)
			continue;
		if (k == OUTPUT_STDERR && oc->logfile[OUTPUT_STDOUT] != NULL &&
		    strcmp(oc->logfile[OUTPUT_STDOUT], oc->logfile[k]) == 0)
			o->s[k].file = &o->files[OUTPUT_STDOUT];
		else
			o->s[k].file = &o->files[k];
	}
}

/* Act as the payload's user where f needs it; output_file_leave undoes it. */
static int
output_file_enter(const struct output *o, const struct output_file *f)
{
	const struct instance *i = o->inst;
	uid_t uid;
	gid_t gid;

	if (!f->as_user)
		return 0;
	spawn_ids(i, &uid, &gid);
	return statedir_as_user(uid, gid, i->spec.has_user ? NULL : i->groups,
	    i->spec.has_user ? 0 : i->ngroups);
}

static void
output_file_leave(const struct output_file *f)
{
	if (f->as_user)
		statedir_as_self();
}

/* Open the log file's directory: f->dirfd, and f->as_user if it must be. */
static int
output_file_dir(const struct output *o, struct output_file *f,
    struct ward_err *e)
{
	char *dir;
	uid_t uid;
	gid_t gid;
	int rc;

	dir = f->base - 1 == f->path ? strdup("/") :
	    strndup(f->path, f->base - 1 - f->path);
	if (dir == NULL)
		return ward_err_oom(e);
	f->as_user = 0;
	if ((rc = statedir_walk(dir, &f->dirfd)) == 0) {
		if (!opts.is_root || !spawn_ids(o->inst, &uid, &gid) || uid == 0) {
			ward_err_set(e, WARD_E_SPAWN_FAILED, "log file %s: a user "
			    "other than root can change %s or a directory on its "
			    "way; wardd writes log files there only for payloads "
			    "that run as another user, and then as that user",
			    f->path, dir);
			free(dir);
			return -1;
		}
		f->as_user = 1;
		if ((rc = output_file_enter(o, f)) == 0) {
			f->dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
			rc = f->dirfd == -1 ? -1 : 1;
			output_file_leave(f);
		}
	}
	if (rc == -1) {
		ward_err_set(e, WARD_E_SPAWN_FAILED, "cannot open log file %s: "
		    "directory %s: %s%s", f->path, dir, strerror(errno),
		    f->as_user ? " (as the payload's user)" : "");
		free(dir);
		return -1;
	}
	free(dir);
	return 0;
}

/*
 * "/dev/stdout" and "/dev/stderr", or /dev/fd/1 and 2 (supervisord's
 * container idiom, with stdout_logfile_maxbytes = 0): the output goes to
 * wardd's own fd 1 or 2,
 * as supervisord writes it to its own. Those paths are links that
 * O_NOFOLLOW refuses, rightly: no path is opened, wardd's fd is used
 * (only admins may name log files at all: output-spec.c). It is never
 * rotated, and a stalled reader loses the payload's lines, never blocks
 * the loop. Not through O_NONBLOCK on a dup of fd 1 or 2: a dup shares
 * the open file description, so wardd's own stderr (the same pipe or
 * journal socket as its stdout, as under a container runtime or systemd)
 * would turn non-blocking too, and a payload flooding it would make
 * wardd's own log lines fail with EAGAIN and be lost. A pipe or a
 * terminal is opened again through /proc/self/fd (a description of its
 * own, non-blocking); a socket cannot be, and is written with
 * MSG_DONTWAIT. Which fd, or -1: a real file.
 */
static int
output_file_stdio(const struct output_file *f)
{
	/* The names containers use for them, links all (to /proc/self/fd/N). */
	static const struct {
		const char	*path;
		int		 fd;
	} names[] = {
		{ "/dev/stdout", STDOUT_FILENO }, { "/dev/stderr", STDERR_FILENO },
		{ "/dev/fd/1", STDOUT_FILENO }, { "/dev/fd/2", STDERR_FILENO },
		{ "/proc/self/fd/1", STDOUT_FILENO },
		{ "/proc/self/fd/2", STDERR_FILENO },
	};
	size_t k;

	for (k = 0; k < sizeof names / sizeof names[0]; k++) {
		if (strcmp(f->path, names[k].path) == 0)
			return names[k].fd;
	}
	return -1;
}

/* wardd's fd std as f's, made never to block the loop as said above. */
static int
output_file_open_stdio(struct output_file *f, int std, struct ward_err *e)
{
	char proc[64];
	struct stat st;
	int fd;

	if (fstat(std, &st) == -1)
		fd = -1;
	else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
		snprintf(proc, sizeof proc, "/proc/self/fd/%d", std);
		fd = open(proc, O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC |
		    O_NOCTTY);
	} else
		fd = fcntl(std, F_DUPFD_CLOEXEC, 3);
	if (fd == -1)
		return ward_err_set(e, WARD_E_SPAWN_FAILED, "log file "
		    "%s: wardd's own: %s", f->path, strerror(errno));
	f->sock = S_ISSOCK(st.st_mode);
	f->fd = fd;
	f->size = 0;
	f->failed = 0;
	f->opens++;
	return 0;
}

static int
output_file_open(const struct output *o, struct output_file *f,
    struct ward_err *e)
{
	struct stat st;
	int fd;

	if ((fd = output_file_stdio(f)) != -1)
		return output_file_open_stdio(f, fd, e);
	if (f->dirfd == -1 && output_file_dir(o, f, e) == -1)
		return -1;
	/*
	 * O_NONBLOCK: a FIFO without a reader must fail, not hang wardd.
	 * O_NOFOLLOW: a link planted at the path must not redirect the writes
	 * (before a spawn, or between a rotation's rename and reopen).
	 */
	if (output_file_enter(o, f) == 0) {
		fd = openat(f->dirfd, f->base, O_WRONLY | O_APPEND | O_CREAT |
		    O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW, 0640);
		output_file_leave(f);
	} else
		fd = -1;
	if (fd == -1)
		return ward_err_set(e, WARD_E_SPAWN_FAILED, "cannot open log "
		    "file %s: %s%s", f->path, strerror(errno), f->as_user ?
		    " (as the payload's user)" : "");
	/* A hard link is the symlink's twin: refuse a file with more than one. */
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
		ward_err_set(e, WARD_E_SPAWN_FAILED, "log file %s is not a "
		    "regular file with one link", f->path);
		close(fd);
		return -1;
	}
	f->fd = fd;
	f->size = st.st_size;
	f->failed = 0;
	f->opens++;
	return 0;
}

/* Close the file and its directory: the next open walks the path again. */
static void
output_file_close(struct output_file *f)
{
	if (f->fd != -1) {
		close(f->fd);
		f->fd = -1;
	}
	if (f->dirfd != -1) {
		close(f->dirfd);
		f->dirfd = -1;
	}
}

/*
 * FILE -> FILE.1 -> ... -> FILE.backups (the oldest is overwritten), then
 * a new FILE, all in the directory opened with the file. With no backups
 * the file is truncated instead. Failures are logged; output goes on to
 * whatever file is open.
 */
static void
output_file_rotate(struct output *o, struct output_file *f)
{
	uint32_t backups = o->inst->spec.output->backups, k;
	char from[NAME_MAX + 16], to[NAME_MAX + 16];
	struct ward_err e = WARD_ERR_INIT;
	int rc;

	f->size = 0;
	if (backups == 0) {
		if (ftruncate(f->fd, 0) == -1)
			log_warn("cannot truncate log file %s", f->path);
		return;
	}
	if (output_file_enter(o, f) == -1) {
		log_warn("cannot rotate %s as the payload's user", f->path);
		return;
	}
	for (k = backups - 1; k >= 1; k--) {
		snprintf(from, sizeof from, "%s.%u", f->base, k);
		snprintf(to, sizeof to, "%s.%u", f->base, k + 1);
		if (renameat(f->dirfd, from, f->dirfd, to) == -1 &&
		    errno != ENOENT)
			log_warn("cannot rotate %s.%u", f->path, k);
	}
	snprintf(to, sizeof to, "%s.1", f->base);
	rc = renameat(f->dirfd, f->base, f->dirfd, to);
	output_file_leave(f);
	if (rc == -1) {
		log_warn("cannot rotate %s to %s.1", f->path, f->path);
		return;		/* keep writing; retried after maxbytes more */
	}
	close(f->fd);
	f->fd = -1;
	if (output_file_open(o, f, &e) == -1)
		log_warnx("instance %" PRIu64 " %s: %s", o->inst->id,
		    o->inst->spec.name, e.msg);
}

/*
 * Append to the log file, rotating first when the write would take it past
 * logfile_maxbytes (a write is never split, so a file may pass it by less
 * than one read's worth when it was empty).
 */
void
output_file_write(struct output *o, struct output_file *f, const char *p,
    size_t n)
{
	uint64_t max = o->inst->spec.output->maxbytes;
	ssize_t w;

	if (f->fd == -1)
		return;
	if (max > 0 && f->size > 0 && f->size + n > max &&
	    output_file_stdio(f) == -1)
		output_file_rotate(o, f);
	while (n > 0 && f->fd != -1) {
		w = f->sock ? send(f->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL) :
		    write(f->fd, p, n);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (!f->failed)
				log_warn("instance %" PRIu64 " %s: writing %s",
				    o->inst->id, o->inst->spec.name, f->path);
			f->failed = 1;
			return;
		}
		p += w;
		n -= w;
		f->size += w;
	}
	f->failed = 0;
}

/* Open the log files a spawn needs (those not open yet). */
int
output_file_open_all(struct output *o, struct ward_err *e)
{
	int k;

	for (k = 0; k < OUTPUT_NSTREAMS; k++) {
		struct output_file *f = &o->files[k];

		if (f->path != NULL && f->fd == -1 &&
		    (o->s[OUTPUT_STDOUT].file == f || o->s[OUTPUT_STDERR].file == f) &&
		    output_file_open(o, f, e) == -1)
			return -1;
	}
	return 0;
}

/* Close o's files: with its last open pipe, or with the instance. */
void
output_file_close_all(struct output *o)
{
	int k;

	for (k = 0; k < OUTPUT_NSTREAMS; k++)
		output_file_close(&o->files[k]);
}

/*
 * ward.logrotate and SIGUSR1: reopen every open log file by its path, for
 * logrotate's "create" mode (the old file was renamed away). Files of
 * instances whose pipes are closed are opened at their next spawn anyway.
 */
unsigned
output_reopen_all(unsigned *failed)
{
	struct instance *i;
	unsigned n = 0;
	struct ward_err e = WARD_ERR_INIT;
	int k;

	*failed = 0;
	TAILQ_FOREACH(i, &instances, entry) {
		struct output *o = i->output;

		if (o == NULL || !output_streams_open(o))
			continue;
		for (k = 0; k < OUTPUT_NSTREAMS; k++) {
			struct output_file *f = &o->files[k];

			if (f->path == NULL || (o->s[OUTPUT_STDOUT].file != f &&
			    o->s[OUTPUT_STDERR].file != f))
				continue;
			output_file_close(f);
			if (output_file_open(o, f, &e) == -1) {
				log_warnx("instance %" PRIu64 " %s: %s", i->id,
				    i->spec.name, e.msg);
				(*failed)++;
			} else
				n++;
		}
	}
	log_info("log files reopened: %u (%u failed)", n, *failed);
	return n;
}
