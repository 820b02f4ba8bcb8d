//! The SEKI strategy: its state and the [`Strategy`] implementation.
//!
//! - [`prompting`](self::prompting): the context every prompt template sees.
//! - [`ask`](self::ask): one LLM call, and asking for an architecture with
//!   repair prompts, duplicate re-asks and the bounded mutation fallback.
//! - [`stages`](self::stages): self-evolution and knowledge inspiration.

mod ask;
mod prompting;
mod pruned;
mod stages;

use super::extract::extract_all;
use super::insights::{clip, judge};
use super::settings::{AgentConfig, UndecidedInsights};
use crate::knowledge::claim::{self, Claim, Verdict};
use crate::knowledge::{now_rfc3339, Insight, InsightStatus, KnowledgeBase, Provenance};
use crate::llm::{ChatModel, ChatOptions, ChatResponse, Constraint, Message};
use crate::prompt::{PromptError, Prompts};
use crate::record::{
    AgentEvent, CallOptions, KnowledgeState, ParseOutcome, PoolEntry, ReplyCounts, ScreenStats,
    StageUsage, StrategyState,
};
use crate::space::notation::{self, arch_pattern};
use crate::space::{Arch, Space};
use crate::stats::{self, Comparison};
use crate::strategy::screen::{pick_best, show_score, Screen, ScreenError};
use crate::strategy::{Context, Observation, Proposal, Strategy, StrategyError, StrategyStats};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A failure setting the agent up.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A prompt template is bad.
    #[error(transparent)]
    Prompt(#[from] PromptError),
    /// The async runtime could not start.
    #[error("cannot start the async runtime for LLM calls: {0}")]
    Runtime(#[from] std::io::Error),
}

/// The language models of each stage.
#[derive(Clone)]
pub struct Models {
    /// Self-evolution.
    pub evolution: Arc<dyn ChatModel>,
    /// Knowledge inspiration.
    pub inspiration: Arc<dyn ChatModel>,
}

impl Models {
    /// One model for both stages.
    pub fn same(m: Arc<dyn ChatModel>) -> Self {
        Models {
            evolution: m.clone(),
            inspiration: m,
        }
    }
}

/// What the LLM is told about the task.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Task {
    /// Dataset name.
    pub dataset: String,
    /// The objective.
    pub objective: String,
    /// Constraints ("" for none).
    pub constraints: String,
    /// What the score is (e.g. `validation accuracy`).
    pub score_label: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct HistoryItem {
    strategy: String,
    outcome: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct Counters {
    parsed_first_try: u64,
    parsed_after_repair: u64,
    fell_back: u64,
    llm_duplicates: u64,
    #[serde(default)]
    insights_rejected: u64,
    /// Proposals a screen chose among several candidates.
    #[serde(default, skip_serializing_if = "is_zero")]
    screened: u64,
    /// Architectures of replies over the session's hard budgets (the model
    /// was asked again, told why).
    #[serde(default, skip_serializing_if = "is_zero")]
    over_budget: u64,
    usage: BTreeMap<String, StageUsage>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "stage", rename_all = "snake_case")]
enum Pending {
    Seed,
    Evolution {
        strategy: String,
        parent_score: f64,
        #[serde(default)]
        parent_se: Option<f64>,
    },
    Inspiration {
        insights: Vec<String>,
    },
    Ranked {
        choice: String,
        parent_score: f64,
        #[serde(default)]
        parent_se: Option<f64>,
    },
    Crossover,
    Pruned,
}

/// One line of refinement (island): its current architecture and what was
/// tried on it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct Line {
    current: Option<PoolEntry>,
    history: Vec<HistoryItem>,
}

/// A proposal whose outcome has not been observed yet.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Awaiting {
    /// The proposed architecture's canonical hash.
    hash: String,
    /// The line it was proposed for.
    line: usize,
    /// The hash of the architecture it was derived from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parent: Option<String>,
    #[serde(flatten)]
    what: Pending,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
struct AgentState {
    /// The architectures it knows, its insights and their support: the
    /// part of its state that reports read.
    #[serde(flatten)]
    known: KnowledgeState,
    /// The lines of refinement (`agent.islands` of them).
    lines: Vec<Line>,
    insight_seq: usize,
    /// Stage iterations done (the bootstrap proposal not counted).
    iterations: usize,
    /// Proposals awaiting their outcome, oldest first (several when the
    /// session keeps several evaluations in flight).
    awaiting: Vec<Awaiting>,
    /// Proposals made; the next goes to line `turn % islands`.
    turn: usize,
    /// LLM-pruned evolutions made (a `prune` call at every
    /// `agent.prune_refresh`-th).
    pruned: usize,
    /// Novel architectures of multi-candidate replies not yet proposed,
    /// oldest first, with what they answer.
    queue: Vec<Queued>,
    /// Whether the best records of another protocol were queued as seeds.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    prior_seeded: bool,
    counters: Counters,
}

/// A candidate of a multi-candidate reply waiting to be proposed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Queued {
    /// The architecture in its space's text form.
    arch: String,
    origin: String,
    operator: String,
    parent: Option<String>,
    line: usize,
    what: Pending,
}

/// The SEKI strategy: self-evolution and knowledge inspiration.
pub struct SekiAgent {
    space: Space,
    cfg: AgentConfig,
    task: Task,
    session: String,
    prompts: Prompts,
    models: Models,
    rt: tokio::runtime::Runtime,
    state: AgentState,
    events: Vec<AgentEvent>,
    outbox: Vec<Insight>,
    protocol: Option<crate::knowledge::EvaluatorInfo>,
    /// The other novel candidates of the reply being handled (moved to the
    /// state's queue once the proposal's pending outcome is known).
    extras: Vec<Proposal>,
    /// Untrained-network proxy scores choosing among candidates, if any.
    screen: Option<Box<dyn Screen>>,
    /// Random architectures a screen ranks for each bootstrap seed (0: the
    /// seed is one random architecture).
    screen_warmup: usize,
    /// The session's hard budgets and cost model, as the last proposal saw
    /// them (prompts state the budgets and each architecture's cost; a
    /// Pareto search places its architectures by the costs).
    budget: Option<crate::eval::Budget>,
    /// Why the outcome being observed was refused, if it was.
    refused: Option<String>,
    /// A Pareto search's objectives (empty: accuracy alone).
    objectives: Vec<crate::eval::Objective>,
    /// In a session with fidelity rungs: which rung the scores shown are
    /// from, in words.
    fidelity: Option<String>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// One LLM call's settings.
struct Call<'a> {
    stage: &'a str,
    model: Arc<dyn ChatModel>,
    temperature: f64,
    max_tokens: usize,
    constrained: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Evolution,
    Inspiration,
    Ranked,
    Crossover,
    Pruned,
}

impl Stage {
    /// The operator its proposals are counted under.
    fn operator(self) -> &'static str {
        match self {
            Stage::Evolution => "self-evolution",
            Stage::Inspiration => "knowledge-inspiration",
            Stage::Ranked => "llm-ranked-mutation",
            Stage::Crossover => "crossover",
            Stage::Pruned => "llm-pruned-evolution",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Stage::Evolution => "evolution",
            Stage::Inspiration => "inspiration",
            Stage::Ranked => "ranked_mutation",
            Stage::Crossover => "crossover",
            Stage::Pruned => "pruned_evolution",
        }
    }
}

