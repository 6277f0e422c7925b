//! The operations of the AWS KMS API on a token: one layer that the `kmstoken kms`
//! command line drives (and the HTTP endpoint will). A request names the operation and its
//! parameters; the answer is the response document AWS returns, or the AWS error. Every
//! operation that touches a key passes the gate itself (through the lifecycle, the reads
//! and the library's key uses): no face decides a permission.

mod byok;
mod data_key_pair;
mod policy;
mod sign;

use crate::error::{Error, Result};
use crate::kms;
use crate::kms::gate::Action;
use crate::kms::lifecycle::{self as lc, KmsResult};
use crate::kms::meta::KeyUsage;
use crate::kms::spec::{self, Algorithm, KeySpec, Material, Origin};
use crate::kms::{clock, AwsError, Face, KmsError};
use crate::library::{Library, Slot};
use crate::mech::{Mechanism, Param};
use crate::object::{ck_bool, ck_ulong};
use crate::token::Token;
use crate::vendor::*;
use clap::{Args, Subcommand};
use cryptoki_sys::*;
use serde_json::{json, Value};
use std::sync::Arc;
use zeroize::Zeroizing;

/// A logged-in session of the `kms` face on one token, closed (and logged out) on drop:
/// what every operation runs as.
pub struct Caller<'a> {
    lib: &'a Library,
    token: Arc<Token>,
    session: CK_SESSION_HANDLE,
}

impl Drop for Caller<'_> {
    fn drop(&mut self) {
        let _ = self.lib.close_session(self.session);
    }
}

