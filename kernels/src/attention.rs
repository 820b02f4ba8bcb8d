//! Causal softmax attention of new query rows over a key/value cache, and
//! the small per-row operations around it in a transformer (RMS norm,
//! rotary position embedding, SiLU gating), on plain `f32` slices.

use crate::piece_rows;
use rayon::prelude::*;

/// Shapes of [`causal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttnDims {
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (`heads` a multiple of it: grouped-query attention).
    pub kv_heads: usize,
    /// Values per head.
    pub head_dim: usize,
    /// Sliding window: a query sees at most this many positions, itself
    /// and the ones just before it (`None`: every earlier position).
    pub window: Option<usize>,
}

/// Attention of `n` query rows at positions `pos0..pos0 + n` over the
/// cached keys and values of positions `0..pos0 + n` (row `i` sees
/// positions `0..=pos0 + i`, or its last `window` of them): `q` and `out`
/// are `n x heads x head_dim`,
/// `k` and `v` are `(pos0 + n) x kv_heads x head_dim`. Scores are scaled by
/// `1 / sqrt(head_dim)`. Parallel over (row, head). The caller checks sizes;
/// rows or heads the slices do not hold are left untouched.
pub fn causal(q: &[f32], k: &[f32], v: &[f32], pos0: usize, d: AttnDims, out: &mut [f32]) {
    let hd = d.head_dim;
    if hd == 0 || d.kv_heads == 0 || d.heads == 0 {
        return;
    }
    let group = (d.heads / d.kv_heads).max(1);
    let kv_row = d.kv_heads * hd;
    let scale = 1.0 / (hd as f32).sqrt();
    let one = |scores: &mut Vec<f32>, idx: usize, o: &mut [f32]| {
        let (i, h) = (idx / d.heads, idx % d.heads);
        let kvh = (h / group).min(d.kv_heads - 1);
        let Some(qh) = q.get(idx * hd..(idx + 1) * hd) else {
            return;
        };
        let end = (pos0 + i + 1).min(k.len() / kv_row).min(v.len() / kv_row);
        let start = d.window.map_or(0, |w| end.saturating_sub(w.max(1)));
        let head = Head {
            k: &k[start * kv_row..],
            v: &v[start * kv_row..],
            kv_row,
            off: kvh * hd,
            len: end - start,
            scale,
        };
        #[cfg(target_arch = "x86_64")]
        if crate::simd::has_avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA; `len` keeps every key and
            // value row inside `k` and `v`, and `off + hd <= kv_row`.
            let done = unsafe {
                match hd {
                    64 => fast::head::<8>(qh, &head, scores, o),
                    128 => fast::head::<16>(qh, &head, scores, o),
                    256 => fast::head::<32>(qh, &head, scores, o),
                    _ => false,
                }
            };
            if done {
                return;
            }
        }
        plain_head(qh, &head, scores, o);
    };
    if out.len() / hd <= 1 {
        if let Some(o) = out.chunks_exact_mut(hd).next() {
            one(&mut Vec::new(), 0, o);
        }
        return;
    }
    out.par_chunks_exact_mut(hd)
        .enumerate()
        .for_each_init(Vec::new, |scores, (idx, o)| one(scores, idx, o));
}

/// One (query row, head) of [`causal`]: the cache, where the head's keys
/// and values sit in a row, and how many positions the query sees.
struct Head<'a> {
    k: &'a [f32],
    v: &'a [f32],
    kv_row: usize,
    off: usize,
    len: usize,
    scale: f32,
}

impl Head<'_> {
    fn key(&self, j: usize, hd: usize) -> &[f32] {
        &self.k[j * self.kv_row + self.off..][..hd]
    }

    fn value(&self, j: usize, hd: usize) -> &[f32] {
        &self.v[j * self.kv_row + self.off..][..hd]
    }
}

/// Softmax of `scores` in place (max subtracted); returns `1 / sum`.
fn softmax_unnormalized(scores: &mut [f32]) -> f32 {
    let max = scores.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
    let mut total = 0f32;
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
        total += *s;
    }
    if total > 0.0 {
        1.0 / total
    } else {
        0.0
    }
}

