//! What an architecture costs to run, known without training it: the
//! parameters and multiply-adds of the evaluator's own network, and (when a
//! budget or an objective asks for it) its inference latency at batch 1 on
//! the CPU. And the hard budgets on those figures (`[search.constraints]`).
//!
//! For the NAS-Bench-201 table the network is seki's build of the
//! benchmark's: 5 cells a stage, 16 channels, the dataset's input and
//! classes (3x32x32 and 10 classes for CIFAR-10). For the Candle evaluator it
//! is the network it trains, at its configured shape.
//!
//! Costs are computed once per architecture (by canonical hash) and kept:
//! building a NAS-Bench-201 network and counting its multiply-adds takes a
//! few milliseconds; latency is measured once, as the median of repeated
//! forward passes, with its spread.

use super::candle::data::DatasetKind;
use super::candle::nn::{count_macs, Ctx};
use super::candle::settings::CandleConfig;
use super::candle::{train, CandleError};
use super::settings::{EvaluatorConfig, EvaluatorKind};
use super::zero_cost::{own_shape, InputShape};
use crate::space::{Arch, Space};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

/// What one architecture costs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// Trainable parameters (auxiliary head excluded, as papers count them).
    pub params: u64,
    /// Multiply-adds of one forward pass of one image (convolutions and
    /// linear layers), the figure NAS papers report as FLOPs.
    pub flops: u64,
    /// Median wall time of a batch-1 forward pass in inference mode (ms),
    /// when measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// Half the interquartile range of those passes (ms): the measurement's
    /// spread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_spread_ms: Option<f64>,
}

impl Cost {
    /// The figures as evaluation metrics (`params`, `flops`, `latency_ms`,
    /// `latency_spread_ms`).
    pub fn metrics(&self) -> Vec<(&'static str, f64)> {
        let mut m = vec![("params", self.params as f64), ("flops", self.flops as f64)];
        if let Some(l) = self.latency_ms {
            m.push(("latency_ms", l));
        }
        if let Some(s) = self.latency_spread_ms {
            m.push(("latency_spread_ms", s));
        }
        m
    }

    /// The cost an evaluation's metrics recorded (`params` and `flops`
    /// required, latency optional).
    pub fn from_metrics(m: &std::collections::BTreeMap<String, f64>) -> Option<Cost> {
        Some(Cost {
            params: *m.get("params")? as u64,
            flops: *m.get("flops")? as u64,
            latency_ms: m.get("latency_ms").copied(),
            latency_spread_ms: m.get("latency_spread_ms").copied(),
        })
    }

    /// One line for people and prompts: `0.37M params, 52.1M FLOPs, 1.8 ms`.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} params, {} FLOPs",
            millions(self.params as f64),
            millions(self.flops as f64)
        );
        if let Some(l) = self.latency_ms {
            s.push_str(&format!(", {l:.2} ms"));
        }
        s
    }
}

/// `1234567` → `1.23M`; below 10,000 the plain number.
pub fn millions(x: f64) -> String {
    if x.abs() >= 1e4 {
        format!("{:.3}M", x / 1e6)
    } else {
        format!("{x:.0}")
    }
}

/// A count as people write it: `400000`, `4e5`, `400k`, `0.4M`, `1.2G`.
pub fn parse_count(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (num, scale) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1e3),
        Some((i, 'm' | 'M')) => (&t[..i], 1e6),
        Some((i, 'g' | 'G')) => (&t[..i], 1e9),
        _ => (t, 1.0),
    };
    num.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .map(|v| v * scale)
        .ok_or_else(|| format!("'{text}' is not a count (e.g. 400000, 400k, 0.4M)"))
}

/// Hard budgets: an architecture over any of them is not evaluated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Constraints {
    /// At most this many parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_params: Option<f64>,
    /// At most this many multiply-adds per image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_flops: Option<f64>,
    /// At most this median batch-1 CPU latency (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_latency_ms: Option<f64>,
}

