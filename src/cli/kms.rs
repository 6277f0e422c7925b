//! `kmstoken kms <command>`: the key lifecycle commands of `aws kms`, with its flag names,
//! output members and error names, over the same library code as the PKCS#11 module.

use super::{open, pick, secret, Failure};
use clap::Args;
use kmstoken::api::{self, Caller, Request};
use kmstoken::kms;
use serde_json::Value;

/// Who acts and on which token.
#[derive(Args)]
pub struct Login {
    /// Label of the token (else KMSTOKEN_TOKEN, else the only token).
    #[arg(long, global = true)]
    token: Option<String>,
    /// `user`, `so` (key administrators) or a named user (`user/NAME` or `NAME`, see
    /// `kmstoken user`). Default: `so` for an administrative command when the SO PIN is
    /// given (--so-pin or KMSTOKEN_SO_PIN), else `user`.
    #[arg(long, global = true)]
    principal: Option<String>,
    /// The principal's PIN (else KMSTOKEN_PIN, or KMSTOKEN_SO_PIN for `so`).
    #[arg(long, global = true)]
    pin: Option<String>,
    /// The SO PIN (else KMSTOKEN_SO_PIN): acts as `so` for administrative commands.
    #[arg(long, global = true)]
    so_pin: Option<String>,
}

impl Login {
    /// Who acts for `operation`, with the environment variable of their PIN and the PIN
    /// given by flag.
    fn who(&self, operation: &str) -> (String, &'static str, Option<String>) {
        let so_pin = self.so_pin.clone().or_else(|| std::env::var("KMSTOKEN_SO_PIN").ok());
        let principal = match &self.principal {
            Some(p) => p.clone(),
            None if so_pin.is_some() && kms::policy::is_admin_action(operation) => "so".into(),
            None => "user".into(),
        };
        if principal == "so" {
            let pin = self.pin.clone().or(so_pin);
            return (principal, "KMSTOKEN_SO_PIN", pin);
        }
        (principal, "KMSTOKEN_PIN", self.pin.clone())
    }
}

#[derive(Args)]
pub struct KmsArgs {
    #[command(flatten)]
    login: Login,
    /// The request as JSON whose members are the operation's parameters (`KeyId`, ...),
    /// inline or file://FILE; flags given on the command line win.
    #[arg(long = "cli-input-json", global = true, value_name = "JSON")]
    _cli_input_json: Option<String>,
    /// Print a JSON skeleton of the request for --cli-input-json, and do nothing else.
    #[arg(long = "generate-cli-skeleton", global = true)]
    _generate_cli_skeleton: bool,
    #[command(subcommand)]
    command: Request,
}

/// Runs a kms command: the JSON to print, or the AWS-style failure.
pub fn run(args: KmsArgs) -> Result<Value, Failure> {
    let op = args.command.operation();
    let lib = open()?;
    let token = pick(&lib, args.login.token.clone(), None)?;
    let (principal, env, pin) = args.login.who(op);
    let pin = zeroize::Zeroizing::new(secret(pin, env, "PIN: ")?);
    let caller = Caller::login(&lib, token.slot_id, &principal, pin.as_bytes())?;
    api::execute(&caller, args.command).map_err(|e| Failure::aws(op, e))
}
