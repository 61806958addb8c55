"""Sensor drivers: one small file per kind, each a class with read() -> int.

make(hal, spec) builds the driver its spec names, importing only that file.
"""


def make(hal, spec):
    kind = spec["kind"]
    if kind == "adc":
        from .adc import Adc as cls
    elif kind == "mcu_temp":
        from .mcu_temp import McuTemp as cls
    elif kind == "bme280":
        from .bme280 import Bme280 as cls
    elif kind == "mic":
        from .mic import Mic as cls
    elif kind == "digital":
        from .digital import Digital as cls
    elif kind == "sim":
        from .sim import SimSignal

        return SimSignal(
            period=spec.get("period", 32),
            amp=spec.get("amp", 8000),
            noise=spec.get("noise", 0),
            offset=spec.get("dc", 0),  # "offset" belongs to the Normalizer
            seed=spec.get("seed", 1),
            burst_every=spec.get("burst_every", 0),
            burst_len=spec.get("burst_len", 0),
        )
    else:
        raise ValueError("unknown sensor kind %r" % (kind,))
    return cls(hal, spec)