/// [`causal`]'s (row, head) for any head size.
fn plain_head(qh: &[f32], h: &Head<'_>, scores: &mut Vec<f32>, o: &mut [f32]) {
    let hd = qh.len();
    scores.clear();
    scores.extend((0..h.len).map(|j| crate::dot(qh, h.key(j, hd)) * h.scale));
    let inv = softmax_unnormalized(scores);
    o.fill(0.0);
    for (j, &p) in scores.iter().enumerate() {
        axpy(p * inv, h.value(j, hd), o);
    }
}

/// [`causal`]'s (row, head) for head sizes of `8 * C` in AVX2: the query
/// and the output stay in registers while the keys and values stream past.
#[cfg(target_arch = "x86_64")]
mod fast {
    use super::{softmax_unnormalized, Head};
    use crate::simd::hsum;
    use std::arch::x86_64::*;

    /// Returns false (and does nothing) when the slices do not hold what
    /// `h` describes.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn head<const C: usize>(
        qh: &[f32],
        h: &Head<'_>,
        scores: &mut Vec<f32>,
        o: &mut [f32],
    ) -> bool {
        let hd = 8 * C;
        let fits = |x: &[f32]| h.len == 0 || (h.len - 1) * h.kv_row + h.off + hd <= x.len();
        if qh.len() != hd || o.len() != hd || h.off + hd > h.kv_row || !fits(h.k) || !fits(h.v) {
            return false;
        }
        let mut qv = [_mm256_setzero_ps(); C];
        for (c, r) in qv.iter_mut().enumerate() {
            *r = _mm256_loadu_ps(qh.as_ptr().add(8 * c));
        }
        scores.clear();
        scores.reserve(h.len);
        for j in 0..h.len {
            let kp = h.k.as_ptr().add(j * h.kv_row + h.off);
            let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            for c in (0..C).step_by(2) {
                a0 = _mm256_fmadd_ps(qv[c], _mm256_loadu_ps(kp.add(8 * c)), a0);
                a1 = _mm256_fmadd_ps(qv[c + 1], _mm256_loadu_ps(kp.add(8 * c + 8)), a1);
            }
            scores.push(hsum(_mm256_add_ps(a0, a1)) * h.scale);
        }
        let inv = softmax_unnormalized(scores);
        let mut ov = [_mm256_setzero_ps(); C];
        for (j, &p) in scores.iter().enumerate() {
            let vp = h.v.as_ptr().add(j * h.kv_row + h.off);
            let w = _mm256_set1_ps(p * inv);
            for (c, r) in ov.iter_mut().enumerate() {
                *r = _mm256_fmadd_ps(w, _mm256_loadu_ps(vp.add(8 * c)), *r);
            }
        }
        for (c, r) in ov.iter().enumerate() {
            _mm256_storeu_ps(o.as_mut_ptr().add(8 * c), *r);
        }
        true
    }
}

crate::simd_fn! {
    /// `y += a x`.
    fn axpy<M>(a: f32, x: &[f32], y: &mut [f32]) {
        for (yv, &xv) in y.iter_mut().zip(x) {
            *yv = M::madd(a, xv, *yv);
        }
    }
}

/// `f` over matching pieces of `x` and `y` (whole rows of `width`
/// values), in parallel when they are long.
fn zip_pieces(x: &mut [f32], y: &[f32], width: usize, f: impl Fn(&mut [f32], &[f32]) + Sync) {
    let per = piece_rows(x.len() / width.max(1), width) * width.max(1);
    x.par_chunks_mut(per)
        .zip(y.par_chunks(per))
        .for_each(|(a, b)| f(a, b));
}

/// RMS norm of each `w.len()`-long row of `x` into `out`:
/// `x / sqrt(mean(x^2) + eps) * w`. Rows in parallel when there are many.
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let d = w.len();
    if d == 0 {
        return;
    }
    let per = piece_rows(x.len() / d, d) * d;
    x.par_chunks(per)
        .zip(out.par_chunks_mut(per))
        .for_each(|(xc, oc)| {
            for (xr, orow) in xc.chunks_exact(d).zip(oc.chunks_exact_mut(d)) {
                let ms = crate::dot(xr, xr) / d as f32;
                let inv = 1.0 / (ms + eps).sqrt();
                for ((o, &xv), &wv) in orow.iter_mut().zip(xr).zip(w) {
                    *o = xv * inv * wv;
                }
            }
        });
}

