# Shared helpers for hack/bench-lifecycle and hack/check-rss (sourced, not run): each runtime
# `run`s one bundle from inside a long-lived holder's private mount namespace, entered the same
# way for all (sh + nsenter -m), so the wrapper costs every runtime alike.
#
# crun 1.8 refuses a hybrid cgroup host (a cgroup2 mount at /sys/fs/cgroup/unified next to v1
# hierarchies): its holder has that mount hidden ($hide_unified); nothing on the host changes.
#
# The caller defines die(), sets $work (its scratch directory) and $bundle, optionally $sdflag
# (--systemd-cgroup), and sets `trap 'bench_cleanup; stop_holders' EXIT`.

holders=()

# holder PRE: start a holder (`sleep` in a private mount namespace, after the shell commands
# PRE, each ending in `&& `) and print its pid.
holder() {
	local pre=$1
	unshare -m --propagation private sh -c "${pre}exec sleep 1000000" </dev/null >/dev/null 2>&1 &
	local pid=$!
	holders+=("$pid")
	for _ in $(seq 500); do
		[ "$(readlink "/proc/$pid/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] &&
			[ "$(readlink "/proc/$pid/exe")" = "$(readlink -f "$(command -v sleep)")" ] && break
		sleep 0.01
	done
	[ "$(readlink "/proc/$pid/exe")" = "$(readlink -f "$(command -v sleep)")" ] || die "mount namespace holder did not start"
	echo "$pid"
}

stop_holders() {
	for pid in "${holders[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${holders[@]}"; do wait "$pid" 2>/dev/null || true; done
}

# The holder commands that hide the hybrid layout's cgroup2 mount from crun (none elsewhere).
hide_unified=""
if mountpoint -q /sys/fs/cgroup/unified 2>/dev/null; then
	hide_unified="umount /sys/fs/cgroup/unified && "
fi

# wrapper NAME RUNTIME HOLDER: scripts $work/NAME (`run` the bundle with a fresh id),
# NAME.list, NAME.delete and NAME.inside TOOL... (the run under TOOL), with a state root of their own in $work/roots.
wrapper() {
	local name=$1 rt=$2 h=$3 root=$work/roots/$1
	nsenter -t "$h" -m -- mkdir -p "$root"
	printf '#!/bin/sh\nexec nsenter -t %s -m -- "%s" %s--root "%s" run --bundle "%s" "bench-$$"\n' \
		"$h" "$rt" "${sdflag:+$sdflag }" "$root" "$bundle" >"$work/$name"
	printf '#!/bin/sh\nexec nsenter -t %s -m -- "%s" %s--root "%s" list -q\n' "$h" "$rt" "${sdflag:+$sdflag }" "$root" >"$work/$name.list"
	printf '#!/bin/sh\nexec nsenter -t %s -m -- "%s" %s--root "%s" delete --force "$1"\n' \
		"$h" "$rt" "${sdflag:+$sdflag }" "$root" >"$work/$name.delete"
	# The same run with TOOL... (strace, GNU time) started inside the holder's namespace, so
	# that it sees the runtime's own process tree, not the wrapper's sh and nsenter.
	printf '#!/bin/sh\nexec nsenter -t %s -m -- "$@" "%s" %s--root "%s" run --bundle "%s" "bench-$$"\n' \
		"$h" "$rt" "${sdflag:+$sdflag }" "$root" "$bundle" >"$work/$name.inside"
	chmod +x "$work/$name" "$work/$name.list" "$work/$name.delete" "$work/$name.inside"
}

# Delete what any wrapper's runtime left and remove $work.
bench_cleanup() {
	local list id
	for list in "$work"/*.list; do
		[ -x "$list" ] || continue
		for id in $("$list" 2>/dev/null); do
			"${list%.list}.delete" "$id" >/dev/null 2>&1 || true
		done
	done
	rm -rf "$work"
}

median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print 0; else print a[int((NR+1)/2)]}'; }

# peak_rss NAME RUNS: the median over RUNS runs of $work/NAME of its peak RSS in KB (GNU time
# %M: the largest process of the tree).
peak_rss() {
	local name=$1 runs=$2 vals=""
	for _ in $(seq "$runs"); do
		/usr/bin/time -o "$work/time.out" -f '%M' "$work/$name" </dev/null >/dev/null 2>&1 ||
			die "$name failed under /usr/bin/time"
		vals+="$(tail -1 "$work/time.out")"$'\n'
	done
	printf '%s' "$vals" | median
}
