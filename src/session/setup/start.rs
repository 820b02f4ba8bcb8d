//! Sessions ready to run: a new one from a loaded config ([`fresh`]), one
//! continued from its run directory ([`resume`]), and a re-run of a seki
//! session from its recorded LLM replies ([`replay`]), whose evaluations
//! [`ReplayCheck::verify`] compares with the original's. Each owns its
//! evaluator (through its executor); the caller adds a progress callback and
//! an interrupt flag, runs it and prints.

use super::provenance::{Check, Compare, Provenance, ProvenanceError, PROVENANCE};
use super::{budget, evaluator, strategy, LlmSource};
use crate::agent::{initial_state, recording_from_journal, used_before_resume};
use crate::config::{Config, KbRecords, Loaded};
use crate::executor::{self, Inline};
use crate::knowledge::{KbError, KnowledgeBase, OpenOptions};
use crate::llm::Recorded;
use crate::record::{journal, Event, JournalError};
use crate::session::{run_dir, RunDir, Session, SessionError, Spec};
use crate::store::StoreError;
use crate::strategy::StrategyKind;
use std::path::{Path, PathBuf};

/// A session that could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Building or starting the session failed.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The run directory could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The run directory's journal could not be read.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The run directory's config snapshot could not be read.
    #[error("cannot read the config snapshot of {}", path.display())]
    Snapshot {
        /// The run directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: SessionError,
    },
    /// The config snapshot of a replay could not be written.
    #[error("cannot write the config snapshot")]
    SnapshotText(#[source] toml::ser::Error),
    /// The knowledge base the session writes to could not be opened.
    #[error("cannot open knowledge base {} for writing (use --kb-records none to search without it)", dir.display())]
    KnowledgeBase {
        /// Its folder.
        dir: PathBuf,
        /// Why.
        #[source]
        source: KbError,
    },
    /// Only sessions of the LLM-guided strategy can be replayed.
    #[error("{} is a {strategy} session; only seki sessions have LLM replies to replay", run_dir.display())]
    NotReplayable {
        /// The run directory.
        run_dir: PathBuf,
        /// Its strategy.
        strategy: String,
    },
    /// The inputs could not be hashed, or `provenance.json` not read or
    /// written.
    #[error(transparent)]
    Provenance(#[from] ProvenanceError),
}

/// A replay that did not evaluate what its original did.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A journal could not be read.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The evaluations differ.
    #[error("the replay diverged from {}: {matching} of its {total} evaluations match, in order, before the first difference", original.display())]
    Diverged {
        /// The original run directory.
        original: PathBuf,
        /// Evaluations equal, in order, before the first difference.
        matching: usize,
        /// The original's evaluations.
        total: usize,
    },
}

/// A name for a new session's run directory under `runs`: the time, the
/// strategy, the space and the seed (`-2`, `-3`, ... when taken).
pub fn default_run_dir(runs: &Path, spec: &Spec) -> PathBuf {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!("[year][month][day]-[hour][minute][second]");
    let stamp = now
        .format(&fmt)
        .unwrap_or_else(|_| now.unix_timestamp().to_string());
    let base = format!(
        "{stamp}-{}-{}-s{}",
        spec.strategy.name(),
        spec.space,
        spec.seed
    );
    let mut p = runs.join(&base);
    let mut k = 2;
    while p.exists() {
        p = runs.join(format!("{base}-{k}"));
        k += 1;
    }
    p
}

/// The knowledge base a session writes its results to (at `dir`, else
/// `kb.dir`), locked; `None` with `search.kb_records = "none"`.
pub fn knowledge_base_to_write(
    cfg: &Config,
    dir: Option<&Path>,
) -> Result<Option<KnowledgeBase>, SetupError> {
    if cfg.search.kb_records == KbRecords::None {
        return Ok(None);
    }
    let dir = dir.unwrap_or(&cfg.kb.dir);
    let kb = KnowledgeBase::open(
        dir,
        OpenOptions {
            skip_bad_lines: cfg.kb.skip_bad_lines,
            write: true,
            create: true,
        },
    )
    .map_err(|source| SetupError::KnowledgeBase {
        dir: dir.to_path_buf(),
        source,
    })?;
    Ok(Some(kb))
}

