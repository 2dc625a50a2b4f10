/*
 * test_conf.c: the config reader's text rules against what supervisord
 * (Python) does with the same text; each expected value below is what
 * supervisor 4.2.5 gives (shlex.split, "value % dict",
 * dict_of_key_value_pairs, UnhosedConfigParser), written down from it.
 * shellwords.c, conf-expand.c, conf.c's environment pairs, conf-ini.c.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"
#include "shellwords.h"
#include "unit.h"

struct wardd_opts opts;

/* ---- shellwords.c: shlex.split */

START_TEST(split_like_shlex)
{
	/* shlex.split('a "b c" \'d e\' f\\ g "h\\"i" "j\\k" \'\' x"y"z') */
	char line[] = "a \"b c\" 'd e' f\\ g \"h\\\"i\" \"j\\k\" '' x\"y\"z";
	const char *want[] = { "a", "b c", "d e", "f g", "h\"i", "j\\k", "",
	    "xyz" };
	char *argv[16];
	const char *err;
	int n, k;

	n = shellwords_split(line, argv, 16, &err);
	ck_assert_int_eq(n, 8);
	for (k = 0; k < n; k++)
		ck_assert_str_eq(argv[k], want[k]);
}
END_TEST

START_TEST(split_errors)
{
	char a[] = "echo \"open", b[] = "echo 'open", c[] = "echo \\", d[] =
	    "a b c";
	char *argv[4];
	const char *err;

	ck_assert_int_eq(shellwords_split(a, argv, 4, &err), -1);
	ck_assert(strstr(err, "\"") != NULL);
	ck_assert_int_eq(shellwords_split(b, argv, 4, &err), -1);
	ck_assert_int_eq(shellwords_split(c, argv, 4, &err), -1);
	ck_assert_int_eq(shellwords_split(d, argv, 2, &err), -1);
}
END_TEST

START_TEST(split_command_newlines)
{
	char **argv;
	struct ward_err e = WARD_ERR_INIT;

	/* A continuation line of command= is more words. */
	ck_assert_int_eq(conf_split_command("sleep 1000\n--more", &argv, &e), 0);
	ck_assert_str_eq(argv[2], "--more");
	ck_assert_ptr_null(argv[3]);
	conf_vec_free(argv);
	ck_assert_int_eq(conf_split_command("  ", &argv, &e), -1);
}
END_TEST

/* ---- conf-expand.c: Python's "value % dict" */

static char *
expand(const char *v, struct ward_err *e)
{
	static char *env[] = { "GLOBAL=g1", "X=first", "X=second" };
	struct conf_vars vars;

	memset(&vars, 0, sizeof vars);
	vars.here = "/etc/sv";
	vars.host_node_name = "node";
	vars.program_name = "web";
	vars.group_name = "grp";
	vars.process_num = 7;
	vars.numprocs = 3;
	vars.env = env;
	vars.nenv = 3;
	e->msg[0] = '\0';
	return conf_expand(v, &vars, e);
}

START_TEST(expand_formats)
{
	struct ward_err e = WARD_ERR_INIT;
	char *s;

	/* '%(n)02d|%(n)-4d|%(n)+d|%(n)#x|%(n)#o|%(s)5s|%(s)-5s|%(s).2s|
	 *  %(n)s|%(s)r|%%' % {'n': 7, 's': 'web'} */
	s = expand("%(process_num)02d|%(process_num)-4d|%(process_num)+d|"
	    "%(process_num)#x|%(process_num)#o|%(program_name)5s|"
	    "%(program_name)-5s|%(program_name).2s|%(process_num)s|"
	    "%(program_name)r|%%", &e);
	ck_assert_msg(s != NULL, "%s", e.msg);
	ck_assert_str_eq(s, "07|7   |+7|0x7|0o7|  web|web  |we|7|'web'|%");
	free(s);
	s = expand("%(here)s %(host_node_name)s %(group_name)s %(numprocs)d "
	    "%(ENV_GLOBAL)s %(ENV_X)s", &e);
	ck_assert_str_eq(s, "/etc/sv node grp 3 g1 second");
	free(s);
	s = expand("%(ENV_HOME)s", &e);		/* wardd's own */
	ck_assert_str_eq(s, getenv("HOME") ? getenv("HOME") : "");
	free(s);
}
END_TEST

START_TEST(expand_refusals)
{
	struct ward_err e = WARD_ERR_INIT;

	/* supervisord: "cannot be expanded" or "badly formatted". */
	ck_assert_ptr_null(expand("%(nosuch)s", &e));
	ck_assert(strstr(e.msg, "nosuch") != NULL);
	ck_assert_ptr_null(expand("date +%Y", &e));
	ck_assert_ptr_null(expand("50%", &e));
	ck_assert_ptr_null(expand("%(program_name)d", &e));
	ck_assert_ptr_null(expand("%(program_name)", &e));
	ck_assert_ptr_null(expand("%(ENV_NO_SUCH_VARIABLE_HERE)s", &e));
}
END_TEST

/* ---- conf.c: dict_of_key_value_pairs */

static void
env_is(const char *v, const char *const *want, size_t n)
{
	struct ward_err e = WARD_ERR_INIT;
	char **kv;
	size_t got, k;

	ck_assert_msg(conf_env_parse(v, &kv, &got, &e) == 0, "%s: %s", v,
	    e.msg);
	ck_assert_uint_eq(got, n);
	for (k = 0; k < n; k++)
		ck_assert_str_eq(kv[k], want[k]);
	conf_strv_free(kv, got);
}

