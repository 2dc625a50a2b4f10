/*
 * ward.h: wardd's structures and the functions each module offers the others,
 * one section per src/ file. HACKING.md draws the layers they form (base,
 * transport, engine, programs, commands, wiring: each calls only those
 * below, as tests/test_layers.sh checks) and says which file owns what.
 */
#ifndef WARD_H
#define WARD_H

#include <sys/types.h>
#include <signal.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <msgpack.h>

#include "ward-proto.h"

#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)			\
	for ((var) = TAILQ_FIRST(head);					\
	    (var) != NULL && ((tvar) = TAILQ_NEXT(var, field), 1);	\
	    (var) = (tvar))
#endif

#define printflike(a, b) __attribute__((format(printf, a, b)))

/* ---- util.c: allocation that fails loudly only at start-up, and buffers. */

/* A growable byte buffer; data[off..len) is what is still unread. */
struct buf {
	char	*data;
	size_t	 off;
	size_t	 len;
	size_t	 cap;
};

int	 buf_append(struct buf *, const void *, size_t);
void	 buf_consume(struct buf *, size_t);
void	 buf_free(struct buf *);
size_t	 buf_used(const struct buf *);
char	*xstrdup(const char *);
int	 utf8_valid(const char *, size_t);
char	*utf8_clean(const char *, size_t);
void	*xcalloc(size_t, size_t);
int64_t	 now_wall_ms(void);
int	 fd_set_flags(int, int nonblock, int cloexec);
void	 fd_close_watched(int);
extern int ward_epoll_fd;
char	*str_printf(const char *, ...) printflike(1, 2);
ssize_t	 read_small_file(const char *, char *, size_t);
void	 strv_free(char **);
int	 write_small_file(const char *, const char *);
int	 small_file_has(const char *, const char *, const char *);
char	*read_whole_file(const char *, size_t);
int	 mkdir_p(const char *, mode_t);

/*
 * Fd enumeration: every fd wardd holds is listed by the object that owns
 * it, one *_fds function per owner, each calling fn(fd, what, arg). What a
 * re-exec or systemd's fd store must carry; ward.fds (cmd-ward.c) lists
 * them all.
 */
typedef void (*fd_visit_fn)(int, const char *, void *);
#define ID_MAX	(UINT64_C(1) << 53)	/* ids fit any JSON client's numbers */
uint64_t id_parse(const char *);
uint64_t name_id(const char *);
DIR	*opendir_at(int, const char *);

/*
 * The error a client may read: a WARD_E_* code and a message. A function
 * that can fail for a client's reason takes one and returns -1 (or NULL)
 * with both set; system-level helpers set errno instead.
 */
#define WARD_ERR_MAX	512
struct ward_err {
	const char	*code;	/* WARD_E_* (proto/ward-proto.h); NULL: none yet */
	char		 msg[WARD_ERR_MAX];
};
#define WARD_ERR_INIT	{ NULL, "" }
int	 ward_err_set(struct ward_err *, const char *, const char *, ...)
	    printflike(3, 4);
int	 ward_err_errno(struct ward_err *, const char *, const char *, ...)
	    printflike(3, 4);
int	 ward_err_oom(struct ward_err *);

/* ---- table.c: an intrusive hash table for O(1) lookup by id and by name. */

struct table_node {
	struct table_node	*next;
	uint64_t		 hash;
	const void		*key;
	size_t			 keylen;
};

struct table {
	struct table_node	**buckets;
	size_t			  nbuckets;
	size_t			  count;
};

void	 table_init(struct table *);
void	 table_free(struct table *);
int	 table_insert(struct table *, struct table_node *, const void *, size_t);
void	 table_remove(struct table *, struct table_node *);
struct table_node *table_find(const struct table *, const void *, size_t);

/* ---- closer.c: fds from outside, closed where a close may wait. */

extern uint64_t closer_sent;
void	 closer_init(void);
void	 closer_dispose(int);
void	 closer_fds(fd_visit_fn, void *);

/* ---- log.c ---- */

/* Levels are syslog's numbers, so they print as sd-daemon "<N>" prefixes. */
enum {
	LOG_LVL_ERR = 3,
	LOG_LVL_WARNING = 4,
	LOG_LVL_NOTICE = 5,
	LOG_LVL_INFO = 6,
	LOG_LVL_DEBUG = 7
};

enum log_target {
	LOG_TARGET_AUTO,	/* the journal if stderr is its stream */
	LOG_TARGET_STDERR,
	LOG_TARGET_JOURNAL
};

void	 log_init(int);
int	 log_set_target(enum log_target);
int	 log_to_journal(void);
int	 log_level_parse(const char *);
void	 log_set_level(int);
void	 log_warn(const char *, ...) printflike(1, 2);
void	 log_warnx(const char *, ...) printflike(1, 2);
void	 log_notice(const char *, ...) printflike(1, 2);
void	 log_info(const char *, ...) printflike(1, 2);
void	 log_debug(const char *, ...) printflike(1, 2);
void	 fatal(const char *, ...) printflike(1, 2) __attribute__((noreturn));
void	 fatalx(const char *, ...) printflike(1, 2) __attribute__((noreturn));

/* ---- wardd.c / loop.c: the daemon's options and its one loop. */

struct wardd_opts {
	char		*socket_path;
	char		*state_dir;
	char		*config_dir;
	unsigned	 metrics_interval_ms;
	int		 log_level;
	int		 cli_log_level;		/* given on the command line: wins */
	int		 cli_metrics_interval;
	int		 socket_activated;
	uid_t		 uid;		/* wardd's own uid: an admin */
	int		 is_root;
	int		 hypervisor;	/* /proc/cpuinfo has the hypervisor flag */
	struct rlimit	 nofile;	/* as wardd got it; children get it back */
	int		 oom_score_adj;	/* wardd's own, read at start-up */
	int		 no_cgroups;	/* --no-cgroups: cgroup.c stays out */
	/* budget.c: what one non-admin uid may make wardd hold. */
	unsigned	 max_user_conns;	/* --max-user-conns */
	uint64_t	 max_user_buffer;	/* --max-user-buffer, bytes */
	unsigned	 max_user_fds;		/* --max-user-fds */
	uint64_t	 max_user_ring;		/* --max-user-ring, bytes */
	uint64_t	 dumps_max_count; /* --dumps-max-count: dump dirs kept */
	uint64_t	 dumps_max_bytes; /* --dumps-max-bytes: their bytes on disk */
	char		*exe;		/* what a re-exec runs: --exe, or wardd's own */
	int		 memfd_rings;	/* output rings in memfds (fdstore.c sets it) */
	char		*metrics_listen; /* --metrics-listen ADDR:PORT (http.c) */
	char		*supervisord_conf; /* --supervisord-conf FILE, or NULL */
};

#define DUMPS_MAX_COUNT_DEFAULT	100
#define DUMPS_MAX_BYTES_DEFAULT	(1024ULL * 1024 * 1024)

extern struct wardd_opts opts;
extern struct ev_loop *ward_loop;

struct instance;
struct conn;

/* Where a connection's complete requests go (cmd_dispatch, wired by wardd.c). */
typedef void (*conn_dispatch_fn)(struct conn *, const msgpack_object *, int *,
    int);

/* ---- conf.c, confdir.c, confdir-program.c: the config directory: [ward]
 * and [program:NAME], read, mapped and checked. */

struct settings {
	int		 log_level;
	unsigned	 metrics_interval_ms;
};

/* One key = value as read, before it is understood. */
struct conf_kv {
	char	*key;
	char	*value;
	int	 line;
};

enum restart_mode {
	RESTART_NO,		/* never */
	RESTART_ON_FAILURE,	/* unless it ended well (exit 0 or exitcodes) */
	RESTART_ALWAYS		/* whatever the reason */
};

/* What program.c does around a program's runs. */
struct program_policy {
	int		 autostart;
	enum restart_mode restart;
	char		**restart_on;		/* death reasons; NULL: by mode */
	uint32_t	 backoff_initial_ms;
	uint32_t	 backoff_max_ms;
	uint32_t	 backoff_reset_ms;	/* stable this long: backoff resets */
	uint32_t	 max_restarts;		/* within restart_window_ms ... */
	uint32_t	 restart_window_ms;	/* ... or the program is fatal */
	uint32_t	 startsecs_ms;		/* dying sooner is failing to start */
	int		 readiness_notify;	/* ready = READY=1, not startsecs */
	char		**after;		/* start once these are ready */
	char		**requires;		/* the same, and fatal with them */
	uint32_t	 success_codes[8];	/* exitcodes: bit per code */
	int		 stop_signal;
	uint32_t	 stop_timeout_ms;
};

/* One [program:NAME] as read: its instance.create map and its policy. */
struct conf_program {
	char			*name;
	char			*file;
	int			 line;
	long			 group_priority;	/* start order: by these, */
	long			 priority;		/* lower first, then as
						   declared; only a load's order
						   uses them, so not kept across
						   a re-exec (program-state.c) */
	char			*spec;		/* packed msgpack instance.create map */
	size_t			 speclen;
	struct program_policy	 policy;
	TAILQ_ENTRY(conf_program) entry;
};
TAILQ_HEAD(conf_program_list, conf_program);

/* A [program:NAME] as declared, loaded or not: its name is reserved. */
struct conf_decl {
	char	*name;
	char	*file;
	int	 line;
};

struct conf {
	struct settings		 settings;
	struct conf_program_list programs;
	struct conf_decl	*decls;		/* every valid NAME declared */
	size_t			 ndecls;
	char			**errors;	/* "file:line: message" */
	size_t			 nerrors;
	char			**warnings;	/* the same: keys ignored */
	size_t			 nwarnings;
	int			 quiet;		/* keep errors, do not log them */
};

void	 conf_error(struct conf *, const char *, int, const char *);
void	 conf_warning(struct conf *, const char *, int, const char *);
void	 conf_free(struct conf *);
void	 conf_program_free(struct conf_program *);
int	 conf_split_command(const char *, char ***, struct ward_err *);
int	 conf_env_parse(const char *, char ***, size_t *, struct ward_err *);
void	 conf_strv_free(char **, size_t);
void	 conf_vec_free(char **);
char	**conf_list_split(const char *);
int	 conf_bool(const char *, int *);
int	 conf_number(const char *, double, uint64_t, uint64_t *);

