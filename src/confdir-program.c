/*
 * confdir-program.c: one [program:NAME] section, as read, into what ward
 * runs: the very instance.create map a client would send (so that one
 * validator, spec.c, serves both) and the restart policy program.c
 * applies. supervisord's keys are mapped to ward's; the ones ward has no
 * use for, and any key it does not know, are warnings (supervisord
 * ignores keys it does not know, so a config written for it loads).
 *
 * layer: programs (calls conf.c, conf-expand.c, confdir-env.c, spec.c,
 * codec.c, output.c's stream names, peer.c's self; never program.c: what
 * it builds is only data)
 */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ward.h"

static void
confdir_pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);

	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}


/* "32:REBOOT, 33:CRASH" into a msgpack map. */
static int
confdir_pack_exit_codes(msgpack_packer *pk, const char *v,
    struct ward_err *e)
{
	char **items = conf_list_split(v), **it;
	size_t n = 0;

	for (it = items; it != NULL && *it != NULL; it++)
		n++;
	if (items == NULL) {
		ward_err_oom(e);
		return -1;
	}
	msgpack_pack_map(pk, n);
	for (it = items; *it != NULL; it++) {
		char *colon = strchr(*it, ':');

		if (colon == NULL || !isdigit((unsigned char)**it)) {
			ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "is CODE:REASON[,CODE:REASON...]");
			conf_vec_free(items);
			return -1;
		}
		*colon = '\0';
		msgpack_pack_uint64(pk, strtoul(*it, NULL, 10));
		confdir_pack_str(pk, colon + 1);
	}
	conf_vec_free(items);
	return 0;
}

/*
 * Keys of supervisord's [program:x] that ward has no use for: ignored with
 * a warning. (ward rotates both streams at logfile_maxbytes/logfile_backups,
 * hence the stderr_logfile_* ones; stdout_syslog is stdout_journal.)
 */
static const char *const confdir_unmapped[] = {
	"stdout_capture_maxbytes", "stdout_events_enabled",
	"stderr_capture_maxbytes", "stderr_events_enabled", "stderr_syslog",
	"stderr_logfile_maxbytes", "stderr_logfile_backups", NULL
};

/*
 * supervisord's [program:x] keys: their values are expanded strictly, as
 * supervisord does (a stray % is an error). ward's own keys keep a % that
 * names nothing as written (cpu_max = 50%).
 */
static const char *const confdir_super_keys[] = {
	"command", "process_name", "numprocs", "numprocs_start", "priority",
	"autostart", "startsecs", "startretries", "autorestart", "exitcodes",
	"stopsignal", "stopwaitsecs", "stopasgroup", "killasgroup", "user",
	"redirect_stderr", "stdout_logfile", "stdout_logfile_maxbytes",
	"stdout_logfile_backups", "stdout_capture_maxbytes",
	"stdout_events_enabled", "stdout_syslog", "stderr_logfile",
	"stderr_logfile_maxbytes", "stderr_logfile_backups",
	"stderr_capture_maxbytes", "stderr_events_enabled", "stderr_syslog",
	"environment", "directory", "umask", "serverurl", NULL
};

/* Keys read elsewhere (confdir-super.c) or needing no mapping. */
static const char *const confdir_consumed[] = {
	"process_name", "numprocs", "numprocs_start", "serverurl",
	/* ward always signals the whole process group (its own session). */
	"stopasgroup", "killasgroup", NULL
};

static int
confdir_in(const char *const *list, const char *key)
{
	size_t j;

	for (j = 0; list[j] != NULL; j++) {
		if (strcmp(key, list[j]) == 0)
			return 1;
	}
	return 0;
}

enum { K_STR, K_BOOL, K_UINT, K_INT, K_SPECIAL };

/*
 * Keys that go into the instance.create map as they are (or renamed).
 * capture_output, stdout_logfile, stderr_logfile and redirect_stderr are
 * not here: confdir_program_build decides the output keys from all four.
 */
