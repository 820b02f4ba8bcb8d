//! The NAS-Bench-201 tabular evaluator: look up an architecture's recorded
//! accuracy instead of training it.
//!
//! The table is a CSV with columns `index`, `arch` and one dataset's triple
//! `<dataset>_valid_12ep`, `<dataset>_test_12ep` (optional) and
//! `<dataset>_test_200ep` (e.g. `cifar10_…`, `cifar100_…`,
//! `ImageNet16-120_…`), one row per cell of the space (all 15,625). The
//! dataset is read from the column names, so a table of another dataset
//! needs no code. The score is the 12-epoch validation accuracy; the
//! 200-epoch test accuracy is kept apart for reporting.
//!
//! The validation figures come from the benchmark's validation split
//! (`cifar10-valid`: 25,000 images; CIFAR-100: 5,000; ImageNet16-120:
//! 3,000), so each score's standard error is the binomial error of that many
//! images; [`Nb201Table::with_noise`] adds Gaussian noise on top (seeded per
//! architecture and repeat), to study decisions under noise.

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
    /// The dataset, as the column names spell it (`cifar10`, `cifar100`).
    dataset: String,
    rows: Vec<Row>,
    noise_sd: f64,
    noise_seed: u64,
}

/// Images in the benchmark's `cifar10-valid` validation split.
pub const VALID_IMAGES: usize = crate::knowledge::record::NB201_VALID_IMAGES;

/// Images in a dataset's validation split in the benchmark, when known.
pub fn valid_images(dataset: &str) -> Option<usize> {
    match dataset.to_ascii_lowercase().as_str() {
        "cifar10" => Some(VALID_IMAGES),
        "cifar100" => Some(5_000),
        "imagenet16-120" => Some(3_000),
        _ => None,
    }
}

/// A NAS-Bench-201 dataset as people write it (`cifar10` → CIFAR-10).
pub fn display_dataset(d: &str) -> String {
    match d.to_ascii_lowercase().as_str() {
        "cifar10" => "CIFAR-10".into(),
        "cifar100" => "CIFAR-100".into(),
        "imagenet16-120" => "ImageNet16-120".into(),
        _ => d.to_string(),
    }
}

/// The dataset of a table's header: the prefix of its one
/// `<dataset>_valid_12ep` column.
fn dataset_of_header(cols: &[String]) -> Result<String, String> {
    let found: Vec<&str> = cols
        .iter()
        .filter_map(|c| c.strip_suffix("_valid_12ep"))
        .filter(|d| !d.is_empty())
        .collect();
    match found.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(format!(
            "missing column '<dataset>_valid_12ep' (e.g. 'cifar10_valid_12ep'); the header has: {}",
            cols.join(", ")
        )),
        many => Err(format!(
            "columns of several datasets ({}); a table holds one dataset's '<dataset>_valid_12ep', '<dataset>_test_200ep'",
            many.join(", ")
        )),
    }
}

/// The dataset a table file holds, from its header line alone.
pub fn dataset_of(path: &Path) -> Result<String, TableError> {
    use std::io::BufRead;
    let io = |source| TableError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut header = String::new();
    std::io::BufReader::new(std::fs::File::open(path).map_err(io)?)
        .read_line(&mut header)
        .map_err(io)?;
    let cols: Vec<String> = header
        .trim_end()
        .split(',')
        .map(|c| c.trim().trim_matches('"').to_string())
        .collect();
    dataset_of_header(&cols).map_err(|message| TableError::Line {
        path: path.to_path_buf(),
        line: 1,
        message,
    })
}

