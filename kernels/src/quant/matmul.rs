//! The products: weight rows split over rayon's threads. Within a task,
//! with few activation rows (decoding), each weight block is decoded in
//! registers and dotted at once ([`super::fused`]); with more (a prompt),
//! activation rows go in groups of [`GROUP`], and each weight row of the
//! task is unpacked once ([`super::formats`]) and dotted with every
//! activation row of the group ([`super::group`] in AVX2, or the portable
//! build here).

use super::formats::{self, Format};
use super::{QActs, QMatrix, QType, QuantError};
use rayon::prelude::*;

/// Activation rows per group: the group's 8-bit rows stay in cache while
/// the task's weight rows pass over them.
pub(super) const GROUP: usize = 64;

/// The least work (multiply-adds) worth a task of its own.
const MIN_TASK_MACS: usize = 1 << 16;

/// Up to this many activation rows, each product decodes the weights in
/// registers ([`super::fused`]) rather than unpacking a row once for all.
const FUSED_ROWS: usize = 4;

/// `y = x W^T` for quantized activations `acts` (`n x cols`): `y` becomes
/// `n x rows`, row-major.
pub fn matmul(w: &QMatrix<'_>, acts: &QActs, y: &mut [f32]) -> Result<(), QuantError> {
    matmul_with(w, acts, y, false)
}

/// [`matmul`], in the portable build when `portable` (for tests).
pub(crate) fn matmul_with(
    w: &QMatrix<'_>,
    acts: &QActs,
    y: &mut [f32],
    portable: bool,
) -> Result<(), QuantError> {
    check(w, acts, y)?;
    let n = acts.n;
    if n == 1 {
        run(w, acts, y, portable);
        return Ok(());
    }
    // Computed transposed (`rows x n`: each task owns whole weight rows),
    // then transposed into place.
    let mut yt = vec![0f32; w.rows * n];
    run(w, acts, &mut yt, portable);
    transpose(&yt, w.rows, n, y);
    Ok(())
}

/// `y` (`cols x rows`) = the transpose of `x` (`rows x cols`), in square
/// tiles so both sides stay in cache, bands of `y` in parallel when large.
fn transpose(x: &[f32], rows: usize, cols: usize, y: &mut [f32]) {
    const TILE: usize = 16;
    if rows == 0 || cols == 0 {
        return;
    }
    let band = crate::piece_rows(cols, rows).next_multiple_of(TILE);
    y.par_chunks_mut(band * rows)
        .enumerate()
        .for_each(|(k, yb)| {
            let (c_lo, c_hi) = (k * band, (k * band + yb.len() / rows).min(cols));
            for r0 in (0..rows).step_by(TILE) {
                let r1 = (r0 + TILE).min(rows);
                for c0 in (c_lo..c_hi).step_by(TILE) {
                    let c1 = (c0 + TILE).min(c_hi);
                    for r in r0..r1 {
                        for c in c0..c1 {
                            yb[(c - c_lo) * rows + r] = x[r * cols + c];
                        }
                    }
                }
            }
        });
}

/// `y = W a` for one activation row (`acts` has `n = 1`), `y` `rows` long.
pub fn matvec_into(w: &QMatrix<'_>, acts: &QActs, y: &mut [f32]) -> Result<(), QuantError> {
    check(w, acts, y)?;
    if acts.n != 1 {
        return Err(QuantError::Size {
            what: "activation rows of a matrix-vector product",
            got: acts.n,
            want: 1,
        });
    }
    run(w, acts, y, false);
    Ok(())
}

fn check(w: &QMatrix<'_>, acts: &QActs, y: &[f32]) -> Result<(), QuantError> {
    if acts.cols != w.cols {
        return Err(QuantError::Size {
            what: "activation columns",
            got: acts.cols,
            want: w.cols,
        });
    }
    if y.len() != acts.n * w.rows {
        return Err(QuantError::Size {
            what: "output",
            got: y.len(),
            want: acts.n * w.rows,
        });
    }
    Ok(())
}

/// `yt` (`rows x n`) = `W x^T`, parallel over chunks of weight rows.
fn run(w: &QMatrix<'_>, acts: &QActs, yt: &mut [f32], portable: bool) {
    match w.qtype {
        QType::Q4_0 => run_with::<formats::Q4_0>(w, acts, yt, portable),
        QType::Q4_1 => run_with::<formats::Q4_1>(w, acts, yt, portable),
        QType::Q5_0 => run_with::<formats::Q5_0>(w, acts, yt, portable),
        QType::Q5_1 => run_with::<formats::Q5_1>(w, acts, yt, portable),
        QType::Q8_0 => run_with::<formats::Q8_0>(w, acts, yt, portable),
        QType::Q4_K => run_with::<formats::Q4K>(w, acts, yt, portable),
        QType::Q5_K => run_with::<formats::Q5K>(w, acts, yt, portable),
        QType::Q6_K => run_with::<formats::Q6K>(w, acts, yt, portable),
    }
}

