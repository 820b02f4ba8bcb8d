//! `[evaluator]`: which evaluator scores architectures, and each one's
//! settings (the Candle evaluator's own live in [`super::candle::settings`]).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which evaluator scores architectures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvaluatorKind {
    /// A NAS-Bench-201 table (CIFAR-10, CIFAR-100, ...), `nb201` space only.
    Nb201,
    /// Train with candle on real data (both spaces).
    Candle,
}

impl std::str::FromStr for EvaluatorKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "nb201" => Ok(EvaluatorKind::Nb201),
            "candle" => Ok(EvaluatorKind::Candle),
            other => Err(format!(
                "unknown evaluator '{other}'; valid evaluators: nb201, candle"
            )),
        }
    }
}

/// `[evaluator.nb201]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Nb201Config {
    /// The table CSV.
    pub table: PathBuf,
    /// Standard deviation (points) of Gaussian noise added to each looked-up
    /// validation accuracy, so that decisions under evaluation noise can be
    /// studied without training (0: none).
    pub noise_sd: f64,
    /// Seed of that noise: each (architecture, repeat) gets its own draw,
    /// the same on every lookup.
    pub noise_seed: u64,
}

impl Default for Nb201Config {
    fn default() -> Self {
        Nb201Config {
            table: PathBuf::from("../shared/benchmarks/nb201/nb201-cifar10.csv"),
            noise_sd: 0.0,
            noise_seed: 0,
        }
    }
}

/// `[evaluator]`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvaluatorConfig {
    /// `[evaluator.nb201]`
    pub nb201: Nb201Config,
    /// `[evaluator.candle]`
    pub candle: crate::eval::candle::CandleConfig,
}

impl EvaluatorConfig {
    /// Whether evaluating again with another seed can give other figures
    /// (as [`super::Evaluator::repeatable`] says of a built evaluator):
    /// training always can; the table only with noise.
    pub fn repeatable(&self, kind: EvaluatorKind) -> bool {
        match kind {
            EvaluatorKind::Candle => true,
            EvaluatorKind::Nb201 => self.nb201.noise_sd > 0.0,
        }
    }
}
