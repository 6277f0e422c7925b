//! The `kmstoken` command: token administration over the same library code (keystore,
//! PIN rules, sealing) that the PKCS#11 module uses.

mod cli;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use cli::input::Expanded;
use cli::{as_user, open, pick, secret, Failure};
use cryptoki_sys::*;
use kmstoken::library::Library;
use serde_json::{json, Value};
use std::process::ExitCode;

/// Exit status of a failed command, as the aws CLI uses for service errors.
const EXIT_FAILED: u8 = 254;
/// Exit status of a usage error (unknown command or flag), as the aws CLI.
const EXIT_USAGE: u8 = 252;

#[derive(Parser)]
#[command(name = "kmstoken", version, about = "A PKCS#11 token with the key lifecycle of a cloud KMS")]
// A flag given twice takes its last value (so a wrapper may set --output and a caller change it).
#[command(args_override_self = true)]
struct Cli {
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    output: Output,
    /// A JMESPath expression applied to the result before it is printed (as the aws CLI).
    #[arg(long, global = true)]
    query: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Output {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Initialise a token on the empty slot (--free) or re-initialise one (--slot N).
    InitToken {
        /// Use the empty slot.
        #[arg(long, conflicts_with = "slot")]
        free: bool,
        /// The slot to initialise: the empty slot, or an existing token (needs its SO PIN).
        #[arg(long)]
        slot: Option<u64>,
        #[arg(long)]
        label: String,
        /// SO PIN (else KMSTOKEN_SO_PIN, else a prompt).
        #[arg(long)]
        so_pin: Option<String>,
        /// Also set the user PIN (else KMSTOKEN_PIN; skipped when neither is given).
        #[arg(long)]
        pin: Option<String>,
    },
    /// List the slots and their tokens.
    ShowSlots,
    /// Delete a token (its database is moved to the keystore's archive).
    DeleteToken {
        /// Label of the token (else KMSTOKEN_TOKEN).
        #[arg(long)]
        token: Option<String>,
        #[arg(long)]
        serial: Option<String>,
    },
    /// Bring back a token that C_InitToken or delete-token set aside (kept for the
    /// deletion window); without --serial, list what the archive holds.
    RestoreToken {
        #[arg(long)]
        serial: Option<String>,
    },
    /// Set (or reset) the user PIN with the SO PIN.
    InitPin {
        #[arg(long)]
        token: Option<String>,
        #[arg(long)]
        so_pin: Option<String>,
        #[arg(long)]
        pin: Option<String>,
    },
    /// Check every stored row of a token against its MAC, with the SO PIN; --accept then
    /// vouches for the rows as they are (after a review: what fails its own MAC stays
    /// refused).
    VerifyKeystore {
        /// Label of the token (else KMSTOKEN_TOKEN, else the only token).
        #[arg(long)]
        token: Option<String>,
        /// SO PIN (else KMSTOKEN_SO_PIN, else a prompt).
        #[arg(long)]
        so_pin: Option<String>,
        /// Authenticate the token state again over the rows as they are now.
        #[arg(long)]
        accept: bool,
    },
    /// The aws kms commands on the token.
    Kms(cli::kms::KmsArgs),
    /// Import a key and/or certificates from a PEM or DER file (as softhsm2-util --import).
    Import(cli::import::ImportArgs),
    /// Check or read the audit trail.
    #[command(subcommand)]
    Audit(cli::audit::AuditCommand),
    /// Named users (principals user/NAME of key policies), managed by the SO.
    #[command(subcommand)]
    User(cli::user::UserCommand),
    /// Change the user PIN (or, with --so, the SO PIN).
    SetPin {
        #[arg(long)]
        token: Option<String>,
        /// Change the SO PIN instead of the user PIN.
        #[arg(long)]
        so: bool,
        /// The current PIN.
        #[arg(long)]
        pin: Option<String>,
        #[arg(long)]
        new_pin: Option<String>,
    },
}

fn token_json(lib: &Library, slot: u64) -> Value {
    match lib.token_info(slot) {
        Some(t) => {
            let st = t.status.as_ref();
            json!({
                "Slot": slot,
                "Initialized": true,
                "Label": t.label,
                "Serial": t.serial,
                "UserPinInitialized": st.as_ref().map(|s| s.user_pin_initialized),
                "UserPinFailedLogins": st.as_ref().map(|s| s.user_failed),
                "SoPinFailedLogins": st.as_ref().map(|s| s.so_failed),
                "Uri": t.uri(),
                "Path": t.path.display().to_string(),
            })
        }
        _ => json!({ "Slot": slot, "Initialized": false }),
    }
}

fn run(cli: Cli) -> Result<Value, Failure> {
    let command = match cli.command {
        Command::Kms(args) => return cli::kms::run(args),
        Command::Audit(cmd) => return cli::audit::run(cmd),
        Command::Import(args) => return cli::import::run(args),
        Command::User(cmd) => return cli::user::run(cmd),
        other => other,
    };
    let lib = open()?;
    match command {
        Command::InitToken { free, slot, label, so_pin, pin } => {
            let slot = match (free, slot) {
                (_, Some(s)) => s,
                (true, None) => lib.empty_slot_id(),
                (false, None) => return Err(Failure::Local("say which slot: --free or --slot N".into())),
            };
            let so_pin = secret(so_pin, "KMSTOKEN_SO_PIN", "SO PIN: ")?;
            let pin = pin.or_else(|| std::env::var("KMSTOKEN_PIN").ok());
            let token = lib.init_token(slot, so_pin.as_bytes(), &label)?;
            if let Some(pin) = pin {
                as_user(&lib, &token, CKU_SO, &so_pin, |h| lib.init_pin(h, pin.as_bytes()))?;
            }
            Ok(token_json(&lib, token.slot_id))
        }
        Command::ShowSlots => {
            let slots: Vec<Value> = lib.slot_list()?.into_iter().map(|s| token_json(&lib, s)).collect();
            Ok(json!({ "Keystore": lib.keystore().display().to_string(), "Slots": slots }))
        }
        Command::DeleteToken { token, serial } => {
            if token.is_none() && serial.is_none() && std::env::var("KMSTOKEN_TOKEN").is_err() {
                return Err(Failure::Local("say which token to delete: --token LABEL or --serial".into()));
            }
            let t = pick(&lib, token, serial)?;
            lib.delete_token(t.slot_id)?;
            Ok(json!({ "Deleted": { "Slot": t.slot_id, "Label": t.label, "Serial": t.serial } }))
        }
        Command::VerifyKeystore { token, so_pin, accept } => {
            let t = pick(&lib, token, None)?;
            let so_pin = secret(so_pin, "KMSTOKEN_SO_PIN", "SO PIN: ")?;
            as_user(&lib, &t, CKU_SO, &so_pin, |h| lib.verify_keystore(h, accept))
        }
        Command::InitPin { token, so_pin, pin } => {
            let t = pick(&lib, token, None)?;
            let so_pin = secret(so_pin, "KMSTOKEN_SO_PIN", "SO PIN: ")?;
            let pin = secret(pin, "KMSTOKEN_PIN", "new user PIN: ")?;
            as_user(&lib, &t, CKU_SO, &so_pin, |h| lib.init_pin(h, pin.as_bytes()))?;
            Ok(token_json(&lib, t.slot_id))
        }
        Command::RestoreToken { serial: None } => {
            let list: Vec<Value> = lib
                .archived()?
                .into_iter()
                .map(|(p, serial, at)| {
                    json!({ "Serial": serial, "ArchivedAt": kmstoken::kms::clock::iso8601(at), "Path": p.display().to_string() })
                })
                .collect();
            Ok(json!({ "Archived": list }))
        }
        Command::RestoreToken { serial: Some(serial) } => {
            let t = lib.restore_token(&serial).map_err(|e| match e {
                kmstoken::error::Error::SlotIdInvalid => {
                    Failure::Local(format!("the archive holds no token with serial {serial}"))
                }
                kmstoken::error::Error::SessionExists => {
                    Failure::Local(format!("a token with serial {serial} is already in the keystore"))
                }
                e => Failure::from(e),
            })?;
            Ok(token_json(&lib, t.slot_id))
        }
        Command::Kms(_) | Command::Audit(_) | Command::Import(_) | Command::User(_) => {
            unreachable!("dispatched above")
        }
        Command::SetPin { token, so, pin, new_pin } => {
            let t = pick(&lib, token, None)?;
            let (user, env) = if so { (CKU_SO, "KMSTOKEN_SO_PIN") } else { (CKU_USER, "KMSTOKEN_PIN") };
            let old = secret(pin, env, "current PIN: ")?;
            let new = secret(new_pin, "KMSTOKEN_NEW_PIN", "new PIN: ")?;
            as_user(&lib, &t, user, &old, |h| lib.set_pin(h, old.as_bytes(), new.as_bytes()))?;
            Ok(token_json(&lib, t.slot_id))
        }
    }
}

/// Text output: `kmstoken kms` as the aws CLI's text; the token administration face as
/// softhsm2-util would print it (slots as a table, else one `Key: value` line per member).
fn print_text(v: &Value, aws: bool) {
    if aws {
        print!("{}", cli::output::text(v));
        return;
    }
    if let Some(slots) = v.get("Slots").and_then(Value::as_array) {
        if let Some(k) = v.get("Keystore").and_then(Value::as_str) {
            println!("Keystore: {k}");
        }
        for s in slots {
            match s.get("Label").and_then(Value::as_str) {
                Some(l) => println!(
                    "Slot {}\n    Token label: {l}\n    Serial:      {}\n    User PIN:    {}\n    URI:         {}",
                    s["Slot"],
                    s["Serial"].as_str().unwrap_or(""),
                    if s["UserPinInitialized"] == json!(true) { "initialised" } else { "not initialised" },
                    s["Uri"].as_str().unwrap_or(""),
                ),
                None => {
                    println!("Slot {}\n    Token:       not initialised (use kmstoken init-token --free)", s["Slot"])
                }
            }
        }
        return;
    }
    match v.as_object() {
        Some(o) => print_members(o, 0),
        None => print!("{}", cli::output::text(v)),
    }
}

/// `Key: value` lines, a nested object's members indented under its name.
fn print_members(o: &serde_json::Map<String, Value>, depth: usize) {
    let pad = "    ".repeat(depth);
    for (k, val) in o {
        match val {
            Value::String(s) => println!("{pad}{k}: {s}"),
            Value::Object(inner) => {
                println!("{pad}{k}:");
                print_members(inner, depth + 1);
            }
            // A list of objects (users, archived tokens): one block per element.
            Value::Array(items) if items.iter().all(Value::is_object) => {
                println!("{pad}{k}:{}", if items.is_empty() { " none" } else { "" });
                for item in items.iter().filter_map(Value::as_object) {
                    println!("{pad}  -");
                    print_members(item, depth + 1);
                }
            }
            other => println!("{pad}{k}: {other}"),
        }
    }
}

fn main() -> ExitCode {
    let args = match cli::input::expand(&Cli::command(), std::env::args_os().collect()) {
        Ok(Expanded::Args(args)) => args,
        Ok(Expanded::Skeleton(v)) => {
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            return ExitCode::SUCCESS;
        }
        Err(usage) => {
            eprintln!("\n{usage}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let output = cli.output;
    let aws = matches!(cli.command, Command::Kms(_));
    let query = cli.query.clone();
    match run(cli) {
        Ok(v) => {
            let v = match query.as_deref().map(|q| cli::output::query(&v, q)).transpose() {
                Ok(Some(found)) => found,
                Ok(None) => v,
                Err(usage) => {
                    eprintln!("\n{usage}");
                    return ExitCode::from(EXIT_USAGE);
                }
            };
            match (output, &v) {
                // Commands without a result print nothing, as the aws CLI.
                (_, Value::Null) => {}
                (Output::Json, v) => println!("{}", serde_json::to_string_pretty(v).unwrap_or_default()),
                (Output::Text, v) => print_text(v, aws),
            }
            ExitCode::SUCCESS
        }
        Err(e @ Failure::Aws { .. }) => {
            eprintln!("\n{e}");
            ExitCode::from(EXIT_FAILED)
        }
        Err(e @ Failure::Local(_)) => {
            eprintln!("kmstoken: error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}
