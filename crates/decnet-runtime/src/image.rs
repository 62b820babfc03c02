//! The decky image, built offline: an in-memory tar build context holding a generated
//! `FROM scratch` Dockerfile and the static `decnet-decky` binary. No shell, no package,
//! no registry: the image is that one file, run as an unprivileged user.
//!
//! The binary must be statically linked (no `PT_INTERP` program header): a scratch image
//! has no dynamic loader and no libc. A dynamically linked binary is refused with the
//! command that builds a static one, rather than copying its libraries, so the image never
//! depends on the build host's glibc.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::Error;
use crate::engine::{Engine, ErrorKind};
use crate::spec::{DECKY_UID, image_tag, labels};

/// Largest decky binary accepted (a static build is a few MB).
pub const MAX_DECKY_BIN_BYTES: u64 = 256 * 1024 * 1024;
/// Image label carrying the SHA-256 of the binary inside.
pub const BIN_SHA_LABEL: &str = "decnet.decky_sha256";
/// Path of the binary inside the image.
pub const BIN_PATH: &str = "/decnet-decky";
/// How to build the static binary (printed when a dynamic one is offered).
pub const BUILD_HINT: &str = "RUSTFLAGS=\"-C target-feature=+crt-static\" cargo build --profile decky \
     --target x86_64-unknown-linux-gnu -p decnet-honeypot --bin decnet-decky";

const PT_INTERP: u32 = 3;

/// Checks that `bytes` is an ELF64 little-endian executable for this machine with no
/// program interpreter (statically linked).
///
/// # Errors
/// [`Error::Invalid`] saying what is wrong (not ELF, wrong architecture, dynamic with the
/// interpreter it names).
pub fn check_static_elf(bytes: &[u8]) -> Result<(), Error> {
    let bad = |why: String| Err(Error::Invalid(why));
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
        return bad("not an ELF executable".into());
    }
    if bytes[4] != 2 || bytes[5] != 1 {
        return bad("not a 64-bit little-endian ELF executable".into());
    }
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |o: usize| {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        bytes.get(o..o + 8).map(|b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_le_bytes(a)
        })
    };
    let machine = u16_at(0x12).unwrap_or(0);
    let expected = match std::env::consts::ARCH {
        "x86_64" => Some(62),
        "aarch64" => Some(183),
        _ => None,
    };
    if let Some(expected) = expected
        && machine != expected
    {
        return bad(format!(
            "built for ELF machine {machine}, this host ({}) needs {expected}",
            std::env::consts::ARCH
        ));
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return bad("truncated ELF header".into());
    };
    let phoff = usize::try_from(phoff).unwrap_or(usize::MAX);
    for i in 0..usize::from(phnum) {
        let at = phoff.saturating_add(i.saturating_mul(usize::from(phentsize)));
        let Some(p_type) = u32_at(at) else {
            return bad("truncated program header table".into());
        };
        if p_type == PT_INTERP {
            let interp = u64_at(at + 8)
                .zip(u64_at(at + 32))
                .and_then(|(off, len)| {
                    let off = usize::try_from(off).ok()?;
                    let len = usize::try_from(len).ok()?;
                    bytes.get(off..off.checked_add(len)?)
                })
                .map(|s| String::from_utf8_lossy(s).trim_end_matches('\0').to_owned())
                .unwrap_or_else(|| "?".to_owned());
            return bad(format!(
                "dynamically linked (interpreter {interp}); the decky image is FROM scratch and \
                 needs a static binary: {BUILD_HINT}"
            ));
        }
    }
    Ok(())
}

/// Where the decky binary comes from: `explicit` (`--decky-bin`, or `DECNET_DECKY_BIN`
/// resolved by the caller), else `decnet-decky` next to `current_exe`.
///
/// # Errors
/// [`Error::Invalid`] naming the paths tried.
pub fn locate_decky_bin(
    explicit: Option<&Path>,
    current_exe: Option<&Path>,
) -> Result<PathBuf, Error> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(Error::Invalid(format!(
                "decky binary {} does not exist",
                p.display()
            )))
        };
    }
    let beside = current_exe
        .and_then(Path::parent)
        .map(|d| d.join("decnet-decky"));
    match beside {
        Some(p) if p.is_file() => Ok(p),
        other => Err(Error::Invalid(format!(
            "no decky binary: pass --decky-bin or set DECNET_DECKY_BIN (looked for {}); build it with: {BUILD_HINT}",
            other.map_or_else(
                || "decnet-decky beside decnet".to_owned(),
                |p| p.display().to_string()
            )
        ))),
    }
}

