//! The knowledge base: evaluated architectures and distilled insights, kept
//! as human-readable, git-diffable JSON Lines files in one folder.
//!
//! - `architectures.jsonl`: one [`ArchRecord`] per line.
//! - `insights.jsonl`: one [`Insight`] per line.
//! - `.lock`: held by the one process allowed to write at a time.
//!
//! Additions are appended and fsynced line by line; removals rewrite a file
//! atomically. Reading needs no lock.

pub mod claim;
pub mod record;
pub mod truth;

use crate::store;
pub use crate::store::{FileLock, SkippedLine, StoreError};
pub use record::{
    higher_is_better, now_rfc3339, ArchRecord, EvaluatorInfo, Insight, InsightStatus, Provenance,
};

use crate::space::{Arch, Space};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// File name of the architecture records.
pub const ARCH_FILE: &str = "architectures.jsonl";
/// File name of the insights.
pub const INSIGHT_FILE: &str = "insights.jsonl";
/// File name of the writer lock.
pub const LOCK_FILE: &str = ".lock";

/// A knowledge-base failure.
#[derive(Debug, thiserror::Error)]
pub enum KbError {
    /// Reading or writing a file failed, or a line is malformed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The folder does not exist.
    #[error("knowledge base folder {0} does not exist (create it, or point --kb at another)")]
    Missing(PathBuf),
    /// No record has that id or hash.
    #[error("no architecture record or insight has id or hash '{0}' (see `seki kb list`)")]
    NotFound(String),
    /// A hash prefix matches several records.
    #[error("'{0}' matches several records: {1}; give more of the id or hash")]
    Ambiguous(String, String),
    /// An id is already taken.
    #[error("a record with id '{0}' already exists")]
    DuplicateId(String),
    /// A record given to add or import is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The knowledge base is opened read-only.
    #[error("the knowledge base was opened read-only")]
    ReadOnly,
}

/// A loaded architecture record with its derived fields.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The record as stored.
    pub record: ArchRecord,
    /// The parsed architecture.
    pub arch: Arch,
    /// Its canonical hash.
    pub hash: String,
}

/// Options for opening a knowledge base.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenOptions {
    /// Report malformed lines and load the rest, instead of failing.
    pub skip_bad_lines: bool,
    /// Take the writer lock (needed to add, remove, import or dedupe).
    pub write: bool,
    /// Create the folder if it does not exist (with `write`).
    pub create: bool,
}

/// A knowledge base loaded from its folder.
#[derive(Debug)]
pub struct KnowledgeBase {
    dir: PathBuf,
    entries: Vec<Entry>,
    insights: Vec<Insight>,
    skipped: Vec<SkippedLine>,
    lock: Option<FileLock>,
}

fn validate_record(r: &ArchRecord) -> Result<Arch, String> {
    if r.id.trim().is_empty() {
        return Err("field id is empty".into());
    }
    r.space
        .parse(&r.arch)
        .map_err(|e| format!("field arch: {e}"))
}

