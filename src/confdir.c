/*
 * confdir.c: the config directory. Every .conf file in it (name order) is
 * INI, parsed with inih: a [ward] section for wardd's own settings and
 * [program:NAME] sections for declared programs, in ward's keys or
 * supervisord's (so the [program:x] sections of an existing supervisord.conf
 * work as they are). Each section is mapped by confdir-program.c; this file
 * checks the set (dependency cycles, names held by other instances) and
 * owns the names the directory declares, reserved for their programs.
 * It only reads and checks: program.c runs programs, reload.c applies a
 * reread to them.
 *
 * Every message names the file, line and key. A bad program is skipped with
 * its errors; it never stops the good ones from loading.
 *
 * layer: programs (calls confdir-program.c, conf.c, instance.c's name
 * index; never program.c or reload.c, which call it)
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

#include <ini.h>

#include "ward.h"

#define container_of(p, type, member) \
	((type *)((char *)(p) - offsetof(type, member)))

/* A [program:NAME] section while its file is read. */
struct confdir_section {
	char		*name;
	char		*file;
	int		 line;
	struct conf_kv	*kv;
	size_t		 nkv;
	int		 bad;		/* an error already reported */
	TAILQ_ENTRY(confdir_section) entry;
};
TAILQ_HEAD(confdir_section_list, confdir_section);

struct confdir_ctx {
	const char		*file;
	FILE			*f;
	int			 line;
	char			**long_lines;	/* see confdir_reader */
	size_t			 nlong;
	struct conf		*out;
	struct confdir_section_list sections;
	struct confdir_section	*cur;
	char			*cur_section;	/* inih's last section name */
	int			 header_line;	/* of the last [section] line */
};

static void	confdir_section_free(struct confdir_section *);

#define CONFDIR_ERR(ctx, line, ...) do {					\
	char _m[512];							\
	snprintf(_m, sizeof _m, __VA_ARGS__);				\
	conf_error((ctx)->out, (ctx)->file, (line), _m);		\
} while (0)

/*
 * inih's reader. Debian builds libinih with a 200-byte line buffer, too
 * short for real command= lines: a longer line is handed to inih as
 * "key=\1N" and its value kept here, to be put back by confdir_value.
 */
static char *
confdir_reader(char *str, int num, void *arg)
{
	struct confdir_ctx *ctx = arg;
	char *line = NULL, *eq, **v;
	size_t cap = 0;
	ssize_t n;

	if ((n = getline(&line, &cap, ctx->f)) == -1) {
		free(line);
		return NULL;
	}
	ctx->line++;
	{
		const char *t = line;

		while (*t == ' ' || *t == '\t')
			t++;
		if (*t == '[')
			ctx->header_line = ctx->line;
	}
	if (n < num - 1) {
		memcpy(str, line, n + 1);
		free(line);
		return str;
	}
	eq = strchr(line, '=');
	if (eq == NULL || eq - line > num - 24 ||
	    (v = realloc(ctx->long_lines, (ctx->nlong + 1) * sizeof *v)) == NULL)
		goto broken;
	ctx->long_lines = v;
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	if ((ctx->long_lines[ctx->nlong] = strdup(eq + 1)) == NULL)
		goto broken;
	snprintf(str, num, "%.*s=\1%zu\n", (int)(eq - line), line, ctx->nlong++);
	free(line);
	return str;
broken:
	/* No key to keep (or no memory): inih sees, and reports, a bad line. */
	snprintf(str, num, "%s", "\1");
	free(line);
	return str;
}

/* A value as written, long lines restored, surrounding blanks trimmed. */
static char *
confdir_value(struct confdir_ctx *ctx, const char *v)
{
	const char *s = v;
	size_t n;

	if (v[0] == '\1' && isdigit((unsigned char)v[1]) &&
	    (size_t)atoi(v + 1) < ctx->nlong)
		s = ctx->long_lines[atoi(v + 1)];
	while (isspace((unsigned char)*s))
		s++;
	n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	return strndup(s, n);
}

static int
confdir_ward_key(struct confdir_ctx *ctx, const char *key, const char *value)
{
	struct settings *st = &ctx->out->settings;
	char *end;
	long v;
	int lvl;

	if (strcmp(key, "log_level") == 0) {
		if ((lvl = log_level_parse(value)) == -1)
			goto bad;
		st->log_level = lvl;
	} else if (strcmp(key, "metrics_interval_ms") == 0) {
		v = strtol(value, &end, 10);
		if (*end != '\0' || v < 100 || v > 3600000)
			goto bad;
		st->metrics_interval_ms = v;
	} else
		CONFDIR_ERR(ctx, ctx->line, "[ward] has no key '%s' (known: "
		    "log_level, metrics_interval_ms)", key);
	return 1;
bad:
	CONFDIR_ERR(ctx, ctx->line, "[ward] %s: bad value '%s'", key, value);
	return 1;
}

