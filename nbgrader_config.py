# nbgrader settings for this course; the values live in course/tools/classroom.py so that the Makefile,
# the tests and the `nbgrader` command line all use the same ones.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # the instructor kit is not installed: `nbgrader` runs from bin/

from course.tools.classroom import nbgrader_settings  # noqa: E402

c = get_config()  # noqa: F821 - provided by nbgrader
nbgrader_settings(c, root=os.getcwd())
