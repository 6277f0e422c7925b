//! The rules every operation follows, at the C boundary: one operation of a kind per
//! session, the two-call output convention, errors that end an operation, the key checks
//! at *Init, and what C_GetMechanismInfo tells.

mod common;

use common::oracle::Hash;
use common::raw::{raw, sh, Mech, Op};
use common::*;
use cryptoki::context::Function;
use cryptoki::error::RvError;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, KeyType};
use cryptoki_sys::*;
use std::collections::BTreeMap;

const IV: [u8; 16] = [7; 16];

#[test]
fn an_operation_in_progress_blocks_another_of_its_kind() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let value = random_bytes(16);
        let key = aes_key(&session, &value);
        let mac_key = generic_key(&session, &value);
        session.encrypt_init(&Mechanism::AesCbcPad(IV), key).unwrap();
        expect_rv(
            session.encrypt_init(&Mechanism::AesCbcPad([0; 16]), key),
            RvError::OperationActive,
            Function::EncryptInit,
        );
        // Other kinds may run beside it.
        session.decrypt_init(&Mechanism::AesCbcPad(IV), key).unwrap();
        expect_rv(
            session.decrypt_init(&Mechanism::AesCbcPad(IV), key),
            RvError::OperationActive,
            Function::DecryptInit,
        );
        session.sign_init(&Mechanism::Sha256Hmac, mac_key).unwrap();
        expect_rv(session.sign_init(&Mechanism::Sha256Hmac, mac_key), RvError::OperationActive, Function::SignInit);
        session.verify_init(&Mechanism::Sha256Hmac, mac_key).unwrap();
        expect_rv(session.verify_init(&Mechanism::Sha256Hmac, mac_key), RvError::OperationActive, Function::VerifyInit);
        session.digest_init(&Mechanism::Sha256).unwrap();
        expect_rv(session.digest_init(&Mechanism::Sha1), RvError::OperationActive, Function::DigestInit);

        // The first operations go on, unchanged.
        let r = raw();
        let h = sh(&session);
        let pt = random_bytes(20);
        let ct = oracle::cbc_encrypt(&value, &IV, &pt, true);
        assert_eq!(raw::two_calls(|cap| r.crypt(true, h, &pt, cap)).unwrap(), ct);
        assert_eq!(raw::two_calls(|cap| r.crypt(false, h, &ct, cap)).unwrap(), pt);
        assert_eq!(raw::two_calls(|cap| r.sign(h, b"m", cap)).unwrap(), Hash::Sha256.hmac(&value, b"m"));
        r.verify(h, b"m", &Hash::Sha256.hmac(&value, b"m")).unwrap();
        assert_eq!(raw::two_calls(|cap| r.digest(h, b"m", cap)).unwrap(), Hash::Sha256.digest(b"m"));
        // A multi-part operation is not finished with a single-part call.
        session.encrypt_init(&Mechanism::AesCbcPad(IV), key).unwrap();
        session.encrypt_update(&pt).unwrap();
        expect_rv(r.crypt(true, h, &pt, Some(64)).rv, RvError::OperationActive, Function::Encrypt);
        session.encrypt_final().unwrap();
    });
}

#[test]
fn steps_without_init_are_refused() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let r = raw();
        let h = sh(&session);
        let not_init = RvError::OperationNotInitialized;
        for encrypt in [true, false] {
            let (single, update, last) = if encrypt {
                (Function::Encrypt, Function::EncryptUpdate, Function::EncryptFinal)
            } else {
                (Function::Decrypt, Function::DecryptUpdate, Function::DecryptFinal)
            };
            expect_rv(r.crypt(encrypt, h, &[0; 16], Some(32)).rv, not_init, single);
            expect_rv(r.crypt(encrypt, h, &[0; 16], None).rv, not_init, single);
            expect_rv(r.crypt_update(encrypt, h, &[0; 16], Some(32)).rv, not_init, update);
            expect_rv(r.crypt_final(encrypt, h, Some(32)).rv, not_init, last);
        }
        expect_rv(r.sign(h, b"m", Some(64)).rv, not_init, Function::Sign);
        expect_rv(r.sign_update(h, b"m"), not_init, Function::SignUpdate);
        expect_rv(r.sign_final(h, None).rv, not_init, Function::SignFinal);
        expect_rv(r.verify(h, b"m", &[0; 32]), not_init, Function::Verify);
        expect_rv(session.verify_update(b"m"), not_init, Function::VerifyUpdate);
        expect_rv(session.verify_final(&[0; 32]), not_init, Function::VerifyFinal);
        expect_rv(r.digest(h, b"m", Some(64)).rv, not_init, Function::Digest);
        expect_rv(session.digest_update(b"m"), not_init, Function::DigestUpdate);
        expect_rv(session.digest_final(), not_init, Function::DigestFinal);
    });
}

