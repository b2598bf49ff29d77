#!/usr/bin/perl
# The tables of `hack/bench-lifecycle --kernel`: reads DIR/NAME.I (hack/lifecycle-kernel.pl's
# output for traced run I of runtime NAME) and the untraced interleaved runs (hack/interleave.pl's
# lines: NAME median ... in seconds, a "baseline" line among them), prints one table per runtime
# (median over the runs of each category: wall ms, its D-state and runnable parts, CPU ms,
# count; and the mean of wall, whose rows add up to the mean run), then what the first runtime pays that the last does not and the reverse, the kernel
# work both pay (the floor), and the tracing overhead.
#   hack/lifecycle-floor.pl DIR IL.TSV NAME...   (the last NAME is the reference, e.g. crun)
use strict;
use warnings;

my ($dir, $il, @names) = @ARGV;
die "usage: $0 DIR IL.TSV NAME...\n" unless defined $il && @names >= 2;

# The kernel's container work, in the order of a run; then the rest.
my @kernel = (
	'execve: runtime', 'execve: runtime re-exec', 'clone/clone3/fork', 'unshare', 'setns',
	'mount API (mount, open_tree, move_mount, fs*, mount_setattr)', 'pivot_root', 'umount2',
	'cgroup mkdir/rmdir', 'cgroup attach (cgroup.procs write, CLONE_INTO_CGROUP)',
	'execve: container program', 'execve: other', 'exit/exit_group (+ namespace teardown)',
	'wait4/waitid',
);
my @rest = (
	'close/close_range (a detached mount tree goes with its last fd)', 'poll/ppoll/epoll_wait',
	'open/openat/openat2', 'read/write', 'mmap/mprotect/munmap/brk', 'other syscalls',
	'user: runtime', 'user: other processes of the runtime', 'user: container process (/bin/true)',
);
my %is_kernel = map { $_ => 1 } @kernel;

