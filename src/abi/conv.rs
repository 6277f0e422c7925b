//! Conversions between C and Rust at the boundary: caller pointers to slices, templates
//! and mechanisms to Rust values, results back into the caller's structures. Every
//! `unsafe` block relies on the PKCS#11 calling contract: a non-NULL pointer given with a
//! length points to that many readable (or, for outputs, writable) bytes for the call.

use crate::error::{Error, Result};
use crate::library::Attribute;
use crate::mech::{kbkdf, Mechanism, Param};
use crate::message::GcmMessageParams;
use cryptoki_sys::*;
use std::borrow::Cow;
use std::ffi::c_void;

/// Upper bound on a single input, a defence against absurd lengths (1 GiB).
const MAX_INPUT: CK_ULONG = 1 << 30;
/// Upper bound on attributes in one template.
const MAX_TEMPLATE: CK_ULONG = 4096;
/// Upper bound on the bytes of one template's values together (256 MiB): beyond it the
/// template is refused with CKR_HOST_MEMORY before anything is copied.
const MAX_TEMPLATE_BYTES: u64 = 256 << 20;

/// A copy of caller bytes, or CKR_HOST_MEMORY when the allocation fails (the host
/// process is not aborted for a request too large for its memory).
pub fn copy(data: &[u8]) -> Result<Vec<u8>> {
    let mut v = Vec::new();
    v.try_reserve_exact(data.len()).map_err(|_| Error::HostMemory)?;
    v.extend_from_slice(data);
    Ok(v)
}

/// Input bytes `(p, len)`; NULL is allowed only for an empty input.
pub fn input<'a>(p: *const u8, len: CK_ULONG) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() || len > MAX_INPUT {
        return Err(Error::ArgumentsBad);
    }
    // SAFETY: non-NULL and the caller promises `len` readable bytes (PKCS#11 contract).
    Ok(unsafe { std::slice::from_raw_parts(p, len as usize) })
}

/// A PIN: NULL is CKR_ARGUMENTS_BAD (a NULL PIN means the protected authentication
/// path, which this token has not), whatever the length.
pub fn pin<'a>(p: *const u8, len: CK_ULONG) -> Result<&'a [u8]> {
    if p.is_null() {
        return Err(Error::ArgumentsBad);
    }
    input(p, len)
}

/// Input that may share memory with the output buffer (in-place encryption is common):
/// copied when the two overlap, so that Rust never holds aliasing references.
pub fn input_beside<'a>(
    p: *const u8,
    len: CK_ULONG,
    out: *const u8,
    out_len: *const CK_ULONG,
) -> Result<Cow<'a, [u8]>> {
    let data = input(p, len)?;
    if out.is_null() || out_len.is_null() || data.is_empty() {
        return Ok(Cow::Borrowed(data));
    }
    // SAFETY: out_len is non-NULL and points to the caller's CK_ULONG.
    let olen = unsafe { *out_len } as usize;
    let (a, b) = (p as usize, out as usize);
    if a < b.saturating_add(olen) && b < a.saturating_add(data.len()) {
        Ok(Cow::Owned(data.to_vec()))
    } else {
        Ok(Cow::Borrowed(data))
    }
}

/// The output buffer of the two-call convention: None when `p` is NULL (length query).
pub fn output<'a>(p: *mut u8, len: *mut CK_ULONG) -> Result<Option<&'a mut [u8]>> {
    if len.is_null() {
        return Err(Error::ArgumentsBad);
    }
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: `len` is non-NULL; the caller owns *len writable bytes at `p`.
    Ok(Some(unsafe { std::slice::from_raw_parts_mut(p, (*len as usize).min(MAX_INPUT as usize * 2)) }))
}

/// Stores a length (written or needed) where the caller asked for it; a too-small
/// buffer still reports the needed length.
pub fn emit(len: *mut CK_ULONG, r: Result<usize>) -> Result<()> {
    let n = match &r {
        Ok(n) | Err(Error::BufferTooSmall(n)) => *n,
        Err(_) => return r.map(|_| ()),
    };
    // SAFETY: `output` has already checked that `len` is non-NULL.
    unsafe { *len = n as CK_ULONG };
    r.map(|_| ())
}

