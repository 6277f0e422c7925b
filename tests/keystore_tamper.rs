//! Attacks on a copy of the keystore, made as an attacker with write access to a token's
//! SQLite file (and a user PIN) would make them: each edit is refused when the module
//! next loads what was edited, logged with the object and the reason, and every other
//! object keeps working. Object rows added, removed or put back from an older copy, which
//! no single object shows, are named by the objects' MAC tree at the next login and refused
//! alone; what the tree cannot account for (the tree itself put back, or rows of other
//! tables) makes the whole token refuse its objects until the SO has looked (`kmstoken
//! verify-keystore`).

mod common;
#[path = "kms_common.rs"]
mod kms;

use common::raw::{raw, sh};
use common::*;
use cryptoki::context::Function;
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki_sys::*;
use kms::*;
use kmstoken::store::codec;
use kmstoken::store::StoredAttr;
use rusqlite::{params, Connection};

/// The scenario's one token database, opened as the attacker opens it.
fn db(s: &Scenario) -> Connection {
    let files = s.token_files();
    assert_eq!(files.len(), 1, "one token expected");
    Connection::open(&files[0]).expect("open the token database")
}

fn attrs_of(c: &Connection, id: u64) -> Vec<StoredAttr> {
    let blob: Vec<u8> = c.query_row("SELECT attrs FROM objects WHERE id = ?1", [id as i64], |r| r.get(0)).unwrap();
    codec::decode(&blob).unwrap()
}

fn put_attrs(c: &Connection, id: u64, attrs: &[StoredAttr]) {
    let n = c.execute("UPDATE objects SET attrs = ?2 WHERE id = ?1", params![id as i64, codec::encode(attrs)]).unwrap();
    assert_eq!(n, 1);
}

/// Sets an attribute in clear in the stored list, as an attacker who cannot seal would.
fn set_clear(c: &Connection, id: u64, ty: u64, value: &[u8]) {
    let mut attrs = attrs_of(c, id);
    attrs.retain(|a| a.ty != ty);
    attrs.push(StoredAttr { ty, sealed: false, value: value.to_vec() });
    put_attrs(c, id, &attrs);
}

fn ulong(v: u64) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

/// A generated AES token key, sensitive and never extractable, labelled `label`.
fn aes(session: &Session, label: &str) -> ObjectHandle {
    generate_aes_with(session, vec![Attribute::Label(label.as_bytes().to_vec())])
}

/// Asserts that `key` is refused (CKR_DEVICE_ERROR) for reading and for use.
#[track_caller]
fn refused(session: &Session, key: u64) {
    expect_rv(raw().attr(sh(session), key, CKA_VALUE), RvError::DeviceError, Function::GetAttributeValue);
    expect_rv(raw().attr(sh(session), key, CKA_LABEL), RvError::DeviceError, Function::GetAttributeValue);
    expect_rv(
        session.encrypt_init(&Mechanism::AesCbcPad([0; 16]), handle_of(key)),
        RvError::DeviceError,
        Function::EncryptInit,
    );
}

/// Runs `check` in a fresh process after the edit, logged in as the user; returns its
/// log, which must name the refused object.
fn after_edit(s: &Scenario, role: &str) -> String {
    let out = s.peer(role);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!log.contains("panicked"), "{log}");
    log
}

/// Runs `f` with the module finalized, then initializes it again.
fn reinitialize_around(p: &cryptoki::context::Pkcs11, f: impl FnOnce()) {
    p.clone().finalize().unwrap();
    f();
    p.initialize(init_args()).unwrap();
}

/// The keys of the ordinary scenario: a victim and a bystander, both generated AES keys.
fn two_keys(s: &Scenario) -> (ObjectHandle, ObjectHandle) {
    let (p, _slot, session) = ready();
    let victim = aes(&session, "victim");
    let bystander = aes(&session, "bystander");
    s.put("victim", victim.handle());
    s.put("bystander", bystander.handle());
    drop(session);
    p.finalize().unwrap();
    (victim, bystander)
}

