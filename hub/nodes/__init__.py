"""The nodes the hub knows: the registry (who is there, boot ids, seqs,
liveness), each node's state between frames (its latest report and Master
tier, in NodeStates), and the per-lag spectra.

"State" means four things in the hub; each has its own name:

- **node state** (``nodes.states.NodeStates``): what the core keeps per node
  between frames: its latest *report* (``NodeStates.report(node)``), the
  Master tier of each channel, collapses waiting for a first report.
- **STATE** (``Hub.state(now)``, docs/rules.md): the dict the rules and the
  API read each tick: G, R, Psi, emergence, the witness, and per node its
  *row* (``NodeStates.rows``).  The mesh's and the witness's results of the
  last tick it is built from are ``Hub.mesh_state`` and ``Hub.witness_state``
  (``MeshState``, ``WitnessState``: replaced whole each tick).
- **saved state** (``Hub.save``, ``Store.save_states``/``all_state``): what
  a restarted hub resumes (mesh, witness, clock syncs, Master tiers, each
  node's hello and boot ids): state only; the settings are this start's
  config.
- **status** (``Transport.status()``, a node's ``status`` frame): a link's
  condition (connected, counts, the BLE transport's ``phase``) and a node's
  online/offline flag.
"""
