"""Test helpers for plugin authors: ``history_contract`` checks a history backend."""
