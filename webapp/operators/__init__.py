"""What an operator can do to accounts and to the store: the domain side of `webapp` (the CLI). No HTTP here.

Like the rest of the domain, each operation takes `Deps` and a `Client` (the CLI's own, naming no browser), so an
admin endpoint could call the same functions. Every state change is one locked unit of work that also writes an
audit row naming the operator action (`admin_*` events).
"""