static const struct {
	const char	*key;		/* in the file */
	const char	*create;	/* in instance.create */
	int		 type;
} confdir_keys[] = {
	{ "command", "argv", K_SPECIAL },
	{ "exit_codes", "exit_codes", K_SPECIAL },
	{ "user", "user", K_SPECIAL },
	{ "group", "group", K_SPECIAL },
	{ "directory", "cwd", K_STR },
	{ "cwd", "cwd", K_STR },
	{ "profile", "profile", K_STR },
	{ "rss_mapping", "rss_mapping", K_STR },
	{ "notify", "notify", K_STR },
	{ "umask", "umask", K_STR },
	{ "log_overflow", "log_overflow", K_STR },
	{ "detect_hangup", "detect_hangup", K_BOOL },
	{ "stdout_journal", "stdout_journal", K_BOOL },
	{ "stdout_syslog", "stdout_journal", K_BOOL },
	{ "hangup_timeout_ms", "hangup_timeout_ms", K_UINT },
	{ "watchdog_ms", "watchdog_ms", K_UINT },
	{ "logfile_maxbytes", "logfile_maxbytes", K_UINT },
	{ "stdout_logfile_maxbytes", "logfile_maxbytes", K_UINT },
	{ "logfile_backups", "logfile_backups", K_UINT },
	{ "stdout_logfile_backups", "logfile_backups", K_UINT },
	{ "log_ring_bytes", "log_ring_bytes", K_UINT },
	{ "log_rate_lines", "log_rate_lines", K_UINT },
	{ "nice", "nice", K_INT },
	{ "oom_score_adj", "oom_score_adj", K_INT },
	/* spec-limits.c's: every value as text ("512M", "50%", "0-1"). */
	{ "memory_max", "memory_max", K_STR },
	{ "memory_high", "memory_high", K_STR },
	{ "cpu_max", "cpu_max", K_STR },
	{ "cpu_weight", "cpu_weight", K_STR },
	{ "pids_max", "pids_max", K_STR },
	{ "io_weight", "io_weight", K_STR },
	{ "cpus", "cpus", K_STR },
	{ "control", "control", K_BOOL },	/* instance.call */
	/* hooks.c's: commands split as command is; one sidecar a program. */
	{ "pre_start", "pre_start", K_SPECIAL },
	{ "post_death", "post_death", K_SPECIAL },
	{ "sidecar", "sidecars", K_SPECIAL },
	{ "pre_start_timeout_ms", "pre_start_timeout_ms", K_UINT },
	{ "post_death_timeout_ms", "post_death_timeout_ms", K_UINT },
	{ NULL, NULL, 0 }
};

/* A name for "user"/"group": numbers pass; names are looked up now, at
 * load (never at spawn: the vfork child cannot, and the loop must not). */
static int
confdir_pack_user(msgpack_packer *pk, const char *key, const char *v,
    struct ward_err *e)
{
	char buf[64];

	if (isdigit((unsigned char)v[0]))
		snprintf(buf, sizeof buf, "%s", v);
	else if (strcmp(key, "user") == 0) {
		struct passwd *pw = getpwnam(v);

		if (pw == NULL) {
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "no user '%s'", v);
		}
		snprintf(buf, sizeof buf, "%u:%u", (unsigned)pw->pw_uid,
		    (unsigned)pw->pw_gid);
	} else {
		struct group *gr = getgrnam(v);

		if (gr == NULL) {
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "no group '%s'", v);
		}
		msgpack_pack_uint64(pk, gr->gr_gid);
		return 0;
	}
	if (strcmp(key, "group") == 0)
		msgpack_pack_uint64(pk, strtoul(buf, NULL, 10));
	else
		confdir_pack_str(pk, buf);
	return 0;
}