/* conf-expand.c: what %(NAME)s may name in a value. */
struct conf_vars {
	const char	*here;		/* the directory of the value's file */
	const char	*host_node_name;
	const char	*program_name;	/* NULL outside a [program:] */
	const char	*group_name;
	long		 process_num;
	long		 numprocs;	/* 0: no process_num, numprocs here */
	char		**env;		/* KEY=VALUE for ENV_KEY, last wins, */
	size_t		 nenv;		/* before wardd's environment */
};
char	*conf_expand(const char *, const struct conf_vars *, struct ward_err *);
const char *conf_host_node_name(void);

/* conf-ini.c: an INI file in supervisord's dialect, [include]s followed. */
struct conf_ini_section {
	char		*name;
	char		*file;		/* where it first appeared */
	int		 line;
	struct conf_kv	*kv;		/* a value may be NULL (out of memory) */
	size_t		 nkv;
	TAILQ_ENTRY(conf_ini_section) entry;
};
TAILQ_HEAD(conf_ini_list, conf_ini_section);
int	 conf_ini_read(struct conf *, const char *, struct conf_ini_list *);
void	 conf_ini_free(struct conf_ini_list *);
struct conf_ini_section *conf_ini_find(struct conf_ini_list *, const char *);
const char *conf_ini_get(const struct conf_ini_section *, const char *);

/* [supervisord]'s settings that reach every program (confdir-super.c). */
struct conf_global {
	char		**env;		/* environment= as KEY=VALUE */
	size_t		 nenv;
	char		*umask;		/* NULL: none (nodaemon, or not given) */
	char		*directory;
	uint64_t	 minfds;	/* 0: none */
};

/* One process a [program:x] section makes (numprocs= makes several). */
struct conf_proc {
	const char		*name;		/* ward's: PROC, or GROUP:PROC */
	const char		*process_name;
	const char		*program_name;
	const char		*group_name;
	long			 process_num;
	long			 numprocs;
	long			 group_priority;
	int			 first;		/* the section's first: warns */
	const char		*file;		/* the [program:x]'s */
	int			 line;
	const struct conf_kv	*kv;
	size_t			 nkv;
	const struct conf_global *global;
};
struct conf_program *confdir_program_build(struct conf *,
	    const struct conf_proc *);
void	 confdir_super_global(struct conf *, struct conf_ini_list *,
	    struct conf_global *);
void	 confdir_super_global_free(struct conf_global *);
void	 confdir_super_programs(struct conf *, struct conf_ini_list *,
	    const struct conf_global *);
void	 confdir_super_sort(struct conf *);
void	 confdir_env_vars(const struct conf_proc *, struct conf_vars *, char *,
	    size_t);
int	 confdir_env_build(struct conf *, const struct conf_proc *,
	    struct conf_vars *, char ***, size_t *);
void	 confdir_env_pack(msgpack_packer *, char **, size_t);
int	 confdir_load(const char *, struct conf *);
int	 confdir_read(const char *, struct conf *);
int	 confdir_settings_load(const char *, struct settings *);
struct conf_program *conf_find_program(struct conf *, const char *);
int	 confdir_name_reserved(const char *, int, struct ward_err *);

/* What instance.c tells its observers (instance_observe), in this order of
 * a life: CREATED, STARTED, PAYLOAD/STATUS, EXITING, STOPPED, DIED, REMOVED. */
enum instance_event {
	INSTANCE_EV_CREATED,	/* made and indexed; NOT_STARTED */
	INSTANCE_EV_STARTED,	/* now RUNNING */
	INSTANCE_EV_PAYLOAD,	/* its payload state moved forward */
	INSTANCE_EV_STATUS,	/* it sent a new STATUS= text */
	INSTANCE_EV_METRICS,	/* metrics.c sampled it */
	INSTANCE_EV_EXITING,	/* its child exited, not yet reaped */
	INSTANCE_EV_STOPPED,	/* no longer RUNNING (died, or wardd exits) */
	INSTANCE_EV_DIED,	/* DEAD or FAILED, i->exit filled; also for a
				   spawn that failed before it ran */
	INSTANCE_EV_REMOVED,	/* unindexed, about to be freed */
	INSTANCE_EV_RESTORED,	/* read back after a re-exec, as it was:
				   nothing happened to it */
	INSTANCE_EV_SUSPEND	/* suspended or resumed (i->suspended) */
};

typedef void (*instance_observer_fn)(struct instance *, enum instance_event);

/* ---- systemd.c: socket activation, sd_notify, the journal. */

struct exit_record;

/* An fd systemd handed back from the fd store, and the name it was kept by. */
struct systemd_stored {
	char	*name;
	int	 fd;
};
#define FDSTORE_PREFIX	"ward-"	/* names of wardd's fds in the fd store */

void	 systemd_listen_init(void);
int	 systemd_listen_fd(void);
struct systemd_stored *systemd_stored_fds(size_t *);
void	 systemd_ready(void);
void	 systemd_stopping(void);
void	 systemd_reloading(int);
void	 systemd_instance_cb(struct instance *, enum instance_event);

void	 loop_init(void);
void	 loop_observe(void);
void	 loop_run(void);

/* ---- shutdown.c: the orderly exit. */

int	 shutdown_pending(void);
void	 shutdown_begin(int kill_instances);
void	 shutdown_instance_cb(struct instance *, enum instance_event);
/* An instance's stop stage at shutdown: higher stops first, the next once
 * all of it has stopped. program.c sets it (supervisord's priority); NULL:
 * all at once. */
extern long	(*shutdown_stop_stage)(const struct instance *);

/* ---- statedir.c: STATE_DIR through fds; the rule for every path (see there). */

void	 statedir_init(void);
void	 statedir_fds(fd_visit_fn, void *);
int	 statedir_dirfd(void);
void	 statedir_shutdown(void);
int	 statedir_walk(const char *, int *);
int	 statedir_as_user(uid_t, gid_t, const gid_t *, int);
void	 statedir_as_self(void);
int	 statedir_id_next(uint64_t *, struct ward_err *);
int	 statedir_runtime_create(uint64_t, struct ward_err *);
int	 statedir_runtime_open(uint64_t);
void	 statedir_runtime_remove(uint64_t);
int	 statedir_dirfd(void);

/* ---- trash.c: trees leave STATE_DIR a bounded slice per loop turn. */

void	 trash_init(int);
void	 trash_fds(fd_visit_fn, void *);
void	 trash_shutdown(void);
int	 trash_move(int, const char *, const char *);
int	 trash_remove(int, const char *);
unsigned trash_pending(void);

/* ---- dumps.c: STATE_DIR/dumps, the owner's, kept within a budget. */

void	 dumps_init(int);
void	 dumps_fds(fd_visit_fn, void *);
void	 dumps_shutdown(void);
int	 dumps_create(const char *, uint64_t, uint64_t, uid_t, gid_t,
	    struct ward_err *);
int	 dumps_done(const char *, uint64_t, uint64_t, uid_t, unsigned, uint64_t);
char	*dumps_collect(int, const char *, const char *, uint64_t, uint64_t,
	    uid_t, gid_t);
uint64_t dumps_name_id(const char *, uint64_t *);

/* ---- server.c: the listening socket. */

void	 server_init(conn_dispatch_fn);
int	 server_open(const char *);
void	 server_fds(fd_visit_fn, void *);
int	 server_listen_fd(int);
void	 server_close(void);
int	 server_listening(void);
void	 server_save(msgpack_packer *);
int	 server_restore(const msgpack_object *);

/* ---- peer.c: who the caller is, and the one decision of what it may do. */

struct peer {
	int		 fd;		/* its connection's socket (not owned); -1: wardd */
	uid_t		 uid;		/* SO_PEERCRED at accept */
	gid_t		 gid;
	pid_t		 pid;
	gid_t		*groups;	/* SO_PEERGROUPS, for instances run as the peer */
	int		 ngroups;
	int		 admin;		/* root or wardd's own uid */
};

enum peer_verb {
	PEER_SEE,		/* see and touch what owner owns */
	PEER_RUN_AS,		/* run a payload as owner */
	PEER_ADMIN		/* admin-only commands */
};

void	 peer_init(struct peer *, int, uid_t, gid_t, pid_t, gid_t *, int);
void	 peer_clear(struct peer *);
const struct peer *peer_self(void);
int	 peer_may(const struct peer *, enum peer_verb, uid_t);

/* ---- conn.c: one client connection. */

#define CONN_OUT_CAP		(1024 * 1024)	/* output buffered per client */
#define CONN_IN_MAX		WARD_MAX_REQUEST /* unparsed input per client */
#define CONN_STALL_S		10.0	/* over its output budget, no progress: closed */
#define CONN_MAX		1024
#define CONN_MAX_PER_UID	128	/* per admin uid; others: --max-user-conns */
#define INSTANCE_MAX		100000	/* not yet removed, in all */
#define INSTANCE_MAX_PER_USER	1000	/* ... owned by one non-admin uid */

/* Fds that arrived (SCM_RIGHTS) with the stream byte at offset at. */
#define REQUEST_MAX_FDS	64

struct conn_fds {
	uint64_t	 at;
	int		 n;
	int		 fds[REQUEST_MAX_FDS];
	struct conn_fds	*next;
};

struct conn;

/*
 * State a feature keeps for a connection (an event subscription, a followed
 * log stream), embedded in the feature's own struct. conn_lost detaches
 * each one, calling detach, so conn.c names no feature.
 */
struct conn_attachment {
	void		(*detach)(struct conn *, struct conn_attachment *);
	LIST_ENTRY(conn_attachment) entry;
};

/*
 * A connection's lifecycle: OPEN -> CLOSING -> LOST, with BROKEN reachable
 * from OPEN and CLOSING; conn.c moves it only through conn_set_state, which
 * refuses any other move. Why a conn is not read while OPEN (its answers
 * backed up, its uid's buffers full, a whole request unparsed) is not a
 * state: those are conditions on its buffers and its uid's budget, re-judged
 * by conn.c's conn_update at each change; two of them can hold at once, and
 * none changes where the conn may go next. They live in struct conn as data.
 */
enum conn_state {
	CONN_OPEN,	/* reading requests, unless a condition holds it back */
	CONN_CLOSING,	/* no more reads: flushing its last answers (a protocol
			   error, a hang-up, a dropped subscriber); the linger
			   timer bounds the wait on a peer that does not read */
	CONN_BROKEN,	/* a write failed or an answer could not be queued (out
			   of memory): nothing more is sent; its own next
			   callback (or the linger timer) tears it down */
	CONN_LOST	/* being torn down by conn_lost: detach callbacks run,
			   then it is freed; nothing may be queued on it */
};

