//! Key policies: the JSON document of an AWS key policy, read once into a form that is
//! cheap to evaluate (every key use asks it), and evaluated as AWS does: an explicit Deny
//! wins, then any Allow, else the request is implicitly denied.
//!
//! What a document may hold:
//! - `Version` (`2012-10-17` or `2008-10-17`), `Id`, and `Statement` (one or a list, not
//!   empty); each statement `Sid`, `Effect` (`Allow` | `Deny`), `Principal`, `Action`,
//!   `Resource` and `Condition`. `NotPrincipal`, `NotAction` and `NotResource` are refused
//!   rather than ignored, and so is any other member.
//! - Principals are the token's: `"*"`, or `{"AWS": P}` (P one or a list) where P is
//!   `*`, an ARN `arn:kmstoken:iam::<token serial>:so|user|user/NAME|public`, or the same
//!   name without the ARN prefix (`public`: a session nobody logged in to, which may use
//!   public objects unless a statement denies it). `*` and `?` work in the names (`user/*`: every named user).
//!   An ARN of another token's principal is valid but matches no one here.
//! - Actions `kms:Name` with `*` and `?`, case-insensitive, or `*`. Resource `*` or the
//!   key's ARN (patterns allowed).
//! - Conditions: StringEquals, StringNotEquals, StringEqualsIgnoreCase,
//!   StringNotEqualsIgnoreCase, StringLike, StringNotLike, each optionally prefixed by
//!   `ForAllValues:` or `ForAnyValue:`, on `kms:EncryptionContext:KEY` (KEY as written,
//!   case-sensitive) and `kms:EncryptionContextKeys`. Any other operator or key is a
//!   malformed document: a condition that cannot be evaluated must not silently turn a
//!   Deny off.
//!
//! `?` matches one byte (names and actions are ASCII; a context value with other
//! characters is best matched with `*`).

use super::blob::Context;
use super::meta::KeyUsage;
use super::spec::KeySpec;
use super::{AwsError, KmsError};
use crate::object::Object;
use crate::vendor::CKA_KMSTOKEN_KEY_SPEC;
use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};

/// The only policy name a key has, as in AWS.
pub const POLICY_NAME: &str = "default";
/// The largest key policy, in bytes (the AWS quota).
pub const MAX_POLICY_BYTES: usize = 32 * 1024;

pub const MALFORMED: AwsError = AwsError::MalformedPolicyDocument;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

