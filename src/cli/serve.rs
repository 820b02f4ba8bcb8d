//! `seki serve`: flags → the live dashboard.

use anyhow::{Context, Result};
use clap::Args;
use seki::serve::{self, live::Sources, Server};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Examples shown under `seki serve --help`.
pub const EXAMPLES: &str = "Examples:
  seki serve runs/nb201-seki-1                 one session, on http://127.0.0.1:8765/
  seki serve --runs runs --kb knowledge        every session under runs/, and /kb
  seki serve a b --bind 127.0.0.1:0            two sessions side by side, any free port";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Run directories to show, side by side (the first is the subject).
    #[arg(value_name = "RUN_DIR")]
    pub runs: Vec<PathBuf>,
    /// Also show every run directory in DIR, new ones as they start
    /// [default: the config's search.runs_dir when no RUN_DIR is given].
    #[arg(long = "runs", value_name = "DIR")]
    pub runs_root: Option<PathBuf>,
    /// The knowledge base shown at /kb [default: the config's kb.dir, if it
    /// exists].
    #[arg(long, value_name = "DIR")]
    pub kb: Option<PathBuf>,
    /// Address and port to listen on. Anything but a loopback address lets
    /// other machines read the runs.
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:8765")]
    pub bind: SocketAddr,
}

pub fn run(config: Option<&Path>, a: ServeArgs) -> Result<()> {
    let loaded = super::load_config(config)?;
    let cfg = &loaded.config;
    let runs_root = match (&a.runs_root, a.runs.is_empty()) {
        (Some(d), _) => Some(d.clone()),
        (None, true) => Some(cfg.search.runs_dir.clone()),
        (None, false) => None,
    };
    let kb = match a.kb {
        Some(d) => Some(d),
        None => Some(cfg.kb.dir.clone()).filter(|d| d.is_dir()),
    };
    let sources = Sources {
        runs: a.runs,
        runs_root,
        kb,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the server's runtime")?;
    rt.block_on(async move {
        let what = describe(&sources);
        let server = Server::bind(a.bind, sources).await?;
        let addr = server.local_addr()?;
        println!("seki serve: http://{addr}/ ({what}; read-only; Ctrl-C stops)");
        let _ = std::io::stdout().flush();
        if !serve::is_loopback(&addr) {
            eprintln!(
                "warning: listening on {addr}, not a loopback address: anyone who can reach this machine can read these runs"
            );
        }
        tokio::select! {
            r = server.run() => r.context("the server stopped"),
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })
}

fn describe(s: &Sources) -> String {
    let mut parts = Vec::new();
    if !s.runs.is_empty() {
        parts.push(format!(
            "{} run director{}",
            s.runs.len(),
            if s.runs.len() == 1 { "y" } else { "ies" }
        ));
    }
    if let Some(r) = &s.runs_root {
        parts.push(format!("the runs in {}", r.display()));
    }
    if let Some(k) = &s.kb {
        parts.push(format!("the knowledge base {} at /kb", k.display()));
    }
    parts.join(", ")
}
