// channel [producers] [per_producer] [capacity]: producers send uint64s into
// one buffered channel; one consumer sums them and checks the total.
package main

import (
	"sync"
	"time"

	"weftbench/internal/bench"
)

func main() {
	producers := bench.Arg(1, 4)
	per := bench.Arg(2, 2500000)
	capacity := bench.Arg(3, 1024)
	n := producers * per
	ch := make(chan uint64, capacity)
	var wg sync.WaitGroup
	type total struct{ sum, count uint64 }
	res := make(chan total)

	start := time.Now()
	wg.Add(int(producers))
	for p := uint64(0); p < producers; p++ {
		go func(p uint64) {
			defer wg.Done()
			for i := p * per; i < (p+1)*per; i++ {
				ch <- i
			}
		}(p)
	}
	go func() { wg.Wait(); close(ch) }()
	go func() {
		var t total
		for v := range ch {
			t.sum += v
			t.count++
		}
		res <- t
	}()
	t := <-res
	elapsed := time.Since(start)

	if t.count != n || t.sum != n*(n-1)/2 {
		bench.Fail("channel", "got %d items summing to %d, want %d / %d", t.count, t.sum, n, n*(n-1)/2)
	}
	bench.Report("channel", n, elapsed)
}
