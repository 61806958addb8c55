"""The slow tier's maths, pure and clock-free: clock sync, the Master
averages, mesh sync (Psi, G, R, emergence) and the witness (docs/kairos.md)."""
