/*
 * ctl.c: wardctl, the admin tool: main, its options, the command table
 * and dispatch through it, help. The table (each entry defined in its
 * family file, ctl-*.c) serves both the command line and the interactive
 * shell (ctl-shell.c). Every command talks to wardd through libward;
 * --json prints the daemon's own results. Calls the shared core (ctl.h).
 *
 * Exit status: 0 done, 1 the daemon refused (its message is printed),
 * 2 usage error, 3 wardd cannot be reached; the supervisorctl commands
 * use its statuses where they have one (status 3 and 4, 7: ctl.h).
 */
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

volatile sig_atomic_t ctl_interrupted;

static void
ctl_sigint_cb(int sig)
{
	ctl_interrupted = 1;
}

/*
 * For a command that runs until ^C (events, tail -f, top): ^C sets
 * ctl_interrupted instead of ending wardctl, so the command can leave the
 * terminal and the connection as it found them. old gets the disposition
 * to give back with ctl_sigint_restore.
 */
void
ctl_sigint_catch(struct sigaction *old)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = ctl_sigint_cb;
	sigaction(SIGINT, &sa, old);
	/*
	 * Caught already (the shell, whose handler this is for its whole
	 * life and which clears the flag at each prompt; fg, before its
	 * banner): a ^C typed as the command started is meant for it.
	 */
	if (old->sa_handler != ctl_sigint_cb)
		ctl_interrupted = 0;
}

void
ctl_sigint_restore(const struct sigaction *old)
{
	sigaction(SIGINT, old, NULL);
}

/* "wardctl: MESSAGE" on stderr; EX_USAGE, so the usage follows it. */
int
ctl_usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("wardctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EX_USAGE;
}

/* ---- options: getopt per command */

char **ctl_optargv;	/* the argv ctl_getopt is going through */

/*
 * The next option of a command's args (argv as exec got it: the names
 * after the command's own), as getopt_long gives it; -1 at the first name
 * or after "--". An unknown option or one without its value is reported
 * here and returned as '?': the command returns EX_USAGE. The first call
 * for an argv starts over (optind = 0: glibc's full reset, so the shell
 * can parse line after line). getopt sees argv - 1, the command's name
 * (ctl_dispatch passes argv + 1), so its messages and optind line up.
 */
int
ctl_getopt(int argc, char **argv, const char *opts, const struct option *lopts)
{
	char spec[64];
	int ch, at;

	if (ctl_optargv != argv) {
		ctl_optargv = argv;
		optind = 0;
	}
	/* '+': stop at the first name; ':': a missing value is ':'. */
	snprintf(spec, sizeof spec, "+:%s", opts);
	opterr = 0;
	at = optind ? optind : 1;	/* the arg getopt is about to read */
	ch = getopt_long(argc + 1, argv - 1, spec, lopts, NULL);
	if (ch == -1)
		ctl_optargv = NULL;
	if (ch == '?' || ch == ':') {
		const char *o = argv[at - 1];

		ctl_optargv = NULL;
		if (ch == ':')
			ctl_usage_error("%s: option %s needs a value", argv[-1], o);
		else if (optopt != 0 && o[0] == '-' && o[1] != '-')
			ctl_usage_error("%s: unknown option -%c", argv[-1], optopt);
		else
			ctl_usage_error("%s: unknown option %s", argv[-1], o);
		return '?';
	}
	return ch;
}

/*
 * After ctl_getopt's -1: how many args were options (argv + n is the
 * first name), or -1 after reporting an option given after a name
 * ("stop web --timeout 5": a name cannot start with '-' unless "--" said
 * so), so the command returns EX_USAGE.
 */
int
ctl_optnames(int argc, char **argv)
{
	int first = optind - 1, i;

	if (first > 0 && strcmp(argv[first - 1], "--") == 0)
		return first;
	for (i = first; i < argc; i++) {
		if (argv[i][0] == '-' && argv[i][1] != '\0') {
			ctl_usage_error("%s: option %s after a name (options go "
			    "first)", argv[-1], argv[i]);
			return -1;
		}
	}
	return first;
}

/*
 * A command that takes no options but -h: 0 and *n the first name, or
 * EX_USAGE after reporting a bad option.
 */
int
ctl_noopts(int argc, char **argv, int *n)
{
	if (ctl_getopt(argc, argv, "", NULL) != -1)
		return EX_USAGE;
	return (*n = ctl_optnames(argc, argv)) == -1 ? EX_USAGE : 0;
}

/* ---- help and the table */

static int	ctl_help_exec(struct ctl *, int, char **);

static const struct ctl_entry ctl_help_entry = {
	.name = "help",
	.usage = "help [COMMAND]",
	.help = "Show commands, or one command's usage.",
	.exec = ctl_help_exec,
};

