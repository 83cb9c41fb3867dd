"""Instructor and maintainer tools, each run as ``python -m course.tools.<name>`` (the Makefile's targets).

Nothing here is imported by a notebook, and nothing here reaches students: ``make release`` ships
``utils/`` whole and never this folder.
"""
