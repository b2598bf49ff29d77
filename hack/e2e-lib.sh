# Shared helpers for hack/e2e-podman, hack/e2e-containerd and hack/e2e-docker (sourced, not run).
#
# Each suite: e2e_init NAME RUNTIME_ARG; define e2e_cleanup_hook; run `check` lines; e2e_finish.
# All state lives in a private scratch directory ($E2E) that is removed on exit; nothing outside it
# is configured. Output: one `PASS name` or `FAIL name: command, expected X, got Y` line per check,
# then `N passed, M failed`.

E2E_PASS=0
E2E_FAIL=0
E2E_FAILED_NAMES=()
# Seconds a single check may take before it is killed and reported as failed, and seconds the
# whole suite may take: once spent, the remaining checks fail at once as "not run" (a hanging
# runtime must not hold CI for long).
E2E_CHECK_TIMEOUT=${E2E_CHECK_TIMEOUT:-60}
E2E_BUDGET=${E2E_BUDGET:-280}
# Set E2E_VERBOSE=1 to see every check's output, E2E_KEEP=1 to keep the scratch directory,
# E2E_TRACE=FILE to log every runtime call the callers make.
E2E_VERBOSE=${E2E_VERBOSE:-0}
E2E_KEEP=${E2E_KEEP:-0}

e2e_die() {
	echo "$E2E_SUITE: $*" >&2
	exit 2
}

# e2e_args SUITE ARGS...: the options every suite takes, then at most one RUNTIME. Sets
# E2E_CGM (the cgroup manager the caller is told to use: cgroupfs, the default, or systemd)
# and E2E_RT_ARG (the runtime argument, empty for the default).
e2e_args() {
	E2E_SUITE=$1
	shift
	E2E_CGM=cgroupfs
	E2E_RT_ARG=
	while [ $# -gt 0 ]; do
		case "$1" in
		--cgroup-manager) E2E_CGM=${2:-}; shift 2 ;;
		--cgroup-manager=*) E2E_CGM=${1#*=}; shift ;;
		-h | --help) sed -n '2,/^set -/p' "$0" | sed -e '/^set -/d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
		-*) e2e_die "unknown option $1 (see $0 --help)" ;;
		*)
			[ -z "$E2E_RT_ARG" ] || e2e_die "one RUNTIME only (got '$E2E_RT_ARG' and '$1')"
			E2E_RT_ARG=$1
			shift
			;;
		esac
	done
	case "$E2E_CGM" in
	cgroupfs) ;;
	systemd)
		# The caller and the runtime both talk to systemd over D-Bus.
		[ -d /run/systemd/system ] ||
			e2e_die "--cgroup-manager systemd needs systemd as PID 1 (run it in a guest: hack/vm -- $0 --cgroup-manager systemd)"
		[ -S /run/dbus/system_bus_socket ] || e2e_die "--cgroup-manager systemd needs the D-Bus system bus (package dbus)"
		;;
	*) e2e_die "--cgroup-manager takes cgroupfs or systemd, not '$E2E_CGM'" ;;
	esac
}

# e2e_init SUITE RUNTIME: resolves the runtime (default: the repo's release build), checks root,
# makes the scratch directory and installs the exit trap.
e2e_init() {
	E2E_SUITE=$1
	local rt=${2:-}
	E2E_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	[ -n "$rt" ] || rt=$E2E_REPO/target/release/nucleus
	[ -x "$rt" ] || e2e_die "runtime $rt is not an executable file (build it: cargo build --release, or pass a path)"
	RT=$(cd "$(dirname "$rt")" && pwd)/$(basename "$rt")
	[ "$(id -u)" = 0 ] || e2e_die "must run as root (the callers run rootful containers)"
	E2E=$(mktemp -d "${TMPDIR:-/tmp}/$E2E_SUITE.XXXXXX")
	chmod 755 "$E2E"
	# A short unique tag keeps names (tmux sessions, containers, cgroups) apart between runs.
	E2E_TAG=$$
	E2E_START=$SECONDS
	trap e2e_exit EXIT
	trap 'exit 130' INT TERM
	if [ -n "${E2E_TRACE:-}" ]; then
		e2e_trace_wrapper "$E2E_TRACE"
	fi
	echo "# $E2E_SUITE: runtime $RT, cgroup manager ${E2E_CGM:-cgroupfs}, cgroup $(e2e_cg_v2 && echo v2 || echo v1), scratch $E2E"
}

