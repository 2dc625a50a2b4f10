/*
 * ctl-history.c: the shell's history file, ~/.wardctl_history: read at
 * start, rewritten after each line, at most CTL_HISTORY_MAX lines, mode
 * 0600. Written here rather than by libedit's write_history, which
 * fopen()s the path: a symlink planted there would be followed and the
 * file it names truncated. Here the file is opened with O_NOFOLLOW and
 * O_NONBLOCK (a FIFO planted there must not hang the shell at its start)
 * and must be a regular file of one link owned by the user the shell runs
 * as: root's shell in a HOME another user controls (sudo keeps HOME)
 * must neither write its lines into a file that user owns, and so may
 * read (chmod 600 leaves it theirs), nor take that user's lines in as
 * its own history; otherwise the shell runs without a history file
 * (said once). Part of the shell's front end (ctl-shell.c calls it);
 * it calls libedit's history list only.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <editline/readline.h>

#include "ctl.h"

#define CTL_HISTORY_MAX	1000

static char	ctl_history_path[PATH_MAX];
static int	ctl_history_off;	/* said why once; no more tries */

static void
ctl_history_give_up(const char *why)
{
	if (!ctl_history_off)
		fprintf(stderr, "wardctl: %s: %s; history not kept\n",
		    ctl_history_path, why);
	ctl_history_off = 1;
}

/* fd of the history file (flags for open), or -1 having said why. */
static int
ctl_history_open(int flags)
{
	struct stat st;
	int fd;

	if (ctl_history_off)
		return -1;
	fd = open(ctl_history_path, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK, 0600);
	if (fd == -1) {
		if (errno == ENOENT && !(flags & O_CREAT))
			return -1;	/* no history yet */
		ctl_history_give_up(errno == ELOOP ? "a symlink, not followed" :
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		ctl_history_give_up("not a regular file");
		return -1;
	}
	if (st.st_uid != geteuid() || st.st_nlink != 1) {
		close(fd);
		ctl_history_give_up(st.st_uid != geteuid() ? "another user's "
		    "file" : "a file of more than one link");
		return -1;
	}
	return fd;
}

/* Undo libedit's own file format (strvis's \ooo), for a file it wrote. */
static void
ctl_history_unvis(char *s)
{
	char *r = s, *w = s;

	while (*r != '\0') {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' &&
		    r[2] >= '0' && r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 +
			    (r[3] - '0'));
			r += 4;
		} else
			*w++ = *r++;
	}
	*w = '\0';
}

/* Read the file into the history list (home: where it lives). */
void
ctl_history_load(const char *home)
{
	char line[4096];
	FILE *f;
	size_t n;
	int fd, libedit = 0;

	stifle_history(CTL_HISTORY_MAX);
	/* No HOME: no file (one in a shared directory is anyone's). */
	if (home == NULL || *home == '\0' ||
	    (size_t)snprintf(ctl_history_path, sizeof ctl_history_path,
	    "%s/.wardctl_history", home) >= sizeof ctl_history_path) {
		ctl_history_off = 1;
		return;
	}
	if ((fd = ctl_history_open(O_RDONLY)) == -1)
		return;
	if ((f = fdopen(fd, "r")) == NULL) {
		close(fd);
		return;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		n = strcspn(line, "\n");
		line[n] = '\0';
		if (strcmp(line, "_HiStOrY_V2_") == 0) {
			libedit = 1;
			continue;
		}
		if (libedit)
			ctl_history_unvis(line);
		if (line[0] != '\0')
			add_history(line);
	}
	fclose(f);
}

/* Add line to the list and write the list out (the last MAX lines). */
void
ctl_history_add(const char *line)
{
	HIST_ENTRY *he;
	FILE *f;
	int fd, i;

	add_history(line);
	if ((fd = ctl_history_open(O_WRONLY | O_CREAT | O_TRUNC)) == -1)
		return;
	(void)fchmod(fd, 0600);	/* one made wider by hand: ours alone */
	if ((f = fdopen(fd, "w")) == NULL) {
		close(fd);
		return;
	}
	for (i = 0; i < history_length; i++) {
		if ((he = history_get(history_base + i)) != NULL &&
		    strchr(he->line, '\n') == NULL)
			fprintf(f, "%s\n", he->line);
	}
	if (fclose(f) == EOF)
		ctl_history_give_up(strerror(errno));
}
