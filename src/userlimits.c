/*
 * userlimits.c: what a non-admin's payload may have at most: its
 * requester's own rlimits, and scheduling no better than the requester's
 * (nice, CPU policy, I/O priority). Without this a payload would start
 * with wardd's, which pam_limits never bound (a user fenced at nproc 50
 * got wardd's 96,367) and which may be better than any user's (a wardd
 * under `nice -n -5 ionice -c1` gave nobody's payload both).
 *
 * Read here, in the loop, from the client's process when it asks for an
 * instance (each limit at most wardd's own too: wardd may not be able to
 * raise one); applied by spawn.c in the child, as root before the id switch
 * (so the hard limits are the requester's even where wardd's are lower);
 * the spec's own rlimits and nice come after the switch, so the kernel
 * lets them only lower what the requester has (or raise a soft limit up to
 * its hard one, which the user could do itself). Admins' payloads keep
 * wardd's, as before.
 *
 * The peer's pid can be reused once the peer is gone, so the process is
 * pinned with a pidfd first (SO_PEERPIDFD, Linux 6.5: the very process
 * that connected; else pidfd_open of SO_PEERCRED's pid, checked to belong
 * to the peer's uid), and after the reads the pidfd must still name a
 * live (or unreaped) process: only then were the reads of that process.
 * All of it is a handful of non-blocking system calls.
 *
 * layer: engine
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"

/* asm-generic's number (x86, arm, riscv, ...); glibc 2.36 lacks it. */
#if !defined(SO_PEERPIDFD) && !defined(__alpha__) && !defined(__mips__) && \
    !defined(__hppa__) && !defined(__sparc__)
#define SO_PEERPIDFD	77
#endif

/* linux/ioprio.h's, without its header (older ones lack some). */
#define USERLIMITS_IOPRIO_WHO_PROCESS	1
#define USERLIMITS_IOPRIO_CLASS(p)	(((p) >> 13) & 0x07)
#define USERLIMITS_IOPRIO_CLASS_BE	2
#define USERLIMITS_IOPRIO_CLASS_IDLE	3

