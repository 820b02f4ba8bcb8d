//! Builds `cuda/seki_ops.cu`: to PTX with nvcc (feature `cuda`), and as
//! plain C++ for the host (feature `host-emulation`, used by the tests).

use std::env;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

const SOURCE: &str = "cuda/seki_ops.cu";

fn main() {
    println!("cargo::rerun-if-changed={SOURCE}");
    println!("cargo::rerun-if-changed=cuda/host_emulation.cpp");
    println!("cargo::rerun-if-changed=build.rs");
    let out = match env::var_os("OUT_DIR") {
        Some(d) => PathBuf::from(d),
        None => fail("OUT_DIR is not set (run through cargo)"),
    };
    if env::var_os("CARGO_FEATURE_CUDA").is_some() {
        ptx(&out);
    }
    if env::var_os("CARGO_FEATURE_HOST_EMULATION").is_some() {
        host(&out);
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("seki-kernels build: {msg}");
    exit(1)
}

/// nvcc: `$NVCC`, else `bin/nvcc` under `$CUDA_HOME`/`$CUDA_PATH`/`$CUDA_ROOT`,
/// else the one on `PATH`.
fn nvcc() -> PathBuf {
    for v in ["NVCC", "CUDA_HOME", "CUDA_PATH", "CUDA_ROOT"] {
        println!("cargo::rerun-if-env-changed={v}");
    }
    println!("cargo::rerun-if-env-changed=CUDA_COMPUTE_CAP");
    if let Some(p) = env::var_os("NVCC") {
        return PathBuf::from(p);
    }
    for v in ["CUDA_HOME", "CUDA_PATH", "CUDA_ROOT"] {
        if let Some(root) = env::var_os(v) {
            let p = Path::new(&root).join("bin").join("nvcc");
            if p.exists() {
                return p;
            }
        }
    }
    PathBuf::from("nvcc")
}

fn ptx(out: &Path) {
    let dest = out.join("seki_ops.ptx");
    let mut cmd = Command::new(nvcc());
    cmd.args(["--ptx", "-O3", "-std=c++17", "-o"])
        .arg(&dest)
        .arg(SOURCE);
    // PTX for the named compute capability (e.g. 90 for H100/H200); without
    // one, nvcc's default virtual architecture, which newer GPUs JIT-compile.
    if let Ok(cap) = env::var("CUDA_COMPUTE_CAP") {
        let cap = cap.trim().replace('.', "");
        if cap.is_empty() || !cap.chars().all(|c| c.is_ascii_digit()) {
            fail(&format!(
                "CUDA_COMPUTE_CAP={cap:?}: expected a compute capability such as 90 or 8.6"
            ));
        }
        cmd.arg(format!("-arch=compute_{cap}"));
    }
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => fail(&format!("nvcc failed on {SOURCE} ({s}); command: {cmd:?}")),
        Err(e) => fail(&format!(
            "cannot run nvcc ({e}): install the CUDA toolkit, or set NVCC or CUDA_HOME \
             (scripts/cuda-toolkit.sh fetches one from PyPI); command: {cmd:?}"
        )),
    }
}

#[cfg(feature = "host-emulation")]
fn host(_out: &Path) {
    cc::Build::new()
        .cpp(true)
        .file("cuda/host_emulation.cpp")
        .opt_level(2)
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .compile("seki_cuda_host");
}

#[cfg(not(feature = "host-emulation"))]
fn host(_out: &Path) {}
