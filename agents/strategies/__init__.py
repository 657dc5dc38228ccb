"""Trading strategies: the `Strategy` protocol (`base.py`), the built-ins and the registry that selects one by name.

docs/ARCHITECTURE.md §Strategies; README "Add your own strategy".
"""
