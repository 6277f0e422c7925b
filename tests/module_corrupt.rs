//! A damaged keystore or configuration: C_Initialize still answers, the damage is
//! logged with what and where, and nothing crashes.

mod common;

use common::*;
use cryptoki::context::Function;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType};
use std::path::{Path, PathBuf};

fn token_file(s: &Scenario, serial: &str) -> PathBuf {
    s.keystore().join(format!("token-{serial}.sqlite"))
}

/// Replaces a database, dropping any write-ahead log beside it.
fn damage(path: &Path, contents: &[u8]) {
    std::fs::write(path, contents).unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[test]
fn damaged_token_databases_are_left_out() {
    scenario!(|s| {
        if s.role() == "scan" {
            let p = initialized();
            // The good token keeps slot 0; the damaged ones are gone, so slot 1 is empty.
            assert_eq!(slot_ids(&p), vec![0, 1]);
            assert_eq!(p.get_token_info(slot(0)).unwrap().label(), LABEL);
            assert!(!p.get_token_info(slot(1)).unwrap().token_initialized());
            let session = user_session(&p, slot(0));
            let key = session.find_objects(&[Attribute::Label(b"key".to_vec())]).unwrap();
            assert_eq!(key.len(), 1);
            let value = hex::decode(s.get("value")).unwrap();
            let ct = session.encrypt(&Mechanism::AesCbc([0; 16]), key[0], &[1; 16]).unwrap();
            assert_eq!(ct, oracle::cbc_encrypt(&value, &[0; 16], &[1; 16], false));
            // The free slot takes a new token.
            init_token(&p, "new");
            assert_eq!(slot_ids(&p), vec![0, 1, 2]);
            assert_eq!(p.get_token_info(slot(1)).unwrap().label(), "new");
            return;
        }
        let (p, slot0, session) = ready();
        let value = random_bytes(16);
        let mut t = secret_template(KeyType::AES, &value);
        t.extend([Attribute::Token(true), Attribute::Label(b"key".to_vec())]);
        create(&session, &t);
        s.put("value", hex::encode(&value));
        let garbage = init_token(&p, "garbage");
        let truncated = init_token(&p, "truncated");
        let serial = |slot| p.get_token_info(slot).unwrap().serial_number().to_string();
        let (garbage, truncated) = (token_file(s, &serial(garbage)), token_file(s, &serial(truncated)));
        assert_eq!(p.get_token_info(slot0).unwrap().label(), LABEL);
        drop(session);
        p.finalize().unwrap();

        damage(&garbage, &random_bytes(8192));
        let head = std::fs::read(&truncated).unwrap()[..1000].to_vec();
        damage(&truncated, &head);

        let out = s.peer("scan");
        let log = String::from_utf8_lossy(&out.stderr);
        for path in [&garbage, &truncated] {
            assert!(
                log.lines().any(|l| l.contains(&path.display().to_string()) && l.contains("skipped")),
                "no log line names {}:\n{log}",
                path.display()
            );
        }
        assert!(!log.contains("panic"), "{log}");
    });
}

#[test]
fn a_bad_configuration_fails_initialize_with_a_log_line() {
    scenario!(|s| {
        if s.role() == "init" {
            let p = load();
            expect_rv(p.initialize(init_args()), RvError::GeneralError, Function::Initialize);
            expect_rv(p.get_library_info(), RvError::CryptokiNotInitialized, Function::GetInfo);
            // Nothing was left half-done: with the file mended, C_Initialize works.
            s.write_config("");
            p.initialize(init_args()).unwrap();
            assert_eq!(slot_ids(&p), vec![0]);
            return;
        }
        let cases: [(&str, &[&str]); 4] = [
            ("[pin]\nmax_failed_logins = \"ten\"", &["max_failed_logins"]),
            ("bogus = 1", &["bogus"]),
            ("[kms]\ndeletion_window_days = 31", &["kms.deletion_window_days"]),
            ("[log]\nlevel = \"loud\"", &["log.level"]),
        ];
        let conf = s.config_path().display().to_string();
        for (text, words) in cases {
            s.write_config(text);
            let out = s.peer("init");
            let log = String::from_utf8_lossy(&out.stderr);
            let line =
                log.lines().find(|l| l.contains(&conf)).unwrap_or_else(|| panic!("no log line names {conf}:\n{log}"));
            for w in words {
                assert!(line.contains(w), "{line:?} does not name {w}");
            }
        }
        std::fs::remove_file(s.config_path()).unwrap();
        let out = s.peer("init");
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(log.lines().any(|l| l.contains(&conf)), "no log line names the missing {conf}:\n{log}");
    });
}
