//! `kmstoken import FILE --token LABEL --label L --id HEX`: keys and certificates from a
//! PEM or DER file become token objects, as `softhsm2-util --import` makes them.
//!
//! A file holds at most one key — a private key (PKCS#8 with RSA or EC inside, PKCS#1
//! `RSA PRIVATE KEY`, SEC1 `EC PRIVATE KEY`) or a public key (SPKI `PUBLIC KEY`, PKCS#1
//! `RSA PUBLIC KEY`) — and any number of X.509 certificates (a key and its certificate,
//! or a chain). A private key becomes a private key object (sensitive, not extractable)
//! and its public key object, both with the given CKA_ID and CKA_LABEL; they pass the
//! same library path as C_CreateObject, so a key pair is one KMS key with one usage
//! (--key-usage). The certificate of the key (or, without a key, the first) gets the same
//! CKA_ID and CKA_LABEL, so it is found beside its key; the other certificates of a
//! chain get the label `L #2`, `L #3`... and, as their CKA_ID, the SHA-1 of their public
//! key (the usual subject key identifier).

use super::{as_user, open, pick, secret, Failure};
use clap::Args;
use cryptoki_sys::*;
use der::asn1::{ObjectIdentifier, OctetStringRef};
use der::{Decode, Encode};
use kmstoken::crypto::{Digest, Hash};
use kmstoken::kms::meta::KeyUsage;
use kmstoken::library::{Attribute, Library};
use kmstoken::object::{ck_bool, ck_ulong};
use kmstoken::vendor::CKA_KMSTOKEN_KEY_ID;
use serde_json::{json, Value};
use std::path::PathBuf;
use zeroize::Zeroizing;

#[derive(Args)]
pub struct ImportArgs {
    /// The key and/or certificate file: PEM (one or more blocks) or DER.
    file: PathBuf,
    /// Label of the token (else KMSTOKEN_TOKEN, else the only token).
    #[arg(long)]
    token: Option<String>,
    /// CKA_LABEL of the new objects.
    #[arg(long)]
    label: String,
    /// CKA_ID of the new objects, in hex.
    #[arg(long)]
    id: String,
    /// The user PIN (else KMSTOKEN_PIN, else a prompt).
    #[arg(long)]
    pin: Option<String>,
    /// The one KMS usage of an imported key: SIGN_VERIFY (the default), ENCRYPT_DECRYPT
    /// (RSA) or KEY_AGREEMENT (EC).
    #[arg(long)]
    key_usage: Option<String>,
}

type Secret = Zeroizing<Vec<u8>>;

/// What a file holds, decoded.
enum Item {
    RsaPrivate { n: Vec<u8>, e: Vec<u8>, d: Secret, p: Secret, q: Secret, dp: Secret, dq: Secret, qinv: Secret },
    EcPrivate { params: Vec<u8>, scalar: Secret, point: Option<Vec<u8>> },
    RsaPublic { n: Vec<u8>, e: Vec<u8> },
    EcPublic { params: Vec<u8>, point: Vec<u8> },
    Certificate(Vec<u8>),
}

fn bad(what: impl std::fmt::Display) -> Failure {
    Failure::Local(what.to_string())
}

fn strip_zeros(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| *b != 0).unwrap_or(v.len());
    &v[start..]
}

fn parse_hex(s: &str) -> Result<Vec<u8>, Failure> {
    let s = s.trim_start_matches("0x");
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad(format!("--id {s:?} is not hex")));
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(bad)).collect()
}

fn to_hex(v: &[u8]) -> String {
    v.iter().map(|b| format!("{b:02x}")).collect()
}

fn rsa_private(der: &[u8]) -> der::Result<Item> {
    let k = pkcs1::RsaPrivateKey::from_der(der)?;
    let s = |u: der::asn1::UintRef| Zeroizing::new(u.as_bytes().to_vec());
    Ok(Item::RsaPrivate {
        n: k.modulus.as_bytes().to_vec(),
        e: k.public_exponent.as_bytes().to_vec(),
        d: s(k.private_exponent),
        p: s(k.prime1),
        q: s(k.prime2),
        dp: s(k.exponent1),
        dq: s(k.exponent2),
        qinv: s(k.coefficient),
    })
}

