//! Q8_0 weights (and Q5_0, Q4_0: one scale per 32 values, no minimum)
//! repacked for AVX-512 VNNI as signed bytes: sixteen rows interleaved, so
//! that one `dpbusd` multiplies four values of sixteen rows by the same
//! four activations (broadcast) and each of its sixteen lanes gathers one
//! row's dot. After a block's eight steps a lane holds the row's whole
//! 32-value integer dot, and the block's floating-point work is one
//! conversion and one multiply-add per sixteen rows, where the unpacked
//! layout ([`super::group_vnni`]) spends them per row.
//!
//! The layout, per group of sixteen rows (the last padded with zero rows)
//! and per 32-value block: eight steps of sixteen rows times four values
//! (512 bytes), the sixteen rows' scales (`f32`, converted exactly from the
//! file's `f16`) and the sixteen rows' corrections (`-128` times the sum
//! of the row's 32 values: the activations come offset to unsigned,
//! [`QActs::us`], and each block's integer accumulator starts from the
//! correction, so it ends at the signed dot exactly).
//!
//! Every product, in every build and any batch, is
//! `acc = fma(float(dot_b), d_w * d_a, acc)` over the blocks `b` in order,
//! with `dot_b` the exact integer dot of the block. So a token's logits do
//! not depend on how the tokens were batched, and the portable build gives
//! the same bits as the VNNI one (`tests.rs` checks both).

use super::formats::{self, Format};
use super::{QActs, QMatrix, QType, QuantError};
use rayon::prelude::*;

/// Rows per interleaved group (the lanes of a 512-bit register).
pub const LANES: usize = 16;
/// Values per block.
const BLOCK: usize = 32;
/// Four-value steps per block.
const STEPS: usize = BLOCK / 4;
/// Bytes of one group's block.
const GROUP_BLOCK: usize = LANES * BLOCK;

/// The least work (multiply-adds) worth a task of its own.
const MIN_TASK_MACS: usize = 1 << 16;

/// A matrix (`rows x cols`) in the interleaved layout above, owned.
#[derive(Debug, Clone)]
pub struct PackedQ8 {
    rows: usize,
    cols: usize,
    qs: Vec<i8>,
    d: Vec<f32>,
    corr: Vec<i32>,
}

impl PackedQ8 {
    /// Whether the packed products run in their fast build here (the CPU
    /// has AVX-512 VNNI): a caller repacks its weights only then, since
    /// elsewhere the unpacked kernels are the faster ones.
    pub fn available() -> bool {
        crate::simd::has_avx512_vnni()
    }

    /// Whether [`PackedQ8::pack`] takes matrices of `qtype`: the formats
    /// whose blocks are 32 values with one scale and no minimum.
    pub fn packs(qtype: QType) -> bool {
        matches!(qtype, QType::Q8_0 | QType::Q5_0 | QType::Q4_0)
    }

    /// Repack a matrix of a format [`PackedQ8::packs`] takes (Q8_0, Q5_0,
    /// Q4_0): its values become signed 8-bit integers, losslessly.
    pub fn pack(m: &QMatrix<'_>) -> Result<Self, QuantError> {
        match m.qtype() {
            QType::Q8_0 => Ok(Self::pack_with::<formats::Q8_0>(m)),
            QType::Q5_0 => Ok(Self::pack_with::<formats::Q5_0>(m)),
            QType::Q4_0 => Ok(Self::pack_with::<formats::Q4_0>(m)),
            other => Err(QuantError::NotPackable(other)),
        }
    }

    fn pack_with<F: Format>(m: &QMatrix<'_>) -> Self {
        let (rows, cols) = (m.rows(), m.cols());
        let nb = cols / BLOCK;
        let groups = rows.div_ceil(LANES);
        let mut qs = vec![0i8; groups * nb * GROUP_BLOCK];
        let mut d = vec![0f32; groups * nb * LANES];
        let mut corr = vec![0i32; groups * nb * LANES];
        let (mut q, mut sc, mut mn) = (
            vec![0i8; cols],
            vec![0f32; cols / 16],
            vec![0f32; cols / 16],
        );
        for r in 0..rows {
            let (g, lane) = (r / LANES, r % LANES);
            formats::unpack_row::<F>(m.row(r), &mut q, &mut sc, &mut mn);
            for (b, vals) in q.chunks_exact(BLOCK).enumerate() {
                let gb = g * nb + b;
                d[gb * LANES + lane] = sc[2 * b];
                corr[gb * LANES + lane] = -128 * vals.iter().map(|&v| v as i32).sum::<i32>();
                for s in 0..STEPS {
                    let at = gb * GROUP_BLOCK + s * LANES * 4 + lane * 4;
                    qs[at..at + 4].copy_from_slice(&vals[4 * s..4 * s + 4]);
                }
            }
        }
        PackedQ8 {
            rows,
            cols,
            qs,
            d,
            corr,
        }
    }

