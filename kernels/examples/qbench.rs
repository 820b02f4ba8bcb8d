//! Time the quantized products ([`seki_kernels::quant`]) on random blocks of
//! Qwen2.5-0.5B's MLP down-projection shape (896 x 4864): one activation row
//! (decoding) and 64 (a prompt), per format, in the build the CPU picks.
//!
//!     RAYON_NUM_THREADS=1 cargo run --release -p seki-kernels --example qbench
//!
//! Q8_0, Q5_0 and Q4_0 are also timed repacked ([`PackedQ8`]) where the CPU has AVX-512
//! VNNI. `SEKI_QBENCH_SHAPE=1536x576` times another shape (rows x columns).
//! `SEKI_QBENCH=portable` times the portable build, `SEKI_QBENCH=avx2` the
//! AVX2 one without AVX-512 VNNI.
use seki_kernels::quant::{PackedQ8, QActs, QMatrix, QType};
use std::time::Instant;

fn main() {
    match std::env::var("SEKI_QBENCH").as_deref() {
        Ok("portable") => seki_kernels::simd::set_baseline_only(true),
        Ok("avx2") => seki_kernels::simd::set_no_avx512(true),
        _ => {}
    }
    let mut s = 1u64;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 33) as u32
    };
    // SEKI_QBENCH_SHAPE=ROWSxCOLS for another weight shape.
    let (rows, cols) = std::env::var("SEKI_QBENCH_SHAPE")
        .ok()
        .and_then(|s| {
            let (r, c) = s.split_once('x')?;
            Some((r.parse().ok()?, c.parse().ok()?))
        })
        .unwrap_or((896usize, 4864usize));
    for t in [
        QType::Q4_0,
        QType::Q4_1,
        QType::Q5_0,
        QType::Q8_0,
        QType::Q4_K,
        QType::Q5_K,
        QType::Q6_K,
    ] {
        // SEKI_QBENCH_TYPES=Q4_1,Q8_0 for some formats only.
        if let Ok(only) = std::env::var("SEKI_QBENCH_TYPES") {
            if !only.split(',').any(|o| o == format!("{t:?}")) {
                continue;
            }
        }
        if cols % t.block_values() != 0 {
            println!("{t:?}: {cols} columns are not whole blocks");
            continue;
        }
        let nb = rows * cols / t.block_values();
        let mut data: Vec<u8> = (0..nb * t.block_bytes()).map(|_| next() as u8).collect();
        // small finite f16 scales: 0x1000 ~ 6e-5
        for b in 0..nb {
            let o = b * t.block_bytes();
            let at = if t == QType::Q6_K { o + 208 } else { o };
            data[at] = 0;
            data[at + 1] = 0x10;
            if matches!(t, QType::Q4_1 | QType::Q4_K | QType::Q5_K) {
                data[o + 2] = 0;
                data[o + 3] = 0x10;
            }
        }
        let m = QMatrix::new(t, rows, cols, &data).unwrap();
        for n in [1usize, 64, 256] {
            let x: Vec<f32> = (0..n * cols)
                .map(|_| (next() % 1000) as f32 / 500.0 - 1.0)
                .collect();
            let acts = QActs::quantize(&x, n, cols).unwrap();
            let mut y = vec![0f32; n * rows];
            let reps = if n == 1 { 400 } else { 640 / n };
            // Seconds per product: one warm-up call, then `reps` timed.
            let time = |f: &mut dyn FnMut()| {
                f();
                let t0 = Instant::now();
                for _ in 0..reps {
                    f();
                }
                t0.elapsed().as_secs_f64() / reps as f64
            };
            let secs = time(&mut || seki_kernels::quant::matmul(&m, &acts, &mut y).unwrap());
            let gops = 2.0 * (rows * cols * n) as f64 / secs / 1e9;
            println!(
                "{t:?} n={n}: {:.3} ms, {gops:.1} GOP/s, {:.1} GB/s weights",
                secs * 1e3,
                data.len() as f64 / secs / 1e9
            );
            // Q8_0, Q5_0 and Q4_0 also in the interleaved layout the
            // engine repacks them to where the CPU has AVX-512 VNNI.
            if PackedQ8::packs(t) && PackedQ8::available() {
                let p = PackedQ8::pack(&m).unwrap();
                let secs = time(&mut || p.matmul(&acts, &mut y).unwrap());
                let gops = 2.0 * (rows * cols * n) as f64 / secs / 1e9;
                println!(
                    "{t:?} packed n={n}: {:.3} ms, {gops:.1} GOP/s, {:.1} GB/s weights",
                    secs * 1e3,
                    p.bytes() as f64 / secs / 1e9
                );
            }
        }
    }
}