/// A writable pointer to one value of the caller's.
pub fn out_ref<'a, T>(p: *mut T) -> Result<&'a mut T> {
    if p.is_null() {
        return Err(Error::ArgumentsBad);
    }
    // SAFETY: non-NULL; the caller passes a pointer to its own T for the call.
    Ok(unsafe { &mut *p })
}

/// A caller's template, copied in: its values (a key's CKA_VALUE among them) are wiped
/// when it goes, so no copy of a secret outlives the call.
pub struct Template(Vec<Attribute>);

impl std::ops::Deref for Template {
    type Target = [Attribute];
    fn deref(&self) -> &[Attribute] {
        &self.0
    }
}

impl Drop for Template {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.0.iter_mut().for_each(|(_, v)| v.zeroize());
    }
}

/// Copies a template in. pValue may be NULL only with length 0.
pub fn template(p: *const CK_ATTRIBUTE, count: CK_ULONG) -> Result<Template> {
    // Built in place, so that what was copied before an error is wiped too.
    let mut t = Template(Vec::new());
    if count == 0 {
        return Ok(t);
    }
    if p.is_null() || count > MAX_TEMPLATE {
        return Err(Error::ArgumentsBad);
    }
    // SAFETY: the caller passes `count` CK_ATTRIBUTEs at `p`.
    let attrs = unsafe { std::slice::from_raw_parts(p, count as usize) };
    let total = attrs.iter().fold(0u64, |n, a| n.saturating_add(a.ulValueLen));
    if total > MAX_TEMPLATE_BYTES {
        return Err(Error::HostMemory);
    }
    for a in attrs {
        let value = if crate::object::attr::is_attribute_array(a.type_) {
            attribute_array(a)?
        } else {
            copy(input(a.pValue as *const u8, a.ulValueLen)?)?
        };
        t.0.push((a.type_, value));
    }
    Ok(t)
}

/// The value of an array attribute (CKA_WRAP_TEMPLATE...): pValue points to
/// ulValueLen / sizeof(CK_ATTRIBUTE) attributes, copied into the owned encoding of
/// `attr::encode_array`. A length that is no whole number of attributes, or an array
/// inside the array, is CKR_ATTRIBUTE_VALUE_INVALID.
fn attribute_array(a: &CK_ATTRIBUTE) -> Result<Vec<u8>> {
    let size = std::mem::size_of::<CK_ATTRIBUTE>() as CK_ULONG;
    if !a.ulValueLen.is_multiple_of(size) || a.ulValueLen / size > MAX_TEMPLATE {
        return Err(Error::AttributeValueInvalid);
    }
    let n = (a.ulValueLen / size) as usize;
    if n > 0 && a.pValue.is_null() {
        return Err(Error::ArgumentsBad);
    }
    let mut inner = Template(Vec::with_capacity(n));
    for i in 0..n {
        // SAFETY: the caller's pValue holds ulValueLen bytes, n whole CK_ATTRIBUTEs;
        // read_unaligned because a C caller need not align a byte buffer for us.
        let e = unsafe { std::ptr::read_unaligned((a.pValue as *const CK_ATTRIBUTE).add(i)) };
        if crate::object::attr::is_attribute_array(e.type_) {
            return Err(Error::AttributeValueInvalid);
        }
        inner.0.push((e.type_, copy(input(e.pValue as *const u8, e.ulValueLen)?)?));
    }
    Ok(crate::object::attr::encode_array(&inner))
}

