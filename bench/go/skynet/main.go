// skynet [leaves]: a 10-ary tree of goroutines down to `leaves` leaves. Leaf
// k sends k to its parent over the parent's channel; parents sum and send
// up. A node covering [first, first+size) splits it into min(10, size) nearly
// equal ranges, so any leaf count works; for powers of ten this is the
// classic skynet (1e6 leaves: 1,111,111 goroutines, sum 499999500000).
package main

import (
	"time"

	"weftbench/internal/bench"
)

func skynet(parent chan<- uint64, first, size uint64) {
	if size == 1 {
		parent <- first
		return
	}
	kids := size
	if kids > 10 {
		kids = 10
	}
	rc := make(chan uint64, kids)
	for i := uint64(0); i < kids; i++ {
		lo := first + size*i/kids
		hi := first + size*(i+1)/kids
		go skynet(rc, lo, hi-lo)
	}
	var sum uint64
	for i := uint64(0); i < kids; i++ {
		sum += <-rc
	}
	parent <- sum
}

func main() {
	leaves := bench.Arg(1, 1000000)
	c := make(chan uint64, 1)

	start := time.Now()
	go skynet(c, 0, leaves)
	sum := <-c
	elapsed := time.Since(start)

	if want := leaves * (leaves - 1) / 2; sum != want {
		bench.Fail("skynet", "sum %d != %d", sum, want)
	}
	bench.ReportRSS("skynet", leaves, elapsed)
}
