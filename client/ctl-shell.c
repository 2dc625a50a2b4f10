/*
 * ctl-shell.c: wardctl with no command, an interactive shell: libedit's
 * line editing and history, completion of command names (from the table
 * in ctl.c) and instance names (asked of wardd), each line split as a
 * shell would and run through ctl_dispatch. Calls the shared core (ctl.h).
 */
#include "config.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Read lines until EOF or quit; each runs like a command line. */
int
ctl_shell(struct ctl *c)
{
	char hist[PATH_MAX], *line, *argv[256];
	const char *err;
	const char *home = getenv("HOME");
	int argc;

	ctl_shell_ctl = c;
	c->interactive = 1;
	/* ^C at the prompt must not end the shell; events and top handle it. */
	signal(SIGINT, SIG_IGN);
	rl_readline_name = "wardctl";
	rl_attempted_completion_function = ctl_shell_complete_cb;
	snprintf(hist, sizeof hist, "%s/.wardctl_history", home ? home : "/tmp");
	using_history();
	read_history(hist);
	if (ctl_connect(c) == 0) {
		struct ward_hello h;

		if (ward_hello(c->w, &h) == 0)
			printf("%s %s at %s; help lists commands, quit leaves\n",
			    h.server, h.version, ward_socket_path(c->w));
	}
	while ((line = readline("ward> ")) != NULL) {
		if (*line != '\0') {
			add_history(line);
			write_history(hist);
		}
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
			ctl_dispatch(c, argc, argv);
		fflush(stdout);
		free(line);
	}
	putchar('\n');
	return 0;
}
