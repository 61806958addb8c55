"""A microphone envelope on an ADC pin: peak-to-peak of `window` quick
reads per sample.  A sample period is far longer than an audio cycle, so the
envelope (loudness) is what carries a rhythm, not the raw waveform."""


class Mic:
    def __init__(self, hal, spec):
        self._adc = hal.adc(spec["pin"])
        self._window = spec.get("window", 16)

    def read(self):
        adc = self._adc
        lo = hi = adc.read()
        for _ in range(self._window - 1):
            v = adc.read()
            if v < lo:
                lo = v
            elif v > hi:
                hi = v
        return hi - lo
