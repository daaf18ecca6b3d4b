//! Value layouts, each behind a CRC32 that also covers the value's key.
//!
//! redb checks its page checksums only while repairing or verifying a file, not on every read,
//! so a byte flipped inside a value would otherwise come back as data. Covering the key as well
//! means a value read through a damaged index (the wrong entry at the right place) is caught too.

use bytes::Bytes;
use raftengine::{SnapshotMeta, StoredSnapshot};

const CRC_LEN: usize = 4;
const U64: usize = 8;

/// Kinds of per-group metadata, the second half of the metadata key.
pub(crate) const META_PURGED: u8 = 0;
pub(crate) const META_HARD_STATE: u8 = 1;
pub(crate) const META_SNAPSHOT: u8 = 2;

fn crc(key: &[u8], parts: &[&[u8]]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(key);
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize()
}

fn seal(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let len = CRC_LEN + parts.iter().map(|p| p.len()).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&crc(key, parts).to_le_bytes());
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

fn open<'v>(key: &[u8], value: &'v [u8]) -> Option<&'v [u8]> {
    let (stored, body) = value.split_at_checked(CRC_LEN)?;
    let stored = u32::from_le_bytes(stored.try_into().ok()?);
    (stored == crc(key, &[body])).then_some(body)
}

fn entry_key(group: u64, index: u64) -> [u8; 16] {
    let mut key = [0; 16];
    key[..8].copy_from_slice(&group.to_le_bytes());
    key[8..].copy_from_slice(&index.to_le_bytes());
    key
}

fn meta_key(group: u64, kind: u8) -> [u8; 9] {
    let mut key = [0; 9];
    key[..8].copy_from_slice(&group.to_le_bytes());
    key[8] = kind;
    key
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let slice = bytes.get(at..at + U64)?;
    Some(u64::from_le_bytes(slice.try_into().ok()?))
}

/// `crc | term | payload`.
pub(crate) fn encode_entry(group: u64, index: u64, term: u64, payload: &[u8]) -> Vec<u8> {
    seal(&entry_key(group, index), &[&term.to_le_bytes(), payload])
}

/// `(term, payload)` of a stored entry, or `None` when the value is damaged.
pub(crate) fn decode_entry(group: u64, index: u64, value: &[u8]) -> Option<(u64, &[u8])> {
    let body = open(&entry_key(group, index), value)?;
    let term = read_u64(body, 0)?;
    Some((term, &body[U64..]))
}

/// `crc | index | term`.
pub(crate) fn encode_purged(group: u64, index: u64, term: u64) -> Vec<u8> {
    seal(
        &meta_key(group, META_PURGED),
        &[&index.to_le_bytes(), &term.to_le_bytes()],
    )
}

pub(crate) fn decode_purged(group: u64, value: &[u8]) -> Option<(u64, u64)> {
    let body = open(&meta_key(group, META_PURGED), value)?;
    (body.len() == 2 * U64).then_some((read_u64(body, 0)?, read_u64(body, U64)?))
}

/// `crc | hard state`.
pub(crate) fn encode_hard_state(group: u64, state: &[u8]) -> Vec<u8> {
    seal(&meta_key(group, META_HARD_STATE), &[state])
}

pub(crate) fn decode_hard_state(group: u64, value: &[u8]) -> Option<Bytes> {
    open(&meta_key(group, META_HARD_STATE), value).map(Bytes::copy_from_slice)
}

/// `crc | last_index | last_term | membership length | membership | data`.
pub(crate) fn encode_snapshot(group: u64, snapshot: &StoredSnapshot) -> Vec<u8> {
    let meta = &snapshot.meta;
    seal(
        &meta_key(group, META_SNAPSHOT),
        &[
            &meta.last_index.to_le_bytes(),
            &meta.last_term.to_le_bytes(),
            &(meta.membership.len() as u64).to_le_bytes(),
            &meta.membership,
            &snapshot.data,
        ],
    )
}

pub(crate) fn decode_snapshot(group: u64, value: &[u8]) -> Option<StoredSnapshot> {
    let body = open(&meta_key(group, META_SNAPSHOT), value)?;
    let last_index = read_u64(body, 0)?;
    let last_term = read_u64(body, U64)?;
    let membership_len = usize::try_from(read_u64(body, 2 * U64)?).ok()?;
    let rest = body.get(3 * U64..)?;
    let (membership, data) = rest.split_at_checked(membership_len)?;
    Some(StoredSnapshot {
        meta: SnapshotMeta {
            last_index,
            last_term,
            membership: Bytes::copy_from_slice(membership),
        },
        data: Bytes::copy_from_slice(data),
    })
}

/// The snapshot's last index without copying its data; the checksum is still verified.
pub(crate) fn snapshot_last_index(group: u64, value: &[u8]) -> Option<u64> {
    let body = open(&meta_key(group, META_SNAPSHOT), value)?;
    read_u64(body, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_every_flipped_bit_is_caught() {
        let value = encode_entry(3, 7, 2, b"payload");
        assert_eq!(decode_entry(3, 7, &value), Some((2, &b"payload"[..])));
        for byte in 0..value.len() {
            for bit in 0..8 {
                let mut bad = value.clone();
                bad[byte] ^= 1 << bit;
                assert_eq!(decode_entry(3, 7, &bad), None, "byte {byte} bit {bit}");
            }
        }
    }

    #[test]
    fn a_value_under_another_key_is_caught() {
        let value = encode_entry(3, 7, 2, b"payload");
        assert_eq!(decode_entry(3, 8, &value), None);
        assert_eq!(decode_entry(4, 7, &value), None);
        let hard = encode_hard_state(1, b"vote");
        assert_eq!(decode_hard_state(2, &hard), None);
    }

    #[test]
    fn short_values_do_not_decode() {
        for len in 0..12 {
            assert_eq!(decode_entry(0, 1, &vec![0; len]), None);
        }
        assert_eq!(decode_purged(0, &[]), None);
        assert_eq!(decode_snapshot(0, &[1, 2, 3]), None);
    }

    #[test]
    fn metadata_round_trips() {
        assert_eq!(decode_purged(5, &encode_purged(5, 10, 3)), Some((10, 3)));
        assert_eq!(
            decode_hard_state(5, &encode_hard_state(5, b"hs")),
            Some(Bytes::from_static(b"hs"))
        );
        let snapshot = StoredSnapshot {
            meta: SnapshotMeta {
                last_index: 9,
                last_term: 2,
                membership: Bytes::from_static(b"voters"),
            },
            data: Bytes::from_static(b"state"),
        };
        let value = encode_snapshot(5, &snapshot);
        assert_eq!(decode_snapshot(5, &value), Some(snapshot));
        assert_eq!(snapshot_last_index(5, &value), Some(9));
    }

    #[test]
    fn a_membership_length_past_the_end_does_not_decode() {
        let key = meta_key(1, META_SNAPSHOT);
        let value = seal(
            &key,
            &[
                &1u64.to_le_bytes(),
                &1u64.to_le_bytes(),
                &u64::MAX.to_le_bytes(),
            ],
        );
        assert_eq!(decode_snapshot(1, &value), None);
    }
}
