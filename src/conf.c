/*
 * conf.c: what one read of the config directory produced (struct conf: the
 * programs, and every error and warning with its file and line) and the
 * value syntaxes its files are written in: command lines split as a shell
 * would, comma lists, booleans, scaled numbers, supervisord's %(...)s.
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
 * Split a command line as a shell would, without running one: blanks
 * separate words, '...' is literal, "..." honours \" \\ \$ \`, and a
 * backslash outside quotes escapes the next character. Nothing expands.
 */
int
conf_split_command(const char *s, char ***out, struct ward_err *e)
{
	size_t n = 0, cap = 8, len = strlen(s);
	char **argv, *w, *word;
	int quote, inword;

	*out = NULL;
	if ((argv = calloc(cap + 1, sizeof *argv)) == NULL ||
	    (word = malloc(len + 1)) == NULL) {
		free(argv);
		ward_err_oom(e);
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
			ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "unterminated %c quote", quote);
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
		ward_err_set(e, WARD_E_INVALID_ARGUMENT, "is empty");
		free(argv);
		return -1;
	}
	*out = argv;
	return 0;
nomem:
	ward_err_oom(e);
fail:
	free(word);
	while (n > 0)
		free(argv[--n]);
	free(argv);
	return -1;
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

/*
 * supervisord's %(program_name)s, %(here)s and %(ENV_X)s in a value;
 * anything else stays as written. NULL when out of memory.
 */
char *
conf_expand(const char *v, const char *name, const char *file)
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
