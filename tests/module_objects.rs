//! Objects: creating data objects and secret keys, the attribute rules of create, read,
//! change, copy and destroy, object sizes, and the attributes the token sets itself.

mod common;

use common::raw::{raw, sh, AttrQuery};
use common::*;
use cryptoki::context::Function;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;

fn expect_create_error(session: &Session, template: &[Attribute], rv: RvError) {
    expect_rv(session.create_object(template), rv, Function::CreateObject);
}

#[test]
fn data_objects_and_secret_keys_are_created() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let r = raw();
        let h = sh(&session);
        let data = create(&session, &data_template("a data object", b"some bytes"));
        assert_eq!(r.attr(h, data.handle(), CKA_VALUE).unwrap(), b"some bytes");
        assert_eq!(r.attr(h, data.handle(), CKA_LABEL).unwrap(), b"a data object");
        assert_eq!(r.attr_ulong(h, data.handle(), CKA_CLASS), CKO_DATA);
        assert!(!r.attr_bool(h, data.handle(), CKA_PRIVATE), "data objects are public by default");
        assert!(!r.attr_bool(h, data.handle(), CKA_TOKEN));

        let value = random_bytes(32);
        let mut t = key_template(KeyType::AES, &value);
        t.extend([Attribute::Token(true), Attribute::Label(b"aes".to_vec()), Attribute::Id(vec![1, 2, 3])]);
        let key = create(&session, &t).handle();
        assert_eq!(r.attr_ulong(h, key, CKA_KEY_TYPE), CKK_AES);
        assert_eq!(r.attr_ulong(h, key, CKA_VALUE_LEN), 32);
        assert_eq!(r.attr(h, key, CKA_ID).unwrap(), [1, 2, 3]);
        assert!(r.attr_bool(h, key, CKA_TOKEN));
        // Keys are private by default; a value handed in is no secret from the caller.
        assert!(r.attr_bool(h, key, CKA_PRIVATE));
        assert!(!r.attr_bool(h, key, CKA_SENSITIVE));
        assert!(r.attr_bool(h, key, CKA_EXTRACTABLE));
        assert_eq!(r.attr(h, key, CKA_VALUE).unwrap(), value);
        // Made outside the token: not local, never "always sensitive".
        assert!(!r.attr_bool(h, key, CKA_LOCAL));
        assert!(!r.attr_bool(h, key, CKA_ALWAYS_SENSITIVE));
        assert!(!r.attr_bool(h, key, CKA_NEVER_EXTRACTABLE));
        assert_eq!(r.attr_ulong(h, key, CKA_KEY_GEN_MECHANISM), CK_UNAVAILABLE_INFORMATION);

        let secret = random_bytes(48);
        let g = create(&session, &readable_template(KeyType::GENERIC_SECRET, &secret)).handle();
        assert_eq!(r.attr_ulong(h, g, CKA_KEY_TYPE), CKK_GENERIC_SECRET);
        assert_eq!(r.attr(h, g, CKA_VALUE).unwrap(), secret);
        assert_eq!(r.attr_ulong(h, g, CKA_VALUE_LEN), 48);
    });
}

