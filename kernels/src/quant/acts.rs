//! Activations quantized to 8 bits: a scale per 32 values and the integer
//! sum of every 16 (for the formats with minimums or offsets).

use super::QuantError;
use rayon::prelude::*;

/// `n` rows of `cols` activations, 8-bit: `x[i] ~ d[i / 32] * qs[i]`.
#[derive(Debug, Clone, Default)]
pub struct QActs {
    pub(crate) n: usize,
    pub(crate) cols: usize,
    /// The 8-bit values, `n * cols`, in `-127..=127`.
    pub(crate) qs: Vec<i8>,
    /// The same values offset to unsigned (`qs + 128`), for products
    /// whose instruction takes an unsigned operand (AVX-512 VNNI's
    /// `dpbusd`) without a sign flip per product.
    pub(crate) us: Vec<u8>,
    /// One scale per 32 values.
    pub(crate) d: Vec<f32>,
    /// The sum of `qs` over every 16 values.
    pub(crate) sums: Vec<i32>,
    /// Per 32 values, `d` times the sum of `qs` (the formats' minimum
    /// terms in one multiply).
    pub(crate) dsums: Vec<f32>,
}

crate::simd_fn! {
    /// Per 32 values of `x`: the scale `max |x| / 127`, each value rounded
    /// to nearest (ties away from zero), the sums per 16, `d` times the
    /// sum per 32, and the unsigned copy. One pass, vectorized in the AVX2
    /// build (the rounding stays `f32::round`'s in both builds).
    fn quantize_blocks<M>(
        x: &[f32],
        qs: &mut [i8],
        us: &mut [u8],
        d: &mut [f32],
        sums: &mut [i32],
        dsums: &mut [f32],
    ) {
        for (((((xb, qb), ub), d), s), ds) in x
            .chunks_exact(32)
            .zip(qs.chunks_exact_mut(32))
            .zip(us.chunks_exact_mut(32))
            .zip(d.iter_mut())
            .zip(sums.chunks_exact_mut(2))
            .zip(dsums.iter_mut())
        {
            let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
            let scale = amax / 127.0;
            let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
            for (q, v) in qb.iter_mut().zip(xb) {
                *q = (v * inv).round().clamp(-127.0, 127.0) as i8;
            }
            for (u, &q) in ub.iter_mut().zip(qb.iter()) {
                *u = (q as u8) ^ 0x80;
            }
            *d = scale;
            s[0] = qb[..16].iter().map(|&v| v as i32).sum();
            s[1] = qb[16..].iter().map(|&v| v as i32).sum();
            *ds = scale * (s[0] + s[1]) as f32;
        }
    }
}

impl QActs {
    /// Quantize `x` (`n x cols`, row-major; `cols` a multiple of 32):
    /// per 32 values, scale `max |x| / 127`, each value rounded to nearest.
    pub fn quantize(x: &[f32], n: usize, cols: usize) -> Result<Self, QuantError> {
        let mut q = QActs::default();
        q.quantize_from(x, n, cols)?;
        Ok(q)
    }

    /// [`QActs::quantize`] reusing this value's buffers.
    pub fn quantize_from(&mut self, x: &[f32], n: usize, cols: usize) -> Result<(), QuantError> {
        if !cols.is_multiple_of(32) {
            return Err(QuantError::Size {
                what: "activation columns (a multiple of 32)",
                got: cols,
                want: cols.next_multiple_of(32),
            });
        }
        if x.len() != n * cols {
            return Err(QuantError::Size {
                what: "activations",
                got: x.len(),
                want: n * cols,
            });
        }
        self.n = n;
        self.cols = cols;
        self.qs.resize(x.len(), 0);
        self.us.resize(x.len(), 0);
        self.d.resize(x.len() / 32, 0.0);
        self.sums.resize(x.len() / 16, 0);
        self.dsums.resize(x.len() / 32, 0.0);
        // Rows in parallel pieces when there are many (a prompt).
        let per = crate::piece_rows(n, cols) * cols;
        x.par_chunks(per)
            .zip(self.qs.par_chunks_mut(per))
            .zip(self.us.par_chunks_mut(per))
            .zip(self.d.par_chunks_mut(per / 32))
            .zip(self.sums.par_chunks_mut(per / 16))
            .zip(self.dsums.par_chunks_mut(per / 32))
            .for_each(|(((((x, qs), us), d), sums), dsums)| {
                quantize_blocks(x, qs, us, d, sums, dsums)
            });
        Ok(())
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.n
    }

    /// Columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `i` as `f32` values (the quantized activations, dequantized).
    pub fn dequantize_row(&self, i: usize) -> Vec<f32> {
        let r = i * self.cols..(i + 1) * self.cols;
        self.qs[r.clone()]
            .iter()
            .enumerate()
            .map(|(j, &q)| self.d[(r.start + j) / 32] * q as f32)
            .collect()
    }
}
