//! Key policies and principals: the default policy lets the token user do everything,
//! administrators administer and named users use; named users created by the SO log in
//! with C_LoginUser or `--principal`; an explicit Deny wins in both faces (PKCS#11 and
//! CLI) and each refusal is audited with the principal; encryption-context conditions;
//! malformed and self-locking policies are refused without a change.

mod common;
#[path = "kms_common.rs"]
mod kms;

use common::raw::{login_user, raw, sh};
use common::*;
use cryptoki::context::Function;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::AttributeType;
use cryptoki_sys::*;
use kms::*;
use serde_json::{json, Value};

const KEY_POLICY: u64 = kmstoken::vendor::CKA_KMSTOKEN_KEY_POLICY;
const ALICE_PIN: &str = "alice-pin-1234";
const BOB_PIN: &str = "bob-pin-12345";
const CBC: Mechanism<'static> = Mechanism::AesCbcPad([5; 16]);
/// "hello", base64.
const HELLO: &str = "aGVsbG8=";

/// `kmstoken user add NAME` by the SO.
fn add_user(cli: &Cli, name: &str, pin: &str) {
    let out = cli.ok(&["user", "add", name, "--pin", pin, "--so-pin", SO_PIN]);
    assert_eq!(out["User"]["UserName"], format!("user/{name}"), "{out:#}");
}

/// A key policy: the token user keeps every right (so the tests can keep managing the
/// key), then `extra`.
fn policy_with(serial: &str, extra: Vec<Value>) -> String {
    let mut st = vec![json!({
        "Sid": "Enable token user permissions",
        "Effect": "Allow",
        "Principal": { "AWS": format!("arn:kmstoken:iam::{serial}:user") },
        "Action": "kms:*",
        "Resource": "*",
    })];
    st.extend(extra);
    json!({ "Version": "2012-10-17", "Statement": st }).to_string()
}

fn get_policy(cli: &Cli, id: &str) -> String {
    let out = cli.ok(&["kms", "get-key-policy", "--key-id", id, "--policy-name", "default"]);
    assert_eq!(out["PolicyName"], "default", "{out:#}");
    out["Policy"].as_str().expect("Policy is a JSON string").to_string()
}

fn put_policy(cli: &Cli, id: &str, doc: &str) {
    assert_eq!(cli.ok(&["kms", "put-key-policy", "--key-id", id, "--policy", doc]), Value::Null);
}

fn encrypt_as(cli: &Cli, id: &str, who: &str, pin: &str, ctx: Option<&str>) -> Result<Value, AwsError> {
    let mut args = vec!["kms", "encrypt", "--key-id", id, "--plaintext", HELLO, "--principal", who, "--pin", pin];
    if let Some(c) = ctx {
        args.extend(["--encryption-context", c]);
    }
    cli.run(&args)
}

/// The audit records of one key that `audit tail --key-id` shows.
fn tail(cli: &Cli, id: &str) -> Vec<Value> {
    cli.ok(&["audit", "tail", "--key-id", id, "-n", "1000"])["Records"].as_array().expect("Records").clone()
}

fn denials_of(records: &[Value], principal: &str, event: &str) -> Vec<Value> {
    records
        .iter()
        .filter(|r| {
            r["errorCode"] == "AccessDeniedException"
                && r["userIdentity"]["principalId"] == principal
                && r["eventName"] == event
        })
        .cloned()
        .collect()
}

