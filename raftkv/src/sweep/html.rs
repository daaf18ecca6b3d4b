//! The self-contained HTML report: a summary per backend, how to read the charts, one pair of
//! charts per scenario, the write-path charts, the failed points and every number. No script,
//! stylesheet or font is loaded from anywhere: the file is the whole report.

use std::fmt::Write as _;

use super::chart::format_micros;
use super::figures::{scenario_charts, write_path_charts};
use super::grid::{Scenario, percent_label, size_label};
use super::model::SweepReport;
use super::summary;

/// Makes `text` safe inside an element or a quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body { font: 15px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em auto; max-width: 1440px; padding: 0 1.5em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
h3 { margin: 1.4em 0 0.3em; font-size: 1.05em; }
code { background: #f3f3f3; padding: 0.1em 0.3em; border-radius: 3px; word-break: break-all; }
table { border-collapse: collapse; margin: 0.8em 0; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.6em; text-align: right; vertical-align: top; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f5f5f5; }
tr.failed td { background: #fde8e8; }
.pair { display: flex; flex-wrap: wrap; gap: 0.5em; }
.chart { max-width: 100%; height: auto; border: 1px solid #eee; }
.chart .title { font-size: 14px; font-weight: 600; }
.chart .tick, .chart .legend { font-size: 12px; fill: #333; }
.chart .label { font-size: 12px; fill: #555; }
.chart .grid { stroke: #e2e2e2; }
.chart .grid.minor { stroke: #f2f2f2; }
.chart .axis { stroke: #888; }
.note { color: #555; }
.bad { color: #c00000; font-weight: 600; }
";

/// The whole page.
pub fn render(report: &SweepReport) -> String {
    let mut out = String::with_capacity(64 * 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str("<title>raftkv sweep: openraft and raft-rs side by side</title>\n");
    let _ = writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>");
    header(&mut out, report);
    summary::render(&mut out, report);
    guide(&mut out, report);
    out.push_str("<h2 id=\"scenarios\">Full workload, per scenario</h2>\n");
    for (scenario, charts) in scenario_charts(report) {
        let _ = writeln!(
            out,
            "<h3>{}</h3>\n<div class=\"pair\">",
            escape(&scenario.label())
        );
        for chart in charts {
            out.push_str(&chart.svg());
            out.push('\n');
        }
        out.push_str("</div>\n");
    }
    let groups = write_path_charts(report);
    if !groups.is_empty() {
        out.push_str("<h2 id=\"write-path\">Write path: the adapters against the libraries</h2>\n");
        for (group, charts) in groups {
            let _ = writeln!(
                out,
                "<h3>{} (memory)</h3>\n<div class=\"pair\">",
                escape(&group.label())
            );
            for chart in charts {
                out.push_str(&chart.svg());
                out.push('\n');
            }
            out.push_str("</div>\n");
        }
    }
    failures(&mut out, report);
    all_points(&mut out, report);
    out.push_str("</body>\n</html>\n");
    out
}

fn header(out: &mut String, report: &SweepReport) {
    out.push_str("<h1>raftkv sweep: openraft and raft-rs side by side</h1>\n");
    let points = report.points.len();
    let planned =
        report.grid.scenarios().len() * report.grid.clients.len() * report.grid.backends.len();
    if !report.complete {
        let _ = writeln!(
            out,
            "<p class=\"bad\">Incomplete: {points} of {planned} points so far (the sweep is running or was interrupted).</p>"
        );
    }
    let m = &report.machine;
    let s = &report.settings;
    out.push_str("<table>\n");
    let mut row = |name: &str, value: String| {
        let _ = writeln!(
            out,
            "<tr><th>{}</th><td style=\"text-align:left\">{value}</td></tr>",
            escape(name)
        );
    };
    row(
        "command",
        format!("<code>{}</code>", escape(&report.command)),
    );
    row("started", escape(&utc(report.started_unix_s)));
    row(
        "machine",
        escape(&format!("{} cores, {} {}", m.cores, m.os, m.arch)),
    );
    if let Some(floor) = m.fsync_floor {
        row(
            "disk floor (--data-dir)",
            escape(&format!(
                "{:.0} synced 4 KiB writes/s ({:.0} µs each)",
                floor.per_sec, floor.mean_us
            )),
        );
    }
    row(
        "per point",
        escape(&format!(
            "{:.1} s measured; simulated round trip {} ms; {} of conditional writes built to conflict; seed {}",
            s.duration_s,
            s.rtt_ms,
            percent_label(s.conflict_rate),
            s.seed
        )),
    );
    row(
        "points",
        format!(
            "{points} workload points and {} write-path runs in {}; {}",
            report.baseline.len(),
            escape(&duration_label(report.wall_time_s)),
            match report.failures() {
                0 => "none failed".to_string(),
                n => format!("<span class=\"bad\">{n} failed</span>"),
            },
        ),
    );
    row(
        "data",
        "<a href=\"report.json\">report.json</a> (every number on this page)".into(),
    );
    out.push_str("</table>\n");
}

/// `42 s`, `12 min`, `1 h 05 min`.
fn duration_label(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    if s < 120 {
        format!("{s} s")
    } else if s < 3600 {
        format!("{} min", (s + 30) / 60)
    } else {
        format!("{} h {:02} min", s / 3600, (s % 3600 + 30) / 60)
    }
}

/// `2025-03-01 14:05 UTC` from Unix seconds (days to civil date: Howard Hinnant's algorithm).
pub fn utc(unix_s: u64) -> String {
    let days = (unix_s / 86_400) as i64;
    let secs = unix_s % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

fn guide(out: &mut String, report: &SweepReport) {
    let s = &report.settings;
    let _ = write!(
        out,
        "<h2 id=\"guide\">How to read this report</h2>
<p>Every point is a fresh in-process cluster on a simulated network (round trip {rtt} ms) with
closed-loop clients running for {duration:.1} s: each client waits for its answer before it sends
again, so more clients means more requests in flight. A scenario's read ratio is the share of
operations that are reads (80% of them through the lease, 20% linearizable); the rest are writes
(half puts, half conditional writes, {conflict} of which conflict by design). After the run come the checks: every
acknowledged write is readable, the replicas converged, and the lease stayed on its fast path
while conditional writes conflicted. A point whose run failed or whose checks failed is drawn as a
red <span class=\"bad\">×</span> on the x axis and listed under <a href=\"#failed\">failed points</a>.</p>
<p><b>Throughput charts</b> show successful writes per second against clients (log-2 x axis,
linear y axis from zero), one line per backend. Compare the backends inside a chart: a read-heavy
scenario does fewer writes by design, so heights across read ratios do not compare. Where a line
flattens, the cluster is saturated and more clients only add queueing.</p>
<p><b>Latency charts</b> show the 99th percentile of write commit (request to applied on the
leader; solid) and, with reads in the mix, of lease reads (dashed), on a log y axis. The client
count where p99 starts to climb steeply while throughput stays flat is where the backend runs out
of capacity on this machine ({cores} cores shared by every node and client: absolute numbers are
for comparing the backends here, not for capacity planning).</p>",
        rtt = s.rtt_ms,
        duration = s.duration_s,
        conflict = percent_label(s.conflict_rate),
        cores = report.machine.cores,
    );
    if report.grid.baseline {
        out.push_str(
            "<p><b>Write-path charts</b> take the lease layer, reads and conditional writes out \
             and measure bare puts on memory three ways, in each backend's color: <i>adapter</i> \
             (solid) proposes through our <code>Engine</code> adapter; <i>direct, structs</i> \
             (dotted) drives the library itself and hands messages between nodes as its own \
             structs, an upper bound no network can reach; <i>direct, encoded</i> (dashed) \
             drives the library itself and encodes and decodes every message (raft-rs protobuf, \
             openraft postcard) and keeps its log as bytes, which is what a deployment must do \
             and so the fair yardstick; on raft-rs it also applies the adapter's own key-value \
             state machine, so the application costs the same on both lines. The gap between a \
             backend's solid and dashed lines is what the adapter costs; the gap between its \
             dashed and dotted lines is the price of serialization and the application. The \
             summary's ratios divide direct by adapter throughput: 1.10x means the adapter \
             costs 10%.</p>\n",
        );
    }
}

fn failures(out: &mut String, report: &SweepReport) {
    out.push_str("<h2 id=\"failed\">Failed points</h2>\n");
    if report.failures() == 0 {
        out.push_str("<p>None: every run finished and every check held.</p>\n");
        return;
    }
    out.push_str("<table>\n<thead><tr><th>backend</th><th>what</th><th>clients</th><th>error</th></tr></thead>\n<tbody>\n");
    for p in report.points.iter().filter(|p| !p.ok()) {
        let what = Scenario {
            storage: if p.storage == "redb" {
                crate::cli::StorageChoice::Redb
            } else {
                crate::cli::StorageChoice::Memory
            },
            nodes: p.nodes,
            value_size: p.value_size,
            read_ratio: p.read_ratio,
        }
        .label();
        failed_row(out, &p.backend, &what, p.clients, p.error.as_deref());
    }
    for b in report.baseline.iter().filter(|b| !b.ok()) {
        let what = format!(
            "write path, {} · {} · {} values",
            b.path.label(),
            b.nodes,
            size_label(b.value_size)
        );
        failed_row(out, &b.backend, &what, b.clients, b.error.as_deref());
    }
    out.push_str("</tbody>\n</table>\n");
}

fn failed_row(out: &mut String, backend: &str, what: &str, clients: usize, error: Option<&str>) {
    let _ = writeln!(
        out,
        "<tr class=\"failed\"><td>{}</td><td style=\"text-align:left\">{}</td><td>{clients}</td><td style=\"text-align:left\">{}</td></tr>",
        escape(backend),
        escape(what),
        escape(error.unwrap_or("checks failed"))
    );
}

fn all_points(out: &mut String, report: &SweepReport) {
    let us = |v: Option<f64>| v.map_or("–".to_string(), format_micros);
    out.push_str("<h2 id=\"numbers\">Every number</h2>\n<details>\n<summary>All workload points</summary>\n<table>\n<thead><tr><th>backend</th><th>storage</th><th>nodes</th><th>value</th><th>reads</th><th>clients</th><th>writes/s</th><th>commit p50</th><th>commit p99</th><th>lease read p50</th><th>lease read p99</th><th>linearizable p99</th><th>fsyncs/write</th><th>checks</th><th>wall</th></tr></thead>\n<tbody>\n");
    for p in &report.points {
        let _ = writeln!(
            out,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1} s</td></tr>",
            if p.ok() { "" } else { " class=\"failed\"" },
            escape(&p.backend),
            escape(&p.storage),
            p.nodes,
            escape(&size_label(p.value_size)),
            percent_label(p.read_ratio),
            p.clients,
            p.write_throughput.map_or("–".into(), |t| format!("{t:.0}")),
            escape(&us(p.commit_p50_us)),
            escape(&us(p.commit_p99_us)),
            escape(&us(p.lease_read_p50_us)),
            escape(&us(p.lease_read_p99_us)),
            escape(&us(p.linearizable_read_p99_us)),
            p.fsyncs_per_write.map_or("–".into(), |f| format!("{f:.2}")),
            if p.ok() { "passed" } else { "FAILED" },
            p.wall_time_s
        );
    }
    out.push_str("</tbody>\n</table>\n</details>\n");
    if report.baseline.is_empty() {
        return;
    }
    out.push_str("<details>\n<summary>All write-path runs</summary>\n<table>\n<thead><tr><th>backend</th><th>path</th><th>nodes</th><th>value</th><th>clients</th><th>writes/s</th><th>commit p50</th><th>commit p99</th><th>failed writes</th><th>CPU per write</th><th>wall</th></tr></thead>\n<tbody>\n");
    for b in &report.baseline {
        let _ = writeln!(
            out,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1} s</td></tr>",
            if b.ok() { "" } else { " class=\"failed\"" },
            escape(&b.backend),
            escape(b.path.label()),
            b.nodes,
            escape(&size_label(b.value_size)),
            b.clients,
            b.write_throughput.map_or("–".into(), |t| format!("{t:.0}")),
            escape(&us(b.commit_p50_us)),
            escape(&us(b.commit_p99_us)),
            b.failed_writes,
            escape(&us(b.cpu_us_per_write)),
            b.wall_time_s
        );
    }
    out.push_str("</tbody>\n</table>\n</details>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::StorageChoice;
    use crate::cluster::Backend;
    use crate::report::Check;
    use crate::sweep::grid::{BaselineSpec, Grid, PointSpec};
    use crate::sweep::model::{BaselinePoint, FORMAT, Machine, Point, Settings, Units, WritePath};
    use crate::workload::WriteRun;

    fn grid(baseline: bool) -> Grid {
        Grid {
            backends: vec![Backend::Openraft, Backend::RaftRs],
            storages: vec![StorageChoice::Memory],
            nodes: vec![3, 5],
            value_sizes: vec![16],
            read_ratios: vec![0.0, 0.5],
            clients: vec![1, 4, 16],
            baseline,
        }
    }

    fn point(spec: &PointSpec, throughput: f64) -> Point {
        let mut p = Point::failed(spec, String::new());
        p.error = None;
        p.checks_passed = true;
        p.checks = vec![Check {
            name: "replicas converged".into(),
            passed: true,
            detail: String::new(),
        }];
        p.write_throughput = Some(throughput);
        p.commit_p99_us = Some(1_000.0 + throughput);
        p.lease_read_p99_us = (spec.scenario.read_ratio > 0.0).then_some(20.0);
        p.wall_time_s = 2.54;
        p
    }

    fn report(grid: Grid) -> SweepReport {
        let mut points = Vec::new();
        let mut baseline = Vec::new();
        for task in grid.plan() {
            match task {
                super::super::grid::Task::Point(spec) => {
                    let rate = spec.clients as f64 * 100.0
                        + if spec.backend == Backend::Openraft {
                            10.0
                        } else {
                            0.0
                        };
                    points.push(point(&spec, rate));
                }
                super::super::grid::Task::Baseline(spec @ BaselineSpec { .. }) => {
                    for path in WritePath::ALL {
                        let run = WriteRun {
                            ok: 100,
                            elapsed: std::time::Duration::from_secs(1),
                            cpu: Some(std::time::Duration::from_micros(1_300)),
                            ..WriteRun::default()
                        };
                        baseline.push(BaselinePoint::new(&spec, path, Ok(run)));
                    }
                }
            }
        }
        SweepReport {
            format: FORMAT,
            complete: true,
            command: "raftkv bench --sweep --note '<b>'".into(),
            started_unix_s: 0,
            wall_time_s: 12.0,
            machine: Machine {
                cores: 2,
                os: "linux",
                arch: "x86_64",
                fsync_floor: None,
            },
            settings: Settings {
                duration_s: 1.0,
                rtt_ms: 0.0,
                conflict_rate: 0.5,
                seed: 1,
            },
            units: Units::default(),
            grid,
            points,
            baseline,
        }
    }

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("plain µs"), "plain µs");
    }

    #[test]
    fn one_pair_of_charts_per_scenario_and_per_write_group() {
        let html = render(&report(grid(false)));
        // 2 node counts × 1 value size × 2 read ratios, two charts each.
        assert_eq!(
            html.matches("<svg").count(),
            2 * 2 * 2,
            "no write-path charts"
        );
        let html = render(&report(grid(true)));
        assert_eq!(html.matches("<svg").count(), 2 * 2 * 2 + 2 * 2);
        assert!(html.contains("Write path throughput · 3 nodes · 16 B values"));
        assert!(html.contains("direct, encoded"));
        assert!(!html.contains("class=\"failed\""), "nothing failed");
        assert!(html.contains("none failed"));
        // Every point's wall time, in the table of every number.
        assert!(html.contains("<td>passed</td><td>2.5 s</td>"), "{html}");
        // Every write-path run's CPU per write, beside its failed writes.
        assert!(html.contains("<td>0</td><td>13 µs</td>"), "{html}");
    }

    #[test]
    fn the_page_is_self_contained_and_escapes_the_command() {
        let html = render(&report(grid(true)));
        assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
        assert!(!html.contains("<script") && !html.contains("<link"));
        assert!(!html.contains("src=\"http") && !html.contains("@import"));
        assert!(
            html.contains("--note &#39;&lt;b&gt;&#39;"),
            "the command is escaped"
        );
        assert!(!html.contains("'<b>'"));
    }

    #[test]
    fn the_summary_compares_the_backends() {
        let html = render(&report(grid(true)));
        // openraft is 10 writes/s ahead at every point: 4 scenarios × 3 client counts.
        assert!(html.contains("12 of 12 points"), "{html}");
        assert!(html.contains("0 of 12 points"));
        assert!(
            html.contains("1.6k writes/s"),
            "best throughput of openraft: {html}"
        );
        assert!(
            html.contains("1.00x"),
            "equal write paths give a ratio of one"
        );
    }

    #[test]
    fn failed_points_are_marked_and_listed() {
        let mut r = report(grid(false));
        let victim = &mut r.points[3];
        victim.error = Some("no leader within <10s>".into());
        let html = render(&r);
        assert_eq!(
            html.matches("<tr class=\"failed\">").count(),
            2,
            "failed table and all-points table"
        );
        assert!(html.contains("no leader within &lt;10s&gt;"));
        assert!(html.contains("1 failed"));
        let charts = scenario_charts(&r);
        let marked: usize = charts
            .iter()
            .flat_map(|(_, pair)| pair.iter())
            .flat_map(|c| c.series.iter())
            .map(|s| s.failed.len())
            .sum();
        assert_eq!(
            marked, 2,
            "the throughput and the commit line mark it, not the lease line"
        );
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_735_689_600 + 3_600 + 120), "2025-01-01 01:02 UTC");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration_label(42.0), "42 s");
        assert_eq!(duration_label(725.0), "12 min");
        assert_eq!(duration_label(3_900.0), "1 h 05 min");
    }
}
