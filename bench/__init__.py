"""`make bench`: the hot path side by side with the ORM and django-cachalot (issue 5).

A program, not a test: it measures, prints and writes results under ``bench/results/``; it asserts
nothing about speed. Start it with ``make bench`` (``QUICK=1`` for the short run).
"""
