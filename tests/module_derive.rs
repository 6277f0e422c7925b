//! C_DeriveKey from a secret key's value: concatenation with a key or with data, XOR,
//! extraction, and AES-CBC encryption of data, each value checked against an independent
//! computation; and the rule of these derivations that the new key is no less secret
//! than its base (attributes inherited, a template asking otherwise refused). SP 800-108
//! derivation: a NIST CAVP vector, additional derived keys, malformed parameters. X25519
//! (CKK_EC_MONTGOMERY): RFC 7748's vector through CKM_ECDH1_DERIVE, generated pairs that
//! agree, and the SP 800-56C KDF against sha2.

mod common;

use aes::cipher::{BlockEncrypt, KeyInit};
use common::raw::{raw, sh};
use common::*;
use cryptoki::context::Function;
use cryptoki::error::RvError;
use cryptoki::mechanism::ekdf::AesCbcDeriveParams;
use cryptoki::mechanism::kbkdf::{
    DerivedKey, Endianness, KbkdfCounterFormat, KbkdfFeedbackParams, KbkdfParams, PrfDataParam, PrfDataParamType,
};
use cryptoki::mechanism::misc::{ExtractParams, KeyDerivationStringData};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use std::num::NonZeroUsize;

/// A generic secret the test knows, which may derive; readable unless `sensitive`.
fn base(session: &Session, value: &[u8], sensitive: bool) -> ObjectHandle {
    base_of(session, KeyType::GENERIC_SECRET, value, sensitive)
}

/// `base`, of another key type.
fn base_of(session: &Session, key_type: KeyType, value: &[u8], sensitive: bool) -> ObjectHandle {
    create(
        session,
        &[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(key_type),
            Attribute::Value(value.to_vec()),
            Attribute::Derive(true),
            Attribute::Sensitive(sensitive),
            Attribute::Extractable(!sensitive),
        ],
    )
}

/// A readable generic secret of `len` bytes, as a derived key's template.
fn readable(len: u64) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::ValueLen(len.into()),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ]
}

fn value(session: &Session, key: ObjectHandle) -> Vec<u8> {
    let Attribute::Value(v) = attribute(session, key, AttributeType::Value).expect("CKA_VALUE") else { panic!() };
    v
}

#[test]
fn derivations_from_a_value_match_their_definitions() {
    scenario!(|_| {
        let (_p, _slot, session) = ready();
        let (a, b, data) = (random_bytes(16), random_bytes(24), random_bytes(20));
        let (ka, kb) = (base(&session, &a, false), base(&session, &b, false));
        let derive = |m: &Mechanism, len| value(&session, session.derive_key(m, ka, &readable(len)).unwrap());
        assert_eq!(derive(&Mechanism::ConcatenateBaseAndKey(kb), 40), [a.clone(), b].concat());
        let d = KeyDerivationStringData::new(&data);
        assert_eq!(derive(&Mechanism::ConcatenateBaseAndData(d), 36), [a.clone(), data.clone()].concat());
        assert_eq!(derive(&Mechanism::ConcatenateDataAndBase(d), 36), [data.clone(), a.clone()].concat());
        let xor: Vec<u8> = a.iter().zip(&data).map(|(x, y)| x ^ y).collect();
        assert_eq!(derive(&Mechanism::XorBaseAndData(d), 16), xor);
        // A shorter length takes the first bytes.
        assert_eq!(derive(&Mechanism::ConcatenateBaseAndData(d), 4), a[..4]);
        // The specification's example of extraction (current mechanisms 3.0, 2.43.7).
        let k = base(&session, &[0x32, 0x9F, 0x84, 0xA9], false);
        let got = session.derive_key(&Mechanism::ExtractKeyFromKey(ExtractParams::new(21)), k, &readable(2)).unwrap();
        assert_eq!(value(&session, got), [0x95, 0x26]);

        // AES-CBC encryption of data, checked with the aes crate.
        let aes_value = random_bytes(32);
        let aes_key = create(
            &session,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Value(aes_value.clone()),
                Attribute::Derive(true),
            ],
        );
        let (iv, plain) = ([9u8; 16], random_bytes(32));
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen(32.into()),
        ];
        let derived = session
            .derive_key(&Mechanism::AesCbcEncryptData(AesCbcDeriveParams::new(iv, &plain)), aes_key, &template)
            .unwrap();
        // The base is sensitive, so the derived key is too: check it by what it encrypts.
        let cipher = aes::Aes256::new_from_slice(&aes_value).unwrap();
        let (mut chain, mut expected) = (iv.to_vec(), Vec::new());
        for block in plain.chunks(16) {
            let mut x: Vec<u8> = block.iter().zip(&chain).map(|(p, c)| p ^ c).collect();
            cipher.encrypt_block(x.as_mut_slice().into());
            chain = x.clone();
            expected.extend(x);
        }
        let probe = [0u8; 16];
        let mut want = probe;
        aes::Aes256::new_from_slice(&expected).unwrap().encrypt_block((&mut want).into());
        assert_eq!(session.encrypt(&Mechanism::AesEcb, derived, &probe).unwrap(), want);
        expect_rv(
            session.derive_key(
                &Mechanism::AesCbcEncryptData(AesCbcDeriveParams::new(iv, &plain[..31])),
                aes_key,
                &template,
            ),
            RvError::MechanismParamInvalid,
            Function::DeriveKey,
        );
    });
}

