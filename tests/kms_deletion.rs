//! Deletion: C_DestroyObject on a KMS key schedules its deletion with the token's window,
//! `schedule-key-deletion` takes 7 to 30 days, the key is purged (audited as the service
//! event DeleteKey) by the first process that opens the token after the window, `--force`
//! deletes at once, and session objects are destroyed at once.

mod common;
#[path = "kms_common.rs"]
mod kms;

use common::raw::{raw, sh};
use common::*;
use cryptoki::context::{Function, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::object::{Attribute, KeyType};
use cryptoki::session::Session;
use cryptoki::slot::Slot;
use kms::*;

const SEVEN_DAYS: &str = "[kms]\ndeletion_window_days = 7\n";

/// The PKCS#11 side of a peer: the module, the scenario's token and a user session.
fn open_token() -> (Pkcs11, Slot, Session) {
    let p = initialized();
    let slot = p.get_slots_with_initialized_token().expect("C_GetSlotList")[0];
    let session = user_session(&p, slot);
    (p, slot, session)
}

/// Destroys a token key and checks what describe-key says of the deletion to come.
fn destroy_and_check_window(s: &Scenario, days: i64) {
    let (_p, _slot, session) = ready();
    let cli = Cli::new(&s.config_path(), USER_PIN);
    let key = generate_aes(&session);
    let id = key_id_of(&session, key);
    let before = now();
    session.destroy_object(key).expect("C_DestroyObject");
    let m = cli.describe(&id);
    assert_eq!(m["KeyState"], "PendingDeletion");
    assert_eq!(m["PendingDeletionWindowInDays"], days, "{m:#}");
    assert_about(m["DeletionDate"].as_str().expect("DeletionDate"), before, days * DAY);
    let r = records_of(&s.keystore(), "ScheduleKeyDeletion", &id);
    assert_eq!(r.len(), 1, "{r:#?}");
    assert_eq!(r[0]["userIdentity"]["principalId"], "user");
    assert!(r[0].get("errorCode").is_none(), "{:#}", r[0]);
}

#[test]
fn destroy_schedules_deletion_after_the_default_window() {
    scenario!(|s| destroy_and_check_window(s, 30));
}

#[test]
fn destroy_uses_the_configured_window() {
    scenario!(SEVEN_DAYS, |s| destroy_and_check_window(s, 7));
}

#[test]
fn schedule_key_deletion_takes_7_to_30_days() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let id = key_id_of(&session, generate_aes(&session));
        let schedule = |days: &str| {
            let args = ["kms", "schedule-key-deletion", "--key-id", &id, "--pending-window-in-days", days];
            cli.run(&args)
        };
        for bad in ["6", "31", "0", "365"] {
            let e = schedule(bad).expect_err(bad);
            assert_eq!(e.code, "ValidationException", "{bad}: {}", e.stderr);
            assert_eq!(e.operation, "ScheduleKeyDeletion");
            let m = cli.describe(&id);
            assert_eq!(m["KeyState"], "Enabled", "{bad}: nothing changed");
            assert!(m.get("DeletionDate").is_none(), "{m:#}");
        }
        for days in [7, 30] {
            let before = now();
            let out = schedule(&days.to_string()).expect("a valid window");
            assert_eq!(out["KeyState"], "PendingDeletion");
            assert_eq!(out["PendingWindowInDays"], days);
            assert!(out["KeyId"].as_str().unwrap().ends_with(&id), "{out:#}");
            let date = out["DeletionDate"].as_str().unwrap();
            assert_about(date, before, days * DAY);
            let m = cli.describe(&id);
            assert_eq!(m["DeletionDate"], date);
            assert_eq!(m["PendingDeletionWindowInDays"], days);
            cli.ok(&["kms", "cancel-key-deletion", "--key-id", &id]);
            cli.ok(&["kms", "enable-key", "--key-id", &id]);
        }
        // No window given: the token's default.
        let out = cli.ok(&["kms", "schedule-key-deletion", "--key-id", &id]);
        assert_eq!(out["PendingWindowInDays"], 30);
    });
}

/// Whether the open token still holds key `id`, pending deletion.
fn still_pending(session: &Session, id: &str) -> bool {
    let found = find(session, &[vendor_ulong(KEY_STATE, PENDING_DELETION), vendor(KEY_ID, id.as_bytes().to_vec())]);
    !found.is_empty()
}

