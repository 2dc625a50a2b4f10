/*
 * program.c: declared programs. A program is a [program:NAME] section of
 * the config directory (settings.c reads it) plus the instance that runs it
 * and a policy around that instance's runs: restart on death with
 * exponential backoff and an intensity limit past which it is FATAL, start
 * order (after, requires) by readiness, and reread/update to apply config
 * changes to what runs. The program's state moves only through
 * program_set_state; each timer has one meaning.
 *
 * Names and values from the file are turned into the very instance.create
 * map a client would send, so one validator (config.c) serves both.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <libgen.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"

#define container_of(p, type, member) \
	((type *)((char *)(p) - offsetof(type, member)))

struct program_list programs = TAILQ_HEAD_INITIALIZER(programs);
static struct table programs_by_name;

/*
 * The program names the config dir declares, as last read (at start, and
 * at every reread and update), loaded or not: reserved for their programs
 * so that nobody can take one first (issue 9, finding 9). An instance that
 * held a name before it was declared keeps it; the program waits for it
 * (name_holder) and every reread says so.
 */
struct program_decl {
	struct table_node	 by_name;
	char			*name;
	char			*file;
	int			 line;
};
static struct program_decl *program_decls;
static size_t program_ndecls;
static struct table program_decls_by_name;

static void	program_backoff_cb(struct ev_loop *, ev_timer *, int);
static void	program_startsecs_cb(struct ev_loop *, ev_timer *, int);
static void	program_apply_cb(struct ev_loop *, ev_timer *, int);
static void	program_start_waiting(void);

static const char *const program_state_names[] = {
	[PROGRAM_STOPPED] = "stopped",
	[PROGRAM_WAITING] = "waiting",
	[PROGRAM_RUNNING] = "running",
	[PROGRAM_BACKOFF] = "backoff",
	[PROGRAM_EXITED] = "exited",
	[PROGRAM_FATAL] = "fatal",
};

const char *
program_state_name(enum program_state s)
{
	return program_state_names[s];
}

void
program_init(void)
{
	table_init(&programs_by_name);
	table_init(&program_decls_by_name);
}

static struct program *
program_find(const char *name)
{
	struct table_node *n;

	n = table_find(&programs_by_name, name, strlen(name));
	return n == NULL ? NULL : container_of(n, struct program, by_name);
}

/* The one place a program's state changes. */
static void
program_set_state(struct program *p, enum program_state s)
{
	if (p->state == s)
		return;
	log_debug("program %s: %s -> %s", p->conf->name,
	    program_state_names[p->state], program_state_names[s]);
	p->state = s;
}

/* ---- reading a [program:NAME] section */

/*
 * Split a command line as a shell would, without running one: blanks
 * separate words, '...' is literal, "..." honours \" \\ \$ \`, and a
 * backslash outside quotes escapes the next character. Nothing expands.
 */
int
program_split_command(const char *s, char ***out, char *err, size_t errlen)
{
	size_t n = 0, cap = 8, len = strlen(s);
	char **argv, *w, *word;
	int quote, inword;

	*out = NULL;
	if ((argv = calloc(cap + 1, sizeof *argv)) == NULL ||
	    (word = malloc(len + 1)) == NULL) {
		free(argv);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (;;) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0')
			break;
		w = word;
		quote = 0;
		inword = 1;
		for (; *s != '\0' && inword; s++) {
			if (quote == '\'') {
				if (*s == '\'')
					quote = 0;
				else
					*w++ = *s;
			} else if (quote == '"') {
				if (*s == '"')
					quote = 0;
				else if (*s == '\\' && strchr("\"\\$`", s[1]) != NULL &&
				    s[1] != '\0')
					*w++ = *++s;
				else
					*w++ = *s;
			} else if (*s == '\'' || *s == '"')
				quote = *s;
			else if (*s == '\\' && s[1] != '\0')
				*w++ = *++s;
			else if (*s == ' ' || *s == '\t')
				inword = 0;
			else
				*w++ = *s;
		}
		if (quote != 0) {
			snprintf(err, errlen, "unterminated %c quote", quote);
			goto fail;
		}
		*w = '\0';
		if (n == cap) {
			char **nv = realloc(argv, (cap * 2 + 1) * sizeof *argv);

			if (nv == NULL)
				goto nomem;
			argv = nv;
			cap *= 2;
		}
		if ((argv[n++] = strdup(word)) == NULL)
			goto nomem;
		argv[n] = NULL;
	}
	free(word);
	if (n == 0) {
		snprintf(err, errlen, "is empty");
		free(argv);
		return -1;
	}
	*out = argv;
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	free(word);
	while (n > 0)
		free(argv[--n]);
	free(argv);
	return -1;
}

static void
program_free_vec(char **v)
{
	char **p;

	for (p = v; p != NULL && *p != NULL; p++)
		free(*p);
	free(v);
}

/*
 * "a, b,c" -> {"a", "b", "c", NULL}; empty items dropped. NULL only when
 * out of memory (never a list cut short: a requires= missing a name would
 * start a program before what it needs).
 */
static char **
program_list_split(const char *s)
{
	char **v, *copy, *tok, *save = NULL;
	size_t n = 0;

	if ((copy = strdup(s)) == NULL ||
	    (v = calloc(strlen(s) / 2 + 2, sizeof *v)) == NULL) {
		free(copy);
		return NULL;
	}
	for (tok = strtok_r(copy, ", \t", &save); tok != NULL;
	    tok = strtok_r(NULL, ", \t", &save)) {
		if ((v[n++] = strdup(tok)) == NULL) {
			free(copy);
			program_free_vec(v);
			return NULL;
		}
	}
	free(copy);
	return v;
}

static int
program_bool(const char *v, int *out)
{
	if (strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 ||
	    strcmp(v, "1") == 0 || strcasecmp(v, "on") == 0)
		*out = 1;
	else if (strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0 ||
	    strcmp(v, "0") == 0 || strcasecmp(v, "off") == 0)
		*out = 0;
	else
		return -1;
	return 0;
}

/* An integer with an optional scale: "30", "1.5" with scale 1000, "50MB". */
static int
program_number(const char *v, double scale, uint64_t max, uint64_t *out)
{
	static const struct { const char *s; double m; } units[] = {
		{ "KB", 1024. }, { "MB", 1024. * 1024 }, { "GB", 1024. * 1024 * 1024 },
		{ "K", 1024. }, { "M", 1024. * 1024 }, { "G", 1024. * 1024 * 1024 },
	};
	char *end;
	double d;
	size_t k;

	if (!isdigit((unsigned char)v[0]))
		return -1;
	d = strtod(v, &end);
	for (k = 0; *end != '\0' && k < sizeof units / sizeof units[0]; k++) {
		if (strcasecmp(end, units[k].s) == 0) {
			d *= units[k].m;
			end += strlen(end);
		}
	}
	if (*end != '\0')
		return -1;
	d *= scale;
	if (d < 0 || d > (double)max)
		return -1;
	*out = (uint64_t)(d + 0.5);
	return 0;
}

static void
program_pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);

	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

/*
 * supervisord's %(program_name)s, %(here)s and %(ENV_X)s in a value;
 * anything else stays as written. NULL when out of memory.
 */
