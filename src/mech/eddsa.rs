//! EdDSA on Ed25519 (PKCS#11 3.0, CKK_EC_EDWARDS): key-pair generation and CKM_EDDSA in
//! the three variants of RFC 8032 its parameter names (Ed25519, Ed25519ctx, Ed25519ph).
//! Ed448 is not served: aws-lc has no Ed448, and CKA_EC_PARAMS naming it are
//! CKR_DOMAIN_PARAMS_INVALID.
//!
//! CKA_EC_PARAMS name the curve by OID (id-Ed25519, RFC 8410) or by the printable name
//! `edwards25519` (the form PKCS#11 3.0 gives); the token keeps the form it was given.
//! CKA_EC_POINT holds the DER OCTET STRING of the 32-byte public key (raw 32 bytes are
//! taken on import); a private key's CKA_VALUE is the 32-byte seed.

use super::{Info, Key, KeyPair, Param, SignOp, Unit, VerifyOp};
use crate::crypto::{self, Digest, Ed25519SigningKey, Ed25519Variant, Ed25519VerifyingKey, Hash};
use crate::error::{Error, Result};
use crate::object::{ck_ulong, Object, Template};
use cryptoki_sys::*;
use std::sync::Arc;
use zeroize::Zeroizing;

const EDWARDS_KEY_TYPES: &[CK_KEY_TYPE] = &[CKK_EC_EDWARDS];

/// id-Ed25519 (1.3.101.112), the OID form of CKA_EC_PARAMS this token writes.
pub const ED25519_PARAMS: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

/// Key sizes in bits, as C_GetMechanismInfo reports them.
fn eddsa_info(flags: CK_FLAGS) -> Info {
    Info { min_key: 255, max_key: 255, flags: flags | CKF_EC_NAMEDCURVE | CKF_EC_CURVENAME }
}

/// Whether CKA_EC_PARAMS name Ed25519 (by OID or by name).
pub fn is_ed25519(params: &[u8]) -> bool {
    super::names_curve(params, "1.3.101.112", "edwards25519")
}

fn decode_point(v: &[u8]) -> Option<&[u8]> {
    super::octet_point(v, crypto::ED25519_KEY_LEN)
}

fn encode_point(public: &[u8]) -> Result<Vec<u8>> {
    super::encode_octet_point(public)
}

fn edwards_object<'k>(key: &Key<'k>, class: CK_OBJECT_CLASS) -> Result<&'k Object> {
    if key.key_type != CKK_EC_EDWARDS {
        return Err(Error::KeyTypeInconsistent);
    }
    let obj = key.attrs.ok_or_else(|| Error::general("EdDSA key passed without its object"))?;
    if obj.class() != class || !obj.get_raw(CKA_EC_PARAMS).is_some_and(is_ed25519) {
        return Err(Error::KeyTypeInconsistent);
    }
    Ok(obj)
}

fn signing_key(key: &Key) -> Result<Arc<Ed25519SigningKey>> {
    let obj = edwards_object(key, CKO_PRIVATE_KEY)?;
    obj.prepared(|| Ed25519SigningKey::new(obj.get_raw(CKA_VALUE).ok_or(Error::KeyTypeInconsistent)?, None))
}

fn verifying_key(key: &Key) -> Result<Arc<Ed25519VerifyingKey>> {
    let obj = edwards_object(key, CKO_PUBLIC_KEY)?;
    obj.prepared(|| {
        let point = obj.get_raw(CKA_EC_POINT).and_then(decode_point).ok_or(Error::KeyTypeInconsistent)?;
        Ed25519VerifyingKey::new(point)
    })
}

/// Checks an Ed25519 key given by C_CreateObject (or the command line's import) and
/// writes its CKA_EC_POINT in the token's form. Other Edwards curves are
/// CKR_DOMAIN_PARAMS_INVALID; a key that is not one is CKR_ATTRIBUTE_VALUE_INVALID.
pub fn check_import(obj: &mut Object) -> Result<()> {
    if !obj.get_raw(CKA_EC_PARAMS).is_some_and(is_ed25519) {
        return Err(Error::DomainParamsInvalid);
    }
    match obj.class() {
        CKO_PUBLIC_KEY => {
            let point = obj.get_raw(CKA_EC_POINT).and_then(decode_point).ok_or(Error::AttributeValueInvalid)?.to_vec();
            Ed25519VerifyingKey::new(&point).map_err(|_| Error::AttributeValueInvalid)?;
            obj.set(CKA_EC_POINT, encode_point(&point)?);
        }
        CKO_PRIVATE_KEY => {
            let seed = obj.get_raw(CKA_VALUE).unwrap_or_default();
            Ed25519SigningKey::new(seed, None).map_err(|_| Error::AttributeValueInvalid)?;
        }
        _ => {}
    }
    Ok(())
}

