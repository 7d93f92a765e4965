//! http_server ADDR PORT [WORKERS]: HTTP/1.1 keep-alive, answers every request
//! with "Hello, World!" and a Content-Length. Requests are taken to end at
//! their blank line (GET without a body, which is what wrk sends); pipelined
//! requests are answered in order. Exits on SIGINT/SIGTERM.
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";

fn find_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

async fn serve(mut sock: TcpStream) {
    let mut buf = vec![0u8; 8192];
    let mut have = 0;
    let mut out = Vec::with_capacity(RESPONSE.len() * 4);
    loop {
        if have == buf.len() {
            return; // header too large for this toy server
        }
        match sock.read(&mut buf[have..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => have += n,
        }
        let mut used = 0;
        let mut close = false;
        while let Some(end) = find_end(&buf[used..have]) {
            let req = &buf[used..used + end];
            close |= req.windows(17).any(|w| w.eq_ignore_ascii_case(b"connection: close"));
            out.extend_from_slice(RESPONSE);
            used += end;
        }
        buf.copy_within(used..have, 0);
        have -= used;
        if !out.is_empty() {
            if sock.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if close {
            return;
        }
    }
}

fn main() {
    weft_bench_tokio::run_server("http_server", serve);
}
