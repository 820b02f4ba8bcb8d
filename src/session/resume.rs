//! Starting a session in a new run directory, and resuming one from its
//! journal so that it ends exactly as an uninterrupted one would: the last
//! journalled state is restored, and the requests journalled as submitted
//! without a result are taken back from the executor (collected when they
//! finished, followed when they still run, submitted again when lost).

use super::*;

impl<'e> Session<'e> {
    /// Start a new session in a fresh run directory, snapshotting
    /// `config_toml`, evaluating one architecture at a time with `evaluator`.
    pub fn create(
        spec: Spec,
        strategy: Box<dyn Strategy>,
        run: RunDir,
        config_toml: &str,
        evaluator: &'e mut dyn Evaluator,
    ) -> Result<Self, SessionError> {
        Self::create_with(
            spec,
            strategy,
            run,
            config_toml,
            Box::new(Inline::new(evaluator)),
        )
    }

    /// Start a new session in a fresh run directory, evaluating through `exec`.
    pub fn create_with(
        spec: Spec,
        strategy: Box<dyn Strategy>,
        run: RunDir,
        config_toml: &str,
        exec: Box<dyn Executor + 'e>,
    ) -> Result<Self, SessionError> {
        run.write_text(run_dir::CONFIG, config_toml)?;
        let mut s = Session::in_memory_with(spec, strategy, exec);
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
    /// kind (its state is restored from the journal), evaluating one
    /// architecture at a time with `evaluator`.
    pub fn resume(
        run: RunDir,
        config: &Config,
        strategy_impl: Box<dyn Strategy>,
        evaluator: &'e mut dyn Evaluator,
    ) -> Result<Self, SessionError> {
        Self::resume_with(run, config, strategy_impl, Box::new(Inline::new(evaluator)))
    }

    /// Continue a session from its run directory, evaluating through `exec`
    /// (of the kind the session was started with, so that it can take back
    /// the requests still in flight).
    pub fn resume_with(
        run: RunDir,
        config: &Config,
        strategy_impl: Box<dyn Strategy>,
        exec: Box<dyn Executor + 'e>,
    ) -> Result<Self, SessionError> {
        let mut spec = Spec::from_config(config);
        spec.budget = super::setup::budget(config, &|key, msg| {
            super::setup::start::snapshot_invalid(run.path(), key, msg)
        })?;
        let events = journal::read(&run.journal())?;
        // A kill in the middle of rewriting best.json leaves its temporary file.
        crate::store::remove_stale_temps(run.path());
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
        let mut s = Session::in_memory_with(spec, strategy_impl, exec);
        s.id = run.session_id();
        if let Some(Event::Start { initial_state, .. }) = events.first() {
            if !initial_state.is_none() {
                s.strategy.restore(initial_state)?;
            }
        }
        let mut last_state: Option<StepState> = None;
        // Requests submitted without a result yet.
        let mut open = OpenRequests::default();
        let mut last_elapsed: Option<f64> = None;
        for ev in events {
            open.observe(&ev);
            match ev {
                Event::Submitted(sub) => {
                    let sub = *sub;
                    s.spec.space.parse(&sub.proposal.arch)?;
                    if let Some(k) = sub
                        .request
                        .strip_prefix('r')
                        .and_then(|k| k.parse::<usize>().ok())
                    {
                        s.requests = s.requests.max(k);
                    }
                    s.consecutive_duplicates = 0;
                    last_elapsed = Some(sub.state.elapsed);
                    last_state = Some(sub.state);
                }
                Event::Evaluation(step) => {
                    let step = *step;
                    if step.n != s.steps.len() + 1 {
                        return Err(mismatch(format!(
                            "evaluation {} follows evaluation {}",
                            step.n,
                            s.steps.len()
                        )));
                    }
                    s.spec.space.parse(&step.proposal.arch)?;
                    s.remember_cost(&step);
                    s.seen
                        .insert(step.proposal.hash.clone(), (step.n, step.result.score));
                    if step.placement.is_none() {
                        s.consecutive_duplicates = 0;
                    }
                    last_state = Some(step.state.clone());
                    last_elapsed = Some(step.state.elapsed);
                    s.record_step(step);
                }
                Event::Reevaluation(r) => {
                    last_elapsed = Some(r.elapsed);
                    s.reevaluations.push(*r);
                    s.rerank_best();
                }
                Event::Refused {
                    state,
                    proposal,
                    cost,
                    ..
                } => {
                    if let (Some(b), Some(c)) = (s.budget.as_ref(), cost) {
                        b.model.remember(&proposal.arch, c);
                    }
                    s.refused += 1;
                    s.consecutive_duplicates += 1;
                    last_elapsed = Some(state.elapsed);
                    last_state = Some(state);
                }
                Event::Duplicate {
                    state, proposal, ..
                } => {
                    *s.duplicate_operators.entry(proposal.operator).or_insert(0) += 1;
                    s.duplicates += 1;
                    s.consecutive_duplicates += 1;
                    last_elapsed = Some(state.elapsed);
                    last_state = Some(state);
                }
                _ => {}
            }
        }
        if let Some(state) = last_state {
            s.rng = state.rng;
            s.strategy.restore(&state.strategy_state)?;
        }
        if let Some(e) = last_elapsed {
            s.elapsed_before = e;
        }
        for r in open.into_requests() {
            let flight = Flight {
                arch: s.spec.space.parse(&r.proposal.arch)?,
                hash: r.proposal.hash,
                origin: r.proposal.origin,
                parent: r.proposal.parent,
                operator: r.proposal.operator,
                submitted: r.submitted,
                job: r.job,
            };
            s.pending.insert(flight.hash.clone(), r.request.clone());
            s.recovered.push((r.request, flight, r.cancelled));
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
