//! The prompt path in AVX2 (with AVX-512 VNNI, [`super::group_vnni`]
//! instead): each weight row of a task is unpacked once
//! ([`super::formats`]) into its values, their magnitudes, a scale vector
//! per 32 values and a minimum per 32, and dotted with the activation rows
//! of a group, four at a time (one pass over the weight row serves four
//! rows).
//!
//! Each pair's arithmetic is exactly that of the decoding path
//! ([`super::fused`]): the same integer lanes per 32 values, the same scale
//! products, the same two accumulators (even and odd chunks), the same
//! eight-lane sum of the minimums' terms, summed in the same order. So a
//! token's logits do not depend on how the tokens were batched: a prompt
//! run at once, token by token, or after a reused prefix gives the same
//! bits (`tests.rs` checks it).

#![cfg(target_arch = "x86_64")]

use super::formats::Format;
use super::fused::{dot_u, finish};
use super::matmul::GROUP;
use super::{QActs, QMatrix};
use crate::simd::hsum;
use std::arch::x86_64::*;

/// [`task_with`] in the best build the CPU has.
///
/// # Safety
/// The CPU must have AVX2 and FMA; `acts.cols == w.cols`, `w.qtype` is
/// `F`'s, and `out` (`rows x n`) covers rows of `w` from `first`.
pub(crate) unsafe fn task<F: Format>(w: &QMatrix<'_>, acts: &QActs, first: usize, out: &mut [f32]) {
    if crate::simd::has_avx512_vnni() {
        task_vnni::<F>(w, acts, first, out)
    } else {
        task_avx2::<F>(w, acts, first, out)
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn task_avx2<F: Format>(w: &QMatrix<'_>, acts: &QActs, first: usize, out: &mut [f32]) {
    task_with::<F>(w, acts, first, out)
}

#[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vnni,avx512vl")]
unsafe fn task_vnni<F: Format>(w: &QMatrix<'_>, acts: &QActs, first: usize, out: &mut [f32]) {
    super::group_vnni::task::<F>(w, acts, first, out)
}

/// One weight row, unpacked.
pub(super) struct Row {
    /// The values (signed).
    pub(super) q: Vec<i8>,
    /// Their magnitudes (the signs go onto the activations; AVX2 only).
    pub(super) u: Vec<u8>,
    /// Per 32 values, 8 lanes: the first 16 values' scale in lanes 0-3,
    /// the second 16's in lanes 4-7 (the integer dot's lane order).
    pub(super) sv: Vec<f32>,
    /// The scale per 16 values, as unpacked.
    pub(super) sc: Vec<f32>,
    /// The minimum per 16 values, as unpacked.
    pub(super) mn: Vec<f32>,
    /// The minimum per 32 values (every format's minimum covers 32), with
    /// zeros up to a multiple of 8.
    pub(super) mn32: Vec<f32>,
    /// Per 32 values, 8 lanes: `-128` times the sum of each lane's four
    /// values, which takes the offset of [`QActs::us`] back out of a
    /// `dpbusd` (VNNI only).
    pub(super) corr: Vec<i32>,
}

impl Row {
    pub(super) fn new(cols: usize) -> Self {
        Row {
            q: vec![0; cols],
            u: vec![0; cols],
            sv: vec![0.0; cols / 4],
            sc: vec![0.0; cols / 16],
            mn: vec![0.0; cols / 16],
            mn32: vec![0.0; (cols / 32).next_multiple_of(8)],
            corr: vec![0; cols / 4],
        }
    }
}

/// Activation rows per micro-kernel call.
pub(super) const TILE: usize = 4;

#[inline(always)]
unsafe fn task_with<F: Format>(w: &QMatrix<'_>, acts: &QActs, first: usize, out: &mut [f32]) {
    let (n, cols) = (acts.n, w.cols);
    let rows = out.len() / n.max(1);
    let mut row = Row::new(cols);
    let mut res = [0f32; TILE];
    let stride = row.mn32.len();
    let mut dpad = Vec::new();
    for g0 in (0..n).step_by(GROUP) {
        let g1 = (g0 + GROUP).min(n);
        if F::HAS_MIN {
            pad_dsums(acts, g0, g1, stride, &mut dpad);
        }
        for r in 0..rows {
            unpack::<F, true>(w.row(first + r), &mut row);
            let mut i = g0;
            while i < g1 {
                let t = (g1 - i).min(TILE);
                dots(
                    &row,
                    acts,
                    i,
                    t,
                    F::HAS_MIN.then(|| &dpad[(i - g0) * stride..]),
                    &mut res,
                );
                for (j, &v) in res[..t].iter().enumerate() {
                    out[r * n + i + j] = v;
                }
                i += t;
            }
        }
    }
}

/// Unpack a row of `F` blocks into `row`.
#[inline(always)]
pub(super) unsafe fn unpack<F: Format, const ABS: bool>(bytes: &[u8], row: &mut Row) {
    super::formats::unpack_row::<F>(bytes, &mut row.q, &mut row.sc, &mut row.mn);
    if ABS {
        for (qc, uc) in row.q.chunks_exact(32).zip(row.u.chunks_exact_mut(32)) {
            let x = _mm256_loadu_si256(qc.as_ptr() as *const __m256i);
            _mm256_storeu_si256(uc.as_mut_ptr() as *mut __m256i, _mm256_sign_epi8(x, x));
        }
    }
    for (c, s) in row.sv.chunks_exact_mut(8).enumerate() {
        let (a, b) = (row.sc[2 * c], row.sc[2 * c + 1]);
        s.copy_from_slice(&[a, a, a, a, b, b, b, b]);
    }
    if F::HAS_MIN {
        for (m, pair) in row.mn32.iter_mut().zip(row.mn.chunks_exact(2)) {
            *m = pair[0];
        }
    }
}

/// The dots of the unpacked row with activation rows `i..i + t`
/// (`t <= TILE`) into `res[..t]`, in [`super::fused`]'s arithmetic.
#[inline(always)]
unsafe fn dots(
    row: &Row,
    acts: &QActs,
    i: usize,
    t: usize,
    mins: Option<&[f32]>,
    res: &mut [f32; TILE],
) {
    let cols = acts.cols;
    let chunks = (cols / 32)
        .min(row.q.len() / 32)
        .min(row.u.len() / 32)
        .min(row.sv.len() / 8);
    let t = t.min(TILE).min(acts.n.saturating_sub(i));
    let mut qa = [std::ptr::null::<i8>(); TILE];
    let mut da = [std::ptr::null::<f32>(); TILE];
    for j in 0..t {
        qa[j] = acts.qs.as_ptr().add((i + j) * cols);
        da[j] = acts.d.as_ptr().add((i + j) * cols / 32);
    }
    // Accumulators: per row, one for even chunks and one for odd ones.
    let mut even = [_mm256_setzero_ps(); TILE];
    let mut odd = [_mm256_setzero_ps(); TILE];
    let mut c = 0;
    while c < chunks {
        step(row, &qa, &da, t, c, &mut even);
        if c + 1 < chunks {
            step(row, &qa, &da, t, c + 1, &mut odd);
        }
        c += 2;
    }
    for j in 0..t {
        let dot = hsum(_mm256_add_ps(even[j], odd[j]));
        let stride = row.mn32.len();
        res[j] = match mins.and_then(|m| m.get(j * stride..(j + 1) * stride)) {
            Some(ds) => finish(dot, min_term(&row.mn32, ds)),
            None => dot,
        };
    }
}

/// Chunk `c` of the row against rows `..t` of the tile, into `acc`.
#[inline(always)]
unsafe fn step(
    row: &Row,
    qa: &[*const i8; TILE],
    da: &[*const f32; TILE],
    t: usize,
    c: usize,
    acc: &mut [__m256; TILE],
) {
    let u = _mm256_loadu_si256(row.u.as_ptr().add(32 * c) as *const __m256i);
    let q = _mm256_loadu_si256(row.q.as_ptr().add(32 * c) as *const __m256i);
    let sv = _mm256_loadu_ps(row.sv.as_ptr().add(8 * c));
    for j in 0..TILE {
        if j < t {
            let a = _mm256_loadu_si256(qa[j].add(32 * c) as *const __m256i);
            let p = _mm256_cvtepi32_ps(dot_u::<false>(u, _mm256_sign_epi8(a, q)));
            let s = _mm256_mul_ps(sv, _mm256_set1_ps(*da[j].add(c)));
            acc[j] = _mm256_fmadd_ps(p, s, acc[j]);
        }
    }
}

/// The minimums' term: `sum_c mn32[c] * ds[c]` in eight lanes (lane
/// `c % 8`), as [`super::fused`] sums it. Both slices are padded with
/// zeros to a multiple of 8 ([`pad_dsums`]).
#[inline(always)]
pub(super) unsafe fn min_term(mn32: &[f32], ds: &[f32]) -> __m256 {
    let n = ds.len().min(mn32.len());
    let mut acc = _mm256_setzero_ps();
    let mut c = 0;
    while c + 8 <= n {
        acc = _mm256_fmadd_ps(
            _mm256_loadu_ps(mn32.as_ptr().add(c)),
            _mm256_loadu_ps(ds.as_ptr().add(c)),
            acc,
        );
        c += 8;
    }
    acc
}

/// The `dsums` of activation rows `g0..g1`, each `stride` long (a multiple
/// of 8, at least the row's chunks) with zeros past the row's end, so that
/// [`min_term`] reads whole vectors (zeros times the zero minimums past the
/// end, as [`super::fused`] pads its last eight).
pub(super) fn pad_dsums(acts: &QActs, g0: usize, g1: usize, stride: usize, out: &mut Vec<f32>) {
    let per = (acts.cols / 32).min(stride);
    out.clear();
    out.resize(g1.saturating_sub(g0) * stride, 0.0);
    for (i, o) in (g0..g1).zip(out.chunks_exact_mut(stride.max(1))) {
        if let Some(src) = acts
            .dsums
            .get(i * (acts.cols / 32)..i * (acts.cols / 32) + per)
        {
            o[..per].copy_from_slice(src);
        }
    }
}
