//! `kmstoken kms get-parameters-for-import | import-key-material |
//! delete-imported-key-material`: importing key material (BYOK) with the flags and
//! outputs of `aws kms`, over the KMS layer's import (kms::import).

use super::{b64, blob_arg, Caller};
use crate::kms::import;
use crate::kms::lifecycle::{self as lc, KmsResult};
use crate::kms::{self, clock, AwsError, KmsError};
use crate::vendor::CKA_KMSTOKEN_KEY_VERSION;
use clap::Args;
use serde_json::{json, Value};

#[derive(Args)]
pub struct ParametersArgs {
    #[arg(long)]
    pub(super) key_id: String,
    /// RSAES_OAEP_SHA_256, RSAES_OAEP_SHA_1, RSA_AES_KEY_WRAP_SHA_256 or RSA_AES_KEY_WRAP_SHA_1.
    #[arg(long)]
    wrapping_algorithm: String,
    /// RSA_2048, RSA_3072 or RSA_4096.
    #[arg(long)]
    wrapping_key_spec: String,
}

#[derive(Args)]
pub struct ImportArgs {
    #[arg(long)]
    pub(super) key_id: String,
    /// fileb://FILE: the material wrapped with the public key of get-parameters-for-import.
    #[arg(long)]
    encrypted_key_material: String,
    /// fileb://FILE: the import token of the same get-parameters-for-import.
    #[arg(long)]
    import_token: String,
    /// KEY_MATERIAL_EXPIRES (the default; needs --valid-to) or KEY_MATERIAL_DOES_NOT_EXPIRE.
    #[arg(long)]
    expiration_model: Option<String>,
    /// When the material expires: seconds since the epoch, YYYY-MM-DD or
    /// YYYY-MM-DDTHH:MM:SS[Z].
    #[arg(long)]
    valid_to: Option<String>,
}

#[derive(Args)]
pub struct KeyArgs {
    #[arg(long)]
    pub(super) key_id: String,
}

/// A timestamp as the aws CLI takes one: seconds since the epoch, or ISO 8601 in UTC.
fn timestamp(text: &str) -> KmsResult<i64> {
    if let Ok(secs) = text.trim().parse::<f64>() {
        return Ok(secs as i64);
    }
    let t = text.trim();
    let t = t.strip_suffix("+00:00").or_else(|| t.strip_suffix('Z')).unwrap_or(t);
    let t = if t.len() == 10 { format!("{t}T00:00:00") } else { t.to_string() };
    humantime::parse_rfc3339_weak(&t)
        .ok()
        .and_then(|s| s.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
        .ok_or_else(|| KmsError::new(AwsError::Validation, format!("ValidTo {text:?} is not a timestamp")))
}

pub(crate) fn get_parameters(a: &Caller, args: ParametersArgs) -> KmsResult<Value> {
    let h = lc::resolve(&a.token, &args.key_id)?;
    let p = import::get_parameters(&a.token, h, &args.wrapping_algorithm, &args.wrapping_key_spec)?;
    Ok(json!({
        "KeyId": kms::arn(&*a.token.object_any(h)?),
        "ImportToken": b64(&p.import_token),
        "PublicKey": b64(&p.public_key),
        "ParametersValidTo": clock::iso8601(p.valid_to),
    }))
}

pub(crate) fn import_material(a: &Caller, args: ImportArgs) -> KmsResult<Value> {
    let valid_to = args.valid_to.as_deref().map(timestamp).transpose()?;
    let valid_to = import::expiration(args.expiration_model.as_deref(), valid_to)?;
    let h = lc::resolve(&a.token, &args.key_id)?;
    let token = blob_arg(&args.import_token)?;
    let material = blob_arg(&args.encrypted_key_material)?;
    import::import_material(&a.token, h, &token, &material, valid_to)?;
    material_result(a, h)
}

/// KeyId and KeyMaterialId (which names the material's version, not its bytes).
fn material_result(a: &Caller, h: u64) -> KmsResult<Value> {
    let obj = a.token.object_any(h)?;
    let version = obj.ulong(CKA_KMSTOKEN_KEY_VERSION).unwrap_or(1);
    Ok(json!({ "KeyId": kms::arn(&obj), "KeyMaterialId": lc::material_id(&kms::key_id(&obj), version) }))
}

pub(crate) fn delete_material(a: &Caller, args: KeyArgs) -> KmsResult<Value> {
    let h = lc::resolve(&a.token, &args.key_id)?;
    let deleted = material_result(a, h)?;
    import::delete_material(&a.token, h)?;
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps() {
        for t in
            ["1795478400", "2026-11-24", "2026-11-24T00:00:00Z", "2026-11-24T00:00:00", "2026-11-24T00:00:00+00:00"]
        {
            assert_eq!(super::timestamp(t).unwrap(), 1_795_478_400, "{t}");
        }
        assert!(super::timestamp("tomorrow").is_err());
    }
}
