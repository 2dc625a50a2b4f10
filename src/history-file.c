/*
 * history-file.c: STATE_DIR/history, history.c's exit records on disk, so
 * instance.history answers the same after wardd stops, is killed or
 * re-execs.
 *
 * The file is a msgpack map {"ward_history": 1}, then one exit record map
 * (exit_record_pack's whole form) per history_add, in order. Read back at
 * start and fed to history.c's in-memory path in that order, the records
 * go through the same per-owner and total eviction as they did live, so
 * memory ends as it was. Each record is written with one write() when it
 * is added: a wardd killed just after a death loses nothing (the page
 * cache holds it).
 *
 * Durability: nothing on the loop waits for the disk (a death must not
 * stall wardd behind a slow device). While something is unwritten, at
 * most every HISTORY_FILE_SYNC_S seconds, sync_file_range(WRITE) starts
 * its writeback without waiting for it; the directory (a rewrite's
 * rename) is left to the file system's own commit. Only at exit does
 * wardd wait: fdatasync of the file and fsync of the directory. So a
 * power loss (not a crash of wardd) costs the deaths of the last seconds
 * (5 s, plus the writeback itself and the file system's commit
 * interval); one just after a rewrite may leave the file cut or empty,
 * which the read at start takes as hostile input: a log line, the good
 * records kept.
 *
 * The file only grows until it holds HISTORY_TOTAL_MAX records more than
 * memory does (or passes HISTORY_FILE_BYTES_MAX and twice its size at the
 * last rewrite); then history.c rewrites it from memory: history.tmp,
 * its writeback started, renamed over history. Not two files rotated: per-owner
 * fairness keeps a quiet uid's old records in memory past any number of
 * other deaths, so no fixed tail of the log holds all of memory; a
 * rewrite of memory does, and replays to the same state (it never
 * exceeds a limit, so nothing is evicted on the way).
 *
 * Hostile input: a partial last record (a crash mid-write) or garbage
 * stops the read with a log line and the file is cut back to its last
 * good record, so later appends stay readable; a file without the header
 * is renamed aside (history.rejected), never destroyed or followed; a
 * symlink, a non-regular file or another uid's is renamed aside the same
 * way.
 *
 * layer: engine (below history.c, its only caller; calls exit, codec,
 * statedir, util and log)
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"

#define HISTORY_FILE		"history"
#define HISTORY_FILE_TMP	"history.tmp"
#define HISTORY_FILE_ASIDE	"history.rejected"
#define HISTORY_FILE_MAGIC	"ward_history"
#define HISTORY_FILE_VERSION	1
#define HISTORY_FILE_SYNC_S	5.0
#define HISTORY_FILE_BYTES_MAX	((off_t)64 << 20)
#define HISTORY_FILE_CHUNK	65536

static int history_file_fd = -1;	/* O_APPEND; -1: memory only */
static size_t history_file_records;	/* records in the file */
static off_t history_file_bytes;	/* its length: whole records only */
static off_t history_file_base;		/* its length after the last rewrite */
static size_t history_file_retry_at;	/* a failed rewrite: not before */
static size_t history_file_garbage_max = HISTORY_TOTAL_MAX;
static int history_file_dirty;		/* written since the last writeback */
static int history_file_unsynced;	/* written since the last fdatasync */
static int history_file_dir_dirty;	/* renamed since the last dir fsync */
static int history_file_failing;	/* the last append failed (logged) */
static ev_timer history_file_sync_t;

static int history_file_oom;

/* msgpack's writer into a struct buf, noting a failure (no memory). */
static int
history_file_buf_write(void *data, const char *p, size_t n)
{
	if (buf_append(data, p, n) == -1) {
		history_file_oom = 1;
		return -1;
	}
	return 0;
}

static void
history_file_pack_header(struct buf *b)
{
	msgpack_packer pk;

	msgpack_packer_init(&pk, b, history_file_buf_write);
	msgpack_pack_map(&pk, 1);
	codec_pack_kv_uint(&pk, HISTORY_FILE_MAGIC, HISTORY_FILE_VERSION);
}

