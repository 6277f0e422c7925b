//! A keystore made before rows were authenticated (tests/fixtures/keystore-v3, made by the
//! previous release) opens, is sealed at its first login, and keeps every key, its
//! metadata, alias, tag, state and users; after that, its rows are held to their MACs.

mod common;
#[path = "kms_common.rs"]
mod kms;

use common::raw::{raw, sh};
use common::*;
use cryptoki::context::Function;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use cryptoki_sys::*;
use kms::*;
use std::path::Path;

const SO: &str = "so-pin-1234";
const USER: &str = "user-pin-1234";
const ALIASED: &str = "7489ea47-2350-46d9-8ba0-fb42daa837c7";
const DISABLED_KEY: &str = "a5cacccc-89b0-4050-93a7-6439fc15b802";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else if e.file_name() != "README.md" {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

#[test]
fn a_keystore_from_before_sealing_is_upgraded_at_its_first_login() {
    scenario!(|s| {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keystore-v3");
        copy_dir(&fixture, &s.keystore());
        let p = initialized();
        assert_eq!(p.get_token_info(slot(0)).unwrap().label(), "legacy");
        let session = p.open_rw_session(slot(0)).unwrap();
        session.login(UserType::User, Some(&pin(USER))).unwrap();
        let one = |label: &[u8]| {
            let found = find(&session, &[Attribute::Label(label.to_vec())]);
            assert_eq!(found.len(), 1, "{}", String::from_utf8_lossy(label));
            handle_of(found[0])
        };
        // The keys of pkcs11-tool, usable as before.
        aes_round_trip(&session, one(b"aes-key"));
        let ec = find(&session, &[Attribute::Label(b"ec-key".to_vec()), Attribute::Class(ObjectClass::PRIVATE_KEY)]);
        let ec_pub = find(&session, &[Attribute::Label(b"ec-key".to_vec()), Attribute::Class(ObjectClass::PUBLIC_KEY)]);
        let sig = session.sign(&Mechanism::Ecdsa, handle_of(ec[0]), &[9; 32]).unwrap();
        session.verify(&Mechanism::Ecdsa, handle_of(ec_pub[0]), &[9; 32], &sig).unwrap();
        // The KMS life: alias, tag, description, state.
        let cli = Cli::new(&s.config_path(), USER);
        let m = cli.describe("alias/legacy");
        assert_eq!(m["KeyId"], ALIASED);
        assert_eq!(m["Description"], "made before sealing");
        assert_eq!(cli.ok(&["kms", "list-resource-tags", "--key-id", ALIASED])["Tags"][0]["TagValue"], "old");
        assert_eq!(cli.key_state(DISABLED_KEY), "Disabled");
        let records = audit_records(&s.keystore());
        assert!(records
            .iter()
            .any(|r| r["eventName"] == "IntegrityCheck" && r["requestParameters"]["details"]["sealed"] == true));
        session.logout().unwrap();
        // The SO and the named user, whose PIN wraps predate the sealing, still log in.
        session.login(UserType::So, Some(&pin(SO))).unwrap();
        session.logout().unwrap();
        let alice = cli_as(s, "alice-pin-1234", "alice");
        assert_eq!(alice.describe(ALIASED)["KeyId"], ALIASED);
        // Sealed now: the rows are held to their MACs, the state adds up.
        let mut verify = cli.command(&["verify-keystore"]);
        verify.env("KMSTOKEN_SO_PIN", SO);
        let out = verify.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["Problems"], serde_json::json!([]), "{report}");
        assert_eq!(report["RefusedObjects"], serde_json::json!([]), "{report}");
        let aes = one(b"aes-key").handle();
        drop(session);
        p.finalize().unwrap();
        let c = rusqlite::Connection::open(&s.token_files()[0]).unwrap();
        let unsealed: i64 = c.query_row("SELECT COUNT(*) FROM objects WHERE mac IS NULL", [], |r| r.get(0)).unwrap();
        assert_eq!(unsealed, 0);
        // An edit after the upgrade is refused as on any token.
        c.execute("UPDATE objects SET private = 1 WHERE id = ?1", [aes as i64]).unwrap();
        drop(c);
        let p = initialized();
        let session = p.open_rw_session(slot(0)).unwrap();
        session.login(UserType::User, Some(&pin(USER))).unwrap();
        expect_rv(raw().attr(sh(&session), aes, CKA_LABEL), RvError::DeviceError, Function::GetAttributeValue);
    });
}

/// The `kmstoken` command as the named user `name`.
fn cli_as(s: &Scenario, pin: &str, name: &str) -> NamedCli {
    NamedCli { conf: s.config_path(), pin: pin.to_string(), name: name.to_string() }
}

struct NamedCli {
    conf: std::path::PathBuf,
    pin: String,
    name: String,
}

impl NamedCli {
    fn describe(&self, key: &str) -> serde_json::Value {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kmstoken"))
            .args([
                "--output",
                "json",
                "kms",
                "describe-key",
                "--key-id",
                key,
                "--principal",
                &format!("user/{}", self.name),
            ])
            .env("KMSTOKEN_CONF", &self.conf)
            .env("KMSTOKEN_PIN", &self.pin)
            .env_remove("KMSTOKEN_TOKEN")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["KeyMetadata"].clone()
    }
}