impl Constraints {
    /// Whether no budget is set.
    pub fn is_empty(&self) -> bool {
        self.max_params.is_none() && self.max_flops.is_none() && self.max_latency_ms.is_none()
    }

    /// Whether latency has to be measured to check them.
    pub fn needs_latency(&self) -> bool {
        self.max_latency_ms.is_some()
    }

    /// The first budget that is zero, negative or not a number, as
    /// `(key, message)`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        for (key, v) in [
            ("max_params", self.max_params),
            ("max_flops", self.max_flops),
            ("max_latency_ms", self.max_latency_ms),
        ] {
            if let Some(v) = v {
                if !(v.is_finite() && v > 0.0) {
                    return Err((
                        key,
                        format!("must be a positive number (got {v}); leave it out for no limit"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Why `cost` is over budget (`None`: within every budget).
    pub fn violation(&self, cost: &Cost) -> Option<String> {
        let mut over = Vec::new();
        if let Some(m) = self.max_params {
            if cost.params as f64 > m {
                over.push(format!(
                    "{} params > max_params {}",
                    millions(cost.params as f64),
                    millions(m)
                ));
            }
        }
        if let Some(m) = self.max_flops {
            if cost.flops as f64 > m {
                over.push(format!(
                    "{} FLOPs > max_flops {}",
                    millions(cost.flops as f64),
                    millions(m)
                ));
            }
        }
        if let (Some(m), Some(l)) = (self.max_latency_ms, cost.latency_ms) {
            if l > m {
                over.push(format!("{l:.2} ms > max_latency_ms {m}"));
            }
        }
        (!over.is_empty()).then(|| over.join("; "))
    }

    /// The budgets in words (`params ≤ 0.400M, FLOPs ≤ 50.000M`); empty
    /// when none is set.
    pub fn describe(&self) -> String {
        let mut s = Vec::new();
        if let Some(m) = self.max_params {
            s.push(format!("params ≤ {}", millions(m)));
        }
        if let Some(m) = self.max_flops {
            s.push(format!("FLOPs ≤ {}", millions(m)));
        }
        if let Some(m) = self.max_latency_ms {
            s.push(format!("CPU latency (batch 1) ≤ {m} ms"));
        }
        s.join(", ")
    }

    /// These budgets with `other`'s set ones in their place (flags over
    /// the config file).
    pub fn overridden_by(self, other: Constraints) -> Constraints {
        Constraints {
            max_params: other.max_params.or(self.max_params),
            max_flops: other.max_flops.or(self.max_flops),
            max_latency_ms: other.max_latency_ms.or(self.max_latency_ms),
        }
    }
}

/// One objective of a multi-objective search: `accuracy:max`,
/// `params:min`, `flops:min` or `latency:min`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Objective {
    /// The search score (validation accuracy, %), maximised.
    Accuracy,
    /// Parameters, minimised.
    Params,
    /// Multiply-adds per image, minimised.
    Flops,
    /// Batch-1 CPU latency (ms), minimised.
    Latency,
}

impl Objective {
    /// Every objective, in the order people list them.
    pub const ALL: [Objective; 4] = [
        Objective::Accuracy,
        Objective::Params,
        Objective::Flops,
        Objective::Latency,
    ];

    /// As written in the config (`accuracy:max`).
    pub fn spec(&self) -> &'static str {
        match self {
            Objective::Accuracy => "accuracy:max",
            Objective::Params => "params:min",
            Objective::Flops => "flops:min",
            Objective::Latency => "latency:min",
        }
    }

    /// Its name (`accuracy`).
    pub fn name(&self) -> &'static str {
        match self {
            Objective::Accuracy => "accuracy",
            Objective::Params => "params",
            Objective::Flops => "flops",
            Objective::Latency => "latency",
        }
    }

    /// Its value to minimise: the error (100 − accuracy) for accuracy, the
    /// cost itself for the others (`None` when the cost lacks it).
    pub fn value(&self, score: f64, cost: Option<&Cost>) -> Option<f64> {
        match self {
            Objective::Accuracy => Some(100.0 - score),
            Objective::Params => cost.map(|c| c.params as f64),
            Objective::Flops => cost.map(|c| c.flops as f64),
            Objective::Latency => cost.and_then(|c| c.latency_ms),
        }
    }
}

impl TryFrom<String> for Objective {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let t = text.trim();
        let (name, dir) = t.split_once(':').unwrap_or((t, ""));
        let o = Objective::ALL
            .into_iter()
            .find(|o| o.name() == name)
            .ok_or_else(|| {
                format!(
                    "unknown objective '{text}'; valid objectives: accuracy:max, params:min, flops:min, latency:min"
                )
            })?;
        let want = o.spec().split_once(':').map_or("", |(_, d)| d);
        if !dir.is_empty() && dir != want {
            return Err(format!(
                "objective '{text}': {name} can only be {want}imised ({})",
                o.spec()
            ));
        }
        Ok(o)
    }
}

impl From<Objective> for String {
    fn from(o: Objective) -> String {
        o.spec().to_string()
    }
}

/// The point of an evaluated architecture in objective space (every
/// coordinate minimised); `None` when a cost it needs is missing.
pub fn point(objectives: &[Objective], score: f64, cost: Option<&Cost>) -> Option<Vec<f64>> {
    objectives.iter().map(|o| o.value(score, cost)).collect()
}

/// The hypervolume's reference point: error 100 %, and 1.1 times the cost
/// of the space's most expensive cell (`ceiling`) for the costs.
pub fn reference(objectives: &[Objective], ceiling: &Cost) -> Vec<f64> {
    objectives
        .iter()
        .map(|o| match o {
            Objective::Accuracy => 100.0,
            other => 1.1 * other.value(0.0, Some(ceiling)).unwrap_or(0.0),
        })
        .collect()
}

/// Refuse objective lists that cannot drive a Pareto search, as
/// `(message)`: fewer than two or more than three, repeats, or none of
/// them accuracy.
pub fn check_objectives(objectives: &[Objective]) -> Result<(), String> {
    if objectives.is_empty() {
        return Ok(());
    }
    if !(2..=3).contains(&objectives.len()) {
        return Err(format!(
            "a Pareto search takes two or three objectives (got {}); leave it empty for accuracy alone",
            objectives.len()
        ));
    }
    for (i, o) in objectives.iter().enumerate() {
        if objectives[..i].contains(o) {
            return Err(format!("'{}' is listed twice", o.spec()));
        }
    }
    if !objectives.contains(&Objective::Accuracy) {
        return Err("one objective must be accuracy:max".into());
    }
    Ok(())
}

/// The network whose cost is measured, and the memo of what was measured
/// (shared by its clones: the seeded sessions of a benchmark measure each
/// architecture once).
#[derive(Clone)]
pub struct CostModel {
    cfg: CandleConfig,
    shape: InputShape,
    what: String,
    latency: bool,
    threads: usize,
    memo: Arc<Mutex<HashMap<String, Cost>>>,
    pool: Arc<OnceLock<rayon::ThreadPool>>,
}

impl std::fmt::Debug for CostModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CostModel")
            .field("what", &self.what)
            .field("latency", &self.latency)
            .finish()
    }
}

