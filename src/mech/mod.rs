//! The mechanism registry. Each mechanism is one small unit (its parameters, the keys it
//! accepts, the operation); sessions reach them only through `lookup`.

use crate::config::RsaKeyKind;
use crate::error::{Error, Result};
use cryptoki_sys::*;
use zeroize::Zeroizing;

pub mod aes;
pub mod derive;
pub mod digest;
pub mod ec;
pub mod eddsa;
pub mod hmac;
pub mod kbkdf;
pub mod kms;
pub mod mldsa;
pub mod mlkem;
pub mod montgomery;
pub mod rsa;

/// A mechanism's parameter, already decoded from its C structure by the ABI shell.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Param {
    #[default]
    None,
    /// A plain byte string: an IV for CBC, the initial value for key wrap.
    Bytes(Vec<u8>),
    /// CK_ULONG parameter (the output length of *_HMAC_GENERAL).
    Ulong(u64),
    /// CK_GCM_PARAMS.
    Gcm { iv: Vec<u8>, aad: Vec<u8>, tag_bits: u64 },
    /// CK_AES_CTR_PARAMS.
    Ctr { counter_bits: u64, cb: [u8; 16] },
    /// CK_RSA_PKCS_OAEP_PARAMS: hash and MGF mechanisms, and the label (CKZ_DATA_SPECIFIED).
    Oaep { hash: CK_MECHANISM_TYPE, mgf: CK_RSA_PKCS_MGF_TYPE, label: Vec<u8> },
    /// CK_RSA_PKCS_PSS_PARAMS.
    Pss { hash: CK_MECHANISM_TYPE, mgf: CK_RSA_PKCS_MGF_TYPE, salt_len: u64 },
    /// CK_ECDH1_DERIVE_PARAMS: the peer's public point (raw or DER OCTET STRING).
    Ecdh { kdf: CK_EC_KDF_TYPE, shared_data: Vec<u8>, public_data: Vec<u8> },
    /// CK_SIGN_ADDITIONAL_CONTEXT (ML-DSA): the hedging asked for and the context.
    SignContext { hedge: CK_HEDGE_TYPE, context: Vec<u8> },
    /// CK_HASH_SIGN_ADDITIONAL_CONTEXT (HashML-DSA): as above, and the pre-hash.
    HashSignContext { hedge: CK_HEDGE_TYPE, context: Vec<u8>, hash: CK_MECHANISM_TYPE },
    /// CK_EDDSA_PARAMS: pre-hashing (Ed25519ph) and the context.
    Eddsa { prehash: bool, context: Vec<u8> },
    /// Ed25519ph over a SHA-512 digest the caller made (no context): the kms face's
    /// ED25519_PH_SHA_512 with MessageType DIGEST. No C_*Init parameter turns into it.
    Ed25519phDigest,
    /// ML-DSA over a μ the caller computed: the kms face's ML_DSA_SHAKE_256 with
    /// MessageType EXTERNAL_MU. No C_*Init parameter turns into it.
    MlDsaExternalMu,
    /// CK_AES_CBC_ENCRYPT_DATA_PARAMS.
    CbcData { iv: [u8; 16], data: Vec<u8> },
    /// A key handle (CKM_CONCATENATE_BASE_AND_KEY), as the caller gave it.
    Handle(CK_OBJECT_HANDLE),
    /// The value of the key a `Handle` named, once the library has resolved it.
    Key(SecretParam),
    /// CK_SP800_108_KDF_PARAMS or CK_SP800_108_FEEDBACK_KDF_PARAMS.
    Kbkdf(Box<kbkdf::Params>),
}

/// A secret value inside a mechanism parameter: zeroised on drop, never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretParam(Zeroizing<Vec<u8>>);

impl SecretParam {
    pub fn new(value: Vec<u8>) -> Self {
        SecretParam(Zeroizing::new(value))
    }

    pub fn value(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SecretParam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretParam({} bytes)", self.0.len())
    }
}

/// A mechanism as the caller asked for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mechanism {
    pub ty: CK_MECHANISM_TYPE,
    pub param: Param,
}

