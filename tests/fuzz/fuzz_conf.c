/*
 * fuzz_conf.c: the config directory, as an admin might write it (or copy
 * it from a supervisord.conf). The input is one flags byte and the text
 * of the files: the bytes are cut at their first 0x00 0x00 into a.conf
 * and b.conf (so a program may be declared twice, across files). Flags:
 * bit 0 also applies the config (ward.update: programs created and, with
 * autostart, started; then an update with no files removes them all),
 * bit 1 runs conf_split_command over the text, line by line; bit 2 runs
 * supervisord's value syntaxes over it, line by line: conf_expand (the
 * %(...) formats) and conf_env_parse (environment= pairs). The files may
 * [include] each other (or themselves: a loop is refused).
 *
 * Invariants: confdir_load never fails to finish; every program it builds
 * has a create map that codec_scan accepts whole and that codec_args
 * matches against instance.create's own spec (one validator for both);
 * every error and warning is a "file:line: message"; the reread answer is
 * one whole msgpack map; an update and an empty update leave no program,
 * no instance, no runtime dir, no fd and no memory behind. Spawns fail in the
 * sandbox (harness.c), log files are refused, nothing is signalled.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static char *fuzz_conf_files[2];
static char *fuzz_conf_instances;
static int fuzz_conf_fds0;

static void
fuzz_conf_check_program(const struct conf_program *cp)
{
	const msgpack_object *out[ARG_MAX];
	struct ward_err serr = WARD_ERR_INIT;
	struct ward_err err = WARD_ERR_INIT;
	msgpack_unpacked msg;
	size_t len = 0, used = 0;

	harness_assert(cp->name != NULL && cp->file != NULL && cp->spec != NULL,
	    "a program without a name, file or spec");
	harness_assert(spec_name_valid(cp->name, &err) == 0,
	    "program name '%s': %s", cp->name, err.msg);
	harness_assert(codec_scan(cp->spec, cp->speclen, &len, &serr) ==
	    SCAN_COMPLETE && len == cp->speclen, "[program:%s]'s create map "
	    "does not scan", cp->name);
	msgpack_unpacked_init(&msg);
	harness_assert(msgpack_unpack_next(&msg, cp->spec, cp->speclen, &used) ==
	    MSGPACK_UNPACK_SUCCESS && used == cp->speclen,
	    "[program:%s]'s create map does not unpack", cp->name);
	harness_assert(codec_args(&msg.data, spec_args, out, &err) == 0,
	    "[program:%s]'s create map is not instance.create's: %s",
	    cp->name, err.msg);
	harness_assert(out[0] != NULL && codec_streq(out[0], cp->name),
	    "[program:%s]'s create map names another", cp->name);
	msgpack_unpacked_destroy(&msg);
}

static void
fuzz_conf_check_notes(char **v, size_t n)
{
	size_t k;

	for (k = 0; k < n; k++)
		harness_assert(v[k] != NULL && strstr(v[k], ": ") != NULL,
		    "a note that is not 'file:line: message': %s",
		    v[k] ? v[k] : "(null)");
}

/* supervisord's syntaxes on one line: a result, or an error that says. */
static void
fuzz_conf_syntaxes(const char *line)
{
	static char *env[] = { "A=1", "B=2" };
	struct ward_err e = WARD_ERR_INIT;
	struct conf_vars vars;
	char *x, **kv;
	size_t n, k;

	memset(&vars, 0, sizeof vars);
	vars.here = "/etc";
	vars.host_node_name = "node";
	vars.program_name = "p";
	vars.group_name = "g";
	vars.process_num = -3;
	vars.numprocs = 2;
	vars.env = env;
	vars.nenv = 2;
	if ((x = conf_expand(line, &vars, &e)) == NULL)
		harness_assert(e.msg[0] != '\0', "expand failed without a "
		    "message: '%s'", line);
	free(x);
	e = (struct ward_err)WARD_ERR_INIT;
	if (conf_env_parse(line, &kv, &n, &e) == 0) {
		for (k = 0; k < n; k++)
			harness_assert(strchr(kv[k], '=') != NULL, "a pair "
			    "without '=' from '%s'", line);
		conf_strv_free(kv, n);
	} else
		harness_assert(e.msg[0] != '\0', "env failed without a "
		    "message: '%s'", line);
}

