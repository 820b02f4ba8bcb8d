//! `provenance.json`: what re-creates a run on another machine, beside the
//! config snapshot. seki's version and the git commit it was built from, and
//! the SHA-256 of every input file the session's results depend on: the
//! NAS-Bench-201 table, the Candle evaluator's dataset files, a zero-cost
//! scores file, the GGUF model files of the LLM profiles the agent uses, and
//! the knowledge base the session started from. A resumed or replayed
//! session computes the same record again and says what differs.

use crate::config::{Config, KbRecords};
use crate::eval::candle::data::DatasetKind;
use crate::eval::EvaluatorKind;
use crate::knowledge::{ARCH_FILE, INSIGHT_FILE};
use crate::llm::profile::Profile;
use crate::store::{self, StoreError};
use crate::strategy::StrategyKind;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The file name in a run directory.
pub const PROVENANCE: &str = "provenance.json";

/// The git commit seki was built from (`unknown` when built without git).
pub const GIT_COMMIT: &str = env!("SEKI_GIT_COMMIT");

/// What a file's hash reads when the file is not there.
pub const MISSING: &str = "missing";

/// The role of the knowledge base among a record's inputs.
pub const KNOWLEDGE_BASE: &str = "knowledge base";

/// A provenance failure: an input file that exists but cannot be read, or
/// the record itself.
#[derive(Debug, thiserror::Error)]
pub enum ProvenanceError {
    /// An input file could not be read.
    #[error("cannot hash {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `provenance.json` could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `provenance.json` does not parse.
    #[error("{}: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// One input of a session: where it was and its SHA-256 (or [`MISSING`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    /// The file or folder on the machine that recorded it.
    pub path: String,
    /// Hex SHA-256 of its bytes ([`MISSING`] when absent).
    pub sha256: String,
}

/// What re-creates a run directory's session on another machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// seki's version (`Cargo.toml`).
    pub seki_version: String,
    /// The git commit seki was built from (`unknown` without git).
    pub git_commit: String,
    /// The input files, by role (`nb201 table`, `dataset file
    /// train-images-idx3-ubyte`, `model of LLM profile local`,
    /// `knowledge base`, ...): roles, not paths, so that records from two
    /// machines compare.
    pub inputs: BTreeMap<String, Input>,
}

/// One item that differs between a recorded provenance and the present one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// What (`seki version`, `nb201 table`, ...).
    pub item: String,
    /// As recorded.
    pub old: String,
    /// Now.
    pub new: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} -> {}", self.item, self.old, self.new)
    }
}

/// What a resumed or replayed session found on comparing its inputs with
/// those its run directory recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The run directory has no `provenance.json` (made by an older seki):
    /// nothing checked.
    NotRecorded,
    /// Every input compared is the same.
    Same,
    /// These differ.
    Differs(Vec<Difference>),
}

/// Which inputs a comparison covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// All of them.
    All,
    /// All but the knowledge base (which a session that writes to it
    /// changes itself, so a resumed one always finds it changed).
    WithoutKnowledgeBase,
}

impl Provenance {
    /// The provenance of a session run with `cfg`. `models`: whether the
    /// agent's LLM profiles are used (not when its replies come from a
    /// recording). The knowledge base's hash is taken now, so call this
    /// before the session writes to it.
    pub fn of(cfg: &Config, models: bool) -> Result<Self, ProvenanceError> {
        let mut inputs = BTreeMap::new();
        let mut add = |role: String, path: &Path| -> Result<(), ProvenanceError> {
            let sha256 = hash_file(path)?;
            inputs.insert(
                role,
                Input {
                    path: path.display().to_string(),
                    sha256,
                },
            );
            Ok(())
        };
        let screen = &cfg.search.screen;
        if cfg.search.evaluator == EvaluatorKind::Nb201 || screen.file.is_some() {
            add("nb201 table".into(), &cfg.evaluator.nb201.table)?;
        }
        let live_screen_on_data = screen.enabled() && screen.file.is_none() && !screen.noise_input;
        if cfg.search.evaluator == EvaluatorKind::Candle || live_screen_on_data {
            let c = &cfg.evaluator.candle;
            for (name, path) in dataset_files(c.dataset, &c.data_dir) {
                add(format!("dataset file {name}"), &path)?;
            }
        }
        if let Some(file) = &screen.file {
            add("zero-cost scores file".into(), file)?;
        }
        if models && cfg.search.strategy == StrategyKind::Seki {
            let mut names = vec![cfg.agent.llm_evolution.clone()];
            if cfg.agent.llm_inspiration != cfg.agent.llm_evolution {
                names.push(cfg.agent.llm_inspiration.clone());
            }
            for name in names {
                let wanted = Some(name.as_str()).filter(|n| !n.is_empty());
                if let Ok((name, Profile::Gguf(g))) = cfg.llm.profile(wanted) {
                    if g.model.is_file() || g.hf_repo.is_none() {
                        add(format!("model of LLM profile {name}"), &g.model)?;
                    }
                }
            }
        }
        if cfg.search.strategy == StrategyKind::Seki || cfg.search.kb_records != KbRecords::None {
            inputs.insert(
                KNOWLEDGE_BASE.into(),
                Input {
                    path: cfg.kb.dir.display().to_string(),
                    sha256: hash_knowledge_base(&cfg.kb.dir)?,
                },
            );
        }
        Ok(Provenance {
            seki_version: env!("CARGO_PKG_VERSION").into(),
            git_commit: GIT_COMMIT.into(),
            inputs,
        })
    }

