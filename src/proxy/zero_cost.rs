//! `seki proxy zc`: how well the zero-cost proxies rank architectures.
//!
//! A sample of NAS-Bench-201 cells (all 15,625, or `--sample N` of them) is
//! scored by every proxy ([`crate::eval::zero_cost`]) on the benchmark's
//! network, and each proxy's ranking is compared with the table's
//! accuracies (Spearman ρ, Kendall τ). For the DARTS space the sample is
//! `seki proxy check`'s, compared with its trained scores. The scores go to
//! a CSV (one row per cell, appended and synced as each is scored, so a
//! stopped run continues where it was) that `seki bench nb201 --proxies`
//! joins to the table.
//!
//! An architecture a proxy cannot score ranks below every scored one (it
//! gets the lowest rank, tied with the others unscored), never a NaN.

use crate::eval::candle::CandleError;
use crate::eval::nb201_table::TableError;
use crate::eval::zero_cost::worker::{run_children, Outcome};
use crate::eval::zero_cost::{Proxy, ZcConfig};
use crate::eval::Nb201Table;
use crate::rng::Rng;
use crate::space::{Arch, Space};
use crate::stats;
use crate::store::{self, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A zero-cost check failure.
#[derive(Debug, thiserror::Error)]
pub enum ZcCheckError {
    /// The workers could not run.
    #[error(transparent)]
    Candle(#[from] CandleError),
    /// The CSV could not be written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The CSV could not be read.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// A line of the CSV is malformed or does not match the table.
    #[error("{path}:{line}: {message}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong, with the offending text.
        message: String,
    },
    /// The running executable (the workers' program) cannot be found.
    #[error("cannot locate the seki executable")]
    Program(#[source] std::io::Error),
    /// The NAS-Bench-201 table could not be read.
    #[error(transparent)]
    Table(#[from] TableError),
    /// The `seki proxy check` result compared with cannot be read.
    #[error("cannot read {path} (run `seki proxy check` first, or name its folder with --check)")]
    CheckRead {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The file compared with is not a `seki proxy check` result.
    #[error("{path}: not a proxy check result")]
    CheckParse {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: serde_json::Error,
    },
    /// An architecture of the `seki proxy check` result does not parse.
    #[error("{path}: pair {pair} ({label})")]
    CheckArch {
        /// The file.
        path: PathBuf,
        /// 1-based position of the pair.
        pair: usize,
        /// The pair's label.
        label: String,
        /// The error.
        #[source]
        source: crate::space::ArchError,
    },
}

/// What `seki proxy zc` scores, beside the config's space and table.
#[derive(Debug, Clone)]
pub struct ZcPlan {
    /// NAS-Bench-201: cells of the table to score (0: all).
    pub sample: usize,
    /// NAS-Bench-201: seed of the sample.
    pub seed: u64,
    /// DARTS: the `seki proxy check` output folder whose sample and trained
    /// scores the proxies are compared with.
    pub check: PathBuf,
    /// The scores CSV, reused and extended.
    pub out: Option<PathBuf>,
}

/// The scored sample of [`score_space`] and what it is compared with.
#[derive(Debug, Clone)]
pub struct Scored {
    /// One row per architecture.
    pub rows: Vec<Row>,
    /// The comparison targets, named, one value per row.
    pub targets: Vec<(String, Vec<Option<f64>>)>,
    /// The network scored, in words.
    pub network: String,
    /// The proxy settings the rows were scored under.
    pub zc: ZcConfig,
}

/// `seki proxy zc`'s scoring under `cfg`'s space: the NAS-Bench-201 table's
/// sample on the benchmark's network, compared with the table's
/// accuracies, or `seki proxy check`'s DARTS sample, compared with its
/// trained scores; the workers run the current executable. `progress` as
/// [`score_all`]'s.
pub fn score_space(
    cfg: &crate::config::Config,
    zc: ZcConfig,
    plan: &ZcPlan,
    progress: &mut dyn FnMut(usize, usize, &Row),
) -> Result<Scored, ZcCheckError> {
    let program = std::env::current_exe().map_err(ZcCheckError::Program)?;
    match cfg.search.space {
        Space::Nb201 => {
            let table = Nb201Table::load(&cfg.evaluator.nb201.table)?;
            let zc = zc.nb201_benchmark();
            let cells = table_sample(&table, plan.sample, plan.seed);
            let rows = score_all(&program, &cells, &zc, plan.out.as_deref(), progress)?;
            let targets = table_targets(&table, &rows);
            Ok(Scored {
                rows,
                targets,
                network:
                    "NAS-Bench-201 network: 5 cells per stage, 16 channels, 3x32x32 input, 10 classes"
                        .to_string(),
                zc,
            })
        }
        Space::Darts => {
            let file = plan.check.join("proxy-check.json");
            let text =
                std::fs::read_to_string(&file).map_err(|source| ZcCheckError::CheckRead {
                    path: file.clone(),
                    source,
                })?;
            let check: CheckFile =
                serde_json::from_str(&text).map_err(|source| ZcCheckError::CheckParse {
                    path: file.clone(),
                    source,
                })?;
            let mut cells = Vec::new();
            for (i, p) in check.pairs.iter().enumerate() {
                let arch =
                    Space::Darts
                        .parse(&p.arch)
                        .map_err(|source| ZcCheckError::CheckArch {
                            path: file.clone(),
                            pair: i + 1,
                            label: p.label.clone(),
                            source,
                        })?;
                cells.push((i, arch));
            }
            let rows = score_all(&program, &cells, &zc, plan.out.as_deref(), progress)?;
            let targets = vec![
                (
                    format!("trained: {}", check.low),
                    rows.iter()
                        .map(|r| check.pairs.get(r.index).and_then(|p| p.low))
                        .collect(),
                ),
                (
                    format!("trained: {}", check.high),
                    rows.iter()
                        .map(|r| check.pairs.get(r.index).and_then(|p| p.high))
                        .collect(),
                ),
            ];
            let c = &zc.candle;
            let network = format!(
                "DARTS network: {} cells, {} channels, {}",
                c.cells,
                c.channels,
                c.dataset.name()
            );
            Ok(Scored {
                rows,
                targets,
                network,
                zc,
            })
        }
    }
}

/// The part of `proxy-check.json` the DARTS comparison reads.
#[derive(Debug, Deserialize)]
struct CheckFile {
    low: String,
    high: String,
    pairs: Vec<super::fidelity::Pair>,
}

/// The CSV's columns, in order.
pub fn header() -> String {
    let mut cols = vec!["index".to_string(), "arch".to_string()];
    cols.extend(Proxy::ALL.iter().map(|p| p.name().to_string()));
    cols.push("seconds".into());
    cols.push("note".into());
    cols.join(",")
}

/// One scored architecture, as a CSV row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The table's index (NAS-Bench-201), or the position in the sample.
    pub index: usize,
    /// The architecture's text form.
    pub arch: String,
    /// Each proxy's value (`None`: could not be scored; see `note`).
    pub values: BTreeMap<Proxy, Option<f64>>,
    /// CPU seconds of the whole scoring.
    pub seconds: f64,
    /// Seconds per proxy computed alone (only for rows scored in this run).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub proxy_seconds: BTreeMap<Proxy, f64>,
    /// Why a proxy has no value.
    pub note: String,
}

impl Row {
    fn from_outcome(index: usize, arch: &Arch, o: &Outcome) -> Row {
        let mut values = BTreeMap::new();
        let mut proxy_seconds = BTreeMap::new();
        let (seconds, note) = match o {
            Outcome::Ok { scores } => {
                for p in Proxy::ALL {
                    values.insert(p, scores.get(p));
                    proxy_seconds.insert(p, scores.seconds_of(p));
                }
                (scores.total_seconds(), scores.notes.join("; "))
            }
            Outcome::Failed { reason } => {
                for p in Proxy::ALL {
                    values.insert(p, None);
                }
                (0.0, format!("failed: {reason}"))
            }
        };
        Row {
            index,
            arch: arch.to_text(),
            values,
            seconds,
            proxy_seconds,
            note,
        }
    }

    /// The row as a CSV line (no newline). The note loses commas, quotes
    /// and line breaks; an architecture with a comma is quoted.
    pub fn to_csv(&self) -> String {
        let arch = if self.arch.contains([',', '"', '\n']) {
            format!("\"{}\"", self.arch.replace('"', "\"\"").replace('\n', " "))
        } else {
            self.arch.clone()
        };
        let mut cols = vec![self.index.to_string(), arch];
        for p in Proxy::ALL {
            cols.push(
                self.values
                    .get(&p)
                    .copied()
                    .flatten()
                    .map_or(String::new(), |v| format!("{v:e}")),
            );
        }
        cols.push(format!("{:.4}", self.seconds));
        cols.push(self.note.replace([',', '"', '\n', '\r'], " "));
        cols.join(",")
    }
}

/// Split one CSV line (double-quoted fields with `""` escapes).
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') if cur.is_empty() => quoted = true,
            (false, ',') => out.push(std::mem::take(&mut cur)),
            (_, c) => cur.push(c),
        }
    }
    if quoted {
        return Err("an unclosed quote".into());
    }
    out.push(cur);
    Ok(out)
}

