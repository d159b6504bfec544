"""jfsocket's bindings: real sockets driving :mod:`jfsocket.core`.

``jfsocket.bindings.threaded`` (blocking sockets and threads) and
``jfsocket.bindings.trio`` give the same objects, events and errors.
"""
