//! The NAS-Bench-201 tabular evaluator: look up an architecture's recorded
//! accuracy instead of training it.
//!
//! The table is a CSV with columns `index`, `arch`, `cifar10_valid_12ep`,
//! `cifar10_test_12ep` (optional) and `cifar10_test_200ep`, one row per cell
//! of the space (all 15,625). The score is the 12-epoch validation accuracy;
//! the 200-epoch test accuracy is kept apart for reporting.

use super::{EvalError, EvalStatus, Evaluation, Evaluator};
use crate::knowledge::EvaluatorInfo;
use crate::space::nb201::{Nb201Cell, SIZE};
use crate::space::Arch;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A problem with the table file, naming the file, line and field.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The file could not be read.
    #[error("cannot read NAS-Bench-201 table {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A problem at one line.
    #[error("{path}:{line}: {message}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Architectures of the space are missing from the table.
    #[error("{path}: {count} of the 15625 architectures are missing, e.g. {example}")]
    Missing {
        /// The file.
        path: PathBuf,
        /// How many are missing.
        count: usize,
        /// One missing architecture.
        example: String,
    },
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    /// The benchmark's architecture index.
    pub index: usize,
    /// Validation accuracy (%) after 12 epochs: the search signal.
    pub valid_12ep: f64,
    /// Test accuracy (%) after 12 epochs, when the table has it.
    pub test_12ep: Option<f64>,
    /// Test accuracy (%) after 200 epochs: the figure to report.
    pub test_200ep: f64,
}

/// The loaded table, indexed by cell.
#[derive(Debug, Clone)]
pub struct Nb201Table {
    path: PathBuf,
    rows: Vec<Row>,
}

const REQUIRED: [&str; 4] = ["index", "arch", "cifar10_valid_12ep", "cifar10_test_200ep"];

