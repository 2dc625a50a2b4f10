/*
 * ctl-shell.c: wardctl with no command, an interactive shell: libedit's
 * line editing and history (its file kept by ctl-history.c), completion
 * of command names (from the table in ctl.c) and instance names (asked
 * of wardd), each line split as a shell would and run through
 * ctl_dispatch. ^C drops the line or ends the running command, never the
 * shell; a connection wardd closed is made again for the next command.
 * Calls the shared core (ctl.h).
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <editline/readline.h>

#include "ctl.h"
#include "shellwords.h"

/* The shell's ctl, for the completion callbacks (readline passes none). */
static struct ctl *ctl_shell_ctl;

/* Readline's generator for the first word: the commands of the table. */
static char *
ctl_shell_command_cb(const char *text, int state)
{
	static size_t i;

	if (state == 0)
		i = 0;
	while (ctl_table[i] != NULL) {
		const char *n = ctl_table[i++]->name;

		if (strncmp(n, text, strlen(text)) == 0)
			return strdup(n);
	}
	return NULL;
}

/* For the other words: instance names, asked of wardd once per word. */
static char *
ctl_shell_name_cb(const char *text, int state)
{
	static struct ward_status *v;
	static size_t n, i;

	if (state == 0) {
		ward_status_list_free(v, n);
		v = NULL;
		n = i = 0;
		if (ctl_connect(ctl_shell_ctl) == 0 &&
		    ward_instance_list(ctl_shell_ctl->w, NULL, &v, &n) == -1) {
			v = NULL;
			n = 0;
		}
	}
	while (i < n) {
		const char *name = v[i++].name;

		if (strncmp(name, text, strlen(text)) == 0)
			return strdup(name);
	}
	return NULL;
}

static char **
ctl_shell_complete_cb(const char *text, int start, int end)
{
	rl_attempted_completion_over = 1;
	if (start == 0)
		return rl_completion_matches(text, ctl_shell_command_cb);
	return rl_completion_matches(text, ctl_shell_name_cb);
}

/*
 * libedit's reader, replaced so that ^C ends readline: libedit retries a
 * read interrupted once, so its own would swallow the ^C. -1 (libedit's
 * EOF) with ctl_interrupted set means the line was cancelled.
 */
static int
ctl_shell_getc_cb(FILE *in)
{
	unsigned char ch;
	ssize_t n;

	for (;;) {
		if (ctl_interrupted)
			return -1;
		if ((n = read(fileno(in), &ch, 1)) == 1)
			return ch;
		if (n == -1 && errno == EINTR)
			continue;
		return -1;
	}
}

/*
 * Before each command: a connection wardd closed (it restarted, or went
 * away) is dropped, so the command makes a new one; after a command that
 * could not reach wardd, say so and let the shell go on.
 */
static void
ctl_shell_run(struct ctl *c, int argc, char **argv)
{
	if (c->w != NULL && !ctl_conn_alive(c)) {
		ward_close(c->w);
		c->w = NULL;
		fprintf(stderr, "wardctl: wardd closed the connection; "
		    "connecting again\n");
	}
	c->unreachable = 0;
	ctl_dispatch(c, argc, argv);
	if (c->unreachable)
		fprintf(stderr, "wardctl: wardd is not answering; the next "
		    "command tries again (quit leaves)\n");
}

/* Read lines until EOF or quit; each runs like a command line. */
int
ctl_shell(struct ctl *c)
{
	struct sigaction old;
	char *line, *argv[256];
	const char *err;
	int argc;

	ctl_shell_ctl = c;
	c->interactive = 1;
	/*
	 * ^C sets ctl_interrupted (no SA_RESTART): at the prompt it cancels
	 * the line, in a command (events, tail -f, top) it ends the command.
	 */
	ctl_sigint_catch(&old);
	rl_readline_name = "wardctl";
	rl_attempted_completion_function = ctl_shell_complete_cb;
	rl_catch_signals = 0;
	rl_getc_function = ctl_shell_getc_cb;
	using_history();
	ctl_history_load(getenv("HOME"));
	if (ctl_connect(c) == 0) {
		struct ward_hello h;

		if (ward_hello(c->w, &h) == 0)
			printf("%s %s at %s; help lists commands, quit leaves\n",
			    h.server, h.version, ward_socket_path(c->w));
	}
	for (;;) {
		ctl_interrupted = 0;
		if ((line = readline("ward> ")) == NULL) {
			if (!ctl_interrupted)
				break;
			putchar('\n');	/* ^C: the line is dropped */
			continue;
		}
		if (*line != '\0')
			ctl_history_add(line);
		/* Split as wardd splits a config's command= (shellwords.c). */
		if ((argc = shellwords_split(line, argv, 255, &err)) == -1) {
			fprintf(stderr, "wardctl: %s\n", err);
			free(line);
			continue;
		}
		argv[argc] = NULL;
		if (argc > 0 && (strcmp(argv[0], "quit") == 0 ||
		    strcmp(argv[0], "exit") == 0)) {
			free(line);
			break;
		}
		if (argc > 0)
			ctl_shell_run(c, argc, argv);
		fflush(stdout);
		free(line);
	}
	putchar('\n');
	ctl_sigint_restore(&old);
	return 0;
}
