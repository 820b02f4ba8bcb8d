//! Evaluators: turn an architecture into a measured score.
//!
//! Every evaluator returns an [`Evaluation`]. Its `score` is the only figure a
//! search strategy ever sees (a validation accuracy); test figures are kept
//! apart in `test_accuracy`, for reports only.

pub mod candle;
pub mod cost;
pub mod nb201_table;
pub mod rung;
pub mod settings;
pub mod zero_cost;

pub use cost::{Budget, Constraints, Cost, CostModel, Fit, Objective};
pub use nb201_table::{Nb201Table, TableError};
pub use rung::{Rung, RungConfig, Rungs};
pub use settings::{EvaluatorConfig, EvaluatorKind, Nb201Config};

use crate::knowledge::EvaluatorInfo;
use crate::space::Arch;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How an evaluation ended. A failed evaluation is a result, not a crash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "reason")]
pub enum EvalStatus {
    /// Scored.
    Ok,
    /// Training diverged (NaN or infinite loss).
    Diverged(String),
    /// Over the configured size limits; not trained.
    TooLarge(String),
    /// Stopped at the time limit.
    TimedOut(String),
    /// Anything else, with the reason.
    Failed(String),
    /// The evaluation's job was cancelled (e.g. `scancel`) before it ended.
    Cancelled(String),
    /// The evaluation's job was preempted by the cluster.
    Preempted(String),
    /// The node running the evaluation failed.
    NodeFailed(String),
}

impl EvalStatus {
    /// Why it was not `ok` (`None` when it was).
    pub fn reason(&self) -> Option<&str> {
        match self {
            EvalStatus::Ok => None,
            EvalStatus::Diverged(r)
            | EvalStatus::TooLarge(r)
            | EvalStatus::TimedOut(r)
            | EvalStatus::Failed(r)
            | EvalStatus::Cancelled(r)
            | EvalStatus::Preempted(r)
            | EvalStatus::NodeFailed(r) => Some(r),
        }
    }

    /// The status's short name (`ok`, `diverged`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            EvalStatus::Ok => "ok",
            EvalStatus::Diverged(_) => "diverged",
            EvalStatus::TooLarge(_) => "too_large",
            EvalStatus::TimedOut(_) => "timed_out",
            EvalStatus::Failed(_) => "failed",
            EvalStatus::Cancelled(_) => "cancelled",
            EvalStatus::Preempted(_) => "preempted",
            EvalStatus::NodeFailed(_) => "node_failed",
        }
    }
}

/// The outcome of evaluating one architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// How it ended.
    #[serde(flatten)]
    pub status: EvalStatus,
    /// The search signal: validation accuracy in percent. `None` unless `ok`.
    pub score: Option<f64>,
    /// Test accuracy in percent, for reporting only; never shown to a strategy.
    pub test_accuracy: Option<f64>,
    /// The standard error of `score` (points) that the evaluator's noise
    /// implies: the binomial error of the validation set's size (and, for a
    /// table with added noise, that noise). `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_se: Option<f64>,
    /// Further figures (`params`, `flops`, `train_seconds`, ...).
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
}

impl Evaluation {
    /// A failed evaluation with its status.
    pub fn failed(status: EvalStatus) -> Self {
        Evaluation {
            status,
            score: None,
            test_accuracy: None,
            score_se: None,
            metrics: BTreeMap::new(),
        }
    }
}

