"""PyTorch side of bench/train-vs-pytorch.sh: the DARTS proxy network (same
genotype, cells, channels, batch and input as `seki bench-train`), trained
with SGD on random data on the CPU, NCHW and channels_last. Prints one JSON
line with images/s. Written for this benchmark from the DARTS paper's
description of the network."""
import json, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
CELLS, C, BATCH, SIZE, WARMUP = 6, 16, 64, 32, 3
STEPS = int(sys.argv[2]) if len(sys.argv) > 2 else 20

NORMAL = [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
          ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)]
REDUCE = [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
          ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)]


def rcb(cin, cout, k, s, p):
    return nn.Sequential(nn.ReLU(), nn.Conv2d(cin, cout, k, s, p, bias=False), nn.BatchNorm2d(cout))


def dw_block(c, k, s, p, d):
    return nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, k, s, p, dilation=d, groups=c, bias=False),
                         nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c))


class Reduce(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.a = nn.Conv2d(cin, cout // 2, 1, 2, bias=False)
        self.b = nn.Conv2d(cin, cout - cout // 2, 1, 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        x = F.relu(x)
        return self.bn(torch.cat([self.a(x), self.b(x[:, :, 1:, 1:])], 1))


def make_op(name, c, s):
    if name == "sep_conv_3x3":
        return nn.Sequential(dw_block(c, 3, s, 1, 1), dw_block(c, 3, 1, 1, 1))
    if name == "dil_conv_3x3":
        return dw_block(c, 3, s, 2, 2)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, s, 1)
    if name == "skip_connect":
        return nn.Identity() if s == 1 else Reduce(c, c)
    raise ValueError(name)


class Cell(nn.Module):
    def __init__(self, genes, cpp, cp, c, red, red_prev):
        super().__init__()
        self.pre0 = Reduce(cpp, c) if red_prev else rcb(cpp, c, 1, 1, 0)
        self.pre1 = rcb(cp, c, 1, 1, 0)
        self.ops = nn.ModuleList([make_op(n, c, 2 if red and i < 2 else 1) for n, i in genes])
        self.idx = [i for _, i in genes]

    def forward(self, s0, s1):
        st = [self.pre0(s0), self.pre1(s1)]
        for n in range(4):
            st.append(self.ops[2 * n](st[self.idx[2 * n]]) + self.ops[2 * n + 1](st[self.idx[2 * n + 1]]))
        return torch.cat(st[2:], 1)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        cs = 3 * C
        self.stem = nn.Sequential(nn.Conv2d(3, cs, 3, padding=1, bias=False), nn.BatchNorm2d(cs))
        cpp, cp, c, rp = cs, cs, C, False
        self.cells = nn.ModuleList()
        for i in range(CELLS):
            red = i in (CELLS // 3, 2 * CELLS // 3)
            if red:
                c *= 2
            self.cells.append(Cell(REDUCE if red else NORMAL, cpp, cp, c, red, rp))
            rp, cpp, cp = red, cp, 4 * c
        self.fc = nn.Linear(cp, 10)

    def forward(self, x):
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.fc(F.adaptive_avg_pool2d(s1, 1).flatten(1))


def run(fmt):
    torch.manual_seed(0)
    net = Net().to(memory_format=fmt)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=3e-4)
    x = torch.rand(BATCH, 3, SIZE, SIZE).contiguous(memory_format=fmt)
    y = torch.arange(BATCH) % 10
    net.train()
    for i in range(WARMUP + STEPS):
        if i == WARMUP:
            t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
    train = STEPS * BATCH / (time.perf_counter() - t)
    net.eval()
    with torch.no_grad():
        for i in range(WARMUP + STEPS):
            if i == WARMUP:
                t = time.perf_counter()
            net(x).sum().item()
    infer = STEPS * BATCH / (time.perf_counter() - t)
    return train, infer, sum(p.numel() for p in net.parameters())


a = run(torch.contiguous_format)
b = run(torch.channels_last)
print(json.dumps(dict(torch=torch.__version__, threads=torch.get_num_threads(), params=a[2],
                      train_nchw=a[0], infer_nchw=a[1], train_channels_last=b[0], infer_channels_last=b[1])))
