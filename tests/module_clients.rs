//! What standard clients (pkcs11-tool, libp11, cryptoki, python-pkcs11, PyKCS11) do and
//! expect, where the token once answered otherwise: destroying the two halves of a key
//! pair, public keys used before login, generic secrets that MAC by default, operations
//! that end on errors, the order of the session and argument checks, the PIN asked
//! again for keys with CKA_ALWAYS_AUTHENTICATE, the defaults of imported secrets, and the
//! HMAC key types of CKM_SHA*_KEY_GEN.

mod common;
#[path = "kms_common.rs"]
mod kms;

use common::raw::{self, raw, sh};
use common::*;
use cryptoki::context::Function;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;
use kms::*;

/// The DER OID of prime256v1.
const P256: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// A P-256 token key pair (a KMS key), its public half public.
fn token_pair(session: &Session) -> (ObjectHandle, ObjectHandle) {
    session
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[Attribute::Token(true), Attribute::Private(false), Attribute::EcParams(P256.to_vec())],
            &[Attribute::Token(true), Attribute::Private(true), Attribute::Sign(true)],
        )
        .expect("C_GenerateKeyPair")
}

#[test]
fn both_halves_of_a_pair_are_destroyed_in_either_order() {
    scenario!(|_| {
        let (_p, _slot, session) = ready();
        // Public first: only the public object goes; the key signs on.
        let (public, private) = token_pair(&session);
        session.destroy_object(public).expect("the public key first");
        assert!(session.sign(&Mechanism::Ecdsa, private, &[1; 32]).is_ok(), "the private key is untouched");
        session.destroy_object(private).expect("then the private key");
        expect_rv(session.destroy_object(private), RvError::ObjectHandleInvalid, Function::DestroyObject);

        // Private first: the KMS key is scheduled for deletion (its handle dies at once),
        // the public key stays a valid, findable object until the client destroys it.
        let (public, private) = token_pair(&session);
        let id = key_id_of(&session, private);
        session.destroy_object(private).expect("the private key first");
        expect_rv(session.sign_init(&Mechanism::Ecdsa, private), RvError::KeyHandleInvalid, Function::SignInit);
        let found = find(&session, &[Attribute::Class(ObjectClass::PUBLIC_KEY), Attribute::Token(true)]);
        assert_eq!(found, vec![public.handle()], "the public key is still found");
        assert_eq!(read_text(&session, public, KEY_ID), id);
        assert_eq!(state_of(&session, public), PENDING_DELETION, "it shares the key's state");
        // Its KMS use is refused with the key's state, but it is an object like any other.
        expect_rv(
            session.verify_init(&Mechanism::Ecdsa, public),
            RvError::KeyFunctionNotPermitted,
            Function::VerifyInit,
        );
        session.destroy_object(public).expect("then the public key");
        assert!(find(&session, &[Attribute::Token(true)]).is_empty());
    });
}

#[test]
fn public_keys_are_used_before_login() {
    scenario!(|s| {
        let p = initialized();
        let slot = init_token(&p, LABEL);
        init_user_pin(&p, slot, USER_PIN);
        let user = user_session(&p, slot);
        let (public, private) = token_pair(&user);
        let id = key_id_of(&user, private);
        let digest = [7u8; 32];
        let sig = user.sign(&Mechanism::Ecdsa, private, &digest).unwrap();
        user.logout().unwrap();

        // A public session verifies with the public key, audited as principal `public`.
        let public_session = p.open_ro_session(slot).unwrap();
        public_session.verify(&Mechanism::Ecdsa, public, &digest, &sig).expect("verify without login");
        let r = records_of(&s.keystore(), "Verify", &id).pop().expect("a Verify record");
        assert_eq!(r["userIdentity"]["principalId"], "public", "{r:#}");
        assert!(r.get("errorCode").is_none(), "{r:#}");

        // A key policy that denies `public` by name takes it away.
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": "user"}, "Action": "kms:*", "Resource": "*"},
                {"Effect": "Deny", "Principal": {"AWS": "public"}, "Action": "kms:Verify", "Resource": "*"}
            ]
        });
        cli.ok(&["kms", "put-key-policy", "--key-id", &id, "--policy", &policy.to_string()]);
        expect_rv(
            public_session.verify_init(&Mechanism::Ecdsa, public),
            RvError::KeyFunctionNotPermitted,
            Function::VerifyInit,
        );
        let r = records_of(&s.keystore(), "Verify", &id).pop().unwrap();
        assert_eq!(r["errorCode"], "AccessDeniedException", "{r:#}");
    });
}

