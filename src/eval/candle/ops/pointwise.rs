//! Pointwise (1x1, stride 1) convolution as a candle op with a hand-written
//! backward, optionally with the ReLU before it fused in (kernels in
//! `seki-kernels`). Replaces one small matrix product per sample (candle's
//! batched matmul) and a separate ReLU node on the CPU; on other devices
//! (CUDA) it is that batched matmul, which cuBLAS runs well.

use super::{dims4, f32_slice};
use candle_core::{bail, CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use seki_kernels::pointwise::{self as k, Dims};

/// `y = w @ relu?(x)` per pixel, `x: [N, Cin, H, W]`, `w: [Cout, Cin, 1, 1]`.
pub fn pointwise_conv2d(x: &Tensor, w: &Tensor, relu: bool) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return pointwise_conv2d_matmul(x, w, relu);
    }
    x.contiguous()?
        .apply_op2(&w.contiguous()?, Pointwise { relu })
}

/// The same as one batched matrix product of candle's (autograd by candle):
/// the path for devices other than the CPU.
pub(crate) fn pointwise_conv2d_matmul(x: &Tensor, w: &Tensor, relu: bool) -> Result<Tensor> {
    let (n, cin, h, wd) = x.dims4()?;
    let cout = w.dims().first().copied().unwrap_or(0);
    if w.dims() != [cout, cin, 1, 1] {
        bail!(
            "pointwise-conv2d: weight shape {:?}, expected [out, {cin}, 1, 1]",
            w.dims()
        )
    }
    let x = if relu { super::relu(x)? } else { x.clone() };
    w.reshape((cout, cin))?
        .broadcast_left(n)?
        .matmul(&x.reshape((n, cin, h * wd))?)?
        .reshape((n, cout, h, wd))
}

fn geometry(op: &str, x: &Layout, w: &Layout) -> Result<(Dims, usize, usize)> {
    let (n, cin, h, wd) = dims4(op, x)?;
    let cout = w.dims().first().copied().unwrap_or(0);
    if w.dims() != [cout, cin, 1, 1] {
        bail!(
            "{op}: weight shape {:?}, expected [out, {cin}, 1, 1]",
            w.dims()
        )
    }
    Ok((
        Dims {
            n,
            cin,
            cout,
            hw: h * wd,
        },
        h,
        wd,
    ))
}

struct Pointwise {
    relu: bool,
}

impl CustomOp2 for Pointwise {
    fn name(&self) -> &'static str {
        "pointwise-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (d, h, w) = geometry(self.name(), l1, l2)?;
        let y = k::forward(
            f32_slice(self.name(), s1, l1)?,
            f32_slice(self.name(), s2, l2)?,
            d,
            self.relu,
        );
        Ok((CpuStorage::F32(y), Shape::from_dims(&[d.n, d.cout, h, w])))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        super::grads_of_x_and_w(x, w, g, |input| PointwiseBwd {
            relu: self.relu,
            input,
        })
    }
}

/// `(x, w, grad) -> dx` (`input`) or `dw`.
struct PointwiseBwd {
    relu: bool,
    input: bool,
}

impl CustomOp3 for PointwiseBwd {
    fn name(&self) -> &'static str {
        "pointwise-conv2d-bwd"
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
        let (d, h, w) = geometry(self.name(), l1, l2)?;
        if l3.dims() != [d.n, d.cout, h, w] {
            bail!(
                "{}: gradient shape {:?} does not match the output",
                self.name(),
                l3.dims()
            )
        }
        let x = f32_slice(self.name(), s1, l1)?;
        let g = f32_slice(self.name(), s3, l3)?;
        if self.input {
            let dx = k::backward_input(x, g, f32_slice(self.name(), s2, l2)?, d, self.relu);
            Ok((CpuStorage::F32(dx), Shape::from_dims(&[d.n, d.cin, h, w])))
        } else {
            let dw = k::backward_weight(x, g, d, self.relu);
            Ok((
                CpuStorage::F32(dw),
                Shape::from_dims(&[d.cout, d.cin, 1, 1]),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{grad_check, max_diff, rand_tensor};
    use super::*;

    #[test]
    fn matches_conv2d_and_finite_differences() {
        for (relu, cin, cout, h, w) in [
            (false, 3, 4, 5, 4),
            (true, 3, 4, 5, 4),
            (false, 6, 9, 17, 18),
            (true, 5, 7, 3, 3),
        ] {
            let x = rand_tensor(&[2, cin, h, w], 41);
            let w = rand_tensor(&[cout, cin, 1, 1], 42);
            let a = pointwise_conv2d(&x, &w, relu).unwrap();
            let xin = if relu { x.relu().unwrap() } else { x.clone() };
            let b = xin.conv2d(&w, 0, 1, 1, 1).unwrap();
            let diff = max_diff(&a, &b);
            assert!(diff < 1e-5, "relu {relu}: {diff}");
            grad_check(
                &x,
                &|t| pointwise_conv2d(t, &w, relu).unwrap(),
                1e-3,
                "pw input",
            );
            grad_check(
                &w,
                &|t| pointwise_conv2d(&x, t, relu).unwrap(),
                1e-3,
                "pw weight",
            );
        }
    }

    /// The matmul path (used on GPUs) agrees with the CPU op, values and
    /// gradients.
    #[test]
    fn matmul_path_matches_the_cpu_op() {
        for relu in [false, true] {
            let x = candle_core::Var::from_tensor(&rand_tensor(&[3, 5, 6, 7], 43)).unwrap();
            let w = candle_core::Var::from_tensor(&rand_tensor(&[4, 5, 1, 1], 44)).unwrap();
            let proj = rand_tensor(&[3, 4, 6, 7], 45);
            let run = |f: &dyn Fn(&Tensor, &Tensor) -> Tensor| {
                let y = f(x.as_tensor(), w.as_tensor());
                let g = (&y * &proj).unwrap().sum_all().unwrap().backward().unwrap();
                [
                    y,
                    g.get(x.as_tensor()).unwrap().clone(),
                    g.get(w.as_tensor()).unwrap().clone(),
                ]
            };
            let a = run(&|x, w| pointwise_conv2d(x, w, relu).unwrap());
            let b = run(&|x, w| pointwise_conv2d_matmul(x, w, relu).unwrap());
            for (i, (a, b)) in a.iter().zip(&b).enumerate() {
                let diff = max_diff(a, b);
                assert!(diff < 1e-4, "relu {relu}, output {i}: {diff}");
            }
        }
        let bad = rand_tensor(&[4, 3, 1, 1], 46);
        let x = rand_tensor(&[1, 5, 2, 2], 47);
        let e = pointwise_conv2d_matmul(&x, &bad, false).unwrap_err();
        assert!(e.to_string().contains("expected [out, 5, 1, 1]"), "{e}");
    }
}
