"""Language-model training throughput and memory: a GPT with the CE head vs each harmonic head, and a
bare nanoGPT-style loop beside them.

The bare loop is what nanoGPT does in one step (its own minimal GPT-2 in this file: tied embeddings, a
linear head, bf16 autocast, fused AdamW, clipping at 1.0), eager like the rest. One lossbench step is: forward under the trainer's autocast (bf16 on CUDA), loss on
float32 logits, backward, clipping at 1.0, AdamW. The table gives the median tokens/s over the timed
steps and the peak memory above the model, its optimizer state and the batch (CUDA:
torch.cuda.max_memory_allocated; CPU: the rise of the process's peak RSS, one process per head).
Tokens are random ids over the vocabulary: throughput does not depend on the text.

    python scripts/bench_lm.py                                   # CPU: 2 layers x 128, T=128, batch 8, V=2048
    python scripts/bench_lm.py --device cuda                     # GPT-2 small: 12 x 768, T=1024, batch 8, V=50304
    python scripts/bench_lm.py --heads ce,cosine --steps 3       # a quick check
"""

from __future__ import annotations

import argparse
import json
import subprocess
from functools import partial

import torch
import torch.nn.functional as F
from benchtools import (  # scripts/
    in_fresh_process,
    median_seconds,
    memory_baseline,
    peak_memory,
    synchronizer,
)

from lossbench.config import compose_run, group_options
from lossbench.data.text import token_splits
from lossbench.build import build, build_model

SIZES = {  # (n_layer, n_head, n_embd, block_size, batch, vocab)
    "cpu": (2, 4, 128, 128, 8, 2048),
    "cuda": (12, 12, 768, 1024, 8, 50304),
}


def measure(head: str, device: str, size: tuple[int, ...], steps: int) -> dict[str, float]:
    """Median tokens/s over `steps` timed training steps (after one warm-up) and peak extra bytes."""
    n_layer, n_head, n_embd, block, batch, vocab = size
    loss = "loss=ce" if head == "ce" else "loss=harmonic"
    cfg, _ = compose_run(["task=lm", loss, f"distance={'euclidean' if head == 'ce' else head}", f"device={device}",
                          f"backbone.n_layer={n_layer}", f"backbone.n_head={n_head}", f"backbone.n_embd={n_embd}",
                          f"backbone.block_size={block}", "tracker=off"])
    tokens = torch.randint(0, vocab, (4 * block * batch,), generator=torch.Generator().manual_seed(0)).numpy()
    splits = token_splits(tokens, tokens, tokens, vocab, block, 1, "random")
    torch.manual_seed(0)
    model = build_model(cfg, splits).to(device)
    trainer = build(cfg, "trainer")
    optimizer = build(cfg, "optim.optimizer", model.parameters())
    dev = torch.device(device)
    x = torch.randint(0, vocab, (batch, block), device=dev)
    y = torch.randint(0, vocab, (batch * block,), device=dev)
    sync = synchronizer(dev)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with trainer.autocast(dev):
            logits = model(x)
        F.cross_entropy(logits.float(), y).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    step()  # warm-up: allocator, kernels, optimizer state (its memory is the baseline)
    sync()
    base = memory_baseline(dev)
    seconds = median_seconds(step, sync, steps)
    return {"tokens_per_s": batch * block / seconds, "extra_bytes": max(0, peak_memory(dev) - base)}


