//! The prompt path with AVX-512 VNNI: two unpacked weight rows against four
//! activation rows per micro-kernel call (eight products sharing each load),
//! and no sign flip per product: the activations come offset to unsigned
//! ([`QActs::us`], `q + 128`), `dpbusd` multiplies them with the signed
//! weights, and each row's correction (`-128` times the sum of its values,
//! per lane) is the accumulator `dpbusd` starts from.
//!
//! The integer lanes are exactly those of [`super::fused`] (`sum a q` over
//! the same four values per lane: the offset cancels in integers), and the
//! floating-point steps are the same: per 32 values, the lanes converted,
//! times `scale_w * d_a`, into one of two accumulators (even and odd
//! chunks, which are the two halves of one 512-bit register here), then
//! the minimums' term. So the logits stay independent of how
//! tokens are batched (`tests.rs` checks it).

#![cfg(target_arch = "x86_64")]

use super::formats::Format;
use super::fused::finish;
use super::group::{min_term, pad_dsums, unpack, Row, TILE};
use super::matmul::GROUP;
use super::{QActs, QMatrix};
use crate::simd::hsum;
use std::arch::x86_64::*;

/// Bytes of 8-bit activations per group (see [`task`]).
const GROUP_BYTES: usize = 256 << 10;

/// Weight rows `first..first + out.len() / n` of `w` against every
/// activation row into `out` (`rows x n`).
///
/// # Safety
/// The CPU must have AVX2, FMA, AVX-512 F, BW, VNNI and VL (the caller's
/// `target_feature` enables them); `acts.cols == w.cols`, `w.qtype` is
/// `F`'s, and `out` covers rows of `w` from `first`.
#[inline(always)]
pub(super) unsafe fn task<F: Format>(w: &QMatrix<'_>, acts: &QActs, first: usize, out: &mut [f32]) {
    let (n, cols) = (acts.n, w.cols);
    let rows = out.len() / n.max(1);
    let mut r0 = Row::new(cols);
    let mut r1 = Row::new(cols);
    let mut res = [[0f32; TILE]; 2];
    // The group's unsigned activations stay in the core's L2 cache while
    // the task's weight rows pass over them: as many rows as fit in
    // `GROUP_BYTES`, and at least `GROUP`, so each weight row is unpacked
    // once per group.
    let group = (GROUP_BYTES / cols.max(1)).max(GROUP);
    let stride = r0.mn32.len();
    let mut dpad = Vec::new();
    for g0 in (0..n).step_by(group) {
        let g1 = (g0 + group).min(n);
        if F::HAS_MIN {
            pad_dsums(acts, g0, g1, stride, &mut dpad);
        }
        let mut r = 0;
        while r < rows {
            let two = r + 1 < rows;
            unpack::<F, false>(w.row(first + r), &mut r0);
            corrections(&mut r0);
            if two {
                unpack::<F, false>(w.row(first + r + 1), &mut r1);
                corrections(&mut r1);
            }
            let mut i = g0;
            while i < g1 {
                let t = (g1 - i).min(TILE);
                let m = F::HAS_MIN.then(|| &dpad[(i - g0) * stride..]);
                match (two, t) {
                    (true, TILE) => dots::<2, TILE>([&r0, &r1], acts, i, m, &mut res),
                    (true, 3) => dots::<2, 3>([&r0, &r1], acts, i, m, &mut res),
                    (true, 2) => dots::<2, 2>([&r0, &r1], acts, i, m, &mut res),
                    (true, _) => dots::<2, 1>([&r0, &r1], acts, i, m, &mut res),
                    (false, TILE) => dots::<1, TILE>([&r0], acts, i, m, &mut res),
                    (false, 3) => dots::<1, 3>([&r0], acts, i, m, &mut res),
                    (false, 2) => dots::<1, 2>([&r0], acts, i, m, &mut res),
                    (false, _) => dots::<1, 1>([&r0], acts, i, m, &mut res),
                }
                for (k, line) in res.iter().enumerate().take(if two { 2 } else { 1 }) {
                    for (j, &v) in line[..t].iter().enumerate() {
                        out[(r + k) * n + i + j] = v;
                    }
                }
                i += t;
            }
            r += 2;
        }
    }
}

