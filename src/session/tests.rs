//! The loop with several evaluations in flight, on a virtual clock.

use super::*;
use crate::agent::{AgentConfig, Models, SekiAgent, Task};
use crate::eval::Evaluation;
use crate::executor::Simulated;
use crate::llm::{ChatResponse, FinishReason, Recorded, ReplayModel, Usage};
use crate::space::Arch;
use crate::strategy::ReaSettings;

/// Scores an architecture by its hash, so every run agrees.
struct HashScore;

impl Evaluator for HashScore {
    fn info(&self) -> EvaluatorInfo {
        EvaluatorInfo {
            kind: "hash".into(),
            dataset: None,
            settings: Default::default(),
        }
    }
    fn evaluate(&mut self, arch: &Arch) -> Result<crate::eval::Evaluation, EvalError> {
        let h = arch.hash();
        let v = u64::from_str_radix(&h[..8.min(h.len())], 16).unwrap_or(0);
        let mut e = Evaluation::failed(EvalStatus::Ok);
        e.score = Some(50.0 + (v % 5000) as f64 / 100.0);
        Ok(e)
    }
}

fn spec(strategy: StrategyKind, budget: usize, seed: u64) -> Spec {
    Spec {
        space: Space::Nb201,
        strategy,
        rea: ReaSettings {
            population: 10,
            sample: 3,
            ..ReaSettings::default()
        },
        seed,
        max_evaluations: budget,
        max_seconds: 0.0,
        max_consecutive_duplicates: 1000,
        max_tokens: 0,
        max_cost_usd: 0.0,
        kb_records: KbRecords::None,
        contenders: Default::default(),
        budget: None,
        objectives: Vec::new(),
        rungs: crate::eval::Rungs::single(crate::eval::EvaluatorKind::Nb201, &Default::default()),
    }
}

fn run(strategy: StrategyKind, slots: usize, budget: usize, seed: u64) -> Vec<Step> {
    let mut ev = HashScore;
    let s = spec(strategy, budget, seed);
    let strat = strategy::build(strategy, Space::Nb201, s.rea).unwrap();
    let exec = Simulated::new(&mut ev, slots, seed);
    Session::in_memory_with(s, strat, Box::new(exec))
        .run_to_steps()
        .unwrap()
}

/// The hash score, plus a different small offset for each repeat.
struct NoisyHash;

impl Evaluator for NoisyHash {
    fn info(&self) -> EvaluatorInfo {
        HashScore.info()
    }
    fn evaluate(&mut self, arch: &Arch) -> Result<crate::eval::Evaluation, EvalError> {
        let mut e = HashScore.evaluate(arch)?;
        e.score_se = Some(1.0);
        Ok(e)
    }
    fn repeatable(&self) -> bool {
        true
    }
    fn evaluate_repeat(
        &mut self,
        arch: &Arch,
        repeat: u32,
    ) -> Result<Option<crate::eval::Evaluation>, EvalError> {
        let mut e = self.evaluate(arch)?;
        e.score = e.score.map(|s| s - 0.5 * f64::from(repeat));
        Ok(Some(e))
    }
}

#[test]
fn contenders_are_repeated_through_an_executor_with_several_in_flight() {
    for slots in [1, 3] {
        let mut ev = NoisyHash;
        let mut s = spec(StrategyKind::Rea, 20, 4);
        s.contenders = ContenderSettings {
            count: 3,
            repeats: 2,
            close_bests: true,
            z: 1.96,
        };
        let strat = strategy::build(StrategyKind::Rea, Space::Nb201, s.rea).unwrap();
        let exec = Simulated::new(&mut ev, slots, 4);
        let summary = Session::in_memory_with(s, strat, Box::new(exec))
            .run()
            .unwrap();
        assert!(summary.evaluations + summary.reevaluations <= 20, "{slots}");
        assert_eq!(summary.contenders.len(), 3);
        for c in &summary.contenders {
            let u = c.uncertainty.as_ref().unwrap();
            assert_eq!(u.repeats, 3, "{slots}: {c:?}");
            // Repeats 1 and 2: 0.5 and 1 below the first score.
            assert!((c.mean - (c.first_score - 0.5)).abs() < 1e-9);
        }
        let best = summary.best.unwrap();
        assert_eq!(best.evaluation, summary.contenders[0].evaluation);
    }
}

