//! The key policy on the command line: the gate every `kmstoken kms` command on a key
//! passes before it runs, and get-key-policy, put-key-policy and list-key-policies.
//!
//! Every command on a key is checked here with its own action name (describe-key:
//! `kms:DescribeKey`, generate-data-key: `kms:GenerateDataKey`, ...), and only refusals
//! are audited here. Commands that use a key cryptographically then pass the library's
//! gate as the PKCS#11 functions do, on behalf of the same operation, which is audited
//! with its outcome; re-encrypt is not checked here (its source key comes from the blob)
//! but there: `kms:ReEncryptFrom` on the source key, `kms:ReEncryptTo` on the destination.

use kmstoken::kms::blob::Context;
use kmstoken::kms::key_policy;
use kmstoken::kms::lifecycle::{self as lc, KmsResult};
use kmstoken::kms::{self, KmsError};
use kmstoken::token::Token;
use serde_json::{json, Value};

/// Checks `operation` on the key `reference` names (key id, ARN or alias), with the
/// command's encryption context, against its key policy; a refusal is audited. A reference that names no key passes: the command
/// itself then says NotFoundException.
pub fn gate(token: &Token, reference: Option<&str>, operation: &str, context: &Context) -> KmsResult<()> {
    let Some(reference) = reference else { return Ok(()) };
    let Ok(handle) = lc::resolve(token, reference) else { return Ok(()) };
    let obj = token.object_any(handle)?;
    kms::permit(token, &obj, operation, context)
}

/// The policy argument as the aws CLI reads it: `file://PATH` or the JSON text itself.
pub fn document(arg: &str) -> KmsResult<String> {
    match arg.strip_prefix("file://") {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| KmsError::new("ValidationException", format!("cannot read {path}: {e}"))),
        None => Ok(arg.to_string()),
    }
}

pub fn get(token: &Token, key_id: &str, name: &str) -> KmsResult<Value> {
    let h = lc::resolve(token, key_id)?;
    Ok(json!({ "Policy": key_policy::get(token, h, name)?, "PolicyName": name }))
}

pub fn put(token: &Token, key_id: &str, policy: &str, name: &str, bypass: bool) -> KmsResult<Value> {
    let h = lc::resolve(token, key_id)?;
    key_policy::put(token, h, name, &document(policy)?, bypass)?;
    Ok(Value::Null)
}

pub fn list(token: &Token, key_id: &str) -> KmsResult<Value> {
    lc::resolve(token, key_id)?;
    Ok(json!({ "PolicyNames": key_policy::names(), "Truncated": false }))
}
