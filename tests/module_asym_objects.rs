//! Certificates (created, their subject, issuer and serial read from the certificate,
//! found by CKA_ID beside their key), RSA key wrapping (OAEP round trips checked by the
//! `rsa` crate, CKM_RSA_PKCS unwrapping that tells nothing of the padding, wrapped blobs
//! that fail their check), CKA_WRAP_TEMPLATE / CKA_UNWRAP_TEMPLATE kept and enforced, and
//! `kmstoken import` of the PEM and DER files openssl writes.

mod asym;
mod common;

use asym::*;
use common::raw::{raw, sh};
use common::*;
use cryptoki::context::Function;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, CertificateType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki_sys::*;
use serde_json::Value;
use std::path::Path;

/// DER Name `CN=<cn>` as openssl writes it (a UTF8String).
fn name_cn(cn: &str) -> Vec<u8> {
    let atv = [vec![0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, cn.len() as u8], cn.as_bytes().to_vec()].concat();
    let seq = [vec![0x30, atv.len() as u8], atv].concat();
    let set = [vec![0x31, seq.len() as u8], seq].concat();
    [vec![0x30, set.len() as u8], set].concat()
}

fn cert_template(der: &[u8], id: &[u8]) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::CERTIFICATE),
        Attribute::CertificateType(CertificateType::X_509),
        Attribute::Token(true),
        Attribute::Id(id.to_vec()),
        Attribute::Label(b"cert".to_vec()),
        Attribute::Value(der.to_vec()),
    ]
}

#[test]
fn certificates_are_read_and_found_beside_their_key() {
    scenario!(|s| {
        let (p, slot, session) = ready();
        let dir = s.dir();
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "k.pem",
                "-subj",
                "/CN=kmstoken cert",
                "-set_serial",
                "0x1234",
                "-days",
                "30",
                "-outform",
                "DER",
                "-out",
                "c.der",
            ],
        );
        let der = std::fs::read(dir.join("c.der")).unwrap();
        let id = vec![0xce, 0x47];
        let (_public, private) =
            ec_pair(&session, P256, &[Attribute::Token(true)], &[Attribute::Token(true), Attribute::Id(id.clone())]);
        let cert = create(&session, &cert_template(&der, &id));
        assert_eq!(bytes(&session, cert, AttributeType::Subject), name_cn("kmstoken cert"));
        assert_eq!(bytes(&session, cert, AttributeType::Issuer), name_cn("kmstoken cert"), "self-signed");
        assert_eq!(bytes(&session, cert, AttributeType::SerialNumber), [0x02, 0x02, 0x12, 0x34]);
        assert_eq!(bytes(&session, cert, AttributeType::Value), der);
        let attrs = session.get_attributes(cert, &[AttributeType::Private, AttributeType::Token]).unwrap();
        assert!(attrs.contains(&Attribute::Private(false)), "certificates are public by default");
        // Found by CKA_ID beside its key (and the key's public half).
        let found = session.find_objects(&[Attribute::Id(id.clone())]).unwrap();
        assert_eq!(found.len(), 3);
        assert!(found.contains(&cert) && found.contains(&private));
        let found =
            session.find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE), Attribute::Id(id.clone())]).unwrap();
        assert_eq!(found, vec![cert]);
        // Public: found and read without login, in another session too.
        session.logout().unwrap();
        let ro = p.open_ro_session(slot).unwrap();
        let found = ro.find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE), Attribute::Id(id.clone())]).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(bytes(&ro, found[0], AttributeType::Subject), name_cn("kmstoken cert"));
        session.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        // The caller's own subject stays.
        let mut t = cert_template(&der, &[1]);
        t.push(Attribute::Subject(b"given".to_vec()));
        let c = create(&session, &t);
        assert_eq!(bytes(&session, c, AttributeType::Subject), b"given");
        assert_eq!(bytes(&session, c, AttributeType::Issuer), name_cn("kmstoken cert"));
    });
}

#[test]
fn a_value_that_is_no_certificate_is_refused() {
    scenario!(|s| {
        let (_p, _s, session) = ready();
        openssl(
            s.dir(),
            &[
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "k.pem", "-subj", "/CN=x", "-outform",
                "DER", "-out", "c.der",
            ],
        );
        let der = std::fs::read(s.dir().join("c.der")).unwrap();
        for bad in [b"not a certificate".to_vec(), der[..der.len() - 1].to_vec(), [der.clone(), vec![0]].concat()] {
            expect_rv(
                session.create_object(&cert_template(&bad, &[1])),
                RvError::AttributeValueInvalid,
                Function::CreateObject,
            );
        }
        let no_value = &cert_template(&der, &[1])[..5];
        expect_rv(session.create_object(no_value), RvError::TemplateIncomplete, Function::CreateObject);
        create(&session, &cert_template(&der, &[1]));
    });
}

