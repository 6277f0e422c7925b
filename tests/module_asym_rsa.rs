//! RSA keys through the module: key-pair generation (2048, 3072, 4096), their attributes,
//! PKCS#1 v1.5 and PSS signatures verified by the `rsa` crate, OAEP decryption of the
//! crate's ciphertexts, import of keys the crate made, and the errors of bad sizes,
//! exponents, components, signatures and parameters.

mod asym;
mod common;

use asym::*;
use common::*;
use cryptoki::context::Function;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::Session;
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Encrypt, Pkcs1v15Sign, Pss};

/// The DigestInfo prefix of SHA-256 (RFC 8017, 9.2 note 1).
const SHA256_DIGEST_INFO: &[u8] =
    &[0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20];

/// The DigestInfo prefix of SHA-1 (the `sha1` crate here carries no OID for the oracle).
const SHA1_DIGEST_INFO: &[u8] =
    &[0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14];

/// Checks a PKCS#1 v1.5 signature of the digest `hash` with the oracle.
fn oracle_pkcs1_verify(oracle: &rsa::RsaPublicKey, h: H, hash: &[u8], sig: &[u8]) -> rsa::Result<()> {
    match h {
        H::Sha1 => oracle.verify(Pkcs1v15Sign::new_unprefixed(), &[SHA1_DIGEST_INFO, hash].concat(), sig),
        H::Sha256 => oracle.verify(Pkcs1v15Sign::new::<sha2::Sha256>(), hash, sig),
        H::Sha384 => oracle.verify(Pkcs1v15Sign::new::<sha2::Sha384>(), hash, sig),
        H::Sha512 => oracle.verify(Pkcs1v15Sign::new::<sha2::Sha512>(), hash, sig),
    }
}

fn pss_oracle(h: H, salt: usize) -> Pss {
    match h {
        H::Sha1 => panic!("no SHA-1 PSS here"),
        H::Sha256 => Pss::new_with_salt::<sha2::Sha256>(salt),
        H::Sha384 => Pss::new_with_salt::<sha2::Sha384>(salt),
        H::Sha512 => Pss::new_with_salt::<sha2::Sha512>(salt),
    }
}

fn check_pair(session: &Session, public: ObjectHandle, private: ObjectHandle, bits: u64) {
    let attrs = session.get_attributes(public, &[AttributeType::ModulusBits]).unwrap();
    assert_eq!(attrs, vec![Attribute::ModulusBits(bits.into())]);
    let n = bytes(session, public, AttributeType::Modulus);
    assert_eq!(n.len() as u64 * 8, bits);
    assert!(n[0] & 0x80 != 0, "the modulus has its full size");
    assert_eq!(bytes(session, public, AttributeType::PublicExponent), [1, 0, 1]);
    // The private key shows its public parts, never its private ones.
    assert_eq!(bytes(session, private, AttributeType::Modulus), n);
    let r = common::raw::raw();
    let h = common::raw::sh(session);
    use cryptoki_sys::*;
    for ty in [CKA_PRIVATE_EXPONENT, CKA_PRIME_1, CKA_PRIME_2, CKA_EXPONENT_1, CKA_EXPONENT_2, CKA_COEFFICIENT] {
        let (rv, res) = r.get_attributes(h, private.handle(), &[common::raw::AttrQuery { ty, cap: Some(1024) }]);
        expect_rv(rv, RvError::AttributeSensitive, Function::GetAttributeValue);
        assert_eq!(res[0].len, CK_UNAVAILABLE_INFORMATION);
    }
    // And it signs what the public key's oracle verifies.
    let hash = H::Sha256.digest(b"pair");
    let sig = session.sign(&Mechanism::Sha256RsaPkcs, private, b"pair").unwrap();
    oracle_pkcs1_verify(&rsa_public(session, public), H::Sha256, &hash, &sig).expect("rsa verifies");
}

#[test]
fn key_pairs_of_2048_and_3072_bits() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        for bits in [2048, 3072] {
            let (public, private) = rsa_pair(&session, bits, &[], &[]);
            check_pair(&session, public, private, bits);
        }
        // Without CKA_PUBLIC_EXPONENT: 65537.
        let (public, _) = session
            .generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &[Attribute::ModulusBits(2048.into())], &[])
            .unwrap();
        assert_eq!(bytes(&session, public, AttributeType::PublicExponent), [1, 0, 1]);
    });
}