#[test]
fn the_two_call_convention_holds_for_ciphers() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let r = raw();
        let h = sh(&session);
        let value = random_bytes(16);
        let key = aes_key(&session, &value).handle();
        let m = Mech::bytes(CKM_AES_CBC_PAD, &IV);
        let pt = random_bytes(20);
        let ct = oracle::cbc_encrypt(&value, &IV, &pt, true);

        r.init(Op::Encrypt, h, &m, key).unwrap();
        let q = r.crypt(true, h, &pt, None);
        q.rv.unwrap();
        assert_eq!(q.len, 32);
        let short = r.crypt(true, h, &pt, Some(31));
        expect_rv(short.rv, RvError::BufferTooSmall, Function::Encrypt);
        assert_eq!(short.len, 32, "the needed length is reported");
        // Still active: a big enough buffer succeeds, and the length written is exact.
        let done = r.crypt(true, h, &pt, Some(100));
        assert_eq!(done.len, 32);
        assert_eq!(done.ok(), ct);
        expect_rv(r.crypt(true, h, &pt, Some(100)).rv, RvError::OperationNotInitialized, Function::Encrypt);

        // Decryption announces a bound, but a buffer of the exact length is enough.
        r.init(Op::Decrypt, h, &m, key).unwrap();
        let q = r.crypt(false, h, &ct, None);
        q.rv.unwrap();
        assert!(q.len >= 20 && q.len <= 32, "bound {}", q.len);
        let short = r.crypt(false, h, &ct, Some(19));
        expect_rv(short.rv, RvError::BufferTooSmall, Function::Decrypt);
        assert_eq!(short.len, 20);
        assert_eq!(r.crypt(false, h, &ct, Some(20)).ok(), pt);

        // The same for the parts of a multi-part operation.
        r.init(Op::Encrypt, h, &m, key).unwrap();
        let short = r.crypt_update(true, h, &pt, Some(15));
        expect_rv(short.rv, RvError::BufferTooSmall, Function::EncryptUpdate);
        assert_eq!(short.len, 16);
        let mut out = r.crypt_update(true, h, &pt, Some(16)).ok();
        let short = r.crypt_final(true, h, Some(8));
        expect_rv(short.rv, RvError::BufferTooSmall, Function::EncryptFinal);
        assert_eq!(short.len, 16);
        out.extend(r.crypt_final(true, h, Some(16)).ok());
        assert_eq!(out, ct);
    });
}

#[test]
fn the_two_call_convention_holds_for_macs_digests_and_wrapping() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let r = raw();
        let h = sh(&session);
        let value = random_bytes(32);
        let mac_key = generic_key(&session, &value).handle();
        let hmac = Mech::new(CKM_SHA256_HMAC);
        let expected = Hash::Sha256.hmac(&value, b"message");

        r.init(Op::Sign, h, &hmac, mac_key).unwrap();
        assert_eq!(r.sign(h, b"message", None).len, 32);
        let short = r.sign(h, b"message", Some(31));
        expect_rv(short.rv, RvError::BufferTooSmall, Function::Sign);
        assert_eq!(short.len, 32);
        let done = r.sign(h, b"message", Some(64));
        assert_eq!(done.len, 32);
        assert_eq!(done.ok(), expected);
        expect_rv(r.sign(h, b"message", Some(64)).rv, RvError::OperationNotInitialized, Function::Sign);

        r.init(Op::Sign, h, &hmac, mac_key).unwrap();
        r.sign_update(h, b"mess").unwrap();
        r.sign_update(h, b"age").unwrap();
        expect_rv(r.sign_final(h, Some(1)).rv, RvError::BufferTooSmall, Function::SignFinal);
        assert_eq!(r.sign_final(h, Some(32)).ok(), expected);

        r.digest_init(h, &Mech::new(CKM_SHA512)).unwrap();
        assert_eq!(r.digest(h, b"abc", None).len, 64);
        let short = r.digest(h, b"abc", Some(63));
        expect_rv(short.rv, RvError::BufferTooSmall, Function::Digest);
        assert_eq!(short.len, 64);
        assert_eq!(r.digest(h, b"abc", Some(64)).ok(), Hash::Sha512.digest(b"abc"));

        let kek_value = random_bytes(16);
        let kek = aes_key(&session, &kek_value).handle();
        let target_value = random_bytes(32);
        let target = create(&session, &readable_template(KeyType::AES, &target_value)).handle();
        let kw = Mech::new(CKM_AES_KEY_WRAP);
        let q = r.wrap_key(h, &kw, kek, target, None);
        q.rv.unwrap();
        assert_eq!(q.len, 40);
        let short = r.wrap_key(h, &kw, kek, target, Some(39));
        expect_rv(short.rv, RvError::BufferTooSmall, Function::WrapKey);
        assert_eq!(short.len, 40);
        assert_eq!(r.wrap_key(h, &kw, kek, target, Some(40)).ok(), oracle::kw_wrap(&kek_value, &target_value));
    });
}

