//! ReLU and its backward, in parallel chunks.

use rayon::prelude::*;

const CHUNK: usize = 16 * 1024;

/// `max(x, 0)`.
pub fn forward(x: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(o, i)| {
            for (ov, iv) in o.iter_mut().zip(i) {
                *ov = iv.max(0.0);
            }
        });
    out
}

/// `g` where the ReLU output `y` is positive, else 0.
pub fn backward(y: &[f32], g: &[f32]) -> Vec<f32> {
    y.par_iter()
        .zip(g.par_iter())
        .with_min_len(CHUNK)
        .map(|(yv, gv)| if *yv > 0.0 { *gv } else { 0.0 })
        .collect()
}
