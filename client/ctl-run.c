/*
 * ctl-run.c: wardctl run, which builds instance.create's whole spec from
 * flags: a table (flag -> spec key -> how its value is typed and sent)
 * with a row for every key of the spec, so a new key is one row (and a
 * line in wardctl.1 and the completion). Names of users and groups,
 * relative paths and files for the payload's fds are resolved here, where
 * the user typed them; wardd checks the rest, and its messages come back
 * in the flags' words (the keys sent, in c->words: ctl-words.c). A family
 * file: it calls the shared core (ctl.h) and libward.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

/* How a flag's value is checked and sent. */
enum ctl_run_type {
	RUN_TRUE,	/* no value: the key is true */
	RUN_UINT,	/* decimal, sent as a number */
	RUN_INT,	/* the same, maybe negative */
	RUN_STR,	/* as typed (wardd reads numbers in text too) */
	RUN_PATH,	/* made absolute against here; need not exist */
	RUN_DIR,	/* resolved here; must exist */
	RUN_USER,	/* a user name resolved here to "UID:GID" */
	RUN_GROUP,	/* a group name resolved here to its gid */
	RUN_SH,		/* a /bin/sh -c command line, sent as its argv */
	RUN_SH_LIST,	/* repeatable: an array of those */
	RUN_MAP,	/* repeatable K=V: one map of strings */
	RUN_CODES,	/* repeatable N=REASON: exit_codes */
	RUN_ANY_KEY,	/* repeatable KEY=VALUE: that key, as text */
	RUN_FD_IN,	/* a file opened here for reading, passed as an fd */
	RUN_FD_OUT,	/* the same, appended to (created 0644) */
	RUN_FDS,	/* repeatable N=FILE: opened read-write as fd N */
};

struct ctl_run_opt {
	const char		*flag;
	const char		*key;
	enum ctl_run_type	 type;
	const char		*imply;	/* a key also set true, or NULL */
};

/* In the order wardctl.1 lists them. */
static const struct ctl_run_opt ctl_run_opts[] = {
	{ "--env", "env", RUN_MAP, NULL },
	{ "--clean-env", "clean_env", RUN_TRUE, NULL },
	{ "--cwd", "cwd", RUN_DIR, NULL },
	{ "--user", "user", RUN_USER, NULL },
	{ "--group", "group", RUN_GROUP, NULL },
	{ "--umask", "umask", RUN_STR, NULL },
	{ "--nice", "nice", RUN_INT, NULL },
	{ "--oom-score-adj", "oom_score_adj", RUN_INT, NULL },
	{ "--rlimit", "rlimits", RUN_MAP, NULL },
	{ "--detect-hangup", "detect_hangup", RUN_TRUE, NULL },
	{ "--hangup-timeout", "hangup_timeout_ms", RUN_UINT, "detect_hangup" },
	{ "--exit-code", "exit_codes", RUN_CODES, NULL },
	{ "--profile", "profile", RUN_STR, NULL },
	{ "--rss-mapping", "rss_mapping", RUN_STR, NULL },
	{ "--notify", "notify", RUN_STR, NULL },
	{ "--watchdog", "watchdog_ms", RUN_UINT, NULL },
	{ "--control", "control", RUN_TRUE, NULL },
	{ "--stdin", "stdin", RUN_FD_IN, NULL },
	{ "--stdout", "stdout", RUN_FD_OUT, NULL },
	{ "--stderr", "stderr", RUN_FD_OUT, NULL },
	{ "--fd", "fds", RUN_FDS, NULL },
	{ "--capture", "capture_output", RUN_TRUE, NULL },
	{ "--stdout-log", "stdout_logfile", RUN_PATH, NULL },
	{ "--stderr-log", "stderr_logfile", RUN_PATH, NULL },
	{ "--journal", "stdout_journal", RUN_TRUE, NULL },
	{ "--redirect-stderr", "redirect_stderr", RUN_TRUE, NULL },
	{ "--log-ring-bytes", "log_ring_bytes", RUN_UINT, NULL },
	{ "--logfile-maxbytes", "logfile_maxbytes", RUN_UINT, NULL },
	{ "--logfile-backups", "logfile_backups", RUN_UINT, NULL },
	{ "--log-overflow", "log_overflow", RUN_STR, NULL },
	{ "--log-rate-lines", "log_rate_lines", RUN_UINT, NULL },
	{ "--memory-max", "memory_max", RUN_STR, NULL },
	{ "--memory-high", "memory_high", RUN_STR, NULL },
	{ "--cpu-max", "cpu_max", RUN_STR, NULL },
	{ "--cpu-weight", "cpu_weight", RUN_STR, NULL },
	{ "--io-weight", "io_weight", RUN_STR, NULL },
	{ "--pids-max", "pids_max", RUN_STR, NULL },
	{ "--cpus", "cpus", RUN_STR, NULL },
	{ "--limit", NULL, RUN_ANY_KEY, NULL },	/* any of the above by key */
	{ "--pre-start", "pre_start", RUN_SH, NULL },
	{ "--pre-start-timeout", "pre_start_timeout_ms", RUN_UINT, NULL },
	{ "--post-death", "post_death", RUN_SH, NULL },
	{ "--post-death-timeout", "post_death_timeout_ms", RUN_UINT, NULL },
	{ "--sidecar", "sidecars", RUN_SH_LIST, NULL },
};
#define CTL_RUN_NOPTS	(sizeof ctl_run_opts / sizeof ctl_run_opts[0])
#define CTL_RUN_MAXV	512	/* values on one command line */
#define CTL_RUN_MAXFD	64	/* wardd's limit per request */

