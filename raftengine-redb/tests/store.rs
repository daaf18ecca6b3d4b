//! RedbLogStore beyond the shared suite: many groups in one file, group commit, damaged files
//! and failing disks.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use raftengine::{ErrorKind, LogEntry, LogStore};
use raftengine_redb::RedbLogStore;

fn entry(index: u64, term: u64, tag: &str) -> LogEntry {
    LogEntry {
        index,
        term,
        payload: Bytes::from(format!(
            "{tag}: entry {index} of term {term} ----------------"
        )),
    }
}

fn assert_storage_error_names(err: &raftengine::Error, path: &Path) {
    assert_eq!(err.kind(), &ErrorKind::Storage, "{err}");
    let context = err.context().unwrap_or_default();
    assert!(
        context.contains(&path.display().to_string()),
        "the error does not name {}: {err}",
        path.display()
    );
}

#[test]
fn groups_in_one_file_are_isolated_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raft.redb");
    let file = RedbLogStore::open(&path).unwrap();
    let (a, b) = (file.group(1), file.group(2));
    a.append(&(1..=5).map(|i| entry(i, 1, "a")).collect::<Vec<_>>())
        .unwrap();
    b.append(&(1..=3).map(|i| entry(i, 4, "b")).collect::<Vec<_>>())
        .unwrap();
    a.purge_to(2, 1).unwrap();
    b.save_hard_state(Bytes::from_static(b"b's vote")).unwrap();
    assert_eq!(b.log_state().unwrap().purged, None);
    assert_eq!(a.hard_state().unwrap(), None);
    b.truncate_from(1).unwrap();
    assert_eq!(a.entries(3, 6).unwrap().len(), 3);
    drop((file, a, b));

    let file = RedbLogStore::open(&path).unwrap();
    let (a, b) = (file.group(1), file.group(2));
    assert_eq!(
        a.entries(3, 6).unwrap(),
        (3..=5).map(|i| entry(i, 1, "a")).collect::<Vec<_>>()
    );
    assert_eq!(a.log_state().unwrap().purged, Some((2, 1)));
    assert_eq!(b.log_state().unwrap().last, None);
    assert_eq!(
        b.hard_state().unwrap(),
        Some(Bytes::from_static(b"b's vote"))
    );
    assert_eq!(file.group(3).log_state().unwrap(), Default::default());
}

/// Positions and terms are answered from memory; every handle of a group sees every write at
/// once, and the answers match what a fresh open reads from the file.
#[test]
fn positions_follow_every_write_through_every_handle() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raft.redb");
    let file = RedbLogStore::open(&path).unwrap();
    let (writer, reader) = (file.group(1), file.group(1));
    assert_eq!(reader.log_state().unwrap(), Default::default());
    writer
        .append(&(1..=6).map(|i| entry(i, 1, "a")).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(reader.log_state().unwrap().last, Some((6, 1)));
    // The conflict rule replaces the suffix from 4 on.
    writer.append(&[entry(4, 2, "b")]).unwrap();
    assert_eq!(reader.log_state().unwrap().last, Some((4, 2)));
    assert_eq!(reader.term(4).unwrap(), Some(2));
    assert_eq!(reader.term(3).unwrap(), Some(1));
    assert_eq!(reader.term(5).unwrap(), None);
    writer.purge_to(2, 1).unwrap();
    assert_eq!(reader.term(2).unwrap(), Some(1));
    assert_eq!(reader.term(1).unwrap(), None);
    writer.truncate_from(4).unwrap();
    let before = reader.log_state().unwrap();
    assert_eq!(before.last, Some((3, 1)));
    let snapshot = raftengine::StoredSnapshot {
        meta: raftengine::SnapshotMeta {
            last_index: 9,
            last_term: 3,
            membership: Bytes::new(),
        },
        data: Bytes::from_static(b"state"),
    };
    writer.install_snapshot(snapshot).unwrap();
    let after = reader.log_state().unwrap();
    assert_eq!((after.purged, after.last), (Some((9, 3)), Some((9, 3))));
    drop((file, writer, reader));
    let reopened = RedbLogStore::open(&path).unwrap().group(1);
    assert_eq!(reopened.log_state().unwrap(), after);
    assert_eq!(reopened.term(9).unwrap(), Some(3));
}

