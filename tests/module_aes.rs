//! AES through the module against independent implementations: GCM, CBC, CBC_PAD, CTR,
//! ECB (served by the default profile, off under kms-strict unless configured), key wrap (RFC 3394) and key wrap with padding (RFC 5649).

mod common;

use common::raw::{raw, sh, two_calls, Mech};
use common::*;
use cryptoki::context::Function;
use cryptoki::error::RvError;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;

const KEY_LENS: [usize; 3] = [16, 24, 32];

fn gcm<'a>(iv: &'a mut [u8], aad: &'a [u8]) -> Mechanism<'a> {
    Mechanism::AesGcm(GcmParams::new(iv, aad, 128.into()).unwrap())
}

/// A key the test knows, and its handle.
fn key_of(session: &Session, len: usize) -> (Vec<u8>, ObjectHandle) {
    let value = random_bytes(len);
    let h = aes_key(session, &value);
    (value, h)
}

#[test]
fn gcm_matches_the_oracle() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let r = raw();
        let h = sh(&session);
        for len in KEY_LENS {
            let (value, key) = key_of(&session, len);
            for pt_len in [0, 1, 16, 100] {
                let (mut iv, aad, pt) = (random_bytes(12), random_bytes(20), random_bytes(pt_len));
                let expected = oracle::gcm_encrypt(&value, &iv, &aad, &pt);
                let ct = session.encrypt(&gcm(&mut iv, &aad), key, &pt).unwrap();
                assert_eq!(ct, expected, "key {len}, data {pt_len}");
                assert_eq!(session.decrypt(&gcm(&mut iv, &aad), key, &ct).unwrap(), pt);

                let m = Mech::gcm(&iv, &aad, 128);
                assert_eq!(r.in_parts(true, h, &m, key.handle(), &split(&pt, &ODD_PARTS)).unwrap(), expected);
                assert_eq!(r.in_parts(false, h, &m, key.handle(), &split(&ct, &ODD_PARTS)).unwrap(), pt);
            }
        }
    });
}

/// Any IV length and tags from 32 to 128 bits, as the specification allows (Wycheproof
/// has valid vectors with both), each checked against the oracle, single- and multi-part;
/// encryption in parts gives each part's ciphertext at once.
#[test]
fn gcm_takes_any_iv_and_tag_length() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let r = raw();
        let h = sh(&session);
        let (value, key) = key_of(&session, 32);
        let (aad, pt) = (random_bytes(13), random_bytes(50));
        for iv_len in [8, 12, 16] {
            let iv = random_bytes(iv_len);
            let full = oracle::gcm_encrypt_iv(&value, &iv, &aad, &pt);
            for tag_bits in [32, 64, 96, 104, 128] {
                let m = Mech::gcm(&iv, &aad, tag_bits);
                let expected = &full[..pt.len() + tag_bits as usize / 8];
                r.init(raw::Op::Encrypt, h, &m, key.handle()).unwrap();
                assert_eq!(r.crypt(true, h, &pt, Some(200)).ok(), expected, "iv {iv_len} tag {tag_bits}");
                r.init(raw::Op::Encrypt, h, &m, key.handle()).unwrap();
                let first = r.crypt_update(true, h, &pt[..20], Some(20)).ok();
                assert_eq!(first, &expected[..20], "the first part comes out at once");
                let mut parts = first;
                parts.extend(r.crypt_update(true, h, &pt[20..], Some(30)).ok());
                parts.extend(r.crypt_final(true, h, Some(16)).ok());
                assert_eq!(parts, expected);
                r.init(raw::Op::Decrypt, h, &m, key.handle()).unwrap();
                assert_eq!(r.crypt(false, h, expected, Some(200)).ok(), pt);
            }
        }
    });
}

