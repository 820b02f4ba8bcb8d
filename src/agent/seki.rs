//! The SEKI strategy.

use super::events::{AgentEvent, CallOptions, ParseOutcome};
use super::extract::extract;
use super::insights::{clip, judge, split_patterns};
use super::settings::AgentConfig;
use crate::knowledge::{now_rfc3339, Insight, InsightStatus, KnowledgeBase, Provenance};
use crate::llm::{ChatModel, ChatOptions, ChatResponse, Constraint, Message};
use crate::prompt::{PromptError, Prompts};
use crate::space::notation::{self, arch_schema};
use crate::space::{Arch, Space};
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

/// An architecture the agent knows with its score.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PoolEntry {
    /// Knowledge-base record id (for the session's own: the id its record gets).
    pub id: String,
    /// The architecture in its space's text form.
    pub arch: String,
    /// Its score.
    pub score: f64,
    /// What the score is.
    pub score_label: String,
    /// Parameter count, if known.
    pub params: Option<f64>,
    /// Evaluated in this session.
    pub own: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct HistoryItem {
    strategy: String,
    outcome: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct StageUsage {
    calls: u64,
    prompt_tokens: u64,
    completion_tokens: u64,
    cost_usd: f64,
    seconds: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct Counters {
    parsed_first_try: u64,
    parsed_after_repair: u64,
    fell_back: u64,
    llm_duplicates: u64,
    usage: BTreeMap<String, StageUsage>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "stage", rename_all = "snake_case")]
enum Pending {
    Seed,
    Evolution { strategy: String, parent_score: f64 },
    Inspiration { insights: Vec<String> },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct AgentState {
    pool: Vec<PoolEntry>,
    current: Option<PoolEntry>,
    history: Vec<HistoryItem>,
    insights: Vec<Insight>,
    supports: BTreeMap<String, u32>,
    insight_seq: usize,
    /// Stage iterations done (the bootstrap proposal not counted).
    iterations: usize,
    pending: Option<Pending>,
    counters: Counters,
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
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Evolution => "evolution",
            Stage::Inspiration => "inspiration",
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
                pool,
                ..Default::default()
            },
            events: Vec::new(),
            outbox: Vec::new(),
        })
    }

    /// The knowledge base's architectures of a space as a starting pool. Scores
    /// from the session's own evaluator are labelled `score_label`; others by
    /// their evaluator (e.g. `published cifar10 test accuracy`). Best first.
    pub fn pool_from_kb(
        kb: &KnowledgeBase,
        space: Space,
        evaluator_kind: &str,
        score_label: &str,
    ) -> Vec<PoolEntry> {
        let mut pool: Vec<PoolEntry> = kb
            .entries()
            .iter()
            .filter(|e| e.record.space == space)
            .filter_map(|e| {
                let r = &e.record;
                let label = if r.evaluator.kind == evaluator_kind {
                    score_label.to_string()
                } else if r.evaluator.kind == "published" {
                    format!(
                        "published {} test accuracy",
                        r.evaluator.dataset.as_deref().unwrap_or("")
                    )
                } else {
                    format!("{} score", r.evaluator.kind)
                };
                Some(PoolEntry {
                    id: r.id.clone(),
                    arch: r.arch.clone(),
                    score: r.score?,
                    score_label: label,
                    params: r.metric("params"),
                    own: false,
                })
            })
            .collect();
        pool.sort_by(|a, b| b.score.total_cmp(&a.score));
        pool
    }

    /// Insights already in the knowledge base for this space, to build on.
    pub fn with_insights(mut self, insights: Vec<Insight>) -> Self {
        self.state.insights = insights;
        self
    }

    fn active_insights(&self) -> Vec<Value> {
        let active: Vec<&Insight> = self
            .state
            .insights
            .iter()
            .filter(|i| i.status == InsightStatus::Active)
            .collect();
        let skip = active.len().saturating_sub(self.cfg.insights_in_prompt);
        active
            .into_iter()
            .skip(skip)
            .map(|i| json!({"id": i.id, "text": i.text}))
            .collect()
    }

    fn space_ctx(&self) -> Value {
        let d = self.space.describe();
        json!({
            "name": d.name,
            "ops": d.ops,
            "rules": d.rules,
            "format": notation::format_hint(self.space),
            "example": show(self.space, &d.example),
        })
    }

    fn base_ctx(&self) -> Value {
        json!({
            "task": self.task,
            "space": self.space_ctx(),
            "insights": self.active_insights(),
            "duplicate": Value::Null,
        })
    }

    fn render(&self, name: &str, extra: Value) -> Result<String, StrategyError> {
        let mut ctx = self.base_ctx();
        if let (Some(o), Some(e)) = (ctx.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                o.insert(k.clone(), v.clone());
            }
        }
        Ok(self.prompts.render(name, &ctx)?)
    }

    fn chat(
        &mut self,
        ctx: &mut Context<'_>,
        call: Call<'_>,
        messages: &[Message],
    ) -> Result<ChatResponse, StrategyError> {
        let Call {
            stage,
            model,
            temperature,
            max_tokens,
            constrained,
        } = call;
        let options = ChatOptions {
            temperature,
            max_tokens,
            seed: Some(ctx.rng.next_u64()),
            constraint: constrained.then(|| Constraint::JsonSchema(arch_schema(self.space))),
            ..ChatOptions::default()
        };
        let resp = self
            .rt
            .block_on(model.chat(messages, &options))
            .map_err(|source| StrategyError::Llm {
                stage: stage.to_string(),
                source,
            })?;
        let u = self
            .state
            .counters
            .usage
            .entry(stage.to_string())
            .or_default();
        u.calls += 1;
        u.prompt_tokens += resp.usage.prompt_tokens;
        u.completion_tokens += resp.usage.completion_tokens;
        u.cost_usd += resp.cost_usd.unwrap_or(0.0);
        u.seconds += resp.latency_seconds;
        self.events.push(AgentEvent::Llm {
            stage: stage.to_string(),
            model: model.name(),
            messages: messages.to_vec(),
            options: CallOptions {
                temperature,
                max_tokens,
                seed: options.seed,
                constrained,
            },
            response: resp.clone(),
        });
        Ok(resp)
    }

    /// A mutation of `parent` (or a random architecture) not evaluated
    /// before, with the parent's hash when it is a mutation. The search is
    /// bounded: when nearly every architecture has been seen it may return a
    /// seen one, which the session counts as a duplicate (and stops after
    /// `max_consecutive_duplicates` of them).
    fn fallback(&self, ctx: &mut Context<'_>, parent: Option<&str>) -> (Arch, Option<String>) {
        const MUTATION_TRIES: usize = 200;
        const RANDOM_TRIES: usize = 2000;
        if let Some(p) = parent.and_then(|p| self.space.parse(p).ok()) {
            for _ in 0..MUTATION_TRIES {
                let a = p.mutate(ctx.rng);
                if !ctx.is_seen(&a) {
                    return (a, Some(p.hash()));
                }
            }
        }
        let mut a = self.space.random(ctx.rng);
        for _ in 1..RANDOM_TRIES {
            if !ctx.is_seen(&a) {
                break;
            }
            a = self.space.random(ctx.rng);
        }
        (a, None)
    }

    /// Ask for an architecture, repairing and re-asking as configured, and
    /// falling back to a mutation of `parent`.
    fn ask_arch(
        &mut self,
        ctx: &mut Context<'_>,
        stage: Stage,
        mut messages: Vec<Message>,
        parent: Option<String>,
    ) -> Result<Proposal, StrategyError> {
        let (model, temperature) = match stage {
            Stage::Evolution => (
                self.models.evolution.clone(),
                self.cfg.temperature_evolution,
            ),
            Stage::Inspiration => (
                self.models.inspiration.clone(),
                self.cfg.temperature_inspiration,
            ),
        };
        let step = format!("{}_arch", stage.name());
        let parent_hash = parent
            .as_deref()
            .and_then(|p| self.space.parse(p).ok())
            .map(|a| a.hash());
        let mut repairs = 0;
        let mut duplicates = 0;
        let why = loop {
            let call = Call {
                stage: &step,
                model: model.clone(),
                temperature,
                max_tokens: self.cfg.max_tokens_arch,
                constrained: true,
            };
            let resp = self.chat(ctx, call, &messages)?;
            match extract(self.space, &resp.text) {
                Ok(a) if ctx.is_seen(&a) => {
                    self.state.counters.llm_duplicates += 1;
                    self.events.push(AgentEvent::Parse {
                        stage: step.clone(),
                        outcome: ParseOutcome::Duplicate,
                        repairs: None,
                        arch: Some(a.to_text()),
                        error: None,
                    });
                    if duplicates >= self.cfg.max_duplicate_retries {
                        break format!("still a duplicate after {duplicates} re-asks");
                    }
                    duplicates += 1;
                    messages.push(Message::assistant(resp.text));
                    let shown = show(self.space, &a.to_text());
                    messages.push(Message::user(
                        self.render(&step, json!({"duplicate": shown}))?,
                    ));
                }
                Ok(a) => {
                    let (outcome, word) = if repairs == 0 {
                        self.state.counters.parsed_first_try += 1;
                        (ParseOutcome::Parsed, "parsed")
                    } else {
                        self.state.counters.parsed_after_repair += 1;
                        (ParseOutcome::Repaired, "repaired")
                    };
                    self.events.push(AgentEvent::Parse {
                        stage: step.clone(),
                        outcome,
                        repairs: Some(repairs),
                        arch: Some(a.to_text()),
                        error: None,
                    });
                    return Ok(Proposal {
                        arch: a,
                        origin: format!("{} ({word})", stage.name()),
                        parent: parent_hash,
                    });
                }
                Err(e) => {
                    self.events.push(AgentEvent::Parse {
                        stage: step.clone(),
                        outcome: ParseOutcome::Invalid,
                        repairs: Some(repairs),
                        arch: None,
                        error: Some(e.to_string()),
                    });
                    if repairs >= self.cfg.max_repairs {
                        break format!("unparsable after {repairs} repairs: {e}");
                    }
                    repairs += 1;
                    messages.push(Message::assistant(resp.text));
                    messages.push(Message::user(
                        self.render("repair", json!({"error": e.to_string()}))?,
                    ));
                }
            }
        };
        self.state.counters.fell_back += 1;
        let (arch, parent_hash) = self.fallback(ctx, parent.as_deref());
        self.events.push(AgentEvent::Fallback {
            stage: step,
            reason: why.clone(),
            arch: arch.to_text(),
        });
        Ok(Proposal {
            arch,
            origin: format!("{} (fallback: mutation; {why})", stage.name()),
            parent: parent_hash,
        })
    }

    fn entry_ctx(&self, e: &PoolEntry) -> Value {
        json!({
            "id": e.id,
            "arch": show(self.space, &e.arch),
            "score": e.score,
            "score_label": e.score_label,
            "params": e.params,
        })
    }

    fn evolve(
        &mut self,
        ctx: &mut Context<'_>,
        current: PoolEntry,
    ) -> Result<Proposal, StrategyError> {
        let history: Vec<Value> = {
            let h = &self.state.history;
            h[h.len().saturating_sub(self.cfg.history)..]
                .iter()
                .map(|x| json!({"strategy": x.strategy, "outcome": x.outcome}))
                .collect()
        };
        let vars = json!({"current": self.entry_ctx(&current), "history": history});
        let system = Message::system(self.render("system", vars.clone())?);
        let ask = Message::user(self.render("evolution_strategy", vars.clone())?);
        let model = self.models.evolution.clone();
        let mut messages = vec![system, ask];
        let call = Call {
            stage: "evolution_strategy",
            model,
            temperature: self.cfg.temperature_evolution,
            max_tokens: self.cfg.max_tokens_text,
            constrained: false,
        };
        let r = self.chat(ctx, call, &messages)?;
        let strategy = clip(r.text.trim(), 600);
        messages.push(Message::assistant(strategy.clone()));
        messages.push(Message::user(self.render("evolution_arch", vars)?));
        let p = self.ask_arch(ctx, Stage::Evolution, messages, Some(current.arch.clone()))?;
        self.state.pending = Some(Pending::Evolution {
            strategy,
            parent_score: current.score,
        });
        Ok(p)
    }

    fn inspire(&mut self, ctx: &mut Context<'_>) -> Result<Proposal, StrategyError> {
        let mut ranked = self.state.pool.clone();
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
        ranked.truncate(self.cfg.top_k);
        let picks = ctx.rng.sample_indices(ranked.len(), self.cfg.sample);
        let samples: Vec<PoolEntry> = picks
            .iter()
            .filter_map(|&i| ranked.get(i).cloned())
            .collect();
        let vars =
            json!({"samples": samples.iter().map(|s| self.entry_ctx(s)).collect::<Vec<_>>()});
        let system = Message::system(self.render("system", vars.clone())?);
        let ask = Message::user(self.render("inspiration_patterns", vars.clone())?);
        let model = self.models.inspiration.clone();
        let mut messages = vec![system, ask];
        let call = Call {
            stage: "inspiration_patterns",
            model: model.clone(),
            temperature: self.cfg.temperature_inspiration,
            max_tokens: self.cfg.max_tokens_text,
            constrained: false,
        };
        let r = self.chat(ctx, call, &messages)?;
        let evidence: Vec<String> = samples.iter().map(|s| s.id.clone()).collect();
        let mut ids = Vec::new();
        for text in split_patterns(&r.text, 3) {
            self.state.insight_seq += 1;
            let insight = Insight {
                id: format!("{}-i{:03}", self.session, self.state.insight_seq),
                space: self.space,
                text,
                evidence: evidence.clone(),
                status: InsightStatus::Active,
                contradicted_by: Vec::new(),
                provenance: Provenance {
                    source: "session".into(),
                    session: Some(self.session.clone()),
                    llm: Some(model.name()),
                    prompt_template: Some(format!(
                        "inspiration_patterns ({})",
                        self.prompts
                            .origin("inspiration_patterns")
                            .unwrap_or("built-in")
                    )),
                    strategy: Some("seki".into()),
                    ..Default::default()
                },
                created: now_rfc3339(),
            };
            self.events.push(AgentEvent::Insight {
                id: insight.id.clone(),
                text: insight.text.clone(),
                evidence: insight.evidence.clone(),
            });
            ids.push(insight.id.clone());
            self.outbox.push(insight.clone());
            self.state.insights.push(insight);
        }
        messages.push(Message::assistant(clip(r.text.trim(), 900)));
        messages.push(Message::user(self.render("inspiration_arch", vars)?));
        let parent = samples.first().map(|s| s.arch.clone());
        let p = self.ask_arch(ctx, Stage::Inspiration, messages, parent)?;
        self.state.pending = Some(Pending::Inspiration { insights: ids });
        Ok(p)
    }

    fn next_stage(&self) -> Stage {
        let round = self.cfg.evolution_iterations + self.cfg.inspiration_iterations;
        let pos = self.state.iterations % round.max(1);
        let enough = self.state.pool.len() >= self.cfg.sample.min(self.cfg.top_k);
        if (pos >= self.cfg.evolution_iterations && enough) || self.cfg.evolution_iterations == 0 {
            Stage::Inspiration
        } else {
            Stage::Evolution
        }
    }
}

