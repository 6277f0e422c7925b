//! The `kms` face's envelope calls: KMS Encrypt and Decrypt of a ciphertext blob under a
//! KMS key, through the same gate as the C functions.

use super::*;

impl Library {
    /// KMS Encrypt: the blob of `plaintext` under token key `key`, on behalf of
    /// `operation` (Encrypt, GenerateDataKey, ReEncryptTo...): the action the key policy
    /// is asked and the audit record names.
    pub fn kms_encrypt(
        &self,
        h: CK_SESSION_HANDLE,
        key: u64,
        ctx: &kms::blob::Context,
        plaintext: &[u8],
        operation: Action,
    ) -> Result<Vec<u8>> {
        let s = self.session(h)?;
        let s = s.lock();
        let unit = self.registry.lookup(crate::vendor::CKM_KMSTOKEN_ENCRYPT)?;
        let obj = Self::key_for(&s, key, KeyUse::Encrypt, unit, ctx, Some(operation))?;
        let (id, version) = (kms::key_id(&obj), obj.ulong(crate::vendor::CKA_KMSTOKEN_KEY_VERSION).unwrap_or(1));
        let id = uuid::Uuid::parse_str(&id).map_err(|_| Error::KeyTypeInconsistent)?;
        kms::blob::seal(&id, version as u32, s.token.usable_value(&obj)?, ctx, plaintext)
    }

    /// KMS Decrypt on behalf of `operation` (Decrypt, ReEncryptFrom): the plaintext of a
    /// blob and the key that made it.
    pub fn kms_decrypt(
        &self,
        h: CK_SESSION_HANDLE,
        expected: Option<&str>,
        ctx: &kms::blob::Context,
        blob: &[u8],
        operation: Action,
    ) -> Result<(zeroize::Zeroizing<Vec<u8>>, Arc<Object>)> {
        let token = self.token_of(h)?.0;
        let unit = self.registry.lookup(crate::vendor::CKM_KMSTOKEN_DECRYPT)?;
        kms::envelope::open(&token, unit, expected, ctx, blob, Some(operation))
    }
}
