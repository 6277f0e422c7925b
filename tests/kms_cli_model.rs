//! `kmstoken kms` held against the AWS KMS service model, the data the aws CLI and the
//! SDKs are generated from (botocore's `kms/2014-11-01`, fetched by scripts/kms-model.sh):
//! every command is an operation of the model, every flag a member of its request, every
//! required member a flag; each output, member by member, has the model's type and enum
//! values; each error is one the model lets the operation raise; and what AWS's own
//! examples return, we return too. What the model has and we do not take is listed
//! below with the reason, and the list is held exact.

mod common;
#[path = "kms_common.rs"]
mod kms;

use common::*;
use kms::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// Flags of ours that no AWS request has: who acts and how the output looks.
const GLOBAL_FLAGS: [&str; 9] =
    ["output", "query", "token", "principal", "pin", "so-pin", "cli-input-json", "generate-cli-skeleton", "help"];

/// Our flags beyond the model, per command, with why.
const EXTENSIONS: &[(&str, &str, &str)] =
    &[("schedule-key-deletion", "force", "an operator's immediate purge, audited (DESIGN section 4)")];

/// Request members of the model that we do not take, with why. Held exact by the test.
const NOT_TAKEN: &[(&str, &str, &str)] = &[
    ("*", "GrantTokens", "grants are not implemented: key policies are the only permission"),
    ("*", "DryRun", "not implemented"),
    ("*", "DryRunModifiers", "not implemented"),
    ("*", "Recipient", "Nitro Enclaves attestation has no local equivalent"),
    ("*", "Limit", "lists are returned whole: a token holds few enough keys"),
    ("*", "Marker", "lists are returned whole"),
    ("*", "EncryptionAlgorithm", "symmetric keys only: SYMMETRIC_DEFAULT is implied"),
    ("*", "SourceEncryptionAlgorithm", "symmetric keys only"),
    ("*", "DestinationEncryptionAlgorithm", "symmetric keys only"),
    ("*", "CustomKeyStoreId", "custom key stores do not exist locally"),
    ("*", "KeyMaterialId", "an imported key holds one material"),
    ("import-key-material", "ImportType", "one material per imported key: no NEW_KEY_MATERIAL rotation"),
    ("import-key-material", "KeyMaterialDescription", "one material per imported key"),
    ("list-keys", "ResourceOwners", "one owner: the token"),
    ("create-key", "CustomerMasterKeySpec", "deprecated by AWS in favour of KeySpec"),
    ("create-key", "MultiRegion", "one region: the token"),
    ("create-key", "XksKeyId", "external key stores do not exist locally"),
    ("list-key-rotations", "IncludeKeyMaterial", "every version is listed"),
];

fn model() -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join("target/kms-model/service-2.json");
    if !path.exists() {
        let status = Command::new(root.join("scripts/kms-model.sh")).status().expect("run scripts/kms-model.sh");
        assert!(status.success(), "scripts/kms-model.sh could not fetch the AWS KMS model");
    }
    serde_json::from_str(&std::fs::read_to_string(&path).expect("read the model")).expect("model JSON")
}

fn examples() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/kms-model/examples-1.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("read the examples")).expect("examples JSON")
}

/// `re-encrypt` → `ReEncrypt`.
fn pascal(command: &str) -> String {
    command
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_uppercase().chain(c).collect::<String>()).unwrap_or_default()
        })
        .collect()
}

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kmstoken")).args(args).arg("--help").output().expect("run kmstoken");
    assert!(out.status.success(), "kmstoken {args:?} --help: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// The subcommands a help text lists, each with its one-line description.
fn commands(help: &str) -> Vec<(String, String)> {
    let section = help.split("Commands:").nth(1).expect("a Commands section");
    let lines: Vec<&str> = section.split("\n\n").next().unwrap_or("").lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        // A command's line is indented by two; its description follows on the same line,
        // or (clap's layout for long names) on the next, indented further.
        if !l.starts_with("  ") || l.starts_with("   ") {
            continue;
        }
        let l = l.trim();
        let (name, about) = l.split_once(' ').unwrap_or((l, ""));
        let about = match about.trim() {
            "" => lines.get(i + 1).filter(|n| n.starts_with("   ")).map_or("", |n| n.trim()),
            a => a,
        };
        if name != "help" {
            out.push((name.to_string(), about.to_string()));
        }
    }
    out
}

