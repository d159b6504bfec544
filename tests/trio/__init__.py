"""Tests of the trio binding, :mod:`jfsocket.bindings.trio`."""
