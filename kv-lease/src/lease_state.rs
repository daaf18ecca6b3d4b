//! [`LeaseState`]: the lease itself — term, expiry and generation — with a fast-path check of one
//! atomic load and writers that can never resurrect an invalidated lease.
//!
//! # Layout
//!
//! Readers see one `AtomicU64`, the *word*:
//!
//! ```text
//!  63                                   24 23            0
//! +---------------------------------------+---------------+
//! | expiry: whole ms since the epoch (40) | term tag (24) |
//! +---------------------------------------+---------------+
//! ```
//!
//! * The expiry is rounded **down** to a whole millisecond (a lease is only ever shortened by the
//!   encoding) and counts from a per-lease epoch taken on the engine's clock; 40 bits last 34
//!   years.
//! * The tag is the low 24 bits of the term the lease was granted in. The check compares it with
//!   the caller's current term. A tag can only alias if the term advanced by a multiple of 2^24
//!   inside one lease window *and* no leader-loss edge fired; the engine contract fires one on
//!   every leader→non-leader edge (a newer term counts), which invalidates the lease first.
//!   Writers keep the full term and compare it exactly.
//! * An expiry of 0 means no lease; the word [`INVALIDATED`] marks one that was invalidated
//!   (so misses can be attributed).
//!
//! # Writers
//!
//! [`LeaseState::extend`], [`LeaseState::invalidate`], [`LeaseState::suspect`] and friends are
//! serialized by a mutex; they are rare (once per write or quorum round) and short. Inside the
//! lock, `extend` compares the generation its caller sampled **before** the quorum operation
//! with the current one. `invalidate` clears the word and bumps the generation inside the same
//! lock, so an extend either runs entirely before it (and is overwritten) or entirely after it
//! (and sees the new generation and refuses). There is no window where a reader can observe a
//! resurrected lease; `loom` and an exhaustive interleaving test check this.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use crate::sync::{AtomicU64, Mutex, Ordering, lock};

const TAG_BITS: u32 = 24;
const TAG_MASK: u64 = (1 << TAG_BITS) - 1;
const EXPIRY_LIMIT_MS: u64 = 1 << (64 - TAG_BITS);
/// The word of a lease that was invalidated (expiry 0, marker 1).
const INVALIDATED: u64 = 1;

/// What the fast-path check of a [`LeaseState`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeaseCheck {
    /// The lease is held for the given term and has not expired.
    Valid,
    /// No lease was ever granted, or it ran out.
    Expired,
    /// The lease was invalidated and nothing has granted a new one since.
    Invalidated,
    /// A lease exists but was granted in a different term.
    OtherTerm,
}

/// Where the start of a lease comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// A quorum operation of ours (a proposal or a linearizable read): `started` is the clock
    /// reading taken **before** it was issued.
    Round {
        /// Clock reading sampled before the operation started.
        started: Instant,
    },
    /// An acknowledgement the engine reported through `quorum_ack()`: `sent_at` is when the
    /// acknowledged message was sent.
    Ack {
        /// Send time of the acknowledged message.
        sent_at: Instant,
    },
}

impl Anchor {
    /// The instant the lease counts from.
    pub fn instant(self) -> Instant {
        match self {
            Self::Round { started } => started,
            Self::Ack { sent_at } => sent_at,
        }
    }
}

/// Why [`LeaseState::extend`] did not move the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The lease was invalidated after the caller sampled the generation.
    StaleGeneration,
    /// The lease already belongs to a newer term.
    StaleTerm,
    /// The lease is suspect (a transfer runs, or the anchor predates the end of one).
    Suspect,
    /// The lease already reaches at least as far.
    NotForward,
    /// The anchor is so old that the lease would already have ended before the epoch.
    TooOld,
    /// The lease was closed for good.
    Closed,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::StaleGeneration => "invalidated since the generation was sampled",
            Self::StaleTerm => "the lease belongs to a newer term",
            Self::Suspect => "the lease is suspect after a leadership transfer",
            Self::NotForward => "the lease already reaches further",
            Self::TooOld => "the anchor is older than the lease epoch allows",
            Self::Closed => "the lease is closed",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Barrier {
    /// Anchors must not precede this instant (acks must be strictly after it).
    Since(Instant),
    /// Nothing may grant a lease (a transfer is running).
    Indefinite,
}

