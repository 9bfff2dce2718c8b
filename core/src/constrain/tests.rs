//! Automaton tests on byte strings and a small synthetic vocabulary.

use super::*;
use serde_json::json;

/// All 256 single bytes, some multi-byte pieces, a control token and an EOG token.
fn vocab() -> (Vec<Option<Vec<u8>>>, Vec<u32>) {
    let mut pieces: Vec<Option<Vec<u8>>> = (0..=255u8).map(|b| Some(vec![b])).collect();
    for s in [
        &b"{\""[..],
        b"\":",
        b"\": ",
        b"\",",
        b"\"}",
        b"\"]",
        b", ",
        b"true",
        b"false",
        b"null",
        b"name",
        b"\"name\"",
        b"12",
        b"0.",
        b"-1",
        "é".as_bytes(),
        "😀".as_bytes(),
        b"\xC3",
        b"\xA9",
        b"\\u00",
        b"\\\"",
        b"hello world",
        b"},{\"",
        b"a\"b",
        b"]}",
    ] {
        pieces.push(Some(s.to_vec()));
    }
    pieces.push(None); // a control token, e.g. <|im_end|> when it is not EOG
    pieces.push(Some(b"<|im_end|>".to_vec())); // EOG
    let eog = vec![pieces.len() as u32 - 1];
    (pieces, eog)
}

fn index() -> Arc<TokenIndex> {
    let (pieces, eog) = vocab();
    let refs: Vec<Option<&[u8]>> = pieces.iter().map(|p| p.as_deref()).collect();
    Arc::new(TokenIndex::from_pieces(&refs, &eog))
}

fn constraint(schema: serde_json::Value) -> JsonConstraint {
    JsonConstraint::with_index(&schema, index()).unwrap()
}

/// `text` is a whole valid value.
fn accepts(schema: &serde_json::Value, text: &[u8]) -> bool {
    let mut c = constraint(schema.clone());
    c.accept_bytes(text) && c.is_complete()
}

/// `text` is a viable prefix.
fn prefix(schema: &serde_json::Value, text: &[u8]) -> bool {
    constraint(schema.clone()).accept_bytes(text)
}

#[track_caller]
fn yes(schema: &serde_json::Value, texts: &[&str]) {
    for t in texts {
        assert!(accepts(schema, t.as_bytes()), "should accept {t}");
    }
}

#[track_caller]
fn no(schema: &serde_json::Value, texts: &[&str]) {
    for t in texts {
        assert!(!accepts(schema, t.as_bytes()), "should reject {t}");
    }
}

#[test]
fn flat_object() {
    let s = json!({
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer"},
            "ok": {"type": "boolean"},
            "color": {"enum": ["red", "green"]}
        },
        "required": ["name", "age", "ok", "color"]
    });
    yes(
        &s,
        &[
            r#"{"name":"Bob","age":30,"ok":true,"color":"red"}"#,
            r#"{"name": "Bob", "age": -3, "ok": false, "color": "green"}"#,
        ],
    );
    no(
        &s,
        &[
            r#"{"name":"Bob","age":30,"ok":true}"#,
            r#"{"age":30,"name":"Bob","ok":true,"color":"red"}"#,
            r#"{ "name":"Bob","age":30,"ok":true,"color":"red"}"#,
            r#"{"name":  "Bob","age":30,"ok":true,"color":"red"}"#,
            r#"{"name":"Bob","age":30,"ok":true,"color":"blue"}"#,
            r#"{"name":"Bob","age":3.5,"ok":true,"color":"red"}"#,
            r#"{"name":"Bob","age":30,"ok":true,"color":"red","x":1}"#,
            r#"{"name":"Bob","age":30,"ok":true,"color":"red"} "#,
        ],
    );
}

