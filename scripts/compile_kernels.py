"""Compile the fused L1-family Triton kernels ahead of time for a CUDA architecture, without a GPU.

Lowers every kernel x mode (and a non-integer Minkowski p) x autotuning configuration through Triton
to PTX, assembles it with the ptxas that ships with Triton, and prints registers and spills per kernel. This catches what
Triton's interpreter cannot: type errors in lowering (e.g. a constant that becomes float64), and
register spills that would make a kernel slow.

    python scripts/compile_kernels.py             # sm_90 (H100)
    python scripts/compile_kernels.py --arch 80   # A100
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import subprocess
import tempfile
from pathlib import Path

if os.environ.get("TRITON_INTERPRET") == "1":
    raise SystemExit("compile_kernels.py needs real Triton compilation: unset TRITON_INTERPRET")

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from lossbench.distances import kernels  # noqa: E402

log = logging.getLogger("compile_kernels")
MODES = [("POWER p=1", kernels.POWER, 1.0), ("POWER p=1.5", kernels.POWER, 1.5), ("MAX", kernels.MAX, 1.0),
         ("CANBERRA", kernels.CANBERRA, 1.0)]
SIZES = ("M", "V", "N", "NA", "NB", "STRIDE_GB", "STRIDE_GA")


def compile_one(fn: triton.JITFunction, mode: int, p: float, config: triton.Config, arch: int) -> str:
    """PTX of one kernel specialisation (float32 data, int32 sizes, one autotuning configuration)."""
    names = list(fn.arg_names)
    values = {"P": p, "MODE": mode, **config.kwargs}
    if "MIRROR" in names:
        values["MIRROR"] = True
    signature = {n: "constexpr" if n in values else "i32" if n in SIZES else "*fp32" for n in names}
    if mode == kernels.MAX:
        signature["ARG"] = "*i32"
    # sizes that are multiples of 16 (as at every paper shape) are specialised so by Triton at run time
    attrs = {(names.index(n),): [["tt.divisibility", 16]] for n in names if n not in values and n != "STRIDE_GA"}
    source = ASTSource(fn=fn, signature=signature, constexprs={(names.index(n),): v for n, v in values.items()},
                       attrs=attrs)
    options = {"num_warps": config.num_warps, "num_stages": config.num_stages}
    return triton.compile(source, target=GPUTarget("cuda", arch, 32), options=options).asm["ptx"]


def ptxas_info(ptx: str, arch: int) -> tuple[int, int]:
    """(registers, spill bytes) reported by ptxas for the PTX."""
    ptxas = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "ptxas"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kernel.ptx"
        path.write_text(ptx)
        target = re.search(r"^\.target\s+(\S+)", ptx, re.M).group(1)  # e.g. sm_90a, as Triton chose
        proc = subprocess.run([str(ptxas), f"-arch={target}", "-v", str(path), "-o", os.devnull],
                              capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"ptxas failed: {proc.stderr.strip()}")
        out = proc.stderr
    registers = int(re.search(r"Used (\d+) registers", out).group(1))
    spills = sum(int(n) for n in re.findall(r"(\d+) bytes spill (?:stores|loads)", out))
    return registers, spills


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", type=int, default=90, help="compute capability x 10 (90 = H100)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(f"triton {triton.__version__}, sm_{args.arch}\n")
    print("| kernel | mode | tile | warps | registers | spill bytes |\n|---|---|---|---|---|---|")
    for tuner in (kernels._forward, kernels._backward):
        for config in tuner.configs:
            tile = "x".join(str(v) for v in list(config.kwargs.values())[:2])
            tile += f" u{config.kwargs['UNROLL']}"
            for label, mode, p in MODES:
                registers, spills = ptxas_info(compile_one(tuner.fn, mode, p, config, args.arch), args.arch)
                print(f"| {tuner.fn.__name__.lstrip('_')} | {label} | {tile} | {config.num_warps} | {registers} "
                      f"| {spills} |", flush=True)


if __name__ == "__main__":
    main()
