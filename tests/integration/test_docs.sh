#!/bin/bash
# test_docs.sh: the documentation is well-formed and complete.
#
# - shellcheck passes on the bash completion and on tests/integration/*.sh;
# - each man page renders without a single groff warning;
# - every command of wardctl's command table (as `wardctl help` lists it),
#   and every option in its usage, is in wardctl.1 and is completed by
#   contrib/bash-completion/wardctl;
# - the completion offers the instance names of a running wardd;
# - every method of proto/ward-proto.h has its own heading in
#   ward-protocol.7;
# - every function client/ward.h declares has a prototype entry (a .BI
#   line) in libward.3, and each entry there is a function of ward.h; the
#   EXAMPLES program of libward.3 compiles against ward.h.
#
# Needs shellcheck, man (man-db) and groff (groff-base); a check whose tool
# is missing is reported as skipped. Prints TAP; exits 1 if a check failed.

set -u

here=$(cd "$(dirname "$0")/../.." && pwd)
src=${WARD_SRCDIR:-$here}
build=${WARD_BUILDDIR:-$here}
wardctl=$build/client/wardctl
wardd=$build/src/wardd
completion=$src/contrib/bash-completion/wardctl
pages=("$src/man/wardd.8" "$src/man/wardctl.1" "$src/man/ward-protocol.7" "$src/man/libward.3"
    "$src/man/ward.conf.5")

