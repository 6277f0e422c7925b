//! Finding objects: by the indexed attributes over token and session objects, the
//! find operation's states, what is visible before login, and session objects' lifetime.

mod common;

use common::raw::{raw, sh};
use common::*;
use cryptoki::context::Function;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki_sys::CKA_LABEL;
use std::collections::BTreeSet;

/// The raw handles found (ObjectHandle has no order).
fn found(session: &Session, template: &[Attribute]) -> BTreeSet<u64> {
    session.find_objects(template).expect("find").iter().map(ObjectHandle::handle).collect()
}

fn set(handles: &[ObjectHandle]) -> BTreeSet<u64> {
    handles.iter().map(ObjectHandle::handle).collect()
}

/// A secret key with a label and an id, on the token or not.
fn key(session: &Session, key_type: KeyType, label: &str, id: &[u8], token: bool) -> ObjectHandle {
    let mut t = secret_template(key_type, &[0x42; 16]);
    t.extend([Attribute::Label(label.into()), Attribute::Id(id.to_vec()), Attribute::Token(token)]);
    create(session, &t)
}

#[test]
fn find_by_label_id_class_and_key_type() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let tok_aes = key(&session, KeyType::AES, "alpha", b"1", true);
        let ses_aes = key(&session, KeyType::AES, "alpha", b"2", false);
        let tok_gen = key(&session, KeyType::GENERIC_SECRET, "beta", b"1", true);
        let ses_gen = key(&session, KeyType::GENERIC_SECRET, "gamma", b"3", false);
        let mut t = data_template("alpha", b"v");
        t.push(Attribute::Token(true));
        let tok_data = create(&session, &t);
        let ses_data = create(&session, &data_template("delta", b"v"));

        let all = set(&[tok_aes, ses_aes, tok_gen, ses_gen, tok_data, ses_data]);
        assert_eq!(found(&session, &[]), all);
        assert_eq!(found(&session, &[Attribute::Label(b"alpha".to_vec())]), set(&[tok_aes, ses_aes, tok_data]));
        assert_eq!(found(&session, &[Attribute::Id(b"1".to_vec())]), set(&[tok_aes, tok_gen]));
        assert_eq!(found(&session, &[Attribute::Class(ObjectClass::DATA)]), set(&[tok_data, ses_data]));
        assert_eq!(
            found(&session, &[Attribute::Class(ObjectClass::SECRET_KEY)]),
            set(&[tok_aes, ses_aes, tok_gen, ses_gen])
        );
        assert_eq!(found(&session, &[Attribute::KeyType(KeyType::GENERIC_SECRET)]), set(&[tok_gen, ses_gen]));
        assert_eq!(
            found(&session, &[Attribute::KeyType(KeyType::AES), Attribute::Label(b"alpha".to_vec())]),
            set(&[tok_aes, ses_aes])
        );
        assert_eq!(found(&session, &[Attribute::Token(true)]), set(&[tok_aes, tok_gen, tok_data]));
        assert_eq!(found(&session, &[Attribute::Token(false), Attribute::Label(b"alpha".to_vec())]), set(&[ses_aes]));
        assert_eq!(
            found(&session, &[Attribute::Label(b"alpha".to_vec()), Attribute::Id(b"2".to_vec())]),
            set(&[ses_aes])
        );
        assert!(found(&session, &[Attribute::Label(b"nothing".to_vec())]).is_empty());
        // Attributes the store does not index are matched too.
        assert_eq!(
            found(&session, &[Attribute::Label(b"alpha".to_vec()), Attribute::Private(false)]),
            set(&[tok_data])
        );

        // A label change is found under the new label only.
        session.update_attributes(tok_aes, &[Attribute::Label(b"omega".to_vec())]).unwrap();
        assert_eq!(found(&session, &[Attribute::Label(b"omega".to_vec())]), set(&[tok_aes]));
        assert_eq!(found(&session, &[Attribute::Label(b"alpha".to_vec())]), set(&[ses_aes, tok_data]));
    });
}

#[test]
fn a_search_never_matches_a_secret_value() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let value = random_bytes(16);
        create(&session, &readable_template(KeyType::AES, &value));
        assert!(found(&session, &[Attribute::Value(value.clone())]).is_empty());
        assert_eq!(found(&session, &[Attribute::Class(ObjectClass::SECRET_KEY)]).len(), 1);
    });
}