struct conn {
	int		 fd;
	enum conn_state	 state;		/* change it through conn_set_state */
	ev_io		 rw;		/* readable: requests */
	ev_io		 ww;		/* writable: only while output is queued */
	ev_timer	 linger;	/* past OPEN: give up on a peer that won't read */

	struct peer	 peer;		/* who it is: SO_PEERCRED at accept */

	struct buf	 in;
	uint64_t	 in_base;	/* stream offset of in's first unread byte */
	struct conn_fds	*fds;		/* received fds not yet given to a request */
	int		 fds_lost;	/* MSG_CTRUNC: refuse and close */
	int		 fds_over;	/* far over its uid's fd budget: close */
	struct buf	 out;
	uint64_t	 out_sent;	/* stream offset of out's first unsent byte */
	struct conn_fds	*out_fds;	/* fds riding on answers' bytes (at: an
					   out_sent offset), c's until sent */
	size_t		 charged;	/* in.cap + out.cap, counted in its uid's budget */
	/* Conditions that hold an OPEN conn back from reading (conn_update). */
	ev_timer	 stall;		/* held back, no progress for CONN_STALL_S: close */
	int		 backed_up;	/* over CONN_OUT_CAP of answers, until half
					   drained; may hold with a full uid too */
	int		 starved;	/* not read for its uid's buffer budget, not
					   backed up (that wakes by draining): on
					   conn.c's starved list, woken by the uid */
	TAILQ_ENTRY(conn) starved_entry;

	/* What features hang on it (event subscriptions, log follows), each
	 * owned by its module and freed through its detach callback. */
	LIST_HEAD(, conn_attachment) attachments;
	conn_dispatch_fn dispatch;	/* each complete request goes here */
	void		(*lost)(void);	/* told once it is gone (server.c) */

	TAILQ_ENTRY(conn) entry;
};
TAILQ_HEAD(conn_list, conn);
extern struct conn_list conns;
extern unsigned conn_count;

struct conn *conn_new(int, const struct peer *, conn_dispatch_fn, void (*)(void));
void	 conn_attach(struct conn *, struct conn_attachment *,
	    void (*)(struct conn *, struct conn_attachment *));
void	 conn_detach(struct conn *, struct conn_attachment *);
struct conn_attachment *conn_attachment_next(struct conn *,
	    struct conn_attachment *, void (*)(struct conn *, struct conn_attachment *));
msgpack_packer *conn_packer(struct conn *, msgpack_packer *);
void	 conn_queue(struct conn *, const void *, size_t);
void	 conn_queuev(struct conn *, struct iovec *, int);
int	 conn_queue_fd(struct conn *, int);
void	 conn_charge(struct conn *);
void	 conn_update(struct conn *);
void	 conn_set_state(struct conn *, enum conn_state);
void	 conn_flush(struct conn *);
void	 conn_close_after_flush(struct conn *);
void	 conn_close_all(void);
void	 conn_fds(const struct conn *, fd_visit_fn, void *);
struct conn *conn_find_fd(int);
void	 conn_save(msgpack_packer *, const struct conn *);
void	 conn_save_all(msgpack_packer *);
struct conn *conn_restore(const msgpack_object *, conn_dispatch_fn,
	    void (*)(void));
int	 conn_is_open(const struct conn *);
void	 conn_protocol_error(struct conn *, const char *, const char *, ...)
	    printflike(3, 4);

/* ---- budget.c: what each uid may make wardd hold, counted per uid. */

enum budget_kind {
	BUDGET_CONNS,		/* open connections */
	BUDGET_BUFFER,		/* bytes allocated for its connections' buffers */
	BUDGET_FDS,		/* fds held for it: received, or kept for an instance */
	BUDGET_RING,		/* output ring bytes reserved by its instances */
	BUDGET_INSTANCES,	/* instances not yet removed */
	BUDGET_NKINDS
};

#define BUDGET_USER_CONNS	64
#define BUDGET_USER_BUFFER	(64ULL * 1024 * 1024)
#define BUDGET_USER_FDS		256
#define BUDGET_USER_RING	(64ULL * 1024 * 1024)
#define BUDGET_FD_RESERVE	32	/* fds kept aside for admins and accept */

void	 budget_defaults(void);
void	 budget_init(void);
void	 budget_fds(fd_visit_fn, void *);
void	 budget_shutdown(void);
int	 budget_admin(uid_t);
uint64_t budget_limit(uid_t, enum budget_kind);
uint64_t budget_used(uid_t, enum budget_kind);
int	 budget_charge(uid_t, enum budget_kind, uint64_t);
void	 budget_give(uid_t, enum budget_kind, uint64_t);
int	 budget_over(uid_t, enum budget_kind);
int	 budget_take(uid_t, enum budget_kind, uint64_t, struct ward_err *);
int	 budget_check(uid_t, enum budget_kind, uint64_t, struct ward_err *);
void	 budget_reserve_release(void);
void	 budget_reserve_refill(void);
void	 budget_reserve_serve(int);
void	 budget_pack(msgpack_packer *, const struct peer *);
void	 budget_pack_limits(msgpack_packer *);

/* ---- codec.c: checking msgpack before it is trusted, and packing helpers. */

enum scan_result {
	SCAN_COMPLETE,		/* one whole object of *len bytes is present */
	SCAN_MORE,		/* not yet complete, within limits */
	SCAN_ERROR		/* malformed or over a limit; see error */
};

/* SCAN_ERROR's code: WARD_E_TOO_LARGE or WARD_E_PROTOCOL. */
enum scan_result codec_scan(const char *, size_t, size_t *, struct ward_err *);
enum scan_result codec_scan_within(const char *, size_t, size_t *,
	    struct ward_err *, uint64_t, uint64_t);

enum arg_type {
	ARG_STR,
	ARG_UINT,
	ARG_INT,
	ARG_BOOL,
	ARG_MAP,
	ARG_ARRAY,
	ARG_SIGNAL,		/* a number or a name such as "TERM" / "SIGTERM" */
	ARG_ANY
};

struct arg_spec {
	const char	*name;
	enum arg_type	 type;
};

#define ARG_MAX		64	/* entries in one spec (codec_args' seen bits) */

int	 codec_args(const msgpack_object *, const struct arg_spec *,
	    const msgpack_object **, struct ward_err *);
int	 codec_is_str(const msgpack_object *);
char	*codec_strdup(const msgpack_object *);
int	 codec_streq(const msgpack_object *, const char *);
void	 codec_pack_str(msgpack_packer *, const char *);
void	 codec_pack_kv_str(msgpack_packer *, const char *, const char *);
void	 codec_pack_kv_text(msgpack_packer *, const char *, const char *);
void	 codec_pack_kv_uint(msgpack_packer *, const char *, uint64_t);
void	 codec_pack_kv_int(msgpack_packer *, const char *, int64_t);
void	 codec_pack_kv_bool(msgpack_packer *, const char *, int);
void	 codec_pack_key(msgpack_packer *, const char *);
void	 codec_pack_record(msgpack_packer *, size_t);

/* A row packer's state (codec_row_init): records packed as one row. */
struct codec_row {
	struct buf	*out;		/* where the values go */
	int		 failed;	/* an append to out failed */
	msgpack_packer	*names;		/* the names pass: keys go here */
	size_t		 nkeys;		/* values of the row so far */
	const char	*last;		/* the last key */
	const char	*last_prefix;	/* its record's name, if nested */
	int		 pending;	/* last may still name a nested record */
	const char	*prefix;	/* the nested record's name */
	size_t		 nested;	/* its keys still to come */
	int		 nils;		/* nil for each value (codec_row_nils) */
};

void	 codec_row_init(msgpack_packer *, struct codec_row *, struct buf *,
	    msgpack_packer *);
int	 codec_row_write(void *, const char *, size_t);
size_t	 codec_row_end(msgpack_packer *);
void	 codec_row_nils(msgpack_packer *, int);
int	 codec_row_mode(const msgpack_packer *);
int	 codec_sbuffer_write(void *, const char *, size_t);

/* ---- state.c: writing wardd's state and reading it back (a re-exec). */

#define STATE_VERSION	1	/* what this wardd writes, and reads up to */

void	 state_set_snapshot(int);
int	 state_is_snapshot(void);
void	 state_fd_context(uint64_t, uint64_t);
void	 state_fd_salt(uint64_t);
void	 state_pack_fd(msgpack_packer *, int);
void	 state_pack_kv_fd(msgpack_packer *, const char *, int);
void	 state_pack_kv_timer(msgpack_packer *, const char *, ev_timer *);
void	 state_pack_kv_double(msgpack_packer *, const char *, double);
void	 state_pack_kv_bin(msgpack_packer *, const char *, const void *, size_t);
void	 state_pack_kv_strv(msgpack_packer *, const char *, char *const *);
const int *state_saved_fds(size_t *);
const uint64_t *state_saved_tags(void);
void	 state_fds_reset(void);
const msgpack_object *state_get(const msgpack_object *, const char *);
uint64_t state_u64(const msgpack_object *, const char *, uint64_t);
int64_t	 state_i64(const msgpack_object *, const char *, int64_t);
double	 state_double(const msgpack_object *, const char *, double);
int	 state_bool(const msgpack_object *, const char *);
char	*state_str(const msgpack_object *, const char *);
void	 state_str_into(const msgpack_object *, const char *, char *, size_t);
const char *state_bin(const msgpack_object *, const char *, size_t *);
const msgpack_object *state_array(const msgpack_object *, const char *,
	    size_t *);
char	**state_strv(const msgpack_object *, const char *);
void	 state_timer(const msgpack_object *, const char *, ev_timer *);
int	 state_fds_begin(size_t);
void	 state_fd_hand(int, int);
void	 state_fds_handed(const msgpack_object *);
int	 state_fd_obj(const msgpack_object *);
int	 state_fd(const msgpack_object *, const char *);
unsigned state_fds_close_untaken(void);

/* ---- reexec.c: ward.reexec, SIGUSR2, and wardd --state-fd. */

