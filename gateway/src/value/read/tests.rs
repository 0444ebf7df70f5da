use super::*;

/// Random bytes, weighted to the ones the fast path must stop at or
/// notice: quotes, backslashes, control characters, high bytes and
/// whole multibyte characters.
fn random_bytes(rng: &mut impl rand::Rng, len: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(len);
    while bytes.len() < len {
        match rng.gen_range(0..10) {
            0 => bytes.push(b'"'),
            1 => bytes.push(b'\\'),
            2 => bytes.push(rng.gen_range(0..0x20)),
            3 => bytes.push(rng.gen_range(0x80..=0xff)),
            4 => bytes.extend_from_slice(["é", "€", "𝄞", "\u{7f}"][rng.gen_range(0..4)].as_bytes()),
            _ => bytes.push(rng.gen_range(0x20..0x7f)),
        }
    }
    bytes
}

#[test]
fn the_eight_byte_scan_finds_what_a_byte_by_byte_scan_finds() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(26);
    for case in 0..20_000 {
        let len = rng.gen_range(0..40);
        let bytes = random_bytes(&mut rng, len);
        let from = rng.gen_range(0..=bytes.len());
        let end = bytes[from..]
            .iter()
            .position(|b| matches!(b, b'"' | b'\\' | 0..0x20))
            .map_or(bytes.len(), |at| from + at);
        let ascii = bytes[from..end].is_ascii();
        assert_eq!(
            plain_run_end(&bytes, from),
            (end, ascii),
            "case {case}: {bytes:?} from {from}"
        );
    }
}

#[test]
fn strings_are_accepted_exactly_when_std_finds_them_utf8() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    for case in 0..20_000 {
        // No quote, backslash or control byte: only UTF-8 can fail.
        let len = rng.gen_range(0..40);
        let raw: Vec<u8> = random_bytes(&mut rng, len)
            .into_iter()
            .filter(|b| !matches!(b, b'"' | b'\\' | 0..0x20))
            .collect();
        let mut text = vec![b'"'];
        text.extend_from_slice(&raw);
        text.push(b'"');
        let ours = value(&text);
        match std::str::from_utf8(&raw) {
            Ok(s) => assert_eq!(
                serde_json::Value::from(&ours.unwrap_or_else(|e| panic!("case {case}: {e:?}"))),
                serde_json::Value::String(s.to_owned()),
                "case {case}"
            ),
            Err(_) => assert!(ours.is_err(), "case {case}: {raw:?} read as UTF-8"),
        }
    }
}

/// Reads `text` both ways: the same value, or both refuse it.
fn agrees(text: &str) {
    let ours = value(text.as_bytes());
    let theirs = serde_json::from_str::<serde_json::Value>(text);
    match (ours, theirs) {
        // serde_json's numbers compare by kind too: 0 is not 0.0.
        (Ok(ours), Ok(theirs)) => assert_eq!(serde_json::Value::from(&ours), theirs, "{text}"),
        (Err(_), Err(_)) => {}
        (ours, theirs) => panic!("{text}: ours {ours:?}, serde_json {theirs:?}"),
    }
}

#[test]
fn reads_what_serde_json_reads_and_refuses_what_it_refuses() {
    for text in [
        r#"{"data":{"topProducts":[{"upc":"1","name":"Table","price":899,"weight":100}]}}"#,
        " \n\t{ \"a\" : [ 1 , 2 ] , \"b\" : { } , \"c\" : [ ] }\r\n",
        r#"{"a":1,"a":2}"#,
        "[true,false,null]",
        r#""plain""#,
        r#""q\"uote\\ \/ \b\f\n\r\t \u00e9 \u20AC \ud83d\ude00 é€😀""#,
        "0",
        "-0",
        "-0.0",
        "1e2",
        "-1.5E-3",
        "2.5e+3",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "-9223372036854775809",
        "123456789012345678901234567890",
        "1.7976931348623157e308",
        "5e-324",
        "1e400",
        "-1e400",
        "01",
        "1.",
        ".5",
        "-",
        "+1",
        "1e",
        "1e+",
        "tru",
        "nul",
        "[1,]",
        r#"{"a":1,}"#,
        r#"{"a" 1}"#,
        r#"{a:1}"#,
        "[1 2]",
        "\"unterminated",
        "\"tab\there\"",
        r#""\x""#,
        r#""\u12""#,
        r#""\ud83d""#,
        r#""\ud83dx""#,
        r#""\ud83d\u0041""#,
        r#""\ude00""#,
        "{} {}",
        "",
        "   ",
        "[",
        "{\"a\":",
    ] {
        agrees(text);
    }
    let deep = |n: usize| "[".repeat(n) + &"]".repeat(n);
    agrees(&deep(127));
    agrees(&deep(128));
    assert!(value(b"\"\xff\"").is_err(), "invalid UTF-8");
}