fn rsa_public(der: &[u8]) -> der::Result<Item> {
    let k = pkcs1::RsaPublicKey::from_der(der)?;
    Ok(Item::RsaPublic { n: k.modulus.as_bytes().to_vec(), e: k.public_exponent.as_bytes().to_vec() })
}

/// A SEC1 ECPrivateKey; `params` from the PKCS#8 wrapper when there is one.
fn ec_private(der: &[u8], outer: Option<Vec<u8>>) -> Result<Item, Failure> {
    let k = sec1::EcPrivateKey::from_der(der).map_err(|e| bad(format!("EC private key: {e}")))?;
    let inner = match k.parameters {
        Some(sec1::EcParameters::NamedCurve(oid)) => Some(oid.to_der().map_err(bad)?),
        None => None,
    };
    let params = outer.or(inner).ok_or_else(|| bad("EC private key without its curve"))?;
    Ok(Item::EcPrivate {
        params,
        scalar: Zeroizing::new(k.private_key.to_vec()),
        point: k.public_key.map(<[u8]>::to_vec),
    })
}

fn pkcs8(der: &[u8]) -> Result<Item, Failure> {
    let info = pkcs8::PrivateKeyInfo::from_der(der).map_err(|e| bad(format!("PKCS#8 private key: {e}")))?;
    match info.algorithm.oid {
        const_oid::db::rfc5912::RSA_ENCRYPTION => {
            rsa_private(info.private_key).map_err(|e| bad(format!("RSA private key: {e}")))
        }
        const_oid::db::rfc5912::ID_EC_PUBLIC_KEY => {
            let params = info.algorithm.parameters.map(|p| p.to_der()).transpose().map_err(bad)?;
            ec_private(info.private_key, params)
        }
        oid => Err(bad(format!("unsupported key algorithm {oid} (RSA and EC keys are imported)"))),
    }
}

fn spki(der: &[u8]) -> Result<Item, Failure> {
    let info = spki::SubjectPublicKeyInfoRef::from_der(der).map_err(|e| bad(format!("public key: {e}")))?;
    let bits = info.subject_public_key.as_bytes().ok_or_else(|| bad("public key: not whole bytes"))?;
    match info.algorithm.oid {
        const_oid::db::rfc5912::RSA_ENCRYPTION => rsa_public(bits).map_err(|e| bad(format!("RSA public key: {e}"))),
        const_oid::db::rfc5912::ID_EC_PUBLIC_KEY => {
            let params = info.algorithm.parameters.ok_or_else(|| bad("EC public key without its curve"))?;
            Ok(Item::EcPublic { params: params.to_der().map_err(bad)?, point: bits.to_vec() })
        }
        oid => Err(bad(format!("unsupported key algorithm {oid} (RSA and EC keys are imported)"))),
    }
}

fn certificate(der: &[u8]) -> Result<Item, Failure> {
    x509_cert::Certificate::from_der(der).map_err(|e| bad(format!("certificate: {e}")))?;
    Ok(Item::Certificate(der.to_vec()))
}

/// One PEM block, by its label.
fn pem_item(label: &str, der: &[u8]) -> Result<Option<Item>, Failure> {
    Ok(Some(match label {
        "PRIVATE KEY" => pkcs8(der)?,
        "RSA PRIVATE KEY" => rsa_private(der).map_err(|e| bad(format!("RSA private key: {e}")))?,
        "EC PRIVATE KEY" => ec_private(der, None)?,
        "PUBLIC KEY" => spki(der)?,
        "RSA PUBLIC KEY" => rsa_public(der).map_err(|e| bad(format!("RSA public key: {e}")))?,
        "CERTIFICATE" => certificate(der)?,
        // What `openssl ecparam -genkey` writes before the key.
        "EC PARAMETERS" => return Ok(None),
        "ENCRYPTED PRIVATE KEY" => {
            return Err(bad("encrypted private keys are not imported: decrypt it first (openssl pkey)"))
        }
        other => return Err(bad(format!("unsupported PEM block {other:?}"))),
    }))
}

