/*
 * spec.c: the arguments of instance.create, checked like the seed's
 * validate_config and turned into a struct instance_spec that owns its
 * strings. Every message names the key and says what would be accepted.
 *
 * layer: engine
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>

#include <linux/openat2.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ward.h"

/* Order matters: spec_parse reads args[] by these positions. */
const struct arg_spec spec_args[] = {
	{ "name", ARG_STR },
	{ "argv", ARG_ARRAY },
	{ "env", ARG_MAP },
	{ "cwd", ARG_STR },
	{ "detect_hangup", ARG_BOOL },
	{ "hangup_timeout_ms", ARG_UINT },
	{ "exit_codes", ARG_MAP },
	{ "profile", ARG_STR },
	{ "rss_mapping", ARG_STR },
	{ "user", ARG_ANY },
	{ "stdin", ARG_UINT },
	{ "stdout", ARG_UINT },
	{ "stderr", ARG_UINT },
	{ "fds", ARG_ARRAY },
	{ "notify", ARG_STR },
	{ "watchdog_ms", ARG_UINT },
	/* output-spec.c's keys, read by output_config_parse in OUTPUT_ARG_*
	   order. */
	{ "capture_output", ARG_BOOL },
	{ "stdout_logfile", ARG_STR },
	{ "stderr_logfile", ARG_STR },
	{ "stdout_journal", ARG_BOOL },
	{ "log_ring_bytes", ARG_UINT },
	{ "logfile_maxbytes", ARG_UINT },
	{ "logfile_backups", ARG_UINT },
	{ "log_overflow", ARG_STR },
	{ "log_rate_lines", ARG_UINT },
	{ "redirect_stderr", ARG_BOOL },
	/* The execution environment, read by spec-execenv.c in EXECENV_ARG_*
	   order. */
	{ "group", ARG_ANY },
	{ "umask", ARG_ANY },
	{ "rlimits", ARG_MAP },
	{ "nice", ARG_INT },
	{ "oom_score_adj", ARG_INT },
	{ "clean_env", ARG_BOOL },
	{ "control", ARG_BOOL },	/* control.c: instance.call */
	/* spec-hooks.c's, read in HOOKS_ARG_* order. */
	{ "pre_start", ARG_ARRAY }, { "pre_start_timeout_ms", ARG_UINT },
	{ "post_death", ARG_ARRAY }, { "post_death_timeout_ms", ARG_UINT },
	{ "sidecars", ARG_ARRAY },
	SPEC_LIMITS_ARGS,	/* spec-limits.c's, in SPEC_LIMIT_* order: last */
	{ NULL, 0 }
};
enum {
	C_NAME, C_ARGV, C_ENV, C_CWD, C_DETECT_HANGUP, C_HANGUP_TIMEOUT,
	C_EXIT_CODES, C_PROFILE, C_RSS_MAPPING, C_USER, C_STDIN, C_STDOUT,
	C_STDERR, C_FDS, C_NOTIFY, C_WATCHDOG,
	C_CAPTURE_OUTPUT,	/* output-spec.c's: OUTPUT_ARG_* from here */
	/* The execution environment: after output-spec.c's keys. */
	C_GROUP = C_CAPTURE_OUTPUT + OUTPUT_ARG_NUM,
	C_CLEAN_ENV = C_GROUP + EXECENV_ARG_OOM_SCORE_ADJ + 1,
	C_CONTROL,
	C_PRE_START,		/* spec-hooks.c's: HOOKS_ARG_* from here */
	C_LIMITS = C_PRE_START + HOOKS_ARG_SIDECARS + 1	/* spec-limits.c's */
};

/*
 * Names are how people address instances: short, printable, and never all
 * digits so that "7" always means id 7 (unnamed instances are named by id).
 */
int
spec_name_valid(const char *s, struct ward_err *e)
{
	size_t i, n = strlen(s);
	int digits = 1;

	if (n == 0 || n > SPEC_MAX_NAME)
		return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
		    "'name' must be 1 to %d characters",
		    SPEC_MAX_NAME);
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' ||
		    (i > 0 && (c == '-' || c == '.' || c == '@' || c == ':'))))
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "'name' may hold letters, digits and "
			    "_ - . @ : (not first), not '%c'", c);
		if (c < '0' || c > '9')
			digits = 0;
	}
	if (digits)
		return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
		    "'name' must not be all digits "
		    "(numbers address instances by id)");
	return 0;
}

