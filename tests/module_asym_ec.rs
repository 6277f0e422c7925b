//! EC keys through the module: key-pair generation on P-256 and P-384 (CKA_EC_PARAMS as
//! an OID and as a printable name), their attributes, ECDSA over hashes of any length and
//! over data (verified by the `p256` and `p384` crates, and by openssl for hashes those
//! crates refuse), ECDH in both directions against the `p256` oracle, import of keys the
//! oracles made, and the errors of bad keys, parameters and signatures.

mod asym;
mod common;

use asym::*;
use common::*;
use cryptoki::context::Function;
use cryptoki::error::RvError;
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use p256::elliptic_curve::sec1::ToEncodedPoint;

/// Verifies an r || s signature of `prehash` with the curve's crate.
fn oracle_verify(params: &[u8], point: &[u8], prehash: &[u8], sig: &[u8]) {
    if params == P256 {
        let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
        let sig = p256::ecdsa::Signature::from_slice(sig).unwrap();
        vk.verify_prehash(prehash, &sig).expect("p256 verifies the module's signature");
    } else {
        let vk = p384::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
        let sig = p384::ecdsa::Signature::from_slice(sig).unwrap();
        vk.verify_prehash(prehash, &sig).expect("p384 verifies the module's signature");
    }
}

/// Verifies with `openssl pkeyutl`, which takes a prehash of any length.
fn openssl_verify(params: &[u8], point: &[u8], prehash: &[u8], sig: &[u8]) -> bool {
    // SubjectPublicKeyInfo of the key, and the signature as ECDSA-Sig-Value.
    let alg = [vec![0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01], params.to_vec()].concat();
    let alg = [vec![0x30, alg.len() as u8], alg].concat();
    let bits = [vec![0x03, point.len() as u8 + 1, 0x00], point.to_vec()].concat();
    let spki = [vec![0x30, (alg.len() + bits.len()) as u8], alg, bits].concat();
    let int = |v: &[u8]| {
        let v = &v[v.iter().position(|b| *b != 0).unwrap_or(v.len() - 1)..];
        let v = if v[0] & 0x80 != 0 { [&[0u8][..], v].concat() } else { v.to_vec() };
        [vec![0x02, v.len() as u8], v].concat()
    };
    let n = sig.len() / 2;
    let body = [int(&sig[..n]), int(&sig[n..])].concat();
    let der_sig = [vec![0x30, body.len() as u8], body].concat();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pub.der"), spki).unwrap();
    std::fs::write(dir.path().join("hash"), prehash).unwrap();
    std::fs::write(dir.path().join("sig"), der_sig).unwrap();
    std::process::Command::new("openssl")
        .current_dir(dir.path())
        .args([
            "pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", "pub.der", "-in", "hash", "-sigfile", "sig",
        ])
        .output()
        .expect("openssl on PATH")
        .status
        .success()
}

fn sign(session: &Session, m: &Mechanism, key: ObjectHandle, data: &[u8]) -> Vec<u8> {
    session.sign(m, key, data).expect("C_Sign")
}

fn sign_in_parts(session: &Session, m: &Mechanism, key: ObjectHandle, data: &[u8]) -> Vec<u8> {
    session.sign_init(m, key).expect("C_SignInit");
    for part in split(data, &ODD_PARTS) {
        session.sign_update(part).expect("C_SignUpdate");
    }
    session.sign_final().expect("C_SignFinal")
}

