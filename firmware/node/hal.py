"""Pick the hardware abstraction once, at start-up.

Every HAL offers the same few calls (see hal_sim.SimHal for the full list):
clock, adc(pin), pin_in(pin, pull), pin_out(pin), pwm(pin, freq),
neopixel(pin, count), i2c(bus, sda, scl), mcu_temp(), unique_id(), rand30(),
watchdog(ms), keep_fed(wdt, ms), reset().  Imports are lazy so a board only
loads its own.
"""


class HalError(Exception):
    """A sensor or output the HAL cannot provide (wrong pin, no ADC...)."""


def select(cfg):
    name = cfg.get("hal", "sim")
    if name == "machine":
        from .hal_machine import MachineHal

        return MachineHal(cfg)
    if name == "pi":
        from .hal_pi import PiHal

        return PiHal(cfg)
    from .hal_sim import SimHal

    return SimHal(cfg)