/// A standard normal draw determined by `(seed, code, repeat)` alone.
fn gaussian(seed: u64, code: usize, repeat: u32) -> f64 {
    let mut rng = crate::rng::Rng::seed(
        seed ^ (code as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ u64::from(repeat).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
            ^ 0x4E01_5E00,
    );
    // Box-Muller; 1 - unit() is in (0, 1].
    let u1 = 1.0 - rng.unit();
    let u2 = rng.unit();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

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
        let dataset = dataset_of_header(&cols).map_err(|m| err(1, m))?;
        let (valid_col, test12_col, test_col) = (
            format!("{dataset}_valid_12ep"),
            format!("{dataset}_test_12ep"),
            format!("{dataset}_test_200ep"),
        );
        let required = ["index", "arch", valid_col.as_str(), test_col.as_str()];
        let mut idx = [0usize; 4];
        for (k, name) in required.iter().enumerate() {
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
        let test12 = col(&test12_col);
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
                valid_12ep: num(idx[2], &valid_col)?,
                test_12ep: test12.map(|k| num(k, &test12_col)).transpose()?,
                test_200ep: num(idx[3], &test_col)?,
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
            dataset,
            rows: rows.into_iter().flatten().map(|(_, r)| r).collect(),
            noise_sd: 0.0,
            noise_seed: 0,
        })
    }

    /// The same table with Gaussian noise of standard deviation `sd`
    /// points added to every validation accuracy it returns; each
    /// (architecture, repeat) gets its own draw from `seed`, the same on
    /// every lookup. `sd = 0`: none.
    pub fn with_noise(mut self, sd: f64, seed: u64) -> Self {
        self.noise_sd = if sd.is_finite() { sd.max(0.0) } else { 0.0 };
        self.noise_seed = seed;
        self
    }

    /// The noise's standard deviation (points).
    pub fn noise_sd(&self) -> f64 {
        self.noise_sd
    }

    /// Every row, in the order of the space's cell codes.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The search score of a cell at a repeat: its validation accuracy plus
    /// that repeat's noise draw.
    pub fn noisy_score(&self, cell: &Nb201Cell, repeat: u32) -> Option<f64> {
        let r = self.row(cell)?;
        Some(if self.noise_sd > 0.0 {
            r.valid_12ep + self.noise_sd * gaussian(self.noise_seed, cell.code(), repeat)
        } else {
            r.valid_12ep
        })
    }

    /// The standard error of a score: the validation split's binomial error
    /// and the added noise.
    pub fn score_se(&self, score: f64) -> Option<f64> {
        let b = crate::stats::binomial_se(score, valid_images(&self.dataset)?)?;
        Some((b * b + self.noise_sd * self.noise_sd).sqrt())
    }

    fn lookup(&self, arch: &Arch, repeat: u32) -> Result<Evaluation, EvalError> {
        let Arch::Nb201(cell) = arch else {
            return Err(EvalError::WrongSpace {
                evaluator: "nb201",
                expected: "nb201",
                got: arch.space().name(),
            });
        };
        Ok(match (self.row(cell), self.noisy_score(cell, repeat)) {
            (Some(r), Some(score)) => {
                let mut metrics = BTreeMap::new();
                metrics.insert("benchmark_index".to_string(), r.index as f64);
                if let Some(t) = r.test_12ep {
                    metrics.insert("test_accuracy_12ep".to_string(), t);
                }
                if self.noise_sd > 0.0 {
                    // The noiseless figure, for reports only.
                    metrics.insert("valid_12ep".to_string(), r.valid_12ep);
                }
                Evaluation {
                    status: EvalStatus::Ok,
                    score: Some(score),
                    test_accuracy: Some(r.test_200ep),
                    score_se: self.score_se(score),
                    metrics,
                }
            }
            _ => Evaluation::failed(EvalStatus::Failed(format!(
                "{} is not in the table",
                cell.to_text()
            ))),
        })
    }

    /// The row of a cell.
    pub fn row(&self, cell: &Nb201Cell) -> Option<&Row> {
        self.rows.get(cell.code())
    }

    /// The dataset, as its columns name it (`cifar10`, `cifar100`, ...).
    pub fn dataset(&self) -> &str {
        &self.dataset
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
    fn at_rung(
        &self,
        settings: &super::EvaluatorConfig,
    ) -> Result<Option<Box<dyn Evaluator>>, EvalError> {
        Ok(Some(Box::new(self.clone().with_noise(
            settings.nb201.noise_sd,
            settings.nb201.noise_seed,
        ))))
    }
    fn info(&self) -> EvaluatorInfo {
        let mut settings = serde_json::Map::new();
        let ds = &self.dataset;
        settings.insert("score".into(), format!("{ds}_valid_12ep").into());
        settings.insert("test".into(), format!("{ds}_test_200ep").into());
        // CIFAR-10's protocol predates this setting and keeps its form (the
        // implied 25,000 images); the other datasets state their split.
        if ds != "cifar10" {
            if let Some(n) = valid_images(ds) {
                settings.insert("valid_size".into(), n.into());
            }
        }
        if self.noise_sd > 0.0 {
            settings.insert("noise_sd".into(), self.noise_sd.into());
            settings.insert("noise_seed".into(), self.noise_seed.into());
        }
        EvaluatorInfo {
            kind: "nb201-table".into(),
            dataset: Some(self.dataset.clone()),
            settings,
        }
    }

    fn evaluate(&mut self, arch: &Arch) -> Result<Evaluation, EvalError> {
        self.lookup(arch, 0)
    }

    fn repeatable(&self) -> bool {
        self.noise_sd > 0.0
    }

    /// Another noise draw; `None` without noise (the table is deterministic).
    fn evaluate_repeat(
        &mut self,
        arch: &Arch,
        repeat: u32,
    ) -> Result<Option<Evaluation>, EvalError> {
        if self.noise_sd > 0.0 {
            self.lookup(arch, repeat).map(Some)
        } else {
            Ok(None)
        }
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
        let se = e.score_se.unwrap();
        assert!(se > 0.0 && se < 0.4, "{se}");
        assert_eq!(t2.evaluate_repeat(&Arch::Nb201(cell), 1).unwrap(), None);
    }

    #[test]
    fn the_dataset_comes_from_the_columns_and_is_part_of_the_protocol() {
        let c10 = Nb201Table::parse(Path::new("t.csv"), &full_table()).unwrap();
        let text = full_table().replacen("cifar10_", "cifar100_", 3);
        let mut c100 = Nb201Table::parse(Path::new("t.csv"), &text).unwrap();
        assert_eq!((c10.dataset(), c100.dataset()), ("cifar10", "cifar100"));
        let (i10, i100) = (c10.info(), c100.info());
        assert_eq!(i100.dataset.as_deref(), Some("cifar100"));
        assert_eq!(i100.settings["score"], "cifar100_valid_12ep");
        assert_ne!(i10.protocol(), i100.protocol());
        // CIFAR-10's protocol keeps the form its knowledge-base records have.
        assert!(!i10.settings.contains_key("valid_size"));
        // 5,000 validation images: a larger error than CIFAR-10's 25,000.
        let cell = Arch::Nb201(Nb201Cell::from_code(7).unwrap());
        let e = c100.evaluate(&cell).unwrap();
        let want = crate::stats::binomial_se(e.score.unwrap(), 5_000).unwrap();
        assert!((e.score_se.unwrap() - want).abs() < 1e-12);
        assert_eq!(i100.implied_se(e.score.unwrap()), e.score_se);
        let unknown = full_table().replacen("cifar10_", "tiny_", 3);
        let t = Nb201Table::parse(Path::new("t.csv"), &unknown).unwrap();
        assert_eq!(t.score_se(50.0), None, "no split size known for 'tiny'");
    }

    #[test]
    fn a_header_without_one_dataset_is_refused_with_its_columns() {
        for (header, want) in [
            (
                "index,arch,acc,cifar10_test_200ep",
                "missing column '<dataset>_valid_12ep'",
            ),
            (
                "index,arch,cifar10_valid_12ep,cifar100_valid_12ep,cifar10_test_200ep",
                "several datasets (cifar10, cifar100)",
            ),
            (
                "index,arch,cifar100_valid_12ep,cifar10_test_200ep",
                "missing column 'cifar100_test_200ep'",
            ),
        ] {
            let e = Nb201Table::parse(Path::new("t.csv"), &format!("{header}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("t.csv:1: ") && e.contains(want), "{e}");
        }
    }

    #[test]
    fn noise_is_gaussian_and_fixed_per_arch_and_repeat() {
        let t = Nb201Table::parse(Path::new("t.csv"), &full_table())
            .unwrap()
            .with_noise(2.0, 7);
        let mut t2 = t.clone();
        let cell = Nb201Cell::from_code(1234).unwrap();
        let a = Arch::Nb201(cell);
        let first = t2.evaluate(&a).unwrap();
        assert_eq!(t2.evaluate(&a).unwrap(), first, "same draw on every lookup");
        let again = t2.evaluate_repeat(&a, 1).unwrap().unwrap();
        assert_ne!(again.score, first.score, "a repeat is another draw");
        assert_eq!(first.metrics["valid_12ep"], (1234 % 90) as f64 + 0.5);
        assert!(first.score_se.unwrap() > 2.0);
        assert_eq!(t.info().settings["noise_sd"], 2.0);
        // Mean about 0 and sd about 2 over the table.
        let d: Vec<f64> = (0..SIZE)
            .map(|c| {
                let cell = Nb201Cell::from_code(c).unwrap();
                t.noisy_score(&cell, 0).unwrap() - t.row(&cell).unwrap().valid_12ep
            })
            .collect();
        let (m, sd) = crate::stats::mean_sd(&d);
        assert!(
            m.abs() < 0.1 && (sd.unwrap() - 2.0).abs() < 0.1,
            "{m} {sd:?}"
        );
    }

    #[test]
    fn bad_tables_say_what_and_where() {
        let good = full_table();
        let cases: Vec<(String, &str)> = vec![
            (
                good.replacen("cifar10_valid_12ep", "valid", 1),
                "missing column '<dataset>_valid_12ep'",
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
