//! Helpers of the asymmetric-key tests (`module_asym_*.rs`, which include this folder as
//! their module `asym` beside `common`): EC and RSA key pairs made and imported through
//! cryptoki, their attributes read back, and the oracles' views of them (`p256`, `p384`
//! and `rsa` keys, `openssl` on the command line).

#![allow(dead_code)]

use crate::common::*;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::BigUint;

/// Named-curve CKA_EC_PARAMS (DER OBJECT IDENTIFIER) of P-256 and P-384.
pub const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
pub const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

/// CKA_EC_PARAMS in the printable form some clients send: a DER PrintableString.
pub fn printable(name: &str) -> Vec<u8> {
    [vec![0x13, name.len() as u8], name.as_bytes().to_vec()].concat()
}

/// The DER OCTET STRING of `v` (short form: all points here are under 128 bytes).
pub fn octet_string(v: &[u8]) -> Vec<u8> {
    assert!(v.len() < 128);
    [vec![0x04, v.len() as u8], v.to_vec()].concat()
}

pub fn bytes(session: &Session, obj: ObjectHandle, ty: AttributeType) -> Vec<u8> {
    let got = session.get_attributes(obj, &[ty]).expect("C_GetAttributeValue");
    match got.into_iter().next() {
        Some(
            Attribute::EcParams(v)
            | Attribute::EcPoint(v)
            | Attribute::Modulus(v)
            | Attribute::PublicExponent(v)
            | Attribute::Value(v)
            | Attribute::Id(v)
            | Attribute::Label(v)
            | Attribute::Subject(v)
            | Attribute::Issuer(v)
            | Attribute::SerialNumber(v)
            | Attribute::CheckValue(v)
            | Attribute::PublicKeyInfo(v),
        ) => v,
        other => panic!("{ty:?}: {other:?}"),
    }
}

/// An EC key pair on the curve `params` names: session objects unless `extra_*` say
/// otherwise.
pub fn ec_pair(
    session: &Session,
    params: &[u8],
    extra_public: &[Attribute],
    extra_private: &[Attribute],
) -> (ObjectHandle, ObjectHandle) {
    let mut public = vec![Attribute::EcParams(params.to_vec())];
    public.extend_from_slice(extra_public);
    session.generate_key_pair(&Mechanism::EccKeyPairGen, &public, extra_private).expect("C_GenerateKeyPair (EC)")
}

/// The raw (uncompressed) point of an EC public key: its CKA_EC_POINT, a DER OCTET
/// STRING, unwrapped.
pub fn point_of(session: &Session, public: ObjectHandle) -> Vec<u8> {
    let der = bytes(session, public, AttributeType::EcPoint);
    assert_eq!(der[0], 0x04, "CKA_EC_POINT is a DER OCTET STRING");
    assert_eq!(der[1] as usize, der.len() - 2, "CKA_EC_POINT is a DER OCTET STRING");
    der[2..].to_vec()
}

/// An RSA key pair of `bits` (e = 65537).
pub fn rsa_pair(
    session: &Session,
    bits: u64,
    extra_public: &[Attribute],
    extra_private: &[Attribute],
) -> (ObjectHandle, ObjectHandle) {
    let mut public = vec![Attribute::ModulusBits(bits.into()), Attribute::PublicExponent(vec![1, 0, 1])];
    public.extend_from_slice(extra_public);
    session.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, extra_private).expect("C_GenerateKeyPair (RSA)")
}

/// The oracle's view of an RSA public key object.
pub fn rsa_public(session: &Session, public: ObjectHandle) -> rsa::RsaPublicKey {
    let n = BigUint::from_bytes_be(&bytes(session, public, AttributeType::Modulus));
    let e = BigUint::from_bytes_be(&bytes(session, public, AttributeType::PublicExponent));
    rsa::RsaPublicKey::new(n, e).expect("a valid RSA public key")
}

/// A new RSA key from the oracle.
pub fn rsa_oracle_key(bits: usize) -> rsa::RsaPrivateKey {
    let mut k = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits).expect("rsa key generation");
    k.precompute().expect("CRT values");
    k
}