impl CostModel {
    /// The cost model of an evaluator: the NAS-Bench-201 benchmark's network
    /// for the table (at the table's dataset), the Candle evaluator's own
    /// network otherwise. `latency`: measure latency too.
    pub fn for_evaluator(
        kind: EvaluatorKind,
        settings: &EvaluatorConfig,
        latency: bool,
    ) -> Result<Self, super::EvalError> {
        let mut cfg = settings.candle.clone();
        cfg.drop_path = 0.0;
        cfg.auxiliary_weight = 0.0;
        let (shape, what) = match kind {
            EvaluatorKind::Nb201 => {
                let dataset = super::nb201_table::dataset_of(&settings.nb201.table)?;
                let shape = nb201_shape(&dataset);
                cfg.stage_cells = 5;
                cfg.channels = 16;
                (
                    shape,
                    format!(
                        "the NAS-Bench-201 benchmark network (5 cells a stage, 16 channels, {}x{}x{} input, {} classes)",
                        shape.channels, shape.size, shape.size, shape.classes
                    ),
                )
            }
            EvaluatorKind::Candle => {
                let shape = own_shape(cfg.dataset);
                let what = format!(
                    "the candle evaluator's network ({} cells, {} channels, {} input)",
                    cfg.cells,
                    cfg.channels,
                    cfg.dataset.name()
                );
                (shape, what)
            }
        };
        Ok(CostModel {
            threads: settings.candle.threads,
            cfg,
            shape,
            what,
            latency,
            memo: Arc::new(Mutex::new(HashMap::new())),
            pool: Arc::new(OnceLock::new()),
        })
    }

