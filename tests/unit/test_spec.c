/*
 * test_spec.c: instance.create's arguments, from a real msgpack map
 * through codec_args(spec_args) into spec_parse_args, the way cmd.c
 * hands them over. Each test leaves cfg to the fixture's spec_free.
 */
#include "config.h"

#include <sys/stat.h>

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"
#include "unit.h"

struct wardd_opts opts;

static struct instance_spec cfg;
static struct ward_err e;	/* the last refusal */
static char tmpdir[64];		/* scratch directory, made once for all tests */

static void
setup(void)
{
	memset(&opts, 0, sizeof opts);
	memset(&cfg, 0, sizeof cfg);
	memset(&e, 0, sizeof e);
}

static void
teardown(void)
{
	spec_free(&cfg);
}

/* spec_parse_args on an unpacked params map (freeing the previous cfg). */
static const char *
parse_obj(int admin, const msgpack_object *params)
{
	const msgpack_object *args[ARG_MAX];
	struct peer peer;

	/* The peer is this test process, admin or not as asked. */
	memset(&peer, 0, sizeof peer);
	peer.uid = geteuid();
	peer.gid = getegid();
	peer.admin = admin;
	spec_free(&cfg);
	memset(&e, 0, sizeof e);
	ck_assert_msg(codec_args(params, spec_args, args, &e) == 0,
	    "codec_args refused the map: %s", e.msg);
	return spec_parse_args(&cfg, args, &peer, &e) == 0 ? NULL : e.code;
}

/* The same, for a params map described in unit_pack's format. */
static const char *
parse(int admin, const char *fmt, ...)
{
	struct unit_msg m;
	const char *r;
	va_list ap;

	va_start(ap, fmt);
	unit_msg_vobj(&m, fmt, ap);
	va_end(ap);
	r = parse_obj(admin, m.obj);
	unit_msg_free(&m);
	return r;
}

#define EXPECT_OK(call) do {						\
	const char *r_ = (call);					\
	ck_assert_msg(r_ == NULL, "refused (%s): %s", r_, e.msg);		\
} while (0)

#define EXPECT_ERR(call, code, needle) do {				\
	const char *r_ = (call);					\
	ck_assert_msg(r_ != NULL, "accepted, expected %s", (code));	\
	ck_assert_str_eq(r_, (code));					\
	ck_assert_msg(strstr(e.msg, (needle)) != NULL,			\
	    "error '%s' does not say '%s'", e.msg, (needle));		\
} while (0)

/*
 * The scratch directory holds an executable script, a file that is not
 * executable and a directory. It is made and removed in the parent process
 * (an unchecked fixture), so a failing test cannot leave it behind.
 */
static int
mkfile(const char *name, mode_t mode)
{
	char path[PATH_MAX];
	int fd, ok;

	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode)) == -1)
		return -1;
	ok = write(fd, "#!/bin/sh\nexit 0\n", 17) == 17;
	close(fd);
	return ok && chmod(path, mode) == 0 ? 0 : -1;
}

static void
tmpdir_setup(void)
{
	char path[PATH_MAX];

	strcpy(tmpdir, "/tmp/wardtest.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		goto fail;
	snprintf(path, sizeof path, "%s/wardtest-dir", tmpdir);
	if (mkfile("wardtest-prog", 0755) == -1 ||
	    mkfile("wardtest-noexec", 0644) == -1 || mkdir(path, 0755) == -1)
		goto fail;
	return;
fail:
	perror("test_config: scratch directory");
	exit(EXIT_FAILURE);
}

static void
tmpdir_teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "test_config: could not remove %s\n", tmpdir);
}

/* ---- argv */

START_TEST(minimal)
{
	EXPECT_OK(parse(0, "M s A s s s", 1, "argv", 3, "sh", "-c", "true"));
	ck_assert_ptr_null(cfg.name);
	ck_assert_str_eq(cfg.argv[0], "sh");
	ck_assert_str_eq(cfg.argv[1], "-c");
	ck_assert_str_eq(cfg.argv[2], "true");
	ck_assert_ptr_null(cfg.argv[3]);
	ck_assert_ptr_nonnull(cfg.exec_path);
	ck_assert_int_eq(cfg.exec_path[0], '/');
	ck_assert_int_eq(access(cfg.exec_path, X_OK), 0);
	ck_assert_ptr_null(cfg.env);
	ck_assert_ptr_null(cfg.cwd);
	ck_assert_int_eq(cfg.detect_hangup, 0);
	ck_assert_uint_eq(cfg.hangup_timeout_ms, HANGUP_TIMEOUT_MS);
	ck_assert_uint_eq(cfg.nexit_codes, 0);
	ck_assert_ptr_null(cfg.profile);
	ck_assert_ptr_null(cfg.rss_mapping);
	ck_assert_int_eq(cfg.has_user, 0);
}
END_TEST

START_TEST(argv_missing_or_empty)
{
	EXPECT_ERR(parse(0, "M", 0), WARD_E_INVALID_ARGUMENT, "argv");
	EXPECT_ERR(parse(0, "M s s", 1, "name", "vm"), WARD_E_INVALID_ARGUMENT,
	    "argv");
	EXPECT_ERR(parse(0, "M s n", 1, "argv"), WARD_E_INVALID_ARGUMENT,
	    "argv");
	EXPECT_ERR(parse(0, "M s A", 1, "argv", 0), WARD_E_INVALID_ARGUMENT,
	    "argv");
	EXPECT_ERR(parse(0, "M s A s", 1, "argv", 1, ""),
	    WARD_E_INVALID_ARGUMENT, "argv[0]");
}
END_TEST

