/*
 * clone3.c: starting a child with clone3 (Linux 5.3; CLONE_CLEAR_SIGHAND
 * 5.5, CLONE_INTO_CGROUP 5.7). One call makes the child, its pidfd (no
 * pidfd_open after), puts it in its cgroup (nothing for the child to
 * write) and gives it default handlers (no handler of wardd's can run in
 * it). glibc has no wrapper, and syscall() cannot be used with CLONE_VM:
 * its child would return through its parent's frames. So the child runs
 * fn(arg) on a stack of its own (clone3_stack, one: wardd spawns one
 * child at a time, and with CLONE_VFORK waits for it to exec) and exits
 * with fn's value. x86-64 only: elsewhere, on an older kernel, or built
 * with -DSPAWN_NO_CLONE3 (to test it), clone3_usable says no and spawn.c
 * uses fork and vfork. So too under AddressSanitizer: it keeps its own
 * account of each thread's stack, and a child running on a stack it does
 * not know raised false reports (a payload killed by SIGABRT, in CI): the
 * ASan build tests the fallback, the plain build clone3.
 *
 * layer: base (the OS call alone: spawn.c decides what the child gets)
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/syscall.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>

#include "ward.h"

#define CLONE3_STACK_SIZE	(64 * 1024)

#if defined(__SANITIZE_ADDRESS__) && !defined(SPAWN_NO_CLONE3)
#define SPAWN_NO_CLONE3	1	/* gcc's -fsanitize=address (see the top) */
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) && !defined(SPAWN_NO_CLONE3)
#define SPAWN_NO_CLONE3	1	/* clang's */
#endif
#endif

struct clone3_args {		/* linux/sched.h's struct clone_args, v2 */
	uint64_t	 flags;
	uint64_t	 pidfd;
	uint64_t	 child_tid;
	uint64_t	 parent_tid;
	uint64_t	 exit_signal;
	uint64_t	 stack;
	uint64_t	 stack_size;
	uint64_t	 tls;
	uint64_t	 set_tid;
	uint64_t	 set_tid_size;
	uint64_t	 cgroup;
};

#if defined(__x86_64__) && defined(SYS_clone3) && !defined(SPAWN_NO_CLONE3)
/* The pid, or -errno; the child calls fn(arg) and exits with its value. */
long	clone3_raw(struct clone3_args *, size_t, int (*)(void *), void *)
	    __attribute__((visibility("hidden")));
__asm__(
	".pushsection .text\n"
	".p2align 4\n"
	".type clone3_raw, @function\n"
	"clone3_raw:\n"
	"	mov %rdx, %r8\n"	/* fn and arg survive the syscall */
	"	mov %rcx, %r9\n"
	"	mov $435, %eax\n"	/* SYS_clone3 */
	"	syscall\n"
	"	test %rax, %rax\n"
	"	jnz 1f\n"
	"	xor %ebp, %ebp\n"	/* the child: a fresh stack, no frames */
	"	mov %r9, %rdi\n"
	"	call *%r8\n"
	"	mov %eax, %edi\n"
	"	mov $60, %eax\n"	/* SYS_exit */
	"	syscall\n"
	"	hlt\n"
	"1:	ret\n"
	".size clone3_raw, .-clone3_raw\n"
	".popsection\n");
static int clone3_ok = 1;	/* 0 once refused, or no stack */
#else
static int clone3_ok = 0;
#endif

static char *clone3_stack;	/* a guard page below it */

/* Whether clone3_run may be tried: the stack made at the first ask. */
int
clone3_usable(void)
{
	char *m;

	if (clone3_ok && clone3_stack == NULL) {
		m = mmap(NULL, CLONE3_STACK_SIZE + 4096, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
		if (m == MAP_FAILED || mprotect(m, 4096, PROT_NONE) == -1)
			clone3_ok = 0;
		else
			clone3_stack = m + 4096;
	}
	return clone3_ok;
}

/*
 * A child with flags (CLONE3_*; SIGCHLD at its exit), in cgroup (a
 * directory fd) with CLONE3_INTO_CGROUP, its pidfd in *pidfd: 0 and *pid,
 * or -1 with errno. A kernel without it (ENOSYS, EINVAL, E2BIG; EPERM: a
 * seccomp filter's answer) is not asked again: it is said once.
 */
int
clone3_run(uint64_t flags, int cgroup, int *pidfd, int (*fn)(void *),
    void *arg, pid_t *pid)
{
	struct clone3_args ca;
	long r = -ENOSYS;

	if (!clone3_usable()) {
		errno = ENOSYS;
		return -1;
	}
	memset(&ca, 0, sizeof ca);
	ca.flags = flags;
	ca.pidfd = (uintptr_t)pidfd;
	ca.exit_signal = SIGCHLD;
	ca.stack = (uintptr_t)clone3_stack;
	ca.stack_size = CLONE3_STACK_SIZE;
	if (flags & CLONE3_INTO_CGROUP)
		ca.cgroup = cgroup;
#if defined(__x86_64__) && defined(SYS_clone3) && !defined(SPAWN_NO_CLONE3)
	r = clone3_raw(&ca, sizeof ca, fn, arg);
#endif
	if (r >= 0) {
		*pid = r;
		return 0;
	}
	errno = -r;
	if (errno == ENOSYS || errno == EINVAL || errno == E2BIG ||
	    errno == EPERM) {
		log_info("clone3 refused (%s): children are started with "
		    "vfork or fork", strerror(errno));
		clone3_ok = 0;
	}
	return -1;
}
