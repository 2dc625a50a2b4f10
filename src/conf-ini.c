/*
 * conf-ini.c: reading one INI file the way supervisord does (Python's
 * configparser as supervisord sets it up: RawConfigParser, strict=False,
 * inline comments ';' and '#'), and its [include] files= (globs relative
 * to the including file's directory, sorted, nested). Sections come out
 * as lists of key = value with the line of each, merged as configparser
 * merges them: a section given twice is one section, a key given twice
 * keeps its last value.
 *
 * Why not a library: Debian's libinih is built with a 200-byte line
 * buffer (INI_MAX_LINE, fixed at its build; INI_ALLOW_REALLOC off), so a
 * real command= line needed a placeholder hack, and its multi-line rule
 * (INI_ALLOW_MULTILINE) hands each continuation line over as another
 * value of the same key, where configparser joins them with newlines;
 * GLib's GKeyFile knows neither ':' nor ';' comments nor continuation
 * lines. configparser's dialect is small and exact (below), so it is
 * written here, as its grammar, with getline (no line limit).
 *
 * The dialect, line by line:
 * - a comment: the line's first non-blank is ';' or '#';
 * - an inline comment: ';' or '#' at the start or after a blank; the
 *   rest of the line is dropped;
 * - a continuation: a line indented deeper than its key's line, inside a
 *   value: appended after a newline (blank lines inside a value are kept,
 *   trailing ones dropped);
 * - [NAME]: a section (NAME up to the last ']');
 * - KEY = VALUE or KEY: VALUE (the first '=' or ':' splits); the key is
 *   lower-cased; both sides trimmed.
 * %(here)s is replaced by the file's directory as it is read (supervisord's
 * expand_here): the directory of the file that holds the line.
 *
 * layer: programs (calls conf.c, conf-expand.c; base: util)
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ward.h"

#define CONF_INI_MAX_DEPTH	8	/* [include]s within [include]s */
#define CONF_INI_MAX_FILES	1000	/* files one read may take in */
#define CONF_INI_MAX_BYTES	(16 << 20)	/* one file's */

void
conf_ini_free(struct conf_ini_list *l)
{
	struct conf_ini_section *s;
	size_t k;

	while ((s = TAILQ_FIRST(l)) != NULL) {
		TAILQ_REMOVE(l, s, entry);
		for (k = 0; k < s->nkv; k++) {
			free(s->kv[k].key);
			free(s->kv[k].value);
		}
		free(s->kv);
		free(s->name);
		free(s->file);
		free(s);
	}
}

struct conf_ini_section *
conf_ini_find(struct conf_ini_list *l, const char *name)
{
	struct conf_ini_section *s;

	TAILQ_FOREACH(s, l, entry) {
		if (strcmp(s->name, name) == 0)
			return s;
	}
	return NULL;
}

/* The value of key in s, or NULL. */
const char *
conf_ini_get(const struct conf_ini_section *s, const char *key)
{
	size_t k;

	for (k = 0; s != NULL && k < s->nkv; k++) {
		if (strcmp(s->kv[k].key, key) == 0)
			return s->kv[k].value;
	}
	return NULL;
}

/* The section called name, made at file:line if new; NULL: no memory. */
static struct conf_ini_section *
conf_ini_section(struct conf_ini_list *l, const char *name, const char *file,
    int line)
{
	struct conf_ini_section *s = conf_ini_find(l, name);

	if (s != NULL)
		return s;
	if ((s = calloc(1, sizeof *s)) == NULL)
		return NULL;
	if ((s->name = strdup(name)) == NULL ||
	    (s->file = strdup(file)) == NULL) {
		free(s->name);
		free(s);
		return NULL;
	}
	s->line = line;
	TAILQ_INSERT_TAIL(l, s, entry);
	return s;
}

