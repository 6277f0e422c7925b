//! The operations that the safe API of aws-lc-rs does not offer, called on aws-lc
//! directly: for RSA, the raw private operation (no padding, blinded), the raw public
//! operation, EMSA-PSS encoding and checking with any hash, MGF1 hash and salt length,
//! RSA-OAEP with any hash and MGF1 hash, and key generation of sizes other than 2048,
//! 3072 and 4096 bits; AES-GCM with IVs other than 96 bits, tags shorter than 128 bits,
//! and encryption in parts. With the C interface shell this is the only module that uses
//! `unsafe`; every block says why it is sound. `crypto` is its only user, and its tests
//! check each function against independent implementations.
//!
//! Keys come in as DER (PKCS#1 `RSAPrivateKey` / `RSAPublicKey`), which aws-lc parses
//! and checks (`RSA_check_key` for private keys). An `RsaKey` owns one `EVP_PKEY`.

use crate::crypto::Hash;
use aws_lc_sys as lc;
use std::ffi::c_int;
use std::ptr;
use zeroize::Zeroizing;

/// An aws-lc call failed. The callers give the failure its PKCS#11 meaning; aws-lc's
/// own reason is deliberately not carried, so that nothing about a secret can leak
/// through it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failed;

/// Ends a failed call: clears aws-lc's thread-local error queue, so that no stale entry
/// is seen by a later, unrelated call on this thread.
fn failed() -> Failed {
    // SAFETY: ERR_clear_error takes no arguments and touches only this thread's queue.
    unsafe { lc::ERR_clear_error() };
    Failed
}

fn md(hash: Hash) -> *const lc::EVP_MD {
    // SAFETY: the EVP_sha* functions take no arguments and return pointers to static
    // method tables that live as long as the program.
    unsafe {
        match hash {
            Hash::Sha1 => lc::EVP_sha1(),
            Hash::Sha224 => lc::EVP_sha224(),
            Hash::Sha256 => lc::EVP_sha256(),
            Hash::Sha384 => lc::EVP_sha384(),
            Hash::Sha512 => lc::EVP_sha512(),
        }
    }
}

/// An RSA key (private or public) held by aws-lc.
pub struct RsaKey {
    /// Owned; freed on drop. Never null.
    pkey: *mut lc::EVP_PKEY,
    /// Borrowed from `pkey` (which holds the reference). Never null.
    rsa: *mut lc::RSA,
    private: bool,
}

// SAFETY: aws-lc's RSA and EVP_PKEY objects may be used from several threads at once by
// the operations used here: the public operation and the padding functions take the key
// as const, and the private operation takes its internal lock for the lazily built
// Montgomery contexts and the blinding cache (the same guarantee aws-lc-rs relies on for
// its own RSA key types). The key itself is never changed after construction, and it
// is freed only by `drop`, which has the value exclusively.
unsafe impl Send for RsaKey {}
// SAFETY: as for Send above.
unsafe impl Sync for RsaKey {}

impl Drop for RsaKey {
    fn drop(&mut self) {
        // SAFETY: `pkey` is the valid, owned EVP_PKEY made in `adopt`; freeing it also
        // frees `rsa`, which it holds. aws-lc clears private key memory when it frees it.
        unsafe { lc::EVP_PKEY_free(self.pkey) };
    }
}

impl RsaKey {
    /// A private key from a DER `RSAPrivateKey` (two-prime, with the CRT values); aws-lc
    /// checks that its components are consistent.
    pub fn private_from_der(pkcs1: &[u8]) -> Result<Self, Failed> {
        // SAFETY: reads exactly `pkcs1.len()` bytes of a live slice; returns a new RSA
        // object (owned by us) or null.
        let rsa = unsafe { lc::RSA_private_key_from_bytes(pkcs1.as_ptr(), pkcs1.len()) };
        Self::adopt(rsa, true)
    }

    /// A public key from a DER `RSAPublicKey`.
    pub fn public_from_der(pkcs1: &[u8]) -> Result<Self, Failed> {
        // SAFETY: as in `private_from_der`.
        let rsa = unsafe { lc::RSA_public_key_from_bytes(pkcs1.as_ptr(), pkcs1.len()) };
        Self::adopt(rsa, false)
    }