#[test]
fn a_derived_key_is_no_less_secret_than_its_base() {
    scenario!(|_| {
        let (_p, _slot, session) = ready();
        let secret = base(&session, &random_bytes(32), true);
        let open = base(&session, &random_bytes(32), false);
        let d = KeyDerivationStringData::new(b"data");
        // A sensitive base makes a sensitive, unextractable key even when the template
        // asks for a readable one: the specification sets the attribute, it does not refuse.
        let k = session.derive_key(&Mechanism::ConcatenateBaseAndData(d), secret, &readable(36)).unwrap();
        let read_value = |k: ObjectHandle| raw().attr(sh(&session), k.handle(), cryptoki_sys::CKA_VALUE);
        expect_rv(read_value(k), RvError::AttributeSensitive, Function::GetAttributeValue);
        // So does joining a readable key with a sensitive one.
        let k = session.derive_key(&Mechanism::ConcatenateBaseAndKey(secret), open, &readable(64)).unwrap();
        expect_rv(read_value(k), RvError::AttributeSensitive, Function::GetAttributeValue);
        // Without the request, the derived key inherits sensitivity and unextractability,
        // and the history attributes say what the base has always been.
        let plain = [Attribute::Class(ObjectClass::SECRET_KEY), Attribute::KeyType(KeyType::GENERIC_SECRET)];
        let k = session.derive_key(&Mechanism::ConcatenateBaseAndData(d), secret, &plain).unwrap();
        let flag = |key, ty| {
            matches!(
                attribute(&session, key, ty),
                Some(
                    Attribute::Sensitive(true)
                        | Attribute::AlwaysSensitive(true)
                        | Attribute::Extractable(true)
                        | Attribute::NeverExtractable(true)
                        | Attribute::Local(true)
                )
            )
        };
        assert!(flag(k, AttributeType::Sensitive) && !flag(k, AttributeType::Extractable));
        assert!(!flag(k, AttributeType::Local), "a derived key is not local");
        assert!(!flag(k, AttributeType::AlwaysSensitive), "the base was made outside: never always sensitive");
        expect_rv(read_value(k), RvError::AttributeSensitive, Function::GetAttributeValue);
        // A generated sensitive base passes ALWAYS_SENSITIVE and NEVER_EXTRACTABLE on.
        let generated = session
            .generate_key(&Mechanism::GenericSecretKeyGen, &[Attribute::ValueLen(32.into()), Attribute::Derive(true)])
            .unwrap();
        let k = session.derive_key(&Mechanism::XorBaseAndData(d), generated, &plain).unwrap();
        assert!(flag(k, AttributeType::AlwaysSensitive) && flag(k, AttributeType::NeverExtractable));
        // A base without CKA_DERIVE derives nothing.
        let no = create(&session, &secret_template(KeyType::GENERIC_SECRET, &random_bytes(16)));
        expect_rv(
            session.derive_key(&Mechanism::XorBaseAndData(d), no, &plain),
            RvError::KeyFunctionNotPermitted,
            Function::DeriveKey,
        );
    });
}

