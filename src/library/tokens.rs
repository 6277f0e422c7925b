//! Tokens and their keystore files: C_InitToken, and the archive of replaced or deleted
//! tokens (`delete-token`, `restore-token`), kept for the deletion window.

use super::*;

impl Library {
    // ---- tokens and PINs ----

    /// C_InitToken: makes a token on the empty slot, or re-initialises a token after
    /// checking its SO PIN; the old database goes to the keystore's archive.
    pub fn init_token(&self, slot_id: u64, so_pin: &[u8], label: &str) -> Result<Arc<Token>> {
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
        Ok(token)
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
    pub fn restore_token(&self, serial: &str) -> Result<Arc<Token>> {
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
        Ok(token)
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
