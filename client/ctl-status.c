/*
 * ctl-status.c: wardctl status, the table of instances and the long form
 * of each. Calls the shared core (ctl.h) and libward's decoding.
 */
#include "config.h"

#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

/* What STATE shows: a program's backoff, fatal or waiting say more. */
static const char *
ctl_status_state(const struct ward_status *s)
{
	if (s->suspended)
		return "suspended";
	if (s->program_state != NULL && (strcmp(s->program_state, "backoff") == 0 ||
	    strcmp(s->program_state, "fatal") == 0 ||
	    strcmp(s->program_state, "waiting") == 0))
		return s->program_state;
	return s->state;
}

/* STATE's colour: red for what needs a look, yellow for what is waiting. */
static const char *
ctl_status_color(struct ctl *c, const struct ward_status *s)
{
	if (s->program_state != NULL && strcmp(s->program_state, "fatal") == 0)
		return C_RED(c);
	if (s->program_state != NULL && (strcmp(s->program_state, "backoff") == 0 ||
	    strcmp(s->program_state, "waiting") == 0))
		return C_YELLOW(c);
	if (strcmp(s->state, "running") == 0)
		return s->suspended ? C_YELLOW(c) : C_GREEN(c);
	if (strcmp(s->state, "not_started") == 0 ||
	    strcmp(s->state, "starting") == 0)	/* a pre_start runs */
		return C_YELLOW(c);
	if (strcmp(s->state, "failed") == 0 ||
	    (s->has_exit && s->exit.death_reason != NULL &&
	    strcmp(s->exit.death_reason, "SHUTDOWN") != 0))
		return C_RED(c);
	return C_DIM(c);
}

/* One row of the status table, as text. */
struct ctl_status_row {
	char		 id[24], pid[16], up[32], cpu[32], rss[16];
	char		 reason[128];	/* REASON, and (killed_by) when one */
	const char	*state, *payload;
};

static void
ctl_status_cells(const struct ward_status *s, struct ctl_status_row *r)
{
	snprintf(r->id, sizeof r->id, "%" PRIu64, s->id);
	r->state = ctl_status_state(s);
	r->payload = s->payload_state ? s->payload_state : "";
	r->reason[0] = '\0';
	if (s->has_exit && s->exit.death_reason != NULL)
		snprintf(r->reason, sizeof r->reason, s->exit.killed_by ?
		    "%s (%s)" : "%s", s->exit.death_reason,
		    s->exit.killed_by ? CLEAN(s->exit.killed_by) : "");
	if (s->pid > 0)
		snprintf(r->pid, sizeof r->pid, "%d", (int)s->pid);
	else
		snprintf(r->pid, sizeof r->pid, "-");
	if (s->started_at_ms != 0)
		ctl_duration(s->uptime_ms, r->up, sizeof r->up);
	else
		snprintf(r->up, sizeof r->up, "-");
	if (strcmp(s->state, "running") == 0) {
		snprintf(r->cpu, sizeof r->cpu, "%.1f", s->metrics.cpu_percent);
		ctl_size(s->metrics.rss_kb, r->rss, sizeof r->rss);
	} else {
		snprintf(r->cpu, sizeof r->cpu, "-");
		ctl_size(s->metrics.rss_max_kb, r->rss, sizeof r->rss);
	}
}

/*
 * NAME ID STATE PAYLOAD PID UPTIME CPU% RSS REASON: each column as wide as
 * its widest cell (at least its usual width), numbers right-aligned, so a
 * wide cell moves its column, never the rest of its row.
 */