/// A readable (not sensitive, extractable) session AES key and its value.
fn aes(session: &Session) -> (ObjectHandle, Vec<u8>) {
    let value = random_bytes(32);
    (create(session, &readable_template(KeyType::AES, &value)), value)
}

fn unwrap_template(value_len: Option<u64>) -> Vec<Attribute> {
    let mut t = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ];
    if let Some(n) = value_len {
        t.push(Attribute::ValueLen(n.into()));
    }
    t
}

#[test]
fn rsa_oaep_wraps_and_unwraps_secret_keys() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let oracle = rsa_oracle_key(2048);
        let public = create(&session, &rsa_public_template(&oracle.to_public_key()));
        let private = create(&session, &rsa_private_template(&oracle));
        let (key, value) = aes(&session);
        for h in [H::Sha1, H::Sha256] {
            for label in [&b""[..], b"wrap label"] {
                let m = oaep(h, label);
                let wrapped = session.wrap_key(&m, public, key).expect("C_WrapKey");
                assert_eq!(wrapped.len(), 256);
                // The oracle opens it.
                assert_eq!(oracle.decrypt(oracle_oaep(h, label), &wrapped).unwrap(), value);
                // The module unwraps it into a key of the same value.
                let k = session.unwrap_key(&m, private, &wrapped, &unwrap_template(None)).expect("C_UnwrapKey");
                assert_eq!(bytes(&session, k, AttributeType::Value), value);
                let attrs = session.get_attributes(k, &[AttributeType::Local, AttributeType::ValueLen]).unwrap();
                assert!(attrs.contains(&Attribute::Local(false)));
                assert!(attrs.contains(&Attribute::ValueLen(32.into())));
                // And what the oracle wraps.
                let fresh = random_bytes(16);
                let blob =
                    oracle.to_public_key().encrypt(&mut rsa::rand_core::OsRng, oracle_oaep(h, label), &fresh).unwrap();
                let k = session.unwrap_key(&m, private, &blob, &unwrap_template(None)).unwrap();
                assert_eq!(bytes(&session, k, AttributeType::Value), fresh);
                // A blob that fails its check, another label.
                let mut bad = wrapped.clone();
                bad[7] ^= 0x40;
                expect_rv(
                    session.unwrap_key(&m, private, &bad, &unwrap_template(None)),
                    RvError::WrappedKeyInvalid,
                    Function::UnwrapKey,
                );
                expect_rv(
                    session.unwrap_key(&oaep(h, b"another"), private, &wrapped, &unwrap_template(None)),
                    RvError::WrappedKeyInvalid,
                    Function::UnwrapKey,
                );
                // As data, the same blob is encrypted data that fails its check.
                expect_rv(session.decrypt(&m, private, &bad), RvError::EncryptedDataInvalid, Function::Decrypt);
            }
        }
        // Only secret keys are wrapped; a key that may not leave is not.
        expect_rv(
            session.wrap_key(&oaep(H::Sha256, b""), public, private),
            RvError::KeyNotWrappable,
            Function::WrapKey,
        );
        let locked = create(&session, &secret_template(KeyType::AES, &[5; 32]));
        expect_rv(
            session.wrap_key(&oaep(H::Sha256, b""), public, locked),
            RvError::KeyUnextractable,
            Function::WrapKey,
        );
        let mut t = readable_template(KeyType::AES, &[6; 32]);
        t.push(Attribute::WrapWithTrusted(true));
        let trusted_only = create(&session, &t);
        expect_rv(
            session.wrap_key(&oaep(H::Sha256, b""), public, trusted_only),
            RvError::KeyNotWrappable,
            Function::WrapKey,
        );
        // Wrapping takes the public key, unwrapping the private one.
        expect_rv(
            session.wrap_key(&oaep(H::Sha256, b""), private, key),
            RvError::KeyFunctionNotPermitted,
            Function::WrapKey,
        );
    });
}

