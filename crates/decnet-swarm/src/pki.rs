//! The DECNET certificate authority and the identities it signs.
//!
//! Algorithm: every key is ECDSA P-256, every signature ECDSA-SHA256 (small, fast, and
//! supported by every TLS stack DECNET talks to). The CA is `CN=DECNET Swarm CA`, valid
//! [`CA_VALIDITY_DAYS`]; leaves are valid [`LEAF_VALIDITY_DAYS`].
//!
//! **Roles (SW-2).** A leaf's role is a SAN URI `urn:decnet:role:<role>` ([`Role`]); peers
//! check that field, never the CN. A leaf carries exactly one role URI.
//!
//! **Keys (SW-9, SW-14).** Private keys are written with mode 0600 when the file is
//! created (`O_CREAT` with the mode, then an atomic rename), in directories created 0700.
//! Worker keys are generated on the worker; the master signs certificate requests and
//! never sees a worker key.
//!
//! **Renewal (SW-4).** A worker renews by enrolling again: `decnet swarm enroll --name W
//! --renew` issues a fresh one-time token for the existing host, `decnet agent enroll` on
//! the worker generates a new key and CSR, and the master pins the new fingerprint and
//! revokes the old one in the same step. `decnet swarm list` shows each host's
//! certificate expiry (from the issued certificate the master keeps, never a key).

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use decnet_store::Fingerprint;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
    SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use crate::{Error, Result};

/// Validity of the CA certificate.
pub const CA_VALIDITY_DAYS: i64 = 3650;
/// Validity of a leaf certificate.
pub const LEAF_VALIDITY_DAYS: i64 = 397;
/// Largest PEM document (certificate, key or CSR) read or accepted.
pub const MAX_PEM_LEN: usize = 16 * 1024;
/// Prefix of the role SAN URI.
pub const ROLE_URI_PREFIX: &str = "urn:decnet:role:";

/// What a certificate is allowed to do, carried as a SAN URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The master's client identity: the only caller agents obey.
    Master,
    /// A worker agent (server for the master, client for heartbeats).
    Agent,
    /// The swarm controller's worker-facing server.
    Swarmctl,
    /// An operator talking to the controller over TLS.
    Operator,
    /// A worker's self-updater.
    Updater,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [
        Role::Master,
        Role::Agent,
        Role::Swarmctl,
        Role::Operator,
        Role::Updater,
    ];

    /// The role's name (`agent`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Agent => "agent",
            Role::Swarmctl => "swarmctl",
            Role::Operator => "operator",
            Role::Updater => "updater",
        }
    }

    /// The SAN URI carrying the role.
    pub fn uri(self) -> String {
        format!("{ROLE_URI_PREFIX}{}", self.as_str())
    }

    /// The role named by a SAN URI.
    pub fn from_uri(uri: &str) -> Option<Role> {
        let name = uri.strip_prefix(ROLE_URI_PREFIX)?;
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn pki(what: &str) -> impl FnOnce(rcgen::Error) -> Error + '_ {
    move |e| Error::Pki(format!("{what}: {e}"))
}

/// Creates `dir` (and parents) with mode 0700 when missing.
///
/// # Errors
/// [`Error::Io`].
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(Error::io("create directory", dir))
}

fn write_with_mode(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(Error::io("create", &tmp))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(Error::io("write", &tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(Error::io("rename into", path))
}

/// Writes a private key: mode 0600 from the moment the file exists (SW-14), then
/// renamed over `path`.
///
/// # Errors
/// [`Error::Io`].
pub fn write_private(path: &Path, contents: &str) -> Result<()> {
    write_with_mode(path, contents.as_bytes(), 0o600)
}

/// Writes a public document (certificate, JSON identity) with mode 0644.
///
/// # Errors
/// [`Error::Io`].
pub fn write_public(path: &Path, contents: &str) -> Result<()> {
    write_with_mode(path, contents.as_bytes(), 0o644)
}

/// Reads a PEM or small JSON file, refusing anything over [`MAX_PEM_LEN`].
///
/// # Errors
/// [`Error::Io`], or [`Error::Invalid`] for an oversized file.
pub fn read_small(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path).map_err(Error::io("read", path))?;
    if meta.len() > MAX_PEM_LEN as u64 {
        return Err(Error::invalid(format!(
            "{}: {} bytes, at most {MAX_PEM_LEN} expected",
            path.display(),
            meta.len()
        )));
    }
    std::fs::read_to_string(path).map_err(Error::io("read", path))
}

/// A fresh ECDSA P-256 key pair.
///
/// # Errors
/// [`Error::Pki`] when the system RNG fails.
pub fn generate_key() -> Result<KeyPair> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(pki("generate key"))
}

