//! Decryption of KMS ciphertext blobs: the key and its material version come from the
//! blob, so the caller needs no key handle. Used by CKM_KMSTOKEN_DECRYPT and by the
//! command line's decrypt and re-encrypt.

use super::blob::{self, Context};
use super::gate::{self, Action};
use super::{key_id, Face, KeyUse};
use crate::error::{Error, Result};
use crate::mech::{CipherOp, Unit};
use crate::object::Object;
use crate::token::Token;
use crate::vendor::*;
use cryptoki_sys::*;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Opens `data`: finds the key object of the blob's key id and version, passes the KMS
/// gate (state, usage, audit) with it, and checks the tag. `expected`: the key id the
/// caller named, if any; another key made the blob → IncorrectKey (returned as
/// CKR_KEY_HANDLE_INVALID). A blob whose key this token does not have, or that fails its
/// check, is CKR_ENCRYPTED_DATA_INVALID.
pub fn open(
    token: &Token,
    unit: &dyn Unit,
    expected: Option<&str>,
    ctx: &Context,
    data: &[u8],
    operation: Option<Action>,
) -> Result<(Zeroizing<Vec<u8>>, Arc<Object>)> {
    let header = blob::header(data)?;
    let id = header.key_id.to_string();
    if expected.is_some_and(|e| e != id) {
        return Err(Error::KeyHandleInvalid);
    }
    let mut found = None;
    for h in token.objects_of_key(&id)? {
        let o = token.object_any(h)?;
        if o.class() == CKO_SECRET_KEY && o.ulong(CKA_KMSTOKEN_KEY_VERSION) == Some(header.key_version as u64) {
            found = Some((h, o));
            break;
        }
    }
    let (h, obj) = found.ok_or(Error::EncryptedDataInvalid)?;
    let obj = super::import::expire_if_due(token, h, obj)?;
    let action = operation.unwrap_or(Action::Decrypt);
    gate::check(token, &gate::Request::use_of(&obj, action, Face::Kms, (KeyUse::Decrypt, unit), ctx))?;
    let key = obj.get_raw(CKA_VALUE).ok_or(Error::UserNotLoggedIn)?;
    let plain = blob::open(key, ctx, data)?;
    Ok((plain, obj))
}

/// CKM_KMSTOKEN_DECRYPT in progress: buffers the blob and opens it at the end.
pub struct BlobDecrypt {
    token: Arc<Token>,
    unit: &'static dyn Unit,
    expected: Option<String>,
    ctx: Context,
    data: Vec<u8>,
}

impl BlobDecrypt {
    pub fn new(token: Arc<Token>, unit: &'static dyn Unit, expected: Option<&Object>, ctx: Context) -> BlobDecrypt {
        BlobDecrypt { token, unit, expected: expected.map(key_id), ctx, data: Vec::new() }
    }
}

const MAX_BLOB: usize = blob::HEADER_LEN + blob::MAX_PLAINTEXT + 16;

impl CipherOp for BlobDecrypt {
    fn update(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if self.data.len() + input.len() > MAX_BLOB {
            return Err(Error::EncryptedDataLenRange);
        }
        self.data.extend_from_slice(input);
        Ok(Zeroizing::new(Vec::new()))
    }
    fn finish(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        open(&self.token, self.unit, self.expected.as_deref(), &self.ctx, &self.data, None).map(|(p, _)| p)
    }
    fn update_len(&self, _: usize) -> usize {
        0
    }
    fn finish_len(&self) -> usize {
        self.data.len().saturating_sub(blob::HEADER_LEN + 16)
    }
    fn one_shot_len(&self, n: usize) -> usize {
        n.saturating_sub(blob::HEADER_LEN + 16)
    }
    fn boxed_clone(&self) -> Box<dyn CipherOp> {
        Box::new(BlobDecrypt {
            token: self.token.clone(),
            unit: self.unit,
            expected: self.expected.clone(),
            ctx: self.ctx.clone(),
            data: self.data.clone(),
        })
    }
}
