//! The cryptographic primitives of the module, and the only place that names the
//! underlying library (aws-lc) through its safe API, aws-lc-rs. Everything here is safe
//! code with a small typed surface: the mechanism units build the PKCS#11 semantics
//! (chaining, padding, counters, length rules) on top of it, and the keystore uses it for
//! randomness and sealing. The few RSA operations the safe API lacks (the raw private
//! and public operations, PSS and OAEP with any hash) come from `crypto_ffi`, which only
//! this module uses.
//!
//! Failures of the primitives are reported with the `Error` the PKCS#11 layer would give
//! for the same condition in decryption (a failed authentication or integrity check is
//! `EncryptedDataInvalid`); callers working on wrapped keys translate. Key material that
//! does not form a valid key of its type is `KeyTypeInconsistent`.

use crate::crypto_ffi::RsaKey;
use crate::error::{Error, Result};
use aws_lc_rs::encoding::{AsBigEndian, AsDer};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::signature::KeyPair as _;
use aws_lc_rs::{aead, agreement, cipher, cmac, digest, hmac, key_wrap, rand, rsa, signature};
use der::asn1::{AnyRef, BitStringRef, UintRef};
use der::{Decode, Encode};
use spki::AlgorithmIdentifierRef;
use std::sync::{Arc, OnceLock};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq, ConstantTimeGreater, ConstantTimeLess};
use zeroize::Zeroizing;

/// AES block length in bytes.
pub const AES_BLOCK: usize = 16;
/// Length of the GCM nonce aws-lc-rs serves (96 bits); other lengths go through
/// `crypto_ffi::Gcm`.
pub const GCM_NONCE_LEN: usize = 12;
/// Length of a full GCM tag (128 bits); shorter tags go through `crypto_ffi::Gcm`.
pub const GCM_TAG_LEN: usize = 16;
/// Length of an AES-CMAC value.
pub const CMAC_LEN: usize = 16;

/// Fills `buf` from aws-lc's generator (seeded from the operating system).
pub fn random(buf: &mut [u8]) -> Result<()> {
    rand::fill(buf).map_err(|_| Error::general("random generator failed"))
}

/// A fresh random value of `len` bytes, kept zeroised on drop (key material).
pub fn random_secret(len: usize) -> Result<Zeroizing<Vec<u8>>> {
    let mut v = Zeroizing::new(vec![0u8; len]);
    random(&mut v)?;
    Ok(v)
}

/// Whether `len` is an AES key length (16, 24 or 32 bytes).
pub fn is_aes_key_len(len: usize) -> bool {
    matches!(len, 16 | 24 | 32)
}

fn aes_algorithm(key: &[u8]) -> Result<&'static cipher::Algorithm> {
    match key.len() {
        16 => Ok(&cipher::AES_128),
        24 => Ok(&cipher::AES_192),
        32 => Ok(&cipher::AES_256),
        _ => Err(Error::KeySizeRange),
    }
}

/// Direction of a raw block operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Encrypt,
    Decrypt,
}

/// An expanded AES key for one mode and one direction. The schedules are shared, so
/// cloning an operation (to learn an exact output length) does not copy key material.
#[derive(Clone)]
struct BlockKey(Arc<Keyed>);

enum Keyed {
    Enc(cipher::EncryptingKey),
    Dec(cipher::DecryptingKey),
}

impl BlockKey {
    fn new(key: &[u8], dir: Direction, cbc: bool) -> Result<Self> {
        let alg = aes_algorithm(key)?;
        let unbound = || cipher::UnboundCipherKey::new(alg, key).map_err(|_| Error::KeySizeRange);
        let bad = |_| Error::general("AES key setup failed");
        let keyed = match (dir, cbc) {
            (Direction::Encrypt, false) => Keyed::Enc(cipher::EncryptingKey::ecb(unbound()?).map_err(bad)?),
            (Direction::Encrypt, true) => Keyed::Enc(cipher::EncryptingKey::cbc(unbound()?).map_err(bad)?),
            (Direction::Decrypt, false) => Keyed::Dec(cipher::DecryptingKey::ecb(unbound()?).map_err(bad)?),
            (Direction::Decrypt, true) => Keyed::Dec(cipher::DecryptingKey::cbc(unbound()?).map_err(bad)?),
        };
        Ok(BlockKey(Arc::new(keyed)))
    }
}

/// Rejects input that is not whole blocks; the callers check this first, so reaching it
/// is an internal error rather than a caller's length error.
fn whole_blocks(data: &[u8]) -> Result<()> {
    if data.len().is_multiple_of(AES_BLOCK) {
        Ok(())
    } else {
        Err(Error::general("AES block operation on a partial block"))
    }
}

/// AES in ECB mode over whole blocks, in place.
#[derive(Clone)]
pub struct AesEcb(BlockKey);

impl AesEcb {
    pub fn new(key: &[u8], dir: Direction) -> Result<Self> {
        Ok(AesEcb(BlockKey::new(key, dir, false)?))
    }

    /// Encrypts or decrypts `blocks` (a multiple of 16 bytes) in place.
    pub fn apply(&self, blocks: &mut [u8]) -> Result<()> {
        whole_blocks(blocks)?;
        if blocks.is_empty() {
            return Ok(());
        }
        let failed = |_| Error::general("AES-ECB failed");
        match &*self.0 .0 {
            Keyed::Enc(k) => k.less_safe_encrypt(blocks, cipher::EncryptionContext::None).map(drop).map_err(failed),
            Keyed::Dec(k) => k.decrypt(blocks, cipher::DecryptionContext::None).map(drop).map_err(failed),
        }
    }
}

/// AES in CBC mode without padding over whole blocks, in place, with a caller-given IV.
#[derive(Clone)]
pub struct AesCbc(BlockKey);

impl AesCbc {
    pub fn new(key: &[u8], dir: Direction) -> Result<Self> {
        Ok(AesCbc(BlockKey::new(key, dir, true)?))
    }

    /// Encrypts or decrypts `blocks` (a multiple of 16 bytes) in place, chaining from
    /// `iv`. On return `iv` holds the chaining value for the next call (the last
    /// ciphertext block), so a message can be processed in several calls.
    pub fn apply(&self, iv: &mut [u8; AES_BLOCK], blocks: &mut [u8]) -> Result<()> {
        whole_blocks(blocks)?;
        let Some(last) = blocks.len().checked_sub(AES_BLOCK) else {
            return Ok(());
        };
        let ctx_iv = FixedLength::from(&*iv);
        let failed = |_| Error::general("AES-CBC failed");
        match &*self.0 .0 {
            Keyed::Enc(k) => {
                k.less_safe_encrypt(blocks, cipher::EncryptionContext::Iv128(ctx_iv)).map_err(failed)?;
                iv.copy_from_slice(&blocks[last..]);
            }
            Keyed::Dec(k) => {
                // The next chaining value is the last ciphertext block: take it before
                // it is overwritten.
                let mut next = [0u8; AES_BLOCK];
                next.copy_from_slice(&blocks[last..]);
                k.decrypt(blocks, cipher::DecryptionContext::Iv128(ctx_iv)).map_err(failed)?;
                *iv = next;
            }
        }
        Ok(())
    }
}

fn gcm_key(key: &[u8]) -> Result<aead::LessSafeKey> {
    let alg = match key.len() {
        16 => &aead::AES_128_GCM,
        24 => &aead::AES_192_GCM,
        32 => &aead::AES_256_GCM,
        _ => return Err(Error::KeySizeRange),
    };
    let unbound = aead::UnboundKey::new(alg, key).map_err(|_| Error::KeySizeRange)?;
    Ok(aead::LessSafeKey::new(unbound))
}

/// AES-GCM encryption in one shot: returns ciphertext || 16-byte tag.
pub fn gcm_seal(key: &[u8], nonce: &[u8; GCM_NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let key = gcm_key(key)?;
    let mut out = Vec::with_capacity(plaintext.len() + GCM_TAG_LEN);
    out.extend_from_slice(plaintext);
    key.seal_in_place_append_tag(aead::Nonce::assume_unique_for_key(*nonce), aead::Aad::from(aad), &mut out)
        .map_err(|_| Error::DataLenRange)?;
    Ok(out)
}

/// AES-GCM decryption in one shot of ciphertext || 16-byte tag. A short input is
/// `EncryptedDataLenRange`, a failed tag check `EncryptedDataInvalid`; no plaintext is
/// released unless the tag verifies.
pub fn gcm_open(key: &[u8], nonce: &[u8; GCM_NONCE_LEN], aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let key = gcm_key(key)?;
    if sealed.len() < GCM_TAG_LEN {
        return Err(Error::EncryptedDataLenRange);
    }
    let mut buf = Zeroizing::new(sealed.to_vec());
    let plain_len = key
        .open_in_place(aead::Nonce::assume_unique_for_key(*nonce), aead::Aad::from(aad), &mut buf)
        .map_err(|_| Error::EncryptedDataInvalid)?
        .len();
    buf.truncate(plain_len);
    Ok(buf)
}

/// AES-GCM encryption in parts (any IV length, any tag length from 1 to 16 bytes): the
/// ciphertext as the plaintext comes, the tag at the end.
pub struct GcmStream(crate::crypto_ffi::Gcm);

impl GcmStream {
    pub fn new(key: &[u8], iv: &[u8], aad: &[u8]) -> Result<Self> {
        if !is_aes_key_len(key.len()) {
            return Err(Error::KeySizeRange);
        }
        crate::crypto_ffi::Gcm::new(key, iv, aad, true).map(GcmStream).map_err(|_| Error::MechanismParamInvalid)
    }

    pub fn update(&mut self, plaintext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.0.update(plaintext).map_err(|_| Error::DataLenRange)
    }

    /// The tag, `tag_len` bytes.
    pub fn finish(self, tag_len: usize) -> Result<Vec<u8>> {
        self.0.tag(tag_len).map_err(|_| Error::general("AES-GCM tag"))
    }

    pub fn try_clone(&self) -> Result<Self> {
        self.0.try_clone().map(GcmStream).map_err(|_| Error::HostMemory)
    }
}

/// AES-GCM encryption in one shot with any IV and tag length: ciphertext || tag.
pub fn gcm_seal_any(key: &[u8], iv: &[u8], aad: &[u8], tag_len: usize, plaintext: &[u8]) -> Result<Vec<u8>> {
    if let (Ok(nonce), GCM_TAG_LEN) = (<&[u8; GCM_NONCE_LEN]>::try_from(iv), tag_len) {
        return gcm_seal(key, nonce, aad, plaintext);
    }
    let mut s = GcmStream::new(key, iv, aad)?;
    let mut out = s.update(plaintext)?.to_vec();
    out.extend_from_slice(&s.finish(tag_len)?);
    Ok(out)
}

/// AES-GCM decryption in one shot with any IV and tag length, of ciphertext || tag.
/// Errors as `gcm_open`; no plaintext is released unless the tag verifies.
pub fn gcm_open_any(key: &[u8], iv: &[u8], aad: &[u8], tag_len: usize, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if let (Ok(nonce), GCM_TAG_LEN) = (<&[u8; GCM_NONCE_LEN]>::try_from(iv), tag_len) {
        return gcm_open(key, nonce, aad, sealed);
    }
    if !is_aes_key_len(key.len()) {
        return Err(Error::KeySizeRange);
    }
    let Some(ct_len) = sealed.len().checked_sub(tag_len) else {
        return Err(Error::EncryptedDataLenRange);
    };
    let mut gcm = crate::crypto_ffi::Gcm::new(key, iv, aad, false).map_err(|_| Error::MechanismParamInvalid)?;
    let plain = gcm.update(&sealed[..ct_len]).map_err(|_| Error::EncryptedDataInvalid)?;
    gcm.check(&sealed[ct_len..]).map_err(|_| Error::EncryptedDataInvalid)?;
    Ok(plain)
}

/// aws-lc serves AES key wrap with 128- and 256-bit key-encryption keys only.
pub fn is_kek_len(len: usize) -> bool {
    matches!(len, 16 | 32)
}

fn kek(key: &[u8]) -> Result<key_wrap::AesKek> {
    let cipher = match key.len() {
        16 => &key_wrap::AES_128,
        32 => &key_wrap::AES_256,
        _ => return Err(Error::KeySizeRange),
    };
    key_wrap::AesKek::new(cipher, key).map_err(|_| Error::KeySizeRange)
}

/// RFC 3394 key wrap with the default IV. `plaintext` must be a multiple of 8 bytes and
/// at least 16 (else `DataLenRange`).
pub fn kw_wrap(key: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    use key_wrap::KeyWrap;
    let mut out = vec![0u8; plaintext.len() + 8];
    let len = kek(key)?.wrap(plaintext, &mut out).map_err(|_| Error::DataLenRange)?.len();
    out.truncate(len);
    Ok(out)
}

/// RFC 3394 key unwrap with the default IV; a failed integrity check (or a malformed
/// length) is `EncryptedDataInvalid`.
pub fn kw_unwrap(key: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    use key_wrap::KeyWrap;
    let mut out = Zeroizing::new(vec![0u8; wrapped.len()]);
    let len = kek(key)?.unwrap(wrapped, &mut out).map_err(|_| Error::EncryptedDataInvalid)?.len();
    out.truncate(len);
    Ok(out)
}

/// RFC 5649 key wrap with padding, default alternative IV. Any non-empty `plaintext`.
pub fn kwp_wrap(key: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    use key_wrap::KeyWrapPadded;
    // Output is the input rounded up to 8 bytes, plus the 8-byte integrity block.
    let mut out = vec![0u8; plaintext.len().div_ceil(8) * 8 + 8];
    let len = kek(key)?.wrap_with_padding(plaintext, &mut out).map_err(|_| Error::DataLenRange)?.len();
    out.truncate(len);
    Ok(out)
}

/// RFC 5649 key unwrap; a failed integrity or padding check is `EncryptedDataInvalid`.
pub fn kwp_unwrap(key: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    use key_wrap::KeyWrapPadded;
    let mut out = Zeroizing::new(vec![0u8; wrapped.len()]);
    let len = kek(key)?.unwrap_with_padding(wrapped, &mut out).map_err(|_| Error::EncryptedDataInvalid)?.len();
    out.truncate(len);
    Ok(out)
}

/// AES-CMAC (NIST SP 800-38B) in progress.
#[derive(Clone)]
pub struct Cmac(cmac::Context);

impl Cmac {
    pub fn new(key: &[u8]) -> Result<Self> {
        let alg = match key.len() {
            16 => cmac::AES_128,
            24 => cmac::AES_192,
            32 => cmac::AES_256,
            _ => return Err(Error::KeySizeRange),
        };
        let key = cmac::Key::new(alg, key).map_err(|_| Error::KeySizeRange)?;
        Ok(Cmac(cmac::Context::with_key(&key)))
    }

    pub fn update(&mut self, data: &[u8]) -> Result<()> {
        self.0.update(data).map_err(|_| Error::general("CMAC update failed"))
    }

    pub fn finish(self) -> Result<[u8; CMAC_LEN]> {
        let tag = self.0.sign().map_err(|_| Error::general("CMAC failed"))?;
        <[u8; CMAC_LEN]>::try_from(tag.as_ref()).map_err(|_| Error::general("CMAC length"))
    }
}

/// The hash functions served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn digest_alg(self) -> &'static digest::Algorithm {
        match self {
            Hash::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Hash::Sha224 => &digest::SHA224,
            Hash::Sha256 => &digest::SHA256,
            Hash::Sha384 => &digest::SHA384,
            Hash::Sha512 => &digest::SHA512,
        }
    }

    fn hmac_alg(self) -> hmac::Algorithm {
        match self {
            Hash::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Hash::Sha224 => hmac::HMAC_SHA224,
            Hash::Sha256 => hmac::HMAC_SHA256,
            Hash::Sha384 => hmac::HMAC_SHA384,
            Hash::Sha512 => hmac::HMAC_SHA512,
        }
    }

    /// Output length in bytes.
    pub fn output_len(self) -> usize {
        self.digest_alg().output_len()
    }
}

