# The lazy-loading chart: what one tensor-parallel rank's load costs, for
# each loader, against the split (1 = the whole model, then 2, 4, 8 ranks).
# Left: read amplification, the bytes read from storage over the bytes the
# rank asked for (1x is reading exactly the slice). Right: the load's peak
# memory over the whole model's size (the ideal is the slice: 1/N). Each
# point is the median over the split's ranks.
#
#   gnuplot -c lazy.gp DATADIR OUTBASE    (DATADIR from `ckptbench plot`)
#
# Reads DATADIR/series.gp and lazy.dat; writes OUTBASE.png (2000 x 1000)
# and OUTBASE.svg.
if (ARGC < 2) { print "usage: gnuplot -c lazy.gp DATADIR OUTBASE"; exit status 2 }
_dn(s, i) = i < 1 ? "." : (s[i:i] eq "/" ? s[1:i-1] : _dn(s, i - 1))
load _dn(ARG0, strlen(ARG0))."/common.gp"
D = ARG1
load D."/series.gp"

W = 2000; H = 1000
XMAX = LAZY_TP_MAX * 1.4
zcol(i) = word(LAZY_COLORS, i)
zpt(i) = int(word(LAZY_POINTS, i))
zname(i) = word(LAZY_NAMES, i)
do for [FMT in "png svg"] {
	eval term(FMT, W, H)
	set output ARG2.".".FMT
	set multiplot
	set label 90 "{/:Bold Loading one tensor-parallel rank's slice}" at screen 0.5, screen 0.955 center font fsz(FMT, 1.25)
	set label 91 SUBTITLE." · ".LAZY_DATASET." · ".LAZY_CACHE." cache" at screen 0.5, screen 0.91 center noenhanced font fsz(FMT, 0.8) tc rgb "#555555"
	set logscale x 2
	set xrange [0.8:XMAX]
	set xtics ("1" 1, "2" 2, "4" 4, "8" 8, "16" 16)
	set xlabel "ranks in the split (1 = the whole model)"
	set key top left noenhanced
	# Left: read amplification, with the ideal 1x.
	set origin 0, 0.02
	set size 0.5, 0.85
	set yrange [0:LAZY_AMP_MAX * 1.15 + 0.2]
	set ytics format "%.1f×"
	set ylabel "bytes read from storage / bytes asked"
	plot 1 with lines dt 2 lw 1.4 lc rgb REF title "ideal: the slice (1×)", \
	  for [k=1:LAZY_N] D."/lazy.dat" index (k - 1) using 1:2 with linespoints \
	      lw 2 pt zpt(k) ps 1.6 lc rgb zcol(k) title zname(k)
	# Right: peak memory over the whole model, with the ideal 1/N.
	set origin 0.5, 0.02
	set size 0.5, 0.85
	set yrange [0:*]
	set ylabel "peak RSS above baseline / whole model"
	unset label 90
	unset label 91
	plot 1 / x with lines dt 2 lw 1.4 lc rgb REF title "ideal: the slice (1/N)", \
	  for [k=1:LAZY_N] D."/lazy.dat" index (k - 1) using 1:3 with linespoints \
	      lw 2 pt zpt(k) ps 1.6 lc rgb zcol(k) notitle
	unset multiplot
	unset output
}
