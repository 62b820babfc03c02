//! `https`: the `http` site over TLS (rustls, TLS 1.2 and 1.3, ALPN per `http_versions`)
//! with the persona's certificate or a self-signed one whose key derives from the decky
//! seed (stable per decky) and whose subject is `tls_cn` or the decky hostname.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rand::seq::SliceRandom;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SerialNumber};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration as TimeDuration, OffsetDateTime, macros::datetime};
use tokio_rustls::TlsAcceptor;

use crate::Error;
use crate::event::{Event, kind};
use crate::persona::Persona;
use crate::server::{BoxFuture, Conn, Emulator, ServiceCtx};
use crate::services::http::{ConnInfo, Proto, Site, serve_http};

/// Longest wait for a complete TLS handshake (nginx counts it in `client_header_timeout`).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// The `https` emulator.
pub struct Https {
    site: Arc<Site>,
    acceptor: TlsAcceptor,
}

/// Registry constructor: builds the site and the TLS configuration (generating the
/// certificate when none is supplied).
///
/// # Errors
/// [`Error::Config`] for bad persona values or an unusable certificate/key.
pub fn build(ctx: &ServiceCtx) -> Result<Arc<dyn Emulator>, Error> {
    let site = Arc::new(Site::from_persona(&ctx.persona)?);
    let config = tls_config(&ctx.persona, site.h2)?;
    Ok(Arc::new(Https {
        site,
        acceptor: TlsAcceptor::from(Arc::new(config)),
    }))
}

/// The subject name of the self-signed certificate: `tls_cn`, else the decky hostname.
/// The internal decky name is never used (SV-16): without a cosmetic hostname a seeded
/// generic one is made up.
pub fn certificate_name(persona: &Persona) -> String {
    if let Some(cn) = persona.get("tls_cn") {
        return cn.to_owned();
    }
    if persona.hostname != persona.node_name {
        return persona.hostname.clone();
    }
    let mut rng = persona.rng("https-cert-name");
    let stem = ["www", "web", "srv", "intranet", "portal", "app"]
        .choose(&mut rng)
        .copied()
        .unwrap_or("www");
    format!("{stem}{:02}", rng.gen_range(1..40))
}

