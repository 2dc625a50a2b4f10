/*
 * confdir.c: the config directory, and --supervisord-conf's file. Every
 * .conf file of the directory (name order) is INI in supervisord's
 * dialect, read by conf-ini.c: a [ward] section for wardd's own settings,
 * [program:NAME] sections for declared programs, in ward's keys or
 * supervisord's, and the rest of a supervisord.conf ([supervisord],
 * [group:x], [include]: confdir-super.c), so that a supervisord.conf runs
 * as it is. Each program is mapped by confdir-program.c; this file checks
 * the set (dependency cycles, names held by other instances) and owns the
 * names the directory declares, reserved for their programs. It only
 * reads and checks: program.c runs programs, reload.c applies a reread.
 *
 * Every message names the file, line and key. A bad program is skipped with
 * its errors; it never stops the good ones from loading. What ward has no
 * use for is a warning, never an error.
 *
 * layer: programs (calls confdir-program.c, confdir-super.c, conf-ini.c,
 * conf.c, instance.c's name index; never program.c or reload.c, which
 * call it)
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ward.h"

#define container_of(p, type, member) \
	((type *)((char *)(p) - offsetof(type, member)))

static void
confdir_ward_key(struct conf *c, const struct conf_ini_section *s,
    const struct conf_kv *kv)
{
	struct settings *st = &c->settings;
	char *end, msg[300];
	long v;
	int lvl;

	if (strcmp(kv->key, "log_level") == 0) {
		if ((lvl = log_level_parse(kv->value)) == -1)
			goto bad;
		st->log_level = lvl;
	} else if (strcmp(kv->key, "metrics_interval_ms") == 0) {
		v = strtol(kv->value, &end, 10);
		if (*end != '\0' || v < 100 || v > 3600000)
			goto bad;
		st->metrics_interval_ms = v;
	} else {
		snprintf(msg, sizeof msg, "[ward] has no key '%s' (known: "
		    "log_level, metrics_interval_ms); ignored", kv->key);
		conf_warning(c, s->file, kv->line, msg);
	}
	return;
bad:
	snprintf(msg, sizeof msg, "[ward] %s: bad value '%.100s'", kv->key,
	    kv->value);
	conf_error(c, s->file, kv->line, msg);
}

/* supervisord's sections ward does not run, and why (said once each). */
static const struct {
	const char	*prefix;
	const char	*why;
} confdir_foreign[] = {
	{ "unix_http_server", "supervisord's control socket: wardd's is "
	    "--socket, wardctl its client" },
	{ "inet_http_server", "supervisord's web server: wardd serves "
	    "metrics on --metrics-listen" },
	{ "supervisorctl", "wardctl reads no config file" },
	{ "rpcinterface:", "supervisord's XML-RPC plug-ins: ward speaks its "
	    "own protocol" },
	{ "eventlistener:", "supervisord's event listener protocol (READY/"
	    "RESULT on the listener's stdin/stdout) is not ward's: subscribe "
	    "to ward.events (wardctl events) instead; not run" },
	{ "fcgi-program:", "ward does not make FastCGI sockets; not run" },
	{ "DEFAULT", "configparser's defaults for every section are not "
	    "applied by ward; repeat the keys in each section" },
	{ NULL, NULL }
};

/* A section that is neither ward's nor a program's: a warning, once. */
static void
confdir_other_section(struct conf *c, const struct conf_ini_section *s)
{
	char msg[400];
	size_t k;

	if (strcmp(s->name, "supervisord") == 0 ||
	    strcmp(s->name, "include") == 0 ||
	    strncmp(s->name, "group:", 6) == 0)
		return;
	for (k = 0; confdir_foreign[k].prefix != NULL; k++) {
		if (strncmp(s->name, confdir_foreign[k].prefix,
		    strlen(confdir_foreign[k].prefix)) == 0)
			break;
	}
	if (confdir_foreign[k].prefix != NULL)
		snprintf(msg, sizeof msg, "[%s]: %s; ignored", s->name,
		    confdir_foreign[k].why);
	else
		snprintf(msg, sizeof msg, "section [%s] is neither ward's nor "
		    "supervisord's ([ward], [program:NAME], [group:NAME], "
		    "[include], [supervisord]); ignored", s->name);
	conf_warning(c, s->file, s->line, msg);
}

