//! sleep_many [tasks] [sleep_ms]: every task sleeps sleep_ms at once; wait for
//! all. Reports wall time per task and the peak RSS.
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() {
    // Run the workload as a task on a worker thread, as weft's and Go's main
    // do, rather than on the thread that blocks in block_on.
    tokio::spawn(run()).await.expect("benchmark task panicked");
}

async fn run() {
    let tasks = weft_bench_tokio::arg_u64(1, 1_000_000);
    let sleep_ms = weft_bench_tokio::arg_u64(2, 1000);
    let dur = Duration::from_millis(sleep_ms);

    let start = Instant::now();
    let mut handles = Vec::with_capacity(tasks as usize);
    for _ in 0..tasks {
        handles.push(tokio::spawn(async move {
            let t0 = Instant::now();
            tokio::time::sleep(dur).await;
            t0.elapsed() >= dur
        }));
    }
    let mut ok = 0u64;
    for h in handles {
        ok += h.await.expect("task panicked") as u64;
    }
    let elapsed = start.elapsed();

    if ok != tasks {
        weft_bench_tokio::fail("sleep_many", &format!("{} of {} tasks woke early", tasks - ok, tasks));
    }
    weft_bench_tokio::report_rss("sleep_many", tasks, elapsed);
}
