"""The asyncio binding's own tests: loops, cancellation, flow control, callbacks, leaks."""