impl<'a> Caller<'a> {
    /// A `kms` face session on the token in `slot_id`, logged in as `principal`: `user`,
    /// `so`, or a named user (C_LoginUser with its name).
    pub fn login(lib: &'a Library, slot_id: u64, principal: &str, pin: &[u8]) -> Result<Caller<'a>> {
        let Slot::Token(token) = lib.slot(slot_id)? else { return Err(Error::SlotIdInvalid) };
        let user = if principal == "so" { CKU_SO } else { CKU_USER };
        let session = lib.open_session_as(slot_id, CKF_SERIAL_SESSION | CKF_RW_SESSION, Face::Kms)?;
        let caller = Caller { lib, token, session };
        lib.login_user(session, user, pin, principal.as_bytes())?;
        Ok(caller)
    }
}

/// The flags of generate-data-key and generate-data-key-without-plaintext.
#[derive(Args)]
pub struct DataKeyArgs {
    #[arg(long)]
    key_id: String,
    /// AES_256 or AES_128.
    #[arg(long)]
    key_spec: Option<String>,
    #[arg(long)]
    number_of_bytes: Option<usize>,
    #[arg(long)]
    encryption_context: Option<String>,
}

#[derive(Subcommand)]
pub enum Request {
    /// Create a KMS key: SYMMETRIC_DEFAULT, HMAC_224..512, RSA_2048..4096 or ECC_NIST_P256/P384.
    CreateKey {
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long)]
        key_usage: Option<String>,
        /// SYMMETRIC_DEFAULT when not given.
        #[arg(long)]
        key_spec: Option<String>,
        /// AWS_KMS (default) or EXTERNAL: the key waits in PendingImport for its material.
        #[arg(long)]
        origin: Option<String>,
        /// The key policy (JSON or file://PATH); else the default policy.
        #[arg(long)]
        policy: Option<String>,
        /// Skip the check that the new policy lets you change it later.
        #[arg(long)]
        bypass_policy_lockout_safety_check: bool,
        /// Tags as `TagKey=k,TagValue=v` (repeatable) or JSON.
        #[arg(long, num_args = 1..)]
        tags: Vec<String>,
    },
    /// Show a key's metadata (KeyMetadata).
    DescribeKey {
        #[arg(long)]
        key_id: String,
    },
    /// List the keys of the token (KeyId and KeyArn).
    ListKeys,
    /// Enable a disabled key.
    EnableKey {
        #[arg(long)]
        key_id: String,
    },
    /// Disable a key: no cryptographic use until it is enabled again.
    DisableKey {
        #[arg(long)]
        key_id: String,
    },
    /// Schedule the deletion of a key after a waiting period of 7 to 30 days.
    ScheduleKeyDeletion {
        #[arg(long)]
        key_id: String,
        #[arg(long)]
        pending_window_in_days: Option<u32>,
        /// Delete now, without a window (audited); for operators only.
        #[arg(long)]
        force: bool,
    },
    /// Cancel a scheduled deletion; the key comes back Disabled.
    CancelKeyDeletion {
        #[arg(long)]
        key_id: String,
    },
    /// Rotate a symmetric or HMAC key automatically every 90 to 2560 days.
    EnableKeyRotation {
        #[arg(long)]
        key_id: String,
        #[arg(long)]
        rotation_period_in_days: Option<u32>,
    },
    /// Stop the automatic rotation of a key.
    DisableKeyRotation {
        #[arg(long)]
        key_id: String,
    },
    /// Whether a key rotates automatically, its period and next rotation date.
    GetKeyRotationStatus {
        #[arg(long)]
        key_id: String,
    },
    /// Rotate a key now: new material under the same key id (at most 25 times).
    RotateKeyOnDemand {
        #[arg(long)]
        key_id: String,
    },
    /// List the completed rotations of a key.
    ListKeyRotations {
        #[arg(long)]
        key_id: String,
    },
    /// Give a key a name of the form alias/NAME.
    CreateAlias {
        #[arg(long)]
        alias_name: String,
        #[arg(long)]
        target_key_id: String,
    },
    /// Point an existing alias at another key.
    UpdateAlias {
        #[arg(long)]
        alias_name: String,
        #[arg(long)]
        target_key_id: String,
    },
    /// Remove an alias (the key stays).
    DeleteAlias {
        #[arg(long)]
        alias_name: String,
    },
    /// List the aliases of the token, or of one key.
    ListAliases {
        #[arg(long)]
        key_id: Option<String>,
    },
    /// Add or replace tags on a key (at most 50).
    ///
    /// Tags as `TagKey=k,TagValue=v` (repeatable) or JSON `[{"TagKey":..,"TagValue":..}]`.
    TagResource {
        #[arg(long)]
        key_id: String,
        #[arg(long, num_args = 1.., required = true)]
        tags: Vec<String>,
    },
    /// Remove tags from a key, by tag key.
    UntagResource {
        #[arg(long)]
        key_id: String,
        #[arg(long, num_args = 1.., required = true)]
        tag_keys: Vec<String>,
    },
    /// List the tags of a key.
    ListResourceTags {
        #[arg(long)]
        key_id: String,
    },
    /// Replace the description of a key.
    UpdateKeyDescription {
        #[arg(long)]
        key_id: String,
        #[arg(long)]
        description: String,
    },
    /// Encrypt up to 4096 bytes into a KMS ciphertext blob.
    Encrypt {
        #[arg(long)]
        key_id: String,
        /// fileb://FILE (raw bytes), file://FILE or a literal (both base64, as aws CLI v2).
        #[arg(long)]
        plaintext: String,
        /// k=v,k2=v2 or JSON.
        #[arg(long)]
        encryption_context: Option<String>,
    },
    /// Decrypt a KMS ciphertext blob (the key is found from the blob).
    Decrypt {
        #[arg(long)]
        ciphertext_blob: String,
        #[arg(long)]
        key_id: Option<String>,
        #[arg(long)]
        encryption_context: Option<String>,
    },
    /// Decrypt and encrypt again under another key (or context) without the plaintext
    /// leaving the library.
    ReEncrypt {
        #[arg(long)]
        ciphertext_blob: String,
        #[arg(long)]
        destination_key_id: String,
        #[arg(long)]
        source_key_id: Option<String>,
        #[arg(long)]
        source_encryption_context: Option<String>,
        #[arg(long)]
        destination_encryption_context: Option<String>,
    },
    /// A data key for use outside the token: in plaintext and encrypted under a KMS key.
    GenerateDataKey(DataKeyArgs),
    /// A data key encrypted under a KMS key, without its plaintext.
    GenerateDataKeyWithoutPlaintext(DataKeyArgs),
    /// A new key pair: its public key, and its private key sealed under the KMS key.
    GenerateDataKeyPair(data_key_pair::DataKeyPairArgs),
    /// A new key pair: its public key and its sealed private key, without the plaintext.
    GenerateDataKeyPairWithoutPlaintext(data_key_pair::DataKeyPairArgs),
    /// An RSA wrapping public key and an import token (24 h) for an EXTERNAL key.
    GetParametersForImport(byok::ParametersArgs),
    /// Import wrapped key material into an EXTERNAL key (PendingImport → Enabled).
    ImportKeyMaterial(byok::ImportArgs),
    /// Delete the imported material of an EXTERNAL key; it waits in PendingImport again.
    DeleteImportedKeyMaterial(byok::KeyArgs),
    /// Random bytes (1 to 1024) from the token's generator.
    GenerateRandom {
        #[arg(long)]
        number_of_bytes: usize,
    },
    /// Sign a message or digest with an asymmetric SIGN_VERIFY key.
    Sign(sign::SignArgs),
    /// Verify a signature made with an asymmetric SIGN_VERIFY key.
    Verify {
        #[command(flatten)]
        args: sign::SignArgs,
        #[arg(long)]
        signature: String,
    },
    /// The public key of an asymmetric key (DER SubjectPublicKeyInfo).
    GetPublicKey {
        #[arg(long)]
        key_id: String,
    },
    /// The raw ECDH shared secret of a KEY_AGREEMENT key and a peer's public key.
    DeriveSharedSecret {
        #[arg(long)]
        key_id: String,
        /// ECDH.
        #[arg(long)]
        key_agreement_algorithm: String,
        /// The peer's public key, a DER SubjectPublicKeyInfo on the key's curve.
        #[arg(long)]
        public_key: String,
    },
    /// Make an HMAC with a GENERATE_VERIFY_MAC key.
    GenerateMac {
        #[arg(long)]
        key_id: String,
        #[arg(long)]
        message: String,
        #[arg(long)]
        mac_algorithm: String,
    },
    /// Check an HMAC made with a GENERATE_VERIFY_MAC key.
    VerifyMac {
        #[arg(long)]
        key_id: String,
        #[arg(long)]
        message: String,
        #[arg(long)]
        mac: String,
        #[arg(long)]
        mac_algorithm: String,
    },
    /// Show a key's policy (the JSON document) by its name, `default`.
    GetKeyPolicy {
        #[arg(long)]
        key_id: String,
        #[arg(long, default_value = "default")]
        policy_name: String,
    },
    /// Replace the key policy (JSON text or file://PATH).
    PutKeyPolicy {
        #[arg(long)]
        key_id: String,
        #[arg(long)]
        policy: String,
        #[arg(long, default_value = "default")]
        policy_name: String,
        #[arg(long)]
        bypass_policy_lockout_safety_check: bool,
    },
    /// List the names of a key's policies (always `default`).
    ListKeyPolicies {
        #[arg(long)]
        key_id: String,
    },
}