    /// Read a run directory's record; `None` when it has none.
    pub fn read(run_dir: &Path) -> Result<Option<Self>, ProvenanceError> {
        let path = run_dir.join(PROVENANCE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(store::io_err(&path)(e).into()),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| ProvenanceError::Parse { path, source })
    }

    /// What differs from `self` (as recorded) in `now`: seki's version and
    /// commit, and each input both record (a path alone is no difference;
    /// an input only one of them has is not compared: a replay uses no
    /// model, for one).
    pub fn differences(&self, now: &Provenance, what: Compare) -> Vec<Difference> {
        let mut out = Vec::new();
        let mut item = |item: &str, old: &str, new: &str| {
            if old != new {
                out.push(Difference {
                    item: item.into(),
                    old: old.into(),
                    new: new.into(),
                });
            }
        };
        item("seki version", &self.seki_version, &now.seki_version);
        item("git commit", &self.git_commit, &now.git_commit);
        for (role, old) in &self.inputs {
            if what == Compare::WithoutKnowledgeBase && role == KNOWLEDGE_BASE {
                continue;
            }
            if let Some(new) = now.inputs.get(role) {
                item(
                    &format!("{role} ({})", new.path),
                    &short(&old.sha256),
                    &short(&new.sha256),
                );
            }
        }
        out
    }

    /// Compare the record in `run_dir` (if any) with `now`.
    pub fn check(
        run_dir: &Path,
        now: &Provenance,
        what: Compare,
    ) -> Result<Check, ProvenanceError> {
        Ok(match Self::read(run_dir)? {
            None => Check::NotRecorded,
            Some(old) => match old.differences(now, what) {
                d if d.is_empty() => Check::Same,
                d => Check::Differs(d),
            },
        })
    }
}

/// A hash as a warning shows it: its first 16 hex digits.
fn short(sha256: &str) -> String {
    sha256.chars().take(16).collect()
}

/// The files the Candle evaluator reads for `kind` from `dir`, by name: the
/// IDX files (plain or gzipped) for Fashion-MNIST and MNIST, the binary
/// batches for CIFAR (in `dir` or its usual subfolder).
fn dataset_files(kind: DatasetKind, dir: &Path) -> Vec<(String, PathBuf)> {
    let one_of = |base: &Path, name: &str| {
        let plain = base.join(name);
        let gz = base.join(format!("{name}.gz"));
        if !plain.exists() && gz.exists() {
            gz
        } else {
            plain
        }
    };
    let under = |sub: &str, probe: &str| {
        let nested = dir.join(sub);
        if !dir.join(probe).exists() && nested.join(probe).exists() {
            nested
        } else {
            dir.to_path_buf()
        }
    };
    let names: Vec<String> = match kind {
        DatasetKind::FashionMnist | DatasetKind::Mnist => [
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        ]
        .map(String::from)
        .to_vec(),
        DatasetKind::Cifar10 => (1..=5)
            .map(|i| format!("data_batch_{i}.bin"))
            .chain(["test_batch.bin".to_string()])
            .collect(),
        DatasetKind::Cifar100 => vec!["train.bin".into(), "test.bin".into()],
    };
    let base = match kind {
        DatasetKind::FashionMnist | DatasetKind::Mnist => dir.to_path_buf(),
        DatasetKind::Cifar10 => under("cifar-10-batches-bin", "test_batch.bin"),
        DatasetKind::Cifar100 => under("cifar-100-binary", "test.bin"),
    };
    names
        .into_iter()
        .map(|n| {
            let p = one_of(&base, &n);
            (n, p)
        })
        .collect()
}

