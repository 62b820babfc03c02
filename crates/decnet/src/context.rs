//! Start-up context: tracing, settings and the host configuration, resolved once.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use decnet_core::Settings;
use decnet_core::hostcfg::HostConfig;

/// What every command gets.
pub struct Ctx {
    /// Every path.
    pub settings: Settings,
    /// Host configuration merged with the environment.
    pub host: HostConfig,
}

/// Logs go to stderr (stdout carries results); `DECNET_LOG` or `RUST_LOG` override the
/// level, `-v` raises it.
pub fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = std::env::var("DECNET_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| default.to_owned());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Reads the `DECNET_*` environment once.
fn decnet_env() -> BTreeMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with("DECNET_"))
        .collect()
}

impl Ctx {
    /// Resolves settings: `--data-dir`/`DECNET_HOME`, then the host config file
    /// (`$DECNET_CONFIG` or `<etc>/decnet.ini`), then environment overrides.
    ///
    /// # Errors
    /// When the host config exists but cannot be read or parsed.
    pub fn load(data_dir: Option<PathBuf>) -> Result<Ctx> {
        let env = decnet_env();
        let home = data_dir
            .or_else(|| {
                env.get("DECNET_HOME")
                    .filter(|h| !h.is_empty())
                    .map(PathBuf::from)
            })
            .map(|h| std::path::absolute(&h).unwrap_or(h));
        let path = Settings::host_config_path(
            home.as_deref(),
            env.get("DECNET_CONFIG").map(String::as_str),
        );
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(e).with_context(|| format!("read host config {}", path.display()));
            }
        };
        let host = HostConfig::load(&path.display().to_string(), text.as_deref(), &env)?;
        for warning in &host.warnings {
            tracing::warn!("{warning}");
        }
        let settings = Settings::resolve(home.as_deref(), &host);
        Ok(Ctx { settings, host })
    }
}
