// switch [switches]: two goroutines on one P (GOMAXPROCS(1)) yielding to each
// other with runtime.Gosched; reports ns per switch.
package main

import (
	"runtime"
	"sync"
	"time"

	"weftbench/internal/bench"
)

func main() {
	switches := bench.Arg(1, 10000000)
	runtime.GOMAXPROCS(1)
	var wg sync.WaitGroup
	counts := make([]uint64, 2)
	// Each goroutine yields half the switches; while both live, every yield
	// hands the P to the other one.
	quota := []uint64{switches / 2, switches - switches/2}

	start := time.Now()
	wg.Add(2)
	for g := 0; g < 2; g++ {
		go func(g int) {
			defer wg.Done()
			for i := uint64(0); i < quota[g]; i++ {
				runtime.Gosched()
			}
			counts[g] = quota[g]
		}(g)
	}
	wg.Wait()
	elapsed := time.Since(start)

	if counts[0]+counts[1] != switches {
		bench.Fail("switch", "%d yields, want %d", counts[0]+counts[1], switches)
	}
	bench.Report("switch", switches, elapsed)
}
