//! Proxy fidelity (`seki proxy check`): does the cheap evaluation a search
//! ranks by order architectures as a higher-fidelity evaluation does?
//!
//! A sample of architectures (the knowledge base's published cells of the
//! space, plus random ones) is evaluated under both settings; the answer is
//! Kendall's τ and Spearman's ρ between the two rankings, and a scatter
//! chart. For the NAS-Bench-201 table the two columns are compared directly:
//! the 12-epoch validation accuracy a search sees against the 200-epoch test
//! accuracy it is judged by.
//!
//! Each evaluation is appended to a cache file as it finishes, so a long
//! check that is stopped continues where it was.

use crate::config::{Config, EvaluatorKind};
use crate::eval::candle::{CandleConfig, CandleError, CandleEvaluator};
use crate::eval::nb201_table::TableError;
use crate::eval::{EvalError, EvalStatus, Evaluation, Evaluator, Nb201Table};
use crate::knowledge::{KbError, KnowledgeBase};
use crate::report::plot;
use crate::rng::Rng;
use crate::space::{Arch, Space};
use crate::stats;
use crate::store::{self, StoreError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A proxy check failure.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// An evaluator could not run.
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// The cache or an output file failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The two settings are the same protocol.
    #[error("the higher-fidelity setting is the proxy's own ({0}); name more epochs, more data or a larger network")]
    SameProtocol(String),
    /// Too few architectures to rank.
    #[error(
        "{0} architecture(s) scored under both settings; at least 3 are needed to compare rankings"
    )]
    TooFew(usize),
    /// The NAS-Bench-201 table could not be read.
    #[error(transparent)]
    Table(#[from] TableError),
    /// The proxy's evaluator could not be built.
    #[error(transparent)]
    Candle(#[from] CandleError),
    /// The higher-fidelity evaluator could not be built.
    #[error("the higher-fidelity setting is invalid")]
    HighSetting(#[source] CandleError),
    /// No higher-fidelity setting was named.
    #[error("name the higher-fidelity setting with --high-epochs, --high-train-subset, --high-valid-size, --high-channels or --high-cells")]
    NoHighSetting,
    /// The knowledge base whose published cells are sampled could not be read.
    #[error(transparent)]
    Kb(#[from] KbError),
    /// The config's rungs are invalid.
    #[error("the config's rungs are invalid: {0}")]
    Rungs(String),
}

/// The higher-fidelity setting of `seki proxy check`: what it changes from
/// the proxy's own (`[evaluator.candle]`); `None` keeps the proxy's value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HighFidelity {
    /// Training epochs.
    pub epochs: Option<usize>,
    /// Training images (0: all that the validation split leaves).
    pub train_subset: Option<usize>,
    /// Validation images.
    pub valid_size: Option<usize>,
    /// Initial channels.
    pub channels: Option<usize>,
    /// DARTS cells.
    pub cells: Option<usize>,
    /// Seed of its validation split, initialisation and batch order; `None`
    /// draws one apart from the proxy's and every rung's
    /// ([`HighFidelity::default_seed`]), so that a lucky split at a rung is
    /// not lucky again here.
    pub seed: Option<u64>,
}

impl HighFidelity {
    /// The seed a higher fidelity takes when none is named: the proxy's
    /// seed decorrelated as a rung's would be, at an index no rung reaches.
    pub fn default_seed(base: u64) -> u64 {
        crate::eval::rung::noise_seed(base, u32::MAX)
    }

    /// The proxy's settings `low` with this one's changes, or `None` when
    /// it names none.
    pub fn apply(&self, low: &CandleConfig) -> Option<CandleConfig> {
        let mut high = low.clone();
        let mut named = false;
        for (v, slot) in [
            (self.epochs, &mut high.epochs),
            (self.train_subset, &mut high.train_subset),
            (self.valid_size, &mut high.valid_size),
            (self.channels, &mut high.channels),
            (self.cells, &mut high.cells),
        ] {
            if let Some(v) = v {
                *slot = v;
                named = true;
            }
        }
        high.seed = self.seed.unwrap_or_else(|| Self::default_seed(low.seed));
        named.then_some(high)
    }
}

/// What `seki proxy check` compares, beside the config's settings (space,
/// evaluator, table, the proxy's `[evaluator.candle]`, `kb.dir`).
#[derive(Debug, Clone, Default)]
pub struct CheckPlan {
    /// The higher-fidelity setting (the Candle evaluator only).
    pub high: HighFidelity,
    /// Random architectures added to the published cells.
    pub random: usize,
    /// Add the space's degenerate cells ([`degenerate`]): all skips, all
    /// pools, separable convolutions only.
    pub degenerate: bool,
    /// Seed of the random architectures.
    pub seed: u64,
    /// The evaluation cache (JSON Lines), reused and extended.
    pub cache: Option<PathBuf>,
}

/// `seki proxy check` under `cfg`: with the NAS-Bench-201 evaluator the
/// table's own fidelity ([`table_check`]); otherwise the proxy and the
/// higher-fidelity Candle evaluators are built (each training in a child
/// process of the running executable), the sample drawn from the knowledge
/// base at `cfg.kb.dir` and `plan`'s random architectures, and [`check`]
/// run, telling `progress(index, total, pair)` of each pair.
pub fn run_check(
    cfg: &Config,
    plan: &CheckPlan,
    progress: &mut dyn FnMut(usize, usize, &Pair),
) -> Result<Fidelity, ProxyError> {
    if cfg.search.evaluator == EvaluatorKind::Nb201 {
        let table = Nb201Table::load(&cfg.evaluator.nb201.table)?;
        return Ok(table_check(&table, 8));
    }
    let high_cfg = plan
        .high
        .apply(&cfg.evaluator.candle)
        .ok_or(ProxyError::NoHighSetting)?;
    let mut low = CandleEvaluator::with_current_exe(cfg.evaluator.candle.clone())?;
    let mut high = CandleEvaluator::with_current_exe(high_cfg).map_err(ProxyError::HighSetting)?;
    let rungs = cfg
        .try_rungs()
        .map_err(|(key, why)| ProxyError::Rungs(format!("search.{key}: {why}")))?;
    let mut upper: Vec<(u32, Box<dyn Evaluator>)> = Vec::new();
    for r in rungs.rungs.iter().filter(|r| r.index >= 2) {
        upper.push((
            r.index,
            Box::new(CandleEvaluator::with_current_exe(
                r.settings.candle.clone(),
            )?),
        ));
    }
    let kb = crate::session::setup::knowledge_base_to_read(&cfg.kb)?;
    let mut archs = sample(kb.as_ref(), cfg.search.space, plan.random, plan.seed);
    if plan.degenerate {
        let seen: std::collections::HashSet<String> = archs.iter().map(|s| s.arch.hash()).collect();
        archs.extend(
            degenerate(cfg.search.space)
                .into_iter()
                .filter(|s| !seen.contains(&s.arch.hash())),
        );
    }
    let total = archs.len();
    check(
        &mut low,
        &mut high,
        &mut upper,
        &archs,
        plan.cache.as_deref(),
        &mut |i, p| progress(i, total, p),
    )
}

/// The space's degenerate cells, which a proxy must rank as badly as a long
/// training does: every edge a skip connection, every edge a max pool, and
/// every edge a 3x3 separable convolution (DARTS; NAS-Bench-201: all skips,
/// all pools, all 3x3 convolutions).
pub fn degenerate(space: Space) -> Vec<Sampled> {
    let cells: Vec<(&str, String)> = match space {
        Space::Darts => {
            let cell = |op: &str| {
                let e = |i: usize| format!("('{op}', {i})");
                let edges = [e(0), e(1), e(0), e(1), e(1), e(2), e(2), e(3)].join(", ");
                format!(
                    "Genotype(normal=[{edges}], normal_concat=[2, 3, 4, 5], \
                     reduce=[{edges}], reduce_concat=[2, 3, 4, 5])"
                )
            };
            vec![
                ("all-skips", cell("skip_connect")),
                ("all-pools", cell("max_pool_3x3")),
                ("sep-convs-only", cell("sep_conv_3x3")),
            ]
        }
        Space::Nb201 => {
            let cell = |op: &str| format!("|{op}~0|+|{op}~0|{op}~1|+|{op}~0|{op}~1|{op}~2|");
            vec![
                ("all-skips", cell("skip_connect")),
                ("all-pools", cell("avg_pool_3x3")),
                ("conv3x3-only", cell("nor_conv_3x3")),
            ]
        }
    };
    cells
        .into_iter()
        .filter_map(|(label, text)| {
            space.parse(&text).ok().map(|arch| Sampled {
                label: label.to_string(),
                arch,
            })
        })
        .collect()
}

/// One architecture of the sample.
#[derive(Debug, Clone)]
pub struct Sampled {
    /// Its name (a knowledge-base record's name or id, or `random-K`).
    pub label: String,
    /// The architecture.
    pub arch: Arch,
}

/// The sample: the knowledge base's published cells of `space` (one per
/// architecture), then `random` random architectures from `seed`, all
/// distinct.
pub fn sample(kb: Option<&KnowledgeBase>, space: Space, random: usize, seed: u64) -> Vec<Sampled> {
    let mut out: Vec<Sampled> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    if let Some(kb) = kb {
        for e in kb.entries() {
            let r = &e.record;
            if r.space != space || r.evaluator.kind != "published" {
                continue;
            }
            if seen.insert(e.hash.clone()) {
                out.push(Sampled {
                    label: r.name.clone().unwrap_or_else(|| r.id.clone()),
                    arch: e.arch.clone(),
                });
            }
        }
    }
    let mut rng = Rng::seed(seed ^ 0x9A0C);
    let mut k = 0;
    let mut tries = 0;
    while k < random && tries < random * 100 + 100 {
        tries += 1;
        let a = space.random(&mut rng);
        if seen.insert(a.hash()) {
            k += 1;
            out.push(Sampled {
                label: format!("random-{k}"),
                arch: a,
            });
        }
    }
    out
}

/// One architecture's figures under both settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    /// Its name.
    pub label: String,
    /// The architecture in its space's text form.
    pub arch: String,
    /// The proxy's score.
    pub low: Option<f64>,
    /// The proxy score's standard error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_se: Option<f64>,
    /// The higher-fidelity score.
    pub high: Option<f64>,
    /// The higher-fidelity score's standard error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_se: Option<f64>,
    /// Seconds of the proxy evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_seconds: Option<f64>,
    /// Seconds of the higher-fidelity evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_seconds: Option<f64>,
    /// Its scores at the session's rungs above the first (the proxy is
    /// rung 1), when the config has `[[search.rungs]]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rungs: Vec<RungScore>,
}

/// An architecture's score at one rung of the session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RungScore {
    /// The rung (2, 3, …).
    pub rung: u32,
    /// Its score there.
    pub score: Option<f64>,
    /// The score's standard error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub se: Option<f64>,
    /// Seconds of the evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
}