/// The long flags a help text lists.
fn flags(help: &str) -> BTreeSet<String> {
    help.lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let l = l.strip_prefix("-").filter(|r| r.len() > 2 && r.as_bytes()[1] == b',').map_or(l, |r| r[2..].trim());
            l.strip_prefix("--").map(|f| f.split([' ', '=', '<']).next().unwrap_or("").to_string())
        })
        .collect()
}

fn not_taken(command: &str, member: &str) -> bool {
    NOT_TAKEN.iter().any(|(c, m, _)| (*c == "*" || *c == command) && *m == member)
}

#[test]
fn every_command_and_flag_is_in_the_model() {
    let model = model();
    let ops = &model["operations"];
    let mut used_exemptions = BTreeSet::new();
    let mut problems = Vec::new();
    let listed = commands(&help(&["kms"]));
    assert!(listed.len() >= 30, "kms commands: {listed:?}");
    for (command, about) in &listed {
        let op = pascal(command);
        if ops.get(&op).is_none() {
            problems.push(format!("{command}: no operation {op} in the model"));
            continue;
        }
        if about.is_empty() {
            problems.push(format!("{command}: no help text"));
        }
        let input = &model["shapes"][ops[&op]["input"]["shape"].as_str().unwrap()];
        let members: BTreeSet<String> = input["members"].as_object().unwrap().keys().cloned().collect();
        let required: BTreeSet<String> =
            input["required"].as_array().into_iter().flatten().map(|r| r.as_str().unwrap().to_string()).collect();
        let ours: BTreeSet<String> =
            flags(&help(&["kms", command])).into_iter().filter(|f| !GLOBAL_FLAGS.contains(&f.as_str())).collect();
        for f in &ours {
            let member = pascal(f);
            let extension = EXTENSIONS.iter().any(|(c, e, _)| c == command && e == f);
            if !members.contains(&member) && !extension {
                problems.push(format!("{command} --{f}: {op} has no member {member}"));
            }
        }
        for m in &members {
            let flag = kmstoken_flag(m);
            if ours.contains(&flag) {
                continue;
            }
            if required.contains(m) {
                problems.push(format!("{command}: the required member {m} has no flag --{flag}"));
            } else if not_taken(command, m) {
                used_exemptions.insert(m.clone());
            } else {
                problems.push(format!("{command}: the member {m} (--{flag}) is neither taken nor listed as not taken"));
            }
        }
    }
    for (c, m, _why) in NOT_TAKEN {
        if !used_exemptions.contains(*m) {
            problems.push(format!("NOT_TAKEN lists {c} {m}, which every command takes or the model lacks"));
        }
    }
    assert!(problems.is_empty(), "{} differences from the model:\n{}", problems.len(), problems.join("\n"));
}

