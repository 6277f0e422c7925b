//! Tokens and their keystore files: C_InitToken, and the archive of replaced or deleted
//! tokens (`delete-token`, `restore-token`), kept for the deletion window.

use super::*;

impl Library {
    // ---- tokens and PINs ----

    /// C_InitToken: makes a token on the empty slot, or re-initialises a token after
    /// checking its SO PIN; the old database goes to the keystore's archive.
    pub fn init_token(&self, slot_id: u64, so_pin: &[u8], label: &str) -> Result<TokenInfo> {
        if !pin_len_ok(&self.config, so_pin) {
            return Err(Error::PinLenRange);
        }
        let _guard = KeystoreLock::take(&self.keystore)?;
        self.refresh()?;
        match self.slot(slot_id)? {
            Slot::Empty => {}
            Slot::Token(old) => {
                if self.session_counts(slot_id).0 > 0 {
                    return Err(Error::SessionExists);
                }
                old.verify_pin(Role::So, so_pin)?;
                self.archive(&old)?;
                self.tokens.write().remove(&slot_id);
            }
        }
        let token = Arc::new(Token::create(&self.keystore, slot_id, label, so_pin, &self.config)?);
        self.tokens.write().insert(slot_id, token.clone());
        log::info!("slot {slot_id}: token {:?} (serial {}) initialised", label, token.serial);
        Ok(TokenInfo::of(&token))
    }

    /// Moves a token's database aside into `archive/` under the keystore.
    fn archive(&self, token: &Token) -> Result<()> {
        let dir = self.keystore.join("archive");
        ensure_dir(&dir)?;
        let stamp = crate::kms::clock::now();
        for suffix in ["", "-wal", "-shm"] {
            let from = PathBuf::from(format!("{}{suffix}", token.path().display()));
            if from.exists() {
                let name = from.file_name().and_then(|n| n.to_str()).unwrap_or("token");
                std::fs::rename(&from, dir.join(format!("{stamp}-{name}")))
                    .map_err(|e| Error::storage(format!("{}: cannot archive: {e}", from.display())))?;
            }
        }
        Ok(())
    }

    /// Archived token databases, newest first: (path, serial, seconds since the epoch when
    /// archived).
    pub fn archived(&self) -> Result<Vec<(PathBuf, String, i64)>> {
        let dir = self.keystore.join("archive");
        let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(Vec::new()) };
        let mut out: Vec<(PathBuf, String, i64)> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter_map(|p| {
                let name = p.file_name()?.to_str()?.to_string();
                let (stamp, rest) = name.split_once("-token-")?;
                let serial = rest.strip_suffix(".sqlite")?.to_string();
                Some((p, serial, stamp.parse().ok()?))
            })
            .collect();
        out.sort_by_key(|a| std::cmp::Reverse(a.2));
        Ok(out)
    }

    /// Brings the newest archived database of token `serial` back, on the empty slot.
    pub fn restore_token(&self, serial: &str) -> Result<TokenInfo> {
        let _guard = KeystoreLock::take(&self.keystore)?;
        self.refresh()?;
        if self.tokens.read().values().any(|t| t.serial == serial) {
            return Err(Error::SessionExists);
        }
        let (from, _, _) = self.archived()?.into_iter().find(|a| a.1 == serial).ok_or(Error::SlotIdInvalid)?;
        let to = self.keystore.join(format!("token-{serial}.sqlite"));
        for suffix in ["", "-wal", "-shm"] {
            let f = PathBuf::from(format!("{}{suffix}", from.display()));
            if f.exists() {
                let t = PathBuf::from(format!("{}{suffix}", to.display()));
                std::fs::rename(&f, &t).map_err(|e| Error::storage(format!("{}: cannot restore: {e}", f.display())))?;
            }
        }
        let slot_id = self.empty_slot_id();
        crate::store::Store::set_slot_id(&crate::store::sqlite::SqliteStore::open(&to)?, slot_id)?;
        let token = Arc::new(Token::open(&to, &self.config)?);
        self.tokens.write().insert(slot_id, token.clone());
        log::info!("token {serial} restored from the archive to slot {slot_id}");
        Ok(TokenInfo::of(&token))
    }

    /// Archived databases older than the deletion window are purged when a library opens.
    pub(super) fn purge_archive(&self) {
        let window = self.config.kms.deletion_window_days as i64 * crate::kms::clock::DAY;
        let now = crate::kms::clock::now();
        for (path, serial, at) in self.archived().unwrap_or_default() {
            if at + window <= now {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
                log::info!("archived token {serial} purged after its deletion window");
            }
        }
    }

    /// Deletes a token for good (the command line's delete-token).
    pub fn delete_token(&self, slot_id: u64) -> Result<()> {
        let Slot::Token(t) = self.slot(slot_id)? else {
            return Err(Error::SlotIdInvalid);
        };
        self.archive(&t)?;
        self.tokens.write().remove(&slot_id);
        Ok(())
    }
}

