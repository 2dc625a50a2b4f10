/*
 * output-spec.c: what clients ask of output capture. instance.create's
 * capture_output, *_logfile, stdout_journal and log_* keys are read into a
 * struct output_config (ward.h), freed with the instance's config; the
 * streams' names ("stdout", "stderr") are parsed and named here too. Only
 * the request is checked here (who may ask for what, paths that can be
 * opened later, bounds); the capturing is output.c's. Kept apart so
 * spec.c, which output.c calls to hand a spawn its pipes, reads a spec
 * without calling back into the capturing, and so every output module can
 * name a stream without calling output.c.
 *
 * layer: engine (calls codec.c and util.c; nothing else)
 */
#include "config.h"

#include <sys/stat.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ward.h"

static const char *const output_stream_names[OUTPUT_NSTREAMS] = {
	[OUTPUT_STDOUT] = "stdout",
	[OUTPUT_STDERR] = "stderr",
};

/* A stream's name as clients say it (instance.log's "stream"); -1: none. */
int
output_stream_parse(const char *s)
{
	int k;

	for (k = 0; k < OUTPUT_NSTREAMS; k++) {
		if (strcmp(s, output_stream_names[k]) == 0)
			return k;
	}
	return -1;
}

const char *
output_stream_name(int k)
{
	return output_stream_names[k];
}

void
output_config_free(struct output_config *oc)
{
	int k;

	if (oc == NULL)
		return;
	for (k = 0; k < OUTPUT_NSTREAMS; k++)
		free(oc->logfile[k]);
	free(oc);
}

/* A log file path: absolute, in an existing directory, with room for ".N". */
static char *
output_spec_path(const msgpack_object *o, const char *key,
    struct ward_err *e)
{
	struct stat st;
	char *s, *slash;

	s = o->via.str.size < PATH_MAX - 16 ? codec_strdup(o) : NULL;
	if (s == NULL || !utf8_valid(s, strlen(s)) || s[0] != '/' ||
	    s[strlen(s) - 1] == '/') {
		ward_err_set(e, WARD_E_INVALID_ARGUMENT, "'%s' must be an "
		    "absolute file path (UTF-8, no NUL, under %d bytes)", key,
		    PATH_MAX - 16);
		free(s);
		return NULL;
	}
	slash = strrchr(s, '/');
	*slash = '\0';
	if (stat(slash == s ? "/" : s, &st) == -1 || !S_ISDIR(st.st_mode)) {
		ward_err_set(e, WARD_E_INVALID_ARGUMENT,
		    "'%s': directory '%.200s' does not exist",
		    key, slash == s ? "/" : s);
		free(s);
		return NULL;
	}
	*slash = '/';
	return s;
}

/*
 * capture_output and the log keys (a[] in OUTPUT_ARG_* order). *out stays
 * NULL for an instance that does not capture. Returns 0, or -1 with e set;
 * *out then holds what was parsed, for spec_free.
 */