#[test]
fn other_errors_end_the_operation() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let r = raw();
        let h = sh(&session);
        let value = random_bytes(16);
        let key = aes_key(&session, &value);

        session.encrypt_init(&Mechanism::AesCbc(IV), key).unwrap();
        expect_rv(r.crypt(true, h, &[0; 15], Some(16)).rv, RvError::DataLenRange, Function::Encrypt);
        expect_rv(r.crypt(true, h, &[0; 16], Some(16)).rv, RvError::OperationNotInitialized, Function::Encrypt);

        let m = Mech::gcm(&[1; 12], b"", 128);
        r.init(Op::Decrypt, h, &m, key.handle()).unwrap();
        expect_rv(r.crypt(false, h, &[0; 32], Some(32)).rv, RvError::EncryptedDataInvalid, Function::Decrypt);
        expect_rv(r.crypt(false, h, &[0; 32], Some(32)).rv, RvError::OperationNotInitialized, Function::Decrypt);

        let mut cb = [0u8; 16];
        cb[15] = 0xff;
        r.init(Op::Encrypt, h, &Mech::ctr(8, cb), key.handle()).unwrap();
        expect_rv(r.crypt_update(true, h, &[0; 17], Some(17)).rv, RvError::DataLenRange, Function::EncryptUpdate);
        expect_rv(r.crypt_final(true, h, Some(16)).rv, RvError::OperationNotInitialized, Function::EncryptFinal);

        let mac_key = generic_key(&session, &value);
        session.verify_init(&Mechanism::Sha256Hmac, mac_key).unwrap();
        expect_rv(r.verify(h, b"m", &[0; 32]), RvError::SignatureInvalid, Function::Verify);
        expect_rv(
            r.verify(h, b"m", &Hash::Sha256.hmac(&value, b"m")),
            RvError::OperationNotInitialized,
            Function::Verify,
        );
        // A successful verification ends it too.
        session.verify_init(&Mechanism::Sha256Hmac, mac_key).unwrap();
        r.verify(h, b"m", &Hash::Sha256.hmac(&value, b"m")).unwrap();
        expect_rv(
            r.verify(h, b"m", &Hash::Sha256.hmac(&value, b"m")),
            RvError::OperationNotInitialized,
            Function::Verify,
        );
        // A length query does not.
        session.digest_init(&Mechanism::Sha256).unwrap();
        r.digest(h, b"m", None).rv.unwrap();
        assert_eq!(raw::two_calls(|cap| r.digest(h, b"m", cap)).unwrap(), Hash::Sha256.digest(b"m"));
    });
}