/// The CKA_EC_POINT that belongs to an Ed25519 seed.
pub fn public_point_of(seed: &[u8]) -> Result<Vec<u8>> {
    encode_point(Ed25519SigningKey::new(seed, None).map_err(|_| Error::AttributeValueInvalid)?.public_key())
}

/// CKM_EC_EDWARDS_KEY_PAIR_GEN: the curve from CKA_EC_PARAMS of the public template (or
/// the private one; the two must then agree).
struct EdwardsKeyPairGen;

impl Unit for EdwardsKeyPairGen {
    fn ty(&self) -> CK_MECHANISM_TYPE {
        CKM_EC_EDWARDS_KEY_PAIR_GEN
    }
    fn info(&self) -> Info {
        eddsa_info(CKF_GENERATE_KEY_PAIR)
    }
    fn generate_key_pair(&self, public: &Template, private: &Template) -> Result<KeyPair> {
        let params = super::pair_params(public, private)?;
        if !is_ed25519(params) {
            return Err(Error::DomainParamsInvalid);
        }
        let (seed, public) = crypto::ed25519_generate()?;
        Ok(KeyPair {
            public: vec![
                (CKA_CLASS, ck_ulong(CKO_PUBLIC_KEY)),
                (CKA_KEY_TYPE, ck_ulong(CKK_EC_EDWARDS)),
                (CKA_EC_PARAMS, params.to_vec()),
                (CKA_EC_POINT, encode_point(&public)?),
            ],
            private: vec![
                (CKA_CLASS, ck_ulong(CKO_PRIVATE_KEY)),
                (CKA_KEY_TYPE, ck_ulong(CKK_EC_EDWARDS)),
                (CKA_EC_PARAMS, params.to_vec()),
                (CKA_VALUE, seed.to_vec()),
            ],
        })
    }
}

/// The variant CK_EDDSA_PARAMS name: none, or no pre-hash with an empty context, is pure
/// Ed25519; a context without pre-hash is Ed25519ctx; pre-hash is Ed25519ph.
fn variant(p: &Param) -> Result<Ed25519Variant> {
    match p {
        Param::None => Ok(Ed25519Variant::Pure),
        Param::Bytes(b) if b.is_empty() => Ok(Ed25519Variant::Pure),
        Param::Ed25519phDigest => Ok(Ed25519Variant::Ph(Vec::new())),
        Param::Eddsa { prehash, context } if context.len() <= 255 => Ok(match (prehash, context.is_empty()) {
            (false, true) => Ed25519Variant::Pure,
            (false, false) => Ed25519Variant::Ctx(context.clone()),
            (true, _) => Ed25519Variant::Ph(context.clone()),
        }),
        _ => Err(Error::MechanismParamInvalid),
    }
}

/// The input of an EdDSA operation: Ed25519 and Ed25519ctx sign the whole message, so it
/// is kept; Ed25519ph signs its SHA-512, computed as it comes.
enum Input {
    Message(Zeroizing<Vec<u8>>),
    Hashed(Digest),
}

impl Input {
    fn new(v: &Ed25519Variant, p: &Param) -> Self {
        match v {
            Ed25519Variant::Ph(_) if !matches!(p, Param::Ed25519phDigest) => Input::Hashed(Digest::new(Hash::Sha512)),
            _ => Input::Message(Zeroizing::new(Vec::new())),
        }
    }

    fn update(&mut self, data: &[u8]) -> Result<()> {
        match self {
            Input::Message(m) => {
                // Grown in one allocation, so no unzeroised copy is left behind; the caller
                // decides how much, so a failed allocation is CKR_HOST_MEMORY.
                let mut grown = Zeroizing::new(Vec::new());
                let want = m.len().checked_add(data.len()).ok_or(Error::HostMemory)?;
                grown.try_reserve_exact(want).map_err(|_| Error::HostMemory)?;
                grown.extend_from_slice(m);
                grown.extend_from_slice(data);
                *m = grown;
            }
            Input::Hashed(d) => d.update(data),
        }
        Ok(())
    }

    fn finish(self) -> Zeroizing<Vec<u8>> {
        match self {
            Input::Message(m) => m,
            Input::Hashed(d) => Zeroizing::new(d.finish()),
        }
    }
}

struct EddsaSign {
    key: Arc<Ed25519SigningKey>,
    variant: Ed25519Variant,
    /// `None` once finished.
    input: Option<Input>,
}

impl SignOp for EddsaSign {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.input.as_mut().ok_or(Error::OperationNotInitialized)?.update(data)
    }
    fn finish(&mut self) -> Result<Vec<u8>> {
        let input = self.input.take().ok_or(Error::OperationNotInitialized)?.finish();
        self.key.sign(&self.variant, &input)
    }
    fn sig_len(&self) -> usize {
        crypto::ED25519_SIG_LEN
    }
}