/// How one rung of the session ranks the sample against the higher
/// fidelity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RungAgreement {
    /// The rung (1 is the proxy).
    pub rung: u32,
    /// Its setting, in words.
    pub setting: String,
    /// Architectures scored at this rung and at the higher fidelity.
    pub n: usize,
    /// Kendall's τ-b against the higher fidelity.
    pub kendall_tau: Option<f64>,
    /// Spearman's ρ against the higher fidelity.
    pub spearman_rho: Option<f64>,
    /// Mean seconds of one evaluation at this rung.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_mean: Option<f64>,
}

/// The result of a check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fidelity {
    /// The proxy, in words.
    pub low: String,
    /// The higher-fidelity setting, in words.
    pub high: String,
    /// Architectures scored under both.
    pub n: usize,
    /// Kendall's τ-b between the two rankings.
    pub kendall_tau: Option<f64>,
    /// Spearman's ρ between the two rankings.
    pub spearman_rho: Option<f64>,
    /// Mean seconds of one proxy evaluation, where measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low_seconds_mean: Option<f64>,
    /// Mean seconds of one higher-fidelity evaluation, where measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high_seconds_mean: Option<f64>,
    /// Architectures that failed under either setting.
    pub failed: Vec<String>,
    /// Each rung of the session against the higher fidelity (rung 1 first,
    /// whose figures are the ones above), when the config has rungs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rungs: Vec<RungAgreement>,
    /// Every architecture's figures (for the table: a sample of them).
    pub pairs: Vec<Pair>,
}