static void
ctl_status_table(struct ctl *c, const struct ward_status *v, size_t n)
{
	struct ctl_status_row *r = calloc(n ? n : 1, sizeof *r);
	int wname = 4, wid = 6, wstate = 11, wpay = 9, wpid = 7, wup = 8;
	int wcpu = 5, wrss = 6;
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < n; i++) {
		ctl_status_cells(&v[i], &r[i]);
		wname = ctl_width(wname, v[i].name);
		wid = ctl_width(wid, r[i].id);
		wstate = ctl_width(wstate, r[i].state);
		wpay = ctl_width(wpay, r[i].payload);
		wpid = ctl_width(wpid, r[i].pid);
		wup = ctl_width(wup, r[i].up);
		wcpu = ctl_width(wcpu, r[i].cpu);
		wrss = ctl_width(wrss, r[i].rss);
	}
	printf("%s%-*s %*s %-*s %-*s %*s %*s %*s %*s %s%s\n", C_BOLD(c),
	    wname, "NAME", wid, "ID", wstate, "STATE", wpay, "PAYLOAD", wpid,
	    "PID", wup, "UPTIME", wcpu, "CPU%", wrss, "RSS", "REASON", C_RESET(c));
	for (i = 0; i < n; i++)
		printf("%-*s %*s %s%-*s%s %-*s %*s %*s %*s %*s %s\n", wname,
		    v[i].name, wid, r[i].id, ctl_status_color(c, &v[i]), wstate,
		    r[i].state, C_RESET(c), wpay, r[i].payload, wpid, r[i].pid,
		    wup, r[i].up, wcpu, r[i].cpu, wrss, r[i].rss, r[i].reason);
	free(r);
}

/* post_death's result: "exited with code 0", "killed (timeout)", ... */
static void
ctl_status_post_death(const struct ward_exit *x)
{
	printf("  post_death: %s", CLEAN(x->post_death));
	if (strcmp(x->post_death, "exited") == 0)
		printf(", exit code %d", x->post_death_code);
	else if (x->post_death_signal != 0)
		printf(", signal %d", x->post_death_signal);
	putchar('\n');
}

/*
 * --json: each one's instance.status map as wardd sends it; one plain
 * name is its map, anything else an array.
 */
static int
ctl_status_json(struct ctl *c, const struct ward_status *v, size_t n,
    int array)
{
	struct ward_params p;
	struct ward_reply r;
	char id[24];
	size_t k;
	int rc = 0;

	if (array)
		putchar('[');
	for (k = 0; k < n && rc == 0; k++) {
		snprintf(id, sizeof id, "%" PRIu64, v[k].id);
		ward_params_init(&p);
		ctl_pack_ident(&p.pk, id, 0);
		if ((rc = ctl_call(c, "instance.status", &p, v[k].name, &r)) != 0)
			break;
		if (k > 0)
			putchar(',');
		ctl_json(&r.result);
		ward_reply_free(&r);
	}
	printf(array ? "]\n" : "\n");
	return rc;
}