class BareGPT(torch.nn.Module):
    """nanoGPT's model, written out (pre-norm blocks, causal flash attention, GELU MLP, tied head)."""

    def __init__(self, n_layer: int, n_head: int, n_embd: int, block: int, vocab: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.wte, self.wpe = torch.nn.Embedding(vocab, n_embd), torch.nn.Embedding(block, n_embd)
        layer = lambda: torch.nn.ModuleDict({  # noqa: E731
            "ln1": torch.nn.LayerNorm(n_embd), "qkv": torch.nn.Linear(n_embd, 3 * n_embd),
            "proj": torch.nn.Linear(n_embd, n_embd), "ln2": torch.nn.LayerNorm(n_embd),
            "fc": torch.nn.Linear(n_embd, 4 * n_embd), "out": torch.nn.Linear(4 * n_embd, n_embd)})
        self.blocks = torch.nn.ModuleList(layer() for _ in range(n_layer))
        self.ln_f = torch.nn.LayerNorm(n_embd)
        self.head = torch.nn.Linear(n_embd, vocab, bias=False)
        self.head.weight = self.wte.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        b, t = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(t, device=idx.device))
        for blk in self.blocks:
            q, k, v = blk["qkv"](blk["ln1"](x)).view(b, t, 3, self.n_head, -1).permute(2, 0, 3, 1, 4)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, -1)
            x = x + blk["proj"](y)
            x = x + blk["out"](F.gelu(blk["fc"](blk["ln2"](x))))
        return self.head(self.ln_f(x)).view(b * t, -1)


def measure_bare(device: str, size: tuple[int, ...], steps: int) -> dict[str, float]:
    """The bare loop's median tokens/s and peak extra bytes, measured like `measure`."""
    n_layer, n_head, n_embd, block, batch, vocab = size
    dev = torch.device(device)
    torch.manual_seed(0)
    model = BareGPT(n_layer, n_head, n_embd, block, vocab).to(dev)
    optimizer = torch.optim.AdamW(model.parameters(), lr=6e-4, weight_decay=0.1, fused=dev.type == "cuda")
    x = torch.randint(0, vocab, (batch, block), device=dev)
    y = torch.randint(0, vocab, (batch * block,), device=dev)
    sync = synchronizer(dev)

    def step() -> None:
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()
    sync()
    base = memory_baseline(dev)
    seconds = median_seconds(step, sync, steps)
    return {"tokens_per_s": batch * block / seconds, "extra_bytes": max(0, peak_memory(dev) - base)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--heads", default=None, help="comma list: ce and distance names (default: all)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--size", default=None, help="n_layer,n_head,n_embd,block,batch,vocab (default per device)")
    parser.add_argument("--worker", nargs=2, metavar=("HEAD", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        size = tuple(map(int, args.worker[1].split(",")))
        run = measure_bare if args.worker[0] == "bare" else partial(measure, args.worker[0])
        print(json.dumps(run("cpu", size, args.steps)))
        return
    size = tuple(map(int, args.size.split(","))) if args.size else SIZES["cuda" if args.device.startswith("cuda") else "cpu"]
    heads = ["bare", *(args.heads.split(",") if args.heads else ["ce", *group_options("distance")])]
    name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "cpu"
    print(f"device {name}, torch {torch.__version__}, GPT n_layer={size[0]} n_head={size[1]} n_embd={size[2]}, "
          f"T={size[3]}, batch {size[4]}, vocab {size[5]}; median of {args.steps} training steps\n")
    print("| head | tokens/s | vs bare | vs lossbench CE | peak extra MiB |\n|---|---|---|---|---|")
    rates: dict[str, float] = {}
    for head in heads:
        try:
            if args.device.startswith("cuda"):
                r = (measure_bare if head == "bare" else partial(measure, head))(args.device, size, args.steps)
            else:  # peak RSS only rises: one process per head
                r = in_fresh_process(__file__, "--worker", head, ",".join(map(str, size)), "--steps", str(args.steps))
        except (RuntimeError, subprocess.CalledProcessError) as exc:  # e.g. out of memory
            print(f"| {head} | failed: {type(exc).__name__} | | | |", flush=True)
            continue
        rates[head] = r["tokens_per_s"]
        ratios = [f"{rates[head] / rates[ref]:.2f}x" if ref in rates else "–" for ref in ("bare", "ce")]
        print(f"| {head} | {rates[head]:.0f} | {' | '.join(ratios)} | {r['extra_bytes'] / 2**20:.0f} |", flush=True)


if __name__ == "__main__":
    main()
