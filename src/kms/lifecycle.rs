//! The life of a KMS key: creation metadata, enable / disable, scheduled deletion and
//! purge, rotation with versions, aliases, tags and description. Used by the PKCS#11
//! functions (C_DestroyObject schedules deletion) and by the command line.

use super::audit::Event;
use super::gate::{self, Action};
use super::meta::{self, KeyState};
use super::spec::{self, Origin};
use super::{arn, clock, is_kms_key, key_id, principal, state, usage, AwsError, Face, KmsError};
use crate::error::Error;
use crate::object::{ck_bool, ck_ulong, Object, Template};
use crate::token::Token;
use crate::vendor::*;
use cryptoki_sys::*;
use serde_json::{json, Value};
use std::sync::Arc;

pub type KmsResult<T> = std::result::Result<T, KmsError>;

pub const MIN_WINDOW_DAYS: u32 = 7;
pub const MAX_WINDOW_DAYS: u32 = 30;
pub const MIN_ROTATION_DAYS: u32 = 90;
pub const MAX_ROTATION_DAYS: u32 = 2560;
pub const DEFAULT_ROTATION_DAYS: u32 = 365;
pub const MAX_ON_DEMAND_ROTATIONS: u64 = 25;
pub const MAX_TAGS: usize = 50;
pub const MAX_DESCRIPTION: usize = 8192;

/// Gives a new token key its KMS life: key id, ARN, spec, usage, state, dates, and the
/// default of CKA_ID (the key id's 16 bytes, so that `pkcs11-tool --id` finds it).
/// `template` is what the client asked for (both templates of a pair), which decides the
/// one usage under `kms-strict` (see `meta::derive_usage`); there the capabilities of the
/// other usages then read FALSE, so that clients choosing keys by attribute choose right.
pub fn on_create(token: &Token, obj: &mut Object, template: &Template, external: bool) -> crate::error::Result<()> {
    let one_usage = token.kms.profile.one_usage();
    let usage = meta::derive_usage(obj, template, one_usage)?;
    if one_usage {
        meta::restrict_to_usage(obj, usage);
    }
    let id = uuid::Uuid::new_v4();
    let key_id = id.to_string();
    let now = clock::now();
    let st = if external { KeyState::PendingImport } else { KeyState::Enabled };
    obj.set(CKA_KMSTOKEN_KEY_ID, key_id.clone().into_bytes());
    obj.set(CKA_KMSTOKEN_ARN, format!("arn:kmstoken:kms:local:{}:key/{key_id}", token.serial).into_bytes());
    obj.set(CKA_KMSTOKEN_KEY_SPEC, spec::spec_name(obj).into_bytes());
    obj.set(CKA_KMSTOKEN_KEY_USAGE, usage.name().as_bytes().to_vec());
    let origin = if external { Origin::External } else { Origin::AwsKms };
    obj.set(CKA_KMSTOKEN_ORIGIN, origin.name().as_bytes().to_vec());
    obj.set(CKA_KMSTOKEN_CREATION_DATE, ck_ulong(now as u64));
    obj.set(CKA_KMSTOKEN_KEY_STATE, ck_ulong(st.code()));
    obj.set(CKA_KMSTOKEN_KEY_VERSION, ck_ulong(1));
    obj.set(CKA_KMSTOKEN_CURRENT, ck_bool(true));
    obj.set(CKA_KMSTOKEN_DESCRIPTION, Vec::new());
    obj.set(CKA_KMSTOKEN_DELETION_DATE, ck_ulong(0));
    obj.set(CKA_KMSTOKEN_PENDING_WINDOW_DAYS, ck_ulong(0));
    obj.set(CKA_KMSTOKEN_ROTATION_ENABLED, ck_bool(false));
    obj.set(CKA_KMSTOKEN_ROTATION_PERIOD_DAYS, ck_ulong(DEFAULT_ROTATION_DAYS as u64));
    obj.set(CKA_KMSTOKEN_NEXT_ROTATION_DATE, ck_ulong(0));
    obj.set(CKA_KMSTOKEN_ON_DEMAND_ROTATIONS, ck_ulong(0));
    // One key id names one key: a copy would be a second key with the same material.
    obj.set(CKA_COPYABLE, ck_bool(false));
    if obj.get_raw(CKA_ID).is_none_or(|v| v.is_empty()) {
        obj.set(CKA_ID, id.as_bytes().to_vec());
    }
    Ok(())
}