#[derive(Debug)]
enum Principals {
    Any,
    /// Name patterns (`so`, `user`, `user/alice`, `user/*`).
    Names(Vec<String>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Equals,
    EqualsIgnoreCase,
    Like,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Quantifier {
    /// No set operator: the key's value (for a multi-valued key: any of them).
    Single,
    ForAllValues,
    ForAnyValue,
}

#[derive(Debug)]
enum ConditionKey {
    Context(String),
    ContextKeys,
}

#[derive(Debug)]
struct Condition {
    op: Op,
    negated: bool,
    quantifier: Quantifier,
    key: ConditionKey,
    values: Vec<String>,
}

#[derive(Debug)]
struct Statement {
    effect: Effect,
    principals: Principals,
    /// Action patterns without their `kms:` prefix (`*` for every action).
    actions: Vec<String>,
    resources: Vec<String>,
    conditions: Vec<Condition>,
}

/// A parsed key policy.
#[derive(Debug, Default)]
pub struct Policy {
    statements: Vec<Statement>,
}

/// What is asked: who, which action (`Encrypt`, without `kms:`), on which key (its ARN),
/// with which encryption context.
pub struct Request<'a> {
    pub principal: &'a str,
    pub action: &'a str,
    pub resource: &'a str,
    pub context: &'a Context,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    ExplicitDeny,
    ImplicitDeny,
}

fn malformed(msg: impl Into<String>) -> KmsError {
    KmsError::new(MALFORMED, msg)
}

/// `*` (any run) and `?` (one byte) glob matching, ASCII case folded when `fold`.
pub fn glob(pattern: &str, text: &str, fold: bool) -> bool {
    let (p, s) = (pattern.as_bytes(), text.as_bytes());
    let eq = |a: u8, b: u8| if fold { a.eq_ignore_ascii_case(&b) } else { a == b };
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && (p[pi] == b'?' || eq(p[pi], s[si])) {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// The ARN of a principal of token `serial`.
pub fn principal_arn(serial: &str, principal: &str) -> String {
    format!("arn:kmstoken:iam::{serial}:{principal}")
}

/// Whether `name` is a principal name (or, with `pattern`, a name pattern): `public` is
/// whoever uses a public object before logging in.
fn valid_principal_name(name: &str, pattern: bool) -> bool {
    match name {
        "so" | "user" | super::PUBLIC => true,
        _ => name.strip_prefix("user/").is_some_and(|n| valid_user_name(n) || (pattern && valid_pattern(n))),
    }
}

/// A named user's name: 1..=64 of the characters IAM allows in user names.
pub fn valid_user_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

fn valid_pattern(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-*?".contains(&b))
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>, KmsError> {
    let one = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        _ => Err(malformed(format!("{what} must be a string or a list of strings"))),
    };
    match v {
        Value::Array(a) if a.is_empty() => Err(malformed(format!("{what} is empty"))),
        Value::Array(a) => a.iter().map(one).collect(),
        v => Ok(vec![one(v)?]),
    }
}

fn parse_principals(v: &Value, serial: &str) -> Result<Principals, KmsError> {
    let list = match v {
        Value::String(s) if s == "*" => return Ok(Principals::Any),
        Value::Object(m) => {
            if let Some(other) = m.keys().find(|k| *k != "AWS") {
                return Err(malformed(format!("Principal {other:?} is not supported: use \"AWS\"")));
            }
            strings(m.get("AWS").ok_or_else(|| malformed("Principal has no \"AWS\" member"))?, "Principal")?
        }
        v => strings(v, "Principal")?,
    };
    let own = format!("arn:kmstoken:iam::{serial}:");
    let mut names = Vec::new();
    for p in list {
        if p == "*" {
            return Ok(Principals::Any);
        }
        let name = match p.strip_prefix("arn:") {
            None => p.as_str(),
            Some(_) => match p.strip_prefix(&own) {
                Some(n) => n,
                None => {
                    // Another token's principal is a valid principal, of no one here.
                    let foreign = p
                        .strip_prefix("arn:kmstoken:iam::")
                        .and_then(|r| r.split_once(':'))
                        .is_some_and(|(s, n)| !s.is_empty() && valid_principal_name(n, true));
                    if foreign {
                        continue;
                    }
                    return Err(malformed(format!(
                        "Policy contains a statement with one or more invalid principals: {p}"
                    )));
                }
            },
        };
        if !valid_principal_name(name, true) {
            return Err(malformed(format!("Policy contains a statement with one or more invalid principals: {p}")));
        }
        names.push(name.to_string());
    }
    Ok(Principals::Names(names))
}

fn parse_actions(v: &Value) -> Result<Vec<String>, KmsError> {
    strings(v, "Action")?
        .into_iter()
        .map(|a| {
            if a == "*" {
                return Ok(a);
            }
            match a.split_once(':') {
                Some((svc, name)) if svc.eq_ignore_ascii_case("kms") && !name.is_empty() => {
                    if name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'*' || b == b'?') {
                        Ok(name.to_string())
                    } else {
                        Err(malformed(format!("Action {a:?} is not a valid action name")))
                    }
                }
                _ => Err(malformed(format!("Action {a:?} is not a kms: action"))),
            }
        })
        .collect()
}

fn parse_operator(name: &str) -> Result<(Op, bool, Quantifier), KmsError> {
    let (quantifier, base) = if let Some(b) = name.strip_prefix("ForAllValues:") {
        (Quantifier::ForAllValues, b)
    } else if let Some(b) = name.strip_prefix("ForAnyValue:") {
        (Quantifier::ForAnyValue, b)
    } else {
        (Quantifier::Single, name)
    };
    let (op, negated) = match base {
        "StringEquals" => (Op::Equals, false),
        "StringNotEquals" => (Op::Equals, true),
        "StringEqualsIgnoreCase" => (Op::EqualsIgnoreCase, false),
        "StringNotEqualsIgnoreCase" => (Op::EqualsIgnoreCase, true),
        "StringLike" => (Op::Like, false),
        "StringNotLike" => (Op::Like, true),
        _ => return Err(malformed(format!("Condition operator {name:?} is not supported"))),
    };
    Ok((op, negated, quantifier))
}

fn parse_condition_key(key: &str) -> Result<ConditionKey, KmsError> {
    const PREFIX: &str = "kms:encryptioncontext:";
    if key.eq_ignore_ascii_case("kms:EncryptionContextKeys") {
        return Ok(ConditionKey::ContextKeys);
    }
    if key.len() > PREFIX.len()
        && key.is_char_boundary(PREFIX.len())
        && key[..PREFIX.len()].eq_ignore_ascii_case(PREFIX)
    {
        return Ok(ConditionKey::Context(key[PREFIX.len()..].to_string()));
    }
    Err(malformed(format!(
        "Condition key {key:?} is not supported: use kms:EncryptionContext:KEY or kms:EncryptionContextKeys"
    )))
}

fn parse_conditions(v: &Value) -> Result<Vec<Condition>, KmsError> {
    let ops = v.as_object().ok_or_else(|| malformed("Condition must be an object"))?;
    let mut out = Vec::new();
    for (op_name, keys) in ops {
        let (op, negated, quantifier) = parse_operator(op_name)?;
        let keys = keys.as_object().ok_or_else(|| malformed(format!("Condition {op_name} must be an object")))?;
        for (key, values) in keys {
            let values = match values {
                Value::Array(a) if a.is_empty() => return Err(malformed(format!("Condition {key} has no value"))),
                Value::Array(a) => a.iter().map(condition_value).collect::<Result<_, _>>()?,
                v => vec![condition_value(v)?],
            };
            out.push(Condition { op, negated, quantifier, key: parse_condition_key(key)?, values });
        }
    }
    Ok(out)
}

fn condition_value(v: &Value) -> Result<String, KmsError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(_) | Value::Number(_) => Ok(v.to_string()),
        _ => Err(malformed("Condition values must be strings")),
    }
}

