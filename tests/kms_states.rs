//! The key state table (kms-semantics §4.2) for cryptographic use through the module and
//! for management through `kmstoken kms`: Enabled, Disabled, PendingDeletion and
//! PendingImport (a key created with Origin EXTERNAL, before its material is imported).

mod common;
#[path = "kms_common.rs"]
mod kms;

use common::raw::{raw, sh};
use common::*;
use cryptoki::context::Function;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use kms::*;

/// An AES and an HMAC token key, with their key ids.
struct Keys {
    aes: ObjectHandle,
    aes_id: String,
    mac: ObjectHandle,
    mac_id: String,
}

fn keys(session: &Session) -> Keys {
    let aes = generate_aes(session);
    let mac = generate_hmac(session);
    Keys { aes, aes_id: key_id_of(session, aes), mac, mac_id: key_id_of(session, mac) }
}

impl Keys {
    /// The key and key id that serve `u`.
    fn for_use(&self, u: Use) -> (ObjectHandle, &str) {
        if u.for_aes() {
            (self.aes, &self.aes_id)
        } else {
            (self.mac, &self.mac_id)
        }
    }
}

/// Every use of the keys is refused with CKR_KEY_FUNCTION_NOT_PERMITTED, and the audit
/// record of each says `code`.
fn every_use_refused(s: &Scenario, session: &Session, keys: &Keys, code: &str) {
    for u in Use::ALL {
        let (key, id) = keys.for_use(u);
        let before = records_of(&s.keystore(), u.event(), id).len();
        expect_rv(u.start(session, key), RvError::KeyFunctionNotPermitted, u.function());
        let after = records_of(&s.keystore(), u.event(), id);
        assert_eq!(after.len(), before + 1, "one {} record", u.event());
        let r = after.last().unwrap();
        assert_eq!(r["errorCode"], code, "{r:#}");
        assert!(r["errorMessage"].as_str().unwrap_or("").contains(id), "the message names the key's ARN: {r:#}");
    }
}

fn every_use_works(session: &Session, keys: &Keys) {
    aes_round_trip(session, keys.aes);
    mac_round_trip(session, keys.mac);
}

/// The management commands that change a key, with their arguments.
fn changes(id: &str) -> Vec<Vec<String>> {
    let cmd = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        cmd(&["kms", "disable-key", "--key-id", id]),
        cmd(&["kms", "enable-key", "--key-id", id]),
        cmd(&["kms", "create-alias", "--alias-name", "alias/state-test", "--target-key-id", id]),
        cmd(&["kms", "tag-resource", "--key-id", id, "--tags", "TagKey=k,TagValue=v"]),
        cmd(&["kms", "untag-resource", "--key-id", id, "--tag-keys", "k"]),
        cmd(&["kms", "update-key-description", "--key-id", id, "--description", "d"]),
        cmd(&["kms", "schedule-key-deletion", "--key-id", id]),
        cmd(&["kms", "enable-key-rotation", "--key-id", id]),
        cmd(&["kms", "disable-key-rotation", "--key-id", id]),
        cmd(&["kms", "rotate-key-on-demand", "--key-id", id]),
    ]
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn enabled_keys_serve_every_use_and_every_management_operation() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let keys = keys(&session);
        every_use_works(&session, &keys);
        for u in Use::ALL {
            let (_, id) = keys.for_use(u);
            let r = records_of(&s.keystore(), u.event(), id);
            assert!(r.last().is_some_and(|r| r.get("errorCode").is_none()), "{r:#?}");
        }
        let id = keys.aes_id.as_str();
        cli.ok(&["kms", "enable-key", "--key-id", id]);
        cli.fails(&["kms", "cancel-key-deletion", "--key-id", id], "KMSInvalidStateException");
        // Each change from Enabled works (schedule last: it leaves the state).
        for c in changes(id) {
            if c[1] == "enable-key" || c[1] == "schedule-key-deletion" {
                continue;
            }
            cli.ok(&args(&c));
            cli.ok(&["kms", "enable-key", "--key-id", id]);
        }
        cli.ok(&["kms", "schedule-key-deletion", "--key-id", id]);
        assert_eq!(cli.key_state(id), "PendingDeletion");
    });
}

