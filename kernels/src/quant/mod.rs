//! Matrix products with quantized weights stored as GGUF/GGML blocks
//! (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K), used as stored.
//!
//! Activations are quantized to 8 bits on the fly ([`QActs`]): one scale per
//! 32 values and the integer sum of every 16, for every weight format (finer
//! than GGML's per-256 Q8_K for the k-quants; one quantized copy of an input
//! then serves weights of any format). The dot of a weight row with an
//! activation row is an integer dot per 16 values, scaled and summed in
//! `f32`:
//!
//! `w . a = sum_c da_c * sum_{k in c} (sc_k * (q_k . qa_k) + mn_k * sum(qa_k))`
//!
//! over 32-value chunks `c` and their two 16-value groups `k`.
//!
//! [`QMatrix::matmul`] runs `y = x W^T` for activation rows `x`, parallel
//! over weight rows (rayon). Decoding (up to 4 activation rows) decodes each
//! block in registers and dots it at once (`fused.rs`); a prompt unpacks each
//! weight row once (`formats.rs`) and reuses it for a group of activation
//! rows (`group.rs`). Both have AVX2 builds, with AVX-512 VNNI's one-
//! instruction integer dot where the CPU has it, picked at run time; the
//! portable build runs elsewhere. `cargo run --release -p seki-kernels
//! --example qbench` times them.

mod acts;
mod formats;
mod fused;
mod group;
mod group_vnni;
mod matmul;
mod packed;

pub use acts::QActs;
pub use matmul::{matmul, matvec_into};
pub use packed::PackedQ8;

/// Errors of the quantized kernels (shapes and data that do not fit).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QuantError {
    /// A GGML type these kernels do not handle.
    #[error("unsupported GGML tensor type {0}")]
    UnsupportedType(u32),
    /// Columns not a whole number of the format's blocks.
    #[error("{cols} columns are not whole {qtype:?} blocks of {block}")]
    Columns {
        /// The format.
        qtype: QType,
        /// Columns of the matrix.
        cols: usize,
        /// Values per block.
        block: usize,
    },
    /// Data shorter or longer than the shape says.
    #[error("{what}: {got} bytes or values for a shape that needs {want}")]
    Size {
        /// What was checked.
        what: &'static str,
        /// Its length.
        got: usize,
        /// The length the shape needs.
        want: usize,
    },
    /// A format [`PackedQ8`] does not repack.
    #[error("{0:?} weights are not repacked (only Q8_0, Q5_0 and Q4_0 are)")]
    NotPackable(QType),
    /// A row index past the end.
    #[error("row {row} of a matrix with {rows} rows")]
    Row {
        /// The index asked for.
        row: usize,
        /// Rows of the matrix.
        rows: usize,
    },
}

/// A quantized block format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum QType {
    /// 32 values: f16 scale, 4-bit ints offset by 8.
    Q4_0,
    /// 32 values: f16 scale and minimum, 4-bit ints.
    Q4_1,
    /// 32 values: f16 scale, 5-bit ints offset by 16.
    Q5_0,
    /// 32 values: f16 scale and minimum, 5-bit ints.
    Q5_1,
    /// 32 values: f16 scale, 8-bit ints.
    Q8_0,
    /// 256 values: f16 scale and minimum, 6-bit sub-block scales and
    /// minimums per 32, 4-bit ints.
    Q4_K,
    /// Like Q4_K with 5-bit ints.
    Q5_K,
    /// 256 values: f16 scale, 8-bit sub-block scales per 16, 6-bit ints
    /// offset by 32.
    Q6_K,
}

impl QType {
    /// Every format, for tests and listings.
    pub const ALL: [QType; 8] = [
        QType::Q4_0,
        QType::Q4_1,
        QType::Q5_0,
        QType::Q5_1,
        QType::Q8_0,
        QType::Q4_K,
        QType::Q5_K,
        QType::Q6_K,
    ];

    /// The format of GGML type id `id` (the `ggml_type` numbering of GGUF).
    pub fn from_ggml(id: u32) -> Result<Self, QuantError> {
        Ok(match id {
            2 => QType::Q4_0,
            3 => QType::Q4_1,
            6 => QType::Q5_0,
            7 => QType::Q5_1,
            8 => QType::Q8_0,
            12 => QType::Q4_K,
            13 => QType::Q5_K,
            14 => QType::Q6_K,
            other => return Err(QuantError::UnsupportedType(other)),
        })
    }