#[test]
fn gcm_rejects_tampering_and_unserved_parameters() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let r = raw();
        let h = sh(&session);
        let (_, key) = key_of(&session, 32);
        let (mut iv, aad, pt) = (random_bytes(12), b"header".to_vec(), random_bytes(40));
        let ct = session.encrypt(&gcm(&mut iv, &aad), key, &pt).unwrap();
        for bit in [0, 8 * 40 + 3, 8 * ct.len() - 1] {
            let mut bad = ct.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            expect_rv(
                session.decrypt(&gcm(&mut iv, &aad), key, &bad),
                RvError::EncryptedDataInvalid,
                Function::Decrypt,
            );
        }
        expect_rv(session.decrypt(&gcm(&mut iv, b"other"), key, &ct), RvError::EncryptedDataInvalid, Function::Decrypt);
        expect_rv(
            session.decrypt(&gcm(&mut iv, &aad), key, &ct[..15]),
            RvError::EncryptedDataLenRange,
            Function::Decrypt,
        );
        // The operation ended with the error.
        expect_rv(r.crypt(false, h, &ct, Some(100)).rv, RvError::OperationNotInitialized, Function::Decrypt);

        // No IV, a tag below 32 bits, over 128 or not in whole bytes.
        for m in [
            Mech::gcm(&[], &aad, 128),
            Mech::gcm(&[0; 12], &aad, 24),
            Mech::gcm(&[0; 12], &aad, 100),
            Mech::gcm(&[0; 12], &aad, 136),
        ] {
            expect_rv(
                r.init(raw::Op::Encrypt, h, &m, key.handle()),
                RvError::MechanismParamInvalid,
                Function::EncryptInit,
            );
            expect_rv(
                r.init(raw::Op::Decrypt, h, &m, key.handle()),
                RvError::MechanismParamInvalid,
                Function::DecryptInit,
            );
        }
        expect_rv(
            r.init(raw::Op::Encrypt, h, &Mech::new(CKM_AES_GCM), key.handle()),
            RvError::MechanismParamInvalid,
            Function::EncryptInit,
        );
    });
}

#[test]
fn cbc_matches_the_oracle_and_wants_whole_blocks() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let r = raw();
        let h = sh(&session);
        for len in KEY_LENS {
            let (value, key) = key_of(&session, len);
            let iv: [u8; 16] = random_bytes(16).try_into().unwrap();
            let pt = random_bytes(64);
            let expected = oracle::cbc_encrypt(&value, &iv, &pt, false);
            assert_eq!(session.encrypt(&Mechanism::AesCbc(iv), key, &pt).unwrap(), expected);
            assert_eq!(session.decrypt(&Mechanism::AesCbc(iv), key, &expected).unwrap(), pt);
            let m = Mech::bytes(CKM_AES_CBC, &iv);
            assert_eq!(r.in_parts(true, h, &m, key.handle(), &split(&pt, &ODD_PARTS)).unwrap(), expected);
            assert_eq!(r.in_parts(false, h, &m, key.handle(), &split(&expected, &ODD_PARTS)).unwrap(), pt);
        }
        let (_, key) = key_of(&session, 16);
        expect_rv(
            session.encrypt(&Mechanism::AesCbc([0; 16]), key, &[0; 15]),
            RvError::DataLenRange,
            Function::Encrypt,
        );
        expect_rv(
            session.decrypt(&Mechanism::AesCbc([0; 16]), key, &[0; 15]),
            RvError::EncryptedDataLenRange,
            Function::Decrypt,
        );
        // In parts, the length is judged at the end.
        session.encrypt_init(&Mechanism::AesCbc([0; 16]), key).unwrap();
        assert_eq!(session.encrypt_update(&[0; 20]).unwrap().len(), 16);
        expect_rv(session.encrypt_final(), RvError::DataLenRange, Function::EncryptFinal);
        session.decrypt_init(&Mechanism::AesCbc([0; 16]), key).unwrap();
        session.decrypt_update(&[0; 17]).unwrap();
        expect_rv(session.decrypt_final(), RvError::EncryptedDataLenRange, Function::DecryptFinal);
        expect_rv(
            r.init(raw::Op::Encrypt, h, &Mech::bytes(CKM_AES_CBC, &[0; 15]), key.handle()),
            RvError::MechanismParamInvalid,
            Function::EncryptInit,
        );
    });
}