/// The caller's template for C_GetAttributeValue, to be filled in place.
pub fn template_out<'a>(p: *mut CK_ATTRIBUTE, count: CK_ULONG) -> Result<&'a mut [CK_ATTRIBUTE]> {
    if count == 0 {
        return Ok(&mut []);
    }
    if p.is_null() || count > MAX_TEMPLATE {
        return Err(Error::ArgumentsBad);
    }
    // SAFETY: the caller passes `count` writable CK_ATTRIBUTEs at `p`.
    Ok(unsafe { std::slice::from_raw_parts_mut(p, count as usize) })
}

/// Writes one attribute value into the caller's CK_ATTRIBUTE, following the rules of
/// C_GetAttributeValue.
pub fn fill_attribute(a: &mut CK_ATTRIBUTE, value: Result<&[u8]>) -> Result<()> {
    if crate::object::attr::is_attribute_array(a.type_) {
        return fill_array(a, value);
    }
    match value {
        Err(e) => {
            a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
            Err(e)
        }
        Ok(v) if a.pValue.is_null() => {
            a.ulValueLen = v.len() as CK_ULONG;
            Ok(())
        }
        Ok(v) if (a.ulValueLen as usize) < v.len() => {
            a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
            Err(Error::BufferTooSmall(v.len()))
        }
        Ok(v) => {
            // SAFETY: pValue is non-NULL with ulValueLen >= v.len() writable bytes.
            unsafe { std::ptr::copy_nonoverlapping(v.as_ptr(), a.pValue as *mut u8, v.len()) };
            a.ulValueLen = v.len() as CK_ULONG;
            Ok(())
        }
    }
}

/// An array attribute for C_GetAttributeValue: with pValue NULL, the length of the
/// array (count * sizeof(CK_ATTRIBUTE)); else, the caller's array long enough, each
/// element gets its type and, by the same two-call rules, its value (NULL: its length).
/// An element whose buffer is short makes the call CKR_BUFFER_TOO_SMALL.
fn fill_array(a: &mut CK_ATTRIBUTE, value: Result<&[u8]>) -> Result<()> {
    let attrs = match value.and_then(|v| crate::object::attr::decode_array(v).ok_or(Error::AttributeValueInvalid)) {
        Ok(attrs) => attrs,
        Err(e) => {
            a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
            return Err(e);
        }
    };
    let len = attrs.len() * std::mem::size_of::<CK_ATTRIBUTE>();
    if a.pValue.is_null() {
        a.ulValueLen = len as CK_ULONG;
        return Ok(());
    }
    if (a.ulValueLen as usize) < len {
        a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
        return Err(Error::BufferTooSmall(len));
    }
    let mut result = Ok(());
    for (i, (ty, v)) in attrs.iter().enumerate() {
        let p = (a.pValue as *mut CK_ATTRIBUTE).wrapping_add(i);
        // SAFETY: pValue is non-NULL with at least `len` bytes: `attrs.len()` elements.
        let mut e = unsafe { std::ptr::read_unaligned(p) };
        e.type_ = *ty;
        if let Err(err) = fill_attribute(&mut e, Ok(v)) {
            result = Err(err);
        }
        // SAFETY: as above.
        unsafe { std::ptr::write_unaligned(p, e) };
    }
    a.ulValueLen = len as CK_ULONG;
    result
}

/// Reads a parameter structure of type T, which must be exactly its size.
fn param_struct<T: Copy>(m: &CK_MECHANISM) -> Result<T> {
    if m.pParameter.is_null() || m.ulParameterLen as usize != std::mem::size_of::<T>() {
        return Err(Error::MechanismParamInvalid);
    }
    // SAFETY: non-NULL, and the caller says it holds ulParameterLen == size_of::<T>() bytes;
    // read_unaligned because C callers need not align it for us.
    Ok(unsafe { std::ptr::read_unaligned(m.pParameter as *const T) })
}

/// The type of a CK_MECHANISM whose parameter is not read (C_MessageEncryptInit: each
/// message brings its own).
pub fn mechanism_type(p: *const CK_MECHANISM) -> Result<Mechanism> {
    if p.is_null() {
        return Err(Error::ArgumentsBad);
    }
    // SAFETY: non-NULL pointer to the caller's CK_MECHANISM.
    Ok(Mechanism { ty: unsafe { (*p).mechanism }, param: Param::None })
}

