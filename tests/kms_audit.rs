//! The audit trail: one JSON record per key use, login and lifecycle change, with no
//! secret in it; `kmstoken audit verify` finds a record altered, removed or moved; two
//! processes keep one chain; `audit tail --key-id` filters; and a log that cannot be
//! written stops key use unless the configuration allows it.

mod common;
#[path = "kms_common.rs"]
mod kms;

use common::*;
use cryptoki::context::Function;
use cryptoki::error::RvError;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::KeyType;
use cryptoki::session::UserType;
use kms::*;
use serde_json::Value;
use std::path::Path;

const CBC: Mechanism<'static> = Mechanism::AesCbcPad([3; 16]);

/// `kmstoken audit verify`: the number of sound records, or what it printed on failure.
fn verify(cli: &Cli) -> Result<u64, String> {
    let out = cli.command(&["audit", "verify"]).output().expect("run kmstoken");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        assert_eq!(out.status.code(), Some(254), "{stderr}");
        return Err(stderr);
    }
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    assert_eq!(v["Intact"], true, "{v:#}");
    Ok(v["Records"].as_u64().expect("Records"))
}

/// Asserts that `audit verify` fails and names `record`.
#[track_caller]
fn verify_names(cli: &Cli, record: u64) {
    let e = verify(cli).expect_err("a broken log");
    assert!(e.contains(&format!("record {record} ")), "{e}");
}

fn lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log).expect("read the log").lines().map(str::to_string).collect()
}

fn write_lines(log: &Path, lines: &[String]) {
    std::fs::write(log, lines.join("\n") + "\n").expect("write the log");
}

/// The fields every record has.
#[track_caller]
fn well_formed(r: &Value) {
    for field in [
        "eventVersion",
        "eventTime",
        "eventSource",
        "eventName",
        "eventType",
        "userIdentity",
        "requestParameters",
        "requestID",
        "eventID",
        "readOnly",
        "seq",
        "prevHash",
        "hash",
    ] {
        assert!(r.get(field).is_some(), "{field} missing: {r:#}");
    }
    assert!((now() - parse_time(r["eventTime"].as_str().unwrap())).abs() < 300);
}

#[test]
fn key_uses_logins_and_changes_are_one_record_each() {
    scenario!(|s| {
        let p = initialized();
        let slot = init_token(&p, LABEL);
        init_user_pin(&p, slot, USER_PIN);
        let session = p.open_rw_session(slot).unwrap();
        expect_rv(session.login(UserType::User, Some(&pin("wrong-pin-0000"))), RvError::PinIncorrect, Function::Login);
        session.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        let logins: Vec<Value> =
            audit_records(&s.keystore()).into_iter().filter(|r| r["eventName"] == "Login").collect();
        let users: Vec<&Value> = logins.iter().filter(|r| r["userIdentity"]["principalId"] == "user").collect();
        assert_eq!(users.len(), 2, "{logins:#?}");
        assert_eq!(users[0]["errorCode"], "AccessDeniedException");
        assert!(users[1].get("errorCode").is_none(), "{:#}", users[1]);
        assert!(logins.iter().any(|r| r["userIdentity"]["principalId"] == "so"));

        let key = generate_aes(&session);
        let id = key_id_of(&session, key);
        let created = records_of(&s.keystore(), "CreateKey", &id);
        assert_eq!(created.len(), 1, "{created:#?}");
        assert_eq!(created[0]["readOnly"], false);

        for n in 1..=3 {
            session.encrypt(&CBC, key, b"data").unwrap();
            assert_eq!(records_of(&s.keystore(), "Encrypt", &id).len(), n);
        }
        assert!(records_of(&s.keystore(), "Decrypt", &id).is_empty());
        let used = records_of(&s.keystore(), "Encrypt", &id).pop().unwrap();
        well_formed(&used);
        assert_eq!(used["eventType"], "AwsApiCall");
        assert_eq!(used["userIdentity"]["principalId"], "user");
        assert_eq!(used["userIdentity"]["processId"], std::process::id());
        assert_eq!(used["requestParameters"]["keyVersion"], 1);
        assert_eq!(used["requestParameters"]["mechanism"], format!("{:#x}", cryptoki_sys::CKM_AES_CBC_PAD));
        assert_eq!(used["resources"][0]["ARN"], read_text(&session, key, ARN).as_str());
        assert_eq!(used["readOnly"], true);
        assert!(used.get("errorCode").is_none());

        let cli = Cli::new(&s.config_path(), USER_PIN);
        cli.ok(&["kms", "disable-key", "--key-id", &id]);
        cli.fails(&["kms", "cancel-key-deletion", "--key-id", &id], "KMSInvalidStateException");
        session.destroy_object(key).unwrap();
        for (event, error) in [
            ("DisableKey", None),
            ("CancelKeyDeletion", Some("KMSInvalidStateException")),
            ("ScheduleKeyDeletion", None),
        ] {
            let r = records_of(&s.keystore(), event, &id);
            assert_eq!(r.len(), 1, "{event}: {r:#?}");
            well_formed(&r[0]);
            assert_eq!(r[0]["userIdentity"]["principalId"], "user");
            assert_eq!(r[0]["readOnly"], false);
            match error {
                Some(code) => {
                    assert_eq!(r[0]["errorCode"], code);
                    assert!(r[0]["errorMessage"].as_str().is_some());
                }
                None => assert!(r[0].get("errorCode").is_none(), "{:#}", r[0]),
            }
        }
        assert_eq!(verify(&cli), Ok(audit_records(&s.keystore()).len() as u64));
    });
}