/* The long form: everything status says, owner names resolved here. */
static void
ctl_status_long(struct ctl *c, const struct ward_status *s)
{
	char buf[32], buf2[32];
	struct passwd *pw = getpwuid(s->owner_uid);
	char **a;

	printf("%s%s%s (id %" PRIu64 ")\n", C_BOLD(c), s->name, C_RESET(c), s->id);
	printf("  state:    %s%s%s%s\n", ctl_status_color(c, s), s->state,
	    s->suspended ? " (suspended)" : "", C_RESET(c));
	if (s->program_state != NULL)
		printf("  program:  %s\n", s->program_state);
	printf("  payload:  %s%s%s\n", s->payload_state,
	    s->status_text && *s->status_text ? " - " : "",
	    CLEAN(s->status_text));
	printf("  owner:    %s (uid %u)\n", pw ? pw->pw_name : "?",
	    (unsigned)s->owner_uid);
	printf("  command: ");
	for (a = s->argv; a != NULL && *a != NULL; a++)
		printf(" %s", CLEAN(*a));
	putchar('\n');
	if (s->pid > 0)
		printf("  pid:      %d, up %s\n", (int)s->pid,
		    ctl_duration(s->uptime_ms, buf, sizeof buf));
	printf("  cpu:      %" PRIu64 " ms user, %" PRIu64 " ms system, %" PRIu64
	    " ms guest\n", s->metrics.cpu_user_ms, s->metrics.cpu_system_ms,
	    s->metrics.cpu_guest_ms);
	printf("  memory:   rss %s, max %s\n", ctl_size(s->metrics.rss_kb, buf,
	    sizeof buf), ctl_size(s->metrics.rss_max_kb, buf2, sizeof buf2));
	if (s->limits != NULL && s->limits[0] != NULL) {
		printf("  limits:  ");
		for (a = s->limits; *a != NULL; a++)
			printf(" %s", CLEAN(*a));
		putchar('\n');
	}
	if (s->has_exit) {
		const struct ward_exit *x = &s->exit;

		printf("  died:     %s", x->death_reason);
		if (x->has_exit_code)
			printf(", exit code %d", x->exit_code);
		if (x->exit_signal)
			printf(", %s%s", x->signal_name,
			    x->core_dumped ? " (core dumped)" : "");
		printf(" after %s\n", ctl_duration(x->uptime_ms, buf, sizeof buf));
		if (x->failure_info)
			printf("  info:     %s\n", CLEAN(x->failure_info));
		if (x->failure_reason)
			printf("  failure:  %s\n", CLEAN(x->failure_reason));
		if (x->killed_by && x->has_killed_by_uid)
			printf("  by:       %s (uid %u)\n", CLEAN(x->killed_by),
			    (unsigned)x->killed_by_uid);
		else if (x->killed_by)
			printf("  by:       %s\n", CLEAN(x->killed_by));
		if (x->run)
			printf("  run:      %" PRIu64 "\n", x->run);
		if (x->dump_dir)
			printf("  dumps:    %s\n", CLEAN(x->dump_dir));
		if (x->post_death != NULL)
			ctl_status_post_death(x);
	}
}

/*
 * supervisorctl's statuses: 0 all named running, 3 one is not (stopped,
 * exited, fatal: a program backing off still counts as running), 4 a
 * name names nothing ("NAME: ERROR (no such process)" on stdout, as
 * supervisorctl prints it) or wardd cannot be reached.
 */
static int
ctl_status_exec(struct ctl *c, int argc, char **argv)
{
	struct ward_status *v;
	struct ctl_sel sel;
	size_t n = 0, i;
	int rc, worst = 0, lng = 0, ch;

	while ((ch = ctl_getopt(argc, argv, "l", NULL)) != -1) {
		if (ch == '?')
			return EX_USAGE;
		lng = 1;
	}
	if ((ch = ctl_optnames(argc, argv)) == -1)
		return EX_USAGE;
	if ((rc = ctl_select(c, argc - ch, argv + ch, &sel)) != 0)
		return rc == EX_UNREACHABLE ? EX_STATUS_UNKNOWN : rc;
	if ((v = calloc(sel.n + 1, sizeof *v)) == NULL) {
		ctl_select_free(&sel);
		return EX_REFUSED;
	}
	for (i = 0; i < sel.n; i++) {
		if (sel.v[i].s == NULL) {
			ctl_select_missing(&sel, &sel.v[i]);
			worst = EX_STATUS_UNKNOWN;
			continue;
		}
		v[n++] = *sel.v[i].s;	/* shallow: sel owns the strings */
		if (ctl_select_stopped(sel.v[i].s) && worst == 0)
			worst = EX_STATUS_STOPPED;
	}
	if (c->json) {
		int one = argc - ch == 1 && n == 1 && !sel.v[0].group &&
		    strcmp(argv[ch], "all") != 0;

		if ((rc = ctl_status_json(c, v, n, !one)) != 0)
			worst = rc;
	} else if (lng)
		for (i = 0; i < n; i++)
			ctl_status_long(c, &v[i]);
	else if (n > 0 || sel.nall == 0)
		ctl_status_table(c, v, n);
	free(v);
	ctl_select_free(&sel);
	return worst;
}

const struct ctl_entry ctl_status_entry = {
	.name = "status",
	.usage = "status [-l] [NAME|ID|GROUP:*|all ...]",
	.help = "Show instances: a table, or with -l every detail.",
	.exec = ctl_status_exec,
};
