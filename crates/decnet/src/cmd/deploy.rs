//! `decnet deploy`: plan a fleet from flags or an INI, then (unless `--dry-run`) run it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use decnet_core::deploy_ini::parse_deployment_ini;
use decnet_core::hostcfg::HostRole;
use decnet_core::model::parse_subnet;
use decnet_core::plan::{FlagSpec, NetworkOrigin, Plan, PlanRequest, PlanSource, build_plan};
use decnet_core::{Mode, Settings};
use decnet_runtime::{compose, hostnet, spec};
use serde::Serialize;

use crate::cli::DeployArgs;
use crate::context::Ctx;
use crate::exit::{Status, invalid};
use crate::output;

/// Reads the per-installation key if it exists (dry runs never create it).
pub fn read_instance_key(settings: &Settings) -> Result<Option<[u8; 32]>> {
    match std::fs::read(&settings.instance_key) {
        Ok(bytes) => <[u8; 32]>::try_from(bytes.as_slice())
            .map(Some)
            .map_err(|_| {
                anyhow::anyhow!("{} is not a 32-byte key", settings.instance_key.display())
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("read {}", settings.instance_key.display())),
    }
}

/// Builds the plan request from the command line (and the INI it names).
fn plan_request(
    args: &DeployArgs,
    detected: Option<decnet_core::net::NetInfo>,
) -> Result<PlanRequest> {
    let mode: Mode = args.mode.parse()?;
    let subnet = args.subnet.as_deref().map(parse_subnet).transpose()?;
    if let Some(target) = &args.log_target {
        let valid = target.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !valid {
            return Err(invalid(format!(
                "--log-target '{target}': expected host:port"
            )));
        }
    }
    let source = match &args.config {
        Some(path) => {
            if args.deckies.is_some() {
                return Err(invalid(
                    "--deckies and --config cannot be combined (the INI lists the deckies)",
                ));
            }
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("read {}", path.display()))?;
            PlanSource::Ini(parse_deployment_ini(&path.display().to_string(), &text)?)
        }
        None => {
            let Some(count) = args.deckies else {
                return Err(invalid(
                    "say how many deckies: --deckies N (or give a deployment INI with --config)",
                ));
            };
            PlanSource::Flags(FlagSpec {
                count,
                services: args.services.clone(),
                randomize_services: args.randomize_services,
                distros: args.distro.clone(),
                randomize_distros: args.randomize_distros,
                archetype: args.archetype.clone(),
                ip_start: args.ip_start,
            })
        }
    };
    Ok(PlanRequest {
        mode,
        source,
        interface: args.interface.clone(),
        subnet,
        log_file: args.log_file.clone(),
        ipvlan: args.ipvlan,
        mutate_interval: args.mutate_interval,
        seed: args.seed.unwrap_or_else(rand::random),
        now: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0),
        detected,
        allow_placeholder: args.dry_run,
    })
}

/// Plans the fleet: detection (read-only) then plan building.
pub fn plan(args: &DeployArgs) -> Result<Plan> {
    if args.mutate_interval == Some(0) {
        return Err(invalid("--mutate-interval must be at least 1 minute"));
    }
    // Detection only reads /proc and interface addresses; a failure is fine for a dry run
    // (placeholders) and for a live run that was given the network explicitly.
    let detected = match hostnet::detect(args.interface.as_deref()) {
        Ok(info) => Some(info),
        Err(e) => {
            tracing::info!(error = %e, "Network detection failed");
            None
        }
    };
    Ok(build_plan(&plan_request(args, detected)?)?)
}

#[derive(Serialize)]
struct DryRunReport<'a> {
    dry_run: bool,
    seed: u64,
    network: NetworkOrigin,
    host_ip: Option<std::net::Ipv4Addr>,
    compose_path: Option<PathBuf>,
    config: &'a decnet_core::DecnetConfig,
}

/// Prints the plan table.
pub fn print_plan(plan: &Plan) {
    let c = &plan.config;
    println!(
        "{} deckies, mode {}, seed {} (pass --seed {} to reproduce)",
        c.deckies.len(),
        c.mode,
        plan.seed,
        plan.seed
    );
    let origin = match plan.network {
        NetworkOrigin::Given => "given",
        NetworkOrigin::Detected => "detected",
        NetworkOrigin::Placeholder => "PLACEHOLDER",
    };
    println!(
        "network: interface {}, subnet {}, gateway {}, driver {} ({origin})",
        c.interface,
        c.subnet,
        c.gateway,
        if c.ipvlan { "ipvlan" } else { "macvlan" }
    );
    if plan.network == NetworkOrigin::Placeholder {
        println!(
            "note: no usable network interface was detected; the interface and addresses are placeholders \
             from the documentation range. Pass --interface and --subnet for a real plan."
        );
    }
    let mut t = output::table(&["DECKY", "IP", "HOSTNAME", "DISTRO", "OS FAMILY", "SERVICES"]);
    for d in &c.deckies {
        t.add_row(vec![
            d.name.to_string(),
            d.ip.to_string(),
            d.hostname.clone(),
            d.distro.clone(),
            d.nmap_os.clone(),
            d.services.join(", "),
        ]);
    }
    println!("{t}");
}

fn write_export(path: &Path, text: &str) -> Result<Option<PathBuf>> {
    if path == Path::new("-") {
        std::io::stdout().write_all(text.as_bytes())?;
        return Ok(None);
    }
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    std::fs::write(&path, text)
        .with_context(|| format!("write compose export {}", path.display()))?;
    Ok(Some(path))
}

pub fn run(ctx: &Ctx, args: &DeployArgs) -> Result<Status> {
    let role = ctx.host.role()?;
    if role == HostRole::Agent && ctx.host.flag("DECNET_DISALLOW_MASTER", true) {
        return Err(invalid(
            "this host is configured as a swarm agent (DECNET_MODE=agent): deploy from the master \
             (set DECNET_DISALLOW_MASTER=false to override)",
        ));
    }
    let plan = plan(args)?;
    if !args.dry_run {
        return Err(invalid(
            "live deploy is not available in this build yet; use --dry-run to plan and export",
        ));
    }
    let key = read_instance_key(&ctx.settings)?;
    let note = if key.is_none() {
        Some("dry run before the first deploy: DECNET_SEED is filled in by `decnet deploy`")
    } else {
        None
    };
    let specs = spec::fleet_containers(
        &plan.config,
        &spec::SpecOptions::new(spec::image_tag(), ctx.settings.artifacts_dir.clone(), key),
    );
    let text = compose::render(&plan.config, &specs, note);
    let to_stdout = args.out == Path::new("-");
    if args.json {
        let compose_path = write_export(&args.out, &text)?;
        if !to_stdout {
            output::json(&DryRunReport {
                dry_run: true,
                seed: plan.seed,
                network: plan.network,
                host_ip: plan.host_ip,
                compose_path,
                config: &plan.config,
            })?;
        }
    } else {
        if !to_stdout {
            print_plan(&plan);
        }
        if let Some(path) = write_export(&args.out, &text)? {
            println!("compose export written to {}", path.display());
        }
    }
    Ok(Status::Ok)
}