#[test]
fn key_pair_of_4096_bits() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let (public, private) = rsa_pair(&session, 4096, &[], &[]);
        check_pair(&session, public, private, 4096);
    });
}

#[test]
fn key_pair_generation_errors() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        for bits in [512u64, 1000, 1032, 2047, 2049, 8192] {
            expect_rv(
                session.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &[Attribute::ModulusBits(bits.into())], &[]),
                RvError::KeySizeRange,
                Function::GenerateKeyPair,
            );
        }
        for e in [vec![3u8], vec![1, 0, 0, 1]] {
            expect_rv(
                session.generate_key_pair(
                    &Mechanism::RsaPkcsKeyPairGen,
                    &[Attribute::ModulusBits(2048.into()), Attribute::PublicExponent(e)],
                    &[],
                ),
                RvError::TemplateInconsistent,
                Function::GenerateKeyPair,
            );
        }
        expect_rv(
            session.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &[], &[]),
            RvError::TemplateIncomplete,
            Function::GenerateKeyPair,
        );
    });
}

#[test]
fn signatures_verified_by_the_rsa_crate() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let (public, private) = rsa_pair(&session, 2048, &[], &[]);
        let oracle = rsa_public(&session, public);
        let data = random_bytes(777);
        // CKM_RSA_PKCS over a DigestInfo, and over raw data (the unprefixed scheme).
        let hash = H::Sha256.digest(&data);
        let info = [SHA256_DIGEST_INFO, &hash].concat();
        let sig = session.sign(&Mechanism::RsaPkcs, private, &info).unwrap();
        oracle_pkcs1_verify(&oracle, H::Sha256, &hash, &sig).expect("DigestInfo signature");
        session.verify(&Mechanism::RsaPkcs, public, &info, &sig).unwrap();
        let raw = random_bytes(36);
        let sig = session.sign(&Mechanism::RsaPkcs, private, &raw).unwrap();
        oracle.verify(Pkcs1v15Sign::new_unprefixed(), &raw, &sig).expect("raw PKCS#1 signature");
        // SHA*_RSA_PKCS, in parts and at once.
        for (m, h) in [
            (Mechanism::Sha1RsaPkcs, H::Sha1),
            (Mechanism::Sha256RsaPkcs, H::Sha256),
            (Mechanism::Sha384RsaPkcs, H::Sha384),
            (Mechanism::Sha512RsaPkcs, H::Sha512),
        ] {
            session.sign_init(&m, private).unwrap();
            for part in split(&data, &ODD_PARTS) {
                session.sign_update(part).unwrap();
            }
            let sig = session.sign_final().unwrap();
            oracle_pkcs1_verify(&oracle, h, &h.digest(&data), &sig).unwrap_or_else(|e| panic!("{h:?}: {e}"));
            assert_eq!(sig, session.sign(&m, private, &data).unwrap(), "PKCS#1 v1.5 is deterministic");
            session.verify(&m, public, &data, &sig).unwrap();
        }
        // PSS over a hash, and SHA*_RSA_PKCS_PSS over data, with the usual salt and none.
        for h in [H::Sha256, H::Sha384, H::Sha512] {
            for salt in [h.len(), 0] {
                let params = pss_params(h, salt as u64);
                let hash = h.digest(&data);
                let sig = session.sign(&Mechanism::RsaPkcsPss(params), private, &hash).unwrap();
                oracle.verify(pss_oracle(h, salt), &hash, &sig).unwrap_or_else(|e| panic!("{h:?}/{salt}: {e}"));
                session.verify(&Mechanism::RsaPkcsPss(params), public, &hash, &sig).unwrap();
                let m = match h {
                    H::Sha256 => Mechanism::Sha256RsaPkcsPss(params),
                    H::Sha384 => Mechanism::Sha384RsaPkcsPss(params),
                    _ => Mechanism::Sha512RsaPkcsPss(params),
                };
                session.sign_init(&m, private).unwrap();
                for part in split(&data, &ODD_PARTS) {
                    session.sign_update(part).unwrap();
                }
                let sig = session.sign_final().unwrap();
                oracle.verify(pss_oracle(h, salt), &hash, &sig).unwrap_or_else(|e| panic!("{h:?}/{salt}: {e}"));
                session.verify(&m, public, &data, &sig).unwrap();
            }
        }
    });
}

