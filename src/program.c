/*
 * program.c: a declared program's state machine. A program is a
 * [program:NAME] section of the config directory (confdir.c reads it) plus
 * the instance that runs it and a policy around that instance's runs:
 * restart on death with exponential backoff and an intensity limit past
 * which it is FATAL, and start order (after, requires) by readiness.
 *
 * Everything that happens to a program is an event (enum program_event in
 * ward.h) handed to program_step, and only program_step's handlers change
 * p->state. What is not state is data the handlers read: the instance
 * pointer (NULL only in NAME_HELD, in FATAL when its instance could not be
 * made, and for an instant while an update swaps it), the restart ring and
 * backoff count, the fatal reason, and an update waiting for the death of
 * the running instance (next_conf: replace it; removing: forget it). An
 * update is kept as data rather than as states because it does not change
 * what the program is doing until that death: a program being replaced
 * still runs, is still ready, and still reports so.
 * Each timer has one meaning. reload.c decides what an update changes and
 * hands it over as REPLACE and REMOVE events.
 *
 * layer: programs (calls instance.c, spec.c, event.c, shutdown.c, codec.c;
 * hears of its instances only as instance.c's observer, program_instance_cb)
 */
#include "config.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ward.h"

#define container_of(p, type, member) \
	((type *)((char *)(p) - offsetof(type, member)))

struct program_list programs = TAILQ_HEAD_INITIALIZER(programs);
static struct table programs_by_name;

static void	program_backoff_cb(struct ev_loop *, ev_timer *, int);
static void	program_startsecs_cb(struct ev_loop *, ev_timer *, int);
static void	program_apply_cb(struct ev_loop *, ev_timer *, int);
static void	program_free(struct program *);

/* As clients see them: STARTING is "running" and not ready; a program
 * without an instance (NAME_HELD) is never in a status, "stopped" in logs. */
static const char *const program_state_names[] = {
	[PROGRAM_NAME_HELD] = "stopped",
	[PROGRAM_STOPPED] = "stopped",
	[PROGRAM_WAITING] = "waiting",
	[PROGRAM_STARTING] = "running",
	[PROGRAM_RUNNING] = "running",
	[PROGRAM_BACKOFF] = "backoff",
	[PROGRAM_EXITED] = "exited",
	[PROGRAM_FATAL] = "fatal",
};

static const char *const program_event_names[] = {
	[PROGRAM_EV_WANT] = "want",
	[PROGRAM_EV_START] = "start",
	[PROGRAM_EV_DEPS_READY] = "deps-ready",
	[PROGRAM_EV_STARTED] = "started",
	[PROGRAM_EV_READY] = "ready",
	[PROGRAM_EV_DIED] = "died",
	[PROGRAM_EV_BACKOFF_DONE] = "backoff-done",
	[PROGRAM_EV_STOP] = "stop",
	[PROGRAM_EV_DEP_FATAL] = "dep-fatal",
	[PROGRAM_EV_REPLACE] = "replace",
	[PROGRAM_EV_REMOVE] = "remove",
	[PROGRAM_EV_NAME_FREED] = "name-freed",
	[PROGRAM_EV_APPLY] = "apply",
};

const char *
program_state_name(enum program_state s)
{
	return program_state_names[s];
}

/*
 * shutdown.c's stop stage: supervisord's group priority, the highest
 * stopping first (a [program:x] is a group of its own); instances of no
 * program before all of them.
 */
static long
program_stop_stage(const struct instance *i)
{
	return i->program != NULL ? i->program->conf->group_priority : LONG_MAX;
}

void
program_init(void)
{
	table_init(&programs_by_name);
	shutdown_stop_stage = program_stop_stage;
}

struct program *
program_find(const char *name)
{
	struct table_node *n;

	n = table_find(&programs_by_name, name, strlen(name));
	return n == NULL ? NULL : container_of(n, struct program, by_name);
}

