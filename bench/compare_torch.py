#!/usr/bin/env python3
"""compare_torch.py - seqk against PyTorch in the same process, on the same GPU and tensors.

Calls libseqk.so through ctypes on torch-allocated CUDA tensors (no copies: seqk descriptors point
at torch's memory, seqk runs on torch's current stream) and times, each validated first:

  softmax            seqk_softmax            vs torch.softmax
  attention          seqk_attention (AUTO)   vs F.scaled_dot_product_attention, every backend
                                               that accepts the case (flash, efficient, cuDNN, math)
  mha                seqk_mha_forward        vs nn.MultiheadAttention (batch_first)
  lstm / gru         seqk_rnn_forward        vs nn.LSTM / nn.GRU (cuDNN)
  layer_norm         seqk_layer_norm         vs F.layer_norm (and with the residual add)
  rms_norm           seqk_rms_norm           vs F.rms_norm
  gelu / swiglu      seqk_activate / seqk_gated_activate  vs F.gelu / F.silu(g) * u
  linear_ex          seqk_linear_ex (GELU)   vs F.gelu(F.linear(...))
  encoder_layer      seqk_transformer_encoder_layer_forward  vs nn.TransformerEncoderLayer

Timing: CUDA events, warm-up, median of --repeats, L2 flushed before each run. A seqk op that
answers SEQK_STATUS_NOT_SUPPORTED (no kernel serves the shape) is listed as n/a.

  python3 bench/compare_torch.py [--lib build/libseqk.so] [--filter TEXT] [--repeats N] [--csv F]
  python3 bench/compare_torch.py --smoke    # no torch, no GPU: checks the ctypes bindings on
                                            # CPU tensors (struct layout, status codes)
"""
import argparse
import array
import ctypes
import math
import os
import statistics
import sys

# ---- the C API, as in include/seqk.h --------------------------------------------------------------
MAX_DIMS = 6
F32, F16, BF16, I32 = 0, 1, 2, 3
CPU, CUDA = 0, 1
SUCCESS, INVALID_VALUE, NOT_SUPPORTED = 0, 1, 2
ALGO_AUTO, ALGO_FUSED, ALGO_UNFUSED = 0, 1, 2
MODE_TANH, MODE_RELU, MODE_LSTM, MODE_GRU = 0, 1, 2, 3


class Tensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("dtype", ctypes.c_int), ("device", ctypes.c_int),
                ("ndim", ctypes.c_int32), ("shape", ctypes.c_int64 * MAX_DIMS),
                ("stride", ctypes.c_int64 * MAX_DIMS)]


class AttentionParams(ctypes.Structure):
    _fields_ = [("scale", ctypes.c_float), ("causal", ctypes.c_int32), ("algo", ctypes.c_int),
                ("seqlens_q", ctypes.c_void_p), ("seqlens_k", ctypes.c_void_p),
                ("window", ctypes.c_int32), ("window_left", ctypes.c_int32),
                ("window_right", ctypes.c_int32), ("softcap", ctypes.c_float),
                ("alibi_slopes", ctypes.c_void_p)]


class MhaWeights(ctypes.Structure):
    _fields_ = [("in_proj_weight", Tensor), ("in_proj_bias", Tensor),
                ("out_proj_weight", Tensor), ("out_proj_bias", Tensor)]


class RnnDesc(ctypes.Structure):
    _fields_ = [("mode", ctypes.c_int), ("input_size", ctypes.c_int32),
                ("hidden_size", ctypes.c_int32), ("num_layers", ctypes.c_int32),
                ("bidirectional", ctypes.c_int32), ("batch_first", ctypes.c_int32)]


class RnnWeights(ctypes.Structure):
    _fields_ = [("w_ih", ctypes.POINTER(Tensor)), ("w_hh", ctypes.POINTER(Tensor)),
                ("b_ih", ctypes.POINTER(Tensor)), ("b_hh", ctypes.POINTER(Tensor))]


ACT_NONE, ACT_RELU, ACT_GELU, ACT_GELU_TANH, ACT_SILU = 0, 1, 2, 3, 4


