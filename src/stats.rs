//! How far a score can be trusted: the standard error a validation set of
//! a given size implies, the spread over repeated evaluations, whether two
//! scores are distinguishable, the precision worth printing, and the rank
//! correlations (Kendall τ, Spearman ρ) that measure a proxy's fidelity.
//!
//! Scores are accuracies in percent, so standard errors are in points.

use serde::{Deserialize, Serialize};

/// The standard error (points) of an accuracy of `score` percent measured on
/// `n` independent images: `100 · sqrt(p (1 − p) / n)`. At the edges (0 or
/// 100 %) `p` is taken half an image inside, so the error is never zero.
pub fn binomial_se(score: f64, n: usize) -> Option<f64> {
    if n == 0 || !score.is_finite() {
        return None;
    }
    let n = n as f64;
    let half = 0.5 / n;
    let p = (score / 100.0).clamp(half, 1.0 - half);
    Some(100.0 * (p * (1.0 - p) / n).sqrt())
}

/// Mean and sample standard deviation (`None` below two values).
pub fn mean_sd(xs: &[f64]) -> (f64, Option<f64>) {
    if xs.is_empty() {
        return (f64::NAN, None);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    if xs.len() < 2 {
        return (mean, None);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, Some(var.sqrt()))
}

/// The uncertainty of a score: its standard error and where it comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Uncertainty {
    /// Standard error of the score (points).
    pub se: f64,
    /// Evaluations the score is the mean of (1: a single evaluation).
    pub repeats: usize,
    /// The standard error one evaluation's validation set implies (points).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binomial_se: Option<f64>,
    /// Sample standard deviation of the repeats' scores (seeds), with two or more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sd: Option<f64>,
    /// Each repeat's score, in order (with two or more).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scores: Vec<f64>,
}

impl Uncertainty {
    /// One evaluation with the standard error its evaluator gave.
    pub fn single(se: f64) -> Self {
        Uncertainty {
            se,
            repeats: 1,
            binomial_se: Some(se),
            sd: None,
            scores: Vec::new(),
        }
    }

    /// The mean of repeated evaluations (`scores`) and its uncertainty, each
    /// evaluation's own standard error in `ses`. The standard error of the
    /// mean is `sqrt(max(sd², se²) / r)`: the spread over seeds, but never
    /// below what the validation set alone implies (a sample standard
    /// deviation of two or three scores can be near zero by chance).
    /// `None` for no scores, or one score without a standard error.
    pub fn of_repeats(scores: &[f64], ses: &[Option<f64>]) -> Option<(f64, Uncertainty)> {
        let known: Vec<f64> = ses.iter().flatten().copied().collect();
        let binomial = (!known.is_empty()).then(|| {
            let ms = known.iter().map(|s| s * s).sum::<f64>() / known.len() as f64;
            ms.sqrt()
        });
        let (mean, sd) = mean_sd(scores);
        let r = scores.len();
        if r == 0 {
            return None;
        }
        let var = sd
            .unwrap_or(0.0)
            .powi(2)
            .max(binomial.unwrap_or(0.0).powi(2));
        if r == 1 && binomial.is_none() {
            return None;
        }
        Some((
            mean,
            Uncertainty {
                se: (var / r as f64).sqrt(),
                repeats: r,
                binomial_se: binomial,
                sd,
                scores: if r > 1 { scores.to_vec() } else { Vec::new() },
            },
        ))
    }
}

/// How a score compares with another, given their noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// Higher by more than the noise allows.
    Better,
    /// Within noise of it (or equal).
    Tie,
    /// Lower by more than the noise allows.
    Worse,
}

/// Compare score `a` (standard error `se_a`) with `b` (`se_b`): a tie when
/// `|a − b| ≤ z · sqrt(se_a² + se_b²)`. With `z ≤ 0`, or a standard error
/// unknown, only equal scores tie.
pub fn compare(a: f64, se_a: Option<f64>, b: f64, se_b: Option<f64>, z: f64) -> Comparison {
    let margin = match (se_a, se_b) {
        (Some(x), Some(y)) if z > 0.0 => z * (x * x + y * y).sqrt(),
        _ => 0.0,
    };
    let d = a - b;
    if d > margin {
        Comparison::Better
    } else if d < -margin {
        Comparison::Worse
    } else {
        Comparison::Tie
    }
}

/// Decimal places a score with standard error `se` supports: two
/// significant digits of the error (e.g. ± 1.3 → one place, ± 0.26 → two);
/// two places when the error is unknown.
pub fn decimals(se: Option<f64>) -> usize {
    match se {
        Some(s) if s > 0.0 && s.is_finite() => (1.0 - s.log10().floor()).clamp(0.0, 4.0) as usize,
        _ => 2,
    }
}

