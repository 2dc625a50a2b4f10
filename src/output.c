/*
 * output.c: an instance's stdout and stderr, captured. For an instance
 * created with capture_output (or a log file, or stdout_journal) each spawn
 * gets one pipe per stream whose write end becomes the child's fd 1 or 2;
 * wardd reads the other end, never blocking, and hands what it read to the
 * sinks: a ring of the last log_ring_bytes (instance.log), an optional log
 * file with size-based rotation, the journal (one entry per line), and the
 * connections that follow the stream.
 *
 * Everything lives in one struct output, allocated at the first spawn (or
 * the first follow) of an instance that captures and freed with the
 * instance: instances that do not capture pay one pointer. A pipe outlives
 * its child: it is read until EOF, since a grandchild may still write, and
 * closed then, at the next spawn, or when the instance is removed.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"

#define container_of(p, type, member) \
	((type *)((char *)(p) - offsetof(type, member)))

#define OUTPUT_CHUNK		65536		/* one read */
#define OUTPUT_TURN_BLOCK	65536		/* per stream per loop turn: block */
#define OUTPUT_TURN_DROP	(4 * 65536)	/* ... and drop: keep up, cheaply */
#define OUTPUT_DRAIN_MAX	(1024 * 1024)	/* read at death, or a restart */
#define OUTPUT_LINE_MAX		8192		/* longer lines: several entries */
#define OUTPUT_RING_MIN		4096		/* the ring grows from here */
#define OUTPUT_FOLLOW_MAX	1024		/* follows per connection */
#define OUTPUT_JOURNAL_SOCKET	"/run/systemd/journal/socket"

/* An open log file; shared by both streams when they name the same path. */
struct output_file {
	const char	*path;		/* the config's */
	const char	*base;		/* path's last component */
	int		 fd;		/* -1: not open */
	int		 dirfd;		/* its directory (O_PATH); -1: not open */
	int		 as_user;	/* others can write there: act as the
					   payload's user (output_file_dir) */
	uint64_t	 size;		/* for rotation */
	int		 failed;	/* a write failed: said once, not per write */
};

/* One connection following one stream (instance.log with follow). */
struct output_follow {
	struct conn_attachment		 att;		/* on c; first member */
	struct conn			*c;
	struct output_stream		*st;
	LIST_ENTRY(output_follow)	 stream_entry;	/* st->followers */
};

struct output_stream {
	struct output		*out;
	int			 which;		/* OUTPUT_STDOUT or OUTPUT_STDERR */
	int			 fd;		/* read end; -1 when closed */
	int			 pending;	/* made for a spawn not yet done */
	ev_io			 rw;

	/* The ring: the last ring_bytes; grows to that as output comes. */
	char			*ring;
	size_t			 ring_cap;
	size_t			 ring_start;	/* oldest byte */
	size_t			 ring_len;

	struct output_file	*file;		/* NULL: no log file */

	/* Lines, for drop mode's rate and for the journal. */
	int			 mid_line;	/* the last byte read was not '\n' */
	int			 dropping;	/* the current line is dropped */
	ev_tstamp		 window;	/* start of the current second */
	uint32_t		 window_lines;
	uint64_t		 dropped;	/* lines: over the rate, or refused
						   by the journal */
	char			*jline;		/* partial line for the journal */
	size_t			 jlen;

	/* An incomplete UTF-8 sequence held back from followers. */
	char			 carry[4];
	size_t			 ncarry;
	LIST_HEAD(, output_follow) followers;
};

struct output {
	struct instance		*inst;
	int			 reserved;	/* output_reserve ran */
	uint64_t		 ring_reserved;	/* in the owner's ring budget */
	struct output_stream	 s[OUTPUT_NSTREAMS];
	struct output_file	 files[OUTPUT_NSTREAMS];
};

static const char *const output_stream_names[OUTPUT_NSTREAMS] = {
	[OUTPUT_STDOUT] = "stdout",
	[OUTPUT_STDERR] = "stderr",
};

static int output_journal_fd = -1;	/* one datagram socket for all */

static void	output_read_cb(struct ev_loop *, ev_io *, int);

int
output_stream_parse(const char *s)
{
	int k;

	for (k = 0; k < OUTPUT_NSTREAMS; k++) {
		if (strcmp(s, output_stream_names[k]) == 0)
			return k;
	}
	return -1;
}

const char *
output_stream_name(int k)
{
	return output_stream_names[k];
}

/* ---- the config */

void
output_config_free(struct output_config *oc)
{
	int k;

	if (oc == NULL)
		return;
	for (k = 0; k < OUTPUT_NSTREAMS; k++)
		free(oc->logfile[k]);
	free(oc);
}

