/*
 * openmetrics.c: what wardd knows, as a metrics text exposition: for
 * ward.metrics (cmd-ward.c) and for GET /metrics (http.c, through the body
 * function wardd.c gives it). Two formats from one table of families:
 * OpenMetrics 1.0.0 (counter families named without _total, UNIT lines,
 * "# EOF") and Prometheus' text format 0.0.4 (a counter's TYPE names the
 * _total sample, no UNIT, no EOF), which promtool checks and which any
 * scraper that does not ask for OpenMetrics gets.
 *
 * Who sees what: the per-instance families list only the instances the
 * peer may see (peer_may PEER_SEE: an admin all, anyone else its own);
 * program restarts only to who may see wardd's own (the programs'
 * owner); wardd's own counters and the deaths by reason to everyone, as
 * ward.stats shows its counts to everyone. A scrape over HTTP is wardd's
 * own peer (peer_self): all of it.
 *
 * Deaths by reason are counted here, an observer of DIED, for at most
 * OPENMETRICS_REASONS reasons (a payload names its own, and every label
 * value is a series); later ones are counted as "_other", which no NAME
 * can be. The counts go across a re-exec in the state, not across a
 * crash: a counter's reset, which Prometheus expects.
 *
 * The text is built in one loop turn, labels escaped once per instance and
 * the per-instance lines written without printf: at 10,000 instances it is
 * about 5 MB, built in about 3 ms (the median on a 2-core VM; the round
 * trip of a scrape about 6 ms, a quarter of a compact instance.list's:
 * tests/bench/bench_metrics.py), so it is not sliced across loop turns.
 *
 * layer: commands (reads instances, programs, conns and the channel's
 * counters; hears of deaths as an observer)
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ward.h"

static struct {
	char		 reason[REASON_MAX + 1];
	uint64_t	 n;
} om_deaths[OPENMETRICS_REASONS];
static size_t om_ndeaths;
static uint64_t om_deaths_other;	/* past OPENMETRICS_REASONS reasons */

/*
 * The slots a non-admin's instance may add a reason to: its payload names
 * its own, so without a share kept back one user's made-up names could
 * fill the table and leave an admin's WATCHDOG or OUT_OF_MEMORY "_other".
 */
#define OM_REASONS_USERS	(OPENMETRICS_REASONS - 32)

/* room: how full the table may be for reason to be added to it. */
static void
om_count_death(const char *reason, uint64_t n, size_t room)
{
	size_t k;

	if (reason[0] == '\0')
		reason = "UNKNOWN";
	for (k = 0; k < om_ndeaths; k++) {
		if (strcmp(om_deaths[k].reason, reason) == 0) {
			om_deaths[k].n += n;
			return;
		}
	}
	if (om_ndeaths >= room || strlen(reason) > REASON_MAX) {
		om_deaths_other += n;
		return;
	}
	strcpy(om_deaths[om_ndeaths].reason, reason);
	om_deaths[om_ndeaths++].n = n;
}

void
openmetrics_instance_cb(struct instance *i, enum instance_event ev)
{
	if (ev == INSTANCE_EV_DIED && i->exit != NULL)
		om_count_death(i->exit->death_reason, 1,
		    budget_admin(i->owner_uid) ? OPENMETRICS_REASONS :
		    OM_REASONS_USERS);
}

/* ---- across a re-exec (reexec.c): {deaths: {REASON: n}, other: n} */

void
openmetrics_save(msgpack_packer *pk)
{
	size_t k;

	msgpack_pack_map(pk, 2);
	codec_pack_key(pk, "deaths");
	msgpack_pack_map(pk, om_ndeaths);
	for (k = 0; k < om_ndeaths; k++)
		codec_pack_kv_uint(pk, om_deaths[k].reason, om_deaths[k].n);
	codec_pack_kv_uint(pk, "other", om_deaths_other);
}

/* Hostile input like all state: a reason must be a NAME to be counted. */
void
openmetrics_restore(const msgpack_object *m)
{
	const msgpack_object *d;
	char reason[REASON_MAX + 1];
	uint32_t k;

	if (m == NULL || m->type != MSGPACK_OBJECT_MAP)
		return;
	om_deaths_other = state_u64(m, "other", 0);
	if ((d = state_get(m, "deaths")) == NULL || d->type != MSGPACK_OBJECT_MAP)
		return;
	for (k = 0; k < d->via.map.size; k++) {
		const msgpack_object_kv *kv = &d->via.map.ptr[k];

		if (kv->key.type != MSGPACK_OBJECT_STR ||
		    kv->val.type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
		    !reason_name_valid(kv->key.via.str.ptr, kv->key.via.str.size))
			continue;
		memcpy(reason, kv->key.via.str.ptr, kv->key.via.str.size);
		reason[kv->key.via.str.size] = '\0';
		om_count_death(reason, kv->val.via.u64, OPENMETRICS_REASONS);
	}
}

