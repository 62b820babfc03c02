//! rustls configurations: TLS 1.2 and 1.3 only, the DECNET CA as the only trust root,
//! servers that hand the verified peer certificate to each request, and clients that pin
//! the server's leaf fingerprint and role inside the verifier of the very connection that
//! carries the request (SW-5, SW-6, SW-7).

use std::net::SocketAddr;
use std::sync::Arc;

use decnet_store::Fingerprint;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::pki::{CertInfo, Identity, Role, cert_info};
use crate::{Error, Result};

/// The protocol versions every DECNET endpoint speaks: TLS 1.2 is the floor.
pub static VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The ring crypto provider.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls(what: &str) -> impl FnOnce(rustls::Error) -> Error + '_ {
    move |e| Error::Tls(format!("{what}: {e}"))
}

/// The CA certificates of a PEM bundle as a root store.
///
/// # Errors
/// [`Error::Tls`] for a bundle with no usable certificate.
pub fn roots(ca_pem: &str) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| Error::Tls(format!("CA bundle: {e}")))?;
        store.add(cert).map_err(tls("CA certificate"))?;
    }
    if store.is_empty() {
        return Err(Error::Tls("CA bundle holds no certificate".into()));
    }
    Ok(store)
}

fn chain_and_key(id: &Identity) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let chain = CertificateDer::pem_slice_iter(id.cert_pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Tls(format!("certificate: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes())
        .map_err(|e| Error::Tls(format!("private key: {e}")))?;
    Ok((chain, key))
}

/// Whether a server asks for a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// A CA-signed client certificate is mandatory (agent).
    Required,
    /// A client certificate is verified when presented; routes decide what they need
    /// (the controller's worker listener, whose enrollment route serves certless
    /// workers holding a one-time token).
    Optional,
}

/// A server configuration presenting `id`, verifying clients against `id`'s CA.
///
/// # Errors
/// [`Error::Tls`].
pub fn server_config(id: &Identity, auth: ClientAuth) -> Result<Arc<rustls::ServerConfig>> {
    let provider = provider();
    let builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots(&id.ca_pem)?), provider.clone());
    let verifier = match auth {
        ClientAuth::Required => builder.build(),
        ClientAuth::Optional => builder.allow_unauthenticated().build(),
    }
    .map_err(|e| Error::Tls(format!("client verifier: {e}")))?;
    let (chain, key) = chain_and_key(id)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(VERSIONS)
        .map_err(tls("protocol versions"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(tls("server certificate"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The server a client expects: the exact leaf (fingerprint) and its role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerPin {
    /// SHA-256 of the server's leaf certificate.
    pub fingerprint: Fingerprint,
    /// The role the leaf must carry.
    pub role: Role,
}

/// Verifies a server by pin and role, and (when the CA is known) its chain to the CA.
/// Host names are not checked: the pin names the exact certificate, which is stronger.
#[derive(Debug)]
struct PinnedVerifier {
    pin: ServerPin,
    roots: Option<Arc<RootCertStore>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let actual = Fingerprint::of_der(end_entity);
        if actual != self.pin.fingerprint {
            tracing::warn!(
                expected = %&self.pin.fingerprint.as_str()[..16],
                actual = %&actual.as_str()[..16],
                "Server certificate does not match the pinned fingerprint"
            );
            return Err(rustls::Error::General(format!(
                "server certificate fingerprint mismatch (expected {}…, got {}…)",
                &self.pin.fingerprint.as_str()[..16],
                &actual.as_str()[..16]
            )));
        }
        let info = cert_info(end_entity).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        if info.role != Some(self.pin.role) {
            return Err(rustls::Error::General(format!(
                "server certificate lacks the {} role",
                self.pin.role
            )));
        }
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A client configuration that presents `identity` (when given) and accepts only the
/// server pinned by `pin`. With `ca_pem` the server's chain must also lead to that CA;
/// without it (only while enrolling, before the CA is known) the pin alone decides.
///
/// # Errors
/// [`Error::Tls`].
pub fn client_config(
    identity: Option<&Identity>,
    ca_pem: Option<&str>,
    pin: ServerPin,
) -> Result<rustls::ClientConfig> {
    let provider = provider();
    let verifier = Arc::new(PinnedVerifier {
        pin,
        roots: ca_pem.map(roots).transpose()?.map(Arc::new),
        algorithms: provider.signature_verification_algorithms,
    });
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(VERSIONS)
        .map_err(tls("protocol versions"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        Some(id) => {
            let (chain, key) = chain_and_key(id)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(tls("client certificate"))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Who is on the other end of a connection, attached to every request it carries (SW-44).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The TCP peer.
    pub remote: SocketAddr,
    /// The verified client certificate, when one was presented.
    pub cert: Option<CertInfo>,
}

impl Peer {
    /// The peer of a TLS server connection: its first certificate (already verified by
    /// the connection's client verifier).
    pub fn from_tls(remote: SocketAddr, conn: &rustls::ServerConnection) -> Peer {
        let cert = conn
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|der| cert_info(der).ok());
        Peer { remote, cert }
    }

    /// A plaintext peer (loopback operator listener).
    pub fn plain(remote: SocketAddr) -> Peer {
        Peer { remote, cert: None }
    }

    /// The certificate's role, if any.
    pub fn role(&self) -> Option<Role> {
        self.cert.as_ref().and_then(|c| c.role)
    }

    /// The certificate's fingerprint, if any.
    pub fn fingerprint(&self) -> Option<&Fingerprint> {
        self.cert.as_ref().map(|c| &c.fingerprint)
    }
}