/// A key as the mechanisms see it: its type, the value of a secret key, and for keys whose
/// material spans several attributes (EC, RSA) the whole object, already unsealed.
pub struct Key<'a> {
    pub key_type: CK_KEY_TYPE,
    /// CKA_VALUE of a secret key (of an EC private key: the scalar); empty otherwise.
    pub value: &'a [u8],
    pub attrs: Option<&'a crate::object::Object>,
}

/// Attributes a mechanism adds to the objects it makes (values in PKCS#11 encoding).
pub type Attributes = Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>;

/// What key-pair generation makes: the attributes of the public and the private key
/// (class, key type and key material; the token adds the rest from the templates).
pub struct KeyPair {
    pub public: Attributes,
    pub private: Attributes,
}

/// What C_GetMechanismInfo reports.
#[derive(Clone, Copy, Debug)]
pub struct Info {
    pub min_key: u64,
    pub max_key: u64,
    pub flags: CK_FLAGS,
}

/// Encryption or decryption in progress (single- or multi-part).
pub trait CipherOp: Send {
    /// Feeds `input`, returning the output it releases now.
    fn update(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>>;
    /// Ends the operation, returning the last output.
    fn finish(&mut self) -> Result<Zeroizing<Vec<u8>>>;
    /// Length that `update(input_len bytes)` releases at most.
    fn update_len(&self, input_len: usize) -> usize;
    /// Length that `finish` releases at most.
    fn finish_len(&self) -> usize;
    /// A copy of the state, so that an exact output length can be learnt without losing
    /// the operation when the caller's buffer turns out too small.
    fn boxed_clone(&self) -> Box<dyn CipherOp>;
    /// The single-part form C_Encrypt / C_Decrypt; modes that must see all input at once
    /// (GCM decryption, key wrap) override it.
    fn one_shot(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let first = self.update(input)?;
        let last = self.finish()?;
        // Sized once, so no partial copy of the output is left behind by a reallocation.
        let mut out = Zeroizing::new(Vec::with_capacity(first.len() + last.len()));
        out.extend_from_slice(&first);
        out.extend_from_slice(&last);
        Ok(out)
    }
    fn one_shot_len(&self, input_len: usize) -> usize {
        self.update_len(input_len) + self.finish_len()
    }
}

/// A cipher served in one call only (AES key wrap, RSA): `SinglePartOp` gives it the
/// multi-part half of `CipherOp`, where C_*Update and C_*Final answer
/// CKR_OPERATION_NOT_INITIALIZED, since no multi-part operation exists (as SoftHSM2 does).
pub trait SinglePart: Clone + Send + 'static {
    fn run(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>>;
    /// Length that `run(input_len bytes)` returns at most.
    fn output_len(&self, input_len: usize) -> usize;
}

#[derive(Clone)]
pub struct SinglePartOp<T>(pub T);

impl<T: SinglePart> CipherOp for SinglePartOp<T> {
    fn update(&mut self, _input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        Err(Error::OperationNotInitialized)
    }
    fn finish(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        Err(Error::OperationNotInitialized)
    }
    fn update_len(&self, _input_len: usize) -> usize {
        0
    }
    fn finish_len(&self) -> usize {
        0
    }
    fn boxed_clone(&self) -> Box<dyn CipherOp> {
        Box::new(self.clone())
    }
    fn one_shot(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.0.run(input)
    }
    fn one_shot_len(&self, input_len: usize) -> usize {
        self.0.output_len(input_len)
    }
}

/// MAC generation (or, later, a signature) in progress.
pub trait SignOp: Send {
    fn update(&mut self, data: &[u8]) -> Result<()>;
    fn finish(&mut self) -> Result<Vec<u8>>;
    /// Exact length of the result.
    fn sig_len(&self) -> usize;
    /// Whether the mechanism signs in one part only (C_SignUpdate ends it, refused).
    fn single_part(&self) -> bool {
        false
    }
}

/// MAC (or signature) verification in progress.
pub trait VerifyOp: Send {
    fn update(&mut self, data: &[u8]) -> Result<()>;
    /// Checks `signature` in constant time: CKR_SIGNATURE_LEN_RANGE for a wrong length,
    /// CKR_SIGNATURE_INVALID for a wrong value.
    fn finish(&mut self, signature: &[u8]) -> Result<()>;
    /// Whether the mechanism verifies in one part only (an update ends it, refused).
    fn single_part(&self) -> bool {
        false
    }
}

/// A digest in progress.
pub trait DigestOp: Send {
    fn update(&mut self, data: &[u8]);
    fn finish(&mut self) -> Vec<u8>;
    fn output_len(&self) -> usize;
}

/// One mechanism: what it is and what it can start. Capabilities it lacks answer
/// CKR_MECHANISM_INVALID, as the specification asks of a mechanism used for the wrong
/// function.
pub trait Unit: Sync {
    fn ty(&self) -> CK_MECHANISM_TYPE;
    fn info(&self) -> Info;
    /// Key types this mechanism accepts.
    fn key_types(&self) -> &'static [CK_KEY_TYPE] {
        &[]
    }
    fn encrypt(&self, _key: &Key, _p: &Param) -> Result<Box<dyn CipherOp>> {
        Err(Error::MechanismInvalid)
    }
    fn decrypt(&self, _key: &Key, _p: &Param) -> Result<Box<dyn CipherOp>> {
        Err(Error::MechanismInvalid)
    }
    fn sign(&self, _key: &Key, _p: &Param) -> Result<Box<dyn SignOp>> {
        Err(Error::MechanismInvalid)
    }
    fn verify(&self, _key: &Key, _p: &Param) -> Result<Box<dyn VerifyOp>> {
        Err(Error::MechanismInvalid)
    }
    fn digest(&self, _p: &Param) -> Result<Box<dyn DigestOp>> {
        Err(Error::MechanismInvalid)
    }
    /// Key generation: the key type it makes and the value for a key of `len` bytes
    /// (`len` from CKA_VALUE_LEN, None when the template has none).
    fn generate_key(&self, _len: Option<usize>) -> Result<(CK_KEY_TYPE, Zeroizing<Vec<u8>>)> {
        Err(Error::MechanismInvalid)
    }
    /// Wraps `key_value` (the value of a secret key) under `wrapping`.
    fn wrap(&self, _wrapping: &Key, _p: &Param, _key_value: &[u8]) -> Result<Vec<u8>> {
        Err(Error::MechanismInvalid)
    }
    /// Key-pair generation from the caller's two templates (CKA_EC_PARAMS,
    /// CKA_MODULUS_BITS, CKA_PUBLIC_EXPONENT are read from them).
    fn generate_key_pair(
        &self,
        _public: &crate::object::Template,
        _private: &crate::object::Template,
    ) -> Result<KeyPair> {
        Err(Error::MechanismInvalid)
    }
    /// Derivation: the bytes the new key's value is taken from (an ECDH shared secret,
    /// a concatenation...). `len`: the new key's length when the template gives it.
    fn derive(&self, _base: &Key, _p: &Param, _len: Option<usize>) -> Result<Zeroizing<Vec<u8>>> {
        Err(Error::MechanismInvalid)
    }
    /// Whether a key this mechanism derives may be no less secret than its base (the
    /// rule of the derivations from a key's value: a sensitive base makes a sensitive
    /// key, an unextractable base an unextractable one).
    fn inherits_secrecy(&self) -> bool {
        false
    }
    /// Whether the keys this mechanism derives hold only the capabilities their templates
    /// name (the others FALSE), where other secret keys default them TRUE.
    fn names_capabilities(&self) -> bool {
        false
    }
    /// Unwraps a secret key value.
    fn unwrap(&self, _unwrapping: &Key, _p: &Param, _wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        Err(Error::MechanismInvalid)
    }
    /// The length of the ciphertext `encapsulate` makes under the public key.
    fn ciphertext_len(&self, _public: &Key) -> Result<usize> {
        Err(Error::MechanismInvalid)
    }
    /// A KEM's encapsulation (PKCS#11 3.2): a ciphertext and the shared secret in it.
    fn encapsulate(&self, _public: &Key, _p: &Param) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
        Err(Error::MechanismInvalid)
    }
    /// A KEM's decapsulation: the shared secret in a ciphertext.
    fn decapsulate(&self, _private: &Key, _p: &Param, _ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        Err(Error::MechanismInvalid)
    }
}