/* One flag's value as given, then as resolved here. */
struct ctl_run_val {
	const struct ctl_run_opt *o;
	const char	*v;	/* the value typed, NULL for RUN_TRUE */
	char		*own;	/* resolved (a path, "UID:GID"), or NULL */
	int		 fd;	/* index among the passed fds, or -1 */
};

struct ctl_run {
	struct ctl_run_val	 v[CTL_RUN_MAXV];
	int			 nv;
	int			 fds[CTL_RUN_MAXFD];
	int			 nfds;
	const char		*env[WARD_CALLER_ENV_MAX + 1];
	int			 ncaller;
	struct ctl_word		 words[CTL_RUN_MAXV + 4];
	char			*flags[CTL_RUN_MAXV];	/* "--limit KEY" */
};

static int
ctl_run_repeatable(const struct ctl_run_opt *o)
{
	return o->type == RUN_SH_LIST || o->type == RUN_MAP ||
	    o->type == RUN_CODES || o->type == RUN_ANY_KEY || o->type == RUN_FDS;
}

/* A file for the payload's fd, opened here with the user's rights. */
static int
ctl_run_open(struct ctl_run *r, struct ctl_run_val *v, const char *path,
    int flags)
{
	int fd;

	if (r->nfds == CTL_RUN_MAXFD)
		return ctl_usage_error("run: at most %d files", CTL_RUN_MAXFD);
	if ((fd = open(path, flags | O_CLOEXEC | O_NOCTTY, 0644)) == -1)
		return ctl_usage_error("run: %s %s: %s", v->o->flag, path,
		    strerror(errno));
	v->fd = r->nfds;
	r->fds[r->nfds++] = fd;
	return 0;
}

