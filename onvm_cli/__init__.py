"""The `onvm` command: look at a host's data plane, push lab traffic."""