#[derive(Debug)]
struct Writer {
    /// The full term of the newest lease (or grant attempt) seen.
    term: u64,
    /// The expiry in the word, in ms since the epoch; 0 when the word holds no lease.
    expiry_ms: u64,
    barrier: Option<Barrier>,
    closed: bool,
}

/// A read lease: `(term, expires_at, generation)`.
///
/// The fast path, [`LeaseState::check`], is one atomic load plus arithmetic on a clock reading
/// the caller takes. Every writer goes through a short mutex.
pub struct LeaseState {
    epoch: Instant,
    duration: Duration,
    word: AtomicU64,
    generation: AtomicU64,
    writer: Mutex<Writer>,
}

impl fmt::Debug for LeaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaseState")
            .field("duration", &self.duration)
            .field("term", &self.term())
            .field("expires_at", &self.expires_at())
            .field("generation", &self.generation())
            .finish()
    }
}

impl LeaseState {
    /// A lease that is not held, lasting `duration` from each anchor, with times counted from
    /// `epoch` (a reading of the same clock that later readings come from).
    pub fn new(epoch: Instant, duration: Duration) -> Self {
        Self {
            epoch,
            duration,
            word: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            writer: Mutex::new(Writer {
                term: 0,
                expiry_ms: 0,
                barrier: None,
                closed: false,
            }),
        }
    }

    /// How long a lease lasts from its anchor.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// The current generation. Sample it **before** a quorum operation and hand it to
    /// [`LeaseState::extend`] afterwards.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The fast-path check: is a lease for `term` valid at `now`? One atomic load.
    #[inline]
    pub fn check(&self, now: Instant, term: u64) -> LeaseCheck {
        let word = self.word.load(Ordering::Acquire);
        let expiry_ms = word >> TAG_BITS;
        if expiry_ms == 0 {
            return if word == INVALIDATED {
                LeaseCheck::Invalidated
            } else {
                LeaseCheck::Expired
            };
        }
        if word & TAG_MASK != term & TAG_MASK {
            return LeaseCheck::OtherTerm;
        }
        let now_ms = now.saturating_duration_since(self.epoch).as_millis();
        if now_ms < u128::from(expiry_ms) {
            LeaseCheck::Valid
        } else {
            LeaseCheck::Expired
        }
    }

    /// Extends the lease of `term` to `anchor + duration`, if and only if:
    /// * nothing invalidated it since `generation` was sampled;
    /// * no newer term's lease exists;
    /// * it is not suspect (a running transfer refuses everything; after an aborted transfer
    ///   only anchors after the abort count, acks strictly after);
    /// * the new expiry lies further ahead than the current one (it only moves forward).
    ///
    /// Returns the new expiry.
    pub fn extend(&self, anchor: Anchor, term: u64, generation: u64) -> Result<Instant, Refusal> {
        let mut writer = lock(&self.writer);
        if writer.closed {
            return Err(Refusal::Closed);
        }
        if self.generation.load(Ordering::Acquire) != generation {
            return Err(Refusal::StaleGeneration);
        }
        if term < writer.term {
            return Err(Refusal::StaleTerm);
        }
        let at = anchor.instant();
        match (writer.barrier, anchor) {
            (Some(Barrier::Indefinite), _) => return Err(Refusal::Suspect),
            (Some(Barrier::Since(since)), Anchor::Ack { sent_at }) if sent_at <= since => {
                return Err(Refusal::Suspect);
            }
            (Some(Barrier::Since(since)), Anchor::Round { started }) if started < since => {
                return Err(Refusal::Suspect);
            }
            _ => {}
        }
        let expiry = at + self.duration;
        let expiry_ms = u64::try_from(expiry.saturating_duration_since(self.epoch).as_millis())
            .unwrap_or(u64::MAX)
            .min(EXPIRY_LIMIT_MS - 1);
        if expiry_ms == 0 {
            return Err(Refusal::TooOld);
        }
        if term == writer.term && writer.expiry_ms >= expiry_ms {
            return Err(Refusal::NotForward);
        }
        writer.term = term;
        writer.expiry_ms = expiry_ms;
        self.word.store(
            (expiry_ms << TAG_BITS) | (term & TAG_MASK),
            Ordering::Release,
        );
        Ok(self.epoch + Duration::from_millis(expiry_ms))
    }

