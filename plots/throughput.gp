# The roofline of loading: throughput (model bytes / median time, GB/s)
# against model size, one line per loader, under the machine's calibrated
# ceilings drawn as labelled horizontal lines (cold read from the disk,
# warm read from the page cache, one-thread memcpy, host-to-device copy).
# Where the run also measured the read at the datasets' sizes, that panel's
# read ceiling is drawn as a curve through them too (small files read
# slower: the cells are held against the point at their size).
# Cold cache left, warm cache right, on the same axes.
#
#   gnuplot -c throughput.gp DATADIR OUTBASE    (DATADIR from `ckptbench plot`)
#
# Reads DATADIR/series.gp, throughput-{cold,warm}.dat and their marks;
# writes OUTBASE.png (2400 x 1250) and OUTBASE.svg.
if (ARGC < 2) { print "usage: gnuplot -c throughput.gp DATADIR OUTBASE"; exit status 2 }
_dn(s, i) = i < 1 ? "." : (s[i:i] eq "/" ? s[1:i-1] : _dn(s, i - 1))
load _dn(ARG0, strlen(ARG0))."/common.gp"
D = ARG1
load D."/series.gp"

W = 2400; H = 1250
CACHES = "cold warm"
PANEL(c) = c eq "cold" ? "{/:Bold cold cache} (page cache emptied first)" \
                       : "{/:Bold warm cache} (file already in the page cache)"
SERIES(c) = c eq "cold" ? THR_COLD : THR_WARM
NMARKS(c) = c eq "cold" ? THR_MARKS_COLD : THR_MARKS_WARM
NCEIL(c) = c eq "cold" ? THR_CEIL_COLD : THR_CEIL_WARM
# (gnuplot 5.4 runs an empty `for [j=1:0]` once when another iteration
# precedes it in the same plot command: hence the titles' own tests, and
# data files that are empty when there is nothing to draw.)
# The ceilings, in the order they are drawn: value, label.
CEIL(i) = i == 1 ? CEIL_COLD_READ : i == 2 ? CEIL_WARM_READ : i == 3 ? CEIL_MEMCPY : CEIL_H2D
CEILNAME(i) = i == 1 ? "cold read" : i == 2 ? "warm read" : i == 3 ? "memcpy (1 thread)" : "host to device"
do for [FMT in "png svg"] {
	eval term(FMT, W, H)
	set output ARG2.".".FMT
	set multiplot
	set label 90 "{/:Bold Throughput against model size, under the machine's ceilings}" at screen 0.5, screen 0.955 center font fsz(FMT, 1.25)
	set label 91 SUBTITLE at screen 0.5, screen 0.912 center noenhanced font fsz(FMT, 0.8) tc rgb "#555555"
	set logscale xy
	set xrange [SIZE_MIN / 2:SIZE_MAX * 2]
	set yrange [THR_YMIN:THR_YMAX]
	eval "set xtics ".XTICS
	set format y "%g"
	set xlabel "model size"
	set key at screen 0.5, screen 0.03 center bottom vertical maxrows 3 width 1.5 reverse Left
	do for [i=1:4] {
		if (CEIL(i) == CEIL(i)) {
			set arrow 10 + i from graph 0, first CEIL(i) to graph 1, first CEIL(i) nohead dt 3 lw 1.6 lc rgb "#777777" back
			set label 10 + i sprintf("%s %.3g GB/s", CEILNAME(i), CEIL(i)) at graph 0.99, first CEIL(i) right offset 0, 0.55 tc rgb REF font fsz(FMT, 0.75)
		}
	}
	do for [p=1:2] {
		C = word(CACHES, p)
		S = SERIES(C)
		set lmargin at screen (p == 1 ? 0.075 : 0.55)
		set rmargin at screen (p == 1 ? 0.475 : 0.95)
		set tmargin at screen 0.84
		set bmargin at screen 0.24
		set ylabel (p == 1 ? "throughput (GB/s, 10^9 bytes/s)" : "")
		set label 92 PANEL(C) at graph 0.5, graph 1.04 center font fsz(FMT, 0.95)
		if (words(S) == 0) { set label 93 "no ".C."-cache cells" at graph 0.5, graph 0.5 center }
		# No series in this panel (a cold-only or warm-only run): gnuplot
		# would still evaluate the loop's style expressions on an empty
		# list, so plot only the marks.
		if (words(S) == 0) {
			plot \
			  for [j=1:(NMARKS(C) > 0)] D."/throughput-marks-".C.".dat" using 1:2:3 with labels center \
			      offset 0, 0.9 point pt 2 ps 1.2 lc rgb "#aa0000" tc rgb "#aa0000" \
			      font fsz(FMT, 0.7) notitle, \
			  NaN notitle
		} else {
			plot \
			  for [k=1:words(S)] D."/throughput-".C.".dat" index (k - 1) using 1:2 with linespoints \
			      lc rgb lcol(int(word(S, k))) dt ldash(int(word(S, k))) pt lpt(int(word(S, k))) \
			      ps 1.5 lw 1.6 title (p == 1 ? lname(int(word(S, k))) : ""), \
			  for [j=1:(NCEIL(C) > 1)] D."/throughput-ceil-".C.".dat" using 1:2 with linespoints \
			      dt 3 lw 1.6 pt 6 ps 1.3 lc rgb "#777777" \
			      title (p == 1 && NCEIL(C) > 1 ? "read ceiling at each file size" : ""), \
			  for [j=1:(NMARKS(C) > 0)] D."/throughput-marks-".C.".dat" using 1:2:3 with labels center \
			      offset 0, 0.9 point pt 2 ps 1.2 lc rgb "#aa0000" tc rgb "#aa0000" \
			      font fsz(FMT, 0.7) notitle, \
			  NaN notitle
		}
		unset label 90
		unset label 91
		unset label 93
		unset key
	}
	unset multiplot
	unset output
}
