// CUDA kernels of seki's candle evaluator: the GPU counterparts of the CPU
// kernels in ../src (depthwise convolution, padded pooling, im2col/col2im,
// ReLU), forward and backward, on contiguous f32 NCHW buffers.
//
// Every kernel is a grid-stride loop with one thread per output element and
// no shared memory or barriers, so the same file also compiles as plain C++
// (`host_emulation.cpp`), where the loop runs serially: the tests run that
// build against the CPU kernels, which checks every index computation here
// on machines without a GPU. Gradients are gathers (each thread sums what
// flows into its element) except the depthwise weight gradient, which sums
// per (channel, tap, sample) and adds atomically.
//
// Semantics follow the CPU kernels exactly: ReLU maps NaN to 0 (Rust's
// f32::max), a max pool takes the first maximum of its window in row-major
// order (the first NaN wins), an average pool divides by the in-bounds cell
// count (count_include_pad = False).

#if defined(__CUDACC__)
#define SEKI_KERNEL extern "C" __global__
#define SEKI_FOR(i, total)                                                      \
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;          \
       i < (total); i += (long long)blockDim.x * gridDim.x)
#define SEKI_ATOMIC_ADD(p, v) atomicAdd((p), (v))
#define SEKI_ISNAN(v) isnan(v)
#define SEKI_DEVICE static __device__ __forceinline__
#else
#include <cmath>
#define SEKI_KERNEL extern "C"
#define SEKI_FOR(i, total) for (long long i = 0; i < (total); ++i)
#define SEKI_ATOMIC_ADD(p, v) (*(p) += (v))
#define SEKI_ISNAN(v) std::isnan(v)
#define SEKI_DEVICE static inline
#endif

// Geometry, passed by value (the same layout as `ConvArgs` and `PoolArgs`
// in ../src/cuda.rs): input [n, c, h, w], output [n, c, oh, ow], a k x k
// window with stride, zero padding and dilation; `relu` applies ReLU to the
// input first (depthwise kernels only).
struct SekiConv {
  int n, c, h, w, oh, ow, k, stride, pad, dil, relu;
};
// planes = n * c planes of h x w pooled to oh x ow.
struct SekiPool {
  int planes, h, w, oh, ow, k, stride, pad, is_max;
};

// max(v, 0) with NaN -> 0, as Rust's f32::max(v, 0.0).
SEKI_DEVICE float seki_relu(float v) {
  return v > 0.f ? v : 0.f;
}

// The output position o that reads input position i through a tap at
// offset `off` (o * stride + off = i), or -1 when there is none in 0..out.
SEKI_DEVICE int seki_tap_source(int i, int off, int stride, int out) {
  int t = i - off;
  if (t < 0 || t % stride != 0) return -1;
  int o = t / stride;
  return o < out ? o : -1;
}

// ---------------------------------------------------------------- depthwise

// y[b, ch, oy, ox] = sum_{ki, kj} w[ch, ki, kj] * act(x[b, ch, oy*s + ki*d - p, ox*s + kj*d - p])
SEKI_KERNEL void seki_dw_fwd(const float* x, const float* wt, float* y, SekiConv geo) {
  const int n = geo.n, c = geo.c, h = geo.h, w = geo.w, oh = geo.oh, ow = geo.ow;
  const int k = geo.k, stride = geo.stride, pad = geo.pad, dil = geo.dil, relu = geo.relu;
  long long total = (long long)n * c * oh * ow;
  SEKI_FOR(i, total) {
    int ox = (int)(i % ow);
    long long t = i / ow;
    int oy = (int)(t % oh);
    long long plane = t / oh;
    int ch = (int)(plane % c);
    const float* xp = x + plane * h * w;
    const float* kw = wt + (long long)ch * k * k;
    float s = 0.f;
    for (int ki = 0; ki < k; ++ki) {
      int iy = oy * stride + ki * dil - pad;
      if (iy < 0 || iy >= h) continue;
      for (int kj = 0; kj < k; ++kj) {
        int ix = ox * stride + kj * dil - pad;
        if (ix < 0 || ix >= w) continue;
        float v = xp[(long long)iy * w + ix];
        if (relu) v = seki_relu(v);
        s += kw[ki * k + kj] * v;
      }
    }
    y[i] = s;
  }
}

