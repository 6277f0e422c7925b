//! `kmstoken kms generate-data-key-pair` and `generate-data-key-pair-without-plaintext`:
//! a new key pair that belongs to no key object, its private key (PKCS#8 DER) returned
//! sealed in a KMS ciphertext blob under a symmetric encryption KMS key, as AWS does.

use super::{b64, encrypt, parse_context, Caller};
use crate::crypto::{self, PairSpec};
use crate::kms::gate::Action;
use crate::kms::lifecycle::{self as lc, KmsResult};
use crate::kms::spec::{self, KeySpec, Material};
use crate::kms::{self, AwsError, KmsError};
use clap::Args;
use cryptoki_sys::CKO_SECRET_KEY;
use serde_json::{json, Value};

/// The flags of generate-data-key-pair(-without-plaintext).
#[derive(Args)]
pub struct DataKeyPairArgs {
    /// The symmetric encryption KMS key that seals the private key.
    #[arg(long)]
    pub(super) key_id: String,
    /// RSA_2048, RSA_3072, RSA_4096, ECC_NIST_P256, ECC_NIST_P384, ECC_NIST_P521 or
    /// ECC_SECG_P256K1.
    #[arg(long)]
    key_pair_spec: String,
    /// k=v,k2=v2 or JSON: needed again to decrypt the private key.
    #[arg(long)]
    pub(super) encryption_context: Option<String>,
}

fn pair_spec(name: &str) -> KmsResult<PairSpec> {
    if name == spec::SM2 {
        return Err(KmsError::new(
            AwsError::UnsupportedOperation,
            format!("KeyPairSpec {name} is offered only in China Regions"),
        ));
    }
    Ok(match KeySpec::parse(name).map(|s| s.row().material) {
        Some(Material::Rsa(bits)) => PairSpec::Rsa(bits),
        Some(Material::Ec(spec::P256)) => PairSpec::P256,
        Some(Material::Ec(spec::P384)) => PairSpec::P384,
        Some(Material::Ec(spec::P521)) => PairSpec::P521,
        Some(Material::Ec(spec::SECP256K1)) => PairSpec::Secp256k1,
        _ => return Err(KmsError::new(AwsError::Validation, format!("KeyPairSpec {name} is not a key pair spec"))),
    })
}

/// GenerateDataKeyPair(WithoutPlaintext).
pub(crate) fn run(a: &Caller, args: DataKeyPairArgs, with_plaintext: bool) -> KmsResult<Value> {
    let spec = pair_spec(&args.key_pair_spec)?;
    let h = lc::resolve(&a.token, &args.key_id)?;
    let obj = a.token.object_any(h)?;
    if obj.class() != CKO_SECRET_KEY {
        return Err(KmsError::new(
            AwsError::UnsupportedOperation,
            format!("{} is asymmetric; data key pairs are sealed under symmetric encryption keys", kms::arn(&obj)),
        ));
    }
    let ctx = parse_context(args.encryption_context.as_deref())?;
    let (private, public) = crypto::generate_exportable_pair(spec)?;
    let operation =
        if with_plaintext { Action::GenerateDataKeyPair } else { Action::GenerateDataKeyPairWithoutPlaintext };
    let blob = encrypt(a, h, &ctx, &private, operation)?;
    let mut out = json!({
        "PrivateKeyCiphertextBlob": b64(&blob),
        "PublicKey": b64(&public),
        "KeyId": kms::arn(&obj),
        "KeyPairSpec": args.key_pair_spec,
    });
    if with_plaintext {
        out["PrivateKeyPlaintext"] = json!(b64(&private));
    }
    Ok(out)
}