#[test]
fn bad_signatures_are_refused() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let (public, private) = rsa_pair(&session, 2048, &[], &[]);
        let sig = session.sign(&Mechanism::Sha256RsaPkcs, private, b"data").unwrap();
        expect_rv(
            session.verify(&Mechanism::Sha256RsaPkcs, public, b"data", &sig[1..]),
            RvError::SignatureLenRange,
            Function::Verify,
        );
        expect_rv(
            session.verify(&Mechanism::Sha256RsaPkcs, public, b"data", &[sig.clone(), vec![0]].concat()),
            RvError::SignatureLenRange,
            Function::Verify,
        );
        let mut bad = sig.clone();
        bad[100] ^= 1;
        expect_rv(
            session.verify(&Mechanism::Sha256RsaPkcs, public, b"data", &bad),
            RvError::SignatureInvalid,
            Function::Verify,
        );
        expect_rv(
            session.verify(&Mechanism::Sha256RsaPkcs, public, b"date", &sig),
            RvError::SignatureInvalid,
            Function::Verify,
        );
        // A signature not below the modulus.
        expect_rv(
            session.verify(&Mechanism::Sha256RsaPkcs, public, b"data", &[0xff; 256]),
            RvError::SignatureInvalid,
            Function::Verify,
        );
        // PSS with the wrong salt length.
        let p = pss_params(H::Sha256, 32);
        let hash = H::Sha256.digest(b"data");
        let sig = session.sign(&Mechanism::RsaPkcsPss(p), private, &hash).unwrap();
        expect_rv(
            session.verify(&Mechanism::RsaPkcsPss(pss_params(H::Sha256, 20)), public, &hash, &sig),
            RvError::SignatureInvalid,
            Function::Verify,
        );
    });
}

#[test]
fn oaep_decrypts_what_the_rsa_crate_encrypts() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        // Session keys may both decrypt and sign; the token key asks decryption only.
        let (public, private) = rsa_pair(&session, 2048, &[], &[]);
        let (tpub, tpriv) = rsa_pair(
            &session,
            2048,
            &[Attribute::Token(true), Attribute::Encrypt(true)],
            &[Attribute::Token(true), Attribute::Decrypt(true)],
        );
        let mut rng = rsa::rand_core::OsRng;
        for (public, private) in [(public, private), (tpub, tpriv)] {
            let oracle = rsa_public(&session, public);
            for h in [H::Sha1, H::Sha256] {
                for label in [&b""[..], b"a label"] {
                    let msg = random_bytes(32);
                    let ct = oracle.encrypt(&mut rng, oracle_oaep(h, label), &msg).unwrap();
                    let pt = session.decrypt(&oaep(h, label), private, &ct).expect("C_Decrypt (OAEP)");
                    assert_eq!(pt, msg, "{h:?} {label:?}");
                    // The module's own ciphertext, decrypted by the module.
                    let ct = session.encrypt(&oaep(h, label), public, &msg).unwrap();
                    assert_eq!(ct.len(), 256);
                    assert_eq!(session.decrypt(&oaep(h, label), private, &ct).unwrap(), msg);
                    // Another label or a changed ciphertext does not decrypt.
                    expect_rv(
                        session.decrypt(&oaep(h, b"other"), private, &ct),
                        RvError::EncryptedDataInvalid,
                        Function::Decrypt,
                    );
                    let mut bad = ct.clone();
                    bad[5] ^= 1;
                    expect_rv(
                        session.decrypt(&oaep(h, label), private, &bad),
                        RvError::EncryptedDataInvalid,
                        Function::Decrypt,
                    );
                }
            }
            // PKCS#1 v1.5 encryption by the oracle, decrypted by the module.
            let msg = random_bytes(48);
            let ct = oracle.encrypt(&mut rng, Pkcs1v15Encrypt, &msg).unwrap();
            assert_eq!(session.decrypt(&Mechanism::RsaPkcs, private, &ct).unwrap(), msg);
        }
        // Under the default profile a token key pair does what its attributes say: the
        // decryption key signs too (CKA_SIGN defaults to TRUE, as in SoftHSM2).
        let sig = session.sign(&Mechanism::Sha256RsaPkcs, tpriv, b"x").unwrap();
        session.verify(&Mechanism::Sha256RsaPkcs, tpub, b"x", &sig).unwrap();
        // An OAEP label beyond the token's bound is a bad parameter.
        let huge = vec![b'x'; 64 * 1024 + 1];
        expect_rv(
            session.encrypt(&oaep(H::Sha256, &huge), public, b"m"),
            RvError::MechanismParamInvalid,
            Function::EncryptInit,
        );
        expect_rv(
            session.decrypt(&oaep(H::Sha256, &huge), private, &[0; 256]),
            RvError::MechanismParamInvalid,
            Function::DecryptInit,
        );
    });
}

