"""Versions and review: several takes of a job side by side, one published by decision."""