START_TEST(argv_not_strings)
{
	const msgpack_object *args[ARG_MAX];
	struct unit_msg m;

	EXPECT_ERR(parse(0, "M s A s u", 1, "argv", 2, "sh", 5),
	    WARD_E_INVALID_ARGUMENT, "argv");
	EXPECT_ERR(parse(0, "M s A u", 1, "argv", 1, 5),
	    WARD_E_INVALID_ARGUMENT, "argv");
	EXPECT_ERR(parse(0, "M s A s n", 1, "argv", 2, "sh"),
	    WARD_E_INVALID_ARGUMENT, "argv");
	EXPECT_ERR(parse(0, "M s A s A", 1, "argv", 2, "sh", 0),
	    WARD_E_INVALID_ARGUMENT, "argv");
	/* NUL bytes cannot reach execve. */
	EXPECT_ERR(parse(0, "M s A S", 1, "argv", 1, "s\0h", (size_t)3),
	    WARD_E_INVALID_ARGUMENT, "NUL");
	EXPECT_ERR(parse(0, "M s A s S", 1, "argv", 2, "sh", "a\0b", (size_t)3),
	    WARD_E_INVALID_ARGUMENT, "NUL");
	/* A string is not an array: codec_args says so first. */
	unit_msg_obj(&m, "M s s", 1, "argv", "sh");
	ck_assert_int_eq(codec_args(m.obj, spec_args, args, &e),
	    -1);
	ck_assert_msg(strstr(e.msg, "argv") != NULL, "error: %s", e.msg);
	unit_msg_free(&m);
}
END_TEST

START_TEST(argv_bin_strings)
{
	EXPECT_OK(parse(0, "M s A B B", 1, "argv", 2, "sh", (size_t)2,
	    "-x", (size_t)2));
	ck_assert_str_eq(cfg.argv[0], "sh");
	ck_assert_str_eq(cfg.argv[1], "-x");
	ck_assert_ptr_null(cfg.argv[2]);
}
END_TEST

START_TEST(argv_limits)
{
	struct unit_msg m;
	msgpack_packer pk;
	char *big;
	int i;

	unit_msg_packer(&m, &pk);
	msgpack_pack_map(&pk, 1);
	codec_pack_str(&pk, "argv");
	msgpack_pack_array(&pk, SPEC_MAX_ARGV + 1);
	for (i = 0; i < SPEC_MAX_ARGV + 1; i++)
		codec_pack_str(&pk, "x");
	EXPECT_ERR(parse_obj(0, unit_msg_unpack(&m)), WARD_E_TOO_LARGE, "argv");
	unit_msg_free(&m);

	unit_msg_packer(&m, &pk);
	msgpack_pack_map(&pk, 1);
	codec_pack_str(&pk, "argv");
	msgpack_pack_array(&pk, SPEC_MAX_ARGV);
	for (i = 0; i < SPEC_MAX_ARGV; i++)
		codec_pack_str(&pk, "sh");
	EXPECT_OK(parse_obj(0, unit_msg_unpack(&m)));
	ck_assert_str_eq(cfg.argv[SPEC_MAX_ARGV - 1], "sh");
	ck_assert_ptr_null(cfg.argv[SPEC_MAX_ARGV]);
	unit_msg_free(&m);

	big = malloc(SPEC_MAX_STRING + 2);
	ck_assert_ptr_nonnull(big);
	memset(big, 'a', SPEC_MAX_STRING + 1);
	big[SPEC_MAX_STRING + 1] = '\0';
	EXPECT_ERR(parse(0, "M s A s s", 1, "argv", 2, "sh", big),
	    WARD_E_INVALID_ARGUMENT, "longer than");
	big[SPEC_MAX_STRING] = '\0';
	EXPECT_OK(parse(0, "M s A s s", 1, "argv", 2, "sh", big));
	ck_assert_uint_eq(strlen(cfg.argv[1]), SPEC_MAX_STRING);
	free(big);
}
END_TEST

/* ---- finding the executable */

START_TEST(exec_not_in_path)
{
	EXPECT_ERR(parse(0, "M s A s", 1, "argv", 1, "no-such-program-wardtest"),
	    WARD_E_INVALID_ARGUMENT, "not found in PATH");
	ck_assert_msg(strstr(e.msg, "no-such-program-wardtest") != NULL,
	    "error does not name argv[0]: %s", e.msg);
}
END_TEST

START_TEST(exec_absolute_checks)
{
	EXPECT_ERR(parse(0, "M s A s", 1, "argv", 1, "/etc/passwd"),
	    WARD_E_INVALID_ARGUMENT, "not executable");
	EXPECT_ERR(parse(0, "M s A s", 1, "argv", 1, "/"),
	    WARD_E_INVALID_ARGUMENT, "not a regular file");
	EXPECT_ERR(parse(0, "M s A s", 1, "argv", 1, "/etc"),
	    WARD_E_INVALID_ARGUMENT, "not a regular file");
	EXPECT_ERR(parse(0, "M s A s", 1, "argv", 1, "/no/such/program"),
	    WARD_E_INVALID_ARGUMENT, "/no/such/program");
	/* A path is used as given, not searched. */
	EXPECT_OK(parse(0, "M s A s", 1, "argv", 1, "/bin/sh"));
	ck_assert_str_eq(cfg.exec_path, "/bin/sh");
}
END_TEST

START_TEST(exec_sh_resolves)
{
	size_t n;

	EXPECT_OK(parse(0, "M s A s", 1, "argv", 1, "sh"));
	ck_assert_int_eq(cfg.exec_path[0], '/');
	n = strlen(cfg.exec_path);
	ck_assert_uint_ge(n, 3);
	ck_assert_str_eq(cfg.exec_path + n - 3, "/sh");
	ck_assert_int_eq(access(cfg.exec_path, X_OK), 0);
	/* argv[0] itself stays as the client wrote it. */
	ck_assert_str_eq(cfg.argv[0], "sh");
}
END_TEST

