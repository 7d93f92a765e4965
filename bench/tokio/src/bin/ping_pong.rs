//! ping_pong [round_trips]: two tasks, two channels of capacity 1.
use std::time::Instant;
use tokio::sync::mpsc;

#[tokio::main]
async fn main() {
    // Run the workload as a task on a worker thread, as weft's and Go's main
    // do, rather than on the thread that blocks in block_on.
    tokio::spawn(run()).await.expect("benchmark task panicked");
}

async fn run() {
    let n = weft_bench_tokio::arg_u64(1, 1_000_000);
    let (ping_tx, mut ping_rx) = mpsc::channel::<u64>(1);
    let (pong_tx, mut pong_rx) = mpsc::channel::<u64>(1);

    let start = Instant::now();
    let ponger = tokio::spawn(async move {
        while let Some(v) = ping_rx.recv().await {
            if pong_tx.send(v + 1).await.is_err() {
                break;
            }
        }
    });
    let pinger = tokio::spawn(async move {
        let mut ok = true;
        for i in 0..n {
            ping_tx.send(i).await.expect("ponger gone");
            ok &= pong_rx.recv().await == Some(i + 1);
        }
        ok
    });
    let ok = pinger.await.unwrap();
    ponger.await.unwrap();
    let elapsed = start.elapsed();

    if !ok {
        weft_bench_tokio::fail("ping_pong", "a reply did not match its ping");
    }
    weft_bench_tokio::report("ping_pong", n, elapsed);
}
