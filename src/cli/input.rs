//! `--cli-input-json` and `--generate-cli-skeleton`, as the aws CLI has them: the request
//! as one JSON object whose members are the operation's parameter names (`KeyId`,
//! `EncryptionContext`, ...). Members become the flags clap already knows (`--key-id`,
//! `--encryption-context`), so every rule and message of the flags applies unchanged;
//! a flag given on the command line wins over the same member in the JSON.

use clap::{ArgAction, Command};
use serde_json::{Map, Value};
use std::ffi::OsString;

pub const INPUT: &str = "--cli-input-json";
pub const SKELETON: &str = "--generate-cli-skeleton";

/// What the command line asks for once `--cli-input-json` is read.
pub enum Expanded {
    Args(Vec<OsString>),
    /// `--generate-cli-skeleton`: print this and stop.
    Skeleton(Value),
}

/// `KeyId` → `key-id`, as botocore names CLI flags after the model's members.
pub fn flag_name(member: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = member.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        let boundary = i > 0
            && c.is_uppercase()
            && (chars[i - 1].is_lowercase() || chars.get(i + 1).is_some_and(|n| n.is_lowercase()));
        if boundary {
            out.push('-');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// `key-id` → `KeyId`.
pub fn member_name(flag: &str) -> String {
    flag.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_uppercase().chain(c).collect::<String>()).unwrap_or_default()
        })
        .collect()
}

/// The subcommand the arguments name, walking down from `root`, and where its flags begin.
fn target<'a>(root: &'a Command, args: &[OsString]) -> (&'a Command, usize) {
    let mut cmd = root;
    let mut at = 1;
    for (i, a) in args.iter().enumerate().skip(1) {
        let Some(a) = a.to_str() else { continue };
        if a.starts_with('-') {
            continue;
        }
        if let Some(sub) = cmd.find_subcommand(a) {
            cmd = sub;
            at = i + 1;
        }
    }
    (cmd, at)
}

/// The flags of `cmd` that belong to the request (not the global ones such as --output).
fn request_flags(cmd: &Command) -> impl Iterator<Item = &clap::Arg> {
    cmd.get_arguments().filter(|a| !a.is_global_set() && a.get_long().is_some_and(|l| l != "help"))
}

fn value_of(args: &[OsString], flag: &str) -> Option<(usize, usize, String)> {
    let eq = format!("{flag}=");
    args.iter().enumerate().find_map(|(i, a)| {
        let a = a.to_str()?;
        if a == flag {
            args.get(i + 1).and_then(|v| v.to_str()).map(|v| (i, 2, v.to_string()))
        } else {
            a.strip_prefix(&eq).map(|v| (i, 1, v.to_string()))
        }
    })
}

fn read(value: &str) -> Result<Map<String, Value>, String> {
    let text = match value.strip_prefix("file://") {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("Error parsing parameter '{INPUT}': {e}"))?,
        None => value.to_string(),
    };
    match serde_json::from_str(&text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(format!("Error parsing parameter '{INPUT}': a JSON object is expected")),
        Err(e) => Err(format!("Error parsing parameter '{INPUT}': Invalid JSON: {e}")),
    }
}

