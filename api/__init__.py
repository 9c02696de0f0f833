"""HTTP API, CLI and settings: the composition root that wires the write and read sides."""