static char *
program_expand(const char *v, const char *name, const char *file)
{
	struct buf b = { 0 };
	const char *p, *end, *val;
	char key[128], here[4096], *dir;
	int bad = 0;

	snprintf(here, sizeof here, "%s", file);
	dir = dirname(here);
	for (p = v; *p != '\0'; p++) {
		if (p[0] == '%' && p[1] == '(' && (end = strstr(p, ")s")) != NULL &&
		    (size_t)(end - p - 2) < sizeof key) {
			memcpy(key, p + 2, end - p - 2);
			key[end - p - 2] = '\0';
			val = NULL;
			if (strcmp(key, "program_name") == 0)
				val = name;
			else if (strcmp(key, "here") == 0)
				val = dir;
			else if (strncmp(key, "ENV_", 4) == 0)
				val = getenv(key + 4) ? getenv(key + 4) : "";
			if (val != NULL) {
				bad |= buf_append(&b, val, strlen(val)) == -1;
				p = end + 1;
				continue;
			}
		}
		bad |= buf_append(&b, p, 1) == -1;
	}
	bad |= buf_append(&b, "", 1) == -1;
	if (bad) {
		buf_free(&b);
		return NULL;
	}
	return b.data;
}

/* supervisord's environment=A="x",B=y into a msgpack map. */
static int
program_pack_env(msgpack_packer *pk, const char *v, char *err, size_t errlen)
{
	char *keys[CONFIG_MAX_ENV], *vals[CONFIG_MAX_ENV];
	struct buf cur = { 0 };
	const char *p = v;
	size_t n = 0, k;
	int rc = -1, bad;

	while (*p != '\0' && n < CONFIG_MAX_ENV) {
		const char *eq;
		char q;

		while (*p == ' ' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		if ((eq = strchr(p, '=')) == NULL) {
			snprintf(err, errlen, "is KEY=value[,KEY=value...]");
			goto out;
		}
		if ((keys[n] = strndup(p, eq - p)) == NULL)
			goto nomem;
		p = eq + 1;
		cur.len = cur.off = 0;
		bad = 0;
		if (*p == '"' || *p == '\'') {
			for (q = *p++; *p != '\0' && *p != q; p++) {
				if (*p == '\\' && p[1] != '\0')
					p++;
				bad |= buf_append(&cur, p, 1) == -1;
			}
			if (*p != q) {
				free(keys[n]);
				snprintf(err, errlen, "has an unterminated quote");
				goto out;
			}
			p++;
		} else {
			for (; *p != '\0' && *p != ','; p++)
				bad |= buf_append(&cur, p, 1) == -1;
		}
		bad |= buf_append(&cur, "", 1) == -1;
		if (bad || (vals[n] = strdup(cur.data)) == NULL) {
			free(keys[n]);
			goto nomem;
		}
		n++;
	}
	msgpack_pack_map(pk, n);
	for (k = 0; k < n; k++) {
		program_pack_str(pk, keys[k]);
		program_pack_str(pk, vals[k]);
	}
	rc = 0;
	goto out;
nomem:
	snprintf(err, errlen, "out of memory");
out:
	for (k = 0; k < n; k++) {
		free(keys[k]);
		free(vals[k]);
	}
	buf_free(&cur);
	return rc;
}

/* "32:REBOOT, 33:CRASH" into a msgpack map. */
static int
program_pack_exit_codes(msgpack_packer *pk, const char *v, char *err,
    size_t errlen)
{
	char **items = program_list_split(v), **it;
	size_t n = 0;

	for (it = items; it != NULL && *it != NULL; it++)
		n++;
	if (items == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	msgpack_pack_map(pk, n);
	for (it = items; *it != NULL; it++) {
		char *colon = strchr(*it, ':');

		if (colon == NULL || !isdigit((unsigned char)**it)) {
			snprintf(err, errlen, "is CODE:REASON[,CODE:REASON...]");
			program_free_vec(items);
			return -1;
		}
		*colon = '\0';
		msgpack_pack_uint64(pk, strtoul(*it, NULL, 10));
		program_pack_str(pk, colon + 1);
	}
	program_free_vec(items);
	return 0;
}

/*
 * Keys of supervisord's [program:x] that ward has no use for: ignored with
 * a warning. Only these: any other key ward does not know is an error.
 * (ward rotates both streams at logfile_maxbytes/logfile_backups, hence
 * the stderr_logfile_* ones; it always stops the whole group.)
 */
static const char *const program_unmapped[] = {
	"numprocs", "numprocs_start", "process_name", "priority", "stopasgroup",
	"killasgroup", "serverurl", "stdout_capture_maxbytes",
	"stdout_events_enabled", "stdout_syslog", "stderr_capture_maxbytes",
	"stderr_events_enabled", "stderr_syslog", "stderr_logfile_maxbytes",
	"stderr_logfile_backups", NULL
};

enum { K_STR, K_BOOL, K_UINT, K_INT, K_SPECIAL };

/*
 * Keys that go into the instance.create map as they are (or renamed).
 * capture_output, stdout_logfile, stderr_logfile and redirect_stderr are
 * not here: program_conf_build decides the output keys from all four.
 */
static const struct {
	const char	*key;		/* in the file */
	const char	*create;	/* in instance.create */
	int		 type;
	int		 expand;	/* %(...)s applies */
} program_keys[] = {
	{ "command", "argv", K_SPECIAL, 1 },
	{ "environment", "env", K_SPECIAL, 1 },
	{ "exit_codes", "exit_codes", K_SPECIAL, 0 },
	{ "user", "user", K_SPECIAL, 0 },
	{ "group", "group", K_SPECIAL, 0 },
	{ "directory", "cwd", K_STR, 1 },
	{ "cwd", "cwd", K_STR, 1 },
	{ "profile", "profile", K_STR, 0 },
	{ "rss_mapping", "rss_mapping", K_STR, 0 },
	{ "notify", "notify", K_STR, 0 },
	{ "umask", "umask", K_STR, 0 },
	{ "log_overflow", "log_overflow", K_STR, 0 },
	{ "detect_hangup", "detect_hangup", K_BOOL, 0 },
	{ "stdout_journal", "stdout_journal", K_BOOL, 0 },
	{ "hangup_timeout_ms", "hangup_timeout_ms", K_UINT, 0 },
	{ "watchdog_ms", "watchdog_ms", K_UINT, 0 },
	{ "logfile_maxbytes", "logfile_maxbytes", K_UINT, 0 },
	{ "stdout_logfile_maxbytes", "logfile_maxbytes", K_UINT, 0 },
	{ "logfile_backups", "logfile_backups", K_UINT, 0 },
	{ "stdout_logfile_backups", "logfile_backups", K_UINT, 0 },
	{ "log_ring_bytes", "log_ring_bytes", K_UINT, 0 },
	{ "log_rate_lines", "log_rate_lines", K_UINT, 0 },
	{ "nice", "nice", K_INT, 0 },
	{ "oom_score_adj", "oom_score_adj", K_INT, 0 },
	{ NULL, NULL, 0, 0 }
};

/* A name for "user"/"group": numbers pass; names are looked up now, at
 * load (never at spawn: the vfork child cannot, and the loop must not). */
static int
program_pack_user(msgpack_packer *pk, const char *key, const char *v,
    char *err, size_t errlen)
{
	char buf[64];

	if (isdigit((unsigned char)v[0]))
		snprintf(buf, sizeof buf, "%s", v);
	else if (strcmp(key, "user") == 0) {
		struct passwd *pw = getpwnam(v);

		if (pw == NULL) {
			snprintf(err, errlen, "no user '%s'", v);
			return -1;
		}
		snprintf(buf, sizeof buf, "%u:%u", (unsigned)pw->pw_uid,
		    (unsigned)pw->pw_gid);
	} else {
		struct group *gr = getgrnam(v);

		if (gr == NULL) {
			snprintf(err, errlen, "no group '%s'", v);
			return -1;
		}
		msgpack_pack_uint64(pk, gr->gr_gid);
		return 0;
	}
	if (strcmp(key, "group") == 0)
		msgpack_pack_uint64(pk, strtoul(buf, NULL, 10));
	else
		program_pack_str(pk, buf);
	return 0;
}

/* Policy defaults: supervisord's where it has one, systemd's otherwise. */
static void
program_policy_defaults(struct program_policy *pol)
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

/* A policy key; 1 handled, 0 not a policy key, -1 bad value (err set). */
static int
program_policy_key(struct program_policy *pol, const char *k, const char *v,
    char *err, size_t errlen)
{
	uint64_t n;
	int b;

#define NUM(field, scale, max) do {					\
	if (program_number(v, scale, max, &n) == -1) {			\
		snprintf(err, errlen, "bad value '%s'", v);		\
		return -1;						\
	}								\
	pol->field = n;							\
} while (0)
	if (strcmp(k, "autostart") == 0) {
		if (program_bool(v, &b) == -1)
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
			snprintf(err, errlen, "is no, on-failure or always");
			return -1;
		}
	} else if (strcmp(k, "autorestart") == 0) {
		/* supervisord: true, false, unexpected. */
		if (strcasecmp(v, "unexpected") == 0)
			pol->restart = RESTART_ON_FAILURE;
		else if (program_bool(v, &b) == 0)
			pol->restart = b ? RESTART_ALWAYS : RESTART_NO;
		else {
			snprintf(err, errlen, "is true, false or unexpected");
			return -1;
		}
	} else if (strcmp(k, "restart_on") == 0) {
		char **it;

		program_free_vec(pol->restart_on);
		if ((pol->restart_on = program_list_split(v)) == NULL)
			goto nomem;
		for (it = pol->restart_on; it != NULL && *it != NULL; it++) {
			if (!reason_name_valid(*it, strlen(*it))) {
				snprintf(err, errlen, "'%s' is not a death reason", *it);
				return -1;
			}
		}
	} else if (strcmp(k, "backoff_initial_ms") == 0)
		NUM(backoff_initial_ms, 1, 3600000);
	else if (strcmp(k, "backoff_max_ms") == 0)
		NUM(backoff_max_ms, 1, 86400000);
	else if (strcmp(k, "backoff_reset_ms") == 0)
		NUM(backoff_reset_ms, 1, 86400000);
	else if (strcmp(k, "max_restarts") == 0 || strcmp(k, "startretries") == 0)
		NUM(max_restarts, 1, 1000);
	else if (strcmp(k, "restart_window_ms") == 0)
		NUM(restart_window_ms, 1, 86400000);
	else if (strcmp(k, "startsecs") == 0)
		NUM(startsecs_ms, 1000, 86400000);
	else if (strcmp(k, "startsecs_ms") == 0)
		NUM(startsecs_ms, 1, 86400000);
	else if (strcmp(k, "stopwaitsecs") == 0)
		NUM(stop_timeout_ms, 1000, 3600000);
	else if (strcmp(k, "stop_timeout_ms") == 0)
		NUM(stop_timeout_ms, 1, 3600000);
	else if (strcmp(k, "readiness") == 0) {
		if (strcmp(v, "notify") == 0)
			pol->readiness_notify = 1;
		else if (strcmp(v, "startsecs") == 0)
			pol->readiness_notify = 0;
		else {
			snprintf(err, errlen, "is notify or startsecs");
			return -1;
		}
	} else if (strcmp(k, "after") == 0) {
		program_free_vec(pol->after);
		if ((pol->after = program_list_split(v)) == NULL)
			goto nomem;
	} else if (strcmp(k, "requires") == 0) {
		program_free_vec(pol->requires);
		if ((pol->requires = program_list_split(v)) == NULL)
			goto nomem;
	} else if (strcmp(k, "stopsignal") == 0) {
		if ((pol->stop_signal = signal_parse(v)) == -1) {
			snprintf(err, errlen, "'%s' is not a signal", v);
			return -1;
		}
	} else if (strcmp(k, "exitcodes") == 0) {
		char **items = program_list_split(v), **it;

		if (items == NULL)
			goto nomem;
		memset(pol->success_codes, 0, sizeof pol->success_codes);
		for (it = items; it != NULL && *it != NULL; it++) {
			if (program_number(*it, 1, 255, &n) == -1) {
				snprintf(err, errlen, "'%s' is not an exit code", *it);
				program_free_vec(items);
				return -1;
			}
			pol->success_codes[n / 32] |= 1U << (n % 32);
		}
		program_free_vec(items);
	} else
		return 0;
	return 1;
badbool:
	snprintf(err, errlen, "is true or false");
	return -1;
nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
#undef NUM
}

