# Bar chart of weft's speed-up over Go and over Tokio, one group per benchmark.
# bench/run calls:  gnuplot -e "datafile='…'; outfile='…'; subtitle='…'" bench/plot.gp
# datafile rows: benchmark  speedup_over_go  speedup_over_tokio   ("?" = n/a)
# A speed-up is the other runtime's median ns/op divided by weft's: above 1
# means weft is faster.

if (!exists("datafile")) datafile = 'bench/results/ratios.dat'
if (!exists("outfile"))  outfile  = 'bench/results/ratios.png'
if (!exists("subtitle")) subtitle = ''

set terminal pngcairo size 1100,560 noenhanced font ",10"
set output outfile
set datafile missing "?"
set title "weft speed-up over Go and Tokio (median ns/op ratio; above 1 = weft faster)\n".subtitle
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key top right
set grid ytics
set xtics rotate by -30 nomirror
set ylabel "speed-up (x)"
set yrange [0:*]
set offsets 0, 0, graph 0.1, 0   # headroom above the tallest bar for its label

# Draw the parity line at 1.
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 1.5 lc rgb "#555555" front

if (exists("nodata")) {
    # No benchmark had both a weft and another result: say so on the chart.
    unset arrow 1
    set xrange [0:1]
    set yrange [0:2]
    unset xtics
    set label 1 "no weft results to compare yet" at graph 0.5, graph 0.7 center font ",16"
    plot 1 lc rgb "#555555" dt 2 title "parity"
    exit
}

# Two bars per cluster, gap 1: each bar is 1/3 wide, centred 1/6 off the tic.
plot datafile using 2:xtic(1) title "over Go" lc rgb "#00ADD8", \
     ''       using 3         title "over Tokio" lc rgb "#CE422B", \
     ''       using ($0 - 1./6):2:(sprintf("%.2f", $2)) with labels offset 0, 0.6 font ",9" notitle, \
     ''       using ($0 + 1./6):3:(sprintf("%.2f", $3)) with labels offset 0, 0.6 font ",9" notitle