/// A digest in progress; cloning copies the state (to save or fork a computation).
#[derive(Clone)]
pub struct Digest(digest::Context);

impl Digest {
    pub fn new(hash: Hash) -> Self {
        Digest(digest::Context::new(hash.digest_alg()))
    }

    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub fn finish(self) -> Vec<u8> {
        self.0.finish().as_ref().to_vec()
    }
}

/// HMAC (RFC 2104) in progress; cloning copies the keyed state.
#[derive(Clone)]
pub struct Hmac(hmac::Context);

impl Hmac {
    /// Any key length is accepted (keys longer than the hash block are hashed first).
    pub fn new(hash: Hash, key: &[u8]) -> Self {
        Hmac(hmac::Context::with_key(&hmac::Key::new(hash.hmac_alg(), key)))
    }

    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The full-length MAC.
    pub fn finish(self) -> Vec<u8> {
        self.0.sign().as_ref().to_vec()
    }
}

// ---------------------------------------------------------------------------------------
// Asymmetric keys: shared pieces

/// The error for key material that does not form a valid key.
fn bad_key<E>(_: E) -> Error {
    Error::KeyTypeInconsistent
}

/// `v` without its leading zero bytes.
fn strip_zeros(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| *b != 0).unwrap_or(v.len());
    &v[start..]
}

/// The big-endian unsigned integer `v` as exactly `len` bytes (left-padded with zeros),
/// or None when it does not fit.
fn fixed_len(v: &[u8], len: usize) -> Option<Zeroizing<Vec<u8>>> {
    let v = strip_zeros(v);
    if v.len() > len {
        return None;
    }
    let mut out = Zeroizing::new(vec![0u8; len]);
    out[len - v.len()..].copy_from_slice(v);
    Some(out)
}

impl Hash {
    /// The DER prefix of a PKCS#1 v1.5 DigestInfo of this hash (RFC 8017, 9.2 note 1):
    /// the digest follows it.
    fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            Hash::Sha1 => &[0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14],
            Hash::Sha224 => &[
                0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04, 0x05, 0x00,
                0x04, 0x1c,
            ],
            Hash::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
                0x04, 0x20,
            ],
            Hash::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00,
                0x04, 0x30,
            ],
            Hash::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00,
                0x04, 0x40,
            ],
        }
    }

    const ALL: [Hash; 5] = [Hash::Sha1, Hash::Sha224, Hash::Sha256, Hash::Sha384, Hash::Sha512];
}

/// The DER DigestInfo of `digest` (which must have the output length of `hash`).
pub fn digest_info(hash: Hash, digest: &[u8]) -> Vec<u8> {
    [hash.digest_info_prefix(), digest].concat()
}

/// The hash and digest of `data` when it is exactly the DER DigestInfo of a SHA-1 or
/// SHA-2 digest.
pub fn parse_digest_info(data: &[u8]) -> Option<(Hash, &[u8])> {
    Hash::ALL
        .into_iter()
        .find_map(|h| data.strip_prefix(h.digest_info_prefix()).filter(|d| d.len() == h.output_len()).map(|d| (h, d)))
}

// ---------------------------------------------------------------------------------------
// Elliptic curves

/// secp256k1 (SEC 2), which const-oid's database lacks.
pub const SECP_256_K_1: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("1.3.132.0.10");

/// The short-Weierstrass curves served: NIST P-256, P-384 and P-521, and SEC secp256k1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
    P521,
    Secp256k1,
}

impl Curve {
    /// Length in bytes of a field element, of the group order and of a private scalar
    /// (equal on these curves).
    pub fn byte_len(self) -> usize {
        match self {
            Curve::P256 | Curve::Secp256k1 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }

    /// Length of an uncompressed point (0x04 || x || y).
    pub fn point_len(self) -> usize {
        1 + 2 * self.byte_len()
    }

    fn signing(self) -> &'static signature::EcdsaSigningAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
            Curve::Secp256k1 => &signature::ECDSA_P256K1_SHA256_FIXED_SIGNING,
        }
    }

    fn verification(self) -> &'static signature::EcdsaVerificationAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
            Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
            Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED,
            Curve::Secp256k1 => &signature::ECDSA_P256K1_SHA256_FIXED,
        }
    }

    /// ECDH on the curve; aws-lc-rs has none on secp256k1, which AWS KMS does not offer
    /// for key agreement either.
    fn agreement(self) -> Result<&'static agreement::Algorithm> {
        match self {
            Curve::P256 => Ok(&agreement::ECDH_P256),
            Curve::P384 => Ok(&agreement::ECDH_P384),
            Curve::P521 => Ok(&agreement::ECDH_P521),
            Curve::Secp256k1 => Err(Error::CurveNotSupported),
        }
    }

    /// Whether ECDH is served on the curve.
    pub fn agrees(self) -> bool {
        self.agreement().is_ok()
    }

    /// The digest algorithm of the form in which aws-lc takes the value to sign: the
    /// order's length, or SHA-512 on P-521, whose 521-bit order no digest matches.
    fn order_digest(self) -> &'static digest::Algorithm {
        match self {
            Curve::P256 | Curve::Secp256k1 => &digest::SHA256,
            Curve::P384 => &digest::SHA384,
            Curve::P521 => &digest::SHA512,
        }
    }

    fn oid(self) -> der::asn1::ObjectIdentifier {
        match self {
            Curve::P256 => const_oid::db::rfc5912::SECP_256_R_1,
            Curve::P384 => const_oid::db::rfc5912::SECP_384_R_1,
            Curve::P521 => const_oid::db::rfc5912::SECP_521_R_1,
            Curve::Secp256k1 => SECP_256_K_1,
        }
    }

    /// A private scalar as exactly `byte_len()` bytes: clients may drop leading zeros.
    fn scalar(self, value: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        fixed_len(value, self.byte_len()).ok_or(Error::KeyTypeInconsistent)
    }
}

/// A new EC key: the private scalar (big-endian, field length) and the public point
/// (uncompressed).
pub struct EcKeyMaterial {
    pub scalar: Zeroizing<Vec<u8>>,
    pub point: Vec<u8>,
}

pub fn ec_generate(curve: Curve) -> Result<EcKeyMaterial> {
    let failed = |_| Error::general("EC key generation failed");
    let pair = signature::EcdsaKeyPair::generate(curve.signing()).map_err(failed)?;
    let bin = pair.private_key().as_be_bytes().map_err(failed)?;
    Ok(EcKeyMaterial { scalar: Zeroizing::new(bin.as_ref().to_vec()), point: pair.public_key().as_ref().to_vec() })
}

/// The value ECDSA signs for `hash` (FIPS 186-5, 6.4.1): the leftmost bits of the hash
/// up to the order's length. The orders of P-256, P-384 and secp256k1 have whole bytes,
/// so a longer hash is cut to the order's byte length, and a shorter one, whose integer
/// value is taken whole, is left-padded with zeros. On P-521 a value of up to 64 bytes is
/// taken whole; a longer one is `DataLenRange`.
fn ecdsa_value(curve: Curve, hash: &[u8]) -> Result<digest::Digest> {
    let n = curve.order_digest().output_len;
    let mut value = [0u8; 64];
    if hash.len() >= curve.byte_len() && curve.byte_len() == n {
        // Longer than the order: its leftmost bits, a whole number of bytes here.
        value[..n].copy_from_slice(&hash[..n]);
    } else if hash.len() <= n {
        // Shorter: the integer itself.
        value[n - hash.len()..n].copy_from_slice(hash);
    } else {
        // P-521 takes the leftmost 521 bits of a longer value, more than aws-lc's form holds;
        // every digest (64 bytes at most) fits.
        return Err(Error::DataLenRange);
    }
    digest::Digest::import_less_safe(&value[..n], curve.order_digest())
        .map_err(|_| Error::general("ECDSA value import failed"))
}

/// An ECDSA private key.
pub struct EcSigningKey {
    curve: Curve,
    pair: signature::EcdsaKeyPair,
}

impl EcSigningKey {
    /// From the private scalar and, when known, the public point (uncompressed); aws-lc
    /// checks that the two belong together. Without the point it is computed.
    pub fn new(curve: Curve, scalar: &[u8], point: Option<&[u8]>) -> Result<Self> {
        let scalar = curve.scalar(scalar)?;
        let pair = match point {
            Some(point) => signature::EcdsaKeyPair::from_private_key_and_public_key(curve.signing(), &scalar, point)
                .map_err(bad_key)?,
            None => {
                let sec1 = sec1::EcPrivateKey {
                    private_key: &scalar,
                    parameters: Some(sec1::EcParameters::NamedCurve(curve.oid())),
                    public_key: None,
                };
                let der = Zeroizing::new(sec1.to_der().map_err(bad_key)?);
                signature::EcdsaKeyPair::from_private_key_der(curve.signing(), &der).map_err(bad_key)?
            }
        };
        Ok(EcSigningKey { curve, pair })
    }

    pub fn curve(&self) -> Curve {
        self.curve
    }

    /// The public point, uncompressed.
    pub fn public_point(&self) -> Vec<u8> {
        self.pair.public_key().as_ref().to_vec()
    }

    /// An ECDSA signature, r || s at the order's length each, of a hash of any length.
    pub fn sign_prehash(&self, hash: &[u8]) -> Result<Vec<u8>> {
        let value = ecdsa_value(self.curve, hash)?;
        let sig = self.pair.sign_digest(&value).map_err(|_| Error::general("ECDSA signing failed"))?;
        Ok(sig.as_ref().to_vec())
    }
}

/// An ECDSA public key.
pub struct EcVerifyingKey {
    curve: Curve,
    key: signature::ParsedPublicKey,
}

impl EcVerifyingKey {
    /// From a point (uncompressed or compressed); a point not on the curve is refused.
    pub fn new(curve: Curve, point: &[u8]) -> Result<Self> {
        if !matches!(point.first(), Some(2..=4)) {
            return Err(Error::KeyTypeInconsistent);
        }
        let key = signature::ParsedPublicKey::new(curve.verification(), point).map_err(bad_key)?;
        Ok(EcVerifyingKey { curve, key })
    }

    pub fn curve(&self) -> Curve {
        self.curve
    }

    /// Checks an r || s signature of a hash of any length: `SignatureLenRange` for a
    /// signature of the wrong length, `SignatureInvalid` for a wrong one.
    pub fn verify_prehash(&self, hash: &[u8], sig: &[u8]) -> Result<()> {
        if sig.len() != 2 * self.curve.byte_len() {
            return Err(Error::SignatureLenRange);
        }
        let value = ecdsa_value(self.curve, hash)?;
        self.key.verify_digest_sig(&value, sig).map_err(|_| Error::SignatureInvalid)
    }
}

/// An ECDH private key.
pub struct EcAgreementKey {
    curve: Curve,
    key: agreement::PrivateKey,
}

impl EcAgreementKey {
    pub fn new(curve: Curve, scalar: &[u8]) -> Result<Self> {
        let scalar = curve.scalar(scalar)?;
        let key = agreement::PrivateKey::from_private_key(curve.agreement()?, &scalar).map_err(bad_key)?;
        Ok(EcAgreementKey { curve, key })
    }

    pub fn curve(&self) -> Curve {
        self.curve
    }

    /// The ECDH shared secret with the peer's point (uncompressed or compressed): the
    /// x-coordinate of the product, field length. A point that is not on the curve is
    /// `MechanismParamInvalid` (it is the mechanism's parameter).
    pub fn agree(&self, peer_point: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if !matches!(peer_point.first(), Some(2..=4)) {
            return Err(Error::MechanismParamInvalid);
        }
        let peer = agreement::UnparsedPublicKey::new(self.curve.agreement()?, peer_point);
        agreement::agree(&self.key, peer, Error::MechanismParamInvalid, |secret| Ok(Zeroizing::new(secret.to_vec())))
    }
}

// ---------------------------------------------------------------------------------------
// ML-DSA (FIPS 204)

/// The ML-DSA parameter sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MlDsa {
    L44,
    L65,
    L87,
}

/// The length of an ML-DSA seed (ξ), from which FIPS 204 expands the key pair.
pub const ML_DSA_SEED_LEN: usize = 32;

impl MlDsa {
    fn signing(self) -> &'static signature::PqdsaSigningAlgorithm {
        match self {
            MlDsa::L44 => &signature::ML_DSA_44_SIGNING,
            MlDsa::L65 => &signature::ML_DSA_65_SIGNING,
            MlDsa::L87 => &signature::ML_DSA_87_SIGNING,
        }
    }

    fn verification(self) -> &'static signature::PqdsaVerificationAlgorithm {
        match self {
            MlDsa::L44 => &signature::ML_DSA_44,
            MlDsa::L65 => &signature::ML_DSA_65,
            MlDsa::L87 => &signature::ML_DSA_87,
        }
    }

    pub fn public_len(self) -> usize {
        self.signing().public_key_len()
    }

    pub fn signature_len(self) -> usize {
        self.signing().signature_len()
    }
}

/// An ML-DSA private key: aws-lc's, and the seed when it is known (the variants aws-lc
/// does not make are made from it, see `MlDsaOptions`).
pub struct MlDsaSigningKey {
    level: MlDsa,
    pair: signature::PqdsaKeyPair,
    seed: Option<Zeroizing<Vec<u8>>>,
}

impl MlDsaSigningKey {
    /// A new key and the seed it was expanded from.
    pub fn generate(level: MlDsa) -> Result<(Zeroizing<Vec<u8>>, Self)> {
        let seed = random_secret(ML_DSA_SEED_LEN)?;
        let key = Self::from_seed(level, &seed)?;
        Ok((seed, key))
    }

    pub fn from_seed(level: MlDsa, seed: &[u8]) -> Result<Self> {
        let pair = signature::PqdsaKeyPair::from_seed(level.signing(), seed).map_err(bad_key)?;
        Ok(MlDsaSigningKey { level, pair, seed: Some(Zeroizing::new(seed.to_vec())) })
    }

    /// From the expanded private key of FIPS 204 (sk).
    pub fn from_private(level: MlDsa, raw: &[u8]) -> Result<Self> {
        let pair = signature::PqdsaKeyPair::from_raw_private_key(level.signing(), raw).map_err(bad_key)?;
        Ok(MlDsaSigningKey { level, pair, seed: None })
    }

    /// The expanded private key (sk).
    pub fn private_key(&self) -> Result<Zeroizing<Vec<u8>>> {
        use aws_lc_rs::encoding::AsRawBytes;
        let raw = self.pair.private_key().as_raw_bytes().map_err(|_| Error::general("ML-DSA key encoding"))?;
        Ok(Zeroizing::new(raw.as_ref().to_vec()))
    }

    pub fn public_key(&self) -> Vec<u8> {
        self.pair.public_key().as_ref().to_vec()
    }

