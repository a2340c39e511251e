"""Saliency Tubes."""
