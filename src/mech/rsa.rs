//! RSA mechanisms: key-pair generation; PKCS#1 v1.5 signatures (over a caller's
//! DigestInfo or raw data, or over data with SHA-1/224/256/384/512), encryption and
//! decryption (with implicit rejection) and key wrapping; PSS signatures; OAEP
//! encryption, decryption and key wrapping.
//!
//! The primitives come from `crypto`; this file holds the PKCS#11 rules on top of them:
//! the templates of key-pair generation, which object class each operation takes, the
//! parameters of PSS and OAEP, input length limits and which error each case reports.
//! Parsed keys are kept with their cached object (`Object::prepared`).

use super::{
    unwrap_with, wrap_with, CipherOp, Info, Key, KeyPair, Param, SignOp, SinglePart, SinglePartOp, Unit, VerifyOp,
};
use crate::crypto::{self, Digest, Hash, RsaParts, RsaPrivateKey, RsaPublicKey};
use crate::error::{Error, Result};
use crate::object::{ck_ulong, Object, Template};
use cryptoki_sys::*;
use std::sync::Arc;
use zeroize::Zeroizing;

type Secret = Zeroizing<Vec<u8>>;

const RSA_KEY_TYPES: &[CK_KEY_TYPE] = &[CKK_RSA];
/// Modulus sizes served, in bits, the widest the token has: public keys from 512 bits
/// (old signatures are still verified), private keys from 1024, both up to 16384. The
/// profile narrows what a key may be made with (`config::Profile`); the sizes aws-lc-rs
/// does not serve go through the raw operations of `crypto`.
const MIN_PUBLIC_BITS: usize = 512;
const MIN_PRIVATE_BITS: usize = 1024;
const MAX_BITS: usize = 16384;
/// The key sizes key-pair generation makes: 1024 to 4096 bits, in steps of 128 (aws-lc
/// makes its primes in whole 64-bit words and rounds other sizes down).
const GENERATED_BITS: std::ops::RangeInclusive<usize> = 1024..=4096;
const GENERATED_STEP: usize = 128;
/// Longest OAEP label accepted. The label is only hashed, so the standard sets no
/// practical limit; this bound keeps a caller from handing the token unbounded memory.
const MAX_OAEP_LABEL: usize = 64 * 1024;

/// What C_GetMechanismInfo reports: the sizes of keys the mechanism serves in all its
/// functions (public keys from 512 bits only verify, encrypt and wrap), or for generation
/// the sizes it makes; the profile may narrow both (see `Registry::info`).
fn rsa_info(flags: CK_FLAGS) -> Info {
    let sizes = if flags & CKF_GENERATE_KEY_PAIR != 0 { GENERATED_BITS } else { MIN_PRIVATE_BITS..=MAX_BITS };
    Info { min_key: *sizes.start() as u64, max_key: *sizes.end() as u64, flags }
}

fn strip_zeros(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| *b != 0).unwrap_or(v.len());
    &v[start..]
}

/// The object of an RSA key of `class`: private to sign, decrypt and unwrap, public to
/// verify, encrypt and wrap.
fn rsa_object<'k>(key: &Key<'k>, class: CK_OBJECT_CLASS) -> Result<&'k Object> {
    if key.key_type != CKK_RSA {
        return Err(Error::KeyTypeInconsistent);
    }
    let obj = key.attrs.ok_or_else(|| Error::general("RSA key passed without its object"))?;
    if obj.class() != class {
        return Err(Error::KeyTypeInconsistent);
    }
    Ok(obj)
}

fn check_size(bits: usize, private: bool) -> Result<()> {
    let min = if private { MIN_PRIVATE_BITS } else { MIN_PUBLIC_BITS };
    if (min..=MAX_BITS).contains(&bits) {
        Ok(())
    } else {
        Err(Error::KeySizeRange)
    }
}

/// A key attribute the material needs; an object without it is no usable RSA key.
fn material(obj: &Object, ty: CK_ATTRIBUTE_TYPE) -> Result<&[u8]> {
    obj.get_raw(ty).ok_or(Error::KeyTypeInconsistent)
}

/// The parsed private key of an object, rebuilt from its CRT components (keys without
/// them, only n and d, are not served).
fn private_key(key: &Key) -> Result<Arc<RsaPrivateKey>> {
    let obj = rsa_object(key, CKO_PRIVATE_KEY)?;
    let parsed = obj.prepared(|| {
        RsaPrivateKey::new(&RsaParts {
            n: material(obj, CKA_MODULUS)?,
            e: material(obj, CKA_PUBLIC_EXPONENT)?,
            d: material(obj, CKA_PRIVATE_EXPONENT)?,
            p: material(obj, CKA_PRIME_1)?,
            q: material(obj, CKA_PRIME_2)?,
            dp: material(obj, CKA_EXPONENT_1)?,
            dq: material(obj, CKA_EXPONENT_2)?,
            qinv: material(obj, CKA_COEFFICIENT)?,
        })
    })?;
    check_size(parsed.bits(), true)?;
    Ok(parsed)
}

fn public_key(key: &Key) -> Result<Arc<RsaPublicKey>> {
    let obj = rsa_object(key, CKO_PUBLIC_KEY)?;
    let parsed =
        obj.prepared(|| RsaPublicKey::new(material(obj, CKA_MODULUS)?, material(obj, CKA_PUBLIC_EXPONENT)?))?;
    check_size(parsed.bits(), false)?;
    Ok(parsed)
}

/// The hash a CKM_SHA* mechanism names (in PSS and OAEP parameters).
fn hash_of_mechanism(m: CK_MECHANISM_TYPE) -> Option<Hash> {
    Some(match m {
        CKM_SHA_1 => Hash::Sha1,
        CKM_SHA224 => Hash::Sha224,
        CKM_SHA256 => Hash::Sha256,
        CKM_SHA384 => Hash::Sha384,
        CKM_SHA512 => Hash::Sha512,
        _ => return None,
    })
}

/// The hash of an MGF1 generator.
fn hash_of_mgf(g: CK_RSA_PKCS_MGF_TYPE) -> Option<Hash> {
    Some(match g {
        CKG_MGF1_SHA1 => Hash::Sha1,
        CKG_MGF1_SHA224 => Hash::Sha224,
        CKG_MGF1_SHA256 => Hash::Sha256,
        CKG_MGF1_SHA384 => Hash::Sha384,
        CKG_MGF1_SHA512 => Hash::Sha512,
        _ => return None,
    })
}

/// These mechanisms take no parameter (a present but empty one is the same).
fn no_param(p: &Param) -> Result<()> {
    match p {
        Param::None => Ok(()),
        Param::Bytes(b) if b.is_empty() => Ok(()),
        _ => Err(Error::MechanismParamInvalid),
    }
}

/// Decoded CK_RSA_PKCS_PSS_PARAMS.
#[derive(Clone, Copy, Debug)]
struct Pss {
    hash: Hash,
    mgf: Hash,
    salt_len: usize,
}

/// The PSS parameter, checked against the mechanism (whose hash, for the SHA*_RSA_PKCS_PSS
/// forms, the parameter must name) and the key (the salt must fit: at most
/// emLen - hLen - 2 bytes). Any MGF1 hash and salt length within that is served.
fn pss_param(p: &Param, mechanism_hash: Option<Hash>, bits: usize) -> Result<Pss> {
    let Param::Pss { hash, mgf, salt_len } = p else {
        return Err(Error::MechanismParamInvalid);
    };
    let hash = hash_of_mechanism(*hash).ok_or(Error::MechanismParamInvalid)?;
    if mechanism_hash.is_some_and(|h| h != hash) {
        return Err(Error::MechanismParamInvalid);
    }
    let mgf = hash_of_mgf(*mgf).ok_or(Error::MechanismParamInvalid)?;
    let salt_len = usize::try_from(*salt_len).map_err(|_| Error::MechanismParamInvalid)?;
    if salt_len > crypto::pss_max_salt(bits, hash) {
        return Err(Error::MechanismParamInvalid);
    }
    Ok(Pss { hash, mgf, salt_len })
}

/// Decoded CK_RSA_PKCS_OAEP_PARAMS (the source is always a specified label).
#[derive(Clone, Debug)]
struct Oaep {
    hash: Hash,
    mgf: Hash,
    label: Vec<u8>,
}

fn oaep_param(p: &Param) -> Result<Oaep> {
    let Param::Oaep { hash, mgf, label } = p else {
        return Err(Error::MechanismParamInvalid);
    };
    if label.len() > MAX_OAEP_LABEL {
        return Err(Error::MechanismParamInvalid);
    }
    Ok(Oaep {
        hash: hash_of_mechanism(*hash).ok_or(Error::MechanismParamInvalid)?,
        mgf: hash_of_mgf(*mgf).ok_or(Error::MechanismParamInvalid)?,
        label: label.clone(),
    })
}

// ---------------------------------------------------------------------------------------
// Keys made outside (C_CreateObject, the command line's import)

