/*
 * ward.h: libward, the C client library of wardd.
 *
 * A struct ward is one connection; there is no global state, so a program
 * may hold several. Every method of the protocol (proto/PROTOCOL.md) has a
 * blocking call with typed results; ward_call gives the raw msgpack result
 * for anything else. For an event loop, ward_set_nonblocking, ward_fd,
 * ward_send and ward_dispatch drive the same connection without blocking.
 *
 * Calls return 0 on success and -1 on failure; ward_error(w) then says why:
 * the daemon's {code, message}, or code "disconnected" / "io" /
 * "protocol_error" for failures on this side. A lost connection is an
 * error, never a crash.
 */
#ifndef LIBWARD_H
#define LIBWARD_H

#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ward;

struct ward_error {
	char		 code[32];	/* "not_found", ..., or "disconnected" */
	char		 message[512];
};

/* ---- connecting */

/* Where a client looks: $WARD_SOCKET, else the daemon's default for us. */
const char	*ward_default_socket(char *buf, size_t len);
/* path NULL: ward_default_socket. On failure NULL, with err filled. */
struct ward	*ward_connect(const char *path, struct ward_error *err);
void		 ward_close(struct ward *);
const struct ward_error *ward_error(const struct ward *);
const char	*ward_socket_path(const struct ward *);

/* ---- raw calls */

/*
 * A reply: result points into the reply's own zone and lives until
 * ward_reply_free. params is a packed msgpack map (or NULL for none).
 */
struct ward_reply {
	msgpack_object	 result;
	msgpack_unpacked unpacked;
};

int	 ward_call(struct ward *, const char *method, const char *params,
	    size_t params_len, struct ward_reply *);
/* The same, passing fds with the request (SCM_RIGHTS); they stay ours. */
int	 ward_call_fds(struct ward *, const char *method, const char *params,
	    size_t params_len, const int *fds, size_t nfds, struct ward_reply *);
void	 ward_reply_free(struct ward_reply *);
/* The value of key in a msgpack map (a result, an event), or NULL. */
const msgpack_object *ward_map_get(const msgpack_object *map, const char *key);

/* A packer for building params: ward_params_begin, pack a map, then call. */
struct ward_params {
	msgpack_sbuffer	 sbuf;
	msgpack_packer	 pk;
};
void	 ward_params_init(struct ward_params *);
void	 ward_params_free(struct ward_params *);

/* ---- typed calls */

struct ward_hello {
	char		 server[32];
	char		 version[32];
	unsigned	 protocol;
	unsigned	 protocols[8];	/* all wardd speaks */
	unsigned	 nprotocols;
	pid_t		 pid;
	uid_t		 uid;
	int		 admin;
};

struct ward_stats {
	uint64_t	 instances, running, clients, subscribers;
	uint64_t	 created, started, died, spawn_failed, removed;
	uint64_t	 metrics_ticks, rss_kb;
};

struct ward_metrics {
	uint64_t	 cpu_user_ms, cpu_system_ms, cpu_guest_ms;
	double		 cpu_percent;
	uint64_t	 rss_kb, rss_max_kb, pss_kb;
	uint64_t	 rss_mapping_kb, rss_mapping_max_kb;
};

/* How a run ended. Strings are NULL when absent. */
struct ward_exit {
	uint64_t	 id;
	char		*name;
	uid_t		 owner_uid;
	char		*state;		/* "dead" or "failed" */
	char		*death_reason;
	int		 has_exit_code;
	int		 exit_code;
	int		 exit_signal;	/* 0: none */
	char		*signal_name;
	int		 core_dumped;
	char		*failure_reason;
	char		*failure_info;
	uint64_t	 failure_discarded;
	char		*dump_dir;
	int64_t		 started_at_ms, died_at_ms;
	uint64_t	 uptime_ms;
	struct ward_metrics metrics;
	uint64_t	 run;		/* the instance's 1, 2, ... (0: not known) */
	char		*killed_by;	/* stop kill hangup watchdog dependency
					   oom external, or NULL */
	int		 has_killed_by_uid;	/* killed_by "kill": */
	uid_t		 killed_by_uid;		/* the client's uid */
	char		*post_death;	/* its result: "running", "exited",
					   "signaled", "timeout", "failed";
					   NULL: no post_death */
	int		 post_death_code;	/* "exited" */
	int		 post_death_signal;	/* "signaled", "timeout" */
};

