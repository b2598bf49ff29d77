#!/usr/bin/perl
# Interleaved wall-time benchmark: runs the commands in turns (the order rotating each round),
# so a machine whose load drifts loads every command alike. Used by hack/bench-lifecycle.
#   hack/interleave.pl RUNS WARMUP NAME=COMMAND...   (COMMAND: one executable, no arguments)
# Prints one line per command: NAME median mean min p25 p75 (seconds). Fails if a run fails.
use strict;
use warnings;
use POSIX qw(_exit);
use Time::HiRes qw(clock_gettime CLOCK_MONOTONIC);

my ($runs, $warmup, @specs) = @ARGV;
die "usage: $0 RUNS WARMUP NAME=COMMAND...\n" unless defined $warmup && @specs;
my @names = map { (split /=/, $_, 2)[0] } @specs;
my @cmds = map { (split /=/, $_, 2)[1] } @specs;

sub once {
	my ($cmd) = @_;
	my $t = clock_gettime(CLOCK_MONOTONIC);
	my $pid = fork // die "fork: $!\n";
	if ($pid == 0) {
		open STDIN, '<', '/dev/null';
		open STDOUT, '>', '/dev/null';
		open STDERR, '>', '/dev/null';
		exec { $cmd } $cmd or _exit(127);
	}
	waitpid $pid, 0;
	die "$cmd failed (status $?)\n" if $?;
	return clock_gettime(CLOCK_MONOTONIC) - $t;
}

for my $c (@cmds) { once($c) for 1 .. $warmup; }
my %t;
for my $r (0 .. $runs - 1) {
	for my $k (0 .. $#cmds) {
		my $i = ($k + $r) % @cmds;
		push @{ $t{ $names[$i] } }, once($cmds[$i]);
	}
}
for my $n (@names) {
	my @s = sort { $a <=> $b } @{ $t{$n} };
	my $sum = 0;
	$sum += $_ for @s;
	my $q = sub { $s[ int($_[0] * $#s + 0.5) ] };
	printf "%s %.6f %.6f %.6f %.6f %.6f\n", $n, $q->(0.5), $sum / @s, $s[0], $q->(0.25), $q->(0.75);
}