#[test]
fn a_process_opening_the_token_after_the_window_purges_the_key() {
    scenario!(SEVEN_DAYS, |s| {
        match s.role() {
            MAIN => {
                let (_p, _slot, session) = ready();
                let cli = Cli::new(&s.config_path(), USER_PIN);
                let key = generate_aes(&session);
                let id = key_id_of(&session, key);
                cli.ok(&["kms", "rotate-key-on-demand", "--key-id", &id]);
                cli.ok(&["kms", "create-alias", "--alias-name", "alias/doomed", "--target-key-id", &id]);
                session.destroy_object(key).expect("C_DestroyObject");
                s.put("id", &id);

                s.put("offset", 6 * DAY);
                s.peer("still-there");
                s.put("offset", 8 * DAY);
                s.peer("purged");

                // Gone for everyone, at any time.
                assert!(!still_pending(&session, &id));
                cli.fails(&["kms", "describe-key", "--key-id", &id], "NotFoundException");
                cli.fails(&["kms", "describe-key", "--key-id", "alias/doomed"], "NotFoundException");
                let aliases = cli.ok(&["kms", "list-aliases"]);
                assert_eq!(aliases["Aliases"], serde_json::json!([]), "{aliases:#}");
                let e = service_event(&s.keystore(), "DeleteKey", &id);
                assert_eq!(e["requestParameters"]["details"]["objects"], 2, "both versions purged: {e:#}");
            }
            role => {
                // This process has not loaded the module yet: its clock starts moved.
                std::env::set_var("KMSTOKEN_CLOCK_OFFSET", kms::clock_offset(s.get("offset").parse().unwrap()));
                let id = s.get("id");
                let (_p, _slot, session) = open_token();
                let purged = records_of(&s.keystore(), "DeleteKey", &id);
                if role == "still-there" {
                    assert!(still_pending(&session, &id), "6 days into a 7-day window");
                    assert!(purged.is_empty(), "{purged:#?}");
                } else {
                    assert!(!still_pending(&session, &id), "8 days after a 7-day window");
                    assert_eq!(purged.len(), 1, "{purged:#?}");
                }
            }
        }
    });
}

#[test]
fn the_command_line_purges_after_the_window_too() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let id = key_id_of(&session, generate_aes(&session));
        let keep = key_id_of(&session, generate_aes(&session));
        cli.ok(&["kms", "schedule-key-deletion", "--key-id", &id, "--pending-window-in-days", "10"]);
        assert_eq!(cli.later(9 * DAY).key_state(&id), "PendingDeletion");
        assert!(records_of(&s.keystore(), "DeleteKey", &id).is_empty());
        cli.later(11 * DAY).fails(&["kms", "describe-key", "--key-id", &id], "NotFoundException");
        cli.fails(&["kms", "describe-key", "--key-id", &id], "NotFoundException");
        let e = service_event(&s.keystore(), "DeleteKey", &id);
        assert_eq!(e["userIdentity"]["invokedBy"], "kmstoken", "{e:#}");
        // Only that key.
        assert_eq!(cli.key_state(&keep), "Enabled");
        let listed = cli.ok(&["kms", "list-keys"]);
        let ids: Vec<&str> = listed["Keys"].as_array().unwrap().iter().map(|k| k["KeyId"].as_str().unwrap()).collect();
        assert_eq!(ids, [keep.as_str()]);
    });
}

#[test]
fn force_deletes_at_once_and_is_audited() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let key = generate_aes(&session);
        let id = key_id_of(&session, key);
        let out = cli.ok(&["kms", "schedule-key-deletion", "--key-id", &id, "--force"]);
        assert_eq!(out["KeyState"], "Deleted", "{out:#}");
        cli.fails(&["kms", "describe-key", "--key-id", &id], "NotFoundException");
        expect_rv(
            raw().attr(sh(&session), key.handle(), cryptoki_sys::CKA_LABEL),
            RvError::ObjectHandleInvalid,
            Function::GetAttributeValue,
        );
        assert!(!still_pending(&session, &id));
        let r = records_of(&s.keystore(), "DeleteKey", &id);
        assert_eq!(r.len(), 1, "{r:#?}");
        assert_eq!(r[0]["eventType"], "AwsApiCall");
        assert_eq!(r[0]["userIdentity"]["principalId"], "user");
        assert_eq!(r[0]["requestParameters"]["details"]["force"], true, "{:#}", r[0]);
    });
}

#[test]
fn session_objects_and_non_keys_are_destroyed_at_once() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let r = raw();
        let aes = aes_key(&session, &random_bytes(32));
        let mac = generic_key(&session, &random_bytes(32));
        let mut t = data_template("data", b"v");
        t.push(Attribute::Token(true));
        let data = create(&session, &t);
        for obj in [aes, mac, data] {
            session.destroy_object(obj).expect("C_DestroyObject");
            expect_rv(
                r.attr(sh(&session), obj.handle(), cryptoki_sys::CKA_CLASS),
                RvError::ObjectHandleInvalid,
                Function::GetAttributeValue,
            );
        }
        assert!(find(&session, &[vendor_ulong(KEY_STATE, PENDING_DELETION)]).is_empty());
        assert!(find(&session, &[]).is_empty());
        let scheduled: Vec<_> =
            audit_records(&s.keystore()).into_iter().filter(|r| r["eventName"] == "ScheduleKeyDeletion").collect();
        assert!(scheduled.is_empty(), "{scheduled:#?}");

        // A KMS key that may not be destroyed is not scheduled either.
        let mut fixed = secret_template(KeyType::AES, &random_bytes(32));
        fixed.extend([Attribute::Token(true), Attribute::Destroyable(false)]);
        let fixed = create(&session, &fixed);
        expect_rv(session.destroy_object(fixed), RvError::ActionProhibited, Function::DestroyObject);
        assert_eq!(state_of(&session, fixed), ENABLED);
    });
}