    /// Values per block.
    pub const fn block_values(self) -> usize {
        match self {
            QType::Q4_0 | QType::Q4_1 | QType::Q5_0 | QType::Q5_1 | QType::Q8_0 => 32,
            QType::Q4_K | QType::Q5_K | QType::Q6_K => 256,
        }
    }

    /// Bytes per block.
    pub const fn block_bytes(self) -> usize {
        match self {
            QType::Q4_0 => 18,
            QType::Q4_1 => 20,
            QType::Q5_0 => 22,
            QType::Q5_1 => 24,
            QType::Q8_0 => 34,
            QType::Q4_K => 144,
            QType::Q5_K => 176,
            QType::Q6_K => 210,
        }
    }

    /// Bytes of a row of `cols` values.
    pub fn row_bytes(self, cols: usize) -> Result<usize, QuantError> {
        let block = self.block_values();
        if !cols.is_multiple_of(block) {
            return Err(QuantError::Columns {
                qtype: self,
                cols,
                block,
            });
        }
        Ok(cols / block * self.block_bytes())
    }
}

/// A `rows x cols` matrix of quantized blocks, row-major (each row is
/// `cols / block_values` blocks), borrowed.
#[derive(Debug, Clone, Copy)]
pub struct QMatrix<'a> {
    qtype: QType,
    rows: usize,
    cols: usize,
    data: &'a [u8],
}

impl<'a> QMatrix<'a> {
    /// View `data` as a `rows x cols` matrix of `qtype` blocks; its length
    /// must be exactly what the shape needs.
    pub fn new(qtype: QType, rows: usize, cols: usize, data: &'a [u8]) -> Result<Self, QuantError> {
        let want = qtype
            .row_bytes(cols)?
            .checked_mul(rows)
            .ok_or(QuantError::Size {
                what: "matrix data",
                got: data.len(),
                want: usize::MAX,
            })?;
        if data.len() != want {
            return Err(QuantError::Size {
                what: "matrix data",
                got: data.len(),
                want,
            });
        }
        Ok(QMatrix {
            qtype,
            rows,
            cols,
            data,
        })
    }

    /// The format.
    pub fn qtype(&self) -> QType {
        self.qtype
    }

    /// Rows (outputs).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns (inputs).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The bytes of row `r`.
    pub(crate) fn row(&self, r: usize) -> &'a [u8] {
        let rb = self.data.len() / self.rows.max(1);
        &self.data[r * rb..(r + 1) * rb]
    }

    /// The bytes of rows `first..first + n` (clamped to the matrix).
    pub(crate) fn row_span(&self, first: usize, n: usize) -> &'a [u8] {
        let rb = self.data.len() / self.rows.max(1);
        let end = ((first + n) * rb).min(self.data.len());
        &self.data[(first * rb).min(end)..end]
    }

    /// Row `r` as `f32` values into `out` (`cols` long), e.g. an embedding.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) -> Result<(), QuantError> {
        check_row(r, self.rows, out.len(), self.cols)?;
        formats::dequantize_row(self.qtype, self.row(r), out);
        Ok(())
    }

    /// `y = x W^T`: `x` is `n x cols` (row-major), `y` becomes `n x rows`.
    pub fn matmul(&self, x: &[f32], n: usize, y: &mut [f32]) -> Result<(), QuantError> {
        let acts = QActs::quantize(x, n, self.cols)?;
        matmul(self, &acts, y)
    }
}

/// The checks of a row dequantization: row `r` of `rows`, into `len`
/// values for `cols` columns.
fn check_row(r: usize, rows: usize, len: usize, cols: usize) -> Result<(), QuantError> {
    if r >= rows {
        return Err(QuantError::Row { row: r, rows });
    }
    if len != cols {
        return Err(QuantError::Size {
            what: "dequantized row",
            got: len,
            want: cols,
        });
    }
    Ok(())
}

/// An IEEE half stored little-endian at `b[0..2]`, as `f32`.
#[inline(always)]
fn f16_at(b: &[u8], at: usize) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

#[cfg(test)]
mod tests;
