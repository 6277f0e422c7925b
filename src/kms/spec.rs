//! The KMS vocabulary in one place: the key spec table (each AWS key spec with its PKCS#11
//! key type and size, the usages it may have, and the algorithms of each usage), the
//! algorithm names, the origins and the data key specs. Every other module names these
//! through the enums here; the AWS spellings appear nowhere else.

use super::lifecycle::KmsResult;
use super::meta::KeyUsage;
use super::{AwsError, KmsError};
use crate::object::Object;
use cryptoki_sys::*;

/// CKA_EC_PARAMS of the named curves (the DER of their OIDs).
pub const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
pub const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
pub const P521: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
pub const SECP256K1: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];

/// The key specs of the AWS KMS service model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySpec {
    SymmetricDefault,
    Hmac224,
    Hmac256,
    Hmac384,
    Hmac512,
    Rsa2048,
    Rsa3072,
    Rsa4096,
    EccNistP256,
    EccNistP384,
    EccNistP521,
    EccSecgP256k1,
    EccNistEdwards25519,
    MlDsa44,
    MlDsa65,
    MlDsa87,
}

/// What a key of a spec is in PKCS#11 terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Material {
    /// CKK_AES of this many bytes.
    Aes(usize),
    /// CKK_GENERIC_SECRET of this many bytes (an HMAC key).
    Hmac(usize),
    /// CKK_RSA of this many bits.
    Rsa(usize),
    /// CKK_EC on the curve of these CKA_EC_PARAMS.
    Ec(&'static [u8]),
    /// CKK_EC_EDWARDS on Ed25519.
    Ed25519,
    /// CKK_ML_DSA of this parameter set (CKP_ML_DSA_*).
    MlDsa(CK_ULONG),
}

/// A row of the key spec table.
pub struct Row {
    pub spec: KeySpec,
    pub name: &'static str,
    pub material: Material,
    /// The usages a key of the spec may have; the first is CreateKey's default.
    pub usages: &'static [KeyUsage],
    /// Whether `create-key` makes keys of it here (the rest arrives with more curves).
    pub creatable: bool,
    /// The lengths (bytes) of key material ImportKeyMaterial takes for it.
    pub import: Option<(usize, usize)>,
}

const ENC: &[KeyUsage] = &[KeyUsage::EncryptDecrypt];
const MAC: &[KeyUsage] = &[KeyUsage::GenerateVerifyMac];
const RSA: &[KeyUsage] = &[KeyUsage::EncryptDecrypt, KeyUsage::SignVerify];
const ECC: &[KeyUsage] = &[KeyUsage::SignVerify, KeyUsage::KeyAgreement];
const SIGN: &[KeyUsage] = &[KeyUsage::SignVerify];

const fn row(spec: KeySpec, name: &'static str, material: Material, usages: &'static [KeyUsage]) -> Row {
    Row { spec, name, material, usages, creatable: true, import: None }
}

/// The table.
pub const TABLE: [Row; 16] = [
    Row { import: Some((32, 32)), ..row(KeySpec::SymmetricDefault, "SYMMETRIC_DEFAULT", Material::Aes(32), ENC) },
    Row { import: Some((28, 64)), ..row(KeySpec::Hmac224, "HMAC_224", Material::Hmac(28), MAC) },
    Row { import: Some((32, 64)), ..row(KeySpec::Hmac256, "HMAC_256", Material::Hmac(32), MAC) },
    Row { import: Some((48, 128)), ..row(KeySpec::Hmac384, "HMAC_384", Material::Hmac(48), MAC) },
    Row { import: Some((64, 128)), ..row(KeySpec::Hmac512, "HMAC_512", Material::Hmac(64), MAC) },
    row(KeySpec::Rsa2048, "RSA_2048", Material::Rsa(2048), RSA),
    row(KeySpec::Rsa3072, "RSA_3072", Material::Rsa(3072), RSA),
    row(KeySpec::Rsa4096, "RSA_4096", Material::Rsa(4096), RSA),
    row(KeySpec::EccNistP256, "ECC_NIST_P256", Material::Ec(P256), ECC),
    row(KeySpec::EccNistP384, "ECC_NIST_P384", Material::Ec(P384), ECC),
    row(KeySpec::EccNistP521, "ECC_NIST_P521", Material::Ec(P521), ECC),
    // AWS KMS offers key agreement on the NIST curves only.
    row(KeySpec::EccSecgP256k1, "ECC_SECG_P256K1", Material::Ec(SECP256K1), SIGN),
    row(KeySpec::EccNistEdwards25519, "ECC_NIST_EDWARDS25519", Material::Ed25519, SIGN),
    row(KeySpec::MlDsa44, "ML_DSA_44", Material::MlDsa(CKP_ML_DSA_44), SIGN),
    row(KeySpec::MlDsa65, "ML_DSA_65", Material::MlDsa(CKP_ML_DSA_65), SIGN),
    row(KeySpec::MlDsa87, "ML_DSA_87", Material::MlDsa(CKP_ML_DSA_87), SIGN),
];

