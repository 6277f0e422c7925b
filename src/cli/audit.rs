//! `kmstoken audit verify|tail|export`: check and read a token's audit trail. Verifying
//! needs a login (the audit key comes from the master key); reading does not, as records
//! hold no secret.

use super::{open, pick, secret, Failure};
use clap::Subcommand;
use cryptoki_sys::{CKF_RW_SESSION, CKF_SERIAL_SESSION, CKU_SO, CKU_USER};
use kmstoken::kms::audit::{check, legacy::Verdict};
use serde_json::{json, Value};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check every record's link under the audit key, the database's anchors and its
    /// generation against the trail. Logs in as the user (KMSTOKEN_PIN), or as the SO with
    /// --so (KMSTOKEN_SO_PIN).
    Verify {
        /// Label of the token (else KMSTOKEN_TOKEN, else the only token).
        #[arg(long)]
        token: Option<String>,
        /// The PIN (else KMSTOKEN_PIN, or KMSTOKEN_SO_PIN with --so, else a prompt).
        #[arg(long)]
        pin: Option<String>,
        /// Log in as the SO.
        #[arg(long)]
        so: bool,
    },
    /// Print the last records as CloudTrail events, optionally of one key.
    Tail {
        #[arg(long)]
        token: Option<String>,
        #[arg(long)]
        key_id: Option<String>,
        /// How many records.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
    },
    /// Print every record as CloudTrail events ({"Records": [...]}, a CloudTrail log
    /// file's shape), oldest first.
    Export {
        #[arg(long)]
        token: Option<String>,
        /// A trail directory to read instead (a copy, or another keystore's): needs no
        /// configuration or token.
        #[arg(long, conflicts_with = "token")]
        trail: Option<PathBuf>,
    },
}

/// Runs an audit command.
pub fn run(cmd: AuditCommand) -> Result<Value, Failure> {
    match cmd {
        AuditCommand::Verify { token, pin, so } => verify(token, pin, so),
        AuditCommand::Tail { token, key_id, lines } => {
            let lib = open()?;
            let t = pick(&lib, token, None)?;
            let mut records = check::read_all(&lib.trail_dir(t.slot_id)?)?;
            records.retain(|r| key_id.as_deref().is_none_or(|k| r["requestParameters"]["keyId"] == k));
            let skip = records.len().saturating_sub(lines);
            Ok(json!({ "Records": records.split_off(skip) }))
        }
        AuditCommand::Export { token, trail } => {
            let dir = match trail {
                Some(d) => d,
                None => {
                    let lib = open()?;
                    let t = pick(&lib, token, None)?;
                    lib.trail_dir(t.slot_id)?
                }
            };
            export(&dir)?;
            Ok(Value::Null)
        }
    }
}

/// Prints `{"Records": [...]}` one record at a time.
fn export(dir: &std::path::Path) -> Result<(), Failure> {
    use std::io::Write;
    let trail = check::Trail::read(dir)?;
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let records = trail.legacy.iter().cloned().chain((0..trail.len()).map(|i| trail.render(i)));
    let fail = |e: std::io::Error| Failure::Local(format!("cannot write the export: {e}"));
    out.write_all(b"{\"Records\":[").map_err(fail)?;
    for (n, r) in records.enumerate() {
        if n > 0 {
            out.write_all(b",\n").map_err(fail)?;
        }
        serde_json::to_writer(&mut out, &r).map_err(|e| Failure::Local(format!("cannot write the export: {e}")))?;
    }
    out.write_all(b"]}\n").and_then(|_| out.flush()).map_err(fail)
}

fn verify(token: Option<String>, pin: Option<String>, so: bool) -> Result<Value, Failure> {
    let lib = open()?;
    let t = pick(&lib, token, None)?;
    let (env, user) = if so { ("KMSTOKEN_SO_PIN", CKU_SO) } else { ("KMSTOKEN_PIN", CKU_USER) };
    let pin = zeroize::Zeroizing::new(secret(pin, env, "PIN: ")?);
    let h = lib.open_session(t.slot_id, CKF_SERIAL_SESSION | CKF_RW_SESSION)?;
    let found = lib.login(h, user, pin.as_bytes()).and_then(|_| lib.verify_trail(h));
    let _ = lib.close_session(h);
    let found = found?;
    let r = &found.report;
    let mut problems: Vec<String> = r
        .problems
        .iter()
        .map(|p| match (p.segment.is_empty(), p.record) {
            (true, _) => p.reason.clone(),
            (false, 0) => format!("{}: {}", p.segment, p.reason),
            (false, n) => format!("{}: record {n} is broken: {}", p.segment, p.reason),
        })
        .collect();
    let legacy = found.legacy.as_ref().map(|(path, v)| match v {
        Verdict::Intact { records } => {
            json!({ "File": path.display().to_string(), "Records": records, "Keyed": false })
        }
        Verdict::Broken { line, reason } => {
            problems.push(format!("{}: record {line} is broken: {reason}", path.display()));
            json!({ "File": path.display().to_string(), "Broken": line })
        }
    });
    if found.rolled_back {
        problems.push(format!(
            "the database (generation {}) is older than its anchor file ({}): it was put back from a copy",
            found.generation,
            found.anchor.unwrap_or(0)
        ));
    }
    if !problems.is_empty() {
        return Err(Failure::Local(format!("{}: {}", found.dir.display(), problems.join("; "))));
    }
    Ok(json!({
        "Trail": found.dir.display().to_string(),
        "Segments": r.segments,
        "Records": r.records,
        "Keyed": r.keyed,
        "Unsealed": r.unsealed,
        "Torn": r.torn,
        "Intact": true,
        "Legacy": legacy,
        "Database": { "Generation": found.generation, "Anchor": found.anchor, "TrailGeneration": r.generation },
    }))
}
