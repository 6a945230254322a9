"""The protocol review: what the rule set itself says back to a protocol reviewer."""