struct ward_status {
	uint64_t	 id;
	char		*name;
	char		*state;		/* not_started running dead failed */
	char		*payload_state;
	char		*status_text;
	pid_t		 pid;		/* 0 unless running */
	char		**argv;		/* NULL-terminated */
	uid_t		 owner_uid;
	pid_t		 requester_pid;
	int64_t		 created_at_ms, started_at_ms;
	uint64_t	 uptime_ms;
	int		 suspended;
	struct ward_metrics metrics;
	char		*program_state;	/* a declared program's, else NULL */
	int		 has_exit;	/* dead or failed: exit is filled */
	struct ward_exit exit;
	char		**limits;	/* "KEY=VALUE" of its resource limits
					   (memory_max=536870912, cpus=0-1),
					   NULL-terminated; NULL: none */
};

/* What to create. Unset fields (NULL, 0, -1 for fds) are not sent. */
struct ward_fd_map {
	int		 fd;		/* ours, passed with the request */
	int		 target;	/* its number in the child (>= 5) */
};

struct ward_exit_code {
	int		 code;
	const char	*reason;
};

struct ward_spec {
	const char		*name;
	const char *const	*argv;		/* NULL-terminated, required */
	const char *const	*env;		/* "K=V", NULL-terminated */
	const char		*cwd;
	int			 detect_hangup;
	uint32_t		 hangup_timeout_ms;	/* 0: default */
	const struct ward_exit_code *exit_codes;
	size_t			 nexit_codes;
	const char		*profile;
	const char		*rss_mapping;
	const char		*user;		/* "UID" or "UID:GID" */
	int			 stdin_fd;	/* -1: /dev/null */
	int			 stdout_fd;	/* -1: wardd's (non-admins: captured) */
	int			 stderr_fd;	/* -1: wardd's (non-admins: captured) */
	const struct ward_fd_map *fds;
	size_t			 nfds;
	const char		*notify;	/* "systemd": a NOTIFY_SOCKET */
	uint32_t		 watchdog_ms;	/* 0: no instance watchdog */
	int			 capture_output; /* for ward_instance_log */
	int			 clean_env;	/* not wardd's environment (admins;
						   others' payloads never get it) */
	const char *const	*limits;	/* "KEY=VALUE", NULL-terminated:
						   memory_max=512M, cpu_max=50%,
						   cpus=0-1, ... (ward-protocol(7)) */
	int			 control;	/* a control socket: ward_instance_call */
	/* Side processes (ward-protocol(7), Hooks and sidecars): argvs,
	   NULL-terminated, argv[0] an absolute path; NULL: none. */
	const char *const	*pre_start;	/* run to its end before the spawn */
	uint32_t		 pre_start_timeout_ms;	/* 0: default */
	const char *const	*post_death;	/* run after each death */
	uint32_t		 post_death_timeout_ms;	/* 0: default */
	const char *const *const *sidecars;	/* nsidecars argvs beside it */
	size_t			 nsidecars;
};

void	 ward_spec_init(struct ward_spec *);

/*
 * wardd gives a non-admin's payload none of its own environment, so
 * clients pass the caller's: ward_instance_create and ward_instance_run add
 * these to a spec's env, and so does wardctl run. out gets, as "K=V"
 * pointers into environ, those of HOME, USER, LOGNAME, LANG and TERM that
 * are set and not named in env ("K=V", NULL-terminated; may be NULL).
 * Returns how many (at most WARD_CALLER_ENV_MAX).
 */
#define WARD_CALLER_ENV_MAX	5
size_t	 ward_caller_env(const char *const *env, const char **out);