    /// A hedged (randomised) ML-DSA signature of `msg`, with an empty context.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let mut sig = vec![0u8; self.level.signature_len()];
        let n = self.pair.sign(msg, &mut sig).map_err(|_| Error::general("ML-DSA signing failed"))?;
        sig.truncate(n);
        Ok(sig)
    }

    /// A signature of `msg` as `opts` asks (a context, deterministic, HashML-DSA over the
    /// pre-hash `msg`), made by RustCrypto's ml-dsa from the key's seed: aws-lc signs
    /// hedged with an empty context only. A key known only by its expanded form has no
    /// seed and cannot (`MechanismParamInvalid`): RustCrypto's decoder of expanded keys is
    /// deprecated and may panic on a malformed one.
    pub fn sign_with(&self, msg: &[u8], opts: &MlDsaOptions) -> Result<Vec<u8>> {
        let seed = self.seed.as_deref().ok_or(Error::MechanismParamInvalid)?;
        let input = match opts.mu(msg)? {
            Some(mu) => MlDsaInput::Mu(mu),
            None => MlDsaInput::MPrime(opts.m_prime(msg)?),
        };
        let mut rnd = [0u8; 32];
        if !opts.deterministic {
            random(&mut rnd)?;
        }
        match self.level {
            MlDsa::L44 => rc_ml_dsa_sign::<ml_dsa::MlDsa44>(seed, &input, &rnd),
            MlDsa::L65 => rc_ml_dsa_sign::<ml_dsa::MlDsa65>(seed, &input, &rnd),
            MlDsa::L87 => rc_ml_dsa_sign::<ml_dsa::MlDsa87>(seed, &input, &rnd),
        }
    }
}

/// What FIPS 204 signs beyond aws-lc's hedged, context-free ML-DSA.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MlDsaOptions {
    /// At most 255 bytes.
    pub context: Vec<u8>,
    /// The signature with rnd = 0 (FIPS 204, 3.4); hedged otherwise.
    pub deterministic: bool,
    /// HashML-DSA: the message given is the pre-hash PH(M) of this function.
    pub prehash: Option<PreHash>,
    /// The message given is μ itself (FIPS 204, 6.2 "external μ"), 64 bytes; signed
    /// deterministically.
    pub external_mu: bool,
}

impl MlDsaOptions {
    /// Whether aws-lc's own signature serves (hedged, empty context, pure).
    pub fn plain(&self) -> bool {
        self.context.is_empty() && !self.deterministic && self.prehash.is_none() && !self.external_mu
    }

    /// μ as given, when it is.
    fn mu(&self, msg: &[u8]) -> Result<Option<MlDsaMu>> {
        if !self.external_mu {
            return Ok(None);
        }
        MlDsaMu::try_from(msg).map(Some).map_err(|_| Error::DataLenRange)
    }

    /// M' of FIPS 204 (algorithms 2 and 4): the domain separator, the context, and the
    /// message or the pre-hash's OID and value.
    fn m_prime(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let ctx_len = u8::try_from(self.context.len()).map_err(|_| Error::MechanismParamInvalid)?;
        let mut m = vec![self.prehash.is_some() as u8, ctx_len];
        m.extend_from_slice(&self.context);
        if let Some(h) = self.prehash {
            if msg.len() != h.output_len() {
                return Err(Error::DataLenRange);
            }
            m.extend_from_slice(&h.oid_der());
        }
        m.extend_from_slice(msg);
        Ok(m)
    }
}

/// ML-DSA's μ, 64 bytes, as RustCrypto's ml-dsa takes it.
type MlDsaMu = hybrid_array::Array<u8, hybrid_array::sizes::U64>;

/// What RustCrypto signs or verifies: M' (FIPS 204's internal functions), or μ.
enum MlDsaInput {
    MPrime(Vec<u8>),
    Mu(MlDsaMu),
}

fn rc_ml_dsa_sign<P: ml_dsa::MlDsaParams>(seed: &[u8], input: &MlDsaInput, rnd: &[u8; 32]) -> Result<Vec<u8>> {
    let seed = ml_dsa::B32::try_from(seed).map_err(|_| Error::KeyTypeInconsistent)?;
    let key = ml_dsa::ExpandedSigningKey::<P>::from_seed(&seed);
    let sig = match input {
        MlDsaInput::MPrime(m) => key.sign_internal(&[m], &ml_dsa::B32::from(*rnd)),
        // μ is signed with rnd = 0: the crate's hedged form wants its own generator type.
        MlDsaInput::Mu(mu) => key.sign_mu_deterministic(mu),
    };
    Ok(sig.encode().to_vec())
}

fn rc_ml_dsa_verify<P: ml_dsa::MlDsaParams>(pk: &[u8], input: &MlDsaInput, sig: &[u8]) -> bool {
    let Ok(pk) = ml_dsa::EncodedVerifyingKey::<P>::try_from(pk) else { return false };
    let Ok(enc) = ml_dsa::EncodedSignature::<P>::try_from(sig) else { return false };
    let Some(sig) = ml_dsa::Signature::<P>::decode(&enc) else { return false };
    let vk = ml_dsa::VerifyingKey::<P>::decode(&pk);
    match input {
        MlDsaInput::MPrime(m) => vk.verify_internal(m, &sig),
        MlDsaInput::Mu(mu) => vk.verify_mu(mu, &sig),
    }
}

/// The hash functions HashML-DSA pre-hashes with (FIPS 204, 5.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreHash {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    Sha3_224,
    Sha3_256,
    Sha3_384,
    Sha3_512,
    Shake128,
    Shake256,
}

impl PreHash {
    /// The DER of the function's OID (2.16.840.1.101.3.4.2.n), as M' carries it.
    fn oid_der(self) -> [u8; 11] {
        let arc = match self {
            PreHash::Sha256 => 1,
            PreHash::Sha384 => 2,
            PreHash::Sha512 => 3,
            PreHash::Sha224 => 4,
            PreHash::Sha3_224 => 7,
            PreHash::Sha3_256 => 8,
            PreHash::Sha3_384 => 9,
            PreHash::Sha3_512 => 10,
            PreHash::Shake128 => 11,
            PreHash::Shake256 => 12,
        };
        [0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, arc]
    }

    /// The length of PH(M): SHAKE128 gives 256 bits and SHAKE256 512, as FIPS 204 has it.
    pub fn output_len(self) -> usize {
        match self {
            PreHash::Sha224 | PreHash::Sha3_224 => 28,
            PreHash::Sha256 | PreHash::Sha3_256 | PreHash::Shake128 => 32,
            PreHash::Sha384 | PreHash::Sha3_384 => 48,
            PreHash::Sha512 | PreHash::Sha3_512 | PreHash::Shake256 => 64,
        }
    }
}

/// A pre-hash in progress (SHA-2 from aws-lc; SHA-3 and SHAKE, which aws-lc-rs does not
/// offer at every length, from RustCrypto's sha3).
pub enum PreHasher {
    Sha2(Digest),
    Sha3_224(sha3::Sha3_224),
    Sha3_256(sha3::Sha3_256),
    Sha3_384(sha3::Sha3_384),
    Sha3_512(sha3::Sha3_512),
    Shake128(sha3::Shake128),
    Shake256(sha3::Shake256),
}

impl PreHasher {
    pub fn new(h: PreHash) -> PreHasher {
        use sha3::Digest as _;
        match h {
            PreHash::Sha224 => PreHasher::Sha2(Digest::new(Hash::Sha224)),
            PreHash::Sha256 => PreHasher::Sha2(Digest::new(Hash::Sha256)),
            PreHash::Sha384 => PreHasher::Sha2(Digest::new(Hash::Sha384)),
            PreHash::Sha512 => PreHasher::Sha2(Digest::new(Hash::Sha512)),
            PreHash::Sha3_224 => PreHasher::Sha3_224(sha3::Sha3_224::new()),
            PreHash::Sha3_256 => PreHasher::Sha3_256(sha3::Sha3_256::new()),
            PreHash::Sha3_384 => PreHasher::Sha3_384(sha3::Sha3_384::new()),
            PreHash::Sha3_512 => PreHasher::Sha3_512(sha3::Sha3_512::new()),
            PreHash::Shake128 => PreHasher::Shake128(sha3::Shake128::default()),
            PreHash::Shake256 => PreHasher::Shake256(sha3::Shake256::default()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        use sha3::digest::Update;
        match self {
            PreHasher::Sha2(d) => d.update(data),
            PreHasher::Sha3_224(d) => Update::update(d, data),
            PreHasher::Sha3_256(d) => Update::update(d, data),
            PreHasher::Sha3_384(d) => Update::update(d, data),
            PreHasher::Sha3_512(d) => Update::update(d, data),
            PreHasher::Shake128(d) => Update::update(d, data),
            PreHasher::Shake256(d) => Update::update(d, data),
        }
    }

    pub fn finish(self) -> Vec<u8> {
        use sha3::digest::{ExtendableOutput, FixedOutput};
        match self {
            PreHasher::Sha2(d) => d.finish(),
            PreHasher::Sha3_224(d) => d.finalize_fixed().to_vec(),
            PreHasher::Sha3_256(d) => d.finalize_fixed().to_vec(),
            PreHasher::Sha3_384(d) => d.finalize_fixed().to_vec(),
            PreHasher::Sha3_512(d) => d.finalize_fixed().to_vec(),
            PreHasher::Shake128(d) => d.finalize_boxed(32).to_vec(),
            PreHasher::Shake256(d) => d.finalize_boxed(64).to_vec(),
        }
    }
}

/// An ML-DSA public key.
pub struct MlDsaVerifyingKey {
    level: MlDsa,
    key: Vec<u8>,
}

impl MlDsaVerifyingKey {
    /// A public key of the set's length (anything else is no key).
    pub fn new(level: MlDsa, key: &[u8]) -> Result<Self> {
        if key.len() != level.public_len() {
            return Err(Error::KeyTypeInconsistent);
        }
        Ok(MlDsaVerifyingKey { level, key: key.to_vec() })
    }

    /// `SignatureLenRange` for a signature of the wrong length, `SignatureInvalid` for a
    /// wrong one (empty context).
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<()> {
        if sig.len() != self.level.signature_len() {
            return Err(Error::SignatureLenRange);
        }
        signature::UnparsedPublicKey::new(self.level.verification(), &self.key)
            .verify(msg, sig)
            .map_err(|_| Error::SignatureInvalid)
    }

    /// Checks a signature made as `opts` says (see `MlDsaSigningKey::sign_with`).
    pub fn verify_with(&self, msg: &[u8], sig: &[u8], opts: &MlDsaOptions) -> Result<()> {
        if sig.len() != self.level.signature_len() {
            return Err(Error::SignatureLenRange);
        }
        let input = match opts.mu(msg)? {
            Some(mu) => MlDsaInput::Mu(mu),
            None => MlDsaInput::MPrime(opts.m_prime(msg)?),
        };
        let ok = match self.level {
            MlDsa::L44 => rc_ml_dsa_verify::<ml_dsa::MlDsa44>(&self.key, &input, sig),
            MlDsa::L65 => rc_ml_dsa_verify::<ml_dsa::MlDsa65>(&self.key, &input, sig),
            MlDsa::L87 => rc_ml_dsa_verify::<ml_dsa::MlDsa87>(&self.key, &input, sig),
        };
        if ok {
            Ok(())
        } else {
            Err(Error::SignatureInvalid)
        }
    }
}

// ---------------------------------------------------------------------------------------
// ML-KEM (FIPS 203)

/// The ML-KEM parameter sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MlKem {
    L512,
    L768,
    L1024,
}

impl MlKem {
    fn alg(self) -> &'static aws_lc_rs::kem::Algorithm {
        match self {
            MlKem::L512 => &aws_lc_rs::kem::ML_KEM_512,
            MlKem::L768 => &aws_lc_rs::kem::ML_KEM_768,
            MlKem::L1024 => &aws_lc_rs::kem::ML_KEM_1024,
        }
    }

    /// The length of a ciphertext (FIPS 203, table 3).
    pub fn ciphertext_len(self) -> usize {
        match self {
            MlKem::L512 => 768,
            MlKem::L768 => 1088,
            MlKem::L1024 => 1568,
        }
    }
}

/// The length of an ML-KEM shared secret.
pub const ML_KEM_SECRET_LEN: usize = 32;

/// A new ML-KEM key pair: the decapsulation key (dk) and the encapsulation key (ek).
pub fn ml_kem_generate(level: MlKem) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>)> {
    let failed = |_| Error::general("ML-KEM key generation failed");
    let dk = aws_lc_rs::kem::DecapsulationKey::generate(level.alg()).map_err(failed)?;
    let ek = dk.encapsulation_key().map_err(failed)?;
    let ek = ek.key_bytes().map_err(failed)?.as_ref().to_vec();
    let dk = Zeroizing::new(dk.key_bytes().map_err(failed)?.as_ref().to_vec());
    Ok((dk, ek))
}

/// The encapsulation key inside a decapsulation key (FIPS 203: dk = dk_PKE || ek || H(ek)
/// || z), after the standard's check of H(ek): a dk that fails it is no key.
pub fn ml_kem_public(level: MlKem, dk: &[u8]) -> Result<Vec<u8>> {
    aws_lc_rs::kem::DecapsulationKey::new(level.alg(), dk).map_err(bad_key)?;
    let k = match level {
        MlKem::L512 => 2,
        MlKem::L768 => 3,
        MlKem::L1024 => 4,
    };
    if dk.len() != 768 * k + 96 {
        return Err(Error::KeyTypeInconsistent);
    }
    let (ek, h) = (&dk[384 * k..768 * k + 32], &dk[768 * k + 32..768 * k + 64]);
    if digest::digest(&digest::SHA3_256, ek).as_ref() != h {
        return Err(Error::KeyTypeInconsistent);
    }
    Ok(ek.to_vec())
}

/// Checks an encapsulation key (its length and encoding).
pub fn ml_kem_check_public(level: MlKem, ek: &[u8]) -> Result<()> {
    aws_lc_rs::kem::EncapsulationKey::new(level.alg(), ek).map(|_| ()).map_err(bad_key)
}

/// A fresh shared secret and its ciphertext under the encapsulation key `ek`.
pub fn ml_kem_encapsulate(level: MlKem, ek: &[u8]) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
    let ek = aws_lc_rs::kem::EncapsulationKey::new(level.alg(), ek).map_err(bad_key)?;
    let (ct, secret) = ek.encapsulate().map_err(|_| Error::general("ML-KEM encapsulation failed"))?;
    Ok((ct.as_ref().to_vec(), Zeroizing::new(secret.as_ref().to_vec())))
}

/// The shared secret of a ciphertext (`EncryptedDataLenRange` for one of the wrong length;
/// a wrong ciphertext of the right length yields a pseudorandom secret, as FIPS 203's
/// implicit rejection has it).
pub fn ml_kem_decapsulate(level: MlKem, dk: &[u8], ct: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if ct.len() != level.ciphertext_len() {
        return Err(Error::EncryptedDataLenRange);
    }
    let dk = aws_lc_rs::kem::DecapsulationKey::new(level.alg(), dk).map_err(bad_key)?;
    let secret = dk.decapsulate(ct.into()).map_err(|_| Error::EncryptedDataInvalid)?;
    Ok(Zeroizing::new(secret.as_ref().to_vec()))
}

// ---------------------------------------------------------------------------------------
// X25519 (RFC 7748)

/// The length of an X25519 private key (its 32-byte string, clamped at use) and of a
/// public key.
pub const X25519_KEY_LEN: usize = 32;

fn x25519_key(private: &[u8]) -> Result<agreement::PrivateKey> {
    if private.len() != X25519_KEY_LEN {
        return Err(Error::KeyTypeInconsistent);
    }
    agreement::PrivateKey::from_private_key(&agreement::X25519, private).map_err(bad_key)
}