impl Fidelity {
    fn from_pairs(
        low: String,
        high: String,
        pairs: Vec<Pair>,
        all: Option<(&[f64], &[f64])>,
    ) -> Self {
        let both: Vec<(f64, f64)> = pairs
            .iter()
            .filter_map(|p| Some((p.low?, p.high?)))
            .collect();
        let (x, y): (Vec<f64>, Vec<f64>) = both.iter().copied().unzip();
        let (x, y) = all.unwrap_or((&x, &y));
        let mean = |v: Vec<f64>| (!v.is_empty()).then(|| stats::mean_sd(&v).0);
        Fidelity {
            low,
            high,
            n: x.len(),
            kendall_tau: stats::kendall_tau(x, y),
            spearman_rho: stats::spearman_rho(x, y),
            low_seconds_mean: mean(pairs.iter().filter_map(|p| p.low_seconds).collect()),
            high_seconds_mean: mean(pairs.iter().filter_map(|p| p.high_seconds).collect()),
            failed: pairs
                .iter()
                .filter(|p| p.low.is_none() || p.high.is_none())
                .map(|p| p.label.clone())
                .collect(),
            rungs: Vec::new(),
            pairs,
        }
    }

    /// Fill [`Fidelity::rungs`] from the pairs: rung 1 (the proxy, named
    /// `low`) and each rung in `upper` (index and setting in words).
    fn with_rungs(mut self, upper: &[(u32, String)]) -> Self {
        if upper.is_empty() {
            return self;
        }
        let mean = |v: Vec<f64>| (!v.is_empty()).then(|| stats::mean_sd(&v).0);
        self.rungs.push(RungAgreement {
            rung: 1,
            setting: self.low.clone(),
            n: self.n,
            kendall_tau: self.kendall_tau,
            spearman_rho: self.spearman_rho,
            seconds_mean: self.low_seconds_mean,
        });
        for (index, setting) in upper {
            let at = |p: &Pair| p.rungs.iter().find(|r| r.rung == *index).cloned();
            let (x, y): (Vec<f64>, Vec<f64>) = self
                .pairs
                .iter()
                .filter_map(|p| Some((at(p)?.score?, p.high?)))
                .unzip();
            self.rungs.push(RungAgreement {
                rung: *index,
                setting: setting.clone(),
                n: x.len(),
                kendall_tau: stats::kendall_tau(&x, &y),
                spearman_rho: stats::spearman_rho(&x, &y),
                seconds_mean: mean(self.pairs.iter().filter_map(|p| at(p)?.seconds).collect()),
            });
        }
        self
    }