#[test]
fn generic_secrets_mac_by_default() {
    scenario!(|_| {
        let (_p, _slot, session) = ready();
        // What `pkcs11-tool --keygen --key-type GENERIC:32` asks: encrypt and decrypt.
        let key = session
            .generate_key(
                &Mechanism::GenericSecretKeyGen,
                &[
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::ValueLen(32.into()),
                    Attribute::Encrypt(true),
                    Attribute::Decrypt(true),
                ],
            )
            .unwrap();
        assert!(flag_of(&session, key, AttributeType::Sign) && flag_of(&session, key, AttributeType::Verify));
        assert_eq!(read_text(&session, key, KEY_USAGE), "GENERATE_VERIFY_MAC", "a generic secret only MACs");
        let mac = session.sign(&Mechanism::Sha256Hmac, key, b"data").expect("HMAC with the default CKA_SIGN");
        session.verify(&Mechanism::Sha256Hmac, key, b"data", &mac).unwrap();
    });
}

#[test]
fn a_failed_step_ends_its_operation() {
    scenario!(|_| {
        let (_p, _slot, session) = ready();
        let r = raw();
        let h = sh(&session);
        let lib = r.lib();
        let mut len: CK_ULONG = 64;
        let mut out = [0u8; 64];
        // C_Digest with a NULL input of non-zero length: CKR_ARGUMENTS_BAD, and the
        // digest is over, so a new C_DigestInit succeeds.
        session.digest_init(&Mechanism::Sha256).unwrap();
        let rv = unsafe { lib.C_Digest(h, std::ptr::null_mut(), 5, out.as_mut_ptr(), &mut len) };
        assert_eq!(rv, CKR_ARGUMENTS_BAD);
        session.digest_init(&Mechanism::Sha256).expect("the failed C_Digest ended the operation");
        // C_DigestFinal with a NULL length pointer.
        session.digest_update(b"x").unwrap();
        let rv = unsafe { lib.C_DigestFinal(h, out.as_mut_ptr(), std::ptr::null_mut()) };
        assert_eq!(rv, CKR_ARGUMENTS_BAD);
        session.digest_init(&Mechanism::Sha256).expect("the failed C_DigestFinal ended the operation");
        session.digest_final().unwrap();
        // C_Encrypt and C_Decrypt with a bad length end theirs too.
        let key = aes_key(&session, &random_bytes(16));
        session.encrypt_init(&Mechanism::AesCbc([0; 16]), key).unwrap();
        expect_rv(r.crypt(true, h, &[0; 15], Some(64)).rv, RvError::DataLenRange, Function::Encrypt);
        session.encrypt_init(&Mechanism::AesCbc([0; 16]), key).expect("ended");
        let rv = unsafe { lib.C_Encrypt(h, out.as_mut_ptr(), 16, out.as_mut_ptr(), std::ptr::null_mut()) };
        assert_eq!(rv, CKR_ARGUMENTS_BAD);
        session.encrypt_init(&Mechanism::AesCbc([0; 16]), key).expect("ended");
        session.decrypt_init(&Mechanism::AesCbc([0; 16]), key).unwrap();
        expect_rv(r.crypt(false, h, &[0; 15], Some(64)).rv, RvError::EncryptedDataLenRange, Function::Decrypt);
        session.decrypt_init(&Mechanism::AesCbc([0; 16]), key).expect("ended");
        // A short buffer keeps the operation, and so does a length query.
        session.digest_init(&Mechanism::Sha256).unwrap();
        expect_rv(r.digest(h, b"m", Some(8)).rv, RvError::BufferTooSmall, Function::Digest);
        assert_eq!(r.digest(h, b"m", None).len, 32);
        assert_eq!(r.digest(h, b"m", Some(32)).ok(), common::oracle::Hash::Sha256.digest(b"m"));
    });
}