/// Read a CSV written by [`score_all`] (this command's own file, to resume).
pub fn read_csv(path: &Path) -> Result<Vec<Row>, ZcCheckError> {
    let text = std::fs::read_to_string(path).map_err(|e| ZcCheckError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let bad = |line: usize, message: String| ZcCheckError::Csv {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, h)) if h.trim_end() == header() => {}
        Some((_, h)) => {
            return Err(bad(
                1,
                format!("the header is '{h}', expected '{}'", header()),
            ))
        }
        None => return Ok(Vec::new()),
    }
    let mut rows = Vec::new();
    for (i, line) in lines {
        let ln = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        // A torn last line (a kill mid-write) is dropped, not an error.
        let torn = i + 1 == text.lines().count() && !text.ends_with('\n');
        let want = Proxy::ALL.len() + 4;
        let cols = match split_csv(line) {
            Ok(c) if c.len() == want => c,
            _ if torn => break,
            Ok(c) => return Err(bad(ln, format!("{} columns, expected {want}", c.len()))),
            Err(m) => return Err(bad(ln, m)),
        };
        let num = |k: usize, what: &str| -> Result<Option<f64>, ZcCheckError> {
            let s = cols[k].trim();
            if s.is_empty() {
                return Ok(None);
            }
            s.parse::<f64>().map(Some).map_err(|_| {
                bad(
                    ln,
                    format!("column {} ({what}): '{s}' is not a number", k + 1),
                )
            })
        };
        let index = cols[0].trim().parse::<usize>().map_err(|_| {
            bad(
                ln,
                format!("column 1 (index): '{}' is not an index", cols[0]),
            )
        })?;
        let mut values = BTreeMap::new();
        for (k, p) in Proxy::ALL.iter().enumerate() {
            values.insert(*p, num(k + 2, p.name())?);
        }
        rows.push(Row {
            index,
            arch: cols[1].clone(),
            values,
            seconds: num(Proxy::ALL.len() + 2, "seconds")?.unwrap_or(0.0),
            proxy_seconds: BTreeMap::new(),
            note: cols[Proxy::ALL.len() + 3].clone(),
        });
    }
    Ok(rows)
}

