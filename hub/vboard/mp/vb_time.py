"""`time` on the virtual board: the port's own, with sleeps that Ctrl-C can
interrupt.  The WebAssembly port's sleep is one busy wait in C that never
looks at a pending KeyboardInterrupt (a board's does), so these sleep in
steps of at most 5 ms and return to the VM in between, where the interrupt
the glue scheduled is raised.  Installed in sys.modules at every boot."""
import time as _t

_STEP = 5


class _Time:
    pass


def install():
    m = _Time()
    for k in dir(_t):
        if not k.startswith("__"):
            setattr(m, k, getattr(_t, k))
    ticks_ms, ticks_diff, sleep_ms = _t.ticks_ms, _t.ticks_diff, _t.sleep_ms

    def sleep_ms_(ms):
        t0 = ticks_ms()
        left = int(ms)
        while left > 0:
            sleep_ms(_STEP if left > _STEP else left)
            left = int(ms) - ticks_diff(ticks_ms(), t0)

    def sleep_(s):
        sleep_ms_(int(s * 1000))

    def sleep_us_(us):
        if us > 1000 * _STEP:
            sleep_ms_(us // 1000)
            return
        _t.sleep_us(us)

    m.sleep_ms, m.sleep, m.sleep_us = sleep_ms_, sleep_, sleep_us_
    import sys

    sys.modules["time"] = m
    sys.modules["utime"] = m
