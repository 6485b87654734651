"""The popup page: HTML, CSS and JS, shipped as package data."""