fn run_with<F: Format>(w: &QMatrix<'_>, acts: &QActs, yt: &mut [f32], portable: bool) {
    let n = acts.n;
    if w.rows == 0 || n == 0 {
        return;
    }
    // About four tasks per thread, so uneven progress evens out, but none
    // under ~64K multiply-adds: waking a thread for less costs more than it
    // saves (decoding runs hundreds of small products per token). One
    // thread runs it all here, without handing it to the pool and waiting.
    let threads = rayon::current_num_threads();
    let min_rows = MIN_TASK_MACS.div_ceil(w.cols * n).max(1);
    let chunk = w.rows.div_ceil(threads * 4).max(min_rows);
    if threads == 1 || w.rows <= chunk {
        task::<F>(w, acts, 0, yt, portable);
        return;
    }
    yt.par_chunks_mut(chunk * n)
        .enumerate()
        .for_each(|(t, out)| task::<F>(w, acts, t * chunk, out, portable));
}

/// Weight rows `first..first + out.len() / n` into `out` (`rows x n`).
fn task<F: Format>(w: &QMatrix<'_>, acts: &QActs, first: usize, out: &mut [f32], portable: bool) {
    #[cfg(target_arch = "x86_64")]
    if !portable && acts.n <= FUSED_ROWS && super::fused::available() {
        // SAFETY: the CPU has AVX2, FMA and F16C; `check` matched the
        // shapes and `run` hands out whole rows of `w`.
        unsafe { super::fused::task(w, acts, first, out) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if !portable && crate::simd::has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA; as above for the shapes.
        unsafe { super::group::task::<F>(w, acts, first, out) };
        return;
    }
    task_body::<F>(w, acts, first, out)
}

/// The portable dot of an unpacked weight row with an 8-bit activation
/// row: `sum_c da_c * sum_{k in c} (sc_k * (q_k . qa_k) + mn_k * sums_k)`
/// over 32-value chunks `c` (the `mn` terms only when `with_min`).
#[inline(always)]
fn portable_dot(
    q: &[i8],
    sc: &[f32],
    mn: &[f32],
    qa: &[i8],
    da: &[f32],
    sums: &[i32],
    with_min: bool,
) -> f32 {
    let mut acc = 0f32;
    for (c, ((qc, ac), d)) in q
        .chunks_exact(32)
        .zip(qa.chunks_exact(32))
        .zip(da)
        .enumerate()
    {
        let mut s = [0i32; 2];
        for (k, sk) in s.iter_mut().enumerate() {
            let (qk, ak) = (&qc[16 * k..16 * k + 16], &ac[16 * k..16 * k + 16]);
            *sk = qk
                .iter()
                .zip(ak)
                .map(|(&x, &y)| (x as i16 * y as i16) as i32)
                .sum();
        }
        let mut v = sc[2 * c] * s[0] as f32 + sc[2 * c + 1] * s[1] as f32;
        if with_min {
            v += mn[2 * c] * sums[2 * c] as f32 + mn[2 * c + 1] * sums[2 * c + 1] as f32;
        }
        acc += d * v;
    }
    acc
}

#[inline(always)]
fn task_body<F: Format>(w: &QMatrix<'_>, acts: &QActs, first: usize, out: &mut [f32]) {
    let (n, cols) = (acts.n, w.cols);
    let rows = out.len() / n;
    let mut q = vec![0i8; cols];
    let mut sc = vec![0f32; cols / 16];
    let mut mn = vec![0f32; cols / 16];
    for g0 in (0..n).step_by(GROUP) {
        let g1 = (g0 + GROUP).min(n);
        for r in 0..rows {
            formats::unpack_row::<F>(w.row(first + r), &mut q, &mut sc, &mut mn);
            for i in g0..g1 {
                out[r * n + i] = portable_dot(
                    &q,
                    &sc,
                    &mn,
                    &acts.qs[i * cols..(i + 1) * cols],
                    &acts.d[i * cols / 32..(i + 1) * cols / 32],
                    &acts.sums[i * cols / 16..(i + 1) * cols / 16],
                    F::HAS_MIN,
                );
            }
        }
    }
}
