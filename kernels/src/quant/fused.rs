//! Fused AVX2 dots of one stored weight row with one 8-bit activation row:
//! each block is decoded in registers and multiplied at once, with no
//! unpacked copy of the row in memory. This is the decoding (few activation
//! rows) path; the prompt path unpacks a row once and reuses it for a group
//! of activation rows ([`super::matmul`]).
//!
//! Per 32 values: the weights as 32 bytes (signed, or unsigned with the
//! format's minimum kept apart), `maddubs` against the activations, pairs
//! summed to 8 `i32` lanes (lanes 0-3 hold values 0-15, lanes 4-7 values
//! 16-31), converted and scaled by `d_w * d_a` into an `f32` accumulator.
//! `maddubs` does not saturate here: an unsigned weight is at most 63 and a
//! signed one at most 128 in magnitude, an activation at most 127, so a
//! pair sums to at most 32512.

#![cfg(target_arch = "x86_64")]

use super::{QActs, QMatrix, QType};
use crate::simd::hsum;
use std::arch::x86_64::*;

/// Whether the fused build can run: AVX2, FMA and F16C (half-precision
/// scales converted in one instruction).
pub(crate) fn available() -> bool {
    crate::simd::has_avx2_fma() && std::is_x86_feature_detected!("f16c")
}

/// [`task_with`] in the best build the CPU has.
///
/// # Safety
/// As [`task_with`].
pub(crate) unsafe fn task(w: &QMatrix<'_>, acts: &QActs, first: usize, out: &mut [f32]) {
    if crate::simd::has_avx512_vnni() {
        task_vnni(w, acts, first, out)
    } else {
        task_avx2(w, acts, first, out)
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn task_avx2(w: &QMatrix<'_>, acts: &QActs, first: usize, out: &mut [f32]) {
    task_with::<false>(w, acts, first, out)
}

#[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
unsafe fn task_vnni(w: &QMatrix<'_>, acts: &QActs, first: usize, out: &mut [f32]) {
    task_with::<true>(w, acts, first, out)
}

/// Weight rows `first..first + out.len() / n` of `w` dotted with every
/// activation row into `out` (`rows x n`), as [`super::matmul`]'s tasks.
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C ([`available`]); `acts.cols` must
/// equal `w.cols` and `out.len()` must be a multiple of `acts.n` covering
/// rows of `w`.
#[inline(always)]
unsafe fn task_with<const V: bool>(w: &QMatrix<'_>, acts: &QActs, first: usize, out: &mut [f32]) {
    let (n, cols) = (acts.n, acts.cols);
    let rows = out.len() / n.max(1);
    // The task's weight bytes, read once in order: each row's lines are
    // asked for `AHEAD` bytes before it is reached, so that the memory
    // reads of the next rows overlap this row's arithmetic.
    let data = w.row_span(first, rows);
    let rb = (data.len() / rows.max(1)).max(1);
    macro_rules! each {
        ($dot:ident) => {
            for (r, row) in data.chunks_exact(rb).enumerate() {
                prefetch(data, r * rb + AHEAD, rb);
                for i in 0..n {
                    out[r * n + i] = $dot::<V>(
                        row,
                        &acts.qs[i * cols..(i + 1) * cols],
                        &acts.d[i * cols / 32..(i + 1) * cols / 32],
                        &acts.dsums[i * cols / 32..(i + 1) * cols / 32],
                    );
                }
            }
        };
    }
    match w.qtype {
        QType::Q4_0 => each!(q4_0),
        QType::Q4_1 => each!(q4_1),
        QType::Q5_0 => each!(q5_0),
        QType::Q5_1 => each!(q5_1),
        QType::Q8_0 => each!(q8_0),
        QType::Q4_K => each!(q4_k),
        QType::Q5_K => each!(q5_k),
        QType::Q6_K => each!(q6_k),
    }
}

/// How far ahead of the row being dotted its task's weight bytes are
/// prefetched.
const AHEAD: usize = 2048;

/// Prefetch the cache lines of `data[at..at + len]` (what lies inside
/// `data`).
#[inline(always)]
unsafe fn prefetch(data: &[u8], at: usize, len: usize) {
    let end = (at + len).min(data.len());
    let mut i = at;
    while i < end {
        _mm_prefetch::<_MM_HINT_T0>(data.as_ptr().add(i) as *const i8);
        i += 64;
    }
}

/// The `f16` at `p` as `f32`.
#[inline(always)]
unsafe fn f16(p: *const u8) -> f32 {
    let bits = u16::from_le_bytes([*p, *p.add(1)]) as u32;
    // `vmovd` from a general register writes the whole vector register.
    // Written with intrinsics, the compiler inserts the 16 bits into lane 0
    // of whatever register it picks (it once picked an accumulator), which
    // chained every block's scale to the previous block's sum.
    let x: __m128;
    std::arch::asm!(
        "vmovd {x}, {b:e}",
        "vcvtph2ps {x}, {x}",
        b = in(reg) bits,
        x = out(xmm_reg) x,
        options(pure, nomem, nostack, preserves_flags),
    );
    _mm_cvtss_f32(x)
}

/// 8 `i32` lanes of `w . a` over 4 consecutive bytes each, `w` unsigned.
#[inline(always)]
pub(super) unsafe fn dot_u<const V: bool>(w: __m256i, a: __m256i) -> __m256i {
    if V {
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), w, a)
    } else {
        _mm256_madd_epi16(_mm256_maddubs_epi16(w, a), _mm256_set1_epi16(1))
    }
}