/// Decodes a CK_MECHANISM and its parameter into Rust.
pub fn mechanism(p: *const CK_MECHANISM) -> Result<Mechanism> {
    if p.is_null() {
        return Err(Error::ArgumentsBad);
    }
    // SAFETY: non-NULL pointer to the caller's CK_MECHANISM.
    let m = unsafe { &*p };
    let bytes =
        |m: &CK_MECHANISM| input(m.pParameter as *const u8, m.ulParameterLen).map_err(|_| Error::MechanismParamInvalid);
    let param = match m.mechanism {
        CKM_AES_GCM => {
            let g: CK_GCM_PARAMS = param_struct(m)?;
            let iv = input(g.pIv, g.ulIvLen).map_err(|_| Error::MechanismParamInvalid)?.to_vec();
            let aad = input(g.pAAD, g.ulAADLen).map_err(|_| Error::MechanismParamInvalid)?.to_vec();
            Param::Gcm { iv, aad, tag_bits: g.ulTagBits }
        }
        CKM_AES_CTR => {
            let c: CK_AES_CTR_PARAMS = param_struct(m)?;
            Param::Ctr { counter_bits: c.ulCounterBits, cb: c.cb }
        }
        CKM_SHA_1_HMAC_GENERAL
        | CKM_SHA224_HMAC_GENERAL
        | CKM_SHA256_HMAC_GENERAL
        | CKM_SHA384_HMAC_GENERAL
        | CKM_SHA512_HMAC_GENERAL
        | CKM_AES_CMAC_GENERAL => Param::Ulong(param_struct::<CK_ULONG>(m)?),
        CKM_RSA_PKCS_OAEP => {
            let o: CK_RSA_PKCS_OAEP_PARAMS = param_struct(m)?;
            let label = match o.source {
                CKZ_DATA_SPECIFIED => input(o.pSourceData as *const u8, o.ulSourceDataLen),
                // No source at all is what some clients send for an empty label.
                0 if o.ulSourceDataLen == 0 => Ok(&[][..]),
                _ => Err(Error::MechanismParamInvalid),
            }
            .map_err(|_| Error::MechanismParamInvalid)?
            .to_vec();
            Param::Oaep { hash: o.hashAlg, mgf: o.mgf, label }
        }
        CKM_RSA_PKCS_PSS
        | CKM_SHA1_RSA_PKCS_PSS
        | CKM_SHA224_RSA_PKCS_PSS
        | CKM_SHA256_RSA_PKCS_PSS
        | CKM_SHA384_RSA_PKCS_PSS
        | CKM_SHA512_RSA_PKCS_PSS => {
            let p: CK_RSA_PKCS_PSS_PARAMS = param_struct(m)?;
            Param::Pss { hash: p.hashAlg, mgf: p.mgf, salt_len: p.sLen }
        }
        CKM_ECDH1_DERIVE => {
            let d: CK_ECDH1_DERIVE_PARAMS = param_struct(m)?;
            let shared_data =
                input(d.pSharedData, d.ulSharedDataLen).map_err(|_| Error::MechanismParamInvalid)?.to_vec();
            let public_data =
                input(d.pPublicData, d.ulPublicDataLen).map_err(|_| Error::MechanismParamInvalid)?.to_vec();
            Param::Ecdh { kdf: d.kdf, shared_data, public_data }
        }
        CKM_AES_ECB_ENCRYPT_DATA
        | CKM_XOR_BASE_AND_DATA
        | CKM_CONCATENATE_BASE_AND_DATA
        | CKM_CONCATENATE_DATA_AND_BASE => {
            let d: CK_KEY_DERIVATION_STRING_DATA = param_struct(m)?;
            Param::Bytes(input(d.pData, d.ulLen).map_err(|_| Error::MechanismParamInvalid)?.to_vec())
        }
        CKM_AES_CBC_ENCRYPT_DATA => {
            let d: CK_AES_CBC_ENCRYPT_DATA_PARAMS = param_struct(m)?;
            let data = input(d.pData, d.length).map_err(|_| Error::MechanismParamInvalid)?.to_vec();
            Param::CbcData { iv: d.iv, data }
        }
        CKM_EXTRACT_KEY_FROM_KEY => Param::Ulong(param_struct::<CK_EXTRACT_PARAMS>(m)?),
        CKM_SP800_108_COUNTER_KDF => {
            let k: CK_SP800_108_KDF_PARAMS = param_struct(m)?;
            let lists = (k.pDataParams, k.ulNumberOfDataParams, k.pAdditionalDerivedKeys, k.ulAdditionalDerivedKeys);
            kbkdf_param(false, k.prfType, lists, Vec::new())?
        }
        CKM_SP800_108_FEEDBACK_KDF => {
            let k: CK_SP800_108_FEEDBACK_KDF_PARAMS = param_struct(m)?;
            let iv = input(k.pIV, k.ulIVLen).map_err(|_| Error::MechanismParamInvalid)?.to_vec();
            let lists = (k.pDataParams, k.ulNumberOfDataParams, k.pAdditionalDerivedKeys, k.ulAdditionalDerivedKeys);
            kbkdf_param(true, k.prfType, lists, iv)?
        }
        CKM_CONCATENATE_BASE_AND_KEY => Param::Handle(param_struct::<CK_OBJECT_HANDLE>(m)?),
        CKM_HASH_ML_DSA => {
            let c: CK_HASH_SIGN_ADDITIONAL_CONTEXT = param_struct(m)?;
            let context = input(c.pContext, c.ulContextLen).map_err(|_| Error::MechanismParamInvalid)?.to_vec();
            Param::HashSignContext { hedge: c.hedgeVariant, context, hash: c.hash }
        }
        CKM_ML_DSA | CKM_HASH_ML_DSA_SHA224..=CKM_HASH_ML_DSA_SHAKE256 if m.ulParameterLen != 0 => {
            let c: CK_SIGN_ADDITIONAL_CONTEXT = param_struct(m)?;
            let context = input(c.pContext, c.ulContextLen).map_err(|_| Error::MechanismParamInvalid)?.to_vec();
            Param::SignContext { hedge: c.hedgeVariant, context }
        }
        CKM_EDDSA if m.ulParameterLen != 0 => {
            let e: CK_EDDSA_PARAMS = param_struct(m)?;
            let context = input(e.pContextData, e.ulContextDataLen).map_err(|_| Error::MechanismParamInvalid)?.to_vec();
            Param::Eddsa { prehash: e.phFlag != 0, context }
        }
        _ if m.ulParameterLen == 0 => Param::None,
        _ => Param::Bytes(bytes(m)?.to_vec()),
    };
    Ok(Mechanism { ty: m.mechanism, param })
}