/* Set key in s (the last one given wins); the kv's index, -1: no memory. */
static ssize_t
conf_ini_set(struct conf_ini_section *s, const char *key, size_t klen,
    int line)
{
	struct conf_kv *v;
	char *k;
	size_t j;

	if ((k = strndup(key, klen)) == NULL)
		return -1;
	for (j = 0; k[j] != '\0'; j++)
		k[j] = tolower((unsigned char)k[j]);
	for (j = 0; j < s->nkv; j++) {
		if (strcmp(s->kv[j].key, k) == 0) {
			free(k);
			free(s->kv[j].value);
			s->kv[j].value = NULL;
			s->kv[j].line = line;
			return j;
		}
	}
	if ((v = realloc(s->kv, (s->nkv + 1) * sizeof *v)) == NULL) {
		free(k);
		return -1;
	}
	s->kv = v;
	v[s->nkv].key = k;
	v[s->nkv].value = NULL;
	v[s->nkv].line = line;
	return s->nkv++;
}

/* Where line's comment starts (configparser's rule), or its end. */
static size_t
conf_ini_comment(const char *line)
{
	const char *t = line + strspn(line, " \t\f\v");
	size_t k;

	if (*t == ';' || *t == '#')
		return 0;
	for (k = 0; line[k] != '\0'; k++) {
		if ((line[k] == ';' || line[k] == '#') &&
		    (k == 0 || isspace((unsigned char)line[k - 1])))
			return k;
	}
	return k;
}

/* b's text with "%(here)s" replaced by here; NULL: no memory. */
static char *
conf_ini_here(const char *v, const char *here)
{
	struct buf b = { 0 };
	const char *p = v, *h;
	int r = 0;

	while ((h = strstr(p, "%(here)s")) != NULL) {
		r |= buf_append(&b, p, h - p);
		r |= buf_append(&b, here, strlen(here));
		p = h + 8;
	}
	r |= buf_append(&b, p, strlen(p) + 1);
	if (r != 0) {
		buf_free(&b);
		return NULL;
	}
	return b.data;
}

/* Append text (len n) to kv's value, after a newline if it has one. */
static int
conf_ini_append(struct conf_kv *kv, const char *text, size_t n)
{
	size_t old = kv->value != NULL ? strlen(kv->value) : 0;
	char *v;

	if ((v = realloc(kv->value, old + n + 2)) == NULL)
		return -1;
	if (kv->value != NULL)
		v[old++] = '\n';
	memcpy(v + old, text, n);
	v[old + n] = '\0';
	kv->value = v;
	return 0;
}

/* One file's state while it is read. */
struct conf_ini_read {
	struct conf			*c;
	struct conf_ini_walk		*walk;
	struct conf_ini_list		*out;
	const char			*file;
	char				 here[PATH_MAX];
	struct conf_ini_section		*sect;
	ssize_t				 opt;		/* kv index, -1 none */
	size_t				 indent;
	size_t				 blank;		/* blank lines held */
	int				 include_line;	/* of its own files= */
};

