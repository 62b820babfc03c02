//! Credentials in HTTP requests: `Authorization` (Basic, Bearer/Token, Digest), login
//! forms (urlencoded, multipart, JSON) and XML-RPC `wp.getUsersBlogs` calls.

use base64::Engine as _;

use crate::event::{Credential, MAX_SECRET_BYTES, Outcome, SecretKind};

/// Form fields that carry a user name, in order of preference.
pub const USER_FIELDS: [&str; 9] = [
    "username",
    "user",
    "email",
    "log",
    "pma_username",
    "j_username",
    "login",
    "uname",
    "user_login",
];
/// Form fields that carry a password, in order of preference.
pub const PASSWORD_FIELDS: [&str; 7] = [
    "password",
    "pass",
    "pwd",
    "pma_password",
    "j_password",
    "passwd",
    "user_pass",
];
/// Most form fields looked at in one body.
pub const MAX_FORM_FIELDS: usize = 64;
/// Most multipart parts looked at in one body.
pub const MAX_PARTS: usize = 32;

/// A credential and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The credential.
    pub credential: Credential,
    /// Extra event fields (`user_field`, `realm`, ...).
    pub extra: Vec<(&'static str, String)>,
}

fn cut(bytes: &[u8]) -> Vec<u8> {
    bytes[..bytes.len().min(MAX_SECRET_BYTES)].to_vec()
}

/// The credential of an `Authorization` header value, if any.
pub fn from_authorization(value: &[u8]) -> Option<Found> {
    let value = value.trim_ascii();
    let (scheme, rest) = match value.iter().position(|&b| b == b' ') {
        Some(sp) => (&value[..sp], value[sp + 1..].trim_ascii()),
        None => (value, &value[value.len()..]),
    };
    let scheme = String::from_utf8_lossy(scheme).to_ascii_lowercase();
    match scheme.as_str() {
        "basic" => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .ok()?;
            let (user, pass) = match decoded.iter().position(|&b| b == b':') {
                Some(colon) => (&decoded[..colon], &decoded[colon + 1..]),
                None => (&decoded[..], &decoded[decoded.len()..]),
            };
            Some(Found {
                credential: Credential::password(
                    &String::from_utf8_lossy(user),
                    pass,
                    Outcome::Failure,
                )
                .mechanism("basic"),
                extra: Vec::new(),
            })
        }
        "bearer" | "token" => {
            if rest.is_empty() {
                return None;
            }
            Some(Found {
                credential: Credential {
                    principal: None,
                    kind: SecretKind::HttpBearer,
                    secret: cut(rest),
                    outcome: Outcome::Observed,
                    mechanism: Some(scheme),
                },
                extra: Vec::new(),
            })
        }
        "digest" => {
            let params = digest_params(rest);
            let get = |k: &str| {
                params
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v.clone())
            };
            let response = get("response")?;
            let mut extra = Vec::new();
            for key in ["realm", "nonce", "uri", "qop", "nc", "cnonce", "algorithm"] {
                if let Some(v) = get(key) {
                    extra.push((digest_field(key), v));
                }
            }
            Some(Found {
                credential: Credential {
                    principal: Some(get("username").unwrap_or_default()),
                    kind: SecretKind::HttpDigestMd5,
                    secret: cut(response.as_bytes()),
                    outcome: Outcome::Observed,
                    mechanism: Some("digest".into()),
                },
                extra,
            })
        }
        _ => None,
    }
}

fn digest_field(key: &str) -> &'static str {
    match key {
        "realm" => "digest_realm",
        "nonce" => "digest_nonce",
        "uri" => "digest_uri",
        "qop" => "digest_qop",
        "nc" => "digest_nc",
        "cnonce" => "digest_cnonce",
        _ => "digest_algorithm",
    }
}

/// `k=v, k="v"` pairs of a Digest header (at most [`MAX_FORM_FIELDS`]).
fn digest_params(rest: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(rest);
    let mut out = Vec::new();
    let mut s = text.as_ref();
    while out.len() < MAX_FORM_FIELDS {
        s = s.trim_start_matches([' ', ',']);
        let Some(eq) = s.find('=') else { break };
        let key = s[..eq].trim().to_owned();
        s = &s[eq + 1..];
        let value;
        if let Some(quoted) = s.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            value = quoted[..end].to_owned();
            s = quoted.get(end + 1..).unwrap_or("");
        } else {
            let end = s.find(',').unwrap_or(s.len());
            value = s[..end].trim().to_owned();
            s = &s[end..];
        }
        out.push((key, value));
    }
    out
}

