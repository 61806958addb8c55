# boot.py: kept empty on purpose.  Everything starts in main.py, after the
# REPL and the filesystem are up, so mpremote can always interrupt a node.
import gc

gc.collect()