/// A DER file: whichever of the structures it is.
fn der_item(der: &[u8]) -> Result<Item, Failure> {
    if let Ok(item) = certificate(der) {
        return Ok(item);
    }
    if pkcs8::PrivateKeyInfo::from_der(der).is_ok() {
        return pkcs8(der);
    }
    if let Ok(item) = rsa_private(der) {
        return Ok(item);
    }
    if sec1::EcPrivateKey::from_der(der).is_ok() {
        return ec_private(der, None);
    }
    if spki::SubjectPublicKeyInfoRef::from_der(der).is_ok() {
        return spki(der);
    }
    rsa_public(der).map_err(|_| bad("not a key or certificate in PEM or DER"))
}

/// Every item of a file, in file order.
fn items(bytes: &[u8]) -> Result<Vec<Item>, Failure> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) if t.contains("-----BEGIN ") => t,
        _ => return Ok(vec![der_item(bytes)?]),
    };
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let block = &rest[start..];
        let end_marker = block.find("-----END ").ok_or_else(|| bad("PEM block without its END line"))?;
        let end = block[end_marker + 9..]
            .find("-----")
            .map(|i| end_marker + 9 + i + 5)
            .ok_or_else(|| bad("PEM END line not closed"))?;
        let (label, der) = der::pem::decode_vec(&block.as_bytes()[..end]).map_err(|e| bad(format!("PEM: {e}")))?;
        let der = Zeroizing::new(der);
        if let Some(item) = pem_item(label, &der)? {
            out.push(item);
        }
        rest = &block[end..];
    }
    Ok(out)
}

/// The public key of an item, to match a certificate to its key: the RSA modulus, or
/// the EC point (uncompressed, as the key files and certificates carry it).
fn public_identity(item: &Item) -> Option<Vec<u8>> {
    match item {
        Item::RsaPrivate { n, .. } | Item::RsaPublic { n, .. } => Some(strip_zeros(n).to_vec()),
        Item::EcPublic { point, .. } | Item::EcPrivate { point: Some(point), .. } => Some(point.clone()),
        Item::EcPrivate { params, scalar, point: None } => {
            let der = kmstoken::mech::ec::public_point_of(params, scalar).ok()?;
            OctetStringRef::from_der(&der).ok().map(|o| o.as_bytes().to_vec())
        }
        Item::Certificate(der) => {
            let cert = x509_cert::Certificate::from_der(der).ok()?;
            let spki = cert.tbs_certificate.subject_public_key_info;
            let bits = spki.subject_public_key.as_bytes()?;
            match spki.algorithm.oid {
                const_oid::db::rfc5912::RSA_ENCRYPTION => {
                    Some(strip_zeros(pkcs1::RsaPublicKey::from_der(bits).ok()?.modulus.as_bytes()).to_vec())
                }
                _ => Some(bits.to_vec()),
            }
        }
    }
}

/// The SHA-1 of a certificate's public key bits (RFC 5280's key identifier, method 1).
fn key_identifier(der: &[u8]) -> Vec<u8> {
    let mut h = Digest::new(Hash::Sha1);
    if let Ok(cert) = x509_cert::Certificate::from_der(der) {
        h.update(cert.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes());
    }
    h.finish()
}

/// The template attributes that give a pair its one usage.
fn usage_attributes(usage: Option<&str>, ec: bool) -> Result<(Vec<Attribute>, Vec<Attribute>), Failure> {
    let asked = usage.map(|u| (u, KeyUsage::parse(u)));
    let (sign, crypt, derive) = match asked.map(|(_, u)| u) {
        None | Some(Some(KeyUsage::SignVerify)) => (true, false, false),
        Some(Some(KeyUsage::EncryptDecrypt)) if !ec => (false, true, false),
        Some(Some(KeyUsage::KeyAgreement)) if ec => (false, false, true),
        _ => {
            let kind = if ec { "an EC" } else { "an RSA" };
            return Err(bad(format!("--key-usage {} is not a usage of {kind} key", usage.unwrap_or_default())));
        }
    };
    let public = vec![
        (CKA_VERIFY, ck_bool(sign)),
        (CKA_ENCRYPT, ck_bool(crypt)),
        (CKA_WRAP, ck_bool(crypt)),
        (CKA_DERIVE, ck_bool(derive)),
    ];
    let private = vec![
        (CKA_SIGN, ck_bool(sign)),
        (CKA_DECRYPT, ck_bool(crypt)),
        (CKA_UNWRAP, ck_bool(crypt)),
        (CKA_DERIVE, ck_bool(derive)),
    ];
    Ok((public, private))
}

