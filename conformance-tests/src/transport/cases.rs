//! The transport cases: plain `async fn`s over a [`TestNetwork`] of nodes 1, 2 and 3.
//!
//! Bounds are generous enough for sockets on a loaded CI machine and exact on the paused clock.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use raftengine::{NodeId, Transport, TransportError};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::TestNetwork;
use super::handlers::{Echo, Hang, Keep};
use crate::{Failure, ensure, fail};

/// How long a transport may take to notice something (a reply, a closed peer) in real time.
const PROMPT: Duration = Duration::from_secs(1);

async fn expect_reply(
    transport: &dyn Transport,
    to: NodeId,
    request: &[u8],
    timeout: Duration,
) -> Result<Bytes, Failure> {
    let from = transport.local_id();
    match transport
        .call(to, Bytes::copy_from_slice(request), timeout)
        .await
    {
        Ok(reply) => Ok(reply),
        Err(e) => Err(Failure::new(format!(
            "call {from} -> {to} failed: {e} (expected a reply)"
        ))),
    }
}

/// Calls until one succeeds, for at most `limit`; returns the reply and how long it took.
async fn call_until_ok(
    transport: &dyn Transport,
    to: NodeId,
    request: &[u8],
    limit: Duration,
) -> Result<(Bytes, Duration), Failure> {
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < limit {
        match transport
            .call(
                to,
                Bytes::copy_from_slice(request),
                Duration::from_millis(500),
            )
            .await
        {
            Ok(reply) => return Ok((reply, start.elapsed())),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(Failure::new(format!(
        "no successful call {} -> {to} within {limit:?}; last error: {last:?}",
        transport.local_id()
    )))
}

/// A call gets the handler's reply, in both directions, and the handler sees the caller's id.
pub async fn call_and_reply(net: Arc<dyn TestNetwork>) -> Result<(), Failure> {
    let (t1, t2) = (net.transport(1), net.transport(2));
    t1.serve(Echo::new());
    t2.serve(Echo::new());
    let reply = expect_reply(&*t1, 2, b"ping", PROMPT * 5).await?;
    ensure!(
        reply == Echo::reply(1, b"ping"),
        "node 2 answered {reply:?}, expected its echo of node 1's request"
    );
    let reply = expect_reply(&*t2, 1, b"pong", PROMPT * 5).await?;
    ensure!(
        reply == Echo::reply(2, b"pong"),
        "node 1 answered {reply:?}, expected its echo of node 2's request"
    );
    let reply = expect_reply(&*t1, 2, b"", PROMPT).await?;
    ensure!(
        reply == Echo::reply(1, b""),
        "empty request answered {reply:?}"
    );
    Ok(())
}

/// A call whose handler never answers fails with `Timeout` at its deadline: not before, and not
/// long after.
pub async fn call_deadline_honoured(net: Arc<dyn TestNetwork>) -> Result<(), Failure> {
    let (t1, t2) = (net.transport(1), net.transport(2));
    t2.serve(Arc::new(Hang));
    t1.serve(Echo::new());
    // Establish the connection first, so the deadline measures the call, not a dial.
    t2.serve(Echo::new());
    expect_reply(&*t1, 2, b"warm up", PROMPT * 5).await?;
    t2.serve(Arc::new(Hang));
    for timeout in [Duration::from_millis(200), Duration::from_millis(700)] {
        let start = Instant::now();
        let result = t1.call(2, Bytes::from_static(b"hello?"), timeout).await;
        let took = start.elapsed();
        ensure!(
            result == Err(TransportError::Timeout(2)),
            "a call to a handler that never answers returned {result:?}, expected Timeout(2)"
        );
        ensure!(
            took >= timeout,
            "the call gave up after {took:?}, before its {timeout:?} deadline"
        );
        ensure!(
            took <= timeout + PROMPT / 2,
            "the call returned {took:?} after start, its deadline was {timeout:?}"
        );
    }
    // The link still works after the abandoned calls.
    t2.serve(Echo::new());
    expect_reply(&*t1, 2, b"still there", PROMPT * 2).await?;
    Ok(())
}

/// A node that is not serving, or not known, answers `Unreachable` at once, not at the deadline.
pub async fn unreachable_peer_fails_fast(net: Arc<dyn TestNetwork>) -> Result<(), Failure> {
    let t1 = net.transport(1);
    t1.serve(Echo::new());
    // Node 3 exists but never serves; node 99 does not exist.
    for to in [3, 99] {
        for attempt in 0..3 {
            let start = Instant::now();
            let result = t1
                .call(to, Bytes::from_static(b"anyone?"), Duration::from_secs(10))
                .await;
            let took = start.elapsed();
            ensure!(
                result == Err(TransportError::Unreachable(to)),
                "call {attempt} to node {to} returned {result:?}, expected Unreachable({to})"
            );
            ensure!(
                took < PROMPT,
                "call {attempt} to node {to} took {took:?} to fail; a down node must fail fast"
            );
        }
    }
    // One-way messages to nowhere are dropped silently.
    t1.send(99, Bytes::from_static(b"into the void"));
    Ok(())
}

/// One-way messages on a link arrive in the order they were sent, none lost, with several
/// senders at once.
pub async fn one_way_fifo_per_link(net: Arc<dyn TestNetwork>) -> Result<(), Failure> {
    const PER_SENDER: u32 = 500;
    let echo = Echo::new();
    net.transport(2).serve(Arc::clone(&echo) as _);
    let senders = [net.transport(1), net.transport(3)];
    for sender in &senders {
        sender.serve(Echo::new());
    }
    for i in 0..PER_SENDER {
        for sender in &senders {
            // Sizes vary so that frames of different lengths share the link.
            let mut message = i.to_be_bytes().to_vec();
            message.resize(4 + (i as usize * 37) % 3000, 0xAB);
            sender.send(2, Bytes::from(message));
        }
        if i % 100 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let expected = 2 * PER_SENDER as usize;
    let received = echo.wait_for(expected, PROMPT * 10).await;
    ensure!(
        received.len() == expected,
        "node 2 received {} of {expected} one-way messages",
        received.len()
    );
    for from in [1, 3] {
        let sequence: Vec<u32> = received
            .iter()
            .filter(|(sender, _)| *sender == from)
            .map(|(_, m)| u32::from_be_bytes([m[0], m[1], m[2], m[3]]))
            .collect();
        let in_order: Vec<u32> = (0..PER_SENDER).collect();
        if sequence != in_order {
            let first_bad = sequence
                .iter()
                .zip(&in_order)
                .position(|(got, want)| got != want);
            fail!(
                "messages from node {from} arrived out of order or incomplete: {} messages, first \
                 difference at position {first_bad:?}",
                sequence.len()
            );
        }
    }
    Ok(())
}

/// Many calls in flight on the same links at once, answered out of order: each caller gets its
/// own reply.
pub async fn concurrent_calls_multiplexed(net: Arc<dyn TestNetwork>) -> Result<(), Failure> {
    let t1 = net.transport(1);
    t1.serve(Echo::new());
    net.transport(2)
        .serve(Echo::delayed(Duration::from_millis(5)));
    net.transport(3)
        .serve(Echo::delayed(Duration::from_millis(7)));
    let mut calls = JoinSet::new();
    for i in 0u32..300 {
        let t1 = Arc::clone(&t1);
        let to = 2 + NodeId::from(i % 2);
        calls.spawn(async move {
            // The first byte sets the handler's delay, so later calls often finish first.
            let request = [(i % 8) as u8, (i >> 8) as u8, i as u8, 0x5A];
            let result = t1
                .call(
                    to,
                    Bytes::copy_from_slice(&request),
                    Duration::from_secs(10),
                )
                .await;
            (to, request, result)
        });
    }
    let mut answered = 0;
    while let Some(joined) = calls.join_next().await {
        let Ok((to, request, result)) = joined else {
            fail!("a calling task panicked");
        };
        match result {
            Ok(reply) if reply == Echo::reply(1, &request) => answered += 1,
            Ok(reply) => {
                fail!("call to node {to} with {request:?} got someone else's reply {reply:?}")
            }
            Err(e) => fail!("call to node {to} with {request:?} failed: {e}"),
        }
    }
    ensure!(answered == 300, "{answered} of 300 calls answered");
    Ok(())
}

/// After a peer restarts (same id and address), calls reach it again within a few seconds, in
/// both directions; while it is gone, calls fail instead of hanging.
pub async fn reconnect_after_restart(net: Arc<dyn TestNetwork>) -> Result<(), Failure> {
    let t1 = net.transport(1);
    t1.serve(Echo::new());
    net.transport(2).serve(Echo::new());
    expect_reply(&*t1, 2, b"before", PROMPT * 5).await?;

    let t2 = net.restart(2).await?;
    // The successor is not serving yet: nothing may answer.
    let result = t1
        .call(2, Bytes::from_static(b"gap"), Duration::from_millis(500))
        .await;
    ensure!(
        result.is_err(),
        "a restarted node answered {result:?} before it installed a handler"
    );
    t2.serve(Echo::new());
    let (reply, took) = call_until_ok(&*t1, 2, b"after", Duration::from_secs(5)).await?;
    ensure!(
        reply == Echo::reply(1, b"after"),
        "the restarted node answered {reply:?}"
    );
    let (reply, _) = call_until_ok(&*t2, 1, b"back", Duration::from_secs(5)).await?;
    ensure!(
        reply == Echo::reply(2, b"back"),
        "node 1 answered the restarted node with {reply:?}"
    );
    ensure!(took < Duration::from_secs(5), "reconnecting took {took:?}");
    Ok(())
}

fn pattern(len: usize, seed: u8) -> Bytes {
    Bytes::from(
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add((i >> 13) as u8) ^ seed)
            .collect::<Vec<u8>>(),
    )
}

/// A large request, a large reply and a large one-way message cross intact, and small calls on
/// the same link keep answering promptly while the large request is in flight.
pub async fn large_message(net: Arc<dyn TestNetwork>) -> Result<(), Failure> {
    let len = net.large_message_len();
    let echo_limit = 8 << 20;
    let keep = Keep::new(echo_limit);
    let (t1, t2) = (net.transport(1), net.transport(2));
    t1.serve(Echo::new());
    t2.serve(Arc::clone(&keep) as _);
    expect_reply(&*t1, 2, b"warm up", PROMPT * 5).await?;

    let big = pattern(len, 1);
    let large_call = {
        let t1 = Arc::clone(&t1);
        let big = big.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let result = t1.call(2, big, Duration::from_secs(30)).await;
            (result, start.elapsed())
        })
    };
    // Heartbeat-sized calls while the large request travels.
    let mut slowest = Duration::ZERO;
    let mut small_calls = 0u32;
    while !large_call.is_finished() && small_calls < 200 {
        let start = Instant::now();
        let reply = expect_reply(&*t1, 2, b"hb", PROMPT * 2).await?;
        ensure!(&reply[..] == b"hb", "a small call got {reply:?}");
        slowest = slowest.max(start.elapsed());
        small_calls += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let Ok((result, took)) = large_call.await else {
        fail!("the large call's task panicked");
    };
    let reply = result.map_err(|e| Failure::new(format!("{len}-byte call failed: {e}")))?;
    ensure!(
        reply[..] == (len as u64).to_be_bytes(),
        "the {len}-byte call was answered {reply:?} (the length it arrived with)"
    );
    ensure!(
        keep.take_call().is_some_and(|got| got == big),
        "the {len}-byte request arrived corrupted"
    );
    ensure!(
        slowest < Duration::from_millis(500),
        "a small call took {slowest:?} while a {len}-byte call was in flight ({took:?}); large \
         transfers must not hold up small messages"
    );

    let medium = pattern(echo_limit, 2);
    let reply = expect_reply(&*t1, 2, &medium, Duration::from_secs(30)).await?;
    ensure!(
        reply == medium,
        "an {echo_limit}-byte reply arrived corrupted"
    );

    let big_one_way = pattern(len, 3);
    t1.send(2, big_one_way.clone());
    t1.send(2, Bytes::from_static(b"after the big one"));
    let received = keep.messages().wait_for(2, Duration::from_secs(30)).await;
    ensure!(
        received.len() == 2,
        "{} of 2 one-way messages arrived",
        received.len()
    );
    ensure!(
        received[0].1 == big_one_way,
        "the {len}-byte one-way message arrived corrupted or out of order"
    );
    ensure!(
        &received[1].1[..] == b"after the big one",
        "the small one-way message after the large one arrived as {:?}",
        received[1].1
    );
    Ok(())
}

/// After `stop_serving`, a node looks down: calls to it fail promptly with `Unreachable`, and
/// one-way messages to it are not delivered. `serve` brings it back.
pub async fn stop_serving_looks_down(net: Arc<dyn TestNetwork>) -> Result<(), Failure> {
    let (t1, t2) = (net.transport(1), net.transport(2));
    t1.serve(Echo::new());
    let echo = Echo::new();
    t2.serve(Arc::clone(&echo) as _);
    expect_reply(&*t1, 2, b"up", PROMPT * 5).await?;

    t2.stop_serving();
    // Give a connection-oriented transport time to see the close before judging.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for attempt in 0..3 {
        let start = Instant::now();
        let result = t1
            .call(2, Bytes::from_static(b"down?"), Duration::from_secs(10))
            .await;
        let took = start.elapsed();
        ensure!(
            result == Err(TransportError::Unreachable(2)),
            "call {attempt} to a node that stopped serving returned {result:?}, expected \
             Unreachable(2)"
        );
        ensure!(took < PROMPT, "call {attempt} took {took:?} to fail");
    }
    t1.send(2, Bytes::from_static(b"lost"));
    tokio::time::sleep(Duration::from_millis(100)).await;

    let echo_again = Echo::new();
    t2.serve(Arc::clone(&echo_again) as _);
    call_until_ok(&*t1, 2, b"back", Duration::from_secs(5)).await?;
    let start = Instant::now();
    let mut sent = 0u32;
    while echo_again.received().is_empty() && start.elapsed() < Duration::from_secs(5) {
        t1.send(2, Bytes::from(format!("after {sent}")));
        sent += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all: Vec<Bytes> = echo
        .received()
        .into_iter()
        .chain(echo_again.received())
        .map(|(_, m)| m)
        .collect();
    ensure!(
        !all.iter().any(|m| &m[..] == b"lost"),
        "a one-way message sent while node 2 was not serving was delivered"
    );
    ensure!(
        !echo_again.received().is_empty(),
        "no one-way message reached node 2 after it served again"
    );
    Ok(())
}