/// In the checking process: the user's session, the victim's handle, and a working
/// bystander (found by its label, used both ways).
fn checking(s: &Scenario) -> (cryptoki::context::Pkcs11, Session, u64) {
    let p = initialized();
    let session = user_session(&p, slot(0));
    let by = find(&session, &[Attribute::Label(b"bystander".to_vec())]);
    assert_eq!(by, vec![s.get_u64("bystander")], "the bystander is found by its label");
    aes_round_trip(&session, handle_of(by[0]));
    (p, session, s.get_u64("victim"))
}

#[test]
fn flags_changed_in_the_file_are_refused() {
    scenario!(|s| {
        if s.role() == "check" {
            let (_p, session, victim) = checking(s);
            refused(&session, victim);
            // Nor is it found: a search yields only objects that pass their check.
            assert!(find(&session, &[Attribute::Label(b"victim".to_vec())]).is_empty());
            return;
        }
        let (victim, _) = two_keys(s);
        // The loader once took a clear attribute where a sealed one belongs.
        let c = db(s);
        set_clear(&c, victim.handle(), CKA_SENSITIVE, &[0]);
        set_clear(&c, victim.handle(), CKA_EXTRACTABLE, &[1]);
        let log = after_edit(s, "check");
        assert!(log.contains(&format!("object {} is refused", victim.handle())), "{log}");
    });
}

#[test]
fn clear_flags_of_public_objects_are_authenticated() {
    scenario!(|s| {
        if s.role() == "check" {
            let (_p, session, victim) = checking(s);
            refused(&session, victim);
            return;
        }
        let (p, _slot, session) = ready();
        // A public secret key: its flags are stored in clear, its value sealed.
        let victim = session
            .generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::Token(true),
                    Attribute::Private(false),
                    Attribute::ValueLen(32.into()),
                    Attribute::Encrypt(true),
                    Attribute::Decrypt(true),
                    Attribute::Label(b"public".to_vec()),
                ],
            )
            .unwrap();
        let bystander = aes(&session, "bystander");
        s.put("victim", victim.handle());
        s.put("bystander", bystander.handle());
        drop(session);
        p.finalize().unwrap();
        let c = db(s);
        let attrs = attrs_of(&c, victim.handle());
        assert!(attrs.iter().any(|a| a.ty == CKA_SENSITIVE && !a.sealed), "the flag of a public key is in clear");
        set_clear(&c, victim.handle(), CKA_SENSITIVE, &[0]);
        set_clear(&c, victim.handle(), CKA_EXTRACTABLE, &[1]);
        after_edit(s, "check");
    });
}

#[test]
fn material_grafted_onto_another_key_is_refused() {
    scenario!(|s| {
        if s.role() == "check" {
            let (_p, session, victim) = checking(s);
            refused(&session, victim);
            refused(&session, s.get_u64("other"));
            return;
        }
        let (p, _slot, session) = ready();
        let victim = aes(&session, "victim");
        let other = aes(&session, "other");
        let bystander = aes(&session, "bystander");
        for (k, h) in [("victim", victim), ("other", other), ("bystander", bystander)] {
            s.put(k, h.handle());
        }
        drop(session);
        p.finalize().unwrap();
        // Swap the uids (which the sealed values are bound to) together with the values.
        let c = db(s);
        let row = |id: u64| -> (String, Vec<StoredAttr>) {
            let uid = c.query_row("SELECT uid FROM objects WHERE id = ?1", [id as i64], |r| r.get(0)).unwrap();
            (uid, attrs_of(&c, id))
        };
        let ((uv, av), (uo, ao)) = (row(victim.handle()), row(other.handle()));
        let value = |a: &[StoredAttr]| a.iter().find(|x| x.ty == CKA_VALUE).unwrap().clone();
        let graft = |mut into: Vec<StoredAttr>, v: StoredAttr| {
            into.retain(|x| x.ty != CKA_VALUE);
            into.push(v);
            into
        };
        c.execute("UPDATE objects SET uid = 'swap' WHERE id = ?1", [victim.handle() as i64]).unwrap();
        c.execute("UPDATE objects SET uid = ?2 WHERE id = ?1", params![other.handle() as i64, uv]).unwrap();
        c.execute("UPDATE objects SET uid = ?2 WHERE id = ?1", params![victim.handle() as i64, uo]).unwrap();
        put_attrs(&c, victim.handle(), &graft(av.clone(), value(&ao)));
        put_attrs(&c, other.handle(), &graft(ao, value(&av)));
        after_edit(s, "check");
    });
}