/// The public half of a token key pair shares the private key's KMS identity and state,
/// so that it is found with it and purged with it; under `kms-strict` it can do only what
/// the usage allows.
pub fn share_identity(token: &Token, private: &Object, public: &mut Object) {
    for ty in [
        CKA_KMSTOKEN_KEY_ID,
        CKA_KMSTOKEN_ARN,
        CKA_KMSTOKEN_KEY_SPEC,
        CKA_KMSTOKEN_KEY_USAGE,
        CKA_KMSTOKEN_ORIGIN,
        CKA_KMSTOKEN_CREATION_DATE,
        CKA_KMSTOKEN_KEY_STATE,
        CKA_KMSTOKEN_KEY_VERSION,
        CKA_KMSTOKEN_DELETION_DATE,
        CKA_KMSTOKEN_PENDING_WINDOW_DAYS,
    ] {
        if let Some(v) = private.get_raw(ty) {
            public.set(ty, v.to_vec());
        }
    }
    if public.get_raw(CKA_ID).is_none_or(|v| v.is_empty()) {
        if let Some(v) = private.get_raw(CKA_ID) {
            public.set(CKA_ID, v.to_vec());
        }
    }
    if let (true, Some(usage)) = (token.kms.profile.one_usage(), super::usage(private)) {
        meta::restrict_to_usage(public, usage);
    }
}

/// Records a lifecycle event (never read-only, so it is synced at once).
pub fn audit(
    token: &Token,
    name: &str,
    obj: Option<&Object>,
    error: Option<&KmsError>,
    details: Option<Value>,
) -> KmsResult<()> {
    let id = obj.map(key_id);
    token.audit.append(&Event {
        name,
        principal: &principal(token),
        key_id: id.as_deref(),
        key_version: obj.and_then(|o| o.ulong(CKA_KMSTOKEN_KEY_VERSION)),
        error: error.map(|e| (e.code, e.message.clone())),
        details,
        ..Default::default()
    })?;
    Ok(())
}

/// Runs a management operation: the gate first (a refusal is audited there and ends it),
/// then the operation, recorded with its outcome.
pub(crate) fn audited<T>(
    token: &Token,
    action: Action,
    handle: u64,
    op: impl FnOnce(&Object) -> KmsResult<T>,
) -> KmsResult<T> {
    audited_with(token, action, handle, None, op)
}

/// `audited`, with details for the record.
pub(crate) fn audited_with<T>(
    token: &Token,
    action: Action,
    handle: u64,
    details: Option<Value>,
    op: impl FnOnce(&Object) -> KmsResult<T>,
) -> KmsResult<T> {
    let obj = token.object_any(handle)?;
    gate::check(token, &gate::Request::touch(&obj, action, Face::Kms))?;
    let r = op(&obj);
    let after = token.object_any(handle).unwrap_or(obj);
    audit(token, action.name(), Some(&after), r.as_ref().err(), details)?;
    r
}

/// A key the `kms` face reads (describe-key, get-key-policy, list-resource-tags, ...):
/// its object once the gate let `action` through (and audited it).
pub fn read(token: &Token, handle: u64, action: Action) -> KmsResult<Arc<Object>> {
    let obj = token.object_any(handle)?;
    gate::check(token, &gate::Request::touch(&obj, action, Face::Kms))?;
    Ok(obj)
}

/// The current object (the one that holds the newest material) of every key id.
fn is_current(obj: &Object) -> bool {
    obj.class() != CKO_PUBLIC_KEY && (obj.get_raw(CKA_KMSTOKEN_CURRENT).is_none() || obj.bool(CKA_KMSTOKEN_CURRENT))
}