# E2E_TRACE=FILE: the callers get a wrapper (same base name, so version checks still match) that
# appends every argv they pass to the runtime to FILE, then execs the real runtime unchanged
# (stdin, fds and environment pass through).
e2e_trace_wrapper() {
	local log=$1 w
	case "$log" in /*) ;; *) log=$PWD/$log ;; esac
	mkdir -p "$E2E/trace-bin"
	w=$E2E/trace-bin/$(basename "$RT")
	{
		echo '#!/bin/sh'
		printf 'log=%q
real=%q
' "$log" "$RT"
		cat <<'EOW'
{ printf '%s [ppid %s %s]' "$(date +%T.%N)" "$PPID" "$(tr '\000' ' ' </proc/$PPID/cmdline 2>/dev/null | cut -c1-60)"; for a in "$@"; do printf ' %s' "$a"; done; echo; } >>"$log"
exec "$real" "$@"
EOW
	} >"$w"
	chmod 755 "$w"
	echo "# tracing runtime calls to $log (wrapper $w)"
	RT=$w
}

e2e_exit() {
	local rc=$?
	trap - EXIT INT TERM
	if declare -F e2e_cleanup_hook >/dev/null; then
		e2e_cleanup_hook >"$E2E/cleanup.log" 2>&1 || true
	fi
	e2e_umount_under "$E2E"
	if [ "$E2E_KEEP" = 1 ]; then
		echo "# kept $E2E"
	else
		rm -rf --one-file-system "$E2E" 2>/dev/null || {
			e2e_umount_under "$E2E"
			rm -rf --one-file-system "$E2E" || echo "# $E2E_SUITE: could not remove $E2E" >&2
		}
	fi
	exit "$rc"
}

# Unmounts every mount point at or below DIR, deepest first (daemons leave overlay, shm, netns
# and bind mounts there).
e2e_umount_under() {
	local dir=$1 m
	local i
	for i in 1 2 3; do
		local mounts
		mounts=$(awk -v d="$dir" '{ p=$5; gsub(/\\040/, " ", p); if (p == d || index(p, d "/") == 1) print p }' /proc/self/mountinfo | sort -r)
		[ -n "$mounts" ] || return 0
		while IFS= read -r m; do
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
		done <<<"$mounts"
	done
}

# Waits up to SECONDS (fractional ok) for COMMAND to succeed.
e2e_wait_for() {
	local secs=$1
	shift
	local n
	n=$(awk -v s="$secs" 'BEGIN { printf "%d", s * 10 }')
	while [ "$n" -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
		n=$((n - 1))
	done
	"$@" >/dev/null 2>&1
}

# Kills PID with SIGTERM, then SIGKILL after SECONDS, and waits for it to go.
e2e_stop_pid() {
	local pid=$1 secs=${2:-10}
	[ -n "$pid" ] || return 0
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null
	e2e_wait_for "$secs" e2e_pid_gone "$pid" && return 0
	kill -KILL "$pid" 2>/dev/null
	e2e_wait_for 5 e2e_pid_gone "$pid"
}

e2e_pid_gone() { ! kill -0 "$1" 2>/dev/null; }

# e2e_run CMD [ARGS...]: runs CMD (a command or a shell function) with stdin from /dev/null, in
# its own process group so that a timeout ends everything it started; sets E2E_OUT (stdout and
# stderr) and E2E_RC (124 on timeout).
e2e_run() {
	local left=$((E2E_BUDGET - (SECONDS - E2E_START)))
	if [ "$left" -le 0 ]; then
		E2E_OUT="not run: the suite's time budget of ${E2E_BUDGET}s is spent (E2E_BUDGET)"
		E2E_RC=125
		return
	fi
	local limit=$E2E_CHECK_TIMEOUT
	[ "$left" -lt "$limit" ] && limit=$left
	local f=$E2E/check.out
	set -m
	("$@") >"$f" 2>&1 </dev/null &
	local pid=$!
	set +m
	local ticks=$((limit * 20)) timed_out=0
	while kill -0 "$pid" 2>/dev/null; do
		if [ "$ticks" -le 0 ]; then
			timed_out=1
			kill -TERM -- "-$pid" 2>/dev/null
			sleep 2
			kill -KILL -- "-$pid" 2>/dev/null
			break
		fi
		sleep 0.05
		ticks=$((ticks - 1))
	done
	wait "$pid" 2>/dev/null
	E2E_RC=$?
	E2E_OUT=$(cat "$f")
	if [ "$timed_out" = 1 ]; then
		E2E_RC=124
		E2E_OUT="timed out after ${limit}s; output so far: $E2E_OUT"
	fi
}

# One-line rendering of a check's output for the FAIL line.
e2e_oneline() {
	tr '\n\r\t' '   ' <<<"$1" | tr -s ' ' | sed 's/^ //; s/ $//' | cut -c1-${E2E_GOT_CHARS:-400}
}

e2e_record() { # e2e_record NAME OK WANT OUT RC DESC
	local name=$1 ok=$2 want=$3 out=$4 rc=$5 desc=$6
	if [ "$ok" = 1 ]; then
		E2E_PASS=$((E2E_PASS + 1))
		echo "PASS $name"
		[ "$E2E_VERBOSE" = 1 ] && sed 's/^/    | /' <<<"$out" | head -20
	else
		E2E_FAIL=$((E2E_FAIL + 1))
		E2E_FAILED_NAMES+=("$name")
		echo "FAIL $name: $desc, expected $want, got rc=$rc: $(e2e_oneline "$out")"
	fi
	return 0
}

# check NAME WANT CMD [ARGS...]
# Runs CMD (a command or shell function) through e2e_run; passes when it exits 0 and its output (stdout+stderr) matches the extended regex
# WANT (empty WANT: exit 0 is enough).
check() {
	local name=$1 want=$2
	shift 2
	local out rc desc
	desc=$(e2e_describe "$@")
	e2e_run "$@"
	out=$E2E_OUT rc=$E2E_RC
	local ok=0
	if [ "$rc" = 0 ] && { [ -z "$want" ] || grep -Eq -- "$want" <<<"$out"; }; then ok=1; fi
	local w="exit 0"
	[ -n "$want" ] && w="exit 0 and output matching /$want/"
	e2e_record "$name" "$ok" "$w" "$out" "$rc" "$desc"
}

# check_rc NAME WANT_RC CMD [ARGS...]: passes when CMD exits with exactly WANT_RC.
check_rc() {
	local name=$1 want_rc=$2
	shift 2
	local out rc desc
	desc=$(e2e_describe "$@")
	e2e_run "$@"
	out=$E2E_OUT rc=$E2E_RC
	local ok=0
	[ "$rc" = "$want_rc" ] && ok=1
	e2e_record "$name" "$ok" "exit code $want_rc" "$out" "$rc" "$desc"
}

# check_out NAME EXACT CMD [ARGS...]: passes when CMD exits 0 and its whole output
# (stdout+stderr) is exactly EXACT: nothing extra (such as runtime warnings) reaches the user.
check_out() {
	local name=$1 exact=$2
	shift 2
	local out rc desc
	desc=$(e2e_describe "$@")
	e2e_run "$@"
	out=$E2E_OUT rc=$E2E_RC
	local ok=0
	[ "$rc" = 0 ] && [ "$out" = "$exact" ] && ok=1
	e2e_record "$name" "$ok" "exit 0 and exactly '$exact' as output" "$out" "$rc" "$desc"
}

# check_fails NAME WANT CMD [ARGS...]: passes when CMD exits non-zero and its output matches the
# extended regex WANT (the error a user sees names the problem).
check_fails() {
	local name=$1 want=$2
	shift 2
	local out rc desc
	desc=$(e2e_describe "$@")
	e2e_run "$@"
	out=$E2E_OUT rc=$E2E_RC
	local ok=0
	[ "$rc" != 0 ] && [ "$rc" != 124 ] && grep -Eq -- "$want" <<<"$out" && ok=1
	e2e_record "$name" "$ok" "failure with output matching /$want/" "$out" "$rc" "$desc"
}

# The command as a user would type it, with the scratch dir shortened to $E2E and the caller's
# long private flags elided, so FAIL lines stay readable.
e2e_describe() {
	local s="" a
	if declare -F "$1" >/dev/null; then
		s="$1 ($(e2e_fn_desc "$1"))"
	else
		for a in "$@"; do
			case "$a" in
			*[[:space:]]* | *\'* | *\"* | *'$'*) s+=" '${a//\'/\'\\\'\'}'" ;;
			*) s+=" $a" ;;
			esac
		done
	fi
	s=${s# }
	s=${s//$E2E/\$E2E}
	echo "$s"
}

# A function used as a check may describe itself in E2E_DESC_<name>.
e2e_fn_desc() {
	local v="E2E_DESC_$1"
	echo "${!v:-shell function}"
}

e2e_finish() {
	if [ "$E2E_FAIL" -gt 0 ]; then
		echo "# $E2E_SUITE failed checks: ${E2E_FAILED_NAMES[*]}"
	fi
	echo "$E2E_PASS passed, $E2E_FAIL failed"
	[ "$E2E_FAIL" -eq 0 ]
}

# e2e_skip NAME REASON: prints a SKIP line (not counted as passed or failed).
e2e_skip() {
	echo "SKIP $1: $2"
}

# Builds DIR/rootfs.tar: static busybox with one symlink per applet, minimal passwd/group, a
# sticky /tmp and the empty mount points callers expect.
e2e_make_rootfs_tar() {
	local out=$1 r
	r=$(dirname "$out")/rootfs
	[ -x /usr/bin/busybox ] || e2e_die "/usr/bin/busybox is missing: run hack/e2e-deps (busybox-static)"
	mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,run,var}
	cp /usr/bin/busybox "$r/bin/busybox"
	local a
	for a in $(/usr/bin/busybox --list); do
		[ "$a" = busybox ] || ln -sf busybox "$r/bin/$a"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$r/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
	chmod 1777 "$r/tmp"
	tar --numeric-owner -C "$r" -cf "$out" .
	rm -rf "$r"
}

# Every tool a suite needs, with the package that has it.
e2e_require() {
	local t
	for t in "$@"; do
		command -v "${t%%:*}" >/dev/null || e2e_die "${t%%:*} not found: run hack/e2e-deps (package ${t#*:})"
	done
}

# tmux_session_check TAG COMMAND: starts COMMAND (an interactive sh) in a 100x30 tmux window,
# types a command, resizes the window to 90x25, asks for the size again, exits, and prints the
# screen. Callers match hello-42 and the two sizes.
e2e_tmux_session() {
	local s="e2e-$E2E_SUITE-$E2E_TAG-$1" cmd=$2
	local sock="$E2E/tmux.sock"
	tmux -S "$sock" kill-session -t "$s" 2>/dev/null
	tmux -S "$sock" new-session -d -s "$s" -x 100 -y 30 "$cmd; echo session-exit=\$?; sleep 3" || return 1
	# Wait for the shell prompt rather than sleeping blindly.
	local i
	for i in $(seq 1 50); do
		tmux -S "$sock" capture-pane -p -t "$s" 2>/dev/null | grep -q '[#$] *$' && break
		sleep 0.1
	done
	tmux -S "$sock" send-keys -t "$s" 'echo hello-$((6*7)); stty size' Enter
	sleep 1
	tmux -S "$sock" resize-window -t "$s" -x 90 -y 25 2>/dev/null
	sleep 0.5
	tmux -S "$sock" send-keys -t "$s" 'stty size' Enter
	sleep 1
	tmux -S "$sock" send-keys -t "$s" 'exit' Enter
	for i in $(seq 1 30); do
		tmux -S "$sock" capture-pane -p -t "$s" 2>/dev/null | grep -q 'session-exit=' && break
		sleep 0.1
	done
	tmux -S "$sock" capture-pane -p -t "$s"
	tmux -S "$sock" kill-session -t "$s" 2>/dev/null
	tmux -S "$sock" kill-server 2>/dev/null
	return 0
}

# --- cgroups: where a container is, what its files say ---------------------------------------

# True on a pure cgroup v2 host (the cgroup2 hierarchy mounted at /sys/fs/cgroup).
e2e_cg_v2() { [ -f /sys/fs/cgroup/cgroup.controllers ]; }

# e2e_pid_cgroup PID [CONTROLLER]: PID's cgroup path as /proc/PID/cgroup gives it (the caller's
# view, no cgroup namespace): the cgroup2 line on v2, CONTROLLER's line (default memory) on v1.
e2e_pid_cgroup() {
	local pid=$1 ctrl=${2:-memory}
	if e2e_cg_v2; then
		sed -n 's/^0:://p' "/proc/$pid/cgroup"
	else
		awk -F: -v c="$ctrl" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' "/proc/$pid/cgroup"
	fi
}

# e2e_cg_dir CONTROLLER PATH: the directory of cgroup PATH in CONTROLLER's hierarchy.
e2e_cg_dir() {
	if e2e_cg_v2; then echo "/sys/fs/cgroup$2"; else echo "/sys/fs/cgroup/$1$2"; fi
}

# e2e_cg_limits PATH: the limits in the files of cgroup PATH, the same words on v1 and v2:
# `mem=<bytes> quota=<us> period=<us> pids=<n> cpu=<weight on v2, shares on v1>`.
e2e_cg_limits() {
	local p=$1 d
	if e2e_cg_v2; then
		d=/sys/fs/cgroup$p
		read -r quota period <"$d/cpu.max"
		echo "mem=$(cat "$d/memory.max") quota=$quota period=$period pids=$(cat "$d/pids.max") cpu=$(cat "$d/cpu.weight")"
	else
		echo "mem=$(cat "/sys/fs/cgroup/memory$p/memory.limit_in_bytes")" \
			"quota=$(cat "/sys/fs/cgroup/cpu$p/cpu.cfs_quota_us")" \
			"period=$(cat "/sys/fs/cgroup/cpu$p/cpu.cfs_period_us")" \
			"pids=$(cat "/sys/fs/cgroup/pids$p/pids.max")" "cpu=$(cat "/sys/fs/cgroup/cpu$p/cpu.shares")"
	fi
}

# The `cpu=` value e2e_cg_limits shows for cpu shares 512 (v2: runc's shares → weight mapping).
e2e_cpu_512() { if e2e_cg_v2; then echo 20; else echo 512; fi; }

# e2e_cg_frozen PATH: FROZEN or THAWED, from cgroup PATH's freezer (v1 freezer.state, v2
# cgroup.events).
e2e_cg_frozen() {
	if e2e_cg_v2; then
		grep -q '^frozen 1$' "/sys/fs/cgroup$1/cgroup.events" && echo FROZEN || echo THAWED
	else
		cat "/sys/fs/cgroup/freezer$1/freezer.state"
	fi
}

# e2e_cg_gone PATH: `gone` when cgroup PATH exists in no hierarchy, else `left: <dirs>`.
e2e_cg_gone() {
	local left=() d
	if e2e_cg_v2; then
		[ -d "/sys/fs/cgroup$1" ] && left+=("/sys/fs/cgroup$1")
	else
		for d in /sys/fs/cgroup/*"$1"; do [ -d "$d" ] && left+=("$d"); done
	fi
	if [ "${#left[@]}" -eq 0 ]; then echo gone; else echo "left: ${left[*]}"; fi
}

# A shell snippet for inside a container with its own cgroup namespace (the cgroup's files at
# /sys/fs/cgroup): prints the memory limit, v1 or v2.
E2E_IN_MEM='cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes'

# e2e_unit UNIT: systemd's view of UNIT in one line, `<ActiveState> <ControlGroup>` (or
# `not-found` when systemd has no such unit loaded).
e2e_unit() {
	local load
	load=$(systemctl show -p LoadState --value "$1" 2>/dev/null)
	if [ "$load" != loaded ]; then
		echo not-found
		return
	fi
	echo "$(systemctl show -p ActiveState --value "$1") $(systemctl show -p ControlGroup --value "$1")"
}

# e2e_unit_props UNIT PROP...: `PROP=value` for each, on one line.
e2e_unit_props() {
	local u=$1 p out=()
	shift
	for p in "$@"; do out+=("$p=$(systemctl show -p "$p" --value "$u")"); done
	echo "${out[*]}"
}