/* Policy defaults: supervisord's where it has one, systemd's otherwise. */
static void
confdir_policy_defaults(struct program_policy *pol)
{
	memset(pol, 0, sizeof *pol);
	pol->autostart = 1;
	pol->restart = RESTART_ON_FAILURE;
	pol->backoff_initial_ms = 1000;
	pol->backoff_max_ms = 60000;
	pol->backoff_reset_ms = 60000;
	pol->max_restarts = 5;
	pol->restart_window_ms = 60000;
	pol->startsecs_ms = 1000;
	pol->success_codes[0] = 1;	/* exit code 0 */
	pol->stop_signal = SIGTERM;
	pol->stop_timeout_ms = STOP_TIMEOUT_MS;
}

/* A policy key; 1 handled, 0 not a policy key, -1 bad value (e set). */
static int
confdir_policy_key(struct program_policy *pol, const char *k, const char *v,
    struct ward_err *e)
{
	uint64_t n;
	int b;

#define NUM(field, scale, max) do {					\
	if (conf_number(v, scale, max, &n) == -1)			\
		return ward_err_set(e, WARD_E_INVALID_ARGUMENT,		\
		    "bad value '%s'", v);				\
	pol->field = n;							\
} while (0)
	if (strcmp(k, "autostart") == 0) {
		if (conf_bool(v, &b) == -1)
			goto badbool;
		pol->autostart = b;
	} else if (strcmp(k, "restart") == 0) {
		if (strcmp(v, "no") == 0)
			pol->restart = RESTART_NO;
		else if (strcmp(v, "on-failure") == 0)
			pol->restart = RESTART_ON_FAILURE;
		else if (strcmp(v, "always") == 0)
			pol->restart = RESTART_ALWAYS;
		else {
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "is no, on-failure or always");
		}
	} else if (strcmp(k, "autorestart") == 0) {
		/* supervisord: true, false, unexpected. */
		if (strcasecmp(v, "unexpected") == 0)
			pol->restart = RESTART_ON_FAILURE;
		else if (conf_bool(v, &b) == 0)
			pol->restart = b ? RESTART_ALWAYS : RESTART_NO;
		else {
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "is true, false or unexpected");
		}
	} else if (strcmp(k, "restart_on") == 0) {
		char **it;

		conf_vec_free(pol->restart_on);
		if ((pol->restart_on = conf_list_split(v)) == NULL)
			goto nomem;
		for (it = pol->restart_on; it != NULL && *it != NULL; it++) {
			if (!reason_name_valid(*it, strlen(*it))) {
				return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
				    "'%s' is not a death reason", *it);
			}
		}
	} else if (strcmp(k, "backoff_initial_ms") == 0)
		NUM(backoff_initial_ms, 1, 3600000);
	else if (strcmp(k, "backoff_max_ms") == 0)
		NUM(backoff_max_ms, 1, 86400000);
	else if (strcmp(k, "backoff_reset_ms") == 0)
		NUM(backoff_reset_ms, 1, 86400000);
	else if (strcmp(k, "max_restarts") == 0 || strcmp(k, "startretries") == 0)
		NUM(max_restarts, 1, UINT32_MAX);	/* supervisord: no cap */
	else if (strcmp(k, "restart_window_ms") == 0)
		NUM(restart_window_ms, 1, 86400000);
	else if (strcmp(k, "startsecs") == 0)
		NUM(startsecs_ms, 1000, UINT32_MAX);	/* supervisord: no cap */
	else if (strcmp(k, "startsecs_ms") == 0)
		NUM(startsecs_ms, 1, 86400000);
	else if (strcmp(k, "stopwaitsecs") == 0)
		NUM(stop_timeout_ms, 1000, UINT32_MAX);	/* nor here */
	else if (strcmp(k, "stop_timeout_ms") == 0)
		NUM(stop_timeout_ms, 1, 3600000);
	else if (strcmp(k, "readiness") == 0) {
		if (strcmp(v, "notify") == 0)
			pol->readiness_notify = 1;
		else if (strcmp(v, "startsecs") == 0)
			pol->readiness_notify = 0;
		else {
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "is notify or startsecs");
		}
	} else if (strcmp(k, "after") == 0) {
		conf_vec_free(pol->after);
		if ((pol->after = conf_list_split(v)) == NULL)
			goto nomem;
	} else if (strcmp(k, "requires") == 0) {
		conf_vec_free(pol->requires);
		if ((pol->requires = conf_list_split(v)) == NULL)
			goto nomem;
	} else if (strcmp(k, "stopsignal") == 0) {
		if ((pol->stop_signal = signal_parse(v)) == -1) {
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "'%s' is not a signal", v);
		}
	} else if (strcmp(k, "exitcodes") == 0) {
		char **items = conf_list_split(v), **it;

		if (items == NULL)
			goto nomem;
		memset(pol->success_codes, 0, sizeof pol->success_codes);
		for (it = items; it != NULL && *it != NULL; it++) {
			if (conf_number(*it, 1, 255, &n) == -1) {
				ward_err_set(e, WARD_E_INVALID_ARGUMENT,
				    "'%s' is not an exit code", *it);
				conf_vec_free(items);
				return -1;
			}
			pol->success_codes[n / 32] |= 1U << (n % 32);
		}
		conf_vec_free(items);
	} else
		return 0;
	return 1;
