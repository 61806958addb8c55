"""Checks on a kairos Channel's inside that several kernel tests make."""


def assert_state_in_bounds(ch):
    """Every stored word and every int local of the running loop stays
    inside 30 bits (the kernel's small-int budget on MicroPython), and the
    delay ring inside Q13."""
    lim = 1 << 30
    assert 0 <= ch.c2 <= 32767  # a read-back: the loop stores its locals in the arrays
    for arr in (ch._dring, ch._ering, ch._are, ch._aim):
        assert all(-lim < v < lim for v in arr)
    assert all(abs(v) < 8192 for v in ch._dring)
    gen = ch._send.__self__  # the loop's own locals (kairos._step.loop)
    for name, v in gen.gi_frame.f_locals.items():
        if isinstance(v, int) and not isinstance(v, bool):
            assert -lim < v < lim, name