/* ---- the text */

static void	om_printf(struct openmetrics_text *, const char *, ...)
		    printflike(2, 3);

/* Append; on failure the text is marked failed and stays as it was. */
static void
om_printf(struct openmetrics_text *t, const char *fmt, ...)
{
	va_list ap;
	size_t cap;
	char *d;
	int n;

	for (;;) {
		if (t->failed)
			return;
		va_start(ap, fmt);
		n = vsnprintf(t->cap ? t->data + t->len : NULL, t->cap - t->len,
		    fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->failed = 1;
			return;
		}
		if ((size_t)n < t->cap - t->len) {
			t->len += n;
			return;
		}
		cap = t->cap ? t->cap * 2 : 65536;
		while (cap < t->len + n + 1)
			cap *= 2;
		if ((d = realloc(t->data, cap)) == NULL) {
			t->failed = 1;
			return;
		}
		t->data = d;
		t->cap = cap;
	}
}

/*
 * A label value as OpenMetrics (and the 0.0.4 format) spell it: backslash,
 * double quote and newline escaped. Writes at most len - 1 bytes and a NUL
 * (cut, never inside an escape); returns the bytes written.
 */
size_t
openmetrics_escape(char *out, size_t len, const char *s)
{
	size_t n = 0;
	const char *esc;

	for (; *s != '\0'; s++) {
		esc = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" :
		    *s == '\n' ? "\\n" : NULL;
		if (n + (esc ? 2 : 1) >= len)
			break;
		if (esc != NULL) {
			memcpy(out + n, esc, 2);
			n += 2;
		} else
			out[n++] = *s;
	}
	out[n] = '\0';
	return n;
}

/* One family's head: HELP, TYPE (and UNIT in OpenMetrics). */
static void
om_family(struct openmetrics_text *t, int om, const char *name,
    const char *type, const char *unit, const char *help)
{
	const char *sfx = !om && strcmp(type, "counter") == 0 ? "_total" : "";

	om_printf(t, "# HELP %s%s %s\n# TYPE %s%s %s\n", name, sfx, help, name,
	    sfx, type);
	if (om && unit != NULL)
		om_printf(t, "# UNIT %s %s\n", name, unit);
}

/*
 * Room for n more bytes (and a NUL) at the end of t. The per-instance
 * lines are written straight into it (om_put, om_u64): at 10,000
 * instances snprintf was most of the cost of a scrape.
 */
static int
om_reserve(struct openmetrics_text *t, size_t n)
{
	size_t cap;
	char *d;

	if (t->failed)
		return -1;
	if (t->len + n + 1 <= t->cap)
		return 0;
	cap = t->cap ? t->cap : 65536;
	while (cap < t->len + n + 1)
		cap *= 2;
	if ((d = realloc(t->data, cap)) == NULL) {
		t->failed = 1;
		return -1;
	}
	t->data = d;
	t->cap = cap;
	return 0;
}

/* These two write within what om_reserve made room for. */
static void
om_put(struct openmetrics_text *t, const char *s, size_t n)
{
	memcpy(t->data + t->len, s, n);
	t->len += n;
}

static void
om_u64(struct openmetrics_text *t, uint64_t v)
{
	char d[20];
	size_t n = 0;

	do
		d[n++] = '0' + v % 10;
	while ((v /= 10) > 0);
	while (n > 0)
		t->data[t->len++] = d[--n];
}

#define OM_LINE_MAX	96	/* a line's bytes besides its labels */

/*
 * "NAME{LABELS[,EXTRA]} VALUE\n": an integer, or with ms a number of
 * milliseconds written as seconds with 3 decimals.
 */
static void
om_line(struct openmetrics_text *t, const char *name, const char *labels,
    size_t nlabels, const char *extra, uint64_t v, int ms)
{
	if (om_reserve(t, nlabels + OM_LINE_MAX) == -1)
		return;
	om_put(t, name, strlen(name));
	om_put(t, "{", 1);
	om_put(t, labels, nlabels);
	if (extra != NULL)
		om_put(t, extra, strlen(extra));
	om_put(t, "} ", 2);
	om_u64(t, ms ? v / 1000 : v);
	if (ms) {
		om_put(t, ".", 1);
		t->data[t->len++] = '0' + v / 100 % 10;
		t->data[t->len++] = '0' + v / 10 % 10;
		t->data[t->len++] = '0' + v % 10;
	}
	om_put(t, "\n", 1);
	t->data[t->len] = '\0';
}