START_TEST(env_pairs)
{
	static const char *const a[] = { "A=x,y", "B=z", "C=plain" };
	static const char *const b[] = { "A=1", "B=two three" };
	static const char *const c[] = { "PATH=/usr/bin:/bin", "X=a-b.c+d" };
	static const char *const d[] = { "A=a", "B=b" };
	static const char *const x[] = { "A=x" };
	struct ward_err e = WARD_ERR_INIT;
	char **kv;
	size_t n;

	env_is("A=\"x,y\",B='z',C=plain", a, 3);
	env_is("A=1,\n    B=\"two three\"", b, 2);		/* multi-line */
	env_is("PATH=/usr/bin:/bin,X=a-b.c+d", c, 2);
	env_is("A=a#comment\n,B=b", d, 2);
	env_is("A=x y", x, 1);		/* shlex's tokens: y is dropped */
	env_is("", NULL, 0);
	ck_assert_int_eq(conf_env_parse("A=1 B=2", &kv, &n, &e), -1);
	ck_assert_int_eq(conf_env_parse("A", &kv, &n, &e), -1);
	ck_assert_int_eq(conf_env_parse("A=\"open", &kv, &n, &e), -1);
}
END_TEST

/* ---- conf-ini.c: UnhosedConfigParser */

/* text as a file (its path in path), read into l; c holds the notes. */
static void
ini_read(const char *text, char *path, struct conf *c,
    struct conf_ini_list *l)
{
	int fd = mkstemp(path);
	size_t n = strlen(text);

	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(write(fd, text, n), (ssize_t)n);
	close(fd);
	memset(c, 0, sizeof *c);
	c->quiet = 1;
	TAILQ_INIT(&c->programs);
	TAILQ_INIT(l);
	ck_assert_int_eq(conf_ini_read(c, path, l), 0);
	unlink(path);
}

START_TEST(ini_dialect)
{
	static const char text[] =
	    "; comment\n"
	    "# comment too\n"
	    "[program:x]\n"
	    "command = a b ; inline\n"
	    "Key2: v2 #hash\n"
	    "url = http://h/#frag;x\n"
	    "env = A=1,\n"
	    "  B=2\n"
	    "\n"
	    "  ; comment inside\n"
	    "  C=3\n"
	    "\n"
	    "other=1\n"
	    "[program:x]\n"
	    "key2 = later\n"
	    "   [sec2]\n"
	    "k=[not a section]\n";
	/* {'command': 'a b', 'key2': 'later\n[sec2]', 'url':
	 * 'http://h/#frag;x', 'env': 'A=1,\nB=2\n\nC=3', 'other': '1',
	 * 'k': '[not a section]'} */
	char path[] = "/tmp/test_conf_XXXXXX";
	struct conf_ini_list l;
	struct conf_ini_section *s;
	struct conf c;

	ini_read(text, path, &c, &l);
	ck_assert_uint_eq(c.nerrors, 0);
	s = TAILQ_FIRST(&l);
	ck_assert_str_eq(s->name, "program:x");
	ck_assert_ptr_null(TAILQ_NEXT(s, entry));
	ck_assert_uint_eq(s->nkv, 6);
	ck_assert_str_eq(conf_ini_get(s, "command"), "a b");
	ck_assert_str_eq(conf_ini_get(s, "key2"), "later\n[sec2]");
	ck_assert_str_eq(conf_ini_get(s, "url"), "http://h/#frag;x");
	ck_assert_str_eq(conf_ini_get(s, "env"), "A=1,\nB=2\n\nC=3");
	ck_assert_str_eq(conf_ini_get(s, "other"), "1");
	ck_assert_str_eq(conf_ini_get(s, "k"), "[not a section]");
	conf_ini_free(&l);
	conf_free(&c);
}
END_TEST

START_TEST(ini_long_line_and_here)
{
	char path[] = "/tmp/test_conf_XXXXXX", *dir, *want;
	struct conf_ini_list l;
	struct buf text = { 0 };
	struct conf c;
	char word[16];
	int k;

	/* Longer than libinih's 200-byte line: no limit here. */
	buf_append(&text, "[program:long]\ncommand = echo", 29);
	for (k = 0; k < 1000; k++) {
		snprintf(word, sizeof word, " w%d", k);
		buf_append(&text, word, strlen(word));
	}
	buf_append(&text, "\ndirectory = %(here)s/sub\nbad line\n", 36);
	ini_read(text.data, path, &c, &l);
	buf_free(&text);
	ck_assert(strlen(conf_ini_get(TAILQ_FIRST(&l), "command")) > 4000);
	dir = strdup(path);
	*strrchr(dir, '/') = '\0';
	want = str_printf("%s/sub", dir);
	ck_assert_str_eq(conf_ini_get(TAILQ_FIRST(&l), "directory"), want);
	/* A line that is no KEY = VALUE: an error for it, the rest read. */
	ck_assert_uint_eq(c.nerrors, 1);
	ck_assert(strstr(c.errors[0], ":4: [program:long]") != NULL);
	free(dir);
	free(want);
	conf_ini_free(&l);
	conf_free(&c);
}
END_TEST

int
main(void)
{
	TCase *tc;
	Suite *s = unit_suite("conf", &tc);

	tcase_add_test(tc, split_like_shlex);
	tcase_add_test(tc, split_errors);
	tcase_add_test(tc, split_command_newlines);
	tcase_add_test(tc, expand_formats);
	tcase_add_test(tc, expand_refusals);
	tcase_add_test(tc, env_pairs);
	tcase_add_test(tc, ini_dialect);
	tcase_add_test(tc, ini_long_line_and_here);
	return UNIT_RUN(s);
}
