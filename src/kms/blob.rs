//! The KMS ciphertext blob: self-describing, so that decryption needs nothing but the
//! blob (and the encryption context it was made with).
//!
//! ```text
//! offset  size  field
//! 0       4     magic "KMST"
//! 4       1     format version (1)
//! 5       1     algorithm (1 = AES-256-GCM)
//! 6       16    key id (the UUID's bytes)
//! 22      4     key material version (big-endian)
//! 26      12    IV (random)
//! 38      n     ciphertext
//! 38+n    16    GCM tag
//! ```
//! The 38-byte header and the encryption context are the GCM associated data, so neither
//! can be changed without the tag failing. The context is encoded without ambiguity:
//! a 4-byte big-endian count, then for each pair sorted by key, the key and the value,
//! each as a 4-byte big-endian length and the UTF-8 bytes.

use crate::crypto;
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

pub const MAGIC: &[u8; 4] = b"KMST";
pub const VERSION: u8 = 1;
pub const ALG_AES_256_GCM: u8 = 1;
pub const HEADER_LEN: usize = 38;
const TAG_LEN: usize = 16;
/// The most a KMS Encrypt takes, as in AWS.
pub const MAX_PLAINTEXT: usize = 4096;

pub type Context = BTreeMap<String, String>;

/// What the header says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub key_id: uuid::Uuid,
    pub key_version: u32,
}

fn context_bytes(ctx: &Context) -> Vec<u8> {
    let mut out = (ctx.len() as u32).to_be_bytes().to_vec();
    for (k, v) in ctx {
        for s in [k, v] {
            out.extend_from_slice(&(s.len() as u32).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
    }
    out
}

/// Reads an encryption context given as JSON text (`{"k":"v"}`); empty means none.
pub fn parse_context(json: &[u8]) -> Result<Context> {
    if json.iter().all(u8::is_ascii_whitespace) {
        return Ok(Context::new());
    }
    let v: serde_json::Value = serde_json::from_slice(json).map_err(|_| Error::MechanismParamInvalid)?;
    let obj = v.as_object().ok_or(Error::MechanismParamInvalid)?;
    obj.iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k.clone(), s.clone())),
            // "Non-string types are interpreted as strings", as AWS does.
            other => Ok((k.clone(), other.to_string())),
        })
        .collect()
}

/// Seals `plaintext` under `key` (AES-256) for key `key_id`, material `version`.
pub fn seal(key_id: &uuid::Uuid, version: u32, key: &[u8], ctx: &Context, plaintext: &[u8]) -> Result<Vec<u8>> {
    if plaintext.is_empty() || plaintext.len() > MAX_PLAINTEXT {
        return Err(Error::DataLenRange);
    }
    if key.len() != 32 {
        return Err(Error::KeyTypeInconsistent);
    }
    let mut iv = [0u8; 12];
    crypto::random(&mut iv)?;
    let mut blob = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
    blob.extend_from_slice(MAGIC);
    blob.push(VERSION);
    blob.push(ALG_AES_256_GCM);
    blob.extend_from_slice(key_id.as_bytes());
    blob.extend_from_slice(&version.to_be_bytes());
    blob.extend_from_slice(&iv);
    let mut aad = blob[..HEADER_LEN].to_vec();
    aad.extend_from_slice(&context_bytes(ctx));
    blob.extend_from_slice(&crypto::gcm_seal(key, &iv, &aad, plaintext)?);
    Ok(blob)
}

/// Reads the header of a blob; anything that is not a blob of this format is
/// CKR_ENCRYPTED_DATA_INVALID (InvalidCiphertextException).
pub fn header(blob: &[u8]) -> Result<Header> {
    if blob.len() < HEADER_LEN + TAG_LEN + 1 || &blob[..4] != MAGIC || blob[4] != VERSION || blob[5] != ALG_AES_256_GCM
    {
        return Err(Error::EncryptedDataInvalid);
    }
    let key_id = uuid::Uuid::from_slice(&blob[6..22]).map_err(|_| Error::EncryptedDataInvalid)?;
    let key_version = u32::from_be_bytes([blob[22], blob[23], blob[24], blob[25]]);
    Ok(Header { key_id, key_version })
}

/// Opens a blob with the key its header names; a wrong key, context or any altered byte
/// fails the tag check (CKR_ENCRYPTED_DATA_INVALID).
pub fn open(key: &[u8], ctx: &Context, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    header(blob)?;
    let iv: &[u8; 12] = blob[26..HEADER_LEN].try_into().map_err(|_| Error::EncryptedDataInvalid)?;
    let mut aad = blob[..HEADER_LEN].to_vec();
    aad.extend_from_slice(&context_bytes(ctx));
    crypto::gcm_open(key, iv, &aad, &blob[HEADER_LEN..]).map_err(|_| Error::EncryptedDataInvalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> Context {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn round_trip_and_binding() {
        let key = [7u8; 32];
        let id = uuid::Uuid::new_v4();
        let c = ctx(&[("purpose", "test"), ("team", "a")]);
        let blob = seal(&id, 3, &key, &c, b"hello").unwrap();
        assert_eq!(header(&blob).unwrap(), Header { key_id: id, key_version: 3 });
        assert_eq!(open(&key, &c, &blob).unwrap().as_slice(), b"hello");
        // Another context, another key, an altered header or body: refused.
        assert_eq!(open(&key, &ctx(&[("purpose", "test")]), &blob).unwrap_err(), Error::EncryptedDataInvalid);
        assert_eq!(open(&[8u8; 32], &c, &blob).unwrap_err(), Error::EncryptedDataInvalid);
        for i in [0, 5, 10, 23, 30, 40, blob.len() - 1] {
            let mut bad = blob.clone();
            bad[i] ^= 1;
            assert_eq!(open(&key, &c, &bad).unwrap_err(), Error::EncryptedDataInvalid, "byte {i}");
        }
        assert_eq!(header(&blob[..20]).unwrap_err(), Error::EncryptedDataInvalid);
    }

    #[test]
    fn context_encoding_is_unambiguous() {
        // local-kms's concatenation made these two equal; the length prefixes keep them apart.
        assert_ne!(context_bytes(&ctx(&[("ab", "c")])), context_bytes(&ctx(&[("a", "bc")])));
        let key = [1u8; 32];
        let id = uuid::Uuid::new_v4();
        let blob = seal(&id, 1, &key, &ctx(&[("ab", "c")]), b"x").unwrap();
        assert!(open(&key, &ctx(&[("a", "bc")]), &blob).is_err());
        assert_eq!(parse_context(br#"{"b":"2","a":"1"}"#).unwrap(), ctx(&[("a", "1"), ("b", "2")]));
        assert_eq!(parse_context(b"").unwrap(), Context::new());
        assert_eq!(parse_context(b"[1]").unwrap_err(), Error::MechanismParamInvalid);
    }

    #[test]
    fn plaintext_limits() {
        let id = uuid::Uuid::new_v4();
        assert!(seal(&id, 1, &[1; 32], &Context::new(), &[0; MAX_PLAINTEXT]).is_ok());
        assert_eq!(seal(&id, 1, &[1; 32], &Context::new(), &[0; MAX_PLAINTEXT + 1]).unwrap_err(), Error::DataLenRange);
        assert_eq!(seal(&id, 1, &[1; 32], &Context::new(), b"").unwrap_err(), Error::DataLenRange);
    }
}