// dx[b, ch, iy, ix] = sum over the taps that read (iy, ix) of w * g, masked
// by the fused ReLU (x <= 0 gets no gradient).
SEKI_KERNEL void seki_dw_bwd_input(const float* x, const float* wt,
                                   const float* g, float* dx, SekiConv geo) {
  const int n = geo.n, c = geo.c, h = geo.h, w = geo.w, oh = geo.oh, ow = geo.ow;
  const int k = geo.k, stride = geo.stride, pad = geo.pad, dil = geo.dil, relu = geo.relu;
  long long total = (long long)n * c * h * w;
  SEKI_FOR(i, total) {
    int ix = (int)(i % w);
    long long t = i / w;
    int iy = (int)(t % h);
    long long plane = t / h;
    int ch = (int)(plane % c);
    const float* gp = g + plane * oh * ow;
    const float* kw = wt + (long long)ch * k * k;
    float s = 0.f;
    for (int ki = 0; ki < k; ++ki) {
      int oy = seki_tap_source(iy, ki * dil - pad, stride, oh);
      if (oy < 0) continue;
      for (int kj = 0; kj < k; ++kj) {
        int ox = seki_tap_source(ix, kj * dil - pad, stride, ow);
        if (ox < 0) continue;
        s += kw[ki * k + kj] * gp[(long long)oy * ow + ox];
      }
    }
    if (relu && x[i] <= 0.f) s = 0.f;
    dx[i] = s;
  }
}

// dw[ch, ki, kj] += sum_{oy, ox} g[b, ch, oy, ox] * act(x[b, ch, iy, ix]),
// one thread per (ch, tap, b); `dw` must be zeroed.
SEKI_KERNEL void seki_dw_bwd_weight(const float* x, const float* g, float* dw, SekiConv geo) {
  const int n = geo.n, c = geo.c, h = geo.h, w = geo.w, oh = geo.oh, ow = geo.ow;
  const int k = geo.k, stride = geo.stride, pad = geo.pad, dil = geo.dil, relu = geo.relu;
  int kk = k * k;
  long long total = (long long)c * kk * n;
  SEKI_FOR(i, total) {
    int b = (int)(i % n);
    long long t = i / n;
    int tap = (int)(t % kk);
    int ch = (int)(t / kk);
    int ki = tap / k, kj = tap % k;
    long long plane = (long long)b * c + ch;
    const float* xp = x + plane * h * w;
    const float* gp = g + plane * oh * ow;
    float s = 0.f;
    for (int oy = 0; oy < oh; ++oy) {
      int iy = oy * stride + ki * dil - pad;
      if (iy < 0 || iy >= h) continue;
      for (int ox = 0; ox < ow; ++ox) {
        int ix = ox * stride + kj * dil - pad;
        if (ix < 0 || ix >= w) continue;
        float v = xp[(long long)iy * w + ix];
        if (relu) v = seki_relu(v);
        s += gp[(long long)oy * ow + ox] * v;
      }
    }
    SEKI_ATOMIC_ADD(dw + (long long)ch * kk + tap, s);
  }
}

// ------------------------------------------------------------------ pooling

// The in-bounds window [lo, hi) of output position o along an axis of size n.
SEKI_DEVICE void seki_window(int o, int stride, int pad, int k, int n,
                               int* lo, int* hi) {
  int start = o * stride - pad;
  int a = start > 0 ? start : 0;
  int b = start + k;
  if (b < 0) b = 0;
  if (b > n) b = n;
  if (b < a) b = a;
  *lo = a;
  *hi = b;
}

// The flat index (within the plane) of the first maximum of the window.
SEKI_DEVICE int seki_window_argmax(const float* xp, int w, int y0, int y1,
                                     int x0, int x1) {
  int best = -1;
  float m = -INFINITY;
  for (int iy = y0; iy < y1; ++iy) {
    for (int ix = x0; ix < x1; ++ix) {
      float v = xp[(long long)iy * w + ix];
      if (best < 0 || v > m || (SEKI_ISNAN(v) && !SEKI_ISNAN(m))) {
        m = v;
        best = iy * w + ix;
      }
    }
  }
  return best;
}

// Max (is_max != 0) or average pooling of every plane.
SEKI_KERNEL void seki_pool_fwd(const float* x, float* y, SekiPool geo) {
  const int planes = geo.planes, h = geo.h, w = geo.w, oh = geo.oh, ow = geo.ow;
  const int k = geo.k, stride = geo.stride, pad = geo.pad, is_max = geo.is_max;
  long long total = (long long)planes * oh * ow;
  SEKI_FOR(i, total) {
    int ox = (int)(i % ow);
    long long t = i / ow;
    int oy = (int)(t % oh);
    long long plane = t / oh;
    const float* xp = x + plane * h * w;
    int y0, y1, x0, x1;
    seki_window(oy, stride, pad, k, h, &y0, &y1);
    seki_window(ox, stride, pad, k, w, &x0, &x1);
    float r;
    if (is_max) {
      r = -INFINITY;
      for (int iy = y0; iy < y1; ++iy)
        for (int ix = x0; ix < x1; ++ix) {
          float v = xp[(long long)iy * w + ix];
          if (v > r || SEKI_ISNAN(v)) r = v;
        }
    } else {
      float s = 0.f;
      for (int iy = y0; iy < y1; ++iy) {
        float row = 0.f;
        for (int ix = x0; ix < x1; ++ix) row += xp[(long long)iy * w + ix];
        s += row;
      }
      int count = (y1 - y0) * (x1 - x0);
      r = s / (float)(count > 0 ? count : 1);
    }
    y[i] = r;
  }
}

