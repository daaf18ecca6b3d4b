//! `raftkv bench --sweep` end to end: the built binary runs a tiny grid with the baseline, and
//! the report it writes is checked (JSON shape and numbers, one SVG per chart, no failures).

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Far above the tiny grid's run time (seconds, even unoptimized), so only a hang trips it.
const DEADLINE: Duration = Duration::from_secs(300);

/// A `raftkv` child that is killed and reaped however the test ends.
struct Run(Option<Child>);

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Run {
    /// Waits for the exit, killing the child at `DEADLINE`.
    fn wait(mut self, log: &Path) -> ExitStatus {
        let mut child = self.0.take().expect("a running child");
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("poll the child") {
                return status;
            }
            if started.elapsed() > DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "raftkv bench --sweep still running after {DEADLINE:?}; its output:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn raftkv(args: &[&str], log: &Path) -> Run {
    let output = File::create(log).expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_raftkv"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(output.try_clone().expect("log file"))
        .stderr(output)
        .spawn()
        .expect("spawn raftkv");
    Run(Some(child))
}

fn numbers(points: &[Value], field: &str) -> Vec<f64> {
    points
        .iter()
        .map(|p| {
            p[field]
                .as_f64()
                .unwrap_or_else(|| panic!("{field} is not a number in {p}"))
        })
        .collect()
}

#[test]
fn a_tiny_sweep_writes_a_complete_report() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("report");
    let log = dir.path().join("raftkv.log");
    let out_arg = out.display().to_string();
    let status = raftkv(
        &[
            "bench",
            "--sweep",
            "--sweep-clients",
            "1,4",
            "--sweep-value-sizes",
            "16",
            "--sweep-read-ratios",
            "0.5",
            "--sweep-nodes",
            "3",
            "--sweep-storage",
            "memory",
            "--duration",
            "200ms",
            "--baseline",
            "--sweep-out",
            &out_arg,
        ],
        &log,
    )
    .wait(&log);
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "{status}; output:\n{output}");

    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("report.json")).expect("report.json written"),
    )
    .expect("report.json parses");
    assert_eq!(json["format"], "raftkv-sweep/1");
    assert_eq!(json["complete"], true);
    assert!(json["machine"]["cores"].as_u64().unwrap() >= 1);
    assert_eq!(json["grid"]["clients"], serde_json::json!([1, 4]));
    assert_eq!(
        json["grid"]["backends"],
        serde_json::json!(["openraft", "raftrs"])
    );

    // 2 client counts × 2 backends, each a full workload run that passed its checks.
    let points = json["points"].as_array().expect("points");
    assert_eq!(points.len(), 4, "{json:#}");
    for point in points {
        assert_eq!(point["error"], Value::Null, "{point}");
        assert_eq!(point["checks_passed"], true, "{point}");
        assert_eq!(point["read_ratio"], 0.5);
        assert_eq!(point["storage"], "memory");
    }
    assert!(numbers(points, "write_throughput").iter().all(|&t| t > 0.0));
    assert!(numbers(points, "commit_p99_us").iter().all(|&t| t > 0.0));
    assert!(
        numbers(points, "lease_read_p99_us")
            .iter()
            .all(|&t| t > 0.0)
    );

    // The same 4 (backend, clients) pairs, each through the adapter and both direct forms.
    let baseline = json["baseline"].as_array().expect("baseline");
    assert_eq!(baseline.len(), 4 * 3, "{json:#}");
    for path in ["adapter", "direct_structs", "direct_encoded"] {
        let runs: Vec<Value> = baseline
            .iter()
            .filter(|b| b["path"] == path)
            .cloned()
            .collect();
        assert_eq!(runs.len(), 4, "{path}");
        assert!(runs.iter().all(|b| b["error"].is_null()), "{runs:#?}");
        assert!(numbers(&runs, "write_throughput").iter().all(|&t| t > 0.0));
        if cfg!(target_os = "linux") {
            assert!(numbers(&runs, "cpu_us_per_write").iter().all(|&t| t > 0.0));
        }
    }

    let html = std::fs::read_to_string(out.join("report.html")).expect("report.html written");
    // One scenario (throughput and latency) and one write-path group (the same two).
    assert_eq!(html.matches("<svg").count(), 4, "{html}");
    assert!(html.contains("Write throughput · 3 nodes · memory · 16 B values · 50% reads"));
    assert!(html.contains("Write path throughput · 3 nodes · 16 B values"));
    assert!(
        !html.contains("class=\"failed\""),
        "a point failed: {output}"
    );
    assert!(html.contains("none failed"));
    assert!(
        !html.contains("<script") && !html.contains("<link"),
        "self-contained"
    );
}

#[test]
fn redb_without_a_data_dir_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("raftkv.log");
    let out = dir.path().join("report");
    let out_arg = out.display().to_string();
    let status = raftkv(
        &[
            "bench",
            "--sweep",
            "--sweep-storage",
            "redb",
            "--sweep-out",
            &out_arg,
        ],
        &log,
    )
    .wait(&log);
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!status.success());
    assert!(output.contains("--data-dir"), "{output}");
    assert!(!out.exists(), "no report for a sweep that never ran");
}