void	 reexec_init(int, char **);
int	 reexec_begin(const char *, struct conn *, uint32_t, struct ward_err *);
int	 reexec_restore(int);
int	 reexec_restore_state(const char *, size_t, int);

/* ---- fdstore.c: fds and state in systemd's fd store (crash recovery). */

int	 fdstore_enabled(void);
const char *fdstore_recover_begin(size_t *);
void	 fdstore_recover_end(int);
void	 fdstore_save(const char *, size_t, const int *, const uint64_t *,
	    size_t);
void	 fdstore_pack(msgpack_packer *);
void	 fdstore_fds(fd_visit_fn, void *);
void	 fdstore_unpack(const msgpack_object *);
extern uint64_t fdstore_stores, fdstore_removes, fdstore_writes;
extern uint64_t reexec_count;	/* re-execs this wardd process has made */
extern double reexec_last_ms;	/* how long the last one paused wardd */
int	 reexec_pack(msgpack_sbuffer *, int);
void	 reexec_pack_head(msgpack_packer *, int, size_t);
void	 reexec_pack_tail(msgpack_packer *, int);
unsigned reexec_restore_instances(const msgpack_object *);

/* ---- snapshot.c: STATE_DIR/state, what a wardd killed outright recovers. */

void	 snapshot_init(void);
void	 snapshot_dirty(void);
void	 snapshot_instance_cb(struct instance *, enum instance_event);
int	 snapshot_recover(void);
void	 snapshot_final(void);
extern uint64_t snapshot_writes;
extern int snapshot_pending;
extern double snapshot_ms;
extern uint64_t snapshot_slices;
void	 snapshot_fds(fd_visit_fn, void *);

/* ---- cmd.c: the command table and one request's context. */

struct request {
	struct conn		*c;
	uint32_t		 msgid;
	int			*fds;		/* came with it; -1 once taken */
	int			 nfds;
	const msgpack_object	*args[ARG_MAX];	/* by position in the spec */
	struct instance		*inst;		/* CMD_INSTANCE: the target */
	int			 replied;
};

#define CMD_ADMIN	0x1	/* admins only */
#define CMD_INSTANCE	0x2	/* takes id or name; resolves and checks owner */

struct cmd_entry {
	const char		*name;
	const struct arg_spec	*args;	/* NULL-terminated; CMD_INSTANCE adds id, name */
	int			 flags;
	void			(*exec)(struct request *);
};

void	 cmd_dispatch(struct conn *, const msgpack_object *, int *, int);
msgpack_packer *cmd_result(struct request *, msgpack_packer *);
void	 cmd_error(struct request *, const char *, const char *, ...)
	    printflike(3, 4);
void	 cmd_fail(struct request *, const struct ward_err *);
void	 cmd_ok(struct request *);

extern const struct cmd_entry cmd_hello_entry, cmd_stats_entry,
    cmd_shutdown_entry, cmd_fds_entry, cmd_reexec_entry;
extern const struct cmd_entry cmd_create_entry, cmd_start_entry,
    cmd_run_entry, cmd_status_entry, cmd_list_entry, cmd_kill_entry,
    cmd_stop_entry, cmd_suspend_entry, cmd_resume_entry, cmd_payload_entry,
    cmd_remove_entry, cmd_history_entry, cmd_pidfd_entry;
extern const struct cmd_entry cmd_subscribe_entry, cmd_unsubscribe_entry;
extern const struct cmd_entry cmd_log_entry, cmd_logrotate_entry; /* cmd-log.c */
extern const struct cmd_entry cmd_reread_entry, cmd_update_entry,
    cmd_reload_entry;
extern const struct cmd_entry cmd_metrics_entry;	/* cmd-ward.c */
/* cmd-suspend.c: instance.suspend and instance.resume, and their waits. */
void	 cmd_suspend_done_cb(struct instance *, const struct ward_err *, int);
void	 cmd_suspend_reexec(void);
extern const struct cmd_entry cmd_call_entry;	/* cmd-control.c */
extern const struct cmd_entry cmd_clear_log_entry,
    cmd_maintail_entry;			/* cmd-compat.c */

/* logring.c: wardd's recent log lines, for ward.maintail */
void	 logring_add(const char *);
char	*logring_tail(size_t, uint64_t, uint64_t *);

/* ---- reason.c: pure rules for payload states, death reasons, signals. */

/* The payload's own account of itself; only forward moves (the seed's order). */
enum payload_state {
	PAYLOAD_STARTING,	/* spawned, has said nothing yet */
	PAYLOAD_STARTED,	/* says it is up (stops the hangup timer) */
	PAYLOAD_READY,		/* says it serves */
	PAYLOAD_FINISHED,	/* says it is done or stopping */
	PAYLOAD_HANGUP		/* set by wardd: never started before the deadline */
};

#define REASON_MAX	64	/* ^[A-Z][A-Z0-9_]{0,63}$ */
#define EXIT_CODES_MAX	256

/* Why wardd itself killed an instance: a death reason of its own. */
enum killed_by {
	KILLED_BY_NONE,
	KILLED_BY_HANGUP,	/* never reached "started" by the deadline */
	KILLED_BY_WATCHDOG,	/* stopped sending WATCHDOG=1 */
	KILLED_BY_DEPENDENCY,	/* a program it requires is fatal */
	/* Only in exit records (exit_killed_by): who ended the run. */
	KILLED_BY_STOP,		/* instance.stop (or shutdown) asked it to end */
	KILLED_BY_KILL,		/* the signal a client's instance.kill sent */
	KILLED_BY_OOM,		/* the kernel's OOM killer (memory.events) */
	KILLED_BY_EXTERNAL	/* a signal no part of wardd sent */
};
#define KILLED_BY_LAST	KILLED_BY_EXTERNAL

struct exit_code_map {
	int	 code;
	char	 reason[REASON_MAX + 1];
};

const char *payload_state_name(enum payload_state);
int	 payload_state_parse(const char *, enum payload_state *);
int	 payload_transition(enum payload_state, enum payload_state,
	    struct ward_err *);
int	 reason_name_valid(const char *, size_t);
void	 reason_split_failure(const char *, size_t, char *, char **, char **);
const char *reason_classify(const char *pipe_reason, enum killed_by, int waitid_failed,
	    int exited, int status, const struct exit_code_map *, size_t);
size_t	 reason_profile_codes(const char *, const struct exit_code_map **);
const char *killed_by_name(enum killed_by);
int	 killed_by_parse(const char *, size_t, enum killed_by *);
const char *signal_name(int);
int	 signal_parse(const char *);

/* A line from the notify pipe (fd 4), already split at the newline. */
enum notify_kind {
	NOTIFY_INVALID,
	NOTIFY_READY,		/* READY=1 */
	NOTIFY_STATE,		/* STATE=started|ready|finished */
	NOTIFY_STATUS,		/* STATUS=text */
	NOTIFY_WATCHDOG,	/* WATCHDOG=1 */
	NOTIFY_STOPPING,	/* STOPPING=1 (sd_notify) */
	NOTIFY_FAILURE,		/* ERRNO=n or EXIT_STATUS=n (sd_notify) */
	NOTIFY_IGNORED		/* other sd_notify words: MAINPID=, ... */
};

enum notify_kind notify_parse(const char *, size_t, enum payload_state *,
	    const char **, size_t *);
enum notify_kind notify_parse_sd(const char *, size_t, enum payload_state *,
	    const char **, size_t *);
char	*notify_failure_note(const char *, size_t);
char	*notify_status_text(const char *, size_t);

/* ---- spec.c: what instance.create asked for, checked. */

/* An fd passed by the client, to become fd target in the child. */
struct spec_fd {
	int	 fd;
	int	 target;	/* 0-2 for stdio, else SPEC_FD_MIN and up */
};
#define SPEC_FD_MIN	5
#define SPEC_FD_MAX	1023

struct instance_spec {
	char			*name;
	char			**argv;		/* NULL-terminated */
	char			*exec_path;	/* argv[0] resolved against PATH; may
						   be argv[0] itself (spec.c) */
	char			**env;		/* "K=V", NULL-terminated */
	char			*cwd;
	int			 detect_hangup;
	uint32_t		 hangup_timeout_ms;
	struct exit_code_map	*exit_codes;
	size_t			 nexit_codes;
	char			*profile;
	char			*rss_mapping;
	struct spec_fd	*fds;		/* owned; closed after the spawn */
	size_t			 nfds;
	int			 passed_fds;	/* fds were given: first run only */
	int			 notify_systemd; /* a NOTIFY_SOCKET of its own */
	uint32_t		 watchdog_ms;	/* 0: no instance watchdog */
	int			 has_user;	/* run as user_uid/user_gid */
	uid_t			 user_uid;
	gid_t			 user_gid;
	struct output_config	*output;	/* output.c's; NULL: not captured */
	/* The execution environment (spec_parse_execenv); applied by spawn.c. */
	struct spec_rlimit	*rlimits;	/* owned; nrlimits of them */
	size_t			 nrlimits;
	uint32_t		 rlimit_mask;	/* bit (1 << RLIMIT_*) per one given */
	int			 has_group;	/* run with primary gid group_gid */
	gid_t			 group_gid;
	int			 has_umask;
	mode_t			 umask;
	int			 has_nice;
	int			 nice;		/* -20 to 19 */
	int			 has_oom_score_adj;
	int			 oom_score_adj;	/* -1000 to 1000 */
	int			 clean_env;	/* not wardd's environment: always
						   for non-admins, or clean_env */
	struct user_limits	*user_limits;	/* owned; non-admins': the most the
						   payload gets (userlimits.c) */
	struct spec_limits	*limits;	/* owned; NULL: no limit keys given
						   (spec-limits.c) */
	int			 control;	/* control: true (control.c) */
	struct spec_hooks	*hooks;		/* owned; spec-hooks.c's; NULL: none */
};

/* One rlimits entry: a RLIMIT_* resource and its soft and hard values. */
struct spec_rlimit {
	int		 resource;
	struct rlimit	 lim;
};

#define SPEC_MAX_ARGV		4096
#define SPEC_MAX_ENV		4096
#define SPEC_MAX_STRING	65536
#define SPEC_MAX_NAME		64
#define SPEC_MAX_HANGUP_MS	(7 * 24 * 3600 * 1000U)
#define SPEC_MAX_WATCHDOG_MS	(24 * 3600 * 1000U)
/* A clean environment's PATH, and the search path when it has none. */
#define SPEC_CLEAN_PATH	"/usr/local/bin:/usr/bin:/bin"
/* PATH entries spec_find_exec looks in: each probe may follow 40 of a
 * client's symlinks, and it runs on the loop (review S1). */