#[test]
fn disabled_keys_refuse_use_until_enabled_again() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let keys = keys(&session);
        for id in [&keys.aes_id, &keys.mac_id] {
            assert_eq!(cli.ok(&["kms", "disable-key", "--key-id", id]), serde_json::Value::Null);
        }
        // The metadata is still readable, through PKCS#11 and the command line.
        assert_eq!(state_of(&session, keys.aes), DISABLED);
        assert_eq!(state_of(&session, keys.mac), DISABLED);
        let m = cli.describe(&keys.aes_id);
        assert_eq!(m["KeyState"], "Disabled");
        assert_eq!(m["Enabled"], false);

        every_use_refused(s, &session, &keys, "DisabledException");

        // Management of a disabled key.
        let id = keys.aes_id.as_str();
        cli.ok(&["kms", "disable-key", "--key-id", id]);
        for c in changes(id) {
            match c[1].as_str() {
                "enable-key" | "schedule-key-deletion" => continue,
                "enable-key-rotation" | "disable-key-rotation" | "rotate-key-on-demand" => {
                    cli.fails(&args(&c), "DisabledException");
                }
                _ => {
                    cli.ok(&args(&c));
                }
            }
            assert_eq!(cli.key_state(id), "Disabled", "after {c:?}");
        }
        cli.fails(&["kms", "cancel-key-deletion", "--key-id", id], "KMSInvalidStateException");
        assert_eq!(version_of(&session, keys.aes), 1, "a disabled key does not rotate");

        for id in [&keys.aes_id, &keys.mac_id] {
            cli.ok(&["kms", "enable-key", "--key-id", id]);
        }
        assert_eq!(state_of(&session, keys.aes), ENABLED);
        every_use_works(&session, &keys);

        // A disabled key may still be scheduled for deletion.
        cli.ok(&["kms", "disable-key", "--key-id", id]);
        cli.ok(&["kms", "schedule-key-deletion", "--key-id", id]);
        assert_eq!(cli.key_state(id), "PendingDeletion");
    });
}

#[test]
fn pending_deletion_keys_lose_their_handle() {
    scenario!(|_| {
        let (_p, _slot, session) = ready();
        let keys = keys(&session);
        session.destroy_object(keys.aes).expect("C_DestroyObject");
        let r = raw();
        let h = sh(&session);

        for u in [Use::Encrypt, Use::Decrypt] {
            expect_rv(u.start(&session, keys.aes), RvError::KeyHandleInvalid, u.function());
        }
        expect_rv(
            r.attr(h, keys.aes.handle(), cryptoki_sys::CKA_LABEL),
            RvError::ObjectHandleInvalid,
            Function::GetAttributeValue,
        );
        expect_rv(r.attr(h, keys.aes.handle(), KEY_STATE), RvError::ObjectHandleInvalid, Function::GetAttributeValue);
        expect_rv(
            session.update_attributes(keys.aes, &[Attribute::Label(b"x".to_vec())]),
            RvError::ObjectHandleInvalid,
            Function::SetAttributeValue,
        );
        expect_rv(session.destroy_object(keys.aes), RvError::ObjectHandleInvalid, Function::DestroyObject);
        // The HMAC key is not touched.
        mac_round_trip(&session, keys.mac);
    });
}

#[test]
fn pending_deletion_keys_are_found_only_by_their_state() {
    scenario!(|_| {
        let (_p, _slot, session) = ready();
        let keys = keys(&session);
        let gone = keys.aes.handle();
        session.destroy_object(keys.aes).expect("C_DestroyObject");

        let id = vendor(KEY_ID, keys.aes_id.clone().into_bytes());
        let pending = vendor_ulong(KEY_STATE, PENDING_DELETION);
        assert_eq!(find(&session, &[]), vec![keys.mac.handle()]);
        assert_eq!(find(&session, &[Attribute::Class(ObjectClass::SECRET_KEY)]), vec![keys.mac.handle()]);
        assert_eq!(find(&session, std::slice::from_ref(&id)), Vec::<u64>::new());
        assert_eq!(find(&session, &[Attribute::Id(uuid_bytes(&keys.aes_id))]), Vec::<u64>::new());
        assert_eq!(find(&session, std::slice::from_ref(&pending)), vec![gone]);
        assert_eq!(find(&session, &[pending.clone(), id]), vec![gone]);
        assert_eq!(find(&session, &[pending, Attribute::Class(ObjectClass::SECRET_KEY)]), vec![gone]);
        assert_eq!(find(&session, &[vendor_ulong(KEY_STATE, ENABLED)]), vec![keys.mac.handle()]);
    });
}

