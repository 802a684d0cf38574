"""The fake learner: what a code patch may change."""