/// An evaluator failure that is not about the architecture (setup, I/O).
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The architecture belongs to another space than the evaluator handles.
    #[error("the {evaluator} evaluator handles the {expected} space, not {got}")]
    WrongSpace {
        /// Evaluator name.
        evaluator: &'static str,
        /// Space it handles.
        expected: &'static str,
        /// Space it was given.
        got: &'static str,
    },
    /// The NAS-Bench-201 table could not be loaded.
    #[error(transparent)]
    Table(#[from] TableError),
    /// The Candle evaluator could not run (data, device, worker).
    #[error(transparent)]
    Candle(#[from] candle::CandleError),
}

/// Something that scores architectures.
pub trait Evaluator {
    /// Which evaluator this is and its settings (recorded with every result).
    fn info(&self) -> EvaluatorInfo;
    /// Score one architecture.
    fn evaluate(&mut self, arch: &Arch) -> Result<Evaluation, EvalError>;
    /// Whether evaluating again with another seed can give other figures
    /// (training does; a table only with added noise). Sessions re-evaluate
    /// contenders only then.
    fn repeatable(&self) -> bool {
        false
    }
    /// Score it again, independently of the first evaluation: the
    /// `repeat`-th other seed (1, 2, ...), same protocol otherwise. `None`
    /// when the evaluator is deterministic (a repeat would give the same
    /// figures), as the default is.
    fn evaluate_repeat(
        &mut self,
        arch: &Arch,
        repeat: u32,
    ) -> Result<Option<Evaluation>, EvalError> {
        let _ = (arch, repeat);
        Ok(None)
    }
    /// The same evaluator at another fidelity: the settings of a rung
    /// ([`rung::Rung`]). `None` when it has no other fidelity, as the
    /// default says.
    fn at_rung(&self, settings: &EvaluatorConfig) -> Result<Option<Box<dyn Evaluator>>, EvalError> {
        let _ = settings;
        Ok(None)
    }
}

/// Evaluate `arch` in this process, as a worker does for an evaluation
/// request: the table is looked up; Candle loads the data and trains here,
/// stopping itself with `timed_out` after `timeout_seconds`. Only problems
/// that are not about the architecture (a missing table or dataset) are
/// errors.
pub fn evaluate_here(
    kind: EvaluatorKind,
    settings: &EvaluatorConfig,
    arch: &Arch,
) -> Result<candle::Report, EvalError> {
    evaluate_repeat_here(kind, settings, arch, 0)
}

/// As [`evaluate_here`], for the `repeat`-th other seed (0: the first
/// evaluation): the Candle evaluator trains with seed `seed + repeat`, the
/// table draws that repeat's noise ([`Evaluator::evaluate_repeat`]).
pub fn evaluate_repeat_here(
    kind: EvaluatorKind,
    settings: &EvaluatorConfig,
    arch: &Arch,
    repeat: u32,
) -> Result<candle::Report, EvalError> {
    match kind {
        EvaluatorKind::Nb201 => {
            let mut table = Nb201Table::load(&settings.nb201.table)?
                .with_noise(settings.nb201.noise_sd, settings.nb201.noise_seed);
            let evaluation = match repeat {
                0 => table.evaluate(arch)?,
                r => table
                    .evaluate_repeat(arch, r)?
                    .unwrap_or_else(|| Evaluation::failed(EvalStatus::Failed(
                        "the table without noise gives the same figure every time; nothing to repeat".into(),
                    ))),
            };
            Ok(candle::Report {
                evaluation,
                loss_curve: Vec::new(),
            })
        }
        EvaluatorKind::Candle => {
            let mut owned = settings.candle.clone();
            owned.seed = owned.seed.wrapping_add(u64::from(repeat));
            let cfg = &owned;
            let data = candle::data::Dataset::load(cfg.dataset, &cfg.data_dir)
                .map_err(candle::CandleError::from)?;
            let deadline =
                std::time::Instant::now() + std::time::Duration::from_secs_f64(cfg.timeout_seconds);
            let mut report = candle::train::evaluate(arch, cfg, &data, Some(deadline))?;
            if repeat > 0 {
                report
                    .evaluation
                    .metrics
                    .insert("seed".into(), cfg.seed as f64);
            }
            Ok(report)
        }
    }
}

/// Build the evaluator of `kind` with its settings.
pub fn build(
    kind: EvaluatorKind,
    settings: &EvaluatorConfig,
) -> Result<Box<dyn Evaluator>, EvalError> {
    match kind {
        EvaluatorKind::Nb201 => Ok(Box::new(
            Nb201Table::load(&settings.nb201.table)?
                .with_noise(settings.nb201.noise_sd, settings.nb201.noise_seed),
        )),
        EvaluatorKind::Candle => Ok(Box::new(candle::CandleEvaluator::with_current_exe(
            settings.candle.clone(),
        )?)),
    }
}