void
program_conf_free(struct conf_program *cp)
{
	if (cp == NULL)
		return;
	free(cp->name);
	free(cp->file);
	free(cp->spec);
	program_free_vec(cp->policy.restart_on);
	program_free_vec(cp->policy.after);
	program_free_vec(cp->policy.requires);
	free(cp);
}

/* c declares name at file:line, whether it loads or not: reserve it. */
static void
program_conf_declare(struct conf *c, const char *name, const char *file,
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

/* Check a spec the way instance.create would. NULL, or why not. */
static int
program_conf_check(const char *spec, size_t len, char *err, size_t errlen)
{
	const msgpack_object *args[ARG_MAX];
	struct instance_config cfg;
	struct ward_err e = WARD_ERR_INIT;
	msgpack_unpacked u;
	size_t off = 0;
	int rc = -1;

	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, spec, len, &off) != MSGPACK_UNPACK_SUCCESS)
		snprintf(err, errlen, "internal: cannot read back its spec");
	else if ((rc = codec_args(&u.data, config_spec, args, &e)) == 0) {
		rc = config_parse_args(&cfg, args, peer_self(), &e);
		config_free(&cfg);
	}
	if (rc == -1 && e.code != NULL)
		snprintf(err, errlen, "%s", e.msg);
	msgpack_unpacked_destroy(&u);
	return rc;
}

/*
 * stdout_logfile or stderr_logfile (stream) as supervisord reads it, into
 * a path, or NULL for no file. NONE: no file; the output is still captured
 * into the ring, so wardctl tail works. AUTO: supervisord means a file of
 * its choosing (in childlogdir), and a user who wrote AUTO expects one, so
 * it is STATE_DIR/logs/NAME-stdout.log (or -stderr.log), in the directory
 * statedir.c made at start. Anything else is a
 * path, checked later as instance.create checks it. err is set on failure.
 */
static char *
program_logfile(const char *v, const char *name, int stream, char *err,
    size_t errlen)
{
	char *path;

	if (strcasecmp(v, "NONE") == 0)
		return NULL;
	if (strcasecmp(v, "AUTO") != 0)
		path = strdup(v);
	else
		path = str_printf("%s/logs/%s-%s.log", opts.state_dir, name,
		    output_stream_name(stream));
	if (path == NULL)
		snprintf(err, errlen, "out of memory");
	return path;
}