impl Request {
    /// The AWS operation name, for error messages.
    pub fn operation(&self) -> &'static str {
        use Request::*;
        match self {
            CreateKey { .. } => "CreateKey",
            DescribeKey { .. } => "DescribeKey",
            ListKeys => "ListKeys",
            EnableKey { .. } => "EnableKey",
            DisableKey { .. } => "DisableKey",
            ScheduleKeyDeletion { .. } => "ScheduleKeyDeletion",
            CancelKeyDeletion { .. } => "CancelKeyDeletion",
            EnableKeyRotation { .. } => "EnableKeyRotation",
            DisableKeyRotation { .. } => "DisableKeyRotation",
            GetKeyRotationStatus { .. } => "GetKeyRotationStatus",
            RotateKeyOnDemand { .. } => "RotateKeyOnDemand",
            ListKeyRotations { .. } => "ListKeyRotations",
            CreateAlias { .. } => "CreateAlias",
            UpdateAlias { .. } => "UpdateAlias",
            DeleteAlias { .. } => "DeleteAlias",
            ListAliases { .. } => "ListAliases",
            TagResource { .. } => "TagResource",
            UntagResource { .. } => "UntagResource",
            ListResourceTags { .. } => "ListResourceTags",
            UpdateKeyDescription { .. } => "UpdateKeyDescription",
            Encrypt { .. } => "Encrypt",
            Decrypt { .. } => "Decrypt",
            ReEncrypt { .. } => "ReEncrypt",
            GenerateDataKey(_) => "GenerateDataKey",
            GenerateDataKeyWithoutPlaintext(_) => "GenerateDataKeyWithoutPlaintext",
            GenerateDataKeyPair(_) => "GenerateDataKeyPair",
            GenerateDataKeyPairWithoutPlaintext(_) => "GenerateDataKeyPairWithoutPlaintext",
            GetParametersForImport(_) => "GetParametersForImport",
            ImportKeyMaterial(_) => "ImportKeyMaterial",
            DeleteImportedKeyMaterial(_) => "DeleteImportedKeyMaterial",
            GenerateRandom { .. } => "GenerateRandom",
            Sign(_) => "Sign",
            Verify { .. } => "Verify",
            GetPublicKey { .. } => "GetPublicKey",
            DeriveSharedSecret { .. } => "DeriveSharedSecret",
            GenerateMac { .. } => "GenerateMac",
            VerifyMac { .. } => "VerifyMac",
            GetKeyPolicy { .. } => "GetKeyPolicy",
            PutKeyPolicy { .. } => "PutKeyPolicy",
            ListKeyPolicies { .. } => "ListKeyPolicies",
        }
    }
}

