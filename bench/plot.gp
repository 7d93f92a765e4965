# The charts of bench/run, all on log scales:
#  - top: weft's speed-up over Go and over Tokio, one group per benchmark;
#  - below, if there were server runs: throughput (left) beside p99 latency
#    (right), one group per server and load mode, one bar per variant.
# bench/run calls:
#   gnuplot -e "datafile='…'; outfile='…'; subtitle='…'
#               [; serverfile='…'; variants='weft go tokio']" bench/plot.gp
# datafile rows: benchmark  speedup_over_go  speedup_over_tokio   ("?" = n/a)
# serverfile rows: bench-mode  req/s per variant…  p99 (µs) per variant…
# A speed-up is the other runtime's median ns/op divided by weft's: above 1
# means weft is faster.

if (!exists("datafile")) datafile = 'bench/results/ratios.dat'
if (!exists("outfile"))  outfile  = 'bench/results/ratios.png'
if (!exists("subtitle")) subtitle = ''
servers = exists("serverfile") && exists("variants")
nv = servers ? words(variants) : 0

set terminal pngcairo size 1100, (servers ? 1100 : 560) noenhanced font ",10"
set output outfile
set datafile missing "?"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics mytics
set xtics rotate by -30 nomirror
set logscale y
array colour[6] = ["#4C72B0", "#00ADD8", "#CE422B", "#55A868", "#8172B2", "#CCB974"]

if (servers) {
    set multiplot
    set size 1, 0.5
    set origin 0, 0.5
}

set title "weft speed-up over Go and Tokio (median ns/op ratio; above 1 = weft faster)\n".subtitle
set key top right
set ylabel "speed-up (x, log scale)"
set yrange [0.1:*]
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 1.5 lc rgb "#555555" front
if (exists("nodata")) {
    # No benchmark had both a weft and another result: say so on the chart.
    unset arrow 1
    unset logscale y
    set xrange [0:1]
    set yrange [0:2]
    unset xtics
    set label 1 "no scheduler benchmark to compare" at graph 0.5, graph 0.7 center font ",16"
    plot 1 lc rgb "#555555" dt 2 title "parity"
    unset label 1
    set xtics
    unset xrange
    set logscale y
} else {
    # Two bars per cluster, gap 1: each bar is 1/3 wide, centred 1/6 off the tic.
    plot datafile using 2:xtic(1) title "over Go" lc rgb "#00ADD8", \
         ''       using 3         title "over Tokio" lc rgb "#CE422B", \
         ''       using ($0 - 1./6):2:(sprintf("%.2f", $2)) with labels offset 0, 0.6 font ",9" notitle, \
         ''       using ($0 + 1./6):3:(sprintf("%.2f", $3)) with labels offset 0, 0.6 font ",9" notitle
}
unset arrow 1

if (servers) {
    set size 0.5, 0.5
    set yrange [*:*]
    set key top left
    set origin 0, 0
    set title "server throughput (req/s, median, log scale)"
    set ylabel "requests per second"
    plot for [i = 1:nv] serverfile using (column(1 + i)):xtic(1) \
         title word(variants, i) lc rgb colour[(i - 1) % 6 + 1]
    set origin 0.5, 0
    set title "server p99 latency (µs, median, log scale; lower is better)"
    set ylabel "p99 (µs)"
    plot for [i = 1:nv] serverfile using (column(1 + nv + i)):xtic(1) \
         title word(variants, i) lc rgb colour[(i - 1) % 6 + 1]
    unset multiplot
}
