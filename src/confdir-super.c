/*
 * confdir-super.c: what a supervisord.conf says beyond one [program:x]:
 * [supervisord]'s settings that reach every program, [group:x] (which
 * programs form a group, its priority), and numprocs= with process_name=
 * (one [program:x] making several processes). Each process becomes a
 * conf_program named as supervisorctl names it: PROCESS when its group
 * has the same name, else GROUP:PROCESS (a [group:g] programs=a,b gives
 * g:a and g:b; numprocs=3 of [program:w] process_name=w_%(process_num)02d
 * gives w:w_00 .. w:w_02). Programs are then ordered by priority: lower
 * starts first (program.c and reload.c create and start them in order).
 *
 * layer: programs (calls confdir-program.c, conf-expand.c, conf-ini.c,
 * conf.c; never program.c)
 */
#include "config.h"

#include <ctype.h>
#include <stdarg.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ward.h"

#define CONFDIR_SUPER_MAX_NUMPROCS	10000	/* a typo must not make 1e9 */

/* [supervisord] keys that are wardd's own business (or only a daemon's):
 * said once, ignored. */
static const char *const confdir_super_ignored[] = {
	"logfile", "logfile_maxbytes", "logfile_backups", "loglevel",
	"pidfile", "identifier", "nodaemon", "silent", "childlogdir",
	"strip_ansi", "user", "minprocs", NULL
};

static void confdir_super_note(struct conf *, const char *, int, int,
    const char *, ...) printflike(5, 6);

/* An error (what it is about is not loaded) or a warning, formatted. */
static void
confdir_super_note(struct conf *c, const char *file, int line, int error,
    const char *fmt, ...)
{
	char msg[700];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (error)
		conf_error(c, file, line, msg);
	else
		conf_warning(c, file, line, msg);
}

/* The directory of file, for %(here)s (in buf). */
static const char *
confdir_super_here(const char *file, char *buf, size_t len)
{
	snprintf(buf, len, "%s", file);
	return dirname(buf);
}

void
confdir_super_global_free(struct conf_global *g)
{
	conf_strv_free(g->env, g->nenv);
	free(g->umask);
	free(g->directory);
	memset(g, 0, sizeof *g);
}

/*
 * [supervisord]: environment= (every program's, under its own), umask=
 * and directory= (what a daemonized supervisord gives its children:
 * ward is a daemon; with nodaemon=true supervisord applies neither, nor
 * does ward), minfds= (the children's RLIMIT_NOFILE, at least), nocleanup
 * (ward never cleans AUTO logs at start: nothing to do). The rest is
 * supervisord's own (logs, pid file, user) and warned about once.
 */
void
confdir_super_global(struct conf *c, struct conf_ini_list *l,
    struct conf_global *g)
{
	struct conf_ini_section *s = conf_ini_find(l, "supervisord");
	struct ward_err e = WARD_ERR_INIT;
	struct conf_vars vars;
	char here[PATH_MAX], ignored[512] = "", *x;
	const char *v;
	uint64_t n;
	size_t k, j;
	int daemon = 1, b;

	if (s == NULL)
		return;
	memset(&vars, 0, sizeof vars);
	vars.here = confdir_super_here(s->file, here, sizeof here);
	vars.host_node_name = conf_host_node_name();
	if ((v = conf_ini_get(s, "nodaemon")) != NULL && conf_bool(v, &b) == 0)
		daemon = !b;
	for (k = 0; k < s->nkv; k++) {
		const char *key = s->kv[k].key;
		int line = s->kv[k].line;

		if ((v = s->kv[k].value) == NULL)
			continue;
		for (j = 0; confdir_super_ignored[j] != NULL; j++) {
			if (strcmp(key, confdir_super_ignored[j]) == 0)
				break;
		}
		if (confdir_super_ignored[j] != NULL) {
			snprintf(ignored + strlen(ignored), sizeof ignored -
			    strlen(ignored), "%s%s", ignored[0] ? ", " : "", key);
			continue;
		}
		if (strcmp(key, "nocleanup") == 0)
			continue;
		if ((x = conf_expand(v, &vars, &e)) == NULL) {
			confdir_super_note(c, s->file, line, 1, "[supervisord] "
			    "%s: %s; ignored", key, e.msg);
			continue;
		}
		if (strcmp(key, "environment") == 0) {
			conf_strv_free(g->env, g->nenv);
			if (conf_env_parse(x, &g->env, &g->nenv, &e) == -1)
				confdir_super_note(c, s->file, line, 1,
				    "[supervisord] %s: %s; ignored", key, e.msg);
		} else if (strcmp(key, "umask") == 0 ||
		    strcmp(key, "directory") == 0) {
			char **slot = key[0] == 'u' ? &g->umask : &g->directory;

			free(*slot);
			*slot = NULL;
			if (daemon)
				*slot = x, x = NULL;
			else
				confdir_super_note(c, s->file, line, 0,
				    "[supervisord] %s: supervisord applies it only "
				    "when it daemonizes (nodaemon=true here); "
				    "ignored", key);
		} else if (strcmp(key, "minfds") == 0) {
			if (conf_number(x, 1, 1U << 30, &n) == -1)
				confdir_super_note(c, s->file, line, 1,
				    "[supervisord] %s: bad value '%s'; ignored",
				    key, x);
			else
				g->minfds = n;
		} else
			confdir_super_note(c, s->file, line, 0, "[supervisord] "
			    "unknown key '%s'; ignored", key);
		free(x);
	}
	if (ignored[0] != '\0')
		confdir_super_note(c, s->file, s->line, 0, "[supervisord] %s: "
		    "supervisord's own settings (wardd has its own options); "
		    "ignored", ignored);
}

