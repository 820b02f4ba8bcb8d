//! Checkable insights: a claim that an op at a place in the cell helps (or
//! hurts) the score, tested against evaluated architectures.
//!
//! A claim names an op of the space, a place (anywhere; an NB201 edge such as
//! `node3<-1`; a DARTS cell or one of its nodes, `normal node4`) and an
//! effect. The architectures where the op appears at the place are compared
//! with those where it does not: counts, means and Cohen's d. With at least
//! [`MIN_GROUP`] architectures on each side, a claim whose data point the
//! other way by d ≥ [`MIN_EFFECT`] is contradicted, one that agrees by that
//! much is supported, each only when the difference of the means is also
//! beyond [`CLAIM_Z`] standard errors (the scores' own noise counted);
//! otherwise it is undecided, whatever the effect size.
//!
//! A search's evaluations are not independent draws: the children of a good
//! parent share most of its cell, so one lucky lineage lands many times on
//! one side of a claim. Where parent–child pairs are known
//! ([`Claim::score_with_pairs`]), the claim is also judged within lineages:
//! over the pairs of which exactly one has the op at the place, the mean of
//! (with − without) must be beyond [`CLAIM_Z`] standard errors, with at
//! least [`MIN_GROUP`] pairs. A claim is supported (or contradicted) only
//! when both comparisons say so; otherwise it is undecided.

use crate::space::{darts, nb201, Arch, Space};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Fewest architectures on each side before a claim is judged.
pub const MIN_GROUP: usize = 3;
/// Smallest |Cohen's d| that counts as an effect.
pub const MIN_EFFECT: f64 = 0.2;
/// A claim is judged only when the difference of the means is beyond this
/// many standard errors of the difference; within it, undecided.
pub const CLAIM_Z: f64 = 2.0;

/// What the claim says the op does to the score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Architectures with it score higher.
    Helps,
    /// Architectures with it score lower.
    Hurts,
}

/// A checkable statement about architectures of a space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    /// An op of the space.
    pub op: String,
    /// Where: `anywhere`, an NB201 edge (`node2<-1`), or a DARTS cell or node
    /// (`normal`, `reduce node3`).
    #[serde(rename = "where")]
    pub place: String,
    /// Helps or hurts.
    pub effect: Effect,
}

/// How a claim fares on the evaluated architectures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClaimStats {
    /// Architectures where the op is at the place.
    pub n_with: usize,
    /// Their mean score.
    pub mean_with: Option<f64>,
    /// Architectures where it is not.
    pub n_without: usize,
    /// Their mean score.
    pub mean_without: Option<f64>,
    /// Cohen's d of (with − without), pooled standard deviation.
    pub effect_size: Option<f64>,
    /// The standard error of (mean with − mean without), each side's
    /// variance at least its scores' own noise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub se_difference: Option<f64>,
    /// `supported`, `contradicted` or `undecided`: with `pairs`, where
    /// both comparisons agree; otherwise undecided.
    pub verdict: Verdict,
    /// The comparison within lineages, where parent–child pairs are known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pairs: Option<PairStats>,
}

/// A claim judged within lineages: parent–child pairs of which exactly one
/// has the op at the place, each pair's difference (with − without).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PairStats {
    /// Pairs that differ at the claim's place.
    pub n: usize,
    /// Their mean difference (with − without).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_difference: Option<f64>,
    /// Its standard error: the differences' spread, at least the pairs'
    /// own noise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub se: Option<f64>,
    /// What the pairs alone say.
    pub verdict: Verdict,
}

/// One scored architecture: the architecture, its score, and the score's
/// standard error when known.
pub type Scored<'a> = (&'a Arch, f64, Option<f64>);

/// The (parent, child) index pairs among `archs`, each child naming its
/// parent by canonical hash (`parents[i]`); parents not among `archs` are
/// skipped.
pub fn lineage_pairs(archs: &[&Arch], parents: &[Option<&str>]) -> Vec<(usize, usize)> {
    let by_hash: std::collections::HashMap<String, usize> = archs
        .iter()
        .enumerate()
        .map(|(i, a)| (a.hash(), i))
        .collect();
    parents
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.and_then(|h| by_hash.get(h)).map(|&p| (p, i)))
        .collect()
}

