/*
 * wardd.c: the daemon's entry point: options, defaults, start-up checks and
 * the order things are brought up and down in. Runs in the foreground.
 *
 * layer: wiring
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/syscall.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"

struct wardd_opts opts;

static void __attribute__((noreturn))
usage(int rc)
{
	fprintf(rc ? stderr : stdout,
	    "usage: wardd [--socket PATH] [--state-dir DIR] [--config-dir DIR]\n"
	    "             [--metrics-interval MS] [--log-level LEVEL] "
	    "[--log-target TARGET]\n"
	    "             [--no-cgroups] [--max-user-conns N] [--max-user-buffer SIZE]\n"
	    "             [--max-user-fds N] [--max-user-ring SIZE]\n"
	    "             [--dumps-max-count N] [--dumps-max-bytes SIZE] [--exe PATH]\n"
	    "             [--metrics-listen ADDR:PORT]\n"
	    "             [--http-listen [ADDR:]PORT] [--http-auth FILE]\n"
	    "             [--supervisord-conf FILE]\n"
	    "  --socket PATH          control socket (default %s)\n"
	    "  --state-dir DIR        runtime dirs and dumps (default %s)\n"
	    "  --config-dir DIR       *.conf with a [ward] section (default %s)\n"
	    "  --metrics-interval MS  sampling period, 100-3600000 (default 1000)\n"
	    "  --log-level LEVEL      error, warning, notice, info, debug "
	    "(default info)\n"
	    "  --log-target TARGET    auto, stderr or journal (default auto)\n"
	    "  --no-cgroups           no cgroup per instance: stops reach the "
	    "process group only\n"
	    "  --exe PATH             the binary ward.reexec runs (default: the "
	    "one started)\n"
	    "  --state-version        print the state version this wardd reads; "
	    "exit\n"
	    "  --dumps-max-count N    dump dirs kept in STATE_DIR/dumps, oldest "
	    "dropped first\n"
	    "                         (default %d; 0 keeps none)\n"
	    "  --dumps-max-bytes SIZE their bytes on disk, with K, M, G or T "
	    "(default 1G)\n"
	    "  --metrics-listen ADDR:PORT  serve GET /metrics (OpenMetrics) "
	    "there, such as\n"
	    "                         127.0.0.1:9101: anyone who reaches it sees "
	    "every instance\n"
	    "  --http-listen [ADDR:]PORT  the same, and a status page at / "
	    "(ADDR: 127.0.0.1)\n"
	    "  --http-auth FILE       USER:PASSWORD (a file of mode 600): the page "
	    "asks for it\n"
	    "                         and shows output tails (none without it)\n"
	    "Budgets of each non-admin uid (SIZE: bytes, or with K, M or G):\n"
	    "  --max-user-conns N     connections, 1-%d (default %d; admins: %d)\n"
	    "  --max-user-buffer SIZE buffered input and output of all its "
	    "connections,\n"
	    "                         at least 4M (default 64M)\n"
	    "  --max-user-fds N       fds wardd holds for it: passed with requests "
	    "or kept\n"
	    "                         for instances not yet started (default %d)\n"
	    "  --max-user-ring SIZE   output rings of its instances (default "
	    "64M)\n"
	    "  --supervisord-conf FILE  a supervisord.conf, read as supervisord "
	    "reads it,\n"
	    "                         with the config dir (ward.conf(5))\n",
	    opts.socket_path ? opts.socket_path : "$XDG_RUNTIME_DIR/ward.sock",
	    opts.state_dir ? opts.state_dir : "$XDG_RUNTIME_DIR/ward",
	    opts.config_dir, DUMPS_MAX_COUNT_DEFAULT, CONN_MAX,
	    BUDGET_USER_CONNS, CONN_MAX_PER_UID, BUDGET_USER_FDS);
	exit(rc);
}

/* Root: /run/ward/ward.sock and /run/ward. Others: $XDG_RUNTIME_DIR. */
static void
wardd_defaults(void)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");

	opts.uid = geteuid();
	opts.is_root = opts.uid == 0;
	opts.metrics_interval_ms = 1000;
	opts.log_level = LOG_LVL_INFO;
	budget_defaults();
	opts.config_dir = xstrdup("/etc/ward/ward.d");
	if (opts.is_root) {
		opts.socket_path = xstrdup("/run/ward/ward.sock");
		opts.state_dir = xstrdup("/run/ward");
	} else if (xdg != NULL && xdg[0] == '/') {
		opts.socket_path = str_printf("%s/ward.sock", xdg);
		opts.state_dir = str_printf("%s/ward", xdg);
		if (opts.socket_path == NULL || opts.state_dir == NULL)
			fatal("malloc");
	}
	/* Otherwise no default: --socket and --state-dir are needed. */
}