#[test]
fn the_kms_life_edited_in_the_file_is_refused() {
    scenario!(|s| {
        if s.role() == "check" {
            let p = initialized();
            let session = user_session(&p, slot(0));
            aes_round_trip(&session, handle_of(s.get_u64("bystander")));
            // A disabled key turned Enabled, a key pending deletion turned Enabled, a
            // policy that denied Decrypt removed, an ENCRYPT_DECRYPT key turned to MACs:
            // none of them becomes usable.
            for k in ["disabled", "pending", "policy", "usage"] {
                refused(&session, s.get_u64(k));
            }
            return;
        }
        let (p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let mut keys = Vec::new();
        for k in ["disabled", "pending", "policy", "usage", "bystander"] {
            let h = aes(&session, k);
            s.put(k, h.handle());
            keys.push((k, h, key_id_of(&session, h)));
        }
        cli.ok(&["kms", "disable-key", "--key-id", &keys[0].2]);
        cli.ok(&["kms", "schedule-key-deletion", "--key-id", &keys[1].2, "--pending-window-in-days", "7"]);
        let deny = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [
                { "Sid": "admin", "Effect": "Allow", "Principal": { "AWS": "*" }, "Action": "kms:*", "Resource": "*" },
                { "Sid": "no", "Effect": "Deny", "Principal": { "AWS": "*" }, "Action": "kms:Decrypt", "Resource": "*" }
            ]
        });
        cli.ok(&["kms", "put-key-policy", "--key-id", &keys[2].2, "--policy", &deny.to_string()]);
        drop(session);
        p.finalize().unwrap();
        let c = db(s);
        let id = |k: usize| keys[k].1.handle();
        set_clear(&c, id(0), KEY_STATE, &ulong(ENABLED));
        set_clear(&c, id(1), KEY_STATE, &ulong(ENABLED));
        let mut attrs = attrs_of(&c, id(2));
        let before = attrs.len();
        attrs.retain(|a| a.ty != 0xCB4D_0011); // the key policy
        assert!(attrs.len() < before, "the policy is an attribute of the key");
        put_attrs(&c, id(2), &attrs);
        set_clear(&c, id(3), KEY_USAGE, b"GENERATE_VERIFY_MAC");
        after_edit(s, "check");
    });
}