class EncoderLayerWeights(ctypes.Structure):
    _fields_ = [("self_attn", MhaWeights), ("linear1_weight", Tensor), ("linear1_bias", Tensor),
                ("linear2_weight", Tensor), ("linear2_bias", Tensor), ("norm1_weight", Tensor),
                ("norm1_bias", Tensor), ("norm2_weight", Tensor), ("norm2_bias", Tensor)]


class EncoderLayerDesc(ctypes.Structure):
    _fields_ = [("nhead", ctypes.c_int32), ("activation", ctypes.c_int),
                ("layer_norm_eps", ctypes.c_float), ("batch_first", ctypes.c_int32),
                ("norm_first", ctypes.c_int32), ("causal", ctypes.c_int32),
                ("key_lengths", Tensor), ("key_padding_mask", Tensor)]


class Seqk:
    """libseqk.so with one context."""

    def __init__(self, path):
        self.lib = ctypes.CDLL(path)
        L = self.lib
        L.seqk_version.restype = ctypes.c_int
        L.seqk_status_string.restype = ctypes.c_char_p
        L.seqk_context_last_error.restype = ctypes.c_char_p
        L.seqk_context_last_error.argtypes = [ctypes.c_void_p]
        L.seqk_context_create.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
        L.seqk_context_destroy.argtypes = [ctypes.c_void_p]
        L.seqk_context_set_stream.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        P = ctypes.POINTER
        L.seqk_softmax.argtypes = [ctypes.c_void_p, P(Tensor), ctypes.c_int32, P(Tensor)]
        L.seqk_attention.argtypes = [ctypes.c_void_p, P(AttentionParams), P(Tensor), P(Tensor),
                                     P(Tensor), P(Tensor), P(Tensor)]
        L.seqk_mha_forward.argtypes = [ctypes.c_void_p, P(MhaWeights), ctypes.c_int32,
                                       ctypes.c_int32, P(Tensor), P(Tensor), P(Tensor), P(Tensor),
                                       P(Tensor)]
        L.seqk_rnn_forward.argtypes = [ctypes.c_void_p, P(RnnDesc), P(RnnWeights), P(Tensor),
                                       P(Tensor), P(Tensor), P(Tensor), P(Tensor), P(Tensor),
                                       P(Tensor)]
        L.seqk_layer_norm.argtypes = [ctypes.c_void_p, P(Tensor), P(Tensor), P(Tensor), P(Tensor),
                                      ctypes.c_float, P(Tensor), P(Tensor)]
        L.seqk_rms_norm.argtypes = [ctypes.c_void_p, P(Tensor), P(Tensor), P(Tensor), ctypes.c_float,
                                    P(Tensor), P(Tensor)]
        L.seqk_activate.argtypes = [ctypes.c_void_p, ctypes.c_int, P(Tensor), P(Tensor)]
        L.seqk_gated_activate.argtypes = [ctypes.c_void_p, ctypes.c_int, P(Tensor), P(Tensor),
                                          P(Tensor)]
        L.seqk_linear_ex.argtypes = [ctypes.c_void_p, P(Tensor), P(Tensor), P(Tensor), ctypes.c_int,
                                     P(Tensor), P(Tensor)]
        L.seqk_transformer_encoder_layer_forward.argtypes = [
            ctypes.c_void_p, P(EncoderLayerDesc), P(EncoderLayerWeights), P(Tensor), P(Tensor)]
        self.ctx = ctypes.c_void_p()
        self.check(L.seqk_context_create(ctypes.byref(self.ctx)), "context_create")

    def error(self):
        return self.lib.seqk_context_last_error(self.ctx).decode()

    def check(self, status, what):
        if status not in (SUCCESS, NOT_SUPPORTED):
            raise RuntimeError(f"{what}: {self.lib.seqk_status_string(status).decode()}: "
                               f"{self.error()}")
        return status

    def close(self):
        self.lib.seqk_context_destroy(self.ctx)


def describe(data_ptr, dtype, device, shape, stride):
    t = Tensor()
    t.data, t.dtype, t.device, t.ndim = data_ptr, dtype, device, len(shape)
    for i, (n, s) in enumerate(zip(shape, stride)):
        t.shape[i], t.stride[i] = n, s
    return t


