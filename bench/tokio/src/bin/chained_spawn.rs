//! chained_spawn [depth]: each task spawns the next; the last one signals.
use std::time::Instant;
use tokio::sync::oneshot;

fn chain(left: u64, done: oneshot::Sender<u64>, hops: u64) {
    if left == 0 {
        let _ = done.send(hops);
    } else {
        tokio::spawn(async move { chain(left - 1, done, hops + 1) });
    }
}

#[tokio::main]
async fn main() {
    // Run the workload as a task on a worker thread, as weft's and Go's main
    // do, rather than on the thread that blocks in block_on.
    tokio::spawn(run()).await.expect("benchmark task panicked");
}

async fn run() {
    let depth = weft_bench_tokio::arg_u64(1, 1_000_000);
    let (tx, rx) = oneshot::channel();

    let start = Instant::now();
    // depth tasks in all: the first spawns the second ... the last signals.
    tokio::spawn(async move { chain(depth - 1, tx, 1) });
    let hops = rx.await.expect("chain dropped its sender");
    let elapsed = start.elapsed();

    if hops != depth {
        weft_bench_tokio::fail("chained_spawn", &format!("{} tasks ran, want {}", hops, depth));
    }
    weft_bench_tokio::report("chained_spawn", depth, elapsed);
}