/// The generated Dockerfile for a binary with SHA-256 `sha`.
pub fn dockerfile(sha: &str) -> String {
    format!(
        "FROM scratch\n\
         COPY decnet-decky {BIN_PATH}\n\
         LABEL {managed}=\"true\" {BIN_SHA_LABEL}=\"{sha}\"\n\
         USER {DECKY_UID}:{DECKY_UID}\n\
         ENTRYPOINT [\"{BIN_PATH}\"]\n",
        managed = labels::MANAGED,
    )
}

fn octal(field: &mut [u8], value: u64) {
    // Zero-padded octal, NUL-terminated, filling the field.
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    let bytes = text.as_bytes();
    let start = bytes.len().saturating_sub(width);
    field[..width].copy_from_slice(&bytes[start..]);
    field[width] = 0;
}

fn tar_entry(out: &mut Vec<u8>, name: &str, mode: u64, data: &[u8]) {
    let mut h = [0u8; 512];
    let n = name.as_bytes();
    h[..n.len().min(100)].copy_from_slice(&n[..n.len().min(100)]);
    octal(&mut h[100..108], mode);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], data.len() as u64);
    octal(&mut h[136..148], 0);
    h[148..156].fill(b' ');
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    let pad = (512 - data.len() % 512) % 512;
    out.extend(std::iter::repeat_n(0u8, pad));
}