/// CKA_EC_PARAMS of a key-pair generation: the public template's, or the private one's
/// (when both give them, they must agree).
pub(crate) fn pair_params<'a>(
    public: &'a crate::object::Template,
    private: &'a crate::object::Template,
) -> Result<&'a [u8]> {
    pair_attr(public, private, CKA_EC_PARAMS)
}

/// A CK_ULONG attribute value.
pub(crate) fn ulong_of(value: &[u8]) -> Option<CK_ULONG> {
    value.try_into().ok().map(CK_ULONG::from_ne_bytes)
}

/// A key of the post-quantum types (PKCS#11 3.2), of `key_type` and `class`, with the
/// parameter set its CKA_PARAMETER_SET names (`set` maps the CK_ULONG to the crypto
/// library's). Anything else is CKR_KEY_TYPE_INCONSISTENT.
pub(crate) fn parameter_set_key<'k, T>(
    key: &Key<'k>,
    key_type: CK_KEY_TYPE,
    class: CK_OBJECT_CLASS,
    set: fn(CK_ULONG) -> Option<T>,
) -> Result<(&'k crate::object::Object, T)> {
    if key.key_type != key_type {
        return Err(Error::KeyTypeInconsistent);
    }
    let obj = key.attrs.ok_or_else(|| Error::general("a key passed without its object"))?;
    if obj.class() != class {
        return Err(Error::KeyTypeInconsistent);
    }
    let level = obj.ulong(CKA_PARAMETER_SET).and_then(set).ok_or(Error::KeyTypeInconsistent)?;
    Ok((obj, level))
}

