/*
 * ctl-group.c: the commands that act on names, groups (GROUP:*) and all
 * as supervisorctl's do, with its per-name results ("NAME: stopped",
 * "NAME: ERROR (no such process)") and its exit statuses: start, stop and
 * restart (which wait for each death), signal, pid. One name failing does
 * not stop the others; the status says the worst. Calls the shared core
 * (ctl.h: ctl-names.c reads the names) and libward.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

/* The worse of two statuses: a lost wardd first, then the highest. */
static int
ctl_group_worst(int a, int b)
{
	if (a == EX_UNREACHABLE || b == EX_UNREACHABLE)
		return EX_UNREACHABLE;
	return a > b ? a : b;
}

/* method on one instance by id, with its signal or timeout (-1: none). */
static int
ctl_group_call(struct ctl *c, const char *method, const struct ward_status *s,
    const char *sig, long timeout, struct ward_reply *r)
{
	struct ward_params p;
	char id[24];
	int rc;

	snprintf(id, sizeof id, "%" PRIu64, s->id);
	ward_params_init(&p);
	ctl_pack_ident(&p.pk, id, (sig != NULL) + (timeout >= 0));
	if (sig != NULL) {
		ctl_pack_str(&p.pk, "signal");
		if (ctl_is_id(sig))
			msgpack_pack_uint64(&p.pk, strtoull(sig, NULL, 10));
		else
			ctl_pack_str(&p.pk, sig);
	}
	if (timeout >= 0) {
		ctl_pack_str(&p.pk, "timeout_ms");
		msgpack_pack_uint64(&p.pk, timeout);
	}
	if (ctl_connect(c) == -1)
		return EX_UNREACHABLE;
	rc = ward_call(c->w, method, p.sbuf.data, p.sbuf.size, r);
	ward_params_free(&p);
	if (rc == -1) {
		ward_reply_free(r);
		return strcmp(ward_error(c->w)->code, "disconnected") == 0 ?
		    ctl_failed(c, s->name) : EX_REFUSED;
	}
	return 0;
}

/* "NAME: ERROR (wardd's message)" after a refused call, in the flags'
 * words ('timeout_ms' is --timeout) as ctl_failed gives them. */
static void
ctl_group_error(struct ctl *c, const char *name)
{
	char buf[1024];

	printf("%s: ERROR (%s)\n", name, c->w ? CLEAN(ctl_words_rewrite(
	    ward_error(c->w)->message, c->words, buf, sizeof buf)) : "no wardd");
}

/* ---- start */

/*
 * Start each that is not running. supervisorctl: "already started" is no
 * failure; no such process is 1, no such group 2 (INVALID_ARGS).
 */
static int
ctl_group_start(struct ctl *c, struct ctl_sel *sel)
{
	struct ward_reply r;
	size_t i;
	int rc, worst = 0;

	for (i = 0; i < sel->n; i++) {
		const struct ctl_pick *k = &sel->v[i];

		if (k->s == NULL) {
			ctl_select_missing(sel, k);
			worst = ctl_group_worst(worst, k->group ? EX_USAGE :
			    EX_REFUSED);
			continue;
		}
		if (strcmp(k->s->state, "running") == 0) {
			if (!k->many)
				printf("%s: ERROR (already started)\n", k->s->name);
			continue;
		}
		if ((rc = ctl_group_call(c, "instance.start", k->s, NULL, -1,
		    &r)) != 0) {
			if (rc == EX_UNREACHABLE)
				return rc;
			ctl_group_error(c, k->s->name);
			worst = ctl_group_worst(worst, EX_REFUSED);
			continue;
		}
		ward_reply_free(&r);
		printf("%s: started\n", k->s->name);
	}
	return worst;
}

/* ---- stop: wait for each death, as supervisorctl does */

/*
 * Stop each running one (a program backing off or waiting: call its start
 * off) and wait for the deaths. supervisorctl: "not running" is no failure.
 */
