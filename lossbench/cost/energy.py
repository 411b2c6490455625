"""Energy and emissions attributed to one run, never fatal.

CodeCarbon stays the tracker: its hardware database (the CPU model's TDP, its RAM power model), its RAPL
reader and its carbon intensity per country (offline: no network). What it lacks, and what is written
here: on a machine without RAPL it models CPU and RAM power over *wall time*, so a run on a busy machine
is charged for the time it waited for a core (measured on 2 cores: energy tracked duration at r = 0.96,
~10 W of ~10.5 W was the constant RAM estimate). lossbench therefore attributes each component to the run:

- GPU: measured, the difference of NVML's cumulative energy counter of the run's device over the run
  (`measured:nvml`); `none` on CPU runs.
- CPU: measured by RAPL where CodeCarbon reads it (`measured:rapl`); otherwise modelled as the
  process's own CPU time (user + system, all threads) x the per-core power of the CPU model (its TDP in
  CodeCarbon's database / its cores) (`model:cpu-time`).
- RAM: modelled: CodeCarbon's RAM power x the share of the machine's cores the run kept busy
  (CPU time / cores), i.e. RAM power split among processes by the core-seconds they use (`model:ram`).

Emissions are that energy x CodeCarbon's carbon intensity for `country_iso_code`. CodeCarbon's own
wall-time total is kept as `codecarbon_energy_kwh` for reference. CodeCarbon swallows its exceptions (a
broken tracker's `stop()` returns None), so every failure is detected here and becomes null columns
plus a warning (docs/research/ecosystem.md section 1).
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Literal

import torch

from lossbench import SettingError
from lossbench.cost.clock import ThreadsStartedBy, thread_cpu_seconds
from lossbench.ranges import PositiveFloat
from lossbench.schema import ENERGY

log = logging.getLogger(__name__)

ENERGY_COLUMNS = tuple(column.name for column in ENERGY)
JOULES_PER_KWH = 3.6e6


def null_energy(tracker: str) -> dict[str, Any]:
    """Every energy column null (sources `none`)."""
    columns: dict[str, Any] = {c: None for c in ENERGY_COLUMNS}
    columns.update(energy_tracker=tracker, cpu_energy_source="none", gpu_energy_source="none",
                   ram_energy_source="none")
    return columns


class NullTracker:
    """Tracking off: all energy columns null."""

    def start(self, device: torch.device) -> None:
        """Nothing to start."""

    def own_cpu_seconds(self) -> float:
        """No threads of its own."""
        return 0.0

    def stop(self, cpu_time_s: float) -> dict[str, Any]:
        return null_energy("off")


class NvmlEnergy:
    """NVML's cumulative energy counter (mJ) of one CUDA device, read at start and stop."""

    def __init__(self, device: torch.device) -> None:
        import pynvml  # nvidia-ml-py, a CodeCarbon dependency

        pynvml.nvmlInit()
        uuid = torch.cuda.get_device_properties(device).uuid
        self._nvml = pynvml
        self._handle = pynvml.nvmlDeviceGetHandleByUUID(f"GPU-{uuid}")
        self._start_mj = pynvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)

    def kwh(self) -> float:
        used_mj = self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle) - self._start_mj
        return used_mj / 1000.0 / JOULES_PER_KWH


@functools.cache
def _countries() -> frozenset[str]:
    """The ISO alpha-3 codes CodeCarbon has an energy mix for (empty when CodeCarbon cannot be imported:
    then the tracker degrades to null columns anyway)."""
    try:
        from codecarbon.input import DataSource

        return frozenset(DataSource().get_global_energy_mix_data())
    except Exception:  # noqa: BLE001 - a broken CodeCarbon install never blocks a run
        return frozenset()