/* Check v's value, resolving what is resolved here: 0 or EX_USAGE. */
static int
ctl_run_check(struct ctl_run *r, struct ctl_run_val *v)
{
	const struct ctl_run_opt *o = v->o;
	char buf[PATH_MAX], *end, *eq;
	struct passwd *pw;
	struct group *gr;
	long long n;

	eq = v->v != NULL ? strchr(v->v, '=') : NULL;
	switch (o->type) {
	case RUN_UINT:
	case RUN_INT:
		errno = 0;
		n = strtoll(v->v, &end, 10);
		if (*v->v == '\0' || *end != '\0' || errno != 0 ||
		    (o->type == RUN_UINT && n < 0))
			return ctl_usage_error("run: %s takes a%s number%s, not "
			    "'%s'", o->flag, o->type == RUN_UINT ? " whole" : "n",
			    strstr(o->key, "_ms") != NULL ? " of milliseconds" : "",
			    v->v);
		return 0;
	case RUN_PATH:
		if (v->v[0] == '/')
			return 0;
		if (getcwd(buf, sizeof buf) == NULL ||
		    asprintf(&v->own, "%s/%s", buf, v->v) == -1)
			return ctl_usage_error("run: %s %s: %s", o->flag, v->v,
			    strerror(errno));
		return 0;
	case RUN_DIR:
		if (realpath(v->v, buf) == NULL || (v->own = strdup(buf)) == NULL)
			return ctl_usage_error("run: %s %s: %s", o->flag, v->v,
			    strerror(errno));
		return 0;
	case RUN_USER:
		if (isdigit((unsigned char)v->v[0]))
			return 0;
		if ((pw = getpwnam(v->v)) == NULL)
			return ctl_usage_error("run: %s: no user '%s'", o->flag,
			    v->v);
		if (asprintf(&v->own, "%u:%u", (unsigned)pw->pw_uid,
		    (unsigned)pw->pw_gid) == -1)
			return ctl_usage_error("run: out of memory");
		return 0;
	case RUN_GROUP:
		if (isdigit((unsigned char)v->v[0]))
			return 0;
		if ((gr = getgrnam(v->v)) == NULL)
			return ctl_usage_error("run: %s: no group '%s'", o->flag,
			    v->v);
		if (asprintf(&v->own, "%u", (unsigned)gr->gr_gid) == -1)
			return ctl_usage_error("run: out of memory");
		return 0;
	case RUN_MAP:
	case RUN_ANY_KEY:
		if (eq == NULL || eq == v->v)
			return ctl_usage_error("run: %s takes KEY=VALUE, not '%s'",
			    o->flag, v->v);
		return 0;
	case RUN_CODES:
		if (eq == NULL || !isdigit((unsigned char)v->v[0]) ||
		    strtol(v->v, &end, 10) > 255 || end != eq)
			return ctl_usage_error("run: %s takes N=REASON (N 0 to "
			    "255), not '%s'", o->flag, v->v);
		return 0;
	case RUN_FDS:
		if (eq == NULL || !isdigit((unsigned char)v->v[0]) ||
		    (strtol(v->v, &end, 10), end != eq))
			return ctl_usage_error("run: %s takes N=FILE, not '%s'",
			    o->flag, v->v);
		return ctl_run_open(r, v, eq + 1, O_RDWR | O_CREAT);
	case RUN_FD_IN:
		return ctl_run_open(r, v, v->v, O_RDONLY);
	case RUN_FD_OUT:
		return ctl_run_open(r, v, v->v, O_WRONLY | O_CREAT | O_APPEND);
	default:
		return 0;
	}
}

/* The table as getopt_long's: each flag's val is 256 + its row. */
static const struct option *
ctl_run_longopts(void)
{
	static struct option lo[CTL_RUN_NOPTS + 1];
	size_t i;

	for (i = 0; i < CTL_RUN_NOPTS && lo[i].name == NULL; i++) {
		lo[i].name = ctl_run_opts[i].flag + 2;
		lo[i].has_arg = ctl_run_opts[i].type == RUN_TRUE ? no_argument :
		    required_argument;
		lo[i].val = 256 + (int)i;
	}
	return lo;
}

/*
 * "NAME [FLAGS] -- ARGV" into r and *name; *first is where the payload's
 * argv starts. The flags through ctl_getopt, as every command's; one not
 * repeatable given twice keeps the last value.
 */