/* A [group:g] a program belongs to, if any. */
struct confdir_super_group {
	const char	*name;
	long		 priority;
};

/* The group of [program:prog], from the [group:] sections (first wins). */
static int
confdir_super_group_of(struct conf *c, struct conf_ini_list *l,
    const char *prog, struct confdir_super_group *out)
{
	struct conf_ini_section *s;
	const char *v;
	char **names, **n;
	int found = 0;

	TAILQ_FOREACH(s, l, entry) {
		if (strncmp(s->name, "group:", 6) != 0 ||
		    (v = conf_ini_get(s, "programs")) == NULL ||
		    (names = conf_list_split(v)) == NULL)
			continue;
		for (n = names; *n != NULL && !found; n++) {
			if (strcmp(*n, prog) != 0)
				continue;
			out->name = s->name + 6;
			v = conf_ini_get(s, "priority");
			out->priority = v != NULL ? strtol(v, NULL, 10) : 999;
			found = 1;
		}
		conf_vec_free(names);
		if (found)
			return 1;
	}
	return 0;
}

/* [group:x] naming a program that does not exist: said, not fatal. */
static void
confdir_super_check_groups(struct conf *c, struct conf_ini_list *l)
{
	struct conf_ini_section *s;
	const char *v;
	char **names, **n, sect[300];

	TAILQ_FOREACH(s, l, entry) {
		if (strncmp(s->name, "group:", 6) != 0)
			continue;
		if ((v = conf_ini_get(s, "programs")) == NULL) {
			confdir_super_note(c, s->file, s->line, 1, "[%s] has no "
			    "programs=; ignored", s->name);
			continue;
		}
		if ((names = conf_list_split(v)) == NULL)
			continue;
		for (n = names; *n != NULL; n++) {
			snprintf(sect, sizeof sect, "program:%s", *n);
			if (conf_ini_find(l, sect) == NULL)
				confdir_super_note(c, s->file, s->line, 1,
				    "[%s] names unknown program '%s'", s->name,
				    *n);
		}
		conf_vec_free(names);
	}
}

/* A kv's value in a [program:], or def. */
static const char *
confdir_super_get(const struct conf_ini_section *s, const char *key,
    const char *def)
{
	const char *v = conf_ini_get(s, key);

	return v != NULL ? v : def;
}

/* The processes of one [program:x]: each built and added to c. */
static void
confdir_super_program(struct conf *c, struct conf_ini_list *l,
    struct conf_ini_section *s, const struct conf_global *g)
{
	struct confdir_super_group grp;
	struct conf_proc proc;
	struct conf_vars vars;
	struct ward_err e = WARD_ERR_INIT;
	struct conf_program *cp;
	const char *prog = s->name + 8, *pname;
	char here[PATH_MAX], *name, *x;
	long numprocs, start, k;
	uint64_t n;