/*
 * One file (and its [include]s) read as a unit, its sections moved to
 * all: [ward] applied; a [program:x] or any section already given by an
 * earlier file of the directory is refused (the first one wins), as
 * supervisord would merge them where ward's directory says each file
 * owns its programs.
 */
static void
confdir_unit(struct conf *c, const char *path, struct conf_ini_list *all)
{
	struct conf_ini_list one, gone;
	struct conf_ini_section *s, *first;
	char msg[700];
	size_t k;

	TAILQ_INIT(&one);
	TAILQ_INIT(&gone);
	conf_ini_read(c, path, &one);
	while ((s = TAILQ_FIRST(&one)) != NULL) {
		TAILQ_REMOVE(&one, s, entry);
		if (strcmp(s->name, "ward") == 0) {
			for (k = 0; k < s->nkv; k++) {
				if (s->kv[k].value != NULL)
					confdir_ward_key(c, s, &s->kv[k]);
			}
		} else if ((first = conf_ini_find(all, s->name)) != NULL) {
			snprintf(msg, sizeof msg, "[%s] is already declared in "
			    "%s:%d; this one is ignored", s->name, first->file,
			    first->line);
			conf_error(c, s->file, s->line, msg);
		} else {
			TAILQ_INSERT_TAIL(all, s, entry);
			continue;
		}
		TAILQ_INSERT_TAIL(&gone, s, entry);
	}
	conf_ini_free(&gone);
}

static int
confdir_filter(const struct dirent *de)
{
	size_t n = strlen(de->d_name);

	return de->d_name[0] != '.' && n > 5 &&
	    strcmp(de->d_name + n - 5, ".conf") == 0;
}

/*
 * Read every .conf file of dir in name order, then --supervisord-conf's
 * file, into c (zeroed by the caller, settings preset to the current
 * ones). A missing directory is no error. Returns the number of errors;
 * each is also in c->errors.
 */
int
confdir_load(const char *dir, struct conf *c)
{
	struct conf_ini_list all;
	struct conf_ini_section *s;
	struct conf_global g;
	struct dirent **names;
	char path[4096];
	int n, k;

	TAILQ_INIT(&all);
	TAILQ_INIT(&c->programs);
	memset(&g, 0, sizeof g);
	if ((n = scandir(dir, &names, confdir_filter, alphasort)) == -1) {
		if (errno != ENOENT)
			conf_error(c, dir, 0, strerror(errno));
		n = 0;
		names = NULL;
	}
	for (k = 0; k < n; k++) {
		snprintf(path, sizeof path, "%s/%s", dir, names[k]->d_name);
		free(names[k]);
		confdir_unit(c, path, &all);
	}
	free(names);
	if (opts.supervisord_conf != NULL)
		confdir_unit(c, opts.supervisord_conf, &all);
	TAILQ_FOREACH(s, &all, entry) {
		if (strncmp(s->name, "program:", 8) != 0)
			confdir_other_section(c, s);
	}
	confdir_super_global(c, &all, &g);
	confdir_super_programs(c, &all, &g);
	confdir_super_global_free(&g);
	conf_ini_free(&all);
	confdir_super_sort(c);
	return c->nerrors;
}

/*
 * The program names the config dir declares, as last read (at start, and
 * at every reread and update), loaded or not: reserved for their programs
 * so that nobody can take one first (issue 9, finding 9). An instance that
 * held a name before it was declared keeps it; the program waits for it
 * (name_holder) and every reread says so.
 */
struct confdir_decl {
	struct table_node	 by_name;
	char			*name;
	char			*file;
	int			 line;
};
static struct confdir_decl *confdir_decls;
static size_t confdir_ndecls;
static struct table confdir_decls_by_name;