/* One instance's labels, escaped once: where they are in the labels text. */
struct om_inst {
	const struct instance	*i;
	size_t			 labels;	/* offset in the labels text */
	size_t			 nlabels;
};

static uint64_t
om_uptime_ms(const struct instance *i)
{
	if (i->state == INSTANCE_RUNNING)
		return (ev_now(ward_loop) - i->started_mono) * 1000;
	if (i->exit != NULL)
		return i->exit->uptime_ms;
	return 0;
}

/* The per-instance families, one line each per instance seen. */
static void
om_instance_lines(struct openmetrics_text *t, int om, const char *lt,
    const struct om_inst *v, size_t n)
{
	const struct instance *i;
	size_t k;

#define L(k)	lt + v[k].labels, v[k].nlabels
	om_family(t, om, "ward_instance_runs", "counter", NULL,
	    "Times the instance was spawned.");
	for (k = 0; k < n; k++)
		om_line(t, "ward_instance_runs_total", L(k), NULL, v[k].i->runs, 0);
	om_family(t, om, "ward_instance_cpu_seconds", "counter", "seconds",
	    "CPU time of the instance's main process, by mode.");
	for (k = 0; k < n; k++) {
		i = v[k].i;
		om_line(t, "ward_instance_cpu_seconds_total", L(k),
		    ",mode=\"user\"", i->metrics.cpu_user_ms, 1);
		om_line(t, "ward_instance_cpu_seconds_total", L(k),
		    ",mode=\"system\"", i->metrics.cpu_system_ms, 1);
	}
	om_family(t, om, "ward_instance_rss_bytes", "gauge", "bytes",
	    "Resident memory of the instance's main process (0 unless running).");
	for (k = 0; k < n; k++)
		om_line(t, "ward_instance_rss_bytes", L(k), NULL,
		    v[k].i->state == INSTANCE_RUNNING ?
		    v[k].i->metrics.rss_kb * 1024 : 0, 0);
	om_family(t, om, "ward_instance_max_rss_bytes", "gauge", "bytes",
	    "Most resident memory seen in the instance's last run.");
	for (k = 0; k < n; k++)
		om_line(t, "ward_instance_max_rss_bytes", L(k), NULL,
		    v[k].i->metrics.rss_max_kb * 1024, 0);
	om_family(t, om, "ward_instance_uptime_seconds", "gauge", "seconds",
	    "How long the instance has run (its last run's length once dead).");
	for (k = 0; k < n; k++)
		om_line(t, "ward_instance_uptime_seconds", L(k), NULL,
		    om_uptime_ms(v[k].i), 1);
#undef L
}

static void
om_instances(struct openmetrics_text *t, int om, const struct peer *p)
{
	char name[2 * SPEC_MAX_NAME + 1], prog[2 * SPEC_MAX_NAME + 1];
	struct openmetrics_text lt = { NULL, 0, 0, 0 };
	uint64_t states[INSTANCE_FAILED + 1] = { 0 };
	const struct instance *i;
	struct om_inst *v = NULL;
	size_t n = 0;
	int s;

	TAILQ_FOREACH(i, &instances, entry) {
		if (peer_may(p, PEER_SEE, i->owner_uid))
			n++;
	}
	if (n > 0 && (v = calloc(n, sizeof *v)) == NULL) {
		t->failed = 1;
		return;
	}
	n = 0;
	TAILQ_FOREACH(i, &instances, entry) {
		if (!peer_may(p, PEER_SEE, i->owner_uid))
			continue;
		states[i->state]++;
		openmetrics_escape(name, sizeof name, i->spec.name);
		openmetrics_escape(prog, sizeof prog, i->program != NULL ?
		    i->program->conf->name : "");
		v[n].i = i;
		v[n].labels = lt.len;
		om_printf(&lt, "id=\"%" PRIu64 "\",name=\"%s\",program=\"%s\","
		    "owner=\"%u\"", i->id, name, prog, (unsigned)i->owner_uid);
		v[n].nlabels = lt.len - v[n].labels;
		n++;
	}
	/* Six lines an instance: grown once, not doubled along the way. */
	if (lt.failed || om_reserve(t, 6 * (lt.len + n * OM_LINE_MAX)) == -1) {
		t->failed = 1;
		goto out;
	}
	om_family(t, om, "ward_instances", "gauge", NULL,
	    "Instances by state (those the caller may see).");
	for (s = INSTANCE_NOT_STARTED; s <= INSTANCE_FAILED; s++)
		om_printf(t, "ward_instances{state=\"%s\"} %" PRIu64 "\n",
		    instance_state_name(s), states[s]);
	om_instance_lines(t, om, lt.data, v, n);
out:
	free(lt.data);
	free(v);
}

