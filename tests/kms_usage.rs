//! Key usage under the two profiles (DESIGN section 4).
//! - `pkcs11` (the default): a key's PKCS#11 capabilities are what its template says (the
//!   token's defaults filling the rest) and every TRUE capability is permitted; its KMS
//!   KeyUsage is the first of SIGN_VERIFY, ENCRYPT_DECRYPT, KEY_AGREEMENT,
//!   GENERATE_VERIFY_MAC it asks for, and the `kms` command line holds the key to it.
//! - `kms-strict`: one usage per key, as AWS: a template asking for two is
//!   CKR_TEMPLATE_INCONSISTENT, and the capabilities of the other usages read FALSE.

mod common;
#[path = "kms_common.rs"]
mod kms;

use common::*;
use cryptoki::context::Function;
use cryptoki::error::RvError;
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use kms::*;
use std::path::Path;

const STRICT: &str = "profile = \"kms-strict\"\n";
const IV: [u8; 16] = [7; 16];
/// The DER OID of prime256v1.
const P256: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

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

/// A P-256 token key pair whose private template asks for `private` only.
fn ec_pair(session: &Session, private: &[Attribute]) -> (ObjectHandle, ObjectHandle) {
    let mut pt = vec![Attribute::Token(true), Attribute::Private(true)];
    pt.extend_from_slice(private);
    session
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::Token(true), Attribute::EcParams(P256.to_vec())],
            &pt,
        )
        .expect("C_GenerateKeyPair")
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
fn strict_turns_the_other_capabilities_off_and_refuses_them() {
    scenario!(STRICT, |s| {
        let (_p, _slot, session) = ready();
        // An AES key that asks only to encrypt: CKA_SIGN, left to its default, reads FALSE
        // so that clients choosing keys by attribute choose right, and a MAC is refused
        // with an audit record that says why.
        let key = generate_aes(&session);
        assert!(!flag_of(&session, key, AttributeType::Sign));
        assert_eq!(read_text(&session, key, KEY_USAGE), "ENCRYPT_DECRYPT");
        expect_rv(session.sign_init(&Mechanism::AesCMac, key), RvError::KeyFunctionNotPermitted, Function::SignInit);
        let r = last_record(&s.keystore(), "GenerateMac", &key_id_of(&session, key));
        assert_eq!(r["errorCode"], "InvalidKeyUsageException", "{r:#}");
        let ct = session.encrypt(&Mechanism::AesCbcPad(IV), key, b"fine").expect("the key's own usage");
        assert_eq!(session.decrypt(&Mechanism::AesCbcPad(IV), key, &ct).unwrap(), b"fine");
        // A key-agreement pair does not sign, on either half.
        let (public, private) = ec_pair(&session, &[Attribute::Derive(true)]);
        assert!(!flag_of(&session, private, AttributeType::Sign));
        assert!(!flag_of(&session, public, AttributeType::Verify));
        expect_rv(session.sign_init(&Mechanism::Ecdsa, private), RvError::KeyFunctionNotPermitted, Function::SignInit);
    });
}

#[test]
fn pkcs11_profile_serves_every_capability_and_records_the_first_usage() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let key = session.generate_key(&Mechanism::AesKeyGen, &encrypt_and_sign(Vec::new())).expect("two capabilities");
        let id = key_id_of(&session, key);
        // ENCRYPT_DECRYPT comes before GENERATE_VERIFY_MAC in the order of precedence.
        assert_eq!(read_text(&session, key, KEY_USAGE), "ENCRYPT_DECRYPT");
        assert!(flag_of(&session, key, AttributeType::Encrypt) && flag_of(&session, key, AttributeType::Sign));

        // Both capabilities work through PKCS#11, and their audit records say so.
        let ct = session.encrypt(&Mechanism::AesCbcPad(IV), key, b"both").unwrap();
        assert_eq!(session.decrypt(&Mechanism::AesCbcPad(IV), key, &ct).unwrap(), b"both");
        let data = b"message authenticated as well";
        let mac = session.sign(&Mechanism::AesCMac, key, data).expect("CMAC");
        session.verify(&Mechanism::AesCMac, key, data, &mac).expect("CMAC verify");
        for event in ["Encrypt", "Decrypt", "GenerateMac", "VerifyMac"] {
            let r = last_record(&s.keystore(), event, &id);
            assert!(r.get("errorCode").is_none(), "{r:#}");
        }

        // A capability the template turns off is refused, as the specification says.
        let no_sign = generate_aes_with(&session, vec![Attribute::Sign(false)]);
        expect_rv(
            session.sign_init(&Mechanism::AesCMac, no_sign),
            RvError::KeyFunctionNotPermitted,
            Function::SignInit,
        );

        // ECDH with a key that also signs (CKA_SIGN defaults to TRUE): its usage is the
        // KEY_AGREEMENT it asked for, and both work.
        let (public, private) = ec_pair(&session, &[Attribute::Derive(true)]);
        assert_eq!(read_text(&session, private, KEY_USAGE), "KEY_AGREEMENT");
        let sig = session.sign(&Mechanism::Ecdsa, private, &[1; 32]).expect("ECDSA with the default CKA_SIGN");
        session.verify(&Mechanism::Ecdsa, public, &[1; 32], &sig).unwrap();
        let (peer, _) = ec_pair(&session, &[Attribute::Derive(true)]);
        let point = standard(&session, peer, AttributeType::EcPoint);
        let Attribute::EcPoint(point) = point else { panic!("{point:?}") };
        let params = Ecdh1DeriveParams::new(EcKdf::null(), &point);
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::ValueLen(32.into()),
        ];
        session.derive_key(&Mechanism::Ecdh1Derive(params), private, &template).expect("ECDH");
    });
}

#[test]
fn the_kms_command_line_holds_a_key_to_its_usage() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        // A key-agreement pair signs through PKCS#11 (above), not through `kms sign`.
        let (_, private) = ec_pair(&session, &[Attribute::Derive(true)]);
        let sign = |key: ObjectHandle| {
            let id = key_id_of(&session, key);
            let args = ["--message", "aGVsbG8=", "--message-type", "RAW", "--signing-algorithm", "ECDSA_SHA_256"];
            cli.run(&[&["kms", "sign", "--key-id", &id][..], &args[..]].concat())
        };
        let e = sign(private).expect_err("a KEY_AGREEMENT key");
        assert_eq!((e.code.as_str(), e.operation.as_str()), ("InvalidKeyUsageException", "Sign"), "{}", e.stderr);
        // A signing pair does sign there.
        let (_, signer) = ec_pair(&session, &[Attribute::Sign(true)]);
        let out = sign(signer).expect("a SIGN_VERIFY key");
        assert!(out["Signature"].is_string(), "{out:#}");
        // An AES key that asks to sign (usage GENERATE_VERIFY_MAC) encrypts through
        // PKCS#11, where CKA_ENCRYPT defaults to TRUE, but not as a KMS key.
        let t =
            [Attribute::ValueLen(32.into()), Attribute::Token(true), Attribute::Private(true), Attribute::Sign(true)];
        let mac = session.generate_key(&Mechanism::AesKeyGen, &t).unwrap();
        assert_eq!(read_text(&session, mac, KEY_USAGE), "GENERATE_VERIFY_MAC");
        session.encrypt(&Mechanism::AesCbcPad(IV), mac, b"pkcs11").expect("CKA_ENCRYPT is TRUE");
        cli.fails(
            &["kms", "encrypt", "--key-id", &key_id_of(&session, mac), "--plaintext", "aGVsbG8="],
            "InvalidKeyUsageException",
        );
    });
}