/* The value of a program_keys key of type type, packed; err set if bad. */
static void
program_pack_value(msgpack_packer *pk, int type, const char *key,
    const char *v, char *err, size_t errlen)
{
	uint64_t n;
	char **argv, *end;
	size_t a;
	long l;
	int b;

	switch (type) {
	case K_STR:
		program_pack_str(pk, v);
		return;
	case K_BOOL:
		if (program_bool(v, &b) == -1) {
			snprintf(err, errlen, "is true or false");
			b = 0;
		}
		if (b)
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		return;
	case K_UINT:
		if (program_number(v, 1, UINT32_MAX, &n) == -1) {
			snprintf(err, errlen, "bad value '%s'", v);
			n = 0;
		}
		msgpack_pack_uint64(pk, n);
		return;
	case K_INT:
		l = strtol(v, &end, 10);
		if (*end != '\0' || end == v)
			snprintf(err, errlen, "bad value '%s'", v);
		msgpack_pack_int64(pk, l);
		return;
	}
	if (strcmp(key, "command") == 0) {
		if (program_split_command(v, &argv, err, errlen) == 0) {
			for (a = 0; argv[a] != NULL; a++)
				;
			msgpack_pack_array(pk, a);
			for (a = 0; argv[a] != NULL; a++)
				program_pack_str(pk, argv[a]);
			program_free_vec(argv);
		} else
			msgpack_pack_nil(pk);
	} else if (strcmp(key, "environment") == 0) {
		if (program_pack_env(pk, v, err, errlen) == -1)
			msgpack_pack_nil(pk);
	} else if (strcmp(key, "exit_codes") == 0) {
		if (program_pack_exit_codes(pk, v, err, errlen) == -1)
			msgpack_pack_nil(pk);
	} else if (program_pack_user(pk, key, v, err, errlen) == -1)
		msgpack_pack_nil(pk);
}

static int
program_is_unmapped(const char *key)
{
	size_t j;

	for (j = 0; program_unmapped[j] != NULL; j++) {
		if (strcmp(key, program_unmapped[j]) == 0)
			return 1;
	}
	return 0;
}

/*
 * Understand one [program:NAME] section: its create map (packed) and its
 * policy. NULL when it cannot be loaded; every problem is in c->errors,
 * every key ignored in c->warnings.
 *
 * Output is captured unless capture_output = false, as supervisord always
 * captures: wardctl tail works on any declared program. Log files only
 * where stdout_logfile/stderr_logfile name one (or AUTO); redirect_stderr
 * sends stderr to stdout's file (the rings stay one per stream).
 */
struct conf_program *
program_conf_build(struct conf *c, const char *name, const char *file,
    int line, const struct conf_kv *kv, size_t nkv)
{
	static const char *const log_keys[OUTPUT_NSTREAMS] = {
		[OUTPUT_STDOUT] = "stdout_logfile",
		[OUTPUT_STDERR] = "stderr_logfile",
	};
	struct conf_program *cp;
	msgpack_sbuffer sb;
	msgpack_packer pk, bpk, rpk;
	struct buf body = { 0 }, rl = { 0 };
	char err[512], *v, *logs[OUTPUT_NSTREAMS] = { NULL };
	struct ward_err ne = WARD_ERR_INIT;
	size_t k, j, npairs = 1, nrl = 0;
	int bad = 0, redirect = 0, capture = 1, s, rc;

#define ERR(l, ...) do {						\
	char _m[600];							\
	snprintf(_m, sizeof _m, __VA_ARGS__);				\
	conf_error(c, file, (l), _m);					\
	bad = 1;							\
} while (0)
	if (config_name_valid(name, &ne) == -1) {
		ERR(line, "[program:%s]: %s", name, ne.msg);
		return NULL;
	}
	program_conf_declare(c, name, file, line);
	if ((cp = calloc(1, sizeof *cp)) == NULL ||
	    (cp->name = strdup(name)) == NULL ||
	    (cp->file = strdup(file)) == NULL) {
		program_conf_free(cp);
		ERR(line, "[program:%s]: out of memory", name);
		return NULL;
	}
	cp->line = line;
	program_policy_defaults(&cp->policy);

	/* The map's pairs go to body, counted; its header is packed last. */
	msgpack_packer_init(&bpk, &body, codec_sbuffer_write);
	msgpack_packer_init(&rpk, &rl, codec_sbuffer_write);
	program_pack_str(&bpk, "name");
	program_pack_str(&bpk, name);
	for (k = 0; k < nkv; k++) {
		const char *key = kv[k].key, *val = kv[k].value;

		err[0] = '\0';
		for (j = 0; program_keys[j].key != NULL; j++) {
			if (strcmp(key, program_keys[j].key) == 0)
				break;
		}
		for (s = 0; s < OUTPUT_NSTREAMS; s++) {
			if (strcmp(key, log_keys[s]) == 0)
				break;
		}
		if (program_keys[j].key != NULL) {
			v = program_keys[j].expand ?
			    program_expand(val, name, file) : strdup(val);
			program_pack_str(&bpk, program_keys[j].create);
			if (v != NULL)
				program_pack_value(&bpk, program_keys[j].type,
				    key, v, err, sizeof err);
			else {
				msgpack_pack_nil(&bpk);
				snprintf(err, sizeof err, "out of memory");
			}
			npairs++;
			free(v);
		} else if (s < OUTPUT_NSTREAMS) {
			free(logs[s]);
			logs[s] = NULL;
			if ((v = program_expand(val, name, file)) != NULL)
				logs[s] = program_logfile(v, name, s, err,
				    sizeof err);
			else
				snprintf(err, sizeof err, "out of memory");
			free(v);
		} else if (strcmp(key, "capture_output") == 0 ||
		    strcmp(key, "redirect_stderr") == 0) {
			if (program_bool(val, key[0] == 'c' ? &capture :
			    &redirect) == -1)
				snprintf(err, sizeof err, "is true or false");
		} else if (strncmp(key, "rlimit_", 7) == 0) {
			program_pack_str(&rpk, key + 7);
			program_pack_str(&rpk, val);
			nrl++;
		} else if ((rc = program_policy_key(&cp->policy, key, val, err,
		    sizeof err)) == 0 && program_is_unmapped(key)) {
			char msg[600];

			snprintf(msg, sizeof msg, "[program:%s] %s: supervisord's "
			    "key has no ward equivalent; ignored", name, key);
			conf_warning(c, file, kv[k].line, msg);
		} else if (rc == 0)
			ERR(kv[k].line, "[program:%s] unknown key '%s'", name, key);
		if (err[0] != '\0')
			ERR(kv[k].line, "[program:%s] %s: %s", name, key, err);
	}
	if (redirect) {
		free(logs[OUTPUT_STDERR]);
		logs[OUTPUT_STDERR] = NULL;
		if (logs[OUTPUT_STDOUT] != NULL && (logs[OUTPUT_STDERR] =
		    strdup(logs[OUTPUT_STDOUT])) == NULL)
			ERR(line, "[program:%s] redirect_stderr: out of memory",
			    name);
	}
	for (s = 0; s < OUTPUT_NSTREAMS; s++) {
		if (logs[s] == NULL)
			continue;
		program_pack_str(&bpk, log_keys[s]);
		program_pack_str(&bpk, logs[s]);
		npairs++;
		free(logs[s]);
	}
	program_pack_str(&bpk, "capture_output");
	if (capture)
		msgpack_pack_true(&bpk);
	else
		msgpack_pack_false(&bpk);
	npairs++;
	if (nrl > 0) {
		program_pack_str(&bpk, "rlimits");
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
	if (!bad && program_conf_check(sb.data, sb.size, err, sizeof err) == -1)
		ERR(line, "[program:%s]: %s", name, err);
	if (bad) {
		msgpack_sbuffer_destroy(&sb);
		program_conf_free(cp);
		return NULL;
	}
	cp->speclen = sb.size;
	cp->spec = msgpack_sbuffer_release(&sb);
	return cp;
#undef ERR
}

/* ---- running programs */

