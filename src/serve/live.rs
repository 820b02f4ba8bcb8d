//! What the dashboard shows, read from the folders it was given: each run
//! directory's journal (read again whenever it grows; a last line cut short
//! by a writer is left out until it is complete), the report's page of the
//! runs with a live section on top (the sessions' state, evaluations in
//! flight, the LLM exchanges), and the knowledge base's page. Nothing here
//! writes.

use crate::knowledge::{KnowledgeBase, OpenOptions};
use crate::llm::Role;
use crate::markup::escape;
use crate::record::{journal, AgentEvent, Event, OpenRequests};
use crate::report::page::Page;
use crate::report::{self, ReportError, Run};
use std::fmt::Write as _;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// LLM exchanges shown per run, newest first.
const EXCHANGES_SHOWN: usize = 20;
/// Characters of a prompt or reply shown (the journal keeps them whole).
const TEXT_SHOWN: usize = 6_000;

/// The folders the server reads.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Run directories named one by one, in the order given.
    pub runs: Vec<PathBuf>,
    /// A folder of run directories: every subfolder with a journal, sorted
    /// by name, looked for again on every change (new sessions appear).
    pub runs_root: Option<PathBuf>,
    /// The knowledge base.
    pub kb: Option<PathBuf>,
}

fn stamp(path: &Path, h: &mut DefaultHasher) {
    match std::fs::metadata(path) {
        Ok(m) => {
            m.len().hash(h);
            m.modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_nanos())
                .hash(h);
        }
        Err(_) => 0u8.hash(h),
    }
}