/* A pidfd for the process that connected c; -1 with errno. */
static int
userlimits_pidfd(const struct peer *peer)
{
	char path[64], buf[4096], *p;
	unsigned long ruid;
	socklen_t len;
	int pidfd;

#ifdef SO_PEERPIDFD
	len = sizeof pidfd;
	if (getsockopt(peer->fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0)
		return pidfd;
	if (errno != ENOPROTOOPT && errno != EINVAL)
		return -1;
#else
	(void)len;
#endif
	/* An older kernel: by number, then its real uid must be the peer's. */
	if (peer->pid <= 0) {
		errno = ESRCH;
		return -1;
	}
	if ((pidfd = spawn_pidfd_open(peer->pid)) == -1)
		return -1;
	snprintf(path, sizeof path, "/proc/%d/status", (int)peer->pid);
	if (read_small_file(path, buf, sizeof buf) == -1 ||
	    (p = strstr(buf, "\nUid:")) == NULL ||
	    sscanf(p + 5, "%lu", &ruid) != 1 || ruid != (unsigned long)peer->uid) {
		close(pidfd);
		errno = ESRCH;
		return -1;
	}
	return pidfd;
}

/* /proc/PID/limits' names, by RLIMIT_* (fs/proc/base.c's lnames). */
static const char *const userlimits_names[RLIM_NLIMITS] = {
	[RLIMIT_CPU] = "Max cpu time",
	[RLIMIT_FSIZE] = "Max file size",
	[RLIMIT_DATA] = "Max data size",
	[RLIMIT_STACK] = "Max stack size",
	[RLIMIT_CORE] = "Max core file size",
	[RLIMIT_RSS] = "Max resident set",
	[RLIMIT_NPROC] = "Max processes",
	[RLIMIT_NOFILE] = "Max open files",
	[RLIMIT_MEMLOCK] = "Max locked memory",
	[RLIMIT_AS] = "Max address space",
	[RLIMIT_LOCKS] = "Max file locks",
	[RLIMIT_SIGPENDING] = "Max pending signals",
	[RLIMIT_MSGQUEUE] = "Max msgqueue size",
	[RLIMIT_NICE] = "Max nice priority",
	[RLIMIT_RTPRIO] = "Max realtime priority",
	[RLIMIT_RTTIME] = "Max realtime timeout",
};

/* One limit value: "unlimited" or a decimal number; past it in *pp. */
static int
userlimits_value(const char **pp, rlim_t *v)
{
	const char *p = *pp;
	rlim_t n = 0;

	while (*p == ' ')
		p++;
	if (strncmp(p, "unlimited", 9) == 0) {
		*v = RLIM_INFINITY;
		p += 9;
	} else {
		if (*p < '0' || *p > '9')
			return -1;
		for (; *p >= '0' && *p <= '9'; p++) {
			if (n > (RLIM_INFINITY - (*p - '0')) / 10)
				return -1;
			n = n * 10 + (*p - '0');
		}
		*v = n;
	}
	if (*p != ' ' && *p != '\n' && *p != '\0')
		return -1;
	*pp = p;
	return 0;
}

/*
 * /proc/PID/limits' text into rlim, every limit in it; -1 if one is
 * missing or unreadable. Pure, for the unit tests. wardd reads the file,
 * not prlimit(PID): reading another process's limits that way needs
 * CAP_SYS_RESOURCE, which a confined root may lack; the file needs none.
 */
int
userlimits_parse(const char *text, struct rlimit *rlim)
{
	const char *line, *p;
	unsigned seen = 0;
	size_t len;
	int r;

	for (line = text; *line != '\0'; line = p + (*p == '\n')) {
		p = line + strcspn(line, "\n");
		for (r = 0; r < RLIM_NLIMITS; r++) {
			len = strlen(userlimits_names[r]);
			if (strncmp(line, userlimits_names[r], len) != 0 ||
			    line[len] != ' ')
				continue;
			p = line + len;
			if (userlimits_value(&p, &rlim[r].rlim_cur) == -1 ||
			    userlimits_value(&p, &rlim[r].rlim_max) == -1)
				return -1;
			seen |= 1U << r;
			p += strcspn(p, "\n");
			break;
		}
	}
	return seen == (1U << RLIM_NLIMITS) - 1 ? 0 : -1;
}

/*
 * Read what pid has into ul; -1 with errno. Each limit is the lower of
 * the requester's and wardd's own: wardd may not be able to raise one
 * (without CAP_SYS_RESOURCE), and its own was the ceiling before.
 */
static int
userlimits_of(pid_t pid, struct user_limits *ul)
{
	char path[64], text[4096];
	struct rlimit own;
	int r, v;

	snprintf(path, sizeof path, "/proc/%d/limits", (int)pid);
	if (read_small_file(path, text, sizeof text) == -1)
		return -1;
	if (userlimits_parse(text, ul->rlim) == -1) {
		errno = EINVAL;
		return -1;
	}
	for (r = 0; r < RLIM_NLIMITS; r++) {
		if (getrlimit(r, &own) == -1)
			return -1;
		if (ul->rlim[r].rlim_max > own.rlim_max)
			ul->rlim[r].rlim_max = own.rlim_max;
		if (ul->rlim[r].rlim_cur > ul->rlim[r].rlim_max)
			ul->rlim[r].rlim_cur = ul->rlim[r].rlim_max;
	}
	errno = 0;
	if ((v = getpriority(PRIO_PROCESS, pid)) == -1 && errno != 0)
		return -1;
	/* Never better than the requester, nor than the default. */
	ul->nice = v > 0 ? v : 0;
	if ((v = sched_getscheduler(pid)) == -1)
		return -1;
	v &= ~SCHED_RESET_ON_FORK;
	/* Batch and idle are worse than the default: kept. Real-time is not. */
	ul->policy = v == SCHED_BATCH || v == SCHED_IDLE ? v : SCHED_OTHER;
	if ((v = syscall(SYS_ioprio_get, USERLIMITS_IOPRIO_WHO_PROCESS,
	    pid)) == -1)
		return -1;
	/* Best-effort levels are anyone's to set; real-time is not. */
	ul->ioprio = USERLIMITS_IOPRIO_CLASS(v) == USERLIMITS_IOPRIO_CLASS_BE ||
	    USERLIMITS_IOPRIO_CLASS(v) == USERLIMITS_IOPRIO_CLASS_IDLE ? v : 0;
	return 0;
}

/*
 * The limits a payload of c's gets: *out is the caller's to free (with its
 * config). 0, or -1 with e set.
 */
int
userlimits_read(const struct peer *peer, struct user_limits **out,
    struct ward_err *e)
{
	struct user_limits *ul = NULL;
	const char *why = NULL;
	int pidfd, eno = 0;

	*out = NULL;
	/* Pid 0: a peer outside wardd's pid namespace. */
	if (peer->pid <= 0)
		why = "its pid is not visible to wardd";
	else if ((ul = calloc(1, sizeof *ul)) == NULL)
		return ward_err_oom(e);
	else if ((pidfd = userlimits_pidfd(peer)) == -1)
		eno = errno;
	else {
		if (userlimits_of(peer->pid, ul) == -1)
			eno = errno;
		/* Still there, so the pid was its all along. */
		else if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) == -1)
			eno = errno;
		close(pidfd);
	}
	if (why == NULL && eno != 0)
		why = eno == ESRCH ? "it is gone" : strerror(eno);
	if (why != NULL) {
		free(ul);
		return ward_err_set(e, WARD_E_PERMISSION, "cannot read the "
		    "limits of the requesting process (pid %d): %s; a "
		    "non-admin's payload gets no more than its requester's own "
		    "limits, so the request must come from a process that waits "
		    "for the answer", (int)peer->pid, why);
	}
	*out = ul;
	return 0;
}
