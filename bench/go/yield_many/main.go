// yield_many [tasks] [yields]: every goroutine calls runtime.Gosched
// `yields` times.
package main

import (
	"runtime"
	"sync/atomic"

	"weftbench/internal/bench"
)

func main() {
	tasks := bench.Arg(1, 1000)
	yields := bench.Arg(2, 1000)
	var total uint64

	elapsed := bench.Fanout(tasks, func() {
		for i := uint64(0); i < yields; i++ {
			runtime.Gosched()
		}
		atomic.AddUint64(&total, yields)
	})

	if total != tasks*yields {
		bench.Fail("yield_many", "%d yields, want %d", total, tasks*yields)
	}
	bench.Report("yield_many", tasks*yields, elapsed)
}