/// The most data parameters or additional keys an SP 800-108 parameter may list.
const MAX_KBKDF_ITEMS: CK_ULONG = 64;

/// The elements of a caller's array of `count` T at `p` (NULL only when empty).
fn array<T: Copy>(p: *const T, count: CK_ULONG) -> Result<Vec<T>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if p.is_null() || count > MAX_KBKDF_ITEMS {
        return Err(Error::MechanismParamInvalid);
    }
    // SAFETY: non-NULL, and the caller passes `count` (at most 64) elements of T there;
    // read_unaligned because C callers need not align them for us.
    Ok((0..count as usize).map(|i| unsafe { std::ptr::read_unaligned(p.add(i)) }).collect())
}

/// An SP 800-108 counter or DKM-length format, which must be exactly its structure.
fn kbkdf_struct<T: Copy>(d: &CK_PRF_DATA_PARAM) -> Result<T> {
    if d.pValue.is_null() || d.ulValueLen as usize != std::mem::size_of::<T>() {
        return Err(Error::MechanismParamInvalid);
    }
    // SAFETY: non-NULL, holding ulValueLen == size_of::<T>() bytes as the caller says.
    Ok(unsafe { std::ptr::read_unaligned(d.pValue as *const T) })
}

fn encoding(little_endian: CK_BBOOL, bits: CK_ULONG) -> Result<kbkdf::Encoding> {
    match little_endian {
        CK_TRUE | CK_FALSE => Ok(kbkdf::Encoding { little_endian: little_endian == CK_TRUE, bits }),
        _ => Err(Error::MechanismParamInvalid),
    }
}

