/*
 * cmd-program.c: the declared programs' commands: ward.reread shows what
 * the config directory would change, ward.update (and its alias
 * ward.reload, and SIGHUP) applies it. Admins only: the files are wardd's.
 *
 * layer: commands
 */
#include "config.h"

#include "ward.h"

static const struct arg_spec cmd_program_args[] = { { NULL, 0 } };

static void
cmd_reread_exec(struct request *req)
{
	msgpack_packer pk;

	reload_reread(opts.config_dir, cmd_result(req, &pk));
}

const struct cmd_entry cmd_reread_entry = {
	.name = WARD_M_REREAD,
	.args = cmd_program_args,
	.flags = CMD_ADMIN,
	.exec = cmd_reread_exec,
};

/* {added, changed, removed, errors, warnings}, then applied. */
static void
cmd_update_exec(struct request *req)
{
	msgpack_packer pk;

	log_notice("%s from uid %u", WARD_M_UPDATE, (unsigned)req->c->peer.uid);
	reload_update(opts.config_dir, cmd_result(req, &pk));
}

const struct cmd_entry cmd_update_entry = {
	.name = WARD_M_UPDATE,
	.args = cmd_program_args,
	.flags = CMD_ADMIN,
	.exec = cmd_update_exec,
};

const struct cmd_entry cmd_reload_entry = {
	.name = WARD_M_RELOAD,
	.args = cmd_program_args,
	.flags = CMD_ADMIN,
	.exec = cmd_update_exec,
};
