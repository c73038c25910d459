"""Blocking clients of socklab's protocols, built on the same sans-I/O framers as the servers."""
