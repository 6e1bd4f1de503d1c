"""Measuring each answer: what it cost the machine (sampler.py) and the record kept of it (records.py)."""
