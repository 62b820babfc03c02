//! Tears a live test's project down when dropped, even when the test fails (shared with
//! decnet-fleet's live collector test).

use decnet_core::Settings;
use decnet_runtime::docker::DockerEngine;
use decnet_runtime::hairpin::NetlinkHostNetwork;
use decnet_runtime::spec::Project;
use decnet_runtime::teardown::{TeardownOptions, teardown_all};

pub struct Teardown<'a> {
    pub rt: &'a tokio::runtime::Runtime,
    pub engine: &'a DockerEngine,
    pub settings: &'a Settings,
    pub project: Project,
}

impl Drop for Teardown<'_> {
    fn drop(&mut self) {
        let opts = TeardownOptions {
            project: self.project.clone(),
            ..TeardownOptions::default()
        };
        let _ = self.rt.block_on(teardown_all(
            self.engine,
            &NetlinkHostNetwork,
            self.settings,
            &opts,
        ));
    }
}
