/*
 * ctl.h: what wardctl's files share. ctl.c owns main, the options and the
 * command table; ctl-output.c (printing) and ctl-conn.c (talking to wardd)
 * are the shared core every command calls; each ctl-*.c family file
 * defines the ctl_entry of its commands, as src/cmd-*.c do for wardd.
 * The layers: the core calls only libward and itself; a family file calls
 * the core, libward and ctl.c's few helpers below, never another family;
 * ctl.c knows the families only as entries in its table. The shell
 * (ctl-shell.c) is ctl.c's other front end: main starts it, and it runs
 * each line through ctl_dispatch.
 * wardctl reaches wardd only through libward's public ward.h.
 */
#ifndef CTL_H
#define CTL_H

#include <getopt.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "ward.h"

/* Exit statuses (0 is done); also what each command's exec returns. */
#define EX_REFUSED	1	/* the daemon refused; its message is printed */
#define EX_USAGE	2	/* the caller prints the command's usage */
#define EX_UNREACHABLE	3	/* wardd cannot be reached */

struct ctl {
	struct ward	*w;		/* NULL until the first call needs it */
	const char	*socket;	/* NULL: libward's default */
	int		 json;
	int		 color;
	int		 interactive;
	const struct ctl_word *words;	/* the call's keys as flags (ctl-words.c) */
	int		 unreachable;	/* set when wardd could not be reached */
};

/* One command of the table in ctl.c, for the command line and the shell. */
struct ctl_entry {
	const char	*name;
	const char	*usage;
	const char	*help;
	int		(*exec)(struct ctl *, int, char **);	/* args after the name */
};

/* ---- ctl.c: the table, dispatch, ^C */

extern const struct ctl_entry *const ctl_table[];	/* NULL-terminated */
extern volatile sig_atomic_t ctl_interrupted;

const struct ctl_entry *ctl_find(const char *);
int	 ctl_dispatch(struct ctl *, int, char **);
int	 ctl_usage_error(const char *, ...)
	    __attribute__((format(printf, 1, 2)));
void	 ctl_sigint_catch(struct sigaction *);
void	 ctl_sigint_restore(const struct sigaction *);
extern char **ctl_optargv;
int	 ctl_getopt(int, char **, const char *, const struct option *);
int	 ctl_optnames(int, char **);
int	 ctl_noopts(int, char **, int *);

/* ---- ctl-output.c: printing */

const char *ctl_c(struct ctl *, const char *);
#define C_RESET(c)	ctl_c(c, "\033[0m")
#define C_BOLD(c)	ctl_c(c, "\033[1m")
#define C_RED(c)	ctl_c(c, "\033[31m")
#define C_GREEN(c)	ctl_c(c, "\033[32m")
#define C_YELLOW(c)	ctl_c(c, "\033[33m")
#define C_DIM(c)	ctl_c(c, "\033[2m")

const char *ctl_size(uint64_t, char *, size_t);
const char *ctl_duration(uint64_t, char *, size_t);
size_t	 ctl_utf8_len(const unsigned char *, size_t);
const char *ctl_clean(const char *, char *, size_t);
#define CLEAN(s)	ctl_clean((s), (char[1024]){ 0 }, 1024)
void	 ctl_json(const msgpack_object *);
void	 ctl_json_line(const msgpack_object *);
int	 ctl_width(int, const char *);

/* ---- ctl-conn.c: talking to wardd */

int	 ctl_connect(struct ctl *);
int	 ctl_failed(struct ctl *, const char *);
int	 ctl_is_id(const char *);
void	 ctl_pack_ident(msgpack_packer *, const char *, size_t);
void	 ctl_pack_str(msgpack_packer *, const char *);
int	 ctl_call(struct ctl *, const char *, struct ward_params *,
	    const char *, struct ward_reply *);
int	 ctl_resolve(struct ctl *, int, char **, struct ward_status *);
void	 ctl_suggest_among(const char *, const struct ward_status *, size_t);
int	 ctl_conn_alive(struct ctl *);
int	 ctl_call_fds(struct ctl *, const char *, struct ward_params *,
	    const int *, size_t, const char *, struct ward_reply *);

/* ---- ctl-words.c: wardd's messages in the user's words */

struct ctl_word {
	const char	*key;		/* a protocol key */
	const char	*flag;		/* what the user typed for it */
};
const char *ctl_words_rewrite(const char *, const struct ctl_word *, char *,
	    size_t);

/* ---- ctl-names.c: NAME, GROUP:* and all, as supervisorctl reads them */

/* supervisorctl's statuses for what it reports per name (LSB's). */
#define EX_STATUS_STOPPED	3	/* status: not all running */
#define EX_STATUS_UNKNOWN	4	/* status: no such name, or no wardd */
#define EX_NOT_RUNNING		7	/* signal, pid: one is not running */

struct ctl_pick {
	const char		*arg;	/* as given (all: the instance's name) */
	struct ward_status	*s;	/* NULL: arg names none */
	int			 group;	/* arg is GROUP:* */
	int			 many;	/* GROUP:* or all: the instance is not
					   named itself (a result that does not
					   apply to it is left out) */
};

struct ctl_sel {
	struct ward_status	*all;	/* instance.list's answer */
	size_t			 nall;
	struct ctl_pick		*v;	/* per instance named, in order */
	size_t			 n;
	int			 json;	/* --json: stdout holds JSON only */
};

int	 ctl_select(struct ctl *, int, char **, struct ctl_sel *);
void	 ctl_select_free(struct ctl_sel *);
void	 ctl_select_missing(const struct ctl_sel *, const struct ctl_pick *);
int	 ctl_select_stopped(const struct ward_status *);

/* ---- ctl-shell.c */

int	 ctl_shell(struct ctl *);

/* ---- ctl-history.c: the shell's ~/.wardctl_history */

void	 ctl_history_load(const char *);
void	 ctl_history_add(const char *);

/* ---- the commands, in their family files */

extern const struct ctl_entry ctl_status_entry;		/* ctl-status.c */
extern const struct ctl_entry ctl_run_entry;		/* ctl-run.c */
extern const struct ctl_entry ctl_kill_entry, ctl_suspend_entry,
    ctl_resume_entry, ctl_remove_entry, ctl_payload_entry,
    ctl_history_entry;					/* ctl-instance.c */
extern const struct ctl_entry ctl_events_entry, ctl_tail_entry,
    ctl_logrotate_entry;				/* ctl-events.c */
extern const struct ctl_entry ctl_top_entry;		/* ctl-top.c */
extern const struct ctl_entry ctl_wait_entry;		/* ctl-wait.c */
extern const struct ctl_entry ctl_reread_entry, ctl_update_entry,
    ctl_info_entry, ctl_shutdown_entry, ctl_reexec_entry;			/* ctl-ward.c */
extern const struct ctl_entry ctl_metrics_entry;	/* ctl-ward.c */
extern const struct ctl_entry ctl_add_entry;		/* ctl-ward.c */
extern const struct ctl_entry ctl_call_entry;		/* ctl-control.c */
extern const struct ctl_entry ctl_start_entry, ctl_stop_entry,
    ctl_restart_entry, ctl_signal_entry, ctl_pid_entry;	/* ctl-group.c */
extern const struct ctl_entry ctl_avail_entry, ctl_version_entry,
    ctl_clear_entry, ctl_maintail_entry;		/* ctl-compat.c */
extern const struct ctl_entry ctl_fg_entry;		/* ctl-events.c */

#endif /* CTL_H */