/// What the data say of a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Too few architectures on a side, or no clear effect.
    #[default]
    Undecided,
    /// The data agree.
    Supported,
    /// The data point the other way.
    Contradicted,
}

impl Verdict {
    /// The verdict in one word.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Undecided => "undecided",
            Verdict::Supported => "supported",
            Verdict::Contradicted => "contradicted",
        }
    }
}

/// The places a claim may name in `space`.
pub fn places(space: Space) -> Vec<String> {
    let mut out = vec!["anywhere".to_string()];
    match space {
        Space::Nb201 => out.extend(nb201::EDGES.iter().map(|(t, f)| format!("node{t}<-{f}"))),
        Space::Darts => {
            for cell in ["normal", "reduce"] {
                out.push(cell.to_string());
                for n in 2..2 + darts::NODES {
                    out.push(format!("{cell} node{n}"));
                }
            }
        }
    }
    out
}

fn ops(space: Space) -> Vec<&'static str> {
    match space {
        Space::Nb201 => nb201::OPS.to_vec(),
        Space::Darts => darts::OPS.to_vec(),
    }
}

/// The JSON schema of a reply stating 1 to `max` claims, each with a short
/// reason, for constrained decoding.
pub fn schema(space: Space, max: usize) -> Value {
    schema_of(space, max, &["helps", "hurts"])
}

/// The schema of a reply naming 1 to `max` ops that hurt at a place (what
/// the search should avoid).
pub fn hurts_schema(space: Space, max: usize) -> Value {
    schema_of(space, max, &["hurts"])
}

fn schema_of(space: Space, max: usize, effects: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": {
            "patterns": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "op": {"type": "string", "enum": ops(space)},
                        "where": {"type": "string", "enum": places(space)},
                        "effect": {"type": "string", "enum": effects},
                        "why": {"type": "string", "maxLength": 100}
                    },
                    "required": ["op", "where", "effect", "why"],
                    "additionalProperties": false
                },
                "minItems": 1,
                "maxItems": max.max(1)
            }
        },
        "required": ["patterns"],
        "additionalProperties": false
    })
}

/// Why a stated pattern is not a checkable claim.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("pattern {index}: {message}")]
pub struct ClaimError {
    /// 1-based position in the reply.
    pub index: usize,
    /// What is wrong.
    pub message: String,
}

impl Claim {
    /// Read one stated pattern: `{"op", "where", "effect", "why"}`; the
    /// claim and its reason. Anything naming no op or place of `space` is an
    /// error.
    pub fn parse(space: Space, v: &Value, index: usize) -> Result<(Claim, String), ClaimError> {
        let err = |message: String| ClaimError { index, message };
        let field = |k: &str| v.get(k).and_then(Value::as_str).map(str::trim);
        let op = field("op").ok_or_else(|| err("no \"op\"".into()))?;
        if !ops(space).contains(&op) {
            return Err(err(format!(
                "unknown op \"{op}\"; ops of {space}: {}",
                ops(space).join(", ")
            )));
        }
        let place = field("where").ok_or_else(|| err("no \"where\"".into()))?;
        if !places(space).iter().any(|p| p == place) {
            return Err(err(format!(
                "unknown place \"{place}\"; places: {}",
                places(space).join(", ")
            )));
        }
        let effect = match field("effect") {
            Some("helps") => Effect::Helps,
            Some("hurts") => Effect::Hurts,
            other => {
                return Err(err(format!(
                    "effect must be \"helps\" or \"hurts\", found {other:?}"
                )))
            }
        };
        let why = field("why").unwrap_or_default().to_string();
        Ok((
            Claim {
                op: op.to_string(),
                place: place.to_string(),
                effect,
            },
            why,
        ))
    }

