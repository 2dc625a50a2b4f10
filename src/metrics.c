/*
 * metrics.c: what each payload costs. One timer samples every running
 * instance from /proc once per interval (the seed's monitor_vm_status,
 * without its thread per VM); every tenth pass also the expensive reads.
 * With nothing running the timer is stopped, so an idle wardd has no
 * wakeups.
 *
 * A pass over N instances is cut into slices of at most METRICS_PER_TICK
 * (issue 12): the timer ticks N / METRICS_PER_TICK times per interval, so
 * the loop is never held for more than one slice's reads, however many
 * instances run, and each instance is still sampled once per interval.
 * The order is metrics.c's own list (metrics_entry): instances join its
 * tail as they start, and the cursor steps past one that stops.
 *
 * Each sample is one open and read of /proc/PID/stat: CPU times and RSS
 * (field 24, the resident pages statm would give) in one file, so the
 * 1 s sampling of 1,000 instances costs 1,000 reads a second, as a bare
 * sampler's would (issue 12).
 *
 * A payload decides how costly its /proc files are: 65,000 mappings make
 * /proc/PID/smaps 50 MB of text. So RSS comes from stat (O(1)) and PSS
 * from smaps_rollup (one open and read, the kernel's own sum); the full
 * smaps is read only for instances that ask for rss_mapping, and then in
 * slices of at most METRICS_SMAPS_SLICE bytes per loop turn from an idle
 * watcher, parsed a line at a time as they complete. The loop never waits
 * for more than one slice (issue 9, finding 4).
 *
 * layer: engine
 */
#include "config.h"

#include <sys/sysmacros.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"

#define METRICS_FULL_EVERY	10	/* ticks between smaps reads */
#define METRICS_SMAPS_SLICE	(64 * 1024)	/* read per turn per instance */
#define METRICS_SMAPS_TURN	(256 * 1024)	/* read per turn in all */
#define METRICS_SMAPS_LINE	8192	/* longer lines are cut (long names) */

/*
 * One /proc/PID/smaps read under way, owned by metrics.c and hung on its
 * instance (instance.smaps) until the read ends or the instance stops
 * running. buf holds an unfinished line, then the next slice.
 */
struct metrics_smaps {
	struct instance		*inst;
	int			 fd;
	uint64_t		 sum_kb;	/* Rss of matching mappings so far */
	int			 match;		/* in a mapping whose name matches */
	int			 skipping;	/* in an overlong line: to its end */
	size_t			 len;		/* bytes of buf not yet parsed */
	TAILQ_ENTRY(metrics_smaps) entry;
	char			 buf[METRICS_SMAPS_LINE + METRICS_SMAPS_SLICE];
};
static TAILQ_HEAD(metrics_smaps_list, metrics_smaps) metrics_smaps_reads =
    TAILQ_HEAD_INITIALIZER(metrics_smaps_reads);

static ev_timer metrics_t;
/* The instances it samples, in order; a pass walks it with the cursor. */
static TAILQ_HEAD(, instance) metrics_list = TAILQ_HEAD_INITIALIZER(metrics_list);
static struct instance *metrics_cursor;	/* next to sample; NULL: pass over */
static unsigned metrics_slices;		/* ticks in this pass */
static unsigned metrics_slice;		/* ticks of it done */
static int metrics_full;		/* this pass does the expensive reads */
static ev_idle metrics_smaps_w;		/* active while reads are under way */
static long metrics_clk_tck;
static long metrics_page_kb;
uint64_t metrics_ticks;

static void	metrics_tick_cb(struct ev_loop *, ev_timer *, int);
static void	metrics_smaps_cb(struct ev_loop *, ev_idle *, int);
static void	metrics_smaps_end(struct metrics_smaps *);

void
metrics_init(void)
{
	double iv = opts.metrics_interval_ms / 1000.0;

	metrics_clk_tck = sysconf(_SC_CLK_TCK);
	if (metrics_clk_tck <= 0)
		metrics_clk_tck = 100;
	metrics_page_kb = sysconf(_SC_PAGESIZE) / 1024;
	if (metrics_page_kb <= 0)
		metrics_page_kb = 4;
	ev_timer_init(&metrics_t, metrics_tick_cb, iv, iv);
	ev_idle_init(&metrics_smaps_w, metrics_smaps_cb);
}

/* The sampling timer: unit tests fire it themselves (fake_sys_fire). */
ev_timer *
metrics_timer(void)
{
	return &metrics_t;
}

/* The tick period for a pass cut into slices ticks. */
static double
metrics_period(unsigned slices)
{
	double iv = opts.metrics_interval_ms / 1000.0 / (slices ? slices : 1);

	return iv < 0.001 ? 0.001 : iv;
}