/// Decodes `%xx` and `+` of one urlencoded component.
pub fn percent_decode(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < text.len() => match (hex_val(text[i + 1]), hex_val(text[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Name/value pairs of an urlencoded body (at most [`MAX_FORM_FIELDS`]).
pub fn urlencoded_fields(body: &[u8]) -> Vec<(String, Vec<u8>)> {
    body.split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .take(MAX_FORM_FIELDS)
        .map(|pair| {
            let (k, v) = match pair.iter().position(|&b| b == b'=') {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            (
                String::from_utf8_lossy(&percent_decode(k)).into_owned(),
                percent_decode(v),
            )
        })
        .collect()
}

/// Name/value pairs of a multipart/form-data body with `boundary` (file parts included
/// by name; at most [`MAX_PARTS`]).
pub fn multipart_fields(body: &[u8], boundary: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut delim = b"--".to_vec();
    delim.extend_from_slice(boundary);
    let mut out = Vec::new();
    let mut rest = body;
    // Skip the preamble up to the first delimiter.
    let Some(first) = find(rest, &delim) else {
        return out;
    };
    rest = &rest[first + delim.len()..];
    while out.len() < MAX_PARTS {
        if rest.starts_with(b"--") {
            break;
        }
        let Some(next) = find(rest, &delim) else {
            break;
        };
        let part = &rest[..next];
        rest = &rest[next + delim.len()..];
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let Some(split) = find(part, b"\r\n\r\n") else {
            continue;
        };
        let (head, value) = (&part[..split], &part[split + 4..]);
        let value = value.strip_suffix(b"\r\n").unwrap_or(value);
        let head = String::from_utf8_lossy(head);
        let Some(name) = head
            .split("\r\n")
            .filter(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
            .find_map(disposition_name)
        else {
            continue;
        };
        out.push((name, value.to_vec()));
    }
    out
}

fn disposition_name(line: &str) -> Option<String> {
    for param in line.split(';').skip(1) {
        let param = param.trim();
        if let Some(v) = param.strip_prefix("name=") {
            return Some(v.trim_matches('"').to_owned());
        }
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The boundary parameter of a multipart content type.
pub fn boundary(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|p| {
        let p = p.trim();
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"'))
    })
}

/// The login credential among form fields, if a password field is present.
pub fn from_fields(fields: &[(String, Vec<u8>)], mechanism: &str) -> Option<Found> {
    let pick = |names: &[&str]| {
        names.iter().find_map(|n| {
            fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(k, v)| (k.clone(), v.clone()))
        })
    };
    let (pass_field, password) = pick(&PASSWORD_FIELDS)?;
    let (user_field, user) = pick(&USER_FIELDS).unwrap_or_default();
    let mut extra = vec![("password_field", pass_field)];
    if !user_field.is_empty() {
        extra.push(("user_field", user_field));
    }
    Some(Found {
        credential: Credential::password(
            &String::from_utf8_lossy(&user),
            &password,
            Outcome::Failure,
        )
        .mechanism(mechanism),
        extra,
    })
}

/// The login credential of a request body, by content type.
pub fn from_body(content_type: &str, body: &[u8]) -> Option<Found> {
    let ct = content_type.to_ascii_lowercase();
    if ct.starts_with("application/x-www-form-urlencoded") {
        return from_fields(&urlencoded_fields(body), "form");
    }
    if ct.starts_with("multipart/form-data") {
        let b = boundary(content_type)?;
        return from_fields(&multipart_fields(body, b.as_bytes()), "form");
    }
    if ct.starts_with("application/json") {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        let obj = value.as_object()?;
        let fields: Vec<(String, Vec<u8>)> = obj
            .iter()
            .take(MAX_FORM_FIELDS)
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.as_bytes().to_vec())))
            .collect();
        return from_fields(&fields, "json");
    }
    if ct.contains("xml") || body.starts_with(b"<?xml") {
        return from_xmlrpc(body);
    }
    None
}

/// `wp.getUsersBlogs` (and other `wp.*` calls whose first two string params are user
/// and password) in an XML-RPC body.
pub fn from_xmlrpc(body: &[u8]) -> Option<Found> {
    let text = String::from_utf8_lossy(body);
    let method_start = text.find("<methodName>")? + "<methodName>".len();
    let method_end = method_start + text[method_start..].find("</methodName>")?;
    let method = text[method_start..method_end].trim();
    if !method.starts_with("wp.") && method != "system.multicall" {
        return None;
    }
    let mut strings = Vec::new();
    let mut rest = &text[method_end..];
    while strings.len() < 2 {
        let Some(s) = rest.find("<string>") else {
            break;
        };
        let after = &rest[s + "<string>".len()..];
        let Some(e) = after.find("</string>") else {
            break;
        };
        strings.push(xml_unescape(&after[..e]));
        rest = &after[e..];
    }
    // wp.getUsersBlogs(user, pass); most other wp.* calls are (blog_id, user, pass).
    let (user, pass) = if method == "wp.getUsersBlogs" || strings.len() == 2 {
        (strings.first()?.clone(), strings.get(1)?.clone())
    } else {
        return None;
    };
    Some(Found {
        credential: Credential::password(&user, pass.as_bytes(), Outcome::Failure)
            .mechanism("xmlrpc"),
        extra: vec![("xmlrpc_method", method.to_owned())],
    })
}

fn xml_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_bearer_digest() {
        let f = from_authorization(b"Basic YWRtaW46czNjcjN0Ong=").unwrap();
        assert_eq!(f.credential.principal.as_deref(), Some("admin"));
        assert_eq!(f.credential.secret, b"s3cr3t:x");
        assert_eq!(f.credential.mechanism.as_deref(), Some("basic"));
        let f = from_authorization(b"Bearer eyJhbGciOi.abc").unwrap();
        assert_eq!(f.credential.kind, SecretKind::HttpBearer);
        assert_eq!(f.credential.secret, b"eyJhbGciOi.abc");
        assert_eq!(f.credential.principal, None);
        let f = from_authorization(b"token ghp_123").unwrap();
        assert_eq!(f.credential.mechanism.as_deref(), Some("token"));
        let f = from_authorization(
            br#"Digest username="bob", realm="r", nonce="n1", uri="/x", response="0123abcd", qop=auth, nc=00000001"#,
        )
        .unwrap();
        assert_eq!(f.credential.principal.as_deref(), Some("bob"));
        assert_eq!(f.credential.secret, b"0123abcd");
        assert!(f.extra.contains(&("digest_nonce", "n1".into())));
        assert!(from_authorization(b"Basic !!!").is_none());
        assert!(from_authorization(b"Negotiate abc").is_none());
    }

    #[test]
    fn urlencoded_login_forms() {
        let f = from_body(
            "application/x-www-form-urlencoded",
            b"log=admin&pwd=p%40ss+word&wp-submit=Log+In&redirect_to=%2Fwp-admin%2F",
        )
        .unwrap();
        assert_eq!(f.credential.principal.as_deref(), Some("admin"));
        assert_eq!(f.credential.secret, b"p@ss word");
        assert!(f.extra.contains(&("user_field", "log".into())));
        let f = from_body(
            "application/x-www-form-urlencoded; charset=UTF-8",
            b"pma_username=root&pma_password=toor&server=1&token=ab",
        )
        .unwrap();
        assert_eq!(f.credential.principal.as_deref(), Some("root"));
        assert!(from_body("application/x-www-form-urlencoded", b"q=search&x=1").is_none());
        assert_eq!(percent_decode(b"%zz%4"), b"%zz%4");
    }

    #[test]
    fn multipart_and_json_forms() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"j_username\"\r\n\r\nadmin\r\n--XyZ\r\nContent-Disposition: form-data; name=\"j_password\"\r\n\r\nhunter2\r\n--XyZ--\r\n";
        let f = from_body("multipart/form-data; boundary=XyZ", body).unwrap();
        assert_eq!(f.credential.principal.as_deref(), Some("admin"));
        assert_eq!(f.credential.secret, b"hunter2");
        let f = from_body(
            "application/json",
            br#"{"email":"a@b.c","password":"pw","remember":true}"#,
        )
        .unwrap();
        assert_eq!(f.credential.principal.as_deref(), Some("a@b.c"));
        assert_eq!(f.credential.mechanism.as_deref(), Some("json"));
    }

    #[test]
    fn xmlrpc_get_users_blogs() {
        let body = b"<?xml version=\"1.0\"?><methodCall><methodName>wp.getUsersBlogs</methodName><params><param><value><string>admin</string></value></param><param><value><string>a&amp;b</string></value></param></params></methodCall>";
        let f = from_body("text/xml", body).unwrap();
        assert_eq!(f.credential.principal.as_deref(), Some("admin"));
        assert_eq!(f.credential.secret, b"a&b");
        assert!(
            from_xmlrpc(b"<methodCall><methodName>demo.sayHello</methodName></methodCall>")
                .is_none()
        );
    }
}
