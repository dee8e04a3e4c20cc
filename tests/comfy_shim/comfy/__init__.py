"""Minimal stand-in for ComfyUI's `comfy` package, for fast unit tests of node code paths."""
