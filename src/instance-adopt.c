/*
 * instance-adopt.c: instances that outlived a wardd killed outright
 * (SIGKILL, a crash), read back from STATE_DIR/state by snapshot.c with
 * no fd handed over. Such a process is no longer wardd's child (it was
 * reparented when wardd died): waitid cannot reap it, and its pipes, its
 * NOTIFY_SOCKET and its captured output are gone. What is left is its pid
 * and the start time recorded when it was spawned (field 22 of
 * /proc/PID/stat, instance_adopt_cb), which tells it from a later process
 * that reuses the pid.
 *
 * - Still there (same pid and start time, checked again once a pidfd
 *   holds it): watched through a new pidfd. When it dies, its wait status
 *   comes from the kernel: PIDFD_GET_INFO's PIDFD_INFO_EXIT (Linux 6.15+)
 *   once its new parent has reaped it, or field 52 of /proc/PID/stat while
 *   it is a zombie; failing both, exit_status_lost and SUPERVISOR_LOST.
 * - Gone, or the pid is another process's: it died while no wardd ran.
 *   Its exit record says SUPERVISOR_LOST and exit_status_lost, and its
 *   death takes the usual path (instance_died: dumps, runtime dir, then
 *   DIED to every observer: history, events, restart policies).
 *
 * layer: engine (calls instance.c, sys.c and base modules; instance.c
 * does not call it: observers and snapshot.c do)
 */
#include "config.h"

#include <sys/ioctl.h>
#include <sys/wait.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"

#define container_of(p, type, member) \
	((type *)((char *)(p) - offsetof(type, member)))

/*
 * PIDFD_GET_INFO, from <linux/pidfd.h> of Linux 6.15: this system's header
 * predates it. The first version of the struct (PIDFD_INFO_SIZE_VER0, 64
 * bytes); later kernels accept it, as they accept any older size.
 */
struct adopt_pidfd_info {
	uint64_t	 mask;
	uint64_t	 cgroupid;
	uint32_t	 pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid;
	uint32_t	 fsuid, fsgid;
	int32_t		 exit_code;	/* a wait status, as waitpid's */
};
#define ADOPT_PIDFD_INFO_EXIT	(1ULL << 3)
#define ADOPT_PIDFD_GET_INFO	_IOWR(0xFF, 11, struct adopt_pidfd_info)

static void	instance_adopt_pidfd_cb(struct ev_loop *, ev_io *, int);

/* instance.c's own pidfd callback, given back when an adopted one restarts. */
static void	(*instance_adopt_child_cb)(struct ev_loop *, ev_io *, int);

/*
 * Fields 3 (state), 22 (start time) and 52 (exit code, the wait status of
 * a zombie) of /proc/PID/stat. -1 if unreadable; *code stays -1 when the
 * kernel has no field 52.
 */
static int
instance_adopt_stat(pid_t pid, char *state, uint64_t *start, int *code)
{
	char buf[1024], *end;
	const char *p;
	int field;

	*state = '\0';
	*start = 0;
	*code = -1;
	if (pid <= 0 || sys->proc_read(pid, "stat", buf, sizeof buf) <= 0 ||
	    (p = strrchr(buf, ')')) == NULL)
		return -1;
	p++;
	for (field = 3; field <= 52; field++) {
		while (*p == ' ')
			p++;
		if (*p == '\0' || *p == '\n')
			return field > 22 ? 0 : -1;
		if (field == 3)
			*state = *p;
		else if (field == 22)
			*start = strtoull(p, &end, 10);
		else if (field == 52)
			*code = (int)strtol(p, &end, 10);
		while (*p != ' ' && *p != '\0' && *p != '\n')
			p++;
	}
	return 0;
}

/* This boot's id (the kernel's random boot_id), "" if unreadable. */
const char *
instance_adopt_boot_id(void)
{
	static char id[64];
	size_t n;

	if (id[0] == '\0' && read_small_file("/proc/sys/kernel/random/boot_id",
	    id, sizeof id) > 0 && (n = strcspn(id, "\n")) > 0)
		id[n] = '\0';
	return id;
}

/* pid's start time in clock ticks after boot; 0 if it cannot be read. */
uint64_t
instance_adopt_start_time(pid_t pid)
{
	uint64_t start;
	char state;
	int code;

	if (instance_adopt_stat(pid, &state, &start, &code) == -1)
		return 0;
	return start;
}

/*
 * An observer (loop.c registers it first): every spawn records the new
 * child's start time, and a restarted instance is wardd's child again.
 */
void
instance_adopt_cb(struct instance *i, enum instance_event ev)
{
	if (ev != INSTANCE_EV_STARTED)
		return;
	i->start_time = instance_adopt_start_time(i->pid);
	i->not_child = 0;
	if (ev_cb(&i->pidfd_w) == instance_adopt_pidfd_cb &&
	    instance_adopt_child_cb != NULL)
		ev_set_cb(&i->pidfd_w, instance_adopt_child_cb);
}

/* Watch an adopted instance's pidfd with this file's callback. */
void
instance_adopt_watch(struct instance *i)
{
	if (ev_cb(&i->pidfd_w) != instance_adopt_pidfd_cb)
		instance_adopt_child_cb = ev_cb(&i->pidfd_w);
	ev_io_stop(ward_loop, &i->pidfd_w);
	ev_set_cb(&i->pidfd_w, instance_adopt_pidfd_cb);
	if (i->pidfd != -1) {
		ev_io_set(&i->pidfd_w, i->pidfd, EV_READ);
		ev_io_start(ward_loop, &i->pidfd_w);
	}
}

