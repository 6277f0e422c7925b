//! Independent implementations (the RustCrypto crates) that every result of the module
//! is checked against. Key lengths pick AES-128, -192 or -256.

use aes::cipher::block_padding::{NoPadding, Pkcs7};
use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecryptMut, BlockEncrypt, BlockEncryptMut, KeyInit, KeyIvInit, StreamCipher};
use aes_gcm::aead::{consts::U12, Aead, Payload};
use hmac::Mac;
use sha2::Digest;

/// Runs `$body` with `$C` naming the AES type for a key of `$len` bytes.
macro_rules! per_aes {
    ($len:expr, $C:ident => $body:expr) => {
        match $len {
            16 => {
                type $C = aes::Aes128;
                $body
            }
            24 => {
                type $C = aes::Aes192;
                $body
            }
            32 => {
                type $C = aes::Aes256;
                $body
            }
            n => panic!("no AES key of {n} bytes"),
        }
    };
}

/// AES-GCM with a 96-bit IV and a 128-bit tag: ciphertext || tag.
pub fn gcm_encrypt(key: &[u8], iv: &[u8], aad: &[u8], pt: &[u8]) -> Vec<u8> {
    per_aes!(key.len(), C => {
        let c = aes_gcm::AesGcm::<C, U12>::new_from_slice(key).unwrap();
        c.encrypt(GenericArray::from_slice(iv), Payload { msg: pt, aad }).unwrap()
    })
}

/// AES-GCM with an IV of 8, 12 or 16 bytes and a 128-bit tag: ciphertext || tag. (A
/// shorter tag is this tag cut, SP 800-38D 7.1.)
pub fn gcm_encrypt_iv(key: &[u8], iv: &[u8], aad: &[u8], pt: &[u8]) -> Vec<u8> {
    use aes_gcm::aead::consts::{U16, U8};
    let payload = Payload { msg: pt, aad };
    per_aes!(key.len(), C => match iv.len() {
        8 => aes_gcm::AesGcm::<C, U8>::new_from_slice(key).unwrap().encrypt(GenericArray::from_slice(iv), payload),
        12 => aes_gcm::AesGcm::<C, U12>::new_from_slice(key).unwrap().encrypt(GenericArray::from_slice(iv), payload),
        16 => aes_gcm::AesGcm::<C, U16>::new_from_slice(key).unwrap().encrypt(GenericArray::from_slice(iv), payload),
        n => panic!("no oracle for a {n}-byte IV"),
    })
    .unwrap()
}

pub fn cbc_encrypt(key: &[u8], iv: &[u8], pt: &[u8], pad: bool) -> Vec<u8> {
    per_aes!(key.len(), C => {
        let e = cbc::Encryptor::<C>::new_from_slices(key, iv).unwrap();
        if pad {
            e.encrypt_padded_vec_mut::<Pkcs7>(pt)
        } else {
            e.encrypt_padded_vec_mut::<NoPadding>(pt)
        }
    })
}

/// CBC decryption without removing any padding.
pub fn cbc_decrypt_raw(key: &[u8], iv: &[u8], ct: &[u8]) -> Vec<u8> {
    per_aes!(key.len(), C => {
        cbc::Decryptor::<C>::new_from_slices(key, iv).unwrap().decrypt_padded_vec_mut::<NoPadding>(ct).unwrap()
    })
}

pub fn ecb_encrypt(key: &[u8], pt: &[u8]) -> Vec<u8> {
    let mut out = pt.to_vec();
    per_aes!(key.len(), C => {
        let c = C::new_from_slice(key).unwrap();
        for b in out.chunks_exact_mut(16) {
            c.encrypt_block(GenericArray::from_mut_slice(b));
        }
    });
    out
}

/// CTR with a 32-, 64- or 128-bit big-endian counter in the low bits of `cb`.
pub fn ctr(key: &[u8], cb: &[u8; 16], counter_bits: u64, data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    per_aes!(key.len(), C => match counter_bits {
        32 => ctr::Ctr32BE::<C>::new_from_slices(key, cb).unwrap().apply_keystream(&mut out),
        64 => ctr::Ctr64BE::<C>::new_from_slices(key, cb).unwrap().apply_keystream(&mut out),
        128 => ctr::Ctr128BE::<C>::new_from_slices(key, cb).unwrap().apply_keystream(&mut out),
        n => panic!("no oracle for {n}-bit counters"),
    });
    out
}

/// RFC 3394 key wrap.
pub fn kw_wrap(kek: &[u8], data: &[u8]) -> Vec<u8> {
    per_aes!(kek.len(), C => aes_kw::Kek::<C>::try_from(kek).unwrap().wrap_vec(data).unwrap())
}

/// RFC 5649 key wrap with padding.
pub fn kwp_wrap(kek: &[u8], data: &[u8]) -> Vec<u8> {
    per_aes!(kek.len(), C => aes_kw::Kek::<C>::try_from(kek).unwrap().wrap_with_padding_vec(data).unwrap())
}

pub fn cmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    per_aes!(key.len(), C => {
        let mut m = <cmac::Cmac<C> as Mac>::new_from_slice(key).unwrap();
        m.update(data);
        m.finalize().into_bytes().to_vec()
    })
}

/// The hashes of the module's digest and HMAC mechanisms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

pub const HASHES: [Hash; 5] = [Hash::Sha1, Hash::Sha224, Hash::Sha256, Hash::Sha384, Hash::Sha512];

fn hmac_of<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <M as hmac::digest::KeyInit>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

impl Hash {
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Hash::Sha224 => sha2::Sha224::digest(data).to_vec(),
            Hash::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Hash::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Hash::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    pub fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => hmac_of::<hmac::Hmac<sha1::Sha1>>(key, data),
            Hash::Sha224 => hmac_of::<hmac::Hmac<sha2::Sha224>>(key, data),
            Hash::Sha256 => hmac_of::<hmac::Hmac<sha2::Sha256>>(key, data),
            Hash::Sha384 => hmac_of::<hmac::Hmac<sha2::Sha384>>(key, data),
            Hash::Sha512 => hmac_of::<hmac::Hmac<sha2::Sha512>>(key, data),
        }
    }
}