impl Sources {
    /// The run directories now: those named, then those under the root.
    pub fn run_dirs(&self) -> Vec<PathBuf> {
        let mut out = self.runs.clone();
        if let Some(root) = &self.runs_root {
            let mut found: Vec<PathBuf> = std::fs::read_dir(root)
                .map(|rd| {
                    rd.filter_map(Result::ok)
                        .map(|e| e.path())
                        .filter(|p| p.join(crate::record::JOURNAL).is_file())
                        .collect()
                })
                .unwrap_or_default();
            found.sort();
            for p in found {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        out
    }

    /// A fingerprint of the runs' files (journal, summary, config snapshot:
    /// sizes and modification times): it changes when any of them does.
    pub fn runs_fingerprint(&self, dirs: &[PathBuf]) -> u64 {
        let mut h = DefaultHasher::new();
        for d in dirs {
            d.hash(&mut h);
            for f in [
                crate::record::JOURNAL,
                crate::record::SUMMARY,
                crate::record::CONFIG,
            ] {
                stamp(&d.join(f), &mut h);
            }
        }
        h.finish()
    }

    /// A fingerprint of the knowledge base's files.
    pub fn kb_fingerprint(&self) -> u64 {
        let mut h = DefaultHasher::new();
        if let Some(kb) = &self.kb {
            for f in ["architectures.jsonl", "insights.jsonl"] {
                stamp(&kb.join(f), &mut h);
            }
        }
        h.finish()
    }
}

/// An evaluation submitted and not yet back.
#[derive(Debug, Clone, PartialEq)]
pub struct InFlight {
    /// The request id (its folder under `evals/`).
    pub request: String,
    /// The Slurm job running it, when there is one.
    pub job: Option<String>,
    /// When it was submitted (Unix time, seconds).
    pub submitted: f64,
    /// The operator that made it.
    pub operator: String,
    /// The architecture.
    pub arch: String,
    /// The worker running it (`host:pid`), once it started.
    pub worker: Option<String>,
    /// When the worker started (Unix time, seconds).
    pub started: Option<f64>,
}

/// A request id as the executors make them (`r0001`): letters, digits,
/// `-` and `_` only, so that it names a folder under `evals/` and nothing
/// else.
fn plain_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Whether the worker of a request in flight has started (its
/// `started.json` reads).
pub fn has_started(dir: &Path, request: &str) -> bool {
    started(dir, request).is_some()
}

/// The worker's `started.json` of a request, if it has started.
fn started(dir: &Path, request: &str) -> Option<crate::executor::request::Started> {
    if !plain_id(request) {
        return None;
    }
    let path = dir
        .join(crate::executor::request::EVALS)
        .join(request)
        .join(crate::executor::request::STARTED);
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// One LLM exchange.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    /// Evaluations journalled before it.
    pub after: usize,
    /// The call's stage.
    pub stage: String,
    /// The model.
    pub model: String,
    /// The last message sent (the prompt proper).
    pub prompt: String,
    /// The reply.
    pub reply: String,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Seconds the call took.
    pub seconds: f64,
}

/// The returned architecture so far.
#[derive(Debug, Clone, PartialEq)]
pub struct BestSoFar {
    /// The evaluation that found it.
    pub evaluation: usize,
    /// Its score (the mean where it was evaluated more than once).
    pub score: f64,
    /// The score's standard error, when known.
    pub se: Option<f64>,
}

/// One session as the dashboard sees it now.
#[derive(Debug, Clone)]
pub struct LiveRun {
    /// The run directory.
    pub dir: PathBuf,
    /// The session id (empty until its journal has a start line).
    pub session: String,
    /// The strategy.
    pub strategy: String,
    /// Evaluations journalled.
    pub evaluations: usize,
    /// Why it ended, once it has.
    pub ended: Option<String>,
    /// Times it was resumed.
    pub resumes: usize,
    /// Evaluations in flight, oldest first.
    pub in_flight: Vec<InFlight>,
    /// LLM exchanges, in order.
    pub exchanges: Vec<Exchange>,
    /// The best so far.
    pub best: Option<BestSoFar>,
    /// Insights the strategy holds.
    pub insights: usize,
    /// When the journal last changed (Unix time, seconds).
    pub last_write: Option<f64>,
    /// Why the run cannot be shown (yet), if it cannot.
    pub problem: Option<String>,
    /// The run as the report reads it (once it has an evaluation).
    pub run: Option<Run>,
}

fn last_user_message(messages: &[crate::llm::Message]) -> String {
    messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .or(messages.last())
        .map(|m| m.content.clone())
        .unwrap_or_default()
}

impl LiveRun {
    /// Read a run directory as it is now.
    pub fn read(dir: &Path) -> LiveRun {
        let journal_path = dir.join(crate::record::JOURNAL);
        let mut live = LiveRun {
            dir: dir.to_path_buf(),
            session: String::new(),
            strategy: String::new(),
            evaluations: 0,
            ended: None,
            resumes: 0,
            in_flight: Vec::new(),
            exchanges: Vec::new(),
            best: None,
            insights: 0,
            last_write: std::fs::metadata(&journal_path)
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_secs_f64()),
            problem: None,
            run: None,
        };
        let events = match journal::read(&journal_path) {
            Ok(e) => e,
            Err(e) => {
                live.problem = Some(e.to_string());
                return live;
            }
        };
        // Requests submitted without a result: id → (flight, cancelled).
        let mut open = OpenRequests::default();
        for e in events {
            open.observe(&e);
            match e {
                Event::Start {
                    session, strategy, ..
                } => {
                    live.session = session;
                    live.strategy = strategy;
                }
                Event::Resume { .. } => {
                    live.resumes += 1;
                    live.ended = None;
                }
                Event::Evaluation(_) => live.evaluations += 1,
                Event::Strategy {
                    detail:
                        AgentEvent::Llm {
                            stage,
                            model,
                            messages,
                            response,
                            ..
                        },
                } => live.exchanges.push(Exchange {
                    after: live.evaluations,
                    stage,
                    model: if response.model.is_empty() {
                        model
                    } else {
                        response.model.clone()
                    },
                    prompt: last_user_message(&messages),
                    reply: response.text,
                    prompt_tokens: response.usage.prompt_tokens,
                    completion_tokens: response.usage.completion_tokens,
                    seconds: response.latency_seconds,
                }),
                Event::End { reason, .. } => live.ended = Some(reason),
                _ => {}
            }
        }
        if live.ended.is_none() {
            live.in_flight = open
                .into_requests()
                .filter(|r| !r.cancelled)
                .map(|r| InFlight {
                    request: r.request,
                    job: r.job,
                    submitted: r.submitted,
                    operator: r.proposal.operator,
                    arch: r.proposal.arch,
                    worker: None,
                    started: None,
                })
                .collect();
            live.in_flight
                .sort_by(|a, b| a.submitted.total_cmp(&b.submitted));
            for f in &mut live.in_flight {
                if let Some(st) = started(dir, &f.request) {
                    f.worker = Some(format!("{}:{}", st.host, st.pid));
                    f.started = Some(st.time);
                    if f.job.is_none() {
                        f.job = st.job;
                    }
                }
            }
        }
        match Run::load(dir) {
            Ok(run) => {
                live.best = run.returned().map(|b| BestSoFar {
                    evaluation: b.step.n,
                    score: b.score,
                    se: b.se,
                });
                live.insights = run.insights.len();
                live.run = Some(run);
            }
            Err(ReportError::Empty(_)) => {}
            Err(e) => live.problem = Some(e.to_string()),
        }
        live
    }

    /// Its status in a word: `waiting` (no evaluation yet), `running`,
    /// `ended` or `unreadable`.
    pub fn status(&self) -> &'static str {
        if self.problem.is_some() && self.run.is_none() && self.evaluations > 0 {
            "unreadable"
        } else if self.ended.is_some() {
            "ended"
        } else if self.evaluations == 0 {
            "waiting"
        } else {
            "running"
        }
    }

    fn label(&self) -> String {
        if self.session.is_empty() {
            self.dir.display().to_string()
        } else {
            format!("{} ({})", self.session, self.strategy)
        }
    }

    /// The run's state as JSON (what the page's script is pushed).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "dir": self.dir.display().to_string(),
            "session": self.session,
            "strategy": self.strategy,
            "status": self.status(),
            "evaluations": self.evaluations,
            "ended": self.ended,
            "resumes": self.resumes,
            "best": self.best.as_ref().map(|b| serde_json::json!({
                "evaluation": b.evaluation, "score": b.score, "se": b.se,
            })),
            "in_flight": self.in_flight.iter().map(|f| serde_json::json!({
                "request": f.request, "job": f.job, "submitted": f.submitted,
                "worker": f.worker, "started": f.started,
            })).collect::<Vec<_>>(),
            "llm_exchanges": self.exchanges.len(),
            "insights": self.insights,
            "problem": self.problem,
        })
    }
}

