//! `decnet services|archetypes|distros|os-families`: the compiled-in catalogues.

use anyhow::Result;
use decnet_core::catalog::{ARCHETYPES, DISTROS, OS_FAMILIES, SERVICES};

use crate::exit::Status;
use crate::output;

pub fn services(json: bool) -> Result<Status> {
    if json {
        output::json(&SERVICES)?;
        return Ok(Status::Ok);
    }
    let mut t = output::table(&[
        "SERVICE",
        "PORTS",
        "PROTOCOL",
        "ROLE",
        "EMULATED",
        "PERSONA KEYS",
    ]);
    for s in SERVICES {
        let ports: Vec<String> = s.ports.iter().map(ToString::to_string).collect();
        let keys: Vec<&str> = s.persona.iter().map(|k| k.key).collect();
        let role = serde_json::to_value(s.role)?
            .as_str()
            .unwrap_or_default()
            .replace('_', " ");
        let emulated = match (s.fleet_singleton, s.emulated) {
            (true, _) => "host singleton",
            (false, true) => "yes",
            (false, false) => "planned",
        };
        t.add_row(vec![
            s.slug.to_owned(),
            ports.join(","),
            s.protocol.to_owned(),
            role,
            emulated.to_owned(),
            keys.join(", "),
        ]);
    }
    println!("{t}");
    Ok(Status::Ok)
}

pub fn archetypes(json: bool) -> Result<Status> {
    if json {
        output::json(&ARCHETYPES)?;
        return Ok(Status::Ok);
    }
    let mut t = output::table(&[
        "ARCHETYPE",
        "SERVICES",
        "DISTROS",
        "OS FAMILY",
        "DESCRIPTION",
    ]);
    for a in ARCHETYPES {
        t.add_row(vec![
            a.slug.to_owned(),
            a.services.join(", "),
            a.distros.join(", "),
            a.os_family.to_owned(),
            a.display.to_owned(),
        ]);
    }
    println!("{t}");
    Ok(Status::Ok)
}

pub fn distros(json: bool) -> Result<Status> {
    if json {
        output::json(&DISTROS)?;
        return Ok(Status::Ok);
    }
    let mut t = output::table(&[
        "DISTRO",
        "NAME",
        "BASE IMAGE",
        "HOSTNAME STYLE",
        "SSH VERSION",
    ]);
    for d in DISTROS {
        let style = serde_json::to_value(d.hostname_style)?
            .as_str()
            .unwrap_or_default()
            .to_owned();
        t.add_row(vec![d.slug, d.display, d.base_image, &style, d.ssh_version]);
    }
    println!("{t}");
    Ok(Status::Ok)
}

pub fn os_families(json: bool) -> Result<Status> {
    if json {
        output::json(&OS_FAMILIES)?;
        return Ok(Status::Ok);
    }
    let mut t = output::table(&[
        "FAMILY",
        "TTL",
        "SYN RETRIES",
        "TIMESTAMPS",
        "WSCALE",
        "SACK",
        "ECN",
        "DESCRIPTION",
    ]);
    for f in OS_FAMILIES {
        t.add_row(vec![
            f.slug.to_owned(),
            f.ttl.to_string(),
            f.tcp_syn_retries.to_string(),
            f.tcp_timestamps.to_string(),
            f.tcp_window_scaling.to_string(),
            f.tcp_sack.to_string(),
            f.tcp_ecn.to_string(),
            f.display.to_owned(),
        ]);
    }
    println!("{t}");
    Ok(Status::Ok)
}
