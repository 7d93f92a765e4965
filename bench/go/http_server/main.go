// http_server ADDR PORT [WORKERS]: HTTP/1.1 keep-alive, answers every request
// with "Hello, World!" and a Content-Length. Like the weft and Tokio servers
// it parses by hand (a request ends at its blank line: GET without a body,
// which is what wrk sends; pipelined requests are answered in order), so the
// runtimes are compared, not HTTP libraries. Exits on SIGINT/SIGTERM.
package main

import (
	"bytes"
	"fmt"
	"net"
	"os"

	"weftbench/internal/bench"
)

var response = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!")
var crlf2 = []byte("\r\n\r\n")
var connClose = []byte("connection: close")

// containsFold reports whether s contains the lower-case ASCII pattern p,
// ignoring case, without allocating.
func containsFold(s, p []byte) bool {
	for i := 0; i+len(p) <= len(s); i++ {
		j := 0
		for ; j < len(p); j++ {
			b := s[i+j]
			if 'A' <= b && b <= 'Z' {
				b += 'a' - 'A'
			}
			if b != p[j] {
				break
			}
		}
		if j == len(p) {
			return true
		}
	}
	return false
}

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 8192)
	out := make([]byte, 0, len(response)*4)
	have := 0
	for {
		if have == len(buf) {
			return // header too large for this toy server
		}
		n, err := c.Read(buf[have:])
		if n <= 0 || err != nil {
			return
		}
		have += n
		used, closing := 0, false
		for {
			end := bytes.Index(buf[used:have], crlf2)
			if end < 0 {
				break
			}
			req := buf[used : used+end+4]
			if containsFold(req, connClose) {
				closing = true
			}
			out = append(out, response...)
			used += end + 4
		}
		copy(buf, buf[used:have])
		have -= used
		if len(out) > 0 {
			if _, err := c.Write(out); err != nil {
				return
			}
			out = out[:0]
		}
		if closing {
			return
		}
	}
}

func main() {
	addr, workers := bench.ServerArgs("http_server")
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "http_server: %v\n", err)
		os.Exit(1)
	}
	bench.ExitOnSignal()
	fmt.Printf("http_server impl=go listening on %s workers=%d\n", addr, workers)
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go serve(c)
	}
}
