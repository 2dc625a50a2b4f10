/*
 * shutdown.c: wardd's orderly exit. It stops accepting, tells systemd, and
 * leaves the loop either at once or, when instances are to be killed, once
 * each running instance has been stopped as instance.stop does and its
 * death reported (shutdown_instance_cb hears the last one stop). From the
 * first call on, shutdown_pending() is true: nothing new may start
 * (cmd-instance.c refuses creates, program.c schedules no restart).
 * Instances stop in stages (shutdown_stop_stage, which program.c gives:
 * supervisord's priority, the lowest stopping last), each stage once the
 * one before has stopped.
 *
 * layer: engine (the top of it: calls server.c, instance.c, systemd.c; is
 * called by the commands (ward.shutdown) and by loop.c's signals)
 */
#include "config.h"

#include <limits.h>
#include <signal.h>

#include "ward.h"

static int shutdown_started;
static int shutdown_killing;	/* instances are being stopped, in stages */
long (*shutdown_stop_stage)(const struct instance *);

int
shutdown_pending(void)
{
	return shutdown_started;
}

/* Stop the running instances of the highest stage, unless some of a
 * stage above are still running (they stop first). */
static void
shutdown_stop_next(void)
{
	struct instance *i;
	long top = LONG_MIN;

	if (shutdown_stop_stage == NULL) {
		instance_stop_all(SIGTERM);
		return;
	}
	LIST_FOREACH(i, &instances_running, running_entry) {
		if (shutdown_stop_stage(i) > top)
			top = shutdown_stop_stage(i);
	}
	LIST_FOREACH(i, &instances_running, running_entry) {
		if (shutdown_stop_stage(i) == top &&
		    !ev_is_active(&i->stop_t))
			instance_stop(i, i->stop_timeout_ms);
	}
}

/*
 * Stop accepting and leave the loop: at once, or (kill_instances) once every
 * running instance has been stopped as instance.stop does and reported.
 */
void
shutdown_begin(int kill_instances)
{
	if (shutdown_started && !kill_instances)
		return;
	if (!shutdown_started)
		systemd_stopping();
	shutdown_started = 1;
	server_close();
	if (!kill_instances || instances_running_count == 0) {
		ev_break(ward_loop, EVBREAK_ALL);
		return;
	}
	shutdown_killing = 1;
	shutdown_stop_next();
}

/* instance.c's observer: the last instance to stop ends a shutdown that
 * waits for them; each other one may let the next stage stop. */
void
shutdown_instance_cb(struct instance *i, enum instance_event ev)
{
	if (ev != INSTANCE_EV_STOPPED || !shutdown_started)
		return;
	if (instances_running_count == 0)
		ev_break(ward_loop, EVBREAK_ALL);
	else if (shutdown_killing)
		shutdown_stop_next();	/* the next stage, once this one is down */
}