/// Checks the material of an RSA key given by C_CreateObject: a private key's CRT
/// components must form one consistent two-prime key (aws-lc checks n = pq, the
/// exponents and the coefficient), a public key must parse, and the modulus must be of
/// a size the mechanisms serve (see `MIN_PUBLIC_BITS`); returns it, in bits, for the
/// profile's own bounds.
///
/// Every refusal is CKR_ATTRIBUTE_VALUE_INVALID. For the size, CKR_KEY_SIZE_RANGE would
/// say more, but the specification lists it for the functions that use or make a key,
/// not for C_CreateObject; the attribute that holds the key (CKA_MODULUS) has a value
/// this token cannot take, which is what CKR_ATTRIBUTE_VALUE_INVALID means. (Key-pair
/// generation, which may answer CKR_KEY_SIZE_RANGE, does.)
pub fn check_import(obj: &Object) -> Result<Option<usize>> {
    let invalid = |_| Error::AttributeValueInvalid;
    let get = |ty| obj.get_raw(ty).filter(|v| !v.is_empty()).ok_or(Error::TemplateIncomplete);
    let bits = match obj.class() {
        CKO_PRIVATE_KEY => RsaPrivateKey::new(&RsaParts {
            n: get(CKA_MODULUS)?,
            e: get(CKA_PUBLIC_EXPONENT)?,
            d: get(CKA_PRIVATE_EXPONENT)?,
            p: get(CKA_PRIME_1)?,
            q: get(CKA_PRIME_2)?,
            dp: get(CKA_EXPONENT_1)?,
            dq: get(CKA_EXPONENT_2)?,
            qinv: get(CKA_COEFFICIENT)?,
        })
        .map_err(invalid)?
        .bits(),
        CKO_PUBLIC_KEY => RsaPublicKey::new(get(CKA_MODULUS)?, get(CKA_PUBLIC_EXPONENT)?).map_err(invalid)?.bits(),
        _ => return Ok(None),
    };
    check_size(bits, obj.class() == CKO_PRIVATE_KEY).map_err(invalid)?;
    Ok(Some(bits))
}

// ---------------------------------------------------------------------------------------
// Key-pair generation

/// CKM_RSA_PKCS_KEY_PAIR_GEN: CKA_MODULUS_BITS of 1024 to 4096 (in steps of 128) from
/// the public template; CKA_PUBLIC_EXPONENT, when given, must be 65537 (aws-lc makes no
/// other).
struct RsaKeyPairGen;

fn template_value(t: &Template, ty: CK_ATTRIBUTE_TYPE) -> Option<&[u8]> {
    t.iter().find(|(a, _)| *a == ty).map(|(_, v)| v.as_slice())
}

impl Unit for RsaKeyPairGen {
    fn ty(&self) -> CK_MECHANISM_TYPE {
        CKM_RSA_PKCS_KEY_PAIR_GEN
    }
    fn info(&self) -> Info {
        rsa_info(CKF_GENERATE_KEY_PAIR)
    }
    fn generate_key_pair(&self, public: &Template, _private: &Template) -> Result<KeyPair> {
        let bits = template_value(public, CKA_MODULUS_BITS).ok_or(Error::TemplateIncomplete)?;
        let bits = <[u8; 8]>::try_from(bits).map(CK_ULONG::from_ne_bytes).map_err(|_| Error::AttributeValueInvalid)?;
        let bits = usize::try_from(bits)
            .ok()
            .filter(|b| GENERATED_BITS.contains(b) && b.is_multiple_of(GENERATED_STEP))
            .ok_or(Error::KeySizeRange)?;
        if let Some(e) = template_value(public, CKA_PUBLIC_EXPONENT) {
            if strip_zeros(e) != crypto::RSA_F4 {
                return Err(Error::TemplateInconsistent);
            }
        }
        let parts = crypto::rsa_generate(bits)?;
        let v = |b: &Zeroizing<Vec<u8>>| b.to_vec();
        Ok(KeyPair {
            public: vec![
                (CKA_CLASS, ck_ulong(CKO_PUBLIC_KEY)),
                (CKA_KEY_TYPE, ck_ulong(CKK_RSA)),
                (CKA_MODULUS, v(&parts.n)),
                (CKA_PUBLIC_EXPONENT, v(&parts.e)),
                (CKA_MODULUS_BITS, ck_ulong(bits as CK_ULONG)),
            ],
            private: vec![
                (CKA_CLASS, ck_ulong(CKO_PRIVATE_KEY)),
                (CKA_KEY_TYPE, ck_ulong(CKK_RSA)),
                (CKA_MODULUS, v(&parts.n)),
                (CKA_PUBLIC_EXPONENT, v(&parts.e)),
                (CKA_PRIVATE_EXPONENT, v(&parts.d)),
                (CKA_PRIME_1, v(&parts.p)),
                (CKA_PRIME_2, v(&parts.q)),
                (CKA_EXPONENT_1, v(&parts.dp)),
                (CKA_EXPONENT_2, v(&parts.dq)),
                (CKA_COEFFICIENT, v(&parts.qinv)),
            ],
        })
    }
}

// ---------------------------------------------------------------------------------------
// Signatures

/// How the input becomes what is signed.
#[derive(Clone, Copy, Debug)]
enum Scheme {
    /// CKM_RSA_PKCS: the input is signed as it is (a DigestInfo, or raw data).
    Pkcs1,
    /// CKM_SHA*_RSA_PKCS: a DigestInfo of the data's digest.
    Pkcs1Hash(Hash),
    /// CKM_RSA_PKCS_PSS: the input is the message hash.
    Pss(Pss),
    /// CKM_SHA*_RSA_PKCS_PSS: the data is hashed first.
    PssHash(Pss),
}

/// The input of a signature operation: buffered for the single-part mechanisms (at
/// most `max` bytes), hashed as it comes for the others.
enum Input {
    Buffer { data: Secret, max: usize },
    Hashed(Digest),
}

impl Input {
    fn new(scheme: Scheme, k: usize) -> Self {
        match scheme {
            Scheme::Pkcs1 => Input::Buffer { data: Zeroizing::new(Vec::new()), max: crypto::pkcs1_max_payload(k) },
            Scheme::Pss(p) => Input::Buffer { data: Zeroizing::new(Vec::new()), max: p.hash.output_len() },
            Scheme::Pkcs1Hash(h) => Input::Hashed(Digest::new(h)),
            Scheme::PssHash(p) => Input::Hashed(Digest::new(p.hash)),
        }
    }

    /// Input beyond what the mechanism can take is `DataLenRange`.
    fn update(&mut self, part: &[u8]) -> Result<()> {
        match self {
            Input::Buffer { data, max } => {
                if data.len().saturating_add(part.len()) > *max {
                    return Err(Error::DataLenRange);
                }
                // Sized once, so no partial copy of the data is left by a reallocation.
                let mut grown = Zeroizing::new(Vec::with_capacity(data.len().saturating_add(part.len())));
                grown.extend_from_slice(data);
                grown.extend_from_slice(part);
                *data = grown;
            }
            Input::Hashed(d) => d.update(part),
        }
        Ok(())
    }

    fn finish(self) -> Secret {
        match self {
            Input::Buffer { data, .. } => data,
            Input::Hashed(d) => Zeroizing::new(d.finish()),
        }
    }
}

struct RsaSign {
    key: Arc<RsaPrivateKey>,
    scheme: Scheme,
    /// `None` once finished.
    input: Option<Input>,
}

impl SignOp for RsaSign {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.input.as_mut().ok_or(Error::OperationNotInitialized)?.update(data)
    }

    fn finish(&mut self) -> Result<Vec<u8>> {
        let input = self.input.take().ok_or(Error::OperationNotInitialized)?.finish();
        match self.scheme {
            // A DigestInfo the token recognises is signed as a digest (the same
            // signature as signing the DigestInfo as data); anything else as data.
            Scheme::Pkcs1 => match crypto::parse_digest_info(&input) {
                Some((hash, digest)) => self.key.sign_pkcs1_digest(hash, digest),
                None => self.key.sign_pkcs1_payload(&input),
            },
            Scheme::Pkcs1Hash(hash) => self.key.sign_pkcs1_digest(hash, &input),
            Scheme::Pss(p) | Scheme::PssHash(p) => {
                if input.len() != p.hash.output_len() {
                    return Err(Error::DataLenRange);
                }
                self.key.sign_pss(p.hash, p.mgf, p.salt_len, &input)
            }
        }
    }

    fn sig_len(&self) -> usize {
        self.key.modulus_len()
    }
}

struct RsaVerify {
    key: Arc<RsaPublicKey>,
    scheme: Scheme,
    input: Option<Input>,
}

impl VerifyOp for RsaVerify {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.input.as_mut().ok_or(Error::OperationNotInitialized)?.update(data)
    }

    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        let input = self.input.take().ok_or(Error::OperationNotInitialized)?.finish();
        match self.scheme {
            Scheme::Pkcs1 => self.key.verify_pkcs1_payload(&input, signature),
            Scheme::Pkcs1Hash(hash) => self.key.verify_pkcs1_digest(hash, &input, signature),
            Scheme::Pss(p) | Scheme::PssHash(p) => {
                if input.len() != p.hash.output_len() {
                    return Err(Error::DataLenRange);
                }
                self.key.verify_pss(p.hash, p.mgf, p.salt_len, &input, signature)
            }
        }
    }
}

/// The signature mechanisms: CKM_RSA_PKCS (also a cipher, see `RsaPkcsUnit`),
/// CKM_SHA*_RSA_PKCS, CKM_RSA_PKCS_PSS and CKM_SHA*_RSA_PKCS_PSS.
#[derive(Clone, Copy)]
enum SigKind {
    Pkcs1,
    Pkcs1Hash(Hash),
    Pss,
    PssHash(Hash),
}

impl SigKind {
    fn scheme(self, p: &Param, bits: usize) -> Result<Scheme> {
        Ok(match self {
            SigKind::Pkcs1 => {
                no_param(p)?;
                Scheme::Pkcs1
            }
            SigKind::Pkcs1Hash(h) => {
                no_param(p)?;
                Scheme::Pkcs1Hash(h)
            }
            SigKind::Pss => Scheme::Pss(pss_param(p, None, bits)?),
            SigKind::PssHash(h) => Scheme::PssHash(pss_param(p, Some(h), bits)?),
        })
    }

    fn sign(self, key: &Key, p: &Param) -> Result<Box<dyn SignOp>> {
        let key = private_key(key)?;
        let scheme = self.scheme(p, key.bits())?;
        Ok(Box::new(RsaSign { input: Some(Input::new(scheme, key.modulus_len())), key, scheme }))
    }