/// Runs one request: the response document, or the AWS error.
pub fn execute(a: &Caller, cmd: Request) -> KmsResult<Value> {
    let t = &*a.token;
    let resolve = |r: &str| lc::resolve(t, r);
    let meta = |h: u64| -> KmsResult<Value> { Ok(lc::describe(&*t.object_any(h)?)) };
    use Request::*;
    Ok(match cmd {
        CreateKey { description, key_usage, key_spec, origin, policy, bypass_policy_lockout_safety_check, tags } => {
            let external = match origin.as_deref().map(Origin::parse) {
                None | Some(Some(Origin::AwsKms)) => false,
                Some(Some(Origin::External)) => true,
                Some(None) => {
                    return Err(KmsError::new(
                        AwsError::UnsupportedOperation,
                        format!(
                            "Origin {} is not supported; use {} or {}",
                            origin.unwrap_or_default(),
                            Origin::AwsKms.name(),
                            Origin::External.name()
                        ),
                    ))
                }
            };
            let key_spec = key_spec.unwrap_or_else(|| KeySpec::SymmetricDefault.name().to_string());
            // What can be refused is read before the key exists: a bad request creates nothing.
            let tags = if tags.is_empty() { Vec::new() } else { parse_tags(&tags)? };
            let policy = policy.map(|p| policy::document(&p)).transpose()?;
            if let Some(doc) = &policy {
                kms::policy::parse(doc, &t.serial)?;
            }
            let h = create_key(a, &key_spec, key_usage.as_deref(), external)?;
            let rest = (|| {
                if !description.is_empty() {
                    lc::update_description(t, h, &description)?;
                }
                if !tags.is_empty() {
                    lc::tag(t, h, &tags)?;
                }
                if let Some(doc) = &policy {
                    kms::key_policy::put(t, h, "default", doc, bypass_policy_lockout_safety_check)?;
                }
                Ok(())
            })();
            if let Err(e) = rest {
                // The lockout check, a tag limit...: the half-made key goes at once (audited).
                let _ = lc::delete_now(t, h);
                return Err(e);
            }
            json!({ "KeyMetadata": meta(h)? })
        }
        DescribeKey { key_id } => {
            let h = resolve(&key_id)?;
            lc::read(t, h, Action::DescribeKey)?;
            json!({ "KeyMetadata": meta(h)? })
        }
        ListKeys => {
            let keys: Vec<Value> =
                lc::keys(t)?.iter().map(|(_, o)| json!({ "KeyId": kms::key_id(o), "KeyArn": kms::arn(o) })).collect();
            json!({ "Keys": keys, "Truncated": false })
        }
        EnableKey { key_id } => {
            lc::enable(t, resolve(&key_id)?, true)?;
            Value::Null
        }
        DisableKey { key_id } => {
            lc::enable(t, resolve(&key_id)?, false)?;
            Value::Null
        }
        ScheduleKeyDeletion { key_id, pending_window_in_days, force } => {
            let h = resolve(&key_id)?;
            let arn = kms::arn(&*t.object_any(h)?);
            if force {
                lc::delete_now(t, h)?;
                return Ok(json!({ "KeyId": arn, "KeyState": "Deleted" }));
            }
            let days = pending_window_in_days.unwrap_or(t.kms.deletion_window_days);
            let date = lc::schedule_deletion(t, h, days)?;
            json!({
                "KeyId": arn,
                "DeletionDate": clock::iso8601(date),
                "KeyState": "PendingDeletion",
                "PendingWindowInDays": days,
            })
        }
        CancelKeyDeletion { key_id } => {
            let h = resolve(&key_id)?;
            lc::cancel_deletion(t, h)?;
            json!({ "KeyId": kms::arn(&*t.object_any(h)?) })
        }
        EnableKeyRotation { key_id, rotation_period_in_days } => {
            lc::enable_rotation(t, resolve(&key_id)?, rotation_period_in_days)?;
            Value::Null
        }
        DisableKeyRotation { key_id } => {
            lc::disable_rotation(t, resolve(&key_id)?)?;
            Value::Null
        }
        GetKeyRotationStatus { key_id } => {
            lc::rotation_status(&*lc::read(t, resolve(&key_id)?, Action::GetKeyRotationStatus)?)
        }
        RotateKeyOnDemand { key_id } => {
            let h = resolve(&key_id)?;
            lc::rotate_on_demand(t, h)?;
            json!({ "KeyId": kms::arn(&*t.object_any(h)?) })
        }
        ListKeyRotations { key_id } => {
            let obj = lc::read(t, resolve(&key_id)?, Action::ListKeyRotations)?;
            let mut rotations = Vec::new();
            let current = obj.ulong(CKA_KMSTOKEN_KEY_VERSION).unwrap_or(1);
            for (version, h) in lc::versions(t, &obj)?.into_iter().rev() {
                let o = t.object_any(h)?;
                let when = o.ulong(CKA_KMSTOKEN_NEXT_ROTATION_DATE).unwrap_or(0) as i64;
                // Each rotation made the next version of the material.
                let made = version + 1;
                rotations.push(json!({
                    "KeyId": kms::arn(&obj),
                    "KeyMaterialId": lc::material_id(&kms::key_id(&obj), made),
                    "KeyMaterialState": spec::material_state(made == current),
                    "RotationDate": clock::iso8601(when),
                }));
            }
            json!({ "Rotations": rotations, "Truncated": false })
        }
        CreateAlias { alias_name, target_key_id } => {
            lc::create_alias(t, &alias_name, resolve(&target_key_id)?)?;
            Value::Null
        }
        UpdateAlias { alias_name, target_key_id } => {
            lc::update_alias(t, &alias_name, resolve(&target_key_id)?)?;
            Value::Null
        }
        DeleteAlias { alias_name } => {
            lc::delete_alias(t, &alias_name)?;
            Value::Null
        }
        ListAliases { key_id } => {
            let only = key_id.map(|k| resolve(&k).and_then(|h| Ok(kms::key_id(&*t.object_any(h)?)))).transpose()?;
            let aliases: Vec<Value> = t
                .aliases()?
                .into_iter()
                .filter(|al| only.as_ref().is_none_or(|k| &al.key_id == k))
                .map(|al| {
                    json!({
                        "AliasName": al.name,
                        "AliasArn": format!("arn:kmstoken:kms:local:{}:{}", t.serial, al.name),
                        "TargetKeyId": al.key_id,
                        "CreationDate": clock::iso8601(al.created),
                        "LastUpdatedDate": clock::iso8601(al.updated),
                    })
                })
                .collect();
            json!({ "Aliases": aliases, "Truncated": false })
        }
        TagResource { key_id, tags } => {
            lc::tag(t, resolve(&key_id)?, &parse_tags(&tags)?)?;
            Value::Null
        }
        UntagResource { key_id, tag_keys } => {
            lc::untag(t, resolve(&key_id)?, &tag_keys)?;
            Value::Null
        }
        ListResourceTags { key_id } => {
            let obj = lc::read(t, resolve(&key_id)?, Action::ListResourceTags)?;
            let tags: Vec<Value> =
                t.tags(&kms::key_id(&obj))?.into_iter().map(|(k, v)| json!({ "TagKey": k, "TagValue": v })).collect();
            json!({ "Tags": tags, "Truncated": false })
        }
        UpdateKeyDescription { key_id, description } => {
            lc::update_description(t, resolve(&key_id)?, &description)?;
            Value::Null
        }
        Encrypt { key_id, plaintext, encryption_context } => {
            let h = resolve(&key_id)?;
            let ctx = parse_context(encryption_context.as_deref())?;
            let blob = encrypt(a, h, &ctx, &blob_arg(&plaintext)?, Action::Encrypt)?;
            json!({
                "CiphertextBlob": b64(&blob),
                "KeyId": kms::arn(&*t.object_any(h)?),
                "EncryptionAlgorithm": Algorithm::SymmetricDefault.name(),
            })
        }
        Decrypt { ciphertext_blob, key_id, encryption_context } => {
            let ctx = parse_context(encryption_context.as_deref())?;
            let expected = key_id.map(|k| resolve(&k).and_then(|h| Ok(kms::key_id(&*t.object_any(h)?)))).transpose()?;
            let (plain, obj) = decrypt(a, expected.as_deref(), &ctx, &blob_arg(&ciphertext_blob)?, Action::Decrypt)?;
            json!({
                "KeyId": kms::arn(&obj),
                "Plaintext": b64(&plain),
                "EncryptionAlgorithm": Algorithm::SymmetricDefault.name(),
            })
        }
        ReEncrypt {
            ciphertext_blob,
            destination_key_id,
            source_key_id,
            source_encryption_context,
            destination_encryption_context,
        } => {
            let src_ctx = parse_context(source_encryption_context.as_deref())?;
            let dst_ctx = parse_context(destination_encryption_context.as_deref())?;
            let expected =
                source_key_id.map(|k| resolve(&k).and_then(|h| Ok(kms::key_id(&*t.object_any(h)?)))).transpose()?;
            // As AWS: kms:ReEncryptFrom on the source key, kms:ReEncryptTo on the destination.
            let blob_in = blob_arg(&ciphertext_blob)?;
            let (plain, src) = decrypt(a, expected.as_deref(), &src_ctx, &blob_in, Action::ReEncryptFrom)?;
            let h = resolve(&destination_key_id)?;
            let blob = encrypt(a, h, &dst_ctx, &plain, Action::ReEncryptTo)?;
            json!({
                "CiphertextBlob": b64(&blob),
                "SourceKeyId": kms::arn(&src),
                "KeyId": kms::arn(&*t.object_any(h)?),
                "SourceEncryptionAlgorithm": Algorithm::SymmetricDefault.name(),
                "DestinationEncryptionAlgorithm": Algorithm::SymmetricDefault.name(),
            })
        }
        GenerateDataKey(args) => data_key(a, args, true)?,
        GenerateDataKeyWithoutPlaintext(args) => data_key(a, args, false)?,
        GenerateDataKeyPair(args) => data_key_pair::run(a, args, true)?,
        GenerateDataKeyPairWithoutPlaintext(args) => data_key_pair::run(a, args, false)?,
        GetParametersForImport(args) => byok::get_parameters(a, args)?,
        ImportKeyMaterial(args) => byok::import_material(a, args)?,
        DeleteImportedKeyMaterial(args) => byok::delete_material(a, args)?,
        GenerateRandom { number_of_bytes } => {
            if !(1..=1024).contains(&number_of_bytes) {
                return Err(KmsError::new(AwsError::Validation, "NumberOfBytes must be between 1 and 1024"));
            }
            let mut out = vec![0u8; number_of_bytes];
            a.lib.generate_random(a.session, &mut out)?;
            json!({ "Plaintext": b64(&out) })
        }
        Sign(s) => {
            let h = resolve(&s.key_id)?;
            let obj = t.object_any(h)?;
            let (mech, input) = signing(&s)?;
            let raw = sign_with(a, &mech, h, &input)?;
            let sig = if obj.key_type() == Some(CKK_EC) { sign::ecdsa_to_der(&raw)? } else { raw };
            json!({ "KeyId": kms::arn(&obj), "Signature": b64(&sig), "SigningAlgorithm": s.signing_algorithm })
        }
        Verify { args: s, signature } => {
            let private = t.object_any(resolve(&s.key_id)?)?;
            let h = public_half(t, &private)?;
            let (mech, input) = signing(&s)?;
            let mut sig = blob_arg(&signature)?;
            if private.key_type() == Some(CKK_EC) {
                sig = sign::ecdsa_from_der(&sig, sign::ec_width(&private)).ok_or_else(invalid_signature)?;
            }
            a.lib.verify_init(a.session, &mech, h).map_err(|e| explain(a, e))?;
            match a.lib.verify(a.session, Some(&input), &sig) {
                Ok(()) => {
                    json!({ "KeyId": kms::arn(&private), "SignatureValid": true, "SigningAlgorithm": s.signing_algorithm })
                }
                Err(crate::error::Error::SignatureInvalid | crate::error::Error::SignatureLenRange) => {
                    return Err(invalid_signature())
                }
                Err(e) => return Err(explain(a, e)),
            }
        }
        GetPublicKey { key_id } => {
            let private = lc::read(t, resolve(&key_id)?, Action::GetPublicKey)?;
            let public = t.object_any(public_half(t, &private)?)?;
            let text = |ty| String::from_utf8_lossy(private.get_raw(ty).unwrap_or_default()).into_owned();
            let (spec, usage) = (text(CKA_KMSTOKEN_KEY_SPEC), text(CKA_KMSTOKEN_KEY_USAGE));
            let mut out = json!({
                "KeyId": kms::arn(&private),
                "PublicKey": b64(&sign::spki(&public)?),
                "KeySpec": spec,
                "CustomerMasterKeySpec": spec,
                "KeyUsage": usage,
            });
            if let Some((member, names)) = lc::algorithms(&private) {
                out[member] = json!(names);
            }
            out
        }
        DeriveSharedSecret { key_id, key_agreement_algorithm, public_key } => {
            if Algorithm::parse(&key_agreement_algorithm) != Some(Algorithm::Ecdh) {
                return Err(KmsError::new(
                    AwsError::Validation,
                    format!("KeyAgreementAlgorithm {key_agreement_algorithm} is not supported; use ECDH"),
                ));
            }
            let h = resolve(&key_id)?;
            let private = t.object_any(h)?;
            let point = sign::peer_point(&private, &blob_arg(&public_key)?)?;
            json!({
                "KeyId": kms::arn(&private),
                "SharedSecret": b64(&shared_secret(a, h, point)?),
                "KeyAgreementAlgorithm": key_agreement_algorithm,
                "KeyOrigin": Origin::of(&private).name(),
            })
        }
        GenerateMac { key_id, message, mac_algorithm } => {
            let h = resolve(&key_id)?;
            let mech = sign::mac_mechanism(&mac_algorithm)?;
            let data = sign::signing_input(&mech, None, &blob_arg(&message)?)?;
            let mac = sign_with(a, &mech, h, &data)?;
            json!({ "Mac": b64(&mac), "MacAlgorithm": mac_algorithm, "KeyId": kms::arn(&*t.object_any(h)?) })
        }
        VerifyMac { key_id, message, mac, mac_algorithm } => {
            let h = resolve(&key_id)?;
            let mech = sign::mac_mechanism(&mac_algorithm)?;
            let data = sign::signing_input(&mech, None, &blob_arg(&message)?)?;
            a.lib.verify_init(a.session, &mech, h).map_err(|e| explain(a, e))?;
            match a.lib.verify(a.session, Some(&data), &blob_arg(&mac)?) {
                Ok(()) => {
                    json!({ "KeyId": kms::arn(&*t.object_any(h)?), "MacValid": true, "MacAlgorithm": mac_algorithm })
                }
                Err(crate::error::Error::SignatureInvalid | crate::error::Error::SignatureLenRange) => {
                    return Err(KmsError::new(AwsError::KmsInvalidMac, "The MAC does not match the message"))
                }
                Err(e) => return Err(explain(a, e)),
            }
        }
        GetKeyPolicy { key_id, policy_name } => policy::get(t, &key_id, &policy_name)?,
        PutKeyPolicy { key_id, policy, policy_name, bypass_policy_lockout_safety_check } => {
            policy::put(t, &key_id, &policy, &policy_name, bypass_policy_lockout_safety_check)?
        }
        ListKeyPolicies { key_id } => policy::list(t, &key_id)?,
    })
}