badbool:
	return ward_err_set(e, WARD_E_INVALID_ARGUMENT, "is true or false");
nomem:
	return ward_err_oom(e);
#undef NUM
}

/* c declares name at file:line, whether it loads or not: reserve it. */
static void
confdir_declare(struct conf *c, const char *name, const char *file,
    int line)
{
	struct conf_decl *v;

	if ((v = realloc(c->decls, (c->ndecls + 1) * sizeof *v)) == NULL)
		goto nomem;
	c->decls = v;
	v += c->ndecls;
	v->file = NULL;
	if ((v->name = strdup(name)) == NULL ||
	    (v->file = strdup(file)) == NULL) {
		free(v->name);
		goto nomem;
	}
	v->line = line;
	c->ndecls++;
	return;
nomem:
	conf_error(c, file, line, "out of memory: the program's name is not "
	    "reserved");
}

/* Check a spec the way instance.create would: 0, or -1 with e saying why. */
static int
confdir_check_spec(const char *spec, size_t len, struct ward_err *e)
{
	const msgpack_object *args[ARG_MAX];
	struct instance_spec cfg;
	msgpack_unpacked u;
	size_t off = 0;
	int rc = -1;

	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, spec, len, &off) != MSGPACK_UNPACK_SUCCESS)
		ward_err_set(e, WARD_E_INTERNAL, "internal: cannot read back its "
		    "spec");
	else if (codec_args(&u.data, spec_args, args, e) == 0) {
		rc = spec_parse_args(&cfg, args, peer_self(), e);
		spec_free(&cfg);
	}
	msgpack_unpacked_destroy(&u);
	return rc;
}

/*
 * stdout_logfile or stderr_logfile (stream) as supervisord reads it, into
 * a path, or NULL for no file. NONE (or OFF): no file; the output is still
 * captured into the ring, so wardctl tail works. AUTO: supervisord means a file of
 * its choosing (in childlogdir), and a user who wrote AUTO expects one, so
 * it is STATE_DIR/logs/NAME-stdout.log (or -stderr.log), in the directory
 * statedir.c made at start. Anything else is a
 * path, checked later as instance.create checks it. e is set on failure.
 */
static char *
confdir_logfile(const char *v, const char *name, int stream,
    struct ward_err *e)
{
	char *path;