status=()	# "ok" or "not ok", per check
results=()	# its description (and diagnostics), per check
failed=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ward-docs.XXXXXX")
wardd_pid=

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup()
{
	if [[ -n $wardd_pid ]]; then
		kill -TERM "$wardd_pid" 2>/dev/null
		wait "$wardd_pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# ok DESCRIPTION / not_ok DESCRIPTION [DIAGNOSTIC...] / skip DESCRIPTION WHY
ok()
{
	status+=("ok")
	results+=("$1")
}

not_ok()
{
	local line=$1 d

	shift
	for d in "$@"; do
		line+=$'\n'"# ${d//$'\n'/$'\n'# }"
	done
	status+=("not ok")
	results+=("$line")
	failed=1
}

skip()
{
	status+=("ok")
	results+=("$1 # SKIP $2")
}

# Lines as one line of words.
flat()
{
	local -a a
	local IFS=' '

	mapfile -t a <<<"$1"
	echo "${a[*]}"
}

have()
{
	command -v "$1" >/dev/null 2>&1
}

# Plain text of a man page (no overstriking, no escapes), 80 columns.
render()
{
	groff -man -Tutf8 -rLL=74n -P-c -P-b -P-u "$1" 2>/dev/null
}

# The lines of one section (from its heading to the next) of rendered text.
section()
{
	sed -n "/^$1\$/,/^[A-Z][A-Z ]*\$/p"
}

# Run the completion function on the words given; COMPREPLY, one a line.
complete_words()
{
	(
		# shellcheck source=/dev/null
		source "$completion" || exit 1
		COMP_WORDS=("$@")
		COMP_CWORD=$(($# - 1))
		unset COMP_LINE COMP_POINT
		COMPREPLY=()
		_wardctl 2>/dev/null
		printf '%s\n' "${COMPREPLY[@]}"
	)
}

# ---- shellcheck

if have shellcheck; then
	for f in "$completion" "$src"/tests/integration/*.sh; do
		name=${f#"$src"/}
		if out=$(shellcheck -s bash "$f" 2>&1); then
			ok "shellcheck $name"
		else
			not_ok "shellcheck $name" "$out"
		fi
	done
else
	skip "shellcheck" "shellcheck is not installed"
fi

# ---- man pages render without warnings

for page in "${pages[@]}"; do
	name=${page#"$src"/}
	if [[ ! -f $page ]]; then
		not_ok "$name renders without warnings" "$page is missing"
		continue
	fi
	if have man; then
		out=$(MANWIDTH=80 man -l --warnings=w -E UTF-8 "$page" 2>&1 >/dev/null)
		if [[ -z $out ]]; then
			ok "man -l --warnings=w $name: no warnings"
		else
			not_ok "man -l --warnings=w $name: no warnings" "$out"
		fi
	else
		skip "man -l --warnings=w $name" "man (man-db) is not installed"
	fi
	if have groff; then
		out=$(groff -man -ww -z "$page" 2>&1)
		if [[ -z $out ]]; then
			ok "groff -man -ww $name: no warnings"
		else
			not_ok "groff -man -ww $name: no warnings" "$out"
		fi
	else
		skip "groff -man -ww $name" "groff (groff-base) is not installed"
	fi
done

# ---- every wardctl command and option: in wardctl.1, and completed

commands=()
if [[ -x $wardctl ]] && help=$("$wardctl" help 2>&1); then
	mapfile -t commands < <(sed -n 's/^  \([a-z][a-z-]*\)  *.*/\1/p' <<<"$help")
fi
if ((${#commands[@]} < 10)); then
	not_ok "wardctl help lists the commands" \
	    "$wardctl help gave ${#commands[@]} commands:" "${help:-nothing}"
else
	ok "wardctl help lists ${#commands[@]} commands"
fi

if have groff; then
	man_commands=$(render "$src/man/wardctl.1" | section COMMANDS)
else
	man_commands=""
fi
top_level=$(complete_words wardctl "")

for cmd in "${commands[@]}"; do
	usage=$("$wardctl" help "$cmd" 2>&1 | sed -n 's/^usage: //p')
	# Its options, from the usage line of the command table.
	mapfile -t options < <(grep -oE '(^|[[ ])--?[a-z][a-z-]*' <<<"$usage" |
	    sed 's/^[[ ]//')

	if ! have groff; then
		skip "wardctl.1 documents $cmd" "groff is not installed"
	elif ! grep -qE "^ {7}$cmd( |\$)" <<<"$man_commands"; then
		not_ok "wardctl.1 documents $cmd" "no entry for '$cmd' under COMMANDS"
	else
		missing=()
		for o in "${options[@]}"; do
			grep -qF -- "$o" <<<"$man_commands" || missing+=("$o")
		done
		if ((${#missing[@]})); then
			not_ok "wardctl.1 documents $cmd and its options" \
			    "usage: $usage" "not under COMMANDS: ${missing[*]}"
		else
			ok "wardctl.1 documents $cmd${options[*]:+ and ${options[*]}}"
		fi
	fi

	if ! grep -qxF -- "$cmd" <<<"$top_level"; then
		not_ok "completion offers $cmd" "offered: $(flat "$top_level")"
		continue
	fi
	missing=()
	for o in "${options[@]}"; do
		if [[ $cmd == run ]]; then
			got=$(complete_words wardctl run NAME "${o:0:2}")
		else
			got=$(complete_words wardctl "$cmd" "${o:0:2}")
		fi
		grep -qxF -- "$o" <<<"$got" || missing+=("$o")
	done
	if ((${#missing[@]})); then
		not_ok "completion offers $cmd and its options" \
		    "usage: $usage" "not offered: ${missing[*]}"
	else
		ok "completion offers $cmd${options[*]:+ and ${options[*]}}"
	fi
done

got=$(complete_words wardctl kill -s TE)
if grep -qxF TERM <<<"$got"; then
	ok "completion offers signal names after kill -s"
else
	not_ok "completion offers signal names after kill -s" "offered: $got"
fi
got=$(complete_words wardctl payload web "")
if [[ $(flat "$got") == "started ready finished" ]]; then
	ok "completion offers payload states"
else
	not_ok "completion offers payload states" "offered: $got"
fi
got=$(complete_words wardctl help "")
if [[ $(flat "$got") == "$(flat "$top_level")" && -n $got ]]; then
	ok "completion offers commands after help"
else
	not_ok "completion offers commands after help" "offered: $got"
fi

# ---- instance names from a running wardd, on the --socket of the line

sock=$tmp/ward.sock
if [[ ! -x $wardd ]]; then
	not_ok "completion offers instance names" "$wardd is not built"
else
	XDG_RUNTIME_DIR=$tmp "$wardd" --socket "$sock" --state-dir "$tmp/state" \
	    --log-level warning 2>"$tmp/wardd.log" &
	wardd_pid=$!
	for ((i = 0; i < 200; i++)); do
		"$wardctl" --socket "$sock" info >/dev/null 2>&1 && break
		sleep 0.05
	done
	"$wardctl" --socket "$sock" run docs-web -- sleep 60 >/dev/null 2>&1
	"$wardctl" --socket "$sock" run docs:vm -- sleep 60 >/dev/null 2>&1
	got=$(complete_words "$wardctl" --socket "$sock" status "")
	if [[ $(flat "$got") == "docs-web docs:vm" ]]; then
		ok "completion offers instance names from wardd --socket"
	else
		not_ok "completion offers instance names from wardd --socket" \
		    "offered: $got" "wardd: $(cat "$tmp/wardd.log")"
	fi
	got=$(complete_words "$wardctl" "--socket=$sock" stop --timeout 9 docs-w)
	if [[ $got == docs-web ]]; then
		ok "completion honours --socket=PATH"
	else
		not_ok "completion honours --socket=PATH" "offered: $got"
	fi
	# README's "talk to it" line, pointed at this wardd: it must answer.
	line=$(grep -m1 -E "^    (/usr/bin/)?python3 -c " "$src/README.md")
	line=${line//\/run\/ward\/ward.sock/$sock}
	line=${line//\"nap\"/\"docs-nap\"}
	# ... even where python3 on PATH is not Debian's (pyenv's, without
	# msgpack): here one that fails.
	mkdir -p "$tmp/otherbin"
	printf '#!/bin/sh\necho not Debian python >&2\nexit 1\n' \
	    >"$tmp/otherbin/python3"
	chmod +x "$tmp/otherbin/python3"
	got=$(cd "$tmp" && PATH=$tmp/otherbin:$PATH bash -c "$line" 2>&1)
	if [[ -n $line && $got =~ ^\[1,\ 1,\ None,\ \{\'id\':\ [0-9]+,.*\'state\':\ \'running\' ]]; then
		ok "README's python3 example talks to wardd"
	else
		not_ok "README's python3 example talks to wardd" "ran: $line" \
		    "got: $got"
	fi
	got=$(complete_words "$wardctl" --socket "$tmp/nowhere.sock" status "")
	if [[ -z $got ]]; then
		ok "completion offers nothing when wardd is not there"
	else
		not_ok "completion offers nothing when wardd is not there" \
		    "offered: $got"
	fi
fi

# ---- every protocol method has a heading in ward-protocol.7

mapfile -t methods < <(sed -n \
    's/^#define[[:space:]]*WARD_M_[A-Z_]*[[:space:]]*"\([^"]*\)".*/\1/p' \
    "$src/proto/ward-proto.h")
if ((${#methods[@]} < 10)); then
	not_ok "ward-proto.h lists the methods" "found: ${methods[*]}"
elif ! have groff; then
	skip "ward-protocol.7 documents every method" "groff is not installed"
else
	headings=$(render "$src/man/ward-protocol.7" | section METHODS |
	    grep -E '^ {3}[^ ]')
	missing=()
	for m in "${methods[@]}"; do
		grep -qE "(^| )${m//./\\.}( |\$)" <<<"$headings" || missing+=("$m")
	done
	if ((${#missing[@]})); then
		not_ok "ward-protocol.7 documents every method" \
		    "no heading under METHODS for: ${missing[*]}"
	else
		ok "ward-protocol.7 documents all ${#methods[@]} methods"
	fi
fi

# ---- every function of client/ward.h has an entry in libward.3

# The functions ward.h declares: each name followed by "(", outside
# comments (a typedef's "(*name)(" is not one).
mapfile -t functions < <(sed -z 's:/\*\([^*]\|\*\+[^*/]\)*\*\+/: :g' \
    "$src/client/ward.h" | tr -d '\0' |
    grep -oE '(^|[^a-z0-9_])ward_[a-z0-9_]+[[:space:]]*\(' |
    grep -oE 'ward_[a-z0-9_]+' | sort -u)
libman=$src/man/libward.3
if ((${#functions[@]} < 40)); then
	not_ok "ward.h declares libward's functions" "found: ${functions[*]}"
elif [[ ! -f $libman ]]; then
	not_ok "libward.3 documents every function of ward.h" "$libman is missing"
else
	# An entry is a prototype: a .BI (or .B) line with "NAME(".
	missing=()
	for f in "${functions[@]}"; do
		grep -qE "^\.BI? .*[^a-z0-9_]$f\(" "$libman" || missing+=("$f")
	done
	if ((${#missing[@]})); then
		not_ok "libward.3 documents every function of ward.h" \
		    "no prototype entry (.BI \"... NAME(...\") for: ${missing[*]}"
	else
		ok "libward.3 documents all ${#functions[@]} functions of ward.h"
	fi
	mapfile -t stale < <(grep -oE '^\.BI? "[^"]*[^a-z0-9_]ward_[a-z0-9_]+\(' \
	    "$libman" | grep -oE 'ward_[a-z0-9_]+\($' | tr -d '(' | sort -u |
	    comm -13 <(printf '%s\n' "${functions[@]}") -)
	if ((${#stale[@]})); then
		not_ok "libward.3 documents only functions of ward.h" \
		    "not in ward.h: ${stale[*]}"
	else
		ok "libward.3 documents only functions of ward.h"
	fi
	# Its EXAMPLES program, unescaped, compiles against this ward.h.
	read -ra cc <<<"${CC:-cc}"
	if ! have "${cc[0]}"; then
		skip "libward.3's example compiles" "${cc[0]} is not installed"
	else
		sed -n '/^\.SH EXAMPLES/,/^\.SH /p' "$libman" |
		    sed -n '/^\.nf/,/^\.fi/{/^\.[nf][fi]$/d;p}' |
		    sed -e 's/\\e/\\/g' -e 's/\\-/-/g' >"$tmp/example.c"
		# shellcheck disable=SC2046  # pkg-config's words are flags
		if out=$("${cc[@]}" -fsyntax-only -Wall -Wextra -Werror \
		    -I"$src/client" $(pkg-config --cflags msgpack 2>/dev/null) \
		    "$tmp/example.c" 2>&1) && grep -q ward_connect "$tmp/example.c"
		then
			ok "libward.3's example compiles"
		else
			not_ok "libward.3's example compiles" "${out:-no program}"
		fi
	fi
fi

# ---- TAP

echo "1..${#results[@]}"
for ((i = 0; i < ${#results[@]}; i++)); do
	printf '%s %d - %s\n' "${status[i]}" "$((i + 1))" "${results[i]}"
done
exit "$failed"
