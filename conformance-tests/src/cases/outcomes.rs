//! Write outcomes under leader changes: "not applied" is a promise that the write can never
//! commit, so a client may retry it elsewhere. An engine may make it only when it knows.

use std::time::Duration;

use raftengine::sim::LinkFaults;
use raftengine::{ErrorKind, NodeId, Role, WriteOutcome};
use tokio::time::Instant;

use crate::harness::{Backend, Cluster, Failure, Harness};
use crate::{ensure, fail};

const MS: Duration = Duration::from_millis(1);

/// Polls `condition` every virtual millisecond for at most `limit`.
async fn within<B: Backend>(
    cluster: &Cluster<B>,
    limit: Duration,
    mut condition: impl FnMut(&Cluster<B>) -> bool,
) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition(cluster) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(MS).await;
    }
}

fn term_of<B: Backend>(cluster: &Cluster<B>, id: NodeId) -> u64 {
    cluster.statuses().get(&id).map_or(0, |s| s.term)
}

/// Five voters. Leader A appends W, which reaches only B. C wins the next term with D and E,
/// and its first entry reaches only A, which steps down and overwrites W in one step. B then
/// wins a later term with D and E (its log is the most up to date among them) and commits W.
/// An engine that answered A's client "not applied" (because A's own log lost W) has promised
/// something false: the retried write would apply twice. Whatever A answered, a "not applied"
/// W must never be applied anywhere.
pub async fn overwritten_entry_is_not_reported_not_applied<B: Backend>(
    h: &Harness<B>,
) -> Result<(), Failure> {
    let cluster = h.cluster(5).await?;
    let wait = cluster.election_wait();
    let a = cluster.wait_for_leader(wait).await?;
    let rest: Vec<NodeId> = cluster.ids().into_iter().filter(|&i| i != a).collect();
    let (b, c, d, e) = (rest[0], rest[1], rest[2], rest[3]);
    let net = cluster.net().clone();

    // A keeps only B; W is appended on A and B and cannot commit.
    for &peer in &[c, d, e] {
        net.partition(a, peer);
    }
    let (key, value) = (7, 70);
    let write = {
        let cluster = cluster.clone();
        tokio::spawn(async move { cluster.put(a, key, value).await })
    };
    let a_last = |cluster: &Cluster<B>| cluster.statuses().get(&a).map_or(0, |s| s.last_log_index);
    let target = {
        let before = a_last(&cluster);
        ensure!(
            within(&cluster, 200 * MS, |cl| a_last(cl) > before).await,
            "node {a} never appended the write"
        );
        a_last(&cluster)
    };
    let b_has_it = within(&cluster, 200 * MS, |cl| {
        cl.statuses()
            .get(&b)
            .is_some_and(|s| s.last_log_index >= target)
    })
    .await;
    ensure!(
        b_has_it,
        "node {b} never received the write: {}",
        cluster.describe()
    );

    // A's clock stands still from here on, so A cannot step down on its own (no election
    // ticks, no quorum check) before C's traffic reaches it. (Engines that time elections on
    // another clock may step down earlier; the outcome rule is checked either way.)
    let a_clock = cluster.clock(a)?;
    a_clock.set_rate(0.0);
    // B goes silent. Only C can gather three votes (D and E cannot reach each other); C's
    // traffic to A is held, so A hears the vote request and C's first entry together.
    let a_term = term_of(&cluster, a);
    net.isolate(b);
    net.partition(d, e);
    net.set_link(
        c,
        a,
        LinkFaults {
            held: true,
            ..LinkFaults::default()
        },
    );
    net.set_link(
        a,
        c,
        LinkFaults {
            blocked: true,
            ..LinkFaults::default()
        },
    );
    for &voter in &[d, e] {
        // Vote answers travel slowly, so C's first entry to D and E can be held in time.
        net.set_link(
            voter,
            c,
            LinkFaults {
                delay: 5 * MS,
                ..LinkFaults::default()
            },
        );
    }
    let voted = within(&cluster, cluster.election_wait(), |cl| {
        term_of(cl, d) > a_term || term_of(cl, e) > a_term
    })
    .await;
    if !voted {
        a_clock.set_rate(1.0);
        println!("{}: no election among C, D, E; nothing to probe", B::NAME);
        return finish(&cluster, write, key, value, None).await;
    }
    net.hold(c, d);
    net.hold(c, e);
    let c_leads = within(&cluster, 100 * MS, |cl| {
        cl.statuses()
            .get(&c)
            .is_some_and(|s| s.role == Role::Leader)
    })
    .await;
    if !c_leads {
        a_clock.set_rate(1.0);
        println!("{}: node {c} did not win; nothing to probe", B::NAME);
        return finish(&cluster, write, key, value, None).await;
    }
    let c_term = term_of(&cluster, c);
    net.release(c, a);
    let a_followed = within(&cluster, 100 * MS, |cl| term_of(cl, a) >= c_term).await;
    println!(
        "{}: node {c} leads term {c_term}; node {a} followed: {a_followed}",
        B::NAME
    );
    a_clock.set_rate(1.0);
    // Now C and A go silent; B, D and E elect B, which holds W.
    net.isolate(c);
    net.isolate(a);
    for (x, y) in [(b, d), (b, e), (d, e)] {
        net.set_link(x, y, LinkFaults::default());
        net.set_link(y, x, LinkFaults::default());
    }
    let b_leads = cluster
        .wait_for_leader_among(&[b, d, e], cluster.election_wait())
        .await;
    println!("{}: leader among B, D, E: {b_leads:?}", B::NAME);
    finish(&cluster, write, key, value, Some(b)).await
}

