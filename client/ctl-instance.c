/*
 * ctl-instance.c: the commands that act on instances (run, which builds
 * the whole spec from flags, is ctl-run.c's): start, stop and restart
 * (which wait for each death), kill, suspend, resume, remove, payload,
 * and history, how they died. Calls the shared core (ctl.h) and libward.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"

/* method {id|name} for each ident; "NAME: done" lines. */
static int
ctl_instance_each(struct ctl *c, int argc, char **argv, const char *method,
    const char *done)
{
	struct ward_params p;
	int i, rc, worst = 0;

	if (argc < 1)
		return EX_USAGE;
	for (i = 0; i < argc; i++) {
		ward_params_init(&p);
		ctl_pack_ident(&p.pk, argv[i], 0);
		if ((rc = ctl_call(c, method, &p, argv[i], NULL)) != 0) {
			if (rc > worst)
				worst = rc;
			if (rc == EX_UNREACHABLE)
				break;
			continue;
		}
		if (!c->json)
			printf("%s: %s\n", argv[i], done);
	}
	return worst;
}

/* ---- stop, restart: wait for each death, as supervisorctl does */

/*
 * Stop each (a program waiting to start: call that off) and wait for the
 * deaths; for restart, then start each again.
 */
static int
ctl_instance_stop_wait(struct ctl *c, int argc, char **argv, int restart)
{
	struct ward_status *v;
	struct ward_params p;
	struct ward_event ev;
	struct ward_reply r;
	msgpack_unpacked raw;
	uint64_t *ids;
	long timeout = -1;
	int i, rc = 0, waiting = 0, nids = 0;
	char *end;

	if (argc >= 2 && strcmp(argv[0], "--timeout") == 0) {
		timeout = strtol(argv[1], &end, 10);
		if (*end != '\0' || timeout < 0)
			return ctl_usage_error("--timeout takes milliseconds");
		argc -= 2;
		argv += 2;
	}
	if (argc < 1)
		return EX_USAGE;
	v = calloc(argc, sizeof *v);
	ids = calloc(argc, sizeof *ids);
	if (v == NULL || ids == NULL || (rc = ctl_resolve(c, argc, argv, v)) != 0) {
		free(v);
		free(ids);
		return rc ? rc : EX_REFUSED;
	}
	for (i = 0; i < argc; i++) {
		if (strcmp(v[i].state, "running") == 0)
			ids[nids++] = v[i].id;
	}
	/* Subscribe before stopping, so no death can slip past. */
	if (nids > 0 && ward_events_subscribe(c->w, ids, nids,
	    (const char *const[]){ "died", NULL }) == -1) {
		rc = ctl_failed(c, NULL);
		goto out;
	}
	for (i = 0; i < argc; i++) {
		if (strcmp(v[i].state, "running") != 0) {
			if (restart)
				continue;
			/* A program backing off or waiting: call its start off. */
			if (v[i].program_state != NULL &&
			    (strcmp(v[i].program_state, "backoff") == 0 ||
			    strcmp(v[i].program_state, "waiting") == 0)) {
				ward_params_init(&p);
				ctl_pack_ident(&p.pk, argv[i], 0);
				if (ctl_call(c, "instance.stop", &p, argv[i], NULL) != 0)
					rc = EX_REFUSED;
				else if (!c->json)
					printf("%s: stopped (its %s start called off)\n",
					    v[i].name, v[i].program_state);
				continue;
			}
			fprintf(stderr, "wardctl: %s: not running\n", v[i].name);
			rc = EX_REFUSED;
			continue;
		}
		ward_params_init(&p);
		ctl_pack_ident(&p.pk, argv[i], timeout >= 0);
		if (timeout >= 0) {
			ctl_pack_str(&p.pk, "timeout_ms");
			msgpack_pack_uint64(&p.pk, timeout);
		}
		if (ctl_call(c, "instance.stop", &p, argv[i], &r) == 0) {
			ward_reply_free(&r);
			waiting++;
		} else
			rc = EX_REFUSED;
	}
	msgpack_unpacked_init(&raw);
	while (waiting > 0) {
		if (ward_event_next_raw(c->w, &raw, -1) != 1) {
			rc = ctl_failed(c, NULL);
			msgpack_unpacked_destroy(&raw);
			goto out;
		}
		if (ward_event_decode(&raw.data, &ev) == 0 &&
		    strcmp(ev.type, "died") == 0) {
			waiting--;
			/* --json: the exit record of each death, as sent. */
			if (c->json && !restart)
				ctl_json_line(&raw.data.via.array.ptr[2].via.array.ptr[0]);
			else if (!restart)
				printf("%s: stopped (%s%s%s)\n", ev.name,
				    ev.exit.death_reason, ev.exit.signal_name ? ", " : "",
				    ev.exit.signal_name ? ev.exit.signal_name : "");
		}
		ward_event_free(&ev);
	}
	msgpack_unpacked_destroy(&raw);
	if (nids > 0)
		ward_events_unsubscribe(c->w);
	if (restart) {
		for (i = 0; i < argc; i++) {
			ward_params_init(&p);
			ctl_pack_ident(&p.pk, argv[i], 0);
			if (ctl_call(c, "instance.start", &p, argv[i], NULL) != 0)
				rc = EX_REFUSED;
			else if (!c->json)
				printf("%s: restarted\n", v[i].name);
		}
	}
out:
	ward_status_list_free(v, argc);
	free(ids);
	return rc;
}

