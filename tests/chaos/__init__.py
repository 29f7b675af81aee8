"""The chaos suite: vcdext under hostile messages, broker failures and overload (issue 12)."""
