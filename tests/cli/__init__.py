"""Tests of the ``jfsocket`` console script and of the README's examples."""