/* Instances are named by ident: a name, or an id in decimal. */
int	 ward_hello(struct ward *, struct ward_hello *);
int	 ward_stats(struct ward *, struct ward_stats *);
int	 ward_shutdown(struct ward *, int kill_instances);
int	 ward_instance_create(struct ward *, const struct ward_spec *, uint64_t *id);
int	 ward_instance_run(struct ward *, const struct ward_spec *, uint64_t *id);
int	 ward_instance_start(struct ward *, const char *ident);
int	 ward_instance_status(struct ward *, const char *ident, struct ward_status *);
int	 ward_instance_list(struct ward *, const char *state,
	    struct ward_status **, size_t *);
int	 ward_instance_kill(struct ward *, const char *ident, int sig);
int	 ward_instance_pidfd(struct ward *, const char *ident, pid_t *pid);
int	 ward_instance_stop(struct ward *, const char *ident, int timeout_ms);
int	 ward_instance_suspend(struct ward *, const char *ident);
int	 ward_instance_resume(struct ward *, const char *ident);
int	 ward_instance_payload(struct ward *, const char *ident, const char *state);
int	 ward_instance_remove(struct ward *, const char *ident);
int	 ward_instance_history(struct ward *, const char *ident, size_t limit,
	    struct ward_exit **, size_t *);
/* Decode a result map yourself (from ward_call or a reply callback). */
void	 ward_status_decode(const msgpack_object *, struct ward_status *);
/* An instance.list result, plain or compact, into n new statuses. */
int	 ward_status_list_decode(const msgpack_object *, struct ward_status **,
	    size_t *);
void	 ward_exit_decode(const msgpack_object *, struct ward_exit *);
void	 ward_status_free(struct ward_status *);
void	 ward_status_list_free(struct ward_status *, size_t);
void	 ward_exit_free(struct ward_exit *);
void	 ward_exit_list_free(struct ward_exit *, size_t);

/* ---- declared programs, captured output */

/* What ward.reread found or ward.update applied. Each list is
 * NULL-terminated and, after a successful call, never NULL itself. */
struct ward_changes {
	char		**added;	/* program names */
	char		**changed;
	char		**removed;
	char		**errors;	/* "file:line: message" */
	char		**warnings;	/* keys ignored, in the same form */
};

int	 ward_reread(struct ward *, struct ward_changes *);
int	 ward_update(struct ward *, struct ward_changes *);
/* ward.reload: ward.update by its other name (what SIGHUP does). */
int	 ward_reload(struct ward *, struct ward_changes *);
void	 ward_changes_free(struct ward_changes *);

struct ward_logrotate_result {
	uint64_t	 reopened, failed;	/* log files */
};

int	 ward_logrotate(struct ward *, struct ward_logrotate_result *);

/* The end of a captured stream (instance.log). */
struct ward_log {
	char		*data;		/* valid UTF-8, NUL-terminated */
	size_t		 len;
	uint64_t	 dropped;	/* the stream's log_dropped */
	char		 stream[8];	/* "stdout" or "stderr" */
};

/* stream NULL: stdout; bytes 0: wardd's default (at most 1 MiB). follow 1:
 * new output then comes as ward.log notifications (read them with
 * ward_notification_next_raw), 0: it stops, -1: as it was. */
int	 ward_instance_log(struct ward *, const char *ident, const char *stream,
	    size_t bytes, int follow, struct ward_log *);
void	 ward_log_free(struct ward_log *);

/* ---- the control channel to a payload (instance.call) */

/*
 * Relay method(params) to the payload of ident (created with control:
 * true) and return its result in r (ward_reply_free). params: one packed
 * msgpack value (an array goes as msgpack-RPC's params, anything else as
 * [params]; NULL: []). timeout_ms 0: wardd's default (5000; at most
 * 60000). Errors: "timeout", "unavailable" (no control channel, not
 * running, connection lost), "bad_response", "call_failed" (the payload's
 * own error, its message), "busy" (64 calls pending), "resource_exhausted"
 * (the answer came while the caller's unread answers held its buffer budget).
 */