static void
history_file_pack(struct buf *b, const struct exit_record *r)
{
	msgpack_packer pk;

	msgpack_packer_init(&pk, b, history_file_buf_write);
	exit_record_pack(r, &pk, 1);
}

/* Whether o is the header this version writes. */
static int
history_file_is_header(const msgpack_object *o)
{
	return o->type == MSGPACK_OBJECT_MAP && o->via.map.size == 1 &&
	    codec_streq(&o->via.map.ptr[0].key, HISTORY_FILE_MAGIC) &&
	    o->via.map.ptr[0].val.type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	    o->via.map.ptr[0].val.via.u64 == HISTORY_FILE_VERSION;
}

/*
 * Start the writeback of what is unwritten; with wait (at exit only), wait
 * for it and for the directory too.
 */
static void
history_file_sync(int wait)
{
	int dirfd = statedir_dirfd();

	if ((wait ? history_file_unsynced : history_file_dirty) &&
	    history_file_fd != -1 && (wait ?
	    fdatasync(history_file_fd) : sync_file_range(history_file_fd, 0, 0,
	    SYNC_FILE_RANGE_WRITE)) == -1)
		log_warn("%s %s/" HISTORY_FILE, wait ? "fdatasync" :
		    "sync_file_range", opts.state_dir);
	if (wait && history_file_dir_dirty && dirfd != -1 && fsync(dirfd) == -1)
		log_warn("fsync %s", opts.state_dir);
	history_file_dirty = 0;
	if (wait)
		history_file_unsynced = history_file_dir_dirty = 0;
}

static void
history_file_sync_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	history_file_sync(0);
}

/* Something is unwritten: its writeback starts within HISTORY_FILE_SYNC_S. */
static void
history_file_sync_soon(void)
{
	if (!ev_is_active(&history_file_sync_t))
		ev_timer_start(ward_loop, &history_file_sync_t);
}

/*
 * Open name in STATE_DIR without following it; it must be a regular file
 * of wardd's euid with one link. -1 with errno (ELOOP: a symlink; EPERM:
 * not wardd's regular file).
 */
static int
history_file_open(const char *name, int flags)
{
	struct stat st;
	int fd;

	fd = openat(statedir_dirfd(), name, flags | O_NOFOLLOW | O_CLOEXEC |
	    O_NONBLOCK, 0600);
	if (fd == -1)
		return -1;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_uid != geteuid() || st.st_nlink != 1) {
		close(fd);
		errno = EPERM;
		return -1;
	}
	return fd;
}

/* Move STATE_DIR/history out of the way (why: the log line's reason). */
static void
history_file_set_aside(const char *why)
{
	int dirfd = statedir_dirfd();

	if (renameat(dirfd, HISTORY_FILE, dirfd, HISTORY_FILE_ASIDE) == -1)
		log_warn("%s/" HISTORY_FILE " %s, and cannot be renamed to "
		    HISTORY_FILE_ASIDE, opts.state_dir, why);
	else
		log_warnx("%s/" HISTORY_FILE " %s: renamed to " HISTORY_FILE_ASIDE
		    ", history starts empty", opts.state_dir, why);
}

/* Write all of b to fd (a file not yet anyone's: partial writes go on). */
static int
history_file_write_all(int fd, struct buf *b)
{
	ssize_t n;

	while (buf_used(b) > 0) {
		n = write(fd, b->data + b->off, buf_used(b));
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = ENOSPC;
			return -1;
		}
		buf_consume(b, n);
	}
	return 0;
}

/*
 * Read fd's records from its start into keep, in order. Returns the
 * length of the good part (the header and every whole record); -1 when it
 * cannot be read, -2 when it does not start with the header.
 */