class CodeCarbonTracker:
    """codecarbon.OfflineEmissionsTracker around a run's tracked window (training, evaluation, probes),
    with each energy component attributed to the run (module docstring)."""

    def __init__(
        self,
        country_iso_code: str = "FRA",
        measure_power_secs: PositiveFloat = 1.0,
        tracking_mode: Literal["process", "machine"] = "process",
    ) -> None:
        known = _countries()
        if known and country_iso_code not in known:
            raise SettingError(f"country_iso_code={country_iso_code!r} is not in CodeCarbon's energy-mix data "
                               f"(ISO 3166 alpha-3, e.g. FRA, DEU, USA; {len(known)} known): its emissions would "
                               "use a silent fallback intensity")
        self.country_iso_code, self.measure_power_secs, self.tracking_mode = (
            country_iso_code, measure_power_secs, tracking_mode,
        )
        self._tracker: Any = None
        self._gpu: NvmlEnergy | None = None
        self._threads: set[int] = set()

    def start(self, device: torch.device) -> None:
        try:
            from codecarbon import OfflineEmissionsTracker

            logging.getLogger("codecarbon").setLevel(logging.ERROR)  # after import: importing resets it

            with ThreadsStartedBy() as started:
                self._tracker = OfflineEmissionsTracker(
                    country_iso_code=self.country_iso_code,
                    measure_power_secs=self.measure_power_secs,
                    tracking_mode=self.tracking_mode,
                    output_methods=[],
                    log_level="error",
                    project_name="lossbench",
                )
                self._tracker.start()
            self._threads = started.ids
        except Exception as exc:  # a tracker must never kill a run
            log.warning("codecarbon failed to start (%s); energy columns will be null", exc)
            self._tracker = None
        if device.type == "cuda":
            try:
                self._gpu = NvmlEnergy(device)
            except Exception as exc:
                log.warning("NVML energy counter unavailable (%s); GPU energy will be null", exc)

    def own_cpu_seconds(self) -> float:
        """CPU time of CodeCarbon's own sampling threads so far: not the run's work, so not its energy."""
        return thread_cpu_seconds(self._threads)

    def stop(self, cpu_time_s: float) -> dict[str, Any]:
        """Energy columns of the window, given the run's CPU time over it."""
        if self._tracker is None:
            return null_energy("codecarbon")
        try:
            kg = self._tracker.stop()
            data = self._tracker.final_emissions_data
        except Exception as exc:
            log.warning("codecarbon failed to stop (%s); energy columns will be null", exc)
            return null_energy("codecarbon")
        if kg is None or data is None:
            log.warning("codecarbon returned no measurement; energy columns will be null")
            return null_energy("codecarbon")
        cpu = next((h for h in getattr(self._tracker, "_hardware", []) if type(h).__name__ == "CPU"), None)
        cores = getattr(cpu, "_cpu_count", None) or 1
        if getattr(cpu, "_mode", None) == "intel_rapl":
            cpu_kwh, cpu_source, cpu_power = data.cpu_energy, "measured:rapl", data.cpu_power
        elif getattr(cpu, "_tdp", None):
            cpu_power = float(cpu._tdp) / cores  # W per core, from CodeCarbon's CPU database
            cpu_kwh, cpu_source = cpu_time_s * cpu_power / JOULES_PER_KWH, "model:cpu-time"
        else:
            cpu_kwh, cpu_source, cpu_power = None, "none", None
        ram_kwh = data.ram_power * (cpu_time_s / cores) / JOULES_PER_KWH if data.ram_power is not None else None
        gpu_kwh = self._gpu_kwh()
        parts = [e for e in (cpu_kwh, ram_kwh, gpu_kwh) if e is not None]
        energy = sum(parts) if parts else None
        intensity = data.emissions / data.energy_consumed if data.energy_consumed else None
        return {
            "energy_kwh": energy,
            "emissions_kg": energy * intensity if energy is not None and intensity is not None else None,
            "cpu_energy_kwh": cpu_kwh,
            "gpu_energy_kwh": gpu_kwh,
            "ram_energy_kwh": ram_kwh,
            "cpu_energy_source": cpu_source,
            "gpu_energy_source": "measured:nvml" if gpu_kwh is not None else "none",
            "ram_energy_source": "model:ram" if ram_kwh is not None else "none",
            "carbon_intensity_kg_per_kwh": intensity,
            "codecarbon_energy_kwh": data.energy_consumed,
            "energy_duration_s": data.duration,
            "cpu_power_w": cpu_power,
            "gpu_power_w": data.gpu_power,
            "ram_power_w": data.ram_power,
            "tracking_mode": data.tracking_mode,
            "country_iso_code": data.country_iso_code,
            "energy_tracker": "codecarbon",
        }

    def _gpu_kwh(self) -> float | None:
        if self._gpu is None:
            return None
        try:
            return self._gpu.kwh()
        except Exception as exc:
            log.warning("NVML energy counter failed (%s); GPU energy will be null", exc)
            return None