#[test]
fn token_key_pairs_wrap_when_their_usage_is_encryption() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let (key, value) = aes(&session);
        let (public, private) = rsa_pair(
            &session,
            2048,
            &[Attribute::Token(true), Attribute::Wrap(true)],
            &[Attribute::Token(true), Attribute::Unwrap(true)],
        );
        let m = oaep(H::Sha256, b"");
        let wrapped = session.wrap_key(&m, public, key).unwrap();
        let k = session.unwrap_key(&m, private, &wrapped, &unwrap_template(None)).unwrap();
        assert_eq!(bytes(&session, k, AttributeType::Value), value);
        // A token pair whose KMS usage is SIGN_VERIFY still wraps where its attributes say
        // so (CKA_WRAP and CKA_UNWRAP default to TRUE, as in SoftHSM2)...
        let (dpub, dpriv) =
            rsa_pair(&session, 2048, &[Attribute::Token(true)], &[Attribute::Sign(true), Attribute::Token(true)]);
        let w = session.wrap_key(&m, dpub, key).unwrap();
        session.unwrap_key(&m, dpriv, &w, &unwrap_template(None)).unwrap();
        // ...and one whose template turns them off does not.
        let (spub, spriv) = rsa_pair(
            &session,
            2048,
            &[Attribute::Token(true), Attribute::Wrap(false)],
            &[Attribute::Token(true), Attribute::Unwrap(false)],
        );
        expect_rv(session.wrap_key(&m, spub, key), RvError::KeyFunctionNotPermitted, Function::WrapKey);
        expect_rv(
            session.unwrap_key(&m, spriv, &wrapped, &unwrap_template(None)),
            RvError::KeyFunctionNotPermitted,
            Function::UnwrapKey,
        );
    });
}

#[test]
fn rsa_pkcs_unwrap_tells_nothing_of_the_padding() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let oracle = rsa_oracle_key(2048);
        let public = create(&session, &rsa_public_template(&oracle.to_public_key()));
        let private = create(&session, &rsa_private_template(&oracle));
        let (key, value) = aes(&session);
        // A round trip, and the oracle opens the blob.
        let wrapped = session.wrap_key(&Mechanism::RsaPkcs, public, key).unwrap();
        assert_eq!(oracle.decrypt(rsa::Pkcs1v15Encrypt, &wrapped).unwrap(), value);
        for len in [None, Some(32)] {
            let k = session.unwrap_key(&Mechanism::RsaPkcs, private, &wrapped, &unwrap_template(len)).unwrap();
            assert_eq!(bytes(&session, k, AttributeType::Value), value);
        }
        // Blobs whose padding is bad (random values below the modulus, a valid padding of a
        // value of the wrong length) unwrap like good ones: to a key of the length asked.
        let short = oracle.to_public_key().encrypt(&mut rsa::rand_core::OsRng, rsa::Pkcs1v15Encrypt, &[1; 20]).unwrap();
        let mut blobs = vec![short];
        for _ in 0..8 {
            let mut b = random_bytes(256);
            b[0] &= 0x7f;
            blobs.push(b);
        }
        for blob in &blobs {
            let k = session
                .unwrap_key(&Mechanism::RsaPkcs, private, blob, &unwrap_template(Some(16)))
                .expect("a bad padding unwraps all the same");
            let v = bytes(&session, k, AttributeType::Value);
            assert_eq!(v.len(), 16);
            // Without CKA_VALUE_LEN the key still has an AES length.
            let k = session.unwrap_key(&Mechanism::RsaPkcs, private, blob, &unwrap_template(None)).unwrap();
            assert!([16, 24, 32].contains(&bytes(&session, k, AttributeType::Value).len()));
        }
        // The right padding with another length than CKA_VALUE_LEN: a random key.
        let k = session.unwrap_key(&Mechanism::RsaPkcs, private, &wrapped, &unwrap_template(Some(16))).unwrap();
        assert_ne!(bytes(&session, k, AttributeType::Value), value[..16]);
        // What the ciphertext shows publicly is still an error: its length, a value not
        // below the modulus.
        expect_rv(
            session.unwrap_key(&Mechanism::RsaPkcs, private, &[0xff; 256], &unwrap_template(Some(16))),
            RvError::WrappedKeyInvalid,
            Function::UnwrapKey,
        );
        expect_rv(
            session.unwrap_key(&Mechanism::RsaPkcs, private, &wrapped[1..], &unwrap_template(Some(16))),
            RvError::WrappedKeyLenRange,
            Function::UnwrapKey,
        );
    });
}