/* Called by program_step's handlers only: the one place p->state is set. */
static void
program_enter(struct program *p, enum program_state s)
{
	if (p->state == s)
		return;
	log_debug("program %s: %s -> %s", p->conf->name,
	    program_state_names[p->state], program_state_names[s]);
	p->state = s;
}

/*
 * Make the program's instance from its spec, as instance.create would.
 * -1 with e set when it cannot; name_holder says whether that is because
 * another instance has the name (the program then waits for it).
 */
static int
program_make_instance(struct program *p, struct ward_err *e)
{
	const msgpack_object *args[ARG_MAX];
	struct instance_spec cfg;
	int parsed = 0;
	msgpack_unpacked u;
	struct instance *i;
	size_t off = 0;

	p->name_holder = 0;
	if ((i = instance_find_name(p->conf->name)) != NULL) {
		/* Taken before it was declared: the program waits for it. */
		p->name_holder = i->id;
		return ward_err_set(e, WARD_E_EXISTS, "the name is held by "
		    "instance %" PRIu64 " of uid %u; the program is created "
		    "once that instance is removed", i->id,
		    (unsigned)i->owner_uid);
	}
	msgpack_unpacked_init(&u);
	/* What e says unless the callees below say more. */
	ward_err_set(e, WARD_E_INTERNAL, "internal: cannot read back its spec");
	if (msgpack_unpack_next(&u, p->conf->spec, p->conf->speclen, &off) !=
	    MSGPACK_UNPACK_SUCCESS ||
	    codec_args(&u.data, spec_args, args, e) == -1 ||
	    (parsed = 1, spec_parse_args(&cfg, args, peer_self(), e)) == -1) {
		if (parsed)
			spec_free(&cfg);
		msgpack_unpacked_destroy(&u);
		return -1;
	}
	msgpack_unpacked_destroy(&u);
	if ((i = instance_new(&cfg, peer_self(), e)) == NULL) {
		spec_free(&cfg);
		return -1;
	}
	i->program = p;
	p->inst = i;
	i->stop_signal = p->conf->policy.stop_signal;
	i->stop_timeout_ms = p->conf->policy.stop_timeout_ms;
	return 0;
}

/* Is the program a requirement has to wait for ready? */
static int
program_dep_ready(const char *name, int required)
{
	struct program *d = program_find(name);

	if (d == NULL)
		return !required;	/* after= a program not declared: ignore */
	if (d->state == PROGRAM_RUNNING)
		return 1;
	/* after= only orders programs that are starting at all. */
	return !required && (d->state == PROGRAM_STOPPED ||
	    d->state == PROGRAM_NAME_HELD || d->state == PROGRAM_EXITED ||
	    d->state == PROGRAM_FATAL);
}

static int
program_deps_ready(const struct program *p)
{
	char **n;

	for (n = p->conf->policy.after; n != NULL && *n != NULL; n++) {
		if (!program_dep_ready(*n, 0))
			return 0;
	}
	for (n = p->conf->policy.requires; n != NULL && *n != NULL; n++) {
		if (!program_dep_ready(*n, 1))
			return 0;
	}
	return 1;
}

/* Spawn now (dependencies are ready). Success comes back as STARTED, a
 * spawn failure as DIED like any death, both before this returns. */
static void
program_spawn(struct program *p)
{
	struct ward_err e = WARD_ERR_INIT;

	program_enter(p, PROGRAM_STARTING);
	if (instance_start(p->inst, &e) == -1)
		log_warnx("program %s: %s", p->conf->name, e.msg);
}

/*
 * WANT: start it, or wait for what it needs; required programs are pulled
 * in. A program without an instance has nothing to start: it is wanted
 * again (autostart) once it has one.
 */
