//! `raftkv cluster`: a local cluster of `raftkv serve` child processes on free loopback ports.
//! Every child is stopped and reaped when the command ends: on Ctrl-C, when any child exits,
//! or on an error while starting.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tokio::process::{Child, Command};

use crate::cli::ClusterArgs;

/// Children that are killed and reaped when dropped, whatever path leaves the command.
struct Children(Vec<(u64, Child)>);

impl Drop for Children {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = child.start_kill();
        }
        // Reap synchronously: a dropped tokio child is reaped eventually, but the command is
        // about to exit and must not leave zombies or running nodes behind.
        for (_, child) in &mut self.0 {
            for _ in 0..200 {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
    }
}

/// Free loopback addresses: bound to port 0, read back, released. Another process could take
/// one in between; the child then fails to bind and the cluster stops with its error.
pub fn free_addrs(count: usize) -> anyhow::Result<Vec<SocketAddr>> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").context("finding a free loopback port"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().context("reading a free port"))
        .collect()
}

fn default_dir() -> PathBuf {
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    std::env::temp_dir().join(format!("raftkv-cluster-{}-{stamp}", std::process::id()))
}

/// Runs the cluster until Ctrl-C or until a child exits.
pub async fn run(args: ClusterArgs) -> anyhow::Result<()> {
    let n = usize::try_from(args.nodes).context("--nodes")?;
    let dir = args.data_dir.clone().unwrap_or_else(default_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let ids: Vec<u64> = (1..=args.nodes).collect();
    let tls_dir = dir.join("tls");
    if !args.insecure && !tls_dir.join("ca.pem").exists() {
        crate::certs::write_cluster_certs("raftkv-local", &ids, &tls_dir)?;
    }
    let addrs = free_addrs(3 * n)?;
    let (peer, rest) = addrs.split_at(n);
    let (redis, metrics) = rest.split_at(n);
    let exe = std::env::current_exe().context("locating the raftkv binary")?;
    let mut children = Children(Vec::new());
    for (i, &id) in ids.iter().enumerate() {
        let mut command = Command::new(&exe);
        command
            .arg("serve")
            .args(["--id", &id.to_string()])
            .args(["--listen", &peer[i].to_string()])
            .args(["--redis", &redis[i].to_string()])
            .args(["--metrics", &metrics[i].to_string()])
            .args(["--backend", args.backend.name()])
            .arg("--data-dir")
            .arg(dir.join(format!("node-{id}")));
        for (j, &other) in ids.iter().enumerate() {
            if other != id {
                command.args(["--peer", &format!("{other}={}", peer[j])]);
            }
        }
        security_args(&mut command, args.insecure, &tls_dir);
        if args.fault_invalidate_lease_on_error {
            command.arg("--fault-invalidate-lease-on-error");
        }
        command.stdin(Stdio::null()).kill_on_drop(true);
        let child = command
            .spawn()
            .with_context(|| format!("starting node {id} ({})", exe.display()))?;
        children.0.push((id, child));
    }
    println!(
        "raftkv cluster: {n} nodes on {}, data in {}",
        args.backend.name(),
        dir.display()
    );
    for (i, id) in ids.iter().enumerate() {
        println!(
            "  node {id}: redis-cli -p {}    metrics http://{}/metrics",
            redis[i].port(),
            metrics[i]
        );
    }
    println!("Ctrl-C stops every node.");
    let outcome = watch_children(&mut children).await;
    drop(children);
    println!("raftkv cluster: stopped; data kept in {}", dir.display());
    outcome
}

fn security_args(command: &mut Command, insecure: bool, tls_dir: &Path) {
    if insecure {
        command.arg("--insecure");
    } else {
        command.arg("--tls-dir").arg(tls_dir);
    }
}

async fn watch_children(children: &mut Children) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = tick.tick() => {
                for (id, child) in &mut children.0 {
                    if let Some(status) = child.try_wait().with_context(|| format!("watching node {id}"))? {
                        anyhow::bail!("node {id} exited ({status}); stopping the others");
                    }
                }
            }
        }
    }
}