#[test]
fn concurrent_writes_share_commits_and_fsyncs() {
    const THREADS: u64 = 16;
    const PER_THREAD: u64 = 40;
    let dir = tempfile::tempdir().unwrap();
    let file = RedbLogStore::open(dir.path().join("raft.redb")).unwrap();
    let before = file.stats();
    let threads: Vec<_> = (0..THREADS)
        .map(|group| {
            let store: Arc<dyn LogStore> = Arc::new(file.group(group));
            std::thread::spawn(move || {
                for index in 1..=PER_THREAD {
                    store.append(&[entry(index, 1, "g")]).unwrap();
                    store
                        .save_hard_state(Bytes::from(format!("commit {index}")))
                        .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let after = file.stats();
    let writes = after.writes - before.writes;
    let commits = after.commits - before.commits;
    let syncs = after.syncs - before.syncs;
    println!("{writes} writes, {commits} commits, {syncs} fsyncs");
    assert_eq!(writes, THREADS * PER_THREAD * 2);
    assert!(
        commits * 3 <= writes,
        "{writes} writes took {commits} commits: concurrent writes were not batched"
    );
    assert!(
        syncs <= commits * 2,
        "{syncs} fsyncs for {commits} commits: more than two per commit"
    );
    for group in 0..THREADS {
        let store = file.group(group);
        assert_eq!(store.log_state().unwrap().last, Some((PER_THREAD, 1)));
        assert_eq!(
            store.hard_state().unwrap(),
            Some(Bytes::from(format!("commit {PER_THREAD}")))
        );
    }
}

#[test]
fn a_single_writer_costs_one_commit_per_write() {
    let dir = tempfile::tempdir().unwrap();
    let file = RedbLogStore::open(dir.path().join("raft.redb")).unwrap();
    let store = file.group(0);
    let before = file.stats();
    for index in 1..=20 {
        store.append(&[entry(index, 1, "s")]).unwrap();
    }
    let after = file.stats();
    assert_eq!(after.commits - before.commits, 20);
    assert!(
        after.syncs - before.syncs >= 20,
        "a write returned before its fsync"
    );
}

#[test]
fn a_file_open_twice_is_a_storage_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raft.redb");
    let _first = RedbLogStore::open(&path).unwrap();
    let err = RedbLogStore::open(&path).unwrap_err();
    assert_storage_error_names(&err, &path);
}

#[test]
fn a_file_that_is_not_a_database_is_a_storage_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raft.redb");
    std::fs::write(&path, vec![0x5a; 64 * 1024]).unwrap();
    let err = RedbLogStore::open(&path).unwrap_err();
    assert_storage_error_names(&err, &path);
    let missing_dir = dir.path().join("no such dir").join("raft.redb");
    let err = RedbLogStore::open(&missing_dir).unwrap_err();
    assert_storage_error_names(&err, &missing_dir);
}

fn write_reference_log(path: &Path) -> Vec<LogEntry> {
    let file = RedbLogStore::open(path).unwrap();
    let store = file.group(1);
    let log: Vec<_> = (1..=200).map(|i| entry(i, 1 + i / 50, "ref")).collect();
    for chunk in log.chunks(20) {
        store.append(chunk).unwrap();
    }
    store
        .save_hard_state(Bytes::from_static(b"reference hard state"))
        .unwrap();
    log
}

/// Opens the damaged file and reads everything: each step either fails with a storage error
/// naming the file or returns exactly what was written. Returns whether damage was reported.
fn check_damaged(path: &Path, log: &[LogEntry]) -> bool {
    let file = match RedbLogStore::open(path) {
        Ok(file) => file,
        Err(err) => {
            assert_storage_error_names(&err, path);
            return true;
        }
    };
    let store = file.group(1);
    let mut reported = false;
    match store.entries(1, 1000) {
        Ok(entries) => assert!(
            entries.len() <= log.len() && entries[..] == log[..entries.len()],
            "a damaged file returned wrong entries"
        ),
        Err(err) => {
            assert_storage_error_names(&err, path);
            reported = true;
        }
    }
    for e in log {
        match store.term(e.index) {
            Ok(term) => assert!(term.is_none() || term == Some(e.term), "wrong term"),
            Err(err) => {
                assert_storage_error_names(&err, path);
                reported = true;
            }
        }
    }
    match store.hard_state() {
        Ok(hs) => assert!(
            hs.is_none() || hs == Some(Bytes::from_static(b"reference hard state")),
            "a damaged file returned a wrong hard state"
        ),
        Err(err) => {
            assert_storage_error_names(&err, path);
            reported = true;
        }
    }
    reported
}

#[test]
fn a_flipped_byte_inside_an_entry_is_a_storage_error_never_wrong_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raft.redb");
    let log = write_reference_log(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    let needle = b"ref: entry 77 of term 2";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the entry is stored in the clear");
    bytes[at + 11] ^= 0x01; // "77" becomes "76" in the stored payload
    std::fs::write(&path, &bytes).unwrap();
    assert!(
        check_damaged(&path, &log),
        "a flipped byte in entry 77 went unnoticed"
    );
}

#[test]
fn flipped_bytes_anywhere_are_storage_errors_never_wrong_data() {
    let dir = tempfile::tempdir().unwrap();
    let pristine_path = dir.path().join("pristine.redb");
    let log = write_reference_log(&pristine_path);
    let pristine = std::fs::read(&pristine_path).unwrap();
    let seed: u64 = std::env::var("REDB_CORRUPT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed);
    println!("REDB_CORRUPT_SEED={seed}");
    let mut state = seed;
    let mut next = move || {
        // xorshift64*: enough to spread the damage over the file, reproducible from the seed.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let path = dir.path().join("damaged.redb");
    let mut reported = 0;
    for _ in 0..40 {
        let mut bytes = pristine.clone();
        let at = (next() % bytes.len() as u64) as usize;
        bytes[at] ^= 1 << (next() % 8);
        std::fs::write(&path, &bytes).unwrap();
        if check_damaged(&path, &log) {
            reported += 1;
        }
    }
    println!("{reported} of 40 damaged files reported damage; the rest read back intact");
}

#[test]
fn failing_writes_are_storage_errors_and_lose_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raft.redb");
    let file = RedbLogStore::open(&path).unwrap();
    let store = file.group(1);
    let acked: Vec<_> = (1..=5).map(|i| entry(i, 1, "ok")).collect();
    store.append(&acked).unwrap();
    store.save_hard_state(Bytes::from_static(b"acked")).unwrap();

    file.set_fail_writes(true);
    let err = store.append(&[entry(6, 1, "lost")]).unwrap_err();
    assert_storage_error_names(&err, &path);
    let err = store
        .save_hard_state(Bytes::from_static(b"lost"))
        .unwrap_err();
    assert_storage_error_names(&err, &path);
    assert_eq!(store.entries(1, 10).unwrap(), acked, "reads keep working");
    file.set_fail_writes(false);
    let err = store.append(&[entry(6, 1, "lost")]).unwrap_err();
    assert_storage_error_names(&err, &path);
    drop((file, store));

    let file = RedbLogStore::open(&path).unwrap();
    let store = file.group(1);
    assert_eq!(store.entries(1, 10).unwrap(), acked);
    assert_eq!(
        store.hard_state().unwrap(),
        Some(Bytes::from_static(b"acked"))
    );
    store.append(&[entry(6, 1, "healed")]).unwrap();
}
