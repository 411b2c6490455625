"""Build nanoGPT-format OpenWebText token files for `dataset=openwebtext` (run once, on a machine with internet).

    pip install datasets tiktoken
    python scripts/prepare_openwebtext.py --out ~/data/owt          # ~54 GB of downloads, ~17 GB written
    lossbench run task=lm dataset=openwebtext data_dir=~/data/owt ...

Writes `train.bin` (~9.0 B tokens) and `val.bin` (~4.4 M tokens): uint16 GPT-2 BPE token ids, each document
followed by the end-of-text token (50256), exactly as nanoGPT's data/openwebtext/prepare.py (0.05 % of the
documents, seed 2357, go to validation). `--limit N` keeps the first N documents for a quick small build.
Files are written under a temporary name and renamed when complete, so an interrupted build leaves no
half-written `train.bin` behind.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import numpy as np

log = logging.getLogger("prepare_openwebtext")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for train.bin and val.bin")
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    parser.add_argument("--limit", type=int, default=None, help="use only the first N documents")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        import tiktoken
        from datasets import load_dataset
    except ImportError:
        raise SystemExit("prepare_openwebtext needs: pip install datasets tiktoken") from None

    split = "train" if args.limit is None else f"train[:{args.limit}]"
    data = load_dataset("openwebtext", split=split, num_proc=args.workers, trust_remote_code=True)
    parts = data.train_test_split(test_size=0.0005, seed=2357, shuffle=True)
    parts["val"] = parts.pop("test")
    enc = tiktoken.get_encoding("gpt2")

    def encode(example: dict) -> dict:
        ids = enc.encode_ordinary(example["text"]) + [enc.eot_token]
        return {"ids": ids, "len": len(ids)}

    args.out.expanduser().mkdir(parents=True, exist_ok=True)
    for name, part in parts.items():
        tokens = part.map(encode, remove_columns=["text"], num_proc=args.workers, desc=f"tokenizing {name}")
        total = int(np.sum(tokens["len"], dtype=np.uint64))
        final = args.out.expanduser() / f"{name}.bin"
        partial = final.with_suffix(".bin.partial")
        out = np.memmap(partial, dtype=np.uint16, mode="w+", shape=(total,))
        pos, shards = 0, 1024 if len(tokens) >= 1024 else 1
        for i in range(shards):
            batch = tokens.shard(num_shards=shards, index=i, contiguous=True).with_format("numpy")
            ids = np.concatenate(batch["ids"]) if len(batch) else np.zeros(0, dtype=np.uint16)
            out[pos : pos + len(ids)] = ids
            pos += len(ids)
        out.flush()
        del out
        partial.rename(final)
        log.info("%s: %d tokens -> %s", name, total, final)


if __name__ == "__main__":
    main()