START_TEST(exec_uses_config_path)
{
	char want[PATH_MAX], path2[PATH_MAX];
	size_t i;
	int found;

	/* Not in wardd's own PATH... */
	EXPECT_ERR(parse(0, "M s A s", 1, "argv", 1, "wardtest-prog"),
	    WARD_E_INVALID_ARGUMENT, "not found in PATH");
	/* ...but in the instance's. */
	EXPECT_OK(parse(0, "M s A s s M s s s s", 2, "argv", 1, "wardtest-prog",
	    "env", 2, "A", "B", "PATH", tmpdir));
	snprintf(want, sizeof want, "%s/wardtest-prog", tmpdir);
	ck_assert_str_eq(cfg.exec_path, want);
	found = 0;
	for (i = 0; cfg.env[i] != NULL; i++) {
		if (strncmp(cfg.env[i], "PATH=", 5) == 0) {
			ck_assert_str_eq(cfg.env[i] + 5, tmpdir);
			found |= 1;
		} else if (strcmp(cfg.env[i], "A=B") == 0)
			found |= 2;
	}
	ck_assert_uint_eq(i, 2);
	ck_assert_int_eq(found, 3);

	/* Searched in order, empty and missing entries skipped. */
	snprintf(path2, sizeof path2, "/no/such/dir::%s", tmpdir);
	EXPECT_OK(parse(0, "M s A s s M s s", 2, "argv", 1, "wardtest-prog",
	    "env", 1, "PATH", path2));
	ck_assert_str_eq(cfg.exec_path, want);

	/* Entries that are not executable regular files are passed over. */
	EXPECT_ERR(parse(0, "M s A s s M s s", 2, "argv", 1, "wardtest-noexec",
	    "env", 1, "PATH", tmpdir), WARD_E_INVALID_ARGUMENT,
	    "not found in PATH");
	EXPECT_ERR(parse(0, "M s A s s M s s", 2, "argv", 1, "wardtest-dir",
	    "env", 1, "PATH", tmpdir), WARD_E_INVALID_ARGUMENT,
	    "not found in PATH");
	/* The instance's PATH replaces wardd's: sh is not there. */
	EXPECT_ERR(parse(0, "M s A s s M s s", 2, "argv", 1, "sh",
	    "env", 1, "PATH", tmpdir), WARD_E_INVALID_ARGUMENT, tmpdir);
	ck_assert_msg(strstr(e.msg, "not found in PATH") != NULL, "%s", e.msg);
}
END_TEST

/* Whatever was checked at create must be what execve finds after chdir. */
static void
assert_exec_from_cwd(void)
{
	char *here = getcwd(NULL, 0);

	ck_assert_ptr_nonnull(here);
	if (cfg.cwd != NULL)
		ck_assert_int_eq(chdir(cfg.cwd), 0);
	ck_assert_msg(access(cfg.exec_path, X_OK) == 0, "accepted '%s', but "
	    "from the instance's cwd '%s' execve would not find it",
	    cfg.exec_path, cfg.cwd != NULL ? cfg.cwd : here);
	ck_assert_int_eq(chdir(here), 0);
	free(here);
}

START_TEST(exec_relative_and_cwd)
{
	const char *r;

	/* wardd's cwd holds the program; the instance's does not. */
	ck_assert_int_eq(chdir(tmpdir), 0);
	r = parse(0, "M s A s s s", 2, "argv", 1, "./wardtest-prog",
	    "cwd", "/");
	if (r == NULL)
		assert_exec_from_cwd();
	r = parse(0, "M s A s s s s M s s", 3, "argv", 1, "wardtest-prog",
	    "cwd", "/", "env", 1, "PATH", ".");
	if (r == NULL)
		assert_exec_from_cwd();
	/* The same, the right way round: the instance's cwd has it. */
	ck_assert_int_eq(chdir("/"), 0);
	r = parse(0, "M s A s s s", 2, "argv", 1, "./wardtest-prog",
	    "cwd", tmpdir);
	if (r == NULL)
		assert_exec_from_cwd();
}
END_TEST

START_TEST(env_bad)
{
	EXPECT_ERR(parse(0, "M s A s s M s u", 2, "argv", 1, "sh",
	    "env", 1, "A", 1), WARD_E_INVALID_ARGUMENT, "env");
	EXPECT_ERR(parse(0, "M s A s s M u s", 2, "argv", 1, "sh",
	    "env", 1, 1, "x"), WARD_E_INVALID_ARGUMENT, "env");
	EXPECT_ERR(parse(0, "M s A s s M s s", 2, "argv", 1, "sh",
	    "env", 1, "A=B", "x"), WARD_E_INVALID_ARGUMENT, "env");
	EXPECT_ERR(parse(0, "M s A s s M s s", 2, "argv", 1, "sh",
	    "env", 1, "", "x"), WARD_E_INVALID_ARGUMENT, "env");
	EXPECT_ERR(parse(0, "M s A s s M s S", 2, "argv", 1, "sh",
	    "env", 1, "A", "x\0y", (size_t)3), WARD_E_INVALID_ARGUMENT, "env");
	/* An empty value is a value. */
	EXPECT_OK(parse(0, "M s A s s M s s", 2, "argv", 1, "sh",
	    "env", 1, "EMPTY", ""));
	ck_assert_str_eq(cfg.env[0], "EMPTY=");
	ck_assert_ptr_null(cfg.env[1]);
}
END_TEST

/* ---- name */