/// Attribute `ty` of a key pair's templates: from the public template or the private one;
/// when both give it, the two must agree.
pub(crate) fn pair_attr<'a>(
    public: &'a crate::object::Template,
    private: &'a crate::object::Template,
    ty: CK_ATTRIBUTE_TYPE,
) -> Result<&'a [u8]> {
    let find = |t: &'a crate::object::Template| t.iter().find(|(t, _)| *t == ty).map(|(_, v)| v.as_slice());
    match (find(public), find(private)) {
        (Some(a), Some(b)) if a != b => Err(Error::TemplateInconsistent),
        (Some(p), _) | (None, Some(p)) => Ok(p),
        (None, None) => Err(Error::TemplateIncomplete),
    }
}

/// Whether CKA_EC_PARAMS name a curve by its OID or by its printable name (the two forms
/// PKCS#11 3.0 gives for the Edwards and Montgomery curves).
pub(crate) fn names_curve(params: &[u8], oid: &str, name: &str) -> bool {
    use der::asn1::{ObjectIdentifier, PrintableStringRef};
    use der::Decode;
    match params.first() {
        Some(0x06) => ObjectIdentifier::from_der(params).is_ok_and(|o| o.to_string() == oid),
        Some(0x13) => PrintableStringRef::from_der(params).is_ok_and(|n| n.as_str() == name),
        _ => false,
    }
}

/// A public key of `len` bytes inside a CKA_EC_POINT (its DER OCTET STRING) or given raw.
pub(crate) fn octet_point(v: &[u8], len: usize) -> Option<&[u8]> {
    use der::asn1::OctetStringRef;
    use der::Decode;
    if v.len() == len {
        return Some(v);
    }
    OctetStringRef::from_der(v).ok().map(|o| o.as_bytes()).filter(|p| p.len() == len)
}

/// A public key as CKA_EC_POINT holds it: its DER OCTET STRING.
pub(crate) fn encode_octet_point(public: &[u8]) -> Result<Vec<u8>> {
    use der::asn1::OctetStringRef;
    use der::Encode;
    OctetStringRef::new(public).and_then(|o| o.to_der()).map_err(|_| Error::general("point encoding failed"))
}