fn archs(steps: &[Step]) -> Vec<String> {
    steps.iter().map(|s| s.proposal.arch.clone()).collect()
}

#[test]
fn one_slot_is_the_one_at_a_time_session() {
    for kind in [StrategyKind::Rea, StrategyKind::Random] {
        let mut ev = HashScore;
        let s = spec(kind, 60, 9);
        let strat = strategy::build(kind, Space::Nb201, s.rea).unwrap();
        let inline = Session::in_memory(s, strat, &mut ev)
            .run_to_steps()
            .unwrap();
        assert_eq!(archs(&inline), archs(&run(kind, 1, 60, 9)), "{kind:?}");
    }
}

#[test]
fn several_in_flight_never_evaluate_an_architecture_twice() {
    for slots in [2, 4, 8] {
        let steps = run(StrategyKind::Rea, slots, 120, 3);
        assert_eq!(steps.len(), 120);
        let mut a = archs(&steps);
        a.sort();
        a.dedup();
        assert_eq!(
            a.len(),
            120,
            "{slots} in flight evaluated an architecture twice"
        );
        assert!(steps.iter().enumerate().all(|(i, s)| s.n == i + 1));
    }
}

#[test]
fn random_search_proposes_the_same_whatever_the_slots() {
    // Random proposals do not depend on results, so only their order of
    // completion differs.
    let mut one = archs(&run(StrategyKind::Random, 1, 50, 5));
    let mut four = archs(&run(StrategyKind::Random, 4, 50, 5));
    assert_ne!(one, four, "results should come back out of order");
    one.sort();
    four.sort();
    assert_eq!(one, four);
}

/// [`HashScore`] taking a millisecond of real time per evaluation, so a
/// time budget runs out long before the space does, however fast the build
/// (a release build evaluated all 15,625 NAS-Bench-201 cells within 0.2 s).
struct SlowHashScore;

impl Evaluator for SlowHashScore {
    fn info(&self) -> EvaluatorInfo {
        HashScore.info()
    }
    fn evaluate(&mut self, arch: &Arch) -> Result<crate::eval::Evaluation, EvalError> {
        std::thread::sleep(std::time::Duration::from_millis(1));
        HashScore.evaluate(arch)
    }
}

#[test]
fn a_time_budget_cancels_what_is_in_flight() {
    let mut ev = SlowHashScore;
    let mut s = spec(StrategyKind::Random, 1_000_000, 1);
    s.max_seconds = 0.2;
    let strat = strategy::build(StrategyKind::Random, Space::Nb201, s.rea).unwrap();
    let exec = Simulated::new(&mut ev, 4, 1);
    let summary = Session::in_memory_with(s, strat, Box::new(exec))
        .run()
        .unwrap();
    assert!(
        summary.stop_reason.contains("seconds"),
        "{}",
        summary.stop_reason
    );
    assert!(summary.evaluations > 0);
}

#[test]
fn an_interrupt_stops_the_session_resumably() {
    let mut ev = HashScore;
    let s = spec(StrategyKind::Random, 100, 1);
    let strat = strategy::build(StrategyKind::Random, Space::Nb201, s.rea).unwrap();
    let flag = Arc::new(AtomicBool::new(true));
    let exec = Simulated::new(&mut ev, 4, 1);
    let e = Session::in_memory_with(s, strat, Box::new(exec))
        .interrupt_on(flag)
        .run()
        .unwrap_err();
    assert!(matches!(e, SessionError::Interrupted { .. }), "{e}");
    assert!(e.to_string().contains("--resume"), "{e}");
}

