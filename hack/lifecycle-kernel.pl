#!/usr/bin/perl
# Where the time of one `run` goes, by kernel work: reads a tracefs text trace (events
# raw_syscalls:sys_enter/sys_exit, sched_switch, sched_wakeup(_new), sched_process_fork/exec/
# exit, exceptions:page_fault_user/kernel, cgroup:cgroup_mkdir/rmdir/attach_task; trace_clock
# mono) of the runtime's process tree. Used by `hack/bench-lifecycle --kernel`.
# The window runs from the runtime's execve (entry into the syscall in which the wrapper's
# nsenter execs the runtime) to the runtime's exit. Every instant of it is given to one category (wall), by priority:
#   1. the tree's processes on a CPU (shared equally when several are): the syscall they are
#      in, else "user: ROLE" (user mode, page faults included);
#   2. else those in uninterruptible sleep (D): their syscall's category (its D column);
#   3. else those runnable but not running (woken or preempted): their category (R column);
#   4. else (all sleep: waiting on something outside the tree) the runtime's category.
# So the wall column adds up to the window exactly. cpu = on-CPU time summed over processes.
# A syscall in which the kernel created, removed or attached a cgroup counts as a cgroup row.
# Prints one line per category: LABEL<TAB>count<TAB>wall<TAB>cpu<TAB>D<TAB>R (ms), then
# "#window", "#whole" (from the first event: the wrapper included), "#faults ROLE" and
# "#events" lines.
use strict;
use warnings;

my %nr = (
	59 => 'execve', 322 => 'execve',
	56 => 'clone/clone3/fork', 435 => 'clone/clone3/fork', 57 => 'clone/clone3/fork',
	58 => 'clone/clone3/fork',
	272 => 'unshare', 308 => 'setns',
	165 => 'mount API (mount, open_tree, move_mount, fs*, mount_setattr)',
	428 => 'mount API (mount, open_tree, move_mount, fs*, mount_setattr)',
	429 => 'mount API (mount, open_tree, move_mount, fs*, mount_setattr)',
	430 => 'mount API (mount, open_tree, move_mount, fs*, mount_setattr)',
	431 => 'mount API (mount, open_tree, move_mount, fs*, mount_setattr)',
	432 => 'mount API (mount, open_tree, move_mount, fs*, mount_setattr)',
	433 => 'mount API (mount, open_tree, move_mount, fs*, mount_setattr)',
	442 => 'mount API (mount, open_tree, move_mount, fs*, mount_setattr)',
	155 => 'pivot_root', 166 => 'umount2',
	60 => 'exit/exit_group (+ namespace teardown)', 231 => 'exit/exit_group (+ namespace teardown)',
	61 => 'wait4/waitid', 247 => 'wait4/waitid',
	9 => 'mmap/mprotect/munmap/brk', 10 => 'mmap/mprotect/munmap/brk',
	11 => 'mmap/mprotect/munmap/brk', 12 => 'mmap/mprotect/munmap/brk',
	2 => 'open/openat/openat2', 257 => 'open/openat/openat2', 437 => 'open/openat/openat2',
	0 => 'read/write', 1 => 'read/write', 17 => 'read/write', 18 => 'read/write',
	19 => 'read/write', 20 => 'read/write',
	3 => 'close/close_range (a detached mount tree goes with its last fd)',
	436 => 'close/close_range (a detached mount tree goes with its last fd)',
	7 => 'poll/ppoll/epoll_wait', 271 => 'poll/ppoll/epoll_wait', 232 => 'poll/ppoll/epoll_wait',
	281 => 'poll/ppoll/epoll_wait', 441 => 'poll/ppoll/epoll_wait',
);
my $other = 'other syscalls';

