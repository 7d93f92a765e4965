//! echo_server ADDR PORT [WORKERS]: one task per TCP connection echoing every
//! byte back. Exits on SIGINT/SIGTERM.
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn serve(mut sock: TcpStream) {
    let mut buf = vec![0u8; 4096];
    loop {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if sock.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn main() {
    weft_bench_tokio::run_server("echo_server", serve);
}