    /// Takes ownership of `rsa` (null when parsing failed) inside a new EVP_PKEY.
    fn adopt(rsa: *mut lc::RSA, private: bool) -> Result<Self, Failed> {
        if rsa.is_null() {
            return Err(failed());
        }
        // A private key must be blinded: refuse one that asks not to be (the DER parser
        // never sets the flag, so this guards against a change of aws-lc's defaults).
        // SAFETY: `rsa` is a valid RSA object that we own.
        let no_blinding = unsafe { lc::RSA_test_flags(rsa, lc::RSA_FLAG_NO_BLINDING) } != 0;
        // SAFETY: no arguments; returns a new EVP_PKEY or null.
        let pkey = unsafe { lc::EVP_PKEY_new() };
        // SAFETY: `pkey` is checked for null first; EVP_PKEY_assign_RSA takes over our
        // reference to `rsa` when it succeeds, and leaves it with us when it fails.
        if no_blinding || pkey.is_null() || unsafe { lc::EVP_PKEY_assign_RSA(pkey, rsa) } != 1 {
            // SAFETY: `rsa` is still ours (not assigned); EVP_PKEY_free accepts null.
            unsafe {
                lc::RSA_free(rsa);
                lc::EVP_PKEY_free(pkey);
            }
            return Err(failed());
        }
        Ok(RsaKey { pkey, rsa, private })
    }

    /// Length of the modulus in bytes (k).
    pub fn modulus_len(&self) -> usize {
        // SAFETY: `rsa` is valid for the life of `self`; RSA_size only reads it.
        unsafe { lc::RSA_size(self.rsa) as usize }
    }

    /// Length of the modulus in bits.
    pub fn bits(&self) -> usize {
        // SAFETY: as in `modulus_len`.
        unsafe { lc::RSA_bits(self.rsa) as usize }
    }

