//! yield_many [tasks] [yields]: every task yields `yields` times.
use std::time::Instant;

#[tokio::main]
async fn main() {
    // Run the workload as a task on a worker thread, as weft's and Go's main
    // do, rather than on the thread that blocks in block_on.
    tokio::spawn(run()).await.expect("benchmark task panicked");
}

async fn run() {
    let tasks = weft_bench_tokio::arg_u64(1, 1000);
    let yields = weft_bench_tokio::arg_u64(2, 1000);

    let start = Instant::now();
    let mut handles = Vec::with_capacity(tasks as usize);
    for _ in 0..tasks {
        handles.push(tokio::spawn(async move {
            for _ in 0..yields {
                tokio::task::yield_now().await;
            }
            yields
        }));
    }
    let mut total = 0u64;
    for h in handles {
        total += h.await.expect("task panicked");
    }
    let elapsed = start.elapsed();

    if total != tasks * yields {
        weft_bench_tokio::fail("yield_many", &format!("{} yields, want {}", total, tasks * yields));
    }
    weft_bench_tokio::report("yield_many", tasks * yields, elapsed);
}
