//! The report's charts, built from the sweep's results: a throughput and a latency chart per
//! scenario, and the same pair per write-path group.

use super::chart::{Chart, Dash, Series, Unit, YScale};
use super::grid::{Scenario, WriteGroup};
use super::model::{BaselinePoint, Point, SweepReport, WritePath};
use crate::cluster::Backend;

/// Each backend keeps its color in every chart.
fn color(backend: Backend) -> &'static str {
    match backend {
        Backend::Openraft => "#1f5fa8",
        Backend::RaftRs => "#e07000",
    }
}

/// The throughput chart and the latency chart of every scenario, in grid order.
pub fn scenario_charts(report: &SweepReport) -> Vec<(Scenario, [Chart; 2])> {
    let grid = &report.grid;
    let x_ticks: Vec<f64> = grid.clients.iter().map(|&c| c as f64).collect();
    grid.scenarios()
        .into_iter()
        .map(|scenario| {
            let line = |backend: Backend,
                        label: String,
                        dash: Dash,
                        metric: fn(&Point) -> Option<f64>,
                        mark_failures: bool| {
                let mut series = Series {
                    label,
                    color: color(backend),
                    dash,
                    points: Vec::new(),
                    failed: Vec::new(),
                };
                for &clients in &grid.clients {
                    let point = report
                        .points
                        .iter()
                        .find(|p| p.is(backend, &scenario) && p.clients == clients);
                    match point {
                        Some(p) if p.ok() => series.points.push((clients as f64, metric(p))),
                        Some(_) => {
                            series.points.push((clients as f64, None));
                            if mark_failures {
                                series.failed.push(clients as f64);
                            }
                        }
                        None => series.points.push((clients as f64, None)),
                    }
                }
                series
            };
            let throughput = Chart {
                title: format!("Write throughput · {}", scenario.label()),
                y_label: "writes per second".into(),
                y_scale: YScale::Linear,
                unit: Unit::PerSecond,
                x_ticks: x_ticks.clone(),
                series: grid
                    .backends
                    .iter()
                    .map(|&b| {
                        line(
                            b,
                            b.name().into(),
                            Dash::Solid,
                            |p| p.write_throughput,
                            true,
                        )
                    })
                    .collect(),
            };
            let mut latency_series = Vec::new();
            for &b in &grid.backends {
                latency_series.push(line(
                    b,
                    format!("{} commit", b.name()),
                    Dash::Solid,
                    |p| p.commit_p99_us,
                    true,
                ));
                if scenario.read_ratio > 0.0 {
                    latency_series.push(line(
                        b,
                        format!("{} lease read", b.name()),
                        Dash::Dashed,
                        |p| p.lease_read_p99_us,
                        false,
                    ));
                }
            }
            let latency = Chart {
                title: format!("p99 latency · {}", scenario.label()),
                y_label: "p99 latency".into(),
                y_scale: YScale::Log10,
                unit: Unit::Micros,
                x_ticks: x_ticks.clone(),
                series: latency_series,
            };
            (scenario, [throughput, latency])
        })
        .collect()
}

/// The throughput chart and the latency chart of every write-path group (none without
/// `--baseline`).
pub fn write_path_charts(report: &SweepReport) -> Vec<(WriteGroup, [Chart; 2])> {
    let grid = &report.grid;
    let x_ticks: Vec<f64> = grid.clients.iter().map(|&c| c as f64).collect();
    grid.write_groups()
        .into_iter()
        .map(|group| {
            let lines = |metric: fn(&BaselinePoint) -> Option<f64>| {
                let mut out = Vec::new();
                for &backend in &grid.backends {
                    for path in WritePath::ALL {
                        let mut series = Series {
                            label: format!("{} {}", backend.name(), path.label()),
                            color: color(backend),
                            dash: match path {
                                WritePath::Adapter => Dash::Solid,
                                WritePath::DirectStructs => Dash::Dotted,
                                WritePath::DirectEncoded => Dash::Dashed,
                            },
                            points: Vec::new(),
                            failed: Vec::new(),
                        };
                        for &clients in &grid.clients {
                            let x = clients as f64;
                            match report
                                .baseline
                                .iter()
                                .find(|b| b.is(backend, &group, path) && b.clients == clients)
                            {
                                Some(b) if b.ok() => series.points.push((x, metric(b))),
                                Some(_) => {
                                    series.points.push((x, None));
                                    series.failed.push(x);
                                }
                                None => series.points.push((x, None)),
                            }
                        }
                        out.push(series);
                    }
                }
                out
            };
            let throughput = Chart {
                title: format!("Write path throughput · {}", group.label()),
                y_label: "writes per second".into(),
                y_scale: YScale::Linear,
                unit: Unit::PerSecond,
                x_ticks: x_ticks.clone(),
                series: lines(|b| b.write_throughput),
            };
            let latency = Chart {
                title: format!("Write path p99 commit · {}", group.label()),
                y_label: "p99 commit latency".into(),
                y_scale: YScale::Log10,
                unit: Unit::Micros,
                x_ticks: x_ticks.clone(),
                series: lines(|b| b.commit_p99_us),
            };
            (group, [throughput, latency])
        })
        .collect()
}