#[test]
fn imported_keys_sign_and_decrypt_for_the_oracle() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let key = rsa_oracle_key(2048);
        let mut t = rsa_private_template(&key);
        t.extend([Attribute::Token(true), Attribute::Id(vec![0x15, 0xa]), Attribute::Sign(true)]);
        let private = create(&session, &t);
        let attrs = session.get_attributes(private, &[AttributeType::Local, AttributeType::Sensitive]).unwrap();
        assert!(attrs.contains(&Attribute::Local(false)));
        assert!(attrs.contains(&Attribute::Sensitive(true)));
        let oracle = key.to_public_key();
        let sig = session.sign(&Mechanism::Sha256RsaPkcs, private, b"imported").unwrap();
        oracle_pkcs1_verify(&oracle, H::Sha256, &H::Sha256.digest(b"imported"), &sig).expect("rsa verifies");
        let params = pss_params(H::Sha384, 48);
        let sig = session.sign(&Mechanism::Sha384RsaPkcsPss(params), private, b"imported").unwrap();
        oracle.verify(pss_oracle(H::Sha384, 48), &H::Sha384.digest(b"imported"), &sig).expect("rsa verifies PSS");
        // The imported public key verifies, and encrypts for the session copy of the private key.
        let public = create(&session, &rsa_public_template(&oracle));
        let attrs = session.get_attributes(public, &[AttributeType::ModulusBits]).unwrap();
        assert_eq!(attrs, vec![Attribute::ModulusBits(2048.into())]);
        session.verify(&Mechanism::Sha384RsaPkcsPss(params), public, b"imported", &sig).unwrap();
        let session_private = create(&session, &rsa_private_template(&key));
        let ct = session.encrypt(&oaep(H::Sha256, b""), public, b"secret").unwrap();
        assert_eq!(key.decrypt(oracle_oaep(H::Sha256, b""), &ct).unwrap(), b"secret");
        assert_eq!(session.decrypt(&oaep(H::Sha256, b""), session_private, &ct).unwrap(), b"secret");
    });
}

/// The default profile serves what existing deployments and test suites use: RSA from
/// 1024 bits (generated and imported), and public keys from 512 bits that only verify and
/// encrypt; the rsa crate checks every result.
#[test]
fn keys_of_1024_bits_and_old_public_keys_are_served() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let (public, private) = rsa_pair(&session, 1024, &[Attribute::Token(true)], &[Attribute::Token(true)]);
        check_pair(&session, public, private, 1024);
        let key = rsa_oracle_key(1024);
        let imported = create(&session, &rsa_private_template(&key));
        let ct = key.to_public_key().encrypt(&mut rsa::rand_core::OsRng, oracle_oaep(H::Sha256, b""), b"m").unwrap();
        assert_eq!(session.decrypt(&oaep(H::Sha256, b""), imported, &ct).unwrap(), b"m");
        // A 512-bit public key verifies a signature its private key made, and encrypts.
        let old = rsa_oracle_key(512);
        let old_public = create(&session, &rsa_public_template(&old.to_public_key()));
        let digest = H::Sha256.digest(b"old");
        let sig = old.sign(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &digest).unwrap();
        session.verify(&Mechanism::Sha256RsaPkcs, old_public, b"old", &sig).unwrap();
        let ct = session.encrypt(&Mechanism::RsaPkcs, old_public, b"short").unwrap();
        assert_eq!(old.decrypt(rsa::Pkcs1v15Encrypt, &ct).unwrap(), b"short");
    });
}

