# numerics.py: one layer's matrix product (768 outputs x 3072 inputs, 64 rows,
# Gaussian weights and activations), the RMS error of int8 numerics against
# float64, relative to ggml's Q8_0 arithmetic (weights in Q8_0 blocks of 32
# with an FP16 scale, activations quantized per row and block of 32). The
# question it answers: what the fold-free numerics (one scale per output
# column of the weights, one per activation row, as ONNX Runtime's int8
# MatMul uses) and the cheaper folds would cost in error, with and without
# outlier channels in the activations. Run with Debian's python3-numpy:
#   /usr/bin/python3 bench/ort-error/numerics.py
import numpy as np

rng = np.random.default_rng(1)
N, K, M = 768, 3072, 64
W = rng.standard_normal((N, K)) * 0.02
X = rng.standard_normal((M, K))


def blocks(a, g, fp16=False):
    s = a.reshape(*a.shape[:-1], -1, g)
    d = np.abs(s).max(-1, keepdims=True) / 127
    if fp16:
        d = d.astype(np.float16).astype(np.float64)
    return (np.round(s / np.where(d == 0, 1, d)) * d).reshape(a.shape)


def q8_0(a):
    return blocks(a, 32, fp16=True)


def per_row(a):
    return blocks(a, a.shape[-1])


def report(X, label):
    ref = X @ W.T
    Wq = q8_0(W)
    e = lambda Y: np.sqrt(((Y - ref) ** 2).mean())
    base = e(q8_0(X) @ Wq.T)
    print(f"{label}: ggml's Q8_0 arithmetic, RMS error {base:.3e}; relative to it:")
    print(f"  activations per row, the file's weight blocks:          {e(per_row(X) @ Wq.T) / base:.2f}x")
    print(f"  activations per row, weights per column (from Q8_0):     {e(per_row(X) @ per_row(Wq).T) / base:.2f}x")
    print(f"  activations per block, weights per column (from Q8_0):   {e(q8_0(X) @ per_row(Wq).T) / base:.2f}x")
    print(f"  activations per row, weights per column (from F32):      {e(per_row(X) @ per_row(W).T) / base:.2f}x")
    for g in (64, 128):
        print(f"  activations and weights (from Q8_0) in groups of {g}:    {e(blocks(X, g) @ blocks(Wq, g).T) / base:.2f}x")


report(X, "Gaussian activations")
Xo = X.copy()
Xo[:, [77, 588, 1200]] *= 20
report(Xo, "three outlier channels x20")