    /// The RSA private operation on a k-byte input, without padding: m = c^d mod n, with
    /// blinding, and the result checked against the public exponent before it is
    /// released (aws-lc's fault countermeasure). Fails, for public reasons only, when
    /// the input is not below n - 1 or is 0 or 1.
    pub fn private_raw(&self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>, Failed> {
        let k = self.modulus_len();
        if !self.private || input.len() != k {
            return Err(Failed);
        }
        let mut out = Zeroizing::new(vec![0u8; k]);
        let mut out_len = 0usize;
        // SAFETY: `out` has room for `k` bytes (max_out = k) and `input` is `k` readable
        // bytes; `rsa` is a valid private key; aws-lc writes at most max_out bytes and
        // sets `out_len`.
        let ok = unsafe {
            lc::RSA_decrypt(self.rsa, &mut out_len, out.as_mut_ptr(), k, input.as_ptr(), k, lc::RSA_NO_PADDING)
        };
        if ok != 1 || out_len != k {
            return Err(failed());
        }
        Ok(out)
    }

    /// The RSA public operation on a k-byte input, without padding: s^e mod n. Fails
    /// when the input is not below n.
    pub fn public_raw(&self, input: &[u8]) -> Result<Vec<u8>, Failed> {
        let k = self.modulus_len();
        if input.len() != k {
            return Err(Failed);
        }
        let mut out = vec![0u8; k];
        let mut out_len = 0usize;
        // SAFETY: as in `private_raw`: `k` bytes in, room for `k` bytes out.
        let ok = unsafe {
            lc::RSA_encrypt(self.rsa, &mut out_len, out.as_mut_ptr(), k, input.as_ptr(), k, lc::RSA_NO_PADDING)
        };
        if ok != 1 || out_len != k {
            return Err(failed());
        }
        Ok(out)
    }

    /// EMSA-PSS encoding (RFC 8017 9.1.1) of the message hash `m_hash` with a fresh
    /// random salt of `salt_len` bytes; k bytes, ready for the private operation.
    pub fn pss_encode(&self, m_hash: &[u8], hash: Hash, mgf: Hash, salt_len: usize) -> Result<Vec<u8>, Failed> {
        if m_hash.len() != hash.output_len() {
            return Err(Failed);
        }
        let s_len = c_int::try_from(salt_len).map_err(|_| Failed)?;
        let mut em = vec![0u8; self.modulus_len()];
        // SAFETY: `em` has the k bytes aws-lc writes; `m_hash` holds the hash length of
        // `hash` (checked above), which is what aws-lc reads; the EVP_MD pointers are
        // static; `rsa` is valid. aws-lc refuses a salt too long for the key.
        let ok = unsafe {
            lc::RSA_padding_add_PKCS1_PSS_mgf1(self.rsa, em.as_mut_ptr(), m_hash.as_ptr(), md(hash), md(mgf), s_len)
        };
        if ok != 1 {
            return Err(failed());
        }
        Ok(em)
    }

    /// Whether `em` (the k-byte result of the public operation on a signature) is an
    /// EMSA-PSS encoding of `m_hash` with exactly `salt_len` bytes of salt.
    pub fn pss_check(&self, m_hash: &[u8], hash: Hash, mgf: Hash, salt_len: usize, em: &[u8]) -> bool {
        let Ok(s_len) = c_int::try_from(salt_len) else {
            return false;
        };
        if m_hash.len() != hash.output_len() || em.len() != self.modulus_len() {
            return false;
        }
        // SAFETY: `em` holds the k bytes aws-lc reads and `m_hash` the hash length of
        // `hash` (both checked above); the EVP_MD pointers are static; `rsa` is valid.
        let ok =
            unsafe { lc::RSA_verify_PKCS1_PSS_mgf1(self.rsa, m_hash.as_ptr(), md(hash), md(mgf), em.as_ptr(), s_len) };
        if ok != 1 {
            failed();
            return false;
        }
        true
    }

    /// RSAES-OAEP encryption (RFC 8017 7.1.1).
    pub fn oaep_encrypt(&self, hash: Hash, mgf: Hash, label: &[u8], msg: &[u8]) -> Result<Vec<u8>, Failed> {
        let ctx = OaepCtx::new(self, Op::Encrypt, hash, mgf, label)?;
        let mut out = vec![0u8; self.modulus_len()];
        let mut out_len = out.len();
        // SAFETY: `ctx` is a configured encryption context for this key; `out` has
        // `out_len` writable bytes (k, the ciphertext length) and `msg` is readable.
        let ok = unsafe { lc::EVP_PKEY_encrypt(ctx.0, out.as_mut_ptr(), &mut out_len, msg.as_ptr(), msg.len()) };
        if ok != 1 || out_len != out.len() {
            return Err(failed());
        }
        Ok(out)
    }

    /// RSAES-OAEP decryption (RFC 8017 7.1.2). aws-lc checks the padding in constant
    /// time and reports every kind of failure alike.
    pub fn oaep_decrypt(&self, hash: Hash, mgf: Hash, label: &[u8], ct: &[u8]) -> Result<Zeroizing<Vec<u8>>, Failed> {
        if !self.private {
            return Err(Failed);
        }
        let ctx = OaepCtx::new(self, Op::Decrypt, hash, mgf, label)?;
        let mut out = Zeroizing::new(vec![0u8; self.modulus_len()]);
        let mut out_len = out.len();
        // SAFETY: `ctx` is a configured decryption context for this key; `out` has
        // `out_len` writable bytes (k, more than any plaintext) and `ct` is readable.
        let ok = unsafe { lc::EVP_PKEY_decrypt(ctx.0, out.as_mut_ptr(), &mut out_len, ct.as_ptr(), ct.len()) };
        if ok != 1 || out_len > out.len() {
            return Err(failed());
        }
        out.truncate(out_len);
        Ok(out)
    }
}

#[derive(Clone, Copy)]
enum Op {
    Encrypt,
    Decrypt,
}

/// An EVP_PKEY_CTX set up for OAEP with the given hashes and label; freed on drop.
struct OaepCtx(*mut lc::EVP_PKEY_CTX);

impl Drop for OaepCtx {
    fn drop(&mut self) {
        // SAFETY: the context was made by EVP_PKEY_CTX_new and is freed only here.
        unsafe { lc::EVP_PKEY_CTX_free(self.0) };
    }
}

impl OaepCtx {
    fn new(key: &RsaKey, op: Op, hash: Hash, mgf: Hash, label: &[u8]) -> Result<Self, Failed> {
        // SAFETY: `key.pkey` is valid; the new context takes its own reference to it.
        let raw = unsafe { lc::EVP_PKEY_CTX_new(key.pkey, ptr::null_mut()) };
        if raw.is_null() {
            return Err(failed());
        }
        let ctx = OaepCtx(raw);
        // SAFETY: `ctx.0` is a valid context; the EVP_MD pointers are static.
        let configured = unsafe {
            let init = match op {
                Op::Encrypt => lc::EVP_PKEY_encrypt_init(ctx.0),
                Op::Decrypt => lc::EVP_PKEY_decrypt_init(ctx.0),
            };
            init == 1
                && lc::EVP_PKEY_CTX_set_rsa_padding(ctx.0, lc::RSA_PKCS1_OAEP_PADDING) == 1
                && lc::EVP_PKEY_CTX_set_rsa_oaep_md(ctx.0, md(hash)) == 1
                && lc::EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.0, md(mgf)) == 1
        };
        if !configured {
            return Err(failed());
        }
        // The default label is the empty one; a non-empty label is handed over in a
        // buffer from aws-lc's allocator, which the context then owns.
        if !label.is_empty() {
            // SAFETY: allocates `label.len()` bytes or returns null.
            let buf = unsafe { lc::OPENSSL_malloc(label.len()) }.cast::<u8>();
            if buf.is_null() {
                return Err(failed());
            }
            // SAFETY: `buf` has `label.len()` writable bytes and cannot overlap the
            // caller's slice (it is fresh). On success the context owns `buf`; on failure
            // it is still ours and is freed.
            unsafe {
                ptr::copy_nonoverlapping(label.as_ptr(), buf, label.len());
                if lc::EVP_PKEY_CTX_set0_rsa_oaep_label(ctx.0, buf, label.len()) != 1 {
                    lc::OPENSSL_free(buf.cast());
                    return Err(failed());
                }
            }
        }
        Ok(ctx)
    }
}