    /// Rows (outputs).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns (inputs).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bytes held (values, scales, corrections).
    pub fn bytes(&self) -> usize {
        self.qs.len() + 4 * (self.d.len() + self.corr.len())
    }

    /// Row `r` as `f32` values into `out` (`cols` long): the same values
    /// as the unpacked matrix's [`QMatrix::dequantize_row`].
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) -> Result<(), QuantError> {
        super::check_row(r, self.rows, out.len(), self.cols)?;
        let nb = self.cols / BLOCK;
        let (g, lane) = (r / LANES, r % LANES);
        for (b, ob) in out.chunks_exact_mut(BLOCK).enumerate() {
            let gb = g * nb + b;
            let d = self.d[gb * LANES + lane];
            for (s, os) in ob.chunks_exact_mut(4).enumerate() {
                let at = gb * GROUP_BLOCK + s * LANES * 4 + lane * 4;
                for (o, &q) in os.iter_mut().zip(&self.qs[at..at + 4]) {
                    *o = d * q as f32;
                }
            }
        }
        Ok(())
    }

    /// `y = x W^T` for quantized activations `acts` (`n x cols`): `y` is
    /// `n x rows`, row-major. Parallel over groups of rows (rayon).
    pub fn matmul(&self, acts: &QActs, y: &mut [f32]) -> Result<(), QuantError> {
        self.matmul_with(acts, y, false)
    }

    /// [`PackedQ8::matmul`], in the portable build when `portable`.
    pub(crate) fn matmul_with(
        &self,
        acts: &QActs,
        y: &mut [f32],
        portable: bool,
    ) -> Result<(), QuantError> {
        if acts.cols != self.cols {
            return Err(QuantError::Size {
                what: "activation columns",
                got: acts.cols,
                want: self.cols,
            });
        }
        let n = acts.n;
        if y.len() != n * self.rows {
            return Err(QuantError::Size {
                what: "output",
                got: y.len(),
                want: n * self.rows,
            });
        }
        if n == 0 || self.rows == 0 {
            return Ok(());
        }
        let vnni = !portable && Self::available();
        let groups = self.rows.div_ceil(LANES);
        // About four tasks per thread, none under ~64K multiply-adds, and
        // an even number of groups each (the prompt tiles take two).
        let threads = rayon::current_num_threads();
        let min_groups = MIN_TASK_MACS.div_ceil(LANES * self.cols * n).max(1);
        let chunk = groups
            .div_ceil(threads * 4)
            .max(min_groups)
            .next_multiple_of(2);
        let out = Out(y.as_mut_ptr());
        let task = |g0: usize, g1: usize| {
            #[cfg(target_arch = "x86_64")]
            if vnni {
                // SAFETY: the CPU has AVX-512 VNNI (`available`); the
                // shapes were checked above; tasks write disjoint columns
                // (their own rows of W) of `y`.
                unsafe { vnni::task(self, acts, g0, g1, &out) };
                return;
            }
            let _ = vnni;
            // SAFETY: as above for the shapes and the disjoint columns.
            unsafe { portable_task(self, acts, g0, g1, &out) };
        };
        if threads == 1 || groups <= chunk {
            task(0, groups);
        } else {
            (0..groups.div_ceil(chunk))
                .into_par_iter()
                .for_each(|t| task(t * chunk, ((t + 1) * chunk).min(groups)));
        }
        Ok(())
    }
}

/// The output's base pointer, shared by tasks that write disjoint columns.
struct Out(*mut f32);
// SAFETY: each task writes only the columns of its own groups of rows.
unsafe impl Sync for Out {}
unsafe impl Send for Out {}