int
output_config_parse(struct output_config **out, const msgpack_object **a,
    int admin, struct ward_err *e)
{
	const msgpack_object *cap = a[OUTPUT_ARG_CAPTURE];
	struct output_config *oc;
	int k, implied, tuned;

	*out = NULL;
	implied = a[OUTPUT_ARG_STDOUT_LOGFILE] != NULL ||
	    a[OUTPUT_ARG_STDERR_LOGFILE] != NULL ||
	    (a[OUTPUT_ARG_JOURNAL] != NULL && a[OUTPUT_ARG_JOURNAL]->via.boolean) ||
	    (a[OUTPUT_ARG_REDIRECT_STDERR] != NULL &&
	    a[OUTPUT_ARG_REDIRECT_STDERR]->via.boolean);
	tuned = a[OUTPUT_ARG_RING_BYTES] != NULL || a[OUTPUT_ARG_MAXBYTES] != NULL ||
	    a[OUTPUT_ARG_BACKUPS] != NULL || a[OUTPUT_ARG_OVERFLOW] != NULL ||
	    a[OUTPUT_ARG_RATE_LINES] != NULL;
	if (cap != NULL && !cap->via.boolean && implied) {
		return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
		    "'capture_output' is false, but a log file, "
		    "stdout_journal or redirect_stderr needs the output "
		    "captured");
	}
	if ((cap == NULL || !cap->via.boolean) && !implied) {
		if (tuned) {
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "the log_* and logfile_* keys apply "
			    "only to captured output (capture_output: true)");
		}
		return 0;
	}
	/* wardd opens files and writes the journal as itself. */
	if (!admin && (a[OUTPUT_ARG_STDOUT_LOGFILE] != NULL ||
	    a[OUTPUT_ARG_STDERR_LOGFILE] != NULL)) {
		return ward_err_set(e, WARD_E_PERMISSION,
		    "only root or wardd's own user may set "
		    "'stdout_logfile' or 'stderr_logfile' (wardd writes them as "
		    "itself); read the output with instance.log");
	}
	if (!admin && a[OUTPUT_ARG_JOURNAL] != NULL &&
	    a[OUTPUT_ARG_JOURNAL]->via.boolean) {
		return ward_err_set(e, WARD_E_PERMISSION,
		    "only root or wardd's own user may set "
		    "'stdout_journal' (entries would carry wardd's credentials "
		    "under a name the caller chose)");
	}
	if ((oc = calloc(1, sizeof *oc)) == NULL)
		return ward_err_oom(e);
	*out = oc;
	oc->ring_bytes = OUTPUT_RING_DEFAULT;
	oc->maxbytes = OUTPUT_MAXBYTES_DEFAULT;
	oc->backups = OUTPUT_BACKUPS_DEFAULT;
	oc->rate_lines = OUTPUT_RATE_DEFAULT;
	for (k = 0; k < OUTPUT_NSTREAMS; k++) {
		const msgpack_object *o = a[OUTPUT_ARG_STDOUT_LOGFILE + k];
		const char *key = k == 0 ? "stdout_logfile" : "stderr_logfile";

		if (o != NULL && (oc->logfile[k] = output_spec_path(o, key, e))
		    == NULL)
			return -1;
	}
	oc->journal = a[OUTPUT_ARG_JOURNAL] != NULL &&
	    a[OUTPUT_ARG_JOURNAL]->via.boolean;
	if (a[OUTPUT_ARG_RING_BYTES] != NULL) {
		if (a[OUTPUT_ARG_RING_BYTES]->via.u64 > OUTPUT_RING_MAX) {
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "'log_ring_bytes' must be 0 to %d",
			    OUTPUT_RING_MAX);
		}
		/* Every ring is wardd's memory: others' are kept small. */
		if (!admin && a[OUTPUT_ARG_RING_BYTES]->via.u64 >
		    OUTPUT_RING_USER_MAX) {
			return ward_err_set(e, WARD_E_PERMISSION,
			    "'log_ring_bytes' over %d is for root "
			    "or wardd's own user only", OUTPUT_RING_USER_MAX);
		}
		oc->ring_bytes = a[OUTPUT_ARG_RING_BYTES]->via.u64;
	}
	if (a[OUTPUT_ARG_MAXBYTES] != NULL)
		oc->maxbytes = a[OUTPUT_ARG_MAXBYTES]->via.u64;
	if (a[OUTPUT_ARG_BACKUPS] != NULL) {
		if (a[OUTPUT_ARG_BACKUPS]->via.u64 > OUTPUT_BACKUPS_MAX) {
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "'logfile_backups' must be 0 to %d",
			    OUTPUT_BACKUPS_MAX);
		}
		oc->backups = a[OUTPUT_ARG_BACKUPS]->via.u64;
	}
	if (a[OUTPUT_ARG_OVERFLOW] != NULL) {
		if (codec_streq(a[OUTPUT_ARG_OVERFLOW], "drop"))
			oc->drop = 1;
		else if (!codec_streq(a[OUTPUT_ARG_OVERFLOW], "block")) {
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "'log_overflow' is \"block\" (the "
			    "default: a payload that writes faster than wardd "
			    "reads waits) or \"drop\" (lines over log_rate_lines "
			    "a second are dropped and counted)");
		}
	}
	if (a[OUTPUT_ARG_RATE_LINES] != NULL) {
		uint64_t v = a[OUTPUT_ARG_RATE_LINES]->via.u64;

		if (v < 1 || v > OUTPUT_RATE_MAX) {
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "'log_rate_lines' must be 1 to %d",
			    OUTPUT_RATE_MAX);
		}
		oc->rate_lines = v;
	}
	oc->redirect_stderr = a[OUTPUT_ARG_REDIRECT_STDERR] != NULL &&
	    a[OUTPUT_ARG_REDIRECT_STDERR]->via.boolean;
	if (oc->redirect_stderr && oc->logfile[OUTPUT_STDERR] != NULL)
		return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
		    "'redirect_stderr' sends stderr into stdout's stream: "
		    "'stderr_logfile' has nothing to write");
	return 0;
}