/// A new RSA private key of `bits` with e = 65537, as a DER `RSAPrivateKey` (two-prime,
/// with the CRT values).
pub fn rsa_generate(bits: usize) -> Result<Zeroizing<Vec<u8>>, Failed> {
    let bits = c_int::try_from(bits).map_err(|_| Failed)?;
    // SAFETY: no arguments; each returns a new object (owned by us) or null.
    let (rsa, e) = unsafe { (lc::RSA_new(), lc::BN_new()) };
    let mut der: *mut u8 = ptr::null_mut();
    let mut der_len = 0usize;
    // SAFETY: `rsa` and `e` are checked for null before use; RSA_generate_key_ex fills the
    // key we own (no callback); RSA_private_key_to_bytes allocates `der` (ours to free)
    // and sets its length.
    let ok = !rsa.is_null()
        && !e.is_null()
        && unsafe {
            lc::BN_set_word(e, 65537) == 1
                && lc::RSA_generate_key_ex(rsa, bits, e, ptr::null_mut()) == 1
                && lc::RSA_private_key_to_bytes(&mut der, &mut der_len, rsa) == 1
        };
    let out = if ok && !der.is_null() {
        // SAFETY: aws-lc wrote `der_len` bytes at `der`.
        Ok(Zeroizing::new(unsafe { std::slice::from_raw_parts(der, der_len) }.to_vec()))
    } else {
        Err(failed())
    };
    // SAFETY: each pointer is ours or null, which the free functions accept; aws-lc's
    // OPENSSL_free clears the memory it frees, and RSA_free the key's secrets.
    unsafe {
        lc::OPENSSL_free(der.cast());
        lc::BN_free(e);
        lc::RSA_free(rsa);
    }
    out
}

/// An AES-GCM context of aws-lc's EVP interface, keyed, with its IV (any length) and its
/// additional data already given: encryption in parts, or decryption of a whole message.
pub struct Gcm {
    /// Owned; freed on drop. Never null.
    ctx: *mut lc::EVP_CIPHER_CTX,
}

// SAFETY: the context is owned by this value alone and used only through `&mut self`
// (or `&self` for the copy, which only reads it); aws-lc keeps no thread-local state in it.
unsafe impl Send for Gcm {}

