//! channel [producers] [per_producer] [capacity]: producers send u64s into
//! one bounded mpsc channel; one consumer sums them and checks the total.
use std::time::Instant;
use tokio::sync::mpsc;

#[tokio::main]
async fn main() {
    // Run the workload as a task on a worker thread, as weft's and Go's main
    // do, rather than on the thread that blocks in block_on.
    tokio::spawn(run()).await.expect("benchmark task panicked");
}

async fn run() {
    let producers = weft_bench_tokio::arg_u64(1, 4);
    let per = weft_bench_tokio::arg_u64(2, 2_500_000);
    let capacity = weft_bench_tokio::arg_u64(3, 1024);
    let n = producers * per;
    let (tx, mut rx) = mpsc::channel::<u64>(capacity as usize);

    let start = Instant::now();
    for p in 0..producers {
        let tx = tx.clone();
        tokio::spawn(async move {
            for i in p * per..(p + 1) * per {
                tx.send(i).await.expect("consumer gone");
            }
        });
    }
    drop(tx);
    let consumer = tokio::spawn(async move {
        let (mut sum, mut count) = (0u64, 0u64);
        while let Some(v) = rx.recv().await {
            sum += v;
            count += 1;
        }
        (sum, count)
    });
    let (sum, count) = consumer.await.unwrap();
    let elapsed = start.elapsed();

    if count != n || sum != n * (n - 1) / 2 {
        weft_bench_tokio::fail("channel", &format!("got {} items summing to {}, want {} / {}", count, sum, n, n * (n - 1) / 2));
    }
    weft_bench_tokio::report("channel", n, elapsed);
}