    /// The claim in words.
    pub fn text(&self) -> String {
        let effect = match self.effect {
            Effect::Helps => "helps",
            Effect::Hurts => "hurts",
        };
        if self.place == "anywhere" {
            format!("{} anywhere in the cell {effect}", self.op)
        } else {
            format!("{} on {} {effect}", self.op, self.place)
        }
    }

    /// Whether the op is at the place in `arch`.
    pub fn holds(&self, arch: &Arch) -> bool {
        match arch {
            Arch::Nb201(c) => nb201::EDGES.iter().enumerate().any(|(k, (t, f))| {
                c.ops[k].name() == self.op
                    && (self.place == "anywhere" || self.place == format!("node{t}<-{f}"))
            }),
            Arch::Darts(g) => {
                [("normal", &g.normal), ("reduce", &g.reduce)]
                    .iter()
                    .any(|(name, cell)| {
                        cell.iter().enumerate().any(|(i, e)| {
                            let node = i / 2 + 2;
                            e.op_name() == self.op
                                && (self.place == "anywhere"
                                    || self.place == *name
                                    || self.place == format!("{name} node{node}"))
                        })
                    })
            }
        }
    }

    /// Score the claim on evaluated architectures and their scores.
    pub fn score<'a>(&self, data: impl IntoIterator<Item = (&'a Arch, f64)>) -> ClaimStats {
        self.score_with_se(data.into_iter().map(|(a, s)| (a, s, None)))
    }

    /// Score the claim on evaluated architectures, their scores and the
    /// scores' standard errors (when known). The verdict needs both an
    /// effect (|d| ≥ [`MIN_EFFECT`]) and a difference of the means beyond
    /// the noise: more than [`CLAIM_Z`] standard errors of the difference,
    /// each group's variance at least its scores' own noise (a handful of
    /// ±1.3 scores that happen to agree prove nothing).
    pub fn score_with_se<'a>(
        &self,
        data: impl IntoIterator<Item = (&'a Arch, f64, Option<f64>)>,
    ) -> ClaimStats {
        let (mut with, mut without) = (Vec::new(), Vec::new());
        let (mut se_with, mut se_without) = (Vec::new(), Vec::new());
        for (a, s, se) in data {
            if self.holds(a) {
                with.push(s);
                se_with.extend(se);
            } else {
                without.push(s);
                se_without.extend(se);
            }
        }
        let mean = |x: &[f64]| (!x.is_empty()).then(|| x.iter().sum::<f64>() / x.len() as f64);
        let (m1, m0) = (mean(&with), mean(&without));
        let effect_size = match (m1, m0) {
            (Some(a), Some(b)) if with.len() + without.len() > 2 => {
                let ss = |x: &[f64], m: f64| x.iter().map(|v| (v - m).powi(2)).sum::<f64>();
                let pooled = ((ss(&with, a) + ss(&without, b))
                    / (with.len() + without.len() - 2) as f64)
                    .sqrt();
                (pooled > 0.0).then(|| (a - b) / pooled)
            }
            _ => None,
        };
        let se_difference = match (m1, m0) {
            (Some(a), Some(b)) if with.len() >= 2 && without.len() >= 2 => {
                let var = |x: &[f64], m: f64, ses: &[f64]| {
                    let sample =
                        x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() - 1) as f64;
                    let noise = if ses.is_empty() {
                        0.0
                    } else {
                        ses.iter().map(|e| e * e).sum::<f64>() / ses.len() as f64
                    };
                    sample.max(noise)
                };
                Some(
                    (var(&with, a, &se_with) / with.len() as f64
                        + var(&without, b, &se_without) / without.len() as f64)
                        .sqrt(),
                )
            }
            _ => None,
        };
        let verdict = match (effect_size, m1.zip(m0), se_difference) {
            (Some(d), Some((a, b)), Some(se))
                if with.len() >= MIN_GROUP && without.len() >= MIN_GROUP =>
            {
                let sign = match self.effect {
                    Effect::Helps => 1.0,
                    Effect::Hurts => -1.0,
                };
                let (signed_d, signed_diff) = (sign * d, sign * (a - b));
                let beyond_noise = signed_diff.abs() > CLAIM_Z * se;
                if signed_d >= MIN_EFFECT && beyond_noise {
                    Verdict::Supported
                } else if signed_d <= -MIN_EFFECT && beyond_noise {
                    Verdict::Contradicted
                } else {
                    Verdict::Undecided
                }
            }
            _ => Verdict::Undecided,
        };
        ClaimStats {
            n_with: with.len(),
            mean_with: m1,
            n_without: without.len(),
            mean_without: m0,
            effect_size,
            se_difference,
            verdict,
            pairs: None,
        }
    }

    /// [`score_with_se`](Self::score_with_se), and the claim judged within
    /// lineages on `pairs` (parent, child): supported or contradicted only
    /// when both comparisons say so.
    pub fn score_with_pairs<'a>(
        &self,
        data: impl IntoIterator<Item = Scored<'a>>,
        pairs: impl IntoIterator<Item = (Scored<'a>, Scored<'a>)>,
    ) -> ClaimStats {
        let mut stats = self.score_with_se(data);
        let within = self.score_pairs(pairs);
        if within.verdict != stats.verdict {
            stats.verdict = Verdict::Undecided;
        }
        stats.pairs = Some(within);
        stats
    }

    /// The claim within lineages alone: over the (parent, child) pairs of
    /// which exactly one has the op at the place, the mean of (with −
    /// without), judged beyond [`CLAIM_Z`] standard errors with at least
    /// [`MIN_GROUP`] pairs.
    pub fn score_pairs<'a>(
        &self,
        pairs: impl IntoIterator<Item = (Scored<'a>, Scored<'a>)>,
    ) -> PairStats {
        let mut diffs = Vec::new();
        let mut noise = Vec::new();
        for ((pa, ps, pse), (ca, cs, cse)) in pairs {
            let (p, c) = (self.holds(pa), self.holds(ca));
            if p == c {
                continue;
            }
            diffs.push(if c { cs - ps } else { ps - cs });
            if let (Some(a), Some(b)) = (pse, cse) {
                noise.push(a * a + b * b);
            }
        }
        let n = diffs.len();
        let mean = (n > 0).then(|| diffs.iter().sum::<f64>() / n as f64);
        let se = match mean {
            Some(m) if n >= 2 => {
                let sample = diffs.iter().map(|d| (d - m).powi(2)).sum::<f64>() / (n - 1) as f64;
                let own = if noise.is_empty() {
                    0.0
                } else {
                    noise.iter().sum::<f64>() / noise.len() as f64
                };
                Some((sample.max(own) / n as f64).sqrt())
            }
            _ => None,
        };
        let verdict = match (mean, se) {
            (Some(m), Some(se)) if n >= MIN_GROUP => {
                let signed = match self.effect {
                    Effect::Helps => m,
                    Effect::Hurts => -m,
                };
                if signed > CLAIM_Z * se {
                    Verdict::Supported
                } else if -signed > CLAIM_Z * se {
                    Verdict::Contradicted
                } else {
                    Verdict::Undecided
                }
            }
            _ => Verdict::Undecided,
        };
        PairStats {
            n,
            mean_difference: mean,
            se,
            verdict,
        }
    }
}