static void
fuzz_conf_split(const uint8_t *p, size_t n, int syntaxes)
{
	struct ward_err e;
	char **argv, *line;
	const uint8_t *nl;
	size_t k;

	while (n > 0) {
		nl = memchr(p, '\n', n);
		k = nl != NULL ? (size_t)(nl - p) : n;
		if ((line = strndup((const char *)p, k)) == NULL)
			return;
		if (syntaxes)
			fuzz_conf_syntaxes(line);
		e = (struct ward_err)WARD_ERR_INIT;
		if (conf_split_command(line, &argv, &e) == 0) {
			harness_assert(argv != NULL && argv[0] != NULL,
			    "an empty argv from '%s'", line);
			for (k = 0; argv[k] != NULL; k++)
				free(argv[k]);
			free(argv);
		} else
			harness_assert(argv == NULL && e.code != NULL &&
			    e.msg[0] != '\0',
			    "failed without a message: '%s'", line);
		free(line);
		if (nl == NULL)
			break;
		n -= nl + 1 - p;
		p = nl + 1;
	}
}

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	harness_init();
	fuzz_conf_files[0] = str_printf("%s/a.conf", opts.config_dir);
	fuzz_conf_files[1] = str_printf("%s/b.conf", opts.config_dir);
	fuzz_conf_instances = str_printf("%s/instances", harness_sandbox());
	fuzz_conf_fds0 = harness_count_fds();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct conf_program *cp;
	struct buf reply = { 0 };
	struct ward_err serr = WARD_ERR_INIT;
	msgpack_packer pk;
	struct conf c;
	const uint8_t *cut = NULL;
	size_t k, len;
	int flags, rounds;

	if (size < 1 || size > 65536)
		return 0;
	flags = data[0];
	data++;
	size--;
	for (k = 0; k + 1 < size && cut == NULL; k++) {
		if (data[k] == 0 && data[k + 1] == 0)
			cut = data + k;
	}
	len = cut != NULL ? (size_t)(cut - data) : size;
	harness_assert(harness_write_file(fuzz_conf_files[0], data, len) == 0,
	    "cannot write %s", fuzz_conf_files[0]);
	if (cut != NULL)
		harness_assert(harness_write_file(fuzz_conf_files[1], cut + 2,
		    data + size - (cut + 2)) == 0, "cannot write %s",
		    fuzz_conf_files[1]);

	memset(&c, 0, sizeof c);
	c.quiet = 1;
	confdir_load(opts.config_dir, &c);
	TAILQ_FOREACH(cp, &c.programs, entry)
		fuzz_conf_check_program(cp);
	fuzz_conf_check_notes(c.errors, c.nerrors);
	fuzz_conf_check_notes(c.warnings, c.nwarnings);
	conf_free(&c);

	/* ward.reread's answer: one whole map. */
	msgpack_packer_init(&pk, &reply, codec_sbuffer_write);
	reload_reread(opts.config_dir, &pk);
	harness_assert(codec_scan(reply.data, reply.len, &len, &serr) ==
	    SCAN_COMPLETE && len == reply.len, "the reread answer of %zu "
	    "bytes is not one msgpack object", reply.len);
	buf_free(&reply);

	if (flags & 1) {
		/* Apply, then take it all back as an empty config would. */
		reload_update(opts.config_dir, NULL);
		ev_run(ward_loop, EVRUN_NOWAIT);
		unlink(fuzz_conf_files[0]);
		unlink(fuzz_conf_files[1]);
		reload_update(opts.config_dir, NULL);
		for (rounds = 0; rounds < 100 && !TAILQ_EMPTY(&programs); rounds++)
			ev_run(ward_loop, EVRUN_NOWAIT);
		harness_assert(TAILQ_EMPTY(&programs), "programs left after an "
		    "update with no config");
		harness_assert(TAILQ_EMPTY(&instances), "instances left after "
		    "an update with no config");
		harness_assert(harness_dir_empty(fuzz_conf_instances),
		    "a runtime dir is left in %s", fuzz_conf_instances);
		history_free();
		harness_check_fds(fuzz_conf_fds0);
	}
	if (flags & 6)
		fuzz_conf_split(data, cut != NULL ? (size_t)(cut - data) : size,
		    flags & 4);
	unlink(fuzz_conf_files[0]);
	unlink(fuzz_conf_files[1]);
	return 0;
}
