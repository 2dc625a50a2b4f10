/*
 * shutdown.c: wardd's orderly exit. It stops accepting, tells systemd, and
 * leaves the loop either at once or, when instances are to be killed, once
 * each running instance has been stopped as instance.stop does and its
 * death reported (shutdown_instance_cb hears the last one stop). From the
 * first call on, shutdown_pending() is true: nothing new may start
 * (cmd-instance.c refuses creates, program.c schedules no restart).
 *
 * layer: engine (the top of it: calls server.c, instance.c, systemd.c; is
 * called by the commands (ward.shutdown) and by loop.c's signals)
 */
#include "config.h"

#include <signal.h>

#include "ward.h"

static int shutdown_started;

int
shutdown_pending(void)
{
	return shutdown_started;
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
	instance_stop_all(SIGTERM);
}

/* instance.c's observer: the last instance to stop ends a shutdown that
 * waits for them. */
void
shutdown_instance_cb(struct instance *i, enum instance_event ev)
{
	if (ev == INSTANCE_EV_STOPPED && shutdown_started &&
	    instances_running_count == 0)
		ev_break(ward_loop, EVBREAK_ALL);
}
