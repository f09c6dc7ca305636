"""Analytics of a bot's conversations (plans with `analytics`)."""
