/*
 * fuzz_failure.c: what a payload writes to its fd 3 (failure text) and how
 * a death is classified from it. The input is a small header (how the
 * child ended, what killed it, its exit_codes) followed by the pipe's
 * bytes. Invariants:
 * - reason_split_failure gives a valid reason NAME with its info, or a
 *   free-form text, never both, and only valid UTF-8 without NUL;
 * - reason_classify always answers a valid reason name, the payload's own
 *   first when it gave one;
 * - payload_transition allows forward moves only, and says why not;
 * - signal_parse answers -1 or a signal number, and reads back what
 *   signal_name writes.
 * Pure functions only (reason.c): no I/O, nothing kept between inputs.
 */
#include "config.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* Reasons an exit_codes map may name (spec.c checks them as these are). */
static const char *const fuzz_failure_names[] = {
	"CRASH", "REBOOT", "START_FAILED", "WATCHDOG_REBOOT", "A", "Z9_",
	"MICRODROID_PAYLOAD_HAS_CHANGED",
};
#define FUZZ_FAILURE_NNAMES \
	(sizeof fuzz_failure_names / sizeof fuzz_failure_names[0])

static void
fuzz_failure_signals(const char *s)
{
	int sig = signal_parse(s);

	harness_assert(sig == -1 || (sig >= 1 && sig <= SIGRTMAX),
	    "signal_parse('%s') = %d", s, sig);
	if (sig != -1)
		harness_assert(signal_parse(signal_name(sig)) == sig,
		    "signal %d is named %s, which parses back as %d", sig,
		    signal_name(sig), signal_parse(signal_name(sig)));
}

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char num[16];
	int sig;

	harness_init();
	/* Every signal's name reads back as that signal. */
	for (sig = 1; sig <= SIGRTMAX; sig++) {
		harness_assert(signal_parse(signal_name(sig)) == sig,
		    "signal %d is named %s, which parses as %d", sig,
		    signal_name(sig), signal_parse(signal_name(sig)));
		snprintf(num, sizeof num, "%d", sig);
		harness_assert(signal_parse(num) == sig, "'%s' does not parse", num);
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct exit_code_map map[8 + 4];
	const struct exit_code_map *prof;
	struct ward_err err = WARD_ERR_INIT;
	char name[REASON_MAX + 1], *info, *text, *copy;
	const char *reason;
	enum payload_state from, to;
	size_t k, nmap = 0, nprof, len;
	int killed, waitid_failed, exited, code;

	if (size < 4 || size > 4 + FAILURE_MAX)
		return 0;
	killed = data[0] % (KILLED_BY_LAST + 1);
	waitid_failed = data[1] & 1;
	exited = data[1] & 2;
	code = data[2];
	from = (data[3] & 7) % (PAYLOAD_HANGUP + 1);
	to = (data[3] >> 3 & 7) % (PAYLOAD_HANGUP + 1);
	/* exit_codes: up to 8 pairs, as spec.c builds them, profile under. */
	for (k = 0; k < (size_t)(data[1] >> 4 & 7); k++) {
		map[nmap].code = (code + k * 31) & 0xff;
		strcpy(map[nmap].reason,
		    fuzz_failure_names[(data[2] + k) % FUZZ_FAILURE_NNAMES]);
		nmap++;
	}
	nprof = reason_profile_codes(data[1] & 8 ? "crosvm" : NULL, &prof);
	for (k = 0; k < nprof && nmap < sizeof map / sizeof map[0]; k++)
		map[nmap++] = prof[k];
	data += 4;
	size -= 4;

	/* A heap copy of exactly size bytes, as instance.c hands it over. */
	if ((copy = malloc(size + 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	reason_split_failure(copy, size, name, &info, &text);
	len = strlen(name);
	harness_assert(len == 0 || reason_name_valid(name, len),
	    "invalid reason name '%s'", name);
	harness_assert(len == 0 || text == NULL, "a NAME and a free text");
	harness_assert(len > 0 || info == NULL, "info without a NAME");
	harness_assert(info == NULL || utf8_valid(info, strlen(info)),
	    "info is not UTF-8");
	harness_assert(text == NULL || utf8_valid(text, strlen(text)),
	    "free text is not UTF-8");
	harness_assert(text == NULL || (text[0] != '\0' &&
	    strchr(" \t\n\v\f\r", text[strlen(text) - 1]) == NULL),
	    "free text is empty or ends in whitespace");
	reason = reason_classify(name, killed, waitid_failed, exited, code, map,
	    nmap);
	harness_assert(reason != NULL && reason_name_valid(reason, strlen(reason)),
	    "death reason '%s'", reason ? reason : "(null)");
	harness_assert(len == 0 || strcmp(reason, name) == 0,
	    "the payload said %s, the reason is %s", name, reason);
	free(info);
	free(text);

	err.msg[0] = '\0';
	if (payload_transition(from, to, &err) == 0)
		harness_assert(to > from, "%s -> %s allowed",
		    payload_state_name(from), payload_state_name(to));
	else
		harness_assert(to <= from && err.msg[0] != '\0',
		    "%s -> %s refused (%s)", payload_state_name(from),
		    payload_state_name(to), err.msg);
	harness_assert(payload_state_parse(payload_state_name(to), &from) == 0 &&
	    from == to, "payload state %d does not read back", (int)to);

	/* The text as a signal name or number (NUL ends it, as a C string). */
	copy[size] = '\0';
	fuzz_failure_signals(copy);
	free(copy);
	return 0;
}