#define SPEC_MAX_PATH_DIRS	32

extern const struct arg_spec spec_args[];
int	 spec_parse_args(struct instance_spec *, const msgpack_object **,
	    const struct peer *, struct ward_err *);
int	 spec_parse_fds(struct instance_spec *, const msgpack_object **,
	    int *, int, struct ward_err *);
void	 spec_close_fds(struct instance_spec *);
int	 spec_push_fd(struct instance_spec *, int, int);
int	 spec_name_valid(const char *, struct ward_err *);
int	 spec_find_exec(const char *, const char *, const char *, char **,
	    struct ward_err *);
void	 spec_free(struct instance_spec *);
void	 spec_share_exec_path(struct instance_spec *);

/* ---- spec-execenv.c: group, umask, rlimits, nice, oom_score_adj. */

/* The keys spec_execenv_parse reads: spec_args's, from "group" on. */
enum {
	EXECENV_ARG_GROUP,
	EXECENV_ARG_UMASK,
	EXECENV_ARG_RLIMITS,
	EXECENV_ARG_NICE,
	EXECENV_ARG_OOM_SCORE_ADJ
};

int	 spec_execenv_parse(struct instance_spec *, const msgpack_object **, int,
	    struct ward_err *);
int	 spec_execenv_check_peer(const struct instance_spec *,
	    const struct peer *, struct ward_err *);
const char *spec_execenv_rlimit_name(int);

/* ---- spec-limits.c: memory_max, cpu_max, ..., cpus: limits in the cgroup. */

/* The limit keys, in spec_args's order (after spec.c's own keys). */
enum {
	SPEC_LIMIT_MEMORY_MAX,
	SPEC_LIMIT_MEMORY_HIGH,
	SPEC_LIMIT_CPU_MAX,
	SPEC_LIMIT_CPU_WEIGHT,
	SPEC_LIMIT_PIDS_MAX,
	SPEC_LIMIT_IO_WEIGHT,
	SPEC_LIMIT_CPUS,	/* the affinity; and cpuset.cpus where there is one */
	SPEC_LIMIT_COUNT
};
#define SPEC_LIMITS_ARGS \
	{ "memory_max", ARG_ANY }, { "memory_high", ARG_ANY }, \
	{ "cpu_max", ARG_ANY }, { "cpu_weight", ARG_ANY }, \
	{ "pids_max", ARG_ANY }, { "io_weight", ARG_ANY }, { "cpus", ARG_ANY }
#define SPEC_LIMITS_NCPUS	1024	/* CPUs a cpus list may name: 0-1023 */
#define SPEC_LIMIT_UNLIMITED	UINT64_MAX	/* "max" */

struct spec_limits {
	uint32_t	 mask;		/* 1 << SPEC_LIMIT_* for each one given */
	uint64_t	 value[SPEC_LIMIT_COUNT];	/* bytes, counts, weights,
					   cpu_max's quota (µs); or UNLIMITED */
	uint64_t	 cpu_period;	/* cpu_max's, µs */
	unsigned long	 cpus[SPEC_LIMITS_NCPUS / (8 * sizeof(unsigned long))];
};

void	 spec_limits_cgroup(const char *, const char *);
int	 spec_limits_parse(struct instance_spec *, const msgpack_object **, int,
	    struct ward_err *);
int	 spec_limits_parse_cpus(const char *, unsigned long *);
void	 spec_limits_format_cpus(const unsigned long *, char *, size_t);
int	 spec_limits_cpu_isset(const unsigned long *, unsigned);
int	 spec_limits_write(const struct spec_limits *, const char *,
	    struct ward_err *);
void	 spec_limits_pack(msgpack_packer *, const struct spec_limits *);
int	 spec_limits_restore(const msgpack_object *, struct spec_limits **);

/* ---- spec-hooks.c: pre_start, post_death and sidecars (hooks.c runs them). */

#define HOOKS_MAX_SIDECARS	8
#define HOOKS_TIMEOUT_DEFAULT_MS	10000
#define HOOKS_TIMEOUT_MAX_MS	(3600 * 1000U)

struct spec_hooks {
	char		**pre_start;	/* argv, NULL-terminated; NULL: none */
	uint32_t	 pre_start_timeout_ms;
	char		**post_death;	/* argv; NULL: none */
	uint32_t	 post_death_timeout_ms;
	char		***sidecars;	/* nsidecars argvs */
	size_t		 nsidecars;
};

/* The keys spec_hooks_parse reads: spec_args's, from "pre_start" on. */
enum {
	HOOKS_ARG_PRE_START,
	HOOKS_ARG_PRE_START_TIMEOUT,
	HOOKS_ARG_POST_DEATH,
	HOOKS_ARG_POST_DEATH_TIMEOUT,
	HOOKS_ARG_SIDECARS
};

int	 spec_hooks_parse(struct instance_spec *, const msgpack_object **,
	    struct ward_err *);
void	 spec_hooks_free(struct spec_hooks *);
void	 spec_hooks_save(msgpack_packer *, const struct spec_hooks *);
int	 spec_hooks_restore(const msgpack_object *, struct spec_hooks **);

/* ---- userlimits.c: a non-admin's payload gets no more than its requester. */

/* Read from the requester's process; applied by spawn.c before the id switch. */
struct user_limits {
	struct rlimit	 rlim[RLIM_NLIMITS];	/* the requester's (at most wardd's) */
	int		 nice;		/* the requester's, but at least 0 */
	int		 policy;	/* SCHED_OTHER, or the requester's BATCH or IDLE */
	int		 ioprio;	/* 0 (from nice), or the requester's BE or IDLE */
};

int	 userlimits_read(const struct peer *, struct user_limits **,
	    struct ward_err *);
int	 userlimits_parse(const char *, struct rlimit *);

/* ---- cgroup.c: a cgroup2 directory per instance (whole-tree stop, cost). */

struct cgroup_drain;
struct cgroup_watch;
struct metrics;
struct metrics_smaps;

/* cgroup.c's per-instance state, embedded in struct instance. */
struct instance_cgroup {
	unsigned		 made:1;	/* its directory exists: ours to rmdir */
	unsigned		 killed:1;	/* cgroup.kill written in this run */
	struct cgroup_drain	*drain;		/* waiting for it to empty; cgroup.c owns it */
	uint64_t		 oom_kills;	/* memory.events' oom_kill as the run began */
	struct cgroup_watch	*watch;		/* suspend.c's wait on cgroup.events */
};

void	 cgroup_init(int disabled);
void	 cgroup_fds(fd_visit_fn, void *);
const char *cgroup_path(const struct instance *, char *, size_t);
int	 cgroup_prepare(struct instance *, int *, struct ward_err *);
void	 cgroup_kill(struct instance *);
void	 cgroup_instance_gone(struct instance *);
void	 cgroup_instance_removed(struct instance *);
int	 cgroup_parse_cpu_stat(const char *, uint64_t *);
int	 cgroup_parse_mountinfo(const char *, char **, char **);
char	*cgroup_parse_own(const char *);
char	*cgroup_parse_base(const char *, const char *, const char *);
void	 cgroup_sample(const struct instance *, struct metrics *, int final);
void	 cgroup_shutdown(void);
int	 cgroup_parse_key(const char *, const char *, uint64_t *);
uint64_t cgroup_oom_kills(const struct instance *);
const char *cgroup_base_dir(void);
int	 cgroup_watch(struct instance *, const char *,
	    void (*)(struct instance *));
void	 cgroup_unwatch(struct instance *);
/* cgroup-freeze.c: the freezer, for suspend.c. */
int	 cgroup_name(const struct instance *, char *, size_t);
int	 cgroup_named(const char *, const char *, char *, size_t);
int	 cgroup_freeze(const char *, int);
int	 cgroup_frozen(const char *);

/* ---- suspend.c: a suspended instance's frozen tree and paused clocks. */

#define SUSPEND_TIMERS		2	/* hangup_t, watchdog_t (suspend.c's list) */
#define SUSPEND_FREEZE_MS	5000	/* for cgroup.events to say "frozen 1" */

/* suspend.c's per-instance state, embedded in struct instance. */
struct instance_suspend {
	char		 cgroup[64];	/* the frozen cgroup's name; "": SIGSTOP */
	double		 left[SUSPEND_TIMERS];	/* each timer's time left when
						   paused; -1: it was not running */
	unsigned	 freezing:1;	/* a reply waits for "frozen 1" */
	ev_timer	 freeze_t;	/* ... at most SUSPEND_FREEZE_MS */
};

/* How a wait for a freeze ended: e NULL, frozen; rolled_back: e is a
 * timeout and the instance runs again (nobody else says so). */
typedef void (*suspend_done_fn)(struct instance *, const struct ward_err *e,
    int rolled_back);

void	 suspend_init(suspend_done_fn);
int	 suspend_start(struct instance *, struct ward_err *);
int	 suspend_end(struct instance *, struct ward_err *);
void	 suspend_thaw(struct instance *);
void	 suspend_release(struct instance *);
int	 suspend_watchdog(struct instance *);
int	 suspend_frozen(const struct instance *);
void	 suspend_state_save(msgpack_packer *, const struct instance *);
void	 suspend_state_restore(const msgpack_object *, struct instance *);

/* ---- instance.c: one supervised payload and its state machine. */

enum instance_state {
	INSTANCE_NOT_STARTED,	/* created, never spawned */
	INSTANCE_RUNNING,	/* spawned; its pidfd is watched */
	INSTANCE_DEAD,		/* exited and reaped; exit record filled */
	INSTANCE_FAILED		/* the spawn itself failed */
};

struct metrics {
	uint64_t	 cpu_user_ms;
	uint64_t	 cpu_system_ms;
	uint64_t	 cpu_guest_ms;
	uint64_t	 rss_kb;
	uint64_t	 rss_max_kb;
	uint64_t	 pss_kb;
	uint64_t	 mapping_rss_kb;	/* mappings named by rss_mapping */
	uint64_t	 mapping_rss_max_kb;
	double		 cpu_percent;		/* over the last interval */
	uint64_t	 last_cpu_ms;		/* for cpu_percent */
	ev_tstamp	 last_at;
	/* cgroup.c: the instance's whole tree, from its cgroup; nil unless has_. */
	uint64_t	 cgroup_memory_kb;	/* memory.current */
	uint64_t	 cgroup_cpu_usage_ms;	/* cpu.stat usage_usec */
	unsigned	 samples;		/* beside the bits: no padding */
	unsigned	 has_cgroup_memory:1;
	unsigned	 has_cgroup_cpu:1;
};

