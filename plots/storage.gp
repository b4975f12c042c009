# The storage chart: the same loads on each storage profile (local disk,
# tmpfs, a throttled disk, a network filesystem). Top: the load time. Middle:
# its share of that profile's own ceiling (the best way of reading the same
# files on the same storage). Bottom: the peak memory over the model, with
# 1x and 2x lines: what reading the whole file first costs. Grouped bars, one
# group per profile, one colour per loader.
#
#   gnuplot -c storage.gp DATADIR OUTBASE    (DATADIR from `ckptbench plot`)
#
# Reads DATADIR/series.gp and storage.dat; writes OUTBASE.png (2000 x 1800)
# and OUTBASE.svg.
if (ARGC < 2) { print "usage: gnuplot -c storage.gp DATADIR OUTBASE"; exit status 2 }
_dn(s, i) = i < 1 ? "." : (s[i:i] eq "/" ? s[1:i-1] : _dn(s, i - 1))
load _dn(ARG0, strlen(ARG0))."/common.gp"
D = ARG1
load D."/series.gp"

W = 2000; H = 1800
scol(i) = word(STO_COLORS, i)
sname(i) = word(STO_NAMES, i)
HALF = STO_BARW * 0.45
do for [FMT in "png svg"] {
	eval term(FMT, W, H)
	set output ARG2.".".FMT
	set multiplot
	set label 90 "{/:Bold The same loads on different storage}" at screen 0.5, screen 0.975 center font fsz(FMT, 1.25)
	set label 91 SUBTITLE." · ".STO_DATASET." · ".STO_CACHE." cache" at screen 0.5, screen 0.952 center noenhanced font fsz(FMT, 0.8) tc rgb "#555555"
	set xrange [-0.55:STO_GROUPS - 0.45]
	eval "set xtics ".STO_XTICS." scale 0"
	set grid noxtics ytics
	set lmargin 14
	# Top: load time, with the legend.
	set origin 0, 0.64
	set size 1, 0.29
	set yrange [0:STO_TMAX]
	set ytics format "%g s"
	set ylabel "load time (median)"
	set key outside right top vertical noenhanced
	set rmargin 34
	plot for [k=1:STO_N] D."/storage.dat" index (k - 1) using 1:2:(2 * HALF) with boxes \
	    fs solid 0.9 border lc rgb "#222222" lc rgb scol(k) title sname(k)
	unset label 90
	unset label 91
	# Middle: share of the profile's ceiling.
	set origin 0, 0.33
	set size 1, 0.29
	set yrange [0:STO_FRACMAX * 100]
	set ytics format "%.0f%%"
	set ylabel "of this storage's ceiling"
	set arrow 1 from graph 0, first 100 to graph 1, first 100 nohead dt 2 lw 1.4 lc rgb REF back
	plot for [k=1:STO_N] D."/storage.dat" index (k - 1) using 1:($3 * 100):(2 * HALF) with boxes \
	    fs solid 0.9 border lc rgb "#222222" lc rgb scol(k) notitle, \
	  NaN with lines dt 2 lc rgb REF title "the ceiling (100%)"
	unset arrow 1
	# Bottom: peak memory over the model, with 1x and 2x.
	set origin 0, 0.02
	set size 1, 0.29
	set yrange [0:STO_RSSMAX]
	set ytics format "%.1f×"
	set ylabel "peak RSS above baseline (× model)"
	set xlabel "storage profile"
	set arrow 2 from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 1.4 lc rgb REF back
	set arrow 3 from graph 0, first 2 to graph 1, first 2 nohead dt 3 lw 1.4 lc rgb REF back
	plot for [k=1:STO_N] D."/storage.dat" index (k - 1) using 1:4:(2 * HALF) with boxes \
	    fs solid 0.9 border lc rgb "#222222" lc rgb scol(k) notitle, \
	  NaN with lines dt 2 lc rgb REF title "1× model", \
	  NaN with lines dt 3 lc rgb REF title "2× model (the doubling)"
	unset arrow 2
	unset arrow 3
	unset multiplot
	unset output
}
