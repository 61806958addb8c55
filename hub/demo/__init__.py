"""The demos: `becomingone demo` (the hub over a simulated mesh, its config
demo.toml) and `becomingone demo --kernel` (the kernel alone in a terminal)."""
