//! Is what a session learned true? A claim judged against ground truth:
//! every architecture of a space with its true accuracy (on NAS-Bench-201,
//! the whole table's 200-epoch test accuracies).
//!
//! A claim `{op, where, effect}` is **true** when the architectures where it
//! holds differ from the rest in its direction twice over: their mean
//! accuracy (below the rest's for `hurts`, above for `helps`) and their
//! share of the best architectures (under-represented among the top
//! fraction for `hurts`, over-represented for `helps`). It is **false** when
//! both point the other way, **mixed** when they disagree, and
//! **untestable** when no architecture (or every one) has the op there.

use super::claim::{Claim, Effect};
use crate::space::Arch;
use serde::Serialize;

/// A claim's verdict against ground truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TruthVerdict {
    /// Mean and share of the best both agree with the claim.
    True,
    /// Both point the other way.
    False,
    /// They disagree.
    Mixed,
    /// No architecture has the op there, or every one does.
    Untestable,
}

impl TruthVerdict {
    /// The verdict in one word.
    pub fn name(self) -> &'static str {
        match self {
            TruthVerdict::True => "true",
            TruthVerdict::False => "false",
            TruthVerdict::Mixed => "mixed",
            TruthVerdict::Untestable => "untestable",
        }
    }
}

/// A claim measured against every architecture of the space.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Truth {
    /// Architectures where the claim's op is at its place.
    pub n_with: usize,
    /// Their mean true accuracy.
    pub mean_with: Option<f64>,
    /// The other architectures.
    pub n_without: usize,
    /// Their mean true accuracy.
    pub mean_without: Option<f64>,
    /// How many architectures count as the best (the top fraction).
    pub n_top: usize,
    /// The share of all architectures where the claim holds.
    pub share_all: f64,
    /// The share of the best architectures where it holds.
    pub share_top: f64,
    /// The verdict.
    pub verdict: TruthVerdict,
}

/// How many of `n` architectures the best `fraction` of them holds (at
/// least one, at most all).
pub fn top_count(n: usize, fraction: f64) -> usize {
    ((n as f64 * fraction).round() as usize).max(1).min(n)
}

/// Judge `claim` on `truth` (each architecture with its true accuracy),
/// taking the best `top_fraction` of them (at least one) as the best.
pub fn judge(claim: &Claim, truth: &[(Arch, f64)], top_fraction: f64) -> Truth {
    let holds: Vec<bool> = truth.iter().map(|(a, _)| claim.holds(a)).collect();
    let mean = |want: bool| {
        let v: Vec<f64> = truth
            .iter()
            .zip(&holds)
            .filter(|(_, h)| **h == want)
            .map(|((_, s), _)| *s)
            .collect();
        (
            v.len(),
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64),
        )
    };
    let (n_with, mean_with) = mean(true);
    let (n_without, mean_without) = mean(false);
    let mut order: Vec<usize> = (0..truth.len()).collect();
    order.sort_by(|&a, &b| truth[b].1.total_cmp(&truth[a].1));
    let n_top = top_count(truth.len(), top_fraction);
    let share = |idx: &[usize]| {
        if idx.is_empty() {
            0.0
        } else {
            idx.iter().filter(|&&i| holds[i]).count() as f64 / idx.len() as f64
        }
    };
    let share_all = share(&order);
    let share_top = share(&order[..n_top]);
    let verdict = match (mean_with, mean_without) {
        (Some(w), Some(wo)) => {
            let sign = match claim.effect {
                Effect::Helps => 1.0,
                Effect::Hurts => -1.0,
            };
            let by_mean = sign * (w - wo);
            let by_share = sign * (share_top - share_all);
            if by_mean > 0.0 && by_share > 0.0 {
                TruthVerdict::True
            } else if by_mean < 0.0 && by_share < 0.0 {
                TruthVerdict::False
            } else {
                TruthVerdict::Mixed
            }
        }
        _ => TruthVerdict::Untestable,
    };
    Truth {
        n_with,
        mean_with,
        n_without,
        mean_without,
        n_top,
        share_all,
        share_top,
        verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::nb201::Nb201Cell;

    /// Every NAS-Bench-201 cell, scored 90 minus 5 per `none` edge plus 1
    /// per 3x3 convolution: `none` hurts, `nor_conv_3x3` helps.
    fn truth() -> Vec<(Arch, f64)> {
        (0..15_625)
            .filter_map(Nb201Cell::from_code)
            .map(|c| {
                let t = c.to_text();
                let s = 90.0 - 5.0 * t.matches("none").count() as f64
                    + t.matches("nor_conv_3x3").count() as f64;
                (Arch::Nb201(c), s)
            })
            .collect()
    }

    fn claim(op: &str, place: &str, effect: Effect) -> Claim {
        Claim {
            op: op.into(),
            place: place.into(),
            effect,
        }
    }

    #[test]
    fn true_false_and_untestable_claims() {
        let t = truth();
        assert_eq!(t.len(), 15_625);
        let none_hurts = judge(&claim("none", "anywhere", Effect::Hurts), &t, 0.1);
        assert_eq!(none_hurts.verdict, TruthVerdict::True, "{none_hurts:?}");
        assert!(none_hurts.share_top < none_hurts.share_all);
        assert_eq!(none_hurts.n_with + none_hurts.n_without, 15_625);
        assert_eq!(none_hurts.n_top, 1_563);
        let none_helps = judge(&claim("none", "node3<-0", Effect::Helps), &t, 0.1);
        assert_eq!(none_helps.verdict, TruthVerdict::False);
        let conv = judge(&claim("nor_conv_3x3", "anywhere", Effect::Helps), &t, 0.1);
        assert_eq!(conv.verdict, TruthVerdict::True);
        let nothing = judge(&claim("sep_conv_3x3", "anywhere", Effect::Hurts), &t, 0.1);
        assert_eq!(nothing.verdict, TruthVerdict::Untestable);
        assert_eq!(nothing.n_with, 0);
    }

    #[test]
    fn mean_and_share_disagreeing_is_mixed() {
        // Five cells with `none` somewhere and five without. One with it is
        // the best of all, the other four far below: `none` is
        // over-represented among the best, yet its cells' mean is lower.
        let c = claim("none", "anywhere", Effect::Helps);
        let all: Vec<Arch> = (0..15_625)
            .filter_map(Nb201Cell::from_code)
            .map(Arch::Nb201)
            .collect();
        let with: Vec<&Arch> = all.iter().filter(|a| c.holds(a)).take(5).collect();
        let without: Vec<&Arch> = all.iter().filter(|a| !c.holds(a)).take(5).collect();
        assert_eq!((with.len(), without.len()), (5, 5));
        let mut t: Vec<(Arch, f64)> = with
            .iter()
            .enumerate()
            .map(|(i, a)| ((*a).clone(), if i == 0 { 99.0 } else { 10.0 }))
            .collect();
        t.extend(without.iter().map(|a| ((*a).clone(), 50.0)));
        let j = judge(&c, &t, 0.1);
        assert_eq!(j.n_top, 1);
        assert_eq!((j.share_top, j.share_all), (1.0, 0.5));
        assert!(j.mean_with < j.mean_without);
        assert_eq!(j.verdict, TruthVerdict::Mixed, "{j:?}");
    }
}
