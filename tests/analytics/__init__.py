"""Tests of the analytics service and page."""
