/*
 * ctl-top.c: wardctl top, running instances by CPU and memory, redrawn in
 * the terminal's alternate screen (or printed frame by frame into a pipe).
 * Owns the terminal's modes while it runs and gives them back. Calls the
 * shared core (ctl.h) and libward.
 */
#include "config.h"

#include <sys/ioctl.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "ctl.h"

/* For qsort: the busiest first, then the largest. */
static int
ctl_top_compare_cb(const void *a, const void *b)
{
	const struct ward_status *x = a, *y = b;

	if (x->metrics.cpu_percent != y->metrics.cpu_percent)
		return x->metrics.cpu_percent < y->metrics.cpu_percent ? 1 : -1;
	return x->metrics.rss_kb < y->metrics.rss_kb ? 1 :
	    x->metrics.rss_kb > y->metrics.rss_kb ? -1 : 0;
}

/* One line of top's view, cut to the terminal's width (cols > 0). */
static void
ctl_top_line(int cols, const char *pre, const char *post, const char *fmt,
    ...)
{
	char line[512];
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (len < 0)
		len = 0;
	if (len >= (int)sizeof line)
		len = sizeof line - 1;
	if (cols > 0 && len > cols)
		len = cols;
	/* On a terminal, clear what the last frame left right of the line. */
	printf("%s%.*s%s%s\n", pre, len, line, post, cols > 0 ? "\033[K" : "");
}

/*
 * top [-d SECONDS] [-n FRAMES]: on a terminal, a view of its own (the
 * alternate screen, left on exit with the terminal's modes restored) that
 * is redrawn every SECONDS until q or ^C; otherwise FRAMES frames, one
 * unless told, one after another.
 */
static int
ctl_top_exec(struct ctl *c, int argc, char **argv)
{
	struct sigaction old;
	struct termios tio, raw;
	struct ward_status *v;
	struct ward_stats s;
	struct winsize ws;
	struct pollfd pfd = { .fd = 0, .events = POLLIN };
	long frames = -1, delay = 1000;
	int tty = isatty(0) && isatty(1), rows, cols, rc = 0, failed = 0;
	int wname, wid;
	size_t n, i;
	char rss[16], buf[32], id[24], *end;

	for (; argc >= 2; argc -= 2, argv += 2) {
		if (strcmp(argv[0], "-n") == 0) {
			errno = 0;
			frames = strtol(argv[1], &end, 10);
			if (errno != 0 || end == argv[1] || *end != '\0' ||
			    frames < 1)
				return EX_USAGE;
		} else if (strcmp(argv[0], "-d") == 0) {
			double d = strtod(argv[1], &end);

			if (end == argv[1] || *end != '\0' || !(d >= 0.1) ||
			    d > 86400)
				return EX_USAGE;
			delay = (long)(d * 1000);
		} else
			return EX_USAGE;
	}
	if (argc != 0)
		return EX_USAGE;
	if (!tty && frames < 0)
		frames = 1;
	if (ctl_connect(c) == -1)
		return EX_UNREACHABLE;
	ctl_sigint_catch(&old);
	if (tty) {
		tcgetattr(0, &tio);
		raw = tio;
		raw.c_lflag &= ~(ICANON | ECHO);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		tcsetattr(0, TCSANOW, &raw);
		/* The alternate screen, the cursor hidden. */
		fputs("\033[?1049h\033[?25l", stdout);
	}
	while (frames != 0 && !ctl_interrupted) {
		if (ward_stats(c->w, &s) == -1 ||
		    ward_instance_list(c->w, "running", &v, &n) == -1) {
			failed = 1;
			break;
		}
		qsort(v, n, sizeof *v, ctl_top_compare_cb);
		rows = (int)n;
		cols = 0;
		if (tty && ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) {
			/* Summary, blank, header, rows: never a scroll. */
			rows = ws.ws_row > 4 ? ws.ws_row - 4 : 0;
			cols = ws.ws_col;
		}
		wname = 24;
		wid = 6;
		for (i = 0; i < n; i++) {
			wname = ctl_width(wname, v[i].name);
			snprintf(id, sizeof id, "%" PRIu64, v[i].id);
			wid = ctl_width(wid, id);
		}
		/* The columns right of NAME stay on screen: long names are cut. */
		if (cols > 0 && wname > cols - wid - 44)
			wname = cols - wid - 44 > 4 ? cols - wid - 44 : 4;
		if (tty)
			fputs("\033[H", stdout);
		ctl_top_line(cols, "", "", "wardd: %" PRIu64 " instances, %" PRIu64
		    " running, %" PRIu64 " died, %" PRIu64 " clients, wardd rss %s",
		    s.instances, s.running, s.died, s.clients,
		    ctl_size(s.rss_kb, rss, sizeof rss));
		ctl_top_line(cols, "", "", "%s", "");
		ctl_top_line(cols, C_BOLD(c), C_RESET(c),
		    "%-*s %*s %7s %6s %8s %8s %-9s", wname, "NAME", wid, "ID",
		    "PID", "CPU%", "RSS", "UPTIME", "PAYLOAD");
		for (i = 0; i < n && (int)i < rows; i++)
			ctl_top_line(cols, "", "",
			    "%-*.*s %*" PRIu64 " %7d %6.1f %8s %8s %-9s", wname,
			    wname, v[i].name, wid, v[i].id, (int)v[i].pid,
			    v[i].metrics.cpu_percent,
			    ctl_size(v[i].metrics.rss_kb, rss, sizeof rss),
			    ctl_duration(v[i].uptime_ms, buf, sizeof buf),
			    v[i].payload_state ? v[i].payload_state : "");
		if (tty)
			fputs("\033[J", stdout);	/* rows the last frame had */
		fflush(stdout);
		ward_status_list_free(v, n);
		if (frames > 0 && --frames == 0)
			break;
		if (tty) {
			char ch;
			int k = poll(&pfd, 1, delay);

			if (k > 0) {
				ssize_t got = read(0, &ch, 1);

				/* q, or the terminal gone: never spin on EOF. */
				if (got == 0 || (got < 0 && errno != EINTR &&
				    errno != EAGAIN) ||
				    (got == 1 && (ch == 'q' || ch == 'Q' ||
				    ch == 3)))
					break;
			}
		} else
			poll(NULL, 0, delay);
	}
	if (tty) {
		fputs("\033[?25h\033[?1049l", stdout);
		fflush(stdout);
		tcsetattr(0, TCSANOW, &tio);
	}
	ctl_sigint_restore(&old);
	/* Only now, on the screen the user gets back. */
	if (failed)
		rc = ctl_failed(c, NULL);
	return rc;
}

const struct ctl_entry ctl_top_entry = {
	.name = "top",
	.usage = "top [-d SECONDS] [-n FRAMES]",
	.help = "A refreshing view of running instances by CPU and memory; q "
	    "quits.",
	.exec = ctl_top_exec,
};