    /// Which network the figures are of, in words.
    pub fn describe(&self) -> &str {
        &self.what
    }

    /// Whether latency is measured.
    pub fn measures_latency(&self) -> bool {
        self.latency
    }

    /// Remember the cost of the architecture written `arch` (its text
    /// form), measured earlier (a resumed session's journal), so that it is
    /// not measured again.
    pub fn remember(&self, arch: &str, cost: Cost) {
        if let Ok(mut m) = self.memo.lock() {
            m.insert(arch.to_string(), cost);
        }
    }

    /// The cost of `arch`: from the memo, or measured now. Kept by the
    /// architecture's exact text, not its canonical hash: two cells that
    /// compute the same function (an op on an edge whose output is never
    /// used) still carry different weights.
    pub fn cost(&self, arch: &Arch) -> Result<Cost, CandleError> {
        let key = arch.to_text();
        let known = self.memo.lock().ok().and_then(|m| m.get(&key).copied());
        if let Some(c) = known.filter(|c| c.latency_ms.is_some() || !self.latency) {
            return Ok(c);
        }
        let cost = self.measure(arch)?;
        self.remember(&key, cost);
        Ok(cost)
    }

    fn measure(&self, arch: &Arch) -> Result<Cost, CandleError> {
        if self.latency {
            // Built and timed on a pool of the evaluator's threads.
            let pool = self.pool()?;
            return pool.install(|| self.measure_here(arch));
        }
        self.measure_here(arch)
    }

    fn measure_here(&self, arch: &Arch) -> Result<Cost, CandleError> {
        let device = Device::Cpu;
        let s = self.shape;
        let (mut net, params) =
            train::build(arch, &self.cfg, s.channels, s.size, s.classes, &device)?;
        let flops = count_macs(net.as_mut(), s.channels, s.size, &device)?;
        let mut cost = Cost {
            params: train::param_count(&params),
            flops,
            latency_ms: None,
            latency_spread_ms: None,
        };
        if self.latency {
            let (median, spread) = latency(net.as_mut(), s, &device)?;
            cost.latency_ms = Some(median);
            cost.latency_spread_ms = Some(spread);
        }
        Ok(cost)
    }

    /// The thread pool latency is measured on: the evaluator's configured
    /// threads (0: every core).
    fn pool(&self) -> Result<&rayon::ThreadPool, CandleError> {
        if let Some(p) = self.pool.get() {
            return Ok(p);
        }
        let p = rayon::ThreadPoolBuilder::new()
            .num_threads(self.threads)
            .build()
            .map_err(|e| CandleError::Setup(format!("latency thread pool: {e}")))?;
        Ok(self.pool.get_or_init(|| p))
    }

    /// The cost of the space's most expensive cell (every edge its
    /// heaviest convolution): the bound the hypervolume's reference point
    /// is set from.
    pub fn ceiling(&self, space: Space) -> Result<Cost, CandleError> {
        self.cost(&costliest(space))
    }

