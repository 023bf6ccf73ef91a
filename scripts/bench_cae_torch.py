#!/usr/bin/python3
"""Training-step throughput of the reference autoencoder in PyTorch (CPU,
float32): the peer for scripts/bench/bench_cae.c. Same model (METHOD.md b:
pad-by-8, TF SAME padding written out, radius-8 normalised bottleneck),
same step (forward, MSE, backward, Adam lr 1e-3 eps 1e-7), batch 32.

usage: bench_cae_torch.py H W C [threads=1] [batch=32] [seconds=3]
"""
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def same_pad(k):
    return (k - 2) // 2, (k - 2) - (k - 2) // 2


class CAE(nn.Module):
    def __init__(self, h, w, c, filters=(32, 64, 128, 20), radius=8.0):
        super().__init__()
        f0, f1, f2, d = filters
        dh, dw = 8 - h % 8, 8 - w % 8  # the reference always pads (quirk Q1)
        self.pad = (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2)
        self.h, self.w, self.radius = h, w, radius
        self.hp8, self.wp8 = (h + dh) // 8, (w + dw) // 8
        self.conv1, self.conv2, self.conv3 = nn.Conv2d(c, f0, 5, 2), nn.Conv2d(f0, f1, 5, 2), nn.Conv2d(f1, f2, 3, 2)
        self.dense = nn.Linear(f2 * self.hp8 * self.wp8, d)
        self.dense_1 = nn.Linear(d, f2 * self.hp8 * self.wp8)
        self.deconv3 = nn.ConvTranspose2d(f2, f1, 3, 2)
        self.deconv2 = nn.ConvTranspose2d(f1, f0, 5, 2)
        self.deconv1 = nn.ConvTranspose2d(f0, c, 5, 2)
        self.f2 = f2

    @staticmethod
    def conv(layer, x):
        b, a = same_pad(layer.kernel_size[0])
        return layer(F.pad(x, (b, a, b, a)))

    @staticmethod
    def deconv(layer, x):
        b, _ = same_pad(layer.kernel_size[0])
        y = layer(x)
        return y[:, :, b:b + 2 * x.shape[2], b:b + 2 * x.shape[3]]

    def forward(self, x):
        x = F.pad(x, self.pad)
        x = F.relu(self.conv(self.conv1, x))
        x = F.relu(self.conv(self.conv2, x))
        x = F.relu(self.conv(self.conv3, x))
        u = self.dense(x.flatten(1))
        z = self.radius * F.normalize(u, dim=1, eps=1e-6)
        x = F.relu(self.dense_1(z)).view(-1, self.f2, self.hp8, self.wp8)
        x = F.relu(self.deconv(self.deconv3, x))
        x = F.relu(self.deconv(self.deconv2, x))
        x = self.deconv(self.deconv1, x)
        t, l = self.pad[2], self.pad[0]
        return x[:, :, t:t + self.h, l:l + self.w]


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    h, w, c = (int(a) for a in sys.argv[1:4])
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    batch = int(sys.argv[5]) if len(sys.argv) > 5 else 32
    seconds = float(sys.argv[6]) if len(sys.argv) > 6 else 3.0
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    model = CAE(h, w, c)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    pool = [F.relu(torch.randn(batch, c, h, w)) for _ in range(8)]  # NCHW, PyTorch's native layout

    def step(x):
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(x), x)
        loss.backward()
        opt.step()
        return loss.item()

    for i in range(3):
        step(pool[i])
    steps, t0, c0 = 0, time.perf_counter(), time.process_time()
    while True:
        loss = step(pool[steps % 8])
        steps += 1
        t = time.perf_counter() - t0
        if t >= seconds:
            break
    cpu = time.process_time() - c0
    print("torch  %dx%dx%d batch %d threads %d: %.1f samples/s wall (%.2f ms/step), %.1f samples/cpu-s, "
          "%d steps, loss %.4g" % (h, w, c, batch, threads, steps * batch / t, 1e3 * t / steps,
                                   steps * batch / cpu, steps, loss))


if __name__ == "__main__":
    main()