/// Checks the key material of a public or private key that C_CreateObject (or the
/// command line's import) brings in, and writes its encodings in the token's forms; the
/// key type's unit decides what is a key (see `ec::check_import`, `rsa::check_import`).
/// An RSA key must also have a size the profile takes (CKR_ATTRIBUTE_VALUE_INVALID).
pub fn check_imported_key(obj: &mut crate::object::Object, profile: crate::config::Profile) -> Result<()> {
    match (obj.class(), obj.key_type()) {
        (CKO_PUBLIC_KEY | CKO_PRIVATE_KEY, Some(CKK_EC)) => ec::check_import(obj),
        (CKO_PUBLIC_KEY | CKO_PRIVATE_KEY, Some(CKK_EC_EDWARDS)) => eddsa::check_import(obj),
        (CKO_PUBLIC_KEY | CKO_PRIVATE_KEY, Some(CKK_ML_DSA)) => mldsa::check_import(obj),
        (CKO_PUBLIC_KEY | CKO_PRIVATE_KEY, Some(CKK_ML_KEM)) => mlkem::check_import(obj),
        (CKO_PUBLIC_KEY | CKO_PRIVATE_KEY, Some(CKK_EC_MONTGOMERY)) => montgomery::check_import(obj),
        (class @ (CKO_PUBLIC_KEY | CKO_PRIVATE_KEY), Some(CKK_RSA)) => {
            let bits = rsa::check_import(obj)?.unwrap_or(0);
            let kind = if class == CKO_PRIVATE_KEY { RsaKeyKind::Private } else { RsaKeyKind::Public };
            if profile.rsa_bits_allowed(kind, bits) {
                Ok(())
            } else {
                Err(Error::AttributeValueInvalid)
            }
        }
        _ => Ok(()),
    }
}

/// C_WrapKey through a mechanism's encryption (AES key wrap and CBC, RSA), with the
/// errors renamed for wrapping.
pub(crate) fn wrap_with(unit: &dyn Unit, wrapping: &Key, p: &Param, value: &[u8]) -> Result<Vec<u8>> {
    let rename = |e| match e {
        Error::KeyTypeInconsistent => Error::WrappingKeyTypeInconsistent,
        Error::KeySizeRange => Error::WrappingKeySizeRange,
        // The key's value has a length this mechanism and key cannot encrypt.
        Error::DataLenRange => Error::KeyNotWrappable,
        other => other,
    };
    let mut op = unit.encrypt(wrapping, p).map_err(rename)?;
    let mut out = op.one_shot(value).map_err(rename)?;
    // The wrapped form is not secret: hand over the vector itself.
    Ok(std::mem::take(&mut *out))
}

/// C_UnwrapKey through a mechanism's decryption, with the errors renamed for unwrapping.
pub(crate) fn unwrap_with(unit: &dyn Unit, unwrapping: &Key, p: &Param, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let rename = |e| match e {
        Error::KeyTypeInconsistent => Error::UnwrappingKeyTypeInconsistent,
        Error::KeySizeRange => Error::UnwrappingKeySizeRange,
        Error::EncryptedDataLenRange => Error::WrappedKeyLenRange,
        Error::EncryptedDataInvalid => Error::WrappedKeyInvalid,
        other => other,
    };
    let mut op = unit.decrypt(unwrapping, p).map_err(rename)?;
    op.one_shot(wrapped).map_err(rename)
}

/// Mechanisms whose decryption checks integrity, so that the right one of several key
/// versions is recognised by its tag (a rotated KMS key decrypts older data this way).
pub fn is_authenticated(ty: CK_MECHANISM_TYPE) -> bool {
    matches!(ty, CKM_AES_GCM | CKM_AES_KEY_WRAP | CKM_AES_KEY_WRAP_KWP)
}

/// Decryption under several keys, newest first: the output of the first whose integrity
/// check passes. Only for `is_authenticated` mechanisms, which release nothing before
/// their check.
pub struct FirstAuthentic(pub Vec<Box<dyn CipherOp>>);

impl FirstAuthentic {
    fn first_that_opens(
        &mut self,
        mut run: impl FnMut(&mut dyn CipherOp) -> Result<Zeroizing<Vec<u8>>>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        for op in self.0.iter_mut() {
            match run(op.as_mut()) {
                Err(Error::EncryptedDataInvalid) => continue,
                other => return other,
            }
        }
        Err(Error::EncryptedDataInvalid)
    }
}

impl CipherOp for FirstAuthentic {
    fn update(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(Vec::new());
        for op in self.0.iter_mut() {
            out = op.update(input)?;
        }
        Ok(out)
    }
    fn finish(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        self.first_that_opens(|op| op.finish())
    }
    fn one_shot(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.first_that_opens(|op| op.one_shot(input))
    }
    fn update_len(&self, n: usize) -> usize {
        self.0.iter().map(|o| o.update_len(n)).max().unwrap_or(0)
    }
    fn finish_len(&self) -> usize {
        self.0.iter().map(|o| o.finish_len()).max().unwrap_or(0)
    }
    fn one_shot_len(&self, n: usize) -> usize {
        self.0.iter().map(|o| o.one_shot_len(n)).max().unwrap_or(0)
    }
    fn boxed_clone(&self) -> Box<dyn CipherOp> {
        Box::new(FirstAuthentic(self.0.iter().map(|o| o.boxed_clone()).collect()))
    }
}