    /// The smallest cost any architecture of `space` can have: that of its
    /// cell with every edge a parameter-free, multiply-free op.
    pub fn floor(&self, space: Space) -> Result<(Arch, Cost), CandleError> {
        let arch = cheapest(space);
        let cost = self.measure(&arch)?;
        Ok((arch, cost))
    }
}

/// The cost of `arch` on the network of the evaluator `kind` with
/// `settings` (latency too when `latency`), and that network in words:
/// what `seki arch --cost` prints.
pub fn cost_on(
    kind: EvaluatorKind,
    settings: &EvaluatorConfig,
    arch: &Arch,
    latency: bool,
) -> Result<(Cost, String), super::EvalError> {
    let model = CostModel::for_evaluator(kind, settings, latency)?;
    let cost = model.cost(arch).map_err(super::EvalError::from)?;
    Ok((cost, model.describe().to_string()))
}

/// Passes timed for a latency figure (after two warm-up passes).
const LATENCY_PASSES: usize = 11;

/// Median and half the interquartile range (ms) of batch-1 forward passes.
fn latency(
    net: &mut dyn super::candle::nn::Network,
    s: InputShape,
    device: &Device,
) -> Result<(f64, f64), CandleError> {
    let x = Tensor::zeros((1, s.channels, s.size, s.size), DType::F32, device)?;
    let mut times = Vec::with_capacity(LATENCY_PASSES);
    for i in 0..LATENCY_PASSES + 2 {
        let t = Instant::now();
        let mut ctx = Ctx::new(false, 0.0, 0);
        let (y, _) = net.forward(&x, &mut ctx)?;
        y.to_device(&Device::Cpu)?;
        if i >= 2 {
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = ((times.len() - 1) as f64 * q).round() as usize;
        times.get(i).copied().unwrap_or(0.0)
    };
    Ok((at(0.5), (at(0.75) - at(0.25)) / 2.0))
}

/// The NAS-Bench-201 benchmark's input for a table's dataset.
fn nb201_shape(dataset: &str) -> InputShape {
    match dataset.to_ascii_lowercase().as_str() {
        "cifar100" => own_shape(DatasetKind::Cifar100),
        "imagenet16-120" => InputShape {
            channels: 3,
            size: 16,
            classes: 120,
        },
        _ => own_shape(DatasetKind::Cifar10),
    }
}

/// The space's cell whose every edge has neither parameters nor
/// multiply-adds.
pub fn cheapest(space: Space) -> Arch {
    uniform(space, "none", "max_pool_3x3")
}

/// The space's cell with every edge its heaviest convolution.
pub fn costliest(space: Space) -> Arch {
    uniform(space, "nor_conv_3x3", "sep_conv_5x5")
}

/// The space's cell with every edge one op (`nb201` for NAS-Bench-201,
/// `darts` for both DARTS cells, each node reading nodes 0 and 1).
fn uniform(space: Space, nb201: &str, darts: &str) -> Arch {
    let text = match space {
        Space::Nb201 => {
            format!("|{nb201}~0|+|{nb201}~0|{nb201}~1|+|{nb201}~0|{nb201}~1|{nb201}~2|")
        }
        Space::Darts => {
            let cell = vec![format!("('{darts}', 0), ('{darts}', 1)"); 4].join(", ");
            format!("Genotype(normal=[{cell}], normal_concat=[2, 3, 4, 5], reduce=[{cell}], reduce_concat=[2, 3, 4, 5])")
        }
    };
    // The texts are fixed and valid; a failure here is a bug caught by the
    // tests below, and falls back to a random cell rather than panic.
    space
        .parse(&text)
        .unwrap_or_else(|_| space.random(&mut crate::rng::Rng::seed(0)))
}

/// Budgets with the model that checks them: what a session and its
/// strategy consult before an architecture is evaluated.
#[derive(Debug, Clone)]
pub struct Budget {
    /// The budgets.
    pub constraints: Constraints,
    /// The costs.
    pub model: CostModel,
}

/// Budgets are equal when their limits and the network they measure are.
impl PartialEq for Budget {
    fn eq(&self, other: &Self) -> bool {
        self.constraints == other.constraints
            && self.model.describe() == other.model.describe()
            && self.model.measures_latency() == other.model.measures_latency()
    }
}

/// Whether an architecture fits, with its cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    /// Its cost (`None` when it could not be computed).
    pub cost: Option<Cost>,
    /// Why it is refused (`None`: it fits).
    pub refused: Option<String>,
}

