//! One key usage per KMS key: `key_usage = "strict"` refuses a token key template that asks
//! for two; the default `"compat"` makes the key, records the first usage in the order
//! SIGN_VERIFY / GENERATE_VERIFY_MAC, ENCRYPT_DECRYPT, KEY_AGREEMENT, and refuses the other
//! capability when it is used, with an audit record that says why.

mod common;
#[path = "kms_common.rs"]
mod kms;

use common::*;
use cryptoki::context::Function;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use kms::*;
use std::path::Path;

const STRICT: &str = "[kms]\nkey_usage = \"strict\"\n";
const IV: [u8; 16] = [7; 16];

/// The last audit record of `event` on `key`.
fn last_record(keystore: &Path, event: &str, key_id: &str) -> serde_json::Value {
    records_of(keystore, event, key_id).pop().unwrap_or_else(|| panic!("no {event} record of {key_id}"))
}

/// An AES token key asking to encrypt and to sign.
fn encrypt_and_sign(extra: Vec<Attribute>) -> Vec<Attribute> {
    let mut t = aes_template(extra);
    t.extend([Attribute::Sign(true), Attribute::Verify(true)]);
    t
}

fn refused(session: &Session, key: ObjectHandle, encrypt: bool) {
    let mech = Mechanism::AesCbcPad(IV);
    if encrypt {
        expect_rv(session.encrypt_init(&mech, key), RvError::KeyFunctionNotPermitted, Function::EncryptInit);
    } else {
        expect_rv(session.decrypt_init(&mech, key), RvError::KeyFunctionNotPermitted, Function::DecryptInit);
    }
}

#[test]
fn strict_refuses_a_token_key_with_two_usages() {
    scenario!(STRICT, |_| {
        let (_p, _slot, session) = ready();
        expect_rv(
            session.generate_key(&Mechanism::AesKeyGen, &encrypt_and_sign(Vec::new())),
            RvError::TemplateInconsistent,
            Function::GenerateKey,
        );
        let mut created = vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Value(random_bytes(32)),
            Attribute::Token(true),
            Attribute::Sign(true),
            Attribute::Decrypt(true),
        ];
        expect_rv(session.create_object(&created), RvError::TemplateInconsistent, Function::CreateObject);
        assert!(find(&session, &[Attribute::Token(true)]).is_empty(), "no key was stored");

        // One usage is fine; so is a template that sets the others FALSE.
        let one = generate_aes(&session);
        assert_eq!(read_text(&session, one, KEY_USAGE), "ENCRYPT_DECRYPT");
        created[5] = Attribute::Decrypt(false);
        let mac = session.create_object(&created).expect("C_CreateObject");
        assert_eq!(read_text(&session, mac, KEY_USAGE), "GENERATE_VERIFY_MAC");
        // A session key has no KMS life, hence no usage rule.
        let session_key = [Attribute::ValueLen(32.into()), Attribute::Encrypt(true), Attribute::Sign(true)];
        session.generate_key(&Mechanism::AesKeyGen, &session_key).expect("session key with two capabilities");
    });
}

#[test]
fn compat_records_the_first_usage_and_refuses_the_other_at_use() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let key =
            session.generate_key(&Mechanism::AesKeyGen, &encrypt_and_sign(Vec::new())).expect("compat makes the key");
        let id = key_id_of(&session, key);
        assert_eq!(read_text(&session, key, KEY_USAGE), "GENERATE_VERIFY_MAC");
        assert!(flag_of(&session, key, cryptoki::object::AttributeType::Encrypt));

        refused(&session, key, true);
        let r = last_record(&s.keystore(), "Encrypt", &id);
        assert_eq!(r["errorCode"], "InvalidKeyUsageException", "{r:#}");
        assert_eq!(r["userIdentity"]["principalId"], "user");
        refused(&session, key, false);
        let r = last_record(&s.keystore(), "Decrypt", &id);
        assert_eq!(r["errorCode"], "InvalidKeyUsageException", "{r:#}");

        // The recorded usage works.
        let data = b"message authenticated by the kept usage";
        let mac = session.sign(&Mechanism::AesCMac, key, data).expect("CMAC with a GENERATE_VERIFY_MAC key");
        session.verify(&Mechanism::AesCMac, key, data, &mac).expect("CMAC verify");
        let r = last_record(&s.keystore(), "GenerateMac", &id);
        assert!(r.get("errorCode").is_none(), "{r:#}");
    });
}

#[test]
fn compat_refuses_what_the_default_template_allows_beyond_the_usage() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        // An AES key that asks only to encrypt: its one usage is ENCRYPT_DECRYPT, and
        // CKA_SIGN, left to its default, reads FALSE so that clients choose keys right.
        let key = generate_aes(&session);
        assert!(!flag_of(&session, key, cryptoki::object::AttributeType::Sign));
        assert_eq!(read_text(&session, key, KEY_USAGE), "ENCRYPT_DECRYPT");
        expect_rv(session.sign_init(&Mechanism::AesCMac, key), RvError::KeyFunctionNotPermitted, Function::SignInit);
        let r = last_record(&s.keystore(), "GenerateMac", &key_id_of(&session, key));
        assert_eq!(r["errorCode"], "InvalidKeyUsageException", "{r:#}");
        let ct = session.encrypt(&Mechanism::AesCbcPad(IV), key, b"fine").expect("the key's own usage");
        assert_eq!(session.decrypt(&Mechanism::AesCbcPad(IV), key, &ct).unwrap(), b"fine");
    });
}