/// The NAS-Bench-201 cells to score, as `(table index, cell)`: all of them
/// (`sample` 0 or at least the table's size) or `sample` drawn without
/// replacement from `seed`, in table order.
pub fn table_sample(table: &Nb201Table, sample: usize, seed: u64) -> Vec<(usize, Arch)> {
    let rows = table.rows();
    let codes: Vec<usize> = if sample == 0 || sample >= rows.len() {
        (0..rows.len()).collect()
    } else {
        Rng::seed(seed ^ 0x2C5A).sample_indices(rows.len(), sample)
    };
    let mut out: Vec<(usize, Arch)> = codes
        .into_iter()
        .filter_map(|code| {
            let cell = crate::space::nb201::Nb201Cell::from_code(code)?;
            Some((rows.get(code)?.index, Arch::Nb201(cell)))
        })
        .collect();
    out.sort_by_key(|(i, _)| *i);
    out
}

/// The settings a scores file was made with sit beside it
/// (`FILE.settings.json`): a rerun that would add rows made otherwise
/// (other proxies, batch, input, dataset, network or seed) is refused, the
/// first differing setting named, so one file never mixes two protocols.
fn check_settings(path: &Path, cfg: &ZcConfig) -> Result<(), ZcCheckError> {
    let side = path.with_extension("settings.json");
    let mut mine = serde_json::to_value(cfg).map_err(|e| ZcCheckError::Io {
        path: side.clone(),
        message: e.to_string(),
    })?;
    // What does not change a score: the time limit and the threads.
    if let Some(c) = mine.get_mut("candle").and_then(|c| c.as_object_mut()) {
        c.remove("timeout_seconds");
        c.remove("threads");
    }
    if let Ok(text) = std::fs::read_to_string(&side) {
        let theirs: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| ZcCheckError::Io {
                path: side.clone(),
                message: format!("not a settings file: {e}"),
            })?;
        if let Some(key) = first_difference(&theirs, &mine, "") {
            return Err(ZcCheckError::Io {
                path: path.to_path_buf(),
                message: format!(
                    "was made with other settings ({key} differs; see {}); name another --out file",
                    side.display()
                ),
            });
        }
        return Ok(());
    }
    let mut text = serde_json::to_string_pretty(&mine).map_err(|e| ZcCheckError::Io {
        path: side.clone(),
        message: e.to_string(),
    })?;
    text.push('\n');
    store::write_atomic(&side, text.as_bytes())?;
    Ok(())
}

