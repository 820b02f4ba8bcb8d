//! The small dense linear algebra the proxies need, on `N x N` matrices
//! (`N` = the probe batch, tens of samples): the log-determinant of a
//! kernel matrix (NASWOT) and the eigenvalues of a correlation matrix
//! (jacob_cov).

/// A square matrix, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Square {
    n: usize,
    a: Vec<f64>,
}

impl Square {
    /// From `n * n` values, row-major; `None` when the length is not a square.
    pub fn from_rows(n: usize, a: Vec<f64>) -> Option<Self> {
        (a.len() == n * n).then_some(Square { n, a })
    }

    /// The order.
    pub fn order(&self) -> usize {
        self.n
    }

    /// Entry `(i, j)`.
    pub fn at(&self, i: usize, j: usize) -> f64 {
        self.a[i * self.n + j]
    }

    /// `ln |det A|` by Gaussian elimination with partial pivoting; `None`
    /// when the matrix is singular (a zero pivot) or holds a non-finite value.
    pub fn log_abs_det(&self) -> Option<f64> {
        let n = self.n;
        let mut m = self.a.clone();
        if m.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let scale = m.iter().fold(0f64, |s, v| s.max(v.abs()));
        if scale == 0.0 {
            return None;
        }
        let tiny = scale * 1e-13;
        let mut log = 0.0;
        for col in 0..n {
            let pivot =
                (col..n).max_by(|&r, &s| m[r * n + col].abs().total_cmp(&m[s * n + col].abs()))?;
            let p = m[pivot * n + col];
            if p.abs() <= tiny {
                return None;
            }
            if pivot != col {
                for k in 0..n {
                    m.swap(pivot * n + k, col * n + k);
                }
            }
            log += p.abs().ln();
            for r in col + 1..n {
                let f = m[r * n + col] / p;
                if f != 0.0 {
                    for k in col..n {
                        m[r * n + k] -= f * m[col * n + k];
                    }
                }
            }
        }
        Some(log)
    }

    /// The eigenvalues of a symmetric matrix (cyclic Jacobi rotations), in
    /// ascending order; `None` for a non-finite entry.
    pub fn symmetric_eigenvalues(&self) -> Option<Vec<f64>> {
        let n = self.n;
        let mut m = self.a.clone();
        if m.iter().any(|v| !v.is_finite()) {
            return None;
        }
        for _sweep in 0..100 {
            let off: f64 = (0..n)
                .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
                .map(|(i, j)| m[i * n + j] * m[i * n + j])
                .sum();
            let diag: f64 = (0..n).map(|i| m[i * n + i] * m[i * n + i]).sum();
            if off <= 1e-30 * diag.max(1e-300) {
                break;
            }
            for p in 0..n {
                for q in p + 1..n {
                    let apq = m[p * n + q];
                    if apq == 0.0 {
                        continue;
                    }
                    let (app, aqq) = (m[p * n + p], m[q * n + q]);
                    let theta = (aqq - app) / (2.0 * apq);
                    let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                    let t = if theta == 0.0 { 1.0 } else { t };
                    let c = 1.0 / (t * t + 1.0).sqrt();
                    let s = t * c;
                    for k in 0..n {
                        let (akp, akq) = (m[k * n + p], m[k * n + q]);
                        m[k * n + p] = c * akp - s * akq;
                        m[k * n + q] = s * akp + c * akq;
                    }
                    for k in 0..n {
                        let (apk, aqk) = (m[p * n + k], m[q * n + k]);
                        m[p * n + k] = c * apk - s * aqk;
                        m[q * n + k] = s * apk + c * aqk;
                    }
                }
            }
        }
        let mut ev: Vec<f64> = (0..n).map(|i| m[i * n + i]).collect();
        ev.sort_by(f64::total_cmp);
        Some(ev)
    }
}

