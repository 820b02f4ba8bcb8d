//! Starting a session in a new run directory, and resuming one from its
//! journal so that it ends exactly as an uninterrupted one would.

use super::*;

impl<'e> Session<'e> {
    /// Start a new session in a fresh run directory, snapshotting `config_toml`.
    pub fn create(
        spec: Spec,
        strategy: Box<dyn Strategy>,
        run: RunDir,
        config_toml: &str,
        evaluator: &'e mut dyn Evaluator,
    ) -> Result<Self, SessionError> {
        run.write_text(run_dir::CONFIG, config_toml)?;
        let mut s = Session::in_memory(spec, strategy, evaluator);
        s.id = run.session_id();
        journal::append(
            &run.journal(),
            &Event::Start {
                session: s.id.clone(),
                space: s.spec.space.to_string(),
                strategy: s.strategy.name().into(),
                seed: s.spec.seed,
                version: env!("CARGO_PKG_VERSION").into(),
                initial_state: s.strategy.state(),
                time: now_rfc3339(),
            },
        )?;
        s.run = Some(run);
        Ok(s)
    }

    /// The config a run directory's session was started with.
    pub fn snapshot(run: &RunDir) -> Result<Config, SessionError> {
        Ok(Config::load(Some(&run.config()))?.config)
    }

    /// Continue a session from its run directory, with the config it was
    /// started with ([`Session::snapshot`]) and a fresh strategy of the same
    /// kind (its state is restored from the journal).
    pub fn resume(
        run: RunDir,
        config: &Config,
        strategy_impl: Box<dyn Strategy>,
        evaluator: &'e mut dyn Evaluator,
    ) -> Result<Self, SessionError> {
        let spec = Spec::from_config(config);
        let events = journal::read(&run.journal())?;
        let mismatch = |message: String| SessionError::Mismatch {
            path: run.journal().display().to_string(),
            message,
        };
        if let Some(Event::Start {
            space,
            strategy,
            seed,
            ..
        }) = events.first()
        {
            let given = strategy_impl.name();
            if *space != spec.space.name() || *strategy != given || *seed != spec.seed {
                return Err(mismatch(format!(
                    "journal says space {space}, strategy {strategy}, seed {seed}; resumed with {}, {given}, {}",
                    spec.space, spec.seed
                )));
            }
        }
        let mut s = Session::in_memory(spec, strategy_impl, evaluator);
        s.id = run.session_id();
        if let Some(Event::Start { initial_state, .. }) = events.first() {
            if !initial_state.is_null() {
                s.strategy.restore(initial_state)?;
            }
        }
        let mut last_state: Option<StepState> = None;
        for ev in events {
            match ev {
                Event::Evaluation(step) => {
                    let step = *step;
                    if step.n != s.steps.len() + 1 {
                        return Err(mismatch(format!(
                            "evaluation {} follows evaluation {}",
                            step.n,
                            s.steps.len()
                        )));
                    }
                    s.spec.space.parse(&step.arch)?;
                    s.seen
                        .insert(step.hash.clone(), (step.n, step.result.score));
                    s.consecutive_duplicates = 0;
                    last_state = Some(step.state.clone());
                    s.record_step(step);
                }
                Event::Duplicate {
                    state, operator, ..
                } => {
                    *s.duplicate_operators.entry(operator).or_insert(0) += 1;
                    s.duplicates += 1;
                    s.consecutive_duplicates += 1;
                    last_state = Some(state);
                }
                _ => {}
            }
        }
        if let Some(state) = last_state {
            s.rng = state.rng;
            s.strategy.restore(&state.strategy_state)?;
            s.elapsed_before = state.elapsed;
        }
        journal::append(
            &run.journal(),
            &Event::Resume {
                evaluations: s.steps.len(),
                time: now_rfc3339(),
            },
        )?;
        s.run = Some(run);
        s.write_best()?;
        Ok(s)
    }
}
