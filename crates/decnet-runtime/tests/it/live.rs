//! The library API against Docker: the offline image, the containers exactly as the
//! specs say, an idempotent redeploy that keeps every container, and a clean teardown.

use std::collections::BTreeMap;
use std::path::PathBuf;

use decnet_core::{DecnetConfig, Settings};
use decnet_runtime::Engine as _;
use decnet_runtime::deploy::{DeployOptions, Silent, deploy};
use decnet_runtime::docker::DockerEngine;
use decnet_runtime::hairpin::NetlinkHostNetwork;
use decnet_runtime::image::{BIN_SHA_LABEL, ensure_image};
use decnet_runtime::spec::{Project, image_tag, labels};
use decnet_runtime::teardown::{TeardownOptions, teardown_all};

use crate::guard::Teardown;
use crate::lab::{LIVE, Lab, interfaces, live_env};

fn config(lab: &Lab) -> DecnetConfig {
    serde_json::from_value(serde_json::json!({
        "mode": "unihost", "interface": lab.parent, "subnet": format!("{}.0/24", lab.prefix),
        "gateway": format!("{}.1", lab.prefix),
        "deckies": [
            {"name": format!("{}-a", lab.tag), "ip": format!("{}.20", lab.prefix), "services": ["http", "ssh"],
             "distro": "debian", "base_image": "debian:bookworm-slim", "hostname": "SRV-ATLAS-12", "nmap_os": "linux"},
            {"name": format!("{}-b", lab.tag), "ip": format!("{}.21", lab.prefix), "services": ["redis"],
             "distro": "debian", "base_image": "debian:bookworm-slim", "hostname": "WS-17", "nmap_os": "windows"}
        ]
    }))
    .unwrap()
}

#[test]
fn image_containers_redeploy_and_teardown() {
    let Some(decky_bin) = live_env() else { return };
    let _serial = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::under(dir.path());
    let project = Project::new(&format!("rt-{}", lab.tag)).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let engine = rt.block_on(DockerEngine::connect(None)).unwrap();
    let _guard = Teardown {
        rt: &rt,
        engine: &engine,
        settings: &settings,
        project: project.clone(),
    };

    // The image: built from the static binary, FROM scratch, one file, unprivileged.
    let bin = PathBuf::from(&decky_bin);
    let image = rt
        .block_on(ensure_image(&engine, || Ok(bin.clone()), true, false))
        .unwrap();
    assert!(image.built);
    let inspect = rt
        .block_on(engine.client().inspect_image(&image_tag()))
        .unwrap();
    let cfg = inspect.config.unwrap();
    assert_eq!(cfg.user.as_deref(), Some("65532:65532"));
    assert_eq!(cfg.entrypoint, Some(vec!["/decnet-decky".to_owned()]));
    let sha = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(std::fs::read(&bin).unwrap()))
    };
    assert_eq!(cfg.labels.unwrap()[BIN_SHA_LABEL], sha);
    // A scratch image with one COPY: a single layer.
    assert_eq!(inspect.root_fs.unwrap().layers.unwrap().len(), 1);

    let cfg = config(&lab);
    let opts = DeployOptions {
        project: project.clone(),
        ..DeployOptions::default()
    };
    let report = rt
        .block_on(deploy(
            &engine,
            &NetlinkHostNetwork,
            &settings,
            &cfg,
            &opts,
            &Silent,
        ))
        .unwrap();
    assert!(report.all_running(), "{report:#?}");

    // The containers are exactly what the specs say.
    let observed = rt.block_on(engine.list_managed(project.as_str())).unwrap();
    assert_eq!(observed.len(), 5);
    let a = format!("{}-a", lab.tag);
    let base = rt
        .block_on(engine.client().inspect_container(&a, None))
        .unwrap();
    let host = base.host_config.clone().unwrap();
    assert_eq!(host.readonly_rootfs, Some(true));
    assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
    let sysctls = host.sysctls.unwrap();
    assert_eq!(sysctls["net.ipv4.ip_default_ttl"], "64");
    assert_eq!(sysctls["net.ipv4.ip_unprivileged_port_start"], "0");
    let nets = base.network_settings.clone().unwrap().networks.unwrap();
    let lan = &nets[&project.network()];
    assert_eq!(
        lan.ip_address.as_deref(),
        Some(format!("{}.20", lab.prefix).as_str())
    );
    assert!(lan.mac_address.as_deref().is_some_and(|m| m.len() == 17));
    let ssh = rt
        .block_on(engine.client().inspect_container(&format!("{a}-ssh"), None))
        .unwrap();
    let host = ssh.host_config.unwrap();
    // Docker resolves the base's name to its id at creation.
    let base_id = base.id.clone().unwrap();
    assert_eq!(
        host.network_mode.as_deref(),
        Some(format!("container:{base_id}").as_str())
    );
    assert_eq!(host.readonly_rootfs, Some(true));
    assert_eq!(host.cap_add, Some(vec!["NET_BIND_SERVICE".to_owned()]));
    assert_eq!(
        host.security_opt,
        Some(vec!["no-new-privileges:true".to_owned()])
    );
    assert_eq!(host.memory, Some(64 * 1024 * 1024));
    assert_eq!(host.pids_limit, Some(64));
    let log = host.log_config.unwrap();
    assert_eq!(log.typ.as_deref(), Some("json-file"));
    assert_eq!(log.config.unwrap()["max-size"], "10m");
    assert!(host.tmpfs.unwrap().contains_key("/tmp"));
    let labels_of: BTreeMap<String, String> =
        ssh.config.unwrap().labels.unwrap().into_iter().collect();
    assert_eq!(labels_of[labels::SERVICE], "ssh");
    assert_eq!(labels_of[labels::COMPOSE_PROJECT], project.as_str());
    let artifacts = settings.artifacts_dir.join(&a).join("ssh");
    use std::os::unix::fs::MetadataExt as _;
    assert_eq!(std::fs::metadata(&artifacts).unwrap().uid(), 65532);

    // Redeploying the same config keeps every container.
    let ids: Vec<String> = observed.iter().map(|c| c.id.clone()).collect();
    let again = rt
        .block_on(deploy(
            &engine,
            &NetlinkHostNetwork,
            &settings,
            &cfg,
            &opts,
            &Silent,
        ))
        .unwrap();
    assert!(again.unchanged(), "{again:#?}");
    let mut after: Vec<String> = rt
        .block_on(engine.list_managed(project.as_str()))
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let mut before = ids;
    before.sort();
    after.sort();
    assert_eq!(before, after);

    // Teardown: nothing of this project is left.
    let td = rt
        .block_on(teardown_all(
            &engine,
            &NetlinkHostNetwork,
            &settings,
            &TeardownOptions {
                project: project.clone(),
                ..TeardownOptions::default()
            },
        ))
        .unwrap();
    assert_eq!(td.removed.len(), 5);
    assert!(
        rt.block_on(engine.list_managed(project.as_str()))
            .unwrap()
            .is_empty()
    );
    assert!(
        rt.block_on(engine.network(&project.network()))
            .unwrap()
            .is_none()
    );
    assert!(!interfaces().contains(&report.hairpin.name));
    assert!(!settings.state_file.exists());
}