struct EddsaVerify {
    key: Arc<Ed25519VerifyingKey>,
    variant: Ed25519Variant,
    input: Option<Input>,
}

impl VerifyOp for EddsaVerify {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.input.as_mut().ok_or(Error::OperationNotInitialized)?.update(data)
    }
    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        let input = self.input.take().ok_or(Error::OperationNotInitialized)?.finish();
        self.key.verify(&self.variant, &input, signature)
    }
}

/// CKM_EDDSA: signatures are R || S, 64 bytes.
struct EddsaUnit;

impl Unit for EddsaUnit {
    fn ty(&self) -> CK_MECHANISM_TYPE {
        CKM_EDDSA
    }
    fn info(&self) -> Info {
        eddsa_info(CKF_SIGN | CKF_VERIFY)
    }
    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        EDWARDS_KEY_TYPES
    }
    fn sign(&self, key: &Key, p: &Param) -> Result<Box<dyn SignOp>> {
        let variant = variant(p)?;
        Ok(Box::new(EddsaSign { key: signing_key(key)?, input: Some(Input::new(&variant, p)), variant }))
    }
    fn verify(&self, key: &Key, p: &Param) -> Result<Box<dyn VerifyOp>> {
        let variant = variant(p)?;
        Ok(Box::new(EddsaVerify { key: verifying_key(key)?, input: Some(Input::new(&variant, p)), variant }))
    }
}

pub static UNITS: &[&dyn Unit] = &[&EdwardsKeyPairGen, &EddsaUnit];

#[cfg(test)]
mod tests {
    //! Ed25519 against RFC 8032's test vectors (section 7.1 Ed25519, 7.2 Ed25519ctx, 7.3
    //! Ed25519ph) and against the ed25519-dalek crate, and the parameter and key errors.
    use super::*;
    use crate::crypto::test_keys::{h, rand};
    use crate::mech::test_support::object;
    use der::asn1::OctetStringRef;
    use der::Decode;
    use ed25519_dalek::{Signer as _, Verifier as _};
    use sha2::Digest as _;