#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC	0x9fa0		/* linux/magic.h */
#endif

/* What spec_path_probe found. */
enum spec_path {
	SPEC_PATH_OK,		/* there, of the type asked, executable/searchable */
	SPEC_PATH_ERRNO,	/* not reachable: errno says why */
	SPEC_PATH_TYPE,	/* not a regular file (not a directory, for dir) */
	SPEC_PATH_NOEXEC	/* the payload may not execute (search) it */
};

/*
 * Look at path as the payload would, under its file-system ids
 * (spec_paths_check): a regular file it may execute, or with dir a
 * directory it may enter. But wardd's /proc/self is not the payload's:
 * through magic links (/proc/self/fd/N, /proc/self/cwd, /dev/stdin) and
 * the rest of procfs (/proc/self/fdinfo/N, map_files) wardd would answer
 * questions about its own fds and memory. So the path is resolved without
 * magic links (openat2, RESOLVE_NO_MAGICLINKS: Linux 5.6) into an O_PATH
 * fd, and a path that needs one, or that ends on procfs, is missing:
 * ELOOP and ENOTDIR (how /proc/self/fd/N and /proc/self/fdinfo/N/x differ
 * from a missing N) read as ENOENT. No payload runs from or in procfs.
 */
static enum spec_path
spec_path_probe(const char *path, int dir)
{
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC,
		.resolve = RESOLVE_NO_MAGICLINKS,
	};
	enum spec_path res = SPEC_PATH_OK;
	struct statfs sfs;
	struct stat st;
	int fd, e;

	if ((fd = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how)) == -1) {
		if (errno == ELOOP || errno == ENOTDIR)
			errno = ENOENT;
		return SPEC_PATH_ERRNO;
	}
	if (fstatfs(fd, &sfs) == -1 || fstat(fd, &st) == -1)
		res = SPEC_PATH_ERRNO;
	else if (sfs.f_type == PROC_SUPER_MAGIC) {
		errno = ENOENT;
		res = SPEC_PATH_ERRNO;
	} else if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
		res = SPEC_PATH_TYPE;
	/* AT_EACCESS: the fsuid's answer (spec_paths_check), not the ruid's. */
	else if (faccessat(fd, "", X_OK, AT_EMPTY_PATH | AT_EACCESS) == -1)
		res = SPEC_PATH_NOEXEC;
	e = errno;
	close(fd);
	errno = e;
	return res;
}

static int
spec_check_file(const char *path, const char *shown, struct ward_err *e)
{
	switch (spec_path_probe(path, 0)) {
	case SPEC_PATH_OK:
		return 0;
	case SPEC_PATH_ERRNO:
		return ward_err_errno(e, WARD_E_INVALID_ARGUMENT,
		    "argv[0] '%s'", shown);
	case SPEC_PATH_TYPE:
		return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
		    "argv[0] '%s' is not a regular file", shown);
	case SPEC_PATH_NOEXEC:
	default:
		return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
		    "argv[0] '%s' is not executable", shown);
	}
}

/* *out = a copy of path; -1 with e set when out of memory. */
static int
spec_keep_path(const char *path, char **out, struct ward_err *e)
{
	if ((*out = strdup(path)) == NULL)
		return ward_err_oom(e);
	return 0;
}

/*
 * Resolve argv[0] the way execvp would in the child, once, at create: the
 * child is then spawned by absolute path, and a typo is reported now rather
 * than as a dead child. Relative names (and relative PATH entries) are
 * taken from base, the directory the child will run in. Run under the
 * payload's file-system ids (spec_paths_check).
 */
