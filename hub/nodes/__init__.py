"""The nodes the hub knows: the registry (who is there, boot ids, seqs,
liveness), the latest state of each node with its Master tier, and the
per-lag spectra."""