impl Drop for Gcm {
    fn drop(&mut self) {
        // SAFETY: `ctx` is the valid, owned context; freeing it clears the key schedule.
        unsafe { lc::EVP_CIPHER_CTX_free(self.ctx) };
    }
}

fn c_len(n: usize) -> Result<c_int, Failed> {
    c_int::try_from(n).map_err(|_| Failed)
}

impl Gcm {
    /// `encrypt` or decrypt with a 16, 24 or 32-byte `key`, a non-empty `iv` of any
    /// length, and the additional data `aad`.
    pub fn new(key: &[u8], iv: &[u8], aad: &[u8], encrypt: bool) -> Result<Self, Failed> {
        // SAFETY: the EVP_aes_*_gcm functions return static method tables.
        let cipher = unsafe {
            match key.len() {
                16 => lc::EVP_aes_128_gcm(),
                24 => lc::EVP_aes_192_gcm(),
                32 => lc::EVP_aes_256_gcm(),
                _ => return Err(Failed),
            }
        };
        if iv.is_empty() {
            return Err(Failed);
        }
        // SAFETY: no arguments; a new context or null.
        let ctx = unsafe { lc::EVP_CIPHER_CTX_new() };
        if ctx.is_null() {
            return Err(failed());
        }
        let gcm = Gcm { ctx };
        let mut unused: c_int = 0;
        // SAFETY: `ctx` is valid; the cipher is chosen first, then the IV length, then the
        // key (key.len() bytes, as the cipher wants) and the IV (iv.len() bytes, as just
        // set); the additional data is fed with a null output, as GCM takes it.
        let ok = unsafe {
            lc::EVP_CipherInit_ex(ctx, cipher, ptr::null_mut(), ptr::null(), ptr::null(), encrypt as c_int) == 1
                && lc::EVP_CIPHER_CTX_ctrl(ctx, lc::EVP_CTRL_GCM_SET_IVLEN, c_len(iv.len())?, ptr::null_mut()) == 1
                && lc::EVP_CipherInit_ex(ctx, ptr::null(), ptr::null_mut(), key.as_ptr(), iv.as_ptr(), -1) == 1
                && (aad.is_empty()
                    || lc::EVP_CipherUpdate(ctx, ptr::null_mut(), &mut unused, aad.as_ptr(), c_len(aad.len())?) == 1)
        };
        if !ok {
            return Err(failed());
        }
        Ok(gcm)
    }

    /// A copy of the state, for an operation that must be tried without being lost.
    pub fn try_clone(&self) -> Result<Self, Failed> {
        // SAFETY: no arguments; a new context or null.
        let ctx = unsafe { lc::EVP_CIPHER_CTX_new() };
        if ctx.is_null() {
            return Err(failed());
        }
        let copy = Gcm { ctx };
        // SAFETY: both contexts are valid; aws-lc's GCM copies its own state (key
        // schedule, counters, GHASH) into the new one.
        if unsafe { lc::EVP_CIPHER_CTX_copy(copy.ctx, self.ctx) } != 1 {
            return Err(failed());
        }
        Ok(copy)
    }

