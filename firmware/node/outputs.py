"""Outputs a board defines (LED, NeoPixel, buzzer, PWM motor), driven by the
hub's "out" command.  Each is built once; one that the HAL cannot provide is
reported with one line and left out of the node's capabilities."""
from .hal import HalError

KINDS = ("led", "neopixel", "buzzer", "motor")


def _byte(v):
    return 0 if v < 0 else 255 if v > 255 else v


def _u16(v):
    return 0 if v < 0 else 65535 if v > 65535 else v


class Outputs:
    def __init__(self, hal, specs, say=print):
        self._hal = hal
        self.devs = {}
        self._order = []  # names in board order: MicroPython's dicts have none
        for spec in specs:
            try:
                self.devs[spec["name"]] = (spec["kind"], self._make(spec))
                self._order.append(spec["name"])
            except (HalError, OSError, ValueError, KeyError, TypeError) as e:
                say("output %s: %s; skipped" % (spec.get("name", "?"), e))

    def _make(self, spec):
        kind, pin = spec["kind"], spec["pin"]
        if kind == "led":
            return self._hal.pin_out(pin)
        if kind == "neopixel":
            return self._hal.neopixel(pin, spec.get("count", 1))
        if kind == "buzzer":
            return self._hal.pwm(pin, 440)
        if kind == "motor":
            return self._hal.pwm(pin, spec.get("freq", 1000))
        raise ValueError("unknown output kind %r" % (kind,))

    def caps(self):
        seen = []
        for name in self._order:
            kind = self.devs[name][0]
            if kind not in seen:
                seen.append(kind)
        return seen

    def apply(self, args):
        """Carry out an "out" command; return None or an error string.

        led: on (0/1); neopixel: rgb [r, g, b] (and optional i); buzzer:
        freq (Hz, 0 = silent) and duty; motor: duty (0..65535).
        """
        name = args.get("name")
        if name not in self.devs:
            return "no output %r (have: %s)" % (name, ", ".join(self.devs))
        kind, dev = self.devs[name]
        try:
            if kind == "led":
                dev.value(1 if args.get("on", 1) else 0)
            elif kind == "neopixel":
                rgb = args.get("rgb")
                if not isinstance(rgb, list) or len(rgb) != 3:
                    return "rgb must be a list of 3 ints"
                i = args.get("i", 0)
                dev[i] = (_byte(rgb[0]), _byte(rgb[1]), _byte(rgb[2]))
                dev.write()
            elif kind == "buzzer":
                f = args.get("freq", 440)
                if f > 0:
                    dev.freq(f)
                dev.duty_u16(_u16(args.get("duty", 32768)) if f > 0 else 0)
            else:
                dev.duty_u16(_u16(args.get("duty", 0)))
        except (OSError, ValueError, TypeError, IndexError, HalError) as e:
            return "%s: %s" % (name, e)
        return None