/* Make the program's instance from its spec, as instance.create would. */
static int
program_make_instance(struct program *p, char *err, size_t errlen)
{
	const msgpack_object *args[ARG_MAX];
	struct instance_config cfg;
	struct ward_err e = WARD_ERR_INIT;
	int parsed = 0;
	msgpack_unpacked u;
	struct instance *i;
	size_t off = 0;

	p->name_holder = 0;
	if ((i = instance_find_name(p->conf->name)) != NULL) {
		/* Taken before it was declared: the program waits for it. */
		p->name_holder = i->id;
		snprintf(err, errlen, "the name is held by instance %" PRIu64
		    " of uid %u; the program is created once that instance is "
		    "removed", i->id, (unsigned)i->owner_uid);
		return -1;
	}
	msgpack_unpacked_init(&u);
	snprintf(err, errlen, "internal: cannot read back its spec");
	if (msgpack_unpack_next(&u, p->conf->spec, p->conf->speclen, &off) !=
	    MSGPACK_UNPACK_SUCCESS ||
	    codec_args(&u.data, config_spec, args, &e) == -1 ||
	    (parsed = 1, config_parse_args(&cfg, args, peer_self(), &e)) == -1) {
		if (parsed)
			config_free(&cfg);
		if (e.code != NULL)
			snprintf(err, errlen, "%s", e.msg);
		msgpack_unpacked_destroy(&u);
		return -1;
	}
	msgpack_unpacked_destroy(&u);
	if ((i = instance_new(&cfg, peer_self(), &e)) == NULL) {
		snprintf(err, errlen, "%s", e.msg);
		config_free(&cfg);
		return -1;
	}
	i->program = p;
	p->inst = i;
	i->stop_signal = p->conf->policy.stop_signal;
	i->stop_timeout_ms = p->conf->policy.stop_timeout_ms;
	return 0;
}

/* Is the program a requirement has to wait for ready? */
static int
program_dep_ready(const char *name, int required)
{
	struct program *d = program_find(name);

	if (d == NULL)
		return !required;	/* after= a program not declared: ignore */
	if (d->state == PROGRAM_RUNNING && d->ready)
		return 1;
	/* after= only orders programs that are starting at all. */
	return !required && (d->state == PROGRAM_STOPPED ||
	    d->state == PROGRAM_EXITED || d->state == PROGRAM_FATAL);
}

static int
program_deps_ready(const struct program *p)
{
	char **n;

	for (n = p->conf->policy.after; n != NULL && *n != NULL; n++) {
		if (!program_dep_ready(*n, 0))
			return 0;
	}
	for (n = p->conf->policy.requires; n != NULL && *n != NULL; n++) {
		if (!program_dep_ready(*n, 1))
			return 0;
	}
	return 1;
}

/* Spawn now (dependencies are ready). A spawn failure comes back through
 * program_instance_died like any death. */
static void
program_spawn(struct program *p)
{
	struct ward_err e = WARD_ERR_INIT;

	p->ready = 0;
	program_set_state(p, PROGRAM_RUNNING);
	if (instance_start(p->inst, &e) == -1) {
		log_warnx("program %s: %s", p->conf->name, e.msg);
		return;
	}
	if (!p->conf->policy.readiness_notify) {
		ev_timer_set(&p->startsecs_t, p->conf->policy.startsecs_ms / 1000.0, 0.);
		ev_timer_start(ward_loop, &p->startsecs_t);
	}
}

/*
 * Start it, or wait for what it needs; required programs are pulled in.
 * A program whose name another instance holds has nothing to start yet:
 * program_apply_cb wants it again once it has its instance.
 */
static void
program_want(struct program *p)
{
	char **n;

	if (p->inst == NULL)
		return;

	for (n = p->conf->policy.requires; n != NULL && *n != NULL; n++) {
		struct program *d = program_find(*n);

		if (d != NULL && (d->state == PROGRAM_STOPPED ||
		    d->state == PROGRAM_EXITED))
			program_want(d);
	}
	if (program_deps_ready(p))
		program_spawn(p);
	else
		program_set_state(p, PROGRAM_WAITING);
}

/* Start every waiting program whose dependencies are now ready. */
static void
program_start_waiting(void)
{
	struct program *p;
	int again;

	do {
		again = 0;
		TAILQ_FOREACH(p, &programs, entry) {
			if (p->state == PROGRAM_WAITING && program_deps_ready(p)) {
				program_spawn(p);
				again = 1;
			}
		}
	} while (again);
}

static void
program_became_ready(struct program *p)
{
	if (p->ready)
		return;
	p->ready = 1;
	if (p->conf->policy.readiness_notify)
		p->attempt = 0;	/* READY=1 resets the backoff */
	ev_timer_stop(ward_loop, &p->startsecs_t);
	log_info("program %s is ready", p->conf->name);
	program_start_waiting();
}

/* startsecs passed with the instance still running: it counts as up. */
static void
program_startsecs_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct program *p = container_of(t, struct program, startsecs_t);

	if (p->state == PROGRAM_RUNNING && p->inst != NULL &&
	    p->inst->state == INSTANCE_RUNNING)
		program_became_ready(p);
}

/* Called by instance_set_payload: READY=1 may make a program ready. */
static void
program_payload_changed(struct instance *i)
{
	if (i->program != NULL && i->payload >= PAYLOAD_READY &&
	    i->payload != PAYLOAD_HANGUP && i->program->state == PROGRAM_RUNNING)
		program_became_ready(i->program);
}

/* Stop what requires p: p is fatal, so they cannot run. */
static void
program_fatal(struct program *p, const char *why)
{
	struct program *d;
	char **n;

	program_set_state(p, PROGRAM_FATAL);
	free(p->fatal_reason);
	p->fatal_reason = strdup(why);
	log_warnx("program %s is fatal: %s", p->conf->name, why);
	if (p->inst != NULL)
		event_emit(EVENT_FATAL, p->inst);
	TAILQ_FOREACH(d, &programs, entry) {
		for (n = d->conf->policy.requires; n != NULL && *n != NULL; n++) {
			if (strcmp(*n, p->conf->name) != 0)
				continue;
			char note[256];

			snprintf(note, sizeof note, "required program '%s' is fatal",
			    p->conf->name);
			if (d->state == PROGRAM_RUNNING && d->inst != NULL &&
			    d->inst->state == INSTANCE_RUNNING) {
				free(d->inst->failure_note);
				d->inst->failure_note = strdup(note);
				d->inst->killed_by = KILLED_BY_DEPENDENCY;
				instance_stop(d->inst, d->conf->policy.stop_timeout_ms);
			}
			if (d->state != PROGRAM_FATAL)
				program_fatal(d, note);
			break;
		}
	}
}

/* The restart ring: how many restarts within the window, this one counted. */
static size_t
program_count_restart(struct program *p, ev_tstamp now)
{
	size_t cap = p->conf->policy.max_restarts + 1, k, n = 0;
	ev_tstamp window = p->conf->policy.restart_window_ms / 1000.0;

	if (p->restarts == NULL || p->nrestarts != cap) {
		free(p->restarts);
		p->restarts = calloc(cap, sizeof *p->restarts);
		p->nrestarts = p->restarts ? cap : 0;
		p->restarts_head = 0;
		if (p->restarts == NULL)
			return 0;
	}
	p->restarts[p->restarts_head] = now;
	p->restarts_head = (p->restarts_head + 1) % cap;
	for (k = 0; k < cap; k++) {
		if (p->restarts[k] > 0 && now - p->restarts[k] <= window)
			n++;
	}
	return n;
}