#[test]
fn default_policy_lets_the_user_do_all_and_administrators_administer() {
    scenario!(|s| {
        let (p, slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let serial = serial(&p, slot);
        let key = generate_aes(&session);
        let id = key_id_of(&session, key);
        aes_round_trip(&session, key);

        // The default document: the AWS default statements mapped onto the token.
        let doc: Value = serde_json::from_str(&get_policy(&cli, &id)).expect("policy JSON");
        let sids: Vec<&str> =
            doc["Statement"].as_array().unwrap().iter().map(|st| st["Sid"].as_str().unwrap()).collect();
        assert_eq!(
            sids,
            ["Enable token user permissions", "Allow access for Key Administrators", "Allow use of the key"]
        );
        assert_eq!(doc["Statement"][0]["Principal"]["AWS"], format!("arn:kmstoken:iam::{serial}:user"));
        assert_eq!(doc["Statement"][0]["Action"], "kms:*");
        assert_eq!(doc["Statement"][1]["Principal"]["AWS"], format!("arn:kmstoken:iam::{serial}:so"));
        assert_eq!(doc["Statement"][2]["Principal"]["AWS"], format!("arn:kmstoken:iam::{serial}:user/*"));
        assert!(doc["Statement"][2]["Action"].as_array().unwrap().contains(&json!("kms:GenerateDataKey*")));
        assert_eq!(
            cli.ok(&["kms", "list-key-policies", "--key-id", &id]),
            json!({ "PolicyNames": ["default"], "Truncated": false })
        );
        // No stored policy yet: the vendor attribute is absent.
        assert_eq!(read(&session, key, KEY_POLICY), None);

        // The administrators administer but do not use.
        fn as_so<'a>(args: &[&'a str]) -> Vec<&'a str> {
            [args, &["--principal", "so", "--pin", SO_PIN][..]].concat()
        }
        cli.ok(&as_so(&["kms", "describe-key", "--key-id", &id]));
        cli.ok(&as_so(&["kms", "disable-key", "--key-id", &id]));
        cli.ok(&as_so(&["kms", "enable-key", "--key-id", &id]));
        let seen = cli.ok(&as_so(&["kms", "get-key-policy", "--key-id", &id]));
        assert_eq!(serde_json::from_str::<Value>(seen["Policy"].as_str().unwrap()).unwrap(), doc);
        let e = cli.fails(&as_so(&["kms", "encrypt", "--key-id", &id, "--plaintext", HELLO]), "AccessDeniedException");
        let want = format!(
            "User: arn:kmstoken:iam::{serial}:so is not authorized to perform: kms:Encrypt on resource: arn:kmstoken:kms:local:{serial}:key/{id} because no resource-based policy allows the kms:Encrypt action"
        );
        assert!(e.stderr.contains(&want), "{}", e.stderr);

        // Without --principal, the SO PIN makes an administrative command the SO's (and
        // leaves a use the user's).
        cli.ok(&["kms", "disable-key", "--key-id", &id, "--so-pin", SO_PIN]);
        cli.ok(&["kms", "enable-key", "--key-id", &id, "--so-pin", SO_PIN]);
        let last = tail(&cli, &id);
        assert_eq!(last.last().unwrap()["eventName"], "EnableKey");
        assert_eq!(last.last().unwrap()["userIdentity"]["principalId"], "so");
        cli.ok(&["kms", "encrypt", "--key-id", &id, "--plaintext", HELLO, "--so-pin", SO_PIN]);
        assert_eq!(tail(&cli, &id).last().unwrap()["userIdentity"]["principalId"], "user");

        // The token user still destroys (schedules the deletion of) the key.
        session.destroy_object(key).expect("C_DestroyObject by the user");
        assert_eq!(cli.key_state(&id), "PendingDeletion");
    });
}

#[test]
fn named_user_logs_in_with_c_login_user_and_uses_keys_under_the_default_policy() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let key = generate_aes(&session);
        let id = key_id_of(&session, key);
        add_user(&cli, "alice", ALICE_PIN);
        let users = cli.ok(&["user", "list", "--so-pin", SO_PIN]);
        assert_eq!(users["Users"][0]["UserName"], "user/alice", "{users:#}");

        session.logout().expect("C_Logout");
        expect_rv(login_user(&session, "alice", "wrong-pin-123"), RvError::PinIncorrect, Function::LoginUser);
        expect_rv(login_user(&session, "mallory", ALICE_PIN), RvError::UserTypeInvalid, Function::LoginUser);
        login_user(&session, "alice", ALICE_PIN).expect("C_LoginUser as alice");
        let info = raw().session_info(sh(&session)).expect("C_GetSessionInfo");
        assert_eq!(info.state, CKS_RW_USER_FUNCTIONS);
        expect_rv(login_user(&session, "alice", ALICE_PIN), RvError::UserAlreadyLoggedIn, Function::LoginUser);

        // Users use the key and read it, but do not administer it.
        aes_round_trip(&session, key);
        assert_eq!(key_id_of(&session, key), id);
        expect_rv(session.destroy_object(key), RvError::ActionProhibited, Function::DestroyObject);
        // Nor hash its material with C_DigestKey.
        session.digest_init(&Mechanism::Sha256).expect("C_DigestInit");
        expect_rv(session.digest_key(key), RvError::ActionProhibited, Function::DigestKey);
        let records = tail(&cli, &id);
        assert_eq!(denials_of(&records, "user/alice", "ScheduleKeyDeletion").len(), 1, "{records:#?}");
        let uses: Vec<&Value> =
            records.iter().filter(|r| r["eventName"] == "Encrypt" && r.get("errorCode").is_none()).collect();
        assert_eq!(uses.last().unwrap()["userIdentity"]["principalId"], "user/alice");
        let logins: Vec<Value> = audit_records(&s.keystore())
            .into_iter()
            .filter(|r| r["eventName"] == "Login" && r["userIdentity"]["principalId"] == "user/alice")
            .collect();
        assert_eq!(logins.len(), 3, "two failed, one good: {logins:#?}");

        // The CLI face: --principal user/NAME or NAME with that user's PIN.
        for who in ["user/alice", "alice"] {
            let out = encrypt_as(&cli, &id, who, ALICE_PIN, None).expect("alice encrypts");
            assert!(out["KeyId"].as_str().unwrap().ends_with(&id), "{out:#}");
        }
        let e = cli.fails(
            &["kms", "schedule-key-deletion", "--key-id", &id, "--principal", "user/alice", "--pin", ALICE_PIN],
            "AccessDeniedException",
        );
        assert!(e.stderr.contains(":user/alice is not authorized to perform: kms:ScheduleKeyDeletion"), "{}", e.stderr);
        let out = cli
            .command(&["kms", "describe-key", "--key-id", &id, "--principal", "user/alice", "--pin", "bad-pin-0000"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(254));
    });
}