    /// The scatter chart: proxy score against the higher-fidelity score.
    pub fn svg(&self) -> String {
        let points: Vec<plot::Point> = self
            .pairs
            .iter()
            .filter_map(|p| {
                let (x, y) = (p.low?, p.high?);
                Some(plot::Point {
                    x,
                    y,
                    color: if p.label.starts_with("random-") || p.label.starts_with('#') {
                        String::new()
                    } else {
                        plot::color(1).to_string()
                    },
                    href: String::new(),
                    tip: format!("{}: {x:.2} / {y:.2}", p.label),
                    highlight: false,
                })
            })
            .collect();
        let fmt = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.3}"));
        plot::scatter(
            &points,
            &format!(
                "Proxy fidelity: Kendall τ {}, Spearman ρ {} (n = {})",
                fmt(self.kendall_tau),
                fmt(self.spearman_rho),
                self.n
            ),
            &self.low,
            &self.high,
            false,
        )
    }
}

/// One cached evaluation: an architecture under one evaluator's settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cached {
    evaluator: String,
    hash: String,
    #[serde(flatten)]
    result: Evaluation,
    seconds: f64,
}

fn identity(e: &dyn Evaluator) -> String {
    let i = e.info();
    format!(
        "{}|{}|{}",
        i.kind,
        i.dataset.unwrap_or_default(),
        serde_json::Value::Object(i.settings)
    )
}

/// A score, its standard error and the seconds it took.
struct Scored {
    score: Option<f64>,
    se: Option<f64>,
    seconds: Option<f64>,
}

fn evaluate_cached(
    e: &mut dyn Evaluator,
    arch: &Arch,
    cache: Option<&Path>,
    have: &mut Vec<Cached>,
) -> Result<Scored, ProxyError> {
    let who = identity(e);
    let hash = arch.hash();
    let hit = have
        .iter()
        .find(|c| c.evaluator == who && c.hash == hash)
        .cloned();
    let c = match hit {
        Some(c) => c,
        None => {
            let t = Instant::now();
            let result = e.evaluate(arch)?;
            let c = Cached {
                evaluator: who,
                hash,
                result,
                seconds: t.elapsed().as_secs_f64(),
            };
            if let Some(path) = cache {
                store::append_jsonl(path, std::slice::from_ref(&c))?;
            }
            have.push(c.clone());
            c
        }
    };
    let ok = c.result.status == EvalStatus::Ok;
    Ok(Scored {
        score: c.result.score.filter(|_| ok),
        se: c.result.score_se.filter(|_| ok),
        seconds: Some(c.seconds),
    })
}

