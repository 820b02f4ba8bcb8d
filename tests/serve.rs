//! `seki serve`, the live dashboard, end to end: a real session (NAS-Bench-
//! 201 table, recorded LLM replies, a local pool of 2 workers) with the
//! server beside it, its page opened in headless Chromium while the session
//! runs and after it ended; requests that try to leave the folders given;
//! 200 concurrent page loads; a journal with a torn last line; a killed and
//! resumed session.
//!
//! The session is paused (SIGSTOP) for each look, so that what the page
//! shows can be compared with the journal without depending on timing.
//!
//! Without Chromium the browser test is skipped with a message, except under
//! CI (the `CI` variable set), where it fails.

mod common;
use common::browser::{browse, chromium};
use common::*;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const FIXTURE: &str = "tests/fixtures/seki-nb201-replies.jsonl";

/// A running `seki serve`, stopped when dropped.
struct Served {
    child: Child,
    addr: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `seki serve ARGS --bind 127.0.0.1:0` in `dir`; its address.
fn serve(dir: &Path, args: &[&str]) -> Served {
    let mut child = seki(dir)
        .arg("serve")
        .args(args)
        .args(["--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("serve.err")).unwrap())
        .spawn()
        .expect("seki serve starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| {
            panic!(
                "no address in {line:?}: {}",
                std::fs::read_to_string(dir.join("serve.err")).unwrap_or_default()
            )
        })
        .to_string();
    assert!(line.contains("read-only"), "{line}");
    Served { child, addr }
}

/// Send raw bytes as a request; the status (0: no status line) and body.
fn raw(addr: &str, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string());
    (status, body)
}

fn get(addr: &str, target: &str) -> (u16, String) {
    raw(
        addr,
        format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// The server's state document.
fn state(addr: &str) -> serde_json::Value {
    let (status, body) = get(addr, "/api/state");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn evaluations_in(run: &Path) -> usize {
    journal_so_far(run)
        .iter()
        .filter(|e| e["event"] == "evaluation")
        .count()
}

/// Requests the journal has submitted and no evaluation or cancellation
/// has closed, sorted.
fn open_requests(run: &Path) -> Vec<String> {
    let mut open = std::collections::BTreeSet::new();
    for e in journal_so_far(run) {
        match e["event"].as_str() {
            Some("submitted") => {
                open.insert(e["request"].as_str().unwrap().to_string());
            }
            Some("evaluation") => {
                if let Some(r) = e["placement"]["request"].as_str() {
                    open.remove(r);
                }
            }
            Some("cancelled") => {
                open.remove(e["request"].as_str().unwrap());
            }
            _ => {}
        }
    }
    open.into_iter().collect()
}

/// Pause or continue a process.
fn signal(child: &Child, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

/// The page as Chromium has it after its scripts ran: ready, no script
/// error, no console message, nothing loaded from elsewhere.
fn look(chromium: &Path, dir: &Path, url: &str) -> String {
    let (dom, err) = browse(chromium, dir, &["--dump-dom"], url);
    assert!(dom.contains("data-ready=\"1\""), "report script: {err}");
    assert!(dom.contains("data-live-ready=\"1\""), "live script: {err}");
    assert!(
        dom.contains("<pre id=\"js-errors\" hidden=\"\"></pre>"),
        "script errors in {url}"
    );
    let console: Vec<&str> = err
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .collect();
    assert_eq!(console, Vec::<&str>::new(), "console messages on {url}");
    for bad in [
        "src=\"http",
        "href=\"http",
        "url(",
        "@import",
        "<link",
        "<img",
    ] {
        assert!(!dom.contains(bad), "{url} loads {bad}");
    }
    dom
}

/// An attribute of the live row of the page's first session.
fn live_attr(dom: &str, name: &str) -> String {
    let row = dom
        .split("<tr class=\"live-run\"")
        .nth(1)
        .expect("a live row");
    let row = &row[..row.find('>').unwrap()];
    let key = format!("{name}=\"");
    let v = &row[row.find(&key).unwrap_or_else(|| panic!("{name} in {row}")) + key.len()..];
    v[..v.find('"').unwrap()].to_string()
}

/// The requests the page lists in flight, sorted.
fn page_in_flight(dom: &str) -> Vec<String> {
    let mut v: Vec<String> = dom
        .split("<tr class=\"in-flight\" data-request=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].to_string())
        .collect();
    v.sort();
    v
}

/// The workers that started the requests in flight (`host:pid` by request).
fn workers_on_disk(run: &Path) -> BTreeMap<String, String> {
    open_requests(run)
        .into_iter()
        .filter_map(|r| {
            let path = run.join("evals").join(&r).join("started.json");
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
            Some((r, format!("{}:{}", v["host"].as_str()?, v["pid"])))
        })
        .collect()
}

/// Pause the session once its journal has more than `after` evaluations;
/// wait until the server has read the journal as it is, and seen the
/// workers that had started; the count and those workers.
fn pause_after(
    session: &Child,
    run: &Path,
    addr: &str,
    after: usize,
) -> (usize, BTreeMap<String, String>) {
    wait_for(300, "evaluations", || evaluations_in(run) > after);
    signal(session, "-STOP");
    // The session is the journal's only writer; a worker may still start.
    let n = evaluations_in(run);
    let workers = workers_on_disk(run);
    wait_for(60, "the server to catch up", || {
        let s = state(addr);
        let shown: BTreeMap<String, String> = s["runs"][0]["in_flight"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| {
                Some((
                    f["request"].as_str()?.to_string(),
                    f["worker"].as_str()?.to_string(),
                ))
            })
            .collect();
        s["runs"][0]["evaluations"] == n && workers.iter().all(|(r, w)| shown.get(r) == Some(w))
    });
    (n, workers)
}

/// The page shows each started worker on its request's row.
fn shows_workers(dom: &str, workers: &BTreeMap<String, String>) {
    for (r, w) in workers {
        let row = dom
            .split(&format!("<tr class=\"in-flight\" data-request=\"{r}\">"))
            .nth(1)
            .unwrap_or_else(|| panic!("no row for {r}"));
        let row = &row[..row.find("</tr>").unwrap()];
        assert!(row.contains(&format!(">{w}<")), "{r}: {row}");
    }
}

/// 200 page loads at once; each must be the whole page.
fn load_pages(addr: &str, n: usize) {
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let addr = addr.to_string();
            std::thread::spawn(move || get(&addr, "/"))
        })
        .collect();
    for h in handles {
        let (status, body) = h.join().unwrap();
        assert_eq!(status, 200);
        assert!(body.ends_with("</html>\n"), "a page cut short");
    }
}

#[test]
fn live_page_follows_a_running_session() {
    let Some(chromium) = chromium() else { return };
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    std::fs::create_dir_all(dir.join("kb")).unwrap();
    std::fs::create_dir_all(dir.join("runs")).unwrap();
    let run = dir.join("runs/live");
    let mut session = seki_with(dir, "c", "[executor]\nworkers = 2\n")
        .args([
            "search",
            "--strategy",
            "seki",
            "--budget",
            "8",
            "--run-dir",
            "runs/live",
            "--kb",
            "kb",
            "--llm-replay",
            &root().join(FIXTURE).display().to_string(),
            "-q",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The server first: the session appears in its folder of runs.
    let served = serve(dir, &["--runs", "runs", "--kb", "kb"]);
    let url = format!("http://{}/", served.addr);

    // First look, the session paused after its first evaluation.
    let (a, workers) = pause_after(&session, &run, &served.addr, 0);
    let dom = look(&chromium, dir, &url);
    assert!(
        dom.contains("<title>seki serve (live): "),
        "the tab says live"
    );
    shows_workers(&dom, &workers);
    assert_eq!(live_attr(&dom, "data-evaluations"), a.to_string());
    assert_eq!(live_attr(&dom, "data-status"), "running");
    assert_eq!(page_in_flight(&dom), open_requests(&run));
    // 200 page loads at once against the running session.
    signal(&session, "-CONT");
    load_pages(&served.addr, 200);

    // Second look: more evaluations.
    let (b, workers) = pause_after(&session, &run, &served.addr, a);
    let dom = look(&chromium, dir, &url);
    shows_workers(&dom, &workers);
    let shown: usize = live_attr(&dom, "data-evaluations").parse().unwrap();
    assert_eq!(shown, b);
    assert!(
        shown > a,
        "the count grew between two looks: {a} then {shown}"
    );
    assert_eq!(page_in_flight(&dom), open_requests(&run));
    signal(&session, "-CONT");

    // The end: the page agrees with summary.json.
    assert!(session.wait().unwrap().success(), "the session failed");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    wait_for(60, "the server to see the end", || {
        state(&served.addr)["runs"][0]["status"] == "ended"
    });
    let dom = look(&chromium, dir, &url);
    assert_eq!(live_attr(&dom, "data-status"), "ended");
    assert_eq!(
        live_attr(&dom, "data-evaluations"),
        summary["evaluations"].to_string()
    );
    assert_eq!(
        live_attr(&dom, "data-best-n"),
        summary["best"]["evaluation"].to_string()
    );
    let best: f64 = live_attr(&dom, "data-best").parse().unwrap();
    assert_eq!(best, summary["best"]["score"].as_f64().unwrap());
    assert_eq!(page_in_flight(&dom), Vec::<String>::new());
    // The report's views are there: lineage, insights, LLM use, exchanges.
    for id in ["r0-lineage", "r0-insights", "r0-llm", "live-exchanges"] {
        assert!(dom.contains(&format!("id=\"{id}\"")), "{id}");
    }
    assert_eq!(
        dom.matches("<tr class=\"lineage-row").count(),
        summary["evaluations"].as_u64().unwrap() as usize
    );
    // The page's script swaps a fresh copy in (as on a change) cleanly.
    let (dom, err) = browse(
        &chromium,
        dir,
        &["--dump-dom", "--virtual-time-budget=5000"],
        &format!("{url}?livetest"),
    );
    assert!(dom.contains("data-live-swaps=\"1\""), "no swap: {err}");
    assert!(
        dom.contains("data-live-section=\"1\""),
        "no live section: {err}"
    );
    assert!(dom.contains("<pre id=\"js-errors\" hidden=\"\"></pre>"));
    assert!(!err.contains(":CONSOLE"), "{err}");
    // The knowledge base's page.
    let dom = look(&chromium, dir, &format!("{url}kb"));
    assert!(dom.contains("data-live=\"kb\""));
    assert!(dom.contains("class=\"insight\""));
}

/// A finished REA session with a pool of 2 workers in `dir/name`.
fn rea(dir: &Path, name: &str, budget: &str) {
    ok(seki_with(dir, "c", "[executor]\nworkers = 2\n").args([
        "search",
        "--strategy",
        "rea",
        "--budget",
        budget,
        "--seed",
        "3",
        "--run-dir",
        name,
        "--kb-records",
        "none",
        "-q",
    ]));
}

/// Names and sizes of every file under `dir`.
fn listing(dir: &Path, out: &mut Vec<(PathBuf, u64)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            listing(&p, out);
        } else {
            out.push((p.clone(), p.metadata().unwrap().len()));
        }
    }
    out.sort();
}

#[test]
fn torn_resumed_and_hostile_requests() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let runs = dir.join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    rea(dir, "runs/whole", "12");
    // A kill while writing evaluation 5's line: shown up to evaluation 4.
    cut_run(&runs.join("whole"), &runs.join("torn"), 5, 0.5);
    // A kill, then --resume: one session.
    cut_run(&runs.join("whole"), &runs.join("resumed"), 7, 0.3);
    ok(seki_with(dir, "c", "[executor]\nworkers = 2\n").args([
        "search",
        "--resume",
        "runs/resumed",
        "-q",
    ]));
    let mut before = Vec::new();
    listing(dir, &mut before);

    let served = serve(dir, &["--runs", "runs"]);
    let s = state(&served.addr);
    let by_dir = |name: &str| {
        s["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["dir"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("{name} in {s}"))
            .clone()
    };
    assert_eq!(s["runs"].as_array().unwrap().len(), 3, "{s}");
    let torn = by_dir("torn");
    assert_eq!(torn["evaluations"], 4, "{torn}");
    assert_eq!(torn["status"], "running");
    let resumed = by_dir("resumed");
    assert_eq!(resumed["evaluations"], 12, "{resumed}");
    assert_eq!(resumed["resumes"], 1);
    assert_eq!(resumed["status"], "ended");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs.join("resumed/summary.json")).unwrap())
            .unwrap();
    assert_eq!(resumed["best"]["evaluation"], summary["best"]["evaluation"]);
    let (status, page) = get(&served.addr, "/");
    assert_eq!(status, 200);
    assert_eq!(page.matches("<tr class=\"live-run\"").count(), 3);
    assert!(page.contains("resumed 1×") || page.contains("data-status=\"ended\""));
    // No knowledge base given (and none where the config points): 404.
    assert_eq!(get(&served.addr, "/kb").0, 404);

    // Requests that try to reach a file: 4xx, and nothing of any file.
    let long = format!("/{}", "a".repeat(5000));
    let longer = format!("/{}", "a".repeat(70_000));
    let targets = [
        "/../../../../etc/passwd",
        "/..%2f..%2f..%2fetc%2fpasswd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/%252e%252e/etc/passwd",
        "/..",
        "/kb/../../runs/whole/journal.jsonl",
        "/runs/whole/journal.jsonl",
        "/journal.jsonl",
        "/etc/passwd",
        "//etc/passwd",
        "/a\\..\\..\\etc\\passwd",
        "/%00",
        "/api/state/../../etc/passwd",
        "/events/..",
        &long,
        &longer,
    ];
    for t in targets {
        let (status, body) = get(&served.addr, t);
        assert!((400..500).contains(&status), "{t:.80}: {status}");
        assert!(
            !body.contains("root:") && !body.contains("\"event\""),
            "{t:.80}"
        );
    }
    for req in [
        "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n".to_string(),
        "GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n".to_string(),
        "GARBAGE\r\n\r\n".to_string(),
        "GET ../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n".to_string(),
        "GET /etc/passwd HTTP/9.9\r\nHost: x\r\n\r\n".to_string(),
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
        "DELETE /kb HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_string(),
    ] {
        let (status, body) = raw(&served.addr, req.as_bytes());
        assert!((400..500).contains(&status), "{req:?}: {status} {body}");
    }
    // A page elsewhere whose name resolves to 127.0.0.1 (DNS rebinding).
    let (status, _) = raw(
        &served.addr,
        b"GET /api/state HTTP/1.1\r\nHost: evil.example:80\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 403);
    let (status, _) = raw(
        &served.addr,
        format!(
            "GET /api/state HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            served.addr
        )
        .as_bytes(),
    );
    assert_eq!(status, 200);
    // It still serves, and wrote nothing.
    assert_eq!(get(&served.addr, "/").0, 200);
    drop(served);
    let mut after = Vec::new();
    listing(dir, &mut after);
    let ours = |p: &PathBuf| p.ends_with("serve.err") || p.ends_with("test-config.toml");
    after.retain(|(p, _)| !ours(p));
    before.retain(|(p, _)| !ours(p));
    assert_eq!(before, after, "the server wrote into the folders");
}

#[test]
fn says_so_when_not_on_loopback() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("runs")).unwrap();
    let mut child = seki(d.path())
        .args(["serve", "--runs", "runs", "--bind", "0.0.0.0:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.starts_with("warning: listening on 0.0.0.0:") && line.contains("not a loopback"),
        "{line}"
    );
    // A folder that is not there is an error, not an empty page.
    let e = fails(seki(d.path()).args(["serve", "nowhere", "--bind", "127.0.0.1:0"]));
    assert!(e.contains("nowhere: no such folder"), "{e}");
}

/// One reader of the live page as a browser tab is: the page, then the
/// event stream (each event carries the live section), and the page at
/// most every 10 s; until `stop`. Its (page loads, events); any failure
/// panics.
fn tab(addr: &str, stop: &std::sync::atomic::AtomicBool) -> (usize, usize) {
    use std::sync::atomic::Ordering;
    let load = |target: &str| {
        let (status, body) = get(addr, target);
        assert_eq!(status, 200, "{target}");
        assert!(
            body.trim_end().ends_with(if target == "/" {
                "</html>"
            } else {
                "</section>"
            }),
            "{target} cut short"
        );
    };
    let (mut loads, mut sections) = (1, 0);
    load("/");
    let mut last_page = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    s.write_all(b"GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    let mut stale = false;
    while !stop.load(Ordering::Relaxed) {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) => panic!("the event stream ended"),
            Ok(_) if line.starts_with("data:") => {
                // The event carries the live section.
                let state: serde_json::Value = serde_json::from_str(&line[5..]).unwrap();
                assert!(state["live"].as_str().unwrap().ends_with("</section>\n"));
                sections += 1;
                stale = true;
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("event stream: {e}"),
        }
        if stale && last_page.elapsed() >= Duration::from_secs(10) {
            load("/");
            loads += 1;
            last_page = Instant::now();
            stale = false;
        }
    }
    (loads, sections)
}

/// Seconds a REA session of `budget` evaluations on 2 local workers takes,
/// alone or with `tabs` live pages open on `seki serve` beside it (each
/// loading the page at once, then as `tab` does); the page loads and
/// events served, and the server's CPU seconds.
fn timed_session(dir: &Path, name: &str, budget: &str, tabs: usize) -> (f64, (usize, usize), f64) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let runs = dir.join(name);
    std::fs::create_dir_all(&runs).unwrap();
    let served = (tabs > 0).then(|| serve(dir, &["--runs", name]));
    let t = Instant::now();
    let mut session = seki_with(dir, "c", "[executor]\nworkers = 2\n")
        .args([
            "search",
            "--strategy",
            "rea",
            "--budget",
            budget,
            "--seed",
            "5",
        ])
        .args(["--kb-records", "none", "-q", "--run-dir"])
        .arg(runs.join("s"))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = served
        .as_ref()
        .map(|s| {
            wait_for(60, "the session's journal", || {
                runs.join("s/journal.jsonl").is_file()
            });
            (0..tabs)
                .map(|_| {
                    let (addr, stop) = (s.addr.clone(), stop.clone());
                    std::thread::spawn(move || tab(&addr, &stop))
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(session.wait().unwrap().success());
    let secs = t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let loads = readers
        .into_iter()
        .map(|h| h.join().unwrap())
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    let cpu = served.as_ref().map_or(0.0, |s| cpu_seconds(s.child.id()));
    (secs, loads, cpu)
}

/// CPU seconds (user and system) a process has used, from /proc (Linux;
/// 100 ticks a second).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and
    // stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    f.iter().sum::<f64>() / 100.0
}

/// The measurement behind docs/serve.md (bench/serve-load.sh runs it): a
/// session's wall time alone and with 200 live pages open beside it,
/// alternated, ROUNDS times (default 2).
#[test]
#[ignore = "a measurement of a minute or more; bench/serve-load.sh"]
fn serve_load_beside_a_session() {
    let d = tempfile::tempdir().unwrap();
    let budget = std::env::var("BUDGET").unwrap_or_else(|_| "100".into());
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(2);
    let (mut alone, mut loaded, mut loads, mut cpu) = (Vec::new(), Vec::new(), (0, 0), 0.0);
    for k in 0..rounds {
        alone.push(timed_session(d.path(), &format!("a{k}"), &budget, 0).0);
        let (secs, n, c) = timed_session(d.path(), &format!("b{k}"), &budget, 200);
        loaded.push(secs);
        loads = (loads.0 + n.0, loads.1 + n.1);
        cpu += c;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "{}",
        serde_json::json!({
            "budget": budget, "workers": 2, "tabs": 200,
            "alone_seconds": alone, "with_pages_seconds": loaded,
            "alone_mean": mean(&alone), "with_pages_mean": mean(&loaded),
            "page_loads": loads.0, "events": loads.1, "errors": 0,
            "server_cpu_seconds": cpu,
        })
    );
}
