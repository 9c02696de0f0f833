"""Long-running checks outside the normal suite: the crash soak (`python -m tests.soak.crash`)."""
