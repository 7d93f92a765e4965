//! spawn_many [N]: spawn N tasks from inside the runtime; each increments a
//! shared atomic and the last one to finish wakes main.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Notify;

#[tokio::main]
async fn main() {
    // Run the workload as a task on a worker thread, as weft's and Go's main
    // do, rather than on the thread that blocks in block_on.
    tokio::spawn(run()).await.expect("benchmark task panicked");
}

async fn run() {
    let n = weft_bench_tokio::arg_u64(1, 1_000_000);
    let count = Arc::new(AtomicU64::new(0));
    let done = Arc::new(Notify::new());

    let start = Instant::now();
    for _ in 0..n {
        let count = count.clone();
        let done = done.clone();
        tokio::spawn(async move {
            if count.fetch_add(1, Ordering::AcqRel) + 1 == n {
                done.notify_one(); // stores a permit if main is not waiting yet
            }
        });
    }
    done.notified().await;
    let elapsed = start.elapsed();

    let got = count.load(Ordering::Acquire);
    if got != n {
        weft_bench_tokio::fail("spawn_many", &format!("count {} != {}", got, n));
    }
    weft_bench_tokio::report("spawn_many", n, elapsed);
}
