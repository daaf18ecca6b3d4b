//! `raftkv certs`: a cluster CA and one certificate per node, for the peer transport's mutual
//! TLS. The CA's private key is not written: nodes only need its certificate, and without the
//! key nobody can mint another node identity from these files.

use std::path::Path;

use anyhow::{Context, bail};

/// Writes `ca.pem`, `node-<id>.pem` and `node-<id>.key` (mode 0600) for every id into `out`.
/// Refuses to overwrite an existing `ca.pem`, so a running cluster's material is never replaced
/// by accident.
pub fn write_cluster_certs(name: &str, ids: &[u64], out: &Path) -> anyhow::Result<()> {
    if ids.is_empty() || ids.contains(&0) {
        bail!("--nodes needs node ids from 1");
    }
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != ids.len() {
        bail!("--nodes lists a node twice");
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let ca_path = out.join("ca.pem");
    if ca_path.exists() {
        bail!(
            "{} exists already; use a new directory to start a new cluster",
            ca_path.display()
        );
    }
    let (ca, certs) = raftengine_tcp::generate_cluster_certs(name, ids)
        .context("generating the cluster certificates")?;
    write(&ca_path, &ca.cert_pem(), false)?;
    for cert in certs {
        write(
            &out.join(format!("node-{}.pem", cert.id)),
            &cert.cert_pem,
            false,
        )?;
        write(
            &out.join(format!("node-{}.key", cert.id)),
            &cert.key_pem,
            true,
        )?;
    }
    Ok(())
}

fn write(path: &Path, contents: &str, secret: bool) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    if secret {
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_one_identity_per_node_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        write_cluster_certs("test", &[1, 2], dir.path()).unwrap();
        for name in [
            "ca.pem",
            "node-1.pem",
            "node-1.key",
            "node-2.pem",
            "node-2.key",
        ] {
            let text = std::fs::read_to_string(dir.path().join(name)).unwrap();
            assert!(text.contains("-----BEGIN"), "{name}");
        }
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join("node-1.key"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o077, 0, "keys are private");
        let again = write_cluster_certs("test", &[1], dir.path()).unwrap_err();
        assert!(format!("{again:#}").contains("exists already"));
        assert!(write_cluster_certs("t", &[1, 1], &dir.path().join("x")).is_err());
    }
}