/// The dotted key of the first difference between two JSON values.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, at: &str) -> Option<String> {
    match (a, b) {
        (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let key = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => first_difference(p, q, &key),
                    _ => Some(key),
                }
            })
        }
        _ if a == b => None,
        _ => Some(if at.is_empty() {
            "(all)".into()
        } else {
            at.into()
        }),
    }
}

/// Score `cells` (`(index, arch)`) in worker processes of `program`, in
/// chunks; rows already in `out` (same index and architecture) are reused,
/// new ones appended to it (synced) as each is scored. `progress(done,
/// total, row)` after each new row.
pub fn score_all(
    program: &Path,
    cells: &[(usize, Arch)],
    cfg: &ZcConfig,
    out: Option<&Path>,
    progress: &mut dyn FnMut(usize, usize, &Row),
) -> Result<Vec<Row>, ZcCheckError> {
    let mut have: BTreeMap<usize, Row> = BTreeMap::new();
    if let Some(path) = out {
        check_settings(path, cfg)?;
        let empty = std::fs::metadata(path).map_or(true, |m| m.len() == 0);
        if empty {
            store::append_bytes(path, format!("{}\n", header()).as_bytes())?;
        } else {
            for r in read_csv(path)? {
                have.insert(r.index, r);
            }
        }
    }
    // Rows of another architecture, and failed ones, are scored (again).
    let todo: Vec<(usize, Arch)> = cells
        .iter()
        .filter(|(i, a)| {
            have.get(i)
                .is_none_or(|r| r.arch != a.to_text() || r.note.starts_with("failed:"))
        })
        .cloned()
        .collect();
    let total = todo.len();
    let mut done = 0;
    let mut failure: Option<StoreError> = None;
    for chunk in todo.chunks(64) {
        let archs: Vec<Arch> = chunk.iter().map(|(_, a)| a.clone()).collect();
        run_children(program, &archs, cfg, &mut |k, outcome| {
            let (index, arch) = &chunk[k];
            let row = Row::from_outcome(*index, arch, &outcome);
            if let Some(path) = out {
                if let Err(e) = store::append_bytes(path, format!("{}\n", row.to_csv()).as_bytes())
                {
                    failure.get_or_insert(e);
                }
            }
            done += 1;
            progress(done, total, &row);
            have.insert(*index, row);
        })?;
        if let Some(e) = failure.take() {
            return Err(e.into());
        }
    }
    Ok(cells
        .iter()
        .filter_map(|(i, _)| have.get(i).cloned())
        .collect())
}

/// One proxy's agreement with one target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agreement {
    /// The target (`cifar10_test_200ep`, `trained (proxy setting)`, ...).
    pub target: String,
    /// Spearman's ρ.
    pub spearman_rho: Option<f64>,
    /// Kendall's τ-b.
    pub kendall_tau: Option<f64>,
}

/// One proxy's figures over the sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProxyFigures {
    /// The proxy.
    pub proxy: Proxy,
    /// Architectures compared.
    pub n: usize,
    /// Of them, those the proxy could not score (ranked lowest).
    pub unscored: usize,
    /// Against each target.
    pub agreement: Vec<Agreement>,
    /// Mean CPU seconds per architecture of this proxy computed on its own
    /// (over the rows scored in this run; `None` when all were reused).
    pub seconds_per_arch: Option<f64>,
}

/// The figures of every proxy against `targets` (`(name, value per row)`;
/// a row without a target value is left out of that comparison).
pub fn correlate(rows: &[Row], targets: &[(String, Vec<Option<f64>>)]) -> Vec<ProxyFigures> {
    Proxy::ALL
        .iter()
        .map(|&p| {
            let vals: Vec<Option<f64>> = rows
                .iter()
                .map(|r| r.values.get(&p).copied().flatten())
                .collect();
            let lowest = vals.iter().flatten().fold(f64::INFINITY, |m, &v| m.min(v));
            let floor = if lowest.is_finite() {
                lowest - 1.0 - lowest.abs()
            } else {
                0.0
            };
            let agreement = targets
                .iter()
                .map(|(name, t)| {
                    let (x, y): (Vec<f64>, Vec<f64>) = vals
                        .iter()
                        .zip(t)
                        .filter_map(|(v, t)| Some((v.unwrap_or(floor), (*t)?)))
                        .unzip();
                    Agreement {
                        target: name.clone(),
                        spearman_rho: stats::spearman_rho(&x, &y),
                        kendall_tau: stats::kendall_tau(&x, &y),
                    }
                })
                .collect();
            let secs: Vec<f64> = rows
                .iter()
                .filter_map(|r| r.proxy_seconds.get(&p).copied())
                .collect();
            ProxyFigures {
                proxy: p,
                n: rows.len(),
                unscored: vals.iter().filter(|v| v.is_none()).count(),
                agreement,
                seconds_per_arch: (!secs.is_empty())
                    .then(|| secs.iter().sum::<f64>() / secs.len() as f64),
            }
        })
        .collect()
}