impl ClaimStats {
    /// The figures in words, for prompts and reports.
    pub fn summary(&self) -> String {
        let f = |m: Option<f64>| m.map_or("-".to_string(), |v| format!("{v:.1}"));
        let diff = match (self.mean_with, self.mean_without, self.se_difference) {
            (Some(a), Some(b), Some(se)) => format!("; difference {:+.1} ± {se:.1}", a - b),
            _ => String::new(),
        };
        let pairs = match &self.pairs {
            Some(PairStats {
                n,
                mean_difference: Some(m),
                se: Some(se),
                ..
            }) => format!("; within lineages {m:+.1} ± {se:.1} over {n} parent-child pairs"),
            Some(p) => format!("; within lineages {} parent-child pairs", p.n),
            None => String::new(),
        };
        format!(
            "with it: mean {} (n={}); without: {} (n={}){diff}; d={}{pairs}; {}",
            f(self.mean_with),
            self.n_with,
            f(self.mean_without),
            self.n_without,
            self.effect_size
                .map_or("-".to_string(), |d| format!("{d:.2}")),
            self.verdict.name()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::constrain::Grammar;

    fn cell(s: &str) -> Arch {
        Space::Nb201.parse(s).unwrap()
    }

    #[test]
    fn claims_are_checked_against_scores() {
        let conv =
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|";
        let pool =
            "|avg_pool_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|";
        let data: Vec<(Arch, f64)> = [
            (conv, 90.0),
            (conv, 91.0),
            (conv, 89.0),
            (pool, 80.0),
            (pool, 82.0),
            (pool, 81.0),
        ]
        .into_iter()
        .map(|(a, s)| (cell(a), s))
        .collect();
        let c = Claim {
            op: "nor_conv_3x3".into(),
            place: "node1<-0".into(),
            effect: Effect::Helps,
        };
        let st = c.score(data.iter().map(|(a, s)| (a, *s)));
        assert_eq!((st.n_with, st.n_without), (3, 3));
        assert_eq!(st.mean_with, Some(90.0));
        assert_eq!(st.mean_without, Some(81.0));
        // Pooled sd is 1: d = 9.
        assert!((st.effect_size.unwrap() - 9.0).abs() < 1e-9);
        assert_eq!(st.verdict, Verdict::Supported);
        let hurts = Claim {
            effect: Effect::Hurts,
            ..c.clone()
        };
        assert_eq!(
            hurts.score(data.iter().map(|(a, s)| (a, *s))).verdict,
            Verdict::Contradicted
        );
        // Too few on one side: undecided.
        let few = c.score(data.iter().take(4).map(|(a, s)| (a, *s)));
        assert_eq!(few.verdict, Verdict::Undecided);
    }

    /// One lucky lineage on one side of a claim supports it across cells;
    /// the parent–child pairs that toggle the op show no effect, so the
    /// claim stays undecided. Where the pairs agree, it is supported.
    #[test]
    fn a_lineage_counted_many_times_does_not_support_a_claim() {
        let conv =
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|";
        let pool =
            "|avg_pool_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|";
        let (a, b) = (cell(conv), cell(pool));
        let c = Claim {
            op: "nor_conv_3x3".into(),
            place: "node1<-0".into(),
            effect: Effect::Helps,
        };
        // Across cells: 90s with it, 80s without.
        let data: Vec<(&Arch, f64, Option<f64>)> = [90.0, 91.0, 89.0, 90.5]
            .iter()
            .map(|&s| (&a, s, Some(0.3)))
            .chain([80.0, 82.0, 81.0, 80.5].iter().map(|&s| (&b, s, Some(0.3))))
            .collect();
        assert_eq!(c.score_with_se(data.clone()).verdict, Verdict::Supported);
        // Within lineages the op does nothing: +0.4, -0.5, +0.1, -0.2.
        let flat = [(90.0, 89.6), (80.0, 80.5), (85.0, 84.9), (70.0, 70.2)];
        let pairs = |diffs: &[(f64, f64)]| -> Vec<_> {
            diffs
                .iter()
                .map(|&(with, without)| ((&b, without, Some(0.3)), (&a, with, Some(0.3))))
                .collect()
        };
        let st = c.score_with_pairs(data.clone(), pairs(&flat));
        let p = st.pairs.clone().unwrap();
        assert_eq!(p.n, 4);
        assert_eq!(p.verdict, Verdict::Undecided);
        assert_eq!(st.verdict, Verdict::Undecided);
        assert!(
            st.summary().contains("over 4 parent-child pairs"),
            "{}",
            st.summary()
        );
        // Pairs that agree: supported; a pair with the op on both sides
        // does not count.
        let clear = [(90.0, 86.0), (80.0, 77.0), (85.0, 81.5), (70.0, 66.0)];
        let mut agreeing = pairs(&clear);
        agreeing.push(((&a, 50.0, Some(0.3)), (&a, 95.0, Some(0.3))));
        let st = c.score_with_pairs(data.clone(), agreeing.clone());
        assert_eq!(st.pairs.as_ref().map(|p| p.n), Some(4));
        assert_eq!(st.verdict, Verdict::Supported);
        let hurts = Claim {
            effect: Effect::Hurts,
            ..c
        };
        assert_eq!(
            hurts.score_with_pairs(data, agreeing).verdict,
            Verdict::Contradicted
        );
    }

    #[test]
    fn a_difference_within_the_noise_is_undecided_whatever_its_effect_size() {
        let conv =
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|";
        let pool =
            "|avg_pool_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|";
        // Scores that agree closely (d = 3) but each ± 1.3: a 1.5-point
        // difference of means of three is within two standard errors
        // (sqrt(1.3²/3 · 2) ≈ 1.06 each).
        let noisy: Vec<(Arch, f64)> = [
            (conv, 78.0),
            (conv, 78.5),
            (conv, 79.0),
            (pool, 76.5),
            (pool, 77.0),
            (pool, 77.5),
        ]
        .into_iter()
        .map(|(a, s)| (cell(a), s))
        .collect();
        let c = Claim {
            op: "nor_conv_3x3".into(),
            place: "node1<-0".into(),
            effect: Effect::Helps,
        };
        let without_se = c.score(noisy.iter().map(|(a, s)| (a, *s)));
        assert!(without_se.effect_size.unwrap() > 2.0);
        let st = c.score_with_se(noisy.iter().map(|(a, s)| (a, *s, Some(1.3))));
        assert!(st.effect_size.unwrap() > 2.0, "{st:?}");
        assert!((st.se_difference.unwrap() - (2.0 * 1.69 / 3.0f64).sqrt()).abs() < 1e-9);
        assert_eq!(st.verdict, Verdict::Undecided, "{}", st.summary());
        assert!(
            st.summary().contains("difference +1.5 ± 1.1"),
            "{}",
            st.summary()
        );
        // The same difference on precise scores (± 0.1) is beyond noise.
        let st = c.score_with_se(noisy.iter().map(|(a, s)| (a, *s, Some(0.1))));
        assert_eq!(st.verdict, Verdict::Supported, "{}", st.summary());
    }

    #[test]
    fn places_and_ops_are_checked_at_parse_time() {
        let ok =
            json!({"op": "sep_conv_3x3", "where": "reduce node3", "effect": "hurts", "why": "x"});
        let (c, why) = Claim::parse(Space::Darts, &ok, 1).unwrap();
        assert_eq!((c.place.as_str(), why.as_str()), ("reduce node3", "x"));
        let junk = json!({"op": "two consecutive numbers", "where": "anywhere", "effect": "helps"});
        let e = Claim::parse(Space::Nb201, &junk, 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("pattern 2") && e.contains("unknown op"), "{e}");
        let bad_place = json!({"op": "none", "where": "node4<-0", "effect": "helps"});
        assert!(Claim::parse(Space::Nb201, &bad_place, 1).is_err());
        // The schema compiles for constrained decoding.
        for s in Space::ALL {
            Grammar::compile(&schema(s, 3)).unwrap();
        }
    }

    #[test]
    fn darts_places_match_cells_and_nodes() {
        let g = Space::Darts.random(&mut crate::rng::Rng::seed(1));
        let Arch::Darts(d) = &g else { panic!() };
        let op = d.reduce[5].op_name().to_string();
        let c = Claim {
            op,
            place: "reduce node4".into(),
            effect: Effect::Helps,
        };
        assert!(c.holds(&g));
    }
}
