# The memory-doubling chart: peak RSS above the process's baseline, as a
# multiple of the model's size, for each loader and model size. A bar is
# one cell: anonymous memory (private copies) solid, file-backed memory
# (page-cache pages, shareable and reclaimable) hatched on top; 1x and 2x
# the model's size are the reference lines. Failed and skipped cells are
# written where their bar would be.
#
#   gnuplot -c memory.gp DATADIR OUTBASE    (DATADIR from `ckptbench plot`)
#
# Reads DATADIR/series.gp, memory.dat and memory-marks.dat; writes
# OUTBASE.png (2000 x 1250) and OUTBASE.svg.
if (ARGC < 2) { print "usage: gnuplot -c memory.gp DATADIR OUTBASE"; exit status 2 }
_dn(s, i) = i < 1 ? "." : (s[i:i] eq "/" ? s[1:i-1] : _dn(s, i - 1))
load _dn(ARG0, strlen(ARG0))."/common.gp"
D = ARG1
load D."/series.gp"

W = 2000; H = 1250
NS = words(MEM_SERIES)
HALF = MEM_BARW * 0.45
XR = MEM_GROUPS - 0.5 + 0.62
do for [FMT in "png svg"] {
	eval term(FMT, W, H)
	set output ARG2.".".FMT
	set label 90 "{/:Bold Peak memory during one load, above the process's baseline}" at screen 0.5, screen 0.955 center font fsz(FMT, 1.25)
	set label 91 SUBTITLE." · ".MEM_CACHE." cache" at screen 0.5, screen 0.912 center noenhanced font fsz(FMT, 0.8) tc rgb "#555555"
	set tmargin 6
	set bmargin 9
	set rmargin 2
	set xrange [-0.55:XR]
	set yrange [0:MEM_YMAX]
	eval "set xtics ".MEM_XTICS." scale 0"
	set ytics 0.5 format "%.1f×"
	set mytics 2
	set xlabel "model size"
	set ylabel "peak RSS above baseline (× model size)"
	set grid noxtics ytics
	set key outside bottom center horizontal maxrows 3 width 1.5 reverse Left
	# The reference lines, labelled in the space right of the last group.
	set arrow 1 from graph 0, first 1 to first MEM_GROUPS - 0.5, first 1 nohead dt 2 lw 1.4 lc rgb REF back
	set arrow 2 from graph 0, first 2 to first MEM_GROUPS - 0.5, first 2 nohead dt 2 lw 1.4 lc rgb REF back
	set label 2 "{/:Bold 1×} model size\n(one copy)" at first MEM_GROUPS - 0.47, first 1 left tc rgb REF font fsz(FMT, 0.85)
	set label 3 "{/:Bold 2×} model size\n(the doubling)" at first MEM_GROUPS - 0.47, first 2 left tc rgb REF font fsz(FMT, 0.85)
	plot \
	  for [k=1:NS] D."/memory.dat" index (k - 1) using 1:2:(2 * HALF) with boxes \
	      fs solid 0.9 border lc rgb "#222222" lc rgb lcol(int(word(MEM_SERIES, k))) \
	      title lname(int(word(MEM_SERIES, k))), \
	  for [k=1:NS] D."/memory.dat" index (k - 1) \
	      using 1:($2 + $3 / 2):($1 - HALF):($1 + HALF):2:($2 + $3) with boxxyerror \
	      fs pattern 4 border lc rgb lcol(int(word(MEM_SERIES, k))) \
	      lc rgb lcol(int(word(MEM_SERIES, k))) notitle, \
	  for [k=1:NS] D."/memory.dat" index (k - 1) using 1:($4 + 0.05):(sprintf("%.2f×", $4)) \
	      with labels rotate by 90 left font fsz(FMT, 0.72) notitle, \
	  for [j=1:(MEM_MARKS > 0)] D."/memory-marks.dat" using 1:2:3 with labels rotate by 90 left \
	      font fsz(FMT, 0.72) tc rgb "#aa0000" notitle, \
	  NaN with boxes fs solid 0.9 border lc rgb "#222222" lc rgb "#777777" title "anonymous (private copy)", \
	  NaN with boxes fs pattern 4 border lc rgb "#777777" lc rgb "#777777" title "file-backed (page cache)"
	unset output
}
