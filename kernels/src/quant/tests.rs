//! The quantized products against plain references: every block format
//! dequantized to `f32` by direct transcriptions of the GGML block formulas
//! (independent of [`super::formats`]), then dotted in `f64`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::matmul::matmul_with;
use super::{QActs, QMatrix, QType, QuantError};

/// Deterministic pseudo-random bytes.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }

    /// Uniform in `[lo, hi)`.
    fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * (self.next() % 100_000) as f32 / 100_000.0
    }
}

fn put_f16(b: &mut [u8], at: usize, v: f32) {
    b[at..at + 2].copy_from_slice(&half::f16::from_f32(v).to_bits().to_le_bytes());
}

fn f16(b: &[u8], at: usize) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

/// `rows x cols` random blocks of `t`: every quant bit random, the f16
/// scales finite and of realistic size (minimums of either sign).
fn random_matrix(t: QType, rows: usize, cols: usize, seed: u64) -> Vec<u8> {
    let mut g = Lcg(seed);
    let nb = rows * cols / t.block_values();
    let mut data = Vec::with_capacity(nb * t.block_bytes());
    for _ in 0..nb {
        let mut b: Vec<u8> = (0..t.block_bytes()).map(|_| g.next() as u8).collect();
        match t {
            QType::Q4_0 | QType::Q5_0 | QType::Q8_0 => put_f16(&mut b, 0, g.uniform(0.001, 0.05)),
            QType::Q4_1 | QType::Q5_1 => {
                put_f16(&mut b, 0, g.uniform(0.001, 0.05));
                put_f16(&mut b, 2, g.uniform(-0.3, 0.3));
            }
            QType::Q4_K | QType::Q5_K => {
                put_f16(&mut b, 0, g.uniform(0.0001, 0.003));
                put_f16(&mut b, 2, g.uniform(0.0001, 0.003));
            }
            QType::Q6_K => put_f16(&mut b, 208, g.uniform(0.0001, 0.003)),
        }
        data.extend(b);
    }
    data
}

fn random_acts(n: usize, seed: u64) -> Vec<f32> {
    let mut g = Lcg(seed);
    (0..n)
        .map(|i| {
            // Varying magnitudes per block, some exact zeros.
            let scale = 1.0 + (i / 32 % 5) as f32;
            if g.next().is_multiple_of(17) {
                0.0
            } else {
                scale * g.uniform(-1.0, 1.0)
            }
        })
        .collect()
}

/// GGML's reference dequantization, one block format at a time.
mod reference {
    use super::f16;
    use super::QType;

    fn scale_min(j: usize, q: &[u8]) -> (f32, f32) {
        if j < 4 {
            ((q[j] & 63) as f32, (q[j + 4] & 63) as f32)
        } else {
            let d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
            let m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
            (d as f32, m as f32)
        }
    }