/// Finds a key by key id, key ARN, alias name or alias ARN; returns its current handle.
pub fn resolve(token: &Token, reference: &str) -> KmsResult<u64> {
    let not_found = || KmsError::new(AwsError::NotFound, format!("Key '{reference}' does not exist"));
    let alias_prefix = format!("arn:kmstoken:kms:local:{}:", token.serial);
    let reference = reference.strip_prefix(&alias_prefix).unwrap_or(reference);
    let key_id = if reference.starts_with("alias/") {
        let aliases = token.aliases()?;
        aliases.into_iter().find(|a| a.name == reference).map(|a| a.key_id).ok_or_else(not_found)?
    } else {
        reference.strip_prefix("key/").unwrap_or(reference).to_string()
    };
    let h = current_handle(token, &key_id)?.ok_or_else(not_found)?;
    // Imported material past its ValidTo goes as soon as anyone looks at the key.
    super::import::expire_if_due(token, h, token.object_any(h)?)?;
    Ok(h)
}

fn current_handle(token: &Token, key_id: &str) -> KmsResult<Option<u64>> {
    for h in token.objects_of_key(key_id)? {
        if let Ok(o) = token.object_any(h) {
            if is_current(&o) {
                return Ok(Some(h));
            }
        }
    }
    Ok(None)
}

/// Every key of the token: (handle, object) of the current objects.
pub fn keys(token: &Token) -> KmsResult<Vec<(u64, Arc<Object>)>> {
    let mut out = Vec::new();
    for h in token.token_handles()? {
        if let Ok(o) = token.object_any(h) {
            if is_kms_key(&o) && is_current(&o) {
                out.push((h, o));
            }
        }
    }
    Ok(out)
}

