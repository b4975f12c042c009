# The memory doubling at scale: a node's memory during one load by all its
# ranks, over the model's size, against the ranks per node (1, 2, 4, 8; from
# one or several runs under MPI), for each loader and distribution. Solid:
# the node's ranks' anonymous memory added up (private copies); dashed: how
# far MemAvailable fell. The N x line is one copy per rank; the 2N x line is
# the classic load's doubling on every rank. Ranks that map the files share
# one page-cache copy and stay near 1x whatever N is.
#
#   gnuplot -c ranks-memory.gp DATADIR OUTBASE    (DATADIR from `ckptbench plot`)
#
# Reads DATADIR/series.gp and ranks.dat; writes OUTBASE.png (2000 x 1250) and
# OUTBASE.svg.
if (ARGC < 2) { print "usage: gnuplot -c ranks-memory.gp DATADIR OUTBASE"; exit status 2 }
_dn(s, i) = i < 1 ? "." : (s[i:i] eq "/" ? s[1:i-1] : _dn(s, i - 1))
load _dn(ARG0, strlen(ARG0))."/common.gp"
D = ARG1
load D."/series.gp"

W = 2000; H = 1250
rcol(i) = word(RANKS_COLORS, i)
rname(i) = word(RANKS_NAMES, i)
do for [FMT in "png svg"] {
	eval term(FMT, W, H)
	set output ARG2.".".FMT
	set label 90 "{/:Bold A node's memory while all its ranks load}" at screen 0.5, screen 0.955 center font fsz(FMT, 1.25)
	set label 91 SUBTITLE." · ".RANKS_DATASET." · ".RANKS_CACHE." cache" at screen 0.5, screen 0.912 center noenhanced font fsz(FMT, 0.8) tc rgb "#555555"
	set tmargin 6
	set rmargin 36
	set logscale x 2
	set xrange [0.8:RANKS_PER_NODE_MAX * 1.25]
	set xtics ("1" 1, "2" 2, "4" 4, "8" 8, "16" 16, "32" 32)
	set xlabel "ranks per node"
	set yrange [0:RANKS_YMAX]
	set ytics format "%g×"
	set ylabel "node memory above its baseline (× model)"
	set key outside right top vertical noenhanced
	plot x with lines dt 2 lw 1.4 lc rgb REF title "N× (one copy per rank)", \
	  2 * x with lines dt 3 lw 1.4 lc rgb REF title "2N× (the doubling on every rank)", \
	  for [k=1:RANKS_N] D."/ranks.dat" index (k - 1) using 1:3 with linespoints \
	      lw 2.2 pt 7 ps 1.5 lc rgb rcol(k) title rname(k)." anon", \
	  for [k=1:RANKS_N] D."/ranks.dat" index (k - 1) using 1:4 with linespoints \
	      lw 1.4 dt 2 pt 6 ps 1.3 lc rgb rcol(k) title rname(k)." MemAvailable drop"
	unset output
}