/// Feed the file at `path` into `h`, streaming; `false` when it does not
/// exist.
fn feed(h: &mut Sha256, path: &Path) -> Result<bool, ProvenanceError> {
    let err = |source| ProvenanceError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(err(e)),
    };
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match f.read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(err(e)),
        }
    }
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hex SHA-256 of a file's bytes, read in pieces ([`MISSING`] when it
/// does not exist).
pub fn hash_file(path: &Path) -> Result<String, ProvenanceError> {
    let mut h = Sha256::new();
    Ok(if feed(&mut h, path)? {
        hex(&h.finalize())
    } else {
        MISSING.into()
    })
}

/// The state of the knowledge base in `dir`: the hex SHA-256 over its two
/// data files, `architectures.jsonl` then `insights.jsonl`, each as its name,
/// a zero byte, then `present` or `absent` and a zero byte, then its bytes
/// (the lock and temporary files are not part of the state). A folder that
/// does not exist hashes as two absent files.
pub fn hash_knowledge_base(dir: &Path) -> Result<String, ProvenanceError> {
    let mut h = Sha256::new();
    for name in [ARCH_FILE, INSIGHT_FILE] {
        h.update(name.as_bytes());
        h.update([0]);
        let path = dir.join(name);
        let present = path.is_file();
        h.update(if present {
            &b"present"[..]
        } else {
            &b"absent"[..]
        });
        h.update([0]);
        if present {
            feed(&mut h, &path)?;
        }
    }
    Ok(hex(&h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(table: &str, kb: &str) -> Provenance {
        let input = |path: &str, sha256: &str| Input {
            path: path.into(),
            sha256: sha256.into(),
        };
        Provenance {
            seki_version: "0.1.0".into(),
            git_commit: "abc".into(),
            inputs: BTreeMap::from([
                ("nb201 table".to_string(), input("/a/t.csv", table)),
                (KNOWLEDGE_BASE.to_string(), input("kb", kb)),
            ]),
        }
    }

    #[test]
    fn differences_name_each_changed_item_old_then_new() {
        let old = record("1111111111111111ffff", "kb1");
        let mut now = record("2222222222222222ffff", "kb2");
        now.git_commit = "def".into();
        // Another path with the same bytes is no difference.
        now.inputs.get_mut("nb201 table").unwrap().path = "/b/t.csv".into();
        let d = old.differences(&now, Compare::All);
        let text: Vec<String> = d.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "git commit: abc -> def",
                "knowledge base (kb): kb1 -> kb2",
                "nb201 table (/b/t.csv): 1111111111111111 -> 2222222222222222",
            ]
        );
        let d = old.differences(&now, Compare::WithoutKnowledgeBase);
        assert_eq!(d.len(), 2);
        assert!(d.iter().all(|d| d.item != KNOWLEDGE_BASE));
        assert!(old.differences(&old, Compare::All).is_empty());
        // An input only one side has is not compared.
        let mut fewer = old.clone();
        fewer.inputs.remove("nb201 table");
        assert!(old.differences(&fewer, Compare::All).is_empty());
        assert!(fewer.differences(&old, Compare::All).is_empty());
    }

    #[test]
    fn files_and_knowledge_bases_hash_by_content() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("f");
        std::fs::write(&f, "abc").unwrap();
        // The SHA-256 of "abc".
        assert_eq!(
            hash_file(&f).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hash_file(&d.path().join("none")).unwrap(), MISSING);
        let kb = d.path().join("kb");
        let empty = hash_knowledge_base(&kb).unwrap();
        std::fs::create_dir(&kb).unwrap();
        assert_eq!(hash_knowledge_base(&kb).unwrap(), empty);
        std::fs::write(kb.join(INSIGHT_FILE), "").unwrap();
        let with_file = hash_knowledge_base(&kb).unwrap();
        assert_ne!(with_file, empty);
        std::fs::write(kb.join(crate::knowledge::LOCK_FILE), "x").unwrap();
        assert_eq!(hash_knowledge_base(&kb).unwrap(), with_file);
        std::fs::write(kb.join(INSIGHT_FILE), "{}\n").unwrap();
        assert_ne!(hash_knowledge_base(&kb).unwrap(), with_file);
    }

    #[test]
    fn a_run_directory_without_a_record_is_not_checked() {
        let d = tempfile::tempdir().unwrap();
        let now = record("1", "2");
        assert_eq!(
            Provenance::check(d.path(), &now, Compare::All).unwrap(),
            Check::NotRecorded
        );
        store::write_atomic(
            &d.path().join(PROVENANCE),
            serde_json::to_string(&now).unwrap().as_bytes(),
        )
        .unwrap();
        assert_eq!(
            Provenance::check(d.path(), &now, Compare::All).unwrap(),
            Check::Same
        );
    }
}