impl KeySpec {
    pub fn row(self) -> &'static Row {
        TABLE.iter().find(|r| r.spec == self).expect("every key spec has its row")
    }

    pub fn name(self) -> &'static str {
        self.row().name
    }

    pub fn parse(name: &str) -> Option<KeySpec> {
        TABLE.iter().find(|r| r.name == name).map(|r| r.spec)
    }

    /// The spec of a key object, when it is one of AWS's.
    pub fn of(obj: &Object) -> Option<KeySpec> {
        let material = match obj.key_type()? {
            CKK_AES => Material::Aes(obj.ulong(CKA_VALUE_LEN)? as usize),
            CKK_EC => Material::Ec(TABLE.iter().find_map(|r| match r.material {
                Material::Ec(p) if obj.get_raw(CKA_EC_PARAMS) == Some(p) => Some(p),
                _ => None,
            })?),
            CKK_EC_EDWARDS => Material::Ed25519,
            CKK_ML_DSA => Material::MlDsa(obj.ulong(CKA_PARAMETER_SET)?),
            CKK_RSA => Material::Rsa(modulus_bits(obj)),
            _ => Material::Hmac(obj.ulong(CKA_VALUE_LEN)? as usize),
        };
        TABLE.iter().find(|r| r.material == material).map(|r| r.spec)
    }

    /// The algorithms a key of this spec serves in `usage`.
    pub fn algorithms(self, usage: KeyUsage) -> &'static [Algorithm] {
        use Algorithm::*;
        use KeySpec::{
            EccNistEdwards25519, EccNistP256, EccNistP384, EccNistP521, EccSecgP256k1, Hmac224, Hmac256, Hmac384,
            Hmac512, MlDsa44, MlDsa65, MlDsa87, Rsa2048, Rsa3072, Rsa4096,
        };
        match (usage, self) {
            (KeyUsage::EncryptDecrypt, KeySpec::SymmetricDefault) => &[Algorithm::SymmetricDefault],
            (KeyUsage::EncryptDecrypt, Rsa2048 | Rsa3072 | Rsa4096) => &[RsaesOaepSha1, RsaesOaepSha256],
            (KeyUsage::SignVerify, Rsa2048 | Rsa3072 | Rsa4096) => &RSA_SIGNING,
            (KeyUsage::SignVerify, EccNistP256 | EccSecgP256k1) => &[EcdsaSha256],
            (KeyUsage::SignVerify, EccNistP384) => &[EcdsaSha384],
            (KeyUsage::SignVerify, EccNistP521) => &[EcdsaSha512],
            (KeyUsage::SignVerify, EccNistEdwards25519) => &[Ed25519Sha512, Ed25519PhSha512],
            (KeyUsage::SignVerify, MlDsa44 | MlDsa65 | MlDsa87) => &[MlDsaShake256],
            (KeyUsage::KeyAgreement, EccNistP256 | EccNistP384 | EccNistP521) => &[Ecdh],
            (KeyUsage::GenerateVerifyMac, Hmac224) => &[HmacSha224],
            (KeyUsage::GenerateVerifyMac, Hmac256) => &[HmacSha256],
            (KeyUsage::GenerateVerifyMac, Hmac384) => &[HmacSha384],
            (KeyUsage::GenerateVerifyMac, Hmac512) => &[HmacSha512],
            _ => &[],
        }
    }
}

