"""Drills on the explorer's Drills page: the drills there are, and the one in progress —
its question, hints, answers and score — answered from the page (docs/drills.md)."""
