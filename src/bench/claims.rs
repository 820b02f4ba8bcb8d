//! `seki kb truth`: the claims that sessions' knowledge bases hold, each
//! judged against the whole NAS-Bench-201 table
//! ([`crate::knowledge::truth`]), with a tally by the session's own verdict.

use crate::eval::{Nb201Table, TableError};
use crate::knowledge::claim::Verdict;
use crate::knowledge::truth::{self, Truth, TruthVerdict};
use crate::knowledge::{KbError, KnowledgeBase, OpenOptions};
use crate::space::{nb201::Nb201Cell, Arch, Space};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Why the claims could not be judged.
#[derive(Debug, thiserror::Error)]
pub enum ClaimsError {
    /// The table could not be read.
    #[error(transparent)]
    Table(#[from] TableError),
    /// A knowledge base could not be opened.
    #[error("cannot open knowledge base {dir}")]
    Kb {
        /// Its folder.
        dir: PathBuf,
        /// Why.
        #[source]
        source: KbError,
    },
    /// The top fraction is not in (0, 1).
    #[error("the top fraction must be between 0 and 1 (exclusive), not {0}")]
    Top(f64),
}

/// One insight's claim, with the session's verdict and the table's.
#[derive(Debug, Clone, Serialize)]
pub struct Judged {
    /// The knowledge base it is from.
    pub kb: String,
    /// The insight's id.
    pub insight: String,
    /// The claim in words.
    pub claim: String,
    /// What the session's data said.
    pub session: Verdict,
    /// What the whole table says.
    pub table: Truth,
}

/// Every judged claim and the table they were judged on.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimsCheck {
    /// The table's path.
    pub table: String,
    /// Its cells.
    pub cells: usize,
    /// How many of them count as the best.
    pub n_top: usize,
    /// The knowledge bases read.
    pub knowledge_bases: usize,
    /// Every NAS-Bench-201 insight with a claim, in knowledge-base order.
    pub judged: Vec<Judged>,
}

impl ClaimsCheck {
    /// Claims with the session verdict `session` and, when given, the
    /// table verdict `table`.
    pub fn count(&self, session: Verdict, table: Option<TruthVerdict>) -> usize {
        self.judged
            .iter()
            .filter(|j| j.session == session && table.is_none_or(|t| j.table.verdict == t))
            .count()
    }

    /// Distinct claims (by their words) with the session verdict `session`.
    pub fn distinct(&self, session: Verdict) -> usize {
        let set: std::collections::BTreeSet<&str> = self
            .judged
            .iter()
            .filter(|j| j.session == session)
            .map(|j| j.claim.as_str())
            .collect();
        set.len()
    }
}

/// Judge the claims of the knowledge bases in `kbs` on the table at
/// `table`, the best `top` fraction of its cells counting as its best.
pub fn check(table: &Path, kbs: &[PathBuf], top: f64) -> Result<ClaimsCheck, ClaimsError> {
    if !(top > 0.0 && top < 1.0) {
        return Err(ClaimsError::Top(top));
    }
    let t = Nb201Table::load(table)?;
    let cells: Vec<(Arch, f64)> = t
        .rows()
        .iter()
        .enumerate()
        .filter_map(|(code, r)| Some((Arch::Nb201(Nb201Cell::from_code(code)?), r.test_200ep)))
        .collect();
    let mut judged = Vec::new();
    for dir in kbs {
        let kb =
            KnowledgeBase::open(dir, OpenOptions::default()).map_err(|source| ClaimsError::Kb {
                dir: dir.clone(),
                source,
            })?;
        for i in kb.insights_for(Some(Space::Nb201)) {
            let Some(c) = &i.claim else { continue };
            judged.push(Judged {
                kb: dir.display().to_string(),
                insight: i.id.clone(),
                claim: c.text(),
                session: i.stats.as_ref().map_or(Verdict::Undecided, |s| s.verdict),
                table: truth::judge(c, &cells, top),
            });
        }
    }
    let n_top = truth::top_count(cells.len(), top);
    Ok(ClaimsCheck {
        table: table.display().to_string(),
        cells: cells.len(),
        n_top,
        knowledge_bases: kbs.len(),
        judged,
    })
}