static int
ctl_run_parse(struct ctl_run *r, int argc, char **argv, const char **name,
    int *first)
{
	static char run[] = "run";
	const struct ctl_run_opt *o;
	struct ctl_run_val *v;
	char **args;	/* "run" and the flags: getopt's argv */
	int ch, k, n, rc = 0;

	*name = NULL;
	if (argc < 1 || argv[0][0] == '-')
		return ctl_usage_error("run: give the instance a NAME first");
	*name = argv[0];
	if ((args = calloc(argc + 1, sizeof *args)) == NULL)
		return ctl_usage_error("run: out of memory");
	args[0] = run;
	memcpy(args + 1, argv + 1, (argc - 1) * sizeof *argv);
	while (rc == 0 && (ch = ctl_getopt(argc - 1, args + 1, "",
	    ctl_run_longopts())) != -1) {
		if (ch < 256) {
			rc = EX_USAGE;	/* said by ctl_getopt */
			break;
		}
		o = &ctl_run_opts[ch - 256];
		for (k = 0; k < r->nv && (ctl_run_repeatable(o) ||
		    r->v[k].o != o); k++)
			;
		if (k == CTL_RUN_MAXV) {
			rc = ctl_usage_error("run: too many options");
			break;
		}
		v = &r->v[k];
		free(v->own);
		v->o = o;
		v->v = o->type == RUN_TRUE ? NULL : optarg;
		v->own = NULL;
		v->fd = -1;
		if (k == r->nv)
			r->nv++;
		rc = ctl_run_check(r, v);
	}
	/* optind counts args, whose args[i] is argv[i] from 1 on. */
	n = optind;
	if (rc != 0)
		;
	else if (n >= 2 && strcmp(args[n - 1], "--") == 0 && n < argc)
		*first = n;
	else if (n < argc && strcmp(args[n - 1], "--") != 0)
		rc = ctl_usage_error("run: put the command after --, as in: "
		    "wardctl run NAME -- %s ...", args[n]);
	else
		rc = ctl_usage_error("run: give the command after --");
	free(args);
	return rc;
}

static void
ctl_run_pack_sh(msgpack_packer *pk, const char *cmd)
{
	msgpack_pack_array(pk, 3);
	ctl_pack_str(pk, "/bin/sh");
	ctl_pack_str(pk, "-c");
	ctl_pack_str(pk, cmd);
}

/* "K=V" as a map's pair, or as a key and its value. */
static void
ctl_run_pack_kv(msgpack_packer *pk, const char *kv)
{
	const char *eq = strchr(kv, '=');

	msgpack_pack_str(pk, eq - kv);
	msgpack_pack_str_body(pk, kv, eq - kv);
	ctl_pack_str(pk, eq + 1);
}

static int
ctl_run_count(const struct ctl_run *r, const struct ctl_run_opt *o)
{
	int k, n = 0;

	for (k = 0; k < r->nv; k++)
		n += r->v[k].o == o;
	return n;
}

static const struct ctl_run_opt *
ctl_run_by_key(const char *key)
{
	size_t i;

	for (i = 0; i < CTL_RUN_NOPTS; i++) {
		if (ctl_run_opts[i].key != NULL &&
		    strcmp(ctl_run_opts[i].key, key) == 0)
			return &ctl_run_opts[i];
	}
	return NULL;
}

