"""vcdext-backup: configuration backups of vApps, each taken as a vCD task."""
