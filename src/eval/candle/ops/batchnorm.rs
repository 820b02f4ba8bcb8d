//! Training-mode batch normalisation over `N, H, W` per channel, as one fused
//! op: forward computes the batch statistics and normalises in parallel over
//! channels; backward reuses the saved statistics.

use super::{dims4, f32_slice};
use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

/// The batch statistics of one forward pass, per channel.
#[derive(Debug, Clone, Default)]
pub struct BnStats {
    /// Batch mean.
    pub mean: Vec<f32>,
    /// Biased batch variance.
    pub var: Vec<f32>,
    /// `1 / sqrt(var + eps)`.
    pub invstd: Vec<f32>,
    /// Elements per channel (`N * H * W`).
    pub count: usize,
}

/// Normalise `x: [N, C, H, W]` with its batch statistics, scale by `gamma`
/// and shift by `beta` (both `[C]`). Returns the output and the statistics
/// (for the running averages).
pub fn batch_norm_train(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<(Tensor, BnStats)> {
    let saved = Arc::new(Mutex::new(None));
    let op = BnTrain { eps, saved: saved.clone() };
    let y = x.contiguous()?.apply_op3(&gamma.contiguous()?, &beta.contiguous()?, op)?;
    let stats = match saved.lock() {
        Ok(g) => g.clone(),
        Err(_) => None,
    };
    match stats {
        Some(s) => Ok((y, s)),
        None => bail!("batch-norm: no statistics were recorded"),
    }
}

struct BnTrain {
    eps: f64,
    saved: Arc<Mutex<Option<BnStats>>>,
}

impl BnTrain {
    fn stats(&self) -> Result<BnStats> {
        match self.saved.lock() {
            Ok(g) => match g.as_ref() {
                Some(s) => Ok(s.clone()),
                None => bail!("batch-norm: backward before forward"),
            },
            Err(_) => bail!("batch-norm: statistics lock poisoned"),
        }
    }
}

/// Per-channel sums over the planes of channel `ch`.
fn channel_fold(x: &[f32], n: usize, c: usize, hw: usize, ch: usize, mut f: impl FnMut(&[f32])) {
    for b in 0..n {
        let i = (b * c + ch) * hw;
        f(&x[i..i + hw]);
    }
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
        let (n, c, h, w) = dims4(self.name(), l1)?;
        if l2.dims() != [c] || l3.dims() != [c] {
            bail!("{}: gamma and beta must have shape [{c}]", self.name())
        }
        let hw = h * w;
        let count = n * hw;
        if count == 0 {
            bail!("{}: empty batch", self.name())
        }
        let x = f32_slice(self.name(), s1, l1)?;
        let gamma = f32_slice(self.name(), s2, l2)?;
        let beta = f32_slice(self.name(), s3, l3)?;
        let mv: Vec<(f32, f32)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let mut s = 0f64;
                channel_fold(x, n, c, hw, ch, |p| s += p.iter().map(|&v| v as f64).sum::<f64>());
                let mean = s / count as f64;
                let mut q = 0f64;
                channel_fold(x, n, c, hw, ch, |p| {
                    q += p.iter().map(|&v| (v as f64 - mean) * (v as f64 - mean)).sum::<f64>()
                });
                (mean as f32, (q / count as f64) as f32)
            })
            .collect();
        let mean: Vec<f32> = mv.iter().map(|m| m.0).collect();
        let var: Vec<f32> = mv.iter().map(|m| m.1).collect();
        let invstd: Vec<f32> = var.iter().map(|v| 1.0 / ((*v as f64 + self.eps).sqrt() as f32)).collect();
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(hw).enumerate().for_each(|(plane, o)| {
            let ch = plane % c;
            let a = invstd[ch] * gamma[ch];
            let b = beta[ch] - mean[ch] * a;
            for (y, v) in o.iter_mut().zip(&x[plane * hw..(plane + 1) * hw]) {
                *y = v * a + b;
            }
        });
        if let Ok(mut g) = self.saved.lock() {
            *g = Some(BnStats { mean, var, invstd, count });
        }
        Ok((CpuStorage::F32(out), Shape::from_dims(&[n, c, h, w])))
    }

    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        // The CPU kernel records the statistics.
        super::gpu::op3(self, s1, l1, s2, l2, s3, l3)
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let stats = self.stats()?;
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
    stats: BnStats,
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
        let (n, c, h, w) = dims4(self.name(), l1)?;
        if l3.dims() != l1.dims() || l2.dims() != [c] || self.stats.mean.len() != c {
            bail!("{}: mismatched shapes", self.name())
        }
        let hw = h * w;
        let x = f32_slice(self.name(), s1, l1)?;
        let gamma = f32_slice(self.name(), s2, l2)?;
        let gr = f32_slice(self.name(), s3, l3)?;
        let st = &self.stats;
        // Per channel: sum(dy) and sum(dy * xhat).
        let sums: Vec<(f32, f32)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let (m, is) = (st.mean[ch], st.invstd[ch]);
                let (mut sd, mut sdx) = (0f64, 0f64);
                for b in 0..n {
                    let i = (b * c + ch) * hw;
                    let (mut a, mut q) = (0f32, 0f32);
                    for (gv, xv) in gr[i..i + hw].iter().zip(&x[i..i + hw]) {
                        a += gv;
                        q += gv * (xv - m) * is;
                    }
                    sd += a as f64;
                    sdx += q as f64;
                }
                (sd as f32, sdx as f32)
            })
            .collect();
        let nx = x.len();
        let mut out = vec![0f32; nx + 2 * c];
        let inv_count = 1.0 / st.count as f32;
        out[..nx].par_chunks_mut(hw).enumerate().for_each(|(plane, d)| {
            let ch = plane % c;
            let (m, is) = (st.mean[ch], st.invstd[ch]);
            let k = gamma[ch] * is;
            let md = sums[ch].0 * inv_count;
            let mdx = sums[ch].1 * inv_count;
            let i = plane * hw;
            for ((dv, gv), xv) in d.iter_mut().zip(&gr[i..i + hw]).zip(&x[i..i + hw]) {
                *dv = k * (gv - md - (xv - m) * is * mdx);
            }
        });
        for ch in 0..c {
            out[nx + ch] = sums[ch].1;
            out[nx + c + ch] = sums[ch].0;
        }
        Ok((CpuStorage::F32(out), Shape::from_dims(&[nx + 2 * c])))
    }

    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        super::gpu::op3(self, s1, l1, s2, l2, s3, l3)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{grad_check, rand_tensor};
    use super::*;

    #[test]
    fn normalises_each_channel() {
        let x = (rand_tensor(&[4, 3, 5, 5], 7) * 3.0).unwrap();
        let g = Tensor::ones(3, candle_core::DType::F32, x.device()).unwrap();
        let b = Tensor::zeros(3, candle_core::DType::F32, x.device()).unwrap();
        let (y, st) = batch_norm_train(&x, &g, &b, 1e-5).unwrap();
        let m = y.mean_keepdim(0).unwrap().mean_keepdim(2).unwrap().mean_keepdim(3).unwrap();
        let m = m.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(m.iter().all(|v| v.abs() < 1e-5), "{m:?}");
        let v = y.sqr().unwrap().mean_keepdim(0).unwrap().mean_keepdim(2).unwrap().mean_keepdim(3).unwrap();
        let v = v.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(v.iter().all(|v| (v - 1.0).abs() < 1e-3), "{v:?}");
        assert_eq!(st.count, 100);
        assert!(st.var.iter().all(|v| *v > 0.5), "{:?}", st.var);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let x = rand_tensor(&[3, 2, 4, 3], 8);
        let g = (rand_tensor(&[2], 9) + 1.5).unwrap();
        let b = rand_tensor(&[2], 10);
        grad_check(&x, &|t| batch_norm_train(t, &g, &b, 1e-5).unwrap().0, 1e-2, "bn x");
        grad_check(&g, &|t| batch_norm_train(&x, t, &b, 1e-5).unwrap().0, 1e-2, "bn gamma");
        grad_check(&b, &|t| batch_norm_train(&x, &g, t, 1e-5).unwrap().0, 1e-2, "bn beta");
    }
}
