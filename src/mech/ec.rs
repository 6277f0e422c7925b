//! Elliptic-curve mechanisms on NIST P-256, P-384, P-521 and secp256k1: key-pair
//! generation, ECDSA over a hash (CKM_ECDSA) or over data with SHA-1/224/256/384/512, and
//! ECDH key derivation with its KDFs (not on secp256k1: CKR_CURVE_NOT_SUPPORTED).
//!
//! The primitives come from `crypto`; this file holds the PKCS#11 rules on top of them:
//! the encodings of CKA_EC_PARAMS and CKA_EC_POINT, which object class each operation
//! takes, parameter checks and which error each case reports. Parsed keys are kept with
//! their cached object (`Object::prepared`), so repeated operations do not parse again.

use super::{Info, Key, KeyPair, Param, SignOp, Unit, VerifyOp};
use crate::crypto::{self, Curve, Digest, EcAgreementKey, EcSigningKey, EcVerifyingKey, Hash};
use crate::error::{Error, Result};
use crate::object::{ck_ulong, Object, Template};
use cryptoki_sys::*;
use der::asn1::{ObjectIdentifier, OctetStringRef, PrintableStringRef};
use der::{Decode, Encode};
use std::sync::{Arc, OnceLock};
use zeroize::Zeroizing;

const EC_KEY_TYPES: &[CK_KEY_TYPE] = &[CKK_EC];

// Named-curve CKA_EC_PARAMS (DER OBJECT IDENTIFIER), from the key spec table.
use crate::kms::spec::{P256 as P256_PARAMS, P384 as P384_PARAMS, P521 as P521_PARAMS, SECP256K1 as SECP256K1_PARAMS};

/// Curve sizes in bits, as C_GetMechanismInfo reports EC key sizes.
fn ec_info(flags: CK_FLAGS) -> Info {
    Info {
        min_key: 256,
        max_key: 521,
        // Prime-field curves, named by OID or by name, points uncompressed.
        flags: flags | CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_CURVENAME | CKF_EC_UNCOMPRESS,
    }
}

/// The CKA_EC_PARAMS of a curve, in the OID form this token writes.
fn params_of(curve: Curve) -> &'static [u8] {
    match curve {
        Curve::P256 => P256_PARAMS,
        Curve::P384 => P384_PARAMS,
        Curve::P521 => P521_PARAMS,
        Curve::Secp256k1 => SECP256K1_PARAMS,
    }
}

