//! `kmstoken audit verify|tail`: check and read a token's audit trail.

use super::{open, pick, Failure};
use clap::Subcommand;
use kmstoken::kms::audit::{self, Verdict};
use serde_json::{json, Value};

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check every record's hash and the chain between records.
    Verify {
        /// Label of the token (else KMSTOKEN_TOKEN, else the only token).
        #[arg(long)]
        token: Option<String>,
    },
    /// Print the last records, optionally of one key.
    Tail {
        #[arg(long)]
        token: Option<String>,
        #[arg(long)]
        key_id: Option<String>,
        /// How many records.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
    },
}

/// Runs an audit command; `Ok(None)` when the result is printed already.
pub fn run(cmd: AuditCommand) -> Result<Value, Failure> {
    let lib = open()?;
    match cmd {
        AuditCommand::Verify { token } => {
            let t = pick(&lib, token, None)?;
            let trail = lib.trail_state(t.slot_id)?;
            let path = trail.path.as_path();
            // The database against its anchor: one put back from an older copy shows.
            let database = json!({
                "Generation": trail.generation,
                "Anchor": trail.anchor,
                "RolledBack": trail.rolled_back,
            });
            match audit::verify(path)? {
                Verdict::Intact { records } => Ok(json!({
                    "Log": path.display().to_string(),
                    "Records": records,
                    "Intact": true,
                    "Database": database,
                })),
                Verdict::Broken { line, reason } => {
                    Err(Failure::Local(format!("{}: record {line} is broken: {reason}", path.display())))
                }
            }
        }
        AuditCommand::Tail { token, key_id, lines } => {
            let t = pick(&lib, token, None)?;
            let records = audit::tail(&lib.trail_state(t.slot_id)?.path, lines, key_id.as_deref())?;
            Ok(json!({ "Records": records }))
        }
    }
}
