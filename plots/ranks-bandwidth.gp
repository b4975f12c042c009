# Aggregate load bandwidth under MPI: the bytes every rank loaded over the
# window from the first rank's start to the last rank's end (IOR's
# convention: the slowest rank sets the figure), against the ranks in all,
# for each loader and distribution.
#
#   gnuplot -c ranks-bandwidth.gp DATADIR OUTBASE    (DATADIR from `ckptbench plot`)
#
# Reads DATADIR/series.gp and ranks.dat; writes OUTBASE.png (2000 x 1250) and
# OUTBASE.svg.
if (ARGC < 2) { print "usage: gnuplot -c ranks-bandwidth.gp DATADIR OUTBASE"; exit status 2 }
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
	set label 90 "{/:Bold Aggregate load bandwidth under MPI}" at screen 0.5, screen 0.955 center font fsz(FMT, 1.25)
	set label 91 SUBTITLE." · ".RANKS_DATASET." · ".RANKS_CACHE." cache" at screen 0.5, screen 0.912 center noenhanced font fsz(FMT, 0.8) tc rgb "#555555"
	set tmargin 6
	set rmargin 30
	set logscale x 2
	set xrange [0.8:RANKS_MAX * 1.25]
	set xtics ("1" 1, "2" 2, "4" 4, "8" 8, "16" 16, "32" 32, "64" 64)
	set xlabel "ranks"
	set yrange [0:RANKS_GMAX]
	set ylabel "aggregate GB/s (all ranks' bytes / first start to last end)"
	set key outside right top vertical noenhanced
	plot for [k=1:RANKS_N] D."/ranks.dat" index (k - 1) using 2:5 with linespoints \
	    lw 2.2 pt 7 ps 1.5 lc rgb rcol(k) title rname(k)
	unset output
}
