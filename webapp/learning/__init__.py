"""The learning loop: questions a bot was unsure or lost on, for its owners to teach it."""
