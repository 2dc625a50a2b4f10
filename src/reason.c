/*
 * reason.c: the pure rules of the seed's instance model, kept apart from any
 * I/O so unit tests drive them directly: payload-state order, how a death is
 * classified, what the failure pipe and notify pipe carry, signal names.
 *
 * layer: base
 */
#include "config.h"

#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ward.h"

static const char *const payload_names[] = {
	[PAYLOAD_STARTING] = "starting",
	[PAYLOAD_STARTED] = "started",
	[PAYLOAD_READY] = "ready",
	[PAYLOAD_FINISHED] = "finished",
	[PAYLOAD_HANGUP] = "hangup",
};

const char *
payload_state_name(enum payload_state s)
{
	return payload_names[s];
}

int
payload_state_parse(const char *s, enum payload_state *out)
{
	size_t i;

	for (i = 0; i < sizeof payload_names / sizeof payload_names[0]; i++) {
		if (strcmp(s, payload_names[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	return -1;
}

/* Only forward moves, as the seed's update_payload_state; else invalid_state. */
int
payload_transition(enum payload_state from, enum payload_state to,
    struct ward_err *e)
{
	if (to > from)
		return 0;
	return ward_err_set(e, WARD_E_INVALID_STATE,
	    "invalid payload state transition from %s to %s",
	    payload_names[from], payload_names[to]);
}

/* ^[A-Z][A-Z0-9_]{0,63}$ */
int
reason_name_valid(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > REASON_MAX || !(s[0] >= 'A' && s[0] <= 'Z'))
		return 0;
	for (i = 1; i < n; i++) {
		if (!((s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	}
	return 1;
}

/*
 * Split what the payload wrote to its failure pipe. "NAME|info" with a valid
 * NAME gives name (into the REASON_MAX+1 buffer) and info; a bare NAME (the
 * whole text, trimmed at both ends, as the seed splits only at a '|' it
 * finds) gives name and an empty info; any other text is the free-form
 * failure reason. Trailing whitespace is trimmed. Outputs not set are left
 * NULL / empty; allocation failure loses only the text.
 */
void
reason_split_failure(const char *text, size_t len, char *name, char **info,
    char **free_text)
{
	const char *bar;
	size_t lead;

	name[0] = '\0';
	*info = NULL;
	*free_text = NULL;
	while (len > 0 && isspace((unsigned char)text[len - 1]))
		len--;
	if (len == 0)
		return;
	bar = memchr(text, '|', len);
	for (lead = 0; lead < len && isspace((unsigned char)text[lead]); lead++)
		;
	if (bar == NULL && reason_name_valid(text + lead, len - lead)) {
		memcpy(name, text + lead, len - lead);
		name[len - lead] = '\0';
		*info = strdup("");
		return;
	}
	if (bar != NULL && reason_name_valid(text, bar - text)) {
		memcpy(name, text, bar - text);
		name[bar - text] = '\0';
		*info = utf8_clean(bar + 1, len - (bar - text) - 1);
		return;
	}
	*free_text = utf8_clean(text, len);
}

/* The seed's crosvm exit codes, preloaded by profile "crosvm". */
static const struct exit_code_map crosvm_codes[] = {
	{ 1, "START_FAILED" },
	{ 32, "REBOOT" },
	{ 33, "CRASH" },
	{ 36, "WATCHDOG_REBOOT" },
};

/*
 * The death reason, in the order: the payload's own NAME, HANGUP when
 * wardd's boot timer killed it, WATCHDOG when the instance watchdog did,
 * OUT_OF_MEMORY when the OOM killer did (issue 13), then the exit status. map holds the instance's
 * exit_codes with the profile's table already merged under it.
 */
const char *
reason_classify(const char *pipe_reason, enum killed_by killed_by,
    int waitid_failed, int exited, int code, const struct exit_code_map *map,
    size_t nmap)
{
	size_t i;

	if (pipe_reason != NULL && pipe_reason[0] != '\0')
		return pipe_reason;
	if (killed_by == KILLED_BY_HANGUP)
		return "HANGUP";
	if (killed_by == KILLED_BY_WATCHDOG)
		return "WATCHDOG";
	if (killed_by == KILLED_BY_DEPENDENCY)
		return "DEPENDENCY";
	if (killed_by == KILLED_BY_OOM)
		return "OUT_OF_MEMORY";
	if (waitid_failed)
		return "INFRASTRUCTURE_ERROR";
	if (!exited)
		return "KILLED";
	if (code == 0)
		return "SHUTDOWN";
	for (i = 0; i < nmap; i++) {
		if (map[i].code == code)
			return map[i].reason;
	}
	return "UNKNOWN";
}

static const char *const killed_by_names[] = {
	[KILLED_BY_NONE] = NULL,
	[KILLED_BY_HANGUP] = "hangup",
	[KILLED_BY_WATCHDOG] = "watchdog",
	[KILLED_BY_DEPENDENCY] = "dependency",
	[KILLED_BY_STOP] = "stop",
	[KILLED_BY_KILL] = "kill",
	[KILLED_BY_OOM] = "oom",
	[KILLED_BY_EXTERNAL] = "external",
};

/* An exit record's killed_by: NULL (nil) for KILLED_BY_NONE. */
const char *
killed_by_name(enum killed_by k)
{
	return k <= KILLED_BY_LAST ? killed_by_names[k] : NULL;
}

/* killed_by_name's inverse over n bytes; -1 for anything else. */
int
killed_by_parse(const char *s, size_t n, enum killed_by *out)
{
	size_t k;

	for (k = KILLED_BY_NONE + 1; k <= KILLED_BY_LAST; k++) {
		if (strlen(killed_by_names[k]) == n &&
		    memcmp(s, killed_by_names[k], n) == 0) {
			*out = k;
			return 0;
		}
	}
	return -1;
}

/* Preload the crosvm table for profile "crosvm" (lowest priority). */
size_t
reason_profile_codes(const char *profile, const struct exit_code_map **out)
{
	if (profile != NULL && strcmp(profile, "crosvm") == 0) {
		*out = crosvm_codes;
		return sizeof crosvm_codes / sizeof crosvm_codes[0];
	}
	*out = NULL;
	return 0;
}

static const struct {
	int		 sig;
	const char	*name;
} signals[] = {
	{ SIGHUP, "SIGHUP" }, { SIGINT, "SIGINT" }, { SIGQUIT, "SIGQUIT" },
	{ SIGILL, "SIGILL" }, { SIGTRAP, "SIGTRAP" }, { SIGABRT, "SIGABRT" },
	{ SIGBUS, "SIGBUS" }, { SIGFPE, "SIGFPE" }, { SIGKILL, "SIGKILL" },
	{ SIGUSR1, "SIGUSR1" }, { SIGSEGV, "SIGSEGV" }, { SIGUSR2, "SIGUSR2" },
	{ SIGPIPE, "SIGPIPE" }, { SIGALRM, "SIGALRM" }, { SIGTERM, "SIGTERM" },
	{ SIGSTKFLT, "SIGSTKFLT" }, { SIGCHLD, "SIGCHLD" }, { SIGCONT, "SIGCONT" },
	{ SIGSTOP, "SIGSTOP" }, { SIGTSTP, "SIGTSTP" }, { SIGTTIN, "SIGTTIN" },
	{ SIGTTOU, "SIGTTOU" }, { SIGURG, "SIGURG" }, { SIGXCPU, "SIGXCPU" },
	{ SIGXFSZ, "SIGXFSZ" }, { SIGVTALRM, "SIGVTALRM" }, { SIGPROF, "SIGPROF" },
	{ SIGWINCH, "SIGWINCH" }, { SIGIO, "SIGIO" }, { SIGPWR, "SIGPWR" },
	{ SIGSYS, "SIGSYS" },
};

/* "SIGTERM", or "SIGRTMIN+3"; a static buffer for the rare unnamed case. */
const char *
signal_name(int sig)
{
	static char buf[32];
	size_t i;

	for (i = 0; i < sizeof signals / sizeof signals[0]; i++) {
		if (signals[i].sig == sig)
			return signals[i].name;
	}
	if (sig >= SIGRTMIN && sig <= SIGRTMAX)
		snprintf(buf, sizeof buf, "SIGRTMIN+%d", sig - SIGRTMIN);
	else
		snprintf(buf, sizeof buf, "SIG%d", sig);
	return buf;
}

/*
 * "TERM", "SIGTERM", "sigterm", "15", or "SIG32" as signal_name calls the
 * signals it has no name for; -1 when it names no signal.
 */
int
signal_parse(const char *s)
{
	char up[32];
	size_t i;
	char *end;
	long n;

	if (strncasecmp(s, "SIG", 3) == 0 && s[3] >= '0' && s[3] <= '9')
		s += 3;
	if (s[0] >= '0' && s[0] <= '9') {
		n = strtol(s, &end, 10);
		if (*end != '\0' || n < 1 || n > SIGRTMAX)
			return -1;
		return n;
	}
	if (strlen(s) + 4 > sizeof up)
		return -1;
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	if (strncasecmp(s, "RTMIN+", 6) == 0 && s[6] >= '0' && s[6] <= '9') {
		n = strtol(s + 6, &end, 10);
		if (*end != '\0' || n > SIGRTMAX - SIGRTMIN)
			return -1;
		return SIGRTMIN + n;
	}
	snprintf(up, sizeof up, "SIG%s", s);
	for (i = 0; up[i] != '\0'; i++)
		up[i] = toupper((unsigned char)up[i]);
	for (i = 0; i < sizeof signals / sizeof signals[0]; i++) {
		if (strcmp(signals[i].name, up) == 0)
			return signals[i].sig;
	}
	return -1;
}

/*
 * One notify line (without its newline): READY=1, STATE=<payload state>,
 * STATUS=<text> or WATCHDOG=1 (or =trigger). Anything else is
 * NOTIFY_INVALID, which the caller counts.
 */
enum notify_kind
notify_parse(const char *line, size_t len, enum payload_state *state,
    const char **text, size_t *textlen)
{
	char word[16];

	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (memchr(line, '\0', len) != NULL)
		return NOTIFY_INVALID;
	if (len == 7 && memcmp(line, "READY=1", 7) == 0) {
		*state = PAYLOAD_READY;
		return NOTIFY_READY;
	}
	if (len > 6 && memcmp(line, "STATE=", 6) == 0 &&
	    len - 6 < sizeof word) {
		memcpy(word, line + 6, len - 6);
		word[len - 6] = '\0';
		if (payload_state_parse(word, state) == 0 &&
		    *state != PAYLOAD_STARTING && *state != PAYLOAD_HANGUP)
			return NOTIFY_STATE;
		return NOTIFY_INVALID;
	}
	if (len >= 7 && memcmp(line, "STATUS=", 7) == 0) {
		*text = line + 7;
		*textlen = len - 7;
		return NOTIFY_STATUS;
	}
	if ((len == 10 && memcmp(line, "WATCHDOG=1", 10) == 0) ||
	    (len == 16 && memcmp(line, "WATCHDOG=trigger", 16) == 0)) {
		*text = line + 9;
		*textlen = len - 9;
		return NOTIFY_WATCHDOG;
	}
	return NOTIFY_INVALID;
}

/*
 * One assignment of an sd_notify datagram (one of its lines): READY=1,
 * STATUS= and WATCHDOG= as notify_parse reads them on fd 4 (STATE= is
 * ward's own word, not systemd's), plus STOPPING=1 (NOTIFY_STOPPING, state
 * finished) and ERRNO= / EXIT_STATUS= (NOTIFY_FAILURE, text the whole
 * assignment, for notify_failure_note). Other words (MAINPID=, FDSTORE=1,
 * ...) are NOTIFY_IGNORED: not errors, just nothing ward acts on.
 */
enum notify_kind
notify_parse_sd(const char *p, size_t n, enum payload_state *state,
    const char **text, size_t *textlen)
{
	if (n == 10 && memcmp(p, "STOPPING=1", 10) == 0) {
		*state = PAYLOAD_FINISHED;
		return NOTIFY_STOPPING;
	}
	if ((n > 6 && memcmp(p, "ERRNO=", 6) == 0) ||
	    (n > 12 && memcmp(p, "EXIT_STATUS=", 12) == 0)) {
		*text = p;
		*textlen = n;
		return NOTIFY_FAILURE;
	}
	if ((n == 7 && memcmp(p, "READY=1", 7) == 0) ||
	    (n >= 7 && memcmp(p, "STATUS=", 7) == 0) ||
	    (n >= 9 && memcmp(p, "WATCHDOG=", 9) == 0))
		return notify_parse(p, n, state, text, textlen);
	return NOTIFY_IGNORED;
}

/*
 * What an ERRNO= or EXIT_STATUS= assignment leaves as the failure note of
 * the run: its first 100 bytes, ERRNO's meaning appended, as valid UTF-8.
 * NULL when out of memory.
 */
char *
notify_failure_note(const char *p, size_t n)
{
	char msg[128];
	int e;

	snprintf(msg, sizeof msg, "%.*s", (int)(n > 100 ? 100 : n), p);
	if (strncmp(msg, "ERRNO=", 6) == 0) {
		e = atoi(msg + 6);
		if (e > 0 && e < 4096)
			snprintf(msg + strlen(msg), sizeof msg - strlen(msg),
			    " (%s)", strerror(e));
	}
	return utf8_clean(msg, strlen(msg));
}

/*
 * A STATUS= text as an instance keeps it: at most STATUS_MAX bytes of valid
 * UTF-8 (bad bytes replaced, a character cut at the end dropped). NULL when
 * out of memory.
 */
char *
notify_status_text(const char *text, size_t tlen)
{
	char *clean;

	if ((clean = utf8_clean(text, tlen > STATUS_MAX ? STATUS_MAX :
	    tlen)) == NULL)
		return NULL;
	tlen = strlen(clean);
	while (tlen > STATUS_MAX || (tlen > 0 && !utf8_valid(clean, tlen)))
		tlen--;
	clean[tlen] = '\0';
	return clean;
}
