//! LLM-pruned evolution: the LLM names ops that hurt at a place of the cell
//! (checkable claims, kept as insights and scored on the data like any
//! other); evolution then searches the rest of the space. A parent is
//! chosen by tournament among the session's recent results (as regularized
//! evolution does) and mutated, avoiding every op that an active "hurts"
//! claim names at its place. A claim the data contradict stops pruning.

use super::*;
use crate::knowledge::claim::Effect;

/// Recent results the tournament draws from (regularized evolution's
/// population).
const POPULATION: usize = 20;
/// Entries in one tournament.
const TOURNAMENT: usize = 5;
/// Mutations tried before giving up on the pruned space.
const TRIES: usize = 300;
/// Pruning claims asked for per `prune` call.
const PRUNE_CLAIMS: usize = 4;

impl SekiAgent {
    /// The active claims saying an op hurts at a place: what the pruned
    /// search avoids.
    pub(super) fn avoided(&self) -> Vec<Claim> {
        self.state
            .known
            .insights
            .iter()
            .filter(|i| i.status == InsightStatus::Active)
            .filter_map(|i| i.claim.clone())
            .filter(|c| c.effect == Effect::Hurts)
            .collect()
    }

    /// Ask the LLM what to avoid (best and worst results shown); the claims
    /// become insights.
    fn prune(&mut self, ctx: &mut Context<'_>) -> Result<(), StrategyError> {
        let ranked = self.comparable();
        let k = self.cfg.sample.max(2);
        let best: Vec<Value> = ranked.iter().take(k).map(|e| self.entry_ctx(e)).collect();
        let worst: Vec<Value> = ranked
            .iter()
            .rev()
            .take(k.min(ranked.len().saturating_sub(k)))
            .map(|e| self.entry_ctx(e))
            .collect();
        let vars = json!({
            "best": best,
            "worst": worst,
            "places": claim::places(self.space),
            "max": PRUNE_CLAIMS,
        });
        let messages = vec![
            Message::system(self.render("system", vars.clone())?),
            Message::user(self.render("prune", vars)?),
        ];
        let evidence: Vec<String> = ranked.iter().map(|e| e.id.clone()).collect();
        self.ask_claims(
            ctx,
            Stage::Pruned,
            "prune",
            &messages,
            claim::hurts_schema(self.space, PRUNE_CLAIMS),
            PRUNE_CLAIMS,
            &evidence,
        )?;
        Ok(())
    }

    /// A tournament winner among the session's most recent results (the
    /// line's current architecture before there are any).
    fn tournament(&self, ctx: &mut Context<'_>, current: &PoolEntry) -> PoolEntry {
        let own: Vec<&PoolEntry> = self
            .state
            .known
            .pool
            .iter()
            .filter(|e| e.own && !e.other_protocol)
            .collect();
        let recent = &own[own.len().saturating_sub(POPULATION)..];
        ctx.rng
            .sample_indices(recent.len(), TOURNAMENT)
            .into_iter()
            .filter_map(|i| recent.get(i).copied())
            .max_by(|a, b| a.score.total_cmp(&b.score))
            .cloned()
            .unwrap_or_else(|| current.clone())
    }

    pub(super) fn pruned(
        &mut self,
        ctx: &mut Context<'_>,
        current: PoolEntry,
    ) -> Result<(Proposal, Pending), StrategyError> {
        let refresh = self.cfg.prune_refresh.max(1);
        if self.state.pruned.is_multiple_of(refresh) {
            self.prune(ctx)?;
        }
        self.state.pruned += 1;
        let avoid = self.avoided();
        let parent_entry = self.tournament(ctx, &current);
        let Ok(parent) = self.space.parse(&parent_entry.arch) else {
            let (arch, parent) = self.fallback(ctx, Some(&current.arch));
            let mut p = Proposal::new(arch, "pruned evolution (fallback: mutation)")
                .by("fallback-mutation");
            p.parent = parent;
            return Ok((p, Pending::Pruned));
        };
        let violations = |a: &Arch| avoid.iter().filter(|c| c.holds(a)).count();
        let pv = violations(&parent);
        // With a screen, up to `agent.candidates` distinct children, the
        // best by the screen kept.
        let want = self.screened_children();
        let mut found: Vec<Proposal> = Vec::new();
        for _ in 0..TRIES {
            let child = parent.mutate(ctx.rng);
            let cv = violations(&child);
            // Inside the pruned space, or closer to it than the parent.
            if ctx.admits(&child)
                && (cv == 0 || cv < pv)
                && !found.iter().any(|p| p.arch.hash() == child.hash())
            {
                found.push(
                    Proposal::from_parent(
                        child,
                        format!(
                            "pruned evolution: a mutation of {} avoiding {} claim(s)",
                            parent_entry.id,
                            avoid.len()
                        ),
                        &parent,
                    )
                    .by(Stage::Pruned.operator()),
                );
                if found.len() >= want {
                    break;
                }
            }
        }
        if !found.is_empty() {
            let p = self.screen_pick(Stage::Pruned.name(), found)?;
            return Ok((p, Pending::Pruned));
        }
        let (arch, parent_hash) = self.fallback(ctx, Some(&parent_entry.arch));
        let mut p = Proposal::new(
            arch,
            "pruned evolution (fallback: the pruned space is spent)",
        )
        .by("fallback-mutation");
        p.parent = parent_hash;
        Ok((p, Pending::Pruned))
    }
}
