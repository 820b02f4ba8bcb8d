//! The prompt path in AVX2 (and AVX-512 VNNI where the CPU has it): each
//! weight row of a task is unpacked once ([`super::formats`]) into its
//! magnitudes, signs, a scale vector per 32 values and a minimum per 16, and
//! dotted with every activation row of a group. Per 32 values of a pair:
//! one load of each operand, `sign`, one integer dot (`vpdpbusd`, or
//! `maddubs` + `madd`), a convert and two multiplies. The minimums' term is
//! a dot of the row's minimums with the activation row's scaled sums per 16
//! (computed once per group), eight lanes at a time.

#![cfg(target_arch = "x86_64")]

use super::formats::Format;
use super::fused::{dot_u, hsum};
use super::matmul::GROUP;
use super::{QActs, QMatrix};
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
    task_with::<F, false>(w, acts, first, out)
}

#[target_feature(enable = "avx2,fma,avx512vnni,avx512vl")]
unsafe fn task_vnni<F: Format>(w: &QMatrix<'_>, acts: &QActs, first: usize, out: &mut [f32]) {
    task_with::<F, true>(w, acts, first, out)
}

/// One weight row, unpacked.
struct Row {
    /// The values (signed).
    q: Vec<i8>,
    /// The integer dot's weight operand (unsigned bytes): with VNNI, the
    /// values plus the format's offset (whose term joins the minimums);
    /// without, their magnitudes (the signs go onto the activations).
    u: Vec<u8>,
    /// Per 32 values, 8 lanes: the first 16 values' scale in lanes 0-3,
    /// the second 16's in lanes 4-7 (the integer dot's lane order).
    sv: Vec<f32>,
    /// The scale per 16 values, as unpacked.
    sc: Vec<f32>,
    /// The minimum per 16 values (with VNNI, less the offset's term).
    mn: Vec<f32>,
}

/// Activation rows per micro-kernel call: one pass over the weight row
/// serves four activation rows, each with its own accumulator.
const TILE: usize = 4;

#[inline(always)]
unsafe fn task_with<F: Format, const V: bool>(
    w: &QMatrix<'_>,
    acts: &QActs,
    first: usize,
    out: &mut [f32],
) {
    let (n, cols) = (acts.n, w.cols);
    let rows = out.len() / n.max(1);
    let mut row = Row {
        q: vec![0; cols],
        u: vec![0; cols],
        sv: vec![0.0; cols / 4],
        sc: vec![0.0; cols / 16],
        mn: vec![0.0; cols / 16],
    };
    // Whether the minimums' term is needed: the format's own, or (with
    // VNNI) the offset's.
    let with_min = F::HAS_MIN || (V && F::OFFSET != 0);
    // Per activation row of the group: `sums[k] * d[k / 2]` per 16 values.
    let k16 = cols / 16;
    let mut dsums = vec![0f32; GROUP * k16];
    let mut res = [0f32; TILE];
    for g0 in (0..n).step_by(GROUP) {
        let g1 = (g0 + GROUP).min(n);
        if with_min {
            for i in g0..g1 {
                let ds = &mut dsums[(i - g0) * k16..(i - g0 + 1) * k16];
                let s = &acts.sums[i * k16..(i + 1) * k16];
                let d = &acts.d[i * cols / 32..(i + 1) * cols / 32];
                for (k, v) in ds.iter_mut().enumerate() {
                    *v = s[k] as f32 * d[k / 2];
                }
            }
        }
        for r in 0..rows {
            unpack::<F, V>(w.row(first + r), &mut row);
            let mut i = g0;
            while i < g1 {
                let t = (g1 - i).min(TILE);
                dots::<V>(&row, acts, i, t, &mut res);
                for (j, &v) in res[..t].iter().enumerate() {
                    let mut v = v;
                    if with_min {
                        let at = (i + j - g0) * k16;
                        v += min_term(&row.mn, &dsums[at..at + k16]);
                    }
                    out[r * n + i + j] = v;
                }
                i += t;
            }
        }
    }
}