impl KnowledgeBase {
    /// Open the knowledge base in `dir`.
    pub fn open(dir: &Path, opts: OpenOptions) -> Result<Self, KbError> {
        if !dir.is_dir() {
            if opts.write && opts.create {
                std::fs::create_dir_all(dir).map_err(store::io_err(dir))?;
            } else {
                return Err(KbError::Missing(dir.to_path_buf()));
            }
        }
        let lock = if opts.write {
            let lock = FileLock::acquire(&dir.join(LOCK_FILE))?;
            // A writer killed in the middle of a rewrite left its temporary file.
            store::remove_stale_temps(dir);
            Some(lock)
        } else {
            None
        };
        let arch_path = dir.join(ARCH_FILE);
        let (rows, mut skipped) =
            store::read_jsonl::<ArchRecord>(&arch_path, opts.skip_bad_lines, |r| {
                validate_record(r).map(|_| ())
            })?;
        let mut entries = Vec::with_capacity(rows.len());
        let mut seen = HashSet::new();
        for (line, record) in rows {
            if !seen.insert(record.id.clone()) {
                let message = format!("duplicate id '{}'", record.id);
                if opts.skip_bad_lines {
                    skipped.push(SkippedLine {
                        path: arch_path.clone(),
                        line,
                        message,
                    });
                    continue;
                }
                return Err(StoreError::BadLine {
                    path: arch_path,
                    line,
                    message,
                }
                .into());
            }
            let arch = validate_record(&record).map_err(|message| StoreError::BadLine {
                path: arch_path.clone(),
                line,
                message,
            })?;
            let hash = arch.hash();
            entries.push(Entry { record, arch, hash });
        }
        let (insights, skipped_insights) =
            store::read_jsonl::<Insight>(&dir.join(INSIGHT_FILE), opts.skip_bad_lines, |_| Ok(()))?;
        skipped.extend(skipped_insights);
        Ok(KnowledgeBase {
            dir: dir.to_path_buf(),
            entries,
            insights: insights.into_iter().map(|(_, i)| i).collect(),
            skipped,
            lock,
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// All architecture records, in file order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// All insights, in file order.
    pub fn insights(&self) -> &[Insight] {
        &self.insights
    }

    /// Lines skipped because they were malformed (only with `skip_bad_lines`).
    pub fn skipped(&self) -> &[SkippedLine] {
        &self.skipped
    }

    /// The record with this id.
    pub fn get(&self, id: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.record.id == id)
    }

    /// Records whose canonical hash is `hash`.
    pub fn by_hash(&self, hash: &str) -> Vec<&Entry> {
        self.entries.iter().filter(|e| e.hash == hash).collect()
    }

    /// Find one record by exact id, or by a unique prefix of its canonical hash.
    pub fn find(&self, key: &str) -> Result<&Entry, KbError> {
        if let Some(e) = self.get(key) {
            return Ok(e);
        }
        let matches: Vec<&Entry> = if key.len() >= 4 {
            self.entries
                .iter()
                .filter(|e| e.hash.starts_with(key))
                .collect()
        } else {
            Vec::new()
        };
        match matches.as_slice() {
            [] => Err(KbError::NotFound(key.to_string())),
            [one] => Ok(one),
            many => Err(KbError::Ambiguous(
                key.to_string(),
                many.iter()
                    .map(|e| e.record.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            )),
        }
    }

    /// The evaluation protocols of a space's records (all spaces when
    /// `None`), in order of first appearance, with their record counts.
    pub fn protocols(&self, space: Option<Space>) -> Vec<Protocol> {
        let mut out: Vec<Protocol> = Vec::new();
        for e in &self.entries {
            if space.is_some_and(|s| e.record.space != s) {
                continue;
            }
            let key = e.record.protocol();
            match out.iter_mut().find(|p| p.key == key) {
                Some(p) => p.records += 1,
                None => out.push(Protocol {
                    key,
                    label: e.record.evaluator.protocol_label(),
                    records: 1,
                }),
            }
        }
        out
    }

    fn in_scope(&self, space: Option<Space>, protocol: &str) -> Vec<&Entry> {
        self.entries
            .iter()
            .filter(|e| space.is_none_or(|s| e.record.space == s))
            .filter(|e| e.record.protocol() == protocol)
            .collect()
    }

    /// The best `k` records of a space under one evaluation protocol (a key
    /// from [`KnowledgeBase::protocols`]) by a metric (its direction from
    /// [`higher_is_better`]); records without the metric are left out.
    /// Scores of different protocols are never ranked together.
    pub fn top_k(
        &self,
        space: Option<Space>,
        protocol: &str,
        metric: &str,
        k: usize,
    ) -> Vec<&Entry> {
        let mut v: Vec<&Entry> = self
            .in_scope(space, protocol)
            .into_iter()
            .filter(|e| e.record.metric(metric).is_some_and(f64::is_finite))
            .collect();
        let up = higher_is_better(metric);
        v.sort_by(|a, b| {
            let (x, y) = (
                a.record.metric(metric).unwrap_or(0.0),
                b.record.metric(metric).unwrap_or(0.0),
            );
            let o = x.total_cmp(&y);
            if up {
                o.reverse()
            } else {
                o
            }
        });
        v.truncate(k);
        v
    }

    /// The Pareto front over (metric, `params`) of one protocol's records:
    /// records no other record of it beats on both at once. Sorted by
    /// parameter count.
    pub fn pareto(&self, space: Option<Space>, protocol: &str, metric: &str) -> Vec<&Entry> {
        let up = higher_is_better(metric);
        let pts: Vec<(&Entry, f64, f64)> = self
            .in_scope(space, protocol)
            .into_iter()
            .filter_map(|e| {
                let m = e.record.metric(metric)?;
                let p = e.record.metric("params")?;
                Some((e, if up { m } else { -m }, p))
            })
            .collect();
        let mut front: Vec<(&Entry, f64, f64)> = pts
            .iter()
            .filter(|(_, m, p)| {
                !pts.iter()
                    .any(|(_, m2, p2)| m2 >= m && p2 <= p && (m2 > m || p2 < p))
            })
            .copied()
            .collect();
        front.sort_by(|a, b| a.2.total_cmp(&b.2));
        front.into_iter().map(|(e, _, _)| e).collect()
    }

    /// Per protocol of the records an insight cites: how many, and the mean
    /// score of those with one (scores are averaged within a protocol only).
    pub fn evidence_stats(&self, insight: &Insight) -> Vec<EvidenceStats> {
        let mut out: Vec<EvidenceStats> = Vec::new();
        for id in &insight.evidence {
            let Some(e) = self.get(id) else { continue };
            let key = e.record.protocol();
            let i = match out.iter().position(|s| s.protocol == key) {
                Some(i) => i,
                None => {
                    out.push(EvidenceStats {
                        protocol: key,
                        label: e.record.evaluator.protocol_label(),
                        records: 0,
                        mean_score: None,
                        scored: 0,
                    });
                    out.len() - 1
                }
            };
            let s = &mut out[i];
            s.records += 1;
            if let Some(v) = e.record.score {
                let m = s.mean_score.unwrap_or(0.0) * s.scored as f64;
                s.scored += 1;
                s.mean_score = Some((m + v) / s.scored as f64);
            }
        }
        out
    }

    /// Replace the records that share an id with one given (e.g. a
    /// session's record whose score became the mean over re-evaluations)
    /// and append the others; rewrites the file atomically when any was
    /// replaced.
    pub fn upsert(&mut self, records: Vec<ArchRecord>) -> Result<(), KbError> {
        self.writable()?;
        let mut fresh = Vec::new();
        let mut replaced = false;
        for r in records {
            let e = Self::check_record(r)?;
            match self.entries.iter_mut().find(|x| x.record.id == e.record.id) {
                Some(slot) => {
                    if slot.record != e.record {
                        *slot = e;
                        replaced = true;
                    }
                }
                None => fresh.push(e.record),
            }
        }
        if replaced {
            self.save_all(false)?;
        }
        self.add(fresh)
    }

    /// Insights of a space (all spaces when `None`).
    pub fn insights_for(&self, space: Option<Space>) -> Vec<&Insight> {
        self.insights
            .iter()
            .filter(|i| space.is_none_or(|s| i.space == s))
            .collect()
    }

    fn writable(&self) -> Result<(), KbError> {
        if self.lock.is_some() {
            Ok(())
        } else {
            Err(KbError::ReadOnly)
        }
    }

    /// Check a record and derive its entry, without adding it.
    pub fn check_record(record: ArchRecord) -> Result<Entry, KbError> {
        let arch = validate_record(&record)
            .map_err(|m| KbError::Invalid(format!("record '{}': {m}", record.id)))?;
        let hash = arch.hash();
        Ok(Entry { record, arch, hash })
    }

    /// Append architecture records (fsynced). Fails on an id already present.
    pub fn add(&mut self, records: Vec<ArchRecord>) -> Result<(), KbError> {
        self.writable()?;
        let mut ids: HashSet<&str> = self.entries.iter().map(|e| e.record.id.as_str()).collect();
        let mut new = Vec::with_capacity(records.len());
        for r in records {
            let e = Self::check_record(r)?;
            new.push(e);
        }
        for e in &new {
            if !ids.insert(e.record.id.as_str()) {
                return Err(KbError::DuplicateId(e.record.id.clone()));
            }
        }
        let recs: Vec<&ArchRecord> = new.iter().map(|e| &e.record).collect();
        store::append_jsonl(&self.dir.join(ARCH_FILE), &recs)?;
        self.entries.extend(new);
        Ok(())
    }

    /// Append insights (fsynced). Fails on an id already present.
    pub fn add_insights(&mut self, insights: Vec<Insight>) -> Result<(), KbError> {
        self.writable()?;
        for i in &insights {
            if self.insights.iter().any(|x| x.id == i.id) {
                return Err(KbError::DuplicateId(i.id.clone()));
            }
        }
        store::append_jsonl(&self.dir.join(INSIGHT_FILE), &insights)?;
        self.insights.extend(insights);
        Ok(())
    }

    /// Replace insights that share an id with one already stored (e.g. one
    /// later evidence contradicted) and append the others; rewrites the
    /// insights file atomically when any was replaced.
    pub fn upsert_insights(&mut self, insights: Vec<Insight>) -> Result<(), KbError> {
        self.writable()?;
        let mut fresh = Vec::new();
        let mut replaced = false;
        for ins in insights {
            match self.insights.iter_mut().find(|x| x.id == ins.id) {
                Some(slot) => {
                    if *slot != ins {
                        *slot = ins;
                        replaced = true;
                    }
                }
                None => fresh.push(ins),
            }
        }
        if replaced {
            store::rewrite_jsonl(&self.dir.join(INSIGHT_FILE), &self.insights)?;
        }
        self.add_insights(fresh)
    }

    /// Remove the record (or insight) with this id; drops it from insights'
    /// evidence. Returns the ids of the insights that cited it.
    pub fn remove(&mut self, id: &str) -> Result<Vec<String>, KbError> {
        self.writable()?;
        if let Some(pos) = self.insights.iter().position(|i| i.id == id) {
            self.insights.remove(pos);
            store::rewrite_jsonl(&self.dir.join(INSIGHT_FILE), &self.insights)?;
            return Ok(Vec::new());
        }
        let id = self.find(id)?.record.id.clone();
        self.entries.retain(|e| e.record.id != id);
        let cited = self.drop_evidence(&HashMap::from([(id, None)]));
        self.save_all(!cited.is_empty())?;
        Ok(cited)
    }

    /// Rewrite evidence lists: each id in `map` is replaced by its target or
    /// dropped. Returns the ids of the insights changed.
    fn drop_evidence(&mut self, map: &HashMap<String, Option<String>>) -> Vec<String> {
        let mut changed = Vec::new();
        for ins in &mut self.insights {
            let before = ins.evidence.clone();
            let mut ev: Vec<String> = Vec::new();
            for id in &ins.evidence {
                let target = match map.get(id) {
                    None => Some(id.clone()),
                    Some(t) => t.clone(),
                };
                if let Some(t) = target {
                    if !ev.contains(&t) {
                        ev.push(t);
                    }
                }
            }
            if ev != before {
                ins.evidence = ev;
                changed.push(ins.id.clone());
            }
        }
        changed
    }

    fn save_all(&self, insights_too: bool) -> Result<(), KbError> {
        let recs: Vec<&ArchRecord> = self.entries.iter().map(|e| &e.record).collect();
        store::rewrite_jsonl(&self.dir.join(ARCH_FILE), &recs)?;
        if insights_too {
            store::rewrite_jsonl(&self.dir.join(INSIGHT_FILE), &self.insights)?;
        }
        Ok(())
    }

    /// Remove records that repeat an earlier record's architecture (same
    /// canonical hash) under the same evaluator and settings; insights citing
    /// a removed record cite the kept one instead. Returns `(removed, kept)` id pairs.
    pub fn dedupe(&mut self) -> Result<Vec<(String, String)>, KbError> {
        self.writable()?;
        let mut first: HashMap<(String, String), String> = HashMap::new();
        let mut removed = Vec::new();
        for e in &self.entries {
            let key = (e.hash.clone(), e.record.evaluator_key());
            match first.get(&key) {
                Some(kept) => removed.push((e.record.id.clone(), kept.clone())),
                None => {
                    first.insert(key, e.record.id.clone());
                }
            }
        }
        if removed.is_empty() {
            return Ok(removed);
        }
        let gone: HashSet<&str> = removed.iter().map(|(r, _)| r.as_str()).collect();
        self.entries
            .retain(|e| !gone.contains(e.record.id.as_str()));
        let map: HashMap<String, Option<String>> = removed
            .iter()
            .map(|(r, k)| (r.clone(), Some(k.clone())))
            .collect();
        let changed = self.drop_evidence(&map);
        self.save_all(!changed.is_empty())?;
        Ok(removed)
    }

    /// Everything, as one JSON document (the `kb export` format).
    pub fn export(&self) -> serde_json::Value {
        serde_json::json!({
            "format": "seki-kb/1",
            "architectures": self.entries.iter().map(|e| &e.record).collect::<Vec<_>>(),
            "insights": self.insights,
        })
    }

    /// Add what an export holds that this base lacks (by id). Returns how many
    /// records and insights were added and how many were already present.
    pub fn import(&mut self, doc: &serde_json::Value) -> Result<ImportCounts, KbError> {
        self.writable()?;
        let (archs, insights) = parse_export(doc)?;
        let mut counts = ImportCounts::default();
        let have: HashSet<String> = self.entries.iter().map(|e| e.record.id.clone()).collect();
        let mut new_archs = Vec::new();
        for r in archs {
            if have.contains(&r.id) || new_archs.iter().any(|x: &ArchRecord| x.id == r.id) {
                counts.present += 1;
            } else {
                new_archs.push(r);
            }
        }
        counts.architectures = new_archs.len();
        self.add(new_archs)?;
        let have_ins: HashSet<String> = self.insights.iter().map(|i| i.id.clone()).collect();
        let new_ins: Vec<Insight> = insights
            .into_iter()
            .filter(|i| !have_ins.contains(&i.id))
            .collect();
        counts.insights = new_ins.len();
        self.add_insights(new_ins)?;
        Ok(counts)
    }

    /// Per-space counts, for summaries.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for e in &self.entries {
            *m.entry(e.record.space.to_string()).or_insert(0) += 1;
        }
        m
    }
}

/// One evaluation protocol of a knowledge base's records.
#[derive(Debug, Clone, PartialEq)]
pub struct Protocol {
    /// Its key ([`EvaluatorInfo::protocol`]).
    pub key: String,
    /// In words ([`EvaluatorInfo::protocol_label`]).
    pub label: String,
    /// Records under it.
    pub records: usize,
}

/// An insight's evidence under one protocol.
#[derive(Debug, Clone, PartialEq)]
pub struct EvidenceStats {
    /// The protocol's key.
    pub protocol: String,
    /// The protocol in words.
    pub label: String,
    /// Records cited.
    pub records: usize,
    /// Of those, records with a score.
    pub scored: usize,
    /// Their mean score.
    pub mean_score: Option<f64>,
}

/// What an import added.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ImportCounts {
    /// Architecture records added.
    pub architectures: usize,
    /// Insights added.
    pub insights: usize,
    /// Records skipped because their id was already present.
    pub present: usize,
}