static off_t
history_file_read(int fd, void (*keep)(struct exit_record *))
{
	struct ward_err err = WARD_ERR_INIT;
	struct exit_record *r;
	struct buf b = { NULL, 0, 0, 0 };
	msgpack_unpacked u;
	char chunk[HISTORY_FILE_CHUNK];
	off_t good = 0, at = 0;
	size_t len, off, skipped = 0;
	ssize_t n;
	int eof = 0, header = 0;

	msgpack_unpacked_init(&u);
	for (;;) {
		/* Nothing buffered (b.data may be NULL): read first. */
		switch (buf_used(&b) == 0 ? SCAN_MORE :
		    codec_scan(b.data + b.off, buf_used(&b), &len, &err)) {
		case SCAN_COMPLETE:
			off = 0;
			if (msgpack_unpack_next(&u, b.data + b.off, len, &off) !=
			    MSGPACK_UNPACK_SUCCESS)
				goto corrupt;
			if (!header) {
				if (!history_file_is_header(&u.data))
					goto bad;
				header = 1;
			} else if ((r = exit_record_unpack(&u.data)) == NULL)
				skipped++;	/* a map, not a record: kept */
			else {
				keep(r);
				history_file_records++;
			}
			buf_consume(&b, len);
			good += len;
			continue;
		case SCAN_MORE:
			if (eof) {
				if (buf_used(&b) == 0)
					goto done;
				snprintf(err.msg, sizeof err.msg,
				    "a partial record");
				goto corrupt;
			}
			break;
		case SCAN_ERROR:
			goto corrupt;
		}
		n = pread(fd, chunk, sizeof chunk, at);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			log_warn("cannot read %s/" HISTORY_FILE ": instance."
			    "history will not survive a restart", opts.state_dir);
			good = -1;
			goto done;
		}
		if (n == 0)
			eof = 1;
		else if (buf_append(&b, chunk, n) == -1) {
			log_warnx("out of memory reading %s/" HISTORY_FILE,
			    opts.state_dir);
			good = -1;
			goto done;
		}
		at += n;
	}
corrupt:
	if (!header)
		goto bad;
	log_warnx("%s/" HISTORY_FILE " is corrupt at byte %lld (%s): the %zu "
	    "records before are kept, the rest is cut off", opts.state_dir,
	    (long long)good, err.msg[0] != '\0' ? err.msg : "not msgpack",
	    history_file_records);
	if (ftruncate(fd, good) == -1) {
		log_warn("cannot truncate %s/" HISTORY_FILE, opts.state_dir);
		good = -1;
	}
	goto done;
bad:
	good = -2;
done:
	if (good >= 0 && !header)
		good = -2;	/* empty, or cut inside the header */
	if (skipped > 0)
		log_warnx("%s/" HISTORY_FILE ": %zu entries are not exit "
		    "records and were skipped", opts.state_dir, skipped);
	msgpack_unpacked_destroy(&u);
	buf_free(&b);
	return good;
}

/* A new, empty STATE_DIR/history with its header; the fd or -1. */
static int
history_file_create(void)
{
	struct buf b = { NULL, 0, 0, 0 };
	int fd;

	if ((fd = history_file_open(HISTORY_FILE, O_RDWR | O_APPEND | O_CREAT |
	    O_EXCL)) == -1) {
		log_warn("cannot create %s/" HISTORY_FILE ": instance.history "
		    "will not survive a restart", opts.state_dir);
		return -1;
	}
	history_file_oom = 0;
	history_file_pack_header(&b);
	if (history_file_oom || history_file_write_all(fd, &b) == -1) {
		log_warn("cannot write %s/" HISTORY_FILE, opts.state_dir);
		buf_free(&b);
		close(fd);
		return -1;
	}
	history_file_bytes = history_file_base = lseek(fd, 0, SEEK_END);
	buf_free(&b);
	/* Its header written back soon; its name in STATE_DIR synced at exit. */
	history_file_dirty = history_file_unsynced = history_file_dir_dirty = 1;
	history_file_sync_soon();
	return fd;
}

/*
 * Start-up, before the loop runs: open STATE_DIR/history (made if
 * missing) and hand each record it holds to keep, oldest first; keep
 * takes the record's one reference. Without a usable file, history is
 * kept in memory only (logged).
 */