/// The state of every run as one JSON document, with the versions of the
/// two pages (they change when their files do) and the live section's HTML
/// (`live`, which the page swaps in without asking for it).
pub fn state_json(runs: &[LiveRun], runs_version: u64, kb_version: u64, card: &str) -> String {
    serde_json::json!({
        "runs_version": runs_version.to_string(),
        "kb_version": kb_version.to_string(),
        "runs": runs.iter().map(LiveRun::to_json).collect::<Vec<_>>(),
        "live": card,
    })
    .to_string()
}

fn clip(text: &str) -> String {
    match text.char_indices().nth(TEXT_SHOWN) {
        Some((i, _)) => format!(
            "{}\n… ({} characters in all)",
            &text[..i],
            text.chars().count()
        ),
        None => text.to_string(),
    }
}

/// The live section: each session's state and the evaluations in flight
/// (also served alone, for the page to swap in on each change).
pub fn live_card(runs: &[LiveRun], has_kb: bool) -> String {
    let mut s = String::from("<section class=\"card\" id=\"live\"><h2>Live</h2>");
    let _ = write!(
        s,
        "<p class=\"meta\">Following {} session{} (<span id=\"live-connection\">connecting</span>); the page updates as their journals grow.{}</p>",
        runs.len(),
        if runs.len() == 1 { "" } else { "s" },
        if has_kb {
            " The knowledge base: <a href=\"/kb\">/kb</a>."
        } else {
            ""
        }
    );
    s.push_str("<div class=\"scroll\"><table id=\"live-runs\"><thead><tr><th>session</th><th>status</th><th class=\"num\">evaluations</th><th class=\"num\">best ± SE</th><th class=\"num\">found at</th><th class=\"num\">in flight</th><th class=\"num\">LLM exchanges</th><th class=\"num\">insights</th><th>last journal write</th></tr></thead><tbody>");
    for r in runs {
        let best = r.best.as_ref();
        let _ = write!(
            s,
            "<tr class=\"live-run\" data-session=\"{}\" data-status=\"{}\" data-evaluations=\"{}\" data-best-n=\"{}\" data-best=\"{}\"><td>{}{}</td><td>{}{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            escape(&r.session),
            r.status(),
            r.evaluations,
            best.map_or(String::new(), |b| b.evaluation.to_string()),
            best.map_or(String::new(), |b| b.score.to_string()),
            escape(&r.label()),
            r.problem.as_ref().map_or(String::new(), |p| format!(
                "<br><span class=\"muted\">{}</span>",
                escape(p)
            )),
            crate::report::page::status_badge(r.status()),
            match (&r.ended, r.resumes) {
                (Some(reason), _) => format!(" <span class=\"muted\">{}</span>", escape(reason)),
                (None, 0) => String::new(),
                (None, k) => format!(" <span class=\"muted\">resumed {k}×</span>"),
            },
            r.evaluations,
            best.map_or("-".into(), |b| crate::stats::with_se(b.score, b.se)),
            best.map_or("-".into(), |b| format!("#{}", b.evaluation)),
            r.in_flight.len(),
            r.exchanges.len(),
            r.insights,
            r.last_write.map_or("-".into(), |t| format!(
                "<span data-since=\"{t}\"></span> ago"
            )),
        );
    }
    s.push_str("</tbody></table></div>");
    let flights: Vec<(&LiveRun, &InFlight)> = runs
        .iter()
        .flat_map(|r| r.in_flight.iter().map(move |f| (r, f)))
        .collect();
    let _ = write!(s, "<h3>In flight ({})</h3>", flights.len());
    if flights.is_empty() {
        s.push_str("<p class=\"muted\">No evaluation is running.</p>");
    } else {
        s.push_str("<div class=\"scroll\"><table id=\"live-flight\"><thead><tr><th>session</th><th>request</th><th>job</th><th>worker</th><th>operator</th><th>architecture</th><th class=\"num\">since submitted</th><th class=\"num\">running for</th></tr></thead><tbody>");
        for (r, f) in flights {
            let _ = write!(
                s,
                "<tr class=\"in-flight\" data-request=\"{}\"><td>{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td>{}</td><td class=\"mono\">{}</td><td class=\"num\" data-since=\"{}\"></td>{}</tr>",
                escape(&f.request),
                escape(&r.session),
                escape(&f.request),
                escape(f.job.as_deref().unwrap_or("-")),
                escape(f.worker.as_deref().unwrap_or("queued")),
                escape(&f.operator),
                escape(&f.arch),
                f.submitted,
                f.started.map_or("<td class=\"num\">-</td>".into(), |t| format!(
                    "<td class=\"num\" data-since=\"{t}\"></td>"
                )),
            );
        }
        s.push_str("</tbody></table></div>");
    }
    s.push_str("</section>\n");
    s
}

