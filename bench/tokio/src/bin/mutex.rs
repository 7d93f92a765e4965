//! mutex [tasks] [incs]: every task increments one counter `incs` times under
//! a tokio::sync::Mutex.
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Mutex;

#[tokio::main]
async fn main() {
    // Run the workload as a task on a worker thread, as weft's and Go's main
    // do, rather than on the thread that blocks in block_on.
    tokio::spawn(run()).await.expect("benchmark task panicked");
}

async fn run() {
    let tasks = weft_bench_tokio::arg_u64(1, 1000);
    let incs = weft_bench_tokio::arg_u64(2, 10_000);
    let counter = Arc::new(Mutex::new(0u64));

    let start = Instant::now();
    let mut handles = Vec::with_capacity(tasks as usize);
    for _ in 0..tasks {
        let counter = counter.clone();
        handles.push(tokio::spawn(async move {
            for _ in 0..incs {
                *counter.lock().await += 1;
            }
        }));
    }
    for h in handles {
        h.await.expect("task panicked");
    }
    let elapsed = start.elapsed();

    let got = *counter.lock().await;
    if got != tasks * incs {
        weft_bench_tokio::fail("mutex", &format!("counter {} != {}", got, tasks * incs));
    }
    weft_bench_tokio::report("mutex", tasks * incs, elapsed);
}