#[test]
fn a_single_part_call_does_not_end_a_multi_part_operation() {
    scenario!(|_| {
        let (_p, _slot, session) = ready();
        let r = raw();
        let h = sh(&session);
        session.digest_init(&Mechanism::Sha256).unwrap();
        session.digest_update(b"part").unwrap();
        expect_rv(r.digest(h, b"more", Some(64)).rv, RvError::OperationActive, Function::Digest);
        assert_eq!(session.digest_final().unwrap(), common::oracle::Hash::Sha256.digest(b"part"));

        let value = random_bytes(32);
        let key = generic_key(&session, &value);
        let m = raw::Mech::new(CKM_SHA256_HMAC);
        r.init(raw::Op::Sign, h, &m, key.handle()).unwrap();
        r.sign_update(h, b"part").unwrap();
        expect_rv(r.sign(h, b"more", Some(64)).rv, RvError::OperationActive, Function::Sign);
        assert_eq!(r.sign_final(h, Some(64)).ok(), common::oracle::Hash::Sha256.hmac(&value, b"part"));

        let mac = common::oracle::Hash::Sha256.hmac(&value, b"part");
        r.init(raw::Op::Verify, h, &m, key.handle()).unwrap();
        session.verify_update(b"part").unwrap();
        expect_rv(r.verify(h, b"part", &mac), RvError::OperationActive, Function::Verify);
        session.verify_final(&mac).unwrap();
    });
}

#[test]
fn session_and_argument_checks_come_first() {
    scenario!(|_| {
        let (p, slot, _session) = ready();
        // The user is logged in (the login holds for every session of the application).
        let ro = p.open_ro_session(slot).unwrap();
        // A token object in a R/O session: CKR_SESSION_READ_ONLY, even with a template
        // that is wrong in other ways too.
        let bad = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(true),
            Attribute::Value(vec![1; 15]),
        ];
        expect_rv(ro.create_object(&bad), RvError::SessionReadOnly, Function::CreateObject);
        expect_rv(
            ro.generate_key(&Mechanism::AesKeyGen, &[Attribute::Token(true), Attribute::ValueLen(7.into())]),
            RvError::SessionReadOnly,
            Function::GenerateKey,
        );
        ro.logout().unwrap();
        // C_Login with a NULL PIN is a bad argument (no protected authentication path).
        let r = raw();
        let rv = unsafe { r.lib().C_Login(sh(&ro), CKU_USER, std::ptr::null_mut(), 0) };
        assert_eq!(rv, CKR_ARGUMENTS_BAD);
        let rv = unsafe { r.lib().C_Login(sh(&ro), CKU_USER, std::ptr::null_mut(), 8) };
        assert_eq!(rv, CKR_ARGUMENTS_BAD);
    });
}

#[test]
fn always_authenticate_keys_ask_the_pin_again_for_each_use() {
    scenario!(|s| {
        let (_p, _slot, session) = ready();
        let (public, private) = session
            .generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[Attribute::EcParams(P256.to_vec())],
                &[Attribute::Sign(true), Attribute::AlwaysAuthenticate(true)],
            )
            .unwrap();
        let r = raw();
        let h = sh(&session);
        let m = raw::Mech::new(CKM_ECDSA);
        // Without the context-specific login the operation waits.
        r.init(raw::Op::Sign, h, &m, private.handle()).unwrap();
        expect_rv(r.sign(h, &[1; 32], Some(64)).rv, RvError::UserNotLoggedIn, Function::Sign);
        // A wrong PIN is counted as at login; the right one lets this operation run.
        r.init(raw::Op::Sign, h, &m, private.handle()).unwrap();
        expect_rv(r.login(h, CKU_CONTEXT_SPECIFIC, "wrong-pin-0000"), RvError::PinIncorrect, Function::Login);
        r.login(h, CKU_CONTEXT_SPECIFIC, USER_PIN).unwrap();
        let sig = r.sign(h, &[1; 32], Some(64)).ok();
        session.verify(&Mechanism::Ecdsa, public, &[1; 32], &sig).unwrap();
        // The next use asks again; with nothing in progress the login has no context.
        expect_rv(r.login(h, CKU_CONTEXT_SPECIFIC, USER_PIN), RvError::OperationNotInitialized, Function::Login);
        r.init(raw::Op::Sign, h, &m, private.handle()).unwrap();
        expect_rv(r.sign(h, &[1; 32], Some(64)).rv, RvError::UserNotLoggedIn, Function::Sign);
        let logins = audit_records(&s.keystore())
            .into_iter()
            .filter(|r| r["eventName"] == "Login" && r["requestParameters"]["details"]["contextSpecific"] == true)
            .count();
        assert_eq!(logins, 2, "both context-specific logins are audited");
    });
}