impl Nb201Table {
    /// Load and check the table.
    pub fn load(path: &Path) -> Result<Self, TableError> {
        let text = std::fs::read_to_string(path).map_err(|source| TableError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parse table text (`path` only names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Self, TableError> {
        let err = |line: usize, message: String| TableError::Line {
            path: path.to_path_buf(),
            line,
            message,
        };
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
        let (_, header) = lines
            .next()
            .ok_or_else(|| err(1, "the file is empty; expected a header line".into()))?;
        let cols: Vec<String> = header
            .split(',')
            .map(|c| c.trim().trim_matches('"').to_string())
            .collect();
        let col = |name: &str| cols.iter().position(|c| c == name);
        let mut idx = [0usize; 4];
        for (k, name) in REQUIRED.iter().enumerate() {
            idx[k] = col(name).ok_or_else(|| {
                err(
                    1,
                    format!(
                        "missing column '{name}'; the header has: {}",
                        cols.join(", ")
                    ),
                )
            })?;
        }
        let test12 = col("cifar10_test_12ep");
        let mut rows: Vec<Option<(usize, Row)>> = vec![None; SIZE];
        for (line, l) in lines {
            if l.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = l.split(',').map(|f| f.trim().trim_matches('"')).collect();
            if fields.len() != cols.len() {
                return Err(err(
                    line,
                    format!(
                        "expected {} fields like the header, found {}",
                        cols.len(),
                        fields.len()
                    ),
                ));
            }
            let num = |k: usize, name: &str| -> Result<f64, TableError> {
                let f = fields[k];
                f.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| err(line, format!("column '{name}': '{f}' is not a number")))
            };
            let index_text = fields[idx[0]];
            let index: usize = index_text.parse().map_err(|_| {
                err(
                    line,
                    format!("column 'index': '{index_text}' is not a whole number"),
                )
            })?;
            let cell = Nb201Cell::parse(fields[idx[1]])
                .map_err(|e| err(line, format!("column 'arch': {e}")))?;
            let row = Row {
                index,
                valid_12ep: num(idx[2], "cifar10_valid_12ep")?,
                test_12ep: test12.map(|k| num(k, "cifar10_test_12ep")).transpose()?,
                test_200ep: num(idx[3], "cifar10_test_200ep")?,
            };
            let slot = &mut rows[cell.code()];
            if let Some((first, _)) = slot {
                return Err(err(
                    line,
                    format!(
                        "duplicate architecture {} (first at line {first})",
                        cell.to_text()
                    ),
                ));
            }
            *slot = Some((line, row));
        }
        let missing: Vec<usize> = (0..SIZE).filter(|&c| rows[c].is_none()).collect();
        if let Some(&first) = missing.first() {
            return Err(TableError::Missing {
                path: path.to_path_buf(),
                count: missing.len(),
                example: Nb201Cell::from_code(first)
                    .map(|c| c.to_text())
                    .unwrap_or_default(),
            });
        }
        Ok(Nb201Table {
            path: path.to_path_buf(),
            rows: rows.into_iter().flatten().map(|(_, r)| r).collect(),
        })
    }

    /// The row of a cell.
    pub fn row(&self, cell: &Nb201Cell) -> Option<&Row> {
        self.rows.get(cell.code())
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The best 200-epoch test accuracy in the table (the oracle).
    pub fn best_test(&self) -> f64 {
        self.rows
            .iter()
            .map(|r| r.test_200ep)
            .fold(f64::MIN, f64::max)
    }
}

impl Evaluator for Nb201Table {
    fn info(&self) -> EvaluatorInfo {
        let mut settings = serde_json::Map::new();
        settings.insert("score".into(), "cifar10_valid_12ep".into());
        settings.insert("test".into(), "cifar10_test_200ep".into());
        EvaluatorInfo {
            kind: "nb201-table".into(),
            dataset: Some("cifar10".into()),
            settings,
        }
    }

    fn evaluate(&mut self, arch: &Arch) -> Result<Evaluation, EvalError> {
        let Arch::Nb201(cell) = arch else {
            return Err(EvalError::WrongSpace {
                evaluator: "nb201",
                expected: "nb201",
                got: arch.space().name(),
            });
        };
        Ok(match self.row(cell) {
            Some(r) => {
                let mut metrics = BTreeMap::new();
                metrics.insert("benchmark_index".to_string(), r.index as f64);
                if let Some(t) = r.test_12ep {
                    metrics.insert("test_accuracy_12ep".to_string(), t);
                }
                Evaluation {
                    status: EvalStatus::Ok,
                    score: Some(r.valid_12ep),
                    test_accuracy: Some(r.test_200ep),
                    metrics,
                }
            }
            None => Evaluation::failed(EvalStatus::Failed(format!(
                "{} is not in the table",
                cell.to_text()
            ))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_table() -> String {
        let mut s =
            String::from("index,arch,cifar10_valid_12ep,cifar10_test_12ep,cifar10_test_200ep\n");
        for c in 0..SIZE {
            let cell = Nb201Cell::from_code(c).unwrap();
            s.push_str(&format!(
                "{c},{},{}.5,{}.0,{}.25\n",
                cell.to_text(),
                c % 90,
                c % 91,
                c % 92
            ));
        }
        s
    }

    #[test]
    fn loads_full_table_and_looks_up() {
        let t = Nb201Table::parse(Path::new("t.csv"), &full_table()).unwrap();
        let cell = Nb201Cell::from_code(1234).unwrap();
        let mut t2 = t.clone();
        let e = t2.evaluate(&Arch::Nb201(cell)).unwrap();
        assert_eq!(e.score, Some((1234 % 90) as f64 + 0.5));
        assert_eq!(e.test_accuracy, Some((1234 % 92) as f64 + 0.25));
    }

    #[test]
    fn bad_tables_say_what_and_where() {
        let good = full_table();
        let cases: Vec<(String, &str)> = vec![
            (
                good.replacen("cifar10_valid_12ep", "valid", 1),
                "missing column 'cifar10_valid_12ep'",
            ),
            (
                good.replacen(",0.5,", ",abc,", 1),
                "t.csv:2: column 'cifar10_valid_12ep': 'abc' is not a number",
            ),
            (
                good.lines().take(100).collect::<Vec<_>>().join("\n"),
                "15526 of the 15625 architectures are missing",
            ),
            (
                good.replacen("|none~0|", "|conv~0|", 1),
                "t.csv:2: column 'arch'",
            ),
            (
                format!("{good}{}", good.lines().nth(3).unwrap()),
                "t.csv:15627: duplicate architecture",
            ),
            (
                good.replacen(",0.5,0.0,", ",0.5,", 1),
                "t.csv:2: expected 5 fields",
            ),
            (String::new(), "empty"),
        ];
        for (text, want) in cases {
            let e = Nb201Table::parse(Path::new("t.csv"), &text)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "want {want:?} in {e}");
        }
    }
}