/*
 * An option's value: a number within [min, max], for sizes with an
 * optional K, M, G or T (powers of 1024). Exits with a message otherwise.
 */
static uint64_t
wardd_budget_arg(const char *opt, const char *arg, int size, uint64_t min,
    uint64_t max)
{
	unsigned long long v;
	uint64_t mult = 1;
	char *end;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (size && *end != '\0' && end[1] == '\0') {
		if (*end == 'K' || *end == 'k')
			mult = 1024, end++;
		else if (*end == 'M' || *end == 'm')
			mult = 1024 * 1024, end++;
		else if (*end == 'G' || *end == 'g')
			mult = 1024 * 1024 * 1024, end++;
		else if (*end == 'T' || *end == 't')
			mult = 1024ULL * 1024 * 1024 * 1024, end++;
	}
	if (errno != 0 || end == arg || *end != '\0' || arg[0] == '-' ||
	    v > max / mult || v * mult < min || v * mult > max) {
		fprintf(stderr, "wardd: --%s must be %s from %llu to %llu\n", opt,
		    size ? "a size (bytes, or with K, M, G or T)" : "a number",
		    (unsigned long long)min, (unsigned long long)max);
		exit(2);
	}
	return v * mult;
}

/* The seed's nested-virtualisation rule: a longer boot deadline under a VM. */
static int
wardd_under_hypervisor(void)
{
	char line[4096];
	FILE *f;
	int found = 0;

	if ((f = fopen("/proc/cpuinfo", "re")) == NULL)
		return 0;
	while (!found && fgets(line, sizeof line, f) != NULL) {
		if (strncmp(line, "flags", 5) == 0 &&
		    strstr(line, " hypervisor") != NULL)
			found = 1;
	}
	fclose(f);
	return found;
}

/*
 * Each running instance holds three fds (pidfd and two pipes): raise the
 * soft limit to the hard one. Children get the original back (spawn.c), as
 * systemd does, so select()-based payloads are not surprised.
 */
static void
wardd_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &opts.nofile) == -1)
		return;
	rl = opts.nofile;
	rl.rlim_cur = rl.rlim_max;
	if (rl.rlim_cur != opts.nofile.rlim_cur && setrlimit(RLIMIT_NOFILE, &rl) == -1)
		log_warn("cannot raise the open files limit");
}

/* wardd's own /proc/self/oom_score_adj (0 if it cannot be read). */
static int
wardd_oom_score_adj(void)
{
	char buf[32];

	if (read_small_file("/proc/self/oom_score_adj", buf, sizeof buf) == -1)
		return 0;
	return atoi(buf);
}

/* Make sure 0, 1 and 2 are open, so no socket or pipe lands on them. */
static void
wardd_std_fds(void)
{
	int fd;

	while ((fd = open("/dev/null", O_RDWR)) != -1 && fd <= 2)
		;
	if (fd > 2)
		close(fd);
}

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC	(1U << 2)	/* linux/close_range.h, 5.11 */
#endif

/*
 * Every fd wardd inherited becomes close-on-exec, so no payload gets what
 * wardd's parent left open: all but its stdio (payloads of admins still
 * get it) and the sockets systemd passed to this pid (LISTEN_FDS), which
 * sd_listen_fds marks itself when systemd.c takes them. Before anything
 * else is opened.
 */
