//! The GGML block layouts, unpacked: each block becomes small signed
//! integers `q` and, per 16 values, a scale `sc` and an offset `mn`, so that
//! value `j` is `sc[j / 16] * q[j] + mn[j / 16]`.

use super::{f16_at, QType};

/// One block format.
pub(crate) trait Format {
    /// Values per block.
    const VALUES: usize;
    /// Bytes per block.
    const BYTES: usize;
    /// Whether `mn` can be non-zero.
    const HAS_MIN: bool;
    /// Unpack block `b` (`BYTES` long) into `q` (`VALUES`), `sc` and `mn`
    /// (`VALUES / 16` each).
    fn unpack(b: &[u8], q: &mut [i8], sc: &mut [f32], mn: &mut [f32]);
}

pub(crate) struct Q4_0;
pub(crate) struct Q4_1;
pub(crate) struct Q5_0;
pub(crate) struct Q5_1;
pub(crate) struct Q8_0;
pub(crate) struct Q4K;
pub(crate) struct Q5K;
pub(crate) struct Q6K;

/// The low and high nibbles of `qs[..16]` as `q[..16]` and `q[16..32]`,
/// plus bit `j` (low half) / `j + 16` (high half) of `qh` as bit 4 when
/// `qh` is given, minus `off`.
#[inline(always)]
fn nibbles(qs: &[u8], qh: Option<u32>, off: i8, q: &mut [i8]) {
    let qs = &qs[..16];
    let (lo, hi) = q[..32].split_at_mut(16);
    for j in 0..16 {
        let (h0, h1) = match qh {
            Some(h) => (
                (((h >> j) & 1) << 4) as u8,
                (((h >> (j + 16)) & 1) << 4) as u8,
            ),
            None => (0, 0),
        };
        lo[j] = ((qs[j] & 15) | h0) as i8 - off;
        hi[j] = ((qs[j] >> 4) | h1) as i8 - off;
    }
}

impl Format for Q4_0 {
    const VALUES: usize = 32;
    const BYTES: usize = 18;
    const HAS_MIN: bool = false;
    #[inline(always)]
    fn unpack(b: &[u8], q: &mut [i8], sc: &mut [f32], mn: &mut [f32]) {
        let d = f16_at(b, 0);
        nibbles(&b[2..18], None, 8, q);
        sc[..2].fill(d);
        mn[..2].fill(0.0);
    }
}

impl Format for Q4_1 {
    const VALUES: usize = 32;
    const BYTES: usize = 20;
    const HAS_MIN: bool = true;
    #[inline(always)]
    fn unpack(b: &[u8], q: &mut [i8], sc: &mut [f32], mn: &mut [f32]) {
        let (d, m) = (f16_at(b, 0), f16_at(b, 2));
        nibbles(&b[4..20], None, 0, q);
        sc[..2].fill(d);
        mn[..2].fill(m);
    }
}

impl Format for Q5_0 {
    const VALUES: usize = 32;
    const BYTES: usize = 22;
    const HAS_MIN: bool = false;
    #[inline(always)]
    fn unpack(b: &[u8], q: &mut [i8], sc: &mut [f32], mn: &mut [f32]) {
        let d = f16_at(b, 0);
        let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
        nibbles(&b[6..22], Some(qh), 16, q);
        sc[..2].fill(d);
        mn[..2].fill(0.0);
    }
}

impl Format for Q5_1 {
    const VALUES: usize = 32;
    const BYTES: usize = 24;
    const HAS_MIN: bool = true;
    #[inline(always)]
    fn unpack(b: &[u8], q: &mut [i8], sc: &mut [f32], mn: &mut [f32]) {
        let (d, m) = (f16_at(b, 0), f16_at(b, 2));
        let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        nibbles(&b[8..24], Some(qh), 0, q);
        sc[..2].fill(d);
        mn[..2].fill(m);
    }
}

impl Format for Q8_0 {
    const VALUES: usize = 32;
    const BYTES: usize = 34;
    const HAS_MIN: bool = false;
    #[inline(always)]
    fn unpack(b: &[u8], q: &mut [i8], sc: &mut [f32], mn: &mut [f32]) {
        let d = f16_at(b, 0);
        for (o, &v) in q[..32].iter_mut().zip(&b[2..34]) {
            *o = v as i8;
        }
        sc[..2].fill(d);
        mn[..2].fill(0.0);
    }
}

