/*
 * shellwords.c: one command line into words, in place, as Python's
 * shlex.split (POSIX mode, no comments) does: supervisord splits command=
 * that way, so a supervisord.conf's command means the same to ward.
 * Blanks separate words; '...' is literal; inside "..." a backslash only
 * escapes " and \ (else it stays); outside quotes a backslash escapes the
 * next character. Nothing expands, no shell runs. wardd's config reader
 * (conf.c) and wardctl's shell (ctl-shell.c) both call it: one splitter.
 *
 * layer: base (calls nothing of ward's)
 */
#include <stddef.h>

#include "shellwords.h"

static int
shellwords_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * Split line in place: argv[0..n-1] point into it (each word ends with a
 * NUL written over what it no longer needs: a word is never longer than
 * its text). Returns n (at most max), or -1 with *err saying why (an
 * unterminated quote, or a backslash at the end).
 */
int
shellwords_split(char *line, char **argv, int max, const char **err)
{
	char *r = line, *w = line;
	int argc = 0, quote;

	*err = NULL;
	for (;;) {
		while (shellwords_blank(*r))
			r++;
		if (*r == '\0')
			return argc;
		if (argc == max) {
			*err = "too many words";
			return -1;
		}
		argv[argc++] = w;
		quote = 0;
		for (; *r != '\0'; r++) {
			if (quote == '\'') {
				if (*r == '\'')
					quote = 0;
				else
					*w++ = *r;
			} else if (quote == '"') {
				if (*r == '"')
					quote = 0;
				else if (*r == '\\' && (r[1] == '"' || r[1] == '\\'))
					*w++ = *++r;
				else
					*w++ = *r;
			} else if (*r == '\'' || *r == '"')
				quote = *r;
			else if (*r == '\\') {
				if (r[1] == '\0') {
					*err = "a backslash at the end";
					return -1;
				}
				*w++ = *++r;
			} else if (shellwords_blank(*r))
				break;
			else
				*w++ = *r;
		}
		if (quote != 0) {
			*err = quote == '"' ? "unterminated \" quote" :
			    "unterminated ' quote";
			return -1;
		}
		if (*r != '\0')
			r++;
		*w++ = '\0';
	}
}