static int
ctl_stop_exec(struct ctl *c, int argc, char **argv)
{
	return ctl_instance_stop_wait(c, argc, argv, 0);
}

const struct ctl_entry ctl_stop_entry = {
	.name = "stop",
	.usage = "stop [--timeout MS] NAME|ID ...",
	.help = "SIGTERM, then SIGKILL after the timeout; waits until each is "
	    "dead.",
	.exec = ctl_stop_exec,
};

static int
ctl_restart_exec(struct ctl *c, int argc, char **argv)
{
	return ctl_instance_stop_wait(c, argc, argv, 1);
}

const struct ctl_entry ctl_restart_entry = {
	.name = "restart",
	.usage = "restart [--timeout MS] NAME|ID ...",
	.help = "Stop (if running) and start again.",
	.exec = ctl_restart_exec,
};

/* ---- the simple ones */

static int
ctl_start_exec(struct ctl *c, int argc, char **argv)
{
	return ctl_instance_each(c, argc, argv, "instance.start", "started");
}

const struct ctl_entry ctl_start_entry = {
	.name = "start",
	.usage = "start NAME|ID ...",
	.help = "Start instances that are not running (again, if they died).",
	.exec = ctl_start_exec,
};

static int
ctl_suspend_exec(struct ctl *c, int argc, char **argv)
{
	return ctl_instance_each(c, argc, argv, "instance.suspend", "suspended");
}

const struct ctl_entry ctl_suspend_entry = {
	.name = "suspend",
	.usage = "suspend NAME|ID ...",
	.help = "SIGSTOP the instance's processes.",
	.exec = ctl_suspend_exec,
};

static int
ctl_resume_exec(struct ctl *c, int argc, char **argv)
{
	return ctl_instance_each(c, argc, argv, "instance.resume", "resumed");
}

const struct ctl_entry ctl_resume_entry = {
	.name = "resume",
	.usage = "resume NAME|ID ...",
	.help = "SIGCONT the instance's processes.",
	.exec = ctl_resume_exec,
};

static int
ctl_remove_exec(struct ctl *c, int argc, char **argv)
{
	return ctl_instance_each(c, argc, argv, "instance.remove", "removed");
}

const struct ctl_entry ctl_remove_entry = {
	.name = "remove",
	.usage = "remove NAME|ID ...",
	.help = "Forget instances that are not running.",
	.exec = ctl_remove_exec,
};

static int
ctl_kill_exec(struct ctl *c, int argc, char **argv)
{
	struct ward_params p;
	const char *sig = "KILL";
	int i, rc, worst = 0;

	if (argc >= 2 && strcmp(argv[0], "-s") == 0) {
		sig = argv[1];
		argc -= 2;
		argv += 2;
	}
	if (argc < 1)
		return EX_USAGE;
	for (i = 0; i < argc; i++) {
		ward_params_init(&p);
		ctl_pack_ident(&p.pk, argv[i], 1);
		ctl_pack_str(&p.pk, "signal");
		/* Names go as they are: wardd knows them; numbers as numbers. */
		if (ctl_is_id(sig))
			msgpack_pack_uint64(&p.pk, strtoull(sig, NULL, 10));
		else
			ctl_pack_str(&p.pk, sig);
		if ((rc = ctl_call(c, "instance.kill", &p, argv[i], NULL)) != 0)
			worst = rc > worst ? rc : worst;
		else if (!c->json)
			printf("%s: sent %s\n", argv[i], sig);
	}
	return worst;
}

const struct ctl_entry ctl_kill_entry = {
	.name = "kill",
	.usage = "kill [-s SIGNAL] NAME|ID ...",
	.help = "Send a signal (name or number; default KILL).",
	.exec = ctl_kill_exec,
};

