# Base against head, per cell of a comparison (`ckptbench compare
# --format json`): the base's median with its 95% CI as an open marker, the
# head's as a filled one, in the loader's colour, and the verdict above.
#
#   gnuplot -c compare.gp DATADIR OUTBASE    (DATADIR from `ckptbench plot`)
#
# Reads DATADIR/compare.gp and compare.dat; writes OUTBASE.png
# (2000 x 1250) and OUTBASE.svg.
if (ARGC < 2) { print "usage: gnuplot -c compare.gp DATADIR OUTBASE"; exit status 2 }
_dn(s, i) = i < 1 ? "." : (s[i:i] eq "/" ? s[1:i-1] : _dn(s, i - 1))
load _dn(ARG0, strlen(ARG0))."/common.gp"
D = ARG1
load D."/compare.gp"

W = 2000; H = 1250
# Verdicts that call for attention are red, improvements green.
vcol(v) = v[1:10] eq "regression" ? 0xAA0000 : v[1:11] eq "improvement" ? 0x117733 : 0x555555
do for [FMT in "png svg"] {
	eval term(FMT, W, H)
	set output ARG2.".".FMT
	set label 90 "{/:Bold Base against head}, per cell (median, 95% CI)" at screen 0.5, screen 0.955 center font fsz(FMT, 1.25)
	set label 91 CMP_SUBTITLE at screen 0.5, screen 0.912 center noenhanced font fsz(FMT, 0.8) tc rgb "#555555"
	set tmargin 6
	set bmargin 12
	set lmargin 26
	set logscale y
	set xrange [-0.6:CMP_N - 0.4]
	set yrange [CMP_YMIN:CMP_YMAX]
	set format y "%g"
	set xtics rotate by 30 right noenhanced scale 0
	set grid noxtics ytics
	set ylabel CMP_YLABEL
	set key top left reverse Left width 1
	plot \
	  D."/compare.dat" using ($1 - 0.12):2:3:4:8 with yerrorbars pt 6 ps 2.6 lw 1.8 lc rgb variable notitle, \
	  D."/compare.dat" using ($1 + 0.12):5:6:7:8:xticlabels(10) with yerrorbars pt 7 ps 2.6 lw 1.8 lc rgb variable notitle, \
	  NaN with points pt 6 ps 2.6 lc rgb "#444444" title "base (open)", \
	  NaN with points pt 7 ps 2.6 lc rgb "#444444" title "head (filled)", \
	  D."/compare.dat" using 1:(($4 > $7 ? $4 : $7) * 1.35):9:(vcol(strcol(9))) with labels \
	      center noenhanced font fsz(FMT, 0.8) tc rgb variable notitle
	unset output
}
