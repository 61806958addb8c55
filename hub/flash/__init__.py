"""`becomingone flash`: put BecomingONE on a MicroPython board (docs/flashing.md).

    tool    the command: probe, plan, write, verify, watch (run(args))
    args    its command-line arguments
    device  mpremote, finding the port, probing and checking the board
    build   the board definition, the node config, .mpy files, the plan
    write   copying files (with retries), erasing, making directories
    watch   resetting the board and waiting for the node's first report
    common  FlashError and what the pieces share
"""
