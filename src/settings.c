/*
 * settings.c: wardd's own settings from the [ward] sections of the config
 * directory (one INI file per purpose, named .conf, parsed with inih). Read at
 * start and again on SIGHUP; options given on the command line win.
 * Sections other than [ward] belong to declared programs and are left to
 * their own reader.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "ward.h"

struct settings_ctx {
	const char	*file;
	FILE		*f;
	int		 line;		/* Debian's inih reports no line numbers */
	struct settings	*out;
	int		 errors;
};

/* inih's reader, counting lines so errors can name them. */
static char *
settings_reader(char *str, int num, void *arg)
{
	struct settings_ctx *ctx = arg;
	char *p = fgets(str, num, ctx->f);

	if (p != NULL && strchr(p, '\n') != NULL)
		ctx->line++;
	return p;
}

static int
settings_handler(void *arg, const char *section, const char *key,
    const char *value)
{
	struct settings_ctx *ctx = arg;
	int line = ctx->line;
	char *end;
	long v;
	int lvl;

	if (strcmp(section, "ward") != 0)
		return 1;
	if (strcmp(key, "log_level") == 0) {
		if ((lvl = log_level_parse(value)) == -1)
			goto bad;
		ctx->out->log_level = lvl;
	} else if (strcmp(key, "metrics_interval_ms") == 0) {
		v = strtol(value, &end, 10);
		if (*end != '\0' || v < 100 || v > 3600000)
			goto bad;
		ctx->out->metrics_interval_ms = v;
	} else {
		log_warnx("%s:%d: [ward] has no key '%s' (known: log_level, "
		    "metrics_interval_ms)", ctx->file, line, key);
		ctx->errors++;
	}
	return 1;
bad:
	log_warnx("%s:%d: [ward] %s: bad value '%s'", ctx->file, line, key, value);
	ctx->errors++;
	return 1;
}

static int
settings_filter(const struct dirent *de)
{
	size_t n = strlen(de->d_name);

	return de->d_name[0] != '.' && n > 5 &&
	    strcmp(de->d_name + n - 5, ".conf") == 0;
}

/*
 * Read every .conf file of dir in name order into out (fields not set stay as
 * they were). A missing directory is no error. Returns the number of
 * errors, each already logged with its file and line.
 */
int
settings_load(const char *dir, struct settings *out)
{
	struct settings_ctx ctx = { NULL, NULL, 0, out, 0 };
	struct dirent **names;
	char path[4096];
	int n, k, rc;

	if ((n = scandir(dir, &names, settings_filter, alphasort)) == -1) {
		if (errno == ENOENT)
			return 0;
		log_warn("cannot read config dir %s", dir);
		return 1;
	}
	for (k = 0; k < n; k++) {
		snprintf(path, sizeof path, "%s/%s", dir, names[k]->d_name);
		ctx.file = path;
		ctx.line = 0;
		if ((ctx.f = fopen(path, "re")) == NULL) {
			log_warn("cannot read %s", path);
			ctx.errors++;
		} else {
			rc = ini_parse_stream(settings_reader, &ctx,
			    settings_handler, &ctx);
			if (rc > 0) {
				log_warnx("%s:%d: syntax error", path, rc);
				ctx.errors++;
			}
			fclose(ctx.f);
		}
		free(names[k]);
	}
	free(names);
	return ctx.errors;
}