/// The rustls configuration of this decky.
///
/// # Errors
/// [`Error::Config`] for a PEM that does not parse or a key that does not match.
pub fn tls_config(persona: &Persona, h2: bool) -> Result<ServerConfig, Error> {
    let (certs, key) = match (persona.get("tls_cert"), persona.get("tls_key")) {
        (Some(cert), Some(key)) => {
            let certs = CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Error::Config(format!("tls_cert: {e}")))?;
            if certs.is_empty() {
                return Err(Error::Config("tls_cert: no certificate in PEM".into()));
            }
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
                .map_err(|e| Error::Config(format!("tls_key: {e}")))?;
            (certs, key)
        }
        (None, None) => self_signed(persona, &certificate_name(persona))?,
        _ => {
            return Err(Error::Config(
                "tls_cert and tls_key must be given together".into(),
            ));
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| Error::Config(format!("tls: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::Config(format!("tls certificate: {e}")))?;
    config.alpn_protocols = if h2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(config)
}

/// A self-signed ECDSA P-256 certificate for `name`. The key derives from the decky seed,
/// so it is stable across restarts and differs across deckies; validity starts on a
/// seeded past date and lasts a seeded 1–10 years (always still valid today).
///
/// # Errors
/// [`Error::Config`] if the certificate cannot be built.
pub fn self_signed(
    persona: &Persona,
    name: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), Error> {
    let bad = |e: String| Error::Config(format!("self-signed certificate: {e}"));
    // A 32-byte seed is a valid P-256 scalar unless it is zero or >= the group order
    // (probability ~2^-32); re-derive with a counter in that case.
    let secret = (0u32..16)
        .find_map(|i| p256::SecretKey::from_slice(&persona.derive(&format!("https-key-{i}"))).ok())
        .ok_or_else(|| bad("no valid key derivable".into()))?;
    use p256::pkcs8::EncodePrivateKey as _;
    let pkcs8 = secret
        .to_pkcs8_der()
        .map_err(|e| bad(e.to_string()))?
        .as_bytes()
        .to_vec();
    let key_pair = KeyPair::try_from(pkcs8.as_slice()).map_err(|e| bad(e.to_string()))?;

    let mut rng = persona.rng("https-cert");
    let mut params =
        CertificateParams::new(vec![name.to_owned()]).map_err(|e| bad(e.to_string()))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    let not_before = datetime!(2021-03-01 00:00 UTC)
        + TimeDuration::days(rng.gen_range(0..1300))
        + TimeDuration::seconds(rng.gen_range(0..86_400));
    let years = *[1i64, 2, 3, 5, 10, 10].choose(&mut rng).unwrap_or(&10);
    let mut not_after = not_before + TimeDuration::days(365 * years);
    if not_after < OffsetDateTime::now_utc() + TimeDuration::days(30) {
        not_after = not_before + TimeDuration::days(3650);
    }
    params.not_before = not_before;
    params.not_after = not_after;
    let mut serial: [u8; 16] = rng.r#gen();
    serial[0] = (serial[0] & 0x7f) | 0x10;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    let cert = params
        .self_signed(&key_pair)
        .map_err(|e| bad(e.to_string()))?;
    Ok((
        vec![cert.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8)),
    ))
}

impl Emulator for Https {
    fn handle(self: Arc<Self>, conn: Conn, ctx: Arc<ServiceCtx>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let limit = ctx.limits.idle_timeout.min(HANDSHAKE_TIMEOUT);
            let tls = match tokio::time::timeout(limit, self.acceptor.accept(conn.stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    ctx.emit(
                        Event::from_peer(kind::PROTOCOL_ERROR, conn.peer)
                            .field("reason", "tls_handshake_failed")
                            .field("error", e.to_string()),
                    );
                    return;
                }
                Err(_) => {
                    ctx.emit(
                        Event::from_peer(kind::PROTOCOL_ERROR, conn.peer)
                            .field("reason", "tls_handshake_timeout"),
                    );
                    return;
                }
            };
            let (_, session) = tls.get_ref();
            let proto = if session.alpn_protocol() == Some(b"h2") {
                Proto::H2
            } else {
                Proto::H1
            };
            let sni = session.server_name().map(str::to_owned);
            let mut event = Event::from_peer("tls_session", conn.peer).field(
                "alpn",
                session
                    .alpn_protocol()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .unwrap_or_default(),
            );
            if let Some(sni) = sni {
                event = event.field("sni", sni);
            }
            if let Some(v) = session.protocol_version() {
                event = event.field("tls_version", format!("{v:?}"));
            }
            ctx.emit(event);
            serve_http(
                self.site.clone(),
                ctx,
                tls,
                ConnInfo {
                    peer: conn.peer,
                    local: conn.local,
                    tls: true,
                },
                proto,
            )
            .await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use decnet_core::catalog;

    fn persona(pairs: &[(&str, &str)]) -> Persona {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        Persona::from_lookup(catalog::service("https").unwrap(), |k| map.get(k).cloned()).unwrap()
    }

    #[test]
    fn certificate_is_stable_per_decky_and_named_after_the_hostname() {
        let a = persona(&[
            ("NODE_NAME", "decky-07"),
            ("DECNET_HOSTNAME", "mail.corp.example"),
            ("DECNET_SEED", &"11".repeat(32)),
        ]);
        let b = persona(&[("NODE_NAME", "decky-07"), ("DECNET_SEED", &"22".repeat(32))]);
        assert_eq!(certificate_name(&a), "mail.corp.example");
        assert_ne!(certificate_name(&b), "decky-07");
        let (c1, k1) = self_signed(&a, "mail.corp.example").unwrap();
        let (_, k2) = self_signed(&a, "mail.corp.example").unwrap();
        let (_, k3) = self_signed(&b, "mail.corp.example").unwrap();
        assert_eq!(k1.secret_der(), k2.secret_der());
        assert_ne!(k1.secret_der(), k3.secret_der());
        // The DER carries the name as an ASN.1 string: enough to check subject and SAN
        // without an X.509 parser.
        let der = String::from_utf8_lossy(c1[0].as_ref()).into_owned();
        assert_eq!(
            der.matches("mail.corp.example").count(),
            3,
            "issuer, subject, SAN"
        );
        assert!(tls_config(&a, true).is_ok());
    }

    #[test]
    fn half_a_certificate_is_refused() {
        let p = persona(&[("TLS_CERT", "-----BEGIN CERTIFICATE-----")]);
        assert!(tls_config(&p, false).is_err());
    }
}