/// The LLM exchanges: the latest of each session with prompt and reply.
fn exchanges_card(runs: &[LiveRun]) -> String {
    let mut s = String::new();
    let total: usize = runs.iter().map(|r| r.exchanges.len()).sum();
    if total > 0 {
        s.push_str("<section class=\"card\" id=\"live-exchanges\"><h2>LLM exchanges</h2>");
        let _ = write!(s, "<p class=\"meta\">{total} in all; the latest {EXCHANGES_SHOWN} of each session, newest first (prompt: the last message sent).</p>");
        s.push_str("<div class=\"scroll\"><table id=\"live-llm\"><thead><tr><th>session</th><th class=\"num\">after evaluation</th><th>stage</th><th>model</th><th class=\"num\">prompt tokens</th><th class=\"num\">completion tokens</th><th class=\"num\">seconds</th><th>prompt and reply</th></tr></thead><tbody>");
        for r in runs {
            for x in r.exchanges.iter().rev().take(EXCHANGES_SHOWN) {
                let _ = write!(
                    s,
                    "<tr class=\"exchange\"><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.2}</td><td><details><summary>prompt</summary><pre class=\"arch\">{}</pre></details><details><summary>reply</summary><pre class=\"arch\">{}</pre></details></td></tr>",
                    escape(&r.session),
                    x.after,
                    escape(&x.stage),
                    escape(&x.model),
                    x.prompt_tokens,
                    x.completion_tokens,
                    x.seconds,
                    escape(&clip(&x.prompt)),
                    escape(&clip(&x.reply)),
                );
            }
        }
        s.push_str("</tbody></table></div></section>\n");
    }
    s
}

