"""Departments 专业部门 and street offices 街道办, and the responsibility rules that pick one for a case."""
