//! skynet [leaves]: a 10-ary tree of tasks down to `leaves` leaves. Leaf k
//! sends k to its parent over the parent's channel; parents sum and send up.
//! A node covering [first, first+size) splits it into min(10, size) nearly
//! equal ranges, so any leaf count works; for powers of ten this is the
//! classic skynet (1e6 leaves: 1,111,111 tasks, sum 499999500000).
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;
use tokio::sync::mpsc;

fn skynet(first: u64, size: u64, parent: mpsc::Sender<u64>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        if size == 1 {
            let _ = parent.send(first).await;
            return;
        }
        let kids = size.min(10);
        let (tx, mut rx) = mpsc::channel::<u64>(kids as usize);
        for i in 0..kids {
            let lo = first + size * i / kids;
            let hi = first + size * (i + 1) / kids;
            tokio::spawn(skynet(lo, hi - lo, tx.clone()));
        }
        drop(tx);
        let mut sum = 0;
        for _ in 0..kids {
            sum += rx.recv().await.expect("child vanished");
        }
        let _ = parent.send(sum).await;
    })
}

#[tokio::main]
async fn main() {
    // Run the workload as a task on a worker thread, as weft's and Go's main
    // do, rather than on the thread that blocks in block_on.
    tokio::spawn(run()).await.expect("benchmark task panicked");
}

async fn run() {
    let leaves = weft_bench_tokio::arg_u64(1, 1_000_000);
    let (tx, mut rx) = mpsc::channel::<u64>(1);

    let start = Instant::now();
    tokio::spawn(skynet(0, leaves, tx));
    let sum = rx.recv().await.expect("root vanished");
    let elapsed = start.elapsed();

    let want = leaves * (leaves - 1) / 2;
    if sum != want {
        weft_bench_tokio::fail("skynet", &format!("sum {} != {}", sum, want));
    }
    weft_bench_tokio::report_rss("skynet", leaves, elapsed);
}
