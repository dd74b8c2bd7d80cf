"""mapreg (under construction)."""