    /// Drops the lease at `now` and bumps the generation, so every extend whose generation was
    /// sampled before this call is refused. Acks sent at or before `now` can no longer grant a
    /// lease either. Returns whether a lease was held (expired or not).
    pub fn invalidate(&self, now: Instant) -> bool {
        let mut writer = lock(&self.writer);
        let held = writer.expiry_ms != 0;
        self.clear(&mut writer);
        writer.barrier = match writer.barrier {
            Some(Barrier::Indefinite) => Some(Barrier::Indefinite),
            Some(Barrier::Since(since)) if since >= now => Some(Barrier::Since(since)),
            _ => Some(Barrier::Since(now)),
        };
        held
    }

    /// Drops the lease and refuses every extension until [`LeaseState::end_suspicion`]: a
    /// leadership transfer started, and its forced election ignores followers' vote refusal.
    pub fn suspect(&self) {
        let mut writer = lock(&self.writer);
        self.clear(&mut writer);
        writer.barrier = Some(Barrier::Indefinite);
    }

    /// Ends a suspicion at `now` (the transfer was aborted): only rounds started at or after
    /// `now` (with a generation sampled after this call) and acks of messages sent strictly after
    /// `now` grant a lease again. Returns whether the lease was suspect.
    pub fn end_suspicion(&self, now: Instant) -> bool {
        let mut writer = lock(&self.writer);
        if writer.barrier != Some(Barrier::Indefinite) {
            return false;
        }
        self.clear(&mut writer);
        writer.barrier = Some(Barrier::Since(now));
        true
    }

    /// Whether a transfer suspicion is in force.
    pub fn is_suspect(&self) -> bool {
        lock(&self.writer).barrier == Some(Barrier::Indefinite)
    }

    /// Drops the lease for good: no extension succeeds afterwards.
    pub fn close(&self) {
        let mut writer = lock(&self.writer);
        self.clear(&mut writer);
        writer.closed = true;
    }

    /// The term of the newest lease granted (0 before the first).
    pub fn term(&self) -> u64 {
        lock(&self.writer).term
    }

    /// When the current lease ends (rounded down to a millisecond), or `None` when none is held.
    pub fn expires_at(&self) -> Option<Instant> {
        let expiry_ms = self.word.load(Ordering::Acquire) >> TAG_BITS;
        (expiry_ms != 0).then(|| self.epoch + Duration::from_millis(expiry_ms))
    }

