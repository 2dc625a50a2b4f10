/*
 * output.c: an instance's stdout and stderr, captured. For an instance
 * created with capture_output (or a log file, or stdout_journal) each spawn
 * gets one pipe per stream whose write end becomes the child's fd 1 or 2;
 * wardd reads the other end, never blocking, and hands what it read to the
 * sinks: a ring of the last log_ring_bytes (instance.log), an optional log
 * file with size-based rotation (output-file.c), the journal, one entry
 * per line (output-journal.c), and the connections that follow the stream
 * (output-follow.c).
 *
 * Everything lives in one struct output (output.h), allocated at the first
 * spawn (or the first follow) of an instance that captures and freed with
 * the instance: instances that do not capture pay one pointer. A pipe
 * outlives its child: it is read until EOF, since a grandchild may still
 * write, and closed then, at the next spawn, or when the instance is
 * removed. This file owns the pipes, the reading (and drop mode's rate)
 * and the ring, and is where instance.c and the commands reach the
 * capturing; the sinks it feeds never call back into it.
 *
 * layer: engine (calls spec.c to give a spawn its pipe ends, budget.c
 * for the rings, the output-*.c sinks; never instance.c, which calls it)
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"
#include "output.h"

#define container_of(p, type, member) \
	((type *)((char *)(p) - offsetof(type, member)))

#define OUTPUT_CHUNK		65536		/* one read */
#define OUTPUT_TURN_BLOCK	65536		/* per stream per loop turn: block */
#define OUTPUT_TURN_DROP	(4 * 65536)	/* ... and drop: keep up, cheaply */
#define OUTPUT_TURN_ALONE	(1024 * 1024)	/* ... when no other watcher waits */
#define OUTPUT_QUIET		4096		/* a turn that read less: quiet */
#define OUTPUT_PIPE_SMALL	65536		/* a new pipe's size (Linux's) */
#define OUTPUT_PIPE_BIG		(1024 * 1024)	/* a loud stream's pipe */
#define OUTPUT_PIPE_BIG_MAX	32		/* big pipes at once, all streams */
#define OUTPUT_HOLD_MARK	(CONN_OUT_CAP / 2) /* a follower this far behind */
#define OUTPUT_HOLD_RESUME	(CONN_OUT_CAP / 4) /* ... holds until this far */
#define OUTPUT_HOLD_TICK	0.1		/* ... progress looked at each */
#define OUTPUT_HOLD_TICKS	10		/* ... none for so many: dropped */
#define OUTPUT_DRAIN_MAX	(1024 * 1024)	/* read at death, or a restart */
#define OUTPUT_RING_DIRECT	16384		/* smaller rings: read, then copied */

static void	output_read_cb(struct ev_loop *, ev_io *, int);
static void	output_hold_end(struct output_stream *);
static void	output_hold_tick_cb(struct ev_loop *, ev_timer *, int);
static void	output_hold_check_cb(struct ev_loop *, ev_prepare *, int);

/*
 * A block-mode stream not read while a follower is behind (output_hold):
 * made when it is held, freed when reading resumes, so the streams that
 * are not held (nearly all) pay one pointer.
 */
struct output_hold {
	struct output_stream	*st;
	ev_prepare		 check;		/* before each wait of the loop */
	ev_timer		 tick;		/* each OUTPUT_HOLD_TICK: progress? */
	size_t			 backlog;	/* the followers', at the last tick */
	unsigned		 ticks;		/* ticks without progress */
};

static unsigned	output_big_pipes;	/* streams whose pipe grew */

/* ---- the per-instance state */

/*
 * i's capture state, made at its first need (a spawn, a reservation, a
 * follow). NULL when i does not capture, or out of memory.
 */
struct output *
output_get(struct instance *i)
{
	const struct output_config *oc = i->spec.output;
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
		st->ring_fd = -1;
		ev_init(&st->rw, output_read_cb);
		LIST_INIT(&st->followers);
	}
	output_file_init(o);
	i->output = o;
	return o;
}

/* ---- the ring (output-ring.c keeps it) */

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

/* ---- following (output-follow.c's), by instance and stream */

/*
 * From now on c receives [2, "ward.log", [{id, name, stream, data}]] for
 * new output of stream k of i. Following twice is following once. -1 with
 * e set (output_follow_add).
 */
int
output_follow(struct conn *c, struct instance *i, int k, int hold,
    struct ward_err *e)
{
	struct output *o;

	if ((o = output_get(i)) == NULL)
		return ward_err_oom(e);
	return output_follow_add(c, &o->s[k], hold, e);
}

void
output_unfollow(struct conn *c, struct instance *i, int k)
{
	if (i->output != NULL)
		output_follow_remove(c, &i->output->s[k]);
}

/* ---- reading */

