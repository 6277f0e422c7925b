//! The asymmetric and MAC faces of `kmstoken kms`: sign, verify, get-public-key,
//! generate-mac and verify-mac, with AWS's algorithm names and encodings (ECDSA signatures
//! as DER, public keys as SPKI DER) over the module's mechanisms.

use crate::crypto::{digest_info, Hash};
use crate::kms::spec::{self, Algorithm, MessageType, Scheme};
use crate::kms::{lifecycle::KmsResult, AwsError, KmsError};
use crate::mech::{Mechanism, Param};
use crate::object::Object;
use cryptoki_sys::*;
use der::asn1::{BitStringRef, OctetStringRef, UintRef};
use der::{Decode, Encode, Sequence};

/// The parameters Sign and Verify share.
#[derive(clap::Args)]
pub struct SignArgs {
    #[arg(long)]
    pub key_id: String,
    #[arg(long)]
    pub message: String,
    /// RAW (default) or DIGEST.
    #[arg(long)]
    pub message_type: Option<String>,
    #[arg(long)]
    pub signing_algorithm: String,
}

/// What an AWS signing algorithm means in PKCS#11 terms, for a RAW message, a DIGEST or
/// ML-DSA's μ (EXTERNAL_MU: 64 bytes, checked as a SHA-512 digest's length is).
pub fn signing_mechanism(alg: &str, message_type: MessageType) -> KmsResult<(Mechanism, Option<Hash>)> {
    let unsupported = || KmsError::new(AwsError::Validation, format!("SigningAlgorithm {alg} is not supported"));
    let (scheme, bits) = Algorithm::parse(alg).and_then(Algorithm::signing).ok_or_else(unsupported)?;
    let digest = match (message_type, scheme) {
        (MessageType::ExternalMu, Scheme::MlDsa) => {
            return Ok((Mechanism { ty: CKM_ML_DSA, param: Param::MlDsaExternalMu }, Some(Hash::Sha512)))
        }
        (MessageType::ExternalMu, _) => {
            return Err(KmsError::new(AwsError::Validation, "MessageType EXTERNAL_MU is for ML-DSA keys only"))
        }
        (MessageType::Digest, Scheme::MlDsa) => {
            return Err(KmsError::new(AwsError::Validation, format!("{alg} takes MessageType RAW or EXTERNAL_MU")))
        }
        (t, _) => t == MessageType::Digest,
    };
    let hash = match bits {
        256 => Hash::Sha256,
        384 => Hash::Sha384,
        _ => Hash::Sha512,
    };
    let (hash_mech, mgf) = match hash {
        Hash::Sha256 => (CKM_SHA256, CKG_MGF1_SHA256),
        Hash::Sha384 => (CKM_SHA384, CKG_MGF1_SHA384),
        _ => (CKM_SHA512, CKG_MGF1_SHA512),
    };
    let pss = Param::Pss { hash: hash_mech, mgf, salt_len: hash.output_len() as u64 };
    let m = |ty, param| Mechanism { ty, param };
    Ok(match (scheme, digest) {
        (Scheme::Ecdsa, false) => {
            (m([CKM_ECDSA_SHA256, CKM_ECDSA_SHA384, CKM_ECDSA_SHA512][idx(hash)], Param::None), None)
        }
        (Scheme::Ecdsa, true) => (m(CKM_ECDSA, Param::None), Some(hash)),
        (Scheme::Pkcs1, false) => {
            (m([CKM_SHA256_RSA_PKCS, CKM_SHA384_RSA_PKCS, CKM_SHA512_RSA_PKCS][idx(hash)], Param::None), None)
        }
        (Scheme::Pkcs1, true) => (m(CKM_RSA_PKCS, Param::None), Some(hash)),
        (Scheme::Pss, false) => {
            (m([CKM_SHA256_RSA_PKCS_PSS, CKM_SHA384_RSA_PKCS_PSS, CKM_SHA512_RSA_PKCS_PSS][idx(hash)], pss), None)
        }
        (Scheme::Pss, true) => (m(CKM_RSA_PKCS_PSS, pss), Some(hash)),
        (Scheme::Ed25519, false) => (m(CKM_EDDSA, Param::None), None),
        (Scheme::Ed25519, true) => {
            return Err(KmsError::new(AwsError::Validation, format!("SigningAlgorithm {alg} takes MessageType RAW")))
        }
        (Scheme::Ed25519Ph, false) => (m(CKM_EDDSA, Param::Eddsa { prehash: true, context: Vec::new() }), None),
        (Scheme::Ed25519Ph, true) => (m(CKM_EDDSA, Param::Ed25519phDigest), Some(hash)),
        (Scheme::MlDsa, _) => (m(CKM_ML_DSA, Param::None), None),
    })
}

