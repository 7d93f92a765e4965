// ping_pong [round_trips]: two goroutines, two channels of capacity 1.
package main

import (
	"time"

	"weftbench/internal/bench"
)

func main() {
	n := bench.Arg(1, 1000000)
	ping := make(chan uint64, 1)
	pong := make(chan uint64, 1)
	result := make(chan bool)

	start := time.Now()
	go func() { // ponger
		for v := range ping {
			pong <- v + 1
		}
		close(pong)
	}()
	go func() { // pinger
		ok := true
		for i := uint64(0); i < n; i++ {
			ping <- i
			ok = ok && <-pong == i+1
		}
		close(ping)
		result <- ok
	}()
	ok := <-result
	elapsed := time.Since(start)

	if !ok {
		bench.Fail("ping_pong", "a reply did not match its ping")
	}
	bench.Report("ping_pong", n, elapsed)
}