#[test]
fn cbc_pad_in_odd_parts_matches_the_oracle() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let r = raw();
        let h = sh(&session);
        for len in KEY_LENS {
            let (value, key) = key_of(&session, len);
            for pt_len in [0, 1, 15, 16, 17, 31, 32, 100] {
                let iv: [u8; 16] = random_bytes(16).try_into().unwrap();
                let pt = random_bytes(pt_len);
                let expected = oracle::cbc_encrypt(&value, &iv, &pt, true);
                assert_eq!(session.encrypt(&Mechanism::AesCbcPad(iv), key, &pt).unwrap(), expected);
                assert_eq!(session.decrypt(&Mechanism::AesCbcPad(iv), key, &expected).unwrap(), pt);
                let m = Mech::bytes(CKM_AES_CBC_PAD, &iv);
                assert_eq!(
                    r.in_parts(true, h, &m, key.handle(), &split(&pt, &ODD_PARTS)).unwrap(),
                    expected,
                    "data {pt_len}"
                );
                assert_eq!(
                    r.in_parts(false, h, &m, key.handle(), &split(&expected, &ODD_PARTS)).unwrap(),
                    pt,
                    "data {pt_len}"
                );
            }
        }
    });
}

#[test]
fn cbc_pad_rejects_bad_padding() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let (value, key) = key_of(&session, 16);
        let iv = [9u8; 16];
        let mech = Mechanism::AesCbcPad(iv);
        let mut last_blocks: Vec<Vec<u8>> = Vec::new();
        for tail in [&[0u8][..], &[17], &[3, 3, 2], &[2, 1, 16]] {
            let mut block = random_bytes(32);
            block[32 - tail.len()..].copy_from_slice(tail);
            last_blocks.push(block);
        }
        for pt in &last_blocks {
            let ct = oracle::cbc_encrypt(&value, &iv, pt, false);
            expect_rv(session.decrypt(&mech, key, &ct), RvError::EncryptedDataInvalid, Function::Decrypt);
            session.decrypt_init(&mech, key).unwrap();
            let head = session.decrypt_update(&ct).unwrap();
            assert_eq!(head, oracle::cbc_decrypt_raw(&value, &iv, &ct)[..16], "the last block is held back");
            expect_rv(session.decrypt_final(), RvError::EncryptedDataInvalid, Function::DecryptFinal);
        }
        for n in [0, 15, 17] {
            expect_rv(session.decrypt(&mech, key, &random_bytes(n)), RvError::EncryptedDataLenRange, Function::Decrypt);
        }
    });
}

#[test]
fn ctr_matches_the_oracle() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let r = raw();
        let h = sh(&session);
        for len in KEY_LENS {
            let (value, key) = key_of(&session, len);
            for bits in [32u64, 64, 128] {
                let mut cb: [u8; 16] = random_bytes(16).try_into().unwrap();
                cb[16 - bits as usize / 8] &= 0x7f; // far from wrapping around
                let pt = random_bytes(100);
                let expected = oracle::ctr(&value, &cb, bits, &pt);
                let m = Mech::ctr(bits, cb);
                assert_eq!(r.one_shot(true, h, &m, key.handle(), &pt).unwrap(), expected);
                assert_eq!(r.one_shot(false, h, &m, key.handle(), &expected).unwrap(), pt);
                assert_eq!(r.in_parts(true, h, &m, key.handle(), &split(&pt, &ODD_PARTS)).unwrap(), expected);
                assert_eq!(r.in_parts(false, h, &m, key.handle(), &split(&expected, &[5, 16, 1])).unwrap(), pt);
            }
        }
        let (value, key) = key_of(&session, 16);
        // An 8-bit counter at its last value has one block left, never a wrap-around.
        let mut cb = [0u8; 16];
        cb[15] = 0xff;
        let m = Mech::ctr(8, cb);
        let block = random_bytes(16);
        assert_eq!(r.one_shot(true, h, &m, key.handle(), &block).unwrap(), oracle::ctr(&value, &cb, 128, &block));
        expect_rv(r.one_shot(true, h, &m, key.handle(), &random_bytes(17)), RvError::DataLenRange, Function::Encrypt);
        for bad in [Mech::ctr(0, cb), Mech::ctr(129, cb), Mech::bytes(CKM_AES_CTR, &cb)] {
            expect_rv(
                r.init(raw::Op::Encrypt, h, &bad, key.handle()),
                RvError::MechanismParamInvalid,
                Function::EncryptInit,
            );
        }
    });
}

#[test]
fn ecb_is_off_under_kms_strict() {
    scenario!("profile = \"kms-strict\"", |_| {
        let (p, s, session) = ready();
        let (_, key) = key_of(&session, 16);
        expect_rv(session.encrypt_init(&Mechanism::AesEcb, key), RvError::MechanismInvalid, Function::EncryptInit);
        expect_rv(session.decrypt_init(&Mechanism::AesEcb, key), RvError::MechanismInvalid, Function::DecryptInit);
        assert!(!p.get_mechanism_list(s).unwrap().contains(&MechanismType::AES_ECB));
        expect_rv(
            p.get_mechanism_info(s, MechanismType::AES_ECB),
            RvError::MechanismInvalid,
            Function::GetMechanismInfo,
        );
    });
}