// dx of a pooling: every output window that covers (iy, ix) contributes
// its gradient (max: only if (iy, ix) is that window's first maximum;
// average: divided by the window's cell count).
SEKI_KERNEL void seki_pool_bwd(const float* x, const float* g, float* dx, SekiPool geo) {
  const int planes = geo.planes, h = geo.h, w = geo.w, oh = geo.oh, ow = geo.ow;
  const int k = geo.k, stride = geo.stride, pad = geo.pad, is_max = geo.is_max;
  long long total = (long long)planes * h * w;
  SEKI_FOR(i, total) {
    int ix = (int)(i % w);
    long long t = i / w;
    int iy = (int)(t % h);
    long long plane = t / h;
    const float* xp = x + plane * h * w;
    const float* gp = g + plane * oh * ow;
    // Outputs o with o * stride - pad <= i < o * stride - pad + k.
    int ly = iy + pad - k + 1, lx = ix + pad - k + 1;
    int oy0 = ly <= 0 ? 0 : (ly + stride - 1) / stride;
    int ox0 = lx <= 0 ? 0 : (lx + stride - 1) / stride;
    int oy1 = (iy + pad) / stride, ox1 = (ix + pad) / stride;
    if (oy1 > oh - 1) oy1 = oh - 1;
    if (ox1 > ow - 1) ox1 = ow - 1;
    float s = 0.f;
    for (int oy = oy0; oy <= oy1; ++oy) {
      int y0, y1;
      seki_window(oy, stride, pad, k, h, &y0, &y1);
      for (int ox = ox0; ox <= ox1; ++ox) {
        int x0, x1;
        seki_window(ox, stride, pad, k, w, &x0, &x1);
        float gv = gp[(long long)oy * ow + ox];
        if (is_max) {
          if (seki_window_argmax(xp, w, y0, y1, x0, x1) == iy * w + ix) s += gv;
        } else {
          int count = (y1 - y0) * (x1 - x0);
          s += gv / (float)(count > 0 ? count : 1);
        }
      }
    }
    dx[i] = s;
  }
}

// ----------------------------------------------------------- im2col, col2im

// cols[b, ch*k*k + ki*k + kj, oy*ow + ox] = x[b, ch, oy*s + ki*d - p, ox*s + kj*d - p] (0 outside).
SEKI_KERNEL void seki_im2col(const float* x, float* cols, SekiConv geo) {
  const int n = geo.n, c = geo.c, h = geo.h, w = geo.w, oh = geo.oh, ow = geo.ow;
  const int k = geo.k, stride = geo.stride, pad = geo.pad, dil = geo.dil;
  int kk = k * k;
  long long rows = (long long)oh * ow;
  long long total = (long long)n * c * kk * rows;
  SEKI_FOR(i, total) {
    long long pos = i % rows;
    long long t = i / rows;
    int tap = (int)(t % kk);
    long long plane = t / kk;
    int oy = (int)(pos / ow), ox = (int)(pos % ow);
    int iy = oy * stride + (tap / k) * dil - pad;
    int ix = ox * stride + (tap % k) * dil - pad;
    float v = 0.f;
    if (iy >= 0 && iy < h && ix >= 0 && ix < w) v = x[plane * h * w + (long long)iy * w + ix];
    cols[i] = v;
  }
}

// The adjoint of seki_im2col: x[b, ch, iy, ix] = sum of the columns that read it.
SEKI_KERNEL void seki_col2im(const float* cols, float* x, SekiConv geo) {
  const int n = geo.n, c = geo.c, h = geo.h, w = geo.w, oh = geo.oh, ow = geo.ow;
  const int k = geo.k, stride = geo.stride, pad = geo.pad, dil = geo.dil;
  int kk = k * k;
  long long rows = (long long)oh * ow;
  long long total = (long long)n * c * h * w;
  SEKI_FOR(i, total) {
    int ix = (int)(i % w);
    long long t = i / w;
    int iy = (int)(t % h);
    long long plane = t / h;
    const float* cp = cols + plane * kk * rows;
    float s = 0.f;
    for (int ki = 0; ki < k; ++ki) {
      int oy = seki_tap_source(iy, ki * dil - pad, stride, oh);
      if (oy < 0) continue;
      for (int kj = 0; kj < k; ++kj) {
        int ox = seki_tap_source(ix, kj * dil - pad, stride, ow);
        if (ox < 0) continue;
        s += cp[(long long)(ki * k + kj) * rows + (long long)oy * ow + ox];
      }
    }
    x[i] = s;
  }
}

// --------------------------------------------------------------------- ReLU

SEKI_KERNEL void seki_relu_fwd(const float* x, float* y, long long len) {
  SEKI_FOR(i, len) { y[i] = seki_relu(x[i]); }
}

// dx = g where the ReLU output y is positive, else 0.
SEKI_KERNEL void seki_relu_bwd(const float* y, const float* g, float* dx,
                               long long len) {
  SEKI_FOR(i, len) { dx[i] = y[i] > 0.f ? g[i] : 0.f; }
}
