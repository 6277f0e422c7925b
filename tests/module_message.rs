//! PKCS#11 3.0 message-based AES-GCM: many messages under one C_MessageEncryptInit, each
//! checked by the aes-gcm crate, whole and in parts; IVs made by the token written back;
//! a tampered tag refused; and one KMS gate decision (and audit record) per operation.

mod common;
#[path = "kms_common.rs"]
mod kms;

use common::*;
use cryptoki::context::Function;
use cryptoki::error::RvError;
use cryptoki::mechanism::aead::{GcmMessageParams, GeneratorFunction};
use cryptoki::mechanism::{Mechanism, MessageParam};
use kms::*;

/// The mechanism of the init calls, whose parameter is not read: each message brings its
/// own.
fn init_mech<'a>(iv: &'a mut [u8], tag: &'a mut [u8]) -> Mechanism<'a> {
    Mechanism::AesGcmMessage(GcmMessageParams::new(iv, 0.into(), GeneratorFunction::NoGenerate, tag).unwrap())
}

#[test]
fn messages_are_sealed_and_opened_as_aes_gcm() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let value = random_bytes(32);
        let key = known_key(&session, cryptoki::object::KeyType::AES, &value);
        let (mut iv0, mut tag0) = ([0u8; 12], [0u8; 16]);
        session.message_encrypt_init(&init_mech(&mut iv0, &mut tag0), key).unwrap();
        session.message_decrypt_init(&init_mech(&mut iv0, &mut tag0), key).unwrap();
        let mut sealed = Vec::new();
        for (i, len) in [0usize, 1, 16, 100].into_iter().enumerate() {
            let (pt, aad) = (random_bytes(len), random_bytes(i * 5));
            let mut iv = random_bytes(12);
            let mut tag = [0u8; 16];
            let p = GcmMessageParams::new(&mut iv, 0.into(), GeneratorFunction::NoGenerate, &mut tag).unwrap();
            let ct = session.encrypt_message(&MessageParam::AesGcmMessage(p), &aad, &pt).unwrap();
            assert_eq!([ct.clone(), tag.to_vec()].concat(), oracle::gcm_encrypt(&value, &iv, &aad, &pt));
            let p = GcmMessageParams::new(&mut iv, 0.into(), GeneratorFunction::NoGenerate, &mut tag).unwrap();
            assert_eq!(session.decrypt_message(&MessageParam::AesGcmMessage(p), &aad, &ct).unwrap(), pt);
            sealed.push((iv, aad, ct, tag));
        }
        // A wrong tag opens nothing.
        let (mut iv, aad, ct, mut tag) = sealed.pop().unwrap();
        tag[0] ^= 1;
        let p = GcmMessageParams::new(&mut iv, 0.into(), GeneratorFunction::NoGenerate, &mut tag).unwrap();
        expect_rv(
            session.decrypt_message(&MessageParam::AesGcmMessage(p), &aad, &ct),
            RvError::EncryptedDataInvalid,
            Function::DecryptMessage,
        );

        // A message in parts, with an IV the token makes from a counter after 4 fixed bytes.
        let mut iv = [7u8, 7, 7, 7, 0, 0, 0, 0, 0, 0, 0, 0];
        let mut tag = [0u8; 16];
        let pt = random_bytes(70);
        let p = GcmMessageParams::new(&mut iv, 32.into(), GeneratorFunction::GenerateCounter, &mut tag).unwrap();
        session.encrypt_message_begin(MessageParam::AesGcmMessage(p), b"hdr").unwrap();
        let mut ct = Vec::new();
        for (i, part) in pt.chunks(30).enumerate() {
            let p = GcmMessageParams::new(&mut iv, 32.into(), GeneratorFunction::GenerateCounter, &mut tag).unwrap();
            ct.extend(session.encrypt_message_next(MessageParam::AesGcmMessage(p), part, i == 2).unwrap());
        }
        assert_eq!(iv, [7, 7, 7, 7, 0, 0, 0, 0, 0, 0, 0, 1], "the token's IV, written back");
        assert_eq!([ct.clone(), tag.to_vec()].concat(), oracle::gcm_encrypt(&value, &iv, b"hdr", &pt));
        let p = GcmMessageParams::new(&mut iv, 0.into(), GeneratorFunction::NoGenerate, &mut tag).unwrap();
        session.decrypt_message_begin(MessageParam::AesGcmMessage(p), b"hdr").unwrap();
        let p = GcmMessageParams::new(&mut iv, 0.into(), GeneratorFunction::NoGenerate, &mut tag).unwrap();
        assert!(session.decrypt_message_next(MessageParam::AesGcmMessage(p), &ct[..40], false).unwrap().is_empty());
        let p = GcmMessageParams::new(&mut iv, 0.into(), GeneratorFunction::NoGenerate, &mut tag).unwrap();
        assert_eq!(session.decrypt_message_next(MessageParam::AesGcmMessage(p), &ct[40..], true).unwrap(), pt);

        session.message_encrypt_final().unwrap();
        session.message_decrypt_final().unwrap();
        expect_rv(session.message_encrypt_final(), RvError::OperationNotInitialized, Function::MessageEncryptFinal);
        // One gate decision per operation, not per message.
        let id = key_id_of(&session, key);
        assert_eq!(records_of(&s.keystore(), "Encrypt", &id).len(), 1);
        assert_eq!(records_of(&s.keystore(), "Decrypt", &id).len(), 1);
    });
}

#[test]
fn a_disabled_key_begins_no_message_operation() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let key = generate_aes(&session);
        Cli::new(&s.config_path(), USER_PIN).ok(&["kms", "disable-key", "--key-id", &key_id_of(&session, key)]);
        let (mut iv, mut tag) = ([0u8; 12], [0u8; 16]);
        expect_rv(
            session.message_encrypt_init(&init_mech(&mut iv, &mut tag), key),
            RvError::KeyFunctionNotPermitted,
            Function::MessageEncryptInit,
        );
    });
}
