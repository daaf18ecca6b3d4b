//! The summary table at the top of the report: per backend and log store, the figures a
//! reader choosing a backend looks at first, each a median over the scenarios with its range.

use std::fmt::Write as _;

use super::chart::{format_count, format_micros};
use super::grid::{clients_label, percent_label, size_label};
use super::html::escape;
use super::model::{BaselinePoint, Point, SweepReport, WritePath};
use crate::cluster::Backend;
use crate::stats::{median, range};

/// The median and the range, or a dash.
fn spread(values: Vec<f64>, format: impl Fn(f64) -> String) -> String {
    let (lo, hi) = range(values.iter().copied());
    match median(values) {
        None => "–".into(),
        Some(m) if lo == hi => format(m),
        Some(m) => format!("{} ({} to {})", format(m), format(lo), format(hi)),
    }
}

/// Appends the summary section.
pub fn render(out: &mut String, report: &SweepReport) {
    let grid = &report.grid;
    let (Some(&fewest), Some(&most)) = (grid.clients.first(), grid.clients.last()) else {
        return;
    };
    out.push_str("<h2 id=\"summary\">Summary</h2>\n");
    out.push_str(
        "<p class=\"note\">Per backend and log store, over every scenario of the grid. A \
         median is over the scenarios (cluster size × value size × read ratio); the range \
         follows in parentheses.</p>\n",
    );
    let columns: Vec<(Backend, &str)> = grid
        .storages
        .iter()
        .flat_map(|s| grid.backends.iter().map(move |&b| (b, s.name())))
        .collect();
    let of = |backend: Backend, storage: &str| -> Vec<&Point> {
        report
            .points
            .iter()
            .filter(|p| p.backend == backend.name() && p.storage == storage)
            .collect()
    };
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |name: String, cell: &dyn Fn(Backend, &str, &[&Point]) -> String| {
        let cells = columns
            .iter()
            .map(|&(b, s)| cell(b, s, &of(b, s)))
            .collect();
        rows.push((name, cells));
    };
    row("points".into(), &|_, _, points| {
        let failed = points.iter().filter(|p| !p.ok()).count();
        if failed == 0 {
            format!("{} ok", points.len())
        } else {
            format!(
                "{} ok, <span class=\"bad\">{failed} failed</span>",
                points.len() - failed
            )
        }
    });
    row("best write throughput".into(), &|_, _, points| {
        points
            .iter()
            .filter(|p| p.ok())
            .filter_map(|p| p.write_throughput.map(|t| (t, p)))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map_or("–".into(), |(t, p)| {
                format!(
                    "{} writes/s<br><span class=\"note\">{} nodes, {}, {} reads, {}</span>",
                    format_count(t),
                    p.nodes,
                    escape(&size_label(p.value_size)),
                    percent_label(p.read_ratio),
                    clients_label(p.clients)
                )
            })
    });
    let at = |clients: usize, metric: fn(&Point) -> Option<f64>| {
        move |points: &[&Point]| -> Vec<f64> {
            points
                .iter()
                .filter(|p| p.ok() && p.clients == clients)
                .filter_map(|p| metric(p))
                .collect()
        }
    };
    for clients in [fewest, most] {
        let values = at(clients, |p| p.write_throughput);
        row(
            format!("write throughput at {}", clients_label(clients)),
            &|_, _, points| spread(values(points), |v| format!("{}/s", format_count(v))),
        );
    }
    for clients in [fewest, most] {
        let values = at(clients, |p| p.commit_p99_us);
        row(
            format!("p99 commit at {}", clients_label(clients)),
            &|_, _, points| spread(values(points), format_micros),
        );
    }
    let lease = at(fewest, |p| p.lease_read_p99_us);
    row(
        format!("p99 lease read at {}", clients_label(fewest)),
        &|_, _, points| spread(lease(points), format_micros),
    );
    let linearizable = at(fewest, |p| p.linearizable_read_p99_us);
    row(
        format!("p99 linearizable read at {}", clients_label(fewest)),
        &|_, _, points| spread(linearizable(points), format_micros),
    );
    if grid.storages.iter().any(|s| s.name() == "redb") {
        row("fsyncs per write".into(), &|_, _, points| {
            spread(
                points
                    .iter()
                    .filter(|p| p.ok())
                    .filter_map(|p| p.fsyncs_per_write)
                    .collect(),
                |v| format!("{v:.2}"),
            )
        });
    }
    if grid.backends.len() == 2 {
        row(
            "higher write throughput than the other backend".into(),
            &|backend, storage, _| wins(report, backend, storage, |p| p.write_throughput, true),
        );
        row(
            "lower p99 commit than the other backend".into(),
            &|backend, storage, _| wins(report, backend, storage, |p| p.commit_p99_us, false),
        );
    }
    if grid.baseline {
        for (path, name) in [
            (
                WritePath::DirectEncoded,
                "direct encoded ÷ adapter (write path)",
            ),
            (
                WritePath::DirectStructs,
                "direct structs ÷ adapter (write path)",
            ),
        ] {
            row(name.into(), &|backend, storage, _| {
                if storage != "memory" {
                    return "–".into();
                }
                spread(overhead_ratios(report, backend, path), |v| {
                    format!("{v:.2}x")
                })
            });
        }
    }
    out.push_str("<table>\n<thead><tr><th></th>");
    for (backend, storage) in &columns {
        let _ = write!(out, "<th>{} · {}</th>", backend.name(), escape(storage));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (name, cells) in rows {
        let _ = write!(out, "<tr><td>{}</td>", escape(&name));
        for cell in cells {
            // Cells are built from escaped parts above; some carry markup of their own.
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

/// In how many (scenario, client count) pairs that both backends ran `backend` did better.
fn wins(
    report: &SweepReport,
    backend: Backend,
    storage: &str,
    metric: fn(&Point) -> Option<f64>,
    higher_is_better: bool,
) -> String {
    let mut won = 0;
    let mut compared = 0;
    for mine in report
        .points
        .iter()
        .filter(|p| p.ok() && p.backend == backend.name() && p.storage == storage)
    {
        let theirs = report.points.iter().find(|p| {
            p.ok()
                && p.backend != mine.backend
                && p.storage == mine.storage
                && p.nodes == mine.nodes
                && p.value_size == mine.value_size
                && p.read_ratio == mine.read_ratio
                && p.clients == mine.clients
        });
        if let (Some(a), Some(b)) = (metric(mine), theirs.and_then(metric)) {
            compared += 1;
            if (a > b) == higher_is_better && a != b {
                won += 1;
            }
        }
    }
    if compared == 0 {
        "–".into()
    } else {
        format!("{won} of {compared} points")
    }
}

/// Direct ÷ adapter throughput of every write-path point of `backend` where both ran.
fn overhead_ratios(report: &SweepReport, backend: Backend, direct: WritePath) -> Vec<f64> {
    let find = |b: &BaselinePoint, path: WritePath| {
        report.baseline.iter().find(|o| {
            o.ok()
                && o.backend == b.backend
                && o.nodes == b.nodes
                && o.value_size == b.value_size
                && o.clients == b.clients
                && o.path == path
        })
    };
    report
        .baseline
        .iter()
        .filter(|b| b.ok() && b.backend == backend.name() && b.path == WritePath::Adapter)
        .filter_map(|adapter| {
            let direct = find(adapter, direct)?;
            Some(direct.write_throughput? / adapter.write_throughput?.max(1e-9))
        })
        .collect()
}