#[test]
fn a_denied_named_user_is_refused_in_both_faces_and_audited() {
    scenario!(|s| {
        let (p, slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let serial = serial(&p, slot);
        let key = generate_aes(&session);
        let id = key_id_of(&session, key);
        add_user(&cli, "alice", ALICE_PIN);
        add_user(&cli, "bob", BOB_PIN);
        let doc = policy_with(
            &serial,
            vec![
                json!({ "Sid": "Use", "Effect": "Allow", "Principal": { "AWS": format!("arn:kmstoken:iam::{serial}:user/*") },
                        "Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"], "Resource": "*" }),
                json!({ "Sid": "Not alice", "Effect": "Deny", "Principal": { "AWS": "user/alice" },
                        "Action": "kms:Encrypt", "Resource": "*" }),
            ],
        );
        put_policy(&cli, &id, &doc);
        assert_eq!(get_policy(&cli, &id), doc);
        assert_eq!(read_text(&session, key, KEY_POLICY), doc, "readable as CKA_KMSTOKEN_KEY_POLICY");
        let ct = session.encrypt(&CBC, key, b"for alice").expect("the user encrypts");

        // PKCS#11: the Deny wins over the Allow of every named user.
        session.logout().expect("C_Logout");
        login_user(&session, "user/alice", ALICE_PIN).expect("C_LoginUser as user/alice");
        expect_rv(session.encrypt_init(&CBC, key), RvError::KeyFunctionNotPermitted, Function::EncryptInit);
        assert_eq!(session.decrypt(&CBC, key, &ct).expect("alice may decrypt"), b"for alice");
        session.logout().expect("C_Logout");

        // CLI.
        let e = encrypt_as(&cli, &id, "user/alice", ALICE_PIN, None).expect_err("alice is denied");
        assert_eq!((e.code.as_str(), e.operation.as_str()), ("AccessDeniedException", "Encrypt"), "{}", e.stderr);
        let want = format!(
            "User: arn:kmstoken:iam::{serial}:user/alice is not authorized to perform: kms:Encrypt on resource: arn:kmstoken:kms:local:{serial}:key/{id} with an explicit deny in a resource-based policy"
        );
        assert!(e.stderr.contains(&want), "{}", e.stderr);
        encrypt_as(&cli, &id, "user/bob", BOB_PIN, None).expect("bob is not denied");

        // The audit trail says who was refused, in both faces.
        let denied = denials_of(&tail(&cli, &id), "user/alice", "Encrypt");
        assert_eq!(denied.len(), 2, "{denied:#?}");
        for r in &denied {
            assert_eq!(r["userIdentity"]["arn"], format!("arn:kmstoken:iam::{serial}:user/alice"));
            assert!(r["errorMessage"].as_str().unwrap().contains("explicit deny"), "{r:#}");
        }
        assert!(denied[0]["requestParameters"]["mechanism"].is_string(), "the PKCS#11 refusal: {:#}", denied[0]);

        // A principal the policy does not name at all cannot even read the key.
        put_policy(&cli, &id, &policy_with(&serial, vec![]));
        login_user(&session, "bob", BOB_PIN).expect("C_LoginUser as bob");
        expect_rv(
            session.get_attributes(key, &[AttributeType::Label]),
            RvError::ActionProhibited,
            Function::GetAttributeValue,
        );
        expect_rv(session.encrypt_init(&CBC, key), RvError::KeyFunctionNotPermitted, Function::EncryptInit);
        let records = tail(&cli, &id);
        assert_eq!(denials_of(&records, "user/bob", "DescribeKey").len(), 1, "{records:#?}");
    });
}

