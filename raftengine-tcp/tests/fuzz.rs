//! Property tests of the frame decoder: arbitrary bytes and mutated valid frames never panic,
//! everything accepted re-encodes to the same bytes, and reassembly stays within its limit.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use raftengine_tcp::frame::{Assembler, Envelope, Flags, HEADER_LEN, Header, Kind};
use tokio_util::codec::{Decoder, LengthDelimitedCodec};

const MAX_MESSAGE: usize = 4096;

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Hello),
        Just(Kind::Call),
        Just(Kind::Reply),
        Just(Kind::OneWay)
    ]
}

fn valid_frame() -> impl Strategy<Value = Bytes> {
    (
        kind(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(kind, id, from, to, payload)| {
            let hello = kind == Kind::Hello;
            let payload = if hello { Vec::new() } else { payload };
            let header = Header {
                kind,
                flags: Flags::empty(),
                id: if hello { 0 } else { id },
                from,
                to,
                total: payload.len() as u64,
            };
            Envelope::encode(&header, &payload)
        })
}

/// Feeds `stream` through the length-delimited codec, the envelope decoder and the assembler,
/// as a connection does; stops at the first error.
fn run_stream(stream: &[u8]) {
    let mut codec = LengthDelimitedCodec::builder()
        .max_frame_length(1024)
        .new_codec();
    let mut buf = BytesMut::from(stream);
    let mut assembler = Assembler::new(MAX_MESSAGE);
    loop {
        match codec.decode(&mut buf) {
            Ok(Some(frame)) => {
                let Ok(envelope) = Envelope::decode(frame.freeze()) else {
                    return;
                };
                match assembler.push(envelope) {
                    Ok(Some((_, message))) => assert!(message.len() <= MAX_MESSAGE),
                    Ok(None) => {}
                    Err(_) => return,
                }
            }
            Ok(None) | Err(_) => return,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(envelope) = Envelope::decode(Bytes::from(bytes.clone())) {
            prop_assert!(bytes.len() >= HEADER_LEN);
            prop_assert_eq!(
                &Envelope::encode(&envelope.header, &envelope.payload)[..],
                &bytes[..]
            );
        }
        run_stream(&bytes);
    }

    #[test]
    fn mutated_valid_frames_never_panic(
        frame in valid_frame(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        prop_assert!(Envelope::decode(frame.clone()).is_ok());
        let mut bytes = frame.to_vec();
        for (at, value) in flips {
            let at = at % bytes.len();
            bytes[at] ^= value;
        }
        let keep = if cut % 4 == 0 { cut % (bytes.len() + 1) } else { bytes.len() };
        bytes.truncate(keep);
        if let Ok(envelope) = Envelope::decode(Bytes::from(bytes.clone())) {
            // Whatever is accepted is exactly what an honest encoder would have sent.
            prop_assert_eq!(&Envelope::encode(&envelope.header, &envelope.payload)[..], &bytes[..]);
        }
        let mut stream = (bytes.len() as u32).to_be_bytes().to_vec();
        stream.extend_from_slice(&bytes);
        run_stream(&stream);
    }

    #[test]
    fn chunk_sequences_stay_bounded(
        chunks in proptest::collection::vec(
            (any::<bool>(), 0u64..3, 0u64..(2 * MAX_MESSAGE as u64), 0usize..600), 1..20),
    ) {
        let mut assembler = Assembler::new(MAX_MESSAGE);
        for (more, id, total, len) in chunks {
            let header = Header {
                kind: Kind::Call,
                flags: if more { Flags::MORE } else { Flags::empty() },
                id,
                from: 1,
                to: 2,
                total,
            };
            let Ok(envelope) = Envelope::decode(Envelope::encode(&header, &vec![0u8; len])) else {
                continue;
            };
            match assembler.push(envelope) {
                Ok(Some((_, message))) => prop_assert!(message.len() <= MAX_MESSAGE),
                Ok(None) => {}
                Err(_) => break,
            }
        }
    }
}
