"""The ticket lifecycle (docs/DOMAIN.md §2) as pure functions: state in, state and events out.

No I/O here: the command service loads the state, calls one transition, stores
the result with its events and publishes them. A refused transition raises
WorkflowError and changes nothing.
"""
