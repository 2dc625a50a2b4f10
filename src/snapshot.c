/*
 * snapshot.c: STATE_DIR/state, wardd's state kept on disk so that a wardd
 * killed outright (SIGKILL, a crash, the OOM killer) can be followed by
 * one that recovers: the same instances with the same ids, names and
 * pids, the declared programs, and an exit record for each instance that
 * died meanwhile (instance-adopt.c). It is reexec_pack's state without
 * the listener, the conns and the fds: no fd survives such a death, so
 * what the fds carried (captured output, the failure and notify pipes,
 * NOTIFY_SOCKET, log files) is lost; a re-exec keeps them all.
 *
 * Written coalesced: any news of an instance (but metrics) or a reload
 * marks it dirty, and a timer writes it at most every SNAPSHOT_EVERY s,
 * as state.tmp renamed over state through STATE_DIR's fd (a reader sees
 * the old state or the new one, never half). No fsync: a crash of wardd
 * leaves the page cache to the kernel; a crash of the machine leaves no
 * process to adopt.
 *
 * A write is cut into slices of SNAPSHOT_SLICE instances, one per loop
 * turn (issue 12: at 10,000 instances a whole write held the loop for
 * ~50 ms at each change). The instances' array is sized when the write
 * begins: one removed meanwhile is skipped (the cursor steps past it) and
 * its room filled with nil at the end; one created meanwhile, and any
 * change to one already written, mark the state dirty again, so the next
 * write has them. Each instance's record is whole as of its slice. Under
 * systemd's fd store the state is written whole, as its fd numbers must
 * be those open at the moment it is sent.
 *
 * At a clean exit: when no instance runs any more (a shutdown that
 * stopped them), state is removed: nothing is left to recover, and the
 * next wardd starts from its config as before. When some still run
 * (ward.shutdown without kill), it is written a last time, so the next
 * wardd adopts them.
 *
 * Read back at start (wardd.c, without --state-fd) as any input: not a
 * regular file of wardd's own, too big, or unreadable: logged, renamed
 * to state.bad, and wardd starts afresh.
 *
 * layer: commands (orchestrates every layer's restore, as reexec.c;
 * called by wardd.c and loop.c)
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

#define SNAPSHOT_EVERY	0.25			/* s between writes, at least */
#define SNAPSHOT_SLICE	64			/* instances per loop turn */
#define SNAPSHOT_MAX	(256ULL * 1024 * 1024)	/* read back, at most */

static ev_timer	 snapshot_t;
static int	 snapshot_on;		/* after start-up's recovery */
int		 snapshot_pending;	/* changed since the last write (or
					   a write under way has not ended) */
static uint64_t	 snapshot_gen;		/* changes so far */
static int	 snapshot_failing;	/* the last write failed: said once */
static ev_tstamp snapshot_last;
uint64_t	 snapshot_writes;	/* ward.stats: states written ... */
double		 snapshot_ms;		/* ... and the loop time they took */
uint64_t	 snapshot_slices;	/* ... in how many loop turns */

/* A write under way, a slice per loop turn (see the top). */
static struct {
	int		 fd;		/* state.tmp; -1: none under way */
	struct instance	*next;		/* next to write; NULL: all written */
	size_t		 owed;		/* array elements still to write */
	uint64_t	 gen;		/* snapshot_gen when it began */
	msgpack_sbuffer	 sb;		/* this slice's bytes */
	ev_timer	 t;		/* a 0 s timer: the next loop turn */
} snapshot_job = { .fd = -1 };

static void	snapshot_write_cb(struct ev_loop *, ev_timer *, int);
static void	snapshot_slice_cb(struct ev_loop *, ev_timer *, int);

/* Write all of buf to fd. 0, or -1. */
static int
snapshot_write_all(int fd, const char *buf, size_t len)
{
	size_t off;
	ssize_t w;

	for (off = 0; off < len; off += w) {
		if ((w = write(fd, buf + off, len - off)) == -1 &&
		    errno == EINTR)
			w = 0;
		else if (w <= 0)
			return -1;
	}
	return 0;
}

/* state.tmp made new, never through whatever may lie there. fd or -1. */
static int
snapshot_open_tmp(void)
{
	int dfd = statedir_dirfd();

	if (unlinkat(dfd, "state.tmp", 0) == -1 && errno != ENOENT)
		return -1;
	return openat(dfd, "state.tmp", O_WRONLY | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, 0600);
}

/* A write is over (rc: whether it all went well): state.tmp renamed over
 * state (or removed), the failure said once, the counters kept. */