int
spec_find_exec(const char *argv0, const char *path, const char *base,
    char **out, struct ward_err *e)
{
	char full[PATH_MAX];
	const char *p, *end;
	size_t dirs;

	if (strchr(argv0, '/') != NULL) {
		if ((size_t)snprintf(full, sizeof full, "%s%s%s",
		    argv0[0] == '/' ? "" : base, argv0[0] == '/' ? "" : "/",
		    argv0) >= sizeof full)
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "argv[0] '%.200s': path too long", argv0);
		if (spec_check_file(full, argv0, e) == -1)
			return -1;
		return spec_keep_path(full, out, e);
	}
	if (path == NULL)
		path = SPEC_CLEAN_PATH;
	for (p = path, dirs = 1; *p != '\0'; p++)
		dirs += *p == ':';
	if (dirs > SPEC_MAX_PATH_DIRS) {
		return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
		    "PATH has %zu entries; wardd looks argv[0] "
		    "up in at most %d (or give argv[0] as a path)", dirs,
		    SPEC_MAX_PATH_DIRS);
	}
	for (p = path; *p != '\0'; p = *end ? end + 1 : end) {
		size_t dl;

		end = strchr(p, ':');
		if (end == NULL)
			end = p + strlen(p);
		dl = end - p;
		if (dl == 0 || (size_t)snprintf(full, sizeof full, "%s%s%.*s/%s",
		    *p == '/' ? "" : base, *p == '/' ? "" : "/", (int)dl, p,
		    argv0) >= sizeof full)
			continue;
		if (spec_path_probe(full, 0) == SPEC_PATH_OK)
			return spec_keep_path(full, out, e);
	}
	return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
	    "argv[0] '%s' not found in PATH (%s)", argv0, path);
}

/*
 * argv[0]'s PATH search, remembered: each instance.run of "sleep" would
 * otherwise probe every PATH entry before the one that has it (ten system
 * calls and more per run, on the loop). Only searches made as wardd itself
 * (an admin's payload: no other user's file-system ids, which are not in
 * the key), each believed for SPEC_EXEC_CACHE_S seconds. The file found
 * is probed again at every use, so one removed or no longer executable is
 * seen at once; one put earlier in PATH is seen within that time (a
 * shell's hash table sees it only on `hash -r`).
 */
#define SPEC_EXEC_CACHE		8
#define SPEC_EXEC_CACHE_S	1

static struct {
	char	*key;		/* argv0 NUL PATH NUL base NUL */
	size_t	 keylen;
	char	*found;
	time_t	 at;
} spec_exec_cache[SPEC_EXEC_CACHE];
static unsigned spec_exec_next;

static int
spec_find_exec_cached(const char *argv0, const char *path, const char *base,
    char **out, struct ward_err *e)
{
	struct timespec now;
	size_t l0, l1, l2, len, k;
	char *key;

	if (strchr(argv0, '/') != NULL)
		return spec_find_exec(argv0, path, base, out, e);
	if (path == NULL)
		path = SPEC_CLEAN_PATH;
	l0 = strlen(argv0) + 1;
	l1 = strlen(path) + 1;
	l2 = strlen(base) + 1;
	len = l0 + l1 + l2;
	if ((key = malloc(len)) == NULL)
		return ward_err_oom(e);
	memcpy(key, argv0, l0);
	memcpy(key + l0, path, l1);
	memcpy(key + l0 + l1, base, l2);
	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	for (k = 0; k < SPEC_EXEC_CACHE; k++) {
		if (spec_exec_cache[k].keylen != len ||
		    memcmp(spec_exec_cache[k].key, key, len) != 0)
			continue;
		if (now.tv_sec - spec_exec_cache[k].at < SPEC_EXEC_CACHE_S &&
		    spec_path_probe(spec_exec_cache[k].found, 0) == SPEC_PATH_OK) {
			free(key);
			return spec_keep_path(spec_exec_cache[k].found, out, e);
		}
		break;	/* stale: searched again, the entry replaced */
	}
	if (spec_find_exec(argv0, path, base, out, e) == -1) {
		free(key);
		return -1;
	}
	if (k == SPEC_EXEC_CACHE)
		k = spec_exec_next++ % SPEC_EXEC_CACHE;
	free(spec_exec_cache[k].key);
	free(spec_exec_cache[k].found);
	spec_exec_cache[k].key = key;
	spec_exec_cache[k].keylen = len;
	spec_exec_cache[k].at = now.tv_sec;
	if ((spec_exec_cache[k].found = strdup(*out)) == NULL)
		spec_exec_cache[k].keylen = 0;	/* not kept: searched next time */
	return 0;
}

/*
 * The ids the payload will run as, for the path checks: what spawn_vfork
 * switches to. A check borrows them (statedir_as_user), so that what wardd
 * says about a path is what the payload's user could learn by itself: a
 * missing path and one it may not reach give the same answer (finding 8 of
 * issue 9). 0 when wardd checks as itself: it is not root (it can only
 * run payloads as itself), or an admin's payload runs as root.
 */