impl Budget {
    /// Check `arch` against the budgets.
    pub fn check(&self, arch: &Arch) -> Fit {
        match self.model.cost(arch) {
            Ok(cost) => Fit {
                refused: self.constraints.violation(&cost),
                cost: Some(cost),
            },
            Err(e) => Fit {
                cost: None,
                refused: Some(format!("its cost could not be computed: {e}")),
            },
        }
    }

    /// Whether `arch` is within every budget (without budgets, at once:
    /// nothing is measured).
    pub fn fits(&self, arch: &Arch) -> bool {
        self.constraints.is_empty() || self.check(arch).refused.is_none()
    }

    /// The constraint of `n` architecture replies within the parameter and
    /// FLOP budgets (budget-aware decoding), where the space's costs are
    /// known per edge: NAS-Bench-201, whose cell cost is the empty cell's
    /// plus each edge's op's. `None` where replies are checked after
    /// decoding instead (DARTS, latency alone, no budget, a cost that could
    /// not be computed, or a budget every cell meets).
    pub fn arch_pattern(&self, space: Space, n: usize) -> Option<String> {
        if space != Space::Nb201 {
            return None;
        }
        let c = &self.constraints;
        // Each budgeted figure (parameters, multiply-adds) and its limit.
        let figure = |c: &Cost, params: bool| {
            if params {
                c.params as f64
            } else {
                c.flops as f64
            }
        };
        let dims: Vec<(bool, f64)> = [
            c.max_params.map(|m| (true, m)),
            c.max_flops.map(|m| (false, m)),
        ]
        .into_iter()
        .flatten()
        .collect();
        if dims.is_empty() {
            return None;
        }
        let empty = self.model.cost(&cheapest(space)).ok()?;
        let base: Vec<f64> = dims.iter().map(|&(p, _)| figure(&empty, p)).collect();
        let mut extra = Vec::new();
        for op in crate::space::nb201::Op::ALL {
            let one = space
                .parse(&format!(
                    "|{}~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                    op.name()
                ))
                .ok()?;
            let cost = self.model.cost(&one).ok()?;
            let add: Vec<f64> = dims
                .iter()
                .map(|&(p, _)| figure(&cost, p) - figure(&empty, p))
                .collect();
            extra.push((op, add));
        }
        let limit: Vec<f64> = dims.iter().map(|&(_, m)| m).collect();
        crate::space::notation::nb201_pattern_within(n, &base, &extra, &limit)
    }