fn idx(h: Hash) -> usize {
    match h {
        Hash::Sha256 => 0,
        Hash::Sha384 => 1,
        _ => 2,
    }
}

/// The bytes given to the mechanism: the message, or for MessageType DIGEST the digest
/// (checked for length), wrapped in a DigestInfo for PKCS#1 v1.5.
pub fn signing_input(mech: &Mechanism, digest_of: Option<Hash>, message: &[u8]) -> KmsResult<Vec<u8>> {
    if message.is_empty() || message.len() > 4096 {
        return Err(KmsError::new(AwsError::Validation, "Message must be 1 to 4096 bytes"));
    }
    let Some(hash) = digest_of else { return Ok(message.to_vec()) };
    if message.len() != hash.output_len() {
        return Err(KmsError::new(
            AwsError::Validation,
            format!("A DIGEST or EXTERNAL_MU message must be {} bytes for this algorithm", hash.output_len()),
        ));
    }
    Ok(if mech.ty == CKM_RSA_PKCS { digest_info(hash, message) } else { message.to_vec() })
}

#[derive(Sequence)]
struct EcdsaSig<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// PKCS#11's r||s as the DER SEQUENCE that AWS returns.
pub fn ecdsa_to_der(rs: &[u8]) -> KmsResult<Vec<u8>> {
    let (r, s) = rs.split_at(rs.len() / 2);
    let bad = |_| KmsError::new(AwsError::KmsInternal, "signature encoding");
    EcdsaSig { r: UintRef::new(r).map_err(bad)?, s: UintRef::new(s).map_err(bad)? }.to_der().map_err(bad)
}

/// An AWS (DER) ECDSA signature as r||s of `width` bytes each.
pub fn ecdsa_from_der(der: &[u8], width: usize) -> Option<Vec<u8>> {
    let sig = EcdsaSig::from_der(der).ok()?;
    let mut out = vec![0u8; 2 * width];
    for (i, v) in [sig.r.as_bytes(), sig.s.as_bytes()].into_iter().enumerate() {
        if v.len() > width {
            return None;
        }
        out[(i + 1) * width - v.len()..(i + 1) * width].copy_from_slice(v);
    }
    Some(out)
}

/// The field width of an EC key, from its CKA_EC_PARAMS.
pub fn ec_width(obj: &Object) -> usize {
    match obj.get_raw(CKA_EC_PARAMS) {
        Some(p) if p == spec::P384 => 48,
        Some(p) if p == spec::P521 => 66,
        _ => 32,
    }
}

/// The point of a peer's public key for ECDH with `key`: a DER SubjectPublicKeyInfo of an
/// EC key on the same curve, as DeriveSharedSecret takes it.
pub fn peer_point(key: &Object, spki_der: &[u8]) -> KmsResult<Vec<u8>> {
    let invalid = || {
        KmsError::new(
            AwsError::Validation,
            "PublicKey must be a DER SubjectPublicKeyInfo of an EC key on the curve of the KMS key",
        )
    };
    let info = spki::SubjectPublicKeyInfoRef::from_der(spki_der).map_err(|_| invalid())?;
    let params = info.algorithm.parameters.map(|p| p.to_der()).transpose().map_err(|_| invalid())?;
    if info.algorithm.oid != der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1")
        || params.as_deref() != key.get_raw(CKA_EC_PARAMS)
    {
        return Err(invalid());
    }
    info.subject_public_key.as_bytes().map(<[u8]>::to_vec).ok_or_else(invalid)
}