static int
spec_fsids_of(const struct instance_spec *cfg, const struct peer *peer,
    uid_t *uid, gid_t *gid, const gid_t **groups, int *ngroups)
{
	if (geteuid() != 0)
		return 0;
	if (cfg->has_user) {
		*uid = cfg->user_uid;
		*gid = cfg->user_gid;
		*groups = NULL;		/* spawn.c: setgroups(0) for 'user' */
		*ngroups = 0;
	} else if (!peer->admin) {
		*uid = peer->uid;
		*gid = peer->gid;
		*groups = peer->groups;
		*ngroups = peer->ngroups;
	} else
		return 0;
	if (cfg->has_group)
		*gid = cfg->group_gid;
	return *uid != 0;
}

/*
 * cwd and argv[0], checked as the payload: its cwd must be a directory it
 * can reach, and argv[0] resolved along path (NULL: the clean PATH) from
 * there. Messages depend only on what the payload's user could see.
 */
static int
spec_paths_check(struct instance_spec *cfg, const struct peer *peer,
    const char *path, struct ward_err *e)
{
	const gid_t *groups = NULL;
	char here[PATH_MAX];
	int ngroups = 0, as_payload, rc = 0;
	uid_t uid = 0;
	gid_t gid = 0;

	as_payload = spec_fsids_of(cfg, peer, &uid, &gid, &groups, &ngroups);
	if (as_payload && statedir_as_user(uid, gid, groups, ngroups) == -1)
		return ward_err_errno(e, WARD_E_INTERNAL,
		    "cannot check argv[0] and cwd as uid %u", (unsigned)uid);
	/* The payload's chdir needs search permission, not just a stat. */
	if (cfg->cwd != NULL && spec_path_probe(cfg->cwd, 1) != SPEC_PATH_OK) {
		rc = ward_err_set(e, WARD_E_INVALID_ARGUMENT, "'cwd' '%s' is "
		    "not a directory the payload can enter", cfg->cwd);
	} else {
		if (cfg->cwd == NULL && getcwd(here, sizeof here) == NULL)
			strcpy(here, "/");
		if ((as_payload ? spec_find_exec : spec_find_exec_cached)(
		    cfg->argv[0], path, cfg->cwd ? cfg->cwd : here,
		    &cfg->exec_path, e) == -1)
			rc = -1;
	}
	if (as_payload)
		statedir_as_self();
	return rc;
}

static int
spec_parse_env(struct instance_spec *cfg, const msgpack_object *o,
    const char **path, struct ward_err *e)
{
	uint32_t i, n = o->via.map.size;

	if (n > SPEC_MAX_ENV)
		return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
		    "'env' has more than %d entries",
		    SPEC_MAX_ENV);
	if ((cfg->env = calloc(n + 1, sizeof *cfg->env)) == NULL)
		goto nomem;
	for (i = 0; i < n; i++) {
		const msgpack_object_kv *kv = &o->via.map.ptr[i];
		char *k, *v;

		if (!codec_is_str(&kv->key) || !codec_is_str(&kv->val))
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "'env' keys and values must be strings");
		k = codec_strdup(&kv->key);
		v = codec_strdup(&kv->val);
		if (k == NULL || v == NULL || k[0] == '\0' ||
		    strchr(k, '=') != NULL || !utf8_valid(k, strlen(k)) ||
		    !utf8_valid(v, strlen(v))) {
			ward_err_set(e, WARD_E_INVALID_ARGUMENT, "'env' names "
			    "must be non-empty, without '=' or NUL, and names "
			    "and values UTF-8 text");
			free(k);
			free(v);
			return -1;
		}
		if (strncmp(k, "WARD_", 5) == 0 || strcmp(k, "NOTIFY_SOCKET") == 0 ||
		    strncmp(k, "LISTEN_", 7) == 0 || strncmp(k, "WATCHDOG_", 9) == 0) {
			ward_err_set(e, WARD_E_INVALID_ARGUMENT, "'env' may not "
			    "set %s: wardd sets WARD_*, NOTIFY_SOCKET, LISTEN_* "
			    "and WATCHDOG_* itself", k);
			free(k);
			free(v);
			return -1;
		}
		cfg->env[i] = str_printf("%s=%s", k, v);
		free(k);
		free(v);
		if (cfg->env[i] == NULL)
			goto nomem;
		if (strncmp(cfg->env[i], "PATH=", 5) == 0)
			*path = cfg->env[i] + 5;
	}
	return 0;
nomem:
	return ward_err_oom(e);
}