#[test]
fn ecb_is_served_by_default() {
    scenario!(|_| ecb_round_trips());
}

#[test]
fn ecb_is_served_under_kms_strict_when_configured() {
    scenario!("profile = \"kms-strict\"\n[mechanisms]\naes_ecb = true", |_| ecb_round_trips());
}

/// CKM_AES_ECB is listed and matches the oracle for every key length.
fn ecb_round_trips() {
    let (p, s, session) = ready();
    assert!(p.get_mechanism_list(s).unwrap().contains(&MechanismType::AES_ECB));
    for len in KEY_LENS {
        let (value, key) = key_of(&session, len);
        let pt = random_bytes(48);
        let expected = oracle::ecb_encrypt(&value, &pt);
        assert_eq!(session.encrypt(&Mechanism::AesEcb, key, &pt).unwrap(), expected);
        assert_eq!(session.decrypt(&Mechanism::AesEcb, key, &expected).unwrap(), pt);
        expect_rv(session.encrypt(&Mechanism::AesEcb, key, &pt[..47]), RvError::DataLenRange, Function::Encrypt);
    }
}

/// The template of an unwrapped key whose value the test may read.
fn unwrap_template(key_type: KeyType) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(key_type),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ]
}

#[test]
fn key_wrap_matches_rfc_3394() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let r = raw();
        let h = sh(&session);
        for kek_len in [16, 32] {
            let (kek_value, kek) = key_of(&session, kek_len);
            for key_len in [16, 24, 32] {
                let value = random_bytes(key_len);
                let target = create(&session, &readable_template(KeyType::AES, &value));
                let wrapped = session.wrap_key(&Mechanism::AesKeyWrap, kek, target).unwrap();
                assert_eq!(wrapped, oracle::kw_wrap(&kek_value, &value));
                let unwrapped =
                    session.unwrap_key(&Mechanism::AesKeyWrap, kek, &wrapped, &unwrap_template(KeyType::AES)).unwrap();
                assert_eq!(r.attr(h, unwrapped.handle(), CKA_VALUE).unwrap(), value);
                assert!(!r.attr_bool(h, unwrapped.handle(), CKA_LOCAL));
                assert_eq!(r.attr_ulong(h, unwrapped.handle(), CKA_VALUE_LEN), key_len as u64);
            }
            // Raw encryption of whole semiblocks.
            let data = random_bytes(40);
            let expected = oracle::kw_wrap(&kek_value, &data);
            assert_eq!(session.encrypt(&Mechanism::AesKeyWrap, kek, &data).unwrap(), expected);
            assert_eq!(session.decrypt(&Mechanism::AesKeyWrap, kek, &expected).unwrap(), data);
        }
        let (_, kek) = key_of(&session, 16);
        for n in [8, 12, 20] {
            expect_rv(
                session.encrypt(&Mechanism::AesKeyWrap, kek, &random_bytes(n)),
                RvError::DataLenRange,
                Function::Encrypt,
            );
        }
        // A key of no whole semiblocks is not wrapped with zero padding.
        let odd = create(&session, &readable_template(KeyType::GENERIC_SECRET, &random_bytes(20)));
        expect_rv(session.wrap_key(&Mechanism::AesKeyWrap, kek, odd), RvError::KeyNotWrappable, Function::WrapKey);
        // Tampering and incomplete templates.
        let target = create(&session, &readable_template(KeyType::AES, &random_bytes(16)));
        let mut wrapped = session.wrap_key(&Mechanism::AesKeyWrap, kek, target).unwrap();
        wrapped[5] ^= 1;
        expect_rv(
            session.unwrap_key(&Mechanism::AesKeyWrap, kek, &wrapped, &unwrap_template(KeyType::AES)),
            RvError::WrappedKeyInvalid,
            Function::UnwrapKey,
        );
        wrapped[5] ^= 1;
        expect_rv(
            session.unwrap_key(&Mechanism::AesKeyWrap, kek, &wrapped, &[Attribute::Class(ObjectClass::SECRET_KEY)]),
            RvError::TemplateIncomplete,
            Function::UnwrapKey,
        );
        expect_rv(
            session.unwrap_key(&Mechanism::AesKeyWrap, kek, &wrapped[..20], &unwrap_template(KeyType::AES)),
            RvError::WrappedKeyLenRange,
            Function::UnwrapKey,
        );
        // No AES-192 key-encryption keys.
        let (_, kek24) = key_of(&session, 24);
        expect_rv(session.encrypt_init(&Mechanism::AesKeyWrap, kek24), RvError::KeySizeRange, Function::EncryptInit);
        expect_rv(
            session.wrap_key(&Mechanism::AesKeyWrap, kek24, target),
            RvError::WrappingKeySizeRange,
            Function::WrapKey,
        );
    });
}