#[test]
fn key_pairs_on_both_curves_in_both_parameter_forms() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        for (params, alt, n) in [(P256, printable("prime256v1"), 32usize), (P384, printable("secp384r1"), 48)] {
            for form in [params.to_vec(), alt] {
                let (public, private) = ec_pair(&session, &form, &[], &[]);
                // Written back as the OID whatever form was asked.
                assert_eq!(bytes(&session, public, AttributeType::EcParams), params);
                assert_eq!(bytes(&session, private, AttributeType::EcParams), params);
                // CKA_EC_POINT: DER OCTET STRING of the uncompressed point on the curve.
                let point = point_of(&session, public);
                assert_eq!(point.len(), 2 * n + 1);
                assert_eq!(point[0], 0x04);
                if params == P256 {
                    p256::PublicKey::from_sec1_bytes(&point).expect("the point is on P-256");
                } else {
                    p384::PublicKey::from_sec1_bytes(&point).expect("the point is on P-384");
                }
                let attrs = session
                    .get_attributes(
                        private,
                        &[AttributeType::KeyType, AttributeType::Local, AttributeType::KeyGenMechanism],
                    )
                    .unwrap();
                assert!(attrs.contains(&Attribute::KeyType(KeyType::EC)));
                assert!(attrs.contains(&Attribute::Local(true)));
                assert!(
                    attrs.contains(&Attribute::KeyGenMechanism(cryptoki::mechanism::MechanismType::ECC_KEY_PAIR_GEN))
                );
            }
        }
    });
}

#[test]
fn private_value_is_sensitive_through_the_c_interface() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let (_, private) = ec_pair(&session, P256, &[], &[]);
        let r = common::raw::raw();
        let (rv, res) = r.get_attributes(
            common::raw::sh(&session),
            private.handle(),
            &[common::raw::AttrQuery { ty: cryptoki_sys::CKA_VALUE, cap: Some(64) }],
        );
        expect_rv(rv, RvError::AttributeSensitive, Function::GetAttributeValue);
        assert_eq!(res[0].len, cryptoki_sys::CK_UNAVAILABLE_INFORMATION);
    });
}

#[test]
fn ecdsa_of_hashes_and_data_verified_by_the_oracles() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        for params in [P256, P384] {
            let (public, private) = ec_pair(&session, params, &[], &[]);
            let point = point_of(&session, public);
            for len in [20usize, 32, 48, 64] {
                let hash = random_bytes(len);
                let sig = sign(&session, &Mechanism::Ecdsa, private, &hash);
                assert_eq!(sig.len(), if params == P256 { 64 } else { 96 });
                if params == P384 && len < 24 {
                    // The p384 crate refuses prehashes under half the field size.
                    assert!(openssl_verify(params, &point, &hash, &sig), "openssl verifies a {len}-byte hash");
                } else {
                    oracle_verify(params, &point, &hash, &sig);
                }
                session.verify(&Mechanism::Ecdsa, public, &hash, &sig).expect("C_Verify");
            }
            for (m, h) in [
                (Mechanism::EcdsaSha256, H::Sha256),
                (Mechanism::EcdsaSha384, H::Sha384),
                (Mechanism::EcdsaSha512, H::Sha512),
            ] {
                let data = random_bytes(1000);
                let sig = sign_in_parts(&session, &m, private, &data);
                oracle_verify(params, &point, &h.digest(&data), &sig);
                let one = sign(&session, &m, private, &data);
                oracle_verify(params, &point, &h.digest(&data), &one);
                // Verification in parts and at once.
                session.verify_init(&m, public).unwrap();
                for part in split(&data, &ODD_PARTS) {
                    session.verify_update(part).unwrap();
                }
                session.verify_final(&sig).expect("C_VerifyFinal");
                session.verify(&m, public, &data, &one).expect("C_Verify");
            }
        }
    });
}

#[test]
fn signatures_made_by_the_oracle_verify_and_bad_ones_do_not() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let sk = p256::ecdsa::SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let point = sk.verifying_key().to_encoded_point(false).as_bytes().to_vec();
        // The raw point and its DER OCTET STRING are both accepted; the token keeps the DER form.
        for given in [point.clone(), octet_string(&point)] {
            let public = create(&session, &ec_public_template(P256, &given));
            assert_eq!(bytes(&session, public, AttributeType::EcPoint), octet_string(&point));
            let hash = H::Sha256.digest(b"message");
            let sig: p256::ecdsa::Signature = sk.sign_prehash(&hash).unwrap();
            let sig = sig.to_bytes().to_vec();
            session.verify(&Mechanism::Ecdsa, public, &hash, &sig).expect("the oracle's signature verifies");
            session.verify(&Mechanism::EcdsaSha256, public, b"message", &sig).expect("ECDSA_SHA256 verifies");
            // A wrong length, a changed signature, a changed message.
            expect_rv(
                session.verify(&Mechanism::Ecdsa, public, &hash, &sig[..63]),
                RvError::SignatureLenRange,
                Function::Verify,
            );
            expect_rv(
                session.verify(&Mechanism::Ecdsa, public, &hash, &[sig.clone(), vec![0]].concat()),
                RvError::SignatureLenRange,
                Function::Verify,
            );
            let mut bad = sig.clone();
            bad[10] ^= 1;
            expect_rv(
                session.verify(&Mechanism::Ecdsa, public, &hash, &bad),
                RvError::SignatureInvalid,
                Function::Verify,
            );
            expect_rv(
                session.verify(&Mechanism::EcdsaSha256, public, b"messagf", &sig),
                RvError::SignatureInvalid,
                Function::Verify,
            );
        }
    });
}