/// C_CreateObject with one more attribute whose value is a nested CK_ATTRIBUTE array of
/// `inner` (`len` overrides its length in bytes).
fn create_with_array(
    session: &Session,
    base: &[Attribute],
    ty: CK_ATTRIBUTE_TYPE,
    inner: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
    len: Option<usize>,
) -> Result<CK_OBJECT_HANDLE, CK_RV> {
    let mut values: Vec<Vec<u8>> = inner.iter().map(|(_, v)| v.clone()).collect();
    let mut nested: Vec<CK_ATTRIBUTE> = inner
        .iter()
        .zip(values.iter_mut())
        .map(|((t, _), v)| CK_ATTRIBUTE {
            type_: *t,
            pValue: v.as_mut_ptr() as *mut std::ffi::c_void,
            ulValueLen: v.len() as CK_ULONG,
        })
        .collect();
    let mut t: Vec<CK_ATTRIBUTE> = base.iter().map(CK_ATTRIBUTE::from).collect();
    t.push(CK_ATTRIBUTE {
        type_: ty,
        pValue: nested.as_mut_ptr() as *mut std::ffi::c_void,
        ulValueLen: len.unwrap_or(std::mem::size_of_val(nested.as_slice())) as CK_ULONG,
    });
    let mut obj = 0;
    // SAFETY: the template, the nested array and its values live across the call.
    let rv = unsafe { raw().lib().C_CreateObject(sh(session), t.as_mut_ptr(), t.len() as CK_ULONG, &mut obj) };
    if rv == CKR_OK {
        Ok(obj)
    } else {
        Err(rv)
    }
}

/// C_GetAttributeValue of an array attribute by the two-call convention, applied to the
/// array and then to its elements.
fn get_array(session: &Session, obj: CK_OBJECT_HANDLE, ty: CK_ATTRIBUTE_TYPE) -> Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)> {
    let lib = raw();
    let call = |a: &mut CK_ATTRIBUTE| unsafe { lib.lib().C_GetAttributeValue(sh(session), obj, a, 1) };
    let size = std::mem::size_of::<CK_ATTRIBUTE>();
    let mut a = CK_ATTRIBUTE { type_: ty, pValue: std::ptr::null_mut(), ulValueLen: 0 };
    assert_eq!(call(&mut a), CKR_OK);
    assert_eq!(a.ulValueLen as usize % size, 0);
    let n = a.ulValueLen as usize / size;
    let blank = CK_ATTRIBUTE { type_: 0, pValue: std::ptr::null_mut(), ulValueLen: 0 };
    // An array too short for it.
    if n > 0 {
        let mut short = vec![blank; n - 1];
        let mut a = CK_ATTRIBUTE { type_: ty, pValue: short.as_mut_ptr() as *mut _, ulValueLen: ((n - 1) * size) as _ };
        assert_eq!(call(&mut a), CKR_BUFFER_TOO_SMALL);
        assert_eq!(a.ulValueLen, CK_UNAVAILABLE_INFORMATION);
    }
    // The elements' types and lengths, then their values.
    let mut elems = vec![blank; n];
    let mut a = CK_ATTRIBUTE { type_: ty, pValue: elems.as_mut_ptr() as *mut _, ulValueLen: (n * size) as _ };
    assert_eq!(call(&mut a), CKR_OK);
    let mut bufs: Vec<Vec<u8>> = elems.iter().map(|e| vec![0u8; e.ulValueLen as usize]).collect();
    for (e, b) in elems.iter_mut().zip(bufs.iter_mut()) {
        e.pValue = b.as_mut_ptr() as *mut _;
    }
    if let Some(e) = elems.iter_mut().find(|e| e.ulValueLen > 0) {
        // One element's buffer short: CKR_BUFFER_TOO_SMALL, that element unavailable.
        let full = e.ulValueLen;
        e.ulValueLen -= 1;
        let mut a = CK_ATTRIBUTE { type_: ty, pValue: elems.as_mut_ptr() as *mut _, ulValueLen: (n * size) as _ };
        assert_eq!(call(&mut a), CKR_BUFFER_TOO_SMALL);
        let e = elems.iter_mut().find(|e| e.ulValueLen == CK_UNAVAILABLE_INFORMATION).expect("the short element");
        e.ulValueLen = full;
    }
    let mut a = CK_ATTRIBUTE { type_: ty, pValue: elems.as_mut_ptr() as *mut _, ulValueLen: (n * size) as _ };
    assert_eq!(call(&mut a), CKR_OK);
    elems
        .iter()
        .zip(bufs)
        .map(|(e, mut b)| {
            (e.type_, {
                b.truncate(e.ulValueLen as usize);
                b
            })
        })
        .collect()
}

