//! ML-KEM through the module (PKCS#11 3.2): key pairs made by CKM_ML_KEM_KEY_PAIR_GEN (a
//! token pair is a KMS key of usage KEY_AGREEMENT), C_EncapsulateKey and C_DecapsulateKey
//! through the 3.2 function list, the two keys shown equal by the secret they share,
//! and the refusals of the specification (a wrong ciphertext length, a key without
//! CKA_ENCAPSULATE, the wrong half of the pair). module_library checks the interfaces.

mod common;
#[path = "kms_common.rs"]
mod kms;

use common::*;
use cryptoki::context::Function;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, MlKemParameterSetType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use kms::*;

fn pair(
    session: &Session,
    set: MlKemParameterSetType,
    token: bool,
    public_extra: &[Attribute],
) -> (ObjectHandle, ObjectHandle) {
    let public = [&[Attribute::Token(token), Attribute::ParameterSet(set.into())][..], public_extra].concat();
    session
        .generate_key_pair(&Mechanism::MlKemKeyPairGen, &public, &[Attribute::Token(token)])
        .expect("C_GenerateKeyPair (ML-KEM)")
}

fn aes_template() -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(32.into()),
        Attribute::Token(false),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ]
}

fn value(session: &Session, key: ObjectHandle) -> Vec<u8> {
    let Attribute::Value(v) = standard(session, key, cryptoki::object::AttributeType::Value) else { panic!() };
    v
}

#[test]
fn encapsulated_and_decapsulated_keys_are_one_key() {
    scenario!(|_s| {
        let (_p, _slot, session) = ready();
        for (set, ct_len, spec) in [
            (MlKemParameterSetType::ML_KEM_512, 768, "ML_KEM_512"),
            (MlKemParameterSetType::ML_KEM_768, 1088, "ML_KEM_768"),
            (MlKemParameterSetType::ML_KEM_1024, 1568, "ML_KEM_1024"),
        ] {
            let (public, private) = pair(&session, set, true, &[]);
            assert_eq!(read_text(&session, private, KEY_SPEC), spec);
            assert_eq!(read_text(&session, private, KEY_USAGE), "KEY_AGREEMENT");
            let (ct, sent) = session.encapsulate_key(&Mechanism::MlKem, public, &aes_template()).unwrap();
            assert_eq!(ct.len(), ct_len);
            let received = session.decapsulate_key(&Mechanism::MlKem, private, &aes_template(), &ct).unwrap();
            let (a, b) = (value(&session, sent), value(&session, received));
            assert_eq!(a.len(), 32);
            assert_eq!(a, b, "{spec}: both sides hold the same secret");
            // Another ciphertext of the right length: another key (implicit rejection).
            let mut other = ct.clone();
            other[5] ^= 1;
            let wrong = session.decapsulate_key(&Mechanism::MlKem, private, &aes_template(), &other).unwrap();
            assert_ne!(value(&session, wrong), a);
            expect_rv(
                session.decapsulate_key(&Mechanism::MlKem, private, &aes_template(), &ct[1..]),
                RvError::EncryptedDataLenRange,
                Function::DecapsulateKey,
            );
        }
        // A public key that may not encapsulate; the halves swapped.
        let (public, private) =
            pair(&session, MlKemParameterSetType::ML_KEM_768, false, &[Attribute::Encapsulate(false)]);
        expect_rv(
            session.encapsulate_key(&Mechanism::MlKem, public, &aes_template()),
            RvError::KeyFunctionNotPermitted,
            Function::EncapsulateKey,
        );
        expect_rv(
            session.encapsulate_key(&Mechanism::MlKem, private, &aes_template()),
            RvError::KeyFunctionNotPermitted,
            Function::EncapsulateKey,
        );
    });
}

/// RustCrypto's ml-kem (an implementation apart from aws-lc) on the other side: theirs
/// encapsulates to our public key and ours decapsulates; ours encapsulates to their public
/// key (imported by C_CreateObject) and theirs decapsulates.
#[test]
fn ml_kem_agrees_with_rustcrypto_both_ways() {
    use ml_kem::{Decapsulate, KeyExport};
    scenario!(|_s| {
        let (_p, _slot, session) = ready();
        // Theirs encapsulates, ours decapsulates.
        let (public, private) = pair(&session, MlKemParameterSetType::ML_KEM_768, false, &[]);
        let ek = value(&session, public);
        let theirs = ml_kem::EncapsulationKey::<ml_kem::MlKem768>::new(ek.as_slice().try_into().unwrap()).unwrap();
        let m: [u8; 32] = std::array::from_fn(|i| i as u8 ^ 0x5a);
        let (ct, shared) = theirs.encapsulate_deterministic(&m.into());
        let ours = session.decapsulate_key(&Mechanism::MlKem, private, &aes_template(), ct.as_slice()).unwrap();
        assert_eq!(value(&session, ours), shared.as_slice(), "ours decapsulates their ciphertext");

        // Ours encapsulates, theirs decapsulates.
        let seed: [u8; 64] = std::array::from_fn(|i| (i * 7) as u8);
        let dk = ml_kem::DecapsulationKey::<ml_kem::MlKem768>::from_seed(seed.into());
        let their_ek = dk.encapsulation_key().to_bytes().to_vec();
        let imported = session
            .create_object(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(KeyType::ML_KEM),
                Attribute::ParameterSet(MlKemParameterSetType::ML_KEM_768.into()),
                Attribute::Value(their_ek),
                Attribute::Token(false),
            ])
            .unwrap();
        let (ct, sent) = session.encapsulate_key(&Mechanism::MlKem, imported, &aes_template()).unwrap();
        let got = dk.decapsulate(ct.as_slice().try_into().unwrap());
        assert_eq!(value(&session, sent), got.as_slice(), "theirs decapsulates our ciphertext");
    });
}