fn modulus_bits(obj: &Object) -> usize {
    obj.get_raw(CKA_MODULUS).map(|m| m.iter().skip_while(|b| **b == 0).count() * 8).unwrap_or(0)
}

/// The key spec a key object records: AWS's name, or for the sizes only PKCS#11 clients
/// make (AES-128, RSA-1024, an HMAC key of 20 bytes, another curve) the same pattern, and
/// for the key types AWS has not (X25519, ML-KEM) their own names.
pub fn spec_name(obj: &Object) -> String {
    if let Some(spec) = KeySpec::of(obj) {
        return spec.name().to_string();
    }
    let len = obj.ulong(CKA_VALUE_LEN).unwrap_or(0);
    match obj.key_type() {
        Some(CKK_AES) => format!("AES_{}", len * 8),
        Some(CKK_EC) => "ECC".into(),
        Some(CKK_EC_MONTGOMERY) => "X25519".into(),
        Some(CKK_ML_KEM) => match obj.ulong(CKA_PARAMETER_SET) {
            Some(CKP_ML_KEM_512) => "ML_KEM_512".into(),
            Some(CKP_ML_KEM_768) => "ML_KEM_768".into(),
            _ => "ML_KEM_1024".into(),
        },
        Some(CKK_RSA) => format!("RSA_{}", modulus_bits(obj)),
        Some(_) => format!("HMAC_{}", len * 8),
        None => "UNKNOWN".into(),
    }
}

/// The algorithms a key serves in `usage`: its spec's, or for the sizes only PKCS#11
/// clients make, those of the spec of the same family.
pub fn algorithms_of(obj: &Object, usage: KeyUsage) -> &'static [Algorithm] {
    if let Some(spec) = KeySpec::of(obj) {
        return spec.algorithms(usage);
    }
    let like = match obj.key_type() {
        Some(CKK_AES) => KeySpec::SymmetricDefault,
        Some(CKK_RSA) => KeySpec::Rsa2048,
        Some(CKK_EC) if usage == KeyUsage::KeyAgreement => KeySpec::EccNistP256,
        Some(CKK_EC) | None => return &[],
        Some(_) => KeySpec::Hmac256,
    };
    like.algorithms(usage)
}

named_enum! {
    /// The algorithm names of the service model (encryption, signing, MAC, key agreement).
    pub enum Algorithm {
        SymmetricDefault => "SYMMETRIC_DEFAULT",
        RsaesOaepSha1 => "RSAES_OAEP_SHA_1",
        RsaesOaepSha256 => "RSAES_OAEP_SHA_256",
        RsassaPssSha256 => "RSASSA_PSS_SHA_256",
        RsassaPssSha384 => "RSASSA_PSS_SHA_384",
        RsassaPssSha512 => "RSASSA_PSS_SHA_512",
        RsassaPkcs1V15Sha256 => "RSASSA_PKCS1_V1_5_SHA_256",
        RsassaPkcs1V15Sha384 => "RSASSA_PKCS1_V1_5_SHA_384",
        RsassaPkcs1V15Sha512 => "RSASSA_PKCS1_V1_5_SHA_512",
        EcdsaSha256 => "ECDSA_SHA_256",
        EcdsaSha384 => "ECDSA_SHA_384",
        EcdsaSha512 => "ECDSA_SHA_512",
        Ed25519Sha512 => "ED25519_SHA_512",
        Ed25519PhSha512 => "ED25519_PH_SHA_512",
        MlDsaShake256 => "ML_DSA_SHAKE_256",
        HmacSha224 => "HMAC_SHA_224",
        HmacSha256 => "HMAC_SHA_256",
        HmacSha384 => "HMAC_SHA_384",
        HmacSha512 => "HMAC_SHA_512",
        Ecdh => "ECDH",
    }
}

const RSA_SIGNING: [Algorithm; 6] = [
    Algorithm::RsassaPssSha256,
    Algorithm::RsassaPssSha384,
    Algorithm::RsassaPssSha512,
    Algorithm::RsassaPkcs1V15Sha256,
    Algorithm::RsassaPkcs1V15Sha384,
    Algorithm::RsassaPkcs1V15Sha512,
];