impl Strategy for SekiAgent {
    fn name(&self) -> &'static str {
        "seki"
    }

    fn stage(&self) -> String {
        match &self.state.pending {
            Some(Pending::Seed) | None if self.state.current.is_none() => "seki: seed".into(),
            _ => format!("seki: {}", self.next_stage().name()),
        }
    }

    fn propose(&mut self, ctx: &mut Context<'_>) -> Result<Proposal, StrategyError> {
        let Some(current) = self.state.current.clone() else {
            // Bootstrap: the best known architecture not yet evaluated here, else a random one.
            self.state.pending = Some(Pending::Seed);
            let seed = self
                .state
                .pool
                .iter()
                .filter_map(|e| self.space.parse(&e.arch).ok().map(|a| (e.id.clone(), a)))
                .find(|(_, a)| !ctx.is_seen(a));
            return Ok(match seed {
                Some((id, arch)) => {
                    Proposal::new(arch, format!("seed: {id} from the knowledge base"))
                }
                None => Proposal::new(self.fallback(ctx, None).0, "seed: random"),
            });
        };
        let stage = self.next_stage();
        self.state.iterations += 1;
        match stage {
            Stage::Evolution => self.evolve(ctx, current),
            Stage::Inspiration => self.inspire(ctx),
        }
    }

    fn observe(&mut self, obs: &Observation<'_>) {
        let own_scores: Vec<f64> = self
            .state
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
                };
                self.state.pool.push(e.clone());
                Some(e)
            }
            _ => None,
        };
        let better_than_current =
            |e: &PoolEntry, cur: &Option<PoolEntry>| cur.as_ref().is_none_or(|c| e.score > c.score);
        match self.state.pending.take() {
            Some(Pending::Seed) => {
                if let Some(e) = &entry {
                    self.state.current = Some(e.clone());
                }
            }
            Some(Pending::Evolution {
                strategy,
                parent_score,
            }) => {
                let outcome = match &entry {
                    Some(e) if e.score > parent_score => {
                        format!("improved to {:.2} (from {parent_score:.2})", e.score)
                    }
                    Some(e) => format!("{:.2}, not better than {parent_score:.2}", e.score),
                    None => "the evaluation failed".into(),
                };
                self.state.history.push(HistoryItem {
                    strategy: clip(&strategy, 200),
                    outcome,
                });
                if let Some(e) = &entry {
                    if better_than_current(e, &self.state.current) {
                        self.state.current = Some(e.clone());
                    }
                }
            }
            Some(Pending::Inspiration { insights }) => {
                let mut scores = own_scores;
                let bar = median(&mut scores);
                for id in insights {
                    let record = entry
                        .as_ref()
                        .map_or_else(|| "failed".to_string(), |e| e.id.clone());
                    let supports = self.state.supports.entry(id.clone()).or_insert(0);
                    if let Some(ins) = self.state.insights.iter_mut().find(|i| i.id == id) {
                        if judge(ins, supports, &record, entry.as_ref().map(|e| e.score), bar) {
                            self.outbox.push(ins.clone());
                        }
                    }
                }
                if let Some(e) = &entry {
                    if better_than_current(e, &self.state.current) {
                        self.state.current = Some(e.clone());
                    }
                }
            }
            None => {}
        }
    }

    fn state(&self) -> Value {
        serde_json::to_value(&self.state).unwrap_or(Value::Null)
    }

    fn restore(&mut self, state: &Value) -> Result<(), StrategyError> {
        self.state = serde_json::from_value(state.clone()).map_err(|e| StrategyError::Restore {
            strategy: "seki",
            message: e.to_string(),
        })?;
        Ok(())
    }

    fn drain_events(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.events)
            .iter()
            .map(AgentEvent::to_detail)
            .collect()
    }

    fn drain_insights(&mut self) -> Vec<Insight> {
        std::mem::take(&mut self.outbox)
    }

    fn stats(&self) -> StrategyStats {
        let c = &self.state.counters;
        let mut details = serde_json::Map::new();
        details.insert("parsed_first_try".into(), c.parsed_first_try.into());
        details.insert("parsed_after_repair".into(), c.parsed_after_repair.into());
        details.insert("fell_back".into(), c.fell_back.into());
        details.insert("insights".into(), self.state.insights.len().into());
        details.insert(
            "insights_contradicted".into(),
            self.state
                .insights
                .iter()
                .filter(|i| i.status == InsightStatus::Contradicted)
                .count()
                .into(),
        );
        details.insert(
            "usage".into(),
            serde_json::to_value(&c.usage).unwrap_or(Value::Null),
        );
        StrategyStats {
            tokens: c
                .usage
                .values()
                .map(|u| u.prompt_tokens + u.completion_tokens)
                .sum(),
            cost_usd: c.usage.values().map(|u| u.cost_usd).sum(),
            llm_duplicates: c.llm_duplicates,
            details,
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
    fn fallback_mutates_the_parent_when_it_can() {
        let a = agent();
        let mut rng = Rng::seed(1);
        let none_seen = |_: &str| false;
        let mut ctx = Context::new(&mut rng, &none_seen);
        let p = Space::Nb201.random(&mut Rng::seed(2));
        let (_, parent_hash) = a.fallback(&mut ctx, Some(&p.to_text()));
        assert_eq!(parent_hash, Some(p.hash()));
    }
}
