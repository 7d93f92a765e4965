// sleep_many [tasks] [sleep_ms]: every goroutine sleeps sleep_ms at once;
// wait for all. Reports wall time per task and the peak RSS.
package main

import (
	"sync/atomic"
	"time"

	"weftbench/internal/bench"
)

func main() {
	tasks := bench.Arg(1, 1000000)
	sleepMS := bench.Arg(2, 1000)
	dur := time.Duration(sleepMS) * time.Millisecond
	var early uint64

	elapsed := bench.Fanout(tasks, func() {
		t0 := time.Now()
		time.Sleep(dur)
		if time.Since(t0) < dur {
			atomic.AddUint64(&early, 1)
		}
	})

	if early != 0 {
		bench.Fail("sleep_many", "%d of %d goroutines woke early", early, tasks)
	}
	bench.ReportRSS("sleep_many", tasks, elapsed)
}