static void
program_on_want(struct program *p)
{
	char **n;

	if (p->inst == NULL)
		return;
	for (n = p->conf->policy.requires; n != NULL && *n != NULL; n++) {
		struct program *d = program_find(*n);

		if (d != NULL && (d->state == PROGRAM_STOPPED ||
		    d->state == PROGRAM_EXITED))
			program_step(d, PROGRAM_EV_WANT);
	}
	if (program_deps_ready(p))
		program_spawn(p);
	else
		program_enter(p, PROGRAM_WAITING);
}

/* Every waiting program whose dependencies are now ready: DEPS_READY. */
static void
program_start_waiting(void)
{
	struct program *p;
	int again;

	do {
		again = 0;
		TAILQ_FOREACH(p, &programs, entry) {
			if (p->state == PROGRAM_WAITING && program_deps_ready(p)) {
				program_step(p, PROGRAM_EV_DEPS_READY);
				again = 1;
			}
		}
	} while (again);
}

/* READY: this run counts as up; what waited for it may start. */
static void
program_on_ready(struct program *p)
{
	if (p->state != PROGRAM_STARTING)
		return;
	program_enter(p, PROGRAM_RUNNING);
	if (p->conf->policy.readiness_notify)
		p->attempt = 0;	/* READY=1 resets the backoff */
	ev_timer_stop(ward_loop, &p->startsecs_t);
	log_info("program %s is ready", p->conf->name);
	program_start_waiting();
}

/*
 * p is FATAL, p->fatal_reason says why (DIED: too many restarts;
 * DEP_FATAL: a requirement is). What requires p cannot run: DEP_FATAL.
 */
static void
program_go_fatal(struct program *p)
{
	const char *why = p->fatal_reason ? p->fatal_reason : "out of memory";
	struct program *d;
	char **n;

	program_enter(p, PROGRAM_FATAL);
	log_warnx("program %s is fatal: %s", p->conf->name, why);
	if (p->inst != NULL)
		event_emit(EVENT_FATAL, p->inst);
	TAILQ_FOREACH(d, &programs, entry) {
		for (n = d->conf->policy.requires; n != NULL && *n != NULL; n++) {
			if (strcmp(*n, p->conf->name) != 0)
				continue;
			if (d->state != PROGRAM_FATAL) {
				free(d->fatal_reason);
				d->fatal_reason = str_printf("required program "
				    "'%s' is fatal", p->conf->name);
				program_step(d, PROGRAM_EV_DEP_FATAL);
			}
			break;
		}
	}
}

/* DEP_FATAL: stop a run in progress (killed by the dependency), and give
 * up; p->fatal_reason names the requirement. */
static void
program_on_dep_fatal(struct program *p)
{
	if ((p->state == PROGRAM_STARTING || p->state == PROGRAM_RUNNING) &&
	    p->inst != NULL && p->inst->state == INSTANCE_RUNNING) {
		free(p->inst->failure_note);
		p->inst->failure_note = p->fatal_reason ?
		    strdup(p->fatal_reason) : NULL;
		p->inst->killed_by = KILLED_BY_DEPENDENCY;
		instance_stop(p->inst, p->conf->policy.stop_timeout_ms);
	}
	program_go_fatal(p);
}

/* The restart ring: how many restarts within the window, this one counted. */
static size_t
program_count_restart(struct program *p, ev_tstamp now)
{
	size_t cap = p->conf->policy.max_restarts + 1, k, n = 0;
	ev_tstamp window = p->conf->policy.restart_window_ms / 1000.0;

	if (p->restarts == NULL || p->nrestarts != cap) {
		free(p->restarts);
		p->restarts = calloc(cap, sizeof *p->restarts);
		p->nrestarts = p->restarts ? cap : 0;
		p->restarts_head = 0;
		if (p->restarts == NULL)
			return 0;
	}
	p->restarts[p->restarts_head] = now;
	p->restarts_head = (p->restarts_head + 1) % cap;
	for (k = 0; k < cap; k++) {
		if (p->restarts[k] > 0 && now - p->restarts[k] <= window)
			n++;
	}
	return n;
}