/// The public key of an X25519 private key.
pub fn x25519_public(private: &[u8]) -> Result<Vec<u8>> {
    let key = x25519_key(private)?;
    Ok(key.compute_public_key().map_err(bad_key)?.as_ref().to_vec())
}

/// The X25519 shared secret with the peer's 32-byte public key. A peer key of another
/// length, or one of small order (the all-zero secret), is `MechanismParamInvalid`.
pub fn x25519_agree(private: &[u8], peer: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if peer.len() != X25519_KEY_LEN {
        return Err(Error::MechanismParamInvalid);
    }
    let key = x25519_key(private)?;
    let peer = agreement::UnparsedPublicKey::new(&agreement::X25519, peer);
    agreement::agree(&key, peer, Error::MechanismParamInvalid, |secret| Ok(Zeroizing::new(secret.to_vec())))
}

// ---------------------------------------------------------------------------------------
// RSA

/// The public exponent served for new keys (F4).
pub const RSA_F4: [u8; 3] = [0x01, 0x00, 0x01];

/// The components of an RSA private key, big-endian unsigned.
#[derive(Clone)]
pub struct RsaParts<B> {
    pub n: B,
    pub e: B,
    pub d: B,
    pub p: B,
    pub q: B,
    pub dp: B,
    pub dq: B,
    pub qinv: B,
}

impl<B: AsRef<[u8]>> RsaParts<B> {
    /// The components borrowed, as `RsaPrivateKey::new` takes them.
    pub fn as_refs(&self) -> RsaParts<&[u8]> {
        RsaParts {
            n: self.n.as_ref(),
            e: self.e.as_ref(),
            d: self.d.as_ref(),
            p: self.p.as_ref(),
            q: self.q.as_ref(),
            dp: self.dp.as_ref(),
            dq: self.dq.as_ref(),
            qinv: self.qinv.as_ref(),
        }
    }
}

/// A new RSA key of `bits` with e = 65537, its components without leading zeros:
/// through aws-lc-rs for 2048, 3072 and 4096 bits (which hands private keys out only as
/// PKCS#8; the components are read from it), through aws-lc's own generator
/// (`crypto_ffi::rsa_generate`) for the other sizes, from 1024 bits.
pub fn rsa_generate(bits: usize) -> Result<RsaParts<Zeroizing<Vec<u8>>>> {
    fn failed<E>(_: E) -> Error {
        Error::general("RSA key generation failed")
    }
    let unreadable = |_| Error::general("RSA key export unreadable");
    let size = match bits {
        2048 => Some(rsa::KeySize::Rsa2048),
        3072 => Some(rsa::KeySize::Rsa3072),
        4096 => Some(rsa::KeySize::Rsa4096),
        1024.. => None,
        _ => return Err(Error::KeySizeRange),
    };
    let der = match size {
        Some(size) => {
            let pair = rsa::KeyPair::generate(size).map_err(failed)?;
            let doc = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).map_err(failed)?;
            let info = pkcs8::PrivateKeyInfo::from_der(doc.as_ref()).map_err(unreadable)?;
            Zeroizing::new(info.private_key.to_vec())
        }
        None => crate::crypto_ffi::rsa_generate(bits).map_err(failed)?,
    };
    let key = pkcs1::RsaPrivateKey::from_der(&der).map_err(unreadable)?;
    let own = |u: UintRef| Zeroizing::new(u.as_bytes().to_vec());
    Ok(RsaParts {
        n: own(key.modulus),
        e: own(key.public_exponent),
        d: own(key.private_exponent),
        p: own(key.prime1),
        q: own(key.prime2),
        dp: own(key.exponent1),
        dq: own(key.exponent2),
        qinv: own(key.coefficient),
    })
}

fn uint(v: &[u8]) -> Result<UintRef<'_>> {
    UintRef::new(v).map_err(bad_key)
}

fn rsa_encryption() -> AlgorithmIdentifierRef<'static> {
    AlgorithmIdentifierRef { oid: const_oid::db::rfc5912::RSA_ENCRYPTION, parameters: Some(AnyRef::NULL) }
}

/// The aws-lc-rs signing encodings (PKCS#1 v1.5 or PSS with MGF1 of the same hash and a
/// salt as long as the hash) for the hashes it serves.
fn safe_signing(hash: Hash, pss: bool) -> Option<&'static signature::RsaSignatureEncoding> {
    Some(match (hash, pss) {
        (Hash::Sha256, false) => &signature::RSA_PKCS1_SHA256,
        (Hash::Sha384, false) => &signature::RSA_PKCS1_SHA384,
        (Hash::Sha512, false) => &signature::RSA_PKCS1_SHA512,
        (Hash::Sha256, true) => &signature::RSA_PSS_SHA256,
        (Hash::Sha384, true) => &signature::RSA_PSS_SHA384,
        (Hash::Sha512, true) => &signature::RSA_PSS_SHA512,
        _ => return None,
    })
}

/// The aws-lc-rs OAEP algorithms: a hash and MGF1 of the same hash, SHA-224 excepted.
fn safe_oaep(hash: Hash, mgf: Hash) -> Option<&'static rsa::OaepAlgorithm> {
    if hash != mgf {
        return None;
    }
    match hash {
        Hash::Sha1 => Some(&rsa::OAEP_SHA1_MGF1SHA1),
        Hash::Sha256 => Some(&rsa::OAEP_SHA256_MGF1SHA256),
        Hash::Sha384 => Some(&rsa::OAEP_SHA384_MGF1SHA384),
        Hash::Sha512 => Some(&rsa::OAEP_SHA512_MGF1SHA512),
        Hash::Sha224 => None,
    }
}

fn import_digest(hash: Hash, digest: &[u8]) -> Result<digest::Digest> {
    digest::Digest::import_less_safe(digest, hash.digest_alg()).map_err(|_| Error::DataLenRange)
}

/// Largest message RSAES-PKCS1-v1_5 or a PKCS#1 v1.5 signature carries in a k-byte
/// modulus.
pub fn pkcs1_max_payload(k: usize) -> usize {
    k.saturating_sub(11)
}

/// Largest message RSAES-OAEP with `hash` carries in a k-byte modulus.
pub fn oaep_max_message(k: usize, hash: Hash) -> usize {
    k.saturating_sub(2 * hash.output_len() + 2)
}

/// Largest PSS salt for a key of `bits` and `hash` (RFC 8017 9.1.1: emLen - hLen - 2,
/// emLen = ceil((bits - 1) / 8)).
pub fn pss_max_salt(bits: usize, hash: Hash) -> usize {
    bits.saturating_sub(1).div_ceil(8).saturating_sub(hash.output_len() + 2)
}

/// An RSA private key. The parsed forms aws-lc-rs needs are made on first use.
pub struct RsaPrivateKey {
    raw: RsaKey,
    /// The modulus, k bytes.
    n: Vec<u8>,
    /// The key as DER RSAPrivateKey, for the lazily parsed forms.
    pkcs1: Zeroizing<Vec<u8>>,
    /// SHA-256 of the private exponent as k bytes: the key of the implicit-rejection KDF.
    ir_key: Zeroizing<Vec<u8>>,
    signer: OnceLock<Option<signature::RsaKeyPair>>,
    oaep: OnceLock<Option<rsa::OaepPrivateDecryptingKey>>,
}

impl RsaPrivateKey {
    /// From the CRT components (two-prime keys only); aws-lc checks them for
    /// consistency. Any size aws-lc accepts; the mechanisms decide which they serve.
    pub fn new(parts: &RsaParts<&[u8]>) -> Result<Self> {
        let key = pkcs1::RsaPrivateKey {
            modulus: uint(parts.n)?,
            public_exponent: uint(parts.e)?,
            private_exponent: uint(parts.d)?,
            prime1: uint(parts.p)?,
            prime2: uint(parts.q)?,
            exponent1: uint(parts.dp)?,
            exponent2: uint(parts.dq)?,
            coefficient: uint(parts.qinv)?,
            other_prime_infos: None,
        };
        let pkcs1 = Zeroizing::new(key.to_der().map_err(bad_key)?);
        let raw = RsaKey::private_from_der(&pkcs1).map_err(bad_key)?;
        let k = raw.modulus_len();
        let n = fixed_len(parts.n, k).ok_or(Error::KeyTypeInconsistent)?.to_vec();
        let d = fixed_len(parts.d, k).ok_or(Error::KeyTypeInconsistent)?;
        let mut h = Digest::new(Hash::Sha256);
        h.update(&d);
        let ir_key = Zeroizing::new(h.finish());
        Ok(RsaPrivateKey { raw, n, pkcs1, ir_key, signer: OnceLock::new(), oaep: OnceLock::new() })
    }

    /// From an RSAPrivateKey (PKCS#1) DER, as `pkcs1_der` gives it.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self> {
        let k = pkcs1::RsaPrivateKey::from_der(der).map_err(bad_key)?;
        let parts = RsaParts {
            n: k.modulus.as_bytes(),
            e: k.public_exponent.as_bytes(),
            d: k.private_exponent.as_bytes(),
            p: k.prime1.as_bytes(),
            q: k.prime2.as_bytes(),
            dp: k.exponent1.as_bytes(),
            dq: k.exponent2.as_bytes(),
            qinv: k.coefficient.as_bytes(),
        };
        Self::new(&parts)
    }

    /// The key as an RSAPrivateKey (PKCS#1) DER, for keeping it sealed.
    pub fn pkcs1_der(&self) -> Zeroizing<Vec<u8>> {
        self.pkcs1.clone()
    }

    /// Length of the modulus in bytes.
    pub fn modulus_len(&self) -> usize {
        self.raw.modulus_len()
    }

    pub fn bits(&self) -> usize {
        self.raw.bits()
    }

    /// aws-lc-rs's signing key; None for the sizes it does not serve (below 2048 bits,
    /// above 8192), which the raw operation signs.
    fn signer(&self) -> Option<&signature::RsaKeyPair> {
        self.signer.get_or_init(|| signature::RsaKeyPair::from_der(&self.pkcs1).ok()).as_ref()
    }

    /// aws-lc-rs's OAEP key; None for the sizes it does not serve, which aws-lc's OAEP
    /// with any hash decrypts.
    fn oaep(&self) -> Option<&rsa::OaepPrivateDecryptingKey> {
        self.oaep
            .get_or_init(|| {
                let doc = pkcs8::PrivateKeyInfo::new(rsa_encryption(), &self.pkcs1);
                let der = Zeroizing::new(doc.to_der().ok()?);
                let key = rsa::PrivateDecryptingKey::from_pkcs8(&der).ok()?;
                rsa::OaepPrivateDecryptingKey::new(key).ok()
            })
            .as_ref()
    }

    /// The private operation on an encoded message; its failure here is internal (the
    /// encodings built by this module are always in range).
    fn private_op(&self, em: &[u8]) -> Result<Vec<u8>> {
        let out = self.raw.private_raw(em).map_err(|_| Error::general("RSA private operation failed"))?;
        Ok(out.to_vec())
    }

    /// RSASSA-PKCS1-v1_5 of a digest: through aws-lc-rs for SHA-256/384/512 on the key
    /// sizes it serves (2048 to 8192 bits), through the raw operation (same signature, the
    /// scheme is deterministic) for the other hashes and sizes.
    pub fn sign_pkcs1_digest(&self, hash: Hash, digest: &[u8]) -> Result<Vec<u8>> {
        if digest.len() != hash.output_len() {
            return Err(Error::DataLenRange);
        }
        match (safe_signing(hash, false), self.signer()) {
            (Some(enc), Some(signer)) => {
                let mut sig = vec![0u8; self.modulus_len()];
                signer
                    .sign_digest(enc, &import_digest(hash, digest)?, &mut sig)
                    .map_err(|_| Error::general("RSA signing failed"))?;
                Ok(sig)
            }
            _ => self.sign_pkcs1_payload(&digest_info(hash, digest)),
        }
    }

    /// A PKCS#1 v1.5 signature (block type 1) of any payload of at most k - 11 bytes:
    /// 00 01 FF..FF 00 payload through the raw private operation. This is what a
    /// DigestInfo signature is, and what TLS 1.0 signs (MD5 || SHA-1).
    pub fn sign_pkcs1_payload(&self, payload: &[u8]) -> Result<Vec<u8>> {
        let k = self.modulus_len();
        if payload.len() > pkcs1_max_payload(k) {
            return Err(Error::DataLenRange);
        }
        let mut em = vec![0xFFu8; k];
        em[0] = 0;
        em[1] = 1;
        em[k - payload.len() - 1] = 0;
        em[k - payload.len()..].copy_from_slice(payload);
        self.private_op(&em)
    }

    /// RSASSA-PSS of a message hash: through aws-lc-rs when it serves the parameters
    /// (SHA-256/384/512, MGF1 of the same hash, salt as long as the hash), else EMSA-PSS
    /// from aws-lc and the raw private operation. A salt too long for the key is
    /// `MechanismParamInvalid`.
    pub fn sign_pss(&self, hash: Hash, mgf: Hash, salt_len: usize, m_hash: &[u8]) -> Result<Vec<u8>> {
        if m_hash.len() != hash.output_len() {
            return Err(Error::DataLenRange);
        }
        if salt_len > pss_max_salt(self.bits(), hash) {
            return Err(Error::MechanismParamInvalid);
        }
        match (safe_signing(hash, true), self.signer()) {
            (Some(enc), Some(signer)) if mgf == hash && salt_len == hash.output_len() => {
                let mut sig = vec![0u8; self.modulus_len()];
                signer
                    .sign_digest(enc, &import_digest(hash, m_hash)?, &mut sig)
                    .map_err(|_| Error::general("RSA-PSS signing failed"))?;
                Ok(sig)
            }
            _ => {
                let em = self
                    .raw
                    .pss_encode(m_hash, hash, mgf, salt_len)
                    .map_err(|_| Error::general("EMSA-PSS encoding failed"))?;
                self.private_op(&em)
            }
        }
    }

    /// RSAES-PKCS1-v1_5 decryption with implicit rejection (the IETF CFRG draft
    /// "Implicit Rejection for RSA PKCS#1 v1.5 decryption", as OpenSSL 3.2 does it):
    /// a ciphertext whose padding is wrong decrypts to a synthetic message derived from
    /// the private key and the ciphertext, so that no caller can tell good padding from
    /// bad, by result or by timing. Errors only for what the ciphertext shows publicly:
    /// a length other than k (`EncryptedDataLenRange`) or a value not below the
    /// modulus (`EncryptedDataInvalid`).
    pub fn decrypt_pkcs1(&self, ct: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let k = self.modulus_len();
        if ct.len() != k {
            return Err(Error::EncryptedDataLenRange);
        }
        if k < 11 {
            return Err(Error::KeySizeRange);
        }
        // Public comparison of two public values of equal length.
        if ct >= self.n.as_slice() {
            return Err(Error::EncryptedDataInvalid);
        }
        // aws-lc refuses 0, 1 and n - 1 as input to the private operation. They are
        // public properties of the ciphertext, and none decrypts to a valid padding, so
        // they go the way of every bad padding: an all-zero block, rejected below.
        let em = self.raw.private_raw(ct).unwrap_or_else(|_| Zeroizing::new(vec![0u8; k]));
        Ok(implicit_rejection_unpad(&self.ir_key, ct, &em))
    }

    /// RSAES-OAEP decryption: through aws-lc-rs when it serves the hashes, else through
    /// aws-lc's OAEP with any hash and MGF1 hash. Every failure is
    /// `EncryptedDataInvalid` (aws-lc checks the padding in constant time).
    pub fn decrypt_oaep(&self, hash: Hash, mgf: Hash, label: &[u8], ct: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let k = self.modulus_len();
        if ct.len() != k {
            return Err(Error::EncryptedDataLenRange);
        }
        match (safe_oaep(hash, mgf), self.oaep()) {
            (Some(alg), Some(key)) => {
                let mut out = Zeroizing::new(vec![0u8; key.min_output_size()]);
                let len = key.decrypt(alg, ct, &mut out, Some(label)).map_err(|_| Error::EncryptedDataInvalid)?.len();
                out.truncate(len);
                Ok(out)
            }
            _ => self.raw.oaep_decrypt(hash, mgf, label, ct).map_err(|_| Error::EncryptedDataInvalid),
        }
    }
}