fn invalid_signature() -> KmsError {
    KmsError::new(AwsError::KmsInvalidSignature, "The signature does not match the message")
}

/// The public key object of a key pair.
fn public_half(t: &Token, private: &crate::object::Object) -> KmsResult<u64> {
    for h in t.objects_of_key(&kms::key_id(private))? {
        if t.object_any(h)?.class() == CKO_PUBLIC_KEY {
            return Ok(h);
        }
    }
    Err(KmsError::new(AwsError::UnsupportedOperation, format!("{} is not an asymmetric key", kms::arn(private))))
}

/// ECDH through C_DeriveKey (the gate sees a KEY_AGREEMENT use): the secret is read from
/// a session key made for it, which is destroyed at once.
fn shared_secret(a: &Caller, key: u64, point: Vec<u8>) -> KmsResult<Zeroizing<Vec<u8>>> {
    let mech = Mechanism {
        ty: CKM_ECDH1_DERIVE,
        param: Param::Ecdh { kdf: CKD_NULL, shared_data: Vec::new(), public_data: point },
    };
    let template = [
        (CKA_CLASS, ck_ulong(CKO_SECRET_KEY)),
        (CKA_KEY_TYPE, ck_ulong(CKK_GENERIC_SECRET)),
        (CKA_TOKEN, ck_bool(false)),
        (CKA_SENSITIVE, ck_bool(false)),
        (CKA_EXTRACTABLE, ck_bool(true)),
    ];
    let derived = a.lib.derive_key(a.session, &mech, key, &template).map_err(|e| explain(a, e))?;
    let secret =
        a.lib.object(a.session, derived, &[CKA_VALUE]).and_then(|o| Ok(Zeroizing::new(o.read(CKA_VALUE)?.to_vec())));
    a.lib.destroy_object(a.session, derived).map_err(|e| explain(a, e))?;
    secret.map_err(|e| explain(a, e))
}

