//! The audit trail: one record per key use, login and lifecycle change, read back as a
//! CloudTrail event, with no secret in it; two processes write segments of their own that
//! verify; `audit tail --key-id` filters; and a trail that cannot be written stops key use
//! unless the configuration allows it. Tampering, kind by kind: tests/audit_tamper.rs.

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
    audit_verify(cli).map(|v| v["Records"].as_u64().expect("Records"))
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
        "segment",
        "seq",
        "keyed",
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
        let log: Vec<u8> = trail_segments(&s.keystore()).iter().flat_map(|p| std::fs::read(p).unwrap()).collect();
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
fn two_processes_write_segments_of_their_own() {
    const USES: usize = 40;
    scenario!(|s| {
        if s.role() != MAIN {
            let (_p, _slot, session) = rejoin();
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
        let mut by_segment: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
        for r in &records {
            by_segment.entry(r["segment"].as_str().unwrap().to_string()).or_default().push(r["seq"].as_u64().unwrap());
        }
        for (segment, mut seqs) in by_segment {
            seqs.sort_unstable();
            let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
            assert_eq!(seqs, expected, "contiguous sequence numbers in {segment}");
        }
        let uses = records_of(&s.keystore(), "Encrypt", &id);
        assert_eq!(uses.len(), 2 * USES);
        let mut pids: Vec<u64> = uses.iter().map(|r| r["userIdentity"]["processId"].as_u64().unwrap()).collect();
        pids.sort_unstable();
        pids.dedup();
        assert_eq!(pids.len(), 2, "two writers");
        let cli = Cli::new(&s.config_path(), USER_PIN);
        assert_eq!(verify(&cli), Ok(audit_records(&s.keystore()).len() as u64), "the records and the verifier's login");
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

/// Limits the size of the files this process writes (RLIMIT_FSIZE) to `limit` bytes, or
/// lifts the limit: with the limit at the size of the trail's segments, the audit writer
/// meets what a full disk gives it (EFBIG) and the database is not written meanwhile.
fn file_limit(limit: Option<u64>) {
    // SAFETY: signal, getrlimit and setrlimit take plain values and a pointer to a local
    // rlimit; SIGXFSZ is ignored so that a write past the limit fails instead of ending
    // the process.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut l), 0);
        l.rlim_cur = limit.unwrap_or(l.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &l), 0);
    }
}

/// The trail made unwritable: no segment may grow.
fn break_log(keystore: &Path) {
    let biggest = trail_segments(keystore).iter().map(|p| std::fs::metadata(p).unwrap().len()).max().unwrap();
    file_limit(Some(biggest));
}

#[test]
fn an_unwritable_log_stops_key_use() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let aes = generate_aes(&session);
        let mac = generate_hmac(&session);
        break_log(&s.keystore());

        for (u, key) in [(Use::Encrypt, aes), (Use::Decrypt, aes), (Use::GenerateMac, mac)] {
            expect_rv(u.start(&session, key), RvError::DeviceMemory, u.function());
        }
        // Nothing was started.
        expect_rv(session.encrypt_update(b"data"), RvError::OperationNotInitialized, Function::EncryptUpdate);
        expect_rv(session.sign_update(b"data"), RvError::OperationNotInitialized, Function::SignUpdate);

        file_limit(None);
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
        break_log(&s.keystore());
        aes_round_trip(&session, aes);
        mac_round_trip(&session, mac);
        file_limit(None);
        assert!(records_of(&s.keystore(), "Encrypt", &key_id_of(&session, aes)).is_empty(), "the uses went unrecorded");
    });
}