/* The value of row o (n of them given): one key's value. */
static void
ctl_run_pack_value(struct ctl_run *r, msgpack_packer *pk,
    const struct ctl_run_opt *o, int n)
{
	const struct ctl_run_val *v;
	int k, env = o == ctl_run_by_key("env");

	switch (o->type) {
	case RUN_MAP:
		msgpack_pack_map(pk, n + (env ? r->ncaller : 0));
		break;
	case RUN_CODES:
		msgpack_pack_map(pk, n);
		break;
	case RUN_SH_LIST:
	case RUN_FDS:
		msgpack_pack_array(pk, n);
		break;
	default:
		break;
	}
	for (k = 0; k < r->nv; k++) {
		if ((v = &r->v[k])->o != o)
			continue;
		switch (o->type) {
		case RUN_TRUE:
			msgpack_pack_true(pk);
			break;
		case RUN_UINT:
		case RUN_INT:
			msgpack_pack_int64(pk, strtoll(v->v, NULL, 10));
			break;
		case RUN_SH:
		case RUN_SH_LIST:
			ctl_run_pack_sh(pk, v->v);
			break;
		case RUN_MAP:
			ctl_run_pack_kv(pk, v->v);
			break;
		case RUN_CODES:
			msgpack_pack_int(pk, atoi(v->v));
			ctl_pack_str(pk, strchr(v->v, '=') + 1);
			break;
		case RUN_FDS:
			msgpack_pack_map(pk, 2);
			ctl_pack_str(pk, "fd");
			msgpack_pack_int(pk, v->fd);
			ctl_pack_str(pk, "target");
			msgpack_pack_int(pk, atoi(v->v));
			break;
		case RUN_FD_IN:
		case RUN_FD_OUT:
			msgpack_pack_int(pk, v->fd);
			break;
		default:
			ctl_pack_str(pk, v->own != NULL ? v->own : v->v);
			break;
		}
	}
	for (k = 0; env && k < r->ncaller; k++)
		ctl_run_pack_kv(pk, r->env[k]);
}

/* The spec: name, argv, then each row given, in the table's order. */
static void
ctl_run_pack(struct ctl_run *r, msgpack_packer *pk, const char *name,
    int argc, char **argv)
{
	const struct ctl_run_opt *o, *env = ctl_run_by_key("env");
	const char *given[CTL_RUN_MAXV + 1];
	size_t i, nkeys = 2;
	int k, n, ngiven = 0;

	/* wardd gives others' payloads none of its environment: pass ours. */
	for (k = 0; k < r->nv; k++) {
		if (r->v[k].o == env)
			given[ngiven++] = r->v[k].v;
	}
	given[ngiven] = NULL;
	r->ncaller = ward_caller_env(given, r->env);
	for (i = 0; i < CTL_RUN_NOPTS; i++) {
		o = &ctl_run_opts[i];
		n = ctl_run_count(r, o);
		if (o->type == RUN_ANY_KEY)
			nkeys += n;
		else if (n > 0 || (o == env && r->ncaller > 0))
			nkeys++;
		if (n > 0 && o->imply != NULL &&
		    ctl_run_count(r, ctl_run_by_key(o->imply)) == 0)
			nkeys++;
	}
	msgpack_pack_map(pk, nkeys);
	ctl_pack_str(pk, "name");
	ctl_pack_str(pk, name);
	ctl_pack_str(pk, "argv");
	msgpack_pack_array(pk, argc);
	for (k = 0; k < argc; k++)
		ctl_pack_str(pk, argv[k]);
	for (i = 0; i < CTL_RUN_NOPTS; i++) {
		o = &ctl_run_opts[i];
		n = ctl_run_count(r, o);
		if (o->type == RUN_ANY_KEY) {
			for (k = 0; k < r->nv; k++) {
				if (r->v[k].o == o)
					ctl_run_pack_kv(pk, r->v[k].v);
			}
			continue;
		}
		if (n == 0 && !(o == env && r->ncaller > 0))
			continue;
		ctl_pack_str(pk, o->key);
		ctl_run_pack_value(r, pk, o, n);
		if (n > 0 && o->imply != NULL &&
		    ctl_run_count(r, ctl_run_by_key(o->imply)) == 0) {
			ctl_pack_str(pk, o->imply);
			msgpack_pack_true(pk);
		}
	}
}

