"""Tests that run the pack inside a real ComfyUI server (see comfyui_server.py)."""