static int
ctl_group_stop(struct ctl *c, struct ctl_sel *sel, long timeout)
{
	struct ward_event ev;
	struct ward_reply r;
	msgpack_unpacked raw;
	uint64_t *ids;
	size_t i, nids = 0;
	int rc, worst = 0, waiting = 0;

	if ((ids = calloc(sel->n + 1, sizeof *ids)) == NULL)
		return EX_REFUSED;
	for (i = 0; i < sel->n; i++) {
		if (sel->v[i].s != NULL && strcmp(sel->v[i].s->state, "running") == 0)
			ids[nids++] = sel->v[i].s->id;
	}
	/* Subscribe before stopping, so no death can slip past. */
	if (nids > 0 && ward_events_subscribe(c->w, ids, nids,
	    (const char *const[]){ "died", NULL }) == -1) {
		free(ids);
		return ctl_failed(c, NULL);
	}
	free(ids);
	for (i = 0; i < sel->n; i++) {
		const struct ctl_pick *k = &sel->v[i];
		/* A program backing off or waiting: its start called off. */
		int called_off = k->s != NULL && !ctl_select_stopped(k->s) &&
		    strcmp(k->s->state, "running") != 0;

		if (k->s == NULL) {
			ctl_select_missing(sel, k);
			worst = ctl_group_worst(worst, EX_REFUSED);
			continue;
		}
		if (strcmp(k->s->state, "running") != 0 && !called_off) {
			if (!k->many)
				printf("%s: ERROR (not running)\n", k->s->name);
			continue;
		}
		rc = ctl_group_call(c, "instance.stop", k->s, NULL, called_off ?
		    -1 : timeout, &r);
		if (rc == EX_UNREACHABLE)
			return rc;
		if (rc != 0) {
			ctl_group_error(c, k->s->name);
			worst = ctl_group_worst(worst, EX_REFUSED);
			continue;
		}
		ward_reply_free(&r);
		if (called_off)	/* ward says which start it called off */
			printf("%s: stopped (its %s start called off)\n",
			    k->s->name, k->s->program_state);
		else
			waiting++;
	}
	msgpack_unpacked_init(&raw);
	while (waiting > 0) {
		if (ward_event_next_raw(c->w, &raw, -1) != 1) {
			msgpack_unpacked_destroy(&raw);
			return ctl_failed(c, NULL);
		}
		if (ward_event_decode(&raw.data, &ev) == 0 &&
		    strcmp(ev.type, "died") == 0) {
			waiting--;
			/* --json: the event of each death, as sent. */
			if (c->json)
				ctl_json_line(&raw.data.via.array.ptr[2].via.array.ptr[0]);
			else
				printf("%s: stopped\n", ev.name);
			fflush(stdout);
		}
		ward_event_free(&ev);
	}
	msgpack_unpacked_destroy(&raw);
	if (nids > 0)
		ward_events_unsubscribe(c->w);
	return worst;
}

/* [--timeout MS]: -1 when not given, or EX_USAGE's -2. */
static long
ctl_group_timeout(int argc, char **argv, int *first)
{
	static const struct option lopts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 }
	};
	long timeout = -1;
	char *end;
	int ch;

	while ((ch = ctl_getopt(argc, argv, "t:", lopts)) != -1) {
		if (ch == '?')
			return -2;
		timeout = strtol(optarg, &end, 10);
		if (*end != '\0' || timeout < 0 || *optarg == '\0') {
			ctl_usage_error("%s: --timeout takes milliseconds",
			    argv[-1]);
			return -2;
		}
	}
	if ((*first = ctl_optnames(argc, argv)) == -1)
		return -2;
	return timeout;
}

/*
 * start, stop, restart: names after the options (at least one); the
 * selection is made once, so restart starts what it stopped.
 */
static int
ctl_group_exec(struct ctl *c, int argc, char **argv, int stop, int start)
{
	struct ctl_sel sel;
	long timeout = -1;
	int first, rc = 0;

	if (stop) {
		if ((timeout = ctl_group_timeout(argc, argv, &first)) == -2)
			return EX_USAGE;
	} else if (ctl_noopts(argc, argv, &first) != 0)
		return EX_USAGE;
	if (first >= argc) {
		/* supervisorctl: 2 for start, 1 for stop and restart. */
		fprintf(stderr, "wardctl: %s requires a process name (see: "
		    "wardctl %s --help)\n", argv[-1], argv[-1]);
		return stop ? EX_REFUSED : EX_USAGE;
	}
	if ((rc = ctl_select(c, argc - first, argv + first, &sel)) != 0)
		return rc;
	if (stop)
		rc = ctl_group_stop(c, &sel, timeout);
	if (start && rc != EX_UNREACHABLE) {
		/* restart: each starts from its state after the stop. */
		size_t i;

		for (i = 0; stop && i < sel.n; i++) {
			if (sel.v[i].s != NULL) {
				free(sel.v[i].s->state);
				sel.v[i].s->state = strdup("dead");
			}
		}
		rc = ctl_group_worst(rc, ctl_group_start(c, &sel));
	}
	ctl_select_free(&sel);
	return rc;
}

static int
ctl_start_exec(struct ctl *c, int argc, char **argv)
{
	return ctl_group_exec(c, argc, argv, 0, 1);
}

const struct ctl_entry ctl_start_entry = {
	.name = "start",
	.usage = "start NAME|ID|GROUP:*|all ...",
	.help = "Start instances that are not running (again, if they died).",
	.exec = ctl_start_exec,
};

