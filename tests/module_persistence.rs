//! Persistence: token objects outlive the process and C_Finalize, are shared with other
//! processes while this one runs, and are encrypted at rest.

mod common;

use common::raw::{raw, sh};
use common::*;
use cryptoki::context::Function;
use cryptoki::error::RvError;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;

const IV: [u8; 12] = [0x11; 12];

/// AES-GCM under `key` with the fixed IV, through the module.
fn seal(session: &Session, key: ObjectHandle, pt: &[u8]) -> cryptoki::error::Result<Vec<u8>> {
    let mut iv = IV;
    let params = GcmParams::new(&mut iv, b"aad", 128.into()).unwrap();
    session.encrypt(&Mechanism::AesGcm(params), key, pt)
}

fn attr(session: &Session, key: ObjectHandle, ty: CK_ATTRIBUTE_TYPE) -> Vec<u8> {
    raw().attr(sh(session), key.handle(), ty).unwrap()
}

#[test]
fn a_token_key_is_shared_with_another_process() {
    scenario!(|s| {
        match s.role() {
            "reader" => {
                let p = initialized();
                let session = user_session(&p, slot(0));
                let found = session.find_objects(&[Attribute::Label(b"shared".to_vec())]).unwrap();
                let key = handle_of(s.get_u64("handle"));
                assert_eq!(found, vec![key], "same handle in both processes");
                assert_eq!(hex::encode(attr(&session, key, CKA_UNIQUE_ID)), s.get("uid"));
                assert_eq!(attr(&session, key, CKA_ID), b"id-1");
                let value = hex::decode(s.get("value")).unwrap();
                let expected = oracle::gcm_encrypt(&value, &IV, b"aad", b"from the reader");
                assert_eq!(seal(&session, key, b"from the reader").unwrap(), expected);
                // Changes made here reach the first process.
                session.update_attributes(key, &[Attribute::Id(b"changed".to_vec())]).unwrap();
                let mut t = secret_template(KeyType::AES, &[8; 16]);
                t.extend([Attribute::Token(true), Attribute::Label(b"from reader".to_vec())]);
                s.put("reader_key", create(&session, &t).handle());
            }
            "deleter" => {
                let p = initialized();
                let session = user_session(&p, slot(0));
                session.destroy_object(handle_of(s.get_u64("handle"))).unwrap();
            }
            _ => {
                let (p, slot0, session) = ready();
                let value = random_bytes(32);
                s.put("value", hex::encode(&value));
                let mut t = secret_template(KeyType::AES, &value);
                t.extend([
                    Attribute::Token(true),
                    Attribute::Label(b"shared".to_vec()),
                    Attribute::Id(b"id-1".to_vec()),
                ]);
                let key = create(&session, &t);
                s.put("handle", key.handle());
                let uid = attr(&session, key, CKA_UNIQUE_ID);
                s.put("uid", hex::encode(&uid));

                s.peer("reader");
                // Still running, this process sees the other's changes on its next call.
                assert_eq!(attr(&session, key, CKA_ID), b"changed");
                let theirs = session.find_objects(&[Attribute::Label(b"from reader".to_vec())]).unwrap();
                assert_eq!(theirs, vec![handle_of(s.get_u64("reader_key"))]);

                // And after C_Finalize / C_Initialize.
                drop(session);
                reinitialize(&p);
                let session = user_session(&p, slot0);
                assert_eq!(attr(&session, key, CKA_UNIQUE_ID), uid);
                assert_eq!(attr(&session, key, CKA_LABEL), b"shared");
                assert_eq!(seal(&session, key, b"after").unwrap(), oracle::gcm_encrypt(&value, &IV, b"aad", b"after"));

                s.peer("deleter");
                let r = raw();
                expect_rv(
                    r.attr(sh(&session), key.handle(), CKA_LABEL),
                    RvError::ObjectHandleInvalid,
                    Function::GetAttributeValue,
                );
                expect_rv(seal(&session, key, b"x"), RvError::KeyHandleInvalid, Function::EncryptInit);
                assert!(session.find_objects(&[Attribute::Label(b"shared".to_vec())]).unwrap().is_empty());
            }
        }
    });
}

#[test]
fn keys_and_private_objects_are_encrypted_at_rest() {
    scenario!(|s| {
        let (p, _slot, session) = ready();
        let key_value = random_bytes(32);
        let tag = hex::encode(random_bytes(8));
        let private_label = format!("private-label-{tag}");
        let private_value = format!("private-value-{tag}");
        let public_label = format!("public-label-{tag}");

        let mut t = secret_template(KeyType::AES, &key_value);
        t.extend([Attribute::Token(true), Attribute::Label(private_label.as_bytes().to_vec())]);
        create(&session, &t);
        // A public key still keeps its value sealed.
        let public_value = random_bytes(32);
        let mut t = secret_template(KeyType::AES, &public_value);
        t.extend([Attribute::Token(true), Attribute::Private(false)]);
        create(&session, &t);
        let mut t = data_template(&private_label, private_value.as_bytes());
        t.extend([Attribute::Token(true), Attribute::Private(true)]);
        create(&session, &t);
        let mut t = data_template(&public_label, b"public value");
        t.push(Attribute::Token(true));
        create(&session, &t);

        let scan = |what: &[u8]| -> bool {
            std::fs::read_dir(s.keystore())
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.is_file())
                .any(|p| std::fs::read(&p).unwrap().windows(what.len()).any(|w| w == what))
        };
        // Checked while the module runs (the write-ahead log too) and after it closed.
        for _ in 0..2 {
            assert!(scan(public_label.as_bytes()), "the scan finds what is stored in clear");
            assert!(!scan(&key_value), "key value in clear");
            assert!(!scan(&public_value), "public key's value in clear");
            assert!(!scan(private_label.as_bytes()), "private label in clear");
            assert!(!scan(private_value.as_bytes()), "private value in clear");
            assert!(!scan(USER_PIN.as_bytes()) && !scan(SO_PIN.as_bytes()), "PIN in clear");
            p.clone().finalize().unwrap();
            p.initialize(init_args()).unwrap();
        }
    });
}
