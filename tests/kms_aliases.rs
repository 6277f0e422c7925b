//! Aliases: their name rules, uniqueness, CKA_LABEL left to the client, keys
//! named by key id, ARN, alias name or alias ARN, delete-alias, and update-alias only to
//! a key of the same type and usage.

mod common;
#[path = "kms_common.rs"]
mod kms;

use common::*;
use cryptoki::object::Attribute;
use kms::*;
use serde_json::Value;

fn create_alias(cli: &Cli, name: &str, key: &str) -> Result<Value, AwsError> {
    cli.run(&["kms", "create-alias", "--alias-name", name, "--target-key-id", key])
}

fn update_alias(cli: &Cli, name: &str, key: &str) -> Result<Value, AwsError> {
    cli.run(&["kms", "update-alias", "--alias-name", name, "--target-key-id", key])
}

/// The aliases of the token: (name, target key id).
fn aliases(cli: &Cli) -> Vec<(String, String)> {
    cli.ok(&["kms", "list-aliases"])["Aliases"]
        .as_array()
        .expect("Aliases")
        .iter()
        .map(|a| (a["AliasName"].as_str().unwrap().to_string(), a["TargetKeyId"].as_str().unwrap().to_string()))
        .collect()
}

fn pair(name: &str, key: &str) -> (String, String) {
    (name.to_string(), key.to_string())
}

#[test]
fn an_alias_names_its_key_and_leaves_its_label_alone() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let key = generate_aes(&session);
        let id = key_id_of(&session, key);
        let labelled = generate_aes_with(&session, vec![Attribute::Label(b"mine".to_vec())]);
        let labelled_id = key_id_of(&session, labelled);

        // CKA_LABEL is the client's: empty by default, as the specification has it, and
        // no alias changes it (NSS and others show labels as nicknames).
        assert_eq!(label_of(&session, key), b"");
        assert_eq!(create_alias(&cli, "alias/demo", &id).unwrap(), Value::Null);
        assert_eq!(label_of(&session, key), b"");
        create_alias(&cli, "alias/demo2", &id).unwrap();
        create_alias(&cli, "alias/other", &labelled_id).unwrap();
        assert_eq!(label_of(&session, labelled), b"mine", "a chosen label stays");
        assert_eq!(
            aliases(&cli),
            [pair("alias/demo", &id), pair("alias/demo2", &id), pair("alias/other", &labelled_id)]
        );
        let mine = cli.ok(&["kms", "list-aliases", "--key-id", &labelled_id]);
        assert_eq!(mine["Aliases"].as_array().unwrap().len(), 1, "{mine:#}");

        // A name is taken once, whatever the key.
        for target in [&id, &labelled_id] {
            let e = create_alias(&cli, "alias/demo", target).expect_err("taken");
            assert_eq!(e.code, "AlreadyExistsException", "{}", e.stderr);
            assert_eq!(e.operation, "CreateAlias");
        }
        assert_eq!(cli.describe("alias/demo")["KeyId"], id.as_str());

        assert_eq!(cli.ok(&["kms", "delete-alias", "--alias-name", "alias/demo"]), Value::Null);
        cli.ok(&["kms", "delete-alias", "--alias-name", "alias/demo2"]);
        assert_eq!(label_of(&session, key), b"");
        cli.fails(&["kms", "describe-key", "--key-id", "alias/demo"], "NotFoundException");
        cli.fails(&["kms", "delete-alias", "--alias-name", "alias/demo"], "NotFoundException");
        assert_eq!(aliases(&cli), [pair("alias/other", &labelled_id)]);
        // The freed name can be taken again.
        create_alias(&cli, "alias/demo", &labelled_id).unwrap();
    });
}

#[test]
fn alias_names_follow_the_rules() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let id = key_id_of(&session, generate_aes(&session));
        let too_long = format!("alias/{}", "a".repeat(251));
        assert_eq!(too_long.len(), 257);
        for bad in [
            "demo",
            "alias/",
            "Alias/demo",
            "alias/aws/x",
            "alias/aws/managed",
            too_long.as_str(),
            "alias/has space",
            "alias/dollar$",
        ] {
            let e = create_alias(&cli, bad, &id).expect_err(bad);
            assert_eq!(e.code, "InvalidAliasNameException", "{bad:?}: {}", e.stderr);
        }
        assert!(aliases(&cli).is_empty());
        let longest = format!("alias/{}", "a".repeat(250));
        for good in ["alias/a", "alias/x_y-z/1:2", longest.as_str()] {
            create_alias(&cli, good, &id).unwrap_or_else(|e| panic!("{good:?}: {}", e.stderr));
        }
        assert_eq!(aliases(&cli).len(), 3);
    });
}

#[test]
fn keys_are_named_by_id_arn_alias_or_alias_arn() {
    scenario!(|s| {
        let (p, slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let serial = serial(&p, slot);
        let key = generate_aes(&session);
        let id = key_id_of(&session, key);
        let _other = generate_aes(&session);
        create_alias(&cli, "alias/demo", &id).unwrap();
        let listed = cli.ok(&["kms", "list-aliases"]);
        let alias_arn = format!("arn:kmstoken:kms:local:{serial}:alias/demo");
        assert_eq!(listed["Aliases"][0]["AliasArn"], alias_arn.as_str());
        let key_arn = read_text(&session, key, ARN);
        for name in [id.as_str(), &key_arn, "alias/demo", &alias_arn] {
            assert_eq!(cli.describe(name)["KeyId"], id.as_str(), "{name}");
        }
        // And in the commands that change a key.
        cli.ok(&["kms", "disable-key", "--key-id", &alias_arn]);
        assert_eq!(state_of(&session, key), DISABLED);
        cli.ok(&["kms", "enable-key", "--key-id", &key_arn]);
        assert_eq!(state_of(&session, key), ENABLED);

        for unknown in [
            "alias/nope".to_string(),
            "00000000-0000-0000-0000-000000000000".to_string(),
            format!("arn:kmstoken:kms:local:{serial}:alias/nope"),
            format!("arn:kmstoken:kms:local:{serial}:key/00000000-0000-0000-0000-000000000000"),
            "arn:kmstoken:kms:local:0000000000000000:alias/demo".to_string(),
        ] {
            cli.fails(&["kms", "describe-key", "--key-id", &unknown], "NotFoundException");
        }
    });
}

#[test]
fn update_alias_moves_only_between_keys_of_one_usage() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let first = generate_aes(&session);
        let first_id = key_id_of(&session, first);
        let second = generate_aes(&session);
        let second_id = key_id_of(&session, second);
        let mac_id = key_id_of(&session, generate_hmac(&session));
        create_alias(&cli, "alias/demo", &first_id).unwrap();

        update_alias(&cli, "alias/demo", &second_id).expect("same usage");
        assert_eq!(cli.describe("alias/demo")["KeyId"], second_id.as_str());
        assert_eq!(aliases(&cli), [pair("alias/demo", &second_id)]);

        let e = update_alias(&cli, "alias/demo", &mac_id).expect_err("other usage");
        assert_eq!(e.code, "ValidationException", "{}", e.stderr);
        assert_eq!(e.operation, "UpdateAlias");
        assert_eq!(cli.describe("alias/demo")["KeyId"], second_id.as_str());

        let e = update_alias(&cli, "alias/none", &first_id).expect_err("no such alias");
        assert_eq!(e.code, "NotFoundException", "{}", e.stderr);
    });
}