/// `x += y`, elementwise (the residual connection), in parallel pieces
/// when long.
pub fn add(x: &mut [f32], y: &[f32]) {
    zip_pieces(x, y, 1, |a, b| {
        for (u, v) in a.iter_mut().zip(b) {
            *u += v;
        }
    });
}

/// Rotary position embedding, in place, of `x`: rows of `heads x head_dim`
/// at positions `pos0, pos0 + 1, ...`; the first `2 * inv_freq.len()` values
/// of each head rotate, pair `p` by angle `pos * inv_freq[p]`. Pairs are
/// `(2p, 2p + 1)` (`neox == false`, GGML's llama layout) or
/// `(p, p + inv_freq.len())` (`neox == true`, Qwen2's).
pub fn rope(
    x: &mut [f32],
    heads: usize,
    head_dim: usize,
    pos0: usize,
    inv_freq: &[f32],
    neox: bool,
) {
    let half = inv_freq.len();
    if heads == 0 || head_dim == 0 || 2 * half > head_dim {
        return;
    }
    let width = heads * head_dim;
    let per = piece_rows(x.len() / width, width) * width;
    x.par_chunks_mut(per).enumerate().for_each(|(k, piece)| {
        let mut cs = vec![(0f32, 0f32); half];
        for (i, row) in piece.chunks_exact_mut(width).enumerate() {
            let pos = (pos0 + k * per / width + i) as f32;
            for (c, &f) in cs.iter_mut().zip(inv_freq) {
                let a = pos * f;
                *c = (a.cos(), a.sin());
            }
            for head in row.chunks_exact_mut(head_dim) {
                for (p, &(c, s)) in cs.iter().enumerate() {
                    let (a, b) = if neox {
                        (p, p + half)
                    } else {
                        (2 * p, 2 * p + 1)
                    };
                    let (x0, x1) = (head[a], head[b]);
                    head[a] = x0 * c - x1 * s;
                    head[b] = x0 * s + x1 * c;
                }
            }
        }
    });
}

/// `gate = gelu(gate) * up`, elementwise, with GELU's tanh approximation
/// `0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))`.
pub fn gelu_mul(gate: &mut [f32], up: &[f32]) {
    const C: f32 = 0.797_884_6; // sqrt(2 / pi)
    zip_pieces(gate, up, 1, |gc, uc| {
        for (g, &u) in gc.iter_mut().zip(uc) {
            let x = *g;
            *g = 0.5 * x * (1.0 + (C * (x + 0.044_715 * x * x * x)).tanh()) * u;
        }
    });
}

