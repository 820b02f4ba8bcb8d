//! A full disk and read-only folders under a session: a clear error,
//! nothing written half, and the session resumes once the fault is gone.
//!
//! The faults are real: a small tmpfs mounted for the test (full when it is
//! full), remounted read-only or larger. Mounting needs root (as in CI and on
//! the development machine). Where it is not possible, the full disk is a
//! file-size limit on the session's process instead (`RLIMIT_FSIZE`: its
//! writes past the limit fail with "File too large", the same failure path),
//! and the read-only folders are folders without write permission (for a
//! user that is not root); what still cannot run says so and skips, except
//! under `CI=true` (root on a fresh machine), where the tests fail.

mod common;

use common::{run, seki};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted on a temporary folder, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mount one of `size` (e.g. "64k"), or say why not and return `None`.
    /// Under `CI=true` not being able to mount fails the test.
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "seki-test"])
            .arg(dir.path())
            .output();
        let why = match out {
            Ok(o) if o.status.success() => return Some(Tmpfs { dir }),
            Ok(o) => format!(
                "cannot mount a tmpfs here (needs root): {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => format!("cannot run mount: {e}"),
        };
        assert!(
            !in_ci(),
            "{why}; under CI=true the disk-fault tests need a tmpfs (run them as root)"
        );
        eprintln!("no tmpfs: {why}");
        None
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Remount with other options ("ro", "rw", "size=4m").
    fn remount(&self, opts: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(self.path())
            .status()
            .unwrap();
        assert!(st.success(), "remount {opts}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Whether the tests run in CI, where nothing may be skipped.
fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Whether this process runs as root (who writes through permissions).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `c` run with its files limited to `bytes` (`RLIMIT_FSIZE`, set by the
/// shell's `ulimit -f` in 512-byte blocks), `SIGXFSZ` ignored so that a
/// write past the limit fails with `EFBIG` ("File too large") instead of
/// killing the process.
fn file_size_limited(c: &Command, bytes: u64) -> Command {
    let mut w = Command::new("sh");
    w.arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {} || exit 97; exec \"$@\"",
            bytes.div_ceil(512).max(1)
        ))
        .arg("sh")
        .arg(c.get_program())
        .args(c.get_args());
    if let Some(d) = c.get_current_dir() {
        w.current_dir(d);
    }
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => w.env(k, v),
            None => w.env_remove(k),
        };
    }
    w
}

/// A folder made read-only and writable again: a tmpfs remounted, or,
/// where none can be mounted and the user is not root, the write
/// permissions of everything in it taken away and given back.
enum ReadOnly {
    /// A tmpfs.
    Tmpfs(Tmpfs),
    /// A folder whose permissions change.
    Permissions(tempfile::TempDir),
}

impl ReadOnly {
    /// One of `size` when a tmpfs, or say why there is none and return `None`.
    fn new(size: &str) -> Option<ReadOnly> {
        if let Some(fs) = Tmpfs::mount(size) {
            return Some(ReadOnly::Tmpfs(fs));
        }
        if is_root() {
            eprintln!("skipped: root writes through permissions, and no tmpfs can be mounted");
            return None;
        }
        eprintln!("read-only by permissions instead");
        Some(ReadOnly::Permissions(tempfile::tempdir().unwrap()))
    }

    fn path(&self) -> &Path {
        match self {
            ReadOnly::Tmpfs(fs) => fs.path(),
            ReadOnly::Permissions(d) => d.path(),
        }
    }

    /// Make it read-only (`true`) or writable again.
    fn set(&self, read_only: bool) {
        match self {
            ReadOnly::Tmpfs(fs) => fs.remount(if read_only { "ro" } else { "rw" }),
            ReadOnly::Permissions(d) => {
                use std::os::unix::fs::PermissionsExt;
                let mut dirs = vec![d.path().to_path_buf()];
                let mut i = 0;
                while let Some(dir) = dirs.get(i).cloned() {
                    for e in std::fs::read_dir(&dir).unwrap() {
                        let p = e.unwrap().path();
                        if p.is_dir() {
                            dirs.push(p);
                        } else {
                            let mode = if read_only { 0o444 } else { 0o644 };
                            std::fs::set_permissions(&p, PermissionsExt::from_mode(mode)).unwrap();
                        }
                    }
                    i += 1;
                }
                for dir in dirs {
                    let mode = if read_only { 0o555 } else { 0o755 };
                    std::fs::set_permissions(&dir, PermissionsExt::from_mode(mode)).unwrap();
                }
            }
        }
    }