sub median {
	my @v = sort { $a <=> $b } @_;
	return 0 unless @v;
	return $v[int($#v / 2)] if @v % 2;
	return ($v[$#v / 2 - 0.5] + $v[$#v / 2 + 0.5]) / 2;
}

# Several lines per NAME (one per round): their median.
my (%untraced, %ilv);
open my $fh, '<', $il or die "$il: $!\n";
while (<$fh>) {
	my ($n, $med) = split;
	push @{$ilv{$n}}, $med * 1000;
}
close $fh;
$untraced{$_} = median(@{$ilv{$_}}) for keys %ilv;
die "$il: no baseline line\n" unless defined $untraced{baseline};

my (%med, %mean, %meta, %labels);
for my $name (@names) {
	my @files = sort glob "$dir/$name.*";
	die "no runs of $name in $dir\n" unless @files;
	my (%vals, %m);
	for my $f (@files) {
		open my $in, '<', $f or die "$f: $!\n";
		my %seen;
		while (<$in>) {
			chomp;
			my @c = split /\t/;
			if ($c[0] =~ /^#/) {
				push @{$m{$c[0]}}, $c[1];
				next;
			}
			$seen{$c[0]} = 1;
			$labels{$c[0]} = 1;
			push @{$vals{$c[0]}[$_]}, $c[$_ + 1] for 0 .. 4;
		}
		close $in;
		# A category a run did not touch counts as 0 in that run.
		for my $l (keys %vals) {
			next if $seen{$l};
			push @{$vals{$l}[$_]}, 0 for 0 .. 4;
		}
	}
	my $runs = @files;
	for my $l (keys %vals) {
		# Categories first seen after some runs: pad their earlier runs with 0.
		for my $i (0 .. 4) {
			unshift @{$vals{$l}[$i]}, 0 while @{$vals{$l}[$i]} < $runs;
		}
		$med{$name}{$l} = [map { median(@{$vals{$l}[$_]}) } 0 .. 4];
		my $sum = 0;
		$sum += $_ for @{$vals{$l}[1]};
		$mean{$name}{$l} = $sum / $runs;
	}
	$meta{$name} = {map { $_ => median(@{$m{$_}}) } keys %m};
	my $wsum = 0;
	$wsum += $_ for @{$m{'#window'}};
	$meta{$name}{'#window mean'} = $wsum / $runs;
	$meta{$name}{runs} = $runs;
}

my %known = map { $_ => 1 } @kernel, @rest;
my @rows = (@kernel, @rest, sort grep { !$known{$_} } keys %labels);
for my $name (@names) {
	my $m = $meta{$name};
	printf "\n%s: medians over %d traced runs (ms; wall: each instant of the run given to one category)\n",
		$name, $m->{runs};
	printf "%-62s %8s %8s %8s %8s %8s %6s\n", 'category', 'wall', 'D', 'runnable', 'CPU', 'wall', 'count';
	printf "%-62s %8s %8s %8s %8s %8s %6s\n", '', 'median', 'median', 'median', 'median', 'mean', 'median';
	my @sum = (0, 0, 0, 0, 0, 0);
	for my $l (@rows) {
		my $v = $med{$name}{$l} or next;
		my @c = ($v->[1], $v->[3], $v->[4], $v->[2], $mean{$name}{$l}, $v->[0]);
		printf "%-62s %8.3f %8.3f %8.3f %8.3f %8.3f %6d\n", $l, @c;
		$sum[$_] += $c[$_] for 0 .. 5;
	}
	printf "%-62s %8.3f %8.3f %8.3f %8.3f %8.3f %6d\n", 'sum of the rows', @sum;
	printf "%-62s %8.3f %35.3f\n", 'traced run (runtime execve -> runtime exit)', $m->{'#window'}, $m->{'#window mean'};
	for my $k (sort grep { /^#faults / } keys %$m) {
		(my $what = $k) =~ s/^#faults //;
		printf "%-62s %8s %8s %8s %8s %6d\n", "page faults: $what", '', '', '', '', $m->{$k};
	}
	my $net = $untraced{$name} - $untraced{baseline};
	printf "untraced run, net of the wrapper (median %.3f - baseline %.3f): %.3f ms; tracing adds %.3f ms (%.0f%%), %d events per run\n",
		$untraced{$name}, $untraced{baseline}, $net, $m->{'#window'} - $net,
		100 * ($m->{'#window'} - $net) / $net, $m->{'#events'};
}

my $ref = $names[-1];
# compare NAME COLUMN WHAT: NAME against the reference on one column of the medians.
sub compare {
	my ($name, $col, $what) = @_;
	printf "\n%s against %s, %s (medians, ms):\n", $name, $ref, $what;
	my ($floor, $more, $less, $kn, $kr, $tn, $tr) = (0, 0, 0, 0, 0, 0, 0);
	my (@more, @less);
	for my $l (@rows) {
		my $a = $med{$name}{$l} ? $med{$name}{$l}[$col] : 0;
		my $b = $med{$ref}{$l} ? $med{$ref}{$l}[$col] : 0;
		$tn += $a;
		$tr += $b;
		if ($is_kernel{$l}) {
			$floor += $a < $b ? $a : $b;
			$kn += $a;
			$kr += $b;
		}
		push @more, sprintf('%s +%.3f', $l, $a - $b) if $a - $b >= 0.05;
		push @less, sprintf('%s -%.3f', $l, $b - $a) if $b - $a >= 0.05;
		$more += $a - $b if $a > $b;
		$less += $b - $a if $b > $a;
	}
	printf "  pays more than %s (rows >= 0.05 ms): %s\n", $ref, join('; ', @more) || 'none';
	printf "  pays less than %s (rows >= 0.05 ms): %s\n", $ref, join('; ', @less) || 'none';
	printf "  all rows: %.3f ms more, %.3f ms less\n", $more, $less;
	printf "  kernel's container work (the first %d rows): %s %.3f ms, %s %.3f ms; both pay %.3f ms\n",
		scalar @kernel, $name, $kn, $ref, $kr, $floor;
	printf "  that floor is %.0f%% of %s's sum of rows (%.3f ms), %.0f%% of %s's (%.3f ms)\n",
		100 * $floor / $tn, $name, $tn, 100 * $floor / $tr, $ref, $tr;
}
for my $name (@names[0 .. $#names - 1]) {
	compare($name, 1, 'wall');
	compare($name, 2, 'CPU');
}
