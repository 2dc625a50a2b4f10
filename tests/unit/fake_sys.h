/*
 * fake_sys.h: the engine without processes, for unit tests of the state
 * machines (instance.c, program.c). fake_sys_setup makes a private
 * STATE_DIR and an epoll loop, initialises the engine's modules as wardd.c
 * does (no cgroups, no listener) and puts fake_sys in place of sys.c's
 * table: a spawn "succeeds" with a made-up pid and an eventfd as its
 * pidfd, signals are recorded instead of sent, a child "dies" when the
 * test says so (fake_sys_exit), through the instance's own pidfd callback,
 * and its /proc files read as a small idle process's, each read counted;
 * its cgroup's memory.events reads as fake.memory_events says.
 * Every announcement instance.c makes is recorded too (fake_sys_events).
 */
#ifndef FAKE_SYS_H
#define FAKE_SYS_H

#include "ward.h"

#define FAKE_SYS_MAX_EVENTS	256
#define FAKE_SYS_MAX_SIGNALS	64
#define FAKE_SYS_FIRST_PID	4000
#define FAKE_SYS_MAX_PIDS	4096	/* pids whose /proc reads are counted */

struct fake_sys {
	int		 spawn_fails;	/* the next spawns fail (count) */
	pid_t		 next_pid;
	int		 nsignals;
	int		 signals[FAKE_SYS_MAX_SIGNALS];	/* in the order sent */
	int		 nevents;
	enum instance_event events[FAKE_SYS_MAX_EVENTS];
	uint64_t	 event_ids[FAKE_SYS_MAX_EVENTS];
	siginfo_t	 exit_si;	/* what the next reap returns */
	int		 exit_pending;
	unsigned	 proc_reads;	/* every /proc/PID/FILE read */
	unsigned	 stat_reads[FAKE_SYS_MAX_PIDS];	/* /proc/PID/stat, by
						   pid - FAKE_SYS_FIRST_PID */
	const char	*memory_events;	/* the cgroup's memory.events (NULL: none) */
};

extern struct fake_sys fake;

void	 fake_sys_setup(void);
void	 fake_sys_teardown(void);
struct instance *fake_sys_instance(const char *name, int detect_hangup);
void	 fake_sys_exit(struct instance *, int code, int signal);
void	 fake_sys_fire(ev_timer *);
int	 fake_sys_saw(enum instance_event, uint64_t id);
int	 fake_sys_last_signal(void);

#endif
