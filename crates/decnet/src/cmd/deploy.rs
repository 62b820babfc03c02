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
use decnet_runtime::deploy::{Action, DeployOptions, DeployReport, Progress as _};
use decnet_runtime::hairpin::NetlinkHostNetwork;
use decnet_runtime::{compose, hostnet, spec};
use serde::Serialize;

use super::{live, mirror};
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
    previous_seed: Option<u64>,
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
        seed: args.seed.or(previous_seed).unwrap_or_else(rand::random),
        now: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0),
        detected,
        allow_placeholder: args.dry_run,
    })
}

/// Plans the fleet: detection (read-only) then plan building. Without `--seed`, the
/// deployed fleet's seed is reused, so the same description plans the same fleet (and a
/// redeploy changes nothing).
pub fn plan(args: &DeployArgs, settings: &Settings) -> Result<Plan> {
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
    let previous_seed = decnet_core::state::load(&settings.state_file)
        .ok()
        .flatten()
        .and_then(|s| s.seed);
    Ok(build_plan(&plan_request(args, detected, previous_seed)?)?)
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
    if args.mode == "swarm" {
        return super::swarm::deploy(ctx, args, &plan(args, &ctx.settings)?);
    }
    let plan = plan(args, &ctx.settings)?;
    if args.dry_run {
        dry_run(ctx, args, &plan)
    } else {
        live_deploy(ctx, args, &plan)
    }
}

fn dry_run(ctx: &Ctx, args: &DeployArgs, plan: &Plan) -> Result<Status> {
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
            print_plan(plan);
        }
        if let Some(path) = write_export(&args.out, &text)? {
            println!("compose export written to {}", path.display());
        }
    }
    Ok(Status::Ok)
}

/// How a live deploy ended.
#[derive(Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    /// Every container runs.
    Ok,
    /// Some do.
    Partial,
    /// None does.
    Failed,
}

#[derive(Serialize)]
struct LiveReport<'a> {
    dry_run: bool,
    status: Outcome,
    seed: u64,
    compose_path: &'a Path,
    #[serde(flatten)]
    report: &'a DeployReport,
}

fn live_deploy(ctx: &Ctx, args: &DeployArgs, plan: &Plan) -> Result<Status> {
    if plan.config.mode == Mode::Swarm {
        return Err(invalid(
            "a swarm deploy is dispatched by the master to its workers, which is not available \
             in this build; use --mode unihost, or --dry-run to plan",
        ));
    }
    // Refused before Docker is even contacted.
    decnet_runtime::deploy::check_emulated(&plan.config)?;
    let project = live::project(&ctx.settings)?;
    let rt = live::runtime()?;
    let report = rt.block_on(async {
        let engine = live::engine().await?;
        let reporter = live::Reporter::new();
        let opts = DeployOptions {
            host_ip: plan.host_ip,
            decky_bin: args.decky_bin.clone(),
            current_exe: std::env::current_exe().ok(),
            no_cache: args.no_cache,
            jobs: usize::from(args.jobs),
            seed: Some(plan.seed),
            project: project.clone(),
            ..DeployOptions::default()
        };
        let result = decnet_runtime::deploy::deploy(
            &engine,
            &NetlinkHostNetwork,
            &ctx.settings,
            &plan.config,
            &opts,
            &reporter,
        )
        .await;
        reporter.end();
        anyhow::Ok(result?)
    })?;
    mirror::after_deploy(ctx, &plan.config);
    let outcome = if report.all_running() {
        Outcome::Ok
    } else if report.any_running() {
        Outcome::Partial
    } else {
        Outcome::Failed
    };
    if args.json {
        output::json(&LiveReport {
            dry_run: false,
            status: outcome,
            seed: plan.seed,
            compose_path: &ctx.settings.compose_file,
            report: &report,
        })?;
    } else {
        print_live(plan, &report, &ctx.settings.compose_file, &project);
    }
    match outcome {
        Outcome::Ok => Ok(Status::Ok),
        Outcome::Partial => Ok(Status::Partial),
        Outcome::Failed => Err(anyhow::anyhow!(
            "no container of the fleet is running (see the table above)"
        )),
    }
}

fn action_word(a: Action) -> &'static str {
    match a {
        Action::Unchanged => "unchanged",
        Action::Created => "created",
        Action::Recreated => "recreated",
        Action::Started => "started",
    }
}

fn print_live(plan: &Plan, report: &DeployReport, compose_path: &Path, project: &spec::Project) {
    let c = &plan.config;
    println!(
        "{} deckies on {} ({} on {}, subnet {}, gateway {}); seed {}",
        c.deckies.len(),
        project.network(),
        if c.ipvlan { "ipvlan" } else { "macvlan" },
        c.interface,
        c.subnet,
        c.gateway,
        plan.seed
    );
    println!(
        "image {} ({}); network {}; host interface {} {}/32",
        report.image.tag,
        if report.image.built {
            "built"
        } else {
            "present"
        },
        serde_json::to_value(report.network)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        report.hairpin.name,
        report.hairpin.address
    );
    if !report.removed.is_empty() {
        println!("removed (no longer wanted): {}", report.removed.join(", "));
    }
    let mut t = output::table(&[
        "DECKY",
        "IP",
        "STATE",
        "SERVICE",
        "CONTAINER",
        "ACTION",
        "RESULT",
    ]);
    for d in &report.deckies {
        for (i, o) in std::iter::once(&d.base).chain(&d.services).enumerate() {
            let result = match &o.error {
                None => "running".to_owned(),
                Some(e) => format!("FAILED: {e}"),
            };
            t.add_row(vec![
                if i == 0 {
                    d.name.clone()
                } else {
                    String::new()
                },
                if i == 0 {
                    d.ip.to_string()
                } else {
                    String::new()
                },
                if i == 0 {
                    d.state.as_str().to_owned()
                } else {
                    String::new()
                },
                o.service.clone().unwrap_or_else(|| "(base)".to_owned()),
                o.container.clone(),
                action_word(o.action).to_owned(),
                result,
            ]);
        }
    }
    println!("{t}");
    let all: Vec<_> = report
        .deckies
        .iter()
        .flat_map(|d| std::iter::once(&d.base).chain(&d.services))
        .collect();
    let running = all.iter().filter(|o| o.running).count();
    if running == all.len() {
        if report.unchanged() {
            println!("all {running} containers run; nothing changed");
        } else {
            println!("all {running} containers run");
        }
    } else {
        println!(
            "PARTIAL: {running} of {} containers run (exit status 3 when some run)",
            all.len()
        );
    }
    println!("compose export: {}", compose_path.display());
}
