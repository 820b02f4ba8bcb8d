//! Screening: untrained-network (zero-cost) proxy scores that a strategy
//! consults to choose which of several proposals to train.
//!
//! A [`Screen`] scores architectures without training them; the scores are
//! only comparable within one call, and never reach the search scores a
//! strategy learns from. [`pick_best`] and [`ranking`] order candidates by
//! them. The scores of a `seki proxy zc` file are read by
//! [`ProxyCsv`](super::proxy_csv::ProxyCsv).

use crate::space::Arch;
use std::path::PathBuf;

/// Untrained-network proxy scores a strategy consults to choose which proposals to train.
pub trait Screen {
    /// What it ranks by, for journals and reports (e.g. "synflow" or "vote(synflow,jacob_cov,snip)").
    fn name(&self) -> String;
    /// Scores of `archs`, higher = more promising, comparable within one call;
    /// `None` = cannot be scored (ranked below every scored one).
    fn scores(&mut self, archs: &[Arch]) -> Result<Vec<Option<f64>>, ScreenError>;
    /// CPU seconds the scores handed out so far cost (each architecture counted once).
    fn cpu_seconds(&self) -> f64;
}

/// A screening failure: a proxy scores file that cannot be used, or a
/// request a screen cannot answer.
#[derive(Debug, thiserror::Error)]
pub enum ScreenError {
    /// The file could not be read.
    #[error("cannot read proxy scores {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A problem at one line (and column) of the file.
    #[error("{path}:{line}:{column}: {message}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The column: its 1-based number and name (e.g. `3 (synflow)`).
        column: String,
        /// What is wrong.
        message: String,
    },
    /// A row's architecture is not the table's at its index.
    #[error("{path}:{line}: index {index} is {expected} in the NAS-Bench-201 table, but the proxy file has {found}; the file was not made from this table")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The row's benchmark index.
        index: usize,
        /// The table's architecture at that index.
        expected: String,
        /// The file's architecture.
        found: String,
    },
    /// A proxy was asked for that the file has no column for.
    #[error("{path} has no '{proxy}' column; it has: {available}")]
    UnknownProxy {
        /// The file.
        path: PathBuf,
        /// The proxy asked for.
        proxy: String,
        /// The proxy columns the file has, comma-separated.
        available: String,
    },
    /// A screen was asked for without a proxy to rank by.
    #[error("no proxy named to screen by; name one or more, e.g. synflow or synflow,jacob_cov")]
    NoProxies,
    /// There was nothing to choose from.
    #[error("no candidates to screen")]
    NoCandidates,
    /// The zero-cost workers could not run.
    #[error("zero-cost scoring failed: {0}")]
    Worker(String),
}

/// `[search.screen]`: which zero-cost proxies choose what a session trains.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScreenSettings {
    /// Proxies to rank by (`synflow`, `naswot`, `jacob_cov`, `snip`,
    /// `grad_norm`, `params`, `flops`; several: a vote of their ranks).
    /// Empty: no screen.
    pub proxies: Vec<String>,
    /// A `seki proxy zc` scores file to read them from (NAS-Bench-201 table
    /// only); without one they are computed as the session goes.
    pub file: Option<PathBuf>,
    /// Zero-cost warm-up: random architectures scored before the first
    /// training; the best are trained first (REA: a population's worth;
    /// seki: each line's seed). 0: none.
    pub warmup: usize,
    /// Images in the data-dependent proxies' batch.
    pub batch: usize,
    /// Feed the data-dependent proxies Gaussian noise instead of the dataset.
    pub noise_input: bool,
    /// Seconds one architecture's scoring may take before its worker is
    /// killed (it then ranks last).
    pub timeout_seconds: f64,
}

impl Default for ScreenSettings {
    fn default() -> Self {
        ScreenSettings {
            proxies: Vec::new(),
            file: None,
            warmup: 100,
            batch: 64,
            noise_input: false,
            timeout_seconds: 120.0,
        }
    }
}