/* How a run ended: kept with the instance and copied into history. */
struct exit_record {
	int		 refs;		/* instance and history */
	int		 in_history;	/* a copy of one there (history_run_ended) */
	uint64_t	 id;
	char		*name;
	uid_t		 owner_uid;
	int		 exited;	/* exit_code is valid */
	int		 exit_code;
	int		 exit_signal;	/* 0: not killed by a signal */
	int		 core_dumped;
	int		 exit_status_lost;	/* wardd could not learn it
					   (SUPERVISOR_LOST: instance-adopt.c) */
	char		 death_reason[REASON_MAX + 1];
	char		*failure_reason;	/* pipe text that named no reason */
	char		*failure_info;		/* the info after NAME| */
	size_t		 failure_discarded;	/* bytes past the 50,000 kept */
	char		*dump_dir;
	int64_t		 started_at_ms;
	int64_t		 died_at_ms;
	uint64_t	 uptime_ms;
	struct metrics	 metrics;
	uint64_t	 run;		/* the instance's runs: 1, 2, ... (0: not known) */
	enum killed_by	 killed_by;	/* who ended it (NONE: nobody said) */
	uid_t		 killed_by_uid;	/* KILLED_BY_KILL: the client's uid */
	/* hooks.c's post_death: "" none, "running", then how it ended
	   ("exited", "signaled", "timeout", "failed"). */
	char		 post_death[12];
	int		 post_death_code;	/* "exited" */
	int		 post_death_signal;	/* "signaled", "timeout" */
};

/* The pairs exit_record_pack adds to a status map (whole: 7 more). */
#define EXIT_RECORD_PAIRS	15

#define FAILURE_MAX	50000
#define STATUS_MAX	256
/* i's status text, "" when it has none. */
#define INSTANCE_STATUS_TEXT(i) \
	((i)->status_text != NULL ? (i)->status_text : "")
#define NOTIFY_LINE_MAX	4096
#define STOP_TIMEOUT_MS	5000
#define HANGUP_TIMEOUT_MS	30000
#define HANGUP_TIMEOUT_NESTED_MS 300000

/*
 * spawn.c's: what a child whose setup failed writes on its status pipe
 * before it exits 127; nothing (EOF) once it exec'd.
 */
struct spawn_report {
	int32_t	 step;		/* which step failed (spawn.c's spawn_steps) */
	int32_t	 err;		/* its errno */
	int32_t	 arg;		/* the step's detail: rlimits' RLIMIT_* */
};

struct instance {
	uint64_t		 id;
	struct instance_spec	 spec;	/* what it runs (spec.c checked it) */
	enum instance_state	 state;
	enum payload_state	 payload;
	int			 suspended;
	char			*status_text;	/* STATUS=, at most STATUS_MAX bytes;
						   NULL: none (an idle instance
						   holds no room for it) */

	struct program		*program;	/* declared in the config, or NULL
						   (program.c's to set and clear) */
	int			 stop_requested; /* instance.stop: no restart */
	int			 stop_signal;	/* instance_stop's first signal */
	uint32_t		 stop_timeout_ms; /* instance_stop_all's grace */
	uid_t			 owner_uid;	/* the requester; sees and touches it */
	size_t			 fds_held;	/* cfg.fds counted in its fd budget */
	gid_t			 owner_gid;
	gid_t			*groups;	/* supplementary groups to run with */
	int			 ngroups;
	pid_t			 requester_pid;
	int			 run_as_owner;	/* wardd switches to owner's ids */

	uint64_t		 runs;		/* spawns so far (state.c's fd tags) */
	int64_t			 created_at_ms;
	int64_t			 started_at_ms;
	ev_tstamp		 started_mono;

	pid_t			 pid;		/* valid only while RUNNING */
	uint64_t		 start_time;	/* pid's, /proc/PID/stat field 22:
						   what adoption checks */
	int			 not_child;	/* adopted after a crash: not
						   wardd's child (instance-adopt.c) */
	int			 pidfd;
	ev_io			 pidfd_w;	/* readable once the child exits */
	/* fd 3: the child's own socket, connected to channel.c's shared one,
	 * known by its autobound address (chan_addr). failure_fd is only a
	 * pipe an older wardd made, read back from its state. */
	char			 chan_addr[8];
	uint8_t			 chan_addr_len;
	unsigned		 chan_indexed:1;	/* channel.c's by address */
	unsigned		 pid_indexed:1;	/* channel.c's by pid (NOTIFY_SOCKET) */
	uint16_t		 fds_counted;	/* capacity.c's: held while it runs */
	int			 failure_fd;
	ev_io			 failure_w;
	int			 notify_fd;	/* wardd's end of the child's fd 4 */
	ev_io			 notify_w;
	/* A forked child's status pipe (spawn.c): EOF once it exec'd, else a report. */
	int			 spawn_fd;
	ev_io			 spawn_w;
	struct spawn_report	 spawn_report;	/* what it said, if it failed */
	size_t			 spawn_got;	/* bytes of spawn_report read */
	ev_timer		 hangup_t;	/* boot deadline (detect_hangup) */
	ev_timer		 stop_t;	/* SIGTERM sent; SIGKILL when it fires */
	ev_timer		 watchdog_t;	/* no WATCHDOG=1 in time: SIGKILL */
	int			 sd_fd;		/* an older wardd's NOTIFY_SOCKET of its
						   own, read back from its state */
	ev_io			 sd_w;
	uint64_t		 sd_dropped;	/* datagrams refused */
	char			*failure_note;	/* ERRNO=/EXIT_STATUS=, or why wardd stopped it */
	enum killed_by		 killed_by;	/* wardd's own reason to kill it */
	int			 kill_signal;	/* instance.kill's last signal, */
	uid_t			 kill_uid;	/* its sender, */
	uint64_t		 kill_run;	/* in that run (exit_killed_by) */

	char			*failure;	/* first FAILURE_MAX bytes of fd 3 */
	size_t			 failure_len;
	size_t			 failure_discarded;
	char			*notify_line;	/* partial line from fd 4 */
	size_t			 notify_len;
	int			 notify_skipping;	/* inside an overlong line */
	uint64_t		 notify_dropped;

	char			*runtime_dir;
	struct metrics		 metrics;
	struct metrics_smaps	*smaps;		/* metrics.c's: a smaps read under way */
	struct exit_record	*exit;		/* set once DEAD */
	struct output		*output;	/* output.c's; NULL unless captured */
	struct instance_cgroup	 cgroup;	/* cgroup.c's; made: it has one */
	struct instance_suspend	 suspend;	/* suspend.c's; while suspended */

	struct table_node	 by_id;
	struct table_node	 by_name;
	struct table_node	 by_chan;	/* channel.c's: fd 3's address */
	struct table_node	 by_pid;	/* channel.c's: NOTIFY_SOCKET senders */
	TAILQ_ENTRY(instance)	 entry;		/* all instances, by id */
	LIST_ENTRY(instance)	 running_entry;	/* running ones */
	TAILQ_ENTRY(instance)	 metrics_entry;	/* metrics.c's: its sampling order */
	struct hooks		*hooks;		/* hooks.c's: its side processes */
};
TAILQ_HEAD(instance_list, instance);
LIST_HEAD(instance_running_list, instance);
extern struct instance_list instances;
extern struct instance_running_list instances_running;
extern unsigned instances_running_count;

struct instance_stats {
	uint64_t	 created;
	uint64_t	 started;
	uint64_t	 died;
	uint64_t	 spawn_failed;
	uint64_t	 removed;
};
extern struct instance_stats instance_stats;

void	 instance_observe(instance_observer_fn);
void	 instance_announce(struct instance *, enum instance_event);
void	 instance_init(void);
int	 instance_may_create(const struct peer *, struct ward_err *);
struct instance *instance_new(struct instance_spec *, const struct peer *,
	    struct ward_err *);
struct instance *instance_find_id(uint64_t);
struct instance *instance_find_name(const char *);
int	 instance_can_start(const struct instance *, struct ward_err *);
int	 instance_start(struct instance *, struct ward_err *);
int	 instance_signal(struct instance *, int, int group);
int	 instance_stop(struct instance *, unsigned);
int	 instance_set_payload(struct instance *, enum payload_state,
	    struct ward_err *);
void	 instance_notify_line(struct instance *, const char *, size_t);
void	 instance_remove(struct instance *);
void	 instance_stop_all(int sig);
void	 instance_free_all(void);
void	 instance_fds(const struct instance *, fd_visit_fn, void *);
const char *instance_state_name(enum instance_state);
void	 instance_adopt(struct instance *);
void	 instance_died(struct instance *, struct exit_record *, int);
/* hooks.c's gate before a spawn: 0 go on, 1 deferred (it starts i again
 * once pre_start is done), -1 failed (e set). NULL: no gate. */
extern int (*instance_pre_start)(struct instance *, struct ward_err *);

/* ---- hooks.c: pre_start, post_death and sidecars, run and supervised. */

void	 hooks_init(void);
void	 hooks_instance_cb(struct instance *, enum instance_event);
int	 hooks_starting(const struct instance *);
int	 hooks_cancel_start(struct instance *);
void	 hooks_fds(const struct instance *, fd_visit_fn, void *);
void	 hooks_orphan_fds(fd_visit_fn, void *);
void	 hooks_state_save(msgpack_packer *, const struct instance *);
void	 hooks_state_restore(const msgpack_object *, struct instance *);

/* ---- instance-adopt.c: instances that outlived a crashed wardd. */

uint64_t instance_adopt_start_time(pid_t);
const char *instance_adopt_boot_id(void);
void	 instance_adopt_cb(struct instance *, enum instance_event);
void	 instance_adopt_watch(struct instance *);
void	 instance_adopt_orphans(void);
int	 instance_adopt_recover(struct instance *, int);

/* ---- instance-state.c, spec-state.c: an instance across a re-exec. */