#[test]
fn kwp_matches_rfc_5649() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let r = raw();
        let h = sh(&session);
        let kwp = Mech::new(CKM_AES_KEY_WRAP_KWP);
        for kek_len in [16, 32] {
            let (kek_value, kek) = key_of(&session, kek_len);
            for key_len in [1, 5, 16, 20, 32, 33] {
                let value = random_bytes(key_len);
                let target = create(&session, &readable_template(KeyType::GENERIC_SECRET, &value)).handle();
                let wrapped = two_calls(|cap| r.wrap_key(h, &kwp, kek.handle(), target, cap)).unwrap();
                assert_eq!(wrapped, oracle::kwp_wrap(&kek_value, &value), "key of {key_len} bytes");
                let unwrapped =
                    r.unwrap_key(h, &kwp, kek.handle(), &wrapped, &unwrap_template(KeyType::GENERIC_SECRET)).unwrap();
                assert_eq!(r.attr(h, unwrapped, CKA_VALUE).unwrap(), value);
            }
            let data = random_bytes(5);
            let expected = oracle::kwp_wrap(&kek_value, &data);
            assert_eq!(r.one_shot(true, h, &kwp, kek.handle(), &data).unwrap(), expected);
            assert_eq!(r.one_shot(false, h, &kwp, kek.handle(), &expected).unwrap(), data);
            let mut bad = expected.clone();
            bad[0] ^= 0x80;
            expect_rv(r.one_shot(false, h, &kwp, kek.handle(), &bad), RvError::EncryptedDataInvalid, Function::Decrypt);
        }
        let (_, kek) = key_of(&session, 16);
        expect_rv(r.one_shot(true, h, &kwp, kek.handle(), &[]), RvError::DataLenRange, Function::Encrypt);
        expect_rv(
            r.one_shot(false, h, &kwp, kek.handle(), &[0; 12]),
            RvError::EncryptedDataLenRange,
            Function::Decrypt,
        );
    });
}

#[test]
fn gcm_and_cbc_pad_wrap_keys() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let r = raw();
        let h = sh(&session);
        let (kek_value, kek) = key_of(&session, 32);
        let value = random_bytes(32);
        let target = create(&session, &readable_template(KeyType::AES, &value));

        let (mut iv, aad) = (random_bytes(12), random_bytes(8));
        let wrapped = session.wrap_key(&gcm(&mut iv, &aad), kek, target).unwrap();
        assert_eq!(wrapped, oracle::gcm_encrypt(&kek_value, &iv, &aad, &value));
        let back = session.unwrap_key(&gcm(&mut iv, &aad), kek, &wrapped, &unwrap_template(KeyType::AES)).unwrap();
        assert_eq!(r.attr(h, back.handle(), CKA_VALUE).unwrap(), value);

        let cbc_iv = [4u8; 16];
        let wrapped = session.wrap_key(&Mechanism::AesCbcPad(cbc_iv), kek, target).unwrap();
        assert_eq!(wrapped, oracle::cbc_encrypt(&kek_value, &cbc_iv, &value, true));
        let back =
            session.unwrap_key(&Mechanism::AesCbcPad(cbc_iv), kek, &wrapped, &unwrap_template(KeyType::AES)).unwrap();
        assert_eq!(r.attr(h, back.handle(), CKA_VALUE).unwrap(), value);
        // Unpadded CBC and CTR do not wrap.
        expect_rv(
            session.wrap_key(&Mechanism::AesCbc(cbc_iv), kek, target),
            RvError::MechanismInvalid,
            Function::WrapKey,
        );
    });
}