    fn verify(self, key: &Key, p: &Param) -> Result<Box<dyn VerifyOp>> {
        let key = public_key(key)?;
        let scheme = self.scheme(p, key.bits())?;
        Ok(Box::new(RsaVerify { input: Some(Input::new(scheme, key.modulus_len())), key, scheme }))
    }
}

struct RsaSigUnit {
    ty: CK_MECHANISM_TYPE,
    kind: SigKind,
}

impl Unit for RsaSigUnit {
    fn ty(&self) -> CK_MECHANISM_TYPE {
        self.ty
    }
    fn info(&self) -> Info {
        rsa_info(CKF_SIGN | CKF_VERIFY)
    }
    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        RSA_KEY_TYPES
    }
    fn sign(&self, key: &Key, p: &Param) -> Result<Box<dyn SignOp>> {
        self.kind.sign(key, p)
    }
    fn verify(&self, key: &Key, p: &Param) -> Result<Box<dyn VerifyOp>> {
        self.kind.verify(key, p)
    }
}

// ---------------------------------------------------------------------------------------
// Encryption

#[derive(Clone)]
enum Padding {
    Pkcs1,
    Oaep(Oaep),
}

#[derive(Clone)]
enum CipherKey {
    /// Encryption (and wrapping) with the public key.
    Public(Arc<RsaPublicKey>),
    /// Decryption (and unwrapping) with the private key.
    Private(Arc<RsaPrivateKey>),
}

/// RSA encryption or decryption, single-part only as the specification has it:
/// C_EncryptUpdate / C_EncryptFinal answer CKR_OPERATION_NOT_INITIALIZED, as for AES
/// key wrap.
#[derive(Clone)]
struct RsaCipher {
    key: CipherKey,
    padding: Padding,
}

impl SinglePart for RsaCipher {
    fn run(&mut self, input: &[u8]) -> Result<Secret> {
        match (&self.key, &self.padding) {
            (CipherKey::Public(k), Padding::Pkcs1) => k.encrypt_pkcs1(input).map(Zeroizing::new),
            (CipherKey::Public(k), Padding::Oaep(o)) => {
                k.encrypt_oaep(o.hash, o.mgf, &o.label, input).map(Zeroizing::new)
            }
            // Never an error for a bad padding: see `RsaPrivateKey::decrypt_pkcs1`.
            (CipherKey::Private(k), Padding::Pkcs1) => k.decrypt_pkcs1(input),
            (CipherKey::Private(k), Padding::Oaep(o)) => k.decrypt_oaep(o.hash, o.mgf, &o.label, input),
        }
    }

    /// The ciphertext length, or the longest plaintext the padding leaves room for.
    fn output_len(&self, _input_len: usize) -> usize {
        match (&self.key, &self.padding) {
            (CipherKey::Public(k), _) => k.modulus_len(),
            (CipherKey::Private(k), Padding::Pkcs1) => crypto::pkcs1_max_payload(k.modulus_len()),
            (CipherKey::Private(k), Padding::Oaep(o)) => crypto::oaep_max_message(k.modulus_len(), o.hash),
        }
    }
}

fn encrypter(key: &Key, padding: Padding) -> Result<Box<dyn CipherOp>> {
    Ok(Box::new(SinglePartOp(RsaCipher { key: CipherKey::Public(public_key(key)?), padding })))
}

fn decrypter(key: &Key, padding: Padding) -> Result<Box<dyn CipherOp>> {
    Ok(Box::new(SinglePartOp(RsaCipher { key: CipherKey::Private(private_key(key)?), padding })))
}

/// CKM_RSA_PKCS: PKCS#1 v1.5 signatures (of a DigestInfo or of raw data up to k - 11
/// bytes), encryption, decryption with implicit rejection, and key wrapping.
///
/// Unwrapping with it inherits implicit rejection: a wrapped key with a bad padding
/// unwraps to a pseudorandom value of pseudorandom length instead of failing.
struct RsaPkcsUnit;

impl Unit for RsaPkcsUnit {
    fn ty(&self) -> CK_MECHANISM_TYPE {
        CKM_RSA_PKCS
    }
    fn info(&self) -> Info {
        rsa_info(CKF_ENCRYPT | CKF_DECRYPT | CKF_SIGN | CKF_VERIFY | CKF_WRAP | CKF_UNWRAP)
    }
    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        RSA_KEY_TYPES
    }
    fn encrypt(&self, key: &Key, p: &Param) -> Result<Box<dyn CipherOp>> {
        no_param(p)?;
        encrypter(key, Padding::Pkcs1)
    }
    fn decrypt(&self, key: &Key, p: &Param) -> Result<Box<dyn CipherOp>> {
        no_param(p)?;
        decrypter(key, Padding::Pkcs1)
    }
    fn sign(&self, key: &Key, p: &Param) -> Result<Box<dyn SignOp>> {
        SigKind::Pkcs1.sign(key, p)
    }
    fn verify(&self, key: &Key, p: &Param) -> Result<Box<dyn VerifyOp>> {
        SigKind::Pkcs1.verify(key, p)
    }
    fn wrap(&self, wrapping: &Key, p: &Param, key_value: &[u8]) -> Result<Vec<u8>> {
        wrap_with(self, wrapping, p, key_value)
    }
    fn unwrap(&self, unwrapping: &Key, p: &Param, wrapped: &[u8]) -> Result<Secret> {
        unwrap_with(self, unwrapping, p, wrapped)
    }
}

/// CKM_RSA_PKCS_OAEP: any of SHA-1/224/256/384/512 as the hash, MGF1 with any of them,
/// any label up to `MAX_OAEP_LABEL` bytes; encryption, decryption and key wrapping.
struct RsaOaepUnit;

impl Unit for RsaOaepUnit {
    fn ty(&self) -> CK_MECHANISM_TYPE {
        CKM_RSA_PKCS_OAEP
    }
    fn info(&self) -> Info {
        rsa_info(CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP)
    }
    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        RSA_KEY_TYPES
    }
    fn encrypt(&self, key: &Key, p: &Param) -> Result<Box<dyn CipherOp>> {
        let oaep = oaep_param(p)?;
        encrypter(key, Padding::Oaep(oaep))
    }
    fn decrypt(&self, key: &Key, p: &Param) -> Result<Box<dyn CipherOp>> {
        let oaep = oaep_param(p)?;
        decrypter(key, Padding::Oaep(oaep))
    }
    fn wrap(&self, wrapping: &Key, p: &Param, key_value: &[u8]) -> Result<Vec<u8>> {
        wrap_with(self, wrapping, p, key_value)
    }
    fn unwrap(&self, unwrapping: &Key, p: &Param, wrapped: &[u8]) -> Result<Secret> {
        unwrap_with(self, unwrapping, p, wrapped)
    }
}

pub static UNITS: &[&dyn Unit] = &[
    &RsaKeyPairGen,
    &RsaPkcsUnit,
    &RsaSigUnit { ty: CKM_SHA1_RSA_PKCS, kind: SigKind::Pkcs1Hash(Hash::Sha1) },
    &RsaSigUnit { ty: CKM_SHA224_RSA_PKCS, kind: SigKind::Pkcs1Hash(Hash::Sha224) },
    &RsaSigUnit { ty: CKM_SHA256_RSA_PKCS, kind: SigKind::Pkcs1Hash(Hash::Sha256) },
    &RsaSigUnit { ty: CKM_SHA384_RSA_PKCS, kind: SigKind::Pkcs1Hash(Hash::Sha384) },
    &RsaSigUnit { ty: CKM_SHA512_RSA_PKCS, kind: SigKind::Pkcs1Hash(Hash::Sha512) },
    &RsaSigUnit { ty: CKM_RSA_PKCS_PSS, kind: SigKind::Pss },
    &RsaSigUnit { ty: CKM_SHA1_RSA_PKCS_PSS, kind: SigKind::PssHash(Hash::Sha1) },
    &RsaSigUnit { ty: CKM_SHA224_RSA_PKCS_PSS, kind: SigKind::PssHash(Hash::Sha224) },
    &RsaSigUnit { ty: CKM_SHA256_RSA_PKCS_PSS, kind: SigKind::PssHash(Hash::Sha256) },
    &RsaSigUnit { ty: CKM_SHA384_RSA_PKCS_PSS, kind: SigKind::PssHash(Hash::Sha384) },
    &RsaSigUnit { ty: CKM_SHA512_RSA_PKCS_PSS, kind: SigKind::PssHash(Hash::Sha512) },
    &RsaOaepUnit,
];

#[cfg(test)]
mod tests {
    //! Signatures, encryption and key generation against the `rsa` crate (which
    //! verifies and decrypts what the units produce, and signs and encrypts what they
    //! verify and decrypt), Wycheproof's RSA-PSS and RSA-OAEP vectors, implicit
    //! rejection through the unit, and every parameter, length and key error.
    use super::*;
    use crate::crypto::test_keys::{h, rand};
    use crate::crypto::test_keys::{
        oracle_digest as digest, oracle_oaep, oracle_pss, HexRsa, DRAFT_2048, WYCHEPROOF_2048,
    };
    use crate::mech::test_support::object;
    use ::rsa::rand_core::OsRng;
    use ::rsa::traits::{PrivateKeyParts, PublicKeyParts};
    use ::rsa::{BigUint, Pkcs1v15Encrypt, Pkcs1v15Sign};
    use sha2::Digest as _;

