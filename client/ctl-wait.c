/*
 * ctl-wait.c: `wardctl wait`, which waits for instances to exit through
 * pidfds wardd hands over (instance.pidfd): no polling of wardd, and no
 * pid that could name another process by the time it is used.
 */
#include "config.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

#define CTL_WAIT_MAX	256		/* instances one wait watches */
#define EX_TIMEOUT	4		/* -t passed with some still running */

static int64_t
ctl_wait_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
ctl_wait_exec(struct ctl *c, int argc, char **argv)
{
	struct pollfd pfd[CTL_WAIT_MAX];
	int64_t deadline = -1, left;
	int i, n = 0, live, rc = 0;
	pid_t pid;

	double secs;
	char *end;
	int ch;

	while ((ch = ctl_getopt(argc, argv, "t:", NULL)) != -1) {
		if (ch == '?')
			return EX_USAGE;
		secs = strtod(optarg, &end);
		if (*optarg == '\0' || *end != '\0' || !(secs >= 0) ||
		    secs > 86400 * 365)
			return ctl_usage_error("wait: -t takes seconds (0 or "
			    "more), not '%s'", optarg);
		deadline = ctl_wait_now_ms() + (int64_t)(secs * 1000);
	}
	if ((ch = ctl_optnames(argc, argv)) == -1)
		return EX_USAGE;
	argc -= ch;
	argv += ch;
	if (argc < 1 || argc > CTL_WAIT_MAX)
		return ctl_usage_error("wait: 1 to %d NAMEs", CTL_WAIT_MAX);
	if (ctl_connect(c) == -1)
		return EX_UNREACHABLE;
	for (i = 0; i < argc; i++) {
		pfd[i].events = POLLIN;
		pfd[i].revents = 0;
		if ((pfd[i].fd = ward_instance_pidfd(c->w, argv[i], &pid)) == -1) {
			rc = ctl_failed(c, argv[i]);
			if (rc == EX_UNREACHABLE)
				break;
			continue;
		}
		n++;
	}
	for (live = n; live > 0 && !ctl_interrupted; ) {
		left = deadline < 0 ? -1 : deadline - ctl_wait_now_ms();
		if (deadline >= 0 && left <= 0) {
			rc = EX_TIMEOUT;
			break;
		}
		if (poll(pfd, argc, left > INT32_MAX ? INT32_MAX : (int)left) <= 0)
			continue;
		for (i = 0; i < argc; i++) {
			if (pfd[i].fd == -1 || pfd[i].revents == 0)
				continue;
			if (!c->json)
				printf("%s: exited\n", argv[i]);
			close(pfd[i].fd);
			pfd[i].fd = -1;	/* poll skips it from now on */
			live--;
		}
	}
	for (i = 0; i < argc; i++) {
		if (pfd[i].fd != -1) {
			if (!c->json)
				printf("%s: still running\n", argv[i]);
			close(pfd[i].fd);
		}
	}
	return rc;
}

const struct ctl_entry ctl_wait_entry = {
	.name = "wait",
	.usage = "wait [-t SECONDS] NAME|ID ...",
	.help = "Wait until running instances exit (exit status 4 if -t "
	    "passes first).",
	.exec = ctl_wait_exec,
};
