/*
 * conf-expand.c: supervisord's %(NAME)s expansions in a config value, as
 * supervisord does them (Python's "value % dict"): %(program_name)s,
 * %(group_name)s, %(process_num)02d, %(numprocs)d, %(host_node_name)s,
 * %(here)s, %(ENV_X)s; %% is one %; any other % is an error, and so is a
 * name the value's section does not have (supervisord refuses both).
 * Pure text: confdir-program.c and conf-super.c say which names a value
 * has.
 *
 * layer: programs (calls only base: util)
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "ward.h"

/* ENV_X: the section's own variables (last wins), then wardd's. */
static const char *
conf_expand_env(const struct conf_vars *vars, const char *name)
{
	size_t k, n = strlen(name);

	for (k = vars->nenv; k > 0; k--) {
		const char *e = vars->env[k - 1];

		if (strncmp(e, name, n) == 0 && e[n] == '=')
			return e + n + 1;
	}
	return getenv(name);
}

/*
 * The value of name in vars: a string (*s) or a number (*num, 1 returned).
 * 0 a string, 1 a number, -1 no such name here.
 */
static int
conf_expand_lookup(const struct conf_vars *vars, const char *name,
    const char **s, long *num)
{
	*s = NULL;
	if (strcmp(name, "here") == 0)
		*s = vars->here;
	else if (strcmp(name, "host_node_name") == 0)
		*s = vars->host_node_name;
	else if (strcmp(name, "program_name") == 0)
		*s = vars->program_name;
	else if (strcmp(name, "group_name") == 0)
		*s = vars->group_name;
	else if (strcmp(name, "process_num") == 0 && vars->numprocs > 0) {
		*num = vars->process_num;
		return 1;
	} else if (strcmp(name, "numprocs") == 0 && vars->numprocs > 0) {
		*num = vars->numprocs;
		return 1;
	} else if (strncmp(name, "ENV_", 4) == 0)
		*s = conf_expand_env(vars, name + 4);
	return *s != NULL ? 0 : -1;
}

/* Python's %-format flags, width and precision ('*' is not allowed). */
struct conf_expand_spec {
	int	minus, zero, plus, space, alt;
	long	width, prec;		/* prec -1: none */
	char	conv;
};

/* Append text formatted as spec says: pad, sign, prefix; 0 or -1. */
static int
conf_expand_pad(struct buf *b, const struct conf_expand_spec *sp,
    const char *sign, const char *body, size_t blen, int numeric)
{
	size_t len = strlen(sign) + blen, k;
	int r = 0;

	if (sp->width > 0 && (size_t)sp->width > len && !sp->minus &&
	    !(numeric && sp->zero)) {
		for (k = len; k < (size_t)sp->width; k++)
			r |= buf_append(b, " ", 1);
	}
	r |= buf_append(b, sign, strlen(sign));
	if (sp->width > 0 && (size_t)sp->width > len && !sp->minus &&
	    numeric && sp->zero) {
		for (k = len; k < (size_t)sp->width; k++)
			r |= buf_append(b, "0", 1);
	}
	r |= buf_append(b, body, blen);
	if (sp->width > 0 && (size_t)sp->width > len && sp->minus) {
		for (k = len; k < (size_t)sp->width; k++)
			r |= buf_append(b, " ", 1);
	}
	return r;
}

/* A number as conversion sp->conv (d i u x X o c) wants it, appended. */
static int
conf_expand_num(struct buf *b, const struct conf_expand_spec *sp, long num)
{
	char digits[64], body[160], sign[8] = "";
	unsigned long u = num < 0 ? -(unsigned long)num : (unsigned long)num;
	size_t n;

	if (sp->conv == 'c') {
		body[0] = (char)num;
		return conf_expand_pad(b, sp, "", body, 1, 0);
	}
	if (sp->conv == 'x')
		snprintf(digits, sizeof digits, "%lx", u);
	else if (sp->conv == 'X')
		snprintf(digits, sizeof digits, "%lX", u);
	else if (sp->conv == 'o')
		snprintf(digits, sizeof digits, "%lo", u);
	else
		snprintf(digits, sizeof digits, "%lu", u);
	snprintf(sign, sizeof sign, "%s%s", num < 0 ? "-" : sp->plus ? "+" :
	    sp->space ? " " : "", !sp->alt ? "" : sp->conv == 'x' ? "0x" :
	    sp->conv == 'X' ? "0X" : sp->conv == 'o' ? "0o" : "");
	n = strlen(digits);
	body[0] = '\0';
	if (sp->prec > (long)n && sp->prec < 64)
		snprintf(body, sizeof body, "%0*d", (int)(sp->prec - n), 0);
	snprintf(body + strlen(body), sizeof body - strlen(body), "%s", digits);
	return conf_expand_pad(b, sp, sign, body, strlen(body), 1);
}