#[test]
fn create_templates_are_checked() {
    scenario!(|_| {
        let (p, s, session) = ready();
        let mut t = secret_template(KeyType::AES, &[7; 16]);
        t.push(Attribute::Local(true));
        expect_create_error(&session, &t, RvError::AttributeReadOnly);
        let no_value = vec![Attribute::Class(ObjectClass::SECRET_KEY), Attribute::KeyType(KeyType::AES)];
        expect_create_error(&session, &no_value, RvError::TemplateIncomplete);
        expect_create_error(&session, &[Attribute::KeyType(KeyType::AES)], RvError::TemplateIncomplete);
        expect_create_error(&session, &secret_template(KeyType::AES, &[7; 15]), RvError::AttributeValueInvalid);
        expect_create_error(&session, &secret_template(KeyType::AES, &[]), RvError::AttributeValueInvalid);
        let mut t = secret_template(KeyType::AES, &[7; 16]);
        t.push(Attribute::VendorDefined((AttributeType::VendorDefined(0x8123_4567), vec![1])));
        expect_create_error(&session, &t, RvError::AttributeTypeInvalid);
        let mut t = secret_template(KeyType::AES, &[7; 16]);
        t.push(Attribute::Modulus(vec![1, 2, 3]));
        expect_create_error(&session, &t, RvError::AttributeTypeInvalid);
        let mut t = secret_template(KeyType::AES, &[7; 16]);
        t.push(Attribute::ValueLen(16.into()));
        expect_create_error(&session, &t, RvError::TemplateInconsistent);
        let mut t = secret_template(KeyType::AES, &[7; 16]);
        t.push(Attribute::UniqueId(b"mine".to_vec()));
        expect_create_error(&session, &t, RvError::AttributeReadOnly);
        // A user may not mark a key trusted.
        let mut t = secret_template(KeyType::AES, &[7; 16]);
        t.push(Attribute::Trusted(true));
        expect_create_error(&session, &t, RvError::AttributeReadOnly);

        // Token objects need an R/W session, private ones a user login.
        let ro = p.open_ro_session(s).unwrap();
        let mut t = data_template("ro", b"x");
        t.push(Attribute::Token(true));
        expect_create_error(&ro, &t, RvError::SessionReadOnly);
        session.logout().unwrap();
        expect_create_error(&session, &secret_template(KeyType::AES, &[7; 16]), RvError::UserNotLoggedIn);
        // A public data object needs no login.
        create(&session, &data_template("public", b"x"));
    });
}

#[test]
fn get_attribute_value_follows_the_rules() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let r = raw();
        let h = sh(&session);
        let mut t = secret_template(KeyType::AES, &[9; 16]);
        t.push(Attribute::Label(b"a label".to_vec()));
        let key = create(&session, &t).handle();

        // A sensitive value: CKR_ATTRIBUTE_SENSITIVE and no length.
        let (rv, res) = r.get_attributes(h, key, &[AttrQuery { ty: CKA_VALUE, cap: Some(64) }]);
        expect_rv(rv, RvError::AttributeSensitive, Function::GetAttributeValue);
        assert_eq!(res[0].len, CK_UNAVAILABLE_INFORMATION);
        // An attribute secret keys do not have.
        let (rv, res) = r.get_attributes(h, key, &[AttrQuery { ty: CKA_MODULUS, cap: None }]);
        expect_rv(rv, RvError::AttributeTypeInvalid, Function::GetAttributeValue);
        assert_eq!(res[0].len, CK_UNAVAILABLE_INFORMATION);
        // Length query, then the read.
        let (rv, res) = r.get_attributes(h, key, &[AttrQuery { ty: CKA_LABEL, cap: None }]);
        rv.unwrap();
        assert_eq!(res[0].len, 7);
        let (rv, res) = r.get_attributes(h, key, &[AttrQuery { ty: CKA_LABEL, cap: Some(7) }]);
        rv.unwrap();
        assert_eq!(res[0].value, b"a label");
        // A short buffer.
        let (rv, res) = r.get_attributes(h, key, &[AttrQuery { ty: CKA_LABEL, cap: Some(6) }]);
        expect_rv(rv, RvError::BufferTooSmall, Function::GetAttributeValue);
        assert_eq!(res[0].len, CK_UNAVAILABLE_INFORMATION);
        // Every attribute of a template is processed; the error is reported.
        let q = [
            AttrQuery { ty: CKA_LABEL, cap: Some(32) },
            AttrQuery { ty: CKA_VALUE, cap: Some(32) },
            AttrQuery { ty: CKA_KEY_TYPE, cap: Some(8) },
        ];
        let (rv, res) = r.get_attributes(h, key, &q);
        expect_rv(rv, RvError::AttributeSensitive, Function::GetAttributeValue);
        assert_eq!(res[0].value, b"a label");
        assert_eq!(res[1].len, CK_UNAVAILABLE_INFORMATION);
        assert_eq!(res[2].value, CKK_AES.to_ne_bytes());

        // Not sensitive and extractable: the value can be read.
        let readable = create(&session, &readable_template(KeyType::AES, &[5; 24])).handle();
        assert_eq!(r.attr(h, readable, CKA_VALUE).unwrap(), [5; 24]);
        // Extractable but sensitive, or not sensitive but unextractable: hidden.
        for (sensitive, extractable) in [(true, true), (false, false)] {
            let mut t = key_template(KeyType::AES, &[5; 16]);
            t.extend([Attribute::Sensitive(sensitive), Attribute::Extractable(extractable)]);
            let k = create(&session, &t).handle();
            expect_rv(r.attr(h, k, CKA_VALUE), RvError::AttributeSensitive, Function::GetAttributeValue);
        }
        expect_rv(r.attr(h, 0xdead, CKA_LABEL), RvError::ObjectHandleInvalid, Function::GetAttributeValue);
    });
}

