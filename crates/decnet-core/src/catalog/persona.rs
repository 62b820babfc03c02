//! Persona value coercion: INI text and JSON values checked against a key's declared kind.

use base64::Engine as _;
use serde_json::Value;

use super::{PersonaKind, ServiceSpec};
use crate::Error;

/// Longest persona value accepted, after decoding (certificates and page bodies fit).
pub const MAX_PERSONA_VALUE: usize = 64 * 1024;

fn key_error(service: &ServiceSpec, key: &str) -> Error {
    Error::PersonaKey {
        service: service.slug.to_owned(),
        key: key.to_owned(),
        accepted: if service.persona.is_empty() {
            "none".to_owned()
        } else {
            service
                .persona
                .iter()
                .map(|k| k.key)
                .collect::<Vec<_>>()
                .join(", ")
        },
    }
}

fn value_error(service: &ServiceSpec, key: &str, reason: impl Into<String>) -> Error {
    Error::PersonaValue {
        service: service.slug.to_owned(),
        key: key.to_owned(),
        reason: reason.into(),
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn check_credentials(text: &str) -> Result<(), String> {
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match pair.split_once(':') {
            Some((user, _)) if !user.trim().is_empty() => {}
            _ => return Err(format!("'{pair}' is not user:password")),
        }
    }
    Ok(())
}

/// Parses an INI value for `service`'s persona `key` into its typed JSON form.
///
/// Text areas accept the reference's `b64:` prefix. Empty values are refused rather than
/// silently dropped, so a typo cannot disable a setting unnoticed.
///
/// # Errors
/// [`Error::PersonaKey`] for a key the service does not accept, [`Error::PersonaValue`]
/// for a value of the wrong shape.
pub fn parse_persona_value(service: &ServiceSpec, key: &str, text: &str) -> Result<Value, Error> {
    let spec = service
        .persona_key(key)
        .ok_or_else(|| key_error(service, key))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(value_error(service, key, "value is empty"));
    }
    let value = match spec.kind {
        PersonaKind::Text | PersonaKind::Secret => Value::String(text.to_owned()),
        PersonaKind::Textarea => {
            let decoded = match text.strip_prefix("b64:") {
                Some(b64) => {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(b64.trim())
                        .map_err(|e| value_error(service, key, format!("bad b64: value: {e}")))?;
                    String::from_utf8(bytes)
                        .map_err(|_| value_error(service, key, "b64: value is not UTF-8"))?
                }
                None => text.to_owned(),
            };
            Value::String(decoded)
        }
        PersonaKind::Int { min, max } => {
            let n: i64 = text
                .parse()
                .map_err(|_| value_error(service, key, format!("'{text}' is not an integer")))?;
            if !(min..=max).contains(&n) {
                return Err(value_error(
                    service,
                    key,
                    format!("{n} is outside {min}..={max}"),
                ));
            }
            Value::from(n)
        }
        PersonaKind::Bool => Value::Bool(parse_bool(text).ok_or_else(|| {
            value_error(
                service,
                key,
                format!("'{text}' is not a boolean (true/false)"),
            )
        })?),
        PersonaKind::Choice { values } => {
            let lower = text.to_ascii_lowercase();
            if !values.contains(&lower.as_str()) {
                return Err(value_error(
                    service,
                    key,
                    format!("'{text}' is not one of {}", values.join(", ")),
                ));
            }
            Value::String(lower)
        }
        PersonaKind::Credentials => {
            check_credentials(text).map_err(|e| value_error(service, key, e))?;
            Value::String(text.to_owned())
        }
        PersonaKind::List => Value::String(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(","),
        ),
    };
    check_persona_value(service, key, &value)?;
    Ok(value)
}

