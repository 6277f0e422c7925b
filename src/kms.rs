//! The KMS layer: every use of a key passes `authorize` before a mechanism runs. Today it
//! enforces the PKCS#11 usage rules (key class and type, CKA_ENCRYPT and friends,
//! CKA_ALLOWED_MECHANISMS); key state, policy and the audit trail hook in here.

use crate::error::{Error, Result};
use crate::mech::Unit;
use crate::object::Object;
use cryptoki_sys::*;

/// What a caller wants to do with a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyUse {
    Encrypt,
    Decrypt,
    Sign,
    Verify,
    Wrap,
    Unwrap,
    Digest,
}

impl KeyUse {
    /// The attribute that must be TRUE on the key.
    fn attribute(self) -> Option<CK_ATTRIBUTE_TYPE> {
        Some(match self {
            KeyUse::Encrypt => CKA_ENCRYPT,
            KeyUse::Decrypt => CKA_DECRYPT,
            KeyUse::Sign => CKA_SIGN,
            KeyUse::Verify => CKA_VERIFY,
            KeyUse::Wrap => CKA_WRAP,
            KeyUse::Unwrap => CKA_UNWRAP,
            KeyUse::Digest => return None,
        })
    }
}

/// Decides whether `key` may be used for `what` with mechanism `unit`.
pub fn authorize(key: &Object, what: KeyUse, unit: &dyn Unit) -> Result<()> {
    if key.class() != CKO_SECRET_KEY {
        return Err(Error::KeyTypeInconsistent);
    }
    let key_type = key.key_type().ok_or(Error::KeyTypeInconsistent)?;
    if what != KeyUse::Digest && !unit.key_types().contains(&key_type) {
        return Err(Error::KeyTypeInconsistent);
    }
    if let Some(attr) = what.attribute() {
        if !key.bool(attr) {
            return Err(Error::KeyFunctionNotPermitted);
        }
    }
    if let Some(allowed) = key.allowed_mechanisms() {
        if !allowed.contains(&unit.ty()) {
            return Err(Error::MechanismInvalid);
        }
    }
    Ok(())
}