// ---- SP 800-108 (CKM_SP800_108_COUNTER_KDF, CKM_SP800_108_FEEDBACK_KDF): a NIST CAVP
// vector, additional keys (handles written back, whole PRF outputs each, in template
// order, the base's secrecy inherited) and malformed parameters.

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn a_cavp_vector_derives_through_the_module() {
    scenario!(|_| {
        let (_p, _slot, session) = ready();
        // KDFCTR [PRF=CMAC_AES128][CTRLOCATION=BEFORE_FIXED][RLEN=32_BITS] COUNT=0, L=128.
        let base = base_of(&session, KeyType::AES, &hex("c10b152e8c97b77e18704e0f0bd38305"), false);
        let fixed = hex(
            "98cd4cbbbebe15d17dc86e6dbad800a2dcbd64f7c7ad0e78e9cf94ffdba89d03e97eadf6c4f7b806caf52aa38f09d0eb71d71f497bcc6906b48d36c4",
        );
        let counter = KbkdfCounterFormat::new(Endianness::Big, NonZeroUsize::new(32).unwrap());
        let data = [
            PrfDataParam::new(PrfDataParamType::IterationVariable(Some(&counter))),
            PrfDataParam::new(PrfDataParamType::ByteArray(&fixed)),
        ];
        let m = Mechanism::KbkdfCounter(KbkdfParams::new(MechanismType::AES_CMAC, &data, None));
        let key = session.derive_key(&m, base, &readable(16)).unwrap();
        assert_eq!(value(&session, key), hex("26faf61908ad9ee881b8305c221db53f"));
    });
}

#[test]
fn additional_keys_take_whole_outputs_in_order_and_inherit_secrecy() {
    scenario!(|_| {
        let (_p, _slot, session) = ready();
        let k = random_bytes(32);
        let base = base_of(&session, KeyType::AES, &k, false);
        let counter = KbkdfCounterFormat::new(Endianness::Little, NonZeroUsize::new(16).unwrap());
        let data = [
            PrfDataParam::new(PrfDataParamType::ByteArray(b"label")),
            PrfDataParam::new(PrfDataParamType::IterationVariable(Some(&counter))),
        ];
        // The whole stream, 4 outputs of AES-CMAC.
        let m = Mechanism::KbkdfCounter(KbkdfParams::new(MechanismType::AES_CMAC, &data, None));
        let stream = value(&session, session.derive_key(&m, base, &readable(64)).unwrap());
        // 20 bytes take two outputs; 1 byte and 16 bytes one each.
        let templates = [readable(1), readable(16)];
        let mut extra: Vec<DerivedKey> = templates.iter().map(|t| DerivedKey::new(t)).collect();
        let m = Mechanism::KbkdfCounter(KbkdfParams::new(MechanismType::AES_CMAC, &data, Some(&mut extra)));
        let main = session.derive_key(&m, base, &readable(20)).unwrap();
        let handles: Vec<ObjectHandle> = extra.iter().map(|k| k.handle().expect("a handle written back")).collect();
        assert_eq!(value(&session, main), stream[..20]);
        assert_eq!(value(&session, handles[0]), stream[32..33]);
        assert_eq!(value(&session, handles[1]), stream[48..64]);

        // From a sensitive base every key is sensitive, the additional ones too.
        let secret = base_of(&session, KeyType::AES, &k, true);
        let mut extra: Vec<DerivedKey> = [readable(16)].iter().map(|t| DerivedKey::new(t)).collect();
        let m = Mechanism::KbkdfCounter(KbkdfParams::new(MechanismType::AES_CMAC, &data, Some(&mut extra)));
        let main = session.derive_key(&m, secret, &readable(16)).unwrap();
        for key in [main, extra[0].handle().unwrap()] {
            assert_eq!(attribute(&session, key, AttributeType::Sensitive), Some(Attribute::Sensitive(true)));
            assert_eq!(attribute(&session, key, AttributeType::Sign), Some(Attribute::Sign(false)));
        }

        // Feedback mode with an IV, HMAC-SHA256 as the PRF.
        let data = [PrfDataParam::new(PrfDataParamType::IterationVariable(None))];
        let m =
            Mechanism::KbkdfFeedback(KbkdfFeedbackParams::new(MechanismType::SHA256_HMAC, &data, Some(b"iv"), None));
        let fb = value(&session, session.derive_key(&m, base, &readable(40)).unwrap());
        use hmac::Mac;
        let prf = |input: &[u8]| {
            let mut h = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&k).unwrap();
            h.update(input);
            h.finalize().into_bytes().to_vec()
        };
        let k1 = prf(b"iv");
        let k2 = prf(&k1);
        assert_eq!(fb, [k1, k2[..8].to_vec()].concat());
    });
}