/* In the order help lists them. */
const struct ctl_entry *const ctl_table[] = {
	&ctl_status_entry,
	&ctl_run_entry,
	&ctl_start_entry,
	&ctl_stop_entry,
	&ctl_restart_entry,
	&ctl_kill_entry,
	&ctl_suspend_entry,
	&ctl_resume_entry,
	&ctl_wait_entry,
	&ctl_remove_entry,
	&ctl_payload_entry,
	&ctl_history_entry,
	&ctl_events_entry,
	&ctl_tail_entry,
	&ctl_top_entry,
	&ctl_reread_entry,
	&ctl_update_entry,
	&ctl_logrotate_entry,
	&ctl_info_entry,
	&ctl_shutdown_entry,
	&ctl_reexec_entry,
	&ctl_metrics_entry,	/* ctl-ward.c */
	&ctl_call_entry,
	&ctl_signal_entry,	/* ctl-group.c: supervisorctl's */
	&ctl_pid_entry,
	&ctl_avail_entry,	/* ctl-compat.c */
	&ctl_version_entry,
	&ctl_fg_entry,		/* ctl-events.c */
	&ctl_clear_entry,	/* ctl-compat.c */
	&ctl_maintail_entry,
	&ctl_add_entry,		/* ctl-ward.c */
	&ctl_help_entry,
	NULL
};

const struct ctl_entry *
ctl_find(const char *name)
{
	size_t i;

	for (i = 0; ctl_table[i] != NULL; i++) {
		if (strcmp(ctl_table[i]->name, name) == 0)
			return ctl_table[i];
	}
	return NULL;
}

static int
ctl_help_exec(struct ctl *c, int argc, char **argv)
{
	const struct ctl_entry *ce;
	size_t i;

	if (argc > 0) {
		if ((ce = ctl_find(argv[0])) == NULL)
			return ctl_usage_error("no command '%s' (try help)", argv[0]);
		printf("usage: %s\n  %s\n", ce->usage, ce->help);
		return 0;
	}
	printf("commands (help COMMAND for its usage):\n");
	for (i = 0; ctl_table[i] != NULL; i++)
		printf("  %-9s %s\n", ctl_table[i]->name, ctl_table[i]->help);
	return 0;
}

/*
 * Run argv[0] with the rest; a usage error prints the command's usage.
 * COMMAND -h or --help prints it and is done (status 0), for every
 * command, before the command sees its args.
 */
int
ctl_dispatch(struct ctl *c, int argc, char **argv)
{
	const struct ctl_entry *ce = ctl_find(argv[0]);
	int rc;

	if (ce == NULL) {
		ctl_usage_error("unknown command '%s' (try: wardctl help)", argv[0]);
		return EX_USAGE;
	}
	ctl_optargv = NULL;	/* a new line: ctl_getopt starts over */
	if (argc > 1 && (strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0)) {
		printf("usage: %s\n  %s\n", ce->usage, ce->help);
		return 0;
	}
	rc = ce->exec(c, argc - 1, argv + 1);
	if (rc == EX_USAGE)
		fprintf(stderr, "usage: %s\n", ce->usage);
	return rc;
}

static void __attribute__((noreturn))
usage(int rc)
{
	FILE *f = rc ? stderr : stdout;

	fprintf(f, "usage: wardctl [--socket PATH] [--json] COMMAND [ARGS]\n"
	    "       wardctl              (an interactive shell)\n"
	    "commands: ");
	for (size_t i = 0; ctl_table[i] != NULL; i++)
		fprintf(f, "%s%s", i ? ", " : "", ctl_table[i]->name);
	fprintf(f, "\n");
	exit(rc);
}

int
main(int argc, char **argv)
{
	struct ctl c = { 0 };
	const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");
	int i, rc;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc)
			c.socket = argv[++i];
		else if (strncmp(argv[i], "--socket=", 9) == 0)
			c.socket = argv[i] + 9;
		else if (strcmp(argv[i], "--json") == 0)
			c.json = 1;
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			usage(0);
		else if (strcmp(argv[i], "--version") == 0) {
			printf("wardctl %s\n", PACKAGE_VERSION);
			return 0;
		} else if (argv[i][0] == '-')
			usage(EX_USAGE);
		else
			break;
	}
	signal(SIGPIPE, SIG_IGN);
	c.color = isatty(1) && (nc == NULL || *nc == '\0') &&
	    (term == NULL || strcmp(term, "dumb") != 0);
	if (i == argc)
		rc = ctl_shell(&c);
	else
		rc = ctl_dispatch(&c, argc - i, argv + i);
	ward_close(c.w);
	return rc;
}