	if (strcasecmp(v, "NONE") == 0 || strcasecmp(v, "OFF") == 0)
		return NULL;
	if (strcasecmp(v, "AUTO") != 0)
		path = strdup(v);
	else
		path = str_printf("%s/logs/%s-%s.log", opts.state_dir, name,
		    output_stream_name(stream));
	if (path == NULL)
		ward_err_oom(e);
	return path;
}

/* The value of a confdir_keys key of type type, packed; e set if bad. */
static void
confdir_pack_value(msgpack_packer *pk, int type, const char *key,
    const char *v, struct ward_err *e)
{
	uint64_t n;
	char **argv, *end;
	size_t a;
	long l;
	int b;

	switch (type) {
	case K_STR:
		confdir_pack_str(pk, v);
		return;
	case K_BOOL:
		if (conf_bool(v, &b) == -1) {
			ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "is true or false");
			b = 0;
		}
		if (b)
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		return;
	case K_UINT:
		if (conf_number(v, 1, UINT32_MAX, &n) == -1) {
			ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "bad value '%s'", v);
			n = 0;
		}
		msgpack_pack_uint64(pk, n);
		return;
	case K_INT:
		l = strtol(v, &end, 10);
		if (*end != '\0' || end == v)
			ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "bad value '%s'", v);
		msgpack_pack_int64(pk, l);
		return;
	}
	if (strcmp(key, "sidecar") == 0)
		msgpack_pack_array(pk, 1);	/* sidecars: a list of one */
	if (strcmp(key, "command") == 0 || strcmp(key, "pre_start") == 0 ||
	    strcmp(key, "post_death") == 0 || strcmp(key, "sidecar") == 0) {
		if (conf_split_command(v, &argv, e) == 0) {
			for (a = 0; argv[a] != NULL; a++)
				;
			msgpack_pack_array(pk, a);
			for (a = 0; argv[a] != NULL; a++)
				confdir_pack_str(pk, argv[a]);
			conf_vec_free(argv);
		} else
			msgpack_pack_nil(pk);
	} else if (strcmp(key, "exit_codes") == 0) {
		if (confdir_pack_exit_codes(pk, v, e) == -1)
			msgpack_pack_nil(pk);
	} else if (confdir_pack_user(pk, key, v, e) == -1)
		msgpack_pack_nil(pk);
}

/*
 * One key's value, expanded: strictly for supervisord's keys (NULL with e
 * set, as supervisord refuses it), leniently for ward's own.
 */
static char *
confdir_program_expand(const char *key, const char *val,
    const struct conf_vars *vars, struct ward_err *e)
{
	char *v;

	if ((v = conf_expand(val, vars, e)) != NULL ||
	    confdir_in(confdir_super_keys, key))
		return v;
	e->code = NULL;
	e->msg[0] = '\0';
	if ((v = strdup(val)) == NULL)
		ward_err_oom(e);
	return v;
}

/*
 * Understand the section of one process (p: numprocs make several of one
 * section): its create map (packed) and its policy. NULL when it cannot
 * be loaded; every problem is in c->errors, every key ignored in
 * c->warnings.
 *
 * Output is captured unless capture_output = false, as supervisord always
 * captures: wardctl tail works on any declared program. Log files only
 * where stdout_logfile/stderr_logfile name one (or AUTO); redirect_stderr
 * gives the child's fd 2 stdout's pipe (one stream, in the order written,
 * in stdout's ring and file: wardctl tail shows both, as supervisorctl's).
 */