START_TEST(name_rules)
{
	static const char *const good[] = {
		"vm", "VM_1", "a", "_", "0a", "1-2", "web-1.prod@host:8080",
		"a.", "9_",
	};
	static const char *const bad[] = {
		"123", "0", "-a", ".a", "@a", ":a", "a b", "a/b", "a\\b",
		"a\n", "é", "a\tb", "a$", "a'b", "",
	};
	char name[80];
	size_t i;

	for (i = 0; i < sizeof good / sizeof good[0]; i++) {
		EXPECT_OK(parse(0, "M s s s A s", 2, "name", good[i], "argv", 1,
		    "sh"));
		ck_assert_str_eq(cfg.name, good[i]);
		ck_assert_int_eq(spec_name_valid(good[i], &e), 0);
	}
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		EXPECT_ERR(parse(0, "M s s s A s", 2, "name", bad[i], "argv", 1,
		    "sh"), WARD_E_INVALID_ARGUMENT, "name");
		ck_assert_int_eq(spec_name_valid(bad[i], &e), -1);
	}
	EXPECT_ERR(parse(0, "M s s s A s", 2, "name", "12345", "argv", 1, "sh"),
	    WARD_E_INVALID_ARGUMENT, "digits");

	memset(name, 'n', sizeof name);
	name[SPEC_MAX_NAME] = '\0';
	EXPECT_OK(parse(0, "M s s s A s", 2, "name", name, "argv", 1, "sh"));
	ck_assert_uint_eq(strlen(cfg.name), 64);
	name[SPEC_MAX_NAME] = 'n';
	name[SPEC_MAX_NAME + 1] = '\0';
	EXPECT_ERR(parse(0, "M s s s A s", 2, "name", name, "argv", 1, "sh"),
	    WARD_E_INVALID_ARGUMENT, "name");

	/* A bin name is fine; one with a NUL byte is not. */
	EXPECT_OK(parse(0, "M s B s A s", 2, "name", "vm-b", (size_t)4,
	    "argv", 1, "sh"));
	ck_assert_str_eq(cfg.name, "vm-b");
	EXPECT_ERR(parse(0, "M s S s A s", 2, "name", "vm\0x", (size_t)4,
	    "argv", 1, "sh"), WARD_E_INVALID_ARGUMENT, "name");
}
END_TEST

/* ---- profile and exit codes */

START_TEST(profile_unknown)
{
	EXPECT_ERR(parse(0, "M s A s s s", 2, "argv", 1, "sh",
	    "profile", "qemu"), WARD_E_INVALID_ARGUMENT, "unknown profile");
	ck_assert_msg(strstr(e.msg, "qemu") != NULL, "%s", e.msg);
	EXPECT_ERR(parse(0, "M s A s s s", 2, "argv", 1, "sh",
	    "profile", ""), WARD_E_INVALID_ARGUMENT, "profile");
	EXPECT_ERR(parse(0, "M s A s s s", 2, "argv", 1, "sh",
	    "profile", "CROSVM"), WARD_E_INVALID_ARGUMENT, "profile");
}
END_TEST

START_TEST(profile_crosvm_alone)
{
	EXPECT_OK(parse(0, "M s A s s s", 2, "argv", 1, "sh",
	    "profile", "crosvm"));
	ck_assert_str_eq(cfg.profile, "crosvm");
	ck_assert_uint_eq(cfg.nexit_codes, 4);
	ck_assert_str_eq(reason_classify(NULL, 0, 0, 1, 1, cfg.exit_codes,
	    cfg.nexit_codes), "START_FAILED");
	ck_assert_str_eq(reason_classify(NULL, 0, 0, 1, 32, cfg.exit_codes,
	    cfg.nexit_codes), "REBOOT");
	ck_assert_str_eq(reason_classify(NULL, 0, 0, 1, 33, cfg.exit_codes,
	    cfg.nexit_codes), "CRASH");
	ck_assert_str_eq(reason_classify(NULL, 0, 0, 1, 36, cfg.exit_codes,
	    cfg.nexit_codes), "WATCHDOG_REBOOT");
}
END_TEST

START_TEST(profile_crosvm_under_explicit)
{
	EXPECT_OK(parse(0, "M s A s s s s M s s u s", 3, "argv", 1, "sh",
	    "profile", "crosvm", "exit_codes", 2, "33", "MINE", 40, "OTHER"));
	/* Two of the instance's own, three left of the profile's four. */
	ck_assert_uint_eq(cfg.nexit_codes, 5);
	ck_assert_str_eq(reason_classify(NULL, 0, 0, 1, 33, cfg.exit_codes,
	    cfg.nexit_codes), "MINE");
	ck_assert_str_eq(reason_classify(NULL, 0, 0, 1, 32, cfg.exit_codes,
	    cfg.nexit_codes), "REBOOT");
	ck_assert_str_eq(reason_classify(NULL, 0, 0, 1, 1, cfg.exit_codes,
	    cfg.nexit_codes), "START_FAILED");
	ck_assert_str_eq(reason_classify(NULL, 0, 0, 1, 36, cfg.exit_codes,
	    cfg.nexit_codes), "WATCHDOG_REBOOT");
	ck_assert_str_eq(reason_classify(NULL, 0, 0, 1, 40, cfg.exit_codes,
	    cfg.nexit_codes), "OTHER");
	ck_assert_str_eq(reason_classify(NULL, 0, 0, 1, 41, cfg.exit_codes,
	    cfg.nexit_codes), "UNKNOWN");

	/* Without the profile, 32 means nothing. */
	EXPECT_OK(parse(0, "M s A s s M s s", 2, "argv", 1, "sh",
	    "exit_codes", 1, "33", "MINE"));
	ck_assert_uint_eq(cfg.nexit_codes, 1);
	ck_assert_str_eq(reason_classify(NULL, 0, 0, 1, 32, cfg.exit_codes,
	    cfg.nexit_codes), "UNKNOWN");
}
END_TEST