/* Whether the policy wants this death restarted. */
static int
program_should_restart(const struct program *p, const struct exit_record *r,
    int failed_start)
{
	const struct program_policy *pol = &p->conf->policy;
	int ok;
	char **n;

	if (pol->restart == RESTART_NO)
		return 0;
	if (pol->restart_on != NULL) {
		for (n = pol->restart_on; *n != NULL; n++) {
			if (strcmp(*n, r->death_reason) == 0)
				return 1;
		}
		return failed_start;
	}
	if (pol->restart == RESTART_ALWAYS)
		return 1;
	ok = r->exited && r->exit_code >= 0 && r->exit_code < 256 &&
	    (pol->success_codes[r->exit_code / 32] & (1U << (r->exit_code % 32))) &&
	    strcmp(r->death_reason, "SHUTDOWN") == 0;
	if (r->exited && r->exit_code != 0 && (pol->success_codes[r->exit_code /
	    32] & (1U << (r->exit_code % 32))))
		ok = 1;		/* exitcodes lists it as expected */
	return failed_start || !ok;
}

/*
 * Called from instance_finish after every death of a program's instance
 * (spawn failures included). Decides: stay down, back off and restart, or
 * give up. Never starts or frees anything here: the caller may still hold
 * the instance; restarts go through timers.
 */
static void
program_instance_died(struct instance *i)
{
	struct program *p = i->program;
	const struct exit_record *r = i->exit;
	ev_tstamp now = ev_now(ward_loop);
	uint64_t delay;
	int failed_start;
	char why[256];

	if (p == NULL || r == NULL)
		return;
	ev_timer_stop(ward_loop, &p->startsecs_t);
	if (p->removing || p->next_conf != NULL) {
		ev_timer_set(&p->apply_t, 0., 0.);
		ev_timer_start(ward_loop, &p->apply_t);
		program_set_state(p, PROGRAM_STOPPED);
		return;
	}
	if (p->state == PROGRAM_FATAL)
		return;		/* stopped because a requirement is fatal */
	if (i->stop_requested || loop_shutting_down()) {
		program_set_state(p, PROGRAM_STOPPED);
		return;
	}
	failed_start = !p->ready && r->uptime_ms < p->conf->policy.startsecs_ms;
	if (!program_should_restart(p, r, failed_start)) {
		program_set_state(p, PROGRAM_EXITED);
		program_start_waiting();	/* after= may be satisfied now */
		return;
	}
	/*
	 * Stable long enough, or it said READY=1: start the backoff over.
	 * (Ready by startsecs alone does not count: with startsecs = 0 a crash
	 * loop would never back off.)
	 */
	if ((p->ready && p->conf->policy.readiness_notify) ||
	    r->uptime_ms >= p->conf->policy.backoff_reset_ms)
		p->attempt = 0;
	if (program_count_restart(p, now) > p->conf->policy.max_restarts) {
		snprintf(why, sizeof why, "%u restarts within %u ms (last death: "
		    "%s)", p->conf->policy.max_restarts,
		    p->conf->policy.restart_window_ms, r->death_reason);
		program_fatal(p, why);
		return;
	}
	delay = (uint64_t)p->conf->policy.backoff_initial_ms << (p->attempt < 30 ?
	    p->attempt : 30);
	if (delay > p->conf->policy.backoff_max_ms)
		delay = p->conf->policy.backoff_max_ms;
	p->attempt++;
	p->restart_count++;
	program_set_state(p, PROGRAM_BACKOFF);
	ev_timer_set(&p->backoff_t, delay / 1000.0, 0.);
	ev_timer_start(ward_loop, &p->backoff_t);
	log_info("program %s died (%s)%s: restart %u in %" PRIu64 " ms",
	    p->conf->name, r->death_reason, failed_start ? " before startsecs" :
	    "", p->attempt, delay);
	event_emit(EVENT_RESTARTING, i);
}

static void
program_backoff_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct program *p = container_of(t, struct program, backoff_t);

	if (p->state != PROGRAM_BACKOFF || p->inst == NULL)
		return;
	program_want(p);
}

/*
 * wardctl start on a program: clear a fatal state and its restart count,
 * then start it (waiting for its dependencies as at boot).
 */
int
program_start(struct program *p, char *err, size_t errlen)
{
	if (p->inst == NULL) {
		snprintf(err, errlen, "program '%s' is being replaced", p->conf->name);
		return -1;
	}
	if (p->inst->state == INSTANCE_RUNNING) {
		snprintf(err, errlen, "program '%s' is already running",
		    p->conf->name);
		return -1;
	}
	ev_timer_stop(ward_loop, &p->backoff_t);
	p->attempt = 0;
	free(p->restarts);
	p->restarts = NULL;
	p->nrestarts = 0;
	free(p->fatal_reason);
	p->fatal_reason = NULL;
	program_set_state(p, PROGRAM_STOPPED);
	program_want(p);
	return 0;
}

/*
 * wardctl stop on a program that is not running: a pending restart (backoff)
 * or a start waiting for its dependencies is called off, as supervisorctl
 * stop does in BACKOFF. Returns -1 when nothing was pending.
 */
int
program_cancel(struct program *p)
{
	if (p->state != PROGRAM_BACKOFF && p->state != PROGRAM_WAITING)
		return -1;
	ev_timer_stop(ward_loop, &p->backoff_t);
	program_set_state(p, PROGRAM_STOPPED);
	log_info("program %s: pending start called off", p->conf->name);
	return 0;
}

static struct program *
program_new(struct conf_program *cp)
{
	struct program *p;
	char err[512];

	if ((p = calloc(1, sizeof *p)) == NULL)
		return NULL;
	p->conf = cp;
	ev_init(&p->backoff_t, program_backoff_cb);
	ev_init(&p->startsecs_t, program_startsecs_cb);
	ev_init(&p->apply_t, program_apply_cb);
	/* Its name held by another instance: kept, waiting (program_read
	 * has put that in the errors already). */
	if (program_make_instance(p, err, sizeof err) == -1 &&
	    p->name_holder == 0) {
		log_warnx("%s:%d: [program:%s]: %s", cp->file, cp->line, cp->name,
		    err);
		free(p);
		return NULL;
	}
	table_insert(&programs_by_name, &p->by_name, cp->name, strlen(cp->name));
	TAILQ_INSERT_TAIL(&programs, p, entry);
	return p;
}

static void
program_free(struct program *p)
{
	ev_timer_stop(ward_loop, &p->backoff_t);
	ev_timer_stop(ward_loop, &p->startsecs_t);
	ev_timer_stop(ward_loop, &p->apply_t);
	table_remove(&programs_by_name, &p->by_name);
	TAILQ_REMOVE(&programs, p, entry);
	if (p->inst != NULL) {
		p->inst->program = NULL;
		if (p->inst->state != INSTANCE_RUNNING)
			instance_remove(p->inst);
	}
	program_conf_free(p->conf);
	program_conf_free(p->next_conf);
	free(p->restarts);
	free(p->fatal_reason);
	free(p);
}

/*
 * Apply what was deferred: after a death that an update waited for,
 * replace or forget the program; once the instance that held a waiting
 * program's name is removed (program_name_freed), make its instance.
 */
