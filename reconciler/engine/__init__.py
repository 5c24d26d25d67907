"""The engine: the imperative shell that talks to nodes and the store.

`inventory.collect` gathers inventory from nodes; `runcommand.run` is Run Command. Both
report progress through callbacks (the CLI renders them) and never print.
"""