/// Changes KMS attributes on every object of the key (current, versions, public key).
pub(crate) fn set_on_all(token: &Token, obj: &Object, changes: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> KmsResult<()> {
    let mut updates = Vec::new();
    for h in token.objects_of_key(&key_id(obj))? {
        let mut o = (*token.object_any(h)?).clone();
        for (ty, v) in changes {
            o.set(*ty, v.clone());
        }
        updates.push((h, o));
    }
    token.apply(Vec::new(), updates, Vec::new())?;
    Ok(())
}

fn invalid_state(obj: &Object, what: &str) -> KmsError {
    KmsError::new(AwsError::KmsInvalidState, format!("{} is {what}.", arn(obj)))
}

pub fn enable(token: &Token, handle: u64, enabled: bool) -> KmsResult<()> {
    audited(token, if enabled { Action::EnableKey } else { Action::DisableKey }, handle, |obj| {
        match state(obj)? {
            KeyState::PendingDeletion => return Err(invalid_state(obj, "pending deletion")),
            KeyState::PendingImport => return Err(invalid_state(obj, "pending import")),
            _ => {}
        }
        let st = if enabled { KeyState::Enabled } else { KeyState::Disabled };
        set_on_all(token, obj, &[(CKA_KMSTOKEN_KEY_STATE, ck_ulong(st.code()))])
    })
}

/// Schedules deletion after `days` (7..=30); returns the deletion date.
pub fn schedule_deletion(token: &Token, handle: u64, days: u32) -> KmsResult<i64> {
    audited(token, Action::ScheduleKeyDeletion, handle, |obj| {
        if !(MIN_WINDOW_DAYS..=MAX_WINDOW_DAYS).contains(&days) {
            return Err(KmsError::new(
                AwsError::Validation,
                format!("PendingWindowInDays must be between {MIN_WINDOW_DAYS} and {MAX_WINDOW_DAYS}; got {days}"),
            ));
        }
        if state(obj)? == KeyState::PendingDeletion {
            return Err(invalid_state(obj, "pending deletion"));
        }
        let date = clock::now() + days as i64 * clock::DAY;
        set_on_all(
            token,
            obj,
            &[
                (CKA_KMSTOKEN_KEY_STATE, ck_ulong(KeyState::PendingDeletion.code())),
                (CKA_KMSTOKEN_DELETION_DATE, ck_ulong(date as u64)),
                (CKA_KMSTOKEN_PENDING_WINDOW_DAYS, ck_ulong(days as u64)),
            ],
        )?;
        Ok(date)
    })
}

/// Cancels a scheduled deletion; the key comes back Disabled, as in AWS (or
/// PendingImport when it has no material).
pub fn cancel_deletion(token: &Token, handle: u64) -> KmsResult<()> {
    audited(token, Action::CancelKeyDeletion, handle, |obj| {
        if state(obj)? != KeyState::PendingDeletion {
            return Err(invalid_state(obj, "not pending deletion"));
        }
        let back = if super::import::awaits_material(obj) { KeyState::PendingImport } else { KeyState::Disabled };
        set_on_all(
            token,
            obj,
            &[
                (CKA_KMSTOKEN_KEY_STATE, ck_ulong(back.code())),
                (CKA_KMSTOKEN_DELETION_DATE, ck_ulong(0)),
                (CKA_KMSTOKEN_PENDING_WINDOW_DAYS, ck_ulong(0)),
            ],
        )
    })
}

/// Deletes, with their material, the keys whose deletion date has come (run at login: a
/// purge is a write under the key). Each purge is audited as the service event DeleteKey.
pub fn purge_due(token: &Token) -> KmsResult<usize> {
    let due: std::collections::BTreeSet<String> =
        token.due_for_purge(clock::now())?.into_iter().map(|(_, k)| k).collect();
    for key_id in &due {
        let objects = token.purge(key_id)?;
        token.audit.append(&Event {
            name: "DeleteKey",
            key_id: Some(key_id),
            service: true,
            details: Some(json!({ "objects": objects })),
            ..Default::default()
        })?;
        log::info!("token {}: key {key_id} purged after its deletion window", token.serial);
    }
    Ok(due.len())
}

/// Deletes a key at once, without a window: only with the operator's explicit force.
pub fn delete_now(token: &Token, handle: u64) -> KmsResult<()> {
    let obj = token.object_any(handle)?;
    let id = key_id(&obj);
    audit(token, "DeleteKey", Some(&obj), None, Some(json!({ "force": true })))?;
    token.purge(&id)?;
    Ok(())
}

fn rotatable(obj: &Object) -> KmsResult<()> {
    if obj.class() != CKO_SECRET_KEY {
        return Err(KmsError::new(
            AwsError::UnsupportedOperation,
            format!("{} is not a symmetric or HMAC key; asymmetric keys do not rotate.", arn(obj)),
        ));
    }
    if Origin::of(obj) == Origin::External {
        return Err(KmsError::new(
            AwsError::UnsupportedOperation,
            format!("{} origin is {} which is not valid for this operation.", arn(obj), Origin::External.name()),
        ));
    }
    Ok(())
}

fn usable_for_management(obj: &Object) -> KmsResult<()> {
    match state(obj)? {
        KeyState::Disabled => Err(KmsError::new(AwsError::Disabled, format!("{} is disabled.", arn(obj)))),
        KeyState::PendingDeletion => Err(invalid_state(obj, "pending deletion")),
        KeyState::PendingImport => Err(invalid_state(obj, "pending import")),
        KeyState::Enabled => Ok(()),
    }
}

pub fn enable_rotation(token: &Token, handle: u64, period: Option<u32>) -> KmsResult<()> {
    audited(token, Action::EnableKeyRotation, handle, |obj| {
        rotatable(obj)?;
        usable_for_management(obj)?;
        let days = period.unwrap_or(DEFAULT_ROTATION_DAYS);
        if !(MIN_ROTATION_DAYS..=MAX_ROTATION_DAYS).contains(&days) {
            return Err(KmsError::new(
                AwsError::Validation,
                format!("RotationPeriodInDays must be between {MIN_ROTATION_DAYS} and {MAX_ROTATION_DAYS}; got {days}"),
            ));
        }
        let next = clock::now() + days as i64 * clock::DAY;
        set_on_all(
            token,
            obj,
            &[
                (CKA_KMSTOKEN_ROTATION_ENABLED, ck_bool(true)),
                (CKA_KMSTOKEN_ROTATION_PERIOD_DAYS, ck_ulong(days as u64)),
                (CKA_KMSTOKEN_NEXT_ROTATION_DATE, ck_ulong(next as u64)),
            ],
        )
    })
}

pub fn disable_rotation(token: &Token, handle: u64) -> KmsResult<()> {
    audited(token, Action::DisableKeyRotation, handle, |obj| {
        rotatable(obj)?;
        usable_for_management(obj)?;
        set_on_all(
            token,
            obj,
            &[(CKA_KMSTOKEN_ROTATION_ENABLED, ck_bool(false)), (CKA_KMSTOKEN_NEXT_ROTATION_DATE, ck_ulong(0))],
        )
    })
}

/// Rotates now: the current material becomes a read-only version object and the key gets
/// new material under the same key id and handle, in one transaction.
pub fn rotate_on_demand(token: &Token, handle: u64) -> KmsResult<u64> {
    audited(token, Action::RotateKeyOnDemand, handle, |obj| {
        rotatable(obj)?;
        usable_for_management(obj)?;
        let done = obj.ulong(CKA_KMSTOKEN_ON_DEMAND_ROTATIONS).unwrap_or(0);
        if done >= MAX_ON_DEMAND_ROTATIONS {
            return Err(KmsError::new(
                AwsError::LimitExceeded,
                format!("{} has reached the limit of {MAX_ON_DEMAND_ROTATIONS} on-demand rotations.", arn(obj)),
            ));
        }
        rotate(token, handle, obj, true)
    })
}

fn rotate(token: &Token, handle: u64, obj: &Object, on_demand: bool) -> KmsResult<u64> {
    let version = obj.ulong(CKA_KMSTOKEN_KEY_VERSION).unwrap_or(1);
    let len = obj.get_raw(CKA_VALUE).map(<[u8]>::len).ok_or_else(|| KmsError::from(Error::UserNotLoggedIn))?;
    let now = clock::now();
    // The old material, kept as its own read-only object for decrypt, unwrap and verify.
    let mut old = obj.clone();
    old.attrs.remove(&CKA_UNIQUE_ID);
    for ty in [CKA_ENCRYPT, CKA_SIGN, CKA_WRAP, CKA_DERIVE, CKA_MODIFIABLE, CKA_DESTROYABLE, CKA_COPYABLE] {
        old.set(ty, ck_bool(false));
    }
    old.set(CKA_KMSTOKEN_CURRENT, ck_bool(false));
    old.set(CKA_KMSTOKEN_ROTATION_ENABLED, ck_bool(false));
    old.set(CKA_KMSTOKEN_NEXT_ROTATION_DATE, ck_ulong(now as u64));
    let mut new = obj.clone();
    new.set(CKA_VALUE, crate::crypto::random_secret(len)?.to_vec());
    new.attrs.remove(&CKA_CHECK_VALUE);
    new.set(CKA_KMSTOKEN_KEY_VERSION, ck_ulong(version + 1));
    if on_demand {
        let n = obj.ulong(CKA_KMSTOKEN_ON_DEMAND_ROTATIONS).unwrap_or(0);
        new.set(CKA_KMSTOKEN_ON_DEMAND_ROTATIONS, ck_ulong(n + 1));
    } else {
        let period = obj.ulong(CKA_KMSTOKEN_ROTATION_PERIOD_DAYS).unwrap_or(DEFAULT_ROTATION_DAYS as u64) as i64;
        new.set(CKA_KMSTOKEN_NEXT_ROTATION_DATE, ck_ulong((now + period * clock::DAY) as u64));
    }
    token.apply(vec![old], vec![(handle, new)], Vec::new())?;
    Ok(version + 1)
}

/// Rotates `obj` if its automatic rotation is due (checked at login and on use); returns
/// the object to use.
pub fn rotate_if_due(token: &Token, handle: u64, obj: Arc<Object>) -> crate::error::Result<Arc<Object>> {
    let next = obj.ulong(CKA_KMSTOKEN_NEXT_ROTATION_DATE).unwrap_or(0);
    if !is_kms_key(&obj) || !obj.bool(CKA_KMSTOKEN_ROTATION_ENABLED) || next == 0 || next as i64 > clock::now() {
        return Ok(obj);
    }
    // A disabled key keeps its schedule and rotates when it is enabled again.
    if state(&obj)? != KeyState::Enabled {
        return Ok(obj);
    }
    let v = rotate(token, handle, &obj, false).map_err(|e| e.to_error())?;
    token.audit.append(&Event {
        name: "RotateKey",
        key_id: Some(&key_id(&obj)),
        key_version: Some(v),
        service: true,
        ..Default::default()
    })?;
    token.object(handle)
}

/// Automatic rotations that fell due while nobody was logged in.
pub fn rotate_all_due(token: &Token) -> crate::error::Result<()> {
    for h in token.rotating_keys()? {
        let o = token.object_any(h)?;
        if is_current(&o) {
            rotate_if_due(token, h, o)?;
        }
    }
    Ok(())
}

/// The earlier versions of a key, newest first: (version, handle).
/// The KeyMaterialId of a version of a key's material: 64 hex digits, as AWS gives, that
/// name the version (derived from the key id and version number, never from the material).
pub fn material_id(key_id: &str, version: u64) -> String {
    let mut d = crate::crypto::Digest::new(crate::crypto::Hash::Sha256);
    d.update(b"kmstoken key material\0");
    d.update(key_id.as_bytes());
    d.update(&version.to_be_bytes());
    d.finish().iter().map(|b| format!("{b:02x}")).collect()
}

pub fn versions(token: &Token, obj: &Object) -> crate::error::Result<Vec<(u64, u64)>> {
    let mut v = Vec::new();
    for h in token.objects_of_key(&key_id(obj))? {
        let o = token.object_any(h)?;
        if o.class() != CKO_PUBLIC_KEY && !is_current(&o) {
            v.push((o.ulong(CKA_KMSTOKEN_KEY_VERSION).unwrap_or(0), h));
        }
    }
    v.sort_unstable_by(|a, b| b.cmp(a));
    Ok(v)
}

pub fn update_description(token: &Token, handle: u64, description: &str) -> KmsResult<()> {
    audited(token, Action::UpdateKeyDescription, handle, |obj| {
        if description.chars().count() > MAX_DESCRIPTION {
            return Err(KmsError::new(
                AwsError::Validation,
                format!("Description is longer than {MAX_DESCRIPTION} characters"),
            ));
        }
        if state(obj)? == KeyState::PendingDeletion {
            return Err(invalid_state(obj, "pending deletion"));
        }
        set_on_all(token, obj, &[(CKA_KMSTOKEN_DESCRIPTION, description.as_bytes().to_vec())])
    })
}

/// The alias rules: `alias/` + [a-zA-Z0-9:/_-], at most 256 characters, `alias/aws/`
/// reserved.
pub fn check_alias_name(name: &str) -> KmsResult<()> {
    let bad = |why: &str| Err(KmsError::new(AwsError::InvalidAliasName, format!("Alias {name} {why}")));
    let Some(rest) = name.strip_prefix("alias/") else {
        return bad("must begin with alias/");
    };
    if name.starts_with("alias/aws/") {
        return bad("must not begin with alias/aws/, which is reserved");
    }
    if rest.is_empty() || name.len() > 256 {
        return bad("must be 7 to 256 characters long");
    }
    if !rest.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | ':')) {
        return bad("may contain only letters, digits and / _ - :");
    }
    Ok(())
}