/// Parses a PEM private key.
///
/// # Errors
/// [`Error::Pki`].
pub fn parse_key(pem: &str) -> Result<KeyPair> {
    KeyPair::from_pem(pem).map_err(pki("parse private key"))
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    // Positive and non-zero, as RFC 5280 asks.
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&bytes)
}

/// Parses the first certificate of a PEM document into DER.
///
/// # Errors
/// [`Error::Pki`] when no certificate is found.
pub fn pem_to_der(pem: &str) -> Result<Vec<u8>> {
    if pem.len() > MAX_PEM_LEN {
        return Err(Error::Pki("certificate PEM too large".into()));
    }
    let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| Error::Pki(format!("parse PEM: {e}")))?;
    if parsed.label != "CERTIFICATE" {
        return Err(Error::Pki(format!(
            "expected a CERTIFICATE, found {}",
            parsed.label
        )));
    }
    Ok(parsed.contents)
}

/// The SHA-256 fingerprint (lowercase hex) of a PEM certificate.
///
/// # Errors
/// [`Error::Pki`].
pub fn fingerprint_of_pem(pem: &str) -> Result<Fingerprint> {
    Ok(Fingerprint::of_der(&pem_to_der(pem)?))
}

/// What a verified peer certificate says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// SHA-256 of the DER.
    pub fingerprint: Fingerprint,
    /// The role URI, when there is exactly one.
    pub role: Option<Role>,
    /// The subject CN.
    pub name: Option<String>,
    /// End of validity, Unix seconds.
    pub not_after: i64,
}

/// Reads the role, CN and validity of a DER certificate. A certificate with no or with
/// several role URIs has `role: None` (and is refused by every role check).
///
/// # Errors
/// [`Error::Pki`] for unparsable DER.
pub fn cert_info(der: &[u8]) -> Result<CertInfo> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| Error::Pki(format!("parse certificate: {e}")))?;
    let mut roles = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::URI(uri) = name
                && uri.starts_with(ROLE_URI_PREFIX)
            {
                roles.push(Role::from_uri(uri));
            }
        }
    }
    let role = match roles.as_slice() {
        [Some(r)] => Some(*r),
        _ => None,
    };
    let name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    Ok(CertInfo {
        fingerprint: Fingerprint::of_der(der),
        role,
        name,
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// What to put in a leaf certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafSpec {
    /// CN and first DNS SAN.
    pub name: String,
    /// The role URI.
    pub role: Role,
    /// Extra SANs: IP addresses or DNS names.
    pub sans: Vec<String>,
}

impl LeafSpec {
    fn params(&self) -> Result<CertificateParams> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, self.name.as_str());
        dn.push(DnType::OrganizationName, "DECNET");
        params.distinguished_name = dn;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::minutes(5);
        params.not_after = now + Duration::days(LEAF_VALIDITY_DAYS);
        params.serial_number = Some(random_serial());
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let mut sans = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for entry in std::iter::once(&self.name).chain(&self.sans) {
            if !seen.insert(entry.clone()) {
                continue;
            }
            let san = match entry.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(
                    entry
                        .as_str()
                        .try_into()
                        .map_err(|e| Error::Pki(format!("SAN {entry:?}: {e}")))?,
                ),
            };
            sans.push(san);
        }
        sans.push(SanType::URI(
            self.role
                .uri()
                .try_into()
                .map_err(|e| Error::Pki(format!("role URI: {e}")))?,
        ));
        params.subject_alt_names = sans;
        Ok(params)
    }
}

