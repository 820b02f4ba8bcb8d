//! Re-quantizing 4/5-bit GGUF weights to Q8_0 at load, cached on disk.
//!
//! Candle's CPU kernels for Q4_1 (the default model's format) have no SIMD
//! dot product, while Q8_0's do; re-quantized, the matmuls run several times
//! faster for a file about twice the size. The result is written once next
//! to the model (or into the profile's `cache_dir`) as
//! `<name>.q8_0.gguf`, tagged with the source file's size and modification
//! time so that a changed source is re-quantized again.

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::Device;
use std::path::{Path, PathBuf};

const SOURCE_KEY: &str = "seki.requantized_from";

/// Formats worth re-quantizing.
fn slow(dtype: GgmlDType) -> bool {
    matches!(
        dtype,
        GgmlDType::Q4_0 | GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1
    )
}

fn signature(src: &Path) -> std::io::Result<String> {
    let m = std::fs::metadata(src)?;
    let mtime = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let name = src
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(format!("{name} size={} mtime={mtime}", m.len()))
}

/// The cache file for `src`.
pub fn cache_path(src: &Path, cache_dir: Option<&Path>) -> PathBuf {
    let dir = cache_dir
        .map(Path::to_path_buf)
        .or_else(|| src.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let stem = src
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    dir.join(format!("{stem}.q8_0.gguf"))
}

/// Whether `cached` was made from `src` as it is now.
fn fresh(cached: &Path, src: &Path) -> bool {
    let Ok(sig) = signature(src) else {
        return false;
    };
    let Ok(mut f) = std::fs::File::open(cached) else {
        return false;
    };
    match gguf_file::Content::read(&mut f) {
        Ok(c) => c
            .metadata
            .get(SOURCE_KEY)
            .and_then(|v| v.to_string().ok())
            .is_some_and(|s| *s == sig),
        Err(_) => false,
    }
}

/// The file to load: `src` itself when it has no 4/5-bit weights, else its
/// Q8_0 copy (made now when missing or stale). Returns the path and whether
/// it was (re)made.
pub fn requantized(
    src: &Path,
    content: &gguf_file::Content,
    cache_dir: Option<&Path>,
) -> Result<(PathBuf, bool), String> {
    if !content.tensor_infos.values().any(|t| slow(t.ggml_dtype)) {
        return Ok((src.to_path_buf(), false));
    }
    let out = cache_path(src, cache_dir);
    if fresh(&out, src) {
        return Ok((out, false));
    }
    let sig = signature(src).map_err(|e| format!("{}: {e}", src.display()))?;
    let mut reader = std::fs::File::open(src).map_err(|e| format!("{}: {e}", src.display()))?;
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let mut tensors: Vec<(String, QTensor)> = Vec::with_capacity(names.len());
    for name in names {
        let t = content
            .tensor(&mut reader, name, &Device::Cpu)
            .map_err(|e| format!("tensor {name}: {e}"))?;
        let dims = t.shape().dims().to_vec();
        let convertible = slow(t.dtype())
            && dims
                .last()
                .is_some_and(|d| d % GgmlDType::Q8_0.block_size() == 0);
        let t = if convertible {
            let f = t
                .dequantize(&Device::Cpu)
                .map_err(|e| format!("tensor {name}: {e}"))?;
            QTensor::quantize(&f, GgmlDType::Q8_0).map_err(|e| format!("tensor {name}: {e}"))?
        } else {
            t
        };
        tensors.push((name.clone(), t));
    }
    let mut meta: Vec<(String, gguf_file::Value)> = content
        .metadata
        .iter()
        .filter(|(k, _)| k.as_str() != SOURCE_KEY)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    meta.push((SOURCE_KEY.to_string(), gguf_file::Value::String(sig)));
    meta.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = out.with_extension(format!("tmp{}-{n}", std::process::id()));
    let write = || -> Result<(), String> {
        let f = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        let mut w = std::io::BufWriter::new(f);
        let m: Vec<(&str, &gguf_file::Value)> = meta.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let t: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
        gguf_file::write(&mut w, &m, &t).map_err(|e| format!("{}: {e}", tmp.display()))?;
        let f = w
            .into_inner()
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        f.sync_all()
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &out).map_err(|e| format!("{}: {e}", out.display()))
    };
    let r = write();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r.map(|()| (out, true))
}