#[test]
fn set_attribute_value_follows_the_rules() {
    scenario!(|_| {
        let (p, s, session) = ready();
        let r = raw();
        let h = sh(&session);
        let update = |obj: ObjectHandle, a: Attribute| session.update_attributes(obj, &[a]);

        let sensitive = aes_key(&session, &[1; 16]);
        expect_rv(
            update(sensitive, Attribute::Sensitive(false)),
            RvError::AttributeReadOnly,
            Function::SetAttributeValue,
        );
        let readable = create(&session, &readable_template(KeyType::AES, &[2; 16]));
        update(readable, Attribute::Sensitive(true)).unwrap();
        expect_rv(r.attr(h, readable.handle(), CKA_VALUE), RvError::AttributeSensitive, Function::GetAttributeValue);
        update(readable, Attribute::Extractable(false)).unwrap();
        expect_rv(
            update(readable, Attribute::Extractable(true)),
            RvError::AttributeReadOnly,
            Function::SetAttributeValue,
        );
        // Neither changes the history of the key.
        assert!(!r.attr_bool(h, readable.handle(), CKA_ALWAYS_SENSITIVE));
        expect_rv(update(readable, Attribute::Local(true)), RvError::AttributeReadOnly, Function::SetAttributeValue);
        expect_rv(
            update(readable, Attribute::KeyType(KeyType::GENERIC_SECRET)),
            RvError::AttributeReadOnly,
            Function::SetAttributeValue,
        );

        update(readable, Attribute::Label(b"renamed".to_vec())).unwrap();
        assert_eq!(label_of(&session, readable), b"renamed");
        // A refused template changes nothing.
        let both = [Attribute::Label(b"again".to_vec()), Attribute::Sensitive(false)];
        expect_rv(session.update_attributes(readable, &both), RvError::AttributeReadOnly, Function::SetAttributeValue);
        assert_eq!(label_of(&session, readable), b"renamed");

        let mut t = data_template("fixed", b"v");
        t.push(Attribute::Modifiable(false));
        let fixed = create(&session, &t);
        expect_rv(
            update(fixed, Attribute::Label(b"x".to_vec())),
            RvError::ActionProhibited,
            Function::SetAttributeValue,
        );

        let mut t = data_template("on token", b"v");
        t.push(Attribute::Token(true));
        let on_token = create(&session, &t);
        let ro = p.open_ro_session(s).unwrap();
        expect_rv(
            ro.update_attributes(on_token, &[Attribute::Label(b"x".to_vec())]),
            RvError::SessionReadOnly,
            Function::SetAttributeValue,
        );
        // A session object may change in an R/O session.
        ro.update_attributes(readable, &[Attribute::Label(b"from ro".to_vec())]).unwrap();
    });
}

#[test]
fn copy_object_follows_the_rules() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let r = raw();
        let h = sh(&session);
        let value = random_bytes(32);
        let mut t = readable_template(KeyType::AES, &value);
        t.push(Attribute::Label(b"original".to_vec()));
        let original = create(&session, &t);
        let copy =
            session.copy_object(original, &[Attribute::Label(b"copy".to_vec()), Attribute::Token(true)]).unwrap();
        assert_ne!(copy, original);
        assert_eq!(label_of(&session, copy), b"copy");
        assert_eq!(label_of(&session, original), b"original");
        assert_eq!(r.attr(h, copy.handle(), CKA_VALUE).unwrap(), value);
        assert!(r.attr_bool(h, copy.handle(), CKA_TOKEN));
        assert_ne!(
            r.attr(h, copy.handle(), CKA_UNIQUE_ID).unwrap(),
            r.attr(h, original.handle(), CKA_UNIQUE_ID).unwrap()
        );
        // The copy's attributes follow the same rules.
        expect_rv(
            session.copy_object(original, &[Attribute::Local(true)]),
            RvError::AttributeReadOnly,
            Function::CopyObject,
        );

        let mut t = secret_template(KeyType::AES, &[3; 16]);
        t.push(Attribute::Copyable(false));
        let uncopyable = create(&session, &t);
        expect_rv(session.copy_object(uncopyable, &[]), RvError::ActionProhibited, Function::CopyObject);
        expect_rv(session.copy_object(handle_of(0xdead), &[]), RvError::ObjectHandleInvalid, Function::CopyObject);
    });
}

