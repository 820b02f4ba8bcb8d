//! `[evaluator.candle]`: the training evaluator's settings.

use super::data::DatasetKind;
use super::optim::OptimizerKind;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Where to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// The CPU.
    Cpu,
    /// The first CUDA GPU (needs the `cuda` feature).
    Cuda,
    /// CUDA when built with it and a GPU is present, else the CPU.
    Auto,
}

/// `[evaluator.candle]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CandleConfig {
    /// Dataset.
    pub dataset: DatasetKind,
    /// Folder with the dataset's files.
    pub data_dir: PathBuf,
    /// Training epochs.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Training images used (0: all that the validation split leaves).
    pub train_subset: usize,
    /// Training images held out for validation (the search score).
    pub valid_size: usize,
    /// Test images used (0: all).
    pub test_subset: usize,
    /// DARTS: cells (depth).
    pub cells: usize,
    /// Initial channels (both spaces).
    pub channels: usize,
    /// NAS-Bench-201: cells per stage.
    pub stage_cells: usize,
    /// Optimiser: `sgd` or `adamw`.
    pub optimizer: OptimizerKind,
    /// Initial learning rate (cosine-annealed to `lr_min`).
    pub lr: f64,
    /// Final learning rate.
    pub lr_min: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Weight decay.
    pub weight_decay: f64,
    /// Clip the gradient norm to this (0: off).
    pub grad_clip: f64,
    /// Random crop with padding and (where the dataset allows) flips.
    pub augment: bool,
    /// Cutout square side (0: off).
    pub cutout: usize,
    /// DARTS drop-path probability (0: off).
    pub drop_path: f64,
    /// DARTS auxiliary-head loss weight (0: no auxiliary head).
    pub auxiliary_weight: f64,
    /// Seed of data split, initial weights and batch order.
    pub seed: u64,
    /// Kill an evaluation after this many seconds.
    pub timeout_seconds: f64,
    /// Reject architectures with more parameters (0: no limit).
    pub max_params: u64,
    /// Reject architectures with more multiply-adds per image (0: no limit).
    pub max_flops: u64,
    /// `cpu`, `cuda` or `auto`.
    pub device: DeviceKind,
    /// CPU threads (0: all cores).
    pub threads: usize,
}

impl Default for CandleConfig {
    fn default() -> Self {
        CandleConfig {
            dataset: DatasetKind::FashionMnist,
            data_dir: PathBuf::from("/usr/share/datasets/fashion-mnist"),
            epochs: 1,
            batch_size: 64,
            train_subset: 10_000,
            valid_size: 5_000,
            test_subset: 0,
            cells: 5,
            channels: 16,
            stage_cells: 1,
            optimizer: OptimizerKind::Sgd,
            lr: 0.05,
            lr_min: 0.0,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 3e-4,
            grad_clip: 5.0,
            augment: true,
            cutout: 0,
            drop_path: 0.0,
            auxiliary_weight: 0.0,
            seed: 0,
            timeout_seconds: 1800.0,
            max_params: 5_000_000,
            max_flops: 1_000_000_000,
            device: DeviceKind::Cpu,
            threads: 0,
        }
    }
}

impl CandleConfig {
    /// The first invalid setting: its key (below `evaluator.candle`) and what is wrong.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let bad = |k: &'static str, m: &str| Err((k, m.to_string()));
        if self.epochs == 0 {
            return bad("epochs", "must be at least 1");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1");
        }
        if self.valid_size == 0 {
            return bad(
                "valid_size",
                "must be at least 1 (the search score is validation accuracy)",
            );
        }
        if self.cells < 3 {
            return bad(
                "cells",
                "must be at least 3 (reduction cells sit at 1/3 and 2/3 of the depth)",
            );
        }
        if self.channels < 2 || !self.channels.is_multiple_of(2) {
            return bad("channels", "must be an even number of at least 2");
        }
        if self.stage_cells == 0 {
            return bad("stage_cells", "must be at least 1");
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("lr", "must be a positive number");
        }
        if !(self.lr_min >= 0.0 && self.lr_min <= self.lr) {
            return bad("lr_min", "must be between 0 and lr");
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad("momentum", "must be in [0, 1)");
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad("weight_decay", "must be 0 or positive");
        }
        if !(self.grad_clip >= 0.0 && self.grad_clip.is_finite()) {
            return bad("grad_clip", "must be 0 (off) or positive");
        }
        if !(0.0..1.0).contains(&self.drop_path) {
            return bad("drop_path", "must be in [0, 1)");
        }
        if !(self.auxiliary_weight >= 0.0 && self.auxiliary_weight.is_finite()) {
            return bad("auxiliary_weight", "must be 0 (off) or positive");
        }
        if !(self.timeout_seconds > 0.0 && self.timeout_seconds.is_finite()) {
            return bad("timeout_seconds", "must be a positive number of seconds");
        }
        if self.nesterov && self.momentum == 0.0 {
            return bad("nesterov", "needs a momentum above 0");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // That `config.toml` names the key and its line is tested in
    // `config.rs`, which reads the file; here the check itself.
    #[test]
    fn defaults_are_valid_and_bad_values_name_their_key() {
        assert!(CandleConfig::default().check().is_ok());
        for (change, key) in [
            (
                (|c: &mut CandleConfig| c.lr = 0.0) as fn(&mut CandleConfig),
                "lr",
            ),
            (
                |c: &mut CandleConfig| {
                    c.nesterov = true;
                    c.momentum = 0.0;
                },
                "nesterov",
            ),
            (
                |c: &mut CandleConfig| c.timeout_seconds = -1.0,
                "timeout_seconds",
            ),
            (
                |c: &mut CandleConfig| c.timeout_seconds = f64::NAN,
                "timeout_seconds",
            ),
        ] {
            let mut c = CandleConfig::default();
            change(&mut c);
            assert_eq!(c.check().map_err(|(k, _)| k), Err(key));
        }
    }
}
