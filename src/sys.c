/*
 * sys.c: the operating system as the state machines see it: spawning a
 * child, opening a pidfd on it, signalling it, reaping it, and reading its
 * /proc files (metrics.c) and its cgroup's (cgroup.c). Every such call
 * goes through one table, sys, so that unit tests can put a fake in its
 * place (tests/unit/fake_sys.c) and drive the state machines (instance,
 * program) synchronously, without real processes, as dinit's tests do.
 * The real table calls spawn.c and the kernel; nothing here decides
 * anything.
 *
 * layer: engine (the lowest part of it: calls spawn.c, and cgroup.c for
 * a cgroup's path; nothing calls sys.c but through the table)
 */
#include "config.h"

#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "ward.h"

/* waitid on a pidfd without waiting; EINTR is retried. */
static int
sys_linux_reap(int pidfd, siginfo_t *si)
{
	int rc;

	do
		rc = waitid(P_PIDFD, pidfd, si, WEXITED | WNOHANG);
	while (rc == -1 && errno == EINTR);
	return rc;
}

/*
 * A child that has no pidfd (pidfd_open failed) is unreaped, so its pid is
 * still ours: kill and reap it. It has not exec'd anything worth waiting
 * for (it is the payload just spawned), so this does not stall.
 */
static void
sys_linux_kill_unreaped(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/*
 * One open and one read (issue 12: metrics' cost per sample): the files
 * metrics.c reads (stat, smaps_rollup) are a single seq_file record the
 * kernel hands whole to the first read of a buffer that holds it; a
 * longer one is cut, and its parsers take what came.
 */
static ssize_t
sys_linux_proc_read(pid_t pid, const char *file, char *buf, size_t len)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	while ((n = read(fd, buf, len - 1)) == -1 && errno == EINTR)
		;
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return n;
}

/*
 * FILE of the instance's cgroup (cgroup.c's directory) into buf,
 * NUL-terminated; -1 when it has none or the file cannot be read (no
 * memory controller: no memory.events).
 */
static ssize_t
sys_linux_cgroup_read(const struct instance *i, const char *file, char *buf,
    size_t len)
{
	char dir[PATH_MAX], path[PATH_MAX];
	int n;

	if (cgroup_path(i, dir, sizeof dir) == NULL ||
	    (n = snprintf(path, sizeof path, "%s/%s", dir, file)) < 0 ||
	    (size_t)n >= sizeof path)
		return -1;
	return read_small_file(path, buf, len);
}

static const struct sys_ops sys_linux = {
	.spawn = spawn_child,
	.pidfd_open = spawn_pidfd_open,
	.signal = spawn_pidfd_signal,
	.reap = sys_linux_reap,
	.kill_unreaped = sys_linux_kill_unreaped,
	.proc_read = sys_linux_proc_read,
	.cgroup_read = sys_linux_cgroup_read,
};

/* The table in use: the kernel's, or a unit test's fake. */
const struct sys_ops *sys = &sys_linux;