/* Kept output, in the ring already: to the file, the journal, the followers. */
static void
output_sinks(struct output_stream *st, const char *p, size_t n)
{
	struct output *o = st->out;

	if (st->file != NULL)
		output_file_write(o, st->file, p, n);
	if (o->inst->spec.output->journal)
		output_journal_lines(st, p, n);
	output_follow_notify(st, p, n);
}

/* Output that is kept: to the ring, then the other sinks. */
static void
output_keep(struct output_stream *st, const char *p, size_t n)
{
	output_ring_append(st, p, n);
	output_sinks(st, p, n);
}

/*
 * A chunk just read. In drop mode whole lines past log_rate_lines in the
 * current second are dropped (and counted when they start); the rest is
 * kept in runs.
 */
static void
output_chunk(struct output_stream *st, const char *p, size_t n)
{
	const struct output_config *oc = st->out->inst->spec.output;
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
	output_hold_end(st);
	fd_close_watched(st->fd);	/* it may be in the fd store too */
	st->fd = -1;
	output_big_pipes -= st->big;
	st->big = 0;
	st->pending = 0;
	output_journal_flush(st);
	st->mid_line = st->dropping = 0;
	st->ncarry = 0;		/* a sequence cut by EOF stays cut */
	if (!output_streams_open(st->out))
		output_file_close_all(st->out);
}

/*
 * Read what is readable, at most budget bytes; never waits. Block mode
 * reads straight into the ring once it has its full size, and the sinks
 * take the bytes from there: one copy, as cat makes. Drop mode reads into
 * a buffer, since the lines it drops must not reach the ring. may_hold: the
 * read stops when a follower falls behind (output_hold).
 */
static size_t
output_read(struct output_stream *st, size_t budget, int may_hold)
{
	static char chunk[OUTPUT_CHUNK];
	size_t done = 0, want;
	char *buf;
	ssize_t n;

	while (st->fd != -1 && done < budget) {
		want = budget - done < sizeof chunk ? budget - done : sizeof chunk;
		buf = st->out->inst->spec.output->drop ? NULL :
		    output_ring_room(st, &want, OUTPUT_RING_DIRECT);
		n = read(st->fd, buf != NULL ? buf : chunk, want);
		if (buf != NULL)
			output_ring_commit(st, n > 0 ? n : 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			output_stream_close(st);	/* EOF: every writer is gone */
			break;
		}
		done += n;
		if (buf != NULL)
			output_sinks(st, buf, n);
		else
			output_chunk(st, chunk, n);
		/* Less than asked: the pipe is empty; no read to hear EAGAIN. */
		if ((size_t)n < want)
			break;
		/* A follower fell behind: the rest waits (output_hold). */
		if (may_hold && !LIST_EMPTY(&st->followers) &&
		    output_follow_backlog(st) > OUTPUT_HOLD_MARK)
			break;
	}
	return done;
}

/*
 * A loud stream's pipe grows (to OUTPUT_PIPE_BIG, for at most
 * OUTPUT_PIPE_BIG_MAX streams at once: pipe pages are the kernel's memory),
 * so its writer runs on while wardd writes what it read: fewer wake-ups,
 * fewer turns. A quiet one gives its place back.
 */
static void
output_pipe_size(struct output_stream *st, int big)
{
	if (big == st->big || (big && output_big_pipes >= OUTPUT_PIPE_BIG_MAX))
		return;
	/* EPERM: past the user's pipe pages; EBUSY: it holds more than that. */
	if (fcntl(st->fd, F_SETPIPE_SZ, big ? OUTPUT_PIPE_BIG :
	    OUTPUT_PIPE_SMALL) == -1)
		return;
	st->big = big;
	if (big)
		output_big_pipes++;
	else
		output_big_pipes--;
}

/* After a re-exec: is st's pipe (restored) one that grew? */
void
output_pipe_adopt(struct output_stream *st)
{
	int size;

	if (st->fd != -1 && (size = fcntl(st->fd, F_GETPIPE_SZ)) != -1 &&
	    size > OUTPUT_PIPE_SMALL) {
		st->big = 1;
		output_big_pipes++;
	}
}

/*
 * Block mode: while a follower is more than OUTPUT_HOLD_MARK behind, the
 * stream is not read, so its payload waits on its full pipe for the
 * follower as it waits for wardd, instead of the follower being dropped
 * for a moment without the CPU. Reading resumes before the loop waits
 * again once it is down to OUTPUT_HOLD_RESUME; one that makes no progress
 * for OUTPUT_HOLD_TICKS ticks is dropped (told it overflowed) instead.
 * 1: held (the read watcher is stopped until output_hold_resume).
 */