pub fn create_alias(token: &Token, name: &str, handle: u64) -> KmsResult<()> {
    audited(token, Action::CreateAlias, handle, |obj| {
        check_alias_name(name)?;
        if state(obj)? == KeyState::PendingDeletion {
            return Err(invalid_state(obj, "pending deletion"));
        }
        if !token.put_alias(name, &key_id(obj), false, clock::now())? {
            return Err(KmsError::new(
                AwsError::AlreadyExists,
                format!("An alias with the name {name} already exists"),
            ));
        }
        Ok(())
    })
}

pub fn update_alias(token: &Token, name: &str, handle: u64) -> KmsResult<()> {
    audited(token, Action::UpdateAlias, handle, |obj| {
        check_alias_name(name)?;
        if state(obj)? == KeyState::PendingDeletion {
            return Err(invalid_state(obj, "pending deletion"));
        }
        let old = token.aliases()?.into_iter().find(|a| a.name == name);
        let Some(old) = old else {
            return Err(KmsError::new(AwsError::NotFound, format!("Alias {name} does not exist")));
        };
        let prev = current_handle(token, &old.key_id)?.map(|h| token.object_any(h)).transpose()?;
        if let Some(prev) = &prev {
            if prev.class() != obj.class() || usage_name(prev) != usage_name(obj) {
                return Err(KmsError::new(
                    AwsError::Validation,
                    "An alias can point only to a key of the same type and key usage",
                ));
            }
        }
        token.put_alias(name, &key_id(obj), true, clock::now())?;
        Ok(())
    })
}