START_TEST(exit_codes_keys)
{
	/* Integer and string keys, the whole 0..255 range. */
	EXPECT_OK(parse(0, "M s A s s M u s s s u s s s", 2, "argv", 1, "sh",
	    "exit_codes", 4, 0, "ZERO", "1", "ONE", 255, "TOP", "254", "NEXT"));
	ck_assert_uint_eq(cfg.nexit_codes, 4);
	ck_assert_str_eq(reason_classify(NULL, 0, 0, 1, 1, cfg.exit_codes,
	    cfg.nexit_codes), "ONE");
	ck_assert_str_eq(reason_classify(NULL, 0, 0, 1, 255, cfg.exit_codes,
	    cfg.nexit_codes), "TOP");
	ck_assert_str_eq(reason_classify(NULL, 0, 0, 1, 254, cfg.exit_codes,
	    cfg.nexit_codes), "NEXT");

	EXPECT_ERR(parse(0, "M s A s s M s s", 2, "argv", 1, "sh",
	    "exit_codes", 1, "abc", "X"), WARD_E_INVALID_ARGUMENT, "exit_codes");
	EXPECT_ERR(parse(0, "M s A s s M s s", 2, "argv", 1, "sh",
	    "exit_codes", 1, "", "X"), WARD_E_INVALID_ARGUMENT, "exit_codes");
	EXPECT_ERR(parse(0, "M s A s s M s s", 2, "argv", 1, "sh",
	    "exit_codes", 1, "256", "X"), WARD_E_INVALID_ARGUMENT, "exit_codes");
	EXPECT_ERR(parse(0, "M s A s s M s s", 2, "argv", 1, "sh",
	    "exit_codes", 1, "-1", "X"), WARD_E_INVALID_ARGUMENT, "exit_codes");
	EXPECT_ERR(parse(0, "M s A s s M s s", 2, "argv", 1, "sh",
	    "exit_codes", 1, "3x", "X"), WARD_E_INVALID_ARGUMENT, "exit_codes");
	EXPECT_ERR(parse(0, "M s A s s M u s", 2, "argv", 1, "sh",
	    "exit_codes", 1, 256, "X"), WARD_E_INVALID_ARGUMENT, "exit_codes");
	EXPECT_ERR(parse(0, "M s A s s M i s", 2, "argv", 1, "sh",
	    "exit_codes", 1, -1, "X"), WARD_E_INVALID_ARGUMENT, "exit_codes");
	EXPECT_ERR(parse(0, "M s A s s M t s", 2, "argv", 1, "sh",
	    "exit_codes", 1, "X"), WARD_E_INVALID_ARGUMENT, "exit_codes");
	/* exit_codes must be a map: codec_args' business. */
	{
		const msgpack_object *args[ARG_MAX];
		struct unit_msg m;

		unit_msg_obj(&m, "M s A s s A", 2, "argv", 1, "sh",
		    "exit_codes", 0);
		ck_assert_int_eq(codec_args(m.obj, spec_args, args, &e), -1);
		unit_msg_free(&m);
	}
}
END_TEST

START_TEST(exit_codes_reasons)
{
	char long_reason[80];

	EXPECT_ERR(parse(0, "M s A s s M s s", 2, "argv", 1, "sh",
	    "exit_codes", 1, "3", "lower"), WARD_E_INVALID_ARGUMENT,
	    "exit_codes");
	EXPECT_ERR(parse(0, "M s A s s M s s", 2, "argv", 1, "sh",
	    "exit_codes", 1, "3", ""), WARD_E_INVALID_ARGUMENT, "exit_codes");
	EXPECT_ERR(parse(0, "M s A s s M s s", 2, "argv", 1, "sh",
	    "exit_codes", 1, "3", "CRASH!"), WARD_E_INVALID_ARGUMENT,
	    "exit_codes");
	EXPECT_ERR(parse(0, "M s A s s M s s", 2, "argv", 1, "sh",
	    "exit_codes", 1, "3", "9LIVES"), WARD_E_INVALID_ARGUMENT,
	    "exit_codes");
	EXPECT_ERR(parse(0, "M s A s s M s u", 2, "argv", 1, "sh",
	    "exit_codes", 1, "3", 7), WARD_E_INVALID_ARGUMENT, "exit_codes");
	EXPECT_ERR(parse(0, "M s A s s M s n", 2, "argv", 1, "sh",
	    "exit_codes", 1, "3"), WARD_E_INVALID_ARGUMENT, "exit_codes");

	memset(long_reason, 'R', sizeof long_reason);
	long_reason[REASON_MAX + 1] = '\0';
	EXPECT_ERR(parse(0, "M s A s s M s s", 2, "argv", 1, "sh",
	    "exit_codes", 1, "3", long_reason), WARD_E_INVALID_ARGUMENT,
	    "exit_codes");
	long_reason[REASON_MAX] = '\0';
	EXPECT_OK(parse(0, "M s A s s M s s", 2, "argv", 1, "sh",
	    "exit_codes", 1, "3", long_reason));
	ck_assert_str_eq(cfg.exit_codes[0].reason, long_reason);
	/* A bin reason is a string too. */
	EXPECT_OK(parse(0, "M s A s s M s B", 2, "argv", 1, "sh",
	    "exit_codes", 1, "3", "BINARY", (size_t)6));
	ck_assert_str_eq(cfg.exit_codes[0].reason, "BINARY");
}
END_TEST

/* ---- hangup */

START_TEST(hangup_timeout)
{
	EXPECT_ERR(parse(0, "M s A s s u", 2, "argv", 1, "sh",
	    "hangup_timeout_ms", 0), WARD_E_INVALID_ARGUMENT,
	    "hangup_timeout_ms");
	EXPECT_ERR(parse(0, "M s A s s u", 2, "argv", 1, "sh",
	    "hangup_timeout_ms", SPEC_MAX_HANGUP_MS + 1),
	    WARD_E_INVALID_ARGUMENT, "hangup_timeout_ms");
	EXPECT_ERR(parse(0, "M s A s s U", 2, "argv", 1, "sh",
	    "hangup_timeout_ms", (uint64_t)1 << 40),
	    WARD_E_INVALID_ARGUMENT, "hangup_timeout_ms");
	EXPECT_OK(parse(0, "M s A s s u s t", 3, "argv", 1, "sh",
	    "hangup_timeout_ms", 1, "detect_hangup"));
	ck_assert_uint_eq(cfg.hangup_timeout_ms, 1);
	ck_assert_int_eq(cfg.detect_hangup, 1);
	EXPECT_OK(parse(0, "M s A s s u s f", 3, "argv", 1, "sh",
	    "hangup_timeout_ms", SPEC_MAX_HANGUP_MS, "detect_hangup"));
	ck_assert_uint_eq(cfg.hangup_timeout_ms, SPEC_MAX_HANGUP_MS);
	ck_assert_int_eq(cfg.detect_hangup, 0);

	/* The default is longer under a hypervisor (nested virtualisation). */
	EXPECT_OK(parse(0, "M s A s", 1, "argv", 1, "sh"));
	ck_assert_uint_eq(cfg.hangup_timeout_ms, HANGUP_TIMEOUT_MS);
	opts.hypervisor = 1;
	EXPECT_OK(parse(0, "M s A s", 1, "argv", 1, "sh"));
	ck_assert_uint_eq(cfg.hangup_timeout_ms, HANGUP_TIMEOUT_NESTED_MS);
	EXPECT_OK(parse(0, "M s A s s u", 2, "argv", 1, "sh",
	    "hangup_timeout_ms", 5));
	ck_assert_uint_eq(cfg.hangup_timeout_ms, 5);
}
END_TEST