void	 instance_state_save(msgpack_packer *, struct instance *);
struct instance *instance_state_restore(const msgpack_object *);
void	 spec_state_save(msgpack_packer *, const struct instance_spec *);
int	 spec_state_restore(const msgpack_object *, struct instance_spec *);

/* ---- exit.c: the exit record, the metrics map, the failure pipe. */

void	 metrics_pack(const struct metrics *, msgpack_packer *);
#define EXIT_TEXT_MAX	(3 * FAILURE_MAX)	/* failure_*: utf8_clean's worst */

void	 exit_record_pack(const struct exit_record *, msgpack_packer *, int);
struct exit_record *exit_record_unpack(const msgpack_object *);
void	 exit_record_unref(struct exit_record *);
void	 exit_failure_drain(struct instance *);
void	 exit_failure_add(struct instance *, const char *, size_t, size_t);
char	*exit_collect_dumps(const struct instance *);
void	 exit_killed_by(const struct instance *, struct exit_record *);

/* ---- program.c: a declared program's state machine (restart policy,
 * start order); every change through program_step. */

enum program_state {
	PROGRAM_NAME_HELD,	/* declared, no instance: one that is no
				   program's holds its name (name_holder) */
	PROGRAM_STOPPED,	/* not running, not meant to (autostart=false,
				   stopped, or its stop was called off) */
	PROGRAM_WAITING,	/* meant to run; waits for its after/requires */
	PROGRAM_STARTING,	/* its instance runs, not ready yet (startsecs
				   or READY=1 to come); "running" to clients */
	PROGRAM_RUNNING,	/* its instance runs and is ready */
	PROGRAM_BACKOFF,	/* died; a restart is scheduled (backoff_t) */
	PROGRAM_EXITED,		/* died; its policy says it stays down */
	PROGRAM_FATAL		/* gave up: restarts too fast, or a requirement
				   did, or its instance could not be made */
};

/* What happens to a program: program_step's input. */
enum program_event {
	PROGRAM_EV_WANT,	/* start it (autostart, pulled in by what
				   requires it): spawn, or WAITING */
	PROGRAM_EV_START,	/* wardctl start: forget failures, then WANT */
	PROGRAM_EV_DEPS_READY,	/* WAITING: its after/requires are ready */
	PROGRAM_EV_STARTED,	/* its instance runs: startsecs counts */
	PROGRAM_EV_READY,	/* startsecs passed, or READY=1 */
	PROGRAM_EV_DIED,	/* its instance died (or failed to spawn): the
				   policy decides BACKOFF, EXITED or FATAL */
	PROGRAM_EV_BACKOFF_DONE, /* backoff_t fired: WANT again */
	PROGRAM_EV_STOP,	/* wardctl stop while BACKOFF or WAITING: the
				   pending start is called off */
	PROGRAM_EV_DEP_FATAL,	/* a program it requires went FATAL
				   (fatal_reason names it) */
	PROGRAM_EV_REPLACE,	/* update changed it, or declared it again
				   while its removal was pending (next_conf):
				   stop, and restart with the new config at
				   its death */
	PROGRAM_EV_REMOVE,	/* update removed it: stop, then forget it */
	PROGRAM_EV_NAME_FREED,	/* NAME_HELD: the holder of its name is gone */
	PROGRAM_EV_APPLY	/* apply_t: do what REPLACE, REMOVE or
				   NAME_FREED deferred (p may be freed) */
};

struct program {
	struct conf_program	*conf;		/* owned; what it was declared as */
	enum program_state	 state;		/* program_step's to change */
	struct instance		*inst;		/* runs it; NULL in NAME_HELD, in
						 * FATAL if it could not be made */
	uint64_t		 name_holder;	/* id of the instance with its name
						 * when it was declared; 0: none */
	unsigned		 attempt;	/* backoff doublings so far */
	ev_tstamp		*restarts;	/* recent restart times, a ring */
	size_t			 nrestarts;
	size_t			 restarts_head;
	uint64_t		 restart_count;
	char			*fatal_reason;
	/* An update waiting for the running instance's death (data, not
	 * state: until then the program runs on as it was). */
	struct conf_program	*next_conf;	/* REPLACE: the config to apply */
	int			 removing;	/* REMOVE: forget it */
	ev_timer		 backoff_t;	/* BACKOFF: when to start again */
	ev_timer		 startsecs_t;	/* STARTING: running long enough */
	ev_timer		 apply_t;	/* deferred replace/remove/create */
	struct table_node	 by_name;
	TAILQ_ENTRY(program)	 entry;
};
TAILQ_HEAD(program_list, program);
extern struct program_list programs;

void	 program_init(void);
struct program *program_find(const char *);
struct program *program_new(struct conf_program *);
void	 program_step(struct program *, enum program_event);
void	 program_instance_cb(struct instance *, enum instance_event);
int	 program_start(struct program *, struct ward_err *);
int	 program_cancel(struct program *);
const char *program_state_name(enum program_state);
void	 program_pack(const struct program *, msgpack_packer *);
void	 program_adopt(struct program *);
void	 program_state_save(msgpack_packer *, struct program *);
struct program *program_state_restore(const msgpack_object *);

/* ---- reload.c: reread and update, the config dir against what runs. */

int	 reload_load(const char *);
void	 reload_reread(const char *, msgpack_packer *);
int	 reload_update(const char *, msgpack_packer *);

/* ---- history.c: the last exit records of each owner, for instance.history. */

#define HISTORY_MAX		1000	/* kept per owner uid */
#define HISTORY_TOTAL_MAX	(4 * HISTORY_MAX)	/* kept in all */
#define HISTORY_ALL		((uid_t)-1)	/* history_count: every uid */

void	 history_add(struct exit_record *);
struct exit_record *history_run_ended(uint64_t, int64_t);
void	 history_instance_cb(struct instance *, enum instance_event);
void	 history_pack(msgpack_packer *, const struct peer *, const char *,
	    uint64_t, size_t);
size_t	 history_count(uid_t);
void	 history_init(void);
void	 history_free(void);

/* ---- history-file.c: STATE_DIR/history, history.c's records on disk. */

void	 history_file_load(void (*)(struct exit_record *));
void	 history_file_append(const struct exit_record *);
int	 history_file_due(size_t);
int	 history_file_rewrite_begin(void);
void	 history_file_rewrite_add(const struct exit_record *);
void	 history_file_rewrite_end(void);
void	 history_file_close(void);
void	 history_file_fds(fd_visit_fn, void *);

/* ---- notify.c: what the notify stream (fd 4) and NOTIFY_SOCKET say. */

#define SDNOTIFY_MAX	4096	/* bytes in one datagram */

void	 notify_init(void (*)(struct instance *, const char *, size_t),
	    void (*)(struct instance *, const char *, size_t));
void	 notify_pipe_drain(struct instance *);
void	 notify_pipe_cb(struct ev_loop *, ev_io *, int);
void	 notify_sd_message(struct instance *, const char *, ssize_t, int);
int	 notify_sd_sender_ok(const struct instance *, pid_t);

/* ---- capacity.c: how many instances the open-files limit lets run. */

#define CAPACITY_PER_INSTANCE	2	/* pidfd, fd 4 stream (channel.c) */

void	 capacity_init(void);
int	 capacity_check(const struct instance *, struct ward_err *);
void	 capacity_started(struct instance *);
void	 capacity_stopped(struct instance *);
void	 capacity_hold(int);
void	 capacity_pack(msgpack_packer *, uint64_t);

/* ---- channel.c: fd 3 and NOTIFY_SOCKET, one socket each for every payload. */

struct channel_stats {
	uint64_t	 failure_dropped;	/* fd 3 datagrams of no instance */
	uint64_t	 notify_dropped;	/* NOTIFY_SOCKET: sender not placed */
};
extern struct channel_stats channel_stats;

void	 channel_init(void);
void	 channel_open(void);
void	 channel_close(void);
const char *channel_notify_path(void);
int	 channel_spawn(struct instance *, int *, int *, struct ward_err *);
void	 channel_adopt(struct instance *);
void	 channel_release(struct instance *);
void	 channel_drain(struct instance *);
void	 channel_save(msgpack_packer *);
void	 channel_restore(const msgpack_object *);
void	 channel_fds(fd_visit_fn, void *);

/* ---- clone3.c: clone3 on a stack of the child's own. */

#define CLONE3_VM		0x00000100ULL
#define CLONE3_FILES		0x00000400ULL
#define CLONE3_PIDFD		0x00001000ULL
#define CLONE3_VFORK		0x00004000ULL
#define CLONE3_CLEAR_SIGHAND	0x100000000ULL
#define CLONE3_INTO_CGROUP	0x200000000ULL

int	 clone3_usable(void);
int	 clone3_run(uint64_t, int, int *, int (*)(void *), void *, pid_t *);

/* ---- spawn-env.c: a child's environment. */

char	**spawn_environ(const struct instance *);

/* ---- spawn.c: turning a config into a running child. */

struct spawn_fds {
	int	 failure_w;	/* becomes fd 3 */
	int	 notify_w;	/* becomes fd 4 */
	int	 cgroup_dir;	/* -1, or the cgroup the child joins (cgroup.c) */
	int	 pidfd_out;	/* out: the child's pidfd, or -1 if the spawn made none */
};

pid_t	 spawn_child(const struct instance *, struct spawn_fds *, char **,
	    int *, struct ward_err *);
int	 spawn_uses_fork(const struct instance *);
void	 spawn_status_drain(struct instance *);
void	 spawn_status_cb(struct ev_loop *, ev_io *, int);
void	 spawn_report_message(const struct instance *, const struct spawn_report *,
	    struct ward_err *);
int	 spawn_ids(const struct instance *, uid_t *, gid_t *);
int	 spawn_pidfd_open(pid_t);
int	 spawn_pidfd_signal(int, pid_t, int, int);
void	 spawn_fds(fd_visit_fn, void *);

/* ---- sys.c: the OS calls of the instance state machine, behind one seam. */

struct sys_ops {
	pid_t	(*spawn)(const struct instance *, struct spawn_fds *,
		    char **, int *, struct ward_err *);	/* spawn_child */
	int	(*pidfd_open)(pid_t);
	int	(*signal)(int, pid_t, int, int);	/* spawn_pidfd_signal */
	int	(*reap)(int, siginfo_t *);	/* waitid(P_PIDFD, WNOHANG) */
	void	(*kill_unreaped)(pid_t);	/* SIGKILL and reap, by pid */
	/* /proc/PID/file into buf (NUL-terminated): metrics.c's reads. */
	ssize_t	(*proc_read)(pid_t, const char *, char *, size_t);
	/* A file of the instance's cgroup into buf: -1 without one. */
	ssize_t	(*cgroup_read)(const struct instance *, const char *, char *,
		    size_t);
};