my @ev;
while (<>) {
	next unless /-(\d+)\s+\[\d+\]\s+\S+\s+([\d.]+): (\w+)(?:: |\()(.*)$/;
	push @ev, [$1, $2 * 1000, $3, $4];
}
die "lifecycle-kernel: empty trace\n" unless @ev;

# Pass 1: the runtime's pid, the window, the container program's pid. The runtime is what
# the wrapper's nsenter execs (the wrapper script itself may be named like the runtime).
my ($main, $t0, $tend, $cpid, %enter, %nsenter);
for my $e (@ev) {
	my ($pid, $t, $ev, $rest) = @$e;
	if ($ev eq 'sys_enter' && $rest =~ /^NR (\d+)/ && ($1 == 59 || $1 == 322)) {
		$enter{$pid} = $t;
	} elsif ($ev eq 'sched_process_exec') {
		my ($file) = $rest =~ /filename=(\S+)/;
		if (!defined $main && $file =~ m{/nsenter$}) {
			$nsenter{$pid} = 1;
		} elsif (!defined $main && $nsenter{$pid}) {
			($main, $t0) = ($pid, $enter{$pid} // $t);
		} elsif (defined $main && $file eq '/bin/true') {
			$cpid //= $pid;
		}
	} elsif ($ev eq 'sched_process_exit' && defined $main && $pid == $main) {
		$tend = $t;
	}
}
die "lifecycle-kernel: no exec of a runtime in the trace\n" unless defined $main;
die "lifecycle-kernel: no exit of the runtime in the trace\n" unless defined $tend;
die "lifecycle-kernel: no exec of /bin/true in the trace\n" unless defined $cpid;

# Pass 2: the sweep. Per process: on a CPU or not, its off-CPU state (R, D, S), the syscall
# it is in and that syscall's category.
my (%on, %off, %sys, %inherited, %live, %mainexecs, %faults);
my (%count, %wall, %cpu, %wd, %wr);
my $tprev;
$live{$main} = 1;

# Time is booked per syscall instance (its category may change later: an execve becomes
# "execve: runtime" at the exec, a mkdir a cgroup row when the cgroup appears).
my (%inst, %instcat, %instcounted, $seq);
sub label { my ($p) = @_; return defined $sys{$p} ? $inst{$p} : "user:$p"; }
sub setcat { my ($p, $c) = @_; $instcat{$inst{$p}} = $c; }

sub account {
	my ($a, $b) = @_;
	$a = $t0 if $a < $t0;
	$b = $tend if $b > $tend;
	return if $b <= $a;
	my $dt = $b - $a;
	my @run = grep { $on{$_} } keys %live;
	$cpu{label($_)} += $dt for @run;
	if (@run) {
		$wall{label($_)} += $dt / @run for @run;
		return;
	}
	for my $st ('D', 'R') {
		my @w = grep { ($off{$_} // '') eq $st } keys %live;
		next unless @w;
		for (@w) {
			$wall{label($_)} += $dt / @w;
			($st eq 'D' ? \%wd : \%wr)->{label($_)} += $dt / @w;
		}
		return;
	}
	$wall{label($main)} += $dt;
}

sub done_syscall {
	my ($p) = @_;
	$count{$inst{$p}}++ if defined $sys{$p} && !$inherited{$p};
	delete $sys{$p};
	delete $inherited{$p};
}

for my $e (@ev) {
	my ($pid, $t, $ev, $rest) = @$e;
	account($tprev, $t) if defined $tprev && $t > $t0;
	$tprev = $t;
	last if $t > $tend;
	# An event other than a switch is recorded by the running task: it is on a CPU (the
	# trace starts with the runtime's pid running, before any switch of it is seen).
	if ($live{$pid} && $ev ne 'sched_switch') {
		$on{$pid} = 1;
		delete $off{$pid};
	}
	# Before the window only whether the runtime's pid is on a CPU matters.
	next if $t < $t0 && $ev ne 'sched_switch';
	if ($ev eq 'sys_enter') {
		next unless $live{$pid} && $rest =~ /^NR (\d+)/;
		done_syscall($pid) if defined $sys{$pid};
		$sys{$pid} = $1;
		$inst{$pid} = 's' . ++$seq;
		setcat($pid, $nr{$1} // $other);
	} elsif ($ev eq 'sys_exit') {
		done_syscall($pid) if $live{$pid};
	} elsif ($ev eq 'sched_process_exec' && $live{$pid}) {
		my ($file) = $rest =~ /filename=(\S+)/;
		if ($pid == $main) {
			setcat($pid, $mainexecs{$pid}++ ? 'execve: runtime re-exec' : 'execve: runtime');
		} elsif ($pid == $cpid) {
			setcat($pid, 'execve: container program');
		} else {
			setcat($pid, 'execve: other');
		}
	} elsif ($ev eq 'sched_process_fork') {
		my ($parent, $child) = $rest =~ /\bpid=(\d+) .*child_pid=(\d+)/ or next;
		next unless $live{$parent} && $t >= $t0;
		$live{$child} = 1;
		$off{$child} = 'R';
		if (defined $sys{$parent}) {
			($sys{$child}, $inst{$child}, $inherited{$child}) = ($sys{$parent}, $inst{$parent}, 1);
		}
	} elsif ($ev eq 'sched_wakeup' || $ev eq 'sched_wakeup_new') {
		my ($p) = $rest =~ /\bpid=(\d+)/ or next;
		$off{$p} = 'R' if $live{$p} && !$on{$p};
	} elsif ($ev eq 'sched_switch') {
		my ($pp, $st, $np) = $rest =~ /prev_pid=(\d+) .*prev_state=(\S+) ==> .*next_pid=(\d+)/ or next;
		if ($live{$pp}) {
			delete $on{$pp};
			my $s = substr($st, 0, 1);
			if ($s eq 'X' || $s eq 'Z') {
				done_syscall($pp);
				delete $live{$pp};
			} else {
				$off{$pp} = $s eq 'D' ? 'D' : $s eq 'R' ? 'R' : 'S';
			}
		}
		if ($live{$np}) {
			$on{$np} = 1;
			delete $off{$np};
		}
	} elsif ($ev =~ /^page_fault_(user|kernel)$/ && $live{$pid}) {
		$faults{"$pid $1"}++;
	} elsif ($ev eq 'cgroup_mkdir' || $ev eq 'cgroup_rmdir') {
		setcat($pid, 'cgroup mkdir/rmdir') if $live{$pid} && defined $sys{$pid};
	} elsif ($ev eq 'cgroup_attach_task') {
		setcat($pid, 'cgroup attach (cgroup.procs write, CLONE_INTO_CGROUP)') if $live{$pid} && defined $sys{$pid};
	}
}
# The runtime's own exit_group ends at its sched_process_exit (the window's end).
done_syscall($_) for grep { defined $sys{$_} } keys %live;

sub role {
	my ($p) = @_;
	return 'runtime' if $p == $main;
	return 'container process (/bin/true)' if $p == $cpid;
	return 'other processes of the runtime';
}
my %out;
sub name { my ($l) = @_; return $l =~ /^user:(\d+)$/ ? 'user: ' . role($1) : $instcat{$l}; }
sub add {
	my ($h, $i) = @_;
	for my $l (keys %$h) {
		my $name = name($l);
		$out{$name} //= [0, 0, 0, 0, 0];
		$out{$name}[$i] += $h->{$l};
	}
}
add(\%count, 0);
add(\%wall, 1);
add(\%cpu, 2);
add(\%wd, 3);
add(\%wr, 4);
for my $name (sort keys %out) {
	my $v = $out{$name};
	printf "%s\t%d\t%.3f\t%.3f\t%.3f\t%.3f\n", $name, @$v;
}
my %f;
for my $k (keys %faults) {
	my ($p, $kind) = split / /, $k;
	$f{role($p) . " ($kind)"} += $faults{$k};
}
printf "#faults %s\t%d\n", $_, $f{$_} for sort keys %f;
printf "#window\t%.3f\n", $tend - $t0;
printf "#whole\t%.3f\n", $tend - $ev[0][1];
printf "#events\t%d\n", scalar @ev;