fn parse_statement(v: &Value, serial: &str) -> Result<Statement, KmsError> {
    let m = v.as_object().ok_or_else(|| malformed("Each statement must be an object"))?;
    for k in m.keys() {
        match k.as_str() {
            "Sid" | "Effect" | "Principal" | "Action" | "Resource" | "Condition" => {}
            "NotPrincipal" | "NotAction" | "NotResource" => {
                return Err(malformed(format!("{k} is not supported in a kmstoken key policy")))
            }
            other => return Err(malformed(format!("Statement member {other:?} is not allowed"))),
        }
    }
    if m.get("Sid").is_some_and(|s| !s.is_string()) {
        return Err(malformed("Sid must be a string"));
    }
    let effect = match m.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        Some(other) => return Err(malformed(format!("Effect {other:?} is neither Allow nor Deny"))),
        None => return Err(malformed("Statement has no Effect")),
    };
    let principals =
        parse_principals(m.get("Principal").ok_or_else(|| malformed("Statement has no Principal"))?, serial)?;
    let actions = parse_actions(m.get("Action").ok_or_else(|| malformed("Statement has no Action"))?)?;
    let resources = strings(m.get("Resource").ok_or_else(|| malformed("Statement has no Resource"))?, "Resource")?;
    let conditions = m.get("Condition").map(parse_conditions).transpose()?.unwrap_or_default();
    Ok(Statement { effect, principals, actions, resources, conditions })
}