/// The portable build: groups `g0..g1` against every activation row.
///
/// # Safety
/// `y` (behind `out`) is `acts.n x p.rows`, and no other task writes the
/// columns of these groups.
unsafe fn portable_task(p: &PackedQ8, acts: &QActs, g0: usize, g1: usize, out: &Out) {
    let (n, cols, rows) = (acts.n, p.cols, p.rows);
    let nb = cols / BLOCK;
    for g in g0..g1 {
        for i in 0..n {
            let qa = &acts.qs[i * cols..(i + 1) * cols];
            let da = &acts.d[i * nb..(i + 1) * nb];
            for lane in 0..LANES.min(rows - g * LANES) {
                let mut acc = 0f32;
                for b in 0..nb {
                    let gb = g * nb + b;
                    let mut dot = 0i32;
                    for s in 0..STEPS {
                        let at = gb * GROUP_BLOCK + s * LANES * 4 + lane * 4;
                        for e in 0..4 {
                            dot += p.qs[at + e] as i32 * qa[b * BLOCK + 4 * s + e] as i32;
                        }
                    }
                    acc = (dot as f32).mul_add(p.d[gb * LANES + lane] * da[b], acc);
                }
                *out.0.add(i * rows + g * LANES + lane) = acc;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use super::{Out, PackedQ8, BLOCK, GROUP_BLOCK, LANES, STEPS};
    use crate::quant::QActs;
    use std::arch::x86_64::*;

    /// Groups `g0..g1` against every activation row: with four or more
    /// rows, tiles of two groups by four activation rows (sixteen
    /// accumulators); with fewer (decoding), four groups by all of them.
    ///
    /// # Safety
    /// The CPU has AVX-512 F, BW, VL and VNNI; the shapes match; no other
    /// task writes the columns of these groups.
    #[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vnni,avx512vl")]
    pub(super) unsafe fn task(p: &PackedQ8, acts: &QActs, g0: usize, g1: usize, out: &Out) {
        let n = acts.n;
        let (rg, nt) = if n >= 4 { (2, 4) } else { (4, n) };
        let mut g = g0;
        while g < g1 {
            let gs = (g1 - g).min(rg);
            let mut i = 0;
            while i < n {
                let ns = (n - i).min(nt);
                dispatch(p, acts, g, gs, i, ns, out);
                i += ns;
            }
            g += gs;
        }
    }

    #[inline(always)]
    unsafe fn dispatch(
        p: &PackedQ8,
        acts: &QActs,
        g: usize,
        gs: usize,
        i: usize,
        ns: usize,
        out: &Out,
    ) {
        match (gs, ns) {
            (1, 1) => tile::<1, 1>(p, acts, g, i, out),
            (1, 2) => tile::<1, 2>(p, acts, g, i, out),
            (1, 3) => tile::<1, 3>(p, acts, g, i, out),
            (1, _) => tile::<1, 4>(p, acts, g, i, out),
            (2, 1) => tile::<2, 1>(p, acts, g, i, out),
            (2, 2) => tile::<2, 2>(p, acts, g, i, out),
            (2, 3) => tile::<2, 3>(p, acts, g, i, out),
            (2, _) => tile::<2, 4>(p, acts, g, i, out),
            (3, 1) => tile::<3, 1>(p, acts, g, i, out),
            (3, 2) => tile::<3, 2>(p, acts, g, i, out),
            (3, _) => tile::<3, 3>(p, acts, g, i, out),
            (_, 1) => tile::<4, 1>(p, acts, g, i, out),
            (_, 2) => tile::<4, 2>(p, acts, g, i, out),
            (_, _) => tile::<4, 3>(p, acts, g, i, out),
        }
    }

    /// Groups `g..g + G` against activation rows `i..i + N`.
    // The register tile is indexed by group and row on purpose.
    #[allow(clippy::needless_range_loop)]
    #[inline(always)]
    unsafe fn tile<const G: usize, const N: usize>(
        p: &PackedQ8,
        acts: &QActs,
        g: usize,
        i: usize,
        out: &Out,
    ) {
        let (cols, rows) = (p.cols, p.rows);
        let nb = cols / BLOCK;
        let us = acts.us.as_ptr();
        let da = acts.d.as_ptr();
        let (qs, ds, cs) = (p.qs.as_ptr(), p.d.as_ptr(), p.corr.as_ptr());
        let mut facc = [[_mm512_setzero_ps(); N]; G];
        for b in 0..nb {
            let mut iacc = [[_mm512_setzero_si512(); N]; G];
            for (k, row) in iacc.iter_mut().enumerate() {
                let c = _mm512_loadu_si512(cs.add(((g + k) * nb + b) * LANES) as *const _);
                row.iter_mut().for_each(|a| *a = c);
            }
            for s in 0..STEPS {
                let mut w = [_mm512_setzero_si512(); G];
                for (k, wk) in w.iter_mut().enumerate() {
                    *wk = _mm512_loadu_si512(
                        qs.add(((g + k) * nb + b) * GROUP_BLOCK + s * LANES * 4) as *const _,
                    );
                }
                for j in 0..N {
                    let at = us.add((i + j) * cols + b * BLOCK + 4 * s) as *const i32;
                    let a = _mm512_set1_epi32(at.read_unaligned());
                    for k in 0..G {
                        iacc[k][j] = _mm512_dpbusd_epi32(iacc[k][j], a, w[k]);
                    }
                }
            }
            for k in 0..G {
                let s = _mm512_loadu_ps(ds.add(((g + k) * nb + b) * LANES));
                for j in 0..N {
                    let sd = _mm512_mul_ps(s, _mm512_set1_ps(*da.add((i + j) * nb + b)));
                    facc[k][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(iacc[k][j]), sd, facc[k][j]);
                }
            }
        }
        for (k, fk) in facc.iter().enumerate() {
            let r0 = (g + k) * LANES;
            let valid = rows - r0;
            for (j, &v) in fk.iter().enumerate() {
                let dst = out.0.add((i + j) * rows + r0);
                if valid >= LANES {
                    _mm512_storeu_ps(dst, v);
                } else {
                    _mm512_mask_storeu_ps(dst, ((1u32 << valid) - 1) as u16, v);
                }
            }
        }
    }
}
