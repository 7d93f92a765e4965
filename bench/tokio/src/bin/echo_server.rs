//! echo_server ADDR PORT [WORKERS]: one task per TCP connection echoing every
//! byte back. Exits on SIGINT/SIGTERM.
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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
    let (addr, rt, workers) = weft_bench_tokio::server_setup("echo_server");
    rt.block_on(async move {
        let listener = TcpListener::bind(&addr).await.unwrap_or_else(|e| {
            eprintln!("echo_server: bind {}: {}", addr, e);
            std::process::exit(1);
        });
        println!("echo_server impl=tokio listening on {} workers={}", addr, workers);
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
    // Dropping the runtime cancels the connection tasks.
}