#[test]
fn ecdh_in_both_directions_equals_the_oracle() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let secret_template = || {
            vec![
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
            ]
        };
        let derive = |base: ObjectHandle, peer_point: &[u8]| {
            let m = Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), peer_point));
            let k = session.derive_key(&m, base, &secret_template()).expect("C_DeriveKey");
            bytes(&session, k, AttributeType::Value)
        };
        let (a_pub, a_priv) = ec_pair(&session, P256, &[], &[Attribute::Derive(true)]);
        let a_point = point_of(&session, a_pub);
        // The module with the oracle's public key, the oracle with the module's.
        let peer = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let peer_point = peer.public_key().to_encoded_point(false).as_bytes().to_vec();
        let ours = p256::PublicKey::from_sec1_bytes(&a_point).unwrap();
        let expect = p256::ecdh::diffie_hellman(peer.to_nonzero_scalar(), ours.as_affine());
        let expect = expect.raw_secret_bytes().to_vec();
        assert_eq!(derive(a_priv, &peer_point), expect);
        assert_eq!(derive(a_priv, &octet_string(&peer_point)), expect, "DER-wrapped peer point");
        // Two keys of the module: each with the other's point, the same secret.
        let (b_pub, b_priv) = ec_pair(&session, P256, &[], &[Attribute::Derive(true)]);
        let b_point = point_of(&session, b_pub);
        let ab = derive(a_priv, &b_point);
        assert_eq!(ab, derive(b_priv, &a_point));
        let b_oracle = p256::PublicKey::from_sec1_bytes(&b_point).unwrap();
        assert_eq!(ab.len(), 32);
        // An imported copy of the peer's key agrees with the module's key too.
        let imported = create(&session, &{
            let mut t = ec_private_template(P256, &peer.to_bytes());
            t.push(Attribute::Derive(true));
            t
        });
        assert_eq!(derive(imported, &a_point), expect);
        let peer_b = p256::ecdh::diffie_hellman(peer.to_nonzero_scalar(), b_oracle.as_affine());
        assert_eq!(derive(imported, &b_point), peer_b.raw_secret_bytes().to_vec());
        // A peer point off the curve is a bad parameter.
        let mut off = peer_point.clone();
        off[40] ^= 1;
        let m = Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), &off));
        expect_rv(
            session.derive_key(&m, a_priv, &secret_template()),
            RvError::MechanismParamInvalid,
            Function::DeriveKey,
        );
    });
}