/// A certificate the CA issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// PEM text.
    pub pem: String,
    /// SHA-256 fingerprint.
    pub fingerprint: Fingerprint,
}

/// The DECNET certificate authority (`ca.crt`, `ca.key` in its directory).
pub struct Ca {
    issuer: rcgen::Certificate,
    key: KeyPair,
    pem: String,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

impl Ca {
    /// The certificate file in `dir`.
    pub fn cert_path(dir: &Path) -> PathBuf {
        dir.join("ca.crt")
    }

    /// Loads the CA from `dir`, creating it (directory 0700, key 0600) when neither file
    /// exists. Idempotent.
    ///
    /// # Errors
    /// [`Error::Pki`] when only one of the two files exists or they do not parse;
    /// [`Error::Io`].
    pub fn load_or_create(dir: &Path) -> Result<Ca> {
        let (crt, key) = (dir.join("ca.crt"), dir.join("ca.key"));
        match (crt.exists(), key.exists()) {
            (true, true) => Self::load(dir),
            (false, false) => {
                ensure_private_dir(dir)?;
                let key_pair = generate_key()?;
                let mut params = CertificateParams::default();
                let mut dn = DistinguishedName::new();
                dn.push(DnType::CommonName, "DECNET Swarm CA");
                dn.push(DnType::OrganizationName, "DECNET");
                params.distinguished_name = dn;
                let now = OffsetDateTime::now_utc();
                params.not_before = now - Duration::minutes(5);
                params.not_after = now + Duration::days(CA_VALIDITY_DAYS);
                params.serial_number = Some(random_serial());
                params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
                params.key_usages = vec![
                    KeyUsagePurpose::KeyCertSign,
                    KeyUsagePurpose::CrlSign,
                    KeyUsagePurpose::DigitalSignature,
                ];
                let cert = params.self_signed(&key_pair).map_err(pki("create CA"))?;
                write_private(&key, &key_pair.serialize_pem())?;
                write_public(&crt, &cert.pem())?;
                tracing::info!(dir = %dir.display(), "Created the DECNET CA");
                Self::load(dir)
            }
            _ => Err(Error::Pki(format!(
                "{} holds only one of ca.crt and ca.key; restore the other or remove both",
                dir.display()
            ))),
        }
    }

    /// Loads an existing CA.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Pki`].
    pub fn load(dir: &Path) -> Result<Ca> {
        let pem = read_small(&dir.join("ca.crt"))?;
        let key = parse_key(&read_small(&dir.join("ca.key"))?)?;
        let params = CertificateParams::from_ca_cert_pem(&pem).map_err(pki("parse ca.crt"))?;
        // rcgen signs with the issuer's DN and key; re-creating the issuer object from the
        // stored parameters gives both without touching the stored certificate.
        let issuer = params.self_signed(&key).map_err(pki("load CA"))?;
        Ok(Ca { issuer, key, pem })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.pem
    }

    /// Issues a leaf for a public key the caller holds the private half of.
    ///
    /// # Errors
    /// [`Error::Pki`].
    pub fn issue_for_key(&self, spec: &LeafSpec, key: &KeyPair) -> Result<Issued> {
        let cert = spec
            .params()?
            .signed_by(key, &self.issuer, &self.key)
            .map_err(pki("sign certificate"))?;
        Ok(Issued {
            fingerprint: Fingerprint::of_der(cert.der()),
            pem: cert.pem(),
        })
    }