#[test]
fn keys_must_permit_what_is_asked() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let r = raw();
        let h = sh(&session);
        let value = random_bytes(16);
        let with = |attrs: &[Attribute]| {
            let mut t = secret_template(KeyType::AES, &value);
            t.extend_from_slice(attrs);
            create(&session, &t)
        };
        let cbc = Mechanism::AesCbcPad(IV);
        expect_rv(session.encrypt_init(&cbc, handle_of(0xdead)), RvError::KeyHandleInvalid, Function::EncryptInit);
        expect_rv(
            session.sign_init(&Mechanism::AesCMac, handle_of(0xdead)),
            RvError::KeyHandleInvalid,
            Function::SignInit,
        );

        let no_encrypt = with(&[Attribute::Encrypt(false)]);
        expect_rv(session.encrypt_init(&cbc, no_encrypt), RvError::KeyFunctionNotPermitted, Function::EncryptInit);
        let ct = oracle::cbc_encrypt(&value, &IV, b"x", true);
        assert_eq!(session.decrypt(&cbc, no_encrypt, &ct).unwrap(), b"x");
        let no_decrypt = with(&[Attribute::Decrypt(false)]);
        expect_rv(session.decrypt_init(&cbc, no_decrypt), RvError::KeyFunctionNotPermitted, Function::DecryptInit);
        let no_sign = with(&[Attribute::Sign(false)]);
        expect_rv(
            session.sign_init(&Mechanism::AesCMac, no_sign),
            RvError::KeyFunctionNotPermitted,
            Function::SignInit,
        );
        let no_verify = with(&[Attribute::Verify(false)]);
        expect_rv(
            session.verify_init(&Mechanism::AesCMac, no_verify),
            RvError::KeyFunctionNotPermitted,
            Function::VerifyInit,
        );

        let only_cbc_pad = with(&[Attribute::AllowedMechanisms(vec![MechanismType::AES_CBC_PAD])]);
        expect_rv(
            session.encrypt_init(&Mechanism::AesCbc(IV), only_cbc_pad),
            RvError::MechanismInvalid,
            Function::EncryptInit,
        );
        expect_rv(session.sign_init(&Mechanism::AesCMac, only_cbc_pad), RvError::MechanismInvalid, Function::SignInit);
        let pt = random_bytes(5);
        assert_eq!(session.encrypt(&cbc, only_cbc_pad, &pt).unwrap(), oracle::cbc_encrypt(&value, &IV, &pt, true));

        let generic = generic_key(&session, &value);
        expect_rv(session.encrypt_init(&cbc, generic), RvError::KeyTypeInconsistent, Function::EncryptInit);
        let data = create(&session, &data_template("d", b"v"));
        expect_rv(session.encrypt_init(&cbc, data), RvError::KeyTypeInconsistent, Function::EncryptInit);
        let key = with(&[]);
        expect_rv(
            r.init(Op::Encrypt, h, &Mech::new(CKM_VENDOR_DEFINED | 0x1234), key.handle()),
            RvError::MechanismInvalid,
            Function::EncryptInit,
        );
        expect_rv(session.encrypt_init(&Mechanism::Sha256, key), RvError::MechanismInvalid, Function::EncryptInit);
    });
}

#[test]
fn wrapping_checks_both_keys() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let r = raw();
        let h = sh(&session);
        let kek = aes_key(&session, &random_bytes(16));
        let target = create(&session, &readable_template(KeyType::AES, &random_bytes(16)));
        let kw = Mechanism::AesKeyWrap;
        let hidden = aes_key(&session, &random_bytes(16));
        expect_rv(session.wrap_key(&kw, kek, hidden), RvError::KeyUnextractable, Function::WrapKey);
        expect_rv(
            session.wrap_key(&kw, handle_of(0xdead), target),
            RvError::WrappingKeyHandleInvalid,
            Function::WrapKey,
        );
        expect_rv(session.wrap_key(&kw, kek, handle_of(0xdead)), RvError::KeyHandleInvalid, Function::WrapKey);
        let mut t = secret_template(KeyType::AES, &random_bytes(16));
        t.push(Attribute::Wrap(false));
        let no_wrap = create(&session, &t);
        expect_rv(session.wrap_key(&kw, no_wrap, target), RvError::KeyFunctionNotPermitted, Function::WrapKey);
        let mut t = readable_template(KeyType::AES, &random_bytes(16));
        t.push(Attribute::WrapWithTrusted(true));
        let needs_trusted = create(&session, &t);
        expect_rv(session.wrap_key(&kw, kek, needs_trusted), RvError::KeyNotWrappable, Function::WrapKey);

        let wrapped = session.wrap_key(&kw, kek, target).unwrap();
        let template = [Attribute::Class(cryptoki::object::ObjectClass::SECRET_KEY), Attribute::KeyType(KeyType::AES)];
        expect_rv(
            session.unwrap_key(&kw, handle_of(0xdead), &wrapped, &template),
            RvError::UnwrappingKeyHandleInvalid,
            Function::UnwrapKey,
        );
        let mut t = secret_template(KeyType::AES, &random_bytes(16));
        t.push(Attribute::Unwrap(false));
        let no_unwrap = create(&session, &t);
        expect_rv(
            session.unwrap_key(&kw, no_unwrap, &wrapped, &template),
            RvError::KeyFunctionNotPermitted,
            Function::UnwrapKey,
        );
        let generic = generic_key(&session, &random_bytes(16));
        expect_rv(session.wrap_key(&kw, generic, target), RvError::WrappingKeyTypeInconsistent, Function::WrapKey);
        expect_rv(
            r.unwrap_key(h, &Mech::new(CKM_AES_KEY_WRAP), generic.handle(), &wrapped, &template),
            RvError::UnwrappingKeyTypeInconsistent,
            Function::UnwrapKey,
        );
        // The unwrapped key is the target's value under the new template.
        let back = session.unwrap_key(&kw, kek, &wrapped, &template).unwrap();
        assert!(r.attr_bool(h, back.handle(), CKA_SENSITIVE), "secure defaults apply to unwrapped keys");
    });
}