/// The correlation matrix of the rows of `x` (`rows x cols`, row-major),
/// as NumPy's `corrcoef`; `None` when a row is constant (its correlation
/// is undefined) or `x` holds a non-finite value.
pub fn row_correlation(x: &[f64], rows: usize, cols: usize) -> Option<Square> {
    if rows == 0 || cols < 2 || x.len() != rows * cols || x.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut centred = Vec::with_capacity(x.len());
    let mut norms = Vec::with_capacity(rows);
    for r in x.chunks(cols) {
        let mean = r.iter().sum::<f64>() / cols as f64;
        let row: Vec<f64> = r.iter().map(|v| v - mean).collect();
        let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm == 0.0 || !norm.is_finite() {
            return None;
        }
        norms.push(norm);
        centred.extend(row);
    }
    let mut a = vec![0.0; rows * rows];
    for i in 0..rows {
        for j in i..rows {
            let (ri, rj) = (
                &centred[i * cols..(i + 1) * cols],
                &centred[j * cols..(j + 1) * cols],
            );
            let dot: f64 = ri.iter().zip(rj).map(|(a, b)| a * b).sum();
            let c = dot / (norms[i] * norms[j]);
            a[i * rows + j] = c;
            a[j * rows + i] = c;
        }
    }
    Square::from_rows(rows, a)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn log_det_of_known_matrices() {
        let m = Square::from_rows(3, vec![2.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 4.0]).unwrap();
        assert!((m.log_abs_det().unwrap() - 24f64.ln()).abs() < 1e-12);
        // Needs a row swap: det = -(1*4 - 2*3)... = -2 for [[0,1],[2,3]] -> |det| = 2.
        let m = Square::from_rows(2, vec![0.0, 1.0, 2.0, 3.0]).unwrap();
        assert!((m.log_abs_det().unwrap() - 2f64.ln()).abs() < 1e-12);
        // Two equal rows: singular.
        let m = Square::from_rows(2, vec![1.0, 2.0, 1.0, 2.0]).unwrap();
        assert_eq!(m.log_abs_det(), None);
        let m = Square::from_rows(1, vec![f64::NAN]).unwrap();
        assert_eq!(m.log_abs_det(), None);
    }

    #[test]
    fn eigenvalues_of_a_symmetric_matrix() {
        // [[2,1],[1,2]]: 1 and 3.
        let m = Square::from_rows(2, vec![2.0, 1.0, 1.0, 2.0]).unwrap();
        let ev = m.symmetric_eigenvalues().unwrap();
        assert!(
            (ev[0] - 1.0).abs() < 1e-12 && (ev[1] - 3.0).abs() < 1e-12,
            "{ev:?}"
        );
        // A 4x4: the eigenvalues sum to the trace and multiply to the determinant.
        let a = vec![
            4.0, 1.0, 0.5, 0.2, 1.0, 3.0, 0.3, 0.1, 0.5, 0.3, 2.0, 0.4, 0.2, 0.1, 0.4, 1.0,
        ];
        let m = Square::from_rows(4, a).unwrap();
        let ev = m.symmetric_eigenvalues().unwrap();
        assert!((ev.iter().sum::<f64>() - 10.0).abs() < 1e-10);
        let log_prod: f64 = ev.iter().map(|v| v.ln()).sum();
        assert!((log_prod - m.log_abs_det().unwrap()).abs() < 1e-10);
    }

    #[test]
    fn correlation_of_rows() {
        let x = [1.0, 2.0, 3.0, 2.0, 4.0, 6.0, 3.0, 2.0, 1.0];
        let c = row_correlation(&x, 3, 3).unwrap();
        assert!((c.at(0, 1) - 1.0).abs() < 1e-12);
        assert!((c.at(0, 2) + 1.0).abs() < 1e-12);
        assert!((c.at(2, 2) - 1.0).abs() < 1e-12);
        // A constant row has no correlation.
        assert!(row_correlation(&[1.0, 1.0, 1.0, 1.0, 2.0, 3.0], 2, 3).is_none());
    }
}