/// `value` when it is exactly `len` bytes long, else `len` random bytes; the choice is
/// made with masks, so that the time taken does not tell which (for a value whose length
/// says whether a padding was good, see the CKM_RSA_PKCS unwrap).
pub fn exact_len_or_random(value: &[u8], len: usize) -> Result<Zeroizing<Vec<u8>>> {
    let mut out = random_secret(len)?;
    let fits = (value.len() as u64).ct_eq(&(len as u64));
    for (i, o) in out.iter_mut().enumerate() {
        let v = value.get(i).copied().unwrap_or(0);
        *o = u8::conditional_select(o, &v, fits);
    }
    Ok(out)
}

/// The implicit-rejection KDF's PRF (draft section 7.1): HMAC-SHA256 under `kdk` over
/// a 16-bit big-endian counter, the label and the output length in bits, the blocks
/// concatenated and cut to `out_len` bytes.
fn ir_prf(kdk: &[u8], label: &[u8], out_len: usize) -> Zeroizing<Vec<u8>> {
    let bits = u16::try_from(out_len * 8).unwrap_or(u16::MAX).to_be_bytes();
    let mut out = Zeroizing::new(Vec::with_capacity(out_len + 32));
    let mut i: u16 = 0;
    while out.len() < out_len {
        let mut mac = Hmac::new(Hash::Sha256, kdk);
        mac.update(&i.to_be_bytes());
        mac.update(label);
        mac.update(&bits);
        let block = Zeroizing::new(mac.finish());
        out.extend_from_slice(&block);
        i = i.wrapping_add(1);
    }
    out.truncate(out_len);
    out
}

/// Number of 16-bit length candidates the draft draws for the synthetic message.
const IR_LENGTH_CANDIDATES: usize = 128;

/// EME-PKCS1-v1_5 decoding of the k-byte block `em` with implicit rejection, in
/// constant time with respect to the padding: every byte of `em` and of the synthetic
/// message is read whatever they hold, and the choice between them is made with masks.
/// The length of the result is the only thing that depends on the padding, and it is
/// either the real length or a pseudorandom one, which the caller cannot tell apart.
fn implicit_rejection_unpad(ir_key: &[u8], ct: &[u8], em: &[u8]) -> Zeroizing<Vec<u8>> {
    let k = em.len();
    // KDK = HMAC-SHA256(SHA-256(d), ciphertext), the ciphertext at k bytes (it is).
    let mut mac = Hmac::new(Hash::Sha256, ir_key);
    mac.update(ct);
    let kdk = Zeroizing::new(mac.finish());

    let synthetic = ir_prf(&kdk, b"message", k);
    let lengths = ir_prf(&kdk, b"length", IR_LENGTH_CANDIDATES * 2);
    // The synthetic length: the last candidate, masked to the bit length of the largest
    // message (k - 10 exclusive), that is below that bound; 0 if none is.
    let max_sep_offset = (k - 10) as u32;
    let mut mask = max_sep_offset;
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    let mut synthetic_len = 0u32;
    for pair in lengths.chunks_exact(2) {
        let candidate = u32::from(u16::from_be_bytes([pair[0], pair[1]])) & mask;
        synthetic_len = u32::conditional_select(&synthetic_len, &candidate, candidate.ct_lt(&max_sep_offset));
    }
    let synthetic_index = k as u32 - synthetic_len;

    // 00 || 02 || PS (at least 8 non-zero bytes) || 00 || M.
    let mut good: Choice = em[0].ct_eq(&0) & em[1].ct_eq(&2);
    let mut found = Choice::from(0);
    let mut zero_index = 0u32;
    for (i, b) in em.iter().enumerate().skip(2) {
        let is_zero = b.ct_eq(&0);
        zero_index = u32::conditional_select(&zero_index, &(i as u32), !found & is_zero);
        found |= is_zero;
    }
    // The separator at index 10 or later (no separator leaves index 0, also refused).
    good &= zero_index.ct_gt(&9);
    let msg_index = u32::conditional_select(&synthetic_index, &(zero_index + 1), good) as usize;

    let mut out = Zeroizing::new(Vec::with_capacity(k - msg_index));
    for i in msg_index..k {
        out.push(u8::conditional_select(&synthetic[i], &em[i], good));
    }
    out
}

/// An RSA public key.
pub struct RsaPublicKey {
    raw: RsaKey,
    /// SubjectPublicKeyInfo DER, for the lazily parsed form.
    spki: Vec<u8>,
    enc: OnceLock<Option<rsa::PublicEncryptingKey>>,
}

impl RsaPublicKey {
    pub fn new(n: &[u8], e: &[u8]) -> Result<Self> {
        let pkcs1 = pkcs1::RsaPublicKey { modulus: uint(n)?, public_exponent: uint(e)? }.to_der().map_err(bad_key)?;
        let raw = RsaKey::public_from_der(&pkcs1).map_err(bad_key)?;
        let spki = spki::SubjectPublicKeyInfoRef {
            algorithm: rsa_encryption(),
            subject_public_key: BitStringRef::from_bytes(&pkcs1).map_err(bad_key)?,
        }
        .to_der()
        .map_err(bad_key)?;
        Ok(RsaPublicKey { raw, spki, enc: OnceLock::new() })
    }

    /// Length of the modulus in bytes.
    pub fn modulus_len(&self) -> usize {
        self.raw.modulus_len()
    }

    pub fn bits(&self) -> usize {
        self.raw.bits()
    }

    /// The key as a SubjectPublicKeyInfo DER.
    pub fn spki(&self) -> &[u8] {
        &self.spki
    }

    /// aws-lc-rs's encryption key; None for the sizes it does not serve.
    fn enc(&self) -> Option<&rsa::PublicEncryptingKey> {
        self.enc.get_or_init(|| rsa::PublicEncryptingKey::from_der(&self.spki).ok()).as_ref()
    }

    /// The public operation on a signature: `SignatureLenRange` for a wrong length,
    /// `SignatureInvalid` for a value not below the modulus.
    fn open_signature(&self, sig: &[u8]) -> Result<Vec<u8>> {
        if sig.len() != self.modulus_len() {
            return Err(Error::SignatureLenRange);
        }
        self.raw.public_raw(sig).map_err(|_| Error::SignatureInvalid)
    }

    /// Checks a PKCS#1 v1.5 signature (block type 1) of `payload` (a DigestInfo, or any
    /// data of at most k - 11 bytes) by encoding the expected block and comparing.
    pub fn verify_pkcs1_payload(&self, payload: &[u8], sig: &[u8]) -> Result<()> {
        let k = self.modulus_len();
        if payload.len() > pkcs1_max_payload(k) {
            return Err(Error::DataLenRange);
        }
        let em = self.open_signature(sig)?;
        let mut expected = vec![0xFFu8; k];
        expected[0] = 0;
        expected[1] = 1;
        expected[k - payload.len() - 1] = 0;
        expected[k - payload.len()..].copy_from_slice(payload);
        if bool::from(em.ct_eq(&expected)) {
            Ok(())
        } else {
            Err(Error::SignatureInvalid)
        }
    }

    /// Checks an RSASSA-PKCS1-v1_5 signature of a digest.
    pub fn verify_pkcs1_digest(&self, hash: Hash, digest: &[u8], sig: &[u8]) -> Result<()> {
        if digest.len() != hash.output_len() {
            return Err(Error::DataLenRange);
        }
        self.verify_pkcs1_payload(&digest_info(hash, digest), sig)
    }

    /// Checks an RSASSA-PSS signature of a message hash with exactly `salt_len` bytes of
    /// salt (aws-lc's EMSA-PSS check after the raw public operation).
    pub fn verify_pss(&self, hash: Hash, mgf: Hash, salt_len: usize, m_hash: &[u8], sig: &[u8]) -> Result<()> {
        if m_hash.len() != hash.output_len() {
            return Err(Error::DataLenRange);
        }
        let em = self.open_signature(sig)?;
        if self.raw.pss_check(m_hash, hash, mgf, salt_len, &em) {
            Ok(())
        } else {
            Err(Error::SignatureInvalid)
        }
    }

    /// RSAES-PKCS1-v1_5 encryption; at most k - 11 bytes. Through aws-lc-rs on the
    /// sizes it serves, else EME-PKCS1-v1_5 (RFC 8017 7.2.1: 00 02, at least eight random
    /// non-zero bytes, 00, the message) and the raw public operation.
    pub fn encrypt_pkcs1(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let k = self.modulus_len();
        if msg.len() > pkcs1_max_payload(k) {
            return Err(Error::DataLenRange);
        }
        if let Some(enc) = self.enc() {
            let key = rsa::Pkcs1PublicEncryptingKey::new(enc.clone()).map_err(bad_key)?;
            let mut out = vec![0u8; key.ciphertext_size()];
            let len = key.encrypt(msg, &mut out).map_err(|_| Error::general("RSA encryption failed"))?.len();
            out.truncate(len);
            return Ok(out);
        }
        let mut em = Zeroizing::new(vec![0u8; k]);
        em[1] = 2;
        let ps_end = k - msg.len() - 1;
        for b in em[2..ps_end].iter_mut() {
            let mut r = [0u8; 1];
            while r[0] == 0 {
                random(&mut r)?;
            }
            *b = r[0];
        }
        em[ps_end + 1..].copy_from_slice(msg);
        self.raw.public_raw(&em).map_err(|_| Error::general("RSA encryption failed"))
    }

    /// RSAES-OAEP encryption: through aws-lc-rs when it serves the hashes, else through
    /// aws-lc's OAEP with any hash and MGF1 hash.
    pub fn encrypt_oaep(&self, hash: Hash, mgf: Hash, label: &[u8], msg: &[u8]) -> Result<Vec<u8>> {
        if msg.len() > oaep_max_message(self.modulus_len(), hash) || self.modulus_len() < 2 * hash.output_len() + 2 {
            return Err(Error::DataLenRange);
        }
        fn failed<E>(_: E) -> Error {
            Error::general("RSA-OAEP encryption failed")
        }
        match (safe_oaep(hash, mgf), self.enc()) {
            (Some(alg), Some(enc)) => {
                let key = rsa::OaepPublicEncryptingKey::new(enc.clone()).map_err(bad_key)?;
                let mut out = vec![0u8; key.ciphertext_size()];
                let len = key.encrypt(alg, msg, &mut out, Some(label)).map_err(failed)?.len();
                out.truncate(len);
                Ok(out)
            }
            _ => self.raw.oaep_encrypt(hash, mgf, label, msg).map_err(failed),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Ed25519

/// Lengths of an Ed25519 seed (the private key), public key and signature.
pub const ED25519_KEY_LEN: usize = 32;
pub const ED25519_SIG_LEN: usize = 64;

/// The Ed25519 variants of RFC 8032 that CKM_EDDSA names, with their context (1 to 255
/// bytes for Ctx, 0 to 255 for Ph). Ph signs the message's SHA-512.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ed25519Variant {
    Pure,
    Ctx(Vec<u8>),
    Ph(Vec<u8>),
}

/// A new Ed25519 key: (seed, public key).
pub fn ed25519_generate() -> Result<(Zeroizing<Vec<u8>>, Vec<u8>)> {
    let failed = |_| Error::general("Ed25519 key generation failed");
    let pair = signature::Ed25519KeyPair::generate().map_err(failed)?;
    let seed = pair.seed().and_then(|s| s.as_be_bytes()).map_err(failed)?;
    Ok((Zeroizing::new(seed.as_ref().to_vec()), pair.public_key().as_ref().to_vec()))
}

/// The SHA-512 digest Ed25519ph signs; a wrong length is `DataLenRange`.
fn ph_digest(input: &[u8]) -> Result<&[u8; 64]> {
    input.try_into().map_err(|_| Error::DataLenRange)
}

/// An Ed25519 private key.
pub struct Ed25519SigningKey {
    pair: signature::Ed25519KeyPair,
    /// seed || public key, as aws-lc's Ed25519ctx and Ed25519ph functions take it.
    expanded: Zeroizing<crate::crypto_ffi::Ed25519Expanded>,
}

impl Ed25519SigningKey {
    /// From the seed and, when known, the public key, which must belong to it.
    pub fn new(seed: &[u8], public: Option<&[u8]>) -> Result<Self> {
        if seed.len() != ED25519_KEY_LEN {
            return Err(Error::KeyTypeInconsistent);
        }
        let pair = match public {
            Some(p) => signature::Ed25519KeyPair::from_seed_and_public_key(seed, p),
            None => signature::Ed25519KeyPair::from_seed_unchecked(seed),
        }
        .map_err(bad_key)?;
        let mut expanded = Zeroizing::new([0u8; 64]);
        expanded[..32].copy_from_slice(seed);
        expanded[32..].copy_from_slice(pair.public_key().as_ref());
        Ok(Ed25519SigningKey { pair, expanded })
    }

    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// The signature of `input`: the message, or for Ph its SHA-512. Pure Ed25519 goes
    /// through aws-lc-rs, the variants with a context through aws-lc.
    pub fn sign(&self, variant: &Ed25519Variant, input: &[u8]) -> Result<Vec<u8>> {
        fn failed<E>(_: E) -> Error {
            Error::general("Ed25519 signing failed")
        }
        Ok(match variant {
            Ed25519Variant::Pure => self.pair.try_sign(input).map_err(failed)?.as_ref().to_vec(),
            Ed25519Variant::Ctx(c) => {
                crate::crypto_ffi::ed25519ctx_sign(&self.expanded, input, c).map_err(failed)?.to_vec()
            }
            Ed25519Variant::Ph(c) => {
                crate::crypto_ffi::ed25519ph_sign_digest(&self.expanded, ph_digest(input)?, c).map_err(failed)?.to_vec()
            }
        })
    }
}

/// An Ed25519 public key.
pub struct Ed25519VerifyingKey {
    public: [u8; ED25519_KEY_LEN],
    parsed: signature::ParsedPublicKey,
}

impl Ed25519VerifyingKey {
    /// From the 32-byte public key; one that is no point of the curve is refused.
    pub fn new(public: &[u8]) -> Result<Self> {
        let bytes: [u8; ED25519_KEY_LEN] = public.try_into().map_err(|_| Error::KeyTypeInconsistent)?;
        let parsed = signature::ParsedPublicKey::new(&signature::ED25519, public).map_err(bad_key)?;
        Ok(Ed25519VerifyingKey { public: bytes, parsed })
    }

    /// Checks `sig` over `input` (the message, or for Ph its SHA-512): a signature of the
    /// wrong length is `SignatureLenRange`, a wrong one `SignatureInvalid`.
    pub fn verify(&self, variant: &Ed25519Variant, input: &[u8], sig: &[u8]) -> Result<()> {
        let sig: &[u8; ED25519_SIG_LEN] = sig.try_into().map_err(|_| Error::SignatureLenRange)?;
        let ok = match variant {
            Ed25519Variant::Pure => self.parsed.verify_sig(input, sig).is_ok(),
            Ed25519Variant::Ctx(c) => crate::crypto_ffi::ed25519ctx_verify(&self.public, input, sig, c),
            Ed25519Variant::Ph(c) => {
                crate::crypto_ffi::ed25519ph_verify_digest(&self.public, ph_digest(input)?, sig, c)
            }
        };
        if ok {
            Ok(())
        } else {
            Err(Error::SignatureInvalid)
        }
    }
}

// ---------------------------------------------------------------------------------------
// Key pairs handed out whole (GenerateDataKeyPair)

/// The kinds of key pair that leave the token whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PairSpec {
    Rsa(usize),
    P256,
    P384,
    P521,
    Secp256k1,
}

/// A new key pair as DER: the private key as PKCS#8 (v1, zeroised on drop) and the
/// public key as SubjectPublicKeyInfo.
pub fn generate_exportable_pair(spec: PairSpec) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>)> {
    let failed = |_| Error::general("key pair generation failed");
    if let PairSpec::Rsa(bits) = spec {
        let size = match bits {
            2048 => rsa::KeySize::Rsa2048,
            3072 => rsa::KeySize::Rsa3072,
            4096 => rsa::KeySize::Rsa4096,
            _ => return Err(Error::KeySizeRange),
        };
        let pair = rsa::KeyPair::generate(size).map_err(failed)?;
        let private = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).map_err(failed)?;
        let public = AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(pair.public_key()).map_err(failed)?;
        return Ok((Zeroizing::new(private.as_ref().to_vec()), public.as_ref().to_vec()));
    }
    let alg = match spec {
        PairSpec::P256 => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        PairSpec::P384 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
        PairSpec::P521 => &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
        _ => &signature::ECDSA_P256K1_SHA256_ASN1_SIGNING,
    };
    let pair = signature::EcdsaKeyPair::generate(alg).map_err(failed)?;
    let private = pair.to_pkcs8v1().map_err(failed)?;
    let public = AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(pair.public_key()).map_err(failed)?;
    Ok((Zeroizing::new(private.as_ref().to_vec()), public.as_ref().to_vec()))
}

