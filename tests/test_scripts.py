"""The benchmark scripts run in CI-sized form and print their tables; the wheel ships conf/ and the HTML
report's templates."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script(*args: str) -> str:
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _rows(table: str) -> dict[str, list[str]]:
    lines = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| head")]
    return {cells[0]: cells[1:] for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines)}


def test_bench_heads_prints_time_and_memory_for_each_head():
    out = _script("scripts/bench_heads.py", "--shapes", "48x8x5", "--heads", "ce,naive_manhattan,manhattan,canberra",
                  "--repeats", "1")
    rows = _rows(out)
    assert set(rows) == {"ce", "naive_manhattan", "manhattan", "canberra"}
    for cells in rows.values():
        assert len(cells) == 2 and float(cells[0]) > 0 and float(cells[1]) >= 0


def test_bench_lm_prints_throughput_and_memory_for_each_head():
    out = _script("scripts/bench_lm.py", "--heads", "ce,cosine,manhattan", "--steps", "1", "--size", "1,2,16,16,2,64")
    rows = _rows(out)
    assert set(rows) == {"bare", "ce", "cosine", "manhattan"}  # the bare nanoGPT-style loop first
    assert rows["bare"][1] == "1.00x" and rows["ce"][2] == "1.00x" and rows["bare"][2] == "–"
    for tokens_per_s, vs_bare, vs_ce, mib in rows.values():
        assert float(tokens_per_s) > 0 and vs_bare.endswith("x") and float(mib) >= 0
    # the ratio of the printed (rounded to the token) rates, within the rounding of the rates and of the ratio
    ce, cosine = float(rows["ce"][0]), float(rows["cosine"][0])
    ratio = cosine / ce
    slack = 0.005 + 0.5 * (1 / ce + 1 / cosine) * ratio
    assert float(rows["cosine"][2].rstrip("x")) == pytest.approx(ratio, abs=slack)


def test_bench_train_prints_bare_and_lossbench_rates():
    out = _script("scripts/bench_train.py", "--device", "cpu", "--images", "96", "--batch", "32", "--epochs", "2",
                  "--no-compile")
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines()
            if line.startswith(("| bare", "| lossbench"))]
    assert [r[:2] for r in rows] == [["bare", "False"], ["lossbench", "False"]]
    bare, lossbench = float(rows[0][2]), float(rows[1][2])
    assert bare > 0 and lossbench > 0  # printed rounded to whole images/s: the ratio within that rounding
    assert float(rows[1][3]) == pytest.approx(lossbench / bare, abs=0.005 + 1 / min(bare, lossbench))


@pytest.mark.gpu
def test_tune_kernels_times_every_configuration():
    from lossbench.distances import kernels

    out = _script("scripts/tune_kernels.py", "--shapes", "256x64x512", "--modes", "POWER")
    forward = [line for line in out.splitlines() if "| forward |" in line]
    assert len(forward) == len(kernels.FORWARD_TILES) and all(float(r.split("|")[-2]) > 0 for r in forward)


def test_bench_overhead_prints_a_row_per_case():
    out = _script("scripts/bench_overhead.py", "--epochs", "1", "--repeats", "1")
    rows = [line for line in out.splitlines() if re.match(r"\| (mnist1d|digits) \|", line)]
    assert len(rows) == 3
    for row in rows:
        bare, ours = (float(c) for c in row.strip("|").split("|")[2:4])
        assert bare > 0 and ours > 0 and "%" in row


def test_wheel_ships_the_config_tree(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    (wheel,) = tmp_path.glob("lossbench-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n for n in names if n.startswith("lossbench/conf/")}
    expected = {f"lossbench/conf/{p.relative_to(ROOT / 'conf')}" for p in (ROOT / "conf").rglob("*.yaml")}
    assert expected and expected == shipped
    templates = {f"lossbench/report/templates/{name}" for name in ("report.html.j2", "report.css", "report.js")}
    assert templates <= set(names)  # the HTML report's template and assets
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    code = "import lossbench.config as c; print(c.conf_dir())"
    found = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(target)},
                           capture_output=True, text=True, check=True).stdout.strip()
    assert found == str(target / "lossbench" / "conf")


@pytest.mark.browser
def test_bench_html_prints_the_page_size_and_time_to_interactive_with_no_request_out():
    rows = _rows(_script("scripts/bench_html.py", "--sizes", "20", "--loads", "1"))
    (row,) = [dict(zip(rows["report"], cells)) for name, cells in rows.items() if name.startswith("synthetic")]
    assert row["runs"] == "20" and row["groups"] == "1" and row["requests out"] == "0"
    assert 0 < float(row["figures (MB)"]) < float(row["page (MB)"]) and float(row["interactive (ms)"]) > 0


def test_bench_parallel_prints_the_four_scenarios_with_threads():
    out = _script("scripts/bench_parallel.py", "--backbone", "mlp", "--epochs", "1")
    rows = {k: v for k, v in _rows(out).items() if k != "scenario"}
    assert set(rows) == {"4-run grid, sequential", "4-run grid, joblib n_jobs=2", "1 run alone", "2 runs side by side",
                         "1 run alone, threads=1"}
    assert rows["4-run grid, joblib n_jobs=2"][2] == "1"  # one torch thread per job on 2 CPUs
    assert rows["1 run alone, threads=1"][2] == "1"
    for seconds, *_ in rows.values():
        assert float(seconds.removesuffix(" s")) > 0


def test_bench_energy_load_compares_quiet_and_loaded_sweeps():
    out = _script("scripts/bench_energy_load.py", "--epochs", "1", "--seeds", "2")
    rows = {k: v for k, v in _rows(out).items() if k != "figure"}
    assert len(rows) == 5
    flops = next(v for k, v in rows.items() if "`flops`" in k)
    assert flops == ["+0.0%", "1.00", "0/6", "+0.0%", "1.00", "0/6"]  # counted, not timed: load cannot move them
    for cells in rows.values():
        assert all(-1.0 <= float(cells[i]) <= 1.0 for i in (1, 4))
