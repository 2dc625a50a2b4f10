/*
 * ctl-instance.c: the commands that act on instances by ward's own
 * habits: run (which builds the whole spec from options), kill, suspend,
 * resume, remove, payload, and history, how they died (start, stop and
 * restart, supervisorctl's, are ctl-group.c's). Calls the shared core (ctl.h) and libward.
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

/* "alice" or "1000" or "1000:100" -> "UID:GID" (names resolved here). */
static int
ctl_instance_user(const char *u, char *out, size_t len)
{
	struct passwd *pw;

	if (isdigit((unsigned char)u[0])) {
		snprintf(out, len, "%s", u);
		return 0;
	}
	if ((pw = getpwnam(u)) == NULL)
		return -1;
	snprintf(out, len, "%u:%u", (unsigned)pw->pw_uid, (unsigned)pw->pw_gid);
	return 0;
}

/* path made absolute against the current directory (it may not exist). */
static int
ctl_instance_abs_path(const char *path, char *out, size_t len)
{
	char here[PATH_MAX];

	if (path[0] == '/')
		return (size_t)snprintf(out, len, "%s", path) < len ? 0 : -1;
	if (getcwd(here, sizeof here) == NULL)
		return -1;
	return (size_t)snprintf(out, len, "%s/%s", here, path) < len ? 0 : -1;
}

/*
 * The hooks of wardctl run (--pre-start, --post-death, --sidecar): each
 * a command line for /bin/sh -c, as a shell user writes it.
 */
struct ctl_run_hooks {
	const char	*pre, *post, *side[8];
	int		 nside;
};

static void
ctl_run_pack_sh(msgpack_packer *pk, const char *cmd)
{
	msgpack_pack_array(pk, 3);
	ctl_pack_str(pk, "/bin/sh");
	ctl_pack_str(pk, "-c");
	ctl_pack_str(pk, cmd);
}

/* One hook option o with its value a: 1 taken, 0 not a hook's, else
 * the usage error's exit status. */
static int
ctl_run_hook_opt(struct ctl_run_hooks *h, const char *o, const char *a)
{
	if (strcmp(o, "--pre-start") == 0)
		h->pre = a;
	else if (strcmp(o, "--post-death") == 0)
		h->post = a;
	else if (strcmp(o, "--sidecar") != 0)
		return 0;
	else if (h->nside == 8)
		return ctl_usage_error("run: at most 8 --sidecar");
	else
		h->side[h->nside++] = a;
	return 1;
}

static void
ctl_run_pack_hooks(msgpack_packer *pk, const struct ctl_run_hooks *h)
{
	int k;

	if (h->pre != NULL) {
		ctl_pack_str(pk, "pre_start");
		ctl_run_pack_sh(pk, h->pre);
	}
	if (h->post != NULL) {
		ctl_pack_str(pk, "post_death");
		ctl_run_pack_sh(pk, h->post);
	}
	if (h->nside > 0) {
		ctl_pack_str(pk, "sidecars");
		msgpack_pack_array(pk, h->nside);
		for (k = 0; k < h->nside; k++)
			ctl_run_pack_sh(pk, h->side[k]);
	}
}