    pub fn dequantize(t: QType, data: &[u8]) -> Vec<f32> {
        let mut y = Vec::new();
        for b in data.chunks_exact(t.block_bytes()) {
            match t {
                QType::Q4_0 | QType::Q4_1 => {
                    let (d, m, qs) = if t == QType::Q4_0 {
                        (f16(b, 0), 0.0, &b[2..18])
                    } else {
                        (f16(b, 0), f16(b, 2), &b[4..20])
                    };
                    let off = if t == QType::Q4_0 { 8 } else { 0 };
                    let mut out = [0f32; 32];
                    for j in 0..16 {
                        out[j] = ((qs[j] & 0x0F) as i32 - off) as f32 * d + m;
                        out[j + 16] = ((qs[j] >> 4) as i32 - off) as f32 * d + m;
                    }
                    y.extend(out);
                }
                QType::Q5_0 | QType::Q5_1 => {
                    let (d, m, h, qs) = if t == QType::Q5_0 {
                        (f16(b, 0), 0.0, 2, &b[6..22])
                    } else {
                        (f16(b, 0), f16(b, 2), 4, &b[8..24])
                    };
                    let qh = u32::from_le_bytes([b[h], b[h + 1], b[h + 2], b[h + 3]]);
                    let off = if t == QType::Q5_0 { 16 } else { 0 };
                    let mut out = [0f32; 32];
                    for j in 0..16 {
                        let xh0 = ((qh >> j) << 4) & 0x10;
                        let xh1 = (qh >> (j + 12)) & 0x10;
                        let x0 = ((qs[j] as u32 & 0x0F) | xh0) as i32 - off;
                        let x1 = ((qs[j] as u32 >> 4) | xh1) as i32 - off;
                        out[j] = x0 as f32 * d + m;
                        out[j + 16] = x1 as f32 * d + m;
                    }
                    y.extend(out);
                }
                QType::Q8_0 => {
                    let d = f16(b, 0);
                    y.extend(b[2..34].iter().map(|&q| q as i8 as f32 * d));
                }
                QType::Q4_K | QType::Q5_K => {
                    let (d, min) = (f16(b, 0), f16(b, 2));
                    let scales = &b[4..16];
                    let (qh, mut ql) = if t == QType::Q5_K {
                        (&b[16..48], &b[48..176])
                    } else {
                        (&b[0..0], &b[16..144])
                    };
                    let (mut u1, mut u2) = (1u8, 2u8);
                    let mut is = 0;
                    for _ in 0..4 {
                        let (sc, m) = scale_min(is, scales);
                        let (d1, m1) = (d * sc, min * m);
                        let (sc, m) = scale_min(is + 1, scales);
                        let (d2, m2) = (d * sc, min * m);
                        for l in 0..32 {
                            let hi = if t == QType::Q5_K && qh[l] & u1 != 0 {
                                16
                            } else {
                                0
                            };
                            y.push(d1 * ((ql[l] & 0xF) + hi) as f32 - m1);
                        }
                        for l in 0..32 {
                            let hi = if t == QType::Q5_K && qh[l] & u2 != 0 {
                                16
                            } else {
                                0
                            };
                            y.push(d2 * ((ql[l] >> 4) + hi) as f32 - m2);
                        }
                        ql = &ql[32..];
                        is += 2;
                        u1 <<= 2;
                        u2 <<= 2;
                    }
                }
                QType::Q6_K => {
                    let d = f16(b, 208);
                    let mut out = [0f32; 256];
                    for n in 0..2 {
                        let ql = &b[64 * n..];
                        let qh = &b[128 + 32 * n..];
                        let sc = &b[192 + 8 * n..];
                        let y = &mut out[128 * n..];
                        for l in 0..32 {
                            let is = l / 16;
                            let q1 = ((ql[l] & 0xF) | (qh[l] & 3) << 4) as i32 - 32;
                            let q2 = ((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4) as i32 - 32;
                            let q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) as i32 - 32;
                            let q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) as i32 - 32;
                            y[l] = d * (sc[is] as i8) as f32 * q1 as f32;
                            y[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
                            y[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
                            y[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
                        }
                    }
                    y.extend(out);
                }
            }
        }
        y
    }
}

/// Shapes `(rows, cols, n)`: rows that do not split evenly over the
/// threads' tasks, one and several blocks per row, one, a few, and more
/// activation rows than a group (32).
fn shapes(t: QType) -> Vec<(usize, usize, usize)> {
    let b = t.block_values();
    vec![
        (1, b, 1),
        (7, b, 3),
        (37, 3 * b, 1),
        (37, 3 * b, 33),
        (70, 5 * b.max(64), 2),
    ]
}

/// Check `y` against the references for weights `w` (`rows x cols`, f32
/// from the reference dequantizer) and activations `x` (`n x cols`):
///
/// * against the dequantized 8-bit activations, within `1e-5` of
///   `sum |w a|` (only `f32` rounding differs: the products of integers are
///   exact);
/// * against the original activations, within the rounding bound of the
///   8-bit quantization: `|a - a8| <= d / 2` per value with `d` its block's
///   scale, so `|w.a - w.a8| <= sum |w| d / 2` (plus the same `f32` slack).
fn check(t: QType, w: &[f32], x: &[f32], acts: &QActs, y: &[f32], rows: usize, what: &str) {
    let (n, cols) = (acts.rows(), acts.cols());
    for i in 0..n {
        let a = &x[i * cols..(i + 1) * cols];
        let a8 = acts.dequantize_row(i);
        for r in 0..rows {
            let wr = &w[r * cols..(r + 1) * cols];
            let exact: f64 = wr.iter().zip(&a8).map(|(&u, &v)| u as f64 * v as f64).sum();
            let mag: f64 = wr
                .iter()
                .zip(&a8)
                .map(|(&u, &v)| (u as f64 * v as f64).abs())
                .sum();
            let got = y[i * rows + r] as f64;
            assert!(
                (got - exact).abs() <= 1e-5 * mag + 1e-6,
                "{t:?} {what}: y[{i}, {r}] = {got}, reference {exact} (8-bit activations)"
            );
            let plain: f64 = wr.iter().zip(a).map(|(&u, &v)| u as f64 * v as f64).sum();
            let bound: f64 = wr
                .iter()
                .enumerate()
                .map(|(j, &u)| {
                    let amax = a[j / 32 * 32..j / 32 * 32 + 32]
                        .iter()
                        .fold(0f64, |m, v| m.max(v.abs() as f64));
                    u.abs() as f64 * amax / 127.0 / 2.0
                })
                .sum::<f64>()
                * 1.001
                + 1e-5 * mag
                + 1e-6;
            assert!(
                (got - plain).abs() <= bound,
                "{t:?} {what}: y[{i}, {r}] = {got}, reference {plain}, bound {bound}"
            );
        }
    }
}

#[test]
fn products_match_the_reference_for_every_format_and_build() {
    // The public entry points must take the same build as the checked one.
    let _same_build = crate::simd::DISPATCH_LOCK
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    for t in QType::ALL {
        for (s, &(rows, cols, n)) in shapes(t).iter().enumerate() {
            let data = random_matrix(t, rows, cols, 11 + s as u64);
            let w = reference::dequantize(t, &data);
            assert_eq!(w.len(), rows * cols);
            let m = QMatrix::new(t, rows, cols, &data).unwrap();
            let x = random_acts(n * cols, 7 + s as u64);
            let acts = QActs::quantize(&x, n, cols).unwrap();
            // Portable, AVX2 without VNNI, and the best the CPU has.
            for (portable, no_vnni) in [(true, false), (false, true), (false, false)] {
                crate::simd::set_no_avx512(no_vnni);
                let mut y = vec![f32::NAN; n * rows];
                matmul_with(&m, &acts, &mut y, portable).unwrap();
                crate::simd::set_no_avx512(false);
                let what = format!("{rows}x{cols}, n={n}, portable={portable}, no_vnni={no_vnni}");
                check(t, &w, &x, &acts, &y, rows, &what);
            }
            // The public entry points agree with the checked one.
            let mut y1 = vec![0f32; n * rows];
            m.matmul(&x, n, &mut y1).unwrap();
            let mut y2 = vec![0f32; n * rows];
            matmul_with(&m, &acts, &mut y2, false).unwrap();
            assert_eq!(y1, y2, "{t:?}");
            if n == 1 {
                let mut y3 = vec![0f32; rows];
                super::matvec_into(&m, &acts, &mut y3).unwrap();
                assert_eq!(y3, y2, "{t:?}");
            }
        }
    }
}

/// A row's product does not depend on the batch it came in: the products of
/// 37 activation rows at once (the prompt path), one at a time and three at
/// a time (the decoding path) are the same bits, in every build. A prompt
/// run after a reused prefix then gives the logits of a fresh run.
#[test]
fn products_do_not_depend_on_the_batch() {
    let _same_build = crate::simd::DISPATCH_LOCK
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    for t in QType::ALL {
        let (rows, cols, n) = (9, 3 * t.block_values().max(64), 37);
        let data = random_matrix(t, rows, cols, 5);
        let m = QMatrix::new(t, rows, cols, &data).unwrap();
        let x = random_acts(n * cols, 9);
        for no_vnni in [true, false] {
            crate::simd::set_no_avx512(no_vnni);
            let all = QActs::quantize(&x, n, cols).unwrap();
            let mut y = vec![0f32; n * rows];
            super::matmul(&m, &all, &mut y).unwrap();
            for (i0, k) in [(0, 1), (5, 1), (36, 1), (10, 3), (33, 4)] {
                let part = QActs::quantize(&x[i0 * cols..(i0 + k) * cols], k, cols).unwrap();
                let mut yp = vec![0f32; k * rows];
                super::matmul(&m, &part, &mut yp).unwrap();
                assert_eq!(
                    yp[..],
                    y[i0 * rows..(i0 + k) * rows],
                    "{t:?}: rows {i0}..{} alone, no_vnni={no_vnni}",
                    i0 + k
                );
            }
            crate::simd::set_no_avx512(false);
        }
    }
}

#[test]
fn rows_dequantize_like_the_reference() {
    for t in QType::ALL {
        let (rows, cols) = (5, 2 * t.block_values());
        let data = random_matrix(t, rows, cols, 3);
        let w = reference::dequantize(t, &data);
        let m = QMatrix::new(t, rows, cols, &data).unwrap();
        let mut out = vec![0f32; cols];
        for r in 0..rows {
            m.dequantize_row(r, &mut out).unwrap();
            for (j, (&u, &v)) in out.iter().zip(&w[r * cols..]).enumerate() {
                assert!(
                    (u - v).abs() <= 1e-6 * (1.0 + v.abs()),
                    "{t:?} row {r}[{j}]: {u} vs {v}"
                );
            }
        }
    }
}

#[test]
fn activations_round_to_the_nearest_step() {
    let x = random_acts(96, 5);
    let a = QActs::quantize(&x, 1, 96).unwrap();
    let back = a.dequantize_row(0);
    for (j, (&u, &v)) in x.iter().zip(&back).enumerate() {
        let amax = x[j / 32 * 32..j / 32 * 32 + 32]
            .iter()
            .fold(0f32, |m, v| m.max(v.abs()));
        assert!(
            (u - v).abs() <= amax / 127.0 / 2.0 * 1.001,
            "{j}: {u} vs {v}"
        );
    }
    // Sums per 16 are the sums of the 8-bit values.
    for k in 0..6 {
        let s: i32 = a.qs[16 * k..16 * k + 16].iter().map(|&q| q as i32).sum();
        assert_eq!(a.sums[k], s);
    }
    // The unsigned copy is each value plus 128.
    for (&u, &q) in a.us.iter().zip(&a.qs) {
        assert_eq!(u as i32, q as i32 + 128);
    }
    // All zeros: scale 0, values 0, no NaN.
    let z = QActs::quantize(&[0.0; 32], 1, 32).unwrap();
    assert_eq!(z.dequantize_row(0), vec![0.0; 32]);
}

#[test]
fn bad_shapes_are_errors() {
    let data = random_matrix(QType::Q4_K, 2, 256, 1);
    assert!(matches!(
        QMatrix::new(QType::Q4_K, 2, 128, &data[..144]),
        Err(QuantError::Columns { .. })
    ));
    assert!(matches!(
        QMatrix::new(QType::Q4_K, 3, 256, &data),
        Err(QuantError::Size { .. })
    ));
    let m = QMatrix::new(QType::Q4_K, 2, 256, &data).unwrap();
    let mut y = vec![0f32; 2];
    assert!(m.matmul(&[0.0; 255], 1, &mut y).is_err());
    assert!(m.matmul(&[0.0; 512], 1, &mut y).is_err());
    let mut y3 = vec![0f32; 3];
    assert!(m.matmul(&[0.0; 256], 1, &mut y3).is_err());
    let mut out = vec![0f32; 256];
    assert!(m.dequantize_row(2, &mut out).is_err());
    assert_eq!(QType::from_ggml(1), Err(QuantError::UnsupportedType(1)));
    assert_eq!(QType::from_ggml(12), Ok(QType::Q4_K));
    let a = QActs::quantize(&[0.0; 512], 2, 256).unwrap();
    assert!(super::matvec_into(&m, &a, &mut [0.0; 4]).is_err());
}

/// The packed products (Q8_0, Q5_0, Q4_0): against the references over odd shapes (rows
/// not a multiple of the 16-row groups or of the threads' split, one and
/// several blocks, activation rows that leave every tile remainder), the
/// portable and VNNI builds the same bits, rows independent of the batch,
/// and rows dequantized like the unpacked matrix.
#[test]
fn packed_products_match_the_reference_and_the_batch_does_not_matter() {
    use super::PackedQ8;
    let _same_build = crate::simd::DISPATCH_LOCK
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    for t in [QType::Q8_0, QType::Q5_0, QType::Q4_0] {
        for (s, &(rows, cols, n)) in [
            (1, 32, 1),
            (15, 32, 2),
            (17, 64, 3),
            (37, 96, 5),
            (50, 160, 9),
            (70, 320, 1),
            (130, 96, 66),
        ]
        .iter()
        .enumerate()
        {
            let data = random_matrix(t, rows, cols, 21 + s as u64);
            let w = reference::dequantize(t, &data);
            let m = QMatrix::new(t, rows, cols, &data).unwrap();
            let p = PackedQ8::pack(&m).unwrap();
            assert_eq!((p.rows(), p.cols()), (rows, cols));
            let x = random_acts(n * cols, 3 + s as u64);
            let acts = QActs::quantize(&x, n, cols).unwrap();
            let mut yp = vec![f32::NAN; n * rows];
            p.matmul_with(&acts, &mut yp, true).unwrap();
            let what = format!("packed {t:?} {rows}x{cols}, n={n}");
            check(t, &w, &x, &acts, &yp, rows, &format!("{what}, portable"));
            let mut y = vec![f32::NAN; n * rows];
            p.matmul(&acts, &mut y).unwrap();
            assert_eq!(
                y, yp,
                "{what}: the fast build differs from the portable one"
            );
            for i0 in 0..n {
                for k in [1, 2, 3, 4, 5] {
                    if i0 + k > n {
                        continue;
                    }
                    let part = QActs::quantize(&x[i0 * cols..(i0 + k) * cols], k, cols).unwrap();
                    let mut ys = vec![0f32; k * rows];
                    p.matmul(&part, &mut ys).unwrap();
                    assert_eq!(
                        ys[..],
                        y[i0 * rows..(i0 + k) * rows],
                        "{what}: rows {i0}..{} alone",
                        i0 + k
                    );
                }
            }
            // One thread runs every group in one task: the same bits.
            let one = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap();
            let mut y1 = vec![f32::NAN; n * rows];
            one.install(|| p.matmul(&acts, &mut y1)).unwrap();
            assert_eq!(y1, y, "{what}: one thread");
            let (mut a, mut b) = (vec![0f32; cols], vec![0f32; cols]);
            for r in 0..rows {
                m.dequantize_row(r, &mut a).unwrap();
                p.dequantize_row(r, &mut b).unwrap();
                assert_eq!(a, b, "{what}: row {r}");
            }
        }
    }
    // Shapes and formats it refuses.
    let data = random_matrix(QType::Q4_1, 2, 32, 1);
    let m = QMatrix::new(QType::Q4_1, 2, 32, &data).unwrap();
    assert_eq!(
        PackedQ8::pack(&m).err(),
        Some(QuantError::NotPackable(QType::Q4_1))
    );
    let t = QType::Q8_0;
    let data = random_matrix(t, 3, 64, 1);
    let p = PackedQ8::pack(&QMatrix::new(t, 3, 64, &data).unwrap()).unwrap();
    let a = QActs::quantize(&[0.0; 64], 1, 64).unwrap();
    assert!(p.matmul(&a, &mut [0.0; 4]).is_err());
    let a = QActs::quantize(&[0.0; 32], 1, 32).unwrap();
    assert!(p.matmul(&a, &mut [0.0; 3]).is_err());
    assert!(p.dequantize_row(3, &mut [0.0; 64]).is_err());
}