/// The table's columns for `rows` as targets: `<dataset>_test_200ep` and
/// `<dataset>_valid_12ep`.
pub fn table_targets(table: &Nb201Table, rows: &[Row]) -> Vec<(String, Vec<Option<f64>>)> {
    let by_index: BTreeMap<usize, &crate::eval::nb201_table::Row> =
        table.rows().iter().map(|r| (r.index, r)).collect();
    let pick = |f: &dyn Fn(&crate::eval::nb201_table::Row) -> f64| -> Vec<Option<f64>> {
        rows.iter()
            .map(|r| by_index.get(&r.index).map(|row| f(row)))
            .collect()
    };
    vec![
        ("test_200ep".to_string(), pick(&|r| r.test_200ep)),
        ("valid_12ep".to_string(), pick(&|r| r.valid_12ep)),
    ]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn row(index: usize, syn: Option<f64>) -> Row {
        let mut values = BTreeMap::new();
        for p in Proxy::ALL {
            values.insert(p, None);
        }
        values.insert(Proxy::Synflow, syn);
        values.insert(Proxy::Params, Some(index as f64));
        Row {
            index,
            arch: format!("|a,{index}|"),
            values,
            seconds: 0.5,
            proxy_seconds: BTreeMap::new(),
            note: "x, \"y\"".into(),
        }
    }

    #[test]
    fn rows_round_trip_through_the_csv() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("zc.csv");
        let rows = [row(3, Some(1.5e40)), row(7, None)];
        let mut text = format!("{}\n", header());
        for r in &rows {
            text.push_str(&r.to_csv());
            text.push('\n');
        }
        // A torn last line is dropped.
        text.push_str("9,|x|,1e");
        std::fs::write(&p, &text).unwrap();
        let back = read_csv(&p).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].arch, "|a,3|");
        assert_eq!(back[0].values[&Proxy::Synflow], Some(1.5e40));
        assert_eq!(back[1].values[&Proxy::Synflow], None);
        assert_eq!(back[1].note, "x   y ");
    }

    #[test]
    fn a_torn_quoted_last_line_is_dropped_and_differences_are_named() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("zc.csv");
        let mut text = format!("{}\n", header());
        text.push_str(&row(1, Some(2.0)).to_csv());
        text.push_str("\n2,\"Genotype(normal=[('sep");
        std::fs::write(&p, &text).unwrap();
        assert_eq!(read_csv(&p).unwrap().len(), 1);
        let a = serde_json::json!({"batch": 64, "candle": {"seed": 0, "cells": 5}});
        let b = serde_json::json!({"batch": 64, "candle": {"seed": 1, "cells": 5}});
        assert_eq!(first_difference(&a, &b, ""), Some("candle.seed".into()));
        assert_eq!(first_difference(&a, &a, ""), None);
    }

    #[test]
    fn a_bad_value_is_named_with_its_line_and_column() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("zc.csv");
        let mut text = format!("{}\n", header());
        text.push_str(&row(1, Some(2.0)).to_csv().replacen("2e0", "two", 1));
        text.push('\n');
        text.push_str(&row(2, Some(2.0)).to_csv());
        text.push('\n');
        std::fs::write(&p, &text).unwrap();
        let e = read_csv(&p).unwrap_err().to_string();
        assert!(
            e.contains("zc.csv:2") && e.contains("synflow") && e.contains("'two'"),
            "{e}"
        );
    }

    #[test]
    fn unscored_architectures_rank_lowest_never_first() {
        // Synflow agrees with the target where it scores; the unscored
        // cell is the worst by the target, so ranking it lowest is exact.
        let rows: Vec<Row> = vec![
            row(0, None),
            row(1, Some(1.0)),
            row(2, Some(5.0)),
            row(3, Some(9.0)),
        ];
        let target = vec![Some(10.0), Some(20.0), Some(30.0), Some(40.0)];
        let f = correlate(&rows, &[("t".into(), target)]);
        let syn = f.iter().find(|f| f.proxy == Proxy::Synflow).unwrap();
        assert_eq!(syn.unscored, 1);
        assert!((syn.agreement[0].spearman_rho.unwrap() - 1.0).abs() < 1e-12);
    }
}