static void
wardd_cloexec_inherited(void)
{
	const char *lpid = getenv("LISTEN_PID"), *lfds = getenv("LISTEN_FDS");
	unsigned first = 3;
	struct dirent *de;
	long fd;
	DIR *d;

	if (lpid != NULL && lfds != NULL && atol(lpid) == (long)getpid() &&
	    atol(lfds) > 0 && atol(lfds) <= 64)
		first += atol(lfds);
#ifdef SYS_close_range
	if (syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
#endif
	/* Before Linux 5.11: one by one. */
	if ((d = opendir("/proc/self/fd")) == NULL)
		fatal("cannot list inherited fds: /proc/self/fd");
	while ((de = readdir(d)) != NULL) {
		fd = atol(de->d_name);
		if (de->d_name[0] != '.' && fd >= (long)first && fd != dirfd(d) &&
		    fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC) == -1)
			fatal("cannot make inherited fd %ld close-on-exec", fd);
	}
	closedir(d);
}

/*
 * The binary wardd was started as, by path, so that a re-exec runs what is
 * at that path now (an upgrade replaces the file). NULL if unknown.
 */
static char *
wardd_own_exe(void)
{
	char buf[PATH_MAX];
	ssize_t n;

	if ((n = readlink("/proc/self/exe", buf, sizeof buf - 1)) <= 0)
		return NULL;
	buf[n] = '\0';
	/* Replaced since it started: the path it had is what to run. */
	if (n > 10 && strcmp(buf + n - 10, " (deleted)") == 0)
		buf[n - 10] = '\0';
	return xstrdup(buf);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "metrics-interval", required_argument, NULL, 'm' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "log-target", required_argument, NULL, 't' },
		{ "config-dir", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "no-cgroups", no_argument, NULL, 'G' },	/* long only */
		{ "max-user-conns", required_argument, NULL, 'C' },
		{ "max-user-buffer", required_argument, NULL, 'B' },
		{ "max-user-fds", required_argument, NULL, 'F' },
		{ "max-user-ring", required_argument, NULL, 'R' },
		{ "dumps-max-count", required_argument, NULL, 'D' },
		{ "dumps-max-bytes", required_argument, NULL, 'Y' },
		{ "exe", required_argument, NULL, 'E' },
		{ "state-fd", required_argument, NULL, 'S' },	/* reexec.c's */
		{ "state-version", no_argument, NULL, 'v' },
		{ "metrics-listen", required_argument, NULL, 'H' },
		{ "http-listen", required_argument, NULL, 'H' },	/* its new name */
		{ "http-auth", required_argument, NULL, 0x100 },	/* statuspage.c */
		{ "supervisord-conf", required_argument, NULL, 'W' },
		{ NULL, 0, NULL, 0 }
	};
	struct ward_err herr = WARD_ERR_INIT;
	enum log_target target = LOG_TARGET_AUTO;
	struct settings set;
	char *end;
	long v;
	int ch, fd, state_fd = -1, restored;


	/* A re-exec's check (reexec.c): the state versions this binary reads. */
	if (argc == 2 && strcmp(argv[1], "--state-version") == 0) {
		printf("%d\n", STATE_VERSION);
		return 0;
	}
	wardd_std_fds();
	wardd_cloexec_inherited();
	wardd_defaults();
	while ((ch = getopt_long(argc, argv, "s:d:c:m:l:t:hV", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 's':
			free(opts.socket_path);
			opts.socket_path = xstrdup(optarg);
			break;
		case 'd':
			free(opts.state_dir);
			opts.state_dir = xstrdup(optarg);
			break;
		case 'm':
			v = strtol(optarg, &end, 10);
			if (*end != '\0' || v < 100 || v > 3600000) {
				fprintf(stderr, "wardd: --metrics-interval must be "
				    "100 to 3600000 ms\n");
				exit(2);
			}
			opts.metrics_interval_ms = v;
			opts.cli_metrics_interval = 1;
			break;
		case 'c':
			free(opts.config_dir);
			opts.config_dir = xstrdup(optarg);
			break;
		case 't':
			if (strcmp(optarg, "auto") == 0)
				target = LOG_TARGET_AUTO;
			else if (strcmp(optarg, "stderr") == 0)
				target = LOG_TARGET_STDERR;
			else if (strcmp(optarg, "journal") == 0)
				target = LOG_TARGET_JOURNAL;
			else {
				fprintf(stderr, "wardd: --log-target is auto, "
				    "stderr or journal\n");
				exit(2);
			}
			break;
		case 'l':
			if ((opts.log_level = log_level_parse(optarg)) == -1) {
				fprintf(stderr, "wardd: unknown log level '%s'\n",
				    optarg);
				exit(2);
			}
			opts.cli_log_level = 1;
			break;
		case 'h':
			usage(0);
		case 'G':
			opts.no_cgroups = 1;
			break;
		case 'C':
			opts.max_user_conns = wardd_budget_arg("max-user-conns",
			    optarg, 0, 1, CONN_MAX);
			break;
		case 'B':
			opts.max_user_buffer = wardd_budget_arg("max-user-buffer",
			    optarg, 1, 4 * 1024 * 1024, UINT64_MAX / 2);
			break;
		case 'F':
			opts.max_user_fds = wardd_budget_arg("max-user-fds", optarg,
			    0, 0, 1U << 30);
			break;
		case 'R':
			opts.max_user_ring = wardd_budget_arg("max-user-ring",
			    optarg, 1, 0, UINT64_MAX / 2);
			break;
		case 'D':
			opts.dumps_max_count = wardd_budget_arg("dumps-max-count",
			    optarg, 0, 0, UINT64_MAX / 2);
			break;
		case 'Y':
			opts.dumps_max_bytes = wardd_budget_arg("dumps-max-bytes",
			    optarg, 1, 0, UINT64_MAX / 2);
			break;
		case 'E':
			if (optarg[0] != '/') {
				fprintf(stderr, "wardd: --exe must be an absolute "
				    "path\n");
				exit(2);
			}
			free(opts.exe);
			opts.exe = xstrdup(optarg);
			break;
		case 'S':
			state_fd = atoi(optarg);
			break;
		case 'H':
			if (http_check(optarg, &herr) == -1) {
				fprintf(stderr, "wardd: %s\n", herr.msg);
				exit(2);
			}
			free(opts.metrics_listen);
			opts.metrics_listen = xstrdup(optarg);
			break;
		case 0x100:
			if (statuspage_auth_load(optarg, &herr) == -1) {
				fprintf(stderr, "wardd: %s\n", herr.msg);
				exit(2);
			}
			break;
		case 'W':
			/* Absolute: %(here)s and [include] are relative to it. */
			free(opts.supervisord_conf);
			if ((opts.supervisord_conf = realpath(optarg, NULL)) ==
			    NULL) {
				fprintf(stderr, "wardd: --supervisord-conf %s: %s\n",
				    optarg, strerror(errno));
				exit(2);
			}
			break;
		case 'v':
			printf("%d\n", STATE_VERSION);
			exit(0);
		case 'V':
			printf("wardd %s (protocol %d)\n", PACKAGE_VERSION,
			    WARD_PROTOCOL_VERSION);
			exit(0);
		default:
			usage(2);
		}
	}
	if (optind != argc)
		usage(2);
	if (opts.socket_path == NULL || opts.state_dir == NULL)
		fatalx("XDG_RUNTIME_DIR is not set: pass --socket and --state-dir");
	log_init(opts.log_level);
	log_set_target(target);
	set.log_level = opts.log_level;
	set.metrics_interval_ms = opts.metrics_interval_ms;
	confdir_settings_load(opts.config_dir, &set);
	if (!opts.cli_log_level)
		log_set_level(opts.log_level = set.log_level);
	if (!opts.cli_metrics_interval)
		opts.metrics_interval_ms = set.metrics_interval_ms;
	opts.hypervisor = wardd_under_hypervisor();
	opts.oom_score_adj = wardd_oom_score_adj();
	wardd_raise_nofile();

	closer_init();		/* before the loop: a fork */
	loop_init();
	server_init(cmd_dispatch);	/* requests go to the command table */
	http_init(openmetrics_http_body);	/* GET /metrics's text */
	budget_init();
	statedir_init();	/* after the loop: its remover is a watcher */
	history_init();		/* what the last wardd kept (statedir's fd) */
	instance_init();
	channel_init();
	capacity_init();
	loop_observe();		/* who hears what happens to instances */
	statuspage_init();	/* --http-listen's other paths; heard last */
	program_init();
	metrics_init();
	cgroup_init(opts.no_cgroups);
	suspend_init(cmd_suspend_done_cb);	/* cmd-suspend.c answers waits */
	reexec_init(argc, argv);
	if (opts.exe == NULL)
		opts.exe = wardd_own_exe();
	systemd_listen_init();	/* the listener, and what the fd store kept */
	/* After a re-exec: everything as it was, config included. After a
	 * crash under systemd: what the fd store kept (fdstore.c). */
	restored = state_fd > 2 && reexec_restore(state_fd) == 0;
	if (!restored) {
		const char *st;
		size_t len;

		if ((st = fdstore_recover_begin(&len)) != NULL)
			restored = reexec_restore_state(st, len, 0) == 0;
		fdstore_recover_end(restored);
	}
	/* After a crash without an fd store: what STATE_DIR/state kept. */
	if (!restored)
		restored = snapshot_recover() == 0;
	channel_open();		/* the shared sockets a state did not bring */
	snapshot_init();	/* from now on, STATE_DIR/state follows */
	if (server_listening()) {
		log_notice("wardd %s re-executed on %s (state in %s, pid %d)",
		    PACKAGE_VERSION, opts.socket_path, opts.state_dir,
		    (int)getpid());
	} else if ((fd = systemd_listen_fd()) != -1) {
		/* systemd owns the path: never bind or unlink it. */
		opts.socket_activated = 1;
		server_listen_fd(fd);
		log_notice("wardd %s ready on the socket systemd passed (fd %d; "
		    "state in %s, pid %d)", PACKAGE_VERSION, fd, opts.state_dir,
		    (int)getpid());
	} else {
		server_open(opts.socket_path);
		log_notice("wardd %s ready on %s (state in %s, pid %d)",
		    PACKAGE_VERSION, opts.socket_path, opts.state_dir,
		    (int)getpid());
	}
	/* After a re-exec the state brought the listener; else bind it. */
	if (opts.metrics_listen != NULL && !http_listening()) {
		struct ward_err e = WARD_ERR_INIT;

		if (http_open(opts.metrics_listen, &e) == -1) {
			if (state_fd <= 2)
				fatalx("%s", e.msg);
			log_warnx("%s: no metrics endpoint", e.msg);
		} else
			log_notice("serving GET /metrics on %s",
			    opts.metrics_listen);
	}
	if (!restored)
		reload_load(opts.config_dir);
	systemd_ready();

	loop_run();

	snapshot_final();	/* before the instances are let go */
	log_notice("wardd exiting (%u instance%s still running)",
	    instances_running_count, instances_running_count == 1 ? "" : "s");
	server_close();
	http_close();
	conn_close_all();
	instance_free_all();
	channel_close();	/* after the instances: they index into it */
	cgroup_shutdown();	/* after the instances: their drains are orphans */
	statedir_shutdown();
	history_free();
	budget_shutdown();	/* after every conn and instance gave back */
	ev_loop_destroy(ward_loop);
	free(opts.socket_path);
	free(opts.state_dir);
	free(opts.config_dir);
	free(opts.exe);
	free(opts.metrics_listen);
	free(opts.supervisord_conf);
	return 0;
}
