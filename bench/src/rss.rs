//! Peak memory while replaying a large stream, measured in a child process of its own so that
//! nothing else the benchmark did counts towards the peak.

/// The process's peak resident set (VmHWM) in KiB, from /proc.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

/// In the child: connects to `url`, replays `stream` once, and prints
/// `events <n> before_kib <k> peak_kib <k>`.
pub async fn child(url: &str, stream: &str) {
    let stores = aett::connect(url).await.expect("connect");
    let before = peak_rss_kib();
    let events = crate::aett_side::replay_once(&stores, stream).await;
    println!(
        "events {events} before_kib {before} peak_kib {}",
        peak_rss_kib()
    );
}

/// In the parent: runs the child and returns (events replayed, peak before, peak after) in KiB.
pub fn measure(url: &str, stream: &str) -> (u64, u64, u64) {
    let output = std::process::Command::new(std::env::current_exe().expect("own path"))
        .args(["rss-child", url, stream])
        .output()
        .expect("run the child");
    assert!(
        output.status.success(),
        "rss child failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let numbers: Vec<u64> = text
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect();
    match numbers.as_slice() {
        [events, before, peak] => (*events, *before, *peak),
        _ => panic!("unexpected rss child output: {text}"),
    }
}