#[test]
fn optional_properties() {
    let s = json!({
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}, "c": {"type": "integer"}},
        "required": ["b"]
    });
    yes(
        &s,
        &[
            r#"{"b":1}"#,
            r#"{"a":1,"b":2}"#,
            r#"{"a":1,"b":2,"c":3}"#,
            r#"{"b":2, "c":3}"#,
        ],
    );
    no(
        &s,
        &[
            r#"{}"#,
            r#"{"a":1}"#,
            r#"{"b":1,"a":2}"#,
            r#"{"b":1,}"#,
            r#"{"c":1}"#,
        ],
    );
    let none = json!({"type": "object", "properties": {"a": {"type": "null"}}});
    yes(&none, &["{}", r#"{"a":null}"#]);
    // Keys sharing a prefix.
    let s = json!({
        "type": "object",
        "properties": {"ab": {"type": "integer"}, "a": {"type": "integer"}, "abc": {"type": "integer"}}
    });
    yes(
        &s,
        &[
            r#"{"a":1}"#,
            r#"{"ab":1,"a":2,"abc":3}"#,
            r#"{"abc":3}"#,
            r#"{"ab":1,"abc":3}"#,
        ],
    );
    no(&s, &[r#"{"abc":1,"a":2}"#]);
}

#[test]
fn strings_and_escapes() {
    let s = json!({"type": "string"});
    yes(
        &s,
        &[
            r#""""#,
            r#""a\"b\\c""#,
            r#""\u00e9\u00E9\n\t\/\b\f\r""#,
            "\"é😀中\"",
            r#""\uD7FF\ue000""#,
        ],
    );
    no(
        &s,
        &[
            r#""\x""#,
            r#""\uD800""#,
            r#""\udc00""#,
            r#""\u12""#,
            "\"a\nb\"",
            "\"\t\"",
            r#""abc"#,
            r#"abc""#,
        ],
    );
    // Invalid UTF-8: bad continuation, overlong, surrogate, beyond U+10FFFF, lone continuation.
    for bad in [
        &b"\"\xC3\x28\""[..],
        b"\"\xC0\x80\"",
        b"\"\xE0\x80\x80\"",
        b"\"\xED\xA0\x80\"",
        b"\"\xF4\x90\x80\x80\"",
        b"\"\x80\"",
        b"\"\xC3\"",
    ] {
        assert!(!accepts(&s, bad), "should reject {bad:?}");
    }
    let bounded = json!({"type": "string", "minLength": 2, "maxLength": 3});
    yes(&bounded, &[r#""ab""#, "\"é😀中\"", r#""\n\"x""#]);
    no(&bounded, &[r#""a""#, r#""abcd""#, r#""\u0041bcd""#]);
}

#[test]
fn numbers() {
    let int = json!({"type": "integer"});
    yes(&int, &["0", "-0", "7", "-123", "999999999999999"]);
    no(
        &int,
        &[
            "01",
            "1.5",
            "1e3",
            "-",
            "+1",
            "1.",
            "1000000000000000",
            " 1",
        ],
    );
    let num = json!({"type": "number"});
    yes(&num, &["0.25", "-0.5", "3", "10.125"]);
    no(&num, &["1.", ".5", "1e5", "00", "1.2.3", "-.5"]);
    let r = json!({"type": "integer", "minimum": 1, "maximum": 10});
    yes(&r, &["1", "5", "10"]);
    no(&r, &["0", "11", "-1", "100"]);
    assert!(!prefix(&r, b"-"));
    assert!(!prefix(&r, b"0"));
    assert!(accepts(&r, b"2") && !prefix(&r, b"20"));
    assert!(prefix(&r, b"1") && accepts(&r, b"1") && prefix(&r, b"10"));
    let x = json!({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1});
    yes(&x, &["0.5", "0.999"]);
    no(&x, &["0", "1", "1.0", "-0.5"]);
    assert!(prefix(&x, b"0") && !accepts(&x, b"0"));
    let tight = json!({"type": "number", "minimum": 0.5, "maximum": 0.7});
    yes(&tight, &["0.5", "0.6", "0.7", "0.65"]);
    no(&tight, &["0.8", "0.3", "0.71", "1"]);
    assert!(!prefix(&tight, b"0.3"));
    let draft4 = json!({"type": "integer", "minimum": 0, "exclusiveMinimum": true, "maximum": 3});
    yes(&draft4, &["1", "3"]);
    no(&draft4, &["0"]);
    // Exact decimal boundaries (0.1 + 0.2 style rounding must not leak through).
    let edge = json!({"type": "number", "exclusiveMaximum": 0.3});
    yes(&edge, &["0.29"]);
    no(&edge, &["0.3", "0.30"]);
}

#[test]
fn enums_consts_literals() {
    let s = json!({"enum": ["red", "green", 1, 12, null, {"a": [1]}]});
    yes(&s, &[r#""red""#, "1", "12", "null", r#"{"a":[1]}"#]);
    no(&s, &[r#""blue""#, "123", "2", r#"{"a": [1]}"#]);
    let many: Vec<String> = (0..150).map(|i| format!("v{i}")).collect();
    let s = json!({"enum": many});
    yes(&s, &[r#""v0""#, r#""v63""#, r#""v64""#, r#""v149""#]);
    no(&s, &[r#""v150""#]);
    // anyOf of many consts: merged into one literal set, every one reachable.
    let consts: Vec<serde_json::Value> = (0..300)
        .map(|i| json!({"const": format!("a{i}")}))
        .collect();
    let s = json!({"anyOf": consts});
    yes(&s, &[r#""a0""#, r#""a299""#, r#""a150""#]);
    no(&s, &[r#""a300""#]);
    let c = json!({"const": "x"});
    yes(&c, &[r#""x""#]);
    no(&c, &[r#""y""#]);
    yes(&json!({"type": "boolean"}), &["true", "false"]);
    yes(&json!({"type": ["string", "null"]}), &["null", r#""s""#]);
}

#[test]
fn arrays_nested_anyof_refs() {
    let s = json!({"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 2});
    yes(&s, &["[1]", "[1,2]", "[1, 2]"]);
    no(&s, &["[]", "[1,2,3]", "[1,]", "[,1]", "[ 1]"]);
    let s = json!({
        "type": "object",
        "properties": {
            "people": {"type": "array", "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}},
                "required": ["name", "tags"]
            }}
        },
        "required": ["people"]
    });
    yes(
        &s,
        &[
            r#"{"people":[]}"#,
            r#"{"people":[{"name":"a","tags":[]},{"name":"b","tags":["x", "y"]}]}"#,
        ],
    );
    no(&s, &[r#"{"people":[{"name":"a"}]}"#]);
    let s = json!({"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "object", "properties": {"x": {"type": "null"}}, "required": ["x"]}]});
    yes(&s, &[r#""s""#, "42", r#"{"x":null}"#]);
    no(&s, &["true", "{}", "4.2"]);
    let tree = json!({
        "$defs": {"node": {
            "type": "object",
            "properties": {"v": {"type": "integer"}, "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
            "required": ["v", "kids"]
        }},
        "$ref": "#/$defs/node"
    });
    // `$ref` beside `$defs` only (an annotation): allowed.
    yes(
        &tree,
        &[r#"{"v":1,"kids":[{"v":2,"kids":[]},{"v":3,"kids":[{"v":4,"kids":[]}]}]}"#],
    );
    no(&tree, &[r#"{"v":1,"kids":[{"v":2}]}"#]);
}

#[test]
fn any_value_and_free_objects() {
    let any = json!({});
    yes(
        &any,
        &[
            r#"{"a":[1,{"b":null}],"c":"x"}"#,
            "[]",
            "-1.5",
            r#""s""#,
            "true",
            r#"{"k": [1, 2]}"#,
        ],
    );
    no(&any, &["{a:1}", "[1 2]", "nul"]);
    let map = json!({"type": "object", "additionalProperties": {"type": "integer"}});
    yes(&map, &["{}", r#"{"x":1,"y\"z":2}"#]);
    no(&map, &[r#"{"x":"1"}"#]);
    let empty = json!({"type": "object", "additionalProperties": false});
    yes(&empty, &["{}"]);
    no(&empty, &[r#"{"a":1}"#]);
}

#[test]
fn invalid_schemas() {
    let (pieces, eog) = vocab();
    let refs: Vec<Option<&[u8]>> = pieces.iter().map(|p| p.as_deref()).collect();
    let idx = Arc::new(TokenIndex::from_pieces(&refs, &eog));
    for s in [
        json!({"type": "string", "pattern": "a+"}),
        json!({"type": "foo"}),
        json!({"type": 3}),
        json!({"enum": []}),
        json!({"type": "string", "minLength": 5, "maxLength": 2}),
        json!({"type": "array", "minItems": 3, "maxItems": 2}),
        json!({"$ref": "#/nope"}),
        json!({"$ref": "#"}),
        json!({"$ref": "http://example.com/s.json"}),
        json!({"type": "integer", "minimum": 1.2, "maximum": 1.8}),
        json!({"type": "number", "multipleOf": 2}),
        json!({"allOf": [{"type": "string"}, {"minLength": 1}]}),
        json!({"anyOf": []}),
        json!(false),
        json!(7),
        json!({"type": "object", "properties": {"a": {"not": {}}}}),
    ] {
        match JsonConstraint::with_index(&s, idx.clone()) {
            Err(Error::InvalidArgument(m)) => assert!(m.contains("json schema"), "{m}"),
            other => panic!("{s}: expected InvalidArgument, got {other:?}"),
        }
    }
}

/// The mask must equal brute force (every token's bytes run through the automaton), in every
/// state along random walks; and it must never be empty.
#[test]
fn mask_matches_brute_force() {
    let schemas = [
        json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 12},
                "n": {"type": "number", "minimum": -5, "maximum": 50},
                "tags": {"type": "array", "items": {"enum": ["a", "b\"c", 12]}, "maxItems": 3},
                "any": {}
            },
            "required": ["name", "tags"]
        }),
        json!({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "integer"}}]}),
        json!({"type": "string"}),
    ];
    let (pieces, eog) = vocab();
    let n = pieces.len();
    let mut rng = crate::sampling::Rng::new(7);
    for s in &schemas {
        for _walk in 0..30 {
            let mut c = constraint(s.clone());
            for _step in 0..40 {
                let mut logits = vec![0.0f32; n + 3];
                c.mask(&mut logits);
                assert!(logits[n..].iter().all(|l| *l == f32::NEG_INFINITY));
                let allowed: Vec<u32> = (0..n as u32)
                    .filter(|&t| logits[t as usize].is_finite())
                    .collect();
                for t in 0..n as u32 {
                    assert_eq!(
                        logits[t as usize].is_finite(),
                        c.allows(t),
                        "token {t} {:?}",
                        pieces[t as usize]
                    );
                }
                assert!(!allowed.is_empty(), "empty mask");
                assert!(!allowed.contains(&(n as u32 - 2)), "control token allowed");
                assert_eq!(allowed.contains(&eog[0]), c.is_complete());
                let t = allowed[(rng.next_u64() % allowed.len() as u64) as usize];
                if eog.contains(&t) {
                    c.accept(t).unwrap();
                    break;
                }
                c.accept(t).unwrap();
            }
        }
    }
}

#[test]
fn tokens_split_utf8_and_eog() {
    let (pieces, eog) = vocab();
    let id = |b: &[u8]| pieces.iter().position(|p| p.as_deref() == Some(b)).unwrap() as u32;
    let mut c = constraint(json!({"type": "string"}));
    let (c3, a9) = (id(b"\xC3"), id(b"\xA9"));
    assert!(!c.allows(a9) && !c.allows(c3));
    c.accept(id(b"\"")).unwrap();
    assert!(c.allows(c3) && !c.allows(a9));
    c.accept(c3).unwrap();
    // Only a continuation byte may follow a lead byte.
    let mut logits = vec![0.0f32; pieces.len()];
    c.mask(&mut logits);
    assert!(logits[a9 as usize].is_finite());
    assert!(!logits[id(b"\"") as usize].is_finite());
    assert!(!logits[id(b"a") as usize].is_finite());
    assert!(c.accept(id(b"a")).is_err());
    c.accept(a9).unwrap();
    assert!(!c.is_complete());
    assert!(
        c.accept(eog[0]).is_err(),
        "EOG before the value is complete"
    );
    c.accept(id(b"\"")).unwrap();
    assert!(c.is_complete());
    // Complete: only EOG remains.
    let mut logits = vec![0.0f32; pieces.len()];
    c.mask(&mut logits);
    let allowed: Vec<usize> = (0..pieces.len())
        .filter(|&i| logits[i].is_finite())
        .collect();
    assert_eq!(allowed, vec![eog[0] as usize]);
    c.accept(eog[0]).unwrap();
    assert!(c.accept(id(b"a")).is_err());
    // The control token is never allowed.
    let c = constraint(json!({"type": "string"}));
    assert!(!c.allows(pieces.len() as u32 - 2));
}

#[test]
fn trie_walk_prunes() {
    let idx = index();
    let t = &idx.full;
    // Preorder invariants: every subtree end is past the node and within the parent's.
    for (i, n) in t.nodes.iter().enumerate().skip(1) {
        assert!(n.end as usize > i && n.end as usize <= t.nodes.len());
    }
    assert_eq!(t.toks.len(), idx.vocab_size() - 2); // all but the control and EOG ids
}

/// Mask cost per token for the fixture vocabulary (2048) and a synthetic 65,536-token one
/// (fixture pieces plus pseudo-random concatenations of two), in typical states.
/// `cargo test -p hearth --lib mask_cost -- --nocapture` prints the figures.
#[test]
fn mask_cost() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gguf/lfm2moe-h64-e8k2-q4_0.gguf");
    let tok = crate::Tokenizer::for_model(&path).unwrap();
    let base: Vec<Option<Vec<u8>>> = (0..tok.vocab_size() as u32)
        .map(|id| {
            if tok.is_control(id) || tok.is_eog(id) {
                None
            } else {
                tok.piece_bytes(id).map(<[u8]>::to_vec)
            }
        })
        .collect();
    let texts: Vec<&Vec<u8>> = base.iter().flatten().collect();
    let mut big = base.clone();
    let mut seen: std::collections::HashSet<Vec<u8>> = texts.iter().map(|t| t.to_vec()).collect();
    let mut rng = crate::sampling::Rng::new(1);
    while big.len() < 65_536 {
        let a = texts[(rng.next_u64() % texts.len() as u64) as usize];
        let b = texts[(rng.next_u64() % texts.len() as u64) as usize];
        let w = [a.as_slice(), b.as_slice()].concat();
        if seen.insert(w.clone()) {
            big.push(Some(w));
        }
    }
    let schema = json!({
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "code": {"type": "string", "maxLength": 4},
            "age": {"type": "integer", "minimum": 0, "maximum": 150},
            "score": {"type": "number"},
            "meta": {}
        },
        "required": ["name", "code", "age", "score", "meta"]
    });
    let states: [(&str, &str); 6] = [
        ("start", ""),
        ("in string", r#"{"name":"Al"#),
        ("in string, maxLength near", r#"{"name":"Al","code":"ab"#),
        ("integer value", r#"{"name":"Al","code":"ab","age":"#),
        (
            "in number",
            r#"{"name":"Al","code":"ab","age":12,"score":3.1"#,
        ),
        (
            "any value",
            r#"{"name":"Al","code":"ab","age":12,"score":3.1,"meta":"#,
        ),
    ];
    for (label, pieces) in [("fixture", &base), ("synthetic", &big)] {
        let refs: Vec<Option<&[u8]>> = pieces.iter().map(|p| p.as_deref()).collect();
        let t0 = std::time::Instant::now();
        let idx = Arc::new(TokenIndex::from_pieces(&refs, tok.eog_ids()));
        let build = t0.elapsed();
        println!(
            "{label} vocab {}: index built in {:.1} ms ({} trie nodes, {} in the string-closing trie)",
            pieces.len(),
            build.as_secs_f64() * 1e3,
            idx.full.nodes.len(),
            idx.closing.nodes.len()
        );
        let mut logits = vec![0.0f32; pieces.len()];
        for (what, prefix) in states {
            let mut c = JsonConstraint::with_index(&schema, idx.clone()).unwrap();
            assert!(c.accept_bytes(prefix.as_bytes()), "{what}");
            let reps = if pieces.len() > 10_000 { 20 } else { 200 };
            let t0 = std::time::Instant::now();
            for _ in 0..reps {
                c.mask(&mut logits);
            }
            let per = t0.elapsed().as_secs_f64() * 1e6 / reps as f64;
            logits.iter_mut().for_each(|l| *l = 0.0);
            c.mask(&mut logits);
            let allowed = logits.iter().filter(|l| l.is_finite()).count();
            println!("  {what:<28} {per:>9.1} µs per mask, {allowed} tokens allowed");
        }
    }
}

#[test]
fn constraint_is_send_and_index_is_shared() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send::<JsonConstraint>();
    send_sync::<TokenIndex>();
    let idx = index();
    let a = JsonConstraint::with_index(&json!({"type": "integer"}), idx.clone()).unwrap();
    let b = JsonConstraint::with_index(&json!({"allOf": [{"type": "null"}]}), idx.clone()).unwrap();
    assert_eq!(Arc::strong_count(&idx), 3);
    drop((a, b));
}