/// A score at the precision its noise supports (`77.3`).
pub fn round(score: f64, se: Option<f64>) -> String {
    let d = decimals(se);
    format!("{score:.d$}")
}

/// A score with its standard error (`77.3 ± 1.3`), or at two places without one.
pub fn with_se(score: f64, se: Option<f64>) -> String {
    let d = decimals(se);
    match se {
        Some(s) if s.is_finite() => format!("{score:.d$} ± {s:.d$}"),
        _ => format!("{score:.d$}"),
    }
}

/// Average ranks (1-based; tied values share the mean of their ranks).
pub fn ranks(xs: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..xs.len()).collect();
    idx.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut out = vec![0.0; xs.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && xs[idx[j + 1]] == xs[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            out[k] = r;
        }
        i = j + 1;
    }
    out
}

fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    let d = (sxx * syy).sqrt();
    (d > 0.0).then(|| sxy / d)
}

/// Spearman's ρ: the Pearson correlation of the average ranks (so ties are
/// handled). `None` with fewer than two pairs, unequal lengths, or when
/// either side is constant.
pub fn spearman_rho(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 2 {
        return None;
    }
    pearson(&ranks(x), &ranks(y))
}

/// Kendall's τ-b: `(concordant − discordant) / sqrt((n0 − ties_x)(n0 −
/// ties_y))` over all pairs, so ties on either side are handled. `None`
/// as for [`spearman_rho`].
pub fn kendall_tau(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 2 {
        return None;
    }
    let n = x.len();
    // Sort by x (then y); count discordant pairs by merge sort on y, as in
    // Knight's O(n log n) algorithm.
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]).then(y[a].total_cmp(&y[b])));
    let xs: Vec<f64> = idx.iter().map(|&i| x[i]).collect();
    let ys: Vec<f64> = idx.iter().map(|&i| y[i]).collect();
    let ties_x = tied_pairs(&xs);
    // Pairs tied on both x and y.
    let mut ties_xy = 0u64;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && xs[j + 1] == xs[i] && ys[j + 1] == ys[i] {
            j += 1;
        }
        let t = (j - i + 1) as u64;
        ties_xy += t * (t - 1) / 2;
        i = j + 1;
    }
    let mut ys_sorted = ys;
    let swaps = merge_count(&mut ys_sorted);
    let ties_y = tied_pairs(&ys_sorted);
    let n0 = (n as u64) * (n as u64 - 1) / 2;
    // Pairs untied on both: concordant + discordant.
    let untied = n0 + ties_xy - ties_x - ties_y;
    let discordant = swaps;
    let concordant = untied.saturating_sub(discordant);
    let d = ((n0 - ties_x) as f64 * (n0 - ties_y) as f64).sqrt();
    (d > 0.0).then(|| (concordant as f64 - discordant as f64) / d)
}

/// Pairs of equal values in a sorted slice.
fn tied_pairs(v: &[f64]) -> u64 {
    let mut total = 0;
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[i] {
            j += 1;
        }
        let t = (j - i + 1) as u64;
        total += t * (t - 1) / 2;
        i = j + 1;
    }
    total
}

