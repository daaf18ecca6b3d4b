//! The one place where redb's errors become `raftengine` errors.
//!
//! Every failure of the store is an [`ErrorKind::Storage`] whose context names the database
//! file, so an operator reading a log line knows which disk to look at.

use std::path::Path;

use raftengine::{Error, ErrorKind};

/// Any redb error, converted through redb's own `From` impls into its umbrella type first so
/// that there is exactly one mapping.
pub(crate) fn map_redb(path: &Path, what: &str, err: impl Into<redb::Error>) -> Error {
    let err: redb::Error = err.into();
    let cause = match &err {
        redb::Error::Corrupted(detail) => format!("the file is corrupted: {detail}"),
        redb::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::StorageFull => "the disk is full".to_owned(),
            std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied => {
                format!("the file cannot be written: {io}")
            }
            _ => format!("I/O error: {io}"),
        },
        redb::Error::PreviousIo => {
            "an earlier I/O error left the database unusable; reopen it".to_owned()
        }
        redb::Error::DatabaseAlreadyOpen => {
            "the file is already open in this or another process".to_owned()
        }
        redb::Error::UpgradeRequired(version) => {
            format!("the file has an old redb format (version {version}) and must be upgraded")
        }
        redb::Error::ValueTooLarge(size) => format!("a value of {size} bytes is too large"),
        redb::Error::TableDoesNotExist(table) => {
            format!("table {table} is missing: not a raftengine log file")
        }
        redb::Error::TableTypeMismatch { table, .. } => {
            format!("table {table} has another layout: not a raftengine log file")
        }
        other => format!("redb error: {other}"),
    };
    Error::new(ErrorKind::Storage)
        .with_context(format!("{}: {what}: {cause}", path.display()))
        .with_source(err)
}

/// A stored value that fails its checksum or does not decode: never returned as data.
pub(crate) fn corrupted(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Storage).with_context(format!(
        "{}: corrupted data: {what} fails its checksum",
        path.display()
    ))
}

/// A request the store refuses because it would break the log's shape; nothing was written.
pub(crate) fn refused(path: &Path, group: u64, what: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Storage)
        .with_outcome(raftengine::WriteOutcome::NotApplied)
        .with_context(format!("{}: group {group}: {what}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn mapped(err: redb::Error) -> Error {
        map_redb(&PathBuf::from("/data/raft.redb"), "append", err)
    }

    fn assert_storage(err: &Error, needle: &str) {
        assert_eq!(err.kind(), &ErrorKind::Storage);
        let context = err.context().unwrap_or_default();
        assert!(
            context.starts_with("/data/raft.redb: append: "),
            "{context}"
        );
        assert!(context.contains(needle), "{context} lacks {needle}");
        assert!(std::error::Error::source(err).is_some());
    }

    #[test]
    fn corruption() {
        assert_storage(
            &mapped(redb::Error::Corrupted("bad page".into())),
            "corrupted: bad page",
        );
    }

    #[test]
    fn full_disk() {
        let io = std::io::Error::from(std::io::ErrorKind::StorageFull);
        assert_storage(&mapped(redb::Error::Io(io)), "disk is full");
    }

    #[test]
    fn read_only_file() {
        let io = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert_storage(&mapped(redb::Error::Io(io)), "cannot be written");
        let io = std::io::Error::from(std::io::ErrorKind::ReadOnlyFilesystem);
        assert_storage(&mapped(redb::Error::Io(io)), "cannot be written");
    }

    #[test]
    fn other_io() {
        let io = std::io::Error::other("device gone");
        assert_storage(&mapped(redb::Error::Io(io)), "I/O error: device gone");
    }

    #[test]
    fn previous_io() {
        assert_storage(&mapped(redb::Error::PreviousIo), "reopen it");
    }

    #[test]
    fn already_open() {
        assert_storage(&mapped(redb::Error::DatabaseAlreadyOpen), "already open");
    }

    #[test]
    fn old_format() {
        assert_storage(&mapped(redb::Error::UpgradeRequired(1)), "version 1");
    }

    #[test]
    fn value_too_large() {
        assert_storage(&mapped(redb::Error::ValueTooLarge(7)), "7 bytes");
    }

    #[test]
    fn missing_table() {
        assert_storage(
            &mapped(redb::Error::TableDoesNotExist("entries".into())),
            "not a raftengine log file",
        );
    }

    #[test]
    fn anything_else_is_still_storage() {
        assert_storage(&mapped(redb::Error::TransactionPoisoned), "redb error");
    }

    #[test]
    fn redb_sub_errors_go_through_the_same_mapping() {
        let err = map_redb(
            &PathBuf::from("/data/raft.redb"),
            "append",
            redb::CommitError::Storage(redb::StorageError::PreviousIo),
        );
        assert_storage(&err, "reopen it");
    }

    #[test]
    fn checksum_failures_and_refusals_name_the_file() {
        let path = PathBuf::from("/data/raft.redb");
        let err = corrupted(&path, "entry 5 of group 2");
        assert_eq!(err.kind(), &ErrorKind::Storage);
        assert!(
            err.context()
                .unwrap_or_default()
                .contains("/data/raft.redb")
        );
        let err = refused(&path, 2, "gap");
        assert_eq!(err.outcome(), raftengine::WriteOutcome::NotApplied);
        assert!(err.context().unwrap_or_default().contains("group 2: gap"));
    }
}