    fn clear(&self, writer: &mut Writer) {
        writer.expiry_ms = 0;
        // Clear before the bump: a reader never needs the generation, but an extend that
        // samples the new generation must never find the old lease still published.
        self.word.store(INVALIDATED, Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn state() -> (LeaseState, Instant) {
        let epoch = Instant::now();
        (LeaseState::new(epoch, 100 * MS), epoch)
    }

    fn round(at: Instant) -> Anchor {
        Anchor::Round { started: at }
    }

    #[test]
    fn a_fresh_lease_is_not_held() {
        let (lease, epoch) = state();
        assert_eq!(lease.check(epoch, 1), LeaseCheck::Expired);
        assert_eq!(lease.expires_at(), None);
    }

    #[test]
    fn extend_grants_until_anchor_plus_duration() {
        let (lease, epoch) = state();
        let g = lease.generation();
        let until = lease.extend(round(epoch + 10 * MS), 3, g).unwrap();
        assert_eq!(until, epoch + 110 * MS);
        assert_eq!(lease.check(epoch + 109 * MS, 3), LeaseCheck::Valid);
        assert_eq!(lease.check(epoch + 110 * MS, 3), LeaseCheck::Expired);
        assert_eq!(lease.check(epoch + 50 * MS, 4), LeaseCheck::OtherTerm);
        assert_eq!(lease.term(), 3);
    }

    #[test]
    fn expiry_is_rounded_down_never_up() {
        let (lease, epoch) = state();
        let g = lease.generation();
        let until = lease
            .extend(round(epoch + Duration::from_micros(10_900)), 1, g)
            .unwrap();
        assert_eq!(until, epoch + 110 * MS);
        assert_eq!(
            lease.check(epoch + Duration::from_micros(109_999), 1),
            LeaseCheck::Valid
        );
        assert_eq!(lease.check(epoch + 110 * MS, 1), LeaseCheck::Expired);
    }

    #[test]
    fn extend_only_moves_forward() {
        let (lease, epoch) = state();
        let g = lease.generation();
        lease.extend(round(epoch + 50 * MS), 1, g).unwrap();
        assert_eq!(
            lease.extend(round(epoch + 20 * MS), 1, g),
            Err(Refusal::NotForward)
        );
        assert_eq!(lease.expires_at(), Some(epoch + 150 * MS));
        lease.extend(round(epoch + 60 * MS), 1, g).unwrap();
        assert_eq!(lease.expires_at(), Some(epoch + 160 * MS));
    }

    #[test]
    fn extend_refuses_a_stale_generation() {
        let (lease, epoch) = state();
        let g = lease.generation();
        lease.extend(round(epoch), 1, g).unwrap();
        let sampled = lease.generation();
        assert!(lease.invalidate(epoch + MS));
        assert_eq!(lease.check(epoch + 2 * MS, 1), LeaseCheck::Invalidated);
        assert_eq!(
            lease.extend(round(epoch + 2 * MS), 1, sampled),
            Err(Refusal::StaleGeneration)
        );
        assert_eq!(lease.check(epoch + 3 * MS, 1), LeaseCheck::Invalidated);
        let fresh = lease.generation();
        lease.extend(round(epoch + 2 * MS), 1, fresh).unwrap();
        assert_eq!(lease.check(epoch + 3 * MS, 1), LeaseCheck::Valid);
    }

    #[test]
    fn extend_refuses_an_older_term_and_a_newer_term_replaces() {
        let (lease, epoch) = state();
        let g = lease.generation();
        lease.extend(round(epoch + 50 * MS), 5, g).unwrap();
        assert_eq!(
            lease.extend(round(epoch + 60 * MS), 4, g),
            Err(Refusal::StaleTerm)
        );
        // A newer term's lease replaces the old one even when it ends earlier.
        lease.extend(round(epoch + 10 * MS), 6, g).unwrap();
        assert_eq!(lease.check(epoch + 20 * MS, 6), LeaseCheck::Valid);
        assert_eq!(lease.check(epoch + 20 * MS, 5), LeaseCheck::OtherTerm);
        assert_eq!(lease.expires_at(), Some(epoch + 110 * MS));
    }

    #[test]
    fn acks_before_an_invalidation_cannot_grant() {
        let (lease, epoch) = state();
        lease.invalidate(epoch + 10 * MS);
        let g = lease.generation();
        let ack = |ms| Anchor::Ack {
            sent_at: epoch + ms * MS,
        };
        assert_eq!(lease.extend(ack(5), 1, g), Err(Refusal::Suspect));
        assert_eq!(lease.extend(ack(10), 1, g), Err(Refusal::Suspect));
        lease.extend(ack(11), 1, g).unwrap();
        assert_eq!(lease.check(epoch + 12 * MS, 1), LeaseCheck::Valid);
    }

    #[test]
    fn suspicion_refuses_everything_until_it_ends_then_only_later_anchors() {
        let (lease, epoch) = state();
        let g = lease.generation();
        lease.extend(round(epoch), 1, g).unwrap();
        lease.suspect();
        assert!(lease.is_suspect());
        assert_eq!(lease.check(epoch + MS, 1), LeaseCheck::Invalidated);
        let g = lease.generation();
        assert_eq!(
            lease.extend(round(epoch + 5 * MS), 1, g),
            Err(Refusal::Suspect)
        );
        // Invalidation during a suspicion keeps it suspect.
        lease.invalidate(epoch + 6 * MS);
        assert!(lease.is_suspect());
        // A round started during the transfer completes after the abort: stale generation.
        let during = lease.generation();
        assert!(lease.end_suspicion(epoch + 20 * MS));
        assert!(!lease.end_suspicion(epoch + 21 * MS));
        assert_eq!(
            lease.extend(round(epoch + 8 * MS), 1, during),
            Err(Refusal::StaleGeneration)
        );
        let after = lease.generation();
        let ack = |ms| Anchor::Ack {
            sent_at: epoch + ms * MS,
        };
        assert_eq!(lease.extend(ack(15), 1, after), Err(Refusal::Suspect));
        assert_eq!(lease.extend(ack(20), 1, after), Err(Refusal::Suspect));
        assert_eq!(
            lease.extend(round(epoch + 19 * MS), 1, after),
            Err(Refusal::Suspect)
        );
        lease.extend(ack(21), 1, after).unwrap();
        assert_eq!(lease.check(epoch + 22 * MS, 1), LeaseCheck::Valid);
    }

    #[test]
    fn close_is_final() {
        let (lease, epoch) = state();
        lease.close();
        let g = lease.generation();
        assert_eq!(lease.extend(round(epoch), 1, g), Err(Refusal::Closed));
        assert_eq!(lease.check(epoch, 1), LeaseCheck::Invalidated);
    }

    #[test]
    fn an_anchor_before_the_epoch_grants_what_is_left() {
        let epoch = Instant::now() + 50 * MS;
        let lease = LeaseState::new(epoch, 100 * MS);
        let g = lease.generation();
        let early = epoch - 40 * MS;
        assert_eq!(lease.extend(round(early), 1, g).unwrap(), epoch + 60 * MS);
        let too_early = epoch - 100 * MS;
        lease.invalidate(epoch - 200 * MS);
        let g = lease.generation();
        assert_eq!(lease.extend(round(too_early), 2, g), Err(Refusal::TooOld));
    }

    /// Exhaustive interleavings of the lock-atomic steps of concurrent writers and readers.
    ///
    /// Each actor is a sequence of steps; a step is atomic with respect to the others (each
    /// method takes the writer lock or does a single atomic load). The test enumerates every
    /// interleaving of the actors' steps and checks, after every step, against a model:
    /// * a reader check after an invalidation that no post-invalidation extend followed is
    ///   never `Valid` (no resurrection, not even transiently);
    /// * the final lease equals the model (forward-only, newest generation only).
    mod interleavings {
        use super::*;

        #[derive(Debug, Clone, Copy)]
        enum Step {
            /// Sample the generation into the actor's slot.
            Sample,
            /// Extend from `at` ms with the sampled generation.
            Extend { at: u64 },
            /// Invalidate at `at` ms.
            Invalidate { at: u64 },
            /// Start a transfer (suspect).
            Suspect,
            /// Abort the transfer at `at` ms.
            EndSuspicion { at: u64 },
            /// Check the lease at `at` ms.
            Read { at: u64 },
        }

        #[derive(Debug, Default, Clone)]
        struct Model {
            generation: u64,
            expiry_ms: Option<u64>,
            suspect: bool,
            barrier_ms: Option<u64>,
        }

        /// One interleaving: which actor ran which step, in order.
        type Trace = [(usize, Step)];

        fn interleave(actors: &[Vec<Step>], visit: &mut dyn FnMut(&Trace)) {
            fn go(
                actors: &[Vec<Step>],
                pos: &mut Vec<usize>,
                trace: &mut Vec<(usize, Step)>,
                visit: &mut dyn FnMut(&Trace),
            ) {
                let mut any = false;
                for a in 0..actors.len() {
                    if pos[a] < actors[a].len() {
                        any = true;
                        trace.push((a, actors[a][pos[a]]));
                        pos[a] += 1;
                        go(actors, pos, trace, visit);
                        pos[a] -= 1;
                        trace.pop();
                    }
                }
                if !any {
                    visit(trace);
                }
            }
            go(actors, &mut vec![0; actors.len()], &mut Vec::new(), visit);
        }

        fn run(actors: Vec<Vec<Step>>) -> usize {
            let mut count = 0;
            interleave(&actors, &mut |trace| {
                count += 1;
                let epoch = Instant::now();
                let at = |ms: u64| epoch + Duration::from_millis(ms);
                let lease = LeaseState::new(epoch, 100 * MS);
                let mut model = Model::default();
                let mut sampled = vec![None::<u64>; actors.len()];
                for (i, &(actor, step)) in trace.iter().enumerate() {
                    match step {
                        Step::Sample => {
                            sampled[actor] = Some(lease.generation());
                            assert_eq!(sampled[actor], Some(model.generation));
                        }
                        Step::Extend { at: ms } => {
                            let g = sampled[actor].expect("sample before extend");
                            let got = lease.extend(round(at(ms)), 1, g);
                            let allowed = g == model.generation
                                && !model.suspect
                                && model.barrier_ms.is_none_or(|b| ms >= b)
                                && model.expiry_ms.is_none_or(|e| e < ms + 100);
                            assert_eq!(got.is_ok(), allowed, "step {i} of {trace:?}: {got:?}");
                            if allowed {
                                model.expiry_ms = Some(ms + 100);
                            }
                        }
                        Step::Invalidate { at: ms } => {
                            lease.invalidate(at(ms));
                            model.generation += 1;
                            model.expiry_ms = None;
                            if !model.suspect {
                                model.barrier_ms = Some(model.barrier_ms.unwrap_or(0).max(ms));
                            }
                        }
                        Step::Suspect => {
                            lease.suspect();
                            model.generation += 1;
                            model.expiry_ms = None;
                            model.suspect = true;
                        }
                        Step::EndSuspicion { at: ms } => {
                            let was = lease.end_suspicion(at(ms));
                            assert_eq!(was, model.suspect);
                            if model.suspect {
                                model.generation += 1;
                                model.expiry_ms = None;
                                model.suspect = false;
                                model.barrier_ms = Some(ms);
                            }
                        }
                        Step::Read { at: ms } => {
                            let valid = lease.check(at(ms), 1) == LeaseCheck::Valid;
                            let expected = model.expiry_ms.is_some_and(|e| ms < e);
                            assert_eq!(valid, expected, "step {i} of {trace:?}");
                        }
                    }
                }
                let expected = model.expiry_ms.map(at);
                assert_eq!(lease.expires_at(), expected, "{trace:?}");
                assert_eq!(lease.generation(), model.generation, "{trace:?}");
            });
            count
        }

        #[test]
        fn extend_sampled_before_invalidate_never_resurrects() {
            let n = run(vec![
                vec![Step::Sample, Step::Extend { at: 10 }, Step::Read { at: 50 }],
                vec![Step::Invalidate { at: 20 }, Step::Read { at: 30 }],
                vec![Step::Sample, Step::Extend { at: 40 }, Step::Read { at: 60 }],
            ]);
            // 8! / (3! 2! 3!)
            assert_eq!(n, 560);
        }

        #[test]
        fn two_extenders_keep_the_furthest_expiry() {
            let n = run(vec![
                vec![Step::Sample, Step::Extend { at: 30 }],
                vec![
                    Step::Sample,
                    Step::Extend { at: 10 },
                    Step::Read { at: 120 },
                ],
                vec![Step::Read { at: 5 }, Step::Invalidate { at: 35 }],
            ]);
            // 7! / (2! 3! 2!)
            assert_eq!(n, 210);
        }

        #[test]
        fn transfer_suspicion_and_abort_with_racing_extends() {
            let n = run(vec![
                vec![Step::Sample, Step::Extend { at: 10 }],
                vec![Step::Suspect, Step::EndSuspicion { at: 20 }],
                vec![Step::Sample, Step::Extend { at: 20 }, Step::Read { at: 25 }],
                vec![Step::Invalidate { at: 15 }],
            ]);
            assert!(n > 1000, "{n}");
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! Run with `RUSTFLAGS="--cfg loom" cargo test -p kv-lease --release --lib loom`.
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn invalidate_is_never_undone_by_a_racing_extend() {
        let epoch = Instant::now();
        loom::model(move || {
            let lease = Arc::new(LeaseState::new(epoch, 100 * MS));
            // Sampled before either operation starts: this extend is "from before".
            let sampled = lease.generation();
            let extender = {
                let lease = Arc::clone(&lease);
                thread::spawn(move || {
                    // Started after the invalidation instant, so only the generation (not the
                    // time barrier) can refuse it.
                    let _ = lease.extend(
                        Anchor::Round {
                            started: epoch + 5 * MS,
                        },
                        1,
                        sampled,
                    );
                })
            };
            let invalidator = {
                let lease = Arc::clone(&lease);
                thread::spawn(move || {
                    lease.invalidate(epoch + 2 * MS);
                    // Once invalidate has returned, the pre-sampled extend can never show.
                    assert_ne!(lease.check(epoch + 3 * MS, 1), LeaseCheck::Valid);
                })
            };
            extender.join().unwrap();
            invalidator.join().unwrap();
            assert_ne!(lease.check(epoch + 4 * MS, 1), LeaseCheck::Valid);
        });
    }

    #[test]
    fn a_reader_never_sees_a_lease_after_invalidate_returned() {
        let epoch = Instant::now();
        loom::model(move || {
            let lease = Arc::new(LeaseState::new(epoch, 100 * MS));
            let g = lease.generation();
            lease
                .extend(Anchor::Round { started: epoch }, 1, g)
                .unwrap();
            let done = Arc::new(loom::sync::atomic::AtomicBool::new(false));
            let extender = {
                let lease = Arc::clone(&lease);
                thread::spawn(move || {
                    let _ = lease.extend(
                        Anchor::Round {
                            started: epoch + 5 * MS,
                        },
                        1,
                        g,
                    );
                })
            };
            let invalidator = {
                let lease = Arc::clone(&lease);
                let done = Arc::clone(&done);
                thread::spawn(move || {
                    lease.invalidate(epoch + 2 * MS);
                    done.store(true, Ordering::Release);
                })
            };
            let reader = {
                let lease = Arc::clone(&lease);
                let done = Arc::clone(&done);
                thread::spawn(move || {
                    let finished = done.load(Ordering::Acquire);
                    let check = lease.check(epoch + 3 * MS, 1);
                    if finished {
                        assert_ne!(check, LeaseCheck::Valid);
                    }
                })
            };
            extender.join().unwrap();
            invalidator.join().unwrap();
            reader.join().unwrap();
            assert_ne!(lease.check(epoch + 3 * MS, 1), LeaseCheck::Valid);
        });
    }

    #[test]
    fn concurrent_extends_keep_the_furthest() {
        let epoch = Instant::now();
        loom::model(move || {
            let lease = Arc::new(LeaseState::new(epoch, 100 * MS));
            let threads: Vec<_> = [10u32, 30]
                .into_iter()
                .map(|ms| {
                    let lease = Arc::clone(&lease);
                    thread::spawn(move || {
                        let g = lease.generation();
                        let _ = lease.extend(
                            Anchor::Round {
                                started: epoch + ms * MS,
                            },
                            1,
                            g,
                        );
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(lease.expires_at(), Some(epoch + 130 * MS));
        });
    }
}