/// [`dot_u`] for signed `w`: `|w| . (a * sign w)`.
#[inline(always)]
unsafe fn dot_s<const V: bool>(w: __m256i, a: __m256i) -> __m256i {
    dot_u::<V>(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w))
}

/// The 32 activations at chunk `c`.
#[inline(always)]
unsafe fn acts32(qa: &[i8], c: usize) -> __m256i {
    _mm256_loadu_si256(qa.as_ptr().add(32 * c) as *const __m256i)
}

/// 16 bytes of packed nibbles at `p` as 32 bytes: the low nibbles, then the
/// high ones.
#[inline(always)]
unsafe fn nibbles(p: *const u8) -> __m256i {
    let x = _mm_loadu_si128(p as *const __m128i);
    _mm256_and_si256(
        _mm256_set_m128i(_mm_srli_epi16::<4>(x), x),
        _mm256_set1_epi8(0x0F),
    )
}

/// Byte `j` is `0x10` where bit `j` of the 32-bit `bits` is set, else 0.
#[inline(always)]
unsafe fn bit4(bits: u32) -> __m256i {
    let spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(bits as i32),
        _mm256_setr_epi8(
            0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, //
            2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3,
        ),
    );
    let mask = _mm256_set1_epi64x(0x8040_2010_0804_0201_u64 as i64);
    let set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, mask), mask);
    _mm256_and_si256(set, _mm256_set1_epi8(0x10))
}

/// Chunks of 32 values the row, activations and sums all cover.
#[inline(always)]
fn chunks(
    row: &[u8],
    block_bytes: usize,
    block_values: usize,
    qa: &[i8],
    da: &[f32],
    ds: &[f32],
) -> usize {
    (row.len() / block_bytes * block_values / 32)
        .min(qa.len() / 32)
        .min(da.len())
        .min(ds.len())
}

