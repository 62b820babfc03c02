//! Host keys derived from the decky seed: stable for one decky, different across deckies.

use chacha20::ChaCha20Rng;
use chacha20::rand_core::SeedableRng;
use russh::keys::ssh_key::private::{KeypairData, RsaKeypair};
use russh::keys::{Algorithm, EcdsaCurve, PrivateKey};

use crate::Error;
use crate::persona::Persona;

/// RSA modulus size, as `ssh-keygen -A` makes.
pub const RSA_BITS: usize = 3072;

fn rng(persona: &Persona, purpose: &str) -> ChaCha20Rng {
    ChaCha20Rng::from_seed(persona.derive(purpose))
}

/// The decky's host keys in `sshd`'s default `HostKey` order: RSA 3072, ECDSA nistp256,
/// Ed25519.
///
/// # Errors
/// [`Error::Config`] when a key cannot be generated (never for valid seeds).
pub fn host_keys(persona: &Persona) -> Result<Vec<PrivateKey>, Error> {
    let fail = |what: &str, e: russh::keys::ssh_key::Error| {
        Error::Config(format!("ssh {what} host key: {e}"))
    };
    let comment = format!("root@{}", persona.hostname);
    let rsa = RsaKeypair::random(&mut rng(persona, "ssh-host-rsa"), RSA_BITS)
        .map_err(|e| fail("rsa", e))?;
    let rsa =
        PrivateKey::new(KeypairData::from(rsa), comment.clone()).map_err(|e| fail("rsa", e))?;
    let ecdsa = PrivateKey::random(
        &mut rng(persona, "ssh-host-ecdsa"),
        Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP256,
        },
    )
    .map_err(|e| fail("ecdsa", e))?;
    let ed25519 = PrivateKey::random(&mut rng(persona, "ssh-host-ed25519"), Algorithm::Ed25519)
        .map_err(|e| fail("ed25519", e))?;
    Ok(vec![rsa, ecdsa, ed25519])
}

#[cfg(test)]
mod tests {
    use super::*;
    use decnet_core::catalog;

    fn persona(seed: &str) -> Persona {
        let ssh = catalog::service("ssh").unwrap();
        Persona::from_json(ssh, &serde_json::json!({"seed": seed.repeat(32)})).unwrap()
    }

    #[test]
    fn stable_per_decky_and_different_across() {
        let fp = |p: &Persona| -> Vec<String> {
            host_keys(p)
                .unwrap()
                .iter()
                .map(|k| {
                    k.public_key()
                        .fingerprint(russh::keys::HashAlg::Sha256)
                        .to_string()
                })
                .collect()
        };
        let a = persona("0a");
        let b = persona("0b");
        let fa = fp(&a);
        assert_eq!(fa, fp(&a));
        let fb = fp(&b);
        for (x, y) in fa.iter().zip(&fb) {
            assert_ne!(x, y);
        }
        let keys = host_keys(&a).unwrap();
        assert_eq!(keys[0].algorithm().as_str(), "ssh-rsa");
        assert_eq!(keys[1].algorithm().as_str(), "ecdsa-sha2-nistp256");
        assert_eq!(keys[2].algorithm().as_str(), "ssh-ed25519");
    }
}