#[test]
fn encryption_context_conditions_allow_only_the_matching_context() {
    scenario!(|s| {
        let (p, slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let serial = serial(&p, slot);
        let id = key_id_of(&session, generate_aes(&session));
        add_user(&cli, "alice", ALICE_PIN);
        put_policy(
            &cli,
            &id,
            &policy_with(
                &serial,
                vec![json!({ "Effect": "Allow", "Principal": { "AWS": "user/alice" },
                    "Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"], "Resource": "*",
                    "Condition": { "StringEquals": { "kms:EncryptionContext:purpose": "backup" } } })],
            ),
        );
        let blob = encrypt_as(&cli, &id, "user/alice", ALICE_PIN, Some("purpose=backup,team=ops"))
            .expect("the matching context")["CiphertextBlob"]
            .as_str()
            .unwrap()
            .to_string();
        for ctx in [Some("purpose=other"), Some("Purpose=backup"), None] {
            let e = encrypt_as(&cli, &id, "user/alice", ALICE_PIN, ctx).expect_err("another context");
            assert_eq!(e.code, "AccessDeniedException", "{ctx:?}: {}", e.stderr);
        }
        let decrypt = |ctx: &str| {
            cli.run(&[
                "kms",
                "decrypt",
                "--ciphertext-blob",
                &blob,
                "--encryption-context",
                ctx,
                "--principal",
                "user/alice",
                "--pin",
                ALICE_PIN,
            ])
        };
        assert_eq!(decrypt("purpose=backup,team=ops").expect("decrypt")["Plaintext"], HELLO);
        // The key policy is asked before the ciphertext is opened.
        assert_eq!(decrypt("purpose=restore").expect_err("refused").code, "AccessDeniedException");
        let records = tail(&cli, &id);
        let denied = denials_of(&records, "user/alice", "Decrypt");
        assert_eq!(denied.len(), 1, "{records:#?}");
        assert_eq!(denied[0]["requestParameters"]["encryptionContextKeys"], json!(["purpose"]));
    });
}

