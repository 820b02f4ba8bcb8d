//! The Candle evaluator: trains each architecture on real data with
//! candle (the Rust ML framework) and scores it by
//! validation accuracy.
//!
//! Layout: [`ops`] (custom ops with hand-written backward), [`nn`] (layers and
//! the DARTS and NAS-Bench-201 networks), [`optim`], [`data`] (loaders, split,
//! augmentation), [`train`] (one evaluation), [`worker`] (the child process),
//! [`settings`] (`[evaluator.candle]`).

pub mod data;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod settings;
pub mod train;
pub mod worker;

pub use settings::{CandleConfig, DeviceKind};
pub use train::Report;

use super::{EvalError, Evaluation, Evaluator};
use crate::knowledge::EvaluatorInfo;
use crate::space::Arch;
use std::path::PathBuf;

/// A failure of the Candle evaluator that is not a result about the architecture.
#[derive(Debug, thiserror::Error)]
pub enum CandleError {
    /// A dataset file is missing or malformed.
    #[error(transparent)]
    Data(#[from] data::DataError),
    /// A tensor operation failed.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// Bad settings or environment.
    #[error("{0}")]
    Setup(String),
}

/// Trains and scores architectures of either space.
///
/// Each evaluation runs in a child process (`seki eval-worker`), so a crash,
/// an out-of-memory kill or a hung training run is a failed result with its
/// reason, never the end of the session, and the time limit is enforced by
/// killing the child.
pub struct CandleEvaluator {
    cfg: CandleConfig,
    program: PathBuf,
    last: Option<Report>,
}

impl CandleEvaluator {
    /// An evaluator with `cfg`, running each evaluation as `program
    /// eval-worker` (the seki binary). The dataset is loaded once now, so a
    /// missing or malformed file is reported before any search starts.
    pub fn new(cfg: CandleConfig, program: PathBuf) -> Result<Self, CandleError> {
        cfg.check()
            .map_err(|(k, m)| CandleError::Setup(format!("evaluator.candle.{k}: {m}")))?;
        train::select_device(cfg.device)?;
        data::Dataset::load(cfg.dataset, &cfg.data_dir)?;
        Ok(CandleEvaluator {
            cfg,
            program,
            last: None,
        })
    }

    /// Run evaluations in child processes of the running executable.
    pub fn with_current_exe(cfg: CandleConfig) -> Result<Self, CandleError> {
        let exe = std::env::current_exe()
            .map_err(|e| CandleError::Setup(format!("cannot locate the seki executable: {e}")))?;
        Self::new(cfg, exe)
    }

    /// The settings.
    pub fn config(&self) -> &CandleConfig {
        &self.cfg
    }

    /// The full report of the last evaluation (with its loss curve).
    pub fn last_report(&self) -> Option<&Report> {
        self.last.as_ref()
    }

    /// Evaluate and return the full report.
    pub fn evaluate_report(&mut self, arch: &Arch) -> Result<Report, CandleError> {
        let report = worker::run_child(&self.program, arch, &self.cfg)?;
        self.last = Some(report.clone());
        Ok(report)
    }
}

/// Train `arch` once under `cfg` in a child process of the running
/// executable (`seki eval`): the full report (with its loss curve) and the
/// evaluator's settings as results record them.
pub fn evaluate_once(
    cfg: CandleConfig,
    arch: &Arch,
) -> Result<(Report, EvaluatorInfo), CandleError> {
    let mut evaluator = CandleEvaluator::with_current_exe(cfg)?;
    let report = evaluator.evaluate_report(arch)?;
    Ok((report, evaluator.info()))
}

impl Evaluator for CandleEvaluator {
    fn at_rung(
        &self,
        settings: &crate::eval::EvaluatorConfig,
    ) -> Result<Option<Box<dyn Evaluator>>, EvalError> {
        Ok(Some(Box::new(CandleEvaluator::new(
            settings.candle.clone(),
            self.program.clone(),
        )?)))
    }
    fn info(&self) -> EvaluatorInfo {
        let mut settings = serde_json::Map::new();
        let c = &self.cfg;
        let mut put = |k: &str, v: serde_json::Value| {
            settings.insert(k.to_string(), v);
        };
        put("epochs", c.epochs.into());
        put("batch_size", c.batch_size.into());
        put("train_subset", c.train_subset.into());
        put("valid_size", c.valid_size.into());
        put("cells", c.cells.into());
        put("stage_cells", c.stage_cells.into());
        put("channels", c.channels.into());
        put("lr", c.lr.into());
        put(
            "optimizer",
            serde_json::to_value(c.optimizer).unwrap_or_default(),
        );
        put("seed", c.seed.into());
        put("score", "valid_accuracy_percent".into());
        EvaluatorInfo {
            kind: "candle".into(),
            dataset: Some(c.dataset.name().into()),
            settings,
        }
    }

    fn evaluate(&mut self, arch: &Arch) -> Result<Evaluation, EvalError> {
        Ok(self.evaluate_report(arch)?.evaluation)
    }

    fn repeatable(&self) -> bool {
        true
    }

    /// Train again with seed `seed + repeat`: another validation split,
    /// initialisation, batch order and augmentation.
    fn evaluate_repeat(
        &mut self,
        arch: &Arch,
        repeat: u32,
    ) -> Result<Option<Evaluation>, EvalError> {
        let mut cfg = self.cfg.clone();
        cfg.seed = cfg.seed.wrapping_add(u64::from(repeat));
        let report = worker::run_child(&self.program, arch, &cfg)?;
        let mut e = report.evaluation.clone();
        e.metrics.insert("seed".into(), cfg.seed as f64);
        self.last = Some(report);
        Ok(Some(e))
    }
}