#[cfg(test)]
mod tests {
    //! Known-answer tests typed in from the standards: NIST SP 800-38A (ECB, CBC),
    //! the GCM specification's test cases, RFC 3394, NIST SP 800-38B (CMAC),
    //! RFC 2202 / RFC 4231 (HMAC) and FIPS 180 examples (digests).
    use super::*;
    use test_keys::h;

    #[test]
    fn exportable_pairs_are_pkcs8_and_spki() {
        for spec in [PairSpec::Rsa(2048), PairSpec::P256, PairSpec::P384, PairSpec::P521, PairSpec::Secp256k1] {
            let (private, public) = generate_exportable_pair(spec).unwrap();
            let info = pkcs8::PrivateKeyInfo::from_der(&private).unwrap();
            let spki = spki::SubjectPublicKeyInfoRef::from_der(&public).unwrap();
            assert_eq!(info.algorithm.oid, spki.algorithm.oid, "{spec:?}");
        }
        assert_eq!(generate_exportable_pair(PairSpec::Rsa(1024)).unwrap_err(), Error::KeySizeRange);
    }

    const K128: &str = "2b7e151628aed2a6abf7158809cf4f3c";
    const PT: &str = "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51 \
                      30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710";

    #[test]
    fn random_fills_and_differs() {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        random(&mut a).unwrap();
        random(&mut b).unwrap();
        assert_ne!(a, [0u8; 32]);
        assert_ne!(a, b);
        assert_eq!(random_secret(7).unwrap().len(), 7);
    }

