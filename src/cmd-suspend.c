/*
 * cmd-suspend.c: instance.suspend and instance.resume. The suspension
 * itself is suspend.c's; what is here is the answer that waits. A suspend
 * whose cgroup is still freezing is answered once the freeze has settled
 * (or failed: suspend.c bounds it), by a waiter attached to the conn, as
 * reexec.c's requester is: a conn that goes first takes its waiter with
 * it, and a re-exec answers every waiter before it writes the state (a
 * waiter is not part of it; the freeze goes on by itself).
 *
 * layer: commands
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ward.h"

/* A request waiting for a freeze to settle; on its conn and on the list. */
struct cmd_suspend_waiter {
	struct conn_attachment	 att;	/* first member */
	struct conn		*c;
	uint32_t		 msgid;
	uint64_t		 id;	/* the instance's */
	LIST_ENTRY(cmd_suspend_waiter) entry;
};
static LIST_HEAD(, cmd_suspend_waiter) cmd_suspend_waiters =
    LIST_HEAD_INITIALIZER(cmd_suspend_waiters);

static const struct arg_spec cmd_suspend_args[] = {
	{ "id", ARG_UINT }, { "name", ARG_STR },
	{ NULL, 0 }
};

/* {ok: true, frozen}: frozen, whether the cgroup said "frozen 1". */
static void
cmd_suspend_reply(struct request *req, const struct instance *i)
{
	msgpack_packer pk;

	cmd_result(req, &pk);
	msgpack_pack_map(&pk, 2);
	codec_pack_kv_bool(&pk, "ok", 1);
	codec_pack_kv_bool(&pk, "frozen", i != NULL && suspend_frozen(i));
}

static void
cmd_suspend_detach_cb(struct conn *c, struct conn_attachment *a)
{
	struct cmd_suspend_waiter *w = (struct cmd_suspend_waiter *)a;

	LIST_REMOVE(w, entry);
	free(w);
}

/* Answer one waiter (e: the error; else the state reached) and free it. */
static void
cmd_suspend_answer(struct cmd_suspend_waiter *w, const struct instance *i,
    const struct ward_err *e)
{
	struct request req = { 0 };

	req.c = w->c;
	req.msgid = w->msgid;
	if (e != NULL)
		cmd_fail(&req, e);
	else
		cmd_suspend_reply(&req, i);
	conn_flush(w->c);
	conn_detach(w->c, &w->att);
	LIST_REMOVE(w, entry);
	free(w);
}

/* suspend.c's done function (wardd.c gives it): a wait for a freeze ended. */
void
cmd_suspend_done_cb(struct instance *i, const struct ward_err *e,
    int rolled_back)
{
	struct cmd_suspend_waiter *w, *next;

	for (w = LIST_FIRST(&cmd_suspend_waiters); w != NULL; w = next) {
		next = LIST_NEXT(w, entry);
		if (w->id == i->id)
			cmd_suspend_answer(w, i, e);
	}
	if (rolled_back)
		instance_announce(i, INSTANCE_EV_SUSPEND);	/* running again */
}

/* Before a re-exec writes its state: every waiter hears how far it got. */
void
cmd_suspend_reexec(void)
{
	struct cmd_suspend_waiter *w;

	while ((w = LIST_FIRST(&cmd_suspend_waiters)) != NULL)
		cmd_suspend_answer(w, instance_find_id(w->id), NULL);
}

static void
cmd_suspend_exec(struct request *req)
{
	struct cmd_suspend_waiter *w;
	struct ward_err e = WARD_ERR_INIT;
	int rc;

	/* Allocated first: once the freeze is under way, it cannot fail. */
	if ((w = calloc(1, sizeof *w)) == NULL) {
		cmd_error(req, WARD_E_INTERNAL, "out of memory");
		return;
	}
	if ((rc = suspend_start(req->inst, &e)) == -1) {
		free(w);
		cmd_fail(req, &e);
		return;
	}
	instance_announce(req->inst, INSTANCE_EV_SUSPEND);
	if (rc == 0) {
		free(w);
		cmd_suspend_reply(req, req->inst);
		return;
	}
	w->c = req->c;
	w->msgid = req->msgid;
	w->id = req->inst->id;
	conn_attach(req->c, &w->att, cmd_suspend_detach_cb);
	LIST_INSERT_HEAD(&cmd_suspend_waiters, w, entry);
	req->replied = 1;	/* later, by cmd_suspend_answer */
}

static void
cmd_resume_exec(struct request *req)
{
	struct ward_err e = WARD_ERR_INIT;

	if (suspend_end(req->inst, &e) == -1) {
		cmd_fail(req, &e);
		return;
	}
	instance_announce(req->inst, INSTANCE_EV_SUSPEND);
	cmd_ok(req);
}

const struct cmd_entry cmd_suspend_entry = {
	.name = WARD_M_SUSPEND,
	.args = cmd_suspend_args,
	.flags = CMD_INSTANCE,
	.exec = cmd_suspend_exec,
};

const struct cmd_entry cmd_resume_entry = {
	.name = WARD_M_RESUME,
	.args = cmd_suspend_args,
	.flags = CMD_INSTANCE,
	.exec = cmd_resume_exec,
};
