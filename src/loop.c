/*
 * loop.c: wardd's one event loop and its signals. The loop is
 * ev_loop_new(EVBACKEND_EPOLL), never the default loop: libev's default loop
 * installs a SIGCHLD handler that reaps with waitpid(-1) and would steal the
 * exit statuses that instance.c collects through each child's pidfd.
 * Also the order in which observers hear of instances (loop_observe), and
 * SIGHUP's reload; the shutdown itself is shutdown.c's. And the heap's
 * free memory given back now and then (loop_trim_cb).
 *
 * layer: wiring (calls anything below)
 */
#include "config.h"

#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"

struct ev_loop *ward_loop;

static ev_signal loop_sigterm, loop_sigint, loop_sighup;
static ev_signal loop_sigusr1;	/* output.c: reopen log files */
static ev_signal loop_sigusr2;	/* reexec.c: replace the image */
static ev_timer loop_trim_t;

#define LOOP_TRIM_S	10.	/* how often freed heap goes back */

/*
 * Give the kernel back the heap's free pages. Big buffers (the state
 * snapshot, a list of every instance, a slow client's output) come from
 * the heap once glibc has raised its mmap threshold after the first such
 * free, and the heap then keeps the megabytes it had at its peak: at 1,000
 * idle instances some 2 KiB each. Every LOOP_TRIM_S rather than after each
 * free: a list repeated at once reuses its pages instead of faulting them
 * in again.
 */
static void
loop_trim_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	malloc_trim(0);
}

/*
 * SIGHUP: re-read the [ward] settings. The log level and the metrics
 * interval change at once (unless fixed on the command line).
 */
static void
loop_reload(void)
{
	struct settings s = { opts.log_level, opts.metrics_interval_ms };
	int errors;

	systemd_reloading(0);
	errors = confdir_settings_load(opts.config_dir, &s);
	if (!opts.cli_log_level && s.log_level != opts.log_level) {
		opts.log_level = s.log_level;
		log_set_level(s.log_level);
	}
	if (!opts.cli_metrics_interval &&
	    s.metrics_interval_ms != opts.metrics_interval_ms) {
		opts.metrics_interval_ms = s.metrics_interval_ms;
		metrics_set_interval();
	}
	errors += reload_update(opts.config_dir, NULL);
	log_notice("reloaded %s%s: log level %d, metrics every %u ms",
	    opts.config_dir, errors ? " (with errors, see above)" : "",
	    opts.log_level, opts.metrics_interval_ms);
	systemd_reloading(1);
	snapshot_dirty();	/* programs may have changed */
}

static void
loop_signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	switch (w->signum) {
	case SIGTERM:
	case SIGINT:
		log_notice("got %s: stopping %u running instance%s",
		    signal_name(w->signum), instances_running_count,
		    instances_running_count == 1 ? "" : "s");
		shutdown_begin(1);
		break;
	case SIGHUP:
		loop_reload();
		break;
	case SIGUSR1: {
		/* After logrotate renamed them (its "create" mode). */
		unsigned failed;

		output_reopen_all(&failed);
		break;
	}
	case SIGUSR2: {
		struct ward_err e = WARD_ERR_INIT;

		if (reexec_begin(NULL, NULL, 0, &e) == -1)
			log_warnx("SIGUSR2: no re-exec: %s", e.msg);
		break;
	}
	}
}

/*
 * Whatever wardd's parent blocked or ignored is not wardd's choice: an
 * empty mask, and every ignored signal back to its default, so that
 * SIGTERM, SIGINT and SIGHUP reach their watchers and a SIGCHLD ignored by
 * the parent does not reap children before their pidfds are read (the
 * kernel auto-reaps under SIG_IGN). Handlers someone installed (a
 * sanitizer's) stay; signals 32 and 33 are glibc's and refused by
 * sigaction.
 */
