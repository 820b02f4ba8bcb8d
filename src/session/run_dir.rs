//! A session's run directory: the effective config, the journal, the best
//! architecture so far and the final summary.

use crate::store::{self, StoreError};
use serde::Serialize;
use std::path::{Path, PathBuf};

pub use crate::record::{BEST, CONFIG, JOURNAL, SUMMARY};

/// A run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
    session: String,
}

/// A session id unique across sessions: the folder's name and a short hash
/// of its full path, the time and the process, so two sessions whose run
/// directories share a name (`/tmp/a/run`, later `/tmp/b/run`) never give
/// knowledge-base records the same id.
pub fn new_session_id(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "session".into());
    let full = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut h = Sha256::new();
    h.update(full.to_string_lossy().as_bytes());
    h.update(nanos.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    let d = h.finalize();
    format!("{name}-{:02x}{:02x}{:02x}", d[0], d[1], d[2])
}

impl RunDir {
    /// Create a new run directory; it must not hold a journal already.
    pub fn create(path: &Path) -> Result<Self, StoreError> {
        Self::create_with_id(path, &new_session_id(path))
    }

    /// Create a new run directory for the session `id` (from
    /// [`new_session_id`], made before the folder so that everything that
    /// can fail in a session's setup fails before anything is written).
    pub fn create_with_id(path: &Path, id: &str) -> Result<Self, StoreError> {
        std::fs::create_dir_all(path).map_err(store::io_err(path))?;
        let rd = RunDir {
            path: path.to_path_buf(),
            session: id.to_string(),
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

    /// Open an existing run directory; its session id is the one its
    /// journal's start line records.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let journal = path.join(JOURNAL);
        let not_a_run = |why: &str| StoreError::Io {
            path: journal.clone(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, why.to_string()),
        };
        if !journal.is_file() {
            return Err(not_a_run(
                "no session journal here; is this a run directory?",
            ));
        }
        let session = match super::journal::read(&journal) {
            Ok(events) => match events.first() {
                Some(super::Event::Start { session, .. }) => session.clone(),
                _ => return Err(not_a_run("the journal has no start line")),
            },
            Err(super::JournalError::Store(e)) => return Err(e),
            Err(super::JournalError::NoStart(_)) => {
                return Err(not_a_run("the journal has no start line"))
            }
        };
        Ok(RunDir {
            path: path.to_path_buf(),
            session,
        })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The session id (the folder's name and a short unique suffix; for an
    /// existing session, the id its journal records).
    pub fn session_id(&self) -> String {
        self.session.clone()
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
