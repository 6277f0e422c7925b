//! The KMS metadata of token keys: what C_GenerateKey and C_CreateObject give a token key
//! (key id, default CKA_ID and CKA_LABEL, spec, usage, origin, state, version, ARN), that
//! session keys have none of it, that it cannot be written through PKCS#11, and that
//! `kmstoken kms describe-key` reports the same.

mod common;
#[path = "kms_common.rs"]
mod kms;

use common::raw::{raw, sh};
use common::*;
use cryptoki::context::Function;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use kms::*;

#[test]
fn generated_aes_token_key_has_its_kms_metadata() {
    scenario!(|s| {
        let (p, slot, session) = ready();
        let serial = serial(&p, slot);
        assert_eq!(serial.len(), 16, "serial {serial:?}");
        let before = now();
        let key = generate_aes(&session);
        let after = now();

        let id = key_id_of(&session, key);
        assert_eq!(id_of(&session, key), uuid_bytes(&id), "CKA_ID = the key id's bytes");
        assert_eq!(label_of(&session, key), b"", "CKA_LABEL defaults to empty, as the specification has it");
        assert_eq!(read_text(&session, key, KEY_SPEC), "SYMMETRIC_DEFAULT");
        assert_eq!(read_text(&session, key, KEY_USAGE), "ENCRYPT_DECRYPT");
        assert_eq!(read_text(&session, key, ORIGIN), "AWS_KMS");
        assert_eq!(state_of(&session, key), ENABLED);
        assert_eq!(version_of(&session, key), 1);
        assert!(read_bool(&session, key, CURRENT));
        let arn = format!("arn:kmstoken:kms:local:{serial}:key/{id}");
        assert_eq!(read_text(&session, key, ARN), arn);
        let created = read_ulong(&session, key, CREATION_DATE) as i64;
        assert!((before..=after).contains(&created), "CreationDate {created}");
        assert_eq!(read_text(&session, key, DESCRIPTION), "");
        assert_eq!(read_ulong(&session, key, DELETION_DATE), 0);
        assert_eq!(read_ulong(&session, key, PENDING_WINDOW_DAYS), 0);
        assert!(!read_bool(&session, key, ROTATION_ENABLED));
        assert_eq!(read_ulong(&session, key, ROTATION_PERIOD_DAYS), 365);
        assert_eq!(read_ulong(&session, key, ON_DEMAND_ROTATIONS), 0);

        // Every key has its own id.
        let other = generate_aes(&session);
        assert_ne!(key_id_of(&session, other), id);

        // The same view through the command line.
        let m = Cli::new(&s.config_path(), USER_PIN).describe(&id);
        assert_eq!(m["KeyId"], id.as_str());
        assert_eq!(m["Arn"], arn.as_str());
        assert_eq!(m["KeyState"], "Enabled");
        assert_eq!(m["Enabled"], true);
        assert_eq!(m["KeySpec"], "SYMMETRIC_DEFAULT");
        assert_eq!(m["KeyUsage"], "ENCRYPT_DECRYPT");
        assert_eq!(m["Origin"], "AWS_KMS");
        assert_about(m["CreationDate"].as_str().expect("CreationDate"), created, 0);
        assert!(m.get("DeletionDate").is_none(), "{m:#}");
    });
}

#[test]
fn a_chosen_id_and_label_are_kept() {
    scenario!(|_| {
        let (_p, _slot, session) = ready();
        let key =
            generate_aes_with(&session, vec![Attribute::Id(b"mine".to_vec()), Attribute::Label(b"my key".to_vec())]);
        let id = key_id_of(&session, key);
        uuid_bytes(&id);
        assert_eq!(id_of(&session, key), b"mine");
        assert_eq!(label_of(&session, key), b"my key");
    });
}

#[test]
fn created_key_gets_the_same_metadata() {
    scenario!(|_| {
        let (_p, _slot, session) = ready();
        let key = known_key(&session, KeyType::AES, &random_bytes(32));
        let id = key_id_of(&session, key);
        assert_eq!(id_of(&session, key), uuid_bytes(&id));
        assert_eq!(label_of(&session, key), b"");
        assert_eq!(read_text(&session, key, KEY_SPEC), "SYMMETRIC_DEFAULT");
        assert_eq!(read_text(&session, key, ORIGIN), "AWS_KMS");
        assert_eq!(state_of(&session, key), ENABLED);
        // A 128-bit AES key is not SYMMETRIC_DEFAULT.
        let short = known_key(&session, KeyType::AES, &random_bytes(16));
        assert_eq!(read_text(&session, short, KEY_SPEC), "AES_128");
    });
}

