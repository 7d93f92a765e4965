// select [producers] [per_producer] [capacity]: producers send uint64s
// alternately into two buffered channels; one consumer receives each with
// a select over both, sums them and checks the total (bench/select.c).
package main

import (
	"sync"
	"time"

	"weftbench/internal/bench"
)

func main() {
	producers := bench.Arg(1, 4)
	per := bench.Arg(2, 1000000)
	capacity := bench.Arg(3, 1024)
	n := producers * per
	chs := [2]chan uint64{make(chan uint64, capacity), make(chan uint64, capacity)}
	var wg sync.WaitGroup

	start := time.Now()
	wg.Add(int(producers))
	for p := uint64(0); p < producers; p++ {
		go func() {
			defer wg.Done()
			for i := uint64(0); i < per; i++ {
				chs[i%2] <- i
			}
		}()
	}
	var sum uint64
	for k := uint64(0); k < n; k++ {
		select {
		case v := <-chs[0]:
			sum += v
		case v := <-chs[1]:
			sum += v
		}
	}
	elapsed := time.Since(start)
	wg.Wait()

	if want := producers * (per * (per - 1) / 2); sum != want {
		bench.Fail("select", "sum %d, want %d", sum, want)
	}
	bench.Report("select", n, elapsed)
}