/// `kms-strict` takes only the sizes of AWS's key specs: RSA_2048, RSA_3072, RSA_4096.
#[test]
fn kms_strict_takes_only_the_aws_rsa_sizes() {
    scenario!("profile = \"kms-strict\"", |_| {
        let (_p, _s, session) = ready();
        for bits in [1024u64, 2176] {
            expect_rv(
                session.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &[Attribute::ModulusBits(bits.into())], &[]),
                RvError::KeySizeRange,
                Function::GenerateKeyPair,
            );
        }
        let small = rsa_oracle_key(1024);
        expect_rv(
            session.create_object(&rsa_public_template(&small.to_public_key())),
            RvError::AttributeValueInvalid,
            Function::CreateObject,
        );
        let (public, private) = rsa_pair(&session, 3072, &[], &[]);
        check_pair(&session, public, private, 3072);
    });
}

#[test]
fn bad_rsa_keys_are_refused_on_create() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        // Sizes the profile does not take (private keys below 1024 bits, public keys below
        // 512): the modulus is a value the token cannot take.
        let small = rsa_oracle_key(768);
        expect_rv(
            session.create_object(&rsa_private_template(&small)),
            RvError::AttributeValueInvalid,
            Function::CreateObject,
        );
        let tiny = rsa_oracle_key(448);
        expect_rv(
            session.create_object(&rsa_public_template(&tiny.to_public_key())),
            RvError::AttributeValueInvalid,
            Function::CreateObject,
        );
        // Components that do not form a key: a changed prime, exponent, coefficient,
        // another key's modulus.
        let key = rsa_oracle_key(2048);
        let other = rsa_oracle_key(2048);
        let good = rsa_private_template(&key);
        for i in 2..good.len() {
            let mut t = good.clone();
            t[i] = match &good[i] {
                Attribute::Modulus(_) => Attribute::Modulus(other.n().to_bytes_be()),
                Attribute::PublicExponent(_) => Attribute::PublicExponent(vec![3]),
                Attribute::PrivateExponent(v) => Attribute::PrivateExponent(flip(v)),
                Attribute::Prime1(v) => Attribute::Prime1(flip(v)),
                Attribute::Prime2(v) => Attribute::Prime2(flip(v)),
                Attribute::Exponent1(v) => Attribute::Exponent1(flip(v)),
                Attribute::Exponent2(v) => Attribute::Exponent2(flip(v)),
                Attribute::Coefficient(v) => Attribute::Coefficient(flip(v)),
                other => panic!("{other:?}"),
            };
            expect_rv(session.create_object(&t), RvError::AttributeValueInvalid, Function::CreateObject);
        }
        // A component missing.
        expect_rv(session.create_object(&good[..good.len() - 1]), RvError::TemplateIncomplete, Function::CreateObject);
        // The public value of a modulus that is no valid key (even) is refused too.
        let mut n = key.n().to_bytes_be();
        *n.last_mut().unwrap() &= 0xfe;
        let t = vec![good[0].clone(), good[1].clone(), Attribute::Modulus(n), Attribute::PublicExponent(vec![1, 0, 1])];
        let mut public = t.clone();
        public[0] = Attribute::Class(cryptoki::object::ObjectClass::PUBLIC_KEY);
        expect_rv(session.create_object(&public), RvError::AttributeValueInvalid, Function::CreateObject);
        // And the good template is a key.
        create(&session, &good);
    });
}

/// `v` with one bit of its last byte changed.
fn flip(v: &[u8]) -> Vec<u8> {
    let mut v = v.to_vec();
    *v.last_mut().unwrap() ^= 2;
    v
}