void
history_file_load(void (*keep)(struct exit_record *))
{
	const char *env;
	off_t good;
	int fd;

	history_file_records = 0;
	history_file_retry_at = 0;
	ev_timer_init(&history_file_sync_t, history_file_sync_cb,
	    HISTORY_FILE_SYNC_S, 0);
	/* Tests make rewrites happen after a few deaths, not thousands. */
	if ((env = getenv("WARD_TEST_HISTORY_GARBAGE")) != NULL &&
	    atoi(env) > 0)
		history_file_garbage_max = atoi(env);
	if (statedir_dirfd() == -1)
		return;
	fd = history_file_open(HISTORY_FILE, O_RDWR | O_APPEND);
	if (fd == -1 && errno == ENOENT) {
		history_file_fd = history_file_create();
		return;
	}
	if (fd == -1 && errno != ELOOP && errno != EPERM && errno != EISDIR &&
	    errno != ENXIO) {
		log_warn("cannot open %s/" HISTORY_FILE ": instance.history "
		    "will not survive a restart", opts.state_dir);
		return;
	}
	if (fd == -1) {
		/* Something else in its place: never followed nor opened. */
		history_file_set_aside(errno == ELOOP ? "is a symlink" :
		    "is not a regular file of wardd's uid with one link");
		history_file_fd = history_file_create();
		return;
	}
	if ((good = history_file_read(fd, keep)) < 0) {
		/* A read error leaves the file be: memory only. */
		if (good == -2) {
			if (lseek(fd, 0, SEEK_END) == 0)
				unlinkat(statedir_dirfd(), HISTORY_FILE, 0);
			else
				history_file_set_aside("does not start with "
				    "the ward_history header");
		}
		close(fd);
		if (good == -2)
			history_file_fd = history_file_create();
		return;
	}
	history_file_fd = fd;
	history_file_bytes = history_file_base = good;
	log_info("%zu exit records read back from %s/" HISTORY_FILE,
	    history_file_records, opts.state_dir);
}

/* Append r to the file: one write(), so a crash leaves it whole or cut. */
void
history_file_append(const struct exit_record *r)
{
	struct buf b = { NULL, 0, 0, 0 };
	ssize_t n;

	if (history_file_fd == -1)
		return;
	history_file_oom = 0;
	history_file_pack(&b, r);
	if (history_file_oom) {
		log_warnx("out of memory: the exit record of instance %" PRIu64
		    " is not written to %s/" HISTORY_FILE, r->id, opts.state_dir);
		buf_free(&b);
		return;
	}
	do
		n = write(history_file_fd, b.data + b.off, buf_used(&b));
	while (n == -1 && errno == EINTR);
	if (n != (ssize_t)buf_used(&b)) {
		if (n >= 0)
			errno = ENOSPC;
		if (!history_file_failing)
			log_warn("cannot write the exit record of instance %"
			    PRIu64 " to %s/" HISTORY_FILE " (logged once until "
			    "a write works again)", r->id, opts.state_dir);
		history_file_failing = 1;
		/* A partial record would hide every later one. */
		if (n > 0 && ftruncate(history_file_fd, history_file_bytes) == -1)
			log_warn("cannot cut a partial record off %s/"
			    HISTORY_FILE, opts.state_dir);
	} else {
		history_file_failing = 0;
		history_file_records++;
		history_file_bytes += n;
		history_file_dirty = history_file_unsynced = 1;
		history_file_sync_soon();
	}
	buf_free(&b);
}

/* Whether the file should be rewritten from memory, which holds live. */
int
history_file_due(size_t live)
{
	size_t garbage;

	if (history_file_fd == -1 || history_file_records < history_file_retry_at)
		return 0;
	garbage = history_file_records > live ? history_file_records - live : 0;
	return garbage >= history_file_garbage_max ||
	    (history_file_bytes > HISTORY_FILE_BYTES_MAX &&
	    history_file_bytes > 2 * history_file_base);
}

/*
 * The rewrite (history.c drives it: begin, each record in memory oldest
 * first, end): made in history.tmp, synced, renamed over history. Bounded
 * by what memory holds, once per HISTORY_TOTAL_MAX deaths. On any failure
 * the old file stays in use and grows on.
 */
static int history_file_tmp = -1;
static struct buf history_file_tmp_buf;
static size_t history_file_tmp_records;
static int history_file_tmp_failed;