	memset(&proc, 0, sizeof proc);
	proc.program_name = prog;
	proc.group_name = prog;
	proc.group_priority = -1;	/* the program's own priority */
	if (confdir_super_group_of(c, l, prog, &grp)) {
		proc.group_name = grp.name;
		proc.group_priority = grp.priority;
	}
	if (conf_number(confdir_super_get(s, "numprocs", "1"), 1,
	    CONFDIR_SUPER_MAX_NUMPROCS, &n) == -1 || n == 0) {
		confdir_super_note(c, s->file, s->line, 1, "[%s] numprocs: must "
		    "be 1 to 10000; not loaded", s->name);
		return;
	}
	numprocs = n;
	if (conf_number(confdir_super_get(s, "numprocs_start", "0"), 1,
	    INT32_MAX, &n) == -1) {
		confdir_super_note(c, s->file, s->line, 1, "[%s] numprocs_start: "
		    "bad value; not loaded", s->name);
		return;
	}
	start = n;
	pname = confdir_super_get(s, "process_name", "%(program_name)s");
	if (numprocs > 1 && strstr(pname, "%(process_num)") == NULL) {
		confdir_super_note(c, s->file, s->line, 1, "[%s] %%(process_num) "
		    "must be present within process_name when numprocs > 1; "
		    "not loaded", s->name);
		return;
	}
	memset(&vars, 0, sizeof vars);
	vars.here = confdir_super_here(s->file, here, sizeof here);
	vars.host_node_name = conf_host_node_name();
	vars.program_name = prog;
	vars.group_name = proc.group_name;
	vars.numprocs = numprocs;
	vars.env = g->env;
	vars.nenv = g->nenv;
	for (k = start; k < start + numprocs; k++) {
		vars.process_num = k;
		if ((x = conf_expand(pname, &vars, &e)) == NULL) {
			confdir_super_note(c, s->file, s->line, 1, "[%s] "
			    "process_name: %s; not loaded", s->name, e.msg);
			return;
		}
		if (x[strcspn(x, " :/")] != '\0' || x[0] == '\0') {
			confdir_super_note(c, s->file, s->line, 1, "[%s] "
			    "process_name '%s' is empty or holds ' ', ':' or '/'; "
			    "not loaded", s->name, x);
			free(x);
			return;
		}
		name = strcmp(x, proc.group_name) == 0 ? strdup(x) :
		    str_printf("%s:%s", proc.group_name, x);
		proc.name = name;
		proc.process_name = x;
		proc.process_num = k;
		proc.first = k == start;
		proc.numprocs = numprocs;
		proc.file = s->file;
		proc.line = s->line;
		proc.kv = s->kv;
		proc.nkv = s->nkv;
		proc.global = g;
		if (name == NULL)
			confdir_super_note(c, s->file, s->line, 1, "[%s]: out of "
			    "memory", s->name);
		else if ((cp = conf_find_program(c, name)) != NULL)
			confdir_super_note(c, s->file, s->line, 1, "[%s]: process "
			    "%s is already declared in %s:%d; not loaded",
			    s->name, name, cp->file, cp->line);
		else if ((cp = confdir_program_build(c, &proc)) != NULL)
			TAILQ_INSERT_TAIL(&c->programs, cp, entry);
		free(name);
		free(x);
	}
}

/*
 * Every [program:x] of l into c's programs (in l's order), with its
 * group and processes; [group:] sections checked; the other sections of
 * supervisord's ignored with a word, or refused where they cannot work.
 */
void
confdir_super_programs(struct conf *c, struct conf_ini_list *l,
    const struct conf_global *g)
{
	struct conf_ini_section *s;

	confdir_super_check_groups(c, l);
	TAILQ_FOREACH(s, l, entry) {
		if (strncmp(s->name, "program:", 8) == 0)
			confdir_super_program(c, l, s, g);
	}
}

/* Priority order: lower first; equal ones as declared (stable). */
void
confdir_super_sort(struct conf *c)
{
	struct conf_program_list sorted;
	struct conf_program *cp, *at;

	TAILQ_INIT(&sorted);
	while ((cp = TAILQ_FIRST(&c->programs)) != NULL) {
		TAILQ_REMOVE(&c->programs, cp, entry);
		TAILQ_FOREACH_REVERSE(at, &sorted, conf_program_list, entry) {
			if (at->group_priority < cp->group_priority ||
			    (at->group_priority == cp->group_priority &&
			    at->priority <= cp->priority))
				break;
		}
		if (at == NULL)
			TAILQ_INSERT_HEAD(&sorted, cp, entry);
		else
			TAILQ_INSERT_AFTER(&sorted, at, cp, entry);
	}
	TAILQ_CONCAT(&c->programs, &sorted, entry);
}
