"""Leaderboards: paper reference tables + run records -> generated markdown."""