    fn unit(ty: CK_MECHANISM_TYPE) -> &'static dyn Unit {
        UNITS.iter().copied().find(|u| u.ty() == ty).expect("unit")
    }

    fn key(obj: &Object) -> Key<'_> {
        Key { key_type: CKK_EC_EDWARDS, value: &[], attrs: Some(obj) }
    }

    fn objects(seed: &[u8], params: &[u8]) -> (Object, Object) {
        let private = object(&[
            (CKA_CLASS, ck_ulong(CKO_PRIVATE_KEY)),
            (CKA_KEY_TYPE, ck_ulong(CKK_EC_EDWARDS)),
            (CKA_EC_PARAMS, params.to_vec()),
            (CKA_VALUE, seed.to_vec()),
        ]);
        let public = object(&[
            (CKA_CLASS, ck_ulong(CKO_PUBLIC_KEY)),
            (CKA_KEY_TYPE, ck_ulong(CKK_EC_EDWARDS)),
            (CKA_EC_PARAMS, params.to_vec()),
            (CKA_EC_POINT, public_point_of(seed).unwrap()),
        ]);
        (private, public)
    }

    fn sign(private: &Object, p: &Param, data: &[u8], part: usize) -> Vec<u8> {
        let mut op = unit(CKM_EDDSA).sign(&key(private), p).unwrap();
        for chunk in data.chunks(part.max(1)) {
            op.update(chunk).unwrap();
        }
        op.finish().unwrap()
    }

    fn verify(public: &Object, p: &Param, data: &[u8], sig: &[u8]) -> Result<()> {
        let mut op = unit(CKM_EDDSA).verify(&key(public), p)?;
        op.update(data)?;
        op.finish(sig)
    }

    fn eddsa(prehash: bool, context: &[u8]) -> Param {
        Param::Eddsa { prehash, context: context.to_vec() }
    }

    /// RFC 8032 7.1 TEST 2, 7.2 (foo), 7.3 (abc): secret key, message, context, signature.
    #[test]
    fn rfc_8032_vectors() {
        let cases = [
            (
                "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
                "72",
                Param::None,
                "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
            ),
            (
                "0305334e381af78f141cb666f6199f57bc3495335a256a95bd2a55bf546663f6",
                "f726936d19c800494e3fdaff20b276a8",
                eddsa(false, b"foo"),
                "55a4cc2f70a54e04288c5f4cd1e45a7bb520b36292911876cada7323198dd87a8b36950b95130022907a7fb7c4e9b2d5f6cca685a587b4b21f4b888e4e7edb0d",
            ),
            (
                "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
                "616263",
                eddsa(true, b""),
                "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae4131f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406",
            ),
        ];
        for (seed, msg, p, expected) in cases {
            let (private, public) = objects(&h(seed), ED25519_PARAMS);
            let sig = sign(&private, &p, &h(msg), 1);
            assert_eq!(hex::encode(&sig), expected, "{p:?}");
            verify(&public, &p, &h(msg), &sig).unwrap();
        }
    }

    #[test]
    fn signatures_are_verified_by_ed25519_dalek_and_back() {
        let pair = unit(CKM_EC_EDWARDS_KEY_PAIR_GEN)
            .generate_key_pair(&[(CKA_EC_PARAMS, ED25519_PARAMS.to_vec())], &[])
            .unwrap();
        let (public, private) = (object(&pair.public), object(&pair.private));
        let seed: [u8; 32] = private.get_raw(CKA_VALUE).unwrap().try_into().unwrap();
        let theirs = ed25519_dalek::SigningKey::from_bytes(&seed);
        let point = OctetStringRef::from_der(public.get_raw(CKA_EC_POINT).unwrap()).unwrap().as_bytes().to_vec();
        assert_eq!(point, theirs.verifying_key().to_bytes());
        let data = rand(300);
        // Pure Ed25519, in parts and at once.
        let sig = sign(&private, &Param::None, &data, 7);
        theirs.verifying_key().verify(&data, &ed25519_dalek::Signature::from_slice(&sig).unwrap()).unwrap();
        verify(&public, &Param::None, &data, &theirs.sign(&data).to_bytes()).unwrap();
        // Ed25519ph with and without a context.
        for ctx in [&b""[..], b"context"] {
            let sig = sign(&private, &eddsa(true, ctx), &data, 50);
            let prehashed = sha2::Sha512::new_with_prefix(&data);
            let ok = theirs.verifying_key().verify_prehashed(
                prehashed.clone(),
                Some(ctx),
                &ed25519_dalek::Signature::from_slice(&sig).unwrap(),
            );
            ok.unwrap();
            let back = theirs.sign_prehashed(prehashed, Some(ctx)).unwrap();
            verify(&public, &eddsa(true, ctx), &data, &back.to_bytes()).unwrap();
        }
    }

    #[test]
    fn errors() {
        let gen = unit(CKM_EC_EDWARDS_KEY_PAIR_GEN);
        let ed448 = [0x06, 0x03, 0x2b, 0x65, 0x71];
        assert_eq!(
            gen.generate_key_pair(&[(CKA_EC_PARAMS, ed448.to_vec())], &[]).err(),
            Some(Error::DomainParamsInvalid)
        );
        assert_eq!(gen.generate_key_pair(&[], &[]).err(), Some(Error::TemplateIncomplete));
        let by_name = [&[0x13, 0x0c][..], b"edwards25519"].concat();
        assert!(gen.generate_key_pair(&[(CKA_EC_PARAMS, by_name.clone())], &[]).is_ok());
        let (private, public) = objects(&rand(32), &by_name);
        let sig = sign(&private, &Param::None, b"m", 1);
        let mut bad = sig.clone();
        bad[0] ^= 1;
        assert_eq!(verify(&public, &Param::None, b"m", &bad), Err(Error::SignatureInvalid));
        assert_eq!(verify(&public, &Param::None, b"m", &sig[..63]), Err(Error::SignatureLenRange));
        assert_eq!(verify(&public, &eddsa(false, b"x"), b"m", &sig), Err(Error::SignatureInvalid), "another variant");
        let long = eddsa(false, &[0; 256]);
        assert_eq!(unit(CKM_EDDSA).sign(&key(&private), &long).err(), Some(Error::MechanismParamInvalid));
        assert_eq!(unit(CKM_EDDSA).sign(&key(&public), &Param::None).err(), Some(Error::KeyTypeInconsistent));
        let mut other = objects(&rand(32), &ed448).0;
        assert_eq!(unit(CKM_EDDSA).sign(&key(&other), &Param::None).err(), Some(Error::KeyTypeInconsistent));
        assert_eq!(check_import(&mut other), Err(Error::DomainParamsInvalid));
        let mut short = objects(&rand(32), ED25519_PARAMS).1;
        short.set(CKA_EC_POINT, vec![4; 31]);
        assert_eq!(check_import(&mut short), Err(Error::AttributeValueInvalid));
        // A raw 32-byte point is taken and stored as its DER OCTET STRING.
        let seed = rand(32);
        let mut raw = objects(&seed, ED25519_PARAMS).1;
        let point = OctetStringRef::from_der(raw.get_raw(CKA_EC_POINT).unwrap()).unwrap().as_bytes().to_vec();
        raw.set(CKA_EC_POINT, point);
        check_import(&mut raw).unwrap();
        assert_eq!(raw.get_raw(CKA_EC_POINT).unwrap(), public_point_of(&seed).unwrap());
    }
}