/// `row.corr`: per lane of each 32 values, `-128` times the sum of its four
/// values.
#[inline(always)]
unsafe fn corrections(row: &mut Row) {
    let offset = _mm256_set1_epi8(-128);
    let zero = _mm256_setzero_si256();
    let chunks = (row.q.len() / 32).min(row.corr.len() / 8);
    for c in 0..chunks {
        let q = _mm256_loadu_si256(row.q.as_ptr().add(32 * c) as *const __m256i);
        let s = _mm256_dpbusd_epi32(zero, offset, q);
        _mm256_storeu_si256(
            row.corr.as_mut_ptr().add(8 * c) as *mut __m256i,
            _mm256_sub_epi32(zero, s),
        );
    }
}

/// The dots of `R` unpacked rows with activation rows `i..i + T`
/// (`T <= TILE`) into `res[..R][..T]`.
///
/// Two chunks per 512-bit register: an even chunk in the low half and the
/// odd one after it in the high half, so each half is exactly one of the
/// decoding path's two accumulators (the same lanes, the same operations in
/// the same order), and their sum at the end is its `even + odd`. One
/// instruction then does the work of two for each step.
#[inline(always)]
unsafe fn dots<const R: usize, const T: usize>(
    rows: [&Row; R],
    acts: &QActs,
    i: usize,
    mins: Option<&[f32]>,
    res: &mut [[f32; TILE]; 2],
) {
    let cols = acts.cols;
    let mut chunks = cols / 32;
    for row in rows {
        chunks = chunks
            .min(row.q.len() / 32)
            .min(row.corr.len() / 8)
            .min(row.sv.len() / 8);
    }
    if T > TILE
        || i + T > acts.n
        || acts.us.len() < (i + T) * cols
        || acts.d.len() < (i + T) * cols / 32
    {
        return;
    }
    let mut ua = [std::ptr::null::<u8>(); T];
    let mut da = [std::ptr::null::<f32>(); T];
    for j in 0..T {
        ua[j] = acts.us.as_ptr().add((i + j) * cols);
        da[j] = acts.d.as_ptr().add((i + j) * cols / 32);
    }
    let mut acc = [[_mm512_setzero_ps(); T]; R];
    let mut c = 0;
    while c + 1 < chunks {
        step::<R, T, true>(&rows, &ua, &da, c, &mut acc);
        c += 2;
    }
    if c < chunks {
        step::<R, T, false>(&rows, &ua, &da, c, &mut acc);
    }
    for k in 0..R {
        for j in 0..T {
            let v = acc[k][j];
            let even = _mm512_castps512_ps256(v);
            let odd = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)));
            let dot = hsum(_mm256_add_ps(even, odd));
            let stride = rows[k].mn32.len();
            res[k][j] = match mins.and_then(|m| m.get(j * stride..(j + 1) * stride)) {
                Some(ds) => finish(dot, min_term(&rows[k].mn32, ds)),
                None => dot,
            };
        }
    }
}

/// Chunks `c` and `c + 1` (`PAIR`), or chunk `c` alone in the low half
/// (the high half's operands loaded as zeros, which leave its accumulators
/// as they were), of the rows against the tile's `T` activation rows.
#[inline(always)]
unsafe fn step<const R: usize, const T: usize, const PAIR: bool>(
    rows: &[&Row; R],
    ua: &[*const u8; T],
    da: &[*const f32; T],
    c: usize,
    acc: &mut [[__m512; T]; R],
) {
    let (m8, m32): (u64, u16) = if PAIR {
        (!0, !0)
    } else {
        (u32::MAX as u64, 0xff)
    };
    let mut q = [_mm512_setzero_si512(); R];
    let mut k = [_mm512_setzero_si512(); R];
    let mut sv = [_mm512_setzero_ps(); R];
    for r in 0..R {
        q[r] = _mm512_maskz_loadu_epi8(m8, rows[r].q.as_ptr().add(32 * c));
        k[r] = _mm512_maskz_loadu_epi32(m32, rows[r].corr.as_ptr().add(8 * c));
        sv[r] = _mm512_maskz_loadu_ps(m32, rows[r].sv.as_ptr().add(8 * c));
    }
    // Lanes 0-7: the even chunk's activation scale; 8-15: the odd one's.
    let halves = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    for j in 0..T {
        let a = _mm512_maskz_loadu_epi8(m8, ua[j].add(32 * c) as *const i8);
        let d = if PAIR {
            let two = _mm_castpd_ps(_mm_load_sd(da[j].add(c) as *const f64));
            _mm512_permutexvar_ps(halves, _mm512_castps128_ps512(two))
        } else {
            _mm512_set1_ps(*da[j].add(c))
        };
        for r in 0..R {
            let p = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(k[r], a, q[r]));
            acc[r][j] = _mm512_fmadd_ps(p, _mm512_mul_ps(sv[r], d), acc[r][j]);
        }
    }
}