/// The C_CreateObject template of an RSA private key (all CRT components).
pub fn rsa_private_template(k: &rsa::RsaPrivateKey) -> Vec<Attribute> {
    let be = |v: &BigUint| v.to_bytes_be();
    vec![
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::RSA),
        Attribute::Modulus(be(k.n())),
        Attribute::PublicExponent(be(k.e())),
        Attribute::PrivateExponent(be(k.d())),
        Attribute::Prime1(be(&k.primes()[0])),
        Attribute::Prime2(be(&k.primes()[1])),
        Attribute::Exponent1(be(k.dp().expect("dp"))),
        Attribute::Exponent2(be(k.dq().expect("dq"))),
        Attribute::Coefficient(k.crt_coefficient().expect("qinv").to_bytes_be()),
    ]
}

pub fn rsa_public_template(k: &rsa::RsaPublicKey) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(KeyType::RSA),
        Attribute::Modulus(k.n().to_bytes_be()),
        Attribute::PublicExponent(k.e().to_bytes_be()),
    ]
}

pub fn ec_private_template(params: &[u8], scalar: &[u8]) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::EC),
        Attribute::EcParams(params.to_vec()),
        Attribute::Value(scalar.to_vec()),
    ]
}

pub fn ec_public_template(params: &[u8], point: &[u8]) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(KeyType::EC),
        Attribute::EcParams(params.to_vec()),
        Attribute::EcPoint(point.to_vec()),
    ]
}

/// The hashes of the RSA tests, with their mechanism and MGF1 names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum H {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl H {
    pub fn mechanism(self) -> MechanismType {
        match self {
            H::Sha1 => MechanismType::SHA1,
            H::Sha256 => MechanismType::SHA256,
            H::Sha384 => MechanismType::SHA384,
            H::Sha512 => MechanismType::SHA512,
        }
    }

    pub fn mgf(self) -> PkcsMgfType {
        match self {
            H::Sha1 => PkcsMgfType::MGF1_SHA1,
            H::Sha256 => PkcsMgfType::MGF1_SHA256,
            H::Sha384 => PkcsMgfType::MGF1_SHA384,
            H::Sha512 => PkcsMgfType::MGF1_SHA512,
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        match self {
            H::Sha1 => sha1::Sha1::digest(data).to_vec(),
            H::Sha256 => sha2::Sha256::digest(data).to_vec(),
            H::Sha384 => sha2::Sha384::digest(data).to_vec(),
            H::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    pub fn len(self) -> usize {
        self.digest(b"").len()
    }
}

pub fn oaep(h: H, label: &[u8]) -> Mechanism<'_> {
    let source = if label.is_empty() { PkcsOaepSource::empty() } else { PkcsOaepSource::data_specified(label) };
    Mechanism::RsaPkcsOaep(PkcsOaepParams::new(h.mechanism(), h.mgf(), source))
}

pub fn pss_params(h: H, salt: u64) -> PkcsPssParams {
    PkcsPssParams { hash_alg: h.mechanism(), mgf: h.mgf(), s_len: salt.into() }
}

/// The oracle's OAEP padding for `h` with `label` (MGF1 of the same hash).
pub fn oracle_oaep(h: H, label: &[u8]) -> rsa::Oaep {
    let label = String::from_utf8(label.to_vec()).expect("test labels are UTF-8");
    let mut o = match h {
        H::Sha1 => rsa::Oaep::new::<sha1::Sha1>(),
        H::Sha256 => rsa::Oaep::new::<sha2::Sha256>(),
        H::Sha384 => rsa::Oaep::new::<sha2::Sha384>(),
        H::Sha512 => rsa::Oaep::new::<sha2::Sha512>(),
    };
    if !label.is_empty() {
        o.label = Some(label);
    }
    o
}

/// Runs `openssl` with `args` in `dir`; panics with its stderr when it fails.
pub fn openssl(dir: &std::path::Path, args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("openssl").current_dir(dir).args(args).output().expect("openssl on PATH");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// A random value as a test-side scalar source.
pub fn random(n: usize) -> Vec<u8> {
    random_bytes(n)
}
