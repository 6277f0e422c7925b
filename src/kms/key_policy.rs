//! GetKeyPolicy, PutKeyPolicy and ListKeyPolicies on a key: the stored document (or the
//! default one), AWS's lockout safety check, and the audit record of every change.

use super::blob::Context;
use super::gate::Action;
use super::lifecycle::{audited, set_on_all, KmsResult};
use super::policy::{self, Decision, Request, POLICY_NAME};
use super::{arn, principal, AwsError, KmsError};
use crate::token::Token;
use crate::vendor::*;

fn check_name(name: &str) -> KmsResult<()> {
    if name == POLICY_NAME {
        return Ok(());
    }
    Err(KmsError::new(AwsError::NotFound, format!("Policy {name} does not exist: the only policy name is default")))
}

/// The key policy document of the key behind `handle`, as put (or the default one).
pub fn get(token: &Token, handle: u64, name: &str) -> KmsResult<String> {
    check_name(name)?;
    let obj = token.object_any(handle)?;
    let stored = obj.get_raw(CKA_KMSTOKEN_KEY_POLICY).map(|v| String::from_utf8_lossy(v).into_owned());
    Ok(policy::document_text(stored.as_deref(), &token.serial, policy::KeyKind::of(&obj)))
}

/// Replaces the key policy. The document must read as a key policy of this token, and,
/// unless `bypass_lockout_check`, it must still let the caller put a key policy (AWS's
/// lockout safety check: a key whose policy no one may change is lost to its
/// administrators). Any refusal changes nothing. The change reaches every object of the
/// key (versions, public half) so that each use finds the same policy.
pub fn put(token: &Token, handle: u64, name: &str, document: &str, bypass_lockout_check: bool) -> KmsResult<()> {
    audited(token, Action::PutKeyPolicy, handle, |obj| {
        if name != POLICY_NAME {
            return Err(KmsError::new(AwsError::Validation, "PolicyName must be default"));
        }
        let parsed = policy::parse(document, &token.serial)?;
        if !bypass_lockout_check {
            let who = principal(token);
            let key_arn = arn(obj);
            let empty = Context::new();
            let request = Request { principal: &who, action: "PutKeyPolicy", resource: &key_arn, context: &empty };
            if parsed.decide(&request) != Decision::Allow {
                return Err(KmsError::new(
                    policy::MALFORMED,
                    "The new key policy will not allow you to update the key policy in the future.",
                ));
            }
        }
        set_on_all(token, obj, &[(CKA_KMSTOKEN_KEY_POLICY, document.as_bytes().to_vec())])
    })
}

/// The names of the key's policies: always just `default`.
pub fn names() -> Vec<&'static str> {
    vec![POLICY_NAME]
}