static void
om_deaths_programs(struct openmetrics_text *t, int om, const struct peer *p)
{
	const struct program *pr;
	char name[2 * SPEC_MAX_NAME + 1];
	size_t k;

	om_family(t, om, "ward_deaths", "counter", NULL, "Instance deaths by "
	    "death reason (_other: past the reasons counted apart).");
	for (k = 0; k < om_ndeaths; k++)
		om_printf(t, "ward_deaths_total{reason=\"%s\"} %" PRIu64 "\n",
		    om_deaths[k].reason, om_deaths[k].n);
	if (om_deaths_other > 0)
		om_printf(t, "ward_deaths_total{reason=\"_other\"} %" PRIu64 "\n",
		    om_deaths_other);
	om_family(t, om, "ward_program_restarts", "counter", NULL,
	    "Restarts of each declared program by its policy.");
	if (!peer_may(p, PEER_SEE, opts.uid))
		return;
	TAILQ_FOREACH(pr, &programs, entry) {
		openmetrics_escape(name, sizeof name, pr->conf->name);
		om_printf(t, "ward_program_restarts_total{program=\"%s\"} %"
		    PRIu64 "\n", name, pr->restart_count);
	}
}

/* wardd's own: what ward.stats counts of its clients and channels. */
static void
om_self(struct openmetrics_text *t, int om)
{
	const struct {
		const char	*name, *type, *help;
		uint64_t	 v;
	} f[] = {
		{ "ward_connections", "gauge",
		    "Clients connected to the control socket.", conn_count },
		{ "ward_connections_accepted", "counter", "Clients accepted on "
		    "the control socket by this wardd process.", server_accepted },
		{ "ward_requests", "counter",
		    "Requests dispatched by this wardd process.", cmd_requests },
		{ "ward_event_subscribers", "gauge",
		    "Connections subscribed to events.", event_subscribers },
		{ "ward_event_subscribers_dropped", "counter", "Subscribers "
		    "dropped for falling behind (their events lost).",
		    event_overflows },
	};
	size_t k;

	for (k = 0; k < sizeof f / sizeof f[0]; k++) {
		om_family(t, om, f[k].name, f[k].type, NULL, f[k].help);
		om_printf(t, "%s%s %" PRIu64 "\n", f[k].name,
		    strcmp(f[k].type, "counter") == 0 ? "_total" : "", f[k].v);
	}
	om_family(t, om, "ward_dropped_datagrams", "counter", NULL,
	    "Datagrams on the shared fd 3 and NOTIFY_SOCKET from no instance.");
	om_printf(t, "ward_dropped_datagrams_total{channel=\"failure\"} %"
	    PRIu64 "\nward_dropped_datagrams_total{channel=\"notify\"} %"
	    PRIu64 "\n", channel_stats.failure_dropped,
	    channel_stats.notify_dropped);
	om_family(t, om, "ward_http_requests", "counter", NULL,
	    "Requests on --metrics-listen, by outcome.");
	om_printf(t, "ward_http_requests_total{outcome=\"scrape\"} %" PRIu64
	    "\nward_http_requests_total{outcome=\"error\"} %" PRIu64
	    "\nward_http_requests_total{outcome=\"refused\"} %" PRIu64
	    "\nward_http_requests_total{outcome=\"timeout\"} %" PRIu64 "\n",
	    http_stats.scrapes, http_stats.errors, http_stats.refused,
	    http_stats.timeouts);
}

/*
 * The whole exposition for peer p into t (t zeroed by the caller, its data
 * the caller's to free); om: OpenMetrics, else the 0.0.4 text format.
 * t->failed: out of memory, t->data is not to be sent.
 */
void
openmetrics_build(struct openmetrics_text *t, const struct peer *p, int om)
{
	om_instances(t, om, p);
	om_deaths_programs(t, om, p);
	om_self(t, om);
	if (om)
		om_printf(t, "# EOF\n");
}

/* http.c's body function: everything, as wardd's own peer sees it. */
char *
openmetrics_http_body(int om, size_t *len)
{
	struct openmetrics_text t = { NULL, 0, 0, 0 };

	openmetrics_build(&t, peer_self(), om);
	if (t.failed) {
		free(t.data);
		return NULL;
	}
	*len = t.len;
	return t.data;
}