#[test]
fn malformed_and_self_locking_policies_are_refused_without_a_change() {
    scenario!(|s| {
        let (p, slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let serial = serial(&p, slot);
        let id = key_id_of(&session, generate_aes(&session));
        let before = get_policy(&cli, &id);
        let put = |doc: &str| cli.run(&["kms", "put-key-policy", "--key-id", &id, "--policy", doc]);
        let st = |effect: &str| {
            json!({ "Statement": [{ "Effect": effect, "Principal": "*", "Action": "kms:*", "Resource": "*" }] })
                .to_string()
        };
        let bad_condition = json!({ "Statement": [{ "Effect": "Allow", "Principal": "*", "Action": "kms:*",
            "Resource": "*", "Condition": { "NumericLessThan": { "kms:EncryptionContext:n": "3" } } }] })
        .to_string();
        for doc in ["{not json", "[]", "{\"Statement\": []}", st("Maybe").as_str(), bad_condition.as_str()] {
            let e = put(doc).expect_err(doc);
            assert_eq!((e.code.as_str(), e.operation.as_str()), ("MalformedPolicyDocumentException", "PutKeyPolicy"));
            assert_eq!(get_policy(&cli, &id), before, "{doc}: nothing changed");
        }
        let big = format!("{{\"Id\": \"{}\", {}", "x".repeat(33 * 1024), &st("Allow")[1..]);
        assert_eq!(put(&big).expect_err("too big").code, "LimitExceededException");

        // A policy that would lock the caller out of the key policy.
        let lockout = json!({ "Statement": [{ "Effect": "Allow", "Principal": { "AWS": format!("arn:kmstoken:iam::{serial}:user") },
            "Action": ["kms:Encrypt", "kms:DescribeKey", "kms:GetKeyPolicy"], "Resource": "*" }] })
        .to_string();
        let e = put(&lockout).expect_err("lockout");
        assert_eq!(e.code, "MalformedPolicyDocumentException");
        assert!(e.stderr.contains("The new key policy will not allow you to update the key policy in the future."));
        assert_eq!(get_policy(&cli, &id), before);
        let audited = records_of(&s.keystore(), "PutKeyPolicy", &id);
        assert_eq!(audited.len(), 7, "{audited:#?}");
        assert!(audited.iter().all(|r| r.get("errorCode").is_some()), "none succeeded: {audited:#?}");

        // The same, from a file, with the safety check bypassed: then the policy is final.
        let file = s.dir().join("lockout.json");
        std::fs::write(&file, &lockout).unwrap();
        let from_file = format!("file://{}", file.display());
        cli.ok(&[
            "kms",
            "put-key-policy",
            "--key-id",
            &id,
            "--policy",
            &from_file,
            "--bypass-policy-lockout-safety-check",
        ]);
        assert_eq!(get_policy(&cli, &id), lockout);
        let e = put(&before).expect_err("locked out");
        assert_eq!((e.code.as_str(), e.operation.as_str()), ("AccessDeniedException", "PutKeyPolicy"), "{}", e.stderr);
        cli.fails(&["kms", "disable-key", "--key-id", &id], "AccessDeniedException");
        assert_eq!(cli.key_state(&id), "Enabled");
    });
}

/// As in AWS, generate-data-key asks kms:GenerateDataKey and re-encrypt asks
/// kms:ReEncryptFrom / kms:ReEncryptTo: a user granted only those cannot encrypt or
/// decrypt, yet makes data keys and re-encrypts, and the audit names those actions.
#[test]
fn data_keys_and_re_encryption_ask_their_own_actions() {
    scenario!(|s| {
        let (p, slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let serial = serial(&p, slot);
        let id = key_id_of(&session, generate_aes(&session));
        add_user(&cli, "alice", ALICE_PIN);
        let allowed = ["kms:GenerateDataKey", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:DescribeKey"];
        let doc = policy_with(
            &serial,
            vec![json!({
                "Effect": "Allow",
                "Principal": { "AWS": format!("arn:kmstoken:iam::{serial}:user/alice") },
                "Action": allowed,
                "Resource": "*",
            })],
        );
        put_policy(&cli, &id, &doc);
        let alice = ["--principal", "user/alice", "--pin", ALICE_PIN];
        let run = |args: &[&str]| cli.run(&[args, &alice[..]].concat());

        let made =
            run(&["kms", "generate-data-key", "--key-id", &id, "--key-spec", "AES_256"]).expect("GenerateDataKey");
        let blob = made["CiphertextBlob"].as_str().unwrap().to_string();
        let again =
            run(&["kms", "re-encrypt", "--ciphertext-blob", &blob, "--destination-key-id", &id]).expect("ReEncrypt");
        assert!(again["SourceKeyId"].as_str().unwrap().ends_with(&id), "{again}");

        assert_eq!(encrypt_as(&cli, &id, "user/alice", ALICE_PIN, None).unwrap_err().code, "AccessDeniedException");
        assert_eq!(run(&["kms", "decrypt", "--ciphertext-blob", &blob]).unwrap_err().code, "AccessDeniedException");
        // The token user decrypts both blobs to the same data key.
        let plain = |b: &str| cli.ok(&["kms", "decrypt", "--ciphertext-blob", b])["Plaintext"].clone();
        assert_eq!(plain(&blob), made["Plaintext"]);
        assert_eq!(plain(again["CiphertextBlob"].as_str().unwrap()), made["Plaintext"]);

        let records = tail(&cli, &id);
        let ok_by_alice = |event: &str| {
            records.iter().any(|r| {
                r["eventName"] == event
                    && r["userIdentity"]["principalId"] == "user/alice"
                    && r.get("errorCode").is_none()
            })
        };
        for event in ["GenerateDataKey", "ReEncryptFrom", "ReEncryptTo"] {
            assert!(ok_by_alice(event), "no successful {event} record of user/alice");
        }
        assert_eq!(denials_of(&records, "user/alice", "Encrypt").len(), 1);
        assert_eq!(denials_of(&records, "user/alice", "Decrypt").len(), 1);
    });
}
