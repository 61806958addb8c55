"""The microcontroller's own temperature sensor, in centi-degrees Celsius or
the port's raw reading (the HAL says which; the board's offset/mul map it)."""


class McuTemp:
    def __init__(self, hal, spec):
        self._t = hal.mcu_temp()

    def read(self):
        return self._t.read()
