# Shared by the chart templates in this directory (each loads it from
# beside itself). Sets the look every chart has, and `term(FMT, W, H)`,
# the terminal command for one output format.
#
# PNG: pngcairo at W x H pixels (2000 x 1250 is 10 x 6.25 in at 200 dpi);
# SVG: the same figure at half the pixel size, fonts and lines to match.
set encoding utf8
set datafile missing "?"
set datafile separator whitespace

FONT = "DejaVu Sans"
term(fmt, w, h) = fmt eq "png" \
	? sprintf("set terminal pngcairo size %d,%d enhanced font '%s,22' linewidth 2.6 rounded", w, h, FONT) \
	: sprintf("set terminal svg size %d,%d dynamic enhanced font '%s,11' linewidth 1.3 rounded", w / 2, h / 2, FONT)
# A font size relative to the base size of the format being written.
fsz(fmt, k) = sprintf(",%g", (fmt eq "png" ? 22 : 11) * k)

# Chart furniture: light grid behind the data, a plain border.
set border 3 lw 1 lc rgb "#333333"
set tics nomirror out scale 0.6
set grid back lw 0.6 lc rgb "#dddddd"
set key noenhanced samplen 2.5 spacing 1.15
set style fill solid 1.0 border -1

# Loader number i (1-based, as in LOADERS): its colour, dash and points.
lcol(i) = word(COLORS, i)
ldash(i) = int(word(DASHES, i))
lpt(i) = int(word(POINTS, i))
lhollow(i) = int(word(HOLLOW, i))
lname(i) = word(LOADERS, i)

# Reference and ceiling lines.
REF = "#444444"