/// How a signing algorithm signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Ecdsa,
    Pkcs1,
    Pss,
    Ed25519,
    Ed25519Ph,
    /// ML-DSA, which hashes the message itself (SHAKE256).
    MlDsa,
}

/// The family of an algorithm, with the KeyMetadata (and GetPublicKey) member listing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Encryption,
    Signing,
    Mac,
    KeyAgreement,
}

impl Family {
    pub fn member(self) -> &'static str {
        match self {
            Family::Encryption => "EncryptionAlgorithms",
            Family::Signing => "SigningAlgorithms",
            Family::Mac => "MacAlgorithms",
            Family::KeyAgreement => "KeyAgreementAlgorithms",
        }
    }
}

impl Algorithm {
    pub fn family(self) -> Family {
        use Algorithm::*;
        match self {
            SymmetricDefault | RsaesOaepSha1 | RsaesOaepSha256 => Family::Encryption,
            HmacSha224 | HmacSha256 | HmacSha384 | HmacSha512 => Family::Mac,
            Ecdh => Family::KeyAgreement,
            _ => Family::Signing,
        }
    }

    /// A signing algorithm's scheme and the bit length of its hash.
    pub fn signing(self) -> Option<(Scheme, usize)> {
        use Algorithm::*;
        Some(match self {
            RsassaPssSha256 => (Scheme::Pss, 256),
            RsassaPssSha384 => (Scheme::Pss, 384),
            RsassaPssSha512 => (Scheme::Pss, 512),
            RsassaPkcs1V15Sha256 => (Scheme::Pkcs1, 256),
            RsassaPkcs1V15Sha384 => (Scheme::Pkcs1, 384),
            RsassaPkcs1V15Sha512 => (Scheme::Pkcs1, 512),
            EcdsaSha256 => (Scheme::Ecdsa, 256),
            EcdsaSha384 => (Scheme::Ecdsa, 384),
            EcdsaSha512 => (Scheme::Ecdsa, 512),
            Ed25519Sha512 => (Scheme::Ed25519, 512),
            Ed25519PhSha512 => (Scheme::Ed25519Ph, 512),
            MlDsaShake256 => (Scheme::MlDsa, 256),
            _ => return None,
        })
    }

    /// A MAC algorithm's PKCS#11 mechanism.
    pub fn mac_mechanism(self) -> Option<CK_MECHANISM_TYPE> {
        use Algorithm::*;
        Some(match self {
            HmacSha224 => CKM_SHA224_HMAC,
            HmacSha256 => CKM_SHA256_HMAC,
            HmacSha384 => CKM_SHA384_HMAC,
            HmacSha512 => CKM_SHA512_HMAC,
            _ => return None,
        })
    }
}

named_enum! {
    /// Where a key's material came from.
    pub enum Origin {
        AwsKms => "AWS_KMS",
        External => "EXTERNAL",
    }
}

impl Origin {
    /// The origin a key object records.
    pub fn of(obj: &Object) -> Origin {
        match obj.get_raw(crate::vendor::CKA_KMSTOKEN_ORIGIN) {
            Some(v) if v == Origin::External.name().as_bytes() => Origin::External,
            _ => Origin::AwsKms,
        }
    }
}

/// The wrapping algorithms of GetParametersForImport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WrappingAlgorithm {
    OaepSha1,
    OaepSha256,
    RsaAesKeyWrapSha1,
    RsaAesKeyWrapSha256,
}

impl WrappingAlgorithm {
    pub(crate) const ALL: [WrappingAlgorithm; 4] = [
        WrappingAlgorithm::OaepSha1,
        WrappingAlgorithm::OaepSha256,
        WrappingAlgorithm::RsaAesKeyWrapSha1,
        WrappingAlgorithm::RsaAesKeyWrapSha256,
    ];

