//! MACs, digests and random numbers through the module against independent
//! implementations: AES-CMAC, HMAC over SHA-1 and SHA-2 with their *_GENERAL forms,
//! the SHA digests with C_DigestKey, and C_GenerateRandom.

mod common;

use common::oracle::{Hash, HASHES};
use common::raw::{raw, sh, two_calls, Mech, Op};
use common::*;
use cryptoki::context::Function;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::KeyType;
use cryptoki_sys::*;

/// The digest, HMAC and HMAC_GENERAL mechanisms of a hash.
fn mechanisms(hash: Hash) -> (CK_MECHANISM_TYPE, CK_MECHANISM_TYPE, CK_MECHANISM_TYPE) {
    match hash {
        Hash::Sha1 => (CKM_SHA_1, CKM_SHA_1_HMAC, CKM_SHA_1_HMAC_GENERAL),
        Hash::Sha224 => (CKM_SHA224, CKM_SHA224_HMAC, CKM_SHA224_HMAC_GENERAL),
        Hash::Sha256 => (CKM_SHA256, CKM_SHA256_HMAC, CKM_SHA256_HMAC_GENERAL),
        Hash::Sha384 => (CKM_SHA384, CKM_SHA384_HMAC, CKM_SHA384_HMAC_GENERAL),
        Hash::Sha512 => (CKM_SHA512, CKM_SHA512_HMAC, CKM_SHA512_HMAC_GENERAL),
    }
}

fn flipped(mac: &[u8]) -> Vec<u8> {
    let mut bad = mac.to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    bad
}

#[test]
fn cmac_matches_the_oracle() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let r = raw();
        let h = sh(&session);
        let cmac = Mech::new(CKM_AES_CMAC);
        for len in [16, 24, 32] {
            let value = random_bytes(len);
            let key = aes_key(&session, &value);
            for data_len in [0, 1, 16, 33, 100] {
                let data = random_bytes(data_len);
                let expected = oracle::cmac(&value, &data);
                assert_eq!(session.sign(&Mechanism::AesCMac, key, &data).unwrap(), expected);
                assert_eq!(r.mac(h, &cmac, key.handle(), &data).unwrap(), expected);
                session.verify(&Mechanism::AesCMac, key, &data, &expected).unwrap();

                // In parts.
                r.init(Op::Sign, h, &cmac, key.handle()).unwrap();
                for part in split(&data, &ODD_PARTS) {
                    r.sign_update(h, part).unwrap();
                }
                assert_eq!(two_calls(|cap| r.sign_final(h, cap)).unwrap(), expected);
                session.verify_init(&Mechanism::AesCMac, key).unwrap();
                for part in split(&data, &ODD_PARTS) {
                    session.verify_update(part).unwrap();
                }
                session.verify_final(&expected).unwrap();
            }
            let data = random_bytes(40);
            let expected = oracle::cmac(&value, &data);
            expect_rv(
                session.verify(&Mechanism::AesCMac, key, &data, &flipped(&expected)),
                RvError::SignatureInvalid,
                Function::Verify,
            );
            expect_rv(
                session.verify(&Mechanism::AesCMac, key, &data, &expected[..15]),
                RvError::SignatureLenRange,
                Function::Verify,
            );

            let general = Mech::ulong(CKM_AES_CMAC_GENERAL, 8);
            assert_eq!(r.mac(h, &general, key.handle(), &data).unwrap(), expected[..8]);
            r.check_mac(h, &general, key.handle(), &data, &expected[..8]).unwrap();
            expect_rv(
                r.check_mac(h, &general, key.handle(), &data, &expected),
                RvError::SignatureLenRange,
                Function::Verify,
            );
            for n in [0, 17] {
                let bad = Mech::ulong(CKM_AES_CMAC_GENERAL, n);
                expect_rv(r.init(Op::Sign, h, &bad, key.handle()), RvError::MechanismParamInvalid, Function::SignInit);
            }
        }
    });
}

#[test]
fn hmac_matches_the_oracle() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let r = raw();
        let h = sh(&session);
        for hash in HASHES {
            let (_, full, general) = mechanisms(hash);
            let full = Mech::new(full);
            // Short keys, one block long, longer than a block (hashed down).
            for key_len in [1, 32, 64, 200] {
                let value = random_bytes(key_len);
                let key = generic_key(&session, &value).handle();
                for data_len in [0, 100] {
                    let data = random_bytes(data_len);
                    let expected = hash.hmac(&value, &data);
                    assert_eq!(r.mac(h, &full, key, &data).unwrap(), expected, "{hash:?}, key {key_len}");
                    r.check_mac(h, &full, key, &data, &expected).unwrap();
                    expect_rv(
                        r.check_mac(h, &full, key, &data, &flipped(&expected)),
                        RvError::SignatureInvalid,
                        Function::Verify,
                    );
                    let short = &expected[..expected.len() - 1];
                    expect_rv(r.check_mac(h, &full, key, &data, short), RvError::SignatureLenRange, Function::Verify);

                    let ten = Mech::ulong(general, 10);
                    assert_eq!(r.mac(h, &ten, key, &data).unwrap(), expected[..10]);
                    r.check_mac(h, &ten, key, &data, &expected[..10]).unwrap();
                    expect_rv(
                        r.check_mac(h, &ten, key, &data, &flipped(&expected[..10])),
                        RvError::SignatureInvalid,
                        Function::Verify,
                    );
                }
            }
            let key = generic_key(&session, &[1; 16]).handle();
            for n in [0, hash.hmac(&[1], b"").len() as u64 + 1] {
                expect_rv(
                    r.init(Op::Sign, h, &Mech::ulong(general, n), key),
                    RvError::MechanismParamInvalid,
                    Function::SignInit,
                );
            }
        }
        // Through cryptoki's own types as well.
        let value = random_bytes(32);
        let key = generic_key(&session, &value);
        assert_eq!(session.sign(&Mechanism::Sha256Hmac, key, b"abc").unwrap(), Hash::Sha256.hmac(&value, b"abc"));
        session.verify(&Mechanism::Sha384Hmac, key, b"abc", &Hash::Sha384.hmac(&value, b"abc")).unwrap();
    });
}

