//! ML-DSA through the module (PKCS#11 3.2): key pairs made by CKM_ML_DSA_KEY_PAIR_GEN (a
//! token pair is a KMS key of spec ML_DSA_*), CKM_ML_DSA signatures checked by RustCrypto's
//! ml-dsa, the private key's seed and expanded form never readable, and the parameters
//! this token does not serve refused with the specification's CK_RV.

mod common;
#[path = "kms_common.rs"]
mod kms;

use common::*;
use cryptoki::context::Function;
use cryptoki::error::RvError;
use cryptoki::mechanism::dsa::{HashSignAdditionalContext, HedgeType, SignAdditionalContext};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, MlDsaParameterSetType, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;
use kms::*;

fn pair(session: &Session, set: MlDsaParameterSetType, token: bool) -> (ObjectHandle, ObjectHandle) {
    session
        .generate_key_pair(
            &Mechanism::MlDsaKeyPairGen,
            &[Attribute::Token(token), Attribute::ParameterSet(set.into()), Attribute::Verify(true)],
            &[Attribute::Token(token), Attribute::Sign(true)],
        )
        .expect("C_GenerateKeyPair (ML-DSA)")
}

#[test]
fn ml_dsa_signatures_verify_in_rustcrypto() {
    scenario!(|_s| {
        let (p, slot, session) = ready();
        type Check = fn(&[u8], &[u8], &[u8]) -> bool;
        let sets: [(MlDsaParameterSetType, &str, Check); 3] = [
            (MlDsaParameterSetType::ML_DSA_44, "ML_DSA_44", ml_dsa_verifies::<ml_dsa::MlDsa44>),
            (MlDsaParameterSetType::ML_DSA_65, "ML_DSA_65", ml_dsa_verifies::<ml_dsa::MlDsa65>),
            (MlDsaParameterSetType::ML_DSA_87, "ML_DSA_87", ml_dsa_verifies::<ml_dsa::MlDsa87>),
        ];
        for (set, spec, check) in sets {
            let (public, private) = pair(&session, set, true);
            assert_eq!(read_text(&session, private, KEY_SPEC), spec);
            assert_eq!(read_text(&session, private, KEY_USAGE), "SIGN_VERIFY");
            let Attribute::Value(pk) = standard(&session, public, AttributeType::Value) else { panic!() };
            let data = random_bytes(300);
            let hedged = Mechanism::MlDsa(SignAdditionalContext::new(HedgeType::Required, None));
            for mech in [Mechanism::MlDsa(SignAdditionalContext::new(HedgeType::Preferred, None)), hedged] {
                let sig = session.sign(&mech, private, &data).unwrap();
                assert!(check(&pk, &data, &sig), "{spec}: ml-dsa verifies");
                assert!(!check(&pk, &data[1..], &sig));
                session.verify(&mech, public, &data, &sig).unwrap();
                expect_rv(session.verify(&mech, public, &data[1..], &sig), RvError::SignatureInvalid, Function::Verify);
            }
            // The private key's secrets stay in the token.
            for ty in [CKA_SEED, CKA_VALUE] {
                expect_rv(
                    common::raw::raw().attr(common::raw::sh(&session), private.handle(), ty),
                    RvError::AttributeSensitive,
                    Function::GetAttributeValue,
                );
            }
        }
        // A session pair works as well; what is not served is refused.
        let (public, private) = pair(&session, MlDsaParameterSetType::ML_DSA_65, false);
        let Attribute::Value(pk) = standard(&session, public, AttributeType::Value) else { panic!() };
        // Deterministic signatures repeat; a context binds the signature to it. RustCrypto
        // checks both, building M' itself.
        let det = Mechanism::MlDsa(SignAdditionalContext::new(HedgeType::DeterministicRequired, Some(b"ctx")));
        let a = session.sign(&det, private, b"m").unwrap();
        assert_eq!(session.sign(&det, private, b"m").unwrap(), a);
        session.verify(&det, public, b"m", &a).unwrap();
        let pk = ml_dsa::EncodedVerifyingKey::<ml_dsa::MlDsa65>::try_from(pk.as_slice()).unwrap();
        let vk = ml_dsa::VerifyingKey::<ml_dsa::MlDsa65>::decode(&pk);
        let sig = ml_dsa::Signature::<ml_dsa::MlDsa65>::decode(&a.as_slice().try_into().unwrap()).unwrap();
        assert!(vk.verify_with_context(b"m", b"ctx", &sig));
        assert!(!vk.verify_with_context(b"m", b"", &sig));
        let plain = Mechanism::MlDsa(SignAdditionalContext::new(HedgeType::Preferred, None));
        expect_rv(session.verify(&plain, public, b"m", &a), RvError::SignatureInvalid, Function::Verify);
        // HashML-DSA: the token's pre-hash and the caller's sign alike (deterministic).
        let by_token = Mechanism::HashMlDsaSha384(SignAdditionalContext::new(HedgeType::DeterministicRequired, None));
        let data = random_bytes(1000);
        let s1 = session.sign(&by_token, private, &data).unwrap();
        let hash = {
            use sha2::Digest;
            sha2::Sha384::digest(&data).to_vec()
        };
        let given = Mechanism::HashMlDsa(HashSignAdditionalContext::new(
            HedgeType::DeterministicRequired,
            None,
            cryptoki::mechanism::MechanismType::SHA384,
        ));
        assert_eq!(session.sign(&given, private, &hash).unwrap(), s1);
        session.verify(&given, public, &hash, &s1).unwrap();
        // CKM_HASH_ML_DSA takes one part: an update ends the operation.
        session.sign_init(&given, private).unwrap();
        expect_rv(session.sign_update(&hash), RvError::OperationNotInitialized, Function::SignUpdate);
        expect_rv(session.sign_final(), RvError::OperationNotInitialized, Function::SignFinal);
        expect_rv(
            session.sign(&Mechanism::MlDsa(SignAdditionalContext::new(HedgeType::Preferred, None)), public, b"m"),
            RvError::KeyFunctionNotPermitted,
            Function::SignInit,
        );
        // PKCS#11 3.2's verification with the signature first, one-part and multi-part.
        let mech = Mechanism::MlDsa(SignAdditionalContext::new(HedgeType::Preferred, None));
        let sig = session.sign(&mech, private, b"first").unwrap();
        session.verify_signature_init(&mech, public, &sig).unwrap();
        session.verify_signature(b"first").unwrap();
        session.verify_signature_init(&mech, public, &sig).unwrap();
        session.verify_signature_update(b"fir").unwrap();
        session.verify_signature_update(b"st").unwrap();
        session.verify_signature_final().unwrap();
        session.verify_signature_init(&mech, public, &sig).unwrap();
        expect_rv(session.verify_signature(b"second"), RvError::SignatureInvalid, Function::VerifySignature);
        // The operation ended; one begun by C_VerifyInit is not of this kind.
        expect_rv(session.verify_signature(b"first"), RvError::OperationNotInitialized, Function::VerifySignature);
        session.verify_init(&mech, public).unwrap();
        expect_rv(session.verify_signature(b"first"), RvError::OperationActive, Function::VerifySignature);
        // The mechanism list names both mechanisms.
        let list: Vec<CK_MECHANISM_TYPE> = p.get_mechanism_list(slot).unwrap().into_iter().map(|m| *m).collect();
        assert!(list.contains(&CKM_ML_DSA_KEY_PAIR_GEN) && list.contains(&CKM_ML_DSA), "{list:?}");
    });
}
