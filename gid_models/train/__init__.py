"""Training tools: clips -> shots -> static windows -> spectral-volume shards, procedural
scenes, and the entry points behind `gid prepare` and `gid train`."""
