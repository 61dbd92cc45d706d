# htapchaos memory-fill hog.
#
#   perl htapchaos-memfill.pl probe
#     prints the cgroup's figures: cgroup=v1|v2 limit=BYTES (0: no limit) used=BYTES
#   perl htapchaos-memfill.pl hold PERCENT BACKSTOP_SECONDS STATE_FILE
#     grows a buffer in steps until the cgroup's memory use, counted as docker stats
#     counts it (usage minus inactive file cache), reaches PERCENT of the limit, and
#     holds it there: frees chunks when something else grows, grows again when use
#     drops. Writes its state to STATE_FILE; stops by itself after BACKSTOP_SECONDS
#     or once the cgroup's files cannot be read.
use strict;
use warnings;

# Chunks above glibc's mmap threshold are mappings of their own, given back to the
# kernel when freed; a fixed threshold keeps glibc from raising it after a free.
if (($ENV{MALLOC_MMAP_THRESHOLD_} // '') ne '65536') {
    $ENV{MALLOC_MMAP_THRESHOLD_} = '65536';
    exec($^X, $0, @ARGV) or die "re-exec: $!\n";
}

my $MiB = 1 << 20;
my ($cg, $usage_f, $stat_f, $limit_f, $inactive);
if (-r '/sys/fs/cgroup/memory/memory.usage_in_bytes') {
    ($cg, $usage_f, $stat_f, $limit_f, $inactive) = ('v1', '/sys/fs/cgroup/memory/memory.usage_in_bytes',
        '/sys/fs/cgroup/memory/memory.stat', '/sys/fs/cgroup/memory/memory.limit_in_bytes', 'total_inactive_file');
} elsif (-r '/sys/fs/cgroup/memory.current') {
    ($cg, $usage_f, $stat_f, $limit_f, $inactive) = ('v2', '/sys/fs/cgroup/memory.current',
        '/sys/fs/cgroup/memory.stat', '/sys/fs/cgroup/memory.max', 'inactive_file');
} else {
    print STDERR "no cgroup memory files under /sys/fs/cgroup\n";
    exit 3;
}

sub slurp {
    open(my $fh, '<', $_[0]) or return undef;
    local $/;
    return scalar <$fh>;
}

# used is the memory in use as docker stats counts it; undef once the cgroup is gone.
sub used {
    my $u = slurp($usage_f);
    my $s = slurp($stat_f);
    return undef unless defined $u && defined $s && $u =~ /^(\d+)/;
    $u = $1;
    $u -= $1 if $s =~ /^\Q$inactive\E (\d+)$/m && $1 < $u;
    return $u;
}

# limit is the cgroup's memory limit; 0 when it has none below the machine's memory.
sub limit {
    my $l = slurp($limit_f) // '';
    return 0 unless $l =~ /^(\d+)/;
    $l = $1;
    my $mi = slurp('/proc/meminfo') // '';
    return 0 if $mi =~ /^MemTotal:\s+(\d+) kB/m && $l >= $1 * 1024;
    return $l;
}

my $mode = $ARGV[0] // '';
if ($mode eq 'probe') {
    printf "cgroup=%s limit=%d used=%d\n", $cg, limit(), used() // 0;
    exit 0;
}
die "usage: $0 probe | hold PERCENT BACKSTOP_SECONDS STATE_FILE\n" unless $mode eq 'hold' && @ARGV == 4;
my (undef, $pct, $backstop, $state) = @ARGV;
die "percent $pct: want 1-99\n" unless $pct =~ /^\d+$/ && $pct >= 1 && $pct <= 99;
die "backstop $backstop: want seconds\n" unless $backstop =~ /^\d+$/;
my $limit = limit();
if (!$limit) {
    print STDERR "the cgroup has no memory limit: refusing to fill the machine\n";
    exit 3;
}

$0 = 'htapchaos-memfill';
my $target = int($limit * $pct / 100);
my $chunk = $MiB;                   # one allocation; a step is several
my $tol = int($limit / 200);        # the hold band: half a point of the limit
$tol = $chunk if $tol < $chunk;
my $maxstep = int($limit / 64);     # the largest step: 16 MiB, more on big nodes
$maxstep = 16 * $MiB if $maxstep < 16 * $MiB;
my $end = time + $backstop;
my @chunks;
my ($reached, $max, $used, $exit) = (0, 0, 0, 'backstop');

# rss is the hog's resident memory (buffer and perl), in bytes; -1 when unknown.
sub rss {
    my $st = slurp('/proc/self/status') // '';
    return $st =~ /^VmRSS:\s+(\d+) kB/m ? $1 * 1024 : -1;
}

sub put_state {
    my ($why) = @_;
    open(my $fh, '>', "$state.tmp") or return;
    my $rss = rss();
    printf $fh "hog_bytes=%d\n%sused=%d\nlimit=%d\ntarget_percent=%d\npercent=%.2f\nmax_percent=%.2f\nreached=%d\ncgroup=%s\npid=%d\ntime=%d\n%s",
        scalar(@chunks) * $chunk, $rss >= 0 ? "rss_bytes=$rss\n" : '', $used, $limit, $pct, $used * 100 / $limit, $max, $reached, $cg, $$, time,
        defined $why ? "exit=$why\n" : '';
    close $fh;
    rename("$state.tmp", $state);
}

while (time < $end) {
    my $u = used();
    if (!defined $u) {
        $exit = 'cgroup-gone';
        last;
    }
    $used = $u;
    my $p = $used * 100 / $limit;
    $max = $p if $p > $max;
    my $nap = 0.1;
    if ($used + $tol < $target) {
        # Grow by half the gap: never past the target, smaller steps near it.
        my $step = int(($target - $used) / 2);
        $step = $maxstep if $step > $maxstep;
        my $n = int($step / $chunk) || 1;
        push @chunks, 'Z' x $chunk for 1 .. $n;    # written: resident, not just reserved
        $nap = 0.02;
    } elsif ($used > $target + $tol) {
        # Something else grew: free down to the target.
        my $n = int(($used - $target + $chunk - 1) / $chunk);
        $n = @chunks if $n > @chunks;
        splice(@chunks, -$n) if $n;
        $nap = 0.05;
    } else {
        $reached = 1;
    }
    put_state();
    select(undef, undef, undef, $nap);
}
@chunks = ();
put_state($exit);
