//! EdDSA on Ed25519 through the module: key pairs made by CKM_EC_EDWARDS_KEY_PAIR_GEN
//! (token keys are KMS keys of spec ECC_NIST_EDWARDS25519), CKM_EDDSA signatures in the
//! three variants, checked by openssl (pure Ed25519) and ed25519-dalek (Ed25519ph), and
//! Ed448 refused.

mod common;
#[path = "kms_common.rs"]
mod kms;

use common::*;
use cryptoki::context::Function;
use cryptoki::error::RvError;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::Session;
use kms::*;

/// id-Ed25519 and the printable name PKCS#11 3.0 gives.
const ED25519_OID: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];
const ED25519_NAME: [u8; 14] = [0x13, 0x0c, b'e', b'd', b'w', b'a', b'r', b'd', b's', b'2', b'5', b'5', b'1', b'9'];

fn pair(session: &Session, params: &[u8], token: bool) -> (ObjectHandle, ObjectHandle) {
    session
        .generate_key_pair(
            &Mechanism::EccEdwardsKeyPairGen,
            &[Attribute::Token(token), Attribute::EcParams(params.to_vec())],
            &[Attribute::Token(token), Attribute::Sign(true)],
        )
        .expect("C_GenerateKeyPair (Ed25519)")
}

/// The 32-byte public key inside CKA_EC_POINT (a DER OCTET STRING).
fn public_key(session: &Session, public: ObjectHandle) -> Vec<u8> {
    let Attribute::EcPoint(point) = standard(session, public, AttributeType::EcPoint) else { panic!() };
    assert_eq!(&point[..2], &[0x04, 0x20], "an OCTET STRING of 32 bytes");
    point[2..].to_vec()
}

#[test]
fn ed25519_signatures_verify_in_openssl_and_ed25519_dalek() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        for params in [&ED25519_OID[..], &ED25519_NAME[..]] {
            let (public, private) = pair(&session, params, true);
            assert_eq!(read_text(&session, private, KEY_SPEC), "ECC_NIST_EDWARDS25519");
            assert_eq!(read_text(&session, private, KEY_USAGE), "SIGN_VERIFY");
            let pk = public_key(&session, public);
            let data = random_bytes(100);
            let pure = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
            let sig = session.sign(&pure, private, &data).unwrap();
            session.verify(&pure, public, &data, &sig).unwrap();
            // openssl (3.0 takes pure Ed25519) checks it with the public key's SPKI.
            let spki = [&[0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00][..], &pk].concat();
            let dir = s.dir();
            std::fs::write(dir.join("pub.der"), spki).unwrap();
            std::fs::write(dir.join("data"), &data).unwrap();
            std::fs::write(dir.join("sig"), &sig).unwrap();
            let out = std::process::Command::new("openssl")
                .current_dir(dir)
                .args(["pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", "pub.der", "-rawin"])
                .args(["-in", "data", "-sigfile", "sig"])
                .output()
                .expect("openssl on PATH");
            assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
            // Ed25519ph, verified by ed25519-dalek.
            let ph = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Ed25519ph(b"ctx")));
            let sig = session.sign(&ph, private, &data).unwrap();
            let theirs = ed25519_dalek::VerifyingKey::from_bytes(&pk.try_into().unwrap()).unwrap();
            let prehashed = <sha2::Sha512 as sha2::Digest>::new_with_prefix(&data);
            theirs
                .verify_prehashed(prehashed, Some(b"ctx"), &ed25519_dalek::Signature::from_slice(&sig).unwrap())
                .unwrap();
            // Ed25519ctx: a signature of another variant does not verify.
            let ctx = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Ed25519ctx(b"ctx")));
            let sig = session.sign(&ctx, private, &data).unwrap();
            session.verify(&ctx, public, &data, &sig).unwrap();
            expect_rv(session.verify(&pure, public, &data, &sig), RvError::SignatureInvalid, Function::Verify);
        }
    });
}

#[test]
fn ed448_and_other_curves_are_refused() {
    scenario!(|_| {
        let (_p, _slot, session) = ready();
        let ed448 = [0x06, 0x03, 0x2b, 0x65, 0x71];
        let p256 = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        for params in [&ed448[..], &p256[..]] {
            expect_rv(
                session.generate_key_pair(
                    &Mechanism::EccEdwardsKeyPairGen,
                    &[Attribute::EcParams(params.to_vec())],
                    &[Attribute::Sign(true)],
                ),
                RvError::DomainParamsInvalid,
                Function::GenerateKeyPair,
            );
        }
        // An Ed25519 key is no key for ECDSA, nor an EC key for EdDSA.
        let (_, private) = pair(&session, &ED25519_OID, false);
        expect_rv(session.sign_init(&Mechanism::Ecdsa, private), RvError::KeyTypeInconsistent, Function::SignInit);
    });
}