/* ---- user */

START_TEST(user_needs_admin)
{
	opts.is_root = 1;
	opts.uid = 0;
	EXPECT_ERR(parse(0, "M s A s s s", 2, "argv", 1, "sh",
	    "user", "65534:65534"), WARD_E_PERMISSION, "user");
	EXPECT_ERR(parse(0, "M s A s s u", 2, "argv", 1, "sh", "user", 0),
	    WARD_E_PERMISSION, "user");
	ck_assert_int_eq(cfg.has_user, 0);
	/* nil is absent, and absent is fine for anyone. */
	EXPECT_OK(parse(0, "M s A s s n", 2, "argv", 1, "sh", "user"));
	ck_assert_int_eq(cfg.has_user, 0);
}
END_TEST

START_TEST(user_forms)
{
	opts.is_root = 1;
	opts.uid = 0;
	EXPECT_OK(parse(1, "M s A s s s", 2, "argv", 1, "sh",
	    "user", "65534:65534"));
	ck_assert_int_eq(cfg.has_user, 1);
	ck_assert_uint_eq(cfg.user_uid, 65534);
	ck_assert_uint_eq(cfg.user_gid, 65534);

	EXPECT_OK(parse(1, "M s A s s s", 2, "argv", 1, "sh",
	    "user", "1000:100"));
	ck_assert_uint_eq(cfg.user_uid, 1000);
	ck_assert_uint_eq(cfg.user_gid, 100);

	/* A uid alone: the group of the same number. */
	EXPECT_OK(parse(1, "M s A s s s", 2, "argv", 1, "sh", "user", "1000"));
	ck_assert_int_eq(cfg.has_user, 1);
	ck_assert_uint_eq(cfg.user_uid, 1000);
	ck_assert_uint_eq(cfg.user_gid, 1000);
	EXPECT_OK(parse(1, "M s A s s u", 2, "argv", 1, "sh", "user", 1001));
	ck_assert_int_eq(cfg.has_user, 1);
	ck_assert_uint_eq(cfg.user_uid, 1001);
	ck_assert_uint_eq(cfg.user_gid, 1001);
	EXPECT_OK(parse(1, "M s A s s u", 2, "argv", 1, "sh", "user", 0));
	ck_assert_int_eq(cfg.has_user, 1);
	ck_assert_uint_eq(cfg.user_uid, 0);
}
END_TEST

START_TEST(user_bad)
{
	static const char *const bad[] = {
		"", "nobody", ":5", "5:", "1:2:3", "-1", "4294967295",
		"5:4294967295", "5x", "5:x", "99999999999999999999",
	};
	size_t i;

	opts.is_root = 1;
	opts.uid = 0;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *r = parse(1, "M s A s s s", 2, "argv", 1, "sh",
		    "user", bad[i]);

		ck_assert_msg(r != NULL, "user '%s' accepted as %u:%u", bad[i],
		    (unsigned)cfg.user_uid, (unsigned)cfg.user_gid);
		ck_assert_str_eq(r, WARD_E_INVALID_ARGUMENT);
		ck_assert_msg(strstr(e.msg, "user") != NULL, "%s", e.msg);
	}
	EXPECT_ERR(parse(1, "M s A s s t", 2, "argv", 1, "sh", "user"),
	    WARD_E_INVALID_ARGUMENT, "user");
	EXPECT_ERR(parse(1, "M s A s s i", 2, "argv", 1, "sh", "user", -1),
	    WARD_E_INVALID_ARGUMENT, "user");
	EXPECT_ERR(parse(1, "M s A s s U", 2, "argv", 1, "sh", "user",
	    (uint64_t)0xffffffffU), WARD_E_INVALID_ARGUMENT, "user");
}
END_TEST

START_TEST(user_wardd_not_root)
{
	/* wardd runs as 1000: it can only run instances as itself. */
	opts.is_root = 0;
	opts.uid = 1000;
	EXPECT_OK(parse(1, "M s A s s s", 2, "argv", 1, "sh", "user", "1000"));
	ck_assert_uint_eq(cfg.user_uid, 1000);
	EXPECT_ERR(parse(1, "M s A s s s", 2, "argv", 1, "sh", "user", "1001"),
	    WARD_E_PERMISSION, "1001");
	EXPECT_ERR(parse(1, "M s A s s u", 2, "argv", 1, "sh", "user", 0),
	    WARD_E_PERMISSION, "root");
}
END_TEST

/* ---- cwd and rss_mapping */