fn sign_with(a: &Caller, mech: &Mechanism, key: u64, data: &[u8]) -> KmsResult<Vec<u8>> {
    a.lib.sign_init(a.session, mech, key).map_err(|e| explain(a, e))?;
    // The length first, as a C caller asks it: ML-DSA signatures run to 4627 bytes.
    let len = a.lib.sign(a.session, Some(data), None).map_err(|e| explain(a, e))?;
    let mut out = vec![0u8; len];
    let n = a.lib.sign(a.session, Some(data), Some(&mut out)).map_err(|e| explain(a, e))?;
    out.truncate(n);
    Ok(out)
}

/// The mechanism and the input of a Sign or Verify.
fn signing(s: &sign::SignArgs) -> KmsResult<(Mechanism, Vec<u8>)> {
    let (mech, digest) = sign::signing_mechanism(&s.signing_algorithm, message_type(s.message_type.as_deref())?)?;
    let input = sign::signing_input(&mech, digest, &blob_arg(&s.message)?)?;
    Ok((mech, input))
}

/// What MessageType says the message is.
fn message_type(name: Option<&str>) -> KmsResult<spec::MessageType> {
    spec::MessageType::parse(name).ok_or_else(|| {
        KmsError::new(
            AwsError::Validation,
            format!("MessageType {} is not RAW, DIGEST or EXTERNAL_MU", name.unwrap_or_default()),
        )
    })
}