static int
snapshot_done(int fd, int rc, ev_tstamp t0)
{
	int dfd = statedir_dirfd();

	if (fd != -1 && close(fd) != 0)
		rc = -1;
	if (rc == 0 && renameat(dfd, "state.tmp", dfd, "state") != 0)
		rc = -1;
	if (rc == -1) {
		if (!snapshot_failing)
			log_warn("cannot write %s/state (a crash of wardd "
			    "would lose its instances)", opts.state_dir);
		(void)unlinkat(dfd, "state.tmp", 0);
	} else if (snapshot_failing)
		log_notice("%s/state written again", opts.state_dir);
	snapshot_failing = rc == -1;
	snapshot_writes++;
	snapshot_ms += (ev_time() - t0) * 1000;
	return rc;
}

/* Write the state whole, now: at exit, and under the fd store. 0 or -1. */
static int
snapshot_write(void)
{
	msgpack_sbuffer sb;
	ev_tstamp t0 = ev_time();
	int fd, rc = -1;

	msgpack_sbuffer_init(&sb);
	state_fds_reset();
	reexec_pack(&sb, 0);
	/* Under systemd, the fds it names go to the fd store with it. */
	if (fdstore_enabled()) {
		const int *fds;
		size_t nf;

		fds = state_saved_fds(&nf);
		fdstore_save(sb.data, sb.size, fds, state_saved_tags(), nf);
	}
	state_fds_reset();	/* in STATE_DIR/state the numbers mean nothing */
	if ((fd = snapshot_open_tmp()) != -1)
		rc = snapshot_write_all(fd, sb.data, sb.size);
	snapshot_slices++;
	msgpack_sbuffer_destroy(&sb);
	return snapshot_done(fd, rc, t0);
}

/* Drop a sliced write under way (a whole one replaces it). */
static void
snapshot_job_abandon(void)
{
	if (snapshot_job.fd == -1)
		return;
	ev_timer_stop(ward_loop, &snapshot_job.t);
	close(snapshot_job.fd);
	snapshot_job.fd = -1;
	(void)unlinkat(statedir_dirfd(), "state.tmp", 0);
	msgpack_sbuffer_destroy(&snapshot_job.sb);
}

/* A sliced write ended, well or not: what changed meanwhile is next. */
static void
snapshot_job_ended(void)
{
	snapshot_pending = 0;
	if (snapshot_gen != snapshot_job.gen)
		snapshot_dirty();
}

/* Write the slice packed so far; on failure, the write is over. */
static int
snapshot_job_flush(ev_tstamp t0)
{
	int rc = snapshot_write_all(snapshot_job.fd, snapshot_job.sb.data,
	    snapshot_job.sb.size);

	msgpack_sbuffer_clear(&snapshot_job.sb);
	if (rc == -1) {
		ev_timer_stop(ward_loop, &snapshot_job.t);
		msgpack_sbuffer_destroy(&snapshot_job.sb);
		(void)snapshot_done(snapshot_job.fd, -1, t0);
		snapshot_job.fd = -1;
		snapshot_job_ended();
	}
	return rc;
}

/* Begin a sliced write: the head now, the instances from the next turn. */
static void
snapshot_job_begin(void)
{
	msgpack_packer pk;
	struct instance *i;
	ev_tstamp t0 = ev_time();
	size_t n = 0;

	snapshot_job.gen = snapshot_gen;
	if ((snapshot_job.fd = snapshot_open_tmp()) == -1) {
		(void)snapshot_done(-1, -1, t0);
		snapshot_job_ended();
		return;
	}
	TAILQ_FOREACH(i, &instances, entry)
		n++;
	msgpack_sbuffer_init(&snapshot_job.sb);
	msgpack_packer_init(&pk, &snapshot_job.sb, msgpack_sbuffer_write);
	state_fds_reset();
	reexec_pack_head(&pk, 0, n);
	snapshot_job.next = TAILQ_FIRST(&instances);
	snapshot_job.owed = n;
	if (snapshot_job_flush(t0) == 0)
		ev_timer_start(ward_loop, &snapshot_job.t);
	snapshot_ms += (ev_time() - t0) * 1000;
}

