/*
 * metrics.c: what each payload costs. One timer samples every running
 * instance from /proc (the seed's monitor_vm_status, without its thread per
 * VM); every tenth tick also the expensive smaps reads. With nothing running
 * the timer is stopped, so an idle wardd has no wakeups.
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
#define METRICS_SMAPS_MAX	(64 * 1024 * 1024)

static ev_timer metrics_t;
static long metrics_clk_tck;
static long metrics_page_kb;
uint64_t metrics_ticks;

static void	metrics_tick_cb(struct ev_loop *, ev_timer *, int);

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
}

/* A new sampling period (SIGHUP); takes effect from the next tick. */
void
metrics_set_interval(unsigned ms)
{
	metrics_t.repeat = ms / 1000.0;
	if (ev_is_active(&metrics_t))
		ev_timer_again(ward_loop, &metrics_t);
}

/* Called by instance_set_state as instances start and stop running. */
void
metrics_instance_started(void)
{
	if (!ev_is_active(&metrics_t))
		ev_timer_again(ward_loop, &metrics_t);
}

void
metrics_instance_stopped(void)
{
	if (instances_running_count == 0)
		ev_timer_stop(ward_loop, &metrics_t);
}

/* Fields 14, 15 and 43 of /proc/PID/stat, counted after the last ')'. */
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
		if (field == 14)
			st->utime_ticks = v;
		else if (field == 15)
			st->stime_ticks = v;
		else if (field == 43)
			st->guest_ticks = v;
		while (*p != ' ' && *p != '\0' && *p != '\n')
			p++;
	}
	return 0;
}

/* Resident pages: the second field of /proc/PID/statm. */
int
metrics_parse_statm(const char *buf, uint64_t *pages)
{
	unsigned long long size, res;

	if (sscanf(buf, "%llu %llu", &size, &res) != 2)
		return -1;
	*pages = res;
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
 * Sum the Rss of the mappings in a /proc/PID/smaps text whose name contains
 * name (the seed's crosvm_guest split: guest memory versus the VMM's own).
 */
uint64_t
metrics_parse_smaps_mapping(const char *buf, const char *name)
{
	const char *p, *eol;
	uint64_t sum = 0, v;
	int match = 0;

	for (p = buf; *p != '\0'; p = *eol ? eol + 1 : eol) {
		if ((eol = strchr(p, '\n')) == NULL)
			eol = p + strlen(p);
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
			match = 0;
			if (q < eol) {
				size_t nl = strlen(name);

				for (; q + nl <= eol; q++) {
					if (memcmp(q, name, nl) == 0) {
						match = 1;
						break;
					}
				}
			}
		} else if (match && (v = metrics_kb_field(p, "Rss:")) != UINT64_MAX)
			sum += v;
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

/*
 * Sample one running instance. CPU times come from stat even for a zombie
 * (that is the final bill); memory only counts if the child was still alive
 * after the reads. A read that fails because the child just died is normal.
 */
int
metrics_sample(struct instance *i, int full)
{
	struct metrics *m = &i->metrics;
	struct proc_stat st;
	char path[64], buf[2048];
	uint64_t pages, pss = 0, map_kb = 0, cpu;
	char *smaps;
	int have_rss, have_pss = 0, have_map = 0;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)i->pid);
	if (read_small_file(path, buf, sizeof buf) == -1 ||
	    metrics_parse_stat(buf, &st) == -1)
		return -1;
	snprintf(path, sizeof path, "/proc/%d/statm", (int)i->pid);
	have_rss = read_small_file(path, buf, sizeof buf) != -1 &&
	    metrics_parse_statm(buf, &pages) == 0;
	if (full) {
		snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)i->pid);
		have_pss = read_small_file(path, buf, sizeof buf) != -1 &&
		    metrics_parse_rollup(buf, &pss) == 0;
		if (i->cfg.rss_mapping != NULL) {
			snprintf(path, sizeof path, "/proc/%d/smaps", (int)i->pid);
			if ((smaps = read_whole_file(path, METRICS_SMAPS_MAX)) != NULL) {
				map_kb = metrics_parse_smaps_mapping(smaps,
				    i->cfg.rss_mapping);
				have_map = 1;
				free(smaps);
			}
		}
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
	if (!metrics_alive(i))
		return 0;
	if (have_rss) {
		m->rss_kb = pages * metrics_page_kb;
		if (m->rss_kb > m->rss_max_kb)
			m->rss_max_kb = m->rss_kb;
	}
	if (have_pss)
		m->pss_kb = pss;
	if (have_map) {
		m->mapping_rss_kb = map_kb;
		if (map_kb > m->mapping_rss_max_kb)
			m->mapping_rss_max_kb = map_kb;
	}
	return 0;
}

static void
metrics_tick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct instance *i;
	int full = metrics_ticks % METRICS_FULL_EVERY == 0;

	metrics_ticks++;
	LIST_FOREACH(i, &instances_running, running_entry) {
		metrics_sample(i, full);
		if (event_metrics_subscribers > 0)
			event_emit(EVENT_METRICS, i);
	}
}

void
metrics_pack(const struct metrics *m, msgpack_packer *pk)
{
	msgpack_pack_map(pk, 10 + 2);
	codec_pack_kv_uint(pk, "cpu_user_ms", m->cpu_user_ms);
	codec_pack_kv_uint(pk, "cpu_system_ms", m->cpu_system_ms);
	codec_pack_kv_uint(pk, "cpu_guest_ms", m->cpu_guest_ms);
	codec_pack_key(pk, "cpu_percent");
	msgpack_pack_double(pk, m->cpu_percent);
	codec_pack_kv_uint(pk, "rss_kb", m->rss_kb);
	codec_pack_kv_uint(pk, "rss_max_kb", m->rss_max_kb);
	codec_pack_kv_uint(pk, "pss_kb", m->pss_kb);
	codec_pack_kv_uint(pk, "rss_mapping_kb", m->mapping_rss_kb);
	codec_pack_kv_uint(pk, "rss_mapping_max_kb", m->mapping_rss_max_kb);
	codec_pack_kv_uint(pk, "samples", m->samples);
	/* cgroup.c's, for the whole tree: nil without a cgroup or the file. */
	codec_pack_key(pk, "cgroup_memory_kb");
	if (m->has_cgroup_memory)
		msgpack_pack_uint64(pk, m->cgroup_memory_kb);
	else
		msgpack_pack_nil(pk);
	codec_pack_key(pk, "cgroup_cpu_usage_ms");
	if (m->has_cgroup_cpu)
		msgpack_pack_uint64(pk, m->cgroup_cpu_usage_ms);
	else
		msgpack_pack_nil(pk);
}
