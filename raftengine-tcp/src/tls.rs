//! Mutual TLS: rustls on the ring provider, one CA per cluster, node ids in certificates.

use std::sync::Arc;

use raftengine::NodeId;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};

use crate::certs::{NodeCert, node_name};

/// The PEM material of one node: the cluster's CA certificate, the node's certificate and key.
#[derive(Clone)]
pub struct TlsIdentity {
    /// CA certificate(s) of the cluster (PEM); peers must present certificates issued by it.
    pub ca_pem: String,
    /// This node's certificate chain (PEM).
    pub cert_pem: String,
    /// This node's private key (PEM, PKCS#8, PKCS#1 or SEC1).
    pub key_pem: String,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity").finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// The identity of the node `cert` was issued for, trusting `ca_pem`.
    pub fn new(ca_pem: impl Into<String>, cert: &NodeCert) -> Self {
        Self {
            ca_pem: ca_pem.into(),
            cert_pem: cert.cert_pem.clone(),
            key_pem: cert.key_pem.clone(),
        }
    }
}

/// Why TLS could not be set up from the configured material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM section could not be read.
    #[error("invalid PEM in {what}: {source}")]
    Pem {
        /// Which input.
        what: &'static str,
        /// The parser's reason.
        source: rustls_pki_types::pem::Error,
    },
    /// The input had no certificate or key.
    #[error("no {0} found in the PEM input")]
    Missing(&'static str),
    /// rustls refused the material.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client verifier could not be built (e.g. an empty CA store).
    #[error("client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// Client and server configurations built once per transport.
#[derive(Clone)]
pub(crate) struct TlsSetup {
    pub(crate) server: Arc<ServerConfig>,
    pub(crate) client: Arc<ClientConfig>,
}

impl std::fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSetup").finish_non_exhaustive()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsSetup {
    pub(crate) fn new(identity: &TlsIdentity) -> Result<Self, TlsError> {
        let mut roots = RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(identity.ca_pem.as_bytes()) {
            let ca = ca.map_err(|source| TlsError::Pem {
                what: "CA certificate",
                source,
            })?;
            roots.add(ca)?;
        }
        if roots.is_empty() {
            return Err(TlsError::Missing("CA certificate"));
        }
        let roots = Arc::new(roots);
        let chain = CertificateDer::pem_slice_iter(identity.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| TlsError::Pem {
                what: "node certificate",
                source,
            })?;
        if chain.is_empty() {
            return Err(TlsError::Missing("node certificate"));
        }
        let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes()).map_err(|source| {
            TlsError::Pem {
                what: "private key",
                source,
            }
        })?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::clone(&roots),
            provider(),
        )
        .build()?;
        let server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())?;
        let client = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)?;
        Ok(Self {
            server: Arc::new(server),
            client: Arc::new(client),
        })
    }
}

/// The name a client expects on the certificate of the node it dials.
pub(crate) fn server_name(id: NodeId) -> Option<ServerName<'static>> {
    ServerName::try_from(node_name(id)).ok()
}

/// Whether the (already chain-verified) certificate `cert` names node `id`.
pub(crate) fn cert_names_node(cert: &CertificateDer<'_>, id: NodeId) -> Result<(), String> {
    let parsed = rustls::server::ParsedCertificate::try_from(cert).map_err(|e| e.to_string())?;
    let name = server_name(id).ok_or_else(|| format!("node id {id} is not a valid name"))?;
    rustls::client::verify_server_name(&parsed, &name).map_err(|e| e.to_string())
}