/// A secret key imported by C_CreateObject without CKA_SENSITIVE or CKA_EXTRACTABLE: its
/// value is readable under the default profile (the caller holds it already; the
/// specification's CKA_SENSITIVE default is CK_FALSE) and stays inside under kms-strict (no
/// material leaves an AWS key).
fn imported_secret_is_readable(session: &Session) -> bool {
    let key = session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Token(true),
            Attribute::Value(vec![7; 32]),
            Attribute::Sign(true),
        ])
        .unwrap();
    let generated = session.generate_key(&Mechanism::GenericSecretKeyGen, &[Attribute::ValueLen(32.into())]).unwrap();
    let sensitive = |k| session.get_attributes(k, &[AttributeType::Sensitive]).unwrap() == [Attribute::Sensitive(true)];
    assert!(sensitive(generated), "a key the token makes stays inside");
    match raw().attr(sh(session), key.handle(), CKA_VALUE) {
        Ok(v) => {
            assert_eq!(v, vec![7; 32]);
            assert!(!sensitive(key));
            true
        }
        Err(e) => {
            assert!(matches!(e, cryptoki::error::Error::Pkcs11(RvError::AttributeSensitive, _)), "{e}");
            false
        }
    }
}

#[test]
fn imported_secrets_take_the_specification_default() {
    scenario!(|_| {
        let (_p, _slot, session) = ready();
        assert!(imported_secret_is_readable(&session));
    });
}

#[test]
fn imported_secrets_stay_inside_under_kms_strict() {
    scenario!("profile = \"kms-strict\"", |_| {
        let (_p, _slot, session) = ready();
        assert!(!imported_secret_is_readable(&session));
    });
}

#[test]
fn sha_key_gen_makes_hmac_keys_of_its_hash() {
    scenario!(|_| {
        let (_p, _slot, session) = ready();
        for (gen, key_type, mac) in [
            (Mechanism::Sha1KeyGen, KeyType::SHA_1_HMAC, Mechanism::Sha1Hmac),
            (Mechanism::Sha224KeyGen, KeyType::SHA224_HMAC, Mechanism::Sha224Hmac),
            (Mechanism::Sha256KeyGen, KeyType::SHA256_HMAC, Mechanism::Sha256Hmac),
            (Mechanism::Sha384KeyGen, KeyType::SHA384_HMAC, Mechanism::Sha384Hmac),
            (Mechanism::Sha512KeyGen, KeyType::SHA512_HMAC, Mechanism::Sha512Hmac),
        ] {
            let key = session
                .generate_key(&gen, &[Attribute::Token(true), Attribute::ValueLen(64.into()), Attribute::Sign(true)])
                .unwrap();
            let attrs = session.get_attributes(key, &[AttributeType::KeyType]).unwrap();
            assert_eq!(attrs, [Attribute::KeyType(key_type)]);
            let tag = session.sign(&mac, key, b"data").unwrap();
            session.verify(&mac, key, b"data", &tag).unwrap();
            // The key of one hash is not a key of another.
            let other = if key_type == KeyType::SHA_1_HMAC { Mechanism::Sha256Hmac } else { Mechanism::Sha1Hmac };
            expect_rv(session.sign(&other, key, b"data"), RvError::KeyTypeInconsistent, Function::SignInit);
        }
    });
}