# ---- smoke test of the bindings: no torch, no GPU ------------------------------------------------
def smoke(lib_path):
    sk = Seqk(lib_path)
    x = array.array("f", [1.0, 2.0, 3.0, 2.0, 1.0, 0.5])
    y = array.array("f", [float("nan")] * 6)
    tx = describe(x.buffer_info()[0], F32, CPU, (2, 3), (3, 1))
    ty = describe(y.buffer_info()[0], F32, CPU, (2, 3), (3, 1))
    sk.check(sk.lib.seqk_softmax(sk.ctx, ctypes.byref(tx), 1, ctypes.byref(ty)), "softmax")
    want = [0.0900, 0.2447, 0.6652, 0.6285, 0.2312, 0.1402]
    assert all(abs(a - b) < 1e-4 for a, b in zip(y, want)), list(y)
    # a bad dim must come back as INVALID_VALUE naming the argument, through the same structs
    status = sk.lib.seqk_softmax(sk.ctx, ctypes.byref(tx), 2, ctypes.byref(ty))
    assert status == INVALID_VALUE and "dim" in sk.error(), (status, sk.error())
    # attention through the params struct: one query, two keys, scale 1
    q = array.array("f", [1.0, 0.0])
    k = array.array("f", [1.0, 0.0, 0.0, 1.0])
    v = array.array("f", [10.0, 0.0, 0.0, 10.0])
    o = array.array("f", [float("nan")] * 2)
    lse = array.array("f", [float("nan")])
    p = AttentionParams(1.0, 0, ALGO_AUTO, None, None)
    args = [describe(a.buffer_info()[0], F32, CPU, s, st) for a, s, st in
            ((q, (1, 1, 1, 2), (2, 2, 2, 1)), (k, (1, 1, 2, 2), (4, 4, 2, 1)),
             (v, (1, 1, 2, 2), (4, 4, 2, 1)), (o, (1, 1, 1, 2), (2, 2, 2, 1)))]
    tl = describe(lse.buffer_info()[0], F32, CPU, (1, 1, 1), (1, 1, 1))
    sk.check(sk.lib.seqk_attention(sk.ctx, ctypes.byref(p), *[ctypes.byref(a) for a in args],
                                   ctypes.byref(tl)), "attention")
    w0 = math.e / (math.e + 1.0)
    assert abs(o[0] - 10 * w0) < 1e-4 and abs(lse[0] - math.log(math.e + 1.0)) < 1e-5, (o, lse)
    # layer norm without weights: [1, 2, 3] -> (x - 2) / sqrt(2/3 + eps)
    xn = array.array("f", [1.0, 2.0, 3.0])
    yn = array.array("f", [float("nan")] * 3)
    txn = describe(xn.buffer_info()[0], F32, CPU, (1, 3), (3, 1))
    tyn = describe(yn.buffer_info()[0], F32, CPU, (1, 3), (3, 1))
    sk.check(sk.lib.seqk_layer_norm(sk.ctx, ctypes.byref(txn), None, None, None, 1e-5,
                                    ctypes.byref(tyn), None), "layer_norm")
    r = 1.0 / math.sqrt(2.0 / 3.0 + 1e-5)
    assert all(abs(a - b) < 1e-5 for a, b in zip(yn, (-r, 0.0, r))), list(yn)
    # the encoder layer's structs: a bad nhead is named through desc, a good call succeeds
    E, F_, S = 2, 3, 2
    bufs = {n: array.array("f", [0.1 * ((i * 7 + len(n)) % 5 - 2) for i in range(k)])
            for n, k in (("in_w", 3 * E * E), ("out_w", E * E), ("l1", F_ * E), ("l2", E * F_),
                         ("src", S * E), ("out", S * E))}
    mat = lambda n, r_, c: describe(bufs[n].buffer_info()[0], F32, CPU, (r_, c), (c, 1))
    w = EncoderLayerWeights()
    w.self_attn.in_proj_weight = mat("in_w", 3 * E, E)
    w.self_attn.out_proj_weight = mat("out_w", E, E)
    w.linear1_weight, w.linear2_weight = mat("l1", F_, E), mat("l2", E, F_)
    d = EncoderLayerDesc(3, ACT_RELU, 1e-5, 1, 0, 0)
    ts = describe(bufs["src"].buffer_info()[0], F32, CPU, (1, S, E), (S * E, E, 1))
    to = describe(bufs["out"].buffer_info()[0], F32, CPU, (1, S, E), (S * E, E, 1))
    status = sk.lib.seqk_transformer_encoder_layer_forward(sk.ctx, ctypes.byref(d), ctypes.byref(w),
                                                           ctypes.byref(ts), ctypes.byref(to))
    assert status == INVALID_VALUE and "desc.nhead" in sk.error(), (status, sk.error())
    d.nhead = 1
    sk.check(sk.lib.seqk_transformer_encoder_layer_forward(sk.ctx, ctypes.byref(d), ctypes.byref(w),
                                                           ctypes.byref(ts), ctypes.byref(to)),
             "transformer_encoder_layer")
    assert all(math.isfinite(v) for v in bufs["out"]), list(bufs["out"])
    print(f"ctypes bindings OK against seqk {sk.lib.seqk_version()}")
    sk.close()


