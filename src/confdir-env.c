/*
 * confdir-env.c: a declared process's environment and the names its
 * values may expand, as supervisord gives them: wardd's own environment
 * (spawn-env.c passes it on), then SUPERVISOR_ENABLED=1,
 * SUPERVISOR_PROCESS_NAME, SUPERVISOR_GROUP_NAME and
 * SUPERVISOR_SERVER_URL, then [supervisord]'s environment=, then the
 * program's own environment= (expanded with the names above and
 * [supervisord]'s variables as ENV_*), the later winning. The program's
 * variables are ENV_* names too for its other keys, as in supervisord.
 *
 * SUPERVISOR_SERVER_URL: the program's serverurl= if given (not AUTO),
 * else unix://WARDD'S SOCKET: where a child finds its supervisor. The
 * protocol there is ward's, not XML-RPC: supervisor's childutils cannot
 * talk to it, but the variable says where the supervisor is, as before.
 *
 * layer: programs (calls conf.c, conf-expand.c, conf-ini.c; base: util)
 */
#include "config.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ward.h"

/* The expansion names of process p, but its environment (env_build's). */
void
confdir_env_vars(const struct conf_proc *p, struct conf_vars *vars,
    char *here, size_t len)
{
	memset(vars, 0, sizeof *vars);
	snprintf(here, len, "%s", p->file);
	vars->here = dirname(here);
	vars->host_node_name = conf_host_node_name();
	vars->program_name = p->program_name;
	vars->group_name = p->group_name;
	vars->process_num = p->process_num;
	vars->numprocs = p->numprocs;
	if (p->global != NULL) {
		vars->env = p->global->env;
		vars->nenv = p->global->nenv;
	}
}

/* Append "KEY=VALUE" (copied) to *v of *n; -1 out of memory. */
static int
confdir_env_add(char ***v, size_t *n, const char *key, const char *val)
{
	char **nv, *s = val != NULL ? str_printf("%s=%s", key, val) :
	    strdup(key);

	if (s == NULL || (nv = realloc(*v, (*n + 1) * sizeof *nv)) == NULL) {
		free(s);
		return -1;
	}
	nv[(*n)++] = s;
	*v = nv;
	return 0;
}

/*
 * p's environment into *env (KEY=VALUE, n of them, the later winning);
 * vars->env becomes what ENV_* may name in p's other keys (pointing into
 * *env: it lives as long as *env). -1 (said in c) when environment= is
 * bad or memory runs out.
 */
int
confdir_env_build(struct conf *c, const struct conf_proc *p,
    struct conf_vars *vars, char ***env, size_t *n)
{
	struct ward_err e = WARD_ERR_INIT;
	const char *url = NULL, *v;
	char *x = NULL, **own = NULL, *sock = NULL, msg[600];
	size_t nown = 0, k, nsup;
	int line = p->line, bad = 0;

	*env = NULL;
	*n = 0;
	for (k = 0; k < p->nkv; k++) {
		if (strcmp(p->kv[k].key, "serverurl") == 0 &&
		    p->kv[k].value != NULL &&
		    strcasecmp(p->kv[k].value, "AUTO") != 0)
			url = p->kv[k].value;
	}
	if (url == NULL)
		url = sock = str_printf("unix://%s", opts.socket_path ?
		    opts.socket_path : "");
	bad |= confdir_env_add(env, n, "SUPERVISOR_ENABLED", "1");
	bad |= confdir_env_add(env, n, "SUPERVISOR_PROCESS_NAME",
	    p->process_name);
	bad |= confdir_env_add(env, n, "SUPERVISOR_GROUP_NAME", p->group_name);
	bad |= confdir_env_add(env, n, "SUPERVISOR_SERVER_URL", url ? url : "");
	free(sock);
	nsup = *n;
	for (k = 0; p->global != NULL && k < p->global->nenv; k++)
		bad |= confdir_env_add(env, n, p->global->env[k], NULL);
	for (k = 0; k < p->nkv; k++) {
		if (strcmp(p->kv[k].key, "environment") != 0 ||
		    (v = p->kv[k].value) == NULL)
			continue;
		line = p->kv[k].line;
		if ((x = conf_expand(v, vars, &e)) == NULL ||
		    conf_env_parse(x, &own, &nown, &e) == -1) {
			snprintf(msg, sizeof msg, "[program:%s] environment: %s",
			    p->name, e.msg);
			conf_error(c, p->file, line, msg);
			free(x);
			goto fail;
		}
		free(x);
	}
	for (k = 0; k < nown; k++)
		bad |= confdir_env_add(env, n, own[k], NULL);
	conf_strv_free(own, nown);
	if (bad) {
		snprintf(msg, sizeof msg, "[program:%s] environment: out of "
		    "memory", p->name);
		conf_error(c, p->file, line, msg);
		goto fail;
	}
	vars->env = *env + nsup;
	vars->nenv = *n - nsup;
	return 0;
fail:
	conf_strv_free(*env, *n);
	*env = NULL;
	*n = 0;
	return -1;
}

/* Is env[k] the last of its key (the one that wins)? */
static int
confdir_env_last(char **env, size_t n, size_t k)
{
	size_t j, len = strcspn(env[k], "=");

	for (j = k + 1; j < n; j++) {
		if (strncmp(env[j], env[k], len) == 0 && env[j][len] == '=')
			return 0;
	}
	return 1;
}

/* env (KEY=VALUE, the later winning) packed as instance.create's env map. */
void
confdir_env_pack(msgpack_packer *pk, char **env, size_t n)
{
	size_t k, len, count = 0;

	for (k = 0; k < n; k++)
		count += confdir_env_last(env, n, k);
	msgpack_pack_map(pk, count);
	for (k = 0; k < n; k++) {
		if (!confdir_env_last(env, n, k))
			continue;
		len = strcspn(env[k], "=");
		msgpack_pack_str(pk, len);
		msgpack_pack_str_body(pk, env[k], len);
		msgpack_pack_str(pk, strlen(env[k] + len + 1));
		msgpack_pack_str_body(pk, env[k] + len + 1,
		    strlen(env[k] + len + 1));
	}
}