/// Scale and minimum (6 bits each) of sub-block `j` of a Q4_K/Q5_K block's
/// 12 packed bytes `s`.
#[inline(always)]
fn scale_min_k4(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

/// Q4_K/Q5_K: 8 sub-blocks of 32, each of 4-bit values (low nibbles of
/// `qs[32 c..32 c + 32]` for sub-block `2 c`, high ones for `2 c + 1`), with
/// the fifth bit from `qh` (bit `2 c` / `2 c + 1` of `qh[l]`) when given.
#[inline(always)]
fn unpack_k(b: &[u8], qh: Option<&[u8]>, qs: &[u8], q: &mut [i8], sc: &mut [f32], mn: &mut [f32]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let scales = &b[4..16];
    let qs = &qs[..128];
    let q = &mut q[..256];
    for c in 0..4 {
        let (s0, m0) = scale_min_k4(2 * c, scales);
        let (s1, m1) = scale_min_k4(2 * c + 1, scales);
        let src = &qs[32 * c..32 * c + 32];
        let (lo, hi) = q[64 * c..64 * c + 64].split_at_mut(32);
        match qh {
            Some(h) => {
                let h = &h[..32];
                for l in 0..32 {
                    lo[l] = ((src[l] & 15) | (((h[l] >> (2 * c)) & 1) << 4)) as i8;
                    hi[l] = ((src[l] >> 4) | (((h[l] >> (2 * c + 1)) & 1) << 4)) as i8;
                }
            }
            None => {
                for l in 0..32 {
                    lo[l] = (src[l] & 15) as i8;
                    hi[l] = (src[l] >> 4) as i8;
                }
            }
        }
        sc[4 * c..4 * c + 2].fill(d * s0 as f32);
        sc[4 * c + 2..4 * c + 4].fill(d * s1 as f32);
        mn[4 * c..4 * c + 2].fill(-dmin * m0 as f32);
        mn[4 * c + 2..4 * c + 4].fill(-dmin * m1 as f32);
    }
}

impl Format for Q4K {
    const VALUES: usize = 256;
    const BYTES: usize = 144;
    const HAS_MIN: bool = true;
    #[inline(always)]
    fn unpack(b: &[u8], q: &mut [i8], sc: &mut [f32], mn: &mut [f32]) {
        unpack_k(b, None, &b[16..144], q, sc, mn);
    }
}

impl Format for Q5K {
    const VALUES: usize = 256;
    const BYTES: usize = 176;
    const HAS_MIN: bool = true;
    #[inline(always)]
    fn unpack(b: &[u8], q: &mut [i8], sc: &mut [f32], mn: &mut [f32]) {
        unpack_k(b, Some(&b[16..48]), &b[48..176], q, sc, mn);
    }
}

impl Format for Q6K {
    const VALUES: usize = 256;
    const BYTES: usize = 210;
    const HAS_MIN: bool = false;
    #[inline(always)]
    fn unpack(b: &[u8], q: &mut [i8], sc: &mut [f32], mn: &mut [f32]) {
        let (ql, qh, scales) = (&b[..128], &b[128..192], &b[192..208]);
        let d = f16_at(b, 208);
        let q = &mut q[..256];
        for half in 0..2 {
            let ql = &ql[64 * half..64 * half + 64];
            let qh = &qh[32 * half..32 * half + 32];
            let out = &mut q[128 * half..128 * half + 128];
            for l in 0..32 {
                let h = qh[l];
                out[l] = ((ql[l] & 15) | ((h & 3) << 4)) as i8 - 32;
                out[l + 32] = ((ql[l + 32] & 15) | (((h >> 2) & 3) << 4)) as i8 - 32;
                out[l + 64] = ((ql[l] >> 4) | (((h >> 4) & 3) << 4)) as i8 - 32;
                out[l + 96] = ((ql[l + 32] >> 4) | (((h >> 6) & 3) << 4)) as i8 - 32;
            }
        }
        for (s, &v) in sc[..16].iter_mut().zip(scales) {
            *s = d * (v as i8) as f32;
        }
        mn[..16].fill(0.0);
    }
}

/// Unpack a whole row of `F` blocks into `q` (a value each) and `sc`, `mn`
/// (one per 16 values).
#[inline(always)]
pub(crate) fn unpack_row<F: Format>(row: &[u8], q: &mut [i8], sc: &mut [f32], mn: &mut [f32]) {
    for (((b, qb), sb), mb) in row
        .chunks_exact(F::BYTES)
        .zip(q.chunks_exact_mut(F::VALUES))
        .zip(sc.chunks_exact_mut(F::VALUES / 16))
        .zip(mn.chunks_exact_mut(F::VALUES / 16))
    {
        F::unpack(b, qb, sb, mb);
    }
}

/// Dequantize a whole row of `F` blocks.
fn dequantize_with<F: Format>(row: &[u8], out: &mut [f32]) {
    let mut q = [0i8; 256];
    let mut sc = [0f32; 16];
    let mut mn = [0f32; 16];
    for (b, o) in row
        .chunks_exact(F::BYTES)
        .zip(out.chunks_exact_mut(F::VALUES))
    {
        F::unpack(b, &mut q, &mut sc, &mut mn);
        for (j, v) in o.iter_mut().enumerate() {
            *v = sc[j / 16] * q[j] as f32 + mn[j / 16];
        }
    }
}

/// Dequantize a row of `qtype` blocks into `out` (lengths checked by the caller).
pub(crate) fn dequantize_row(qtype: QType, row: &[u8], out: &mut [f32]) {
    match qtype {
        QType::Q4_0 => dequantize_with::<Q4_0>(row, out),
        QType::Q4_1 => dequantize_with::<Q4_1>(row, out),
        QType::Q5_0 => dequantize_with::<Q5_0>(row, out),
        QType::Q5_1 => dequantize_with::<Q5_1>(row, out),
        QType::Q8_0 => dequantize_with::<Q8_0>(row, out),
        QType::Q4_K => dequantize_with::<Q4K>(row, out),
        QType::Q5_K => dequantize_with::<Q5K>(row, out),
        QType::Q6_K => dequantize_with::<Q6K>(row, out),
    }
}
