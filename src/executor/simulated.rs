//! Asynchrony without waiting: N evaluations "in flight" on a virtual
//! clock. Each submission is evaluated at once by the session's evaluator
//! and given a random duration; polls hand results back in the order they
//! would finish. For benchmarks (`seki bench nb201 --in-flight N`): what
//! proposing before earlier results are known does to a strategy, at no
//! cost in time.

use super::{at_rung_or_failed, repeat_or_failed, ExecError, Executor, Outcome};
use crate::eval::Evaluator;
use crate::knowledge::EvaluatorInfo;
use crate::rng::Rng;
use crate::space::Arch;
use std::time::Duration;

/// An in-memory executor with `slots` evaluations in flight, each taking a
/// virtual time drawn uniformly from [0.5, 1.5).
pub struct Simulated<'e> {
    evaluator: &'e mut dyn Evaluator,
    slots: usize,
    rng: Rng,
    clock: f64,
    seq: u64,
    running: Vec<(f64, u64, Outcome)>,
    rungs: std::collections::BTreeMap<u32, Box<dyn Evaluator>>,
}

impl<'e> Simulated<'e> {
    /// `slots` in flight; `seed` draws the durations (a stream of its own,
    /// apart from the session's).
    pub fn new(evaluator: &'e mut dyn Evaluator, slots: usize, seed: u64) -> Self {
        Simulated {
            evaluator,
            slots: slots.max(1),
            rng: Rng::seed(seed ^ 0x5105_A7ED),
            clock: 0.0,
            seq: 0,
            running: Vec::new(),
            rungs: Default::default(),
        }
    }

    /// Start a result that finishes after a random virtual duration.
    fn queue(&mut self, id: &str, evaluation: crate::eval::Evaluation) {
        let done = self.clock + 0.5 + self.rng.unit();
        self.seq += 1;
        self.running.push((
            done,
            self.seq,
            Outcome {
                id: id.to_string(),
                evaluation,
                loss_curve: Vec::new(),
                host: None,
                started: None,
                finished: None,
            },
        ));
    }

    /// The virtual time now.
    pub fn clock(&self) -> f64 {
        self.clock
    }
}

impl Executor for Simulated<'_> {
    fn describe(&self) -> String {
        format!("simulated, {} in flight", self.slots)
    }
    fn slots(&self) -> usize {
        self.slots
    }
    fn info(&self) -> EvaluatorInfo {
        self.evaluator.info()
    }
    fn durable(&self) -> bool {
        false
    }
    fn repeatable(&self) -> bool {
        self.evaluator.repeatable()
    }
    fn submit_repeat(
        &mut self,
        id: &str,
        arch: &Arch,
        repeat: u32,
    ) -> Result<Option<String>, ExecError> {
        let evaluation = repeat_or_failed(&mut *self.evaluator, arch, repeat)?;
        self.queue(id, evaluation);
        Ok(None)
    }
    fn submit_at(
        &mut self,
        id: &str,
        arch: &Arch,
        repeat: u32,
        rung: &crate::eval::Rung,
    ) -> Result<Option<String>, ExecError> {
        let evaluation =
            at_rung_or_failed(&mut *self.evaluator, &mut self.rungs, arch, repeat, rung)?;
        self.queue(id, evaluation);
        Ok(None)
    }
    fn poll(&mut self, wait: Duration) -> Result<Vec<Outcome>, ExecError> {
        let next = self
            .running
            .iter()
            .enumerate()
            .min_by(|a, b| a.1 .0.total_cmp(&b.1 .0).then(a.1 .1.cmp(&b.1 .1)))
            .map(|(i, r)| (i, r.0));
        match next {
            Some((i, t)) if t <= self.clock || !wait.is_zero() => {
                self.clock = self.clock.max(t);
                Ok(vec![self.running.swap_remove(i).2])
            }
            _ => Ok(Vec::new()),
        }
    }
    fn cancel_all(&mut self) -> Result<Vec<String>, ExecError> {
        Ok(self.running.drain(..).map(|r| r.2.id).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{EvalError, Evaluation};
    use crate::space::Space;

    struct Count(usize);
    impl Evaluator for Count {
        fn info(&self) -> EvaluatorInfo {
            EvaluatorInfo {
                kind: "count".into(),
                dataset: None,
                settings: Default::default(),
            }
        }
        fn evaluate(&mut self, _arch: &Arch) -> Result<Evaluation, EvalError> {
            self.0 += 1;
            let mut e = Evaluation::failed(crate::eval::EvalStatus::Ok);
            e.score = Some(self.0 as f64);
            Ok(e)
        }
    }

    #[test]
    fn results_come_back_in_virtual_finishing_order() {
        let mut ev = Count(0);
        let mut s = Simulated::new(&mut ev, 3, 1);
        let a = Space::Nb201.random(&mut Rng::seed(1));
        for id in ["a", "b", "c"] {
            s.submit(id, &a).unwrap();
        }
        assert!(s.poll(Duration::ZERO).unwrap().is_empty());
        let mut order = Vec::new();
        let mut last = 0.0;
        while let Some(o) = s.poll(Duration::from_secs(1)).unwrap().pop() {
            assert!(s.clock() >= last);
            last = s.clock();
            order.push(o.id);
        }
        order.sort();
        assert_eq!(order, ["a", "b", "c"]);
    }
}
