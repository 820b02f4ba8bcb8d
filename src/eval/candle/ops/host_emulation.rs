//! The CUDA kernels (`kernels/cuda/seki_ops.cu`) against the CPU kernels,
//! through the kernels' host build: the same source, every grid-stride loop
//! run serially. This checks all of their index arithmetic (windows,
//! strides, dilations, padding, gathers, tie and NaN rules) on machines
//! without a GPU; on a GPU only the launch itself differs.

use seki_kernels::cuda::host;
use seki_kernels::depthwise::{self, Dims};
use seki_kernels::{im2col, pool, relu, DwParams, PoolKind, PoolParams};

/// Deterministic values in [-1, 1); with `ties`, a few distinct values
/// (so windows have several equal maxima).
fn values(len: usize, seed: u64, ties: bool) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let v = (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
            if ties {
                (v * 2.0).round()
            } else {
                v
            }
        })
        .collect()
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let ok = (g.is_nan() && w.is_nan()) || (g - w).abs() <= 1e-4 * (1.0 + w.abs());
        assert!(ok, "{what}[{i}]: CUDA kernel {g}, CPU kernel {w}");
    }
}

const SHAPES: [(usize, usize, usize, usize); 4] =
    [(2, 3, 9, 8), (1, 2, 7, 7), (3, 4, 16, 16), (1, 1, 5, 11)];

/// (k, stride, pad, dilation): the DARTS ops' and the awkward ones.
const CONVS: [(usize, usize, usize, usize); 10] = [
    (3, 1, 1, 1),
    (3, 2, 1, 1),
    (5, 1, 2, 1),
    (5, 2, 2, 1),
    (3, 1, 2, 2),
    (5, 2, 4, 2),
    (3, 2, 0, 1),
    (1, 1, 0, 1),
    (1, 2, 0, 1),
    (3, 3, 2, 2),
];

fn conv_cases() -> Vec<(DwParams, Dims)> {
    let mut out = Vec::new();
    for &(n, c, h, w) in &SHAPES {
        for &(k, stride, pad, dilation) in &CONVS {
            for relu in [false, true] {
                let p = DwParams {
                    k,
                    stride,
                    pad,
                    dilation,
                    relu,
                };
                if let (Some(oh), Some(ow)) = (p.out_size(h), p.out_size(w)) {
                    if oh > 0 && ow > 0 {
                        out.push((p, Dims { n, c, h, w, oh, ow }));
                    }
                }
            }
        }
    }
    out
}

#[test]
fn depthwise_kernels_match_the_cpu() {
    let cases = conv_cases();
    assert!(cases.len() > 60, "{}", cases.len());
    for (i, (p, d)) in cases.into_iter().enumerate() {
        let what = format!("{p:?} {d:?}");
        let x = values(d.n * d.c * d.h * d.w, i as u64, false);
        let w = values(d.c * p.k * p.k, 1000 + i as u64, false);
        let g = values(d.n * d.c * d.oh * d.ow, 2000 + i as u64, false);
        assert_close(
            &format!("forward {what}"),
            &host::dw_forward(&x, &w, &p, d).unwrap(),
            &depthwise::forward(&x, &w, &p, d),
        );
        assert_close(
            &format!("input gradient {what}"),
            &host::dw_backward_input(&x, &g, &w, &p, d).unwrap(),
            &depthwise::backward_input(&x, &g, &w, &p, d),
        );
        assert_close(
            &format!("weight gradient {what}"),
            &host::dw_backward_weight(&x, &g, &p, d).unwrap(),
            &depthwise::backward_weight(&x, &g, &p, d),
        );
    }
}

#[test]
fn im2col_kernels_match_the_cpu() {
    for (i, (p, d)) in conv_cases().into_iter().enumerate() {
        let what = format!("{p:?} {d:?}");
        let x = values(d.n * d.c * d.h * d.w, i as u64, false);
        let cols = values(d.n * d.c * p.k * p.k * d.oh * d.ow, 3000 + i as u64, false);
        assert_close(
            &format!("im2col {what}"),
            &host::im2col(&x, &p, d).unwrap(),
            &im2col::im2col(&x, &p, d),
        );
        assert_close(
            &format!("col2im {what}"),
            &host::col2im(&cols, &p, d).unwrap(),
            &im2col::col2im(&cols, &p, d),
        );
    }
}

#[test]
fn pool_kernels_match_the_cpu_including_ties_and_nan() {
    let mut checked = 0;
    for &(n, c, h, w) in &SHAPES {
        for (k, stride, pad) in [
            (3, 1, 1),
            (3, 2, 1),
            (2, 2, 0),
            (3, 2, 0),
            (3, 3, 1),
            (1, 1, 0),
        ] {
            for kind in [PoolKind::Max, PoolKind::Avg] {
                for ties in [false, true] {
                    let p = PoolParams {
                        kind,
                        k,
                        stride,
                        pad,
                    };
                    let (Some(oh), Some(ow)) = (p.out_size(h), p.out_size(w)) else {
                        continue;
                    };
                    let d = pool::Dims {
                        planes: n * c,
                        h,
                        w,
                        oh,
                        ow,
                    };
                    let mut x = values(n * c * h * w, checked, ties);
                    if ties && x.len() > 7 {
                        x[7] = f32::NAN;
                    }
                    let g = values(n * c * oh * ow, 500 + checked, false);
                    let what = format!("{p:?} {d:?} ties {ties}");
                    assert_close(
                        &format!("forward {what}"),
                        &host::pool_forward(&x, &p, d).unwrap(),
                        &pool::forward(&x, &p, d),
                    );
                    assert_close(
                        &format!("backward {what}"),
                        &host::pool_backward(&x, &g, &p, d).unwrap(),
                        &pool::backward(&x, &g, &p, d),
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 80, "{checked}");
}

#[test]
fn relu_kernels_match_the_cpu() {
    let mut x = values(1000, 7, false);
    x[3] = f32::NAN;
    x[4] = -0.0;
    x[5] = 0.0;
    let g = values(1000, 8, false);
    let y = relu::forward(&x);
    assert_close("relu", &host::relu_forward(&x).unwrap(), &y);
    assert_close(
        "relu backward",
        &host::relu_backward(&y, &g).unwrap(),
        &relu::backward(&y, &g),
    );
}

#[test]
fn mismatched_buffers_are_refused() {
    let p = DwParams {
        k: 3,
        stride: 1,
        pad: 1,
        dilation: 1,
        relu: false,
    };
    let d = Dims {
        n: 1,
        c: 2,
        h: 4,
        w: 4,
        oh: 4,
        ow: 4,
    };
    assert!(host::dw_forward(&[0.0; 31], &[0.0; 18], &p, d).is_none());
    assert!(host::dw_forward(&[0.0; 32], &[0.0; 17], &p, d).is_none());
    assert!(host::relu_backward(&[0.0; 3], &[0.0; 2]).is_none());
}