    pub fn name(self) -> &'static str {
        match self {
            WrappingAlgorithm::OaepSha1 => "RSAES_OAEP_SHA_1",
            WrappingAlgorithm::OaepSha256 => "RSAES_OAEP_SHA_256",
            WrappingAlgorithm::RsaAesKeyWrapSha1 => "RSA_AES_KEY_WRAP_SHA_1",
            WrappingAlgorithm::RsaAesKeyWrapSha256 => "RSA_AES_KEY_WRAP_SHA_256",
        }
    }

    /// AWS's name; RSAES_PKCS1_V1_5 (withdrawn by AWS in 2023) and anything else is refused.
    pub fn parse(name: &str) -> KmsResult<WrappingAlgorithm> {
        Self::ALL.into_iter().find(|a| a.name() == name).ok_or_else(|| {
            KmsError::new(
                AwsError::Validation,
                format!(
                    "WrappingAlgorithm {name} is not supported; use RSAES_OAEP_SHA_256, RSAES_OAEP_SHA_1, \
                     RSA_AES_KEY_WRAP_SHA_256 or RSA_AES_KEY_WRAP_SHA_1"
                ),
            )
        })
    }
}

named_enum! {
    /// Whether imported key material expires.
    pub enum ExpirationModel {
        KeyMaterialExpires => "KEY_MATERIAL_EXPIRES",
        KeyMaterialDoesNotExpire => "KEY_MATERIAL_DOES_NOT_EXPIRE",
    }
}

impl ExpirationModel {
    /// The model of material that is valid until `valid_to`, or forever.
    pub fn of(valid_to: Option<i64>) -> ExpirationModel {
        match valid_to {
            Some(_) => ExpirationModel::KeyMaterialExpires,
            None => ExpirationModel::KeyMaterialDoesNotExpire,
        }
    }
}

/// What Sign and Verify are given: the message, or its digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageType {
    Raw,
    Digest,
    /// ML-DSA's μ, computed by the caller (FIPS 204, 6.2).
    ExternalMu,
}

impl MessageType {
    pub fn parse(name: Option<&str>) -> Option<MessageType> {
        match name {
            None | Some("RAW") => Some(MessageType::Raw),
            Some("DIGEST") => Some(MessageType::Digest),
            Some("EXTERNAL_MU") => Some(MessageType::ExternalMu),
            Some(_) => None,
        }
    }
}

/// The state of one version of a key's material in ListKeyRotations.
pub fn material_state(current: bool) -> &'static str {
    if current {
        "CURRENT"
    } else {
        "NON_CURRENT"
    }
}

/// The data key specs of GenerateDataKey, by their length in bytes.
pub fn data_key_len(name: &str) -> Option<usize> {
    match name {
        "AES_256" => Some(32),
        "AES_128" => Some(16),
        _ => None,
    }
}

/// The key pair specs of GenerateDataKeyPair: the key specs of asymmetric keys, and SM2
/// (China Regions only, refused as AWS elsewhere does).
pub const SM2: &str = "SM2";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for r in &TABLE {
            assert_eq!(KeySpec::parse(r.name), Some(r.spec));
            assert!(!r.usages.is_empty(), "{}", r.name);
            for u in r.usages {
                assert!(!r.spec.algorithms(*u).is_empty(), "{} {u:?}", r.name);
            }
        }
        for &a in Algorithm::ALL {
            assert_eq!(Algorithm::parse(a.name()), Some(a));
        }
        for &o in Origin::ALL {
            assert_eq!(Origin::parse(o.name()), Some(o));
        }
        for &m in ExpirationModel::ALL {
            assert_eq!(ExpirationModel::parse(m.name()), Some(m));
        }
    }

    #[test]
    fn specs_of_objects() {
        let mut o = Object::default();
        o.set(CKA_KEY_TYPE, crate::object::ck_ulong(CKK_AES));
        o.set(CKA_VALUE_LEN, crate::object::ck_ulong(32));
        assert_eq!(KeySpec::of(&o), Some(KeySpec::SymmetricDefault));
        o.set(CKA_VALUE_LEN, crate::object::ck_ulong(16));
        assert_eq!(KeySpec::of(&o), None);
        assert_eq!(spec_name(&o), "AES_128");
        let mut ec = Object::default();
        ec.set(CKA_KEY_TYPE, crate::object::ck_ulong(CKK_EC));
        ec.set(CKA_EC_PARAMS, P384.to_vec());
        assert_eq!(spec_name(&ec), "ECC_NIST_P384");
        assert_eq!(algorithms_of(&ec, KeyUsage::SignVerify), &[Algorithm::EcdsaSha384]);
    }
}
