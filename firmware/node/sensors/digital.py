"""A digital input (button, PIR, reed switch): 0 or 1, so a Normalizer with
offset 0 and a large mul turns it into a square wave the kernel can see."""


class Digital:
    def __init__(self, hal, spec):
        self._pin = hal.pin_in(spec["pin"], spec.get("pull"))

    def read(self):
        return self._pin.read()