static int
spec_parse_exit_codes(struct instance_spec *cfg, const msgpack_object *o,
    struct ward_err *e)
{
	const struct exit_code_map *prof;
	uint32_t i, n = o == NULL ? 0 : o->via.map.size;
	size_t np, j, k;

	np = reason_profile_codes(cfg->profile, &prof);
	if (n > EXIT_CODES_MAX)
		return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
		    "'exit_codes' has more than %d entries",
		    EXIT_CODES_MAX);
	if (n + np == 0)
		return 0;
	if ((cfg->exit_codes = calloc(n + np, sizeof *cfg->exit_codes)) == NULL)
		return ward_err_oom(e);
	for (i = 0; i < n; i++) {
		const msgpack_object_kv *kv = &o->via.map.ptr[i];
		struct exit_code_map *m = &cfg->exit_codes[cfg->nexit_codes];
		long code = -1;

		if (kv->key.type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
		    kv->key.via.u64 <= 255)
			code = kv->key.via.u64;
		else if (codec_is_str(&kv->key)) {
			char *s = codec_strdup(&kv->key), *end;

			if (s != NULL && s[0] >= '0' && s[0] <= '9') {
				code = strtol(s, &end, 10);
				if (*end != '\0' || code > 255)
					code = -1;
			}
			free(s);
		}
		if (code < 0)
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "'exit_codes' keys must be exit codes 0-255");
		if (!codec_is_str(&kv->val) ||
		    !reason_name_valid(kv->val.via.str.ptr, kv->val.via.str.size))
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "'exit_codes' values must be reasons "
			    "matching ^[A-Z][A-Z0-9_]{0,63}$ (exit code %ld)", code);
		m->code = code;
		memcpy(m->reason, kv->val.via.str.ptr, kv->val.via.str.size);
		m->reason[kv->val.via.str.size] = '\0';
		cfg->nexit_codes++;
	}
	/* The profile's table sits under the instance's own entries. */
	for (j = 0; j < np; j++) {
		for (k = 0; k < n; k++) {
			if (cfg->exit_codes[k].code == prof[j].code)
				break;
		}
		if (k == n)
			cfg->exit_codes[cfg->nexit_codes++] = prof[j];
	}
	return 0;
}

/* "user": a uid, or "UID" / "UID:GID". Names are the client's to resolve. */
static int
spec_parse_user(struct instance_spec *cfg, const msgpack_object *o,
    struct ward_err *e)
{
	unsigned long uid, gid;
	char *s, *end;

	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 < 0xffffffffUL) {
		cfg->user_uid = cfg->user_gid = o->via.u64;
		cfg->has_user = 1;
		return 0;
	}
	if (!codec_is_str(o) || (s = codec_strdup(o)) == NULL)
		goto bad;
	uid = strtoul(s, &end, 10);
	gid = uid;
	if (end != s && *end == ':') {
		if (end[1] < '0' || end[1] > '9')
			end = s;	/* "UID:" names no group */
		else
			gid = strtoul(end + 1, &end, 10);
	}
	if (s[0] < '0' || s[0] > '9' || end == s || *end != '\0' ||
	    uid >= 0xffffffffUL || gid >= 0xffffffffUL) {
		free(s);
		goto bad;
	}
	free(s);
	cfg->user_uid = uid;
	cfg->user_gid = gid;
	cfg->has_user = 1;
	return 0;
bad:
	return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
	    "'user' must be a uid or \"uid:gid\" (wardd does "
	    "not look up names; wardctl --user resolves them)");
}

static char *
spec_string(const msgpack_object *o, const char *key, struct ward_err *e)
{
	char *s;

	if (o->via.str.size > SPEC_MAX_STRING) {
		ward_err_set(e, WARD_E_INVALID_ARGUMENT, "'%s' is longer than "
		    "%d bytes", key, SPEC_MAX_STRING);
		return NULL;
	}
	if ((s = codec_strdup(o)) == NULL)
		ward_err_set(e, WARD_E_INVALID_ARGUMENT, "'%s' must not "
		    "contain NUL bytes", key);
	else if (!utf8_valid(s, strlen(s))) {
		ward_err_set(e, WARD_E_INVALID_ARGUMENT, "'%s' must be UTF-8 "
		    "text", key);
		free(s);
		s = NULL;
	}
	return s;
}

/*
 * capture_output and the log keys, output-spec.c's to read. Non-admins'
 * payloads never get wardd's stdout and stderr: unless they say
 * capture_output: false (then spawn.c gives them /dev/null) or pass their
 * own fds, their output is captured into the ring by default.
 */
