"""vcdext-policy: refuse vApp deployments that break the organization's rules."""