#[test]
fn mechanism_info_describes_every_listed_mechanism() {
    scenario!(|_| {
        let p = initialized();
        let s = init_token(&p, LABEL);
        let r = raw();
        const AES: (u64, u64) = (16, 32);
        const CIPHER: u64 = CKF_ENCRYPT | CKF_DECRYPT;
        const WRAPS: u64 = CIPHER | CKF_WRAP | CKF_UNWRAP;
        const MAC: u64 = CKF_SIGN | CKF_VERIFY;
        let mut expected: BTreeMap<u64, ((u64, u64), u64)> = BTreeMap::from([
            (CKM_AES_KEY_GEN, (AES, CKF_GENERATE)),
            // Generic secret sizes are counted in bits.
            (CKM_GENERIC_SECRET_KEY_GEN, ((8, 4096), CKF_GENERATE)),
            // ECB is served under the default profile (`pkcs11`).
            (CKM_AES_ECB, (AES, CIPHER)),
            (CKM_AES_CBC, (AES, CIPHER)),
            (CKM_AES_CBC_PAD, (AES, WRAPS)),
            (CKM_AES_CTR, (AES, CIPHER)),
            (CKM_AES_GCM, (AES, WRAPS)),
            (CKM_AES_KEY_WRAP, (AES, WRAPS)),
            (CKM_AES_KEY_WRAP_KWP, (AES, WRAPS)),
            (CKM_AES_CMAC, (AES, MAC)),
            (CKM_AES_CMAC_GENERAL, (AES, MAC)),
        ]);
        let hmacs = [
            CKM_SHA_1_HMAC,
            CKM_SHA_1_HMAC_GENERAL,
            CKM_SHA224_HMAC,
            CKM_SHA224_HMAC_GENERAL,
            CKM_SHA256_HMAC,
            CKM_SHA256_HMAC_GENERAL,
            CKM_SHA384_HMAC,
            CKM_SHA384_HMAC_GENERAL,
            CKM_SHA512_HMAC,
            CKM_SHA512_HMAC_GENERAL,
        ];
        for m in hmacs {
            // HMAC key sizes in bytes, as CKA_VALUE_LEN counts them.
            expected.insert(m, ((1, 512), MAC));
        }
        for m in [CKM_SHA_1, CKM_SHA224, CKM_SHA256, CKM_SHA384, CKM_SHA512] {
            expected.insert(m, ((0, 0), CKF_DIGEST));
        }
        // Every listed mechanism answers C_GetMechanismInfo sensibly; the secret-key
        // mechanisms answer exactly what the table says. The empty slot lists the same.
        let known_flags = CKF_HW
            | CKF_ENCRYPT
            | CKF_DECRYPT
            | CKF_DIGEST
            | CKF_SIGN
            | CKF_SIGN_RECOVER
            | CKF_VERIFY
            | CKF_VERIFY_RECOVER
            | CKF_GENERATE
            | CKF_GENERATE_KEY_PAIR
            | CKF_WRAP
            | CKF_UNWRAP
            | CKF_DERIVE
            | CKF_EC_F_P
            | CKF_EC_F_2M
            | CKF_EC_ECPARAMETERS
            | CKF_EC_OID
            | CKF_EC_UNCOMPRESS
            | CKF_EC_COMPRESS
            | CKF_EC_CURVENAME
            | CKF_ENCAPSULATE
            | CKF_DECAPSULATE;
        for id in [s.id(), 1] {
            let listed = r.mechanism_list(id).unwrap();
            let mut got = BTreeMap::new();
            for m in &listed {
                let i = r.mechanism_info(id, *m).unwrap();
                assert!(i.ulMinKeySize <= i.ulMaxKeySize, "mechanism {m:#x}: sizes {i:?}");
                assert!(i.flags != 0 && i.flags & !known_flags == 0, "mechanism {m:#x}: flags {:#x}", i.flags);
                got.insert(*m, ((i.ulMinKeySize, i.ulMaxKeySize), i.flags));
            }
            assert_eq!(got.len(), listed.len(), "a mechanism listed twice");
            for (m, want) in &expected {
                assert_eq!(got.get(m), Some(want), "mechanism {m:#x}");
            }
        }
        expect_rv(r.mechanism_info(s.id(), CKM_DES3_CBC), RvError::MechanismInvalid, Function::GetMechanismInfo);
        expect_rv(r.mechanism_info(9, CKM_AES_GCM), RvError::SlotIdInvalid, Function::GetMechanismInfo);
        expect_rv(r.mechanism_list(9), RvError::SlotIdInvalid, Function::GetMechanismList);
    });
}