#[test]
fn a_plain_run_ends_at_the_first_quote_backslash_or_control_character() {
    let text = b"0123456789abcdef0123456789";
    for at in 0..text.len() {
        for stop in [b'"', b'\\', b'\n', 0x00, 0x1f] {
            let mut bytes = text.to_vec();
            bytes[at] = stop;
            for from in 0..=at {
                assert_eq!(
                    plain_run_end(&bytes, from),
                    (at, true),
                    "{stop} at {at} from {from}"
                );
            }
        }
        assert_eq!(
            plain_run_end(text, at),
            (text.len(), true),
            "none from {at}"
        );
    }
    // Bytes just above the stops, and UTF-8, do not stop a run.
    let mut wide = "é€😀 !#[]".repeat(3).into_bytes();
    wide.push(b'"');
    assert_eq!(plain_run_end(&wide, 0), (wide.len() - 1, false));
    // Only what comes before the stop tells whether the run is ASCII.
    for at in 0..20 {
        let mut bytes = b"0123456789abcdefghij\"\xc3\xa9".to_vec();
        bytes[at] = b'"';
        assert_eq!(plain_run_end(&bytes, 0), (at, true), "stop at {at}");
        bytes[at] = 0xc3;
        assert!(!plain_run_end(&bytes, 0).1, "é at {at}");
    }
}

#[test]
fn strings_without_escapes_are_plain_and_written_as_read() {
    let read =
        value(br#"{"short":"ab","long":"a plain string longer than fourteen","esc":"a\nb"}"#)
            .unwrap();
    let plain = |v: &Value| match v {
        Value::String(s) => s.is_plain(),
        _ => unreachable!(),
    };
    assert!(plain(&read["short"]) && plain(&read["long"]));
    assert!(!plain(&read["esc"]));
    let mut out = Vec::new();
    read.write_json(&mut out);
    assert_eq!(
        out,
        br#"{"short":"ab","long":"a plain string longer than fourteen","esc":"a\nb"}"#
    );
}

#[test]
fn a_graphql_response_gives_its_data_and_errors() {
    let envelope = envelope(
        br#"{"errors":[{"message":"boom","path":["a",0]}],"extensions":{"x":[1]},"data":{"a":[null]}}"#,
    )
    .unwrap();
    assert_eq!(
        serde_json::Value::from(&envelope.data.unwrap()),
        serde_json::json!({ "a": [null] })
    );
    assert_eq!(
        envelope.errors.unwrap(),
        serde_json::json!([{ "message": "boom", "path": ["a", 0] }])
    );
    // What is dropped is skipped as serde_json ignores values: its
    // strings unchecked, its numbers unread, its depth unlimited.
    #[derive(serde::Deserialize)]
    struct Ignoring {
        #[serde(rename = "extensions")]
        _extensions: serde::de::IgnoredAny,
        #[serde(rename = "data")]
        _data: serde_json::Value,
    }
    let deep = "[".repeat(300) + &"]".repeat(300);
    for skipped in [
        &b"\"\xff\xfe\""[..],
        br#""\ud800""#,
        b"1e400",
        deep.as_bytes(),
        br#"{"a":[1,{"b":"c\"d"}],"e":{}}"#,
    ] {
        let mut text = br#"{"extensions":"#.to_vec();
        text.extend_from_slice(skipped);
        text.extend_from_slice(br#","data":{"a":1}}"#);
        let shown = String::from_utf8_lossy(skipped);
        assert!(serde_json::from_slice::<Ignoring>(&text).is_ok(), "{shown}");
        let read = super::envelope(&text).unwrap_or_else(|e| panic!("{shown}: {e}"));
        assert_eq!(
            serde_json::Value::from(&read.data.unwrap()),
            serde_json::json!({ "a": 1 })
        );
    }
    for malformed in [
        r#"[1,]"#,
        r#"{"a" 1}"#,
        r#""\q""#,
        r#""\u12""#,
        "01",
        "tru",
        "[1",
    ] {
        let text = format!(r#"{{"extensions":{malformed},"data":null}}"#);
        assert!(super::envelope(text.as_bytes()).is_err(), "{malformed}");
        assert!(
            serde_json::from_str::<Ignoring>(&text).is_err(),
            "{malformed}"
        );
    }
    // What is kept is read strictly.
    assert!(super::envelope(b"{\"data\":\"\xff\"}").is_err());
    assert!(super::envelope(br#"{"data":"\ud800"}"#).is_err());
    let nothing = super::envelope(b"{}").unwrap();
    assert!(nothing.data.is_none() && nothing.errors.is_none());
    for bad in [&b"[1]"[..], b"{\"data\":", b"{\"data\":{}} x", b"null"] {
        assert!(
            super::envelope(bad).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}