/// Unpack a row of `F` blocks into `row`.
#[inline(always)]
unsafe fn unpack<F: Format, const V: bool>(bytes: &[u8], row: &mut Row) {
    super::formats::unpack_row::<F>(bytes, &mut row.q, &mut row.sc, &mut row.mn);
    if V {
        // `q + OFFSET` fits a byte unsigned (`q >= -OFFSET`, `q < 128`), so
        // wrapping addition is exact; `sc (u - OFFSET) = sc u - OFFSET sc`.
        let off = _mm256_set1_epi8(F::OFFSET as u8 as i8);
        for (qc, uc) in row.q.chunks_exact(32).zip(row.u.chunks_exact_mut(32)) {
            let x = _mm256_loadu_si256(qc.as_ptr() as *const __m256i);
            _mm256_storeu_si256(uc.as_mut_ptr() as *mut __m256i, _mm256_add_epi8(x, off));
        }
        if F::OFFSET != 0 {
            for (m, &s) in row.mn.iter_mut().zip(&row.sc) {
                *m -= F::OFFSET as f32 * s;
            }
        }
    } else {
        for (qc, uc) in row.q.chunks_exact(32).zip(row.u.chunks_exact_mut(32)) {
            let x = _mm256_loadu_si256(qc.as_ptr() as *const __m256i);
            _mm256_storeu_si256(uc.as_mut_ptr() as *mut __m256i, _mm256_sign_epi8(x, x));
        }
    }
    for (c, s) in row.sv.chunks_exact_mut(8).enumerate() {
        let (a, b) = (row.sc[2 * c], row.sc[2 * c + 1]);
        s.copy_from_slice(&[a, a, a, a, b, b, b, b]);
    }
}

/// The scaled integer dots of the unpacked row with activation rows
/// `i..i + t` (`t <= TILE`) into `res[..t]`, without the minimums' term.
#[inline(always)]
unsafe fn dots<const V: bool>(row: &Row, acts: &QActs, i: usize, t: usize, res: &mut [f32; TILE]) {
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
    let mut acc = [_mm256_setzero_ps(); TILE];
    for c in 0..chunks {
        let u = _mm256_loadu_si256(row.u.as_ptr().add(32 * c) as *const __m256i);
        let q = _mm256_loadu_si256(row.q.as_ptr().add(32 * c) as *const __m256i);
        let sv = _mm256_loadu_ps(row.sv.as_ptr().add(8 * c));
        for j in 0..TILE {
            if j < t {
                let a = _mm256_loadu_si256(qa[j].add(32 * c) as *const __m256i);
                let p = if V {
                    dot_u::<V>(u, a)
                } else {
                    dot_u::<V>(u, _mm256_sign_epi8(a, q))
                };
                let x = _mm256_mul_ps(_mm256_cvtepi32_ps(p), sv);
                acc[j] = _mm256_fmadd_ps(x, _mm256_set1_ps(*da[j].add(c)), acc[j]);
            }
        }
    }
    for j in 0..t {
        res[j] = hsum(acc[j]);
    }
}

/// `sum_k mn[k] * ds[k]`, eight at a time.
#[inline(always)]
unsafe fn min_term(mn: &[f32], ds: &[f32]) -> f32 {
    let n = mn.len().min(ds.len());
    let mut acc = _mm256_setzero_ps();
    let mut k = 0;
    while k + 8 <= n {
        acc = _mm256_fmadd_ps(
            _mm256_loadu_ps(mn.as_ptr().add(k)),
            _mm256_loadu_ps(ds.as_ptr().add(k)),
            acc,
        );
        k += 8;
    }
    let mut s = hsum(acc);
    while k < n {
        s += mn.get_unchecked(k) * ds.get_unchecked(k);
        k += 1;
    }
    s
}
