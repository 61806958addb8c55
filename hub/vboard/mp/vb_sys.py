"""`sys` on a virtual board that claims another MicroPython version
(vboard.py --mp-version X.Y.Z): the real sys with a different
sys.implementation, put in sys.modules so every `import sys` (mpremote's
code, the flash tool's probe, the firmware) sees it."""
import sys as _sys


class _Impl:
    def __init__(self, real, version):
        self.name = real.name
        self.version = version
        self._machine = real._machine
        self._mpy = real._mpy
        self._build = getattr(real, "_build", "")

    def __repr__(self):
        return (f"(name='{self.name}', version={self.version!r}, "
                f"_machine='{self._machine}', _mpy={self._mpy})")


class _Sys:
    pass


def install(version):
    s = _Sys()
    for k in dir(_sys):
        if not k.startswith("__"):
            setattr(s, k, getattr(_sys, k))
    s.implementation = _Impl(_sys.implementation, version)
    s.version = "3.4.0; MicroPython v" + ".".join(str(x) for x in version[:3])
    _sys.modules["sys"] = s
