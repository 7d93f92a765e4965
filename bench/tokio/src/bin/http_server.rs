//! http_server ADDR PORT [WORKERS]: HTTP/1.1 keep-alive, answers every request
//! with "Hello, World!" and a Content-Length. Requests are taken to end at
//! their blank line (GET without a body, which is what wrk sends); pipelined
//! requests are answered in order. Exits on SIGINT/SIGTERM.
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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
    let (addr, rt, workers) = weft_bench_tokio::server_setup("http_server");
    rt.block_on(async move {
        let listener = TcpListener::bind(&addr).await.unwrap_or_else(|e| {
            eprintln!("http_server: bind {}: {}", addr, e);
            std::process::exit(1);
        });
        println!("http_server impl=tokio listening on {} workers={}", addr, workers);
        let accept = async {
            loop {
                if let Ok((sock, _)) = listener.accept().await {
                    let _ = sock.set_nodelay(true);
                    tokio::spawn(serve(sock));
                }
            }
        };
        tokio::select! {
            _ = accept => {}
            _ = weft_bench_tokio::shutdown_signal() => {}
        }
    });
}