/// Checks an already-typed value (from a state file or an API body).
///
/// # Errors
/// As [`parse_persona_value`].
pub fn check_persona_value(service: &ServiceSpec, key: &str, value: &Value) -> Result<(), Error> {
    let spec = service
        .persona_key(key)
        .ok_or_else(|| key_error(service, key))?;
    let size = match value {
        Value::String(s) => s.len(),
        other => other.to_string().len(),
    };
    if size > MAX_PERSONA_VALUE {
        return Err(value_error(
            service,
            key,
            format!("value is {size} bytes, at most {MAX_PERSONA_VALUE} are allowed"),
        ));
    }
    let ok = match (spec.kind, value) {
        (PersonaKind::Int { min, max }, Value::Number(n)) => {
            n.as_i64().is_some_and(|n| (min..=max).contains(&n))
        }
        // The reference stores what INI gave it; numbers and booleans written as text
        // are accepted when they parse.
        (PersonaKind::Int { min, max }, Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .is_ok_and(|n| (min..=max).contains(&n)),
        (PersonaKind::Bool, Value::Bool(_)) => true,
        (PersonaKind::Bool, Value::String(s)) => parse_bool(s).is_some(),
        (PersonaKind::Choice { values }, Value::String(s)) => values.contains(&s.as_str()),
        (PersonaKind::Credentials, Value::String(s)) => check_credentials(s).is_ok(),
        (PersonaKind::List, Value::Array(items)) => items.iter().all(Value::is_string),
        (
            PersonaKind::Text | PersonaKind::Secret | PersonaKind::Textarea | PersonaKind::List,
            Value::String(_),
        ) => true,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(value_error(
            service,
            key,
            format!("{value} does not fit {:?}", spec.kind),
        ))
    }
}

/// Renders a checked value as the environment-variable text the emulator reads.
pub fn persona_env_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::service;

    #[test]
    fn coerces_by_kind() {
        let http = service("http").unwrap();
        assert_eq!(
            parse_persona_value(http, "response_code", "404").unwrap(),
            Value::from(404)
        );
        assert_eq!(
            parse_persona_value(http, "fake_app", "WordPress").unwrap(),
            Value::from("wordpress")
        );
        assert_eq!(
            parse_persona_value(http, "custom_body", "b64:aGVsbG8=").unwrap(),
            Value::from("hello")
        );
        let https = service("https").unwrap();
        assert_eq!(
            parse_persona_value(https, "h3", "on").unwrap(),
            Value::Bool(true)
        );
        let ssh = service("ssh").unwrap();
        assert!(parse_persona_value(ssh, "users", "root:toor, admin:admin123").is_ok());
    }

    #[test]
    fn refuses_with_the_culprit() {
        let http = service("http").unwrap();
        let err = parse_persona_value(http, "ssh_version", "x")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("'ssh_version'") && err.contains("server_header"),
            "{err}"
        );
        let err = parse_persona_value(http, "response_code", "600")
            .unwrap_err()
            .to_string();
        assert!(err.contains("600") && err.contains("100..=599"), "{err}");
        let err = parse_persona_value(http, "fake_app", "drupal")
            .unwrap_err()
            .to_string();
        assert!(err.contains("drupal"), "{err}");
        let ssh = service("ssh").unwrap();
        let err = parse_persona_value(ssh, "users", "root")
            .unwrap_err()
            .to_string();
        assert!(err.contains("user:password"), "{err}");
        let vnc_less = service("mssql").unwrap();
        let err = parse_persona_value(vnc_less, "version", "1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("accepted: none"), "{err}");
        assert!(parse_persona_value(http, "server_header", "  ").is_err());
    }

    #[test]
    fn typed_values_from_state_files() {
        let redis = service("redis").unwrap();
        assert!(check_persona_value(redis, "version", &Value::from("7.0.15")).is_ok());
        assert!(check_persona_value(redis, "version", &Value::from(7)).is_err());
        let http = service("http").unwrap();
        assert!(check_persona_value(http, "response_code", &Value::from("403")).is_ok());
        assert_eq!(persona_env_value(&Value::from(403)), "403");
        assert_eq!(persona_env_value(&serde_json::json!(["h1", "h2"])), "h1,h2");
    }
}