/// The data parameters and the additional keys' templates of an SP 800-108 parameter.
type KbkdfLists = (Vec<kbkdf::DataParam>, Vec<Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>>);

/// The data parameters and additional keys of an SP 800-108 parameter, as its structure
/// holds them: (data, count, keys, count).
type RawLists = (*mut CK_PRF_DATA_PARAM, CK_ULONG, *mut CK_DERIVED_KEY, CK_ULONG);

fn kbkdf_param(feedback: bool, prf: CK_MECHANISM_TYPE, lists: RawLists, iv: Vec<u8>) -> Result<Param> {
    let (data, additional) = kbkdf_lists(lists)?;
    Ok(Param::Kbkdf(Box::new(kbkdf::Params { feedback, prf, data, iv, additional })))
}

fn kbkdf_lists((data, n_data, keys, n_keys): RawLists) -> Result<KbkdfLists> {
    let mut params = Vec::new();
    for d in array(data, n_data)? {
        params.push(match d.type_ {
            CK_SP800_108_ITERATION_VARIABLE if d.pValue.is_null() && d.ulValueLen == 0 => {
                kbkdf::DataParam::Iteration(None)
            }
            CK_SP800_108_ITERATION_VARIABLE => {
                let f: CK_SP800_108_COUNTER_FORMAT = kbkdf_struct(&d)?;
                kbkdf::DataParam::Iteration(Some(encoding(f.bLittleEndian, f.ulWidthInBits)?))
            }
            CK_SP800_108_COUNTER => {
                let f: CK_SP800_108_COUNTER_FORMAT = kbkdf_struct(&d)?;
                kbkdf::DataParam::Counter(encoding(f.bLittleEndian, f.ulWidthInBits)?)
            }
            CK_SP800_108_DKM_LENGTH => {
                let f: CK_SP800_108_DKM_LENGTH_FORMAT = kbkdf_struct(&d)?;
                let segments = match f.dkmLengthMethod {
                    CK_SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS => true,
                    CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS => false,
                    _ => return Err(Error::MechanismParamInvalid),
                };
                kbkdf::DataParam::DkmLength { segments, encoding: encoding(f.bLittleEndian, f.ulWidthInBits)? }
            }
            CK_SP800_108_BYTE_ARRAY => kbkdf::DataParam::Bytes(
                input(d.pValue as *const u8, d.ulValueLen).map_err(|_| Error::MechanismParamInvalid)?.to_vec(),
            ),
            _ => return Err(Error::MechanismParamInvalid),
        });
    }
    let mut templates = Vec::new();
    for k in array(keys, n_keys)? {
        if k.phKey.is_null() {
            return Err(Error::MechanismParamInvalid);
        }
        templates.push(template(k.pTemplate, k.ulAttributeCount)?.0.clone());
    }
    Ok((params, templates))
}

