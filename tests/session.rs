//! The session through the library, with a strategy of the user's own: what
//! is journalled and recorded, and how insights reach the knowledge base.

mod common;
use seki::config::Config;
use seki::eval::Nb201Table;
use seki::knowledge::{Insight, InsightStatus, KnowledgeBase, OpenOptions, Provenance};
use seki::record::StrategyState;
use seki::session::{RunDir, Session, Spec};
use seki::space::{Arch, Space};
use seki::strategy::{Context, Observation, Proposal, Strategy, StrategyError};

/// A strategy outside the built-in list: mutates its best, and states one
/// insight on its first proposal that it marks contradicted on its third
/// observation.
struct Climber {
    best: Option<(Arch, f64)>,
    seen: usize,
    outbox: Vec<Insight>,
    insight: Option<Insight>,
    session: String,
}

impl Climber {
    fn new(session: &str) -> Self {
        Climber {
            best: None,
            seen: 0,
            outbox: Vec::new(),
            insight: None,
            session: session.to_string(),
        }
    }
}

impl Strategy for Climber {
    fn name(&self) -> &'static str {
        "climber"
    }
    fn propose(&mut self, ctx: &mut Context<'_>) -> Result<Proposal, StrategyError> {
        if self.insight.is_none() {
            let i = Insight {
                id: format!("{}-i001", self.session),
                space: Space::Nb201,
                text: "3x3 convolutions on every edge help".into(),
                evidence: Vec::new(),
                status: InsightStatus::Active,
                contradicted_by: Vec::new(),
                claim: None,
                stats: None,
                provenance: Provenance::default(),
                created: "2026-01-01T00:00:00Z".into(),
            };
            self.outbox.push(i.clone());
            self.insight = Some(i);
        }
        Ok(match &self.best {
            Some((a, _)) => Proposal::from_parent(a.mutate(ctx.rng), "mutation", a),
            None => Proposal::new(Space::Nb201.random(ctx.rng), "random"),
        })
    }
    fn observe(&mut self, obs: &Observation<'_>) {
        self.seen += 1;
        if let Some(s) = obs.score {
            if self.best.as_ref().is_none_or(|(_, b)| s > *b) {
                self.best = Some((obs.arch.clone(), s));
            }
        }
        if self.seen == 3 {
            if let (Some(i), Some(n)) = (self.insight.as_mut(), obs.evaluation) {
                i.status = InsightStatus::Contradicted;
                i.contradicted_by.push(format!("{}-{n:04}", self.session));
                self.outbox.push(i.clone());
            }
        }
    }
    fn state(&self) -> StrategyState {
        StrategyState::none()
    }
    fn restore(&mut self, _state: &StrategyState) -> Result<(), StrategyError> {
        Ok(())
    }
    fn drain_insights(&mut self) -> Vec<Insight> {
        std::mem::take(&mut self.outbox)
    }
}

fn spec(n: usize) -> Spec {
    let loaded = Config::parse("", None, std::path::Path::new(".")).unwrap();
    Spec {
        space: Space::Nb201,
        max_evaluations: n,
        kb_records: seki::config::KbRecords::All,
        ..Spec::from_config(&loaded.config)
    }
}

fn writable(dir: &std::path::Path) -> KnowledgeBase {
    KnowledgeBase::open(
        dir,
        OpenOptions {
            write: true,
            create: true,
            ..Default::default()
        },
    )
    .unwrap()
}

#[test]
fn own_strategy_is_journalled_and_recorded_under_its_own_name() {
    let d = tempfile::tempdir().unwrap();
    let mut table = Nb201Table::load(&common::table()).unwrap();
    let run = RunDir::create(&d.path().join("run")).unwrap();
    let id = run.session_id();
    let session = Session::create(spec(5), Box::new(Climber::new(&id)), run, "", &mut table)
        .unwrap()
        .with_knowledge_base(writable(&d.path().join("kb")))
        .unwrap();
    let summary = session.run().unwrap();
    // The config says `seki`'s default strategy; the session ran "climber".
    assert_eq!(summary.strategy, "climber");
    let journal = std::fs::read_to_string(d.path().join("run/journal.jsonl")).unwrap();
    let start: serde_json::Value = serde_json::from_str(journal.lines().next().unwrap()).unwrap();
    assert_eq!(start["strategy"], "climber");
    let kb = KnowledgeBase::open(&d.path().join("kb"), OpenOptions::default()).unwrap();
    assert_eq!(kb.entries().len(), 5);
    for e in kb.entries() {
        assert_eq!(e.record.provenance.strategy.as_deref(), Some("climber"));
    }
    // Mutations name their parent; the lineage starts at the random one.
    let steps: Vec<serde_json::Value> = journal
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] == "evaluation")
        .collect();
    assert!(steps[0].get("parent").is_none());
    let hashes: Vec<&str> = steps.iter().map(|s| s["hash"].as_str().unwrap()).collect();
    for s in &steps[1..] {
        let p = s["parent"].as_str().expect("a mutation names its parent");
        assert!(hashes.contains(&p), "parent {p} was evaluated before");
    }
}