/// Reads a key policy document of token `serial`; a document that is not one is
/// MalformedPolicyDocumentException, one over 32 KiB LimitExceededException.
pub fn parse(text: &str, serial: &str) -> Result<Policy, KmsError> {
    if text.len() > MAX_POLICY_BYTES {
        return Err(KmsError::new(
            AwsError::LimitExceeded,
            format!("The key policy is {} bytes; the limit is {MAX_POLICY_BYTES}", text.len()),
        ));
    }
    let v: Value = serde_json::from_str(text).map_err(|e| malformed(format!("The policy is not valid JSON: {e}")))?;
    let m = v.as_object().ok_or_else(|| malformed("The policy must be a JSON object"))?;
    for k in m.keys() {
        if !matches!(k.as_str(), "Version" | "Id" | "Statement") {
            return Err(malformed(format!("Policy member {k:?} is not allowed")));
        }
    }
    match m.get("Version") {
        None => {}
        Some(Value::String(s)) if s == "2012-10-17" || s == "2008-10-17" => {}
        Some(other) => return Err(malformed(format!("Version {other} is not 2012-10-17"))),
    }
    let statements = match m.get("Statement") {
        Some(Value::Array(a)) if !a.is_empty() => {
            a.iter().map(|s| parse_statement(s, serial)).collect::<Result<_, _>>()?
        }
        Some(s @ Value::Object(_)) => vec![parse_statement(s, serial)?],
        Some(_) => return Err(malformed("Statement must be a non-empty list of statements")),
        None => return Err(malformed("The policy has no Statement")),
    };
    Ok(Policy { statements })
}

impl Condition {
    fn holds(&self, ctx: &Context) -> bool {
        let single;
        let values: Vec<&str> = match &self.key {
            ConditionKey::Context(k) => {
                single = ctx.get(k);
                single.map(String::as_str).into_iter().collect()
            }
            ConditionKey::ContextKeys => ctx.keys().map(String::as_str).collect(),
        };
        let hit = |v: &str| {
            let m = self.values.iter().any(|p| match self.op {
                Op::Equals => p == v,
                Op::EqualsIgnoreCase => p.to_lowercase() == v.to_lowercase(),
                Op::Like => glob(p, v, false),
            });
            m != self.negated
        };
        match self.quantifier {
            // A key the request lacks matches nothing; a negated operator then holds.
            Quantifier::Single if values.is_empty() => self.negated,
            Quantifier::Single | Quantifier::ForAnyValue => values.iter().any(|v| hit(v)),
            Quantifier::ForAllValues => values.iter().all(|v| hit(v)),
        }
    }
}

impl Statement {
    fn applies(&self, r: &Request) -> bool {
        let principal = match &self.principals {
            Principals::Any => true,
            Principals::Names(n) => n.iter().any(|p| glob(p, r.principal, false)),
        };
        principal
            && self.actions.iter().any(|a| glob(a, r.action, true))
            && self.resources.iter().any(|p| glob(p, r.resource, false))
            && self.conditions.iter().all(|c| c.holds(r.context))
    }
}

impl Policy {
    /// Explicit Deny wins, then any Allow, else an implicit deny.
    pub fn decide(&self, r: &Request) -> Decision {
        let mut allowed = false;
        for st in &self.statements {
            if st.applies(r) {
                match st.effect {
                    Effect::Deny => return Decision::ExplicitDeny,
                    Effect::Allow => allowed = true,
                }
            }
        }
        if allowed {
            Decision::Allow
        } else {
            Decision::ImplicitDeny
        }
    }

    /// A policy that allows nothing (a stored document that no longer reads).
    pub fn deny_all() -> Policy {
        Policy::default()
    }
}

/// The kind of key a default policy is made for: its usage, and whether it is a
/// symmetric encryption key (which alone serves data keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyKind {
    pub usage: Option<KeyUsage>,
    pub symmetric: bool,
}

impl KeyKind {
    pub fn of(key: &Object) -> KeyKind {
        let spec = key.get_raw(CKA_KMSTOKEN_KEY_SPEC).unwrap_or_default();
        let symmetric = spec.is_empty() || spec == KeySpec::SymmetricDefault.name().as_bytes();
        KeyKind { usage: super::usage(key), symmetric }
    }