impl ScreenSettings {
    /// Whether a screen is asked for.
    pub fn enabled(&self) -> bool {
        !self.proxies.is_empty()
    }

    /// Refuse settings that cannot work: `(key, message)`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        for p in &self.proxies {
            let proxy: crate::eval::zero_cost::Proxy = p.parse().map_err(|e| ("proxies", e))?;
            if proxy.needs_data() && self.file.is_none() && self.batch < 2 {
                return Err((
                    "batch",
                    format!("{proxy} needs a batch of at least 2 images"),
                ));
            }
        }
        if !(self.timeout_seconds > 0.0 && self.timeout_seconds.is_finite()) {
            return Err((
                "timeout_seconds",
                format!(
                    "must be a positive number of seconds (got {})",
                    self.timeout_seconds
                ),
            ));
        }
        if let Some(f) = &self.file {
            if !f.is_file() {
                return Err(("file", format!("{} does not exist", f.display())));
            }
        }
        Ok(())
    }
}

/// Candidate positions ordered by score, best first: scored ones by
/// descending score, then the unscored; ties keep the lower index first.
pub fn ranking(scores: &[Option<f64>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    // A stable sort keeps equal keys in index order.
    order.sort_by(|&a, &b| match (scores[a], scores[b]) {
        (Some(x), Some(y)) => y.total_cmp(&x),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    order
}

/// Score `archs` with `screen` and pick the most promising: the index of the
/// best-scored one (ties, and all unscored, give the lowest index) and every
/// score, in the order of `archs`.
pub fn pick_best(
    screen: &mut dyn Screen,
    archs: &[Arch],
) -> Result<(usize, Vec<Option<f64>>), ScreenError> {
    if archs.is_empty() {
        return Err(ScreenError::NoCandidates);
    }
    let scores = screen.scores(archs)?;
    let best = ranking(&scores).first().copied().unwrap_or(0);
    Ok((best, scores))
}

/// A score as journals and origins show it (`-` when unscored).
pub fn show_score(score: Option<f64>) -> String {
    score.map_or_else(|| "-".to_string(), |s| format!("{s:.1}"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::space::Space;

    /// A screen scoring NB201 cells by their code (other spaces: unscored),
    /// remembering every batch it was asked for.
    pub(crate) struct ByCode {
        pub asked: Vec<Vec<Arch>>,
    }

    impl Screen for ByCode {
        fn name(&self) -> String {
            "code".into()
        }
        fn scores(&mut self, archs: &[Arch]) -> Result<Vec<Option<f64>>, ScreenError> {
            self.asked.push(archs.to_vec());
            Ok(archs
                .iter()
                .map(|a| match a {
                    Arch::Nb201(c) => Some(c.code() as f64),
                    Arch::Darts(_) => None,
                })
                .collect())
        }
        fn cpu_seconds(&self) -> f64 {
            self.asked.iter().map(Vec::len).sum::<usize>() as f64
        }
    }

    #[test]
    fn ranking_puts_unscored_last_and_ties_in_index_order() {
        let s = [None, Some(2.0), Some(5.0), Some(2.0), None];
        assert_eq!(ranking(&s), vec![2, 1, 3, 0, 4]);
        assert_eq!(ranking(&[None, None]), vec![0, 1]);
    }

    #[test]
    fn pick_best_takes_the_highest_score() {
        let mut screen = ByCode { asked: Vec::new() };
        let archs: Vec<Arch> = [
            "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
            "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|",
            "|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        ]
        .iter()
        .map(|t| Space::Nb201.parse(t).unwrap())
        .collect();
        let (best, scores) = pick_best(&mut screen, &archs).unwrap();
        assert_eq!(best, 1);
        assert_eq!(scores.len(), 3);
        assert!(matches!(
            pick_best(&mut screen, &[]),
            Err(ScreenError::NoCandidates)
        ));
        assert_eq!(show_score(None), "-");
        assert_eq!(show_score(Some(12.345)), "12.3");
    }
}
