"""Tests of the threaded binding (jfsocket.bindings.threaded) on real sockets."""