/* The wait status of an adopted process that exited, or -1: not to be had. */
static int
instance_adopt_status(struct instance *i)
{
	struct adopt_pidfd_info info;
	uint64_t start;
	char state;
	int code, tries;

	/* Its new parent may reap it between the two looks: ask twice. */
	for (tries = 0; tries < 2; tries++) {
		memset(&info, 0, sizeof info);
		info.mask = ADOPT_PIDFD_INFO_EXIT;
		if (ioctl(i->pidfd, ADOPT_PIDFD_GET_INFO, &info) == 0 &&
		    (info.mask & ADOPT_PIDFD_INFO_EXIT))
			return info.exit_code;
		/* Not reaped yet: a zombie still says it, if it is ours. */
		if (instance_adopt_stat(i->pid, &state, &start, &code) == 0 &&
		    state == 'Z' && start == i->start_time && code >= 0)
			return code;
	}
	return -1;
}

/* An exit record for a death wardd could not see. */
static struct exit_record *
instance_adopt_lost_record(void)
{
	struct exit_record *r = xcalloc(1, sizeof *r);

	strcpy(r->death_reason, "SUPERVISOR_LOST");
	r->exit_status_lost = 1;
	return r;
}

/* An adopted process exited (its pidfd says so): how, and the rest. */
static void
instance_adopt_pidfd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct instance *i = container_of(w, struct instance, pidfd_w);
	struct exit_record *r;
	int status;

	instance_announce(i, INSTANCE_EV_EXITING);
	/* Dead before wardd was: its record made history, not the state. */
	if ((r = history_run_ended(i->id, i->started_at_ms)) != NULL) {
		instance_died(i, r, 0);
		return;
	}
	if ((status = instance_adopt_status(i)) == -1) {
		log_warnx("instance %" PRIu64 " %s (pid %d, adopted) exited; "
		    "its exit status is lost", i->id, i->spec.name,
		    (int)i->pid);
		r = instance_adopt_lost_record();
	} else {
		r = xcalloc(1, sizeof *r);
		if (WIFEXITED(status)) {
			r->exited = 1;
			r->exit_code = WEXITSTATUS(status);
		} else {
			r->exit_signal = WTERMSIG(status);
			r->core_dumped = WCOREDUMP(status) != 0;
		}
	}
	instance_died(i, r, 0);
}

/*
 * A RUNNING instance read back from STATE_DIR/state without a pidfd:
 * watch its process again if it is the same one (1), or record its death
 * at once (0). same_boot: the state was written since the last boot (a
 * pid and start time of another boot name nothing).
 */
int
instance_adopt_recover(struct instance *i, int same_boot)
{
	struct exit_record *r;
	int fd;

	/* Its notify pipe and NOTIFY_SOCKET are gone: it could neither
	 * report that it started nor feed a watchdog. */
	ev_timer_stop(ward_loop, &i->hangup_t);
	ev_timer_stop(ward_loop, &i->watchdog_t);
	if (same_boot && i->pid > 0 && i->start_time != 0 &&
	    instance_adopt_start_time(i->pid) == i->start_time &&
	    (fd = sys->pidfd_open(i->pid)) != -1) {
		/* Checked again: the pidfd holds the process it names now. */
		if (instance_adopt_start_time(i->pid) == i->start_time) {
			i->pidfd = fd;
			i->not_child = 1;
			instance_adopt_watch(i);
			log_notice("instance %" PRIu64 " %s: pid %d still runs: "
			    "adopted (its pipes and captured output are lost)",
			    i->id, i->spec.name, (int)i->pid);
			return 1;
		}
		close(fd);
	}
	log_notice("instance %" PRIu64 " %s: pid %d died while no wardd ran",
	    i->id, i->spec.name, (int)i->pid);
	/* Its death may have made history before the last snapshot did. */
	if ((r = history_run_ended(i->id, i->started_at_ms)) == NULL)
		r = instance_adopt_lost_record();
	instance_died(i, r, 0);
	return 0;
}

/*
 * After a crash, from the fd store (fdstore.c): every running instance
 * came back with its pidfd and pipes, but its parent died: it is no
 * longer wardd's child, so its death is read as an adopted one's. Its
 * pipes are still there: the death is classified from them as usual.
 */
void
instance_adopt_orphans(void)
{
	struct instance *i, *next;

	for (i = LIST_FIRST(&instances_running); i != NULL; i = next) {
		next = LIST_NEXT(i, running_entry);
		/* Its pidfd did not come back (the store was full): as
		 * without a store, by pid and start time. May end it. An
		 * adopted one's too: else its pid, unchecked, is what a
		 * stop or a watchdog would signal. */
		if (i->pidfd == -1) {
			instance_adopt_recover(i, 1);
			continue;
		}
		if (i->not_child)
			continue;
		i->not_child = 1;
		instance_adopt_watch(i);
	}
	/* Their cgroups are named after the wardd that died (cgroup.c
	 * sweeps them once empty): stops reach their process groups. */
	TAILQ_FOREACH(i, &instances, entry)
		i->cgroup.made = i->cgroup.killed = 0;
}