/// The curve named by CKA_EC_PARAMS: a DER OBJECT IDENTIFIER (namedCurve), or the DER
/// PrintableString of a curve name, which some clients send. Anything else — another
/// curve, explicit parameters, implicitlyCA, malformed DER — is None.
fn parse_params(params: &[u8]) -> Option<Curve> {
    match params.first()? {
        0x06 => match ObjectIdentifier::from_der(params).ok()? {
            const_oid::db::rfc5912::SECP_256_R_1 => Some(Curve::P256),
            const_oid::db::rfc5912::SECP_384_R_1 => Some(Curve::P384),
            const_oid::db::rfc5912::SECP_521_R_1 => Some(Curve::P521),
            crate::crypto::SECP_256_K_1 => Some(Curve::Secp256k1),
            _ => None,
        },
        0x13 => {
            let name = PrintableStringRef::from_der(params).ok()?;
            let name = name.as_str();
            let is = |names: &[&str]| names.iter().any(|n| n.eq_ignore_ascii_case(name));
            if is(&["prime256v1", "secp256r1", "P-256", "NIST P-256"]) {
                Some(Curve::P256)
            } else if is(&["secp384r1", "P-384", "NIST P-384"]) {
                Some(Curve::P384)
            } else if is(&["secp521r1", "P-521", "NIST P-521"]) {
                Some(Curve::P521)
            } else if is(&["secp256k1"]) {
                Some(Curve::Secp256k1)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// A point as the token stores it in CKA_EC_POINT: the DER OCTET STRING of the
/// uncompressed point.
fn encode_point(point: &[u8]) -> Result<Vec<u8>> {
    OctetStringRef::new(point).and_then(|o| o.to_der()).map_err(|_| Error::general("EC point encoding failed"))
}

/// The point inside a CKA_EC_POINT or an ECDH public value: either the raw point
/// (uncompressed, or compressed) or its DER OCTET STRING, which clients use
/// interchangeably. The lengths of the two forms never coincide on these curves, so
/// the form is told by length first. None when it is neither.
fn decode_point(curve: Curve, v: &[u8]) -> Option<&[u8]> {
    let raw = |p: &[u8]| match p.first() {
        Some(0x04) => p.len() == curve.point_len(),
        Some(0x02 | 0x03) => p.len() == 1 + curve.byte_len(),
        _ => false,
    };
    if raw(v) {
        return Some(v);
    }
    let inner = OctetStringRef::from_der(v).ok()?.as_bytes();
    raw(inner).then_some(inner)
}

/// The object of an EC key of `class` (private for signing and derivation, public for
/// verification).
fn ec_object<'k>(key: &Key<'k>, class: CK_OBJECT_CLASS) -> Result<&'k Object> {
    if key.key_type != CKK_EC {
        return Err(Error::KeyTypeInconsistent);
    }
    let obj = key.attrs.ok_or_else(|| Error::general("EC key passed without its object"))?;
    if obj.class() != class {
        return Err(Error::KeyTypeInconsistent);
    }
    Ok(obj)
}

/// The curve of a key object. A key of a curve this token does not serve cannot be used
/// with these mechanisms (`KeyTypeInconsistent`; the specification's list for the
/// *Init functions has nothing closer).
fn key_curve(obj: &Object) -> Result<Curve> {
    obj.get_raw(CKA_EC_PARAMS).and_then(parse_params).ok_or(Error::KeyTypeInconsistent)
}

/// The parsed forms of an EC private key, each made on its first use: a key may sign
/// or derive (or, under the compatible key-usage policy, both).
#[derive(Default)]
struct EcPrivate {
    signing: OnceLock<Arc<EcSigningKey>>,
    agreement: OnceLock<Arc<EcAgreementKey>>,
}

fn cached<T>(cell: &OnceLock<Arc<T>>, make: impl FnOnce() -> Result<T>) -> Result<Arc<T>> {
    if let Some(v) = cell.get() {
        return Ok(v.clone());
    }
    let v = Arc::new(make()?);
    Ok(cell.get_or_init(|| v).clone())
}

fn private_scalar(obj: &Object) -> Result<&[u8]> {
    obj.get_raw(CKA_VALUE).ok_or(Error::KeyTypeInconsistent)
}

fn signing_key(key: &Key) -> Result<Arc<EcSigningKey>> {
    let obj = ec_object(key, CKO_PRIVATE_KEY)?;
    let parsed = obj.prepared(|| Ok(EcPrivate::default()))?;
    cached(&parsed.signing, || {
        let curve = key_curve(obj)?;
        // The public point, when the object has it uncompressed, lets aws-lc check that
        // it belongs to the scalar; otherwise aws-lc computes it.
        let point = obj.get_raw(CKA_EC_POINT).and_then(|p| decode_point(curve, p)).filter(|p| p.first() == Some(&0x04));
        EcSigningKey::new(curve, private_scalar(obj)?, point)
    })
}

fn agreement_key(key: &Key) -> Result<Arc<EcAgreementKey>> {
    let obj = ec_object(key, CKO_PRIVATE_KEY)?;
    let parsed = obj.prepared(|| Ok(EcPrivate::default()))?;
    cached(&parsed.agreement, || EcAgreementKey::new(key_curve(obj)?, private_scalar(obj)?))
}

fn verifying_key(key: &Key) -> Result<Arc<EcVerifyingKey>> {
    let obj = ec_object(key, CKO_PUBLIC_KEY)?;
    obj.prepared(|| {
        let curve = key_curve(obj)?;
        let point = obj.get_raw(CKA_EC_POINT).and_then(|p| decode_point(curve, p)).ok_or(Error::KeyTypeInconsistent)?;
        EcVerifyingKey::new(curve, point)
    })
}

// ---------------------------------------------------------------------------------------
// Keys made outside (C_CreateObject, the command line's import)

/// Checks the material of an EC key given by C_CreateObject and writes its encodings in
/// the token's forms (CKA_EC_PARAMS as the curve's OID, CKA_EC_POINT as the DER OCTET
/// STRING of the point, whichever form the caller sent).
///
/// Errors, as C_CreateObject may return them: CKA_EC_PARAMS that are malformed or name
/// a curve this token does not serve are CKR_DOMAIN_PARAMS_INVALID (the specification's
/// code for domain parameters, which CKA_EC_PARAMS are; key-pair generation answers the
/// same); a point that is not on the curve, or a scalar that is zero, not below the
/// group order or longer than the field, is CKR_ATTRIBUTE_VALUE_INVALID (the parameters
/// are fine, the attribute holding the key is not).
pub fn check_import(obj: &mut Object) -> Result<()> {
    let curve = obj.get_raw(CKA_EC_PARAMS).and_then(parse_params).ok_or(Error::DomainParamsInvalid)?;
    obj.set(CKA_EC_PARAMS, params_of(curve).to_vec());
    match obj.class() {
        CKO_PUBLIC_KEY => {
            let given = obj.get_raw(CKA_EC_POINT).unwrap_or_default();
            let point = decode_point(curve, given).ok_or(Error::AttributeValueInvalid)?.to_vec();
            EcVerifyingKey::new(curve, &point).map_err(|_| Error::AttributeValueInvalid)?;
            obj.set(CKA_EC_POINT, encode_point(&point)?);
        }
        CKO_PRIVATE_KEY => {
            EcSigningKey::new(curve, private_scalar(obj)?, None).map_err(|_| Error::AttributeValueInvalid)?;
        }
        _ => {}
    }
    Ok(())
}

/// The CKA_EC_POINT (DER OCTET STRING of the uncompressed point) that belongs to a
/// private scalar on the curve CKA_EC_PARAMS names: what an imported private key's
/// public key object holds when the key file did not carry the point.
pub fn public_point_of(ec_params: &[u8], scalar: &[u8]) -> Result<Vec<u8>> {
    let curve = parse_params(ec_params).ok_or(Error::DomainParamsInvalid)?;
    let key = EcSigningKey::new(curve, scalar, None).map_err(|_| Error::AttributeValueInvalid)?;
    encode_point(&key.public_point())
}

// ---------------------------------------------------------------------------------------
// Key-pair generation

/// CKM_EC_KEY_PAIR_GEN. The curve comes from CKA_EC_PARAMS of the public template (or
/// of the private template, which some clients use; the two must then agree).
struct EcKeyPairGen;

impl Unit for EcKeyPairGen {
    fn ty(&self) -> CK_MECHANISM_TYPE {
        CKM_EC_KEY_PAIR_GEN
    }
    fn info(&self) -> Info {
        ec_info(CKF_GENERATE_KEY_PAIR)
    }
    fn generate_key_pair(&self, public: &Template, private: &Template) -> Result<KeyPair> {
        fn find(t: &Template) -> Option<&[u8]> {
            t.iter().find(|(ty, _)| *ty == CKA_EC_PARAMS).map(|(_, v)| v.as_slice())
        }
        let params = match (find(public), find(private)) {
            (Some(a), Some(b)) if parse_params(a) != parse_params(b) => return Err(Error::TemplateInconsistent),
            (Some(p), _) | (None, Some(p)) => p,
            (None, None) => return Err(Error::TemplateIncomplete),
        };
        let curve = parse_params(params).ok_or(Error::DomainParamsInvalid)?;
        let material = crypto::ec_generate(curve)?;
        let ec_params = params_of(curve).to_vec();
        Ok(KeyPair {
            public: vec![
                (CKA_CLASS, ck_ulong(CKO_PUBLIC_KEY)),
                (CKA_KEY_TYPE, ck_ulong(CKK_EC)),
                (CKA_EC_PARAMS, ec_params.clone()),
                (CKA_EC_POINT, encode_point(&material.point)?),
            ],
            private: vec![
                (CKA_CLASS, ck_ulong(CKO_PRIVATE_KEY)),
                (CKA_KEY_TYPE, ck_ulong(CKK_EC)),
                (CKA_EC_PARAMS, ec_params),
                // Moved out of its zeroised buffer into the attribute list, which the
                // token turns into a zeroised object.
                (CKA_VALUE, material.scalar.to_vec()),
            ],
        })
    }
}

// ---------------------------------------------------------------------------------------
// ECDSA

/// What is signed: the caller's hash itself (CKM_ECDSA), or a digest of the data.
enum Input {
    /// CKM_ECDSA: the first order-length bytes of the input (all that ECDSA reads of a
    /// longer hash) and the input's total length, so any length can be fed in parts
    /// without buffering more than that.
    Prehash {
        head: Vec<u8>,
        total: usize,
    },
    Hashed(Digest),
}

impl Input {
    fn new(hash: Option<Hash>) -> Self {
        match hash {
            None => Input::Prehash { head: Vec::new(), total: 0 },
            Some(h) => Input::Hashed(Digest::new(h)),
        }
    }

    fn update(&mut self, data: &[u8], order_len: usize) {
        match self {
            Input::Prehash { head, total } => {
                let room = order_len.saturating_sub(head.len());
                head.extend_from_slice(&data[..room.min(data.len())]);
                *total = total.saturating_add(data.len());
            }
            Input::Hashed(d) => d.update(data),
        }
    }

    /// The hash to sign; for CKM_ECDSA the order-length head of a long input is the
    /// same value ECDSA takes from the whole, and a short input is the whole.
    fn finish(self) -> Vec<u8> {
        match self {
            Input::Prehash { head, .. } => head,
            Input::Hashed(d) => d.finish(),
        }
    }
}

struct EcdsaSign {
    key: Arc<EcSigningKey>,
    /// `None` once finished.
    input: Option<Input>,
}

impl SignOp for EcdsaSign {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        let n = self.key.curve().byte_len();
        self.input.as_mut().ok_or(Error::OperationNotInitialized)?.update(data, n);
        Ok(())
    }
    fn finish(&mut self) -> Result<Vec<u8>> {
        let input = self.input.take().ok_or(Error::OperationNotInitialized)?;
        self.key.sign_prehash(&input.finish())
    }
    fn sig_len(&self) -> usize {
        2 * self.key.curve().byte_len()
    }
}

struct EcdsaVerify {
    key: Arc<EcVerifyingKey>,
    input: Option<Input>,
}

impl VerifyOp for EcdsaVerify {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        let n = self.key.curve().byte_len();
        self.input.as_mut().ok_or(Error::OperationNotInitialized)?.update(data, n);
        Ok(())
    }
    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        let input = self.input.take().ok_or(Error::OperationNotInitialized)?;
        self.key.verify_prehash(&input.finish(), signature)
    }
}