static int
spec_parse_output(struct instance_spec *cfg, const msgpack_object **a,
    int admin, struct ward_err *e)
{
	static const msgpack_object yes = {
		.type = MSGPACK_OBJECT_BOOLEAN, .via.boolean = true
	};
	const msgpack_object *oa[OUTPUT_ARG_NUM];

	memcpy(oa, a + C_CAPTURE_OUTPUT, sizeof oa);
	if (!admin && oa[OUTPUT_ARG_CAPTURE] == NULL)
		oa[OUTPUT_ARG_CAPTURE] = &yes;
	return output_config_parse(&cfg->output, oa, admin, e);
}

/*
 * Fill cfg from a create request's arguments (by spec_args position).
 * 0, or -1 with e set (code and message for the client); cfg then holds
 * what was parsed so far and the caller frees it.
 */
int
spec_parse_args(struct instance_spec *cfg, const msgpack_object **a,
    const struct peer *peer, struct ward_err *e)
{
	const char *path = NULL;
	int admin = peer->admin;
	uint32_t i, n;

	memset(cfg, 0, sizeof *cfg);
	if (a[C_NAME] != NULL) {
		if ((cfg->name = spec_string(a[C_NAME], "name", e)) == NULL)
			return -1;
		if (spec_name_valid(cfg->name, e) == -1)
			return -1;
	}
	if (a[C_ARGV] == NULL || a[C_ARGV]->via.array.size == 0)
		return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
		    "'argv' must be a non-empty array of strings");
	n = a[C_ARGV]->via.array.size;
	if (n > SPEC_MAX_ARGV)
		return ward_err_set(e, WARD_E_TOO_LARGE,
		    "'argv' has more than %d elements",
		    SPEC_MAX_ARGV);
	if ((cfg->argv = calloc(n + 1, sizeof *cfg->argv)) == NULL)
		return ward_err_oom(e);
	for (i = 0; i < n; i++) {
		const msgpack_object *o = &a[C_ARGV]->via.array.ptr[i];

		if (!codec_is_str(o))
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "'argv' must be a non-empty array of strings");
		if ((cfg->argv[i] = spec_string(o, "argv", e)) == NULL)
			return -1;
	}
	if (cfg->argv[0][0] == '\0')
		return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
		    "argv[0] must not be empty");
	if (a[C_ENV] != NULL &&
	    spec_parse_env(cfg, a[C_ENV], &path, e) == -1)
		return -1;
	if (a[C_CWD] != NULL) {
		if ((cfg->cwd = spec_string(a[C_CWD], "cwd", e)) == NULL)
			return -1;
		if (cfg->cwd[0] != '/')
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "'cwd' must be an absolute path");
	}
	/* Non-admins' payloads never get wardd's environment (spawn_environ). */
	if (a[C_CLEAN_ENV] != NULL && !a[C_CLEAN_ENV]->via.boolean && !admin)
		return ward_err_set(e, WARD_E_PERMISSION,
		    "only root or wardd's own user may set "
		    "'clean_env' to false: others' payloads never get wardd's "
		    "environment");
	cfg->clean_env = !admin || (a[C_CLEAN_ENV] != NULL &&
	    a[C_CLEAN_ENV]->via.boolean);
	cfg->control = a[C_CONTROL] != NULL && a[C_CONTROL]->via.boolean;
	cfg->detect_hangup = a[C_DETECT_HANGUP] != NULL &&
	    a[C_DETECT_HANGUP]->via.boolean;
	cfg->hangup_timeout_ms = opts.hypervisor ? HANGUP_TIMEOUT_NESTED_MS :
	    HANGUP_TIMEOUT_MS;
	if (a[C_HANGUP_TIMEOUT] != NULL) {
		uint64_t v = a[C_HANGUP_TIMEOUT]->via.u64;

		if (v < 1 || v > SPEC_MAX_HANGUP_MS)
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "'hangup_timeout_ms' must be 1 to %u",
			    SPEC_MAX_HANGUP_MS);
		cfg->hangup_timeout_ms = v;
	}
	if (a[C_PROFILE] != NULL) {
		if ((cfg->profile = spec_string(a[C_PROFILE], "profile",
		    e)) == NULL)
			return -1;
		if (strcmp(cfg->profile, "crosvm") != 0)
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "unknown profile '%.64s' (known: crosvm)",
			    cfg->profile);
	}
	if (spec_parse_exit_codes(cfg, a[C_EXIT_CODES], e) == -1)
		return -1;
	if (a[C_RSS_MAPPING] != NULL) {
		cfg->rss_mapping = spec_string(a[C_RSS_MAPPING], "rss_mapping",
		    e);
		if (cfg->rss_mapping == NULL)
			return -1;
		if (cfg->rss_mapping[0] == '\0' || strlen(cfg->rss_mapping) > 256)
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "'rss_mapping' must be 1 to 256 bytes");
	}
	if (a[C_NOTIFY] != NULL) {
		if (codec_streq(a[C_NOTIFY], "systemd"))
			cfg->notify_systemd = 1;
		else if (!codec_streq(a[C_NOTIFY], "fd"))
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "'notify' is \"systemd\" (a "
			    "NOTIFY_SOCKET for sd_notify) or \"fd\" (only the "
			    "notify pipe on fd 4, the default)");
	}
	if (a[C_WATCHDOG] != NULL) {
		uint64_t v = a[C_WATCHDOG]->via.u64;

		if (v < 1 || v > SPEC_MAX_WATCHDOG_MS)
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "'watchdog_ms' must be 1 to %u",
			    SPEC_MAX_WATCHDOG_MS);
		cfg->watchdog_ms = v;
	}
	if (a[C_USER] != NULL) {
		if (!admin)
			return ward_err_set(e, WARD_E_PERMISSION,
			    "only root or wardd's own user may "
			    "set 'user'");
		if (spec_parse_user(cfg, a[C_USER], e) == -1)
			return -1;
		if (!opts.is_root && cfg->user_uid != opts.uid)
			return ward_err_set(e, WARD_E_PERMISSION,
			    "wardd is not running as root and "
			    "cannot run instances as uid %u", (unsigned)cfg->user_uid);
	}
	/* output-spec.c: capture_output and the log keys. */
	if (spec_parse_output(cfg, a, admin, e) == -1)
		return -1;
	/* group, umask, rlimits, nice, oom_score_adj; the limit keys. */
	if (spec_execenv_parse(cfg, a + C_GROUP, admin, e) == -1 ||
	    spec_execenv_check_peer(cfg, peer, e) == -1 ||
	    spec_limits_parse(cfg, a + C_LIMITS, admin, e) == -1 ||
	    spec_hooks_parse(cfg, a + C_PRE_START, e) == -1)
		return -1;
	/*
	 * Last: the PATH search may use the instance's own PATH (or, with a
	 * clean environment, the one it will get) and cwd.
	 */
	if (path == NULL && !cfg->clean_env)
		path = getenv("PATH");
	if (spec_paths_check(cfg, peer, path, e) == -1)
		return -1;
	spec_share_exec_path(cfg);
	return 0;
}