/// What the faces are told of a token (they never hold the token itself).
#[derive(Clone, Debug)]
pub struct TokenInfo {
    pub slot_id: u64,
    pub label: String,
    pub serial: String,
    /// Its database file.
    pub path: PathBuf,
    /// PIN state and counters, when the database reads.
    pub status: Option<crate::token::TokenStatus>,
}

impl TokenInfo {
    fn of(t: &Token) -> TokenInfo {
        TokenInfo {
            slot_id: t.slot_id,
            label: t.label.clone(),
            serial: t.serial.clone(),
            path: t.path().to_path_buf(),
            status: t.status().ok(),
        }
    }

    /// The token's PKCS#11 URI (RFC 7512).
    pub fn uri(&self) -> String {
        format!("pkcs11:token={};serial={}", self.label.replace(' ', "%20"), self.serial)
    }
}

/// Why no single token answers to a label or serial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoSingleToken {
    /// There is no initialised token at all.
    NoToken,
    /// None has that label or serial.
    NoMatch,
    /// Several tokens, and nothing said which.
    Several,
    /// Several have that label.
    SeveralLabelled,
}

impl std::fmt::Display for NoSingleToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NoSingleToken::NoToken => "there is no initialised token (kmstoken init-token)",
            NoSingleToken::NoMatch => "no token has that label or serial",
            NoSingleToken::Several => "several tokens exist: choose one with --token LABEL",
            NoSingleToken::SeveralLabelled => "several tokens have that label: choose one with --serial",
        })
    }
}

/// What `kmstoken audit verify` found: the trail checked under the audit key, the
/// database's generation against its anchor file, and a trail from before segments.
pub struct TrailReport {
    pub dir: PathBuf,
    pub report: crate::kms::audit::check::Report,
    pub generation: u64,
    pub anchor: Option<u64>,
    pub rolled_back: bool,
    pub legacy: Option<(PathBuf, crate::kms::audit::legacy::Verdict)>,
}

impl Library {
    /// The token in slot `slot_id`, if there is one.
    pub fn token_info(&self, slot_id: u64) -> Option<TokenInfo> {
        match self.slot(slot_id) {
            Ok(Slot::Token(t)) => Some(TokenInfo::of(&t)),
            _ => None,
        }
    }

    /// The token named by label or serial, else the only one there is.
    pub fn choose_token(
        &self,
        label: Option<&str>,
        serial: Option<&str>,
    ) -> std::result::Result<TokenInfo, NoSingleToken> {
        let found: Vec<Arc<Token>> = self
            .tokens()
            .into_iter()
            .filter(|t| label.is_none_or(|l| t.label == l) && serial.is_none_or(|s| t.serial == s))
            .collect();
        match (found.as_slice(), label, serial) {
            ([one], _, _) => Ok(TokenInfo::of(one)),
            ([], None, None) => Err(NoSingleToken::NoToken),
            ([], _, _) => Err(NoSingleToken::NoMatch),
            (_, None, None) => Err(NoSingleToken::Several),
            _ => Err(NoSingleToken::SeveralLabelled),
        }
    }

    /// The directory of the audit trail of the token in slot `slot_id`.
    pub fn trail_dir(&self, slot_id: u64) -> Result<PathBuf> {
        let Slot::Token(t) = self.slot(slot_id)? else { return Err(Error::SlotIdInvalid) };
        Ok(t.audit.dir().to_path_buf())
    }

    /// Checks the audit trail of the session's token under the audit key of its login:
    /// every record's link, the database's anchors of the segments (each anchor's own MAC
    /// first) and the generation the trail saw against the database's.
    pub fn verify_trail(&self, h: CK_SESSION_HANDLE) -> Result<TrailReport> {
        use crate::kms::audit::{check, legacy};
        let (t, _) = self.token_of(h)?;
        let key = crate::crypto::Hmac::new(crate::crypto::Hash::Sha256, &t.audit_key()?);
        let mut anchors = Vec::new();
        let mut edited = Vec::new();
        for (head, sound) in t.trail_anchors()? {
            if sound {
                anchors.push(head);
            } else {
                edited.push(check::Problem {
                    segment: head.segment,
                    record: head.records,
                    reason: "the database's anchor of this segment fails its MAC: it was edited".into(),
                });
            }
        }
        let dir = t.audit.dir().to_path_buf();
        let mut report = check::verify(&dir, &key, &anchors);
        report.problems.extend(edited);
        let (generation, anchor) = t.generations()?;
        report.problems.extend(check::behind(&report, generation));
        let old = dir.with_extension("jsonl");
        let legacy = if old.exists() { Some((old.clone(), legacy::verify(&old)?)) } else { None };
        Ok(TrailReport { dir, report, generation, anchor, rolled_back: t.rolled_back.is_some(), legacy })
    }
}