fn usage_name(obj: &Object) -> Vec<u8> {
    obj.get_raw(CKA_KMSTOKEN_KEY_USAGE).map(<[u8]>::to_vec).unwrap_or_default()
}

pub fn delete_alias(token: &Token, name: &str) -> KmsResult<()> {
    let alias = token.aliases()?.into_iter().find(|a| a.name == name);
    let Some(alias) = alias else {
        let e = KmsError::new(AwsError::NotFound, format!("Alias {name} does not exist"));
        audit(token, "DeleteAlias", None, Some(&e), Some(json!({ "aliasName": name })))?;
        return Err(e);
    };
    let obj = current_handle(token, &alias.key_id)?.map(|h| token.object_any(h)).transpose()?;
    if let Some(o) = &obj {
        gate::check(token, &gate::Request::touch(o, Action::DeleteAlias, Face::Kms))?;
    }
    token.delete_alias(name)?;
    audit(token, "DeleteAlias", obj.as_deref(), None, Some(json!({ "aliasName": name })))
}

/// Tag rules: key 1..=128 characters, value 0..=256, neither starting with `aws:`.
pub fn check_tag(k: &str, v: &str) -> KmsResult<()> {
    let n = k.chars().count();
    if n == 0 || n > 128 || v.chars().count() > 256 || k.starts_with("aws:") || v.starts_with("aws:") {
        return Err(KmsError::new(AwsError::Tag, format!("Tag {k:?} is invalid: keys have 1 to 128 characters, values up to 256, and neither may begin with aws:")));
    }
    Ok(())
}

