# The doubling as it happens: memory over time during one load, one panel
# per loader, all on the same time axis. Anonymous memory (private copies)
# is the filled area, file-backed memory (page cache mapped in) the dashed
# line, VRAM the dotted line; each as a multiple of the model's size above
# the trial's baseline, against the 1x and 2x lines. Phase boundaries are
# the thin vertical lines, named at the top of each panel.
#
#   gnuplot -c timeline.gp DATADIR OUTBASE    (DATADIR from `ckptbench plot`)
#
# Reads DATADIR/series.gp, timeline.dat and timeline-phases.dat; writes
# OUTBASE.png (2000 x 360 + 300 per loader) and OUTBASE.svg.
if (ARGC < 2) { print "usage: gnuplot -c timeline.gp DATADIR OUTBASE"; exit status 2 }
_dn(s, i) = i < 1 ? "." : (s[i:i] eq "/" ? s[1:i-1] : _dn(s, i - 1))
load _dn(ARG0, strlen(ARG0))."/common.gp"
D = ARG1
load D."/series.gp"

W = 2000; H = 360 + 300 * TL_N
# Panel k's vertical extent, in screen fractions: a 160-pixel header on
# top, 220 pixels for the time axis and the key at the bottom, and a
# 50-pixel strip above each panel for the loader's name.
TOP = 1.0 - 160.0 / H
BOTTOM = 220.0 / H
PH = (TOP - BOTTOM) / TL_N
GAP = 50.0 / H
do for [FMT in "png svg"] {
	eval term(FMT, W, H)
	set output ARG2.".".FMT
	set multiplot
	set label 90 "{/:Bold Memory during one load}, above the process's baseline" at screen 0.5, screen 1 - 60.0 / H center font fsz(FMT, 1.25)
	set label 91 SUBTITLE." · ".TL_DATASET." (".TL_SIZE."), ".TL_CACHE." cache" at screen 0.5, screen 1 - 105.0 / H center noenhanced font fsz(FMT, 0.8) tc rgb "#555555"
	set xrange [0:TL_TMAX * 1.02]
	set yrange [-0.08:TL_YMAX]
	set ytics 1 format "%.0f×"
	set mytics 2
	set grid noxtics ytics
	set lmargin at screen 0.09
	set rmargin at screen 0.97
	set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 1.2 lc rgb REF back
	set arrow 2 from graph 0, first 2 to graph 1, first 2 nohead dt 2 lw 1.2 lc rgb REF back
	set key at screen 0.5, screen 0.01 center bottom horizontal maxrows 1 width 2 reverse Left
	do for [k=1:TL_N] {
		L = int(word(TL_SERIES, k))
		set tmargin at screen TOP - (k - 1) * PH - GAP
		set bmargin at screen TOP - k * PH
		set format x (k == TL_N ? "%g" : "")
		set xlabel (k == TL_N ? "time since the trial's process started (s)" : "")
		set ylabel (k == (TL_N + 1) / 2 ? "× model size" : "")
		set label 92 lname(L) at graph 0, graph 1.04 left front noenhanced font FONT.":Bold".fsz(FMT, 0.95) tc rgb lcol(L)
		plot \
		  D."/timeline.dat" index (k - 1) using 1:(0):2 with filledcurves \
		      fs transparent solid 0.35 noborder lc rgb lcol(L) notitle, \
		  D."/timeline.dat" index (k - 1) using 1:2 with lines lw 2.2 lc rgb lcol(L) \
		      title (k == 1 ? "anonymous (private copy)" : ""), \
		  D."/timeline.dat" index (k - 1) using 1:3 with lines lw 2.2 dt (8, 5) lc rgb "#333333" \
		      title (k == 1 ? "file-backed (page cache)" : ""), \
		  for [v=1:TL_VRAM] D."/timeline.dat" index (k - 1) using 1:4 with lines lw 3 dt (1.5, 2.5) \
		      lc rgb "#000000" title (k == 1 ? "VRAM" : ""), \
		  D."/timeline-phases.dat" index (k - 1) using 1:(-0.08):(0):(TL_YMAX + 0.08) with vectors \
		      nohead dt 3 lw 1 lc rgb "#888888" notitle, \
		  D."/timeline-phases.dat" index (k - 1) using ($2 - $1 > TL_TMAX * 0.04 ? ($1 + $2) / 2 : NaN):(TL_YMAX * 0.9):3 with labels \
		      center noenhanced font fsz(FMT, 0.68) tc rgb "#555555" notitle
		unset label 90
		unset label 91
		unset key
	}
	unset multiplot
	unset output
}