/* One line (no newline) of the file. */
static void
conf_ini_line(struct conf_ini_read *r, char *line, int lineno)
{
	size_t full = strlen(line), cut = conf_ini_comment(line), indent, n;
	char *v = line, *end, msg[160];
	ssize_t opt;

	line[cut] = '\0';
	v += strspn(v, " \t\f\v\r");
	n = strlen(v);
	while (n > 0 && isspace((unsigned char)v[n - 1]))
		v[--n] = '\0';
	if (n == 0) {
		/* A blank line (no comment) may be inside a value. */
		if (cut == full && r->opt >= 0)
			r->blank++;
		return;
	}
	indent = v - line;
	if (r->sect != NULL && r->opt >= 0 && indent > r->indent) {
		struct conf_kv *kv = &r->sect->kv[r->opt];

		for (; r->blank > 0; r->blank--) {
			if (conf_ini_append(kv, "", 0) == -1)
				goto nomem;
		}
		if (conf_ini_append(kv, v, n) == -1)
			goto nomem;
		return;
	}
	r->blank = 0;
	r->indent = indent;
	r->opt = -1;
	if (v[0] == '[' && (end = strrchr(v, ']')) != NULL && end > v + 1) {
		*end = '\0';
		if ((r->sect = conf_ini_section(r->out, v + 1, r->file,
		    lineno)) == NULL)
			goto nomem;
		return;
	}
	if (r->sect == NULL) {
		conf_error(r->c, r->file, lineno, "a line before any [section]; "
		    "ignored");
		return;
	}
	n = strcspn(v, "=:");
	if (v[n] == '\0' || n == 0) {
		snprintf(msg, sizeof msg, "[%s]: not KEY = VALUE nor [SECTION]; "
		    "line ignored", r->sect->name);
		conf_error(r->c, r->file, lineno, msg);
		return;
	}
	end = v + n;
	while (end > v && isspace((unsigned char)end[-1]))
		end--;
	if ((opt = conf_ini_set(r->sect, v, end - v, lineno)) == -1)
		goto nomem;
	v += n + 1;
	v += strspn(v, " \t\f\v");
	if ((r->sect->kv[opt].value = strdup(v)) == NULL)
		goto nomem;
	r->opt = opt;
	if (strcmp(r->sect->name, "include") == 0 &&
	    strcmp(r->sect->kv[opt].key, "files") == 0)
		r->include_line = lineno;
	return;
nomem:
	conf_error(r->c, r->file, lineno, "out of memory; line ignored");
}

/* A whole read: the files on the way down (no loops), and how many. */
struct conf_ini_walk {
	char	*stack[CONF_INI_MAX_DEPTH + 2];
	int	 depth;
	int	 files;
};

static int	conf_ini_read_depth(struct conf *, const char *,
		    struct conf_ini_list *, struct conf_ini_walk *);

/* [include] files= of the file just read: each glob, sorted, read. */
static void
conf_ini_include(struct conf_ini_read *r, const char *files)
{
	struct conf_vars vars;
	struct ward_err e = WARD_ERR_INIT;
	char *x, *word, *save = NULL, msg[PATH_MAX + 128];
	size_t j;

	memset(&vars, 0, sizeof vars);
	vars.here = r->here;
	vars.host_node_name = conf_host_node_name();
	if ((x = conf_expand(files, &vars, &e)) == NULL) {
		snprintf(msg, sizeof msg, "[include] files: %s", e.msg);
		conf_error(r->c, r->file, r->include_line, msg);
		return;
	}
	/* supervisord splits files= on blanks (no quotes). */
	for (word = strtok_r(x, " \t\n\r", &save); word != NULL;
	    word = strtok_r(NULL, " \t\n\r", &save)) {
		glob_t g;
		char *pat = word[0] == '/' ? strdup(word) :
		    str_printf("%s/%s", r->here, word);
		int rc;

		if (pat == NULL)
			break;
		rc = glob(pat, 0, NULL, &g);
		if (rc != 0) {
			snprintf(msg, sizeof msg, "[include] files: no file "
			    "matches %s", pat);
			conf_warning(r->c, r->file, r->include_line, msg);
		}
		for (j = 0; rc == 0 && j < g.gl_pathc; j++)
			conf_ini_read_depth(r->c, g.gl_pathv[j], r->out,
			    r->walk);
		if (rc == 0)
			globfree(&g);
		free(pat);
	}
	free(x);
}

/*
 * path as a stream: a regular file (a FIFO or a device named by an
 * [include] must not hang or flood wardd), not one already being read
 * on the way down (an include loop), within the limits. NULL: said in c.
 */