/// The live page's script: it keeps the "elapsed" and "ago" cells ticking,
/// listens to the server's events (`/events`; polls `/api/state` where the
/// browser has no EventSource) and, when its page's version changes, swaps
/// in the live section at once (`/api/live`) and the whole page's parts at
/// most every 10 s (the sortable tables wired again).
const LIVE_SCRIPT: &str = r##"
(function () {
  "use strict";
  var body = document.body;
  var kind = body.getAttribute("data-live");
  var want = null, busy = false, swaps = 0;
  function ago(s) {
    s = Math.max(0, Math.round(s));
    if (s < 120) return s + " s";
    if (s < 7200) return Math.round(s / 60) + " min";
    return (s / 3600).toFixed(1) + " h";
  }
  function tick() {
    var now = Date.now() / 1000;
    document.querySelectorAll("[data-since]").forEach(function (el) {
      el.textContent = ago(now - Number(el.getAttribute("data-since")));
    });
  }
  function connection(text) {
    var el = document.getElementById("live-connection");
    if (el) el.textContent = text;
  }
  function swap(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    ["header.top", "nav.toc", "main"].forEach(function (sel) {
      var old = document.querySelector(sel), next = doc.querySelector(sel);
      if (old && next) old.replaceWith(document.importNode(next, true));
    });
    document.querySelectorAll("body > template").forEach(function (t) { t.remove(); });
    doc.querySelectorAll("body > template").forEach(function (t) {
      body.appendChild(document.importNode(t, true));
    });
    body.setAttribute("data-live-version", doc.body.getAttribute("data-live-version") || "");
    swaps += 1;
    body.setAttribute("data-live-swaps", String(swaps));
    var main = document.querySelector("main");
    if (window.sekiWire && main) window.sekiWire(main);
    tick();
    connection("live");
  }
  // On a change the live section is fetched at once (it is small); the
  // whole page (lineage, tables, charts) at most every 10 s.
  var FULL_EVERY = 10000, lastFull = Date.now(), fullTimer = null;
  function swapLive(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var old = document.getElementById("live"), next = doc.getElementById("live");
    if (old && next) old.replaceWith(document.importNode(next, true));
    tick();
    connection("live");
  }
  function fetchText(url) {
    return fetch(url, { cache: "no-store" }).then(function (r) { return r.ok ? r.text() : null; });
  }
  function refresh() {
    if (busy) return;
    busy = true;
    lastFull = Date.now();
    fetchText(location.pathname + location.search)
      .then(function (html) { if (html) swap(html); })
      .catch(function () { connection("reconnecting"); })
      .then(function () {
        busy = false;
        if (want !== null && want !== body.getAttribute("data-live-version")) changed();
      });
  }
  function changed(live) {
    if (kind === "runs" && live) {
      swapLive(live);
    } else if (kind === "runs") {
      fetchText("/api/live").then(function (html) { if (html) swapLive(html); })
        .catch(function () { connection("reconnecting"); });
    }
    if (fullTimer !== null) return;
    var wait = Math.max(0, lastFull + FULL_EVERY - Date.now());
    fullTimer = setTimeout(function () {
      fullTimer = null;
      if (want !== body.getAttribute("data-live-version")) refresh();
    }, kind === "kb" ? 0 : wait);
  }
  function onState(s) {
    var v = kind === "kb" ? s.kb_version : s.runs_version;
    connection("live");
    if (v !== want) {
      want = v;
      if (v !== body.getAttribute("data-live-version")) changed(s.live);
    }
  }
  function poll() {
    fetch("/api/state", { cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(onState)
      .catch(function () { connection("reconnecting"); });
  }
  tick();
  setInterval(tick, 1000);
  if (/[?&]livetest\b/.test(location.search)) {
    // The test's look at the swap: fetch the page once and swap it in.
    body.setAttribute("data-live-version", "");
    want = null;
    refresh();
    fetchText("/api/live").then(function (html) {
      if (html) swapLive(html);
      body.setAttribute("data-live-section", document.getElementById("live") ? "1" : "0");
    });
  } else if (window.EventSource) {
    window.addEventListener("load", function () {
      var es = new EventSource("/events");
      es.onmessage = function (e) { onState(JSON.parse(e.data)); };
      es.onerror = function () { connection("reconnecting"); };
    });
  } else {
    setInterval(poll, 2000);
  }
  body.setAttribute("data-live-ready", "1");
})();
"##;

/// Put the live parts into a rendered page: the version and kind on
/// `<body>`, `parts` at the top and the bottom of `<main>`, `links` at the start of the
/// navigation bar, the script at the end.
fn inject(page: &str, kind: &str, version: u64, parts: [&str; 2], links: &str) -> String {
    let [top, bottom] = parts;
    let mut out = page.replacen(
        "<body>\n",
        &format!("<body data-live=\"{kind}\" data-live-version=\"{version}\">\n"),
        1,
    );
    out = out.replacen("<main>\n", &format!("<main>\n{top}"), 1);
    if let Some(i) = out.rfind("</main>\n") {
        out.insert_str(i, bottom);
    }
    out = out.replacen(
        "<nav class=\"toc\">",
        &format!("<nav class=\"toc\">{links}"),
        1,
    );
    // The tab says it is live, not a report written once.
    out = out.replacen("<title>seki report: ", "<title>seki serve (live): ", 1);
    let script = format!("<script>{LIVE_SCRIPT}</script>\n</body>");
    match out.rfind("</body>") {
        Some(i) => out.replace_range(i..i + "</body>".len(), &script),
        None => out.push_str(&script),
    }
    out
}

/// The page of the runs: the report of those with an evaluation (side by
/// side, the first the subject), the live section on top.
/// `card` is [`live_card`] of the runs.
pub fn runs_page(runs: &[LiveRun], version: u64, has_kb: bool, card: &str) -> String {
    let loaded: Vec<Run> = runs.iter().filter_map(|r| r.run.clone()).collect();
    let base = if loaded.is_empty() {
        let mut p = Page::new();
        p.nav("live", "Live");
        p.push("<section class=\"card\"><h2>No evaluation yet</h2><p class=\"meta\">The report appears here with the first evaluation.</p></section>");
        p.finish("seki live", "waiting for the sessions' first evaluations")
    } else {
        report::html::render(&loaded)
    };
    let mut links = String::new();
    if !loaded.is_empty() {
        links.push_str("<a href=\"#live\">Live</a>");
    }
    if runs.iter().any(|r| !r.exchanges.is_empty()) {
        links.push_str("<a href=\"#live-exchanges\">LLM exchanges</a>");
    }
    if has_kb {
        links.push_str("<a href=\"/kb\">Knowledge base</a>");
    }
    inject(
        &base,
        "runs",
        version,
        [card, &exchanges_card(runs)],
        &links,
    )
}

/// The knowledge base's page (or a page saying why it cannot be read).
pub fn kb_page(dir: &Path, version: u64) -> String {
    let opts = OpenOptions {
        skip_bad_lines: true,
        write: false,
        create: false,
    };
    let base = match KnowledgeBase::open(dir, opts) {
        Ok(kb) => report::kb::render(&kb),
        Err(e) => {
            let mut p = Page::new();
            p.push(&format!(
                "<section class=\"card\"><h2>Cannot read the knowledge base</h2><p class=\"meta\">{}</p></section>",
                escape(&e.to_string())
            ));
            p.finish("seki knowledge base", &dir.display().to_string())
        }
    };
    inject(&base, "kb", version, ["", ""], "<a href=\"/\">Runs</a>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inject_puts_each_part_in_its_place_once() {
        let mut p = Page::new();
        p.nav("a", "A");
        p.push("<p>body &lt;main&gt;</p>");
        let page = inject(
            &p.finish("t", "s"),
            "runs",
            7,
            ["<i>top</i>", "<i>bottom</i>"],
            "<a href=\"/kb\">kb</a>",
        );
        assert!(page.contains("<body data-live=\"runs\" data-live-version=\"7\">\n"));
        assert!(page.contains("<main>\n<i>top</i><p>body"));
        assert!(page.contains("<i>bottom</i></main>\n"));
        assert!(page.contains("<nav class=\"toc\"><a href=\"/kb\">kb</a><a href=\"#a\">"));
        assert_eq!(page.matches("<script>").count(), 2);
        assert!(page.trim_end().ends_with("</script>\n</body>\n</html>"));
    }

    #[test]
    fn a_folder_without_a_journal_waits() {
        let d = tempfile::tempdir().unwrap();
        let r = LiveRun::read(d.path());
        assert_eq!(r.status(), "waiting");
        assert!(r.problem.is_some());
        let page = runs_page(
            std::slice::from_ref(&r),
            1,
            false,
            &live_card(std::slice::from_ref(&r), false),
        );
        assert!(page.contains("No evaluation yet") && page.contains("id=\"live\""));
    }

    #[test]
    fn only_plain_request_ids_name_a_folder() {
        for ok in ["r0001", "r12", "job-3_a"] {
            assert!(plain_id(ok), "{ok}");
        }
        for bad in [
            "",
            "..",
            "../x",
            "r1/../../etc",
            "/etc",
            "r 1",
            "r%2e",
            "a\\b",
        ] {
            assert!(!plain_id(bad), "{bad}");
        }
    }

    #[test]
    fn long_texts_are_clipped_on_a_character_boundary() {
        let t = "é".repeat(TEXT_SHOWN + 5);
        let c = clip(&t);
        assert!(c.starts_with(&"é".repeat(TEXT_SHOWN)));
        assert!(c.ends_with(&format!("({} characters in all)", TEXT_SHOWN + 5)));
        assert_eq!(clip("short"), "short");
    }
}