/// Rewrites `args` so that the members of `--cli-input-json` become flags; a usage error
/// (unknown member, unreadable JSON) is the message the aws CLI would print.
pub fn expand(root: &Command, mut args: Vec<OsString>) -> Result<Expanded, String> {
    let (cmd, at) = target(root, &args);
    if args.iter().any(|a| a == SKELETON) {
        let skeleton: Map<String, Value> = request_flags(cmd)
            .map(|a| {
                let empty = match a.get_action() {
                    ArgAction::SetTrue => Value::Bool(false),
                    _ if a.get_num_args().is_some_and(|n| n.max_values() > 1) => Value::Array(vec![Value::from("")]),
                    _ => Value::from(""),
                };
                (member_name(a.get_long().unwrap_or_default()), empty)
            })
            .collect();
        return Ok(Expanded::Skeleton(Value::Object(skeleton)));
    }
    let Some((i, n, value)) = value_of(&args, INPUT) else {
        return Ok(Expanded::Args(args));
    };
    args.drain(i..i + n);
    let given: Vec<String> =
        args.iter().filter_map(|a| a.to_str()).map(|a| a.split('=').next().unwrap_or(a).to_string()).collect();
    let mut extra: Vec<OsString> = Vec::new();
    for (member, v) in read(&value)? {
        let flag = flag_name(&member);
        // Member names are exact, as in the model: `KeyID` is not `KeyId`.
        let found = request_flags(cmd).find(|a| a.get_long() == Some(flag.as_str()) && member_name(&flag) == member);
        let Some(arg) = found else {
            let known: Vec<String> = request_flags(cmd).filter_map(|a| a.get_long()).map(member_name).collect();
            return Err(format!(
                "Parameter validation failed:\nUnknown parameter in input: \"{member}\", must be one of: {}",
                known.join(", ")
            ));
        };
        let long = format!("--{flag}");
        if given.contains(&long) {
            continue;
        }
        let multi = arg.get_num_args().is_some_and(|n| n.max_values() > 1);
        match (arg.get_action(), v) {
            (ArgAction::SetTrue, Value::Bool(true)) => extra.push(long.into()),
            (ArgAction::SetTrue, _) => {}
            (_, Value::Array(items)) if multi && items.iter().all(|x| !x.is_object() && !x.is_array()) => {
                extra.push(long.into());
                extra.extend(items.iter().map(|x| OsString::from(scalar(x))));
            }
            (_, Value::Null) => {}
            (_, v @ (Value::Array(_) | Value::Object(_))) => {
                extra.push(long.into());
                extra.push(v.to_string().into());
            }
            (_, v) => {
                extra.push(long.into());
                extra.push(scalar(&v).into());
            }
        }
    }
    let at = at.min(args.len());
    args.splice(at..at, extra);
    Ok(Expanded::Args(args))
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, Command};
    use serde_json::json;

    fn cli() -> Command {
        Command::new("kmstoken").arg(Arg::new("output").long("output").global(true)).subcommand(
            Command::new("kms").subcommand(
                Command::new("encrypt")
                    .arg(Arg::new("key-id").long("key-id"))
                    .arg(Arg::new("plaintext").long("plaintext"))
                    .arg(Arg::new("encryption-context").long("encryption-context"))
                    .arg(Arg::new("dry-run").long("dry-run").action(ArgAction::SetTrue))
                    .arg(Arg::new("grant-tokens").long("grant-tokens").num_args(1..)),
            ),
        )
    }

    fn run(args: &[&str]) -> Result<Vec<String>, String> {
        let args = args.iter().map(OsString::from).collect();
        match expand(&cli(), args)? {
            Expanded::Args(a) => Ok(a.into_iter().map(|a| a.into_string().unwrap()).collect()),
            Expanded::Skeleton(v) => Ok(vec![v.to_string()]),
        }
    }

    #[test]
    fn names_follow_botocore() {
        for (m, f) in [("KeyId", "key-id"), ("CiphertextBlob", "ciphertext-blob"), ("NumberOfBytes", "number-of-bytes")]
        {
            assert_eq!(flag_name(m), f);
            assert_eq!(member_name(f), m);
        }
        assert_eq!(flag_name("BypassPolicyLockoutSafetyCheck"), "bypass-policy-lockout-safety-check");
    }

    #[test]
    fn members_become_flags_and_the_command_line_wins() {
        let input = json!({"KeyId": "alias/a", "Plaintext": "Zm9v", "EncryptionContext": {"k": "v"}, "DryRun": true,
            "GrantTokens": ["g1", "g2"]})
        .to_string();
        let got = run(&["kmstoken", "kms", "encrypt", "--cli-input-json", &input, "--key-id", "mine"]).unwrap();
        assert_eq!(
            got,
            [
                "kmstoken",
                "kms",
                "encrypt",
                "--dry-run",
                "--encryption-context",
                "{\"k\":\"v\"}",
                "--grant-tokens",
                "g1",
                "g2",
                "--plaintext",
                "Zm9v",
                "--key-id",
                "mine"
            ]
            .map(String::from)
        );
    }

    #[test]
    fn unknown_members_and_bad_json_are_usage_errors() {
        let e = run(&["kmstoken", "kms", "encrypt", "--cli-input-json", "{\"Bogus\": 1}"]).unwrap_err();
        assert!(e.contains("Unknown parameter in input: \"Bogus\"") && e.contains("KeyId"), "{e}");
        let e = run(&["kmstoken", "kms", "encrypt", "--cli-input-json=[1]"]).unwrap_err();
        assert!(e.contains("JSON object"), "{e}");
    }

    #[test]
    fn the_skeleton_lists_the_request_members() {
        let got = run(&["kmstoken", "kms", "encrypt", "--generate-cli-skeleton"]).unwrap();
        let v: Value = serde_json::from_str(&got[0]).unwrap();
        assert_eq!(
            v,
            json!({"KeyId": "", "Plaintext": "", "EncryptionContext": "", "DryRun": false, "GrantTokens": [""]})
        );
    }
}