#[test]
fn hmac_keys_must_fit_the_mechanism() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let value = random_bytes(32);
        let sha256_key = create(&session, &secret_template(KeyType::SHA256_HMAC, &value));
        assert_eq!(session.sign(&Mechanism::Sha256Hmac, sha256_key, b"m").unwrap(), Hash::Sha256.hmac(&value, b"m"));
        expect_rv(
            session.sign_init(&Mechanism::Sha1Hmac, sha256_key),
            RvError::KeyTypeInconsistent,
            Function::SignInit,
        );
        let aes = aes_key(&session, &value);
        expect_rv(session.sign_init(&Mechanism::Sha256Hmac, aes), RvError::KeyTypeInconsistent, Function::SignInit);
        expect_rv(session.verify_init(&Mechanism::Sha256Hmac, aes), RvError::KeyTypeInconsistent, Function::VerifyInit);
        let generic = generic_key(&session, &value);
        expect_rv(session.sign_init(&Mechanism::AesCMac, generic), RvError::KeyTypeInconsistent, Function::SignInit);
    });
}

#[test]
fn digests_match_the_oracle() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let r = raw();
        let h = sh(&session);
        for hash in HASHES {
            let (digest, _, _) = mechanisms(hash);
            for len in [0, 3, 64, 200] {
                let data = random_bytes(len);
                let expected = hash.digest(&data);
                r.digest_init(h, &Mech::new(digest)).unwrap();
                assert_eq!(two_calls(|cap| r.digest(h, &data, cap)).unwrap(), expected, "{hash:?} of {len} bytes");
                r.digest_init(h, &Mech::new(digest)).unwrap();
                for part in split(&data, &ODD_PARTS) {
                    session.digest_update(part).unwrap();
                }
                assert_eq!(session.digest_final().unwrap(), expected);
            }
            expect_rv(
                r.digest_init(h, &Mech::bytes(digest, &[1])),
                RvError::MechanismParamInvalid,
                Function::DigestInit,
            );
        }
        let mechs = [Mechanism::Sha1, Mechanism::Sha224, Mechanism::Sha256, Mechanism::Sha384, Mechanism::Sha512];
        for (hash, m) in HASHES.iter().zip(mechs) {
            assert_eq!(session.digest(&m, b"abc").unwrap(), hash.digest(b"abc"));
        }
        expect_rv(session.digest_init(&Mechanism::AesCMac), RvError::MechanismInvalid, Function::DigestInit);
    });
}

#[test]
fn digest_key_feeds_the_key_value() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let value = random_bytes(32);
        // Sensitive and unextractable: its value never leaves, but may be digested.
        let key = aes_key(&session, &value);
        session.digest_init(&Mechanism::Sha256).unwrap();
        session.digest_update(b"before").unwrap();
        session.digest_key(key).unwrap();
        session.digest_update(b"after").unwrap();
        let expected = Hash::Sha256.digest(&[&b"before"[..], &value, b"after"].concat());
        assert_eq!(session.digest_final().unwrap(), expected);

        expect_rv(session.digest_key(key), RvError::OperationNotInitialized, Function::DigestKey);
        let data = create(&session, &data_template("d", b"v"));
        session.digest_init(&Mechanism::Sha256).unwrap();
        expect_rv(session.digest_key(data), RvError::KeyIndigestible, Function::DigestKey);
        // That error ended the digest, as every failed step does.
        expect_rv(session.digest_final(), RvError::OperationNotInitialized, Function::DigestFinal);
        session.digest_init(&Mechanism::Sha256).unwrap();
        expect_rv(session.digest_key(handle_of(0xdead)), RvError::KeyHandleInvalid, Function::DigestKey);
    });
}

#[test]
fn generate_random_gives_fresh_bytes() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        for len in [1, 32, 1000] {
            let a = session.generate_random_vec(len).unwrap();
            let b = session.generate_random_vec(len).unwrap();
            assert_eq!(a.len(), len as usize);
            if len >= 32 {
                assert_ne!(a, b);
                assert!(a.iter().any(|x| *x != 0));
            }
        }
        session.seed_random(b"accepted").unwrap();
        let r = raw();
        let mut buf = [0u8; 16];
        let rv = unsafe { r.lib().C_GenerateRandom(0xdead, buf.as_mut_ptr(), 16) };
        assert_eq!(rv, CKR_SESSION_HANDLE_INVALID);
    });
}
