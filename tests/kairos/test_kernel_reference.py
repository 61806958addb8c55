"""The integer kernel against the float64 reference (docs/kairos.md §1.2 tolerance)."""

import pytest
from support.reference import SWEEP, check
from support.signals import noise, sine

TOL = 0.03  # |c_fixed - c_float| after the integrator has settled (8 * 2**s)


@pytest.mark.parametrize("s,s0,period,amp,snr", SWEEP)
def test_sinusoids_match_reference(s, s0, period, amp, snr):
    lags = (2, 4, 8, 16) if period < 64 else (8, 32, 64, 128)
    u = sine(8 * 2**s + 1000, period, amp, snr_db=snr, seed=s + s0)
    err, regret = check(u, lags, s, s0)
    assert err <= TOL, f"max |c_fixed - c_float| = {err:.4f}"
    assert regret <= TOL, f"dominant lag is {regret:.4f} below the best lag"


@pytest.mark.parametrize("lags", [(1,), (3, 5, 7), (2, 4, 8, 16, 32, 64, 128, 256)])
def test_lag_sets_and_noise_match_reference(lags):
    for u in (noise(8 * 256 + 600, 0.2, seed=len(lags)), sine(3000, 37, 0.3, snr_db=15)):
        err, _ = check(u, lags, 8, 2)
        assert err <= TOL


@pytest.mark.parametrize("omega", [8192, 1000])
def test_demodulated_matches_reference(omega):
    # The lagged product of a period-16 sine has a line at 2*f = omega 8192.
    u = sine(8 * 256 + 800, 16, 0.4, snr_db=20)
    err, _ = check(u, (2, 3, 5, 8), 8, 1, omega)
    assert err <= TOL
