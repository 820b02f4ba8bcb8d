//! Headless Chromium for the browser checks of the HTML pages (the report
//! and the live dashboard).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's chromium lives (`scripts/setup.sh` installs it).
pub const CHROMIUM: &str = "/usr/bin/chromium";

static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Chromium, or None (and a message) when it is missing outside CI.
pub fn chromium() -> Option<PathBuf> {
    let p = PathBuf::from(CHROMIUM);
    if p.is_file() {
        return Some(p);
    }
    if std::env::var_os("CI").is_some() {
        panic!("{CHROMIUM} is missing; scripts/setup.sh installs it (apt-get install chromium)");
    }
    eprintln!("skipping the browser checks: {CHROMIUM} is missing (run scripts/setup.sh as root)");
    None
}

/// Run headless Chromium on a page with `args`; returns (stdout, stderr).
pub fn browse(chromium: &Path, profile: &Path, args: &[&str], url: &str) -> (String, String) {
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out = profile.join(format!("chromium-{n}.out"));
    let err = profile.join(format!("chromium-{n}.err"));
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            // No network for the page, whatever it asked for.
            "--proxy-server=127.0.0.1:9",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.join("profile").display()
        ))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("chromium starts");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let (o, e) = (
                std::fs::read_to_string(&out).unwrap_or_default(),
                std::fs::read_to_string(&err).unwrap_or_default(),
            );
            assert!(status.success(), "chromium failed ({status}):\n{e}");
            return (o, e);
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