/// A failed key use in AWS terms: a refusal of the gate carries its AWS error; the
/// mechanism's own failures are named by `crypto_error`.
fn explain(_: &Caller, e: crate::error::Error) -> KmsError {
    match e {
        crate::error::Error::Kms(..) => KmsError::from(e),
        e => crypto_error(e),
    }
}

pub(crate) fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// A blob argument as the aws CLI v2 reads it: `fileb://` raw bytes, `file://` a file of
/// base64 text, else the base64 text itself.
pub(crate) fn blob_arg(arg: &str) -> KmsResult<Vec<u8>> {
    use base64::Engine;
    let unreadable = |what: &str, e: std::io::Error| KmsError::new(AwsError::Validation, format!("{what}: {e}"));
    if let Some(path) = arg.strip_prefix("fileb://") {
        return std::fs::read(path).map_err(|e| unreadable(path, e));
    }
    let text = match arg.strip_prefix("file://") {
        Some(path) => std::fs::read_to_string(path).map_err(|e| unreadable(path, e))?,
        None => arg.to_string(),
    };
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| KmsError::new(AwsError::Validation, "Invalid base64: use fileb:// for raw bytes"))
}

/// `k=v,k2=v2` (the aws CLI's shorthand) or a JSON object.
pub(crate) fn parse_context(arg: Option<&str>) -> KmsResult<kms::blob::Context> {
    let Some(arg) = arg else { return Ok(Default::default()) };
    let bad = || KmsError::new(AwsError::Validation, format!("cannot read encryption context {arg:?}"));
    if arg.trim_start().starts_with('{') {
        return kms::blob::parse_context(arg.as_bytes()).map_err(|_| bad());
    }
    arg.split(',').map(|p| p.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(bad)).collect()
}

/// What a failed KMS Encrypt or Decrypt means in AWS terms.
fn crypto_error(e: crate::error::Error) -> KmsError {
    use crate::error::Error as E;
    match e {
        E::DataLenRange => KmsError::new(AwsError::Validation, "Plaintext must be 1 to 4096 bytes"),
        E::EncryptedDataInvalid | E::EncryptedDataLenRange => KmsError::new(
            AwsError::InvalidCiphertext,
            "The ciphertext is invalid, was made by a key this token does not have, or its encryption context does not match",
        ),
        E::KeyHandleInvalid => KmsError::new(AwsError::IncorrectKey, "The key id does not match the key that encrypted the ciphertext"),
        E::KeyTypeInconsistent | E::MechanismInvalid => {
            KmsError::new(AwsError::InvalidKeyUsage, "The key's type or usage does not allow this algorithm")
        }
        E::KeyFunctionNotPermitted => {
            KmsError::new(AwsError::InvalidKeyUsage, "The key's attributes do not allow this operation")
        }
        other => KmsError::from(other),
    }
}

/// KMS Encrypt on behalf of `operation`, the action the key policy is asked.
pub(crate) fn encrypt(
    a: &Caller,
    h: u64,
    ctx: &kms::blob::Context,
    plaintext: &[u8],
    operation: Action,
) -> KmsResult<Vec<u8>> {
    a.lib.kms_encrypt(a.session, h, ctx, plaintext, operation).map_err(|e| explain(a, e))
}

fn decrypt(
    a: &Caller,
    expected: Option<&str>,
    ctx: &kms::blob::Context,
    blob: &[u8],
    operation: Action,
) -> KmsResult<(zeroize::Zeroizing<Vec<u8>>, Arc<crate::object::Object>)> {
    a.lib.kms_decrypt(a.session, expected, ctx, blob, operation).map_err(|e| explain(a, e))
}

/// GenerateDataKey(WithoutPlaintext): random bytes, returned sealed under the KMS key.
fn data_key(a: &Caller, args: DataKeyArgs, with_plaintext: bool) -> KmsResult<Value> {
    let DataKeyArgs { key_id, key_spec: spec, number_of_bytes: bytes, encryption_context: context } = args;
    let len = match (spec.as_deref(), bytes) {
        (Some(s), None) => spec::data_key_len(s)
            .ok_or_else(|| KmsError::new(AwsError::Validation, format!("KeySpec {s} is not a data key spec")))?,
        (None, Some(n)) if (1..=1024).contains(&n) => n,
        (None, Some(_)) => return Err(KmsError::new(AwsError::Validation, "NumberOfBytes must be between 1 and 1024")),
        _ => return Err(KmsError::new(AwsError::Validation, "Give exactly one of KeySpec and NumberOfBytes")),
    };
    let h = lc::resolve(&a.token, &key_id)?;
    let ctx = parse_context(context.as_deref())?;
    let mut key = zeroize::Zeroizing::new(vec![0u8; len]);
    a.lib.generate_random(a.session, &mut key)?;
    let operation = if with_plaintext { Action::GenerateDataKey } else { Action::GenerateDataKeyWithoutPlaintext };
    let blob = encrypt(a, h, &ctx, &key, operation)?;
    let mut out = json!({ "CiphertextBlob": b64(&blob), "KeyId": kms::arn(&*a.token.object_any(h)?) });
    if with_plaintext {
        out["Plaintext"] = json!(b64(&key));
    }
    Ok(out)
}

