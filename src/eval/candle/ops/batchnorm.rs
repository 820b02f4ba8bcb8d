//! Training-mode batch normalisation over `N, H, W` per channel. On the CPU
//! one fused candle op: forward computes the batch statistics and
//! normalises; backward reuses the saved statistics (kernels in
//! `seki-kernels`). On other devices (CUDA) it is built from candle's own
//! reductions and broadcasts, which keeps the statistics on the device.

use super::{dims4, f32_slice};
use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use seki_kernels::batchnorm as k;
use seki_kernels::batchnorm::Stats;
use std::sync::{Arc, Mutex};

/// The batch statistics of a training-mode batch norm (detached, `[C]`,
/// on the input's device), for the running averages.
#[derive(Debug, Clone)]
pub struct BnStats {
    /// Per-channel mean.
    pub mean: Tensor,
    /// Per-channel biased variance.
    pub var: Tensor,
    /// Elements per channel (`N * H * W`).
    pub count: usize,
}

impl BnStats {
    /// A kernel's statistics as tensors on `dev`.
    pub(crate) fn from_kernel(s: Stats, dev: &candle_core::Device) -> Result<Self> {
        let c = s.mean.len();
        Ok(BnStats {
            mean: Tensor::from_vec(s.mean, c, dev)?,
            var: Tensor::from_vec(s.var, c, dev)?,
            count: s.count,
        })
    }
}

/// Normalise `x: [N, C, H, W]` with its batch statistics, scale by `gamma`
/// and shift by `beta` (both `[C]`). Returns the output and the statistics.
pub fn batch_norm_train(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
) -> Result<(Tensor, BnStats)> {
    if !x.device().is_cpu() {
        return batch_norm_train_composite(x, gamma, beta, eps);
    }
    let saved = Arc::new(Mutex::new(None));
    let op = BnTrain {
        eps,
        saved: saved.clone(),
    };
    let y = x
        .contiguous()?
        .apply_op3(&gamma.contiguous()?, &beta.contiguous()?, op)?;
    let stats = match saved.lock() {
        Ok(g) => g.clone(),
        Err(_) => None,
    };
    match stats {
        Some(s) => Ok((y, BnStats::from_kernel(s, x.device())?)),
        None => bail!("batch-norm: no statistics were recorded"),
    }
}

/// The same from candle's ops (autograd by candle): the path for devices
/// other than the CPU.
pub(crate) fn batch_norm_train_composite(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
) -> Result<(Tensor, BnStats)> {
    let (n, c, h, w) = x.dims4()?;
    for p in [gamma, beta] {
        if p.dims() != [c] {
            bail!(
                "batch-norm-train: per-channel parameters must have shape [{c}], found {:?}",
                p.dims()
            )
        }
    }
    let count = n * h * w;
    if count == 0 {
        bail!("batch-norm-train: empty batch")
    }
    let mean = (x.sum_keepdim((0, 2, 3))? / count as f64)?;
    let xc = x.broadcast_sub(&mean)?;
    let var = (xc.sqr()?.sum_keepdim((0, 2, 3))? / count as f64)?;
    let scale = (var.affine(1.0, eps)?.sqrt()?.recip()? * gamma.reshape((1, c, 1, 1))?)?;
    let y = xc
        .broadcast_mul(&scale)?
        .broadcast_add(&beta.reshape((1, c, 1, 1))?)?;
    let stats = BnStats {
        mean: mean.flatten_all()?.detach(),
        var: var.flatten_all()?.detach(),
        count,
    };
    Ok((y, stats))
}

struct BnTrain {
    eps: f64,
    saved: Arc<Mutex<Option<Stats>>>,
}

fn check(op: &str, x: &Layout, p: &Layout) -> Result<(usize, usize, usize)> {
    let (n, c, h, w) = dims4(op, x)?;
    if p.dims() != [c] {
        bail!(
            "{op}: per-channel parameters must have shape [{c}], found {:?}",
            p.dims()
        )
    }
    if n * h * w == 0 {
        bail!("{op}: empty batch")
    }
    Ok((n, c, h * w))
}

impl CustomOp3 for BnTrain {
    fn name(&self) -> &'static str {
        "batch-norm-train"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, c, hw) = check(self.name(), l1, l2)?;
        check(self.name(), l1, l3)?;
        let x = f32_slice(self.name(), s1, l1)?;
        let gamma = f32_slice(self.name(), s2, l2)?;
        let beta = f32_slice(self.name(), s3, l3)?;
        let (y, stats) = k::forward(x, gamma, beta, n, c, hw, self.eps);
        if let Ok(mut g) = self.saved.lock() {
            *g = Some(stats);
        }
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let stats = match self.saved.lock() {
            Ok(s) => s.clone(),
            Err(_) => None,
        };
        let Some(stats) = stats else {
            bail!("batch-norm: backward before forward")
        };
        let c = gamma.dim(0)?;
        let g = g.contiguous()?;
        let packed = x.apply_op3_no_bwd(gamma, &g, &BnBwd { stats })?;
        let nx = x.elem_count();
        let gx = packed.narrow(0, 0, nx)?.reshape(x.dims())?;
        let gg = packed.narrow(0, nx, c)?;
        let gb = packed.narrow(0, nx + c, c)?;
        Ok((Some(gx), Some(gg), Some(gb)))
    }
}