#[test]
fn malformed_parameters_are_refused() {
    scenario!(|_| {
        let (_p, _slot, session) = ready();
        let base = base_of(&session, KeyType::AES, &random_bytes(16), false);
        let counter = KbkdfCounterFormat::new(Endianness::Big, NonZeroUsize::new(16).unwrap());
        let data = [PrfDataParam::new(PrfDataParamType::IterationVariable(Some(&counter)))];
        // A PRF that is not one: a digest.
        let m = Mechanism::KbkdfCounter(KbkdfParams::new(MechanismType::SHA256, &data, None));
        expect_rv(session.derive_key(&m, base, &readable(16)), RvError::MechanismParamInvalid, Function::DeriveKey);
        // A counter of 12 bits.
        let odd = KbkdfCounterFormat::new(Endianness::Big, NonZeroUsize::new(12).unwrap());
        let data = [PrfDataParam::new(PrfDataParamType::IterationVariable(Some(&odd)))];
        let m = Mechanism::KbkdfCounter(KbkdfParams::new(MechanismType::AES_CMAC, &data, None));
        expect_rv(session.derive_key(&m, base, &readable(16)), RvError::MechanismParamInvalid, Function::DeriveKey);
        // No derived key is longer than 512 bytes.
        let narrow = KbkdfCounterFormat::new(Endianness::Big, NonZeroUsize::new(8).unwrap());
        let data = [PrfDataParam::new(PrfDataParamType::IterationVariable(Some(&narrow)))];
        let m = Mechanism::KbkdfCounter(KbkdfParams::new(MechanismType::AES_CMAC, &data, None));
        expect_rv(session.derive_key(&m, base, &readable(4800)), RvError::TemplateInconsistent, Function::DeriveKey);
        // Nothing was left behind by the refusals: only the base is there.
        let found = session.find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)]).unwrap();
        assert_eq!(found, vec![base]);
    });
}

// ---- X25519 (CKK_EC_MONTGOMERY) and CKM_ECDH1_DERIVE

/// id-X25519, as CKA_EC_PARAMS.
const X25519: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x6e];

fn x25519_private(session: &Session, value: &[u8]) -> ObjectHandle {
    create(
        session,
        &[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::EC_MONTGOMERY),
            Attribute::EcParams(X25519.to_vec()),
            Attribute::Value(value.to_vec()),
            Attribute::Derive(true),
        ],
    )
}

fn ecdh(
    session: &Session,
    private: ObjectHandle,
    peer: &[u8],
    kdf: cryptoki::mechanism::elliptic_curve::EcKdf,
    len: u64,
) -> Vec<u8> {
    use cryptoki::mechanism::elliptic_curve::Ecdh1DeriveParams;
    let m = Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(kdf, peer));
    value(session, session.derive_key(&m, private, &readable(len)).unwrap())
}

#[test]
fn x25519_agrees_as_rfc_7748_says() {
    use cryptoki::mechanism::elliptic_curve::EcKdf;
    scenario!(|_| {
        let (_p, _slot, session) = ready();
        // RFC 7748 section 6.1.
        let alice = x25519_private(&session, &hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"));
        let bob_public = hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
        let shared = hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
        assert_eq!(ecdh(&session, alice, &bob_public, EcKdf::null(), 32), shared);
        // SP 800-56C one-step with SHA-256: H(00000001 || Z || other info).
        use sha2::Digest as _;
        let other = b"other info";
        let want = sha2::Sha256::new().chain_update([0, 0, 0, 1]).chain_update(&shared).chain_update(other).finalize();
        assert_eq!(ecdh(&session, alice, &bob_public, EcKdf::sha256_sp800(other), 16), want[..16]);
        // A peer key of small order gives no secret.
        let m = Mechanism::Ecdh1Derive(cryptoki::mechanism::elliptic_curve::Ecdh1DeriveParams::new(
            EcKdf::null(),
            &[0u8; 32],
        ));
        expect_rv(session.derive_key(&m, alice, &readable(32)), RvError::MechanismParamInvalid, Function::DeriveKey);

        // Two pairs the token generates agree with each other.
        let pair = || {
            session
                .generate_key_pair(
                    &Mechanism::EccMontgomeryKeyPairGen,
                    &[Attribute::EcParams(X25519.to_vec())],
                    &[Attribute::Derive(true)],
                )
                .unwrap()
        };
        let point = |h| {
            let Some(Attribute::EcPoint(p)) = attribute(&session, h, AttributeType::EcPoint) else { panic!() };
            assert_eq!(p[..2], [0x04, 32], "a DER OCTET STRING of 32 bytes");
            p[2..].to_vec()
        };
        let ((a_pub, a_priv), (b_pub, b_priv)) = (pair(), pair());
        let ab = ecdh(&session, a_priv, &point(b_pub), EcKdf::null(), 32);
        assert_eq!(ab, ecdh(&session, b_priv, &point(a_pub), EcKdf::null(), 32));
        assert_ne!(ab, vec![0; 32]);
    });
}