#[test]
fn wrap_and_unwrap_templates_are_kept_and_enforced() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let oracle = rsa_oracle_key(2048);
        let ul = |v: CK_ULONG| v.to_ne_bytes().to_vec();
        let wrap_t = vec![(CKA_KEY_TYPE, ul(CKK_AES)), (CKA_VALUE_LEN, ul(32))];
        let unwrap_t = vec![(CKA_LABEL, b"unwrapped".to_vec()), (CKA_EXTRACTABLE, vec![1])];
        let public = create_with_array(
            &session,
            &rsa_public_template(&oracle.to_public_key()),
            CKA_WRAP_TEMPLATE,
            &wrap_t,
            None,
        )
        .expect("a public key with CKA_WRAP_TEMPLATE");
        let private = create_with_array(&session, &rsa_private_template(&oracle), CKA_UNWRAP_TEMPLATE, &unwrap_t, None)
            .expect("a private key with CKA_UNWRAP_TEMPLATE");
        assert_eq!(get_array(&session, public, CKA_WRAP_TEMPLATE), wrap_t);
        assert_eq!(get_array(&session, private, CKA_UNWRAP_TEMPLATE), unwrap_t);
        let (public, private) = (common::handle_of(public), common::handle_of(private));

        // Only keys that match the wrap template are wrapped.
        let m = oaep(H::Sha256, b"");
        let (key, value) = aes(&session);
        let wrapped = session.wrap_key(&m, public, key).expect("an AES-256 key matches");
        let other = create(&session, &readable_template(KeyType::AES, &[3; 16]));
        expect_rv(session.wrap_key(&m, public, other), RvError::KeyNotWrappable, Function::WrapKey);
        let generic = create(&session, &readable_template(KeyType::GENERIC_SECRET, &[3; 32]));
        expect_rv(session.wrap_key(&m, public, generic), RvError::KeyNotWrappable, Function::WrapKey);

        // Unwrapped keys get the unwrap template, then the caller's; a contradiction is
        // an inconsistent template, a repetition is not.
        let base = vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Sensitive(false),
        ];
        let k = session.unwrap_key(&m, private, &wrapped, &base).unwrap();
        assert_eq!(bytes(&session, k, AttributeType::Label), b"unwrapped");
        assert_eq!(bytes(&session, k, AttributeType::Value), value, "extractable by the unwrap template");
        let mut same = base.clone();
        same.push(Attribute::Label(b"unwrapped".to_vec()));
        session.unwrap_key(&m, private, &wrapped, &same).unwrap();
        for conflict in [Attribute::Label(b"mine".to_vec()), Attribute::Extractable(false)] {
            let mut t = base.clone();
            t.push(conflict);
            expect_rv(
                session.unwrap_key(&m, private, &wrapped, &t),
                RvError::TemplateInconsistent,
                Function::UnwrapKey,
            );
        }

        // Where they do not belong, or malformed, they are refused.
        let aes_t = readable_template(KeyType::AES, &[1; 16]);
        assert_eq!(
            create_with_array(&session, &aes_t, CKA_DERIVE_TEMPLATE, &unwrap_t, None),
            Err(CKR_ATTRIBUTE_TYPE_INVALID)
        );
        assert_eq!(
            create_with_array(&session, &rsa_private_template(&oracle), CKA_WRAP_TEMPLATE, &wrap_t, None),
            Err(CKR_ATTRIBUTE_TYPE_INVALID)
        );
        assert_eq!(
            create_with_array(
                &session,
                &rsa_public_template(&oracle.to_public_key()),
                CKA_UNWRAP_TEMPLATE,
                &unwrap_t,
                None
            ),
            Err(CKR_ATTRIBUTE_TYPE_INVALID)
        );
        assert_eq!(
            create_with_array(&session, &aes_t, CKA_WRAP_TEMPLATE, &wrap_t, Some(10)),
            Err(CKR_ATTRIBUTE_VALUE_INVALID)
        );
        assert_eq!(
            create_with_array(&session, &aes_t, CKA_WRAP_TEMPLATE, &[(CKA_UNWRAP_TEMPLATE, Vec::new())], None),
            Err(CKR_ATTRIBUTE_VALUE_INVALID),
            "arrays do not nest"
        );
        // CKA_ALLOWED_MECHANISMS also carries CKF_ARRAY_ATTRIBUTE, but is an array of
        // mechanisms: it stays one.
        let mut t = readable_template(KeyType::AES, &[2; 16]);
        let allowed = vec![cryptoki::mechanism::MechanismType::AES_KEY_WRAP];
        t.push(Attribute::AllowedMechanisms(allowed.clone()));
        let k = create(&session, &t);
        let got = session.get_attributes(k, &[AttributeType::AllowedMechanisms]).unwrap();
        assert_eq!(got, vec![Attribute::AllowedMechanisms(allowed)]);
        // An empty template restricts nothing; a key without one has no such attribute.
        let open = create_with_array(&session, &aes_t, CKA_WRAP_TEMPLATE, &[], None).unwrap();
        assert!(get_array(&session, open, CKA_WRAP_TEMPLATE).is_empty());
        let (rv, res) = raw().get_attributes(
            sh(&session),
            key.handle(),
            &[common::raw::AttrQuery { ty: CKA_WRAP_TEMPLATE, cap: None }],
        );
        expect_rv(rv, RvError::AttributeTypeInvalid, Function::GetAttributeValue);
        assert_eq!(res[0].len, CK_UNAVAILABLE_INFORMATION);
    });
}