struct conf_program *
confdir_program_build(struct conf *c, const struct conf_proc *p)
{
	static const char *const log_keys[OUTPUT_NSTREAMS] = {
		[OUTPUT_STDOUT] = "stdout_logfile",
		[OUTPUT_STDERR] = "stderr_logfile",
	};
	const char *name = p->name, *file = p->file;
	const struct conf_kv *kv = p->kv;
	struct conf_program *cp;
	struct conf_vars vars;
	msgpack_sbuffer sb;
	msgpack_packer pk, bpk, rpk;
	struct buf body = { 0 }, rl = { 0 };
	struct ward_err e = WARD_ERR_INIT;
	char *logs[OUTPUT_NSTREAMS] = { NULL }, **env = NULL, here[4096];
	size_t k, j, npairs = 1, nrl = 0, nenv = 0;
	int bad = 0, redirect = 0, capture = 1, s, rc, line = p->line;
	int has_cwd = 0, has_umask = 0, has_nofile = 0, has_command = 0;

#define ERR(l, ...) do {						\
	char _m[600];							\
	snprintf(_m, sizeof _m, __VA_ARGS__);				\
	conf_error(c, file, (l), _m);					\
	bad = 1;							\
} while (0)
	if (spec_name_valid(name, &e) == -1) {
		ERR(line, "[program:%s] %s: %s", p->program_name, name, e.msg);
		return NULL;
	}
	confdir_declare(c, name, file, line);
	if ((cp = calloc(1, sizeof *cp)) == NULL ||
	    (cp->name = strdup(name)) == NULL ||
	    (cp->file = strdup(file)) == NULL) {
		conf_program_free(cp);
		ERR(line, "[program:%s]: out of memory", name);
		return NULL;
	}
	cp->line = line;
	cp->priority = 999;
	confdir_policy_defaults(&cp->policy);
	confdir_env_vars(p, &vars, here, sizeof here);
	if (confdir_env_build(c, p, &vars, &env, &nenv) == -1)
		bad = 1;

	/* The map's pairs go to body, counted; its header is packed last. */
	msgpack_packer_init(&bpk, &body, codec_sbuffer_write);
	msgpack_packer_init(&rpk, &rl, codec_sbuffer_write);
	confdir_pack_str(&bpk, "name");
	confdir_pack_str(&bpk, name);
	for (k = 0; k < p->nkv; k++) {
		const char *key = kv[k].key;
		char *val;

		/* e is this key's problem, if it has one. */
		e.code = NULL;
		e.msg[0] = '\0';
		if (kv[k].value == NULL || strcmp(key, "environment") == 0 ||
		    confdir_in(confdir_consumed, key))
			continue;
		if ((val = confdir_program_expand(key, kv[k].value, &vars,
		    &e)) == NULL) {
			ERR(kv[k].line, "[program:%s] %s: %s", name, key, e.msg);
			continue;
		}
		for (j = 0; confdir_keys[j].key != NULL; j++) {
			if (strcmp(key, confdir_keys[j].key) == 0)
				break;
		}
		for (s = 0; s < OUTPUT_NSTREAMS; s++) {
			if (strcmp(key, log_keys[s]) == 0)
				break;
		}
		has_cwd |= strcmp(key, "directory") == 0 ||
		    strcmp(key, "cwd") == 0;
		has_umask |= strcmp(key, "umask") == 0;
		has_command |= strcmp(key, "command") == 0;
		has_nofile |= strcmp(key, "rlimit_nofile") == 0;
		if (confdir_keys[j].key != NULL) {
			confdir_pack_str(&bpk, confdir_keys[j].create);
			confdir_pack_value(&bpk, confdir_keys[j].type, key, val,
			    &e);
			npairs++;
		} else if (s < OUTPUT_NSTREAMS) {
			free(logs[s]);
			logs[s] = confdir_logfile(val, name, s, &e);
		} else if (strcmp(key, "capture_output") == 0 ||
		    strcmp(key, "redirect_stderr") == 0) {
			if (conf_bool(val, key[0] == 'c' ? &capture :
			    &redirect) == -1)
				ward_err_set(&e, WARD_E_INVALID_ARGUMENT,
				    "is true or false");
		} else if (strcmp(key, "priority") == 0) {
			char *end;

			cp->priority = strtol(val, &end, 10);
			if (*end != '\0' || end == val)
				ward_err_set(&e, WARD_E_INVALID_ARGUMENT,
				    "is an integer");
		} else if (strncmp(key, "rlimit_", 7) == 0) {
			confdir_pack_str(&rpk, key + 7);
			confdir_pack_str(&rpk, val);
			nrl++;
		} else if ((rc = confdir_policy_key(&cp->policy, key, val,
		    &e)) == 0 && p->first) {
			char msg[600];

			snprintf(msg, sizeof msg, "[program:%s] %s: %s; ignored",
			    p->program_name, key,
			    confdir_in(confdir_unmapped, key) ?
			    "supervisord's key has no ward equivalent" :
			    "unknown key");
			conf_warning(c, file, kv[k].line, msg);
		}
		free(val);
		if (e.msg[0] != '\0')
			ERR(kv[k].line, "[program:%s] %s: %s", name, key, e.msg);
	}
	if (!has_command)
		ERR(line, "[program:%s]: no command= (supervisord refuses a "
		    "program without one too)", name);
	cp->group_priority = p->group_priority >= 0 ? p->group_priority :
	    cp->priority;
	if (nenv > 0) {
		confdir_pack_str(&bpk, "env");
		confdir_env_pack(&bpk, env, nenv);
		npairs++;
	}
	conf_strv_free(env, nenv);
	/* [supervisord]'s umask, directory, minfds: what its children get. */
	if (!has_cwd && p->global != NULL && p->global->directory != NULL) {
		confdir_pack_str(&bpk, "cwd");
		confdir_pack_str(&bpk, p->global->directory);
		npairs++;
	}
	if (!has_umask && p->global != NULL && p->global->umask != NULL) {
		confdir_pack_str(&bpk, "umask");
		confdir_pack_str(&bpk, p->global->umask);
		npairs++;
	}
	if (!has_nofile && p->global != NULL && p->global->minfds >
	    (uint64_t)opts.nofile.rlim_cur && opts.nofile.rlim_cur !=
	    RLIM_INFINITY) {
		char lim[64];

		snprintf(lim, sizeof lim, "%" PRIu64 ":%" PRIu64,
		    p->global->minfds, p->global->minfds >
		    (uint64_t)opts.nofile.rlim_max ? p->global->minfds :
		    (uint64_t)opts.nofile.rlim_max);
		confdir_pack_str(&rpk, "nofile");
		confdir_pack_str(&rpk, lim);
		nrl++;
	}
	if (redirect && capture) {
		/* fd 2 shares stdout's pipe, as in supervisord: one stream. */
		free(logs[OUTPUT_STDERR]);
		logs[OUTPUT_STDERR] = NULL;
		confdir_pack_str(&bpk, "redirect_stderr");
		msgpack_pack_true(&bpk);
		npairs++;
	}
	for (s = 0; s < OUTPUT_NSTREAMS; s++) {
		if (logs[s] == NULL)
			continue;
		confdir_pack_str(&bpk, log_keys[s]);
		confdir_pack_str(&bpk, logs[s]);
		npairs++;
		free(logs[s]);
	}
	confdir_pack_str(&bpk, "capture_output");
	if (capture)
		msgpack_pack_true(&bpk);
	else
		msgpack_pack_false(&bpk);
	npairs++;
	if (nrl > 0) {
		confdir_pack_str(&bpk, "rlimits");
		msgpack_pack_map(&bpk, nrl);
		buf_append(&body, rl.data, rl.len);
		npairs++;
	}
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, npairs);
	msgpack_sbuffer_write(&sb, body.data, body.len);
	buf_free(&body);
	buf_free(&rl);
	if (!bad && confdir_check_spec(sb.data, sb.size, &e) == -1)
		ERR(line, "[program:%s]: %s", name, e.msg);
	if (bad) {
		msgpack_sbuffer_destroy(&sb);
		conf_program_free(cp);
		return NULL;
	}
	cp->speclen = sb.size;
	cp->spec = msgpack_sbuffer_release(&sb);
	return cp;
#undef ERR
}