/// Sort `v` ascending by merge sort; return the number of strictly
/// inverted pairs (i < j, v[i] > v[j]).
fn merge_count(v: &mut [f64]) -> u64 {
    let n = v.len();
    if n < 2 {
        return 0;
    }
    let mid = n / 2;
    let mut count = merge_count(&mut v[..mid]) + merge_count(&mut v[mid..]);
    let mut merged = Vec::with_capacity(n);
    let (mut i, mut j) = (0, mid);
    while i < mid && j < n {
        if v[j] < v[i] {
            count += (mid - i) as u64;
            merged.push(v[j]);
            j += 1;
        } else {
            merged.push(v[i]);
            i += 1;
        }
    }
    merged.extend_from_slice(&v[i..mid]);
    merged.extend_from_slice(&v[j..n]);
    v.copy_from_slice(&merged);
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// Kendall τ-b by definition, over all pairs.
    fn tau_naive(x: &[f64], y: &[f64]) -> f64 {
        let (mut c, mut d, mut tx, mut ty, mut n0): (f64, f64, f64, f64, f64) =
            (0.0, 0.0, 0.0, 0.0, 0.0);
        for i in 0..x.len() {
            for j in i + 1..x.len() {
                n0 += 1.0;
                let (a, b) = ((x[i] - x[j]).signum(), (y[i] - y[j]).signum());
                if x[i] == x[j] {
                    tx += 1.0;
                }
                if y[i] == y[j] {
                    ty += 1.0;
                }
                if x[i] != x[j] && y[i] != y[j] {
                    if a == b {
                        c += 1.0
                    } else {
                        d += 1.0
                    }
                }
            }
        }
        (c - d) / ((n0 - tx) * (n0 - ty)).sqrt()
    }

    #[test]
    fn kendall_and_spearman_match_hand_computed_values() {
        // 7 concordant, 3 discordant pairs: τ = 4/10. Σd² = 8: ρ = 1 − 48/120.
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let y = [3.0, 1.0, 2.0, 5.0, 4.0];
        assert!(close(kendall_tau(&x, &y).unwrap(), 0.4));
        assert!(close(spearman_rho(&x, &y).unwrap(), 0.6));
        // A tie in x: 5 concordant, 0 discordant, n0 = 6, one tied pair:
        // τ-b = 5 / sqrt(5 · 6). Ranks of x 1, 2.5, 2.5, 4: ρ = 4.5 / sqrt(22.5).
        let x = [1.0, 2.0, 2.0, 3.0];
        let y = [1.0, 3.0, 2.0, 4.0];
        assert!(close(kendall_tau(&x, &y).unwrap(), 5.0 / 30f64.sqrt()));
        assert!(close(spearman_rho(&x, &y).unwrap(), 4.5 / 22.5f64.sqrt()));
        // Reversed: −1; constant: undefined.
        assert!(close(
            kendall_tau(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]).unwrap(),
            -1.0
        ));
        assert_eq!(kendall_tau(&[1.0, 1.0], &[1.0, 2.0]), None);
        assert_eq!(spearman_rho(&[1.0], &[1.0]), None);
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
    }

    #[test]
    fn fast_kendall_agrees_with_the_definition_on_tied_data() {
        let mut rng = crate::rng::Rng::seed(7);
        for _ in 0..50 {
            let n = 2 + rng.below(30);
            let x: Vec<f64> = (0..n).map(|_| rng.below(5) as f64).collect();
            let y: Vec<f64> = (0..n).map(|_| rng.below(4) as f64).collect();
            let naive = tau_naive(&x, &y);
            match kendall_tau(&x, &y) {
                Some(t) => assert!(close(t, naive), "{x:?} {y:?}: {t} vs {naive}"),
                None => assert!(!naive.is_finite()),
            }
        }
    }

    #[test]
    fn standard_errors_and_precision() {
        // 78 % on 1,000 images: about 1.3 points.
        let se = binomial_se(78.0, 1000).unwrap();
        assert!((se - 1.3099).abs() < 1e-3, "{se}");
        assert!(binomial_se(100.0, 100).unwrap() > 0.0);
        assert_eq!(binomial_se(50.0, 0), None);
        assert_eq!(round(77.3456, Some(se)), "77.3");
        assert_eq!(with_se(77.3456, Some(se)), "77.3 ± 1.3");
        assert_eq!(with_se(82.834, Some(0.24)), "82.83 ± 0.24");
        assert_eq!(with_se(82.834, None), "82.83");
        assert_eq!(decimals(Some(12.0)), 0);
    }

    #[test]
    fn repeats_combine_spread_and_validation_noise() {
        let (m, u) = Uncertainty::of_repeats(&[77.0, 79.0, 78.0], &[Some(1.0); 3]).unwrap();
        assert!(close(m, 78.0));
        assert_eq!(u.sd, Some(1.0));
        assert!(close(u.se, 1.0 / 3f64.sqrt()));
        // Spread below the validation noise: the validation noise counts.
        let (_, u) = Uncertainty::of_repeats(&[78.0, 78.0], &[Some(1.2), Some(1.2)]).unwrap();
        assert!(close(u.se, 1.2 / 2f64.sqrt()));
        assert!(Uncertainty::of_repeats(&[78.0], &[None]).is_none());
        let (_, u) = Uncertainty::of_repeats(&[70.0, 80.0], &[None, None]).unwrap();
        assert!(close(u.se, 50f64.sqrt() / 2f64.sqrt()));
    }

    #[test]
    fn comparisons_within_noise_are_ties() {
        assert_eq!(
            compare(79.0, Some(1.3), 78.0, Some(1.3), 1.0),
            Comparison::Tie
        );
        assert_eq!(
            compare(81.0, Some(1.3), 78.0, Some(1.3), 1.0),
            Comparison::Better
        );
        assert_eq!(
            compare(75.0, Some(1.3), 78.0, Some(1.3), 1.0),
            Comparison::Worse
        );
        // Off (z = 0) or unknown noise: strict.
        assert_eq!(
            compare(78.1, Some(1.3), 78.0, Some(1.3), 0.0),
            Comparison::Better
        );
        assert_eq!(
            compare(78.1, None, 78.0, Some(1.3), 2.0),
            Comparison::Better
        );
        assert_eq!(compare(78.0, None, 78.0, None, 2.0), Comparison::Tie);
    }
}