async fn finish<B: Backend>(
    cluster: &Cluster<B>,
    write: tokio::task::JoinHandle<Result<raftengine::Result<u64>, Failure>>,
    key: u64,
    value: u64,
    holder: Option<NodeId>,
) -> Result<(), Failure> {
    let answer = cluster
        .bounded("the write on the old leader", write)
        .await?
        .map_err(|err| Failure::new(format!("writer task panicked: {err}")))??;
    println!("{}: the write's answer: {answer:?}", B::NAME);
    let applied_on_holder = holder.is_some_and(|id| {
        cluster
            .state_machine(id)
            .is_ok_and(|sm| sm.read(|sm| sm.has_applied_write(key, value)))
    });
    println!(
        "{}: the write was applied on node {holder:?}: {applied_on_holder}",
        B::NAME
    );
    if let Err(err) = &answer
        && err.outcome() == WriteOutcome::NotApplied
    {
        if applied_on_holder {
            fail!(
                "the write was answered {:?} with outcome NotApplied, yet node {holder:?} applied \
                 it",
                err.kind()
            );
        }
        ensure!(
            matches!(
                err.kind(),
                ErrorKind::NotLeader { .. }
                    | ErrorKind::LeadershipLost
                    | ErrorKind::TransferInProgress { .. }
                    | ErrorKind::Busy
                    | ErrorKind::Rejected(_)
                    | ErrorKind::Unavailable
            ),
            "unexpected NotApplied kind {:?}",
            err.kind()
        );
    }
    cluster.heal_all();
    cluster.wait_converged(cluster.election_wait()).await?;
    if let Err(err) = &answer
        && err.outcome() == WriteOutcome::NotApplied
    {
        cluster.assert_never_applied(key, value, "its writer was told it was not applied")?;
    }
    cluster.shutdown().await
}

/// A promotion interrupted between its two steps (the joint configuration is committed, then
/// the leader is cut off before the final configuration commits) must not wedge membership:
/// once a leader is back, membership changes succeed again. And if the interrupted call said
/// "not applied", the learner must not end up a voter.
pub async fn interrupted_membership_change_does_not_wedge<B: Backend>(
    h: &Harness<B>,
) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let wait = cluster.election_wait();
    let leader = cluster.wait_for_leader(wait).await?;
    cluster.add_node(4).await?;
    let engine = cluster.engine(leader)?;
    cluster
        .bounded("add_learner(4)", engine.add_learner(4))
        .await?
        .map_err(|err| Failure::new(format!("add_learner(4) failed: {err}")))?;
    cluster.wait_converged(wait).await?;
    // Each round trip now takes a few virtual milliseconds, so the poll below sees the joint
    // configuration commit before the final one can.
    cluster.net().set_default_faults(LinkFaults {
        delay: 2 * MS,
        ..LinkFaults::default()
    });
    let promote = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.promote_learner(4).await })
    };
    let mut joint_index = None;
    let cut = within(&cluster, 2 * wait, |cl| {
        let Some(status) = cl.statuses().get(&leader).cloned() else {
            return false;
        };
        if status.membership.joint && joint_index.is_none() {
            joint_index = Some(status.last_log_index);
        }
        joint_index.is_some_and(|index| status.commit_index >= index)
    })
    .await;
    if cut {
        cluster.isolate(leader);
    }
    let answer = cluster
        .bounded("promote_learner(4) on the leader being cut off", promote)
        .await?
        .map_err(|err| Failure::new(format!("promote task panicked: {err}")))?;
    println!(
        "{}: joint configuration committed at index {joint_index:?}, leader cut off: {cut}; \
         promote_learner(4) answered {answer:?}",
        B::NAME
    );
    cluster.net().set_default_faults(LinkFaults::default());
    cluster.heal();
    let new = cluster.wait_for_leader(wait).await?;

    // Membership must be changeable again: remove a voter that is neither the leader nor 4.
    let removed = cluster
        .ids()
        .into_iter()
        .find(|&id| id != new && id != 4)
        .ok_or_else(|| Failure::new("no voter to remove"))?;
    let deadline = Instant::now() + wait;
    let mut last = String::new();
    let changed = loop {
        let Some(leader) = cluster.leader() else {
            tokio::time::sleep(10 * MS).await;
            continue;
        };
        let engine = cluster.engine(leader)?;
        match cluster
            .bounded(
                format!("remove_node({removed})"),
                engine.remove_node(removed),
            )
            .await?
        {
            Ok(membership) => break Some(membership),
            Err(err) => last = err.to_string(),
        }
        if Instant::now() >= deadline {
            break None;
        }
        tokio::time::sleep(50 * MS).await;
    };
    let Some(membership) = changed else {
        fail!(
            "no membership change succeeded within {wait:?} after an interrupted promotion \
             (last answer: {last}): {}",
            cluster.describe()
        );
    };
    println!(
        "{}: after the interruption, remove_node({removed}) gave {membership:?}",
        B::NAME
    );
    ensure!(
        !membership.joint,
        "membership is still joint: {membership:?}"
    );
    if let Err(err) = &answer
        && err.outcome() == WriteOutcome::NotApplied
    {
        ensure!(
            !membership.voters.contains(&4),
            "promote_learner(4) was answered {:?} (not applied), yet node 4 is a voter: {membership:?}",
            err.kind()
        );
    }
    cluster.shutdown().await
}