    #[test]
    fn ecb_sp800_38a() {
        let ct = h("3ad77bb40d7a3660a89ecaf32466ef97 f5d3d58503b9699de785895a96fdbaaf \
                    43b1cd7f598ece23881b00e3ed030688 7b0c785e27e8ad3f8223207104725dd4");
        let mut buf = h(PT);
        AesEcb::new(&h(K128), Direction::Encrypt).unwrap().apply(&mut buf).unwrap();
        assert_eq!(buf, ct);
        AesEcb::new(&h(K128), Direction::Decrypt).unwrap().apply(&mut buf).unwrap();
        assert_eq!(buf, h(PT));

        let k256 = h("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
        let mut block = h("6bc1bee22e409f96e93d7e117393172a");
        AesEcb::new(&k256, Direction::Encrypt).unwrap().apply(&mut block).unwrap();
        assert_eq!(block, h("f3eed1bdb5d2a03c064b5a7e3db181f8"));
    }

    #[test]
    fn cbc_sp800_38a_in_one_and_several_calls() {
        let iv0: [u8; 16] = h("000102030405060708090a0b0c0d0e0f").try_into().unwrap();
        let ct = h("7649abac8119b246cee98e9b12e9197d 5086cb9b507219ee95db113a917678b2 \
                    73bed6b8e3c1743b7116e69e22229516 3ff1caa1681fac09120eca307586e1a7");
        let enc = AesCbc::new(&h(K128), Direction::Encrypt).unwrap();
        let mut iv = iv0;
        let mut buf = h(PT);
        enc.apply(&mut iv, &mut buf).unwrap();
        assert_eq!(buf, ct);
        assert_eq!(iv[..], ct[48..]);

        // Block by block, carrying the chaining value, in both directions.
        let dec = AesCbc::new(&h(K128), Direction::Decrypt).unwrap();
        let (mut ivd, mut ive) = (iv0, iv0);
        let mut plain = h(PT);
        for (c, p) in buf.chunks_mut(16).zip(plain.chunks_mut(16)) {
            dec.apply(&mut ivd, c).unwrap();
            enc.apply(&mut ive, p).unwrap();
        }
        assert_eq!(buf, h(PT));
        assert_eq!(plain, ct);
        // Empty input leaves the chaining value alone; partial blocks are refused.
        enc.apply(&mut ive, &mut []).unwrap();
        assert_eq!(ive[..], ct[48..]);
        assert!(enc.apply(&mut ive, &mut [0u8; 15]).is_err());
    }

    #[test]
    fn bad_key_lengths_are_key_size_range() {
        for len in [0, 15, 20, 33] {
            let k = vec![1u8; len];
            assert_eq!(AesEcb::new(&k, Direction::Encrypt).err(), Some(Error::KeySizeRange));
            assert_eq!(AesCbc::new(&k, Direction::Decrypt).err(), Some(Error::KeySizeRange));
            assert_eq!(Cmac::new(&k).err(), Some(Error::KeySizeRange));
            assert_eq!(gcm_seal(&k, &[0; 12], b"", b"").err(), Some(Error::KeySizeRange));
            assert_eq!(kw_wrap(&k, &[0; 16]).err(), Some(Error::KeySizeRange));
        }
        // No AES-192 key-encryption key in aws-lc.
        assert_eq!(kwp_wrap(&[1; 24], &[0; 16]).err(), Some(Error::KeySizeRange));
    }

    #[test]
    fn gcm_test_cases() {
        // Test cases 1 and 2: zero key and IV.
        let k = [0u8; 16];
        assert_eq!(gcm_seal(&k, &[0; 12], b"", b"").unwrap(), h("58e2fccefa7e3061367f1d57a4e7455a"));
        assert_eq!(
            gcm_seal(&k, &[0; 12], b"", &[0; 16]).unwrap(),
            h("0388dace60b6a392f328c2b971b2fe78 ab6e47d42cec13bdf53a67b21257bddf")
        );
        // Test case 4: with additional data and a partial last block.
        let k = h("feffe9928665731c6d6a8f9467308308");
        let iv: [u8; 12] = h("cafebabefacedbaddecaf888").try_into().unwrap();
        let p = h("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
                   1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
        let a = h("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let c = h("42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e\
                   21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091\
                   5bc94fbc3221a5db94fae95ae7121a47");
        assert_eq!(gcm_seal(&k, &iv, &a, &p).unwrap(), c);
        assert_eq!(*gcm_open(&k, &iv, &a, &c).unwrap(), p);

        let mut bad = c.clone();
        bad[0] ^= 1;
        assert_eq!(gcm_open(&k, &iv, &a, &bad).err(), Some(Error::EncryptedDataInvalid));
        assert_eq!(gcm_open(&k, &iv, b"", &c).err(), Some(Error::EncryptedDataInvalid));
        assert_eq!(gcm_open(&k, &iv, &a, &c[..15]).err(), Some(Error::EncryptedDataLenRange));
    }

    #[test]
    fn kw_rfc3394() {
        let kek128 = h("000102030405060708090A0B0C0D0E0F");
        let kek256 = h("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F");
        let cases = [
            // 4.1: 128 bits of key data, 128-bit KEK.
            (&kek128, "00112233445566778899AABBCCDDEEFF", "1FA68B0A8112B447 AEF34BD8FB5A7B82 9D3E862371D2CFE5"),
            // 4.3: 128 bits of key data, 256-bit KEK.
            (&kek256, "00112233445566778899AABBCCDDEEFF", "64E8C3F9CE0F5BA2 63E9777905818A2A 93C8191E7D6E8AE7"),
            // 4.5: 192 bits of key data, 256-bit KEK.
            (
                &kek256,
                "00112233445566778899AABBCCDDEEFF0001020304050607",
                "A8F9BC1612C68B3F F6E6F4FBE30E71E4 769C8B80A32CB895 8CD5D17D6B254DA1",
            ),
            // 4.6: 256 bits of key data, 256-bit KEK.
            (
                &kek256,
                "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F",
                "28C9F404C4B810F4 CBCCB35CFB87F826 3F5786E2D80ED326 CBC7F0E71A99F43B FB988B9B7A02DD21",
            ),
        ];
        for (kek, key, wrapped) in cases {
            assert_eq!(kw_wrap(kek, &h(key)).unwrap(), h(wrapped));
            assert_eq!(*kw_unwrap(kek, &h(wrapped)).unwrap(), h(key));
            let mut bad = h(wrapped);
            bad[5] ^= 0x40;
            assert_eq!(kw_unwrap(kek, &bad).err(), Some(Error::EncryptedDataInvalid));
        }
    }

    #[test]
    fn kwp_round_trip_and_tamper() {
        let kek = [7u8; 32];
        for len in [1, 7, 8, 9, 20, 64] {
            let key = vec![0x5a; len];
            let w = kwp_wrap(&kek, &key).unwrap();
            assert_eq!(w.len(), len.div_ceil(8) * 8 + 8);
            assert_eq!(*kwp_unwrap(&kek, &w).unwrap(), key);
            let mut bad = w.clone();
            bad[w.len() - 1] ^= 1;
            assert_eq!(kwp_unwrap(&kek, &bad).err(), Some(Error::EncryptedDataInvalid));
        }
    }

    #[test]
    fn cmac_sp800_38b() {
        let msg = h(PT);
        let cases = [
            (0, "bb1d6929e95937287fa37d129b756746"),
            (16, "070a16b46b4d4144f79bdd9dd04a287c"),
            (40, "dfa66747de9ae63030ca32611497c827"),
            (64, "51f0bebf7e3b9d92fc49741779363cfe"),
        ];
        for (len, tag) in cases {
            let mut mac = Cmac::new(&h(K128)).unwrap();
            // In two parts, split off-block, to exercise the running state.
            let (a, b) = msg[..len].split_at(len / 3);
            mac.update(a).unwrap();
            let copy = mac.clone();
            mac.update(b).unwrap();
            assert_eq!(mac.finish().unwrap().to_vec(), h(tag));
            // A clone carries on independently.
            let mut copy = copy;
            copy.update(b).unwrap();
            assert_eq!(copy.finish().unwrap().to_vec(), h(tag));
        }
    }

    #[test]
    fn hmac_rfc2202_rfc4231() {
        let key = [0x0b; 20];
        let cases = [
            (Hash::Sha1, "b617318655057264e28bc0b6fb378c8ef146be00"),
            (Hash::Sha224, "896fb1128abbdf196832107cd49df33f47b4b1169912ba4f53684b22"),
            (Hash::Sha256, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            (
                Hash::Sha384,
                "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c\
                 faea9ea9076ede7f4af152e8b2fa9cb6",
            ),
            (
                Hash::Sha512,
                "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde\
                 daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
            ),
        ];
        for (hash, mac) in cases {
            let mut m = Hmac::new(hash, &key);
            m.update(b"Hi ");
            m.update(b"There");
            assert_eq!(m.finish(), h(mac));
            assert_eq!(hash.output_len(), h(mac).len());
        }
        let mut m = Hmac::new(Hash::Sha1, b"Jefe");
        m.update(b"what do ya want for nothing?");
        assert_eq!(m.finish(), h("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"));
    }

    #[test]
    fn digests_fips180() {
        let cases = [
            (Hash::Sha1, "", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
            (Hash::Sha1, "abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
            (
                Hash::Sha1,
                "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "84983e441c3bd26ebaae4aa1f95129e5e54670f1",
            ),
            (Hash::Sha224, "abc", "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"),
            (Hash::Sha256, "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (
                Hash::Sha384,
                "abc",
                "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed\
                 8086072ba1e7cc2358baeca134c825a7",
            ),
            (
                Hash::Sha512,
                "abc",
                "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
                 2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            ),
        ];
        for (hash, msg, digest) in cases {
            let mut d = Digest::new(hash);
            d.update(msg.as_bytes());
            let fork = d.clone();
            assert_eq!(d.finish(), h(digest));
            assert_eq!(fork.finish(), h(digest));
        }
    }
}

/// Fixed RSA keys for the tests of this module, `crypto_ffi` and the mechanism units,
/// with an independent implementation of each (the `rsa` crate) as the oracle.
#[cfg(test)]
pub(crate) mod test_keys {
    use super::{Hash, RsaParts};
    use sha2::Digest as _;

    /// The digest of `data` by the RustCrypto crates (the oracle's own hashing).
    pub fn oracle_digest(h: Hash, data: &[u8]) -> Vec<u8> {
        match h {
            Hash::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Hash::Sha224 => sha2::Sha224::digest(data).to_vec(),
            Hash::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Hash::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Hash::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    /// The `rsa` crate's PSS scheme for `h` with MGF1 of the same hash.
    pub fn oracle_pss(h: Hash, salt: usize) -> ::rsa::Pss {
        match h {
            Hash::Sha1 => ::rsa::Pss::new_with_salt::<sha1::Sha1>(salt),
            Hash::Sha224 => ::rsa::Pss::new_with_salt::<sha2::Sha224>(salt),
            Hash::Sha256 => ::rsa::Pss::new_with_salt::<sha2::Sha256>(salt),
            Hash::Sha384 => ::rsa::Pss::new_with_salt::<sha2::Sha384>(salt),
            Hash::Sha512 => ::rsa::Pss::new_with_salt::<sha2::Sha512>(salt),
        }
    }

    /// The `rsa` crate's OAEP scheme with hash `h`, MGF1 over `mgf` and `label` (none when
    /// empty).
    pub fn oracle_oaep(h: Hash, mgf: Hash, label: &str) -> ::rsa::Oaep {
        fn boxed(h: Hash) -> Box<dyn ::rsa::sha2::digest::DynDigest + Send + Sync> {
            match h {
                Hash::Sha1 => Box::new(sha1::Sha1::default()),
                Hash::Sha224 => Box::new(sha2::Sha224::default()),
                Hash::Sha256 => Box::new(sha2::Sha256::default()),
                Hash::Sha384 => Box::new(sha2::Sha384::default()),
                Hash::Sha512 => Box::new(sha2::Sha512::default()),
            }
        }
        ::rsa::Oaep { digest: boxed(h), mgf_digest: boxed(mgf), label: (!label.is_empty()).then(|| label.to_string()) }
    }

    /// An RSA key as hex strings of its components.
    pub struct HexRsa {
        pub n: &'static str,
        pub d: &'static str,
        pub p: &'static str,
        pub q: &'static str,
        pub dp: &'static str,
        pub dq: &'static str,
        pub qinv: &'static str,
    }

    /// Bytes of a hex test vector (spaces allowed between groups).
    pub fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).expect("test vector")
    }

    /// `n` random bytes.
    pub fn rand(n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        super::random(&mut v).unwrap();
        v
    }

    impl HexRsa {
        pub fn parts(&self) -> RsaParts<Vec<u8>> {
            RsaParts {
                n: h(self.n),
                e: vec![1, 0, 1],
                d: h(self.d),
                p: h(self.p),
                q: h(self.q),
                dp: h(self.dp),
                dq: h(self.dq),
                qinv: h(self.qinv),
            }
        }

        /// The same key in the `rsa` crate.
        pub fn oracle(&self) -> ::rsa::RsaPrivateKey {
            let big = |s: &str| ::rsa::BigUint::from_bytes_be(&h(s));
            ::rsa::RsaPrivateKey::from_components(
                big(self.n),
                big("010001"),
                big(self.d),
                vec![big(self.p), big(self.q)],
            )
            .expect("oracle key")
        }
    }

    /// The 2048-bit key of Appendix B.1 of the IETF CFRG draft "Implicit Rejection for
    /// RSA PKCS#1 v1.5 decryption" (its test vectors are in `asym_tests`).
    pub const DRAFT_2048: HexRsa = HexRsa {
        n: "c8cc839714098da56caa23640f93dc8997c16372968fc1b0c6df5113c1c94e8b21e48ad2297e65419011b4e6d8f5e73b1b78b257400321d1ef6b602d4ec8ce8d141c94905eb4ad306639a49206534b6e7f2607423e97dffd133c88d721399defbc7e96ccdcbd7f3aae1fe892712bfb4929817d511666440a1facb7a208f5ea165910add8a3f2d497202360ccb632024f0d07169c1918f316f794b143aef54ec87522a4c02978f9689980bffbf649c307e81819bff88409638d48bd94be152b59ff649fa0bd629d0ffa1813c3abf4b56bd3c2ea5465dffa14589292a9d8a24ad26be7ee0510741b6382d43c83d5bfa40a46613d062be445517dbcaf0cb4e1a769",
        d: "1455010e0f2d587663a666a6ff1ccdbbf0edd8100646d02a023922908992c4ad39e5565929726ef6508c3a71158ef0b6ff751d39d07580bb2d2f063210442d0603ff50dbbd7b35fe2c9bb19a47a1af85a4c24901e02ca8b58b7919b20edf32aacfbf51adb4bc4b61b9b7e968caa4d570f70ef18d8063228893e47d439efca793259bcf2cd108a3d8688cdf078e7ac799969f2339d2c1f522b969684629a933baaec2681625eab84f4e56f4447e9d88fb9a199cf71023e0e257b14441b33c84d3bc67ca8031d2612618103a7a0a40844262f75d8890cd616e51f9035488fd6e099de8ff6d65a4ff118254807c9f58d2fbba8ba151dc8c68be349c977a204e04c1",
        p: "f8f5ad6ba828931bea459b8a3f6dc041d23482409c2571e963f31f748602a256371b3883ed459ecf970526459edd16e05522f5a45d94751b2ec2daf272c7f8816a52c00d18080171634da899d7973222f51b937630548696a9f7d8c24a59497c1efcd455cfb97ee86d2b6d34972b332fda303f04999b4eb6b5cc0bb33e7761dd",
        q: "ce7a2e3b49a90b96330a12dc682bdfbdfbae8dd6dc03b6147aefbd575743f0f6da4d86235061b71afd9cad2d34025e56ac86b0f7743eb35e1acbca237895424465b706ed22175e5718c8c70b6703ea8f6b510f945be48e5a36bb3c3c91732b589dfc05d72d80903194452bda21348647ec72943f11a846e62faebe8eb536b0fd",
        dp: "76fe15f18ae239cdf1df6b445ca4bc6bb968d788c21933a4f5dcd280033d6712062cc08a6df204c1fbd0be46307443e6dd4a6456375429d4e038ca256faf1c9bde91c6b17b76f81995f91c48cbbebc7bf0e3494c08359e4e8cd6a587d7b96d6221fd7e0fb5c5575f082ee57769798071b2bbb4a32238151b47314bb654790311",
        dq: "998848b055499a1009cbc7d294b36b1ffdf2020e6e7364053e94de1a000dc9340587f7e27276f68cdf608d753b63377b03b6f4084d2c027c4b38960a6233ba9ed9738b76f10ea75be456078bf701f67cc6b3f3fdc186e64336c76b372e80910ec80b0adcc23d02fb9ae10486a28248075b4ea7e56ddfcf3882e451561471a291",
        qinv: "643bf746429f7d83667a0653021347efbfc05e6351f821a9debb60e0eccde5005ad9e9ec31e558f7e92c29328e74569d7cef7c74cabc2b355ed401a1a0914b4e3cbb06484e58196051169ed14caa2efa6ea044e054d26144cc1629c55010558a04e133f44b7c244dac25bf913c57b890ee49f548259cd63404fef6859dcf975a",
    };

    /// Wycheproof's 2048-bit RSA test key (the key of its rsa_oaep_2048_* and
    /// rsa_pss_2048_* vector files).
    pub const WYCHEPROOF_2048: HexRsa = HexRsa {
        n: "a2b451a07d0aa5f96e455671513550514a8a5b462ebef717094fa1fee82224e637f9746d3f7cafd31878d80325b6ef5a1700f65903b469429e89d6eac8845097b5ab393189db92512ed8a7711a1253facd20f79c15e8247f3d3e42e46e48c98e254a2fe9765313a03eff8f17e1a029397a1fa26a8dce26f490ed81299615d9814c22da610428e09c7d9658594266f5c021d0fceca08d945a12be82de4d1ece6b4c03145b5d3495d4ed5411eb878daf05fd7afc3e09ada0f1126422f590975a1969816f48698bcbba1b4d9cae79d460d8f9f85e7975005d9bc22c4e5ac0f7c1a45d12569a62807d3b9a02e5a530e773066f453d1f5b4c2e9cf7820283f742b9d5",
        d: "7627eef3567b2a27268e52053ecd31c3a7172ccb9ddcee819b306a5b3c66b7573ca4fa88efc6f3c4a00bfa0ae7139f64543a4dac3d05823f6ff477cfcec84fe2ac7a68b17204b390232e110310c4e899c4e7c10967db4acde042dbbf19dbe00b4b4741de1020aaaaffb5054c797c9f136f7d93ac3fc8caff6654242d7821ebee517bf537f44366a0fdd45ae05b9909c2e6cc1ed9281eff4399f76c96b96233ec29ae0bbf0d752b234fc197389f51050aa1acd01c074c3ac8fbdb9ea8b651a95995e8db4ad5c43b6c8673e5a126e7ee94b8dff4c5afc01259bc8da76950bae6f8bae715f50985b0d6f66d04c6fef3b700720eecdcdf171bb7b1ecbe7289c467c1",
        p: "dc431050f782e894fb5248247d98cb7d58b8d1e24f3b55d041c56e4de086b0d5bb028bda42eeb5d234d5681e5809d415e6a289ad4cfbf78f978f6c35814f50eebff1c5b80a69f788e81e6bab5ddaa78369d659d143ec6f17e79813a575cfad9c569156b90113e2e9110ad9e7b48a1c9348a6e653321191290ea36cfb3a5b18f1",
        q: "bd1a81e7977f9898122273ae3222b598ea5fb19eb4eabc38308a5e32196603b2e500ffb79f5b886816611debc472fac45544070beb057c941378a6868af3b7a03d3f9880ec47d5e089b94fbde542aba9ae8d72c57088d7abf5b131f39098f7bc160f90536abc9492fd4e06f3ed7299d4b97bb03677207d95669f140cfbc20f25",
        dp: "a94b528b28f291599121d91952ffd1c7f21d7c1479d99d478885fb161870ee1218bf08472612dbe5497e8d9c650688e09c786961ae3e2c354dc48ae34514759c4c23c4588488961dc06b414e61c0e1e7fbbd2923d31532fe289f96da220711e58c14019808e00414276933bb07e4efb9b4a9b37656917205209f33f09515d7c1",
        dq: "3af0e72a933aef09ff2503df78bafed531c02ff1a2bc437c540cdcbd4ad35435cf511763596543480629b114ca7f780ff7efa32ea0cb6e000d6d9ea1f2ef71fd9cf9948422a165557e37e755edfe70d90b920502eb478bc98a63f788ce3a0f856d6ede7251a383bfa8fa480a81a925af7b3cc538c4bab8c9f7597ffb68011d8d",
        qinv: "2640fbfbcfefb163ee7a87b6483a66ee41f956d90fa8a7939bfc042ee0924b1b7993d0445f758d51933e85179c0320b0c968b48a91c38b5be923e1097c0c562f88d42294b6a2759bafa5428a74f1270874e45f6fcc60f21602de5eccd143cf31241f5921b5ad3983fb54ef17be3b285367e50c999c67247b552fe4bfce945f7b",
    };
}

#[cfg(test)]
mod asym_tests {
    //! The asymmetric primitives that are not covered by the mechanism units' tests:
    //! implicit rejection against the draft's own test vectors and against a plain
    //! reference model of its decoding, DigestInfo prefixes against the `rsa` crate,
    //! ECDSA's hash-to-integer rule, and the RSA size limits.
    use super::test_keys::{DRAFT_2048, WYCHEPROOF_2048};
    use super::*;
    use test_keys::h;

    fn key(k: &test_keys::HexRsa) -> RsaPrivateKey {
        let parts = k.parts();
        RsaPrivateKey::new(&RsaParts {
            n: parts.n.as_slice(),
            e: &parts.e,
            d: &parts.d,
            p: &parts.p,
            q: &parts.q,
            dp: &parts.dp,
            dq: &parts.dq,
            qinv: &parts.qinv,
        })
        .expect("test key")
    }

    /// Appendix B.1 of the draft: (ciphertext, expected result), valid and invalid
    /// paddings alike.
    const DRAFT_B1: &[(&str, &str, &str)] = &[
        (
            "valid",
            "8bfe264e85d3bdeaa6b8851b8e3b956ee3d226fd3f69063a86880173a273d9f283b2eebdd1ed35f7e02d91c571981b6737d5320bd8396b0f3ad5b019daec1b0aab3cbbc026395f4fd14f13673f2dfc81f9b660ec26ac381e6db3299b4e460b43fab9955df2b3cfaa20e900e19c856238fd371899c2bf2ce8c868b76754e5db3b036533fd603746be13c10d4e3e6022ebc905d20c2a7f32b215a4cd53b3f44ca1c327d2c2b651145821c08396c89071f665349c25e44d2733cd9305985ceef6430c3cf57af5fa224089221218fa34737c79c446d28a94c41c96e4e92ac53fbcf384dea8419ea089f8784445a492c812eb0d409467f75afd7d4d1078886205a066",
            "6c6f72656d20697073756d20646f6c6f722073697420616d6574",
        ),
        (
            "valid empty",
            "443ad9c5f00a1f4e9601717d274aacc93a824cb4d99b3c6a42e2b017e52e018443bd77d34a80703cd9b6acf523cd3b2cd1fea31940a68fba828836f1c3ed2fef071e95e0922ff0f47d0e81dacc13ecdeda3db6476f41e5b3f9ccfcfdf91558007b68ffbbe5e93bb088f1e4f0bb39bc7d8600b38930ecd00a341d8cc76955837efff0f0797c4b46fb1b375bba49bcdc877f39aaadb045c56b836072383eec6627ae280ad4f9a45d6e5b4cc7cf61d42b194ff0b9c9167c621e5380d8333e3b7f20c8d564c9ec6c2805f77c0146adea2f688a943b67ce8889f4a6353e6396d551c36a6dbf19359a825d14b69ccc4fd747cf14a1ca8578d7f0a67dc14b37f5e17ca3",
            "",
        ),
        (
            "valid, ciphertext starting with a zero byte",
            "00a2e8f114ea8d05d12dc843e3cc3b2edc8229ff2a028bda29ba9d55e3cd02911902fef1f42a075bf05e8016e8567213d6f260fa49e360779dd81aeea3e04c2cb567e0d72b98bf754014561b7511e083d20e0bfb9cd23f8a0d3c88900c49d2fcd5843ff0765607b2026f28202a87aa94678aed22a0c20724541394cd8f44e373eba1d2bae98f516c1e2ba3d86852d064f856b1daf24795e767a2b90396e50743e3150664afab131fe40ea405dcf572dd1079af1d3f0392ccadcca0a12740dbb213b925ca2a06b1bc1383e83a658c82ba2e7427342379084d5f66b544579f07664cb26edd4f10fd913fdbc0de05ef887d4d1ec1ac95652397ea7fd4e4759fda8b",
            "6c6f72656d20697073756d",
        ),
        (
            "invalid, decrypting to empty",
            "20aaa8adbbc593a924ba1c5c7990b5c2242ae4b99d0fe636a19a4cf754edbcee774e472fe028160ed42634f8864900cb514006da642cae6ae8c7d087caebcfa6dad1551301e130344989a1d462d4164505f6393933450c67bc6d39d8f5160907cabc251b737925a1cf21e5c6aa5781b7769f6a2a583d97cce008c0f8b6add5f0b2bd80bee60237aa39bb20719fe75749f4bc4e42466ef5a861ae3a92395c7d858d430bfe38040f445ea93fa2958b503539800ffa5ce5f8cf51fa8171a91f36cb4f4575e8de6b4d3f096ee140b938fd2f50ee13f0d050222e2a72b0a3069ff3a6738e82c87090caa5aed4fcbe882c49646aa250b98f12f83c8d528113614a29e7",
            "",
        ),
        (
            "invalid, decrypting to the largest size",
            "48cceab10f39a4db32f60074feea473cbcdb7accf92e150417f76b44756b190e843e79ec12aa85083a21f5437e7bad0a60482e601198f9d86923239c8786ee728285afd0937f7dde12717f28389843d7375912b07b991f4fdb0190fced8ba665314367e8c5f9d2981d0f5128feeb46cb50fc237e64438a86df198dd0209364ae3a842d77532b66b7ef263b83b1541ed671b120dfd660462e2107a4ee7b964e734a7bd68d90dda61770658a3c242948532da32648687e0318286473f675b412d6468f013f14d760a358dfcad3cda2afeec5e268a37d250c37f722f468a70dfd92d7294c3c1ee1e7f8843b7d16f9f37ef35748c3ae93aa155cdcdfeb4e78567303",
            "22d850137b9eebe092b24f602dc5bb7918c16bd89ddbf20467b119d205f9c2e4bd7d2592cf1e532106e0f33557565923c73a02d4f09c0c22bea89148183e60317f7028b3aa1f261f91c979393101d7e15f4067e63979b32751658ef769610fe97cf9cef3278b3117d384051c3b1d82c251c2305418c8f6840530e631aad63e70e20e025bcd8efb54c92ec6d3b106a2f8e64eeff7d38495b0fc50c97138af4b1c0a67a1c4e27b077b8439332edfa8608dfeae653cd6a628ac550395f7e74390e42c11682234870925eeaa1fa71b76cf1f2ee3bda69f6717033ff8b7c95c9799e7a3bea5e7e4a1c359772fb6b1c6e6c516661dfe30c3",
        ),
        (
            "invalid, null-padded ciphertext",
            "006f89db685c0a132700c6a17f88a37a6635d0ab89de4c45dc09736c891ca5bf3401ce34c6e5d51e94ed2f518857ddc12d9f9f9e68e01cdc30d86ae5dd83988c0c46a8e39daa1b328a23def551d67fa1964fb15242c83ddd7dd5b1aec720a391d0b86cb16cf4d3c466850c3df88a3ed85993900d1287a0c90c4b04d34ba29e59967661f3f10e0c998f64e14e777e8e81371eca5318b4e0b53414292130c821477c51e2bff844836ab10dff293d82e4f40d345968ef268c92ed0bc238f31d50f4d3f759c23964923e135d15527556410fbd2c451d6a2aa852dc88b01139c6fdd826736d8cd3780601b2977b09c080bd8c0fa471606ad59f053ad33d9eeb905f20",
            "2b5dd72df3cae37f1aef",
        ),
        (
            "invalid, second to last length",
            "1439e08c3f84c1a7fec74ce07614b20e01f6fa4e8c2a6cffdc3520d8889e5d9a950c6425798f85d4be38d300ea5695f13ecd4cb389d1ff5b82484b494d6280ab7fa78e645933981cb934cce8bfcd114cc0e6811eefa47aae20af638a1cd163d2d3366186d0a07df0c81f6c9f3171cf3561472e98a6006bf75ddb457bed036dcce199369de7d94ef2c68e8467ee0604eea2b3009479162a7891ba5c40cab17f49e1c438cb6eaea4f76ce23cce0e483ff0e96fa790ea15be67671814342d0a23f4a20262b6182e72f3a67cd289711503c85516a9ed225422f98b116f1ab080a80abd6f0216df88d8cfd67c139243be8dd78502a7aaf6bc99d7da71bcdf627e7354",
            "0f9b",
        ),
        (
            "invalid first byte of padding",
            "9b2ec9c0c917c98f1ad3d0119aec6be51ae3106e9af1914d48600ab6a2c0c0c8ae02a2dc3039906ff3aac904af32ec798fd65f3ad1afa2e69400e7c1de81f5728f3b3291f38263bc7a90a0563e43ce7a0d4ee9c0d8a716621ca5d3d081188769ce1b131af7d35b13dea99153579c86db31fe07d5a2c14d621b77854e48a8df41b5798563af489a291e417b6a334c63222627376118c02c53b6e86310f728734ffc86ef9d7c8bf56c0c841b24b82b59f51aee4526ba1c4268506d301e4ebc498c6aebb6fd5258c876bf900bac8ca4d309dd522f6a6343599a8bc3760f422c10c72d0ad527ce4af1874124ace3d99bb74db8d69d2528db22c3a37644640f95c05f",
            "a1f8c9255c35cfba403ccc",
        ),
        (
            "invalid second byte of padding",
            "782c2b59a21a511243820acedd567c136f6d3090c115232a82a5efb0b178285f55b5ec2d2bac96bf00d6592ea7cdc3341610c8fb07e527e5e2d20cfaf2c7f23e375431f45e998929a02f25fd95354c33838090bca838502259e92d86d568bc2cdb132fab2a399593ca60a015dc2bb1afcd64fef8a3834e17e5358d822980dc446e845b3ab4702b1ee41fe5db716d92348d5091c15d35a110555a35deb4650a5a1d2c98025d42d4544f8b32aa6a5e02dc02deaed9a7313b73b49b0d4772a3768b0ea0db5846ace6569cae677bf67fb0acf3c255dc01ec8400c963b6e49b1067728b4e563d7e1e1515664347b92ee64db7efb5452357a02fff7fcb7437abc2e579",
            "e6d700309ca0ed62452254",
        ),
        (
            "invalid, zero-length PS",
            "0096136621faf36d5290b16bd26295de27f895d1faa51c800dafce73d001d60796cd4e2ac3fa2162131d859cd9da5a0c8a42281d9a63e5f353971b72e36b5722e4ac444d77f892a5443deb3dca49fa732fe855727196e23c26eeac55eeced8267a209ebc0f92f4656d64a6c13f7f7ce544ebeb0f668fe3a6c0f189e4bcd5ea12b73cf63e0c8350ee130dd62f01e5c97a1e13f52fde96a9a1bc9936ce734fdd61f27b18216f1d6de87f49cf4f2ea821fb8efd1f92cdad529baf7e31aff9bff4074f2cad2b4243dd15a711adcf7de900851fbd6bcb53dac399d7c880531d06f25f7002e1aaf1722765865d2c2b902c7736acd27bc6cbd3e38b560e2eecf7d4b576",
            "ba27b1842e7c21c0e7ef6a",
        ),
        (
            "invalid, null byte at the eighth byte of PS",
            "a7a340675a82c30e22219a55bc07cdf36d47d01834c1834f917f18b517419ce9de2a96460e745024436470ed85e94297b283537d52189c406a3f533cb405cc6a9dba46b482ce98b6e3dd52d8fce2237425617e38c11fbc46b61897ef200d01e4f25f5f6c4c5b38cd0de38ba11908b86595a8036a08a42a3d05b79600a97ac18ba368a08d6cf6ccb624f6e8002afc75599fba4de3d4f3ba7d208391ebe8d21f8282b18e2c10869eb2702e68f9176b42b0ddc9d763f0c86ba0ff92c957aaeab76d9ab8da52ea297ec11d92d770146faa1b300e0f91ef969b53e7d2907ffc984e9a9c9d11fb7d6cba91972059b46506b035efec6575c46d7114a6b935864858445f",
            "63cb0bf65fc8255dd29e17",
        ),
        (
            "invalid, separator missing",
            "3d1b97e7aa34eaf1f4fc171ceb11dcfffd9a46a5b6961205b10b302818c1fcc9f4ec78bf18ea0cee7e9fa5b16fb4c611463b368b3312ac11cf9c06b7cf72b54e284848a508d3f02328c62c2999d0fb60929f81783c7a256891bc2ff4d91df2af96a24fc5701a1823af939ce6dbdc510608e3d41eec172ad2d51b9fc61b4217c923cadcf5bac321355ef8be5e5f090cdc2bd0c697d9058247db3ad613fdce87d2955a6d1c948a5160f93da21f731d74137f5d1f53a1923adb513d2e6e1589d44cc079f4c6ddd471d38ac82d20d8b1d21f8d65f3b6907086809f4123e08d86fb38729585de026a485d8f0e703fd4772f6668febf67df947b82195fa3867e3a3065",
            "6f09a0b62699337c497b0b",
        ),
    ];

    #[test]
    fn implicit_rejection_draft_vectors() {
        let k = key(&DRAFT_2048);
        for (what, ct, expected) in DRAFT_B1 {
            let out = k.decrypt_pkcs1(&h(ct)).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(hex::encode(&*out), *expected, "{what}");
            // Deterministic: the same ciphertext, the same answer.
            assert_eq!(*k.decrypt_pkcs1(&h(ct)).unwrap(), *out, "{what}");
        }
    }

    /// The draft's decoding written plainly, with early exits and branches: what the
    /// constant-time code must compute, block for block.
    fn reference_unpad(ir_key: &[u8], ct: &[u8], em: &[u8]) -> Vec<u8> {
        let k = em.len();
        let mut mac = Hmac::new(Hash::Sha256, ir_key);
        mac.update(ct);
        let kdk = mac.finish();
        let prf = |label: &[u8], len: usize| -> Vec<u8> {
            let mut out = Vec::new();
            for i in 0u16.. {
                if out.len() >= len {
                    break;
                }
                let mut m = Hmac::new(Hash::Sha256, &kdk);
                m.update(&i.to_be_bytes());
                m.update(label);
                m.update(&((len * 8) as u16).to_be_bytes());
                out.extend(m.finish());
            }
            out.truncate(len);
            out
        };
        let synthetic = prf(b"message", k);
        let max = k - 10;
        let mask = (max.next_power_of_two() - 1) | max;
        let len = prf(b"length", 256)
            .chunks(2)
            .map(|c| usize::from(u16::from_be_bytes([c[0], c[1]])) & mask)
            .rev()
            .find(|c| *c < max)
            .unwrap_or(0);
        let fallback = synthetic[k - len..].to_vec();
        if em[0] != 0 || em[1] != 2 {
            return fallback;
        }
        match em[2..].iter().position(|b| *b == 0) {
            Some(i) if i >= 8 => em[2 + i + 1..].to_vec(),
            _ => fallback,
        }
    }

    /// Every way a block can be right or wrong, decoded by the masked code and by the
    /// reference model. Nothing here measures time: constant time is a property of how
    /// the code is written (no branch or index on the padding bytes), which a timing
    /// test on a shared machine could neither prove nor disprove; this test pins down
    /// that the one code path gives the draft's answer for every case.
    #[test]
    fn implicit_rejection_matches_reference_model() {
        let ir_key = [0x5au8; 32];
        let k = 256;
        let mut cases: Vec<Vec<u8>> = Vec::new();
        let good = |sep: usize| {
            let mut em = vec![0x77u8; k];
            em[0] = 0;
            em[1] = 2;
            em[sep] = 0;
            em
        };
        // The separator at every position: too early (PS shorter than 8), the first
        // allowed one, later ones, the last byte (empty message).
        for sep in 2..k {
            cases.push(good(sep));
        }
        // No separator; wrong first and second bytes; a second zero after the first.
        cases.push({
            let mut em = good(20);
            em[20] = 1;
            em
        });
        for (i, v) in [(0, 1u8), (1, 1), (1, 0), (1, 3), (0, 0x80)] {
            let mut em = good(20);
            em[i] = v;
            cases.push(em);
        }
        cases.push({
            let mut em = good(12);
            em[30] = 0;
            em
        });
        cases.push(vec![0u8; k]);
        for (i, em) in cases.iter().enumerate() {
            let ct = [i as u8; 256];
            assert_eq!(*implicit_rejection_unpad(&ir_key, &ct, em), reference_unpad(&ir_key, &ct, em), "case {i}");
        }
        // A bad block gives a message that depends on the ciphertext, never an error.
        let bad = vec![0u8; k];
        let a = implicit_rejection_unpad(&ir_key, &[1; 256], &bad);
        let b = implicit_rejection_unpad(&ir_key, &[2; 256], &bad);
        assert!(a.len() <= k - 11 && b.len() <= k - 11);
        assert_ne!(*a, *b);
    }

    #[test]
    fn pkcs1_decrypt_public_errors() {
        let k = key(&DRAFT_2048);
        let ct = h(DRAFT_B1[0].1);
        assert_eq!(k.decrypt_pkcs1(&ct[1..]).err(), Some(Error::EncryptedDataLenRange));
        assert_eq!(k.decrypt_pkcs1(&[ct.as_slice(), &[0]].concat()).err(), Some(Error::EncryptedDataLenRange));
        // The modulus itself and anything above it.
        let n = h(DRAFT_2048.n);
        assert_eq!(k.decrypt_pkcs1(&n).err(), Some(Error::EncryptedDataInvalid));
        assert_eq!(k.decrypt_pkcs1(&[0xFF; 256]).err(), Some(Error::EncryptedDataInvalid));
        // 0, 1 and n - 1, which aws-lc will not exponentiate, are bad paddings like any.
        let mut n_minus_1 = n.clone();
        n_minus_1[255] -= 1;
        let mut one = vec![0u8; 256];
        one[255] = 1;
        for ct in [vec![0u8; 256], one, n_minus_1] {
            let a = k.decrypt_pkcs1(&ct).unwrap();
            assert_eq!(*a, *k.decrypt_pkcs1(&ct).unwrap());
            assert!(a.len() <= 245);
        }
    }

    #[test]
    fn digest_info_prefixes_match_the_rsa_crate() {
        use ::rsa::Pkcs1v15Sign;
        let oracle = [
            (Hash::Sha224, Pkcs1v15Sign::new::<sha2::Sha224>().prefix),
            (Hash::Sha256, Pkcs1v15Sign::new::<sha2::Sha256>().prefix),
            (Hash::Sha384, Pkcs1v15Sign::new::<sha2::Sha384>().prefix),
            (Hash::Sha512, Pkcs1v15Sign::new::<sha2::Sha512>().prefix),
        ];
        for (hash, prefix) in oracle {
            assert_eq!(hash.digest_info_prefix(), &*prefix);
        }
        // SHA-1 from RFC 8017, 9.2 note 1.
        assert_eq!(Hash::Sha1.digest_info_prefix(), h("3021300906052b0e03021a05000414"));
        for hash in Hash::ALL {
            let d = vec![7u8; hash.output_len()];
            let info = digest_info(hash, &d);
            assert_eq!(parse_digest_info(&info), Some((hash, d.as_slice())));
            assert_eq!(parse_digest_info(&info[..info.len() - 1]), None);
            assert_eq!(parse_digest_info(&[info.as_slice(), &[0]].concat()), None);
            assert_eq!(parse_digest_info(&d), None);
        }
    }

    #[test]
    fn ecdsa_value_truncates_and_pads() {
        // Longer: the leftmost bytes; shorter: the integer itself, so left-padded.
        let long: Vec<u8> = (0..64).collect();
        assert_eq!(ecdsa_value(Curve::P256, &long).unwrap().as_ref(), &long[..32]);
        assert_eq!(ecdsa_value(Curve::P384, &long).unwrap().as_ref(), &long[..48]);
        let short = [9u8; 20];
        let v = ecdsa_value(Curve::P384, &short).unwrap();
        assert_eq!(&v.as_ref()[..28], &[0u8; 28]);
        assert_eq!(&v.as_ref()[28..], &short);
        assert_eq!(ecdsa_value(Curve::P256, &[]).unwrap().as_ref(), &[0u8; 32]);
    }

    #[test]
    fn size_rules() {
        assert_eq!(pkcs1_max_payload(256), 245);
        assert_eq!(oaep_max_message(256, Hash::Sha256), 190);
        assert_eq!(oaep_max_message(256, Hash::Sha512), 126);
        // emLen = k for whole-byte moduli, one less when bits = 8m + 1.
        assert_eq!(pss_max_salt(2048, Hash::Sha256), 256 - 32 - 2);
        assert_eq!(pss_max_salt(2049, Hash::Sha256), 256 - 32 - 2);
        assert_eq!(pss_max_salt(2050, Hash::Sha256), 257 - 32 - 2);
        assert_eq!(rsa_generate(512).err(), Some(Error::KeySizeRange));
        for bits in [1024, 1152, 1536] {
            let p = rsa_generate(bits).unwrap();
            assert_eq!(RsaPrivateKey::new(&p.as_refs()).unwrap().bits(), bits, "aws-lc checks the key");
            assert_eq!(strip_zeros(&p.e), [1, 0, 1]);
        }
        let k = key(&WYCHEPROOF_2048);
        assert_eq!((k.modulus_len(), k.bits()), (256, 2048));
    }

    #[test]
    fn inconsistent_rsa_components_are_refused() {
        let parts = WYCHEPROOF_2048.parts();
        let mut d = parts.d.clone();
        d[100] ^= 1;
        let bad = RsaParts {
            n: parts.n.as_slice(),
            e: &parts.e,
            d: &d,
            p: &parts.p,
            q: &parts.q,
            dp: &parts.dp,
            dq: &parts.dq,
            qinv: &parts.qinv,
        };
        assert_eq!(RsaPrivateKey::new(&bad).err(), Some(Error::KeyTypeInconsistent));
        assert_eq!(RsaPublicKey::new(&[], &parts.e).err(), Some(Error::KeyTypeInconsistent));
    }
}
