//! The disk's own durability floor, measured in the run that uses it: sequential 4 KiB writes,
//! each followed by an fsync, in the data directory.
//!
//! The writes go to space allocated beforehand, as a database's log writes mostly do: a write
//! that grows the file also makes every sync commit the file system's journal, which measures
//! the file system's metadata path rather than the disk (on ext4 here, about 3x slower).

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

const BLOCK: usize = 4096;
/// The probe cycles through this many blocks (4 MiB) allocated before the measurement.
const BLOCKS: u64 = 1024;

/// What one writer that syncs every write gets out of the disk.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FsyncFloor {
    /// Synced 4 KiB writes per second.
    pub per_sec: f64,
    /// Mean time of one write + fsync, in µs.
    pub mean_us: f64,
    /// Writes measured.
    pub samples: u64,
}

/// Measures for about `budget` (at least 20 writes), in a scratch file in `dir` that is removed
/// afterwards.
pub fn fsync_floor(dir: &Path, budget: Duration) -> std::io::Result<FsyncFloor> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("raftkv-fsync-probe");
    let result = measure(&path, budget);
    let _ = std::fs::remove_file(&path);
    result
}

fn measure(path: &Path, budget: Duration) -> std::io::Result<FsyncFloor> {
    let mut file: File = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)?;
    let block = [0xa5u8; BLOCK];
    for _ in 0..BLOCKS {
        file.write_all(&block)?;
    }
    file.sync_all()?;
    let started = Instant::now();
    let mut samples = 0u64;
    while samples < 20 || started.elapsed() < budget {
        let offset = (samples % BLOCKS) * BLOCK as u64;
        file.seek(SeekFrom::Start(offset))?;
        file.write_all(&block)?;
        file.sync_data()?;
        samples += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(FsyncFloor {
        per_sec: samples as f64 / elapsed,
        mean_us: elapsed * 1e6 / samples as f64,
        samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_measures_and_cleans_up() {
        let dir = std::env::temp_dir().join(format!("raftkv-floor-{}", std::process::id()));
        let floor = fsync_floor(&dir, Duration::from_millis(20)).unwrap();
        assert!(floor.samples >= 20);
        assert!(floor.per_sec > 0.0 && floor.mean_us > 0.0);
        assert!(!dir.join("raftkv-fsync-probe").exists());
        let _ = std::fs::remove_dir(&dir);
    }
}
