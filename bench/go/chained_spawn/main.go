// chained_spawn [depth]: each goroutine starts the next; the last signals.
package main

import (
	"time"

	"weftbench/internal/bench"
)

func chain(left uint64, done chan<- uint64, hops uint64) {
	if left == 0 {
		done <- hops
		return
	}
	go chain(left-1, done, hops+1)
}

func main() {
	depth := bench.Arg(1, 1000000)
	done := make(chan uint64, 1)

	start := time.Now()
	// depth goroutines in all: the first starts the second ... the last signals.
	go chain(depth-1, done, 1)
	hops := <-done
	elapsed := time.Since(start)

	if hops != depth {
		bench.Fail("chained_spawn", "%d goroutines ran, want %d", hops, depth)
	}
	bench.Report("chained_spawn", depth, elapsed)
}
