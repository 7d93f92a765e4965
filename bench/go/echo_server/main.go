// echo_server ADDR PORT [WORKERS]: one goroutine per TCP connection echoing
// every byte back. WORKERS sets GOMAXPROCS (0: Go's default). Exits on
// SIGINT/SIGTERM.
package main

import (
	"fmt"
	"net"
	"os"

	"weftbench/internal/bench"
)

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	addr, workers := bench.ServerArgs("echo_server")
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "echo_server: %v\n", err)
		os.Exit(1)
	}
	bench.ExitOnSignal()
	fmt.Printf("echo_server impl=go listening on %s workers=%d\n", addr, workers)
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go serve(c) // Go sets TCP_NODELAY on accepted connections
	}
}