/// The 32-value formats: `decode(block) -> (weights, scale, minimum, signed)`.
macro_rules! small_block {
    ($name:ident, $bytes:expr, $has_min:expr, |$b:ident| $decode:expr) => {
        #[inline(always)]
        unsafe fn $name<const V: bool>(row: &[u8], qa: &[i8], da: &[f32], ds: &[f32]) -> f32 {
            let n = chunks(row, $bytes, 32, qa, da, ds);
            // Chunk `c`: its integer dot, its scale and its minimum.
            #[inline(always)]
            unsafe fn term<const V: bool>(
                row: &[u8],
                qa: &[i8],
                da: &[f32],
                c: usize,
            ) -> (__m256, __m256, f32) {
                let $b = row.as_ptr().add($bytes * c);
                let (w, d, m, signed): (__m256i, f32, f32, bool) = $decode;
                let a = acts32(qa, c);
                let p = if signed {
                    dot_s::<V>(w, a)
                } else {
                    dot_u::<V>(w, a)
                };
                let s = _mm256_set1_ps(d * *da.get_unchecked(c));
                (_mm256_cvtepi32_ps(p), s, m)
            }
            // Two accumulators (even and odd chunks); the minimums' terms
            // in eight lanes (lane `c % 8`), eight chunks at a time, each
            // eight added a group late (two groups in turn in `mins`), so
            // the vector load never waits on the scalar stores.
            let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            let mut mins = [0f32; 16];
            let mut added = 0;
            let mut macc = _mm256_setzero_ps();
            let mut c = 0;
            while c < n {
                let (p, s, m) = term::<V>(row, qa, da, c);
                acc0 = _mm256_fmadd_ps(p, s, acc0);
                if $has_min {
                    mins[c % 16] = m;
                }
                if c + 1 < n {
                    let (p, s, m) = term::<V>(row, qa, da, c + 1);
                    acc1 = _mm256_fmadd_ps(p, s, acc1);
                    if $has_min {
                        mins[(c + 1) % 16] = m;
                    }
                }
                c += 2;
                if $has_min && c % 8 == 0 && c >= 16 {
                    macc = mins_step(&mins[(c - 16) % 16..][..8], ds, c - 16, macc);
                    added = c - 8;
                }
            }
            let dot = hsum(_mm256_add_ps(acc0, acc1));
            if $has_min {
                while added + 8 <= n {
                    macc = mins_step(&mins[added % 16..][..8], ds, added, macc);
                    added += 8;
                }
                if added < n {
                    let mut last = [0f32; 8];
                    last[..n - added].copy_from_slice(&mins[added % 16..][..n - added]);
                    macc = mins_step(&last, ds, added, macc);
                }
                finish(dot, macc)
            } else {
                dot
            }
        }
    };
}

/// `macc + mins * ds[c0..c0 + 8]` (`ds` read as zeros past its end).
#[inline(always)]
unsafe fn mins_step(mins: &[f32], ds: &[f32], c0: usize, macc: __m256) -> __m256 {
    let d = if c0 + 8 <= ds.len() {
        _mm256_loadu_ps(ds.as_ptr().add(c0))
    } else {
        // The lanes past the end read as zeros (a masked load, which
        // touches no memory past the end).
        let left = ds.len().saturating_sub(c0) as i32;
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(left), lanes);
        _mm256_maskload_ps(ds.as_ptr().add(c0.min(ds.len())), mask)
    };
    let m = match mins.get(..8) {
        Some(m) => _mm256_loadu_ps(m.as_ptr()),
        None => _mm256_setzero_ps(),
    };
    _mm256_fmadd_ps(m, d, macc)
}

/// A dot's two parts summed, in the one order every path uses: the scaled
/// integer dots' sum, plus the lanes of the minimums' terms summed.
#[inline(always)]
pub(super) unsafe fn finish(dot: f32, mins: __m256) -> f32 {
    dot + hsum(mins)
}

small_block!(q4_0, 18, false, |b| (
    _mm256_sub_epi8(nibbles(b.add(2)), _mm256_set1_epi8(8)),
    f16(b),
    0.0,
    true
));
small_block!(q4_1, 20, true, |b| (
    nibbles(b.add(4)),
    f16(b),
    f16(b.add(2)),
    false
));
small_block!(q5_0, 22, false, |b| (
    _mm256_sub_epi8(
        _mm256_or_si256(nibbles(b.add(6)), bit4(u32_at(b.add(2)))),
        _mm256_set1_epi8(16)
    ),
    f16(b),
    0.0,
    true
));
small_block!(q5_1, 24, true, |b| (
    _mm256_or_si256(nibbles(b.add(8)), bit4(u32_at(b.add(4)))),
    f16(b),
    f16(b.add(2)),
    false
));
small_block!(q8_0, 34, false, |b| (
    _mm256_loadu_si256(b.add(2) as *const __m256i),
    f16(b),
    0.0,
    true
));

