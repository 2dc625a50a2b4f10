/*
 * ctl-instance.c: the commands that act on instances by ward's own
 * habits: kill, suspend, resume, remove, payload, and history, how they
 * died (start, stop and restart, supervisorctl's, are ctl-group.c's; run,
 * which builds the whole spec from flags, is ctl-run.c's). Calls the
 * shared core (ctl.h) and libward.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
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

	if (ctl_noopts(argc, argv, &i) != 0)
		return EX_USAGE;
	if (i == argc)
		return EX_USAGE;
	for (; i < argc; i++) {
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

/* ---- the simple ones */

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
	int i, ch, rc, worst = 0;

	while ((ch = ctl_getopt(argc, argv, "s:", NULL)) != -1) {
		if (ch == '?')
			return EX_USAGE;
		sig = optarg;
	}
	if ((i = ctl_optnames(argc, argv)) == -1 || i == argc)
		return EX_USAGE;
	for (; i < argc; i++) {
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
	int rc, first;

	if (ctl_noopts(argc, argv, &first) != 0 || first != 0 || argc != 2)
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
	int rc, ch;
	char *end;

	while ((ch = ctl_getopt(argc, argv, "n:", NULL)) != -1) {
		if (ch == '?')
			return EX_USAGE;
		limit = strtol(optarg, &end, 10);
		if (*end != '\0' || limit < 1 || *optarg == '\0')
			return ctl_usage_error("history: -n takes a count (1 or "
			    "more), not '%s'", optarg);
	}
	if ((ch = ctl_optnames(argc, argv)) == -1)
		return EX_USAGE;
	if (argc - ch > 1)
		return ctl_usage_error("history: one NAME|ID at most");
	if (argc - ch == 1)
		ident = argv[ch];
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
