/*
 * systemd.c: wardd as a systemd service. Socket activation (the listener
 * comes from sd_listen_fds and is never bound or unlinked by wardd),
 * sd_notify of READY, STATUS, WATCHDOG, RELOADING and STOPPING, and one
 * structured journal entry per death when the journal is wardd's log (else
 * the log has instance.c's line: no send to a journald that may fall
 * behind, on the death path). Everything here is a no-op when wardd
 * does not run under systemd (no NOTIFY_SOCKET, no journald socket).
 *
 * layer: engine
 */
#include "config.h"

#include <sys/socket.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#include "ward.h"

static ev_timer systemd_watchdog_t;	/* WATCHDOG=1 at half WATCHDOG_USEC */
static ev_timer systemd_status_t;	/* coalesces STATUS= to one per turn */
static void	systemd_status_cb(struct ev_loop *, ev_timer *, int);
static unsigned systemd_status_sent = -1U;

/* What systemd passed at start (LISTEN_FDS), read once by systemd_listen_init. */
static int systemd_listener = -1;
static struct systemd_stored *systemd_stored;	/* fd store's, by name */
static size_t systemd_nstored;

/*
 * Take what systemd passed (LISTEN_PID checked, and LISTEN_* unset so no
 * child sees them): the listening socket of ward.socket, and the fds
 * wardd kept in its fd store (named FDSTORE_PREFIX..., fdstore.c's), told
 * apart by name, never by position. Anything but at most one listening
 * AF_UNIX stream socket besides the stored ones is fatal.
 */
void
systemd_listen_init(void)
{
	char **names = NULL;
	int n, k, fd, sockets = 0;

	/* Before any restore: a restored instance already changes STATUS=. */
	ev_timer_init(&systemd_status_t, systemd_status_cb, 0., 0.);
	if ((n = sd_listen_fds_with_names(1, &names)) == 0)
		return;
	if (n < 0)
		fatalx("socket activation: %s", strerror(-n));
	if ((systemd_stored = calloc(n, sizeof *systemd_stored)) == NULL)
		fatalx("out of memory");
	for (k = 0; k < n; k++) {
		fd = SD_LISTEN_FDS_START + k;
		if (names != NULL && names[k] != NULL &&
		    strncmp(names[k], FDSTORE_PREFIX, strlen(FDSTORE_PREFIX)) == 0) {
			systemd_stored[systemd_nstored].name = names[k];
			systemd_stored[systemd_nstored++].fd = fd;
			names[k] = NULL;
		} else {
			sockets++;
			systemd_listener = fd;
		}
	}
	if (sockets > 1)
		fatalx("socket activation: expected exactly one socket, got %d "
		    "(check ListenStream= in ward.socket)", sockets);
	if (systemd_listener != -1 &&
	    sd_is_socket_unix(systemd_listener, SOCK_STREAM, 1, NULL, 0) <= 0)
		fatalx("socket activation: fd %d is not a listening AF_UNIX "
		    "stream socket", systemd_listener);
	for (k = 0; names != NULL && k < n; k++)
		free(names[k]);
	free(names);
}

/* The listening socket systemd passed, or -1 when not socket-activated. */
int
systemd_listen_fd(void)
{
	return systemd_listener;
}

/* The fds systemd handed back from wardd's fd store (fdstore.c takes them). */
struct systemd_stored *
systemd_stored_fds(size_t *n)
{
	*n = systemd_nstored;
	return systemd_stored;
}

static void
systemd_watchdog_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	sd_notify(0, "WATCHDOG=1");
}

static void
systemd_status_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	char msg[64];

	if (systemd_status_sent == instances_running_count)
		return;
	systemd_status_sent = instances_running_count;
	snprintf(msg, sizeof msg, "STATUS=%u instance%s running",
	    instances_running_count, instances_running_count == 1 ? "" : "s");
	sd_notify(0, msg);
}

/* wardd accepts connections: READY=1, the first STATUS=, the watchdog. */
void
systemd_ready(void)
{
	uint64_t usec;

	if (getenv("NOTIFY_SOCKET") == NULL)
		return;
	sd_notify(0, "READY=1");
	systemd_status_cb(ward_loop, &systemd_status_t, 0);
	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		double half = usec / 2e6;

		log_info("systemd watchdog: pinging every %.3f s", half);
		ev_timer_init(&systemd_watchdog_t, systemd_watchdog_cb, half, half);
		ev_timer_start(ward_loop, &systemd_watchdog_t);
		/* A ping must not wait behind an otherwise idle loop's work. */
		ev_unref(ward_loop);
	}
}

/* The running count changed: report it once this loop turn is done. */
static void
systemd_status_changed(void)
{
	if (getenv("NOTIFY_SOCKET") != NULL &&
	    !ev_is_active(&systemd_status_t))
		ev_timer_start(ward_loop, &systemd_status_t);
}

void
systemd_stopping(void)
{
	sd_notify(0, "STOPPING=1\nSTATUS=stopping instances");
}

