use super::*;

#[test]
fn reads_and_writes_what_serde_json_does() {
    let text = r#"{"a":[1,-2,3.5,true,null,"x"],"long key that does not fit inline":{"s":"a string longer than twenty-two bytes","e":"q\"uote\\ \u00e9 \n"},"n":18446744073709551615,"empty":{},"none":[]}"#;
    let ours = Value::from_slice(text.as_bytes()).unwrap();
    let theirs: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(serde_json::Value::from(&ours), theirs);
    assert_eq!(Value::from(&theirs), ours);
    let mut out = Vec::new();
    ours.write_json(&mut out);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out).unwrap(),
        theirs
    );
    assert_eq!(serde_json::to_value(&ours).unwrap(), theirs);
    assert_eq!(ours.to_string(), String::from_utf8(out).unwrap());
    assert!(Value::from_slice(b"{\"a\":").is_err());
    // Strings read without escapes are written as they were read; the
    // others (short and long, keys and values) escaped again.
    let escapes = r#"{"pl":"plain","k\"ey":"q\"uote","long":"a plain string longer than twenty-two bytes","long\n":"an escaped string\u0001 longer than twenty-two bytes","ctl":"\u001f\t"}"#;
    let read = Value::from_slice(escapes.as_bytes()).unwrap();
    let mut out = Vec::new();
    read.write_json(&mut out);
    assert_eq!(String::from_utf8(out).unwrap(), escapes);
    let plain = |v: &Value| match v {
        Value::String(s) => s.is_plain(),
        _ => unreachable!(),
    };
    assert!(plain(&read["pl"]) && plain(&read["long"]));
    assert!(!plain(&read["k\"ey"]) && !plain(&read["long\n"]) && !plain(&read["ctl"]));
    assert!(!Str::new("made, not read").is_plain());
}

#[test]
fn short_strings_are_inline_and_long_ones_kept_whole() {
    for s in [
        "",
        "id",
        "__typename",
        &"x".repeat(INLINE),
        &"y".repeat(INLINE + 1),
        "é".repeat(20).as_str(),
    ] {
        let v = Str::new(s);
        assert_eq!(v.as_str(), s);
        assert_eq!(Str::from(s.to_owned()), v);
        assert_eq!(v.is_inline(), s.len() <= INLINE, "{s}");
    }
    assert_eq!(std::mem::size_of::<Str>(), 16);
    assert_eq!(std::mem::size_of::<Value>(), 24);
}

#[test]
fn keys_compare_equal_exactly_when_their_bytes_do() {
    let words = [
        "",
        "a",
        "ab",
        "abc",
        "abcd",
        "abce",
        "abcdefg",
        "abcdefh",
        "bbcdefg",
        "abcdefgh",
        "abcdefgi",
        "abcdefghijklmnop",
        "abcdefghijklmnoq",
        "xbcdefghijklmnop",
        "abcdefghijklmnopq",
        "abcdefghijklmnopr",
    ];
    for a in words {
        for b in words {
            assert_eq!(key_eq(a.as_bytes(), b.as_bytes()), a == b, "{a:?} {b:?}");
        }
        // Every length up to 17, differing in one byte anywhere.
        let long = "0123456789abcdefg";
        for n in 0..=long.len() {
            for at in 0..n {
                let mut other = long.as_bytes()[..n].to_vec();
                other[at] ^= 1;
                assert!(!key_eq(&long.as_bytes()[..n], &other));
            }
            assert!(key_eq(
                &long.as_bytes()[..n],
                long[..n].to_owned().as_bytes()
            ));
        }
    }
}

#[test]
fn hinted_lookups_find_every_key_wherever_the_hint_points() {
    let map: Map = [
        ("a", Value::from("1")),
        ("b", Value::from("2")),
        ("c", Value::from("3")),
    ]
    .into_iter()
    .collect();
    let hint = std::cell::Cell::new(7);
    assert_eq!(map.get_hinted("b", &hint), Some(&Value::from("2")));
    assert_eq!(hint.get(), 1, "left where it was found");
    assert_eq!(map.get_hinted("b", &hint), Some(&Value::from("2")));
    assert_eq!(map.get_hinted("c", &hint), Some(&Value::from("3")));
    assert_eq!(map.get_hinted("z", &hint), None);
    assert_eq!(hint.get(), 2, "a miss leaves the hint alone");
    let mut map = map;
    let mut hint = 0;
    *map.get_mut_hinted("c", &mut hint).unwrap() = Value::Null;
    assert_eq!((map.get("c"), hint), (Some(&Value::Null), 2));
    // Keys asked in order: each found where the cursor points, and in
    // any other order found all the same.
    let mut cursor = 0;
    for (key, after) in [("a", 1), ("b", 2), ("c", 3)] {
        assert!(map.get_next(key, &mut cursor).is_some());
        assert_eq!(cursor, after);
    }
    assert_eq!(map.get_next("a", &mut cursor), Some(&Value::from("1")));
    assert_eq!(cursor, 1, "found behind the cursor");
    assert_eq!(map.get_next("z", &mut cursor), None);
    assert_eq!(cursor, 1, "a miss leaves the cursor alone");
    *map.get_next_mut("b", &mut cursor).unwrap() = Value::Bool(true);
    assert_eq!((map.get("b"), cursor), (Some(&Value::Bool(true)), 2));
}

#[test]
fn merges_add_missing_keys_after_their_own_and_merge_the_shared_ones() {
    let own = |n: usize| -> Map {
        (0..n)
            .map(|i| (format!("k{i}"), Value::from("own")))
            .collect()
    };
    // Keys beyond the first 64 of the other object take the slower path.
    for n in [3, 70] {
        let other: Map = (1..n + 2)
            .map(|i| (format!("k{i}"), Value::from("other")))
            .collect();
        let expected: Vec<(String, &str)> = (0..n + 2)
            .map(|i| {
                let from = if i < n { "own" } else { "other" };
                (
                    format!("k{i}"),
                    if (1..n).contains(&i) { "both" } else { from },
                )
            })
            .collect();
        let written = |map: &Map| -> Vec<(String, &str)> {
            map.iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        if v.as_str() == Some("both") {
                            "both"
                        } else if v.as_str() == Some("own") {
                            "own"
                        } else {
                            "other"
                        },
                    )
                })
                .collect()
        };
        let mut owned = own(n);
        owned.merge_with(other.clone(), |slot, _| *slot = Value::from("both"));
        assert_eq!(written(&owned), expected);
        let mut copied = own(n);
        copied.merge_with_ref(&other, None, |slot, _| *slot = Value::from("both"));
        assert_eq!(written(&copied), expected);
        // A skipped key is neither merged nor added.
        let mut skipping = own(n);
        let last = format!("k{}", n + 1);
        skipping.merge_with_ref(&other, Some(&last), |slot, _| *slot = Value::from("both"));
        assert_eq!(written(&skipping), expected[..n + 1]);
    }
}

#[test]
fn objects_keep_order_and_replace_in_place() {
    let mut map: Map = [("b", Value::from("1")), ("a", Value::from("2"))]
        .into_iter()
        .collect();
    assert_eq!(map.insert("b", Value::Null), Some(Value::from("1")));
    map.insert("c", Value::Bool(true));
    assert_eq!(
        map.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        ["b", "a", "c"]
    );
    assert_eq!(map.remove("a"), Some(Value::from("2")));
    assert_eq!(
        map.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        ["b", "c"]
    );
    let value = Value::Object(map);
    assert_eq!(value["c"], Value::Bool(true));
    assert_eq!(value["missing"], Value::Null);
}
