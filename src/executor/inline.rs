//! One evaluation at a time through the session's own evaluator: what a
//! session with one worker runs, exactly as sessions always ran.

use super::{at_rung_or_failed, repeat_or_failed, ExecError, Executor, Outcome};
use crate::eval::Evaluator;
use crate::knowledge::EvaluatorInfo;
use crate::space::Arch;
use std::time::Duration;

/// Evaluates each request as it is submitted, in the caller's thread.
pub struct Inline<'e> {
    evaluator: Held<'e>,
    ready: Vec<Outcome>,
    /// The evaluator at higher rungs, built on first use.
    rungs: std::collections::BTreeMap<u32, Box<dyn Evaluator>>,
}

/// The evaluator, lent by the caller or owned.
enum Held<'e> {
    Lent(&'e mut dyn Evaluator),
    Owned(Box<dyn Evaluator + 'e>),
}

impl<'e> Inline<'e> {
    /// An executor over `evaluator`, lent for the executor's life.
    pub fn new(evaluator: &'e mut dyn Evaluator) -> Self {
        Inline {
            evaluator: Held::Lent(evaluator),
            ready: Vec::new(),
            rungs: Default::default(),
        }
    }

    /// An executor that owns `evaluator` (dropped with it).
    pub fn owning(evaluator: Box<dyn Evaluator + 'e>) -> Self {
        Inline {
            evaluator: Held::Owned(evaluator),
            ready: Vec::new(),
            rungs: Default::default(),
        }
    }

    fn evaluator(&mut self) -> &mut dyn Evaluator {
        match &mut self.evaluator {
            Held::Lent(e) => &mut **e,
            Held::Owned(e) => e.as_mut(),
        }
    }
}

impl Executor for Inline<'_> {
    fn describe(&self) -> String {
        "local, 1 worker".into()
    }
    fn slots(&self) -> usize {
        1
    }
    fn info(&self) -> EvaluatorInfo {
        match &self.evaluator {
            Held::Lent(e) => e.info(),
            Held::Owned(e) => e.info(),
        }
    }
    fn durable(&self) -> bool {
        false
    }
    fn repeatable(&self) -> bool {
        match &self.evaluator {
            Held::Lent(e) => e.repeatable(),
            Held::Owned(e) => e.repeatable(),
        }
    }
    fn submit_repeat(
        &mut self,
        id: &str,
        arch: &Arch,
        repeat: u32,
    ) -> Result<Option<String>, ExecError> {
        let evaluation = repeat_or_failed(self.evaluator(), arch, repeat)?;
        self.ready_now(id, evaluation);
        Ok(None)
    }
    fn submit_at(
        &mut self,
        id: &str,
        arch: &Arch,
        repeat: u32,
        rung: &crate::eval::Rung,
    ) -> Result<Option<String>, ExecError> {
        let base: &mut dyn Evaluator = match &mut self.evaluator {
            Held::Lent(e) => &mut **e,
            Held::Owned(e) => e.as_mut(),
        };
        let evaluation = at_rung_or_failed(base, &mut self.rungs, arch, repeat, rung)?;
        self.ready_now(id, evaluation);
        Ok(None)
    }
    fn poll(&mut self, _wait: Duration) -> Result<Vec<Outcome>, ExecError> {
        Ok(std::mem::take(&mut self.ready))
    }
    fn cancel_all(&mut self) -> Result<Vec<String>, ExecError> {
        Ok(std::mem::take(&mut self.ready)
            .into_iter()
            .map(|o| o.id)
            .collect())
    }
}

impl Inline<'_> {
    fn ready_now(&mut self, id: &str, evaluation: crate::eval::Evaluation) {
        self.ready.push(Outcome {
            id: id.to_string(),
            evaluation,
            loss_curve: Vec::new(),
            host: None,
            started: None,
            finished: None,
        });
    }
}
