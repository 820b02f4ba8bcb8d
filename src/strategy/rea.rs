//! Regularized evolution (aging evolution; Real et al., AAAI 2019).
//!
//! Until the population is full, architectures are sampled at random. Then
//! each step draws `sample` members at random, mutates the best of them once,
//! and the child joins the population while the oldest member leaves.
//!
//! With a [`Screen`] (zero-cost proxy scores of untrained networks), two
//! optional changes: a warm-up (`warmup` random architectures are scored at
//! the start and the best `population` of them are trained first, operator
//! `zc-warmup`), and screened mutations (`screen_mutations` children of each
//! tournament winner, the best by the screen trained, operator
//! `mutation+zc`). The screen never sees or changes search scores.

use super::screen::{pick_best, ranking, show_score, Screen};
use super::{Context, Observation, Proposal, ReaSettings, Strategy, StrategyError, StrategyStats};
use crate::eval::cost::point;
use crate::eval::Objective;
use crate::pareto;
use crate::record::{ScreenStats, StrategyState};
use crate::space::{Arch, Space};
use serde::{Deserialize, Serialize};
use std::collections::{HashSet, VecDeque};

/// Aging evolution over a search space.
pub struct RegularizedEvolution {
    space: Space,
    settings: ReaSettings,
    /// Members, oldest first: (architecture, search score).
    population: VecDeque<(Arch, f64)>,
    /// Proxy scores consulted for the warm-up and screened mutations.
    screen: Option<Box<dyn Screen>>,
    /// Warm-up picks still to propose, best first: (architecture, origin).
    queue: VecDeque<(Arch, String)>,
    /// Whether the warm-up was done.
    warmed: bool,
    /// Mutation steps the screen chose among several children.
    screened: usize,
    /// A Pareto search's objectives (empty: the score alone).
    objectives: Vec<Objective>,
    /// With objectives: each member's point (every coordinate minimised),
    /// in the population's order.
    points: VecDeque<Vec<f64>>,
}

