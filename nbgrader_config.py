# nbgrader settings for this course; the values live in utils/course.py so that the Makefile,
# the tests and the `nbgrader` command line all use the same ones.
import os

from utils.course import nbgrader_settings

c = get_config()  # noqa: F821 - provided by nbgrader
nbgrader_settings(c, root=os.getcwd())