/// CKM_ECDSA (`hash` None: the input is the hash, of any length) and
/// CKM_ECDSA_SHA256/384/512 (the input is the data). Signatures are r || s, each at
/// the order's length, as PKCS#11 defines them.
struct EcdsaUnit {
    ty: CK_MECHANISM_TYPE,
    hash: Option<Hash>,
}

impl Unit for EcdsaUnit {
    fn ty(&self) -> CK_MECHANISM_TYPE {
        self.ty
    }
    fn info(&self) -> Info {
        ec_info(CKF_SIGN | CKF_VERIFY)
    }
    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        EC_KEY_TYPES
    }
    fn sign(&self, key: &Key, p: &Param) -> Result<Box<dyn SignOp>> {
        no_param(p)?;
        Ok(Box::new(EcdsaSign { key: signing_key(key)?, input: Some(Input::new(self.hash)) }))
    }
    fn verify(&self, key: &Key, p: &Param) -> Result<Box<dyn VerifyOp>> {
        no_param(p)?;
        Ok(Box::new(EcdsaVerify { key: verifying_key(key)?, input: Some(Input::new(self.hash)) }))
    }
}

/// These mechanisms take no parameter (a present but empty one is the same).
fn no_param(p: &Param) -> Result<()> {
    match p {
        Param::None => Ok(()),
        Param::Bytes(b) if b.is_empty() => Ok(()),
        _ => Err(Error::MechanismParamInvalid),
    }
}

// ---------------------------------------------------------------------------------------
// ECDH

/// CKM_ECDH1_DERIVE on a NIST or SECG curve (CKK_EC: the shared secret is the
/// x-coordinate of the product) or on X25519 (CKK_EC_MONTGOMERY: RFC 7748). The peer's
/// public value is the raw point or its DER OCTET STRING. The KDF makes the new key's
/// value from the secret Z and the shared data: CKD_NULL (Z itself; no shared data),
/// CKD_SHA*_KDF (ANSI X9.63: H(Z || counter || shared data)) and CKD_SHA*_KDF_SP800
/// (SP 800-56C one-step: H(counter || Z || shared data)), the 32-bit counter from 1. An
/// unknown KDF, shared data with the null KDF, and a public value that is not a point of
/// the key's curve are CKR_MECHANISM_PARAM_INVALID: the public value is part of the
/// mechanism's parameter (CKR_DOMAIN_PARAMS_INVALID is about the curve, which the base
/// key fixes).
struct EcdhUnit;

const ECDH_KEY_TYPES: &[CK_KEY_TYPE] = &[CKK_EC, CKK_EC_MONTGOMERY];

/// The hash of a KDF and whether the counter comes first (SP 800-56C) or after Z (X9.63).
fn kdf_hash(kdf: CK_EC_KDF_TYPE) -> Option<(Hash, bool)> {
    Some(match kdf {
        CKD_SHA1_KDF => (Hash::Sha1, false),
        CKD_SHA224_KDF => (Hash::Sha224, false),
        CKD_SHA256_KDF => (Hash::Sha256, false),
        CKD_SHA384_KDF => (Hash::Sha384, false),
        CKD_SHA512_KDF => (Hash::Sha512, false),
        CKD_SHA1_KDF_SP800 => (Hash::Sha1, true),
        CKD_SHA224_KDF_SP800 => (Hash::Sha224, true),
        CKD_SHA256_KDF_SP800 => (Hash::Sha256, true),
        CKD_SHA384_KDF_SP800 => (Hash::Sha384, true),
        CKD_SHA512_KDF_SP800 => (Hash::Sha512, true),
        _ => return None,
    })
}

/// The KDF of CK_ECDH1_DERIVE_PARAMS over the shared secret `z`, `len` bytes long (the
/// hash's length when the template gives none).
fn ecdh_kdf(
    kdf: CK_EC_KDF_TYPE,
    shared: &[u8],
    z: Zeroizing<Vec<u8>>,
    len: Option<usize>,
) -> Result<Zeroizing<Vec<u8>>> {
    if kdf == CKD_NULL {
        return if shared.is_empty() { Ok(z) } else { Err(Error::MechanismParamInvalid) };
    }
    let (hash, counter_first) = kdf_hash(kdf).ok_or(Error::MechanismParamInvalid)?;
    let len = len.unwrap_or(hash.output_len());
    if len > 512 {
        return Err(Error::TemplateInconsistent);
    }
    let mut out = Zeroizing::new(Vec::with_capacity(len + hash.output_len()));
    let mut counter = 1u32;
    while out.len() < len {
        let mut d = Digest::new(hash);
        if counter_first {
            d.update(&counter.to_be_bytes());
            d.update(&z);
        } else {
            d.update(&z);
            d.update(&counter.to_be_bytes());
        }
        d.update(shared);
        out.extend_from_slice(&Zeroizing::new(d.finish()));
        counter += 1;
    }
    out.truncate(len);
    Ok(out)
}

