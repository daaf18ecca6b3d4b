//! `raftkv bench --sweep`: the backend-choice report. Runs the workload over a grid (clients,
//! value sizes, read ratios, cluster sizes, log stores, backends), with `--baseline` also the
//! bare write path against each library driven directly, and writes `report.json` and a
//! self-contained `report.html` with the charts.
//!
//! `grid` reads the axes and orders the points, `runner` runs them, `model` is the JSON
//! document, `chart` draws one SVG line chart, `figures` picks the charts, `summary` computes
//! the table at the top and `html` lays out the page.

mod chart;
mod figures;
mod grid;
mod html;
mod model;
mod runner;
mod summary;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;

use crate::cli::{StorageChoice, WorkloadArgs};
use crate::disk::{self, FsyncFloor};
use grid::Grid;
use model::{FORMAT, Machine, Settings, SweepReport, Units};

/// Runs the sweep `args` describe and writes its report to `--sweep-out`. Fails (after
/// writing the report) if any point failed.
pub async fn run(args: &WorkloadArgs) -> anyhow::Result<()> {
    let grid = Grid::from_args(args).map_err(anyhow::Error::msg)?;
    let base = args.options();
    let out = &args.sweep_out;
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create the report directory {}", out.display()))?;
    let started = Instant::now();
    let redb_dir = base
        .data_dir
        .as_deref()
        .filter(|_| grid.storages.contains(&StorageChoice::Redb));
    let floor_before = redb_dir.map(probe).transpose()?;

    let plan = grid.plan();
    let points = plan
        .iter()
        .filter(|t| matches!(t, grid::Task::Point(_)))
        .count();
    let measured: u64 = plan.iter().map(grid::Task::weight).sum();
    eprintln!(
        "[sweep] {points} points{}, {:?} measured each: at least {} of measuring; report in {}",
        if grid.baseline {
            format!(" and {} write-path runs", (plan.len() - points) * 3)
        } else {
            String::new()
        },
        base.duration,
        minutes(base.duration.mul_f64(measured as f64)),
        out.display()
    );
    let mut report = SweepReport {
        format: FORMAT,
        complete: false,
        command: command_line(std::env::args()),
        started_unix_s: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        wall_time_s: 0.0,
        machine: Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
            fsync_floor: floor_before,
        },
        settings: Settings {
            duration_s: base.duration.as_secs_f64(),
            rtt_ms: base.rtt.as_secs_f64() * 1e3,
            conflict_rate: base.conflict_rate,
            seed: base.seed,
        },
        units: Units::default(),
        grid: grid.clone(),
        points: Vec::new(),
        baseline: Vec::new(),
    };
    save(out, &report)?;
    runner::run(&base, &grid, started, &mut report, |r| save(out, r)).await?;

    // The disk's speed drifts with whatever else the machine does; the faster probe is the
    // floor the run is compared with (the stricter ratio), as in a single bench run.
    if let Some(dir) = redb_dir {
        let after = probe(dir)?;
        report.machine.fsync_floor = Some(match report.machine.fsync_floor {
            Some(before) if before.per_sec >= after.per_sec => before,
            _ => after,
        });
    }
    report.complete = true;
    report.wall_time_s = started.elapsed().as_secs_f64();
    save(out, &report)?;
    let failures = report.failures();
    eprintln!(
        "[sweep] wrote {} and {} in {}: {} points, {} write-path runs, {failures} failed",
        out.join("report.html").display(),
        out.join("report.json").display(),
        minutes(started.elapsed()),
        report.points.len(),
        report.baseline.len()
    );
    if failures > 0 {
        anyhow::bail!("{failures} point(s) failed; the report lists them under \"Failed points\"");
    }
    Ok(())
}

fn probe(dir: &Path) -> anyhow::Result<FsyncFloor> {
    let floor = disk::fsync_floor(dir, Duration::from_secs(1))
        .with_context(|| format!("measuring the disk in {}", dir.display()))?;
    eprintln!(
        "[disk] {}: {:.0} synced 4 KiB writes/s ({:.0} µs each)",
        dir.display(),
        floor.per_sec,
        floor.mean_us
    );
    Ok(floor)
}

/// Writes both files, each through a temporary file and a rename, so a reader (or an
/// interrupted sweep) never leaves half a report.
fn save(dir: &Path, report: &SweepReport) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(report).context("encoding report.json")?;
    replace(dir, "report.json", json.as_bytes())?;
    replace(dir, "report.html", html::render(report).as_bytes())
}

fn replace(dir: &Path, name: &str, contents: &[u8]) -> anyhow::Result<()> {
    let path = dir.join(name);
    let temporary = dir.join(format!(".{name}.tmp"));
    std::fs::write(&temporary, contents)
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, &path).with_context(|| format!("writing {}", path.display()))
}

/// `12 min` or `45 s`.
fn minutes(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 120.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{s:.0} s")
    }
}

/// The command line as a shell would take it back: arguments with spaces or shell
/// metacharacters in single quotes.
fn command_line(args: impl IntoIterator<Item = String>) -> String {
    let quote = |arg: String| {
        let plain = !arg.is_empty()
            && arg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./,=:@%+".contains(c));
        if plain {
            arg
        } else {
            format!("'{}'", arg.replace('\'', r"'\''"))
        }
    };
    let mut args = args.into_iter();
    // The program as invoked may be a long target path; the name says the same.
    let program = args.next().map(|p| {
        Path::new(&p)
            .file_name()
            .map_or(p.clone(), |n| n.to_string_lossy().into_owned())
    });
    program
        .into_iter()
        .chain(args.map(quote))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_round_trip_through_a_shell() {
        let line = command_line(
            [
                "/work/target/release/raftkv",
                "bench",
                "--sweep",
                "--sweep-out",
                "my report",
                "--note",
                "it's",
            ]
            .map(String::from),
        );
        assert_eq!(
            line,
            r"raftkv bench --sweep --sweep-out 'my report' --note 'it'\''s'"
        );
    }

    #[test]
    fn files_are_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        replace(dir.path(), "report.json", b"one").unwrap();
        replace(dir.path(), "report.json", b"two").unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("report.json")).unwrap(),
            b"two"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["report.json"], "no temporary file left");
    }
}