static FILE *
conf_ini_open(struct conf *c, const char *path, struct conf_ini_walk *w)
{
	struct stat st;
	char *real;
	FILE *f;
	int fd, k;

	if (w->depth > CONF_INI_MAX_DEPTH || w->files >= CONF_INI_MAX_FILES) {
		conf_error(c, path, 0, "[include]s nested too deep or too many "
		    "files; not read");
		return NULL;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)) ==
	    -1 || fstat(fd, &st) == -1) {
		conf_error(c, path, 0, strerror(errno));
		if (fd != -1)
			close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > CONF_INI_MAX_BYTES) {
		conf_error(c, path, 0, "not a regular file of at most 16 MiB; "
		    "not read");
		close(fd);
		return NULL;
	}
	/*
	 * A config says what runs as root (command=, user=): a file another
	 * user may change, theirs or group- or world-writable, would let
	 * that user run anything as root. It is a habit of supervisord's
	 * (which reads it anyway) to link a deploy user's file into conf.d;
	 * here it is refused, as sshd's StrictModes refuses such files.
	 */
	if ((st.st_uid != 0 && st.st_uid != geteuid()) ||
	    (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		conf_error(c, path, 0, "another user than root or wardd's may "
		    "change it (its owner or mode); not read");
		close(fd);
		return NULL;
	}
	real = realpath(path, NULL);
	for (k = 0; real != NULL && k < w->depth; k++) {
		if (strcmp(w->stack[k], real) == 0) {
			conf_error(c, path, 0, "[include]s itself (a loop); not "
			    "read again");
			free(real);
			close(fd);
			return NULL;
		}
	}
	if (real == NULL || (f = fdopen(fd, "r")) == NULL) {
		conf_error(c, path, 0, strerror(errno));
		free(real);
		close(fd);
		return NULL;
	}
	w->stack[w->depth++] = real;
	w->files++;
	return f;
}

static int
conf_ini_read_depth(struct conf *c, const char *path, struct conf_ini_list *out,
    struct conf_ini_walk *w)
{
	struct conf_ini_read r;
	struct conf_ini_section *inc;
	char *line = NULL;
	size_t cap = 0, k;
	ssize_t len;
	int lineno = 0;
	FILE *f;

	if ((f = conf_ini_open(c, path, w)) == NULL)
		return -1;
	memset(&r, 0, sizeof r);
	r.c = c;
	r.walk = w;
	r.out = out;
	r.file = path;
	r.opt = -1;
	{
		char tmp[PATH_MAX];

		snprintf(tmp, sizeof tmp, "%s", w->stack[w->depth - 1]);
		snprintf(r.here, sizeof r.here, "%s", dirname(tmp));
	}
	while ((len = getline(&line, &cap, f)) != -1) {
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		conf_ini_line(&r, line, lineno);
	}
	free(line);
	fclose(f);
	/* Values get %(here)s now: the next file has another here. */
	TAILQ_FOREACH(inc, out, entry) {
		for (k = 0; k < inc->nkv; k++) {
			char *v;

			if (inc->kv[k].value == NULL ||
			    strstr(inc->kv[k].value, "%(here)s") == NULL)
				continue;
			if ((v = conf_ini_here(inc->kv[k].value, r.here)) != NULL) {
				free(inc->kv[k].value);
				inc->kv[k].value = v;
			}
		}
	}
	/* Only a files= this file gave names what it includes. */
	inc = conf_ini_find(out, "include");
	if (r.include_line > 0 && conf_ini_get(inc, "files") != NULL) {
		char *mine = strdup(conf_ini_get(inc, "files"));

		if (mine != NULL)
			conf_ini_include(&r, mine);
		free(mine);
	}
	free(w->stack[--w->depth]);
	return 0;
}

/*
 * Read path (and what its [include] names) into out, merging sections of
 * the same name. Problems go to c (errors for lines, which are skipped);
 * -1 when path itself cannot be read.
 */
int
conf_ini_read(struct conf *c, const char *path, struct conf_ini_list *out)
{
	struct conf_ini_walk w;

	memset(&w, 0, sizeof w);
	return conf_ini_read_depth(c, path, out, &w);
}