/* A new sampling period (SIGHUP: opts.metrics_interval_ms changed);
 * takes effect from the next tick. */
void
metrics_set_interval(void)
{
	metrics_t.repeat = metrics_period(metrics_slices);
	if (ev_is_active(&metrics_t))
		ev_timer_again(ward_loop, &metrics_t);
}

/* i started running: it joins the sampling order's tail. */
static void
metrics_instance_started(struct instance *i)
{
	TAILQ_INSERT_TAIL(&metrics_list, i, metrics_entry);
	if (!ev_is_active(&metrics_t))
		ev_timer_again(ward_loop, &metrics_t);
}

/* i stopped running: out of the order (the cursor steps past it), and its
 * smaps read, if any, is abandoned. */
static void
metrics_instance_stopped(struct instance *i)
{
	if (metrics_cursor == i)
		metrics_cursor = TAILQ_NEXT(i, metrics_entry);
	TAILQ_REMOVE(&metrics_list, i, metrics_entry);
	metrics_smaps_end(i->smaps);
	if (instances_running_count == 0) {
		ev_timer_stop(ward_loop, &metrics_t);
		metrics_slice = 0;	/* the next start begins a pass */
	}
}

/* Fields 3, 14, 15, 24 and 43 of /proc/PID/stat, after the last ')'. */
int
metrics_parse_stat(const char *buf, struct proc_stat *st)
{
	const char *p = strrchr(buf, ')');
	int field;
	char *end;

	if (p == NULL)
		return -1;
	p++;
	memset(st, 0, sizeof *st);
	for (field = 3; field <= 43; field++) {
		unsigned long long v;

		while (*p == ' ')
			p++;
		if (*p == '\0' || *p == '\n')
			return field > 15 ? 0 : -1;	/* old kernels: no guest */
		v = strtoull(p, &end, 10);
		if (field == 3)
			st->state = *p;
		else if (field == 14)
			st->utime_ticks = v;
		else if (field == 15)
			st->stime_ticks = v;
		else if (field == 24) {
			st->rss_pages = v;
			st->has_rss = 1;
		}
		else if (field == 43)
			st->guest_ticks = v;
		while (*p != ' ' && *p != '\0' && *p != '\n')
			p++;
	}
	return 0;
}

static uint64_t
metrics_kb_field(const char *line, const char *name)
{
	size_t n = strlen(name);

	if (strncmp(line, name, n) != 0)
		return UINT64_MAX;
	return strtoull(line + n, NULL, 10);
}

/* "Pss: N kB" of /proc/PID/smaps_rollup. */
int
metrics_parse_rollup(const char *buf, uint64_t *pss_kb)
{
	const char *p;

	for (p = buf; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : p) {
		uint64_t v = metrics_kb_field(p, "Pss:");

		if (v != UINT64_MAX) {
			*pss_kb = v;
			return 0;
		}
	}
	return -1;
}

/*
 * One line [p, eol) of /proc/PID/smaps: a mapping's header sets *match
 * (its name contains name), an "Rss:" line of a matching mapping adds to
 * *sum. Lines need not be NUL-terminated.
 */
static void
metrics_smaps_line(const char *p, const char *eol, const char *name,
    int *match, uint64_t *sum)
{
	static const char rss[] = "Rss:";
	size_t nl = strlen(name);

	/* Mapping headers begin with a lower-case hex address. */
	if ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')) {
		const char *q = p;
		int spaces = 0;

		/* The name starts after the fifth field. */
		while (q < eol && spaces < 5) {
			if (*q == ' ') {
				spaces++;
				while (q < eol && *q == ' ')
					q++;
			} else
				q++;
		}
		*match = 0;
		for (; q < eol && q + nl <= eol; q++) {
			if (memcmp(q, name, nl) == 0) {
				*match = 1;
				break;
			}
		}
	} else if (*match && (size_t)(eol - p) > sizeof rss - 1 &&
	    memcmp(p, rss, sizeof rss - 1) == 0) {
		char num[32];
		size_t n = eol - p - (sizeof rss - 1);

		if (n >= sizeof num)
			n = sizeof num - 1;
		memcpy(num, p + sizeof rss - 1, n);
		num[n] = '\0';
		*sum += strtoull(num, NULL, 10);
	}
}

/*
 * Sum the Rss of the mappings in a /proc/PID/smaps text whose name contains
 * name (the seed's crosvm_guest split: guest memory versus the VMM's own).
 */
uint64_t
metrics_parse_smaps_mapping(const char *buf, const char *name)
{
	const char *p, *eol;
	uint64_t sum = 0;
	int match = 0;

	for (p = buf; *p != '\0'; p = *eol ? eol + 1 : eol) {
		if ((eol = strchr(p, '\n')) == NULL)
			eol = p + strlen(p);
		metrics_smaps_line(p, eol, name, &match, &sum);
	}
	return sum;
}

