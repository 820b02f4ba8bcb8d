//! Durable line-oriented storage: JSON Lines read with line numbers, appends
//! that are fsynced one whole line at a time, atomic rewrites, and the
//! single-writer lock.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A storage failure, naming the file (and line) concerned.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a valid record.
    #[error("{path}:{line}: {message}")]
    BadLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Another process holds the lock.
    #[error("{path} is locked by another writer{holder}; wait for it to finish (the lock is released automatically when that process exits)")]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// ` (pid N)` when known.
        holder: String,
    },
    /// A record could not be serialised.
    #[error("cannot serialise record: {0}")]
    Serialize(#[from] serde_json::Error),
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One line that did not load, reported when bad lines are skipped.
#[derive(Debug, Clone)]
pub struct SkippedLine {
    /// The file.
    pub path: PathBuf,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Records with their 1-based line numbers, and the lines skipped.
pub type Lines<T> = (Vec<(usize, T)>, Vec<SkippedLine>);

/// Read a JSON Lines file into records with their line numbers.
///
/// A missing file is empty. Blank lines are ignored. A final line without its
/// newline that does not parse is a write cut short by a crash: it is
/// skipped with a warning. Any other bad line is an error naming the file and
/// line, unless `skip_bad` is set, in which case it is reported in the
/// second list and the rest still loads. `check` validates each parsed value.
pub fn read_jsonl<T: DeserializeOwned>(
    path: &Path,
    skip_bad: bool,
    mut check: impl FnMut(&T) -> Result<(), String>,
) -> Result<Lines<T>, StoreError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(e) => return Err(io_err(path)(e)),
    };
    let torn_tail = !text.is_empty() && !text.ends_with('\n');
    let lines: Vec<&str> = text.split('\n').collect();
    let last = lines.len().saturating_sub(1);
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed = serde_json::from_str::<T>(line)
            .map_err(|e| e.to_string())
            .and_then(|v| check(&v).map(|_| v));
        match parsed {
            Ok(v) => out.push((i + 1, v)),
            Err(message) if torn_tail && i == last => {
                tracing::warn!(
                    "{}:{}: ignoring an incomplete last line (a write cut short): {message}",
                    path.display(),
                    i + 1
                );
            }
            Err(message) if skip_bad => skipped.push(SkippedLine {
                path: path.to_path_buf(),
                line: i + 1,
                message,
            }),
            Err(message) => {
                return Err(StoreError::BadLine {
                    path: path.to_path_buf(),
                    line: i + 1,
                    message: format!("{message} (pass --skip-bad-lines to load the other lines)"),
                })
            }
        }
    }
    Ok((out, skipped))
}

/// Append records to a JSON Lines file, each as one whole line, and fsync.
///
/// A torn last line left by a crash is cut off first, so the file stays a
/// sequence of complete lines.
pub fn append_jsonl<T: Serialize>(path: &Path, records: &[T]) -> Result<(), StoreError> {
    let mut buf = Vec::new();
    for r in records {
        serde_json::to_writer(&mut buf, r)?;
        buf.push(b'\n');
    }
    append_bytes(path, &buf)
}

/// Append raw bytes (whole lines) to a file and fsync, repairing a torn tail.
pub fn append_bytes(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let err = io_err(path);
    let mut f = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .map_err(io_err(path))?;
    repair_tail(&mut f).map_err(io_err(path))?;
    let before = f.metadata().map_err(io_err(path))?.len();
    let written = f.write_all(bytes).and_then(|()| f.sync_data());
    if let Err(e) = written {
        // A full disk can take part of the bytes: cut them off again so the
        // file never holds half a line.
        let _ = f.set_len(before);
        let _ = f.sync_data();
        return Err(err(e));
    }
    Ok(())
}

/// If the file does not end in a newline, drop the incomplete last line.
fn repair_tail(f: &mut File) -> std::io::Result<()> {
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    f.seek(SeekFrom::Start(len - 1))?;
    let mut b = [0u8; 1];
    f.read_exact(&mut b)?;
    if b[0] == b'\n' {
        return Ok(());
    }
    // Find the last newline and truncate after it.
    let mut pos = len;
    let mut chunk = vec![0u8; 4096];
    while pos > 0 {
        let start = pos.saturating_sub(chunk.len() as u64);
        let n = (pos - start) as usize;
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut chunk[..n])?;
        if let Some(i) = chunk[..n].iter().rposition(|&c| c == b'\n') {
            let keep = start + i as u64 + 1;
            tracing::warn!("dropping {} bytes of an incomplete last line", len - keep);
            f.set_len(keep)?;
            return Ok(());
        }
        pos = start;
    }
    tracing::warn!("dropping an incomplete only line of {len} bytes");
    f.set_len(0)
}

/// Replace a file's contents atomically: write a temporary file beside it,
/// fsync, rename over the original, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = File::create(&tmp).map_err(io_err(&tmp)).and_then(|mut f| {
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(io_err(path))
    });
    // On failure (a full disk) the original is untouched and no partial
    // temporary file is left behind.
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path).map_err(io_err(path))) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Remove the temporary files [`write_atomic`] left in `dir` when its
/// process was killed between creating and renaming them (`.NAME.tmp-PID`
/// of a process that is gone). Call it only as the folder's single writer
/// (the knowledge base's lock holder, a session resuming its run
/// directory). Returns the files removed.
pub fn remove_stale_temps(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix('.')
            .and_then(|n| n.rsplit_once(".tmp-"))
            .and_then(|(_, p)| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let path = e.path();
        if fs::remove_file(&path).is_ok() {
            tracing::warn!(
                "removed {}, left by a writer (pid {pid}) killed before it finished",
                path.display()
            );
            removed.push(path);
        }
    }
    removed
}