/// An architecture as shown to the LLM: in the notation it must write.
fn show(space: Space, text: &str) -> String {
    match space.parse(text) {
        Ok(a) => notation::to_llm(&a).to_string(),
        Err(_) => text.to_string(),
    }
}

fn median(xs: &mut [f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(|a, b| a.total_cmp(b));
    Some(xs[xs.len() / 2])
}

impl SekiAgent {
    /// An agent for `space`, starting from `pool` (what the knowledge base
    /// knows; see [`SekiAgent::pool_from_kb`]). `session` prefixes the ids of
    /// the records and insights it makes.
    pub fn new(
        space: Space,
        cfg: AgentConfig,
        task: Task,
        session: &str,
        pool: Vec<PoolEntry>,
        models: Models,
    ) -> Result<Self, AgentError> {
        let dir = Some(cfg.prompts_dir.as_path()).filter(|p| !p.as_os_str().is_empty());
        let prompts = Prompts::load(dir)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(SekiAgent {
            space,
            cfg,
            task,
            session: session.to_string(),
            prompts,
            models,
            rt,
            state: AgentState {
                known: KnowledgeState {
                    pool,
                    ..Default::default()
                },
                ..Default::default()
            },
            events: Vec::new(),
            outbox: Vec::new(),
            protocol: None,
            extras: Vec::new(),
            screen: None,
            screen_warmup: 0,
            budget: None,
            refused: None,
            objectives: Vec::new(),
            fidelity: None,
        })
    }

    /// Choose among candidates by `screen` (zero-cost proxy scores of
    /// untrained networks): of a reply's novel candidates only the best by
    /// it is proposed (the others are dropped), and crossover and pruned
    /// evolution make up to `agent.candidates` children and keep the best.
    /// The scores are journalled, never shown to the LLM.
    pub fn with_screen(mut self, screen: Box<dyn Screen>) -> Self {
        self.screen = Some(screen);
        self
    }

    /// With a screen, bootstrap each line from the best of `warmup` random
    /// architectures by it (a zero-cost warm-up) instead of one random
    /// architecture, when the pool has no seed left to offer.
    pub fn with_screen_warmup(mut self, warmup: usize) -> Self {
        self.screen_warmup = warmup;
        self
    }

    /// A zero-cost warm-up for `line`: `screen_warmup` random unseen
    /// architectures ranked by the screen; the best is proposed now and the
    /// next `top_k - 1` are queued as further seeds of the line, so the
    /// pool the prompts see starts from the proxy's best. `None` without a
    /// screen or when nothing unseen was drawn.
    fn warm_up(
        &mut self,
        ctx: &mut Context<'_>,
        line: usize,
    ) -> Result<Option<Proposal>, StrategyError> {
        let mut archs: Vec<Arch> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..self.screen_warmup * 4 {
            if archs.len() >= self.screen_warmup {
                break;
            }
            let a = self.space.random(ctx.rng);
            if ctx.admits(&a) && seen.insert(a.hash()) {
                archs.push(a);
            }
        }
        let Some(screen) = self.screen.as_mut() else {
            return Ok(None);
        };
        if archs.is_empty() {
            return Ok(None);
        }
        let scores = screen.scores(&archs)?;
        let name = screen.name();
        let order = crate::strategy::screen::ranking(&scores);
        let keep: Vec<usize> = order.iter().copied().take(self.cfg.top_k.max(1)).collect();
        let n = archs.len();
        self.state.counters.screened += 1;
        self.events.push(AgentEvent::Screen {
            stage: "seed".into(),
            screen: name.clone(),
            chosen: archs.get(keep[0]).map(Arch::to_text).unwrap_or_default(),
            // The kept ones only: a warm-up of thousands stays out of the journal.
            candidates: keep
                .iter()
                .map(|&i| crate::record::ScreenedCandidate {
                    arch: archs[i].to_text(),
                    proxy_score: scores[i],
                })
                .collect(),
        });
        let origin = |rank: usize, i: usize| {
            format!(
                "seed: warm-up rank {rank} of {n} by untrained proxy {name} ({})",
                show_score(scores[i])
            )
        };
        for (rank, &i) in keep.iter().enumerate().skip(1) {
            self.state.queue.push(Queued {
                arch: archs[i].to_text(),
                origin: origin(rank + 1, i),
                operator: "seed+zc".into(),
                parent: None,
                line,
                what: Pending::Seed,
            });
        }
        let first = keep[0];
        Ok(Some(
            Proposal::new(archs.swap_remove(first), origin(1, first)).by("seed+zc"),
        ))
    }

    /// With a screen and several candidates, the best of `cands` by it (its
    /// operator marked `+zc`, every candidate's score journalled for
    /// `step`); otherwise the first.
    pub(super) fn screen_pick(
        &mut self,
        step: &str,
        mut cands: Vec<Proposal>,
    ) -> Result<Proposal, StrategyError> {
        let Some(screen) = self.screen.as_mut().filter(|_| cands.len() > 1) else {
            return cands
                .into_iter()
                .next()
                .ok_or(StrategyError::Screen(ScreenError::NoCandidates));
        };
        let archs: Vec<Arch> = cands.iter().map(|p| p.arch.clone()).collect();
        let (best, scores) = pick_best(screen.as_mut(), &archs)?;
        let name = screen.name();
        self.state.counters.screened += 1;
        self.events.push(AgentEvent::Screen {
            stage: step.to_string(),
            screen: name.clone(),
            chosen: archs.get(best).map(Arch::to_text).unwrap_or_default(),
            candidates: archs
                .iter()
                .zip(&scores)
                .map(|(a, s)| crate::record::ScreenedCandidate {
                    arch: a.to_text(),
                    proxy_score: *s,
                })
                .collect(),
        });
        let n = cands.len();
        let mut p = cands.swap_remove(best.min(n - 1));
        p.operator.push_str("+zc");
        p.origin = format!(
            "{}; best of {n} by untrained proxy {name} ({})",
            p.origin,
            show_score(scores.get(best).copied().flatten())
        );
        Ok(p)
    }

    /// How many candidates a non-LLM operator makes for the screen to
    /// choose from (1 without a screen).
    pub(super) fn screened_children(&self) -> usize {
        if self.screen.is_some() {
            self.candidates()
        } else {
            1
        }
    }

    /// The session's evaluation protocol: the standard error of each of its
    /// scores follows from it, and decisions treat differences within noise
    /// as ties (`agent.tie_z`).
    pub fn with_protocol(mut self, evaluator: crate::knowledge::EvaluatorInfo) -> Self {
        self.protocol = Some(evaluator);
        self
    }

    /// The knowledge base's architectures of a space as a starting pool.
    /// Records of the session's own evaluation protocol (evaluator, dataset,
    /// settings) are labelled `score_label` and ranked with the session's
    /// results; others are kept as context, labelled by their protocol (e.g.
    /// `published cifar10 test accuracy`). Own protocol first, best first.
    pub fn pool_from_kb(
        kb: &KnowledgeBase,
        space: Space,
        evaluator: &crate::knowledge::EvaluatorInfo,
        score_label: &str,
    ) -> Vec<PoolEntry> {
        let ours = evaluator.protocol();
        let mut pool: Vec<PoolEntry> = kb
            .entries()
            .iter()
            .filter(|e| e.record.space == space)
            .filter_map(|e| {
                let r = &e.record;
                let same = r.protocol() == ours;
                Some(PoolEntry {
                    id: r.id.clone(),
                    arch: r.arch.clone(),
                    score: r.score?,
                    score_label: if same {
                        score_label.to_string()
                    } else {
                        r.evaluator.protocol_label()
                    },
                    params: r.metric("params"),
                    own: false,
                    se: r.score_se(),
                    other_protocol: !same,
                    parent: None,
                })
            })
            .collect();
        pool.sort_by(|a, b| {
            a.other_protocol
                .cmp(&b.other_protocol)
                .then(b.score.total_cmp(&a.score))
        });
        pool
    }

    /// The pool entries ranked together with the session's own results (its
    /// protocol), best first.
    pub(super) fn comparable(&self) -> Vec<PoolEntry> {
        let mut v: Vec<PoolEntry> = self
            .state
            .known
            .pool
            .iter()
            .filter(|e| !e.other_protocol)
            .cloned()
            .collect();
        v.sort_by(|a, b| b.score.total_cmp(&a.score));
        if self.objectives.len() >= 2 {
            // A Pareto search: the front first, then the next fronts; by
            // score within each.
            let points: Option<Vec<Vec<f64>>> = v.iter().map(|e| self.point_of(e)).collect();
            if let Some(points) = points {
                let rank = crate::pareto::ranks(&points);
                let mut order: Vec<usize> = (0..v.len()).collect();
                order.sort_by_key(|&i| rank[i]);
                v = order
                    .into_iter()
                    .filter_map(|i| v.get(i).cloned())
                    .collect();
            }
        }
        v
    }

    /// A Pareto search's parent (`None` in a search of accuracy alone): a
    /// member of the front of the session's protocol, by a binary
    /// tournament on crowding distance, so the front's two ends and its
    /// sparse stretches are refined first.
    fn front_pick(&self, ctx: &mut Context<'_>) -> Option<PoolEntry> {
        if self.objectives.len() < 2 {
            return None;
        }
        let entries = self.comparable();
        let placed: Vec<(PoolEntry, Vec<f64>)> = entries
            .into_iter()
            .filter_map(|e| self.point_of(&e).map(|p| (e, p)))
            .collect();
        let points: Vec<Vec<f64>> = placed.iter().map(|(_, p)| p.clone()).collect();
        let front = crate::pareto::front(&points);
        let crowd = crate::pareto::crowding(&points, &front);
        if front.is_empty() {
            return None;
        }
        let a = ctx.rng.below(front.len());
        let b = ctx.rng.below(front.len());
        let k = if crowd.get(b) > crowd.get(a) { b } else { a };
        placed.get(*front.get(k)?).map(|(e, _)| e.clone())
    }

    /// A pool entry's point in objective space (every coordinate
    /// minimised), from its score and its cost.
    fn point_of(&self, e: &PoolEntry) -> Option<Vec<f64>> {
        let b = self.budget.as_ref()?;
        let a = self.space.parse(&e.arch).ok()?;
        let c = b.model.cost(&a).ok()?;
        crate::eval::cost::point(&self.objectives, e.score, Some(&c))
    }

    /// The reply pattern of a "cheaper" self-evolution of `e` in a Pareto
    /// search: the cells that cost less than `e` in the search's first
    /// objective that decoding can bound (parameters or FLOPs, on
    /// NAS-Bench-201), within the hard budgets too. `None` (the session's
    /// pattern is used) where decoding cannot bound it, with
    /// `agent.decode_within_budget = false`, or when no cell is cheaper.
    pub(super) fn cheaper_pattern(&self, e: &PoolEntry) -> Option<String> {
        if !self.cfg.decode_within_budget {
            return None;
        }
        let b = self.budget.as_ref()?;
        let cost = b.model.cost(&self.space.parse(&e.arch).ok()?).ok()?;
        let mut constraints = b.constraints;
        let (slot, figure) = if self.params_axis()? {
            (&mut constraints.max_params, cost.params as f64)
        } else {
            (&mut constraints.max_flops, cost.flops as f64)
        };
        // Costs are whole numbers: one less is strictly cheaper.
        let below = (figure - 1.0).min(slot.unwrap_or(f64::INFINITY));
        *slot = Some(below);
        crate::eval::Budget {
            constraints,
            model: b.model.clone(),
        }
        .arch_pattern(self.space, self.candidates())
    }

    /// Whether `e` costs as little as the space's cheapest cell in the
    /// search's first objective of parameters or FLOPs (so that no cell is
    /// cheaper in it).
    pub(super) fn is_cheapest(&self, e: &PoolEntry) -> bool {
        let Some(b) = self.budget.as_ref() else {
            return false;
        };
        let cost = |a: &Arch| b.model.cost(a).ok();
        let (Some(this), Some(floor)) = (
            self.space.parse(&e.arch).ok().and_then(|a| cost(&a)),
            cost(&crate::eval::cost::cheapest(self.space)),
        ) else {
            return false;
        };
        match self.params_axis() {
            Some(true) => this.params <= floor.params,
            Some(false) => this.flops <= floor.flops,
            None => false,
        }
    }

    /// The search's first objective of parameters or FLOPs, the one
    /// "cheaper" refers to: `Some(true)` parameters, `Some(false)` FLOPs,
    /// `None` neither (latency alone, or accuracy alone).
    fn params_axis(&self) -> Option<bool> {
        self.objectives.iter().find_map(|o| match o {
            crate::eval::Objective::Params => Some(true),
            crate::eval::Objective::Flops => Some(false),
            _ => None,
        })
    }

    /// Work on the Pareto front of `objectives` (two or three): the
    /// inspiration's top-k are the front first, and prompts ask for cells
    /// that extend it.
    pub fn with_objectives(mut self, objectives: Vec<crate::eval::Objective>) -> Self {
        if objectives.len() >= 2 {
            self.objectives = objectives;
        }
        self
    }

    /// Tell the prompts which fidelity rung the session's scores are from
    /// (`None`: one rung, nothing to say).
    pub fn with_fidelity(mut self, note: Option<String>) -> Self {
        self.fidelity = note;
        self
    }

    /// Up to `k` entries of other protocols, best first within each
    /// protocol, for prompts to show as labelled context.
    pub(super) fn context_entries(&self, k: usize) -> Vec<PoolEntry> {
        let mut v: Vec<PoolEntry> = self
            .state
            .known
            .pool
            .iter()
            .filter(|e| e.other_protocol)
            .cloned()
            .collect();
        v.sort_by(|a, b| {
            a.score_label
                .cmp(&b.score_label)
                .then(b.score.total_cmp(&a.score))
        });
        v.truncate(k);
        v
    }

    /// The standard error of one of the session's scores.
    fn own_se(&self, score: f64) -> Option<f64> {
        self.protocol.as_ref().and_then(|p| p.implied_se(score))
    }

    /// How a child's score compares with its parent's, differences within
    /// noise (`agent.tie_z` standard errors) being ties: the outcome in words
    /// at the precision the noise supports.
    fn judge_child(&self, child: &PoolEntry, parent: f64, parent_se: Option<f64>) -> String {
        let cmp = stats::compare(child.score, child.se, parent, parent_se, self.cfg.tie_z);
        let c = stats::round(child.score, child.se);
        let p = stats::round(parent, parent_se);
        match cmp {
            Comparison::Better => format!("improved to {c} (from {p})"),
            Comparison::Tie if child.score > parent && child.se.is_some() => format!(
                "{c}, within noise of {p} (± {}): not a clear improvement",
                stats::round(child.se.unwrap_or(0.0), child.se)
            ),
            Comparison::Tie => format!("{c}, within noise of {p}"),
            Comparison::Worse => format!("{c}, not better than {p}"),
        }
    }

    fn islands(&self) -> usize {
        self.cfg.islands.max(1)
    }

    /// Architectures asked for per reply.
    pub(super) fn candidates(&self) -> usize {
        self.cfg.candidates.clamp(1, 8)
    }

    /// The next queued candidate not evaluated (nor in flight) yet.
    fn next_queued(&mut self, ctx: &Context<'_>) -> Option<(Proposal, usize, Pending)> {
        while !self.state.queue.is_empty() {
            let q = self.state.queue.remove(0);
            let Ok(arch) = self.space.parse(&q.arch) else {
                continue;
            };
            if !ctx.admits(&arch) {
                continue;
            }
            let p = Proposal {
                arch,
                origin: q.origin,
                operator: q.operator,
                parent: q.parent,
            };
            return Some((p, q.line, q.what));
        }
        None
    }

    /// A knowledge base of another dataset or protocol (a warm start): its
    /// best records, `agent.warm_seeds` of them with `first`, are the
    /// session's first evaluations, as a population is seeded. Once per
    /// session.
    fn queue_prior_seeds(&mut self, ctx: &Context<'_>, line: usize, first: &Arch) {
        if self.state.prior_seeded {
            return;
        }
        self.state.prior_seeded = true;
        let mut hashes = std::collections::HashSet::from([first.hash()]);
        let mut picks = Vec::new();
        for e in self.state.known.pool.iter().filter(|e| e.other_protocol) {
            if picks.len() + 1 >= self.cfg.warm_seeds {
                break;
            }
            let Ok(a) = self.space.parse(&e.arch) else {
                continue;
            };
            if !ctx.admits(&a) || !hashes.insert(a.hash()) {
                continue;
            }
            picks.push(Queued {
                arch: a.to_text(),
                origin: format!(
                    "seed: {} from the knowledge base ({} {})",
                    e.id,
                    e.score_label,
                    show_score(Some(e.score))
                ),
                operator: "seed".into(),
                parent: None,
                line,
                what: Pending::Seed,
            });
        }
        self.state.queue.extend(picks);
    }

    /// Remember what `p` was proposed for, until its outcome is observed.
    fn awaits(&mut self, p: &Proposal, line: usize, what: Pending) {
        self.state.awaiting.push(Awaiting {
            hash: p.arch.hash(),
            line,
            parent: p.parent.clone(),
            what,
        });
    }

    /// Insights already in the knowledge base for this space, to build on.
    /// They are priors: a claim's figures are dropped and scored again on
    /// this session's own evaluations (its protocol, its dataset) as they
    /// come; until then prompts show it as not yet checked here.
    pub fn with_insights(mut self, mut insights: Vec<Insight>) -> Self {
        for i in insights.iter_mut().filter(|i| i.claim.is_some()) {
            i.stats = None;
        }
        self.state.known.insights = insights;
        self
    }
}

impl SekiAgent {
    /// Score every insight that states a claim on the architectures
    /// evaluated under the session's protocol (its own and the pool's
    /// records of the same protocol); an insight the data now contradict is
    /// marked so. Changed insights go to the knowledge base.
    fn rescore_claims(&mut self) {
        let data: Vec<(Arch, f64, Option<f64>, Option<String>)> = self
            .state
            .known
            .pool
            .iter()
            .filter(|e| e.own || !e.other_protocol)
            .filter_map(|e| {
                self.space
                    .parse(&e.arch)
                    .ok()
                    .map(|a| (a, e.score, e.se, e.parent.clone()))
            })
            .collect();
        let pairs = claim::lineage_pairs(
            &data.iter().map(|(a, ..)| a).collect::<Vec<_>>(),
            &data.iter().map(|(.., p)| p.as_deref()).collect::<Vec<_>>(),
        );
        let scored = |i: usize| {
            let (a, s, se, _) = &data[i];
            (a, *s, *se)
        };
        for ins in self.state.known.insights.iter_mut() {
            let Some(claim) = &ins.claim else { continue };
            let stats = claim.score_with_pairs(
                data.iter().map(|(a, s, se, _)| (a, *s, *se)),
                pairs.iter().map(|&(p, c)| (scored(p), scored(c))),
            );
            if ins.stats.as_ref() == Some(&stats) {
                continue;
            }
            if stats.verdict == Verdict::Contradicted {
                ins.status = InsightStatus::Contradicted;
            } else if ins.status == InsightStatus::Contradicted
                && stats.verdict == Verdict::Supported
            {
                ins.status = InsightStatus::Active;
            }
            ins.stats = Some(stats);
            self.outbox.push(ins.clone());
        }
    }
}

impl SekiAgent {
    /// A refinement of `line` (self-evolution or a ranked mutation) and its
    /// outcome go into the line's history; a better child becomes its
    /// current architecture.
    fn record_refinement(
        &mut self,
        line: usize,
        strategy: String,
        entry: Option<&PoolEntry>,
        parent_score: f64,
        parent_se: Option<f64>,
    ) {
        let outcome = match (entry, &self.refused) {
            (Some(e), _) => self.judge_child(e, parent_score, parent_se),
            (None, Some(why)) => format!("refused without evaluation: over the budget ({why})"),
            (None, None) => "the evaluation failed".into(),
        };
        let Some(l) = self.state.lines.get_mut(line) else {
            return;
        };
        l.history.push(HistoryItem { strategy, outcome });
        let (z, on_tie) = (self.cfg.tie_z, self.cfg.on_tie);
        if let Some(e) = entry {
            if l.current.as_ref().is_none_or(|c| {
                crate::agent::replaces_current(e.score, e.se, c.score, c.se, z, on_tie)
            }) {
                l.current = Some(e.clone());
            }
        }
    }
}

impl Strategy for SekiAgent {
    fn name(&self) -> &'static str {
        "seki"
    }

    fn stage(&self) -> String {
        let line = self.state.turn % self.islands();
        let seeding = self
            .state
            .lines
            .get(line)
            .is_none_or(|l| l.current.is_none());
        let which = if self.islands() > 1 {
            format!(" (line {})", line + 1)
        } else {
            String::new()
        };
        if seeding {
            format!("seki: seed{which}")
        } else {
            format!("seki: {}{which}", self.next_stage().name())
        }
    }

    fn propose(&mut self, ctx: &mut Context<'_>) -> Result<Proposal, StrategyError> {
        if self.budget.is_none() {
            // The cost model with the budgets: a Pareto search places its
            // architectures by it even without budgets.
            self.budget = ctx.costs().cloned();
        }
        if let Some((p, line, what)) = self.next_queued(ctx) {
            self.awaits(&p, line, what);
            return Ok(p);
        }
        let islands = self.islands();
        if self.state.lines.len() < islands {
            self.state.lines.resize_with(islands, Line::default);
        }
        let line = self.state.turn % islands;
        self.state.turn += 1;
        let Some(current) = self.state.lines[line].current.clone() else {
            // Bootstrap: the best known architecture not yet evaluated here
            // (nor in flight), else a random one.
            let seed = self
                .state
                .known
                .pool
                .iter()
                .filter_map(|e| {
                    self.space
                        .parse(&e.arch)
                        .ok()
                        .map(|a| (e.id.clone(), a, e.other_protocol))
                })
                .find(|(_, a, _)| ctx.admits(a));
            let p = match seed {
                Some((id, arch, other_protocol)) => {
                    if other_protocol {
                        self.queue_prior_seeds(ctx, line, &arch);
                    }
                    Proposal::new(arch, format!("seed: {id} from the knowledge base")).by("seed")
                }
                None if self.screen.is_some() && self.screen_warmup > 1 => {
                    match self.warm_up(ctx, line)? {
                        Some(p) => p,
                        None => {
                            Proposal::new(self.fallback(ctx, None).0, "seed: random").by("seed")
                        }
                    }
                }
                None => Proposal::new(self.fallback(ctx, None).0, "seed: random").by("seed"),
            };
            self.awaits(&p, line, Pending::Seed);
            return Ok(p);
        };
        let stage = self.next_stage();
        self.state.iterations += 1;
        self.extras.clear();
        // A Pareto search refines along its whole front, not only at the
        // accurate end that the line's current cell sits at.
        let current = match stage {
            Stage::Inspiration => current,
            _ => self.front_pick(ctx).unwrap_or(current),
        };
        let (p, pending) = match stage {
            Stage::Evolution => self.evolve(ctx, current, line)?,
            Stage::Inspiration => self.inspire(ctx)?,
            Stage::Ranked => self.ranked(ctx, current, line)?,
            Stage::Crossover => self.crossover(ctx, current)?,
            Stage::Pruned => self.pruned(ctx, current)?,
        };
        for e in std::mem::take(&mut self.extras) {
            self.state.queue.push(Queued {
                arch: e.arch.to_text(),
                origin: e.origin,
                operator: e.operator,
                parent: e.parent,
                line,
                what: pending.clone(),
            });
        }
        self.awaits(&p, line, pending);
        Ok(p)
    }

    fn observe(&mut self, obs: &Observation<'_>) {
        self.refused = obs.refused.map(str::to_string);
        let own_scores: Vec<f64> = self
            .state
            .known
            .pool
            .iter()
            .filter(|e| e.own)
            .map(|e| e.score)
            .collect();
        let entry = match (obs.evaluation, obs.score) {
            (Some(n), Some(score)) => {
                let e = PoolEntry {
                    id: format!("{}-{n:04}", self.session),
                    arch: obs.arch.to_text(),
                    score,
                    score_label: self.task.score_label.clone(),
                    params: obs.params,
                    own: true,
                    se: self.own_se(score),
                    other_protocol: false,
                    parent: None,
                };
                self.state.known.pool.push(e.clone());
                Some(e)
            }
            _ => None,
        };
        // A difference within noise is a tie; `on_tie` says what it does.
        let (z, on_tie) = (self.cfg.tie_z, self.cfg.on_tie);
        let better_than_current = |e: &PoolEntry, cur: &Option<PoolEntry>| {
            cur.as_ref().is_none_or(|c| {
                crate::agent::replaces_current(e.score, e.se, c.score, c.se, z, on_tie)
            })
        };
        // The proposal this outcome answers (the latest of that architecture:
        // a duplicate is answered at once, before an earlier one in flight).
        let hash = obs.arch.hash();
        let (line, pending) = match self.state.awaiting.iter().rposition(|a| a.hash == hash) {
            Some(i) => {
                let a = self.state.awaiting.remove(i);
                if let (Some(e), Some(parent)) = (self.state.known.pool.last_mut(), a.parent) {
                    if entry.is_some() && e.parent.is_none() && parent != hash {
                        e.parent = Some(parent);
                    }
                }
                (a.line, Some(a.what))
            }
            None => (0, None),
        };
        if self.state.lines.len() <= line {
            self.state.lines.resize_with(line + 1, Line::default);
        }
        let current = &mut self.state.lines[line].current;
        match pending {
            Some(Pending::Seed) => {
                if let Some(e) = &entry {
                    if better_than_current(e, current) {
                        *current = Some(e.clone());
                    }
                }
            }
            Some(Pending::Evolution {
                strategy,
                parent_score,
                parent_se,
            }) => {
                self.record_refinement(
                    line,
                    clip(&strategy, 200),
                    entry.as_ref(),
                    parent_score,
                    parent_se,
                );
            }
            Some(Pending::Ranked {
                choice,
                parent_score,
                parent_se,
            }) => {
                self.record_refinement(line, choice, entry.as_ref(), parent_score, parent_se);
            }
            Some(Pending::Crossover | Pending::Pruned) => {
                if let Some(e) = &entry {
                    let current = &mut self.state.lines[line].current;
                    if better_than_current(e, current) {
                        *current = Some(e.clone());
                    }
                }
            }
            Some(Pending::Inspiration { insights }) => {
                let mut scores = own_scores;
                let bar = median(&mut scores);
                // Checkable claims are judged on all the data below; the
                // median rule is for free-text insights only.
                let free_text: Vec<String> = insights
                    .into_iter()
                    .filter(|id| {
                        self.state
                            .known
                            .insights
                            .iter()
                            .any(|i| i.id == *id && i.claim.is_none())
                    })
                    .collect();
                for id in free_text {
                    let record = entry
                        .as_ref()
                        .map_or_else(|| "failed".to_string(), |e| e.id.clone());
                    let supports = self.state.known.supports.entry(id.clone()).or_insert(0);
                    if let Some(ins) = self.state.known.insights.iter_mut().find(|i| i.id == id) {
                        if judge(ins, supports, &record, entry.as_ref().map(|e| e.score), bar) {
                            self.outbox.push(ins.clone());
                        }
                    }
                }
                if let Some(e) = &entry {
                    let current = &mut self.state.lines[line].current;
                    if better_than_current(e, current) {
                        *current = Some(e.clone());
                    }
                }
            }
            None => {}
        }
        if entry.is_some() {
            self.rescore_claims();
        }
    }

    fn state(&self) -> StrategyState {
        StrategyState::encode(&self.state).unwrap_or_default()
    }

    fn restore(&mut self, state: &StrategyState) -> Result<(), StrategyError> {
        self.state = state.decode().map_err(|e| StrategyError::Restore {
            strategy: "seki",
            message: e.to_string(),
        })?;
        Ok(())
    }

    fn drain_events(&mut self) -> Vec<AgentEvent> {
        std::mem::take(&mut self.events)
    }

    fn drain_insights(&mut self) -> Vec<Insight> {
        std::mem::take(&mut self.outbox)
    }

    fn insights(&self) -> Vec<Insight> {
        self.state.known.insights.clone()
    }

    fn stats(&self) -> StrategyStats {
        let c = &self.state.counters;
        let insights = &self.state.known.insights;
        StrategyStats {
            tokens: c
                .usage
                .values()
                .map(|u| u.prompt_tokens + u.completion_tokens)
                .sum(),
            cost_usd: c.usage.values().map(|u| u.cost_usd).sum(),
            llm_duplicates: c.llm_duplicates,
            replies: Some(ReplyCounts {
                parsed_first_try: c.parsed_first_try,
                parsed_after_repair: c.parsed_after_repair,
                fell_back: c.fell_back,
                insights_rejected: c.insights_rejected,
            }),
            insights: Some(insights.len() as u64),
            insights_contradicted: Some(
                insights
                    .iter()
                    .filter(|i| i.status == InsightStatus::Contradicted)
                    .count() as u64,
            ),
            usage: Some(c.usage.clone()),
            screen: self.screen.as_ref().map(|screen| ScreenStats {
                screen: screen.name(),
                screened: Some(c.screened),
                screened_mutations: None,
                proxy_cpu_seconds: screen.cpu_seconds(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ReplayModel;
    use crate::rng::Rng;

    fn agent() -> SekiAgent {
        let task = Task {
            dataset: "cifar10".into(),
            objective: "accuracy".into(),
            constraints: String::new(),
            score_label: "validation accuracy".into(),
        };
        let model: Arc<dyn ChatModel> = Arc::new(ReplayModel::new("replay", Vec::new(), false));
        SekiAgent::new(
            Space::Nb201,
            AgentConfig::default(),
            task,
            "t",
            Vec::new(),
            Models::same(model),
        )
        .unwrap()
    }

    #[test]
    fn a_knowledge_base_of_another_dataset_seeds_its_best_records_first() {
        let mut rng = Rng::seed(4);
        let entries: Vec<PoolEntry> = (0..15)
            .map(|k| PoolEntry {
                id: format!("kb-{k}"),
                arch: Space::Nb201.random(&mut rng).to_text(),
                score: 90.0 - k as f64,
                score_label: "NAS-Bench-201 table, cifar10 12-epoch validation".into(),
                params: None,
                own: false,
                se: None,
                other_protocol: true,
                parent: None,
            })
            .collect();
        let cfg = AgentConfig {
            warm_seeds: 10,
            ..AgentConfig::default()
        };
        let mut a = agent();
        a.cfg = cfg.clone();
        a.state.known.pool = entries.clone();
        let mut got = Vec::new();
        for _ in 0..cfg.warm_seeds {
            let seen: std::collections::HashSet<String> = got.iter().cloned().collect();
            let is_seen = |h: &str| seen.contains(h);
            let mut ctx = Context::new(&mut rng, &is_seen);
            let p = a.propose(&mut ctx).unwrap();
            a.drain_events();
            if p.operator != "seed" {
                break;
            }
            got.push(p.arch.hash());
        }
        // agent.warm_seeds of them, best first.
        let want: Vec<String> = entries
            .iter()
            .take(cfg.warm_seeds)
            .map(|e| Space::Nb201.parse(&e.arch).unwrap().hash())
            .collect();
        assert_eq!(got, want);
        // Once: a restored agent does not queue them again.
        let mut b = agent();
        b.restore(&a.state()).unwrap();
        assert!(b.state.prior_seeded);
    }

    #[test]
    fn insights_from_the_knowledge_base_are_scored_again_before_they_show_figures() {
        let insight: Insight = serde_json::from_value(serde_json::json!({
            "id": "kb-i1", "space": "nb201", "text": "3x3 convolutions help",
            "claim": {"op": "nor_conv_3x3", "where": "anywhere", "effect": "helps"},
            "stats": {"n_with": 40, "mean_with": 70.0, "n_without": 10, "mean_without": 60.0,
                      "effect_size": 1.2, "verdict": "supported"},
            "provenance": {"source": "session"}, "created": "2026-01-01T00:00:00Z"
        }))
        .unwrap();
        let a = agent().with_insights(vec![insight]);
        let shown = a.active_insights();
        let text = shown[0]["text"].as_str().unwrap();
        assert_eq!(
            text,
            "3x3 convolutions help [a prior: not yet checked on this task]"
        );
    }

    #[test]
    fn undecided_insights_are_shown_as_undecided_or_hidden() {
        let scored = |id: &str, verdict: &str| -> Insight {
            serde_json::from_value(serde_json::json!({
                "id": id, "space": "nb201", "text": format!("claim {id}"),
                "claim": {"op": "nor_conv_3x3", "where": "anywhere", "effect": "helps"},
                "stats": {"n_with": 4, "mean_with": 70.0, "n_without": 4, "mean_without": 69.0,
                          "effect_size": 0.5, "se_difference": 1.1, "verdict": verdict},
                "provenance": {"source": "session"}, "created": "2026-01-01T00:00:00Z"
            }))
            .unwrap()
        };
        let mut a = agent();
        a.cfg.undecided_insights = UndecidedInsights::Show;
        a.state.known.insights = vec![scored("u", "undecided"), scored("s", "supported")];
        let shown: Vec<String> = a
            .active_insights()
            .iter()
            .map(|v| v["text"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(shown.len(), 2);
        assert!(
            shown[0].starts_with("claim u [") && shown[0].ends_with("undecided]"),
            "{shown:?}"
        );
        assert!(shown[0].contains("difference +1.0 ± 1.1"), "{shown:?}");
        a.cfg.undecided_insights = UndecidedInsights::Hide;
        let shown = a.active_insights();
        assert_eq!(shown.len(), 1);
        assert_eq!(shown[0]["id"], "s");
    }

    #[test]
    fn fallback_ends_when_every_architecture_was_seen() {
        let a = agent();
        let mut rng = Rng::seed(1);
        let all_seen = |_: &str| true;
        let mut ctx = Context::new(&mut rng, &all_seen);
        let parent = Space::Nb201.random(&mut Rng::seed(2)).to_text();
        // Returns (a seen architecture, for the session to count as a
        // duplicate) instead of looping for ever.
        let (arch, parent_hash) = a.fallback(&mut ctx, Some(&parent));
        assert!(parent_hash.is_none(), "not a mutation of the parent");
        assert!(ctx.is_seen(&arch));
        let (_, none) = a.fallback(&mut ctx, None);
        assert!(none.is_none());
    }

    #[test]
    fn outcomes_within_noise_are_ties_at_the_noise_precision() {
        let mut table_info = crate::knowledge::EvaluatorInfo {
            kind: "nb201-table".into(),
            dataset: Some("cifar10".into()),
            settings: Default::default(),
        };
        table_info
            .settings
            .insert("noise_sd".into(), serde_json::json!(1.0));
        let mut a = agent().with_protocol(table_info);
        let arch = Space::Nb201.random(&mut Rng::seed(3));
        let mut outcome = |score: f64, n: usize| {
            let parent_se = a.own_se(80.0);
            a.state.awaiting.push(Awaiting {
                hash: arch.hash(),
                line: 0,
                parent: None,
                what: Pending::Evolution {
                    strategy: "try".into(),
                    parent_score: 80.0,
                    parent_se,
                },
            });
            a.observe(&Observation {
                arch: &arch,
                score: Some(score),
                evaluation: Some(n),
                params: None,
                refused: None,
                cost: None,
            });
            a.state.lines[0].history.last().unwrap().outcome.clone()
        };
        // Standard errors about 1.03 each: a tie within 1.46 points at z = 1.
        let tie = outcome(81.0, 1);
        assert!(tie.starts_with("81.0, within noise of 80.0"), "{tie}");
        let better = outcome(82.0, 2);
        assert_eq!(better, "improved to 82.0 (from 80.0)");
        let worse = outcome(78.0, 3);
        assert_eq!(worse, "78.0, not better than 80.0");
    }

    #[test]
    fn fallback_mutates_the_parent_when_it_can() {
        let a = agent();
        let mut rng = Rng::seed(1);
        let none_seen = |_: &str| false;
        let mut ctx = Context::new(&mut rng, &none_seen);
        let p = Space::Nb201.random(&mut Rng::seed(2));
        let (_, parent_hash) = a.fallback(&mut ctx, Some(&p.to_text()));
        assert_eq!(parent_hash, Some(p.hash()));
    }

    fn reply(text: &str) -> crate::llm::Recorded {
        crate::llm::Recorded {
            prompt: None,
            response: ChatResponse {
                text: text.into(),
                usage: Default::default(),
                latency_seconds: 0.0,
                finish: crate::llm::FinishReason::Stop,
                model: "test".into(),
                cost_usd: None,
            },
        }
    }

    fn screened(cfg: AgentConfig, replies: Vec<crate::llm::Recorded>) -> SekiAgent {
        let task = Task {
            dataset: "cifar10".into(),
            objective: "accuracy".into(),
            constraints: String::new(),
            score_label: "validation accuracy".into(),
        };
        let model: Arc<dyn ChatModel> = Arc::new(ReplayModel::new("replay", replies, false));
        SekiAgent::new(
            Space::Nb201,
            cfg,
            task,
            "t",
            Vec::new(),
            Models::same(model),
        )
        .unwrap()
        .with_screen(Box::new(crate::strategy::screen::tests::ByCode {
            asked: Vec::new(),
        }))
    }

    fn cell(code: usize) -> Arch {
        Arch::Nb201(crate::space::Nb201Cell::from_code(code).unwrap())
    }

    fn seen_score(a: &mut SekiAgent, arch: &Arch, n: usize) {
        a.observe(&Observation {
            arch,
            score: Some(50.0 + n as f64),
            evaluation: Some(n),
            params: None,
            refused: None,
            cost: None,
        });
    }

    /// The NAS-Bench-201 cost model; `None` (the test is skipped) without
    /// the table beside the checkout.
    fn nb201_costs() -> Option<crate::eval::CostModel> {
        let table = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/benchmarks/nb201/nb201-cifar10.csv"
        );
        if !std::path::Path::new(table).exists() {
            eprintln!("skipped: no NAS-Bench-201 table beside the checkout");
            return None;
        }
        let mut settings = crate::eval::EvaluatorConfig::default();
        settings.nb201.table = table.into();
        crate::eval::CostModel::for_evaluator(crate::eval::EvaluatorKind::Nb201, &settings, false)
            .ok()
    }

    /// A Pareto search refines along its front: the parent is a front
    /// member (its cheap end too), never a dominated cell.
    #[test]
    fn a_pareto_search_picks_its_parents_from_the_whole_front() {
        let Some(model) = nb201_costs() else { return };
        let mut a = agent().with_objectives(vec![
            crate::eval::Objective::Accuracy,
            crate::eval::Objective::Params,
        ]);
        a.budget = Some(crate::eval::Budget {
            constraints: crate::eval::Constraints::default(),
            model,
        });
        let cells = [
            // (cell, score): cheap, middle, accurate, and a dominated one
            // (as costly as the accurate cell, less accurate).
            ("|none~0|+|skip_connect~0|none~1|+|none~0|none~1|skip_connect~2|", 40.0),
            ("|nor_conv_1x1~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|none~1|nor_conv_1x1~2|", 80.0),
            ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|", 90.0),
            ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|", 60.0),
        ];
        for (k, (text, score)) in cells.iter().enumerate() {
            a.state.known.pool.push(PoolEntry {
                id: format!("c{k}"),
                arch: text.to_string(),
                score: *score,
                score_label: "validation accuracy".into(),
                params: None,
                own: true,
                se: Some(0.3),
                other_protocol: false,
                parent: None,
            });
        }
        let none_seen = |_: &str| false;
        let mut picked = std::collections::BTreeSet::new();
        for seed in 0..40 {
            let mut rng = Rng::seed(seed);
            let p = a
                .front_pick(&mut Context::new(&mut rng, &none_seen))
                .unwrap();
            picked.insert(p.id);
        }
        assert!(!picked.contains("c3"), "a dominated cell: {picked:?}");
        assert!(picked.contains("c0") && picked.contains("c2"), "{picked:?}");
        // A search of accuracy alone keeps its line's current cell.
        let mut rng = Rng::seed(0);
        assert!(agent()
            .front_pick(&mut Context::new(&mut rng, &none_seen))
            .is_none());
    }

    /// Asked for a cheaper cell in a Pareto search of parameters, the
    /// model can only write cells with fewer parameters than the parent
    /// (and within the hard budget); the cheapest cell has none cheaper,
    /// and a search of accuracy alone is not narrowed.
    #[test]
    fn a_cheaper_self_evolution_is_decoded_under_the_parents_cost() {
        use crate::llm::constrain::RegexDfa;
        let Some(model) = nb201_costs() else { return };
        let entry = |arch: &str| PoolEntry {
            id: "p".into(),
            arch: arch.into(),
            score: 90.0,
            score_label: "validation accuracy".into(),
            params: None,
            own: true,
            se: None,
            other_protocol: false,
            parent: None,
        };
        let parent = entry("|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_3x3~0|none~1|avg_pool_3x3~2|");
        let params = |a: &crate::space::Arch| model.cost(a).unwrap().params;
        let parent_params = params(&Space::Nb201.parse(&parent.arch).unwrap());
        for hard in [None, Some(300_000.0)] {
            let mut a = agent().with_objectives(vec![
                crate::eval::Objective::Accuracy,
                crate::eval::Objective::Params,
            ]);
            a.budget = Some(crate::eval::Budget {
                constraints: crate::eval::Constraints {
                    max_params: hard,
                    ..Default::default()
                },
                model: model.clone(),
            });
            let dfa = RegexDfa::new(&a.cheaper_pattern(&parent).unwrap()).unwrap();
            let limit = hard.map_or(parent_params, |h| (h as u64).min(parent_params));
            let mut rng = Rng::seed(3);
            let (mut inside, mut outside) = (0, 0);
            for cell in std::iter::once(Space::Nb201.parse(&parent.arch).unwrap())
                .chain((0..80).map(|_| Space::Nb201.random(&mut rng)))
            {
                let p = params(&cell);
                let cheaper = p < parent_params && p <= limit;
                assert_eq!(
                    dfa.matches(&notation::to_llm(&cell)),
                    cheaper,
                    "{} ({p})",
                    cell.to_text()
                );
                if cheaper {
                    inside += 1;
                } else {
                    outside += 1;
                }
            }
            assert!(inside > 0 && outside > 0, "{inside} in, {outside} out");
            // Nothing is cheaper than the cheapest cell: the session's
            // pattern stays.
            let cheapest = entry(&crate::eval::cost::cheapest(Space::Nb201).to_text());
            assert!(a.cheaper_pattern(&cheapest).is_none());
            assert!(a.is_cheapest(&cheapest) && !a.is_cheapest(&parent));
            a.cfg.decode_within_budget = false;
            assert!(a.cheaper_pattern(&parent).is_none());
        }
        let mut alone = agent();
        alone.budget = Some(crate::eval::Budget {
            constraints: crate::eval::Constraints::default(),
            model: model.clone(),
        });
        assert!(alone.cheaper_pattern(&parent).is_none());
        // Self-evolution through the score-blind stand-in (which writes at
        // random what the constraint allows): every cell asked to be
        // cheaper is; the others are drawn from the whole space.
        let blind: Arc<dyn ChatModel> = Arc::new(crate::llm::blind::BlindModel::new(1));
        let mut a = SekiAgent::new(
            Space::Nb201,
            AgentConfig::default(),
            agent().task.clone(),
            "t",
            Vec::new(),
            Models::same(blind),
        )
        .unwrap()
        .with_objectives(vec![
            crate::eval::Objective::Accuracy,
            crate::eval::Objective::Params,
        ]);
        a.budget = Some(crate::eval::Budget {
            constraints: crate::eval::Constraints::default(),
            model: model.clone(),
        });
        let none_seen = |_: &str| false;
        let (mut cheaper, mut costlier) = (0, 0);
        for seed in 0..16 {
            let mut rng = Rng::seed(seed);
            a.events.clear();
            let (p, _) = a
                .evolve(&mut Context::new(&mut rng, &none_seen), parent.clone(), 0)
                .unwrap();
            let asked = a.events.iter().any(|e| match e {
                AgentEvent::Llm { messages, .. } => messages
                    .iter()
                    .any(|m| m.content.contains("Make it cheaper")),
                _ => false,
            });
            let p = params(&p.arch);
            if asked {
                assert!(p < parent_params, "asked for a cheaper cell, got {p}");
                cheaper += 1;
            } else if p >= parent_params {
                costlier += 1;
            }
        }
        assert!(
            cheaper > 0 && costlier > 0,
            "{cheaper} cheaper, {costlier} not"
        );
    }

    #[test]
    fn a_screen_proposes_the_best_candidate_of_a_reply_and_drops_the_others() {
        let cands = [cell(100), cell(3000), cell(200)];
        let listed: Vec<String> = cands
            .iter()
            .map(|c| notation::to_llm(c).to_string())
            .collect();
        let cfg = AgentConfig {
            candidates: 3,
            ..AgentConfig::default()
        };
        let mut a = screened(
            cfg,
            vec![reply("more convolutions"), reply(&listed.join("\n"))],
        );
        let mut rng = Rng::seed(1);
        let none_seen = |_: &str| false;
        let seed = a.propose(&mut Context::new(&mut rng, &none_seen)).unwrap();
        assert_eq!(seed.operator, "seed");
        seen_score(&mut a, &seed.arch, 1);
        a.drain_events();
        let saved = (a.state(), rng.clone());
        let p = a.propose(&mut Context::new(&mut rng, &none_seen)).unwrap();
        assert_eq!(p.arch, cands[1], "the highest proxy score");
        assert_eq!(p.operator, "self-evolution+zc");
        assert!(
            p.origin.contains("best of 3 by untrained proxy code"),
            "{}",
            p.origin
        );
        assert!(a.state.queue.is_empty(), "the others are dropped");
        let events = a.drain_events();
        let (chosen, candidates) = events
            .iter()
            .find_map(|e| match e {
                AgentEvent::Screen {
                    chosen, candidates, ..
                } => Some((chosen, candidates)),
                _ => None,
            })
            .expect("a screen event");
        assert_eq!(*chosen, cands[1].to_text());
        assert_eq!(candidates[2].proxy_score, Some(200.0));
        // No proxy score reaches a prompt.
        for e in &events {
            if let AgentEvent::Llm { messages, .. } = e {
                assert!(messages.iter().all(|m| !m.content.contains("proxy")));
            }
        }
        assert_eq!(a.stats().screen.and_then(|s| s.screened), Some(1));
        // A restored agent proposes the same.
        let mut b = screened(
            AgentConfig {
                candidates: 3,
                ..AgentConfig::default()
            },
            vec![reply("more convolutions"), reply(&listed.join("\n"))],
        );
        b.restore(&saved.0).unwrap();
        let mut r2 = saved.1;
        let q = b.propose(&mut Context::new(&mut r2, &none_seen)).unwrap();
        assert_eq!((q.arch, q.operator), (p.arch, p.operator));
        assert_eq!(a.state(), b.state());
    }

    #[test]
    fn a_screen_keeps_the_best_of_several_crossover_children() {
        let cfg = AgentConfig {
            candidates: 4,
            evolution_iterations: 0,
            inspiration_iterations: 0,
            crossover_iterations: 1,
            ..AgentConfig::default()
        };
        let mut a = screened(cfg, Vec::new());
        let mut rng = Rng::seed(3);
        let none_seen = |_: &str| false;
        let seed = a.propose(&mut Context::new(&mut rng, &none_seen)).unwrap();
        seen_score(&mut a, &seed.arch, 1);
        for n in 2..6 {
            seen_score(&mut a, &Space::Nb201.random(&mut Rng::seed(n as u64)), n);
        }
        let p = a.propose(&mut Context::new(&mut rng, &none_seen)).unwrap();
        assert_eq!(p.operator, "crossover+zc", "{}", p.origin);
        let (stage, candidates) = a
            .drain_events()
            .into_iter()
            .find_map(|e| match e {
                AgentEvent::Screen {
                    stage, candidates, ..
                } => Some((stage, candidates)),
                _ => None,
            })
            .expect("a screen event");
        assert_eq!(stage, "crossover");
        let best = candidates
            .iter()
            .filter_map(|c| c.proxy_score)
            .fold(f64::MIN, f64::max);
        assert_eq!(best, code_of(&p.arch) as f64);
    }

    fn code_of(a: &Arch) -> usize {
        match a {
            Arch::Nb201(c) => c.code(),
            Arch::Darts(_) => usize::MAX,
        }
    }
}