impl Unit for EcdhUnit {
    fn ty(&self) -> CK_MECHANISM_TYPE {
        CKM_ECDH1_DERIVE
    }
    fn info(&self) -> Info {
        ec_info(CKF_DERIVE)
    }
    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        ECDH_KEY_TYPES
    }
    fn derive(&self, base: &Key, p: &Param, len: Option<usize>) -> Result<Zeroizing<Vec<u8>>> {
        let Param::Ecdh { kdf, shared_data, public_data } = p else {
            return Err(Error::MechanismParamInvalid);
        };
        if *kdf != CKD_NULL && kdf_hash(*kdf).is_none() {
            return Err(Error::MechanismParamInvalid);
        }
        let z = if base.key_type == CKK_EC_MONTGOMERY {
            super::montgomery::agree(base, public_data)?
        } else {
            let key = agreement_key(base)?;
            let point = decode_point(key.curve(), public_data).ok_or(Error::MechanismParamInvalid)?;
            key.agree(point)?
        };
        ecdh_kdf(*kdf, shared_data, z, len)
    }
}

pub static UNITS: &[&dyn Unit] = &[
    &EcKeyPairGen,
    &EcdsaUnit { ty: CKM_ECDSA, hash: None },
    &EcdsaUnit { ty: CKM_ECDSA_SHA1, hash: Some(Hash::Sha1) },
    &EcdsaUnit { ty: CKM_ECDSA_SHA224, hash: Some(Hash::Sha224) },
    &EcdsaUnit { ty: CKM_ECDSA_SHA256, hash: Some(Hash::Sha256) },
    &EcdsaUnit { ty: CKM_ECDSA_SHA384, hash: Some(Hash::Sha384) },
    &EcdsaUnit { ty: CKM_ECDSA_SHA512, hash: Some(Hash::Sha512) },
    &EcdhUnit,
];

#[cfg(test)]
mod tests {
    //! ECDSA against the `p256` and `p384` crates (and OpenSSL's command line for the
    //! short hashes those crates refuse), Wycheproof's verification vectors, ECDH
    //! against the crates' Diffie-Hellman, and every parameter and key error.
    use super::*;
    use crate::crypto::test_keys::{h, rand};
    use crate::mech::test_support::object;
    use der::asn1::{AnyRef, BitStringRef, UintRef};
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    use sha2::Digest as _;

