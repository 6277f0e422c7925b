//! Java 17's SunPKCS11 provider and `keytool` against the module, with the JDK's software
//! providers and openssl as the oracles.
//!
//! `sunpkcs11_...` compiles tests/java/Interop.java with `javac` into the test's
//! directory and runs it with `java` on two SunPKCS11 configurations of the same slot
//! (see that file for what it checks and why there are two). They make token keys through
//! the `attributes(generate, ...)` lines of the configuration, since SunPKCS11 makes
//! session keys otherwise:
//! - "sign": AES keys and EC/RSA key pairs that sign (CKA_SIGN/CKA_VERIFY), so KMS
//!   usages ENCRYPT_DECRYPT and SIGN_VERIFY;
//! - "crypt": EC key pairs that derive (KEY_AGREEMENT) and RSA key pairs that decrypt
//!   (ENCRYPT_DECRYPT). SunPKCS11's ECDH asks for a generic secret with no attributes
//!   and reads its CKA_VALUE; kmstoken makes secret keys sensitive unless told otherwise
//!   (CKR_ATTRIBUTE_SENSITIVE), so this configuration asks for CKA_SENSITIVE = false on
//!   generated generic secrets. (SoftHSM2 2.6 needs both the CKA_DERIVE and the
//!   CKA_SENSITIVE lines too.)
//!
//! The test then reads the KMS metadata of the keys Java made with `kmstoken kms`.
//!
//! `keytool_...` lists the token with `keytool -list -storetype PKCS11`: a private key
//! is an entry only with a certificate of the same CKA_ID, so it stores one for a key
//! pair made by pkcs11-tool, and lets `keytool -genkeypair` make EC and RSA key pairs with
//! self-signed certificates on the token, whose signatures openssl checks.
//!
//! A missing `java`, `javac` or `keytool` is a failure, not a skip: `scripts/deps.sh`
//! installs Debian's `default-jdk-headless` (OpenJDK 17 on Debian 12); the keytool test
//! also needs `pkcs11-tool` and `openssl`.

mod interop_common;

use interop_common::*;
use std::path::{Path, PathBuf};

const JDK: &str = "default-jdk-headless";

fn require_jdk() {
    for tool in ["java", "javac", "keytool"] {
        require_tool(tool, &["-version"], JDK);
    }
}

/// Initialises a token with the kmstoken command; returns its slot id.
fn init_token_with_cli(f: &Fixture, label: &str) -> u64 {
    let mut c = f.command(env!("CARGO_BIN_EXE_kmstoken"));
    c.args(["init-token", "--free", "--label", label, "--so-pin", SO_PIN, "--pin", USER_PIN]);
    let out = f.run(c).expect_ok().out();
    out.lines()
        .find_map(|l| l.strip_prefix("Slot:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no slot in the output of init-token:\n{out}"))
}

/// A SunPKCS11 configuration file for the module and slot, with extra lines.
fn sunpkcs11_config(f: &Fixture, name: &str, slot: u64, extra: &str) -> String {
    let module = f.module.to_str().expect("UTF-8 module path");
    assert!(!module.contains('"'), "module path with a quote: {module}");
    f.write(&format!("{name}.cfg"), format!("name = {name}\nlibrary = \"{module}\"\nslot = {slot}\n{extra}").as_bytes())
}

const SIGN_ATTRIBUTES: &str = "\
attributes(generate, CKO_SECRET_KEY, CKK_AES) = {
  CKA_TOKEN = true
  CKA_ENCRYPT = true
  CKA_DECRYPT = true
}
attributes(generate, CKO_PRIVATE_KEY, *) = {
  CKA_TOKEN = true
  CKA_PRIVATE = true
  CKA_SIGN = true
}
attributes(generate, CKO_PUBLIC_KEY, *) = {
  CKA_TOKEN = true
  CKA_VERIFY = true
}
";

const CRYPT_ATTRIBUTES: &str = "\
attributes(generate, CKO_PRIVATE_KEY, CKK_EC) = {
  CKA_TOKEN = true
  CKA_PRIVATE = true
  CKA_DERIVE = true
}
attributes(generate, CKO_PUBLIC_KEY, CKK_EC) = {
  CKA_TOKEN = true
  CKA_DERIVE = true
}
attributes(generate, CKO_PRIVATE_KEY, CKK_RSA) = {
  CKA_TOKEN = true
  CKA_PRIVATE = true
  CKA_DECRYPT = true
}
attributes(generate, CKO_PUBLIC_KEY, CKK_RSA) = {
  CKA_TOKEN = true
  CKA_ENCRYPT = true
}
attributes(generate, CKO_SECRET_KEY, CKK_GENERIC_SECRET) = {
  CKA_SENSITIVE = false
  CKA_EXTRACTABLE = true
}
";