static void
history_file_tmp_flush(void)
{
	if (!history_file_tmp_failed &&
	    history_file_write_all(history_file_tmp, &history_file_tmp_buf) == -1)
		history_file_tmp_failed = errno;
	buf_consume(&history_file_tmp_buf, buf_used(&history_file_tmp_buf));
}

int
history_file_rewrite_begin(void)
{
	if (history_file_fd == -1)
		return -1;
	/* A leftover (a crash mid-rewrite, or planted) is removed, never
	 * opened: O_TRUNC would cut whatever it links to. */
	if ((unlinkat(statedir_dirfd(), HISTORY_FILE_TMP, 0) == -1 &&
	    errno != ENOENT) || (history_file_tmp = history_file_open(
	    HISTORY_FILE_TMP, O_WRONLY | O_CREAT | O_EXCL)) == -1) {
		log_warn("cannot create %s/" HISTORY_FILE_TMP, opts.state_dir);
		history_file_retry_at = history_file_records +
		    history_file_garbage_max;
		return -1;
	}
	history_file_oom = 0;
	history_file_tmp_records = 0;
	history_file_tmp_failed = 0;
	history_file_pack_header(&history_file_tmp_buf);
	return 0;
}

void
history_file_rewrite_add(const struct exit_record *r)
{
	history_file_pack(&history_file_tmp_buf, r);
	history_file_tmp_records++;
	if (buf_used(&history_file_tmp_buf) >= HISTORY_FILE_CHUNK)
		history_file_tmp_flush();
}

void
history_file_rewrite_end(void)
{
	int dirfd = statedir_dirfd();
	off_t len = 0;

	history_file_tmp_flush();
	buf_free(&history_file_tmp_buf);
	if (history_file_oom && !history_file_tmp_failed)
		history_file_tmp_failed = ENOMEM;
	/* Its writeback started, not waited for (the header comment). */
	if (!history_file_tmp_failed && (sync_file_range(history_file_tmp, 0, 0,
	    SYNC_FILE_RANGE_WRITE) == -1 ||
	    (len = lseek(history_file_tmp, 0, SEEK_END)) == -1 ||
	    fcntl(history_file_tmp, F_SETFL, O_APPEND) == -1 ||
	    renameat(dirfd, HISTORY_FILE_TMP, dirfd, HISTORY_FILE) == -1))
		history_file_tmp_failed = errno;
	if (history_file_tmp_failed) {
		errno = history_file_tmp_failed;
		log_warn("cannot rewrite %s/" HISTORY_FILE " (it grows on)",
		    opts.state_dir);
		close(history_file_tmp);
		unlinkat(dirfd, HISTORY_FILE_TMP, 0);
		history_file_tmp = -1;
		history_file_retry_at = history_file_records +
		    history_file_garbage_max;
		return;
	}
	close(history_file_fd);
	history_file_fd = history_file_tmp;
	history_file_tmp = -1;
	history_file_records = history_file_tmp_records;
	history_file_retry_at = 0;
	history_file_bytes = history_file_base = len;
	history_file_dirty = 0;		/* its writeback started above */
	history_file_unsynced = 1;
	history_file_dir_dirty = 1;	/* the rename: synced at exit */
	history_file_sync_soon();
	log_debug("%s/" HISTORY_FILE " rewritten: %zu records, %lld bytes",
	    opts.state_dir, history_file_records, (long long)len);
}

/* At exit: synced and closed. */
void
history_file_close(void)
{
	if (ev_is_active(&history_file_sync_t))
		ev_timer_stop(ward_loop, &history_file_sync_t);
	if (history_file_fd == -1)
		return;
	history_file_sync(1);
	close(history_file_fd);
	history_file_fd = -1;
	history_file_records = 0;
	history_file_bytes = history_file_base = 0;
}

/* The fd history-file.c holds (fd enumeration). */
void
history_file_fds(fd_visit_fn fn, void *arg)
{
	if (history_file_fd != -1)
		fn(history_file_fd, "history: " HISTORY_FILE, arg);
}