/* SIGHUP: RELOADING=1 before, READY=1 after. */
void
systemd_reloading(int done)
{
	if (!done)
		sd_notify(0, "RELOADING=1");
	else {
		systemd_status_sent = -1U;
		sd_notify(0, "READY=1");
		systemd_status_cb(ward_loop, &systemd_status_t, 0);
	}
}

/* How loud a death is in the journal. */
static int
systemd_death_priority(const char *reason)
{
	static const char *const errors[] = {
		"CRASH", "HANGUP", "WATCHDOG", "WATCHDOG_REBOOT", "START_FAILED",
		"SPAWN_FAILED", "INFRASTRUCTURE_ERROR", NULL
	};
	int k;

	if (strcmp(reason, "SHUTDOWN") == 0)
		return LOG_INFO;
	if (strcmp(reason, "KILLED") == 0 || strcmp(reason, "REBOOT") == 0)
		return LOG_NOTICE;
	for (k = 0; errors[k] != NULL; k++) {
		if (strcmp(reason, errors[k]) == 0)
			return LOG_ERR;
	}
	return LOG_WARNING;
}

/*
 * One journal record per death (the seed's write_vm_exited_stats_sync):
 * a sentence for people, fields for `journalctl WARD_DEATH_REASON=CRASH`.
 */
static void
systemd_journal_death(const struct instance *i, const struct exit_record *r)
{
	char up[32], how[64], exitf[64], byuid[16] = "";
	uint64_t s = r->uptime_ms / 1000;

	if (s < 60)
		snprintf(up, sizeof up, "%" PRIu64 "s", s);
	else if (s < 3600)
		snprintf(up, sizeof up, "%" PRIu64 "m%" PRIu64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(up, sizeof up, "%" PRIu64 "h%" PRIu64 "m", s / 3600,
		    s % 3600 / 60);
	else
		snprintf(up, sizeof up, "%" PRIu64 "d%" PRIu64 "h", s / 86400,
		    s % 86400 / 3600);
	if (r->exit_signal != 0) {
		snprintf(how, sizeof how, "signal %s", signal_name(r->exit_signal));
		snprintf(exitf, sizeof exitf, "WARD_EXIT_SIGNAL=%s",
		    signal_name(r->exit_signal));
	} else if (r->exited) {
		snprintf(how, sizeof how, "exit code %d", r->exit_code);
		snprintf(exitf, sizeof exitf, "WARD_EXIT_CODE=%d", r->exit_code);
	} else {
		snprintf(how, sizeof how, "no exit status");
		snprintf(exitf, sizeof exitf, "WARD_EXIT_STATUS=none");
	}
	if (r->killed_by == KILLED_BY_KILL)
		snprintf(byuid, sizeof byuid, "%u", (unsigned)r->killed_by_uid);
	sd_journal_send(
	    "MESSAGE=instance %s (id %" PRIu64 ") died: %s after %s, %s",
	    i->spec.name, i->id, r->death_reason, up, how,
	    "PRIORITY=%d", systemd_death_priority(r->death_reason),
	    "SYSLOG_IDENTIFIER=wardd",
	    "WARD_INSTANCE_ID=%" PRIu64, i->id,
	    "WARD_INSTANCE_NAME=%s", i->spec.name,
	    "WARD_DEATH_REASON=%s", r->death_reason,
	    "%s", exitf,
	    "WARD_FAILURE_INFO=%s", r->failure_info ? r->failure_info :
	    r->failure_reason ? r->failure_reason : "",
	    "WARD_UPTIME_MS=%" PRIu64, r->uptime_ms,
	    "WARD_CPU_USER_MS=%" PRIu64, r->metrics.cpu_user_ms,
	    "WARD_CPU_SYSTEM_MS=%" PRIu64, r->metrics.cpu_system_ms,
	    "WARD_RSS_MAX_KB=%" PRIu64, r->metrics.rss_max_kb,
	    "WARD_OWNER_UID=%u", (unsigned)r->owner_uid,
	    /* issue 13: which run, who ended it ("" when nobody said) */
	    "WARD_RUN=%" PRIu64, r->run,
	    "WARD_KILLED_BY=%s", killed_by_name(r->killed_by) != NULL ?
	    killed_by_name(r->killed_by) : "",
	    "WARD_KILLED_BY_UID=%s", byuid,
	    NULL);
}

/* instance.c's observer: STATUS= counts running instances; deaths go to
 * the journal as structured entries when it is the log. */
void
systemd_instance_cb(struct instance *i, enum instance_event ev)
{
	if (ev == INSTANCE_EV_STARTED || ev == INSTANCE_EV_STOPPED ||
	    ev == INSTANCE_EV_RESTORED)
		systemd_status_changed();
	else if (ev == INSTANCE_EV_DIED && i->exit != NULL && log_to_journal())
		systemd_journal_death(i, i->exit);
}