    /// What key users may do by default on a key of this kind (the AWS console's default
    /// statements for each kind), and the kind's place in the cache of parsed policies.
    fn user_actions(self) -> (usize, &'static [&'static str]) {
        match self.usage {
            Some(KeyUsage::EncryptDecrypt) if self.symmetric => {
                (0, &["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"])
            }
            Some(KeyUsage::EncryptDecrypt) => {
                (1, &["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:DescribeKey", "kms:GetPublicKey"])
            }
            Some(KeyUsage::SignVerify) => (2, &["kms:DescribeKey", "kms:GetPublicKey", "kms:Sign", "kms:Verify"]),
            Some(KeyUsage::GenerateVerifyMac) => (3, &["kms:DescribeKey", "kms:GenerateMac", "kms:VerifyMac"]),
            Some(KeyUsage::KeyAgreement) => (4, &["kms:DescribeKey", "kms:GetPublicKey", "kms:DeriveSharedSecret"]),
            None => (5, &["kms:DescribeKey"]),
        }
    }
}

/// The AWS key-administrator actions.
const ADMIN_ACTIONS: &[&str] = &[
    "kms:Create*",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
    "kms:Disable*",
    "kms:Get*",
    "kms:Delete*",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
    "kms:RotateKeyOnDemand",
];

/// Whether `action` (`DisableKey`, ...) is one the default policy gives key administrators.
pub fn is_admin_action(action: &str) -> bool {
    let action = format!("kms:{action}");
    ADMIN_ACTIONS.iter().any(|p| glob(p, &action, true))
}

/// The default key policy of a key of token `serial`: the AWS default one, with the
/// token's `user` in the place of the account root (`kms:*`, so that PKCS#11 clients
/// keep every right they had), `so` as the key administrators and every named user as
/// the key users.
pub fn default_document(serial: &str, kind: KeyKind) -> Value {
    json!({
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [
            {
                "Sid": "Enable token user permissions",
                "Effect": "Allow",
                "Principal": { "AWS": principal_arn(serial, "user") },
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "Allow access for Key Administrators",
                "Effect": "Allow",
                "Principal": { "AWS": principal_arn(serial, "so") },
                "Action": ADMIN_ACTIONS,
                "Resource": "*",
            },
            {
                "Sid": "Allow use of the key",
                "Effect": "Allow",
                "Principal": { "AWS": principal_arn(serial, "user/*") },
                "Action": kind.user_actions().1,
                "Resource": "*",
            },
        ],
    })
}

/// The parsed default policy for a key of this usage and spec. It does not depend on
/// the token: the document's ARNs name the token's own principals, which parsing turns
/// into names.
pub fn default_policy(kind: KeyKind) -> Arc<Policy> {
    static KINDS: [OnceLock<Arc<Policy>>; 6] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new(), OnceLock::new(), OnceLock::new(), OnceLock::new()];
    KINDS[kind.user_actions().0]
        .get_or_init(|| {
            let doc = default_document("", kind).to_string();
            Arc::new(parse(&doc, "").unwrap_or_else(|e| {
                log::error!("the default key policy does not parse: {}", e.message);
                Policy::deny_all()
            }))
        })
        .clone()
}

