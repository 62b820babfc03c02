//! Worker-side enrollment: the key is generated here and never leaves the worker (SW-9).
//! Online: a CSR sent over TLS to the controller, pinned by the fingerprint printed with
//! the token. Offline: the CSR and the signed bundle travel as files.

use std::path::Path;

use decnet_store::Fingerprint;
use reqwest::{Method, StatusCode};

use super::{AgentBundle, META_FILE};
use crate::client::HttpClient;
use crate::pki::{
    Role, cert_info, ensure_private_dir, generate_key, make_csr, parse_key, pem_to_der, read_small,
    write_private, write_public,
};
use crate::proto::{AgentMeta, CsrRequest, EnrolledBundle};
use crate::tls::{ServerPin, client_config};
use crate::{Error, Result};

/// Where the offline flow keeps the key between the CSR and the bundle.
pub const PENDING_KEY: &str = "worker.key.pending";
/// The bundle file of the offline flow.
pub const BUNDLE_FILE: &str = "bundle.json";

fn check_bundle(bundle: &EnrolledBundle, key_pem: &str) -> Result<()> {
    let key = parse_key(key_pem)?;
    let der = pem_to_der(&bundle.certificate_pem)?;
    let info = cert_info(&der)?;
    if info.role != Some(Role::Agent) {
        return Err(Error::Pki(
            "the signed certificate lacks the agent role".into(),
        ));
    }
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| Error::Pki(format!("parse signed certificate: {e}")))?;
    if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Err(Error::Pki(
            "the signed certificate is not for this worker's key".into(),
        ));
    }
    if info.fingerprint != bundle.fingerprint {
        return Err(Error::Pki(
            "bundle fingerprint does not match its certificate".into(),
        ));
    }
    Ok(())
}

/// Writes an enrolled bundle into `dir` (key 0600, directory 0700).
///
/// # Errors
/// [`Error::Pki`] when the certificate is not for `key_pem`; IO errors.
pub fn install(
    dir: &Path,
    key_pem: &str,
    bundle: &EnrolledBundle,
    controller_url: &str,
) -> Result<AgentBundle> {
    check_bundle(bundle, key_pem)?;
    ensure_private_dir(dir)?;
    write_private(&dir.join("worker.key"), key_pem)?;
    write_public(&dir.join("worker.crt"), &bundle.certificate_pem)?;
    write_public(&dir.join("ca.crt"), &bundle.ca_pem)?;
    let meta = AgentMeta {
        version: 1,
        host_uuid: bundle.host_uuid.clone(),
        name: bundle.name.clone(),
        master_fingerprint: bundle.master_fingerprint.clone(),
        controller_fingerprint: bundle.controller_fingerprint.clone(),
        controller_url: controller_url.trim_end_matches('/').to_owned(),
    };
    let text = serde_json::to_string_pretty(&meta).map_err(|source| Error::Json {
        what: "identity".into(),
        source,
    })?;
    write_public(&dir.join(META_FILE), &text)?;
    let _ = std::fs::remove_file(dir.join(PENDING_KEY));
    AgentBundle::load(dir)
}

/// Online enrollment against `controller_url` (the controller's worker-facing URL).
///
/// # Errors
/// [`Error::Status`] for a refused token; transport and PKI errors.
pub async fn enroll_online(
    dir: &Path,
    controller_url: &str,
    token: &str,
    controller_fingerprint: Fingerprint,
) -> Result<AgentBundle> {
    let key = generate_key()?;
    let csr_pem = make_csr(&key, "decnet-worker")?;
    // The CA is not known yet: the controller is trusted by its pinned fingerprint.
    let tls = client_config(
        None,
        None,
        ServerPin {
            fingerprint: controller_fingerprint.clone(),
            role: Role::Swarmctl,
        },
    )?;
    let http = HttpClient::tls(controller_url, tls)?;
    let (_, bundle): (_, EnrolledBundle) = http
        .call(
            Method::POST,
            "/swarm/enroll/csr",
            Some(&CsrRequest {
                token: token.to_owned(),
                csr_pem,
            }),
            &[StatusCode::OK],
            None,
        )
        .await?;
    if bundle.controller_fingerprint != controller_fingerprint {
        return Err(Error::Pki(
            "the controller's bundle names another controller certificate".into(),
        ));
    }
    install(dir, &key.serialize_pem(), &bundle, controller_url)
}

/// Offline step 1 (worker): generates the key (kept 0600 in `dir` as
/// [`PENDING_KEY`]) and returns the CSR to carry to the master.
///
/// # Errors
/// IO and PKI errors.
pub fn offline_request(dir: &Path) -> Result<String> {
    ensure_private_dir(dir)?;
    let key = generate_key()?;
    write_private(&dir.join(PENDING_KEY), &key.serialize_pem())?;
    make_csr(&key, "decnet-worker")
}

/// Offline step 3 (worker): installs the bundle the master signed (`bundle.json` in
/// `bundle_dir`) with the pending key.
///
/// # Errors
/// [`Error::Invalid`] without a pending key or a controller URL; IO and PKI errors.
pub fn offline_install(
    dir: &Path,
    bundle_dir: &Path,
    controller_url: Option<&str>,
) -> Result<AgentBundle> {
    let key_path = dir.join(PENDING_KEY);
    if !key_path.is_file() {
        return Err(Error::invalid(format!(
            "{} is missing: run `decnet agent enroll --csr-out FILE` on this worker first",
            key_path.display()
        )));
    }
    let key_pem = read_small(&key_path)?;
    let text = read_small(&bundle_dir.join(BUNDLE_FILE))?;
    let bundle: EnrolledBundle = serde_json::from_str(&text).map_err(|source| Error::Json {
        what: bundle_dir.join(BUNDLE_FILE).display().to_string(),
        source,
    })?;
    let Some(url) = controller_url
        .map(str::to_owned)
        .or_else(|| bundle.controller_url.clone())
    else {
        return Err(Error::invalid(
            "the bundle names no controller URL: pass --master https://MASTER:8771",
        ));
    };
    install(dir, &key_pem, &bundle, &url)
}
