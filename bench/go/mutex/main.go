// mutex [tasks] [incs]: every goroutine increments one counter `incs` times
// under a sync.Mutex.
package main

import (
	"sync"

	"weftbench/internal/bench"
)

func main() {
	tasks := bench.Arg(1, 1000)
	incs := bench.Arg(2, 10000)
	var mu sync.Mutex
	var counter uint64

	elapsed := bench.Fanout(tasks, func() {
		for i := uint64(0); i < incs; i++ {
			mu.Lock()
			counter++
			mu.Unlock()
		}
	})

	mu.Lock()
	got := counter
	mu.Unlock()
	if got != tasks*incs {
		bench.Fail("mutex", "counter %d != %d", got, tasks*incs)
	}
	bench.Report("mutex", tasks*incs, elapsed)
}
