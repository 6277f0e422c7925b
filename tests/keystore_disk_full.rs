//! A full disk: the keystore on a small tmpfs (mounted in a user and mount namespace of
//! its own with `unshare`, so no root is needed) is filled with token keys until the
//! module answers CKR_DEVICE_MEMORY. Every key acknowledged with CKR_OK is there and
//! audited, no refused one left anything behind (no orphan key, no partial record), keys
//! stay usable, a login whose attempt cannot be counted is not checked, and once space
//! returns logins and writes work again.

mod common;
#[path = "kms_common.rs"]
mod kms;

use common::*;
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use kms::*;
use std::process::Command;

/// The scenario's `role` in a process whose keystore directory is a tmpfs of `size`.
fn peer_on_small_disk(s: &Scenario, role: &str, size: &str) -> std::process::Output {
    let inner = s.command_for(role);
    let mut c = Command::new("unshare");
    c.args(["--user", "--map-root-user", "--mount", "sh", "-c"])
        .arg(format!(
            "mkdir -p '{ks}' && mount -t tmpfs -o size={size} tmpfs '{ks}' && exec \"$0\" \"$@\"",
            ks = s.keystore().display()
        ))
        .arg(inner.get_program())
        .args(inner.get_args());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let out = c.output().expect("unshare (util-linux) runs");
    assert!(
        out.status.success(),
        "the probe failed:\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn a_full_disk_leaves_nothing_half_done_and_blocks_nothing_after() {
    scenario!(|s| {
        if s.role() != "probe" {
            let out = peer_on_small_disk(s, "probe", "3m");
            let log = String::from_utf8_lossy(&out.stderr);
            assert!(!log.contains("panicked"), "{log}");
            return;
        }
        let (p, slot0, session) = ready();
        // Ballast, to give space back later.
        std::fs::write(s.keystore().join("ballast"), vec![1u8; 256 << 10]).unwrap();
        let mut acknowledged = Vec::new();
        let refusal = loop {
            let label = format!("k{}", acknowledged.len());
            match session.generate_key(&Mechanism::AesKeyGen, &aes_template(vec![Attribute::Label(label.into_bytes())]))
            {
                Ok(h) => acknowledged.push(h),
                Err(e) => break e,
            }
            assert!(acknowledged.len() < 50_000, "the disk never filled");
        };
        assert!(
            matches!(refusal, Error::Pkcs11(RvError::DeviceMemory, _)),
            "a full disk is CKR_DEVICE_MEMORY, not {refusal:?}"
        );
        assert!(acknowledged.len() > 10, "only {} keys before the disk filled", acknowledged.len());
        // Every acknowledged key is there; nothing else is.
        let found = find(&session, &[Attribute::Class(ObjectClass::SECRET_KEY)]);
        let mut acked: Vec<u64> = acknowledged.iter().map(|h| h.handle()).collect();
        acked.sort_unstable();
        assert_eq!(found, acked, "orphans or lost keys");
        // Every acknowledged key has its CreateKey record, each line a whole record.
        let records = audit_records(&s.keystore());
        let created = records.iter().filter(|r| r["eventName"] == "CreateKey" && r["errorCode"].is_null()).count();
        assert_eq!(created, acknowledged.len(), "CreateKey records");
        // Uses of existing keys go on while the disk is full. A login is counted before
        // its PIN is checked: where the count cannot be written, the login is
        // CKR_DEVICE_MEMORY and nothing is checked; where it can, it goes as usual.
        aes_round_trip(&session, acknowledged[0]);
        session.logout().unwrap();
        match session.login(UserType::User, Some(&pin("wrong"))) {
            Err(Error::Pkcs11(RvError::PinIncorrect | RvError::DeviceMemory, _)) => {}
            other => panic!("a wrong PIN on a full disk gave {other:?}"),
        }
        let logged_in = match session.login(UserType::User, Some(&pin(USER_PIN))) {
            Ok(()) => true,
            Err(Error::Pkcs11(RvError::DeviceMemory, _)) => false,
            other => panic!("the right PIN on a full disk gave {other:?}"),
        };
        // Space comes back: logins and writes work again, nothing blocks.
        std::fs::remove_file(s.keystore().join("ballast")).unwrap();
        if logged_in {
            session.logout().unwrap();
        }
        session.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        let more =
            session.generate_key(&Mechanism::AesKeyGen, &aes_template(vec![])).expect("a key after space returned");
        aes_round_trip(&session, more);
        drop(session);
        p.finalize().unwrap();
        let p = initialized();
        let session = user_session(&p, slot0);
        aes_round_trip(&session, acknowledged[acknowledged.len() - 1]);
        let verify = Cli::new(&s.config_path(), USER_PIN).ok(&["audit", "verify"]);
        assert_eq!(verify["Intact"], true, "{verify}");
    });
}

#[test]
fn a_torn_last_audit_record_is_set_aside_and_blocks_nothing() {
    scenario!(|s| {
        let (p, slot0, session) = ready();
        let key = session.generate_key(&Mechanism::AesKeyGen, &aes_template(vec![])).unwrap();
        drop(session);
        p.finalize().unwrap();
        // A record cut short, as a full disk or a crash mid-write leaves it: its length
        // says 200 bytes, 6 follow.
        let segments = trail_segments(&s.keystore());
        let last = segments.last().unwrap();
        let mut torn = std::fs::read(last).unwrap();
        let whole = torn.len();
        torn.extend_from_slice(&[200, 0, 0, 0, 1, 2]);
        std::fs::write(last, &torn).unwrap();
        let p = initialized();
        let session = user_session(&p, slot0);
        aes_round_trip(&session, key);
        // The torn piece is read past (never a record), and the trail goes on elsewhere.
        assert_eq!(std::fs::read(last).unwrap().len(), whole + 6, "nobody appends to a dead segment");
        assert!(trail_segments(&s.keystore()).len() > segments.len());
        let verify = Cli::new(&s.config_path(), USER_PIN).ok(&["audit", "verify"]);
        assert_eq!(verify["Intact"], true, "{verify}");
        assert_eq!(verify["Torn"], 1, "{verify}");
        let records = audit_records(&s.keystore());
        assert!(records.iter().any(|r| r["eventName"] == "Encrypt"), "the use after it is recorded");
    });
}
