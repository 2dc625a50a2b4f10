/*
 * spawn.c: starting a child clean. posix_spawn (vfork speed) does it when
 * the child runs as wardd's own user; a fork path does the rest (switching
 * uid, gid and groups). Either way the child gets an empty signal mask,
 * default dispositions, its own session, /dev/null on stdin, wardd's
 * stdout/stderr, the failure and notify pipes as fds 3 and 4, and nothing
 * else: every fd wardd opens is CLOEXEC.
 */
#include "config.h"

#include <sys/syscall.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"

extern char **environ;

int
spawn_pidfd_open(pid_t pid)
{
	return syscall(SYS_pidfd_open, pid, 0);
}

int
spawn_pidfd_signal(int pidfd, int sig)
{
	return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* Variables of wardd's own that must never reach a payload. */
static int
spawn_env_private(const char *e)
{
	static const char *const drop[] = {
		"NOTIFY_SOCKET=", "LISTEN_PID=", "LISTEN_FDS=", "LISTEN_FDNAMES=",
		"WATCHDOG_PID=", "WATCHDOG_USEC=", "WARD_", NULL
	};
	int k;

	for (k = 0; drop[k] != NULL; k++) {
		if (strncmp(e, drop[k], strlen(drop[k])) == 0)
			return 1;
	}
	return 0;
}

static int
spawn_env_overridden(const char *e, char **env)
{
	size_t kl = strcspn(e, "=");

	for (; env != NULL && *env != NULL; env++) {
		if (strncmp(*env, e, kl) == 0 && (*env)[kl] == '=')
			return 1;
	}
	return 0;
}

/*
 * The child's environment: wardd's (less its private variables), the
 * instance's env on top, then WARD_*. One allocation: free(envp) frees it.
 * The strings of environ and cfg.env are borrowed, not copied.
 */
char **
spawn_environ(const struct instance *i)
{
	size_t n = 0, k = 0, extra = 6;
	char **envp, **e, *area, *end;

	for (e = environ; *e != NULL; e++)
		n++;
	for (e = i->cfg.env; e != NULL && *e != NULL; e++)
		n++;
	envp = malloc((n + extra + 1) * sizeof *envp + 512 +
	    strlen(i->runtime_dir) + strlen(i->cfg.name));
	if (envp == NULL)
		return NULL;
	area = (char *)(envp + n + extra + 1);
	end = area + 512 + strlen(i->runtime_dir) + strlen(i->cfg.name);
	for (e = environ; *e != NULL; e++) {
		if (!spawn_env_private(*e) && !spawn_env_overridden(*e, i->cfg.env))
			envp[k++] = *e;
	}
	for (e = i->cfg.env; e != NULL && *e != NULL; e++) {
		if (!spawn_env_private(*e))
			envp[k++] = *e;
	}
#define SPAWN_ENV(...) do {						\
	envp[k++] = area;						\
	area += snprintf(area, end - area, __VA_ARGS__) + 1;		\
} while (0)
	SPAWN_ENV("%s=%d", WARD_ENV_FAILURE_FD, WARD_FAILURE_FD);
	SPAWN_ENV("%s=%d", WARD_ENV_NOTIFY_FD, WARD_NOTIFY_FD);
	SPAWN_ENV("%s=%s", WARD_ENV_RUNTIME_DIR, i->runtime_dir);
	SPAWN_ENV("%s=%" PRIu64, WARD_ENV_INSTANCE_ID, i->id);
	SPAWN_ENV("%s=%s", WARD_ENV_INSTANCE_NAME, i->cfg.name);
#undef SPAWN_ENV
	envp[k] = NULL;
	return envp;
}

/*
 * A pipe end at 3 or 4 could be clobbered by the dup2 onto the other: use a
 * copy above 4 for the spawn. The caller's fd stays open and its own.
 */
static int
spawn_fd_high(int fd)
{
	if (fd > WARD_NOTIFY_FD)
		return fd;
	return fcntl(fd, F_DUPFD_CLOEXEC, WARD_NOTIFY_FD + 1);
}

static pid_t
spawn_posix(const struct instance *i, int fw, int nw, char **envp, char *err,
    size_t errlen)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	pid_t pid;
	int rc;

	sigemptyset(&none);
	sigfillset(&all);
	sigdelset(&all, SIGKILL);
	sigdelset(&all, SIGSTOP);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
	    POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, fw, WARD_FAILURE_FD);
	posix_spawn_file_actions_adddup2(&fa, nw, WARD_NOTIFY_FD);
	if (i->cfg.cwd != NULL)
		posix_spawn_file_actions_addchdir_np(&fa, i->cfg.cwd);
	rc = posix_spawn(&pid, i->cfg.exec_path, &fa, &attr, i->cfg.argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (rc != 0) {
		snprintf(err, errlen, "cannot start '%s': %s: %s", i->cfg.name,
		    i->cfg.exec_path, strerror(rc));
		return -1;
	}
	return pid;
}

