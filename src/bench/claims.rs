//! `seki kb truth`: the claims that sessions' knowledge bases hold, each
//! judged against the whole NAS-Bench-201 table
//! ([`crate::knowledge::truth`]), with a tally by the session's own verdict.

use crate::eval::{Nb201Table, TableError};
use crate::knowledge::claim::{Claim, Verdict};
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
    /// A run folder's journal could not be read.
    #[error("cannot read the journal of run {dir}")]
    Journal {
        /// The run folder.
        dir: PathBuf,
        /// Why.
        #[source]
        source: crate::record::journal::JournalError,
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
    /// The session that stated it, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// What the session's data said.
    pub session: Verdict,
    /// The claim itself.
    #[serde(skip)]
    pub statement: Claim,
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
                session_id: i.provenance.session.clone(),
                session: i.stats.as_ref().map_or(Verdict::Undecided, |s| s.verdict),
                statement: c.clone(),
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

/// Judge each claim again on its session's evaluations, read from the run
/// folders' journals, with the rule sessions apply now (across cells and
/// within parent–child lineages: [`Claim::score_with_pairs`]), in place of
/// the verdict its knowledge base holds. Claims whose session is not among
/// `runs` are dropped. Returns how many claims were judged again.
pub fn rejudge(check: &mut ClaimsCheck, runs: &[PathBuf]) -> Result<usize, ClaimsError> {
    use crate::record::journal::{self, Event};
    use std::collections::HashMap;
    type Evals = Vec<(Arch, f64, Option<f64>, Option<String>)>;
    let mut sessions: HashMap<String, Evals> = HashMap::new();
    for dir in runs {
        let events =
            journal::read(&dir.join("journal.jsonl")).map_err(|source| ClaimsError::Journal {
                dir: dir.clone(),
                source,
            })?;
        let mut id = String::new();
        let mut evals: Evals = Vec::new();
        for e in events {
            match e {
                Event::Start { session, .. } => id = session,
                Event::Evaluation(step) => {
                    let (Some(score), Ok(arch)) =
                        (step.result.score, Space::Nb201.parse(&step.proposal.arch))
                    else {
                        continue;
                    };
                    evals.push((arch, score, step.result.score_se, step.proposal.parent));
                }
                _ => {}
            }
        }
        sessions.insert(id, evals);
    }
    check.judged.retain(|j| {
        j.session_id
            .as_ref()
            .is_some_and(|s| sessions.contains_key(s))
    });
    for j in check.judged.iter_mut() {
        let Some(data) = j.session_id.as_ref().and_then(|s| sessions.get(s)) else {
            continue;
        };
        let scored = |i: usize| {
            let (a, s, se, _) = &data[i];
            (a, *s, *se)
        };
        let pairs = crate::knowledge::claim::lineage_pairs(
            &data.iter().map(|(a, ..)| a).collect::<Vec<_>>(),
            &data.iter().map(|(.., p)| p.as_deref()).collect::<Vec<_>>(),
        );
        let stats = j.statement.score_with_pairs(
            data.iter().map(|(a, s, se, _)| (a, *s, *se)),
            pairs.iter().map(|&(p, c)| (scored(p), scored(c))),
        );
        j.session = stats.verdict;
    }
    Ok(check.judged.len())
}