fn agent(islands: usize) -> SekiAgent {
    // Replies the agent cannot read: every proposal falls back to a
    // mutation of its line's current architecture.
    let reply = Recorded {
        prompt: None,
        response: ChatResponse {
            text: "no idea".into(),
            usage: Usage::default(),
            latency_seconds: 0.0,
            finish: FinishReason::Stop,
            model: "test".into(),
            cost_usd: None,
        },
    };
    let model = Arc::new(ReplayModel::new("test", vec![reply; 4000], false));
    let cfg = AgentConfig {
        islands,
        max_repairs: 0,
        ..AgentConfig::default()
    };
    let task = Task {
        dataset: "d".into(),
        objective: "o".into(),
        constraints: String::new(),
        score_label: "score".into(),
    };
    SekiAgent::new(
        Space::Nb201,
        cfg,
        task,
        "t",
        Vec::new(),
        Models::same(model),
    )
    .unwrap()
}

#[test]
fn the_agent_keeps_several_in_flight_on_its_islands() {
    let mut ev = HashScore;
    let s = spec(StrategyKind::Seki, 40, 2);
    let exec = Simulated::new(&mut ev, 4, 2);
    let session = Session::in_memory_with(s, Box::new(agent(3)), Box::new(exec));
    let steps = session.run_to_steps().unwrap();
    assert_eq!(steps.len(), 40);
    let mut a = archs(&steps);
    a.sort();
    a.dedup();
    assert_eq!(a.len(), 40);
    let last: serde_json::Value = steps[39].state.strategy_state.decode().unwrap();
    let lines = last["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|l| l["current"].is_object()), "{lines:?}");
    // Every outcome found the proposal it answered.
    assert!(last["awaiting"].as_array().unwrap().is_empty());
}

#[test]
fn the_agent_with_one_island_and_one_slot_is_unchanged() {
    let steps = |exec_slots: Option<usize>| {
        let mut ev = HashScore;
        let s = spec(StrategyKind::Seki, 15, 4);
        match exec_slots {
            None => Session::in_memory(s, Box::new(agent(1)), &mut ev),
            Some(k) => Session::in_memory_with(
                s,
                Box::new(agent(1)),
                Box::new(Simulated::new(&mut ev, k, 4)),
            ),
        }
        .run_to_steps()
        .unwrap()
    };
    assert_eq!(archs(&steps(None)), archs(&steps(Some(1))));
}

/// Proposes the same architecture every time.
struct Always(Arch);

impl Strategy for Always {
    fn name(&self) -> &'static str {
        "always"
    }
    fn propose(
        &mut self,
        _ctx: &mut Context<'_>,
    ) -> Result<crate::strategy::Proposal, StrategyError> {
        Ok(crate::strategy::Proposal::new(self.0.clone(), "fixed"))
    }
    fn observe(&mut self, obs: &Observation<'_>) {
        assert!(obs.refused.is_some_and(|r| r.contains("max_params")));
        assert!(obs.cost.is_some_and(|c| c.params > 100_000));
    }
    fn state(&self) -> crate::record::StrategyState {
        crate::record::StrategyState::none()
    }
    fn restore(&mut self, _: &crate::record::StrategyState) -> Result<(), StrategyError> {
        Ok(())
    }
}

#[test]
fn proposals_over_budget_are_refused_without_an_evaluation() {
    let mut ev = HashScore;
    let mut s = spec(StrategyKind::Random, 10, 1);
    s.max_consecutive_duplicates = 5;
    let model = crate::eval::CostModel::for_evaluator(
        crate::eval::EvaluatorKind::Candle,
        &crate::eval::EvaluatorConfig::default(),
        false,
    )
    .unwrap();
    s.budget = Some(crate::eval::Budget {
        constraints: crate::eval::Constraints {
            max_params: Some(100_000.0),
            ..Default::default()
        },
        model,
    });
    let big = crate::eval::cost::costliest(Space::Nb201);
    let summary = Session::in_memory(s, Box::new(Always(big)), &mut ev)
        .run()
        .unwrap();
    assert_eq!(summary.evaluations, 0);
    assert_eq!(summary.budget.as_ref().map(|b| b.refused), Some(5));
    assert!(
        summary.stop_reason.contains("over budget"),
        "{}",
        summary.stop_reason
    );
}
