//! Topic builders for the reference catalogue; id segments are typed, leaves are constants.
//!
//! Builders whose segments come from validated types ([`HostUuid`], [`DeckyName`],
//! [`IdToken`]) cannot fail. Builders that take free text (a dotted leaf) return a
//! `Result`; pass it straight to [`crate::publish_safely`], which logs and skips an invalid
//! topic instead of failing its caller.

use decnet_core::{DeckyName, HostUuid};

use crate::Error;
use crate::topic::{IdToken, Pattern, Topic};

/// Builds a topic from parts whose tokens are known to be valid.
fn built(parts: &[&str]) -> Topic {
    // Every part is an IdToken, a validated name or a constant leaf, so the join is a
    // valid topic unless it exceeds the size limits; those ids are at most 128 bytes
    // and the builders join at most four of them, far below MAX_TOPIC_LEN.
    match Topic::new(parts.join(".")) {
        Ok(t) => t,
        Err(_) => Topic::from_static("invalid.topic"),
    }
}

/// `system.bus.health`: the broker's heartbeat (type `bus.health`).
pub const SYSTEM_BUS_HEALTH: Topic = Topic::from_static("system.bus.health");
/// `system.log`: log lines from the collector and ingester.
pub const SYSTEM_LOG: Topic = Topic::from_static("system.log");
/// `system.webhook.subscriptions_changed`: webhook CRUD happened (empty payload).
pub const SYSTEM_WEBHOOK_SUBSCRIPTIONS_CHANGED: Topic =
    Topic::from_static("system.webhook.subscriptions_changed");
/// `attacker.observed`.
pub const ATTACKER_OBSERVED: Topic = Topic::from_static("attacker.observed");
/// `attacker.scored`.
pub const ATTACKER_SCORED: Topic = Topic::from_static("attacker.scored");
/// `attacker.fingerprinted`.
pub const ATTACKER_FINGERPRINTED: Topic = Topic::from_static("attacker.fingerprinted");
/// `attacker.fingerprint_rotated`.
pub const ATTACKER_FINGERPRINT_ROTATED: Topic = Topic::from_static("attacker.fingerprint_rotated");
/// `attacker.session.started`.
pub const ATTACKER_SESSION_STARTED: Topic = Topic::from_static("attacker.session.started");
/// `attacker.session.ended`.
pub const ATTACKER_SESSION_ENDED: Topic = Topic::from_static("attacker.session.ended");
/// `attacker.intel.enriched`.
pub const ATTACKER_INTEL_ENRICHED: Topic = Topic::from_static("attacker.intel.enriched");
/// `identity.formed`.
pub const IDENTITY_FORMED: Topic = Topic::from_static("identity.formed");
/// `identity.observation.linked`.
pub const IDENTITY_OBSERVATION_LINKED: Topic = Topic::from_static("identity.observation.linked");
/// `identity.merged`.
pub const IDENTITY_MERGED: Topic = Topic::from_static("identity.merged");
/// `identity.unmerged`.
pub const IDENTITY_UNMERGED: Topic = Topic::from_static("identity.unmerged");
/// `identity.campaign.assigned`.
pub const IDENTITY_CAMPAIGN_ASSIGNED: Topic = Topic::from_static("identity.campaign.assigned");
/// `campaign.formed`.
pub const CAMPAIGN_FORMED: Topic = Topic::from_static("campaign.formed");
/// `campaign.identity.assigned`.
pub const CAMPAIGN_IDENTITY_ASSIGNED: Topic = Topic::from_static("campaign.identity.assigned");
/// `campaign.merged`.
pub const CAMPAIGN_MERGED: Topic = Topic::from_static("campaign.merged");
/// `campaign.unmerged`.
pub const CAMPAIGN_UNMERGED: Topic = Topic::from_static("campaign.unmerged");
/// `credential.captured`.
pub const CREDENTIAL_CAPTURED: Topic = Topic::from_static("credential.captured");
/// `credential.reuse.detected`.
pub const CREDENTIAL_REUSE_DETECTED: Topic = Topic::from_static("credential.reuse.detected");
/// `email.received`.
pub const EMAIL_RECEIVED: Topic = Topic::from_static("email.received");
/// `ttp.tagged`.
pub const TTP_TAGGED: Topic = Topic::from_static("ttp.tagged");
/// `ttp.rule.suppressed`.
pub const TTP_RULE_SUPPRESSED: Topic = Topic::from_static("ttp.rule.suppressed");
/// `attribution.profile.state_changed`.
pub const ATTRIBUTION_PROFILE_STATE_CHANGED: Topic =
    Topic::from_static("attribution.profile.state_changed");