    /// What a write to it says when it is read-only.
    fn refusal(&self) -> &'static str {
        match self {
            ReadOnly::Tmpfs(_) => "Read-only file system",
            ReadOnly::Permissions(_) => "Permission denied",
        }
    }
}

/// Every file under `dir` (recursively).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Nothing half written: JSON files parse, JSON Lines files are whole
/// lines that parse, and no temporary file is left.
fn assert_whole(dir: &Path) {
    for p in files(dir) {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !name.contains(".tmp"),
            "a temporary file is left: {}",
            p.display()
        );
        let text = std::fs::read_to_string(&p).unwrap();
        if name.ends_with(".jsonl") {
            assert!(
                text.is_empty() || text.ends_with('\n'),
                "{} ends mid-line",
                p.display()
            );
            for (i, l) in text.lines().enumerate() {
                serde_json::from_str::<serde_json::Value>(l)
                    .unwrap_or_else(|e| panic!("{}:{}: {e}", p.display(), i + 1));
            }
        } else if name.ends_with(".json") {
            serde_json::from_str::<serde_json::Value>(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        }
    }
}

/// The architectures a run directory's journal evaluated, in order.
fn evaluated(run: &Path) -> Vec<String> {
    common::journal(run)
        .into_iter()
        .filter(|e| e["event"] == "evaluation")
        .map(|e| e["arch"].as_str().unwrap().to_string())
        .collect()
}

const BUDGET: &str = "40";

/// A REA session on the NAS-Bench-201 table recording every result.
fn search(cwd: &Path, run_dir: &Path, kb: &Path) -> Command {
    let mut c = seki(cwd);
    c.args([
        "search",
        "--strategy",
        "rea",
        "--seed",
        "3",
        "--budget",
        BUDGET,
        "--kb-records",
        "all",
        "--run-dir",
    ])
    .arg(run_dir)
    .arg("--kb")
    .arg(kb);
    c
}

/// How the disk fills in [`full_disk`].
enum Full<'a> {
    /// A tmpfs that fills; grown to 8 MB afterwards.
    Tmpfs(&'a Tmpfs),
    /// A file-size limit of this many bytes on the session's process (none
    /// afterwards).
    FileSize(u64),
}

#[test]
fn a_full_disk_is_a_clear_error_leaves_nothing_half_written_and_resumes() {
    match Tmpfs::mount("48k") {
        Some(fs) => full_disk(fs.path(), Full::Tmpfs(&fs)),
        None => {
            eprintln!("the full disk is a file-size limit instead");
            let space = tempfile::tempdir().unwrap();
            full_disk(space.path(), Full::FileSize(0));
        }
    }
}

#[test]
fn a_file_size_limit_is_a_clear_error_leaves_nothing_half_written_and_resumes() {
    // The same failure path without mounting anything, so it runs anywhere.
    let space = tempfile::tempdir().unwrap();
    full_disk(space.path(), Full::FileSize(0));
}