/* Whether the policy wants this death restarted. */
static int
program_should_restart(const struct program *p, const struct exit_record *r,
    int failed_start)
{
	const struct program_policy *pol = &p->conf->policy;
	int ok;
	char **n;

	if (pol->restart == RESTART_NO)
		return 0;
	if (pol->restart_on != NULL) {
		for (n = pol->restart_on; *n != NULL; n++) {
			if (strcmp(*n, r->death_reason) == 0)
				return 1;
		}
		return failed_start;
	}
	if (pol->restart == RESTART_ALWAYS)
		return 1;
	ok = r->exited && r->exit_code >= 0 && r->exit_code < 256 &&
	    (pol->success_codes[r->exit_code / 32] & (1U << (r->exit_code % 32))) &&
	    strcmp(r->death_reason, "SHUTDOWN") == 0;
	if (r->exited && r->exit_code != 0 && (pol->success_codes[r->exit_code /
	    32] & (1U << (r->exit_code % 32))))
		ok = 1;		/* exitcodes lists it as expected */
	return failed_start || !ok;
}

/* Run the deferred apply (APPLY) on the next loop turn, not inside the
 * death or removal that made it due. */
static void
program_schedule_apply(struct program *p)
{
	ev_timer_set(&p->apply_t, 0., 0.);
	ev_timer_start(ward_loop, &p->apply_t);
}

/*
 * DIED, after every death of the program's instance (spawn failures
 * included): stay down, back off and restart, or give up. Never starts or
 * frees anything: the caller may still hold the instance; restarts go
 * through timers.
 */
static void
program_on_died(struct program *p)
{
	const struct exit_record *r = p->inst != NULL ? p->inst->exit : NULL;
	ev_tstamp now = ev_now(ward_loop);
	uint64_t delay;
	int failed_start, was_ready = p->state == PROGRAM_RUNNING;
	char why[256];

	if (r == NULL)
		return;
	ev_timer_stop(ward_loop, &p->startsecs_t);
	if (p->removing || p->next_conf != NULL) {
		program_schedule_apply(p);
		program_enter(p, PROGRAM_STOPPED);
		return;
	}
	if (p->state == PROGRAM_FATAL)
		return;		/* stopped because a requirement is fatal */
	if (p->inst->stop_requested || shutdown_pending()) {
		program_enter(p, PROGRAM_STOPPED);
		return;
	}
	failed_start = !was_ready && r->uptime_ms < p->conf->policy.startsecs_ms;
	if (!program_should_restart(p, r, failed_start)) {
		program_enter(p, PROGRAM_EXITED);
		program_start_waiting();	/* after= may be satisfied now */
		return;
	}
	/*
	 * Stable long enough, or it said READY=1: start the backoff over.
	 * (Ready by startsecs alone does not count: with startsecs = 0 a crash
	 * loop would never back off.)
	 */
	if ((was_ready && p->conf->policy.readiness_notify) ||
	    r->uptime_ms >= p->conf->policy.backoff_reset_ms)
		p->attempt = 0;
	if (program_count_restart(p, now) > p->conf->policy.max_restarts) {
		snprintf(why, sizeof why, "%u restarts within %u ms (last death: "
		    "%s)", p->conf->policy.max_restarts,
		    p->conf->policy.restart_window_ms, r->death_reason);
		free(p->fatal_reason);
		p->fatal_reason = strdup(why);
		program_go_fatal(p);
		return;
	}
	delay = (uint64_t)p->conf->policy.backoff_initial_ms << (p->attempt < 30 ?
	    p->attempt : 30);
	if (delay > p->conf->policy.backoff_max_ms)
		delay = p->conf->policy.backoff_max_ms;
	p->attempt++;
	p->restart_count++;
	program_enter(p, PROGRAM_BACKOFF);
	ev_timer_set(&p->backoff_t, delay / 1000.0, 0.);
	ev_timer_start(ward_loop, &p->backoff_t);
	log_info("program %s died (%s)%s: restart %u in %" PRIu64 " ms",
	    p->conf->name, r->death_reason, failed_start ? " before startsecs" :
	    "", p->attempt, delay);
	event_emit(EVENT_RESTARTING, p->inst);
}