/* What failed in the forked child, sent back over a CLOEXEC pipe. */
struct spawn_failure {
	int	 step;
	int	 err;
};

static const char *const spawn_steps[] = {
	"setsid", "open /dev/null", "dup2", "chdir", "setgroups", "setgid",
	"setuid", "execve"
};

static void __attribute__((noreturn))
spawn_child_fail(int pfd, int step)
{
	struct spawn_failure f = { step, errno };

	(void)!write(pfd, &f, sizeof f);
	_exit(127);
}

/*
 * The fork path, for a child that runs as another user. Between fork and
 * exec the child makes only system calls (no allocation, no name lookups:
 * uid, gid and groups are numbers already), so the parent's wait on the
 * error pipe lasts no longer than posix_spawn's own.
 */
static pid_t
spawn_fork(const struct instance *i, int fw, int nw, char **envp, char *err,
    size_t errlen)
{
	struct spawn_failure f;
	struct sigaction sa;
	sigset_t none;
	uid_t uid = i->cfg.has_user ? i->cfg.user_uid : i->owner_uid;
	gid_t gid = i->cfg.has_user ? i->cfg.user_gid : i->owner_gid;
	int p[2], sig, fd;
	ssize_t n;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) == -1) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	if ((pid = fork()) == -1) {
		snprintf(err, errlen, "cannot start '%s': fork: %s", i->cfg.name,
		    strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = SIG_DFL;
		for (sig = 1; sig < NSIG; sig++)
			sigaction(sig, &sa, NULL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (setsid() == -1)
			spawn_child_fail(p[1], 0);
		if ((fd = open("/dev/null", O_RDONLY)) == -1)
			spawn_child_fail(p[1], 1);
		if ((fd != 0 && dup2(fd, 0) == -1) ||
		    dup2(fw, WARD_FAILURE_FD) == -1 ||
		    dup2(nw, WARD_NOTIFY_FD) == -1)
			spawn_child_fail(p[1], 2);
		if (fd > WARD_NOTIFY_FD)
			close(fd);
		if (i->cfg.cwd != NULL && chdir(i->cfg.cwd) == -1)
			spawn_child_fail(p[1], 3);
		if (setgroups(i->cfg.has_user ? 0 : i->ngroups,
		    i->cfg.has_user ? NULL : i->groups) == -1)
			spawn_child_fail(p[1], 4);
		if (setgid(gid) == -1)
			spawn_child_fail(p[1], 5);
		if (setuid(uid) == -1)
			spawn_child_fail(p[1], 6);
		execve(i->cfg.exec_path, i->cfg.argv, envp);
		spawn_child_fail(p[1], 7);
	}
	close(p[1]);
	do
		n = read(p[0], &f, sizeof f);
	while (n == -1 && errno == EINTR);
	close(p[0]);
	if (n == (ssize_t)sizeof f) {
		waitpid(pid, NULL, 0);	/* it has _exit'ed: reap it now */
		snprintf(err, errlen, "cannot start '%s' as uid %u: %s %s: %s",
		    i->cfg.name, (unsigned)uid, spawn_steps[f.step],
		    f.step == 7 ? i->cfg.exec_path : "", strerror(f.err));
		return -1;
	}
	return pid;
}

/* Start the child; -1 with a message for the client in err. */
pid_t
spawn_child(const struct instance *i, const struct spawn_fds *fds, char **envp,
    char *err, size_t errlen)
{
	int fw, nw;
	pid_t pid;

	fw = spawn_fd_high(fds->failure_w);
	nw = spawn_fd_high(fds->notify_w);
	if (fw == -1 || nw == -1) {
		snprintf(err, errlen, "fcntl: %s", strerror(errno));
		if (fw != -1 && fw != fds->failure_w)
			close(fw);
		if (nw != -1 && nw != fds->notify_w)
			close(nw);
		return -1;
	}
	if (i->run_as_owner || (i->cfg.has_user && opts.is_root))
		pid = spawn_fork(i, fw, nw, envp, err, errlen);
	else
		pid = spawn_posix(i, fw, nw, envp, err, errlen);
	if (fw != fds->failure_w)
		close(fw);
	if (nw != fds->notify_w)
		close(nw);
	return pid;
}
