/*
 * harness.h: what the libFuzzer harnesses of tests/fuzz/ share. Each
 * harness is one fuzz_NAME.c file linked with harness.c and wardd's own
 * modules (every src/ file but wardd.c, built with clang by build.sh), so
 * the code under test is the daemon's, not a copy.
 */
#ifndef WARD_FUZZ_HARNESS_H
#define WARD_FUZZ_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "ward.h"

struct sockaddr_un;

/* An invariant the code under test broke: report it and abort, so that
 * libFuzzer saves the input as a crash. */
#define harness_assert(cond, ...) do {					\
	if (!(cond))							\
		harness_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);	\
} while (0)

void	 harness_fail(const char *, int, const char *, const char *, ...)
	    printflike(4, 5) __attribute__((noreturn));
void	 harness_init(void);
const char *harness_sandbox(void);
int	 harness_count_fds(void);
void	 harness_check_fds(int);
ssize_t	 harness_send(int, const struct sockaddr_un *, const void *, size_t,
	    int);
int	 harness_write_file(const char *, const void *, size_t);
int	 harness_dir_empty(const char *);
int	 harness_reply_check(const char *, size_t, int);

#endif
