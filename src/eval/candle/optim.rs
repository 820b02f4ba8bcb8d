//! Optimisers (SGD with momentum, Nesterov and weight decay; AdamW), the
//! cosine learning-rate schedule and gradient-norm clipping.

use crate::eval::candle::nn::Param;
use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor};
use serde::{Deserialize, Serialize};

/// Which optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// SGD with momentum (PyTorch's formulation), optionally Nesterov.
    Sgd,
    /// Adam with decoupled weight decay.
    Adamw,
}

/// Optimiser hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptimConfig {
    /// Which optimiser.
    pub kind: OptimizerKind,
    /// SGD momentum.
    pub momentum: f64,
    /// Nesterov momentum (SGD).
    pub nesterov: bool,
    /// Weight decay (L2 for SGD, decoupled for AdamW).
    pub weight_decay: f64,
}

/// One optimiser state over a fixed list of parameters.
pub struct Optimizer {
    cfg: OptimConfig,
    /// SGD momentum buffers or Adam first moments.
    m: Vec<Option<Tensor>>,
    /// Adam second moments.
    v: Vec<Option<Tensor>>,
    step: u64,
}

impl Optimizer {
    /// A fresh optimiser for `n` parameters.
    pub fn new(cfg: OptimConfig, n: usize) -> Self {
        Optimizer {
            cfg,
            m: vec![None; n],
            v: vec![None; n],
            step: 0,
        }
    }

    /// One update with learning rate `lr`; parameters without a gradient are skipped.
    pub fn step(&mut self, params: &[Param], grads: &GradStore, lr: f64) -> Result<()> {
        self.step += 1;
        let c = self.cfg;
        for (i, p) in params.iter().enumerate() {
            let Some(g) = grads.get(p.var.as_tensor()) else {
                continue;
            };
            let w = p.var.as_tensor();
            let new = match c.kind {
                OptimizerKind::Sgd => {
                    let g = if c.weight_decay != 0.0 {
                        (g + (w * c.weight_decay)?)?
                    } else {
                        g.clone()
                    };
                    let d = if c.momentum != 0.0 {
                        let buf = match &self.m[i] {
                            Some(b) => ((b * c.momentum)? + &g)?,
                            None => g.clone(),
                        };
                        let d = if c.nesterov {
                            (&g + (&buf * c.momentum)?)?
                        } else {
                            buf.clone()
                        };
                        self.m[i] = Some(buf);
                        d
                    } else {
                        g
                    };
                    (w - (d * lr)?)?
                }
                OptimizerKind::Adamw => {
                    let (b1, b2, eps) = (0.9, 0.999, 1e-8);
                    let m = match &self.m[i] {
                        Some(m) => ((m * b1)? + (g * (1.0 - b1))?)?,
                        None => (g * (1.0 - b1))?,
                    };
                    let v = match &self.v[i] {
                        Some(v) => ((v * b2)? + (g.sqr()? * (1.0 - b2))?)?,
                        None => (g.sqr()? * (1.0 - b2))?,
                    };
                    let t = self.step as i32;
                    let mh = (&m / (1.0 - b1.powi(t)))?;
                    let vh = (&v / (1.0 - b2.powi(t)))?;
                    self.m[i] = Some(m);
                    self.v[i] = Some(v);
                    let decayed = (w * (1.0 - lr * c.weight_decay))?;
                    (decayed - ((mh / (vh.sqrt()? + eps)?)? * lr)?)?
                }
            };
            p.var.set(&new)?;
        }
        Ok(())
    }
}

/// Cosine annealing from `base` to `min` over `total` steps.
pub fn cosine_lr(base: f64, min: f64, step: usize, total: usize) -> f64 {
    if total == 0 {
        return base;
    }
    let t = (step.min(total)) as f64 / total as f64;
    min + 0.5 * (base - min) * (1.0 + (std::f64::consts::PI * t).cos())
}