#[test]
fn the_find_operation_has_states() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let r = raw();
        let h = sh(&session);
        let handles: BTreeSet<_> =
            (0..3).map(|i| create(&session, &data_template(&format!("d{i}"), b"v")).handle()).collect();
        expect_rv(r.find(h, 10), RvError::OperationNotInitialized, Function::FindObjects);
        expect_rv(r.find_final(h), RvError::OperationNotInitialized, Function::FindObjectsFinal);

        r.find_init(h, &[Attribute::Class(ObjectClass::DATA)]).unwrap();
        expect_rv(r.find_init(h, &[]), RvError::OperationActive, Function::FindObjectsInit);
        // One at a time, then nothing more.
        let mut seen = BTreeSet::new();
        for _ in 0..3 {
            let one = r.find(h, 1).unwrap();
            assert_eq!(one.len(), 1);
            seen.insert(one[0]);
        }
        assert_eq!(seen, handles);
        assert!(r.find(h, 10).unwrap().is_empty());
        r.find_final(h).unwrap();
        expect_rv(r.find(h, 1), RvError::OperationNotInitialized, Function::FindObjects);

        // A new search may start after the final.
        r.find_init(h, &[Attribute::Label(b"d1".to_vec())]).unwrap();
        assert_eq!(r.find(h, 10).unwrap().len(), 1);
        r.find_final(h).unwrap();

        // ulMaxObjectCount = ULONG_MAX after a first call: what remains, nothing more
        // (the position plus the count once overflowed).
        r.find_init(h, &[Attribute::Class(ObjectClass::DATA)]).unwrap();
        assert_eq!(r.find(h, 1).unwrap().len(), 1);
        let (mut out, mut n) = ([0; 8], 0);
        // SAFETY: room for every handle the search still holds (two).
        let rv = unsafe { r.lib().C_FindObjects(h, out.as_mut_ptr(), cryptoki_sys::CK_ULONG::MAX, &mut n) };
        assert_eq!((rv, n), (cryptoki_sys::CKR_OK, 2));
        r.find_final(h).unwrap();
    });
}

#[test]
fn private_objects_are_invisible_before_login() {
    scenario!(|s| {
        if s.role() == "stranger" {
            // Another process that has not logged in sees the public object only.
            let p = initialized();
            let session = p.open_ro_session(slot(0)).unwrap();
            assert_eq!(found(&session, &[]), set(&[handle_of(s.get_u64("public"))]));
            let r = raw();
            let private = s.get_u64("private");
            expect_rv(
                r.attr(sh(&session), private, CKA_LABEL),
                RvError::ObjectHandleInvalid,
                Function::GetAttributeValue,
            );
            return;
        }
        let (p, slot0, session) = ready();
        let mut t = secret_template(KeyType::AES, &[1; 16]);
        t.extend([Attribute::Token(true), Attribute::Label(b"private key".to_vec())]);
        let private = create(&session, &t);
        let private_session_obj = aes_key(&session, &[2; 16]);
        let mut t = data_template("public data", b"v");
        t.push(Attribute::Token(true));
        let public = create(&session, &t);
        s.put("public", public.handle());
        s.put("private", private.handle());
        s.peer("stranger");

        session.logout().unwrap();
        let ro = p.open_ro_session(slot0).unwrap();
        for viewer in [&session, &ro] {
            assert_eq!(found(viewer, &[]), set(&[public]));
            assert!(found(viewer, &[Attribute::Label(b"private key".to_vec())]).is_empty());
        }
        let r = raw();
        for obj in [private, private_session_obj] {
            expect_rv(
                r.attr(sh(&session), obj.handle(), CKA_LABEL),
                RvError::ObjectHandleInvalid,
                Function::GetAttributeValue,
            );
            expect_rv(
                session.encrypt_init(&Mechanism::AesCbc([0; 16]), obj),
                RvError::KeyHandleInvalid,
                Function::EncryptInit,
            );
            expect_rv(session.destroy_object(obj), RvError::ObjectHandleInvalid, Function::DestroyObject);
        }

        ro.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        assert_eq!(found(&session, &[]), set(&[public, private, private_session_obj]));
        assert_eq!(label_of(&session, private), b"private key");
    });
}

#[test]
fn session_objects_vanish_with_their_session() {
    scenario!(|_| {
        let (p, s, other) = ready();
        let owner = p.open_rw_session(s).unwrap();
        let obj = create(&owner, &data_template("session object", b"v"));
        let key = aes_key(&owner, &[3; 16]);
        let mut t = data_template("token object", b"v");
        t.push(Attribute::Token(true));
        let kept = create(&owner, &t);
        // Every session of the application sees them.
        assert_eq!(found(&other, &[]), set(&[obj, key, kept]));
        assert_eq!(label_of(&other, obj), b"session object");

        owner.close().unwrap();
        assert_eq!(found(&other, &[]), set(&[kept]));
        let r = raw();
        expect_rv(
            r.attr(sh(&other), obj.handle(), CKA_LABEL),
            RvError::ObjectHandleInvalid,
            Function::GetAttributeValue,
        );
        expect_rv(
            other.encrypt_init(&Mechanism::AesCbc([0; 16]), key),
            RvError::KeyHandleInvalid,
            Function::EncryptInit,
        );
    });
}
