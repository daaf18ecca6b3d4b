//! Certificates for a cluster: one CA, and per node a certificate naming its node id.
//!
//! A node's certificate carries the DNS subject alternative name `node-<id>` (see
//! [`node_name`]); a client checks the server it dialled presents exactly that name, and a server
//! checks the client's certificate names the node id the client claims in its hello frame.

use raftengine::NodeId;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

/// The DNS name a node's certificate carries: `node-<id>`.
pub fn node_name(id: NodeId) -> String {
    format!("node-{id}")
}

/// Why certificates could not be generated.
#[derive(Debug, thiserror::Error)]
#[error("certificate generation failed: {0}")]
pub struct CertError(#[from] rcgen::Error);

/// A cluster's certificate authority: signs node certificates.
pub struct ClusterCa {
    cert: Certificate,
    key: KeyPair,
}

impl std::fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key stays out of logs.
        f.debug_struct("ClusterCa").finish_non_exhaustive()
    }
}

/// A node's certificate and private key, PEM encoded.
#[derive(Clone)]
pub struct NodeCert {
    /// The node the certificate names.
    pub id: NodeId,
    /// The certificate (PEM).
    pub cert_pem: String,
    /// Its private key (PKCS#8 PEM).
    pub key_pem: String,
}

impl std::fmt::Debug for NodeCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCert")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// When an issued certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// First valid day (year, month, day), UTC.
    pub not_before: (i32, u8, u8),
    /// Last valid day (year, month, day), UTC.
    pub not_after: (i32, u8, u8),
}

impl Default for Validity {
    /// From 2024-01-01 to 4095-12-31: a cluster's certificates do not silently expire; rotate
    /// them by issuing new ones.
    fn default() -> Self {
        Self {
            not_before: (2024, 1, 1),
            not_after: (4095, 12, 31),
        }
    }
}

impl ClusterCa {
    /// A new CA with a fresh key, named `name`.
    pub fn generate(name: &str) -> Result<Self, CertError> {
        Self::with_key(name, KeyPair::generate()?)
    }

    /// The CA named `name` whose private key is `key_pem` (from [`ClusterCa::key_pem`]): issues
    /// certificates that verify against the CA certificate generated with that name and key
    /// earlier, so nodes can be added to a running cluster.
    pub fn from_key_pem(name: &str, key_pem: &str) -> Result<Self, CertError> {
        Self::with_key(name, KeyPair::from_pem(key_pem)?)
    }

    fn with_key(name: &str, key: KeyPair) -> Result<Self, CertError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        set_validity(&mut params, Validity::default());
        let cert = params.self_signed(&key)?;
        Ok(Self { cert, key })
    }

    /// The CA certificate (PEM) every node trusts.
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// The CA's private key (PKCS#8 PEM): keep it off the nodes.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// Issues the certificate of node `id` (valid for [`Validity::default`]).
    pub fn issue(&self, id: NodeId) -> Result<NodeCert, CertError> {
        self.issue_with_validity(id, Validity::default())
    }

    /// Issues the certificate of node `id` valid over `validity` (tests use an expired one).
    pub fn issue_with_validity(
        &self,
        id: NodeId,
        validity: Validity,
    ) -> Result<NodeCert, CertError> {
        let mut params = CertificateParams::new(vec![node_name(id)])?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, node_name(id));
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        // Every node is both a server (peers dial it) and a client (it dials peers).
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        set_validity(&mut params, validity);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        Ok(NodeCert {
            id,
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn set_validity(params: &mut CertificateParams, validity: Validity) {
    let (y, m, d) = validity.not_before;
    params.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = validity.not_after;
    params.not_after = rcgen::date_time_ymd(y, m, d);
}

/// Generates a CA named `name` and a certificate for each of `ids`: what `raftkv certs` writes
/// out (the CA certificate to every node, each node its own certificate and key).
pub fn generate_cluster_certs(
    name: &str,
    ids: &[NodeId],
) -> Result<(ClusterCa, Vec<NodeCert>), CertError> {
    let ca = ClusterCa::generate(name)?;
    let certs = ids
        .iter()
        .map(|&id| ca.issue(id))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((ca, certs))
}