#[test]
fn hmac_keys_are_generate_verify_mac() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        for (len, spec) in [(28, "HMAC_224"), (32, "HMAC_256"), (48, "HMAC_384"), (64, "HMAC_512")] {
            let key = generate_hmac_of(&session, len);
            assert_eq!(read_text(&session, key, KEY_SPEC), spec);
            assert_eq!(read_text(&session, key, KEY_USAGE), "GENERATE_VERIFY_MAC");
            let m = cli.describe(&key_id_of(&session, key));
            assert_eq!(m["KeySpec"], spec);
            assert_eq!(m["KeyUsage"], "GENERATE_VERIFY_MAC");
            assert!(m.get("EncryptionAlgorithms").is_none(), "{m:#}");
        }
    });
}

#[test]
fn session_keys_have_no_kms_metadata() {
    scenario!(|_| {
        let (_p, _slot, session) = ready();
        let template = vec![Attribute::Token(false), Attribute::ValueLen(32.into()), Attribute::Encrypt(true)];
        let generated = session.generate_key(&Mechanism::AesKeyGen, &template).expect("C_GenerateKey");
        let created = aes_key(&session, &random_bytes(32));
        let r = raw();
        for key in [generated, created] {
            for ty in [KEY_ID, KEY_STATE, KEY_VERSION, KEY_SPEC, KEY_USAGE, ORIGIN, ARN, CURRENT] {
                expect_rv(
                    r.attr(sh(&session), key.handle(), ty),
                    RvError::AttributeTypeInvalid,
                    Function::GetAttributeValue,
                );
            }
            assert_eq!(id_of(&session, key), b"", "no default CKA_ID for a session key");
            assert_eq!(label_of(&session, key), b"");
        }
        // Nor do objects that are not keys.
        let mut t = data_template("data", b"v");
        t.push(Attribute::Token(true));
        let data = create(&session, &t);
        expect_rv(
            r.attr(sh(&session), data.handle(), KEY_ID),
            RvError::AttributeTypeInvalid,
            Function::GetAttributeValue,
        );
    });
}

#[test]
fn kms_attributes_are_read_only() {
    scenario!(|_| {
        let (_p, _slot, session) = ready();
        let key = generate_aes(&session);
        let id = key_id_of(&session, key);
        for change in [
            vendor_ulong(KEY_STATE, DISABLED),
            vendor_ulong(KEY_VERSION, 7),
            vendor(KEY_USAGE, b"SIGN_VERIFY".to_vec()),
            vendor(KEY_ID, b"00000000-0000-0000-0000-000000000000".to_vec()),
            vendor(ARN, b"arn:kmstoken:kms:local:0:key/x".to_vec()),
            vendor_ulong(DELETION_DATE, 1),
            vendor(CURRENT, vec![0]),
        ] {
            expect_rv(
                session.update_attributes(key, &[change]),
                RvError::AttributeReadOnly,
                Function::SetAttributeValue,
            );
        }
        assert_eq!(state_of(&session, key), ENABLED);
        assert_eq!(key_id_of(&session, key), id);
        assert_eq!(read_text(&session, key, KEY_USAGE), "ENCRYPT_DECRYPT");

        // Nor may a template set them, for a token or a session key.
        for token in [true, false] {
            let mut t = vec![
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Value(random_bytes(32)),
                Attribute::Token(token),
                vendor_ulong(KEY_STATE, ENABLED),
            ];
            expect_rv(session.create_object(&t), RvError::AttributeReadOnly, Function::CreateObject);
            t.truncate(4);
            t.push(vendor(KEY_SPEC, b"HMAC_256".to_vec()));
            expect_rv(session.create_object(&t), RvError::AttributeReadOnly, Function::CreateObject);
        }
        expect_rv(
            session.generate_key(&Mechanism::AesKeyGen, &aes_template(vec![vendor(KEY_ID, id.clone().into_bytes())])),
            RvError::AttributeReadOnly,
            Function::GenerateKey,
        );
        // No second key took the id.
        assert_eq!(find(&session, &[vendor(KEY_ID, id.into_bytes())]), vec![key.handle()]);
    });
}