    /// Signs a certificate request. Only the request's public key is used: names, SANs
    /// and the role come from `spec` (what the master decided), never from the request.
    /// The request's self-signature must verify and its key must be ECDSA P-256.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an unparsable, unsigned or oversized request or another key
    /// type; [`Error::Pki`].
    pub fn sign_csr(&self, csr_pem: &str, spec: &LeafSpec) -> Result<Issued> {
        if csr_pem.len() > MAX_PEM_LEN {
            return Err(Error::invalid("certificate request: too large"));
        }
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| Error::invalid(format!("certificate request: {e}")))?;
        // An uncompressed P-256 point is 65 bytes; the algorithm check alone cannot tell
        // P-256 from other curves signed with SHA-256.
        if csr.public_key.algorithm() != &PKCS_ECDSA_P256_SHA256
            || rcgen::PublicKeyData::der_bytes(&csr.public_key).len() != 65
        {
            return Err(Error::invalid(
                "certificate request: the key must be ECDSA P-256",
            ));
        }
        csr.params = spec.params()?;
        let cert = csr
            .signed_by(&self.issuer, &self.key)
            .map_err(pki("sign certificate request"))?;
        Ok(Issued {
            fingerprint: Fingerprint::of_der(cert.der()),
            pem: cert.pem(),
        })
    }
}

/// A certificate request for `name` over `key` (the worker side of enrollment).
///
/// # Errors
/// [`Error::Pki`].
pub fn make_csr(key: &KeyPair, name: &str) -> Result<String> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params
        .serialize_request(key)
        .map_err(pki("create certificate request"))?
        .pem()
        .map_err(pki("encode certificate request"))
}

