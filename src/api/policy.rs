//! get-key-policy, put-key-policy and list-key-policies on the command line; the core's
//! gate decides whether each may run.

use crate::kms::gate::Action;
use crate::kms::key_policy;
use crate::kms::lifecycle::{self as lc, KmsResult};
use crate::kms::{AwsError, KmsError};
use crate::token::Token;
use serde_json::{json, Value};

/// The policy argument as the aws CLI reads it: `file://PATH` or the JSON text itself.
pub fn document(arg: &str) -> KmsResult<String> {
    match arg.strip_prefix("file://") {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| KmsError::new(AwsError::Validation, format!("cannot read {path}: {e}"))),
        None => Ok(arg.to_string()),
    }
}

pub fn get(token: &Token, key_id: &str, name: &str) -> KmsResult<Value> {
    let h = lc::resolve(token, key_id)?;
    lc::read(token, h, Action::GetKeyPolicy)?;
    Ok(json!({ "Policy": key_policy::get(token, h, name)?, "PolicyName": name }))
}

pub fn put(token: &Token, key_id: &str, policy: &str, name: &str, bypass: bool) -> KmsResult<Value> {
    let h = lc::resolve(token, key_id)?;
    key_policy::put(token, h, name, &document(policy)?, bypass)?;
    Ok(Value::Null)
}

pub fn list(token: &Token, key_id: &str) -> KmsResult<Value> {
    lc::read(token, lc::resolve(token, key_id)?, Action::ListKeyPolicies)?;
    Ok(json!({ "PolicyNames": key_policy::names(), "Truncated": false }))
}
