//! The vendor KMS mechanisms: CKM_KMSTOKEN_ENCRYPT seals data (or a key, with
//! C_WrapKey) into the KMS ciphertext blob under a token key's current material;
//! CKM_KMSTOKEN_DECRYPT opens any blob of the token, finding the key and its version from
//! the blob itself (the KMS layer serves it, since it must look keys up). The parameter of
//! both is the encryption context as UTF-8 JSON text (empty for none).

use super::{CipherOp, Info, Key, Param, Unit};
use crate::error::{Error, Result};
use crate::kms::blob;
use crate::vendor::*;
use cryptoki_sys::*;
use zeroize::Zeroizing;

/// The encryption context of a mechanism parameter.
pub fn context(p: &Param) -> Result<blob::Context> {
    match p {
        Param::None => Ok(blob::Context::new()),
        Param::Bytes(json) => blob::parse_context(json),
        _ => Err(Error::MechanismParamInvalid),
    }
}

/// What a blob names: the key id and the material version of `key`.
fn identity(key: &Key) -> Result<(uuid::Uuid, u32)> {
    let obj = key.attrs.ok_or(Error::KeyTypeInconsistent)?;
    let id = obj.get_raw(CKA_KMSTOKEN_KEY_ID).ok_or(Error::KeyTypeInconsistent)?;
    let id =
        std::str::from_utf8(id).ok().and_then(|s| uuid::Uuid::parse_str(s).ok()).ok_or(Error::KeyTypeInconsistent)?;
    let version = obj.ulong(CKA_KMSTOKEN_KEY_VERSION).unwrap_or(1);
    Ok((id, u32::try_from(version).map_err(|_| Error::KeyTypeInconsistent)?))
}

struct KmsEncrypt;

/// Buffers the plaintext (at most 4096 bytes) and seals it at the end.
#[derive(Clone)]
struct Sealing {
    key: Zeroizing<Vec<u8>>,
    id: uuid::Uuid,
    version: u32,
    ctx: blob::Context,
    data: Zeroizing<Vec<u8>>,
}

const OVERHEAD: usize = blob::HEADER_LEN + 16;

impl CipherOp for Sealing {
    fn update(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if self.data.len().saturating_add(input.len()) > blob::MAX_PLAINTEXT {
            return Err(Error::DataLenRange);
        }
        self.data.extend_from_slice(input);
        Ok(Zeroizing::new(Vec::new()))
    }
    fn finish(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        Ok(Zeroizing::new(blob::seal(&self.id, self.version, &self.key, &self.ctx, &self.data)?))
    }
    fn update_len(&self, _: usize) -> usize {
        0
    }
    fn finish_len(&self) -> usize {
        self.data.len() + OVERHEAD
    }
    fn one_shot_len(&self, n: usize) -> usize {
        n + OVERHEAD
    }
    fn boxed_clone(&self) -> Box<dyn CipherOp> {
        Box::new(self.clone())
    }
}

impl Unit for KmsEncrypt {
    fn ty(&self) -> CK_MECHANISM_TYPE {
        CKM_KMSTOKEN_ENCRYPT
    }
    fn info(&self) -> Info {
        Info { min_key: 32, max_key: 32, flags: CKF_ENCRYPT | CKF_WRAP }
    }
    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        &[CKK_AES]
    }
    fn encrypt(&self, key: &Key, p: &Param) -> Result<Box<dyn CipherOp>> {
        if key.value.len() != 32 {
            return Err(Error::KeySizeRange);
        }
        let (id, version) = identity(key)?;
        Ok(Box::new(Sealing {
            key: Zeroizing::new(key.value.to_vec()),
            id,
            version,
            ctx: context(p)?,
            data: Zeroizing::new(Vec::new()),
        }))
    }
    fn wrap(&self, wrapping: &Key, p: &Param, key_value: &[u8]) -> Result<Vec<u8>> {
        let (id, version) = identity(wrapping)?;
        blob::seal(&id, version, wrapping.value, &context(p)?, key_value).map_err(|e| match e {
            Error::DataLenRange => Error::KeyNotWrappable,
            e => e,
        })
    }
}

/// Listed for C_GetMechanismInfo; the KMS layer serves it (see `kms::envelope`).
struct KmsDecrypt;

impl Unit for KmsDecrypt {
    fn ty(&self) -> CK_MECHANISM_TYPE {
        CKM_KMSTOKEN_DECRYPT
    }
    fn info(&self) -> Info {
        Info { min_key: 32, max_key: 32, flags: CKF_DECRYPT | CKF_UNWRAP }
    }
    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        &[CKK_AES]
    }
}

pub static UNITS: &[&dyn Unit] = &[&KmsEncrypt, &KmsDecrypt];