static int
output_hold(struct output_stream *st)
{
	struct output_hold *h;
	size_t backlog;

	if (st->out->inst->spec.output->drop || LIST_EMPTY(&st->followers) ||
	    (backlog = output_follow_backlog(st)) <= OUTPUT_HOLD_MARK)
		return 0;
	if ((h = calloc(1, sizeof *h)) == NULL)
		return 0;	/* the follower may overflow, as without holds */
	h->st = st;
	h->backlog = backlog;
	ev_prepare_init(&h->check, output_hold_check_cb);
	ev_prepare_start(ward_loop, &h->check);
	ev_timer_init(&h->tick, output_hold_tick_cb, OUTPUT_HOLD_TICK,
	    OUTPUT_HOLD_TICK);
	ev_timer_start(ward_loop, &h->tick);
	ev_io_stop(ward_loop, &st->rw);
	st->hold = h;
	return 1;
}

/* No longer held (also when the stream closes). */
static void
output_hold_end(struct output_stream *st)
{
	struct output_hold *h = st->hold;

	if (h == NULL)
		return;
	ev_prepare_stop(ward_loop, &h->check);
	ev_timer_stop(ward_loop, &h->tick);
	free(h);
	st->hold = NULL;
}

static void
output_hold_resume(struct output_stream *st)
{
	output_hold_end(st);
	ev_io_start(ward_loop, &st->rw);
}

/* Before the loop waits again, while held: have the followers caught up? */
static void
output_hold_check_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct output_hold *h = container_of(w, struct output_hold, check);

	if (output_follow_backlog(h->st) <= OUTPUT_HOLD_RESUME)
		output_hold_resume(h->st);
}

/* Each tick while held: did the followers make progress? */
static void
output_hold_tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct output_hold *h = container_of(w, struct output_hold, tick);
	struct output_stream *st = h->st;
	size_t backlog = output_follow_backlog(st);

	if (backlog < h->backlog)
		h->ticks = 0;
	else if (++h->ticks >= OUTPUT_HOLD_TICKS)
		output_follow_shed(st, OUTPUT_HOLD_RESUME);
	h->backlog = backlog;
	if (output_follow_backlog(st) <= OUTPUT_HOLD_RESUME)
		output_hold_resume(st);
}

/*
 * Readable. Block mode takes 64 KiB per stream per loop turn while other
 * watchers wait, so a payload that writes faster waits on its full pipe
 * while wardd serves everyone else, and up to OUTPUT_TURN_ALONE when none
 * does; drop mode takes more, to keep up, and drops lines instead.
 */
static void
output_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct output_stream *st = container_of(w, struct output_stream, rw);
	size_t done;

	if (output_hold(st))
		return;
	if (st->out->inst->spec.output->drop)
		done = output_read(st, OUTPUT_TURN_DROP, 0);
	else
		done = output_read(st, ev_pending_count(loop) > 0 ?
		    OUTPUT_TURN_BLOCK : OUTPUT_TURN_ALONE, 1);
	if (st->fd == -1 || output_hold(st))
		return;
	if (done >= OUTPUT_PIPE_SMALL)
		output_pipe_size(st, 1);
	else if (done < OUTPUT_QUIET)
		output_pipe_size(st, 0);
}

/* ---- the instance's side: spawn, death, removal */

static int
output_target_taken(const struct instance_spec *cfg, int target)
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
 * reserves nothing. 0 (also when done already), or -1 with e set.
 */
int
output_reserve(struct instance *i, struct ward_err *e)
{
	struct output *o;
	uint64_t need = 0;
	int k;

	if (i->spec.output == NULL || (i->output != NULL && i->output->reserved))
		return 0;
	for (k = 0; k < OUTPUT_NSTREAMS; k++) {
		if (!output_target_taken(&i->spec, k + 1))
			need += i->spec.output->ring_bytes;
	}
	if (budget_take(i->owner_uid, BUDGET_RING, need, e) == -1)
		return -1;
	if ((o = output_get(i)) == NULL) {
		budget_give(i->owner_uid, BUDGET_RING, need);
		return ward_err_oom(e);
	}
	o->reserved = 1;
	o->ring_reserved = need;
	return 0;
}

/*
 * redirect_stderr: the child's fd 2 is a copy of the write end just made
 * for its fd 1 (the last fd pushed), so the stderr stream has no pipe.
 */
static int
output_spawn_share(struct instance *i, struct ward_err *e)
{
	struct instance_spec *cfg = &i->spec;
	int fd;

	if (cfg->nfds == 0 || cfg->fds[cfg->nfds - 1].target != 1)
		return ward_err_set(e, WARD_E_SPAWN_FAILED, "cannot start "
		    "'%s': no stdout pipe to share", cfg->name);
	if ((fd = fcntl(cfg->fds[cfg->nfds - 1].fd, F_DUPFD_CLOEXEC, 3)) == -1 ||
	    spec_push_fd(cfg, fd, 2) == -1)	/* closes fd */
		return ward_err_errno(e, WARD_E_SPAWN_FAILED, "cannot start "
		    "'%s'", cfg->name);
	return 0;
}