/// MAC verification under several keys (the versions of a rotated key): valid if any
/// key's MAC matches.
pub struct AnyVerifies(pub Vec<Box<dyn VerifyOp>>);

impl VerifyOp for AnyVerifies {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.0.iter_mut().try_for_each(|op| op.update(data))
    }
    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        let mut first_err = None;
        for op in self.0.iter_mut() {
            match op.finish(signature) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(first_err.unwrap_or(Error::SignatureInvalid))
    }
}

/// Every mechanism the module knows, in the order C_GetMechanismList reports them.
fn all() -> Vec<&'static dyn Unit> {
    let mut v: Vec<&'static dyn Unit> = Vec::new();
    v.extend_from_slice(aes::UNITS);
    v.extend_from_slice(hmac::UNITS);
    v.extend_from_slice(digest::UNITS);
    v.extend_from_slice(kms::UNITS);
    v.extend_from_slice(ec::UNITS);
    v.extend_from_slice(eddsa::UNITS);
    v.extend_from_slice(mldsa::UNITS);
    v.extend_from_slice(mlkem::UNITS);
    v.extend_from_slice(montgomery::UNITS);
    v.extend_from_slice(derive::UNITS);
    v.extend_from_slice(kbkdf::UNITS);
    v.extend_from_slice(rsa::UNITS);
    v
}

/// The registry, filtered by the configuration (CKM_AES_ECB as the profile or the
/// configuration has it) and reporting the key sizes the profile takes.
pub struct Registry {
    units: Vec<&'static dyn Unit>,
    profile: crate::config::Profile,
}

impl Registry {
    pub fn new(enable_ecb: bool, profile: crate::config::Profile) -> Self {
        let units = all().into_iter().filter(|u| enable_ecb || u.ty() != CKM_AES_ECB).collect();
        Registry { units, profile }
    }

    /// C_GetMechanismInfo: the unit's own, with RSA sizes narrowed to the profile's.
    pub fn info(&self, ty: CK_MECHANISM_TYPE) -> Result<Info> {
        let unit = self.lookup(ty)?;
        let mut info = unit.info();
        if unit.key_types().contains(&CKK_RSA) || ty == CKM_RSA_PKCS_KEY_PAIR_GEN {
            let kind = if ty == CKM_RSA_PKCS_KEY_PAIR_GEN { RsaKeyKind::Generated } else { RsaKeyKind::Private };
            let sizes = self.profile.rsa_bits(kind);
            info.min_key = info.min_key.max(*sizes.start() as u64);
            info.max_key = info.max_key.min(*sizes.end() as u64);
        }
        Ok(info)
    }

    pub fn lookup(&self, ty: CK_MECHANISM_TYPE) -> Result<&'static dyn Unit> {
        self.units.iter().copied().find(|u| u.ty() == ty).ok_or(Error::MechanismInvalid)
    }

    pub fn list(&self) -> Vec<CK_MECHANISM_TYPE> {
        self.units.iter().map(|u| u.ty()).collect()
    }
}

/// What the units' tests share.
#[cfg(test)]
pub(crate) mod test_support {
    use crate::object::Object;
    use cryptoki_sys::CK_ATTRIBUTE_TYPE;

    /// An object with exactly these attributes.
    pub fn object(attrs: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> Object {
        let mut o = Object::default();
        for (ty, v) in attrs {
            o.set(*ty, v.clone());
        }
        o
    }

    /// The unit of `ty` among `units`.
    pub fn unit(units: &[&'static dyn super::Unit], ty: cryptoki_sys::CK_MECHANISM_TYPE) -> &'static dyn super::Unit {
        *units.iter().find(|u| u.ty() == ty).expect("a unit of that mechanism")
    }

    /// The key a unit takes, of `key_type`, for the object `o`.
    pub fn key(o: &Object, key_type: cryptoki_sys::CK_KEY_TYPE) -> super::Key<'_> {
        super::Key { key_type, value: &[], attrs: Some(o) }
    }
}