// ---- kmstoken import

fn kmstoken(s: &common::Scenario, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_kmstoken"))
        .current_dir(s.dir())
        .arg("--output")
        .arg("json")
        .args(args)
        .env("KMSTOKEN_CONF", s.config_path())
        .env("HOME", s.dir().join("home"))
        .env_remove("KMSTOKEN_PIN")
        .env_remove("KMSTOKEN_TOKEN")
        .env_remove("KMSTOKEN_LOG")
        .output()
        .expect("run kmstoken")
}

/// `kmstoken import FILE --token LABEL --label L --id HEX --pin USER_PIN`: its JSON.
fn import(s: &common::Scenario, file: &str, label: &str, id: &str, extra: &[&str]) -> Value {
    let mut args = vec!["import", file, "--token", LABEL, "--label", label, "--id", id, "--pin", USER_PIN];
    args.extend_from_slice(extra);
    let out = kmstoken(s, &args);
    assert!(out.status.success(), "kmstoken import {file}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

fn objects(json: &Value) -> Vec<String> {
    json["Imported"].as_array().unwrap().iter().map(|o| o["Object"].as_str().unwrap().to_string()).collect()
}

fn find_one(session: &Session, class: ObjectClass, id: &[u8]) -> ObjectHandle {
    let found = session.find_objects(&[Attribute::Class(class), Attribute::Id(id.to_vec())]).unwrap();
    assert_eq!(found.len(), 1, "{class:?} with id {id:02x?}");
    found[0]
}

/// The raw point of an EC key file's public key, as openssl reads it.
fn openssl_ec_point(dir: &Path, key: &str) -> Vec<u8> {
    let spki = openssl(dir, &["pkey", "-in", key, "-pubout", "-outform", "DER"]);
    let n = if spki.len() > 100 { 97 } else { 65 };
    spki[spki.len() - n..].to_vec()
}

fn check_private_key(session: &Session, key: ObjectHandle, label: &str) {
    let attrs = session
        .get_attributes(
            key,
            &[AttributeType::Sensitive, AttributeType::Extractable, AttributeType::Token, AttributeType::Private],
        )
        .unwrap();
    for a in
        [Attribute::Sensitive(true), Attribute::Extractable(false), Attribute::Token(true), Attribute::Private(true)]
    {
        assert!(attrs.contains(&a), "{a:?}");
    }
    assert_eq!(bytes(session, key, AttributeType::Label), label.as_bytes());
}

#[test]
fn kmstoken_import_takes_what_openssl_writes() {
    scenario!(|s| {
        let (_p, _s, session) = ready();
        let dir = s.dir();
        // An EC key (PKCS#8) and its certificate in one PEM file.
        openssl(dir, &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ec.pem"]);
        openssl(dir, &["req", "-x509", "-key", "ec.pem", "-subj", "/CN=ec leaf", "-days", "5", "-out", "ec.crt"]);
        let both = [std::fs::read(dir.join("ec.pem")).unwrap(), std::fs::read(dir.join("ec.crt")).unwrap()].concat();
        std::fs::write(dir.join("both.pem"), both).unwrap();
        let json = import(s, "both.pem", "ec key", "e1", &[]);
        assert_eq!(objects(&json), ["EC private key", "EC public key", "X.509 certificate"]);
        let private = find_one(&session, ObjectClass::PRIVATE_KEY, &[0xe1]);
        let public = find_one(&session, ObjectClass::PUBLIC_KEY, &[0xe1]);
        let cert = find_one(&session, ObjectClass::CERTIFICATE, &[0xe1]);
        check_private_key(&session, private, "ec key");
        assert_eq!(bytes(&session, cert, AttributeType::Subject), name_cn("ec leaf"));
        // One KMS key: the public half shares the private key's key id.
        let key_id = json["Imported"][0]["KeyId"].as_str().unwrap();
        assert_eq!(json["Imported"][1]["KeyId"].as_str(), Some(key_id));
        // The token signs with the imported key; p256 verifies with openssl's view of it.
        let point = openssl_ec_point(dir, "ec.pem");
        assert_eq!(point_of(&session, public), point);
        let hash = H::Sha256.digest(b"imported by kmstoken");
        let sig = session.sign(&Mechanism::Ecdsa, private, &hash).unwrap();
        let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
        use p256::ecdsa::signature::hazmat::PrehashVerifier;
        vk.verify_prehash(&hash, &p256::ecdsa::Signature::from_slice(&sig).unwrap()).expect("p256 verifies");

        // A SEC1 EC key (after its EC PARAMETERS block) on P-384.
        openssl(dir, &["ecparam", "-name", "secp384r1", "-genkey", "-out", "sec1.pem"]);
        let json = import(s, "sec1.pem", "sec1", "5e", &["--key-usage", "KEY_AGREEMENT"]);
        assert_eq!(objects(&json), ["EC private key", "EC public key"]);
        let private = find_one(&session, ObjectClass::PRIVATE_KEY, &[0x5e]);
        let public = find_one(&session, ObjectClass::PUBLIC_KEY, &[0x5e]);
        assert_eq!(bytes(&session, public, AttributeType::EcParams), P384);
        assert_eq!(point_of(&session, public), openssl_ec_point(dir, "sec1.pem"));
        let attrs = session.get_attributes(private, &[AttributeType::Derive, AttributeType::Sign]).unwrap();
        assert!(attrs.contains(&Attribute::Derive(true)) && attrs.contains(&Attribute::Sign(false)));

        // RSA: PKCS#8 and PKCS#1 ("RSA PRIVATE KEY") files.
        openssl(dir, &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "rsa.pem"]);
        openssl(dir, &["rsa", "-in", "rsa.pem", "-traditional", "-out", "rsa1.pem"]);
        openssl(dir, &["pkey", "-in", "rsa.pem", "-pubout", "-out", "rsa.pub"]);
        std::fs::write(dir.join("data"), b"signed by an imported key").unwrap();
        for (file, id) in [("rsa.pem", "a8"), ("rsa1.pem", "a1")] {
            let json = import(s, file, file, id, &[]);
            assert_eq!(objects(&json), ["RSA private key", "RSA public key"]);
            assert_eq!(json["Imported"][0]["Bits"], 2048);
            let id = [u8::from_str_radix(id, 16).unwrap()];
            let private = find_one(&session, ObjectClass::PRIVATE_KEY, &id);
            check_private_key(&session, private, file);
            let sig = session.sign(&Mechanism::Sha256RsaPkcs, private, b"signed by an imported key").unwrap();
            std::fs::write(dir.join("sig"), sig).unwrap();
            openssl(dir, &["dgst", "-sha256", "-verify", "rsa.pub", "-signature", "sig", "data"]);
        }
        // An RSA key for decryption only.
        openssl(dir, &["genpkey", "-algorithm", "RSA", "-out", "dec.pem"]);
        import(s, "dec.pem", "dec", "dd", &["--key-usage", "ENCRYPT_DECRYPT"]);
        let private = find_one(&session, ObjectClass::PRIVATE_KEY, &[0xdd]);
        let public = find_one(&session, ObjectClass::PUBLIC_KEY, &[0xdd]);
        let ct = session.encrypt(&oaep(H::Sha256, b""), public, b"for the imported key").unwrap();
        assert_eq!(session.decrypt(&oaep(H::Sha256, b""), private, &ct).unwrap(), b"for the imported key");
        expect_rv(
            session.sign(&Mechanism::Sha256RsaPkcs, private, b"x"),
            RvError::KeyFunctionNotPermitted,
            Function::SignInit,
        );

        // A public key alone, in DER.
        openssl(dir, &["pkey", "-in", "rsa.pem", "-pubout", "-outform", "DER", "-out", "pub.der"]);
        let json = import(s, "pub.der", "public", "0b", &[]);
        assert_eq!(objects(&json), ["RSA public key"]);
        let public = find_one(&session, ObjectClass::PUBLIC_KEY, &[0x0b]);
        let rsa_private = find_one(&session, ObjectClass::PRIVATE_KEY, &[0xa8]);
        let sig = session.sign(&Mechanism::Sha256RsaPkcs, rsa_private, b"x").unwrap();
        session.verify(&Mechanism::Sha256RsaPkcs, public, b"x", &sig).expect("the imported public key verifies");
    });
}

#[test]
fn kmstoken_import_of_a_chain_and_its_errors() {
    scenario!(|s| {
        let (_p, _s, session) = ready();
        let dir = s.dir();
        openssl(
            dir,
            &[
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-subj", "/CN=ca", "-out",
                "ca.crt",
            ],
        );
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "leaf.key",
                "-subj",
                "/CN=leaf",
                "-out",
                "leaf.csr",
            ],
        );
        openssl(
            dir,
            &["x509", "-req", "-in", "leaf.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-days", "5", "-out", "leaf.crt"],
        );
        // The CA first: the leaf is still the one that gets the key's id and label.
        let chain = ["ca.crt", "leaf.crt", "leaf.key"].map(|f| std::fs::read(dir.join(f)).unwrap()).concat();
        std::fs::write(dir.join("chain.pem"), chain).unwrap();
        let json = import(s, "chain.pem", "leaf", "1eaf", &[]);
        assert_eq!(objects(&json), ["EC private key", "EC public key", "X.509 certificate", "X.509 certificate"]);
        let leaf = find_one(&session, ObjectClass::CERTIFICATE, &[0x1e, 0xaf]);
        assert_eq!(bytes(&session, leaf, AttributeType::Subject), name_cn("leaf"));
        assert_eq!(bytes(&session, leaf, AttributeType::Issuer), name_cn("ca"));
        let ca = session
            .find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE), Attribute::Label(b"leaf #2".to_vec())])
            .unwrap();
        assert_eq!(ca.len(), 1);
        assert_eq!(bytes(&session, ca[0], AttributeType::Subject), name_cn("ca"));
        // A certificate alone.
        let json = import(s, "ca.crt", "ca alone", "ca", &[]);
        assert_eq!(objects(&json), ["X.509 certificate"]);
        find_one(&session, ObjectClass::CERTIFICATE, &[0xca]);

        // Errors: an encrypted key, no key at all, two keys, an unknown usage, bad hex.
        openssl(dir, &["pkcs8", "-topk8", "-in", "leaf.key", "-passout", "pass:secret", "-out", "enc.pem"]);
        std::fs::write(dir.join("junk.pem"), b"this is not PEM or DER").unwrap();
        let two = ["leaf.key", "ca.key"].map(|f| std::fs::read(dir.join(f)).unwrap()).concat();
        std::fs::write(dir.join("two.pem"), two).unwrap();
        for args in [
            vec!["import", "enc.pem", "--label", "x", "--id", "01"],
            vec!["import", "junk.pem", "--label", "x", "--id", "01"],
            vec!["import", "two.pem", "--label", "x", "--id", "01"],
            vec!["import", "leaf.key", "--label", "x", "--id", "01", "--key-usage", "ENCRYPT_DECRYPT"],
            vec!["import", "leaf.key", "--label", "x", "--id", "0g"],
            vec!["import", "missing.pem", "--label", "x", "--id", "01"],
        ] {
            let mut args = args.clone();
            args.extend(["--pin", USER_PIN]);
            let out = kmstoken(s, &args);
            assert_eq!(out.status.code(), Some(254), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
            assert!(!out.stderr.is_empty());
        }
        let out = kmstoken(s, &["import", "leaf.key", "--label", "x", "--id", "01", "--pin", "wrong-pin-0000"]);
        assert_eq!(out.status.code(), Some(254));
        // Nothing was made by the failures.
        assert!(session.find_objects(&[Attribute::Id(vec![1])]).unwrap().is_empty());
    });
}