static int
ctl_run_exec(struct ctl *c, int argc, char **argv)
{
	struct ctl_run_hooks hooks = { NULL, NULL, { NULL }, 0 };
	/* env: --env's, then the caller's HOME and the like, NULL-terminated. */
	const char *name, *env[256 + WARD_CALLER_ENV_MAX + 1], *cwd = NULL;
	const char *profile = NULL, *limits[64];
	struct { int code; const char *reason; } codes[256];
	char user[64] = "", cwdbuf[PATH_MAX], exe[PATH_MAX], *eq;
	int i, nenv = 0, ncodes = 0, detect = 0, clean = 0, control = 0, k;
	int nlimits = 0;
	long timeout = 0;
	/* Captured output: --capture, --stdout-log, --stderr-log. */
	char logs[2][PATH_MAX] = { "", "" };
	int capture = 0;
	struct ward_params p;
	struct ward_reply r;
	size_t nkeys;
	int rc;

	if (argc < 1 || argv[0][0] == '-')
		return ctl_usage_error("run: give the instance a NAME first");
	name = argv[0];
	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		const char *o = argv[i], *a = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(o, "--detect-hangup") == 0) {
			detect = 1;
			continue;
		}
		if (strcmp(o, "--capture") == 0) {
			capture = 1;
			continue;
		}
		if (strcmp(o, "--clean-env") == 0) {
			clean = 1;
			continue;
		}
		if (strcmp(o, "--control") == 0) {	/* wardctl call */
			control = 1;
			continue;
		}
		if (o[0] != '-')
			return ctl_usage_error("run: put the command after --, as "
			    "in: wardctl run NAME -- %s ...", o);
		if (a == NULL)
			return ctl_usage_error("run: %s needs a value", o);
		i++;
		if (strcmp(o, "--hangup-timeout") == 0) {
			timeout = strtol(a, &eq, 10);
			if (*eq != '\0' || timeout < 1)
				return ctl_usage_error("run: --hangup-timeout takes "
				    "milliseconds");
			detect = 1;
		} else if (strcmp(o, "--exit-code") == 0) {
			if ((eq = strchr(a, '=')) == NULL || ncodes == 256 ||
			    !isdigit((unsigned char)a[0]))
				return ctl_usage_error("run: --exit-code takes N=REASON");
			codes[ncodes].code = atoi(a);
			codes[ncodes++].reason = eq + 1;
		} else if (strcmp(o, "--env") == 0) {
			if (strchr(a, '=') == NULL || nenv == 256)
				return ctl_usage_error("run: --env takes K=V");
			env[nenv++] = a;
		} else if (strcmp(o, "--cwd") == 0) {
			if (realpath(a, cwdbuf) == NULL)
				return ctl_usage_error("run: --cwd %s: %s", a,
				    strerror(errno));
			cwd = cwdbuf;
		} else if (strcmp(o, "--profile") == 0) {
			profile = a;
		} else if (strcmp(o, "--limit") == 0) {
			if (strchr(a, '=') == NULL || nlimits == 64)
				return ctl_usage_error("run: --limit takes KEY=VALUE "
				    "(memory_max=512M, cpu_max=50%%, cpus=0-1, ...)");
			limits[nlimits++] = a;
		} else if (strcmp(o, "--user") == 0) {
			if (ctl_instance_user(a, user, sizeof user) == -1)
				return ctl_usage_error("run: no user '%s'", a);
		} else if (strcmp(o, "--stdout-log") == 0 ||
		    strcmp(o, "--stderr-log") == 0) {
			/* wardd wants absolute paths: relative to here. */
			k = strcmp(o, "--stderr-log") == 0;
			if (ctl_instance_abs_path(a, logs[k], PATH_MAX) == -1)
				return ctl_usage_error("run: %s %s: path too long",
				    o, a);
		} else if ((rc = ctl_run_hook_opt(&hooks, o, a)) != 1)
			return rc == 0 ? ctl_usage_error("run: unknown option %s",
			    o) : rc;
	}
	if (i >= argc - 1)
		return ctl_usage_error("run: give the command after --");
	argc -= i + 1;
	argv += i + 1;
	/* A relative path means relative to here, where the user typed it. */
	if (strchr(argv[0], '/') != NULL && argv[0][0] != '/' &&
	    realpath(argv[0], exe) != NULL)
		argv[0] = exe;

	/* wardd gives others' payloads none of its environment: pass ours. */
	env[nenv] = NULL;
	nenv += ward_caller_env(env, env + nenv);
	nkeys = 2 + (nenv > 0) + (cwd != NULL) + (detect != 0) + (timeout > 0) +
	    (ncodes > 0) + (profile != NULL) + (user[0] != '\0') +
	    capture + clean + (logs[0][0] != '\0') + (logs[1][0] != '\0') +
	    nlimits + control + (hooks.pre != NULL) + (hooks.post != NULL) +
	    (hooks.nside > 0);
	ward_params_init(&p);
	msgpack_pack_map(&p.pk, nkeys);
	ctl_pack_str(&p.pk, "name");
	ctl_pack_str(&p.pk, name);
	ctl_pack_str(&p.pk, "argv");
	msgpack_pack_array(&p.pk, argc);
	for (k = 0; k < argc; k++)
		ctl_pack_str(&p.pk, argv[k]);
	if (nenv > 0) {
		ctl_pack_str(&p.pk, "env");
		msgpack_pack_map(&p.pk, nenv);
		for (k = 0; k < nenv; k++) {
			eq = strchr(env[k], '=');
			msgpack_pack_str(&p.pk, eq - env[k]);
			msgpack_pack_str_body(&p.pk, env[k], eq - env[k]);
			ctl_pack_str(&p.pk, eq + 1);
		}
	}
	if (cwd != NULL) {
		ctl_pack_str(&p.pk, "cwd");
		ctl_pack_str(&p.pk, cwd);
	}
	if (detect) {
		ctl_pack_str(&p.pk, "detect_hangup");
		msgpack_pack_true(&p.pk);
	}
	if (timeout > 0) {
		ctl_pack_str(&p.pk, "hangup_timeout_ms");
		msgpack_pack_uint64(&p.pk, timeout);
	}
	if (ncodes > 0) {
		ctl_pack_str(&p.pk, "exit_codes");
		msgpack_pack_map(&p.pk, ncodes);
		for (k = 0; k < ncodes; k++) {
			msgpack_pack_int(&p.pk, codes[k].code);
			ctl_pack_str(&p.pk, codes[k].reason);
		}
	}
	for (k = 0; k < nlimits; k++) {
		/* Each a key of instance.create; wardd reads the text. */
		eq = strchr(limits[k], '=');
		msgpack_pack_str(&p.pk, eq - limits[k]);
		msgpack_pack_str_body(&p.pk, limits[k], eq - limits[k]);
		ctl_pack_str(&p.pk, eq + 1);
	}
	if (profile != NULL) {
		ctl_pack_str(&p.pk, "profile");
		ctl_pack_str(&p.pk, profile);
	}
	if (user[0] != '\0') {
		ctl_pack_str(&p.pk, "user");
		ctl_pack_str(&p.pk, user);
	}
	if (capture) {
		ctl_pack_str(&p.pk, "capture_output");
		msgpack_pack_true(&p.pk);
	}
	if (clean) {
		ctl_pack_str(&p.pk, "clean_env");
		msgpack_pack_true(&p.pk);
	}
	if (control) {
		ctl_pack_str(&p.pk, "control");
		msgpack_pack_true(&p.pk);
	}
	for (k = 0; k < 2; k++) {
		if (logs[k][0] != '\0') {
			ctl_pack_str(&p.pk, k ? "stderr_logfile" : "stdout_logfile");
			ctl_pack_str(&p.pk, logs[k]);
		}
	}
	ctl_run_pack_hooks(&p.pk, &hooks);
	if ((rc = ctl_call(c, "instance.run", &p, NULL, &r)) != 0)
		return rc;
	if (c->json) {
		ctl_json_line(&r.result);
	} else {
		struct ward_status s;

		ward_status_decode(&r.result, &s);
		if (s.pid > 0)
			printf("%s: started (id %" PRIu64 ", pid %d)\n", name,
			    s.id, (int)s.pid);
		else	/* a pre_start runs first */
			printf("%s: %s (id %" PRIu64 ")\n", name, s.state, s.id);
		ward_status_free(&s);
	}
	ward_reply_free(&r);
	return 0;
}

const struct ctl_entry ctl_run_entry = {
	.name = "run",
	.usage = "run NAME [--detect-hangup] [--hangup-timeout MS] "
	    "[--exit-code N=REASON ...] [--profile crosvm] [--env K=V ...] "
	    "[--cwd DIR] [--user U] [--capture] [--clean-env] "
	    "[--stdout-log FILE] [--stderr-log FILE] [--limit KEY=VALUE ...] "
	    "[--control] -- ARGV...",
	.help = "Create and start an instance.",
	.exec = ctl_run_exec,
};

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