fn attach(session: Session<'_>, kb: Option<KnowledgeBase>) -> Result<Session<'_>, SessionError> {
    match kb {
        Some(kb) => session.with_knowledge_base(kb),
        None => Ok(session),
    }
}

/// The agent's replies: `recording` (the first `skip` already used), else
/// the config's profiles.
fn llm_source(recording: Option<Vec<Recorded>>, skip: usize) -> LlmSource {
    match recording {
        Some(replies) => LlmSource::Recorded {
            replies,
            strict: false,
            skip,
        },
        None => LlmSource::profiles(),
    }
}

/// A new session with the config `loaded` in the new run directory
/// `run_path`, its knowledge base attached (unless `kb_records = "none"`);
/// the agent answered from `recording` when given. Everything that can fail
/// on the setup (the evaluator's data, the knowledge base's lock, the LLM's
/// model file, Slurm) fails before the run directory exists: a session that
/// cannot start leaves nothing behind. The run directory gets the config
/// snapshot, the journal's start and `provenance.json`.
pub fn fresh<'e>(
    loaded: &Loaded,
    run_path: &Path,
    recording: Option<Vec<Recorded>>,
) -> Result<Session<'e>, SetupError> {
    let cfg = &loaded.config;
    let mut spec = Spec::from_config(cfg);
    spec.budget = budget(cfg, &|key, msg| loaded.invalid(key, msg))?;
    let evaluator = evaluator(cfg)?;
    let kb = knowledge_base_to_write(cfg, None)?;
    let id = run_dir::new_session_id(run_path);
    let models = recording.is_none();
    let strategy = strategy(cfg, &id, &evaluator.info(), &llm_source(recording, 0))?;
    let exec = executor::build(
        &cfg.executor,
        cfg.search.evaluator,
        &cfg.evaluator,
        run_path,
        &id,
        evaluator,
    )
    .map_err(SessionError::from)?;
    let provenance = Provenance::of(cfg, models)?;
    let run = RunDir::create_with_id(run_path, &id)?;
    let session = Session::create_with(spec, strategy, run.clone(), &loaded.to_toml(), exec)?;
    run.write_json(PROVENANCE, &provenance)?;
    Ok(attach(session, kb)?)
}

/// An error about `key` of the config snapshot in the run directory `dir`.
pub(crate) fn snapshot_invalid(
    dir: &Path,
    key: &str,
    message: String,
) -> crate::config::ConfigError {
    crate::config::ConfigError::Invalid {
        path: dir.join(run_dir::CONFIG).display().to_string(),
        line: String::new(),
        key: key.to_string(),
        message,
    }
}

/// What a resumed or replayed session compares: the knowledge base only
/// when the session wrote nothing to it (else it changed it itself).
fn compare_for(records: KbRecords) -> Compare {
    match records {
        KbRecords::None => Compare::All,
        _ => Compare::WithoutKnowledgeBase,
    }
}

/// A session continued from its run directory.
pub struct Resumed<'e> {
    /// The session, its state restored from the journal, its knowledge base
    /// attached.
    pub session: Session<'e>,
    /// Its inputs against those `provenance.json` recorded (the knowledge
    /// base left out when the session writes to it: it changes it itself).
    /// A difference does not stop the session: a warning to give.
    pub provenance: Check,
}

/// Continue the session in `dir` with its own config snapshot, writing its
/// results to the knowledge base at `kb` (else the snapshot's `kb.dir`);
/// the agent answered from `recording` when given (the replies the session
/// used before are skipped).
pub fn resume<'e>(
    dir: &Path,
    kb: Option<&Path>,
    recording: Option<Vec<Recorded>>,
) -> Result<Resumed<'e>, SetupError> {
    let run = RunDir::open(dir)?;
    let cfg = Session::snapshot(&run).map_err(|source| SetupError::Snapshot {
        path: dir.to_path_buf(),
        source,
    })?;
    let events = journal::read(&run.journal())?;
    let evaluator = evaluator(&cfg)?;
    let models = recording.is_none();
    let llm = llm_source(recording, used_before_resume(&events));
    let kb = knowledge_base_to_write(&cfg, kb)?;
    let strategy = strategy(&cfg, &run.session_id(), &evaluator.info(), &llm)?;
    let exec = executor::build(
        &cfg.executor,
        cfg.search.evaluator,
        &cfg.evaluator,
        run.path(),
        &run.session_id(),
        evaluator,
    )
    .map_err(SessionError::from)?;
    let now = Provenance::of(&cfg, models)?;
    let provenance = Provenance::check(dir, &now, compare_for(cfg.search.kb_records))?;
    let session = Session::resume_with(run, &cfg, strategy, exec)?;
    Ok(Resumed {
        session: attach(session, kb)?,
        provenance,
    })
}

