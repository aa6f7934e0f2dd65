"""The `onvm` command: look at a host's data plane and at the global view."""