#[test]
fn an_alias_pointed_at_another_key_is_refused() {
    scenario!(|s| {
        let (p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let a = key_id_of(&session, aes(&session, "a"));
        let b = key_id_of(&session, aes(&session, "b"));
        cli.ok(&["kms", "create-alias", "--alias-name", "alias/prod", "--target-key-id", &a]);
        cli.ok(&["kms", "tag-resource", "--key-id", &a, "--tags", "TagKey=env,TagValue=prod"]);
        drop(session);
        p.finalize().unwrap();
        let c = db(s);
        c.execute("UPDATE aliases SET key_id = ?1 WHERE name = 'alias/prod'", [&b]).unwrap();
        c.execute("UPDATE tags SET tag_value = 'dev' WHERE tag_key = 'env'", []).unwrap();
        // The alias no longer resolves (to b or anything); the edited tag is not shown.
        cli.fails(&["kms", "describe-key", "--key-id", "alias/prod"], "NotFoundException");
        let tags = cli.ok(&["kms", "list-resource-tags", "--key-id", &a]);
        assert_eq!(tags["Tags"], serde_json::json!([]), "{tags}");
        assert_eq!(cli.describe(&b)["KeyId"], b.as_str());
    });
}

/// The victim's row, as stored now.
type Row = (Vec<u8>, i64, Vec<u8>);

fn row_of(c: &Connection, id: u64) -> Row {
    c.query_row("SELECT attrs, gen, mac FROM objects WHERE id = ?1", [id as i64], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
    .unwrap()
}

fn put_row(c: &Connection, id: u64, row: &Row) {
    let n = c
        .execute(
            "UPDATE objects SET attrs = ?2, gen = ?3, mac = ?4 WHERE id = ?1",
            params![id as i64, row.0, row.1, row.2],
        )
        .unwrap();
    assert_eq!(n, 1);
}

/// The SO's review through the command line: the report, after accepting when asked.
fn verify_keystore(cli: &Cli, accept: bool) -> serde_json::Value {
    let mut c = cli.command(&["verify-keystore"]);
    c.env("KMSTOKEN_SO_PIN", SO_PIN);
    if accept {
        c.arg("--accept");
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
}

#[test]
fn object_rows_put_back_added_or_removed_are_named_and_refused_alone() {
    scenario!(|s| {
        if s.role() == "check" {
            let (_p, session, victim) = checking(s);
            refused(&session, victim);
            let revenant = s.get_u64("revenant");
            expect_rv(raw().attr(sh(&session), revenant, CKA_LABEL), RvError::DeviceError, Function::GetAttributeValue);
            assert!(find(&session, &[Attribute::Label(b"revenant".to_vec())]).is_empty());
            // The rest of the token is written as usual.
            let fresh = aes(&session, "fresh");
            aes_round_trip(&session, fresh);
            return;
        }
        let (p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let victim = aes(&session, "victim");
        let bystander = aes(&session, "bystander");
        let gone = aes(&session, "gone");
        // A data object: destroying it removes its row at once.
        let revenant = session
            .create_object(&[
                Attribute::Class(cryptoki::object::ObjectClass::DATA),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Label(b"revenant".to_vec()),
                Attribute::Value(b"old news".to_vec()),
            ])
            .unwrap();
        for (name, h) in [("victim", victim), ("bystander", bystander), ("revenant", revenant)] {
            s.put(name, h.handle());
        }
        let id = key_id_of(&session, victim);
        drop(session);
        // The module's SQLite and the test's are two libraries in one process: closing a
        // file in one drops the other's locks, so the file is touched only with the module
        // finalized.
        p.finalize().unwrap();
        let c = db(s);
        let before = row_of(&c, victim.handle());
        type Whole = (String, i64, i64, Vec<u8>, i64, Vec<u8>);
        let dead: Whole = c
            .query_row(
                "SELECT uid, class, private, attrs, gen, mac FROM objects WHERE id = ?1",
                [revenant.handle() as i64],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
            )
            .unwrap();
        drop(c);
        cli.ok(&["kms", "disable-key", "--key-id", &id]);
        let (p, _slot, session) = rejoin();
        session.destroy_object(revenant).unwrap();
        drop(session);
        p.finalize().unwrap();
        // The victim's row from before it was disabled, whole and valid, put back; a row
        // removed; a destroyed object's row put back.
        let c = db(s);
        put_row(&c, victim.handle(), &before);
        c.execute("DELETE FROM objects WHERE id = ?1", [gone.handle() as i64]).unwrap();
        c.execute(
            "INSERT INTO objects(id, uid, class, private, attrs, gen, mac) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![revenant.handle() as i64, dead.0, dead.1, dead.2, dead.3, dead.4, dead.5],
        )
        .unwrap();
        drop(c);
        let log = after_edit(s, "check");
        for said in [
            format!("object {} is refused: it is not the row the token wrote last", victim.handle()),
            format!("object {} is refused: the token never wrote it", revenant.handle()),
            format!("object {} was removed outside the module", gone.handle()),
        ] {
            assert!(log.contains(&said), "{said}: {log}");
        }
        assert!(!log.contains("do not add up"), "{log}");
        let audit = audit_records(&s.keystore());
        assert!(
            audit.iter().any(|r| r["eventName"] == "IntegrityCheck"
                && r["errorCode"] == "KMSInvalidStateException"
                && r["errorMessage"].as_str().is_some_and(|m| m.contains("put back from an older copy"))),
            "no audited integrity failure naming the object"
        );
        // The SO's review names the objects; accepting vouches for the rows as they are.
        let report = verify_keystore(&cli, false);
        let named: Vec<u64> =
            report["RefusedObjects"].as_array().unwrap().iter().map(|r| r["Handle"].as_u64().unwrap()).collect();
        assert!(named.contains(&victim.handle()) && named.contains(&revenant.handle()), "{report}");
        verify_keystore(&cli, true);
        let (p, _slot, session) = rejoin();
        assert_eq!(state_of(&session, victim), ENABLED, "the accepted row is the one put back");
        aes_round_trip(&session, victim);
        drop(session);
        p.finalize().unwrap();
    });
}

/// Waits for `path` to exist (another process of the scenario makes it).
fn wait_for(path: &std::path::Path) {
    let start = std::time::Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < std::time::Duration::from_secs(60), "{} never came", path.display());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_row_put_back_while_a_process_is_logged_in_is_refused_when_it_is_loaded() {
    scenario!(|s| {
        if s.role() == "live" {
            // Logged in before the edit: the login's check saw nothing wrong.
            let (_p, session, victim) = checking(s);
            std::fs::write(s.dir().join("logged-in"), b"").unwrap();
            wait_for(&s.dir().join("edited"));
            refused(&session, victim);
            let again = find(&session, &[Attribute::Label(b"bystander".to_vec())]);
            aes_round_trip(&session, handle_of(again[0]));
            return;
        }
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let (victim, _) = two_keys(s);
        let c = db(s);
        let before = row_of(&c, victim.handle());
        drop(c);
        let (p, _slot, session) = rejoin();
        let id = key_id_of(&session, victim);
        drop(session);
        p.finalize().unwrap();
        cli.ok(&["kms", "disable-key", "--key-id", &id]);
        let live = s
            .command_for("live")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        wait_for(&s.dir().join("logged-in"));
        let c = db(s);
        put_row(&c, victim.handle(), &before);
        drop(c);
        std::fs::write(s.dir().join("edited"), b"").unwrap();
        let out = live.wait_with_output().unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && s.dir().join("done-live").exists(), "{log}");
        let said = format!("object {} is refused: it is not the row the token wrote last", victim.handle());
        assert!(log.contains(&said), "{log}");
    });
}

#[test]
fn rows_put_back_with_the_mac_tree_make_the_token_refuse_until_the_so_has_looked() {
    scenario!(|s| {
        match s.role() {
            "check" => {
                let p = initialized();
                let session = user_session(&p, slot(0));
                // Nothing of the token is used or written; what happened is audited.
                refused(&session, s.get_u64("victim"));
                refused(&session, s.get_u64("bystander"));
                expect_rv(
                    session.generate_key(&Mechanism::AesKeyGen, &aes_template(vec![])),
                    RvError::DeviceError,
                    Function::GenerateKey,
                );
                return;
            }
            "after" => {
                let p = initialized();
                let session = user_session(&p, slot(0));
                aes_round_trip(&session, handle_of(s.get_u64("bystander")));
                assert_eq!(state_of(&session, handle_of(s.get_u64("victim"))), ENABLED);
                return;
            }
            _ => {}
        }
        let (p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let victim = aes(&session, "victim");
        let bystander = aes(&session, "bystander");
        s.put("victim", victim.handle());
        s.put("bystander", bystander.handle());
        let id = key_id_of(&session, victim);
        drop(session);
        p.finalize().unwrap();
        let c = db(s);
        let before = row_of(&c, victim.handle());
        let tree: Vec<(i64, i64, Vec<u8>)> = c
            .prepare("SELECT level, idx, node FROM mac_tree")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(!tree.is_empty(), "the token keeps a MAC tree");
        cli.ok(&["kms", "disable-key", "--key-id", &id]);
        // The row and the tree that vouched for it, both from before, put back together.
        put_row(&c, victim.handle(), &before);
        c.execute("DELETE FROM mac_tree", []).unwrap();
        for (level, idx, node) in &tree {
            c.execute("INSERT INTO mac_tree(level, idx, node) VALUES (?1, ?2, ?3)", params![level, idx, node]).unwrap();
        }
        drop(c);
        let log = after_edit(s, "check");
        assert!(log.contains("do not add up"), "{log}");
        let audit = audit_records(&s.keystore());
        assert!(
            audit.iter().any(|r| r["eventName"] == "IntegrityCheck" && r["errorCode"] == "KMSInvalidStateException"),
            "no audited integrity failure"
        );
        let report = verify_keystore(&cli, false);
        assert!(report["Problems"].to_string().contains("do not add up"), "{report}");
        verify_keystore(&cli, true);
        after_edit(s, "after");
    });
}

#[test]
fn an_edited_token_state_refuses_every_write() {
    scenario!(|s| {
        if s.role() == "check" {
            let p = initialized();
            let session = user_session(&p, slot(0));
            refused(&session, s.get_u64("bystander"));
            expect_rv(
                session.create_object(
                    &data_template("d", b"v").into_iter().chain([Attribute::Token(true)]).collect::<Vec<_>>(),
                ),
                RvError::DeviceError,
                Function::CreateObject,
            );
            return;
        }
        let (_victim, _) = two_keys(s);
        db(s).execute("UPDATE token SET label = 'renamed'", []).unwrap();
        let log = after_edit(s, "check");
        assert!(log.contains("token state fails its integrity check"), "{log}");
    });
}

#[test]
fn a_failure_counter_reset_in_the_file_unlocks_nothing() {
    scenario!("[pin]\nmax_failed_logins = 3", |s| {
        let (p, slot0, session) = ready();
        session.logout().unwrap();
        for _ in 0..3 {
            expect_rv(session.login(UserType::User, Some(&pin("wrong"))), RvError::PinIncorrect, Function::Login);
        }
        expect_rv(session.login(UserType::User, Some(&pin(USER_PIN))), RvError::PinLocked, Function::Login);
        drop(session);
        // The file is touched only with the module finalized (see rows_put_back_...).
        reinitialize_around(&p, || {
            db(s).execute("UPDATE token SET user_failed = 0", []).unwrap();
        });
        // Still locked; the flag says so.
        let session = p.open_rw_session(slot0).unwrap();
        expect_rv(session.login(UserType::User, Some(&pin(USER_PIN))), RvError::PinLocked, Function::Login);
        assert!(p.get_token_info(slot0).unwrap().user_pin_locked());
        // The SO still logs in, and can reset the user PIN.
        session.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
        session.init_pin(&pin(USER_PIN)).unwrap();
        session.logout().unwrap();
        session.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    });
}

#[test]
fn parallel_guesses_never_pass_the_limit() {
    const MAX: u64 = 10;
    scenario!("[pin]\nmax_failed_logins = 10", |s| {
        if let Some(n) = s.role().strip_prefix("guess") {
            let p = initialized();
            let session = p.open_rw_session(slot(0)).unwrap();
            let mut checked = 0;
            loop {
                match session.login(UserType::User, Some(&pin("wrong"))) {
                    Err(Error::Pkcs11(RvError::PinIncorrect, _)) => checked += 1,
                    Err(Error::Pkcs11(RvError::PinLocked, _)) => break,
                    other => panic!("{other:?}"),
                }
            }
            s.put(&format!("checked{n}"), checked);
            return;
        }
        let (p, slot0, session) = ready();
        drop(session);
        std::thread::scope(|t| {
            for i in 0..8 {
                t.spawn(move || s.peer(&format!("guess{i}")));
            }
        });
        let total: u64 = (0..8).map(|i| s.get_u64(&format!("checked{i}"))).sum();
        assert_eq!(total, MAX, "guesses checked by 8 processes at once");
        assert!(p.get_token_info(slot0).unwrap().user_pin_locked());
    });
}

#[test]
fn a_database_put_back_from_a_copy_is_reported() {
    scenario!(|s| {
        if s.role() == "check" {
            let p = initialized();
            // Reported at open (the log) and audited at login; the token still works.
            let session = user_session(&p, slot(0));
            aes_round_trip(&session, handle_of(s.get_u64("bystander")));
            return;
        }
        let (_, _) = two_keys(s);
        let file = s.token_files().remove(0);
        let copy = s.dir().join("copy.sqlite");
        {
            // A consistent copy, as `cp` of a closed database gives.
            let c = Connection::open(&file).unwrap();
            c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
        }
        std::fs::copy(&file, &copy).unwrap();
        // The SO PIN changes; then the old database comes back.
        let p = initialized();
        let session = p.open_rw_session(slot(0)).unwrap();
        session.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
        session.set_pin(&pin(SO_PIN), &pin("a-new-so-pin")).unwrap();
        drop(session);
        p.finalize().unwrap();
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
        }
        std::fs::copy(&copy, &file).unwrap();
        let log = after_edit(s, "check");
        assert!(log.contains("put back from an older copy"), "{log}");
        let out = Cli::new(&s.config_path(), USER_PIN).command(&["audit", "verify"]).output().unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && said.contains("older than its anchor file"), "{said}");
        let audit = audit_records(&s.keystore());
        assert!(audit.iter().any(|r| r["eventName"] == "IntegrityCheck"
            && r["errorMessage"].as_str().is_some_and(|m| m.contains("older than its anchor"))));
    });
}

#[test]
fn a_search_by_class_and_label_returns_only_what_matches() {
    scenario!(|s| {
        if s.role() == "check" {
            let (_p, session, victim) = checking(s);
            // An index row pointing the label "bystander" at the victim yields the
            // bystander alone: what a search returns is checked against the object.
            let found = find(
                &session,
                &[Attribute::Class(cryptoki::object::ObjectClass::SECRET_KEY), Attribute::Label(b"bystander".to_vec())],
            );
            assert_eq!(found, vec![s.get_u64("bystander")]);
            assert!(!found.contains(&victim));
            let _ = session.get_attributes(handle_of(victim), &[AttributeType::Label]).unwrap();
            return;
        }
        let (victim, bystander) = two_keys(s);
        let c = db(s);
        // Copy the bystander's label index rows onto the victim.
        c.execute(
            "INSERT INTO idx(attr, h, obj) SELECT attr, h, ?2 FROM idx WHERE obj = ?1 AND attr = ?3",
            params![bystander.handle() as i64, victim.handle() as i64, CKA_LABEL as i64],
        )
        .unwrap();
        after_edit(s, "check");
    });
}

#[test]
fn right_pins_at_once_never_lock() {
    scenario!("[pin]\nmax_failed_logins = 2", |s| {
        if s.role().starts_with("login") {
            let p = initialized();
            let session = p.open_rw_session(slot(0)).unwrap();
            for _ in 0..10 {
                session.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
                session.logout().unwrap();
            }
            return;
        }
        let (p, slot0, session) = ready();
        drop(session);
        std::thread::scope(|t| {
            for i in 0..4 {
                t.spawn(move || s.peer(&format!("login{i}")));
            }
        });
        assert!(!p.get_token_info(slot0).unwrap().user_pin_locked());
    });
}