/* Has the child exited? A readable pidfd says so. */
static int
metrics_alive(const struct instance *i)
{
	struct pollfd pfd = { .fd = i->pidfd, .events = POLLIN };

	return poll(&pfd, 1, 0) == 0;
}

/* ---- /proc/PID/smaps in slices */

/* Forget a read (NULL: none): close, unhook, stop the watcher if idle. */
static void
metrics_smaps_end(struct metrics_smaps *r)
{
	if (r == NULL)
		return;
	r->inst->smaps = NULL;
	close(r->fd);
	TAILQ_REMOVE(&metrics_smaps_reads, r, entry);
	free(r);
	if (TAILQ_EMPTY(&metrics_smaps_reads))
		ev_idle_stop(ward_loop, &metrics_smaps_w);
}

/*
 * Start reading i's smaps unless a read is still under way (then this
 * period's figure comes from it). Failure is quiet: the child may be gone.
 */
static void
metrics_smaps_begin(struct instance *i)
{
	struct metrics_smaps *r;
	char path[64];

	if (i->smaps != NULL)
		return;
	if ((r = malloc(sizeof *r)) == NULL)
		return;
	snprintf(path, sizeof path, "/proc/%d/smaps", (int)i->pid);
	if ((r->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1) {
		free(r);
		return;
	}
	r->inst = i;
	r->sum_kb = 0;
	r->match = r->skipping = 0;
	r->len = 0;
	i->smaps = r;
	TAILQ_INSERT_TAIL(&metrics_smaps_reads, r, entry);
	ev_idle_start(ward_loop, &metrics_smaps_w);
}

/* The whole file is read: the sum is the instance's figure, if it lives. */
static void
metrics_smaps_done(struct metrics_smaps *r)
{
	struct metrics *m = &r->inst->metrics;

	if (r->len > 0 && !r->skipping)
		metrics_smaps_line(r->buf, r->buf + r->len,
		    r->inst->spec.rss_mapping, &r->match, &r->sum_kb);
	if (metrics_alive(r->inst)) {
		m->mapping_rss_kb = r->sum_kb;
		if (r->sum_kb > m->mapping_rss_max_kb)
			m->mapping_rss_max_kb = r->sum_kb;
	}
	metrics_smaps_end(r);
}

/*
 * Read one slice and parse the lines it completes; an unfinished line
 * moves to the front of buf for the next slice. Returns the bytes read,
 * 0 once the read is over (r is freed then).
 */
static size_t
metrics_smaps_slice(struct metrics_smaps *r)
{
	const char *name = r->inst->spec.rss_mapping;
	char *p, *eol, *end;
	ssize_t n;

	n = read(r->fd, r->buf + r->len, METRICS_SMAPS_SLICE);
	if (n == -1 && (errno == EINTR || errno == EAGAIN))
		return 1;	/* next turn */
	if (n == -1) {
		metrics_smaps_end(r);	/* ESRCH: it exited under us */
		return 0;
	}
	if (n == 0) {
		metrics_smaps_done(r);
		return 0;
	}
	end = r->buf + r->len + n;
	for (p = r->buf; (eol = memchr(p, '\n', end - p)) != NULL; p = eol + 1) {
		if (r->skipping)
			r->skipping = 0;
		else
			metrics_smaps_line(p, eol, name, &r->match, &r->sum_kb);
	}
	r->len = end - p;
	if (r->len >= METRICS_SMAPS_LINE) {
		/* No newline in sight: take the start, drop the rest of it. */
		if (!r->skipping)
			metrics_smaps_line(p, p + METRICS_SMAPS_LINE, name,
			    &r->match, &r->sum_kb);
		r->skipping = 1;
		r->len = 0;
	} else
		memmove(r->buf, p, r->len);
	return n;
}

/*
 * One loop turn's share of the reads: a slice for each, up to
 * METRICS_SMAPS_TURN in all; those served go to the back of the line.
 */
static void
metrics_smaps_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	struct metrics_smaps *r, *last = TAILQ_LAST(&metrics_smaps_reads,
	    metrics_smaps_list);
	size_t total = 0;
	int at_last;

	while (total < METRICS_SMAPS_TURN &&
	    (r = TAILQ_FIRST(&metrics_smaps_reads)) != NULL) {
		at_last = r == last;
		TAILQ_REMOVE(&metrics_smaps_reads, r, entry);
		TAILQ_INSERT_TAIL(&metrics_smaps_reads, r, entry);
		total += metrics_smaps_slice(r);	/* may free r */
		if (at_last)
			break;
	}
}