fn common(class: CK_OBJECT_CLASS, private: bool, id: &[u8], label: &str) -> Vec<Attribute> {
    vec![
        (CKA_CLASS, ck_ulong(class)),
        (CKA_TOKEN, ck_bool(true)),
        (CKA_PRIVATE, ck_bool(private)),
        (CKA_ID, id.to_vec()),
        (CKA_LABEL, label.as_bytes().to_vec()),
    ]
}

/// The public and private templates of a key item (no private template for a public key).
fn key_templates(
    item: &Item,
    id: &[u8],
    label: &str,
    usage: Option<&str>,
) -> Result<(Vec<Attribute>, Option<Vec<Attribute>>), Failure> {
    let ec = matches!(item, Item::EcPrivate { .. } | Item::EcPublic { .. });
    let (pub_usage, priv_usage) = usage_attributes(usage, ec)?;
    let key_type = ck_ulong(if ec { CKK_EC } else { CKK_RSA });
    let mut public = common(CKO_PUBLIC_KEY, false, id, label);
    public.push((CKA_KEY_TYPE, key_type.clone()));
    public.extend(pub_usage);
    let mut private = common(CKO_PRIVATE_KEY, true, id, label);
    private.push((CKA_KEY_TYPE, key_type));
    private.extend([(CKA_SENSITIVE, ck_bool(true)), (CKA_EXTRACTABLE, ck_bool(false))]);
    private.extend(priv_usage);
    match item {
        Item::RsaPrivate { n, e, d, p, q, dp, dq, qinv } => {
            public.extend([(CKA_MODULUS, n.clone()), (CKA_PUBLIC_EXPONENT, e.clone())]);
            private.extend([
                (CKA_MODULUS, n.clone()),
                (CKA_PUBLIC_EXPONENT, e.clone()),
                (CKA_PRIVATE_EXPONENT, d.to_vec()),
                (CKA_PRIME_1, p.to_vec()),
                (CKA_PRIME_2, q.to_vec()),
                (CKA_EXPONENT_1, dp.to_vec()),
                (CKA_EXPONENT_2, dq.to_vec()),
                (CKA_COEFFICIENT, qinv.to_vec()),
            ]);
            Ok((public, Some(private)))
        }
        Item::EcPrivate { params, scalar, point } => {
            let point = match point {
                Some(p) => p.clone(),
                None => kmstoken::mech::ec::public_point_of(params, scalar)?,
            };
            public.extend([(CKA_EC_PARAMS, params.clone()), (CKA_EC_POINT, point)]);
            private.extend([(CKA_EC_PARAMS, params.clone()), (CKA_VALUE, scalar.to_vec())]);
            Ok((public, Some(private)))
        }
        Item::RsaPublic { n, e } => {
            public.extend([(CKA_MODULUS, n.clone()), (CKA_PUBLIC_EXPONENT, e.clone())]);
            Ok((public, None))
        }
        Item::EcPublic { params, point } => {
            public.extend([(CKA_EC_PARAMS, params.clone()), (CKA_EC_POINT, point.clone())]);
            Ok((public, None))
        }
        Item::Certificate(_) => Err(bad("a certificate is not a key")),
    }
}

/// Wipes the secret values of a template once it has served.
struct Wiped(Vec<Attribute>);

impl Drop for Wiped {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for (_, v) in self.0.iter_mut() {
            v.zeroize();
        }
    }
}

fn key_type_name(item: &Item) -> &'static str {
    match item {
        Item::RsaPrivate { .. } | Item::RsaPublic { .. } => "RSA",
        Item::EcPrivate { .. } | Item::EcPublic { .. } => "EC",
        Item::Certificate(_) => "X_509",
    }
}

fn curve_name(params: &[u8]) -> Option<&'static str> {
    match ObjectIdentifier::from_der(params).ok()? {
        const_oid::db::rfc5912::SECP_256_R_1 => Some("P-256"),
        const_oid::db::rfc5912::SECP_384_R_1 => Some("P-384"),
        _ => None,
    }
}