static int
ctl_stop_exec(struct ctl *c, int argc, char **argv)
{
	return ctl_group_exec(c, argc, argv, 1, 0);
}

const struct ctl_entry ctl_stop_entry = {
	.name = "stop",
	.usage = "stop [--timeout MS] NAME|ID|GROUP:*|all ...",
	.help = "SIGTERM, then SIGKILL after the timeout; waits until each is "
	    "dead.",
	.exec = ctl_stop_exec,
};

static int
ctl_restart_exec(struct ctl *c, int argc, char **argv)
{
	return ctl_group_exec(c, argc, argv, 1, 1);
}

const struct ctl_entry ctl_restart_entry = {
	.name = "restart",
	.usage = "restart [--timeout MS] NAME|ID|GROUP:*|all ...",
	.help = "Stop (if running) and start again.",
	.exec = ctl_restart_exec,
};

/* ---- signal SIG NAME...: supervisorctl's; kill is ward's own */

static int
ctl_signal_exec(struct ctl *c, int argc, char **argv)
{
	struct ward_reply r;
	struct ctl_sel sel;
	const char *sig;
	size_t i;
	int first, rc, worst = 0;

	if (ctl_noopts(argc, argv, &first) != 0)
		return EX_USAGE;
	if (argc - first < 2) {
		/* supervisorctl: 1. */
		fprintf(stderr, "wardctl: signal requires a signal name and a "
		    "process name (see: wardctl signal --help)\n");
		return EX_REFUSED;
	}
	sig = argv[first];
	if ((rc = ctl_select(c, argc - first - 1, argv + first + 1, &sel)) != 0)
		return rc;
	for (i = 0; i < sel.n; i++) {
		const struct ctl_pick *k = &sel.v[i];

		if (k->s == NULL) {
			ctl_select_missing(&sel, k);
			worst = ctl_group_worst(worst, EX_REFUSED);
		} else if (strcmp(k->s->state, "running") != 0) {
			if (k->many)
				continue;
			printf("%s: ERROR (not running)\n", k->s->name);
			worst = ctl_group_worst(worst, EX_NOT_RUNNING);
		} else if ((rc = ctl_group_call(c, "instance.kill", k->s, sig, -1,
		    &r)) == EX_UNREACHABLE) {
			worst = rc;
			break;
		} else if (rc != 0) {
			/* wardd refuses a bad signal as invalid_argument. */
			if (strcmp(ward_error(c->w)->code, "invalid_argument") == 0)
				printf("%s: ERROR (bad signal name)\n", k->s->name);
			else
				ctl_group_error(c, k->s->name);
			worst = ctl_group_worst(worst, EX_REFUSED);
		} else {
			ward_reply_free(&r);
			printf("%s: signalled\n", k->s->name);
		}
	}
	ctl_select_free(&sel);
	return worst;
}

const struct ctl_entry ctl_signal_entry = {
	.name = "signal",
	.usage = "signal SIGNAL NAME|ID|GROUP:*|all ...",
	.help = "Send a signal to each named instance (supervisorctl's).",
	.exec = ctl_signal_exec,
};

/* ---- pid [NAME|all]: none, wardd's own */

static int
ctl_pid_exec(struct ctl *c, int argc, char **argv)
{
	struct ward_hello h;
	struct ctl_sel sel;
	size_t i;
	int first, rc, worst = 0, every = 0;

	if (ctl_noopts(argc, argv, &first) != 0)
		return EX_USAGE;
	for (i = first; i < (size_t)argc; i++)
		every |= strcmp(argv[i], "all") == 0;
	if (first == argc) {
		if (ctl_connect(c) == -1)
			return EX_UNREACHABLE;
		if (ward_hello(c->w, &h) == -1)
			return ctl_failed(c, NULL);
		printf("%d\n", (int)h.pid);
		return 0;
	}
	if ((rc = ctl_select(c, argc - first, argv + first, &sel)) != 0)
		return rc;
	for (i = 0; i < sel.n; i++) {
		const struct ctl_pick *k = &sel.v[i];

		if (k->s == NULL) {
			printf("No such process %s\n", k->arg);
			worst = ctl_group_worst(worst, EX_REFUSED);
			continue;
		}
		printf("%d\n", (int)k->s->pid);
		/* supervisorctl: pid all is 0 whatever runs. */
		if (k->s->pid == 0 && !every)
			worst = ctl_group_worst(worst, EX_NOT_RUNNING);
	}
	ctl_select_free(&sel);
	return worst;
}

const struct ctl_entry ctl_pid_entry = {
	.name = "pid",
	.usage = "pid [NAME|ID|GROUP:*|all ...]",
	.help = "Print each instance's pid (0: not running); none, wardd's.",
	.exec = ctl_pid_exec,
};
