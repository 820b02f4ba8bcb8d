//! Child processes that train or score networks (the Candle evaluator's
//! worker, the zero-cost worker, the executors' `seki eval-worker`
//! processes): the environment they start with, and how they ended, in
//! words. Below both the evaluators and the executors, so neither reaches
//! into the other.

/// The environment of a process that trains: `RAYON_NUM_THREADS` when
/// `threads` is above 0, and the settings below unless the caller's
/// environment has them already.
pub fn worker_env(threads: usize) -> Vec<(&'static str, String)> {
    let mut env = Vec::new();
    if threads > 0 {
        env.push(("RAYON_NUM_THREADS", threads.to_string()));
    }
    // Candle's element-wise ops fan out to a spin-waiting thread pool that
    // loses badly to the rayon kernels when cores are shared; run them
    // inline unless told otherwise.
    // Every op allocates its output; keeping freed memory in the heap
    // (instead of returning it to the OS and faulting it in again) saves
    // about a quarter of a training step.
    for (k, v) in [
        ("CANDLE_NUM_THREADS", "1"),
        ("MALLOC_MMAP_THRESHOLD_", "33554432"),
        ("MALLOC_TRIM_THRESHOLD_", "1073741824"),
        ("MALLOC_TOP_PAD_", "268435456"),
    ] {
        if std::env::var_os(k).is_none() {
            env.push((k, v.to_string()));
        }
    }
    env
}

/// How a worker ended, in words: its exit code, or the signal that killed
/// it (SIGKILL is what the kernel's out-of-memory killer sends).
pub fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with code {c}"),
        (None, Some(sig)) => {
            let name = match sig {
                4 => "SIGILL",
                6 => "SIGABRT",
                7 => "SIGBUS",
                8 => "SIGFPE",
                9 => "SIGKILL: out of memory (the kernel's OOM killer) or killed",
                11 => "SIGSEGV",
                15 => "SIGTERM",
                _ => "",
            };
            if name.is_empty() {
                format!("was killed by signal {sig}")
            } else {
                format!("was killed by signal {sig} ({name})")
            }
        }
        (None, None) => format!("ended with {status}"),
    }
}