/* One "%(name)FLAGS WIDTH .PREC CONV" at p (past the '%('), into b. */
static const char *
conf_expand_one(const char *p, const struct conf_vars *vars, struct buf *b,
    struct ward_err *e)
{
	struct conf_expand_spec sp;
	const char *end = strchr(p, ')'), *s;
	char name[128], numtxt[32];
	long num = 0;
	int kind, r;

	if (end == NULL || (size_t)(end - p) >= sizeof name) {
		ward_err_set(e, WARD_E_INVALID_ARGUMENT, "badly formatted "
		    "(an unclosed %%( )");
		return NULL;
	}
	memcpy(name, p, end - p);
	name[end - p] = '\0';
	if ((kind = conf_expand_lookup(vars, name, &s, &num)) == -1) {
		ward_err_set(e, WARD_E_INVALID_ARGUMENT, "names %%(%s) which "
		    "cannot be expanded here (available: here, host_node_name, "
		    "ENV_*%s)", name, vars->program_name != NULL ? ", "
		    "program_name, group_name, process_num, numprocs" : "");
		return NULL;
	}
	memset(&sp, 0, sizeof sp);
	sp.prec = -1;
	for (end++; *end != '\0' && strchr("#0- +", *end) != NULL; end++) {
		sp.alt |= *end == '#';
		sp.zero |= *end == '0';
		sp.minus |= *end == '-';
		sp.space |= *end == ' ';
		sp.plus |= *end == '+';
	}
	for (; isdigit((unsigned char)*end) && sp.width < 4096; end++)
		sp.width = sp.width * 10 + (*end - '0');
	if (*end == '.') {
		for (sp.prec = 0, end++; isdigit((unsigned char)*end) &&
		    sp.prec < 4096; end++)
			sp.prec = sp.prec * 10 + (*end - '0');
	}
	end += strspn(end, "hlL");
	if (*end == '\0' || strchr("sradiuxXoc", *end) == NULL) {
		ward_err_set(e, WARD_E_INVALID_ARGUMENT, "badly formatted after "
		    "%%(%s) (a conversion such as s or d must follow)", name);
		return NULL;
	}
	sp.conv = *end;
	if (strchr("sra", sp.conv) != NULL) {
		size_t n;

		if (kind == 1) {
			snprintf(numtxt, sizeof numtxt, "%ld", num);
			s = numtxt;
		}
		n = strlen(s);
		if (sp.prec >= 0 && (size_t)sp.prec < n)
			n = sp.prec;
		/* repr() of a string quotes it; of a number it is the number. */
		if (sp.conv != 's' && kind == 0) {
			char *q = str_printf("'%.*s'", (int)n, s);

			r = q == NULL ? -1 :
			    conf_expand_pad(b, &sp, "", q, strlen(q), 0);
			free(q);
		} else
			r = conf_expand_pad(b, &sp, "", s, n, 0);
	} else if (kind == 0) {
		ward_err_set(e, WARD_E_INVALID_ARGUMENT, "%%(%s)%c needs a number; "
		    "%s is a string", name, sp.conv, name);
		return NULL;
	} else
		r = conf_expand_num(b, &sp, num);
	if (r != 0) {
		ward_err_oom(e);
		return NULL;
	}
	return end + 1;
}

/*
 * v with its %(...) expanded from vars; NULL with e set when supervisord
 * would refuse it (or out of memory).
 */
char *
conf_expand(const char *v, const struct conf_vars *vars, struct ward_err *e)
{
	struct buf b = { 0 };
	const char *p = v, *pct;

	while ((pct = strchr(p, '%')) != NULL) {
		if (buf_append(&b, p, pct - p) == -1)
			goto nomem;
		if (pct[1] == '%') {
			if (buf_append(&b, "%", 1) == -1)
				goto nomem;
			p = pct + 2;
		} else if (pct[1] == '(') {
			if ((p = conf_expand_one(pct + 2, vars, &b, e)) == NULL) {
				buf_free(&b);
				return NULL;
			}
		} else {
			ward_err_set(e, WARD_E_INVALID_ARGUMENT, "badly "
			    "formatted: a %% is written %%%% (supervisord's "
			    "rule), or begins %%(NAME)s");
			buf_free(&b);
			return NULL;
		}
	}
	if (buf_append(&b, p, strlen(p) + 1) == -1)
		goto nomem;
	return b.data;
nomem:
	buf_free(&b);
	ward_err_oom(e);
	return NULL;
}

/* %(host_node_name)s: the node name, as Python's platform.node(). */
const char *
conf_host_node_name(void)
{
	static struct utsname u;

	if (u.nodename[0] == '\0' && uname(&u) == -1)
		return "";
	return u.nodename;
}