static void
program_apply_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct program *p = container_of(t, struct program, apply_t);
	struct conf_program *next;
	int changed;
	char err[512];

	if (p->inst != NULL && p->inst->state == INSTANCE_RUNNING)
		return;		/* not dead yet; its death comes back here */
	if (p->removing) {
		log_info("program %s removed", p->conf->name);
		program_free(p);
		return;
	}
	next = p->next_conf;
	p->next_conf = NULL;
	if ((changed = next != NULL)) {
		if (p->inst != NULL) {
			p->inst->program = NULL;
			instance_remove(p->inst);
			p->inst = NULL;
		}
		/* The name index points into the conf: re-key it on the new one. */
		table_remove(&programs_by_name, &p->by_name);
		program_conf_free(p->conf);
		p->conf = next;
		table_insert(&programs_by_name, &p->by_name, next->name,
		    strlen(next->name));
	} else if (p->inst != NULL)
		return;		/* nothing deferred is left */
	p->attempt = 0;
	free(p->restarts);
	p->restarts = NULL;
	p->nrestarts = 0;
	if (program_make_instance(p, err, sizeof err) == -1) {
		log_warnx("program %s: %s", p->conf->name, err);
		program_set_state(p, p->name_holder != 0 ? PROGRAM_STOPPED :
		    PROGRAM_FATAL);
		return;
	}
	log_info("program %s %s", p->conf->name, changed ? "changed: restarting" :
	    "has its name: created");
	program_set_state(p, PROGRAM_STOPPED);
	if (p->conf->policy.autostart)
		program_want(p);
}

/*
 * instance.c: an instance that ran no program was removed. A program
 * waiting for its name gets its instance, from apply_t rather than inside
 * the removal.
 */
static void
program_name_freed(const char *name)
{
	struct program *p = program_find(name);

	if (p == NULL || p->inst != NULL || p->name_holder == 0 || p->removing)
		return;
	ev_timer_set(&p->apply_t, 0., 0.);
	ev_timer_start(ward_loop, &p->apply_t);
}

/*
 * cmd-instance.c: may a client's instance.create take name? 1 (with a
 * message in err) when a declared program has it; where it is declared is
 * said to admins only.
 */
int
program_name_reserved(const char *name, int admin, char *err, size_t errlen)
{
	struct table_node *n;
	struct program_decl *d;

	n = table_find(&program_decls_by_name, name, strlen(name));
	if (n == NULL)
		return 0;
	d = container_of(n, struct program_decl, by_name);
	if (admin)
		snprintf(err, errlen, "the name '%s' belongs to a program "
		    "declared in %s:%d; choose another name", name, d->file,
		    d->line);
	else
		snprintf(err, errlen, "the name '%s' belongs to a program "
		    "declared in wardd's configuration; choose another name",
		    name);
	return 1;
}

/* c's declared names become the reserved ones (c->decls is emptied). */
static void
program_reserve(struct conf *c)
{
	struct program_decl *v = NULL;
	size_t k;

	if (c->ndecls > 0 && (v = calloc(c->ndecls, sizeof *v)) == NULL) {
		log_warnx("out of memory: declared names stay as they were");
		return;
	}
	for (k = 0; k < program_ndecls; k++) {
		free(program_decls[k].name);
		free(program_decls[k].file);
	}
	free(program_decls);
	table_free(&program_decls_by_name);
	table_init(&program_decls_by_name);
	for (k = 0; k < c->ndecls; k++) {
		v[k].name = c->decls[k].name;
		v[k].file = c->decls[k].file;
		v[k].line = c->decls[k].line;
		if (table_insert(&program_decls_by_name, &v[k].by_name,
		    v[k].name, strlen(v[k].name)) == -1)
			log_warnx("out of memory: name '%s' not reserved",
			    v[k].name);
	}
	program_decls = v;
	program_ndecls = c->ndecls;
	free(c->decls);
	c->decls = NULL;
	c->ndecls = 0;
}

/*
 * Each program whose name a non-program instance holds: an error naming
 * the holder (program_new keeps such a program waiting for the name).
 */
static void
program_check_names(struct conf *c)
{
	struct conf_program *cp;
	struct instance *i;
	char msg[600];

	TAILQ_FOREACH(cp, &c->programs, entry) {
		if ((i = instance_find_name(cp->name)) == NULL || i->program != NULL)
			continue;
		snprintf(msg, sizeof msg, "[program:%s]: the name is held by "
		    "instance %" PRIu64 " of uid %u; the program is created "
		    "once that instance is removed", cp->name, i->id,
		    (unsigned)i->owner_uid);
		conf_error(c, cp->file, cp->line, msg);
	}
}

/* ---- loading, rereading, updating */

static struct conf_program *
program_conf_find(struct conf *c, const char *name)
{
	struct conf_program *cp;

	TAILQ_FOREACH(cp, &c->programs, entry) {
		if (strcmp(cp->name, name) == 0)
			return cp;
	}
	return NULL;
}

/*
 * Depth-first from cp along after and requires; path holds the names on
 * the way. 1 when the walk comes back to path[0].
 */
static int
program_cycle_walk(struct conf *c, struct conf_program *cp, const char **path,
    int depth)
{
	char **lists[2] = { cp->policy.after, cp->policy.requires }, **n;
	struct conf_program *d;
	int l, k;

	if (depth >= 64)
		return 0;
	for (l = 0; l < 2; l++) {
		for (n = lists[l]; n != NULL && *n != NULL; n++) {
			if (strcmp(*n, path[0]) == 0) {
				path[depth] = *n;
				return depth + 1;
			}
			for (k = 1; k < depth; k++) {
				if (strcmp(path[k], *n) == 0)
					break;
			}
			if (k < depth || (d = program_conf_find(c, *n)) == NULL)
				continue;
			path[depth] = *n;
			if ((k = program_cycle_walk(c, d, path, depth + 1)) > 0)
				return k;
		}
	}
	return 0;
}

/* Refuse every program on a dependency cycle, printing the cycle. */
static void
program_check_cycles(struct conf *c)
{
	struct conf_program *cp, *next;
	const char *path[66];
	char msg[1024], note[1200];
	int n, k;

	TAILQ_FOREACH_SAFE(cp, &c->programs, entry, next) {
		path[0] = cp->name;
		if ((n = program_cycle_walk(c, cp, path, 1)) == 0)
			continue;
		msg[0] = '\0';
		for (k = 0; k < n; k++)
			snprintf(msg + strlen(msg), sizeof msg - strlen(msg), "%s%s",
			    k ? " -> " : "", path[k]);
		snprintf(note, sizeof note, "[program:%s]: dependency cycle %s; "
		    "not loaded", cp->name, msg);
		conf_error(c, cp->file, cp->line, note);
		/* Mark it; removed below so the walk of others still sees it. */
		cp->line = -cp->line - 1;
	}
	TAILQ_FOREACH_SAFE(cp, &c->programs, entry, next) {
		if (cp->line < 0) {
			TAILQ_REMOVE(&c->programs, cp, entry);
			program_conf_free(cp);
		}
	}
}

/* Read the config dir: settings and checked programs. */
static int
program_read(const char *dir, struct conf *c)
{
	memset(c, 0, sizeof *c);
	c->settings.log_level = opts.log_level;
	c->settings.metrics_interval_ms = opts.metrics_interval_ms;
	conf_load(dir, c);
	program_check_cycles(c);
	program_check_names(c);
	program_reserve(c);
	return (int)c->nerrors;
}

/* At start-up: create every declared program, start the autostart ones. */
int
program_load(const char *dir)
{
	struct conf_program *cp;
	struct program *p;
	struct conf c;
	int errors = program_read(dir, &c);

	while ((cp = TAILQ_FIRST(&c.programs)) != NULL) {
		TAILQ_REMOVE(&c.programs, cp, entry);
		if (program_new(cp) == NULL)
			program_conf_free(cp);
	}
	conf_free(&c);
	TAILQ_FOREACH(p, &programs, entry) {
		if (p->conf->policy.autostart && p->state == PROGRAM_STOPPED)
			program_want(p);
	}
	return errors;
}

