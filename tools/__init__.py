"""Developer tools of the pack (example-workflow generation, thumbnails); not loaded by ComfyUI."""
