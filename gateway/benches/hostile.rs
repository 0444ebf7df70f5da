//! What each hostile request costs the gateway:
//! `cargo bench -p grocery-gateway --bench hostile`.
//!
//! Runs the corpus of `tests/hostile/corpus.rs` (the test asserts its
//! outcomes) against a gateway served in this process on the project's
//! supergraph, each entry `HOSTILE_ROUNDS` times (default 5), and prints per
//! entry the worst CPU time the process spent on it (every thread's run
//! time from `/proc/self/task/*/schedstat`, so planning on the blocking pool
//! counts; the client's share is building nothing, only sending bytes) and
//! the worst growth of peak RSS over the RSS before it (the peak is reset
//! through `/proc/self/clear_refs` before each request). Goal: every entry
//! ≤ 50 ms and ≤ 20 MB on 2 cores. Linux only.

#[path = "../tests/hostile/corpus.rs"]
mod corpus;

// The allocator `grocery` ships with (src/main.rs), so the figures are its own.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// CPU time of every thread of this process so far, in nanoseconds.
fn cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// `VmRSS` or `VmHWM` of this process, in bytes.
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| {
            line.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
        * 1024
}

fn main() {
    let rounds: usize = std::env::var("HOSTILE_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let harness = corpus::Harness::start().await;
        // Warm-up: the first request loads what every later one shares.
        let warm = &corpus::entries()[0];
        harness.send(warm).await;
        println!(
            "{:<66} {:>10} {:>10} {:>9}",
            "entry", "CPU ms", "RSS+ MB", "status"
        );
        let mut over = 0;
        for entry in corpus::entries() {
            let (mut cpu, mut rss, mut status) = (0u64, 0u64, None);
            for _ in 0..rounds {
                let _ = std::fs::write("/proc/self/clear_refs", "5");
                let before_rss = status_kb("VmRSS:");
                let before = cpu_ns();
                let answer = harness.send(&entry).await;
                cpu = cpu.max(cpu_ns().saturating_sub(before));
                rss = rss.max(status_kb("VmHWM:").saturating_sub(before_rss));
                status = answer.status;
            }
            let (ms, mb) = (cpu as f64 / 1e6, rss as f64 / (1024.0 * 1024.0));
            if ms > 50.0 || mb > 20.0 {
                over += 1;
            }
            let status = status.map_or("closed".to_owned(), |s| s.to_string());
            println!("{:<66} {ms:>10.2} {mb:>10.2} {status:>9}", entry.name);
        }
        println!("entries over 50 ms or 20 MB: {over}");
    });
}