/* The keys sent, each with the flag that gave it, for wardd's messages. */
static void
ctl_run_words(struct ctl_run *r)
{
	const struct ctl_run_val *v;
	int k, n = 0;

	r->words[n++] = (struct ctl_word){ "name", "NAME" };
	for (k = 0; k < r->nv; k++) {
		v = &r->v[k];
		if (v->o->key != NULL) {
			r->words[n].key = v->o->key;
			r->words[n++].flag = v->o->flag;
			if (v->o->imply != NULL)
				r->words[n++] = (struct ctl_word){ v->o->imply,
				    v->o->flag };
		} else if (asprintf(&r->flags[k], "--limit %.*s",
		    (int)strcspn(v->v, "="), v->v) != -1) {
			/* "--limit KEY": KEY is the key itself */
			r->words[n].key = r->flags[k] + 8;
			r->words[n++].flag = r->flags[k];
		}
	}
	r->words[n] = (struct ctl_word){ NULL, NULL };
}

static void
ctl_run_free(struct ctl_run *r)
{
	int k;

	for (k = 0; k < r->nv; k++) {
		free(r->v[k].own);
		free(r->flags[k]);
	}
	for (k = 0; k < r->nfds; k++)
		close(r->fds[k]);
	free(r);
}

static int
ctl_run_exec(struct ctl *c, int argc, char **argv)
{
	struct ctl_run *r;
	struct ward_params p;
	struct ward_reply reply;
	struct ward_status s;
	const char *name = NULL;
	char exe[PATH_MAX];
	int first = 0, rc;

	if ((r = calloc(1, sizeof *r)) == NULL)
		return ctl_usage_error("run: out of memory");
	if ((rc = ctl_run_parse(r, argc, argv, &name, &first)) != 0) {
		ctl_run_free(r);
		return rc;
	}
	argc -= first;
	argv += first;
	/* A relative path means relative to here, where the user typed it. */
	if (strchr(argv[0], '/') != NULL && argv[0][0] != '/' &&
	    realpath(argv[0], exe) != NULL)
		argv[0] = exe;
	ward_params_init(&p);
	ctl_run_pack(r, &p.pk, name, argc, argv);
	ctl_run_words(r);
	c->words = r->words;
	rc = ctl_call_fds(c, "instance.run", &p, r->fds, r->nfds, NULL, &reply);
	c->words = NULL;
	ctl_run_free(r);
	if (rc != 0)
		return rc;
	if (c->json) {
		ctl_json_line(&reply.result);
	} else {
		ward_status_decode(&reply.result, &s);
		if (s.pid > 0)
			printf("%s: started (id %" PRIu64 ", pid %d)\n", name,
			    s.id, (int)s.pid);
		else	/* a pre_start runs first */
			printf("%s: %s (id %" PRIu64 ")\n", name, s.state, s.id);
		ward_status_free(&s);
	}
	ward_reply_free(&reply);
	return 0;
}

const struct ctl_entry ctl_run_entry = {
	.name = "run",
	.usage = "run NAME [--env K=V ...] [--clean-env] [--cwd DIR] "
	    "[--user U] [--group G] [--umask OCTAL] [--nice N] "
	    "[--oom-score-adj N] [--rlimit NAME=VALUE ...] [--detect-hangup] "
	    "[--hangup-timeout MS] [--exit-code N=REASON ...] "
	    "[--profile crosvm] [--rss-mapping TEXT] [--notify systemd|fd] "
	    "[--watchdog MS] [--control] [--stdin FILE] [--stdout FILE] "
	    "[--stderr FILE] [--fd N=FILE ...] [--capture] [--stdout-log FILE] "
	    "[--stderr-log FILE] [--journal] [--redirect-stderr] "
	    "[--log-ring-bytes N] "
	    "[--logfile-maxbytes N] [--logfile-backups N] "
	    "[--log-overflow block|drop] [--log-rate-lines N] "
	    "[--memory-max SIZE] [--memory-high SIZE] [--cpu-max QUOTA] "
	    "[--cpu-weight N] [--io-weight N] [--pids-max N] [--cpus LIST] "
	    "[--limit KEY=VALUE ...] [--pre-start CMD] "
	    "[--pre-start-timeout MS] [--post-death CMD] "
	    "[--post-death-timeout MS] [--sidecar CMD ...] -- ARGV...",
	.help = "Create and start an instance.",
	.exec = ctl_run_exec,
};