/// Evaluate every sampled architecture under the proxy (`low`) and the
/// higher-fidelity evaluator (`high`), reusing and extending the cache at
/// `cache` (JSON Lines), telling `progress` of each pair as it completes.
pub fn check(
    low: &mut dyn Evaluator,
    high: &mut dyn Evaluator,
    upper: &mut [(u32, Box<dyn Evaluator>)],
    archs: &[Sampled],
    cache: Option<&Path>,
    progress: &mut dyn FnMut(usize, &Pair),
) -> Result<Fidelity, ProxyError> {
    let (li, hi) = (low.info(), high.info());
    if li.protocol() == hi.protocol() {
        return Err(ProxyError::SameProtocol(li.protocol_label()));
    }
    let mut have: Vec<Cached> = match cache {
        Some(p) => store::read_jsonl::<Cached>(p, true, |_| Ok(()))?
            .0
            .into_iter()
            .map(|(_, c)| c)
            .collect(),
        None => Vec::new(),
    };
    let mut pairs = Vec::new();
    for (i, s) in archs.iter().enumerate() {
        let l = evaluate_cached(low, &s.arch, cache, &mut have)?;
        let h = evaluate_cached(high, &s.arch, cache, &mut have)?;
        let mut rungs = Vec::new();
        for (index, e) in upper.iter_mut() {
            let r = evaluate_cached(e.as_mut(), &s.arch, cache, &mut have)?;
            rungs.push(RungScore {
                rung: *index,
                score: r.score,
                se: r.se,
                seconds: r.seconds,
            });
        }
        let p = Pair {
            label: s.label.clone(),
            arch: s.arch.to_text(),
            low: l.score,
            low_se: l.se,
            high: h.score,
            high_se: h.se,
            low_seconds: l.seconds,
            high_seconds: h.seconds,
            rungs,
        };
        progress(i, &p);
        pairs.push(p);
    }
    let named: Vec<(u32, String)> = upper
        .iter()
        .map(|(i, e)| (*i, e.info().protocol_label()))
        .collect();
    let f = Fidelity::from_pairs(li.protocol_label(), hi.protocol_label(), pairs, None)
        .with_rungs(&named);
    if f.n < 3 {
        return Err(ProxyError::TooFew(f.n));
    }
    Ok(f)
}