#[test]
fn destroy_object_follows_the_rules() {
    scenario!(|_| {
        let (p, s, session) = ready();
        let r = raw();
        let mut t = data_template("kept", b"v");
        t.push(Attribute::Destroyable(false));
        let kept = create(&session, &t);
        expect_rv(session.destroy_object(kept), RvError::ActionProhibited, Function::DestroyObject);
        assert_eq!(label_of(&session, kept), b"kept");

        let mut t = data_template("on token", b"v");
        t.push(Attribute::Token(true));
        let on_token = create(&session, &t);
        let ro = p.open_ro_session(s).unwrap();
        expect_rv(ro.destroy_object(on_token), RvError::SessionReadOnly, Function::DestroyObject);
        session.destroy_object(on_token).unwrap();
        expect_rv(
            r.attr(sh(&session), on_token.handle(), CKA_LABEL),
            RvError::ObjectHandleInvalid,
            Function::GetAttributeValue,
        );
        expect_rv(session.destroy_object(on_token), RvError::ObjectHandleInvalid, Function::DestroyObject);

        let key = aes_key(&session, &[4; 16]);
        session.destroy_object(key).unwrap();
        expect_rv(
            r.attr(sh(&session), key.handle(), CKA_CLASS),
            RvError::ObjectHandleInvalid,
            Function::GetAttributeValue,
        );
    });
}

#[test]
fn object_size_grows_with_the_value() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let r = raw();
        let h = sh(&session);
        let small = create(&session, &data_template("d", &[1; 10])).handle();
        let big = create(&session, &data_template("d", &[1; 1010])).handle();
        let (small, big) = (r.object_size(h, small).unwrap(), r.object_size(h, big).unwrap());
        assert!(small >= 10, "size {small} below the value's length");
        assert!(big >= small + 1000, "sizes {small} and {big}");
        expect_rv(r.object_size(h, 0xdead), RvError::ObjectHandleInvalid, Function::GetObjectSize);
    });
}

#[test]
fn generated_keys_carry_their_history() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let r = raw();
        let h = sh(&session);
        let aes = session.generate_key(&Mechanism::AesKeyGen, &[Attribute::ValueLen(32.into())]).unwrap().handle();
        assert!(r.attr_bool(h, aes, CKA_LOCAL));
        assert_eq!(r.attr_ulong(h, aes, CKA_KEY_GEN_MECHANISM), CKM_AES_KEY_GEN);
        assert!(r.attr_bool(h, aes, CKA_ALWAYS_SENSITIVE));
        assert!(r.attr_bool(h, aes, CKA_NEVER_EXTRACTABLE));
        assert_eq!(r.attr_ulong(h, aes, CKA_KEY_TYPE), CKK_AES);
        assert_eq!(r.attr_ulong(h, aes, CKA_CLASS), CKO_SECRET_KEY);
        assert_eq!(r.attr_ulong(h, aes, CKA_VALUE_LEN), 32);
        expect_rv(r.attr(h, aes, CKA_VALUE), RvError::AttributeSensitive, Function::GetAttributeValue);

        // A key generated to leave the token remembers it.
        let open = [Attribute::ValueLen(16.into()), Attribute::Sensitive(false), Attribute::Extractable(true)];
        let open = session.generate_key(&Mechanism::AesKeyGen, &open).unwrap();
        assert!(r.attr_bool(h, open.handle(), CKA_LOCAL));
        assert!(!r.attr_bool(h, open.handle(), CKA_ALWAYS_SENSITIVE));
        assert!(!r.attr_bool(h, open.handle(), CKA_NEVER_EXTRACTABLE));
        // Its value is the key the module uses.
        let value = r.attr(h, open.handle(), CKA_VALUE).unwrap();
        assert_eq!(value.len(), 16);
        let pt = random_bytes(32);
        let iv = [6u8; 16];
        assert_eq!(
            session.encrypt(&Mechanism::AesCbc(iv), open, &pt).unwrap(),
            oracle::cbc_encrypt(&value, &iv, &pt, false)
        );
        // Two generated keys differ.
        let other = session
            .generate_key(
                &Mechanism::AesKeyGen,
                &[Attribute::ValueLen(16.into()), Attribute::Sensitive(false), Attribute::Extractable(true)],
            )
            .unwrap();
        assert_ne!(r.attr(h, other.handle(), CKA_VALUE).unwrap(), value);

        let generic = [Attribute::ValueLen(20.into()), Attribute::Sensitive(false), Attribute::Extractable(true)];
        let generic = session.generate_key(&Mechanism::GenericSecretKeyGen, &generic).unwrap().handle();
        assert_eq!(r.attr_ulong(h, generic, CKA_KEY_TYPE), CKK_GENERIC_SECRET);
        assert_eq!(r.attr_ulong(h, generic, CKA_KEY_GEN_MECHANISM), CKM_GENERIC_SECRET_KEY_GEN);
        assert_eq!(r.attr(h, generic, CKA_VALUE).unwrap().len(), 20);

        expect_rv(session.generate_key(&Mechanism::AesKeyGen, &[]), RvError::TemplateIncomplete, Function::GenerateKey);
        expect_rv(
            session.generate_key(&Mechanism::AesKeyGen, &[Attribute::ValueLen(15.into())]),
            RvError::AttributeValueInvalid,
            Function::GenerateKey,
        );
        let with_value = [Attribute::ValueLen(16.into()), Attribute::Value(vec![0; 16])];
        expect_rv(
            session.generate_key(&Mechanism::AesKeyGen, &with_value),
            RvError::TemplateInconsistent,
            Function::GenerateKey,
        );
        expect_rv(
            session.generate_key(&Mechanism::Sha256, &[Attribute::ValueLen(16.into())]),
            RvError::MechanismInvalid,
            Function::GenerateKey,
        );
    });
}