/// The build context: an uncompressed ustar archive with `Dockerfile` and `decnet-decky`.
/// Timestamps and owners are fixed, so the same binary gives the same context.
pub fn build_context(binary: &[u8]) -> Vec<u8> {
    let sha = hex::encode(Sha256::digest(binary));
    let mut out = Vec::with_capacity(binary.len() + 4096);
    tar_entry(&mut out, "Dockerfile", 0o644, dockerfile(&sha).as_bytes());
    tar_entry(&mut out, "decnet-decky", 0o755, binary);
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

/// Reads and checks a decky binary.
///
/// # Errors
/// [`Error::Invalid`] when it is too large or not a static ELF, [`Error::Io`] when it
/// cannot be read.
pub fn read_decky_bin(path: &Path) -> Result<Vec<u8>, Error> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io("read", path, e))?;
    if meta.len() > MAX_DECKY_BIN_BYTES {
        return Err(Error::Invalid(format!(
            "{}: {} bytes is larger than the {MAX_DECKY_BIN_BYTES}-byte limit",
            path.display(),
            meta.len()
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    check_static_elf(&bytes).map_err(|e| match e {
        Error::Invalid(why) => Error::Invalid(format!("{}: {why}", path.display())),
        other => other,
    })?;
    Ok(bytes)
}

/// The decky image as it stands after [`ensure_image`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageOutcome {
    /// Tag.
    pub tag: String,
    /// Image id.
    pub id: String,
    /// True when this call built it.
    pub built: bool,
}

/// Makes sure the decky image exists and holds the current decky binary: builds it when
/// it is missing, when `rebuild` is set, or when the binary `binary` yields differs from
/// the one in the image (its [`BIN_SHA_LABEL`]). When no binary can be found, an existing
/// image is used as it is, so a deploy over an existing image needs no binary.
///
/// # Errors
/// The binary's errors, or [`Error::Engine`].
pub async fn ensure_image(
    engine: &dyn Engine,
    binary: impl FnOnce() -> Result<PathBuf, Error>,
    rebuild: bool,
    no_cache: bool,
) -> Result<ImageOutcome, Error> {
    let tag = image_tag();
    let existing = if rebuild {
        None
    } else {
        engine.image(&tag).await?
    };
    let located = binary();
    let (path, bytes) = match (existing, located) {
        (Some(img), Err(_)) => {
            return Ok(ImageOutcome {
                tag,
                id: img.id,
                built: false,
            });
        }
        (None, Err(e)) => return Err(e),
        (Some(img), Ok(path)) => {
            let bytes = read_decky_bin(&path)?;
            let sha = hex::encode(Sha256::digest(&bytes));
            if img.labels.get(BIN_SHA_LABEL) == Some(&sha) {
                return Ok(ImageOutcome {
                    tag,
                    id: img.id,
                    built: false,
                });
            }
            tracing::info!(tag = %tag, binary = %path.display(), "The decky binary changed since the image was built");
            (path, bytes)
        }
        (None, Ok(path)) => {
            let bytes = read_decky_bin(&path)?;
            (path, bytes)
        }
    };
    tracing::info!(tag = %tag, binary = %path.display(), "Building the decky image");
    let id = engine
        .build_image(&tag, build_context(&bytes), no_cache)
        .await
        .map_err(|e| {
            if e.kind == ErrorKind::Unreachable {
                Error::Engine(e)
            } else {
                Error::ImageBuild(e)
            }
        })?;
    Ok(ImageOutcome {
        tag,
        id,
        built: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 header with one program header of type `p_type`.
    fn elf(p_type: u32) -> Vec<u8> {
        let mut b = vec![0u8; 64 + 56 + 32];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        let machine: u16 = if std::env::consts::ARCH == "aarch64" {
            183
        } else {
            62
        };
        b[0x12..0x14].copy_from_slice(&machine.to_le_bytes());
        b[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        b[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        b[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        b[64..68].copy_from_slice(&p_type.to_le_bytes());
        let interp = b"/lib64/ld-linux-x86-64.so.2\0";
        b[64 + 8..64 + 16].copy_from_slice(&120u64.to_le_bytes());
        b[64 + 32..64 + 40].copy_from_slice(&(interp.len() as u64).to_le_bytes());
        b[120..120 + interp.len()].copy_from_slice(interp);
        b
    }

    #[test]
    fn static_and_dynamic_binaries() {
        assert!(check_static_elf(&elf(1)).is_ok());
        let err = check_static_elf(&elf(PT_INTERP)).unwrap_err().to_string();
        assert!(
            err.contains("ld-linux-x86-64.so.2") && err.contains("crt-static"),
            "{err}"
        );
        assert!(check_static_elf(b"#!/bin/sh\n").is_err());
        // Program headers pointing past the end: refused, no panic.
        let mut truncated = elf(1);
        truncated[0x38..0x3a].copy_from_slice(&500u16.to_le_bytes());
        assert!(check_static_elf(&truncated).is_err());
        // A real dynamic executable of this machine.
        if let Ok(bytes) = std::fs::read("/bin/sh") {
            assert!(check_static_elf(&bytes).is_err());
        }
    }

    #[tokio::test]
    async fn image_follows_the_binary() {
        let engine = crate::fake::FakeEngine::new();
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("decnet-decky");
        std::fs::write(&bin, elf(1)).unwrap();
        let at = || Ok(bin.clone());
        let first = ensure_image(&engine, at, false, false).await.unwrap();
        assert!(first.built);
        // Same binary: the image is kept.
        let again = ensure_image(&engine, at, false, false).await.unwrap();
        assert_eq!((again.built, &again.id), (false, &first.id));
        // No binary to be found: the existing image is used.
        let none = ensure_image(
            &engine,
            || Err(Error::Invalid("no decky binary".into())),
            false,
            false,
        )
        .await
        .unwrap();
        assert_eq!((none.built, &none.id), (false, &first.id));
        // A different binary: rebuilt.
        let mut changed = elf(1);
        changed.extend_from_slice(b"new build");
        std::fs::write(&bin, changed).unwrap();
        let rebuilt = ensure_image(&engine, at, false, false).await.unwrap();
        assert!(rebuilt.built);
        assert_ne!(rebuilt.id, first.id);
        // Nothing exists and no binary: the binary's error.
        let empty = crate::fake::FakeEngine::new();
        let err = ensure_image(
            &empty,
            || Err(Error::Invalid("no decky binary".into())),
            false,
            false,
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("no decky binary"), "{err}");
    }

    #[test]
    fn context_is_a_valid_tar() {
        let ctx = build_context(b"binary-bytes");
        assert_eq!(ctx.len() % 512, 0);
        let dir = tempfile::tempdir().unwrap();
        let tar = dir.path().join("ctx.tar");
        std::fs::write(&tar, &ctx).unwrap();
        let out = std::process::Command::new("tar")
            .arg("-xf")
            .arg(&tar)
            .arg("-C")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            std::fs::read(dir.path().join("decnet-decky")).unwrap(),
            b"binary-bytes"
        );
        let dockerfile = std::fs::read_to_string(dir.path().join("Dockerfile")).unwrap();
        assert!(dockerfile.starts_with("FROM scratch\n"));
        assert!(dockerfile.contains("USER 65532:65532"));
        assert!(dockerfile.contains("ENTRYPOINT [\"/decnet-decky\"]"));
        assert!(!dockerfile.contains("RUN"));
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("decnet-decky"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        // Deterministic.
        assert_eq!(ctx, build_context(b"binary-bytes"));
    }

    #[test]
    fn binary_location() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("decnet");
        assert!(locate_decky_bin(None, Some(&exe)).is_err());
        std::fs::write(dir.path().join("decnet-decky"), b"x").unwrap();
        assert_eq!(
            locate_decky_bin(None, Some(&exe)).unwrap(),
            dir.path().join("decnet-decky")
        );
        let err = locate_decky_bin(Some(Path::new("/nonexistent/d")), Some(&exe)).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/d"));
    }
}
