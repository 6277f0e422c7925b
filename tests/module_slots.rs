//! Slots and tokens: the empty slot, C_InitToken on it and on an existing token, and
//! slot ids that stay put.

mod common;

use common::*;
use cryptoki::context::Function;
use cryptoki::error::RvError;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;

#[test]
fn fresh_keystore_shows_one_empty_slot() {
    scenario!(|s| {
        let p = initialized();
        assert_eq!(slot_ids(&p), vec![0]);
        let info = p.get_token_info(slot(0)).unwrap();
        assert!(!info.token_initialized());
        assert!(!info.user_pin_initialized());
        assert!(p.get_slot_info(slot(0)).unwrap().token_present());
        assert!(p.get_slots_with_initialized_token().unwrap().is_empty());
        // The keystore is the configured one, nothing under the home directory.
        assert!(s.keystore().is_dir());
        assert!(!s.dir().join("home/.local").exists() && !s.dir().join("home/data").exists());
    });
}

#[test]
fn init_token_fills_the_empty_slot_and_a_new_one_appears() {
    scenario!(|_| {
        let p = initialized();
        p.init_token(slot(0), &pin(SO_PIN), "first").unwrap();
        assert_eq!(slot_ids(&p), vec![0, 1]);
        let first = p.get_token_info(slot(0)).unwrap();
        assert!(first.token_initialized());
        assert!(!first.user_pin_initialized());
        assert_eq!(first.label(), "first");
        assert!(!first.serial_number().is_empty());
        assert!(!p.get_token_info(slot(1)).unwrap().token_initialized());

        p.init_token(slot(1), &pin(SO_PIN), "second").unwrap();
        assert_eq!(slot_ids(&p), vec![0, 1, 2]);
        let second = p.get_token_info(slot(1)).unwrap();
        assert_eq!(second.label(), "second");
        assert_ne!(second.serial_number(), first.serial_number());

        // The empty slot has no token to open a session on; other ids are no slots.
        expect_rv(p.open_rw_session(slot(2)), RvError::TokenNotRecognized, Function::OpenSession);
        expect_rv(p.get_token_info(slot(7)), RvError::SlotIdInvalid, Function::GetTokenInfo);
        expect_rv(p.init_token(slot(7), &pin(SO_PIN), "x"), RvError::SlotIdInvalid, Function::InitToken);
        expect_rv(p.init_token(slot(2), &pin("abc"), "short"), RvError::PinLenRange, Function::InitToken);
    });
}

#[test]
fn slot_ids_are_stable_across_finalize() {
    scenario!(|s| {
        if s.role() == "second" {
            // Another process sees the same slots.
            let p = initialized();
            assert_eq!(slot_ids(&p), vec![0, 1, 2]);
            assert_eq!(p.get_token_info(slot(0)).unwrap().label(), "a");
            assert_eq!(p.get_token_info(slot(1)).unwrap().label(), "b");
            return;
        }
        let p = initialized();
        init_token(&p, "a");
        init_token(&p, "b");
        reinitialize(&p);
        assert_eq!(slot_ids(&p), vec![0, 1, 2]);
        assert_eq!(p.get_token_info(slot(0)).unwrap().label(), "a");
        assert_eq!(p.get_token_info(slot(1)).unwrap().label(), "b");
        assert!(!p.get_token_info(slot(2)).unwrap().token_initialized());
        s.peer("second");
    });
}

#[test]
fn reinit_needs_the_so_pin_and_wipes_the_token() {
    scenario!(|s| {
        let (p, slot0, session) = ready();
        let mut t = data_template("kept?", b"value");
        t.push(Attribute::Token(true));
        create(&session, &t);
        let old_serial = p.get_token_info(slot0).unwrap().serial_number().to_string();

        // Not while a session is open.
        expect_rv(p.init_token(slot0, &pin(SO_PIN), "fresh"), RvError::SessionExists, Function::InitToken);
        drop(session);
        expect_rv(p.init_token(slot0, &pin("wrong-so-pin"), "fresh"), RvError::PinIncorrect, Function::InitToken);
        let ro = p.open_ro_session(slot0).unwrap();
        assert_eq!(
            ro.find_objects(&[Attribute::Class(ObjectClass::DATA)]).unwrap().len(),
            1,
            "wrong PIN wiped nothing"
        );
        drop(ro);

        p.init_token(slot0, &pin(SO_PIN), "fresh").unwrap();
        assert_eq!(slot_ids(&p), vec![0, 1], "the token keeps its slot");
        let info = p.get_token_info(slot0).unwrap();
        assert_eq!(info.label(), "fresh");
        assert_ne!(info.serial_number(), old_serial);
        assert!(!info.user_pin_initialized(), "the user PIN went with the old token");
        let session = p.open_rw_session(slot0).unwrap();
        expect_rv(session.login(UserType::User, Some(&pin(USER_PIN))), RvError::UserPinNotInitialized, Function::Login);
        assert!(session.find_objects(&[]).unwrap().is_empty());

        // The old database is archived, not deleted.
        let archived: Vec<String> = std::fs::read_dir(s.keystore().join("archive"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            archived.iter().any(|n| n.ends_with(&format!("token-{old_serial}.sqlite"))),
            "archive holds {archived:?}"
        );
        assert_eq!(s.token_files().len(), 1);
    });
}

#[test]
fn an_archived_token_comes_back_until_its_window_ends() {
    scenario!(|s| {
        let (p, slot0, session) = ready();
        let mut t = data_template("kept", b"value");
        t.push(Attribute::Token(true));
        create(&session, &t);
        let old_serial = p.get_token_info(slot0).unwrap().serial_number().to_string();
        drop(session);
        p.init_token(slot0, &pin(SO_PIN), "fresh").unwrap();
        p.finalize().unwrap();

        let kmstoken = |args: &[&str], offset_days: i64| {
            std::process::Command::new(env!("CARGO_BIN_EXE_kmstoken"))
                .args(args)
                .args(["--output", "json"])
                .env("KMSTOKEN_CONF", s.config_path())
                .env("KMSTOKEN_CLOCK_OFFSET", common::clock_offset(offset_days * 86_400))
                .output()
                .expect("kmstoken runs")
        };
        let list = kmstoken(&["restore-token"], 0);
        assert!(String::from_utf8_lossy(&list.stdout).contains(&old_serial), "the archive lists the old token");
        let back = kmstoken(&["restore-token", "--serial", &old_serial], 0);
        assert!(back.status.success(), "{}", String::from_utf8_lossy(&back.stderr));
        let v: serde_json::Value = serde_json::from_slice(&back.stdout).unwrap();
        assert_eq!(v["Slot"], 1, "the restored token takes the empty slot");
        assert_eq!(v["Serial"], old_serial.as_str());
        let again = kmstoken(&["restore-token", "--serial", &old_serial], 0);
        assert_eq!(again.status.code(), Some(254), "a token is restored once");

        // Archived again, then past the 30-day window: gone for good.
        let reinit = kmstoken(&["delete-token", "--serial", &old_serial], 0);
        assert!(reinit.status.success(), "{}", String::from_utf8_lossy(&reinit.stderr));
        let later = kmstoken(&["restore-token"], 31);
        assert!(!String::from_utf8_lossy(&later.stdout).contains(&old_serial), "purged after the window");
        assert_eq!(kmstoken(&["restore-token", "--serial", &old_serial], 31).status.code(), Some(254));
    });
}
