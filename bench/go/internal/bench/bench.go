// Package bench holds what the Go benchmark programs share: positional size
// arguments, running n goroutines at once, the RESULT line each program
// ends with, and peak RSS.
package bench

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Arg returns the i-th positional argument (1-based) as a number, or def.
// A malformed argument exits with status 2.
func Arg(i int, def uint64) uint64 {
	if len(os.Args) <= i {
		return def
	}
	v, err := strconv.ParseUint(os.Args[i], 10, 64)
	if err != nil || v == 0 {
		fmt.Fprintf(os.Stderr, "bad argument %d: %q (want a positive integer)\n", i, os.Args[i])
		os.Exit(2)
	}
	return v
}

// Fanout runs body in n goroutines at once and returns the time from
// before the first starts to after the last ends.
func Fanout(n uint64, body func()) time.Duration {
	var wg sync.WaitGroup
	start := time.Now()
	wg.Add(int(n))
	for i := uint64(0); i < n; i++ {
		go func() {
			defer wg.Done()
			body()
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// PeakRSSKB is the peak resident set size in KiB: VmHWM from
// /proc/self/status, else getrusage's ru_maxrss.
func PeakRSSKB() uint64 {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "VmHWM:") {
				f := strings.Fields(line[len("VmHWM:"):])
				if len(f) > 0 {
					if v, err := strconv.ParseUint(f[0], 10, 64); err == nil {
						return v
					}
				}
			}
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		return uint64(ru.Maxrss)
	}
	return 0
}

func line(name string, ops uint64, d time.Duration) string {
	secs := d.Seconds()
	return fmt.Sprintf("RESULT name=%s impl=go ops=%d secs=%.6f ns_per_op=%.2f",
		name, ops, secs, secs*1e9/float64(ops))
}

// Report prints the closing RESULT line.
func Report(name string, ops uint64, d time.Duration) {
	fmt.Println(line(name, ops, d))
}

// ReportRSS prints the closing RESULT line with the peak RSS appended.
func ReportRSS(name string, ops uint64, d time.Duration) {
	fmt.Printf("%s rss_kb=%d\n", line(name, ops, d), PeakRSSKB())
}

// Fail says why the answer is wrong and exits non-zero.
func Fail(name, format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "%s: WRONG ANSWER: %s\n", name, fmt.Sprintf(format, a...))
	os.Exit(1)
}

// ServerArgs parses `ADDR PORT [WORKERS]` for the servers, sets GOMAXPROCS
// to WORKERS when it is positive, and returns "ADDR:PORT" and the workers.
func ServerArgs(prog string) (string, int) {
	if len(os.Args) < 3 {
		fmt.Fprintf(os.Stderr, "usage: %s ADDR PORT [WORKERS]\n", prog)
		os.Exit(2)
	}
	if _, err := strconv.ParseUint(os.Args[2], 10, 16); err != nil {
		fmt.Fprintf(os.Stderr, "%s: bad port %q\n", prog, os.Args[2])
		os.Exit(2)
	}
	workers := 0
	if len(os.Args) > 3 {
		workers, _ = strconv.Atoi(os.Args[3])
	}
	if workers > 0 {
		runtime.GOMAXPROCS(workers)
	}
	return os.Args[1] + ":" + os.Args[2], workers
}

// ExitOnSignal exits the process on the first SIGINT or SIGTERM.
func ExitOnSignal() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-c
		os.Exit(0)
	}()
}
