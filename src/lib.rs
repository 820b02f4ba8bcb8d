#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![warn(missing_docs)]
//! seki: neural architecture search guided by large language models, in the
//! style of SEKI (self-evolution and knowledge inspiration).
//!
//! Data flows one way: a [`strategy`] proposes an architecture of a
//! [`space`], an [`executor`] runs the [`eval`]uator on it (in process, in
//! worker processes or as Slurm jobs, several at once), the [`session`]
//! journals the result and the [`knowledge`] base keeps it.

pub mod agent;
pub mod bench;
pub mod child;
pub mod config;
pub mod duration;
pub mod eval;
pub mod executor;
pub mod knowledge;
pub mod llm;
pub mod markup;
pub mod pareto;
pub mod prompt;
pub mod proxy;
pub mod record;
pub mod report;
pub mod rng;
pub mod serve;
pub mod session;
pub mod space;
pub mod stats;
pub mod store;
pub mod strategy;