/// Rewrite a JSON Lines file atomically with the given records.
pub fn rewrite_jsonl<T: Serialize>(path: &Path, records: &[T]) -> Result<(), StoreError> {
    let mut buf = Vec::new();
    for r in records {
        serde_json::to_writer(&mut buf, r)?;
        buf.push(b'\n');
    }
    write_atomic(path, &buf)
}

/// An exclusive advisory lock on a file, held until dropped.
///
/// The operating system releases it when the process ends, even by SIGKILL,
/// so a lock whose holder died is simply taken over by the next writer; a
/// lock held by a live process is an error naming its pid. The lock file is
/// removed when the lock is dropped, so a finished writer leaves nothing
/// behind in the folder.
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

/// Whether `file` is still the file at `path` (not unlinked and replaced).
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

impl FileLock {
    /// Take the lock at `path`, or fail at once with [`StoreError::Locked`].
    pub fn acquire(path: &Path) -> Result<Self, StoreError> {
        // A releasing holder unlinks the file; a lock taken on the unlinked
        // file would be no lock at all, so open again until the locked file
        // is the one at `path`.
        for _ in 0..16 {
            let mut file = OpenOptions::new()
                .create(true)
                .read(true)
                .write(true)
                .truncate(false)
                .open(path)
                .map_err(io_err(path))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    let mut s = String::new();
                    let _ = file.read_to_string(&mut s);
                    let holder = s
                        .trim()
                        .parse::<u32>()
                        .map(|p| format!(" (pid {p})"))
                        .unwrap_or_default();
                    return Err(StoreError::Locked {
                        path: path.to_path_buf(),
                        holder,
                    });
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io_err(path)(e)),
            }
            if !same_file(&file, path) {
                continue;
            }
            file.set_len(0).map_err(io_err(path))?;
            file.seek(SeekFrom::Start(0)).map_err(io_err(path))?;
            write!(file, "{}", std::process::id()).map_err(io_err(path))?;
            let _ = file.sync_data();
            return Ok(FileLock {
                file,
                path: path.to_path_buf(),
            });
        }
        Err(StoreError::Locked {
            path: path.to_path_buf(),
            holder: " (it was released and re-taken repeatedly)".into(),
        })
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Unlink while still holding the lock, so no one locks the old file
        // after it is gone; a waiting opener sees the swap and retries.
        if same_file(&self.file, &self.path) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct R {
        a: u32,
    }

    #[test]
    fn append_read_and_torn_tail_repair() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.jsonl");
        append_jsonl(&p, &[R { a: 1 }, R { a: 2 }]).unwrap();
        // Simulate a crash mid-write.
        fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"{\"a\": 3")
            .unwrap();
        let (rows, skipped) = read_jsonl::<R>(&p, false, |_| Ok(())).unwrap();
        assert_eq!(rows.len(), 2);
        assert!(skipped.is_empty());
        append_jsonl(&p, &[R { a: 4 }]).unwrap();
        let (rows, _) = read_jsonl::<R>(&p, false, |_| Ok(())).unwrap();
        assert_eq!(
            rows.iter().map(|r| r.1.a).collect::<Vec<_>>(),
            vec![1, 2, 4]
        );
        assert_eq!(rows[2].0, 3);
    }

    #[test]
    fn bad_middle_line_is_an_error_unless_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.jsonl");
        fs::write(&p, "{\"a\":1}\nnot json\n{\"a\":2}\n").unwrap();
        let e = read_jsonl::<R>(&p, false, |_| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.jsonl:2:"), "{e}");
        let (rows, skipped) = read_jsonl::<R>(&p, true, |_| Ok(())).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].line, 2);
    }

    #[test]
    fn a_lock_file_left_by_a_dead_writer_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".lock");
        // What a writer killed with SIGKILL leaves: the file with its pid,
        // but no lock (the kernel dropped it with the process).
        fs::write(&p, "4194303").unwrap();
        let lock = FileLock::acquire(&p).unwrap();
        assert_eq!(
            fs::read_to_string(&p).unwrap(),
            std::process::id().to_string()
        );
        drop(lock);
        assert!(!p.exists());
    }

    #[test]
    fn second_lock_fails_until_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".lock");
        let first = FileLock::acquire(&p).unwrap();
        let e = FileLock::acquire(&p).unwrap_err().to_string();
        assert!(e.contains("locked by another writer"), "{e}");
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        drop(first);
        let again = FileLock::acquire(&p).unwrap();
        drop(again);
        assert!(!p.exists(), "a released lock leaves no file behind");
    }

    #[test]
    fn temporary_files_of_dead_writers_are_removed_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        // pid 4194303 is above any pid_max: a process that cannot exist.
        for name in [
            ".insights.jsonl.tmp-4194303",
            ".best.json.tmp-4194303",
            "keep.jsonl",
            ".x.tmp-notapid",
        ] {
            fs::write(p.join(name), "x").unwrap();
        }
        let mine = format!(".a.json.tmp-{}", std::process::id());
        fs::write(p.join(&mine), "x").unwrap();
        let mut removed: Vec<String> = remove_stale_temps(p)
            .iter()
            .map(|r| r.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        removed.sort();
        assert_eq!(
            removed,
            vec![".best.json.tmp-4194303", ".insights.jsonl.tmp-4194303"]
        );
        for kept in ["keep.jsonl", ".x.tmp-notapid", mine.as_str()] {
            assert!(p.join(kept).exists(), "{kept}");
        }
    }

    #[test]
    fn atomic_rewrite_replaces_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.jsonl");
        append_jsonl(&p, &[R { a: 1 }]).unwrap();
        rewrite_jsonl(&p, &[R { a: 9 }]).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "{\"a\":9}\n");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
