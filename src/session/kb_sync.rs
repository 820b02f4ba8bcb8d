//! Keeping the knowledge base in step with the session: which results become
//! records, their ids, and the strategy's insights (new and changed).

use super::*;
use crate::knowledge::Insight;

impl<'e> Session<'e> {
    /// Record results in a knowledge base (the session holds its writer lock).
    /// On resume, records the journal holds but the base lacks are added,
    /// and the session's own insights are brought up to date with the
    /// strategy's restored state (a kill between an evaluation's journal
    /// line and the insights it changed leaves the base behind).
    pub fn with_knowledge_base(mut self, kb: KnowledgeBase) -> Result<Self, SessionError> {
        self.kb = Some(kb);
        let mut best: Option<f64> = None;
        let mut pending = Vec::new();
        for step in &self.steps {
            if self.wants_record(step, best) {
                pending.push(self.kb_record(step));
            }
            if let Some(sc) = step.result.score {
                best = Some(best.map_or(sc, |b: f64| b.max(sc)));
            }
        }
        if let Some(kb) = self.kb.as_mut() {
            let missing: Vec<ArchRecord> = pending
                .into_iter()
                .filter(|r| kb.get(&r.id).is_none())
                .collect();
            kb.add(missing)?;
        }
        let own = format!("{}-", self.id);
        let behind: Vec<Insight> = match self.kb.as_ref() {
            Some(kb) => self
                .strategy
                .insights()
                .into_iter()
                .filter(|i| i.id.starts_with(&own))
                .filter(|i| kb.insights().iter().find(|x| x.id == i.id) != Some(i))
                .collect(),
            None => Vec::new(),
        };
        self.put_insights(behind)?;
        Ok(self)
    }

    pub(super) fn wants_record(&self, step: &Step, best_before: Option<f64>) -> bool {
        let Some(score) = step.result.score else {
            return false;
        };
        match self.spec.kb_records {
            KbRecords::All => true,
            KbRecords::Improvements => best_before.is_none_or(|b| score > b),
            KbRecords::None => false,
        }
    }

    pub(super) fn kb_record(&self, step: &Step) -> ArchRecord {
        let mut metrics = step.result.metrics.clone();
        if let Some(t) = step.result.test_accuracy {
            metrics.insert("test_accuracy".into(), t);
        }
        ArchRecord {
            id: self.record_id(step.n),
            name: None,
            space: self.spec.space,
            arch: step.proposal.arch.clone(),
            score: step.result.score,
            uncertainty: step.result.score_se.map(crate::stats::Uncertainty::single),
            metrics,
            evaluator: self.info.clone(),
            provenance: Provenance {
                source: "session".into(),
                session: Some(self.id.clone()),
                strategy: Some(self.strategy.name().into()),
                ..Default::default()
            },
            created: now_rfc3339(),
        }
    }

    /// The KB record id of this session's evaluation `n`.
    pub fn record_id(&self, n: usize) -> String {
        format!("{}-{n:04}", self.id)
    }

    /// Move the strategy's new and changed insights (e.g. newly
    /// contradicted ones) into the knowledge base, first adding the session
    /// records they cite, for or against.
    pub(super) fn store_insights(&mut self) -> Result<(), SessionError> {
        let insights = self.strategy.drain_insights();
        self.put_insights(insights)
    }

    /// Upsert `insights`, first adding the session records they cite.
    fn put_insights(&mut self, insights: Vec<Insight>) -> Result<(), SessionError> {
        if insights.is_empty() {
            return Ok(());
        }
        let Some(kb) = self.kb.as_ref() else {
            return Ok(());
        };
        let mut missing = Vec::new();
        for ins in &insights {
            for id in ins.evidence.iter().chain(&ins.contradicted_by) {
                if kb.get(id).is_some() || missing.iter().any(|r: &ArchRecord| r.id == *id) {
                    continue;
                }
                if let Some(step) = self.steps.iter().find(|s| self.record_id(s.n) == *id) {
                    missing.push(self.kb_record(step));
                }
            }
        }
        if let Some(kb) = self.kb.as_mut() {
            kb.add(missing)?;
            kb.upsert_insights(insights)?;
        }
        Ok(())
    }
}
