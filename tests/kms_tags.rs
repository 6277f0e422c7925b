//! Tags and descriptions: tag-resource, untag-resource and list-resource-tags, at most 50
//! tags, the reserved `aws:` prefix and the length rules, and descriptions of at most
//! 8192 characters.

mod common;
#[path = "kms_common.rs"]
mod kms;

use common::*;
use kms::*;
use serde_json::{json, Value};

fn tag(cli: &Cli, id: &str, tags: &[&str]) -> Result<Value, AwsError> {
    let mut args = vec!["kms", "tag-resource", "--key-id", id, "--tags"];
    args.extend_from_slice(tags);
    cli.run(&args)
}

/// The tags of a key, as (key, value) pairs in the order listed.
fn tags_of(cli: &Cli, id: &str) -> Vec<(String, String)> {
    cli.ok(&["kms", "list-resource-tags", "--key-id", id])["Tags"]
        .as_array()
        .expect("Tags")
        .iter()
        .map(|t| (t["TagKey"].as_str().unwrap().to_string(), t["TagValue"].as_str().unwrap().to_string()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// `n` tags `k0..` as the JSON list tag-resource takes.
fn json_tags(range: std::ops::Range<usize>) -> String {
    let list: Vec<Value> =
        range.map(|i| json!({ "TagKey": format!("k{i:02}"), "TagValue": format!("v{i}") })).collect();
    Value::Array(list).to_string()
}

#[test]
fn tags_are_set_replaced_listed_and_removed() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let id = key_id_of(&session, generate_aes(&session));
        let other = key_id_of(&session, generate_aes(&session));
        assert!(tags_of(&cli, &id).is_empty());

        assert_eq!(tag(&cli, &id, &["TagKey=a,TagValue=b"]).unwrap(), Value::Null);
        assert_eq!(tags_of(&cli, &id), pairs(&[("a", "b")]));
        tag(&cli, &id, &["TagKey=a,TagValue=c", "TagKey=empty,TagValue="]).unwrap();
        assert_eq!(tags_of(&cli, &id), pairs(&[("a", "c"), ("empty", "")]), "one value per tag key");
        assert!(tags_of(&cli, &other).is_empty(), "tags belong to one key");
        // Tag keys are case-sensitive.
        tag(&cli, &id, &["TagKey=A,TagValue=upper"]).unwrap();
        assert_eq!(tags_of(&cli, &id).len(), 3);

        let out = cli.ok(&["kms", "untag-resource", "--key-id", &id, "--tag-keys", "a", "A"]);
        assert_eq!(out, Value::Null);
        assert_eq!(tags_of(&cli, &id), pairs(&[("empty", "")]));
        // Removing a tag the key does not have changes nothing.
        cli.ok(&["kms", "untag-resource", "--key-id", &id, "--tag-keys", "nope"]);
        assert_eq!(tags_of(&cli, &id), pairs(&[("empty", "")]));

        let r = records_of(&s.keystore(), "TagResource", &id);
        assert_eq!(r.len(), 3, "{r:#?}");
        assert_eq!(records_of(&s.keystore(), "UntagResource", &id).len(), 2);
    });
}

#[test]
fn a_key_has_at_most_50_tags() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let id = key_id_of(&session, generate_aes(&session));
        tag(&cli, &id, &[&json_tags(0..49)]).unwrap();
        tag(&cli, &id, &["TagKey=k49,TagValue=last"]).expect("the 50th tag");
        assert_eq!(tags_of(&cli, &id).len(), 50);

        let e = tag(&cli, &id, &["TagKey=k50,TagValue=one-too-many"]).expect_err("51st");
        assert_eq!(e.code, "LimitExceededException", "{}", e.stderr);
        assert_eq!(e.operation, "TagResource");
        let now = tags_of(&cli, &id);
        assert_eq!(now.len(), 50);
        assert!(!now.iter().any(|(k, _)| k == "k50"), "no tag added");

        // A batch that would pass 50 adds nothing, even the tags that would fit.
        let e = tag(&cli, &id, &["TagKey=k00,TagValue=changed", "TagKey=k51,TagValue=x"]).expect_err("batch past 50");
        assert_eq!(e.code, "LimitExceededException");
        assert!(tags_of(&cli, &id).contains(&("k00".to_string(), "v0".to_string())));
        // Replacing a value at 50 is fine.
        tag(&cli, &id, &["TagKey=k00,TagValue=changed"]).unwrap();
        assert!(tags_of(&cli, &id).contains(&("k00".to_string(), "changed".to_string())));
        // So is a fresh tag once one is removed.
        cli.ok(&["kms", "untag-resource", "--key-id", &id, "--tag-keys", "k01"]);
        tag(&cli, &id, &["TagKey=k50,TagValue=fits"]).unwrap();
        assert_eq!(tags_of(&cli, &id).len(), 50);
    });
}

#[test]
fn reserved_and_oversized_tags_are_refused() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let id = key_id_of(&session, generate_aes(&session));
        let long_key = format!("TagKey={},TagValue=v", "k".repeat(129));
        let long_value = format!("TagKey=k,TagValue={}", "v".repeat(257));
        for bad in ["TagKey=aws:owner,TagValue=me", "TagKey=aws:,TagValue=x", long_key.as_str(), long_value.as_str()] {
            let e = tag(&cli, &id, &["TagKey=fine,TagValue=1", bad]).expect_err(bad);
            assert_eq!(e.code, "TagException", "{bad}: {}", e.stderr);
            assert_eq!(e.operation, "TagResource");
        }
        assert!(tags_of(&cli, &id).is_empty(), "a bad batch adds nothing");
        let limits = [
            format!("TagKey={},TagValue=v", "k".repeat(128)),
            format!("TagKey=k,TagValue={}", "v".repeat(256)),
            "TagKey=team,TagValue=has aws: inside".to_string(),
        ];
        for good in &limits {
            tag(&cli, &id, &[good]).unwrap_or_else(|e| panic!("{good}: {}", e.stderr));
        }
        assert_eq!(tags_of(&cli, &id).len(), 3);
    });
}

#[test]
fn descriptions_have_at_most_8192_characters() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let key = generate_aes(&session);
        let id = key_id_of(&session, key);
        let describe = |text: &str| cli.run(&["kms", "update-key-description", "--key-id", &id, "--description", text]);
        describe("first words").unwrap();
        assert_eq!(cli.describe(&id)["Description"], "first words");
        assert_eq!(read_text(&session, key, DESCRIPTION), "first words");

        let e = describe(&"d".repeat(8193)).expect_err("8193 characters");
        assert_eq!(e.code, "ValidationException", "{}", e.stderr);
        assert_eq!(e.operation, "UpdateKeyDescription");
        assert_eq!(cli.describe(&id)["Description"], "first words", "unchanged");

        let longest = "é".repeat(8192);
        describe(&longest).expect("8192 characters");
        assert_eq!(cli.describe(&id)["Description"], longest.as_str());
        assert_eq!(read_text(&session, key, DESCRIPTION), longest);
        describe("").unwrap();
        assert_eq!(cli.describe(&id)["Description"], "");
    });
}
