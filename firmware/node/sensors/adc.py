"""An analog input: the raw ADC reading (bits as the board definition's
adc_bits say; MicroPython's read_u16 gives 0..65535 on every port)."""


class Adc:
    def __init__(self, hal, spec):
        self._adc = hal.adc(spec["pin"])

    def read(self):
        return self._adc.read()