#[test]
fn unique_ids_are_present_and_distinct() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        let r = raw();
        let h = sh(&session);
        let mut t = data_template("on token", b"v");
        t.push(Attribute::Token(true));
        let objects = [
            create(&session, &data_template("d", b"v")),
            create(&session, &t),
            aes_key(&session, &[1; 16]),
            session.generate_key(&Mechanism::AesKeyGen, &[Attribute::ValueLen(16.into())]).unwrap(),
        ];
        let ids: Vec<Vec<u8>> = objects.iter().map(|o| r.attr(h, o.handle(), CKA_UNIQUE_ID).unwrap()).collect();
        for (i, id) in ids.iter().enumerate() {
            assert!(!id.is_empty());
            assert!(!ids[i + 1..].contains(id), "duplicate unique id {id:?}");
        }
        expect_rv(
            session.update_attributes(objects[0], &[Attribute::UniqueId(b"other".to_vec())]),
            RvError::AttributeReadOnly,
            Function::SetAttributeValue,
        );
    });
}

#[test]
fn a_template_too_large_for_memory_is_host_memory() {
    scenario!(|_| {
        let (_p, _s, session) = ready();
        // Eight values of 512 MiB each, as the caller claims them: refused before anything
        // is read or copied, and the host lives on.
        let small = [0u8; 16];
        let class = cryptoki_sys::CKO_DATA;
        let mut t: Vec<cryptoki_sys::CK_ATTRIBUTE> = (0..8)
            .map(|i| cryptoki_sys::CK_ATTRIBUTE {
                type_: if i == 0 { cryptoki_sys::CKA_VALUE } else { cryptoki_sys::CKA_VENDOR_DEFINED + i },
                pValue: small.as_ptr() as *mut _,
                ulValueLen: 512 << 20,
            })
            .collect();
        t.push(cryptoki_sys::CK_ATTRIBUTE {
            type_: cryptoki_sys::CKA_CLASS,
            pValue: &class as *const _ as *mut _,
            ulValueLen: std::mem::size_of::<cryptoki_sys::CK_OBJECT_CLASS>() as _,
        });
        let mut obj = 0;
        // SAFETY: the lengths lie on purpose; the module must refuse before reading them.
        let rv = unsafe { raw().lib().C_CreateObject(sh(&session), t.as_mut_ptr(), t.len() as _, &mut obj) };
        assert_eq!(rv, cryptoki_sys::CKR_HOST_MEMORY);
        create(&session, &data_template("after", b"still here"));
    });
}