/* Forget past failures: the backoff, the restart ring, the fatal reason. */
static void
program_reset(struct program *p)
{
	ev_timer_stop(ward_loop, &p->backoff_t);
	p->attempt = 0;
	free(p->restarts);
	p->restarts = NULL;
	p->nrestarts = 0;
}

/* REPLACE or REMOVE: stop what runs; the change applies at its death. */
static void
program_on_update(struct program *p)
{
	ev_timer_stop(ward_loop, &p->backoff_t);
	if (p->inst != NULL && p->inst->state == INSTANCE_RUNNING)
		instance_stop(p->inst, p->conf->policy.stop_timeout_ms);
	else
		program_schedule_apply(p);
}

/*
 * APPLY (apply_t): after a death that an update waited for, replace or
 * forget the program; once the instance that held a NAME_HELD program's
 * name is removed, make its instance. p may be freed.
 */
static void
program_on_apply(struct program *p)
{
	struct conf_program *next;
	int changed;
	struct ward_err e = WARD_ERR_INIT;

	if (p->inst != NULL && p->inst->state == INSTANCE_RUNNING)
		return;		/* not dead yet; its death comes back here */
	if (p->removing) {
		log_info("program %s removed", p->conf->name);
		program_free(p);
		return;
	}
	next = p->next_conf;
	p->next_conf = NULL;
	if ((changed = next != NULL)) {
		if (p->inst != NULL) {
			p->inst->program = NULL;
			instance_remove(p->inst);
			p->inst = NULL;
		}
		/* The name index points into the conf: re-key it on the new one. */
		table_remove(&programs_by_name, &p->by_name);
		conf_program_free(p->conf);
		p->conf = next;
		table_insert(&programs_by_name, &p->by_name, next->name,
		    strlen(next->name));
	} else if (p->inst != NULL)
		return;		/* nothing deferred is left */
	program_reset(p);
	if (program_make_instance(p, &e) == -1) {
		log_warnx("program %s: %s", p->conf->name, e.msg);
		program_enter(p, p->name_holder != 0 ? PROGRAM_NAME_HELD :
		    PROGRAM_FATAL);
		return;
	}
	log_info("program %s %s", p->conf->name, changed ? "changed: restarting" :
	    "has its name: created");
	program_enter(p, PROGRAM_STOPPED);
	if (p->conf->policy.autostart)
		program_on_want(p);
}

/*
 * The one transition function: what happens to p (see enum program_event)
 * moves it from its state to the next. Events that do not apply to p's
 * state are ignored. Handlers may step other programs (requirements,
 * dependents, waiting ones). After APPLY, p may have been freed.
 */