/// Where the handles of an SP 800-108 derivation's additional keys go (none for other
/// mechanisms); `mechanism` has checked the parameter.
pub fn additional_key_outputs(p: *const CK_MECHANISM) -> Result<Vec<*mut CK_OBJECT_HANDLE>> {
    // SAFETY: `mechanism` read this CK_MECHANISM already: non-NULL.
    let m = unsafe { &*p };
    let (keys, n) = match m.mechanism {
        CKM_SP800_108_COUNTER_KDF => {
            let k: CK_SP800_108_KDF_PARAMS = param_struct(m)?;
            (k.pAdditionalDerivedKeys, k.ulAdditionalDerivedKeys)
        }
        CKM_SP800_108_FEEDBACK_KDF => {
            let k: CK_SP800_108_FEEDBACK_KDF_PARAMS = param_struct(m)?;
            (k.pAdditionalDerivedKeys, k.ulAdditionalDerivedKeys)
        }
        _ => return Ok(Vec::new()),
    };
    Ok(array(keys as *const CK_DERIVED_KEY, n)?.into_iter().map(|k| k.phKey).collect())
}

/// A message's CK_GCM_MESSAGE_PARAMS (C_EncryptMessage and friends): the IV, and for a
/// decryption (`read_tag`) the tag, copied in.
pub fn gcm_message_params(p: *mut c_void, len: CK_ULONG, read_tag: bool) -> Result<GcmMessageParams> {
    let g = message_param_struct(p, len)?;
    let iv = input(g.pIv, g.ulIvLen).map_err(|_| Error::MechanismParamInvalid)?.to_vec();
    let tag_len = usize::try_from(g.ulTagBits / 8).map_err(|_| Error::MechanismParamInvalid)?;
    let tag = if read_tag {
        input(g.pTag, tag_len as CK_ULONG).map_err(|_| Error::MechanismParamInvalid)?.to_vec()
    } else {
        Vec::new()
    };
    Ok(GcmMessageParams { iv, iv_fixed_bits: g.ulIvFixedBits, generator: g.ivGenerator, tag_bits: g.ulTagBits, tag })
}

/// Writes back what the token made into the caller's CK_GCM_MESSAGE_PARAMS: a generated
/// IV, and an encryption's tag.
pub fn write_gcm_message_params(p: *mut c_void, len: CK_ULONG, params: &GcmMessageParams) -> Result<()> {
    let g = message_param_struct(p, len)?;
    if params.generator != CKG_NO_GENERATE && params.iv.len() as CK_ULONG == g.ulIvLen && !g.pIv.is_null() {
        // SAFETY: pIv holds ulIvLen writable bytes (the IV the caller lent us), which is
        // exactly the length written.
        unsafe { std::ptr::copy_nonoverlapping(params.iv.as_ptr(), g.pIv, params.iv.len()) };
    }
    if !params.tag.is_empty() {
        if g.pTag.is_null() || (params.tag.len() as CK_ULONG) > g.ulTagBits / 8 {
            return Err(Error::MechanismParamInvalid);
        }
        // SAFETY: pTag holds ulTagBits / 8 writable bytes, at least the tag's length.
        unsafe { std::ptr::copy_nonoverlapping(params.tag.as_ptr(), g.pTag, params.tag.len()) };
    }
    Ok(())
}

fn message_param_struct(p: *mut c_void, len: CK_ULONG) -> Result<CK_GCM_MESSAGE_PARAMS> {
    if p.is_null() || len as usize != std::mem::size_of::<CK_GCM_MESSAGE_PARAMS>() {
        return Err(Error::MechanismParamInvalid);
    }
    // SAFETY: non-NULL, and the caller says it holds a CK_GCM_MESSAGE_PARAMS (its size
    // checked); read_unaligned because C callers need not align it for us.
    Ok(unsafe { std::ptr::read_unaligned(p as *const CK_GCM_MESSAGE_PARAMS) })
}

/// Copies `s` into a blank-padded fixed field, cutting at a character boundary.
pub fn padded<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [b' '; N];
    let mut end = s.len().min(N);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out[..end].copy_from_slice(&s.as_bytes()[..end]);
    out
}

/// A label field from the caller (32 bytes, blank padded) as a trimmed string.
pub fn label(p: *const u8) -> Result<String> {
    let raw = input(p, 32)?;
    let s = String::from_utf8_lossy(raw);
    Ok(s.trim_end_matches([' ', '\0']).to_string())
}
