//! X25519 keys (PKCS#11 3.0, CKK_EC_MONTGOMERY): key-pair generation
//! (CKM_EC_MONTGOMERY_KEY_PAIR_GEN), import, and the shared secret that CKM_ECDH1_DERIVE
//! (src/mech/ec.rs) makes with them. X448 is not served: aws-lc has no X448, and
//! CKA_EC_PARAMS naming it are CKR_DOMAIN_PARAMS_INVALID.
//!
//! CKA_EC_PARAMS name the curve by OID (id-X25519, RFC 8410) or by the printable name
//! `curve25519` (the form PKCS#11 3.0 gives); the token keeps the form it was given.
//! CKA_EC_POINT holds the DER OCTET STRING of the 32-byte public key (raw 32 bytes are
//! taken on import); a private key's CKA_VALUE is the 32-byte string of RFC 7748.

use super::{Info, Key, KeyPair, Unit};
use crate::crypto::{self, X25519_KEY_LEN};
use crate::error::{Error, Result};
use crate::object::{ck_ulong, Object, Template};
use cryptoki_sys::*;
use zeroize::Zeroizing;

/// id-X25519 (1.3.101.110).
pub const X25519_PARAMS: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x6e];

/// Whether CKA_EC_PARAMS name X25519 (by OID or by name).
pub fn is_x25519(params: &[u8]) -> bool {
    super::names_curve(params, "1.3.101.110", "curve25519")
}

fn decode_point(v: &[u8]) -> Option<&[u8]> {
    super::octet_point(v, X25519_KEY_LEN)
}

/// Checks an imported X25519 key and writes its point in the token's form.
pub fn check_import(obj: &mut Object) -> Result<()> {
    if !obj.get_raw(CKA_EC_PARAMS).is_some_and(is_x25519) {
        return Err(Error::DomainParamsInvalid);
    }
    match obj.class() {
        CKO_PUBLIC_KEY => {
            let point = obj.get_raw(CKA_EC_POINT).and_then(decode_point).ok_or(Error::AttributeValueInvalid)?.to_vec();
            obj.set(CKA_EC_POINT, super::encode_octet_point(&point)?);
        }
        CKO_PRIVATE_KEY => {
            let value = obj.get_raw(CKA_VALUE).unwrap_or_default();
            crypto::x25519_public(value).map_err(|_| Error::AttributeValueInvalid)?;
        }
        _ => {}
    }
    Ok(())
}

/// The X25519 shared secret of a private key `base` with the peer's public value.
pub fn agree(base: &Key, public_data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let obj = base.attrs.ok_or_else(|| Error::general("X25519 key passed without its object"))?;
    if obj.class() != CKO_PRIVATE_KEY || !obj.get_raw(CKA_EC_PARAMS).is_some_and(is_x25519) {
        return Err(Error::KeyTypeInconsistent);
    }
    let peer = decode_point(public_data).ok_or(Error::MechanismParamInvalid)?;
    crypto::x25519_agree(base.value, peer)
}

/// CKM_EC_MONTGOMERY_KEY_PAIR_GEN: the curve from CKA_EC_PARAMS of the public template (or
/// the private one; the two must then agree).
struct MontgomeryKeyPairGen;

impl Unit for MontgomeryKeyPairGen {
    fn ty(&self) -> CK_MECHANISM_TYPE {
        CKM_EC_MONTGOMERY_KEY_PAIR_GEN
    }
    fn info(&self) -> Info {
        Info { min_key: 255, max_key: 255, flags: CKF_GENERATE_KEY_PAIR | CKF_EC_NAMEDCURVE | CKF_EC_CURVENAME }
    }
    fn generate_key_pair(&self, public: &Template, private: &Template) -> Result<KeyPair> {
        let params = super::pair_params(public, private)?;
        if !is_x25519(params) {
            return Err(Error::DomainParamsInvalid);
        }
        let secret = crypto::random_secret(X25519_KEY_LEN)?;
        let point = super::encode_octet_point(&crypto::x25519_public(&secret)?)?;
        Ok(KeyPair {
            public: vec![
                (CKA_CLASS, ck_ulong(CKO_PUBLIC_KEY)),
                (CKA_KEY_TYPE, ck_ulong(CKK_EC_MONTGOMERY)),
                (CKA_EC_PARAMS, params.to_vec()),
                (CKA_EC_POINT, point),
            ],
            private: vec![
                (CKA_CLASS, ck_ulong(CKO_PRIVATE_KEY)),
                (CKA_KEY_TYPE, ck_ulong(CKK_EC_MONTGOMERY)),
                (CKA_EC_PARAMS, params.to_vec()),
                (CKA_VALUE, secret.to_vec()),
            ],
        })
    }
}

pub static UNITS: &[&dyn Unit] = &[&MontgomeryKeyPairGen];

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// RFC 7748 section 6.1: Alice's and Bob's keys and their shared secret.
    #[test]
    fn rfc7748_vectors() {
        let alice = h("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let alice_public = h("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
        let bob = h("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
        let bob_public = h("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
        let shared = h("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
        assert_eq!(crypto::x25519_public(&alice).unwrap(), alice_public);
        assert_eq!(crypto::x25519_public(&bob).unwrap(), bob_public);
        assert_eq!(crypto::x25519_agree(&alice, &bob_public).unwrap().as_slice(), shared.as_slice());
        assert_eq!(crypto::x25519_agree(&bob, &alice_public).unwrap().as_slice(), shared.as_slice());
        // A small-order peer (the zero point) gives the all-zero secret: refused.
        assert_eq!(crypto::x25519_agree(&alice, &[0; 32]).err(), Some(Error::MechanismParamInvalid));
        assert_eq!(crypto::x25519_agree(&alice, &[9; 31]).err(), Some(Error::MechanismParamInvalid));
    }

    #[test]
    fn curve_names() {
        assert!(is_x25519(X25519_PARAMS));
        assert!(is_x25519(&[0x13, 0x0a, b'c', b'u', b'r', b'v', b'e', b'2', b'5', b'5', b'1', b'9']));
        assert!(!is_x25519(&[0x06, 0x03, 0x2b, 0x65, 0x6f])); // X448
        assert!(!is_x25519(super::super::eddsa::ED25519_PARAMS));
    }
}
