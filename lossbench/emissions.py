"""The one CodeCarbon wrapper: energy (kWh) and emissions (kg CO2eq) of a run, never fatal.

CodeCarbon swallows its own exceptions (a broken tracker's `stop()` just returns None), so every
failure is detected here and turned into null columns plus a warning (ecosystem.md section 1).
The offline tracker makes no network calls: intensity comes from `country_iso_code`.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from lossbench.schema import ENERGY

log = logging.getLogger(__name__)

ENERGY_COLUMNS = tuple(column.name for column in ENERGY)


def null_energy(tracker: str) -> dict[str, Any]:
    return {**{c: None for c in ENERGY_COLUMNS}, "energy_tracker": tracker}


class NullTracker:
    """Tracking off: all energy columns null."""

    def start(self) -> None:
        """Nothing to start."""

    def stop(self) -> dict[str, Any]:
        return null_energy("off")


class CodeCarbonTracker:
    """codecarbon.OfflineEmissionsTracker around a whole run (training and evaluation)."""

    def __init__(
        self,
        country_iso_code: str = "FRA",
        measure_power_secs: float = 1.0,
        tracking_mode: Literal["process", "machine"] = "process",
    ) -> None:
        self.country_iso_code, self.measure_power_secs, self.tracking_mode = (
            country_iso_code, measure_power_secs, tracking_mode,
        )
        self._tracker: Any = None

    def start(self) -> None:
        try:
            from codecarbon import OfflineEmissionsTracker

            logging.getLogger("codecarbon").setLevel(logging.ERROR)  # after import: importing resets it

            self._tracker = OfflineEmissionsTracker(
                country_iso_code=self.country_iso_code,
                measure_power_secs=self.measure_power_secs,
                tracking_mode=self.tracking_mode,
                output_methods=[],
                log_level="error",
                project_name="lossbench",
            )
            self._tracker.start()
        except Exception as exc:  # a tracker must never kill a run
            log.warning("codecarbon failed to start (%s); energy columns will be null", exc)
            self._tracker = None

    def stop(self) -> dict[str, Any]:
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
        return {
            "energy_kwh": data.energy_consumed,
            "emissions_kg": data.emissions,
            "cpu_energy_kwh": data.cpu_energy,
            "gpu_energy_kwh": data.gpu_energy,
            "ram_energy_kwh": data.ram_energy,
            "energy_duration_s": data.duration,
            "cpu_power_w": data.cpu_power,
            "gpu_power_w": data.gpu_power,
            "ram_power_w": data.ram_power,
            "tracking_mode": data.tracking_mode,
            "country_iso_code": data.country_iso_code,
            "energy_tracker": "codecarbon",
        }
