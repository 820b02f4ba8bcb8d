//! The benchmark's session journal (`seki bench nb201 --sessions FILE`):
//! each finished session's figures at every checkpoint, one JSON line,
//! appended and fsynced as the session ends.
//!
//! Sessions already in the file under the same settings are read back
//! instead of run again, so a benchmark that was interrupted (or extended
//! with more seeds) resumes where it stopped. Processes running different
//! seeds of the same benchmark may append to one file at the same time:
//! each line is written whole, and a later run reads them all.

use crate::store::{self, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One finished session of a benchmark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionLine {
    /// The strategy's label (e.g. `seki`, `rea warm`).
    pub strategy: String,
    /// Evaluations in flight in the session.
    pub in_flight: usize,
    /// The session's seed.
    pub seed: u64,
    /// The fingerprint of the benchmark's settings ([`fingerprint`]).
    pub settings: String,
    /// The checkpoints (evaluations done) the values are for.
    pub marks: Vec<usize>,
    /// The session's figure at each checkpoint (test accuracy of the
    /// returned cell, or % of the true front's hypervolume); `null` where
    /// the session had not evaluated anything by then.
    pub values: Vec<Option<f64>>,
    /// Wall-clock seconds the session took.
    pub seconds: f64,
}

type Key = (String, usize, u64);

/// The sessions a benchmark has finished, kept in a JSON Lines file.
#[derive(Debug)]
pub struct SessionLog {
    path: PathBuf,
    settings: String,
    done: HashMap<Key, SessionLine>,
}

impl SessionLog {
    /// Read the sessions in `path` (a missing file is an empty journal) for
    /// a benchmark whose settings' fingerprint is `settings`. A line of
    /// other settings is refused, naming the file and line: figures of two
    /// set-ups are never pooled.
    pub fn open(path: &Path, settings: &str) -> Result<Self, StoreError> {
        let (lines, _) = store::read_jsonl::<SessionLine>(path, false, |l| {
            if l.marks.len() != l.values.len() {
                return Err(format!(
                    "{} checkpoints but {} values",
                    l.marks.len(),
                    l.values.len()
                ));
            }
            if !(l.seconds.is_finite() && l.seconds >= 0.0) {
                return Err(format!("seconds is {}, not a duration", l.seconds));
            }
            if l.values.iter().flatten().any(|v| !v.is_finite()) {
                return Err("a value is not a finite number".into());
            }
            Ok(())
        })?;
        let mut done = HashMap::new();
        for (n, l) in lines {
            if l.settings != settings {
                return Err(StoreError::BadLine {
                    path: path.to_path_buf(),
                    line: n,
                    message: format!(
                        "session {} seed {} was run with other settings (fingerprint {}, now {}): the configuration or the benchmark's options changed; name another --sessions file, or run with the settings it was made with",
                        l.strategy, l.seed, l.settings, settings
                    ),
                });
            }
            // Two processes that ran the same seed wrote the same figures;
            // the first line stands.
            done.entry((l.strategy.clone(), l.in_flight, l.seed))
                .or_insert(l);
        }
        Ok(Self {
            path: path.to_path_buf(),
            settings: settings.to_string(),
            done,
        })
    }

    /// Sessions read back or recorded so far.
    pub fn len(&self) -> usize {
        self.done.len()
    }

    /// Whether the journal holds no session.
    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }

    /// The recorded session of `strategy` at `seed`, if it has the same
    /// checkpoints.
    pub fn recorded(
        &self,
        strategy: &str,
        in_flight: usize,
        seed: u64,
        marks: &[usize],
    ) -> Option<&SessionLine> {
        self.done
            .get(&(strategy.to_string(), in_flight, seed))
            .filter(|l| l.marks == marks)
    }

    /// Append a finished session (one whole line, fsynced).
    pub fn record(
        &mut self,
        strategy: &str,
        in_flight: usize,
        seed: u64,
        marks: &[usize],
        values: &[Option<f64>],
        seconds: f64,
    ) -> Result<(), StoreError> {
        let line = SessionLine {
            strategy: strategy.to_string(),
            in_flight,
            seed,
            settings: self.settings.clone(),
            marks: marks.to_vec(),
            values: values.to_vec(),
            seconds,
        };
        store::append_jsonl(&self.path, &[&line])?;
        self.done
            .insert((line.strategy.clone(), in_flight, seed), line);
        Ok(())
    }
}

/// A fingerprint of a benchmark's settings: the first 16 hex digits of the
/// SHA-256 of their JSON with every object's keys sorted (so that a map's
/// iteration order never changes it). Only the fingerprint is stored, never
/// the settings themselves.
pub fn fingerprint(settings: &Value) -> String {
    let text = canonical(settings).to_string();
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = serde_json::Map::new();
            for k in keys {
                if let Some(x) = m.get(k) {
                    out.insert(k.clone(), canonical(x));
                }
            }
            Value::Object(out)
        }
        Value::Array(xs) => Value::Array(xs.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_fingerprint_ignores_key_order_and_sees_every_value() {
        let a = json!({"b": 1, "a": {"y": [1, 2], "x": "s"}});
        let b = json!({"a": {"x": "s", "y": [1, 2]}, "b": 1});
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_eq!(fingerprint(&a).len(), 16);
        let c = json!({"a": {"x": "s", "y": [2, 1]}, "b": 1});
        assert_ne!(fingerprint(&a), fingerprint(&c));
    }

    #[test]
    fn sessions_are_read_back_and_other_settings_refused() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("sessions.jsonl");
        let mut log = SessionLog::open(&path, "aaaa").unwrap();
        assert!(log.is_empty());
        log.record("rea", 1, 3, &[10, 25], &[Some(93.1), None], 0.5)
            .unwrap();
        let again = SessionLog::open(&path, "aaaa").unwrap();
        assert_eq!(again.len(), 1);
        let l = again.recorded("rea", 1, 3, &[10, 25]).unwrap();
        assert_eq!(l.values, vec![Some(93.1), None]);
        assert!(again.recorded("rea", 1, 4, &[10, 25]).is_none());
        assert!(again.recorded("rea", 4, 3, &[10, 25]).is_none());
        assert!(again.recorded("rea", 1, 3, &[10, 50]).is_none());
        let e = SessionLog::open(&path, "bbbb").unwrap_err().to_string();
        assert!(e.contains("sessions.jsonl:1"), "{e}");
        assert!(
            e.contains("session rea seed 3 was run with other settings"),
            "{e}"
        );
        // A line whose values do not match its checkpoints is named.
        std::fs::write(
            &path,
            "{\"strategy\":\"rea\",\"in_flight\":1,\"seed\":0,\"settings\":\"aaaa\",\"marks\":[10],\"values\":[],\"seconds\":1.0}\n",
        )
        .unwrap();
        let e = SessionLog::open(&path, "aaaa").unwrap_err().to_string();
        assert!(e.contains(":1: 1 checkpoints but 0 values"), "{e}");
    }
}
