//! `kmstoken user add|list|delete`: the SO manages the named users, principals
//! `user/NAME` who log in with their own PIN (C_LoginUser, or `--principal user/NAME`)
//! and whom key policies name.

use super::{as_user, open, pick, secret, Failure};
use clap::Subcommand;
use cryptoki_sys::CKU_SO;
use kmstoken::kms::clock;
use serde_json::{json, Value};

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a named user with its own PIN.
    Add {
        name: String,
        /// The new user's PIN (else KMSTOKEN_NEW_PIN, else a prompt).
        #[arg(long)]
        pin: Option<String>,
        #[arg(long)]
        token: Option<String>,
        /// SO PIN (else KMSTOKEN_SO_PIN, else a prompt).
        #[arg(long)]
        so_pin: Option<String>,
    },
    /// List the named users.
    List {
        #[arg(long)]
        token: Option<String>,
        #[arg(long)]
        so_pin: Option<String>,
    },
    /// Delete a named user (key policies that name it then match no one).
    Delete {
        name: String,
        #[arg(long)]
        token: Option<String>,
        #[arg(long)]
        so_pin: Option<String>,
    },
}

/// `user/alice` or `alice` → `alice`.
fn bare(name: &str) -> &str {
    name.strip_prefix("user/").unwrap_or(name)
}

pub fn run(cmd: UserCommand) -> Result<Value, Failure> {
    let lib = open()?;
    match cmd {
        UserCommand::Add { name, pin, token, so_pin } => {
            let name = bare(&name);
            if !kmstoken::kms::policy::valid_user_name(name) {
                return Err(Failure::Local(format!(
                    "invalid user name {name:?}: 1 to 64 letters, digits and +=,.@_- characters"
                )));
            }
            let t = pick(&lib, token, None)?;
            let so_pin = secret(so_pin, "KMSTOKEN_SO_PIN", "SO PIN: ")?;
            let pin = zeroize::Zeroizing::new(secret(pin, "KMSTOKEN_NEW_PIN", "PIN of the new user: ")?);
            let added = as_user(&lib, &t, CKU_SO, &so_pin, |h| lib.add_named_user(h, name, pin.as_bytes()))?;
            if !added {
                return Err(Failure::Local(format!("user/{name} exists already")));
            }
            Ok(json!({ "User": { "UserName": format!("user/{name}"), "Arn": arn(&t.serial, name) } }))
        }
        UserCommand::List { token, so_pin } => {
            let t = pick(&lib, token, None)?;
            let so_pin = secret(so_pin, "KMSTOKEN_SO_PIN", "SO PIN: ")?;
            let users = as_user(&lib, &t, CKU_SO, &so_pin, |h| lib.named_users(h))?;
            let users: Vec<Value> = users
                .into_iter()
                .map(|(name, failed, created)| {
                    json!({
                        "UserName": format!("user/{name}"),
                        "Arn": arn(&t.serial, &name),
                        "CreateDate": clock::iso8601(created),
                        "FailedLogins": failed,
                    })
                })
                .collect();
            Ok(json!({ "Users": users }))
        }
        UserCommand::Delete { name, token, so_pin } => {
            let name = bare(&name);
            let t = pick(&lib, token, None)?;
            let so_pin = secret(so_pin, "KMSTOKEN_SO_PIN", "SO PIN: ")?;
            if !as_user(&lib, &t, CKU_SO, &so_pin, |h| lib.delete_named_user(h, name))? {
                return Err(Failure::Local(format!("there is no user/{name}")));
            }
            Ok(Value::Null)
        }
    }
}

fn arn(serial: &str, name: &str) -> String {
    kmstoken::kms::policy::principal_arn(serial, &format!("user/{name}"))
}