#[test]
fn imported_keys_sign_and_the_oracles_verify() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        // P-256
        let sk = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let point = sk.public_key().to_encoded_point(false).as_bytes().to_vec();
        let mut t = ec_private_template(P256, &sk.to_bytes());
        t.extend([Attribute::Token(true), Attribute::Id(vec![0xec, 1]), Attribute::Sign(true)]);
        let private = create(&session, &t);
        let attrs = session.get_attributes(private, &[AttributeType::Local, AttributeType::AlwaysSensitive]).unwrap();
        assert!(attrs.contains(&Attribute::Local(false)), "an imported key is not local");
        assert!(attrs.contains(&Attribute::AlwaysSensitive(false)));
        let hash = random_bytes(32);
        let sig = sign(&session, &Mechanism::Ecdsa, private, &hash);
        oracle_verify(P256, &point, &hash, &sig);
        let sig = sign(&session, &Mechanism::EcdsaSha256, private, b"imported");
        oracle_verify(P256, &point, &H::Sha256.digest(b"imported"), &sig);
        // P-384, in the printable parameter form, which the token writes back as the OID.
        let sk = p384::SecretKey::random(&mut p384::elliptic_curve::rand_core::OsRng);
        let point = sk.public_key().to_encoded_point(false).as_bytes().to_vec();
        let private = create(&session, &ec_private_template(&printable("secp384r1"), &sk.to_bytes()));
        assert_eq!(bytes(&session, private, AttributeType::EcParams), P384);
        let sig = sign(&session, &Mechanism::EcdsaSha384, private, b"imported 384");
        oracle_verify(P384, &point, &H::Sha384.digest(b"imported 384"), &sig);
        let public = create(&session, &ec_public_template(P384, &point));
        session.verify(&Mechanism::EcdsaSha384, public, b"imported 384", &sig).expect("C_Verify");
    });
}

#[test]
fn bad_ec_keys_and_parameters_are_refused() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let malformed: Vec<Vec<u8>> = vec![
            vec![0x06, 0x08, 0x2a, 0x86, 0x48], // truncated OID
            vec![0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07], // brainpoolP256r1
            vec![0x05, 0x00],                   // implicitlyCA
            vec![0x30, 0x03, 0x02, 0x01, 0x01], // explicit parameters
            printable("no such curve"),
            Vec::new(),
        ];
        let point = {
            let sk = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
            sk.public_key().to_encoded_point(false).as_bytes().to_vec()
        };
        for params in &malformed {
            expect_rv(
                session.generate_key_pair(&Mechanism::EccKeyPairGen, &[Attribute::EcParams(params.clone())], &[]),
                RvError::DomainParamsInvalid,
                Function::GenerateKeyPair,
            );
            if params.is_empty() {
                continue; // an empty attribute is a missing one on create
            }
            expect_rv(
                session.create_object(&ec_public_template(params, &point)),
                RvError::DomainParamsInvalid,
                Function::CreateObject,
            );
            expect_rv(
                session.create_object(&ec_private_template(params, &[7; 32])),
                RvError::DomainParamsInvalid,
                Function::CreateObject,
            );
        }
        // A point not on the curve, of the other curve, of no known form.
        let mut off = point.clone();
        off[40] ^= 1;
        let p384_point = {
            let sk = p384::SecretKey::random(&mut p384::elliptic_curve::rand_core::OsRng);
            sk.public_key().to_encoded_point(false).as_bytes().to_vec()
        };
        for bad in [off.clone(), octet_string(&off), p384_point, point[1..].to_vec(), vec![0x04; 65]] {
            expect_rv(
                session.create_object(&ec_public_template(P256, &bad)),
                RvError::AttributeValueInvalid,
                Function::CreateObject,
            );
        }
        // Scalars out of range: zero, the order, above it, longer than the field.
        let order = hex::decode("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551").unwrap();
        for bad in [vec![0u8; 32], order, vec![0xff; 32], vec![1; 33]] {
            expect_rv(
                session.create_object(&ec_private_template(P256, &bad)),
                RvError::AttributeValueInvalid,
                Function::CreateObject,
            );
        }
        // Missing material.
        expect_rv(
            session.create_object(&ec_private_template(P256, &[])[..3]),
            RvError::TemplateIncomplete,
            Function::CreateObject,
        );
        // A public key cannot sign, a private key cannot verify.
        let (public, private) = ec_pair(&session, P256, &[], &[]);
        expect_rv(
            session.sign(&Mechanism::Ecdsa, public, &[0; 32]),
            RvError::KeyFunctionNotPermitted,
            Function::SignInit,
        );
        expect_rv(
            session.verify(&Mechanism::Ecdsa, private, &[0; 32], &[0; 64]),
            RvError::KeyFunctionNotPermitted,
            Function::VerifyInit,
        );
    });
}