/// What the JSON output says of one new object.
fn described(lib: &Library, h: CK_SESSION_HANDLE, handle: u64, what: &str, item: &Item) -> Value {
    let obj = lib.object(h, handle, &[]).ok().map(|r| r.obj);
    let text = |ty| obj.as_ref().and_then(|o| o.get_raw(ty)).map(|v| String::from_utf8_lossy(v).into_owned());
    let raw = |ty| obj.as_ref().and_then(|o| o.get_raw(ty)).map(to_hex);
    let mut v = json!({
        "Object": what,
        "Handle": handle,
        "Label": text(CKA_LABEL),
        "Id": raw(CKA_ID),
    });
    match item {
        Item::Certificate(_) => {
            v["Subject"] = json!(raw(CKA_SUBJECT));
            v["SerialNumber"] = json!(raw(CKA_SERIAL_NUMBER));
        }
        Item::RsaPrivate { n, .. } | Item::RsaPublic { n, .. } => {
            v["KeyType"] = json!("RSA");
            v["Bits"] = json!(strip_zeros(n).len() * 8);
        }
        Item::EcPrivate { params, .. } | Item::EcPublic { params, .. } => {
            v["KeyType"] = json!("EC");
            v["Curve"] = json!(curve_name(params));
        }
    }
    if let Some(key_id) = text(CKA_KMSTOKEN_KEY_ID) {
        v["KeyId"] = json!(key_id);
    }
    v
}

pub fn run(args: ImportArgs) -> Result<Value, Failure> {
    let bytes = std::fs::read(&args.file).map_err(|e| bad(format!("{}: {e}", args.file.display())))?;
    let bytes = Zeroizing::new(bytes);
    let id = parse_hex(&args.id)?;
    let items = items(&bytes).map_err(|m| bad(format!("{}: {m}", args.file.display())))?;
    let (keys, certs): (Vec<&Item>, Vec<&Item>) = items.iter().partition(|i| !matches!(i, Item::Certificate(_)));
    if keys.len() > 1 {
        return Err(bad(format!("{}: holds {} keys; import one key per file", args.file.display(), keys.len())));
    }
    if keys.is_empty() && certs.is_empty() {
        return Err(bad(format!("{}: holds no key or certificate", args.file.display())));
    }
    let key = keys.first().copied();
    // Everything is decoded and its templates made before the token is touched.
    let templates = key.map(|k| key_templates(k, &id, &args.label, args.key_usage.as_deref())).transpose()?;
    let key_identity = key.and_then(public_identity);
    let primary = key_identity
        .as_ref()
        .and_then(|ki| certs.iter().position(|c| public_identity(c).as_ref() == Some(ki)))
        .unwrap_or(0);
    let mut cert_templates = Vec::new();
    let mut n = 1;
    for (i, c) in certs.iter().enumerate() {
        let Item::Certificate(der) = c else { continue };
        let (cid, clabel) = if i == primary {
            (id.clone(), args.label.clone())
        } else {
            n += 1;
            (key_identifier(der), format!("{} #{n}", args.label))
        };
        let mut t = common(CKO_CERTIFICATE, false, &cid, &clabel);
        t.extend([(CKA_CERTIFICATE_TYPE, ck_ulong(CKC_X_509)), (CKA_VALUE, der.clone())]);
        cert_templates.push((t, *c));
    }

    let lib = open()?;
    let t = pick(&lib, args.token, None)?;
    let pin = secret(args.pin, "KMSTOKEN_PIN", "user PIN: ")?;
    let imported = as_user(&lib, &t, CKU_USER, &pin, |h| {
        let mut out = Vec::new();
        if let (Some(key), Some((public, private))) = (key, templates) {
            let kind = key_type_name(key);
            match private {
                Some(private) => {
                    let private = Wiped(private);
                    let (ph, kh) = lib.create_key_pair(h, &public, &private.0)?;
                    out.push(described(&lib, h, kh, &format!("{kind} private key"), key));
                    out.push(described(&lib, h, ph, &format!("{kind} public key"), key));
                }
                None => {
                    let ph = lib.create_object(h, &public)?;
                    out.push(described(&lib, h, ph, &format!("{kind} public key"), key));
                }
            }
        }
        for (t, item) in &cert_templates {
            let ch = lib.create_object(h, t)?;
            out.push(described(&lib, h, ch, "X.509 certificate", item));
        }
        Ok(out)
    })?;
    Ok(json!({ "Token": t.label, "Imported": imported }))
}
