"""Interoperability: jfsocket next to plain socket peers."""