/*
 * Before a spawn: a pipe per captured stream, the write end added to
 * cfg.fds as the child's fd 1 or 2 (closed with cfg.fds after the spawn),
 * the read end kept pending until output_spawn_done. A stream the client
 * passed an fd for is not captured. The log files are opened here, so a
 * bad path fails the spawn. 0, or -1 with e set (spawn_failed).
 */
int
output_spawn_prepare(struct instance *i, struct ward_err *e)
{
	struct ward_err re = WARD_ERR_INIT;
	struct output *o;
	int k, p[2];

	if (i->spec.output == NULL)
		return 0;
	/* cmd-instance.c reserved already; program instances are admins'. */
	if (output_reserve(i, &re) == -1)
		return ward_err_set(e, WARD_E_SPAWN_FAILED, "cannot start "
		    "'%s': %s", i->spec.name, re.msg);
	if ((o = output_get(i)) == NULL)
		return ward_err_set(e, WARD_E_SPAWN_FAILED, "cannot start "
		    "'%s': out of memory", i->spec.name);
	for (k = 0; k < OUTPUT_NSTREAMS; k++) {
		struct output_stream *st = &o->s[k];

		/* The last run's pipe, held by its grandchildren: let it go. */
		if (st->fd != -1) {
			output_read(st, OUTPUT_DRAIN_MAX, 0);
			output_stream_close(st);
		}
	}
	if (output_file_open_all(o, e) == -1)
		return -1;
	for (k = 0; k < OUTPUT_NSTREAMS; k++) {
		struct output_stream *st = &o->s[k];

		if (output_target_taken(&i->spec, k + 1))
			continue;
		/* redirect_stderr: fd 2 is a second end of stdout's pipe, so
		 * the two interleave in one stream as the payload wrote them. */
		if (k == OUTPUT_STDERR && i->spec.output->redirect_stderr &&
		    o->s[OUTPUT_STDOUT].pending) {
			if (output_spawn_share(i, e) == -1)
				return -1;
			continue;
		}
		if (pipe2(p, O_CLOEXEC) == -1)
			return ward_err_errno(e, WARD_E_SPAWN_FAILED, "cannot "
			    "start '%s': pipe", i->spec.name);
		if (fd_set_flags(p[0], 1, 1) == -1) {
			ward_err_errno(e, WARD_E_SPAWN_FAILED, "cannot start '%s'",
			    i->spec.name);
			close(p[0]);
			close(p[1]);
			return -1;
		}
		if (spec_push_fd(&i->spec, p[1], k + 1) == -1) {	/* closes p[1] */
			ward_err_errno(e, WARD_E_SPAWN_FAILED, "cannot start '%s'",
			    i->spec.name);
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
		output_file_close_all(o);
}

/*
 * The child died: take what its pipes hold now, never waiting for EOF (a
 * grandchild may hold them open). The watchers stay, so what grandchildren
 * write later is still captured, and so is what a block-mode stream leaves
 * in its pipe for a follower behind (output_hold).
 */
void
output_child_died(struct instance *i)
{
	int k, block;

	if (i->output == NULL)
		return;
	block = !i->spec.output->drop;
	for (k = 0; k < OUTPUT_NSTREAMS; k++) {
		struct output_stream *st = &i->output->s[k];

		if (st->hold != NULL)
			continue;
		output_read(st, OUTPUT_DRAIN_MAX, block);
		if (st->fd != -1 && block)
			(void)output_hold(st);
	}
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

		output_follow_free_all(st);
		output_stream_close(st);
		output_ring_free(st);
		free(st->jline);
	}
	output_file_close_all(o);
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
	codec_pack_kv_bool(pk, "capture_output", i->spec.output != NULL);
	codec_pack_kv_uint(pk, "log_dropped", output_dropped(i, -1));
}

/* i's capture pipes and log files (their directories too). */
void
output_fds(const struct instance *i, fd_visit_fn fn, void *arg)
{
	const struct output *o = i->output;
	int k;

	if (o == NULL)
		return;
	for (k = 0; k < OUTPUT_NSTREAMS; k++) {
		if (o->s[k].fd != -1)
			fn(o->s[k].fd, "output: pipe", arg);
		if (o->s[k].ring_fd != -1)
			fn(o->s[k].ring_fd, "output: ring (memfd)", arg);
		if (o->files[k].fd != -1)
			fn(o->files[k].fd, "output: log file", arg);
		if (o->files[k].dirfd != -1)
			fn(o->files[k].dirfd, "output: log file's dir", arg);
	}
}
