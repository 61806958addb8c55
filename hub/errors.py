"""The one root of BecomingONE's user-facing errors.

Every error a person can act on (a bad config, a board that cannot be
flashed, a port that is not there) subclasses BecomingOneError, each layer
with its own subclass (HubError, HubConfigError, RuleError, StoreError,
TransportError, BoardError, FlashError, ...).  The CLI catches this root once
and prints ``becomingone: message`` with exit status 1, no traceback.
"""


class BecomingOneError(Exception):
    """A user-facing error: its message is one line that says what to do."""
