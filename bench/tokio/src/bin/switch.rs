//! switch [switches]: two tasks on one worker (current_thread runtime)
//! yielding to each other; reports ns per task switch.
use std::time::Instant;

fn main() {
    let switches = weft_bench_tokio::arg_u64(1, 10_000_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let (elapsed, done) = rt.block_on(async move {
        // Each task yields half the switches; while both live, every yield
        // hands the thread to the other one.
        let per_task = switches / 2;
        let start = Instant::now();
        let a = tokio::spawn(async move {
            for _ in 0..per_task {
                tokio::task::yield_now().await;
            }
            per_task
        });
        let b = tokio::spawn(async move {
            for _ in 0..switches - per_task {
                tokio::task::yield_now().await;
            }
            switches - per_task
        });
        let done = a.await.unwrap() + b.await.unwrap();
        (start.elapsed(), done)
    });
    if done != switches {
        weft_bench_tokio::fail("switch", &format!("{} yields, want {}", done, switches));
    }
    weft_bench_tokio::report("switch", switches, elapsed);
}