pub fn tag(token: &Token, handle: u64, tags: &[(String, String)]) -> KmsResult<()> {
    audited(token, Action::TagResource, handle, |obj| {
        for (k, v) in tags {
            check_tag(k, v)?;
        }
        if state(obj)? == KeyState::PendingDeletion {
            return Err(invalid_state(obj, "pending deletion"));
        }
        if !token.change_tags(&key_id(obj), tags, &[], MAX_TAGS)? {
            return Err(KmsError::new(AwsError::LimitExceeded, format!("A key can have at most {MAX_TAGS} tags")));
        }
        Ok(())
    })
}

pub fn untag(token: &Token, handle: u64, keys: &[String]) -> KmsResult<()> {
    audited(token, Action::UntagResource, handle, |obj| {
        if state(obj)? == KeyState::PendingDeletion {
            return Err(invalid_state(obj, "pending deletion"));
        }
        token.change_tags(&key_id(obj), &[], keys, MAX_TAGS)?;
        Ok(())
    })
}

fn date_or_null(obj: &Object, ty: CK_ATTRIBUTE_TYPE) -> Value {
    match obj.ulong(ty) {
        Some(d) if d > 0 => json!(clock::iso8601(d as i64)),
        _ => Value::Null,
    }
}

/// KeyMetadata in the shape of `aws kms describe-key`.
pub fn describe(obj: &Object) -> Value {
    let text = |ty| String::from_utf8_lossy(obj.get_raw(ty).unwrap_or_default()).into_owned();
    let st = state(obj).map(|s| s.name()).unwrap_or("Unknown");
    let mut m = json!({
        "KeyId": key_id(obj),
        "Arn": arn(obj),
        "CreationDate": date_or_null(obj, CKA_KMSTOKEN_CREATION_DATE),
        "Enabled": st == "Enabled",
        "Description": text(CKA_KMSTOKEN_DESCRIPTION),
        "KeyUsage": text(CKA_KMSTOKEN_KEY_USAGE),
        "KeyState": st,
        "Origin": text(CKA_KMSTOKEN_ORIGIN),
        "KeyManager": "CUSTOMER",
        "KeySpec": text(CKA_KMSTOKEN_KEY_SPEC),
        "CustomerMasterKeySpec": text(CKA_KMSTOKEN_KEY_SPEC),
        "MultiRegion": false,
        "CurrentKeyMaterialId": material_id(&key_id(obj), obj.ulong(CKA_KMSTOKEN_KEY_VERSION).unwrap_or(1)),
    });
    if st == "PendingDeletion" {
        m["DeletionDate"] = date_or_null(obj, CKA_KMSTOKEN_DELETION_DATE);
        m["PendingDeletionWindowInDays"] = json!(obj.ulong(CKA_KMSTOKEN_PENDING_WINDOW_DAYS).unwrap_or(0));
    }
    if let Some((member, names)) = algorithms(obj) {
        m[member] = json!(names);
    }
    super::import::describe(obj, &mut m);
    m
}