START_TEST(cwd_must_be_dir)
{
	EXPECT_ERR(parse(0, "M s A s s s", 2, "argv", 1, "sh",
	    "cwd", "/etc/passwd"), WARD_E_INVALID_ARGUMENT, "not a directory");
	EXPECT_ERR(parse(0, "M s A s s s", 2, "argv", 1, "sh",
	    "cwd", "/no/such/dir"), WARD_E_INVALID_ARGUMENT, "cwd");
	EXPECT_ERR(parse(0, "M s A s s s", 2, "argv", 1, "sh",
	    "cwd", ""), WARD_E_INVALID_ARGUMENT, "cwd");
	EXPECT_ERR(parse(0, "M s A s s S", 2, "argv", 1, "sh",
	    "cwd", "/\0tmp", (size_t)5), WARD_E_INVALID_ARGUMENT, "cwd");
	EXPECT_OK(parse(0, "M s A s s s", 2, "argv", 1, "sh", "cwd", "/"));
	ck_assert_str_eq(cfg.cwd, "/");
}
END_TEST

START_TEST(rss_mapping)
{
	char name[300];

	EXPECT_OK(parse(0, "M s A s s s", 2, "argv", 1, "sh",
	    "rss_mapping", "crosvm_guest"));
	ck_assert_str_eq(cfg.rss_mapping, "crosvm_guest");
	EXPECT_ERR(parse(0, "M s A s s s", 2, "argv", 1, "sh",
	    "rss_mapping", ""), WARD_E_INVALID_ARGUMENT, "rss_mapping");
	memset(name, 'm', sizeof name);
	name[256] = '\0';
	EXPECT_OK(parse(0, "M s A s s s", 2, "argv", 1, "sh",
	    "rss_mapping", name));
	name[256] = 'm';
	name[257] = '\0';
	EXPECT_ERR(parse(0, "M s A s s s", 2, "argv", 1, "sh",
	    "rss_mapping", name), WARD_E_INVALID_ARGUMENT, "rss_mapping");
}
END_TEST

/* ---- the execution environment: group, umask, rlimits, nice, oom_score_adj */

START_TEST(execenv_forms)
{
	opts.is_root = 1;
	EXPECT_OK(parse(1, "M s A s s u s s s i s i", 5, "argv", 1, "sh",
	    "group", 4242, "umask", "027", "nice", -20, "oom_score_adj", -1000));
	ck_assert_int_eq(cfg.has_group, 1);
	ck_assert_uint_eq(cfg.group_gid, 4242);
	ck_assert_int_eq(cfg.has_umask, 1);
	ck_assert_uint_eq(cfg.umask, 027);
	ck_assert_int_eq(cfg.nice, -20);
	ck_assert_int_eq(cfg.oom_score_adj, -1000);

	EXPECT_OK(parse(1, "M s A s s s s u s i s i", 5, "argv", 1, "sh",
	    "group", "0", "umask", 0777, "nice", 19, "oom_score_adj", 1000));
	ck_assert_uint_eq(cfg.group_gid, 0);
	ck_assert_uint_eq(cfg.umask, 0777);
	ck_assert_int_eq(cfg.nice, 19);
	ck_assert_int_eq(cfg.oom_score_adj, 1000);
	/* Not given: not set. */
	EXPECT_OK(parse(1, "M s A s", 1, "argv", 1, "sh"));
	ck_assert_int_eq(cfg.has_group + cfg.has_umask + cfg.has_nice +
	    cfg.has_oom_score_adj, 0);
	ck_assert_uint_eq(cfg.nrlimits, 0);
}
END_TEST

START_TEST(execenv_rlimits)
{
	size_t k;

	EXPECT_OK(parse(0, "M s A s s M s s s u s s s s", 2, "argv", 1, "sh",
	    "rlimits", 4, "nofile", "256:1024", "core", 0, "stack", "infinity",
	    "cpu", "10:infinity"));
	ck_assert_uint_eq(cfg.nrlimits, 4);
	ck_assert_uint_eq(cfg.rlimit_mask, (1U << RLIMIT_NOFILE) |
	    (1U << RLIMIT_CORE) | (1U << RLIMIT_STACK) | (1U << RLIMIT_CPU));
	for (k = 0; k < cfg.nrlimits; k++) {
		const struct spec_rlimit *r = &cfg.rlimits[k];

		switch (r->resource) {
		case RLIMIT_NOFILE:
			ck_assert_uint_eq(r->lim.rlim_cur, 256);
			ck_assert_uint_eq(r->lim.rlim_max, 1024);
			break;
		case RLIMIT_CORE:
			ck_assert_uint_eq(r->lim.rlim_cur, 0);
			ck_assert_uint_eq(r->lim.rlim_max, 0);
			break;
		case RLIMIT_STACK:
			ck_assert(r->lim.rlim_cur == RLIM_INFINITY);
			ck_assert(r->lim.rlim_max == RLIM_INFINITY);
			break;
		default:
			ck_assert_uint_eq(r->lim.rlim_cur, 10);
			ck_assert(r->lim.rlim_max == RLIM_INFINITY);
		}
	}
	ck_assert_str_eq(spec_execenv_rlimit_name(RLIMIT_MSGQUEUE), "msgqueue");
	EXPECT_ERR(parse(1, "M s A s s M s s", 2, "argv", 1, "sh", "rlimits",
	    1, "nofile", "2:1"), WARD_E_INVALID_ARGUMENT, "soft limit");
	EXPECT_ERR(parse(1, "M s A s s M s s", 2, "argv", 1, "sh", "rlimits",
	    1, "nofile", "1:"), WARD_E_INVALID_ARGUMENT, "'rlimits.nofile'");
	EXPECT_ERR(parse(1, "M s A s s M s s", 2, "argv", 1, "sh", "rlimits",
	    1, "nofile", "18446744073709551616"), WARD_E_INVALID_ARGUMENT,
	    "'rlimits.nofile'");
	EXPECT_ERR(parse(1, "M s A s s M s i", 2, "argv", 1, "sh", "rlimits",
	    1, "nofile", -1), WARD_E_INVALID_ARGUMENT, "'rlimits.nofile'");
	EXPECT_ERR(parse(1, "M s A s s M s u", 2, "argv", 1, "sh", "rlimits",
	    1, "fds", 1), WARD_E_INVALID_ARGUMENT, "limit names");
	/* msgpack maps may repeat a key. */
	EXPECT_ERR(parse(1, "M s A s s M s u s u", 2, "argv", 1, "sh", "rlimits",
	    2, "core", 1, "core", 2), WARD_E_INVALID_ARGUMENT, "twice");
}
END_TEST