/// `gate = silu(gate) * up`, elementwise.
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    zip_pieces(gate, up, 1, |gc, uc| {
        for (g, &u) in gc.iter_mut().zip(uc) {
            *g = *g / (1.0 + (-*g).exp()) * u;
        }
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testutil::values;

    /// Attention by the definition, in f64, one (row, head) at a time.
    fn naive(q: &[f32], k: &[f32], v: &[f32], pos0: usize, d: AttnDims, n: usize) -> Vec<f32> {
        let first = |i: usize| d.window.map_or(0, |w| (pos0 + i + 1).saturating_sub(w));
        let hd = d.head_dim;
        let mut out = vec![0f32; n * d.heads * hd];
        for i in 0..n {
            for h in 0..d.heads {
                let kvh = h * d.kv_heads / d.heads;
                let qv = &q[(i * d.heads + h) * hd..][..hd];
                let at = |j: usize| (j * d.kv_heads + kvh) * hd;
                let s: Vec<f64> = (first(i)..=pos0 + i)
                    .map(|j| {
                        qv.iter()
                            .zip(&k[at(j)..at(j) + hd])
                            .map(|(a, b)| *a as f64 * *b as f64)
                            .sum::<f64>()
                            / (hd as f64).sqrt()
                    })
                    .collect();
                let m = s.iter().cloned().fold(f64::MIN, f64::max);
                let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
                let z: f64 = e.iter().sum();
                for c in 0..hd {
                    let o: f64 = (first(i)..=pos0 + i)
                        .map(|j| e[j - first(i)] / z * v[at(j) + c] as f64)
                        .sum();
                    out[(i * d.heads + h) * hd + c] = o as f32;
                }
            }
        }
        out
    }

    #[test]
    fn attention_matches_the_definition() {
        for &(heads, kv_heads, hd, pos0, n, window) in &[
            (9, 3, 64, 0, 5, None),
            (14, 2, 64, 7, 1, None),
            (4, 4, 8, 3, 6, None),
            (2, 1, 16, 0, 1, None),
            (4, 2, 128, 2, 3, None),
            (2, 2, 256, 1, 2, None),
            // Sliding windows: shorter than the rows, longer, in the fast
            // and the plain heads, with and without cached positions.
            (4, 2, 64, 0, 9, Some(3)),
            (4, 2, 128, 6, 4, Some(5)),
            (2, 1, 24, 5, 7, Some(4)),
            (2, 2, 256, 2, 3, Some(1)),
            (3, 3, 16, 1, 3, Some(50)),
        ] {
            let d = AttnDims {
                heads,
                kv_heads,
                head_dim: hd,
                window,
            };
            let q = values(n * heads * hd, 1);
            let k = values((pos0 + n) * kv_heads * hd, 2);
            let v = values((pos0 + n) * kv_heads * hd, 3);
            let mut out = vec![f32::NAN; n * heads * hd];
            causal(&q, &k, &v, pos0, d, &mut out);
            crate::testutil::close(&out, &naive(&q, &k, &v, pos0, d, n), "attention");
        }
    }

    #[test]
    #[allow(clippy::needless_range_loop)]
    fn rope_rotates_the_right_pairs() {
        let (heads, hd) = (2, 8);
        let inv: Vec<f32> = (0..4)
            .map(|p| 1.0 / 10000f32.powf(2.0 * p as f32 / 8.0))
            .collect();
        let x = values(3 * heads * hd, 4);
        for neox in [false, true] {
            let mut y = x.clone();
            rope(&mut y, heads, hd, 5, &inv, neox);
            for i in 0..3 {
                for h in 0..heads {
                    let base = (i * heads + h) * hd;
                    for p in 0..4 {
                        let (a, b) = if neox { (p, p + 4) } else { (2 * p, 2 * p + 1) };
                        let ang = (5 + i) as f64 * inv[p] as f64;
                        let (x0, x1) = (x[base + a] as f64, x[base + b] as f64);
                        let want = [
                            x0 * ang.cos() - x1 * ang.sin(),
                            x0 * ang.sin() + x1 * ang.cos(),
                        ];
                        for (got, w) in [y[base + a], y[base + b]].iter().zip(want) {
                            assert!((*got as f64 - w).abs() < 1e-5, "{neox} {i} {h} {p}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn norm_and_gate_match_their_formulas() {
        let x = values(3 * 40, 5);
        let w = values(40, 6);
        let mut out = vec![0f32; x.len()];
        rms_norm(&x, &w, 1e-5, &mut out);
        for (xr, orow) in x.chunks(40).zip(out.chunks(40)) {
            let ms = xr.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / 40.0;
            let want: Vec<f32> = xr
                .iter()
                .zip(&w)
                .map(|(a, b)| (*a as f64 / (ms + 1e-5).sqrt() * *b as f64) as f32)
                .collect();
            crate::testutil::close(orow, &want, "rms_norm");
        }
        let mut g = values(50, 7);
        let u = values(50, 8);
        let want: Vec<f32> = g
            .iter()
            .zip(&u)
            .map(|(a, b)| (*a as f64 / (1.0 + (-*a as f64).exp()) * *b as f64) as f32)
            .collect();
        silu_mul(&mut g, &u);
        crate::testutil::close(&g, &want, "silu_mul");
        let mut g = values(50, 9);
        let want: Vec<f32> = g
            .iter()
            .zip(&u)
            .map(|(a, b)| {
                let x = *a as f64;
                let t = ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh();
                (0.5 * x * (1.0 + t) * *b as f64) as f32
            })
            .collect();
        gelu_mul(&mut g, &u);
        crate::testutil::close(&g, &want, "gelu_mul");
        // Known values of the tanh approximation (PyTorch's
        // `gelu(x, approximate='tanh')`).
        for (x, want) in [(1.0f32, 0.841_192), (-0.5, -0.154_286), (3.0, 2.996_363)] {
            let mut g = [x];
            gelu_mul(&mut g, &[1.0]);
            assert!((g[0] - want).abs() < 1e-5, "gelu({x}) = {}", g[0]);
        }
    }
}