/// The little-endian `u32` at `p`.
#[inline(always)]
unsafe fn u32_at(p: *const u8) -> u32 {
    u32::from_le_bytes([*p, *p.add(1), *p.add(2), *p.add(3)])
}

/// Scale and minimum (6 bits each) of sub-block `j` of a Q4_K/Q5_K block's
/// 12 packed bytes at `s`.
#[inline(always)]
unsafe fn scale_min_k4(j: usize, s: *const u8) -> (f32, f32) {
    let at = |k: usize| *s.add(k);
    let (sc, mn) = if j < 4 {
        (at(j) & 63, at(j + 4) & 63)
    } else {
        (
            (at(j + 4) & 15) | ((at(j - 4) >> 6) << 4),
            (at(j + 4) >> 4) | ((at(j) >> 6) << 4),
        )
    };
    (sc as f32, mn as f32)
}

/// Q4_K (`HIGH = false`, 144 bytes) and Q5_K (`HIGH = true`, 176 bytes):
/// per 64 values, 32 bytes of nibbles (low: sub-block `2 c`, high:
/// `2 c + 1`), with Q5_K's fifth bit from bit `2 c` / `2 c + 1` of 32 `qh`
/// bytes.
#[inline(always)]
unsafe fn k4<const V: bool, const HIGH: bool>(
    row: &[u8],
    qa: &[i8],
    da: &[f32],
    ds: &[f32],
) -> f32 {
    let bytes = if HIGH { 176 } else { 144 };
    let n = chunks(row, bytes, 256, qa, da, ds) / 8;
    let low = _mm256_set1_epi8(0x0F);
    let mut acc = [_mm256_setzero_ps(); 2];
    let mut macc = _mm256_setzero_ps();
    for blk in 0..n {
        let b = row.as_ptr().add(bytes * blk);
        let (d, dmin) = (f16(b), f16(b.add(2)));
        // The 8 sub-blocks' scales (times `d` and the activations' scales)
        // and minimums (times `dmin`), as vectors: the minimums' term of
        // the block is one multiply-add with the activations' `d * sum`.
        let (mut scf, mut mnf) = ([0f32; 8], [0f32; 8]);
        for j in 0..8 {
            (scf[j], mnf[j]) = scale_min_k4(j, b.add(4));
        }
        let sv = _mm256_mul_ps(
            _mm256_mul_ps(_mm256_loadu_ps(scf.as_ptr()), _mm256_set1_ps(d)),
            _mm256_loadu_ps(da.as_ptr().add(8 * blk)),
        );
        let mv = _mm256_mul_ps(_mm256_loadu_ps(mnf.as_ptr()), _mm256_set1_ps(dmin));
        macc = _mm256_fnmadd_ps(mv, _mm256_loadu_ps(ds.as_ptr().add(8 * blk)), macc);
        let qs = b.add(if HIGH { 48 } else { 16 });
        let qh = if HIGH {
            _mm256_loadu_si256(b.add(16) as *const __m256i)
        } else {
            _mm256_setzero_si256()
        };
        for c in 0..4 {
            let x = _mm256_loadu_si256(qs.add(32 * c) as *const __m256i);
            let mut lo = _mm256_and_si256(x, low);
            let mut hi = _mm256_and_si256(_mm256_srli_epi16::<4>(x), low);
            if HIGH {
                let m0 = _mm256_set1_epi8((1u8 << (2 * c)) as i8);
                let m1 = _mm256_set1_epi8((1u8 << (2 * c + 1)) as i8);
                let sixteen = _mm256_set1_epi8(0x10);
                let h0 = _mm256_cmpeq_epi8(_mm256_and_si256(qh, m0), m0);
                let h1 = _mm256_cmpeq_epi8(_mm256_and_si256(qh, m1), m1);
                lo = _mm256_or_si256(lo, _mm256_and_si256(h0, sixteen));
                hi = _mm256_or_si256(hi, _mm256_and_si256(h1, sixteen));
            }
            for (h, (k, w)) in [(2 * c, lo), (2 * c + 1, hi)].into_iter().enumerate() {
                let p = dot_u::<V>(w, acts32(qa, 8 * blk + k));
                let s = _mm256_permutevar8x32_ps(sv, _mm256_set1_epi32(k as i32));
                acc[h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), s, acc[h]);
            }
        }
    }
    finish(hsum(_mm256_add_ps(acc[0], acc[1])), macc)
}

