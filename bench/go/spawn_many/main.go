// spawn_many [N]: spawn N goroutines; each increments a shared atomic; wait
// for all with a WaitGroup.
package main

import (
	"sync"
	"sync/atomic"
	"time"

	"weftbench/internal/bench"
)

func main() {
	n := bench.Arg(1, 1000000)
	var count uint64
	var wg sync.WaitGroup

	start := time.Now()
	wg.Add(int(n))
	for i := uint64(0); i < n; i++ {
		go func() {
			atomic.AddUint64(&count, 1)
			wg.Done()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	if got := atomic.LoadUint64(&count); got != n {
		bench.Fail("spawn_many", "count %d != %d", got, n)
	}
	bench.Report("spawn_many", n, elapsed)
}