fn java_sources() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/java")
}

/// `kmstoken kms` as the user, output as JSON.
fn kms_json(f: &Fixture, token: &str, args: &[&str]) -> serde_json::Value {
    let mut c = f.command(env!("CARGO_BIN_EXE_kmstoken"));
    c.args(["kms"]).args(args).args(["--token", token, "--output", "json"]).env("KMSTOKEN_PIN", USER_PIN);
    let r = f.run(c).expect_ok();
    serde_json::from_slice(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.report()))
}

#[test]
fn sunpkcs11_keys_gcm_signatures_and_ecdh_are_checked_by_the_jdk() {
    require_jdk();
    let f = Fixture::new();
    let slot = init_token_with_cli(&f, "java");
    let sign = sunpkcs11_config(&f, "kmstoken-sign", slot, SIGN_ATTRIBUTES);
    let crypt = sunpkcs11_config(&f, "kmstoken-crypt", slot, CRYPT_ATTRIBUTES);

    let classes = f.p("classes");
    let source = java_sources().join("Interop.java");
    let mut javac = f.command("javac");
    javac.args(["-Xlint:all", "-Werror", "-d", &classes]).arg(&source);
    f.run(javac).expect_ok();

    let mut java = f.command("java");
    java.args(["-Xmx256m", "-cp", &classes, "Interop", &sign, &crypt, USER_PIN]);
    let r = f.run(java).expect_ok();
    let out = r.out();
    for line in [
        "OK login SunPKCS11-kmstoken-sign",
        "OK login SunPKCS11-kmstoken-crypt",
        "OK aes-gcm generated token key",
        "OK aes-gcm known key matches SunJCE",
        "OK SHA256withECDSA secp256r1",
        "OK SHA384withECDSA secp384r1",
        "OK SHA256withRSA",
        "OK RSASSA-PSS",
        "OK SHA256withRSASSA-PSS",
        "OK ECDH secp256r1",
        "OK ECDH secp384r1",
        "OK RSA/ECB/PKCS1Padding decrypt",
        "entry after java-aes SecretKeyEntry",
        "ALL OK",
    ] {
        assert!(out.lines().any(|l| l == line), "no line `{line}`:\n{}", r.report());
    }

    // The keys Java made are KMS keys with the usages their templates asked for.
    let keys = kms_json(&f, "java", &["list-keys"]);
    let mut made: Vec<String> = keys["Keys"]
        .as_array()
        .expect("Keys")
        .iter()
        .map(|k| {
            let id = k["KeyId"].as_str().expect("KeyId");
            let m = &kms_json(&f, "java", &["describe-key", "--key-id", id])["KeyMetadata"];
            assert_eq!(m["KeyState"], "Enabled", "{m:#}");
            format!("{} {}", m["KeySpec"].as_str().unwrap(), m["KeyUsage"].as_str().unwrap())
        })
        .collect();
    made.sort();
    assert_eq!(
        made,
        [
            "ECC_NIST_P256 KEY_AGREEMENT",
            "ECC_NIST_P256 SIGN_VERIFY",
            "ECC_NIST_P384 KEY_AGREEMENT",
            "ECC_NIST_P384 SIGN_VERIFY",
            "RSA_2048 ENCRYPT_DECRYPT",
            "RSA_2048 SIGN_VERIFY",
            "RSA_2048 SIGN_VERIFY",
            "SYMMETRIC_DEFAULT ENCRYPT_DECRYPT",
            "SYMMETRIC_DEFAULT ENCRYPT_DECRYPT",
        ]
    );
}

/// keytool on this keystore's token.
fn keytool(f: &Fixture, cfg: &str, args: &[&str]) -> Run {
    let mut c = f.command("keytool");
    c.args(args).args([
        "-storetype",
        "PKCS11",
        "-providerclass",
        "sun.security.pkcs11.SunPKCS11",
        "-providerarg",
        cfg,
        "-storepass",
        USER_PIN,
    ]);
    f.run(c)
}