    fn unit(ty: CK_MECHANISM_TYPE) -> &'static dyn Unit {
        UNITS.iter().copied().find(|u| u.ty() == ty).expect("unit")
    }

    fn key(obj: &Object) -> Key<'_> {
        Key { key_type: CKK_EC, value: &[], attrs: Some(obj) }
    }

    fn generate(params: &[u8]) -> (Object, Object) {
        let pair = unit(CKM_EC_KEY_PAIR_GEN).generate_key_pair(&[(CKA_EC_PARAMS, params.to_vec())], &[]).unwrap();
        (object(&pair.public), object(&pair.private))
    }

    fn public_obj(params: &[u8], point: Vec<u8>) -> Object {
        object(&[
            (CKA_CLASS, ck_ulong(CKO_PUBLIC_KEY)),
            (CKA_KEY_TYPE, ck_ulong(CKK_EC)),
            (CKA_EC_PARAMS, params.to_vec()),
            (CKA_EC_POINT, point),
        ])
    }

    /// The raw point inside a generated public key's CKA_EC_POINT.
    fn point_of(public: &Object) -> Vec<u8> {
        let v = public.get_raw(CKA_EC_POINT).unwrap();
        OctetStringRef::from_der(v).unwrap().as_bytes().to_vec()
    }

    fn sign(ty: CK_MECHANISM_TYPE, private: &Object, data: &[u8], part: usize) -> Vec<u8> {
        let mut op = unit(ty).sign(&key(private), &Param::None).unwrap();
        for chunk in data.chunks(part.max(1)) {
            op.update(chunk).unwrap();
        }
        let sig = op.finish().unwrap();
        assert_eq!(sig.len(), op.sig_len());
        sig
    }

    fn verify(ty: CK_MECHANISM_TYPE, public: &Object, data: &[u8], sig: &[u8]) -> Result<()> {
        let mut op = unit(ty).verify(&key(public), &Param::None)?;
        op.update(data)?;
        op.finish(sig)
    }

    fn sha(ty: CK_MECHANISM_TYPE, data: &[u8]) -> Vec<u8> {
        match ty {
            CKM_ECDSA_SHA1 => sha1::Sha1::digest(data).to_vec(),
            CKM_ECDSA_SHA224 => sha2::Sha224::digest(data).to_vec(),
            CKM_ECDSA_SHA256 => sha2::Sha256::digest(data).to_vec(),
            CKM_ECDSA_SHA384 => sha2::Sha384::digest(data).to_vec(),
            CKM_ECDSA_SHA512 => sha2::Sha512::digest(data).to_vec(),
            _ => data.to_vec(),
        }
    }

    /// Verifies with the curve's RustCrypto crate, which takes prehashes of half the
    /// field size or more (shorter ones are left-padded, longer ones cut, as ECDSA says).
    fn oracle_verify(params: &[u8], point: &[u8], prehash: &[u8], sig: &[u8]) {
        if params == P256_PARAMS {
            let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
            let sig = p256::ecdsa::Signature::from_slice(sig).unwrap();
            vk.verify_prehash(prehash, &sig).expect("p256 verifies");
        } else {
            let vk = p384::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
            let sig = p384::ecdsa::Signature::from_slice(sig).unwrap();
            vk.verify_prehash(prehash, &sig).expect("p384 verifies");
        }
    }

    /// Verifies with `openssl pkeyutl`, which takes a prehash of any length.
    fn openssl_verify(params: &[u8], point: &[u8], prehash: &[u8], sig: &[u8]) -> bool {
        let spki = spki::SubjectPublicKeyInfoRef {
            algorithm: spki::AlgorithmIdentifierRef {
                oid: const_oid::db::rfc5912::ID_EC_PUBLIC_KEY,
                parameters: Some(AnyRef::from_der(params).unwrap()),
            },
            subject_public_key: BitStringRef::from_bytes(point).unwrap(),
        }
        .to_der()
        .unwrap();
        // ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }
        let n = sig.len() / 2;
        let body =
            [UintRef::new(&sig[..n]).unwrap().to_der().unwrap(), UintRef::new(&sig[n..]).unwrap().to_der().unwrap()]
                .concat();
        let head = if body.len() < 0x80 { vec![0x30, body.len() as u8] } else { vec![0x30, 0x81, body.len() as u8] };
        let der_sig = [head, body].concat();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pub.der"), spki).unwrap();
        std::fs::write(dir.path().join("hash"), prehash).unwrap();
        std::fs::write(dir.path().join("sig"), der_sig).unwrap();
        std::process::Command::new("openssl")
            .current_dir(dir.path())
            .args([
                "pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", "pub.der", "-in", "hash", "-sigfile",
                "sig",
            ])
            .output()
            .expect("openssl on PATH")
            .status
            .success()
    }

    #[test]
    fn key_pair_generation() {
        for (params, curve) in [
            (P256_PARAMS, Curve::P256),
            (P384_PARAMS, Curve::P384),
            (P521_PARAMS, Curve::P521),
            (SECP256K1_PARAMS, Curve::Secp256k1),
        ] {
            let pair = unit(CKM_EC_KEY_PAIR_GEN).generate_key_pair(&[(CKA_EC_PARAMS, params.to_vec())], &[]).unwrap();
            let public = object(&pair.public);
            let private = object(&pair.private);
            assert_eq!(public.class(), CKO_PUBLIC_KEY);
            assert_eq!(private.class(), CKO_PRIVATE_KEY);
            for o in [&public, &private] {
                assert_eq!(o.key_type(), Some(CKK_EC));
                assert_eq!(o.get_raw(CKA_EC_PARAMS), Some(params));
            }
            assert_eq!(pair.public.len(), 4);
            assert_eq!(pair.private.len(), 4);
            // CKA_EC_POINT: OCTET STRING (04, length) of the uncompressed point.
            let ec_point = public.get_raw(CKA_EC_POINT).unwrap();
            let n = curve.byte_len();
            let head =
                if 2 * n + 1 < 0x80 { vec![0x04, (2 * n + 1) as u8] } else { vec![0x04, 0x81, (2 * n + 1) as u8] };
            assert_eq!(ec_point[..head.len() + 1], [&head[..], &[0x04]].concat()[..]);
            assert_eq!(ec_point.len(), 2 * n + 1 + head.len());
            assert_eq!(private.get_raw(CKA_VALUE).unwrap().len(), n);
            // The scalar and the point belong together.
            let k = EcSigningKey::new(curve, private.get_raw(CKA_VALUE).unwrap(), None).unwrap();
            assert_eq!(k.public_point(), point_of(&public));
            // Two generations differ.
            let (other, _) = generate(params);
            assert_ne!(other.get_raw(CKA_EC_POINT), public.get_raw(CKA_EC_POINT));
        }
    }

    #[test]
    fn curve_names_and_parameter_errors() {
        let printable = |s: &str| PrintableStringRef::new(s).unwrap().to_der().unwrap();
        for (name, expect) in [
            ("prime256v1", P256_PARAMS),
            ("secp256r1", P256_PARAMS),
            ("P-256", P256_PARAMS),
            ("secp384r1", P384_PARAMS),
            ("P-384", P384_PARAMS),
            ("secp521r1", P521_PARAMS),
            ("secp256k1", SECP256K1_PARAMS),
        ] {
            let (public, private) = generate(&printable(name));
            // Written back in the OID form.
            assert_eq!(public.get_raw(CKA_EC_PARAMS), Some(expect), "{name}");
            assert_eq!(private.get_raw(CKA_EC_PARAMS), Some(expect), "{name}");
        }
        assert_eq!(ObjectIdentifier::from_der(P256_PARAMS).unwrap(), const_oid::db::rfc5912::SECP_256_R_1);
        assert_eq!(ObjectIdentifier::from_der(P384_PARAMS).unwrap(), const_oid::db::rfc5912::SECP_384_R_1);
        assert_eq!(ObjectIdentifier::from_der(P521_PARAMS).unwrap(), const_oid::db::rfc5912::SECP_521_R_1);
        assert_eq!(ObjectIdentifier::from_der(SECP256K1_PARAMS).unwrap().to_string(), "1.3.132.0.10");
        let gen = unit(CKM_EC_KEY_PAIR_GEN);
        // In the private template only; in both, equal in meaning though not in form.
        let pair = gen.generate_key_pair(&[], &[(CKA_EC_PARAMS, P384_PARAMS.to_vec())]).unwrap();
        assert_eq!(object(&pair.private).get_raw(CKA_VALUE).unwrap().len(), 48);
        assert!(gen
            .generate_key_pair(&[(CKA_EC_PARAMS, P256_PARAMS.to_vec())], &[(CKA_EC_PARAMS, printable("prime256v1"))])
            .is_ok());
        assert_eq!(
            gen.generate_key_pair(&[(CKA_EC_PARAMS, P256_PARAMS.to_vec())], &[(CKA_EC_PARAMS, P384_PARAMS.to_vec())])
                .err(),
            Some(Error::TemplateInconsistent)
        );
        assert_eq!(gen.generate_key_pair(&[(CKA_LABEL, b"x".to_vec())], &[]).err(), Some(Error::TemplateIncomplete));
        for bad in [
            h("06092b2403030208010107"), // brainpoolP256r1
            h("06082a8648ce3d030101"),   // prime192v1
            h("0500"),                   // implicitlyCA
            h("3003020101"),             // explicit parameters (truncated)
            h("06082a8648ce3d0301"),     // OID cut short
            h("06082a8648ce3d03010700"), // trailing byte
            printable("prime192v1"),
            printable("prime256v2"),
            Vec::new(),
        ] {
            assert_eq!(
                gen.generate_key_pair(&[(CKA_EC_PARAMS, bad.clone())], &[]).err(),
                Some(Error::DomainParamsInvalid),
                "{}",
                hex::encode(&bad)
            );
        }
        // Other mechanisms do not generate key pairs.
        assert_eq!(
            unit(CKM_ECDSA).generate_key_pair(&[(CKA_EC_PARAMS, P256_PARAMS.to_vec())], &[]).err(),
            Some(Error::MechanismInvalid)
        );
    }

    #[test]
    fn ecdsa_of_any_hash_length_verified_by_the_curve_crates() {
        for params in [P256_PARAMS, P384_PARAMS] {
            let (public, private) = generate(params);
            let point = point_of(&public);
            let half = if params == P256_PARAMS { 16 } else { 24 };
            for len in [half, 28, 32, 48, 64, 100] {
                let hash = rand(len);
                let sig = sign(CKM_ECDSA, &private, &hash, 7);
                oracle_verify(params, &point, &hash, &sig);
                assert_eq!(verify(CKM_ECDSA, &public, &hash, &sig), Ok(()));
                // ECDSA is randomised: two signatures differ, both valid.
                let again = sign(CKM_ECDSA, &private, &hash, 1000);
                assert_ne!(again, sig);
                assert_eq!(verify(CKM_ECDSA, &public, &hash, &again), Ok(()));
            }
            for ty in [CKM_ECDSA_SHA1, CKM_ECDSA_SHA224, CKM_ECDSA_SHA256, CKM_ECDSA_SHA384, CKM_ECDSA_SHA512] {
                for dlen in [0, 1, 200, 1000] {
                    let data = rand(dlen);
                    let sig = sign(ty, &private, &data, 13);
                    // SHA-1 is shorter than the crates take on P-384: openssl checks it.
                    if ty == CKM_ECDSA_SHA1 {
                        assert!(openssl_verify(params, &point, &sha(ty, &data), &sig), "openssl verifies");
                    } else {
                        oracle_verify(params, &point, &sha(ty, &data), &sig);
                    }
                    assert_eq!(verify(ty, &public, &data, &sig), Ok(()));
                    // The same value through CKM_ECDSA on the caller's own digest.
                    assert_eq!(verify(CKM_ECDSA, &public, &sha(ty, &data), &sig), Ok(()));
                }
            }
        }
    }

    #[test]
    fn p521_and_secp256k1_signatures_verified_by_openssl() {
        for params in [P521_PARAMS, SECP256K1_PARAMS] {
            let (public, private) = generate(params);
            let point = point_of(&public);
            for len in [1, 20, 32, 48, 64] {
                let hash = rand(len);
                let sig = sign(CKM_ECDSA, &private, &hash, 5);
                assert!(openssl_verify(params, &point, &hash, &sig), "{len}");
                assert_eq!(verify(CKM_ECDSA, &public, &hash, &sig), Ok(()));
                let mut other = hash.clone();
                other[0] ^= 1;
                assert!(!openssl_verify(params, &point, &other, &sig));
                assert_eq!(verify(CKM_ECDSA, &public, &other, &sig), Err(Error::SignatureInvalid));
            }
            for ty in [CKM_ECDSA_SHA256, CKM_ECDSA_SHA384, CKM_ECDSA_SHA512] {
                let data = rand(300);
                let sig = sign(ty, &private, &data, 9);
                assert!(openssl_verify(params, &point, &sha(ty, &data), &sig), "{ty:#x}");
                assert_eq!(verify(ty, &public, &data, &sig), Ok(()));
            }
        }
        // P-521 signs the leftmost 521 bits of a longer value: aws-lc's form holds 512.
        let (_, private) = generate(P521_PARAMS);
        let mut op = unit(CKM_ECDSA).sign(&key(&private), &Param::None).unwrap();
        assert_eq!(op.update(&rand(66)).and_then(|()| op.finish()).err(), Some(Error::DataLenRange));
    }

    #[test]
    fn ecdh_on_p521_agrees_with_openssl_and_secp256k1_has_none() {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let out = std::process::Command::new("openssl").current_dir(dir.path()).args(args).output().unwrap();
            assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        run(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521", "-out", "peer.pem"]);
        run(&["pkey", "-in", "peer.pem", "-pubout", "-outform", "DER", "-out", "peer.der"]);
        let peer_spki = std::fs::read(dir.path().join("peer.der")).unwrap();
        let peer_point = peer_spki[peer_spki.len() - 133..].to_vec();
        assert_eq!(peer_point[0], 4);
        let (public, private) = generate(P521_PARAMS);
        let ours = unit(CKM_ECDH1_DERIVE).derive(&key(&private), &ecdh(peer_point), None).unwrap();
        assert_eq!(ours.len(), 66);
        let spki = spki::SubjectPublicKeyInfoRef {
            algorithm: spki::AlgorithmIdentifierRef {
                oid: const_oid::db::rfc5912::ID_EC_PUBLIC_KEY,
                parameters: Some(AnyRef::from_der(P521_PARAMS).unwrap()),
            },
            subject_public_key: BitStringRef::from_bytes(&point_of(&public)).unwrap(),
        }
        .to_der()
        .unwrap();
        std::fs::write(dir.path().join("ours.der"), spki).unwrap();
        run(&[
            "pkeyutl",
            "-derive",
            "-inkey",
            "peer.pem",
            "-peerkey",
            "ours.der",
            "-peerform",
            "DER",
            "-out",
            "secret",
        ]);
        assert_eq!(std::fs::read(dir.path().join("secret")).unwrap(), ours.as_slice());
        // secp256k1 signs; ECDH on it is served by neither aws-lc-rs nor AWS KMS.
        let (k1_public, k1_private) = generate(SECP256K1_PARAMS);
        assert_eq!(
            unit(CKM_ECDH1_DERIVE).derive(&key(&k1_private), &ecdh(point_of(&k1_public)), None).err(),
            Some(Error::CurveNotSupported)
        );
    }

    #[test]
    fn ecdsa_of_short_hashes_verified_by_openssl() {
        // Shorter than half the field: the RustCrypto crates refuse these prehashes.
        for (params, lens) in [(P256_PARAMS, &[1usize, 15, 20][..]), (P384_PARAMS, &[20, 23][..])] {
            let (public, private) = generate(params);
            let point = point_of(&public);
            for &len in lens {
                let hash = rand(len);
                let sig = sign(CKM_ECDSA, &private, &hash, 3);
                assert!(openssl_verify(params, &point, &hash, &sig), "{len}");
                assert_eq!(verify(CKM_ECDSA, &public, &hash, &sig), Ok(()));
                let mut other = hash.clone();
                other[0] ^= 1;
                assert!(!openssl_verify(params, &point, &other, &sig));
            }
        }
    }

    /// Wycheproof ecdsa_secp256r1_sha256_p1363_test.json and
    /// ecdsa_secp384r1_sha384_p1363_test.json: tcId 1 (valid), 8 (s changed),
    /// 9 (r = s = 0), 25 (r = s = n).
    #[test]
    fn wycheproof_verification_vectors() {
        let cases = [
            (
                P256_PARAMS,
                CKM_ECDSA_SHA256,
                "042927b10512bae3eddcfe467828128bad2903269919f7086069c8c4df6c732838c7787964eaac00e5921fb1498a60f4606766b3d9685001558d1a974e7341513e",
                [
                    ("2ba3a8be6b94d5ec80a6d9d1190a436effe50d85a1eee859b8cc6af9bd5c2e184cd60b855d442f5b3c7b11eb6c4e0ae7525fe710fab9aa7c77a67f79e6fadd76", Ok(())),
                    ("2ba3a8be6b94d5ec80a6d9d1190a436effe50d85a1eee859b8cc6af9bd5c2e184cd60b865d442f5a3c7b11eb6c4e0ae79578ec6353a20bf783ecb4b6ea97b825", Err(Error::SignatureInvalid)),
                    ("00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000", Err(Error::SignatureInvalid)),
                    ("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551", Err(Error::SignatureInvalid)),
                ],
            ),
            (
                P384_PARAMS,
                CKM_ECDSA_SHA384,
                "042da57dda1089276a543f9ffdac0bff0d976cad71eb7280e7d9bfd9fee4bdb2f20f47ff888274389772d98cc5752138aa4b6d054d69dcf3e25ec49df870715e34883b1836197d76f8ad962e78f6571bbc7407b0d6091f9e4d88f014274406174f",
                [
                    ("12b30abef6b5476fe6b612ae557c0425661e26b44b1bfe19daf2ca28e3113083ba8e4ae4cc45a0320abd3394f1c548d71840da9fc1d2f8f8900cf485d5413b8c2574ee3a8d4ca03995ca30240e09513805bf6209b58ac7aa9cff54eecd82b9f1", Ok(())),
                    ("12b30abef6b5476fe6b612ae557c0425661e26b44b1bfe19daf2ca28e3113083ba8e4ae4cc45a0320abd3394f1c548d71840da9fc1d2f8f8900cf485d5413b8c2574ee3a8d4ca039ce66e2a219d22358ada554576cda202fb0133b8400bd907e", Err(Error::SignatureInvalid)),
                    ("000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000", Err(Error::SignatureInvalid)),
                    ("ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973", Err(Error::SignatureInvalid)),
                ],
            ),
        ];
        let msg = h("313233343030");
        for (params, ty, point, sigs) in cases {
            let point = h(point);
            // CKA_EC_POINT raw and DER-wrapped alike.
            for attr in [point.clone(), encode_point(&point).unwrap()] {
                let public = public_obj(params, attr);
                for (sig, expect) in &sigs {
                    assert_eq!(verify(ty, &public, &msg, &h(sig)), *expect, "{sig}");
                }
                let valid = h(sigs[0].0);
                assert_eq!(verify(ty, &public, b"12340", &valid), Err(Error::SignatureInvalid));
                assert_eq!(verify(ty, &public, &msg, &valid[1..]), Err(Error::SignatureLenRange));
                assert_eq!(
                    verify(ty, &public, &msg, &[valid.as_slice(), &[0]].concat()),
                    Err(Error::SignatureLenRange)
                );
                // A DER signature is not the PKCS#11 form.
                assert_eq!(verify(ty, &public, &msg, &[]), Err(Error::SignatureLenRange));
            }
        }
    }

    #[test]
    fn key_errors() {
        let (public, private) = generate(P256_PARAMS);
        let ecdsa = unit(CKM_ECDSA);
        // Wrong key type, wrong class for the operation.
        let mut as_rsa = key(&private);
        as_rsa.key_type = CKK_RSA;
        assert_eq!(ecdsa.sign(&as_rsa, &Param::None).err(), Some(Error::KeyTypeInconsistent));
        assert_eq!(ecdsa.sign(&key(&public), &Param::None).err(), Some(Error::KeyTypeInconsistent));
        assert_eq!(ecdsa.verify(&key(&private), &Param::None).err(), Some(Error::KeyTypeInconsistent));
        // A parameter where none belongs; an empty one is no parameter.
        assert_eq!(ecdsa.sign(&key(&private), &Param::Bytes(vec![1])).err(), Some(Error::MechanismParamInvalid));
        assert!(ecdsa.sign(&key(&private), &Param::Bytes(Vec::new())).is_ok());
        // Key material that is no key: an unserved curve, a missing or out-of-range
        // scalar, a point off the curve or of another curve, a point that does not
        // belong to the scalar.
        let mut p521 = object(&[
            (CKA_CLASS, ck_ulong(CKO_PRIVATE_KEY)),
            (CKA_KEY_TYPE, ck_ulong(CKK_EC)),
            (CKA_EC_PARAMS, h("06092b2403030208010107")), // brainpoolP256r1
            (CKA_VALUE, vec![1; 32]),
        ]);
        assert_eq!(ecdsa.sign(&key(&p521), &Param::None).err(), Some(Error::KeyTypeInconsistent));
        p521.set(CKA_EC_PARAMS, P521_PARAMS.to_vec());
        p521.set(CKA_VALUE, vec![0xFF; 66]); // above P-521's order
        assert_eq!(ecdsa.sign(&key(&p521), &Param::None).err(), Some(Error::KeyTypeInconsistent));
        let below = object(&[
            (CKA_CLASS, ck_ulong(CKO_PRIVATE_KEY)),
            (CKA_KEY_TYPE, ck_ulong(CKK_EC)),
            (CKA_EC_PARAMS, P521_PARAMS.to_vec()),
            (CKA_VALUE, vec![1; 66]),
        ]);
        assert!(ecdsa.sign(&key(&below), &Param::None).is_ok(), "a P-521 scalar below the order");
        p521.set(CKA_VALUE, vec![1; 66]);
        p521.set(CKA_EC_PARAMS, P256_PARAMS.to_vec());
        assert_eq!(ecdsa.sign(&key(&p521), &Param::None).err(), Some(Error::KeyTypeInconsistent));
        p521.set(CKA_VALUE, vec![0xFF; 32]); // above the order
        assert_eq!(ecdsa.sign(&key(&p521), &Param::None).err(), Some(Error::KeyTypeInconsistent));
        p521.set(CKA_VALUE, vec![0; 32]);
        assert_eq!(ecdsa.sign(&key(&p521), &Param::None).err(), Some(Error::KeyTypeInconsistent));
        let mut no_value = object(&[
            (CKA_CLASS, ck_ulong(CKO_PRIVATE_KEY)),
            (CKA_KEY_TYPE, ck_ulong(CKK_EC)),
            (CKA_EC_PARAMS, P256_PARAMS.to_vec()),
        ]);
        assert_eq!(ecdsa.sign(&key(&no_value), &Param::None).err(), Some(Error::KeyTypeInconsistent));
        // A scalar with its leading zeros dropped (as some clients store it) still works.
        no_value.set(CKA_VALUE, vec![0, 0, 5]);
        assert!(ecdsa.sign(&key(&no_value), &Param::None).is_ok());
        let (other_public, _) = generate(P256_PARAMS);
        let mut mismatched = object(&[]);
        for (ty, v) in &private.attrs {
            mismatched.set(*ty, v.to_vec());
        }
        mismatched.set(CKA_EC_POINT, other_public.get_raw(CKA_EC_POINT).unwrap().to_vec());
        assert_eq!(ecdsa.sign(&key(&mismatched), &Param::None).err(), Some(Error::KeyTypeInconsistent));
        let mut off_curve = point_of(&public);
        off_curve[40] ^= 1;
        let (p384_public, _) = generate(P384_PARAMS);
        for point in [off_curve, point_of(&p384_public), vec![4; 65], Vec::new()] {
            let o = public_obj(P256_PARAMS, point);
            assert_eq!(ecdsa.verify(&key(&o), &Param::None).err(), Some(Error::KeyTypeInconsistent));
        }
        // A compressed point is a point.
        let full = point_of(&public);
        let mut compressed = vec![2 + (full[64] & 1)];
        compressed.extend_from_slice(&full[1..33]);
        let hash = rand(32);
        let sig = sign(CKM_ECDSA, &private, &hash, 32);
        assert_eq!(verify(CKM_ECDSA, &public_obj(P256_PARAMS, compressed), &hash, &sig), Ok(()));
        // What these units do not do.
        assert_eq!(ecdsa.encrypt(&key(&public), &Param::None).err(), Some(Error::MechanismInvalid));
        assert_eq!(ecdsa.derive(&key(&private), &Param::None, None).err(), Some(Error::MechanismInvalid));
        assert_eq!(unit(CKM_ECDH1_DERIVE).sign(&key(&private), &Param::None).err(), Some(Error::MechanismInvalid));
    }

    #[test]
    fn parsed_keys_are_cached_with_the_object() {
        let (public, private) = generate(P384_PARAMS);
        let a = signing_key(&key(&private)).unwrap();
        let b = signing_key(&key(&private)).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let c = agreement_key(&key(&private)).unwrap();
        let d = agreement_key(&key(&private)).unwrap();
        assert!(Arc::ptr_eq(&c, &d));
        // Both forms live side by side: the signing key is still the same.
        assert!(Arc::ptr_eq(&a, &signing_key(&key(&private)).unwrap()));
        let v = verifying_key(&key(&public)).unwrap();
        assert!(Arc::ptr_eq(&v, &verifying_key(&key(&public)).unwrap()));
        // A copy of the object starts afresh.
        let copy = private.clone();
        assert!(!Arc::ptr_eq(&a, &signing_key(&key(&copy)).unwrap()));
    }

    #[test]
    fn operations_end() {
        let (public, private) = generate(P256_PARAMS);
        let mut op = unit(CKM_ECDSA_SHA256).sign(&key(&private), &Param::None).unwrap();
        assert_eq!(op.sig_len(), 64);
        op.update(b"x").unwrap();
        let sig = op.finish().unwrap();
        assert_eq!(op.update(b"y").err(), Some(Error::OperationNotInitialized));
        assert_eq!(op.finish().err(), Some(Error::OperationNotInitialized));
        let mut v = unit(CKM_ECDSA_SHA256).verify(&key(&public), &Param::None).unwrap();
        v.update(b"x").unwrap();
        assert_eq!(v.finish(&sig), Ok(()));
        assert_eq!(v.finish(&sig), Err(Error::OperationNotInitialized));
        assert_eq!(v.update(b"x"), Err(Error::OperationNotInitialized));
    }

    fn ecdh(ty_point: Vec<u8>) -> Param {
        Param::Ecdh { kdf: CKD_NULL, shared_data: Vec::new(), public_data: ty_point }
    }

    #[test]
    fn ecdh_against_the_curve_crates() {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        let derive = unit(CKM_ECDH1_DERIVE);
        // P-256
        let (public, private) = generate(P256_PARAMS);
        let ours = p256::PublicKey::from_sec1_bytes(&point_of(&public)).unwrap();
        let peer = p256::SecretKey::from_slice(&rand(32)).unwrap();
        let peer_point = peer.public_key().to_encoded_point(false).as_bytes().to_vec();
        let expect = p256::ecdh::diffie_hellman(peer.to_nonzero_scalar(), ours.as_affine());
        for data in [peer_point.clone(), encode_point(&peer_point).unwrap()] {
            let secret = derive.derive(&key(&private), &ecdh(data), None).unwrap();
            assert_eq!(secret.as_slice(), expect.raw_secret_bytes().as_slice());
        }
        let compressed = peer.public_key().to_encoded_point(true).as_bytes().to_vec();
        let secret = derive.derive(&key(&private), &ecdh(compressed), None).unwrap();
        assert_eq!(secret.as_slice(), expect.raw_secret_bytes().as_slice());
        // P-384
        let (public, private) = generate(P384_PARAMS);
        let ours = p384::PublicKey::from_sec1_bytes(&point_of(&public)).unwrap();
        let peer = p384::SecretKey::from_slice(&rand(48)).unwrap();
        let peer_point = peer.public_key().to_encoded_point(false).as_bytes().to_vec();
        let expect = p384::ecdh::diffie_hellman(peer.to_nonzero_scalar(), ours.as_affine());
        let secret = derive.derive(&key(&private), &ecdh(peer_point.clone()), None).unwrap();
        assert_eq!(secret.len(), 48);
        assert_eq!(secret.as_slice(), expect.raw_secret_bytes().as_slice());

        // The X9.63 and SP 800-56C KDFs over the same secret, against sha2.
        let z = expect.raw_secret_bytes().to_vec();
        for (kdf, first) in [(CKD_SHA256_KDF, false), (CKD_SHA256_KDF_SP800, true)] {
            let p = Param::Ecdh { kdf, shared_data: b"info".to_vec(), public_data: peer_point.clone() };
            let got = derive.derive(&key(&private), &p, Some(40)).unwrap();
            let block = |c: u32| {
                let mut d = sha2::Sha256::new();
                if first {
                    d.update(c.to_be_bytes());
                    d.update(&z);
                } else {
                    d.update(&z);
                    d.update(c.to_be_bytes());
                }
                d.update(b"info");
                d.finalize().to_vec()
            };
            assert_eq!(got.as_slice(), &[block(1), block(2)].concat()[..40], "{kdf}");
        }

        // Parameter errors: another KDF, shared data with the null KDF, another
        // parameter, a point off the curve, of another curve, of no known form.
        let bad_params = [
            Param::Ecdh { kdf: CKD_SHA3_256_KDF, shared_data: Vec::new(), public_data: peer_point.clone() },
            Param::Ecdh { kdf: CKD_NULL, shared_data: vec![1], public_data: peer_point.clone() },
            Param::None,
            Param::Bytes(peer_point.clone()),
            ecdh({
                let mut p = peer_point.clone();
                p[60] ^= 1;
                p
            }),
            ecdh(point_of(&generate(P256_PARAMS).0)),
            ecdh(peer_point[1..].to_vec()),
            ecdh(vec![0x04]),
            ecdh(Vec::new()),
        ];
        for p in bad_params {
            assert_eq!(derive.derive(&key(&private), &p, None).err(), Some(Error::MechanismParamInvalid), "{p:?}");
        }
        assert_eq!(derive.derive(&key(&public), &ecdh(peer_point), None).err(), Some(Error::KeyTypeInconsistent));
    }

    #[test]
    fn mechanism_info() {
        for u in UNITS {
            let info = u.info();
            assert_eq!((info.min_key, info.max_key), (256, 521));
            assert_ne!(info.flags & CKF_EC_F_P, 0);
            let expect = match u.ty() {
                CKM_EC_KEY_PAIR_GEN => CKF_GENERATE_KEY_PAIR,
                CKM_ECDH1_DERIVE => CKF_DERIVE,
                _ => CKF_SIGN | CKF_VERIFY,
            };
            assert_ne!(info.flags & expect, 0);
        }
        assert_eq!(unit(CKM_ECDSA).key_types(), &[CKK_EC]);
        assert_eq!(UNITS.len(), 8);
    }
}