/// `(x, gamma, grad) -> [dx (flattened), dgamma, dbeta]` in one buffer.
struct BnBwd {
    stats: Stats,
}

impl CustomOp3 for BnBwd {
    fn name(&self) -> &'static str {
        "batch-norm-train-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, c, hw) = check(self.name(), l1, l2)?;
        if l3.dims() != l1.dims() || self.stats.mean.len() != c {
            bail!("{}: mismatched shapes", self.name())
        }
        let x = f32_slice(self.name(), s1, l1)?;
        let gamma = f32_slice(self.name(), s2, l2)?;
        let g = f32_slice(self.name(), s3, l3)?;
        let (mut dx, dg, db) = k::backward(x, gamma, g, &self.stats, n, c, hw);
        let len = dx.len() + 2 * c;
        dx.extend_from_slice(&dg);
        dx.extend_from_slice(&db);
        Ok((CpuStorage::F32(dx), Shape::from_dims(&[len])))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{grad_check, max_diff, rand_tensor};
    use super::*;

    #[test]
    fn normalises_each_channel() {
        let x = (rand_tensor(&[4, 3, 5, 5], 7) * 3.0).unwrap();
        let g = Tensor::ones(3, candle_core::DType::F32, x.device()).unwrap();
        let b = Tensor::zeros(3, candle_core::DType::F32, x.device()).unwrap();
        let (y, st) = batch_norm_train(&x, &g, &b, 1e-5).unwrap();
        let m = y
            .mean_keepdim(0)
            .unwrap()
            .mean_keepdim(2)
            .unwrap()
            .mean_keepdim(3)
            .unwrap();
        let m = m.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(m.iter().all(|v| v.abs() < 1e-5), "{m:?}");
        let v = y
            .sqr()
            .unwrap()
            .mean_keepdim(0)
            .unwrap()
            .mean_keepdim(2)
            .unwrap()
            .mean_keepdim(3)
            .unwrap();
        let v = v.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(v.iter().all(|v| (v - 1.0).abs() < 1e-3), "{v:?}");
        assert_eq!(st.count, 100);
        let var = st.var.to_vec1::<f32>().unwrap();
        assert!(var.iter().all(|v| *v > 0.5), "{var:?}");
    }

    /// The composite path (used on GPUs) agrees with the fused CPU op:
    /// output, statistics and all three gradients.
    #[test]
    fn composite_path_matches_the_cpu_op() {
        let x = candle_core::Var::from_tensor(&(rand_tensor(&[4, 3, 5, 6], 11) * 2.0).unwrap())
            .unwrap();
        let g = candle_core::Var::from_tensor(&(rand_tensor(&[3], 12) + 1.5).unwrap()).unwrap();
        let b = candle_core::Var::from_tensor(&rand_tensor(&[3], 13)).unwrap();
        let proj = rand_tensor(&[4, 3, 5, 6], 14);
        let run = |f: &dyn Fn(&Tensor, &Tensor, &Tensor) -> (Tensor, BnStats)| {
            let (y, st) = f(x.as_tensor(), g.as_tensor(), b.as_tensor());
            let grads = (&y * &proj).unwrap().sum_all().unwrap().backward().unwrap();
            assert_eq!(st.count, 120);
            vec![
                y,
                st.mean,
                st.var,
                grads.get(x.as_tensor()).unwrap().clone(),
                grads.get(g.as_tensor()).unwrap().clone(),
                grads.get(b.as_tensor()).unwrap().clone(),
            ]
        };
        let a = run(&|x, g, b| batch_norm_train(x, g, b, 1e-5).unwrap());
        let c = run(&|x, g, b| batch_norm_train_composite(x, g, b, 1e-5).unwrap());
        for (i, (a, c)) in a.iter().zip(&c).enumerate() {
            let diff = max_diff(a, c);
            assert!(diff < 1e-4, "output {i}: {diff}");
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let x = rand_tensor(&[3, 2, 4, 3], 8);
        let g = (rand_tensor(&[2], 9) + 1.5).unwrap();
        let b = rand_tensor(&[2], 10);
        grad_check(
            &x,
            &|t| batch_norm_train(t, &g, &b, 1e-5).unwrap().0,
            1e-2,
            "bn x",
        );
        grad_check(
            &g,
            &|t| batch_norm_train(&x, t, &b, 1e-5).unwrap().0,
            1e-2,
            "bn gamma",
        );
        grad_check(
            &b,
            &|t| batch_norm_train(&x, &g, t, 1e-5).unwrap().0,
            1e-2,
            "bn beta",
        );
    }
}