/*
 * cmd-instance.c: may a client's instance.create take name? -1 with e set
 * (exists) when a declared program has it; where it is declared is said to
 * admins only.
 */
int
confdir_name_reserved(const char *name, int admin, struct ward_err *e)
{
	struct table_node *n;
	struct confdir_decl *d;

	n = table_find(&confdir_decls_by_name, name, strlen(name));
	if (n == NULL)
		return 0;
	d = container_of(n, struct confdir_decl, by_name);
	if (admin)
		return ward_err_set(e, WARD_E_EXISTS, "the name '%s' belongs to "
		    "a program declared in %s:%d; choose another name", name,
		    d->file, d->line);
	return ward_err_set(e, WARD_E_EXISTS, "the name '%s' belongs to a "
	    "program declared in wardd's configuration; choose another name",
	    name);
}

/* c's declared names become the reserved ones (c->decls is emptied). */
static void
confdir_reserve(struct conf *c)
{
	struct confdir_decl *v = NULL;
	size_t k;

	if (c->ndecls > 0 && (v = calloc(c->ndecls, sizeof *v)) == NULL) {
		log_warnx("out of memory: declared names stay as they were");
		return;
	}
	for (k = 0; k < confdir_ndecls; k++) {
		free(confdir_decls[k].name);
		free(confdir_decls[k].file);
	}
	free(confdir_decls);
	table_free(&confdir_decls_by_name);
	table_init(&confdir_decls_by_name);
	for (k = 0; k < c->ndecls; k++) {
		v[k].name = c->decls[k].name;
		v[k].file = c->decls[k].file;
		v[k].line = c->decls[k].line;
		if (table_insert(&confdir_decls_by_name, &v[k].by_name,
		    v[k].name, strlen(v[k].name)) == -1)
			log_warnx("out of memory: name '%s' not reserved",
			    v[k].name);
	}
	confdir_decls = v;
	confdir_ndecls = c->ndecls;
	free(c->decls);
	c->decls = NULL;
	c->ndecls = 0;
}

/*
 * Each program whose name a non-program instance holds: an error naming
 * the holder (program_new keeps such a program waiting for the name).
 */
static void
confdir_check_names(struct conf *c)
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

/*
 * Depth-first from cp along after and requires; path holds the names on
 * the way. 1 when the walk comes back to path[0].
 */
static int
confdir_cycle_walk(struct conf *c, struct conf_program *cp, const char **path,
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
			if (k < depth || (d = conf_find_program(c, *n)) == NULL)
				continue;
			path[depth] = *n;
			if ((k = confdir_cycle_walk(c, d, path, depth + 1)) > 0)
				return k;
		}
	}
	return 0;
}

/* Refuse every program on a dependency cycle, printing the cycle. */
static void
confdir_check_cycles(struct conf *c)
{
	struct conf_program *cp, *next;
	const char *path[66];
	char msg[1024], note[1200];
	int n, k;

	TAILQ_FOREACH_SAFE(cp, &c->programs, entry, next) {
		path[0] = cp->name;
		if ((n = confdir_cycle_walk(c, cp, path, 1)) == 0)
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
			conf_program_free(cp);
		}
	}
}

/*
 * Read the config dir: settings and checked programs; its declared names
 * become the reserved ones. Returns the number of errors.
 */
int
confdir_read(const char *dir, struct conf *c)
{
	memset(c, 0, sizeof *c);
	c->settings.log_level = opts.log_level;
	c->settings.metrics_interval_ms = opts.metrics_interval_ms;
	confdir_load(dir, c);
	confdir_check_cycles(c);
	confdir_check_names(c);
	confdir_reserve(c);
	return (int)c->nerrors;
}


/* Just the [ward] settings (SIGHUP re-applies them). */
int
confdir_settings_load(const char *dir, struct settings *out)
{
	struct conf c;
	int n;

	memset(&c, 0, sizeof c);
	c.settings = *out;
	c.quiet = 1;		/* reload.c reads them again and says it all */
	n = confdir_load(dir, &c);
	*out = c.settings;
	conf_free(&c);
	return n;
}
