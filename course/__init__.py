"""The instructor's and maintainer's kit (never shipped to students): ``course.tools``."""
