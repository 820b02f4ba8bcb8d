//! A session's run directory: the effective config, the journal, the best
//! architecture so far and the final summary.

use crate::knowledge::store::{self, StoreError};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// File names inside a run directory.
pub const CONFIG: &str = "config.toml";
/// The append-only journal.
pub const JOURNAL: &str = "journal.jsonl";
/// The best architecture so far.
pub const BEST: &str = "best.json";
/// Counts and outcome, written when the session ends.
pub const SUMMARY: &str = "summary.json";

/// The session id of the run directory `path` (its folder's name), known
/// before the folder is created.
pub fn session_id_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "session".into())
}

/// A run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Create a new run directory; it must not hold a journal already.
    pub fn create(path: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(path).map_err(store::io_err(path))?;
        let rd = RunDir {
            path: path.to_path_buf(),
        };
        if rd.journal().exists() {
            return Err(StoreError::Io {
                path: rd.journal(),
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "this run directory already holds a session; continue it with `seki search --resume DIR` or pick another --run-dir",
                ),
            });
        }
        Ok(rd)
    }

    /// Open an existing run directory.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let rd = RunDir {
            path: path.to_path_buf(),
        };
        if !rd.journal().is_file() {
            return Err(StoreError::Io {
                path: rd.journal(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no session journal here; is this a run directory?",
                ),
            });
        }
        Ok(rd)
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The session id: the folder's name.
    pub fn session_id(&self) -> String {
        session_id_of(&self.path)
    }

    /// Path of the journal.
    pub fn journal(&self) -> PathBuf {
        self.path.join(JOURNAL)
    }

    /// Path of the config snapshot.
    pub fn config(&self) -> PathBuf {
        self.path.join(CONFIG)
    }

    /// Write a file atomically.
    pub fn write_text(&self, name: &str, text: &str) -> Result<(), StoreError> {
        store::write_atomic(&self.path.join(name), text.as_bytes())
    }

    /// Write a JSON file atomically (pretty-printed).
    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StoreError> {
        let mut text = serde_json::to_string_pretty(value)?;
        text.push('\n');
        self.write_text(name, &text)
    }
}
