//! Where a pass gets its inputs: the desired fleet (state file) and Docker's observation.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use decnet_core::{DecnetConfig, state};
use decnet_runtime::engine::{Engine, EngineError, ErrorKind};
use decnet_runtime::spec::Project;
use decnet_runtime::status::{RuntimeMap, runtime_map};
use futures::future::BoxFuture;
use tracing::{debug, info, warn};

use crate::Result;

/// The two inputs of a pass besides the database.
#[async_trait]
pub trait Inputs: Send + Sync {
    /// The desired fleet: the state file's config, `None` when nothing is deployed (an
    /// empty desired fleet, not an error).
    ///
    /// # Errors
    /// [`crate::Error::State`] when the state file exists but cannot be read: the pass
    /// must not mistake an unreadable intent for an empty one.
    async fn desired(&self) -> Result<Option<DecnetConfig>>;

    /// Docker's runtime map of `config`, or `None` when Docker cannot be observed
    /// (unknown is not "nothing runs").
    async fn observe(&self, config: &DecnetConfig) -> Option<RuntimeMap>;
}

/// Opens an engine; called again after the daemon became unreachable.
pub type Connector =
    Arc<dyn Fn() -> BoxFuture<'static, Result<Arc<dyn Engine>, EngineError>> + Send + Sync>;

/// The production inputs: the state file at a path, and the containers of one project
/// observed through an [`Engine`] (the Docker daemon, or the fake one in tests).
pub struct LiveInputs {
    state_file: PathBuf,
    project: Project,
    connect: Connector,
    engine: tokio::sync::Mutex<Option<Arc<dyn Engine>>>,
    known: AtomicBool,
}

impl LiveInputs {
    /// Inputs reading `state_file` and observing `project` through engines from `connect`.
    /// Nothing is connected until the first observation.
    pub fn new(state_file: impl Into<PathBuf>, project: Project, connect: Connector) -> Self {
        LiveInputs {
            state_file: state_file.into(),
            project,
            connect,
            engine: tokio::sync::Mutex::new(None),
            known: AtomicBool::new(true),
        }
    }

    /// Logs the change between known and unknown once, not every pass.
    fn unknown(&self, why: &EngineError) {
        if self.known.swap(false, Ordering::Relaxed) {
            warn!(error = %why, "Docker cannot be observed; fleet states are left as they are");
        } else {
            debug!(error = %why, "Docker still cannot be observed");
        }
    }
}

#[async_trait]
impl Inputs for LiveInputs {
    async fn desired(&self) -> Result<Option<DecnetConfig>> {
        // A small local file (bounded by the state module's size limit), read once per
        // pass: reading it inline costs less than a hop to the blocking pool.
        let loaded = state::load(&self.state_file)?;
        Ok(loaded.map(|s| s.config))
    }

    async fn observe(&self, config: &DecnetConfig) -> Option<RuntimeMap> {
        let mut slot = self.engine.lock().await;
        let engine = match slot.as_ref() {
            Some(e) => Arc::clone(e),
            None => match (self.connect)().await {
                Ok(e) => {
                    *slot = Some(Arc::clone(&e));
                    e
                }
                Err(e) => {
                    self.unknown(&e);
                    return None;
                }
            },
        };
        match runtime_map(engine.as_ref(), config, &self.project).await {
            Ok(map) => {
                if !self.known.swap(true, Ordering::Relaxed) {
                    info!("Docker can be observed again");
                }
                Some(map)
            }
            Err(e) => {
                if e.kind == ErrorKind::Unreachable {
                    // Connect afresh next time: the daemon may come back on a new socket.
                    *slot = None;
                }
                self.unknown(&e);
                None
            }
        }
    }
}
