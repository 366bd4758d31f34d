"""Tests of the front-end wire formats with the front-ends' own, unmodified clients from npm."""