/// Read a `seki-kb/1` export document.
pub fn parse_export(doc: &serde_json::Value) -> Result<(Vec<ArchRecord>, Vec<Insight>), KbError> {
    let obj = doc.as_object().ok_or_else(|| {
        KbError::Invalid("an export is a JSON object with \"format\": \"seki-kb/1\"".into())
    })?;
    match obj.get("format").and_then(|f| f.as_str()) {
        Some("seki-kb/1") => {}
        other => {
            return Err(KbError::Invalid(format!(
                "unsupported export format {:?}; expected \"seki-kb/1\"",
                other.unwrap_or("(missing)")
            )))
        }
    }
    let archs = match obj.get("architectures") {
        None => Vec::new(),
        Some(v) => v
            .as_array()
            .ok_or_else(|| KbError::Invalid("field architectures must be a list".into()))?
            .iter()
            .enumerate()
            .map(|(i, r)| {
                serde_json::from_value::<ArchRecord>(r.clone())
                    .map_err(|e| KbError::Invalid(format!("architectures[{i}]: {e}")))
            })
            .collect::<Result<_, _>>()?,
    };
    let insights = match obj.get("insights") {
        None => Vec::new(),
        Some(v) => v
            .as_array()
            .ok_or_else(|| KbError::Invalid("field insights must be a list".into()))?
            .iter()
            .enumerate()
            .map(|(i, r)| {
                serde_json::from_value::<Insight>(r.clone())
                    .map_err(|e| KbError::Invalid(format!("insights[{i}]: {e}")))
            })
            .collect::<Result<_, _>>()?,
    };
    Ok((archs, insights))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, arch: &str, score: f64, params: f64) -> ArchRecord {
        ArchRecord {
            id: id.into(),
            name: None,
            space: Space::Nb201,
            arch: arch.into(),
            score: Some(score),
            uncertainty: None,
            metrics: BTreeMap::from([("params".to_string(), params)]),
            evaluator: EvaluatorInfo {
                kind: "nb201-table".into(),
                dataset: Some("cifar10".into()),
                settings: Default::default(),
            },
            provenance: Provenance {
                source: "user".into(),
                ..Default::default()
            },
            created: now_rfc3339(),
        }
    }

    const A: &str = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|";
    const B: &str = "|nor_conv_1x1~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|";
    // Same function as A written with a swapped... no: same text, different id.
    fn wopts() -> OpenOptions {
        OpenOptions {
            write: true,
            create: true,
            ..Default::default()
        }
    }

    #[test]
    fn add_query_remove_dedupe_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let mut kb = KnowledgeBase::open(dir.path(), wopts()).unwrap();
        kb.add(vec![
            rec("a", A, 90.0, 1.0e6),
            rec("b", B, 91.0, 2.0e6),
            rec("c", A, 89.0, 1.0e6),
        ])
        .unwrap();
        assert!(matches!(
            kb.add(vec![rec("a", A, 1.0, 1.0)]),
            Err(KbError::DuplicateId(_))
        ));
        let proto = kb.protocols(None)[0].key.clone();
        let top: Vec<&str> = kb
            .top_k(Some(Space::Nb201), &proto, "score", 2)
            .iter()
            .map(|e| e.record.id.as_str())
            .collect();
        assert_eq!(top, vec!["b", "a"]);
        let front: Vec<&str> = kb
            .pareto(None, &proto, "score")
            .iter()
            .map(|e| e.record.id.as_str())
            .collect();
        assert_eq!(front, vec!["a", "b"]);
        let h = kb.get("a").unwrap().hash.clone();
        assert_eq!(kb.by_hash(&h).len(), 2);
        assert!(kb
            .find(&h[..8])
            .unwrap_err()
            .to_string()
            .contains("several"));
        kb.add_insights(vec![Insight {
            id: "i1".into(),
            space: Space::Nb201,
            text: "conv3x3 on the first edge helps".into(),
            evidence: vec!["a".into(), "c".into()],
            status: InsightStatus::Active,
            contradicted_by: vec![],
            claim: None,
            stats: None,
            provenance: Provenance {
                source: "user".into(),
                ..Default::default()
            },
            created: now_rfc3339(),
        }])
        .unwrap();
        let removed = kb.dedupe().unwrap();
        assert_eq!(removed, vec![("c".to_string(), "a".to_string())]);
        assert_eq!(kb.insights()[0].evidence, vec!["a".to_string()]);
        let cited = kb.remove("b").unwrap();
        assert!(cited.is_empty());
        drop(kb);
        let kb = KnowledgeBase::open(dir.path(), OpenOptions::default()).unwrap();
        assert_eq!(kb.entries().len(), 1);
        assert_eq!(kb.insights().len(), 1);
        assert_eq!(kb.insights()[0].evidence, vec!["a".to_string()]);
    }

    #[test]
    fn rankings_fronts_and_evidence_stay_within_a_protocol() {
        let dir = tempfile::tempdir().unwrap();
        let mut kb = KnowledgeBase::open(dir.path(), wopts()).unwrap();
        let mut published = rec("p", A, 97.0, 3.0e6);
        published.evaluator = EvaluatorInfo {
            kind: "published".into(),
            dataset: Some("cifar10".into()),
            settings: Default::default(),
        };
        let mut proxy = rec("s1", B, 78.0, 1.0e5);
        proxy.evaluator.kind = "candle".into();
        proxy.evaluator.dataset = Some("fashion-mnist".into());
        let mut proxy2 = proxy.clone();
        proxy2.id = "s2".into();
        proxy2.arch = A.into();
        proxy2.score = Some(79.0);
        proxy2.metrics.insert("params".into(), 2.0e5);
        kb.add(vec![published, proxy, proxy2]).unwrap();
        let ps = kb.protocols(None);
        assert_eq!(ps.len(), 2, "{ps:?}");
        assert_eq!((ps[0].records, ps[1].records), (1, 2));
        let ids =
            |v: Vec<&Entry>| -> Vec<String> { v.iter().map(|e| e.record.id.clone()).collect() };
        assert_eq!(ids(kb.top_k(None, &ps[1].key, "score", 10)), ["s2", "s1"]);
        assert_eq!(ids(kb.top_k(None, &ps[0].key, "score", 10)), ["p"]);
        assert_eq!(ids(kb.pareto(None, &ps[1].key, "score")), ["s1", "s2"]);
        let ins = Insight {
            id: "i".into(),
            space: Space::Nb201,
            text: "t".into(),
            evidence: vec!["p".into(), "s1".into(), "s2".into()],
            status: InsightStatus::Active,
            contradicted_by: vec![],
            claim: None,
            stats: None,
            provenance: Provenance::default(),
            created: now_rfc3339(),
        };
        let st = kb.evidence_stats(&ins);
        assert_eq!(st.len(), 2);
        assert_eq!(st[0].mean_score, Some(97.0));
        assert_eq!((st[1].records, st[1].mean_score), (2, Some(78.5)));
        // A record replaced in place (its score now a mean over seeds).
        let mut again = kb.get("s1").unwrap().record.clone();
        again.score = Some(77.5);
        again.uncertainty = Some(crate::stats::Uncertainty::single(1.3));
        kb.upsert(vec![again]).unwrap();
        drop(kb);
        let kb = KnowledgeBase::open(dir.path(), OpenOptions::default()).unwrap();
        assert_eq!(kb.entries().len(), 3);
        assert_eq!(kb.get("s1").unwrap().record.score, Some(77.5));
        assert_eq!(kb.get("s1").unwrap().record.score_se(), Some(1.3));
    }

    #[test]
    fn export_import_between_bases() {
        let d1 = tempfile::tempdir().unwrap();
        let d2 = tempfile::tempdir().unwrap();
        let mut kb1 = KnowledgeBase::open(d1.path(), wopts()).unwrap();
        kb1.add(vec![rec("a", A, 90.0, 1.0e6)]).unwrap();
        let doc = kb1.export();
        let mut kb2 = KnowledgeBase::open(d2.path(), wopts()).unwrap();
        assert_eq!(kb2.import(&doc).unwrap().architectures, 1);
        assert_eq!(
            kb2.import(&doc).unwrap(),
            ImportCounts {
                architectures: 0,
                insights: 0,
                present: 1
            }
        );
    }

    #[test]
    fn invalid_arch_in_file_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let good = serde_json::to_string(&rec("a", A, 90.0, 1.0)).unwrap();
        let bad = good
            .replace("\"id\":\"a\"", "\"id\":\"b\"")
            .replace("nor_conv_1x1", "x")
            .replace("nor_conv_3x3~0|+", "conv9~0|+");
        std::fs::write(dir.path().join(ARCH_FILE), format!("{good}\n{bad}\n")).unwrap();
        let e = KnowledgeBase::open(dir.path(), OpenOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("architectures.jsonl:2") && e.contains("conv9"),
            "{e}"
        );
        let kb = KnowledgeBase::open(
            dir.path(),
            OpenOptions {
                skip_bad_lines: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(kb.entries().len(), 1);
        assert_eq!(kb.skipped().len(), 1);
    }

    #[test]
    fn read_only_base_refuses_writes() {
        let dir = tempfile::tempdir().unwrap();
        let mut kb = KnowledgeBase::open(dir.path(), OpenOptions::default()).unwrap();
        assert!(matches!(kb.add(vec![]), Err(KbError::ReadOnly)));
    }
}