#[inline(always)]
unsafe fn q4_k<const V: bool>(row: &[u8], qa: &[i8], da: &[f32], ds: &[f32]) -> f32 {
    k4::<V, false>(row, qa, da, ds)
}

#[inline(always)]
unsafe fn q5_k<const V: bool>(row: &[u8], qa: &[i8], da: &[f32], ds: &[f32]) -> f32 {
    k4::<V, true>(row, qa, da, ds)
}

/// The low 2 bits of each byte of `x`, moved to bits 4-5.
#[inline(always)]
unsafe fn high2(x: __m256i) -> __m256i {
    _mm256_slli_epi16::<4>(_mm256_and_si256(x, _mm256_set1_epi8(0x03)))
}

/// Q6_K (210 bytes per 256 values): per 128 values, 64 bytes of nibbles
/// and 32 bytes of 2-bit high parts; values offset by 32; an 8-bit scale
/// per 16 values.
#[inline(always)]
unsafe fn q6_k<const V: bool>(row: &[u8], qa: &[i8], da: &[f32], ds: &[f32]) -> f32 {
    let n = chunks(row, 210, 256, qa, da, ds) / 8;
    let low = _mm256_set1_epi8(0x0F);
    let off = _mm256_set1_epi8(32);
    let mut acc = [_mm256_setzero_ps(); 2];
    for blk in 0..n {
        let b = row.as_ptr().add(210 * blk);
        let d = f16(b.add(208));
        // The 16 scales times `d`: scales 0-7, then 8-15.
        let sc = _mm_loadu_si128(b.add(192) as *const __m128i);
        let dv = _mm256_set1_ps(d);
        let svs = [
            _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc)), dv),
            _mm256_mul_ps(
                _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128::<8>(sc))),
                dv,
            ),
        ];
        for (half, sv) in svs.iter().enumerate() {
            let ql = b.add(64 * half);
            let l0 = _mm256_loadu_si256(ql as *const __m256i);
            let l1 = _mm256_loadu_si256(ql.add(32) as *const __m256i);
            let h = _mm256_loadu_si256(b.add(128 + 32 * half) as *const __m256i);
            let vs = [
                _mm256_or_si256(_mm256_and_si256(l0, low), high2(h)),
                _mm256_or_si256(_mm256_and_si256(l1, low), high2(_mm256_srli_epi16::<2>(h))),
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16::<4>(l0), low),
                    high2(_mm256_srli_epi16::<4>(h)),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16::<4>(l1), low),
                    high2(_mm256_srli_epi16::<6>(h)),
                ),
            ];
            for (j, v) in vs.into_iter().enumerate() {
                // Chunk `4 half + j` of the block: scales `2 (4 half + j)` and the next.
                let k = 4 * half + j;
                let ch = 8 * blk + k;
                let p = dot_s::<V>(_mm256_sub_epi8(v, off), acts32(qa, ch));
                // Lanes 0-3: scale `2 k`, lanes 4-7: `2 k + 1` (of this half's `sv`).
                let l = (2 * k % 8) as i32;
                let idx = _mm256_setr_epi32(l, l, l, l, l + 1, l + 1, l + 1, l + 1);
                let s = _mm256_mul_ps(
                    _mm256_permutevar8x32_ps(*sv, idx),
                    _mm256_set1_ps(*da.get_unchecked(ch)),
                );
                acc[j & 1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), s, acc[j & 1]);
            }
        }
    }
    hsum(_mm256_add_ps(acc[0], acc[1]))
}