static int
program_same(const struct conf_program *a, const struct conf_program *b)
{
	const struct program_policy *x = &a->policy, *y = &b->policy;
	char **lx[3] = { x->restart_on, x->after, x->requires };
	char **ly[3] = { y->restart_on, y->after, y->requires };
	int k, j;

	if (a->speclen != b->speclen || memcmp(a->spec, b->spec, a->speclen) != 0)
		return 0;
	if (x->autostart != y->autostart || x->restart != y->restart ||
	    x->backoff_initial_ms != y->backoff_initial_ms ||
	    x->backoff_max_ms != y->backoff_max_ms ||
	    x->backoff_reset_ms != y->backoff_reset_ms ||
	    x->max_restarts != y->max_restarts ||
	    x->restart_window_ms != y->restart_window_ms ||
	    x->startsecs_ms != y->startsecs_ms ||
	    x->readiness_notify != y->readiness_notify ||
	    memcmp(x->success_codes, y->success_codes, sizeof x->success_codes) ||
	    x->stop_signal != y->stop_signal ||
	    x->stop_timeout_ms != y->stop_timeout_ms)
		return 0;
	for (k = 0; k < 3; k++) {
		for (j = 0; lx[k] && ly[k] && lx[k][j] && ly[k][j]; j++) {
			if (strcmp(lx[k][j], ly[k][j]) != 0)
				return 0;
		}
		if ((lx[k] && lx[k][j]) || (ly[k] && ly[k][j]) ||
		    (!lx[k] != !ly[k] && ((lx[k] && lx[k][0]) || (ly[k] && ly[k][0]))))
			return 0;
	}
	return 1;
}

static void
program_pack_names(msgpack_packer *pk, const char *key, const char *const *v,
    size_t n)
{
	size_t k;

	codec_pack_key(pk, key);
	msgpack_pack_array(pk, n);
	for (k = 0; k < n; k++)
		codec_pack_str(pk, v[k]);
}

/*
 * Compare the config dir with what runs: {added, changed, removed, errors,
 * warnings}.
 * With apply, also make it so (wardctl update, SIGHUP, ward.reload):
 * removed programs stop and go, changed ones restart with the new config,
 * added ones are created (and started if autostart); the rest are not
 * touched.
 */
static int
program_diff(const char *dir, msgpack_packer *pk, int apply)
{
	const char **added, **changed, **removed;
	size_t na = 0, nc = 0, nr = 0, k, n = 0;
	struct conf_program *cp, *cnext;
	struct program *p;
	struct conf c;
	int nomem = 0;

	program_read(dir, &c);
	TAILQ_FOREACH(cp, &c.programs, entry)
		n++;
	TAILQ_FOREACH(p, &programs, entry)
		n++;
	added = calloc(n + 1, sizeof *added);
	changed = calloc(n + 1, sizeof *changed);
	removed = calloc(n + 1, sizeof *removed);
	if (added == NULL || changed == NULL || removed == NULL) {
		/* The caller has started a reply: it gets one, saying why. */
		static const char *const oom[] = { "out of memory: nothing "
		    "compared or applied" };

		if (pk != NULL) {
			msgpack_pack_map(pk, 5);
			program_pack_names(pk, "added", NULL, 0);
			program_pack_names(pk, "changed", NULL, 0);
			program_pack_names(pk, "removed", NULL, 0);
			program_pack_names(pk, "errors", oom, 1);
			program_pack_names(pk, "warnings", NULL, 0);
		}
		nomem = 1;
		goto out;
	}
	/* Names point into configs that live until the reply is packed. */
	TAILQ_FOREACH(p, &programs, entry) {
		if (p->removing)
			continue;
		if (program_conf_find(&c, p->conf->name) == NULL)
			removed[nr++] = p->conf->name;
	}
	TAILQ_FOREACH(cp, &c.programs, entry) {
		if ((p = program_find(cp->name)) == NULL || p->removing)
			added[na++] = cp->name;
		else if (!program_same(p->conf, cp))
			changed[nc++] = cp->name;
	}
	if (pk != NULL) {
		msgpack_pack_map(pk, 5);
		program_pack_names(pk, "added", added, na);
		program_pack_names(pk, "changed", changed, nc);
		program_pack_names(pk, "removed", removed, nr);
		program_pack_names(pk, "errors", (const char *const *)c.errors,
		    c.nerrors);
		program_pack_names(pk, "warnings",
		    (const char *const *)c.warnings, c.nwarnings);
	}
	if (!apply)
		goto out;
	for (k = 0; k < nr; k++) {
		if ((p = program_find(removed[k])) == NULL)
			continue;
		p->removing = 1;
		ev_timer_stop(ward_loop, &p->backoff_t);
		if (p->inst != NULL && p->inst->state == INSTANCE_RUNNING)
			instance_stop(p->inst, p->conf->policy.stop_timeout_ms);
		else {
			ev_timer_set(&p->apply_t, 0., 0.);
			ev_timer_start(ward_loop, &p->apply_t);
		}
	}
	TAILQ_FOREACH_SAFE(cp, &c.programs, entry, cnext) {
		p = program_find(cp->name);
		if (p != NULL && !p->removing && !program_same(p->conf, cp)) {
			TAILQ_REMOVE(&c.programs, cp, entry);
			program_conf_free(p->next_conf);
			p->next_conf = cp;
			ev_timer_stop(ward_loop, &p->backoff_t);
			if (p->inst != NULL && p->inst->state == INSTANCE_RUNNING)
				instance_stop(p->inst, p->conf->policy.stop_timeout_ms);
			else {
				ev_timer_set(&p->apply_t, 0., 0.);
				ev_timer_start(ward_loop, &p->apply_t);
			}
		} else if (p == NULL) {
			TAILQ_REMOVE(&c.programs, cp, entry);
			if ((p = program_new(cp)) == NULL)
				program_conf_free(cp);
			else if (cp->policy.autostart)
				program_want(p);
		}
	}
out:
	free(added);
	free(changed);
	free(removed);
	k = c.nerrors + nomem;
	conf_free(&c);
	return (int)k;
}

void
program_reread(const char *dir, msgpack_packer *pk)
{
	program_diff(dir, pk, 0);
}

int
program_update(const char *dir, msgpack_packer *pk)
{
	return program_diff(dir, pk, 1);
}

/* The "program" map of a status: what the policy is doing. */
void
program_pack(const struct program *p, msgpack_packer *pk)
{
	msgpack_pack_map(pk, 8);
	codec_pack_kv_str(pk, "state", program_state_names[p->state]);
	codec_pack_kv_str(pk, "file", p->conf->file);
	codec_pack_kv_int(pk, "line", p->conf->line);
	codec_pack_kv_bool(pk, "autostart", p->conf->policy.autostart);
	codec_pack_kv_str(pk, "restart", p->conf->policy.restart == RESTART_NO ?
	    "no" : p->conf->policy.restart == RESTART_ALWAYS ? "always" :
	    "on-failure");
	codec_pack_kv_uint(pk, "restarts", p->restart_count);
	codec_pack_kv_bool(pk, "ready", p->ready);
	codec_pack_kv_str(pk, "fatal_reason", p->fatal_reason);
}

/* instance.c's observer: readiness, deaths (the restart policy) and
 * removals (a program's instance, or a name a program waits for). */
void
program_instance_cb(struct instance *i, enum instance_event ev)
{
	switch (ev) {
	case INSTANCE_EV_PAYLOAD:
		program_payload_changed(i);
		break;
	case INSTANCE_EV_DIED:
		program_instance_died(i);	/* never frees i */
		break;
	case INSTANCE_EV_REMOVED:
		if (i->program != NULL)
			i->program->inst = NULL;
		else
			program_name_freed(i->cfg.name);
		break;
	default:
		break;
	}
}