#[test]
fn keytool_lists_and_makes_token_entries() {
    require_jdk();
    require_tool("pkcs11-tool", &["--help"], "opensc");
    require_tool("openssl", &["version"], "openssl");
    let f = Fixture::new();
    f.init_token("keytool");
    let cfg = sunpkcs11_config(&f, "kmstoken", 0, "");

    // A key pair made by pkcs11-tool, and a certificate for its public key (issued by a
    // CA of openssl's) stored with the same CKA_ID.
    let out = f.p11_user(&[
        "--keypairgen",
        "--key-type",
        "EC:prime256v1",
        "--id",
        "0a11",
        "--label",
        "tool-ec",
        "--usage-sign",
    ]);
    assert!(out.contains("Key pair generated"), "{out}");
    let token_pub = f.ec_public_der("0a11", "tool-ec-pub.der");
    let token_pub_pem = f.p("tool-ec-pub.pem");
    f.openssl(&["pkey", "-pubin", "-inform", "DER", "-in", &token_pub, "-out", &token_pub_pem]);
    let (ca_key, ca, csr) = (f.p("ca.key"), f.p("ca.pem"), f.p("tool.csr"));
    f.openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", &ca_key]);
    f.openssl(&["req", "-new", "-x509", "-key", &ca_key, "-subj", "/CN=test-ca", "-days", "2", "-out", &ca]);
    f.openssl(&["req", "-new", "-key", &ca_key, "-subj", "/CN=tool-ec", "-out", &csr]);
    let cert = f.p("tool-ec.pem");
    f.openssl(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-force_pubkey",
        &token_pub_pem,
        "-set_serial",
        "2",
        "-days",
        "2",
        "-out",
        &cert,
    ]);
    let cert_der = f.p("tool-ec.der");
    f.openssl(&["x509", "-in", &cert, "-outform", "DER", "-out", &cert_der]);
    let out = f.p11_user(&["--write-object", &cert_der, "--type", "cert", "--id", "0a11", "--label", "tool-ec"]);
    assert!(out.contains("Created certificate"), "{out}");
    let fingerprint = String::from_utf8(f.openssl(&["x509", "-in", &cert, "-noout", "-fingerprint", "-sha256"]))
        .unwrap()
        .trim()
        .rsplit('=')
        .next()
        .unwrap()
        .to_string();

    // keytool makes key pairs and self-signed certificates on the token.
    for (alias, alg) in [
        ("kt-ec", ["-keyalg", "EC", "-groupname", "secp256r1", "-sigalg", "SHA256withECDSA"]),
        ("kt-rsa", ["-keyalg", "RSA", "-keysize", "2048", "-sigalg", "SHA256withRSA"]),
    ] {
        let dname = format!("CN={alias}");
        let r = keytool(
            &f,
            &cfg,
            &[&["-genkeypair", "-alias", alias, "-dname", &dname, "-validity", "2"][..], &alg].concat(),
        )
        .expect_ok();
        assert!(r.all().contains("self-signed certificate"), "{}", r.report());
    }

    let r = keytool(&f, &cfg, &["-list"]).expect_ok();
    let list = r.out();
    assert!(list.contains("Keystore type: PKCS11"), "{}", r.report());
    for alias in ["tool-ec", "kt-ec", "kt-rsa"] {
        assert!(list.contains(&format!("{alias}, PrivateKeyEntry")), "{alias} is not a PrivateKeyEntry:\n{list}");
    }
    assert!(list.contains(&format!("Certificate fingerprint (SHA-256): {fingerprint}")), "{fingerprint}:\n{list}");
    let p11_list = f.p11_user(&["--list-objects", "--type", "cert"]);
    for label in ["tool-ec", "kt-ec", "kt-rsa"] {
        assert!(p11_list.contains(&format!("label:      {label}")), "{p11_list}");
    }

    // The token signed keytool's certificates: openssl checks the signatures.
    for (alias, sig_alg) in [("kt-ec", "ecdsa-with-SHA256"), ("kt-rsa", "sha256WithRSAEncryption")] {
        let r = keytool(&f, &cfg, &["-exportcert", "-rfc", "-alias", alias]).expect_ok();
        let pem = f.write(&format!("{alias}.pem"), &r.stdout);
        let out = String::from_utf8(f.openssl(&["verify", "-check_ss_sig", "-CAfile", &pem, &pem])).unwrap();
        assert_eq!(out.trim(), format!("{pem}: OK"));
        let text = String::from_utf8(f.openssl(&["x509", "-in", &pem, "-noout", "-text"])).unwrap();
        assert!(text.contains(&format!("Signature Algorithm: {sig_alg}")) && text.contains(alias), "{text}");
    }
}