/// Whether `haystack` holds `needle`.
fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn the_log_holds_no_key_plaintext_or_pin() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let aes_value = random_bytes(32);
        let mac_value = random_bytes(32);
        let secret_text = b"plaintext that must never reach the audit log".to_vec();
        let secret_bytes = random_bytes(48);
        let aes = known_key(&session, KeyType::AES, &aes_value);
        let mac = known_key(&session, KeyType::GENERIC_SECRET, &mac_value);
        for pt in [&secret_text, &secret_bytes] {
            let ct = session.encrypt(&CBC, aes, pt).unwrap();
            assert_eq!(&session.decrypt(&CBC, aes, &ct).unwrap(), pt);
            let mut iv = random_bytes(12);
            let gcm = Mechanism::AesGcm(GcmParams::new(&mut iv, b"aad", 128.into()).unwrap());
            session.encrypt(&gcm, aes, pt).unwrap();
            let tag = session.sign(&Mechanism::Sha256Hmac, mac, pt).unwrap();
            session.verify(&Mechanism::Sha256Hmac, mac, pt, &tag).unwrap();
        }
        let log = std::fs::read(audit_path(&s.keystore())).unwrap();
        assert!(log.len() > 1000, "the uses were recorded");
        for secret in [&aes_value, &mac_value, &secret_text, &secret_bytes] {
            assert!(!holds(&log, secret), "raw secret in the log");
            for hex in [hex::encode(secret), hex::encode_upper(secret)] {
                assert!(!holds(&log, hex.as_bytes()), "hex secret in the log");
            }
            // Nor a piece long enough to matter.
            assert!(!holds(&log, &secret[..16]));
        }
        for pin in [USER_PIN, SO_PIN] {
            assert!(!holds(&log, pin.as_bytes()), "PIN {pin} in the log");
        }
    });
}

#[test]
fn verify_finds_altered_removed_and_moved_records() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let key = generate_aes(&session);
        for _ in 0..4 {
            session.encrypt(&CBC, key, b"x").unwrap();
        }
        let log = audit_path(&s.keystore());
        let good = lines(&log);
        assert!(good.len() >= 6, "{good:#?}");
        assert_eq!(verify(&cli), Ok(good.len() as u64));

        // One byte changed in record 3 (still valid JSON).
        let mut altered = good.clone();
        let at = altered[2].find("\"eventName\":\"").unwrap() + 13;
        let mut bytes = altered[2].clone().into_bytes();
        bytes[at] ^= 0x20; // the case of the name's first letter
        altered[2] = String::from_utf8(bytes).unwrap();
        write_lines(&log, &altered);
        verify_names(&cli, 3);

        // One byte changed in the last record's hash.
        let mut altered = good.clone();
        let last = altered.last_mut().unwrap();
        let end = last.len() - 3;
        let c = if &last[end..end + 1] == "0" { "1" } else { "0" };
        last.replace_range(end..end + 1, c);
        write_lines(&log, &altered);
        verify_names(&cli, good.len() as u64);

        // Record 2 removed.
        let mut removed = good.clone();
        removed.remove(1);
        write_lines(&log, &removed);
        verify_names(&cli, 2);

        // Records 4 and 5 swapped.
        let mut swapped = good.clone();
        swapped.swap(3, 4);
        write_lines(&log, &swapped);
        verify_names(&cli, 4);

        // Restored, the log verifies again and takes new records.
        write_lines(&log, &good);
        session.encrypt(&CBC, key, b"x").unwrap();
        assert_eq!(verify(&cli), Ok(good.len() as u64 + 1));
    });
}