impl std::fmt::Debug for RegularizedEvolution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegularizedEvolution")
            .field("space", &self.space)
            .field("settings", &self.settings)
            .field("population", &self.population)
            .field("screen", &self.screen.as_ref().map(|s| s.name()))
            .field("queue", &self.queue)
            .field("warmed", &self.warmed)
            .field("screened", &self.screened)
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct SavedState {
    population: Vec<(String, f64)>,
    /// Warm-up picks still to propose: (architecture, origin).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    queue: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    warmed: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    screened: usize,
    /// With objectives: each member's point.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    points: Vec<Vec<f64>>,
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

/// Draws tried per warm-up architecture wanted before settling for fewer.
const WARMUP_TRIES: usize = 20;
/// Draws tried per screened child wanted before settling for fewer.
const CHILD_TRIES: usize = 10;

impl RegularizedEvolution {
    /// Aging evolution with the given population and sample sizes (each at least 1).
    pub fn new(space: Space, settings: ReaSettings) -> Self {
        let settings = ReaSettings {
            population: settings.population.max(1),
            sample: settings.sample.max(1),
            screen_mutations: settings.screen_mutations.max(1),
            ..settings
        };
        RegularizedEvolution {
            space,
            settings,
            population: VecDeque::new(),
            screen: None,
            queue: VecDeque::new(),
            warmed: false,
            screened: 0,
            objectives: Vec::new(),
            points: VecDeque::new(),
        }
    }

    /// Search the Pareto front of `objectives` (two or three; fewer: the
    /// score alone): tournaments pick the member of the best non-dominated
    /// rank in the population, the least crowded on ties (NSGA-II's order).
    pub fn with_objectives(mut self, objectives: Vec<Objective>) -> Self {
        if objectives.len() >= 2 {
            self.objectives = objectives;
        }
        self
    }

    /// The tournament winner among the population members `picks`.
    fn winner(&self, picks: &[usize]) -> Option<usize> {
        if self.objectives.is_empty() || self.points.len() != self.population.len() {
            return picks.iter().copied().max_by(|&a, &b| {
                let (x, y) = (&self.population[a].1, &self.population[b].1);
                x.total_cmp(y)
            });
        }
        let points: Vec<Vec<f64>> = self.points.iter().cloned().collect();
        let rank = pareto::ranks(&points);
        let mut crowd = vec![0.0; points.len()];
        let top = rank.iter().copied().max().unwrap_or(0);
        for r in 0..=top {
            let members: Vec<usize> = (0..points.len()).filter(|&i| rank[i] == r).collect();
            for (k, d) in pareto::crowding(&points, &members).into_iter().enumerate() {
                crowd[members[k]] = d;
            }
        }
        picks.iter().copied().min_by(|&a, &b| {
            rank[a]
                .cmp(&rank[b])
                .then_with(|| crowd[b].total_cmp(&crowd[a]))
        })
    }

    /// Consult `screen` for the warm-up (`warmup` above 0) and to choose
    /// among mutated children (`screen_mutations` above 1).
    pub fn with_screen(mut self, screen: Box<dyn Screen>) -> Self {
        self.screen = Some(screen);
        self
    }

    /// Evaluate `seeds` (architecture, origin) first, before filling the
    /// population at random: a warm start from known records.
    pub fn with_seeds(mut self, seeds: Vec<(Arch, String)>) -> Self {
        self.queue.extend(seeds);
        self
    }

    /// The current population, oldest first.
    pub fn population(&self) -> impl Iterator<Item = &(Arch, f64)> {
        self.population.iter()
    }

    /// Draw `warmup` distinct unevaluated random architectures, score them
    /// with the screen and queue the best `population` of them.
    fn warm_up(&mut self, ctx: &mut Context<'_>) -> Result<(), StrategyError> {
        self.warmed = true;
        let want = self.settings.warmup;
        let Some(screen) = self.screen.as_mut() else {
            return Ok(());
        };
        let mut drawn: Vec<Arch> = Vec::new();
        let mut hashes = HashSet::new();
        for _ in 0..want.saturating_mul(WARMUP_TRIES) {
            if drawn.len() >= want {
                break;
            }
            let a = self.space.random(ctx.rng);
            if ctx.admits(&a) && hashes.insert(a.hash()) {
                drawn.push(a);
            }
        }
        if drawn.is_empty() {
            return Ok(());
        }
        let scores = screen.scores(&drawn)?;
        let name = screen.name();
        let n = drawn.len();
        for (rank, &i) in ranking(&scores)
            .iter()
            .take(self.settings.population)
            .enumerate()
        {
            let origin = format!(
                "zc warm-up: {name} score {} (rank {} of {n} untrained)",
                show_score(scores.get(i).copied().flatten()),
                rank + 1
            );
            if let Some(a) = drawn.get(i) {
                self.queue.push_back((a.clone(), origin));
            }
        }
        Ok(())
    }

    /// A child of `parent`: the best by the screen of up to
    /// `screen_mutations` distinct unevaluated mutations, or one mutation.
    fn child_of(
        &mut self,
        ctx: &mut Context<'_>,
        parent: &Arch,
        score: f64,
    ) -> Result<Proposal, StrategyError> {
        let plain = |child: Arch| {
            Proposal::from_parent(
                child,
                format!("mutation of {} (score {score:.2})", parent.hash()),
                parent,
            )
            .by("mutation")
        };
        let k = self.settings.screen_mutations;
        let Some(screen) = self.screen.as_mut().filter(|_| k > 1) else {
            return Ok(plain(ctx.mutate_within(parent)));
        };
        let mut kids: Vec<Arch> = Vec::new();
        let mut hashes = HashSet::new();
        let mut first = None;
        for _ in 0..k.saturating_mul(CHILD_TRIES) {
            if kids.len() >= k {
                break;
            }
            let c = parent.mutate(ctx.rng);
            if first.is_none() {
                first = Some(c.clone());
            }
            if ctx.admits(&c) && hashes.insert(c.hash()) {
                kids.push(c);
            }
        }
        if kids.len() < 2 {
            // Nothing to choose between.
            let child = kids
                .pop()
                .or(first)
                .unwrap_or_else(|| ctx.mutate_within(parent));
            return Ok(plain(child));
        }
        let (best, scores) = pick_best(screen.as_mut(), &kids)?;
        self.screened += 1;
        let n = kids.len();
        let name = screen.name();
        let child = kids.swap_remove(best);
        Ok(Proposal::from_parent(
            child,
            format!(
                "mutation of {} (score {score:.2}), best of {n} children by {name} (untrained proxy {})",
                parent.hash(),
                show_score(scores.get(best).copied().flatten())
            ),
            parent,
        )
        .by("mutation+zc"))
    }
}

impl Strategy for RegularizedEvolution {
    fn name(&self) -> &'static str {
        "rea"
    }

    fn propose(&mut self, ctx: &mut Context<'_>) -> Result<Proposal, StrategyError> {
        if !self.warmed && self.settings.warmup > 0 && self.screen.is_some() {
            self.warm_up(ctx)?;
        }
        while let Some((arch, origin)) = self.queue.pop_front() {
            if ctx.admits(&arch) {
                let op = if origin.starts_with("seed") {
                    "seed"
                } else {
                    "zc-warmup"
                };
                return Ok(Proposal::new(arch, origin).by(op));
            }
        }
        if self.population.len() < self.settings.population {
            return Ok(Proposal::new(
                ctx.random_within(self.space),
                "random (filling the population)",
            )
            .by("random"));
        }
        let picks = ctx
            .rng
            .sample_indices(self.population.len(), self.settings.sample);
        let parent = self
            .winner(&picks)
            .and_then(|i| self.population.get(i))
            .cloned();
        match parent {
            Some((p, score)) => self.child_of(ctx, &p, score),
            None => Ok(Proposal::new(ctx.random_within(self.space), "random")),
        }
    }

    fn observe(&mut self, obs: &Observation<'_>) {
        if let Some(s) = obs.score.filter(|s| s.is_finite()) {
            if !self.objectives.is_empty() {
                // A member without its costs cannot be placed on the front.
                let Some(p) = point(&self.objectives, s, obs.cost.as_ref()) else {
                    return;
                };
                self.points.push_back(p);
            }
            self.population.push_back((obs.arch.clone(), s));
            while self.population.len() > self.settings.population {
                self.population.pop_front();
                self.points.pop_front();
            }
        }
    }

    fn state(&self) -> StrategyState {
        let saved = SavedState {
            population: self
                .population
                .iter()
                .map(|(a, s)| (a.to_text(), *s))
                .collect(),
            queue: self
                .queue
                .iter()
                .map(|(a, o)| (a.to_text(), o.clone()))
                .collect(),
            warmed: self.warmed,
            screened: self.screened,
            points: self.points.iter().cloned().collect(),
        };
        StrategyState::encode(&saved).unwrap_or_default()
    }

    fn restore(&mut self, state: &StrategyState) -> Result<(), StrategyError> {
        let err = |message: String| StrategyError::Restore {
            strategy: "rea",
            message,
        };
        let saved: SavedState = state.decode().map_err(|e| err(e.to_string()))?;
        let mut pop = VecDeque::with_capacity(saved.population.len());
        for (text, s) in saved.population {
            pop.push_back((self.space.parse(&text).map_err(|e| err(e.to_string()))?, s));
        }
        let mut queue = VecDeque::with_capacity(saved.queue.len());
        for (text, origin) in saved.queue {
            queue.push_back((
                self.space.parse(&text).map_err(|e| err(e.to_string()))?,
                origin,
            ));
        }
        self.population = pop;
        self.queue = queue;
        self.warmed = saved.warmed;
        self.screened = saved.screened;
        self.points = saved.points.into_iter().collect();
        Ok(())
    }

    fn stats(&self) -> StrategyStats {
        StrategyStats {
            screen: self.screen.as_ref().map(|screen| ScreenStats {
                screen: screen.name(),
                screened: None,
                screened_mutations: Some(self.screened as u64),
                proxy_cpu_seconds: screen.cpu_seconds(),
            }),
            ..StrategyStats::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn obs(a: &Arch, s: Option<f64>) -> Observation<'_> {
        Observation {
            arch: a,
            score: s,
            evaluation: None,
            params: None,
            refused: None,
            cost: None,
        }
    }

    fn propose(r: &mut RegularizedEvolution, rng: &mut Rng) -> Proposal {
        let never = |_: &str| false;
        r.propose(&mut Context::new(rng, &never)).unwrap()
    }

    #[test]
    fn fills_then_mutates_and_ages_out() {
        let mut rea = RegularizedEvolution::new(
            Space::Nb201,
            ReaSettings {
                population: 3,
                sample: 2,
                ..ReaSettings::default()
            },
        );
        let mut rng = Rng::seed(1);
        for i in 0..3 {
            let p = propose(&mut rea, &mut rng);
            assert!(p.origin.starts_with("random"));
            rea.observe(&obs(&p.arch, Some(i as f64)));
        }
        let p = propose(&mut rea, &mut rng);
        assert!(p.origin.starts_with("mutation"), "{}", p.origin);
        rea.observe(&obs(&p.arch, Some(10.0)));
        assert_eq!(rea.population().count(), 3);
        assert_eq!(rea.population().last().unwrap().1, 10.0);
        // Failed evaluations do not join.
        rea.observe(&obs(&p.arch, None));
        assert_eq!(rea.population().count(), 3);
    }

    #[test]
    fn state_roundtrips() {
        let mut rea = RegularizedEvolution::new(Space::Nb201, ReaSettings::default());
        let mut rng = Rng::seed(2);
        for i in 0..25 {
            let p = propose(&mut rea, &mut rng);
            rea.observe(&obs(&p.arch, Some(i as f64)));
        }
        let s = rea.state();
        let mut other = RegularizedEvolution::new(Space::Nb201, ReaSettings::default());
        other.restore(&s).unwrap();
        let mut r1 = rng.clone();
        let mut r2 = rng;
        assert_eq!(
            propose(&mut rea, &mut r1).arch,
            propose(&mut other, &mut r2).arch
        );
        assert!(other
            .restore(
                &StrategyState::encode(&serde_json::json!({"population": [["junk", 1.0]]}))
                    .unwrap()
            )
            .is_err());
    }

    fn screened(warmup: usize, population: usize, k: usize) -> RegularizedEvolution {
        RegularizedEvolution::new(
            Space::Nb201,
            ReaSettings {
                population,
                sample: 2,
                warmup,
                screen_mutations: k,
            },
        )
        .with_screen(Box::new(crate::strategy::screen::tests::ByCode {
            asked: Vec::new(),
        }))
    }

    fn code(a: &Arch) -> usize {
        match a {
            Arch::Nb201(c) => c.code(),
            Arch::Darts(_) => usize::MAX,
        }
    }

    #[test]
    fn warm_up_trains_the_best_by_the_screen_first_then_fills_and_screens_mutations() {
        let mut rea = screened(10, 4, 3);
        let mut rng = Rng::seed(5);
        // The screen scores by cell code: the first proposals are the four
        // highest codes of the ten drawn, best first.
        let mut got = Vec::new();
        for _ in 0..4 {
            let p = propose(&mut rea, &mut rng);
            assert_eq!(p.operator, "zc-warmup", "{}", p.origin);
            got.push(code(&p.arch));
        }
        let d = rea.stats().screen.unwrap();
        assert_eq!(d.screen, "code");
        assert_eq!(d.proxy_cpu_seconds, 10.0, "ten drawn and scored");
        assert!(rea.queue.is_empty());
        // The same draw: ten distinct random architectures from the seed.
        let mut r = Rng::seed(5);
        let mut hashes = HashSet::new();
        let mut drawn = Vec::new();
        while drawn.len() < 10 {
            let a = Space::Nb201.random(&mut r);
            if hashes.insert(a.hash()) {
                drawn.push(code(&a));
            }
        }
        drawn.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(got, drawn[..4]);
        // A failed one leaves the population short: random filling goes on.
        for (i, c) in got.iter().enumerate() {
            let a = Arch::Nb201(crate::space::Nb201Cell::from_code(*c).unwrap());
            rea.observe(&obs(&a, (i > 0).then_some(i as f64)));
        }
        let p = propose(&mut rea, &mut rng);
        assert_eq!(p.operator, "random");
        rea.observe(&obs(&p.arch, Some(9.0)));
        let p = propose(&mut rea, &mut rng);
        assert_eq!(p.operator, "mutation+zc", "{}", p.origin);
        assert!(
            p.origin.contains("best of 3 children by code"),
            "{}",
            p.origin
        );
        // Without a screen the settings change nothing.
        let mut plain = RegularizedEvolution::new(
            Space::Nb201,
            ReaSettings {
                warmup: 10,
                screen_mutations: 3,
                ..ReaSettings::default()
            },
        );
        assert_eq!(propose(&mut plain, &mut Rng::seed(5)).operator, "random");
    }

    #[test]
    fn warm_up_state_roundtrips_mid_queue() {
        let mut rea = screened(8, 5, 2);
        let mut rng = Rng::seed(9);
        let first = propose(&mut rea, &mut rng);
        rea.observe(&obs(&first.arch, Some(1.0)));
        let s = rea.state();
        let raw: serde_json::Value = s.decode().unwrap();
        assert_eq!(raw["queue"].as_array().unwrap().len(), 4);
        let mut other = screened(8, 5, 2);
        other.restore(&s).unwrap();
        let (mut r1, mut r2) = (rng.clone(), rng);
        for i in 0..10 {
            let a = propose(&mut rea, &mut r1);
            let b = propose(&mut other, &mut r2);
            assert_eq!(
                (&a.arch, &a.origin, &a.operator),
                (&b.arch, &b.origin, &b.operator)
            );
            rea.observe(&obs(&a.arch, Some(i as f64)));
            other.observe(&obs(&b.arch, Some(i as f64)));
        }
        assert_eq!(rea.state(), other.state());
        // The warm-up is not done again after a restore.
        let mut fresh = screened(8, 5, 2);
        fresh.restore(&s).unwrap();
        assert!(fresh.warmed);
        // A plain state has no screening fields.
        let plain = RegularizedEvolution::new(Space::Nb201, ReaSettings::default());
        assert_eq!(
            plain.state(),
            StrategyState::encode(&serde_json::json!({"population": []})).unwrap()
        );
    }
}
