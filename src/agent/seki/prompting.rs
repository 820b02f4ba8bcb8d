//! What every prompt template sees: the task, the space and its notation,
//! the active insights, and entries of the pool.

use super::*;

impl SekiAgent {
    pub(super) fn active_insights(&self) -> Vec<Value> {
        let active: Vec<&Insight> = self
            .state
            .known
            .insights
            .iter()
            .filter(|i| i.status == InsightStatus::Active)
            .filter(|i| {
                self.cfg.undecided_insights == UndecidedInsights::Show
                    || i.stats
                        .as_ref()
                        .is_none_or(|s| s.verdict != Verdict::Undecided)
            })
            .collect();
        let skip = active.len().saturating_sub(self.cfg.insights_in_prompt);
        active
            .into_iter()
            .skip(skip)
            .map(|i| {
                let text = match (&i.stats, &i.claim) {
                    (Some(st), Some(_)) => format!("{} [{}]", i.text, st.summary()),
                    (None, Some(_)) => {
                        format!("{} [a prior: not yet checked on this task]", i.text)
                    }
                    _ => i.text.clone(),
                };
                json!({"id": i.id, "text": text})
            })
            .collect()
    }

    pub(super) fn space_ctx(&self) -> Value {
        let d = self.space.describe();
        json!({
            "name": d.name,
            "ops": notation::op_legend(self.space),
            "rules": d.rules,
            "format": notation::format_hint(self.space),
            "example": show(self.space, &d.example),
        })
    }

    pub(super) fn base_ctx(&self) -> Value {
        json!({
            "task": self.task,
            "space": self.space_ctx(),
            "insights": self.active_insights(),
            "duplicate": Value::Null,
            "over_budget": Value::Null,
            "budget": self
                .budget
                .as_ref()
                .map(|b| b.constraints.describe())
                .filter(|d| !d.is_empty()),
            "objectives": (self.objectives.len() >= 2).then(|| {
                self.objectives
                    .iter()
                    .map(|o| o.spec())
                    .collect::<Vec<_>>()
                    .join(", ")
            }),
            "candidates": self.candidates(),
            "fidelity": self.fidelity,
        })
    }

    pub(super) fn render(&self, name: &str, extra: Value) -> Result<String, StrategyError> {
        let mut ctx = self.base_ctx();
        if let (Some(o), Some(e)) = (ctx.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                o.insert(k.clone(), v.clone());
            }
        }
        Ok(self.prompts.render(name, &ctx)?)
    }

    /// An entry as templates see it: `score` rounded to the precision its
    /// noise supports, `score_text` with its standard error (`77.3 ± 1.3`).
    pub(super) fn entry_ctx(&self, e: &PoolEntry) -> Value {
        let rounded: f64 = crate::stats::round(e.score, e.se)
            .parse()
            .unwrap_or(e.score);
        json!({
            "id": e.id,
            "arch": show(self.space, &e.arch),
            "score": rounded,
            "score_text": crate::stats::with_se(e.score, e.se),
            "se": e.se,
            "score_label": e.score_label,
            "params": e.params,
            "cost": self.cost_text(&e.arch),
        })
    }

    /// An architecture's cost in words, when the session has budgets.
    fn cost_text(&self, arch: &str) -> Option<String> {
        let b = self.budget.as_ref()?;
        let a = self.space.parse(arch).ok()?;
        b.model.cost(&a).ok().map(|c| c.describe())
    }

    /// The last `agent.history` refinements of `line` and their outcomes.
    pub(super) fn recent_history(&self, line: usize) -> Vec<Value> {
        let h = self
            .state
            .lines
            .get(line)
            .map_or(&[][..], |l| &l.history[..]);
        h[h.len().saturating_sub(self.cfg.history)..]
            .iter()
            .map(|x| json!({"strategy": x.strategy, "outcome": x.outcome}))
            .collect()
    }
}