/// `KeyId` → `key-id`.
fn kmstoken_flag(member: &str) -> String {
    let mut out = String::new();
    for (i, c) in member.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('-');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// Where `value` departs from the model's shape `shape`.
fn check(model: &Value, shape: &str, value: &Value, at: &str, problems: &mut Vec<String>) {
    let s = &model["shapes"][shape];
    let kind = s["type"].as_str().unwrap_or("?");
    let mut wrong = |what: &str| problems.push(format!("{at}: {what} (shape {shape}, type {kind}): {value}"));
    match kind {
        "structure" => {
            let Some(obj) = value.as_object() else { return wrong("not an object") };
            for (k, v) in obj {
                match s["members"].get(k) {
                    Some(m) => check(model, m["shape"].as_str().unwrap(), v, &format!("{at}.{k}"), problems),
                    None => problems.push(format!("{at}.{k}: not a member of {shape}")),
                }
            }
            for r in s["required"].as_array().into_iter().flatten() {
                if !obj.contains_key(r.as_str().unwrap()) {
                    problems.push(format!("{at}: the required member {r} is missing"));
                }
            }
        }
        "list" => {
            let Some(items) = value.as_array() else { return wrong("not a list") };
            for (i, v) in items.iter().enumerate() {
                check(model, s["member"]["shape"].as_str().unwrap(), v, &format!("{at}[{i}]"), problems);
            }
        }
        "map" => {
            let Some(obj) = value.as_object() else { return wrong("not a map") };
            for (k, v) in obj {
                check(model, s["value"]["shape"].as_str().unwrap(), v, &format!("{at}.{k}"), problems);
            }
        }
        "string" => match value.as_str() {
            None => wrong("not a string"),
            Some(text) => {
                if let Some(e) = s["enum"].as_array() {
                    if !e.iter().any(|x| x == text) {
                        wrong("not one of the enum values")
                    }
                }
                let len = text.chars().count() as u64;
                if s["min"].as_u64().is_some_and(|m| len < m) || s["max"].as_u64().is_some_and(|m| len > m) {
                    wrong("length outside min..max")
                }
            }
        },
        "blob" => {
            use base64::Engine;
            if value.as_str().is_none_or(|t| base64::engine::general_purpose::STANDARD.decode(t).is_err()) {
                wrong("not base64")
            }
        }
        "timestamp" => {
            if !(value.is_number() || value.as_str().is_some_and(|t| t.len() >= 20 && &t[10..11] == "T")) {
                wrong("not a timestamp")
            }
        }
        "boolean" => {
            if !value.is_boolean() {
                wrong("not a boolean")
            }
        }
        "integer" | "long" => match value.as_i64() {
            None => wrong("not an integer"),
            Some(n) => {
                if s["min"].as_i64().is_some_and(|m| n < m) || s["max"].as_i64().is_some_and(|m| n > m) {
                    wrong("outside min..max")
                }
            }
        },
        _ => wrong("unknown shape type"),
    }
}

/// Errors any operation may raise, outside its own list (the AWS common errors).
const COMMON_ERRORS: [&str; 2] = ["AccessDeniedException", "ValidationException"];

/// Runs commands and holds every output and error against the model.
struct Checked<'a> {
    cli: Cli,
    model: &'a Value,
    problems: Vec<String>,
    /// Operation → the member names of its successful outputs.
    seen: BTreeMap<String, BTreeSet<String>>,
}

impl Checked<'_> {
    fn op(&self, command: &str) -> String {
        pascal(command)
    }

    #[track_caller]
    fn ok(&mut self, args: &[&str]) -> Value {
        let v = self.cli.ok(args);
        let op = self.op(args[1]);
        let out = self.model["operations"][&op]["output"]["shape"].as_str();
        match out {
            Some(shape) => check(self.model, shape, &v, &op, &mut self.problems),
            None if !v.is_null() => self.problems.push(format!("{op}: the model has no output, we print {v}")),
            None => {}
        }
        if let Some(o) = v.as_object() {
            self.seen.entry(op).or_default().extend(o.keys().cloned());
        }
        v
    }

    #[track_caller]
    fn fails(&mut self, args: &[&str], code: &str) {
        let e = self.cli.fails(args, code);
        let op = self.op(args[1]);
        let allowed = self.model["operations"][&op]["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|x| x["shape"] == e.code.as_str())
            || COMMON_ERRORS.contains(&e.code.as_str());
        if !allowed {
            self.problems.push(format!("{op}: the model does not list {} among its errors", e.code));
        }
    }
}

fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[test]
fn outputs_and_errors_match_the_model() {
    let model = model();
    scenario!(|s| {
        let (_p, _slot, _session) = ready();
        let mut c = Checked {
            cli: Cli::new(&s.config_path(), USER_PIN),
            model: &model,
            problems: vec![],
            seen: BTreeMap::new(),
        };
        let sym = c.ok(&["kms", "create-key", "--description", "model"])["KeyMetadata"]["KeyId"]
            .as_str()
            .unwrap()
            .to_string();
        let other = c.ok(&["kms", "create-key"])["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
        let mac = c.ok(&["kms", "create-key", "--key-spec", "HMAC_256", "--key-usage", "GENERATE_VERIFY_MAC"])
            ["KeyMetadata"]["KeyId"]
            .as_str()
            .unwrap()
            .to_string();
        let ec = c.ok(&["kms", "create-key", "--key-spec", "ECC_NIST_P256", "--key-usage", "SIGN_VERIFY"])
            ["KeyMetadata"]["KeyId"]
            .as_str()
            .unwrap()
            .to_string();
        let rsa = c.ok(&["kms", "create-key", "--key-spec", "RSA_2048", "--key-usage", "SIGN_VERIFY"])["KeyMetadata"]
            ["KeyId"]
            .as_str()
            .unwrap()
            .to_string();
        let rsa_enc = c.ok(&["kms", "create-key", "--key-spec", "RSA_3072", "--key-usage", "ENCRYPT_DECRYPT"])
            ["KeyMetadata"]["KeyId"]
            .as_str()
            .unwrap()
            .to_string();
        c.ok(&["kms", "get-public-key", "--key-id", &rsa_enc]);
        let ext =
            c.ok(&["kms", "create-key", "--origin", "EXTERNAL"])["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
        let params = c.ok(&[
            "kms",
            "get-parameters-for-import",
            "--key-id",
            &ext,
            "--wrapping-algorithm",
            "RSAES_OAEP_SHA_256",
            "--wrapping-key-spec",
            "RSA_2048",
        ]);
        let wrapped = wrap_for_import(s.dir(), &params, &[7; 32]);
        let token = params["ImportToken"].as_str().unwrap().to_string();
        c.fails(
            &[
                "kms",
                "import-key-material",
                "--key-id",
                &ext,
                "--encrypted-key-material",
                &b64(&[1; 256]),
                "--import-token",
                &token,
                "--expiration-model",
                "KEY_MATERIAL_DOES_NOT_EXPIRE",
            ],
            "InvalidCiphertextException",
        );
        c.ok(&[
            "kms",
            "import-key-material",
            "--key-id",
            &ext,
            "--encrypted-key-material",
            &b64(&wrapped),
            "--import-token",
            &token,
            "--expiration-model",
            "KEY_MATERIAL_DOES_NOT_EXPIRE",
        ]);
        c.ok(&["kms", "describe-key", "--key-id", &ext]);
        c.ok(&["kms", "delete-imported-key-material", "--key-id", &ext]);
        c.ok(&["kms", "describe-key", "--key-id", &sym]);
        c.ok(&["kms", "list-keys"]);
        c.ok(&["kms", "create-alias", "--alias-name", "alias/model", "--target-key-id", &sym]);
        c.ok(&["kms", "update-alias", "--alias-name", "alias/model", "--target-key-id", &other]);
        c.ok(&["kms", "list-aliases"]);
        c.ok(&["kms", "list-aliases", "--key-id", &other]);
        c.ok(&["kms", "tag-resource", "--key-id", &sym, "--tags", "TagKey=team,TagValue=x"]);
        c.ok(&["kms", "list-resource-tags", "--key-id", &sym]);
        c.ok(&["kms", "untag-resource", "--key-id", &sym, "--tag-keys", "team"]);
        c.ok(&["kms", "update-key-description", "--key-id", &sym, "--description", "d"]);
        c.ok(&["kms", "enable-key-rotation", "--key-id", &sym, "--rotation-period-in-days", "90"]);
        c.ok(&["kms", "get-key-rotation-status", "--key-id", &sym]);
        c.ok(&["kms", "rotate-key-on-demand", "--key-id", &sym]);
        c.ok(&["kms", "list-key-rotations", "--key-id", &sym]);
        c.ok(&["kms", "disable-key-rotation", "--key-id", &sym]);
        let ct =
            c.ok(&["kms", "encrypt", "--key-id", &sym, "--plaintext", &b64(b"model"), "--encryption-context", "a=b"])
                ["CiphertextBlob"]
                .as_str()
                .unwrap()
                .to_string();
        c.ok(&["kms", "decrypt", "--ciphertext-blob", &ct, "--encryption-context", "a=b"]);
        c.ok(&[
            "kms",
            "re-encrypt",
            "--ciphertext-blob",
            &ct,
            "--source-encryption-context",
            "a=b",
            "--destination-key-id",
            &other,
        ]);
        c.ok(&["kms", "generate-data-key", "--key-id", &sym, "--key-spec", "AES_256"]);
        c.ok(&["kms", "generate-data-key-without-plaintext", "--key-id", &sym, "--number-of-bytes", "16"]);
        c.ok(&["kms", "generate-random", "--number-of-bytes", "32"]);
        let policy = c.ok(&["kms", "get-key-policy", "--key-id", &sym, "--policy-name", "default"])["Policy"]
            .as_str()
            .unwrap()
            .to_string();
        c.ok(&["kms", "list-key-policies", "--key-id", &sym]);
        // create-key takes the policy and tags at once; a refused policy creates nothing.
        let keys_before = c.cli.ok(&["kms", "list-keys"])["Keys"].as_array().unwrap().len();
        let tagged = c.ok(&["kms", "create-key", "--policy", &policy, "--tags", "TagKey=team,TagValue=model"])
            ["KeyMetadata"]["KeyId"]
            .as_str()
            .unwrap()
            .to_string();
        let tags = c.ok(&["kms", "list-resource-tags", "--key-id", &tagged]);
        assert_eq!(tags["Tags"], serde_json::json!([{"TagKey": "team", "TagValue": "model"}]));
        let nobody = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:Encrypt","Resource":"*"}]}"#;
        c.fails(&["kms", "create-key", "--policy", nobody], "MalformedPolicyDocumentException");
        c.fails(&["kms", "create-key", "--policy", "not json"], "MalformedPolicyDocumentException");
        assert_eq!(c.cli.ok(&["kms", "list-keys"])["Keys"].as_array().unwrap().len(), keys_before + 1);
        c.ok(&["kms", "create-key", "--policy", nobody, "--bypass-policy-lockout-safety-check"]);
        c.ok(&["kms", "put-key-policy", "--key-id", &sym, "--policy-name", "default", "--policy", &policy]);
        c.fails(
            &["kms", "put-key-policy", "--key-id", &sym, "--policy-name", "default", "--policy", "{\"Statement\": 1}"],
            "MalformedPolicyDocumentException",
        );
        c.ok(&["kms", "generate-data-key-pair", "--key-id", &sym, "--key-pair-spec", "ECC_NIST_P256"]);
        c.ok(&["kms", "generate-data-key-pair-without-plaintext", "--key-id", &sym, "--key-pair-spec", "RSA_2048"]);
        c.fails(&["kms", "delete-imported-key-material", "--key-id", &sym], "UnsupportedOperationException");
        let msg = b64(b"to sign");
        for (key, alg) in [(&ec, "ECDSA_SHA_256"), (&rsa, "RSASSA_PSS_SHA_256")] {
            let sig = c.ok(&["kms", "sign", "--key-id", key, "--message", &msg, "--signing-algorithm", alg])
                ["Signature"]
                .as_str()
                .unwrap()
                .to_string();
            c.ok(&[
                "kms",
                "verify",
                "--key-id",
                key,
                "--message",
                &msg,
                "--signature",
                &sig,
                "--signing-algorithm",
                alg,
            ]);
            c.ok(&["kms", "get-public-key", "--key-id", key]);
        }
        let tag =
            c.ok(&["kms", "generate-mac", "--key-id", &mac, "--message", &msg, "--mac-algorithm", "HMAC_SHA_256"])
                ["Mac"]
                .as_str()
                .unwrap()
                .to_string();
        c.ok(&[
            "kms",
            "verify-mac",
            "--key-id",
            &mac,
            "--message",
            &msg,
            "--mac",
            &tag,
            "--mac-algorithm",
            "HMAC_SHA_256",
        ]);
        c.ok(&["kms", "disable-key", "--key-id", &other]);
        c.fails(&["kms", "encrypt", "--key-id", &other, "--plaintext", &msg], "DisabledException");
        c.ok(&["kms", "enable-key", "--key-id", &other]);
        c.ok(&["kms", "schedule-key-deletion", "--key-id", &other, "--pending-window-in-days", "7"]);
        c.fails(&["kms", "encrypt", "--key-id", &other, "--plaintext", &msg], "KMSInvalidStateException");
        c.ok(&["kms", "cancel-key-deletion", "--key-id", &other]);
        c.ok(&["kms", "delete-alias", "--alias-name", "alias/model"]);

        c.fails(&["kms", "describe-key", "--key-id", "alias/none"], "NotFoundException");
        c.fails(
            &["kms", "decrypt", "--ciphertext-blob", &b64(b"not a blob at all, not at all")],
            "InvalidCiphertextException",
        );
        c.fails(
            &["kms", "decrypt", "--ciphertext-blob", &ct, "--encryption-context", "a=c"],
            "InvalidCiphertextException",
        );
        c.fails(&["kms", "encrypt", "--key-id", &sym, "--plaintext", &b64(&[0; 4097])], "ValidationException");
        c.fails(&["kms", "encrypt", "--key-id", &mac, "--plaintext", &msg], "InvalidKeyUsageException");
        c.fails(
            &[
                "kms",
                "verify",
                "--key-id",
                &ec,
                "--message",
                &msg,
                "--signature",
                &b64(&[1; 70]),
                "--signing-algorithm",
                "ECDSA_SHA_256",
            ],
            "KMSInvalidSignatureException",
        );
        c.fails(
            &[
                "kms",
                "verify-mac",
                "--key-id",
                &mac,
                "--message",
                &msg,
                "--mac",
                &b64(&[1; 32]),
                "--mac-algorithm",
                "HMAC_SHA_256",
            ],
            "KMSInvalidMacException",
        );
        c.ok(&["kms", "create-alias", "--alias-name", "alias/twice", "--target-key-id", &sym]);
        c.fails(
            &["kms", "create-alias", "--alias-name", "alias/twice", "--target-key-id", &sym],
            "AlreadyExistsException",
        );
        c.fails(
            &["kms", "create-alias", "--alias-name", "alias/aws/x", "--target-key-id", &sym],
            "InvalidAliasNameException",
        );
        c.fails(
            &["kms", "schedule-key-deletion", "--key-id", &sym, "--pending-window-in-days", "6"],
            "ValidationException",
        );
        c.fails(
            &["kms", "decrypt", "--ciphertext-blob", &ct, "--encryption-context", "a=b", "--key-id", &mac],
            "IncorrectKeyException",
        );

        // What AWS's own examples return, we return too (ids and blobs aside).
        let examples = examples();
        for (op, members) in &c.seen {
            for ex in examples["examples"][op].as_array().into_iter().flatten() {
                for k in ex["output"].as_object().into_iter().flat_map(|o| o.keys()) {
                    if !members.contains(k) && !EXAMPLE_ABSENT.contains(&(op.as_str(), k.as_str())) {
                        c.problems.push(format!("{op}: AWS's example returns {k}, we do not"));
                    }
                }
            }
        }
        assert!(c.problems.is_empty(), "{} differences from the model:\n{}", c.problems.len(), c.problems.join("\n"));
    });
}

/// The material wrapped with RSAES_OAEP_SHA_256 by openssl under the wrapping key of
/// get-parameters-for-import, as AWS's import procedure does it.
fn wrap_for_import(dir: &Path, params: &Value, material: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD.decode(params["PublicKey"].as_str().unwrap()).unwrap();
    std::fs::write(dir.join("wrapping.der"), der).unwrap();
    std::fs::write(dir.join("material.bin"), material).unwrap();
    let out = Command::new("openssl")
        .args(["pkeyutl", "-encrypt", "-pubin", "-keyform", "DER", "-inkey", "wrapping.der", "-in", "material.bin"])
        .args(["-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256"])
        .current_dir(dir)
        .output()
        .expect("openssl is needed (scripts/deps.sh installs it)");
    assert!(out.status.success(), "openssl pkeyutl: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Output members of AWS's examples that we leave out, with why.
const EXAMPLE_ABSENT: &[(&str, &str)] = &[
    // Lists are returned whole, so never truncated with a marker.
    ("ListKeys", "NextMarker"),
    ("ListAliases", "NextMarker"),
];

/// The aws CLI's conventions around the request and the output: usage errors exit 252,
/// `--query` is JMESPath, `--output text` is tab-separated, `--cli-input-json` carries the
/// request.
#[test]
fn the_aws_cli_conventions_hold() {
    scenario!(|s| {
        let (_p, _slot, _session) = ready();
        let cli = Cli::new(&s.config_path(), USER_PIN);
        let run = |args: &[&str]| {
            let out = cli.command(args).output().expect("run kmstoken");
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            (out.status.code(), text(&out.stdout), text(&out.stderr))
        };
        for bad in [&["kms", "no-such-command"][..], &["kms", "list-keys", "--no-such-flag"], &["kms", "encrypt"]] {
            let (code, _, err) = run(bad);
            assert_eq!(code, Some(252), "{bad:?}: {err}");
            assert!(err.to_lowercase().contains("usage"), "{bad:?}: {err}");
        }
        let a = cli.ok(&["kms", "create-key"])["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
        let b = cli.ok(&["kms", "create-key"])["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();

        let (code, out, err) = run(&["--output", "text", "kms", "list-keys", "--query", "Keys[].KeyId"]);
        assert_eq!(code, Some(0), "{err}");
        let mut ids: Vec<&str> = out.trim_end().split('\t').collect();
        ids.sort_unstable();
        let mut want = [a.as_str(), b.as_str()];
        want.sort_unstable();
        assert_eq!(ids, want, "{out:?}");

        let projected =
            cli.ok(&["kms", "describe-key", "--key-id", &a, "--query", "KeyMetadata.{id: KeyId, state: KeyState}"]);
        assert_eq!(projected, serde_json::json!({"id": a, "state": "Enabled"}));
        let (code, _, err) = run(&["kms", "list-keys", "--query", "Keys[?"]);
        assert_eq!(code, Some(252), "a malformed --query is a usage error: {err}");

        // The request as JSON, from a file, with a flag that wins over its member.
        let req = s.dir().join("encrypt.json");
        let body =
            serde_json::json!({"KeyId": a, "Plaintext": b64(b"from json"), "EncryptionContext": {"app": "model"}});
        std::fs::write(&req, body.to_string()).unwrap();
        let file = format!("file://{}", req.display());
        let blob = cli.ok(&["kms", "encrypt", "--cli-input-json", &file, "--key-id", &b])["CiphertextBlob"]
            .as_str()
            .unwrap()
            .to_string();
        let back = cli.ok(&[
            "kms",
            "decrypt",
            "--cli-input-json",
            &serde_json::json!({"CiphertextBlob": blob, "EncryptionContext": {"app": "model"}}).to_string(),
        ]);
        assert_eq!(back["Plaintext"], b64(b"from json"));
        assert!(back["KeyId"].as_str().unwrap().ends_with(&b), "the command line's --key-id won: {back}");
        let (code, _, err) = run(&["kms", "encrypt", "--cli-input-json", "{\"KeyID\": \"x\"}"]);
        assert_eq!(code, Some(252), "{err}");
        assert!(err.contains("Unknown parameter in input: \"KeyID\""), "{err}");

        let skeleton = cli.ok(&["kms", "encrypt", "--generate-cli-skeleton"]);
        let mut members: Vec<&String> = skeleton.as_object().unwrap().keys().collect();
        members.sort_unstable();
        assert_eq!(members, ["EncryptionContext", "KeyId", "Plaintext"]);
    });
}