static int
ctl_payload_exec(struct ctl *c, int argc, char **argv)
{
	struct ward_params p;
	int rc;

	if (argc != 2)
		return EX_USAGE;
	ward_params_init(&p);
	ctl_pack_ident(&p.pk, argv[0], 1);
	ctl_pack_str(&p.pk, "state");
	ctl_pack_str(&p.pk, argv[1]);
	if ((rc = ctl_call(c, "instance.payload", &p, argv[0], NULL)) == 0 &&
	    !c->json)
		printf("%s: payload %s\n", argv[0], argv[1]);
	return rc;
}

const struct ctl_entry ctl_payload_entry = {
	.name = "payload",
	.usage = "payload NAME|ID STATE",
	.help = "Move the payload state forward: started, ready or finished.",
	.exec = ctl_payload_exec,
};

static int
ctl_history_exec(struct ctl *c, int argc, char **argv)
{
	struct ward_params p;
	struct ward_reply r;
	struct ward_exit x;
	long limit = 0;
	const char *ident = NULL;
	char when[32], up[32], rss[16];
	uint32_t i;
	int rc;

	for (; argc > 0; argc--, argv++) {
		if (strcmp(argv[0], "-n") == 0 && argc > 1) {
			limit = atol(argv[1]);
			argc--;
			argv++;
		} else if (ident == NULL && argv[0][0] != '-')
			ident = argv[0];
		else
			return EX_USAGE;
	}
	ward_params_init(&p);
	msgpack_pack_map(&p.pk, (ident != NULL) + (limit > 0));
	if (ident != NULL) {
		ctl_pack_str(&p.pk, ctl_is_id(ident) ? "id" : "name");
		if (ctl_is_id(ident))
			msgpack_pack_uint64(&p.pk, strtoull(ident, NULL, 10));
		else
			ctl_pack_str(&p.pk, ident);
	}
	if (limit > 0) {
		ctl_pack_str(&p.pk, "limit");
		msgpack_pack_uint64(&p.pk, limit);
	}
	if ((rc = ctl_call(c, "instance.history", &p, NULL, &r)) != 0)
		return rc;
	if (c->json) {
		ctl_json_line(&r.result);
		ward_reply_free(&r);
		return 0;
	}
	printf("%s%-19s %-16s %6s %4s %-20s %-10s %6s %8s %6s %s%s\n", C_BOLD(c),
	    "DIED", "NAME", "ID", "RUN", "REASON", "BY", "EXIT", "UPTIME",
	    "RSSMAX", "INFO", C_RESET(c));
	for (i = 0; r.result.type == MSGPACK_OBJECT_ARRAY &&
	    i < r.result.via.array.size; i++) {
		time_t t;
		char exit[24], run[24], by[32];

		ward_exit_decode(&r.result.via.array.ptr[i], &x);
		t = x.died_at_ms / 1000;
		strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&t));
		if (x.exit_signal)
			snprintf(exit, sizeof exit, "%s", x.signal_name);
		else if (x.has_exit_code)
			snprintf(exit, sizeof exit, "%d", x.exit_code);
		else
			snprintf(exit, sizeof exit, "-");
		/* issue 13: which run, who ended it ("-": nobody said). */
		snprintf(run, sizeof run, x.run ? "%" PRIu64 : "-", x.run);
		if (x.has_killed_by_uid)
			snprintf(by, sizeof by, "%s:%u", CLEAN(x.killed_by),
			    (unsigned)x.killed_by_uid);
		else
			snprintf(by, sizeof by, "%s", x.killed_by ?
			    CLEAN(x.killed_by) : "-");
		printf("%-19s %-16s %6" PRIu64 " %4s %s%-20s%s %-10s %6s %8s %6s "
		    "%s\n", when, x.name, x.id, run, strcmp(x.death_reason,
		    "SHUTDOWN") ? C_RED(c) : "", x.death_reason, C_RESET(c), by,
		    exit,
		    ctl_duration(x.uptime_ms, up, sizeof up),
		    ctl_size(x.metrics.rss_max_kb, rss, sizeof rss),
		    CLEAN(x.failure_info ? x.failure_info : x.failure_reason));
		ward_exit_free(&x);
	}
	ward_reply_free(&r);
	return 0;
}

const struct ctl_entry ctl_history_entry = {
	.name = "history",
	.usage = "history [-n N] [NAME|ID]",
	.help = "How instances died, oldest first.",
	.exec = ctl_history_exec,
};