/// Scale all gradients so their global L2 norm is at most `max_norm`;
/// returns the norm before clipping.
pub fn clip_grad_norm(params: &[Param], grads: &mut GradStore, max_norm: f64) -> Result<f64> {
    let mut sq = 0f64;
    for p in params {
        if let Some(g) = grads.get(p.var.as_tensor()) {
            sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
        }
    }
    let norm = sq.sqrt();
    if max_norm > 0.0 && norm > max_norm && norm.is_finite() {
        let scale = max_norm / (norm + 1e-6);
        for p in params {
            if let Some(g) = grads.remove(p.var.as_tensor()) {
                grads.insert(p.var.as_tensor(), (g * scale)?);
            }
        }
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::candle::nn::Builder;
    use candle_core::Device;

    fn one_param(v: f32) -> Vec<Param> {
        let mut b = Builder::new(Device::Cpu, 0);
        b.constant("w", &[1], v as f64).unwrap();
        b.params
    }

    fn value(p: &[Param]) -> f32 {
        p[0].var.as_tensor().to_vec1::<f32>().unwrap()[0]
    }

    /// Minimise w^2 / 2 (gradient w) and compare with hand-computed steps.
    #[test]
    fn sgd_momentum_nesterov_and_decay_follow_pytorch() {
        let cfg = OptimConfig {
            kind: OptimizerKind::Sgd,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 0.1,
        };
        let p = one_param(1.0);
        let mut o = Optimizer::new(cfg, 1);
        let mut w = 1.0f64;
        let mut buf = 0.0f64;
        for i in 0..3 {
            let loss = (p[0].var.as_tensor().sqr().unwrap() * 0.5)
                .unwrap()
                .sum_all()
                .unwrap();
            let g = loss.backward().unwrap();
            o.step(&p, &g, 0.5).unwrap();
            let d = w + 0.1 * w;
            buf = if i == 0 { d } else { 0.9 * buf + d };
            w -= 0.5 * buf;
            assert!(
                (value(&p) as f64 - w).abs() < 1e-5,
                "step {i}: {} vs {w}",
                value(&p)
            );
        }
        let cfg = OptimConfig {
            nesterov: true,
            weight_decay: 0.0,
            ..cfg
        };
        let p = one_param(1.0);
        let mut o = Optimizer::new(cfg, 1);
        let (mut w, mut buf) = (1.0f64, 0.0f64);
        for i in 0..3 {
            let loss = (p[0].var.as_tensor().sqr().unwrap() * 0.5)
                .unwrap()
                .sum_all()
                .unwrap();
            let g = loss.backward().unwrap();
            o.step(&p, &g, 0.1).unwrap();
            buf = if i == 0 { w } else { 0.9 * buf + w };
            w -= 0.1 * (w + 0.9 * buf);
            assert!((value(&p) as f64 - w).abs() < 1e-5, "nesterov step {i}");
        }
    }

    #[test]
    fn adamw_first_step_moves_by_lr() {
        let cfg = OptimConfig {
            kind: OptimizerKind::Adamw,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        };
        let p = one_param(2.0);
        let mut o = Optimizer::new(cfg, 1);
        let loss = (p[0].var.as_tensor().sqr().unwrap() * 0.5)
            .unwrap()
            .sum_all()
            .unwrap();
        o.step(&p, &loss.backward().unwrap(), 0.01).unwrap();
        assert!((value(&p) - 1.99).abs() < 1e-5, "{}", value(&p));
    }

    #[test]
    fn cosine_schedule_and_clipping() {
        assert!((cosine_lr(0.1, 0.0, 0, 10) - 0.1).abs() < 1e-12);
        assert!((cosine_lr(0.1, 0.0, 5, 10) - 0.05).abs() < 1e-12);
        assert!(cosine_lr(0.1, 0.001, 10, 10) - 0.001 < 1e-12);
        let p = one_param(3.0);
        let loss = (p[0].var.as_tensor().sqr().unwrap() * 2.0)
            .unwrap()
            .sum_all()
            .unwrap();
        let mut g = loss.backward().unwrap();
        let n = clip_grad_norm(&p, &mut g, 1.0).unwrap();
        assert!((n - 12.0).abs() < 1e-4);
        let after = g
            .get(p[0].var.as_tensor())
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()[0];
        assert!((after - 1.0).abs() < 1e-4, "{after}");
    }
}