/*
 * An exec_path that is argv[0] itself (a full path, as most are) is not
 * kept twice: it points at argv[0], which spec_free then frees once.
 */
void
spec_share_exec_path(struct instance_spec *cfg)
{
	if (cfg->exec_path != NULL && cfg->argv != NULL &&
	    cfg->argv[0] != NULL && cfg->exec_path != cfg->argv[0] &&
	    strcmp(cfg->exec_path, cfg->argv[0]) == 0) {
		free(cfg->exec_path);
		cfg->exec_path = cfg->argv[0];
	}
}

/* Take a copy of passed fd number idx for target; the request keeps its own. */
static int
spec_add_fd(struct instance_spec *cfg, uint64_t idx, int target,
    const int *fds, int nfds, struct ward_err *e)
{
	size_t k;
	int fd;

	if (idx >= (uint64_t)nfds)
		return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
		    "fd index %llu for target %d, but %d fd%s "
		    "came with the request (pass them with SCM_RIGHTS)",
		    (unsigned long long)idx, target, nfds, nfds == 1 ? "" : "s");
	for (k = 0; k < cfg->nfds; k++) {
		if (cfg->fds[k].target == target)
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "fd %d is given twice", target);
	}
	if ((fd = fcntl(fds[idx], F_DUPFD_CLOEXEC, 0)) == -1)
		return ward_err_errno(e, WARD_E_INVALID_ARGUMENT,
		    "cannot keep passed fd");
	cfg->fds[cfg->nfds].fd = fd;
	cfg->fds[cfg->nfds].target = target;
	cfg->nfds++;
	cfg->passed_fds = 1;
	return 0;
}

