//! The cryptographic primitives of the module, and the only place that names the
//! underlying library (aws-lc). Everything here is safe code with a small typed surface:
//! the mechanism units build the PKCS#11 semantics (chaining, padding, counters, length
//! rules) on top of it, and the keystore uses it for randomness and sealing.
//!
//! Failures of the primitives are reported with the `Error` the PKCS#11 layer would give
//! for the same condition in decryption (a failed authentication or integrity check is
//! `EncryptedDataInvalid`); callers working on wrapped keys translate.

use crate::error::{Error, Result};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::{aead, cipher, cmac, digest, hmac, key_wrap, rand};
use std::sync::Arc;
use zeroize::Zeroizing;

/// AES block length in bytes.
pub const AES_BLOCK: usize = 16;
/// Length of a GCM nonce served here (96 bits, the only length aws-lc accepts).
pub const GCM_NONCE_LEN: usize = 12;
/// Length of a GCM tag served here (128 bits).
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
            (Direction::Encrypt, false) => {
                Keyed::Enc(cipher::EncryptingKey::ecb(unbound()?).map_err(bad)?)
            }
            (Direction::Encrypt, true) => {
                Keyed::Enc(cipher::EncryptingKey::cbc(unbound()?).map_err(bad)?)
            }
            (Direction::Decrypt, false) => {
                Keyed::Dec(cipher::DecryptingKey::ecb(unbound()?).map_err(bad)?)
            }
            (Direction::Decrypt, true) => {
                Keyed::Dec(cipher::DecryptingKey::cbc(unbound()?).map_err(bad)?)
            }
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
            Keyed::Enc(k) => k
                .less_safe_encrypt(blocks, cipher::EncryptionContext::None)
                .map(drop)
                .map_err(failed),
            Keyed::Dec(k) => k
                .decrypt(blocks, cipher::DecryptionContext::None)
                .map(drop)
                .map_err(failed),
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
                k.less_safe_encrypt(blocks, cipher::EncryptionContext::Iv128(ctx_iv))
                    .map_err(failed)?;
                iv.copy_from_slice(&blocks[last..]);
            }
            Keyed::Dec(k) => {
                // The next chaining value is the last ciphertext block: take it before
                // it is overwritten.
                let mut next = [0u8; AES_BLOCK];
                next.copy_from_slice(&blocks[last..]);
                k.decrypt(blocks, cipher::DecryptionContext::Iv128(ctx_iv))
                    .map_err(failed)?;
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
pub fn gcm_seal(
    key: &[u8],
    nonce: &[u8; GCM_NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let key = gcm_key(key)?;
    let mut out = Vec::with_capacity(plaintext.len() + GCM_TAG_LEN);
    out.extend_from_slice(plaintext);
    key.seal_in_place_append_tag(
        aead::Nonce::assume_unique_for_key(*nonce),
        aead::Aad::from(aad),
        &mut out,
    )
    .map_err(|_| Error::DataLenRange)?;
    Ok(out)
}

/// AES-GCM decryption in one shot of ciphertext || 16-byte tag. A short input is
/// `EncryptedDataLenRange`, a failed tag check `EncryptedDataInvalid`; no plaintext is
/// released unless the tag verifies.
pub fn gcm_open(
    key: &[u8],
    nonce: &[u8; GCM_NONCE_LEN],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let key = gcm_key(key)?;
    if sealed.len() < GCM_TAG_LEN {
        return Err(Error::EncryptedDataLenRange);
    }
    let mut buf = Zeroizing::new(sealed.to_vec());
    let plain_len = key
        .open_in_place(
            aead::Nonce::assume_unique_for_key(*nonce),
            aead::Aad::from(aad),
            &mut buf,
        )
        .map_err(|_| Error::EncryptedDataInvalid)?
        .len();
    buf.truncate(plain_len);
    Ok(buf)
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
    let len = kek(key)?
        .wrap(plaintext, &mut out)
        .map_err(|_| Error::DataLenRange)?
        .len();
    out.truncate(len);
    Ok(out)
}

/// RFC 3394 key unwrap with the default IV; a failed integrity check (or a malformed
/// length) is `EncryptedDataInvalid`.
pub fn kw_unwrap(key: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    use key_wrap::KeyWrap;
    let mut out = Zeroizing::new(vec![0u8; wrapped.len()]);
    let len = kek(key)?
        .unwrap(wrapped, &mut out)
        .map_err(|_| Error::EncryptedDataInvalid)?
        .len();
    out.truncate(len);
    Ok(out)
}

/// RFC 5649 key wrap with padding, default alternative IV. Any non-empty `plaintext`.
pub fn kwp_wrap(key: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    use key_wrap::KeyWrapPadded;
    // Output is the input rounded up to 8 bytes, plus the 8-byte integrity block.
    let mut out = vec![0u8; plaintext.len().div_ceil(8) * 8 + 8];
    let len = kek(key)?
        .wrap_with_padding(plaintext, &mut out)
        .map_err(|_| Error::DataLenRange)?
        .len();
    out.truncate(len);
    Ok(out)
}

/// RFC 5649 key unwrap; a failed integrity or padding check is `EncryptedDataInvalid`.
pub fn kwp_unwrap(key: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    use key_wrap::KeyWrapPadded;
    let mut out = Zeroizing::new(vec![0u8; wrapped.len()]);
    let len = kek(key)?
        .unwrap_with_padding(wrapped, &mut out)
        .map_err(|_| Error::EncryptedDataInvalid)?
        .len();
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
        self.0
            .update(data)
            .map_err(|_| Error::general("CMAC update failed"))
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
        Hmac(hmac::Context::with_key(&hmac::Key::new(
            hash.hmac_alg(),
            key,
        )))
    }

    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The full-length MAC.
    pub fn finish(self) -> Vec<u8> {
        self.0.sign().as_ref().to_vec()
    }
}

#[cfg(test)]
mod tests {
    //! Known-answer tests typed in from the standards: NIST SP 800-38A (ECB, CBC),
    //! the GCM specification's test cases, RFC 3394, NIST SP 800-38B (CMAC),
    //! RFC 2202 / RFC 4231 (HMAC) and FIPS 180 examples (digests).
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).expect("test vector")
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
        let ct = h(
            "3ad77bb40d7a3660a89ecaf32466ef97 f5d3d58503b9699de785895a96fdbaaf \
                    43b1cd7f598ece23881b00e3ed030688 7b0c785e27e8ad3f8223207104725dd4",
        );
        let mut buf = h(PT);
        AesEcb::new(&h(K128), Direction::Encrypt)
            .unwrap()
            .apply(&mut buf)
            .unwrap();
        assert_eq!(buf, ct);
        AesEcb::new(&h(K128), Direction::Decrypt)
            .unwrap()
            .apply(&mut buf)
            .unwrap();
        assert_eq!(buf, h(PT));

        let k256 = h("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
        let mut block = h("6bc1bee22e409f96e93d7e117393172a");
        AesEcb::new(&k256, Direction::Encrypt)
            .unwrap()
            .apply(&mut block)
            .unwrap();
        assert_eq!(block, h("f3eed1bdb5d2a03c064b5a7e3db181f8"));
    }

    #[test]
    fn cbc_sp800_38a_in_one_and_several_calls() {
        let iv0: [u8; 16] = h("000102030405060708090a0b0c0d0e0f").try_into().unwrap();
        let ct = h(
            "7649abac8119b246cee98e9b12e9197d 5086cb9b507219ee95db113a917678b2 \
                    73bed6b8e3c1743b7116e69e22229516 3ff1caa1681fac09120eca307586e1a7",
        );
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
            assert_eq!(
                AesEcb::new(&k, Direction::Encrypt).err(),
                Some(Error::KeySizeRange)
            );
            assert_eq!(
                AesCbc::new(&k, Direction::Decrypt).err(),
                Some(Error::KeySizeRange)
            );
            assert_eq!(Cmac::new(&k).err(), Some(Error::KeySizeRange));
            assert_eq!(
                gcm_seal(&k, &[0; 12], b"", b"").err(),
                Some(Error::KeySizeRange)
            );
            assert_eq!(kw_wrap(&k, &[0; 16]).err(), Some(Error::KeySizeRange));
        }
        // No AES-192 key-encryption key in aws-lc.
        assert_eq!(
            kwp_wrap(&[1; 24], &[0; 16]).err(),
            Some(Error::KeySizeRange)
        );
    }

    #[test]
    fn gcm_test_cases() {
        // Test cases 1 and 2: zero key and IV.
        let k = [0u8; 16];
        assert_eq!(
            gcm_seal(&k, &[0; 12], b"", b"").unwrap(),
            h("58e2fccefa7e3061367f1d57a4e7455a")
        );
        assert_eq!(
            gcm_seal(&k, &[0; 12], b"", &[0; 16]).unwrap(),
            h("0388dace60b6a392f328c2b971b2fe78 ab6e47d42cec13bdf53a67b21257bddf")
        );
        // Test case 4: with additional data and a partial last block.
        let k = h("feffe9928665731c6d6a8f9467308308");
        let iv: [u8; 12] = h("cafebabefacedbaddecaf888").try_into().unwrap();
        let p = h(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
                   1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        );
        let a = h("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let c = h(
            "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e\
                   21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091\
                   5bc94fbc3221a5db94fae95ae7121a47",
        );
        assert_eq!(gcm_seal(&k, &iv, &a, &p).unwrap(), c);
        assert_eq!(*gcm_open(&k, &iv, &a, &c).unwrap(), p);

        let mut bad = c.clone();
        bad[0] ^= 1;
        assert_eq!(
            gcm_open(&k, &iv, &a, &bad).err(),
            Some(Error::EncryptedDataInvalid)
        );
        assert_eq!(
            gcm_open(&k, &iv, b"", &c).err(),
            Some(Error::EncryptedDataInvalid)
        );
        assert_eq!(
            gcm_open(&k, &iv, &a, &c[..15]).err(),
            Some(Error::EncryptedDataLenRange)
        );
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
            assert_eq!(
                kw_unwrap(kek, &bad).err(),
                Some(Error::EncryptedDataInvalid)
            );
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
            assert_eq!(
                kwp_unwrap(&kek, &bad).err(),
                Some(Error::EncryptedDataInvalid)
            );
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
            (
                Hash::Sha224,
                "896fb1128abbdf196832107cd49df33f47b4b1169912ba4f53684b22",
            ),
            (
                Hash::Sha256,
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
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
            (
                Hash::Sha1,
                "abc",
                "a9993e364706816aba3e25717850c26c9cd0d89d",
            ),
            (
                Hash::Sha1,
                "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "84983e441c3bd26ebaae4aa1f95129e5e54670f1",
            ),
            (
                Hash::Sha224,
                "abc",
                "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7",
            ),
            (
                Hash::Sha256,
                "abc",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
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