/* A log file path: absolute, in an existing directory, with room for ".N". */
static char *
output_config_path(const msgpack_object *o, const char *key, char *err,
    size_t errlen)
{
	struct stat st;
	char *s, *slash;

	s = o->via.str.size < PATH_MAX - 16 ? codec_strdup(o) : NULL;
	if (s == NULL || !utf8_valid(s, strlen(s)) || s[0] != '/' ||
	    s[strlen(s) - 1] == '/') {
		snprintf(err, errlen, "'%s' must be an absolute file path (UTF-8, "
		    "no NUL, under %d bytes)", key, PATH_MAX - 16);
		free(s);
		return NULL;
	}
	slash = strrchr(s, '/');
	*slash = '\0';
	if (stat(slash == s ? "/" : s, &st) == -1 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "'%s': directory '%.200s' does not exist",
		    key, slash == s ? "/" : s);
		free(s);
		return NULL;
	}
	*slash = '/';
	return s;
}

/*
 * capture_output and the log keys (a[] in OUTPUT_ARG_* order). *out stays
 * NULL for an instance that does not capture. Returns NULL or an error code
 * with a message in err; *out then holds what was parsed, for config_free.
 */
const char *
output_config_parse(struct output_config **out, const msgpack_object **a,
    int admin, char *err, size_t errlen)
{
	const msgpack_object *cap = a[OUTPUT_ARG_CAPTURE];
	struct output_config *oc;
	int k, implied, tuned;

	*out = NULL;
	implied = a[OUTPUT_ARG_STDOUT_LOGFILE] != NULL ||
	    a[OUTPUT_ARG_STDERR_LOGFILE] != NULL ||
	    (a[OUTPUT_ARG_JOURNAL] != NULL && a[OUTPUT_ARG_JOURNAL]->via.boolean);
	tuned = a[OUTPUT_ARG_RING_BYTES] != NULL || a[OUTPUT_ARG_MAXBYTES] != NULL ||
	    a[OUTPUT_ARG_BACKUPS] != NULL || a[OUTPUT_ARG_OVERFLOW] != NULL ||
	    a[OUTPUT_ARG_RATE_LINES] != NULL;
	if (cap != NULL && !cap->via.boolean && implied) {
		snprintf(err, errlen, "'capture_output' is false, but a log file "
		    "or stdout_journal needs the output captured");
		return WARD_E_INVALID_ARGUMENT;
	}
	if ((cap == NULL || !cap->via.boolean) && !implied) {
		if (tuned) {
			snprintf(err, errlen, "the log_* and logfile_* keys apply "
			    "only to captured output (capture_output: true)");
			return WARD_E_INVALID_ARGUMENT;
		}
		return NULL;
	}
	/* wardd opens files and writes the journal as itself. */
	if (!admin && (a[OUTPUT_ARG_STDOUT_LOGFILE] != NULL ||
	    a[OUTPUT_ARG_STDERR_LOGFILE] != NULL)) {
		snprintf(err, errlen, "only root or wardd's own user may set "
		    "'stdout_logfile' or 'stderr_logfile' (wardd writes them as "
		    "itself); read the output with instance.log");
		return WARD_E_PERMISSION;
	}
	if (!admin && a[OUTPUT_ARG_JOURNAL] != NULL &&
	    a[OUTPUT_ARG_JOURNAL]->via.boolean) {
		snprintf(err, errlen, "only root or wardd's own user may set "
		    "'stdout_journal' (entries would carry wardd's credentials "
		    "under a name the caller chose)");
		return WARD_E_PERMISSION;
	}
	if ((oc = calloc(1, sizeof *oc)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return WARD_E_INTERNAL;
	}
	*out = oc;
	oc->ring_bytes = OUTPUT_RING_DEFAULT;
	oc->maxbytes = OUTPUT_MAXBYTES_DEFAULT;
	oc->backups = OUTPUT_BACKUPS_DEFAULT;
	oc->rate_lines = OUTPUT_RATE_DEFAULT;
	for (k = 0; k < OUTPUT_NSTREAMS; k++) {
		const msgpack_object *o = a[OUTPUT_ARG_STDOUT_LOGFILE + k];
		const char *key = k == 0 ? "stdout_logfile" : "stderr_logfile";

		if (o != NULL && (oc->logfile[k] = output_config_path(o, key, err,
		    errlen)) == NULL)
			return WARD_E_INVALID_ARGUMENT;
	}
	oc->journal = a[OUTPUT_ARG_JOURNAL] != NULL &&
	    a[OUTPUT_ARG_JOURNAL]->via.boolean;
	if (a[OUTPUT_ARG_RING_BYTES] != NULL) {
		if (a[OUTPUT_ARG_RING_BYTES]->via.u64 > OUTPUT_RING_MAX) {
			snprintf(err, errlen, "'log_ring_bytes' must be 0 to %d",
			    OUTPUT_RING_MAX);
			return WARD_E_INVALID_ARGUMENT;
		}
		/* Every ring is wardd's memory: others' are kept small. */
		if (!admin && a[OUTPUT_ARG_RING_BYTES]->via.u64 >
		    OUTPUT_RING_USER_MAX) {
			snprintf(err, errlen, "'log_ring_bytes' over %d is for root "
			    "or wardd's own user only", OUTPUT_RING_USER_MAX);
			return WARD_E_PERMISSION;
		}
		oc->ring_bytes = a[OUTPUT_ARG_RING_BYTES]->via.u64;
	}
	if (a[OUTPUT_ARG_MAXBYTES] != NULL)
		oc->maxbytes = a[OUTPUT_ARG_MAXBYTES]->via.u64;
	if (a[OUTPUT_ARG_BACKUPS] != NULL) {
		if (a[OUTPUT_ARG_BACKUPS]->via.u64 > OUTPUT_BACKUPS_MAX) {
			snprintf(err, errlen, "'logfile_backups' must be 0 to %d",
			    OUTPUT_BACKUPS_MAX);
			return WARD_E_INVALID_ARGUMENT;
		}
		oc->backups = a[OUTPUT_ARG_BACKUPS]->via.u64;
	}
	if (a[OUTPUT_ARG_OVERFLOW] != NULL) {
		if (codec_streq(a[OUTPUT_ARG_OVERFLOW], "drop"))
			oc->drop = 1;
		else if (!codec_streq(a[OUTPUT_ARG_OVERFLOW], "block")) {
			snprintf(err, errlen, "'log_overflow' is \"block\" (the "
			    "default: a payload that writes faster than wardd "
			    "reads waits) or \"drop\" (lines over log_rate_lines "
			    "a second are dropped and counted)");
			return WARD_E_INVALID_ARGUMENT;
		}
	}
	if (a[OUTPUT_ARG_RATE_LINES] != NULL) {
		uint64_t v = a[OUTPUT_ARG_RATE_LINES]->via.u64;

		if (v < 1 || v > OUTPUT_RATE_MAX) {
			snprintf(err, errlen, "'log_rate_lines' must be 1 to %d",
			    OUTPUT_RATE_MAX);
			return WARD_E_INVALID_ARGUMENT;
		}
		oc->rate_lines = v;
	}
	return NULL;
}

/* ---- the per-instance state */

static struct output *
output_get(struct instance *i)
{
	const struct output_config *oc = i->cfg.output;
	struct output *o;
	int k;

	if (i->output != NULL || oc == NULL)
		return i->output;
	if ((o = calloc(1, sizeof *o)) == NULL)
		return NULL;
	o->inst = i;
	for (k = 0; k < OUTPUT_NSTREAMS; k++) {
		struct output_stream *st = &o->s[k];

		st->out = o;
		st->which = k;
		st->fd = -1;
		ev_init(&st->rw, output_read_cb);
		LIST_INIT(&st->followers);
		o->files[k].fd = o->files[k].dirfd = -1;
		o->files[k].path = oc->logfile[k];
		if (oc->logfile[k] != NULL)
			o->files[k].base = strrchr(oc->logfile[k], '/') + 1;
	}
	/* The same path for both streams: one file, rotated once. */
	for (k = 0; k < OUTPUT_NSTREAMS; k++) {
		if (oc->logfile[k] == NULL)
			continue;
		if (k == OUTPUT_STDERR && oc->logfile[OUTPUT_STDOUT] != NULL &&
		    strcmp(oc->logfile[OUTPUT_STDOUT], oc->logfile[k]) == 0)
			o->s[k].file = &o->files[OUTPUT_STDOUT];
		else
			o->s[k].file = &o->files[k];
	}
	i->output = o;
	return o;
}

static int
output_streams_open(const struct output *o)
{
	int k;

	for (k = 0; k < OUTPUT_NSTREAMS; k++) {
		if (o->s[k].fd != -1)
			return 1;
	}
	return 0;
}

/* ---- log files */

/*
 * Log files are at admins' paths, which may lie where a payload's user can
 * write: statedir.c's rule applies. The file's directory is opened (once
 * per open, kept for rotations) by statedir_walk. Where nobody but root
 * can change anything on the way, wardd creates, opens and rotates the file
 * there as itself, through that directory fd. Anywhere else it does all of
 * it with the credentials of the user the payload runs as (uid, gid and
 * groups, as spawn.c gives them), so it can do there only what the payload
 * could do itself; for a payload that runs as root or as wardd, it refuses.
 * The file itself is never followed and must have one link.
 */
static int
output_file_enter(const struct output *o, const struct output_file *f)
{
	const struct instance *i = o->inst;
	uid_t uid;
	gid_t gid;

	if (!f->as_user)
		return 0;
	spawn_ids(i, &uid, &gid);
	return statedir_as_user(uid, gid, i->cfg.has_user ? NULL : i->groups,
	    i->cfg.has_user ? 0 : i->ngroups);
}

static void
output_file_leave(const struct output_file *f)
{
	if (f->as_user)
		statedir_as_self();
}

/* Open the log file's directory: f->dirfd, and f->as_user if it must be. */
static int
output_file_dir(const struct output *o, struct output_file *f, char *err,
    size_t errlen)
{
	char *dir;
	uid_t uid;
	gid_t gid;
	int rc;

	dir = f->base - 1 == f->path ? strdup("/") :
	    strndup(f->path, f->base - 1 - f->path);
	if (dir == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	f->as_user = 0;
	if ((rc = statedir_walk(dir, &f->dirfd)) == 0) {
		if (!opts.is_root || !spawn_ids(o->inst, &uid, &gid) || uid == 0) {
			snprintf(err, errlen, "log file %s: a user other than "
			    "root can change %s or a directory on its way; wardd "
			    "writes log files there only for payloads that run as "
			    "another user, and then as that user", f->path, dir);
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
		snprintf(err, errlen, "cannot open log file %s: directory %s: "
		    "%s%s", f->path, dir, strerror(errno), f->as_user ?
		    " (as the payload's user)" : "");
		free(dir);
		return -1;
	}
	free(dir);
	return 0;
}

static int
output_file_open(const struct output *o, struct output_file *f, char *err,
    size_t errlen)
{
	struct stat st;
	int fd;

	if (f->dirfd == -1 && output_file_dir(o, f, err, errlen) == -1)
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
	if (fd == -1) {
		snprintf(err, errlen, "cannot open log file %s: %s%s", f->path,
		    strerror(errno), f->as_user ? " (as the payload's user)" : "");
		return -1;
	}
	/* A hard link is the symlink's twin: refuse a file with more than one. */
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
		snprintf(err, errlen, "log file %s is not a regular file with "
		    "one link", f->path);
		close(fd);
		return -1;
	}
	f->fd = fd;
	f->size = st.st_size;
	f->failed = 0;
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
	uint32_t backups = o->inst->cfg.output->backups, k;
	char from[NAME_MAX + 16], to[NAME_MAX + 16], err[PATH_MAX + 64];
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
	if (output_file_open(o, f, err, sizeof err) == -1)
		log_warnx("instance %" PRIu64 " %s: %s", o->inst->id,
		    o->inst->cfg.name, err);
}

/*
 * Append to the log file, rotating first when the write would take it past
 * logfile_maxbytes (a write is never split, so a file may pass it by less
 * than one read's worth when it was empty).
 */
static void
output_file_write(struct output *o, struct output_file *f, const char *p,
    size_t n)
{
	uint64_t max = o->inst->cfg.output->maxbytes;
	ssize_t w;

	if (f->fd == -1)
		return;
	if (max > 0 && f->size > 0 && f->size + n > max)
		output_file_rotate(o, f);
	while (n > 0 && f->fd != -1) {
		w = write(f->fd, p, n);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (!f->failed)
				log_warn("instance %" PRIu64 " %s: writing %s",
				    o->inst->id, o->inst->cfg.name, f->path);
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
static int
output_files_open(struct output *o, char *err, size_t errlen)
{
	int k;

	for (k = 0; k < OUTPUT_NSTREAMS; k++) {
		struct output_file *f = &o->files[k];

		if (f->path != NULL && f->fd == -1 &&
		    (o->s[OUTPUT_STDOUT].file == f || o->s[OUTPUT_STDERR].file == f) &&
		    output_file_open(o, f, err, errlen) == -1)
			return -1;
	}
	return 0;
}

static void
output_files_close(struct output *o)
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
	char err[PATH_MAX + 64];
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
			if (output_file_open(o, f, err, sizeof err) == -1) {
				log_warnx("instance %" PRIu64 " %s: %s", i->id,
				    i->cfg.name, err);
				(*failed)++;
			} else
				n++;
		}
	}
	log_info("log files reopened: %u (%u failed)", n, *failed);
	return n;
}

/* ---- the ring */

/* Keep the last ring_bytes: grow to that size as needed, then wrap. */
static void
output_ring_append(struct output_stream *st, const char *p, size_t n)
{
	size_t max = st->out->inst->cfg.output->ring_bytes, at, k;
	char *r;

	if (max == 0)
		return;
	if (n >= max) {
		p += n - max;
		n = max;
		st->ring_start = st->ring_len = 0;
	}
	/*
	 * Grow (up to max) only while the data is linear from 0: it is until
	 * the ring first wraps, which happens at max unless realloc failed.
	 */
	if (st->ring_cap < max && st->ring_start == 0 &&
	    st->ring_len + n > st->ring_cap) {
		size_t cap = st->ring_cap ? st->ring_cap : OUTPUT_RING_MIN;

		while (cap < st->ring_len + n)
			cap *= 2;
		if (cap > max)
			cap = max;
		if ((r = realloc(st->ring, cap)) != NULL) {
			st->ring = r;
			st->ring_cap = cap;
		}
		/* Out of memory: wrap within what there is. */
	}
	if (st->ring_cap == 0)
		return;
	if (n > st->ring_cap) {
		p += n - st->ring_cap;
		n = st->ring_cap;
	}
	if (st->ring_len + n > st->ring_cap) {
		k = st->ring_len + n - st->ring_cap;	/* oldest bytes to lose */
		st->ring_start = (st->ring_start + k) % st->ring_cap;
		st->ring_len -= k;
	}
	at = (st->ring_start + st->ring_len) % st->ring_cap;
	k = st->ring_cap - at < n ? st->ring_cap - at : n;
	memcpy(st->ring + at, p, k);
	memcpy(st->ring, p + k, n - k);
	st->ring_len += n;
}

/*
 * The last max bytes of a stream's ring as valid UTF-8 (a sequence cut at
 * the start is skipped); "" when nothing was captured. NULL: out of memory.
 */
char *
output_tail(const struct instance *i, int k, size_t max)
{
	const struct output_stream *st;
	size_t n, from, first;
	char *raw, *clean;

	if (i->output == NULL)
		return strdup("");
	st = &i->output->s[k];
	n = st->ring_len < max ? st->ring_len : max;
	if (n > OUTPUT_READ_MAX)
		n = OUTPUT_READ_MAX;
	if (n == 0)
		return strdup("");
	if ((raw = malloc(n)) == NULL)
		return NULL;
	from = (st->ring_start + st->ring_len - n) % st->ring_cap;
	first = st->ring_cap - from < n ? st->ring_cap - from : n;
	memcpy(raw, st->ring + from, first);
	memcpy(raw + first, st->ring, n - first);
	for (from = 0; from < 3 && from < n &&
	    ((unsigned char)raw[from] & 0xc0) == 0x80; from++)
		;
	clean = utf8_clean(raw + from, n - from);
	free(raw);
	return clean;
}

uint64_t
output_dropped(const struct instance *i, int k)
{
	if (i->output == NULL)
		return 0;
	if (k >= 0)
		return i->output->s[k].dropped;
	return i->output->s[OUTPUT_STDOUT].dropped +
	    i->output->s[OUTPUT_STDERR].dropped;
}

/* ---- the journal */

/*
 * One line as one journal entry, in journald's native protocol, sent
 * without waiting: sd_journal_send's socket blocks when journald falls
 * behind, and wardd must not. A line the journal cannot take now is
 * counted in dropped; no journal at all (ENOENT) is not an error.
 */
static void
output_journal_send(struct output_stream *st, const char *line, size_t len)
{
	static struct sockaddr_un sa = {
		.sun_family = AF_UNIX, .sun_path = OUTPUT_JOURNAL_SOCKET
	};
	const struct instance *i = st->out->inst;
	struct iovec iov[4];
	struct msghdr mh;
	char head[512], nl[] = "\n";
	uint64_t le;
	int hlen;

	if (output_journal_fd == -1 && (output_journal_fd = socket(AF_UNIX,
	    SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1)
		return;
	hlen = snprintf(head, sizeof head, "PRIORITY=%d\nSYSLOG_IDENTIFIER=%s\n"
	    "WARD_INSTANCE_ID=%" PRIu64 "\nWARD_INSTANCE_NAME=%s\n"
	    "WARD_STREAM=%s\nMESSAGE\n", st->which == OUTPUT_STDOUT ? 6 : 3,
	    i->cfg.name, i->id, i->cfg.name, output_stream_names[st->which]);
	/* MESSAGE in the binary form: any bytes but the newline are allowed. */
	le = htole64(len);
	iov[0].iov_base = head;
	iov[0].iov_len = hlen;
	iov[1].iov_base = &le;
	iov[1].iov_len = sizeof le;
	iov[2].iov_base = (void *)(uintptr_t)line;	/* only read */
	iov[2].iov_len = len;
	iov[3].iov_base = nl;
	iov[3].iov_len = 1;
	memset(&mh, 0, sizeof mh);
	mh.msg_name = &sa;
	mh.msg_namelen = sizeof sa;
	mh.msg_iov = iov;
	mh.msg_iovlen = 4;
	if (sendmsg(output_journal_fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) == -1 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS))
		st->dropped++;
}

/* Split kept output into lines for the journal; long lines are cut. */
static void
output_journal_lines(struct output_stream *st, const char *p, size_t n)
{
	const char *nl;
	size_t take, c;

	while (n > 0) {
		nl = memchr(p, '\n', n);
		take = nl != NULL ? (size_t)(nl - p) : n;
		if (st->jlen == 0 && nl != NULL && take <= OUTPUT_LINE_MAX) {
			output_journal_send(st, p, take);	/* whole: no copy */
		} else {
			if (st->jline == NULL &&
			    (st->jline = malloc(OUTPUT_LINE_MAX)) == NULL)
				return;
			while (take > 0) {
				if (st->jlen == OUTPUT_LINE_MAX) {
					output_journal_send(st, st->jline, st->jlen);
					st->jlen = 0;
				}
				c = OUTPUT_LINE_MAX - st->jlen;
				c = c < take ? c : take;
				memcpy(st->jline + st->jlen, p, c);
				st->jlen += c;
				p += c;
				n -= c;
				take -= c;
			}
			if (nl == NULL)
				return;
			output_journal_send(st, st->jline, st->jlen);
			st->jlen = 0;
			take = 0;
		}
		p += take + 1;
		n -= take + 1;
	}
}

/* ---- followers */

/* c is going away; conn_lost took f off it already. */
static void
output_follow_detach_cb(struct conn *c, struct conn_attachment *a)
{
	struct output_follow *f = (struct output_follow *)a;

	LIST_REMOVE(f, stream_entry);
	free(f);
}

static void
output_follow_free(struct output_follow *f)
{
	conn_detach(f->c, &f->att);
	output_follow_detach_cb(f->c, &f->att);
}

/* c's follows, one by one (conn_attachment_next). */
#define OUTPUT_FOLLOWS(f, c)						\
	for ((f) = (struct output_follow *)conn_attachment_next((c), NULL, \
	    output_follow_detach_cb); (f) != NULL;			\
	    (f) = (struct output_follow *)conn_attachment_next((c),	\
	    &(f)->att, output_follow_detach_cb))

/*
 * From now on c receives [2, "ward.log", [{id, name, stream, data}]] for
 * new output of stream k of i. Following twice is following once. -1 with
 * errno E2BIG (too many follows on c) or ENOMEM.
 */
int
output_follow(struct conn *c, struct instance *i, int k)
{
	struct output_follow *f;
	struct output *o;
	int n = 0;

	if ((o = output_get(i)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	OUTPUT_FOLLOWS(f, c) {
		if (f->st == &o->s[k])
			return 0;
		n++;
	}
	if (n >= OUTPUT_FOLLOW_MAX) {
		errno = E2BIG;
		return -1;
	}
	if ((f = calloc(1, sizeof *f)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	f->c = c;
	f->st = &o->s[k];
	if (LIST_EMPTY(&o->s[k].followers))
		o->s[k].ncarry = 0;
	conn_attach(c, &f->att, output_follow_detach_cb);
	LIST_INSERT_HEAD(&o->s[k].followers, f, stream_entry);
	return 0;
}

void
output_unfollow(struct conn *c, struct instance *i, int k)
{
	struct output_follow *f;

	if (i->output == NULL)
		return;
	OUTPUT_FOLLOWS(f, c) {
		if (f->st == &i->output->s[k]) {
			output_follow_free(f);
			return;
		}
	}
}

/* c is dropped (it fell behind): it follows nothing any more. */
static void
output_unfollow_conn(struct conn *c)
{
	struct output_follow *f;

	while ((f = (struct output_follow *)conn_attachment_next(c, NULL,
	    output_follow_detach_cb)) != NULL)
		output_follow_free(f);
}

static void
output_pack_head(msgpack_packer *pk, const struct output_stream *st,
    size_t fields)
{
	const struct instance *i = st->out->inst;

	msgpack_pack_array(pk, 3);
	msgpack_pack_int(pk, WARD_MSG_NOTIFY);
	codec_pack_str(pk, WARD_N_LOG);
	msgpack_pack_array(pk, 1);
	msgpack_pack_map(pk, fields + 3);
	codec_pack_kv_uint(pk, "id", i->id);
	codec_pack_kv_str(pk, "name", i->cfg.name);
	codec_pack_kv_str(pk, "stream", output_stream_names[st->which]);
}

/* The follower fell a whole output buffer behind: tell it, then let it go. */
static void
output_overflow(struct output_follow *f)
{
	struct conn *c = f->c;
	struct buf b = { 0 };
	msgpack_packer pk;

	msgpack_packer_init(&pk, &b, codec_sbuffer_write);
	output_pack_head(&pk, f->st, 2);
	codec_pack_kv_bool(&pk, "overflow", 1);
	codec_pack_kv_str(&pk, "message", "this follower did not read its log "
	    "notifications and fell more than the output cap behind; it is "
	    "dropped");
	output_unfollow_conn(c);	/* f is freed */
	conn_queue(c, b.data, b.len);
	buf_free(&b);
	conn_close_after_flush(c);
}

/*
 * Length of data[0..n) that ends on a whole UTF-8 sequence: an incomplete
 * one at the end (at most 3 bytes) waits for the next chunk.
 */
static size_t
output_utf8_whole(const char *data, size_t n)
{
	const unsigned char *p = (const unsigned char *)data;
	size_t k, need;

	for (k = 1; k <= 3 && k <= n; k++) {
		unsigned char b = p[n - k];

		if ((b & 0xc0) == 0x80)
			continue;		/* a continuation byte */
		need = b >= 0xf5 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 :
		    b >= 0xc2 ? 2 : 1;
		return need > k && need <= 4 ? n - k : n;
	}
	return n;
}

/* Send a kept chunk to the stream's followers, packed once. */
static void
output_notify(struct output_stream *st, const char *p, size_t n)
{
	struct output_follow *f, *next;
	struct buf b = { 0 };
	msgpack_packer pk;
	char *joined, *clean;
	size_t whole;

	if (LIST_EMPTY(&st->followers))
		return;
	if ((joined = malloc(st->ncarry + n)) == NULL)
		return;
	memcpy(joined, st->carry, st->ncarry);
	memcpy(joined + st->ncarry, p, n);
	n += st->ncarry;
	whole = output_utf8_whole(joined, n);
	st->ncarry = n - whole;
	memcpy(st->carry, joined + whole, st->ncarry);
	clean = whole > 0 ? utf8_clean(joined, whole) : NULL;
	free(joined);
	if (clean == NULL)
		return;
	msgpack_packer_init(&pk, &b, codec_sbuffer_write);
	output_pack_head(&pk, st, 1);
	codec_pack_kv_str(&pk, "data", clean);
	free(clean);
	if (b.data == NULL)
		return;
	/* An overflow frees only its own conn's follows, never next. */
	for (f = LIST_FIRST(&st->followers); f != NULL; f = next) {
		next = LIST_NEXT(f, stream_entry);
		if (f->c->closing || f->c->broken)
			continue;	/* on its way out; conn_lost unfollows */
		if (buf_used(&f->c->out) + b.len > CONN_OUT_CAP) {
			output_overflow(f);
			continue;
		}
		conn_queue(f->c, b.data, b.len);
		conn_flush(f->c);
	}
	buf_free(&b);
}

/* ---- reading */

/* Output that is kept: to the ring, the file, the journal, the followers. */
static void
output_keep(struct output_stream *st, const char *p, size_t n)
{
	struct output *o = st->out;

	output_ring_append(st, p, n);
	if (st->file != NULL)
		output_file_write(o, st->file, p, n);
	if (o->inst->cfg.output->journal)
		output_journal_lines(st, p, n);
	output_notify(st, p, n);
}

/*
 * A chunk just read. In drop mode whole lines past log_rate_lines in the
 * current second are dropped (and counted when they start); the rest is
 * kept in runs.
 */
static void
output_chunk(struct output_stream *st, const char *p, size_t n)
{
	const struct output_config *oc = st->out->inst->cfg.output;
	const char *end = p + n, *run = p, *nl, *next;
	ev_tstamp now;

	if (!oc->drop) {
		output_keep(st, p, n);
		return;
	}
	now = ev_now(ward_loop);
	while (p < end) {
		if (!st->mid_line) {
			if (now - st->window >= 1.0 || now < st->window) {
				st->window = now;
				st->window_lines = 0;
			}
			st->dropping = st->window_lines >= oc->rate_lines;
			if (st->dropping)
				st->dropped++;
			else
				st->window_lines++;
		}
		nl = memchr(p, '\n', end - p);
		next = nl != NULL ? nl + 1 : end;
		st->mid_line = nl == NULL;
		if (st->dropping) {
			if (p > run)
				output_keep(st, run, p - run);
			run = next;
		}
		p = next;
	}
	if (end > run)
		output_keep(st, run, end - run);
}

/* At EOF (or when wardd lets the pipe go): close it; a last partial line
 * goes to the journal; the files close with the last open pipe. */
static void
output_stream_close(struct output_stream *st)
{
	if (st->fd == -1)
		return;
	ev_io_stop(ward_loop, &st->rw);
	close(st->fd);
	st->fd = -1;
	st->pending = 0;
	if (st->jlen > 0) {
		output_journal_send(st, st->jline, st->jlen);
		st->jlen = 0;
	}
	st->mid_line = st->dropping = 0;
	st->ncarry = 0;		/* a sequence cut by EOF stays cut */
	if (!output_streams_open(st->out))
		output_files_close(st->out);
}

/* Read what is readable, at most budget bytes; never waits. */
static void
output_read(struct output_stream *st, size_t budget)
{
	static char chunk[OUTPUT_CHUNK];
	size_t done = 0;
	ssize_t n;

	while (st->fd != -1 && done < budget) {
		n = read(st->fd, chunk, budget - done < sizeof chunk ?
		    budget - done : sizeof chunk);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			output_stream_close(st);	/* EOF: every writer is gone */
			return;
		}
		done += n;
		output_chunk(st, chunk, n);
	}
}

/*
 * Readable. Block mode takes 64 KiB per stream per loop turn, so a payload
 * that writes faster waits on its full pipe while wardd serves everyone
 * else; drop mode takes more, to keep up, and drops lines instead.
 */
static void
output_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct output_stream *st = container_of(w, struct output_stream, rw);

	output_read(st, st->out->inst->cfg.output->drop ? OUTPUT_TURN_DROP :
	    OUTPUT_TURN_BLOCK);
}

/* ---- the instance's side: spawn, death, removal */

static int
output_target_taken(const struct instance_config *cfg, int target)
{
	size_t k;

	for (k = 0; k < cfg->nfds; k++) {
		if (cfg->fds[k].target == target)
			return 1;
	}
	return 0;
}

/*
 * The ring bytes i reserves in its owner's budget (budget.c), at its first
 * start: log_ring_bytes for each stream it captures, kept until it is
 * removed (a dead instance's rings still serve instance.log), so the rings
 * can always grow to their size. An instance created but never started
 * reserves nothing. NULL (also when done already), or the error code with
 * a message in err.
 */
const char *
output_reserve(struct instance *i, char *err, size_t errlen)
{
	struct ward_err e = WARD_ERR_INIT;
	struct output *o;
	uint64_t need = 0;
	int k;

	if (i->cfg.output == NULL || (i->output != NULL && i->output->reserved))
		return NULL;
	for (k = 0; k < OUTPUT_NSTREAMS; k++) {
		if (!output_target_taken(&i->cfg, k + 1))
			need += i->cfg.output->ring_bytes;
	}
	if (budget_take(i->owner_uid, BUDGET_RING, need, &e) == -1) {
		snprintf(err, errlen, "%s", e.msg);
		return e.code;
	}
	if ((o = output_get(i)) == NULL) {
		budget_give(i->owner_uid, BUDGET_RING, need);
		snprintf(err, errlen, "out of memory");
		return WARD_E_INTERNAL;
	}
	o->reserved = 1;
	o->ring_reserved = need;
	return NULL;
}

/*
 * Before a spawn: a pipe per captured stream, the write end added to
 * cfg.fds as the child's fd 1 or 2 (closed with cfg.fds after the spawn),
 * the read end kept pending until output_spawn_done. A stream the client
 * passed an fd for is not captured. The log files are opened here, so a
 * bad path fails the spawn. Returns -1 with a message in err.
 */
int
output_spawn_prepare(struct instance *i, char *err, size_t errlen)
{
	struct output *o;
	char msg[512];
	int k, p[2];

	if (i->cfg.output == NULL)
		return 0;
	/* cmd-instance.c reserved already; program instances are admins'. */
	if (output_reserve(i, msg, sizeof msg) != NULL) {
		snprintf(err, errlen, "cannot start '%s': %s", i->cfg.name, msg);
		return -1;
	}
	if ((o = output_get(i)) == NULL) {
		snprintf(err, errlen, "cannot start '%s': out of memory",
		    i->cfg.name);
		return -1;
	}
	for (k = 0; k < OUTPUT_NSTREAMS; k++) {
		struct output_stream *st = &o->s[k];

		/* The last run's pipe, held by its grandchildren: let it go. */
		if (st->fd != -1) {
			output_read(st, OUTPUT_DRAIN_MAX);
			output_stream_close(st);
		}
	}
	if (output_files_open(o, err, errlen) == -1)
		return -1;
	for (k = 0; k < OUTPUT_NSTREAMS; k++) {
		struct output_stream *st = &o->s[k];

		if (output_target_taken(&i->cfg, k + 1))
			continue;
		if (pipe2(p, O_CLOEXEC) == -1) {
			snprintf(err, errlen, "cannot start '%s': pipe: %s",
			    i->cfg.name, strerror(errno));
			return -1;
		}
		if (fd_set_flags(p[0], 1, 1) == -1) {
			snprintf(err, errlen, "cannot start '%s': %s", i->cfg.name,
			    strerror(errno));
			close(p[0]);
			close(p[1]);
			return -1;
		}
		if (config_push_fd(&i->cfg, p[1], k + 1) == -1) {	/* closes p[1] */
			snprintf(err, errlen, "cannot start '%s': %s", i->cfg.name,
			    strerror(errno));
			close(p[0]);
			return -1;
		}
		st->fd = p[0];
		st->pending = 1;
		st->mid_line = st->dropping = 0;
	}
	return 0;
}

/*
 * After the spawn (ok) the pending read ends are watched; after a failed
 * one they are closed. Safe to call when output_spawn_prepare never ran.
 */
void
output_spawn_done(struct instance *i, int ok)
{
	struct output *o = i->output;
	int k;

	if (o == NULL)
		return;
	for (k = 0; k < OUTPUT_NSTREAMS; k++) {
		struct output_stream *st = &o->s[k];

		if (!st->pending)
			continue;
		st->pending = 0;
		if (ok) {
			ev_io_set(&st->rw, st->fd, EV_READ);
			ev_io_start(ward_loop, &st->rw);
		} else
			output_stream_close(st);
	}
	if (!output_streams_open(o))
		output_files_close(o);
}

/*
 * The child died: take what its pipes hold now, never waiting for EOF (a
 * grandchild may hold them open). The watchers stay, so what grandchildren
 * write later is still captured.
 */
void
output_child_died(struct instance *i)
{
	int k;

	if (i->output == NULL)
		return;
	for (k = 0; k < OUTPUT_NSTREAMS; k++)
		output_read(&i->output->s[k], OUTPUT_DRAIN_MAX);
}

/* The instance is removed: pipes, files, ring and followers go with it. */
void
output_free(struct instance *i)
{
	struct output *o = i->output;
	int k;

	if (o == NULL)
		return;
	for (k = 0; k < OUTPUT_NSTREAMS; k++) {
		struct output_stream *st = &o->s[k];

		while (!LIST_EMPTY(&st->followers))
			output_follow_free(LIST_FIRST(&st->followers));
		output_stream_close(st);
		free(st->ring);
		free(st->jline);
	}
	output_files_close(o);
	budget_give(i->owner_uid, BUDGET_RING, o->ring_reserved);
	free(o);
	i->output = NULL;
}

/*
 * Does wardd hold a read end of i's captured output? Whoever writes to it
 * (the payload, or a grandchild after its death) dies of SIGPIPE once
 * wardd exits: ward.shutdown {kill_instances: false} refuses then.
 */
int
output_capturing(const struct instance *i)
{
	return i->output != NULL && output_streams_open(i->output);
}

/* OUTPUT_PACK_FIELDS pairs for the status map. */
void
output_pack(const struct instance *i, msgpack_packer *pk)
{
	codec_pack_kv_bool(pk, "capture_output", i->cfg.output != NULL);
	codec_pack_kv_uint(pk, "log_dropped", output_dropped(i, -1));
}