/// `attribution.profile.multi_actor_suspected`.
pub const ATTRIBUTION_PROFILE_MULTI_ACTOR_SUSPECTED: Topic =
    Topic::from_static("attribution.profile.multi_actor_suspected");

/// Event type of `system.<worker>.health`.
pub const TYPE_HEALTH: &str = "health";
/// Event type of `system.<worker>.control`.
pub const TYPE_CONTROL: &str = "control";
/// Event type of `system.bus.health`.
pub const TYPE_BUS_HEALTH: &str = "bus.health";

/// `decky.<host>:<name>.state`: the reconciler's fleet transitions.
pub fn decky_state(host: &HostUuid, name: &DeckyName) -> Topic {
    built(&[
        "decky",
        &format!("{}:{}", host.as_str(), name.as_str()),
        "state",
    ])
}

/// `decky.<id>.lifecycle`.
pub fn decky_lifecycle(id: &IdToken) -> Topic {
    built(&["decky", id.as_str(), "lifecycle"])
}

/// `decky.<name>.traffic` (sniffer).
pub fn decky_traffic(name: &DeckyName) -> Topic {
    built(&["decky", name.as_str(), "traffic"])
}

/// `decky.<name>.mutate_request`.
pub fn decky_mutate_request(name: &DeckyName) -> Topic {
    built(&["decky", name.as_str(), "mutate_request"])
}

/// `decky.<name>.mutation`.
pub fn decky_mutation(name: &DeckyName) -> Topic {
    built(&["decky", name.as_str(), "mutation"])
}

/// Decky service changes: `decky.<id>.{service_added,service_removed,service_config_changed}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeckyServiceChange {
    /// `service_added`.
    Added,
    /// `service_removed`.
    Removed,
    /// `service_config_changed`.
    ConfigChanged,
}

/// `decky.<id>.<service change>`.
pub fn decky_service(id: &IdToken, change: DeckyServiceChange) -> Topic {
    let leaf = match change {
        DeckyServiceChange::Added => "service_added",
        DeckyServiceChange::Removed => "service_removed",
        DeckyServiceChange::ConfigChanged => "service_config_changed",
    };
    built(&["decky", id.as_str(), leaf])
}

/// `system.<worker>.health` (type [`TYPE_HEALTH`], payload `{worker, ts, …}`).
pub fn system_health(worker: &IdToken) -> Topic {
    built(&["system", worker.as_str(), "health"])
}

/// `system.<worker>.control` (type [`TYPE_CONTROL`], payload `{action, requested_by, ts}`).
pub fn system_control(worker: &IdToken) -> Topic {
    built(&["system", worker.as_str(), "control"])
}

/// Stages of a topology mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MutationStage {
    /// `enqueued`.
    Enqueued,
    /// `applying`.
    Applying,
    /// `applied`.
    Applied,
    /// `failed`.
    Failed,
}

/// `topology.<id>.mutation.<stage>`.
pub fn topology_mutation(id: &IdToken, stage: MutationStage) -> Topic {
    let leaf = match stage {
        MutationStage::Enqueued => "enqueued",
        MutationStage::Applying => "applying",
        MutationStage::Applied => "applied",
        MutationStage::Failed => "failed",
    };
    built(&["topology", id.as_str(), "mutation", leaf])
}

/// `topology.<id>.status`.
pub fn topology_status(id: &IdToken) -> Topic {
    built(&["topology", id.as_str(), "status"])
}

/// `topology.<id>.>`: everything about one topology (the topology SSE feed).
pub fn topology_all(id: &IdToken) -> Pattern {
    match Pattern::new(format!("topology.{}.>", id.as_str())) {
        Ok(p) => p,
        Err(_) => Pattern::from(Topic::from_static("invalid.pattern")),
    }
}

/// Orchestrator feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrchestratorKind {
    /// `traffic`.
    Traffic,
    /// `file`.
    File,
    /// `email`.
    Email,
}

/// `orchestrator.<kind>.<decky>`.
pub fn orchestrator(kind: OrchestratorKind, decky: &IdToken) -> Topic {
    let k = match kind {
        OrchestratorKind::Traffic => "traffic",
        OrchestratorKind::File => "file",
        OrchestratorKind::Email => "email",
    };
    built(&["orchestrator", k, decky.as_str()])
}

/// Canary token events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CanaryEvent {
    /// `placed`.
    Placed,
    /// `triggered`.
    Triggered,
    /// `revoked`.
    Revoked,
}

