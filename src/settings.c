/*
 * settings.c: the config directory. Every .conf file in it (name order) is
 * INI, parsed with inih: a [ward] section for wardd's own settings and
 * [program:NAME] sections for declared programs, in ward's keys or
 * supervisord's (so the [program:x] sections of an existing supervisord.conf
 * work as they are). This file only reads and checks; program.c applies.
 *
 * Every message names the file, line and key. A bad program is skipped with
 * its errors; it never stops the good ones from loading.
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "ward.h"

/* A [program:NAME] section while its file is read. */
struct conf_section {
	char		*name;
	char		*file;
	int		 line;
	struct conf_kv	*kv;
	size_t		 nkv;
	int		 bad;		/* an error already reported */
	TAILQ_ENTRY(conf_section) entry;
};
TAILQ_HEAD(conf_section_list, conf_section);

struct conf_ctx {
	const char		*file;
	FILE			*f;
	int			 line;
	char			**long_lines;	/* see conf_reader */
	size_t			 nlong;
	struct conf		*out;
	struct conf_section_list sections;
	struct conf_section	*cur;
	char			*cur_section;	/* inih's last section name */
	int			 header_line;	/* of the last [section] line */
};

static void	conf_section_free(struct conf_section *);

#define CONF_ERR(ctx, line, ...) do {					\
	char _m[512];							\
	snprintf(_m, sizeof _m, __VA_ARGS__);				\
	conf_error((ctx)->out, (ctx)->file, (line), _m);		\
} while (0)

/* Append (and log) "file:line: message" to a list of c's. */
static void
conf_note(struct conf *c, char ***list, size_t *n, const char *file,
    int line, const char *msg)
{
	char *e = str_printf("%s:%d: %s", file, line, msg);
	char **v;

	if (!c->quiet)
		log_warnx("%s", e ? e : msg);
	if (e == NULL)
		return;
	if ((v = realloc(*list, (*n + 1) * sizeof *v)) == NULL) {
		free(e);
		return;
	}
	*list = v;
	(*list)[(*n)++] = e;
}

/* An error: what it is about is not loaded. */
void
conf_error(struct conf *c, const char *file, int line, const char *msg)
{
	conf_note(c, &c->errors, &c->nerrors, file, line, msg);
}

/* A warning: something was ignored (a supervisord key ward has no use
 * for); the rest loads. Reread and update return these too. */
void
conf_warning(struct conf *c, const char *file, int line, const char *msg)
{
	conf_note(c, &c->warnings, &c->nwarnings, file, line, msg);
}

/*
 * inih's reader. Debian builds libinih with a 200-byte line buffer, too
 * short for real command= lines: a longer line is handed to inih as
 * "key=\1N" and its value kept here, to be put back by conf_value.
 */
static char *
conf_reader(char *str, int num, void *arg)
{
	struct conf_ctx *ctx = arg;
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
conf_value(struct conf_ctx *ctx, const char *v)
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
conf_ward_key(struct conf_ctx *ctx, const char *key, const char *value)
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
		CONF_ERR(ctx, ctx->line, "[ward] has no key '%s' (known: "
		    "log_level, metrics_interval_ms)", key);
	return 1;
bad:
	CONF_ERR(ctx, ctx->line, "[ward] %s: bad value '%s'", key, value);
	return 1;
}

static int
conf_handler(void *arg, const char *section, const char *key,
    const char *raw)
{
	struct conf_ctx *ctx = arg;
	struct conf_section *s;
	struct conf_kv *kv;
	char *value;

	if ((value = conf_value(ctx, raw)) == NULL) {
		CONF_ERR(ctx, ctx->line, "out of memory");
		return 1;
	}
	if (strcmp(section, "ward") == 0) {
		conf_ward_key(ctx, key, value);
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
				CONF_ERR(ctx, ctx->line, "section [%s] is not "
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
			struct conf_section *first = s;

			if ((s = calloc(1, sizeof *s)) == NULL ||
			    (s->name = strdup(section + 8)) == NULL ||
			    (s->file = strdup(ctx->file)) == NULL) {
				if (s != NULL)
					conf_section_free(s);
				CONF_ERR(ctx, ctx->line, "[program:%s]: out of "
				    "memory", section + 8);
				free(value);
				return 1;
			}
			s->line = ctx->header_line ? ctx->header_line : ctx->line;
			if (first != NULL) {
				/* The first declaration wins; this one is read
				 * (to keep parsing) but never used. */
				CONF_ERR(ctx, ctx->line, "[program:%s] is already "
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
			CONF_ERR(ctx, ctx->line, "[program:%s] %s: out of memory; "
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
conf_filter(const struct dirent *de)
{
	size_t n = strlen(de->d_name);

	return de->d_name[0] != '.' && n > 5 &&
	    strcmp(de->d_name + n - 5, ".conf") == 0;
}

static void
conf_section_free(struct conf_section *s)
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
conf_load(const char *dir, struct conf *c)
{
	struct conf_ctx ctx;
	struct conf_section *s;
	struct dirent **names;
	char path[4096];
	int n, k, rc;
	size_t j;

	memset(&ctx, 0, sizeof ctx);
	ctx.out = c;
	TAILQ_INIT(&ctx.sections);
	TAILQ_INIT(&c->programs);
	if ((n = scandir(dir, &names, conf_filter, alphasort)) == -1) {
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
		rc = ini_parse_stream(conf_reader, &ctx, conf_handler, &ctx);
		if (rc > 0)
			CONF_ERR(&ctx, rc, "syntax error (expected [section] or "
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
		if (!s->bad && (p = program_conf_build(c, s->name, s->file,
		    s->line, s->kv, s->nkv)) != NULL)
			TAILQ_INSERT_TAIL(&c->programs, p, entry);
		conf_section_free(s);
	}
	return c->nerrors;
}

void
conf_free(struct conf *c)
{
	struct conf_program *p;
	size_t k;

	while ((p = TAILQ_FIRST(&c->programs)) != NULL) {
		TAILQ_REMOVE(&c->programs, p, entry);
		program_conf_free(p);
	}
	for (k = 0; k < c->nerrors; k++)
		free(c->errors[k]);
	free(c->errors);
	c->errors = NULL;
	c->nerrors = 0;
	for (k = 0; k < c->nwarnings; k++)
		free(c->warnings[k]);
	free(c->warnings);
	c->warnings = NULL;
	c->nwarnings = 0;
	for (k = 0; k < c->ndecls; k++) {
		free(c->decls[k].name);
		free(c->decls[k].file);
	}
	free(c->decls);
	c->decls = NULL;
	c->ndecls = 0;
}

/* Just the [ward] settings (SIGHUP re-applies them). */
int
settings_load(const char *dir, struct settings *out)
{
	struct conf c;
	int n;

	memset(&c, 0, sizeof c);
	c.settings = *out;
	c.quiet = 1;		/* program.c reads the same files and says it all */
	n = conf_load(dir, &c);
	*out = c.settings;
	conf_free(&c);
	return n;
}