/// The SubjectPublicKeyInfo DER of a public key object.
pub fn spki(obj: &Object) -> KmsResult<Vec<u8>> {
    let bad = |_| KmsError::new(AwsError::KmsInternal, "public key encoding");
    let missing = || KmsError::new(AwsError::UnsupportedOperation, "This key has no public key");
    match obj.key_type() {
        Some(CKK_RSA) => {
            let n = obj.get_raw(CKA_MODULUS).ok_or_else(missing)?;
            let e = obj.get_raw(CKA_PUBLIC_EXPONENT).ok_or_else(missing)?;
            let key = pkcs1::RsaPublicKey {
                modulus: UintRef::new(n).map_err(bad)?,
                public_exponent: UintRef::new(e).map_err(bad)?,
            };
            let der = key.to_der().map_err(bad)?;
            let info = spki::SubjectPublicKeyInfoRef {
                algorithm: spki::AlgorithmIdentifierRef {
                    oid: der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1"),
                    parameters: Some(der::asn1::AnyRef::NULL),
                },
                subject_public_key: BitStringRef::from_bytes(&der).map_err(bad)?,
            };
            info.to_der().map_err(bad)
        }
        Some(CKK_EC) => {
            let params = obj.get_raw(CKA_EC_PARAMS).ok_or_else(missing)?;
            let point = obj.get_raw(CKA_EC_POINT).ok_or_else(missing)?;
            let point =
                OctetStringRef::from_der(point).map(|o| o.as_bytes().to_vec()).unwrap_or_else(|_| point.to_vec());
            let curve = der::asn1::AnyRef::from_der(params).map_err(bad)?;
            let info = spki::SubjectPublicKeyInfoRef {
                algorithm: spki::AlgorithmIdentifierRef {
                    oid: der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1"),
                    parameters: Some(curve),
                },
                subject_public_key: BitStringRef::from_bytes(&point).map_err(bad)?,
            };
            info.to_der().map_err(bad)
        }
        Some(CKK_ML_DSA) => {
            // RFC 9881: id-ml-dsa-44/65/87, no parameters, the public key's encoding.
            let oid = match obj.ulong(CKA_PARAMETER_SET) {
                Some(CKP_ML_DSA_44) => "2.16.840.1.101.3.4.3.17",
                Some(CKP_ML_DSA_65) => "2.16.840.1.101.3.4.3.18",
                Some(CKP_ML_DSA_87) => "2.16.840.1.101.3.4.3.19",
                _ => return Err(missing()),
            };
            let key = obj.get_raw(CKA_VALUE).ok_or_else(missing)?;
            let info = spki::SubjectPublicKeyInfoRef {
                algorithm: spki::AlgorithmIdentifierRef {
                    oid: der::asn1::ObjectIdentifier::new_unwrap(oid),
                    parameters: None,
                },
                subject_public_key: BitStringRef::from_bytes(key).map_err(bad)?,
            };
            info.to_der().map_err(bad)
        }
        Some(CKK_EC_EDWARDS) => {
            // RFC 8410: id-Ed25519, no parameters, the 32-byte public key.
            let point = obj.get_raw(CKA_EC_POINT).ok_or_else(missing)?;
            let point = crate::mech::octet_point(point, crate::crypto::ED25519_KEY_LEN).ok_or_else(missing)?;
            let info = spki::SubjectPublicKeyInfoRef {
                algorithm: spki::AlgorithmIdentifierRef {
                    oid: der::asn1::ObjectIdentifier::new_unwrap("1.3.101.112"),
                    parameters: None,
                },
                subject_public_key: BitStringRef::from_bytes(point).map_err(bad)?,
            };
            info.to_der().map_err(bad)
        }
        _ => Err(missing()),
    }
}

/// The AWS MAC algorithm's mechanism.
pub fn mac_mechanism(alg: &str) -> KmsResult<Mechanism> {
    let ty = Algorithm::parse(alg)
        .and_then(Algorithm::mac_mechanism)
        .ok_or_else(|| KmsError::new(AwsError::Validation, format!("MacAlgorithm {alg} is not supported")))?;
    Ok(Mechanism { ty, param: Param::None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_der_round_trip() {
        let mut rs = vec![0u8; 64];
        rs[0] = 0x80; // high bit: DER needs a leading zero
        rs[33] = 5; // s with leading zero bytes
        let der = ecdsa_to_der(&rs).unwrap();
        assert_eq!(ecdsa_from_der(&der, 32).unwrap(), rs);
        assert!(ecdsa_from_der(b"\x30\x00", 32).is_none());
    }
}
