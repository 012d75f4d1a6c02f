"""distill stage of promptkit: not built yet (see the project's issues)."""