# ---- the GPU comparison ----------------------------------------------------------------------------
def main_gpu(args):
    import torch
    import torch.nn.functional as F

    if not torch.cuda.is_available():
        print("compare_torch: no CUDA device")
        return 77
    torch.manual_seed(0)
    sk = Seqk(args.lib)
    sk.lib.seqk_context_set_stream(sk.ctx, ctypes.c_void_p(torch.cuda.current_stream().cuda_stream))
    dev = torch.device("cuda")
    props = torch.cuda.get_device_properties(0)
    flush = torch.empty(2 * getattr(props, "L2_cache_size", 64 << 20), dtype=torch.uint8, device=dev)
    code = {torch.float32: F32, torch.float16: F16, torch.bfloat16: BF16, torch.int32: I32}
    rows = []
    print(f"device: {props.name}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
          f"cuDNN {torch.backends.cudnn.version()}, seqk {sk.lib.seqk_version()}")

    def T(t):
        return describe(t.data_ptr(), code[t.dtype], CUDA, tuple(t.shape), tuple(t.stride()))

    def timed(fn):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        for _ in range(3):
            fn()
        ms = []
        for _ in range(args.repeats):
            flush.zero_()
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            ms.append(start.elapsed_time(stop))
        return statistics.median(ms)

    def compare(name, seqk_fn, torch_fns, out, ref_fn, atol, rtol, amount, unit):
        if args.filter and args.filter not in name:
            return
        status = sk.check(seqk_fn(), name)
        if status == NOT_SUPPORTED:
            print(f"{name:58s} seqk n/a ({sk.error()})")
            return
        torch.cuda.synchronize()
        ref = ref_fn()
        ok = torch.allclose(out.float(), ref.float(), atol=atol, rtol=rtol)
        err = (out.float() - ref.float()).abs().max().item()
        ms_seqk = timed(seqk_fn) if ok else float("nan")
        for tname, tfn in torch_fns:
            try:
                ms_t = timed(tfn)
            except RuntimeError as e:   # a backend that does not take this case
                print(f"{name:58s} {tname}: not applicable ({str(e).splitlines()[0][:60]})")
                continue
            rate = amount / (ms_seqk * 1e9) if unit == "TFLOP/s" else amount / (ms_seqk * 1e6)
            row = (name, "ok" if ok else "FAIL", err, ms_seqk, rate, unit, tname, ms_t, ms_t / ms_seqk)
            rows.append(row)
            print(f"{name:58s} {row[1]:4s} err {err:.2e} seqk {ms_seqk:8.4f} ms {rate:8.1f} {unit}"
                  f" | {tname} {ms_t:8.4f} ms  seqk x{ms_t / ms_seqk:5.2f}")

    # softmax
    for dt in (torch.float16, torch.bfloat16, torch.float32):
        for rows_, cols in ((16384, 1024), (4096, 8192), (64, 1 << 20)):
            x = torch.randn(rows_, cols, device=dev, dtype=dt) * 3
            y = torch.empty_like(x)
            tx, ty = T(x), T(y)
            compare(f"softmax {dt} [{rows_},{cols}]",
                    lambda: sk.lib.seqk_softmax(sk.ctx, ctypes.byref(tx), -1, ctypes.byref(ty)),
                    [("torch.softmax", lambda: torch.softmax(x, -1))], y,
                    lambda: torch.softmax(x.float(), -1), 2e-3, 1e-2,
                    2.0 * x.numel() * x.element_size(), "GB/s")

    # attention (BHSD), every SDPA backend side by side
    from torch.nn.attention import SDPBackend, sdpa_kernel
    backends = [("sdpa flash", SDPBackend.FLASH_ATTENTION),
                ("sdpa efficient", SDPBackend.EFFICIENT_ATTENTION),
                ("sdpa cudnn", getattr(SDPBackend, "CUDNN_ATTENTION", None)),
                ("sdpa math", SDPBackend.MATH)]

    def sdpa_fn(backend, q, k, v, causal, gqa):
        def run():
            with sdpa_kernel(backend):
                return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=gqa)
        return run

    shapes = [(16384 // S, 2048 // D, 2048 // D, S, D) for D in (64, 128) for S in (1024, 4096, 16384)]
    shapes += [(8, 12, 12, 1024, 64), (1, 32, 8, 16384, 128)]   # llm.c; grouped heads
    for dt in (torch.float16, torch.bfloat16):
        for (B, H, Hk, S, D) in shapes:
            for causal in (0, 1):
                q = torch.randn(B, H, S, D, device=dev, dtype=dt)
                k = torch.randn(B, Hk, S, D, device=dev, dtype=dt)
                v = torch.randn(B, Hk, S, D, device=dev, dtype=dt)
                o = torch.empty_like(q)
                params = AttentionParams(0.0, causal, ALGO_AUTO, None, None)
                tq, tk, tv, to = T(q), T(k), T(v), T(o)
                gqa = H != Hk
                flops = 4.0 * B * H * S * S * D * (0.5 if causal else 1.0)
                compare(f"attention {dt} B={B} H={H}/{Hk} S={S} D={D}{' causal' if causal else ''}",
                        lambda: sk.lib.seqk_attention(sk.ctx, ctypes.byref(params), ctypes.byref(tq),
                                                      ctypes.byref(tk), ctypes.byref(tv),
                                                      ctypes.byref(to), None),
                        [(n, sdpa_fn(b, q, k, v, bool(causal), gqa)) for n, b in backends if b],
                        o, sdpa_fn(SDPBackend.MATH, q.float(), k.float(), v.float(), bool(causal), gqa),
                        2e-2, 2e-2, flops, "TFLOP/s")
                del q, k, v, o

    # nn.MultiheadAttention
    for dt in (torch.float16,):
        B, S, E, H = 8, 1024, 1024, 16
        mha = torch.nn.MultiheadAttention(E, H, batch_first=True, device=dev, dtype=dt).eval()
        x = torch.randn(B, S, E, device=dev, dtype=dt)
        out = torch.empty_like(x)
        w = MhaWeights(T(mha.in_proj_weight.detach()), T(mha.in_proj_bias.detach()),
                       T(mha.out_proj.weight.detach()), T(mha.out_proj.bias.detach()))
        tx, tout = T(x), T(out)
        with torch.no_grad():
            compare(f"mha_forward {dt} B={B} S={S} E={E} heads={H}",
                    lambda: sk.lib.seqk_mha_forward(sk.ctx, ctypes.byref(w), H, 0, ctypes.byref(tx),
                                                    ctypes.byref(tx), ctypes.byref(tx),
                                                    ctypes.byref(tout), None),
                    [("nn.MultiheadAttention", lambda: mha(x, x, x, need_weights=False))], out,
                    lambda: mha(x, x, x, need_weights=False)[0], 2e-2, 2e-2,
                    2.0 * B * S * E * E * 4 + 4.0 * B * S * S * E, "TFLOP/s")

    # nn.LSTM / nn.GRU (cuDNN)
    for mode, cls, G in ((MODE_LSTM, torch.nn.LSTM, 4), (MODE_GRU, torch.nn.GRU, 3)):
        for (H, N, Tn) in ((1024, 64, 25), (256, 16, 150), (512, 4, 100), (1024, 1, 100)):
            net = cls(H, H, 1, device=dev).eval()
            x = torch.randn(Tn, N, H, device=dev)
            y = torch.empty(Tn, N, H, device=dev)
            ws = [T(p.detach()) for p in (net.weight_ih_l0, net.weight_hh_l0, net.bias_ih_l0, net.bias_hh_l0)]
            arrs = [(Tensor * 1)(t) for t in ws]
            weights = RnnWeights(*[ctypes.cast(a, ctypes.POINTER(Tensor)) for a in arrs])
            desc = RnnDesc(mode, H, H, 1, 0, 0)
            tx, ty = T(x), T(y)
            name = f"{'lstm' if mode == MODE_LSTM else 'gru'} f32 H={H} N={N} T={Tn}"
            with torch.no_grad():
                compare(name,
                        lambda: sk.lib.seqk_rnn_forward(sk.ctx, ctypes.byref(desc), ctypes.byref(weights),
                                                        ctypes.byref(tx), None, None, None,
                                                        ctypes.byref(ty), None, None),
                        [(f"nn.{cls.__name__} (cuDNN)", lambda: net(x))], y, lambda: net(x)[0],
                        1e-4, 1e-3, 2.0 * G * H * H * N * Tn, "TFLOP/s")

    # norms, activations, linear epilogue
    for dt in (torch.float16, torch.bfloat16):
        for (R, C) in ((16384, 768), (16384, 4096), (524288, 128)):
            x = torch.randn(R, C, device=dev, dtype=dt)
            res = torch.randn(R, C, device=dev, dtype=dt)
            g = torch.rand(C, device=dev, dtype=dt) + 0.5
            b = torch.randn(C, device=dev, dtype=dt)
            y, ro = torch.empty_like(x), torch.empty_like(x)
            tx, tr, tg, tb, ty, tro = T(x), T(res), T(g), T(b), T(y), T(ro)
            es = x.element_size()
            compare(f"layer_norm {dt} [{R},{C}]",
                    lambda: sk.lib.seqk_layer_norm(sk.ctx, ctypes.byref(tx), None, ctypes.byref(tg),
                                                   ctypes.byref(tb), 1e-5, ctypes.byref(ty), None),
                    [("F.layer_norm", lambda: F.layer_norm(x, (C,), g, b, 1e-5))], y,
                    lambda: F.layer_norm(x.float(), (C,), g.float(), b.float(), 1e-5),
                    2e-2, 2e-2, 2.0 * x.numel() * es, "GB/s")
            compare(f"layer_norm +residual {dt} [{R},{C}]",
                    lambda: sk.lib.seqk_layer_norm(sk.ctx, ctypes.byref(tx), ctypes.byref(tr),
                                                   ctypes.byref(tg), ctypes.byref(tb), 1e-5,
                                                   ctypes.byref(ty), ctypes.byref(tro)),
                    [("x + r; F.layer_norm", lambda: F.layer_norm(x + res, (C,), g, b, 1e-5))], y,
                    lambda: F.layer_norm((x + res).float(), (C,), g.float(), b.float(), 1e-5),
                    2e-2, 2e-2, 4.0 * x.numel() * es, "GB/s")
            if hasattr(F, "rms_norm"):
                compare(f"rms_norm {dt} [{R},{C}]",
                        lambda: sk.lib.seqk_rms_norm(sk.ctx, ctypes.byref(tx), None, ctypes.byref(tg),
                                                     1e-6, ctypes.byref(ty), None),
                        [("F.rms_norm", lambda: F.rms_norm(x, (C,), g, 1e-6))], y,
                        lambda: F.rms_norm(x.float(), (C,), g.float(), 1e-6),
                        2e-2, 2e-2, 2.0 * x.numel() * es, "GB/s")
            del x, res, y, ro
        x = torch.randn(16384, 3072, device=dev, dtype=dt)
        u = torch.randn(16384, 3072, device=dev, dtype=dt)
        y = torch.empty_like(x)
        tx, tu, ty = T(x), T(u), T(y)
        compare(f"gelu {dt} [16384,3072]",
                lambda: sk.lib.seqk_activate(sk.ctx, ACT_GELU, ctypes.byref(tx), ctypes.byref(ty)),
                [("F.gelu", lambda: F.gelu(x))], y, lambda: F.gelu(x.float()), 2e-2, 2e-2,
                2.0 * x.numel() * x.element_size(), "GB/s")
        compare(f"swiglu {dt} [16384,3072]",
                lambda: sk.lib.seqk_gated_activate(sk.ctx, ACT_SILU, ctypes.byref(tx),
                                                   ctypes.byref(tu), ctypes.byref(ty)),
                [("F.silu(g) * u", lambda: F.silu(x) * u)], y, lambda: F.silu(x.float()) * u.float(),
                2e-2, 2e-2, 3.0 * x.numel() * x.element_size(), "GB/s")
        lin = torch.nn.Linear(768, 3072, device=dev, dtype=dt)
        xi = torch.randn(16384, 768, device=dev, dtype=dt)
        yo = torch.empty(16384, 3072, device=dev, dtype=dt)
        tw, tbb, txi, tyo = T(lin.weight.detach()), T(lin.bias.detach()), T(xi), T(yo)
        with torch.no_grad():
            compare(f"linear_ex gelu_tanh {dt} M=16384 K=768 N=3072",
                    lambda: sk.lib.seqk_linear_ex(sk.ctx, ctypes.byref(txi), ctypes.byref(tw),
                                                  ctypes.byref(tbb), ACT_GELU_TANH, None,
                                                  ctypes.byref(tyo)),
                    [("F.gelu(lin(x), tanh)", lambda: F.gelu(lin(xi), approximate="tanh"))], yo,
                    lambda: F.gelu(lin(xi).float(), approximate="tanh"), 3e-2, 3e-2,
                    2.0 * 16384 * 768 * 3072, "TFLOP/s")

    # nn.TransformerEncoderLayer (eval), batch_first, post-norm and pre-norm
    for dt in (torch.float16,):
        B, S, E, H, Fd = 32, 512, 768, 12, 3072
        for norm_first in (0, 1):
            layer = torch.nn.TransformerEncoderLayer(E, H, Fd, dropout=0.0, batch_first=True,
                                                     norm_first=bool(norm_first), device=dev,
                                                     dtype=dt).eval()
            x = torch.randn(B, S, E, device=dev, dtype=dt)
            out = torch.empty_like(x)
            sd = {k: T(v.detach()) for k, v in layer.state_dict().items()}
            w = EncoderLayerWeights()
            w.self_attn = MhaWeights(sd["self_attn.in_proj_weight"], sd["self_attn.in_proj_bias"],
                                     sd["self_attn.out_proj.weight"], sd["self_attn.out_proj.bias"])
            for name in ("linear1", "linear2", "norm1", "norm2"):
                setattr(w, name + "_weight", sd[name + ".weight"])
                setattr(w, name + "_bias", sd[name + ".bias"])
            d = EncoderLayerDesc(H, ACT_RELU, 1e-5, 1, norm_first, 0)
            tx, tout = T(x), T(out)
            flops = 2.0 * B * S * (4 * E * E + 2 * E * Fd) + 4.0 * B * S * S * E
            with torch.no_grad():
                compare(f"encoder_layer {dt} B={B} S={S} E={E} H={H} F={Fd}"
                        f"{' norm_first' if norm_first else ''}",
                        lambda: sk.lib.seqk_transformer_encoder_layer_forward(
                            sk.ctx, ctypes.byref(d), ctypes.byref(w), ctypes.byref(tx),
                            ctypes.byref(tout)),
                        [("nn.TransformerEncoderLayer", lambda: layer(x))], out, lambda: layer(x),
                        3e-2, 3e-2, flops, "TFLOP/s")

    if args.csv:
        import csv
        with open(args.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["case", "check", "max_err", "seqk_ms", "rate", "unit", "torch_path",
                        "torch_ms", "speedup"])
            w.writerows(rows)
    sk.close()
    return 1 if any(r[1] == "FAIL" for r in rows) else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--lib", default=os.path.join(here, "..", "build", "libseqk.so"))
    ap.add_argument("--filter")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--csv")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    if args.smoke:
        smoke(args.lib)
        return 0
    return main_gpu(args)


if __name__ == "__main__":
    sys.exit(main())