void
program_step(struct program *p, enum program_event ev)
{
	log_debug("program %s: %s in %s", p->conf->name,
	    program_event_names[ev], program_state_names[p->state]);
	switch (ev) {
	case PROGRAM_EV_WANT:
		program_on_want(p);
		break;
	case PROGRAM_EV_START:
		program_reset(p);
		free(p->fatal_reason);
		p->fatal_reason = NULL;
		program_enter(p, PROGRAM_STOPPED);
		program_on_want(p);
		break;
	case PROGRAM_EV_DEPS_READY:
		if (p->state == PROGRAM_WAITING && program_deps_ready(p))
			program_spawn(p);
		break;
	case PROGRAM_EV_STARTED:
		if (p->state == PROGRAM_STARTING &&
		    !p->conf->policy.readiness_notify) {
			ev_timer_set(&p->startsecs_t,
			    p->conf->policy.startsecs_ms / 1000.0, 0.);
			ev_timer_start(ward_loop, &p->startsecs_t);
		}
		break;
	case PROGRAM_EV_READY:
		program_on_ready(p);
		break;
	case PROGRAM_EV_DIED:
		program_on_died(p);
		break;
	case PROGRAM_EV_BACKOFF_DONE:
		if (p->state == PROGRAM_BACKOFF)
			program_on_want(p);
		break;
	case PROGRAM_EV_STOP:
		if (p->state != PROGRAM_BACKOFF && p->state != PROGRAM_WAITING)
			break;
		ev_timer_stop(ward_loop, &p->backoff_t);
		program_enter(p, PROGRAM_STOPPED);
		log_info("program %s: pending start called off", p->conf->name);
		break;
	case PROGRAM_EV_DEP_FATAL:
		if (p->state != PROGRAM_FATAL)
			program_on_dep_fatal(p);
		break;
	case PROGRAM_EV_REMOVE:
		p->removing = 1;
		program_on_update(p);
		break;
	case PROGRAM_EV_REPLACE:
		/* Declared again while its removal was pending: the removal
		 * is called off; it is replaced instead, at its death. */
		p->removing = 0;
		if (p->next_conf != NULL)
			program_on_update(p);
		break;
	case PROGRAM_EV_NAME_FREED:
		if (p->state == PROGRAM_NAME_HELD && !p->removing)
			program_schedule_apply(p);
		break;
	case PROGRAM_EV_APPLY:
		program_on_apply(p);	/* p may be freed */
		break;
	}
}

/* startsecs passed with the instance still running: it counts as up. */
static void
program_startsecs_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct program *p = container_of(t, struct program, startsecs_t);

	if (p->inst != NULL && p->inst->state == INSTANCE_RUNNING)
		program_step(p, PROGRAM_EV_READY);
}

static void
program_backoff_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	program_step(container_of(t, struct program, backoff_t),
	    PROGRAM_EV_BACKOFF_DONE);
}

static void
program_apply_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	program_step(container_of(t, struct program, apply_t),
	    PROGRAM_EV_APPLY);
}

/*
 * wardctl start on a program: clear a fatal state and its restart count,
 * then start it (waiting for its dependencies as at boot). -1 with e set
 * (invalid_state) when it cannot be started now.
 */
int
program_start(struct program *p, struct ward_err *e)
{
	if (p->inst == NULL)
		return ward_err_set(e, WARD_E_INVALID_STATE, "program '%s' is "
		    "being replaced", p->conf->name);
	if (p->inst->state == INSTANCE_RUNNING)
		return ward_err_set(e, WARD_E_INVALID_STATE, "program '%s' is "
		    "already running", p->conf->name);
	program_step(p, PROGRAM_EV_START);
	return 0;
}

/*
 * wardctl stop on a program that is not running: a pending restart (backoff)
 * or a start waiting for its dependencies is called off, as supervisorctl
 * stop does in BACKOFF. Returns -1 when nothing was pending.
 */
int
program_cancel(struct program *p)
{
	if (p->state != PROGRAM_BACKOFF && p->state != PROGRAM_WAITING)
		return -1;
	program_step(p, PROGRAM_EV_STOP);
	return 0;
}

/*
 * A program for cp (taken over), with its instance, STOPPED; or NAME_HELD
 * when another instance holds its name (confdir_read has put that in the
 * errors already). NULL when its instance cannot be made otherwise.
 */
struct program *
program_new(struct conf_program *cp)
{
	struct program *p;
	struct ward_err e = WARD_ERR_INIT;

	if ((p = calloc(1, sizeof *p)) == NULL)
		return NULL;
	p->conf = cp;
	ev_init(&p->backoff_t, program_backoff_cb);
	ev_init(&p->startsecs_t, program_startsecs_cb);
	ev_init(&p->apply_t, program_apply_cb);
	if (program_make_instance(p, &e) == -1 && p->name_holder == 0) {
		log_warnx("%s:%d: [program:%s]: %s", cp->file, cp->line, cp->name,
		    e.msg);
		free(p);
		return NULL;
	}
	/* Born in its first state: not a transition. */
	p->state = p->inst != NULL ? PROGRAM_STOPPED : PROGRAM_NAME_HELD;
	table_insert(&programs_by_name, &p->by_name, cp->name, strlen(cp->name));
	TAILQ_INSERT_TAIL(&programs, p, entry);
	return p;
}

