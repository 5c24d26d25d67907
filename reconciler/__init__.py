"""plumb: a GitOps-native desired-state reconciler for Linux fleets (the controller)."""

__version__ = "0.1.0"
