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
    /// Their magnitudes.
    aq: Vec<u8>,
    /// Per 32 values, 8 lanes: the first 16 values' scale in lanes 0-3,
    /// the second 16's in lanes 4-7 (the integer dot's lane order).
    sv: Vec<f32>,
    /// The scale per 16 values, as unpacked.
    sc: Vec<f32>,
    /// The minimum per 16 values.
    mn: Vec<f32>,
}

#[inline(always)]
unsafe fn task_with<F: Format, const V: bool>(
    w: &QMatrix<'_>,
    acts: &QActs,
    first: usize,
    out: &mut [f32],
) {
    let (n, cols) = (acts.n, w.cols);
    let rows = out.len() / n.max(1);
    let chunks = cols / 32;
    let mut row = Row {
        q: vec![0; cols],
        aq: vec![0; cols],
        sv: vec![0.0; 8 * chunks],
        sc: vec![0.0; cols / 16],
        mn: vec![0.0; cols / 16],
    };
    // Per activation row of the group: `sums[k] * d[k / 2]` per 16 values.
    let mut dsums = vec![0f32; GROUP * cols / 16];
    for g0 in (0..n).step_by(GROUP) {
        let g1 = (g0 + GROUP).min(n);
        if F::HAS_MIN {
            for i in g0..g1 {
                let ds = &mut dsums[(i - g0) * cols / 16..(i - g0 + 1) * cols / 16];
                let s = &acts.sums[i * cols / 16..(i + 1) * cols / 16];
                let d = &acts.d[i * cols / 32..(i + 1) * cols / 32];
                for (k, v) in ds.iter_mut().enumerate() {
                    *v = s[k] as f32 * d[k / 2];
                }
            }
        }
        for r in 0..rows {
            unpack::<F>(w.row(first + r), &mut row);
            for i in g0..g1 {
                let qa = &acts.qs[i * cols..(i + 1) * cols];
                let da = &acts.d[i * cols / 32..(i + 1) * cols / 32];
                let mut v = dot::<V>(&row, qa, da, chunks);
                if F::HAS_MIN {
                    v += min_term(
                        &row.mn,
                        &dsums[(i - g0) * cols / 16..(i - g0 + 1) * cols / 16],
                    );
                }
                out[r * n + i] = v;
            }
        }
    }
}

/// Unpack a row of `F` blocks into `row`.
#[inline(always)]
unsafe fn unpack<F: Format>(bytes: &[u8], row: &mut Row) {
    super::formats::unpack_row::<F>(bytes, &mut row.q, &mut row.sc, &mut row.mn);
    for (qc, ac) in row.q.chunks_exact(32).zip(row.aq.chunks_exact_mut(32)) {
        let x = _mm256_loadu_si256(qc.as_ptr() as *const __m256i);
        _mm256_storeu_si256(ac.as_mut_ptr() as *mut __m256i, _mm256_sign_epi8(x, x));
    }
    for (c, s) in row.sv.chunks_exact_mut(8).enumerate() {
        let (a, b) = (row.sc[2 * c], row.sc[2 * c + 1]);
        s.copy_from_slice(&[a, a, a, a, b, b, b, b]);
    }
}

/// The scaled integer dot of the unpacked row with one activation row, two
/// accumulators so that consecutive chunks do not wait on each other.
#[inline(always)]
unsafe fn dot<const V: bool>(row: &Row, qa: &[i8], da: &[f32], chunks: usize) -> f32 {
    let chunks = chunks
        .min(qa.len() / 32)
        .min(da.len())
        .min(row.q.len() / 32)
        .min(row.aq.len() / 32)
        .min(row.sv.len() / 8);
    let mut acc0 = _mm256_setzero_ps();
    let mut acc1 = _mm256_setzero_ps();
    let mut c = 0;
    while c + 1 < chunks {
        acc0 = _mm256_fmadd_ps(
            chunk::<V>(row, qa, c),
            _mm256_set1_ps(*da.get_unchecked(c)),
            acc0,
        );
        acc1 = _mm256_fmadd_ps(
            chunk::<V>(row, qa, c + 1),
            _mm256_set1_ps(*da.get_unchecked(c + 1)),
            acc1,
        );
        c += 2;
    }
    if c < chunks {
        acc0 = _mm256_fmadd_ps(
            chunk::<V>(row, qa, c),
            _mm256_set1_ps(*da.get_unchecked(c)),
            acc0,
        );
    }
    hsum(_mm256_add_ps(acc0, acc1))
}

/// Chunk `c` of the pair: its integer dot, scaled by the row's scales.
///
/// # Safety
/// `c` is below the chunks of `row` and `qa`.
#[inline(always)]
unsafe fn chunk<const V: bool>(row: &Row, qa: &[i8], c: usize) -> __m256 {
    let q = _mm256_loadu_si256(row.q.as_ptr().add(32 * c) as *const __m256i);
    let aq = _mm256_loadu_si256(row.aq.as_ptr().add(32 * c) as *const __m256i);
    let a = _mm256_loadu_si256(qa.as_ptr().add(32 * c) as *const __m256i);
    let p = _mm256_cvtepi32_ps(dot_u::<V>(aq, _mm256_sign_epi8(a, q)));
    _mm256_mul_ps(p, _mm256_loadu_ps(row.sv.as_ptr().add(8 * c)))
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