/// `canary.<token>.<event>`.
pub fn canary(token: &IdToken, event: CanaryEvent) -> Topic {
    let leaf = match event {
        CanaryEvent::Placed => "placed",
        CanaryEvent::Triggered => "triggered",
        CanaryEvent::Revoked => "revoked",
    };
    built(&["canary", token.as_str(), leaf])
}

/// `ttp.rule.fired.<technique>`.
pub fn ttp_rule_fired(technique: &IdToken) -> Topic {
    built(&["ttp", "rule", "fired", technique.as_str()])
}

/// `ttp.rule.reloaded.<rule>`.
pub fn ttp_rule_reloaded(rule: &IdToken) -> Topic {
    built(&["ttp", "rule", "reloaded", rule.as_str()])
}

/// `ttp.rule.state.<rule>`.
pub fn ttp_rule_state(rule: &IdToken) -> Topic {
    built(&["ttp", "rule", "state", rule.as_str()])
}

/// `attacker.observation.<primitive>`; the primitive may be dotted.
///
/// # Errors
/// [`Error::InvalidTopic`] when `primitive` is empty or not topic text.
pub fn attacker_observation(primitive: &str) -> Result<Topic, Error> {
    Topic::from_static("attacker.observation").child(primitive)
}

/// `smtp.<leaf>`; the leaf may be dotted.
///
/// # Errors
/// [`Error::InvalidTopic`] when `leaf` is empty or not topic text.
pub fn smtp(leaf: &str) -> Result<Topic, Error> {
    Topic::from_static("smtp").child(leaf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> IdToken {
        IdToken::new("id", s).unwrap()
    }

    #[test]
    fn builders_produce_the_reference_topics() {
        let host = HostUuid::local();
        let name = DeckyName::new("web-01").unwrap();
        assert_eq!(
            decky_state(&host, &name).as_str(),
            "decky.local:web-01.state"
        );
        assert_eq!(
            decky_lifecycle(&id("local:web-01")).as_str(),
            "decky.local:web-01.lifecycle"
        );
        assert_eq!(decky_traffic(&name).as_str(), "decky.web-01.traffic");
        assert_eq!(
            decky_mutate_request(&name).as_str(),
            "decky.web-01.mutate_request"
        );
        assert_eq!(decky_mutation(&name).as_str(), "decky.web-01.mutation");
        assert_eq!(
            decky_service(&id("d1"), DeckyServiceChange::ConfigChanged).as_str(),
            "decky.d1.service_config_changed"
        );
        assert_eq!(system_health(&id("agent")).as_str(), "system.agent.health");
        assert_eq!(
            system_control(&id("reconciler")).as_str(),
            "system.reconciler.control"
        );
        assert_eq!(
            topology_mutation(&id("t1"), MutationStage::Applied).as_str(),
            "topology.t1.mutation.applied"
        );
        assert_eq!(topology_status(&id("t1")).as_str(), "topology.t1.status");
        assert_eq!(topology_all(&id("t1")).as_str(), "topology.t1.>");
        assert_eq!(
            orchestrator(OrchestratorKind::File, &id("u-1")).as_str(),
            "orchestrator.file.u-1"
        );
        assert_eq!(
            canary(&id("tok"), CanaryEvent::Triggered).as_str(),
            "canary.tok.triggered"
        );
        assert_eq!(
            ttp_rule_fired(&id("T1059")).as_str(),
            "ttp.rule.fired.T1059"
        );
        assert_eq!(
            ttp_rule_reloaded(&id("r1")).as_str(),
            "ttp.rule.reloaded.r1"
        );
        assert_eq!(ttp_rule_state(&id("r1")).as_str(), "ttp.rule.state.r1");
        assert_eq!(
            attacker_observation("tls.ja3").unwrap().as_str(),
            "attacker.observation.tls.ja3"
        );
        assert!(attacker_observation("").is_err());
        assert!(smtp("bad leaf").is_err());
        assert_eq!(SYSTEM_BUS_HEALTH.as_str(), "system.bus.health");
        assert_eq!(CREDENTIAL_CAPTURED.as_str(), "credential.captured");
    }

    #[test]
    fn dotted_leaves_interact_with_wildcards_as_documented() {
        let star = Pattern::new("attacker.*").unwrap();
        assert!(star.matches(&ATTACKER_OBSERVED));
        assert!(!star.matches(&ATTACKER_SESSION_STARTED));
        let health = Pattern::new("system.*.health").unwrap();
        assert!(health.matches(&SYSTEM_BUS_HEALTH));
        assert!(health.matches(&system_health(&id("agent"))));
    }
}