/// A certificate and key on disk (`<stem>.crt`, `<stem>.key`) plus the CA that signed it.
#[derive(Clone)]
pub struct Identity {
    /// Certificate, PEM.
    pub cert_pem: String,
    /// Private key, PEM.
    pub key_pem: String,
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// Fingerprint of the certificate.
    pub fingerprint: Fingerprint,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Loads `<dir>/<stem>.crt`, `<dir>/<stem>.key` and `<dir>/ca.crt`.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Pki`].
    pub fn load(dir: &Path, stem: &str) -> Result<Identity> {
        let cert_pem = read_small(&dir.join(format!("{stem}.crt")))?;
        let key_pem = read_small(&dir.join(format!("{stem}.key")))?;
        let ca_pem = read_small(&dir.join("ca.crt"))?;
        parse_key(&key_pem)?;
        Ok(Identity {
            fingerprint: fingerprint_of_pem(&cert_pem)?,
            cert_pem,
            key_pem,
            ca_pem,
        })
    }

    /// Loads the identity `<stem>` from `dir`, or issues it from `ca` (key generated here,
    /// 0600) when it is missing or its role or CA no longer match. A present identity is
    /// reused, so its fingerprint is stable across restarts.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Pki`].
    pub fn ensure(ca: &Ca, dir: &Path, stem: &str, spec: &LeafSpec) -> Result<Identity> {
        if let Ok(id) = Self::load(dir, stem)
            && id.ca_pem == ca.cert_pem()
            && cert_info(&pem_to_der(&id.cert_pem)?)?.role == Some(spec.role)
        {
            return Ok(id);
        }
        ensure_private_dir(dir)?;
        let key = generate_key()?;
        let issued = ca.issue_for_key(spec, &key)?;
        write_private(&dir.join(format!("{stem}.key")), &key.serialize_pem())?;
        write_public(&dir.join(format!("{stem}.crt")), &issued.pem)?;
        write_public(&dir.join("ca.crt"), ca.cert_pem())?;
        Self::load(dir, stem)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn ca_is_created_once_with_private_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ca");
        let ca = Ca::load_or_create(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("ca.key")), 0o600);
        let again = Ca::load_or_create(&dir).unwrap();
        assert_eq!(ca.cert_pem(), again.cert_pem());
        std::fs::remove_file(dir.join("ca.key")).unwrap();
        assert!(
            Ca::load_or_create(&dir)
                .unwrap_err()
                .to_string()
                .contains("only one")
        );
    }

    #[test]
    fn leaves_carry_their_role_and_names() {
        let tmp = tempfile::tempdir().unwrap();
        let ca = Ca::load_or_create(tmp.path()).unwrap();
        let key = generate_key().unwrap();
        let spec = LeafSpec {
            name: "w1".into(),
            role: Role::Agent,
            sans: vec!["127.0.0.2".into(), "w1.lan".into(), "w1".into()],
        };
        let issued = ca.issue_for_key(&spec, &key).unwrap();
        let der = pem_to_der(&issued.pem).unwrap();
        let info = cert_info(&der).unwrap();
        assert_eq!(info.role, Some(Role::Agent));
        assert_eq!(info.name.as_deref(), Some("w1"));
        assert_eq!(info.fingerprint, issued.fingerprint);
        assert_eq!(info.fingerprint.as_str().len(), 64);
        assert_eq!(
            info.fingerprint.as_str(),
            info.fingerprint.as_str().to_lowercase()
        );
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let san = cert.subject_alternative_name().unwrap().unwrap();
        let text = format!("{:?}", san.value.general_names);
        assert!(
            text.contains("127.0.0.2") || text.contains("[127, 0, 0, 2]"),
            "{text}"
        );
        assert!(
            text.contains("w1.lan") && text.contains("urn:decnet:role:agent"),
            "{text}"
        );
        let days = (info.not_after - OffsetDateTime::now_utc().unix_timestamp()) / 86_400;
        assert!(
            (LEAF_VALIDITY_DAYS - 1..=LEAF_VALIDITY_DAYS).contains(&days),
            "{days}"
        );
    }

    #[test]
    fn csr_round_trip_ignores_requested_names() {
        let tmp = tempfile::tempdir().unwrap();
        let ca = Ca::load_or_create(tmp.path()).unwrap();
        let key = generate_key().unwrap();
        let csr = make_csr(&key, "decnet-master").unwrap();
        let spec = LeafSpec {
            name: "w2".into(),
            role: Role::Agent,
            sans: vec![],
        };
        let issued = ca.sign_csr(&csr, &spec).unwrap();
        let info = cert_info(&pem_to_der(&issued.pem).unwrap()).unwrap();
        assert_eq!(info.name.as_deref(), Some("w2"));
        assert_eq!(info.role, Some(Role::Agent));
        // The certificate is for the worker's key.
        let der = pem_to_der(&issued.pem).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert_eq!(
            cert.public_key().subject_public_key.data.as_ref(),
            key.public_key_raw()
        );
        assert!(ca.sign_csr("garbage", &spec).unwrap_err().is_validation());
        // A tampered request (signature no longer matches) is refused.
        let mut der = x509_parser::pem::parse_x509_pem(csr.as_bytes())
            .unwrap()
            .1
            .contents;
        let n = der.len();
        der[n - 5] ^= 0x55;
        let tampered = format!(
            "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &der)
        );
        assert!(ca.sign_csr(&tampered, &spec).is_err());
    }

    #[test]
    fn identities_are_stable_and_keys_private() {
        let tmp = tempfile::tempdir().unwrap();
        let ca = Ca::load_or_create(&tmp.path().join("ca")).unwrap();
        let spec = LeafSpec {
            name: "decnet-master".into(),
            role: Role::Master,
            sans: vec!["127.0.0.1".into()],
        };
        let dir = tmp.path().join("master");
        let a = Identity::ensure(&ca, &dir, "master", &spec).unwrap();
        let b = Identity::ensure(&ca, &dir, "master", &spec).unwrap();
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(mode(&dir.join("master.key")), 0o600);
        assert_eq!(mode(&dir.join("master.crt")), 0o644);
        // A different role re-issues.
        let c = Identity::ensure(
            &ca,
            &dir,
            "master",
            &LeafSpec {
                role: Role::Operator,
                ..spec
            },
        )
        .unwrap();
        assert_ne!(a.fingerprint, c.fingerprint);
    }

    #[test]
    fn role_uris() {
        for r in Role::ALL {
            assert_eq!(Role::from_uri(&r.uri()), Some(r));
        }
        assert_eq!(Role::from_uri("urn:decnet:role:root"), None);
        assert_eq!(Role::from_uri("https://x"), None);
    }
}