int	 ward_instance_call(struct ward *, const char *ident, const char *method,
	    const char *params, size_t params_len, unsigned timeout_ms,
	    struct ward_reply *r);

/*
 * The payload's side. fn answers one request: it packs exactly one object
 * into out and returns 0 (out is the result) or -1 (out is the error: a
 * string, or a map with "message"); packing nothing answers nil.
 */
typedef int (*ward_control_fn)(const char *method, const msgpack_object *params,
	    msgpack_packer *out, void *arg);
/* Bind and listen at $WARD_CONTROL_SOCKET: the fd, or -1 with errno. */
int	 ward_control_listen(void);
/* Serve requests arriving at listening fd with fn, up to 16 connections
 * at once; blocks. Returns -1 with errno only when poll or accept fail. */
int	 ward_control_serve_fd(int fd, ward_control_fn fn, void *arg);
/* ward_control_listen, then ward_control_serve_fd on it. */
int	 ward_control_serve(ward_control_fn fn, void *arg);

/* ---- events */

struct ward_event {
	char		 type[16];	/* created started payload metrics died removed overflow */
	int64_t		 time_ms;
	uint64_t	 id;
	char		*name;
	char		*state;
	pid_t		 pid;		/* started */
	char		*payload_state;	/* payload */
	char		*status_text;	/* payload */
	struct ward_metrics metrics;	/* metrics */
	int		 has_exit;	/* died */
	struct ward_exit exit;
	char		*message;	/* overflow */
	int		 suspended;	/* payload, metrics: suspended (frozen) */
};

/* types: NULL-terminated names, NULL for the default set; ids NULL for all. */
int	 ward_events_subscribe(struct ward *, const uint64_t *ids, size_t nids,
	    const char *const *types);
int	 ward_events_unsubscribe(struct ward *);
/* Block up to timeout_ms (-1: forever) for the next event: 1 got one, 0
 * timed out, -1 error (the connection is lost after an overflow). */
int	 ward_event_next(struct ward *, struct ward_event *, int timeout_ms);
/* The same, undecoded: msg holds [2, "ward.event", [EVENT]] as sent. */
int	 ward_event_next_raw(struct ward *, msgpack_unpacked *msg, int timeout_ms);
/* Any notification, undecoded: [2, method, params] as sent (ward.event,
 * ward.log of instance.log's follow, ...). Returns as ward_event_next. */
int	 ward_notification_next_raw(struct ward *, msgpack_unpacked *msg,
	    int timeout_ms);
/* Decode a raw notification; 0, or -1 when it is not a ward.event. */
int	 ward_event_decode(const msgpack_object *, struct ward_event *);
void	 ward_event_free(struct ward_event *);

/* ---- non-blocking use from another event loop */

typedef void (*ward_reply_cb)(struct ward *, uint32_t msgid,
	    const struct ward_error *err, const msgpack_object *result, void *arg);
typedef void (*ward_event_cb)(struct ward *, const struct ward_event *, void *arg);

int	 ward_fd(const struct ward *);
int	 ward_set_nonblocking(struct ward *, ward_reply_cb, ward_event_cb, void *arg);
/* Queue a request; 0 and *msgid, or -1. Its reply comes to the reply_cb. */
int	 ward_send(struct ward *, const char *method, const char *params,
	    size_t params_len, uint32_t *msgid);
/* Poll for POLLOUT while this is true. */
int	 ward_want_write(const struct ward *);
/* Call when the fd is readable or writable: reads, writes, runs callbacks.
 * -1 when the connection is lost (ward_error says why). */
int	 ward_dispatch(struct ward *);

/* ---- metrics: ward.metrics, the text exposition */

/*
 * format NULL or "openmetrics": OpenMetrics 1.0.0; "text": Prometheus'
 * 0.0.4 text format. *text is malloc'd and NUL-terminated (free it), of
 * *len bytes (len may be NULL). Instances listed: those the caller may see.
 */
int	 ward_metrics(struct ward *, const char *format, char **text,
	    size_t *len);

#ifdef __cplusplus
}
#endif

#endif