/// A replay of a seki session, ready to run.
pub struct Replay<'e> {
    /// The session, in its own new run directory, its strategy in the
    /// original's initial state; nothing goes to the knowledge base.
    pub session: Session<'e>,
    /// Its run directory.
    pub run_dir: PathBuf,
    /// Its inputs against those the original's `provenance.json` recorded
    /// (the knowledge base left out when the original wrote to it).
    pub provenance: Check,
    /// What to compare once it has run.
    pub check: ReplayCheck,
}

/// The original's evaluations, to compare with a replay's.
#[derive(Debug, Clone)]
pub struct ReplayCheck {
    original: PathBuf,
    replay: PathBuf,
    archs: Vec<String>,
}

fn evaluated(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Evaluation(s) => Some(s.proposal.arch.clone()),
            _ => None,
        })
        .collect()
}

impl ReplayCheck {
    /// Whether the replay evaluated the same architectures as its
    /// original, in the same order: their number when it did.
    pub fn verify(&self) -> Result<usize, ReplayError> {
        let ours = evaluated(&journal::read(&self.replay.join(run_dir::JOURNAL))?);
        if ours != self.archs {
            return Err(ReplayError::Diverged {
                original: self.original.clone(),
                matching: self
                    .archs
                    .iter()
                    .zip(&ours)
                    .take_while(|(a, b)| a == b)
                    .count(),
                total: self.archs.len(),
            });
        }
        Ok(ours.len())
    }
}

/// Re-run the seki session in `original` from the LLM replies its journal
/// recorded, calling no LLM, into the new run directory `run_dir` (default:
/// the original's path with `-replay` appended), one evaluation at a time.
/// The records it makes keep the original session's ids.
pub fn replay<'e>(original: &Path, run_dir: Option<&Path>) -> Result<Replay<'e>, SetupError> {
    let orig = RunDir::open(original)?;
    let mut cfg = Session::snapshot(&orig).map_err(|source| SetupError::Snapshot {
        path: original.to_path_buf(),
        source,
    })?;
    if cfg.search.strategy != StrategyKind::Seki {
        return Err(SetupError::NotReplayable {
            run_dir: original.to_path_buf(),
            strategy: cfg.search.strategy.name().to_string(),
        });
    }
    // The knowledge base is compared only when the original did not write
    // to it (it changed it itself).
    let compare = compare_for(cfg.search.kb_records);
    cfg.search.kb_records = KbRecords::None;
    let events = journal::read(&orig.journal())?;
    let replies = LlmSource::Recorded {
        replies: recording_from_journal(&events),
        strict: true,
        skip: 0,
    };
    let run_path = run_dir.map(Path::to_path_buf).unwrap_or_else(|| {
        let mut name = original.as_os_str().to_owned();
        name.push("-replay");
        PathBuf::from(name)
    });
    let budget = budget(&cfg, &|key, msg| snapshot_invalid(original, key, msg))?;
    let evaluator = evaluator(&cfg)?;
    let strategy = strategy(&cfg, &orig.session_id(), &evaluator.info(), &replies)?;
    let now = Provenance::of(&cfg, false)?;
    let provenance = Provenance::check(original, &now, compare)?;
    let run = RunDir::create(&run_path)?;
    let snapshot = toml::to_string_pretty(&cfg).map_err(SetupError::SnapshotText)?;
    let mut spec = Spec::from_config(&cfg);
    spec.budget = budget;
    let mut session = Session::create_with(
        spec,
        strategy,
        run.clone(),
        &snapshot,
        Box::new(Inline::owning(evaluator)),
    )?;
    run.write_json(PROVENANCE, &now)?;
    let start = initial_state(&events);
    if !start.is_none() {
        session.restore_strategy(&start)?;
    }
    Ok(Replay {
        session,
        check: ReplayCheck {
            original: original.to_path_buf(),
            replay: run_path.clone(),
            archs: evaluated(&events),
        },
        run_dir: run_path,
        provenance,
    })
}