START_TEST(execenv_bad)
{
	opts.is_root = 1;
	EXPECT_ERR(parse(1, "M s A s s s", 2, "argv", 1, "sh", "group", "staff"),
	    WARD_E_INVALID_ARGUMENT, "'group'");
	EXPECT_ERR(parse(1, "M s A s s U", 2, "argv", 1, "sh", "group",
	    (uint64_t)0xffffffffU), WARD_E_INVALID_ARGUMENT, "'group'");
	EXPECT_ERR(parse(1, "M s A s s s", 2, "argv", 1, "sh", "umask", "0800"),
	    WARD_E_INVALID_ARGUMENT, "'umask'");
	EXPECT_ERR(parse(1, "M s A s s u", 2, "argv", 1, "sh", "umask", 01000),
	    WARD_E_INVALID_ARGUMENT, "'umask'");
	EXPECT_ERR(parse(1, "M s A s s s", 2, "argv", 1, "sh", "umask", "00000"),
	    WARD_E_INVALID_ARGUMENT, "'umask'");
	EXPECT_ERR(parse(1, "M s A s s i", 2, "argv", 1, "sh", "nice", 20),
	    WARD_E_INVALID_ARGUMENT, "'nice'");
	EXPECT_ERR(parse(1, "M s A s s i", 2, "argv", 1, "sh", "nice", -21),
	    WARD_E_INVALID_ARGUMENT, "'nice'");
	EXPECT_ERR(parse(1, "M s A s s U", 2, "argv", 1, "sh", "nice",
	    (uint64_t)1 << 63), WARD_E_INVALID_ARGUMENT, "'nice'");
	EXPECT_ERR(parse(1, "M s A s s i", 2, "argv", 1, "sh", "oom_score_adj",
	    1001), WARD_E_INVALID_ARGUMENT, "'oom_score_adj'");
	/* Non-admins may only raise it. */
	EXPECT_ERR(parse(0, "M s A s s i", 2, "argv", 1, "sh", "oom_score_adj",
	    -1), WARD_E_PERMISSION, "oom_score_adj");
	EXPECT_OK(parse(0, "M s A s s i", 2, "argv", 1, "sh", "oom_score_adj", 0));
	/* A wardd that is not root cannot switch to another gid. */
	opts.is_root = 0;
	EXPECT_ERR(parse(1, "M s A s s u", 2, "argv", 1, "sh", "group",
	    (unsigned)getegid() + 1), WARD_E_PERMISSION, "gid");
}
END_TEST

START_TEST(everything_at_once)
{
	opts.is_root = 1;
	EXPECT_OK(parse(1, "M s s s A s s s M s s s s s t s u s M s s s s s s "
	    "s s", 10,
	    "name", "vm-1",
	    "argv", 2, "sh", "-c",
	    "env", 1, "HOME", "/root",
	    "cwd", "/tmp",
	    "detect_hangup",
	    "hangup_timeout_ms", 60000,
	    "exit_codes", 1, "7", "SEVEN",
	    "profile", "crosvm",
	    "rss_mapping", "crosvm_guest",
	    "user", "65534"));
	ck_assert_str_eq(cfg.name, "vm-1");
	ck_assert_str_eq(cfg.argv[1], "-c");
	ck_assert_str_eq(cfg.env[0], "HOME=/root");
	ck_assert_str_eq(cfg.cwd, "/tmp");
	ck_assert_int_eq(cfg.detect_hangup, 1);
	ck_assert_uint_eq(cfg.hangup_timeout_ms, 60000);
	ck_assert_uint_eq(cfg.nexit_codes, 5);
	ck_assert_str_eq(cfg.rss_mapping, "crosvm_guest");
	ck_assert_uint_eq(cfg.user_uid, 65534);
	ck_assert_uint_eq(cfg.user_gid, 65534);
	/* spec_free leaves a zeroed config that can be freed again. */
	spec_free(&cfg);
	ck_assert_ptr_null(cfg.argv);
	ck_assert_ptr_null(cfg.name);
	spec_free(&cfg);
}
END_TEST

int
main(void)
{
	TCase *tc;
	Suite *s = unit_suite("config", &tc);

	tcase_add_unchecked_fixture(tc, tmpdir_setup, tmpdir_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, minimal);
	tcase_add_test(tc, argv_missing_or_empty);
	tcase_add_test(tc, argv_not_strings);
	tcase_add_test(tc, argv_bin_strings);
	tcase_add_test(tc, argv_limits);
	tcase_add_test(tc, exec_not_in_path);
	tcase_add_test(tc, exec_absolute_checks);
	tcase_add_test(tc, exec_sh_resolves);
	tcase_add_test(tc, exec_uses_config_path);
	tcase_add_test(tc, exec_relative_and_cwd);
	tcase_add_test(tc, env_bad);
	tcase_add_test(tc, name_rules);
	tcase_add_test(tc, profile_unknown);
	tcase_add_test(tc, profile_crosvm_alone);
	tcase_add_test(tc, profile_crosvm_under_explicit);
	tcase_add_test(tc, exit_codes_keys);
	tcase_add_test(tc, exit_codes_reasons);
	tcase_add_test(tc, hangup_timeout);
	tcase_add_test(tc, user_needs_admin);
	tcase_add_test(tc, user_forms);
	tcase_add_test(tc, user_bad);
	tcase_add_test(tc, user_wardd_not_root);
	tcase_add_test(tc, cwd_must_be_dir);
	tcase_add_test(tc, rss_mapping);
	tcase_add_test(tc, everything_at_once);
	tcase_add_test(tc, execenv_forms);
	tcase_add_test(tc, execenv_rlimits);
	tcase_add_test(tc, execenv_bad);
	return UNIT_RUN(s);
}
