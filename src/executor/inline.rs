//! One evaluation at a time through the session's own evaluator: what a
//! session with one worker runs, exactly as sessions always ran.

use super::{repeat_or_failed, ExecError, Executor, Outcome};
use crate::eval::Evaluator;
use crate::knowledge::EvaluatorInfo;
use crate::space::Arch;
use std::time::Duration;

/// Evaluates each request as it is submitted, in the caller's thread.
pub struct Inline<'e> {
    evaluator: &'e mut dyn Evaluator,
    ready: Vec<Outcome>,
}

impl<'e> Inline<'e> {
    /// An executor over `evaluator`.
    pub fn new(evaluator: &'e mut dyn Evaluator) -> Self {
        Inline {
            evaluator,
            ready: Vec::new(),
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
        self.evaluator.info()
    }
    fn durable(&self) -> bool {
        false
    }
    fn submit(&mut self, id: &str, arch: &Arch) -> Result<Option<String>, ExecError> {
        let evaluation = self.evaluator.evaluate(arch)?;
        self.ready.push(Outcome {
            id: id.to_string(),
            evaluation,
            loss_curve: Vec::new(),
            host: None,
            started: None,
            finished: None,
        });
        Ok(None)
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
        self.ready.push(Outcome {
            id: id.to_string(),
            evaluation,
            loss_curve: Vec::new(),
            host: None,
            started: None,
            finished: None,
        });
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