    /// Encrypts or decrypts `input`: GCM is a stream, so as many bytes come out.
    pub fn update(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>, Failed> {
        let mut out = Zeroizing::new(vec![0u8; input.len()]);
        if input.is_empty() {
            return Ok(out);
        }
        let mut written: c_int = 0;
        // SAFETY: `out` has room for input.len() bytes, all GCM writes for that input;
        // `input` is readable; `ctx` is valid.
        let ok = unsafe {
            lc::EVP_CipherUpdate(self.ctx, out.as_mut_ptr(), &mut written, input.as_ptr(), c_len(input.len())?)
        };
        if ok != 1 || written as usize != input.len() {
            return Err(failed());
        }
        Ok(out)
    }

    /// Ends an encryption: the first `tag_len` (1 to 16) bytes of the tag.
    pub fn tag(self, tag_len: usize) -> Result<Vec<u8>, Failed> {
        if !(1..=16).contains(&tag_len) {
            return Err(Failed);
        }
        let mut tag = vec![0u8; tag_len];
        let mut unused: c_int = 0;
        // SAFETY: GCM's final step writes no output; `tag` has tag_len writable bytes,
        // which is what the control copies out.
        let ok = unsafe {
            lc::EVP_EncryptFinal_ex(self.ctx, ptr::null_mut(), &mut unused) == 1
                && lc::EVP_CIPHER_CTX_ctrl(self.ctx, lc::EVP_CTRL_GCM_GET_TAG, c_len(tag_len)?, tag.as_mut_ptr().cast())
                    == 1
        };
        if !ok {
            return Err(failed());
        }
        Ok(tag)
    }

    /// Ends a decryption: whether `tag` (1 to 16 bytes) authenticates what was decrypted.
    /// aws-lc compares it in constant time.
    pub fn check(self, tag: &[u8]) -> Result<(), Failed> {
        if !(1..=16).contains(&tag.len()) {
            return Err(Failed);
        }
        let mut unused: c_int = 0;
        // SAFETY: the control reads tag.len() bytes of `tag` (aws-lc copies them, so the
        // const-to-mut cast is never written through); GCM's final step writes no output.
        let ok = unsafe {
            lc::EVP_CIPHER_CTX_ctrl(self.ctx, lc::EVP_CTRL_GCM_SET_TAG, c_len(tag.len())?, tag.as_ptr() as *mut _) == 1
                && lc::EVP_DecryptFinal_ex(self.ctx, ptr::null_mut(), &mut unused) == 1
        };
        if !ok {
            return Err(failed());
        }
        Ok(())
    }
}

/// An Ed25519 private key as aws-lc's EdDSA functions take it: the seed, then the public
/// key.
pub type Ed25519Expanded = [u8; 64];

/// Ed25519ctx (RFC 8032 5.1 with a context of 1 to 255 bytes) of `msg`.
pub fn ed25519ctx_sign(key: &Ed25519Expanded, msg: &[u8], context: &[u8]) -> Result<[u8; 64], Failed> {
    if context.is_empty() || context.len() > 255 {
        return Err(Failed);
    }
    let mut sig = [0u8; 64];
    // SAFETY: `sig` has the 64 bytes aws-lc writes, `key` the 64 it reads; `msg` and
    // `context` are readable for their lengths.
    let ok = unsafe {
        lc::ED25519ctx_sign(sig.as_mut_ptr(), msg.as_ptr(), msg.len(), key.as_ptr(), context.as_ptr(), context.len())
    };
    if ok != 1 {
        return Err(failed());
    }
    Ok(sig)
}

/// Whether `sig` is the Ed25519ctx signature of `msg` under `public` (32 bytes).
pub fn ed25519ctx_verify(public: &[u8; 32], msg: &[u8], sig: &[u8; 64], context: &[u8]) -> bool {
    if context.is_empty() || context.len() > 255 {
        return false;
    }
    // SAFETY: every pointer is readable for the length aws-lc reads: 32 public key bytes,
    // 64 signature bytes, the message and the context for theirs.
    let ok = unsafe {
        lc::ED25519ctx_verify(msg.as_ptr(), msg.len(), sig.as_ptr(), public.as_ptr(), context.as_ptr(), context.len())
    };
    ok == 1 || {
        failed();
        false
    }
}

/// Ed25519ph (RFC 8032 5.1 with pre-hashing) of a message's SHA-512 `digest`, with a
/// context of 0 to 255 bytes.
pub fn ed25519ph_sign_digest(key: &Ed25519Expanded, digest: &[u8; 64], context: &[u8]) -> Result<[u8; 64], Failed> {
    if context.len() > 255 {
        return Err(Failed);
    }
    let mut sig = [0u8; 64];
    // SAFETY: `sig` has the 64 bytes aws-lc writes; `digest` and `key` the 64 each it
    // reads; `context` is readable for its length (aws-lc reads nothing when it is 0).
    let ok = unsafe {
        lc::ED25519ph_sign_digest(sig.as_mut_ptr(), digest.as_ptr(), key.as_ptr(), context.as_ptr(), context.len())
    };
    if ok != 1 {
        return Err(failed());
    }
    Ok(sig)
}

/// Whether `sig` is the Ed25519ph signature of the message whose SHA-512 is `digest`.
pub fn ed25519ph_verify_digest(public: &[u8; 32], digest: &[u8; 64], sig: &[u8; 64], context: &[u8]) -> bool {
    if context.len() > 255 {
        return false;
    }
    // SAFETY: every pointer is readable for the length aws-lc reads (64, 64, 32 bytes and
    // the context's length).
    let ok = unsafe {
        lc::ED25519ph_verify_digest(digest.as_ptr(), sig.as_ptr(), public.as_ptr(), context.as_ptr(), context.len())
    };
    ok == 1 || {
        failed();
        false
    }
}

#[cfg(test)]
mod tests {
    //! Each operation against an independent implementation: the raw operations against
    //! modular exponentiation in `num-bigint` (through the `rsa` crate), PSS and OAEP
    //! against the `rsa` crate, and OpenSSL's command line where the `rsa` crate has no
    //! such variant (PSS with an MGF1 hash other than the message hash).
    use super::*;
    use crate::crypto::test_keys::{
        oracle_digest as hash, oracle_oaep as oaep, oracle_pss as pss, HexRsa, WYCHEPROOF_2048,
    };
    use ::rsa::traits::{PrivateKeyParts, PublicKeyParts};
    use ::rsa::BigUint;