/* One slice; after the last, the programs and the rest, and the rename. */
static void
snapshot_slice_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	msgpack_packer pk;
	ev_tstamp t0 = ev_time();
	unsigned k;
	int fd;

	snapshot_slices++;
	msgpack_packer_init(&pk, &snapshot_job.sb, msgpack_sbuffer_write);
	state_set_snapshot(1);	/* a re-exec that failed in between reset it */
	for (k = 0; k < SNAPSHOT_SLICE && snapshot_job.next != NULL &&
	    snapshot_job.owed > 0; k++) {
		instance_state_save(&pk, snapshot_job.next);
		snapshot_job.next = TAILQ_NEXT(snapshot_job.next, entry);
		snapshot_job.owed--;
	}
	if (snapshot_job.next != NULL && snapshot_job.owed > 0) {
		if (snapshot_job_flush(t0) == 0) {
			snapshot_ms += (ev_time() - t0) * 1000;
			ev_timer_start(loop, t);	/* the next turn */
		}
		state_fds_reset();
		return;
	}
	for (; snapshot_job.owed > 0; snapshot_job.owed--)
		msgpack_pack_nil(&pk);	/* removed meanwhile */
	reexec_pack_tail(&pk, 0);
	state_fds_reset();	/* in STATE_DIR/state the numbers mean nothing */
	if (snapshot_job_flush(t0) == -1)
		return;
	fd = snapshot_job.fd;
	snapshot_job.fd = -1;
	msgpack_sbuffer_destroy(&snapshot_job.sb);
	(void)snapshot_done(fd, 0, t0);
	snapshot_job_ended();
}

static void
snapshot_write_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	if (snapshot_job.fd != -1)
		return;	/* its end calls snapshot_dirty again */
	snapshot_last = ev_now(loop);
	if (fdstore_enabled()) {
		snapshot_pending = 0;
		snapshot_write();
	} else
		snapshot_job_begin();	/* pending until it ends */
}

/* Something worth recovering changed: write it soon (coalesced). */
void
snapshot_dirty(void)
{
	ev_tstamp wait;

	snapshot_pending = 1;
	snapshot_gen++;
	if (!snapshot_on || ev_is_active(&snapshot_t) || snapshot_job.fd != -1)
		return;
	wait = snapshot_last + SNAPSHOT_EVERY - ev_now(ward_loop);
	ev_timer_set(&snapshot_t, wait > 0. ? wait : 0., 0.);
	ev_timer_start(ward_loop, &snapshot_t);
}

/* An observer (loop.c registers it last): any news but a metrics sample. */
void
snapshot_instance_cb(struct instance *i, enum instance_event ev)
{
	/* Still in the list: a write under way steps past it. */
	if (ev == INSTANCE_EV_REMOVED && snapshot_job.next == i)
		snapshot_job.next = TAILQ_NEXT(i, entry);
	if (ev != INSTANCE_EV_METRICS)
		snapshot_dirty();
}

/* Start writing (wardd.c, after start-up's restore): a first write soon. */
void
snapshot_init(void)
{
	ev_init(&snapshot_t, snapshot_write_cb);
	ev_timer_init(&snapshot_job.t, snapshot_slice_cb, 0., 0.);
	snapshot_on = 1;
	snapshot_dirty();
}

/* At a clean exit, after the loop: removed, or written a last time. */
void
snapshot_final(void)
{
	if (!snapshot_on)
		return;
	ev_timer_stop(ward_loop, &snapshot_t);
	snapshot_job_abandon();
	snapshot_on = 0;
	if (instances_running_count > 0) {
		snapshot_write();
		return;
	}
	if (unlinkat(statedir_dirfd(), "state", 0) == -1 && errno != ENOENT)
		log_warn("cannot remove %s/state", opts.state_dir);
}

/* STATE_DIR/state cannot be used: moved aside for a person to look at. */
static void
snapshot_set_aside(const char *why)
{
	int dfd = statedir_dirfd();

	log_warnx("%s/state %s: renamed to state.bad; starting afresh",
	    opts.state_dir, why);
	if (renameat(dfd, "state", dfd, "state.bad") == -1)
		log_warn("cannot rename %s/state", opts.state_dir);
}

