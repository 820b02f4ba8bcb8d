//! The Candle evaluator: trains each architecture on real data with
//! [candle](https://github.com/huggingface/candle) and scores it by
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
use std::time::Instant;

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

/// Where evaluations run.
#[derive(Debug, Clone)]
pub enum Mode {
    /// In a child process: `program eval-worker` (the seki binary).
    Child(PathBuf),
    /// In this process (no hard timeout: the training loop checks the
    /// deadline between steps).
    InProcess,
}

/// Trains and scores architectures of either space.
pub struct CandleEvaluator {
    cfg: CandleConfig,
    mode: Mode,
    data: Option<data::Dataset>,
    last: Option<Report>,
}

impl CandleEvaluator {
    /// An evaluator with `cfg`, running evaluations as `mode` says. The
    /// dataset is loaded now (in-process) or checked now (child mode), so a
    /// missing or malformed file is reported before any search starts.
    pub fn new(cfg: CandleConfig, mode: Mode) -> Result<Self, CandleError> {
        cfg.check()
            .map_err(|(k, m)| CandleError::Setup(format!("evaluator.candle.{k}: {m}")))?;
        train::select_device(cfg.device)?;
        let data = data::Dataset::load(cfg.dataset, &cfg.data_dir)?;
        let data = match mode {
            Mode::InProcess => Some(data),
            Mode::Child(_) => None,
        };
        Ok(CandleEvaluator {
            cfg,
            mode,
            data,
            last: None,
        })
    }

    /// Run evaluations in child processes of the running executable.
    pub fn with_current_exe(cfg: CandleConfig) -> Result<Self, CandleError> {
        let exe = std::env::current_exe()
            .map_err(|e| CandleError::Setup(format!("cannot locate the seki executable: {e}")))?;
        Self::new(cfg, Mode::Child(exe))
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
        let report = match (&self.mode, &self.data) {
            (Mode::Child(program), _) => worker::run_child(program, arch, &self.cfg)?,
            (Mode::InProcess, Some(d)) => {
                let deadline = Instant::now() + crate::llm::retry::secs(self.cfg.timeout_seconds);
                train::evaluate(arch, &self.cfg, d, Some(deadline))?
            }
            (Mode::InProcess, None) => return Err(CandleError::Setup("no dataset loaded".into())),
        };
        self.last = Some(report.clone());
        Ok(report)
    }
}

impl Evaluator for CandleEvaluator {
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
}
