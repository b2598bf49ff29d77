#!/usr/bin/perl
# Phases of one `run` of /bin/true, from a tracefs text trace (events sched_process_exec/fork/
# exit, sched_switch, syscalls:sys_enter_pivot_root) of the runtime's process tree. Used by
# `hack/bench-lifecycle --phases`. Prints one line: per phase "wall/cpu/dwait" in ms, then the
# whole run. Phases, between these marks:
#   start   exec of the runtime -> its last exec before it forks (its re-exec, if any)
#   setup   -> its first fork of a child that forks in turn (config, state dir, cgroup:
#              whatever precedes the container's first process; a runtime's helper that
#              never forks, such as nucleus's closer of its protected copy, does not count;
#              without such a fork, its first fork)
#   mounts  -> pivot_root in the container (namespaces, rootfs mounts)
#   enter   -> exec of /bin/true (old root detached, /dev, masks, caps, seccomp, sync)
#   program -> /bin/true exits
#   finish  -> the runtime exits (wait, delete, cgroup removal, exit)
# cpu = time any process of the tree was on a CPU; dwait = time any was in uninterruptible
# sleep (D: RCU grace periods, I/O). Both may exceed wall when processes overlap.
use strict;
use warnings;

my ($main, $t0, $tself, $tfork, $tfirst, $tpivot, $texec, $cpid, $texit, $tend);
my (%dstart, %run, %ours, %forked, %nsenter, @dw, @cpu);
while (<>) {
	next unless /-(\d+)\s+\[\d+\]\s+\S+\s+([\d.]+): (\w+)(?:: |\()(.*)$/;
	my ($pid, $t, $ev, $rest) = ($1, $2 * 1000, $3, $4);
	if ($ev eq 'sched_process_exec') {
		my ($file) = $rest =~ /filename=(\S+)/;
		# The runtime is what the wrapper's nsenter execs (the wrapper script itself is
		# named like the runtime: $work/nucleus, $work/crun).
		if (!defined $main && $file =~ m{/nsenter$}) {
			$nsenter{$pid} = 1;
		} elsif (!defined $main && $nsenter{$pid}) {
			($main, $t0, $tself) = ($pid, $t, $t);
			$run{$pid} = $t;
			$ours{$pid} = 1;
		} elsif (defined $main && $pid == $main && !defined $tfirst) {
			$tself = $t;
		} elsif (defined $main && $file eq '/bin/true' && !defined $texec) {
			($texec, $cpid) = ($t, $pid);
		}
	} elsif ($ev eq 'sched_process_fork') {
		my ($parent, $child) = $rest =~ /\bpid=(\d+) .*child_pid=(\d+)/ or next;
		$ours{$child} = 1 if $ours{$parent};
		if (defined $main && $parent == $main) {
			$tfirst //= $t;
			$forked{$child} //= $t;
		} elsif (defined $forked{$parent}) {
			$tfork //= $forked{$parent};
		}
	} elsif ($ev eq 'sys_pivot_root' || $ev eq 'sys_enter_pivot_root') {
		$tpivot //= $t if defined $main;
	} elsif ($ev eq 'sched_process_exit') {
		$texit = $t if defined $cpid && $pid == $cpid;
		$tend = $t if defined $main && $pid == $main;
	} elsif ($ev eq 'sched_switch' && defined $main) {
		my ($pp, $st, $np) = $rest =~ /prev_pid=(\d+) .*prev_state=(\S+) ==> .*next_pid=(\d+)/ or next;
		if (defined $run{$pp}) { push @cpu, [$run{$pp}, $t]; delete $run{$pp}; }
		$dstart{$pp} = $t if $st =~ /^D/ && $ours{$pp};
		$run{$np} = $t if $ours{$np};
		if (defined $dstart{$np}) { push @dw, [$dstart{$np}, $t]; delete $dstart{$np}; }
	}
}
$tfork //= $tfirst;
for ([$main, 'runtime exec'], [$tfork, 'fork'], [$tpivot, 'pivot_root'], [$texec, 'exec of /bin/true'],
	[$texit, 'exit of /bin/true'], [$tend, 'runtime exit']) {
	die "lifecycle-phases: no $_->[1] in the trace\n" unless defined $_->[0];
}
my @b = ($t0, $tself, $tfork, $tpivot, $texec, $texit, $tend);

sub within {
	my ($lo, $hi, @iv) = @_;
	my $s = 0;
	for my $x (@iv) {
		my ($a, $e) = @$x;
		$a = $lo if $a < $lo;
		$e = $hi if $e > $hi;
		$s += $e - $a if $e > $a;
	}
	return $s;
}
my @out;
for my $i (0 .. $#b - 1) {
	push @out, sprintf '%.3f/%.3f/%.3f', $b[$i + 1] - $b[$i], within($b[$i], $b[$i + 1], @cpu),
		within($b[$i], $b[$i + 1], @dw);
}
push @out, sprintf '%.3f/%.3f/%.3f', $tend - $t0, within($t0, $tend, @cpu), within($t0, $tend, @dw);
print join(' ', @out), "\n";