/* The file's bytes, or NULL (why says why). */
static char *
snapshot_read(size_t *len, const char **why)
{
	struct stat st;
	char *data = NULL;
	size_t n;
	ssize_t r = 0;
	int fd;

	*why = NULL;
	fd = openat(statedir_dirfd(), "state", O_RDONLY | O_NOFOLLOW |
	    O_NONBLOCK | O_CLOEXEC);
	if (fd == -1) {
		if (errno != ENOENT)
			*why = errno == ELOOP ? "is a symbolic link" :
			    "cannot be opened";
		return NULL;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode))
		*why = "is not a regular file";
	else if (st.st_uid != geteuid())
		*why = "is not wardd's own";
	else if (st.st_size <= 0 || (uint64_t)st.st_size > SNAPSHOT_MAX)
		*why = "is empty or too big";
	else if ((data = malloc(st.st_size)) == NULL)
		*why = "does not fit in memory";
	for (n = 0; *why == NULL && n < (size_t)st.st_size; n += r) {
		if ((r = pread(fd, data + n, st.st_size - n, n)) <= 0 &&
		    !(r == -1 && errno == EINTR))
			*why = "cannot be read";
		else if (r < 0)
			r = 0;
	}
	close(fd);
	if (*why != NULL) {
		free(data);
		return NULL;
	}
	*len = n;
	return data;
}

/* Each RUNNING instance read back without a pidfd: adopted or recorded. */
static void
snapshot_adopt_all(int same_boot, unsigned *adopted, unsigned *lost)
{
	struct instance *i;
	uint64_t *ids;
	size_t n = 0, k;

	/* By id: a death's observers may start or remove instances. */
	ids = xcalloc(instances_running_count + 1, sizeof *ids);
	LIST_FOREACH(i, &instances_running, running_entry) {
		if (i->pidfd == -1)
			ids[n++] = i->id;
	}
	for (k = 0; k < n; k++) {
		if ((i = instance_find_id(ids[k])) == NULL ||
		    i->state != INSTANCE_RUNNING || i->pidfd != -1)
			continue;
		if (instance_adopt_recover(i, same_boot))
			(*adopted)++;
		else
			(*lost)++;
	}
	free(ids);
}

/*
 * At start without --state-fd: recover from STATE_DIR/state if there is
 * one. 0 if it was read back (programs included: the caller does not load
 * the config again), -1 to start afresh.
 */
int
snapshot_recover(void)
{
	struct ward_err e = WARD_ERR_INIT;
	msgpack_unpacked msg;
	const msgpack_object *root;
	struct instance *i;
	const char *why;
	char *data, boot[64];
	size_t n, off = 0, len;
	unsigned restored = 0, adopted = 0, lost = 0;
	int same_boot;

	if ((data = snapshot_read(&n, &why)) == NULL) {
		if (why != NULL)
			snapshot_set_aside(why);
		return -1;
	}
	msgpack_unpacked_init(&msg);
	/* Scanned first: msgpack-c would allocate what a header claims. */
	if (codec_scan_within(data, n, &len, &e, SNAPSHOT_MAX, SNAPSHOT_MAX) !=
	    SCAN_COMPLETE ||
	    msgpack_unpack_next(&msg, data, n, &off) != MSGPACK_UNPACK_SUCCESS ||
	    (root = &msg.data, state_u64(root, "ward_state", 0)) == 0 ||
	    state_u64(root, "ward_state", 0) > STATE_VERSION) {
		msgpack_unpacked_destroy(&msg);
		free(data);
		snapshot_set_aside("is unreadable or of an unknown version");
		return -1;
	}
	state_fds_reset();	/* nothing is handed over: every fd is -1 */
	restored = reexec_restore_instances(root);
	/* Deaths by reason, before those found meanwhile are added. */
	openmetrics_restore(state_get(root, "openmetrics"));
	TAILQ_FOREACH(i, &instances, entry) {
		/* Its cgroup is named after the wardd that died (cgroup.c
		 * sweeps it once empty): stops reach its process group. */
		i->cgroup.made = i->cgroup.killed = 0;
	}	/* history came back from STATE_DIR/history (history-file.c) */
	state_str_into(root, "boot_id", boot, sizeof boot);
	same_boot = boot[0] != '\0' && strcmp(boot, instance_adopt_boot_id()) == 0;
	if (!same_boot)
		log_notice("%s/state is of another boot: its instances died "
		    "with it", opts.state_dir);
	snapshot_adopt_all(same_boot, &adopted, &lost);
	log_notice("recovered from %s/state after wardd's death: %u "
	    "instance%s, %u still running and adopted, %u died meanwhile",
	    opts.state_dir, restored, restored == 1 ? "" : "s", adopted, lost);
	msgpack_unpacked_destroy(&msg);
	free(data);
	return 0;
}

/* A sliced write under way holds state.tmp open. */
void
snapshot_fds(fd_visit_fn fn, void *arg)
{
	if (snapshot_job.fd != -1)
		fn(snapshot_job.fd, "snapshot: STATE_DIR/state.tmp", arg);
}
