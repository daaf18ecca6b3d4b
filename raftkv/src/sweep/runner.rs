//! Runs a sweep's plan one task at a time, each on fresh clusters, with a progress bar on
//! stderr. A task that errors, panics, hangs or fails its checks is recorded as failed and the
//! sweep goes on.

use std::future::Future;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::grid::{BaselineSpec, Grid, PointSpec, Task};
use super::model::{BaselinePoint, Point, SweepReport, WritePath};
use crate::cli::{Options, StorageChoice};
use crate::demo::{self, Events};
use crate::write_path;

/// Time a run may take beyond its measured phase (cluster start, election, the end checks)
/// before it counts as hung.
const GRACE: Duration = Duration::from_secs(120);

/// The bar's layout: elapsed, bar, ETA, then which point runs.
const TEMPLATE: &str = "{elapsed_precise} [{bar:24}] {percent:>3}% ETA {eta:>4} {wide_msg}";

/// Runs every task of `grid`, appending results to `report` and calling `save` after each;
/// `started` is when the sweep began (its wall time includes the disk probe).
pub async fn run(
    base: &Options,
    grid: &Grid,
    started: Instant,
    report: &mut SweepReport,
    mut save: impl FnMut(&SweepReport) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let plan = grid.plan();
    let bar = progress_bar(plan.iter().map(Task::weight).sum());
    for (k, task) in plan.iter().enumerate() {
        let label = format!("{}/{} {}", k + 1, plan.len(), task.label());
        if bar.is_hidden() {
            eprintln!("[sweep] {label}");
        }
        bar.set_message(label.clone());
        match task {
            Task::Point(spec) => {
                let began = Instant::now();
                let mut point = run_point(base, spec).await;
                point.wall_time_s = began.elapsed().as_secs_f64();
                if let Some(error) = &point.error {
                    note(&bar, &format!("[sweep] FAILED {label}: {error}"));
                }
                report.points.push(point);
            }
            Task::Baseline(spec) => {
                for path in WritePath::ALL {
                    let began = Instant::now();
                    let mut entry = run_write_path(base, spec, path).await;
                    entry.wall_time_s = began.elapsed().as_secs_f64();
                    if let Some(error) = &entry.error {
                        note(
                            &bar,
                            &format!("[sweep] FAILED {label} ({}): {error}", path.label()),
                        );
                    }
                    report.baseline.push(entry);
                }
            }
        }
        bar.inc(task.weight());
        report.wall_time_s = started.elapsed().as_secs_f64();
        save(report)?;
    }
    bar.finish_and_clear();
    Ok(())
}

fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(style());
    // A point runs for seconds: tick so the elapsed time and the ETA keep moving meanwhile.
    bar.enable_steady_tick(Duration::from_millis(500));
    bar
}

fn style() -> ProgressStyle {
    ProgressStyle::with_template(TEMPLATE)
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// Prints above the bar, or plainly when there is no terminal to draw one on.
fn note(bar: &ProgressBar, line: &str) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

/// The options of one point: the base options with the point's axes.
pub fn point_options(base: &Options, spec: &PointSpec) -> Options {
    let mut options = base.clone();
    options.nodes = spec.scenario.nodes;
    options.clients = spec.clients;
    options.value_size = spec.scenario.value_size;
    options.read_ratio = spec.scenario.read_ratio;
    options.data_dir = match spec.scenario.storage {
        StorageChoice::Memory => None,
        StorageChoice::Redb => base.data_dir.clone(),
    };
    options.baseline = false;
    options.crashes = 0;
    options
}

async fn run_point(base: &Options, spec: &PointSpec) -> Point {
    let options = point_options(base, spec);
    let backend = spec.backend;
    let limit = options.duration + GRACE;
    let outcome = guarded(limit, async move {
        demo::run(backend, &options, Events::None).await
    })
    .await;
    match outcome {
        Ok(report) => Point::measured(spec, &report),
        Err(error) => Point::failed(spec, error),
    }
}

async fn run_write_path(base: &Options, spec: &BaselineSpec, path: WritePath) -> BaselinePoint {
    let mut options = base.clone();
    options.nodes = spec.group.nodes;
    options.value_size = spec.group.value_size;
    options.data_dir = None;
    let (backend, clients) = (spec.backend, spec.clients);
    let limit = options.duration + GRACE;
    let run = guarded(limit, async move {
        write_path::side_writes(backend, path.side(), &options, clients).await
    })
    .await;
    BaselinePoint::new(spec, path, run)
}

/// Runs `work` as its own task, so a panic in it becomes this point's error rather than the
/// end of the sweep, and gives up on it after `limit`.
async fn guarded<T: Send + 'static>(
    limit: Duration,
    work: impl Future<Output = Result<T, String>> + Send + 'static,
) -> Result<T, String> {
    let mut handle = tokio::spawn(work);
    match tokio::time::timeout(limit, &mut handle).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) if join.is_panic() => {
            let panic = join.into_panic();
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into());
            Err(format!("panicked: {message}"))
        }
        Ok(Err(join)) => Err(format!("task ended: {join}")),
        Err(_) => {
            handle.abort();
            Err(format!("did not finish within {limit:?}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_template_parses() {
        assert!(ProgressStyle::with_template(TEMPLATE).is_ok());
    }

    #[tokio::test]
    async fn a_panic_or_a_hang_becomes_the_points_error() {
        let panicked = guarded::<()>(Duration::from_secs(5), async { panic!("boom") }).await;
        assert_eq!(panicked.unwrap_err(), "panicked: boom");
        let hung = guarded::<()>(Duration::from_millis(20), std::future::pending()).await;
        assert!(hung.unwrap_err().contains("did not finish"));
        let fine = guarded(Duration::from_secs(5), async { Ok::<_, String>(7) }).await;
        assert_eq!(fine, Ok(7));
    }
}
