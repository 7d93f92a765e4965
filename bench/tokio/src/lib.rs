//! Helpers shared by the Tokio benchmark programs: positional size
//! arguments, the RESULT line every program ends with, and peak RSS.

use std::time::Duration;

/// The `i`-th positional argument (1-based) as a number, or `default`.
/// Exits with status 2 on a malformed argument rather than guessing.
pub fn arg_u64(i: usize, default: u64) -> u64 {
    match std::env::args().nth(i) {
        None => default,
        Some(s) => match s.parse::<u64>() {
            Ok(v) if v > 0 => v,
            _ => {
                eprintln!("bad argument {}: {:?} (want a positive integer)", i, s);
                std::process::exit(2);
            }
        },
    }
}

/// Peak resident set size of this process in KiB (VmHWM), 0 if unknown.
pub fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix("VmHWM:") {
            return rest.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
        }
    }
    0
}

fn result_line(name: &str, ops: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    format!(
        "RESULT name={} impl=tokio ops={} secs={:.6} ns_per_op={:.2}",
        name,
        ops,
        secs,
        secs * 1e9 / ops as f64
    )
}

/// Print the closing RESULT line.
pub fn report(name: &str, ops: u64, elapsed: Duration) {
    println!("{}", result_line(name, ops, elapsed));
}

/// Print the closing RESULT line with the peak RSS appended.
pub fn report_rss(name: &str, ops: u64, elapsed: Duration) {
    println!("{} rss_kb={}", result_line(name, ops, elapsed), peak_rss_kb());
}

/// Print why the answer is wrong and exit non-zero.
pub fn fail(name: &str, msg: &str) -> ! {
    eprintln!("{}: WRONG ANSWER: {}", name, msg);
    std::process::exit(1);
}

/// Parse `ADDR PORT WORKERS` for the servers and build a multi-thread
/// runtime with WORKERS worker threads (0 or absent: Tokio's default, one
/// per CPU).
fn server_setup(prog: &str) -> (String, tokio::runtime::Runtime, usize) {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: {} ADDR PORT [WORKERS]", prog);
        std::process::exit(2);
    }
    let port: u16 = args[2].parse().unwrap_or_else(|_| {
        eprintln!("{}: bad port {:?}", prog, args[2]);
        std::process::exit(2);
    });
    let workers: usize = args.get(3).map(|w| w.parse().unwrap_or(0)).unwrap_or(0);
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.enable_all();
    if workers > 0 {
        b.worker_threads(workers);
    }
    let rt = b.build().expect("runtime");
    (format!("{}:{}", args[1], port), rt, workers)
}

/// Resolves on the first SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}

/// The servers' main: `prog ADDR PORT [WORKERS]` listens, runs `serve` as a
/// task per connection (with TCP_NODELAY, as weft and Go set it) until
/// SIGINT or SIGTERM, then drops the runtime, which cancels those tasks.
pub fn run_server<F, Fut>(prog: &str, serve: F)
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (addr, rt, workers) = server_setup(prog);
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await.unwrap_or_else(|e| {
            eprintln!("{}: bind {}: {}", prog, addr, e);
            std::process::exit(1);
        });
        println!("{} impl=tokio listening on {} workers={}", prog, addr, workers);
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
            _ = shutdown_signal() => {}
        }
    });
}