static void
loop_signals_reset(void)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL }, cur;
	int sig;

	for (sig = 1; sig < NSIG; sig++) {
		if (sig != SIGKILL && sig != SIGSTOP &&
		    sigaction(sig, NULL, &cur) == 0 && cur.sa_handler == SIG_IGN)
			sigaction(sig, &dfl, NULL);
	}
}

/*
 * libev's epoll fd, which it does not tell (util.c's fd_close_watched
 * needs it): ev_loop_new's epoll_create1 takes the lowest free fd, so it
 * is the fd free just before, if that is an eventpoll just after. One
 * readlink, not one per fd: after a re-exec thousands are open. -1 if it
 * is not: fds are then closed as libev expects.
 */
static int
loop_epoll_fd(int free_fd)
{
	char path[64], link[64];
	ssize_t n;

	if (free_fd < 0)
		return -1;
	snprintf(path, sizeof path, "/proc/self/fd/%d", free_fd);
	if ((n = readlink(path, link, sizeof link - 1)) <= 0)
		return -1;
	link[n] = '\0';
	return strcmp(link, "anon_inode:[eventpoll]") == 0 ? free_fd : -1;
}

void
loop_init(void)
{
	struct sigaction sa = { .sa_handler = SIG_IGN };
	sigset_t none;
	int free_fd;

	loop_signals_reset();
	/* Writes to a vanished client must not kill wardd; children reset it. */
	sigaction(SIGPIPE, &sa, NULL);
	if ((free_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) != -1)
		close(free_fd);
	ward_loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
	if (ward_loop == NULL)
		fatalx("cannot create the epoll event loop");
	ward_epoll_fd = loop_epoll_fd(free_fd);
	log_debug("libev epoll fd: %d", ward_epoll_fd);
	ev_signal_init(&loop_sigterm, loop_signal_cb, SIGTERM);
	ev_signal_init(&loop_sigint, loop_signal_cb, SIGINT);
	ev_signal_init(&loop_sighup, loop_signal_cb, SIGHUP);
	ev_signal_start(ward_loop, &loop_sigterm);
	ev_signal_start(ward_loop, &loop_sigint);
	ev_signal_start(ward_loop, &loop_sighup);
	ev_signal_init(&loop_sigusr1, loop_signal_cb, SIGUSR1);
	ev_signal_start(ward_loop, &loop_sigusr1);
	ev_signal_init(&loop_sigusr2, loop_signal_cb, SIGUSR2);
	ev_signal_start(ward_loop, &loop_sigusr2);
	ev_timer_init(&loop_trim_t, loop_trim_cb, LOOP_TRIM_S, LOOP_TRIM_S);
	ev_timer_start(ward_loop, &loop_trim_t);
	ev_unref(ward_loop);	/* no reason to keep the loop running */
	/* Only now: a signal held across a re-exec (reexec.c blocks them all
	 * for the exec) reaches its watcher, not the default action. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/*
 * Who hears of what happens to instances, in this order (instance.c names
 * none of them): a new child's start time first (what a recovery after a
 * crash checks), costs, then the journal and STATUS=, history,
 * subscribers, restart policies, the shutdown wait, and last the state
 * kept on disk.
 */
void
loop_observe(void)
{
	instance_observe(instance_adopt_cb);	/* a spawn's start time */
	hooks_init();		/* instance_pre_start: pre_start before a spawn */
	instance_observe(hooks_instance_cb);	/* before history and events:
						   post_death says "running" */
	instance_observe(metrics_instance_cb);
	instance_observe(systemd_instance_cb);
	instance_observe(history_instance_cb);
	instance_observe(event_instance_cb);
	instance_observe(program_instance_cb);
	instance_observe(shutdown_instance_cb);
	instance_observe(snapshot_instance_cb);	/* STATE_DIR/state, soon */
	instance_observe(openmetrics_instance_cb);	/* deaths by reason */
	instance_observe(control_instance_cb);	/* its calls: unavailable */
}

void
loop_run(void)
{
	ev_run(ward_loop, 0);
}