/*
 * Sample one running instance. CPU times come from stat even for a zombie
 * (that is the final bill); memory only counts if the child was still alive
 * after the reads. A read that fails because the child just died is normal.
 * With full, PSS too, and a smaps read for rss_mapping is started (its
 * figure lands when the read is over, a few loop turns later).
 */
int
metrics_sample(struct instance *i, int full)
{
	struct metrics *m = &i->metrics;
	struct proc_stat st;
	char buf[2048];
	uint64_t pss = 0, cpu;
	int have_pss = 0;

	if (sys->proc_read(i->pid, "stat", buf, sizeof buf) == -1 ||
	    metrics_parse_stat(buf, &st) == -1)
		return -1;
	if (full) {
		have_pss = sys->proc_read(i->pid, "smaps_rollup", buf,
		    sizeof buf) != -1 && metrics_parse_rollup(buf, &pss) == 0;
		if (i->spec.rss_mapping != NULL && i->state == INSTANCE_RUNNING)
			metrics_smaps_begin(i);
	}
	m->cpu_user_ms = st.utime_ticks * 1000 / metrics_clk_tck;
	m->cpu_system_ms = st.stime_ticks * 1000 / metrics_clk_tck;
	m->cpu_guest_ms = st.guest_ticks * 1000 / metrics_clk_tck;
	cpu = m->cpu_user_ms + m->cpu_system_ms;
	if (m->last_at > 0 && ev_now(ward_loop) > m->last_at)
		m->cpu_percent = (cpu - m->last_cpu_ms) /
		    ((ev_now(ward_loop) - m->last_at) * 1000) * 100;
	m->last_cpu_ms = cpu;
	m->last_at = ev_now(ward_loop);
	m->samples++;
	/* cgroup.c: the whole tree's cost, with the other expensive reads. */
	if (full)
		cgroup_sample(i, m, 0);
	/* A zombie's memory is gone: its last figures stand. Read from the
	 * same file, not a poll of the pidfd (one syscall less a sample). */
	if (st.state == 'Z' || st.state == 'X' || st.state == 'x')
		return 0;
	if (st.has_rss) {
		m->rss_kb = st.rss_pages * metrics_page_kb;
		if (m->rss_kb > m->rss_max_kb)
			m->rss_max_kb = m->rss_kb;
	}
	if (have_pss)
		m->pss_kb = pss;
	return 0;
}

/*
 * One slice of a pass. A pass (every instance running at its start, in
 * ceil(N / METRICS_PER_TICK) ticks over the interval) begins when the last
 * one ended; each tick samples the next METRICS_PER_TICK from the cursor,
 * never more, so the ticks of a pass reach every instance that was there
 * at its start whatever stops meanwhile; one that starts meanwhile joins
 * the tail and is reached if there is room, else in the next pass.
 */
static void
metrics_tick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct instance *i;
	unsigned k;

	if (metrics_slice == 0) {
		metrics_cursor = TAILQ_FIRST(&metrics_list);
		metrics_slices = (instances_running_count + METRICS_PER_TICK -
		    1) / METRICS_PER_TICK;
		if (metrics_slices == 0)
			metrics_slices = 1;
		metrics_full = metrics_ticks % METRICS_FULL_EVERY == 0;
		metrics_ticks++;
		if (t->repeat != metrics_period(metrics_slices)) {
			t->repeat = metrics_period(metrics_slices);
			ev_timer_again(loop, t);
		}
	}
	for (k = 0; k < METRICS_PER_TICK && (i = metrics_cursor) != NULL; k++) {
		metrics_cursor = TAILQ_NEXT(i, metrics_entry);
		metrics_sample(i, metrics_full);
		if (event_metrics_subscribers > 0)
			instance_announce(i, INSTANCE_EV_METRICS);
	}
	/* A pass lasts its slices' ticks even when stops emptied it early:
	 * no instance is sampled twice in one interval. */
	if (++metrics_slice >= metrics_slices)
		metrics_slice = 0;
}

/* instance.c's observer: sample what runs, and a child's last CPU times
 * while it is a zombie (they are gone once it is reaped). */
void
metrics_instance_cb(struct instance *i, enum instance_event ev)
{
	if (ev == INSTANCE_EV_STARTED ||
	    (ev == INSTANCE_EV_RESTORED && i->state == INSTANCE_RUNNING))
		metrics_instance_started(i);
	else if (ev == INSTANCE_EV_STOPPED)
		metrics_instance_stopped(i);
	else if (ev == INSTANCE_EV_EXITING)
		metrics_sample(i, 0);
}

/* A smaps read under way for i holds /proc/PID/smaps open. */
void
metrics_fds(const struct instance *i, fd_visit_fn fn, void *arg)
{
	if (i->smaps != NULL && i->smaps->fd != -1)
		fn(i->smaps->fd, "metrics: smaps", arg);
}