/// The policy document as get-key-policy shows it: the stored text as it was put, or the
/// default document, pretty-printed.
pub fn document_text(stored: Option<&str>, serial: &str, kind: KeyKind) -> String {
    match stored {
        Some(t) => t.to_string(),
        None => serde_json::to_string_pretty(&default_document(serial, kind)).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERIAL: &str = "00112233aabbccdd";

    fn ctx(pairs: &[(&str, &str)]) -> Context {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn ask(p: &Policy, principal: &str, action: &str, c: &Context) -> Decision {
        p.decide(&Request { principal, action, resource: "arn:kmstoken:kms:local:x:key/1", context: c })
    }

    fn parsed(v: Value) -> Policy {
        parse(&v.to_string(), SERIAL).unwrap_or_else(|e| panic!("{}: {}", e.code, e.message))
    }

    fn refused(v: Value) -> String {
        match parse(&v.to_string(), SERIAL) {
            Err(e) => {
                assert_eq!(e.code, MALFORMED, "{}", e.message);
                e.message
            }
            Ok(p) => panic!("accepted: {p:?}"),
        }
    }

    #[test]
    fn glob_matches_as_iam() {
        assert!(glob("*", "", false));
        assert!(glob("Generate*", "generatedatakey", true));
        assert!(!glob("Generate*", "generatedatakey", false));
        assert!(glob("user/*", "user/alice", false));
        assert!(!glob("user/*", "user", false));
        assert!(glob("a?c*", "abcdef", false));
        assert!(glob("*a*b", "xxaxxab", false));
        assert!(!glob("*a*b", "xxaxxa", false));
        assert!(!glob("ReEncrypt*", "Encrypt", true));
    }

    #[test]
    fn default_policy_gives_users_use_and_admins_administration() {
        let e = Context::new();
        let p = default_policy(KeyKind { usage: Some(KeyUsage::EncryptDecrypt), symmetric: true });
        for action in ["Encrypt", "ScheduleKeyDeletion", "PutKeyPolicy", "Sign"] {
            assert_eq!(ask(&p, "user", action, &e), Decision::Allow, "{action}");
        }
        for action in ["Encrypt", "Decrypt", "ReEncryptFrom", "GenerateDataKeyWithoutPlaintext", "DescribeKey"] {
            assert_eq!(ask(&p, "user/alice", action, &e), Decision::Allow, "{action}");
        }
        for action in ["ScheduleKeyDeletion", "PutKeyPolicy", "DisableKey", "Sign"] {
            assert_eq!(ask(&p, "user/alice", action, &e), Decision::ImplicitDeny, "{action}");
        }
        for action in ["PutKeyPolicy", "GetKeyPolicy", "DisableKey", "ScheduleKeyDeletion", "RotateKeyOnDemand"] {
            assert_eq!(ask(&p, "so", action, &e), Decision::Allow, "{action}");
        }
        for action in ["Encrypt", "Decrypt", "GenerateDataKey"] {
            assert_eq!(ask(&p, "so", action, &e), Decision::ImplicitDeny, "{action}");
        }
        let mac = default_policy(KeyKind { usage: Some(KeyUsage::GenerateVerifyMac), symmetric: false });
        assert_eq!(ask(&mac, "user/bob", "GenerateMac", &e), Decision::Allow);
        assert_eq!(ask(&mac, "user/bob", "Encrypt", &e), Decision::ImplicitDeny);
    }

    #[test]
    fn default_document_reads_back_with_the_tokens_arns() {
        let sign = KeyKind { usage: Some(KeyUsage::SignVerify), symmetric: false };
        let doc = default_document(SERIAL, sign);
        assert_eq!(doc["Statement"][0]["Principal"]["AWS"], format!("arn:kmstoken:iam::{SERIAL}:user"));
        let p = parsed(doc);
        assert_eq!(ask(&p, "user/carol", "Sign", &Context::new()), Decision::Allow);
        // Parsed for another token, its ARNs name no one there.
        let other = parse(&default_document(SERIAL, sign).to_string(), "ffff").unwrap();
        assert_eq!(ask(&other, "user", "Sign", &Context::new()), Decision::ImplicitDeny);
    }

    #[test]
    fn deny_wins_over_allow() {
        let p = parsed(json!({
            "Version": "2012-10-17",
            "Statement": [
                { "Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*" },
                { "Effect": "Deny", "Principal": { "AWS": ["user/alice"] }, "Action": "kms:Encrypt", "Resource": "*" },
            ]
        }));
        let e = Context::new();
        assert_eq!(ask(&p, "user/alice", "Encrypt", &e), Decision::ExplicitDeny);
        assert_eq!(ask(&p, "user/alice", "encrypt", &e), Decision::ExplicitDeny);
        assert_eq!(ask(&p, "user/alice", "Decrypt", &e), Decision::Allow);
        assert_eq!(ask(&p, "user/bob", "Encrypt", &e), Decision::Allow);
    }

    #[test]
    fn encryption_context_conditions() {
        let p = parsed(json!({
            "Statement": [{
                "Effect": "Allow",
                "Principal": { "AWS": format!("arn:kmstoken:iam::{SERIAL}:user/alice") },
                "Action": ["kms:Encrypt", "kms:Decrypt"],
                "Resource": "*",
                "Condition": { "StringEquals": { "kms:EncryptionContext:purpose": "backup" } }
            }, {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "kms:*",
                "Resource": "*",
                "Condition": { "ForAnyValue:StringLike": { "kms:EncryptionContextKeys": "secret*" } }
            }]
        }));
        let alice = |c: &Context| ask(&p, "user/alice", "Encrypt", c);
        assert_eq!(alice(&ctx(&[("purpose", "backup")])), Decision::Allow);
        assert_eq!(alice(&ctx(&[("purpose", "backup"), ("team", "x")])), Decision::Allow);
        assert_eq!(alice(&ctx(&[("purpose", "other")])), Decision::ImplicitDeny);
        assert_eq!(alice(&ctx(&[("Purpose", "backup")])), Decision::ImplicitDeny);
        assert_eq!(alice(&Context::new()), Decision::ImplicitDeny);
        assert_eq!(alice(&ctx(&[("purpose", "backup"), ("secretive", "1")])), Decision::ExplicitDeny);

        let all =
            parsed(json!({ "Statement": { "Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*",
            "Condition": { "ForAllValues:StringEquals": { "kms:EncryptionContextKeys": ["a", "b"] },
                           "StringNotEquals": { "kms:EncryptionContext:env": "prod" } } } }));
        let any = |c: &Context| ask(&all, "user", "Decrypt", c);
        assert_eq!(any(&ctx(&[("a", "1")])), Decision::Allow);
        assert_eq!(any(&Context::new()), Decision::Allow);
        assert_eq!(any(&ctx(&[("a", "1"), ("c", "2")])), Decision::ImplicitDeny);
        assert_eq!(any(&ctx(&[("a", "1"), ("env", "prod")])), Decision::ImplicitDeny);
    }

    #[test]
    fn malformed_documents_are_refused() {
        let st = |extra: Value| {
            let mut s = json!({ "Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*" });
            for (k, v) in extra.as_object().unwrap() {
                if v.is_null() {
                    s.as_object_mut().unwrap().remove(k);
                } else {
                    s[k] = v.clone();
                }
            }
            json!({ "Version": "2012-10-17", "Statement": [s] })
        };
        assert!(matches!(parse("{not json", SERIAL), Err(e) if e.code == MALFORMED));
        refused(json!([]));
        refused(json!({ "Version": "2012-10-17" }));
        refused(json!({ "Statement": [] }));
        refused(json!({ "Statement": "x" }));
        refused(json!({ "Version": "2020-01-01", "Statement": st(json!({}))["Statement"] }));
        refused(st(json!({ "Effect": "Maybe" })));
        refused(st(json!({ "Effect": null })));
        refused(st(json!({ "Action": "s3:GetObject" })));
        refused(st(json!({ "Action": null })));
        refused(st(json!({ "Resource": null })));
        refused(st(json!({ "Principal": { "Service": "x" } })));
        refused(st(json!({ "Principal": "root" })));
        refused(st(json!({ "Principal": { "AWS": "arn:aws:iam::123456789012:root" } })));
        refused(st(json!({ "NotAction": "kms:Encrypt" })));
        refused(st(json!({ "Extra": 1 })));
        let m = refused(st(json!({ "Condition": { "NumericEquals": { "kms:EncryptionContext:a": "1" } } })));
        assert!(m.contains("NumericEquals"), "{m}");
        let m = refused(st(json!({ "Condition": { "StringEquals": { "kms:CallerAccount": "1" } } })));
        assert!(m.contains("kms:CallerAccount"), "{m}");
        // Accepted: another token's principal (matching no one here), bare names, patterns.
        parsed(st(json!({ "Principal": { "AWS": ["arn:kmstoken:iam::ffff:user", "so", "user/*"] } })));
        let big = format!("{{\"Statement\":[],\"Id\":\"{}\"}}", "x".repeat(MAX_POLICY_BYTES));
        assert!(matches!(parse(&big, SERIAL), Err(e) if e.code == AwsError::LimitExceeded));
    }

    #[test]
    fn user_names() {
        assert!(valid_user_name("alice"));
        assert!(valid_user_name("svc.backup@ops-1"));
        assert!(!valid_user_name(""));
        assert!(!valid_user_name("a/b"));
        assert!(!valid_user_name("a*"));
        assert!(!valid_user_name(&"a".repeat(65)));
    }
}