    fn keys(k: &HexRsa) -> (RsaKey, RsaKey, ::rsa::RsaPrivateKey) {
        let oracle = k.oracle();
        let private = ::pkcs1::EncodeRsaPrivateKey::to_pkcs1_der(&oracle).unwrap();
        let public = ::pkcs1::EncodeRsaPublicKey::to_pkcs1_der(&oracle.to_public_key()).unwrap();
        (
            RsaKey::private_from_der(private.as_bytes()).unwrap(),
            RsaKey::public_from_der(public.as_bytes()).unwrap(),
            oracle,
        )
    }

    /// A random k-byte value below the modulus (whose top bit is set).
    fn random_below_n() -> Vec<u8> {
        let mut x = vec![0u8; 256];
        crate::crypto::random(&mut x).unwrap();
        x[0] &= 0x7f;
        x
    }

    fn be(v: &BigUint, len: usize) -> Vec<u8> {
        let b = v.to_bytes_be();
        [vec![0u8; len - b.len()], b].concat()
    }

    #[test]
    fn raw_operations_are_modular_exponentiation() {
        let (private, public, oracle) = keys(&WYCHEPROOF_2048);
        assert_eq!((private.modulus_len(), private.bits(), public.modulus_len()), (256, 2048, 256));
        for _ in 0..8 {
            let x = random_below_n();
            let xb = BigUint::from_bytes_be(&x);
            let s = private.private_raw(&x).unwrap();
            assert_eq!(*s, be(&xb.modpow(oracle.d(), oracle.n()), 256));
            let back = public.public_raw(&s).unwrap();
            assert_eq!(back, x);
            assert_eq!(public.public_raw(&x).unwrap(), be(&xb.modpow(oracle.e(), oracle.n()), 256));
        }
        // Inputs of the wrong length, not below n, or the private operation on a
        // public key.
        let n = be(oracle.n(), 256);
        assert_eq!(private.private_raw(&n[1..]).err(), Some(Failed));
        assert_eq!(private.private_raw(&n).err(), Some(Failed));
        assert_eq!(public.public_raw(&n).err(), Some(Failed));
        assert_eq!(public.private_raw(&[1u8; 256]).err(), Some(Failed));
        assert!(RsaKey::private_from_der(b"\x30\x00").is_err());
        assert!(RsaKey::public_from_der(&[]).is_err());
    }

    const HASHES: [Hash; 5] = [Hash::Sha1, Hash::Sha224, Hash::Sha256, Hash::Sha384, Hash::Sha512];