/*
 * p, read back from wardd's state by program-state.c (its instance linked
 * already): give it its timers' callbacks and index it. The caller starts
 * the timers that were running.
 */
void
program_adopt(struct program *p)
{
	ev_init(&p->backoff_t, program_backoff_cb);
	ev_init(&p->startsecs_t, program_startsecs_cb);
	ev_init(&p->apply_t, program_apply_cb);
	table_insert(&programs_by_name, &p->by_name, p->conf->name,
	    strlen(p->conf->name));
	TAILQ_INSERT_TAIL(&programs, p, entry);
}

static void
program_free(struct program *p)
{
	ev_timer_stop(ward_loop, &p->backoff_t);
	ev_timer_stop(ward_loop, &p->startsecs_t);
	ev_timer_stop(ward_loop, &p->apply_t);
	table_remove(&programs_by_name, &p->by_name);
	TAILQ_REMOVE(&programs, p, entry);
	if (p->inst != NULL) {
		p->inst->program = NULL;
		if (p->inst->state != INSTANCE_RUNNING)
			instance_remove(p->inst);
	}
	conf_program_free(p->conf);
	conf_program_free(p->next_conf);
	free(p->restarts);
	free(p->fatal_reason);
	free(p);
}

/*
 * The "program" map of a status: what the policy is doing. NULL packs a
 * stand-in, for a row packer's nils (codec_row_nils) where there is none.
 */
void
program_pack(const struct program *p, msgpack_packer *pk)
{
	static struct conf_program none_conf;
	static const struct program none = { .conf = &none_conf };

	if (p == NULL)
		p = &none;
	codec_pack_record(pk, 8);
	codec_pack_kv_str(pk, "state", program_state_names[p->state]);
	codec_pack_kv_str(pk, "file", p->conf->file);
	codec_pack_kv_int(pk, "line", p->conf->line);
	codec_pack_kv_bool(pk, "autostart", p->conf->policy.autostart);
	codec_pack_kv_str(pk, "restart", p->conf->policy.restart == RESTART_NO ?
	    "no" : p->conf->policy.restart == RESTART_ALWAYS ? "always" :
	    "on-failure");
	codec_pack_kv_uint(pk, "restarts", p->restart_count);
	codec_pack_kv_bool(pk, "ready", p->state == PROGRAM_RUNNING);
	codec_pack_kv_str(pk, "fatal_reason", p->fatal_reason);
}

/*
 * instance.c's observer: what happens to a program's instance becomes the
 * program's event (started, READY=1, died); removals clear the pointer,
 * or free a name a program waits for.
 */
void
program_instance_cb(struct instance *i, enum instance_event ev)
{
	struct program *p = i->program;

	switch (ev) {
	case INSTANCE_EV_STARTED:
		if (p != NULL)
			program_step(p, PROGRAM_EV_STARTED);
		break;
	case INSTANCE_EV_PAYLOAD:
		/* READY=1 may make a program ready. */
		if (p != NULL && i->payload >= PAYLOAD_READY &&
		    i->payload != PAYLOAD_HANGUP)
			program_step(p, PROGRAM_EV_READY);
		break;
	case INSTANCE_EV_DIED:
		if (p != NULL && i->exit != NULL)
			program_step(p, PROGRAM_EV_DIED); /* never frees i */
		break;
	case INSTANCE_EV_REMOVED:
		if (p != NULL)
			p->inst = NULL;
		else if (i->spec.name != NULL &&
		    (p = program_find(i->spec.name)) != NULL)
			program_step(p, PROGRAM_EV_NAME_FREED);
		break;
	default:
		break;
	}
}
