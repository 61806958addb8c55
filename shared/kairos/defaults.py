"""The kernel's settings and their defaults, written once.

Read by the kernel itself (kairos.Channel, kairos.batch.Bank,
kairos.Normalizer), the firmware (node.app, node.commands, node.config),
the hub's board checks (becomingone.boards), its hub-side inputs and its
simulated mesh.  A board definition's sensor entry takes any of
NORMALIZER_KEYS and CHANNEL_KEYS; what it leaves out is the value here,
the constant named by the key in capitals (s0: S0).

Plain constants and tuples (MicroPython imports this on every board).
"""

# kairos.Normalizer: u = clamp(((x - offset) * mul) >> shift), in its argument order.
NORMALIZER_KEYS = ("offset", "mul", "shift")
OFFSET = 0
MUL = 1
SHIFT = 0

# kairos.Channel (and batch.Bank), in their argument order.
CHANNEL_KEYS = ("lags", "s", "s0", "omega", "ic", "hysteresis", "dwell")
LAGS = (2, 4, 8, 16)  # samples; power-of-two lags see rhythms of 4..32 samples
S = 8  # integrator time constant 2**s samples
S0 = 2  # pre-smoothing over 2**s0 samples
OMEGA = 0  # no demodulation
IC = 22938  # I_c: collapse when c*^2 >= 0.70 (Q15) ...
HYSTERESIS = 1638  # ... and release below I_c - 0.05 (Q15)
DWELL = 4  # samples c*^2 must stay above I_c before a collapse

# The sensor kinds a board definition may name (node/sensors drives each;
# becomingone.boards checks their keys).
SENSOR_KINDS = ("adc", "mcu_temp", "bme280", "mic", "digital", "sim")