#[test]
fn pending_deletion_refuses_management_and_cancel_leaves_it_disabled() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let keys = keys(&session);
        let id = keys.aes_id.as_str();
        cli.ok(&["kms", "tag-resource", "--key-id", id, "--tags", "TagKey=t,TagValue=1"]);
        cli.ok(&["kms", "enable-key-rotation", "--key-id", id]);
        session.destroy_object(keys.aes).expect("C_DestroyObject");

        let m = cli.describe(id);
        assert_eq!(m["KeyState"], "PendingDeletion");
        assert_eq!(m["Enabled"], false);
        for c in changes(id) {
            cli.fails(&args(&c), "KMSInvalidStateException");
            assert_eq!(cli.key_state(id), "PendingDeletion", "after {c:?}");
        }
        // Reading is still allowed.
        let tags = cli.ok(&["kms", "list-resource-tags", "--key-id", id]);
        assert_eq!(tags["Tags"][0]["TagKey"], "t");
        let status = cli.ok(&["kms", "get-key-rotation-status", "--key-id", id]);
        assert_eq!(status["KeyRotationEnabled"], false, "{status:#}");

        let out = cli.ok(&["kms", "cancel-key-deletion", "--key-id", id]);
        assert!(out["KeyId"].as_str().is_some_and(|a| a.ends_with(id)), "{out:#}");
        let m = cli.describe(id);
        assert_eq!(m["KeyState"], "Disabled", "cancel restores Disabled, not Enabled");
        assert!(m.get("DeletionDate").is_none(), "{m:#}");
        let status = cli.ok(&["kms", "get-key-rotation-status", "--key-id", id]);
        assert_eq!(status["KeyRotationEnabled"], true, "{status:#}");

        // The handle is back, the key disabled.
        assert_eq!(state_of(&session, keys.aes), DISABLED);
        assert_eq!(read_ulong(&session, keys.aes, DELETION_DATE), 0);
        expect_rv(
            session.encrypt_init(&Mechanism::AesCbcPad([0; 16]), keys.aes),
            RvError::KeyFunctionNotPermitted,
            Function::EncryptInit,
        );
        assert_eq!(records_of(&s.keystore(), "Encrypt", id).last().unwrap()["errorCode"], "DisabledException");
        cli.fails(&["kms", "cancel-key-deletion", "--key-id", id], "KMSInvalidStateException");
        cli.ok(&["kms", "enable-key", "--key-id", id]);
        aes_round_trip(&session, keys.aes);
    });
}

#[test]
fn cancel_needs_a_pending_deletion() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let id = key_id_of(&session, generate_aes(&session));
        let e = cli.fails(&["kms", "cancel-key-deletion", "--key-id", &id], "KMSInvalidStateException");
        assert!(e.stderr.contains("is not pending deletion"), "{}", e.stderr);
        assert_eq!(cli.key_state(&id), "Enabled");
        cli.ok(&["kms", "disable-key", "--key-id", &id]);
        cli.fails(&["kms", "cancel-key-deletion", "--key-id", &id], "KMSInvalidStateException");
        assert_eq!(cli.key_state(&id), "Disabled");
    });
}

#[test]
fn pending_import_keys_refuse_use_and_rotation() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let m = cli.ok(&["kms", "create-key", "--origin", "EXTERNAL"])["KeyMetadata"].clone();
        assert_eq!(m["KeyState"], "PendingImport", "{m:#}");
        assert_eq!(m["Origin"], "EXTERNAL");
        let id = m["KeyId"].as_str().unwrap().to_string();
        let found = find(&session, &[vendor(kmstoken::vendor::CKA_KMSTOKEN_KEY_ID, id.clone().into_bytes())]);
        assert_eq!(found.len(), 1, "the key is visible through PKCS#11");
        let key = handle_of(found[0]);
        assert_eq!(state_of(&session, key), 4);

        // No cryptographic use: KMSInvalidStateException in the audit trail.
        let before = records_of(&s.keystore(), "Encrypt", &id).len();
        expect_rv(Use::Encrypt.start(&session, key), RvError::KeyFunctionNotPermitted, Function::EncryptInit);
        let after = records_of(&s.keystore(), "Encrypt", &id);
        assert_eq!(after.len(), before + 1);
        assert_eq!(after.last().unwrap()["errorCode"], "KMSInvalidStateException");
        assert!(after.last().unwrap()["errorMessage"].as_str().unwrap().contains("pending import"));

        // Management (kms-semantics 4.2): enable/disable refused, rotation unsupported for
        // an EXTERNAL key; aliases, tags, description and deletion allowed.
        cli.fails(&["kms", "enable-key", "--key-id", &id], "KMSInvalidStateException");
        cli.fails(&["kms", "disable-key", "--key-id", &id], "KMSInvalidStateException");
        cli.fails(&["kms", "enable-key-rotation", "--key-id", &id], "UnsupportedOperationException");
        cli.fails(&["kms", "rotate-key-on-demand", "--key-id", &id], "UnsupportedOperationException");
        cli.fails(&["kms", "cancel-key-deletion", "--key-id", &id], "KMSInvalidStateException");
        cli.ok(&["kms", "create-alias", "--alias-name", "alias/ext", "--target-key-id", &id]);
        cli.ok(&["kms", "tag-resource", "--key-id", &id, "--tags", "TagKey=a,TagValue=b"]);
        cli.ok(&["kms", "update-key-description", "--key-id", &id, "--description", "waits"]);
        assert_eq!(cli.key_state(&id), "PendingImport");
        cli.ok(&["kms", "schedule-key-deletion", "--key-id", &id, "--pending-window-in-days", "7"]);
        assert_eq!(cli.key_state(&id), "PendingDeletion");
        cli.fails(&["kms", "create-key", "--origin", "AWS_CLOUDHSM"], "UnsupportedOperationException");
    });
}