/// `TagKey=k,TagValue=v` (the aws CLI's shorthand) or a JSON list of tag objects.
fn parse_tags(args: &[String]) -> KmsResult<Vec<(String, String)>> {
    let bad = |a: &str| KmsError::new(AwsError::Validation, format!("cannot read tag {a:?}: use TagKey=k,TagValue=v"));
    let mut out = Vec::new();
    for a in args {
        if a.trim_start().starts_with('[') {
            let v: Vec<Value> = serde_json::from_str(a).map_err(|_| bad(a))?;
            for t in v {
                let k = t["TagKey"].as_str().ok_or_else(|| bad(a))?;
                out.push((k.to_string(), t["TagValue"].as_str().unwrap_or("").to_string()));
            }
            continue;
        }
        let mut k = None;
        let mut v = String::new();
        for part in a.split(',') {
            match part.split_once('=') {
                Some(("TagKey", x)) => k = Some(x.to_string()),
                Some(("TagValue", x)) => v = x.to_string(),
                _ => return Err(bad(a)),
            }
        }
        out.push((k.ok_or_else(|| bad(a))?, v));
    }
    Ok(out)
}

/// CreateKey through the same paths as C_GenerateKey and C_GenerateKeyPair: a token key
/// (or pair) of the spec's row, with one usage and its KMS life; returns the handle of the
/// secret or private key.
fn create_key(a: &Caller, spec_name: &str, usage: Option<&str>, external: bool) -> KmsResult<u64> {
    let invalid = |m: String| KmsError::new(AwsError::Validation, m);
    let row = KeySpec::parse(spec_name)
        .map(KeySpec::row)
        .filter(|r| r.creatable)
        .ok_or_else(|| invalid(format!("KeySpec {spec_name} is not supported here")))?;
    let usage = match usage {
        None => row.usages[0],
        Some(u) => KeyUsage::parse(u)
            .filter(|u| row.usages.contains(u))
            .ok_or_else(|| invalid(format!("KeyUsage {u} is not valid for KeySpec {spec_name}")))?,
    };
    let secret = [
        (CKA_TOKEN, ck_bool(true)),
        (CKA_PRIVATE, ck_bool(true)),
        (CKA_SENSITIVE, ck_bool(true)),
        (CKA_EXTRACTABLE, ck_bool(false)),
    ];
    let caps = |on: &[CK_ATTRIBUTE_TYPE]| -> Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)> {
        on.iter().map(|ty| (*ty, ck_bool(true))).collect()
    };
    let (mech, pair_param) = match row.material {
        Material::Aes(len) | Material::Hmac(len) => {
            let mac = usage == KeyUsage::GenerateVerifyMac;
            let mut template = secret.to_vec();
            template.push((CKA_VALUE_LEN, ck_ulong(len as u64)));
            for ty in [CKA_SIGN, CKA_VERIFY] {
                template.push((ty, ck_bool(mac)));
            }
            for ty in [CKA_ENCRYPT, CKA_DECRYPT, CKA_WRAP, CKA_UNWRAP] {
                template.push((ty, ck_bool(!mac)));
            }
            let mech = if mac {
                template.push((CKA_KEY_TYPE, ck_ulong(CKK_GENERIC_SECRET)));
                CKM_GENERIC_SECRET_KEY_GEN
            } else {
                CKM_AES_KEY_GEN
            };
            let m = Mechanism { ty: mech, param: Param::None };
            return Ok(a.lib.generate_kms_key(a.session, &m, &template, external)?);
        }
        Material::Rsa(bits) => (CKM_RSA_PKCS_KEY_PAIR_GEN, (CKA_MODULUS_BITS, ck_ulong(bits as u64))),
        Material::Ec(params) => (CKM_EC_KEY_PAIR_GEN, (CKA_EC_PARAMS, params.to_vec())),
        Material::MlDsa(set) => (CKM_ML_DSA_KEY_PAIR_GEN, (CKA_PARAMETER_SET, ck_ulong(set))),
        Material::Ed25519 => {
            (CKM_EC_EDWARDS_KEY_PAIR_GEN, (CKA_EC_PARAMS, crate::mech::eddsa::ED25519_PARAMS.to_vec()))
        }
    };
    if external {
        return Err(KmsError::new(
            AwsError::UnsupportedOperation,
            "Importing asymmetric key material is not served yet",
        ));
    }
    let (public_caps, private_caps) = match usage {
        KeyUsage::SignVerify => (caps(&[CKA_VERIFY]), caps(&[CKA_SIGN])),
        KeyUsage::EncryptDecrypt => (caps(&[CKA_ENCRYPT, CKA_WRAP]), caps(&[CKA_DECRYPT, CKA_UNWRAP])),
        _ => (caps(&[CKA_DERIVE]), caps(&[CKA_DERIVE])),
    };
    let public = [vec![(CKA_TOKEN, ck_bool(true)), pair_param], public_caps].concat();
    let private = [secret.to_vec(), private_caps].concat();
    let m = Mechanism { ty: mech, param: Param::None };
    let (_, private_handle) = a.lib.generate_key_pair(a.session, &m, &public, &private)?;
    Ok(private_handle)
}
