//! Where the benches write their reports: `target/bench/`, next to the build, as
//! `<name>-<unix time>.json`, `<name>-latest.json` and `<name>-latest.md`. Shared by the
//! comparison and the soak (`#[path]`), so both leave their results the same way.

use std::path::PathBuf;

/// `target/bench`: the bench binary lives in `target/<profile>/deps/`, so the target dir is
/// three levels up, wherever CARGO_TARGET_DIR put it.
pub fn bench_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let target = exe
        .ancestors()
        .nth(3)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    let dir = target.join("bench");
    std::fs::create_dir_all(&dir).expect("create target/bench");
    dir
}

/// Writes one run's report under `name`; returns the path of its time-stamped JSON.
pub fn write_reports(name: &str, report: &impl serde::Serialize, markdown: &str) -> PathBuf {
    let dir = bench_dir();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let json = serde_json::to_string_pretty(report).expect("serialize report");
    let path = dir.join(format!("{name}-{stamp}.json"));
    std::fs::write(&path, &json).expect("write JSON report");
    std::fs::write(dir.join(format!("{name}-latest.json")), &json).expect("write JSON report");
    std::fs::write(dir.join(format!("{name}-latest.md")), markdown).expect("write report");
    path
}
