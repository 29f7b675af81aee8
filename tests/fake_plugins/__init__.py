"""Plugin modules that tests publish under fake entry points."""