/// A session on `space` runs out of room, fails clearly with nothing half
/// written, and resumes to the uninterrupted session's end once there is
/// room. `Full::FileSize(0)`: half the largest JSON Lines file the
/// reference session writes.
fn full_disk(space: &Path, full: Full<'_>) {
    let work = tempfile::tempdir().unwrap();
    // The same session on a roomy disk, for reference.
    let reference = work.path().join("reference");
    let kb_ref = work.path().join("kb-ref");
    let (ok, _, err) = run(&mut search(work.path(), &reference, &kb_ref));
    assert!(ok, "{err}");

    let run_dir = space.join("run");
    let kb = space.join("kb");
    let session = search(work.path(), &run_dir, &kb);
    let (mut session, message) = match full {
        Full::Tmpfs(_) => (session, "No space left on device"),
        Full::FileSize(bytes) => {
            let bytes = if bytes > 0 {
                bytes
            } else {
                // The journal or the knowledge base, which grow with every
                // evaluation (not the report, written once at the end).
                let largest = files(&reference)
                    .into_iter()
                    .chain(files(&kb_ref))
                    .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
                    .map(|p| std::fs::metadata(p).unwrap().len())
                    .max()
                    .unwrap();
                largest / 2
            };
            (file_size_limited(&session, bytes), "File too large")
        }
    };
    let (ok, out, err) = run(&mut session);
    assert!(
        !ok,
        "the session should have run out of space:\n{out}\n{err}"
    );
    assert!(err.contains(message), "{err}");
    assert!(
        err.contains("seki search --resume") && err.contains(&run_dir.display().to_string()),
        "{err}"
    );
    assert_whole(space);
    let before = evaluated(&run_dir);
    assert!(
        !before.is_empty() && before.len() < BUDGET.parse::<usize>().unwrap(),
        "the disk filled mid-session: {} evaluations",
        before.len()
    );

    // Space is back: the session resumes and ends as the uninterrupted one.
    if let Full::Tmpfs(fs) = full {
        fs.remount("size=8m");
    }
    let mut c = seki(work.path());
    c.args(["search", "--kb", &kb.display().to_string(), "--resume"])
        .arg(&run_dir);
    let (ok, out, err) = run(&mut c);
    assert!(ok, "{out}\n{err}");
    assert_eq!(evaluated(&run_dir), evaluated(&reference));
    assert_whole(space);
    let ref_best: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reference.join("best.json")).unwrap())
            .unwrap();
    let best: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("best.json")).unwrap()).unwrap();
    assert_eq!(best["arch"], ref_best["arch"]);
}

#[test]
fn a_read_only_knowledge_base_fails_before_the_session_starts() {
    let Some(fs) = ReadOnly::new("1m") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let kb = fs.path().join("kb");
    std::fs::create_dir_all(&kb).unwrap();
    std::fs::copy(
        common::root().join("knowledge/architectures.jsonl"),
        kb.join("architectures.jsonl"),
    )
    .unwrap();
    let kb_bytes = std::fs::read(kb.join("architectures.jsonl")).unwrap();
    fs.set(true);
    let run_dir = work.path().join("run");
    let (ok, out, err) = run(&mut search(work.path(), &run_dir, &kb));
    assert!(!ok, "{out}");
    assert!(
        err.contains(fs.refusal()) && err.contains(&kb.display().to_string()),
        "{err}"
    );
    assert!(!run_dir.exists(), "the session started anyway");
    assert_eq!(
        std::fs::read(kb.join("architectures.jsonl")).unwrap(),
        kb_bytes
    );
    fs.set(false);
    let (ok, _, err) = run(&mut search(work.path(), &run_dir, &kb));
    assert!(ok, "{err}");
}

#[test]
fn a_read_only_run_directory_fails_clearly_and_resumes_once_writable() {
    let Some(fs) = ReadOnly::new("4m") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let reference = work.path().join("reference");
    let (ok, _, err) = run(&mut search(
        work.path(),
        &reference,
        &work.path().join("kb-ref"),
    ));
    assert!(ok, "{err}");
    // What a kill at evaluation 12 left behind, on the tmpfs.
    let run_dir = fs.path().join("run");
    common::cut_run(&reference, &run_dir, 12, 0.5);
    let before: Vec<(PathBuf, Vec<u8>)> = files(fs.path())
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    fs.set(true);
    let kb = work.path().join("kb");
    let mut c = seki(work.path());
    c.args(["search", "--kb", &kb.display().to_string(), "--resume"])
        .arg(&run_dir);
    let (ok, out, err) = run(&mut c);
    assert!(!ok, "{out}");
    assert!(
        err.contains(fs.refusal()) && err.contains(&run_dir.display().to_string()),
        "{err}"
    );
    for (p, b) in &before {
        assert_eq!(&std::fs::read(p).unwrap(), b, "{} changed", p.display());
    }
    fs.set(false);
    let mut c = seki(work.path());
    c.args(["search", "--kb", &kb.display().to_string(), "--resume"])
        .arg(&run_dir);
    let (ok, _, err) = run(&mut c);
    assert!(ok, "{err}");
    assert_eq!(evaluated(&run_dir), evaluated(&reference));
    assert_whole(fs.path());
}