#[test]
fn two_processes_keep_one_chain() {
    const USES: usize = 40;
    scenario!(|s| {
        if s.role() != MAIN {
            let p = initialized();
            let slot = p.get_slots_with_initialized_token().unwrap()[0];
            let session = user_session(&p, slot);
            let key = handle_of(s.get_u64("key"));
            for _ in 0..USES {
                session.encrypt(&CBC, key, b"concurrent").unwrap();
            }
            return;
        }
        let (_p, _slot, session) = ready();
        let key = generate_aes(&session);
        let id = key_id_of(&session, key);
        s.put("key", key.handle());
        std::thread::scope(|scope| {
            for role in ["left", "right"] {
                scope.spawn(move || s.peer(role));
            }
        });

        let records = audit_records(&s.keystore());
        let seqs: Vec<u64> = records.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
        let expected: Vec<u64> = (1..=records.len() as u64).collect();
        assert_eq!(seqs, expected, "contiguous sequence numbers");
        let uses = records_of(&s.keystore(), "Encrypt", &id);
        assert_eq!(uses.len(), 2 * USES);
        let mut pids: Vec<u64> = uses.iter().map(|r| r["userIdentity"]["processId"].as_u64().unwrap()).collect();
        pids.sort_unstable();
        pids.dedup();
        assert_eq!(pids.len(), 2, "two writers");
        let cli = Cli::new(&s.config_path(), USER_PIN);
        assert_eq!(verify(&cli), Ok(records.len() as u64));
    });
}

#[test]
fn tail_lists_one_keys_records() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let one = generate_aes(&session);
        let two = generate_aes(&session);
        let one_id = key_id_of(&session, one);
        for _ in 0..3 {
            session.encrypt(&CBC, one, b"1").unwrap();
            session.encrypt(&CBC, two, b"2").unwrap();
        }
        cli.ok(&["kms", "disable-key", "--key-id", &one_id]);

        let of_one: Vec<Value> = audit_records(&s.keystore())
            .into_iter()
            .filter(|r| r["requestParameters"]["keyId"] == one_id.as_str())
            .collect();
        assert_eq!(of_one.len(), 5, "CreateKey, 3 × Encrypt, DisableKey: {of_one:#?}");
        let tail = |n: &str| {
            cli.ok(&["audit", "tail", "--key-id", &one_id, "-n", n])["Records"].as_array().expect("Records").clone()
        };
        assert_eq!(tail("100"), of_one);
        assert_eq!(tail("2"), of_one[3..]);
        let all = cli.ok(&["audit", "tail", "-n", "1000"])["Records"].as_array().unwrap().len();
        assert_eq!(all, audit_records(&s.keystore()).len());
    });
}

/// Replaces the audit log with a directory of the same name (root ignores permissions, so
/// a read-only directory would not do); returns where the log was put aside.
fn break_log(keystore: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let log = audit_path(keystore);
    let aside = log.with_extension("aside");
    std::fs::rename(&log, &aside).unwrap();
    std::fs::create_dir(&log).unwrap();
    (log, aside)
}

#[test]
fn an_unwritable_log_stops_key_use() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let aes = generate_aes(&session);
        let mac = generate_hmac(&session);
        let (log, aside) = break_log(&s.keystore());

        for (u, key) in [(Use::Encrypt, aes), (Use::Decrypt, aes), (Use::GenerateMac, mac)] {
            expect_rv(u.start(&session, key), RvError::DeviceError, u.function());
        }
        // Nothing was started.
        expect_rv(session.encrypt_update(b"data"), RvError::OperationNotInitialized, Function::EncryptUpdate);
        expect_rv(session.sign_update(b"data"), RvError::OperationNotInitialized, Function::SignUpdate);

        std::fs::remove_dir(&log).unwrap();
        std::fs::rename(&aside, &log).unwrap();
        aes_round_trip(&session, aes);
        mac_round_trip(&session, mac);
        let cli = Cli::new(&s.config_path(), USER_PIN);
        assert!(verify(&cli).is_ok());
    });
}

#[test]
fn an_unwritable_log_may_be_allowed_by_configuration() {
    scenario!("[kms]\naudit_required = false\n", |s| {
        let (_p, _slot, session) = ready();
        let aes = generate_aes(&session);
        let mac = generate_hmac(&session);
        let (log, aside) = break_log(&s.keystore());
        aes_round_trip(&session, aes);
        mac_round_trip(&session, mac);
        std::fs::remove_dir(&log).unwrap();
        std::fs::rename(&aside, &log).unwrap();
        assert!(records_of(&s.keystore(), "Encrypt", &key_id_of(&session, aes)).is_empty(), "the uses went unrecorded");
    });
}