    fn unit(ty: CK_MECHANISM_TYPE) -> &'static dyn Unit {
        UNITS.iter().copied().find(|u| u.ty() == ty).expect("unit")
    }

    fn key(obj: &Object) -> Key<'_> {
        Key { key_type: CKK_RSA, value: &[], attrs: Some(obj) }
    }

    /// The private and public key objects of a fixed test key.
    fn objects(k: &HexRsa) -> (Object, Object) {
        let p = k.parts();
        let private = object(&[
            (CKA_CLASS, ck_ulong(CKO_PRIVATE_KEY)),
            (CKA_KEY_TYPE, ck_ulong(CKK_RSA)),
            (CKA_MODULUS, p.n.clone()),
            (CKA_PUBLIC_EXPONENT, p.e.clone()),
            (CKA_PRIVATE_EXPONENT, p.d),
            (CKA_PRIME_1, p.p),
            (CKA_PRIME_2, p.q),
            (CKA_EXPONENT_1, p.dp),
            (CKA_EXPONENT_2, p.dq),
            (CKA_COEFFICIENT, p.qinv),
        ]);
        let public = public_object(&p.n, &p.e);
        (private, public)
    }

    fn public_object(n: &[u8], e: &[u8]) -> Object {
        object(&[
            (CKA_CLASS, ck_ulong(CKO_PUBLIC_KEY)),
            (CKA_KEY_TYPE, ck_ulong(CKK_RSA)),
            (CKA_MODULUS, n.to_vec()),
            (CKA_PUBLIC_EXPONENT, e.to_vec()),
        ])
    }

    fn sign(ty: CK_MECHANISM_TYPE, private: &Object, p: &Param, data: &[u8], part: usize) -> Result<Vec<u8>> {
        let mut op = unit(ty).sign(&key(private), p)?;
        for chunk in data.chunks(part.max(1)) {
            op.update(chunk)?;
        }
        let sig = op.finish()?;
        assert_eq!(sig.len(), op.sig_len());
        Ok(sig)
    }

    fn verify(ty: CK_MECHANISM_TYPE, public: &Object, p: &Param, data: &[u8], sig: &[u8]) -> Result<()> {
        let mut op = unit(ty).verify(&key(public), p)?;
        op.update(data)?;
        op.finish(sig)
    }

    fn encrypt(ty: CK_MECHANISM_TYPE, public: &Object, p: &Param, data: &[u8]) -> Result<Vec<u8>> {
        let mut op = unit(ty).encrypt(&key(public), p)?;
        let len = op.one_shot_len(data.len());
        let out = op.one_shot(data)?;
        assert_eq!(out.len(), len);
        Ok(out.to_vec())
    }

    fn decrypt(ty: CK_MECHANISM_TYPE, private: &Object, p: &Param, data: &[u8]) -> Result<Vec<u8>> {
        let mut op = unit(ty).decrypt(&key(private), p)?;
        let out = op.one_shot(data)?;
        assert!(out.len() <= op.one_shot_len(data.len()));
        Ok(out.to_vec())
    }

    const HASHES: [(Hash, CK_MECHANISM_TYPE, CK_RSA_PKCS_MGF_TYPE); 5] = [
        (Hash::Sha1, CKM_SHA_1, CKG_MGF1_SHA1),
        (Hash::Sha224, CKM_SHA224, CKG_MGF1_SHA224),
        (Hash::Sha256, CKM_SHA256, CKG_MGF1_SHA256),
        (Hash::Sha384, CKM_SHA384, CKG_MGF1_SHA384),
        (Hash::Sha512, CKM_SHA512, CKG_MGF1_SHA512),
    ];

    fn pss(hash: CK_MECHANISM_TYPE, mgf: CK_RSA_PKCS_MGF_TYPE, salt_len: u64) -> Param {
        Param::Pss { hash, mgf, salt_len }
    }

    fn oaep(hash: CK_MECHANISM_TYPE, mgf: CK_RSA_PKCS_MGF_TYPE, label: &[u8]) -> Param {
        Param::Oaep { hash, mgf, label: label.to_vec() }
    }

    #[test]
    fn key_pair_generation() {
        let gen = unit(CKM_RSA_PKCS_KEY_PAIR_GEN);
        for (bits, e) in [(2048u64, None), (3072, Some(vec![1, 0, 1])), (4096, Some(vec![0, 0, 1, 0, 1]))] {
            let mut public_t = vec![(CKA_MODULUS_BITS, ck_ulong(bits))];
            if let Some(e) = e {
                public_t.push((CKA_PUBLIC_EXPONENT, e));
            }
            let pair = gen.generate_key_pair(&public_t, &[]).unwrap();
            let public = object(&pair.public);
            let private = object(&pair.private);
            assert_eq!(public.class(), CKO_PUBLIC_KEY);
            assert_eq!(private.class(), CKO_PRIVATE_KEY);
            assert_eq!(public.key_type(), Some(CKK_RSA));
            assert_eq!(private.key_type(), Some(CKK_RSA));
            assert_eq!(public.ulong(CKA_MODULUS_BITS), Some(bits));
            assert_eq!(pair.public.len(), 5);
            assert_eq!(pair.private.len(), 10);
            let n = public.get_raw(CKA_MODULUS).unwrap();
            assert_eq!(n.len() as u64 * 8, bits);
            assert_eq!(public.get_raw(CKA_PUBLIC_EXPONENT), Some(&[1u8, 0, 1][..]));
            assert_eq!(private.get_raw(CKA_MODULUS), Some(n));
            // Big-endian without leading zeros; a consistent key in the oracle's eyes.
            let get = |ty| private.get_raw(ty).unwrap();
            for ty in [CKA_PRIVATE_EXPONENT, CKA_PRIME_1, CKA_PRIME_2, CKA_EXPONENT_1, CKA_EXPONENT_2, CKA_COEFFICIENT]
            {
                assert_ne!(get(ty)[0], 0);
            }
            let big = |ty| BigUint::from_bytes_be(get(ty));
            let oracle = ::rsa::RsaPrivateKey::from_components(
                big(CKA_MODULUS),
                big(CKA_PUBLIC_EXPONENT),
                big(CKA_PRIVATE_EXPONENT),
                vec![big(CKA_PRIME_1), big(CKA_PRIME_2)],
            )
            .unwrap();
            oracle.validate().unwrap();
            let oracle_crt = oracle.crt_coefficient().unwrap();
            assert_eq!(oracle_crt, big(CKA_COEFFICIENT));
            // The pair works, and the oracle agrees.
            let data = b"generated";
            let sig = sign(CKM_SHA256_RSA_PKCS, &private, &Param::None, data, 4).unwrap();
            assert_eq!(verify(CKM_SHA256_RSA_PKCS, &public, &Param::None, data, &sig), Ok(()));
            oracle
                .to_public_key()
                .verify(Pkcs1v15Sign::new::<sha2::Sha256>(), &sha2::Sha256::digest(data), &sig)
                .unwrap();
            let ct = encrypt(CKM_RSA_PKCS, &public, &Param::None, b"secret").unwrap();
            assert_eq!(decrypt(CKM_RSA_PKCS, &private, &Param::None, &ct).unwrap(), b"secret");
        }
    }

    #[test]
    fn key_pair_generation_errors() {
        let gen = unit(CKM_RSA_PKCS_KEY_PAIR_GEN);
        let bits = |b: u64| (CKA_MODULUS_BITS, ck_ulong(b));
        assert_eq!(
            gen.generate_key_pair(&[(CKA_PUBLIC_EXPONENT, vec![1, 0, 1])], &[bits(2048)]).err(),
            Some(Error::TemplateIncomplete)
        );
        for b in [0, 512, 1016, 1023, 1032, 2049, 4224, 8192, u64::MAX] {
            assert_eq!(gen.generate_key_pair(&[bits(b)], &[]).err(), Some(Error::KeySizeRange), "{b}");
        }
        assert_eq!(
            gen.generate_key_pair(&[(CKA_MODULUS_BITS, vec![0, 8])], &[]).err(),
            Some(Error::AttributeValueInvalid)
        );
        for e in [vec![3], vec![1, 0, 0, 1], vec![1, 0, 1, 0], Vec::new(), vec![0]] {
            assert_eq!(
                gen.generate_key_pair(&[bits(2048), (CKA_PUBLIC_EXPONENT, e.clone())], &[]).err(),
                Some(Error::TemplateInconsistent),
                "{e:?}"
            );
        }
    }

    #[test]
    fn pkcs1_signatures_verified_by_the_rsa_crate() {
        let (private, public) = objects(&WYCHEPROOF_2048);
        let oracle = WYCHEPROOF_2048.oracle().to_public_key();
        let raw = Pkcs1v15Sign::new_unprefixed();
        let data = rand(300);
        for (hash, ..) in HASHES {
            // CKM_RSA_PKCS over the caller's DigestInfo, and CKM_SHA*_RSA_PKCS over the
            // data: one and the same (deterministic) signature.
            let info = crypto::digest_info(hash, &digest(hash, &data));
            let sig = sign(CKM_RSA_PKCS, &private, &Param::None, &info, 1000).unwrap();
            oracle.verify(raw.clone(), &info, &sig).unwrap();
            let ty = match hash {
                Hash::Sha1 => CKM_SHA1_RSA_PKCS,
                Hash::Sha224 => CKM_SHA224_RSA_PKCS,
                Hash::Sha256 => CKM_SHA256_RSA_PKCS,
                Hash::Sha384 => CKM_SHA384_RSA_PKCS,
                Hash::Sha512 => CKM_SHA512_RSA_PKCS,
            };
            assert_eq!(sign(ty, &private, &Param::None, &data, 77).unwrap(), sig);
            assert_eq!(verify(ty, &public, &Param::None, &data, &sig), Ok(()));
            assert_eq!(verify(CKM_RSA_PKCS, &public, &Param::None, &info, &sig), Ok(()));
            // The aws-lc-rs path and the raw path agree (SHA-256/384/512 take the first).
            let k = private_key(&key(&private)).unwrap();
            assert_eq!(k.sign_pkcs1_payload(&info).unwrap(), sig);
        }
        // Raw data: TLS 1.0's MD5 || SHA-1, nothing, the largest payload.
        for payload in [rand(36), Vec::new(), rand(245)] {
            let sig = sign(CKM_RSA_PKCS, &private, &Param::None, &payload, 10).unwrap();
            oracle.verify(raw.clone(), &payload, &sig).unwrap();
            assert_eq!(verify(CKM_RSA_PKCS, &public, &Param::None, &payload, &sig), Ok(()));
        }
        assert_eq!(sign(CKM_RSA_PKCS, &private, &Param::None, &rand(246), 100).err(), Some(Error::DataLenRange));
    }

    #[test]
    fn pkcs1_verification_of_the_rsa_crate_signatures() {
        let (_, public) = objects(&WYCHEPROOF_2048);
        let signer = WYCHEPROOF_2048.oracle();
        let data = b"verify me";
        let sig = signer.sign(Pkcs1v15Sign::new::<sha2::Sha384>(), &sha2::Sha384::digest(data)).unwrap();
        let ty = CKM_SHA384_RSA_PKCS;
        assert_eq!(verify(ty, &public, &Param::None, data, &sig), Ok(()));
        assert_eq!(verify(ty, &public, &Param::None, b"verify mE", &sig), Err(Error::SignatureInvalid));
        assert_eq!(verify(CKM_SHA256_RSA_PKCS, &public, &Param::None, data, &sig), Err(Error::SignatureInvalid));
        for i in [0, 100, 255] {
            let mut bad = sig.clone();
            bad[i] ^= 0x01;
            assert_eq!(verify(ty, &public, &Param::None, data, &bad), Err(Error::SignatureInvalid));
        }
        assert_eq!(verify(ty, &public, &Param::None, data, &sig[1..]), Err(Error::SignatureLenRange));
        assert_eq!(
            verify(ty, &public, &Param::None, data, &[sig.as_slice(), &[0]].concat()),
            Err(Error::SignatureLenRange)
        );
        // A "signature" not below the modulus.
        assert_eq!(verify(ty, &public, &Param::None, data, &[0xFF; 256]), Err(Error::SignatureInvalid));
        // CKM_RSA_PKCS: more data than a signature can carry.
        assert_eq!(verify(CKM_RSA_PKCS, &public, &Param::None, &[0; 246], &sig), Err(Error::DataLenRange));
        let raw = signer.sign(Pkcs1v15Sign::new_unprefixed(), b"raw").unwrap();
        assert_eq!(verify(CKM_RSA_PKCS, &public, &Param::None, b"raw", &raw), Ok(()));
        assert_eq!(verify(CKM_RSA_PKCS, &public, &Param::None, b"raW", &raw), Err(Error::SignatureInvalid));
    }

    #[test]
    fn pss_against_the_rsa_crate() {
        let (private, public) = objects(&WYCHEPROOF_2048);
        let oracle = WYCHEPROOF_2048.oracle();
        let data = rand(500);
        for (hash, ckm, mgf) in HASHES {
            let m_hash = digest(hash, &data);
            let h_len = hash.output_len() as u64;
            for salt in [h_len, 0, 17, 256 - h_len - 2] {
                let p = pss(ckm, mgf, salt);
                // CKM_RSA_PKCS_PSS over the hash.
                let sig = sign(CKM_RSA_PKCS_PSS, &private, &p, &m_hash, 1000).unwrap();
                oracle.to_public_key().verify(oracle_pss(hash, salt as usize), &m_hash, &sig).unwrap();
                assert_eq!(verify(CKM_RSA_PKCS_PSS, &public, &p, &m_hash, &sig), Ok(()));
                // The salt length is part of the check.
                let other_salt = if salt == 0 { 1 } else { salt - 1 };
                assert_eq!(
                    verify(CKM_RSA_PKCS_PSS, &public, &pss(ckm, mgf, other_salt), &m_hash, &sig),
                    Err(Error::SignatureInvalid)
                );
                // The oracle's signatures verify.
                let theirs = oracle.sign_with_rng(&mut OsRng, oracle_pss(hash, salt as usize), &m_hash).unwrap();
                assert_eq!(verify(CKM_RSA_PKCS_PSS, &public, &p, &m_hash, &theirs), Ok(()));
                // CKM_SHA*_RSA_PKCS_PSS over the data, in parts.
                let ty = match hash {
                    Hash::Sha1 => CKM_SHA1_RSA_PKCS_PSS,
                    Hash::Sha224 => CKM_SHA224_RSA_PKCS_PSS,
                    Hash::Sha256 => CKM_SHA256_RSA_PKCS_PSS,
                    Hash::Sha384 => CKM_SHA384_RSA_PKCS_PSS,
                    Hash::Sha512 => CKM_SHA512_RSA_PKCS_PSS,
                };
                let sig = sign(ty, &private, &p, &data, 33).unwrap();
                oracle.to_public_key().verify(oracle_pss(hash, salt as usize), &m_hash, &sig).unwrap();
                assert_eq!(verify(ty, &public, &p, &data, &sig), Ok(()));
                assert_eq!(verify(ty, &public, &p, &data[1..], &sig), Err(Error::SignatureInvalid));
            }
        }
        // An MGF1 hash other than the message hash (checked against OpenSSL in
        // crypto_ffi): our own verification takes it, and only it.
        let p = pss(CKM_SHA384, CKG_MGF1_SHA1, 48);
        let sig = sign(CKM_SHA384_RSA_PKCS_PSS, &private, &p, b"x", 1).unwrap();
        assert_eq!(verify(CKM_SHA384_RSA_PKCS_PSS, &public, &p, b"x", &sig), Ok(()));
        assert_eq!(
            verify(CKM_SHA384_RSA_PKCS_PSS, &public, &pss(CKM_SHA384, CKG_MGF1_SHA384, 48), b"x", &sig),
            Err(Error::SignatureInvalid)
        );
    }

    #[test]
    fn pss_parameter_and_length_errors() {
        let (private, public) = objects(&WYCHEPROOF_2048);
        let good = pss(CKM_SHA256, CKG_MGF1_SHA256, 32);
        for bad in [
            Param::None,
            Param::Bytes(vec![1]),
            pss(CKM_MD5, CKG_MGF1_SHA256, 32),
            pss(CKM_SHA256, 0, 32),
            pss(CKM_SHA256, CKG_MGF1_SHA3_256, 32),
            pss(CKM_SHA256, CKG_MGF1_SHA256, 256 - 32 - 1),
            pss(CKM_SHA256, CKG_MGF1_SHA256, u64::MAX),
            oaep(CKM_SHA256, CKG_MGF1_SHA256, b""),
        ] {
            for ty in [CKM_RSA_PKCS_PSS, CKM_SHA256_RSA_PKCS_PSS] {
                assert_eq!(unit(ty).sign(&key(&private), &bad).err(), Some(Error::MechanismParamInvalid), "{bad:?}");
                assert_eq!(unit(ty).verify(&key(&public), &bad).err(), Some(Error::MechanismParamInvalid));
            }
        }
        // The hash of a SHA*_RSA_PKCS_PSS parameter must be the mechanism's.
        assert_eq!(
            unit(CKM_SHA256_RSA_PKCS_PSS).sign(&key(&private), &pss(CKM_SHA384, CKG_MGF1_SHA256, 32)).err(),
            Some(Error::MechanismParamInvalid)
        );
        // The largest salt is served; CKM_RSA_PKCS_PSS takes exactly a hash.
        assert!(unit(CKM_RSA_PKCS_PSS).sign(&key(&private), &pss(CKM_SHA256, CKG_MGF1_SHA256, 222)).is_ok());
        assert_eq!(sign(CKM_RSA_PKCS_PSS, &private, &good, &[0; 31], 100).err(), Some(Error::DataLenRange));
        assert_eq!(sign(CKM_RSA_PKCS_PSS, &private, &good, &[0; 33], 100).err(), Some(Error::DataLenRange));
        assert_eq!(verify(CKM_RSA_PKCS_PSS, &public, &good, &[0; 31], &[0; 256]), Err(Error::DataLenRange));
        // PKCS#1 v1.5 mechanisms take no parameter.
        assert_eq!(unit(CKM_RSA_PKCS).sign(&key(&private), &good).err(), Some(Error::MechanismParamInvalid));
        assert_eq!(
            unit(CKM_SHA256_RSA_PKCS).verify(&key(&public), &Param::Bytes(vec![0])).err(),
            Some(Error::MechanismParamInvalid)
        );
        assert!(unit(CKM_SHA256_RSA_PKCS).verify(&key(&public), &Param::Bytes(Vec::new())).is_ok());
    }

    /// Wycheproof rsa_pss_2048_sha256_mgf1_32_test.json, tcId 1 (empty message) and
    /// tcId 3 ("Test").
    #[test]
    fn wycheproof_pss_vectors() {
        let (_, public) = objects(&WYCHEPROOF_2048);
        let p = pss(CKM_SHA256, CKG_MGF1_SHA256, 32);
        let cases = [
            ("", "4f01e0c12b08625ecac89a69231906edf826380f37c959a96690d046316d68ffce9d5c471694fcebfc6b45534864689256e4fc81c78e583f675d0c94b449647451e81beff01a11a516d5e5ce3f1a910437cb8a3a5096b19fb15f4524a35b23d89cdba12cf5b71aac1047b28c562df7c5542c34ce23a182cf7e0e231934b17294799d44877a1d68ef1b8f073619b7618e6b7c22db20030d98cf591ffc3d4da5f58613ecd5ecfc3b40a1d02f40891ca43695cd4c088b05a8054c89c595a47e274816f35384226f74459ee63e25a1bfc03c360490552ec38343f8ace502f065303b00bc0ec320711b211fde92e57feb9013c3609342495ec0d7cabdec21e54acc38"),
            ("54657374", "401eb03cdb47ca88033e3030f6bdecbac8f5c8fc1dd6a13d23d379ed9a2b309891d13d74fea9d21d159b9e6d8f37efa2489962e24555f56dd434ff1d31ce4f9f5abd3f22cbea8b691d6a11e44efb83e2bca155e6a164325e0fde2a8865afd5c9f51161a9d615f62af7ec2e31b3e5ab649c164490d31d88cfae35b84aea7925690f929a144b6d2f48e8fb894a52deecd1b9a6496990c4ecf1588699a42cacd10c53af350514e4291ea9a058e77f101e32c1c0cefa61d945f7bc931f8bd19e7ba3169358a60e5a8b0123bc3199b9fdcafe8e519c41ba675491a27b85e44ef2d77277c10fe107293c8290186913bc9a99b640d8da041b64f31eab1d35920985f4a5"),
        ];
        for (msg, sig) in cases {
            let (msg, sig) = (h(msg), h(sig));
            assert_eq!(verify(CKM_SHA256_RSA_PKCS_PSS, &public, &p, &msg, &sig), Ok(()));
            let hashed = sha2::Sha256::digest(&msg);
            assert_eq!(verify(CKM_RSA_PKCS_PSS, &public, &p, &hashed, &sig), Ok(()));
            assert_eq!(
                verify(CKM_SHA256_RSA_PKCS_PSS, &public, &pss(CKM_SHA256, CKG_MGF1_SHA256, 20), &msg, &sig),
                Err(Error::SignatureInvalid)
            );
            let mut bad = sig.clone();
            bad[128] ^= 0x80;
            assert_eq!(verify(CKM_SHA256_RSA_PKCS_PSS, &public, &p, &msg, &bad), Err(Error::SignatureInvalid));
        }
    }

    #[test]
    fn pkcs1_encryption_against_the_rsa_crate() {
        let (private, public) = objects(&WYCHEPROOF_2048);
        let oracle = WYCHEPROOF_2048.oracle();
        for msg in [Vec::new(), rand(1), rand(32), rand(245)] {
            let ct = encrypt(CKM_RSA_PKCS, &public, &Param::None, &msg).unwrap();
            assert_eq!(oracle.decrypt(Pkcs1v15Encrypt, &ct).unwrap(), msg);
            let ct = oracle.to_public_key().encrypt(&mut OsRng, Pkcs1v15Encrypt, &msg).unwrap();
            assert_eq!(decrypt(CKM_RSA_PKCS, &private, &Param::None, &ct).unwrap(), msg);
        }
        assert_eq!(encrypt(CKM_RSA_PKCS, &public, &Param::None, &rand(246)).err(), Some(Error::DataLenRange));
        let ct = encrypt(CKM_RSA_PKCS, &public, &Param::None, b"m").unwrap();
        assert_eq!(decrypt(CKM_RSA_PKCS, &private, &Param::None, &ct[1..]).err(), Some(Error::EncryptedDataLenRange));
        assert_eq!(decrypt(CKM_RSA_PKCS, &private, &Param::None, &[]).err(), Some(Error::EncryptedDataLenRange));
        assert_eq!(
            decrypt(CKM_RSA_PKCS, &private, &Param::None, &[0xFF; 256]).err(),
            Some(Error::EncryptedDataInvalid)
        );
        assert_eq!(
            unit(CKM_RSA_PKCS).decrypt(&key(&private), &Param::Bytes(vec![1])).err(),
            Some(Error::MechanismParamInvalid)
        );
    }

    /// A bad padding is no error: the unit returns the draft's synthetic message,
    /// the same for the same ciphertext, of a length a real message could have.
    #[test]
    fn pkcs1_decryption_rejects_implicitly() {
        let (private, _) = objects(&WYCHEPROOF_2048);
        let oracle = WYCHEPROOF_2048.oracle();
        let mut seen = Vec::new();
        for _ in 0..16 {
            // A random block below n, encrypted raw: its "padding" is almost surely bad.
            let mut m = rand(256);
            m[0] = 0x01;
            let c = BigUint::from_bytes_be(&m).modpow(oracle.e(), oracle.n()).to_bytes_be();
            let c = [vec![0u8; 256 - c.len()], c].concat();
            let out = decrypt(CKM_RSA_PKCS, &private, &Param::None, &c).unwrap();
            assert!(out.len() <= 245);
            assert_eq!(decrypt(CKM_RSA_PKCS, &private, &Param::None, &c).unwrap(), out);
            seen.push(out);
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 16);
        // Through the unit, the draft's own vector for a bad first byte.
        let (draft, _) = objects(&DRAFT_2048);
        let ct = h("9b2ec9c0c917c98f1ad3d0119aec6be51ae3106e9af1914d48600ab6a2c0c0c8ae02a2dc3039906ff3aac904af32ec798fd65f3ad1afa2e69400e7c1de81f5728f3b3291f38263bc7a90a0563e43ce7a0d4ee9c0d8a716621ca5d3d081188769ce1b131af7d35b13dea99153579c86db31fe07d5a2c14d621b77854e48a8df41b5798563af489a291e417b6a334c63222627376118c02c53b6e86310f728734ffc86ef9d7c8bf56c0c841b24b82b59f51aee4526ba1c4268506d301e4ebc498c6aebb6fd5258c876bf900bac8ca4d309dd522f6a6343599a8bc3760f422c10c72d0ad527ce4af1874124ace3d99bb74db8d69d2528db22c3a37644640f95c05f");
        assert_eq!(decrypt(CKM_RSA_PKCS, &draft, &Param::None, &ct).unwrap(), h("a1f8c9255c35cfba403ccc"));
    }

    #[test]
    fn oaep_against_the_rsa_crate() {
        let (private, public) = objects(&WYCHEPROOF_2048);
        let oracle = WYCHEPROOF_2048.oracle();
        // Every hash with its own MGF1 (aws-lc-rs serves four of these), and mixed ones
        // (served through aws-lc directly).
        let mut combos: Vec<_> = HASHES.iter().map(|x| (*x, *x)).collect();
        combos.push((HASHES[2], HASHES[0]));
        combos.push((HASHES[0], HASHES[4]));
        combos.push((HASHES[1], HASHES[3]));
        for ((hash, ckm, _), (mgf, _, ckg)) in combos {
            for label in ["", "a label"] {
                let p = oaep(ckm, ckg, label.as_bytes());
                let max = 256 - 2 * hash.output_len() - 2;
                for msg in [Vec::new(), rand(16), rand(max)] {
                    let ct = encrypt(CKM_RSA_PKCS_OAEP, &public, &p, &msg).unwrap();
                    assert_eq!(oracle.decrypt(oracle_oaep(hash, mgf, label), &ct).unwrap(), msg);
                    let ct = oracle.to_public_key().encrypt(&mut OsRng, oracle_oaep(hash, mgf, label), &msg).unwrap();
                    assert_eq!(decrypt(CKM_RSA_PKCS_OAEP, &private, &p, &ct).unwrap(), msg);
                    // The wrong label, hash or MGF: EncryptedDataInvalid.
                    for wrong in [
                        oaep(ckm, ckg, b"other"),
                        oaep(if ckm == CKM_SHA256 { CKM_SHA384 } else { CKM_SHA256 }, ckg, label.as_bytes()),
                        oaep(ckm, if ckg == CKG_MGF1_SHA1 { CKG_MGF1_SHA224 } else { CKG_MGF1_SHA1 }, label.as_bytes()),
                    ] {
                        assert_eq!(
                            decrypt(CKM_RSA_PKCS_OAEP, &private, &wrong, &ct).err(),
                            Some(Error::EncryptedDataInvalid)
                        );
                    }
                }
                assert_eq!(encrypt(CKM_RSA_PKCS_OAEP, &public, &p, &rand(max + 1)).err(), Some(Error::DataLenRange));
            }
        }
        // A label of any bytes and of the largest length served.
        let long = vec![0x00; MAX_OAEP_LABEL];
        let p = oaep(CKM_SHA256, CKG_MGF1_SHA256, &long);
        let ct = encrypt(CKM_RSA_PKCS_OAEP, &public, &p, b"m").unwrap();
        assert_eq!(decrypt(CKM_RSA_PKCS_OAEP, &private, &p, &ct).unwrap(), b"m");
    }

    /// Wycheproof rsa_oaep_2048_sha256_mgf1sha256_test.json: tcId 1, 3 and 9 (valid,
    /// the last with a label), 22 (first byte 1), 26 (n added to c), 29 (two bytes
    /// appended), 30 (truncated).
    #[test]
    fn wycheproof_oaep_vectors() {
        let (private, _) = objects(&WYCHEPROOF_2048);
        let valid = [
            ("", "", "6e62bf24d95aff6868afec2a92a445b6458f16f688c19fe1212f66a63137831653cedd359d8cff4dd485d77dfd55812c181373201f54aafd65730d2a304e623455d51125d891e65d97fce52341cae45fb64c38a384a1c621e2713ee6794633f029a9fd4d774f56551eac2176162e162640f25eab873a3451c475570f19228bcede4c67c370a75ed7fabccd538c9819eff182481b10d42f1a9f6a05373b8cf9b71818d467bd3b8ebacb619e8ad42916e600c043effceb3855bc48a629e60ae886f51b2a7876b0e623fb2ce68af4b039242f963adb0e4240aed0ed07f65f1ee7c0cc77d210d0c2d1dc10c81b881aa0c9c9e9499665cf2970d2ccfeeb3191531765"),
            ("54657374", "", "5eab3f0741e63986ed647d53e1cd71df041986900803d0f99c68355d249a15a47dc5b4f70a191477654299e5a2731f3b4eec76dea18262fc696ac794e5f66cbfcddac4472c578e246c26707598055584540b839836b1404c5611ae558a984cee8fd036cea924e0be2474a940f61e0acc14fcae95ebdc59942a9ce9af9a9c81999f7f6815f057ffdc2533cb15d6391d1e2d95f16f9c04209c889a4c359c7d2926d28a66e2b030a416b928d2825627998e5191fb4983a6e65024262d94fc09187a2d78162122433251d1bfcc8e507d06eba2d229c10031261da32ab8ccd15f1c5f9fbf07ed158483d736a110af4b44d6a4da60d6cb519b4454213cf9f0dc560f2b"),
            ("313233343030", "000102030405060708090a0b0c0d0e0f10111213", "a0443ba434156d0b503ec662f5eb5b10e20ad0cb8233720ee187ba986e4811dd312844d3edb26bfaf51b4b9268dc3c76072dd47c199d713c91824da23ff00481ee69e9d4cc543120fc33b7244bf0c1ad5fdd1ae9cbada7fe9a70ad0afaaaad8361e8dc4b3198ae661a84e275b60bf2ebb85e512da785d2fc3482294fa11967681d7bceffc08ce0e36f0a8af7fcfb1337186863c2c1c1b94c9ec9785cd3d94d15437c23b775677f3d29a4c9e52f13398fd14661160e5868bca97625aa6c7ecb07bbb479644def353f1f01a4c4100f9adb82c4f6a265a5ee962da58c3c042aa549c9d2de3008e7448e0c4b9b4ac8f5e4d8629873909bb995ccc0825fe87d81d596"),
        ];
        for (msg, label, ct) in valid {
            let p = oaep(CKM_SHA256, CKG_MGF1_SHA256, &h(label));
            assert_eq!(decrypt(CKM_RSA_PKCS_OAEP, &private, &p, &h(ct)).unwrap(), h(msg));
        }
        let p = oaep(CKM_SHA256, CKG_MGF1_SHA256, b"");
        let first_byte_1 = h("3f92a694661cae336cac7a3c5a6f67e0655d10218a64459739ab9664f2cec58978939512df621e6b92fe3429bb22c08b5103da648a7719e7e95a04e6b61601546955825d60f4c517619f851780ad17f1b8a955cf8c7f1a5e26ca4a0cc19cca751d0790d56e1140a4705e19274f638b7c16d9d3e423a7f787d02699235e3e9e4d543a954f9b1bce5411c8ebdcae86a4bb86c66818a0bab51a2b00383b318e53d95508bab1b19e388cd5a03cdceba0f7176c1782e19ef62cff69352d444b1ce0e1f339e96d8a65c07aa37f5f2cf33867f6c496e0da6cd79b3e2183b57064ce21a1b92072702e555a82cad75107fdfd8bd5e7ea5f119cfbbc1770e962fd0b781aff");
        let n_added = h("b056e2513c7c470d897032d406e97b5946dcad52df1c1650d61a1d7b0af59e8cfaec4d9e834d06d819b92a7d440d277e5039ab8aeff25043e98b281ae6ce0a91f8dfbbd1b4998fe5481671381b6a3952448b617ae606f06a0143561a040edaf3c972e611bd7cb814aa4761d38e4a007ca65af8fde6eb25d919d8bd9273cca7622984aa27994d049612424547775c5df75483962143522d075b8c55ea61b04583eb4c0358f9fbb902dedff30b7d8592b57094df4f6345668af53d1aea86fb36dd69b4434bacf8fc12c13802f5b03551ba8f207d4060a9f56e6b7e18c766eb82b6ce6ee0747fbe785c3c1c25fe7fb87de50032b172129fa41a69c3ce0e777ef10f");
        for ct in [first_byte_1, n_added, vec![0; 256]] {
            assert_eq!(decrypt(CKM_RSA_PKCS_OAEP, &private, &p, &ct).err(), Some(Error::EncryptedDataInvalid));
        }
        let tc4 = h("0da290b0bf71a1141b2adc62b5b42b07fc52520cb05d1f39ccca7b7c22d379a6c2f2d93143d057050140527a1e5638243938b531ec3de7014b0151301e49b9fa433482a02abdfd94193dc9c70157e557776a69ded01ecbeac405133595c61165a428b6284729a4746b47d2bbaca9d7432c3b5693591cfee488eb3c68ddb6cde0dd61cfc6952423f994abecee34f5683732b29934a2c498ad48cdd30c149177189f48eefd9cc7232df18be11ff5f7e3af7319e3115997c599e2d8f7f4f663dcc40032d403436d3058a5ea66473660f0e195281ec6eba997d2a951ca6ca5f3c112715c89da1d3dfb20a21940594ed10ade90ed7452b753757d7241cb8a803c373a");
        assert_eq!(decrypt(CKM_RSA_PKCS_OAEP, &private, &p, &tc4).unwrap(), h("313233343030"));
        for ct in [[tc4.as_slice(), &[0, 0]].concat(), tc4[1..].to_vec(), [&[0u8, 0][..], &tc4].concat(), Vec::new()] {
            assert_eq!(decrypt(CKM_RSA_PKCS_OAEP, &private, &p, &ct).err(), Some(Error::EncryptedDataLenRange));
        }
    }

    #[test]
    fn oaep_parameter_errors() {
        let (private, public) = objects(&WYCHEPROOF_2048);
        for bad in [
            Param::None,
            Param::Bytes(Vec::new()),
            pss(CKM_SHA256, CKG_MGF1_SHA256, 32),
            oaep(CKM_MD5, CKG_MGF1_SHA256, b""),
            oaep(CKM_SHA3_256, CKG_MGF1_SHA256, b""),
            oaep(CKM_SHA256, 0, b""),
            oaep(CKM_SHA256, CKG_MGF1_SHA3_256, b""),
            oaep(CKM_SHA256, CKG_MGF1_SHA256, &vec![0; MAX_OAEP_LABEL + 1]),
        ] {
            assert_eq!(
                unit(CKM_RSA_PKCS_OAEP).encrypt(&key(&public), &bad).err(),
                Some(Error::MechanismParamInvalid),
                "{bad:?}"
            );
            assert_eq!(unit(CKM_RSA_PKCS_OAEP).decrypt(&key(&private), &bad).err(), Some(Error::MechanismParamInvalid));
        }
    }

    #[test]
    fn wrapping_and_unwrapping() {
        let (private, public) = objects(&WYCHEPROOF_2048);
        let value = rand(32);
        for (ty, p) in [
            (CKM_RSA_PKCS, Param::None),
            (CKM_RSA_PKCS_OAEP, oaep(CKM_SHA256, CKG_MGF1_SHA256, b"")),
            (CKM_RSA_PKCS_OAEP, oaep(CKM_SHA224, CKG_MGF1_SHA1, b"wrap")),
        ] {
            let u = unit(ty);
            let wrapped = u.wrap(&key(&public), &p, &value).unwrap();
            assert_eq!(wrapped.len(), 256);
            assert_eq!(*u.unwrap(&key(&private), &p, &wrapped).unwrap(), value);
            // Keys of the wrong class, type or size.
            assert_eq!(u.wrap(&key(&private), &p, &value).err(), Some(Error::WrappingKeyTypeInconsistent));
            assert_eq!(u.unwrap(&key(&public), &p, &wrapped).err(), Some(Error::UnwrappingKeyTypeInconsistent));
            assert_eq!(u.wrap(&key(&public), &p, &rand(246)).err(), Some(Error::KeyNotWrappable));
            assert_eq!(u.unwrap(&key(&private), &p, &wrapped[1..]).err(), Some(Error::WrappedKeyLenRange));
        }
        // OAEP tells a damaged wrapped key; PKCS#1 v1.5 rejects it implicitly.
        let p = oaep(CKM_SHA256, CKG_MGF1_SHA256, b"");
        let mut wrapped = unit(CKM_RSA_PKCS_OAEP).wrap(&key(&public), &p, &value).unwrap();
        wrapped[10] ^= 1;
        assert_eq!(unit(CKM_RSA_PKCS_OAEP).unwrap(&key(&private), &p, &wrapped).err(), Some(Error::WrappedKeyInvalid));
        let mut wrapped = unit(CKM_RSA_PKCS).wrap(&key(&public), &Param::None, &value).unwrap();
        wrapped[10] ^= 1;
        let got = unit(CKM_RSA_PKCS).unwrap(&key(&private), &Param::None, &wrapped).unwrap();
        assert_ne!(*got, value);
        // Keys below the sizes served: public (384 bits) for wrapping, private (512 bits,
        // public keys of that size only verify and encrypt) for unwrapping.
        let tiny = ::rsa::RsaPrivateKey::new(&mut OsRng, 384).unwrap();
        let tiny_public = public_object(&tiny.n().to_bytes_be(), &tiny.e().to_bytes_be());
        assert_eq!(
            unit(CKM_RSA_PKCS).wrap(&key(&tiny_public), &Param::None, &value).err(),
            Some(Error::WrappingKeySizeRange)
        );
        let small = ::rsa::RsaPrivateKey::new(&mut OsRng, 512).unwrap();
        let be = |v: &BigUint| v.to_bytes_be();
        let small_private = object(&[
            (CKA_CLASS, ck_ulong(CKO_PRIVATE_KEY)),
            (CKA_KEY_TYPE, ck_ulong(CKK_RSA)),
            (CKA_MODULUS, be(small.n())),
            (CKA_PUBLIC_EXPONENT, be(small.e())),
            (CKA_PRIVATE_EXPONENT, be(small.d())),
            (CKA_PRIME_1, be(&small.primes()[0])),
            (CKA_PRIME_2, be(&small.primes()[1])),
            (CKA_EXPONENT_1, be(small.dp().unwrap())),
            (CKA_EXPONENT_2, be(small.dq().unwrap())),
            (CKA_COEFFICIENT, be(&small.crt_coefficient().unwrap())),
        ]);
        assert_eq!(
            unit(CKM_RSA_PKCS_OAEP).unwrap(&key(&small_private), &p, &[0; 64]).err(),
            Some(Error::UnwrappingKeySizeRange)
        );
    }

    #[test]
    fn key_errors() {
        let (private, public) = objects(&WYCHEPROOF_2048);
        let pkcs = unit(CKM_RSA_PKCS);
        let mut as_ec = key(&private);
        as_ec.key_type = CKK_EC;
        assert_eq!(pkcs.sign(&as_ec, &Param::None).err(), Some(Error::KeyTypeInconsistent));
        assert_eq!(pkcs.sign(&key(&public), &Param::None).err(), Some(Error::KeyTypeInconsistent));
        assert_eq!(pkcs.verify(&key(&private), &Param::None).err(), Some(Error::KeyTypeInconsistent));
        assert_eq!(pkcs.encrypt(&key(&private), &Param::None).err(), Some(Error::KeyTypeInconsistent));
        assert_eq!(pkcs.decrypt(&key(&public), &Param::None).err(), Some(Error::KeyTypeInconsistent));
        // Public keys below 512 bits are not served; 512 to 16384 bits are.
        let tiny = ::rsa::RsaPrivateKey::new(&mut OsRng, 384).unwrap();
        let tiny_pub = public_object(&tiny.n().to_bytes_be(), &tiny.e().to_bytes_be());
        assert_eq!(pkcs.verify(&key(&tiny_pub), &Param::None).err(), Some(Error::KeySizeRange));
        let mut big_n = vec![0xC5; 1024];
        big_n[1023] = 0x01;
        let big_pub = public_object(&big_n, &[1, 0, 1]);
        assert!(pkcs.encrypt(&key(&big_pub), &Param::None).is_ok(), "8192 bits");
        // A private key without its CRT values, or with inconsistent ones.
        for missing in [CKA_PRIME_1, CKA_COEFFICIENT, CKA_PUBLIC_EXPONENT] {
            let mut o = object(&[]);
            for (ty, v) in private.attrs.iter().filter(|(ty, _)| **ty != missing) {
                o.set(*ty, v.to_vec());
            }
            assert_eq!(pkcs.sign(&key(&o), &Param::None).err(), Some(Error::KeyTypeInconsistent));
        }
        let mut o = private.clone();
        o.set(CKA_EXPONENT_1, vec![3; 128]);
        assert_eq!(pkcs.decrypt(&key(&o), &Param::None).err(), Some(Error::KeyTypeInconsistent));
        let no_modulus = object(&[(CKA_CLASS, ck_ulong(CKO_PUBLIC_KEY))]);
        assert_eq!(pkcs.verify(&key(&no_modulus), &Param::None).err(), Some(Error::KeyTypeInconsistent));
        // What the units do not do.
        assert_eq!(unit(CKM_SHA256_RSA_PKCS).encrypt(&key(&public), &Param::None).err(), Some(Error::MechanismInvalid));
        assert_eq!(unit(CKM_RSA_PKCS_OAEP).sign(&key(&private), &Param::None).err(), Some(Error::MechanismInvalid));
        assert_eq!(pkcs.derive(&key(&private), &Param::None, None).err(), Some(Error::MechanismInvalid));
    }

    /// Keys aws-lc-rs does not serve (1024 and 1536 bits, made by the unit) go through the
    /// raw operations; the rsa crate checks every result.
    #[test]
    fn keys_below_2048_bits_sign_and_decrypt_through_the_raw_operations() {
        let gen = unit(CKM_RSA_PKCS_KEY_PAIR_GEN);
        for bits in [1024u64, 1536] {
            let pair = gen.generate_key_pair(&[(CKA_MODULUS_BITS, ck_ulong(bits))], &[]).unwrap();
            let (private, public) = (object(&pair.private), object(&pair.public));
            let get = |ty| BigUint::from_bytes_be(private.get_raw(ty).unwrap());
            let oracle = ::rsa::RsaPrivateKey::from_components(
                get(CKA_MODULUS),
                get(CKA_PUBLIC_EXPONENT),
                get(CKA_PRIVATE_EXPONENT),
                vec![get(CKA_PRIME_1), get(CKA_PRIME_2)],
            )
            .unwrap();
            oracle.validate().unwrap();
            assert_eq!(oracle.n().bits() as u64, bits);
            let oracle_pub = oracle.to_public_key();
            let data = rand(100);
            let sig = sign(CKM_SHA256_RSA_PKCS, &private, &Param::None, &data, 30).unwrap();
            oracle_pub.verify(Pkcs1v15Sign::new::<sha2::Sha256>(), &digest(Hash::Sha256, &data), &sig).unwrap();
            let p = pss(CKM_SHA256, CKG_MGF1_SHA256, 32);
            let sig = sign(CKM_SHA256_RSA_PKCS_PSS, &private, &p, &data, 30).unwrap();
            oracle_pub.verify(oracle_pss(Hash::Sha256, 32), &digest(Hash::Sha256, &data), &sig).unwrap();
            verify(CKM_SHA256_RSA_PKCS_PSS, &public, &p, &data, &sig).unwrap();
            let ct = encrypt(CKM_RSA_PKCS, &public, &Param::None, b"secret").unwrap();
            assert_eq!(oracle.decrypt(Pkcs1v15Encrypt, &ct).unwrap(), b"secret");
            let o = oaep(CKM_SHA256, CKG_MGF1_SHA256, b"label");
            let ct = oracle_pub.encrypt(&mut OsRng, oracle_oaep(Hash::Sha256, Hash::Sha256, "label"), b"m").unwrap();
            assert_eq!(decrypt(CKM_RSA_PKCS_OAEP, &private, &o, &ct).unwrap(), b"m");
            let ct = encrypt(CKM_RSA_PKCS_OAEP, &public, &o, b"m2").unwrap();
            assert_eq!(oracle.decrypt(oracle_oaep(Hash::Sha256, Hash::Sha256, "label"), &ct).unwrap(), b"m2");
        }
    }

    #[test]
    fn parsed_keys_are_cached_with_the_object() {
        let (private, public) = objects(&WYCHEPROOF_2048);
        let a = private_key(&key(&private)).unwrap();
        assert!(Arc::ptr_eq(&a, &private_key(&key(&private)).unwrap()));
        let b = public_key(&key(&public)).unwrap();
        assert!(Arc::ptr_eq(&b, &public_key(&key(&public)).unwrap()));
        assert!(!Arc::ptr_eq(&a, &private_key(&key(&private.clone())).unwrap()));
    }

    #[test]
    fn single_part_operations_and_ends() {
        let (private, public) = objects(&WYCHEPROOF_2048);
        let mut op = unit(CKM_RSA_PKCS).encrypt(&key(&public), &Param::None).unwrap();
        assert_eq!(op.update(b"x").err(), Some(Error::OperationNotInitialized));
        assert_eq!(op.finish().err(), Some(Error::OperationNotInitialized));
        assert_eq!((op.update_len(5), op.finish_len()), (0, 0));
        let mut copy = op.boxed_clone();
        assert_eq!(copy.one_shot(b"x").unwrap().len(), 256);
        let dec = unit(CKM_RSA_PKCS_OAEP).decrypt(&key(&private), &oaep(CKM_SHA256, CKG_MGF1_SHA256, b"")).unwrap();
        assert_eq!(dec.one_shot_len(256), 256 - 66);
        let dec = unit(CKM_RSA_PKCS).decrypt(&key(&private), &Param::None).unwrap();
        assert_eq!(dec.one_shot_len(256), 245);

        let mut s = unit(CKM_SHA256_RSA_PKCS).sign(&key(&private), &Param::None).unwrap();
        assert_eq!(s.sig_len(), 256);
        s.update(b"a").unwrap();
        let sig = s.finish().unwrap();
        assert_eq!(s.finish().err(), Some(Error::OperationNotInitialized));
        assert_eq!(s.update(b"a").err(), Some(Error::OperationNotInitialized));
        let mut v = unit(CKM_SHA256_RSA_PKCS).verify(&key(&public), &Param::None).unwrap();
        v.update(b"a").unwrap();
        assert_eq!(v.finish(&sig), Ok(()));
        assert_eq!(v.finish(&sig), Err(Error::OperationNotInitialized));
    }

    #[test]
    fn mechanism_info() {
        assert_eq!(UNITS.len(), 14);
        for u in UNITS {
            let info = u.info();
            let sizes = if u.ty() == CKM_RSA_PKCS_KEY_PAIR_GEN { (1024, 4096) } else { (1024, 16384) };
            assert_eq!((info.min_key, info.max_key), sizes, "{:#x}", u.ty());
            let expect = match u.ty() {
                CKM_RSA_PKCS_KEY_PAIR_GEN => CKF_GENERATE_KEY_PAIR,
                CKM_RSA_PKCS => CKF_ENCRYPT | CKF_DECRYPT | CKF_SIGN | CKF_VERIFY | CKF_WRAP | CKF_UNWRAP,
                CKM_RSA_PKCS_OAEP => CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP,
                _ => CKF_SIGN | CKF_VERIFY,
            };
            assert_eq!(info.flags, expect, "{:#x}", u.ty());
            if u.ty() != CKM_RSA_PKCS_KEY_PAIR_GEN {
                assert_eq!(u.key_types(), &[CKK_RSA]);
            }
        }
    }
}