/*
 * stdin, stdout, stderr and fds: [{fd, target}] name fds passed with the
 * request by their index among them. cfg gets its own copies, kept until
 * the spawn (or the instance's removal). 0, or -1 with e set.
 */
int
spec_parse_fds(struct instance_spec *cfg, const msgpack_object **a,
    int *fds, int nfds, struct ward_err *e)
{
	const msgpack_object *list = a[C_FDS];
	size_t n = (list ? list->via.array.size : 0) + 3;
	uint32_t k;
	int std;

	if (list != NULL && list->via.array.size > REQUEST_MAX_FDS)
		return ward_err_set(e, WARD_E_TOO_LARGE,
		    "'fds' holds more than %d entries",
		    REQUEST_MAX_FDS);
	if ((cfg->fds = calloc(n, sizeof *cfg->fds)) == NULL)
		return ward_err_oom(e);
	for (std = 0; std < 3; std++) {
		const msgpack_object *o = a[C_STDIN + std];

		if (o != NULL && spec_add_fd(cfg, o->via.u64, std, fds, nfds,
		    e) == -1)
			return -1;
	}
	for (k = 0; list != NULL && k < list->via.array.size; k++) {
		const msgpack_object *m = &list->via.array.ptr[k], *fo = NULL, *to = NULL;
		uint32_t j;

		for (j = 0; m->type == MSGPACK_OBJECT_MAP && j < m->via.map.size; j++) {
			const msgpack_object_kv *kv = &m->via.map.ptr[j];

			if (codec_streq(&kv->key, "fd"))
				fo = &kv->val;
			else if (codec_streq(&kv->key, "target"))
				to = &kv->val;
			else
				fo = to = NULL, j = m->via.map.size;
		}
		if (m->type != MSGPACK_OBJECT_MAP || m->via.map.size != 2 ||
		    fo == NULL || to == NULL ||
		    fo->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
		    to->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
		    to->via.u64 < SPEC_FD_MIN || to->via.u64 > SPEC_FD_MAX)
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "'fds' entries are {fd: INDEX, target: "
			    "N} with N from %d to %d (0-2 are stdin/stdout/stderr, "
			    "3 and 4 are ward's pipes)", SPEC_FD_MIN, SPEC_FD_MAX);
		if (spec_add_fd(cfg, fo->via.u64, to->via.u64, fds, nfds,
		    e) == -1)
			return -1;
	}
	return 0;
}

/* Passed fds are kept only until the spawn: then they are the child's. */
void
spec_close_fds(struct instance_spec *cfg)
{
	size_t k;

	/* Passed fds (and output.c's pipes): the last close of one a client
	 * passed may wait as long as it likes (closer.c). */
	for (k = 0; k < cfg->nfds; k++)
		closer_dispose(cfg->fds[k].fd);
	free(cfg->fds);
	cfg->fds = NULL;
	cfg->nfds = 0;
}

/*
 * output.c's pipe write ends: fd (ours from now on, closed on failure too)
 * becomes target in the child and is closed with the passed fds after the
 * spawn. Unlike a passed fd it leaves passed_fds alone: the instance can
 * run again, with new pipes.
 */
int
spec_push_fd(struct instance_spec *cfg, int fd, int target)
{
	struct spec_fd *v;

	if ((v = realloc(cfg->fds, (cfg->nfds + 1) * sizeof *v)) == NULL) {
		close(fd);
		errno = ENOMEM;
		return -1;
	}
	cfg->fds = v;
	cfg->fds[cfg->nfds].fd = fd;
	cfg->fds[cfg->nfds].target = target;
	cfg->nfds++;
	return 0;
}

void
spec_free(struct instance_spec *cfg)
{
	free(cfg->name);
	if (cfg->argv == NULL || cfg->exec_path != cfg->argv[0])
		free(cfg->exec_path);	/* else argv[0] (spec_share_exec_path) */
	strv_free(cfg->argv);
	strv_free(cfg->env);
	free(cfg->cwd);
	free(cfg->exit_codes);
	free(cfg->profile);
	free(cfg->rss_mapping);
	free(cfg->rlimits);
	free(cfg->user_limits);
	free(cfg->limits);
	output_config_free(cfg->output);	/* output-spec.c's */
	spec_hooks_free(cfg->hooks);
	spec_close_fds(cfg);
	memset(cfg, 0, sizeof *cfg);
}
