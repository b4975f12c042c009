# Peak VRAM above the process's baseline, as a multiple of the model's
# size, for each GPU loader and model size (bars grouped by size, as on
# the memory chart); 1x and 2x the model are the reference lines, so a
# loader that stages a second copy on the device stands out.
#
#   gnuplot -c vram.gp DATADIR OUTBASE    (DATADIR from `ckptbench plot`)
#
# Reads DATADIR/series.gp and vram.dat; writes OUTBASE.png (2000 x 1250)
# and OUTBASE.svg.
if (ARGC < 2) { print "usage: gnuplot -c vram.gp DATADIR OUTBASE"; exit status 2 }
_dn(s, i) = i < 1 ? "." : (s[i:i] eq "/" ? s[1:i-1] : _dn(s, i - 1))
load _dn(ARG0, strlen(ARG0))."/common.gp"
D = ARG1
load D."/series.gp"

W = 2000; H = 1250
S = VRAM_SERIES
HALF = VRAM_BARW * 0.45
do for [FMT in "png svg"] {
	eval term(FMT, W, H)
	set output ARG2.".".FMT
	set label 90 "{/:Bold Peak VRAM during one load, above the process's baseline}" at screen 0.5, screen 0.955 center font fsz(FMT, 1.25)
	set label 91 SUBTITLE." · ".VRAM_CACHE." cache" at screen 0.5, screen 0.912 center noenhanced font fsz(FMT, 0.8) tc rgb "#555555"
	set tmargin 6
	set bmargin 7.5
	set rmargin 2
	set xrange [-0.55:MEM_GROUPS - 0.5 + 0.62]
	set yrange [0:VRAM_YMAX]
	eval "set xtics ".MEM_XTICS." scale 0"
	set ytics 0.5 format "%.1f×"
	set grid noxtics ytics
	set xlabel "model size"
	set ylabel "peak VRAM above baseline (× model size)"
	set key outside bottom center horizontal maxrows 2 width 1.5 reverse Left
	set arrow 1 from graph 0, first 1 to first MEM_GROUPS - 0.5, first 1 nohead dt 2 lw 1.4 lc rgb REF back
	set arrow 2 from graph 0, first 2 to first MEM_GROUPS - 0.5, first 2 nohead dt 2 lw 1.4 lc rgb REF back
	set label 2 "{/:Bold 1×} model size" at first MEM_GROUPS - 0.47, first 1 left tc rgb REF font fsz(FMT, 0.85)
	set label 3 "{/:Bold 2×} model size" at first MEM_GROUPS - 0.47, first 2 left tc rgb REF font fsz(FMT, 0.85)
	plot \
	  for [k=1:words(S)] D."/vram.dat" index (k - 1) using 1:2:(2 * HALF) with boxes \
	      fs solid 0.9 border lc rgb "#222222" lc rgb lcol(int(word(S, k))) \
	      title lname(int(word(S, k))), \
	  for [k=1:words(S)] D."/vram.dat" index (k - 1) using 1:($2 + 0.05):(sprintf("%.2f×", $2)) \
	      with labels rotate by 90 left font fsz(FMT, 0.72) notitle
	unset output
}