static int
confdir_handler(void *arg, const char *section, const char *key,
    const char *raw)
{
	struct confdir_ctx *ctx = arg;
	struct confdir_section *s;
	struct conf_kv *kv;
	char *value;

	if ((value = confdir_value(ctx, raw)) == NULL) {
		CONFDIR_ERR(ctx, ctx->line, "out of memory");
		return 1;
	}
	if (strcmp(section, "ward") == 0) {
		confdir_ward_key(ctx, key, value);
		free(value);
		return 1;
	}
	if (strncmp(section, "program:", 8) != 0) {
		/* supervisord's other sections ([supervisord], ...): not ours. */
		if (ctx->cur_section == NULL ||
		    strcmp(ctx->cur_section, section) != 0) {
			free(ctx->cur_section);
			ctx->cur_section = strdup(section);	/* NULL: said again */
			if (strcmp(section, "supervisord") != 0 &&
			    strcmp(section, "supervisorctl") != 0 &&
			    strcmp(section, "unix_http_server") != 0 &&
			    strcmp(section, "inet_http_server") != 0 &&
			    strcmp(section, "rpcinterface:supervisor") != 0)
				CONFDIR_ERR(ctx, ctx->line, "section [%s] is not "
				    "ward's ([ward], [program:NAME]); ignored",
				    section);
		}
		free(value);
		return 1;
	}
	if (ctx->cur == NULL || strcmp(ctx->cur->name, section + 8) != 0 ||
	    strcmp(ctx->cur->file, ctx->file) != 0) {
		/* A new section, or one seen before in this same file. */
		TAILQ_FOREACH(s, &ctx->sections, entry) {
			if (strcmp(s->name, section + 8) == 0 &&
			    (!s->bad || strcmp(s->file, ctx->file) == 0))
				break;
		}
		if (s == NULL || strcmp(s->file, ctx->file) != 0) {
			struct confdir_section *first = s;

			if ((s = calloc(1, sizeof *s)) == NULL ||
			    (s->name = strdup(section + 8)) == NULL ||
			    (s->file = strdup(ctx->file)) == NULL) {
				if (s != NULL)
					confdir_section_free(s);
				CONFDIR_ERR(ctx, ctx->line, "[program:%s]: out of "
				    "memory", section + 8);
				free(value);
				return 1;
			}
			s->line = ctx->header_line ? ctx->header_line : ctx->line;
			if (first != NULL) {
				/* The first declaration wins; this one is read
				 * (to keep parsing) but never used. */
				CONFDIR_ERR(ctx, ctx->line, "[program:%s] is already "
				    "declared in %s:%d; this one is ignored",
				    section + 8, first->file, first->line);
				s->bad = 1;
			}
			TAILQ_INSERT_TAIL(&ctx->sections, s, entry);
		}
		ctx->cur = s;
	}
	s = ctx->cur;
	if ((kv = realloc(s->kv, (s->nkv + 1) * sizeof *kv)) == NULL ||
	    (s->kv = kv, kv[s->nkv].key = strdup(key)) == NULL) {
		/* The section is not loaded rather than loaded without a key. */
		if (!s->bad)
			CONFDIR_ERR(ctx, ctx->line, "[program:%s] %s: out of memory; "
			    "not loaded", s->name, key);
		s->bad = 1;
		free(value);
		return 1;
	}
	s->kv[s->nkv].value = value;
	s->kv[s->nkv].line = ctx->line;
	s->nkv++;
	return 1;
}

static int
confdir_filter(const struct dirent *de)
{
	size_t n = strlen(de->d_name);

	return de->d_name[0] != '.' && n > 5 &&
	    strcmp(de->d_name + n - 5, ".conf") == 0;
}

static void
confdir_section_free(struct confdir_section *s)
{
	size_t k;

	for (k = 0; k < s->nkv; k++) {
		free(s->kv[k].key);
		free(s->kv[k].value);
	}
	free(s->kv);
	free(s->name);
	free(s->file);
	free(s);
}

/*
 * Read every .conf file of dir in name order into c (zeroed by the
 * caller, settings preset to the current ones). A missing directory is no
 * error. Returns the number of errors; each is also in c->errors.
 */
int
confdir_load(const char *dir, struct conf *c)
{
	struct confdir_ctx ctx;
	struct confdir_section *s;
	struct dirent **names;
	char path[4096];
	int n, k, rc;
	size_t j;

	memset(&ctx, 0, sizeof ctx);
	ctx.out = c;
	TAILQ_INIT(&ctx.sections);
	TAILQ_INIT(&c->programs);
	if ((n = scandir(dir, &names, confdir_filter, alphasort)) == -1) {
		if (errno == ENOENT)
			return 0;
		conf_error(c, dir, 0, strerror(errno));
		return c->nerrors;
	}
	for (k = 0; k < n; k++) {
		snprintf(path, sizeof path, "%s/%s", dir, names[k]->d_name);
		free(names[k]);
		ctx.file = path;
		ctx.line = 0;
		ctx.header_line = 0;
		ctx.cur = NULL;
		free(ctx.cur_section);
		ctx.cur_section = NULL;
		if ((ctx.f = fopen(path, "re")) == NULL) {
			conf_error(c, path, 0, strerror(errno));
			continue;
		}
		rc = ini_parse_stream(confdir_reader, &ctx, confdir_handler, &ctx);
		if (rc > 0)
			CONFDIR_ERR(&ctx, rc, "syntax error (expected [section] or "
			    "key = value)");
		fclose(ctx.f);
		for (j = 0; j < ctx.nlong; j++)
			free(ctx.long_lines[j]);
		free(ctx.long_lines);
		ctx.long_lines = NULL;
		ctx.nlong = 0;
	}
	free(names);
	free(ctx.cur_section);
	while ((s = TAILQ_FIRST(&ctx.sections)) != NULL) {
		struct conf_program *p;

		TAILQ_REMOVE(&ctx.sections, s, entry);
		if (!s->bad && (p = confdir_program_build(c, s->name, s->file,
		    s->line, s->kv, s->nkv)) != NULL)
			TAILQ_INSERT_TAIL(&c->programs, p, entry);
		confdir_section_free(s);
	}
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

struct conf_program *
confdir_find_program(struct conf *c, const char *name)
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
			if (k < depth || (d = confdir_find_program(c, *n)) == NULL)
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