extern const struct sys_ops *sys;

/* ---- metrics.c: sampling /proc for running instances. */

struct proc_stat {
	uint64_t	 utime_ticks;
	uint64_t	 stime_ticks;
	uint64_t	 rss_pages;	/* field 24, what statm's second says */
	uint64_t	 guest_ticks;
	int		 has_rss;
	char		 state;		/* field 3: R, S, D, Z (zombie), ... */
};

#define METRICS_PER_TICK	32	/* instances sampled per timer tick, at most */

void	 metrics_init(void);
ev_timer *metrics_timer(void);
void	 metrics_fds(const struct instance *, fd_visit_fn, void *);
void	 metrics_set_interval(void);
void	 metrics_instance_cb(struct instance *, enum instance_event);
int	 metrics_parse_stat(const char *, struct proc_stat *);
int	 metrics_parse_rollup(const char *, uint64_t *);
uint64_t metrics_parse_smaps_mapping(const char *, const char *);
int	 metrics_sample(struct instance *, int full);
extern uint64_t metrics_ticks;

/* ---- event.c: telling subscribers what happened. */

enum event_type {
	EVENT_CREATED,
	EVENT_STARTED,
	EVENT_PAYLOAD,
	EVENT_METRICS,
	EVENT_DIED,
	EVENT_REMOVED,
	EVENT_RESTARTING,	/* a program's restart is scheduled */
	EVENT_FATAL,		/* a program gave up */
	EVENT_COUNT
};
#define EVENT_DEFAULT_MASK \
	(((1U << EVENT_COUNT) - 1) & ~(1U << EVENT_METRICS))

#define EVENT_IDS_MAX	65536	/* 'ids' in one events.subscribe */

extern unsigned event_metrics_subscribers;
extern unsigned event_subscribers;

int	 event_type_parse(const char *);
void	 event_emit(enum event_type, const struct instance *);
int	 event_subscribe(struct conn *, uint32_t, uint64_t *, size_t);
void	 event_unsubscribe(struct conn *);
void	 event_instance_cb(struct instance *, enum instance_event);
void	 event_save(msgpack_packer *);
void	 event_restore(const msgpack_object *, size_t);

/* ---- control.c: instance.call, relayed over the payload's control socket. */

#define WARD_CONTROL_NAME	"control"	/* in the runtime dir */
#define CONTROL_MSG_MAX		WARD_MAX_REQUEST /* a request or a reply */
#define CONTROL_CALLS_MAX	64		/* pending per instance */
#define CONTROL_TIMEOUT_MS	5000		/* timeout_ms's default */
#define CONTROL_TIMEOUT_MAX_MS	60000

/* How a call is answered: code NULL and obj the result, or an error code,
 * its message and obj the payload's own error object (or NULL). */
typedef void (*control_reply_fn)(struct conn *, uint32_t, const char *,
	    const char *, const msgpack_object *);

int	 control_call(struct instance *, struct conn *, uint32_t, uid_t,
	    const msgpack_object *, const msgpack_object *, uint32_t,
	    control_reply_fn, struct ward_err *);
void	 control_instance_cb(struct instance *, enum instance_event);
void	 control_shutdown(const char *);
void	 control_fds(const struct instance *, fd_visit_fn, void *);

/* ---- output*.c: capturing instances' stdout and stderr. */

enum {
	OUTPUT_STDOUT,		/* the child's fd 1 */
	OUTPUT_STDERR,		/* the child's fd 2 */
	OUTPUT_NSTREAMS
};

/* What instance.create asked for; instance_spec.output is NULL unless captured. */
struct output_config {
	char		*logfile[OUTPUT_NSTREAMS];	/* absolute paths, or NULL */
	int		 journal;	/* stdout_journal: each line to the journal */
	int		 drop;		/* log_overflow "drop" (else "block") */
	uint32_t	 ring_bytes;	/* log_ring_bytes: kept for instance.log */
	uint32_t	 rate_lines;	/* log_rate_lines: drop mode's lines/second */
	uint32_t	 backups;	/* logfile_backups */
	uint64_t	 maxbytes;	/* logfile_maxbytes; 0: never rotate */
	int		 redirect_stderr; /* fd 2 is stdout's pipe (one stream,
					   in order, as supervisord's) */
};

#define OUTPUT_RING_DEFAULT	(64 * 1024)
#define OUTPUT_RING_MAX		(16 * 1024 * 1024)
#define OUTPUT_RING_USER_MAX	(1024 * 1024)	/* for non-admins */
#define OUTPUT_MAXBYTES_DEFAULT	(50ULL * 1024 * 1024)
#define OUTPUT_BACKUPS_DEFAULT	10
#define OUTPUT_BACKUPS_MAX	1000
#define OUTPUT_RATE_DEFAULT	10000
#define OUTPUT_RATE_MAX		10000000
#define OUTPUT_READ_MAX		(1024 * 1024)	/* instance.log returns at most */
#define OUTPUT_PACK_FIELDS	2		/* output_pack's status pairs */

/* The keys output_config_parse reads: spec_args's, from capture_output on. */
enum {
	OUTPUT_ARG_CAPTURE,
	OUTPUT_ARG_STDOUT_LOGFILE,
	OUTPUT_ARG_STDERR_LOGFILE,
	OUTPUT_ARG_JOURNAL,
	OUTPUT_ARG_RING_BYTES,
	OUTPUT_ARG_MAXBYTES,
	OUTPUT_ARG_BACKUPS,
	OUTPUT_ARG_OVERFLOW,
	OUTPUT_ARG_RATE_LINES,
	OUTPUT_ARG_REDIRECT_STDERR,
	OUTPUT_ARG_NUM
};

/* output-spec.c: instance.create's output keys, the streams' names. */
int	 output_config_parse(struct output_config **, const msgpack_object **,
	    int, struct ward_err *);
void	 output_config_free(struct output_config *);
int	 output_stream_parse(const char *);
const char *output_stream_name(int);

/* output-file.c: the log files, reopened for logrotate. */
unsigned output_reopen_all(unsigned *);

/* output.c: the capturing (its sinks: output-file.c, output-journal.c,
   output-follow.c). */
int	 output_reserve(struct instance *, struct ward_err *);
int	 output_spawn_prepare(struct instance *, struct ward_err *);
void	 output_spawn_done(struct instance *, int);
void	 output_child_died(struct instance *);
void	 output_free(struct instance *);
char	*output_tail(const struct instance *, int, size_t);
uint64_t output_dropped(const struct instance *, int);
int	 output_follow(struct conn *, struct instance *, int, int,
	    struct ward_err *);
void	 output_unfollow(struct conn *, struct instance *, int);
void	 output_pack(const struct instance *, msgpack_packer *);
int	 output_capturing(const struct instance *);
void	 output_fds(const struct instance *, fd_visit_fn, void *);
void	 output_journal_fds(fd_visit_fn, void *);
void	 output_state_save(msgpack_packer *, const struct instance *);
int	 output_state_restore(const msgpack_object *, struct instance *);

/* ---- http.c: --metrics-listen, GET /metrics on the loop. */

/* The body of a scrape: malloc'd text of *len bytes, or NULL (a 500);
 * openmetrics: the client asked for OpenMetrics, else the 0.0.4 text. */
typedef char *(*http_body_fn)(int openmetrics, size_t *len);

struct http_stats {
	uint64_t	 accepted;	/* connections taken */
	uint64_t	 refused;	/* over HTTP_CONNS: 503 and closed */
	uint64_t	 requests;	/* whole request heads */
	uint64_t	 scrapes;	/* answered 200 */
	uint64_t	 errors;	/* answered 4xx or 5xx */
	uint64_t	 timeouts;	/* closed by their deadline */
};
extern struct http_stats http_stats;

void	 http_init(http_body_fn);
int	 http_check(const char *, struct ward_err *);
int	 http_open(const char *, struct ward_err *);
int	 http_listening(void);
void	 http_close(void);
void	 http_fds(fd_visit_fn, void *);
void	 http_save(msgpack_packer *);
void	 http_restore(const msgpack_object *);
/* --http-listen's other paths (statuspage.c): a request and its answers. */
struct http_conn;
struct http_request {
	const char	*path;		/* the target before any '?' */
	const char	*query;		/* after the '?', or "" */
	const char	*authorization;	/* the header's value, or "" */
	int		 head_only;	/* HEAD: the answer has no body */
};
typedef void (*http_route_fn)(struct http_conn *, const struct http_request *);
typedef void (*http_gone_fn)(void *);
void	 http_route(http_route_fn);
void	 http_reply(struct http_conn *, const char *, const char *, const char *,
	    char *, size_t, int);
void	 http_error(struct http_conn *, const char *, const char *, int);
int	 http_stream(struct http_conn *, http_gone_fn, void *);
int	 http_stream_send(struct http_conn *, const char *, size_t);

/* ---- openmetrics.c: ward.metrics and GET /metrics, the text exposition. */

#define OPENMETRICS_REASONS	256	/* death reasons counted apart */

struct openmetrics_text {
	char		*data;		/* malloc'd, NUL-terminated */
	size_t		 len;
	size_t		 cap;
	int		 failed;	/* out of memory: data is cut */
};

void	 openmetrics_build(struct openmetrics_text *, const struct peer *, int);
char	*openmetrics_http_body(int, size_t *);
size_t	 openmetrics_escape(char *, size_t, const char *);
void	 openmetrics_instance_cb(struct instance *, enum instance_event);
void	 openmetrics_save(msgpack_packer *);
void	 openmetrics_restore(const msgpack_object *);
extern uint64_t cmd_requests;		/* cmd.c: requests dispatched */
extern uint64_t server_accepted;	/* server.c: connections accepted */
extern uint64_t event_overflows;	/* event.c: subscribers dropped */

/* ---- statuspage.c: --http-listen's status page, events and log tails. */
int	 statuspage_auth_load(const char *, struct ward_err *);
void	 statuspage_init(void);
void	 statuspage_instance_cb(struct instance *, enum instance_event);

#endif