#[test]
fn contradicted_insights_are_written_back_to_the_knowledge_base() {
    let d = tempfile::tempdir().unwrap();
    let mut table = Nb201Table::load(&common::table()).unwrap();
    let run = RunDir::create(&d.path().join("run")).unwrap();
    let id = run.session_id();
    let session = Session::create(spec(4), Box::new(Climber::new(&id)), run, "", &mut table)
        .unwrap()
        .with_knowledge_base(writable(&d.path().join("kb")))
        .unwrap();
    session.run().unwrap();
    let kb = KnowledgeBase::open(&d.path().join("kb"), OpenOptions::default()).unwrap();
    assert_eq!(kb.insights().len(), 1);
    let i = &kb.insights()[0];
    assert_eq!(i.status, InsightStatus::Contradicted);
    assert_eq!(i.contradicted_by, vec![format!("{id}-0003")]);
    // The record that contradicts it is in the base too.
    assert!(kb.get(&format!("{id}-0003")).is_some());
}

#[test]
fn sessions_in_folders_of_the_same_name_share_a_knowledge_base() {
    let d = tempfile::tempdir().unwrap();
    let mut table = Nb201Table::load(&common::table()).unwrap();
    let mut ids = Vec::new();
    for parent in ["a", "b"] {
        let run = RunDir::create(&d.path().join(parent).join("run")).unwrap();
        ids.push(run.session_id());
        let session = Session::create(
            spec(3),
            Box::new(Climber::new(&run.session_id())),
            run,
            "",
            &mut table,
        )
        .unwrap()
        .with_knowledge_base(writable(&d.path().join("kb")))
        .unwrap();
        session.run().unwrap();
    }
    assert_ne!(ids[0], ids[1]);
    assert!(ids.iter().all(|i| i.starts_with("run-")), "{ids:?}");
    let kb = KnowledgeBase::open(&d.path().join("kb"), OpenOptions::default()).unwrap();
    assert_eq!(kb.entries().len(), 6);
    // The writer lock is gone once the sessions are.
    assert!(!d.path().join("kb/.lock").exists());
    // A resumed session keeps the id its journal recorded.
    let reopened = RunDir::open(&d.path().join("b/run")).unwrap();
    assert_eq!(reopened.session_id(), ids[1]);
}

/// A replayed reply.
fn reply(text: &str) -> seki::llm::Recorded {
    seki::llm::Recorded {
        prompt: None,
        response: seki::llm::ChatResponse {
            text: text.into(),
            usage: Default::default(),
            latency_seconds: 0.0,
            finish: seki::llm::FinishReason::Stop,
            model: "replay".into(),
            cost_usd: None,
        },
    }
}

#[test]
fn agent_operators_are_recorded_with_parents_and_counted() {
    use seki::agent::{AgentConfig, Models, SekiAgent, Task};
    let mut table = Nb201Table::load(&common::table()).unwrap();
    let cfg = AgentConfig {
        evolution_iterations: 1,
        inspiration_iterations: 0,
        ranked_iterations: 1,
        crossover_iterations: 1,
        ..Default::default()
    };
    // Seed (no LLM); evolution: strategy, architecture; ranked: a letter;
    // crossover (no LLM); evolution again; ranked with an unreadable reply.
    let replies = vec![
        reply("Use 3x3 convolutions on every edge."),
        reply(
            r#"{"node1": ["nor_conv_3x3"], "node2": ["nor_conv_3x3", "nor_conv_3x3"], "node3": ["skip_connect", "nor_conv_3x3", "nor_conv_3x3"]}"#,
        ),
        reply("\"C\""),
        reply("Add a 1x1 convolution."),
        reply(
            r#"{"node1": ["nor_conv_3x3"], "node2": ["nor_conv_1x1", "nor_conv_3x3"], "node3": ["skip_connect", "nor_conv_3x3", "nor_conv_3x3"]}"#,
        ),
        reply("no idea"),
    ];
    let model = std::sync::Arc::new(seki::llm::ReplayModel::new("replay", replies, false));
    let task = Task {
        dataset: "cifar10".into(),
        objective: "accuracy".into(),
        constraints: String::new(),
        score_label: "validation accuracy".into(),
    };
    let agent = SekiAgent::new(
        Space::Nb201,
        cfg,
        task,
        "t",
        Vec::new(),
        Models::same(model),
    )
    .unwrap();
    let summary = Session::in_memory(spec(6), Box::new(agent), &mut table)
        .run()
        .unwrap();
    let ops = &summary.operators;
    assert_eq!(ops["seed"].evaluations, 1);
    assert_eq!(ops["self-evolution"].evaluations, 2);
    assert_eq!(ops["llm-ranked-mutation"].proposals, 2, "{ops:?}");
    assert_eq!(ops["crossover"].proposals, 1, "{ops:?}");
    // Every child after the seed names an evaluated parent.
    assert_eq!(ops["llm-ranked-mutation"].with_parent, 2);
    assert_eq!(ops["crossover"].with_parent, 1);
    assert_eq!(summary.strategy_stats.replies.unwrap().fell_back, 1);
}
