/*
 * conf.c: what one read of the config directory produced (struct conf: the
 * programs, and every error and warning with its file and line) and the
 * value syntaxes its files are written in: command lines split as a shell
 * does (shellwords.c), comma lists, booleans, scaled numbers, supervisord's
 * environment= pairs (shlex's tokens).
 * Pure text handling plus logging: confdir.c and confdir-program.c, which
 * read and map the files, both report through it.
 *
 * layer: programs (calls only base: log, util)
 */
#include "config.h"

#include <ctype.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ward.h"
#include "shellwords.h"

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

void
conf_free(struct conf *c)
{
	struct conf_program *p;
	size_t k;

	while ((p = TAILQ_FIRST(&c->programs)) != NULL) {
		TAILQ_REMOVE(&c->programs, p, entry);
		conf_program_free(p);
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

/* The program called name in c, or NULL. */
struct conf_program *
conf_find_program(struct conf *c, const char *name)
{
	struct conf_program *cp;

	TAILQ_FOREACH(cp, &c->programs, entry) {
		if (strcmp(cp->name, name) == 0)
			return cp;
	}
	return NULL;
}

void
conf_program_free(struct conf_program *cp)
{
	if (cp == NULL)
		return;
	free(cp->name);
	free(cp->file);
	free(cp->spec);
	conf_vec_free(cp->policy.restart_on);
	conf_vec_free(cp->policy.after);
	conf_vec_free(cp->policy.requires);
	free(cp);
}


/*
 * Split a command line as supervisord does (shlex.split: shellwords.c,
 * shared with wardctl's shell). Nothing expands, no shell runs.
 */
int
conf_split_command(const char *s, char ***out, struct ward_err *e)
{
	char *copy, **words, **argv;
	const char *err;
	int n, k;

	*out = NULL;
	if ((copy = strdup(s)) == NULL ||
	    (words = calloc(SPEC_MAX_ARGV + 1, sizeof *words)) == NULL) {
		free(copy);
		return ward_err_oom(e);
	}
	if ((n = shellwords_split(copy, words, SPEC_MAX_ARGV, &err)) <= 0) {
		free(copy);
		free(words);
		return ward_err_set(e, WARD_E_INVALID_ARGUMENT, "%s",
		    n == 0 ? "is empty" : err);
	}
	if ((argv = calloc(n + 1, sizeof *argv)) == NULL)
		goto nomem;
	for (k = 0; k < n; k++) {
		if ((argv[k] = strdup(words[k])) == NULL) {
			conf_vec_free(argv);
			goto nomem;
		}
	}
	free(copy);
	free(words);
	*out = argv;
	return 0;
nomem:
	free(copy);
	free(words);
	return ward_err_oom(e);
}

/* shlex's word characters (non-POSIX mode) as supervisord extends them. */
static int
conf_env_wordchar(unsigned char c)
{
	return isalnum(c) || c == '_' || c >= 0x80 || strchr("/.+-():", c) != NULL;
}

/*
 * The tokens of v as Python's shlex.shlex(v) (non-POSIX mode) gives them:
 * words, quoted strings with their quotes, '#' comments to the end of the
 * line, any other character a token of its own. -1 on a quote left open.
 */
static int
conf_env_tokens(const char *v, char ***out, size_t *n)
{
	const char *p = v;
	char **t = NULL, **nt;
	size_t cap = 0;
	struct buf b = { 0 };
	int state = ' ';

	*n = 0;
	for (;;) {
		unsigned char c = *p;
		int emit = 0;

		if (state == '\'' || state == '"') {
			if (c == '\0')
				goto fail;
			buf_append(&b, p++, 1);
			if (c == state) {
				state = ' ';
				emit = 1;
			}
		} else if (c == '#') {
			/* In a word, shlex drops the rest of the line and goes on. */
			p += strcspn(p, "\n");
			if (*p == '\n')
				p++;
			continue;
		} else if (c == '\0' || c == ' ' || c == '\t' || c == '\r' ||
		    c == '\n') {
			emit = state == 'a';
			state = c == '\0' ? 0 : ' ';
			p += c != '\0';
		} else if (state == 'a' && (conf_env_wordchar(c) || c == '\'' ||
		    c == '"'))
			buf_append(&b, p++, 1);
		else if (state == 'a') {
			state = ' ';
			emit = 1;
		} else {
			buf_append(&b, p++, 1);
			state = conf_env_wordchar(c) ? 'a' : c == '\'' ||
			    c == '"' ? c : ' ';
			emit = state == ' ';
		}
		if (emit) {
			if (*n == cap) {
				cap = cap ? cap * 2 : 16;
				if ((nt = realloc(t, cap * sizeof *t)) == NULL)
					goto fail;
				t = nt;
			}
			if (buf_append(&b, "", 1) == -1 ||
			    (t[(*n)++] = strdup(b.data)) == NULL)
				goto fail;
			b.len = b.off = 0;
		}
		if (state == 0)
			break;
	}
	buf_free(&b);
	*out = t;
	return 0;
fail:
	buf_free(&b);
	conf_strv_free(t, *n);
	*n = 0;
	return -1;
}

void
conf_strv_free(char **v, size_t n)
{
	while (n > 0)
		free(v[--n]);
	free(v);
}

/*
 * supervisord's environment= (dict_of_key_value_pairs): KEY=VALUE pairs,
 * separated by commas (or any one token), VALUE a shlex token with its
 * quotes stripped; so A="x,y",B='z' and values over several lines. Into
 * *out: n strings "KEY=VALUE", in order (a later KEY wins where used).
 */
int
conf_env_parse(const char *v, char ***out, size_t *n, struct ward_err *e)
{
	char **t, **kv;
	size_t nt, k, j = 0;

	*out = NULL;
	*n = 0;
	if (conf_env_tokens(v, &t, &nt) == -1)
		return ward_err_set(e, WARD_E_INVALID_ARGUMENT, "has an "
		    "unterminated quote (or no memory)");
	if ((kv = calloc(nt / 3 + 1, sizeof *kv)) == NULL) {
		conf_strv_free(t, nt);
		return ward_err_oom(e);
	}
	for (k = 0; k < nt; k += 4) {
		const char *val;
		size_t vl;

		if (nt - k < 3 || strcmp(t[k + 1], "=") != 0) {
			conf_strv_free(t, nt);
			conf_strv_free(kv, j);
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "is KEY=value[,KEY=value...] (quote a value "
			    "holding blanks or commas)");
		}
		/* str.strip('\'"'): every quote at either end. */
		val = t[k + 2] + strspn(t[k + 2], "'\"");
		for (vl = strlen(val); vl > 0 && strchr("'\"", val[vl - 1]); vl--)
			;
		if ((kv[j] = str_printf("%s=%.*s", t[k], (int)vl, val)) == NULL) {
			conf_strv_free(t, nt);
			conf_strv_free(kv, j);
			return ward_err_oom(e);
		}
		j++;
	}
	conf_strv_free(t, nt);
	*out = kv;
	*n = j;
	return 0;
}

void
conf_vec_free(char **v)
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
char **
conf_list_split(const char *s)
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
			conf_vec_free(v);
			return NULL;
		}
	}
	free(copy);
	return v;
}

int
conf_bool(const char *v, int *out)
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
int
conf_number(const char *v, double scale, uint64_t max, uint64_t *out)
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
