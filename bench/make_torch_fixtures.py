"""Regenerate src/eval/candle/ops/fixtures/torch_reference.json with PyTorch.

Inputs are closed-form (so the Rust tests rebuild them without storing them):
x[i] = sin(0.37 i + 0.1), w[i] = cos(0.53 i), loss = sum(y * p), p[i] = sin(0.11 i + 0.3).
Run: python3 bench/make_torch_fixtures.py (needs torch).
"""
import json, math, sys
import torch
import torch.nn.functional as F

def filled(shape, f):
    n = 1
    for d in shape:
        n *= d
    return torch.tensor([f(i) for i in range(n)], dtype=torch.float64).reshape(shape)

X = lambda i: math.sin(0.37 * i + 0.1)
W = lambda i: math.cos(0.53 * i)
P = lambda i: math.sin(0.11 * i + 0.3)

def flat(t):
    return [round(v, 7) for v in t.detach().reshape(-1).tolist()]

cases = []
xs = [2, 3, 7, 6]
for k, s, p, d in [(3, 1, 1, 1), (3, 2, 1, 1), (5, 1, 2, 1), (5, 2, 2, 1), (3, 1, 2, 2), (5, 1, 4, 2), (3, 2, 2, 2)]:
    x = filled(xs, X).requires_grad_()
    w = filled([3, 1, k, k], W).requires_grad_()
    y = F.conv2d(x, w, stride=s, padding=p, dilation=d, groups=3)
    (y * filled(list(y.shape), P)).sum().backward()
    cases.append(dict(op="depthwise", x_shape=xs, k=k, stride=s, pad=p, dilation=d,
                      y_shape=list(y.shape), y=flat(y), dx=flat(x.grad), dw=flat(w.grad)))
ps = [2, 2, 7, 8]
for kind in ["max", "avg"]:
    for k, s, p in [(3, 1, 1), (3, 2, 1), (2, 2, 0), (5, 3, 0)]:
        x = filled(ps, X).requires_grad_()
        if kind == "max":
            y = F.max_pool2d(x, k, s, p)
        else:
            y = F.avg_pool2d(x, k, s, p, count_include_pad=False)
        (y * filled(list(y.shape), P)).sum().backward()
        cases.append(dict(op=kind + "_pool", x_shape=ps, k=k, stride=s, pad=p,
                          y_shape=list(y.shape), y=flat(y), dx=flat(x.grad)))
bs = [3, 2, 4, 5]
x = filled(bs, X).requires_grad_()
g = filled([2], lambda i: 1.0 + 0.5 * W(i)).requires_grad_()
b = filled([2], lambda i: 0.2 * X(i)).requires_grad_()
y = F.batch_norm(x, None, None, g, b, training=True, eps=1e-5)
(y * filled(bs, P)).sum().backward()
cases.append(dict(op="batch_norm", x_shape=bs, y_shape=bs, y=flat(y), dx=flat(x.grad),
                  dgamma=flat(g.grad), dbeta=flat(b.grad)))
# FactorizedReduce in training mode (DARTS's module: ReLU, two stride-2 1x1
# convolutions, the second on the input shifted by one pixel, cat, BN).
fs = [2, 4, 8, 6]
x = filled(fs, X).requires_grad_()
w1 = filled([3, 4, 1, 1], W).requires_grad_()
w2 = filled([3, 4, 1, 1], lambda i: W(i + 12)).requires_grad_()
g = filled([6], lambda i: 1.0 + 0.5 * W(i)).requires_grad_()
b = filled([6], lambda i: 0.2 * X(i)).requires_grad_()
r = F.relu(x)
y = torch.cat([F.conv2d(r, w1, stride=2), F.conv2d(r[:, :, 1:, 1:], w2, stride=2)], dim=1)
y = F.batch_norm(y, None, None, g, b, training=True, eps=1e-5)
(y * filled(list(y.shape), P)).sum().backward()
cases.append(dict(op="factorized_reduce", x_shape=fs, y_shape=list(y.shape), y=flat(y),
                  dx=flat(x.grad), dw1=flat(w1.grad), dw2=flat(w2.grad),
                  dgamma=flat(g.grad), dbeta=flat(b.grad)))
# A DARTS node: sep_conv_3x3 (ReLU, depthwise, pointwise, BN, twice) plus
# the node's other input, in training mode.
ss = [2, 3, 6, 5]
x = filled(ss, X).requires_grad_()
ps = [filled([3, 1, 3, 3], lambda i, o=o: W(i + o)).requires_grad_() if j % 2 == 0
      else filled([3, 3, 1, 1], lambda i, o=o: W(i + o)).requires_grad_()
      for j, o in enumerate([0, 27, 40, 70])]
bn = [(filled([3], lambda i, o=o: 1.0 + 0.5 * W(i + o)).requires_grad_(),
       filled([3], lambda i, o=o: 0.2 * X(i + o)).requires_grad_()) for o in [0, 5]]
res = filled(ss, lambda i: X(i + 100)).requires_grad_()
y = x
for j in range(2):
    y = F.conv2d(F.relu(y), ps[2 * j], padding=1, groups=3)
    y = F.conv2d(y, ps[2 * j + 1])
    y = F.batch_norm(y, None, None, bn[j][0], bn[j][1], training=True, eps=1e-5)
y = y + res
(y * filled(list(y.shape), P)).sum().backward()
cases.append(dict(op="sep_conv_sum", x_shape=ss, y_shape=list(y.shape), y=flat(y),
                  dx=flat(x.grad), dres=flat(res.grad), dparams=[flat(p.grad) for p in ps],
                  dbn=[[flat(g.grad), flat(b.grad)] for g, b in bn]))
json.dump(dict(torch=torch.__version__, cases=cases), sys.stdout, separators=(",", ":"))