/// The algorithms a key serves in its usage, and the KeyMetadata member (also a
/// GetPublicKey member) that lists them.
pub fn algorithms(obj: &Object) -> Option<(&'static str, Vec<&'static str>)> {
    let algs = super::spec::algorithms_of(obj, usage(obj)?);
    let first = algs.first()?;
    Some((first.family().member(), algs.iter().map(|a| a.name()).collect()))
}

/// GetKeyRotationStatus.
pub fn rotation_status(obj: &Object) -> Value {
    let pending = state(obj).ok() == Some(KeyState::PendingDeletion);
    let mut v = json!({
        "KeyId": arn(obj),
        // While a deletion is pending the status reads false (and comes back on cancel).
        "KeyRotationEnabled": obj.bool(CKA_KMSTOKEN_ROTATION_ENABLED) && !pending,
    });
    if obj.bool(CKA_KMSTOKEN_ROTATION_ENABLED) {
        v["RotationPeriodInDays"] = json!(obj.ulong(CKA_KMSTOKEN_ROTATION_PERIOD_DAYS).unwrap_or(0));
        v["NextRotationDate"] = date_or_null(obj, CKA_KMSTOKEN_NEXT_ROTATION_DATE);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_rules() {
        assert!(check_alias_name("alias/demo-lab_cmk/1").is_ok());
        for bad in ["demo", "alias/", "alias/aws/x", "alias/has space", &format!("alias/{}", "a".repeat(251))] {
            assert_eq!(check_alias_name(bad).unwrap_err().code, AwsError::InvalidAliasName, "{bad}");
        }
        assert!(check_alias_name(&format!("alias/{}", "a".repeat(250))).is_ok());
    }

    #[test]
    fn tag_rules() {
        assert!(check_tag("team", "").is_ok());
        assert!(check_tag(&"k".repeat(128), &"v".repeat(256)).is_ok());
        for (k, v) in [("", "v"), ("aws:x", "v"), ("k", "aws:x")] {
            assert_eq!(check_tag(k, v).unwrap_err().code, AwsError::Tag);
        }
        assert!(check_tag(&"k".repeat(129), "v").is_err());
        assert!(check_tag("k", &"v".repeat(257)).is_err());
    }
}
