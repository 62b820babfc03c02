//! Embeds every template under `deploy/systemd/` into the crate, so a new unit is a new
//! file and nothing else.
//!
//! Generates `$OUT_DIR/templates.rs`: one `(relative path, include_str!(absolute path))`
//! pair per `*.j2` file, sorted by path. What each file is (unit, target, tmpfiles entry,
//! …) is decided by `registry.rs` from the path and the file's own header, not here.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, base: &Path, out: &mut Vec<(String, PathBuf)>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => panic!("read {}: {e}", dir.display()),
    };
    for entry in entries {
        let path = match entry {
            Ok(e) => e.path(),
            Err(e) => panic!("read {}: {e}", dir.display()),
        };
        if path.is_dir() {
            // Each directory is watched too, so an added file triggers a rebuild.
            println!("cargo:rerun-if-changed={}", path.display());
            collect(&path, base, out);
        } else if path.extension().is_some_and(|e| e == "j2") {
            let rel = match path.strip_prefix(base) {
                Ok(r) => r.to_string_lossy().replace('\\', "/"),
                Err(e) => panic!("{}: {e}", path.display()),
            };
            println!("cargo:rerun-if-changed={}", path.display());
            out.push((rel, path));
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let deploy = manifest.join("../../deploy/systemd");
    let deploy = match deploy.canonicalize() {
        Ok(p) => p,
        Err(e) => panic!("template directory {}: {e}", deploy.display()),
    };
    println!("cargo:rerun-if-changed={}", deploy.display());
    let mut files = Vec::new();
    collect(&deploy, &deploy, &mut files);
    files.sort();

    let mut code = String::from(
        "/// Every `deploy/systemd/**/*.j2`: (path relative to that directory, text).\n",
    );
    code.push_str("pub(crate) static EMBEDDED: &[(&str, &str)] = &[\n");
    for (rel, abs) in &files {
        let abs = abs.to_string_lossy();
        let _ = writeln!(code, "    ({rel:?}, include_str!({abs:?})),");
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("templates.rs");
    if let Err(e) = std::fs::write(&out, code) {
        panic!("write {}: {e}", out.display());
    }
}