/// The NAS-Bench-201 table's own fidelity: its 12-epoch validation accuracy
/// against its 200-epoch test accuracy, over every architecture (the chart
/// and `pairs` hold every `stride`-th one).
pub fn table_check(table: &Nb201Table, stride: usize) -> Fidelity {
    let rows = table.rows();
    let x: Vec<f64> = rows.iter().map(|r| r.valid_12ep).collect();
    let y: Vec<f64> = rows.iter().map(|r| r.test_200ep).collect();
    // Rows are in the order of the space's cell codes.
    let pairs: Vec<Pair> = rows
        .iter()
        .enumerate()
        .step_by(stride.max(1))
        .map(|(code, r)| Pair {
            label: format!("#{}", r.index),
            arch: crate::space::nb201::Nb201Cell::from_code(code)
                .map(|c| c.to_text())
                .unwrap_or_default(),
            low: Some(r.valid_12ep),
            low_se: None,
            high: Some(r.test_200ep),
            high_se: None,
            low_seconds: None,
            high_seconds: None,
            rungs: Vec::new(),
        })
        .collect();
    Fidelity::from_pairs(
        "NAS-Bench-201 cifar10 validation accuracy after 12 epochs (%)".into(),
        "NAS-Bench-201 cifar10 test accuracy after 200 epochs (%)".into(),
        pairs,
        Some((&x, &y)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::EvalStatus;
    use crate::knowledge::EvaluatorInfo;

    /// Scores an architecture by a function of its hash, at a given "fidelity".
    struct Fake {
        epochs: u64,
        noise: f64,
    }

    impl Evaluator for Fake {
        fn info(&self) -> EvaluatorInfo {
            let mut settings = serde_json::Map::new();
            settings.insert("epochs".into(), self.epochs.into());
            EvaluatorInfo {
                kind: "fake".into(),
                dataset: Some("d".into()),
                settings,
            }
        }
        fn evaluate(&mut self, arch: &Arch) -> Result<Evaluation, EvalError> {
            let h = u64::from_str_radix(&arch.hash()[..8], 16).unwrap_or(0);
            let base = (h % 1000) as f64 / 10.0;
            let wobble = ((h / 1000) % 100) as f64 / 100.0 * self.noise;
            Ok(Evaluation {
                status: EvalStatus::Ok,
                score: Some(base + wobble),
                test_accuracy: None,
                score_se: Some(1.0),
                metrics: Default::default(),
            })
        }
    }

    #[test]
    fn a_faithful_proxy_ranks_alike_and_the_cache_is_reused() {
        let d = tempfile::tempdir().unwrap();
        let cache = d.path().join("evaluations.jsonl");
        let archs = sample(None, Space::Nb201, 12, 3);
        assert_eq!(archs.len(), 12);
        let (mut low, mut high) = (
            Fake {
                epochs: 1,
                noise: 0.0,
            },
            Fake {
                epochs: 5,
                noise: 0.0,
            },
        );
        let mut seen = 0;
        let f = check(
            &mut low,
            &mut high,
            &mut [],
            &archs,
            Some(&cache),
            &mut |_, _| seen += 1,
        )
        .unwrap();
        assert_eq!((f.n, seen), (12, 12));
        assert!((f.kendall_tau.unwrap() - 1.0).abs() < 1e-12);
        assert!((f.spearman_rho.unwrap() - 1.0).abs() < 1e-12);
        assert!(f.rungs.is_empty());
        assert_eq!(std::fs::read_to_string(&cache).unwrap().lines().count(), 24);
        // Again: every figure from the cache, none appended.
        check(
            &mut low,
            &mut high,
            &mut [],
            &archs,
            Some(&cache),
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(&cache).unwrap().lines().count(), 24);
        // A noisy rung 2 beside them: its own τ, below rung 1's perfect one,
        // and only its 12 evaluations appended to the cache.
        let mut upper: Vec<(u32, Box<dyn Evaluator>)> = vec![(
            2,
            Box::new(Fake {
                epochs: 2,
                noise: 400.0,
            }),
        )];
        let g = check(
            &mut low,
            &mut high,
            &mut upper,
            &archs,
            Some(&cache),
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(&cache).unwrap().lines().count(), 36);
        assert_eq!(g.rungs.len(), 2);
        assert_eq!((g.rungs[0].rung, g.rungs[1].rung), (1, 2));
        assert_eq!(g.rungs[0].kendall_tau, f.kendall_tau);
        assert_eq!(g.rungs[1].n, 12);
        assert!(g.rungs[1].kendall_tau.unwrap() < 0.9, "{:?}", g.rungs[1]);
        assert!(g
            .pairs
            .iter()
            .all(|p| p.rungs.len() == 1 && p.rungs[0].rung == 2));
        assert!(f.svg().contains("Kendall τ 1.000"));
        let e = check(
            &mut low,
            &mut Fake {
                epochs: 1,
                noise: 9.0,
            },
            &mut [],
            &archs,
            None,
            &mut |_, _| {},
        )
        .unwrap_err();
        assert!(matches!(e, ProxyError::SameProtocol(_)), "{e}");
    }

    #[test]
    fn published_cells_come_first_in_the_sample() {
        let kb = KnowledgeBase::open(Path::new("knowledge"), Default::default()).unwrap();
        let s = sample(Some(&kb), Space::Darts, 2, 0);
        assert!(s.len() >= 12, "{}", s.len());
        assert_eq!(s[0].label, "DARTS_V1");
        assert!(s[s.len() - 1].label.starts_with("random-"));
    }

    #[test]
    fn degenerate_cells_parse_in_both_spaces() {
        for space in [Space::Darts, Space::Nb201] {
            let d = degenerate(space);
            assert_eq!(d.len(), 3, "{space:?}");
            let text = d[0].arch.to_text();
            assert!(text.contains("skip_connect"), "{text}");
            for other in ["sep_conv", "conv_", "pool"] {
                assert!(!text.contains(other), "{text}");
            }
            assert!(d[1].arch.to_text().contains("pool"));
        }
    }

    #[test]
    fn a_higher_fidelity_draws_its_own_seed_unless_named() {
        let low = CandleConfig::default();
        let h = HighFidelity {
            epochs: Some(4),
            ..Default::default()
        };
        let cfg = h.apply(&low).unwrap();
        assert_ne!(cfg.seed, low.seed);
        assert_eq!(cfg.seed, HighFidelity::default_seed(low.seed));
        let named = HighFidelity {
            seed: Some(low.seed),
            ..h
        };
        assert_eq!(named.apply(&low).unwrap().seed, low.seed);
        assert!(HighFidelity::default().apply(&low).is_none());
    }
}
