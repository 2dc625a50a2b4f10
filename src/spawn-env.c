/*
 * spawn-env.c: a child's environment: wardd's own (less what names wardd's
 * socket activation and notify socket) or a clean one, the instance's
 * variables, then WARD_*. Apart from spawn.c, which only hands it on.
 *
 * layer: engine
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ward.h"

extern char **environ;

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
 * The child's environment: wardd's (less its private variables), or with
 * cfg.clean_env (every non-admin's payload) none of it but PATH (unless
 * the instance sets one); the instance's env on top, then WARD_*. One
 * allocation: free(envp) frees it. The strings of environ and cfg.env are
 * borrowed, not copied.
 */
char **
spawn_environ(const struct instance *i)
{
	static char clean_path[] = "PATH=" SPEC_CLEAN_PATH;
	char *const clean[] = { clean_path, NULL };
	char *const *base = i->spec.clean_env ? clean : environ;
	size_t n = 0, k = 0, extra = 8;
	char **envp, *area, *end;
	char *const *e;

	for (e = base; *e != NULL; e++)
		n++;
	for (e = i->spec.env; e != NULL && *e != NULL; e++)
		n++;
	envp = malloc((n + extra + 1) * sizeof *envp + 512 +
	    3 * strlen(i->runtime_dir) + strlen(i->spec.name));
	if (envp == NULL)
		return NULL;
	area = (char *)(envp + n + extra + 1);
	end = area + 512 + 3 * strlen(i->runtime_dir) + strlen(i->spec.name);
	for (e = base; *e != NULL; e++) {
		if (!spawn_env_private(*e) && !spawn_env_overridden(*e, i->spec.env))
			envp[k++] = *e;
	}
	for (e = i->spec.env; e != NULL && *e != NULL; e++) {
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
	SPAWN_ENV("%s=%s", WARD_ENV_INSTANCE_NAME, i->spec.name);
	if (i->spec.control)	/* control.c connects there */
		SPAWN_ENV("%s=%s/%s", WARD_ENV_CONTROL_SOCKET, i->runtime_dir,
		    WARD_CONTROL_NAME);
	/* channel.c's NOTIFY_SOCKET (wardd's own was dropped above). */
	if (i->spec.notify_systemd && channel_notify_path() != NULL)
		SPAWN_ENV("NOTIFY_SOCKET=%s", channel_notify_path());
	if (i->spec.watchdog_ms > 0)
		SPAWN_ENV("WATCHDOG_USEC=%llu",
		    (unsigned long long)i->spec.watchdog_ms * 1000);
#undef SPAWN_ENV
	envp[k] = NULL;
	return envp;
}
