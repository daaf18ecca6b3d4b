//! The disk's own durability floor, measured in the run that uses it: sequential 4 KiB writes,
//! each followed by an fsync, in the data directory. Beside it, the log store's own floor: what
//! one `RedbLogStore` commit of a single small entry costs there, with one store alone and with
//! one store per node syncing at once, as the nodes of a local cluster share the disk.
//!
//! The writes go to space allocated beforehand, as a database's log writes mostly do: a write
//! that grows the file also makes every sync commit the file system's journal, which measures
//! the file system's metadata path rather than the disk (on ext4 here, about 3x slower).

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use raftengine::{LogEntry, LogStore};
use raftengine_redb::RedbLogStore;
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

/// The mean time of one `RedbLogStore` append of a single 64-byte entry, which is one redb
/// commit and one sync, measured in the data directory.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StoreFloor {
    /// With one store writing, in µs.
    pub alone_us: f64,
    /// With `writers` stores (one file each) writing at once, in µs per commit of each.
    pub shared_us: f64,
    /// Stores in the shared measurement.
    pub writers: usize,
}

/// Measures about `budget` alone, then about `budget` with `writers` stores at once, in scratch
/// files in `dir` that are removed afterwards.
pub fn store_floor(dir: &Path, writers: usize, budget: Duration) -> Result<StoreFloor, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let writers = writers.max(1);
    Ok(StoreFloor {
        alone_us: commit_times(dir, 1, budget)?,
        shared_us: commit_times(dir, writers, budget)?,
        writers,
    })
}

/// The mean commit time over `writers` stores appending one entry at a time for `budget`.
fn commit_times(dir: &Path, writers: usize, budget: Duration) -> Result<f64, String> {
    let runs: Vec<_> = (0..writers)
        .map(|i| {
            let path = dir.join(format!("raftkv-store-probe-{i}.redb"));
            std::thread::spawn(move || {
                let _ = std::fs::remove_file(&path);
                let result = append_loop(&path, budget);
                let _ = std::fs::remove_file(&path);
                result
            })
        })
        .collect();
    let mut total = Duration::ZERO;
    let mut commits = 0u64;
    for run in runs {
        let (elapsed, n) = run
            .join()
            .map_err(|_| "the store probe panicked".to_string())??;
        total += elapsed;
        commits += n;
    }
    Ok(total.as_secs_f64() * 1e6 / commits.max(1) as f64)
}

fn append_loop(path: &Path, budget: Duration) -> Result<(Duration, u64), String> {
    let store = RedbLogStore::open(path).map_err(|e| e.to_string())?;
    let log = store.group(1);
    let payload = Bytes::from(vec![0x5a; 64]);
    let started = Instant::now();
    let mut index = 0;
    while index < 20 || started.elapsed() < budget {
        index += 1;
        log.append(&[LogEntry {
            index,
            term: 1,
            payload: payload.clone(),
        }])
        .map_err(|e| e.to_string())?;
    }
    Ok((started.elapsed(), index))
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
        let store = store_floor(&dir, 2, Duration::from_millis(20)).unwrap();
        assert_eq!(store.writers, 2);
        assert!(store.alone_us > 0.0 && store.shared_us > 0.0);
        assert!(!dir.join("raftkv-store-probe-0.redb").exists());
        assert!(!dir.join("raftkv-store-probe-1.redb").exists());
        let _ = std::fs::remove_dir(&dir);
    }
}