    /// Refuse budgets no architecture of `space` meets, naming the key and
    /// the smallest achievable figure.
    pub fn reachable(&self, space: Space) -> Result<(), (&'static str, String)> {
        let (arch, floor) = self
            .model
            .floor(space)
            .map_err(|e| ("max_params", format!("the cost model failed: {e}")))?;
        let c = &self.constraints;
        let cheapest = arch.to_text();
        if let Some(m) = c.max_params.filter(|&m| (floor.params as f64) > m) {
            return Err((
                "max_params",
                format!(
                    "no architecture of the {space} space has at most {} parameters: the smallest, {cheapest}, has {} on {}",
                    millions(m),
                    millions(floor.params as f64),
                    self.model.describe()
                ),
            ));
        }
        if let Some(m) = c.max_flops.filter(|&m| (floor.flops as f64) > m) {
            return Err((
                "max_flops",
                format!(
                    "no architecture of the {space} space has at most {} FLOPs: the smallest, {cheapest}, has {} on {}",
                    millions(m),
                    millions(floor.flops as f64),
                    self.model.describe()
                ),
            ));
        }
        if let (Some(m), Some(l)) = (c.max_latency_ms, floor.latency_ms) {
            if l > m {
                return Err((
                    "max_latency_ms",
                    format!(
                        "no architecture of the {space} space runs in {m} ms: the fastest, {cheapest}, takes {l:.2} ms (batch 1) on {}",
                        self.model.describe()
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::Space;

    /// The cost model of the NAS-Bench-201 network; `None` (the test is
    /// skipped) without the table beside the checkout.
    fn nb201_model() -> Option<CostModel> {
        let table = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/benchmarks/nb201/nb201-cifar10.csv"
        );
        if !std::path::Path::new(table).exists() {
            eprintln!("skipped: no NAS-Bench-201 table beside the checkout");
            return None;
        }
        let mut settings = EvaluatorConfig::default();
        settings.nb201.table = std::path::PathBuf::from(table);
        Some(CostModel::for_evaluator(EvaluatorKind::Nb201, &settings, false).unwrap())
    }

    /// NAS-Bench-201 publishes each cell's parameters and FLOPs for
    /// CIFAR-10 (its API: the all-3x3-convolution cell has 1.531546 MB of
    /// parameters and 220.11 M FLOPs); seki's build of the benchmark network
    /// gives the same figures, and the cheapest cell costs far less.
    #[test]
    fn nb201_costs_match_the_benchmarks_published_figures() {
        let Some(m) = nb201_model() else { return };
        let c = m.cost(&costliest(Space::Nb201)).unwrap();
        let n = m.cost(&cheapest(Space::Nb201)).unwrap();
        eprintln!("all conv3x3: {c:?}; all none: {n:?}");
        let near = |got: f64, want: f64, tol: f64| (got / want - 1.0).abs() < tol;
        assert!(near(c.params as f64, 1_531_546.0, 0.01), "{c:?}");
        assert!(near(c.flops as f64, 220.11356e6, 0.03), "{c:?}");
        assert!(n.params < c.params / 10 && n.flops < c.flops / 10, "{n:?}");
    }

    /// Budget-aware decoding: the reply pattern admits a NAS-Bench-201
    /// cell exactly when its measured cost is within the budgets (checked
    /// on random cells and on the cells at the budget's edge).
    #[test]
    fn the_budget_pattern_admits_exactly_the_cells_within_budget() {
        use crate::llm::constrain::RegexDfa;
        use crate::space::notation::to_llm;
        let Some(model) = nb201_model() else { return };
        for constraints in [
            Constraints {
                max_params: Some(400_000.0),
                ..Constraints::default()
            },
            Constraints {
                max_params: Some(800_000.0),
                max_flops: Some(60e6),
                ..Constraints::default()
            },
        ] {
            let budget = Budget {
                constraints,
                model: model.clone(),
            };
            let pattern = budget.arch_pattern(Space::Nb201, 1).unwrap();
            let dfa = RegexDfa::new(&pattern).unwrap();
            let mut rng = crate::rng::Rng::seed(7);
            let (mut inside, mut outside) = (0, 0);
            let edge = [
                "|skip_connect~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|none~1|nor_conv_1x1~2|",
                "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|none~1|nor_conv_1x1~2|",
            ];
            let cells = edge
                .iter()
                .map(|t| Space::Nb201.parse(t).unwrap())
                .chain((0..60).map(|_| Space::Nb201.random(&mut rng)));
            for a in cells {
                let fits = budget.check(&a).refused.is_none();
                assert_eq!(
                    dfa.matches(&to_llm(&a)),
                    fits,
                    "{} {constraints:?}",
                    a.to_text()
                );
                if fits {
                    inside += 1;
                } else {
                    outside += 1;
                }
            }
            assert!(inside > 0 && outside > 0, "{inside} in, {outside} out");
            let three = budget.arch_pattern(Space::Nb201, 3).unwrap();
            let dfa3 = RegexDfa::new(&three).unwrap();
            let ok = "skip | conv3 conv1 | skip none conv1";
            assert!(
                dfa3.matches(&format!("{ok}\n{ok}\n{ok}")),
                "{constraints:?}"
            );
        }
        // Without a budget on params or FLOPs, or one every cell meets, the
        // plain pattern is used.
        let loose = Budget {
            constraints: Constraints {
                max_params: Some(1e9),
                ..Constraints::default()
            },
            model: model.clone(),
        };
        assert!(loose.arch_pattern(Space::Nb201, 1).is_none());
        assert!(loose.arch_pattern(Space::Darts, 1).is_none());
    }

    #[test]
    fn constraints_name_what_is_over() {
        let c = Constraints {
            max_params: Some(400_000.0),
            ..Constraints::default()
        };
        let cost = Cost {
            params: 500_000,
            flops: 1,
            latency_ms: None,
            latency_spread_ms: None,
        };
        assert_eq!(
            c.violation(&cost).unwrap(),
            "0.500M params > max_params 0.400M"
        );
        assert!(c
            .violation(&Cost {
                params: 400_000,
                ..cost
            })
            .is_none());
        assert_eq!(
            Constraints {
                max_flops: Some(0.0),
                ..c
            }
            .check()
            .unwrap_err()
            .0,
            "max_flops"
        );
    }

    #[test]
    fn objectives_parse_and_check() {
        let o = |t: &str| Objective::try_from(t.to_string());
        assert_eq!(o("accuracy:max").unwrap(), Objective::Accuracy);
        assert_eq!(o("params").unwrap(), Objective::Params);
        assert!(o("params:max").unwrap_err().contains("minimised"));
        assert!(o("speed:min")
            .unwrap_err()
            .contains("unknown objective 'speed:min'"));
        use Objective::*;
        assert!(check_objectives(&[]).is_ok());
        assert!(check_objectives(&[Accuracy, Params]).is_ok());
        assert!(check_objectives(&[Accuracy]).is_err());
        assert!(check_objectives(&[Params, Flops])
            .unwrap_err()
            .contains("accuracy"));
        assert!(check_objectives(&[Accuracy, Params, Params])
            .unwrap_err()
            .contains("twice"));
        let c = Cost {
            params: 2_000_000,
            flops: 10,
            latency_ms: None,
            latency_spread_ms: None,
        };
        assert_eq!(
            point(&[Accuracy, Params], 90.0, Some(&c)),
            Some(vec![10.0, 2e6])
        );
        assert_eq!(point(&[Accuracy, Latency], 90.0, Some(&c)), None);
        let r = reference(&[Accuracy, Params], &c);
        assert_eq!(r[0], 100.0);
        assert!((r[1] - 2.2e6).abs() < 1e-3);
    }

    #[test]
    fn counts_read_with_suffixes() {
        assert_eq!(parse_count("400000").unwrap(), 400_000.0);
        assert_eq!(parse_count("0.4M").unwrap(), 400_000.0);
        assert_eq!(parse_count("300k").unwrap(), 300_000.0);
        assert_eq!(parse_count("1.5G").unwrap(), 1.5e9);
        assert!(parse_count("lots").unwrap_err().contains("'lots'"));
        assert!(parse_count("M").is_err());
    }

    #[test]
    fn the_cheapest_cells_parse() {
        for s in Space::ALL {
            let a = cheapest(s);
            assert_eq!(a.space(), s);
            assert!(a.to_text().contains(match s {
                Space::Nb201 => "none",
                Space::Darts => "max_pool_3x3",
            }));
        }
    }
}