    #[test]
    fn pss_against_the_rsa_crate() {
        let (private, public, oracle) = keys(&WYCHEPROOF_2048);
        let verifier = oracle.to_public_key();
        for h in HASHES {
            let m = hash(h, b"message");
            for salt in [0, 1, h.output_len(), 256 - h.output_len() - 2] {
                let em = private.pss_encode(&m, h, h, salt).unwrap();
                let sig = private.private_raw(&em).unwrap();
                verifier.verify(pss(h, salt), &m, &sig).unwrap();
                // Ours reads it back, with exactly that salt length only.
                let em = public.public_raw(&sig).unwrap();
                assert!(public.pss_check(&m, h, h, salt, &em));
                assert!(!public.pss_check(&m, h, h, salt + 1, &em));
                assert!(!public.pss_check(&hash(h, b"other"), h, h, salt, &em));
                // And the rsa crate's signatures.
                let sig = oracle.sign_with_rng(&mut ::rsa::rand_core::OsRng, pss(h, salt), &m).unwrap();
                let em = public.public_raw(&sig).unwrap();
                assert!(public.pss_check(&m, h, h, salt, &em));
            }
            // A salt that does not fit, a hash of the wrong length.
            assert!(private.pss_encode(&m, h, h, 256 - h.output_len() - 1).is_err());
            assert!(private.pss_encode(&m[1..], h, h, 0).is_err());
            assert!(!public.pss_check(&m[1..], h, h, 0, &[0u8; 256]));
        }
    }

    #[test]
    fn pss_with_another_mgf_hash_against_openssl() {
        let (private, _, oracle) = keys(&WYCHEPROOF_2048);
        let dir = tempfile::tempdir().unwrap();
        let pub_der = dir.path().join("pub.der");
        let der = ::pkcs8::EncodePublicKey::to_public_key_der(&oracle.to_public_key()).unwrap();
        std::fs::write(&pub_der, der.as_bytes()).unwrap();
        let m = hash(Hash::Sha256, b"message");
        let em = private.pss_encode(&m, Hash::Sha256, Hash::Sha1, 20).unwrap();
        let sig = private.private_raw(&em).unwrap();
        std::fs::write(dir.path().join("hash"), &m).unwrap();
        std::fs::write(dir.path().join("sig"), &*sig).unwrap();
        let verify = |mgf: &str| {
            std::process::Command::new("openssl")
                .current_dir(dir.path())
                .args([
                    "pkeyutl",
                    "-verify",
                    "-pubin",
                    "-keyform",
                    "DER",
                    "-inkey",
                    "pub.der",
                    "-in",
                    "hash",
                    "-sigfile",
                    "sig",
                    "-pkeyopt",
                    "digest:sha256",
                    "-pkeyopt",
                    "rsa_padding_mode:pss",
                    "-pkeyopt",
                    "rsa_pss_saltlen:20",
                    "-pkeyopt",
                ])
                .arg(format!("rsa_mgf1_md:{mgf}"))
                .output()
                .expect("openssl on PATH")
                .status
                .success()
        };
        assert!(verify("sha1"));
        assert!(!verify("sha256"));
    }

    #[test]
    fn oaep_against_the_rsa_crate() {
        let (private, public, oracle) = keys(&WYCHEPROOF_2048);
        let enc = oracle.to_public_key();
        for h in HASHES {
            for mgf in HASHES {
                for label in ["", "label"] {
                    let max = 256 - 2 * h.output_len() - 2;
                    for msg in [&b""[..], b"key", &[0xA5; 256][..max]] {
                        let ct = public.oaep_encrypt(h, mgf, label.as_bytes(), msg).unwrap();
                        assert_eq!(oracle.decrypt(oaep(h, mgf, label), &ct).unwrap(), msg);
                        let ct = enc.encrypt(&mut ::rsa::rand_core::OsRng, oaep(h, mgf, label), msg).unwrap();
                        assert_eq!(*private.oaep_decrypt(h, mgf, label.as_bytes(), &ct).unwrap(), msg);
                        // Another label or hash does not decrypt.
                        assert!(private.oaep_decrypt(h, mgf, b"x", &ct).is_err());
                    }
                    assert!(public.oaep_encrypt(h, mgf, label.as_bytes(), &vec![0; max + 1]).is_err());
                }
            }
        }
        let ct = public.oaep_encrypt(Hash::Sha256, Hash::Sha1, b"", b"m").unwrap();
        assert!(private.oaep_decrypt(Hash::Sha256, Hash::Sha256, b"", &ct).is_err());
        assert!(public.oaep_decrypt(Hash::Sha256, Hash::Sha1, b"", &ct).is_err());
    }
}
